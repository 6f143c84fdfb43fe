"""The rating core: call segments in, priced lines and invoice totals out.

Pure Python, standard library only: no Django (a test enforces it), no clock, no I/O. Adapters in
``billing/`` turn ledger rows into :class:`Segment` objects and results back into rows.

Where each rule lives (one place each):

* segment kinds, origins and validation: :mod:`.segment` (after shared/design/segments.md);
* increments, included minutes, tiers, plan versions: :mod:`.plan`;
* what each hangup cause / unanswered attempt / very long call costs: :mod:`.disposition`;
* rounding, precision and currency exponents: :mod:`.money`;
* periods and time zones: :mod:`.period`;
* rating one segment and a whole period: :mod:`.engine`.
"""

from __future__ import annotations

from .disposition import ATTEMPT_FEE_CAUSES, LONG_SEGMENT_MS, Disposition, classify
from .engine import (
    InvoiceLine,
    PeriodResult,
    PeriodUsage,
    RatedLine,
    UsageAccumulator,
    UsageSummary,
    price_usage,
    rate_period,
    rate_segment,
    resolve_version,
)
from .errors import (
    CurrencyMismatchError,
    DuplicateSegmentError,
    InvalidPeriodError,
    InvalidPlanError,
    InvalidSegmentError,
    PlanGapError,
    RatingError,
    SegmentOutsidePeriodError,
    SegmentTimeError,
    TenantMismatchError,
    UnknownKindError,
    UnknownOriginError,
)
from .money import CURRENCY_EXPONENTS, currency_exponent
from .period import BillingPeriod, epoch_ms, utc_day
from .plan import (
    PER_MINUTE,
    PER_SECOND,
    SIX_SIX,
    THIRTY_SIX,
    Discount,
    Increment,
    KindRate,
    PlanBook,
    RatePlanVersion,
    Tier,
    TierMode,
    billable_seconds,
)
from .segment import Origin, Segment, SegmentKind

__all__ = [
    "ATTEMPT_FEE_CAUSES",
    "CURRENCY_EXPONENTS",
    "LONG_SEGMENT_MS",
    "PER_MINUTE",
    "PER_SECOND",
    "SIX_SIX",
    "THIRTY_SIX",
    "BillingPeriod",
    "CurrencyMismatchError",
    "Discount",
    "Disposition",
    "DuplicateSegmentError",
    "Increment",
    "InvalidPeriodError",
    "InvalidPlanError",
    "InvalidSegmentError",
    "InvoiceLine",
    "KindRate",
    "Origin",
    "PeriodResult",
    "PeriodUsage",
    "PlanBook",
    "PlanGapError",
    "RatePlanVersion",
    "RatedLine",
    "RatingError",
    "Segment",
    "SegmentKind",
    "SegmentOutsidePeriodError",
    "SegmentTimeError",
    "TenantMismatchError",
    "Tier",
    "TierMode",
    "UnknownKindError",
    "UnknownOriginError",
    "UsageAccumulator",
    "UsageSummary",
    "billable_seconds",
    "classify",
    "currency_exponent",
    "epoch_ms",
    "price_usage",
    "rate_period",
    "rate_segment",
    "resolve_version",
    "utc_day",
]
