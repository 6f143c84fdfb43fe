"""The call meter: one call's switch events in, its segments out (shared/design/segments.md).

Pure Python, no Django (the TID251 ban applies): the switchboard feeds one :class:`CallMeter`
per call with the switch's event timestamps (``Event-Date-Timestamp``, in integer ms), and
persists :meth:`CallMeter.to_dict` so that a restarted switchboard resumes the call where it
left off. :func:`reconcile` then checks a call's segments against its legs' CDRs (the ground
truth) before billing rates them.

The caller's leg (the A leg) is a partition: from its answer to its hangup every millisecond
belongs to exactly one segment of kind ``ivr``, ``queue``, ``agent``, ``handoff`` (or, for a
callback call whose A leg is the outbound leg, ``callback_dial`` until the caller's queue
entry). The meter keeps exactly one *open* A-leg span at a time; every transition closes it at
the event's time and opens the next at the same time, so the closed spans can have neither a
gap nor an overlap. Escalation legs (the client's second line) are separate spans from their
answer to their hangup; they overlap ``agent`` and ``handoff`` by design.

Zero-length spans (a queue entry and a bridge in the same millisecond) are dropped when they
close: they bill nothing and would only make ``(leg, kind, start_ms)`` ambiguous.

An event that does not fit (out of order, unknown leg, after hangup, a transition the state
does not allow) raises :class:`MeterError` (a ``ValueError``) *before* anything changes, and is
counted in :attr:`CallMeter.rejected`; the partition is never corrupted by a bad event.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from billing.rating.segment import Origin, Segment, SegmentKind, parse_origin

__all__ = [
    "A_LEG_KINDS",
    "LEAVE_REASONS",
    "CallMeter",
    "CdrTimes",
    "MeterError",
    "MeteredSpan",
    "Reconciliation",
    "reconcile",
]

#: Kinds that partition the caller's leg.
A_LEG_KINDS = frozenset({"ivr", "queue", "agent", "handoff", "callback_dial"})
#: Why a caller leaves a queue without an agent (the time after is ``ivr`` until the next event).
LEAVE_REASONS = ("abandon", "overflow", "voicemail", "callback", "timeout", "exit_key")
#: Call outcomes (the conservation test's columns).
OUTCOMES = ("ivr", "answered", "abandoned", "overflowed", "escalated", "callback", "failed")

_STATES = ("new", "ivr", "queue", "agent", "handoff", "callback_dial", "ended")
_FORMAT = 1


class MeterError(ValueError):
    """An event the meter cannot apply; nothing was changed. The message says why."""


@dataclass(frozen=True, slots=True)
class MeteredSpan:
    """One closed span of one leg, with everything segments.md says a segment carries."""

    leg_uuid: str
    kind: str
    start_ms: int
    end_ms: int
    agent: str | None = None
    queue: str | None = None
    target: str | None = None
    end_reason: str = ""

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every field (they are all str, int or
        # None here) and was ~5 % of the switchboard's CPU (progress records at 50 calls/s).
        return {
            "leg_uuid": self.leg_uuid,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "agent": self.agent,
            "queue": self.queue,
            "target": self.target,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeteredSpan:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


_F = TypeVar("_F", bound=Callable[..., Any])


def _counted(method: _F) -> _F:
    """Count every rejected event (the switchboard may catch, log and go on)."""

    @functools.wraps(method)
    def wrapper(self: CallMeter, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except MeterError:
            self.rejected += 1
            raise

    return wrapper  # type: ignore[return-value]


def _check_ms(at_ms: object, what: str) -> int:
    if type(at_ms) is not int:
        raise MeterError(f"{what}: the time must be int epoch ms, got {at_ms!r}")
    if at_ms < 0:
        raise MeterError(f"{what}: the time {at_ms} is before the epoch")
    return at_ms


def _check_str(value: object, what: str) -> str:
    if type(value) is not str or not value:
        raise MeterError(f"{what} must be a non-empty string, got {value!r}")
    return value


class CallMeter:
    """Meters one call. Feed it switch events in order; read :meth:`segments`.

    ``tenant_id`` is the tenant's schema name (billing checks it), ``call_id`` the call's id,
    ``a_leg_uuid`` the caller's leg, ``origin`` ``direct``/``overflow``/``callback``, ``node``
    the switch node the call runs on. All times are integer epoch milliseconds taken from the
    switch's events, never from the platform's clock.
    """

    def __init__(
        self, tenant_id: str, call_id: str, a_leg_uuid: str, origin: str, node: str
    ) -> None:
        self.tenant_id = _check_str(tenant_id, "tenant_id")
        self.call_id = _check_str(call_id, "call_id")
        self.a_leg_uuid = _check_str(a_leg_uuid, "a_leg_uuid")
        try:
            self.origin = parse_origin(origin).value
        except ValueError as exc:
            raise MeterError(str(exc)) from None
        self.node = node if isinstance(node, str) else ""
        self.state = "new"
        self.answer_ms: int | None = None
        self.hangup_ms: int | None = None
        self.hangup_cause = ""
        self.callback = self.origin == Origin.CALLBACK.value
        self.rejected = 0
        # The open A-leg span: kind, start and attributes; None before answer and after hangup.
        self._open: dict[str, Any] | None = None
        self._closed: list[MeteredSpan] = []
        # Escalation legs by uuid: start, end (None while up), target, cause, agent, queue.
        self._esc: dict[str, dict[str, Any]] = {}
        # Agent legs by uuid -> agent id (agent legs carry no segments of their own).
        self._agent_legs: dict[str, str] = {}
        self.queue_id: str | None = None  # the last queue the caller entered
        self.agent_id: str | None = None  # the last agent bridged
        self.queue_exits: list[str] = []  # leave_queue reasons, in order
        self.ever_queued = False
        self.ever_bridged = False
        # What finish_from_cdrs() had to close from CDRs (the switchboard lost those events).
        self.closed_from_cdr: list[str] = []

    # -- reading --------------------------------------------------------------------------
    @property
    def answered_ms(self) -> int | None:
        return self.answer_ms

    @property
    def is_answered(self) -> bool:
        return self.answer_ms is not None

    @property
    def is_ended(self) -> bool:
        return self.state == "ended"

    @property
    def open_legs(self) -> list[str]:
        """Escalation legs answered and not yet ended (their segment is not closed yet)."""
        return [leg for leg, e in self._esc.items() if e["end"] is None]

    @property
    def is_complete(self) -> bool:
        """Hung up and no escalation leg still open: :meth:`segments` is the whole call."""
        return self.is_ended and not self.open_legs

    def legs(self) -> list[dict[str, Any]]:
        """Every leg the meter knows: ``uuid``, ``role`` (a/callback/agent/escalation),
        ``answered_ms`` and ``ended_ms`` (None while up), ``agent``/``target``."""
        out: list[dict[str, Any]] = [
            {
                "uuid": self.a_leg_uuid,
                "role": "callback" if self.callback else "a",
                "answered_ms": self.answer_ms,
                "ended_ms": self.hangup_ms,
                "agent": None,
                "target": None,
            }
        ]
        for leg, agent in self._agent_legs.items():
            out.append(
                {
                    "uuid": leg,
                    "role": "agent",
                    "answered_ms": None,
                    "ended_ms": None,
                    "agent": agent,
                    "target": None,
                }
            )
        for leg, e in self._esc.items():
            out.append(
                {
                    "uuid": leg,
                    "role": "escalation",
                    "answered_ms": e["start"],
                    "ended_ms": e["end"],
                    "agent": e["agent"],
                    "target": e["target"],
                }
            )
        return out

    def spans(self) -> list[MeteredSpan]:
        """Closed spans: the A leg's in time order, then escalation legs' by answer time."""
        esc = [
            MeteredSpan(
                leg,
                SegmentKind.ESCALATION.value,
                e["start"],
                e["end"],
                agent=e["agent"],
                queue=e["queue"],
                target=e["target"],
                end_reason=e["cause"],
            )
            for leg, e in sorted(self._esc.items(), key=lambda kv: (kv[1]["start"], kv[0]))
            if e["end"] is not None and e["end"] > e["start"]
        ]
        return [*self._closed, *esc]

    def segments(self) -> list[Segment]:
        """Closed segments as the rating core's :class:`Segment` (none for an unanswered leg)."""
        causes = {leg: e["cause"] for leg, e in self._esc.items()}
        causes[self.a_leg_uuid] = self.hangup_cause
        return [
            Segment(
                self.tenant_id,
                self.call_id,
                s.leg_uuid,
                s.kind,  # type: ignore[arg-type]
                self.origin,  # type: ignore[arg-type]
                s.start_ms,
                s.end_ms,
                hangup_cause=causes.get(s.leg_uuid) or "NORMAL_CLEARING",
                agent=s.agent,
                queue=s.queue,
            )
            for s in self.spans()
        ]

    def outcome(self) -> tuple[str, str]:
        """``(outcome, cause)`` for the call record (one of :data:`OUTCOMES`)."""
        if not self.is_answered:
            return "failed", self.hangup_cause
        if self._esc:
            return "escalated", ""
        if self.ever_bridged:
            return "answered", ""
        last = self.queue_exits[-1] if self.queue_exits else ""
        if last == "callback":
            return "callback", ""
        if last == "overflow":
            return "overflowed", ""
        if last == "abandon" or (self.state == "ended" and self._last_kind == "queue"):
            return "abandoned", self.hangup_cause
        return "ivr", ""

    # -- internals ------------------------------------------------------------------------
    _last_kind: str | None = None

    def _clock(self) -> int:
        """The A leg's time: the start of its open span (transitions may not go before it)."""
        assert self._open is not None
        return int(self._open["start"])

    def _need(self, what: str, *states: str) -> None:
        if self.state not in states:
            if self.state == "ended":
                raise MeterError(f"call {self.call_id}: {what} after hangup")
            if self.state == "new":
                raise MeterError(f"call {self.call_id}: {what} before the call was answered")
            raise MeterError(
                f"call {self.call_id}: {what} is not possible while the caller is in "
                f"{self.state} (expected {' or '.join(states)})"
            )

    def _check_time(self, at_ms: object, what: str) -> int:
        at = _check_ms(at_ms, f"call {self.call_id}: {what}")
        if self._open is not None and at < self._clock():
            raise MeterError(
                f"call {self.call_id}: {what} at {at} is out of order: the caller's "
                f"{self._open['kind']} began at {self._clock()}"
            )
        return at

    def _switch(self, at: int, kind: str | None, reason: str, **attrs: Any) -> None:
        """Close the open A-leg span at ``at`` (dropping it if empty) and open ``kind``."""
        if self._open is not None:
            o = self._open
            self._last_kind = o["kind"]
            if at > o["start"]:
                self._closed.append(
                    MeteredSpan(
                        self.a_leg_uuid,
                        o["kind"],
                        o["start"],
                        at,
                        agent=o.get("agent"),
                        queue=o.get("queue"),
                        target=o.get("target"),
                        end_reason=reason,
                    )
                )
        if kind is None:
            self._open = None
            self.state = "ended"
        else:
            self._open = {"kind": kind, "start": at, **attrs}
            self.state = kind

    def _open_targets(self) -> list[str]:
        return [e["target"] for e in self._esc.values() if e["end"] is None]

    # -- events ---------------------------------------------------------------------------
    @_counted
    def callback_dial(self, leg_uuid: str) -> None:
        """This call is a callback: ``leg_uuid`` (the outbound leg to the caller) is its A leg.

        Its answered time up to the caller's queue entry is ``callback_dial``."""
        self._need("callback_dial", "new")
        self.a_leg_uuid = _check_str(leg_uuid, "callback leg uuid")
        self.callback = True
        self.origin = Origin.CALLBACK.value

    @_counted
    def answered(self, at_ms: int) -> None:
        """The A leg was answered (the platform answered an inbound call, or the caller
        picked up a callback)."""
        self._need("answer", "new")
        at = self._check_time(at_ms, "answer")
        self.answer_ms = at
        self._switch(at, "callback_dial" if self.callback else "ivr", "")

    @_counted
    def enter_queue(self, at_ms: int, queue_id: str) -> None:
        self._need("queue entry", "ivr", "queue", "agent", "handoff", "callback_dial")
        at = self._check_time(at_ms, "queue entry")
        queue = _check_str(queue_id, "queue_id")
        self.queue_id = queue
        self.ever_queued = True
        self._switch(at, "queue", "queue", queue=queue)

    @_counted
    def leave_queue(self, at_ms: int, reason: str) -> None:
        """The caller left the queue without an agent; until the next event the time is ivr."""
        self._need("leaving the queue", "queue")
        at = self._check_time(at_ms, "leaving the queue")
        if reason not in LEAVE_REASONS:
            raise MeterError(
                f"call {self.call_id}: unknown queue exit {reason!r}; "
                f"expected one of {', '.join(LEAVE_REASONS)}"
            )
        self.queue_exits.append(reason)
        self._switch(at, "ivr", reason)

    @_counted
    def back_to_ivr(self, at_ms: int) -> None:
        """The caller is back in a menu (exit key, transfer to IVR, post-call survey)."""
        self._need("return to the IVR", "ivr", "queue", "agent", "handoff", "callback_dial")
        at = self._check_time(at_ms, "return to the IVR")
        if self.state == "ivr":
            return  # already in the IVR: a new menu does not split the span
        self._switch(at, "ivr", "ivr")

    @_counted
    def agent_bridged(self, at_ms: int, agent_id: str, agent_leg_uuid: str) -> None:
        self._need("agent bridge", "ivr", "queue", "agent", "handoff", "callback_dial")
        at = self._check_time(at_ms, "agent bridge")
        agent = _check_str(agent_id, "agent_id")
        leg = _check_str(agent_leg_uuid, "agent_leg_uuid")
        if leg == self.a_leg_uuid or leg in self._esc:
            raise MeterError(f"call {self.call_id}: leg {leg} is already another leg of the call")
        self._agent_legs[leg] = agent
        self.agent_id = agent
        self.ever_bridged = True
        self._switch(at, "agent", "bridge", agent=agent, queue=self.queue_id)

    @_counted
    def agent_unbridged(self, at_ms: int, reason: str) -> None:
        """Our agent's bridge ended with the caller still up (until the next event: ivr)."""
        self._need("agent unbridge", "agent")
        at = self._check_time(at_ms, "agent unbridge")
        self._switch(at, "ivr", reason or "unbridge")

    @_counted
    def agent_left(self, at_ms: int) -> None:
        """Our agent dropped while the client's second line holds the caller: handoff."""
        self._need("agent leaving", "agent")
        at = self._check_time(at_ms, "agent leaving")
        targets = self._open_targets()
        if not targets:
            raise MeterError(
                f"call {self.call_id}: agent left at {at} but no second-line leg is up "
                "(use agent_unbridged)"
            )
        self._switch(at, "handoff", "agent_left", target=targets[-1], queue=self.queue_id)

    @_counted
    def escalation_answered(self, at_ms: int, leg_uuid: str, target: str) -> None:
        """The client's second line answered on ``leg_uuid``. From the IVR or the queue the
        caller is then with the second line only (handoff); with our agent on, both count."""
        self._need("escalation answer", "ivr", "queue", "agent", "handoff", "callback_dial")
        at = _check_ms(at_ms, f"call {self.call_id}: escalation answer")
        leg = _check_str(leg_uuid, "escalation leg uuid")
        target = _check_str(target, "escalation target")
        if leg in self._esc or leg == self.a_leg_uuid or leg in self._agent_legs:
            raise MeterError(f"call {self.call_id}: leg {leg} was already answered")
        assert self.answer_ms is not None
        if at < self.answer_ms:
            raise MeterError(
                f"call {self.call_id}: escalation leg {leg} answered at {at}, before the "
                f"caller's answer at {self.answer_ms}"
            )
        if self.state in ("ivr", "queue", "callback_dial"):
            at = self._check_time(at, "escalation answer")
        self._esc[leg] = {
            "start": at,
            "end": None,
            "target": target,
            "cause": "",
            "agent": self.agent_id if self.state == "agent" else None,
            "queue": self.queue_id,
        }
        if self.state in ("ivr", "queue", "callback_dial"):
            self._switch(at, "handoff", "escalation", target=target, queue=self.queue_id)

    @_counted
    def escalation_ended(self, at_ms: int, leg_uuid: str, cause: str) -> None:
        """The second-line leg hung up (also accepted after the caller's hangup). In handoff
        with no second line left, the caller is back with the platform (ivr)."""
        leg = _check_str(leg_uuid, "escalation leg uuid")
        e = self._esc.get(leg)
        what = f"escalation leg {leg} ending"
        if e is None:
            raise MeterError(f"call {self.call_id}: {what}: no such leg was answered")
        if e["end"] is not None:
            raise MeterError(f"call {self.call_id}: {what}: it already ended at {e['end']}")
        at = _check_ms(at_ms, f"call {self.call_id}: {what}")
        if at < e["start"]:
            raise MeterError(
                f"call {self.call_id}: {what} at {at} is before its answer at {e['start']}"
            )
        last = self.state == "handoff" and self.open_legs == [leg]
        if last:
            at = self._check_time(at, what)
        e["end"] = at
        e["cause"] = cause if isinstance(cause, str) else ""
        if last:
            self._switch(at, "ivr", "second_line_ended")

    @_counted
    def hangup(self, at_ms: int, cause: str) -> None:
        """The A leg hung up; an unanswered call ends with no segments."""
        if self.state == "ended":
            raise MeterError(f"call {self.call_id}: hangup after hangup")
        cause = cause if isinstance(cause, str) else ""
        if self.state == "new":
            at = _check_ms(at_ms, f"call {self.call_id}: hangup")
            self.hangup_ms, self.hangup_cause, self.state = at, cause, "ended"
            return
        at = self._check_time(at_ms, "hangup")
        self.hangup_ms, self.hangup_cause = at, cause
        self._switch(at, None, "hangup")

    # -- recovery ---------------------------------------------------------------------------
    def finish_from_cdrs(self, cdrs: Mapping[str, CdrTimes]) -> list[str]:
        """Close what the switch ended while nobody was listening, from the legs' CDRs.

        A switchboard that died (or lost a node's event socket) may never see a leg's hangup;
        the leg's CDR still says when it ended. Open escalation legs end at their CDR's
        answered end, the A leg hangs up at its CDR's (the open span runs to it). A meter that
        never saw the answer of a leg the CDR says was answered ends with no segments (the
        CDR is then flagged by :func:`reconcile`). Returns (and keeps, in
        :attr:`closed_from_cdr`) one message per leg closed; a CDR that contradicts the meter
        is reported, not applied.
        """
        done: list[str] = []

        def end_of(cdr: CdrTimes) -> int | None:
            return cdr.answered_end_ms if cdr.answered else cdr.end_ms

        def close_esc(leg: str) -> None:
            cdr = cdrs[leg]
            at = end_of(cdr)
            if at is None:
                return
            try:
                self.escalation_ended(at, leg, cdr.hangup_cause or "CDR")
            except MeterError as exc:
                self.rejected -= 1  # a recovery attempt, not a switch event
                done.append(f"leg {leg}: its CDR could not close it: {exc}")
            else:
                done.append(f"leg {leg}: closed at {at} from its CDR")

        a_cdr = cdrs.get(self.a_leg_uuid)
        a_end = end_of(a_cdr) if a_cdr is not None else None
        if not self.is_ended and a_cdr is not None and a_end is not None:
            for leg in sorted(
                (x for x in self.open_legs if x in cdrs and (end_of(cdrs[x]) or 0) <= a_end),
                key=lambda x: end_of(cdrs[x]) or 0,
            ):
                close_esc(leg)
            cause = a_cdr.hangup_cause or "CDR"
            try:
                self.hangup(a_end, cause)
            except MeterError as exc:
                self.rejected -= 1
                done.append(f"leg {self.a_leg_uuid}: its CDR could not close it: {exc}")
            else:
                note = "" if self.is_answered or not a_cdr.answered else " (answer never seen)"
                done.append(f"leg {self.a_leg_uuid}: hung up at {a_end} from its CDR{note}")
        if self.is_ended:
            for leg in [x for x in self.open_legs if x in cdrs]:
                close_esc(leg)
        self.closed_from_cdr.extend(done)
        return done

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (ints, strings, lists, dicts with string keys)."""
        return {
            "format": _FORMAT,
            "tenant_id": self.tenant_id,
            "call_id": self.call_id,
            "a_leg_uuid": self.a_leg_uuid,
            "origin": self.origin,
            "node": self.node,
            "state": self.state,
            "answer_ms": self.answer_ms,
            "hangup_ms": self.hangup_ms,
            "hangup_cause": self.hangup_cause,
            "callback": self.callback,
            "rejected": self.rejected,
            "open": dict(self._open) if self._open is not None else None,
            "last_kind": self._last_kind,
            "closed": [s.to_dict() for s in self._closed],
            "escalations": {leg: dict(e) for leg, e in self._esc.items()},
            "agent_legs": dict(self._agent_legs),
            "queue_id": self.queue_id,
            "agent_id": self.agent_id,
            "queue_exits": list(self.queue_exits),
            "ever_queued": self.ever_queued,
            "ever_bridged": self.ever_bridged,
            "closed_from_cdr": list(self.closed_from_cdr),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallMeter:
        """Rebuild a meter from :meth:`to_dict` (raises :class:`MeterError` if inconsistent)."""
        if data.get("format") != _FORMAT:
            raise MeterError(f"unknown meter state format {data.get('format')!r}")
        meter = cls(data["tenant_id"], data["call_id"], data["a_leg_uuid"], data["origin"], "")
        meter.node = data.get("node") or ""
        if data["state"] not in _STATES:
            raise MeterError(f"unknown meter state {data['state']!r}")
        meter.state = data["state"]
        meter.answer_ms = data["answer_ms"]
        meter.hangup_ms = data["hangup_ms"]
        meter.hangup_cause = data["hangup_cause"]
        meter.callback = bool(data["callback"])
        meter.rejected = int(data["rejected"])
        meter._open = dict(data["open"]) if data["open"] is not None else None
        meter._last_kind = data.get("last_kind")
        meter._closed = [MeteredSpan.from_dict(s) for s in data["closed"]]
        meter._esc = {leg: dict(e) for leg, e in data["escalations"].items()}
        meter._agent_legs = dict(data["agent_legs"])
        meter.queue_id = data["queue_id"]
        meter.agent_id = data["agent_id"]
        meter.queue_exits = list(data["queue_exits"])
        meter.ever_queued = bool(data["ever_queued"])
        meter.ever_bridged = bool(data["ever_bridged"])
        meter.closed_from_cdr = list(data.get("closed_from_cdr", []))
        # Cheap consistency check: the closed spans and the open one must still chain.
        edge = meter.answer_ms
        for s in meter._closed:
            if s.start_ms != edge or s.end_ms <= s.start_ms:
                raise MeterError(f"call {meter.call_id}: stored spans do not chain at {edge}")
            edge = s.end_ms
        if meter._open is not None and meter._open["start"] != edge:
            raise MeterError(f"call {meter.call_id}: stored open span does not start at {edge}")
        return meter


# -- reconciliation against CDRs ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CdrTimes:
    """What a leg's CDR says about its time (all integer epoch ms; ``answer_ms`` None when the
    leg was never answered). ``billsec_ms`` is mod_json_cdr's ``billmsec``."""

    leg_uuid: str
    answer_ms: int | None
    end_ms: int | None
    billsec_ms: int = 0
    hangup_cause: str = ""

    @property
    def answered(self) -> bool:
        return self.answer_ms is not None

    @property
    def answered_end_ms(self) -> int | None:
        """Where the leg's answered time ends: answer + billmsec (the invariant's number), or
        the end epoch when billmsec is missing."""
        if self.answer_ms is None:
            return None
        if self.billsec_ms > 0 or self.end_ms is None:
            return self.answer_ms + self.billsec_ms
        return max(self.end_ms, self.answer_ms)


@dataclass(frozen=True)
class Reconciliation:
    """The verdict on one call.

    ``status``: ``ok`` (``segments`` are final and may be rated), ``waiting`` (a leg with
    segments has no CDR yet, or is still up), ``mismatch`` (segments and CDRs disagree by more
    than the tolerance: not billed, shown to the provider). ``flags`` are ``(leg_uuid,
    reason)`` for CDRs that no segment accounts for (``cdr_without_segments``). ``snapped``
    counts segment edges moved onto a CDR edge, ``snapped_ms`` the total distance moved.
    """

    status: str
    segments: tuple[Segment, ...]
    messages: tuple[str, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()
    snapped: int = 0
    snapped_ms: int = 0


def _ms(value: int) -> str:
    return f"{value / 1000:+.3f} s"


def reconcile(
    segments: Iterable[Segment],
    cdrs: Mapping[str, CdrTimes],
    *,
    a_leg_uuid: str | None = None,
    unmetered_legs: Collection[str] = (),
    open_legs: Collection[str] = (),
    tolerance_ms: int = 1000,
) -> Reconciliation:
    """Check one call's segments against its legs' CDRs (the ground truth).

    * A leg with segments but no CDR: ``waiting``; so is a leg in ``open_legs`` (answered,
      meter not closed yet).
    * Each metered leg's segments must chain without gap or overlap (A leg) and run from the
      CDR's answer to its answered end (answer + billmsec). Edges within ``tolerance_ms`` are
      snapped onto the CDR's (and counted); further off, or a segment that snapping would
      reverse, is a ``mismatch``. The CDR's hangup cause replaces the metered one.
    * An answered CDR with no segments is flagged ``cdr_without_segments`` unless its leg is
      in ``unmetered_legs`` (agent legs are not billed by time) or is ``a_leg_uuid`` with no
      more answered time than the tolerance. Flags do not change ``status``.
    """
    segs = list(segments)
    if len({s.call_id for s in segs}) > 1:
        raise ValueError("reconcile() takes the segments of one call")
    by_leg: dict[str, list[Segment]] = {}
    for s in segs:
        by_leg.setdefault(s.leg_uuid, []).append(s)
    messages: list[str] = []
    flags: list[tuple[str, str]] = []
    waiting = mismatch = False
    snapped = snapped_ms = 0
    final: list[Segment] = []

    for leg in open_legs:
        if leg not in by_leg:
            waiting = True
            messages.append(f"leg {leg}: still up in the meter (its segment is not closed)")

    for leg, leg_segs in by_leg.items():
        leg_segs.sort(key=lambda s: (s.start_ms, s.end_ms))
        cdr = cdrs.get(leg)
        if cdr is None:
            waiting = True
            messages.append(f"leg {leg}: no CDR yet ({len(leg_segs)} segments wait)")
            final.extend(leg_segs)
            continue
        if not cdr.answered:
            mismatch = True
            messages.append(f"leg {leg}: has segments but its CDR says it was never answered")
            final.extend(leg_segs)
            continue
        gaps = [
            (a, b) for a, b in zip(leg_segs, leg_segs[1:], strict=False) if a.end_ms != b.start_ms
        ]
        if gaps:
            a, b = gaps[0]
            mismatch = True
            messages.append(
                f"leg {leg}: segments do not chain: {a.kind} ends at {a.end_ms}, "
                f"{b.kind} starts at {b.start_ms}"
            )
            final.extend(leg_segs)
            continue
        assert cdr.answer_ms is not None
        cdr_end = cdr.answered_end_ms
        assert cdr_end is not None
        d_start = leg_segs[0].start_ms - cdr.answer_ms
        d_end = leg_segs[-1].end_ms - cdr_end
        if abs(d_start) > tolerance_ms or abs(d_end) > tolerance_ms:
            mismatch = True
            messages.append(
                f"leg {leg}: segments run {leg_segs[0].start_ms}..{leg_segs[-1].end_ms}, the CDR "
                f"{cdr.answer_ms}..{cdr_end} (start {_ms(d_start)}, end {_ms(d_end)}; "
                f"tolerance {tolerance_ms} ms)"
            )
            final.extend(leg_segs)
            continue
        out = list(leg_segs)
        if d_start:
            snapped += 1
            snapped_ms += abs(d_start)
            messages.append(f"leg {leg}: start snapped to the CDR answer ({_ms(-d_start)})")
        if d_end:
            snapped += 1
            snapped_ms += abs(d_end)
            messages.append(f"leg {leg}: end snapped to the CDR ({_ms(-d_end)})")
        first, last = out[0], out[-1]
        if len(out) == 1:
            new_start, new_end = cdr.answer_ms, cdr_end
            ok = new_start <= new_end
        else:
            ok = cdr.answer_ms <= first.end_ms and last.start_ms <= cdr_end
        if not ok:
            mismatch = True
            messages.append(
                f"leg {leg}: snapping to the CDR would reverse a segment "
                f"({first.kind} or {last.kind}); left for review"
            )
            final.extend(leg_segs)
            continue
        if len(out) == 1:  # both edges at once: a Segment never exists reversed
            out[0] = dataclasses.replace(out[0], start_ms=cdr.answer_ms, end_ms=cdr_end)
        else:
            out[0] = dataclasses.replace(out[0], start_ms=cdr.answer_ms)
            out[-1] = dataclasses.replace(out[-1], end_ms=cdr_end)
        if cdr.hangup_cause:
            out = [dataclasses.replace(s, hangup_cause=cdr.hangup_cause) for s in out]
        final.extend(out)

    unmetered = set(unmetered_legs) | set(open_legs)
    for leg, cdr in cdrs.items():
        if leg in by_leg or leg in unmetered or not cdr.answered:
            continue
        end = cdr.answered_end_ms
        assert end is not None and cdr.answer_ms is not None
        if end - cdr.answer_ms <= tolerance_ms:
            # Answered and hung up at once (any leg): nothing to meter, within the tolerance
            # every edge is snapped with (a zero-length span leaves no segment).
            continue
        flags.append((leg, "cdr_without_segments"))
        messages.append(
            f"leg {leg}: its CDR shows {(end - cdr.answer_ms) / 1000:.3f} s answered, "
            "but no segment accounts for it"
        )

    status = "mismatch" if mismatch else "waiting" if waiting else "ok"
    return Reconciliation(
        status=status,
        segments=tuple(final),
        messages=tuple(messages),
        flags=tuple(flags),
        snapped=snapped,
        snapped_ms=snapped_ms,
    )
