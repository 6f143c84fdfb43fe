"""The conservation scenario (issue #6): thousands of calls, 3 tenants, 2 nodes, faults; then
every call, leg, CDR and segment is accounted for.

Faults, at fixed shares of the traffic window (virtual time): node1's ESL connection drops;
node2's CDR posting fails for a while (its CDRs go to the error folder and are swept later);
node2 restarts (every channel on it is hung up, new Core-UUID); the active switchboard dies
like ``kill -9`` and a standby takes over (calls bridged at that moment stay up on the switch:
``resume``; callers in the IVR or the queue continue into the standby's socket, the dialplan's
second one, and the standby carries them on from the restored engine snapshot and their stored
meters; the bridged calls of the crashed switchboard are closed and billed from their CDRs,
using the progress it stored at answer, queue entry and bridge).

The CDR intake here is the intake's contract in memory (one record per leg UUID, repeats
counted); ``test_switchboard_faults`` runs the same path through the real HTTP intake and
sweeper into the tenants' schemas.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from switchboard_world import World, make_directory, start_world, traffic
from test_switchboard_control import crash

from billing.rating import BillingPeriod, KindRate, RatePlanVersion, SegmentKind, rate_period
from billing.rating.period import utc_day
from telephony.callflow.meter import CallMeter, CdrTimes, reconcile
from telephony.callflow.switchboard import CallSummary, MemorySink, NodeSpec, Switchboard
from telephony.simulator.cdr import CdrPoster

TENANTS = ("alpha", "beta", "gamma")


class MemoryIntake:
    """mod_json_cdr posts land here (idempotent per leg), unless the node's posting is down."""

    def __init__(self) -> None:
        self.cdrs: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.repeats = 0
        self.swept = 0

    def store(self, uuid: str, body: bytes) -> None:
        if uuid in self.cdrs:
            self.repeats += 1
            return
        self.cdrs[uuid] = json.loads(body)

    def poster(self, err_dir: Path) -> tuple[CdrPoster, dict[str, bool]]:
        intake, state = self, {"outage": False}

        class Poster(CdrPoster):
            async def post(self, uuid: str, body: bytes) -> int:
                if state["outage"]:
                    raise OSError(111, "Connection refused")
                intake.posts += 1
                intake.store(uuid, body)
                return 200

        return Poster("http://127.0.0.1:9/cdr", err_dir), state

    def sweep(self, err_dir: Path) -> None:
        if not err_dir.exists():
            return
        for path in sorted(err_dir.glob("*.cdr.json")):
            self.swept += 1
            self.store(path.name.split(".")[0], path.read_bytes())
            path.unlink()


@dataclass
class Report:
    placed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failed_causes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    legs: int = 0
    cdrs: int = 0
    cdr_posts: int = 0
    cdr_swept: int = 0
    cdr_repeats: int = 0
    legs_without_cdr: list[str] = field(default_factory=list)
    cdrs_without_leg: list[str] = field(default_factory=list)
    answered_a_legs: int = 0
    partition_errors: list[str] = field(default_factory=list)
    recovered_from_cdrs: int = 0
    segments: int = 0
    segments_rated: int = 0
    duplicated: int = 0
    answered_ms: int = 0
    rated_ms: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    takeover_s: float = 0.0
    bridged_at_crash: int = 0
    bridged_survived: int = 0
    waiting_at_crash: int = 0
    resumed: int = 0
    resumed_in_place: int = 0
    stuck: list[str] = field(default_factory=list)
    callbacks: int = 0
    callbacks_answered: int = 0

    def table(self) -> str:
        rows = [("calls placed", self.placed)]
        for name in (
            "ivr",
            "answered",
            "abandoned",
            "overflowed",
            "escalated",
            "callback",
            "failed",
        ):
            rows.append((f"  ended {name}", self.outcomes.get(name, 0)))
        for cause, n in sorted(self.failed_causes.items()):
            rows.append((f"    failed: {cause}", n))
        rows += [
            ("  sum of outcomes", sum(self.outcomes.values())),
            ("  lost", len(self.lost)),
            ("legs (channels)", self.legs),
            ("  CDRs stored (one per leg)", self.cdrs),
            ("    posted", self.cdr_posts),
            ("    swept from the error folder", self.cdr_swept),
            ("    repeats ignored", self.cdr_repeats),
            ("  legs without CDR", len(self.legs_without_cdr)),
            ("callbacks dialled (attempts)", self.callbacks),
            ("  answered and bridged to an agent", self.callbacks_answered),
            ("answered caller legs", self.answered_a_legs),
            ("  closed from CDRs after the crash", self.recovered_from_cdrs),
            ("  segments != CDR answered time", len(self.partition_errors)),
            ("segments", self.segments),
            ("  rated", self.segments_rated),
            ("  duplicated", self.duplicated),
            ("answered ms (CDRs, caller legs)", self.answered_ms),
            ("  in rated caller-leg segments", self.rated_ms),
            (
                "bridged at the crash / still up after it",
                f"{self.bridged_at_crash} / {self.bridged_survived}",
            ),
            (
                "in IVR/queue at the crash / carried on by the standby",
                f"{self.waiting_at_crash} / {self.resumed}",
            ),
            ("  back in their place (restored engine)", self.resumed_in_place),
            ("standby takeover (s, real)", f"{self.takeover_s:.3f}"),
        ]
        width = max(len(r[0]) for r in rows) + 2
        lines = ["conservation table", "-" * (width + 12)]
        lines += [f"{name:<{width}}{value:>12}" for name, value in rows]
        lines += [f"amount {t}: {a}" for t, a in sorted(self.amounts.items())]
        lines += [f"fault: {f}" for f in self.faults]
        lines += [f"STUCK: {x}" for x in self.stuck[:20]]
        lines += [f"LOST: {x}" for x in self.lost[:5]]
        lines += [f"PARTITION: {x}" for x in self.partition_errors[:5]]
        return "\n".join(lines)


def plan() -> RatePlanVersion:
    prices = {
        "ivr": "0.10",
        "queue": "0.08",
        "agent": "2.00",
        "handoff": "0.50",
        "escalation": "0.60",
        "callback_dial": "0.40",
    }
    return RatePlanVersion(
        plan_id="conservation",
        version=1,
        currency="UAH",
        valid_from=date(2020, 1, 1),
        rates={SegmentKind(k): KindRate(Decimal(v), (1, 1)) for k, v in prices.items()},
    )


async def run(
    tmp: Path,
    *,
    calls_per_hour: float = 900.0,
    duration: float = 1800.0,
    agents: int = 30,
    speed: float = 60.0,
    seed: int = 11,
) -> Report:
    report = Report()
    directory = make_directory(TENANTS, agents=agents, callback_over_s=150.0)
    world = await start_world(
        directory, n_nodes=2, speed=speed, agents=agents, seed=seed, p_no_answer=0.05, p_busy=0.03
    )
    intake = MemoryIntake()
    posters = []
    for i, switch in enumerate(world.switches):
        poster, state = intake.poster(tmp / f"node{i + 1}")
        poster.attach(switch)
        posters.append((poster, state))
    sinks: list[MemorySink] = [world.sink]  # type: ignore[list-item]
    clock = world.clock
    specs = [NodeSpec(n.switch.hostname, "127.0.0.1", n.port, "ClueCon") for n in world.nodes]
    # The standby listens from the start (the dialplan's second socket) and shares what the
    # database shares between the two processes: stored progress and engine snapshots.
    b = Switchboard(directory, specs, sink=MemorySink(shared_with=world.sink), clock=clock,
                    outbound_port=0, callback_dial="user/{number}")  # fmt: skip
    await b.listen()
    for switch in world.switches:
        switch.standby = ("127.0.0.1", b.server.port)
    gens = traffic(world, TENANTS, calls_per_hour, seed=seed)
    t0 = clock.now()
    standby: list[Switchboard] = []

    async def at(share: float) -> None:
        await clock.sleep(max(0.0, t0 + share * duration - clock.now()))

    async def faults() -> None:
        await at(0.15)
        world.nodes[0].drop_connections()
        report.faults.append("node1 ESL connection dropped")
        await at(0.30)
        posters[1][1]["outage"] = True
        report.faults.append("node2 CDR posting down")
        await at(0.40)
        await world.nodes[1].restart(5.0)
        report.faults.append("node2 restarted (5 s down, new Core-UUID)")
        await at(0.45)
        posters[1][1]["outage"] = False
        report.faults.append("node2 CDR posting back")
        await at(0.60)
        a = world.sb
        report.bridged_at_crash = sum(
            1 for s in set(a.sessions.values()) if s.state in ("agent", "escalated")
        )
        bridged = {s.call_id for s in set(a.sessions.values()) if s.state in ("agent", "escalated")}
        report.waiting_at_crash = sum(
            1 for s in set(a.sessions.values()) if s.state in ("ivr", "queue")
        )
        crash(a)
        loop = asyncio.get_running_loop()
        t_crash = loop.time()
        await b.start(restore=True)
        for switch in world.switches:
            switch.outbound = ("127.0.0.1", b.server.port)
        await b.wait_nodes(10.0)
        await b.adopt()
        report.takeover_s = loop.time() - t_crash
        await clock.sleep(30.0)  # long enough for a dropped call to be hung up
        dropped = set().union(*(s.socket_hangups for s in world.switches))
        report.bridged_survived = len(bridged - dropped)
        standby.append(b)
        sinks.append(b.sink)  # type: ignore[arg-type]
        report.faults.append("switchboard killed; standby took over")

    fault_task = asyncio.ensure_future(faults())
    await asyncio.gather(*(g.run(duration) for g in gens))
    await fault_task
    report.resumed = b.stats["calls_resumed"]
    report.resumed_in_place = b.stats["calls_resumed_in_place"]
    final = standby[0] if standby else world.sb
    try:
        async with asyncio.timeout(120):
            while any(s.channels for s in world.switches) or final.sessions:
                await asyncio.sleep(0.05)
    except TimeoutError:
        for switch in world.switches:
            for ch in switch.channels.values():
                report.stuck.append(
                    f"{switch.hostname} {ch.name} {ch.state} {ch.variables.get('ccp_role', 'caller')} app={ch.current_app}"
                )
    await asyncio.sleep(0.2)
    for poster, _state in posters:
        await poster.drain()
    for i in range(len(world.switches)):
        intake.sweep(tmp / f"node{i + 1}")
    for b in standby:
        await b.stop()
    await world.close()
    account(report, world, gens, sinks, intake)
    return report


def account(
    report: Report, world: World, gens: list[Any], sinks: list[MemorySink], intake: MemoryIntake
) -> None:
    placed = [o for g in gens for o in g.outcomes]
    report.placed = len(placed)
    report.legs = len(world.cdrs)
    report.cdrs = len(intake.cdrs)
    report.cdr_posts, report.cdr_swept, report.cdr_repeats = (
        intake.posts,
        intake.swept,
        intake.repeats,
    )
    report.legs_without_cdr = sorted(set(world.cdrs) - set(intake.cdrs))
    report.cdrs_without_leg = sorted(set(intake.cdrs) - set(world.cdrs))

    def cdr_times(leg: str) -> CdrTimes:
        c = world.cdrs[leg]
        return CdrTimes(leg, int(c["answer_ms"]) or None, int(c["end_ms"]))

    finished: dict[str, CallSummary] = {}
    for sink in sinks:
        for call_id, summary in sink.calls.items():
            if call_id in finished:
                report.duplicated += 1
            finished[call_id] = summary
    progress: dict[str, CallSummary] = {}
    for sink in sinks:
        progress.update(sink.progress)
    by_tenant: dict[str, list[Any]] = {}
    for o in placed:
        uuid = o.uuid
        if not uuid:
            # The node was down: the carrier's call never reached it (no channel, no CDR).
            report.outcomes["failed"] += 1
            report.failed_causes[f"node_down:{o.hangup_cause}"] += 1
            continue
        summary = finished.get(uuid)
        meter: CallMeter | None = None
        legs: dict[str, str] = {}
        if summary is not None:
            outcome, cause = summary.outcome, summary.cause
            legs = summary.legs
            if summary.meter is not None:
                meter = CallMeter.from_dict(summary.meter)
                if not meter.is_ended:
                    # The switchboard never heard the hangup (a node restart): closed from CDRs.
                    meter.finish_from_cdrs(
                        {leg: cdr_times(leg) for leg in legs if leg in world.cdrs}
                    )
                    report.recovered_from_cdrs += 1
        elif uuid in progress:
            record = progress[uuid]
            meter = CallMeter.from_dict(record.meter or {})
            legs = record.legs
            meter.finish_from_cdrs({leg: cdr_times(leg) for leg in legs if leg in world.cdrs})
            report.recovered_from_cdrs += 1
            outcome, cause = meter.outcome()
            if outcome == "failed":
                cause = f"controller_lost:{cause or 'NORMAL_CLEARING'}"
        elif uuid in world.cdrs and world.cdrs[uuid]["answer_ms"]:
            # Answered, but the switchboard died before even the answer was stored: the only
            # thing a call does before its first stored transition is the IVR, and the switch
            # hangs such a caller up when the socket goes, so the CDR's answered time is IVR.
            meter = CallMeter(
                world.cdrs[uuid]["tenant"], uuid, uuid, "direct", world.cdrs[uuid]["node"]
            )
            meter.answered(int(world.cdrs[uuid]["answer_ms"]))
            meter.hangup(int(world.cdrs[uuid]["end_ms"]), str(world.cdrs[uuid]["cause"]))
            legs = {uuid: "a"}
            report.recovered_from_cdrs += 1
            outcome, cause = "failed", f"controller_lost_in_ivr:{world.cdrs[uuid]['cause']}"
        elif uuid in world.cdrs:
            # Never answered by any switchboard: hung up by the switch because a platform
            # socket closed on it, or the caller left before a socket took the call.
            dropped = any(uuid in s.socket_hangups for s in world.switches)
            kind = "dropped_by_platform" if dropped else "no_controller"
            outcome, cause = "failed", f"{kind}:{world.cdrs[uuid]['cause']}"
        else:
            report.lost.append(uuid)
            continue
        report.outcomes[outcome] += 1
        if outcome == "failed":
            report.failed_causes[cause or "?"] += 1
        cdr = world.cdrs.get(uuid)
        if cdr is None or not cdr["answer_ms"]:
            continue
        report.answered_a_legs += 1
        answered = int(cdr["end_ms"]) - int(cdr["answer_ms"])
        report.answered_ms += answered
        if meter is None:
            report.partition_errors.append(f"{uuid}: answered, no segments")
            continue
        cdrs = {leg: cdr_times(leg) for leg in legs if leg in world.cdrs}
        result = reconcile(
            meter.segments(),
            cdrs,
            a_leg_uuid=uuid,
            unmetered_legs=[leg for leg, r in legs.items() if r == "agent"],
        )
        if result.status != "ok":
            report.partition_errors.append(f"{uuid}: {result.status} {result.messages}")
            continue
        a_leg = sum(s.duration_ms for s in result.segments if s.leg_uuid == uuid)
        if a_leg != answered:
            report.partition_errors.append(f"{uuid}: segments {a_leg} ms, CDR {answered} ms")
        report.rated_ms += a_leg
        report.segments += len(result.segments)
        by_tenant.setdefault(meter.tenant_id, []).extend(result.segments)
    # Callbacks the platform dialled (not placed by callers: each attempt is its own call).
    for summary in finished.values():
        if summary.origin != "callback":
            continue
        report.callbacks += 1
        if summary.outcome != "answered" or summary.meter is None:
            continue
        report.callbacks_answered += 1
        meter = CallMeter.from_dict(summary.meter)
        legs = summary.legs
        a_leg = meter.a_leg_uuid
        cdrs = {leg: cdr_times(leg) for leg in legs if leg in world.cdrs}
        result = reconcile(
            meter.segments(),
            cdrs,
            a_leg_uuid=a_leg,
            unmetered_legs=[leg for leg, r in legs.items() if r == "agent"],
        )
        cdr = world.cdrs.get(a_leg)
        if result.status != "ok" or cdr is None:
            report.partition_errors.append(
                f"callback {summary.call_id}: {result.status} {result.messages}"
            )
            continue
        answered = int(cdr["end_ms"]) - int(cdr["answer_ms"])
        if sum(s.duration_ms for s in result.segments if s.leg_uuid == a_leg) != answered:
            report.partition_errors.append(f"callback {summary.call_id}: segments != CDR")
        report.segments += len(result.segments)
        by_tenant.setdefault(meter.tenant_id, []).extend(result.segments)
    rating = plan()
    for tenant, segments in by_tenant.items():
        days = [utc_day(s.start_ms) for s in segments]
        period = BillingPeriod.from_days(
            tenant, min(days), date.fromordinal(max(days).toordinal() + 1)
        )
        result = rate_period(
            segments, rating, period, check_duplicates=True
        )  # raises on a duplicate
        report.segments_rated += sum(u.segments for u in result.usage)
        report.amounts[tenant] = result.subtotal
