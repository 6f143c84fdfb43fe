"""Client companies (tenants), their domains, users, memberships, invitations and the audit log.

All of these live in the public schema: they are the provider's records. A client company's
own data (its callers, contacts, calls) lives in its schema.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

# ISO 4217 codes the platform invoices in. Kept short on purpose: each needs a tested format.
CURRENCIES = [
    ("UAH", "UAH — Ukrainian hryvnia"),
    ("EUR", "EUR — Euro"),
    ("USD", "USD — US dollar"),
    ("PLN", "PLN — Polish złoty"),
    ("GBP", "GBP — Pound sterling"),
    ("KZT", "KZT — Kazakhstani tenge"),
]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class Client(TenantMixin):
    """A client company of the provider. The provider itself is the row on the public schema."""

    class Status(models.TextChoices):
        TRIAL = "trial", _("Trial")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(_("name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=300, blank=True)
    legal_address = models.TextField(_("legal address"), blank=True)
    tax_id = models.CharField(_("tax / VAT id"), max_length=64, blank=True)
    registration_number = models.CharField(_("registration number"), max_length=64, blank=True)
    billing_email = models.EmailField(_("billing e-mail"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.TRIAL
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="UAH")
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["trial", "active", "suspended"]), name="client_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_provider(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    @property
    def primary_domain(self) -> Domain | None:
        return self.domains.filter(is_primary=True).first() or self.domains.first()


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class EmailUserManager(UserManager):
    """Users log in with their e-mail address; there is no separate username."""

    def _create_user(self, email: str, password: str | None, **extra: Any):  # type: ignore[override]
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any):  # type: ignore[override]
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any):  # type: ignore[override]
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    language = models.CharField(
        _("preferred language"), max_length=8, choices=settings.LANGUAGES, blank=True
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = EmailUserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split() or [self.email])[0]


class Role(models.TextChoices):
    PROVIDER_ADMIN = "provider_admin", _("Provider admin")
    SUPERVISOR = "supervisor", _("Supervisor")
    AGENT = "agent", _("Agent")
    FINANCE = "finance", _("Finance")
    CLIENT_ADMIN = "client_admin", _("Client admin")
    CLIENT_VIEWER = "client_viewer", _("Client viewer")


PROVIDER_ROLES = frozenset({Role.PROVIDER_ADMIN, Role.SUPERVISOR, Role.AGENT, Role.FINANCE})
CLIENT_ROLES = frozenset({Role.CLIENT_ADMIN, Role.CLIENT_VIEWER})


class Membership(models.Model):
    """A user's role on the provider side (tenant is NULL) or within one client company."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(tenant__isnull=True), name="one_provider_role_per_user"
            ),
            models.UniqueConstraint(fields=["user", "tenant"], name="one_role_per_user_and_client"),
            # Provider roles never belong to a client company, client roles always do.
            models.CheckConstraint(
                condition=(
                    Q(tenant__isnull=True, role__in=sorted(r.value for r in PROVIDER_ROLES))
                    | Q(tenant__isnull=False, role__in=sorted(r.value for r in CLIENT_ROLES))
                ),
                name="membership_role_matches_side",
            ),
        ]

    def __str__(self) -> str:
        where = self.tenant.name if self.tenant_id else "provider"
        return f"{self.user} — {self.get_role_display()} @ {where}"


class Invitation(models.Model):
    """A pending invitation; only a hash of its token is stored."""

    email = models.EmailField()
    tenant = models.ForeignKey(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(tenant__isnull=True, role__in=sorted(r.value for r in PROVIDER_ROLES))
                    | Q(tenant__isnull=False, role__in=sorted(r.value for r in CLIENT_ROLES))
                ),
                name="invitation_role_matches_side",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_role_display()})"


class AuditEvent(models.Model):
    """Append-only record of who did what, where, when. The database refuses UPDATE/DELETE.

    Actor and tenant are kept as plain ids plus text snapshots (no FK constraint), so that
    deactivating a user or removing a client never needs to touch audit rows.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    actor_email = models.CharField(max_length=254, blank=True)
    tenant = models.ForeignKey(
        Client,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    tenant_schema = models.CharField(max_length=63, blank=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_email or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)
