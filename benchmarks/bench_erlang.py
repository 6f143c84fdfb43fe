"""Benchmark: staffing computations per second, ours against pyworkforce's ErlangC.

The grid is realistic: the Anonymous Bank's weekday intraday shape (48 half-hour intervals,
averaged over Sunday-Thursday working days of 1999) scaled so the peak interval carries
1, 2, ..., 500 Erlangs; every interval of every scaled day is one "agents needed for 80/20"
problem (24,000 problems by default). Both implementations solve the same problems in the same
process; the agent counts are compared and mismatches counted. Figures are printed, nothing is
asserted about time.

    .venv/bin/python benchmarks/bench_erlang.py [--max-traffic 500] [--data CSV]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.erlang import (  # noqa: E402  (path set up above so the script runs directly)
    erlang_a_agents_needed,
    erlang_b_lines_needed,
    erlang_c_agents_needed,
)

DEFAULT_DATA = Path("/work/shared/data/anonymous_bank_1999_6min/callcenter_1999_6min.csv")
AHT_S = 179.0  # the bank's mean service time
PATIENCE_S = 350.0  # the bank's mean patience
INTERVAL_S = 1800.0
TARGET_SL = 0.8
ANSWER_S = 20.0
WORKING_DAYS = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday"}


def intraday_shape(path: Path) -> tuple[list[float], str]:
    """48 half-hour weights with peak 1.0 from the bank's 6-minute counts (or a fallback)."""
    if not path.exists():
        # Two-hump working day, for when the data set is not mounted.
        shape = [
            max(
                0.02,
                math.exp(-(((h - 10.5) / 2.0) ** 2)) + 0.8 * math.exp(-(((h - 15) / 2.5) ** 2)),
            )
            for h in (i / 2 for i in range(48))
        ]
        peak = max(shape)
        return [v / peak for v in shape], "synthetic two-peak day (data file not found)"
    per_day: dict[str, list[float]] = defaultdict(lambda: [0.0] * 48)
    weekday_of: dict[str, str] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            slot = (int(row["interval_6min"]) - 1) // 5
            per_day[row["date"]][slot] += float(row["calls"])
            weekday_of[row["date"]] = row["weekday"]
    days = [d for d in per_day if weekday_of[d] in WORKING_DAYS]
    typical = statistics.median(sum(per_day[d]) for d in days)
    days = [d for d in days if sum(per_day[d]) > 0.5 * typical]  # drop holidays
    mean = [sum(per_day[d][i] for d in days) / len(days) for i in range(48)]
    peak = max(mean)
    return [v / peak for v in mean], f"Anonymous Bank 1999, {len(days)} working days"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-traffic", type=int, default=500, help="largest peak, Erlangs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    shape, source = intraday_shape(args.data)
    problems = [
        weight * peak * INTERVAL_S / AHT_S  # calls in the half hour
        for peak in range(1, args.max_traffic + 1)
        for weight in shape
    ]
    problems = [calls for calls in problems if calls > 0]  # pyworkforce rejects 0 calls
    print(f"intraday shape: {source}")
    print(
        f"grid: 48 half-hour intervals x peak 1..{args.max_traffic} Erlangs = {len(problems)} "
        f"problems; AHT {AHT_S:.0f} s, target {TARGET_SL:.0%}/{ANSWER_S:.0f} s"
    )

    start = time.perf_counter()
    ours = [
        erlang_c_agents_needed(
            calls, AHT_S, INTERVAL_S, service_level=TARGET_SL, answer_time_s=ANSWER_S
        ).agents
        for calls in problems
    ]
    ours_s = time.perf_counter() - start
    print(
        f"ours        Erlang C agents needed: {ours_s:7.3f} s, "
        f"{len(problems) / ours_s:10,.0f} problems/s, {sum(ours):,} agent-intervals"
    )

    try:
        from pyworkforce.queuing import ErlangC
    except Exception as exc:  # report and carry on with our own figures
        print(f"pyworkforce unavailable: {exc!r}")
        theirs = None
    else:
        start = time.perf_counter()
        theirs = [
            ErlangC(
                transactions=calls, aht=AHT_S / 60, asa=ANSWER_S / 60, interval=INTERVAL_S / 60
            ).required_positions(service_level=TARGET_SL)["raw_positions"]
            for calls in problems
        ]
        theirs_s = time.perf_counter() - start
        print(
            f"pyworkforce ErlangC.required_positions: {theirs_s:7.3f} s, "
            f"{len(problems) / theirs_s:10,.0f} problems/s, {sum(theirs):,} agent-intervals"
        )
        print(f"speed-up: {theirs_s / ours_s:.1f}x")
        mismatches = [(c, a, b) for c, a, b in zip(problems, ours, theirs, strict=True) if a != b]
        print(f"mismatches: {len(mismatches)} of {len(problems)}")
        for calls, a, b in mismatches[:10]:
            print(
                f"  calls={calls:.6f} traffic={calls * AHT_S / INTERVAL_S:.6f} E: "
                f"ours {a}, pyworkforce {b}"
            )

    # Our other searches on the same grid (no reference implementation to race).
    start = time.perf_counter()
    abandon = [
        erlang_a_agents_needed(calls, AHT_S, PATIENCE_S, INTERVAL_S, max_abandon=0.05).agents
        for calls in problems
    ]
    a_s = time.perf_counter() - start
    print(
        f"ours        Erlang A agents for <=5% abandon (patience {PATIENCE_S:.0f} s): "
        f"{a_s:7.3f} s, {len(problems) / a_s:10,.0f} problems/s, "
        f"{sum(abandon):,} agent-intervals"
    )
    start = time.perf_counter()
    lines = [erlang_b_lines_needed(calls * AHT_S / INTERVAL_S, 0.01) for calls in problems]
    b_s = time.perf_counter() - start
    print(
        f"ours        Erlang B lines for 1% blocking: {b_s:7.3f} s, "
        f"{len(problems) / b_s:10,.0f} problems/s, {sum(lines):,} line-intervals"
    )


if __name__ == "__main__":
    main()
