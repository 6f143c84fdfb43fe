"""Throughput and memory of the rating core (prints figures; asserts nothing).

Run: ``.venv/bin/python benchmarks/bench_rating.py [--segments 1000000] [--seed 7]``
(about 3 minutes for the default million, most of it the two tracemalloc runs, which slow
Python down about tenfold and are therefore not timed).

Measures, in one process:

1. ``rate_segment`` over N synthetic segments (segments per second);
2. ``rate_period`` over the same N segments, with and without the duplicate check;
3. peak memory (tracemalloc) of ``rate_period`` streaming N segments from a generator, which
   is what a billing run over a database cursor does, against the memory of holding them all.

The synthetic traffic follows the shapes in shared/: callers spend a log-normal time in the IVR
(median 25 s: a 15-20 s greeting plus a menu) and 30 % end there; 54 % of queued callers wait
(log-normal, median 50 s, mean 76 s) and 21.8 % of those abandon; agent talk is log-normal
(median 109 s, mean 179 s: the Anonymous Bank profile); 12 % of agent calls escalate to the
client's second line, 70 % of those end in a handoff. Origins: 70 % direct, 22 % overflow,
8 % callback (a callback dial first, a quarter of them unanswered attempts).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from billing.rating import (  # noqa: E402
    SIX_SIX,
    BillingPeriod,
    KindRate,
    Origin,
    RatePlanVersion,
    Segment,
    SegmentKind,
    Tier,
    rate_period,
    rate_segment,
)

TARGET = 100_000  # segments per second, one process
TENANT = "alpha"
PERIOD = BillingPeriod.month(TENANT, 2026, 3)


def sample_plan() -> RatePlanVersion:
    """A realistic plan: 6/6 everywhere, tiers and an allowance on agent minutes, overrides."""
    agent = KindRate(
        Decimal("2.00"),
        SIX_SIX,
        included_minutes=1_000,
        tiers=(Tier(10_000, Decimal("1.80")), Tier(50_000, Decimal("1.50"))),
    )
    return RatePlanVersion(
        plan_id="standard",
        version=1,
        currency="UAH",
        valid_from=date(2026, 1, 1),
        rates={
            SegmentKind.IVR: KindRate(Decimal("0.10"), SIX_SIX),
            SegmentKind.QUEUE: KindRate(Decimal("0.08"), SIX_SIX),
            SegmentKind.AGENT: agent,
            SegmentKind.HANDOFF: KindRate(Decimal("0.50"), SIX_SIX),
            SegmentKind.ESCALATION: KindRate(Decimal("0.60"), SIX_SIX, connect_fee=Decimal("0.05")),
            SegmentKind.CALLBACK_DIAL: KindRate(
                Decimal("0.40"), SIX_SIX, attempt_fee=Decimal("0.03")
            ),
        },
        overrides={(SegmentKind.AGENT, Origin.OVERFLOW): KindRate(Decimal("3.50"), SIX_SIX)},
        monthly_platform_fee=Decimal("5000.00"),
        seat_fee=Decimal("1200.00"),
        tax_rate=Decimal("0.20"),
    )


def lognormal_ms(rng: random.Random, median_s: float, sigma: float) -> int:
    return int(rng.lognormvariate(math.log(median_s), sigma) * 1000)


def random_uuid(rng: random.Random) -> str:
    """A random version-4-shaped UUID string (cheaper than uuid.UUID for millions of legs)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def one_call(rng: random.Random, call_no: int, t: int) -> list[Segment]:
    """The segments of one synthetic call answered (or dialled) at ``t`` ms."""
    call_id = f"call-{call_no}"
    a_leg = random_uuid(rng)
    draw = rng.random()
    origin = Origin.DIRECT if draw < 0.70 else Origin.OVERFLOW if draw < 0.92 else Origin.CALLBACK
    out: list[Segment] = []
    if origin is Origin.CALLBACK:
        if rng.random() < 0.25:  # an unanswered dial: an attempt record, then nothing
            cause = rng.choice(["NO_ANSWER", "USER_BUSY"])
            return [
                Segment(TENANT, call_id, a_leg, SegmentKind.CALLBACK_DIAL, origin, t, t + 30_000,
                        answered=False, hangup_cause=cause)
            ]  # fmt: skip
        dial = lognormal_ms(rng, 12, 0.4)
        out.append(Segment(TENANT, call_id, a_leg, SegmentKind.CALLBACK_DIAL, origin, t, t + dial))
        t += dial
    ivr = lognormal_ms(rng, 25, 0.6)
    out.append(Segment(TENANT, call_id, a_leg, SegmentKind.IVR, origin, t, t + ivr))
    t += ivr
    if rng.random() < 0.30:  # answered in the IVR
        return out
    waits = rng.random() < 0.54
    queue = lognormal_ms(rng, 50, 0.915) if waits else rng.randrange(2_000)
    out.append(Segment(TENANT, call_id, a_leg, SegmentKind.QUEUE, origin, t, t + queue))
    t += queue
    if waits and rng.random() < 0.218:  # abandoned in the queue
        return out
    talk = lognormal_ms(rng, 109, 0.996)
    out.append(Segment(TENANT, call_id, a_leg, SegmentKind.AGENT, origin, t, t + talk))
    t += talk
    if rng.random() < 0.12:  # escalated to the client's second line during a warm consult
        consult = min(talk, lognormal_ms(rng, 40, 0.5))
        handoff = lognormal_ms(rng, 90, 0.8) if rng.random() < 0.70 else 0
        if handoff:
            out.append(Segment(TENANT, call_id, a_leg, SegmentKind.HANDOFF, origin, t, t + handoff))
        out.append(
            Segment(TENANT, call_id, random_uuid(rng), SegmentKind.ESCALATION, origin,
                    t - consult, t + handoff)
        )  # fmt: skip
    return out


def synthetic_segments(n: int, seed: int) -> Iterator[Segment]:
    """Yield exactly ``n`` segments of calls spread over March 2026, call after call."""
    rng = random.Random(seed)
    span = PERIOD.end_ms - PERIOD.start_ms - 3 * 86_400_000  # room for the longest calls
    made = call_no = 0
    while True:
        call_no += 1
        for segment in one_call(rng, call_no, PERIOD.start_ms + rng.randrange(span)):
            if made == n:
                return
            yield segment
            made += 1


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} segments/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n, plan = args.segments, sample_plan()
    print(f"rating benchmark: {n:,} synthetic segments, Python {sys.version.split()[0]}")
    print(f"target: >= {TARGET:,} segments/s in one process\n")

    started = time.perf_counter()
    segments = list(synthetic_segments(n, args.seed))
    built = time.perf_counter() - started
    mix: dict[str, int] = {}
    for s in segments:
        mix[s.kind.value] = mix.get(s.kind.value, 0) + 1
    print(f"built     {n:,} segments in {built:.2f} s ({per_second(n, built).strip()}, not rating)")
    print("mix       " + ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(mix.items())))

    gc.collect()
    started = time.perf_counter()
    for s in segments:
        rate_segment(s, plan)
    elapsed = time.perf_counter() - started
    print(f"\nrate_segment                       {per_second(n, elapsed)}  ({elapsed:.2f} s)")

    for check in (True, False):
        gc.collect()
        started = time.perf_counter()
        result = rate_period(segments, plan, PERIOD, seats=40, check_duplicates=check)
        elapsed = time.perf_counter() - started
        label = "rate_period (duplicate check)" if check else "rate_period (no duplicate check)"
        print(f"{label:<34} {per_second(n, elapsed)}  ({elapsed:.2f} s)")
    print(
        f"invoice   {len(result.lines)} lines, subtotal {result.subtotal} {result.currency}, "
        f"total {result.total} {result.currency}"
    )

    # Memory: stream from a generator (nothing materialised) under tracemalloc. tracemalloc
    # slows Python down several times, so these runs are not timed.
    sample = min(n, 100_000)
    del segments
    gc.collect()
    tracemalloc.start()
    held = list(synthetic_segments(sample, args.seed))
    list_bytes = tracemalloc.get_traced_memory()[0] * n / sample
    del held
    tracemalloc.stop()
    print(f"\nholding {n:,} segments in a list would take ~{list_bytes / 2**20:,.0f} MiB")
    for check in (True, False):
        gc.collect()
        tracemalloc.start()
        rate_period(synthetic_segments(n, args.seed), plan, PERIOD, check_duplicates=check)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        label = "with duplicate check" if check else "without duplicate check"
        print(
            f"streaming rate_period peak, {label:<24} {peak / 2**20:>8,.1f} MiB "
            f"({peak / 1024:,.0f} KiB, {peak / n:,.1f} bytes/segment)"
        )


if __name__ == "__main__":
    main()
