"""mod_conference on the switch simulator: rooms, members, moving legs out of bridges, events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from telephony.simulator import Switch, VirtualClock
from telephony.simulator.switch import SimEvent, _Queued
from telephony.simulator.traffic import add_agents

pytestmark = pytest.mark.asyncio

ROOM = "ccp-test"


class Recorder:
    """Every event the switch fires (a listener with no filter)."""

    def __init__(self) -> None:
        self.events: list[SimEvent] = []

    def deliver(self, event: SimEvent) -> None:
        self.events.append(event)

    def maintenance(self) -> list[tuple[str, str | None, str | None]]:
        return [
            (e.get("Action") or "", e.get("Member-ID"), e.get("Conference-Size"))
            for e in self.events
            if e.name == "CUSTOM" and e.get("Event-Subclass") == "conference::maintenance"
        ]

    def named(self, name: str, uuid: str) -> list[SimEvent]:
        return [e for e in self.events if e.name == name and e.unique_id == uuid]


@pytest.fixture
async def switch() -> AsyncIterator[Switch]:
    sw = Switch(clock=VirtualClock(speed=200.0), seed=5, hostname="node1")
    add_agents(sw, ["1001", "1002", "1003"], p_no_answer=0.0, p_busy=0.0, answer_delay=(0.1, 0.2))
    await sw.start()
    try:
        yield sw
    finally:
        await sw.stop()


async def leg(sw: Switch, ext: str, uuid: str) -> None:
    reply = await sw.api("originate", f"{{origination_uuid={uuid}}}user/{ext} &park()")
    assert reply == f"+OK {uuid}\n", reply


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def three_in_a_room(sw: Switch, rec: Recorder) -> None:
    """a (parked) + b<->c (bridged) -> one room, as the switchboard does it."""
    for ext, uuid in (("1001", "a"), ("1002", "b"), ("1003", "c")):
        await leg(sw, ext, uuid)
    assert (await sw.api("uuid_bridge", "b c")).startswith("+OK")
    await until(lambda: sw.channels["b"].bridged_to is sw.channels["c"])
    assert await sw.api("uuid_transfer", f"b -both conference:{ROOM}@default inline") == "+OK\n"
    assert await sw.api("uuid_transfer", f"a conference:{ROOM}@default inline") == "+OK\n"
    await until(lambda: ROOM in sw.conferences and len(sw.conferences[ROOM].members) == 3)


async def test_transfer_both_moves_a_bridge_into_one_room_without_hanging_up(switch) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    switch.listeners.add(rec)
    await three_in_a_room(switch, rec)
    room = switch.conferences[ROOM]
    assert {m.channel.uuid for m in room.members.values()} == {"a", "b", "c"}
    # Nobody was hung up by the broken bridge (CF_REDIRECT on both legs), and it was reported.
    assert all(switch.channels[u].alive for u in "abc")
    assert switch.channels["b"].bridged_to is None and switch.channels["c"].bridged_to is None
    assert len(rec.named("CHANNEL_UNBRIDGE", "b")) == 1
    actions = rec.maintenance()
    assert actions[0] == ("conference-create", None, "0")
    # Member ids come from one counter of the node; the size grows with each member.
    assert [(a, s) for a, _id, s in actions[1:]] == [
        ("add-member", "1"),
        ("add-member", "2"),
        ("add-member", "3"),
    ]
    assert sorted(int(i) for _a, i, _s in actions[1:]) == [1, 2, 3]
    listing = await switch.api("conference", f"{ROOM} list")
    assert sorted(row.split(";")[2] for row in listing.splitlines()) == ["a", "b", "c"]
    assert (await switch.api("conference", "list")).startswith(f"+OK Conference {ROOM} (3 members")


async def test_members_leave_by_hangup_kick_and_the_last_one_ends_the_room(switch) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    switch.listeners.add(rec)
    await three_in_a_room(switch, rec)
    ids = {m.channel.uuid: m.id for m in switch.conferences[ROOM].members.values()}
    # A hangup leaves the room (del-member); the others stay, nobody else is hung up.
    assert await switch.api("uuid_kill", "c") == "+OK\n"
    assert "c" not in switch.channels and switch.channels["a"].alive
    assert rec.maintenance()[-1] == ("del-member", str(ids["c"]), "2")
    # Kicked: the member's app returns and its inline dialplan has nothing left: it hangs up
    # with its own CDR.
    assert await switch.api("conference", f"{ROOM} kick {ids['b']}") == f"+OK kicked {ids['b']}\n"
    await until(lambda: "b" not in switch.channels)
    assert await switch.api("conference", f"{ROOM} kick 99") == "-ERR Non-Existant ID 99\n"
    assert await switch.api("conference", f"{ROOM} mute 1") == (
        "-ERR Conference command 'mute' not found.\n"
    )
    assert await switch.api("conference", f"{ROOM} hup all") == f"+OK hup {ids['a']}\n"
    await until(lambda: not switch.channels)
    actions = [a for a, _i, _s in rec.maintenance()]
    assert actions[-2:] == ["del-member", "conference-destroy"]
    assert "kick-member" in actions and "hup-member" in actions
    assert ROOM not in switch.conferences
    assert await switch.api("conference", f"{ROOM} list") == f"-ERR Conference {ROOM} not found\n"
    assert await switch.api("conference", "list") == "No active conferences.\n"


async def test_a_member_run_from_park_returns_there_and_uuid_bridge_takes_it_out(switch) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder()
    switch.listeners.add(rec)
    for ext, uuid in (("1001", "a"), ("1002", "b")):
        await leg(switch, ext, uuid)
    # "execute conference" on a parked channel (what sendmsg does for a socket's caller).
    for uuid in "ab":
        switch.queue_app(switch.channels[uuid], _Queued("conference", f"{ROOM}@default"))
    await until(lambda: ROOM in switch.conferences and len(switch.conferences[ROOM].members) == 2)
    ids = {m.channel.uuid: m.id for m in switch.conferences[ROOM].members.values()}
    assert await switch.api("conference", f"{ROOM} kick {ids['a']}") == f"+OK kicked {ids['a']}\n"
    await asyncio.sleep(0.05)
    # Back in its park: still up, no longer a member.
    assert switch.channels["a"].alive and switch.channels["a"].parked
    assert [m.channel.uuid for m in switch.conferences[ROOM].members.values()] == ["b"]
    # uuid_bridge takes b out of the room (the room ends) and bridges it with a.
    assert (await switch.api("uuid_bridge", "a b")).startswith("+OK")
    await until(lambda: switch.channels["a"].bridged_to is switch.channels["b"])
    assert ROOM not in switch.conferences
    assert [a for a, _i, _s in rec.maintenance()][-2:] == ["del-member", "conference-destroy"]
    assert (
        await switch.api("conference", "nosuch kick all")
    ) == "-ERR Conference nosuch not found\n"


async def test_maintenance_events_reach_an_esl_subscriber_of_the_subclass() -> None:
    from sim_helpers import start_node

    from telephony.esl import InboundClient

    node = await start_node(speed=200.0, seed=3)
    client = InboundClient("127.0.0.1", node.port, "ClueCon", command_timeout=5.0)
    await client.connect()
    try:
        await client.subscribe("CUSTOM", "conference::maintenance")
        reply = await client.api(
            f"originate {{origination_uuid=m1}}loopback/ans/esltest &conference({ROOM}@default)"
        )
        assert reply == "+OK m1\n"
        seen = []
        while len(seen) < 2:
            ev = await client.events.get(5)
            assert ev.name == "CUSTOM" and ev.get("Event-Subclass") == "conference::maintenance"
            seen.append((ev.get("Action"), ev.get("Conference-Name"), ev.get("Unique-ID")))
        assert seen == [("conference-create", ROOM, None), ("add-member", ROOM, "m1")]
        assert (await client.api("uuid_kill m1")) == "+OK\n"
        actions = []
        while len(actions) < 2:
            actions.append((await client.events.get(5)).get("Action"))
        assert actions == ["del-member", "conference-destroy"]
    finally:
        await client.disconnect()
        await node.stop()
