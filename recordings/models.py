"""Call recordings, stored in the schema of the call's client.

The switchboard starts a recording per the client's call policy and reports it
(``recordings.actions.do_register_recording``); the file is written on the switch node and
moved into the platform's store once the call is over (``do_import_recordings``); it is deleted
when its retention ends (``do_purge_recordings``) unless it is under legal hold. Who may play it
is the client's call policy (``telephony.CallPolicy.recording_roles``); every playback is a
:class:`RecordingAccess` row and an audit event. Times from the switch are epoch milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def _clock(ms: int) -> str:
    seconds = int(ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Recording(models.Model):
    class Status(models.TextChoices):
        RECORDING = "recording", _("recording")
        STORED = "stored", _("stored")
        MISSING = "missing", _("missing")
        PURGED = "purged", _("purged")

    call_id = models.CharField(max_length=64, db_index=True)
    path = models.CharField(max_length=500)  # where the switch writes it
    storage_key = models.CharField(max_length=500, blank=True)  # relative to RECORDINGS_ROOT
    started_ms = models.BigIntegerField()
    ended_ms = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # [{"start_ms": int, "end_ms": int | None}, ...]: spans paused while a secret was spoken;
    # the last one is open (end_ms None) while the recording is masked.
    masked_intervals = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECORDING, db_index=True
    )
    retention_until = models.DateTimeField(db_index=True)
    legal_hold = models.BooleanField(default=False)  # never purged while set
    stored_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_ms", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["call_id", "path"], name="recording_once_per_path"),
            models.CheckConstraint(
                condition=Q(status__in=["recording", "stored", "missing", "purged"]),
                name="recording_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="stored") | ~Q(storage_key=""),
                name="recording_stored_has_key",
            ),
        ]

    def __str__(self) -> str:
        return f"recording of call {self.call_id} ({self.status})"

    @property
    def is_masked(self) -> bool:
        return bool(self.masked_intervals) and self.masked_intervals[-1].get("end_ms") is None

    @property
    def playable(self) -> bool:
        return self.status == self.Status.STORED

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_ms / 1000, tz=UTC)

    @property
    def duration_text(self) -> str:
        return "" if self.duration_ms is None else _clock(self.duration_ms)

    @property
    def masked_text(self) -> str:
        """Masked spans from the start, e.g. "0:12-0:31, 1:05-"."""
        return ", ".join(
            f"{_clock(a)}-{'' if b is None else _clock(b)}" for a, b in self.masked_offsets()
        )

    def masked_offsets(self) -> list[tuple[int, int | None]]:
        """Masked spans as (start, end) milliseconds from the recording's start."""
        return [
            (
                max(0, int(i["start_ms"]) - self.started_ms),
                None if i.get("end_ms") is None else max(0, int(i["end_ms"]) - self.started_ms),
            )
            for i in self.masked_intervals or ()
        ]


class RecordingAccess(models.Model):
    """One playback or download of a recording: who, when, from where.

    The user lives in the public schema, so the row keeps the id and a snapshot of the e-mail
    (as the audit log does) rather than a foreign key across schemas.
    """

    class Kind(models.TextChoices):
        PLAY = "play", _("played")
        DOWNLOAD = "download", _("downloaded")

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="accesses")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PLAY)
    user_id = models.BigIntegerField(null=True, blank=True)
    user_email = models.CharField(max_length=254, blank=True)
    role = models.CharField(max_length=32, blank=True)
    site = models.CharField(max_length=16, blank=True)  # "portal" or "console"
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    byte_range = models.CharField(max_length=64, blank=True)
    # The clearance that allowed it: "" (none needed), "agent:<level>" (held on the agent
    # record), "grant:<id>" (a RecordingClearance the client gave this supervisor).
    clearance = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["play", "download"]), name="recording_access_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_email or '-'} {self.kind} recording {self.recording_id} at {self.at}"


class RecordingClearance(models.Model):
    """A client's admin clears a named provider supervisor to play its confidential
    recordings: every queue of the client (``queue_id`` blank) or one queue.

    It stands in for the clearance level a supervisor's agent record would have to hold; the
    call policy must still allow the supervisor role. Users live in the public schema, so
    ids and e-mail snapshots are kept, not foreign keys. A revoked grant keeps its row (who
    granted and revoked it, when); only grants with ``revoked_at`` unset count.
    """

    user_id = models.BigIntegerField()
    user_email = models.CharField(max_length=254)
    queue_id = models.CharField(max_length=63, blank=True)  # blank: all the client's queues
    note = models.CharField(max_length=300, blank=True)
    granted_by_id = models.BigIntegerField(null=True, blank=True)
    granted_by_email = models.CharField(max_length=254, blank=True)
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_by_id = models.BigIntegerField(null=True, blank=True)
    revoked_by_email = models.CharField(max_length=254, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "queue_id"],
                condition=Q(revoked_at__isnull=True),
                name="recording_clearance_one_active",
            ),
        ]

    def __str__(self) -> str:
        scope = f"queue {self.queue_id}" if self.queue_id else "all queues"
        return f"recording clearance of {self.user_email} ({scope})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
