"""The provider's routing configuration: queues, agents and their certifications (public schema).

Each row converts to the routing engine's own configuration (``routing.engine.model``) and is
validated by building it: the engine's rules are the only rules.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from routing.engine.ewt import ESTIMATORS
from routing.engine.model import STRATEGIES

SLUG_RE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
slug_validator = RegexValidator(SLUG_RE, _("Lowercase letters, digits, - and _ (e.g. sales-uk)."))

# Words of the engine's error messages -> the field they are about.
QUEUE_HINTS = [
    ("strategy", "strategy"),
    ("wrap_up_s", "wrap_up_s"),
    ("priority_head_start_s", "priority_head_start_s"),
    ("sticky_window_s", "sticky_window_s"),
    ("offer_timeout_s", "offer_timeout_s"),
    ("no_answer_penalty_s", "no_answer_penalty_s"),
    ("announce_interval_s", "announce_interval_s"),
    ("announce_granularity_s", "announce_granularity_s"),
    ("relaxation", "relaxation"),
    ("overflow", "overflow"),
    ("time_of_day", "overflow"),
    ("counts", "max_missed_offers"),
    ("estimator", "estimator"),
]


class Queue(models.Model):
    """A queue of one client company, routed by the provider's shared pool of agents."""

    queue_id = models.CharField(
        _("queue id"), max_length=63, unique=True, validators=[slug_validator]
    )
    tenant = models.ForeignKey(
        "tenants.Client", on_delete=models.CASCADE, related_name="queues", verbose_name=_("client")
    )
    name = models.CharField(_("name"), max_length=200)
    strategy = models.CharField(
        _("strategy"),
        max_length=32,
        choices=[(s, s.replace("_", " ")) for s in STRATEGIES],
        default="longest_idle",
    )
    wrap_up_s = models.FloatField(_("wrap-up (s)"), default=10.0)
    clearance = models.PositiveSmallIntegerField(_("clearance needed"), default=0)
    skills = models.JSONField(_("skills"), default=list, blank=True)  # [[skill, min level], ...]
    relaxation = models.JSONField(
        _("skill relaxation"), default=list, blank=True
    )  # [[after s, level cap], ...]
    priority_head_start_s = models.FloatField(_("priority head start (s)"), default=90.0)
    sticky_window_s = models.FloatField(_("sticky window (s)"), default=0.0)
    ring_all_max = models.PositiveSmallIntegerField(_("ring-all: agents at once"), default=5)
    offer_timeout_s = models.FloatField(_("offer timeout (s)"), default=20.0)
    no_answer_penalty_s = models.FloatField(_("no-answer rest (s)"), default=30.0)
    max_missed_offers = models.PositiveSmallIntegerField(
        _("missed offers before a break"), default=3
    )
    announce_interval_s = models.FloatField(_("announce every (s)"), default=60.0)
    announce_granularity_s = models.FloatField(_("round announced waits to (s)"), default=30.0)
    callback_over_s = models.FloatField(_("offer a callback over (s)"), null=True, blank=True)
    overflow = models.JSONField(
        _("overflow rules"), default=list, blank=True
    )  # [OverflowRule.to_dict(), ...]
    estimator = models.CharField(
        _("wait estimator"),
        max_length=32,
        choices=[(name, name) for name in ESTIMATORS],
        default="ql-mp",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "queue_id"]

    def __str__(self) -> str:
        return self.name or self.queue_id

    def to_config(self):  # type: ignore[no-untyped-def]
        from routing.engine.model import OverflowRule, QueueConfig

        return QueueConfig(
            queue_id=self.queue_id,
            tenant_id=self.tenant.schema_name,
            strategy=self.strategy,
            wrap_up_s=float(self.wrap_up_s),
            clearance=int(self.clearance),
            skills=tuple((str(s), int(level)) for s, level in self.skills or ()),
            relaxation=tuple((float(a), int(c)) for a, c in self.relaxation or ()),
            priority_head_start_s=float(self.priority_head_start_s),
            sticky_window_s=float(self.sticky_window_s),
            ring_all_max=int(self.ring_all_max),
            offer_timeout_s=float(self.offer_timeout_s),
            no_answer_penalty_s=float(self.no_answer_penalty_s),
            max_missed_offers=int(self.max_missed_offers),
            announce_interval_s=float(self.announce_interval_s),
            announce_granularity_s=float(self.announce_granularity_s),
            callback_over_s=None if self.callback_over_s is None else float(self.callback_over_s),
            overflow=tuple(OverflowRule.from_dict(r) for r in self.overflow or ()),
            estimator=self.estimator,
        )

    def clean(self) -> None:
        from telephony.config_checks import built

        if self.tenant_id is None:
            return
        if self.estimator not in ESTIMATORS:
            raise ValidationError({"estimator": _("Unknown estimator.")})
        config = built(self.to_config, QUEUE_HINTS)
        for rule in config.overflow:
            if rule.until is not None and not isinstance(rule.until, int | float):
                raise ValidationError({"overflow": _("'until' is a number of seconds.")})
            kind, _sep, target = rule.target.partition(":")
            if kind != "queue":
                continue
            if target == self.queue_id:
                raise ValidationError({"overflow": _("A queue cannot overflow into itself.")})
            if not Queue.objects.filter(tenant_id=self.tenant_id, queue_id=target).exists():
                raise ValidationError(
                    {
                        "overflow": _("%(target)s is not a queue of this client.")
                        % {"target": target}
                    }
                )


class Agent(models.Model):
    """A provider agent of the shared pool: the phone to ring and the clearance held."""

    user = models.OneToOneField(
        "tenants.User", on_delete=models.CASCADE, related_name="agent", verbose_name=_("user")
    )
    agent_id = models.CharField(
        _("agent id"), max_length=63, unique=True, validators=[slug_validator]
    )
    endpoint = models.CharField(
        _("endpoint"),
        max_length=200,
        help_text=_('Dial string of the agent\'s phone, e.g. "user/1001".'),
    )
    clearance = models.PositiveSmallIntegerField(_("clearance"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_id"]

    def __str__(self) -> str:
        return self.agent_id

    def profile(self, certs: dict[str, dict[str, int]] | None = None):  # type: ignore[no-untyped-def]
        from routing.engine.model import AgentProfile

        if certs is None:
            certs = {c.tenant.schema_name: dict(c.skills) for c in self.certifications.all()}
        return AgentProfile(agent_id=self.agent_id, certs=certs, clearance=int(self.clearance))

    def seat(self, certs: dict[str, dict[str, int]] | None = None):  # type: ignore[no-untyped-def]
        from telephony.callflow.directory import AgentSeat

        return AgentSeat(profile=self.profile(certs), endpoint=self.endpoint)

    def clean(self) -> None:
        from telephony.config_checks import built
        from tenants.models import Membership, Role

        if not (self.endpoint or "").strip() or " " in self.endpoint.strip():
            raise ValidationError({"endpoint": _('A dial string such as "user/1001".')})
        built(lambda: self.profile({}), [("agent_id", "agent_id")], default="agent_id")
        if (
            self.user_id is not None
            and not Membership.objects.filter(
                user_id=self.user_id, tenant__isnull=True, role=Role.AGENT
            ).exists()
        ):
            raise ValidationError({"user": _("This person is not a provider agent.")})


class Certification(models.Model):
    """An agent may take a client company's calls, with these skill levels."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="certifications")
    tenant = models.ForeignKey(
        "tenants.Client",
        on_delete=models.CASCADE,
        related_name="certifications",
        verbose_name=_("client"),
    )
    skills = models.JSONField(_("skills"), default=dict, blank=True)  # {skill: level}
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent__agent_id", "tenant__name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "tenant"], name="certification_once"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} @ {self.tenant}"

    def clean(self) -> None:
        from routing.engine.model import AgentProfile
        from telephony.config_checks import built

        if not isinstance(self.skills, dict):
            raise ValidationError({"skills": _("Skills are name=level pairs.")})
        if self.tenant_id is not None and self.tenant.is_provider:
            raise ValidationError({"tenant": _("Choose a client company.")})
        built(
            lambda: AgentProfile("check", {"t": self.skills}),
            default="skills",
        )


class LiveSnapshot(models.Model):
    """The latest snapshot of one live stream (``provider``, ``tenant:<id>``), as
    :func:`routing.live.LiveBoard.snapshot` made it: written by the switchboard's publisher
    about twice a second when the stream changed, read by the wallboard consumer on connect
    and on resync. One row per stream, overwritten in place."""

    stream = models.CharField(max_length=200, unique=True)
    epoch = models.CharField(max_length=100)
    seq = models.BigIntegerField()
    data = models.JSONField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["stream"]

    def __str__(self) -> str:
        return f"{self.stream} #{self.seq}"
