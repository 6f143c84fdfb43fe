"""Takeover without losing callers: the standby restores the engine and carries on every call.

The active switchboard sends ``resume`` on every call's socket; the dialplan's second
``socket`` is the standby's. When the active one dies, a caller in the IVR or the queue is not
hung up: the socket's end continues the dialplan into the standby, which holds the call until
it is active, restores the routing engine from the last snapshot and carries on: the same meter
(from the stored progress), the same place in the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

import pytest
from switchboard_world import did_of, make_directory, start_world
from test_switchboard import check_partition, place
from test_switchboard_control import crash, wait_for

from routing.engine.router import Engine
from telephony.callflow.directory import Menu, MenuOption, NumberRoute, Prompt
from telephony.callflow.switchboard import MemorySink, NodeSpec, Switchboard

pytestmark = pytest.mark.asyncio

#: Ten minutes of tone: a caller who pressed a wrong digit is still in the IVR at the crash.
LONG = Prompt(file="tone_stream://%(1000,0,440);loops=600")


def directory_with_slow_menu():  # type: ignore[no-untyped-def]
    directory = make_directory(agents=1)
    plan = directory.tenants["alpha"]
    slow = Menu(
        "slow",
        Prompt(text="For an agent press 1."),
        (MenuOption("1", "queue:alpha-general"),),
        timeout_s=60.0,
        invalid_prompt=LONG,
    )
    directory.tenants["alpha"] = dataclasses.replace(plan, menus={**plan.menus, "slow": slow})
    directory.numbers[did_of("alpha", 5)] = NumberRoute(
        did_of("alpha", 5), "alpha", entry_menu="slow"
    )
    return directory


def sessions(sb: Switchboard) -> list:  # type: ignore[type-arg]
    return list({id(s): s for s in sb.sessions.values()}.values())


def standby(world, directory, sink: MemorySink, **kw) -> Switchboard:  # type: ignore[no-untyped-def]
    """A second switchboard for the world's node, on the world's clock, not started."""
    node = NodeSpec("node1", "127.0.0.1", world.nodes[0].port, "ClueCon")
    return Switchboard(directory, [node], sink=sink, clock=world.clock, outbound_port=0, **kw)


async def listening_standby(world, directory, **kw) -> Switchboard:  # type: ignore[no-untyped-def]
    """The standby, listening from the start (the dialplan's second socket), sharing the stored
    progress and snapshots with the active one as the database does."""
    b = standby(world, directory, MemorySink(shared_with=world.sink),
                callback_dial="user/{number}", **kw)  # fmt: skip
    await b.listen()
    world.switches[0].standby = ("127.0.0.1", b.server.port)
    return b


async def test_callers_in_the_ivr_and_the_queue_survive_a_crash_and_keep_their_place() -> None:
    directory = directory_with_slow_menu()
    world = await start_world(directory, agents=1)
    switch = world.switches[0]
    a = world.sb
    b = await listening_standby(world, directory, reentry_grace_s=30.0)
    try:
        talking = await place(world, did_of("alpha"), number="+380500000001", digits="1", talk=3600)
        await wait_for(lambda: any(s.state == "agent" for s in sessions(a)))
        first = await place(world, did_of("alpha"), number="+380500000002", digits="1", talk=5)
        await wait_for(lambda: a.engine.waiting("alpha-general") == 1)
        second = await place(world, did_of("alpha"), number="+380500000003", digits="1", talk=5)
        await wait_for(lambda: a.engine.waiting("alpha-general") == 2)
        in_ivr = await place(world, did_of("alpha", 5), number="+380500000004", digits="71", talk=5)
        await wait_for(lambda: in_ivr.digits_sent == "7")
        await asyncio.sleep(0.1)  # the wrong-digit prompt (ten minutes) is playing
        await a.save_snapshot()
        waiting_ids = {s.call_id for s in sessions(a) if s.state == "queue"}
        ivr_id = next(s.call_id for s in sessions(a) if s.state == "ivr")
        crash_ms = int(world.clock.now() * 1000)
        crash(a)
        # The standby holds the resumed callers until it is active; nobody was hung up.
        await wait_for(lambda: len(b.server.calls) == 3)
        assert switch.socket_hangups == set()
        assert switch.continued == waiting_ids | {ivr_id}
        await b.start(restore=True)
        await b.wait_nodes(5.0)
        assert b.restored_from is not None
        assert await b.adopt() == 1  # the bridged agent, on its call in the restored engine
        assert b.engine.agent_state("agent0")[0] == "on_call"
        # The queued two take their places in the restored engine; the IVR caller's menu again.
        await wait_for(lambda: b.stats["calls_resumed_in_place"] == 2)
        await wait_for(lambda: b.stats["calls_resumed"] == 3)
        await wait_for(lambda: b.engine.waiting("alpha-general") == 3)  # + the IVR caller
        # The agent's call ends: wrap-up, then the callers in their order of arrival.
        switch.hangup(switch.channels[talking.uuid])
        await wait_for(lambda: second.bridged_at is not None, timeout=30.0)
        await wait_for(lambda: not switch.channels and not b.sessions, timeout=30.0)
        assert first.bridged_at < second.bridged_at < in_ivr.bridged_at
        view = SimpleNamespace(sink=b.sink, cdrs=world.cdrs)
        for outcome in (first, second, in_ivr):
            summary = b.sink.calls[outcome.uuid]
            assert summary.outcome == "answered", summary
            kinds = [
                s.kind.value for s in b.sink.segments[outcome.uuid] if s.leg_uuid == outcome.uuid
            ]
            assert kinds == ["ivr", "queue", "agent"], kinds
            # One meter across the crash: the queue (or IVR) span that was open goes on.
            segs = b.sink.segments[outcome.uuid]
            spanning = [s for s in segs if s.start_ms < crash_ms < s.end_ms]
            assert [s.kind.value for s in spanning] == (["ivr"] if outcome is in_ivr else ["queue"])
            check_partition(view, outcome.uuid)
        assert not any(outcome.uuid in world.sink.calls for outcome in (first, second, in_ivr))
        assert b.stats["restored_calls_expired"] == 0
    finally:
        await b.stop()
        await world.close()


async def test_a_standby_without_a_snapshot_still_carries_on_the_resumed_callers() -> None:
    directory = make_directory(agents=1)
    world = await start_world(directory, agents=1)
    switch = world.switches[0]
    a = world.sb
    b = await listening_standby(world, directory)
    try:
        await place(world, did_of("alpha"), number="+380500000008", digits="1", talk=3600)
        await wait_for(lambda: any(s.state == "agent" for s in sessions(a)))
        waiting = await place(world, did_of("alpha"), number="+380500000009", digits="1", talk=5)
        await wait_for(lambda: a.engine.waiting("alpha-general") == 1)
        crash(a)
        await wait_for(lambda: len(b.server.calls) == 1)
        b.sink.snapshot.clear()  # type: ignore[attr-defined]  # nothing stored
        await b.start(restore=True)  # the engine starts from the configuration
        assert b.restored_from is None
        await b.wait_nodes(5.0)
        await b.adopt()
        await wait_for(lambda: b.engine.waiting("alpha-general") == 1)
        assert b.stats["calls_resumed"] == 1
        assert b.stats["calls_resumed_in_place"] == 0  # no snapshot: it arrived again
        for ch in list(switch.channels.values()):
            if ch.variables.get("ccp_role") == "agent":
                switch.hangup(ch)  # the adopted agent's call ends; the agent takes the caller
        await world.settle()
        summary = b.sink.calls[waiting.uuid]
        assert summary.outcome == "answered"
        check_partition(SimpleNamespace(sink=b.sink, cdrs=world.cdrs), waiting.uuid)
    finally:
        await b.stop()
        await world.close()


async def test_a_stale_snapshot_is_not_restored() -> None:
    sink = MemorySink()
    directory = make_directory(agents=1)
    world = await start_world(directory, agents=1)
    try:
        old = Engine()
        await sink.save_engine_snapshot(old.snapshot_bytes(), world.clock.now() - 600)
        b = standby(world, directory, sink)
        await b.start(restore=True, restore_max_age_s=120)
        assert b.restored_from is None
        await b.stop()
    finally:
        await world.close()


async def test_a_caller_parked_in_a_consultation_is_queued_again_by_the_standby() -> None:
    """Warm escalation in progress (the caller on music, our agent talking to the second line)
    when the active switchboard dies: the caller's socket resumes into the standby, which
    queues the caller again (never silence); the first agent, still with the second line, is
    adopted on the old call; another agent takes the caller."""
    directory = make_directory(agents=2)
    world = await start_world(directory, agents=2)
    switch = world.switches[0]
    a = world.sb
    b = await listening_standby(world, directory, reentry_grace_s=30.0)
    try:
        await a.command({"agent_id": "agent1", "command": "state", "state": "break"})
        caller = await place(world, did_of("alpha"), number="+380500000021", digits="1", talk=3600)
        await wait_for(lambda: any(s.state == "agent" for s in sessions(a)))
        [session] = sessions(a)
        reply = await a.command({"agent_id": "agent0", "command": "escalate", "mode": "warm"})
        assert reply["ok"] is True and session.state == "consult"
        await a.save_snapshot()
        crash(a)
        await wait_for(lambda: len(b.server.calls) == 1)
        await b.start(restore=True)
        await b.wait_nodes(5.0)
        assert await b.adopt() == 1  # agent0, still talking to the second line
        await b.command({"agent_id": "agent1", "command": "state", "state": "available"})
        await wait_for(lambda: any(s.state == "agent" for s in sessions(b)), timeout=20.0)
        [again] = sessions(b)
        assert again.agent == "agent1" and again.engine_id == f"{caller.uuid}#1"
        switch.hangup(switch.channels[caller.uuid])
        await wait_for(lambda: caller.uuid in b.sink.calls, timeout=20.0)
        kinds = [s.kind.value for s in b.sink.segments[caller.uuid] if s.leg_uuid == caller.uuid]
        assert kinds == ["ivr", "queue", "agent", "ivr", "queue", "agent"], kinds
        check_partition(SimpleNamespace(sink=b.sink, cdrs=world.cdrs), caller.uuid)
    finally:
        await b.stop()
        await world.close()
