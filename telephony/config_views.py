"""Provider console: the call configuration (numbers, clients' call policies).

Provider admins edit; supervisors read (the same pages, read-only). Every change is audited;
bad input is answered with the form and its errors, HTTP 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, models, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from telephony.config_forms import CallPolicyForm, ConfigModelForm, NumberForm, changes
from telephony.models import CallPolicy, Number
from tenants import audit
from tenants.access import access_client, access_provider
from tenants.models import Client, Role

READERS = (Role.PROVIDER_ADMIN, Role.SUPERVISOR)
WRITERS = (Role.PROVIDER_ADMIN,)
FORM_TEMPLATE = "telephony/config/form.html"


def edit_page(
    request: HttpRequest,
    *,
    form_class: type[ConfigModelForm],
    instance: models.Model,
    can_edit: bool,
    action: str,
    tenant_of: Callable[[Any], Client | None],
    title: str,
    back_url: str,
    done_url: Callable[[Any], str],
    template: str = FORM_TEMPLATE,
    context: dict[str, Any] | None = None,
    audit_tenant_from_request: bool = False,
) -> HttpResponse:
    """GET: the form (read-only without ``can_edit``). POST: validate, save, audit, redirect.

    A POST without ``can_edit`` is a 404 (the reader may see the page, not change it).
    """
    creating = instance.pk is None
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise Http404
        form = form_class(request.POST, instance=instance)
        if form.is_valid():
            try:
                with transaction.atomic():
                    saved = form.save()
                    audit.record(
                        f"{action}.{'created' if creating else 'updated'}",
                        request=request,
                        tenant=None if audit_tenant_from_request else tenant_of(saved),
                        obj=saved,
                        details={"changes": changes(form)},
                    )
            except IntegrityError:
                form.add_error(None, _("This conflicts with an existing entry; reload and retry."))
            else:
                messages.success(request, _("Saved."))
                return redirect(done_url(saved))
        status = 400
    else:
        form = form_class(instance=instance)
        if not can_edit:
            form.make_read_only()
    ctx = {
        "form": form,
        "can_edit": can_edit,
        "title": title,
        "back_url": back_url,
        "object": None if creating else instance,
        **(context or {}),
    }
    return render(request, template, ctx, status=status)


def delete_object(
    request: HttpRequest, obj: models.Model, *, action: str, tenant: Client | None
) -> None:
    with transaction.atomic():
        audit.record(action, request=request, tenant=tenant, obj=obj)
        obj.delete()


# -- numbers ------------------------------------------------------------------------------
def _access_number(request: HttpRequest, number_id: int, roles: tuple[str, ...]) -> Number:
    access_provider(request, roles)
    try:
        return Number.objects.select_related("tenant").get(pk=number_id)
    except Number.DoesNotExist:
        raise Http404 from None


@login_required
def number_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, READERS)
    numbers = Number.objects.select_related("tenant").order_by("tenant__name", "did")
    client = request.GET.get("client")
    if client and client.isdigit():
        numbers = numbers.filter(tenant_id=int(client))
    return render(
        request,
        "telephony/config/number_list.html",
        {"numbers": numbers, "can_edit": role in WRITERS},
    )


@login_required
def number_create(request: HttpRequest) -> HttpResponse:
    access_provider(request, WRITERS)
    return edit_page(
        request,
        form_class=NumberForm,
        instance=Number(),
        can_edit=True,
        action="number",
        tenant_of=lambda n: n.tenant,
        title=_("Assign a number"),
        back_url=reverse("calls_number_list"),
        done_url=lambda n: reverse("calls_number_list"),
    )


@login_required
def number_edit(request: HttpRequest, number_id: int) -> HttpResponse:
    role = access_provider(request, READERS)
    number = _access_number(request, number_id, READERS)
    return edit_page(
        request,
        form_class=NumberForm,
        instance=number,
        can_edit=role in WRITERS,
        action="number",
        tenant_of=lambda n: n.tenant,
        title=_("Number %(did)s") % {"did": number.did},
        back_url=reverse("calls_number_list"),
        done_url=lambda n: reverse("calls_number_list"),
        context={"delete_url": reverse("calls_number_delete", args=[number.pk])},
    )


@login_required
@require_POST
def number_delete(request: HttpRequest, number_id: int) -> HttpResponse:
    number = _access_number(request, number_id, WRITERS)
    delete_object(request, number, action="number.deleted", tenant=number.tenant)
    messages.success(request, _("Number %(did)s removed.") % {"did": number.did})
    return redirect("calls_number_list")


# -- call policies --------------------------------------------------------------------------
@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    access_provider(request, READERS)
    clients = Client.objects.exclude(schema_name="public").select_related("call_policy")
    rows = [(c, getattr(c, "call_policy", None)) for c in clients.order_by("name")]
    return render(request, "telephony/config/policy_list.html", {"rows": rows})


@login_required
def policy_edit(request: HttpRequest, client_id: int) -> HttpResponse:
    role = access_provider(request, READERS)
    client = access_client(request, client_id, READERS)
    policy = CallPolicy.objects.filter(tenant=client).first() or CallPolicy(tenant=client)
    return edit_page(
        request,
        form_class=CallPolicyForm,
        instance=policy,
        can_edit=role in WRITERS,
        action="call_policy",
        tenant_of=lambda p: client,
        title=_("Call policy of %(client)s") % {"client": client.name},
        back_url=reverse("calls_policy_list"),
        done_url=lambda p: reverse("calls_policy_edit", args=[client.pk]),
        context={"client": client},
    )
