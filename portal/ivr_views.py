"""Client portal: the company's call flow (IVR menus and options, opening hours, holidays).

The client admin edits; viewers read the same pages. Menus live in the company's own schema
(the request's); the call policy (hours, holidays) in the public schema, keyed by the company.
Every change is audited; bad input gets the form back with its errors, HTTP 400.
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.ivr_forms import IvrMenuForm, IvrOptionForm
from portal.models import IvrMenu, IvrOption
from routing.models import Queue
from telephony.config_forms import HoursForm, add_errors
from telephony.config_views import delete_object, edit_page
from telephony.models import CallPolicy, Number
from tenants import audit
from tenants.access import access_client_site
from tenants.models import Role

ADMIN = [Role.CLIENT_ADMIN]


def _can_edit(role: str) -> bool:
    return role == Role.CLIENT_ADMIN


def _menu(menu_id: int) -> IvrMenu:
    try:
        return IvrMenu.objects.get(pk=menu_id)
    except IvrMenu.DoesNotExist:
        raise Http404 from None


def _option(option_id: int) -> IvrOption:
    try:
        return IvrOption.objects.select_related("menu").get(pk=option_id)
    except IvrOption.DoesNotExist:
        raise Http404 from None


def _references(menu: IvrMenu, tenant) -> list[str]:  # type: ignore[no-untyped-def]
    """What still sends callers to ``menu`` (other menus' options and timeouts, numbers)."""
    target = f"menu:{menu.menu_id}"
    found = [
        f"{o.menu.menu_id}:{o.digit}"
        for o in IvrOption.objects.filter(action=target).exclude(menu=menu).select_related("menu")
    ]
    found += [m.menu_id for m in IvrMenu.objects.filter(on_timeout=target).exclude(pk=menu.pk)]
    found += [n.did for n in Number.objects.filter(tenant=tenant, entry_menu=menu.menu_id)]
    return found


@login_required
def ivr_home(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    policy = CallPolicy.objects.filter(tenant=tenant).first()
    return render(
        request,
        "portal/ivr/home.html",
        {
            "can_edit": _can_edit(role),
            "menus": IvrMenu.objects.prefetch_related("options"),
            "policy": policy,
            "hours": HoursForm.initial_for(policy),
            "queues": Queue.objects.filter(tenant=tenant).order_by("queue_id"),
            "numbers": Number.objects.filter(tenant=tenant, active=True).order_by("did"),
        },
    )


@login_required
def ivr_hours(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    policy = CallPolicy.objects.filter(tenant=tenant).first()
    status = 200
    if request.method == "POST":
        if not _can_edit(role):
            raise Http404
        form = HoursForm(request.POST)
        if form.is_valid():
            target = policy or CallPolicy(tenant=tenant)
            before = {"weekly_hours": target.weekly_hours, "holidays": target.holidays}
            target.weekly_hours = form.cleaned_data["weekly_hours"]
            target.holidays = form.cleaned_data["holidays"]
            try:
                target.full_clean()
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                with transaction.atomic():
                    target.save()
                    audit.record(
                        "call_policy.hours_updated",
                        request=request,
                        obj=target,
                        details={
                            "from": before,
                            "to": {
                                "weekly_hours": target.weekly_hours,
                                "holidays": target.holidays,
                            },
                        },
                    )
                messages.success(request, _("Opening hours saved."))
                return redirect("ivr_home")
        status = 400
    else:
        form = HoursForm(initial=HoursForm.initial_for(policy))
        if not _can_edit(role):
            for field in form.fields.values():
                field.disabled = True
    return render(
        request,
        "telephony/config/form.html",
        {
            "form": form,
            "can_edit": _can_edit(role),
            "title": _("Opening hours and holidays"),
            "back_url": reverse("ivr_home"),
            "time_zone": tenant.time_zone,
        },
        status=status,
    )


@login_required
def ivr_menu_create(request: HttpRequest) -> HttpResponse:
    access_client_site(request, ADMIN)
    tenant = request.tenant  # type: ignore[attr-defined]
    return edit_page(
        request,
        form_class=partial(IvrMenuForm, tenant=tenant),  # type: ignore[arg-type]
        instance=IvrMenu(is_entry=not IvrMenu.objects.filter(is_entry=True).exists()),
        can_edit=True,
        action="ivr_menu",
        tenant_of=lambda m: tenant,
        title=_("New menu"),
        back_url=reverse("ivr_home"),
        done_url=lambda m: reverse("ivr_menu", args=[m.pk]),
    )


def _menu_context(menu: IvrMenu, tenant, can_edit: bool) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "menu": menu,
        "options": menu.options.order_by("digit"),
        "option_form": IvrOptionForm(instance=IvrOption(menu=menu), tenant=tenant),
        "delete_url": reverse("ivr_menu_delete", args=[menu.pk]),
    }


@login_required
def ivr_menu(request: HttpRequest, menu_id: int) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    menu = _menu(menu_id)
    return edit_page(
        request,
        form_class=partial(IvrMenuForm, tenant=tenant),  # type: ignore[arg-type]
        instance=menu,
        can_edit=_can_edit(role),
        action="ivr_menu",
        tenant_of=lambda m: tenant,
        title=_("Menu %(menu)s") % {"menu": menu.menu_id},
        back_url=reverse("ivr_home"),
        done_url=lambda m: reverse("ivr_menu", args=[m.pk]),
        template="portal/ivr/menu_form.html",
        context=_menu_context(menu, tenant, _can_edit(role)),
    )


@login_required
@require_POST
def ivr_menu_delete(request: HttpRequest, menu_id: int) -> HttpResponse:
    access_client_site(request, ADMIN)
    tenant = request.tenant  # type: ignore[attr-defined]
    menu = _menu(menu_id)
    used_by = _references(menu, tenant)
    if used_by:
        form = IvrMenuForm(instance=menu, tenant=tenant)
        page_error = _("This menu is still used by: %(uses)s. Change those first.") % {
            "uses": ", ".join(used_by)
        }
        return render(
            request,
            "portal/ivr/menu_form.html",
            {
                "form": form,
                "can_edit": True,
                "title": _("Menu %(menu)s") % {"menu": menu.menu_id},
                "back_url": reverse("ivr_home"),
                "page_error": page_error,
                **_menu_context(menu, tenant, True),
            },
            status=400,
        )
    delete_object(request, menu, action="ivr_menu.deleted", tenant=tenant)
    messages.success(request, _("Menu %(menu)s deleted.") % {"menu": menu.menu_id})
    return redirect("ivr_home")


@login_required
def ivr_option_create(request: HttpRequest, menu_id: int) -> HttpResponse:
    access_client_site(request, ADMIN)
    tenant = request.tenant  # type: ignore[attr-defined]
    menu = _menu(menu_id)
    return edit_page(
        request,
        form_class=partial(IvrOptionForm, tenant=tenant),  # type: ignore[arg-type]
        instance=IvrOption(menu=menu),
        can_edit=True,
        action="ivr_option",
        tenant_of=lambda o: tenant,
        title=_("New option in menu %(menu)s") % {"menu": menu.menu_id},
        back_url=reverse("ivr_menu", args=[menu.pk]),
        done_url=lambda o: reverse("ivr_menu", args=[menu.pk]),
    )


@login_required
def ivr_option(request: HttpRequest, option_id: int) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    option = _option(option_id)
    return edit_page(
        request,
        form_class=partial(IvrOptionForm, tenant=tenant),  # type: ignore[arg-type]
        instance=option,
        can_edit=_can_edit(role),
        action="ivr_option",
        tenant_of=lambda o: tenant,
        title=_("Option %(digit)s of menu %(menu)s")
        % {"digit": option.digit, "menu": option.menu.menu_id},
        back_url=reverse("ivr_menu", args=[option.menu_id]),
        done_url=lambda o: reverse("ivr_menu", args=[o.menu_id]),
        context={"delete_url": reverse("ivr_option_delete", args=[option.pk])},
    )


@login_required
@require_POST
def ivr_option_delete(request: HttpRequest, option_id: int) -> HttpResponse:
    access_client_site(request, ADMIN)
    option = _option(option_id)
    menu_pk = option.menu_id
    delete_object(request, option, action="ivr_option.deleted", tenant=request.tenant)  # type: ignore[attr-defined]
    messages.success(request, _("Option deleted."))
    return redirect("ivr_menu", menu_id=menu_pk)
