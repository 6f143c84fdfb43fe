"""Business verbs for tenants and accounts: ``check_*`` validates, ``do_*`` writes and audits.

``do_*`` functions are the only code that writes these models. Each runs in one transaction,
records an audit event in it, and queues side effects (e-mail, signals to the switchboard)
for after commit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tenants import audit
from tenants.models import (
    CLIENT_ROLES,
    CURRENCIES,
    PROVIDER_ROLES,
    Client,
    Domain,
    Invitation,
    Membership,
    User,
    validate_time_zone,
)
from tenants.signals import client_status_changed

_SCHEMA_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_RESERVED_SCHEMAS = {"public", "information_schema", "default", "template0", "template1"}
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


# -- checks ---------------------------------------------------------------------------------
def check_schema_name(value: str) -> str:
    value = (value or "").strip()
    if not _SCHEMA_RE.match(value) or value.startswith("pg_"):
        raise ValidationError(
            {
                "schema_name": _(
                    "Use 2-63 lowercase letters, digits or underscores, starting with a letter."
                )
            }
        )
    if value in _RESERVED_SCHEMAS:
        raise ValidationError({"schema_name": _("This name is reserved.")})
    if Client.objects.filter(schema_name=value).exists():
        raise ValidationError(
            {"schema_name": _("A client company with this schema already exists.")}
        )
    return value


def check_domain(value: str) -> str:
    value = (value or "").strip().lower().rstrip(".")
    if not _DOMAIN_RE.match(value):
        raise ValidationError({"domain": _("Enter a host name such as acme.example.com.")})
    if Domain.objects.filter(domain=value).exists():
        raise ValidationError({"domain": _("This domain is already in use.")})
    return value


def check_client_settings(*, time_zone: str, currency: str, language: str) -> None:
    errors: dict[str, str] = {}
    try:
        validate_time_zone(time_zone)
    except ValidationError:
        errors["time_zone"] = _("%(value)s is not a known time zone.") % {"value": time_zone}
    if currency not in {code for code, _label in CURRENCIES}:
        errors["currency"] = _("Unsupported currency %(value)s.") % {"value": currency}
    if language not in {code for code, _label in settings.LANGUAGES}:
        errors["language"] = _("Unsupported language %(value)s.") % {"value": language}
    if errors:
        raise ValidationError(errors)


def check_invitation(*, email: str, role: str, tenant: Client | None) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid e-mail address.")}) from None
    allowed = CLIENT_ROLES if tenant is not None else PROVIDER_ROLES
    if role not in allowed:
        raise ValidationError({"role": _("This role is not available here.")})
    existing = Membership.objects.filter(user__email=email, tenant=tenant).exists()
    if existing:
        raise ValidationError({"email": _("This person already has access here.")})
    return email


# -- clients ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProvisionedClient:
    client: Client
    invitation: Invitation | None
    invitation_token: str | None


def do_create_client(
    *,
    name: str,
    schema_name: str,
    domain: str,
    admin_email: str | None,
    actor: User | None,
    request: HttpRequest | None = None,
    time_zone: str = "UTC",
    currency: str = "UAH",
    language: str = "en",
    status: str = Client.Status.TRIAL,
    legal_name: str = "",
    legal_address: str = "",
    tax_id: str = "",
    registration_number: str = "",
    billing_email: str = "",
) -> ProvisionedClient:
    """Create a client company: its schema (migrated), its domain, its first admin invitation.

    Raises ValidationError (keyed by field) and writes nothing when any input is bad.
    """
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("A name is required.")]
    for check, args in (
        (check_schema_name, (schema_name,)),
        (check_domain, (domain,)),
    ):
        try:
            check(*args)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    try:
        check_client_settings(time_zone=time_zone, currency=currency, language=language)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if admin_email:
        try:
            validate_email(admin_email)
        except ValidationError:
            errors["admin_email"] = [_("Enter a valid e-mail address.")]
    if errors:
        raise ValidationError(errors)

    # Schema creation runs DDL; PostgreSQL keeps it transactional, so a failure leaves nothing.
    with transaction.atomic():
        client = Client(
            name=name,
            schema_name=schema_name.strip(),
            time_zone=time_zone,
            currency=currency,
            language=language,
            status=status,
            legal_name=legal_name,
            legal_address=legal_address,
            tax_id=tax_id,
            registration_number=registration_number,
            billing_email=billing_email,
        )
        client.save(verbosity=0)
        Domain.objects.create(
            domain=domain.strip().lower().rstrip("."), tenant=client, is_primary=True
        )
        audit.record(
            "client.created",
            actor=actor,
            request=request,
            tenant=client,
            obj=client,
            details={"schema": client.schema_name, "domain": domain, "status": status},
        )
        invitation = token = None
        if admin_email:
            invitation, token = do_invite(
                email=admin_email, role="client_admin", tenant=client, actor=actor, request=request
            )
    return ProvisionedClient(client=client, invitation=invitation, invitation_token=token)


def do_update_client(
    client: Client, *, actor: User | None, request: HttpRequest | None = None, **fields: str
) -> Client:
    editable = {
        "name",
        "legal_name",
        "legal_address",
        "tax_id",
        "registration_number",
        "billing_email",
        "time_zone",
        "currency",
        "language",
    }
    unknown = set(fields) - editable
    if unknown:
        raise ValidationError({name: _("This field cannot be changed here.") for name in unknown})
    check_client_settings(
        time_zone=fields.get("time_zone", client.time_zone),
        currency=fields.get("currency", client.currency),
        language=fields.get("language", client.language),
    )
    if "name" in fields and not fields["name"].strip():
        raise ValidationError({"name": _("A name is required.")})
    with transaction.atomic():
        locked = Client.objects.select_for_update().get(pk=client.pk)
        changes = {k: [getattr(locked, k), v] for k, v in fields.items() if getattr(locked, k) != v}
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.save()
        if changes:
            audit.record(
                "client.updated",
                actor=actor,
                request=request,
                tenant=locked,
                obj=locked,
                details={"changes": changes},
            )
    return locked


def do_set_client_status(
    client: Client, status: str, *, actor: User | None, request: HttpRequest | None = None
) -> Client:
    """Change a client's status. Suspension takes effect for its users and calls at once."""
    if status not in Client.Status.values:
        raise ValidationError({"status": _("Unknown status.")})
    if client.is_provider:
        raise ValidationError({"status": _("The provider itself has no status.")})
    with transaction.atomic():
        # Conditional update: two admins racing on the same client both see a coherent result.
        locked = Client.objects.select_for_update().get(pk=client.pk)
        previous = locked.status
        if previous == status:
            return locked
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            "client.status_changed",
            actor=actor,
            request=request,
            tenant=locked,
            obj=locked,
            details={"from": previous, "to": status},
        )
        transaction.on_commit(
            lambda: client_status_changed.send(
                sender=Client, client=locked, previous=previous, status=status
            )
        )
    return locked


def do_add_domain(
    client: Client, domain: str, *, actor: User | None, request: HttpRequest | None = None
) -> Domain:
    value = check_domain(domain)
    with transaction.atomic():
        try:
            created = Domain.objects.create(domain=value, tenant=client, is_primary=False)
        except IntegrityError:
            raise ValidationError({"domain": _("This domain is already in use.")}) from None
        audit.record("domain.added", actor=actor, request=request, tenant=client, obj=created)
    return created


# -- invitations ----------------------------------------------------------------------------
def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def site_url(client: Client) -> str:
    """The base URL of a client's site (or the provider console for the public tenant)."""
    domain = client.primary_domain
    host = domain.domain if domain else "localhost"
    port = settings.SITE_PORT
    default_port = {"http": 80, "https": 443}[settings.SITE_SCHEME]
    suffix = f":{port}" if port and port != default_port else ""
    return f"{settings.SITE_SCHEME}://{host}{suffix}"


def do_invite(
    *,
    email: str,
    role: str,
    tenant: Client | None,
    actor: User | None,
    request: HttpRequest | None = None,
) -> tuple[Invitation, str]:
    """Invite someone to a role; e-mails them a one-time link after commit."""
    email = check_invitation(email=email, role=role, tenant=tenant)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            tenant=tenant,
            token_hash=_hash_token(token),
            invited_by=actor,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit.record(
            "invitation.created",
            actor=actor,
            request=request,
            tenant=tenant,
            obj=invitation,
            details={"email": email, "role": role},
        )
        site = tenant if tenant is not None else Client.objects.get(schema_name="public")
        link = f"{site_url(site)}/accept/{token}/"
        language = site.language if tenant is not None else settings.LANGUAGE_CODE
        transaction.on_commit(lambda: _send_invitation(invitation, link, language))
    return invitation, token


def _send_invitation(invitation: Invitation, link: str, language: str) -> None:
    with translation.override(language):
        context = {"invitation": invitation, "link": link}
        subject = _("You are invited to the contact-centre platform")
        body = render_to_string("registration/invitation_email.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


class InvitationInvalid(Exception):
    pass


def find_invitation(token: str, tenant: Client) -> Invitation:
    """The pending invitation for ``token`` on this site, or InvitationInvalid."""
    invitation = (
        Invitation.objects.select_related("tenant")
        .filter(token_hash=_hash_token(token or ""))
        .first()
    )
    expected_tenant = None if tenant.is_provider else tenant.pk
    if (
        invitation is None
        or invitation.tenant_id != expected_tenant
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= timezone.now()
    ):
        raise InvitationInvalid
    return invitation


def do_accept_invitation(
    token: str,
    tenant: Client,
    *,
    full_name: str,
    password: str | None,
    request: HttpRequest | None = None,
) -> User:
    """Accept an invitation: create the user (or reuse an existing account) and the membership."""
    with transaction.atomic():
        invitation = find_invitation(token, tenant)
        # Lock it so a double submit cannot create two memberships.
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise InvitationInvalid
        user = User.objects.filter(email=invitation.email).first()
        if user is None:
            if not password:
                raise ValidationError({"password": _("Choose a password.")})
            user = User.objects.create_user(
                email=invitation.email, password=password, full_name=full_name.strip()
            )
        Membership.objects.create(user=user, tenant=invitation.tenant, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit.record(
            "invitation.accepted",
            actor=user,
            request=request,
            tenant=invitation.tenant,
            obj=invitation,
            details={"role": invitation.role},
        )
    return user


def do_revoke_invitation(
    invitation: Invitation, *, actor: User | None, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if updated:
            audit.record(
                "invitation.revoked",
                actor=actor,
                request=request,
                tenant=invitation.tenant,
                obj=invitation,
            )


def do_set_user_active(
    user: User, active: bool, *, actor: User | None, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        if User.objects.filter(pk=user.pk).exclude(is_active=active).update(is_active=active):
            audit.record(
                "user.activated" if active else "user.deactivated",
                actor=actor,
                request=request,
                obj=user,
            )
