"""Scenario tests on the simulator: overflow caps, opening hours, IVR input, slow lookups."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, time

import pytest
from switchboard_world import did_of, make_directory, start_world, wait_for
from test_switchboard import check_partition

from telephony.callflow.directory import BusinessHours, Prompt
from telephony.simulator.switch import AgentPhone
from telephony.simulator.traffic import Caller, CallerOutcome, CallerPlan, TenantProfile

pytestmark = pytest.mark.asyncio


def call(world, did: str, choices: list[str], *, number: str = "+380501234567", talk: float = 30.0):  # type: ignore[no-untyped-def]
    plan = CallerPlan(0, 0.0, "alpha", did, number, patience=10_000.0, talk_time=talk,
                      choices=choices, wants_callback=False)  # fmt: skip
    outcome = CallerOutcome(plan)
    Caller(
        world.switches[0], plan, TenantProfile("alpha", [did], 0), outcome, random.Random(3)
    ).start()
    return outcome


def apps(world, uuid: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [a for a, _arg, _t in world.app_logs.get(uuid, [])]


async def start(directory, **kw):  # type: ignore[no-untyped-def]
    world = await start_world(directory, **kw)
    world.app_logs = {}  # type: ignore[attr-defined]
    for switch in world.switches:
        switch.on_hangup_complete.append(
            lambda ch, w=world: w.app_logs.__setitem__(ch.uuid, list(ch.app_log))
        )
    return world


async def test_overflow_from_the_clients_centre_is_capped_and_returned_unanswered() -> None:
    world = await start(make_directory(overflow_did=True, max_overflow=1, agents=2))
    try:
        first = call(world, did_of("alpha", 9), [], talk=120.0)
        await asyncio.sleep(0.3)
        second = call(world, did_of("alpha", 9), [], number="+380507654321")
        await world.settle()
        summaries = {s.caller: s for s in world.sink.calls.values()}
        assert summaries["+380501234567"].origin == "overflow"
        assert summaries["+380501234567"].outcome == "answered"
        refused = summaries["+380507654321"]
        assert refused.outcome == "overflowed" and refused.cause.startswith("refused:")
        # Returned unanswered: the client's PBX gets a busy and keeps the call; nothing billed.
        assert second.hangup_cause == "USER_BUSY"
        assert world.cdrs[refused.call_id]["answer_ms"] == 0
        assert world.sink.segments[refused.call_id] == []
        assert first.bridged_at is not None
        # Overflow calls skip the IVR: their first segment is the queue.
        kinds = [s.kind.value for s in world.sink.segments[summaries["+380501234567"].call_id]]
        assert kinds == ["queue", "agent"]
        check_partition(world, summaries["+380501234567"].call_id)
    finally:
        await world.close()


async def test_closed_hours_and_holidays_play_the_closed_prompt_instead_of_the_menu() -> None:
    today = datetime.now(UTC).date()
    tomorrow = (today.weekday() + 1) % 7
    directory = make_directory()
    plan = directory.tenants["alpha"]
    closed_today = BusinessHours("UTC", weekly=((tomorrow, time(0, 0), time(23, 59)),))
    holiday = BusinessHours("UTC", holidays=(today,))
    for hours in (closed_today, holiday):
        d = replace(
            directory,
            tenants={
                "alpha": replace(plan, hours=hours, closed_prompt=Prompt(text="We are closed."))
            },
        )
        world = await start(d)
        try:
            call(world, did_of("alpha"), ["1"])
            await world.settle()
            [summary] = world.sink.calls.values()
            assert summary.outcome == "ivr"
            assert "play_and_get_digits" not in apps(world, summary.call_id)
            assert [s.kind.value for s in world.sink.segments[summary.call_id]] == ["ivr"]
        finally:
            await world.close()


async def test_invalid_digits_replay_the_menu_and_silence_takes_the_timeout_action() -> None:
    world = await start(make_directory())
    try:
        # "5" is not an option: the invalid prompt plays and the menu repeats; then "1".
        call(world, did_of("alpha"), ["5", "1"], number="+380500000001")
        # Only the terminator: no digit at all, three times -> the menu's timeout action (queue).
        call(world, did_of("alpha"), ["#"], number="+380500000002")
        await asyncio.sleep(3.0)
        for ch in list(world.switches[0].channels.values()):
            world.switches[0].hangup(ch)
        await world.settle()
        by = {s.caller: s for s in world.sink.calls.values()}
        wrong = apps(world, by["+380500000001"].call_id)
        assert wrong.count("play_and_get_digits") == 2
        assert "playback" in wrong[wrong.index("play_and_get_digits") :]  # the invalid prompt
        assert by["+380500000001"].queue == "alpha-general"
        silent = apps(world, by["+380500000002"].call_id)
        assert silent.count("play_and_get_digits") == 3
        assert by["+380500000002"].queue == "alpha-general"
    finally:
        await world.close()


async def test_a_slow_caller_lookup_never_holds_the_call() -> None:
    world = await start(make_directory())
    calls_seen: list[str] = []

    async def slow_lookup(tenant: str, caller: str):  # type: ignore[no-untyped-def]
        calls_seen.append(caller)
        await asyncio.sleep(30)  # the client's system hangs
        return {"answer": "too late"}

    world.sink.lookup = slow_lookup  # type: ignore[method-assign]
    try:
        outcome = call(world, did_of("alpha"), ["2", "2"])  # "my order", then "talk to an agent"
        await world.settle(20)
        [summary] = world.sink.calls.values()
        assert calls_seen == ["+380501234567"]
        assert world.sb.stats["lookup_timeout"] == 1
        # The self-service option said it found nothing and the caller went on to an agent.
        assert summary.outcome == "answered" and outcome.bridged_at is not None
    finally:
        await world.close()


async def test_a_callback_keeps_the_place_and_calls_back_when_an_agent_is_free() -> None:
    world = await start(make_directory(agents=1, callback_over_s=20.0))
    world.sb.callback_dial = "user/{number}"  # the simulator's phones; a trunk in production
    try:
        busy = call(world, did_of("alpha"), ["1"], number="+380500000010", talk=120.0)
        await asyncio.sleep(0.5)
        plan = CallerPlan(1, 0.0, "alpha", did_of("alpha"), "+380500000011", patience=10_000.0,
                          talk_time=40.0, choices=["1"], wants_callback=True)  # fmt: skip
        waiting = CallerOutcome(plan)
        Caller(
            world.switches[0],
            plan,
            TenantProfile("alpha", [did_of("alpha")], 0),
            waiting,
            random.Random(5),
        ).start()
        await world.settle(30)
        by = {s.caller: s for s in world.sink.calls.values() if s.origin != "callback"}
        assert by["+380500000011"].outcome == "callback"
        assert busy.bridged_at is not None
        [cb] = [s for s in world.sink.calls.values() if s.origin == "callback"]
        assert (cb.caller, cb.outcome, cb.cause, cb.agent) == (
            "+380500000011",
            "answered",
            "",
            "agent0",
        ), cb.cause
        segs = world.sink.segments[cb.call_id]
        assert [s.kind.value for s in segs] == ["callback_dial", "agent"]
        [leg] = [u for u, role in cb.legs.items() if role == "callback"]
        cdr = world.cdrs[leg]
        assert (
            abs(segs[0].start_ms - cdr["answer_ms"]) <= 1000
            and abs(segs[-1].end_ms - cdr["end_ms"]) <= 1000
        )
        assert world.sb.engine.agent_state("agent0")[0] in ("wrap_up", "available")
    finally:
        await world.close()


async def test_over_the_overflow_cap_the_rule_can_offer_a_callback_instead_of_busy() -> None:
    directory = make_directory(overflow_did=True, max_overflow=1, agents=1)
    routing = {"alpha": replace(directory.routing["alpha"], overflow_refused_target="callback")}
    world = await start(replace(directory, routing=routing))
    world.sb.callback_dial = "user/{number}"
    world.switches[0].agents["+380507654321"] = AgentPhone("+380507654321", hangup_after=20.0)
    try:
        call(world, did_of("alpha", 9), [], talk=60.0)
        await asyncio.sleep(0.3)
        call(world, did_of("alpha", 9), [], number="+380507654321")
        await world.settle(30)
        first = {s.caller: s for s in world.sink.calls.values() if s.origin == "overflow"}
        refused = first["+380507654321"]
        assert refused.outcome == "callback" and refused.cause.startswith("refused:")
        assert world.cdrs[refused.call_id]["answer_ms"] > 0  # answered to say so, then called back
        [cb] = [s for s in world.sink.calls.values() if s.origin == "callback"]
        assert (
            cb.caller == "+380507654321"
            and cb.outcome == "answered"
            and cb.parent_call_id == refused.call_id
        )
    finally:
        await world.close()


async def one_waiting_behind_a_busy_agent(world):  # type: ignore[no-untyped-def]
    """alpha's only agent talks to a first caller; a second waits in the queue: its outcome."""
    sb = world.sb
    call(world, did_of("alpha"), ["1"], number="+380501110001", talk=3600.0)
    await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
    waiting = call(world, did_of("alpha"), ["1"], number="+380501110002")
    await wait_for(lambda: sb.engine.waiting("alpha-general") == 1)
    return waiting


async def test_the_queue_exit_key_takes_the_caller_to_voicemail() -> None:
    """Press 9 while waiting (the tenant's exit key): out of the queue, to voicemail; other
    digits change nothing. Segments: ivr, queue, ivr (the message), = the CDR's answered time."""
    directory = make_directory(agents=1)
    directory.tenants["alpha"] = replace(directory.tenants["alpha"], voicemail_digit="9")
    world = await start(directory, agents=1)
    try:
        sb = world.sb
        switch = world.switches[0]
        waiting = await one_waiting_behind_a_busy_agent(world)
        channel = switch.channels[waiting.uuid]
        switch.receive_dtmf(channel, "5")  # not the exit key
        await asyncio.sleep(0.2)
        assert sb.engine.waiting("alpha-general") == 1 and channel.alive
        switch.receive_dtmf(channel, "9")
        await wait_for(lambda: waiting.uuid in world.sink.calls)
        summary = world.sink.calls[waiting.uuid]
        assert (summary.outcome, summary.cause) == ("ivr", "voicemail")
        assert sb.engine.waiting("alpha-general") == 0
        assert sb.stats["queue_exit_key"] == 1
        kinds = [s.kind.value for s in world.sink.segments[waiting.uuid]]
        assert kinds == ["ivr", "queue", "ivr"]
        await wait_for(lambda: waiting.uuid in world.app_logs)
        played = [arg for app, arg, _t in world.app_logs[waiting.uuid] if app == "playback"]
        assert "tone_stream://%(500,0,800)" in played  # the beep before the message
        check_partition(world, waiting.uuid)
    finally:
        await world.close()


async def test_waiting_callers_hear_their_place_and_the_estimated_wait() -> None:
    directory = make_directory(agents=1)
    world = await start(directory, agents=1)
    try:
        sb = world.sb
        switch = world.switches[0]
        first = await one_waiting_behind_a_busy_agent(world)
        second = call(world, did_of("alpha"), ["1"], number="+380501110003")
        await wait_for(lambda: sb.engine.waiting("alpha-general") == 2)

        def told(outcome) -> list[str]:  # type: ignore[no-untyped-def]
            ch = switch.channels.get(outcome.uuid)
            logs = ch.app_log if ch is not None else []
            return [arg for app, arg, _t in logs if app == "playback" and "in the queue" in arg]

        await wait_for(lambda: told(first) and told(second), timeout=20.0)
        assert told(first)[0].startswith("say:You are number 1 in the queue. Your estimated wait")
        assert told(second)[0].startswith("say:You are number 2 in the queue. Your estimated wait")
    finally:
        await world.close()
