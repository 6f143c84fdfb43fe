"""Invoice PDF rendering through the real path: invoices per minute, 20 and 2,000 lines.

Run: ``.venv/bin/python benchmarks/bench_pdf.py [--reps 7] [--time-limit 600]``
(prints figures; asserts nothing; stops itself after ``--time-limit`` seconds).

Uses its OWN database, ``DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/ccp_bench``;
the database name must contain ``bench``): created if missing and migrated. It adds one client
company (a ``Client`` row without a schema: ``auto_create_schema = False``) and two issued
invoices (a 20-line and a 2,000-line one; lines written as a draft, then numbered and frozen by
``billing.actions._issue`` as the credit-note path does), which stay there (issued invoices
cannot be deleted; ``--drop-at-end`` drops the whole database).

Measured: :func:`billing.exports.render_invoice_pdf` (template + WeasyPrint + storing the
``InvoicePdf`` row), repeated ``--reps`` times per invoice, median -> invoices per minute;
the HTML (template) part alone; tracemalloc peak of one render and the process's peak RSS
after each phase. Baseline in the same process: WeasyPrint writing a trivial one-page HTML.
The 2,000-line invoice is rendered twice in the same run: "before", every line a table row
(``exports.COMPACT_FROM_LINES`` raised out of reach), and "after", the compact listing that
``render_invoice_pdf`` uses from ``COMPACT_FROM_LINES`` lines on.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import statistics
import sys
import time
import tracemalloc
import zlib
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench_db import bench_url, prepare_database  # noqa: E402  (benchmarks/ is on sys.path)

TRIVIAL_HTML = "<html><body><h1>Invoice</h1><p>One line, one page.</p></body></html>"


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


KINDS = ("ivr", "queue", "agent", "handoff", "escalation", "callback_dial")
ORIGINS = ("direct", "overflow", "callback")


def make_invoice(tenant, n_lines: int):  # type: ignore[no-untyped-def]
    """An issued invoice with ``n_lines`` usage-style lines (codes the PDF labels translate)."""
    from django.db import transaction

    from billing.actions import _FINAL_FIELDS, INVOICE_SERIES, _issue
    from billing.models import Invoice, InvoiceLine

    period = date(2026, 1 if n_lines < 100 else 2, 1)
    invoice = Invoice.objects.create(
        tenant=tenant,
        kind=Invoice.Kind.INVOICE,
        series=INVOICE_SERIES,
        period_start=period,
        period_end=date(period.year + (period.month == 12), period.month % 12 + 1, 1),
        currency="UAH",
        language="uk",
        tax_rate=Decimal("0.20"),
    )
    lines = []
    subtotal = Decimal(0)
    for i in range(n_lines):
        kind, origin = KINDS[i % 6], ORIGINS[(i // 6) % 3]
        minutes = Decimal(100 + 37 * i) / 10
        price = Decimal("1.80") if kind == "agent" else Decimal("0.12")
        amount = (minutes * price).quantize(Decimal("0.01"))
        subtotal += amount
        lines.append(
            InvoiceLine(
                invoice=invoice,
                position=i + 1,
                code=f"usage:{kind}:{origin}:tier{i // 18 + 1}",
                description=f"{kind} ({origin}) tier {i // 18 + 1}",
                quantity=minutes,
                unit="min",
                unit_price=price,
                exact_amount=amount,
                amount=amount,
                kind=kind,
                origins=[origin],
                billable_seconds=int(minutes * 60),
            )
        )
    InvoiceLine.objects.bulk_create(lines)
    tax = (subtotal * Decimal("0.20")).quantize(Decimal("0.01"))
    invoice.subtotal_amount, invoice.tax_amount = subtotal, tax
    invoice.total_amount = subtotal + tax
    invoice.save()
    with transaction.atomic():
        _issue(invoice, INVOICE_SERIES, date(2026, 11, 2), 14)
        invoice.save(update_fields=_FINAL_FIELDS)
    return Invoice.objects.select_related("tenant").get(pk=invoice.pk)


def setup_books():  # type: ignore[no-untyped-def]
    from billing.models import ProviderProfile
    from tenants.models import Client

    if not ProviderProfile.objects.exists():
        ProviderProfile.objects.create(
            legal_name="ТОВ «Бенч Провайдер»",
            legal_address="вул. Хрещатик, 1, Київ, 01001",
            tax_id="UA12345678",
            iban="UA213223130000026007233566001",
            bank_name="Bench Bank",
        )
    tenant = Client(
        schema_name=f"pdfbench{int(time.time())}",
        name="ТОВ «Тестовий клієнт»",
        legal_name="Товариство з обмеженою відповідальністю «Тестовий клієнт»",
        legal_address="просп. Перемоги, 10, Київ",
        currency="UAH",
        language="uk",
        time_zone="Europe/Kyiv",
    )
    tenant.auto_create_schema = False  # billing never enters the tenant schema
    tenant.save()
    return tenant


def count_pages(pdf: bytes) -> int:
    """Pages of a WeasyPrint PDF (its page dicts sit in compressed object streams)."""
    found = 0
    for match in re.finditer(rb"stream\r?\n", pdf):
        try:
            data = zlib.decompressobj().decompress(pdf[match.end() : match.end() + 2_000_000])
        except zlib.error:
            continue
        found += len(re.findall(rb"/Type\s*/Page(?![a-z])", data))
    return found


def timed_reps(fn, reps: int, deadline: float) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        if times and time.monotonic() > deadline:
            break
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def traced_peak_mb(fn) -> float:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--big-reps", type=int, default=3, help="reps of the 2,000-line one")
    parser.add_argument("--time-limit", type=int, default=600, help="seconds, then stop")
    parser.add_argument("--drop-at-end", action="store_true")
    args = parser.parse_args()
    signal.alarm(args.time_limit + 60)  # last resort
    deadline = time.monotonic() + args.time_limit

    url = bench_url()
    prepare_database(url, recreate=False)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccplatform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=True, verbosity=0, interactive=False)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from weasyprint import HTML

    from billing import exports

    tenant = setup_books()
    invoices = {n: make_invoice(tenant, n) for n in (20, 2000)}
    rss_setup = rss_mb()

    rows = []

    def trivial() -> None:
        HTML(string=TRIVIAL_HTML).write_pdf()

    trivial()  # warm-up: fonts, stylesheets
    times = timed_reps(trivial, args.reps, deadline)
    rows.append(("baseline: trivial 1-page HTML", times, traced_peak_mb(trivial), None, rss_mb()))

    compact_from = exports.COMPACT_FROM_LINES
    for n, invoice in invoices.items():
        # "before": every line a table row (the layout before the compact listing); "after":
        # what render_invoice_pdf does now (the compact listing from COMPACT_FROM_LINES lines).
        layouts = [("table", 10**9), ("now", compact_from)] if n >= compact_from else [("now", 0)]
        for layout, threshold in layouts:
            exports.COMPACT_FROM_LINES = threshold or compact_from
            exports.render_invoice_pdf(invoice)  # warm-up (and proves the path works)
            reps = args.reps if n < 100 else args.big_reps
            with CaptureQueriesContext(connection) as ctx:
                exports.invoice_html(invoice)
            html_times = timed_reps(lambda inv=invoice: exports.invoice_html(inv), reps, deadline)
            times = timed_reps(lambda inv=invoice: exports.render_invoice_pdf(inv), reps, deadline)
            peak = traced_peak_mb(lambda inv=invoice: exports.render_invoice_pdf(inv))
            pdf = bytes(exports.InvoicePdf.objects.get(invoice=invoice).content)
            pages = count_pages(pdf)
            when = {"table": "before: row per line", "now": "now"}[layout]
            if layout == "now" and n >= compact_from:
                when = "after: compact listing"
            rows.append(
                (
                    f"{n:,} lines, {when} ({pages} p., {len(pdf) // 1024} KiB,"
                    f" {len(ctx.captured_queries)} SQL)",
                    times,
                    peak,
                    statistics.median(html_times),
                    rss_mb(),
                )
            )
    exports.COMPACT_FROM_LINES = compact_from

    print()
    print(
        f"== invoice PDF rendering (WeasyPrint), median of up to {args.reps} reps ({args.big_reps} for 2,000 lines) =="
    )
    print(f"process RSS after set-up: {rss_setup:.0f} MB")
    print(
        f"{'':60}{'median s':>10}{'inv/min':>10}{'reps':>6}{'HTML s':>9}"
        f"{'tracemalloc':>13}{'peak RSS':>10}"
    )
    for label, times, peak, html_s, rss in rows:
        med = statistics.median(times)
        html = f"{html_s:.3f}" if html_s is not None else "-"
        print(
            f"{label:60}{med:>10.3f}{60 / med:>10.1f}{len(times):>6}{html:>9}"
            f"{peak:>10.1f} MB{rss:>7.0f} MB"
        )
    print("(peak RSS is the process's high-water mark after each row, cumulative)")
    before = [r for r in rows if "before" in r[0]]
    after = [r for r in rows if "after" in r[0]]
    if before and after:
        speedup = statistics.median(before[0][1]) / statistics.median(after[0][1])
        print(f"compact listing vs row per line: x{speedup:.1f} faster")
    if args.drop_at_end:
        from django.db import connections

        connections.close_all()
        drop_database(url)
        print(f"dropped database {urlsplit(url).path.lstrip('/')}")


if __name__ == "__main__":
    main()
