"""Billing jobs (procrastinate). The books live in the public schema: no tenant context."""

from __future__ import annotations

import logging

from django.db import close_old_connections, connection
from procrastinate.contrib.django import app

from billing import exports
from billing.models import Invoice, PeriodExport

logger = logging.getLogger(__name__)


def _fresh_connections() -> None:
    """Drop broken or stale connections around a job, as a request would.

    Never inside an atomic block: a worker starts jobs outside any, and closing the
    connection there would break the caller's transaction (tests run jobs in one).
    """
    if not connection.in_atomic_block:
        close_old_connections()


@app.task(queue="billing", name="billing.tasks.render_invoice_pdf_task", retry=3)
def render_invoice_pdf_task(*, invoice_id: int) -> str:
    """Render and store an issued invoice's PDF (queued after the finalizing commit)."""
    _fresh_connections()
    try:
        invoice = Invoice.objects.select_related("tenant").get(pk=invoice_id)
        return exports.render_invoice_pdf(invoice).sha256
    finally:
        _fresh_connections()


@app.task(queue="billing", name="billing.tasks.build_period_export_task")
def build_period_export_task(*, export_id: int) -> str:
    """Build a period's zip (PDFs + CSVs) for the finance page."""
    _fresh_connections()
    export = PeriodExport.objects.get(pk=export_id)
    try:
        exports.build_period_zip(export)
    except Exception as exc:
        PeriodExport.objects.filter(pk=export_id).update(
            status=PeriodExport.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.exception("period export %s failed", export_id)
        raise
    finally:
        _fresh_connections()
    return export.status


@app.task(queue="billing", name="billing.tasks.push_invoice_to_stripe_task", retry=5)
def push_invoice_to_stripe_task(*, invoice_id: int) -> str:
    """Push an issued invoice or credit note to Stripe (idempotent: keys derive from our ids)."""
    from billing import stripe_sync

    _fresh_connections()
    try:
        return stripe_sync.push(Invoice.objects.select_related("tenant").get(pk=invoice_id))
    finally:
        _fresh_connections()
