"""Validation of the rating core's inputs: segments, rates, plans, plan books, periods, money."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from billing.rating import (
    PER_MINUTE,
    SIX_SIX,
    BillingPeriod,
    CurrencyMismatchError,
    Discount,
    Increment,
    InvalidPeriodError,
    InvalidPlanError,
    InvalidSegmentError,
    KindRate,
    Origin,
    PlanBook,
    PlanGapError,
    RatePlanVersion,
    RatingError,
    Segment,
    SegmentKind,
    SegmentTimeError,
    Tier,
    TierMode,
    UnknownKindError,
    UnknownOriginError,
    currency_exponent,
    epoch_ms,
    rate_segment,
)
from billing.rating.money import (
    div_round_half_up,
    micros_to_minor,
    minor_to_decimal,
    to_micros,
)

LEG = "5f0c1c1e-8d3a-4c55-9a43-0d1f6f3b2a10"


def seg(**kw: object) -> Segment:
    base: dict[str, object] = dict(
        tenant_id="acme",
        call_id="call-1",
        leg_uuid=LEG,
        kind="agent",
        origin="direct",
        start_ms=1_000,
        end_ms=61_000,
    )
    base.update(kw)
    return Segment(**base)  # type: ignore[arg-type]


def rates(price: str = "1.00", **kw: object) -> dict[SegmentKind, KindRate]:
    return {k: KindRate(D(price), **kw) for k in SegmentKind}  # type: ignore[arg-type]


def version(n: int = 1, valid_from: date = date(2026, 1, 1), **kw: object) -> RatePlanVersion:
    args: dict[str, object] = dict(
        plan_id="std", version=n, currency="UAH", valid_from=valid_from, rates=rates()
    )
    args.update(kw)
    return RatePlanVersion(**args)  # type: ignore[arg-type]


# --- segments ---------------------------------------------------------------------------------


def test_segment_normalises_kind_and_origin_strings_to_enums() -> None:
    s = seg(kind="escalation", origin="overflow")
    assert s.kind is SegmentKind.ESCALATION and s.origin is Origin.OVERFLOW
    assert s.duration_ms == 60_000
    assert s.key == (LEG, SegmentKind.ESCALATION, 1_000)


@pytest.mark.parametrize("kind", ["IVR", "voicemail", "", None, 3])
def test_unknown_kind_is_rejected_with_the_list_of_kinds(kind: object) -> None:
    with pytest.raises(UnknownKindError, match="expected one of ivr, queue, agent"):
        seg(kind=kind)


@pytest.mark.parametrize("origin", ["inbound", "Direct", None])
def test_unknown_origin_is_rejected(origin: object) -> None:
    with pytest.raises(UnknownOriginError, match="direct, overflow, callback"):
        seg(origin=origin)


def test_segment_ending_before_it_starts_is_rejected_with_both_times() -> None:
    with pytest.raises(
        SegmentTimeError, match=r"ends before it starts: start_ms=5000, end_ms=4999"
    ):
        seg(start_ms=5_000, end_ms=4_999)


@pytest.mark.parametrize(
    ("start", "end"), [(1.5, 2_000), (1_000, 2_000.0), (True, 2_000), (1_000, "2000")]
)
def test_segment_times_must_be_int_milliseconds(start: object, end: object) -> None:
    with pytest.raises(SegmentTimeError, match="must be int epoch milliseconds"):
        seg(start_ms=start, end_ms=end)


def test_segment_before_the_epoch_is_rejected() -> None:
    with pytest.raises(SegmentTimeError, match="before the epoch"):
        seg(start_ms=-1, end_ms=5)


@pytest.mark.parametrize("field", ["tenant_id", "call_id", "leg_uuid"])
def test_segment_ids_must_be_non_empty_strings(field: str) -> None:
    with pytest.raises(InvalidSegmentError, match=field):
        seg(**{field: ""})


def test_segment_flags_are_checked() -> None:
    with pytest.raises(InvalidSegmentError, match="answered"):
        seg(answered=1)
    with pytest.raises(InvalidSegmentError, match="hangup_cause"):
        seg(hangup_cause=None)


def test_zero_length_segment_is_valid() -> None:
    assert seg(start_ms=7, end_ms=7).duration_ms == 0


def test_segment_errors_are_rating_errors_and_value_errors() -> None:
    assert issubclass(UnknownKindError, RatingError) and issubclass(UnknownKindError, ValueError)
    assert issubclass(SegmentTimeError, InvalidSegmentError)


def test_segment_is_frozen() -> None:
    s = seg()
    with pytest.raises(AttributeError):
        s.end_ms = 5  # type: ignore[misc]


# --- rates and plans --------------------------------------------------------------------------


def test_kind_rate_accepts_increment_tuples() -> None:
    rate = KindRate(D("0.10"), (30, 6))
    assert rate.increment == Increment(30, 6) and rate.increment.first_s == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_per_minute": 0.1}, "floats cannot hold money exactly"),
        ({"price_per_minute": D("-0.10")}, "must not be negative"),
        ({"price_per_minute": D("0.0000001")}, "more than 6 decimal places"),
        ({"price_per_minute": D("NaN")}, "finite"),
        ({"increment": (0, 6)}, "increment first seconds"),
        ({"increment": (6,)}, r"\(first, next\)"),
        ({"minimum_seconds": -1}, "minimum_seconds"),
        ({"included_minutes": 1.5}, "included_minutes"),
        ({"tiers": (Tier(100, D(1)), Tier(100, D(1)))}, "strictly increasing"),
        ({"tier_mode": "stepped"}, "graduated' or 'volume"),
        ({"connect_fee": "0.05"}, "connect_fee must be a Decimal"),
    ],
)
def test_kind_rate_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"price_per_minute": D("1.00")}
    args.update(kwargs)
    with pytest.raises(InvalidPlanError, match=message):
        KindRate(**args)  # type: ignore[arg-type]


def test_tier_needs_a_positive_start() -> None:
    with pytest.raises(InvalidPlanError, match="from_minutes"):
        Tier(0, D("1.00"))


def test_plan_must_price_every_kind() -> None:
    partial = {k: KindRate(D(1)) for k in SegmentKind if k is not SegmentKind.HANDOFF}
    with pytest.raises(InvalidPlanError, match="does not price handoff"):
        version(rates=partial)


def test_plan_rejects_unknown_kinds_origins_and_currencies() -> None:
    with pytest.raises(InvalidPlanError, match="unknown segment kind 'sms'"):
        version(rates={**rates(), "sms": KindRate(D(1))})  # type: ignore[misc]  # bad on purpose
    with pytest.raises(InvalidPlanError, match="unknown call origin 'web'"):
        version(overrides={("agent", "web"): KindRate(D(1))})
    with pytest.raises(InvalidPlanError, match="unknown currency 'XXX'"):
        version(currency="XXX")


def test_plan_keys_may_be_strings_and_overrides_replace_the_base_rate() -> None:
    dear = KindRate(D("3.50"))
    plan = version(
        rates={k.value: KindRate(D("0.75")) for k in SegmentKind},
        overrides={("agent", "overflow"): dear},
    )
    assert plan.rate_for("agent", "overflow") is dear
    assert plan.rate_for(SegmentKind.AGENT, Origin.DIRECT).price_per_minute == D("0.75")
    with pytest.raises(TypeError):
        plan.rates[SegmentKind.IVR] = dear  # type: ignore[index]


def test_only_callback_dial_may_carry_an_attempt_fee() -> None:
    with pytest.raises(InvalidPlanError, match="attempt fee .* on agent"):
        version(rates={**rates(), SegmentKind.AGENT: KindRate(D(1), attempt_fee=D("0.05"))})
    version(rates={**rates(), SegmentKind.CALLBACK_DIAL: KindRate(D(1), attempt_fee=D("0.05"))})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tax_rate": D("1.5")}, "tax_rate is a fraction"),
        ({"valid_to": date(2025, 12, 31)}, "valid_to"),
        ({"valid_from": datetime(2026, 1, 1, tzinfo=UTC)}, "datetime.date"),
        ({"version": 0}, "version"),
        ({"plan_id": ""}, "plan_id"),
        ({"seat_fee": D("-1")}, "seat_fee must not be negative"),
        (
            {"discounts": (Discount("A", D(60), date(2026, 6, 30)),) * 2},
            "discount codes must be unique",
        ),
        (
            {
                "discounts": (
                    Discount("A", D(60), date(2026, 6, 30)),
                    Discount("B", D(50), date(2026, 6, 30)),
                )
            },
            "more than 100",
        ),
    ],
)
def test_plan_version_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPlanError, match=message):
        version(**kwargs)  # type: ignore[arg-type]


def test_discount_validation() -> None:
    with pytest.raises(InvalidPlanError, match=r"\(0, 100\]"):
        Discount("X", D(0), date(2026, 1, 31))
    with pytest.raises(InvalidPlanError, match="unknown segment kind"):
        Discount("X", D(10), date(2026, 1, 31), kinds=frozenset({"sms"}))  # type: ignore[arg-type]
    d = Discount("X", D(10), date(2026, 1, 31), kinds=frozenset({"agent"}))  # type: ignore[arg-type]
    assert d.kinds == {SegmentKind.AGENT}
    assert d.applies_to(date(2026, 1, 31)) and not d.applies_to(date(2026, 2, 1))


# --- plan book --------------------------------------------------------------------------------


def test_plan_book_selects_the_version_in_force() -> None:
    v1 = version(1, date(2026, 1, 1))
    v2 = version(2, date(2026, 4, 1), rates=rates("2.00"))
    book = PlanBook((v2, v1))  # any order in, sorted inside
    assert book.versions == (v1, v2)
    assert book.version_for(date(2026, 1, 1)) is v1
    assert book.version_for(date(2026, 3, 31)) is v1
    assert book.version_for(date(2026, 4, 1)) is v2
    assert book.version_for(date(2030, 1, 1)) is v2
    assert book.plan_id == "std" and book.currency == "UAH"


def test_plan_book_reports_gaps_clearly() -> None:
    v1 = version(1, date(2026, 1, 1), valid_to=date(2026, 3, 1))
    v2 = version(2, date(2026, 4, 1))
    book = PlanBook((v1, v2))
    with pytest.raises(PlanGapError, match="no version in force on 2025-12-31"):
        book.version_for(date(2025, 12, 31))
    with pytest.raises(PlanGapError, match=r"2026-03-15 \(v1 from 2026-01-01 to 2026-03-01"):
        book.version_for(date(2026, 3, 15))
    assert book.version_for(date(2026, 2, 28)) is v1
    assert issubclass(PlanGapError, LookupError)


def test_plan_book_consistency() -> None:
    with pytest.raises(CurrencyMismatchError, match="version 2 is in EUR"):
        PlanBook((version(1), version(2, date(2026, 2, 1), currency="EUR")))
    with pytest.raises(InvalidPlanError, match="both start on"):
        PlanBook((version(1), version(2)))
    with pytest.raises(InvalidPlanError, match="must have a higher number"):
        PlanBook((version(2), version(1, date(2026, 2, 1))))
    with pytest.raises(InvalidPlanError, match="overlaps"):
        PlanBook((version(1, valid_to=date(2026, 3, 1)), version(2, date(2026, 2, 1))))
    with pytest.raises(InvalidPlanError, match="mixes plans"):
        PlanBook((version(1), version(2, date(2026, 2, 1), plan_id="other")))
    with pytest.raises(InvalidPlanError, match="at least one"):
        PlanBook(())


def test_rating_with_a_version_out_of_force_is_a_plan_gap() -> None:
    plan = version(1, date(2026, 1, 1), valid_to=date(2026, 2, 1))
    late = epoch_ms(datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(PlanGapError, match="not in force on 2026-02-01"):
        rate_segment(seg(start_ms=late, end_ms=late + 1_000), plan)


# --- periods ----------------------------------------------------------------------------------


def test_month_period_in_a_tenant_time_zone_pins_local_midnights() -> None:
    kyiv = ZoneInfo("Europe/Kyiv")
    march = BillingPeriod.month("acme", 2026, 3, kyiv)
    assert march.start == date(2026, 3, 1) and march.end == date(2026, 4, 1)
    # Kyiv is UTC+2 on 1 March and UTC+3 (summer time) on 1 April.
    assert march.start_ms == epoch_ms(datetime(2026, 2, 28, 22, 0, tzinfo=UTC))
    assert march.end_ms == epoch_ms(datetime(2026, 3, 31, 21, 0, tzinfo=UTC))
    december = BillingPeriod.month("acme", 2026, 12)
    assert december.end == date(2027, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"end": date(2026, 3, 1)}, "before end"),
        ({"end_ms": 0}, "start_ms"),
        ({"fee_fraction": D("1.5")}, "fee_fraction"),
        ({"fee_fraction": D(0)}, "fee_fraction"),
        ({"fee_fraction": 0.5}, "fee_fraction"),
        ({"tenant_id": ""}, "tenant_id"),
    ],
)
def test_period_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = dict(
        tenant_id="acme", start=date(2026, 3, 1), end=date(2026, 4, 1), start_ms=10, end_ms=20
    )
    args.update(kwargs)
    with pytest.raises(InvalidPeriodError, match=message):
        BillingPeriod(**args)  # type: ignore[arg-type]


def test_epoch_ms_rejects_naive_datetimes() -> None:
    with pytest.raises(InvalidPeriodError, match="naive"):
        epoch_ms(datetime(2026, 3, 1))  # noqa: DTZ001


# --- money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (-4, 10, 0), (0, 7, 0)],
)
def test_round_half_up_is_half_away_from_zero(
    numerator: int, denominator: int, expected: int
) -> None:
    assert div_round_half_up(numerator, denominator) == expected


def test_currency_exponents_and_invoice_rounding() -> None:
    assert currency_exponent("UAH") == 2 and currency_exponent("JPY") == 0
    assert currency_exponent("KWD") == 3
    # 0.104000 UAH -> 0.10; 0.105000 -> 0.11 (half up); 12.5 JPY -> 13 JPY.
    assert micros_to_minor(104_000, 2) == 10
    assert micros_to_minor(105_000, 2) == 11
    assert micros_to_minor(104_999, 2) == 10
    assert micros_to_minor(12_500_000, 0) == 13
    assert minor_to_decimal(1234, 2) == D("12.34") and str(minor_to_decimal(5, 2)) == "0.05"
    assert str(minor_to_decimal(7, 0)) == "7"


def test_to_micros_is_exact() -> None:
    assert to_micros(D("0.10"), "p") == 100_000
    assert to_micros(D("2.000000000"), "p") == 2_000_000
    assert to_micros(3, "p") == 3_000_000
    with pytest.raises(InvalidPlanError):
        to_micros(True, "p")  # type: ignore[arg-type]


def test_increment_constants() -> None:
    assert SIX_SIX == (6, 6) and PER_MINUTE == (60, 60)
    assert TierMode("volume") is TierMode.VOLUME
