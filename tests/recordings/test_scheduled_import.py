"""The recordings import runs by itself: a periodic job every minute queues one import per
client company and configured node folder, and a real worker runs them; running it again
imports nothing twice."""

from __future__ import annotations

import json
import os
import time

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from recordings import tasks
from recordings.models import Recording

from .conftest import T0_MS, switch_path, wav_bytes

IMPORT_TASK = "recordings.tasks.import_tenant_recordings"
PERIODIC_TASK = "recordings.tasks.import_all_recordings"


def _jobs() -> list[tuple[int, str, dict, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, status, args, queueing_lock FROM procrastinate_jobs"
            " WHERE task_name = %s ORDER BY id",
            [IMPORT_TASK],
        )
        return [
            (pk, status, json.loads(args) if isinstance(args, str) else args, lock)
            for pk, status, args, lock in cursor.fetchall()
        ]


def _clean_jobs() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM procrastinate_periodic_defers WHERE task_name = %s", [PERIODIC_TASK]
        )
        cursor.execute(
            "DELETE FROM procrastinate_jobs WHERE task_name IN (%s, %s)",
            [IMPORT_TASK, PERIODIC_TASK],
        )


def _run_worker() -> None:
    from procrastinate.contrib.django import app

    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(
            queues=["recordings"], wait=False, install_signal_handlers=False, listen_notify=False
        )


@pytest.fixture
def committed(django_db_setup, django_db_blocker, settings, tmp_path):  # type: ignore[no-untyped-def]
    """Rows a worker can see (committed), removed afterwards; a node folder and a store."""
    node = tmp_path / "node-1"
    node.mkdir()
    settings.RECORDINGS_ROOT = tmp_path / "store"
    settings.RECORDINGS_IMPORT_SOURCES = [str(node)]
    with django_db_blocker.unblock():
        _clean_jobs()
        yield node
        with schema_context("alpha"):
            from calls.models import Call

            Recording.objects.filter(call_id__startswith="sched-").delete()
            Call.objects.filter(call_id__startswith="sched-").delete()
        _clean_jobs()
        connection.set_schema_to_public()


def test_nothing_is_queued_without_configured_folders(settings, db) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_IMPORT_SOURCES = []
    assert tasks.import_all_recordings(timestamp=0) == 0
    assert _jobs() == []


def test_the_periodic_job_is_registered_every_minute() -> None:
    from procrastinate.contrib.django import app

    periodic = {p.periodic_id: p for p in app.periodic_registry.periodic_tasks.values()}
    job = periodic["import_recordings_every_minute"]
    assert job.cron == "* * * * *" and job.task.name == "recordings.tasks.import_all_recordings"


def test_every_minute_each_tenant_is_imported_once_and_never_twice(committed) -> None:  # type: ignore[no-untyped-def]
    from calls.models import Call
    from recordings.actions import do_register_recording, stored_file

    node = committed
    do_register_recording(
        "alpha",
        {"call_id": "sched-1", "path": switch_path("alpha", "sched-1"), "started_ms": T0_MS},
    )
    with schema_context("alpha"):
        Call.objects.create(
            call_id="sched-1",
            a_leg_uuid="00000000-0000-4000-8000-00000000abcd",
            origin="direct",
            started_ms=T0_MS,
            ended_ms=T0_MS + 2000,
        )
    source = node / "alpha/2026/11/18/sched-1.wav"
    source.parent.mkdir(parents=True)
    data = wav_bytes(1.0)
    source.write_bytes(data)
    old = time.time() - 60
    os.utime(source, (old, old))
    connection.set_schema_to_public()

    assert tasks.import_all_recordings(timestamp=0) == 2  # alpha and beta, from node-1
    assert tasks.import_all_recordings(timestamp=60) == 0  # still waiting: not queued again
    jobs = _jobs()
    assert sorted(j[2]["tenant_schema"] for j in jobs) == ["alpha", "beta"]
    assert {j[2]["source_dir"] for j in jobs} == {str(node)}

    # The worker also defers the periodic job itself when its minute is due (which queues
    # and runs this minute's imports): every import job succeeds, whichever queued it.
    _run_worker()
    assert {j[1] for j in _jobs()} == {"succeeded"} and len(_jobs()) >= 2
    with schema_context("alpha"):
        rec = Recording.objects.get(call_id="sched-1")
    assert rec.status == Recording.Status.STORED and not source.exists()
    path = stored_file(rec)
    assert path is not None and path.read_bytes() == data
    stored_at = rec.stored_at

    # The next minutes: queued again, run again, nothing imported twice.
    before = len(_jobs())
    assert tasks.import_all_recordings(timestamp=120) == 2
    _run_worker()
    assert {j[1] for j in _jobs()} == {"succeeded"} and len(_jobs()) >= before + 2
    with schema_context("alpha"):
        assert Recording.objects.filter(call_id__startswith="sched-").count() == 1
        assert Recording.objects.get(call_id="sched-1").stored_at == stored_at
    stored = [p for p in (path.parents[3]).rglob("*.wav")]
    assert stored == [path]
