"""Invoices: a period for every client, gapless numbers, frozen once issued, credit notes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from billing import actions
from billing.demo import demo_call, demo_plan, demo_rates
from billing.models import Invoice, InvoiceCounter, InvoiceLine, LedgerEntry
from billing.rating import KindRate, epoch_ms
from tenants.models import AuditEvent

MARCH = date(2026, 3, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
ISSUED = date(2026, 4, 2)


@pytest.fixture
def books(cast):  # type: ignore[no-untyped-def]
    alpha = demo_plan("alpha-std", "UAH", MARCH)
    actions.do_assign_plan(cast.a, alpha)
    beta = demo_plan("beta-std", "USD", MARCH, monthly_platform_fee=D("250"), seat_fee=D("40"))
    actions.do_assign_plan(cast.b, beta, seats=3)
    segs = [s for i in range(3) for s in demo_call("alpha", i, T0 + i * 3_600_000)]
    actions.do_record_segments(cast.a, segs)
    return alpha, beta


def test_a_period_run_prepares_one_draft_per_client_priced_from_the_ledger(cast, books):  # type: ignore[no-untyped-def]
    outcomes = actions.do_run_period(MARCH)
    assert [(o.tenant.schema_name, o.error) for o in outcomes] == [("alpha", ""), ("beta", "")]
    alpha = Invoice.objects.get(tenant=cast.a)
    # Per call: ivr 30 s x 0.12, queue 78 s x 0.06, agent 210 s x 1.80, handoff 114 s x 0.30,
    # escalation 150 s x 0.60 (per minute, 6/6 increments); three calls.
    amounts = {line.code: line.amount for line in alpha.lines.all()}
    assert amounts == {
        "usage:ivr": D("0.18"),
        "usage:queue": D("0.23"),  # 0.234 rounded once, on the line
        "usage:agent": D("18.90"),
        "usage:handoff": D("1.71"),
        "usage:escalation": D("4.50"),
    }
    assert (alpha.subtotal_amount, alpha.tax_amount, alpha.total_amount) == (
        D("25.52"),
        D("5.10"),
        D("30.62"),
    )
    assert alpha.status == "draft" and alpha.number is None and alpha.currency == "UAH"
    assert (alpha.period_start, alpha.period_end) == (MARCH, date(2026, 4, 1))
    beta = Invoice.objects.get(tenant=cast.b)
    assert {line.code: line.amount for line in beta.lines.all()} == {
        "fee:platform": D("250.00"),
        "fee:seats": D("120.00"),
    }
    assert beta.total_amount == D("444.00")


def test_every_usage_line_adds_up_to_the_cent_against_its_ledger_entries(cast, books):  # type: ignore[no-untyped-def]
    invoice = actions.do_prepare_invoice(cast.a, MARCH)
    total = D(0)
    for line in invoice.lines.all():
        entries = list(actions.line_entries(line))
        assert len(entries) == 3  # one segment of that kind per call
        assert sum(e.billable_seconds for e in entries) == line.billable_seconds
        exact = sum(e.amount for e in entries)
        assert exact == line.exact_amount
        assert exact.quantize(D("0.01"), "ROUND_HALF_UP") == line.amount
        assert {e.call_id for e in entries} == {"call-0", "call-1", "call-2"}
        total += line.amount
    assert total == invoice.subtotal_amount
    assert invoice.total_amount == invoice.subtotal_amount + invoice.tax_amount


def test_a_run_killed_half_way_resumes_without_duplicates(cast, books, monkeypatch):  # type: ignore[no-untyped-def]
    real = actions.compute_invoice

    def die_on_beta(tenant, period_start):  # type: ignore[no-untyped-def]
        if tenant.schema_name == "beta":
            raise KeyboardInterrupt("worker killed")
        return real(tenant, period_start)

    monkeypatch.setattr(actions, "compute_invoice", die_on_beta)
    with pytest.raises(KeyboardInterrupt):
        actions.do_run_period(MARCH)
    assert list(Invoice.objects.values_list("tenant__schema_name", flat=True)) == ["alpha"]
    monkeypatch.setattr(actions, "compute_invoice", real)
    first = Invoice.objects.get(tenant=cast.a)
    actions.do_run_period(MARCH)
    assert Invoice.objects.filter(tenant=cast.a).get().pk == first.pk
    assert Invoice.objects.count() == 2
    assert InvoiceLine.objects.filter(invoice=first).count() == 5


def test_one_live_invoice_per_client_and_period_is_a_database_rule(cast, books):  # type: ignore[no-untyped-def]
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    twin = Invoice(
        tenant=cast.a,
        series="INV",
        period_start=MARCH,
        period_end=draft.period_end,
        currency="UAH",
        language="uk",
    )
    with pytest.raises(IntegrityError, match="billing_one_live_invoice_per_period"):
        with transaction.atomic():
            twin.save()


def test_a_failing_client_is_reported_and_the_others_are_invoiced(cast, books):  # type: ignore[no-untyped-def]
    from billing.models import PlanVersion

    PlanVersion.objects.filter(plan=books[1]).update(valid_from=date(2026, 5, 1))
    outcomes = {o.tenant.schema_name: o for o in actions.do_run_period(MARCH)}
    assert outcomes["alpha"].invoice is not None
    assert "no version in force on 2026-03-01" in outcomes["beta"].error
    assert not Invoice.objects.filter(tenant=cast.b).exists()


def test_finalizing_numbers_gaplessly_per_series_and_year_and_snapshots_parties(cast, books):  # type: ignore[no-untyped-def]
    actions.do_run_period(MARCH)
    alpha = actions.do_finalize_invoice(Invoice.objects.get(tenant=cast.a), issue_date=ISSUED)
    beta = actions.do_finalize_invoice(Invoice.objects.get(tenant=cast.b), issue_date=ISSUED)
    assert [alpha.display_number, beta.display_number] == ["INV-2026-00001", "INV-2026-00002"]
    assert alpha.status == "finalized" and alpha.due_date == date(2026, 4, 16)
    assert alpha.client_details["legal_name"] == "Alpha Retail LLC"
    assert alpha.provider_details["legal_name"]
    # The snapshot is as of the invoice date: later edits of the client don't change it.
    cast.a.legal_name = "Alpha Renamed LLC"
    cast.a.save()
    alpha.refresh_from_db()
    assert alpha.client_details["legal_name"] == "Alpha Retail LLC"
    assert AuditEvent.objects.filter(action="billing.invoice_finalized", tenant=cast.a).exists()
    with pytest.raises(actions.InvoiceStateError, match="only drafts can be finalized"):
        actions.do_finalize_invoice(alpha)
    assert InvoiceCounter.objects.get(series="INV", year=2026).last_number == 2


def test_a_finalization_that_fails_leaves_no_gap(cast, books, monkeypatch):  # type: ignore[no-untyped-def]
    actions.do_run_period(MARCH)
    real = actions.audit.record

    def fail_on_finalize(action, **kwargs):  # type: ignore[no-untyped-def]
        if action == "billing.invoice_finalized":
            raise RuntimeError("crash after numbering")
        return real(action, **kwargs)

    monkeypatch.setattr(actions.audit, "record", fail_on_finalize)
    with pytest.raises(RuntimeError):
        actions.do_finalize_invoice(Invoice.objects.get(tenant=cast.a), issue_date=ISSUED)
    monkeypatch.setattr(actions.audit, "record", real)
    assert Invoice.objects.get(tenant=cast.a).status == "draft"
    beta = actions.do_finalize_invoice(Invoice.objects.get(tenant=cast.b), issue_date=ISSUED)
    assert beta.number == 1


def test_the_database_refuses_a_duplicate_number(cast, books):  # type: ignore[no-untyped-def]
    actions.do_run_period(MARCH)
    actions.do_finalize_invoice(Invoice.objects.get(tenant=cast.a), issue_date=ISSUED)
    with pytest.raises(IntegrityError, match="billing_invoice_number_unique"):
        with transaction.atomic():
            Invoice.objects.filter(tenant=cast.b).update(
                status="finalized", series="INV", year=2026, number=1
            )


def test_an_issued_invoice_is_immutable(cast, books):  # type: ignore[no-untyped-def]
    invoice = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    invoice.total_amount = D("1.00")
    with pytest.raises(ValueError, match="cannot be edited"):
        invoice.save()
    for attempt in (
        lambda: Invoice.objects.filter(pk=invoice.pk).update(total_amount=D("1.00")),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(status="draft"),
        lambda: Invoice.objects.filter(pk=invoice.pk).delete(),
        lambda: InvoiceLine.objects.filter(invoice=invoice).update(amount=D("0")),
        lambda: InvoiceLine.objects.filter(invoice=invoice).delete(),
        lambda: InvoiceLine.objects.create(
            invoice=invoice,
            position=99,
            code="x",
            description="x",
            quantity=1,
            unit="x",
            unit_price=0,
            exact_amount=0,
            amount=D("5"),
        ),
    ):
        with pytest.raises(DatabaseError, match="immutable|never deleted|cannot go from"):
            with transaction.atomic():
                attempt()
    invoice.refresh_from_db()
    assert invoice.total_amount == D("30.62")


def test_status_moves_only_forward(cast, books):  # type: ignore[no-untyped-def]
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    assert actions.do_mark_paid(draft) is False  # a draft cannot be paid
    invoice = actions.do_finalize_invoice(draft)
    assert actions.do_mark_paid(invoice, source="manual") is True
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    assert actions.do_mark_paid(invoice) is False  # idempotent
    with pytest.raises(actions.InvoiceStateError, match="only a finalized, unpaid invoice"):
        actions.do_void_invoice(invoice, reason="oops")


def test_voiding_reopens_the_period_and_keeps_the_number(cast, books):  # type: ignore[no-untyped-def]
    first = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    with pytest.raises(actions.BillingError, match="say why"):
        actions.do_void_invoice(first, reason=" ")
    actions.do_void_invoice(first, reason="wrong seats")
    second = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    assert (first.number, second.number) == (1, 2)
    first.refresh_from_db()
    assert first.status == "void" and first.total_amount == second.total_amount


def test_corrections_are_credit_notes_referencing_the_invoice(cast, books):  # type: ignore[no-untyped-def]
    invoice = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    with pytest.raises(actions.BillingError, match="needs a reason"):
        actions.do_issue_credit_note(invoice, reason="")
    partial = actions.do_issue_credit_note(invoice, reason="outage on 3 March", amount=D("10"))
    assert partial.display_number == "CN-2026-00001"
    assert partial.credited_invoice == invoice and partial.status == "finalized"
    assert (partial.subtotal_amount, partial.tax_amount, partial.total_amount) == (
        D("-10.00"),
        D("-2.00"),
        D("-12.00"),
    )
    with pytest.raises(actions.BillingError, match="more than invoice INV-2026-00001"):
        actions.do_issue_credit_note(invoice, reason="everything", amount=D("20"))
    with pytest.raises(actions.BillingError, match="at most 2 decimals"):
        actions.do_issue_credit_note(invoice, reason="odd", amount=D("1.005"))
    draft = actions.do_prepare_invoice(cast.b, MARCH)
    with pytest.raises(actions.InvoiceStateError, match="against finalized or paid invoices"):
        actions.do_issue_credit_note(draft, reason="no")
    invoice.refresh_from_db()
    assert invoice.total_amount == D("30.62")  # the invoice itself never changed


def test_a_full_credit_note_mirrors_every_line(cast, books):  # type: ignore[no-untyped-def]
    invoice = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    note = actions.do_issue_credit_note(invoice, reason="cancelled contract")
    assert note.total_amount == -invoice.total_amount
    assert sorted(line.amount for line in note.lines.all()) == sorted(
        -line.amount for line in invoice.lines.all()
    )


def test_a_draft_follows_the_ledger_and_a_correction_rerates_it(cast, books):  # type: ignore[no-untyped-def]
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    assert draft.total_amount == D("30.62")
    from billing.models import PlanVersion

    v1 = PlanVersion.objects.get(plan=books[0])
    actions.do_correct_plan_version(
        v1, rates=demo_rates("UAH") | {"agent": KindRate(D("1.20"), increment=(6, 6))}
    )
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    agent = draft.lines.get(code="usage:agent")
    assert agent.amount == D("12.60")  # 630 s at 1.20
    assert sum(e.amount for e in LedgerEntry.objects.filter(kind="agent")) == D("12.600000")
    assert LedgerEntry.objects.filter(entry_type="reversal").count() == 15


def test_included_minutes_and_tiers_come_from_the_core(cast):  # type: ignore[no-untyped-def]
    rates = demo_rates("UAH") | {"agent": KindRate(D("1.80"), increment=(6, 6), included_minutes=5)}
    plan = demo_plan("alpha-incl", "UAH", MARCH, rates=rates)
    actions.do_assign_plan(cast.a, plan)
    segs = [s for i in range(3) for s in demo_call("alpha", i, T0 + i * 3_600_000)]
    actions.do_record_segments(cast.a, segs)
    invoice = actions.do_prepare_invoice(cast.a, MARCH)
    included = invoice.lines.get(code="included:agent")
    usage = invoice.lines.get(code="usage:agent")
    assert (included.billable_seconds, included.amount) == (300, D("0.00"))
    assert (usage.billable_seconds, usage.amount) == (330, D("9.90"))
    # Both lines drill down to the same agent segments: 630 s in the ledger.
    assert sum(e.billable_seconds for e in actions.line_entries(usage)) == 630


@pytest.fixture
def committed_counter(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Counter rows two real connections can race on; removed afterwards."""
    with django_db_blocker.unblock():
        InvoiceCounter.objects.create(series="RACE", year=2026, last_number=0)
        yield
        InvoiceCounter.objects.filter(series="RACE").delete()


def test_concurrent_numbering_waits_for_the_lock_and_never_repeats(committed_counter):  # type: ignore[no-untyped-def]
    import threading
    import time

    from django.db import connection

    numbers: list[int] = []
    first_holds_lock = threading.Event()

    def take(hold: float) -> None:
        try:
            with transaction.atomic():
                numbers.append(actions._next_number("RACE", 2026))
                if hold:
                    first_holds_lock.set()
                    time.sleep(hold)  # the second finalizer reads the counter meanwhile
        finally:
            connection.close()

    first = threading.Thread(target=take, args=(0.5,))
    first.start()
    first_holds_lock.wait(5)
    second = threading.Thread(target=take, args=(0,))
    second.start()
    first.join(10)
    second.join(10)
    assert sorted(numbers) == [1, 2]
    assert InvoiceCounter.objects.get(series="RACE", year=2026).last_number == 2
