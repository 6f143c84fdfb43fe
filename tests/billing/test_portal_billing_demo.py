"""Demo billing data: plans per demo currency, accounts, last month's synthetic usage."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from billing import actions
from billing.demo import DEMO_PRICES, demo_month_calls, seed_demo_billing
from billing.models import BillingAccount, Invoice, LedgerEntry, RatePlan
from tests.conftest import A_HOST, site

TODAY = date(2026, 4, 15)
MARCH = date(2026, 3, 1)


def test_demo_prices_keep_the_ivr_to_agent_ratio_for_every_demo_currency():  # type: ignore[no-untyped-def]
    for currency in ("UAH", "PLN", "KZT"):
        ivr, _queue, agent, *_rest = (D(p) for p in DEMO_PRICES[currency])
        assert agent / ivr == 15, currency
        for price in DEMO_PRICES[currency]:
            assert (D(price) / 60 * 10**6) % 1 == 0, (currency, price)  # exact per second


def test_demo_calls_are_deterministic_and_in_the_local_month():  # type: ignore[no-untyped-def]
    first = demo_month_calls("alpha", "Europe/Kyiv", MARCH, 30)
    assert first == demo_month_calls("alpha", "Europe/Kyiv", MARCH, 30)
    assert {s.kind.value for s in first} == {"ivr", "queue", "agent", "handoff", "escalation"}
    legs = {s.leg_uuid for s in first}
    assert not legs & {s.leg_uuid for s in demo_month_calls("beta", "Europe/Kyiv", MARCH, 30)}


def test_seeding_is_idempotent_and_a_finance_user_can_close_the_period(cast):  # type: ignore[no-untyped-def]
    report = seed_demo_billing(["alpha", "beta"], calls=30, today=TODAY)
    assert len(report) == 2
    assert set(RatePlan.objects.values_list("code", flat=True)) >= {"demo-uah", "demo-usd"}
    assert BillingAccount.objects.get(tenant=cast.a).plan.code == "demo-uah"
    assert BillingAccount.objects.get(tenant=cast.b).plan.code == "demo-usd"
    written = LedgerEntry.objects.filter(tenant=cast.a, period_start=MARCH).count()
    # 10 IVR-only calls (1 segment) and 20 full ones (5 segments).
    assert written == 10 + 20 * 5
    assert LedgerEntry.objects.filter(tenant=cast.b, period_start=MARCH).count() == written

    again = seed_demo_billing(["alpha", "beta"], calls=30, today=TODAY)
    assert all("0 segments recorded" in line for line in again), again
    assert LedgerEntry.objects.count() == 2 * written

    outcomes = actions.do_run_period(MARCH)
    assert all(not o.error and o.invoice is not None for o in outcomes), outcomes
    alpha = Invoice.objects.get(tenant=cast.a, period_start=MARCH)
    actions.do_finalize_invoice(alpha)
    assert alpha.total_amount > 0
    # After the period is closed, seeding again still writes nothing (and nothing late).
    seed_demo_billing(["alpha", "beta"], calls=30, today=TODAY)
    assert not LedgerEntry.objects.filter(late=True).exists()
    api = site(A_HOST, cast.a_admin).get("/api/billing/invoices/").json()
    assert [row["id"] for row in api["results"]] == [alpha.pk]


def test_seeding_leaves_an_account_on_another_plan_alone(cast):  # type: ignore[no-untyped-def]
    from billing.demo import demo_plan

    custom = demo_plan("alpha-custom", "UAH", date(2020, 1, 1))
    actions.do_assign_plan(cast.a, custom)
    seed_demo_billing(["alpha"], calls=3, today=TODAY)
    assert BillingAccount.objects.get(tenant=cast.a).plan == custom
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 1 + 2 * 5
