"""Exports of the books: invoice PDFs (WeasyPrint), CSVs and a period's bulk zip.

PDF resources: the HTML is rendered by us from our template, but it carries text from client
records (names, addresses), so the fetcher WeasyPrint uses is locked down: it serves only
``ccp-static:<path>`` URLs naming files of the project's own static files (found by Django's
staticfiles finders, resolved inside their roots), and refuses everything else — http(s),
``file:``, ``data:``, path tricks — without touching the network or the file system.

CSV: UTF-8 (with a BOM so spreadsheet programs detect it), fixed column lists, and every text
cell that a spreadsheet would read as a formula (first character ``=``, ``+``, ``-``, ``@``,
tab or carriage return) is prefixed with an apostrophe (OWASP "CSV injection"). Numbers we
format ourselves (amounts, seconds, including negative reversals) are written as plain numbers.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import logging
import mimetypes
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.html import escape
from django.utils.safestring import mark_safe

from billing.labels import labels, line_label
from billing.models import Invoice, InvoicePdf, LedgerEntry, PeriodExport
from billing.rating import currency_exponent
from ccplatform.money import format_money

logger = logging.getLogger(__name__)

STATIC_SCHEME = "ccp-static:"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PdfRenderError(Exception):
    """The invoice template or WeasyPrint failed; nothing was stored."""


def resolve_static(url: str) -> Path | None:
    """The static file a ``ccp-static:`` URL names, or None if it names anything else."""
    if not isinstance(url, str) or not url.startswith(STATIC_SCHEME):
        return None
    relative = url[len(STATIC_SCHEME) :].split("?")[0].split("#")[0].lstrip("/")
    if not relative or ".." in Path(relative).parts or "\\" in relative or "\x00" in relative:
        return None
    found = finders.find(relative)
    if not found or isinstance(found, list):
        return None
    path = Path(found).resolve()
    roots = [Path(p).resolve() for p in _static_roots()]
    if not path.is_file() or not any(path.is_relative_to(root) for root in roots):
        return None
    return path


@functools.cache
def static_only_fetcher_class() -> type:
    """WeasyPrint's fetcher, locked to our static files (built lazily: importing WeasyPrint
    parses its stylesheets, which a web process that never renders should not pay for)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=())
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            path = resolve_static(url)
            if path is None:
                self.refused.append(url)
                raise ValueError(f"refused to fetch {url[:200]!r}: only {STATIC_SCHEME} files")
            mime, _enc = mimetypes.guess_type(path.name)
            return URLFetcherResponse(
                url, path.read_bytes(), {"Content-Type": mime or "application/octet-stream"}
            )

    return StaticOnlyFetcher


def _static_roots() -> Iterator[str]:
    for finder in finders.get_finders():
        for _rel, storage in finder.list([]):
            location = getattr(storage, "location", None)
            if location:
                yield location


def html_to_pdf(html: str) -> tuple[bytes, list[str]]:
    """Render HTML to PDF with the static-only fetcher; also return the refused URLs."""
    from weasyprint import HTML  # imported here: its import logs and takes ~0.3 s

    fetcher = static_only_fetcher_class()()
    try:
        pdf = HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=fetcher).write_pdf()
    except Exception as exc:  # WeasyPrint raises many types; report one
        raise PdfRenderError(f"PDF rendering failed: {type(exc).__name__}: {exc}") from exc
    if fetcher.refused:
        logger.warning("invoice PDF: refused to fetch %s", ", ".join(fetcher.refused[:5]))
    return pdf, fetcher.refused


#: From this many lines on, the PDF lists lines in the compact layout (see compact_listing).
COMPACT_FROM_LINES = 100
#: Lines per block of the compact layout (a block may still break across pages, line by line).
COMPACT_BLOCK_LINES = 40
#: Descriptions longer than this are cut (with "…") in the compact layout, which does not wrap.
COMPACT_DESCRIPTION_CHARS = 60


def compact_listing(lines: list[dict[str, Any]], words: dict[str, str]) -> dict[str, Any]:
    """Long invoices: the lines as a few text blocks instead of one table row each.

    WeasyPrint's cost is per box: a 2,000-line table is 2,000 rows x 5 cells, each laid out,
    styled and painted on its own (~5 ms a row). Here each block of ``COMPACT_BLOCK_LINES``
    lines is one table row of two cells: "position. description" (proportional font) and the
    three numeric columns as one preformatted text in a monospaced font, padded so that
    quantities, unit prices and amounts line up (right-aligned) under their headings. Same
    content, same order, about a quarter of the rendering time; credit (negative) lines keep
    their colour. Short invoices keep the one-row-per-line table.
    """
    cells = [
        (
            f"{row['line'].position}. {_cut(row['label'], COMPACT_DESCRIPTION_CHARS)}",
            f"{row['quantity']} {row['unit']}".strip(),
            row["unit_price"],
            row["amount"],
            row["line"].amount < 0,
        )
        for row in lines
    ]
    headings = (words["quantity"], words["unit_price"], words["amount"])
    widths = [
        max([len(headings[i])] + [len(c[i + 1]) for c in cells]) + (2 if i else 0) for i in range(3)
    ]

    def numbers(values: tuple[str, ...]) -> str:
        return "".join(v.rjust(w) for v, w in zip(values, widths, strict=True))

    blocks = []
    for start in range(0, len(cells), COMPACT_BLOCK_LINES):
        chunk = cells[start : start + COMPACT_BLOCK_LINES]
        blocks.append(
            {
                "descriptions": mark_safe("\n".join(escape(c[0]) for c in chunk)),  # noqa: S308
                "numbers": mark_safe(  # noqa: S308 (every piece escaped)
                    "\n".join(
                        f'<span class="credit">{escape(numbers(c[1:4]))}</span>'
                        if c[4]
                        else escape(numbers(c[1:4]))
                        for c in chunk
                    )
                ),
            }
        )
    # DejaVu Sans Mono advances 0.602 em; at 8.5 pt that is 1.805 mm a character (+ padding).
    numbers_mm = round(sum(widths) * 1.805 + 4, 1)
    return {"heading": numbers(headings), "blocks": blocks, "numbers_width_mm": numbers_mm}


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: the compact layout never wraps
    return text if len(text) <= limit else text[: limit - 1] + "…"


def invoice_html(invoice: Invoice) -> str:
    """The invoice as HTML, in the client's language and number format."""
    language = invoice.language or "en"
    with translation.override(language):

        def money(amount: Decimal) -> str:
            return format_money(Decimal(amount), invoice.currency, language)

        words = labels(language)
        lines = [
            {
                "line": line,
                "label": line_label(line.code, line.description, language),
                "quantity": formats.number_format(Decimal(line.quantity_display), use_l10n=True)
                if line.unit != "credit"
                else "",
                "unit": words.get(line.unit, line.unit),
                "unit_price": money(line.unit_price) if line.unit_price else "",
                "amount": money(line.amount),
            }
            for line in invoice.lines.all()
        ]
        compact = len(lines) >= COMPACT_FROM_LINES
        return render_to_string(
            "billing/invoice_pdf.html",
            {
                "invoice": invoice,
                "L": words,
                "lines": [] if compact else lines,
                "compact": compact_listing(lines, words) if compact else None,
                "subtotal": money(invoice.subtotal_amount),
                "tax": money(invoice.tax_amount),
                "total": money(invoice.total_amount),
                "tax_percent": invoice.tax_percent,
                "provider": invoice.provider_details,
                "client": invoice.client_details,
                "css_url": STATIC_SCHEME + "billing/invoice.css",
                "logo_url": STATIC_SCHEME + "billing/logo.svg",
                "period_last_day": invoice.period_end - timedelta(days=1),
                "machine_summary": machine_summary(invoice, len(lines)),
            },
        )


def machine_summary(invoice: Invoice, line_count: int) -> str:
    """The PDF's Subject: number and plain amounts, so a reader can check them by machine."""
    return "; ".join(
        [
            invoice.display_number,
            f"currency={invoice.currency}",
            f"lines={line_count}",
            f"subtotal={_in_currency(invoice.subtotal_amount, invoice.currency)}",
            f"tax={_in_currency(invoice.tax_amount, invoice.currency)}",
            f"total={_in_currency(invoice.total_amount, invoice.currency)}",
        ]
    )


def render_invoice_pdf(invoice: Invoice) -> InvoicePdf:
    """Render and store the PDF of an issued invoice (the job calls this)."""
    if invoice.is_draft:
        raise PdfRenderError(f"{invoice} is a draft: only issued invoices get a PDF")
    try:
        html = invoice_html(invoice)
    except Exception as exc:
        raise PdfRenderError(f"invoice template failed: {type(exc).__name__}: {exc}") from exc
    pdf, _refused = html_to_pdf(html)
    stored, _created = InvoicePdf.objects.update_or_create(
        invoice=invoice, defaults={"content": pdf, "sha256": hashlib.sha256(pdf).hexdigest()}
    )
    return stored


# -- CSV -----------------------------------------------------------------------------------------
class Number(str):
    """A number we formatted ourselves: written as is (a negative amount is not a formula)."""


def safe_cell(value: Any) -> Any:
    """Neutralise a text cell that a spreadsheet would run as a formula."""
    if value is None:
        return ""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, str):
        if value.startswith(_FORMULA_START):
            return "'" + value
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Stream CSV text: BOM + header, then one line per row, every cell made safe."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield "\ufeff" + writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])


INVOICE_COLUMNS = [
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


def invoice_rows(invoices: Iterable[Invoice]) -> Iterator[list[Any]]:
    for inv in invoices:
        yield [
            inv.display_number,
            inv.kind,
            inv.status,
            inv.client_details.get("legal_name") or inv.tenant.name,
            inv.tenant.schema_name,
            inv.period_start.isoformat(),
            (inv.period_end - timedelta(days=1)).isoformat(),
            inv.issue_date.isoformat() if inv.issue_date else "",
            inv.due_date.isoformat() if inv.due_date else "",
            inv.currency,
            _in_currency(inv.subtotal_amount, inv.currency),
            _in_currency(inv.tax_amount, inv.currency),
            _in_currency(inv.total_amount, inv.currency),
            inv.credited_invoice.display_number if inv.credited_invoice_id else "",
        ]


USAGE_COLUMNS = [
    "client_schema",
    "period_start",
    "call_id",
    "leg_uuid",
    "kind",
    "origin",
    "start_utc",
    "end_utc",
    "duration_ms",
    "billable_seconds",
    "amount",
    "currency",
    "plan",
    "plan_version",
    "entry_type",
    "late",
    "disposition",
    "hangup_cause",
    "agent",
    "queue",
]


def _plain(amount: Decimal) -> Number:
    return Number(format(Decimal(amount), "f"))


def _in_currency(amount: Decimal, currency: str) -> Number:
    """An invoice amount (already rounded to the minor unit) with exactly its decimals."""
    exp = Decimal(1).scaleb(-currency_exponent(currency))
    return Number(format(Decimal(amount).quantize(exp), "f"))


def _iso_ms(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usage_rows(entries: Iterable[LedgerEntry]) -> Iterator[list[Any]]:
    for e in entries:
        yield [
            e.tenant.schema_name,
            e.period_start.isoformat(),
            e.call_id,
            e.leg_uuid,
            e.kind,
            e.origin,
            _iso_ms(e.start_ms),
            _iso_ms(e.end_ms),
            e.end_ms - e.start_ms,
            e.billable_seconds,
            _plain(e.amount),
            e.currency,
            e.plan_version.plan.code,
            e.plan_version.version,
            e.entry_type,
            e.late,
            e.disposition,
            e.hangup_cause,
            e.agent,
            e.queue,
        ]


def period_invoices(period_start: date):  # type: ignore[no-untyped-def]
    return (
        Invoice.objects.filter(period_start=period_start)
        .select_related("tenant", "credited_invoice")
        .order_by("series", "year", "number", "id")
    )


def period_entries(period_start: date):  # type: ignore[no-untyped-def]
    return (
        LedgerEntry.objects.filter(period_start=period_start)
        .select_related("tenant", "plan_version__plan")
        .order_by("tenant__schema_name", "start_ms", "id")
    )


def invoices_csv(invoices: Iterable[Invoice]) -> Iterator[str]:
    return csv_rows(INVOICE_COLUMNS, invoice_rows(invoices))


def usage_csv(entries: Iterable[LedgerEntry]) -> Iterator[str]:
    return csv_rows(USAGE_COLUMNS, usage_rows(entries))


ZIP_WRITE_CHUNK = 64 * 1024


def _write_text(archive: zipfile.ZipFile, name: str, pieces: Iterable[str]) -> None:
    """Write ``pieces`` UTF-8 encoded into the entry ``name`` as they come (~64 KB at a time),
    so memory does not grow with the rows. ``force_zip64`` because the size is unknown up
    front: an entry over 2 GiB must not fail at the end (the extracted bytes are the same)."""
    with archive.open(name, "w", force_zip64=True) as entry:
        buffered: list[str] = []
        size = 0
        for piece in pieces:
            buffered.append(piece)
            size += len(piece)
            if size >= ZIP_WRITE_CHUNK:
                entry.write("".join(buffered).encode())
                buffered.clear()
                size = 0
        if buffered:
            entry.write("".join(buffered).encode())


def build_period_zip(export: PeriodExport) -> None:
    """Every issued invoice PDF of the period plus both CSVs, into ``export.content``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        invoices = list(period_invoices(export.period_start))
        for invoice in invoices:
            if invoice.is_draft:
                continue
            pdf = InvoicePdf.objects.filter(invoice=invoice).first() or render_invoice_pdf(invoice)
            archive.writestr(f"{invoice.display_number}.pdf", bytes(pdf.content))
        _write_text(archive, "invoices.csv", invoices_csv(invoices))
        _write_text(
            archive, "usage.csv", usage_csv(period_entries(export.period_start).iterator(2000))
        )
    export.content = buffer.getvalue()
    export.status = PeriodExport.Status.DONE
    export.finished_at = timezone.now()
    export.save(update_fields=["content", "status", "finished_at"])
