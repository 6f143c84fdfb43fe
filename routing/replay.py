"""Replay call logs through the routing engine's pure estimators.

    python -m routing.replay ewt --calls CALLS.csv --estimator NAME --out PRED.csv
    python -m routing.replay ewt --list

``ewt`` reads a call log v1 (see routing.engine.calllog), drives one estimator per queue in
time order and writes, for every call, the wait it would have been told at queue entry:
``call_id,predicted_wait_s`` (``--with-range`` adds ``low_s,high_s``), in queue-entry order.
``-`` reads stdin or writes stdout. Bad rows are skipped, each reported on stderr with its
line number, then counted; they never stop the run. Exit status: 0 on success (even with bad
rows), 2 on usage errors (unknown estimator, unreadable file).

This module is a thin command-line shell over routing.engine; it imports no Django.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TextIO, cast

from routing.engine.calllog import read_call_log
from routing.engine.ewt import ESTIMATORS, make_estimator, replay


def _open(stack: ExitStack, path: str, mode: str) -> TextIO:
    if path == "-":
        return sys.stdin if "r" in mode else sys.stdout
    return cast(TextIO, stack.enter_context(open(path, mode, newline="", encoding="utf-8")))


def _list_estimators(out: TextIO) -> None:
    width = max(len(name) for name in ESTIMATORS)
    for name, cls in ESTIMATORS.items():
        out.write(f"{name:<{width}}  {cls.description}\n")


def run_ewt(args: argparse.Namespace) -> int:
    if args.list:
        _list_estimators(sys.stdout)
        return 0
    if not args.calls or not args.estimator or not args.out:
        print("ewt: --calls, --estimator and --out are required (or --list)", file=sys.stderr)
        return 2
    if args.estimator not in ESTIMATORS:
        print(
            f"ewt: unknown estimator {args.estimator!r}; known: {', '.join(ESTIMATORS)}",
            file=sys.stderr,
        )
        return 2
    with ExitStack() as stack:
        try:
            source = _open(stack, args.calls, "r")
            records, bad = read_call_log(source)
        except OSError as exc:
            print(f"ewt: cannot read {args.calls}: {exc}", file=sys.stderr)
            return 2
        for b in bad:
            print(f"ewt: row {b.row}: {b.reason}", file=sys.stderr)
        try:
            sink = _open(stack, args.out, "w")
        except OSError as exc:
            print(f"ewt: cannot write {args.out}: {exc}", file=sys.stderr)
            return 2
        writer = csv.writer(sink, lineterminator="\n")
        header = ["call_id", "predicted_wait_s"]
        if args.with_range:
            header += ["low_s", "high_s"]
        writer.writerow(header)
        written = 0
        for p in replay(records, lambda: make_estimator(args.estimator)):
            row = [p.record.call_id, f"{p.estimate.seconds:.1f}"]
            if args.with_range:
                row += [f"{p.estimate.low:.1f}", f"{p.estimate.high:.1f}"]
            writer.writerow(row)
            written += 1
    print(
        f"ewt: {args.estimator}: {written} predictions, {len(bad)} bad rows skipped",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m routing.replay", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    ewt = commands.add_parser("ewt", help="replay estimated-wait-time estimators")
    ewt.add_argument("--calls", help="call log v1 CSV ('-' for stdin)")
    ewt.add_argument("--estimator", help="estimator name (see --list)")
    ewt.add_argument("--out", help="predictions CSV ('-' for stdout)")
    ewt.add_argument("--with-range", action="store_true", help="add low_s,high_s columns")
    ewt.add_argument("--list", action="store_true", help="list the estimators and exit")
    ewt.set_defaults(run=run_ewt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
