"""Demo rate plans and synthetic calls (for the demo command, benchmarks and tests).

Prices follow the issue's industry figures: an IVR minute about 7-15 kopecks, an agent minute
0.75-3.50 hryvnia. Prices are chosen so their per-second value is exact in micro-units,
which makes ledger list amounts add up exactly to linear invoice lines.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal as D

from billing.rating import SIX_SIX, KindRate, Segment, epoch_ms

# price per minute per currency: (ivr, queue, agent, handoff, escalation, callback_dial)
DEMO_PRICES: dict[str, tuple[str, str, str, str, str, str]] = {
    "UAH": ("0.12", "0.06", "1.80", "0.30", "0.60", "0.42"),
    "USD": ("0.006", "0.003", "0.048", "0.012", "0.018", "0.012"),
    "EUR": ("0.006", "0.003", "0.042", "0.012", "0.018", "0.012"),
    # About 1 PLN = 10 UAH and 1 UAH = 10 KZT (rounded so per-second values stay exact);
    # the same 1 : 15 IVR-to-agent ratio as UAH.
    "PLN": ("0.012", "0.006", "0.18", "0.03", "0.06", "0.042"),
    "KZT": ("1.20", "0.60", "18.00", "3.00", "6.00", "4.20"),
}

#: Demo plans price periods from this date on (well before any demo usage).
DEMO_PLAN_FROM = date(2020, 1, 1)
#: Synthetic calls per demo tenant in the previous calendar month.
DEMO_CALLS = 300


def demo_rates(currency: str) -> dict[str, KindRate]:
    prices = DEMO_PRICES.get(currency, DEMO_PRICES["USD"])
    kinds = ("ivr", "queue", "agent", "handoff", "escalation", "callback_dial")
    return {k: KindRate(D(p), increment=SIX_SIX) for k, p in zip(kinds, prices, strict=True)}


def demo_plan(code: str, currency: str, valid_from: date, *, tax_rate: D = D("0.20"), **extra):  # type: ignore[no-untyped-def]
    """Create a plan with one version of demo prices (through the ``do_*`` verbs)."""
    from billing.actions import do_add_plan_version, do_create_plan

    plan = do_create_plan(code=code, name=f"Demo {currency}", currency=currency)
    extra.setdefault("rates", demo_rates(currency))
    do_add_plan_version(plan, valid_from=valid_from, tax_rate=tax_rate, **extra)
    return plan


def demo_call(
    tenant_id: str,
    n: int,
    start_ms: int,
    *,
    origin: str = "direct",
    agent: str | None = "agent-1",
    queue: str | None = "support",
) -> Iterator[Segment]:
    """The call of shared/design/segments.md, as segments (A leg: ivr, queue, agent, handoff;
    escalation on its own leg), numbered ``n`` so legs are unique."""
    a_leg = f"{n:08x}-0000-4000-8000-{start_ms % 10**12:012d}"
    b_leg = f"{n:08x}-0000-4000-9000-{start_ms % 10**12:012d}"
    call = f"call-{n}"
    t = start_ms
    spans = [("ivr", 25_400), ("queue", 74_600), ("agent", 210_000), ("handoff", 110_000)]
    for kind, length in spans:
        yield Segment(
            tenant_id,
            call,
            a_leg,
            kind,
            origin,
            t,
            t + length,  # type: ignore[arg-type]
            agent=agent if kind == "agent" else None,
            queue=queue,
        )
        t += length
    # escalation: 10:04:30 to hangup 10:07:00 (150 s), overlapping agent and handoff
    esc_start = start_ms + 25_400 + 74_600 + 170_000
    yield Segment(tenant_id, call, b_leg, "escalation", origin, esc_start, esc_start + 150_000)  # type: ignore[arg-type]


def demo_month_calls(tenant_id: str, time_zone: str, month: date, calls: int) -> list[Segment]:
    """``calls`` synthetic calls spread over ``month``'s working hours in ``time_zone``.

    Deterministic (same input, same legs), so recording them again writes nothing. Every
    third call ends in the IVR (self-service); the rest go through queue, agent and handoff.
    """
    from calendar import monthrange
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(time_zone)
    # Legs are unique across tenants too (the ledger's key is global): number per tenant.
    base = (zlib.crc32(tenant_id.encode()) % 10_000) * 100_000
    days = monthrange(month.year, month.month)[1]
    origins = ("direct", "direct", "direct", "overflow", "callback")
    segments: list[Segment] = []
    for n in range(calls):
        local = datetime(
            month.year, month.month, 1 + n % days, 9 + (n * 7) % 9, (n * 13) % 60, tzinfo=zone
        )
        call = list(
            demo_call(
                tenant_id,
                base + n,
                epoch_ms(local),
                origin=origins[n % len(origins)],
                agent=f"agent-{1 + n % 4}",
                queue=("support", "sales", "billing")[n % 3],
            )
        )
        segments.extend(call[:1] if n % 3 == 0 else call)
    return segments


def seed_demo_billing(
    schemas: Iterable[str] | None = None,
    *,
    calls: int = DEMO_CALLS,
    today: date | None = None,
) -> list[str]:
    """Demo books: a plan per demo currency, each demo tenant on its currency's plan, and
    synthetic usage for the previous calendar month (tenant-local), recorded through
    :func:`billing.actions.do_record_segments`.

    Idempotent: existing plans and accounts are kept (an account on another plan is left
    alone) and calls already in the ledger are skipped. Returns lines to print.
    """
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from billing.actions import do_assign_plan, do_record_segments
    from billing.models import BillingAccount, RatePlan
    from billing.queries import previous_month
    from tenants.demo import DEMO_CLIENTS
    from tenants.models import Client

    wanted = list(schemas) if schemas is not None else [spec.schema for spec in DEMO_CLIENTS]
    report: list[str] = []
    for tenant in Client.objects.filter(schema_name__in=wanted).order_by("schema_name"):
        code = f"demo-{tenant.currency.lower()}"
        plan = RatePlan.objects.filter(code=code).first() or demo_plan(
            code, tenant.currency, DEMO_PLAN_FROM
        )
        account = BillingAccount.objects.filter(tenant=tenant).select_related("plan").first()
        if account is None:
            account = do_assign_plan(tenant, plan, seats=10)
        if account.plan.currency != tenant.currency:
            report.append(f"{tenant.schema_name}: on plan {account.plan.code}, skipped")
            continue
        local_today = today or timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date()
        month = previous_month(local_today)
        segments = demo_month_calls(tenant.schema_name, tenant.time_zone, month, calls)
        result = do_record_segments(tenant, segments)
        report.append(
            f"{tenant.schema_name}: plan {account.plan.code}, {month:%Y-%m}: "
            f"{result.written} segments recorded, {result.already_recorded} already there"
        )
    return report
