"""Hypothesis drives the routing engine with arbitrary event sequences, bad input included.

Invariants checked after every event: no call is offered to two agents at once (outside
ring-all), no agent holds two calls, no call waits beside a ready agent allowed to take it,
walls are never crossed (every offer goes to an agent certified for the call's tenant with the
queue's clearance and a registered device), and a twin engine that is snapshotted and restored
at random points decides exactly as the one that never stops. At the end the world is drained:
every accepted call must have ended answered, abandoned, overflowed or escalated, and no agent
is left stuck.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from routing.engine.model import (
    AgentBreak,
    AgentLogin,
    AgentLogout,
    AgentProfile,
    AgentUnbreak,
    AgentUpdated,
    CallAbandoned,
    CallArrived,
    CallEnded,
    Decision,
    DeviceRegistered,
    DeviceUnregistered,
    EscalationRequested,
    EscalationRule,
    Event,
    OfferAnswered,
    OfferNoAnswer,
    OfferRejected,
    OverflowRule,
    QueueConfig,
    QueueUpdated,
    TenantConfig,
    TenantUpdated,
    Tick,
)
from routing.engine.router import OUTCOMES, Engine

TENANTS = (
    TenantConfig("A", second_line="client:a2"),
    TenantConfig(
        "B",
        max_overflow_in_concurrent=2,
        max_overflow_in_minutes_per_day=5,
        escalation=(EscalationRule("client:b-vip", "vip", vip=True, on_arrival=True),),
    ),
    TenantConfig("C"),
)
QUEUES = {
    "a-main": QueueConfig(
        "a-main",
        "A",
        skills=(("cards", 3),),
        relaxation=((30, 2), (60, 0)),
        wrap_up_s=5,
        announce_interval_s=30,
    ),
    "a-ring": QueueConfig("a-ring", "A", strategy="ring_all", ring_all_max=2, wrap_up_s=0),
    "b-main": QueueConfig(
        "b-main",
        "B",
        clearance=2,
        strategy="sticky",
        sticky_window_s=20,
        overflow=(
            OverflowRule("queue_length", 3, "queue:b-spill"),
            OverflowRule("max_wait", 200, "site:2"),
        ),
    ),
    "b-spill": QueueConfig("b-spill", "B", clearance=2, strategy="fatigue", callback_over_s=60),
    "c-main": QueueConfig(
        "c-main", "C", strategy="least_calls", overflow=(OverflowRule("max_wait", 300, "vm"),)
    ),
}
AGENTS = (
    AgentProfile("x1", {"A": {"cards": 3}, "B": {}}, 2),
    AgentProfile("x2", {"A": {"cards": 1}}, 0),
    AgentProfile("x3", {"B": {}}, 1),  # certified for B, lacking the clearance
    AgentProfile("x4", {"A": {"cards": 2}, "B": {}}, 3),
    AgentProfile("x5", {"C": {}}, 0),
)
AGENT_IDS = [a.agent_id for a in AGENTS] + ["ghost"]


class WalledEngine(Engine):
    """The engine with the walls asserted at the moment of every offer (a call may be offered
    and gone again within one event, so checking the decisions afterwards is too late)."""

    def _offer(self, c, agents, out):  # type: ignore[no-untyped-def]
        queue = self.queues[c.queue_id]
        for agent in agents:
            assert queue.tenant_id in agent.profile.certs, (c.call_id, agent.profile)
            assert agent.profile.clearance >= queue.clearance, (c.call_id, agent.profile)
            assert agent.registered and agent.ready and agent.call_id is None, agent.state
        super()._offer(c, agents, out)


def norm(snapshot: dict) -> dict:
    return json.loads(json.dumps(snapshot, allow_nan=False))


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = WalledEngine()
        self.twin = WalledEngine()  # never restored: the reference for snapshot + replay
        self.t = 0.0
        self.n = 0
        self.accepted: set[str] = set()

    # -- plumbing --------------------------------------------------------------------------

    def feed(self, ev: Event) -> list[Decision]:
        out = self.engine.handle(ev)
        assert self.twin.handle(ev) == out
        return out

    def calls_in(self, state: str) -> list[str]:
        return sorted(c for c in self.engine.active_calls() if self.engine.call_state(c) == state)

    def ringing(self) -> list[tuple[str, str]]:
        return [(c, a) for c in self.calls_in("offered") for a in self.engine.call_offers(c)]

    @initialize()
    def configure(self) -> None:
        for t in TENANTS:
            self.feed(TenantUpdated(0, t))
        for q in QUEUES.values():
            self.feed(QueueUpdated(0, q))
        for a in AGENTS:
            self.feed(AgentUpdated(0, a))

    # -- calls -----------------------------------------------------------------------------

    @rule(
        queue=st.sampled_from([*QUEUES, "nowhere"]),
        priority=st.integers(0, 1),
        caller=st.sampled_from([None, "p1", "p2"]),
        vip=st.booleans(),
        overflow_in=st.booleans(),
    )
    def arrive(self, queue: str, priority: int, caller: str | None, vip: bool, overflow_in: bool):
        self.n += 1
        cid = f"c{self.n}"
        self.feed(CallArrived(self.t, cid, queue, priority, caller, vip, None, overflow_in))
        if self.engine.call_state(cid) is not None:
            self.accepted.add(cid)

    @rule(
        queue=st.sampled_from(list(QUEUES)),
        to=st.sampled_from(AGENT_IDS),
        window=st.sampled_from([5.0, 20.0, 45.0]),
    )
    def transfer_in(self, queue: str, to: str, window: float) -> None:
        """An agent's transfer to a named agent (any: uncertified, cleared too low, unknown)."""
        self.n += 1
        cid = f"c{self.n}"
        self.feed(CallArrived(self.t, cid, queue, target_agent=to, target_window_s=window))
        if self.engine.call_state(cid) is not None:
            self.accepted.add(cid)

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        calls = self.calls_in("waiting") + self.calls_in("offered")
        if calls:
            self.feed(CallAbandoned(self.t, data.draw(st.sampled_from(calls))))

    @rule(data=st.data(), how=st.sampled_from(["answer", "reject", "no_answer"]))
    def respond(self, data: st.DataObject, how: str) -> None:
        pairs = self.ringing()
        if not pairs:
            return
        cid, aid = data.draw(st.sampled_from(pairs))
        cls = {"answer": OfferAnswered, "reject": OfferRejected, "no_answer": OfferNoAnswer}[how]
        self.feed(cls(self.t, cid, aid))

    @rule(data=st.data(), escalate=st.booleans())
    def finish(self, data: st.DataObject, escalate: bool) -> None:
        calls = self.calls_in("connected")
        if calls:
            cid = data.draw(st.sampled_from(calls))
            self.feed(EscalationRequested(self.t, cid) if escalate else CallEnded(self.t, cid))

    # -- agents and configuration ------------------------------------------------------------

    @rule(
        aid=st.sampled_from(AGENT_IDS),
        kind=st.sampled_from(
            [
                AgentLogin,
                AgentLogout,
                AgentBreak,
                AgentUnbreak,
                DeviceRegistered,
                DeviceUnregistered,
            ]
        ),
    )
    def agent_event(self, aid: str, kind: type) -> None:
        self.feed(kind(self.t, aid))

    @rule(aid=st.sampled_from(AGENT_IDS[:-1]), drop=st.sampled_from(["A", "B", "C", None]))
    def recertify(self, aid: str, drop: str | None) -> None:
        base = next(a for a in AGENTS if a.agent_id == aid)
        certs = {t: s for t, s in base.certs.items() if t != drop}
        self.feed(AgentUpdated(self.t, AgentProfile(aid, certs, base.clearance)))

    @rule(
        qid=st.sampled_from(sorted(QUEUES)),
        strategy=st.sampled_from(["longest_idle", "least_calls", "ring_all", "skill_weighted"]),
        need=st.integers(0, 3),
    )
    def edit_queue(self, qid: str, strategy: str, need: int) -> None:
        old = QUEUES[qid]
        skills = (("cards", need),) if need else ()
        d = old.to_dict() | {"strategy": strategy, "skills": skills}
        self.feed(QueueUpdated(self.t, QueueConfig.from_dict(d)))

    # -- time and bad input --------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 1.0, 5.0, 19.9, 20.0, 30.0, 61.0, 250.0]))
    def advance(self, dt: float) -> None:
        self.t += dt
        self.feed(Tick(self.t))

    @rule(back=st.floats(0.5, 100.0), cid=st.sampled_from(["c1", "c2", "zzz"]))
    def late_or_unknown(self, back: float, cid: str) -> None:
        self.feed(CallAbandoned(max(0.0, self.t - back), cid))

    @rule()
    def restart(self) -> None:
        snap = json.loads(json.dumps(self.engine.snapshot(), allow_nan=False))
        self.engine = WalledEngine.restore(snap)
        assert norm(self.engine.snapshot()) == norm(self.twin.snapshot())

    @invariant()
    def consistent(self) -> None:
        self.engine.check_invariants()

    # -- the end of the world ------------------------------------------------------------------

    def teardown(self) -> None:
        e = self.engine
        for a in AGENTS:
            for ev in (DeviceRegistered, AgentUnbreak, AgentLogin):
                self.feed(ev(self.t, a.agent_id))
        for _ in range(60):
            if not e.active_calls():
                break
            for cid, aid in self.ringing():
                if e.call_state(cid) == "offered" and aid in e.call_offers(cid):
                    self.feed(OfferAnswered(self.t, cid, aid))
            for cid in self.calls_in("connected"):
                self.feed(CallEnded(self.t, cid))
            self.t += 30
            self.feed(Tick(self.t))
        for cid in self.calls_in("waiting") + self.calls_in("offered"):
            self.feed(CallAbandoned(self.t, cid))  # callers nobody can serve give up
        self.t += 60
        self.feed(Tick(self.t))
        assert not e.active_calls()
        for cid in self.accepted:
            assert e.call_state(cid) in OUTCOMES, (cid, e.call_state(cid))
        for a in AGENTS:
            state, _reason = e.agent_state(a.agent_id)
            assert state in ("available", "break", "logged_out"), (a.agent_id, state)
        e.check_invariants()


EngineMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineMachine = EngineMachine.TestCase
