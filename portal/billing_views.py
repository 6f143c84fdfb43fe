"""A client company's own billing: its issued invoices and its usage (pages and a JSON API).

Tenant-scoped throughout: every query takes ``request.tenant`` (:mod:`billing.queries`), so
another company's invoice id answers the same 404 as a missing one. Drafts are never shown.
Client admins and viewers may both look (read-only: nothing here changes the books).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, Page, Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone

from billing import exports, queries, tasks
from billing.models import Invoice, InvoiceLine, InvoicePdf, LedgerEntry
from billing.rating import currency_exponent
from ccplatform.jobs import defer_on_commit
from tenants.access import access_client_site
from tenants.models import Client

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
USAGE_PAGE_SIZE = 100


class BadRequest(Exception):
    """A bad query parameter; answered 400 with the message."""


def _access(request: HttpRequest) -> Client:
    """Client admins and viewers of this site's company; only safe methods (read-only)."""
    access_client_site(request)
    if request.method not in ("GET", "HEAD"):
        raise _MethodNotAllowed
    return request.tenant  # type: ignore[attr-defined,no-any-return]


class _MethodNotAllowed(Exception):
    pass


def _guarded(json: bool):  # type: ignore[no-untyped-def]
    """Turn :class:`BadRequest` into 400 (JSON or text) and unsafe methods into 405."""

    def decorator(view):  # type: ignore[no-untyped-def]
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)  # type: ignore[no-any-return]
            except _MethodNotAllowed:
                return HttpResponseNotAllowed(["GET", "HEAD"])
            except (BadRequest, queries.QueryError) as exc:
                if json:
                    return JsonResponse({"error": str(exc)}, status=400)
                return render(request, "portal/billing_error.html", {"error": str(exc)}, status=400)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return login_required(wrapped)

    return decorator


def _default_month(tenant: Client) -> date:
    """The previous calendar month in the tenant's time zone (the last one invoiced)."""
    return queries.previous_month(timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date())


def _positive_int(request: HttpRequest, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a positive whole number, got {raw[:20]!r}") from None
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" between 1 and {maximum}" if maximum is not None else " positive"
        raise BadRequest(f"{name} must be{limit}, got {value}")
    return value


def _page(request: HttpRequest, items: Any, default_size: int) -> Page:
    number = _positive_int(request, "page", 1)
    size = _positive_int(request, "page_size", default_size, MAX_PAGE_SIZE)
    try:
        return Paginator(items, size).page(number)
    except EmptyPage:
        raise BadRequest(f"page {number} is out of range") from None


def _pagination(page: Page) -> dict[str, Any]:
    return {
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "page_size": page.paginator.per_page,
        "next": page.next_page_number() if page.has_next() else None,
        "previous": page.previous_page_number() if page.has_previous() else None,
    }


def _money(amount: Decimal, currency: str) -> str:
    """An invoice amount with exactly the currency's decimals, as a string."""
    return format(Decimal(amount).quantize(Decimal(1).scaleb(-currency_exponent(currency))), "f")


def _plain(amount: Decimal | None) -> str:
    return format(Decimal(amount or 0).normalize(), "f") if amount else "0"


def _invoice_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "number": invoice.display_number,
        "kind": invoice.kind,
        "status": invoice.status,
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "currency": invoice.currency,
        "subtotal": _money(invoice.subtotal_amount, invoice.currency),
        "tax_rate": format(invoice.tax_rate.normalize(), "f"),
        "tax": _money(invoice.tax_amount, invoice.currency),
        "total": _money(invoice.total_amount, invoice.currency),
        "credited_invoice": invoice.credited_invoice_id,
        "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
    }


def _line_json(line: InvoiceLine, currency: str) -> dict[str, Any]:
    return {
        "position": line.position,
        "code": line.code,
        "description": line.description,
        "quantity": line.quantity_display,
        "unit": line.unit,
        "unit_price": line.unit_price_display,
        "amount": _money(line.amount, currency),
        "kind": line.kind,
        "late": line.late,
        "billable_seconds": line.billable_seconds,
    }


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "call_id": entry.call_id,
        "leg_uuid": entry.leg_uuid,
        "kind": entry.kind,
        "origin": entry.origin,
        "start": entry.start_utc.isoformat().replace("+00:00", "Z"),
        "duration_ms": entry.duration_ms,
        "billable_seconds": entry.billable_seconds,
        "amount": _plain(entry.amount),
        "currency": entry.currency,
        "period_start": entry.period_start.isoformat(),
        "late": entry.late,
        "agent": entry.agent,
        "queue": entry.queue,
    }


def _invoice_or_404(tenant: Client, invoice_id: int) -> Invoice:
    invoice = queries.client_invoice(tenant, invoice_id)
    if invoice is None:
        raise Http404
    return invoice


def _usage_range(request: HttpRequest, tenant: Client) -> tuple[date, date]:
    return queries.month_range(
        request.GET.get("from"), request.GET.get("to"), _default_month(tenant)
    )


def _summary_json(tenant: Client, first: date, last: date) -> list[dict[str, Any]]:
    return [
        {**row, "amount": _plain(row["amount"])}  # type: ignore[arg-type]
        for row in queries.usage_summary(tenant, first, last)
    ]


# -- JSON API --------------------------------------------------------------------------------
@_guarded(json=True)
def api_invoices(request: HttpRequest) -> HttpResponse:
    """``GET /api/billing/invoices/?page=&page_size=``: the company's issued invoices."""
    tenant = _access(request)
    page = _page(request, queries.client_invoices(tenant), PAGE_SIZE)
    return JsonResponse(
        {"results": [_invoice_json(inv) for inv in page.object_list], **_pagination(page)}
    )


@_guarded(json=True)
def api_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """``GET /api/billing/invoices/<id>/``: one issued invoice with its lines."""
    tenant = _access(request)
    invoice = _invoice_or_404(tenant, invoice_id)
    return JsonResponse(
        {
            **_invoice_json(invoice),
            "lines": [_line_json(line, invoice.currency) for line in invoice.lines.all()],
            "has_pdf": InvoicePdf.objects.filter(invoice=invoice).exists(),
        }
    )


@_guarded(json=True)
def api_usage(request: HttpRequest) -> HttpResponse:
    """``GET /api/billing/usage/?from=YYYY-MM&to=YYYY-MM&page=``: per-kind summary and calls.

    Months are billing periods (inclusive); both default to the previous month. Amounts are
    list amounts per segment (before included minutes, tiers, discounts and tax).
    """
    tenant = _access(request)
    first, last = _usage_range(request, tenant)
    page = _page(request, queries.usage_entries(tenant, first, last), USAGE_PAGE_SIZE)
    return JsonResponse(
        {
            "from": f"{first:%Y-%m}",
            "to": f"{last:%Y-%m}",
            "currency": tenant.currency,
            "summary": _summary_json(tenant, first, last),
            "results": [_entry_json(e) for e in page.object_list],
            **_pagination(page),
        }
    )


# -- pages -----------------------------------------------------------------------------------
@_guarded(json=False)
def invoice_list(request: HttpRequest) -> HttpResponse:
    tenant = _access(request)
    page = _page(request, queries.client_invoices(tenant), PAGE_SIZE)
    return render(request, "portal/billing_invoices.html", {"page": page})


@_guarded(json=False)
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    tenant = _access(request)
    invoice = _invoice_or_404(tenant, invoice_id)
    return render(
        request,
        "portal/billing_invoice.html",
        {
            "invoice": invoice,
            "lines": invoice.lines.all(),
            "has_pdf": InvoicePdf.objects.filter(invoice=invoice).exists(),
        },
    )


@_guarded(json=False)
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The stored PDF; if not rendered yet, queue the job and say so (202)."""
    tenant = _access(request)
    invoice = _invoice_or_404(tenant, invoice_id)
    pdf = InvoicePdf.objects.filter(invoice=invoice).first()
    if pdf is None:
        defer_on_commit(tasks.render_invoice_pdf_task, invoice_id=invoice.pk)
        return render(request, "portal/billing_pdf_pending.html", {"invoice": invoice}, status=202)
    response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.display_number}.pdf"'
    return response


@_guarded(json=False)
def usage(request: HttpRequest) -> HttpResponse:
    tenant = _access(request)
    first, last = _usage_range(request, tenant)
    summary = queries.usage_summary(tenant, first, last)
    totals = {
        "segments": sum(int(row["segments"]) for row in summary),  # type: ignore[call-overload]
        "billable_seconds": sum(int(row["billable_seconds"]) for row in summary),  # type: ignore[call-overload]
        "amount": sum((row["amount"] or Decimal(0) for row in summary), Decimal(0)),
    }
    for row in summary:
        row["minutes"] = Decimal(int(row["billable_seconds"])) / 60  # type: ignore[call-overload]
    return render(
        request,
        "portal/billing_usage.html",
        {
            "summary": summary,
            "totals": totals,
            "first": first,
            "last": last,
            "from_key": f"{first:%Y-%m}",
            "to_key": f"{last:%Y-%m}",
            "currency": tenant.currency,
        },
    )


@_guarded(json=True)
def usage_csv(request: HttpRequest) -> HttpResponse:
    """Call-level usage of ``from``..``to`` as CSV (the finance export's columns)."""
    tenant = _access(request)
    first, last = _usage_range(request, tenant)
    entries = queries.usage_entries(tenant, first, last).iterator(2000)
    response = StreamingHttpResponse(
        exports.usage_csv(entries), content_type="text/csv; charset=utf-8"
    )
    name = f"usage-{first:%Y-%m}" + (f"-{last:%Y-%m}" if last != first else "")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response
