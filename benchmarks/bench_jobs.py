"""Job queue: procrastinate on PostgreSQL (our choice) against Celery on Redis (the baseline).

Prints, for N no-op jobs: enqueue rate (one by one, and batched where the library can) and
drain rate of one worker process with 4-way concurrency. Both run in this same invocation on
this machine, so the figures compare. No assertions: this measures, tests decide correctness.

    .venv/bin/python benchmarks/bench_jobs.py [--jobs 2000]

Needs the project's database (embedded or DATABASE_URL) and, for the baseline, a Redis at
REDIS_URL or 127.0.0.1:6379 (skipped with a message if none answers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccplatform.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

CELERY_APP = """
from celery import Celery
import os
app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, worker_prefetch_multiplier=16)
@app.task(name="bench.noop")
def noop(i):
    return None
"""


def bench_procrastinate(jobs: int) -> dict[str, float]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from procrastinate.contrib.django import app

    call_command("migrate", verbosity=0, interactive=False)

    @app.task(queue="bench", name="bench.noop")
    def noop(i: int) -> None:
        return None

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'bench'")

    started = time.perf_counter()
    for i in range(jobs):
        noop.defer(i=i)
    one_by_one = jobs / (time.perf_counter() - started)

    started = time.perf_counter()
    noop.batch_defer(*({"i": i} for i in range(jobs)))
    batched = jobs / (time.perf_counter() - started)

    started = time.perf_counter()
    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(
            queues=["bench"],
            wait=False,
            concurrency=4,
            install_signal_handlers=False,
            listen_notify=False,
        )
    drained = 2 * jobs / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name='bench' AND status='succeeded'"
        )
        done = cursor.fetchone()[0]
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'bench'")
    return {"enqueue_1by1": one_by_one, "enqueue_batch": batched, "drain": drained, "done": done}


def bench_celery(jobs: int, redis_url: str) -> dict[str, float] | None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"celery baseline skipped: no Redis at {redis_url} ({exc})")
        return None
    client.delete("celery")
    workdir = ROOT / "var" / "bench_celery"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bench_celery_app.py").write_text(CELERY_APP)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(BENCH_REDIS_URL=redis_url, PYTHONPATH=str(workdir))
    sys.path.insert(0, str(workdir))
    os.environ["BENCH_REDIS_URL"] = redis_url
    import bench_celery_app  # type: ignore[import-not-found]

    started = time.perf_counter()
    for i in range(jobs):
        bench_celery_app.noop.delay(i)
    one_by_one = jobs / (time.perf_counter() - started)
    started = time.perf_counter()
    worker = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench_celery_app",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
        cwd=workdir,
    )
    try:
        while client.llen("celery") > 0 and worker.poll() is None:
            time.sleep(0.01)
        drained = jobs / (time.perf_counter() - started)  # includes worker start-up, as for ours
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return {"enqueue_1by1": one_by_one, "drain": drained}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    ours = bench_procrastinate(args.jobs)
    base = bench_celery(args.jobs, os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15")
    print(f"\njobs: {args.jobs} no-op jobs per run; one worker process, concurrency 4")
    print(f"{'':34}{'enqueue/s (1 by 1)':>20}{'enqueue/s (batch)':>20}{'drain jobs/s':>15}")
    print(
        f"{'procrastinate (PostgreSQL)':34}{ours['enqueue_1by1']:>20,.0f}{ours['enqueue_batch']:>20,.0f}{ours['drain']:>15,.0f}"
    )
    if base:
        print(
            f"{'celery (Redis broker) [baseline]':34}{base['enqueue_1by1']:>20,.0f}{'-':>20}{base['drain']:>15,.0f}"
        )
        print(
            f"ratio ours/baseline: enqueue {ours['enqueue_1by1'] / base['enqueue_1by1']:.2f}x, drain {ours['drain'] / base['drain']:.2f}x"
        )
    print(f"procrastinate jobs succeeded: {ours['done']} of {2 * args.jobs}")


if __name__ == "__main__":
    main()
