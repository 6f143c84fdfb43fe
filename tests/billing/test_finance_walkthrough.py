"""The issue's finance walkthrough, end to end through the provider console's views.

A finance user closes the period for every demo tenant, downloads the PDFs and CSVs and checks
them to the cent against the ledger; the invoices go to the loopback Stripe fake (the one
``make demo`` runs), which pays them and tells us through signed webhooks. Jobs run inline,
as the worker would run them, when the finalizing transaction commits.
"""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest

from billing import tasks
from billing.demo import seed_demo_billing
from billing.models import Invoice, LedgerEntry
from billing.stripe_fake import StripeFake, sign
from tests.conftest import PROVIDER_HOST, site

TODAY = date(2026, 4, 15)
PERIOD = "2026-03"
MARCH = date(2026, 3, 1)
SECRET = "whsec_walkthrough"


@pytest.fixture
def worker(monkeypatch):  # type: ignore[no-untyped-def]
    """Run deferred billing jobs at once, in this thread (what the worker does after commit)."""
    ran: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    for task in (tasks.render_invoice_pdf_task, tasks.push_invoice_to_stripe_task):

        def run_now(task=task, **kwargs):  # type: ignore[no-untyped-def]
            ran.append((task.name, kwargs))
            return task(**kwargs)

        monkeypatch.setattr(task, "defer", run_now)
    return ran


@pytest.fixture
def stripe_fake(settings):  # type: ignore[no-untyped-def]
    def deliver(payload: str, header: str) -> int:
        response = site(PROVIDER_HOST).post(
            "/billing/stripe/webhook/",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
        return response.status_code

    fake = StripeFake(webhook_secret=SECRET, deliver=deliver).start()
    settings.STRIPE_SECRET_KEY = "sk_test_walkthrough"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    yield fake
    fake.stop()


def pdf_subject(pdf: bytes) -> dict[str, str]:
    """The machine summary WeasyPrint writes as the PDF's /Subject (in a compressed stream)."""
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text = zlib.decompress(match.group(1))
        except zlib.error:
            continue
        found = re.search(rb"/Subject \((.*?)\)", text)
        if found:
            number, *pairs = found.group(1).decode().split("; ")
            return {"number": number, **dict(p.split("=", 1) for p in pairs)}
    raise AssertionError("no /Subject in the PDF")


def read_csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def cents(amount: D, places: int = 2) -> D:
    return amount.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_UP)


def test_finance_closes_the_period_checks_the_exports_and_stripe_gets_them_paid(
    cast, worker, stripe_fake, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    seed_demo_billing(["alpha", "beta"], calls=30, today=TODAY)
    finance = site(PROVIDER_HOST, cast.finance)

    # 1. Close the period for every demo tenant: prepare drafts, finalize all.
    assert finance.post(f"/billing/periods/{PERIOD}/run/").status_code == 302
    assert Invoice.objects.filter(status="draft").count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert finance.post(f"/billing/periods/{PERIOD}/finalize/").status_code == 302
    invoices = list(Invoice.objects.filter(period_start=MARCH).order_by("number"))
    assert [(i.tenant.schema_name, i.status) for i in invoices] == [
        ("alpha", "finalized"),
        ("beta", "finalized"),
    ]
    # The worker rendered each PDF and pushed each invoice to Stripe.
    assert sorted(name.rsplit(".", 1)[-1] for name, _kw in worker) == [
        "push_invoice_to_stripe_task",
        "push_invoice_to_stripe_task",
        "render_invoice_pdf_task",
        "render_invoice_pdf_task",
    ]

    # 2. The ledger, the invoices, their PDFs and both CSVs agree to the cent.
    usage = read_csv(finance.get(f"/billing/periods/{PERIOD}/usage.csv"))
    rows = read_csv(finance.get(f"/billing/periods/{PERIOD}/invoices.csv"))
    csv_usage: dict[tuple[str, str, str], D] = defaultdict(D)
    for row in usage:
        csv_usage[(row["client_schema"], row["kind"], row["origin"])] += D(row["amount"])
    assert len(usage) == LedgerEntry.objects.filter(period_start=MARCH).count() == 2 * 110
    for invoice in invoices:
        schema = invoice.tenant.schema_name
        ledger = defaultdict(D)
        for e in LedgerEntry.objects.filter(tenant=invoice.tenant, period_start=MARCH):
            ledger[(e.kind, e.origin)] += e.amount
        assert {(k, o): v for (s, k, o), v in csv_usage.items() if s == schema} == ledger
        lines = list(invoice.lines.all())
        for line in lines:
            if not line.kind:
                continue
            behind = sum((ledger[(line.kind, o)] for o in line.origins), D(0))
            assert line.exact_amount == behind, line.code  # linear demo prices: exact
            assert line.amount == cents(behind), line.code  # rounded once, half up
        assert invoice.subtotal_amount == sum(line.amount for line in lines)
        assert invoice.total_amount == invoice.subtotal_amount + invoice.tax_amount
        assert invoice.tax_amount == cents(invoice.subtotal_amount * invoice.tax_rate)

        row = next(r for r in rows if r["number"] == invoice.display_number)
        assert (D(row["subtotal"]), D(row["tax"]), D(row["total"])) == (
            invoice.subtotal_amount,
            invoice.tax_amount,
            invoice.total_amount,
        )
        response = finance.get(f"/billing/invoices/{invoice.pk}/pdf/")
        assert response.status_code == 200 and response.content.startswith(b"%PDF-")
        subject = pdf_subject(response.content)
        assert subject == {
            "number": invoice.display_number,
            "currency": invoice.currency,
            "lines": str(len(lines)),
            "subtotal": row["subtotal"],
            "tax": row["tax"],
            "total": row["total"],
        }

    # 3. Stripe has each invoice, item amounts adding up to our total in minor units.
    page = finance.get(f"/billing/?period={PERIOD}").content.decode()
    remote = {}
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.stripe_invoice_id.startswith("in_")
        assert invoice.stripe_invoice_id in page
        theirs = stripe_fake.objects[invoice.stripe_invoice_id]
        assert theirs["status"] == "open"
        assert theirs["total"] == int(invoice.total_amount * 100)
        assert theirs["metadata"]["ccp_invoice_id"] == str(invoice.pk)
        remote[invoice.pk] = invoice.stripe_invoice_id
    assert "Push 0 documents to Stripe" in page

    # 4. The clients pay; Stripe's signed webhooks mark our invoices paid.
    for invoice in invoices:
        assert stripe_fake.pay(remote[invoice.pk]) == 200
    assert stripe_fake.deliveries == [("invoice.paid", 200), ("invoice.paid", 200)]
    assert set(Invoice.objects.filter(period_start=MARCH).values_list("status", flat=True)) == {
        "paid"
    }
    page = finance.get(f"/billing/?period={PERIOD}").content.decode()
    assert page.count("status-paid") == 2


def test_the_push_button_catches_up_on_documents_stripe_does_not_have(
    cast, worker, stripe_fake, settings, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    seed_demo_billing(["alpha"], calls=6, today=TODAY)
    settings.STRIPE_SECRET_KEY = ""  # Stripe not configured yet when finance closes the period
    finance = site(PROVIDER_HOST, cast.finance)
    finance.post(f"/billing/periods/{PERIOD}/run/")
    with django_capture_on_commit_callbacks(execute=True):
        finance.post(f"/billing/periods/{PERIOD}/finalize/")
    invoice = Invoice.objects.get(tenant=cast.a, period_start=MARCH)
    with django_capture_on_commit_callbacks(execute=True):
        finance.post(
            f"/billing/invoices/{invoice.pk}/status/",
            {"action": "credit", "reason": "outage", "amount": "1.00"},
        )
    assert stripe_fake.requests == []
    settings.STRIPE_SECRET_KEY = "sk_test_walkthrough"
    page = finance.get(f"/billing/?period={PERIOD}").content.decode()
    assert "Push 2 documents to Stripe" in page and page.count("not pushed") == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(f"/billing/periods/{PERIOD}/stripe/", follow=True)
    assert "2 document(s) queued for Stripe." in response.content.decode()
    invoice.refresh_from_db()
    note = Invoice.objects.get(kind="credit_note")
    assert invoice.stripe_invoice_id.startswith("in_")
    assert note.stripe_invoice_id.startswith("cn_")
    assert stripe_fake.objects[note.stripe_invoice_id]["amount"] == 120  # 1.00 + 20% VAT
    assert stripe_fake.objects[invoice.stripe_invoice_id]["amount_due"] == (
        int(invoice.total_amount * 100) - 120
    )
    # Nothing left to push; finance users only.
    assert (
        "Push 0 documents to Stripe" in finance.get(f"/billing/?period={PERIOD}").content.decode()
    )
    assert (
        site(PROVIDER_HOST, cast.supervisor).post(f"/billing/periods/{PERIOD}/stripe/").status_code
        == 404
    )


def test_the_fake_pays_on_its_own_after_a_delay_with_a_valid_signature():  # type: ignore[no-untyped-def]
    import threading

    import stripe

    got: list[tuple[str, str]] = []
    done = threading.Event()

    def deliver(payload: str, header: str) -> int:
        got.append((payload, header))
        done.set()
        return 200

    fake = StripeFake(webhook_secret=SECRET, deliver=deliver, pay_after=0.05).start()
    try:
        api = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url})
        customer = api.v1.customers.create(params={"name": "Alpha"})
        remote = api.v1.invoices.create(params={"customer": customer.id, "currency": "uah"})
        api.v1.invoice_items.create(
            params={"customer": customer.id, "invoice": remote.id, "amount": 1234}
        )
        finalized = api.v1.invoices.finalize_invoice(remote.id)
        assert finalized.status == "open" and finalized.amount_due == 1234
        assert done.wait(5)
        payload, header = got[0]
        event = stripe.Webhook.construct_event(payload, header, SECRET)
        assert event.type == "invoice.paid" and event.data.object.id == remote.id
        assert api.v1.invoices.retrieve(remote.id).status == "paid"
        assert header == sign(payload, SECRET, int(header.split(",")[0][2:]))
    finally:
        fake.stop()
