"""The routing engine: a call transferred to a named agent (``CallArrived.target_agent``).

The call is held for the target like a sticky caller (the same reservation), for the window
the event names; then it joins the common queue at the place it took on arrival. The walls
(certification for the tenant, clearance) are never crossed for a transfer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from routing.engine.model import (
    AgentBreak,
    AgentLogin,
    AgentLogout,
    AgentProfile,
    AgentUnbreak,
    AgentUpdated,
    CallArrived,
    CallEnded,
    Decision,
    DeviceUnregistered,
    Offer,
    OfferAnswered,
    OfferNoAnswer,
    QueueConfig,
    QueueUpdated,
    TenantConfig,
    TenantUpdated,
    event_from_dict,
    event_to_dict,
)
from routing.engine.router import Engine

BANK, SHOP = "bank", "shop"


def offers(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    return [(d.call_id, d.agent_id) for d in decisions if isinstance(d, Offer)]


def agent(aid: str, tenant: str = BANK, clearance: int = 0) -> AgentProfile:
    return AgentProfile(aid, {tenant: {}}, clearance)


def make_engine(agents: Iterable[AgentProfile], **queue_kw: object) -> Engine:
    e = Engine()
    for t in (BANK, SHOP):
        e.handle(TenantUpdated(0, TenantConfig(t)))
    queue_kw.setdefault("announce_interval_s", 0.0)
    queue_kw.setdefault("wrap_up_s", 0.0)
    e.handle(QueueUpdated(0, QueueConfig("q", BANK, **queue_kw)))  # type: ignore[arg-type]
    for a in agents:
        e.handle(AgentUpdated(0, a))
        e.handle(AgentLogin(0, a.agent_id))
    return e


def transfer(e: Engine, at: float, cid: str, to: str, window: float = 30.0) -> list[Decision]:
    return e.handle(CallArrived(at, cid, "q", target_agent=to, target_window_s=window))


def test_a_transfer_rings_the_named_agent_not_the_longest_idle_one() -> None:
    e = make_engine([agent("a"), agent("b")])  # a has been idle longest
    assert offers(transfer(e, 5, "t1", "b")) == [("t1", "b")]
    e.check_invariants()
    # Without a target the same arrival would go to a.
    assert offers(e.handle(CallArrived(6, "n1", "q"))) == [("n1", "a")]


def test_a_busy_target_gets_the_call_when_free_although_another_agent_idles() -> None:
    e = make_engine([agent("a"), agent("b")], wrap_up_s=10.0)
    e.handle(CallArrived(1, "c0", "q"))  # to a
    e.handle(OfferAnswered(2, "c0", "a"))
    e.handle(CallArrived(3, "c1", "q"))  # to b
    e.handle(OfferAnswered(4, "c1", "b"))
    e.handle(CallEnded(5, "c0"))
    assert offers(e.tick(15)) == []  # a free again: nothing waits
    # Transferred to b, who is on a call: a idles beside it, but it waits for b.
    assert offers(transfer(e, 20, "t1", "b")) == []
    assert e.call_state("t1") == "waiting"
    e.check_invariants()
    assert offers(e.handle(CallEnded(25, "c1"))) == []  # b wraps up until 35
    assert offers(e.tick(35)) == [("t1", "b")]


def test_after_the_window_the_call_joins_the_queue_at_the_place_it_took_on_arrival() -> None:
    e = make_engine([agent("a"), agent("b")])
    e.handle(CallArrived(1, "c0", "q"))
    e.handle(OfferAnswered(2, "c0", "a"))
    e.handle(AgentBreak(3, "b", "lunch"))  # logged in, not ready: the transfer is held
    assert offers(transfer(e, 10, "t1", "b", window=30)) == []
    assert offers(e.handle(CallArrived(20, "n1", "q"))) == []  # a later caller
    assert offers(e.tick(39)) == []
    assert offers(e.tick(40)) == []  # window over: t1 queued (a still busy)
    assert e.call_state("t1") == "waiting"
    # a frees up: t1 (arrived at 10) goes before n1 (arrived at 20).
    assert offers(e.handle(CallEnded(50, "c0"))) == [("t1", "a")]
    e.check_invariants()
    # b's return does not pull the call back: it is a's now.
    assert offers(e.handle(AgentUnbreak(55, "b"))) == [("n1", "b")]


def test_target_not_answering_sends_the_call_to_the_queue_never_dropped() -> None:
    e = make_engine([agent("a"), agent("b")])
    assert offers(transfer(e, 5, "t1", "b")) == [("t1", "b")]
    d = e.handle(OfferNoAnswer(25, "t1", "b"))
    assert offers(d) == [("t1", "a")]  # back in the queue at its place, served by a
    e.check_invariants()
    e.handle(OfferAnswered(26, "t1", "a"))
    assert e.call_state("t1") == "connected" and e.agent_call("a") == "t1"


def test_target_not_answering_with_nobody_free_waits_in_the_queue() -> None:
    e = make_engine([agent("b")], offer_timeout_s=20.0)
    assert offers(transfer(e, 5, "t1", "b")) == [("t1", "b")]
    e.tick(25)  # the engine's own offer timer
    assert e.call_state("t1") == "waiting"
    assert e.agent_state("b")[0] == "available"
    e.check_invariants()


def test_an_agent_without_the_tenants_certification_never_gets_the_call() -> None:
    e = make_engine([agent("a"), agent("s", tenant=SHOP)])
    assert e.transfer_refusal("s", "q") == "not certified for this queue"
    d = transfer(e, 5, "t1", "s")
    # Not held for s: queued as any caller and given to a certified agent.
    assert offers(d) == [("t1", "a")]
    assert e.stats["transfer_target_unavailable"] == 1
    assert all(aid != "s" for _c, aid in offers(d))


def test_clearance_is_a_wall_for_transfers_too() -> None:
    e = make_engine([agent("a", clearance=2), agent("low", clearance=0)], clearance=2)
    assert e.transfer_refusal("low", "q") == "not certified for this queue"
    assert e.transfer_refusal("a", "q") is None
    assert offers(transfer(e, 5, "t1", "low")) == [("t1", "a")]


def test_refusals_name_the_reason() -> None:
    e = make_engine([agent("a"), agent("b")])
    assert e.transfer_refusal("nobody", "q") == "unknown agent"
    assert e.transfer_refusal("a", "nope") == "unknown queue"
    e.handle(AgentLogout(1, "b"))
    assert e.transfer_refusal("b", "q") == "not logged in"
    e.handle(DeviceUnregistered(2, "a"))
    assert e.transfer_refusal("a", "q") == "phone not registered"
    # A logged-out target is not held for: the call waits in the queue as any caller.
    assert offers(transfer(e, 3, "t1", "b")) == []
    assert e.stats["transfer_target_unavailable"] == 1
    e.handle(AgentLogin(4, "b"))
    e.check_invariants()


def test_a_bad_window_is_refused_before_anything_changes() -> None:
    with pytest.raises(ValueError, match="target_window_s"):
        CallArrived(1, "t1", "q", target_agent="b", target_window_s=0)
    with pytest.raises(ValueError, match="target_window_s"):
        CallArrived(1, "t1", "q", target_agent="b", target_window_s=float("nan"))
    ev = CallArrived(1, "t1", "q", target_agent="b", target_window_s=12.5)
    assert event_from_dict(json.loads(json.dumps(event_to_dict(ev)))) == ev


def test_a_held_transfer_survives_a_snapshot_and_restore() -> None:
    def run(cut: bool) -> list[tuple[str, str]]:
        e = make_engine([agent("a"), agent("b")])
        e.handle(CallArrived(1, "c0", "q"))
        e.handle(OfferAnswered(2, "c0", "a"))
        e.handle(AgentBreak(3, "b"))
        transfer(e, 10, "t1", "b", window=30)
        if cut:
            e = Engine.restore(json.loads(json.dumps(e.snapshot())))
        got = offers(e.handle(AgentUnbreak(20, "b")))
        got += offers(e.handle(CallEnded(30, "c0")))
        return got

    assert run(cut=True) == run(cut=False) == [("t1", "b")]
