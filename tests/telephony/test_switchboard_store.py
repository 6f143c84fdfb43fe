"""The switchboard's Django side: calls recorded per tenant, caller lookup, the leader lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from switchboard_world import did_of, make_directory, start_world

pytestmark = [pytest.mark.django_db]


def test_finished_calls_land_in_their_tenants_schema_with_segments(cast):  # type: ignore[no-untyped-def]
    """Real switchboard output (two calls, two tenants) stored by ``record_call``.

    The switchboard runs in its own loop first; its summaries are then stored from this sync
    test (inside a running loop Django would hand out another connection, outside the test's
    transaction)."""
    from django_tenants.utils import schema_context

    from calls.models import Call, Segment
    from telephony.switchboard_store import record_call

    directory = make_directory(("alpha", "beta"), agents=2)

    async def scenario():  # type: ignore[no-untyped-def]
        world = await start_world(directory)
        try:
            from test_switchboard import place

            await place(world, did_of("alpha"), number="+380509990001", digits="1")
            await place(world, did_of("beta"), number="+380509990002", digits="1")
            await world.settle()
        finally:
            await world.close()
        return world

    world = asyncio.run(scenario())
    summaries = list(world.sink.calls.values())
    assert [record_call(s) for s in summaries] == ["recorded", "recorded"]
    assert [record_call(s) for s in summaries] == ["recorded", "recorded"]  # again: idempotent
    with schema_context("alpha"):
        [call] = Call.objects.all()
        assert call.caller_number == "+380509990001"
        assert call.outcome == "answered"
        kinds = list(
            Segment.objects.filter(call=call).order_by("start_ms").values_list("kind", flat=True)
        )
        assert kinds == ["ivr", "queue", "agent"]
    with schema_context("beta"):
        assert Call.objects.get().caller_number == "+380509990002"


def test_lookup_finds_the_tenants_contact_only(cast):  # type: ignore[no-untyped-def]
    from django_tenants.utils import schema_context

    from portal.models import Contact
    from telephony.switchboard_store import lookup_contact

    with schema_context("alpha"):
        Contact.objects.create(name="Olena", phone="+380509990001", vip=True)
    found = lookup_contact("alpha", "+380509990001")
    assert found is not None and found["vip"] is True and found["name"] == "Olena"
    assert found["priority"] == 1
    assert lookup_contact("beta", "+380509990001") is None
    assert lookup_contact("alpha", "") is None


def test_webhook_signature_is_hmac_of_timestamp_and_body() -> None:
    import hashlib
    import hmac

    from telephony.switchboard_store import sign

    body = b'{"caller":"+380509990001"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, 1700000000) == expected
    assert sign("other", body, 1700000000) != expected


@pytest.mark.asyncio
async def test_standby_takes_the_leader_lock_when_the_active_process_is_killed() -> None:
    from django.db import connection

    from telephony.switchboard_store import LeaderLock

    db = connection.settings_dict
    dsn = " ".join(
        f"{k}={v}"
        for k, v in {
            "dbname": db["NAME"],
            "user": db["USER"],
            "password": db["PASSWORD"],
            "host": db["HOST"],
            "port": db["PORT"],
        }.items()
        if v
    )
    script = (
        "import asyncio,sys\n"
        "from telephony.switchboard_store import LeaderLock\n"
        "async def main():\n"
        f"    lock = LeaderLock({dsn!r}, 'test-lock')\n"
        "    await lock.acquire()\n"
        "    print('held', flush=True)\n"
        "    await asyncio.sleep(120)\n"
        "asyncio.run(main())\n"
    )
    active = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert active.stdout is not None
        assert (await asyncio.to_thread(active.stdout.readline)).strip() == "held"
        standby = LeaderLock(dsn, "test-lock")
        waiting = asyncio.ensure_future(standby.acquire(poll_s=0.1))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the standby must not lead while the active one lives"
        killed_at = time.monotonic()
        active.kill()  # kill -9: no clean-up, the database session just dies
        await asyncio.wait_for(waiting, 10)
        takeover = time.monotonic() - killed_at
        assert takeover < 10
        await standby.release()
    finally:
        active.kill()
        active.wait()


def test_recording_and_masking_notices_reach_the_tenants_recordings(cast) -> None:  # type: ignore[no-untyped-def]
    from django_tenants.utils import schema_context

    from recordings.models import Recording
    from telephony.switchboard_store import mark_masked, register_recording

    data = {
        "tenant_id": "alpha",
        "call_id": "c-rec-1",
        "path": "/var/lib/freeswitch/recordings/alpha/c-rec-1.wav",
        "started_ms": 1_795_000_000_000,
    }
    register_recording(data)
    register_recording(data)  # a repeated notice changes nothing
    mark_masked(
        {"tenant_id": "alpha", "call_id": "c-rec-1", "masked": True, "at_ms": 1_795_000_010_000}
    )
    mark_masked(
        {"tenant_id": "alpha", "call_id": "c-rec-1", "masked": False, "at_ms": 1_795_000_020_000}
    )
    with schema_context("alpha"):
        [rec] = Recording.objects.filter(call_id="c-rec-1")
        assert (
            rec.masked_intervals == [[1_795_000_010_000, 1_795_000_020_000]]
            or len(rec.masked_intervals) == 1
        )
    with schema_context("beta"):
        assert not Recording.objects.filter(call_id="c-rec-1").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outbound", "nonsense"], "--outbound: expected HOST:PORT, got 'nonsense'"),
        (["--outbound", "127.0.0.1:99999"], "--outbound: expected HOST:PORT"),
        (
            ["--node", "fs1=10.0.0.1"],
            "--node: expected NAME=HOST:PORT:PASSWORD, got 'fs1=10.0.0.1'",
        ),
        (["--node", "=10.0.0.1:8021:x"], "--node: expected NAME=HOST:PORT:PASSWORD"),
    ],
)
def test_switchboard_command_names_the_bad_option(args, message) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as err:
        call_command("switchboard", *args)
    assert message in str(err.value)


def test_a_plain_http_lookup_webhook_is_refused_outside_debug(settings) -> None:  # type: ignore[no-untyped-def]
    from telephony.callflow.directory import LookupWebhook
    from telephony.switchboard_store import call_webhook

    settings.DEBUG = False
    # Refused before any connection is tried (nothing listens on this port).
    assert (
        call_webhook(LookupWebhook("http://127.0.0.1:9/lookup", "s3cret"), "alpha", "+380501112233")
        is None
    )


def test_engine_snapshots_and_call_progress_are_there_for_a_successor(cast) -> None:  # type: ignore[no-untyped-def]
    """What a standby reads on takeover: the last engine snapshot (overwritten in place) and
    the meter a predecessor stored for a call in progress, in that call's tenant only."""
    from routing.engine.model import AgentLogin, AgentProfile, AgentUpdated
    from routing.engine.router import Engine
    from telephony.callflow.meter import CallMeter
    from telephony.callflow.switchboard import CallSummary
    from telephony.models import EngineSnapshot
    from telephony.switchboard_store import load_progress, load_snapshot, record_call, save_snapshot

    assert load_snapshot() is None
    CALL = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    engine = Engine()
    engine.handle(AgentUpdated(1000.0, AgentProfile("a1", {"alpha": {}})))
    save_snapshot(Engine().snapshot_bytes(), 999.0)
    engine.handle(AgentLogin(1001.0, "a1"))
    save_snapshot(engine.snapshot_bytes(), 1001.0)
    assert EngineSnapshot.objects.count() == 1
    data, at = load_snapshot()  # type: ignore[misc]
    assert at == 1001.0
    assert Engine.restore_bytes(data).agent_state("a1") == engine.agent_state("a1")

    meter = CallMeter("alpha", CALL, CALL, "direct", "node1")
    meter.answered(1_700_000_000_000)
    meter.enter_queue(1_700_000_010_000, "alpha-general")
    summary = CallSummary(CALL, "alpha", "node1", "+380440010000", "+380501", "direct",
                          1_700_000_000_000, meter=meter.to_dict())  # fmt: skip
    assert record_call(summary) == "recorded"
    stored = load_progress("alpha", CALL)
    assert stored is not None
    again = CallMeter.from_dict(stored)
    assert again.state == "queue" and again.queue_id == "alpha-general"
    assert load_progress("beta", CALL) is None  # another tenant's schema
    assert load_progress("nosuchtenant", CALL) is None
    meter.hangup(1_700_000_020_000, "NORMAL_CLEARING")
    summary.meter = meter.to_dict()
    record_call(summary)
    assert load_progress("alpha", CALL) is None  # finished: nothing to carry on
