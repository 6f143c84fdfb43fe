"""The live wallboard's state: a pure tracker fed what the routing engine sees and decides.

The switchboard owns one :class:`LiveBoard` beside its :class:`routing.engine.router.Engine`
and, for every event it hands the engine, gives the board the same event and the engine's
decisions::

    decisions = engine.handle(event)
    board.apply(event, decisions)          # also for Tick: board.apply(Tick(at=t), decisions)
    ...
    await live_publish.publish(board, now) # about twice a second (routing/live_publish.py)

What it keeps, per queue: calls waiting now (queued or ringing an agent) and since when the
oldest of them waits, and for the provider's day (a time zone given to the board): calls
offered, answered, abandoned, overflowed and escalated, and answered within the queue's
service-level threshold (20 s unless set per queue). Per agent: state, reason and since when.
Agents are counted by state per queue (the queues whose walls and skills they pass, as the
engine computes membership), per tenant (the tenants they are certified for) and overall.

Service level = answered within the threshold / (answered + abandoned), today; ``None`` when
nothing was answered or abandoned yet. Calls that overflow or escalate before an answer count
in neither term. A call the engine moves to another queue (``Overflow`` to ``queue:<id>``)
counts as overflowed in the first queue and offered in the second, where its wait starts
again (the caller's wait in that queue is what the queue's service level measures).

Output, JSON-safe and deterministic (keys sorted, no clock read): :meth:`delta` gives, per
stream with changes since the previous call, the records that changed, with that stream's
``seq`` one higher than its previous message; :meth:`snapshot` gives a stream's whole state as
of the last delta (same ``seq``), so a client that loads it and then applies the deltas with
``seq`` + 1, + 2, ... is exactly in step. Streams: ``"provider"`` (every queue, tenant and
agent, and the totals) and ``"tenant:<id>"`` (that tenant's queues and its totals; no agent
list), so a client portal's wallboard can reuse the same messages later. Every message carries
the board's ``epoch``: a new board (switchboard restart) starts its ``seq`` again at 1 under a
new epoch, and a client that sees another epoch reloads the snapshot.

Records replace each other whole (a delta carries the full record of every queue, tenant or
agent that changed), so applying a delta is idempotent. ``longest_wait_s`` in a record is
computed at the message's ``now`` and is not by itself a change: a client ticks the longest
wait from ``oldest_since`` (switch time) and the message's ``now``.

Why ``apply(event, decisions)`` and not the two halves in a fixed order: the engine fires its
own timers due by an event's time before applying the event, and their decisions come first in
the list. A max-wait overflow fired just before a ``CallAbandoned`` must win (the engine then
ignores the abandonment as late), so the board applies the decisions first for call-ending
events; a ``CallArrived`` (and configuration) must come first, since its decisions name the
new call. Answers and call ends are read from the decisions (``AgentStateChanged`` to and from
``on_call``), which are what the engine actually did; abandonments from the events (the engine
announces none).

Pure: no Django, no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from routing.engine.model import (
    AgentProfile,
    AgentStateChanged,
    AgentUpdated,
    CallAbandoned,
    CallArrived,
    CallEnded,
    CancelOffer,
    Decision,
    Escalate,
    Event,
    Offer,
    Overflow,
    QueueConfig,
    QueueUpdated,
    Reject,
    TenantConfig,
    TenantUpdated,
)

__all__ = ["DEFAULT_SL_THRESHOLD_S", "LiveBoard", "PROVIDER_STREAM", "service_level"]

PROVIDER_STREAM = "provider"
DEFAULT_SL_THRESHOLD_S = 20.0
_COUNTERS = ("offered", "answered", "abandoned", "overflowed", "escalated", "answered_in_sl")
_FIRST_EVENTS = frozenset({CallArrived, QueueUpdated, AgentUpdated, TenantUpdated})
WAITING, RINGING, CONNECTED = "waiting", "ringing", "connected"


def service_level(answered_in_sl: int, answered: int, abandoned: int) -> float | None:
    """Answered within the threshold over answered + abandoned (None when both are 0)."""
    handled = answered + abandoned
    if handled <= 0:
        return None
    return round(answered_in_sl / handled, 4)


def _t(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _is_member(profile: AgentProfile, q: QueueConfig) -> bool:
    """May the agent ever take this queue's calls (the engine's ``_tier`` is not None)?

    Walls (certification for the tenant, clearance) never relax; skill levels relax down to
    the last step's cap, the most lenient one (caps never increase).
    """
    skills = profile.certs.get(q.tenant_id)
    if skills is None or profile.clearance < q.clearance:
        return False
    cap = q.relaxation[-1][1] if q.relaxation else None
    return all(
        skills.get(skill, 0) >= (level if cap is None else min(level, cap))
        for skill, level in q.skills
    )


def _bump(counts: dict[str, int], state: str, by: int) -> None:
    n = counts.get(state, 0) + by
    if n:
        counts[state] = n
    else:
        counts.pop(state, None)


@dataclass(slots=True)
class _Queue:
    queue_id: str
    tenant_id: str
    config: QueueConfig
    waiting: dict[str, float] = field(default_factory=dict)  # call -> entered_at, oldest first
    agents: dict[str, int] = field(default_factory=dict)  # state -> members in it
    members: set[str] = field(default_factory=set)
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    escalated: int = 0
    answered_in_sl: int = 0


@dataclass(slots=True)
class _Tenant:
    tenant_id: str
    queues: dict[str, None] = field(default_factory=dict)  # ordered set
    agents: dict[str, int] = field(default_factory=dict)  # state -> members in it
    members: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Agent:
    agent_id: str
    since: float
    state: str = "logged_out"
    reason: str | None = None
    profile: AgentProfile | None = None
    call: str | None = None  # the call offered to or connected to it
    queues: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)
    # The by-state counts this agent is in: its queues', its tenants' and the overall one.
    counters: list[dict[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    call_id: str
    queue_id: str
    entered_at: float
    state: str = WAITING
    offers: set[str] = field(default_factory=set)


class LiveBoard:
    """Wallboard state for the provider and each tenant. See the module docstring.

    ``tz``: the provider's time zone (name or tzinfo); "today" is its calendar day.
    ``queues``/``agents``/``tenants``: initial configuration (the same objects the engine was
    given; ``QueueUpdated``/``AgentUpdated``/``TenantUpdated`` events keep it current).
    ``sl_threshold_s``: default service-level threshold; ``sl_thresholds``: per queue.
    ``epoch``: names this board's run in every message (the switchboard passes something
    unique per start, e.g. its start time); ``names``: display names, see :meth:`set_names`.
    """

    def __init__(
        self,
        tz: str | tzinfo = "UTC",
        *,
        queues: Iterable[QueueConfig] = (),
        agents: Iterable[AgentProfile] = (),
        tenants: Iterable[TenantConfig | str] = (),
        sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S,
        sl_thresholds: Mapping[str, float] | None = None,
        epoch: str = "1",
        start: float = 0.0,
    ) -> None:
        if not (math.isfinite(sl_threshold_s) and sl_threshold_s >= 0):
            raise ValueError("sl_threshold_s must be finite and >= 0")
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.epoch = str(epoch)
        self.sl_threshold_s = float(sl_threshold_s)
        self._sl: dict[str, float] = {}
        self.now = float(start)
        self.day: str | None = None
        self._day_end: float | None = None
        self._queues: dict[str, _Queue] = {}
        self._tenants: dict[str, _Tenant] = {}
        self._agents: dict[str, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        self._certified: dict[str, set[str]] = {}  # tenant -> agents certified (known or not)
        self._agent_counts: dict[str, int] = {}
        self._names: dict[str, dict[str, str]] = {"queue": {}, "tenant": {}, "agent": {}}
        # Changed since the last delta(), and what the clients were last told.
        self._dirty_q: set[str] = set()
        self._dirty_t: set[str] = set()
        self._dirty_a: set[str] = set()
        self._dirty_totals = False
        self._sent_q: dict[str, dict[str, Any]] = {}
        self._sent_t: dict[str, dict[str, Any]] = {}
        self._sent_a: dict[str, dict[str, Any]] = {}
        self._sent_totals: dict[str, Any] | None = None
        self._seq: dict[str, int] = {PROVIDER_STREAM: 0}
        self._last_now: dict[str, float] = {}
        for t in tenants:
            self._tenant(t.tenant_id if isinstance(t, TenantConfig) else t)
        for q in queues:
            self._set_queue(q)
        for p in agents:
            self._set_agent(p)
        for qid, seconds in (sl_thresholds or {}).items():
            self.set_sl_threshold(qid, seconds)

    @classmethod
    def from_engine_snapshot(
        cls, snap: Mapping[str, Any], tz: str | tzinfo = "UTC", **kwargs: Any
    ) -> LiveBoard:
        """A board for an engine restored from ``snap`` (``Engine.snapshot()``): the
        switchboard restarting, or a standby taking over. Configuration, agents' states and
        the calls held (waiting, ringing, talking) come from the snapshot; today's counters
        start at zero (the engine keeps no per-queue day counts). ``kwargs`` as for the
        constructor. Then feed it the events after the snapshot, as the engine."""
        at = float(snap["now"])
        board = cls(
            tz,
            tenants=[TenantConfig.from_dict(t) for t in snap["tenants"]],
            queues=[QueueConfig.from_dict(q) for q in snap["queues"]],
            start=at,
            **kwargs,
        )
        board._time(at)
        for d in snap["agents"]:
            profile = AgentProfile.from_dict(d["profile"])
            board._set_agent(profile, at)
            a = board._agents[profile.agent_id]
            if d["state"] != a.state:
                board._on_agent_state(
                    AgentStateChanged(profile.agent_id, d["state"], d["reason"]), at
                )
            a.reason = d["reason"]
            a.since = float(d["since"])
        # Calls in the order they entered their queues, so each queue's oldest comes first.
        calls = sorted(snap["calls"], key=lambda c: (c["entered_at"], c["seq"]))
        for d in calls:
            q = board._queues.get(d["queue_id"])
            if q is None or d["state"] not in ("waiting", "offered", "connected"):
                continue  # "moving" exists only inside one handle()
            c = _Call(d["call_id"], q.queue_id, float(d["entered_at"]))
            board._calls[c.call_id] = c
            if d["state"] == "connected":
                c.state = CONNECTED
                c.offers = {d["agent_id"]}
                board._agent(d["agent_id"], at).call = c.call_id
                continue
            q.waiting[c.call_id] = c.entered_at
            board._touch_queue(q.queue_id)
            for aid in d["offers"]:
                c.state = RINGING
                c.offers.add(aid)
                board._agent(aid, at).call = c.call_id
        return board

    # =========================================================================================
    # Input
    # =========================================================================================

    def apply(self, event: Event, decisions: Iterable[Decision]) -> None:
        """Apply one engine event and the decisions ``engine.handle(event)`` returned for it.

        The switchboard calls this after every ``engine.handle`` (ticks included)."""
        t = self._time(event.at)
        cls = type(event)
        handler = _EVENT_HANDLERS.get(cls)
        if cls in _FIRST_EVENTS:
            if handler is not None:
                handler(self, event, t)
            self._decisions(decisions, t)
        else:
            self._decisions(decisions, t)
            if handler is not None:
                handler(self, event, t)

    def apply_event(self, event: Event) -> None:
        """Apply what an engine event alone tells the board (arrivals, abandonments, config).

        Agent events (login, break, ...) and answers change nothing here: the decisions tell
        what the engine made of them. Prefer :meth:`apply`, which orders the two halves."""
        t = self._time(event.at)
        handler = _EVENT_HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, t)

    def apply_decisions(self, decisions: Iterable[Decision], at: float) -> None:
        """Apply the engine's decisions, all taken at switch time ``at`` (the event's time:
        decisions carry none; timers fired inside the same ``handle`` are at most that)."""
        self._decisions(decisions, self._time(at))

    def _decisions(self, decisions: Iterable[Decision], t: float) -> None:
        handlers = _DECISION_HANDLERS
        for d in decisions:
            handler = handlers.get(type(d))  # Announce, OfferCallback, Stall: none
            if handler is not None:
                handler(self, d, t)

    def set_sl_threshold(self, queue_id: str, seconds: float | None) -> None:
        """Per-queue service-level threshold (None: back to the board's default)."""
        if seconds is None:
            self._sl.pop(queue_id, None)
        else:
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError("a service-level threshold must be finite and >= 0")
            self._sl[queue_id] = float(seconds)
        if queue_id in self._queues:
            self._touch_queue(queue_id)

    def sl_threshold(self, queue_id: str) -> float:
        return self._sl.get(queue_id, self.sl_threshold_s)

    def set_names(
        self,
        *,
        tenants: Mapping[str, str] | None = None,
        queues: Mapping[str, str] | None = None,
        agents: Mapping[str, str] | None = None,
    ) -> None:
        """Display names for the wallboard (ids are shown where none is given)."""
        for kind, names in (("tenant", tenants), ("queue", queues), ("agent", agents)):
            for key, name in (names or {}).items():
                self._names[kind][key] = str(name)
                if kind == "tenant" and key in self._tenants:
                    self._dirty_t.add(key)
                elif kind == "queue" and key in self._queues:
                    self._dirty_q.add(key)
                elif kind == "agent" and key in self._agents:
                    self._dirty_a.add(key)

    # =========================================================================================
    # Reading (also used by tests)
    # =========================================================================================

    def waiting(self, queue_id: str) -> int:
        return len(self._queues[queue_id].waiting)

    def longest_wait(self, queue_id: str, now: float) -> float:
        """Seconds the oldest call now waiting in the queue has waited (0 if none)."""
        q = self._queues[queue_id]
        oldest = next(iter(q.waiting.values()), None)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def queue_service_level(self, queue_id: str) -> float | None:
        q = self._queues[queue_id]
        return service_level(q.answered_in_sl, q.answered, q.abandoned)

    def agent_state(self, agent_id: str) -> tuple[str, str | None, float]:
        a = self._agents[agent_id]
        return a.state, a.reason, a.since

    def streams(self) -> list[str]:
        """Every stream this board publishes: the provider's, then one per tenant."""
        return [PROVIDER_STREAM, *(f"tenant:{tid}" for tid in sorted(self._tenants))]

    # =========================================================================================
    # Output
    # =========================================================================================

    def delta(self, now: float) -> dict[str, dict[str, Any]] | None:
        """The changes since the previous call, per stream: ``{stream: message}`` for each
        stream with a change (its ``seq`` one higher than its previous message), or None when
        nothing changed anywhere. ``now``: switch time, also rolls the day over."""
        now = self._time(now)
        for aid in self._dirty_a:
            a = self._agents[aid]
            self._dirty_q.update(a.queues)
            self._dirty_t.update(a.tenants)
        self._dirty_t.update(self._queues[qid].tenant_id for qid in self._dirty_q)
        if self._dirty_q or self._dirty_t or self._dirty_a:
            self._dirty_totals = True
        changed_q: dict[str, dict[str, Any]] = {}
        changed_t: dict[str, dict[str, Any]] = {}
        changed_a: dict[str, dict[str, Any]] = {}
        for qid in sorted(self._dirty_q):
            rec = self._queue_record(qid, now)
            if _differs(rec, self._sent_q.get(qid)):
                self._sent_q[qid] = changed_q[qid] = rec
        for tid in sorted(self._dirty_t):
            rec = self._tenant_record(tid, now)
            if _differs(rec, self._sent_t.get(tid)):
                self._sent_t[tid] = changed_t[tid] = rec
        for aid in sorted(self._dirty_a):
            rec = self._agent_record(aid)
            if rec != self._sent_a.get(aid):
                self._sent_a[aid] = changed_a[aid] = rec
        totals = None
        if self._dirty_totals:
            rec = self._totals_record(now)
            if _differs(rec, self._sent_totals):
                self._sent_totals = totals = rec
        self._dirty_q.clear()
        self._dirty_t.clear()
        self._dirty_a.clear()
        self._dirty_totals = False

        out: dict[str, dict[str, Any]] = {}
        if changed_q or changed_t or changed_a or totals is not None:
            msg = self._header(PROVIDER_STREAM, "delta", now, bump=True)
            msg["queues"] = changed_q
            msg["tenants"] = changed_t
            msg["agents"] = changed_a
            if totals is not None:
                msg["totals"] = totals
            out[PROVIDER_STREAM] = msg
        per_tenant: dict[str, dict[str, dict[str, Any]]] = {}
        for qid, rec in changed_q.items():
            per_tenant.setdefault(rec["tenant"], {})[qid] = rec
        for tid in sorted(set(per_tenant) | set(changed_t)):
            stream = f"tenant:{tid}"
            msg = self._header(stream, "delta", now, bump=True)
            msg["queues"] = per_tenant.get(tid, {})
            if tid in changed_t:
                msg["totals"] = changed_t[tid]
            out[stream] = msg
        return out or None

    def snapshot(self, now: float, stream: str = PROVIDER_STREAM) -> dict[str, Any]:
        """A stream's whole state as of the last :meth:`delta` (its ``seq``), longest waits
        computed at ``now``. An unknown tenant stream gives an empty snapshot at seq 0."""
        now = max(now, self.now)
        msg = self._header(stream, "snapshot", now, bump=False)
        if stream == PROVIDER_STREAM:
            msg["queues"] = {k: _at(v, now) for k, v in sorted(self._sent_q.items())}
            msg["tenants"] = {k: _at(v, now) for k, v in sorted(self._sent_t.items())}
            msg["agents"] = dict(sorted(self._sent_a.items()))
            msg["totals"] = _at(self._sent_totals or self._empty_totals(), now)
            return msg
        tid = stream.partition(":")[2]
        tq = self._tenants.get(tid)
        qids = sorted(qid for qid in (tq.queues if tq else ()) if qid in self._sent_q)
        msg["queues"] = {qid: _at(self._sent_q[qid], now) for qid in qids}
        rec = self._sent_t.get(tid)
        msg["totals"] = _at(rec, now) if rec is not None else None
        return msg

    def snapshots(self, now: float) -> dict[str, dict[str, Any]]:
        """:meth:`snapshot` of every stream."""
        return {stream: self.snapshot(now, stream) for stream in self.streams()}

    def heartbeat(self, now: float, stream: str = PROVIDER_STREAM) -> dict[str, Any]:
        """A message that changes nothing but tells a client the stream's current ``seq``
        (a client behind it missed a delta) and the switch's clock."""
        return self._header(stream, "heartbeat", max(now, self.now), bump=False)

    def seq(self, stream: str = PROVIDER_STREAM) -> int:
        return self._seq.get(stream, 0)

    # =========================================================================================
    # Internals: time and the day
    # =========================================================================================

    def _time(self, at: float) -> float:
        if type(at) is float and self.now <= at < (self._day_end or -1.0):
            self.now = at  # the common case: a float, later, same day
            return at
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"switch time must be a finite number, got {at!r}")
        t = max(float(at), self.now)
        self.now = t
        if self._day_end is None or t >= self._day_end:
            self._roll_day(t)
        return t

    def _roll_day(self, t: float) -> None:
        local = datetime.fromtimestamp(t, self.tz).date()
        next_midnight = datetime.combine(local + timedelta(days=1), time(0), tzinfo=self.tz)
        if self.day is not None:
            for qid, q in self._queues.items():
                if any(getattr(q, name) for name in _COUNTERS):
                    for name in _COUNTERS:
                        setattr(q, name, 0)
                    self._touch_queue(qid)
        self.day = local.isoformat()
        self._day_end = next_midnight.timestamp()
        self._dirty_totals = True

    # =========================================================================================
    # Internals: configuration
    # =========================================================================================

    def _tenant(self, tid: str) -> _Tenant:
        t = self._tenants.get(tid)
        if t is None:
            t = self._tenants[tid] = _Tenant(tid)
            self._seq.setdefault(f"tenant:{tid}", 0)
            self._dirty_t.add(tid)
            self._dirty_totals = True
            for aid in sorted(self._certified.get(tid, ())):
                a = self._agents[aid]
                a.tenants.add(tid)
                t.members.add(aid)
                _bump(t.agents, a.state, 1)
                self._recount(a)
        return t

    def _set_queue(self, config: QueueConfig) -> None:
        qid = config.queue_id
        q = self._queues.get(qid)
        if q is None:
            q = self._queues[qid] = _Queue(qid, config.tenant_id, config)
        elif q.tenant_id != config.tenant_id:
            self._tenants[q.tenant_id].queues.pop(qid, None)
            self._dirty_t.add(q.tenant_id)
            q.tenant_id = config.tenant_id
        q.config = config
        self._tenant(config.tenant_id).queues[qid] = None
        self._touch_queue(qid)
        candidates = set(q.members) | self._certified.get(config.tenant_id, set())
        for aid in sorted(candidates):
            self._update_membership(self._agents[aid], q)

    def _set_agent(self, profile: AgentProfile, t: float | None = None) -> None:
        a = self._agent(profile.agent_id, self.now if t is None else t)
        old_tenants = set(a.profile.certs) if a.profile is not None else set()
        a.profile = profile
        new_tenants = set(profile.certs)
        for tid in old_tenants - new_tenants:
            self._certified.get(tid, set()).discard(a.agent_id)
            if tid in a.tenants:
                a.tenants.discard(tid)
                tenant = self._tenants[tid]
                tenant.members.discard(a.agent_id)
                _bump(tenant.agents, a.state, -1)
                self._touch_tenant(tid)
        for tid in sorted(new_tenants - old_tenants):
            self._certified.setdefault(tid, set()).add(a.agent_id)
            tenant = self._tenants.get(tid)
            if tenant is not None:
                a.tenants.add(tid)
                tenant.members.add(a.agent_id)
                _bump(tenant.agents, a.state, 1)
                self._touch_tenant(tid)
        qids = set(a.queues)
        for tid in new_tenants:
            tenant = self._tenants.get(tid)
            if tenant is not None:
                qids.update(tenant.queues)
        for qid in sorted(qids):
            self._update_membership(a, self._queues[qid])
        self._recount(a)

    def _recount(self, a: _Agent) -> None:
        """Which by-state counts the agent is in (after its memberships changed)."""
        a.counters = [
            *(self._queues[qid].agents for qid in sorted(a.queues)),
            *(self._tenants[tid].agents for tid in sorted(a.tenants)),
            self._agent_counts,
        ]

    def _update_membership(self, a: _Agent, q: _Queue) -> None:
        member = a.profile is not None and _is_member(a.profile, q.config)
        if member == (a.agent_id in q.members):
            return
        if member:
            q.members.add(a.agent_id)
            a.queues.add(q.queue_id)
            _bump(q.agents, a.state, 1)
        else:
            q.members.discard(a.agent_id)
            a.queues.discard(q.queue_id)
            _bump(q.agents, a.state, -1)
        self._touch_queue(q.queue_id)

    def _agent(self, aid: str, t: float) -> _Agent:
        a = self._agents.get(aid)
        if a is None:
            a = self._agents[aid] = _Agent(aid, since=t)
            _bump(self._agent_counts, a.state, 1)
            a.counters = [self._agent_counts]
            self._dirty_a.add(aid)
            self._dirty_totals = True
        return a

    # =========================================================================================
    # Internals: calls and agents
    # =========================================================================================

    def _touch_queue(self, qid: str) -> None:
        """The queue's record changed (its tenant's and the totals follow at delta time)."""
        self._dirty_q.add(qid)

    def _touch_tenant(self, tid: str) -> None:
        self._dirty_t.add(tid)
        self._dirty_totals = True

    def _on_arrived(self, ev: CallArrived, t: float) -> None:
        q = self._queues.get(ev.queue_id)
        if q is None or ev.call_id in self._calls:
            return  # the engine rejects an unknown queue and skips a duplicate
        self._calls[ev.call_id] = _Call(ev.call_id, q.queue_id, t)
        q.waiting[ev.call_id] = t
        q.offered += 1
        self._touch_queue(q.queue_id)

    def _leave_queue(self, c: _Call) -> _Queue:
        q = self._queues[c.queue_id]
        q.waiting.pop(c.call_id, None)
        self._touch_queue(q.queue_id)
        return q

    def _forget(self, c: _Call) -> None:
        del self._calls[c.call_id]
        for aid in c.offers:
            a = self._agents.get(aid)
            if a is not None and a.call == c.call_id:
                a.call = None

    def _on_caller_gone(self, ev: CallAbandoned | CallEnded, t: float) -> None:
        c = self._calls.get(ev.call_id)
        if c is None:
            return  # ended already (decisions said so) or never known
        if c.state != CONNECTED:
            self._leave_queue(c).abandoned += 1
        self._forget(c)

    def _on_agent_state(self, d: AgentStateChanged, t: float) -> None:
        # The hottest path (two in three decisions): the counts by state of the agent's queues,
        # tenants and overall move by one; which records that makes dirty, delta() works out
        # from _dirty_a (a delta counts each queue once, however often its agents changed).
        a = self._agents.get(d.agent_id) or self._agent(d.agent_id, t)
        old, new = a.state, d.state
        if new == "on_call":
            if old != "on_call":
                c = self._calls.get(a.call or "")
                if c is not None and c.state != CONNECTED:
                    q = self._leave_queue(c)
                    q.answered += 1
                    if t - c.entered_at <= self._sl.get(q.queue_id, self.sl_threshold_s) + 1e-9:
                        q.answered_in_sl += 1
                    c.state = CONNECTED
                    c.offers = {a.agent_id}
        else:
            if old == "on_call":
                c = self._calls.get(a.call or "")
                if c is not None and c.state == CONNECTED:
                    self._forget(c)  # talk is over (answered already counted)
            if new != "offered":
                a.call = None
        if old != new:
            for counts in a.counters:
                n = counts[old] - 1
                if n:
                    counts[old] = n
                else:
                    del counts[old]
                counts[new] = counts.get(new, 0) + 1
            a.since = t
        elif a.reason != d.reason:
            a.since = t
        a.state = new
        a.reason = d.reason
        self._dirty_a.add(a.agent_id)

    def _on_offer(self, d: Offer, t: float) -> None:
        c = self._calls.get(d.call_id)
        if c is None:
            return
        c.state = RINGING
        c.offers.add(d.agent_id)
        self._agent(d.agent_id, t).call = d.call_id

    def _on_cancel(self, d: CancelOffer, t: float) -> None:
        a = self._agents.get(d.agent_id)
        if a is not None and a.call == d.call_id:
            a.call = None
        c = self._calls.get(d.call_id)
        if c is not None and c.state == RINGING:
            c.offers.discard(d.agent_id)
            if not c.offers:
                c.state = WAITING

    def _on_overflow(self, d: Overflow, t: float) -> None:
        c = self._calls.get(d.call_id)
        if c is None:
            return
        self._leave_queue(c).overflowed += 1
        target = self._queues.get(d.target[6:]) if d.target.startswith("queue:") else None
        if target is None:
            self._forget(c)
            return
        # The engine moves the call: it waits again, in the other queue, from now.
        c.queue_id = target.queue_id
        c.entered_at = t
        c.state = WAITING
        c.offers = set()
        target.waiting[c.call_id] = t
        target.offered += 1
        self._touch_queue(target.queue_id)

    def _on_escalate(self, d: Escalate, t: float) -> None:
        c = self._calls.get(d.call_id)
        if c is None:
            return
        q = self._leave_queue(c)
        q.escalated += 1
        self._forget(c)

    def _on_reject(self, d: Reject, t: float) -> None:
        c = self._calls.get(d.call_id)
        if c is None:
            return
        self._leave_queue(c).offered -= 1
        self._forget(c)

    # =========================================================================================
    # Internals: records
    # =========================================================================================

    def _header(self, stream: str, kind: str, now: float, bump: bool) -> dict[str, Any]:
        if bump:
            self._seq[stream] = self._seq.get(stream, 0) + 1
        return {
            "kind": kind,
            "stream": stream,
            "epoch": self.epoch,
            "seq": self._seq.get(stream, 0),
            "now": _t(now),
            "day": self.day,
            "tz": str(self.tz),
        }

    def _queue_record(self, qid: str, now: float) -> dict[str, Any]:
        q = self._queues[qid]
        oldest = next(iter(q.waiting.values()), None)
        return {
            "id": qid,
            "name": self._names["queue"].get(qid, qid),
            "tenant": q.tenant_id,
            "waiting": len(q.waiting),
            "oldest_since": _t(oldest),
            "longest_wait_s": _wait(oldest, now),
            "offered": q.offered,
            "answered": q.answered,
            "abandoned": q.abandoned,
            "overflowed": q.overflowed,
            "escalated": q.escalated,
            "answered_in_sl": q.answered_in_sl,
            "sl_threshold_s": self.sl_threshold(qid),
            "service_level": service_level(q.answered_in_sl, q.answered, q.abandoned),
            "agents": dict(sorted(q.agents.items())),
        }

    def _sum_queues(self, qids: Iterable[str], now: float) -> dict[str, Any]:
        offered = answered = abandoned = overflowed = escalated = in_sl = waiting = 0
        oldest = math.inf
        queues = self._queues
        for qid in qids:
            q = queues[qid]
            offered += q.offered
            answered += q.answered
            abandoned += q.abandoned
            overflowed += q.overflowed
            escalated += q.escalated
            in_sl += q.answered_in_sl
            if q.waiting:
                waiting += len(q.waiting)
                first = next(iter(q.waiting.values()))
                if first < oldest:
                    oldest = first
        since = None if oldest == math.inf else oldest
        return {
            "waiting": waiting,
            "oldest_since": _t(since),
            "longest_wait_s": _wait(since, now),
            "offered": offered,
            "answered": answered,
            "abandoned": abandoned,
            "overflowed": overflowed,
            "escalated": escalated,
            "answered_in_sl": in_sl,
            "service_level": service_level(in_sl, answered, abandoned),
        }

    def _tenant_record(self, tid: str, now: float) -> dict[str, Any]:
        t = self._tenants[tid]
        return {
            "id": tid,
            "name": self._names["tenant"].get(tid, tid),
            **self._sum_queues(t.queues, now),
            "queues": list(t.queues),
            "agents": dict(sorted(t.agents.items())),
        }

    def _totals_record(self, now: float) -> dict[str, Any]:
        return {
            **self._sum_queues(self._queues, now),
            "agents": dict(sorted(self._agent_counts.items())),
        }

    def _empty_totals(self) -> dict[str, Any]:
        return {
            "waiting": 0,
            "oldest_since": None,
            "longest_wait_s": 0.0,
            **dict.fromkeys(_COUNTERS, 0),
            "service_level": None,
            "agents": {},
        }

    def _agent_record(self, aid: str) -> dict[str, Any]:
        a = self._agents[aid]
        return {
            "id": aid,
            "name": self._names["agent"].get(aid, aid),
            "state": a.state,
            "reason": a.reason,
            "since": _t(a.since),
        }


_EVENT_HANDLERS: dict[type[Event], Callable[[LiveBoard, Any, float], None]] = {
    CallArrived: LiveBoard._on_arrived,
    CallAbandoned: LiveBoard._on_caller_gone,
    CallEnded: LiveBoard._on_caller_gone,
    QueueUpdated: lambda board, ev, t: board._set_queue(ev.queue),
    AgentUpdated: lambda board, ev, t: board._set_agent(ev.agent, t),
    TenantUpdated: lambda board, ev, t: board._tenant(ev.tenant.tenant_id),
}
_DECISION_HANDLERS: dict[type[Decision], Callable[[LiveBoard, Any, float], None]] = {
    AgentStateChanged: LiveBoard._on_agent_state,
    Offer: LiveBoard._on_offer,
    CancelOffer: LiveBoard._on_cancel,
    Overflow: LiveBoard._on_overflow,
    Escalate: LiveBoard._on_escalate,
    Reject: LiveBoard._on_reject,
}


def _wait(oldest: float | None, now: float) -> float:
    return 0.0 if oldest is None else round(max(0.0, now - oldest), 1)


def _differs(rec: dict[str, Any], sent: dict[str, Any] | None) -> bool:
    """Has a record changed? ``longest_wait_s`` alone follows from ``oldest_since`` and now."""
    if sent is None:
        return True
    wait = rec.get("longest_wait_s")
    if wait is None:
        return rec != sent
    rec["longest_wait_s"] = sent.get("longest_wait_s")  # compare the rest as one dict
    same = rec == sent
    rec["longest_wait_s"] = wait
    return not same


def _at(rec: dict[str, Any], now: float) -> dict[str, Any]:
    """A record as last sent, with its longest wait recomputed at ``now``."""
    if "longest_wait_s" not in rec:
        return rec
    since = rec.get("oldest_since")
    return {**rec, "longest_wait_s": _wait(since, now)}
