"""Standby takeover after ``kill -9`` of the active switchboard (issue #6 benchmark).

Two switchboard processes (``--role worker``, started by this script) share a PostgreSQL
advisory lock (``telephony.switchboard_store.LeaderLock``): the first becomes active, the second
waits. This process runs a simulated FreeSWITCH node (real ESL over loopback, real time) with
agent phones and callers; once enough calls are bridged, the active switchboard is killed with
SIGKILL. Printed: how long until the standby holds the lock, until it is connected to the node
and has adopted the agents still bridged, bridged calls dropped (target 0), callers who were in
the IVR or the queue at that moment: carried on by the standby (the dialplan's second socket),
lost, and later served by an agent; and whether calls placed after the takeover are served.

The two processes share what production shares through PostgreSQL (the engine snapshot and the
calls' stored progress) through files in a temporary folder (``SharedSink``), so the bench needs
no migrated database: only the lock.

Needs a PostgreSQL for the lock: ``DATABASE_URL`` (default: the machine's postgres on
127.0.0.1:5432). Run: ``.venv/bin/python benchmarks/bench_takeover.py [--calls 120 --agents 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "telephony")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccplatform.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

OUTBOUND_PORTS = (18184, 18185)  # the active's socket, the standby's (the dialplan's two)


def shared_sink(folder: Path):  # type: ignore[no-untyped-def]
    """A MemorySink whose engine snapshot and call progress live in ``folder`` (both processes)."""
    from telephony.callflow.switchboard import MemorySink

    class SharedSink(MemorySink):
        async def save_engine_snapshot(self, data: bytes, at: float) -> None:
            tmp = folder / "snapshot.tmp"
            tmp.write_bytes(json.dumps(at).encode() + b"\n" + data)
            tmp.replace(folder / "snapshot")

        async def load_engine_snapshot(self) -> tuple[bytes, float] | None:
            path = folder / "snapshot"
            if not path.exists():
                return None
            head, _, data = path.read_bytes().partition(b"\n")
            return data, float(json.loads(head))

        async def call_progress(self, summary):  # type: ignore[no-untyped-def]
            await super().call_progress(summary)
            (folder / f"{summary.call_id}.json").write_text(json.dumps(summary.meter))

        async def load_progress(self, tenant_id: str, call_id: str):  # type: ignore[no-untyped-def]
            path = folder / f"{call_id}.json"
            return json.loads(path.read_text()) if path.exists() else None

    return SharedSink()


async def worker(esl_port: int, agents: int, port: int, folder: Path) -> None:
    """One switchboard process: listen, wait for the lock, then run calls (prints JSON lines)."""
    import django

    django.setup()
    from switchboard_world import make_directory

    from telephony.callflow.switchboard import NodeSpec, Switchboard
    from telephony.switchboard_store import LeaderLock, dsn_from_settings

    def say(**kw: object) -> None:
        print(json.dumps({**kw, "t": time.time(), "pid": os.getpid()}), flush=True)

    sb = Switchboard(make_directory(("alpha",), agents=agents), [NodeSpec("node1", "127.0.0.1", esl_port, "ClueCon")],
                     sink=shared_sink(folder), outbound_port=port)  # fmt: skip
    await sb.listen()
    lock = LeaderLock(dsn_from_settings(), "ccp-bench-takeover")
    say(event="started")
    await lock.acquire(poll_s=0.2, on_wait=lambda: say(event="standby"))
    say(event="lock")
    await sb.start(restore=True)
    await sb.wait_nodes(10.0)
    adopted = await sb.adopt()
    say(event="ready", adopted=adopted, restored=sb.stats["restored_calls"])
    while True:
        await asyncio.sleep(1.0)
        from collections import Counter

        say(event="stats", resumed=sb.stats["calls_resumed"],
            in_place=sb.stats["calls_resumed_in_place"],
            agents=Counter(sb.engine.agent_state(a)[0] for a in sb.directory.agents),
            waiting=sb.engine.waiting("alpha-general"))  # fmt: skip


async def bench(args: argparse.Namespace) -> None:
    import tempfile

    from switchboard_world import did_of

    from telephony.simulator import Switch, SwitchNode, VirtualClock
    from telephony.simulator.traffic import (
        Caller,
        CallerOutcome,
        CallerPlan,
        TenantProfile,
        add_agents,
    )

    folder = Path(tempfile.mkdtemp(prefix="ccp-takeover-"))
    clock = VirtualClock(speed=1.0)
    switch = Switch(clock=clock, seed=7, hostname="node1", outbound=("127.0.0.1", OUTBOUND_PORTS[0]),
                    standby=("127.0.0.1", OUTBOUND_PORTS[1]))  # fmt: skip
    add_agents(switch, [str(1001 + i) for i in range(args.agents)])
    add_agents(switch, ["2001"])
    switch.dids[did_of("alpha")] = {"ccp_did": did_of("alpha"), "ccp_tenant": "alpha"}
    node = SwitchNode(switch, password="ClueCon", port=0)
    await node.start()

    async def spawn(port: int) -> tuple[asyncio.subprocess.Process, asyncio.Queue[dict]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--role", "worker", "--esl-port", str(node.port), "--agents", str(args.agents),
            "--port", str(port), "--folder", str(folder), stdout=subprocess.PIPE,
        )  # fmt: skip
        queue: asyncio.Queue[dict] = asyncio.Queue()

        async def pump() -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                if line.startswith(b"{"):
                    await queue.put(json.loads(line))

        asyncio.ensure_future(pump())
        return proc, queue

    async def until(queue: asyncio.Queue[dict], event: str, timeout: float = 60.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                msg = await queue.get()
                if msg["event"] == event:
                    return msg

    active, a_events = await spawn(OUTBOUND_PORTS[0])
    await until(a_events, "ready")
    standby, b_events = await spawn(OUTBOUND_PORTS[1])
    await until(b_events, "standby")

    outcomes: list[CallerOutcome] = []
    rng = random.Random(3)

    def place(i: int) -> None:
        plan = CallerPlan(i, 0.0, "alpha", did_of("alpha"), f"+38050{i:07d}", patience=600.0,
                          talk_time=rng.uniform(40, 90), choices=["1"], wants_callback=False)  # fmt: skip
        out = CallerOutcome(plan)
        Caller(
            switch, plan, TenantProfile("alpha", [did_of("alpha")], 0), out, random.Random(i)
        ).start()
        outcomes.append(out)

    for i in range(args.calls):
        place(i)
        await asyncio.sleep(1.0 / args.cps)
    await asyncio.sleep(3.0)
    bridged = {o.uuid for o in outcomes if o.bridged_at is not None and o.ended_at is None}
    waiting = {o.uuid for o in outcomes if o.bridged_at is None and o.ended_at is None}
    killed_at = time.time()
    os.kill(active.pid, signal.SIGKILL)
    lock = await until(b_events, "lock")
    ready = await until(b_events, "ready")
    await asyncio.sleep(5.0)
    dropped = bridged & switch.socket_hangups
    lost_waiting = waiting & switch.socket_hangups
    carried = waiting & switch.continued
    stats = await until(b_events, "stats")
    # New calls after the takeover are served by the standby.
    after = len(outcomes)
    for i in range(after, after + 10):
        place(i)
        await asyncio.sleep(0.2)
    # Everyone queued (those carried over first, in their order) is served as agents free up
    # (talk 40-90 s): give it time.
    await asyncio.sleep(args.observe)
    served = sum(1 for o in outcomes[after:] if o.bridged_at is not None)
    still_waiting = sum(1 for o in outcomes[after:] if o.bridged_at is None and o.ended_at is None)
    waiting_served = sum(1 for o in outcomes if o.uuid in waiting and o.bridged_at is not None)
    print(f"bench_takeover: {args.calls} calls at {args.cps}/s, {args.agents} agents, real time")
    print(
        f"  at the kill: {len(bridged)} bridged calls, {len(waiting)} callers in the IVR or the queue"
    )
    print(f"  standby holds the lock {lock['t'] - killed_at:.3f} s after kill -9; "
          f"connected and adopted {ready['adopted']} bridged agents {ready['t'] - killed_at:.3f} s after it")  # fmt: skip
    print(
        f"  bridged calls dropped: {len(dropped)} (target 0); callers in the IVR/queue lost: {len(lost_waiting)}"
    )
    print(
        f"  callers in the IVR/queue carried on by the standby: {len(carried)} of {len(waiting)} "
        f"({stats['in_place']} back in their place from the restored engine of {ready['restored']} "
        f"calls); served by an agent within {args.observe:.0f} s: {waiting_served}"
    )
    print(
        f"  calls placed after the takeover served by an agent within {args.observe:.0f} s: {served} of 10"
        f" ({still_waiting} still waiting in the queue, behind the callers carried over)"
    )
    standby.kill()
    await standby.wait()
    await active.wait()
    await node.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", default="bench", choices=("bench", "worker"))
    p.add_argument("--esl-port", type=int, default=0)
    p.add_argument("--agents", type=int, default=40)
    p.add_argument("--calls", type=int, default=80)
    p.add_argument("--cps", type=float, default=4.0)
    p.add_argument("--observe", type=float, default=90.0, help="seconds to watch after it")
    p.add_argument("--port", type=int, default=OUTBOUND_PORTS[0], help=argparse.SUPPRESS)
    p.add_argument("--folder", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "worker":
        asyncio.run(worker(args.esl_port, args.agents, args.port, Path(args.folder)))
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
