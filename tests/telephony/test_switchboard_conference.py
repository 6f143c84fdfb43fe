"""Three-way conference for escalation (issue #6) on the simulator: consult, then conference.

For each way a conference ends, the caller's segments partition the caller's CDR answered
time, and the second line's ``escalation`` segment runs from its leg's answer to its end.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from switchboard_world import a_leg, did_of, make_directory, running, wait_for
from test_switchboard import check_partition, place

pytestmark = pytest.mark.asyncio


async def talking_to_agent0(world):  # type: ignore[no-untyped-def]
    """A caller on alpha's DID put through to agent0: the call's session."""
    sb = world.sb
    await place(world, did_of("alpha"), digits="1", talk=3600.0)
    await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
    [session] = list(sb.sessions.values())
    return session


def members(world, session) -> set[str]:  # type: ignore[no-untyped-def]
    room = world.switches[0].conferences.get(f"ccp-{session.call_id}")
    return {m.channel.uuid for m in room.members.values()} if room is not None else set()


async def in_conference(world):  # type: ignore[no-untyped-def]
    """A caller with agent0, a consultation with the second line, then the conference."""
    sb = world.sb
    session = await talking_to_agent0(world)
    # Not applicable yet: clear errors, nothing changes.
    assert await sb.command({"agent_id": "agent0", "command": "conference"}) == {
        "ok": False,
        "message": "a conference needs a consultation with the second line first",
    }
    assert await sb.command({"agent_id": "agent0", "command": "leave_conference"}) == {
        "ok": False,
        "message": "you are not in a conference with the second line",
    }
    assert session.state == "agent"
    warm = await sb.command({"agent_id": "agent0", "command": "escalate", "mode": "warm"})
    assert warm["ok"] is True, warm
    await asyncio.sleep(0.2)
    assert (await sb.command({"agent_id": "agent0", "command": "conference"}))["ok"] is True
    assert session.state == "conference"
    legs = {session.call_id, session.agent_leg, session.second_leg}
    await wait_for(lambda: members(world, session) == legs)
    switch = world.switches[0]
    # Out of their bridges, nobody hung up.
    assert all(switch.channels[leg].bridged_to is None for leg in legs)
    snap = (await sb.command({"agent_id": "agent0", "command": "snapshot"}))["snapshot"]
    assert snap["state"] == "on_call"
    assert snap["call"]["kind"] == "connected" and snap["call"]["conference"] is True
    assert snap["call"]["consulting"] is False
    return session


@asynccontextmanager
async def a_while_in_conference():  # type: ignore[no-untyped-def]
    """A world with agent0 and ``in_conference``, a while in the room: (world, the session, its
    agent's leg, the second line's leg)."""
    async with running(make_directory(agents=1)) as world:
        session = await in_conference(world)
        await asyncio.sleep(0.3)
        yield world, session, session.agent_leg, session.second_leg


def check_escalation(world, call_id: str) -> None:  # type: ignore[no-untyped-def]
    """The second line's segment is its leg's answered time (within the snap tolerance)."""
    summary = world.sink.calls[call_id]
    [leg] = [u for u, role in summary.legs.items() if role == "escalation"]
    [seg] = [s for s in world.sink.segments[call_id] if s.leg_uuid == leg]
    assert seg.kind.value == "escalation"
    cdr = world.cdrs[leg]
    assert abs(seg.start_ms - cdr["answer_ms"]) <= 1000, (seg, cdr)
    assert abs(seg.end_ms - cdr["end_ms"]) <= 1000, (seg, cdr)


def check_meters(world, call_id: str) -> None:  # type: ignore[no-untyped-def]
    """The caller's segments partition its CDR; the second line's segment is its leg's time."""
    check_partition(world, call_id)
    check_escalation(world, call_id)


async def caller_hangs_up(world, session):  # type: ignore[no-untyped-def]
    """A moment later the caller hangs up; the summary of the one call the world recorded."""
    await asyncio.sleep(0.3)
    switch = world.switches[0]
    switch.hangup(switch.channels[session.call_id])
    await world.settle()
    [summary] = world.sink.calls.values()
    return summary


def caller_kinds(world, call_id: str, kinds: list[str]) -> list:  # type: ignore[no-untyped-def]
    """The caller's segments, checked to be of ``kinds`` in order."""
    segs = a_leg(world, call_id)
    assert [s.kind.value for s in segs] == kinds
    return segs


async def test_conference_then_our_agent_leaves_and_the_caller_stays_with_the_second_line() -> None:
    async with running(make_directory(agents=1)) as world:
        pushed: list[dict] = []
        world.sb.agent_listener = lambda agent, ev: pushed.append(ev)
        sb = world.sb
        session = await in_conference(world)
        assert any(ev.get("conference") for ev in pushed if ev["kind"] == "connected")
        await asyncio.sleep(0.3)
        agent_leg, second = session.agent_leg, session.second_leg
        for command in ("hold", "complete_transfer", "cancel_consult", "conference"):
            assert await sb.command({"agent_id": "agent0", "command": command}) == {
                "ok": False,
                "message": "not possible in a conference: leave it first",
            }
        assert session.state == "conference"
        assert (await sb.command({"agent_id": "agent0", "command": "leave_conference"}))["ok"]
        assert session.state == "escalated"
        switch = world.switches[0]
        await wait_for(lambda: agent_leg not in switch.channels)
        assert members(world, session) == {session.call_id, second}
        # Stored at once: a successor after a crash would bill the rest as handoff.
        await wait_for(lambda: world.sink.progress[session.call_id].meter["state"] == "handoff")
        # Our agent is off the call (wrap-up), told so, and can no longer act on it.
        assert sb.engine.agent_state("agent0")[0] in ("wrap_up", "available")
        assert any(ev["kind"] == "ended" for ev in pushed)
        assert (await sb.command({"agent_id": "agent0", "command": "leave_conference"}))[
            "message"
        ] == "you are not on that call"
        summary = await caller_hangs_up(world, session)
        assert (summary.outcome, summary.cause) == ("escalated", "conference")
        segs = caller_kinds(world, summary.call_id, ["ivr", "queue", "agent", "handoff"])
        # The handoff began when our agent left (its leg's end), and ran to the hangup.
        assert abs(segs[3].start_ms - world.cdrs[agent_leg]["end_ms"]) <= 1000
        # The second line did not outlive the caller in the room.
        assert abs(world.cdrs[second]["end_ms"] - world.cdrs[summary.call_id]["end_ms"]) <= 1000
        check_meters(world, summary.call_id)
        assert world.sb.stats["conferences"] == 1


async def test_conference_then_the_second_line_hangs_up_and_caller_and_agent_are_bridged() -> None:
    async with a_while_in_conference() as (world, session, _agent_leg, second):
        sb = world.sb
        switch = world.switches[0]
        switch.hangup(switch.channels[second])
        await wait_for(lambda: session.state == "agent")
        await wait_for(
            lambda: (
                switch.channels[session.call_id].bridged_to is not None
                and switch.channels[session.call_id].bridged_to.uuid == session.agent_leg
            )
        )
        assert f"ccp-{session.call_id}" not in switch.conferences
        assert sb.engine.agent_state("agent0")[0] == "on_call"
        snap = (await sb.command({"agent_id": "agent0", "command": "snapshot"}))["snapshot"]
        assert snap["call"]["conference"] is False
        # Back to a normal call: the agent can hold it again.
        assert (await sb.command({"agent_id": "agent0", "command": "hold"}))["ok"] is True
        summary = await caller_hangs_up(world, session)
        assert summary.outcome == "answered"
        caller_kinds(world, summary.call_id, ["ivr", "queue", "agent"])
        check_meters(world, summary.call_id)
        # The escalation ended with the second line, well before the caller.
        assert world.cdrs[second]["end_ms"] < world.cdrs[summary.call_id]["end_ms"] - 1000
        assert sb.engine.agent_state("agent0")[0] in ("wrap_up", "available")


async def test_the_caller_hangs_up_in_conference_and_no_leg_is_left_behind() -> None:
    async with a_while_in_conference() as (world, session, agent_leg, second):
        switch = world.switches[0]
        switch.hangup(switch.channels[session.call_id])
        await world.settle()  # every channel on the node gone, every call recorded
        assert not switch.conferences
        [summary] = world.sink.calls.values()
        assert summary.outcome == "answered"
        end = world.cdrs[summary.call_id]["end_ms"]
        for leg in (agent_leg, second):
            assert abs(world.cdrs[leg]["end_ms"] - end) <= 1000, leg
        caller_kinds(world, summary.call_id, ["ivr", "queue", "agent"])
        check_meters(world, summary.call_id)
        assert world.sb.engine.agent_state("agent0")[0] in ("wrap_up", "available")


async def test_the_agents_phone_hangs_up_in_conference_and_the_agent_is_not_left_on_call() -> None:
    async with a_while_in_conference() as (world, session, agent_leg, second):
        switch = world.switches[0]
        switch.hangup(switch.channels[agent_leg])
        await wait_for(lambda: session.state == "escalated")
        assert world.sb.engine.agent_state("agent0")[0] in ("wrap_up", "available")
        assert members(world, session) == {session.call_id, second}
        summary = await caller_hangs_up(world, session)
        assert (summary.outcome, summary.cause) == ("escalated", "conference")
        segs = caller_kinds(world, summary.call_id, ["ivr", "queue", "agent", "handoff"])
        assert abs(segs[3].start_ms - world.cdrs[agent_leg]["end_ms"]) <= 1000
        check_meters(world, summary.call_id)


async def test_second_line_hanging_up_after_our_agent_left_ends_with_a_goodbye() -> None:
    async with running(make_directory(agents=1)) as world:
        sb = world.sb
        session = await in_conference(world)
        await asyncio.sleep(0.2)
        assert (await sb.command({"agent_id": "agent0", "command": "leave_conference"}))["ok"]
        await asyncio.sleep(0.3)
        switch = world.switches[0]
        call_id, second = session.call_id, session.second_leg
        caller_apps: list[tuple[str, str, int]] = []
        switch.on_hangup_complete.append(
            lambda ch: caller_apps.extend(ch.app_log) if ch.uuid == call_id else None
        )
        switch.hangup(switch.channels[second])
        # Never silence in an empty room: out of the room, a goodbye, then the hangup.
        await world.settle()
        assert not switch.conferences
        [summary] = world.sink.calls.values()
        segs = caller_kinds(world, call_id, ["ivr", "queue", "agent", "handoff", "ivr"])
        assert abs(segs[4].start_ms - world.cdrs[second]["end_ms"]) <= 1000
        assert segs[4].duration_ms > 0  # the goodbye
        check_meters(world, call_id)
        # The caller's last applications: the room, then the goodbye from our park.
        tail = [(app, arg) for app, arg, _t in caller_apps][-2:]
        assert tail == [
            ("conference", f"ccp-{call_id}@ccp"),
            ("playback", "say:Thank you for calling. Goodbye."),
        ]


async def test_a_consultation_that_loses_both_legs_returns_the_caller_to_the_queue() -> None:
    """Not a conference yet: the second line hangs up while our agent consults it (the switch
    clears the agent's bridged leg with it). The caller, parked with music, is not left there:
    a prompt, then the queue, and the next free agent (here the same one after wrap-up)."""
    async with running(make_directory(agents=1, wrap_up_s=2.0)) as world:
        sb = world.sb
        session = await talking_to_agent0(world)
        assert (await sb.command({"agent_id": "agent0", "command": "escalate", "mode": "warm"}))[
            "ok"
        ]
        await asyncio.sleep(0.3)
        switch = world.switches[0]
        first_agent_leg, second = session.agent_leg, session.second_leg
        switch.hangup(switch.channels[second])
        await wait_for(lambda: first_agent_leg not in switch.channels)
        await wait_for(lambda: session.state == "agent" and session.agent_leg != first_agent_leg)
        assert sb.stats["consult_lost"] == 1
        summary = await caller_hangs_up(world, session)
        caller_kinds(world, summary.call_id, ["ivr", "queue", "agent", "ivr", "queue", "agent"])
        check_meters(world, summary.call_id)
