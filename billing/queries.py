"""Read-only billing queries for a client company's own view (the portal and its API).

Everything is scoped to one tenant by the caller passing it in; nothing here takes an id
without the tenant. Drafts are never client-visible: only issued documents (finalized or
paid invoices and credit notes) are.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, QuerySet, Sum

from billing.adapters import next_month
from billing.models import Invoice, LedgerEntry
from tenants.models import Client

#: Invoice statuses a client company sees (drafts are the provider's work in progress).
CLIENT_VISIBLE_STATUSES = (Invoice.Status.FINALIZED, Invoice.Status.PAID)

#: The longest usage range one request may ask for, in months.
MAX_USAGE_MONTHS = 24


class QueryError(ValueError):
    """A bad query parameter; the message is safe to show the client."""


def client_invoices(tenant: Client) -> QuerySet[Invoice]:
    """The tenant's issued invoices and credit notes, newest period first."""
    return (
        Invoice.objects.filter(tenant=tenant, status__in=CLIENT_VISIBLE_STATUSES)
        .select_related("credited_invoice")
        .order_by("-period_start", "-issue_date", "-id")
    )


def client_invoice(tenant: Client, invoice_id: int) -> Invoice | None:
    """One of the tenant's issued invoices, or None (another tenant's or a draft alike)."""
    return client_invoices(tenant).filter(pk=invoice_id).first()


def previous_month(today: date) -> date:
    """The first day of the calendar month before ``today``'s."""
    return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)


def parse_month(value: str, name: str) -> date:
    """``YYYY-MM`` -> the first day of that month, or :class:`QueryError`."""
    try:
        year_s, month_s = value.split("-")
        if len(year_s) != 4 or len(month_s) != 2:
            raise ValueError
        return date(int(year_s), int(month_s), 1)
    except ValueError:
        raise QueryError(f"{name} must be a month as YYYY-MM, got {value[:20]!r}") from None


def month_range(raw_from: str | None, raw_to: str | None, default: date) -> tuple[date, date]:
    """Validate a ``from``/``to`` month range (inclusive); either defaults to ``default``."""
    start = parse_month(raw_from, "from") if raw_from else default
    end = parse_month(raw_to, "to") if raw_to else (start if raw_from else default)
    if end < start:
        raise QueryError("'to' must not be before 'from'")
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if months > MAX_USAGE_MONTHS:
        raise QueryError(f"at most {MAX_USAGE_MONTHS} months at a time")
    return start, end


def usage_entries(tenant: Client, first: date, last: date) -> QuerySet[LedgerEntry]:
    """The tenant's live charges (not reversed) booked in periods ``first``..``last``."""
    return (
        LedgerEntry.objects.filter(
            tenant=tenant,
            period_start__gte=first,
            period_start__lt=next_month(last),
            entry_type=LedgerEntry.EntryType.CHARGE,
            reversed_by__isnull=True,
        )
        .select_related("tenant", "plan_version__plan")
        .order_by("start_ms", "id")
    )


def usage_summary(tenant: Client, first: date, last: date) -> list[dict[str, object]]:
    """Per segment kind: segments, calls, billable seconds and list amount (net of reversals).

    List amounts are per-segment prices before included minutes, tiers and discounts: the
    invoice is what is owed.
    """
    live = Q(entry_type=LedgerEntry.EntryType.CHARGE, reversed_by__isnull=True)
    rows = (
        LedgerEntry.objects.filter(
            tenant=tenant, period_start__gte=first, period_start__lt=next_month(last)
        )
        .values("kind")
        .annotate(
            segments=Count("id", filter=live),
            calls=Count("call_id", distinct=True),
            billable_seconds=Sum("billable_seconds"),
            amount=Sum("amount"),
        )
        .order_by("kind")
    )
    return [
        {
            "kind": row["kind"],
            "segments": row["segments"],
            "calls": row["calls"],
            "billable_seconds": row["billable_seconds"] or 0,
            "amount": row["amount"],
        }
        for row in rows
    ]
