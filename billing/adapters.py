"""Adapters between database rows and the pure rating core (:mod:`billing.rating`).

Rows in, frozen core objects out (and back): no pricing rule lives here. The core validates
everything it is given, so a bad row surfaces as the core's clear :class:`RatingError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.models import LedgerEntry, PlanVersion, RatePlan
from billing.rating import (
    BillingPeriod,
    Discount,
    Increment,
    InvalidPlanError,
    KindRate,
    PlanBook,
    RatePlanVersion,
    Segment,
    Tier,
    TierMode,
)
from tenants.models import Client

__all__ = [
    "book_for_plan",
    "kind_rate_from_row",
    "month_of",
    "period_for",
    "segment_from_entry",
    "segments_from_entries",
    "version_from_row",
]


def kind_rate_from_row(row) -> KindRate:  # type: ignore[no-untyped-def]
    """A :class:`PlanRate` row as the core's :class:`KindRate`."""
    try:
        tiers = tuple(Tier(int(t[0]), Decimal(str(t[1]))) for t in row.tiers or ())
    except (TypeError, ValueError, IndexError, ArithmeticError):
        raise InvalidPlanError(
            f"rate {row.kind}{'/' + row.origin if row.origin else ''}: tiers must be "
            f'[[from_minutes, "price"], ...], got {row.tiers!r}'
        ) from None
    return KindRate(
        price_per_minute=Decimal(row.price_per_minute),
        increment=Increment(row.increment_first, row.increment_next),
        minimum_seconds=row.minimum_seconds,
        connect_fee=Decimal(row.connect_fee),
        included_minutes=row.included_minutes,
        tiers=tiers,
        tier_mode=TierMode(row.tier_mode),
        attempt_fee=Decimal(row.attempt_fee),
    )


def version_from_row(row: PlanVersion) -> RatePlanVersion:
    """A :class:`PlanVersion` with its rates and discounts as a core :class:`RatePlanVersion`.

    ``valid_to`` is left open unless the row sets one: within a :class:`PlanBook` the next
    version ends it.
    """
    rates = {}
    overrides = {}
    for rate in row.rates.all():
        if rate.origin:
            overrides[(rate.kind, rate.origin)] = kind_rate_from_row(rate)
        else:
            rates[rate.kind] = kind_rate_from_row(rate)
    discounts = tuple(
        Discount(
            code=d.code,
            percent=Decimal(d.percent),
            ends_on=d.ends_on,
            kinds=frozenset(d.kinds or ()),
            include_fees=d.include_fees,
        )
        for d in row.discounts.all()
    )
    return RatePlanVersion(
        plan_id=row.plan.code,
        version=row.version,
        currency=row.plan.currency,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        rates=rates,
        overrides=overrides,
        recording_storage_price=Decimal(row.recording_storage_price),
        monthly_platform_fee=Decimal(row.monthly_platform_fee),
        seat_fee=Decimal(row.seat_fee),
        tax_rate=Decimal(row.tax_rate),
        discounts=discounts,
    )


def live_versions(plan: RatePlan) -> list[PlanVersion]:
    """The plan's versions that are not superseded by a correction, oldest first."""
    return list(
        plan.versions.filter(superseded_by__isnull=True)
        .select_related("plan")
        .prefetch_related("rates", "discounts")
        .order_by("valid_from")
    )


def book_for_plan(plan: RatePlan) -> tuple[PlanBook, dict[int, PlanVersion]]:
    """The plan's live versions as a core :class:`PlanBook`, and version number -> row.

    Raises :class:`InvalidPlanError` for a plan without versions (the core's message).
    """
    rows = live_versions(plan)
    if not rows:
        raise InvalidPlanError(f"plan {plan.code} has no versions yet")
    return PlanBook(tuple(version_from_row(r) for r in rows)), {r.version: r for r in rows}


def ledger_rating_version(version: RatePlanVersion) -> RatePlanVersion:
    """``version`` usable by :func:`rate_segment` for any segment of the periods it prices.

    The core's ``rate_segment`` checks a bare version against the segment's *UTC* date, but a
    period is priced by the version in force on its *tenant-local* first day (0007), so a
    segment at 00:30 in Kyiv on the 1st (22:30 UTC the day before) would be refused. The
    ledger has already chosen the version by the period rule, so it lifts the date window.
    """
    return dataclasses.replace(version, valid_from=date(1970, 1, 1), valid_to=None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def month_of(tenant: Client, ms: int) -> date:
    """First local day of the tenant's calendar month containing the instant ``ms``."""
    local = (_EPOCH + timedelta(milliseconds=ms)).astimezone(ZoneInfo(tenant.time_zone))
    return date(local.year, local.month, 1)


def period_for(tenant: Client, period_start: date) -> BillingPeriod:
    """The tenant's monthly period starting on ``period_start`` (its time zone sets edges)."""
    return BillingPeriod.month(
        tenant.schema_name, period_start.year, period_start.month, ZoneInfo(tenant.time_zone)
    )


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def segment_from_entry(entry: LedgerEntry, tenant_id: str) -> Segment:
    return Segment(
        tenant_id=tenant_id,
        call_id=entry.call_id,
        leg_uuid=entry.leg_uuid,
        kind=entry.kind,  # type: ignore[arg-type]
        origin=entry.origin,  # type: ignore[arg-type]
        start_ms=entry.start_ms,
        end_ms=entry.end_ms,
        answered=entry.answered,
        hangup_cause=entry.hangup_cause,
        agent=entry.agent or None,
        queue=entry.queue or None,
    )


def segments_from_entries(entries: Iterable[LedgerEntry], tenant_id: str) -> Iterator[Segment]:
    for entry in entries:
        yield segment_from_entry(entry, tenant_id)


#: The ledger columns :func:`segments_from_rows` reads (``values_list`` order).
SEGMENT_FIELDS = (
    "call_id",
    "leg_uuid",
    "kind",
    "origin",
    "start_ms",
    "end_ms",
    "answered",
    "hangup_cause",
    "agent",
    "queue",
)


def segments_from_rows(rows: Iterable[tuple], tenant_id: str) -> Iterator[Segment]:  # type: ignore[type-arg]
    """Segments from ``values_list(*SEGMENT_FIELDS)`` rows: no model instances (a streamed
    chunk of tuples is about a fifth of the memory of the same chunk of ``LedgerEntry``)."""
    for call_id, leg, kind, origin, start, end, answered, cause, agent, queue in rows:
        yield Segment(
            tenant_id=tenant_id,
            call_id=call_id,
            leg_uuid=leg,
            kind=kind,
            origin=origin,
            start_ms=start,
            end_ms=end,
            answered=answered,
            hangup_cause=cause,
            agent=agent or None,
            queue=queue or None,
        )
