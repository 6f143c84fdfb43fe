"""Registering, masking, importing and purging recordings (recordings.actions)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from recordings.actions import (
    RecordingError,
    do_import_recordings,
    do_mark_masked,
    do_purge_recordings,
    do_register_recording,
    stored_file,
)
from recordings.models import Recording
from tenants.models import AuditEvent
from tests.recordings.conftest import T0_MS, switch_path, wav_bytes

DAY_MS = 86_400_000


def _notice(call_id: str = "c-9", schema: str = "alpha", started_ms: int = T0_MS) -> dict:
    return {
        "tenant_id": schema,
        "call_id": call_id,
        "path": switch_path(schema, call_id),
        "started_ms": started_ms,
    }


def test_registration_is_idempotent_and_retention_follows_the_policy(cast, policy):  # type: ignore[no-untyped-def]
    first = do_register_recording("alpha", _notice())
    again = do_register_recording("alpha", _notice())
    assert again.pk == first.pk
    with schema_context("alpha"):
        assert Recording.objects.filter(call_id="c-9").count() == 1
        rec = Recording.objects.get(call_id="c-9")
    assert rec.status == Recording.Status.RECORDING
    assert rec.started_ms == T0_MS
    started = datetime.fromtimestamp(T0_MS / 1000, tz=UTC)
    assert rec.retention_until == started + timedelta(days=30)
    # Another path of the same call (a second recording) is its own row.
    other = do_register_recording("alpha", {**_notice(), "path": "/elsewhere/c-9.wav"})
    assert other.pk != first.pk


def test_retention_without_a_policy_is_ninety_days(cast):  # type: ignore[no-untyped-def]
    rec = do_register_recording("beta", _notice(schema="beta"))
    started = datetime.fromtimestamp(T0_MS / 1000, tz=UTC)
    assert rec.retention_until == started + timedelta(days=90)
    with schema_context("alpha"):
        assert not Recording.objects.filter(call_id="c-9").exists()  # never in another schema
    with schema_context("beta"):
        assert Recording.objects.filter(call_id="c-9").exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"tenant_id": "beta"},
        {"call_id": ""},
        {"path": ""},
        {"started_ms": "soon"},
        {"call_id": "x" * 65},
    ],
)
def test_registration_refuses_bad_notices(cast, bad):  # type: ignore[no-untyped-def]
    with pytest.raises(RecordingError):
        do_register_recording("alpha", {**_notice(), **bad})


def test_masked_intervals_open_and_close_idempotently(cast, policy):  # type: ignore[no-untyped-def]
    assert do_mark_masked("alpha", "c-9", True, T0_MS) is None  # no recording yet
    do_register_recording("alpha", _notice())
    do_mark_masked("alpha", "c-9", True, T0_MS + 10_000)
    do_mark_masked("alpha", "c-9", True, T0_MS + 11_000)  # already masked: nothing
    rec = do_mark_masked("alpha", "c-9", False, T0_MS + 25_000)
    assert rec is not None
    do_mark_masked("alpha", "c-9", False, T0_MS + 26_000)  # already unmasked: nothing
    do_mark_masked("alpha", "c-9", True, T0_MS + 40_000)
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="c-9")
    assert rec.masked_intervals == [
        {"start_ms": T0_MS + 10_000, "end_ms": T0_MS + 25_000},
        {"start_ms": T0_MS + 40_000, "end_ms": None},
    ]
    assert rec.is_masked
    assert rec.masked_text == "0:10-0:25, 0:40-"


def _call(call_id: str, ended_ms: int | None) -> None:
    from calls.models import Call

    with schema_context("alpha"):
        Call.objects.create(
            call_id=call_id,
            a_leg_uuid=uuid.uuid4(),
            origin="direct",
            started_ms=T0_MS,
            ended_ms=ended_ms,
        )


def _node_file(node_dir, call_id: str, seconds: float = 1.5):  # type: ignore[no-untyped-def]
    path = node_dir / "alpha/2026/11/18" / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wav_bytes(seconds)
    path.write_bytes(data)
    return path, data


def test_import_moves_a_finished_file_into_the_store(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    do_register_recording("alpha", _notice("c-1"))
    do_mark_masked("alpha", "c-1", True, T0_MS + 500)  # still masked when the call ended
    _call("c-1", T0_MS + 2000)
    source, data = _node_file(node_dir, "c-1", seconds=1.5)
    report = do_import_recordings(cast.a, node_dir, settle_s=0)
    assert (report.stored, report.waiting, report.missing) == (1, 0, 0)
    assert not source.exists()
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="c-1")
    assert rec.status == Recording.Status.STORED
    assert rec.storage_key.startswith("alpha/2026/11/18/")
    path = stored_file(rec)
    assert path is not None and path.read_bytes() == data
    assert store in path.parents
    assert rec.size_bytes == len(data)
    assert rec.sha256 == hashlib.sha256(data).hexdigest()
    assert rec.duration_ms == 1500
    assert rec.ended_ms == T0_MS + 1500
    assert rec.masked_intervals == [{"start_ms": T0_MS + 500, "end_ms": T0_MS + 1500}]
    # Again: nothing more to do.
    again = do_import_recordings(cast.a, node_dir, settle_s=0)
    assert (again.stored, again.waiting, again.missing) == (0, 0, 0)


def test_import_waits_for_a_live_call_and_a_fresh_file(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    do_register_recording("alpha", _notice("c-2"))
    _call("c-2", None)  # still talking
    source, _data = _node_file(node_dir, "c-2")
    report = do_import_recordings(cast.a, node_dir, settle_s=0, idle_s=3600)
    assert (report.stored, report.waiting) == (0, 1)
    assert source.exists()
    # An hour without a change: taken even though no call ended it (a lost call).
    old = time.time() - 7200
    os.utime(source, (old, old))
    report = do_import_recordings(cast.a, node_dir, settle_s=0, idle_s=3600)
    assert report.stored == 1


def test_a_recording_never_found_becomes_missing_and_is_audited(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    now_s = T0_MS / 1000 + 3600
    do_register_recording("alpha", _notice("c-3"))
    report = do_import_recordings(cast.a, node_dir, missing_after_hours=2, now_s=now_s)
    assert (report.missing, report.waiting) == (0, 1)  # an hour: still waiting
    report = do_import_recordings(cast.a, node_dir, missing_after_hours=2, now_s=now_s + 2 * 3600)
    assert report.missing == 1
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="c-3")
    assert rec.status == Recording.Status.MISSING
    event = AuditEvent.objects.get(action="recording.missing", object_id=str(rec.pk))
    assert event.tenant_id == cast.a.pk
    assert event.details["call_id"] == "c-3"
    # The file turns up after all (a node back from maintenance): stored.
    _node_file(node_dir, "c-3")
    report = do_import_recordings(cast.a, node_dir, now_s=now_s + 3 * 3600)
    assert report.stored == 1
    with schema_context("alpha"):
        assert Recording.objects.get(call_id="c-3").status == Recording.Status.STORED


def test_purge_deletes_past_retention_but_never_under_legal_hold(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    for call_id, start in (("p-old", T0_MS), ("p-held", T0_MS), ("p-new", T0_MS + 20 * DAY_MS)):
        do_register_recording("alpha", _notice(call_id, started_ms=start))
        _call(call_id, T0_MS + 1000)
        _node_file(node_dir, call_id)
    do_import_recordings(cast.a, node_dir, settle_s=0)
    with schema_context("alpha"):
        Recording.objects.filter(call_id="p-held").update(legal_hold=True)
        files = {r.call_id: stored_file(r) for r in Recording.objects.all()}
    now = datetime.fromtimestamp(T0_MS / 1000, tz=UTC) + timedelta(days=31)
    report = do_purge_recordings(cast.a, now=now)
    assert (report.purged, report.held) == (1, 1)
    with schema_context("alpha"):
        status = dict(Recording.objects.values_list("call_id", "status"))
        old = Recording.objects.get(call_id="p-old")
    assert status == {"p-old": "purged", "p-held": "stored", "p-new": "stored"}
    assert old.purged_at == now
    assert not files["p-old"].exists()
    assert files["p-held"].exists() and files["p-new"].exists()
    event = AuditEvent.objects.get(action="recording.purged", object_id=str(old.pk))
    assert event.tenant_id == cast.a.pk and event.details["was"] == "stored"
    # Idempotent.
    assert do_purge_recordings(cast.a, now=now).purged == 0


def test_commands_import_and_purge(cast, policy, store, node_dir, capsys):  # type: ignore[no-untyped-def]
    do_register_recording("alpha", _notice("m-1"))
    _call("m-1", T0_MS + 1000)
    _node_file(node_dir, "m-1")
    call_command("import_recordings", "--source", str(node_dir), "--settle", "0")
    out = capsys.readouterr().out
    assert "alpha: 1 stored" in out
    assert "beta: 0 stored" in out
    policy.recording_retention_days = 1  # and the call was days ago
    policy.save()
    call_command("purge_recordings", "--tenant", "alpha")
    assert "alpha: 1 purged" in capsys.readouterr().out
    with schema_context("alpha"):
        assert Recording.objects.get(call_id="m-1").status == Recording.Status.PURGED


def test_a_file_without_a_report_is_adopted_and_stored(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    _call("lost-1", T0_MS + 1000)
    source, data = _node_file(node_dir, "lost-1")
    old = time.time() - 60
    os.utime(source, (old, old))
    # A file of another client in alpha's run is none of alpha's business.
    other = node_dir / "beta/2026/11/18/b-1.wav"
    other.parent.mkdir(parents=True)
    other.write_bytes(data)
    report = do_import_recordings(cast.a, node_dir, settle_s=5)
    assert (report.adopted, report.stored) == (1, 1)
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="lost-1")
        assert not Recording.objects.filter(call_id="b-1").exists()
    assert rec.path == switch_path("alpha", "lost-1")
    assert rec.started_ms == T0_MS and rec.status == Recording.Status.STORED
    assert stored_file(rec).read_bytes() == data
    assert other.exists()
    # A file still being written is left for the next run.
    fresh, _data = _node_file(node_dir, "lost-2")
    report = do_import_recordings(cast.a, node_dir, settle_s=5)
    assert report.adopted == 0 and fresh.exists()


def test_jobs_are_queued_per_tenant(cast):  # type: ignore[no-untyped-def]
    from procrastinate.contrib.django.models import ProcrastinateJob

    from recordings import tasks

    assert tasks.purge_all_recordings(timestamp=0) == 2
    jobs = ProcrastinateJob.objects.filter(task_name="recordings.tasks.purge_tenant_recordings")
    assert sorted(j.args["tenant_schema"] for j in jobs) == ["alpha", "beta"]
    assert {j.queue_name for j in jobs} == {"recordings"}
    tasks.import_tenant_recordings.defer(tenant_schema="alpha", source_dir="/srv/node-1")
    job = ProcrastinateJob.objects.filter(
        task_name="recordings.tasks.import_tenant_recordings"
    ).latest("id")
    assert job.args == {"tenant_schema": "alpha", "source_dir": "/srv/node-1"}


def test_purge_follows_the_policy_as_it_is_now(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    do_register_recording("alpha", _notice("r-1"))
    _call("r-1", T0_MS + 1000)
    _node_file(node_dir, "r-1")
    do_import_recordings(cast.a, node_dir, settle_s=0)
    started = datetime.fromtimestamp(T0_MS / 1000, tz=UTC)
    day_12 = started + timedelta(days=12)
    assert do_purge_recordings(cast.a, now=day_12).purged == 0  # 30 days
    policy.recording_retention_days = 10
    policy.save()
    report = do_purge_recordings(cast.a, now=day_12)
    assert (report.retention_changed, report.purged) == (1, 1)
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="r-1")
    assert rec.status == Recording.Status.PURGED
    assert rec.retention_until == started + timedelta(days=10)
