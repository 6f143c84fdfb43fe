"""Rating: one segment at list price, and a tenant's billing period into invoice lines.

Two entry points:

* :func:`rate_segment` prices one segment alone (live cost on dashboards, the ledger's per-row
  list amount): billable seconds after increments and minimum, and a 6-decimal amount at the
  rate's first-tier price plus its connect or attempt fee. It knows no period, so no included
  minutes and no tiers.
* :func:`rate_period` streams a period's segments into a :class:`UsageAccumulator` (integer
  counters per kind and origin, nothing else kept per segment except, optionally, its identity
  for the duplicate check) and prices the aggregate with :func:`price_usage`: included minutes,
  tiers, connect and attempt fees, platform/seat/recording fees, discounts, tax.

Rounding is defined once, in :mod:`billing.rating.money`. The disposition policy (what each
hangup cause and unanswered attempt costs) is in :mod:`billing.rating.disposition`.

Determinism: the aggregate is a set of integer sums, so the result does not depend on the order
of the segments or on how they were split between accumulators; lines come out in plan order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .disposition import LONG_SEGMENT_MS, Disposition, classify
from .errors import (
    DuplicateSegmentError,
    InvalidPlanError,
    PlanGapError,
    SegmentOutsidePeriodError,
    TenantMismatchError,
)
from .money import (
    MICRO_DIGITS,
    MICROS_PER_UNIT,
    check_same_currency,
    decimal_from_units,
    div_round_half_up,
    micros_to_decimal,
    micros_to_minor,
    minor_to_decimal,
    to_micros,
)
from .period import BillingPeriod, utc_day
from .plan import PlanBook, RatePlanVersion, TierMode, _Pool
from .segment import Origin, Segment, SegmentKind

__all__ = [
    "InvoiceLine",
    "PeriodResult",
    "PeriodUsage",
    "RatedLine",
    "UsageAccumulator",
    "UsageSummary",
    "price_usage",
    "rate_period",
    "rate_segment",
    "resolve_version",
]

_KINDS = tuple(SegmentKind)
_ORIGINS = tuple(Origin)
_N_ORIGINS = len(_ORIGINS)
_N_SLOTS = len(_KINDS) * _N_ORIGINS
#: (kind, origin) -> slot number; the accumulator keeps flat integer lists indexed by slot.
_SLOT: dict[tuple[SegmentKind, Origin], int] = {
    (k, o): ki * _N_ORIGINS + oi for ki, k in enumerate(_KINDS) for oi, o in enumerate(_ORIGINS)
}
# Duplicate keys pack (leg UUID as a 128-bit int, start_ms, kind) into one int: exact, and about a
# third of the memory of a (str, int, int) tuple. start_ms gets 47 bits (until the year 6429).
_START_BITS = 47
_START_LIMIT = 1 << _START_BITS
_KIND_BITS = 3


def resolve_version(plan: RatePlanVersion | PlanBook, day: date) -> RatePlanVersion:
    """Return the version that rates ``day``.

    A :class:`PlanBook` selects by date. A bare :class:`RatePlanVersion` is accepted only if it is
    in force on ``day``; rating with a version outside its validity raises :class:`PlanGapError`
    rather than silently using stale or future prices.
    """
    if isinstance(plan, PlanBook):
        return plan.version_for(day)
    if isinstance(plan, RatePlanVersion):
        if not plan.covers(day):
            until = f" to {plan.valid_to}" if plan.valid_to else ""
            raise PlanGapError(
                f"plan {plan.plan_id} v{plan.version} (from {plan.valid_from}{until}) is not in "
                f"force on {day.isoformat()}"
            )
        return plan
    raise TypeError(f"plan must be a RatePlanVersion or a PlanBook, got {type(plan).__name__}")


# --------------------------------------------------------------------------------------------
# One segment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatedLine:
    """A segment priced alone, at list price. Amounts are integer micro-units (6 decimals).

    ``plan`` is the version that priced it. ``usage_micros`` is ``billable_seconds`` at the
    first-tier price per minute; ``fee_micros`` is the connect fee (billed segments) or the
    attempt fee (charged callback attempts). ``amount`` = usage + fee as a 6-decimal
    :class:`Decimal`; it is *not* rounded to the currency's minor unit (only invoice lines are).
    ``long_segment`` flags segments of :data:`~billing.rating.disposition.LONG_SEGMENT_MS` or
    more for review; it never changes the amount.
    """

    # The segment itself rather than copies of its fields: fewer fields make this, the object
    # built once per segment on the dashboard path, cheap to construct.
    segment: Segment
    plan: RatePlanVersion
    disposition: Disposition
    billable_seconds: int
    usage_micros: int
    fee_micros: int

    @property
    def kind(self) -> SegmentKind:
        """The segment's kind."""
        return self.segment.kind

    @property
    def origin(self) -> Origin:
        """The segment's call origin."""
        return self.segment.origin

    @property
    def leg_uuid(self) -> str:
        """The segment's leg."""
        return self.segment.leg_uuid

    @property
    def currency(self) -> str:
        """Currency of the amounts (the plan's)."""
        return self.plan.currency

    @property
    def duration_ms(self) -> int:
        """Answered milliseconds (0 for an unanswered attempt, whose span is ring time)."""
        return self.segment.end_ms - self.segment.start_ms if self.segment.answered else 0

    @property
    def long_segment(self) -> bool:
        """Whether the answered span is long enough to be reviewed (amount unchanged)."""
        return self.duration_ms >= LONG_SEGMENT_MS

    @property
    def amount(self) -> Decimal:
        """List amount with 6 decimal places (usage + fee)."""
        return micros_to_decimal(self.usage_micros + self.fee_micros)

    @property
    def usage_amount(self) -> Decimal:
        """The time part of :attr:`amount`."""
        return micros_to_decimal(self.usage_micros)

    @property
    def fee_amount(self) -> Decimal:
        """The connect- or attempt-fee part of :attr:`amount`."""
        return micros_to_decimal(self.fee_micros)


def rate_segment(segment: Segment, plan: RatePlanVersion | PlanBook) -> RatedLine:
    """Price one segment alone, with the version in force on its UTC start date.

    Applies the disposition policy: an answered segment is billed for its full duration whatever
    its hangup cause and however long it is; a zero-length one costs nothing; an unanswered one
    costs nothing except a charged callback attempt's fee. Raises :class:`PlanGapError` if no
    version covers the date.
    """
    start = segment.start_ms
    if type(plan) is RatePlanVersion and plan._from_ms <= start < plan._to_ms:
        version = plan  # fast path: the same test as plan.covers(utc_day(start)), on integers
    else:
        version = resolve_version(plan, utc_day(start))
    pool = version._slot_pool[(segment.kind, segment.origin)]
    if segment.answered:
        duration = segment.end_ms - start
        if duration > 0:
            # The increment rule of plan.billable_seconds, on the pool's precomputed ints.
            first = pool.first_ms
            if duration <= first:
                billed = first
            else:
                billed = first + -(-(duration - first) // pool.next_ms) * pool.next_ms
            if billed < pool.min_ms:
                billed = pool.min_ms
            billable_s = billed // 1000
            return RatedLine(
                segment,
                version,
                Disposition.BILLED,
                billable_s,
                div_round_half_up(billable_s * pool.price_micros, 60),
                pool.connect_micros,
            )
        return RatedLine(segment, version, Disposition.ZERO_LENGTH, 0, 0, 0)
    disposition = classify(segment)
    fee = pool.attempt_micros if disposition is Disposition.ATTEMPT_FEE else 0
    return RatedLine(segment, version, disposition, 0, 0, fee)


# --------------------------------------------------------------------------------------------
# A period's usage
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Aggregated usage of one (kind, origin) in a period.

    ``segments`` counts answered segments (zero-length included), ``billed_segments`` those with
    billable time (the connect-fee count), ``answered_ms`` their exact answered time (what the
    conservation test compares with the CDRs' billsec), ``billable_seconds`` the time after
    increments, ``attempts`` the unanswered attempt records and ``charged_attempts`` those the
    disposition policy charges.
    """

    kind: SegmentKind
    origin: Origin
    segments: int
    billed_segments: int
    answered_ms: int
    billable_seconds: int
    attempts: int
    charged_attempts: int


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """A frozen snapshot of a period's usage: what :func:`price_usage` prices.

    ``by_origin`` holds one :class:`UsageSummary` per (kind, origin) that saw any segment, in
    plan order (kinds as in :class:`SegmentKind`, then origins).
    """

    period: BillingPeriod
    plan: RatePlanVersion
    by_origin: tuple[UsageSummary, ...]
    long_segments: int


def _describe_key(key: int | tuple[str, int, int]) -> str:
    if isinstance(key, tuple):
        leg, start, kind_index = key
    else:
        kind_index = key & ((1 << _KIND_BITS) - 1)
        start = (key >> _KIND_BITS) & (_START_LIMIT - 1)
        h = f"{key >> (_KIND_BITS + _START_BITS):032x}"
        leg = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return f"leg {leg}, kind {_KINDS[kind_index].value}, start_ms {start}"


class UsageAccumulator:
    """Streams segments of one tenant's period into integer counters.

    Mutable on purpose (it is a builder; its snapshot :class:`PeriodUsage` is frozen) and not
    thread-safe: use one per worker and :meth:`merge` them. Memory is O(1) in the number of
    segments except for the duplicate check, which keeps one packed integer per segment (about
    75-100 bytes); pass ``check_duplicates=False`` when the source already guarantees uniqueness
    (the ledger's unique constraint) to rate in constant memory.

    Every segment must belong to ``period.tenant_id`` (:class:`TenantMismatchError`) and start in
    ``[period.start_ms, period.end_ms)`` (:class:`SegmentOutsidePeriodError`); the same
    ``(leg_uuid, kind, start_ms)`` twice raises :class:`DuplicateSegmentError`. Canonical
    8-4-4-4-12 hex leg UUIDs compare as UUIDs (case-insensitively); other leg ids as strings.
    A failed :meth:`add_all` leaves the accumulator holding the segments before the bad one:
    discard it.
    """

    __slots__ = (
        "_answered_ms",
        "_attempts",
        "_billable_ms",
        "_billed",
        "_charged",
        "_long",
        "_params",
        "_segments",
        "_seen",
        "period",
        "plan",
    )

    def __init__(
        self,
        plan: RatePlanVersion | PlanBook,
        period: BillingPeriod,
        *,
        check_duplicates: bool = True,
    ) -> None:
        self.plan = resolve_version(plan, period.start)
        self.period = period
        pools = self.plan._slot_pool
        self._params = [
            (p.first_ms, p.next_ms, p.min_ms)
            for p in (pools[(k, o)] for k in _KINDS for o in _ORIGINS)
        ]
        self._segments = [0] * _N_SLOTS
        self._billed = [0] * _N_SLOTS
        self._answered_ms = [0] * _N_SLOTS
        self._billable_ms = [0] * _N_SLOTS
        self._attempts = [0] * _N_SLOTS
        self._charged = [0] * _N_SLOTS
        self._long = 0
        self._seen: set[int | tuple[str, int, int]] | None = set() if check_duplicates else None

    def add(self, segment: Segment) -> None:
        """Add one segment (see the class contract)."""
        self.add_all((segment,))

    def add_all(self, segments: Iterable[Segment]) -> None:
        """Add every segment of ``segments``, consuming the iterable once, keeping none of them.

        This is the hot loop: integer arithmetic only, locals instead of attribute lookups, and
        the increment rule inlined (it must stay equal to :func:`~billing.rating.plan.
        billable_seconds`; the property tests compare them).
        """
        period = self.period
        tenant, lo, hi = period.tenant_id, period.start_ms, period.end_ms
        slot_of, params = _SLOT, self._params
        n_segments, n_billed = self._segments, self._billed
        answered_ms, billable_ms = self._answered_ms, self._billable_ms
        attempts, charged = self._attempts, self._charged
        seen = self._seen
        long_ms = LONG_SEGMENT_MS
        n_long = 0
        last_leg: str | None = None
        last_uuid = -1
        try:
            for seg in segments:
                start = seg.start_ms
                if seg.tenant_id != tenant:
                    raise TenantMismatchError(
                        f"segment {seg.leg_uuid}/{seg.kind} belongs to tenant {seg.tenant_id!r}, "
                        f"not to {tenant!r} whose period is being rated"
                    )
                if start < lo or start >= hi:
                    raise SegmentOutsidePeriodError(
                        f"segment {seg.leg_uuid}/{seg.kind} starts at {start} ms, outside period "
                        f"{period.start}..{period.end} [{lo}, {hi}) of tenant {tenant!r}"
                    )
                slot = slot_of[seg.kind, seg.origin]
                if seen is not None:
                    leg = seg.leg_uuid
                    if leg is not last_leg:
                        # Segments of one leg usually arrive together: parse its UUID once.
                        last_leg, last_uuid = leg, _uuid_int(leg)
                    if last_uuid >= 0 and start < _START_LIMIT:
                        key: int | tuple[str, int, int] = (
                            ((last_uuid << _START_BITS) | start) << _KIND_BITS
                        ) | (slot // _N_ORIGINS)
                    else:
                        key = (leg, start, slot // _N_ORIGINS)
                    if key in seen:
                        raise DuplicateSegmentError(
                            f"duplicate segment in one rating call: {_describe_key(key)} "
                            f"(call {seg.call_id})"
                        )
                    seen.add(key)
                if seg.answered:
                    n_segments[slot] += 1
                    duration = seg.end_ms - start
                    if duration > 0:
                        first, step, minimum = params[slot]
                        if duration <= first:
                            billed = first
                        else:
                            billed = first + -(-(duration - first) // step) * step
                        if billed < minimum:
                            billed = minimum
                        n_billed[slot] += 1
                        answered_ms[slot] += duration
                        billable_ms[slot] += billed
                        if duration >= long_ms:
                            n_long += 1
                else:
                    attempts[slot] += 1
                    if classify(seg) is Disposition.ATTEMPT_FEE:
                        charged[slot] += 1
        finally:
            self._long += n_long

    def merge(self, other: UsageAccumulator) -> None:
        """Add ``other``'s usage to this one (same plan version and period).

        Exact: merging accumulators of any split of a period's segments gives the same counters
        as one pass. With duplicate checks on both sides, a segment seen by both raises
        :class:`DuplicateSegmentError`.
        """
        if other.plan != self.plan or other.period != self.period:
            raise InvalidPlanError(
                "can only merge usage of the same plan version and billing period"
            )
        if self._seen is not None and other._seen is not None:
            common = self._seen & other._seen
            if common:
                first = min(common, key=repr)
                raise DuplicateSegmentError(
                    f"duplicate segment across merged usage: {_describe_key(first)}"
                )
            self._seen |= other._seen
        else:
            self._seen = None  # one side unchecked: the union cannot be checked either
        for mine, theirs in (
            (self._segments, other._segments),
            (self._billed, other._billed),
            (self._answered_ms, other._answered_ms),
            (self._billable_ms, other._billable_ms),
            (self._attempts, other._attempts),
            (self._charged, other._charged),
        ):
            for i in range(_N_SLOTS):
                mine[i] += theirs[i]
        self._long += other._long

    def usage(self) -> PeriodUsage:
        """A frozen snapshot of the usage so far."""
        rows = []
        for slot in range(_N_SLOTS):
            if self._segments[slot] or self._attempts[slot]:
                rows.append(
                    UsageSummary(
                        _KINDS[slot // _N_ORIGINS],
                        _ORIGINS[slot % _N_ORIGINS],
                        self._segments[slot],
                        self._billed[slot],
                        self._answered_ms[slot],
                        self._billable_ms[slot] // 1000,
                        self._attempts[slot],
                        self._charged[slot],
                    )
                )
        return PeriodUsage(self.period, self.plan, tuple(rows), self._long)


def _uuid_int(leg: str) -> int:
    """The 128-bit value of a canonical 8-4-4-4-12 hex UUID string, or -1 for any other id."""
    if len(leg) == 36 and leg[8] == leg[13] == leg[18] == leg[23] == "-":
        digits = leg.replace("-", "")
        # isascii + isalnum exclude what int() would otherwise tolerate (signs, '_', spaces,
        # non-ASCII digits), so two different ids can never map to the same int.
        if len(digits) == 32 and digits.isascii() and digits.isalnum():
            try:
                return int(digits, 16)
            except ValueError:
                return -1
    return -1


# --------------------------------------------------------------------------------------------
# Pricing a period
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of a period's invoice.

    ``amount`` is the line rounded to the currency's minor unit (the only rounding a line gets),
    from ``exact_amount`` (6 decimals). ``quantity`` and ``unit_price`` are for display: usage
    quantities are minutes shown to 4 decimals, while the amount is computed from the exact
    ``billable_seconds``. ``code`` is stable and machine-readable (``usage:agent``,
    ``usage:agent:overflow:tier2``, ``included:ivr``, ``connect:agent``,
    ``attempt:callback_dial:callback``, ``fee:platform``, ``fee:seats``, ``fee:recording``,
    ``discount:<code>``); ``kind`` is set on usage lines.
    """

    code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    exact_amount: Decimal
    amount: Decimal
    kind: SegmentKind | None = None
    billable_seconds: int = 0


@dataclass(frozen=True, slots=True)
class PeriodResult:
    """A priced billing period.

    Invariants (tested): ``subtotal == sum(line.amount for line in lines)`` and ``total ==
    subtotal + tax``, exactly; every amount has the currency's number of decimals.
    """

    tenant_id: str
    period: BillingPeriod
    plan_id: str
    plan_version: int
    currency: str
    usage: tuple[UsageSummary, ...]
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    long_segments: int

    @property
    def segments(self) -> int:
        """Answered segments and attempt records rated."""
        return sum(u.segments + u.attempts for u in self.usage)


def _minutes(seconds: int) -> Decimal:
    return decimal_from_units(div_round_half_up(seconds * 10_000, 60), 4)


class _LineBuilder:
    """Collects lines as (line, minor amount, discount group) and does the rounding once."""

    def __init__(self, exponent: int) -> None:
        self.exponent = exponent
        self.items: list[tuple[InvoiceLine, int, SegmentKind | None, bool]] = []

    def add(
        self,
        code: str,
        description: str,
        quantity: Decimal,
        unit: str,
        unit_price: Decimal,
        micros: int,
        *,
        kind: SegmentKind | None = None,
        is_fee: bool = False,
        billable_seconds: int = 0,
    ) -> None:
        # The one place an invoice line is rounded: 6-decimal amount -> minor unit, half up.
        minor = micros_to_minor(micros, self.exponent)
        line = InvoiceLine(
            code,
            description,
            quantity,
            unit,
            unit_price,
            micros_to_decimal(micros),
            minor_to_decimal(minor, self.exponent),
            kind,
            billable_seconds,
        )
        self.items.append((line, minor, kind, is_fee))


def _price_pool(
    out: _LineBuilder,
    pool: _Pool,
    seconds: int,
    billed: int,
    charged_attempts: int,
) -> None:
    key = pool.kind.value if pool.origin is None else f"{pool.kind.value}:{pool.origin.value}"
    label, kind, rate = pool.label, pool.kind, pool.rate
    if seconds > 0:
        included = min(seconds, pool.included_s)
        if included:
            out.add(
                f"included:{key}",
                f"{label} minutes included in the plan",
                _minutes(included),
                "min",
                Decimal(0),
                0,
                kind=kind,
                billable_seconds=included,
            )
        chargeable = seconds - included
        bounds, prices = pool.bounds_s, pool.prices_micros
        tier_prices = (rate.price_per_minute, *(t.price_per_minute for t in rate.tiers))
        if chargeable and pool.mode is TierMode.GRADUATED:
            for j, lower in enumerate(bounds):
                if chargeable <= lower:
                    break
                upper = bounds[j + 1] if j + 1 < len(bounds) else chargeable
                part = min(chargeable, upper) - lower
                suffix = "" if j == 0 else f":tier{j + 1}"
                over = "" if j == 0 else f" over {lower // 60} min"
                out.add(
                    f"usage:{key}{suffix}",
                    f"{label} minutes{over}",
                    _minutes(part),
                    "min",
                    tier_prices[j],
                    div_round_half_up(part * prices[j], 60),
                    kind=kind,
                    billable_seconds=part,
                )
        elif chargeable:
            # Volume: the whole quantity at the tier it falls in (tier j covers (b_j, b_j+1]),
            # capped by the no-cliff rule: never more than the smallest quantity of a dearer-
            # sized tier would cost. Compared on integer numerators (micro * seconds).
            tier = max(j for j, lower in enumerate(bounds) if lower < chargeable)
            best_j, best_qty = tier, chargeable
            best_cost = chargeable * prices[tier]
            for j in range(tier + 1, len(bounds)):
                cost = bounds[j] * prices[j]
                if cost < best_cost:
                    best_j, best_qty, best_cost = j, bounds[j], cost
            note = "" if best_j == tier else f", billed as {best_qty // 60} min (no-cliff rule)"
            out.add(
                f"usage:{key}",
                f"{label} minutes at tier {best_j + 1} price{note}",
                _minutes(best_qty),
                "min",
                tier_prices[best_j],
                div_round_half_up(best_cost, 60),
                kind=kind,
                billable_seconds=chargeable,
            )
    if billed and pool.connect_micros:
        out.add(
            f"connect:{key}",
            f"{label} connection fees",
            Decimal(billed),
            "segment",
            rate.connect_fee,
            billed * pool.connect_micros,
            kind=kind,
        )
    if charged_attempts and pool.attempt_micros:
        out.add(
            f"attempt:{key}",
            f"{label} unanswered attempts",
            Decimal(charged_attempts),
            "attempt",
            rate.attempt_fee,
            charged_attempts * pool.attempt_micros,
            kind=kind,
        )


def price_usage(
    usage: PeriodUsage,
    *,
    seats: int = 0,
    stored_recording_minutes: int = 0,
    currency: str | None = None,
) -> PeriodResult:
    """Price a period's usage into invoice lines and totals.

    ``seats`` is the number of contracted agent seats and ``stored_recording_minutes`` the
    recording minutes held in storage for the period (neither comes from segments). If
    ``currency`` (the tenant's account currency) is given it must equal the plan's
    (:class:`CurrencyMismatchError`). Lines come out in plan order: per kind (base rate, then
    origin overrides) included / usage (per tier) / connect / attempt lines, then fees, then
    discounts. Pure and deterministic.
    """
    plan, period = usage.plan, usage.period
    if currency is not None:
        check_same_currency(
            currency, plan.currency, f"tenant {period.tenant_id!r} rated under {plan.plan_id}"
        )
    if type(seats) is not int or seats < 0:
        raise InvalidPlanError(f"seats must be an int >= 0, got {seats!r}")
    if type(stored_recording_minutes) is not int or stored_recording_minutes < 0:
        raise InvalidPlanError(
            f"stored_recording_minutes must be an int >= 0, got {stored_recording_minutes!r}"
        )
    exponent = plan.exponent
    out = _LineBuilder(exponent)

    n_pools = len(plan._pools)
    seconds = [0] * n_pools
    billed = [0] * n_pools
    charged = [0] * n_pools
    for row in usage.by_origin:
        pool = plan._slot_pool[(row.kind, row.origin)]
        seconds[pool.index] += row.billable_seconds
        billed[pool.index] += row.billed_segments
        charged[pool.index] += row.charged_attempts
    for pool in plan._pools:
        _price_pool(out, pool, seconds[pool.index], billed[pool.index], charged[pool.index])

    fraction = Decimal(period.fee_fraction)
    fraction_micros = to_micros(fraction, "fee_fraction")
    platform = to_micros(plan.monthly_platform_fee, "monthly_platform_fee")
    if platform:
        out.add(
            "fee:platform",
            "Platform fee",
            fraction,
            "month",
            plan.monthly_platform_fee,
            div_round_half_up(platform * fraction_micros, MICROS_PER_UNIT),
            is_fee=True,
        )
    seat_fee = to_micros(plan.seat_fee, "seat_fee")
    if seat_fee and seats:
        out.add(
            "fee:seats",
            f"Agent seats ({seats})",
            Decimal(seats) * fraction,
            "seat-month",
            plan.seat_fee,
            div_round_half_up(seat_fee * seats * fraction_micros, MICROS_PER_UNIT),
            is_fee=True,
        )
    recording = to_micros(plan.recording_storage_price, "recording_storage_price")
    if recording and stored_recording_minutes:
        out.add(
            "fee:recording",
            "Call recording storage",
            Decimal(stored_recording_minutes),
            "recording-min",
            plan.recording_storage_price,
            stored_recording_minutes * recording,
            is_fee=True,
        )

    base_items = list(out.items)
    to_micro_factor = 10 ** (MICRO_DIGITS - exponent)
    for discount in plan.discounts:
        if not discount.applies_to(period.start):
            continue
        base = sum(
            minor
            for _line, minor, kind, is_fee in base_items
            if (discount.include_fees if is_fee else (not discount.kinds or kind in discount.kinds))
        )
        if base <= 0:
            continue
        pct = to_micros(discount.percent, "percent")
        micros = div_round_half_up(base * to_micro_factor * pct, 100 * MICROS_PER_UNIT)
        out.add(
            f"discount:{discount.code}",
            f"Discount {discount.code} ({discount.percent}%)",
            discount.percent,
            "%",
            minor_to_decimal(base, exponent),
            -micros,
        )

    subtotal = sum(minor for _line, minor, _kind, _fee in out.items)
    if subtotal < 0:
        # Several discounts each rounded half up can overshoot their base by a few minor units;
        # an invoice never goes negative, so the last discount line absorbs the excess.
        line, minor, kind, is_fee = out.items[-1]
        fixed = minor - subtotal
        out.items[-1] = (
            InvoiceLine(
                line.code,
                line.description,
                line.quantity,
                line.unit,
                line.unit_price,
                line.exact_amount,
                minor_to_decimal(fixed, exponent),
                line.kind,
                line.billable_seconds,
            ),
            fixed,
            kind,
            is_fee,
        )
        subtotal = 0
    tax_micros = div_round_half_up(
        subtotal * to_micro_factor * to_micros(plan.tax_rate, "tax_rate"), MICROS_PER_UNIT
    )
    tax = micros_to_minor(tax_micros, exponent)
    return PeriodResult(
        period.tenant_id,
        period,
        plan.plan_id,
        plan.version,
        plan.currency,
        usage.by_origin,
        tuple(line for line, _minor, _kind, _fee in out.items),
        minor_to_decimal(subtotal, exponent),
        minor_to_decimal(tax, exponent),
        minor_to_decimal(subtotal + tax, exponent),
        usage.long_segments,
    )


def rate_period(
    segments: Iterable[Segment],
    plan: RatePlanVersion | PlanBook,
    period: BillingPeriod,
    *,
    seats: int = 0,
    stored_recording_minutes: int = 0,
    currency: str | None = None,
    check_duplicates: bool = True,
) -> PeriodResult:
    """Rate a tenant's billing period from a stream of its segments.

    ``segments`` may be any iterable (a generator over a database cursor): it is consumed once
    and no segment is kept (see :class:`UsageAccumulator` for the duplicate check's memory).
    The version in force on ``period.start`` prices the whole period (:class:`PlanGapError` if
    none). Raises :class:`TenantMismatchError`, :class:`SegmentOutsidePeriodError`,
    :class:`DuplicateSegmentError` and :class:`CurrencyMismatchError` as documented there.
    """
    acc = UsageAccumulator(plan, period, check_duplicates=check_duplicates)
    acc.add_all(segments)
    return price_usage(
        acc.usage(),
        seats=seats,
        stored_recording_minutes=stored_recording_minutes,
        currency=currency,
    )
