"""A loopback fake of the part of Stripe's HTTP API we use, for the demo and the tests.

Never a substitute for Stripe's test mode (see docs/decisions/0010); it lets ``make demo`` and
the suite walk the whole finance flow without the network:

* ``POST /v1/customers``, ``/v1/invoices``, ``/v1/invoiceitems``,
  ``/v1/invoices/<id>/finalize``, ``/v1/credit_notes``; ``GET /v1/invoices/<id>``,
  ``/v1/credit_notes/<id>``. Objects get ids (``cus_1``, ``in_2``...). A request with an
  ``Idempotency-Key`` seen before gets the first answer again, byte for byte, as Stripe does.
* Invoices are paid by the "client" on the fake's own pages (``GET /`` lists invoices with a
  Pay button; ``POST /fake/pay/<id>``), or ``pay_after`` seconds after they are finalized.
  Paying sends a signed ``invoice.paid`` event (``Stripe-Signature``: ``t=...,v1=HMAC-SHA256``
  of ``"<t>.<payload>"`` with the webhook secret, Stripe's scheme) to our webhook.
* Loopback only: it binds 127.0.0.1 and refuses to deliver webhooks anywhere but loopback.

Pure standard library (no Django): :class:`StripeFake` runs in a thread (tests) or is served by
``manage.py stripe_fake`` (demo).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import http.server
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: ``deliver(payload, signature_header) -> HTTP status`` sends one webhook to us.
Deliver = Callable[[str, str], int]

_INVOICE_PATH = re.compile(r"^/v1/invoices/(in_\d+)(/finalize)?$")
_CREDIT_NOTE_PATH = re.compile(r"^/v1/credit_notes/(cn_\d+)$")


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (Stripe's v1 scheme)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) as nested dicts (lists stay index-keyed)."""
    out: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def http_deliver(url: str, host: str | None = None) -> Deliver:
    """Deliver webhooks by POSTing to ``url`` (loopback only), with ``Host: host`` if given."""
    hostname = urllib.parse.urlsplit(url).hostname or ""
    if hostname != "localhost" and not ipaddress.ip_address(hostname).is_loopback:
        raise ValueError(f"the Stripe fake delivers webhooks to loopback only, not {hostname}")

    def deliver(payload: str, header: str) -> int:
        request = urllib.request.Request(  # noqa: S310 (checked loopback http URL)
            url,
            data=payload.encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )
        if host:
            request.add_unredirected_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    return deliver


class StripeFake:
    """The fake's state and HTTP server (``start()`` serves it on a daemon thread)."""

    def __init__(
        self,
        *,
        webhook_secret: str,
        deliver: Deliver | None = None,
        port: int = 0,
        pay_after: float | None = None,
        retries: int = 0,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.deliver = deliver
        self.pay_after = pay_after
        self.retries = retries  # redeliveries of a failed webhook (Stripe retries for days)
        self.requests: list[dict[str, Any]] = []
        self.by_key: dict[str, bytes] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.deliveries: list[tuple[str, int]] = []  # (event type, our HTTP status)
        self.counter = 0
        self.events = 0
        self.lock = threading.RLock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StripeFake:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the API -----------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def api(self, method: str, path: str, form: dict[str, Any], key: str) -> tuple[int, bytes]:
        """One API request -> (status, JSON body); idempotency keys replay the first answer."""
        with self.lock:
            self.requests.append({"method": method, "path": path, "key": key, "form": form})
            if method == "POST" and key and key in self.by_key:
                return 200, self.by_key[key]
            status, answer = self._answer(method, path, form)
            payload = json.dumps(answer).encode()
            if method == "POST" and key and status == 200:
                self.by_key[key] = payload
        if answer.get("object") == "invoice" and answer.get("status") == "open":
            self._schedule_payment(str(answer["id"]))
        return status, payload

    def _answer(self, method: str, path: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            match = _INVOICE_PATH.match(path) or _CREDIT_NOTE_PATH.match(path)
            if match and match.group(1) in self.objects and not path.endswith("/finalize"):
                return 200, self.objects[match.group(1)]
            return _not_found(path)
        if path == "/v1/customers":
            obj = {"id": self._new_id("cus"), "object": "customer", "name": form.get("name")}
            obj["metadata"] = form.get("metadata", {})
        elif path == "/v1/invoices":
            if form.get("customer") not in self.objects:
                return _invalid(f"No such customer: {form.get('customer')!r}")
            obj = {
                "id": self._new_id("in"),
                "object": "invoice",
                "status": "draft",
                "customer": form["customer"],
                "currency": form.get("currency"),
                "metadata": form.get("metadata", {}),
                "description": form.get("description", ""),
                "total": 0,
                "amount_due": 0,
                "amount_paid": 0,
            }
        elif path == "/v1/invoiceitems":
            invoice = self.objects.get(str(form.get("invoice")))
            if invoice is None or invoice["status"] != "draft":
                return _invalid(f"invoice {form.get('invoice')!r} is not a draft")
            amount = int(form["amount"])
            obj = {"id": self._new_id("ii"), "object": "invoiceitem", "amount": amount}
            obj["invoice"] = invoice["id"]
            invoice["total"] += amount
        elif match := _INVOICE_PATH.match(path):
            invoice = self.objects.get(match.group(1))
            if invoice is None or not match.group(2):
                return _not_found(path)
            if invoice["status"] != "draft":
                return _invalid(f"invoice {invoice['id']} is already {invoice['status']}")
            invoice.update(status="open", amount_due=invoice["total"])
            invoice["hosted_invoice_url"] = f"{self.url}/i/{invoice['id']}"
            return 200, dict(invoice)
        elif path == "/v1/credit_notes":
            invoice = self.objects.get(str(form.get("invoice")))
            if invoice is None or invoice["status"] not in {"open", "paid"}:
                return _invalid(f"credit notes need an open or paid invoice: {form.get('invoice')}")
            lines = form.get("lines", {})
            amount = sum(
                int(line.get("quantity", 1)) * int(line["unit_amount"]) for line in lines.values()
            )
            credited = sum(
                o["amount"]
                for o in self.objects.values()
                if o["object"] == "credit_note" and o["invoice"] == invoice["id"]
            )
            if amount <= 0 or credited + amount > invoice["total"]:
                return _invalid(f"credit note amount {amount} exceeds what can be credited")
            if invoice["status"] == "paid" and int(form.get("credit_amount", 0)) != amount:
                return _invalid("a paid invoice's credit note must say where the money goes")
            if invoice["status"] == "open":
                invoice["amount_due"] -= amount
            obj = {
                "id": self._new_id("cn"),
                "object": "credit_note",
                "invoice": invoice["id"],
                "amount": amount,
                "memo": form.get("memo", ""),
                "metadata": form.get("metadata", {}),
                "status": "issued",
            }
        else:
            return _not_found(path)
        self.objects[obj["id"]] = obj
        return 200, obj

    # -- payment and webhooks ----------------------------------------------------------------
    def _schedule_payment(self, invoice_id: str) -> None:
        if self.pay_after is None:
            return
        timer = threading.Timer(self.pay_after, self.pay, args=(invoice_id,))
        timer.daemon = True
        timer.start()

    def invoices(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(o) for o in self.objects.values() if o["object"] == "invoice"]

    def pay(self, invoice_id: str) -> int | None:
        """The client pays an open invoice: mark it paid, send ``invoice.paid``; our status."""
        with self.lock:
            invoice = self.objects.get(invoice_id)
            if invoice is None or invoice["status"] != "open":
                return None
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_due=0)
            snapshot = dict(invoice)
        return self.send_event("invoice.paid", snapshot)

    def send_event(self, event_type: str, obj: dict[str, Any]) -> int | None:
        with self.lock:
            self.events += 1
            event_id = f"evt_fake_{self.port}_{self.events}"
        payload = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": event_type,
                "created": int(time.time()),
                "data": {"object": obj},
            }
        )
        if self.deliver is None:
            return None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2**attempt, 30))
            try:
                # Signed at each attempt, as Stripe does (a fresh timestamp).
                status = self.deliver(payload, sign(payload, self.webhook_secret))
            except OSError as exc:
                logger.warning("stripe fake: webhook %s not delivered: %s", event_type, exc)
                status = 0
            self.deliveries.append((event_type, status))
            logger.info("stripe fake: %s %s -> %s", event_type, obj.get("id"), status)
            if 200 <= status < 300:
                break
        return status

    # -- the fake's own pages (the "hosted invoice page") ------------------------------------
    def page(self) -> bytes:
        rows = "".join(
            f"<tr><td>{html.escape(i['id'])}</td><td>{html.escape(str(i['description']))}</td>"
            f"<td>{i['total']} {html.escape(str(i['currency'] or '').upper())} (minor units)</td>"
            f"<td>{html.escape(i['status'])}</td><td>"
            + (
                f'<form method="post" action="/fake/pay/{html.escape(i["id"])}">'
                '<button type="submit">Pay</button></form>'
                if i["status"] == "open"
                else ""
            )
            + "</td></tr>"
            for i in self.invoices()
        )
        auto = f"paid automatically {self.pay_after:g} s after finalizing" if self.pay_after else ""
        return (
            "<!doctype html><meta charset=utf-8><title>Stripe fake</title>"
            "<h1>Stripe fake (demo only)</h1>"
            f"<p>Invoices pushed by the platform. {auto}</p>"
            "<table border=1 cellpadding=4><tr><th>id</th><th>our number</th><th>total</th>"
            f"<th>status</th><th></th></tr>{rows}</table>"
        ).encode()


def _not_found(path: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"type": "invalid_request_error", "message": f"fake has no {path}"}}


def _invalid(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": {"type": "invalid_request_error", "message": message}}


def _handler(fake: StripeFake) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/v1/"):
                self._send(*fake.api("GET", path, {}, ""))
            elif path == "/" or path.startswith("/i/"):
                self._send(200, fake.page(), "text/html; charset=utf-8")
            else:
                self._send(*_encode(_not_found(path)))

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/fake/pay/"):
                fake.pay(path.rsplit("/", 1)[-1])
                self.send_response(303)
                self.send_header("Location", "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not path.startswith("/v1/"):
                self._send(*_encode(_not_found(path)))
                return
            key = self.headers.get("Idempotency-Key", "")
            self._send(*fake.api("POST", path, parse_form(body), key))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("stripe fake: " + format, *args)

    return Handler


def _encode(answer: tuple[int, dict[str, Any]]) -> tuple[int, bytes]:
    return answer[0], json.dumps(answer[1]).encode()
