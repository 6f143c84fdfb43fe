"""Credit notes pushed to Stripe (against the loopback fake), with keys from our ids."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from billing import actions, stripe_sync
from billing.demo import demo_call, demo_plan
from billing.models import Invoice
from billing.rating import epoch_ms
from billing.stripe_fake import StripeFake

MARCH = date(2026, 3, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def fake(settings):  # type: ignore[no-untyped-def]
    fake = StripeFake(webhook_secret="whsec_cn").start()
    settings.STRIPE_SECRET_KEY = "sk_test_cn"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = "whsec_cn"
    yield fake
    fake.stop()


@pytest.fixture
def invoice(cast, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    actions.do_assign_plan(
        cast.a, demo_plan("alpha-std", "UAH", MARCH, monthly_platform_fee=D("100"))
    )
    actions.do_record_segments(cast.a, list(demo_call("alpha", 1, T0)))
    with django_capture_on_commit_callbacks(execute=False):
        return actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))


def credit(invoice: Invoice, amount: D | None = None) -> Invoice:
    return actions.do_issue_credit_note(invoice, reason="outage on 3 March", amount=amount)


def test_a_partial_credit_note_lowers_what_is_due_on_the_open_stripe_invoice(fake, invoice):  # type: ignore[no-untyped-def]
    stripe_sync.push_invoice(invoice)
    note = credit(invoice, D("10.00"))
    remote_id = stripe_sync.push(note)
    note.refresh_from_db()
    invoice.refresh_from_db()
    assert note.stripe_invoice_id == remote_id and remote_id.startswith("cn_")
    theirs = fake.objects[remote_id]
    assert theirs["invoice"] == invoice.stripe_invoice_id
    assert theirs["amount"] == 1200 == -int(note.total_amount * 100)  # 10.00 + 20% VAT
    assert theirs["metadata"]["ccp_invoice_id"] == str(note.pk)
    assert theirs["memo"].startswith(note.display_number)
    total = int(invoice.total_amount * 100)
    assert fake.objects[invoice.stripe_invoice_id]["amount_due"] == total - 1200
    request = fake.requests[-1]
    assert request["key"] == f"ccp-cn-{note.pk}-create"
    assert "credit_amount" not in request["form"]  # open invoice: the credit lowers the due
    before = len(fake.requests)
    assert stripe_sync.push(note) == remote_id  # already pushed: no calls
    assert len(fake.requests) == before


def test_a_full_credit_note_of_a_paid_invoice_goes_to_the_customer_balance(fake, invoice):  # type: ignore[no-untyped-def]
    stripe_sync.push_invoice(invoice)
    invoice.refresh_from_db()
    assert fake.pay(invoice.stripe_invoice_id) is None  # no webhook target in this test
    actions.do_mark_paid(invoice, source="test")
    note = credit(invoice)
    remote_id = stripe_sync.push(note)
    form = fake.requests[-1]["form"]
    lines = sorted(int(line["unit_amount"]) for line in form["lines"].values())
    # Every line and the VAT, in positive minor units, adding up to the note's total.
    assert sum(lines) == -int(note.total_amount * 100) == int(invoice.total_amount * 100)
    assert len(lines) == len([ln for ln in note.lines.all() if ln.amount]) + 1
    assert int(form["credit_amount"]) == sum(lines)
    assert fake.objects[remote_id]["amount"] == sum(lines)


def test_a_credit_note_pushes_its_invoice_first_and_replays_after_a_crash(
    fake, invoice, monkeypatch
):  # type: ignore[no-untyped-def]
    from stripe._credit_note_service import CreditNoteService

    note = credit(invoice, D("5.00"))
    real = CreditNoteService.create

    def create_then_crash(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        real(self, *args, **kwargs)
        raise ConnectionError("worker killed after Stripe created the credit note")

    monkeypatch.setattr(CreditNoteService, "create", create_then_crash)
    with pytest.raises(ConnectionError):
        stripe_sync.push(note)
    monkeypatch.setattr(CreditNoteService, "create", real)
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert invoice.stripe_invoice_id  # the credited invoice went first
    assert note.stripe_invoice_id == ""
    remote_id = stripe_sync.push(note)
    notes = [o for o in fake.objects.values() if o["object"] == "credit_note"]
    assert [o["id"] for o in notes] == [remote_id]  # one credit note, not two
    keys = [r["key"] for r in fake.requests if r["path"] == "/v1/credit_notes"]
    assert keys and set(keys) == {f"ccp-cn-{note.pk}-create"}


def test_a_credit_note_of_an_invoice_never_in_stripe_is_skipped(fake, invoice, caplog):  # type: ignore[no-untyped-def]
    actions.do_mark_paid(invoice, source="bank transfer")
    note = credit(invoice, D("1.00"))
    assert stripe_sync.push(note) == ""
    assert fake.requests == []
    assert "was never in Stripe" in caplog.text


def test_drafts_and_invoices_are_not_pushed_as_credit_notes(fake, invoice):  # type: ignore[no-untyped-def]
    with pytest.raises(actions.InvoiceStateError, match="only issued credit notes"):
        stripe_sync.push_credit_note(invoice)
    assert fake.requests == []
