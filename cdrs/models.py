"""Raw FreeSWITCH CDRs, one row per channel leg, stored in the schema of the leg's client.

The body is kept exactly as mod_json_cdr sent it (the ground truth segments are reconciled
against); the columns beside it are extracted once at intake, already URL-decoded, so that
reconciliation and reports never have to parse the body again.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class RawCdr(models.Model):
    class Source(models.TextChoices):
        HTTP = "http", "HTTP post"
        FILE = "file", "error-log file"

    leg_uuid = models.UUIDField(unique=True)
    call_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    core_uuid = models.CharField(max_length=64, blank=True)
    # Nodes live in the public schema; a plain id + name (no cross-schema FK) keeps a node's
    # removal from ever touching client schemas.
    node_id = models.BigIntegerField(null=True, blank=True)
    node_name = models.CharField(max_length=64, blank=True)
    switchname = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.HTTP)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    direction = models.CharField(max_length=16, blank=True)
    channel_name = models.CharField(max_length=255, blank=True)
    did = models.CharField(max_length=64, blank=True)
    caller_id_number = models.CharField(max_length=64, blank=True)
    destination_number = models.CharField(max_length=128, blank=True)
    hangup_cause = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    answered = models.BooleanField(default=False)
    duration_seconds = models.PositiveIntegerField(default=0)
    billsec = models.PositiveIntegerField(default=0)
    billmsec = models.PositiveBigIntegerField(default=0)
    values_encoded = models.BooleanField(
        default=True, help_text="mod_json_cdr encode-values: variables in body are URL-encoded"
    )
    body = models.JSONField()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(source__in=["http", "file"]), name="rawcdr_source"),
        ]

    def __str__(self) -> str:
        return f"CDR {self.leg_uuid} ({self.hangup_cause or '?'})"
