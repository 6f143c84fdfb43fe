"""Benchmark: the routing engine's throughput, decision latency and memory at provider scale.

World: 500 tenants with two queues each (strategies, skills with relaxation, clearance, sticky
callers, ring-all, overflow rules and announcements spread over them), 10,000 agents of one
shared pool each certified for 3 tenants with skills per tenant. A burst first seats every agent
on a call and leaves 5,000 callers waiting; then a steady overloaded hour keeps ~5,000 waiting:
Poisson arrivals slightly above capacity, offers answered after a 2-6 s ring (4% ring out),
talk times exponential (mean 180 s), 10 s wrap-up, exponential patience (mean 600 s), a few
breaks and phone re-registrations, and ticks whenever the engine's next timer comes first (as
the switchboard would drive it).

The driver reacts to the engine's decisions like the people and switches would; only the time
inside ``Engine.handle`` counts as engine time. Prints, asserts nothing:

* events handled, engine events/s (events / time inside ``handle``), external events/s
  (calls, agents, devices: every event but the engine's own ``Tick``, against all the time
  inside ``handle``, ticks included; the figure the 20,000 events/s target is read against)
  and wall events/s (including the driver);
* p50 / p99 / p99.9 / max latency of one ``handle`` call (the event and its decisions);
* decisions by kind, outcomes, skipped inputs;
* memory: tracemalloc peak of a second run (tracemalloc slows Python, so it is not timed),
  and the size of one JSON snapshot.

    .venv/bin/python benchmarks/bench_router.py [--events 200000] [--seed 1] [--clock cpu]

``--clock cpu`` times ``handle`` with the thread's CPU clock instead of the wall clock: on a
shared VM the wall clock also counts the time other jobs hold the core, so CPU time compares
two versions of the engine more steadily (latencies then exclude preemption too).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import random
import sys
import time
import tracemalloc
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.engine import estimator_state  # noqa: E402
from routing.engine.model import (  # noqa: E402
    AgentBreak,
    AgentLogin,
    AgentProfile,
    AgentUnbreak,
    AgentUpdated,
    CallAbandoned,
    CallArrived,
    CallEnded,
    DeviceRegistered,
    DeviceUnregistered,
    EscalationRequested,
    EscalationRule,
    Event,
    Offer,
    OfferAnswered,
    OverflowRule,
    QueueConfig,
    QueueUpdated,
    TenantConfig,
    TenantUpdated,
    Tick,
)
from routing.engine.router import Engine  # noqa: E402

TENANTS = 500
AGENTS = 10_000
WAITING = 5_000
CERTS_PER_AGENT = 3
TALK_S = 180.0
WRAP_S = 10.0
PATIENCE_S = 600.0
SKILLS = ("billing", "cards", "tech", "sales")


def world(rng: random.Random) -> list[Event]:
    """Tenants, queues and agents, all at t = 0."""
    events: list[Event] = []
    strategies = ("longest_idle", "least_calls", "skill_weighted", "fatigue", "sticky")
    for t in range(TENANTS):
        tid = f"t{t}"
        events.append(
            TenantUpdated(
                0.0,
                TenantConfig(
                    tid,
                    utc_offset_s=3600.0 * (t % 5),
                    max_overflow_in_concurrent=20,
                    max_overflow_in_minutes_per_day=600,
                    second_line=f"client:{tid}-desk",
                    escalation=(EscalationRule(f"client:{tid}-vip", "vip", vip=True),),
                ),
            )
        )
        skill = SKILLS[t % len(SKILLS)]
        main = QueueConfig(
            f"{tid}-main",
            tid,
            strategy=strategies[t % len(strategies)],
            wrap_up_s=WRAP_S,
            clearance=2 if t % 10 == 0 else 0,  # one client in ten is a bank
            skills=((skill, 3),),
            relaxation=((30.0, 2), (60.0, 0)),
            overflow=(OverflowRule("max_wait", 900.0, f"queue:{tid}-second"),),
        )
        second = QueueConfig(
            f"{tid}-second",
            tid,
            strategy="ring_all" if t % 7 == 0 else "longest_idle",
            ring_all_max=3,
            wrap_up_s=WRAP_S,
            announce_interval_s=60.0,
            callback_over_s=600.0,
        )
        events += [QueueUpdated(0.0, main), QueueUpdated(0.0, second)]
    for a in range(AGENTS):
        tenants = rng.sample(range(TENANTS), CERTS_PER_AGENT)
        certs = {f"t{t}": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, 2)} for t in tenants}
        profile = AgentProfile(f"a{a}", certs, clearance=rng.choice((0, 1, 2, 2)))
        events.append(AgentUpdated(0.0, profile))
        events.append(AgentLogin(0.0, f"a{a}"))
    return events


# The clock that times ``handle`` (``--clock cpu`` swaps in time.thread_time_ns).
_clock_ns = time.perf_counter_ns


class Driver:
    """Plays the callers, agents and switches: turns decisions into future events."""

    def __init__(self, engine: Engine, seed: int) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.future: list[tuple[float, int, Event]] = []
        self.seq = 0
        self.calls = 0
        self.queues = list(engine.queues)
        self.decisions: Counter[str] = Counter()
        self.latency = array("q")
        self.by_kind: dict[str, array[int]] = {}
        self.engine_ns = 0
        self.events = 0
        self.kinds: Counter[str] = Counter()
        self.now = 0.0

    def push(self, at: float, ev: Event) -> None:
        self.seq += 1
        heapq.heappush(self.future, (at, self.seq, ev))

    def new_call(self, at: float) -> None:
        self.calls += 1
        r = self.rng
        qid = r.choice(self.queues)
        bank = int(qid[1:].partition("-")[0]) % 10 == 0
        ev = CallArrived(
            at,
            f"c{self.calls}",
            qid,
            # Priority customers (the bank's 90 s head start) exist at the banks: 30% there.
            priority=1 if bank and r.random() < 0.3 else 0,
            caller_id=f"p{r.randrange(200_000)}",
            vip=r.random() < 0.002,
            overflow_in=r.random() < 0.02,
        )
        self.push(at, ev)
        self.push(at + r.expovariate(1.0 / PATIENCE_S), CallAbandoned(at, ev.call_id))

    def feed(self, ev: Event, timed: bool) -> None:
        if timed:
            t0 = _clock_ns()
            out = self.engine.handle(ev)
            dt = _clock_ns() - t0
            self.latency.append(dt)
            self.engine_ns += dt
            self.events += 1
            self.kinds[ev.kind] += 1
            self.by_kind.setdefault(ev.kind, array("q")).append(dt)
        else:
            out = self.engine.handle(ev)
        r = self.rng
        now = self.engine.now
        for d in out:
            self.decisions[type(d).__name__] += 1
            if isinstance(d, Offer):
                if r.random() < 0.96:
                    self.push(now + r.uniform(2.0, 6.0), OfferAnswered(0.0, d.call_id, d.agent_id))
                # else: the phone rings out; the engine's offer timer handles it.

    def react(self, ev: Event) -> Event | None:
        """Fix up a scheduled event at its time (the world changed since it was planned)."""
        e = self.engine
        r = self.rng
        at = self.now
        if isinstance(ev, OfferAnswered):
            if e.call_state(ev.call_id) != "offered" or ev.agent_id not in e.call_offers(
                ev.call_id
            ):
                return None  # the offer was withdrawn meanwhile: nobody picks up
            talk = r.expovariate(1.0 / TALK_S)
            if r.random() < 0.03:
                self.push(at + talk, EscalationRequested(0.0, ev.call_id))
            else:
                self.push(at + talk, CallEnded(0.0, ev.call_id))
            return OfferAnswered(at, ev.call_id, ev.agent_id)
        if isinstance(ev, CallAbandoned):
            if e.call_state(ev.call_id) not in ("waiting", "offered"):
                return None  # already answered or gone: the caller is not waiting any more
            return CallAbandoned(at, ev.call_id)
        if isinstance(ev, CallEnded):
            return CallEnded(at, ev.call_id)
        if isinstance(ev, EscalationRequested):
            return EscalationRequested(at, ev.call_id)
        if isinstance(ev, AgentBreak):
            self.push(at + r.uniform(60, 600), AgentUnbreak(0.0, ev.agent_id))
            return AgentBreak(at, ev.agent_id, ev.reason)
        if isinstance(ev, DeviceUnregistered):
            self.push(at + r.uniform(5, 60), DeviceRegistered(0.0, ev.agent_id))
            return DeviceUnregistered(at, ev.agent_id)
        if isinstance(ev, AgentUnbreak | DeviceRegistered):
            return type(ev)(at, ev.agent_id)
        return ev

    def run(self, limit: int, rate: float, timed: bool) -> None:
        """Steady state: arrivals at ``rate`` per second until ``limit`` events were fed."""
        r = self.rng
        e = self.engine
        next_arrival = e.now + r.expovariate(rate)
        next_agent_event = e.now + 1.0
        fed = 0
        while fed < limit:
            timer = e.next_timer_at()
            candidates = [next_arrival, next_agent_event]
            if self.future:
                candidates.append(self.future[0][0])
            at = min(candidates)
            if timer is not None and timer < at:
                self.now = timer
                self.feed(Tick(timer), timed)
                fed += 1
                continue
            self.now = at
            if at == next_arrival:
                self.new_call(at)
                next_arrival = at + r.expovariate(rate)
                continue
            if at == next_agent_event:
                # About one break and one phone glitch a second across 10,000 agents.
                self.push(at, AgentBreak(at, f"a{r.randrange(AGENTS)}", "break"))
                self.push(at, DeviceUnregistered(at, f"a{r.randrange(AGENTS)}"))
                next_agent_event = at + 1.0
                continue
            _at, _seq, ev = heapq.heappop(self.future)
            fixed = self.react(ev)
            if fixed is not None:
                self.feed(fixed, timed)
                fed += 1


def build(seed: int, timed: bool) -> Driver:
    rng = random.Random(seed)
    engine = Engine()
    driver = Driver(engine, seed)
    for ev in world(rng):
        driver.feed(ev, timed=False)
    # The burst: one call per agent and WAITING more, within the first minute.
    driver.queues = list(engine.queues)
    for i in range(AGENTS + WAITING):
        driver.new_call(60.0 * i / (AGENTS + WAITING))
    return driver


def snapshot_costs(engine: Engine, rounds: int = 2) -> None:
    """Snapshot and restore of the final state, the old way and the new ways, interleaved.

    "before" is the path as it was until 2026-11: ``json.dumps(snapshot())`` built with the
    collector running (thresholds 700/10/10, as after the run) and the estimators encoded by
    the plain recursive walker (kept as ``estimator_state._enc_reference``); restore is
    ``json.loads`` then the restore body, collector running (its decoder is today's). "after":
    the same ``json.dumps(engine.snapshot())`` call today (collector paused, exact-type
    encoder), ``snapshot_json`` / ``restore_json`` (compact) and ``snapshot_bytes`` /
    ``restore_bytes`` (plain-data pickle). All carry the same data (checked)."""

    def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        return out, time.perf_counter() - t0, time.thread_time() - c0

    def before_write() -> str:
        fast = estimator_state._enc
        estimator_state._enc = estimator_state._enc_reference
        try:
            return json.dumps(engine._snapshot())
        finally:
            estimator_state._enc = fast

    ways: list[tuple[str, Callable[[], Any], Callable[[Any], Engine]]] = [
        ("before: json.dumps(snapshot())", before_write, lambda t: Engine._restore(json.loads(t))),
        (
            "after:  json.dumps(snapshot())",
            lambda: json.dumps(engine.snapshot()),
            Engine.restore_json,
        ),
        ("after:  snapshot_json()", engine.snapshot_json, Engine.restore_json),
        ("after:  snapshot_bytes()", engine.snapshot_bytes, Engine.restore_bytes),
    ]
    reference = json.loads(before_write())
    for round_ in range(rounds):
        for label, write, read in ways:
            data, write_s, write_cpu = timed(write)
            restored, read_s, read_cpu = timed(lambda data=data, read=read: read(data))
            same = round_ > 0 or json.loads(restored.snapshot_json()) == reference
            print(
                f"snapshot {label:32s} {len(data) / 1e6:5.1f} MB written in {write_s:.2f} s "
                f"(CPU {write_cpu:.2f} s), restored in {read_s:.2f} s (CPU {read_cpu:.2f} s)"
                f"{'' if same else '  DIFFERENT STATE'}"
            )
            del data, restored


def percentile(sorted_ns: list[int], p: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(p * len(sorted_ns)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="measured events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gc",
        choices=("default", "tuned", "off"),
        default="tuned",
        help="cyclic GC during the measurement: Python's defaults; frozen start-up state and "
        "a 200,000-allocation threshold (what the switchboard should run); or disabled",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time handle with the wall clock (default) or the thread's CPU clock (steadier "
        "on a shared machine)",
    )
    args = parser.parse_args()
    global _clock_ns
    if args.clock == "cpu":
        _clock_ns = time.thread_time_ns

    capacity = AGENTS / (TALK_S + WRAP_S + 4.0)  # calls per second the pool can serve
    rate = capacity + WAITING / PATIENCE_S  # arrivals that keep ~WAITING callers queued

    t0 = time.perf_counter()
    driver = build(args.seed, timed=False)
    driver.run(AGENTS + WAITING + 40_000, rate, timed=False)  # burst and warm-up, untimed
    setup_s = time.perf_counter() - t0
    engine = driver.engine
    waiting_at_start = sum(1 for c in engine.active_calls() if engine.call_state(c) == "waiting")
    driver.decisions.clear()
    # Long-lived state (the world, the heaps) is moved out of the collector's sight, as the
    # switchboard does after start-up or restore: a full collection over millions of live
    # objects otherwise stalls one event for tens of milliseconds.
    gc.collect()
    if args.gc != "default":
        gc.freeze()
    if args.gc == "tuned":
        # The engine makes no reference cycles (checked below), so the cyclic collector has
        # nothing to find in it; collecting every 700 allocations only costs latency.
        gc.set_threshold(200_000, 50, 50)
    elif args.gc == "off":
        gc.disable()

    t0 = time.perf_counter()
    driver.run(args.events, rate, timed=True)
    wall_s = time.perf_counter() - t0
    gc.enable()
    gc.set_threshold(700, 10, 10)
    cyclic = gc.collect()
    waiting_at_end = sum(1 for c in engine.active_calls() if engine.call_state(c) == "waiting")

    lat = sorted(driver.latency)
    engine_s = driver.engine_ns / 1e9
    print(f"world: {TENANTS} tenants, {len(engine.queues)} queues, {AGENTS} agents")
    print(f"setup + burst + warm-up: {setup_s:.1f} s (untimed)")
    print(f"waiting calls: {waiting_at_start} at start of measurement, {waiting_at_end} at end")
    print(f"arrival rate {rate:.1f}/s against capacity {capacity:.1f}/s")
    print(f"measured events: {driver.events:,} over {engine.now:,.0f} s of simulated time")
    print(f"gc mode: {args.gc}; cyclic garbage found after the run: {cyclic} objects")
    print(f"clock timing handle: {args.clock}")
    ticks = driver.kinds["tick"]
    print("event mix:", dict(driver.kinds.most_common()))
    print(f"engine throughput: {driver.events / engine_s:,.0f} events/s (time inside handle)")
    print(
        f"external events:  {(driver.events - ticks) / engine_s:,.0f} events/s "
        f"({driver.events - ticks:,} non-tick events against all {engine_s:.2f} s inside handle, "
        f"ticks included)"
    )
    print(f"wall throughput:   {driver.events / wall_s:,.0f} events/s (driver included)")
    print(
        "latency per event (us): "
        f"p50 {percentile(lat, 0.50):.1f}  p99 {percentile(lat, 0.99):.1f}  "
        f"p99.9 {percentile(lat, 0.999):.1f}  max {lat[-1] / 1000:.1f}"
    )
    print("per event kind: count, mean / p99 latency (us)")
    for kind, _n in driver.kinds.most_common():
        ns = sorted(driver.by_kind[kind])
        print(
            f"  {kind:22s} {len(ns):8,d}  {sum(ns) / len(ns) / 1000:7.1f} / "
            f"{percentile(ns, 0.99):7.1f}"
        )
    print("decisions:", dict(driver.decisions.most_common()))
    print("outcomes (whole run):", engine.outcomes)
    print("skipped inputs:", engine.stats)

    snapshot_costs(engine)

    tracemalloc.start()
    driver = build(args.seed, timed=False)
    driver.run(AGENTS + WAITING + 20_000, rate, timed=False)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"memory (tracemalloc, engine + driver, same world): current {current / 1e6:.0f} MB, "
        f"peak {peak / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
