"""Command line: run one or more simulated FreeSWITCH nodes.

Example::

    python -m telephony.simulator --esl-port 8021 --password ClueCon \\
        --outbound 127.0.0.1:8084 --seed 7 --speed 10 \\
        --did 380441234567:alpha --agents 1001-1010 --calls-per-hour 120 --duration 3600

``--nodes N`` starts N nodes on consecutive ports (a cluster; each has its own
Core-UUID). Faults can be switched on at start (``--refuse-originate``,
``--slow-answer``, ``--event-delay``, ``--reorder``), on a period
(``--drop-every``, ``--restart-every``), or at any time over ESL with the
simulator-only API ``sim_fault`` (see :meth:`Switch.api_sim_fault`).
Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .cdr import CdrPoster
from .clock import VirtualClock
from .esl_server import SwitchNode, _is_loopback, parse_dids
from .switch import Switch
from .traffic import FLAT_SHAPE, TenantProfile, TrafficGenerator, add_agents, load_day_shape

log = logging.getLogger("telephony.simulator")

DEFAULT_CURVE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "anonymous_bank_1999_6min"
    / "callcenter_1999_6min.csv"
)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if not _is_loopback(host):
        raise argparse.ArgumentTypeError("only loopback addresses are allowed")
    return host, int(port)


def _extensions(spec: str) -> list[str]:
    """``1001-1010,2001`` -> the extensions."""
    out: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += [str(n) for n in range(int(lo), int(hi) + 1)]
        elif part:
            out.append(part)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m telephony.simulator", description=__doc__.split("\n")[0]
    )
    p.add_argument("--esl-port", type=int, default=8021, help="inbound ESL port (127.0.0.1)")
    p.add_argument("--password", default="ClueCon", help="ESL password")
    p.add_argument("--outbound", type=_host_port, default=("127.0.0.1", 8084),
                   help="platform outbound-socket server HOST:PORT")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", type=float, default=1.0, help="virtual time per real second")
    p.add_argument("--nodes", type=int, default=1, help="nodes on consecutive ports")
    p.add_argument("--hostname", default="vm")
    p.add_argument("--did", action="append", default=[], help="DID[:tenant] (repeatable)")
    p.add_argument("--agents", default="", help="agent extensions, e.g. 1001-1010")
    p.add_argument("--p-no-answer", type=float, default=0.05)
    p.add_argument("--p-busy", type=float, default=0.03)
    p.add_argument("--calls-per-hour", type=float, default=0.0, help="peak rate per tenant")
    p.add_argument("--duration", type=float, default=3600.0, help="traffic seconds (virtual)")
    p.add_argument("--start-hour", type=float, default=9.0)
    p.add_argument("--curve", default=str(DEFAULT_CURVE), help="arrival-curve CSV ('' = flat)")
    p.add_argument("--refuse-originate", default="", help="hangup cause for every originate")
    p.add_argument("--slow-answer", type=float, default=0.0, help="extra seconds before answers")
    p.add_argument("--event-delay", type=float, default=0.0, help="hold events back (seconds)")
    p.add_argument("--reorder", action="store_true", help="interleave channels differently")
    p.add_argument("--drop-every", type=float, default=0.0, help="drop ESL connections every N s")
    p.add_argument("--restart-every", type=float, default=0.0, help="restart every N s")
    p.add_argument("--cdr-url", default="", help="mod_json_cdr URL, e.g. http://127.0.0.1:8000/cdr")
    p.add_argument("--cdr-err-dir", default="var/sim-cdr-errors", help="failed CDR posts go here")
    p.add_argument("--cdr-raw-values", action="store_true", help="encode-values=false")
    p.add_argument("--disk-full", action="store_true", help="CDR backup files cannot be written")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def run(args: argparse.Namespace) -> None:
    """Start the nodes (and traffic) and run until cancelled."""
    clock = VirtualClock(speed=args.speed)
    dids = parse_dids(args.did)
    nodes: list[SwitchNode] = []
    for i in range(args.nodes):
        switch = Switch(
            clock=clock,
            seed=args.seed * 1000 + i,
            hostname=args.hostname if args.nodes == 1 else f"{args.hostname}{i + 1}",
            outbound=args.outbound,
            dids=dids,
        )
        switch.faults.refuse_originate = args.refuse_originate.upper()
        switch.faults.slow_answer = args.slow_answer
        switch.faults.event_delay = args.event_delay
        switch.faults.reorder = args.reorder
        add_agents(
            switch, _extensions(args.agents), p_no_answer=args.p_no_answer, p_busy=args.p_busy
        )
        if args.cdr_url:
            poster = CdrPoster(args.cdr_url, Path(args.cdr_err_dir) / f"node{i + 1}",
                               encode_values=not args.cdr_raw_values, disk_full=args.disk_full)  # fmt: skip
            poster.attach(switch)
        node = SwitchNode(switch, password=args.password, port=args.esl_port + i)
        await node.start()
        log.info("node %d listening on 127.0.0.1:%d core %s", i + 1, node.port, switch.core_uuid)
        nodes.append(node)
    jobs = []
    if args.calls_per_hour > 0 and dids:
        shape = (
            load_day_shape(args.curve) if args.curve and Path(args.curve).exists() else FLAT_SHAPE
        )
        by_tenant: dict[str, list[str]] = {}
        for did, variables in dids.items():
            by_tenant.setdefault(variables.get("ccp_tenant", "default"), []).append(did)
        profiles = [TenantProfile(t, d, args.calls_per_hour) for t, d in by_tenant.items()]
        for i, node in enumerate(nodes):
            gen = TrafficGenerator(node.switch, profiles, seed=args.seed * 1000 + i,
                                   shape=shape, start_hour=args.start_hour)  # fmt: skip
            jobs.append(asyncio.ensure_future(gen.run(args.duration)))
    for node in nodes:
        if args.drop_every > 0:
            jobs.append(
                asyncio.ensure_future(_every(clock, args.drop_every, node.drop_connections))
            )
        if args.restart_every > 0:
            jobs.append(asyncio.ensure_future(_every(clock, args.restart_every, node.restart)))
    try:
        await asyncio.Event().wait()
    finally:
        for job in jobs:
            job.cancel()
        for node in nodes:
            await node.stop()


async def _every(clock: VirtualClock, seconds: float, action) -> None:  # type: ignore[no-untyped-def]
    while True:
        await clock.sleep(seconds)
        result = action()
        if asyncio.iscoroutine(result):
            await result


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loop = asyncio.new_event_loop()
    task = loop.create_task(run(args))
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    loop.close()


if __name__ == "__main__":
    main()
