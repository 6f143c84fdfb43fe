"""Switch nodes, their live status, and CDRs that could not be given to a client.

All of this lives in the public schema (``telephony`` is a shared app). Raw CDRs that do
belong to a client live in that client's schema (``cdrs.RawCdr``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from django.core.exceptions import ValidationError
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


class EngineSnapshot(models.Model):
    """The active switchboard's routing-engine state, stored every few seconds; a standby that
    takes over restores it (queues with their callers' places, agents' states and timers, the
    wait-time estimators' history). One row per name, overwritten in place."""

    name = models.CharField(max_length=64, primary_key=True)
    data = models.BinaryField()
    engine_time = models.FloatField(help_text="the engine's clock (epoch seconds) when taken")
    size = models.PositiveIntegerField(default=0)
    stored_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.size} bytes at {self.stored_at:%Y-%m-%d %H:%M:%S}"


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


# -- call configuration (what the switchboard reads; see telephony.switchboard_db) ----------------
E164_RE = r"^\+[0-9]{3,15}$"
DEFAULT_SUSPENDED_MESSAGE = "This service is not available at the moment."
DEFAULT_CLOSED_MESSAGE = "We are closed now."


class Number(models.Model):
    """A DID (E.164) on the platform and the client company its calls belong to."""

    class Origin(models.TextChoices):
        DIRECT = "direct", _("Direct: the client's callers dial it")
        OVERFLOW = "overflow", _("Overflow: the client's own centre sends calls to it")

    did = models.CharField(
        _("number (E.164)"),
        max_length=16,
        unique=True,
        validators=[RegexValidator(E164_RE, _("E.164 with a leading +, e.g. +380441234567."))],
    )
    tenant = models.ForeignKey(
        "tenants.Client", on_delete=models.CASCADE, related_name="numbers", verbose_name=_("client")
    )
    origin = models.CharField(
        _("origin"), max_length=16, choices=Origin.choices, default=Origin.DIRECT
    )
    entry_menu = models.CharField(
        _("entry menu"),
        max_length=63,
        blank=True,
        help_text=_(
            "A menu of the client that answers this number; empty: the client's entry menu."
        ),
    )
    queue = models.CharField(
        _("queue"),
        max_length=63,
        blank=True,
        help_text=_("A queue of the client; empty: the client's default queue."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["did"]
        constraints = [
            models.CheckConstraint(
                condition=Q(origin__in=["direct", "overflow"]), name="number_origin_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.did

    def to_route(self):  # type: ignore[no-untyped-def]
        from telephony.callflow.directory import NumberRoute

        return NumberRoute(
            did=self.did,
            tenant_id=self.tenant.schema_name,
            origin=self.origin,
            entry_menu=self.entry_menu,
            queue=self.queue,
        )

    def clean(self) -> None:
        from telephony.config_checks import built

        if self.tenant_id is None:
            return
        built(self.to_route, [("DID", "did"), ("origin", "origin")], default="did")
        if self.queue:
            from routing.models import Queue

            if not Queue.objects.filter(tenant_id=self.tenant_id, queue_id=self.queue).exists():
                raise ValidationError({"queue": _("This client has no such queue.")})


class CallPolicy(models.Model):
    """How one client company's calls are handled: greeting, hours, recording, escalation.

    The client's time zone is ``Client.time_zone``; menus live in the client's schema
    (``portal.IvrMenu``).
    """

    class Recording(models.TextChoices):
        ALL = "all", _("All calls")
        NONE = "none", _("No calls")
        SAMPLE = "sample", _("A sample of calls")
        ON_DEMAND = "on_demand", _("On demand (agent starts it)")

    tenant = models.OneToOneField(
        "tenants.Client", on_delete=models.CASCADE, related_name="call_policy"
    )
    greeting = models.TextField(_("greeting"), blank=True, help_text=_("Spoken first; optional."))
    suspended_message = models.TextField(
        _("message while suspended"), default=DEFAULT_SUSPENDED_MESSAGE
    )
    closed_message = models.TextField(_("message when closed"), default=DEFAULT_CLOSED_MESSAGE)
    closed_action = models.CharField(
        _("when closed"),
        max_length=200,
        default="hangup",
        help_text=_("After the closed message: hangup, voicemail, say:<text>, queue:<id>..."),
    )
    default_queue = models.CharField(
        _("default queue"),
        max_length=63,
        blank=True,
        help_text=_("Where a call goes without a menu (or after one, by the number's setting)."),
    )
    weekly_hours = models.JSONField(
        _("opening hours"), default=list, blank=True
    )  # [[weekday (Monday = 0), "HH:MM:SS", "HH:MM:SS"], ...]; empty = always open
    holidays = models.JSONField(_("holidays"), default=list, blank=True)  # ["YYYY-MM-DD", ...]
    recording = models.CharField(
        _("recording"), max_length=16, choices=Recording.choices, default=Recording.NONE
    )
    recording_sample = models.FloatField(
        _("share of calls recorded"),
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("0..1, when recording a sample."),
    )
    recording_retention_days = models.PositiveIntegerField(
        _("keep recordings (days)"), default=90, validators=[MinValueValidator(1)]
    )
    recording_roles = models.JSONField(
        _("roles that may play recordings"), default=list, blank=True
    )
    lookup_url = models.URLField(_("caller lookup webhook"), blank=True)
    lookup_secret = models.CharField(_("webhook signing secret"), max_length=200, blank=True)
    lookup_timeout_s = models.FloatField(
        _("webhook timeout (s)"),
        default=1.5,
        validators=[MinValueValidator(0.1), MaxValueValidator(10.0)],
    )
    second_line = models.CharField(
        _("second line"),
        max_length=300,
        blank=True,
        help_text=_("Dial string (sofia/gateway/<gw>/<number>) or queue:<id> of the client."),
    )
    callback_digit = models.CharField(_("callback digit"), max_length=1, blank=True, default="1")
    voicemail_digit = models.CharField(_("voicemail digit"), max_length=1, blank=True)
    max_overflow_concurrent = models.PositiveIntegerField(
        _("overflow: max concurrent calls"), null=True, blank=True
    )
    max_overflow_minutes_per_day = models.FloatField(
        _("overflow: max minutes per local day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0)],
    )
    overflow_refused_target = models.CharField(
        _("overflow over the caps goes to"), max_length=200, default="client:busy"
    )
    escalation = models.JSONField(
        _("escalation rules"), default=list, blank=True
    )  # [EscalationRule.to_dict(), ...]
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(recording__in=["all", "none", "sample", "on_demand"]),
                name="callpolicy_recording_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"call policy of {self.tenant}"

    # -- the directory's view of it -------------------------------------------------------
    def business_hours(self, time_zone: str | None = None):  # type: ignore[no-untyped-def]
        from telephony.callflow.directory import BusinessHours
        from telephony.config_checks import weekly_tuples

        return BusinessHours(
            time_zone=time_zone or self.tenant.time_zone,
            weekly=weekly_tuples(self.weekly_hours or ()),
            holidays=tuple(sorted(date.fromisoformat(d) for d in self.holidays or ())),
        )

    def escalation_rules(self) -> tuple:  # type: ignore[type-arg]
        from routing.engine.model import EscalationRule

        return tuple(EscalationRule.from_dict(r) for r in self.escalation or ())

    def tenant_config(self, utc_offset_s: float = 0.0):  # type: ignore[no-untyped-def]
        from routing.engine.model import TenantConfig

        return TenantConfig(
            tenant_id=self.tenant.schema_name,
            utc_offset_s=utc_offset_s,
            max_overflow_in_concurrent=self.max_overflow_concurrent,
            max_overflow_in_minutes_per_day=self.max_overflow_minutes_per_day,
            overflow_refused_target=self.overflow_refused_target or "client:busy",
            second_line=self.second_line or None,
            escalation=self.escalation_rules(),
        )

    def plan_kwargs(self) -> dict[str, object]:
        """The TenantCallPlan fields this policy decides (menus and tenant come elsewhere)."""
        from telephony.callflow.directory import LookupWebhook, Prompt

        return {
            "suspended_prompt": Prompt(text=self.suspended_message or DEFAULT_SUSPENDED_MESSAGE),
            "default_queue": self.default_queue,
            "hours": self.business_hours(),
            "closed_prompt": Prompt(text=self.closed_message or DEFAULT_CLOSED_MESSAGE),
            "closed_action": self.closed_action or "hangup",
            "greeting": Prompt(text=self.greeting) if self.greeting else None,
            "recording": self.recording,
            "recording_sample": self.recording_sample,
            "lookup": (
                LookupWebhook(self.lookup_url, self.lookup_secret, self.lookup_timeout_s)
                if self.lookup_url
                else None
            ),
            "second_line": self.second_line,
            "callback_digit": self.callback_digit,
            "voicemail_digit": self.voicemail_digit,
        }

    def clean(self) -> None:
        from telephony.callflow.directory import TenantCallPlan
        from telephony.config_checks import built, checked_action

        if self.tenant_id is None:
            return
        errors: dict[str, list[str]] = {}

        def collect(fn) -> None:  # type: ignore[no-untyped-def]
            try:
                fn()
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    errors.setdefault(field, []).extend(messages)

        collect(lambda: checked_action(self.closed_action, "closed_action"))
        collect(
            lambda: built(
                self.business_hours,
                [
                    ("weekday", "weekly_hours"),
                    ("opening", "weekly_hours"),
                    ("zone", "weekly_hours"),
                ],
                default="holidays",
            )
        )
        for rule in self.escalation or ():
            if not isinstance(rule, dict):
                continue
            if rule.get("vip") not in (None, True, False) or not isinstance(
                rule.get("topics", []), list
            ):
                errors.setdefault("escalation", []).append(
                    _('"vip" is true, false or null; "topics" a list of names.')
                )
                break
        collect(
            lambda: built(
                lambda: self.tenant_config(),
                [("target", "escalation"), ("hours", "escalation"), ("rule", "escalation")],
                default="escalation",
            )
        )
        for digit_field in ("callback_digit", "voicemail_digit"):
            digit = getattr(self, digit_field)
            if digit and digit not in "0123456789*#":
                errors.setdefault(digit_field, []).append(_("One of 0-9, * or #."))
        if self.lookup_url and not self.lookup_secret:
            errors.setdefault("lookup_secret", []).append(
                _("A webhook needs a secret to sign its requests.")
            )
        if self.recording == self.Recording.SAMPLE and not self.recording_sample:
            errors.setdefault("recording_sample", []).append(
                _("Give the share of calls to record (0..1).")
            )
        if self.default_queue:
            from routing.models import Queue

            if not Queue.objects.filter(
                tenant_id=self.tenant_id, queue_id=self.default_queue
            ).exists():
                errors.setdefault("default_queue", []).append(_("This client has no such queue."))
        if not errors:
            collect(
                lambda: built(
                    lambda: TenantCallPlan(tenant_id=self.tenant.schema_name, **self.plan_kwargs()),  # type: ignore[arg-type]
                    [("recording_sample", "recording_sample"), ("recording", "recording")],
                )
            )
        if errors:
            raise ValidationError(errors)


class CallConfigVersion(models.Model):
    """One row, bumped whenever the call configuration changes (signals below).

    ``telephony.switchboard_db.config_version`` reads it (with the clients' own changes) so the
    switchboard can poll cheaply and reload its directory.
    """

    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"call configuration version {self.value}"


def bump_config_version(**_kwargs: object) -> None:
    """Count one change of the call configuration (in the caller's transaction)."""
    from django.db import connection

    # The table is in the public schema; a tenant's search path ("<tenant>, public") reaches it.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO public.telephony_callconfigversion (id, value, updated_at)"
            " VALUES (1, 1, now())"
            " ON CONFLICT (id) DO UPDATE SET value = telephony_callconfigversion.value + 1,"
            " updated_at = now()"
        )


CONFIG_MODELS = (
    "telephony.Number",
    "telephony.CallPolicy",
    "routing.Queue",
    "routing.Agent",
    "routing.Certification",
    "portal.IvrMenu",
    "portal.IvrOption",
    "tenants.Client",
    "tenants.Membership",  # an agent's provider role
)
for _label in CONFIG_MODELS:
    models.signals.post_save.connect(
        bump_config_version, sender=_label, dispatch_uid=f"callconfig-save-{_label}"
    )
    models.signals.post_delete.connect(
        bump_config_version, sender=_label, dispatch_uid=f"callconfig-delete-{_label}"
    )
