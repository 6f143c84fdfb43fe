"""Rate plans: per-kind rates, increments, tiers, fees, discounts, and versions over time.

Increments
----------
An increment ``(first, next)`` in seconds means: any non-zero use is billed at least ``first``
seconds, and use beyond ``first`` is rounded *up* to a whole number of ``next``-second steps.
``1/1`` is per second (25.4 s -> 26 s), ``6/6`` is per tenth of a minute (25.4 s -> 30 s),
``30/6`` has a 30-second first step (5 s -> 30 s, 31 s -> 36 s), ``60/60`` is per started
minute. A ``minimum_seconds`` floor applies on top (``max(minimum, rounded)``). A zero-length
segment bills 0. So for any duration ``d`` > 0: ``d <= billable < d + max(first, next, minimum)``,
and billable time never decreases when ``d`` grows. Increments apply per segment: the segment is
the unit the ledger stores and the client sees.

Included minutes and tiers
--------------------------
They apply per billing period to a *pool*: the billable seconds of one kind over all origins
that share the kind's base rate, or of one (kind, origin) pair that has an override. Included
minutes are consumed first at no charge; tiers then price the remaining (chargeable) seconds.
A rate's ``price_per_minute`` is its first tier; each :class:`Tier` starts a further tier after
``from_minutes`` chargeable minutes. ``graduated``: each tier's part of the usage at that tier's
price. ``volume``: all chargeable usage at the price of the tier the total falls in, with a
no-cliff rule: the charge never exceeds what the lowest quantity of a higher tier costs
(``min over tiers j >= t of price_j * max(q, from_j)``), so more usage never costs less.
``rate_segment`` knows no period and prices a lone segment at the first tier's price (its *list
price*); the invoice comes from ``rate_period``.

Versions
--------
A plan changes by adding a :class:`RatePlanVersion` with a later ``valid_from``; versions are never
edited once used. A :class:`PlanBook` holds a plan's versions and answers which one is in force
on a date; a date that none covers raises :class:`PlanGapError`. A billing period is priced by the
version in force on its first day (a version that starts mid-period takes effect from the next
period); a lone segment by the version in force on its UTC start date.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from .errors import CurrencyMismatchError, InvalidPlanError, PlanGapError, RatingError
from .money import currency_exponent, to_micros
from .segment import Origin, SegmentKind, parse_kind, parse_origin

__all__ = [
    "PER_MINUTE",
    "PER_SECOND",
    "SIX_SIX",
    "THIRTY_SIX",
    "Discount",
    "Increment",
    "KindRate",
    "PlanBook",
    "RatePlanVersion",
    "Tier",
    "TierMode",
    "billable_seconds",
]

_ZERO = Decimal(0)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Increment(NamedTuple):
    """Billing increment ``(first, next)`` in whole seconds; see the module docstring."""

    first_s: int
    next_s: int


PER_SECOND = Increment(1, 1)
SIX_SIX = Increment(6, 6)
THIRTY_SIX = Increment(30, 6)
PER_MINUTE = Increment(60, 60)


def billable_seconds(
    duration_ms: int, increment: tuple[int, int] = PER_SECOND, minimum_seconds: int = 0
) -> int:
    """Return the billable whole seconds of an answered span of ``duration_ms`` milliseconds.

    The reference implementation of the increment rule (the period loop inlines the same integer
    arithmetic for speed; the property tests check they agree). ``duration_ms`` is an int >= 0.
    """
    if duration_ms <= 0:
        return 0
    first_ms = increment[0] * 1000
    next_ms = increment[1] * 1000
    if duration_ms <= first_ms:
        billed = first_ms
    else:
        # Ceiling division on integers: -(-a // b). No float, no fixed-width field to overflow.
        billed = first_ms + -(-(duration_ms - first_ms) // next_ms) * next_ms
    minimum_ms = minimum_seconds * 1000
    if billed < minimum_ms:
        billed = minimum_ms
    return billed // 1000


class TierMode(StrEnum):
    """How volume tiers price the chargeable usage of a pool in a period."""

    GRADUATED = "graduated"
    VOLUME = "volume"


def _plan_kind(value: object) -> SegmentKind:
    # A bad kind in configuration is a plan error, not a segment error.
    try:
        return parse_kind(value)
    except RatingError as exc:
        raise InvalidPlanError(str(exc)) from None


def _plan_origin(value: object) -> Origin:
    try:
        return parse_origin(value)
    except RatingError as exc:
        raise InvalidPlanError(str(exc)) from None


def _day_start_ms(day: date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * 86_400_000


def _check_int(value: object, what: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise InvalidPlanError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def _check_day(value: object, what: str) -> date:
    # datetime is a date subclass; a datetime here would smuggle a time and a zone into a rule
    # that is about calendar days.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidPlanError(f"{what} must be a datetime.date, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Tier:
    """A further price tier: chargeable minutes after the first ``from_minutes`` cost this much."""

    from_minutes: int
    price_per_minute: Decimal

    def __post_init__(self) -> None:
        _check_int(self.from_minutes, "Tier.from_minutes", 1)
        to_micros(self.price_per_minute, "Tier.price_per_minute")


@dataclass(frozen=True, slots=True)
class KindRate:
    """The price of one segment kind (or of one kind for one origin, as an override).

    ``price_per_minute`` and the fees are :class:`~decimal.Decimal` (or int) with at most 6
    decimal places, non-negative. ``increment`` is ``(first, next)`` seconds, both >= 1.
    ``minimum_seconds`` is a floor on a non-zero segment's billable time. ``connect_fee`` is
    charged per billed (answered, non-zero) segment and is not subject to included minutes or
    tiers. ``included_minutes`` are free per billing period. ``tiers`` (strictly increasing
    ``from_minutes``) and ``tier_mode`` are described in the module docstring.
    ``attempt_fee`` is charged per unanswered attempt that the disposition policy charges; only
    ``callback_dial`` rates may set it (the plan checks).
    """

    price_per_minute: Decimal
    increment: tuple[int, int] = PER_SECOND
    minimum_seconds: int = 0
    connect_fee: Decimal = _ZERO
    included_minutes: int = 0
    tiers: tuple[Tier, ...] = ()
    tier_mode: TierMode = TierMode.GRADUATED
    attempt_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        to_micros(self.price_per_minute, "KindRate.price_per_minute")
        to_micros(self.connect_fee, "KindRate.connect_fee")
        to_micros(self.attempt_fee, "KindRate.attempt_fee")
        inc = self.increment
        if not isinstance(inc, tuple) or len(inc) != 2:
            raise InvalidPlanError(
                f"KindRate.increment must be (first, next) seconds, e.g. (6, 6), got {inc!r}"
            )
        _check_int(inc[0], "increment first seconds", 1)
        _check_int(inc[1], "increment next seconds", 1)
        if type(inc) is not Increment:
            object.__setattr__(self, "increment", Increment(inc[0], inc[1]))
        _check_int(self.minimum_seconds, "KindRate.minimum_seconds", 0)
        _check_int(self.included_minutes, "KindRate.included_minutes", 0)
        tiers = tuple(self.tiers)
        for tier in tiers:
            if not isinstance(tier, Tier):
                raise InvalidPlanError(f"KindRate.tiers must hold Tier objects, got {tier!r}")
        for lower, upper in zip(tiers, tiers[1:], strict=False):
            if upper.from_minutes <= lower.from_minutes:
                raise InvalidPlanError(
                    "KindRate.tiers must start at strictly increasing from_minutes, got "
                    f"{lower.from_minutes} then {upper.from_minutes}"
                )
        object.__setattr__(self, "tiers", tiers)
        try:
            object.__setattr__(self, "tier_mode", TierMode(self.tier_mode))
        except ValueError:
            raise InvalidPlanError(
                f"KindRate.tier_mode must be 'graduated' or 'volume', got {self.tier_mode!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Discount:
    """A percentage off a period's usage lines, for periods that start on or before ``ends_on``.

    ``percent`` is in ``(0, 100]`` with at most 6 decimal places. ``kinds`` limits it to the usage
    (minutes, connect and attempt fees) of those kinds; empty means all usage. ``include_fees``
    extends it to the platform, seat and recording lines. Discounts are whole-period: set
    ``ends_on`` to the last day of the last period it covers. Several discounts each apply to the
    undiscounted lines (they do not compound).
    """

    code: str
    percent: Decimal
    ends_on: date
    kinds: frozenset[SegmentKind] = frozenset()
    include_fees: bool = False

    def __post_init__(self) -> None:
        if type(self.code) is not str or not self.code:
            raise InvalidPlanError(f"Discount.code must be a non-empty string, got {self.code!r}")
        micros = to_micros(self.percent, f"discount {self.code} percent")
        if not 0 < micros <= 100 * 10**6:
            raise InvalidPlanError(
                f"discount {self.code} percent must be in (0, 100], got {self.percent}"
            )
        _check_day(self.ends_on, f"discount {self.code} ends_on")
        object.__setattr__(self, "kinds", frozenset(_plan_kind(k) for k in self.kinds))

    def applies_to(self, period_start: date) -> bool:
        """Whether the discount applies to a period whose first day is ``period_start``."""
        return period_start <= self.ends_on


class _Pool:
    """A compiled rate: integer parameters for the inner loop. Internal, immutable by convention.

    ``origin`` is None for a kind's base rate (shared by every origin without an override).
    """

    __slots__ = (
        "attempt_micros",
        "bounds_s",
        "connect_micros",
        "first_ms",
        "included_s",
        "index",
        "kind",
        "label",
        "min_ms",
        "mode",
        "next_ms",
        "origin",
        "price_micros",
        "prices_micros",
        "rate",
    )

    def __init__(self, index: int, kind: SegmentKind, origin: Origin | None, rate: KindRate):
        self.index = index
        self.kind = kind
        self.origin = origin
        self.label = kind.value if origin is None else f"{kind.value} ({origin.value})"
        self.rate = rate
        self.first_ms = rate.increment[0] * 1000
        self.next_ms = rate.increment[1] * 1000
        self.min_ms = rate.minimum_seconds * 1000
        self.price_micros = to_micros(rate.price_per_minute, "price")
        self.connect_micros = to_micros(rate.connect_fee, "connect fee")
        self.attempt_micros = to_micros(rate.attempt_fee, "attempt fee")
        self.included_s = rate.included_minutes * 60
        # Tier j covers chargeable seconds in (bounds_s[j], bounds_s[j + 1]].
        self.bounds_s = (0, *(t.from_minutes * 60 for t in rate.tiers))
        self.prices_micros = (
            self.price_micros,
            *(to_micros(t.price_per_minute, "tier price") for t in rate.tiers),
        )
        self.mode = rate.tier_mode


@dataclass(frozen=True, slots=True)
class RatePlanVersion:
    """One version of a tenant's rate plan, in force from ``valid_from`` (and before ``valid_to``).

    Contract:

    * ``rates`` prices *every* segment kind (a free kind is priced 0 explicitly, so a forgotten
      kind is an error here rather than free minutes in production); keys may be strings.
    * ``overrides`` maps ``(kind, origin)`` to a complete :class:`KindRate` that replaces the base
      rate for that origin (e.g. overflow agent minutes dearer than direct ones).
    * ``recording_storage_price`` is per stored recording minute per period;
      ``monthly_platform_fee`` and ``seat_fee`` (per agent seat) are per month, scaled by the
      period's ``fee_fraction``; ``tax_rate`` is a fraction (``Decimal('0.20')`` for 20 % VAT).
    * ``currency`` must be listed in :data:`~billing.rating.money.CURRENCY_EXPONENTS`.
    * Only ``callback_dial`` rates may set an ``attempt_fee``; discount percents add up to <= 100.

    Mappings are frozen (read-only views) after construction.
    """

    plan_id: str
    version: int
    currency: str
    valid_from: date
    rates: Mapping[SegmentKind, KindRate]
    overrides: Mapping[tuple[SegmentKind, Origin], KindRate] = field(
        default_factory=lambda: MappingProxyType({})
    )
    recording_storage_price: Decimal = _ZERO
    monthly_platform_fee: Decimal = _ZERO
    seat_fee: Decimal = _ZERO
    tax_rate: Decimal = _ZERO
    discounts: tuple[Discount, ...] = ()
    valid_to: date | None = None
    _pools: tuple[_Pool, ...] = field(init=False, repr=False, compare=False)
    _slot_pool: Mapping[tuple[SegmentKind, Origin], _Pool] = field(
        init=False, repr=False, compare=False
    )
    # Validity as UTC epoch ms [from, to): lets rate_segment check a segment's date with two
    # integer comparisons instead of building a date per segment.
    _from_ms: int = field(init=False, repr=False, compare=False)
    _to_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.plan_id) is not str or not self.plan_id:
            raise InvalidPlanError(f"plan_id must be a non-empty string, got {self.plan_id!r}")
        _check_int(self.version, "RatePlanVersion.version", 1)
        currency_exponent(self.currency)
        _check_day(self.valid_from, "valid_from")
        if self.valid_to is not None:
            _check_day(self.valid_to, "valid_to")
            if self.valid_to <= self.valid_from:
                raise InvalidPlanError(
                    f"plan {self.plan_id} v{self.version}: valid_to {self.valid_to} must be after "
                    f"valid_from {self.valid_from}"
                )
        rates: dict[SegmentKind, KindRate] = {}
        for key, rate in dict(self.rates).items():
            kind = _plan_kind(key)
            if not isinstance(rate, KindRate):
                raise InvalidPlanError(f"rate for {kind} must be a KindRate, got {rate!r}")
            rates[kind] = rate
        missing = [k.value for k in SegmentKind if k not in rates]
        if missing:
            raise InvalidPlanError(
                f"plan {self.plan_id} v{self.version} does not price {', '.join(missing)}; "
                "price every kind (use Decimal(0) for a free one)"
            )
        overrides: dict[tuple[SegmentKind, Origin], KindRate] = {}
        for pair_key, rate in dict(self.overrides).items():
            if not isinstance(pair_key, tuple) or len(pair_key) != 2:
                raise InvalidPlanError(f"override keys are (kind, origin) pairs, got {pair_key!r}")
            pair = (_plan_kind(pair_key[0]), _plan_origin(pair_key[1]))
            if not isinstance(rate, KindRate):
                raise InvalidPlanError(f"override for {pair} must be a KindRate, got {rate!r}")
            overrides[pair] = rate
        checked: list[tuple[str, SegmentKind, KindRate]] = [
            (kind.value, kind, rate) for kind, rate in rates.items()
        ]
        checked += [(f"{k.value}/{o.value}", k, rate) for (k, o), rate in overrides.items()]
        for where, kind, rate in checked:
            if kind is not SegmentKind.CALLBACK_DIAL and rate.attempt_fee:
                raise InvalidPlanError(
                    f"only callback_dial rates may carry an attempt fee (found one on {where})"
                )
        for name in ("recording_storage_price", "monthly_platform_fee", "seat_fee"):
            to_micros(getattr(self, name), name)
        tax = to_micros(self.tax_rate, "tax_rate")
        if tax > 10**6:
            raise InvalidPlanError(f"tax_rate is a fraction in [0, 1], got {self.tax_rate}")
        discounts = tuple(self.discounts)
        codes = [d.code for d in discounts]
        if len(set(codes)) != len(codes):
            raise InvalidPlanError(f"discount codes must be unique, got {codes}")
        if sum(to_micros(d.percent, "percent") for d in discounts) > 100 * 10**6:
            raise InvalidPlanError("discount percents add up to more than 100")

        # Compile once: the inner loop only ever sees integers and a dict lookup.
        pools: list[_Pool] = []
        slot_pool: dict[tuple[SegmentKind, Origin], _Pool] = {}
        for kind in SegmentKind:
            base = _Pool(len(pools), kind, None, rates[kind])
            pools.append(base)
            for origin in Origin:
                if (kind, origin) in overrides:
                    pool = _Pool(len(pools), kind, origin, overrides[(kind, origin)])
                    pools.append(pool)
                    slot_pool[(kind, origin)] = pool
                else:
                    slot_pool[(kind, origin)] = base
        object.__setattr__(self, "rates", MappingProxyType(rates))
        object.__setattr__(self, "overrides", MappingProxyType(overrides))
        object.__setattr__(self, "discounts", discounts)
        object.__setattr__(self, "_pools", tuple(pools))
        object.__setattr__(self, "_slot_pool", MappingProxyType(slot_pool))
        object.__setattr__(self, "_from_ms", _day_start_ms(self.valid_from))
        end_ms = _day_start_ms(self.valid_to) if self.valid_to is not None else 1 << 62
        object.__setattr__(self, "_to_ms", end_ms)

    @property
    def exponent(self) -> int:
        """Decimal places of the plan currency's minor unit."""
        return currency_exponent(self.currency)

    def covers(self, day: date) -> bool:
        """Whether this version is in force on ``day`` (``valid_from <= day < valid_to``)."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def rate_for(self, kind: SegmentKind | str, origin: Origin | str) -> KindRate:
        """The rate that prices ``kind`` for calls of ``origin`` (the override, else the base)."""
        return self._slot_pool[(parse_kind(kind), parse_origin(origin))].rate


@dataclass(frozen=True, slots=True)
class PlanBook:
    """All versions of one plan, answering which is in force on a date.

    Contract: at least one version; one ``plan_id`` and one currency for all (a currency change is
    a new plan, else :class:`CurrencyMismatchError`); distinct ``valid_from`` dates; version
    numbers increase with ``valid_from``; no overlap. A version without ``valid_to`` runs until
    the next version starts; one with ``valid_to`` may leave a gap, in which no date is rated.
    """

    versions: tuple[RatePlanVersion, ...]

    def __post_init__(self) -> None:
        versions = tuple(sorted(self.versions, key=lambda v: v.valid_from))
        if not versions:
            raise InvalidPlanError("a PlanBook needs at least one version")
        first = versions[0]
        for v in versions:
            if not isinstance(v, RatePlanVersion):
                raise InvalidPlanError(f"PlanBook holds RatePlanVersion objects, got {v!r}")
            if v.plan_id != first.plan_id:
                raise InvalidPlanError(f"PlanBook mixes plans {first.plan_id!r} and {v.plan_id!r}")
            if v.currency != first.currency:
                raise CurrencyMismatchError(
                    f"plan {first.plan_id}: version {v.version} is in {v.currency} but version "
                    f"{first.version} is in {first.currency}; a currency change is a new plan"
                )
        for a, b in zip(versions, versions[1:], strict=False):
            if a.valid_from == b.valid_from:
                raise InvalidPlanError(
                    f"plan {first.plan_id}: versions {a.version} and {b.version} both start on "
                    f"{a.valid_from}"
                )
            if b.version <= a.version:
                raise InvalidPlanError(
                    f"plan {first.plan_id}: version {b.version} starts after version {a.version} "
                    "so it must have a higher number"
                )
            if a.valid_to is not None and a.valid_to > b.valid_from:
                raise InvalidPlanError(
                    f"plan {first.plan_id}: version {a.version} (to {a.valid_to}) overlaps "
                    f"version {b.version} (from {b.valid_from})"
                )
        object.__setattr__(self, "versions", versions)

    @property
    def plan_id(self) -> str:
        """The plan all versions belong to."""
        return self.versions[0].plan_id

    @property
    def currency(self) -> str:
        """The currency all versions share."""
        return self.versions[0].currency

    def version_for(self, day: date) -> RatePlanVersion:
        """Return the version in force on ``day``; raise :class:`PlanGapError` if none is."""
        _check_day(day, "day")
        starts = [v.valid_from for v in self.versions]
        i = bisect.bisect_right(starts, day) - 1
        if i >= 0:
            candidate = self.versions[i]
            end = candidate.valid_to
            if i + 1 < len(self.versions):
                nxt = self.versions[i + 1].valid_from
                end = nxt if end is None else min(end, nxt)
            if end is None or day < end:
                return candidate
        spans = "; ".join(
            f"v{v.version} from {v.valid_from}" + (f" to {v.valid_to}" if v.valid_to else "")
            for v in self.versions
        )
        raise PlanGapError(
            f"plan {self.plan_id} has no version in force on {day.isoformat()} ({spans})"
        )
