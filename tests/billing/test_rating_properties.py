"""Property tests of the rating core (hypothesis).

What must hold for every plan and every stream of segments:

* increments never bill less than the time used, and at most one step more;
* billable time is monotone in duration; the period loop agrees with the reference rule;
* a segment's list amount is exactly billable seconds x price / 60, rounded once to 6 places;
* tiers are monotone (more usage never costs less) and graduated tiers' marginal price is the
  tier's price; included minutes cost nothing;
* totals equal the sum of the lines; every amount has the currency's decimals;
* rating is deterministic and independent of the order of the segments;
* splitting a period's segments between accumulators and merging them changes nothing; pricing
  sub-periods separately changes the total by at most the bound documented in
  ``billing.rating.money`` (and by nothing at all when no line rounds);
* the per-segment list amounts add up to the period's exact line within the 6-place rounding.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billing.rating import (
    ATTEMPT_FEE_CAUSES,
    BillingPeriod,
    Discount,
    KindRate,
    Origin,
    PeriodResult,
    RatePlanVersion,
    Segment,
    SegmentKind,
    Tier,
    TierMode,
    UsageAccumulator,
    billable_seconds,
    currency_exponent,
    price_usage,
    rate_period,
    rate_segment,
)
from billing.rating.money import MICROS_PER_UNIT, div_round_half_up, to_micros

# Cheap properties get many examples; the ones that build a plan and a segment stream per example
# get fewer (each costs ~10 ms of generation), so the whole suite stays well under 15 s.
MANY = settings(deadline=None, max_examples=200)
SOME = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

TENANT = "alpha"
MARCH = BillingPeriod.month(TENANT, 2026, 3)
DAY_MS = 86_400_000
U = "9f1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"

# --- strategies -------------------------------------------------------------------------------

increments = st.one_of(
    st.sampled_from([(1, 1), (6, 6), (30, 6), (60, 60)]),
    st.tuples(st.integers(1, 120), st.integers(1, 120)),
)
durations = st.one_of(
    st.integers(0, 3_600_000),
    st.integers(0, 10**10),  # up to ~116 days: no wrap, no cap
    st.sampled_from([4_500_000, 7_200_000, 86_400_000, 2**16 * 1000, 2**31, 2**31 + 1, 2**32]),
)
micros = st.integers(0, 5 * MICROS_PER_UNIT)  # 0 .. 5.000000 per minute


def dec(value: int) -> Decimal:
    return Decimal(value).scaleb(-6)


@st.composite
def kind_rates(draw: st.DrawFn, *, linear: bool = False) -> KindRate:
    tiers: tuple[Tier, ...] = ()
    if not linear:
        starts = draw(st.lists(st.integers(1, 120), max_size=3, unique=True))
        tiers = tuple(Tier(m, dec(draw(micros))) for m in sorted(starts))
    return KindRate(
        price_per_minute=dec(draw(micros)),
        increment=draw(increments),
        minimum_seconds=draw(st.integers(0, 90)),
        connect_fee=dec(draw(st.sampled_from([0, 0, 10_000, 50_000, 123_457]))),
        included_minutes=0 if linear else draw(st.sampled_from([0, 0, 1, 5, 30])),
        tiers=tiers,
        tier_mode=draw(st.sampled_from(list(TierMode))),
    )


PAIRS = [(k, o) for k in SegmentKind for o in Origin]
CAUSES = ["NORMAL_CLEARING", "NORMAL_TEMPORARY_FAILURE", *sorted(ATTEMPT_FEE_CAUSES)]


@st.composite
def plans(draw: st.DrawFn, *, linear: bool = False) -> RatePlanVersion:
    # A few distinct rates shared out among the kinds: as varied as one rate per kind for what
    # the properties exercise, at a fraction of the draws (the suite must stay fast).
    pool = draw(st.lists(kind_rates(linear=linear), min_size=1, max_size=3))
    rates = {k: pool[draw(st.integers(0, len(pool) - 1))] for k in SegmentKind}
    cb = rates[SegmentKind.CALLBACK_DIAL]
    rates[SegmentKind.CALLBACK_DIAL] = KindRate(
        cb.price_per_minute,
        cb.increment,
        cb.minimum_seconds,
        cb.connect_fee,
        cb.included_minutes,
        cb.tiers,
        cb.tier_mode,
        attempt_fee=dec(draw(st.sampled_from([0, 30_000]))),
    )
    overrides = {}
    for kind, origin in draw(st.lists(st.sampled_from(PAIRS), max_size=2, unique=True)):
        rate = draw(kind_rates(linear=linear))
        if kind is SegmentKind.CALLBACK_DIAL:
            rate = KindRate(
                rate.price_per_minute,
                rate.increment,
                rate.minimum_seconds,
                rate.connect_fee,
                rate.included_minutes,
                rate.tiers,
                rate.tier_mode,
                attempt_fee=Decimal("0.045"),
            )
        overrides[(kind, origin)] = rate
    discounts: tuple[Discount, ...] = ()
    if draw(st.booleans()):
        kinds = draw(st.frozensets(st.sampled_from(list(SegmentKind)), max_size=2))
        discounts = (
            Discount(
                "D",
                dec(draw(st.integers(1, 100 * MICROS_PER_UNIT))),
                date(2026, 12, 31),
                kinds=kinds,
                include_fees=draw(st.booleans()),
            ),
        )
    return RatePlanVersion(
        plan_id="p",
        version=1,
        currency=draw(st.sampled_from(["UAH", "UAH", "JPY", "KWD"])),
        valid_from=date(2026, 1, 1),
        rates=rates,
        overrides=overrides,
        monthly_platform_fee=dec(draw(st.sampled_from([0, 1_000_000_000, 333_333_333]))),
        seat_fee=dec(draw(st.sampled_from([0, 250_500_000]))),
        recording_storage_price=dec(draw(st.sampled_from([0, 2_000, 1_234]))),
        tax_rate=dec(draw(st.sampled_from([0, 200_000, 70_000, 195_000]))),
        discounts=discounts,
    )


@st.composite
def segment_lists(draw: st.DrawFn, max_size: int = 16) -> list[Segment]:
    n = draw(st.integers(0, max_size))
    out = []
    for i in range(n):
        start = MARCH.start_ms + draw(st.integers(0, 31 * DAY_MS - 1))
        kind, origin = draw(st.sampled_from(PAIRS))
        answered = draw(st.sampled_from([True, True, True, False]))
        out.append(
            Segment(
                tenant_id=TENANT,
                call_id=f"call-{i // 3}",
                leg_uuid=f"{i:08x}-0000-4000-8000-000000000000" if i % 2 else f"leg-{i}",
                kind=kind,
                origin=origin,
                start_ms=start,
                end_ms=start + draw(st.integers(0, 1_500_000)),
                answered=answered,
                # The cause must not matter when answered: give those any cause, undrawn.
                hangup_cause=CAUSES[i % len(CAUSES)] if answered else draw(st.sampled_from(CAUSES)),
            )
        )
    return out


def agent_only(plan_rate: KindRate) -> RatePlanVersion:
    rates = {k: KindRate(Decimal(0)) for k in SegmentKind}
    rates[SegmentKind.AGENT] = plan_rate
    return RatePlanVersion("p", 1, "UAH", date(2026, 1, 1), rates)


def agent_seconds(seconds: int, legs: int = 1) -> list[Segment]:
    """``seconds`` of per-second agent time split over ``legs`` segments."""
    out, t = [], MARCH.start_ms
    per, rest = divmod(seconds, legs)
    for i in range(legs):
        length = (per + (i < rest)) * 1000
        out.append(
            Segment(TENANT, "c", f"leg-{i}", SegmentKind.AGENT, Origin.DIRECT, t, t + length)
        )
        t += length
    return out


def exact_micros(result: PeriodResult) -> int:
    return sum(to_micros(line.exact_amount, "x", allow_negative=True) for line in result.lines)


# --- increments -------------------------------------------------------------------------------


@MANY
@given(durations, increments, st.integers(0, 300))
def test_increments_never_bill_less_than_used_and_at_most_one_step_more(
    duration: int, increment: tuple[int, int], minimum: int
) -> None:
    billed = billable_seconds(duration, increment, minimum) * 1000
    assert billed >= duration
    if duration == 0:
        assert billed == 0
    else:
        assert billed - duration < max(increment[0], increment[1], minimum) * 1000


@MANY
@given(durations, durations, increments, st.integers(0, 300))
def test_billable_seconds_are_monotone_in_duration(
    a: int, b: int, increment: tuple[int, int], minimum: int
) -> None:
    short, long = sorted((a, b))
    assert billable_seconds(short, increment, minimum) <= billable_seconds(long, increment, minimum)


@SOME
@given(segment_lists(), plans())
def test_period_loop_agrees_with_the_reference_increment_rule(
    segments: list[Segment], plan: RatePlanVersion
) -> None:
    usage = {(u.kind, u.origin): u for u in rate_period(segments, plan, MARCH).usage}
    for (kind, origin), row in usage.items():
        rate = plan.rate_for(kind, origin)
        mine = [s for s in segments if (s.kind, s.origin) == (kind, origin)]
        answered = [s for s in mine if s.answered]
        assert row.billable_seconds == sum(
            billable_seconds(s.duration_ms, rate.increment, rate.minimum_seconds) for s in answered
        )
        assert row.answered_ms == sum(s.duration_ms for s in answered)
        assert row.attempts == len(mine) - len(answered)
        # The per-segment path agrees too.
        assert row.billable_seconds == sum(rate_segment(s, plan).billable_seconds for s in mine)


@SOME
@given(durations, plans(), st.sampled_from(list(SegmentKind)), st.sampled_from(list(Origin)))
def test_segment_list_amount_is_billable_time_at_the_first_tier_price(
    duration: int, plan: RatePlanVersion, kind: SegmentKind, origin: Origin
) -> None:
    s = Segment(TENANT, "c", U, kind, origin, MARCH.start_ms, MARCH.start_ms + duration)
    rated = rate_segment(s, plan)
    rate = plan.rate_for(kind, origin)
    # Computed independently in Decimal: seconds x price / 60, rounded half up to 6 places.
    expected = (Decimal(rated.billable_seconds) * rate.price_per_minute / 60).quantize(
        Decimal("0.000001"), rounding="ROUND_HALF_UP"
    )
    if duration:
        expected += rate.connect_fee
    assert rated.amount == expected
    assert rated.billable_seconds * 1000 >= duration


# --- tiers ------------------------------------------------------------------------------------


@MANY
@given(kind_rates(), st.integers(0, 200 * 60), st.integers(0, 200 * 60))
def test_more_usage_never_costs_less(rate: KindRate, a: int, b: int) -> None:
    rate = KindRate(
        rate.price_per_minute,
        (1, 1),
        0,
        Decimal(0),
        rate.included_minutes,
        rate.tiers,
        rate.tier_mode,
    )
    plan = agent_only(rate)
    small, large = sorted((a, b))
    low, high = (
        rate_period(agent_seconds(small), plan, MARCH),
        rate_period(agent_seconds(large), plan, MARCH),
    )
    assert exact_micros(low) <= exact_micros(high)
    assert low.total <= high.total


@MANY
@given(kind_rates(), st.integers(0, 200 * 60), st.data())
def test_graduated_marginal_price_is_the_tiers_price(
    rate: KindRate, used: int, data: st.DataObject
) -> None:
    rate = KindRate(
        rate.price_per_minute,
        (1, 1),
        0,
        Decimal(0),
        rate.included_minutes,
        rate.tiers,
        TierMode.GRADUATED,
    )
    plan = agent_only(rate)
    extra = 60 * data.draw(st.integers(1, 30))  # whole minutes: no 6-place rounding involved
    included = rate.included_minutes * 60
    bounds = [0, *(t.from_minutes * 60 for t in rate.tiers)]
    prices = [rate.price_per_minute, *(t.price_per_minute for t in rate.tiers)]
    chargeable = used - included
    # Stay inside one tier (or inside the allowance) for the whole step.
    if used + extra <= included:
        marginal = Decimal(0)
    else:
        assume(chargeable >= 0)
        j = max(i for i, lower in enumerate(bounds) if lower <= chargeable)
        upper = bounds[j + 1] if j + 1 < len(bounds) else None
        assume(upper is None or chargeable + extra <= upper)
        marginal = prices[j]
    before = rate_period(agent_seconds(used), plan, MARCH)
    after = rate_period(agent_seconds(used + extra, legs=2), plan, MARCH)
    assert exact_micros(after) - exact_micros(before) == to_micros(marginal, "p") * extra // 60


@SOME
@given(segment_lists(max_size=12), plans(), st.data())
def test_adding_a_segment_never_lowers_the_invoice(
    segments: list[Segment], plan: RatePlanVersion, data: st.DataObject
) -> None:
    extra = data.draw(segment_lists(max_size=1).filter(bool))[0]
    extra = Segment(
        TENANT,
        "extra",
        "extra-leg",
        extra.kind,
        extra.origin,
        extra.start_ms,
        extra.end_ms,
        extra.answered,
        extra.hangup_cause,
    )
    before = rate_period(segments, plan, MARCH)
    after = rate_period([*segments, extra], plan, MARCH)
    assert after.subtotal >= before.subtotal and after.total >= before.total


# --- totals, determinism, order ---------------------------------------------------------------


@SOME
@given(segment_lists(), plans(), st.integers(0, 40), st.integers(0, 50_000))
def test_totals_equal_the_sum_of_lines(
    segments: list[Segment], plan: RatePlanVersion, seats: int, stored: int
) -> None:
    result = rate_period(segments, plan, MARCH, seats=seats, stored_recording_minutes=stored)
    exponent = currency_exponent(plan.currency)
    assert result.subtotal == sum((line.amount for line in result.lines), Decimal(0))
    assert result.total == result.subtotal + result.tax
    assert result.subtotal >= 0 and result.tax >= 0
    for amount in (result.subtotal, result.tax, result.total, *(x.amount for x in result.lines)):
        assert amount.as_tuple().exponent == -exponent
    for line in result.lines:
        # Each line is its 6-place amount rounded once, half up, to the minor unit.
        step = Decimal(1).scaleb(-exponent)
        if not line.code.startswith("discount:"):
            assert line.amount == line.exact_amount.quantize(step, rounding="ROUND_HALF_UP")
            assert line.amount >= 0


@SOME
@given(segment_lists(), plans(), st.randoms(use_true_random=False))
def test_rating_is_deterministic_and_order_independent(
    segments: list[Segment], plan: RatePlanVersion, rnd: random.Random
) -> None:
    first = rate_period(segments, plan, MARCH, seats=3)
    shuffled = list(segments)
    rnd.shuffle(shuffled)
    assert rate_period(shuffled, plan, MARCH, seats=3) == first
    assert rate_period(iter(segments), plan, MARCH, seats=3) == first


# --- splitting and merging --------------------------------------------------------------------


@SOME
@given(segment_lists(), plans(), st.lists(st.integers(0, 25), max_size=5), st.booleans())
def test_merging_split_usage_changes_nothing(
    segments: list[Segment], plan: RatePlanVersion, cuts: list[int], check: bool
) -> None:
    points = sorted({min(c, len(segments)) for c in cuts})
    chunks = [segments[a:b] for a, b in zip([0, *points], [*points, len(segments)], strict=True)]
    merged = UsageAccumulator(plan, MARCH, check_duplicates=check)
    for chunk in chunks:
        part = UsageAccumulator(plan, MARCH, check_duplicates=check)
        part.add_all(chunk)
        merged.merge(part)
    assert price_usage(merged.usage(), seats=2) == rate_period(segments, plan, MARCH, seats=2)


@SOME
@given(
    segment_lists(),
    plans(linear=True),
    st.lists(st.integers(2, 31), min_size=1, max_size=4, unique=True),
    st.integers(0, 40),
    st.integers(0, 20_000),
)
def test_pricing_sub_periods_separately_changes_the_total_by_rounding_only(
    segments: list[Segment], plan: RatePlanVersion, cut_days: list[int], seats: int, stored: int
) -> None:
    # Cut March at the given days into k sub-periods; fees split by fee fractions summing to 1;
    # stored recording minutes split too. Linear plan (no allowance, no tiers).
    days = [1, *sorted(cut_days), 32]
    k = len(days) - 1
    fractions = [
        (Decimal(b - a) / 31).quantize(Decimal("0.000001"))
        for a, b in zip(days, days[1:], strict=False)
    ]
    fractions[-1] = Decimal(1) - sum(fractions[:-1], Decimal(0))
    stored_parts = [stored // k] * k
    stored_parts[-1] += stored - sum(stored_parts)
    parts = []
    for (a, b), fraction, part_stored in zip(
        zip(days, days[1:], strict=False), fractions, stored_parts, strict=True
    ):
        start, end = date(2026, 3, 1) + timedelta(a - 1), date(2026, 3, 1) + timedelta(b - 1)
        sub = BillingPeriod.from_days(TENANT, start, end, fee_fraction=fraction)
        mine = [s for s in segments if sub.contains_ms(s.start_ms)]
        parts.append(
            rate_period(mine, plan, sub, seats=seats, stored_recording_minutes=part_stored)
        )
    whole = rate_period(segments, plan, MARCH, seats=seats, stored_recording_minutes=stored)

    u = Fraction(1, 10 ** currency_exponent(plan.currency))
    mu = Fraction(1, MICROS_PER_UNIT)
    per_line = (k + 1) * (u + mu) / 2
    codes = {
        line.code
        for result in (whole, *parts)
        for line in result.lines
        if not line.code.startswith("discount:")
    }
    bound = len(codes) * per_line
    for discount in plan.discounts:
        bound += Fraction(discount.percent) / 100 * bound + per_line
    r = Fraction(plan.tax_rate)
    subtotal_gap = abs(sum(Fraction(p.subtotal) for p in parts) - Fraction(whole.subtotal))
    total_gap = abs(sum(Fraction(p.total) for p in parts) - Fraction(whole.total))
    assert subtotal_gap <= bound
    assert total_gap <= (1 + r) * bound + per_line
    # Usage itself is additive exactly: the sub-periods' billable seconds sum to the whole's.
    for kind in SegmentKind:
        assert sum(u2.billable_seconds for p in parts for u2 in p.usage if u2.kind is kind) == sum(
            u2.billable_seconds for u2 in whole.usage if u2.kind is kind
        )


@SOME
@given(segment_lists(), plans(linear=True))
def test_segment_list_amounts_add_up_to_the_period_lines(
    segments: list[Segment], plan: RatePlanVersion
) -> None:
    # The dashboard's live cost (sum of rate_segment) and the invoice's exact usage lines differ
    # only by the 6-place rounding of each segment: at most (n + 1) / 2 micro-units per line.
    result = rate_period(segments, plan, MARCH)
    exact = {
        line.code.split(":", 1)[1]: to_micros(line.exact_amount, "x")
        for line in result.lines
        if line.code.startswith("usage:")
    }
    connect: dict[str, int] = {}
    for line in result.lines:
        if line.code.startswith(("connect:", "attempt:")):
            key = line.code.split(":", 1)[1]
            connect[key] = connect.get(key, 0) + to_micros(line.exact_amount, "x")
    by_pool: dict[str, list[int]] = {}
    fees: dict[str, int] = {}
    for s in segments:
        rated = rate_segment(s, plan)
        override = (s.kind, s.origin) in plan.overrides
        key = s.kind.value + (f":{s.origin.value}" if override else "")
        if rated.billable_seconds:
            by_pool.setdefault(key, []).append(rated.usage_micros)
        fees[key] = fees.get(key, 0) + rated.fee_micros
    for key, amounts in by_pool.items():
        assert abs(sum(amounts) - exact.get(key, 0)) <= div_round_half_up(len(amounts) + 1, 2)
    for key, fee in fees.items():
        assert fee == connect.get(key, 0)  # fees are exact: no rounding at all
