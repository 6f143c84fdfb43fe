"""Calls' verbs: record what the switchboard metered, reconcile it with CDRs, hand it to billing.

Every verb takes the tenant explicitly and runs inside ``schema_context(tenant.schema_name)``;
nothing relies on a schema left set by someone else. The pure work is in
:mod:`telephony.callflow.meter` (the meter and :func:`~telephony.callflow.meter.reconcile`).

Exactly-once rating: an ``ok`` call's final segments are written to the ledger
(:func:`billing.actions.do_record_segments`) and the call is marked ``rated`` in one
transaction, under a row lock on the call. A crash between the two rolls both back; and should
the ledger ever hold a call's segments without the mark, the ledger's own idempotency (one
entry per ``(leg, kind, start_ms)``) makes the rerun write nothing twice. The final segments
are a deterministic function of the stored segments and the CDRs, so a rerun asks for the very
same keys.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context

from billing import actions as billing_actions
from billing.rating import RatingError
from billing.rating import Segment as CoreSegment
from calls.models import Call, CdrFlag, Leg, Segment
from cdrs.models import RawCdr
from telephony.callflow.meter import CallMeter, CdrTimes, MeterError, reconcile
from tenants.models import Client

log = logging.getLogger(__name__)

#: Seconds a CDR no call accounts for may wait for its call before it is flagged.
DEFAULT_GRACE_S = 300
#: Largest difference (ms) between a segment edge and its CDR's that is snapped, not flagged.
DEFAULT_TOLERANCE_MS = 1000

CALL_FIELDS = frozenset(
    {"call_id", "parent_call_id", "did", "caller_number", "started_ms", "outcome", "cause"}
    | {"queue", "agent", "extra_legs"}
)


class CallRecordError(ValueError):
    """A call the switchboard handed over cannot be recorded; the message says why."""


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise CallRecordError(f"{what} {value!r} is not a UUID") from None


@dataclass(frozen=True)
class _LegSpec:
    uuid: uuid.UUID
    role: str
    answered_ms: int | None
    ended_ms: int | None
    agent: str
    target: str


def _leg_specs(meter: CallMeter, call_dict: Mapping[str, Any]) -> list[_LegSpec]:
    specs: dict[uuid.UUID, _LegSpec] = {}
    for leg in meter.legs():
        u = _uuid(leg["uuid"], f"{leg['role']} leg of call {meter.call_id}:")
        specs[u] = _LegSpec(
            u,
            leg["role"],
            leg["answered_ms"],
            leg["ended_ms"],
            leg["agent"] or "",
            leg["target"] or "",
        )
    for extra in call_dict.get("extra_legs") or ():
        u = _uuid(extra.get("uuid"), f"extra leg of call {meter.call_id}:")
        role = extra.get("role", Leg.Role.AGENT)
        if role not in (Leg.Role.AGENT, Leg.Role.ESCALATION):
            raise CallRecordError(f"extra leg {u}: role must be agent or escalation, got {role!r}")
        if u not in specs:  # a metered leg wins: it carries times
            specs[u] = _LegSpec(
                u, role, None, None, extra.get("agent") or "", extra.get("target") or ""
            )
    return list(specs.values())


def _call_values(meter: CallMeter, call_dict: Mapping[str, Any]) -> dict[str, Any]:
    outcome, cause = meter.outcome() if meter.is_ended else ("", "")
    values: dict[str, Any] = {
        "a_leg_uuid": _uuid(meter.a_leg_uuid, f"A leg of call {meter.call_id}:"),
        "origin": meter.origin,
        "node": meter.node[:64],
        "answered_ms": meter.answer_ms,
        "ended_ms": meter.hangup_ms,
        "outcome": outcome,
        "cause": cause[:64],
        "queue": (meter.queue_id or "")[:64],
        "agent": (meter.agent_id or "")[:64],
        "meter_state": meter.to_dict(),
        "meter_complete": meter.is_complete,
        "rejected_events": meter.rejected,
    }
    if call_dict.get("started_ms") is not None:
        if type(call_dict["started_ms"]) is not int:
            raise CallRecordError(f"call {meter.call_id}: started_ms must be int epoch ms")
        values["started_ms"] = call_dict["started_ms"]
    for name in ("parent_call_id", "did", "caller_number", "outcome", "cause"):
        if call_dict.get(name) is not None:
            values[name] = str(call_dict[name])[:64]
    for name in ("queue", "agent"):
        if call_dict.get(name):
            values[name] = str(call_dict[name])[:64]
    if values["outcome"] not in Call.Outcome.values:
        raise CallRecordError(f"call {meter.call_id}: unknown outcome {values['outcome']!r}")
    return values


def do_record_call(tenant: Client, call_dict: Mapping[str, Any], meter: CallMeter) -> Call:
    """Store (or update) one call as the switchboard metered it, idempotently by call id.

    ``call_dict`` adds what the meter does not know: ``did``, ``caller_number``,
    ``started_ms``, ``parent_call_id`` (a callback's original call), and may override
    ``outcome``/``cause``/``queue``/``agent``; ``extra_legs`` lists unmetered legs the call
    used (``{"uuid", "role": "agent"|"escalation", "agent"?, "target"?}``, e.g. an agent who
    answered an offer that was then withdrawn) so their CDRs are not flagged.

    Recording the same call again (a switchboard that restarted and resumed the meter) updates
    the call, its legs and its segments in place: a segment is identified by ``(leg, kind,
    start_ms)`` and never duplicated; segments the meter no longer has are removed. A call
    that billing already rated keeps its segments (they are what was billed). A changed call
    goes back to ``waiting`` for reconciliation.
    """
    unknown = set(call_dict) - CALL_FIELDS
    if unknown:
        raise CallRecordError(f"unknown call fields: {', '.join(sorted(unknown))}")
    if meter.tenant_id != tenant.schema_name:
        raise CallRecordError(
            f"call {meter.call_id} was metered for tenant {meter.tenant_id!r}, "
            f"not {tenant.schema_name!r}"
        )
    if call_dict.get("call_id", meter.call_id) != meter.call_id:
        raise CallRecordError(
            f"call_dict names call {call_dict['call_id']!r}, the meter {meter.call_id!r}"
        )
    values = _call_values(meter, call_dict)
    legs = _leg_specs(meter, call_dict)
    spans = meter.spans()
    with schema_context(tenant.schema_name), transaction.atomic():
        call = Call.objects.select_for_update().filter(call_id=meter.call_id).first()
        created = call is None
        if call is None:
            values.setdefault("started_ms", meter.answer_ms or meter.hangup_ms)
            call = Call.objects.create(call_id=meter.call_id, **values)
        elif call.rated:
            # Billed: the segments are final. Keep the record of what happened up to date.
            for name in ("outcome", "cause", "did", "caller_number", "meter_state"):
                setattr(call, name, values.get(name, getattr(call, name)))
            call.save()
            log.info("call %s is already rated; its segments stay as billed", call.call_id)
            return call
        else:
            for name, value in values.items():
                setattr(call, name, value)  # saved below, with the reconcile status

        uuids = [leg.uuid for leg in legs]
        known = list(Leg.objects.filter(Q(uuid__in=uuids) | Q(call=call)))
        foreign = next((leg for leg in known if leg.call_id != call.pk), None)
        if foreign is not None:
            raise CallRecordError(
                f"call {call.call_id}: leg {foreign.uuid} already belongs to call "
                f"{Call.objects.filter(pk=foreign.call_id).values_list('call_id', flat=True).first()}"
            )
        existing_legs = {leg.uuid: leg for leg in known}
        new_legs, changed_legs = [], []
        for spec in legs:
            values_now = {
                "role": spec.role,
                "node": meter.node[:64],
                "answered_ms": spec.answered_ms,
                "ended_ms": spec.ended_ms,
                "agent": spec.agent[:64],
                "target": spec.target[:128],
            }
            row = existing_legs.get(spec.uuid)
            if row is None:
                new_legs.append(Leg(uuid=spec.uuid, call=call, **values_now))
            elif any(getattr(row, k) != v for k, v in values_now.items()):
                for k, v in values_now.items():
                    setattr(row, k, v)
                changed_legs.append(row)
        Leg.objects.bulk_create(new_legs)
        Leg.objects.bulk_update(
            changed_legs, ["role", "node", "answered_ms", "ended_ms", "agent", "target"]
        )

        wanted = {(_uuid(s.leg_uuid, "segment leg"), s.kind, s.start_ms): s for s in spans}
        gone, changed_rows = [], []
        for row in [] if created else Segment.objects.filter(call=call):
            span = wanted.pop((row.leg_uuid, row.kind, row.start_ms), None)
            if span is None:
                gone.append(row.pk)
                continue
            new = (
                span.end_ms,
                (span.agent or "")[:64],
                (span.queue or "")[:64],
                (span.target or "")[:128],
                span.end_reason[:64],
                meter.origin,
            )
            if (row.end_ms, row.agent, row.queue, row.target, row.end_reason, row.origin) != new:
                row.end_ms, row.agent, row.queue, row.target, row.end_reason, row.origin = new
                changed_rows.append(row)
        if gone:
            Segment.objects.filter(pk__in=gone).delete()
        Segment.objects.bulk_update(
            changed_rows, ["end_ms", "agent", "queue", "target", "end_reason", "origin"]
        )
        Segment.objects.bulk_create(
            Segment(
                call=call,
                leg_uuid=leg,
                kind=kind,
                origin=meter.origin,
                start_ms=start,
                end_ms=s.end_ms,
                agent=(s.agent or "")[:64],
                queue=(s.queue or "")[:64],
                target=(s.target or "")[:128],
                end_reason=s.end_reason[:64],
            )
            for (leg, kind, start), s in wanted.items()
        )
        if not created:
            if gone or changed_rows or wanted or call.reconcile_status == Call.Reconcile.MISMATCH:
                call.reconcile_status = Call.Reconcile.WAITING
                call.reconcile_messages = []
            call.save()
    return call


# -- reconciliation ------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    tenant: str
    checked: int = 0
    ok: int = 0
    waiting: int = 0
    mismatch: int = 0
    flagged: int = 0
    rated: int = 0
    segments_written: int = 0
    segments_already_in_ledger: int = 0
    rating_errors: list[str] = field(default_factory=list)
    cdr_flags: int = 0
    closed_from_cdr: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.tenant}: {self.checked} calls checked: {self.ok} ok, {self.waiting} waiting, "
            f"{self.mismatch} mismatch, {self.flagged} flagged; {self.rated} rated "
            f"({self.segments_written} segments written, {self.segments_already_in_ledger} "
            f"already in the ledger); {len(self.rating_errors)} rating errors; "
            f"{self.cdr_flags} CDRs flagged; {self.closed_from_cdr} calls closed from CDRs"
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(milliseconds=1)


def cdr_times(cdr: RawCdr) -> CdrTimes:
    """What a stored CDR says about its leg's time, for :func:`reconcile`."""
    answer = _epoch_ms(cdr.answered_at) if cdr.answered else None
    return CdrTimes(
        leg_uuid=str(cdr.leg_uuid),
        answer_ms=answer,
        end_ms=_epoch_ms(cdr.ended_at),
        billsec_ms=cdr.billmsec or cdr.billsec * 1000,
        hangup_cause=cdr.hangup_cause,
    )


def _core_segments(tenant: Client, call: Call, rows: list[Segment]) -> list[CoreSegment]:
    return [
        CoreSegment(
            tenant.schema_name,
            call.call_id,
            str(r.leg_uuid),
            r.kind,  # type: ignore[arg-type]
            r.origin,  # type: ignore[arg-type]
            r.start_ms,
            r.end_ms,
            hangup_cause=call.cause
            if r.leg_uuid == call.a_leg_uuid and call.cause
            else "NORMAL_CLEARING",
            agent=r.agent or None,
            queue=r.queue or None,
        )
        for r in rows
    ]


def _mark_rated(call: Call, rows: list[Segment], final: tuple[CoreSegment, ...]) -> None:
    """Mark ``call`` rated and keep what billing was given, on the objects (the caller saves
    them in the transaction that wrote the ledger).

    ``final`` is ``reconcile()``'s output for ``rows`` in the same order (per leg, by start;
    only a leg's first start and last end may have moved)."""
    for row, seg in zip(rows, final, strict=True):
        if (str(row.leg_uuid), row.kind) != (seg.leg_uuid, seg.kind.value):
            raise RuntimeError(f"call {call.call_id}: reconciled segments out of step")
        row.billed_start_ms, row.billed_end_ms = seg.start_ms, seg.end_ms
    call.rated = True
    call.rated_at = timezone.now()
    call.rating_error = ""


_CALL_FIELDS_SAVED = [
    "reconcile_status",
    "reconcile_messages",
    "reconciled_at",
    "rated",
    "rated_at",
    "rating_error",
]  # not updated_at: it says when the switchboard last recorded the call (see _finish_lost_calls)

#: Calls reconciled (and rated) per transaction.
CHUNK = 200


@dataclass
class _Billable:
    call: Call
    rows: list[Segment]
    final: tuple[CoreSegment, ...]


def _rate(tenant: Client, items: list[_Billable], report: ReconcileReport) -> bool:
    """Write ``items``' segments to the ledger and mark them rated, all or nothing (a
    savepoint inside the chunk's transaction). False (nothing kept) on a rating error."""
    try:
        with transaction.atomic():
            segments = [seg for item in items for seg in item.final]
            written = (
                billing_actions.do_record_segments(tenant, segments)
                if segments
                else billing_actions.RecordResult()
            )
            for item in items:
                _mark_rated(item.call, item.rows, item.final)
            rows = [row for item in items for row in item.rows]
            Segment.objects.bulk_update(rows, ["billed_start_ms", "billed_end_ms"], batch_size=500)
            Call.objects.bulk_update(
                [item.call for item in items], _CALL_FIELDS_SAVED, batch_size=500
            )
    except (RatingError, billing_actions.BillingError) as exc:
        for item in items:
            item.call.rated, item.call.rated_at = False, None
        if len(items) == 1:
            call = items[0].call
            call.rating_error = str(exc)
            report.rating_errors.append(f"call {call.call_id}: {exc}")
            log.warning("call %s of %s not rated: %s", call.call_id, tenant.schema_name, exc)
        return False
    report.rated += len(items)
    report.segments_written += written.written
    report.segments_already_in_ledger += written.already_recorded
    return True


def _reconcile_chunk(
    tenant: Client, pks: list[int], report: ReconcileReport, tolerance_ms: int
) -> None:
    """Reconcile (and rate) the calls ``pks`` in one transaction, under row locks."""
    with transaction.atomic():
        calls = list(
            Call.objects.select_for_update().filter(pk__in=pks, rated=False).order_by("pk")
        )
        if not calls:
            return
        legs: dict[int, list[Leg]] = {call.pk: [] for call in calls}
        for leg in Leg.objects.filter(call__in=calls):
            legs[leg.call_id].append(leg)
        rows: dict[int, list[Segment]] = {call.pk: [] for call in calls}
        for row in Segment.objects.filter(call__in=calls):
            rows[row.call_id].append(row)
        leg_uuids = [leg.uuid for call_legs in legs.values() for leg in call_legs]
        cdrs = {
            str(c.leg_uuid): cdr_times(c) for c in RawCdr.objects.filter(leg_uuid__in=leg_uuids)
        }
        flags: dict[tuple[uuid.UUID, str], CdrFlag] = {}
        billable: list[_Billable] = []
        now = timezone.now()
        for call in calls:
            call_legs = legs[call.pk]
            call_rows = sorted(rows[call.pk], key=lambda r: (str(r.leg_uuid), r.start_ms, r.end_ms))
            result = reconcile(
                _core_segments(tenant, call, call_rows),
                {str(leg.uuid): cdrs[str(leg.uuid)] for leg in call_legs if str(leg.uuid) in cdrs},
                a_leg_uuid=str(call.a_leg_uuid),
                unmetered_legs=[str(leg.uuid) for leg in call_legs if leg.role == Leg.Role.AGENT],
                open_legs=[
                    str(leg.uuid)
                    for leg in call_legs
                    if leg.role == Leg.Role.ESCALATION
                    and leg.answered_ms is not None
                    and leg.ended_ms is None
                ],
                tolerance_ms=tolerance_ms,
            )
            for leg_uuid, reason in result.flags:
                key = (uuid.UUID(leg_uuid), reason)
                flags[key] = CdrFlag(
                    cdr_uuid=key[0], reason=reason, call=call, message=f"leg of call {call.call_id}"
                )
            status = result.status
            if status == "ok" and result.flags:
                status = Call.Reconcile.FLAGGED
            call.reconcile_status = status
            recovered = (call.meter_state or {}).get("closed_from_cdr") or []
            call.reconcile_messages = [*recovered, *result.messages]
            call.reconciled_at = now
            report.checked += 1
            setattr(report, status, getattr(report, status) + 1)
            if status in (Call.Reconcile.OK, Call.Reconcile.FLAGGED):
                billable.append(_Billable(call, call_rows, result.segments))
        if flags:
            existing = set(
                CdrFlag.objects.filter(cdr_uuid__in=[k[0] for k in flags]).values_list(
                    "cdr_uuid", "reason"
                )
            )
            new = [flag for key, flag in flags.items() if key not in existing]
            CdrFlag.objects.bulk_create(new, ignore_conflicts=True)
            report.cdr_flags += len(new)
        Call.objects.bulk_update(calls, _CALL_FIELDS_SAVED, batch_size=500)
        # Rate the chunk at once; if billing refuses it, find the call(s) it refuses one by one.
        if billable and not _rate(tenant, billable, report) and len(billable) > 1:
            for item in billable:
                _rate(tenant, [item], report)
        Call.objects.bulk_update(
            [item.call for item in billable if not item.call.rated], _CALL_FIELDS_SAVED
        )


def _flag_orphan_cdrs(tenant: Client, grace_s: float, report: ReconcileReport) -> None:
    """Flag answered CDRs of this tenant that no call's legs account for after the grace."""
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    orphans = (
        RawCdr.objects.filter(answered=True, received_at__lte=cutoff)
        .exclude(leg_uuid__in=Leg.objects.values("uuid"))
        .exclude(
            leg_uuid__in=CdrFlag.objects.filter(reason=CdrFlag.Reason.CDR_WITHOUT_SEGMENTS).values(
                "cdr_uuid"
            )
        )
        .values_list("leg_uuid", "billmsec", "call_uuid")
    )
    flags = [
        CdrFlag(
            cdr_uuid=leg,
            reason=CdrFlag.Reason.CDR_WITHOUT_SEGMENTS,
            message=(
                f"answered leg ({billmsec / 1000:.3f} s, call_uuid {call_uuid or '-'}) is part "
                f"of no call of {tenant.schema_name}"
            ),
        )
        for leg, billmsec, call_uuid in orphans.iterator()
    ]
    CdrFlag.objects.bulk_create(flags, ignore_conflicts=True)
    report.cdr_flags += len(flags)


def _finish_lost_calls(tenant: Client, grace_s: float, report: ReconcileReport) -> None:
    """Close, from their CDRs, calls whose meter the switchboard never finished (it died or
    lost the node while the caller hung up) and that nobody touched for ``grace_s``."""
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    metered_legs = Leg.objects.filter(call=OuterRef(OuterRef("pk"))).exclude(role=Leg.Role.AGENT)
    stale = Call.objects.filter(
        Exists(RawCdr.objects.filter(leg_uuid__in=metered_legs.values("uuid"))),
        meter_complete=False,
        rated=False,
        updated_at__lte=cutoff,
    )
    for pk in list(stale.order_by("id").values_list("pk", flat=True)):
        with transaction.atomic():
            # Locked and checked again: a switchboard recording the call right now wins.
            call = (
                Call.objects.select_for_update()
                .filter(pk=pk, meter_complete=False, updated_at__lte=cutoff)
                .first()
            )
            if call is None:
                continue
            legs = [leg.uuid for leg in call.legs.all() if leg.role != Leg.Role.AGENT]
            cdrs = {str(c.leg_uuid): cdr_times(c) for c in RawCdr.objects.filter(leg_uuid__in=legs)}
            try:
                meter = CallMeter.from_dict(call.meter_state)
            except (MeterError, KeyError, TypeError) as exc:
                report.errors.append(f"call {call.call_id}: stored meter state unusable: {exc}")
                continue
            if meter.finish_from_cdrs(cdrs):
                do_record_call(tenant, {}, meter)
                report.closed_from_cdr += 1
                log.warning(
                    "call %s of %s closed from CDRs: %s",
                    call.call_id,
                    tenant.schema_name,
                    "; ".join(meter.closed_from_cdr),
                )


def do_reconcile(
    tenant: Client,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> ReconcileReport:
    """Reconcile every ended, not yet rated call of ``tenant`` with its legs' CDRs.

    For each: run :func:`~telephony.callflow.meter.reconcile`, store the status and messages,
    flag CDRs of the call's legs that no segment accounts for, and for ``ok`` (or ``flagged``)
    calls write the final segments to the ledger and mark the call rated, in one transaction
    (exactly once, see the module's docstring). A rating error (no plan, a plan gap) is stored
    on the call and retried next time. Answered CDRs older than ``grace_s`` that belong to no
    call are flagged ``cdr_without_segments``.

    First, calls whose meter was never finished (the switchboard lost them) and that nobody
    touched for ``grace_s`` are closed from their legs' CDRs
    (:meth:`~telephony.callflow.meter.CallMeter.finish_from_cdrs`).
    """
    report = ReconcileReport(tenant=tenant.schema_name)
    with schema_context(tenant.schema_name):
        _finish_lost_calls(tenant, grace_s, report)
        pending = (
            Call.objects.filter(ended_ms__isnull=False, rated=False)
            .filter(
                Q(reconcile_status=Call.Reconcile.WAITING)
                | Q(reconcile_status__in=[Call.Reconcile.OK, Call.Reconcile.FLAGGED])
            )
            .order_by("id")
            .values_list("pk", flat=True)
        )
        pks = list(pending)
        for i in range(0, len(pks), CHUNK):
            _reconcile_chunk(tenant, pks[i : i + CHUNK], report, tolerance_ms)
        with transaction.atomic():
            _flag_orphan_cdrs(tenant, grace_s, report)
    return report


# -- calls that need attention (provider console) -------------------------------------------
class AttentionError(ValueError):
    """A request about a call or a flag that cannot be carried out; the message says why."""


#: A note on a resolved flag is required, and kept short enough to read in the audit log.
RESOLUTION_NOTE_MAX = 2000


def do_resolve_flag(
    tenant: Client, flag_id: int, *, note: str, actor: Any, request: Any = None
) -> CdrFlag:
    """Mark ``flag_id`` of ``tenant`` resolved with ``note`` and audit it, once.

    The flag's row is locked so two clerks resolving it at once write it (and the audit
    event) once; a flag already resolved raises :class:`AttentionError`."""
    from tenants import audit

    note = (note or "").strip()
    if not note:
        raise AttentionError(_("Say how the flag was resolved (the note is required)."))
    if len(note) > RESOLUTION_NOTE_MAX:
        raise AttentionError(
            _("The note is too long (at most %(n)s characters).") % {"n": RESOLUTION_NOTE_MAX}
        )
    with schema_context(tenant.schema_name), transaction.atomic():
        flag = CdrFlag.objects.select_for_update().filter(pk=flag_id).first()
        if flag is None:
            raise CdrFlag.DoesNotExist
        if flag.resolved_at is not None:
            raise AttentionError(
                _("This flag was already resolved by %(who)s.")
                % {"who": flag.resolved_by_email or _("someone")}
            )
        flag.resolved_at = timezone.now()
        flag.resolved_by_id = actor.pk
        flag.resolved_by_email = actor.email
        flag.resolution_note = note
        flag.save(
            update_fields=["resolved_at", "resolved_by_id", "resolved_by_email", "resolution_note"]
        )
        call_id = flag.call.call_id if flag.call_id else None
        with schema_context("public"):
            audit.record(
                "calls.cdr_flag_resolved",
                actor=actor,
                request=request,
                tenant=tenant,
                obj=flag,
                details={
                    "cdr_uuid": str(flag.cdr_uuid),
                    "reason": flag.reason,
                    "call_id": call_id,
                    "note": note,
                },
            )
    return flag


def queue_reconcile_job(tenant: Client) -> None:
    """Queue the tenant's reconciliation job after commit, unless one is already queued
    (the queueing lock the switchboard uses: one pending job takes every waiting call)."""
    from procrastinate.exceptions import AlreadyEnqueued

    from calls.tasks import reconcile_tenant

    def defer() -> None:
        try:
            # A savepoint: a refused duplicate must not abort an enclosing transaction.
            with transaction.atomic():
                reconcile_tenant.configure(  # type: ignore[attr-defined]
                    queueing_lock=f"reconcile-{tenant.schema_name}"
                ).defer(tenant_schema=tenant.schema_name)
        except AlreadyEnqueued:
            pass

    transaction.on_commit(defer)


def do_request_reconcile(
    tenant: Client, *, call_id: str | None = None, actor: Any, request: Any = None
) -> Call | None:
    """Ask for reconciliation again: for one call (a ``mismatch`` is put back to ``waiting``
    so the job looks at it again) or for the whole tenant; queue the tenant's job and audit.

    A rated call is final (what was billed stays billed): :class:`AttentionError`."""
    from tenants import audit

    call, previous = None, None
    with transaction.atomic():
        if call_id is not None:
            with schema_context(tenant.schema_name):
                call = Call.objects.select_for_update().filter(call_id=call_id).first()
                if call is None:
                    raise Call.DoesNotExist
                if call.rated:
                    raise AttentionError(
                        _("Call %(call)s is already rated; its billed segments are final.")
                        % {"call": call.call_id}
                    )
                if call.ended_ms is None:
                    raise AttentionError(
                        _("Call %(call)s has not ended yet.") % {"call": call.call_id}
                    )
                previous = call.reconcile_status
                if previous == Call.Reconcile.MISMATCH:
                    call.reconcile_status = Call.Reconcile.WAITING
                    # not updated_at: it says when the switchboard last recorded the call
                    call.save(update_fields=["reconcile_status"])
        with schema_context("public"):
            audit.record(
                "calls.reconcile_requested",
                actor=actor,
                request=request,
                tenant=tenant,
                obj=call,
                details={"call_id": call_id, "previous_status": previous}
                if call is not None
                else {"scope": "tenant"},
            )
        queue_reconcile_job(tenant)
    return call
