"""The finance page of the provider console: run, review, finalize and export a period.

Finance and provider admins only; everyone else gets the same 404 as for a missing page.
Heavy work (PDF rendering, the bulk zip) runs as jobs; CSVs stream from the database.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import actions, exports, tasks
from billing.models import Invoice, InvoiceLine, InvoicePdf, PeriodExport
from billing.rating import RatingError
from ccplatform.jobs import defer_on_commit
from tenants.access import access_provider
from tenants.models import Role

FINANCE_ROLES = (Role.FINANCE, Role.PROVIDER_ADMIN)
ENTRY_PAGE_SIZE = 100


def _period(value: str | None) -> date:
    """``YYYY-MM`` -> first day of that month (404 on anything else)."""
    try:
        year, month = (int(p) for p in (value or "").split("-"))
        return date(year, month, 1)
    except (TypeError, ValueError):
        raise Http404 from None


def _default_period() -> date:
    today = timezone.now().date()
    return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)


def _access_invoice(request: HttpRequest, invoice_id: int) -> Invoice:
    access_provider(request, FINANCE_ROLES)
    try:
        return Invoice.objects.select_related("tenant", "credited_invoice").get(pk=invoice_id)
    except Invoice.DoesNotExist:
        raise Http404 from None


@login_required
def finance_home(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, FINANCE_ROLES)
    period = _period(request.GET["period"]) if request.GET.get("period") else _default_period()
    invoices = list(exports.period_invoices(period))
    totals: dict[str, dict[str, object]] = {}
    for inv in invoices:
        row = totals.setdefault(inv.currency, {"currency": inv.currency, "total": 0, "n": 0})
        row["total"] += inv.total_amount  # type: ignore[operator]
        row["n"] += 1  # type: ignore[operator]
    billed = actions.billable_tenants()
    invoiced = {inv.tenant_id for inv in invoices if inv.kind == Invoice.Kind.INVOICE}
    return render(
        request,
        "billing/finance_home.html",
        {
            "role": role,
            "period": period,
            "period_key": f"{period:%Y-%m}",
            "invoices": invoices,
            "totals": totals.values(),
            "missing": [t for t in billed if t.pk not in invoiced],
            "drafts": sum(1 for inv in invoices if inv.is_draft),
            "exports": PeriodExport.objects.filter(period_start=period)[:5],
            "stripe": bool(settings.STRIPE_SECRET_KEY),
            "unpushed": sum(
                1 for inv in invoices if inv.status == "finalized" and not inv.stripe_invoice_id
            ),
        },
    )


@login_required
@require_POST
def period_run(request: HttpRequest, period: str) -> HttpResponse:
    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    outcomes = actions.do_run_period(start, actor=request.user)  # type: ignore[arg-type]
    done = sum(1 for o in outcomes if o.invoice is not None)
    messages.success(request, f"{done} invoice(s) prepared for {start:%Y-%m}.")
    for outcome in outcomes:
        if outcome.error:
            messages.error(request, f"{outcome.tenant.name}: {outcome.error}")
    return redirect(f"{reverse('billing_home')}?period={start:%Y-%m}")


@login_required
@require_POST
def period_finalize(request: HttpRequest, period: str) -> HttpResponse:
    """Finalize every draft of the period (each in its own transaction)."""
    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    done = 0
    for invoice in Invoice.objects.filter(period_start=start, status=Invoice.Status.DRAFT):
        try:
            actions.do_finalize_invoice(invoice, actor=request.user, request=request)  # type: ignore[arg-type]
            done += 1
        except (RatingError, actions.BillingError) as exc:
            messages.error(request, f"{invoice.tenant.name}: {exc}")
    messages.success(request, f"{done} invoice(s) finalized.")
    return redirect(f"{reverse('billing_home')}?period={start:%Y-%m}")


@login_required
@require_POST
def period_push(request: HttpRequest, period: str) -> HttpResponse:
    """Queue the Stripe push of every issued invoice and credit note of the period not in
    Stripe yet (finalizing queues it already; this catches up after an outage or a late key)."""
    from billing import stripe_sync

    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    if not settings.STRIPE_SECRET_KEY:
        messages.error(request, "Stripe is not configured (STRIPE_SECRET_KEY).")
    else:
        ids = list(stripe_sync.unpushed(start).values_list("pk", flat=True))
        for pk in ids:
            defer_on_commit(tasks.push_invoice_to_stripe_task, invoice_id=pk)
        messages.success(request, f"{len(ids)} document(s) queued for Stripe.")
    return redirect(f"{reverse('billing_home')}?period={start:%Y-%m}")


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _access_invoice(request, invoice_id)
    return render(
        request,
        "billing/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": invoice.lines.all(),
            "credit_notes": invoice.credit_notes.all(),
            "has_pdf": InvoicePdf.objects.filter(invoice=invoice).exists(),
            "period_key": f"{invoice.period_start:%Y-%m}",
        },
    )


@login_required
def invoice_line_usage(request: HttpRequest, invoice_id: int, line_id: int) -> HttpResponse:
    """Drill-down: the calls (ledger entries) behind one invoice line."""
    invoice = _access_invoice(request, invoice_id)
    try:
        line = invoice.lines.get(pk=line_id)
    except InvoiceLine.DoesNotExist:
        raise Http404 from None
    entries = actions.line_entries(line)
    summary = entries.aggregate(
        n=Count("id"),
        seconds=Sum("billable_seconds"),
        amount=Sum("amount"),
        calls=Count("call_id", distinct=True),
    )
    page = Paginator(entries, ENTRY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/line_usage.html",
        {"invoice": invoice, "line": line, "page": page, "summary": summary},
    )


@login_required
@require_POST
def invoice_finalize(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _access_invoice(request, invoice_id)
    try:
        invoice = actions.do_finalize_invoice(invoice, actor=request.user, request=request)  # type: ignore[arg-type]
    except (RatingError, actions.BillingError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invoice {invoice.display_number} finalized.")
    return redirect("billing_invoice", invoice_id=invoice.pk)


@login_required
@require_POST
def invoice_status(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """Mark paid, void, or issue a credit note (``action`` in the form)."""
    invoice = _access_invoice(request, invoice_id)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    try:
        if action == "paid":
            if not actions.do_mark_paid(invoice, actor=request.user, source="manual"):  # type: ignore[arg-type]
                raise actions.InvoiceStateError("only a finalized invoice can be marked paid")
        elif action == "void":
            actions.do_void_invoice(invoice, reason=reason, actor=request.user)  # type: ignore[arg-type]
        elif action == "credit":
            raw = request.POST.get("amount", "").strip().replace(",", ".")
            try:
                amount = Decimal(raw) if raw else None
            except InvalidOperation:
                raise actions.BillingError(f"not an amount: {raw!r}") from None
            note = actions.do_issue_credit_note(
                invoice,
                reason=reason,
                amount=amount,
                actor=request.user,  # type: ignore[arg-type]
            )
            messages.success(request, f"Credit note {note.display_number} issued.")
            return redirect("billing_invoice", invoice_id=note.pk)
        else:
            raise actions.BillingError("unknown action")
    except actions.BillingError as exc:
        messages.error(request, str(exc))
    return redirect("billing_invoice", invoice_id=invoice.pk)


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The stored PDF; if not rendered yet, queue the job and say so (202)."""
    invoice = _access_invoice(request, invoice_id)
    if invoice.is_draft:
        raise Http404
    pdf = InvoicePdf.objects.filter(invoice=invoice).first()
    if pdf is None:
        defer_on_commit(tasks.render_invoice_pdf_task, invoice_id=invoice.pk)
        return render(request, "billing/pdf_pending.html", {"invoice": invoice}, status=202)
    response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.display_number}.pdf"'
    return response


def _csv_response(chunks, filename: str) -> StreamingHttpResponse:  # type: ignore[no-untyped-def]
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def period_invoices_csv(request: HttpRequest, period: str) -> StreamingHttpResponse:
    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    return _csv_response(
        exports.invoices_csv(exports.period_invoices(start).iterator(500)),
        f"invoices-{start:%Y-%m}.csv",
    )


@login_required
def period_usage_csv(request: HttpRequest, period: str) -> StreamingHttpResponse:
    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    return _csv_response(
        exports.usage_csv(exports.period_entries(start).iterator(2000)),
        f"usage-{start:%Y-%m}.csv",
    )


@login_required
@require_POST
def period_export(request: HttpRequest, period: str) -> HttpResponse:
    """Queue a bulk zip (PDFs + CSVs) of the period."""
    access_provider(request, FINANCE_ROLES)
    start = _period(period)
    export = PeriodExport.objects.create(period_start=start, requested_by=request.user)
    defer_on_commit(tasks.build_period_export_task, export_id=export.pk)
    messages.success(request, "The zip is being built; it will be listed here when ready.")
    return redirect(f"{reverse('billing_home')}?period={start:%Y-%m}")


@login_required
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    access_provider(request, FINANCE_ROLES)
    export = PeriodExport.objects.filter(pk=export_id, status=PeriodExport.Status.DONE).first()
    if export is None:
        raise Http404
    response = HttpResponse(bytes(export.content or b""), content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="billing-{export.period_start:%Y-%m}.zip"'
    )
    return response


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's machine endpoint: signature-verified, replay-safe (see billing.stripe_sync)."""
    from billing import stripe_sync

    if not getattr(request, "tenant", None) or not request.tenant.is_provider:  # type: ignore[attr-defined]
        raise Http404
    status, message = stripe_sync.handle_webhook(
        request.body, request.META.get("HTTP_STRIPE_SIGNATURE", "")
    )
    return HttpResponse(message, status=status, content_type="text/plain")
