"""Errors raised by the rating core.

Every error the core raises on bad input is a :class:`RatingError`, so an adapter (a job, an
import, an API view) can catch one type and report the message. Errors caused by bad *values*
also derive from :class:`ValueError` and lookups that find nothing from :class:`LookupError`,
so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "CurrencyMismatchError",
    "DuplicateSegmentError",
    "InvalidPeriodError",
    "InvalidPlanError",
    "InvalidSegmentError",
    "PlanGapError",
    "RatingError",
    "SegmentOutsidePeriodError",
    "SegmentTimeError",
    "TenantMismatchError",
    "UnknownKindError",
    "UnknownOriginError",
]


class RatingError(Exception):
    """Base class of every error the rating core raises on bad input or configuration."""


class InvalidSegmentError(RatingError, ValueError):
    """A segment failed validation on construction."""


class UnknownKindError(InvalidSegmentError):
    """A segment (or a rate keyed by kind) names a kind that segments.md does not define."""


class UnknownOriginError(InvalidSegmentError):
    """A segment (or an override) names an origin other than direct, overflow or callback."""


class SegmentTimeError(InvalidSegmentError):
    """A segment's times are not integer epoch milliseconds, or it ends before it starts."""


class InvalidPlanError(RatingError, ValueError):
    """A rate plan, a rate, a tier, a discount or a plan book is inconsistent."""


class InvalidPeriodError(RatingError, ValueError):
    """A billing period is empty, reversed, or carries an impossible fee fraction."""


class PlanGapError(RatingError, LookupError):
    """No rate-plan version is in force on the date that must be rated."""


class CurrencyMismatchError(RatingError):
    """Two things that must share a currency (plan versions, plan and account) do not."""


class DuplicateSegmentError(RatingError):
    """The same segment (leg UUID + kind + start) was fed twice into one rating call."""


class TenantMismatchError(RatingError):
    """A segment of another tenant was fed into a tenant's period rating."""


class SegmentOutsidePeriodError(RatingError):
    """A segment starts outside the billing period it was fed into."""
