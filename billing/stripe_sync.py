"""Stripe: a customer per client company, issued invoices pushed, payments from webhooks.

* Only our finalized invoices are pushed (``send_invoice`` collection: Stripe e-mails the
  client a hosted payment page, so no card data ever reaches us).
* Every request carries an idempotency key derived from our own ids (``ccp-inv-<id>-...``):
  a push that crashed half-way and is retried makes Stripe replay its earlier answers instead
  of creating a second invoice or line.
* Amounts become integer minor units only here, at the boundary.
* Webhooks: the ``Stripe-Signature`` header is verified with Stripe's own code and its default
  tolerance (300 s); an event id seen before is acknowledged and ignored (Stripe retries and
  replays); unknown event types are logged and acknowledged.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import actions
from billing.models import BillingAccount, Invoice, StripeEvent
from billing.rating import currency_exponent

logger = logging.getLogger(__name__)

PAID_EVENTS = {"invoice.paid", "invoice.payment_succeeded"}
KNOWN_EVENTS = PAID_EVENTS | {
    "invoice.finalized",
    "invoice.sent",
    "invoice.payment_failed",
    "credit_note.created",
    "credit_note.updated",
}


class StripeNotConfigured(actions.BillingError):
    pass


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base,
        max_network_retries=2,  # type: ignore[arg-type]
    )


def minor_units(amount: Decimal, currency: str) -> int:
    """An exact Decimal amount as Stripe's integer minor units (refuses sub-unit values)."""
    scaled = Decimal(amount).scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise actions.BillingError(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


def ensure_customer(account: BillingAccount, api: stripe.StripeClient | None = None) -> str:
    if account.stripe_customer_id:
        return account.stripe_customer_id
    api = api or client()
    tenant = account.tenant
    customer = api.v1.customers.create(
        params={
            "name": tenant.legal_name or tenant.name,
            "email": tenant.billing_email or None,  # type: ignore[typeddict-item]
            "metadata": {"ccp_tenant": tenant.schema_name, "ccp_tenant_id": str(tenant.pk)},
        },
        options={"idempotency_key": f"ccp-customer-{tenant.pk}"},
    )
    BillingAccount.objects.filter(pk=account.pk).update(stripe_customer_id=customer.id)
    account.stripe_customer_id = customer.id
    return customer.id


def push_invoice(invoice: Invoice, api: stripe.StripeClient | None = None) -> str:
    """Create, fill and finalize the Stripe invoice of an issued invoice; return its id."""
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status != Invoice.Status.FINALIZED:
        raise actions.InvoiceStateError(
            f"only finalized invoices are pushed to Stripe ({invoice} is {invoice.status})"
        )
    if invoice.stripe_invoice_id:
        return invoice.stripe_invoice_id
    api = api or client()
    account = BillingAccount.objects.select_related("tenant").get(tenant=invoice.tenant)
    customer = ensure_customer(account, api)
    key = f"ccp-inv-{invoice.pk}"
    currency = invoice.currency.lower()
    remote = api.v1.invoices.create(
        params={
            "customer": customer,
            "currency": currency,
            "collection_method": "send_invoice",
            "days_until_due": max((invoice.due_date - invoice.issue_date).days, 1),  # type: ignore[operator]
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": f"{invoice.display_number}",
            "metadata": {"ccp_invoice_id": str(invoice.pk), "ccp_number": invoice.display_number},
        },
        options={"idempotency_key": f"{key}-create"},
    )
    items = [(line.position, line.description, line.amount) for line in invoice.lines.all()]
    if invoice.tax_amount:
        items.append((0, f"VAT {invoice.tax_rate * 100:.2f}%", invoice.tax_amount))
    for position, description, amount in items:
        if not amount:
            continue
        api.v1.invoice_items.create(
            params={
                "customer": customer,
                "invoice": remote.id,
                "currency": currency,
                "amount": minor_units(amount, invoice.currency),
                "description": description[:500],
            },
            options={"idempotency_key": f"{key}-item-{position}"},
        )
    api.v1.invoices.finalize_invoice(remote.id, options={"idempotency_key": f"{key}-finalize"})
    Invoice.objects.filter(pk=invoice.pk).update(stripe_invoice_id=remote.id)
    invoice.stripe_invoice_id = remote.id
    return remote.id


def push_credit_note(note: Invoice, api: stripe.StripeClient | None = None) -> str:
    """Create the Stripe credit note of an issued credit note; return its id ("" if skipped).

    The credited invoice is pushed first if it is not in Stripe yet (idempotent). A credited
    invoice that can't be in Stripe (paid or voided before it was ever pushed) has no Stripe
    counterpart to credit: the note is logged and skipped. The note's lines, plus its VAT, become
    custom credit-note lines in positive minor units (Stripe's sign), so they add up to the
    note's total exactly. Against an open invoice the credit lowers what is due; against a paid
    one it goes to the customer's Stripe balance (``credit_amount``), used by the next invoice.
    Idempotency keys come from our ids (``ccp-cn-<id>-create``).
    """
    if note.kind != Invoice.Kind.CREDIT_NOTE or note.status != Invoice.Status.FINALIZED:
        raise actions.InvoiceStateError(
            f"only issued credit notes are pushed to Stripe ({note} is a {note.kind}, "
            f"{note.status})"
        )
    if note.stripe_invoice_id:
        return note.stripe_invoice_id
    credited = Invoice.objects.select_related("tenant").get(pk=note.credited_invoice_id)
    if not credited.stripe_invoice_id:
        if credited.status != Invoice.Status.FINALIZED:
            logger.warning(
                "credit note %s not pushed: invoice %s was never in Stripe (it is %s)",
                note.display_number,
                credited.display_number,
                credited.status,
            )
            return ""
        push_invoice(credited, api)
    api = api or client()
    remote_invoice = api.v1.invoices.retrieve(credited.stripe_invoice_id)
    lines = [(line.description, -line.amount) for line in note.lines.all()]
    if note.tax_amount:
        lines.append((f"VAT {note.tax_rate * 100:.2f}%", -note.tax_amount))
    params: dict = {  # type: ignore[type-arg]
        "invoice": credited.stripe_invoice_id,
        "memo": f"{note.display_number}: {note.reason}"[:500],
        "metadata": {
            "ccp_invoice_id": str(note.pk),
            "ccp_number": note.display_number,
            "ccp_credited_invoice_id": str(credited.pk),
        },
        "lines": [
            {
                "type": "custom_line_item",
                "description": description[:500],
                "quantity": 1,
                "unit_amount": minor_units(amount, note.currency),
            }
            for description, amount in lines
            if amount
        ],
    }
    total = -minor_units(note.total_amount, note.currency)
    if remote_invoice.status == "paid":
        params["credit_amount"] = total
    remote = api.v1.credit_notes.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"ccp-cn-{note.pk}-create"},
    )
    Invoice.objects.filter(pk=note.pk).update(stripe_invoice_id=remote.id)
    note.stripe_invoice_id = remote.id
    return remote.id


def push(invoice: Invoice, api: stripe.StripeClient | None = None) -> str:
    """Push an issued invoice or credit note (what the job runs)."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return push_credit_note(invoice, api)
    return push_invoice(invoice, api)


def unpushed(period_start: date):  # type: ignore[no-untyped-def]
    """Issued invoices and credit notes of a period that Stripe doesn't have yet."""
    return Invoice.objects.filter(
        period_start=period_start, status=Invoice.Status.FINALIZED, stripe_invoice_id=""
    ).order_by("pk")  # an invoice before its credit notes


def handle_webhook(payload: bytes, signature: str) -> tuple[int, str]:
    """Verify and apply one webhook delivery; return (HTTP status, short message)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return 400, "webhooks are not configured"
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(
            text, signature, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
        event = json.loads(text)
        event_id, event_type = str(event["id"]), str(event["type"])
        obj = event.get("data", {}).get("object", {}) or {}
    except stripe.SignatureVerificationError as exc:
        logger.warning("stripe webhook refused: %s", exc)
        return 400, f"bad signature: {exc}"
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return 400, f"malformed event: {type(exc).__name__}"
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(event_id=event_id, event_type=event_type)
            handled = _apply(event_type, obj)
            if handled:
                StripeEvent.objects.filter(pk=record.pk).update(handled=True)
    except IntegrityError:
        logger.info("stripe event %s replayed: ignored", event_id)
        return 200, "replayed event ignored"
    return 200, "ok" if handled else "ignored"


def _apply(event_type: str, obj: dict) -> bool:  # type: ignore[type-arg]
    if event_type not in KNOWN_EVENTS:
        logger.info("stripe event type %s is not handled", event_type)
        return False
    if event_type not in PAID_EVENTS:
        return False
    invoice = _our_invoice(obj)
    if invoice is None:
        logger.warning("stripe %s for unknown invoice %s", event_type, obj.get("id"))
        return False
    return actions.do_mark_paid(invoice, source="stripe")


def _our_invoice(obj: dict) -> Invoice | None:  # type: ignore[type-arg]
    remote_id = str(obj.get("id") or "")
    ours = str((obj.get("metadata") or {}).get("ccp_invoice_id") or "")
    qs = Invoice.objects.select_related("tenant")
    if remote_id:
        found = qs.filter(stripe_invoice_id=remote_id).first()
        if found is not None:
            return found
    if ours.isdigit():
        # The metadata id alone is trusted only together with a matching Stripe id, or if we
        # never stored one (a crash between create and save).
        return qs.filter(pk=int(ours), stripe_invoice_id__in=["", remote_id]).first()
    return None
