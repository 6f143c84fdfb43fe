"""A billing run over PostgreSQL: record segments into the ledger, then invoice every tenant.

Run: ``.venv/bin/python benchmarks/bench_billing_run.py --tenants 500 --segments 5000000``
(prints figures; asserts nothing; stops itself after ``--time-limit`` seconds).

Uses its OWN database, ``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/ccp_bench``;
the database name must contain ``bench``). It is dropped and re-created, then migrated, at the
start of every run; ``--drop-at-end`` drops it afterwards.

Set-up (not measured): the client companies are bulk-inserted ``Client`` rows **without
schemas** (``bulk_create`` bypasses ``TenantMixin.save``, so no schema is created or migrated;
the books live in the public schema and never enter a tenant schema). One demo UAH plan
(:func:`billing.demo.demo_plan`), one ``BillingAccount`` per client. Ledger rows are the
:func:`billing.demo.demo_call` shape (5 segments a call), rated once per kind with the real
``rate_segment`` and bulk-loaded with ``COPY`` in two steps: first ``--small-fraction`` of each
tenant's calls, then the rest, so the invoice run is measured at two ledger sizes.

Measured:

1. ``do_record_segments`` (rate + idempotency check + ledger insert) on a ``--record-segments``
   slice of a different month, segments/s and queries per batch, with both writers in the same
   run on tenants of their own: ``orm`` (the earlier ``bulk_create`` path, "before") and
   ``copy`` (COPY into a staging table + ``INSERT ... SELECT``, "after"); baseline: the pure
   core ``rate_segment`` over the same segments.
2. ``do_run_period`` (re-rate check + ``compute_invoice`` + draft write for every tenant) at both
   ledger sizes, each in a fresh child process so its peak RSS (``getrusage``) is its own:
   wall time, ledger rows/s, SQL queries per tenant; then, for a few sample tenants, the
   tracemalloc peak of ``do_prepare_invoice`` and of its parts, against the baselines "load all
   the tenant's ledger rows into Python and sum" and the pure core ``rate_period`` over the same
   segments already in memory.
3. One tenant's invoice by its own ledger size (``--memory-rows``, default 10,000 and 50,000
   rows, extra tenants loaded with COPY), in a child process: tracemalloc peak of
   ``compute_invoice`` and ``do_prepare_invoice`` against "load all the rows and sum".
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench_db import bench_url, prepare_database  # noqa: E402  (benchmarks/ is on sys.path)

RUN_PERIOD = date(2026, 3, 1)  # the invoiced month
RECORD_PERIOD_START_MS = int(datetime(2026, 2, 2, tzinfo=UTC).timestamp() * 1000)
RUN_START_MS = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
RUN_SPAN_MS = 26 * 86_400_000  # calls spread over 26 days, well inside the local month
SEGMENTS_PER_CALL = 5  # demo_call: ivr, queue, agent, handoff + escalation leg
TZ = "Europe/Kyiv"


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccplatform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


class QueryCounter:
    """``connection.execute_wrapper`` that counts statements."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql, params, many, context)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- set-up ------------------------------------------------------------------------------------
def create_books(tenants: int) -> dict:
    from billing.demo import demo_plan
    from billing.models import BillingAccount
    from tenants.models import Client

    Client.objects.bulk_create(
        [Client(schema_name="public", name="Bench provider", currency="UAH", time_zone=TZ)]
        + [
            Client(
                schema_name=f"bench{i:04d}",
                name=f"Bench client {i:04d}",
                currency="UAH",
                time_zone=TZ,
                status="active",
            )
            for i in range(tenants)
        ]
    )
    plan = demo_plan("bench-uah", "UAH", date(2026, 1, 1))
    clients = list(Client.objects.exclude(schema_name="public").order_by("schema_name"))
    BillingAccount.objects.bulk_create(
        BillingAccount(tenant=c, plan=plan, seats=10) for c in clients
    )
    version = plan.versions.get()
    return {"tenant_ids": [c.pk for c in clients], "version_id": version.pk, "plan": plan}


def kind_templates(plan) -> dict:  # type: ignore[no-untyped-def]
    """Per kind: (offset_ms, length_ms, leg, billable_seconds, amount, disposition, long)."""
    from billing import adapters
    from billing.demo import demo_call
    from billing.rating import rate_segment

    book, _rows = adapters.book_for_plan(plan)
    version = adapters.ledger_rating_version(book.versions[0])
    out = {}
    for seg in demo_call("t", 0, 0):
        rated = rate_segment(seg, version)
        out[seg.kind.value] = (
            seg.start_ms,
            seg.end_ms - seg.start_ms,
            "b" if seg.kind.value == "escalation" else "a",
            rated.billable_seconds,
            str(rated.amount),
            rated.disposition.value,
            "t" if rated.long_segment else "f",
        )
    return out


COPY_SQL = (
    "COPY billing_ledgerentry (tenant_id, plan_version_id, entry_type, call_id, leg_uuid, kind,"
    " origin, start_ms, end_ms, answered, hangup_cause, agent, queue, disposition,"
    " billable_seconds, amount, currency, period_start, late, long_segment, created_at) FROM STDIN"
)


def copy_ledger(
    url: str, books: dict, templates: dict, calls_from: int, calls_to: int, tenant_offset: int = 0
) -> int:
    """COPY calls [calls_from, calls_to) of every tenant into March's ledger; rows written.
    (``tenant_offset`` keeps the legs of extra tenants apart from the main run's.)"""
    import psycopg

    version_id = books["version_id"]
    per_tenant = books["calls_per_tenant"]
    spacing = RUN_SPAN_MS // max(per_tenant, 1)
    origins = ("direct", "direct", "direct", "overflow", "callback")
    now = datetime.now(UTC).isoformat()
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
        for t_index, tenant_id in enumerate(books["tenant_ids"], start=tenant_offset):
            buf = io.StringIO()
            for n in range(calls_from, calls_to):
                start = RUN_START_MS + n * spacing + (t_index * 997) % max(spacing, 1)
                origin = origins[n % 5]
                call = f"call-{t_index}-{n}"
                for kind, (off, length, leg, secs, amount, disp, long_) in templates.items():
                    leg_uuid = f"{t_index:08x}-{n:04x}-4000-{'8' if leg == 'a' else '9'}000-bench"
                    agent = "agent-1" if kind == "agent" else ""
                    queue = "" if kind == "escalation" else "support"
                    buf.write(
                        f"{tenant_id}\t{version_id}\tcharge\t{call}\t{leg_uuid}\t{kind}\t{origin}\t"
                        f"{start + off}\t{start + off + length}\tt\t\t{agent}\t{queue}\t{disp}\t"
                        f"{secs}\t{amount}\tUAH\t2026-03-01\tf\t{long_}\t{now}\n"
                    )
                    rows += 1
            copy.write(buf.getvalue())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE billing_ledgerentry")
    return rows


# -- 1. recording --------------------------------------------------------------------------------
def record_slices(books: dict, n_segments: int, first_tenant: int) -> list:  # type: ignore[type-arg]
    """``n_segments`` demo-call segments in February, spread over 5 tenants from
    ``first_tenant`` on (each writer gets tenants of its own, so both write fresh rows)."""
    from billing.demo import demo_call
    from tenants.models import Client

    ids = books["tenant_ids"][first_tenant : first_tenant + 5]
    tenants = list(Client.objects.filter(pk__in=ids).order_by("pk"))
    per_tenant = n_segments // len(tenants)
    slices = []
    for t_index, t in enumerate(tenants, start=first_tenant):
        segs = []
        n = 0
        while len(segs) < per_tenant:
            segs.extend(
                demo_call(
                    t.schema_name, (t_index + 1) * 10**6 + n, RECORD_PERIOD_START_MS + n * 60_000
                )
            )
            n += 1
        slices.append((t, segs[:per_tenant]))
    return slices


def bench_record(books: dict, n_segments: int, writer: str, first_tenant: int) -> dict:
    """``do_record_segments`` with one writer ("orm": the earlier bulk_create path; "copy")."""
    from django.db import connection

    from billing import adapters
    from billing.actions import do_record_segments
    from billing.rating import rate_segment

    slices = record_slices(books, n_segments, first_tenant)
    total = sum(len(s) for _t, s in slices)

    book, _rows = adapters.book_for_plan(books["plan"])
    version = adapters.ledger_rating_version(book.versions[0])
    t0 = time.perf_counter()
    for _t, segs in slices:
        for seg in segs:
            rate_segment(seg, version)
    core_s = time.perf_counter() - t0

    batch = 1000 if writer == "orm" else 5000  # each writer's default
    counter = QueryCounter()
    t0 = time.perf_counter()
    with connection.execute_wrapper(counter):
        written = sum(
            do_record_segments(t, segs, batch_size=batch, writer=writer).written
            for t, segs in slices
        )
    rec_s = time.perf_counter() - t0

    counter2 = QueryCounter()
    t0 = time.perf_counter()
    with connection.execute_wrapper(counter2):
        again = sum(
            do_record_segments(t, segs, batch_size=batch, writer=writer).already_recorded
            for t, segs in slices
        )
    rerun_s = time.perf_counter() - t0
    batches = sum(-(-len(s) // batch) for _t, s in slices)
    return {
        "writer": writer,
        "batch": batch,
        "segments": total,
        "written": written,
        "record_s": rec_s,
        "record_per_s": total / rec_s,
        "queries": counter.count,
        "queries_per_batch": counter.count / batches,
        "rerun_s": rerun_s,
        "rerun_skipped": again,
        "rerun_per_s": total / rerun_s,
        "core_per_s": total / core_s,
    }


# -- 2. the invoice run (child process) ---------------------------------------------------------
def measure_run(samples: int) -> dict:
    from django.db import connection

    from billing import adapters
    from billing.actions import (
        _account,
        _live_charges,
        billable_tenants,
        compute_invoice,
        do_prepare_invoice,
        do_rerate_period,
        do_run_period,
    )
    from billing.models import LedgerEntry
    from billing.rating import rate_period

    out: dict = {"rss_start_mb": rss_mb()}
    rows = LedgerEntry.objects.filter(period_start=RUN_PERIOD).count()
    out["ledger_rows"] = rows
    tenants = billable_tenants()
    out["tenants"] = len(tenants)

    counter = QueryCounter()
    t0 = time.perf_counter()
    with connection.execute_wrapper(counter):
        outcomes = do_run_period(RUN_PERIOD)
    out["run_s"] = time.perf_counter() - t0
    out["errors"] = sum(1 for o in outcomes if o.error)
    out["invoices"] = sum(1 for o in outcomes if o.invoice)
    out["lines_per_invoice"] = outcomes[0].invoice.lines.count() if outcomes[0].invoice else 0
    out["queries"] = counter.count
    out["queries_per_tenant"] = counter.count / len(tenants)
    out["rss_after_run_mb"] = rss_mb()

    sample = tenants[:samples]
    # Not CaptureQueriesContext: its log is capped at 9,000 queries, which the run exceeds.
    one = QueryCounter()
    with connection.execute_wrapper(one):
        do_prepare_invoice(sample[0], RUN_PERIOD)
    out["one_tenant_queries"] = one.count

    def traced(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        tracemalloc.start()
        t = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20, elapsed

    def naive(tenant) -> None:  # type: ignore[no-untyped-def]
        entries = list(LedgerEntry.objects.filter(tenant=tenant, period_start=RUN_PERIOD))
        sum(e.amount for e in entries)

    parts = {
        "prepare": lambda t: do_prepare_invoice(t, RUN_PERIOD),
        "rerate_check": lambda t: do_rerate_period(t, RUN_PERIOD),
        "compute": lambda t: compute_invoice(t, RUN_PERIOD),
        "naive_load_all": naive,
    }
    peaks: dict[str, list[float]] = {k: [] for k in parts}
    for tenant in sample:
        for name, fn in parts.items():
            peaks[name].append(traced(lambda fn=fn, tenant=tenant: fn(tenant))[0])
    out["tracemalloc_mb"] = {k: max(v) for k, v in peaks.items()}

    # Wall time per tenant (untraced) of the real path against the baselines.
    times: dict[str, list[float]] = {k: [] for k in ("prepare", "naive_load_all", "core_memory")}
    for tenant in sample:
        for name in ("prepare", "naive_load_all"):
            t = time.perf_counter()
            parts[name](tenant)
            times[name].append(time.perf_counter() - t)
        account = _account(tenant)
        book, _rows = adapters.book_for_plan(account.plan)
        period = adapters.period_for(tenant, RUN_PERIOD)
        segs = list(
            adapters.segments_from_entries(
                _live_charges(tenant, RUN_PERIOD, late=False).order_by(), tenant.schema_name
            )
        )
        t = time.perf_counter()
        rate_period(segs, book, period, seats=account.seats, check_duplicates=False)
        times["core_memory"].append(time.perf_counter() - t)
        out.setdefault("segments_per_sample_tenant", len(segs))
    out["per_tenant_s"] = {k: statistics.median(v) for k, v in times.items()}
    out["rss_end_mb"] = rss_mb()
    return out


def child_measure(args: argparse.Namespace) -> None:
    signal.alarm(args.time_limit)
    bench_url()
    setup_django()
    print("RESULT " + json.dumps(measure_run(args.samples)), flush=True)


def run_child(args: argparse.Namespace, budget: int) -> dict:
    cmd = [sys.executable, __file__, "--phase", "measure", "--samples", str(args.samples)]
    cmd += ["--time-limit", str(max(budget, 30))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 30, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"measure child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


# -- 3. per-tenant memory by ledger size (child process) ----------------------------------------
def create_memory_tenants(url: str, books: dict, templates: dict, sizes: list[int]) -> list[int]:
    """One more client per size, with ``size`` ledger rows of its own in March (COPY)."""
    from billing.models import BillingAccount
    from tenants.models import Client

    clients = Client.objects.bulk_create(
        Client(
            schema_name=f"benchmem{i:02d}",
            name=f"Bench memory client {size:,}",
            currency="UAH",
            time_zone=TZ,
            status="active",
        )
        for i, size in enumerate(sizes)
    )
    BillingAccount.objects.bulk_create(
        BillingAccount(tenant=c, plan=books["plan"], seats=10) for c in clients
    )
    ids = [c.pk for c in clients]
    for tenant_id, size in zip(ids, sizes, strict=True):
        calls = max(1, size // SEGMENTS_PER_CALL)
        one = {**books, "tenant_ids": [tenant_id], "calls_per_tenant": calls}
        copy_ledger(url, one, templates, 0, calls, tenant_offset=10_000 + tenant_id)
    return ids


def measure_memory(tenant_ids: list[int]) -> list[dict]:  # type: ignore[type-arg]
    from billing.actions import compute_invoice, do_prepare_invoice
    from billing.models import LedgerEntry
    from tenants.models import Client

    out = []
    for tenant in Client.objects.filter(pk__in=tenant_ids).order_by("pk"):
        rows = LedgerEntry.objects.filter(tenant=tenant, period_start=RUN_PERIOD).count()
        compute_invoice(tenant, RUN_PERIOD)  # warm-up (plan book, caches)
        figures: dict = {"rows": rows}  # type: ignore[type-arg]
        for name, fn in (
            ("compute", lambda t=tenant: compute_invoice(t, RUN_PERIOD)),
            ("prepare", lambda t=tenant: do_prepare_invoice(t, RUN_PERIOD)),
            (
                "naive",
                lambda t=tenant: sum(
                    e.amount
                    for e in list(LedgerEntry.objects.filter(tenant=t, period_start=RUN_PERIOD))
                ),
            ),
        ):
            tracemalloc.start()
            t0 = time.perf_counter()
            fn()
            figures[f"{name}_s"] = time.perf_counter() - t0
            figures[f"{name}_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        figures["rss_mb"] = rss_mb()
        out.append(figures)
    return out


def run_memory_child(tenant_ids: list[int], budget: int) -> list[dict]:  # type: ignore[type-arg]
    cmd = [sys.executable, __file__, "--phase", "memory", "--time-limit", str(max(budget, 30))]
    cmd += ["--memory-tenant-ids", ",".join(map(str, tenant_ids))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 30, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"memory child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


def print_memory(figures: list[dict]) -> None:  # type: ignore[type-arg]
    print()
    print("3. one tenant's invoice by its ledger size (tracemalloc peak of the call, MB; time s)")
    print(
        f"   {'ledger rows':>12}{'compute_invoice':>17}{'do_prepare_invoice':>20}"
        f"{'naive load-all':>16}{'time, traced':>14}{'child RSS':>11}"
    )
    for f in figures:
        print(
            f"   {f['rows']:>12,}{f['compute_mb']:>14.2f} MB{f['prepare_mb']:>17.2f} MB"
            f"{f['naive_mb']:>13.1f} MB{f['compute_s']:>13.2f}s{f['rss_mb']:>8.0f} MB"
        )
    if len(figures) >= 2 and figures[0]["rows"]:
        a, b = figures[0], figures[-1]
        print(
            f"   rows x{b['rows'] / a['rows']:.0f}: compute_invoice peak "
            f"x{b['compute_mb'] / max(a['compute_mb'], 1e-9):.1f}, naive load-all "
            f"x{b['naive_mb'] / max(a['naive_mb'], 1e-9):.1f}"
        )


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--segments", type=int, default=5_000_000)
    parser.add_argument("--small-fraction", type=float, default=0.1)
    parser.add_argument("--record-segments", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=3, help="tenants traced for memory")
    parser.add_argument("--time-limit", type=int, default=1800, help="seconds, then stop")
    parser.add_argument("--drop-at-end", action="store_true")
    parser.add_argument(
        "--memory-rows",
        default="10000,50000",
        help="ledger rows of the extra tenants measured alone (section 3); empty: skip",
    )
    parser.add_argument("--memory-tenant-ids", default="", help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="all", choices=["all", "measure", "memory"])
    args = parser.parse_args()
    if args.phase == "measure":
        child_measure(args)
        return
    if args.phase == "memory":
        signal.alarm(args.time_limit)
        bench_url()
        setup_django()
        ids = [int(i) for i in args.memory_tenant_ids.split(",")]
        print("RESULT " + json.dumps(measure_memory(ids)), flush=True)
        return

    deadline = time.monotonic() + args.time_limit
    signal.alarm(args.time_limit + 60)  # last resort; children have their own limits
    url = bench_url()
    t0 = time.perf_counter()
    prepare_database(url, recreate=True)
    setup_django()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=True, verbosity=0, interactive=False)
    migrate_s = time.perf_counter() - t0

    books = create_books(args.tenants)
    calls = max(1, args.segments // (args.tenants * SEGMENTS_PER_CALL))
    books["calls_per_tenant"] = calls
    small_calls = max(1, round(calls * args.small_fraction))
    templates = kind_templates(books["plan"])
    print(
        f"database {urlsplit(url).path.lstrip('/')} created and migrated in {migrate_s:.1f} s; "
        f"{args.tenants} clients without schemas; {calls} calls x {SEGMENTS_PER_CALL} segments "
        "per tenant",
        flush=True,
    )

    recs = []
    for n, writer in enumerate(("orm", "copy")):
        rec = bench_record(books, args.record_segments, writer, first_tenant=5 * n)
        recs.append(rec)
        print(
            f"recorded {rec['written']:,} segments in {rec['record_s']:.1f} s ({writer})",
            flush=True,
        )

    results = []
    loaded = 0
    load_s = 0.0
    for lo, hi in ((0, small_calls), (small_calls, calls)):
        if hi <= lo:
            continue
        t = time.perf_counter()
        loaded += copy_ledger(url, books, templates, lo, hi)
        load_s += time.perf_counter() - t
        print(f"ledger: {loaded:,} rows loaded (COPY, {load_s:.0f} s so far)", flush=True)
        budget = int(deadline - time.monotonic())
        if budget < 60:
            print("time limit reached: stopping before the next measurement", flush=True)
            break
        res = run_child(args, budget)
        results.append(res)
        print(f"invoice run over {res['ledger_rows']:,} rows: {res['run_s']:.1f} s", flush=True)

    print_report(args, recs, results, load_s, loaded)
    sizes = [int(x) for x in args.memory_rows.split(",") if x.strip()]
    budget = int(deadline - time.monotonic())
    if sizes and budget >= 60:
        ids = create_memory_tenants(url, books, templates, sizes)
        print_memory(run_memory_child(ids, int(deadline - time.monotonic())))
    elif sizes:
        print("time limit reached: section 3 (memory by ledger size) skipped")
    if args.drop_at_end:
        from django.db import connections

        connections.close_all()
        drop_database(url)
        print(f"dropped database {urlsplit(url).path.lstrip('/')}")


def print_report(args, recs: list[dict], results: list[dict], load_s: float, loaded: int) -> None:  # type: ignore[no-untyped-def]
    print()
    print(f"== billing run benchmark: {args.tenants} tenants, {loaded:,} ledger rows ==")
    print(f"set-up: COPY of {loaded:,} ledger rows in {load_s:.0f} s (not part of the figures)")
    print()
    print("1. do_record_segments (validate + rate + idempotency check + insert)")
    print(f"   {'':34}" + "".join(f"{r['writer']:>16}" for r in recs))

    def rec_row(label: str, fn, fmt: str) -> None:  # type: ignore[no-untyped-def]
        print(f"   {label:34}" + "".join(format(fn(r), fmt).rjust(16) for r in recs))

    rec_row("", lambda r: "(before)" if r["writer"] == "orm" else "(after)", "")
    rec_row("batch size", lambda r: r["batch"], ",")
    rec_row("segments", lambda r: r["segments"], ",")
    rec_row("recorded (segments/s)", lambda r: r["record_per_s"], ",.0f")
    rec_row("re-run, all recorded (segments/s)", lambda r: r["rerun_per_s"], ",.0f")
    rec_row("queries per batch", lambda r: r["queries_per_batch"], ".1f")
    rec_row("baseline: core rate_segment (/s)", lambda r: r["core_per_s"], ",.0f")
    if len(recs) == 2:
        print(
            f"   copy vs orm: x{recs[1]['record_per_s'] / recs[0]['record_per_s']:.1f} recording, "
            f"x{recs[1]['rerun_per_s'] / recs[0]['rerun_per_s']:.1f} re-run"
        )
    print()
    print("2. do_run_period (draft invoice for every tenant)")
    header = f"   {'':34}" + "".join(f"{r['ledger_rows']:>14,}" for r in results)
    print(header + "  (ledger rows)")

    def row(label: str, fn, fmt: str) -> None:  # type: ignore[no-untyped-def]
        print(f"   {label:34}" + "".join(format(fn(r), fmt).rjust(14) for r in results))

    row("segments per tenant", lambda r: r["segments_per_sample_tenant"], ",")
    row("wall time, all tenants (s)", lambda r: r["run_s"], ".1f")
    row("ledger rows / s", lambda r: r["ledger_rows"] / r["run_s"], ",.0f")
    row("invoices (errors)", lambda r: f"{r['invoices']} ({r['errors']})", "")
    row("lines per invoice", lambda r: r["lines_per_invoice"], "d")
    row("SQL queries per tenant (run)", lambda r: r["queries_per_tenant"], ".1f")
    row("SQL queries, one prepare", lambda r: r["one_tenant_queries"], "d")
    row("peak RSS after run (MB)", lambda r: r["rss_after_run_mb"], ".0f")
    row("  (RSS before run, MB)", lambda r: r["rss_start_mb"], ".0f")
    row("tracemalloc peak/tenant (MB):", lambda r: "", "")
    row("  do_prepare_invoice", lambda r: r["tracemalloc_mb"]["prepare"], ".1f")
    row("   - do_rerate_period part", lambda r: r["tracemalloc_mb"]["rerate_check"], ".1f")
    row("   - compute_invoice part", lambda r: r["tracemalloc_mb"]["compute"], ".1f")
    row("  baseline: naive load-all + sum", lambda r: r["tracemalloc_mb"]["naive_load_all"], ".1f")
    row("per-tenant time, median (ms):", lambda r: "", "")
    row("  do_prepare_invoice", lambda r: 1000 * r["per_tenant_s"]["prepare"], ".0f")
    row(
        "  baseline: naive load-all + sum",
        lambda r: 1000 * r["per_tenant_s"]["naive_load_all"],
        ".0f",
    )
    row(
        "  baseline: core rate_period, RAM",
        lambda r: 1000 * r["per_tenant_s"]["core_memory"],
        ".0f",
    )
    if len(results) == 2 and results[0]["ledger_rows"]:
        a, b = results
        scale = b["ledger_rows"] / a["ledger_rows"]
        growth = b["tracemalloc_mb"]["prepare"] / max(a["tracemalloc_mb"]["prepare"], 1e-9)
        print()
        print(
            f"   ledger x{scale:.1f}: wall time x{b['run_s'] / a['run_s']:.1f}, "
            f"tracemalloc peak per tenant x{growth:.1f}, "
            f"peak RSS {a['rss_after_run_mb']:.0f} -> {b['rss_after_run_mb']:.0f} MB"
        )
        if args.segments > b["ledger_rows"] * 1.05:
            per_row = b["run_s"] / b["ledger_rows"]
            print(
                f"   extrapolated to {args.segments:,} rows (linear): "
                f"{per_row * args.segments:.0f} s"
            )


if __name__ == "__main__":
    main()
