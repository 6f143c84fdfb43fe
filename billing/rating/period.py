"""Billing periods: a tenant's span of calendar days, pinned to UTC instants.

A period is named by calendar days in the tenant's time zone (``start`` inclusive, ``end``
exclusive: March is ``2026-03-01 .. 2026-04-01``) and carries the UTC millisecond instants of
those local midnights, which is what segments are compared with. The zone is applied here, at the
edge, once; the engine only compares integers. A segment belongs to the period in which it
*starts*: a call that runs across midnight at the end of a month is billed in full in the month it
started, never split (splitting would change its increments).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

from .errors import InvalidPeriodError

__all__ = ["BillingPeriod", "epoch_ms", "utc_day"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000


def epoch_ms(moment: datetime) -> int:
    """Exact integer epoch milliseconds of an aware datetime (no float timestamp in between)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidPeriodError(f"naive datetime {moment!r}: give it a time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def utc_day(ms: int) -> date:
    """The UTC calendar date of an epoch-millisecond instant."""
    return date.fromordinal(_EPOCH_ORDINAL + ms // _MS_PER_DAY)


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """A tenant's billing period.

    Contract: ``start < end`` (local calendar days, ``end`` exclusive) and ``start_ms < end_ms``
    (the UTC instants of their local midnights; use :meth:`from_days` or :meth:`month` to get them
    right across DST). ``fee_fraction`` in ``(0, 1]`` with at most 6 decimal places is the share
    of the monthly platform and seat fees the period carries: 1 for a calendar month, e.g.
    ``Decimal('0.5')`` for a tenant who joined mid-month (the adapter decides the proration).
    """

    tenant_id: str
    start: date
    end: date
    start_ms: int
    end_ms: int
    fee_fraction: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if type(self.tenant_id) is not str or not self.tenant_id:
            raise InvalidPeriodError(
                f"tenant_id must be a non-empty string, got {self.tenant_id!r}"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise InvalidPeriodError(f"period {name} must be a datetime.date, got {value!r}")
        if not self.start < self.end:
            raise InvalidPeriodError(f"period start {self.start} must be before end {self.end}")
        if type(self.start_ms) is not int or type(self.end_ms) is not int:
            raise InvalidPeriodError("period start_ms and end_ms must be int epoch milliseconds")
        if not self.start_ms < self.end_ms:
            raise InvalidPeriodError(
                f"period start_ms {self.start_ms} must be before end_ms {self.end_ms}"
            )
        fraction = self.fee_fraction
        if (
            not isinstance(fraction, Decimal | int)
            or isinstance(fraction, bool)
            or not 0 < fraction <= 1
            or Decimal(fraction).scaleb(6) != Decimal(fraction).scaleb(6).to_integral_value()
        ):
            raise InvalidPeriodError(
                f"fee_fraction must be a Decimal in (0, 1] with at most 6 places, got {fraction!r}"
            )

    @classmethod
    def from_days(
        cls,
        tenant_id: str,
        start: date,
        end: date,
        tz: tzinfo = UTC,
        fee_fraction: Decimal = Decimal(1),
    ) -> BillingPeriod:
        """The period from local midnight of ``start`` to local midnight of ``end`` in ``tz``."""
        start_ms = epoch_ms(datetime(start.year, start.month, start.day, tzinfo=tz))
        end_ms = epoch_ms(datetime(end.year, end.month, end.day, tzinfo=tz))
        return cls(tenant_id, start, end, start_ms, end_ms, fee_fraction)

    @classmethod
    def month(cls, tenant_id: str, year: int, month: int, tz: tzinfo = UTC) -> BillingPeriod:
        """The calendar month ``year-month`` in the tenant's zone ``tz``."""
        start = date(year, month, 1)
        end = date(year + (month == 12), month % 12 + 1, 1)
        return cls.from_days(tenant_id, start, end, tz)

    def contains_ms(self, ms: int) -> bool:
        """Whether the instant ``ms`` falls in ``[start_ms, end_ms)``."""
        return self.start_ms <= ms < self.end_ms
