"""Recordings' verbs: register what the switchboard started, mark masking, import, purge.

Every verb names the client company (its schema) explicitly and runs inside
``schema_context(...)``; nothing relies on a schema left set by someone else. The switchboard's
sink calls :func:`do_register_recording` and :func:`do_mark_masked`; the jobs and commands
call :func:`do_import_recordings` and :func:`do_purge_recordings`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context

from recordings.models import Recording
from tenants import audit
from tenants.models import Client

log = logging.getLogger(__name__)

#: Where FreeSWITCH writes recordings on a node (``$${recordings_dir}``); a recording's path is
#: ``<SWITCH_RECORDINGS_DIR>/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav``.
SWITCH_RECORDINGS_DIR = "/var/lib/freeswitch/recordings"
#: Retention when the client has no call policy (the policy's own default).
DEFAULT_RETENTION_DAYS = 90
#: A recording still not on the node this long after it started is marked missing.
DEFAULT_MISSING_AFTER_HOURS = 6.0
#: A file whose call has ended is taken once it has not changed for this long (s).
DEFAULT_SETTLE_S = 5.0
#: A file with no ended call is taken once it has not changed for this long (s).
DEFAULT_IDLE_S = 3600.0

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class RecordingError(ValueError):
    """A recording the switchboard reported cannot be registered; the message says why."""


def recordings_root() -> Path:
    return Path(settings.RECORDINGS_ROOT)


def stored_file(recording: Recording) -> Path | None:
    """The stored file of a recording, or None (not stored; key outside the store)."""
    if not recording.storage_key:
        return None
    root = recordings_root().resolve()
    path = (root / recording.storage_key).resolve()
    if root not in path.parents:
        return None
    return path


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _now_ms() -> int:
    return int(time.time() * 1000)


def retention_days(schema: str) -> int:
    """Days the client keeps recordings: its call policy's, else the default."""
    from telephony.models import CallPolicy

    with schema_context("public"):
        days = (
            CallPolicy.objects.filter(tenant__schema_name=schema)
            .values_list("recording_retention_days", flat=True)
            .first()
        )
    return int(days) if days else DEFAULT_RETENTION_DAYS


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RecordingError(f"{what} {value!r} is not an integer") from None


def do_register_recording(schema: str, data: Mapping[str, Any]) -> Recording:
    """Register a recording the switchboard started (its ``("recording", data)`` notice).

    ``data``: ``call_id``, ``path`` (on the switch), ``started_ms`` (epoch ms); optionally
    ``tenant_id`` (must equal ``schema``). Idempotent by ``(call_id, path)``: a repeated notice
    returns the row already there, unchanged. ``retention_until`` is ``started`` plus the
    client's ``CallPolicy.recording_retention_days`` (90 without a policy).
    """
    tenant_id = data.get("tenant_id")
    if tenant_id not in (None, "") and tenant_id != schema:
        raise RecordingError(f"recording of tenant {tenant_id!r} reported for schema {schema!r}")
    call_id = str(data.get("call_id") or "").strip()
    path = str(data.get("path") or "").strip()
    if not call_id or not path:
        raise RecordingError("a recording needs call_id and path")
    if len(call_id) > 64 or len(path) > 500:
        raise RecordingError("call_id or path too long")
    started_ms = _int(data.get("started_ms"), "started_ms")
    days = retention_days(schema)
    with schema_context(schema):
        recording, created = Recording.objects.get_or_create(
            call_id=call_id,
            path=path,
            defaults={
                "started_ms": started_ms,
                "retention_until": _ms_to_datetime(started_ms) + timedelta(days=days),
            },
        )
    if created:
        log.info("recording of call %s registered for %s: %s", call_id, schema, path)
    return recording


def _recording_first() -> Case:
    """Order key: the recording still being recorded first."""
    return Case(
        When(status=Recording.Status.RECORDING, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )


def do_mark_masked(schema: str, call_id: str, masked: bool, at_ms: int) -> Recording | None:
    """Open (``masked=True``) or close a masked interval of the call's current recording.

    Idempotent: masking a masked recording or unmasking an unmasked one changes nothing (the
    switchboard's sink and the mask API may both report the same change). Returns the
    recording, or None when the call has no recording in this schema.
    """
    at_ms = int(at_ms)
    with schema_context(schema), transaction.atomic():
        recording = (
            Recording.objects.select_for_update()
            .filter(call_id=call_id)
            .exclude(status=Recording.Status.PURGED)
            .order_by(_recording_first(), "-started_ms", "-id")
            .first()
        )
        if recording is None:
            return None
        intervals = list(recording.masked_intervals or [])
        is_open = bool(intervals) and intervals[-1].get("end_ms") is None
        if masked and not is_open:
            intervals.append({"start_ms": max(at_ms, recording.started_ms), "end_ms": None})
        elif not masked and is_open:
            intervals[-1] = {
                "start_ms": intervals[-1]["start_ms"],
                "end_ms": max(at_ms, int(intervals[-1]["start_ms"])),
            }
        else:
            return recording
        recording.masked_intervals = intervals
        recording.save(update_fields=["masked_intervals", "updated_at"])
    return recording


# -- import from a node's recordings folder into the store ----------------------------------


@dataclass
class ImportReport:
    tenant: str
    stored: int = 0
    waiting: int = 0
    missing: int = 0
    adopted: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.tenant}: {self.stored} stored, {self.waiting} waiting, "
            f"{self.missing} missing, {self.adopted} adopted, {len(self.errors)} errors"
        )


def node_file(source_dir: Path, switch_path: str) -> Path:
    """Where a recording the switch wrote at ``switch_path`` is in ``source_dir``.

    ``source_dir`` is the node's recordings folder as this machine sees it (a local path, or a
    mount of the node's). The tenant/yyyy/mm/dd/file tail of the path is kept.
    """
    parts = [p for p in Path(switch_path).parts if p not in ("/", "", ".", "..")]
    return Path(source_dir).joinpath(*parts[-5:])


def _wav_duration_ms(path: Path) -> int | None:
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return int(w.getnframes() * 1000 / rate) if rate else None
    except (wave.Error, EOFError, OSError):
        return None


def _storage_key(schema: str, recording: Recording) -> str:
    day = _ms_to_datetime(recording.started_ms)
    name = f"{_SAFE.sub('_', recording.call_id)}.{recording.pk}.wav"
    return f"{schema}/{day:%Y/%m/%d}/{name}"


def _copy_into_store(source: Path, dest: Path) -> tuple[int, str]:
    """Copy ``source`` to ``dest`` atomically (temp file, fsync, rename); size and SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, tmp.open("wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    return size, digest.hexdigest()


def _call_ended_ms(call_id: str) -> int | None:
    from calls.models import Call

    return Call.objects.filter(call_id=call_id).values_list("ended_ms", flat=True).first()


def do_import_recordings(
    tenant: Client,
    source_dir: str | os.PathLike[str],
    *,
    missing_after_hours: float = DEFAULT_MISSING_AFTER_HOURS,
    settle_s: float = DEFAULT_SETTLE_S,
    idle_s: float = DEFAULT_IDLE_S,
    now_s: float | None = None,
) -> ImportReport:
    """Move the client's finished recordings from a node's folder into the store.

    A file is finished when its call has ended (``calls.Call.ended_ms``) and the file has not
    changed for ``settle_s``, or, without an ended call, has not changed for ``idle_s``. It is
    copied (atomically) to ``RECORDINGS_ROOT/<schema>/<yyyy>/<mm>/<dd>/``, the row becomes
    ``stored`` with its size, SHA-256, duration (from the WAV header) and end, any masked
    interval still open is closed at the end, and the node's file is removed. A recording whose
    file is still not there ``missing_after_hours`` after it started becomes ``missing``
    (logged and audited); a missing one whose file turns up later is stored after all.
    Idempotent: run it as a periodic job.
    """
    now_s = time.time() if now_s is None else now_s
    source_dir = Path(source_dir)
    report = ImportReport(tenant.schema_name)
    missing_before_ms = int((now_s - missing_after_hours * 3600) * 1000)
    with schema_context(tenant.schema_name):
        report.adopted = _adopt_orphans(tenant, source_dir, now_s, settle_s)
        candidates = list(
            Recording.objects.filter(
                status__in=[Recording.Status.RECORDING, Recording.Status.MISSING]
            ).order_by("started_ms", "id")
        )
        for recording in candidates:
            source = node_file(source_dir, recording.path)
            try:
                stat = source.stat()
            except FileNotFoundError:
                if (
                    recording.status == Recording.Status.RECORDING
                    and recording.started_ms < missing_before_ms
                ):
                    _mark_missing(tenant, recording, source, missing_after_hours)
                    report.missing += 1
                else:
                    report.waiting += 1
                continue
            except OSError as exc:
                report.errors.append(f"{recording.call_id}: {exc}")
                continue
            ended_ms = _call_ended_ms(recording.call_id)
            quiet_s = now_s - stat.st_mtime
            if not (
                (ended_ms is not None and quiet_s >= settle_s)
                or quiet_s >= idle_s
                or recording.status == Recording.Status.MISSING
            ):
                report.waiting += 1
                continue
            try:
                _store(tenant, recording, source, ended_ms)
            except OSError as exc:
                log.error("recording of call %s not stored: %s", recording.call_id, exc)
                report.errors.append(f"{recording.call_id}: {exc}")
                continue
            report.stored += 1
    return report


def _adopt_orphans(tenant: Client, source_dir: Path, now_s: float, settle_s: float) -> int:
    """Register the client's files on the node that no recording row names.

    The switchboard reports each recording it starts; should that report be lost (its sink
    down at the time), the file on the node still names its client and call
    (``<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav``), so it is registered here rather than left
    behind. Its start is the call's, or else the file's time less its length.
    """
    from calls.models import Call

    folder = source_dir / tenant.schema_name
    if not folder.is_dir():
        return 0
    adopted = 0
    for file in sorted(folder.glob("*/*/*/*.wav")):
        rel = file.relative_to(source_dir)
        path = f"{SWITCH_RECORDINGS_DIR}/{rel.as_posix()}"
        call_id = file.stem
        if Recording.objects.filter(path=path).exists() or len(call_id) > 64:
            continue
        try:
            mtime = file.stat().st_mtime
        except OSError:
            continue
        if now_s - mtime < settle_s:
            continue  # still being written, perhaps before its report arrives
        started_ms = (
            Call.objects.filter(call_id=call_id).values_list("started_ms", flat=True).first()
        )
        if started_ms is None:
            started_ms = int(mtime * 1000) - (_wav_duration_ms(file) or 0)
        do_register_recording(
            tenant.schema_name, {"call_id": call_id, "path": path, "started_ms": started_ms}
        )
        log.warning("recording %s had no report from the switchboard; adopted", path)
        adopted += 1
    return adopted


def _mark_missing(tenant: Client, recording: Recording, source: Path, hours: float) -> None:
    log.warning(
        "recording of call %s (%s) missing: %s not there %.1f h after it started",
        recording.call_id,
        tenant.schema_name,
        source,
        hours,
    )
    with transaction.atomic():
        recording.status = Recording.Status.MISSING
        recording.save(update_fields=["status", "updated_at"])
        with schema_context("public"):
            audit.record(
                "recording.missing",
                tenant=tenant,
                obj=recording,
                details={"call_id": recording.call_id, "path": recording.path},
            )


def _store(tenant: Client, recording: Recording, source: Path, ended_ms: int | None) -> None:
    key = _storage_key(tenant.schema_name, recording)
    dest = recordings_root() / key
    size, sha = _copy_into_store(source, dest)
    duration = _wav_duration_ms(dest)
    if duration is not None:
        end = recording.started_ms + duration
    else:
        end = ended_ms
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        intervals = list(recording.masked_intervals or [])
        if intervals and intervals[-1].get("end_ms") is None:
            close_at = end if end is not None else _now_ms()
            intervals[-1] = {
                "start_ms": intervals[-1]["start_ms"],
                "end_ms": max(close_at, int(intervals[-1]["start_ms"])),
            }
        recording.masked_intervals = intervals
        recording.storage_key = key
        recording.size_bytes = size
        recording.sha256 = sha
        recording.duration_ms = duration
        recording.ended_ms = end
        recording.status = Recording.Status.STORED
        recording.stored_at = timezone.now()
        recording.save()
    try:
        source.unlink()
    except OSError as exc:  # stored all the same; the node's copy stays behind
        log.warning("recording of call %s stored, node file kept: %s", recording.call_id, exc)
    log.info("recording of call %s stored as %s", recording.call_id, key)


# -- retention ----------------------------------------------------------------------------


@dataclass
class PurgeReport:
    tenant: str
    purged: int = 0
    held: int = 0
    retention_changed: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.tenant}: {self.purged} purged, {self.held} kept under legal hold, "
            f"{len(self.errors)} errors"
        )


def _apply_retention(days: int) -> int:
    """Set ``retention_until`` = start + ``days`` where it differs (one UPDATE)."""
    table = connection.ops.quote_name(Recording._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET retention_until ="  # noqa: S608 - the table name is ours
            " to_timestamp(started_ms / 1000.0) + make_interval(days => %s)"
            " WHERE status <> 'purged' AND retention_until IS DISTINCT FROM"
            " to_timestamp(started_ms / 1000.0) + make_interval(days => %s)",
            [days, days],
        )
        return cursor.rowcount


def do_purge_recordings(tenant: Client, *, now: datetime | None = None) -> PurgeReport:
    """Delete the client's recordings whose retention has ended; never one under legal hold.

    Retention follows the client's call policy as it is now: ``retention_until`` of every
    recording not yet purged is first brought in line with the policy's days (a client that
    shortens its retention has older recordings deleted at the next run; one that lengthens
    it keeps them longer). Stored and missing recordings past ``retention_until`` then lose
    their file and become ``purged`` (the row stays, as the record that it existed and when it
    went); each purge is audited. Idempotent.
    """
    now = now or timezone.now()
    report = PurgeReport(tenant.schema_name)
    days = retention_days(tenant.schema_name)
    with schema_context(tenant.schema_name):
        report.retention_changed = _apply_retention(days)
        due = Recording.objects.filter(
            status__in=[Recording.Status.STORED, Recording.Status.MISSING],
            retention_until__lte=now,
        )
        report.held = due.filter(legal_hold=True).count()
        for recording in due.filter(legal_hold=False).order_by("retention_until", "id"):
            path = stored_file(recording)
            try:
                if path is not None:
                    path.unlink(missing_ok=True)
            except OSError as exc:
                report.errors.append(f"{recording.call_id}: {exc}")
                continue
            with transaction.atomic():
                was = recording.status
                recording.status = Recording.Status.PURGED
                recording.purged_at = now
                recording.save(update_fields=["status", "purged_at", "updated_at"])
                with schema_context("public"):
                    audit.record(
                        "recording.purged",
                        tenant=tenant,
                        obj=recording,
                        details={
                            "call_id": recording.call_id,
                            "was": was,
                            "storage_key": recording.storage_key,
                            "retention_until": recording.retention_until.isoformat(),
                        },
                    )
            report.purged += 1
    return report


# -- clearance grants (a client's admin clears named provider supervisors) -------------------
class ClearanceError(ValueError):
    """A grant or revocation that cannot be made; the message says why (shown to the user)."""


def do_grant_clearance(
    tenant: Client,
    supervisor: Any,
    *,
    queue_id: str = "",
    note: str = "",
    actor: Any,
    request: Any = None,
) -> Any:
    """Clear ``supervisor`` (a provider user with the supervisor role) to play ``tenant``'s
    recordings of ``queue_id`` (blank: every queue); audited. One active grant per
    supervisor and scope: granting it again is an error, not a second row."""
    from django.db import IntegrityError

    from recordings.models import RecordingClearance
    from tenants.access import provider_role
    from tenants.models import Role

    if not supervisor.is_active or provider_role(supervisor) != Role.SUPERVISOR:
        raise ClearanceError(_("%(who)s is not a provider supervisor.") % {"who": supervisor.email})
    try:
        with schema_context(tenant.schema_name), transaction.atomic():
            grant = RecordingClearance.objects.create(
                user_id=supervisor.pk,
                user_email=supervisor.email,
                queue_id=queue_id,
                note=note[:300],
                granted_by_id=actor.pk,
                granted_by_email=actor.email,
            )
            with schema_context("public"):
                audit.record(
                    "recording.clearance_granted",
                    actor=actor,
                    request=request,
                    tenant=tenant,
                    obj=grant,
                    details={
                        "supervisor_id": supervisor.pk,
                        "supervisor": supervisor.email,
                        "queue_id": queue_id or None,
                        "grant_id": grant.pk,
                        "note": note[:300],
                    },
                )
    except IntegrityError:
        if queue_id:
            message = _("%(who)s is already cleared for queue %(queue)s.") % {
                "who": supervisor.email,
                "queue": queue_id,
            }
        else:
            message = _("%(who)s is already cleared for all queues.") % {"who": supervisor.email}
        raise ClearanceError(message) from None
    return grant


def do_revoke_clearance(tenant: Client, grant_id: int, *, actor: Any, request: Any = None) -> Any:
    """Revoke an active grant of ``tenant`` (kept, with who revoked it and when); audited.
    Raises ``RecordingClearance.DoesNotExist`` for an unknown id, :class:`ClearanceError`
    for one already revoked."""
    from recordings.models import RecordingClearance

    with schema_context(tenant.schema_name), transaction.atomic():
        grant = RecordingClearance.objects.select_for_update().get(pk=grant_id)
        if grant.revoked_at is not None:
            raise ClearanceError(
                _("This clearance of %(who)s was already revoked.") % {"who": grant.user_email}
            )
        grant.revoked_at = timezone.now()
        grant.revoked_by_id = actor.pk
        grant.revoked_by_email = actor.email
        grant.save(update_fields=["revoked_at", "revoked_by_id", "revoked_by_email"])
        with schema_context("public"):
            audit.record(
                "recording.clearance_revoked",
                actor=actor,
                request=request,
                tenant=tenant,
                obj=grant,
                details={
                    "supervisor_id": grant.user_id,
                    "supervisor": grant.user_email,
                    "queue_id": grant.queue_id or None,
                    "grant_id": grant.pk,
                },
            )
    return grant
