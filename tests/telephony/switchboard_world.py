"""A small world for switchboard tests: simulated nodes, a directory, a switchboard.

Everything runs in one event loop on one virtual clock (the simulator's), faster than real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from routing.engine.model import AgentProfile, QueueConfig, TenantConfig
from telephony.callflow.directory import (
    AgentSeat,
    Directory,
    Menu,
    MenuOption,
    NumberRoute,
    Prompt,
    TenantCallPlan,
)
from telephony.callflow.switchboard import MemorySink, NodeSpec, Switchboard
from telephony.simulator import Switch, SwitchNode, VirtualClock
from telephony.simulator.traffic import TenantProfile, TrafficGenerator, add_agents

TENANTS = ("alpha", "beta", "gamma")


def did_of(tenant: str, i: int = 0) -> str:
    return f"+38044{TENANTS.index(tenant) + 1:03d}{i:04d}"


def make_directory(
    tenants: tuple[str, ...] = ("alpha",),
    agents: int = 4,
    *,
    wrap_up_s: float = 5.0,
    second_line: str = "user/2001",
    suspended: tuple[str, ...] = (),
    overflow_did: bool = False,
    max_overflow: int | None = None,
    callback_over_s: float | None = None,
) -> Directory:
    plans, routing, queues, numbers = {}, {}, {}, {}
    for t in tenants:
        qid = f"{t}-general"
        menu = Menu(
            "main",
            Prompt(text=f"Welcome to {t}. For an agent press 1, for your order press 2."),
            (
                MenuOption("1", f"queue:{qid}"),
                MenuOption("2", "answer"),
                MenuOption("0", "escalate"),
            ),
            on_timeout=f"queue:{qid}",
        )
        plans[t] = TenantCallPlan(
            tenant_id=t,
            active=t not in suspended,
            entry_menu="main",
            menus={"main": menu},
            default_queue=qid,
            second_line=second_line,
        )
        routing[t] = TenantConfig(t, max_overflow_in_concurrent=max_overflow)
        queues[qid] = QueueConfig(
            qid, t, wrap_up_s=wrap_up_s, offer_timeout_s=15.0, callback_over_s=callback_over_s
        )
        numbers[did_of(t)] = NumberRoute(did_of(t), t)
        if overflow_did:
            numbers[did_of(t, 9)] = NumberRoute(did_of(t, 9), t, origin="overflow")
    seats = {
        f"agent{i}": AgentSeat(
            AgentProfile(f"agent{i}", {t: {} for t in tenants}), f"user/{1001 + i}"
        )
        for i in range(agents)
    }
    return Directory(numbers=numbers, tenants=plans, routing=routing, queues=queues, agents=seats)


@dataclass
class World:
    clock: VirtualClock
    nodes: list[SwitchNode]
    sb: Switchboard
    sink: MemorySink
    cdrs: dict[str, dict[str, int | str]] = field(default_factory=dict)

    @property
    def switches(self) -> list[Switch]:
        return [n.switch for n in self.nodes]

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait (real seconds) until no channel is left on any node and every call is recorded."""
        async with asyncio.timeout(timeout_s):
            while any(s.channels for s in self.switches) or self.sb.sessions:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.sb.stop()
        for node in self.nodes:
            await node.stop()


async def start_world(
    directory: Directory,
    *,
    n_nodes: int = 1,
    speed: float = 40.0,
    agents: int = 4,
    seed: int = 1,
    p_no_answer: float = 0.0,
    p_busy: float = 0.0,
) -> World:
    clock = VirtualClock(speed=speed)
    sink = MemorySink()
    nodes = []
    for i in range(n_nodes):
        switch = Switch(clock=clock, seed=seed * 100 + i, hostname=f"node{i + 1}")
        add_agents(
            switch, [str(1001 + k) for k in range(agents)], p_no_answer=p_no_answer, p_busy=p_busy
        )
        add_agents(switch, ["2001"], p_no_answer=0.0, p_busy=0.0)  # the client's second line
        for did, route in directory.numbers.items():
            switch.dids[did] = {"ccp_did": did, "ccp_tenant": route.tenant_id}
        node = SwitchNode(switch, password="ClueCon", port=0)
        await node.start()
        nodes.append(node)
    specs = [NodeSpec(n.switch.hostname, "127.0.0.1", n.port, "ClueCon") for n in nodes]
    sb = Switchboard(
        directory, specs, sink=sink, clock=clock, outbound_port=0, callback_dial="user/{number}"
    )
    await sb.start()
    for node in nodes:
        node.switch.outbound = ("127.0.0.1", sb.server.port)
    await sb.wait_nodes(5.0)
    world = World(clock, nodes, sb, sink)

    for node in nodes:

        def keep(ch, _world=world, _node=node.switch.hostname):  # type: ignore[no-untyped-def]
            _world.cdrs[ch.uuid] = {
                "answer_ms": ch.answered_us // 1000 if ch.answered_us else 0,
                "end_ms": ch.hangup_us // 1000,
                "node": _node,
                "cause": ch.hangup_cause,
                "tenant": ch.variables.get("ccp_tenant", ""),
            }

        node.switch.on_hangup_complete.append(keep)
    return world


def traffic(
    world: World, tenants: tuple[str, ...], calls_per_hour: float, seed: int = 3, **kw: object
) -> list[TrafficGenerator]:
    gens = []
    for i, switch in enumerate(world.switches):
        profiles = [TenantProfile(t, [did_of(t)], calls_per_hour, **kw) for t in tenants]  # type: ignore[arg-type]
        gens.append(
            TrafficGenerator(
                switch, profiles, seed=seed * 10 + i, patience_mean=240.0, talk_mean=60.0
            )
        )
    return gens


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (real seconds) until ``predicate()`` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(directory: Directory, **kw) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    """``start_world`` for the length of a ``with`` block, closed however the block ends."""
    world = await start_world(directory, **kw)
    try:
        yield world
    finally:
        await world.close()


def listen(world: World) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """Every event the switchboard pushes to an agent's console, as (agent, event)."""
    pushed: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    world.sb.agent_listener = lambda agent, ev: pushed.append((agent, ev))
    return pushed


def a_leg(world: World, call_id: str) -> list:  # type: ignore[type-arg]
    """The caller's own segments of a call, in time order."""
    return sorted(
        (s for s in world.sink.segments[call_id] if s.leg_uuid == call_id),
        key=lambda s: s.start_ms,
    )
