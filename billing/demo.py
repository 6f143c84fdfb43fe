"""Demo rate plans and synthetic calls (for the demo command, benchmarks and tests).

Prices follow the issue's industry figures: an IVR minute about 7-15 kopecks, an agent minute
0.75-3.50 hryvnia. Prices are chosen so their per-second value is exact in micro-units,
which makes ledger list amounts add up exactly to linear invoice lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal as D

from billing.rating import SIX_SIX, KindRate, Segment

# price per minute per currency: (ivr, queue, agent, handoff, escalation, callback_dial)
DEMO_PRICES: dict[str, tuple[str, str, str, str, str, str]] = {
    "UAH": ("0.12", "0.06", "1.80", "0.30", "0.60", "0.42"),
    "USD": ("0.006", "0.003", "0.048", "0.012", "0.018", "0.012"),
    "EUR": ("0.006", "0.003", "0.042", "0.012", "0.018", "0.012"),
}


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
