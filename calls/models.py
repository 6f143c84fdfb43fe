"""Calls as the switchboard metered them, stored in the schema of the call's client.

A :class:`Call` keeps the meter's state (``meter_state``, :meth:`CallMeter.to_dict`) so a
restarted switchboard can resume it; its :class:`Leg` rows name every channel of the call and
its :class:`Segment` rows are the metered spans (shared/design/segments.md). Reconciliation
against the legs' CDRs (``cdrs.RawCdr``, same schema) decides what billing rates
(``calls.actions.do_reconcile``); a CDR no call accounts for becomes a :class:`CdrFlag`.
All times are integer epoch milliseconds from the switch's events.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Call(models.Model):
    class Outcome(models.TextChoices):
        LIVE = "", "in progress"
        IVR = "ivr", "ended in the IVR"
        ANSWERED = "answered", "answered by an agent"
        ABANDONED = "abandoned", "abandoned"
        OVERFLOWED = "overflowed", "overflowed out"
        ESCALATED = "escalated", "escalated to the second line"
        CALLBACK = "callback", "callback accepted"
        FAILED = "failed", "failed"

    class Reconcile(models.TextChoices):
        WAITING = "waiting", "waiting for CDRs"
        OK = "ok", "matches its CDRs"
        MISMATCH = "mismatch", "differs from its CDRs (not billed)"
        FLAGGED = "flagged", "matches, but a CDR of the call has no segments"

    call_id = models.CharField(max_length=64, unique=True)
    parent_call_id = models.CharField(max_length=64, blank=True)  # a callback's original call
    a_leg_uuid = models.UUIDField(db_index=True)
    origin = models.CharField(max_length=16)
    did = models.CharField(max_length=64, blank=True)
    caller_number = models.CharField(max_length=64, blank=True)
    node = models.CharField(max_length=64, blank=True)
    started_ms = models.BigIntegerField(null=True, blank=True)
    answered_ms = models.BigIntegerField(null=True, blank=True)
    ended_ms = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    cause = models.CharField(max_length=64, blank=True)
    queue = models.CharField(max_length=64, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    meter_state = models.JSONField(default=dict)
    meter_complete = models.BooleanField(default=False)
    rejected_events = models.PositiveIntegerField(default=0)
    reconcile_status = models.CharField(
        max_length=16, choices=Reconcile.choices, default=Reconcile.WAITING, db_index=True
    )
    reconcile_messages = models.JSONField(default=list, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    rated = models.BooleanField(default=False)
    rated_at = models.DateTimeField(null=True, blank=True)
    rating_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_ms", "-id"]
        indexes = [
            models.Index(fields=["reconcile_status", "rated"], name="calls_to_reconcile"),
            # The portal's call history: newest first, by day.
            models.Index(fields=["-started_ms", "-id"], name="calls_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(origin__in=["direct", "overflow", "callback"]), name="call_origin"
            ),
            models.CheckConstraint(
                condition=Q(rated=False) | Q(reconcile_status__in=["ok", "flagged"]),
                name="call_rated_only_when_reconciled",
            ),
        ]

    def __str__(self) -> str:
        return f"call {self.call_id} ({self.outcome or 'live'})"


class Leg(models.Model):
    class Role(models.TextChoices):
        A = "a", "caller (A leg)"
        AGENT = "agent", "provider agent"
        ESCALATION = "escalation", "client's second line"
        CALLBACK = "callback", "callback to the caller (A leg)"

    uuid = models.UUIDField(unique=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="legs")
    role = models.CharField(max_length=16, choices=Role.choices)
    node = models.CharField(max_length=64, blank=True)
    answered_ms = models.BigIntegerField(null=True, blank=True)
    ended_ms = models.BigIntegerField(null=True, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    target = models.CharField(max_length=128, blank=True)

    def __str__(self) -> str:
        return f"{self.role} leg {self.uuid}"


class Segment(models.Model):
    """One metered span (segments.md). ``start_ms``/``end_ms`` are as metered;
    ``billed_start_ms``/``billed_end_ms`` are what reconciliation gave billing (snapped onto
    the CDR's edges) once the call is rated."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="segments")
    leg_uuid = models.UUIDField()
    kind = models.CharField(max_length=16)
    origin = models.CharField(max_length=16)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()
    agent = models.CharField(max_length=64, blank=True)
    queue = models.CharField(max_length=64, blank=True)
    target = models.CharField(max_length=128, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    billed_start_ms = models.BigIntegerField(null=True, blank=True)
    billed_end_ms = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["call", "start_ms", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["leg_uuid", "kind", "start_ms"], name="calls_segment_once"
            ),
            models.CheckConstraint(
                condition=Q(end_ms__gte=models.F("start_ms")), name="segment_span"
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=["ivr", "queue", "agent", "handoff", "escalation", "callback_dial"]
                ),
                name="segment_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.leg_uuid} {self.start_ms}..{self.end_ms}"

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class CdrFlag(models.Model):
    """A CDR that reconciliation could not account for (shown to the provider)."""

    class Reason(models.TextChoices):
        CDR_WITHOUT_SEGMENTS = "cdr_without_segments", "answered leg with no segments"

    cdr_uuid = models.UUIDField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.SET_NULL)
    message = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Resolved by provider staff (the users live in the public schema: a plain id and an
    # e-mail snapshot, no cross-schema foreign key). The audit log keeps the full record.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_id = models.BigIntegerField(null=True, blank=True)
    resolved_by_email = models.CharField(max_length=254, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["cdr_uuid", "reason"], name="calls_cdrflag_once")
        ]

    def __str__(self) -> str:
        return f"CDR {self.cdr_uuid}: {self.reason}"
