"""ESL event firehose: can our inbound client keep up with a busy FreeSWITCH?

Run: ``.venv/bin/python benchmarks/bench_esl_firehose.py [--rate 5000 --seconds 20]``
(``--steps 10000,20000 --step-seconds 10`` for the step-up runs, ``--quick`` for
a 3 s smoke run of everything).

Issue 3, "Benchmarks / Event firehose": a real FreeSWITCH on this kind of machine
sent ~104 events per call (~3.5 KB each) to an all-events subscriber, ~4,200
events/s at 40 calls/s; its listener queue filled (100,000 events) and it cut
the subscriber off after 501 lost events. Target: our reader takes 5,000
events/s of that mix with p99 delivery lag < 100 ms and no loss, and in
production subscribes only to the events it needs.

Setup (all on 127.0.0.1):

* Server: ``benchmarks/esl_firehose_server.py`` in its own process (with
  ``--pin``, on CPU 1): a fake ``mod_event_socket`` that authenticates
  like the real one and streams the captured call events (real FreeSWITCH
  1.10.12 ``text/event-plain`` events, padded with extra ``variable_*``
  headers to ~3.5 KB on average; or the same events as ``text/event-json``),
  re-stamped with ``Event-Date-Timestamp`` = scheduled creation time (µs) and
  ``Event-Sequence`` = creation order, paced at ``--rate`` events/s, HEARTBEAT
  every 20 s. Like the real switch it only sends what the connection
  subscribed to.
* Client: a fresh process per case (``--pin``: CPU 0), so its CPU time and peak
  RSS (``resource.getrusage``) are its own. For ours: ``InboundClient`` with
  its defaults (10,000-event queue, drop-oldest), ``subscribe(...)``, a
  consumer coroutine that awaits ``client.events.get()`` and does a little work
  per event (dict lookup/update of the call by Unique-ID, lag, order check).
  Lag = time the consumer gets the event minus its stamp; it includes TCP
  back-pressure on the server (stamps are the schedule, not the send time).
* Baseline (same run, same stream): genesis 2026.10.18 (``Inbound``, a ``*``
  handler coroutine doing the same work, ``event plain ALL``). greenswitch is
  not driven: it is gevent-based (its reader needs a monkey-patched process of
  its own) and the platform is asyncio; see docs/decisions/0005-esl-library.md.
  Also compared: our client subscribed to ALL in JSON vs ALL in plain vs only
  the production list in plain.
* The machine has 2 vCPUs, often shared with other jobs: the ``other`` column
  shows how many cores other processes used during each case. With so little
  headroom the lag figures measure contention as much as the client; ``us/ev``
  (client CPU per event) is the steadier figure of its cost.
* Loss at the switch: the client reads only as fast as its event loop runs, so
  a slow consumer leaves the backlog in the kernel and in the switch's listener
  queue (``srv q``), not in the client's queue; FreeSWITCH cuts a listener off
  at 100,000 queued events, counted as a failure here.

Lost = events the server sent that never reached the consumer (not received
by the end marker, plus the client's queue drops, ``events.dropped`` and
``stats.events_dropped``). Timing figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (REPO, HERE):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))  # runnable as a plain script

import esl_firehose_server as fake  # noqa: E402

#: What the platform needs in production (an assumption of this benchmark: the
#: repository has no declared list yet). Call lifecycle for live-call state and
#: reconciliation, hold and DTMF for the agent console, mod_callcenter's
#: CUSTOM callcenter::info for queue state. The client adds HEARTBEAT (watchdog)
#: and BACKGROUND_JOB (bgapi) itself.
PRODUCTION_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_HANGUP_COMPLETE",
    "DTMF",
    "CUSTOM",
    "callcenter::info",
)


#: mod_event_socket's per-listener event queue: the subscriber is cut off when it is full.
SWITCH_QUEUE = 100_000


@dataclass(frozen=True)
class Case:
    label: str
    reader: str  # "ours" | "genesis"
    fmt: str  # "plain" | "json"
    events: tuple[str, ...]  # () = ALL


def _rss_now_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _pct(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k] / 1000.0  # µs -> ms


class _Sink:
    """The consumer's per-event work and figures (same for every reader)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}
        self.lags: list[int] = []
        self.received = 0
        self.disorder = 0
        self.last_seq = 0
        self.expected: int | None = None
        self.done = asyncio.Event()
        self.t_go = 0.0
        self.t_first = 0.0
        self.t_last = 0.0

    def take(self, name: str, uid: str | None, ts: int | None, seq: int | None) -> None:
        now_us = time.time_ns() // 1000
        if self.received == 0:
            self.t_first = time.perf_counter()
        self.received += 1
        self.t_last = time.perf_counter()
        if ts is not None:
            self.lags.append(now_us - ts)
        if seq is not None:
            if seq <= self.last_seq:
                self.disorder += 1
            self.last_seq = seq
        if uid:
            call = self.calls.get(uid)
            if call is None:
                call = self.calls[uid] = [0, name]
            call[0] += 1
            call[1] = name


async def _run_ours(case: Case, port: int, go: Any, deadline: float) -> dict[str, Any]:
    from telephony.esl.client import InboundClient

    client = InboundClient("127.0.0.1", port, fake.PASSWORD)
    await client.connect()
    names = case.events + (fake.END_SUBCLASS,) if case.events else ()
    await client.subscribe(*names, fmt=case.fmt)
    sink = _Sink()
    queue = client.events
    loop = asyncio.get_running_loop()
    rss0 = _rss_now_kb()
    cpu0 = _cpu_s()
    sink.t_go = time.perf_counter()
    go.set()
    stop_at = loop.time() + deadline
    timed_out = False
    while True:
        remaining = stop_at - loop.time()
        try:
            event = await queue.get(timeout=max(remaining, 0.001))
        except TimeoutError:
            timed_out = True
            break
        if event.name == "CUSTOM" and event.subclass == fake.END_SUBCLASS:
            sink.expected = fake.end_marker_count(event.get)
            break
        sink.take(event.name, event.unique_id, event.timestamp, event.sequence)
    cpu1 = _cpu_s()
    stats = client.stats
    out = {
        "queue_dropped": queue.dropped,
        "stats_dropped": stats.events_dropped,
        "queue_high_water": queue.high_water,
        "frame_errors": stats.frame_errors,
        "invalid_events": stats.invalid_events,
        "parsed_events": stats.events - (0 if timed_out else 1),  # minus the end marker
    }
    await client.disconnect()
    return _result(sink, timed_out, cpu1 - cpu0, rss0, out)


async def _run_genesis(case: Case, port: int, go: Any, deadline: float) -> dict[str, Any]:
    from urllib.parse import unquote

    from genesis import Inbound

    sink = _Sink()

    def first(value: Any) -> Any:
        return value[0] if isinstance(value, list) else value

    async def handler(event: Any) -> None:
        name = first(event.get("Event-Name"))
        if name == "CUSTOM" and unquote(first(event.get("Event-Subclass")) or "") == (
            fake.END_SUBCLASS
        ):
            sink.expected = fake.end_marker_count(lambda k: first(event.get(k)))
            sink.done.set()
            return
        ts = first(event.get("Event-Date-Timestamp"))
        seq = first(event.get("Event-Sequence"))
        sink.take(
            name,
            first(event.get("Unique-ID")),
            int(ts) if ts else None,
            int(seq) if seq else None,
        )

    async with Inbound("127.0.0.1", port, fake.PASSWORD) as client:
        client.on("*", handler)
        fmt_names = " ".join(case.events) if case.events else "ALL"
        await client.send(f"event {case.fmt} {fmt_names}")
        rss0 = _rss_now_kb()
        cpu0 = _cpu_s()
        sink.t_go = time.perf_counter()
        go.set()
        timed_out = False
        try:
            async with asyncio.timeout(deadline):
                await sink.done.wait()
        except TimeoutError:
            timed_out = True
        cpu1 = _cpu_s()
        out = {"queue_high_water": None, "queue_backlog_at_end": client.events.qsize()}
    return _result(sink, timed_out, cpu1 - cpu0, rss0, out)


def _result(
    sink: _Sink, timed_out: bool, cpu: float, rss0: int, extra: dict[str, Any]
) -> dict[str, Any]:
    lags = sorted(sink.lags)
    span = sink.t_last - sink.t_first
    return {
        "received": sink.received,
        "expected": sink.expected,
        "timed_out": timed_out,
        "disorder": sink.disorder,
        "calls_tracked": len(sink.calls),
        "p50": _pct(lags, 0.50),
        "p95": _pct(lags, 0.95),
        "p99": _pct(lags, 0.99),
        "max": lags[-1] / 1000.0 if lags else float("nan"),
        "rate": (sink.received - 1) / span if span > 0 else float("nan"),
        "cpu_s": cpu,
        "wall_s": time.perf_counter() - sink.t_go,
        "rss0_mb": rss0 / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


def client_main(case: Case, port: int, go: Any, results: Any, deadline: float, pin: bool) -> None:
    """Entry point of the client process."""
    if pin:
        fake.pin_to_cpu(0)
    logging.basicConfig(level=logging.WARNING)
    runner = _run_ours if case.reader == "ours" else _run_genesis
    try:
        res = asyncio.run(runner(case, port, go, deadline))
    except BaseException as exc:  # report, don't hang the driver
        res = {"error": repr(exc)}
    res["cpu_total_s"] = _cpu_s()
    results.put(res)


def server_main(
    pool: fake.Pool,
    rate: float,
    total: int,
    go: Any,
    ports: Any,
    results: Any,
    deadline: float,
    pin: bool,
) -> None:
    """Entry point of the server process."""
    if pin:
        fake.pin_to_cpu(1)
    listener = fake.open_listener()
    ports.put(listener.getsockname()[1])
    try:
        res = fake.serve(listener, pool, rate, total, go, deadline=deadline)
    except BaseException as exc:
        res = {"error": repr(exc)}
    finally:
        listener.close()
    res["cpu_total_s"] = _cpu_s()
    results.put(res)


def _busy_cpu_s() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, monotonic time) from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return float("nan"), time.monotonic()
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def run_case(
    case: Case, pool: fake.Pool, rate: int, seconds: float, grace: float, pin: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    busy0, t0 = _busy_cpu_s()
    cres, sres = _run_case(case, pool, rate, seconds, grace, pin)
    busy1, t1 = _busy_cpu_s()
    ours = cres.get("cpu_total_s", 0.0) + sres.get("cpu_total_s", 0.0)
    # Cores used by everything else on the machine (other jobs) during the case.
    sres["others_cores"] = max(0.0, (busy1 - busy0 - ours) / max(t1 - t0, 1e-9))
    return cres, sres


def _run_case(
    case: Case, pool: fake.Pool, rate: int, seconds: float, grace: float, pin: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx = mp.get_context("spawn")
    go, ports, s_res, c_res = ctx.Event(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    total = int(rate * seconds)
    client_deadline = seconds + grace
    server = ctx.Process(
        target=server_main,
        args=(pool, rate, total, go, ports, s_res, client_deadline + 30, pin),
        daemon=True,
    )
    server.start()
    client = None
    try:
        port = ports.get(timeout=60)
        client = ctx.Process(
            target=client_main, args=(case, port, go, c_res, client_deadline, pin), daemon=True
        )
        client.start()
        cres = c_res.get(timeout=client_deadline + 90)
        sres = s_res.get(timeout=60)
    except Exception as exc:  # noqa: BLE001
        cres, sres = {"error": f"driver: {exc!r}"}, {}
    finally:
        for proc in (client, server):
            if proc is not None:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
    return cres, sres


def _fmt_row(case: Case, rate: int, c: dict[str, Any], s: dict[str, Any]) -> str:
    if "error" in c or "error" in s:
        return f"{case.label:<34} {rate:>7,} ERROR client={c.get('error')} server={s.get('error')}"
    sent = s.get("sent", 0)
    got = c["received"]
    expected = c["expected"] if c["expected"] is not None else sent
    drops = max(c.get("queue_dropped") or 0, c.get("stats_dropped") or 0)
    if case.reader == "ours":
        # HEARTBEATs the client subscribed for its watchdog are not queued when
        # the app did not ask for them: count loss on the wire + queue drops.
        lost = max(0, expected - c["parsed_events"]) + drops
        lost += max(0, c["parsed_events"] - drops - got - _internal_only(case, s))
    else:
        lost = max(0, expected - got)
    if c["timed_out"]:
        lost = max(lost, expected - got)
    cpu = c["cpu_s"]
    wall = max(c["wall_s"], 1e-9)
    hw = c.get("queue_high_water")
    hw_s = f"{hw:>6,}" if hw is not None else "  unbd"
    ok = (
        lost == 0
        and c["p99"] < 100
        and not c["timed_out"]
        and c["disorder"] == 0
        and s.get("max_backlog", 0) < SWITCH_QUEUE
    )
    return (
        f"{case.label:<34} {rate:>7,} {s.get('generated', 0):>8,} {sent:>8,} {got:>8,}"
        f" {lost:>6,} {c['disorder']:>4} {c['rate']:>8,.0f}"
        f" {c['p50']:>7.1f} {c['p95']:>7.1f} {c['p99']:>7.1f} {c['max']:>8.1f}"
        f" {cpu:>6.2f} {100 * cpu / wall:>4.0f}% {1e6 * cpu / max(got, 1):>6.0f}"
        f" {c['rss0_mb']:>5.0f}/{c['peak_rss_mb']:>4.0f} {hw_s}"
        f" {1000 * s.get('max_behind_s', 0.0):>7.1f} {s.get('max_backlog', 0):>7,}"
        f" {s.get('cpu_s', 0.0):>5.1f}"
        f" {s.get('others_cores', float('nan')):>5.2f}"
        f"  {'yes' if ok else 'NO'}"
    )


def _internal_only(case: Case, s: dict[str, Any]) -> int:
    """HEARTBEATs sent to an app that did not subscribe to them (watchdog only)."""
    if not case.events or "HEARTBEAT" in case.events:
        return 0
    return s.get("heartbeats", 0)


HEADER = (
    f"{'case':<34} {'target':>7} {'generatd':>8} {'sent':>8} {'received':>8}"
    f" {'lost':>6} {'ord!':>4} {'recv/s':>8}"
    f" {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>8}"
    f" {'cpu s':>6} {'core':>5} {'us/ev':>6} {'RSS MB':>10} {'q high':>6}"
    f" {'srv lag':>7} {'srv q':>7} {'srvcpu':>5} {'other':>5}  ok"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rate", type=int, default=5000, help="events/s of the main runs")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each main run")
    ap.add_argument("--steps", default="10000,20000", help="step-up rates ('' for none)")
    ap.add_argument("--step-seconds", type=float, default=10.0, help="length of each step run")
    ap.add_argument("--grace", type=float, default=15.0, help="extra seconds to drain")
    ap.add_argument("--size", type=int, default=3500, help="mean event size to pad to (0: none)")
    ap.add_argument("--no-genesis", action="store_true", help="skip the genesis baseline")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin the client to CPU 0 and the server to CPU 1 (off by default: on a shared"
        " machine a pinned process can't escape other jobs)",
    )
    ap.add_argument("--quick", action="store_true", help="3 s runs, steps of 2 s")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.step_seconds, args.grace = 3.0, 2.0, 5.0
    steps = [int(x) for x in args.steps.split(",") if x.strip()]

    pool = fake.build_pool(args.size or None)
    prod = set(PRODUCTION_EVENTS)
    share = sum(
        1 for t in pool.events if (t.subclass in prod if t.name == "CUSTOM" else t.name in prod)
    ) / len(pool.events)
    print(
        f"ESL firehose, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average"
        f" {os.getloadavg()[0]:.2f}; fake switch and client in separate fresh processes per case"
        + (" (server pinned to CPU 1, client to CPU 0)" if args.pin else " (not pinned)")
    )
    print(
        f"event mix: {len(pool.events)} real captured events cycled (FreeSWITCH 1.10.12), mean"
        f" {pool.mean_size('plain'):,.0f} B plain / {pool.mean_size('json'):,.0f} B json"
        f" (unpadded {fake.build_pool(None).mean_size('plain'):,.0f} B); HEARTBEAT every 20 s"
    )
    top = sorted(pool.mix().items(), key=lambda kv: -kv[1])[:8]
    print("  top:", ", ".join(f"{k} {100 * v / len(pool.events):.0f}%" for k, v in top))
    print(
        f"production list ({100 * share:.0f}% of the mix): {' '.join(PRODUCTION_EVENTS)}"
        " (+ HEARTBEAT, BACKGROUND_JOB added by the client)"
    )
    print()

    all_plain = Case("ours  ALL plain", "ours", "plain", ())
    all_json = Case("ours  ALL json (baseline)", "ours", "json", ())
    prod_plain = Case("ours  production list plain", "ours", "plain", PRODUCTION_EVENTS)
    genesis = Case("genesis ALL plain (baseline)", "genesis", "plain", ())
    runs: list[tuple[Case, int, float]] = [
        (all_json, args.rate, args.seconds),
        (all_plain, args.rate, args.seconds),
        (prod_plain, args.rate, args.seconds),
    ]
    if not args.no_genesis:
        runs.append((genesis, args.rate, args.seconds))
    for rate in steps:
        runs += [(all_plain, rate, args.step_seconds), (prod_plain, rate, args.step_seconds)]

    print(f"target: {args.rate:,} ev/s, p99 < 100 ms, 0 lost")
    print(HEADER)
    rows = []
    for case, rate, seconds in runs:
        cres, sres = run_case(case, pool, rate, seconds, args.grace, args.pin)
        row = _fmt_row(case, rate, cres, sres)
        rows.append(row)
        print(row + f"   [{seconds:g} s]", flush=True)
    print()
    print(
        "columns: generatd = events the fake switch created (the --rate x seconds stream); sent ="
        " those the subscription wanted; lost = sent but never consumed (incl. client queue"
        " drops); ord! = sequence going backwards; recv/s = consumer throughput; lag = consumer"
        " time - event creation stamp; cpu s/core/us/ev = client process CPU while streaming;"
        " RSS MB = client RSS at start / peak; q high = client queue high water (unbd ="
        " unbounded asyncio.Queue); srv lag = server's worst delay behind schedule (TCP"
        " back-pressure); srv q = most events created but not yet written by the server (what sits in FreeSWITCH's listener queue, which holds 100,000 before it cuts the subscriber off); srvcpu = server process CPU s; other = CPU cores used by other"
        " processes on the machine during the case (contention); ok = target met (p99 < 100 ms,"
        " 0 lost, in order, switch-side backlog < 100,000). genesis has an unbounded asyncio.Queue: its 'lost' are events"
        " still undelivered when the case's deadline (seconds + grace) expired, not drops."
    )


if __name__ == "__main__":
    main()
