"""Exports: invoice PDFs (own static files only), CSVs safe in spreadsheets, the period zip."""

from __future__ import annotations

import csv
import http.server
import io
import threading
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from billing import actions, exports, tasks
from billing.demo import demo_call, demo_plan
from billing.models import Invoice, InvoicePdf, LedgerEntry, PeriodExport
from billing.rating import Segment, epoch_ms
from ccplatform.money import format_money

MARCH = date(2026, 3, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def issued(cast):  # type: ignore[no-untyped-def]
    plan = demo_plan("alpha-std", "UAH", MARCH)
    actions.do_assign_plan(cast.a, plan)
    segs = [s for i in range(3) for s in demo_call("alpha", i, T0 + i * 3_600_000)]
    actions.do_record_segments(cast.a, segs)
    return actions.do_finalize_invoice(
        actions.do_prepare_invoice(cast.a, MARCH), issue_date=date(2026, 4, 2)
    )


@pytest.fixture
def spy_server():  # type: ignore[no-untyped-def]
    """A local HTTP server that counts requests: nothing may reach it."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_the_invoice_is_rendered_in_the_clients_language_and_currency(issued):  # type: ignore[no-untyped-def]
    html = exports.invoice_html(issued)
    assert "Рахунок-фактура" in html and "INV-2026-00001" in html
    assert format_money(D("30.62"), "UAH", "uk") in html  # '30,62 ₴' with CLDR spacing
    assert "Alpha Retail LLC" in html and "Оператор: хвилини" in html
    assert "ПДВ 20%" in html
    pdf = exports.render_invoice_pdf(issued)
    content = bytes(pdf.content)
    assert content.startswith(b"%PDF-") and len(content) > 5000


def test_the_pdf_job_renders_after_the_finalizing_commit(cast, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    plan = demo_plan("beta-std", "USD", MARCH, monthly_platform_fee=D("250"))
    actions.do_assign_plan(cast.b, plan)
    draft = actions.do_prepare_invoice(cast.b, MARCH)
    with django_capture_on_commit_callbacks() as callbacks:
        invoice = actions.do_finalize_invoice(draft)
    assert len(callbacks) == 1  # the job is queued only once the transaction commits
    assert not InvoicePdf.objects.filter(invoice=invoice).exists()
    tasks.render_invoice_pdf_task(invoice_id=invoice.pk)  # what the worker runs
    assert bytes(InvoicePdf.objects.get(invoice=invoice).content).startswith(b"%PDF-")
    html = exports.invoice_html(invoice)
    assert "Invoice" in html and format_money(D("300.00"), "USD", "en") in html


def test_the_pdf_fetcher_never_reaches_the_network_or_the_file_system(spy_server):  # type: ignore[no-untyped-def]
    base, hits = spy_server
    html = f"""<html><head><link rel="stylesheet" href="{base}/evil.css">
    <link rel="stylesheet" href="ccp-static:billing/invoice.css"></head><body>
    <img src="{base}/tracker.png"><img src="file:///etc/passwd"><img src="/etc/hostname">
    <img src="ccp-static:../../../../etc/passwd"><img src="ccp-static:billing/logo.svg">
    <p style="background: url({base}/bg.png)">x</p></body></html>"""
    pdf, refused = exports.html_to_pdf(html)
    assert pdf.startswith(b"%PDF-")
    assert hits == [], f"the renderer fetched {hits}"
    assert f"{base}/evil.css" in refused and f"{base}/tracker.png" in refused
    assert "file:///etc/passwd" in refused
    assert "ccp-static:../../../../etc/passwd" in refused
    assert "ccp-static:billing/logo.svg" not in refused


def test_only_project_static_files_resolve():  # type: ignore[no-untyped-def]
    assert exports.resolve_static("ccp-static:billing/invoice.css").name == "invoice.css"
    for url in (
        "http://example.com/x.css",
        "https://127.0.0.1/x",
        "file:///etc/passwd",
        "data:text/css,body{}",
        "ccp-static:../settings.py",
        "ccp-static:/etc/passwd",
        "ccp-static:billing/../../ccplatform/settings.py",
        "ccp-static:billing/missing.css",
        "ccp-static:",
    ):
        assert exports.resolve_static(url) is None, url


def test_a_template_error_is_reported_and_nothing_is_stored(issued, monkeypatch):  # type: ignore[no-untyped-def]
    from django.template import TemplateSyntaxError

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise TemplateSyntaxError("Invalid block tag 'moeny'")

    monkeypatch.setattr(exports, "render_to_string", broken)
    with pytest.raises(exports.PdfRenderError, match="invoice template failed: .*moeny"):
        exports.render_invoice_pdf(issued)
    assert not InvoicePdf.objects.filter(invoice=issued).exists()


def read_csv(chunks) -> list[list[str]]:  # type: ignore[no-untyped-def]
    text = "".join(chunks)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_invoice_csv_has_stable_columns_and_adds_up(cast, issued):  # type: ignore[no-untyped-def]
    rows = read_csv(exports.invoices_csv(exports.period_invoices(MARCH)))
    assert (
        rows[0]
        == exports.INVOICE_COLUMNS
        == [
            "number",
            "kind",
            "status",
            "client",
            "client_schema",
            "period_start",
            "period_end",
            "issue_date",
            "due_date",
            "currency",
            "subtotal",
            "tax",
            "total",
            "credited_invoice",
        ]
    )
    assert rows[1] == [
        "INV-2026-00001",
        "invoice",
        "finalized",
        "Alpha Retail LLC",
        "alpha",
        "2026-03-01",
        "2026-03-31",
        "2026-04-02",
        "2026-04-16",
        "UAH",
        "25.52",
        "5.10",
        "30.62",
        "",
    ]


def test_the_usage_csv_lists_every_ledger_entry_and_reconciles_with_the_lines(cast, issued):  # type: ignore[no-untyped-def]
    rows = read_csv(exports.usage_csv(exports.period_entries(MARCH)))
    header, body = rows[0], rows[1:]
    assert header == exports.USAGE_COLUMNS
    assert len(body) == LedgerEntry.objects.filter(period_start=MARCH).count() == 15
    col = {name: i for i, name in enumerate(header)}
    for line in issued.lines.all():
        mine = [r for r in body if r[col["kind"]] == line.kind]
        assert sum(int(r[col["billable_seconds"]]) for r in mine) == line.billable_seconds
        exact = sum(D(r[col["amount"]]) for r in mine)
        assert exact.quantize(D("0.01"), "ROUND_HALF_UP") == line.amount
    first = body[0]
    assert first[col["start_utc"]] == "2026-03-02T10:00:00.000Z"
    assert first[col["duration_ms"]] == "25400"


def test_csv_cells_that_a_spreadsheet_would_execute_are_neutralised(cast):  # type: ignore[no-untyped-def]
    plan = demo_plan("alpha-std", "UAH", MARCH)
    actions.do_assign_plan(cast.a, plan)
    nasty = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "Олена"]
    segs = [
        Segment(
            "alpha",
            f"c{i}",
            f"leg-{i}",
            "agent",
            "direct",
            T0 + i * 1000,
            T0 + i * 1000 + 500,
            agent=name,
        )
        for i, name in enumerate(nasty)
    ]
    actions.do_record_segments(cast.a, segs)
    from billing.models import PlanVersion
    from billing.rating import KindRate

    v1 = PlanVersion.objects.get(plan=plan)
    actions.do_correct_plan_version(
        v1, rates={**actions.adapters.version_from_row(v1).rates, "agent": KindRate(D("3.00"))}
    )
    actions.do_rerate_period(cast.a, MARCH)  # adds reversals: negative numbers
    rows = read_csv(exports.usage_csv(exports.period_entries(MARCH)))
    col = {name: i for i, name in enumerate(rows[0])}
    agents = {r[col["agent"]] for r in rows[1:]}
    assert agents == {
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tcmd",
        "'\rcmd",
        "Олена",
    }
    amounts = [r[col["amount"]] for r in rows[1:] if r[col["entry_type"]] == "reversal"]
    assert amounts and all(a.startswith("-") and D(a) < 0 for a in amounts)  # numbers stay numbers
    assert exports.safe_cell("=1+2") == "'=1+2" and exports.safe_cell(D("-1.5")) == D("-1.5")


def test_the_period_zip_holds_every_pdf_and_both_csvs(cast, issued):  # type: ignore[no-untyped-def]
    export = PeriodExport.objects.create(period_start=MARCH)
    tasks.build_period_export_task(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "done"
    with zipfile.ZipFile(io.BytesIO(bytes(export.content))) as archive:
        names = sorted(archive.namelist())
        assert names == ["INV-2026-00001.pdf", "invoices.csv", "usage.csv"]
        assert archive.read("INV-2026-00001.pdf").startswith(b"%PDF-")
        assert "INV-2026-00001" in archive.read("invoices.csv").decode("utf-8-sig")
    assert Invoice.objects.get(pk=issued.pk).status == "finalized"


@pytest.mark.parametrize("chunk", [7, 64 * 1024])
def test_the_period_zip_streams_csvs_identical_to_the_joined_text(cast, monkeypatch, chunk):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(exports, "ZIP_WRITE_CHUNK", chunk)  # 7: many writes, split mid-row
    plan = demo_plan("alpha-std", "UAH", MARCH)
    actions.do_assign_plan(cast.a, plan)
    segs = [
        s
        for i in range(4)
        for s in demo_call("alpha", i, T0 + i * 3_600_000, agent="Олена =Ковальчук")
    ]
    actions.do_record_segments(cast.a, segs)
    actions.do_prepare_invoice(cast.a, MARCH)  # a draft: listed in invoices.csv, no PDF
    export = PeriodExport.objects.create(period_start=MARCH)
    exports.build_period_zip(export)
    export.refresh_from_db()
    expected_usage = "".join(exports.usage_csv(exports.period_entries(MARCH))).encode()
    expected_invoices = "".join(exports.invoices_csv(exports.period_invoices(MARCH))).encode()
    with zipfile.ZipFile(io.BytesIO(bytes(export.content))) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["invoices.csv", "usage.csv"]
        assert archive.read("usage.csv") == expected_usage
        assert archive.read("invoices.csv") == expected_invoices
        assert archive.getinfo("usage.csv").compress_type == zipfile.ZIP_DEFLATED
    assert len(read_csv([expected_usage.decode("utf-8")])) == 1 + len(segs)
    assert "Олена" in expected_usage.decode("utf-8")
