"""Configuration, events and decisions of the routing engine (:mod:`routing.engine.router`).

Everything here is a frozen dataclass: configuration objects describe tenants, queues and agents;
events are what the switchboard feeds the engine (each stamped with ``at``, epoch seconds);
decisions are what the engine answers. All of them convert to and from plain JSON-able dicts
(:func:`event_to_dict`, :func:`event_from_dict`, ``to_dict``/``from_dict``) so the call-flow
layer can persist the events since a snapshot and replay them after a restart.

Pure: no Django, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "WrapUpDone",
    "AgentBreak",
    "AgentLogin",
    "AgentLogout",
    "AgentProfile",
    "AgentStateChanged",
    "AgentUnbreak",
    "AgentUpdated",
    "Announce",
    "CallAbandoned",
    "CallArrived",
    "CallEnded",
    "CallbackAccepted",
    "CancelOffer",
    "Decision",
    "DeviceRegistered",
    "DeviceUnregistered",
    "EVENT_TYPES",
    "Escalate",
    "EscalationRequested",
    "EscalationRule",
    "Event",
    "OVERFLOW_KINDS",
    "Offer",
    "OfferAnswered",
    "OfferCallback",
    "OfferNoAnswer",
    "OfferRejected",
    "Overflow",
    "OverflowRule",
    "QueueConfig",
    "QueueUpdated",
    "Reject",
    "STRATEGIES",
    "Stall",
    "TenantConfig",
    "TenantUpdated",
    "Tick",
    "event_from_dict",
    "event_to_dict",
]

# Queue strategies. "sticky" is longest-idle with a default stickiness window; any strategy
# honours ``sticky_window_s`` when it is set.
STRATEGIES = ("longest_idle", "least_calls", "skill_weighted", "fatigue", "sticky", "ring_all")
OVERFLOW_KINDS = ("ewt", "queue_length", "available_ratio", "time_of_day", "max_wait")
DAY_S = 86400.0


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _in_window(second_of_day: float, window: tuple[float, float]) -> bool:
    """Is ``second_of_day`` in [start, end)? A window with start > end wraps past midnight."""
    start, end = window
    if start <= end:
        return start <= second_of_day < end
    return second_of_day >= start or second_of_day < end


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationRule:
    """When first line hands a call to the tenant's second line, and to which target.

    A rule matches a call when every condition that is set holds: ``topics`` (empty = any topic),
    ``vip`` (None = either), ``hours`` (local [start, end) seconds of day, may wrap midnight).
    ``on_arrival`` rules are checked when the call arrives (e.g. VIPs straight to the client's
    key-account desk); the others when an agent asks to escalate.
    ``target``: a group of external numbers or the client's own queue, e.g. ``"client:2nd-line"``.
    """

    target: str
    reason: str = "rule"
    topics: tuple[str, ...] = ()
    vip: bool | None = None
    hours: tuple[float, float] | None = None
    on_arrival: bool = False

    def matches(self, topic: str | None, vip: bool, second_of_day: float) -> bool:
        if self.topics and topic not in self.topics:
            return False
        if self.vip is not None and self.vip != vip:
            return False
        return self.hours is None or _in_window(second_of_day, self.hours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reason": self.reason,
            "topics": list(self.topics),
            "vip": self.vip,
            "hours": list(self.hours) if self.hours is not None else None,
            "on_arrival": self.on_arrival,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EscalationRule:
        hours = d.get("hours")
        return cls(
            target=d["target"],
            reason=d.get("reason", "rule"),
            topics=tuple(d.get("topics", ())),
            vip=d.get("vip"),
            hours=(float(hours[0]), float(hours[1])) if hours is not None else None,
            on_arrival=bool(d.get("on_arrival", False)),
        )


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """A client company.

    ``utc_offset_s`` turns ``now`` into the tenant's local time of day for rules.
    Overflow *into* the provider (the client's own centre sends calls it cannot take) is capped
    by ``max_overflow_in_concurrent`` calls at once and ``max_overflow_in_minutes_per_day``
    (local day); a call over a cap is sent to ``overflow_refused_target``.
    ``second_line`` is the escalation target when an agent escalates and no rule matches.
    """

    tenant_id: str
    utc_offset_s: float = 0.0
    max_overflow_in_concurrent: int | None = None
    max_overflow_in_minutes_per_day: float | None = None
    overflow_refused_target: str = "client:busy"
    second_line: str | None = None
    escalation: tuple[EscalationRule, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.tenant_id), "tenant_id must not be empty")
        _check(math.isfinite(self.utc_offset_s), "utc_offset_s must be finite")

    def second_of_day(self, now: float) -> float:
        return (now + self.utc_offset_s) % DAY_S

    def day(self, now: float) -> int:
        return int((now + self.utc_offset_s) // DAY_S)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "utc_offset_s": self.utc_offset_s,
            "max_overflow_in_concurrent": self.max_overflow_in_concurrent,
            "max_overflow_in_minutes_per_day": self.max_overflow_in_minutes_per_day,
            "overflow_refused_target": self.overflow_refused_target,
            "second_line": self.second_line,
            "escalation": [r.to_dict() for r in self.escalation],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TenantConfig:
        return cls(
            tenant_id=d["tenant_id"],
            utc_offset_s=float(d.get("utc_offset_s", 0.0)),
            max_overflow_in_concurrent=d.get("max_overflow_in_concurrent"),
            max_overflow_in_minutes_per_day=d.get("max_overflow_in_minutes_per_day"),
            overflow_refused_target=d.get("overflow_refused_target", "client:busy"),
            second_line=d.get("second_line"),
            escalation=tuple(EscalationRule.from_dict(r) for r in d.get("escalation", ())),
        )


@dataclass(frozen=True, slots=True)
class OverflowRule:
    """A provider queue's diversion rule, checked for a call that could not be offered at once.

    ``kind``/``threshold``: ``ewt`` estimated wait > threshold s; ``queue_length`` calls queued
    (this one included) > threshold; ``available_ratio`` ready agents per queued call <
    threshold; ``time_of_day`` local second of day in [threshold, until); ``max_wait`` the call
    has waited threshold s (checked by a timer). ``target``: ``"queue:<id>"`` (another queue of
    the same tenant; the call keeps waiting there), ``"callback"`` (offer a callback, the call
    keeps waiting), or anything else (``"site:b"``, ``"voicemail"``, ``"client:own"``): the call
    leaves the engine as overflowed.
    """

    kind: str
    threshold: float
    target: str
    until: float | None = None

    def __post_init__(self) -> None:
        _check(self.kind in OVERFLOW_KINDS, f"unknown overflow kind {self.kind!r}")
        _check(math.isfinite(self.threshold), "overflow threshold must be finite")
        _check(bool(self.target), "overflow target must not be empty")
        if self.kind == "time_of_day":
            _check(self.until is not None, "a time_of_day rule needs 'until'")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "threshold": self.threshold,
            "target": self.target,
            "until": self.until,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OverflowRule:
        return cls(d["kind"], float(d["threshold"]), d["target"], d.get("until"))


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue of one tenant and how it routes.

    * ``skills``: (skill, minimum level) pairs an agent needs (per tenant certification);
      ``relaxation``: (after waiting s, level cap) steps: after 30 s a requirement of level 4
      becomes ``min(4, cap)``; cap 0 means the skill is no longer required. Walls never relax:
      certification for the tenant and ``clearance`` always hold.
    * ``priority_head_start_s``: a caller of priority p queues as if it arrived p * this earlier.
    * ``sticky_window_s``: a returning caller waits this long for the agent who served them
      last (if that agent is logged in and a member); 0 disables, strategy ``"sticky"`` defaults
      it to 30 s.
    * ``ring_all_max``: for ``ring_all``, how many ready agents are offered the call at once.
    * Offers: ``offer_timeout_s`` until a no-answer; the agent then rests
      ``no_answer_penalty_s``; ``max_missed_offers`` consecutive no-answers -> break.
    * Announcements every ``announce_interval_s`` (0 = never), figures rounded up to
      ``announce_granularity_s``; a callback is offered when the estimate exceeds
      ``callback_over_s``.
    """

    queue_id: str
    tenant_id: str
    strategy: str = "longest_idle"
    wrap_up_s: float = 10.0
    clearance: int = 0
    skills: tuple[tuple[str, int], ...] = ()
    relaxation: tuple[tuple[float, int], ...] = ()
    priority_head_start_s: float = 90.0
    sticky_window_s: float = 0.0
    ring_all_max: int = 5
    offer_timeout_s: float = 20.0
    no_answer_penalty_s: float = 30.0
    max_missed_offers: int = 3
    announce_interval_s: float = 60.0
    announce_granularity_s: float = 30.0
    callback_over_s: float | None = None
    overflow: tuple[OverflowRule, ...] = ()
    estimator: str = "ql-mp"

    def __post_init__(self) -> None:
        _check(bool(self.queue_id) and bool(self.tenant_id), "queue_id and tenant_id required")
        _check(self.strategy in STRATEGIES, f"unknown strategy {self.strategy!r}")
        for name in (
            "wrap_up_s",
            "priority_head_start_s",
            "sticky_window_s",
            "offer_timeout_s",
            "no_answer_penalty_s",
            "announce_interval_s",
        ):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{name} must be finite and >= 0")
        _check(self.offer_timeout_s > 0, "offer_timeout_s must be > 0")
        _check(self.announce_granularity_s > 0, "announce_granularity_s must be > 0")
        _check(self.ring_all_max >= 1 and self.max_missed_offers >= 1, "counts must be >= 1")
        afters = [a for a, _ in self.relaxation]
        _check(afters == sorted(afters), "relaxation steps must be sorted by time")
        _check(all(math.isfinite(a) and a >= 0 for a in afters), "relaxation times must be >= 0")
        caps = [c for _, c in self.relaxation]
        _check(caps == sorted(caps, reverse=True), "relaxation caps must not increase")
        if self.strategy == "sticky" and self.sticky_window_s == 0:
            object.__setattr__(self, "sticky_window_s", 30.0)

    def step(self, waited: float) -> int:
        """How many relaxation steps apply after waiting ``waited`` seconds."""
        n = 0
        for after, _cap in self.relaxation:
            # A relaxation timer fires at entered_at + after; float rounding of the difference
            # must not leave the step one short at that very moment.
            if waited + 1e-6 >= after:
                n += 1
            else:
                break
        return n

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["skills"] = [list(s) for s in self.skills]
        d["relaxation"] = [list(r) for r in self.relaxation]
        d["overflow"] = [r.to_dict() for r in self.overflow]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QueueConfig:
        kw = dict(d)
        kw["skills"] = tuple((str(s), int(lvl)) for s, lvl in d.get("skills", ()))
        kw["relaxation"] = tuple((float(a), int(c)) for a, c in d.get("relaxation", ()))
        kw["overflow"] = tuple(OverflowRule.from_dict(r) for r in d.get("overflow", ()))
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent of the shared pool: tenants certified for, skills per tenant, clearance.

    ``certs`` maps tenant id -> {skill: level}; an agent not in a tenant's map is never offered
    that tenant's calls. An agent holds at most one voice call.
    """

    agent_id: str
    certs: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    clearance: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.agent_id), "agent_id must not be empty")
        # Freeze into plain dicts we own, so a caller mutating its input cannot change us.
        frozen = {t: {s: int(lvl) for s, lvl in skills.items()} for t, skills in self.certs.items()}
        object.__setattr__(self, "certs", frozen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "certs": {t: dict(s) for t, s in self.certs.items()},
            "clearance": self.clearance,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgentProfile:
        return cls(d["agent_id"], d.get("certs", {}), int(d.get("clearance", 0)))


# ---------------------------------------------------------------------------------------------
# Events in
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events: ``at`` is when it happened (epoch seconds, finite, >= 0)."""

    kind: ClassVar[str] = ""
    at: float


@dataclass(frozen=True, slots=True)
class CallArrived(Event):
    """A call reaches the queue (after IVR). ``overflow_in``: sent by the client's own centre.

    ``target_agent``: an agent transferred the call to this agent. It is held for that agent
    for ``target_window_s`` (the sticky reservation), then joins the queue as any caller, at
    the place it took on arrival; an agent who is not a member of the queue (certification,
    clearance), logged out or unregistered is never held for: the call is simply queued.
    """

    kind: ClassVar[str] = "call_arrived"
    call_id: str
    queue_id: str
    priority: int = 0
    caller_id: str | None = None
    vip: bool = False
    topic: str | None = None
    overflow_in: bool = False
    target_agent: str | None = None
    target_window_s: float = 30.0

    def __post_init__(self) -> None:
        if self.target_agent is not None and not (
            math.isfinite(self.target_window_s) and self.target_window_s > 0
        ):
            raise ValueError(
                f"target_window_s must be a positive number of seconds, got {self.target_window_s!r}"
            )


@dataclass(frozen=True, slots=True)
class CallAbandoned(Event):
    kind: ClassVar[str] = "call_abandoned"
    call_id: str


@dataclass(frozen=True, slots=True)
class OfferAnswered(Event):
    kind: ClassVar[str] = "offer_answered"
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferRejected(Event):
    """The agent declined the offer (penalty, but not counted as a missed offer)."""

    kind: ClassVar[str] = "offer_rejected"
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferNoAnswer(Event):
    """The agent's phone rang out (the engine's own offer timer does the same)."""

    kind: ClassVar[str] = "offer_no_answer"
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The call hung up: after talking (answered) or, if still queued, an abandonment.

    ``ended_at``: when the switch hung it up, if the event reaches the engine later (the
    hangup travelled through sockets and queues): the agent's wrap-up counts from it."""

    kind: ClassVar[str] = "call_ended"
    call_id: str
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class EscalationRequested(Event):
    """The agent on the call hands it to the tenant's second line."""

    kind: ClassVar[str] = "escalation_requested"
    call_id: str
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackAccepted(Event):
    """The caller accepted an offered callback and hung up; the call leaves as overflowed."""

    kind: ClassVar[str] = "callback_accepted"
    call_id: str


@dataclass(frozen=True, slots=True)
class AgentLogin(Event):
    kind: ClassVar[str] = "agent_login"
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLogout(Event):
    kind: ClassVar[str] = "agent_logout"
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentBreak(Event):
    kind: ClassVar[str] = "agent_break"
    agent_id: str
    reason: str = "break"


@dataclass(frozen=True, slots=True)
class AgentUnbreak(Event):
    kind: ClassVar[str] = "agent_unbreak"
    agent_id: str


@dataclass(frozen=True, slots=True)
class WrapUpDone(Event):
    """The agent finishes wrap-up before its timer (the console's "Finish wrap-up")."""

    kind: ClassVar[str] = "wrap_up_done"
    agent_id: str


@dataclass(frozen=True, slots=True)
class DeviceRegistered(Event):
    kind: ClassVar[str] = "device_registered"
    agent_id: str


@dataclass(frozen=True, slots=True)
class DeviceUnregistered(Event):
    kind: ClassVar[str] = "device_unregistered"
    agent_id: str


@dataclass(frozen=True, slots=True)
class TenantUpdated(Event):
    kind: ClassVar[str] = "tenant_updated"
    tenant: TenantConfig


@dataclass(frozen=True, slots=True)
class QueueUpdated(Event):
    """Create or change a queue live: agents stay logged in, waiting callers stay queued."""

    kind: ClassVar[str] = "queue_updated"
    queue: QueueConfig


@dataclass(frozen=True, slots=True)
class AgentUpdated(Event):
    """Create an agent (logged out) or change its certifications, skills or clearance live."""

    kind: ClassVar[str] = "agent_updated"
    agent: AgentProfile


@dataclass(frozen=True, slots=True)
class Tick(Event):
    """Time passes: fire the timers due by ``at``."""

    kind: ClassVar[str] = "tick"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        CallArrived,
        CallAbandoned,
        OfferAnswered,
        OfferRejected,
        OfferNoAnswer,
        CallEnded,
        EscalationRequested,
        CallbackAccepted,
        AgentLogin,
        AgentLogout,
        AgentBreak,
        AgentUnbreak,
        WrapUpDone,
        DeviceRegistered,
        DeviceUnregistered,
        TenantUpdated,
        QueueUpdated,
        AgentUpdated,
        Tick,
    )
}
_CONFIG_FIELDS = {"tenant": TenantConfig, "queue": QueueConfig, "agent": AgentProfile}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-able dict with a ``kind`` key; :func:`event_from_dict` reverses it."""
    d: dict[str, Any] = {"kind": event.kind}
    for f in fields(event):
        value = getattr(event, f.name)
        d[f.name] = value.to_dict() if f.name in _CONFIG_FIELDS else value
    return d


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """Parse a dict from :func:`event_to_dict`; ``ValueError`` on an unknown kind or field."""
    kind = d.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    kw = {k: v for k, v in d.items() if k != "kind"}
    for name, config_cls in _CONFIG_FIELDS.items():
        if name in kw:
            kw[name] = config_cls.from_dict(kw[name])  # type: ignore[attr-defined]
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Decisions out
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """Base of all decisions."""


@dataclass(frozen=True, slots=True)
class Offer(Decision):
    """Ring ``agent_id`` with ``call_id``. ``offer_id`` is unique per engine."""

    call_id: str
    agent_id: str
    offer_id: int


@dataclass(frozen=True, slots=True)
class CancelOffer(Decision):
    """Stop ringing ``agent_id`` (another agent answered, the caller left, the agent left)."""

    call_id: str
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Announce(Decision):
    """Tell the caller the estimated wait (seconds, rounded up), and why now."""

    call_id: str
    seconds: float
    low: float
    high: float
    reason: str


@dataclass(frozen=True, slots=True)
class Overflow(Decision):
    """Send the call to ``target`` (another queue of the tenant, a site, voicemail, client)."""

    call_id: str
    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Escalate(Decision):
    """Hand the call to the tenant's second line with a reason and context."""

    call_id: str
    target: str
    reason: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OfferCallback(Decision):
    call_id: str
    estimate_s: float


@dataclass(frozen=True, slots=True)
class Reject(Decision):
    """The engine cannot take the call (unknown queue); the call flow plays its fallback."""

    call_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Stall(Decision):
    """Watchdog alert: calls wait in ``queue_id`` while something is wrong (``reason``)."""

    queue_id: str
    reason: str
    waiting: int
    oldest_wait_s: float


@dataclass(frozen=True, slots=True)
class AgentStateChanged(Decision):
    """For wallboards and the agent console: an agent's new state."""

    agent_id: str
    state: str
    reason: str | None = None
