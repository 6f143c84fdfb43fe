"""Worked examples of rating, with the amounts computed by hand in each test.

Prices follow shared/design/domain.md: an IVR minute costs about 7-15 kopecks, an agent minute
0.75-3.50 hryvnia. The call of shared/design/segments.md is rated under a sample 6/6 plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from billing.rating import (
    LONG_SEGMENT_MS,
    PER_MINUTE,
    PER_SECOND,
    SIX_SIX,
    THIRTY_SIX,
    BillingPeriod,
    CurrencyMismatchError,
    Discount,
    Disposition,
    DuplicateSegmentError,
    InvalidPlanError,
    KindRate,
    Origin,
    PlanBook,
    PlanGapError,
    RatePlanVersion,
    Segment,
    SegmentKind,
    SegmentOutsidePeriodError,
    TenantMismatchError,
    Tier,
    TierMode,
    UsageAccumulator,
    billable_seconds,
    epoch_ms,
    rate_period,
    rate_segment,
)

TENANT = "alpha"
MARCH = BillingPeriod.month(TENANT, 2026, 3)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC))  # 10:00:00.000 on 2 March 2026 (UTC)
A_LEG = "0b6f3c2a-1d4e-4f5a-8b7c-9d0e1f2a3b4c"
B_LEG = "7e8d9c0b-a1f2-4e3d-9c5b-6a7f8e9d0c1b"


def seg(
    kind: str,
    start_ms: int,
    end_ms: int,
    *,
    leg: str = A_LEG,
    origin: str = "direct",
    answered: bool = True,
    cause: str = "NORMAL_CLEARING",
    tenant: str = TENANT,
) -> Segment:
    return Segment(
        tenant_id=tenant,
        call_id="call-1",
        leg_uuid=leg,
        kind=kind,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        start_ms=start_ms,
        end_ms=end_ms,
        answered=answered,
        hangup_cause=cause,
    )


def plan(
    prices: dict[str, str] | None = None,
    *,
    increment: tuple[int, int] = SIX_SIX,
    version: int = 1,
    valid_from: date = date(2026, 1, 1),
    currency: str = "UAH",
    rates: dict[SegmentKind, KindRate] | None = None,
    **kw: object,
) -> RatePlanVersion:
    """A sample plan; unlisted kinds cost the sample prices below (or exactly ``rates``)."""
    sample = {
        "ivr": "0.10",
        "queue": "0.08",
        "agent": "2.00",
        "handoff": "0.50",
        "escalation": "0.60",
        "callback_dial": "0.40",
    }
    sample.update(prices or {})
    return RatePlanVersion(
        plan_id="standard",
        version=version,
        currency=currency,
        valid_from=valid_from,
        rates=rates or {SegmentKind(k): KindRate(D(v), increment) for k, v in sample.items()},
        **kw,  # type: ignore[arg-type]
    )


def amounts(result: object) -> dict[str, D]:
    return {line.code: line.amount for line in result.lines}  # type: ignore[attr-defined]


# --- the domain's prices ----------------------------------------------------------------------


def test_an_ivr_minute_at_10_kopecks_and_an_agent_minute_at_2_hryvnia() -> None:
    p = plan({"ivr": "0.10", "agent": "2.00"}, increment=PER_SECOND)
    ivr = rate_segment(seg("ivr", T0, T0 + 60_000), p)
    agent = rate_segment(seg("agent", T0 + 60_000, T0 + 120_000), p)
    assert (ivr.billable_seconds, ivr.amount) == (60, D("0.100000"))
    assert (agent.billable_seconds, agent.amount) == (60, D("2.000000"))
    assert agent.amount / ivr.amount == 20  # inside the domain's 5x-50x


@pytest.mark.parametrize(("ivr", "agent", "ratio"), [("0.15", "0.75", 5), ("0.07", "3.50", 50)])
def test_the_domains_price_range_spans_5x_to_50x(ivr: str, agent: str, ratio: int) -> None:
    p = plan({"ivr": ivr, "agent": agent}, increment=PER_SECOND)
    minute_ivr = rate_segment(seg("ivr", T0, T0 + 60_000), p).amount
    minute_agent = rate_segment(seg("agent", T0, T0 + 60_000), p).amount
    assert minute_agent / minute_ivr == ratio


# --- the example call of segments.md ----------------------------------------------------------


def example_call() -> list[Segment]:
    """Answer 10:00:00.000; ivr to 10:00:25.400, queue to 10:01:40, agent to 10:05:10, the second
    line answers at 10:04:30, the caller talks to it until 10:07:00."""
    return [
        seg("ivr", T0, T0 + 25_400),
        seg("queue", T0 + 25_400, T0 + 100_000),
        seg("agent", T0 + 100_000, T0 + 310_000),
        seg("handoff", T0 + 310_000, T0 + 420_000),
        seg("escalation", T0 + 270_000, T0 + 420_000, leg=B_LEG),
    ]


def test_segments_md_example_call_segment_by_segment() -> None:
    # 6/6 increments: ivr 25.4 s -> 30 s = 0.5 min x 0.10 = 0.05; queue 74.6 s -> 78 s = 1.3 min
    # x 0.08 = 0.104; agent 210 s = 3.5 min x 2.00 = 7.00; handoff 110 s -> 114 s = 1.9 min x
    # 0.50 = 0.95; escalation 150 s = 2.5 min x 0.60 = 1.50.
    rated = [rate_segment(s, plan()) for s in example_call()]
    assert [(r.kind.value, r.duration_ms, r.billable_seconds, r.amount) for r in rated] == [
        ("ivr", 25_400, 30, D("0.050000")),
        ("queue", 74_600, 78, D("0.104000")),
        ("agent", 210_000, 210, D("7.000000")),
        ("handoff", 110_000, 114, D("0.950000")),
        ("escalation", 150_000, 150, D("1.500000")),
    ]
    # The A leg's segments partition its billsec: 25.4 + 74.6 + 210 + 110 = 420 s.
    assert sum(r.duration_ms for r in rated if r.leg_uuid == A_LEG) == 420_000
    assert all(r.disposition is Disposition.BILLED for r in rated)


def test_segments_md_example_call_on_an_invoice() -> None:
    # Lines are rounded once, to kopecks: 0.104 -> 0.10 (sub-kopeck precision kept until then).
    # Subtotal 0.05 + 0.10 + 7.00 + 0.95 + 1.50 = 9.60; VAT 20 % = 1.92; total 11.52.
    result = rate_period(example_call(), plan(tax_rate=D("0.20")), MARCH)
    assert amounts(result) == {
        "usage:ivr": D("0.05"),
        "usage:queue": D("0.10"),
        "usage:agent": D("7.00"),
        "usage:handoff": D("0.95"),
        "usage:escalation": D("1.50"),
    }
    queue = next(line for line in result.lines if line.code == "usage:queue")
    assert queue.exact_amount == D("0.104000") and queue.quantity == D("1.3000")
    assert (result.subtotal, result.tax, result.total) == (D("9.60"), D("1.92"), D("11.52"))
    direct = {u.kind.value: u.answered_ms for u in result.usage}
    assert sum(v for k, v in direct.items() if k != "escalation") == 420_000
    assert direct["escalation"] == 150_000
    assert result.segments == 5 and result.currency == "UAH" and result.plan_version == 1


# --- increments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_ms", "increment", "minimum", "expected"),
    [
        (25_400, PER_SECOND, 0, 26),
        (25_400, SIX_SIX, 0, 30),
        (5_000, THIRTY_SIX, 0, 30),
        (30_000, THIRTY_SIX, 0, 30),
        (31_000, THIRTY_SIX, 0, 36),
        (61_000, PER_MINUTE, 0, 120),
        (60_000, PER_MINUTE, 0, 60),
        (1, PER_SECOND, 0, 1),
        (5_000, PER_SECOND, 60, 60),
        (61_000, PER_SECOND, 60, 61),
        (0, PER_MINUTE, 60, 0),  # zero-length: nothing, not even the minimum
    ],
)
def test_increment_examples(
    duration_ms: int, increment: tuple[int, int], minimum: int, expected: int
) -> None:
    assert billable_seconds(duration_ms, increment, minimum) == expected


def test_zero_length_segment_costs_nothing_not_even_a_connect_fee() -> None:
    p = plan(rates={k: KindRate(D("2.00"), PER_MINUTE, connect_fee=D("0.05")) for k in SegmentKind})
    rated = rate_segment(seg("queue", T0, T0), p)
    assert rated.disposition is Disposition.ZERO_LENGTH and rated.amount == 0


# --- disposition policy: ASTPP regressions ----------------------------------------------------


@pytest.mark.parametrize(
    "cause", ["NORMAL_CLEARING", "USER_BUSY", "ORIGINATOR_CANCEL", "NO_USER_RESPONSE"]
)
def test_answered_72_second_call_is_billed_whatever_its_hangup_cause(cause: str) -> None:
    # Regression: ASTPP rated an answered 72 s call at 0 when the cause was not NORMAL_CLEARING.
    # 72 s at 2.00 UAH/min = 2.40 UAH, per second or in 6 s steps alike.
    call = seg("agent", T0, T0 + 72_000, cause=cause)
    for increment in (PER_SECOND, SIX_SIX):
        rated = rate_segment(call, plan(increment=increment))
        assert rated.disposition is Disposition.BILLED
        assert (rated.billable_seconds, rated.amount) == (72, D("2.400000"))
    assert amounts(rate_period([call], plan(), MARCH)) == {"usage:agent": D("2.40")}


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (4_499, D("149.966667")),
        (4_500, D("150.000000")),
        (4_501, D("150.033333")),
        (7_200, D("240.000000")),
        (65_535, D("2184.500000")),
        (65_536, D("2184.533333")),
        (86_400, D("2880.000000")),
    ],
)
def test_very_long_calls_are_billed_in_full_never_wrapped(seconds: int, expected: D) -> None:
    # Regression: ASTPP billed calls over ~4,500 s as 1. Here 4,500 s at 2.00/min = 150.00,
    # 7,200 s = 240.00, a day = 2,880.00; 2^16 s is not special either.
    rated = rate_segment(seg("agent", T0, T0 + seconds * 1000), plan(increment=PER_SECOND))
    assert rated.billable_seconds == seconds
    assert rated.amount == expected
    assert rated.long_segment is (seconds * 1000 >= LONG_SEGMENT_MS)


def test_calls_past_32_bit_milliseconds_are_billed_in_full() -> None:
    # 2^31 ms + 1 ms (24.9 days: a stuck channel) still bills every started second:
    # 2,147,484 s x 2.00 / 60 = 71,582.80 UAH. Flagged for review, amount unchanged.
    duration = 2**31 + 1
    rated = rate_segment(seg("agent", T0, T0 + duration), plan(increment=PER_SECOND))
    assert rated.billable_seconds == 2_147_484
    assert rated.amount == D("71582.800000") and rated.long_segment
    result = rate_period([seg("agent", T0, T0 + duration)], plan(increment=PER_SECOND), MARCH)
    assert amounts(result) == {"usage:agent": D("71582.80")} and result.long_segments == 1


def test_unanswered_legs_cost_nothing() -> None:
    for kind in SegmentKind:
        rated = rate_segment(
            seg(kind.value, T0, T0 + 30_000, answered=False, cause="NO_ANSWER"), plan()
        )
        assert rated.amount == 0 and rated.billable_seconds == 0 and rated.duration_ms == 0
    # No attempt fee configured: even a charged-cause callback dial is free.
    rated = rate_segment(
        seg("callback_dial", T0, T0 + 30_000, answered=False, cause="USER_BUSY"), plan()
    )
    assert rated.disposition is Disposition.ATTEMPT_FEE and rated.amount == 0


def callback_plan() -> RatePlanVersion:
    cb = KindRate(D("0.40"), SIX_SIX, attempt_fee=D("0.05"))
    return plan(overrides={(SegmentKind.CALLBACK_DIAL, Origin.CALLBACK): cb})


@pytest.mark.parametrize(
    ("cause", "charged"),
    [
        ("NO_ANSWER", True),
        ("USER_BUSY", True),
        ("CALL_REJECTED", True),
        ("ORIGINATOR_CANCEL", True),
        ("NORMAL_TEMPORARY_FAILURE", False),
        ("UNALLOCATED_NUMBER", False),
        ("SYSTEM_SHUTDOWN", False),
        ("SOMETHING_NEW", False),
    ],
)
def test_callback_attempt_fee_only_when_the_callers_line_was_reached(
    cause: str, charged: bool
) -> None:
    attempt = seg("callback_dial", T0, T0 + 25_000, origin="callback", answered=False, cause=cause)
    rated = rate_segment(attempt, callback_plan())
    assert rated.amount == (D("0.05") if charged else 0)
    assert rated.billable_seconds == 0


def test_callback_attempts_on_the_invoice() -> None:
    segments = [
        seg("callback_dial", T0, T0 + 20_000, origin="callback", answered=False, cause="NO_ANSWER"),
        seg(
            "callback_dial",
            T0 + 60_000,
            T0 + 70_000,
            origin="callback",
            answered=False,
            cause="USER_BUSY",
        ),
        seg(
            "callback_dial",
            T0 + 120_000,
            T0 + 121_000,
            origin="callback",
            answered=False,
            cause="NORMAL_TEMPORARY_FAILURE",
        ),
        # The third try is answered: 12 s of dialling to the queue entry -> 12 s x 0.40/60 = 0.08.
        seg("callback_dial", T0 + 180_000, T0 + 192_000, origin="callback"),
    ]
    result = rate_period(segments, callback_plan(), MARCH)
    assert amounts(result) == {
        "usage:callback_dial:callback": D("0.08"),
        "attempt:callback_dial:callback": D("0.10"),
    }
    (usage,) = result.usage
    assert (usage.attempts, usage.charged_attempts, usage.segments) == (3, 2, 1)


# --- period pricing ---------------------------------------------------------------------------


def minutes_of_agent(minutes: int, *, start: int = T0, n: int = 1) -> list[Segment]:
    """``minutes`` agent minutes split over ``n`` segments of whole minutes on distinct legs."""
    per, rest = divmod(minutes, n)
    out, t = [], start
    for i in range(n):
        length = (per + (i < rest)) * 60_000
        out.append(seg("agent", t, t + length, leg=f"leg-{i}"))
        t += length
    return out


def test_included_minutes_are_consumed_first() -> None:
    # 150 agent minutes with 100 included at 2.00: 100 free + 50 x 2.00 = 100.00.
    agent = KindRate(D("2.00"), PER_SECOND, included_minutes=100)
    p = plan(rates={**{k: KindRate(D("0.10")) for k in SegmentKind}, SegmentKind.AGENT: agent})
    result = rate_period(minutes_of_agent(150, n=3), p, MARCH)
    assert amounts(result) == {"included:agent": D("0.00"), "usage:agent": D("100.00")}
    included = result.lines[0]
    assert included.quantity == D("100.0000") and included.billable_seconds == 6_000
    # Under the allowance nothing is charged at all.
    assert rate_period(minutes_of_agent(80), p, MARCH).total == 0


def tiered(mode: TierMode) -> RatePlanVersion:
    agent = KindRate(
        D("2.00"),
        PER_SECOND,
        tiers=(Tier(1_000, D("1.80")), Tier(5_000, D("1.50"))),
        tier_mode=mode,
    )
    return plan(rates={**{k: KindRate(D("0.10")) for k in SegmentKind}, SegmentKind.AGENT: agent})


def test_graduated_tiers_price_each_part_at_its_tier() -> None:
    # 6,000 min: 1,000 x 2.00 + 4,000 x 1.80 + 1,000 x 1.50 = 2,000 + 7,200 + 1,500 = 10,700.
    result = rate_period(minutes_of_agent(6_000, n=40), tiered(TierMode.GRADUATED), MARCH)
    assert amounts(result) == {
        "usage:agent": D("2000.00"),
        "usage:agent:tier2": D("7200.00"),
        "usage:agent:tier3": D("1500.00"),
    }
    assert result.total == D("10700.00")
    assert [line.description for line in result.lines] == [
        "agent minutes",
        "agent minutes over 1000 min",
        "agent minutes over 5000 min",
    ]


@pytest.mark.parametrize(
    ("minutes", "expected", "billed_as"),
    [
        (500, D("1000.00"), None),  # tier 1: 500 x 2.00
        (900, D("1800.00"), None),  # 900 x 2.00 = 1,800 = 1,000 x 1.80: a tie keeps tier 1
        (950, D("1800.00"), 1_000),  # 1,900 at tier 1 > 1,000 x 1.80: no-cliff cap
        (1_000, D("1800.00"), 1_000),  # exactly 1,000 is tier 1 (2,000), capped at 1,800
        (1_001, D("1801.80"), None),  # tier 2: 1,001 x 1.80
        (6_000, D("9000.00"), None),  # tier 3: 6,000 x 1.50
    ],
)
def test_volume_tiers_price_all_usage_at_one_tier_without_cliffs(
    minutes: int, expected: D, billed_as: int | None
) -> None:
    result = rate_period(minutes_of_agent(minutes, n=7), tiered(TierMode.VOLUME), MARCH)
    (line,) = result.lines
    assert line.amount == expected
    if billed_as is None:
        assert "no-cliff" not in line.description
    else:
        assert line.quantity == billed_as and f"billed as {billed_as} min" in line.description


def test_overrides_make_their_own_pool_and_line() -> None:
    # Overflow agent minutes dearer (3.50) than direct ones (2.00); callback uses the base rate.
    p = plan(
        increment=PER_SECOND,
        overrides={("agent", "overflow"): KindRate(D("3.50"), PER_SECOND)},
    )
    segments = [
        seg("agent", T0, T0 + 60_000, leg="d"),
        seg("agent", T0, T0 + 120_000, leg="o", origin="overflow"),
        seg("agent", T0, T0 + 30_000, leg="c", origin="callback"),
    ]
    result = rate_period(segments, p, MARCH)
    # direct + callback share the base pool: 90 s x 2.00/60 = 3.00; overflow 2 min x 3.50 = 7.00.
    assert amounts(result) == {"usage:agent": D("3.00"), "usage:agent:overflow": D("7.00")}
    assert [(u.origin, u.billable_seconds) for u in result.usage] == [
        (Origin.DIRECT, 60),
        (Origin.OVERFLOW, 120),
        (Origin.CALLBACK, 30),
    ]


def test_fees_connect_fees_discount_and_tax() -> None:
    agent = KindRate(D("2.00"), PER_SECOND, connect_fee=D("0.05"))
    p = plan(
        rates={**{k: KindRate(D("0.10")) for k in SegmentKind}, SegmentKind.AGENT: agent},
        monthly_platform_fee=D("5000.00"),
        seat_fee=D("1200.00"),
        recording_storage_price=D("0.002"),
        tax_rate=D("0.20"),
        discounts=(
            Discount("LAUNCH", D(10), date(2026, 6, 30), kinds=frozenset({SegmentKind.AGENT})),
        ),
    )
    half_march = BillingPeriod(
        TENANT, MARCH.start, MARCH.end, MARCH.start_ms, MARCH.end_ms, fee_fraction=D("0.5")
    )
    segments = [
        *minutes_of_agent(100, n=3),  # 100 min x 2.00 = 200.00; 3 connects x 0.05 = 0.15
        seg("agent", T0, T0, leg="zero"),  # zero-length: no connect fee
        seg("ivr", T0, T0 + 600_000, leg="ivr-only"),  # 10 min x 0.10 = 1.00
    ]
    result = rate_period(segments, p, half_march, seats=10, stored_recording_minutes=10_000)
    assert amounts(result) == {
        "usage:ivr": D("1.00"),
        "usage:agent": D("200.00"),
        "connect:agent": D("0.15"),
        "fee:platform": D("2500.00"),  # 5,000 x 0.5
        "fee:seats": D("6000.00"),  # 1,200 x 10 x 0.5
        "fee:recording": D("20.00"),  # 10,000 x 0.002
        "discount:LAUNCH": D("-20.02"),  # 10 % of agent lines 200.15 = 20.015 -> 20.02
    }
    # 1.00 + 200.00 + 0.15 + 2,500 + 6,000 + 20.00 - 20.02 = 8,701.13; VAT 20 % = 1,740.226
    assert result.subtotal == D("8701.13")
    assert result.tax == D("1740.23")
    assert result.total == D("10441.36")
    assert result.subtotal == sum(line.amount for line in result.lines)
    # In July the discount has ended.
    july = BillingPeriod.month(TENANT, 2026, 7)
    later = [seg("agent", july.start_ms, july.start_ms + 60_000)]
    assert "discount:LAUNCH" not in amounts(rate_period(later, p, july))


def test_stacked_discounts_never_make_an_invoice_negative() -> None:
    # 1 s at 0.60/min = 0.01; two 50 % discounts each round 0.005 up to 0.01 -> capped at 0.
    both = (Discount("A", D(50), date(2026, 12, 31)), Discount("B", D(50), date(2026, 12, 31)))
    result = rate_period(
        [seg("agent", T0, T0 + 1_000)],
        plan({"agent": "0.60"}, increment=PER_SECOND, discounts=both),
        MARCH,
    )
    assert amounts(result) == {
        "usage:agent": D("0.01"),
        "discount:A": D("-0.01"),
        "discount:B": D("0.00"),
    }
    assert result.total == 0


def test_zero_exponent_currency_rounds_to_whole_yen() -> None:
    p = plan({"agent": "3"}, increment=PER_SECOND, currency="JPY")
    half = rate_period([seg("agent", T0, T0 + 30_000)], p, MARCH)  # 1.5 JPY -> 2 JPY
    below = rate_period([seg("agent", T0, T0 + 25_000)], p, MARCH)  # 1.25 JPY -> 1 JPY
    assert half.total == D("2") and str(half.total) == "2"
    assert below.total == D("1")


# --- plan selection, currencies, integrity ----------------------------------------------------


def test_period_is_priced_by_the_version_in_force_on_its_first_day() -> None:
    v1 = plan(version=1, valid_from=date(2026, 1, 1))
    v2 = plan({"agent": "2.50"}, version=2, valid_from=date(2026, 3, 15))
    book = PlanBook((v1, v2))
    april = BillingPeriod.month(TENANT, 2026, 4)
    march_call = [seg("agent", T0, T0 + 60_000)]
    april_call = [seg("agent", april.start_ms, april.start_ms + 60_000)]
    assert rate_period(march_call, book, MARCH).total == D("2.00")  # v2 starts mid-March
    april_result = rate_period(april_call, book, april)
    assert (april_result.plan_version, april_result.total) == (2, D("2.50"))
    # A lone segment uses the version of its own date.
    late_march = epoch_ms(datetime(2026, 3, 20, 9, 0, tzinfo=UTC))
    assert rate_segment(seg("agent", late_march, late_march + 60_000), book).amount == D("2.5")
    with pytest.raises(PlanGapError, match="no version in force on 2025-12-01"):
        rate_period([], book, BillingPeriod.month(TENANT, 2025, 12))


def test_account_currency_must_match_the_plan() -> None:
    with pytest.raises(CurrencyMismatchError, match="expected currency USD, got UAH"):
        rate_period(example_call(), plan(), MARCH, currency="USD")
    assert rate_period(example_call(), plan(), MARCH, currency="UAH").currency == "UAH"


def test_duplicate_segments_are_rejected() -> None:
    call = example_call()
    again = seg("agent", T0 + 100_000, T0 + 300_000)  # same leg, kind and start; other end
    with pytest.raises(
        DuplicateSegmentError, match=rf"leg {A_LEG}, kind agent, start_ms {T0 + 100_000}"
    ):
        rate_period([*call, again], plan(), MARCH)
    # UUIDs compare as UUIDs: the same leg in capitals is the same leg.
    with pytest.raises(DuplicateSegmentError):
        rate_period([*call, seg("ivr", T0, T0 + 25_400, leg=A_LEG.upper())], plan(), MARCH)
    # Other leg ids compare as strings.
    with pytest.raises(DuplicateSegmentError, match="leg leg-x, kind ivr"):
        rate_period([seg("ivr", T0, T0 + 1, leg="leg-x")] * 2, plan(), MARCH)
    # Same leg and start but another kind is a different segment (a 0 ms ivr then the queue).
    ok = [seg("ivr", T0, T0), seg("queue", T0, T0 + 5_000)]
    assert rate_period(ok, plan(), MARCH).segments == 2
    # A source that guarantees uniqueness may skip the check (constant memory).
    assert rate_period([*call, again], plan(), MARCH, check_duplicates=False).segments == 6


def test_duplicates_across_merged_accumulators_are_rejected() -> None:
    first, second = UsageAccumulator(plan(), MARCH), UsageAccumulator(plan(), MARCH)
    first.add_all(example_call())
    second.add(example_call()[2])
    with pytest.raises(DuplicateSegmentError, match="across merged usage"):
        first.merge(second)
    with pytest.raises(InvalidPlanError, match="same plan version and billing period"):
        first.merge(UsageAccumulator(plan(), BillingPeriod.month(TENANT, 2026, 4)))


def test_segments_of_another_tenant_or_period_are_rejected() -> None:
    with pytest.raises(TenantMismatchError, match="belongs to tenant 'beta'"):
        rate_period([seg("ivr", T0, T0 + 1_000, tenant="beta")], plan(), MARCH)
    april = BillingPeriod.month(TENANT, 2026, 4)
    with pytest.raises(SegmentOutsidePeriodError, match="outside period 2026-03-01..2026-04-01"):
        rate_period([seg("ivr", april.start_ms, april.start_ms + 1)], plan(), MARCH)
    # A call that starts before midnight and ends after it belongs to the period it started in.
    late = seg("agent", MARCH.end_ms - 30_000, MARCH.end_ms + 30_000)
    assert rate_period([late], plan(), MARCH).total == D("2.00")


def test_rate_period_consumes_any_iterable_once() -> None:
    consumed = []

    def stream() -> Iterator[Segment]:
        for s in example_call():
            consumed.append(s.kind)
            yield s

    result = rate_period(stream(), plan(tax_rate=D("0.20")), MARCH)
    assert result.total == D("11.52") and len(consumed) == 5


def test_unknown_plan_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="RatePlanVersion or a PlanBook"):
        rate_segment(example_call()[0], "standard")  # type: ignore[arg-type]


def test_invalid_extras_are_rejected() -> None:
    with pytest.raises(InvalidPlanError, match="seats"):
        rate_period([], plan(), MARCH, seats=-1)
    with pytest.raises(InvalidPlanError, match="stored_recording_minutes"):
        rate_period([], plan(), MARCH, stored_recording_minutes=1.5)  # type: ignore[arg-type]


def test_an_empty_period_costs_only_its_fees() -> None:
    result = rate_period([], plan(monthly_platform_fee=D("1000"), tax_rate=D("0.2")), MARCH)
    assert amounts(result) == {"fee:platform": D("1000.00")}
    assert (result.subtotal, result.tax, result.total) == (D("1000.00"), D("200.00"), D("1200.00"))
    assert result.usage == () and result.segments == 0
