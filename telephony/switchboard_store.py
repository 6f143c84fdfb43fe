"""The switchboard's Django side: where its results go, caller lookup, and the leader lock.

* :class:`DbSink` implements :class:`telephony.callflow.switchboard.Sink`: a finished call is
  recorded in its tenant's schema (``calls.actions.do_record_call``, idempotent by call id, so
  a call recorded twice after a restart is stored once) and reconciliation is queued as a job;
  notices (unknown numbers, stalls, recordings, callback requests) are logged and audited.
* Caller lookup: the tenant's contacts (its own schema), then, if the tenant configured one, the
  client's own system through a signed HTTPS webhook with a short timeout. The session bounds
  the whole lookup with the tenant's timeout, so a slow webhook never holds the call.
* :class:`LeaderLock`: a PostgreSQL session advisory lock on a dedicated connection. The active
  switchboard holds it; a standby waits for it; when the active process dies its connection
  closes and PostgreSQL releases the lock at once, so the standby takes over within its poll
  interval.

ORM work runs in worker threads through ``sync_to_async`` (thread_sensitive=False: these calls
do not share a transaction) and always names its tenant explicitly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.request
import zlib
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django_tenants.utils import schema_context
from procrastinate.exceptions import AlreadyEnqueued

from telephony.callflow.directory import Directory, LookupWebhook
from telephony.callflow.meter import CallMeter
from telephony.callflow.switchboard import CallSummary

log = logging.getLogger("telephony.switchboard")

LOCK_NAME = "ccp-switchboard-leader"


def _fresh() -> None:
    """Drop this worker thread's connection if it is broken or too old (as a request would);
    never inside a transaction (a caller's, or a test's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _tenant(schema: str):  # type: ignore[no-untyped-def]
    from tenants.models import Client

    return Client.objects.exclude(schema_name="public").filter(schema_name=schema).first()


def record_call(summary: CallSummary) -> str:
    """Store one finished call in its tenant's schema; returns what happened."""
    from calls.actions import do_record_call

    _fresh()
    tenant = _tenant(summary.tenant_id) if summary.tenant_id else None
    if tenant is None or summary.meter is None:
        log.info(
            "call %s (%s, %s): not recorded (no tenant)",
            summary.call_id,
            summary.outcome,
            summary.cause,
        )
        return "no_tenant"
    meter = CallMeter.from_dict(summary.meter)
    # Every agent or second-line leg the call used, metered or not (an agent who answered an
    # offer that was withdrawn a moment later): their CDRs then belong to this call.
    extra = [
        {"uuid": leg, "role": role}
        for leg, role in summary.legs.items()
        if role in ("agent", "escalation")
    ]
    call_dict: dict[str, Any] = {
        "did": summary.did,
        "caller_number": summary.caller,
        "started_ms": summary.started_ms,
        "outcome": summary.outcome,
        "cause": summary.cause[:64],
        "queue": summary.queue,
        "agent": summary.agent,
    }
    if summary.parent_call_id:
        call_dict["parent_call_id"] = summary.parent_call_id
    if extra:
        call_dict["extra_legs"] = extra
    do_record_call(tenant, call_dict, meter)
    return "recorded"


def queue_reconcile(schema: str) -> None:
    from calls.tasks import reconcile_tenant

    _fresh()
    tenant = _tenant(schema)
    if tenant is not None:
        try:
            # One pending reconciliation per tenant is enough: it takes every call waiting.
            reconcile_tenant.configure(queueing_lock=f"reconcile-{tenant.schema_name}").defer(  # type: ignore[attr-defined]
                tenant_schema=tenant.schema_name
            )
        except AlreadyEnqueued:
            pass
        except Exception:  # noqa: BLE001  # the periodic sweep catches up
            log.warning("could not queue reconciliation for %s", schema, exc_info=True)


def lookup_contact(schema: str, number: str) -> dict[str, Any] | None:
    from portal.models import Contact

    _fresh()
    if not number:
        return None
    with schema_context(schema):
        contact = Contact.objects.filter(phone=number).first()
    if contact is None:
        return None
    return {
        "name": contact.name,
        "vip": contact.vip,
        "account": contact.account_ref,
        "priority": 1 if contact.vip else 0,
    }


def register_recording(data: dict[str, Any]) -> None:
    from recordings.actions import do_register_recording

    _fresh()
    do_register_recording(str(data["tenant_id"]), data)


def mark_masked(data: dict[str, Any]) -> None:
    from recordings.actions import do_mark_masked

    _fresh()
    do_mark_masked(
        str(data["tenant_id"]), str(data["call_id"]), bool(data["masked"]), int(data["at_ms"])
    )


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """``X-CCP-Signature``: hex HMAC-SHA256 of ``<timestamp>.<body>`` with the tenant's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def call_webhook(hook: LookupWebhook, tenant_id: str, number: str) -> dict[str, Any] | None:
    """POST ``{"tenant", "caller"}`` to the client's system; its JSON answer or None."""
    if not hook.url.startswith("https://") and not settings.DEBUG:
        log.warning("lookup webhook of %s is not HTTPS; refused", tenant_id)
        return None
    body = json.dumps({"tenant": tenant_id, "caller": number}).encode()
    ts = int(time.time())
    req = urllib.request.Request(  # noqa: S310  # scheme checked above
        hook.url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-CCP-Timestamp": str(ts),
            "X-CCP-Signature": sign(hook.secret, body, ts),
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=hook.timeout_s) as resp:  # noqa: S310
        if resp.status != 200:
            return None
        data = json.loads(resp.read(65_536) or b"null")
    return data if isinstance(data, dict) else None


SNAPSHOT_NAME = "switchboard"


def save_snapshot(data: bytes, at: float) -> None:
    from django.utils import timezone

    from telephony.models import EngineSnapshot

    _fresh()
    EngineSnapshot.objects.update_or_create(
        name=SNAPSHOT_NAME,
        defaults={
            "data": data,
            "engine_time": at,
            "size": len(data),
            "stored_at": timezone.now(),
        },
    )


def load_snapshot() -> tuple[bytes, float] | None:
    from telephony.models import EngineSnapshot

    _fresh()
    row = EngineSnapshot.objects.filter(name=SNAPSHOT_NAME).first()
    return (bytes(row.data), row.engine_time) if row is not None else None


def load_progress(schema: str, call_id: str) -> dict[str, Any] | None:
    from calls.models import Call

    _fresh()
    if _tenant(schema) is None:
        return None
    with schema_context(schema):
        state = (
            Call.objects.filter(call_id=call_id, meter_complete=False)
            .values_list("meter_state", flat=True)
            .first()
        )
    return state if isinstance(state, dict) and state else None


class DbSink:
    """See the module docstring."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.recorded = 0
        self.failed = 0

    async def call_finished(self, summary: CallSummary, segments: list[Any]) -> None:
        for attempt in range(5):
            try:
                outcome = await sync_to_async(record_call, thread_sensitive=False)(summary)
                break
            except Exception:  # noqa: BLE001  # retried, then logged with the whole call
                if attempt == 4:
                    self.failed += 1
                    log.exception(
                        "call %s could not be recorded: %s",
                        summary.call_id,
                        json.dumps(summary.to_dict()),
                    )
                    return
                await asyncio.sleep(0.5 * 2**attempt)
        if outcome == "recorded":
            self.recorded += 1
            await sync_to_async(queue_reconcile, thread_sensitive=False)(summary.tenant_id)

    async def call_progress(self, summary: CallSummary) -> None:
        """A call in progress (queue entry, bridge): stored with its meter so far, so a
        successor can close it from its CDRs if this process dies."""
        try:
            await sync_to_async(record_call, thread_sensitive=False)(summary)
        except Exception:  # noqa: BLE001  # progress is a safety net; the final record retries
            log.warning("progress of call %s not stored", summary.call_id, exc_info=True)

    async def notice(self, kind: str, data: dict[str, Any]) -> None:
        level = logging.WARNING if kind in ("unknown_number", "stall") else logging.INFO
        log.log(level, "switchboard %s: %s", kind, json.dumps(data, default=str))
        if kind == "recording" and data.get("tenant_id"):
            try:
                await sync_to_async(register_recording, thread_sensitive=False)(data)
            except Exception:  # noqa: BLE001  # the importer adopts unreported files later
                log.warning(
                    "recording of call %s not registered", data.get("call_id"), exc_info=True
                )
        elif kind == "masked" and data.get("tenant_id"):
            try:
                await sync_to_async(mark_masked, thread_sensitive=False)(data)
            except Exception:  # noqa: BLE001
                log.warning("masking of call %s not recorded", data.get("call_id"), exc_info=True)

    async def lookup(self, tenant_id: str, caller: str) -> dict[str, Any] | None:
        found = await sync_to_async(lookup_contact, thread_sensitive=False)(tenant_id, caller)
        plan = self.directory.tenants.get(tenant_id)
        if plan is not None and plan.lookup is not None:
            try:
                remote = await asyncio.to_thread(call_webhook, plan.lookup, tenant_id, caller)
            except Exception as exc:  # noqa: BLE001  # never blocks the call: fall back to the menu
                log.info("lookup webhook of %s failed: %r", tenant_id, exc)
                remote = None
            if remote:
                found = {**(found or {}), **remote}
        return found

    async def save_engine_snapshot(self, data: bytes, at: float) -> None:
        await sync_to_async(save_snapshot, thread_sensitive=False)(data, at)

    async def load_engine_snapshot(self) -> tuple[bytes, float] | None:
        return await sync_to_async(load_snapshot, thread_sensitive=False)()

    async def load_progress(self, tenant_id: str, call_id: str) -> dict[str, Any] | None:
        return await sync_to_async(load_progress, thread_sensitive=False)(tenant_id, call_id)


class LeaderLock:
    """A PostgreSQL advisory lock held on its own connection (see the module docstring)."""

    def __init__(self, dsn: str, name: str = LOCK_NAME) -> None:
        self.dsn = dsn
        self.key = zlib.crc32(name.encode()) - 2**31
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def acquire(self, *, poll_s: float = 0.5, on_wait: Any = None) -> None:
        """Wait until this process is the leader."""
        waited = False
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                row = await cur.fetchone()
                if row and row[0]:
                    return
            except psycopg.Error as exc:
                log.warning("leader lock: %s; retrying", exc)
                self.conn = None
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            await asyncio.sleep(poll_s)

    async def still_held(self) -> bool:
        try:
            assert self.conn is not None
            await self.conn.execute("SELECT 1")
            return True
        except (psycopg.Error, AssertionError):
            return False

    async def release(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            finally:
                await self.conn.close()
                self.conn = None


def dsn_from_settings() -> str:
    db = settings.DATABASES["default"]
    parts = {
        "dbname": db["NAME"],
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "host": db.get("HOST") or "",
        "port": str(db.get("PORT") or ""),
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)
