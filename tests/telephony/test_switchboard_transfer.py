"""Agent-to-agent transfer and on-demand recording, end to end on the simulated switch.

The switchboard, the routing engine and the simulator run in one loop on the virtual clock
(``switchboard_world``). Every call's A-leg segments are checked against its CDR
(``check_partition``: sum of segments = the CDR's answered time).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from switchboard_world import a_leg, did_of, listen, make_directory, running, wait_for
from test_switchboard import check_partition, place

from routing.engine.model import AgentProfile
from telephony.callflow.directory import AgentSeat

pytestmark = pytest.mark.asyncio


def session_of(world):  # type: ignore[no-untyped-def]
    [session] = {id(s): s for s in world.sb.sessions.values()}.values()
    return session


async def connected_call(world):  # type: ignore[no-untyped-def]
    """A caller on alpha's DID put through to an agent: the call's session."""
    await place(world, did_of("alpha"), digits="1", talk=3600.0)
    await wait_for(lambda: any(s.state == "agent" for s in world.sb.sessions.values()))
    return session_of(world)


async def hang_up_caller(world, session) -> None:  # type: ignore[no-untyped-def]
    switch = world.switches[0]
    switch.hangup(switch.channels[session.call_id])
    await world.settle()


async def caller_hangs_up(world, session):  # type: ignore[no-untyped-def]
    """The caller hangs up; the summary of the one call the world recorded."""
    await hang_up_caller(world, session)
    [summary] = world.sink.calls.values()
    return summary


def the_other_two(first: str) -> list[str]:
    return [a for a in ("agent0", "agent1", "agent2") if a != first]


@asynccontextmanager
async def a_call_among_three_agents():  # type: ignore[no-untyped-def]
    """Three agents, one caller put through to one of them: (world, what the consoles were
    pushed, the call's session)."""
    async with running(make_directory(agents=3), agents=3) as world:
        pushed = listen(world)
        yield world, pushed, await connected_call(world)


async def test_transfer_to_a_free_certified_agent_meters_agent_queue_agent() -> None:
    async with a_call_among_three_agents() as (world, pushed, session):
        sb, first = world.sb, session.agent
        # Not the agent the queue would pick next (the other idle one has waited longer).
        target = "agent2" if first != "agent2" else "agent1"
        assert sb.engine.agent_state(target)[0] == "available"
        reply = await sb.command({"agent_id": first, "command": "transfer", "to_agent": target})
        assert reply == {"ok": True, "message": ""}
        await wait_for(lambda: session.state == "agent" and session.agent == target)
        assert sb.engine.agent_state(first)[0] in ("wrap_up", "available")
        # The new agent's card says who handed the call over; the first agent's call ended.
        cards = [ev for a, ev in pushed if a == target and ev["kind"] == "connected"]
        assert cards and cards[-1]["transferred_by"] == first
        assert ("ended", session.call_id) in [
            (ev["kind"], ev.get("call_id")) for a, ev in pushed if a == first
        ]
        summary = await caller_hangs_up(world, session)
        assert summary.outcome == "answered" and summary.agent == target
        segs = a_leg(world, summary.call_id)
        kinds = [s.kind.value for s in segs]
        assert kinds[:3] == ["ivr", "queue", "agent"]
        # agent A, the queue gap (an empty ivr instant in between is dropped or 0 ms), agent B
        after = [s for s in segs[3:] if s.kind.value != "ivr"]
        assert [s.kind.value for s in after] == ["queue", "agent"]
        assert [s.agent for s in segs if s.kind.value == "agent"] == [first, target]
        total = sum(s.end_ms - s.start_ms for s in segs)
        cdr = world.cdrs[summary.call_id]
        assert abs(total - (cdr["end_ms"] - cdr["answer_ms"])) <= 1000
        check_partition(world, summary.call_id)


async def test_transfer_refused_leaves_the_caller_with_the_agent() -> None:
    directory = make_directory(tenants=("alpha", "beta"), agents=4)
    # agent3 works for beta only: it must never get alpha's calls.
    beta_only = AgentSeat(AgentProfile("agent3", {"beta": {}}), "user/1004")
    directory = replace(directory, agents={**directory.agents, "agent3": beta_only})
    async with running(directory, agents=4) as world:
        sb = world.sb
        assert (await sb.command({"agent_id": "agent2", "command": "state", "state": "logout"}))[
            "ok"
        ]
        session = await connected_call(world)
        first, leg = session.agent, session.agent_leg
        assert first in ("agent0", "agent1")

        async def refused(to: str) -> str:
            reply = await sb.command({"agent_id": first, "command": "transfer", "to_agent": to})
            assert reply["ok"] is False, reply
            return reply["message"]

        assert (
            await refused("agent3") == "agent3 cannot take this call: not certified for this queue"
        )
        assert await refused("agent2") == "agent2 cannot take this call: not logged in"
        assert await refused("nobody") == "unknown agent 'nobody'"
        assert await refused(first) == "you cannot transfer a call to yourself"
        # Nothing changed: same agent, same leg, still bridged, still the engine's call.
        assert (session.state, session.agent, session.agent_leg) == ("agent", first, leg)
        bridged = world.switches[0].channels[session.call_id].bridged_to
        assert bridged is not None and bridged.uuid == leg
        assert sb.engine.agent_state(first)[0] == "on_call"
        assert sb.engine.agent_state("agent3")[0] == "available"
        summary = await caller_hangs_up(world, session)
        assert [s.kind.value for s in a_leg(world, summary.call_id)] == ["ivr", "queue", "agent"]
        check_partition(world, summary.call_id)


async def test_target_not_answering_sends_the_caller_to_the_queue_served_by_another() -> None:
    async with a_call_among_three_agents() as (world, pushed, session):
        sb, first = world.sb, session.agent
        target, other = the_other_two(first)
        ext = sb.directory.agents[target].endpoint.removeprefix("user/")
        world.switches[0].agents[ext].p_no_answer = 1.0
        reply = await sb.command({"agent_id": first, "command": "transfer", "to_agent": target})
        assert reply["ok"] is True, reply
        # The target rings out (offer timeout 15 s): back in the queue, the other agent answers.
        await wait_for(lambda: session.state == "agent" and session.agent == other, timeout=20)
        assert sb.engine.agent_state(target)[0] == "available"
        # It did ring the target first (held for it, not refused).
        assert [ev["kind"] for a, ev in pushed if a == target and ev.get("call_id")] == ["offer"]
        assert "transfer_target_unavailable" not in sb.engine.stats
        summary = await caller_hangs_up(world, session)
        assert summary.outcome == "answered" and summary.agent == other
        segs = a_leg(world, summary.call_id)
        assert [s.agent for s in segs if s.kind.value == "agent"] == [first, other]
        assert [s.kind.value for s in segs if s.kind.value != "ivr"] == [
            "queue",
            "agent",
            "queue",
            "agent",
        ]
        # The unanswered ring is a leg of the call with its CDR, never billed time.
        assert target not in [s.agent for s in segs]
        check_partition(world, summary.call_id)


async def test_a_busy_target_keeps_the_caller_waiting_only_for_the_window() -> None:
    async with a_call_among_three_agents() as (world, pushed, session):
        sb, first = world.sb, session.agent
        target, other = the_other_two(first)
        # Logged in but on a break: the transfer is accepted and held for the target.
        await sb.command({"agent_id": target, "command": "state", "state": "break"})
        reply = await sb.command({"agent_id": first, "command": "transfer", "to_agent": target})
        assert reply["ok"] is True, reply
        await wait_for(lambda: session.state == "queue")
        held_at = world.clock.now()
        # The other agent idles meanwhile; after the 30 s window it takes the call.
        await wait_for(lambda: session.state == "agent" and session.agent == other, timeout=20)
        assert world.clock.now() - held_at >= session.TRANSFER_WINDOW_S - 1.0
        assert not [ev for a, ev in pushed if a == target and ev.get("call_id")]
        summary = await caller_hangs_up(world, session)
        assert [s.agent for s in a_leg(world, summary.call_id) if s.kind.value == "agent"] == [
            first,
            other,
        ]
        check_partition(world, summary.call_id)


def with_recording(directory, **policies: str):  # type: ignore[no-untyped-def]
    plans = dict(directory.tenants)
    for tenant, policy in policies.items():
        sample = 1.0 if policy == "sample" else 0.0
        plans[tenant] = replace(plans[tenant], recording=policy, recording_sample=sample)
    return replace(directory, tenants=plans)


@asynccontextmanager
async def an_on_demand_call():  # type: ignore[no-untyped-def]
    """alpha records on demand; a caller put through to its one agent: (world, what the console
    was pushed, the call's session, the caller's channel)."""
    directory = with_recording(make_directory(agents=1), alpha="on_demand")
    async with running(directory, agents=1) as world:
        pushed = listen(world)
        session = await connected_call(world)
        yield world, pushed, session, world.switches[0].channels[session.call_id]


async def test_on_demand_recording_started_by_the_agent_then_masked() -> None:
    async with an_on_demand_call() as (world, pushed, session, channel):
        sb = world.sb
        # On demand: nothing records until the agent asks.
        assert channel.recording == "" and not [
            n for n in world.sink.notices if n[0] == "recording"
        ]
        card = (await sb.command({"agent_id": "agent0", "command": "snapshot"}))["snapshot"]["call"]
        assert card["recording"] is False
        assert await sb.command({"agent_id": "agent0", "command": "mask"}) == {
            "ok": False,
            "message": "this call is not being recorded",
        }
        assert await sb.command({"agent_id": "agent0", "command": "record"}) == {
            "ok": True,
            "message": "",
        }
        [(_kind, notice)] = [n for n in world.sink.notices if n[0] == "recording"]
        assert notice["call_id"] == session.call_id and notice["tenant_id"] == "alpha"
        assert notice["path"].startswith("/var/lib/freeswitch/recordings/alpha/")
        assert notice["path"].endswith(f"/{session.call_id}.wav")
        assert channel.recording == notice["path"]
        assert ("agent0", "recording") in [(a, ev["kind"]) for a, ev in pushed]
        card = (await sb.command({"agent_id": "agent0", "command": "snapshot"}))["snapshot"]["call"]
        assert card["recording"] is True and card["masked"] is False
        assert await sb.command({"agent_id": "agent0", "command": "record"}) == {
            "ok": False,
            "message": "this call is already being recorded",
        }
        # Masking works on it like on a policy recording.
        assert (await sb.command({"agent_id": "agent0", "command": "mask"}))["ok"] is True
        assert channel.variables["record_masked"] == "true"
        assert [n[1]["masked"] for n in world.sink.notices if n[0] == "masked"] == [True]
        assert (await sb.command({"agent_id": "agent0", "command": "unmask"}))["ok"] is True
        assert channel.variables["record_masked"] == "false"
        summary = await caller_hangs_up(world, session)
        check_partition(world, summary.call_id)


@pytest.mark.parametrize(
    ("policy", "message", "recorded"),
    [
        ("none", "this client does not allow recording", False),
        ("all", "this client records every call: the recording is already decided by policy", True),
        ("sample", "this client records a sample of calls chosen by policy, not on demand", True),
    ],
)
async def test_record_is_refused_with_the_reason_on_other_policies(
    policy: str, message: str, recorded: bool
) -> None:
    async with running(with_recording(make_directory(agents=1), alpha=policy), agents=1) as world:
        sb = world.sb
        session = await connected_call(world)
        before = list(world.sink.notices)
        assert await sb.command({"agent_id": "agent0", "command": "record"}) == {
            "ok": False,
            "message": message,
        }
        assert world.sink.notices == before  # nothing started, nothing registered twice
        assert bool(world.switches[0].channels[session.call_id].recording) is recorded
        await hang_up_caller(world, session)


async def test_the_recording_api_acts_on_a_live_call_without_an_agent() -> None:
    """A supervisor or the client's payment system masks through the API: no agent id, the
    call by its id; the agent's console is told. Unknown or finished calls are refused."""
    async with an_on_demand_call() as (world, pushed, session, channel):
        sb = world.sb
        api = {"agent_id": None, "call_id": session.call_id}
        assert await sb.command({**api, "command": "mask"}) == {
            "ok": False,
            "message": "this call is not being recorded",
        }
        assert (await sb.command({**api, "command": "record"}))["ok"] is True
        assert channel.recording and ("agent0", "recording") in [(a, e["kind"]) for a, e in pushed]
        assert (await sb.command({**api, "command": "mask"}))["ok"] is True
        assert channel.variables["record_masked"] == "true"
        assert pushed[-1][0] == "agent0" and pushed[-1][1]["masked"] is True
        assert (await sb.command({**api, "command": "unmask"}))["ok"] is True
        assert channel.variables["record_masked"] == "false"
        # Only recording commands go without an agent.
        assert (await sb.command({**api, "command": "hangup"}))["ok"] is False
        assert channel.alive
        assert await sb.command({"call_id": "no-such-call", "command": "mask"}) == {
            "ok": False,
            "message": "that call is not in progress here",
        }
        await hang_up_caller(world, session)
        assert (await sb.command({**api, "command": "unmask"}))["ok"] is False
