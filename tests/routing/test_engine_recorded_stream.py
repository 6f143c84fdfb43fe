"""Pins the engine's decisions to a stream recorded before the 2026-11 performance work.

The timer heap now keeps timers set a fixed delay after now in FIFO lanes (one per delay) with
only each lane's head in the heap, and ``handle`` has a fast path for float times. Neither may
change a decision or the state: a seeded overloaded scenario (priorities, moves between
queues, callbacks, sticky callers, ring-all, breaks, phone glitches, every estimator) must give
the decision stream and the final snapshot recorded *before* those changes
(``data/decision_stream.json``: sha256 digests of the decisions' reprs, prefixed by the event's
number, and of the snapshot as sorted JSON). Run this file as a script to re-record, only ever
from an engine known to be right.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from routing.engine.model import (
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
from routing.engine.router import Engine

DATA = Path(__file__).parent / "data" / "decision_stream.json"
SKILLS = ("billing", "cards", "tech", "sales")
ESTIMATORS = ("ql-mp", "ql-mp", "ql-m", "ql", "blend", "hol")


def _world(rng: random.Random, tenants: int, agents: int) -> list[Event]:
    events: list[Event] = []
    strategies = ("longest_idle", "least_calls", "skill_weighted", "fatigue", "sticky")
    for t in range(tenants):
        tid = f"t{t}"
        events.append(
            TenantUpdated(
                0.0,
                TenantConfig(
                    tid,
                    utc_offset_s=3600.0 * (t % 5),
                    max_overflow_in_concurrent=5,
                    max_overflow_in_minutes_per_day=100,
                    second_line=f"client:{tid}-desk",
                    escalation=(EscalationRule(f"client:{tid}-vip", "vip", vip=True),),
                ),
            )
        )
        main = QueueConfig(
            f"{tid}-main",
            tid,
            strategy=strategies[t % len(strategies)],
            clearance=2 if t % 4 == 0 else 0,
            skills=((SKILLS[t % len(SKILLS)], 3),),
            relaxation=((30.0, 2), (60.0, 0)),
            announce_interval_s=(20.0, 45.0, 60.0)[t % 3],
            announce_granularity_s=(30.0, 15.0, 60.0)[t % 3],
            priority_head_start_s=(90.0, 0.0, 45.0)[t % 3],
            overflow=(OverflowRule("max_wait", 240.0, f"queue:{tid}-second"),),
            estimator=ESTIMATORS[t % len(ESTIMATORS)],
        )
        second = QueueConfig(
            f"{tid}-second",
            tid,
            strategy="ring_all" if t % 5 == 0 else "longest_idle",
            ring_all_max=3,
            announce_interval_s=30.0,
            callback_over_s=400.0 if t % 2 else None,
            estimator=ESTIMATORS[(t + 1) % len(ESTIMATORS)],
        )
        events += [QueueUpdated(0.0, main), QueueUpdated(0.0, second)]
    for a in range(agents):
        certs = {
            f"t{t}": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, 2)}
            for t in rng.sample(range(tenants), 3)
        }
        events.append(AgentUpdated(0.0, AgentProfile(f"a{a}", certs, rng.choice((0, 1, 2, 2)))))
        events.append(AgentLogin(0.0, f"a{a}"))
    return events


def run_scenario(seed: int, events: int = 12000) -> tuple[list[str], dict[str, Any]]:
    """Drive an overloaded world (like ``benchmarks/bench_router.py``, small); returns the
    decisions (reprs, one per decision, prefixed by the event's index) and the final snapshot."""
    rng = random.Random(seed)
    tenants, agents = 12, 120
    engine = Engine()
    stream: list[str] = []
    future: list[tuple[float, int, Event]] = []
    seq = 0

    def push(at: float, ev: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(future, (at, seq, ev))

    def feed(ev: Event) -> None:
        for d in engine.handle(ev):
            stream.append(f"{engine.events_handled} {d!r}")
            if isinstance(d, Offer) and rng.random() < 0.93:
                push(engine.now + rng.uniform(2.0, 8.0), OfferAnswered(0.0, d.call_id, d.agent_id))

    for ev in _world(rng, tenants, agents):
        feed(ev)
    queues = list(engine.queues)
    calls = 0
    rate = agents / 150.0 * 1.3  # overloaded: callers pile up and abandon
    next_arrival = rng.expovariate(rate)
    next_agent_event = 1.0
    fed = 0
    while fed < events:
        timer = engine.next_timer_at()
        at = min(next_arrival, next_agent_event, future[0][0] if future else next_arrival)
        if timer is not None and timer < at:
            feed(Tick(timer))
            fed += 1
            continue
        if at == next_arrival:
            calls += 1
            qid = rng.choice(queues)
            cid = f"c{calls}"
            feed(
                CallArrived(
                    at,
                    cid,
                    qid,
                    priority=1 if rng.random() < 0.25 else 0,
                    caller_id=f"p{rng.randrange(300)}",
                    vip=rng.random() < 0.01,
                    overflow_in=rng.random() < 0.05,
                )
            )
            fed += 1
            push(at + rng.expovariate(1.0 / 300.0), CallAbandoned(0.0, cid))
            next_arrival = at + rng.expovariate(rate)
            continue
        if at == next_agent_event:
            push(at, AgentBreak(0.0, f"a{rng.randrange(agents)}", "break"))
            push(at, DeviceUnregistered(0.0, f"a{rng.randrange(agents)}"))
            next_agent_event = at + 20.0
            continue
        _at, _seq, ev = heapq.heappop(future)
        out: Event | None = None
        if isinstance(ev, OfferAnswered):
            if engine.call_state(ev.call_id) == "offered" and ev.agent_id in engine.call_offers(
                ev.call_id
            ):
                talk = rng.expovariate(1.0 / 120.0)
                kind = EscalationRequested if rng.random() < 0.05 else CallEnded
                push(at + talk, kind(0.0, ev.call_id))
                out = OfferAnswered(at, ev.call_id, ev.agent_id)
        elif isinstance(ev, CallAbandoned):
            if engine.call_state(ev.call_id) in ("waiting", "offered"):
                out = CallAbandoned(at, ev.call_id)
        elif isinstance(ev, CallEnded | EscalationRequested):
            out = type(ev)(at, ev.call_id)
        elif isinstance(ev, AgentBreak):
            push(at + rng.uniform(30, 300), AgentUnbreak(0.0, ev.agent_id))
            out = AgentBreak(at, ev.agent_id, "break")
        elif isinstance(ev, DeviceUnregistered):
            push(at + rng.uniform(5, 60), DeviceRegistered(0.0, ev.agent_id))
            out = DeviceUnregistered(at, ev.agent_id)
        elif isinstance(ev, AgentUnbreak | DeviceRegistered):
            out = type(ev)(at, ev.agent_id)
        if out is not None:
            feed(out)
            fed += 1
    engine.check_invariants()
    return stream, engine.snapshot()


def _digest(stream: list[str], snapshot: dict[str, Any]) -> dict[str, Any]:
    kinds = Counter(line.split(" ", 1)[1].split("(", 1)[0] for line in stream)
    return {
        "decisions": len(stream),
        "kinds": dict(sorted(kinds.items())),
        "stream_sha256": hashlib.sha256("\n".join(stream).encode()).hexdigest(),
        "snapshot_sha256": hashlib.sha256(
            json.dumps(snapshot, sort_keys=True).encode()
        ).hexdigest(),
    }


SEEDS = (1, 2, 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_decisions_match_the_stream_recorded_before_the_shortcut(seed: int) -> None:
    recorded = json.loads(DATA.read_text())[str(seed)]
    assert _digest(*run_scenario(seed)) == recorded


def test_snapshot_restore_mid_run_gives_the_same_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timers in lanes and in the heap are one order: a restored engine (all its timers in the
    heap) decides as the one that never stopped (lanes), and snapshots the same."""
    original = Engine.handle
    cut = {"at": 6_000, "done": False}

    def handle(self: Engine, event: Event) -> list[Any]:
        if not cut["done"] and self.events_handled == cut["at"]:
            cut["done"] = True
            twin = Engine.restore(json.loads(json.dumps(self.snapshot())))
            assert twin.snapshot() == self.snapshot()
            self.__dict__.update(twin.__dict__)  # continue as the restored engine
        return original(self, event)

    straight = run_scenario(2)
    monkeypatch.setattr(Engine, "handle", handle)
    restored = run_scenario(2)
    assert cut["done"]
    assert restored[0] == straight[0]
    assert restored[1] == straight[1]


if __name__ == "__main__":  # regenerate (only ever from an engine known to be right)
    DATA.write_text(json.dumps({str(s): _digest(*run_scenario(s)) for s in SEEDS}, indent=1) + "\n")
