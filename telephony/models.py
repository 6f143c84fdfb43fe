"""Switch nodes, their live status, and CDRs that could not be given to a client.

All of this lives in the public schema (``telephony`` is a shared app). Raw CDRs that do
belong to a client live in that client's schema (``cdrs.RawCdr``).
"""

from __future__ import annotations

import hashlib
import hmac

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

NODE_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"


def hash_cdr_secret(secret: str) -> str:
    """SHA-256 of a CDR secret.

    The platform only ever *verifies* a node's CDR secret, it never presents it, so it keeps a
    hash, as for a password. The secret is 256 random bits generated here (never chosen by a
    person), so a plain fast hash is enough: there is nothing to brute-force, and a slow KDF
    would cost every one of thousands of CDR posts a minute.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


class SwitchNode(models.Model):
    """A FreeSWITCH node the switchboard connects to and that posts CDRs to us."""

    name = models.CharField(
        _("name"),
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(NODE_NAME_RE, _("Lowercase letters, digits and dashes (e.g. fs-1)."))
        ],
        help_text=_("Also the user name in the node's json_cdr.conf.xml cred."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    esl_host = models.CharField(_("Event Socket host"), max_length=255)
    esl_port = models.PositiveIntegerField(
        _("Event Socket port"),
        default=8021,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    # Stored as is: the switchboard has to *present* it when it connects (unlike the CDR
    # secret, which we only verify). It is never shown back in the console.
    esl_password = models.CharField(_("Event Socket password"), max_length=128)
    cdr_secret_hash = models.CharField(max_length=64)
    cdr_secret_hint = models.CharField(max_length=8, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["esl_host", "esl_port"], name="switchnode_esl_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def check_cdr_secret(self, secret: str) -> bool:
        return hmac.compare_digest(self.cdr_secret_hash, hash_cdr_secret(secret))

    @property
    def esl_address(self) -> str:
        host = f"[{self.esl_host}]" if ":" in self.esl_host else self.esl_host
        return f"{host}:{self.esl_port}"


class SwitchNodeStatus(models.Model):
    """What the switchboard last saw of a node; one row per node, overwritten in place.

    Written by the switchboard (``telephony.actions.do_record_node_status``), read by the
    console. ``updated_at`` says how fresh it is; the console calls it stale after a minute.
    """

    node = models.OneToOneField(
        SwitchNode, on_delete=models.CASCADE, primary_key=True, related_name="status"
    )
    connected = models.BooleanField(default=False)
    core_uuid = models.CharField(max_length=64, blank=True)
    version = models.CharField(max_length=128, blank=True)
    uptime_seconds = models.PositiveBigIntegerField(null=True, blank=True)
    channels = models.PositiveIntegerField(null=True, blank=True)
    sessions_per_second = models.FloatField(null=True, blank=True)
    max_sessions_per_second = models.PositiveIntegerField(null=True, blank=True)
    sessions_since_startup = models.PositiveBigIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.node_id}: {'connected' if self.connected else 'disconnected'}"


class UnroutedCdr(models.Model):
    """A CDR whose client could not be resolved: kept here (never dropped) until routed."""

    class Reason(models.TextChoices):
        NO_TENANT = "no_tenant", _("no ccp_tenant variable")
        UNKNOWN_TENANT = "unknown_tenant", _("ccp_tenant names no client")

    leg_uuid = models.UUIDField(unique=True)
    core_uuid = models.CharField(max_length=64, blank=True)
    node = models.ForeignKey(
        SwitchNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    node_name = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=8, default="http")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    tenant_value = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    body = models.JSONField()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__in=["no_tenant", "unknown_tenant"]), name="unrouted_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"unrouted CDR {self.leg_uuid} ({self.reason})"
