"""Agents' commands to the switchboard, pushes to their consoles, and a takeover after a crash."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from switchboard_world import did_of, make_directory, start_world
from test_switchboard import check_partition, place

from telephony.callflow.meter import CallMeter, CdrTimes, reconcile
from telephony.callflow.switchboard import MemorySink, NodeSpec, Switchboard

pytestmark = pytest.mark.asyncio


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_agent_state_commands_and_numbered_pushes() -> None:
    world = await start_world(make_directory(agents=2))
    pushed: list[tuple[str, dict]] = []
    world.sb.agent_listener = lambda agent, ev: pushed.append((agent, ev))
    try:
        sb = world.sb
        reply = await sb.command(
            {"agent_id": "agent0", "command": "state", "state": "break", "reason": "lunch"}
        )
        assert reply == {"ok": True, "message": "break (lunch)"}
        assert await sb.command({"agent_id": "agent0", "command": "state", "state": "sleep"}) == {
            "ok": False,
            "message": "state must be available, break or logout",
        }
        assert (await sb.command({"agent_id": "nobody", "command": "state", "state": "break"}))[
            "ok"
        ] is False
        # With agent0 on a break, the call goes to agent1.
        await place(world, did_of("alpha"), digits="1")
        await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
        [session] = list(sb.sessions.values())
        assert session.agent == "agent1"
        kinds = [ev["kind"] for agent, ev in pushed if agent == "agent1"]
        assert "offer" in kinds and "connected" in kinds
        seqs = [ev["seq"] for agent, ev in pushed if agent == "agent1"]
        assert seqs == list(range(1, len(seqs) + 1))
        snap = await sb.command({"agent_id": "agent1", "command": "snapshot"})
        assert snap["snapshot"]["state"] == "on_call"
        assert snap["snapshot"]["call"]["call_id"] == session.call_id
        # Another agent cannot act on the call.
        assert (
            await sb.command({"agent_id": "agent0", "command": "hold", "call_id": session.call_id})
        )["ok"] is False
        assert (
            await sb.command({"agent_id": "agent1", "command": "hold", "call_id": session.call_id})
        )["ok"] is True
        assert world.switches[0].channels[session.call_id].held
        held = await sb.command({"agent_id": "agent1", "command": "snapshot"})
        assert held["snapshot"]["call"]["on_hold"] is True
        assert held["snapshot"]["call"]["masked"] is False
        assert (await sb.command({"agent_id": "agent1", "command": "unhold"}))["ok"] is True
        assert not world.switches[0].channels[session.call_id].held
        assert (await sb.command({"agent_id": "agent1", "command": "hangup"}))["ok"] is True
        await world.settle()
        [summary] = world.sink.calls.values()
        assert summary.outcome == "answered"
        check_partition(world, summary.call_id)
        assert ("agent1", "ended") in [(a, ev["kind"]) for a, ev in pushed]
    finally:
        await world.close()


async def test_transfer_to_another_queue_meters_a_second_queue_and_agent_span() -> None:
    directory = make_directory(agents=2)
    from dataclasses import replace

    from routing.engine.model import QueueConfig

    second = QueueConfig("alpha-vip", "alpha", wrap_up_s=5.0, offer_timeout_s=15.0)
    directory = replace(directory, queues={**directory.queues, "alpha-vip": second})
    world = await start_world(directory)
    try:
        sb = world.sb
        await place(world, did_of("alpha"), digits="1")
        await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
        [session] = {id(s): s for s in sb.sessions.values()}.values()
        first_agent = session.agent
        assert (
            await sb.command({"agent_id": first_agent, "command": "transfer", "queue_id": "nope"})
        )["ok"] is False
        reply = await sb.command(
            {"agent_id": first_agent, "command": "transfer", "queue_id": "alpha-vip"}
        )
        assert reply["ok"] is True, reply
        await wait_for(lambda: session.state == "agent" and session.summary.queue == "alpha-vip")
        await world.settle()
        [summary] = world.sink.calls.values()
        kinds = [s.kind.value for s in world.sink.segments[summary.call_id]]
        assert kinds[:3] == ["ivr", "queue", "agent"] and "agent" in kinds[3:]
        assert kinds.count("queue") == 2
        check_partition(world, summary.call_id)
    finally:
        await world.close()


async def test_agent_escalates_cold_to_the_second_line() -> None:
    directory = make_directory(agents=1)
    directory.tenants["alpha"] = replace(
        directory.tenants["alpha"], portal_url="https://calls.alpha.example"
    )
    world = await start_world(directory)
    try:
        sb = world.sb
        await place(world, did_of("alpha"), digits="1", talk=3600.0)
        await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
        [session] = list(sb.sessions.values())
        assert (await sb.command({"agent_id": "agent0", "command": "escalate"}))["ok"] is True
        assert session.state == "escalated"
        # The second line gets the context: who escalated why, and the call's record.
        second = world.switches[0].channels[session.second_leg].variables
        assert second["sip_h_X-CCP-Call"] == session.call_id
        assert second["sip_h_X-CCP-Agent"] == "agent0"
        assert second["sip_h_X-CCP-Reason"] == "agent"
        assert (
            second["sip_h_X-CCP-Link"]
            == f"https://calls.alpha.example/call-history/{session.call_id}/"
        )
        await wait_for(lambda: sb.engine.agent_state("agent0")[0] in ("wrap_up", "available"))
        world.switches[0].hangup(world.switches[0].channels[session.call_id])
        await world.settle()
        [summary] = world.sink.calls.values()
        segs = world.sink.segments[summary.call_id]
        assert [s.kind.value for s in segs if s.leg_uuid == summary.call_id] == [
            "ivr",
            "queue",
            "agent",
            "handoff",
        ]
        assert any(s.kind.value == "escalation" for s in segs)
        check_partition(world, summary.call_id)
    finally:
        await world.close()


def crash(sb: Switchboard) -> None:
    """kill -9, in process: every socket of the switchboard dies at once, nothing is cleaned up
    and nothing more is written (a dead process records no call endings)."""

    class Dead:
        async def call_finished(self, *_a: object) -> None: ...
        async def call_progress(self, *_a: object) -> None: ...
        async def notice(self, *_a: object) -> None: ...
        async def lookup(self, *_a: object) -> None: ...

        async def save_engine_snapshot(self, *_a: object) -> None: ...

        async def load_engine_snapshot(self) -> None: ...

        async def load_progress(self, *_a: object) -> None: ...

    sb.sink = Dead()  # type: ignore[assignment]
    sb.finished = lambda *_a: None  # type: ignore[method-assign]
    sb.feed = lambda *_a: []  # type: ignore[method-assign]
    if sb._timer_task is not None:
        sb._timer_task.cancel()
    if sb.server._server is not None:
        sb.server._server.close()
    for call in list(sb.server.calls):
        call._writer.transport.abort()  # type: ignore[union-attr]
    for task in list(sb.server._tasks):
        task.cancel()
    for link in sb.links.values():
        if link.client._task is not None:
            link.client._task.cancel()
        if link.client._client is not None and link.client._client._writer is not None:
            link.client._client._writer.transport.abort()
        if link._reader is not None:
            link._reader.cancel()
    for task in list(sb._tasks):
        task.cancel()


async def test_standby_takes_over_after_a_crash_bridged_calls_survive_and_are_billed_from_cdrs() -> (
    None
):
    directory = make_directory(agents=3)
    world = await start_world(directory)
    try:
        a = world.sb
        await place(world, did_of("alpha"), number="+380500000001", digits="1")
        await place(world, did_of("alpha"), number="+380500000002", digits="1")
        await wait_for(
            lambda: (
                sum(s.state == "agent" for s in {id(x): x for x in a.sessions.values()}.values())
                == 2
            )
        )
        busy = {s.agent for s in a.sessions.values()}
        bridged_ids = {s.call_id for s in a.sessions.values()}
        a_sink = a.sink
        crash(a)
        await asyncio.sleep(0.2)
        # The switch kept both bridges (resume): nothing was dropped.
        switch = world.switches[0]
        assert bridged_ids <= set(switch.channels)
        # The standby starts, connects to the node and adopts the busy agents.
        node = world.nodes[0]
        b = Switchboard(directory, [NodeSpec("node1", "127.0.0.1", node.port, "ClueCon")], sink=MemorySink(),
                        clock=world.clock, outbound_port=0, callback_dial="user/{number}")  # fmt: skip
        await b.start()
        switch.outbound = ("127.0.0.1", b.server.port)
        await b.wait_nodes(5.0)
        assert await b.adopt() == 2
        assert {ag for ag in busy if b.engine.agent_state(ag) == ("break", "adopted_call")} == busy
        # A new call goes to the free agent.
        await place(world, did_of("alpha"), number="+380500000003", digits="1")
        await wait_for(lambda: any(s.state == "agent" for s in b.sessions.values()))
        [new] = list(b.sessions.values())
        assert new.agent not in busy
        # The old calls end on the switch; their agents come back.
        for cid in bridged_ids:
            switch.hangup(switch.channels[cid])
        await wait_for(lambda: all(b.engine.agent_state(ag)[0] == "available" for ag in busy))
        switch.hangup(switch.channels[new.call_id])
        await wait_for(lambda: not switch.channels and not b.sessions)
        # The crashed switchboard's calls are finished from their CDRs, from the progress it
        # stored at the bridge: every answered millisecond is metered.
        for cid in bridged_ids:
            record = a_sink.progress[cid]
            meter = CallMeter.from_dict(record.meter)
            cdrs = {
                leg: CdrTimes(leg, world.cdrs[leg]["answer_ms"] or None, world.cdrs[leg]["end_ms"])
                for leg in record.legs
            }
            meter.finish_from_cdrs(cdrs)
            result = reconcile(
                meter.segments(),
                cdrs,
                a_leg_uuid=cid,
                unmetered_legs=[leg for leg, r in record.legs.items() if r == "agent"],
            )
            assert result.status == "ok", result
            a_leg = sorted(
                (s for s in result.segments if s.leg_uuid == cid), key=lambda s: s.start_ms
            )
            assert [s.kind.value for s in a_leg] == ["ivr", "queue", "agent"]
            assert (
                a_leg[0].start_ms == world.cdrs[cid]["answer_ms"]
                and a_leg[-1].end_ms == world.cdrs[cid]["end_ms"]
            )
        await b.stop()
    finally:
        await world.close()


async def test_warm_escalation_consults_then_hands_over_and_meters_the_overlap() -> None:
    world = await start_world(make_directory(agents=1))
    try:
        sb = world.sb
        await place(world, did_of("alpha"), digits="1", talk=3600.0)
        await wait_for(lambda: any(s.state == "agent" for s in sb.sessions.values()))
        [session] = list(sb.sessions.values())
        assert (await sb.command({"agent_id": "agent0", "command": "complete_transfer"}))[
            "ok"
        ] is False
        assert (await sb.command({"agent_id": "agent0", "command": "escalate", "mode": "warm"}))[
            "ok"
        ] is True
        assert session.state == "consult"
        switch = world.switches[0]
        # The agent talks to the second line; the caller waits with music.
        assert switch.channels[session.agent_leg].bridged_to.uuid == session.second_leg
        assert switch.channels[session.call_id].bridged_to is None
        await asyncio.sleep(0.3)
        assert (await sb.command({"agent_id": "agent0", "command": "complete_transfer"}))[
            "ok"
        ] is True
        assert session.state == "escalated"
        assert switch.channels[session.call_id].bridged_to.uuid == session.second_leg
        await wait_for(lambda: sb.engine.agent_state("agent0")[0] in ("wrap_up", "available"))
        if sb.engine.agent_state("agent0")[0] == "wrap_up":
            assert await sb.command({"agent_id": "agent0", "command": "wrap_up_done"}) == {
                "ok": True,
                "message": "available",
            }
        assert (await sb.command({"agent_id": "agent0", "command": "wrap_up_done"}))[
            "message"
        ] == "you are not in wrap-up"
        await asyncio.sleep(0.3)
        switch.hangup(switch.channels[session.call_id])
        await world.settle()
        [summary] = world.sink.calls.values()
        assert (summary.outcome, summary.cause) == ("escalated", "warm")
        segs = world.sink.segments[summary.call_id]
        a_leg = [s for s in segs if s.leg_uuid == summary.call_id]
        assert [s.kind.value for s in a_leg] == ["ivr", "queue", "agent", "handoff"]
        [esc] = [s for s in segs if s.kind.value == "escalation"]
        agent_seg = a_leg[2]
        # The consultation overlaps the agent's segment: both are real resources.
        assert agent_seg.start_ms < esc.start_ms < agent_seg.end_ms
        check_partition(world, summary.call_id)
    finally:
        await world.close()
