"""Views shared by every site (sign-in, invitations, account) and the provider console."""

from __future__ import annotations

import base64
import io

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import actions, audit
from tenants.access import access_client, access_provider, access_user, provider_role
from tenants.forms import (
    AcceptInvitationForm,
    AuditFilterForm,
    ClientCreateForm,
    DomainForm,
    InviteForm,
    PreferencesForm,
    SiteLoginForm,
    SitePasswordResetForm,
    TokenForm,
)
from tenants.models import (
    AuditEvent,
    Client,
    Invitation,
    Membership,
    Role,
    User,
)

PENDING_OTP_USER = "ccp_pending_otp_user"
PENDING_OTP_BACKEND = "ccp_pending_otp_backend"
CONSOLE_ROLES = (Role.PROVIDER_ADMIN, Role.SUPERVISOR, Role.FINANCE)
AUDIT_PAGE_SIZE = 50


def unknown_host(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", {"unknown_host": True}, status=404)


def add_form_errors(form, exc: ValidationError) -> None:  # type: ignore[no-untyped-def]
    """Attach a ValidationError from a ``do_*``/``check_*`` verb to the form's fields."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


# -- sign-in ------------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    form_class = SiteLoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: SiteLoginForm) -> HttpResponse:
        user = form.get_user()
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is not None:
            # Second step: the password was right; the session is not signed in until the code is.
            self.request.session.cycle_key()
            self.request.session[PENDING_OTP_USER] = user.pk
            self.request.session[PENDING_OTP_BACKEND] = user.backend  # type: ignore[attr-defined]
            next_url = self.get_redirect_url()
            return redirect(reverse("login_verify") + (f"?next={next_url}" if next_url else ""))
        response = super().form_valid(form)
        audit.record("user.login", actor=user, request=self.request)
        return response


def login_verify(request: HttpRequest) -> HttpResponse:
    user_id = request.session.get(PENDING_OTP_USER)
    if not user_id:
        return redirect("login")
    user = User.objects.filter(pk=user_id, is_active=True).first()
    device = TOTPDevice.objects.filter(user_id=user_id, confirmed=True).first()
    if user is None or device is None:
        request.session.pop(PENDING_OTP_USER, None)
        return redirect("login")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _data = device.verify_is_allowed()
        if allowed and device.verify_token(form.cleaned_data["token"]):
            backend = request.session.pop(PENDING_OTP_BACKEND, None)
            request.session.pop(PENDING_OTP_USER, None)
            login(request, user, backend=backend)
            otp_login(request, device)
            audit.record(
                "user.login", actor=user, request=request, details={"second_factor": "totp"}
            )
            next_url = request.GET.get("next")
            from django.utils.http import url_has_allowed_host_and_scheme

            if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
                return redirect(next_url)
            return redirect("home")
        audit.record("user.login_failed_second_factor", actor=user, request=request)
        form.add_error(
            "token",
            _("That code is not valid.")
            if allowed
            else _("Too many attempts; wait a moment and try again."),
        )
    return render(request, "registration/login_verify.html", {"form": form})


class PasswordResetView(auth_views.PasswordResetView):
    """Reset links go only to people who belong to the site they asked on."""

    form_class = SitePasswordResetForm

    def get_form(self, form_class=None):  # type: ignore[no-untyped-def]
        form = super().get_form(form_class)
        form.site_tenant = self.request.tenant  # type: ignore[attr-defined]
        return form


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        if request.user.is_authenticated:
            audit.record("user.logout", request=request)
        return super().post(request, *args, **kwargs)


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    try:
        invitation = actions.find_invitation(token, tenant)
    except actions.InvitationInvalid:
        return render(request, "registration/invitation_invalid.html", status=404)
    existing = User.objects.filter(email=invitation.email).exists()
    form = AcceptInvitationForm(
        request.POST or None, needs_password=not existing, email=invitation.email
    )
    if request.method == "POST" and form.is_valid():
        try:
            user = actions.do_accept_invitation(
                token,
                tenant,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data.get("password"),
                request=request,
            )
        except actions.InvitationInvalid:
            return render(request, "registration/invitation_invalid.html", status=404)
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            if existing:
                messages.success(request, _("Access granted. Sign in with your existing password."))
                return redirect("login")
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Your account is ready."))
            return redirect("home")
    return render(
        request,
        "registration/accept_invitation.html",
        {"form": form, "invitation": invitation, "existing": existing},
    )


# -- own account -----------------------------------------------------------------------------
@login_required
def account(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    prefs = PreferencesForm(request.POST or None, initial={"language": user.language})
    if request.method == "POST" and prefs.is_valid():
        User.objects.filter(pk=user.pk).update(language=prefs.cleaned_data["language"])
        messages.success(request, _("Preferences saved."))
        response = redirect("account")
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    is_provider_side = request.tenant.is_provider  # type: ignore[attr-defined]
    device = (
        TOTPDevice.objects.filter(user=user, confirmed=True).first() if is_provider_side else None
    )
    return render(
        request,
        "registration/account.html",
        {"prefs": prefs, "totp_enabled": device is not None, "can_use_totp": is_provider_side},
    )


@login_required
def totp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol a TOTP authenticator (provider roles only): scan, then confirm with a code."""
    user: User = request.user  # type: ignore[assignment]
    if not request.tenant.is_provider or provider_role(user) is None:  # type: ignore[attr-defined]
        raise Http404
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect("account")
    device, _created = TOTPDevice.objects.get_or_create(
        user=user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit.record("user.totp_enabled", request=request, obj=user)
            messages.success(request, _("Two-factor sign-in is on."))
            return redirect("account")
        form.add_error("token", _("That code is not valid."))
    qr = io.BytesIO()
    segno.make(device.config_url, error="m").save(
        qr, kind="svg", scale=4, xmldecl=False, svgns=True
    )
    return render(
        request,
        "registration/totp_setup.html",
        {
            "form": form,
            "qr_svg": qr.getvalue().decode(),
            "secret": base64.b32encode(device.bin_key).decode().rstrip("="),
        },
    )


@login_required
@require_POST
def totp_disable(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    form = TokenForm(request.POST)
    if device is None:
        return redirect("account")
    if form.is_valid() and device.verify_token(form.cleaned_data["token"]):
        TOTPDevice.objects.filter(user=user).delete()
        audit.record("user.totp_disabled", request=request, obj=user)
        messages.success(request, _("Two-factor sign-in is off."))
    else:
        messages.error(request, _("That code is not valid; two-factor sign-in stays on."))
    return redirect("account")


# -- provider console -----------------------------------------------------------------------
@login_required
def console_home(request: HttpRequest) -> HttpResponse:
    role = provider_role(request.user)  # type: ignore[arg-type]
    if role is None:
        raise Http404
    if role == Role.AGENT:
        return render(request, "console/agent_home.html", {"role": role})
    clients = Client.objects.exclude(schema_name="public")
    by_status = dict(
        clients.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    recent = AuditEvent.objects.all()[:10] if role in (Role.PROVIDER_ADMIN, Role.SUPERVISOR) else []
    return render(
        request,
        "console/home.html",
        {
            "role": role,
            "client_count": sum(by_status.values()),
            "by_status": by_status,
            "user_count": User.objects.filter(is_active=True).count(),
            "recent": recent,
        },
    )


@login_required
def client_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, CONSOLE_ROLES)
    clients = (
        Client.objects.exclude(schema_name="public")
        .prefetch_related("domains")
        .annotate(member_count=Count("memberships"))
    )
    query = request.GET.get("q", "").strip()
    if query:
        clients = clients.filter(
            Q(name__icontains=query) | Q(domains__domain__icontains=query)
        ).distinct()
    status = request.GET.get("status", "")
    if status in Client.Status.values:
        clients = clients.filter(status=status)
    context = {
        "clients": clients,
        "q": query,
        "status": status,
        "statuses": Client.Status.choices,
        "role": role,
    }
    template = "console/_client_rows.html" if request.htmx else "console/client_list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@login_required
def client_create(request: HttpRequest) -> HttpResponse:
    access_provider(request, [Role.PROVIDER_ADMIN])
    form = ClientCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = actions.do_create_client(
                actor=request.user, request=request, **form.cleaned_data
            )  # type: ignore[arg-type]
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(name)s is ready at %(domain)s.")
                % {"name": result.client.name, "domain": form.cleaned_data["domain"]},
            )
            return redirect("client_detail", client_id=result.client.pk)
    return render(request, "console/client_form.html", {"form": form})


@login_required
def client_detail(request: HttpRequest, client_id: int) -> HttpResponse:
    role = provider_role(request.user)  # type: ignore[arg-type]
    client = access_client(request, client_id, CONSOLE_ROLES)
    members = (
        Membership.objects.filter(tenant=client).select_related("user").order_by("user__email")
    )
    invitations = Invitation.objects.filter(
        tenant=client, accepted_at__isnull=True, revoked_at__isnull=True
    )
    return render(
        request,
        "console/client_detail.html",
        {
            "client": client,
            "role": role,
            "members": members,
            "invitations": invitations,
            "domain_form": DomainForm(),
            "invite_form": InviteForm(provider=False),
            "site_url": actions.site_url(client),
        },
    )


@login_required
@require_POST
def client_set_status(request: HttpRequest, client_id: int) -> HttpResponse:
    client = access_client(request, client_id, [Role.PROVIDER_ADMIN])
    try:
        actions.do_set_client_status(
            client, request.POST.get("status", ""), actor=request.user, request=request
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(sum(exc.message_dict.values(), [])))
    else:
        messages.success(request, _("Status updated."))
    return redirect("client_detail", client_id=client.pk)


@login_required
@require_POST
def client_add_domain(request: HttpRequest, client_id: int) -> HttpResponse:
    client = access_client(request, client_id, [Role.PROVIDER_ADMIN])
    form = DomainForm(request.POST)
    if form.is_valid():
        try:
            actions.do_add_domain(
                client, form.cleaned_data["domain"], actor=request.user, request=request
            )  # type: ignore[arg-type]
        except ValidationError as exc:
            messages.error(request, " ".join(sum(exc.message_dict.values(), [])))
        else:
            messages.success(request, _("Domain added."))
    else:
        messages.error(request, _("Enter a host name such as acme.example.com."))
    return redirect("client_detail", client_id=client.pk)


@login_required
@require_POST
def client_invite(request: HttpRequest, client_id: int) -> HttpResponse:
    client = access_client(request, client_id, [Role.PROVIDER_ADMIN])
    form = InviteForm(request.POST, provider=False)
    _invite_from_form(request, form, client)
    return redirect("client_detail", client_id=client.pk)


def _invite_from_form(request: HttpRequest, form: InviteForm, tenant: Client | None) -> bool:
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return False
    try:
        actions.do_invite(actor=request.user, request=request, tenant=tenant, **form.cleaned_data)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(sum(exc.message_dict.values(), [])))
        return False
    messages.success(
        request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
    )
    return True


@login_required
def user_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, [Role.PROVIDER_ADMIN, Role.SUPERVISOR])
    users = User.objects.prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("tenant"))
    )
    query = request.GET.get("q", "").strip()
    if query:
        users = users.filter(Q(email__icontains=query) | Q(full_name__icontains=query))
    wanted_role = request.GET.get("role", "")
    if wanted_role in Role.values:
        users = users.filter(memberships__role=wanted_role).distinct()
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    invitations = Invitation.objects.filter(
        tenant__isnull=True, accepted_at__isnull=True, revoked_at__isnull=True
    )
    return render(
        request,
        "console/user_list.html",
        {
            "page": page,
            "q": query,
            "wanted_role": wanted_role,
            "roles": Role.choices,
            "role": role,
            "invite_form": InviteForm(provider=True),
            "invitations": invitations,
        },
    )


@login_required
@require_POST
def user_invite(request: HttpRequest) -> HttpResponse:
    access_provider(request, [Role.PROVIDER_ADMIN])
    _invite_from_form(request, InviteForm(request.POST, provider=True), None)
    return redirect("user_list")


@login_required
@require_POST
def user_set_active(request: HttpRequest, user_id: int) -> HttpResponse:
    target = access_user(request, user_id)
    if target.pk == request.user.pk:
        messages.error(request, _("You cannot deactivate yourself."))
    else:
        active = request.POST.get("active") == "1"
        actions.do_set_user_active(target, active, actor=request.user, request=request)  # type: ignore[arg-type]
        messages.success(request, _("Account updated."))
    return redirect("user_list")


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    access_provider(request, [Role.PROVIDER_ADMIN])
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    actions.do_revoke_invitation(invitation, actor=request.user, request=request)  # type: ignore[arg-type]
    messages.success(request, _("Invitation revoked."))
    if invitation.tenant_id:
        return redirect("client_detail", client_id=invitation.tenant_id)
    return redirect("user_list")


def filtered_audit(form: AuditFilterForm, events):  # type: ignore[no-untyped-def]
    if not form.is_valid():
        return events.none()
    data = form.cleaned_data
    if data.get("tenant"):
        events = events.filter(tenant_id=data["tenant"].pk)
    if data.get("action"):
        events = events.filter(action__icontains=data["action"])
    if data.get("actor"):
        events = events.filter(actor_email__icontains=data["actor"])
    if data.get("since"):
        events = events.filter(created_at__date__gte=data["since"])
    if data.get("until"):
        events = events.filter(created_at__date__lte=data["until"])
    return events


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    access_provider(request, [Role.PROVIDER_ADMIN, Role.SUPERVISOR])
    form = AuditFilterForm(request.GET or None)
    events = (
        filtered_audit(form, AuditEvent.objects.all()) if request.GET else AuditEvent.objects.all()
    )
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "show_tenant": True}
    template = "console/_audit_rows.html" if request.htmx else "console/audit_log.html"  # type: ignore[attr-defined]
    return render(request, template, context)
