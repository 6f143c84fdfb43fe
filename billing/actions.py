"""Billing verbs: ``check_*`` validates, ``do_*`` is the only code that writes billing rows.

Concurrency: everything that books usage into a tenant's period or closes one takes the
tenant's transaction-scoped advisory lock first (:func:`_lock_tenant`), so a segment is never
booked into a period while that period is being finalized. Invoice numbers come from a counter
row locked with ``SELECT ... FOR UPDATE`` in the finalizing transaction, behind a unique
constraint: a rolled-back finalization rolls its number back too, so numbers stay gapless.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from billing import adapters
from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    LedgerEntry,
    PlanDiscount,
    PlanRate,
    PlanVersion,
    ProviderProfile,
    RatePlan,
)
from billing.rating import (
    Discount,
    DuplicateSegmentError,
    KindRate,
    Origin,
    PlanBook,
    RatePlanVersion,
    RatingError,
    Segment,
    TenantMismatchError,
    currency_exponent,
    rate_period,
    rate_segment,
)
from billing.rating.money import (
    check_same_currency,
    div_round_half_up,
    micros_to_minor,
    minor_to_decimal,
    to_micros,
)
from ccplatform.jobs import defer_on_commit
from tenants import audit
from tenants.models import Client, User

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
CLOSED_STATUSES = (Invoice.Status.FINALIZED, Invoice.Status.PAID)


class BillingError(Exception):
    """A billing request that cannot be carried out; the message says why, for people."""


class LockedVersionError(BillingError):
    """A plan version that already rated segments was asked to change."""


class InvoiceStateError(BillingError):
    """An invoice is not in the state the verb needs (e.g. finalizing a paid invoice)."""


def _lock_tenant(tenant: Client) -> None:
    """Serialise booking and closing for one tenant (released at the transaction's end)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x0B111, tenant.pk])


# -- plans -------------------------------------------------------------------------------------
def do_create_plan(*, code: str, name: str, currency: str, actor: User | None = None) -> RatePlan:
    currency_exponent(currency)  # refuses a currency the core cannot round
    with transaction.atomic():
        plan = RatePlan.objects.create(code=code, name=name, currency=currency)
        audit.record("billing.plan_created", actor=actor, obj=plan, details={"currency": currency})
    return plan


def _write_version_rows(
    row: PlanVersion,
    rates: Mapping[str, KindRate],
    overrides: Mapping[tuple[str, str], KindRate],
    discounts: Iterable[Discount],
) -> None:
    def rate_row(kind: str, origin: str, rate: KindRate) -> PlanRate:
        return PlanRate(
            version=row,
            kind=str(kind),
            origin=str(origin),
            price_per_minute=rate.price_per_minute,
            increment_first=rate.increment[0],
            increment_next=rate.increment[1],
            minimum_seconds=rate.minimum_seconds,
            connect_fee=rate.connect_fee,
            included_minutes=rate.included_minutes,
            tier_mode=str(rate.tier_mode),
            tiers=[[t.from_minutes, str(t.price_per_minute)] for t in rate.tiers],
            attempt_fee=rate.attempt_fee,
        )

    PlanRate.objects.bulk_create(
        [rate_row(k, "", r) for k, r in rates.items()]
        + [rate_row(k, o, r) for (k, o), r in overrides.items()]
    )
    PlanDiscount.objects.bulk_create(
        PlanDiscount(
            version=row,
            code=d.code,
            percent=d.percent,
            ends_on=d.ends_on,
            kinds=sorted(str(k) for k in d.kinds),
            include_fees=d.include_fees,
        )
        for d in discounts
    )


def check_plan_version(
    plan: RatePlan, *, version: int, valid_from: date, **terms: Any
) -> RatePlanVersion:
    """Validate a version's terms with the core (which names any inconsistency)."""
    return RatePlanVersion(
        plan_id=plan.code, version=version, currency=plan.currency, valid_from=valid_from, **terms
    )


def do_add_plan_version(
    plan: RatePlan,
    *,
    valid_from: date,
    rates: Mapping[str, KindRate],
    overrides: Mapping[tuple[str, str], KindRate] | None = None,
    discounts: Iterable[Discount] = (),
    recording_storage_price: Decimal = Decimal(0),
    monthly_platform_fee: Decimal = Decimal(0),
    seat_fee: Decimal = Decimal(0),
    tax_rate: Decimal = Decimal(0),
    actor: User | None = None,
    _supersedes: PlanVersion | None = None,
) -> PlanVersion:
    """Add a version applying from ``valid_from`` (it prices periods starting on or after it).

    A new version must start after every live version (versions are ordered by date and
    number); to fix a version already in use, see :func:`do_correct_plan_version`.
    """
    overrides = dict(overrides or {})
    discounts = tuple(discounts)
    terms = {
        "rates": dict(rates),
        "overrides": overrides,
        "discounts": discounts,
        "recording_storage_price": recording_storage_price,
        "monthly_platform_fee": monthly_platform_fee,
        "seat_fee": seat_fee,
        "tax_rate": tax_rate,
    }
    with transaction.atomic():
        RatePlan.objects.select_for_update().get(pk=plan.pk)
        number = (plan.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        core = check_plan_version(plan, version=number, valid_from=valid_from, **terms)
        live = adapters.live_versions(plan)
        if _supersedes is not None:
            live = [v for v in live if v.pk != _supersedes.pk]
        elif live and live[-1].valid_from >= valid_from:
            raise BillingError(
                f"plan {plan.code}: a new version must start after the latest one "
                f"(v{live[-1].version} from {live[-1].valid_from}); got {valid_from}"
            )
        PlanBook((*(adapters.version_from_row(v) for v in live), core))  # whole book still valid
        row = PlanVersion.objects.create(
            plan=plan,
            version=number,
            valid_from=valid_from,
            recording_storage_price=recording_storage_price,
            monthly_platform_fee=monthly_platform_fee,
            seat_fee=seat_fee,
            tax_rate=tax_rate,
        )
        _write_version_rows(row, core.rates, core.overrides, core.discounts)
        if _supersedes is not None:
            PlanVersion.objects.filter(pk=_supersedes.pk).update(superseded_by=row)
        audit.record(
            "billing.plan_version_added",
            actor=actor,
            obj=row,
            details={
                "plan": plan.code,
                "version": number,
                "valid_from": valid_from.isoformat(),
                "supersedes": _supersedes.version if _supersedes else None,
            },
        )
    return row


def do_update_plan_version(
    version: PlanVersion,
    *,
    rates: Mapping[str, KindRate] | None = None,
    overrides: Mapping[tuple[str, str], KindRate] | None = None,
    actor: User | None = None,
    **fees: Decimal,
) -> PlanVersion:
    """Edit a version that has not rated anything yet; a used version is refused."""
    with transaction.atomic():
        row = PlanVersion.objects.select_for_update().select_related("plan").get(pk=version.pk)
        if row.is_locked:
            raise LockedVersionError(
                f"plan {row.plan.code} v{row.version} has rated segments since "
                f"{row.locked_at:%Y-%m-%d %H:%M} UTC and cannot change; add a new version from "
                "a later date, or correct it with a superseding version"
            )
        current = adapters.version_from_row(row)
        new_rates = dict(rates) if rates is not None else dict(current.rates)
        new_overrides = dict(overrides) if overrides is not None else dict(current.overrides)
        for name, value in fees.items():
            if name not in {
                "recording_storage_price",
                "monthly_platform_fee",
                "seat_fee",
                "tax_rate",
            }:
                raise BillingError(f"unknown plan version field {name!r}")
            setattr(row, name, value)
        check_plan_version(
            row.plan,
            version=row.version,
            valid_from=row.valid_from,
            rates=new_rates,
            overrides=new_overrides,
            discounts=current.discounts,
            recording_storage_price=row.recording_storage_price,
            monthly_platform_fee=row.monthly_platform_fee,
            seat_fee=row.seat_fee,
            tax_rate=row.tax_rate,
        )
        row.save()
        row.rates.all().delete()
        row.discounts.all().delete()
        _write_version_rows(row, new_rates, new_overrides, current.discounts)
        audit.record("billing.plan_version_updated", actor=actor, obj=row)
    return row


def do_correct_plan_version(
    version: PlanVersion, *, actor: User | None = None, **terms: Any
) -> PlanVersion:
    """Correct a used version: a new version with the same start supersedes it.

    Segments already rated with the old version are re-rated (reversal + new entry) when the
    period is next prepared (:func:`do_rerate_period`). Only the plan's latest live version can
    be corrected (the core orders versions by date *and* number).
    """
    live = adapters.live_versions(version.plan)
    if not live or live[-1].pk != version.pk:
        raise BillingError(
            f"only the latest version of plan {version.plan.code} can be corrected; "
            f"v{version.version} is followed by a later one"
        )
    current = adapters.version_from_row(version)
    merged: dict[str, Any] = {
        "rates": current.rates,
        "overrides": current.overrides,
        "discounts": current.discounts,
        "recording_storage_price": current.recording_storage_price,
        "monthly_platform_fee": current.monthly_platform_fee,
        "seat_fee": current.seat_fee,
        "tax_rate": current.tax_rate,
    }
    merged.update(terms)
    return do_add_plan_version(
        version.plan, valid_from=version.valid_from, actor=actor, _supersedes=version, **merged
    )


def do_assign_plan(
    tenant: Client, plan: RatePlan, *, seats: int = 0, actor: User | None = None
) -> BillingAccount:
    """Put a client company on ``plan``; its currency must be the company's."""
    if tenant.is_provider:
        raise BillingError("the provider itself is not billed")
    check_same_currency(
        tenant.currency, plan.currency, f"plan {plan.code} for client {tenant.schema_name}"
    )
    with transaction.atomic():
        account, _created = BillingAccount.objects.update_or_create(
            tenant=tenant, defaults={"plan": plan, "seats": seats}
        )
        audit.record(
            "billing.plan_assigned",
            actor=actor,
            tenant=tenant,
            obj=account,
            details={"plan": plan.code, "seats": seats},
        )
    return account


def _account(tenant: Client) -> BillingAccount:
    try:
        return BillingAccount.objects.select_related("plan").get(tenant=tenant)
    except BillingAccount.DoesNotExist:
        raise BillingError(
            f"client {tenant.schema_name} has no rate plan assigned; assign one first"
        ) from None


# -- the usage ledger --------------------------------------------------------------------------
@dataclass
class RecordResult:
    written: int = 0
    already_recorded: int = 0
    late: int = 0
    long_segments: int = 0


def _closed_periods(tenant: Client) -> set[date]:
    return set(
        Invoice.objects.filter(
            tenant=tenant, kind=Invoice.Kind.INVOICE, status__in=CLOSED_STATUSES
        ).values_list("period_start", flat=True)
    )


def _booking_period(origin: date, closed: set[date]) -> tuple[date, bool]:
    """The period a segment that started in ``origin`` is booked in, and whether it is late."""
    booked = origin
    while booked in closed:
        booked = adapters.next_month(booked)
    return booked, booked != origin


class _RatingVersions(dict):  # type: ignore[type-arg]
    """Version number -> the version as :func:`rate_segment` uses it in the ledger (built once:
    building a version compiles its pools)."""

    def __init__(self, book: PlanBook) -> None:
        super().__init__()
        self.book = book

    def __missing__(self, number: int) -> RatePlanVersion:
        version = next(v for v in self.book.versions if v.version == number)
        self[number] = adapters.ledger_rating_version(version)
        return self[number]


def _charge_entry(
    tenant: Client,
    seg: Segment,
    *,
    version_id: int,
    currency: str,
    disposition: str,
    billable_seconds: int,
    amount: Decimal,
    long_segment: bool,
    period_start: date,
    late: bool,
) -> LedgerEntry:
    """One unsaved charge for ``seg`` (both ledger writers and the re-rate build it here)."""
    return LedgerEntry(
        tenant=tenant,
        plan_version_id=version_id,
        entry_type=LedgerEntry.EntryType.CHARGE,
        call_id=seg.call_id,
        leg_uuid=seg.leg_uuid,
        kind=seg.kind.value,
        origin=seg.origin.value,
        start_ms=seg.start_ms,
        end_ms=seg.end_ms,
        answered=seg.answered,
        hangup_cause=seg.hangup_cause,
        agent=seg.agent or "",
        queue=seg.queue or "",
        disposition=disposition,
        billable_seconds=billable_seconds,
        amount=amount,
        currency=currency,
        period_start=period_start,
        late=late,
        long_segment=long_segment,
    )


def _entry(
    tenant: Client,
    seg: Segment,
    version_row: PlanVersion,
    core_version: RatePlanVersion,
    period_start: date,
    late: bool,
    rating: _RatingVersions,
) -> LedgerEntry:
    rated = rate_segment(seg, rating[core_version.version])
    return _charge_entry(
        tenant,
        seg,
        version_id=version_row.pk,
        currency=core_version.currency,
        disposition=rated.disposition.value,
        billable_seconds=rated.billable_seconds,
        amount=rated.amount,
        long_segment=rated.long_segment,
        period_start=period_start,
        late=late,
    )


def check_segments(tenant: Client, segments: Iterable[Segment]) -> list[Segment]:
    """Every item a core :class:`Segment` of ``tenant``, none twice (else a clear error)."""
    out: list[Segment] = []
    seen: set[tuple[str, str, int]] = set()
    for seg in segments:
        if not isinstance(seg, Segment):
            raise RatingError(f"expected a billing.rating.Segment, got {type(seg).__name__}")
        if seg.tenant_id != tenant.schema_name:
            raise TenantMismatchError(
                f"segment {seg.leg_uuid}/{seg.kind} belongs to tenant {seg.tenant_id!r}, "
                f"not {tenant.schema_name!r}"
            )
        key = (seg.leg_uuid.lower(), seg.kind.value, seg.start_ms)
        if key in seen:
            raise DuplicateSegmentError(
                f"duplicate segment in one batch: leg {seg.leg_uuid}, kind {seg.kind}, "
                f"start_ms {seg.start_ms} (call {seg.call_id})"
            )
        seen.add(key)
        out.append(seg)
    return out


def _check_legs_not_foreign(tenant: Client, segs: list[Segment], batch_size: int) -> None:
    """Refuse (before anything is written) a segment whose leg is in another tenant's ledger.

    The ledger's unique key (leg, kind, start, version, type) does not include the tenant while
    "already recorded" is looked up per tenant, so such a segment would otherwise fail with a
    raw IntegrityError half-way (or be booked twice across tenants under different plans).
    """
    for i in range(0, len(segs), batch_size):
        legs = {seg.leg_uuid for seg in segs[i : i + batch_size]}
        foreign = set(
            LedgerEntry.objects.filter(leg_uuid__in=legs)
            .exclude(tenant=tenant)
            .values_list("leg_uuid", flat=True)
            .distinct()
        )
        if foreign:
            seg = next(s for s in segs[i : i + batch_size] if s.leg_uuid in foreign)
            raise TenantMismatchError(
                f"segment {seg.leg_uuid}/{seg.kind} (call {seg.call_id}) of tenant "
                f"{tenant.schema_name!r}: leg {seg.leg_uuid} is already in the ledger under "
                "another tenant; nothing was recorded"
            )


class _MonthOf:
    """``adapters.month_of`` with the tenant's months cached as [start_ms, end_ms) ranges (a
    batch's segments fall in a handful of months; the time-zone conversion runs once each)."""

    def __init__(self, tenant: Client) -> None:
        self.tenant = tenant
        self.ranges: list[tuple[int, int, date]] = []

    def __call__(self, ms: int) -> date:
        for start_ms, end_ms, month in self.ranges:
            if start_ms <= ms < end_ms:
                return month
        month = adapters.month_of(self.tenant, ms)
        period = adapters.period_for(self.tenant, month)
        self.ranges.append((period.start_ms, period.end_ms, month))
        return month


#: The ledger's columns a staged row carries (tenant, currency, entry type and the creation time
#: are the same for the whole call and are added by the INSERT; ``period_start`` and ``late``
#: come from the row's ``origin`` month and the closed periods, read under the tenant's lock).
_STAGE_COLUMNS = (
    "plan_version_id",
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
    "disposition",
    "billable_seconds",
    "amount",
    "long_segment",
)
_STAGE_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS billing_ledger_staging (
    batch integer NOT NULL, origin_month date NOT NULL,
    plan_version_id bigint NOT NULL, call_id text NOT NULL, leg_uuid text NOT NULL,
    kind text NOT NULL, origin text NOT NULL, start_ms bigint NOT NULL, end_ms bigint NOT NULL,
    answered boolean NOT NULL, hangup_cause text NOT NULL, agent text NOT NULL,
    queue text NOT NULL, disposition text NOT NULL, billable_seconds bigint NOT NULL,
    amount numeric NOT NULL, long_segment boolean NOT NULL
)
"""
_STAGE_COPY = (
    "COPY billing_ledger_staging (batch, origin_month, "
    + ", ".join(_STAGE_COLUMNS)
    + ") FROM STDIN"
)
# LATERAL ... LIMIT 1: one index probe per staged row, whatever the planner thinks of the
# ledger's size (a plain EXISTS / NOT EXISTS can turn into a hash join over the whole ledger).
_STAGE_FOREIGN = """
SELECT s.leg_uuid, s.kind, s.call_id FROM billing_ledger_staging s
CROSS JOIN LATERAL (SELECT 1 FROM billing_ledgerentry e
                    WHERE e.leg_uuid = s.leg_uuid AND e.tenant_id <> %s LIMIT 1) foreign_leg
ORDER BY s.batch, s.start_ms LIMIT 1
"""
_STAGE_INSERT = f"""
WITH written AS (
    INSERT INTO billing_ledgerentry (
        tenant_id, entry_type, currency, created_at, period_start, late,
        {", ".join(_STAGE_COLUMNS)})
    SELECT %(tenant)s, 'charge', %(currency)s, %(now)s,
           COALESCE(m.booked, s.origin_month), m.booked IS NOT NULL,
           {", ".join("s." + c for c in _STAGE_COLUMNS)}
    FROM billing_ledger_staging s
    LEFT JOIN unnest(%(closed)s::date[], %(booked)s::date[]) AS m(origin_month, booked)
           ON m.origin_month = s.origin_month
    LEFT JOIN LATERAL (
        SELECT 1 AS hit FROM billing_ledgerentry e
        WHERE e.leg_uuid = s.leg_uuid AND e.kind = s.kind AND e.start_ms = s.start_ms
          AND e.tenant_id = %(tenant)s LIMIT 1) recorded ON true
    WHERE s.batch = %(batch)s AND recorded.hit IS NULL
    ON CONFLICT DO NOTHING
    RETURNING plan_version_id, late, long_segment
), locked AS (
    UPDATE billing_planversion v SET locked_at = %(now)s
    WHERE v.id IN (SELECT DISTINCT plan_version_id FROM written) AND v.locked_at IS NULL
    RETURNING v.id
)
SELECT count(*), count(*) FILTER (WHERE late), count(*) FILTER (WHERE long_segment),
       (SELECT count(*) FROM locked)
FROM written
"""
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(value: str) -> str:
    """A text value in COPY's text format (backslash, tab, newline and CR escaped)."""
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


@dataclass
class _Planned:
    """A validated, rated segment, waiting for its batch (booking depends on closed periods,
    which are read under the tenant's lock)."""

    seg: Segment
    origin: date
    version_id: int
    disposition: str
    billable_seconds: int
    amount: Decimal
    long_segment: bool


def do_record_segments(
    tenant: Client,
    segments: Iterable[Segment],
    *,
    batch_size: int = 5000,
    writer: str = "copy",
) -> RecordResult:
    """Rate ``segments`` and write one ledger entry each, idempotently.

    Everything is validated and rated before anything is written (bad input, a plan gap, a
    currency mismatch or a leg already in another tenant's ledger writes nothing). Entries are
    then written in batches, each in its own transaction under the tenant's lock; a segment
    already in the ledger (any version) is skipped, so rerunning after a crash half-way writes
    exactly the missing entries.

    ``writer="copy"`` (the default) streams the rated segments with ``COPY`` into a session
    temporary table, checks every leg against other tenants' entries in one query, then moves
    each batch with one ``INSERT ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT DO NOTHING``
    that also books late entries and locks the plan versions it used. ``writer="orm"`` is the
    earlier ``bulk_create`` path, kept as the reference the tests and the benchmark compare
    against.
    """
    if writer not in {"copy", "orm"}:
        raise ValueError(f"writer must be 'copy' or 'orm', got {writer!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    segs = check_segments(tenant, segments)
    account = _account(tenant)
    check_same_currency(
        tenant.currency,
        account.plan.currency,
        f"client {tenant.schema_name} is billed under plan {account.plan.code}",
    )
    book, rows = adapters.book_for_plan(account.plan)
    rating = _RatingVersions(book)
    month_of = _MonthOf(tenant)
    versions: dict[date, RatePlanVersion] = {}
    planned: list[_Planned] = []
    for seg in segs:
        origin = month_of(seg.start_ms)
        core_version = versions.get(origin)
        if core_version is None:
            core_version = versions[origin] = book.version_for(origin)  # PlanGapError
        rated = rate_segment(seg, rating[core_version.version])
        planned.append(
            _Planned(
                seg,
                origin,
                rows[core_version.version].pk,
                rated.disposition.value,
                rated.billable_seconds,
                rated.amount,
                rated.long_segment,
            )
        )
    del segs
    currency = account.plan.currency
    result = RecordResult()
    if writer == "orm":
        _check_legs_not_foreign(tenant, [p.seg for p in planned], batch_size)
        for i in range(0, len(planned), batch_size):
            with transaction.atomic():
                _lock_tenant(tenant)
                _write_batch_orm(
                    tenant, currency, planned[i : i + batch_size], _closed_periods(tenant), result
                )
        return result
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_DDL)
        try:
            _stage(cursor, tenant, planned, batch_size)
            for batch in range(-(-len(planned) // batch_size)):
                with transaction.atomic():
                    _lock_tenant(tenant)
                    _write_batch_copy(
                        cursor, tenant, currency, batch, _closed_periods(tenant), result
                    )
            result.already_recorded = len(planned) - result.written
        finally:
            try:
                cursor.execute("TRUNCATE billing_ledger_staging")
            except DatabaseError:
                pass  # the transaction failed already; its rollback empties the table too
    return result


def _stage(cursor: Any, tenant: Client, planned: list[_Planned], batch_size: int) -> None:
    """COPY the rated segments into the staging table; refuse legs of another tenant."""
    cursor.execute("TRUNCATE billing_ledger_staging")  # whatever a crashed call left behind
    with cursor.cursor.copy(_STAGE_COPY) as copy:  # psycopg's own cursor, same transaction
        for start in range(0, len(planned), batch_size):
            batch = start // batch_size
            lines = []
            for p in planned[start : start + batch_size]:
                seg = p.seg
                lines.append(
                    f"{batch}\t{p.origin.isoformat()}\t{p.version_id}\t"
                    f"{_copy_text(seg.call_id)}\t{_copy_text(seg.leg_uuid)}\t"
                    f"{seg.kind.value}\t{seg.origin.value}\t{seg.start_ms}\t{seg.end_ms}\t"
                    f"{'t' if seg.answered else 'f'}\t{_copy_text(seg.hangup_cause or '')}\t"
                    f"{_copy_text(seg.agent or '')}\t{_copy_text(seg.queue or '')}\t"
                    f"{p.disposition}\t{p.billable_seconds}\t{p.amount:f}\t"
                    f"{'t' if p.long_segment else 'f'}\n"
                )
            copy.write("".join(lines))
    cursor.execute(_STAGE_FOREIGN, [tenant.pk])
    foreign = cursor.fetchone()
    if foreign is not None:
        leg, kind, call = foreign
        raise TenantMismatchError(
            f"segment {leg}/{kind} (call {call}) of tenant {tenant.schema_name!r}: leg {leg} is "
            "already in the ledger under another tenant; nothing was recorded"
        )


def _write_batch_copy(
    cursor: Any,
    tenant: Client,
    currency: str,
    batch: int,
    closed: set[date],
    result: RecordResult,
) -> None:
    """Move one staged batch into the ledger (inside the caller's transaction and lock)."""
    moved = {month: _booking_period(month, closed)[0] for month in closed}
    cursor.execute(
        _STAGE_INSERT,
        {
            "tenant": tenant.pk,
            "currency": currency,
            "now": timezone.now(),
            "batch": batch,
            "closed": list(moved),
            "booked": list(moved.values()),
        },
    )
    written, late, long_segments, _locked = cursor.fetchone()
    result.written += written
    result.late += late
    result.long_segments += long_segments


def _write_batch_orm(
    tenant: Client,
    currency: str,
    batch: list[_Planned],
    closed: set[date],
    result: RecordResult,
) -> None:
    """The earlier path: look up what is recorded, then ``bulk_create`` the rest."""
    legs = {p.seg.leg_uuid for p in batch}
    existing = set(
        LedgerEntry.objects.filter(tenant=tenant, leg_uuid__in=legs).values_list(
            "leg_uuid", "kind", "start_ms"
        )
    )
    entries = []
    for p in batch:
        seg = p.seg
        if (seg.leg_uuid, seg.kind.value, seg.start_ms) in existing:
            result.already_recorded += 1
            continue
        booked, late = _booking_period(p.origin, closed)
        entries.append(
            _charge_entry(
                tenant,
                seg,
                version_id=p.version_id,
                currency=currency,
                disposition=p.disposition,
                billable_seconds=p.billable_seconds,
                amount=p.amount,
                long_segment=p.long_segment,
                period_start=booked,
                late=late,
            )
        )
        result.late += late
        result.long_segments += p.long_segment
    if entries:
        used = {e.plan_version_id for e in entries}
        PlanVersion.objects.filter(pk__in=used, locked_at__isnull=True).update(
            locked_at=timezone.now()
        )
        LedgerEntry.objects.bulk_create(entries)
    result.written += len(entries)


def _live_charges(tenant: Client, period_start: date, *, late: bool | None = None):  # type: ignore[no-untyped-def]
    qs = LedgerEntry.objects.filter(
        tenant=tenant,
        period_start=period_start,
        entry_type=LedgerEntry.EntryType.CHARGE,
        reversed_by__isnull=True,
    )
    if late is not None:
        qs = qs.filter(late=late)
    return qs


RERATE_CHUNK = 2000


def _rerate_candidates(  # type: ignore[no-untyped-def]
    tenant: Client, period_start: date, book: PlanBook, rows: Mapping[int, PlanVersion]
):
    """Pks of the period's live charges to re-rate, streamed (never the whole period at once).

    First those under a version that is no longer live (found in SQL), then those under a live
    version other than the one in force for the month they started in, each group in ledger
    order; only ``(pk, plan_version_id, start_ms)`` is read for the second check.
    """
    live_pks = {r.pk for r in rows.values()}
    stale = _live_charges(tenant, period_start).exclude(plan_version__in=live_pks)
    if stale.exists():
        yield from (
            stale.order_by("start_ms", "id")
            .values_list("pk", flat=True)
            .iterator(chunk_size=RERATE_CHUNK)
        )
    # A charge under a live version may still be under the wrong one if versions moved;
    # compare each with the version in force for the month it started in.
    in_force: dict[date, int] = {}
    for pk, version_id, start_ms in (
        _live_charges(tenant, period_start)
        .filter(plan_version__in=live_pks)
        .order_by("start_ms", "id")
        .values_list("pk", "plan_version_id", "start_ms")
        .iterator(chunk_size=RERATE_CHUNK)
    ):
        month = adapters.month_of(tenant, start_ms)
        if month not in in_force:
            in_force[month] = rows[book.version_for(month).version].pk
        if in_force[month] != version_id:
            yield pk


def _rerate_entries(
    tenant: Client,
    pks: list[int],
    book: PlanBook,
    rows: Mapping[int, PlanVersion],
    rating: _RatingVersions,
) -> list[LedgerEntry]:
    """Reverse the charges ``pks`` (in that order); return their new charges (unsaved)."""
    olds = LedgerEntry.objects.in_bulk(pks)
    reversals: list[LedgerEntry] = []
    new_entries: list[LedgerEntry] = []
    for pk in pks:
        old = olds[pk]
        reversals.append(
            LedgerEntry(
                tenant=tenant,
                plan_version_id=old.plan_version_id,
                entry_type=LedgerEntry.EntryType.REVERSAL,
                reverses=old,
                call_id=old.call_id,
                leg_uuid=old.leg_uuid,
                kind=old.kind,
                origin=old.origin,
                start_ms=old.start_ms,
                end_ms=old.end_ms,
                answered=old.answered,
                hangup_cause=old.hangup_cause,
                agent=old.agent,
                queue=old.queue,
                disposition=old.disposition,
                billable_seconds=-old.billable_seconds,
                amount=-old.amount,
                currency=old.currency,
                period_start=old.period_start,
                late=old.late,
                long_segment=old.long_segment,
            )
        )
        core_version = book.version_for(adapters.month_of(tenant, old.start_ms))
        seg = adapters.segment_from_entry(old, tenant.schema_name)
        new_entries.append(
            _entry(
                tenant,
                seg,
                rows[core_version.version],
                core_version,
                old.period_start,
                old.late,
                rating,
            )
        )
    LedgerEntry.objects.bulk_create(reversals)
    return new_entries


def do_rerate_period(tenant: Client, period_start: date) -> int:
    """Re-rate an open period's entries whose plan version is no longer the one in force.

    Each such charge gets a reversing entry and a new charge under the current version (the
    ledger never changes in place). Returns the number of segments re-rated.

    Memory does not grow with the period: candidates are found in SQL / from a streamed
    ``(pk, version, start)`` scan and re-rated :data:`RERATE_CHUNK` at a time (for each chunk,
    its reversals, then its new charges).
    """
    account = _account(tenant)
    book, rows = adapters.book_for_plan(account.plan)
    rating = _RatingVersions(book)
    count = 0
    with transaction.atomic():
        _lock_tenant(tenant)
        if period_start in _closed_periods(tenant):
            raise BillingError(
                f"period {period_start:%Y-%m} of {tenant.schema_name} is closed; "
                "correct it with a credit note"
            )
        used: set[int] = set()
        chunk: list[int] = []

        def flush() -> None:
            new_entries = _rerate_entries(tenant, chunk, book, rows, rating)
            used.update(e.plan_version_id for e in new_entries)
            LedgerEntry.objects.bulk_create(new_entries)
            chunk.clear()

        for pk in _rerate_candidates(tenant, period_start, book, rows):
            chunk.append(pk)
            count += 1
            if len(chunk) >= RERATE_CHUNK:
                flush()
        if chunk:
            flush()
        if used:
            PlanVersion.objects.filter(pk__in=used, locked_at__isnull=True).update(
                locked_at=timezone.now()
            )
    return count


# -- invoices ----------------------------------------------------------------------------------
@dataclass
class ComputedLine:
    code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    exact_amount: Decimal
    amount: Decimal
    kind: str = ""
    origins: list[str] = field(default_factory=list)
    late: bool = False
    billable_seconds: int = 0


@dataclass
class ComputedInvoice:
    tenant: Client
    period_start: date
    period_end: date
    currency: str
    plan_version: PlanVersion
    tax_rate: Decimal
    lines: list[ComputedLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def _quantize(amount: Decimal, currency: str) -> tuple[Decimal, int]:
    """A 6-place amount rounded once to the currency's minor unit, by the core's rule."""
    exp = currency_exponent(currency)
    minor = micros_to_minor(to_micros(amount, "amount", allow_negative=True), exp)
    return minor_to_decimal(minor, exp), minor


def _tax(subtotal_minor: int, tax_rate: Decimal, currency: str) -> Decimal:
    """Tax on a rounded subtotal: the same rule as :func:`billing.rating.price_usage`."""
    exp = currency_exponent(currency)
    micros = div_round_half_up(
        subtotal_minor * 10 ** (6 - exp) * to_micros(tax_rate, "tax_rate"), 10**6
    )
    return minor_to_decimal(micros_to_minor(micros, exp), exp)


def _line_origins(code: str, version: RatePlanVersion) -> tuple[str, list[str]]:
    parts = code.split(":")
    if len(parts) < 2 or parts[0] not in {"usage", "included", "connect", "attempt"}:
        return "", []
    kind = parts[1]
    if len(parts) > 2 and parts[2] in {o.value for o in Origin}:
        return kind, [parts[2]]
    return kind, [o.value for o in Origin if (kind, o) not in version.overrides]


#: Ledger rows fetched per round trip while pricing a period (a server-side cursor): what
#: compute_invoice holds at a time, whatever the tenant's ledger size.
COMPUTE_CHUNK = 2000


def compute_invoice(tenant: Client, period_start: date) -> ComputedInvoice:
    """Price a tenant's period from its ledger with the core (read-only).

    On-time usage is streamed from the database into :func:`rate_period` (included minutes,
    tiers, fees, discounts, tax). Late usage (segments of already-closed periods, booked here)
    is added as ``late:`` lines at its ledger list amounts: the closed period's allowances and
    tiers are not reopened, and discounts do not apply to it. Tax is then worked out on the
    whole subtotal with the core's rule.
    """
    account = _account(tenant)
    check_same_currency(
        tenant.currency, account.plan.currency, f"client {tenant.schema_name} on {account.plan}"
    )
    book, rows = adapters.book_for_plan(account.plan)
    period = adapters.period_for(tenant, period_start)
    version = book.version_for(period.start)
    ledger_rows = (
        _live_charges(tenant, period_start, late=False)
        .order_by()
        .values_list(*adapters.SEGMENT_FIELDS)
        .iterator(chunk_size=COMPUTE_CHUNK)
    )
    result = rate_period(
        adapters.segments_from_rows(ledger_rows, tenant.schema_name),
        book,
        period,
        seats=account.seats,
        currency=tenant.currency,
        check_duplicates=False,  # the ledger's unique constraint guarantees it
    )
    lines: list[ComputedLine] = []
    for line in result.lines:
        kind, origins = _line_origins(line.code, version)
        lines.append(
            ComputedLine(
                line.code,
                line.description,
                line.quantity,
                line.unit,
                line.unit_price,
                line.exact_amount,
                line.amount,
                kind,
                origins,
                False,
                line.billable_seconds,
            )
        )
    late: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), 0])
    for kind, origin, seconds, amount in _live_charges(tenant, period_start, late=True).values_list(
        "kind", "origin", "billable_seconds", "amount"
    ):
        acc = late[(kind, origin)]
        acc[0] += seconds
        acc[1] += amount
        acc[2] += 1
    subtotal_minor = int(result.subtotal.scaleb(currency_exponent(tenant.currency)))
    for (kind, origin), (seconds, amount, count) in sorted(late.items()):
        rounded, minor = _quantize(amount, tenant.currency)
        subtotal_minor += minor
        lines.append(
            ComputedLine(
                f"late:{kind}:{origin}",
                f"{kind} ({origin}): late usage from closed periods, {count} segments",
                Decimal(seconds) / 60,
                "min",
                Decimal(0),
                amount,
                rounded,
                kind,
                [origin],
                True,
                seconds,
            )
        )
    exp = currency_exponent(tenant.currency)
    if late:
        subtotal = minor_to_decimal(subtotal_minor, exp)
        tax = _tax(subtotal_minor, version.tax_rate, tenant.currency)
    else:
        subtotal, tax = result.subtotal, result.tax
    return ComputedInvoice(
        tenant=tenant,
        period_start=period.start,
        period_end=period.end,
        currency=tenant.currency,
        plan_version=rows[version.version],
        tax_rate=version.tax_rate,
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
    )


def _write_lines(invoice: Invoice, computed: ComputedInvoice) -> None:
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=i,
            code=line.code,
            description=line.description[:300],
            quantity=line.quantity.quantize(Decimal("0.0001")),
            unit=line.unit,
            unit_price=line.unit_price,
            exact_amount=line.exact_amount,
            amount=line.amount,
            kind=line.kind,
            origins=line.origins,
            late=line.late,
            billable_seconds=line.billable_seconds,
        )
        for i, line in enumerate(computed.lines, start=1)
    )


def do_prepare_invoice(tenant: Client, period_start: date, *, actor: User | None = None) -> Invoice:
    """Create or refresh the tenant's draft invoice for a period (one transaction).

    Re-rates entries of superseded plan versions first. A period that already has a finalized
    or paid invoice is returned untouched.
    """
    with transaction.atomic():
        _lock_tenant(tenant)
        existing = (
            Invoice.objects.select_for_update()
            .filter(tenant=tenant, kind=Invoice.Kind.INVOICE, period_start=period_start)
            .exclude(status=Invoice.Status.VOID)
            .first()
        )
        if existing is not None and not existing.is_draft:
            return existing
        do_rerate_period(tenant, period_start)
        computed = compute_invoice(tenant, period_start)
        invoice = existing or Invoice(
            tenant=tenant, kind=Invoice.Kind.INVOICE, series=INVOICE_SERIES
        )
        invoice.period_start = computed.period_start
        invoice.period_end = computed.period_end
        invoice.currency = computed.currency
        invoice.language = tenant.language
        invoice.plan_version = computed.plan_version
        invoice.tax_rate = computed.tax_rate
        invoice.subtotal_amount = computed.subtotal
        invoice.tax_amount = computed.tax
        invoice.total_amount = computed.total
        invoice.save()
        _write_lines(invoice, computed)
        audit.record(
            "billing.invoice_prepared",
            actor=actor,
            tenant=tenant,
            obj=invoice,
            details={"period": period_start.isoformat(), "total": str(computed.total)},
        )
    return invoice


@dataclass
class RunOutcome:
    tenant: Client
    invoice: Invoice | None = None
    error: str = ""


def billable_tenants() -> list[Client]:
    return list(
        Client.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .filter(billing__isnull=False)
        .order_by("name")
    )


def do_run_period(period_start: date, *, actor: User | None = None) -> list[RunOutcome]:
    """Prepare the draft invoice of every billed client for a period.

    One transaction per invoice: a failure (a plan gap, a currency mismatch) is reported for
    that client and the others go on; a crash half-way is resumed by running again (drafts
    are refreshed, never duplicated: one live invoice per client and period is a constraint).
    """
    outcomes = []
    for tenant in billable_tenants():
        try:
            outcomes.append(
                RunOutcome(tenant, do_prepare_invoice(tenant, period_start, actor=actor))
            )
        except (RatingError, BillingError) as exc:
            outcomes.append(RunOutcome(tenant, None, str(exc)))
    audit.record(
        "billing.period_run",
        actor=actor,
        details={
            "period": period_start.isoformat(),
            "invoices": sum(1 for o in outcomes if o.invoice),
            "errors": {o.tenant.schema_name: o.error for o in outcomes if o.error},
        },
    )
    return outcomes


def _next_number(series: str, year: int) -> int:
    """Take the next number of a series (call inside the issuing transaction)."""
    InvoiceCounter.objects.get_or_create(series=series, year=year)
    counter = InvoiceCounter.objects.select_for_update().get(series=series, year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def provider_details() -> dict[str, str]:
    profile = ProviderProfile.objects.order_by("pk").first()
    if profile is not None:
        return {
            "legal_name": profile.legal_name,
            "legal_address": profile.legal_address,
            "tax_id": profile.tax_id,
            "registration_number": profile.registration_number,
            "email": profile.email,
            "bank_name": profile.bank_name,
            "iban": profile.iban,
            "swift": profile.swift,
        }
    public = Client.objects.get(schema_name=settings.PUBLIC_SCHEMA_NAME)
    return {
        "legal_name": public.legal_name or public.name,
        "legal_address": public.legal_address,
        "tax_id": public.tax_id,
        "registration_number": public.registration_number,
        "email": public.billing_email,
        "bank_name": "",
        "iban": "",
        "swift": "",
    }


def client_details(tenant: Client) -> dict[str, str]:
    return {
        "name": tenant.name,
        "legal_name": tenant.legal_name or tenant.name,
        "legal_address": tenant.legal_address,
        "tax_id": tenant.tax_id,
        "registration_number": tenant.registration_number,
        "email": tenant.billing_email,
    }


def _local_today(tenant: Client) -> date:
    return timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date()


def _issue(invoice: Invoice, series: str, issue_date: date, terms_days: int) -> None:
    """Number, snapshot and freeze an invoice in one UPDATE (inside the caller's transaction)."""
    invoice.year = issue_date.year
    invoice.number = _next_number(series, issue_date.year)
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=terms_days)
    invoice.provider_details = provider_details()
    invoice.client_details = client_details(invoice.tenant)
    invoice.status = Invoice.Status.FINALIZED
    invoice.finalized_at = timezone.now()


_FINAL_FIELDS = [
    "year",
    "number",
    "issue_date",
    "due_date",
    "provider_details",
    "client_details",
    "status",
    "finalized_at",
    "updated_at",
]


def do_finalize_invoice(
    invoice: Invoice,
    *,
    actor: User | None = None,
    request: HttpRequest | None = None,
    issue_date: date | None = None,
) -> Invoice:
    """Recompute a draft from the ledger, number it and freeze it (one transaction).

    The period is closed from then on: later segments of it are booked into the next open
    period, marked late. The PDF is rendered by a job after commit.
    """
    tenant = invoice.tenant
    with transaction.atomic():
        _lock_tenant(tenant)
        invoice = Invoice.objects.select_for_update().select_related("tenant").get(pk=invoice.pk)
        if not invoice.is_draft:
            raise InvoiceStateError(
                f"invoice {invoice.display_number} is {invoice.status}, only drafts can be "
                "finalized"
            )
        invoice = do_prepare_invoice(tenant, invoice.period_start, actor=actor)
        account = _account(tenant)
        _issue(
            invoice, INVOICE_SERIES, issue_date or _local_today(tenant), account.payment_terms_days
        )
        invoice.save(update_fields=_FINAL_FIELDS)
        audit.record(
            "billing.invoice_finalized",
            actor=actor,
            request=request,
            tenant=tenant,
            obj=invoice,
            details={"number": invoice.display_number, "total": str(invoice.total_amount)},
        )
        from billing import tasks

        defer_on_commit(tasks.render_invoice_pdf_task, invoice_id=invoice.pk)
        if settings.STRIPE_SECRET_KEY:
            defer_on_commit(tasks.push_invoice_to_stripe_task, invoice_id=invoice.pk)
    return invoice


def _transition(
    invoice: Invoice, *, to: str, allowed_from: tuple[str, ...], stamp: str, **extra: Any
) -> bool:
    """Conditional UPDATE: change status only from an allowed one; False if it wasn't."""
    changed = Invoice.objects.filter(pk=invoice.pk, status__in=allowed_from).update(
        status=to, updated_at=timezone.now(), **{stamp: timezone.now()}, **extra
    )
    return bool(changed)


def do_mark_paid(
    invoice: Invoice, *, actor: User | None = None, source: str = "manual", **extra: Any
) -> bool:
    """finalized -> paid. Returns False (and changes nothing) if it was not finalized."""
    with transaction.atomic():
        if not _transition(
            invoice,
            to=Invoice.Status.PAID,
            allowed_from=(Invoice.Status.FINALIZED,),
            stamp="paid_at",
            **extra,
        ):
            return False
        invoice.refresh_from_db()
        audit.record(
            "billing.invoice_paid",
            actor=actor,
            tenant=invoice.tenant,
            obj=invoice,
            details={"source": source},
        )
    return True


def do_void_invoice(invoice: Invoice, *, reason: str, actor: User | None = None) -> None:
    """finalized -> void (the number stays used; the period reopens for a new invoice)."""
    if not reason.strip():
        raise BillingError("say why the invoice is voided")
    with transaction.atomic():
        if not _transition(
            invoice,
            to=Invoice.Status.VOID,
            allowed_from=(Invoice.Status.FINALIZED,),
            stamp="voided_at",
        ):
            raise InvoiceStateError(
                f"only a finalized, unpaid invoice can be voided ({invoice.display_number} "
                f"is {Invoice.objects.get(pk=invoice.pk).status}); issue a credit note"
            )
        invoice.refresh_from_db()
        audit.record(
            "billing.invoice_voided",
            actor=actor,
            tenant=invoice.tenant,
            obj=invoice,
            details={"reason": reason},
        )


def do_issue_credit_note(
    invoice: Invoice,
    *,
    reason: str,
    amount: Decimal | None = None,
    actor: User | None = None,
    issue_date: date | None = None,
) -> Invoice:
    """A finalized credit note against a finalized or paid invoice.

    Without ``amount`` it credits every line; with it, one line of ``-amount`` (net of tax)
    plus its tax. What all credit notes take back never exceeds the invoice's total.
    """
    if not reason.strip():
        raise BillingError("a credit note needs a reason")
    with transaction.atomic():
        _lock_tenant(invoice.tenant)
        invoice = Invoice.objects.select_for_update().select_related("tenant").get(pk=invoice.pk)
        if invoice.kind != Invoice.Kind.INVOICE or invoice.status not in CLOSED_STATUSES:
            raise InvoiceStateError(
                f"credit notes are issued against finalized or paid invoices; "
                f"{invoice.display_number} is a {invoice.kind} in status {invoice.status}"
            )
        exp = currency_exponent(invoice.currency)
        if amount is None:
            lines = [
                (ln.code, ln.description, ln.quantity, ln.unit, ln.unit_price, -ln.amount)
                for ln in invoice.lines.all()
            ]
            subtotal, tax = -invoice.subtotal_amount, -invoice.tax_amount
        else:
            rounded, minor = _quantize(Decimal(amount), invoice.currency)
            if minor <= 0 or rounded != amount:
                raise BillingError(
                    f"credit amount must be positive with at most {exp} decimals, got {amount}"
                )
            lines = [("credit", reason[:300], Decimal(1), "credit", -rounded, -rounded)]
            subtotal, tax = -rounded, -_tax(minor, invoice.tax_rate, invoice.currency)
        credited = sum(
            (cn.total_amount for cn in invoice.credit_notes.all()), Decimal(0)
        )  # negative
        if invoice.total_amount + credited + subtotal + tax < 0:
            raise BillingError(
                f"credit notes would take back more than invoice {invoice.display_number}'s "
                f"total {invoice.total_amount} ({-credited} already credited)"
            )
        note = Invoice.objects.create(
            tenant=invoice.tenant,
            kind=Invoice.Kind.CREDIT_NOTE,
            series=CREDIT_NOTE_SERIES,
            credited_invoice=invoice,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            currency=invoice.currency,
            language=invoice.language,
            plan_version=invoice.plan_version,
            tax_rate=invoice.tax_rate,
            subtotal_amount=subtotal,
            tax_amount=tax,
            total_amount=subtotal + tax,
            reason=reason,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=note,
                position=i,
                code=code,
                description=desc,
                quantity=qty,
                unit=unit,
                unit_price=price,
                exact_amount=amt,
                amount=amt,
            )
            for i, (code, desc, qty, unit, price, amt) in enumerate(lines, start=1)
        )
        _issue(note, CREDIT_NOTE_SERIES, issue_date or _local_today(invoice.tenant), 0)
        note.save(update_fields=_FINAL_FIELDS)
        audit.record(
            "billing.credit_note_issued",
            actor=actor,
            tenant=invoice.tenant,
            obj=note,
            details={"invoice": invoice.display_number, "total": str(note.total_amount)},
        )
        from billing import tasks

        defer_on_commit(tasks.render_invoice_pdf_task, invoice_id=note.pk)
        if settings.STRIPE_SECRET_KEY:
            defer_on_commit(tasks.push_invoice_to_stripe_task, invoice_id=note.pk)
    return note


def line_entries(line: InvoiceLine):  # type: ignore[no-untyped-def]
    """The ledger entries (live charges) that make up an invoice line: its drill-down."""
    invoice = line.invoice
    if not line.kind:
        return LedgerEntry.objects.none()
    return (
        _live_charges(invoice.tenant, invoice.period_start, late=line.late)
        .filter(kind=line.kind, origin__in=line.origins)
        .order_by("start_ms", "id")
    )


def invoice_key(invoice: Invoice) -> str:
    """A stable idempotency key for pushing ``invoice`` anywhere (Stripe)."""
    return hashlib.sha256(
        f"ccp-invoice-{invoice.pk}-{invoice.display_number}".encode()
    ).hexdigest()[:32]
