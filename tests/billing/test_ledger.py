"""The usage ledger: segments rated once, append-only, re-rated by reversal, late ones flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from billing import actions
from billing.demo import demo_call, demo_plan, demo_rates
from billing.models import LedgerEntry, PlanRate, PlanVersion
from billing.rating import (
    CurrencyMismatchError,
    DuplicateSegmentError,
    KindRate,
    PlanGapError,
    Segment,
    SegmentTimeError,
    TenantMismatchError,
    UnknownKindError,
    epoch_ms,
)

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def alpha_plan(cast):  # type: ignore[no-untyped-def]
    plan = demo_plan("alpha-std", "UAH", MARCH)
    actions.do_assign_plan(cast.a, plan, seats=2)
    return plan


def calls(n: int, start: int = T0, tenant: str = "alpha") -> list[Segment]:
    return [s for i in range(n) for s in demo_call(tenant, i, start + i * 3_600_000)]


def test_each_segment_is_written_once_and_the_version_locks(cast, alpha_plan):  # type: ignore[no-untyped-def]
    segs = calls(3)
    result = actions.do_record_segments(cast.a, segs)
    assert (result.written, result.already_recorded, result.late) == (15, 0, 0)
    agent = LedgerEntry.objects.get(tenant=cast.a, kind="agent", call_id="call-0")
    # 210 s at 6/6 = 210 billable s at 1.80/min = 6.30 (list amount, 6 places kept)
    assert (agent.billable_seconds, agent.amount, agent.currency) == (210, D("6.300000"), "UAH")
    ivr = LedgerEntry.objects.get(tenant=cast.a, kind="ivr", call_id="call-0")
    assert (ivr.billable_seconds, ivr.amount) == (30, D("0.060000"))  # 25.4 s -> 30 s at 6/6
    assert PlanVersion.objects.get(plan=alpha_plan).is_locked

    again = actions.do_record_segments(cast.a, segs)
    assert (again.written, again.already_recorded) == (0, 15)
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 15


@pytest.mark.parametrize("writer", ["copy", "orm"])
def test_a_crash_half_way_resumes_without_duplicates(cast, alpha_plan, monkeypatch, writer):  # type: ignore[no-untyped-def]
    segs = calls(4)  # 20 segments, batches of 6
    name = f"_write_batch_{writer}"
    real = getattr(actions, name)
    batches = []

    def crash_in_third(*args):  # type: ignore[no-untyped-def]
        real(*args)  # written, then killed before commit
        if len(batches) == 2:
            raise RuntimeError("worker killed")
        batches.append(args)

    monkeypatch.setattr(actions, name, crash_in_third)
    with pytest.raises(RuntimeError, match="worker killed"):
        actions.do_record_segments(cast.a, segs, batch_size=6, writer=writer)
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 12  # two committed batches
    monkeypatch.setattr(actions, name, real)

    result = actions.do_record_segments(cast.a, segs, batch_size=6, writer=writer)
    assert (result.written, result.already_recorded) == (8, 12)
    keys = list(LedgerEntry.objects.values_list("leg_uuid", "kind", "start_ms"))
    assert len(keys) == len(set(keys)) == 20


def test_the_database_refuses_a_second_entry_for_the_same_segment_and_version(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_segments(cast.a, calls(1))
    entry = LedgerEntry.objects.filter(tenant=cast.a).first()
    entry.pk = None
    with pytest.raises(IntegrityError, match="billing_ledger_once_per_segment_version"):
        with transaction.atomic():
            entry.save()


def test_the_ledger_is_append_only(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_segments(cast.a, calls(1))
    entry = LedgerEntry.objects.filter(tenant=cast.a).first()
    entry.amount = D(0)
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            LedgerEntry.objects.filter(pk=entry.pk).update(amount=0)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            LedgerEntry.objects.filter(pk=entry.pk).delete()


def test_bad_segments_are_refused_with_clear_messages_and_nothing_is_written(cast, alpha_plan):  # type: ignore[no-untyped-def]
    with pytest.raises(SegmentTimeError, match="ends before it starts"):
        Segment("alpha", "c", "leg-1", "agent", "direct", T0 + 5, T0)
    with pytest.raises(UnknownKindError, match="unknown segment kind 'coffee'"):
        Segment("alpha", "c", "leg-1", "coffee", "direct", T0, T0 + 5)  # type: ignore[arg-type]
    good = Segment("alpha", "c", "leg-1", "agent", "direct", T0, T0 + 5000)
    with pytest.raises(DuplicateSegmentError, match="duplicate segment in one batch: leg leg-1"):
        actions.do_record_segments(cast.a, [good, good])
    beta_seg = Segment("beta", "c", "leg-2", "agent", "direct", T0, T0 + 5000)
    with pytest.raises(TenantMismatchError, match="belongs to tenant 'beta'"):
        actions.do_record_segments(cast.a, [good, beta_seg])
    february = Segment(
        "alpha", "c", "leg-3", "agent", "direct", T0 - 10 * 86_400_000, T0 - 10 * 86_400_000 + 1000
    )
    with pytest.raises(PlanGapError, match="no version in force on 2026-02-01"):
        actions.do_record_segments(cast.a, [good, february])
    with pytest.raises(actions.BillingError, match="no rate plan assigned"):
        actions.do_record_segments(cast.b, [beta_seg])
    assert not LedgerEntry.objects.exists()


def test_a_plan_in_another_currency_is_refused(cast, alpha_plan):  # type: ignore[no-untyped-def]
    usd = demo_plan("usd-plan", "USD", MARCH)
    with pytest.raises(CurrencyMismatchError, match="expected currency UAH, got USD"):
        actions.do_assign_plan(cast.a, usd)


def test_a_used_version_cannot_be_edited_and_a_new_one_applies_from_its_date(cast, alpha_plan):  # type: ignore[no-untyped-def]
    v1 = PlanVersion.objects.get(plan=alpha_plan)
    # Before use it can be edited.
    actions.do_update_plan_version(v1, seat_fee=D("500"))
    actions.do_record_segments(cast.a, calls(1))
    v1.refresh_from_db()
    with pytest.raises(actions.LockedVersionError, match="has rated segments since"):
        actions.do_update_plan_version(v1, seat_fee=D("600"))
    with pytest.raises(DatabaseError, match="immutable"):
        with transaction.atomic():
            PlanRate.objects.filter(version=v1, kind="agent").update(price_per_minute=D("9"))
    with pytest.raises(DatabaseError, match="immutable"):
        with transaction.atomic():
            PlanVersion.objects.filter(pk=v1.pk).update(seat_fee=D("1"))
    with pytest.raises(actions.BillingError, match="must start after the latest one"):
        actions.do_add_plan_version(alpha_plan, valid_from=MARCH, rates=demo_rates("UAH"))

    dearer = demo_rates("UAH") | {"agent": KindRate(D("2.40"), increment=(6, 6))}
    v2 = actions.do_add_plan_version(alpha_plan, valid_from=APRIL, rates=dearer)
    april = epoch_ms(datetime(2026, 4, 2, 10, 0, tzinfo=UTC))
    actions.do_record_segments(cast.a, calls(1, april))
    agent_april = LedgerEntry.objects.get(kind="agent", start_ms__gte=april)
    assert agent_april.plan_version == v2
    assert agent_april.amount == D("8.400000")  # 210 s at 2.40/min
    assert LedgerEntry.objects.get(kind="agent", start_ms__lt=april).plan_version == v1


def test_the_tenant_time_zone_decides_the_period(cast, alpha_plan):  # type: ignore[no-untyped-def]
    # 22:30 UTC on 31 March is 01:30 on 1 April in Kyiv (UTC+3): April's period.
    late_evening = epoch_ms(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    actions.do_record_segments(cast.a, calls(1, late_evening))
    assert set(LedgerEntry.objects.values_list("period_start", flat=True)) == {APRIL}


def test_a_plan_correction_rerates_by_reversal_never_in_place(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_segments(cast.a, calls(2))
    before = {e.pk: (e.amount, e.billable_seconds) for e in LedgerEntry.objects.all()}
    v1 = PlanVersion.objects.get(plan=alpha_plan)
    fixed = demo_rates("UAH") | {"agent": KindRate(D("1.20"), increment=(6, 6))}
    v2 = actions.do_correct_plan_version(v1, rates=fixed)
    assert v2.valid_from == v1.valid_from
    v1.refresh_from_db()
    assert v1.superseded_by == v2

    assert actions.do_rerate_period(cast.a, MARCH) == 10
    assert actions.do_rerate_period(cast.a, MARCH) == 0  # idempotent
    # Old entries untouched; each has exactly one reversal; new charges under v2.
    for pk, (amount, seconds) in before.items():
        old = LedgerEntry.objects.get(pk=pk)
        assert (old.amount, old.billable_seconds) == (amount, seconds)
        assert old.reversed_by.amount == -amount
    assert LedgerEntry.objects.count() == 30
    live = actions._live_charges(cast.a, MARCH)
    assert {e.plan_version_id for e in live} == {v2.pk}
    net_agent = sum(e.amount for e in LedgerEntry.objects.filter(kind="agent"))
    assert net_agent == D("8.400000")  # 2 x 210 s at 1.20/min


def test_segments_of_a_closed_period_land_in_the_next_open_one_flagged_late(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_segments(cast.a, calls(1))
    march = actions.do_prepare_invoice(cast.a, MARCH)
    actions.do_finalize_invoice(march, issue_date=date(2026, 4, 2))

    straggler = calls(1, T0 + 86_400_000)  # a March call whose CDR arrives after closing
    straggler = [
        Segment(
            s.tenant_id,
            "late-call",
            s.leg_uuid.replace("0000-4000", "1111-4000"),
            s.kind,
            s.origin,
            s.start_ms,
            s.end_ms,
        )
        for s in straggler
    ]
    result = actions.do_record_segments(cast.a, straggler)
    assert result.late == 5
    late = LedgerEntry.objects.filter(call_id="late-call")
    assert {(e.period_start, e.late) for e in late} == {(APRIL, True)}

    april = actions.do_prepare_invoice(cast.a, APRIL)
    late_lines = april.lines.filter(late=True)
    assert {line.code for line in late_lines} == {
        "late:agent:direct",
        "late:escalation:direct",
        "late:handoff:direct",
        "late:ivr:direct",
        "late:queue:direct",
    }
    agent_line = late_lines.get(kind="agent")
    assert agent_line.amount == D("6.30")
    assert list(actions.line_entries(agent_line)) == list(late.filter(kind="agent"))


def test_a_client_whose_currency_no_longer_matches_its_plan_is_refused(cast, alpha_plan):  # type: ignore[no-untyped-def]
    cast.a.currency = "EUR"  # changed after the plan was assigned
    with pytest.raises(CurrencyMismatchError, match="expected currency EUR, got UAH"):
        actions.do_record_segments(cast.a, calls(1))
    with pytest.raises(CurrencyMismatchError, match="expected currency EUR, got UAH"):
        actions.do_prepare_invoice(cast.a, MARCH)
    assert not LedgerEntry.objects.exists()


@pytest.fixture
def committed_books(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A plan and account committed for real connections; every billing table emptied after.

    Built with the ORM (not the do_* verbs) so no audit rows outlive the test."""
    from django.db import connection

    from billing.models import BillingAccount, RatePlan
    from tenants.models import Client

    with django_db_blocker.unblock():
        alpha = Client.objects.get(schema_name="alpha")
        plan = RatePlan.objects.create(code="race", name="race", currency="UAH")
        version = PlanVersion.objects.create(plan=plan, version=1, valid_from=MARCH)
        PlanRate.objects.bulk_create(
            PlanRate(version=version, kind=k, price_per_minute=D("1.20"))
            for k in ("ivr", "queue", "agent", "handoff", "escalation", "callback_dial")
        )
        BillingAccount.objects.create(tenant=alpha, plan=plan)
        yield alpha
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE billing_ledgerentry, billing_invoiceline, billing_invoice,"
                " billing_planrate, billing_plandiscount, billing_planversion,"
                " billing_billingaccount, billing_rateplan CASCADE"
            )


def test_a_segment_recorded_while_its_period_closes_waits_and_lands_late(committed_books):  # type: ignore[no-untyped-def]
    """Without the tenant lock the segment would be booked into the period being closed,
    after its invoice was computed: usage billed nowhere."""
    import threading
    import time

    from django.db import connection

    from billing.models import Invoice

    alpha = committed_books
    closing = threading.Event()

    def close_march() -> None:
        try:
            with transaction.atomic():
                actions._lock_tenant(alpha)
                Invoice.objects.create(
                    tenant=alpha,
                    series="RACE",
                    year=2026,
                    number=1,
                    status="finalized",
                    period_start=MARCH,
                    period_end=APRIL,
                    currency="UAH",
                    language="uk",
                )
                closing.set()
                time.sleep(0.5)  # computing and numbering the invoice
        finally:
            connection.close()

    closer = threading.Thread(target=close_march)
    closer.start()
    closing.wait(5)
    try:
        actions.do_record_segments(alpha, calls(1))
    finally:
        closer.join(10)
    assert set(LedgerEntry.objects.values_list("period_start", "late")) == {(APRIL, True)}


def test_a_leg_already_in_another_tenants_ledger_is_refused_and_nothing_is_written(
    cast, alpha_plan
):  # type: ignore[no-untyped-def]
    # Beta on the same plan: without the check the ledger's unique key (which has no tenant)
    # would raise a raw IntegrityError half-way through the batch.
    type(cast.b).objects.filter(pk=cast.b.pk).update(currency="UAH")
    cast.b.refresh_from_db()
    actions.do_assign_plan(cast.b, alpha_plan, seats=1)
    actions.do_record_segments(cast.a, calls(1))
    fresh = calls(2, T0 + 7 * 86_400_000, tenant="beta")  # legs of its own, first in the batch
    stolen = calls(1, tenant="beta")  # the same legs alpha recorded
    leg = stolen[0].leg_uuid
    with pytest.raises(
        TenantMismatchError, match=f"leg {leg} is already in the ledger under another tenant"
    ):
        actions.do_record_segments(cast.b, fresh + stolen, batch_size=3)
    assert not LedgerEntry.objects.filter(tenant=cast.b).exists()
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 5
    # Its own legs alone are recorded normally.
    assert actions.do_record_segments(cast.b, fresh).written == 10


def test_rerating_streams_in_chunks_and_books_the_same_as_one_pass(cast, alpha_plan, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(actions, "RERATE_CHUNK", 4)  # 15 charges: chunks of 4, 4, 4, 3
    actions.do_record_segments(cast.a, calls(3))
    assert actions.do_rerate_period(cast.a, MARCH) == 0  # nothing superseded: nothing written
    assert LedgerEntry.objects.count() == 15
    v1 = PlanVersion.objects.get(plan=alpha_plan)
    before = {e.pk: e.amount for e in LedgerEntry.objects.all()}
    fixed = demo_rates("UAH") | {"agent": KindRate(D("1.20"), increment=(6, 6))}
    v2 = actions.do_correct_plan_version(v1, rates=fixed)
    loaded: list[int] = []
    real = actions._rerate_entries

    def spy(tenant, pks, *args):  # type: ignore[no-untyped-def]
        loaded.append(len(pks))
        return real(tenant, pks, *args)

    monkeypatch.setattr(actions, "_rerate_entries", spy)
    assert actions.do_rerate_period(cast.a, MARCH) == 15
    assert loaded == [4, 4, 4, 3]
    assert actions.do_rerate_period(cast.a, MARCH) == 0
    for pk, amount in before.items():
        old = LedgerEntry.objects.get(pk=pk)
        assert old.amount == amount
        assert old.reversed_by.amount == -amount
        assert (
            old.reversed_by.pk
            < LedgerEntry.objects.get(
                entry_type="charge",
                plan_version=v2,
                leg_uuid=old.leg_uuid,
                kind=old.kind,
                start_ms=old.start_ms,
            ).pk
        )
    assert LedgerEntry.objects.count() == 45
    live = actions._live_charges(cast.a, MARCH)
    assert {e.plan_version_id for e in live} == {v2.pk}
    assert live.count() == 15
    assert sum(e.amount for e in LedgerEntry.objects.filter(kind="agent")) == D("12.600000")
    v2.refresh_from_db()
    assert v2.is_locked
