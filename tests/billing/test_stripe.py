"""Stripe against a local fake of its HTTP API (never the network), and signed webhooks."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
import urllib.parse
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import stripe

from billing import actions, stripe_sync
from billing.demo import demo_call, demo_plan
from billing.models import BillingAccount, Invoice, StripeEvent
from billing.rating import epoch_ms
from tests.conftest import A_HOST, PROVIDER_HOST, site

MARCH = date(2026, 3, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
SECRET = "whsec_test_secret"


class FakeStripe:
    """Just enough of api.stripe.com: objects get ids; idempotency keys replay answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []  # type: ignore[type-arg]
        self.by_key: dict[str, bytes] = {}
        self.counter = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = dict(urllib.parse.parse_qsl(body))
                key = self.headers.get("Idempotency-Key", "")
                fake.requests.append(
                    {
                        "path": self.path,
                        "key": key,
                        "form": form,
                        "auth": self.headers.get("Authorization", ""),
                    }
                )
                if key and key in fake.by_key:
                    payload = fake.by_key[key]
                else:
                    fake.counter += 1
                    payload = json.dumps(fake.answer(self.path, form)).encode()
                    if key:
                        fake.by_key[key] = payload
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, form: dict) -> dict:  # type: ignore[type-arg]
        n = self.counter
        if path == "/v1/customers":
            return {"id": f"cus_{n}", "object": "customer", "name": form.get("name")}
        if path == "/v1/invoices":
            return {"id": f"in_{n}", "object": "invoice", "status": "draft"}
        if path == "/v1/invoiceitems":
            return {"id": f"ii_{n}", "object": "invoiceitem", "amount": int(form["amount"])}
        if path.endswith("/finalize"):
            return {"id": path.split("/")[3], "object": "invoice", "status": "open"}
        return {"error": {"message": f"fake has no {path}"}}


@pytest.fixture
def fake_stripe(settings):  # type: ignore[no-untyped-def]
    fake = FakeStripe()
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    yield fake
    fake.server.shutdown()


@pytest.fixture
def invoice(cast, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    actions.do_assign_plan(
        cast.a, demo_plan("alpha-std", "UAH", MARCH, monthly_platform_fee=D("100"))
    )
    actions.do_record_segments(cast.a, list(demo_call("alpha", 1, T0)))
    with django_capture_on_commit_callbacks(execute=False):
        return actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))


def test_a_finalized_invoice_is_pushed_once_with_keys_from_our_ids(cast, fake_stripe, invoice):  # type: ignore[no-untyped-def]
    remote_id = stripe_sync.push_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.stripe_invoice_id == remote_id
    assert BillingAccount.objects.get(tenant=cast.a).stripe_customer_id == "cus_1"
    paths = [r["path"] for r in fake_stripe.requests]
    assert paths[:2] == ["/v1/customers", "/v1/invoices"]
    assert paths[-1] == f"/v1/invoices/{remote_id}/finalize"
    items = [r for r in fake_stripe.requests if r["path"] == "/v1/invoiceitems"]
    # Lines and VAT in minor units (kopecks), adding up to the invoice total exactly.
    assert sum(int(r["form"]["amount"]) for r in items) == int(invoice.total_amount * 100)
    assert {r["form"]["currency"] for r in items} == {"uah"}
    keys = [r["key"] for r in fake_stripe.requests]
    assert len(set(keys)) == len(keys) and all(k.startswith("ccp-") for k in keys)
    assert f"ccp-inv-{invoice.pk}-create" in keys
    assert all(r["auth"] == "Bearer sk_test_fake" for r in fake_stripe.requests)

    before = len(fake_stripe.requests)
    assert stripe_sync.push_invoice(invoice) == remote_id  # already pushed: no calls
    assert len(fake_stripe.requests) == before


def test_a_push_that_crashed_half_way_is_replayed_not_duplicated(
    cast, fake_stripe, invoice, monkeypatch
):  # type: ignore[no-untyped-def]
    real = stripe_sync.minor_units
    calls = []

    def crash_on_second_item(amount, currency):  # type: ignore[no-untyped-def]
        calls.append(amount)
        if len(calls) == 2:
            raise ConnectionError("worker killed")
        return real(amount, currency)

    monkeypatch.setattr(stripe_sync, "minor_units", crash_on_second_item)
    with pytest.raises(ConnectionError):
        stripe_sync.push_invoice(invoice)
    monkeypatch.setattr(stripe_sync, "minor_units", real)
    invoice.refresh_from_db()
    assert invoice.stripe_invoice_id == ""
    stripe_sync.push_invoice(invoice)
    # Stripe saw the same keys again and replayed: one customer, one invoice, no extra items.
    created = fake_stripe.counter
    distinct_keys = {r["key"] for r in fake_stripe.requests}
    assert created == len(distinct_keys)
    assert len([k for k in distinct_keys if k.endswith("-create")]) == 1


def test_drafts_are_not_pushed(cast, fake_stripe):  # type: ignore[no-untyped-def]
    actions.do_assign_plan(cast.a, demo_plan("alpha-std", "UAH", MARCH))
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    with pytest.raises(actions.InvoiceStateError, match="only finalized invoices"):
        stripe_sync.push_invoice(draft)
    assert fake_stripe.requests == []


def signed(event: dict, *, secret: str = SECRET, timestamp: int | None = None) -> tuple[str, str]:  # type: ignore[type-arg]
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return payload, header


def post_webhook(payload: str, header: str, host: str = PROVIDER_HOST):  # type: ignore[no-untyped-def]
    return site(host).post(
        "/billing/stripe/webhook/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def paid_event(invoice: Invoice, event_id: str = "evt_1") -> dict:  # type: ignore[type-arg]
    return {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "data": {
            "object": {
                "id": invoice.stripe_invoice_id,
                "object": "invoice",
                "metadata": {"ccp_invoice_id": str(invoice.pk)},
            }
        },
    }


def test_a_signed_paid_webhook_marks_the_invoice_paid_and_replays_are_ignored(
    cast, fake_stripe, invoice
):  # type: ignore[no-untyped-def]
    stripe_sync.push_invoice(invoice)
    invoice.refresh_from_db()
    payload, header = signed(paid_event(invoice))
    response = post_webhook(payload, header)
    assert (response.status_code, response.content) == (200, b"ok")
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    again = post_webhook(payload, header)
    assert (again.status_code, again.content) == (200, b"replayed event ignored")
    assert StripeEvent.objects.filter(event_id="evt_1").count() == 1


def test_bad_signatures_and_stale_timestamps_are_refused(cast, fake_stripe, invoice):  # type: ignore[no-untyped-def]
    stripe_sync.push_invoice(invoice)
    invoice.refresh_from_db()
    payload, _header = signed(paid_event(invoice))
    _p, wrong = signed(paid_event(invoice), secret="whsec_someone_else")
    response = post_webhook(payload, wrong)
    assert response.status_code == 400 and b"bad signature" in response.content
    stale_payload, stale = signed(paid_event(invoice), timestamp=int(time.time()) - 301)
    response = post_webhook(stale_payload, stale)
    assert response.status_code == 400 and b"tolerance" in response.content
    response = post_webhook(payload, "")
    assert response.status_code == 400
    tampered = payload.replace("invoice.paid", "invoice.paid ")
    _p, header = signed(paid_event(invoice))
    assert post_webhook(tampered, header).status_code == 400
    invoice.refresh_from_db()
    assert invoice.status == "finalized"
    assert not StripeEvent.objects.exists()


def test_unknown_events_are_logged_and_acknowledged(cast, fake_stripe, caplog):  # type: ignore[no-untyped-def]
    payload, header = signed(
        {"id": "evt_9", "type": "charge.dispute.created", "data": {"object": {}}}
    )
    with caplog.at_level(logging.INFO, logger="billing.stripe_sync"):
        response = post_webhook(payload, header)
    assert (response.status_code, response.content) == (200, b"ignored")
    assert "charge.dispute.created is not handled" in caplog.text
    assert StripeEvent.objects.get(event_id="evt_9").handled is False


def test_the_webhook_lives_on_the_provider_host_only(cast, fake_stripe):  # type: ignore[no-untyped-def]
    payload, header = signed({"id": "evt_2", "type": "invoice.paid", "data": {"object": {}}})
    assert post_webhook(payload, header, host=A_HOST).status_code == 404
