"""Long invoices: the PDF lists lines in the compact layout, with every line, in order."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal as D
from html import unescape

import pytest

from billing import actions, exports
from billing.models import Invoice, InvoiceLine

JAN = date(2026, 1, 1)


def issued_invoice(tenant, n_lines: int, *, credit_every: int = 0) -> Invoice:  # type: ignore[no-untyped-def]
    invoice = Invoice.objects.create(
        tenant=tenant,
        kind=Invoice.Kind.INVOICE,
        series=actions.INVOICE_SERIES,
        period_start=JAN,
        period_end=date(2026, 2, 1),
        currency="UAH",
        language="uk",
        tax_rate=D("0.20"),
    )
    lines = []
    for i in range(1, n_lines + 1):
        amount = D(i) / 4 * (-1 if credit_every and i % credit_every == 0 else 1)
        lines.append(
            InvoiceLine(
                invoice=invoice,
                position=i,
                code="credit" if i == 3 else f"usage:agent:direct:tier{i}",
                description="<b>refund</b>\tfor a\nbroken line & more" if i == 3 else "",
                quantity=D(i),
                unit="credit" if i == 3 else "min",
                unit_price=D("0.25"),
                exact_amount=amount,
                amount=amount,
                kind="agent",
                origins=["direct"],
            )
        )
    InvoiceLine.objects.bulk_create(lines)
    subtotal = sum((line.amount for line in lines), D(0))
    invoice.subtotal_amount = subtotal
    invoice.tax_amount = (subtotal * D("0.2")).quantize(D("0.01"))
    invoice.total_amount = invoice.subtotal_amount + invoice.tax_amount
    invoice.save()
    actions._issue(invoice, actions.INVOICE_SERIES, date(2026, 2, 2), 14)
    invoice.save(update_fields=actions._FINAL_FIELDS)
    return Invoice.objects.select_related("tenant").get(pk=invoice.pk)


def cells(html: str, css_class: str) -> list[str]:
    found = re.findall(rf'<td class="{css_class}">(.*?)</td>', html, re.S)
    return [unescape(re.sub(r"</?span[^>]*>", "", block)) for block in found]


def test_a_long_invoice_lists_every_line_in_order_with_aligned_numbers(cast):  # type: ignore[no-untyped-def]
    n = exports.COMPACT_FROM_LINES + 23
    invoice = issued_invoice(cast.a, n, credit_every=10)
    html = exports.invoice_html(invoice)
    assert 'class="lines compact"' in html
    descriptions = "\n".join(cells(html, "text")).split("\n")
    numbers = "\n".join(cells(html, "mono")).split("\n")
    assert len(descriptions) == len(numbers) == n
    assert [d.split(". ", 1)[0] for d in descriptions] == [str(i) for i in range(1, n + 1)]
    # One line each (a tab or newline in a description can't shift the columns), cut if long.
    assert all(len(d) <= exports.COMPACT_DESCRIPTION_CHARS + 6 for d in descriptions)
    assert descriptions[2] == "3. <b>refund</b> for a broken line & more"
    assert "&lt;b&gt;refund" in html and "<b>refund" not in html  # escaped
    # The numbers are padded to one width: quantities, prices and amounts line up.
    heading = unescape(re.search(r'<th class="num mono">(.*?)</th>', html).group(1))
    assert {len(line) for line in numbers} == {len(heading)}
    amounts = [exports.format_money(line.amount, "UAH", "uk") for line in invoice.lines.all()]
    assert all(line.endswith(amount) for line, amount in zip(numbers, amounts, strict=True))
    # Credit (negative) lines keep their colour.
    assert html.count('<span class="credit">') == n // 10
    pdf = exports.render_invoice_pdf(invoice)
    assert bytes(pdf.content).startswith(b"%PDF-")


@pytest.mark.parametrize("n_lines", [5, exports.COMPACT_FROM_LINES - 1])
def test_short_invoices_keep_one_table_row_per_line(cast, n_lines):  # type: ignore[no-untyped-def]
    html = exports.invoice_html(issued_invoice(cast.a, n_lines))
    assert "compact" not in html
    assert len(re.findall(r"<tr>\s*<td>\d+</td>", html)) == n_lines
