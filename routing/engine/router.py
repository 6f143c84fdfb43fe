"""The ACD core: a deterministic state machine fed events, answering decisions.

Usage (the switchboard is the single writer; nothing here reads a clock)::

    engine = Engine()
    engine.handle(TenantUpdated(at=t, tenant=TenantConfig("bank")))
    engine.handle(QueueUpdated(at=t, queue=QueueConfig("bank-main", "bank", clearance=2)))
    engine.handle(AgentUpdated(at=t, agent=AgentProfile("a1", {"bank": {"cards": 3}}, 2)))
    decisions = engine.handle(CallArrived(at=t, call_id="c1", queue_id="bank-main"))
    ...
    engine.handle(Tick(at=engine.next_timer_at()))  # when nothing else happens

Contracts:

* ``handle(event)`` first fires every timer due by ``event.at`` (offer timeouts, wrap-up ends,
  penalties, skill relaxation, sticky windows, announcements, max-wait overflow, the watchdog),
  each at its own time, then applies the event. The same event sequence always gives the same
  decisions (ties are broken by sequence numbers, never by hash or dict order).
* Bad input never corrupts state: an event for an unknown call or agent, a duplicate, a
  transition that makes no sense (answering an offer that was withdrawn) is skipped, counted in
  ``stats`` and logged; an event older than the engine's clock is applied at the engine's clock
  (counted as ``out_of_order``); a non-finite or negative time, or a configuration that breaks a
  wall (a queue of an unknown tenant, a queue moved to another tenant) raises ``ValueError``
  before anything changes.
* Walls: a call is offered only to an agent certified for the call's tenant, with the queue's
  clearance and (relaxed by wait) skills, whose device is registered, who is available and not
  resting after a missed offer. An agent holds at most one call (offered or connected).
* Every accepted call ends ``answered``, ``abandoned``, ``overflowed`` or ``escalated``;
  nothing strands an agent: every state other than logged out, available and break has a timer
  or a call event that ends it, and break/logout asked for during a call apply after wrap-up.
* ``snapshot()`` is JSON-able; ``Engine.restore(snapshot)`` followed by the events since gives
  the same decisions and the same snapshot as an engine that never stopped. The same data
  serialised: ``snapshot_json()`` / ``restore_json()`` (compact JSON text) and the faster
  ``snapshot_bytes()`` / ``restore_bytes()`` (pickle of that plain data, loaded by an unpickler
  that refuses every class, so it can build nothing but dicts, lists, strings and numbers).

Data structures (why it is fast): per queue and per skill tier a heap of ready agents keyed by
the queue's strategy, per queue a heap of waiting calls by priority key and one by age, and one
timer heap; all with lazy deletion (entries carry a version). An arriving call looks at its own
queue's heaps; an agent becoming ready looks at the heads of its own queues. Nothing scans all
agents or all calls per event.
"""

from __future__ import annotations

import gc
import heapq
import io
import json
import logging
import math
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Self

from routing.engine.estimator_state import dump_estimator, load_estimator
from routing.engine.ewt import Estimator, make_estimator
from routing.engine.model import (
    AgentBreak,
    AgentLogin,
    AgentLogout,
    AgentProfile,
    AgentStateChanged,
    AgentUnbreak,
    AgentUpdated,
    Announce,
    CallAbandoned,
    CallArrived,
    CallbackAccepted,
    CallEnded,
    CancelOffer,
    Decision,
    DeviceRegistered,
    DeviceUnregistered,
    Escalate,
    EscalationRequested,
    Event,
    Offer,
    OfferAnswered,
    OfferCallback,
    OfferNoAnswer,
    OfferRejected,
    Overflow,
    OverflowRule,
    QueueConfig,
    QueueUpdated,
    Reject,
    Stall,
    TenantConfig,
    TenantUpdated,
    Tick,
    WrapUpDone,
    _in_window,
)

__all__ = ["AGENT_STATES", "OUTCOMES", "Engine", "EngineSettings"]

log = logging.getLogger(__name__)

LOGGED_OUT, AVAILABLE, OFFERED, ON_CALL, WRAP_UP, BREAK = (
    "logged_out",
    "available",
    "offered",
    "on_call",
    "wrap_up",
    "break",
)
AGENT_STATES = (LOGGED_OUT, AVAILABLE, OFFERED, ON_CALL, WRAP_UP, BREAK)
# Call states while the engine holds a call; MOVING only inside one event (between queues).
WAITING, RINGING, CONNECTED, MOVING = "waiting", "offered", "connected", "moving"
OUTCOMES = ("answered", "abandoned", "overflowed", "escalated")
_FATIGUE_WINDOW_S = 3600.0
_BREAK_HORIZON_S = 7200.0
_SNAPSHOT_VERSION = 1


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector (if it runs) while building acyclic data in bulk."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a snapshot names no classes; found {module}.{name}")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Engine-wide knobs.

    ``watchdog_interval_s``/``stall_after_s``: how often the watchdog looks, and how long a call
    must wait beside an idle eligible agent to count as a stall. ``max_diversions``: overflow
    hops per call (no loops between queues). ``ended_memory``: ended call ids remembered to
    recognise duplicate events. ``sticky_memory_s``: how long the last agent of a caller is
    remembered. ``assume_registered``: a new agent's device counts as registered until the
    switch says otherwise.
    """

    watchdog_interval_s: float = 5.0
    stall_after_s: float = 10.0
    max_diversions: int = 3
    ended_memory: int = 20_000
    sticky_memory_s: float = 7 * 86400.0
    assume_registered: bool = True


class _Agent:
    """Mutable runtime state of one agent (engine-private)."""

    __slots__ = (
        "profile",
        "state",
        "reason",
        "since",
        "registered",
        "ready",
        "aver",
        "idle_since",
        "penalty_until",
        "missed",
        "calls_day",
        "calls_today",
        "busy",
        "busy_start",
        "last_break_end",
        "call_id",
        "pending",
        "tseq",
        "reserved",
    )

    def __init__(self, profile: AgentProfile, registered: bool, now: float) -> None:
        self.profile = profile
        self.state = LOGGED_OUT
        self.reason: str | None = None
        self.since = now
        self.registered = registered
        self.ready = False  # in the ready heaps: available, registered, not resting
        self.aver = 0  # bumped whenever readiness changes; stale heap entries carry old ones
        self.idle_since = now
        self.penalty_until: float | None = None
        self.missed = 0  # consecutive no-answers
        self.calls_day = -1
        self.calls_today = 0
        self.busy: deque[list[float]] = deque()  # [start, end] of talk + wrap-up, last hour
        self.busy_start: float | None = None
        self.last_break_end = now
        self.call_id: str | None = None  # the one call offered to or connected to this agent
        self.pending: str | None = None  # "logout" or "break:<reason>" after the current call
        self.tseq = -1  # sequence of this agent's live wrap-up or penalty timer
        self.reserved: list[str] = []  # sticky calls waiting for this agent

    _PLAIN = (
        "state",
        "reason",
        "since",
        "registered",
        "ready",
        "aver",
        "idle_since",
        "penalty_until",
        "missed",
        "calls_day",
        "calls_today",
        "busy_start",
        "last_break_end",
        "call_id",
        "pending",
        "tseq",
    )

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self._PLAIN}
        d["profile"] = self.profile.to_dict()
        d["busy"] = [list(b) for b in self.busy]
        d["reserved"] = list(self.reserved)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Agent:
        a = cls(AgentProfile.from_dict(d["profile"]), d["registered"], d["since"])
        for k in cls._PLAIN:
            setattr(a, k, d[k])
        a.busy = deque(list(b) for b in d["busy"])
        a.reserved = list(d["reserved"])
        return a


class _Call:
    """Mutable runtime state of one call (engine-private)."""

    __slots__ = (
        "call_id",
        "tenant_id",
        "queue_id",
        "priority",
        "caller_id",
        "vip",
        "topic",
        "overflow_in",
        "arrived_at",
        "entered_at",
        "key",
        "seq",
        "state",
        "wver",
        "offers",
        "agent_id",
        "sticky_agent",
        "announced",
        "diversions",
        "callback_offered",
        "ring_all",
    )

    def __init__(self, ev: CallArrived, tenant_id: str, seq: int, now: float) -> None:
        self.call_id = ev.call_id
        self.tenant_id = tenant_id
        self.queue_id = ev.queue_id
        self.priority = ev.priority
        self.caller_id = ev.caller_id
        self.vip = ev.vip
        self.topic = ev.topic
        self.overflow_in = False  # set once the overflow caps admitted it
        self.arrived_at = now
        self.entered_at = now
        self.key = now  # entered_at minus the priority head start
        self.seq = seq
        self.state = MOVING
        self.wver = 0  # bumped whenever the call enters or leaves the waiting heaps
        self.offers: dict[str, int] = {}  # agent -> offer id, while ringing
        self.agent_id: str | None = None  # while connected
        self.sticky_agent: str | None = None  # reserved for its last agent
        self.announced: list[float] | None = None  # [figure, at] of the last announcement
        self.diversions = 0
        self.callback_offered = False
        self.ring_all = False  # rung on several agents at once (the queue was ring-all then)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Call:
        c = cls.__new__(cls)
        for k in cls.__slots__:
            setattr(c, k, d[k])
        c.offers = dict(d["offers"])
        return c


def _tier(profile: AgentProfile, q: QueueConfig) -> int | None:
    """The first relaxation step at which the agent may take the queue's calls, or None.

    None when the walls (certification for the tenant, clearance) fail: they never relax.
    """
    skills = profile.certs.get(q.tenant_id)
    if skills is None or profile.clearance < q.clearance:
        return None
    caps: list[int | None] = [None, *(cap for _after, cap in q.relaxation)]
    for i, cap in enumerate(caps):
        if all(
            skills.get(skill, 0) >= (level if cap is None else min(level, cap))
            for skill, level in q.skills
        ):
            return i
    return None


class Engine:
    """The routing engine. See the module docstring for the contracts."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.now = 0.0
        self._seq = 0
        self._watchdog_on = False
        self.tenants: dict[str, TenantConfig] = {}
        self.queues: dict[str, QueueConfig] = {}
        self._agents: dict[str, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        # Derived indexes (rebuilt on restore). Dicts used as ordered sets.
        self._agents_by_tenant: dict[str, dict[str, None]] = {}
        self._queues_by_tenant: dict[str, dict[str, None]] = {}
        self._members: dict[str, dict[str, int]] = {}  # queue -> agent -> tier
        self._agent_queues: dict[str, dict[str, int]] = {}  # agent -> queue -> tier
        self._ready_count: dict[str, int] = {}
        self._queued: dict[str, int] = {}  # calls in the queue's heaps (not sticky-reserved)
        self._overflow_active: dict[str, int] = {}
        # State with order (kept in snapshots).
        self._ready: dict[str, list[list[tuple[Any, ...]]]] = {}  # queue -> tier -> heap
        self._call_heap: dict[str, list[tuple[Any, ...]]] = {}
        self._age_heap: dict[str, list[tuple[Any, ...]]] = {}
        # One timer heap; a timer set a fixed delay after now waits in the FIFO lane of that
        # delay and only each lane's head sits in the heap (see ``_schedule_in``).
        self._timers: list[tuple[Any, ...]] = []
        self._lanes: dict[float, deque[tuple[Any, ...]]] = {}
        self._estimators: dict[str, Estimator] = {}
        self._last_agent: dict[str, list[Any]] = {}  # "tenant|caller" -> [agent, at]
        self._ended: dict[str, str] = {}
        self._overflow_seconds: dict[str, list[float]] = {}  # tenant -> [day, seconds]
        self._stall_alerted: dict[str, float] = {}  # queue -> time of last stall alert
        self._relax_at: dict[str, float] = {}  # queue -> time its relaxation timer is due
        self.stats: dict[str, int] = {}
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.events_handled = 0

    # =========================================================================================
    # Public API
    # =========================================================================================

    def handle(self, event: Event) -> list[Decision]:
        """Apply one event (after firing the timers due by its time); returns the decisions."""
        at = event.at
        # Fast path for the common case (a finite float >= 0; NaN fails the comparison).
        if type(at) is not float or not 0.0 <= at < math.inf:
            if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
                raise ValueError(f"event time must be a finite number, got {at!r}")
            if at < 0:
                raise ValueError(f"event time must be >= 0, got {at!r}")
        cls = type(event)
        handler = self._HANDLERS.get(cls)
        if handler is None:
            raise ValueError(f"not an engine event: {event!r}")
        if cls is QueueUpdated:  # the only event _validate checks (handlers match exact types)
            self._validate(event)
        out: list[Decision] = []
        if at < self.now:
            self._skip("out_of_order", f"{event.kind} at {at} < {self.now}", count_only=True)
            at = self.now
        self._advance(at, out)
        handler(self, event, out)
        self.events_handled += 1
        return out

    def tick(self, now: float) -> list[Decision]:
        """Fire the timers due by ``now`` (same as ``handle(Tick(at=now))``)."""
        return self.handle(Tick(at=now))

    def next_timer_at(self) -> float | None:
        """When the caller should ``tick`` next if no other event comes first (None: never)."""
        return self._timers[0][0] if self._timers else None

    def agent_state(self, agent_id: str) -> tuple[str, str | None]:
        """(state, reason) of an agent; ``KeyError`` if unknown."""
        a = self._agents[agent_id]
        return a.state, a.reason

    def agent_call(self, agent_id: str) -> str | None:
        return self._agents[agent_id].call_id

    def call_state(self, call_id: str) -> str | None:
        """``waiting``/``offered``/``connected`` while held, the outcome once ended, else None."""
        c = self._calls.get(call_id)
        if c is not None:
            return c.state
        return self._ended.get(call_id)

    def transfer_refusal(self, agent_id: str, queue_id: str) -> str | None:
        """Why a call of ``queue_id`` may not be held for ``agent_id`` now (None: it may).

        Read-only: the switchboard asks before it takes a caller from the transferring agent.
        """
        a = self._agents.get(agent_id)
        if a is None:
            return "unknown agent"
        if queue_id not in self.queues:
            return "unknown queue"
        if queue_id not in self._agent_queues[agent_id]:
            return "not certified for this queue"
        if a.state == LOGGED_OUT:
            return "not logged in"
        if not a.registered:
            return "phone not registered"
        return None

    def call_offers(self, call_id: str) -> list[str]:
        c = self._calls.get(call_id)
        return sorted(c.offers) if c is not None else []

    def position(self, call_id: str) -> int | None:
        """A waiting call's place in its queue (1 = next), by the queue's order (priority, then
        arrival); None if the call is not waiting in a queue's line (or held for one agent).
        Read-only: what the caller is told, never what routing decides (skills may still pick
        a later caller for an agent who can serve only that one)."""
        c = self._calls.get(call_id)
        if c is None or c.state != WAITING or c.sticky_agent is not None:
            return None
        qid = c.queue_id
        mine = (c.key, c.seq)
        ahead = sum(
            1
            for e in self._call_heap.get(qid, ())
            if (e[0], e[1]) < mine and self._call_entry_valid(e, qid)
        )
        return ahead + 1

    def waiting(self, queue_id: str) -> int:
        """Calls queued in ``queue_id`` (including those held for a sticky agent)."""
        return sum(1 for c in self._calls.values() if c.queue_id == queue_id and c.state == WAITING)

    def active_calls(self) -> list[str]:
        return list(self._calls)

    # =========================================================================================
    # Plumbing: time, timers, counters
    # =========================================================================================

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _skip(self, what: str, detail: str, count_only: bool = False) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1
        if not count_only:
            log.info("routing engine skipped %s: %s", what, detail)

    def _schedule(self, at: float, kind: str, ref: Any) -> int:
        seq = self._next()
        heapq.heappush(self._timers, (at, seq, kind, ref))
        return seq

    def _schedule_in(self, delay: float, kind: str, ref: Any) -> int:
        """A timer ``delay`` seconds after now (same as ``_schedule(now + delay, ...)``).

        The clock never goes back and sequence numbers grow, so timers set with the same delay
        fall due in the order they were set: they wait in a FIFO lane per delay, and only the
        head of each lane sits in the heap (as ``(at, seq, kind, ref, delay)``). A timer then
        costs an append and a pop on a heap of a few dozen entries instead of one of tens of
        thousands (one announcement and one max-wait timer per waiting call)."""
        seq = self._seq = self._seq + 1  # self._next(), inlined: this is per timer
        entry = (self.now + delay, seq, kind, ref, delay)
        lane = self._lanes.get(delay)
        if lane is None:
            lane = self._lanes[delay] = deque()
        if not lane:
            heapq.heappush(self._timers, entry)
        lane.append(entry)
        return seq

    def _lane_push(self, entry: tuple[Any, ...]) -> None:
        lane = self._lanes.get(entry[4])
        if lane is None:
            lane = self._lanes[entry[4]] = deque()
        if not lane:
            heapq.heappush(self._timers, entry)
        lane.append(entry)

    def _advance(self, t: float, out: list[Decision]) -> None:
        timers = self._timers
        lanes = self._lanes
        fire = self._TIMERS
        while timers and timers[0][0] <= t:
            entry = timers[0]
            if len(entry) == 5:  # a lane's head: its successor takes its place in the heap
                lane = lanes[entry[4]]
                lane.popleft()
                if lane:
                    heapq.heapreplace(timers, lane[0])
                else:
                    heapq.heappop(timers)
            else:
                heapq.heappop(timers)
            at = entry[0]
            if at > self.now:
                self.now = at
            fire[entry[2]](self, entry[3], out)
        self.now = t
        if not self._watchdog_on:
            self._watchdog_on = True
            self._schedule_in(self.settings.watchdog_interval_s, "watchdog", None)

    def _validate(self, event: Event) -> None:
        """Reject configuration that would breach a wall, before any state changes."""
        if isinstance(event, QueueUpdated):
            q = event.queue
            if q.tenant_id not in self.tenants:
                raise ValueError(f"queue {q.queue_id!r} names unknown tenant {q.tenant_id!r}")
            old = self.queues.get(q.queue_id)
            if old is not None and old.tenant_id != q.tenant_id:
                raise ValueError(f"queue {q.queue_id!r} cannot move to another tenant")
            for rule in q.overflow:
                if rule.target.startswith("queue:"):
                    target = self.queues.get(rule.target[6:])
                    if target is not None and target.tenant_id != q.tenant_id:
                        raise ValueError(f"overflow target {rule.target!r} is another tenant's")

    # =========================================================================================
    # Agent readiness and the ready heaps
    # =========================================================================================

    def _ready_key(self, a: _Agent, q: QueueConfig) -> tuple[float, float]:
        """The strategy's ordering key (smaller first), fixed when the agent becomes ready."""
        s = q.strategy
        if s == "least_calls":
            return (float(a.calls_today), a.idle_since)
        if s == "skill_weighted":
            skills = a.profile.certs.get(q.tenant_id, {})
            return (-float(sum(skills.get(name, 0) for name, _lvl in q.skills)), a.idle_since)
        if s == "fatigue":
            return (self._fatigue(a), a.idle_since)
        return (a.idle_since, 0.0)

    def _fatigue(self, a: _Agent) -> float:
        """Occupancy over the last hour plus up to 0.5 for time since the last break (2 h)."""
        horizon = self.now - _FATIGUE_WINDOW_S
        while a.busy and a.busy[0][1] <= horizon:
            a.busy.popleft()
        busy = sum(end - max(start, horizon) for start, end in a.busy)
        since_break = max(0.0, self.now - a.last_break_end)
        return round(busy / _FATIGUE_WINDOW_S + 0.5 * min(1.0, since_break / _BREAK_HORIZON_S), 9)

    def _make_ready(self, a: _Agent, deferred: list[tuple[Any, ...]] | None = None) -> None:
        """Mark ``a`` ready and enter it in its queues' ready heaps; with ``deferred``, the heap
        entries are collected there instead (see ``_ready_and_dispatch``)."""
        if a.ready or a.state != AVAILABLE or not a.registered or a.penalty_until is not None:
            return
        a.ready = True
        a.aver += 1
        seq = self._next()
        aid = a.profile.agent_id
        for qid, tier in self._agent_queues[aid].items():
            q = self.queues[qid]
            k1, k2 = self._ready_key(a, q)
            heap = self._ready[qid][tier]
            count = self._ready_count[qid] = self._ready_count[qid] + 1
            if deferred is not None:
                deferred.append((heap, (k1, k2, seq, aid, a.aver), qid))
                continue
            heapq.heappush(heap, (k1, k2, seq, aid, a.aver))
            if len(heap) > 2 * count + 32:
                self._compact_ready(heap)

    def _ready_and_dispatch(self, a: _Agent, out: list[Decision]) -> None:
        """``_make_ready(a)`` then ``_dispatch_agent(a)``, but the agent's ready-heap entries
        are pushed only if no call took it. In an overload a freed agent is offered a call at
        once, and its entries (one per member queue) would only be garbage; nothing in
        ``_dispatch_agent`` reads the ready heaps (it reads the call heaps and the counters,
        which are updated first), so the decisions and the live state are the same."""
        deferred: list[tuple[Any, ...]] = []
        self._make_ready(a, deferred)
        aver = a.aver
        self._dispatch_agent(a, out)
        if deferred and a.ready and a.aver == aver:
            count = self._ready_count
            for heap, entry, qid in deferred:
                heapq.heappush(heap, entry)
                if len(heap) > 2 * count[qid] + 32:
                    self._compact_ready(heap)

    def _compact_ready(self, heap: list[tuple[Any, ...]]) -> None:
        agents = self._agents
        heap[:] = [
            e for e in heap if (a := agents.get(e[3])) is not None and a.ready and a.aver == e[4]
        ]
        heapq.heapify(heap)

    def _unready(self, a: _Agent) -> None:
        if not a.ready:
            return
        a.ready = False
        a.aver += 1
        for qid in self._agent_queues[a.profile.agent_id]:
            self._ready_count[qid] -= 1

    def _peek_agent(self, heap: list[tuple[Any, ...]]) -> _Agent | None:
        agents = self._agents
        while heap:
            e = heap[0]
            a = agents.get(e[3])
            if a is not None and a.ready and a.aver == e[4]:
                return a
            heapq.heappop(heap)
        return None

    def _set_state(
        self, a: _Agent, state: str, out: list[Decision], reason: str | None = None
    ) -> None:
        a.state = state
        a.reason = reason
        a.since = self.now
        out.append(AgentStateChanged(a.profile.agent_id, state, reason))

    # =========================================================================================
    # Waiting calls
    # =========================================================================================

    def _enqueue(self, c: _Call) -> None:
        """Put a call into its queue's waiting heaps (state WAITING)."""
        c.state = WAITING
        c.wver += 1
        qid = c.queue_id
        heapq.heappush(self._call_heap[qid], (c.key, c.seq, c.call_id, c.wver))
        heapq.heappush(self._age_heap[qid], (c.entered_at, c.seq, c.call_id, c.wver))
        n = self._queued[qid] = self._queued[qid] + 1
        if len(self._call_heap[qid]) > 2 * n + 32:
            for heap in (self._call_heap[qid], self._age_heap[qid]):
                heap[:] = [e for e in heap if self._call_entry_valid(e, qid)]
                heapq.heapify(heap)

    def _call_entry_valid(self, e: tuple[Any, ...], qid: str) -> bool:
        c = self._calls.get(e[2])
        return (
            c is not None
            and c.state == WAITING
            and c.wver == e[3]
            and c.sticky_agent is None
            and c.queue_id == qid
        )

    def _peek_call(self, heap: list[tuple[Any, ...]], qid: str) -> _Call | None:
        while heap:
            e = heap[0]
            if self._call_entry_valid(e, qid):
                return self._calls[e[2]]
            heapq.heappop(heap)
        return None

    def _leave_waiting(self, c: _Call) -> None:
        """Take a waiting call out of the heaps / its sticky reservation (state MOVING)."""
        if c.state == WAITING:
            if c.sticky_agent is not None:
                self._release_reservation(c)
            else:
                self._queued[c.queue_id] -= 1
        c.state = MOVING
        c.wver += 1

    def _release_reservation(self, c: _Call) -> None:
        a = self._agents.get(c.sticky_agent or "")
        if a is not None and c.call_id in a.reserved:
            a.reserved.remove(c.call_id)
        c.sticky_agent = None

    def _end(self, c: _Call, outcome: str) -> None:
        """The call leaves the engine with ``outcome``."""
        del self._calls[c.call_id]
        c.state = outcome
        self._ended[c.call_id] = outcome
        if len(self._ended) > self.settings.ended_memory:
            del self._ended[next(iter(self._ended))]
        self.outcomes[outcome] += 1
        if c.overflow_in:
            tid = c.tenant_id
            self._overflow_active[tid] -= 1
            used = self._overflow_used(tid)
            used[1] += self.now - c.arrived_at

    def _overflow_used(self, tid: str) -> list[float]:
        day = float(self.tenants[tid].day(self.now))
        used = self._overflow_seconds.get(tid)
        if used is None or used[0] != day:
            used = self._overflow_seconds[tid] = [day, 0.0]
        return used

    def _estimator(self, qid: str) -> Estimator:
        est = self._estimators.get(qid)
        if est is None:
            q = self.queues[qid]
            est = self._estimators[qid] = make_estimator(
                q.estimator, head_start_s=q.priority_head_start_s
            )
        return est

    # =========================================================================================
    # Dispatch
    # =========================================================================================

    def _offer(self, c: _Call, agents: list[_Agent], out: list[Decision]) -> None:
        """Ring ``agents`` (one, or several for ring-all) with waiting call ``c``."""
        self._leave_waiting(c)
        c.state = RINGING
        c.ring_all = len(agents) > 1
        q = self.queues[c.queue_id]
        for a in agents:
            aid = a.profile.agent_id
            self._unready(a)
            a.call_id = c.call_id
            self._set_state(a, OFFERED, out)
            offer_id = self._next()
            c.offers[aid] = offer_id
            self._schedule_in(q.offer_timeout_s, "offer", [c.call_id, aid, offer_id])
            out.append(Offer(c.call_id, aid, offer_id))

    def _dispatch_call(self, c: _Call, out: list[Decision]) -> bool:
        """Offer waiting call ``c`` to the best ready agent allowed for it now, if any."""
        if c.sticky_agent is not None:
            a = self._agents.get(c.sticky_agent)
            if a is not None and a.ready and c.queue_id in self._agent_queues[c.sticky_agent]:
                self._offer(c, [a], out)
                return True
            return False
        q = self.queues[c.queue_id]
        heaps = self._ready[c.queue_id]
        top = min(q.step(self.now - c.entered_at), len(heaps) - 1)
        if q.strategy == "ring_all":
            chosen: list[_Agent] = []
            for tier in range(top + 1):
                heap = heaps[tier]
                while len(chosen) < q.ring_all_max:
                    a = self._peek_agent(heap)
                    if a is None:
                        break
                    heapq.heappop(heap)  # it is about to be offered: the entry is spent
                    chosen.append(a)
            if chosen:
                self._offer(c, chosen, out)
                return True
            return False
        for tier in range(top + 1):
            a = self._peek_agent(heaps[tier])
            if a is not None:
                self._offer(c, [a], out)
                return True
        return False

    def _dispatch_agent(self, a: _Agent, out: list[Decision]) -> bool:
        """Offer the most urgent call ``a`` may take (sticky reservations first), if any."""
        if not a.ready:
            return False
        aid = a.profile.agent_id
        queues = self._agent_queues[aid]
        best: _Call | None = None
        if a.reserved:
            for cid in list(a.reserved):
                c = self._calls.get(cid)
                if c is None or c.state != WAITING or c.sticky_agent != aid:
                    a.reserved.remove(cid)
                elif c.queue_id in queues and (
                    best is None or (c.key, c.seq) < (best.key, best.seq)
                ):
                    best = c
            if best is not None:
                self._offer(best, [a], out)
                return True
        queued = self._queued
        for qid, tier in queues.items():
            if not queued[qid]:
                continue
            q = self.queues[qid]
            c = self._peek_call(self._call_heap[qid], qid)
            if c is None:
                continue
            if tier and tier > q.step(self.now - c.entered_at):
                # The most urgent caller still needs a better skill; the longest waiting one
                # may already accept this agent (priority callers jump the queue but relax
                # only with their own wait).
                c = self._peek_call(self._age_heap[qid], qid)
                if c is None or tier > q.step(self.now - c.entered_at):
                    self._arm_relax(qid)  # this agent waits for the callers' skills to relax
                    continue
            if best is None or (c.key, c.seq) < (best.key, best.seq):
                best = c
        if best is not None:
            self._offer(best, [a], out)
            return True
        return False

    def _free_agent(self, a: _Agent, out: list[Decision]) -> None:
        """The agent is available again (idle since now unless it kept its place)."""
        self._set_state(a, AVAILABLE, out)
        self._make_ready(a)

    def _withdraw(
        self, c: _Call, out: list[Decision], reason: str, keep: str | None = None
    ) -> list[_Agent]:
        """Cancel every offer of ``c`` except ``keep``'s; the agents become available again,
        keeping their idle position (they did not take a call). Returns them for dispatch."""
        freed = []
        for aid in sorted(c.offers):
            if aid == keep:
                continue
            a = self._agents[aid]
            a.call_id = None
            out.append(CancelOffer(c.call_id, aid, reason))
            self._free_agent(a, out)
            freed.append(a)
        c.offers = {keep: c.offers[keep]} if keep is not None else {}
        return freed

    def _dispatch_agents(self, agents: Iterable[_Agent], out: list[Decision]) -> None:
        for a in agents:
            self._dispatch_agent(a, out)

    def _place(self, c: _Call, out: list[Decision]) -> None:
        """Put a call (back) in its queue at its original place and try to offer it."""
        self._enqueue(c)
        if not self._dispatch_call(c, out):
            self._arm_relax(c.queue_id)

    def _arm_relax(self, qid: str) -> None:
        """Make sure a timer fires when the oldest caller of ``qid`` reaches its next skill
        relaxation step, if ready agents are idle beside it (they may be allowed then).

        One timer per queue, armed only when it can matter, instead of one per call and step:
        in an overload (no ready agents) nothing is scheduled at all.
        """
        q = self.queues[qid]
        if not q.relaxation or not self._queued[qid] or not self._ready_count[qid]:
            return
        c = self._peek_call(self._age_heap[qid], qid)
        if c is None:
            return
        step = q.step(self.now - c.entered_at)
        if step >= len(q.relaxation):
            return
        at = c.entered_at + q.relaxation[step][0]
        armed = self._relax_at.get(qid)
        if armed is not None and self.now <= armed <= at:
            return  # an earlier check is already due; it re-arms
        self._relax_at[qid] = at
        self._schedule(at, "relax", [qid, at])

    # =========================================================================================
    # Queue entry, announcements, diversion
    # =========================================================================================

    def _enter_queue(
        self,
        c: _Call,
        q: QueueConfig,
        out: list[Decision],
        target: tuple[str, float] | None = None,
    ) -> None:
        """``c`` (state MOVING) joins queue ``q`` now: offer, or wait with announcements.

        ``target``: (agent, window) of a transfer to a named agent, held like a sticky caller.
        """
        qid = q.queue_id
        now = self.now
        c.queue_id = qid
        c.entered_at = now
        c.key = now - q.priority_head_start_s * c.priority
        # c.announced survives a move between queues: the caller remembers what it was told.
        est = self._estimator(qid)
        est.on_enter(c.call_id, now, c.priority)
        if not self._members[qid]:
            self._skip("no_certified_agent", f"call {c.call_id} in queue {qid}")
        if target is not None:
            reserved = self._reserve_for(c, q, target[0], target[1])
            if not reserved:
                self._skip("transfer_target_unavailable", f"call {c.call_id} for {target[0]}")
        else:
            reserved = q.sticky_window_s > 0 and c.caller_id is not None and self._reserve(c, q)
        if reserved:
            if self._dispatch_call(c, out):
                return
        else:
            self._enqueue(c)
            if self._dispatch_call(c, out):
                return
            if self._divert_on_entry(c, q, out):
                return
            self._arm_relax(qid)
        for i, rule in enumerate(q.overflow):
            if rule.kind == "max_wait":
                self._schedule_in(rule.threshold, "max_wait", [c.call_id, qid, i])
        if q.announce_interval_s > 0:
            self._announce(c, q, out)
            self._schedule_in(q.announce_interval_s, "announce", [c.call_id, qid])
        elif q.callback_over_s is not None:
            self._maybe_offer_callback(c, q, est.estimate(c.call_id, now).seconds, out)

    def _reserve(self, c: _Call, q: QueueConfig) -> bool:
        """Hold a returning caller for its last agent, if that agent can still serve it."""
        last = self._last_agent.get(f"{c.tenant_id}|{c.caller_id}")
        if last is None or self.now - last[1] > self.settings.sticky_memory_s:
            return False
        return self._reserve_for(c, q, last[0], q.sticky_window_s)

    def _reserve_for(self, c: _Call, q: QueueConfig, aid: str, window: float) -> bool:
        """Hold ``c`` for agent ``aid`` for ``window`` seconds, if that agent can serve it:
        logged in, registered and a member of the queue (the walls: certification for the
        tenant and clearance). Then it joins the common queue at its original place."""
        if self.transfer_refusal(aid, q.queue_id) is not None:
            return False
        a = self._agents[aid]
        c.state = WAITING
        c.wver += 1
        c.sticky_agent = aid
        a.reserved.append(c.call_id)
        self._schedule_in(window, "sticky", [c.call_id, c.wver])
        return True

    def _announce(self, c: _Call, q: QueueConfig, out: list[Decision]) -> None:
        """Tell the caller the wait, honestly: never the same figure twice, updates with a
        reason: the wait grew past what the caller was told ("delay"), or it shrank well below
        it ("ahead"). A figure consistent with the last one counting down says nothing new."""
        est = self._estimator(q.queue_id).estimate(c.call_id, self.now)
        gran = q.announce_granularity_s
        figure = max(gran, math.ceil(est.seconds / gran - 1e-9) * gran)
        if c.announced is None:
            reason = "initial"
        else:
            told, told_at = c.announced
            if figure == told:
                return
            remaining = told - (self.now - told_at)
            if figure > remaining + gran:
                reason = "delay"
            elif figure < remaining - gran:
                reason = "ahead"
            else:
                return
        c.announced = [figure, self.now]
        out.append(Announce(c.call_id, figure, est.low, est.high, reason))
        if q.callback_over_s is not None:
            self._maybe_offer_callback(c, q, est.seconds, out)

    def _maybe_offer_callback(
        self, c: _Call, q: QueueConfig, seconds: float, out: list[Decision]
    ) -> None:
        if not c.callback_offered and q.callback_over_s is not None and seconds > q.callback_over_s:
            c.callback_offered = True
            out.append(OfferCallback(c.call_id, seconds))

    def _divert_on_entry(self, c: _Call, q: QueueConfig, out: list[Decision]) -> bool:
        """Apply the first matching diversion rule to a call that found no agent at once."""
        qid = q.queue_id
        for rule in q.overflow:
            kind = rule.kind
            if kind == "max_wait":
                continue
            if kind == "ewt":
                hit = self._estimator(qid).estimate(c.call_id, self.now).seconds > rule.threshold
            elif kind == "queue_length":
                hit = self._queued[qid] > rule.threshold
            elif kind == "available_ratio":
                hit = self._ready_count[qid] / max(1, self._queued[qid]) < rule.threshold
            else:
                sod = self.tenants[q.tenant_id].second_of_day(self.now)
                hit = _in_window(sod, (rule.threshold, rule.until or 0.0))
            if hit and self._divert(c, q, rule, out):
                return True
        return False

    def _divert(self, c: _Call, q: QueueConfig, rule: OverflowRule, out: list[Decision]) -> bool:
        """Send waiting call ``c`` to ``rule.target``; False if it stays where it is."""
        target = rule.target
        est = self._estimator(q.queue_id)
        if target == "callback":
            # The caller is offered a callback and keeps its place until it accepts.
            if not c.callback_offered:
                c.callback_offered = True
                out.append(OfferCallback(c.call_id, est.estimate(c.call_id, self.now).seconds))
            return False
        if c.diversions >= self.settings.max_diversions:
            self._skip("diversion_limit", f"call {c.call_id} stays in {q.queue_id}")
            return False
        if target.startswith("queue:"):
            tq = self.queues.get(target[6:])
            if tq is None or tq.tenant_id != q.tenant_id or tq.queue_id == q.queue_id:
                self._skip("bad_overflow_target", f"{q.queue_id} -> {target}")
                return False
            c.diversions += 1
            self._leave_waiting(c)
            est.on_leave(c.call_id, self.now)
            out.append(Overflow(c.call_id, target, rule.kind))
            self._enter_queue(c, tq, out)
            return True
        c.diversions += 1
        self._leave_waiting(c)
        est.on_leave(c.call_id, self.now)
        out.append(Overflow(c.call_id, target, rule.kind))
        self._end(c, "overflowed")
        return True

    # =========================================================================================
    # Call events
    # =========================================================================================

    def _on_call_arrived(self, ev: CallArrived, out: list[Decision]) -> None:
        cid = ev.call_id
        if cid in self._calls or cid in self._ended:
            self._skip("duplicate", f"call_arrived {cid}")
            return
        q = self.queues.get(ev.queue_id)
        if q is None:
            self._skip("unknown_queue", f"call {cid} for {ev.queue_id}")
            out.append(Reject(cid, "unknown_queue"))
            return
        tenant = self.tenants[q.tenant_id]
        c = _Call(ev, q.tenant_id, self._next(), self.now)
        self._calls[cid] = c
        sod = tenant.second_of_day(self.now)
        for rule in tenant.escalation:
            if rule.on_arrival and rule.matches(ev.topic, ev.vip, sod):
                out.append(Escalate(cid, rule.target, rule.reason, self._context(c)))
                self._end(c, "escalated")
                return
        if ev.overflow_in:
            tid = q.tenant_id
            refused = None
            cap = tenant.max_overflow_in_concurrent
            if cap is not None and self._overflow_active.get(tid, 0) >= cap:
                refused = "cap_concurrent"
            minutes = tenant.max_overflow_in_minutes_per_day
            if refused is None and minutes is not None:
                if self._overflow_used(tid)[1] >= minutes * 60.0:
                    refused = "cap_minutes"
            if refused is not None:
                out.append(Overflow(cid, tenant.overflow_refused_target, refused))
                self._end(c, "overflowed")
                return
            c.overflow_in = True
            self._overflow_active[tid] = self._overflow_active.get(tid, 0) + 1
        if ev.target_agent is not None:
            self._enter_queue(c, q, out, (ev.target_agent, ev.target_window_s))
        else:
            self._enter_queue(c, q, out)

    def _context(self, c: _Call) -> tuple[tuple[str, str], ...]:
        items = [("queue", c.queue_id), ("waited_s", f"{self.now - c.arrived_at:.0f}")]
        for name, value in (("caller", c.caller_id), ("topic", c.topic), ("agent", c.agent_id)):
            if value is not None:
                items.append((name, value))
        if c.vip:
            items.append(("vip", "yes"))
        return tuple(items)

    def _known_call(self, cid: str, what: str) -> _Call | None:
        c = self._calls.get(cid)
        if c is None:
            self._skip("late_event" if cid in self._ended else "unknown_call", f"{what} {cid}")
        return c

    def _known_agent(self, aid: str, what: str) -> _Agent | None:
        a = self._agents.get(aid)
        if a is None:
            self._skip("unknown_agent", f"{what} {aid}")
        return a

    def _caller_gone(self, c: _Call, out: list[Decision], outcome: str, reason: str) -> None:
        """A queued or ringing call leaves without an agent (abandon, accepted callback)."""
        freed: list[_Agent] = []
        if c.state == RINGING:
            freed = self._withdraw(c, out, reason)
        else:
            self._leave_waiting(c)
        est = self._estimator(c.queue_id)
        if outcome == "abandoned":
            est.on_abandon(c.call_id, self.now)
        else:
            est.on_leave(c.call_id, self.now)
        self._end(c, outcome)
        self._dispatch_agents(freed, out)

    def _on_call_abandoned(self, ev: CallAbandoned, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, "call_abandoned")
        if c is None:
            return
        if c.state == CONNECTED:
            # The caller hung up while talking: that is the end of an answered call.
            self._skip("abandon_while_connected", ev.call_id, count_only=True)
            self._finish_connected(c, out, "answered")
            return
        self._caller_gone(c, out, "abandoned", "caller_left")

    def _on_call_ended(self, ev: CallEnded, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, "call_ended")
        if c is None:
            return
        if c.state == CONNECTED:
            self._finish_connected(c, out, "answered", since=ev.ended_at)
        else:
            self._caller_gone(c, out, "abandoned", "caller_left")

    def _finish_connected(
        self, c: _Call, out: list[Decision], outcome: str, since: float | None = None
    ) -> None:
        a = self._agents[c.agent_id or ""]
        self._estimator(c.queue_id).on_service_end(c.call_id, self.now)
        self._end(c, outcome)
        a.call_id = None
        q = self.queues[c.queue_id]
        if q.wrap_up_s <= 0:
            self._after_work(a, out)
        elif since is not None and 0 <= since < self.now:
            # The hangup reached us late: the wrap-up began when the switch hung up.
            self._set_state(a, WRAP_UP, out)
            due = since + q.wrap_up_s
            if due <= self.now:
                self._after_work(a, out)
            else:
                seq = a.tseq = self._next()
                heapq.heappush(self._timers, (due, seq, "wrap", [a.profile.agent_id, seq]))
        else:
            self._set_state(a, WRAP_UP, out)
            a.tseq = self._schedule_agent_timer(q.wrap_up_s, "wrap", a)

    def _schedule_agent_timer(self, delay: float, kind: str, a: _Agent) -> int:
        """A wrap-up or penalty timer ``delay`` after now whose ref carries its own sequence
        number: the agent remembers it, so an older timer can never end a newer wrap-up or
        penalty early."""
        seq = self._next()
        self._lane_push((self.now + delay, seq, kind, [a.profile.agent_id, seq], delay))
        return seq

    def _after_work(self, a: _Agent, out: list[Decision]) -> None:
        """Talk and wrap-up are over: apply a pending logout/break or become available."""
        if a.busy_start is not None:
            a.busy.append([a.busy_start, self.now])
            a.busy_start = None
        pending, a.pending = a.pending, None
        if pending == "logout":
            self._set_state(a, LOGGED_OUT, out)
        elif pending is not None:
            self._set_state(a, BREAK, out, pending.partition(":")[2])
        else:
            a.idle_since = self.now
            self._set_state(a, AVAILABLE, out)
            self._ready_and_dispatch(a, out)

    def _on_offer_answered(self, ev: OfferAnswered, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, "offer_answered")
        if c is None or self._known_agent(ev.agent_id, "offer_answered") is None:
            return
        if c.state == CONNECTED and c.agent_id == ev.agent_id:
            self._skip("duplicate", f"offer_answered {ev.call_id} by {ev.agent_id}")
            return
        if c.state != RINGING or ev.agent_id not in c.offers:
            self._skip("stale_answer", f"{ev.call_id} by {ev.agent_id} in state {c.state}")
            return
        freed = self._withdraw(c, out, "answered_elsewhere", keep=ev.agent_id)
        c.offers = {}
        c.state = CONNECTED
        c.agent_id = ev.agent_id
        a = self._agents[ev.agent_id]
        a.missed = 0
        day = int(self.now // 86400)
        if a.calls_day != day:
            a.calls_day, a.calls_today = day, 0
        a.calls_today += 1
        a.busy_start = self.now
        self._set_state(a, ON_CALL, out)
        self._estimator(c.queue_id).on_service_start(c.call_id, self.now)
        if c.caller_id is not None:
            # Re-inserted so the dict stays ordered by last contact: pruning the front is then
            # enough to forget callers older than the sticky memory (bounded state).
            key = f"{c.tenant_id}|{c.caller_id}"
            memory = self._last_agent
            memory.pop(key, None)
            memory[key] = [ev.agent_id, self.now]
            horizon = self.now - self.settings.sticky_memory_s
            while next(iter(memory.values()))[1] < horizon:  # stops at the entry just made
                del memory[next(iter(memory))]
        self._dispatch_agents(freed, out)

    def _offer_failed(
        self, c: _Call, aid: str, out: list[Decision], missed: bool, cancel: bool
    ) -> None:
        """The offer to ``aid`` ended unanswered: penalty (and a missed-offer count when
        ``missed``); the call rings its other agents or goes back to its place in the queue."""
        del c.offers[aid]
        a = self._agents[aid]
        a.call_id = None
        if cancel:
            out.append(CancelOffer(c.call_id, aid, "no_answer"))
        q = self.queues[c.queue_id]
        if missed:
            a.missed += 1
        if missed and a.missed >= q.max_missed_offers:
            self._set_state(a, BREAK, out, "missed_offers")
        else:
            self._set_state(a, AVAILABLE, out)
            if q.no_answer_penalty_s > 0:
                a.penalty_until = self.now + q.no_answer_penalty_s
                a.tseq = self._schedule_agent_timer(q.no_answer_penalty_s, "penalty", a)
            else:
                self._make_ready(a)
        if not c.offers:
            self._place(c, out)
        self._dispatch_agent(a, out)

    def _on_offer_declined(self, ev: OfferRejected | OfferNoAnswer, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, ev.kind)
        if c is None or self._known_agent(ev.agent_id, ev.kind) is None:
            return
        if c.state != RINGING or ev.agent_id not in c.offers:
            self._skip("stale_offer_event", f"{ev.kind} {ev.call_id} {ev.agent_id}")
            return
        self._offer_failed(c, ev.agent_id, out, missed=isinstance(ev, OfferNoAnswer), cancel=False)

    def _on_escalation_requested(self, ev: EscalationRequested, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, "escalation_requested")
        if c is None:
            return
        if c.state != CONNECTED:
            self._skip("escalate_not_connected", f"{ev.call_id} is {c.state}")
            return
        tenant = self.tenants[c.tenant_id]
        topic = ev.topic if ev.topic is not None else c.topic
        sod = tenant.second_of_day(self.now)
        target, reason = tenant.second_line, "second_line"
        for rule in tenant.escalation:
            if not rule.on_arrival and rule.matches(topic, c.vip, sod):
                target, reason = rule.target, rule.reason
                break
        if target is None:
            self._skip("no_escalation_target", f"tenant {c.tenant_id} call {c.call_id}")
            return
        c.topic = topic
        out.append(Escalate(c.call_id, target, reason, self._context(c)))
        self._finish_connected(c, out, "escalated")

    def _on_callback_accepted(self, ev: CallbackAccepted, out: list[Decision]) -> None:
        c = self._known_call(ev.call_id, "callback_accepted")
        if c is None:
            return
        if not c.callback_offered or c.state not in (WAITING, RINGING):
            self._skip("callback_not_offered", f"{ev.call_id} is {c.state}")
            return
        out.append(Overflow(c.call_id, "callback", "callback_accepted"))
        self._caller_gone(c, out, "overflowed", "caller_left")

    # =========================================================================================
    # Agent events
    # =========================================================================================

    def _drop_offer(self, a: _Agent, out: list[Decision], reason: str) -> None:
        """The agent leaves while ringing: cancel its offer without penalty; the call rings its
        other agents or goes back to its place in the queue."""
        c = self._calls[a.call_id or ""]
        del c.offers[a.profile.agent_id]
        a.call_id = None
        out.append(CancelOffer(c.call_id, a.profile.agent_id, reason))
        if not c.offers:
            self._place(c, out)

    def _on_agent_login(self, ev: AgentLogin, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "agent_login")
        if a is None:
            return
        if a.state != LOGGED_OUT:
            self._skip("duplicate", f"agent_login {ev.agent_id} in {a.state}")
            return
        a.idle_since = self.now
        a.last_break_end = self.now
        a.missed = 0
        self._free_agent(a, out)
        self._dispatch_agent(a, out)

    def _on_agent_logout(self, ev: AgentLogout, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "agent_logout")
        if a is None:
            return
        if a.state == LOGGED_OUT:
            self._skip("duplicate", f"agent_logout {ev.agent_id}")
            return
        if a.state == ON_CALL:
            a.pending = "logout"  # the call is not dropped; logout follows wrap-up
            return
        self._unready(a)
        if a.state == OFFERED:
            self._set_state(a, LOGGED_OUT, out)
            self._drop_offer(a, out, "agent_logged_out")
        else:
            if a.state == WRAP_UP and a.busy_start is not None:
                a.busy.append([a.busy_start, self.now])
                a.busy_start = None
            self._set_state(a, LOGGED_OUT, out)
        a.penalty_until = None
        a.pending = None

    def _on_agent_break(self, ev: AgentBreak, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "agent_break")
        if a is None:
            return
        if a.state == LOGGED_OUT:
            self._skip("invalid_transition", f"break while logged out: {ev.agent_id}")
            return
        if a.state == ON_CALL:
            a.pending = f"break:{ev.reason}"
            return
        self._unready(a)
        a.pending = None  # the latest command wins over one left pending from the call
        was_offered = a.state == OFFERED
        if a.state == WRAP_UP and a.busy_start is not None:
            a.busy.append([a.busy_start, self.now])
            a.busy_start = None
        self._set_state(a, BREAK, out, ev.reason)
        if was_offered:
            self._drop_offer(a, out, "agent_on_break")

    def _on_agent_unbreak(self, ev: AgentUnbreak, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "agent_unbreak")
        if a is None:
            return
        if a.state != BREAK:
            self._skip("invalid_transition", f"unbreak in {a.state}: {ev.agent_id}")
            return
        a.last_break_end = self.now
        a.missed = 0
        a.penalty_until = None
        a.idle_since = self.now
        self._free_agent(a, out)
        self._dispatch_agent(a, out)

    def _on_wrap_up_done(self, ev: WrapUpDone, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "wrap_up_done")
        if a is None:
            return
        if a.state != WRAP_UP:
            self._skip("invalid_transition", f"wrap_up_done in {a.state}: {ev.agent_id}")
            return
        a.tseq = self._next()  # the pending wrap-up timer no longer matches: it does nothing
        self._after_work(a, out)

    def _on_device_registered(self, ev: DeviceRegistered, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "device_registered")
        if a is None:
            return
        if a.registered:
            self._skip("duplicate", f"device_registered {ev.agent_id}", count_only=True)
            return
        a.registered = True
        self._ready_and_dispatch(a, out)

    def _on_device_unregistered(self, ev: DeviceUnregistered, out: list[Decision]) -> None:
        a = self._known_agent(ev.agent_id, "device_unregistered")
        if a is None:
            return
        if not a.registered:
            self._skip("duplicate", f"device_unregistered {ev.agent_id}", count_only=True)
            return
        a.registered = False
        self._unready(a)
        if a.state == OFFERED:
            # The phone is gone: the ringing cannot be answered. No penalty: not the agent's
            # doing. It stays logged in and gets calls again once the device re-registers.
            self._set_state(a, AVAILABLE, out)
            self._drop_offer(a, out, "device_unregistered")

    # =========================================================================================
    # Configuration events (live: nobody is logged out, no waiting caller is dropped)
    # =========================================================================================

    def _on_tenant_updated(self, ev: TenantUpdated, out: list[Decision]) -> None:
        t = ev.tenant
        self.tenants[t.tenant_id] = t
        self._agents_by_tenant.setdefault(t.tenant_id, {})
        self._queues_by_tenant.setdefault(t.tenant_id, {})

    def _on_queue_updated(self, ev: QueueUpdated, out: list[Decision]) -> None:
        q = ev.queue
        qid = q.queue_id
        self.queues[qid] = q
        self._queues_by_tenant[q.tenant_id][qid] = None
        for state in (self._call_heap, self._age_heap):
            state.setdefault(qid, [])
        self._queued.setdefault(qid, 0)
        old_members = self._members.get(qid, {})
        for aid in old_members:
            self._agent_queues[aid].pop(qid, None)
        members: dict[str, int] = {}
        for aid in sorted(self._agents_by_tenant[q.tenant_id]):
            tier = _tier(self._agents[aid].profile, q)
            if tier is not None:
                members[aid] = tier
                self._agent_queues[aid][qid] = tier
        self._members[qid] = members
        self._rebuild_ready(qid)
        # Waiting calls keep their place; the priority key follows the new head start.
        waiting = [
            self._calls[e[2]] for e in self._call_heap[qid] if self._call_entry_valid(e, qid)
        ]
        waiting.sort(key=lambda c: c.seq)
        self._call_heap[qid] = []
        self._age_heap[qid] = []
        self._queued[qid] = 0
        for c in waiting:
            c.key = c.entered_at - q.priority_head_start_s * c.priority
            self._enqueue(c)
            for i, rule in enumerate(q.overflow):
                if rule.kind == "max_wait" and c.entered_at + rule.threshold > self.now:
                    self._schedule(c.entered_at + rule.threshold, "max_wait", [c.call_id, qid, i])
        # Offers in flight to agents no longer allowed are withdrawn (the wall holds live).
        for aid in sorted(old_members):
            a = self._agents[aid]
            if aid not in members and a.state == OFFERED:
                c = self._calls[a.call_id or ""]
                if c.queue_id == qid:
                    self._set_state(a, AVAILABLE, out)
                    self._drop_offer(a, out, "no_longer_member")
                    self._ready_and_dispatch(a, out)
        for c in list(waiting):
            if c.state == WAITING:
                self._dispatch_call(c, out)
        self._arm_relax(qid)

    def _rebuild_ready(self, qid: str) -> None:
        q = self.queues[qid]
        heaps: list[list[tuple[Any, ...]]] = [[] for _ in range(len(q.relaxation) + 1)]
        count = 0
        seq = self._next()
        for aid, tier in sorted(self._members[qid].items()):
            a = self._agents[aid]
            if a.ready:
                k1, k2 = self._ready_key(a, q)
                heaps[tier].append((k1, k2, seq, aid, a.aver))
                count += 1
        for heap in heaps:
            heapq.heapify(heap)
        self._ready[qid] = heaps
        self._ready_count[qid] = count

    def _on_agent_updated(self, ev: AgentUpdated, out: list[Decision]) -> None:
        p = ev.agent
        aid = p.agent_id
        a = self._agents.get(aid)
        if a is None:
            a = self._agents[aid] = _Agent(p, self.settings.assume_registered, self.now)
            self._agent_queues[aid] = {}
        old_tenants = set(a.profile.certs)
        self._unready(a)
        a.profile = p
        for tid in sorted(old_tenants - set(p.certs)):
            self._agents_by_tenant.get(tid, {}).pop(aid, None)
        for qid in self._agent_queues[aid]:
            self._members[qid].pop(aid, None)
        queues: dict[str, int] = {}
        for tid in sorted(p.certs):
            self._agents_by_tenant.setdefault(tid, {})[aid] = None
            for qid in sorted(self._queues_by_tenant.get(tid, ())):
                tier = _tier(p, self.queues[qid])
                if tier is not None:
                    queues[qid] = tier
                    self._members[qid][aid] = tier
        self._agent_queues[aid] = queues
        if a.state == OFFERED:
            c = self._calls[a.call_id or ""]
            if c.queue_id not in queues:
                self._set_state(a, AVAILABLE, out)
                self._drop_offer(a, out, "no_longer_member")
        self._ready_and_dispatch(a, out)

    def _on_tick(self, ev: Tick, out: list[Decision]) -> None:
        """Nothing beyond the timers, which ``handle`` already fired."""

    # =========================================================================================
    # Timers
    # =========================================================================================

    def _t_offer(self, ref: list[Any], out: list[Decision]) -> None:
        cid, aid, offer_id = ref
        c = self._calls.get(cid)
        if c is not None and c.state == RINGING and c.offers.get(aid) == offer_id:
            self._offer_failed(c, aid, out, missed=True, cancel=True)

    def _t_wrap(self, ref: list[Any], out: list[Decision]) -> None:
        a = self._agents.get(ref[0])
        if a is not None and a.state == WRAP_UP and a.tseq == ref[1]:
            self._after_work(a, out)

    def _t_penalty(self, ref: list[Any], out: list[Decision]) -> None:
        a = self._agents.get(ref[0])
        if a is not None and a.penalty_until is not None and a.tseq == ref[1]:
            a.penalty_until = None
            self._ready_and_dispatch(a, out)

    def _t_relax(self, ref: list[Any], out: list[Decision]) -> None:
        qid, at = ref
        if self._relax_at.get(qid) != at or qid not in self.queues:
            return  # superseded by an earlier or later arming
        del self._relax_at[qid]
        # The oldest callers are the ones whose requirements relaxed; serve them in age order.
        heap = self._age_heap[qid]
        while self._ready_count[qid]:
            c = self._peek_call(heap, qid)
            if c is None or not self._dispatch_call(c, out):
                break
        self._arm_relax(qid)

    def _t_sticky(self, ref: list[Any], out: list[Decision]) -> None:
        c = self._calls.get(ref[0])
        if c is not None and c.state == WAITING and c.sticky_agent is not None and c.wver == ref[1]:
            # The window is over: the caller joins the common queue in its original place.
            self._release_reservation(c)
            self._place(c, out)

    def _t_announce(self, ref: list[Any], out: list[Decision]) -> None:
        c = self._calls.get(ref[0])
        if c is None or c.queue_id != ref[1] or c.state == CONNECTED:
            return
        q = self.queues[c.queue_id]
        if q.announce_interval_s <= 0:
            return
        if c.state == WAITING:
            self._announce(c, q, out)
        self._schedule_in(q.announce_interval_s, "announce", ref)

    def _t_max_wait(self, ref: list[Any], out: list[Decision]) -> None:
        cid, qid, i = ref
        c = self._calls.get(cid)
        if c is None or c.state != WAITING or c.queue_id != qid:
            return
        q = self.queues[qid]
        if i >= len(q.overflow):
            return
        rule = q.overflow[i]
        if rule.kind == "max_wait" and self.now - c.entered_at >= rule.threshold - 1e-9:
            self._divert(c, q, rule, out)

    def _t_watchdog(self, ref: Any, out: list[Decision]) -> None:
        """Report (and heal) a stalled dispatcher: a call waiting longer than ``stall_after_s``
        while an agent who may take it sits ready. By construction this never happens; the
        watchdog is there to catch the construction being wrong (mod_callcenter's stuck queues).
        Also reports a queue whose callers wait with nobody certified to serve them."""
        now = self.now
        ready_count = self._ready_count
        members = self._members
        for qid, n in self._queued.items():
            # Cheap exits first: this runs over every queue, and in an overload (when it
            # matters most) queues have callers but no ready agent.
            if n <= 0 or (ready_count[qid] == 0 and members[qid]):
                continue
            c = self._peek_call(self._age_heap[qid], qid)
            if c is None:
                continue
            waited = now - c.entered_at
            if waited < self.settings.stall_after_s:
                continue
            q = self.queues[qid]
            if not self._members[qid]:
                last = self._stall_alerted.get(qid)
                if last is None or now - last >= 300.0:  # remind every 5 minutes, no flood
                    self._stall_alerted[qid] = now
                    out.append(Stall(qid, "no_certified_agent", n, waited))
                continue
            heaps = self._ready[qid]
            top = min(q.step(waited), len(heaps) - 1)
            if any(self._peek_agent(heaps[t]) is not None for t in range(top + 1)):
                self._skip("stall", f"queue {qid}: {n} waiting beside ready agents")
                out.append(Stall(qid, "idle_agents", n, waited))
                self._dispatch_call(c, out)
        self._schedule_in(self.settings.watchdog_interval_s, "watchdog", None)

    # =========================================================================================
    # Snapshot and restore
    # =========================================================================================

    def snapshot(self) -> dict[str, Any]:
        """The engine's complete state as JSON-able data (no NaN or Infinity).

        Heaps are written as their live entries in sorted order, so two engines in the same
        state give equal snapshots whatever garbage their heaps carried. Built with the cyclic
        garbage collector paused: the snapshot makes no reference cycles, and at provider scale
        its ~1 million new containers otherwise trigger collections over the whole live heap
        (2/3 of the time it took).
        """
        with _gc_paused():
            return self._snapshot()

    def snapshot_json(self) -> str:
        """``snapshot()`` as compact JSON text (``json.loads`` of it equals ``snapshot()``)."""
        with _gc_paused():
            return json.dumps(
                self._snapshot(), separators=(",", ":"), allow_nan=False, check_circular=False
            )

    def snapshot_bytes(self) -> bytes:
        """``snapshot()`` pickled (protocol 5): smaller than the JSON and several times faster
        to write. Holds only dicts, lists, strings, numbers, booleans and None."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        # No memo: the snapshot is a tree of fresh plain data (no object is reached twice on
        # purpose, none refers to itself), and memoising ~1 million containers cost more than
        # half of the pickling. Repeated keys then cost bytes, not time.
        pickler.fast = True
        with _gc_paused():
            pickler.dump(self._snapshot())
        return buffer.getvalue()

    @classmethod
    def restore_json(cls, text: str | bytes) -> Self:
        """``restore(json.loads(text))``, with the collector paused while it builds."""
        with _gc_paused():
            return cls._restore(json.loads(text))

    @classmethod
    def restore_bytes(cls, data: bytes) -> Self:
        """An engine from ``snapshot_bytes()``; ``ValueError`` if ``data`` names any class
        (the unpickler builds plain data only) or is not a snapshot."""
        try:
            with _gc_paused():
                snap = _PlainUnpickler(io.BytesIO(data)).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"not an engine snapshot: {exc}") from None
        if not isinstance(snap, dict):
            raise ValueError("not an engine snapshot")
        return cls.restore(snap)

    def _snapshot(self) -> dict[str, Any]:

        def live_ready(qid: str) -> list[list[list[Any]]]:
            agents = self._agents
            return [
                sorted(
                    list(e)
                    for e in heap
                    if (a := agents.get(e[3])) is not None and a.ready and a.aver == e[4]
                )
                for heap in self._ready[qid]
            ]

        def live_calls(heaps: dict[str, list[tuple[Any, ...]]], qid: str) -> list[list[Any]]:
            return sorted(list(e) for e in heaps[qid] if self._call_entry_valid(e, qid))

        return {
            "version": _SNAPSHOT_VERSION,
            "now": self.now,
            "seq": self._seq,
            "watchdog_on": self._watchdog_on,
            "events_handled": self.events_handled,
            "settings": asdict(self.settings),
            "tenants": [t.to_dict() for t in self.tenants.values()],
            "queues": [q.to_dict() for q in self.queues.values()],
            "agents": [a.to_dict() for a in self._agents.values()],
            "calls": [c.to_dict() for c in self._calls.values()],
            "ready": {qid: live_ready(qid) for qid in self.queues},
            "call_heap": {qid: live_calls(self._call_heap, qid) for qid in self.queues},
            "age_heap": {qid: live_calls(self._age_heap, qid) for qid in self.queues},
            "timers": [list(t[:4]) for t in sorted(self._all_timers(), key=lambda t: (t[0], t[1]))],
            "estimators": {qid: dump_estimator(e) for qid, e in self._estimators.items()},
            "last_agent": {k: list(v) for k, v in self._last_agent.items()},
            "ended": [[k, v] for k, v in self._ended.items()],
            "overflow_seconds": {k: list(v) for k, v in self._overflow_seconds.items()},
            "stall_alerted": dict(self._stall_alerted),
            "relax_at": dict(self._relax_at),
            "stats": dict(self.stats),
            "outcomes": dict(self.outcomes),
        }

    def _all_timers(self) -> list[tuple[Any, ...]]:
        """Every pending timer: the heap's own entries and every lane's (heads included)."""
        timers = [t for t in self._timers if len(t) == 4]
        for lane in self._lanes.values():
            timers.extend(lane)
        return timers

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> Self:
        """An engine in the state ``snap`` describes; ``ValueError`` on a foreign version."""
        with _gc_paused():
            return cls._restore(snap)

    @classmethod
    def _restore(cls, snap: dict[str, Any]) -> Self:
        if snap.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {snap.get('version')!r}")
        e = cls(EngineSettings(**snap["settings"]))
        e.now = float(snap["now"])
        e._seq = int(snap["seq"])
        e._watchdog_on = bool(snap["watchdog_on"])
        e.events_handled = int(snap["events_handled"])
        for td in snap["tenants"]:
            t = TenantConfig.from_dict(td)
            e.tenants[t.tenant_id] = t
            e._agents_by_tenant[t.tenant_id] = {}
            e._queues_by_tenant[t.tenant_id] = {}
        for qd in snap["queues"]:
            q = QueueConfig.from_dict(qd)
            e.queues[q.queue_id] = q
            e._queues_by_tenant[q.tenant_id][q.queue_id] = None
            e._members[q.queue_id] = {}
            e._queued[q.queue_id] = 0
            e._ready_count[q.queue_id] = 0
        for ad in snap["agents"]:
            a = _Agent.from_dict(ad)
            aid = a.profile.agent_id
            e._agents[aid] = a
            e._agent_queues[aid] = {}
            for tid in a.profile.certs:
                e._agents_by_tenant.setdefault(tid, {})[aid] = None
                for qid in e._queues_by_tenant.get(tid, ()):
                    tier = _tier(a.profile, e.queues[qid])
                    if tier is not None:
                        e._members[qid][aid] = tier
                        e._agent_queues[aid][qid] = tier
                        if a.ready:
                            e._ready_count[qid] += 1
        for cd in snap["calls"]:
            c = _Call.from_dict(cd)
            e._calls[c.call_id] = c
            if c.overflow_in:
                e._overflow_active[c.tenant_id] = e._overflow_active.get(c.tenant_id, 0) + 1
        for qid in e.queues:
            e._ready[qid] = [[tuple(x) for x in heap] for heap in snap["ready"][qid]]
            e._call_heap[qid] = [tuple(x) for x in snap["call_heap"][qid]]
            e._age_heap[qid] = [tuple(x) for x in snap["age_heap"][qid]]
            e._queued[qid] = len(e._call_heap[qid])
        e._timers = [tuple(t) for t in snap["timers"]]  # sorted, hence a valid heap
        e._estimators = {qid: load_estimator(d) for qid, d in snap["estimators"].items()}
        e._last_agent = {k: list(v) for k, v in snap["last_agent"].items()}
        e._ended = {k: v for k, v in snap["ended"]}
        e._overflow_seconds = {k: list(v) for k, v in snap["overflow_seconds"].items()}
        e._stall_alerted = dict(snap["stall_alerted"])
        e._relax_at = dict(snap["relax_at"])
        e.stats = dict(snap["stats"])
        e.outcomes = dict(snap["outcomes"])
        return e

    # =========================================================================================
    # Self-check (tests and the watchdog's big brother)
    # =========================================================================================

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the engine's state is inconsistent. O(state); for tests."""
        holders: dict[str, str] = {}
        for aid, a in self._agents.items():
            assert a.state in AGENT_STATES, (aid, a.state)
            expect_ready = a.state == AVAILABLE and a.registered and a.penalty_until is None
            assert a.ready == expect_ready, (aid, a.state, a.ready)
            if a.state in (OFFERED, ON_CALL):
                assert a.call_id is not None and a.call_id in self._calls, (aid, a.call_id)
                holders[aid] = a.call_id
            else:
                assert a.call_id is None, (aid, a.state, a.call_id)
            if a.state not in (ON_CALL, WRAP_UP):
                assert a.pending is None, (aid, a.state, a.pending)
        for cid, c in self._calls.items():
            assert c.state in (WAITING, RINGING, CONNECTED), (cid, c.state)
            if c.state == RINGING:
                assert c.offers, cid
                assert c.ring_all or len(c.offers) == 1, (cid, c.offers)
                for aid in c.offers:
                    assert holders.get(aid) == cid, (cid, aid)
                    assert self._agents[aid].state == OFFERED
            else:
                assert not c.offers, (cid, c.offers)
            if c.state == CONNECTED:
                assert c.agent_id is not None and holders.get(c.agent_id) == cid, cid
                assert self._agents[c.agent_id].state == ON_CALL
        held = [cid for cid in holders.values()]
        for aid, cid in holders.items():
            c = self._calls[cid]
            assert aid in c.offers or c.agent_id == aid, (aid, cid)
        assert len(held) == sum(
            len(c.offers) + (c.state == CONNECTED) for c in self._calls.values()
        )
        for qid in self.queues:
            live = [e for e in self._call_heap[qid] if self._call_entry_valid(e, qid)]
            assert len(live) == self._queued[qid], (qid, len(live), self._queued[qid])
            ready = sum(1 for aid in self._members[qid] if self._agents[aid].ready)
            assert ready == self._ready_count[qid], (qid, ready, self._ready_count[qid])
            # No stall: no queued call may be left beside a ready agent allowed to take it.
            q = self.queues[qid]
            for e in live:
                c = self._calls[e[2]]
                step = q.step(self.now - c.entered_at)
                for aid, tier in self._members[qid].items():
                    assert not (self._agents[aid].ready and tier <= step), (qid, c.call_id, aid)

    _HANDLERS: dict[type, Callable[[Engine, Any, list[Decision]], None]] = {
        CallArrived: _on_call_arrived,
        CallAbandoned: _on_call_abandoned,
        OfferAnswered: _on_offer_answered,
        OfferRejected: _on_offer_declined,
        OfferNoAnswer: _on_offer_declined,
        CallEnded: _on_call_ended,
        EscalationRequested: _on_escalation_requested,
        CallbackAccepted: _on_callback_accepted,
        AgentLogin: _on_agent_login,
        AgentLogout: _on_agent_logout,
        AgentBreak: _on_agent_break,
        AgentUnbreak: _on_agent_unbreak,
        WrapUpDone: _on_wrap_up_done,
        DeviceRegistered: _on_device_registered,
        DeviceUnregistered: _on_device_unregistered,
        TenantUpdated: _on_tenant_updated,
        QueueUpdated: _on_queue_updated,
        AgentUpdated: _on_agent_updated,
        Tick: _on_tick,
    }
    _TIMERS: dict[str, Callable[[Engine, Any, list[Decision]], None]] = {
        "offer": _t_offer,
        "wrap": _t_wrap,
        "penalty": _t_penalty,
        "relax": _t_relax,
        "sticky": _t_sticky,
        "announce": _t_announce,
        "max_wait": _t_max_wait,
        "watchdog": _t_watchdog,
    }
