"""The switchboard on the switch simulator: IVR, queue, agents, escalation, metering, faults."""

from __future__ import annotations

import asyncio

import pytest
from switchboard_world import did_of, make_directory, start_world, traffic

pytestmark = pytest.mark.asyncio


def check_partition(world, call_id: str) -> None:  # type: ignore[no-untyped-def]
    """The A leg's segments partition its answered time; reconciled with the CDRs they match
    the CDR to the millisecond. The switch stamps an event a moment after it sets the CDR's
    time (microseconds on a real switch; on the simulator's fast virtual clock a busy machine
    stretches that to tens of ms), so raw edges may differ a little: reconciliation snaps
    them within its 1 s tolerance."""
    from telephony.callflow.meter import CdrTimes, reconcile

    summary = world.sink.calls[call_id]
    segs = sorted(
        (s for s in world.sink.segments[call_id] if s.leg_uuid == call_id), key=lambda s: s.start_ms
    )
    cdr = world.cdrs[call_id]
    if not cdr["answer_ms"]:
        assert segs == []
        return
    assert abs(segs[0].start_ms - cdr["answer_ms"]) <= 1000, (summary, segs)
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.end_ms == b.start_ms
    assert abs(segs[-1].end_ms - cdr["end_ms"]) <= 1000, (segs[-1], cdr)
    cdrs = {
        leg: CdrTimes(leg, world.cdrs[leg]["answer_ms"] or None, world.cdrs[leg]["end_ms"])
        for leg in summary.legs
        if leg in world.cdrs
    }
    unmetered = [leg for leg, role in summary.legs.items() if role == "agent"]
    result = reconcile(
        world.sink.segments[call_id], cdrs, a_leg_uuid=call_id, unmetered_legs=unmetered
    )
    assert result.status == "ok", result
    final = sorted((s for s in result.segments if s.leg_uuid == call_id), key=lambda s: s.start_ms)
    assert final[0].start_ms == cdr["answer_ms"] and final[-1].end_ms == cdr["end_ms"]
    assert sum(s.duration_ms for s in final) == cdr["end_ms"] - cdr["answer_ms"]


async def place(
    world, did: str, number: str = "+380501112233", digits: str = "1", talk: float = 30.0
):  # type: ignore[no-untyped-def]
    """One scripted caller: presses ``digits`` at the prompts, talks ``talk`` simulated seconds
    once bridged (unless the test hangs up first)."""
    from telephony.simulator.traffic import CallerOutcome, CallerPlan, TenantProfile

    switch = world.switches[0]
    plan = CallerPlan(0, 0.0, "alpha", did, number, patience=10_000.0, talk_time=talk,
                      choices=list(digits), wants_callback=False)  # fmt: skip
    import random

    from telephony.simulator.traffic import Caller

    outcome = CallerOutcome(plan)
    Caller(switch, plan, TenantProfile("alpha", [did], 0), outcome, random.Random(1)).start()
    return outcome


async def test_a_call_goes_through_ivr_queue_and_agent_with_exact_segments() -> None:
    world = await start_world(make_directory(agents=2))
    try:
        outcome = await place(world, did_of("alpha"), digits="1")
        await world.settle()
        assert outcome.bridged_at is not None
        [summary] = world.sink.calls.values()
        assert summary.outcome == "answered"
        assert summary.tenant_id == "alpha"
        assert summary.agent in ("agent0", "agent1")
        kinds = [s.kind.value for s in world.sink.segments[summary.call_id]]
        assert kinds == ["ivr", "queue", "agent"]
        check_partition(world, summary.call_id)
        # The agent is in wrap-up or ready again, never left on a call.
        assert world.sb.engine.agent_state(summary.agent)[0] in ("wrap_up", "available")
    finally:
        await world.close()


async def test_unknown_number_gets_an_announcement_and_a_notice() -> None:
    world = await start_world(make_directory())
    try:
        world.switches[0].dids["+380449999999"] = {"ccp_did": "+380449999999"}
        await place(world, "+380449999999")
        await world.settle()
        [summary] = world.sink.calls.values()
        assert (summary.outcome, summary.cause) == ("failed", "unknown_number")
        assert [k for k, _ in world.sink.notices] == ["unknown_number"]
    finally:
        await world.close()


async def test_suspended_tenant_callers_hear_the_message() -> None:
    world = await start_world(make_directory(suspended=("alpha",)))
    try:
        await place(world, did_of("alpha"))
        await world.settle()
        [summary] = world.sink.calls.values()
        assert (summary.outcome, summary.cause) == ("failed", "tenant_suspended")
        app_log = [
            a
            for a, _arg, _t in world.switches[0]
            .channels.get(summary.call_id, type("x", (), {"app_log": []}))
            .app_log
        ]
        assert "play_and_get_digits" not in app_log
    finally:
        await world.close()


async def test_self_service_answer_ends_the_call_in_the_ivr() -> None:
    world = await start_world(make_directory())
    try:
        world.sink.contacts[("alpha", "+380501112233")] = {
            "answer": "Your order 123 ships tomorrow."
        }
        await place(world, did_of("alpha"), digits="21")  # 2 = my order, then 1 = that answers it
        await world.settle()
        [summary] = world.sink.calls.values()
        assert (summary.outcome, summary.cause) == ("ivr", "self_service")
        assert [s.kind.value for s in world.sink.segments[summary.call_id]] == ["ivr"]
        check_partition(world, summary.call_id)
        assert world.sb.stats["self_service_answers"] == 1
    finally:
        await world.close()


async def test_ivr_escalation_bridges_the_second_line_and_meters_handoff_and_escalation() -> None:
    world = await start_world(make_directory())
    try:
        await place(world, did_of("alpha"), digits="0")
        await asyncio.sleep(1.0)
        # The caller talks to the second line; end the call from the caller's side.
        for ch in list(world.switches[0].channels.values()):
            if ch.uuid in world.sb.sessions:
                world.switches[0].hangup(ch)
        await world.settle()
        [summary] = world.sink.calls.values()
        assert summary.outcome == "escalated"
        segs = world.sink.segments[summary.call_id]
        assert [s.kind.value for s in segs if s.leg_uuid == summary.call_id] == ["ivr", "handoff"]
        [esc] = [s for s in segs if s.kind.value == "escalation"]
        assert esc.leg_uuid != summary.call_id and esc.end_ms >= esc.start_ms
        check_partition(world, summary.call_id)
    finally:
        await world.close()


async def test_traffic_every_call_is_accounted_for() -> None:
    world = await start_world(make_directory(agents=3), speed=60.0)
    try:
        gens = traffic(world, ("alpha",), calls_per_hour=240)
        outcomes = await gens[0].run(600)
        await world.settle(60)
        placed = len(outcomes)
        assert placed > 10
        calls = world.sink.calls
        assert len(calls) == placed
        for call_id in calls:
            check_partition(world, call_id)
        assert sum(world.sb.outcomes.values()) == placed
        assert world.sb.stats["task_errors"] == 0
        for agent in ("agent0", "agent1", "agent2"):
            assert world.sb.engine.agent_state(agent)[0] in ("available", "wrap_up")
    finally:
        await world.close()
