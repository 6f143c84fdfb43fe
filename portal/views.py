"""The client company's self-service site (its own domain, its own schema)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from calls.stats import call_figures
from ccplatform.jobs import defer_on_commit
from portal.call_views import latest_calls
from portal.forms import ContactForm, ContactImportForm
from portal.models import Contact, ContactImport
from portal.tasks import import_contacts_task
from tenants import actions, audit
from tenants.access import access_client_site
from tenants.forms import AuditFilterForm, ClientProfileForm, InviteForm
from tenants.models import AuditEvent, Invitation, Membership, Role
from tenants.views import add_form_errors, filtered_audit

ADMIN = [Role.CLIENT_ADMIN]


def _access_contact(contact_id: int) -> Contact:
    try:
        return Contact.objects.get(pk=contact_id)
    except Contact.DoesNotExist:
        raise Http404 from None


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    return render(
        request,
        "portal/home.html",
        {
            "role": role,
            "contact_count": Contact.objects.count(),
            "vip_count": Contact.objects.filter(vip=True).count(),
            "member_count": Membership.objects.filter(tenant=tenant).count(),
            "calls": call_figures(30),
            # The call history from the same 30 days back (a day's edge in the client's zone).
            "calls_since": (timezone.localdate() - timedelta(days=30)).isoformat(),
            "latest_calls": latest_calls(tenant, 5),
            "recent": AuditEvent.objects.filter(tenant_id=tenant.pk)[:8]
            if role == Role.CLIENT_ADMIN
            else [],
        },
    )


@login_required
def contact_list(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    contacts = Contact.objects.all()
    query = request.GET.get("q", "").strip()
    if query:
        contacts = contacts.filter(
            Q(name__icontains=query) | Q(phone__icontains=query) | Q(account_ref__icontains=query)
        )
    page = Paginator(contacts, 50).get_page(request.GET.get("page"))
    template = "portal/_contact_rows.html" if request.htmx else "portal/contact_list.html"  # type: ignore[attr-defined]
    return render(request, template, {"page": page, "q": query, "role": role})


@login_required
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    role = access_client_site(request)
    contact = _access_contact(contact_id)
    return render(request, "portal/contact_detail.html", {"contact": contact, "role": role})


@login_required
def contact_edit(request: HttpRequest, contact_id: int | None = None) -> HttpResponse:
    access_client_site(request, ADMIN)
    contact = _access_contact(contact_id) if contact_id is not None else None
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save()
            audit.record(
                "contact.updated" if contact else "contact.created",
                request=request,
                obj=saved,
                details={"fields": sorted(form.changed_data)},
            )
        messages.success(request, _("Contact saved."))
        return redirect("contact_detail", contact_id=saved.pk)
    return render(request, "portal/contact_form.html", {"form": form, "contact": contact})


@login_required
@require_POST
def contact_delete(request: HttpRequest, contact_id: int) -> HttpResponse:
    access_client_site(request, ADMIN)
    contact = _access_contact(contact_id)
    with transaction.atomic():
        audit.record("contact.deleted", request=request, obj=contact)
        contact.delete()
    messages.success(request, _("Contact deleted."))
    return redirect("contact_list")


@login_required
def contact_import(request: HttpRequest) -> HttpResponse:
    access_client_site(request, ADMIN)
    form = ContactImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        filename, text = form.cleaned_data["file"]
        with transaction.atomic():
            job = ContactImport.objects.create(
                filename=filename[:255], content=text, created_by_id=request.user.pk
            )
            audit.record("contact_import.queued", request=request, obj=job)
            defer_on_commit(
                import_contacts_task,
                tenant_schema=request.tenant.schema_name,  # type: ignore[attr-defined]
                import_id=job.pk,
            )
        messages.success(request, _("Import queued; this page shows its result when it is done."))
        return redirect("contact_import")
    imports = ContactImport.objects.defer("content")[:20]
    return render(request, "portal/contact_import.html", {"form": form, "imports": imports})


@login_required
def team(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    members = (
        Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")
    )
    invitations = (
        Invitation.objects.filter(tenant=tenant, accepted_at__isnull=True, revoked_at__isnull=True)
        if role == Role.CLIENT_ADMIN
        else []
    )
    return render(
        request,
        "portal/team.html",
        {
            "members": members,
            "invitations": invitations,
            "role": role,
            "invite_form": InviteForm(provider=False),
        },
    )


@login_required
@require_POST
def team_invite(request: HttpRequest) -> HttpResponse:
    access_client_site(request, ADMIN)
    form = InviteForm(request.POST, provider=False)
    if form.is_valid():
        try:
            actions.do_invite(
                actor=request.user, request=request, tenant=request.tenant, **form.cleaned_data
            )  # type: ignore[arg-type, attr-defined]
        except ValidationError as exc:
            messages.error(request, " ".join(sum(exc.message_dict.values(), [])))
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
            )
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("team")


@login_required
@require_POST
def team_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    access_client_site(request, ADMIN)
    invitation = Invitation.objects.filter(pk=invitation_id, tenant=request.tenant).first()  # type: ignore[attr-defined]
    if invitation is None:
        raise Http404
    actions.do_revoke_invitation(invitation, actor=request.user, request=request)  # type: ignore[arg-type]
    messages.success(request, _("Invitation revoked."))
    return redirect("team")


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    access_client_site(request, ADMIN)
    tenant = request.tenant  # type: ignore[attr-defined]
    form = AuditFilterForm(request.GET or None)
    form.fields.pop("tenant")
    events = AuditEvent.objects.filter(tenant_id=tenant.pk)
    if request.GET:
        events = filtered_audit(form, events)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/activity.html",
        {"form": form, "page": page, "query": query.urlencode(), "show_tenant": False},
    )


@login_required
def company_settings(request: HttpRequest) -> HttpResponse:
    role = access_client_site(request)
    tenant = request.tenant  # type: ignore[attr-defined]
    form = ClientProfileForm(request.POST or None, instance=tenant)
    if role != Role.CLIENT_ADMIN:
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST":
        if role != Role.CLIENT_ADMIN:
            raise Http404
        if form.is_valid():
            try:
                actions.do_update_client(
                    tenant,
                    actor=request.user,
                    request=request,  # type: ignore[arg-type]
                    **{k: form.cleaned_data[k] for k in form.changed_data},
                )
            except ValidationError as exc:
                add_form_errors(form, exc)
            else:
                messages.success(request, _("Company settings saved."))
                return redirect("company_settings")
    return render(request, "portal/settings.html", {"form": form, "role": role})


@login_required
def live(request: HttpRequest) -> HttpResponse:
    """This company's queues live (its own stream only; numbers over ``/ws/portal/live/``)."""
    from routing.live_views import wallboard_labels

    access_client_site(request)
    return render(request, "portal/live.html", {"labels": wallboard_labels()})
