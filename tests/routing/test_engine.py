"""The routing engine, one behaviour per test (pure: no database, no clock)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from routing.engine.model import (
    AgentBreak,
    AgentLogin,
    AgentLogout,
    AgentProfile,
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
    EscalationRule,
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
    event_from_dict,
    event_to_dict,
)
from routing.engine.router import Engine

BANK, SHOP = "bank", "shop"


def offers(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    return [(d.call_id, d.agent_id) for d in decisions if isinstance(d, Offer)]


def of_type(decisions: Iterable[Decision], cls: type) -> list:
    return [d for d in decisions if isinstance(d, cls)]


def make_engine(
    queues: Iterable[QueueConfig] = (),
    agents: Iterable[AgentProfile] = (),
    tenants: Iterable[TenantConfig] = (TenantConfig(BANK), TenantConfig(SHOP)),
    login: bool = True,
    at: float = 0.0,
) -> Engine:
    e = Engine()
    for t in tenants:
        e.handle(TenantUpdated(at, t))
    for q in queues:
        e.handle(QueueUpdated(at, q))
    agents = list(agents)
    for a in agents:
        e.handle(AgentUpdated(at, a))
    if login:
        for a in agents:
            e.handle(AgentLogin(at, a.agent_id))
    return e


def agent(aid: str, tenant: str = BANK, clearance: int = 0, **skills: int) -> AgentProfile:
    return AgentProfile(aid, {tenant: skills}, clearance)


def queue(qid: str = "q", tenant: str = BANK, **kw: object) -> QueueConfig:
    kw.setdefault("announce_interval_s", 0.0)
    return QueueConfig(qid, tenant, **kw)  # type: ignore[arg-type]


def arrive(e: Engine, at: float, cid: str, qid: str = "q", **kw: object) -> list[Decision]:
    return e.handle(CallArrived(at, cid, qid, **kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Walls
# ---------------------------------------------------------------------------------------------


def test_a_call_goes_only_to_agents_certified_for_its_tenant_with_clearance() -> None:
    e = make_engine(
        [queue("bq", BANK, clearance=2)],
        [agent("shop-only", SHOP, 3), agent("low-clearance", BANK, 1), agent("ok", BANK, 2)],
        at=0,
    )
    # The uncertified and under-cleared agents have idled longest, and still are passed over.
    assert offers(arrive(e, 10, "c1", "bq")) == [("c1", "ok")]
    assert offers(arrive(e, 11, "c2", "bq")) == []
    assert e.call_state("c2") == "waiting"
    e.check_invariants()


def test_a_queue_without_certified_agents_keeps_callers_counts_and_alerts() -> None:
    e = make_engine([queue("bq", BANK)], [agent("s1", SHOP)])
    arrive(e, 1, "c1", "bq")
    assert e.stats["no_certified_agent"] == 1
    stalls = of_type(e.tick(30), Stall)
    assert stalls and stalls[0].reason == "no_certified_agent" and stalls[0].queue_id == "bq"
    # Certify an agent live: the waiting caller is served, nobody was dropped.
    d = e.handle(AgentUpdated(31, AgentProfile("s1", {SHOP: {}, BANK: {}})))
    assert offers(d) == [("c1", "s1")]


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


def serve(e: Engine, at: float, cid: str, aid: str, talk: float = 10.0) -> None:
    e.handle(OfferAnswered(at, cid, aid))
    e.handle(CallEnded(at + talk, cid))


def test_longest_idle_agent_gets_the_call() -> None:
    e = make_engine([queue(wrap_up_s=0)], [agent("a"), agent("b")], login=False)
    e.handle(AgentLogin(0, "b"))
    e.handle(AgentLogin(5, "a"))
    assert offers(arrive(e, 10, "c1")) == [("c1", "b")]
    serve(e, 11, "c1", "b")
    # b became idle at 21, a at 5: a has idled longer.
    assert offers(arrive(e, 30, "c2")) == [("c2", "a")]


def test_least_calls_today() -> None:
    e = make_engine([queue(strategy="least_calls", wrap_up_s=0)], [agent("a"), agent("b")])
    assert offers(arrive(e, 1, "c1")) == [("c1", "a")]
    serve(e, 2, "c1", "a")
    assert offers(arrive(e, 20, "c2")) == [("c2", "b")]
    serve(e, 21, "c2", "b")
    # Both took one call; b's ended later but a took its call first: tie on count -> idle time.
    assert offers(arrive(e, 40, "c3")) == [("c3", "a")]


def test_skill_weighted_prefers_the_stronger_agent() -> None:
    q = queue(strategy="skill_weighted", skills=(("cards", 1),))
    e = make_engine([q], [agent("weak", cards=1), agent("strong", cards=5)])
    assert offers(arrive(e, 1, "c1")) == [("c1", "strong")]


def test_fatigue_aware_spares_the_busiest_agent() -> None:
    e = make_engine([queue(strategy="fatigue", wrap_up_s=0)], [agent("a"), agent("b")])
    assert offers(arrive(e, 0, "c1")) == [("c1", "a")]
    serve(e, 0, "c1", "a", talk=1800)  # a talked half an hour
    arrive(e, 1800, "c2")  # b takes it (a just finished? a is ready at 1800 too: older idle b)
    e.handle(OfferAnswered(1800, "c2", "b"))
    e.handle(CallEnded(1801, "c2"))  # b: a 1 s call
    # Both idle; a has idled longer (since 1800 vs 1801) but is far more occupied.
    assert offers(arrive(e, 1900, "c3")) == [("c3", "b")]


def test_sticky_caller_waits_for_its_last_agent_then_anyone() -> None:
    e = make_engine([queue(strategy="sticky", sticky_window_s=30, wrap_up_s=60)], [agent("a")])
    e.handle(AgentUpdated(0, agent("b")))
    arrive(e, 1, "c1", caller_id="+380501")
    serve(e, 2, "c1", "a")  # a wraps up until 72
    e.handle(AgentLogin(20, "b"))
    # The caller returns while a wraps up: held for a although b is free.
    assert offers(arrive(e, 50, "c2", caller_id="+380501")) == []
    assert offers(e.tick(72)) == [("c2", "a")]
    e.handle(OfferAnswered(73, "c2", "a"))
    e.handle(CallEnded(80, "c2"))
    e.handle(AgentBreak(81, "a"))
    # a on break (logged in, not ready): the caller waits the window, then goes to b.
    assert offers(arrive(e, 100, "c3", caller_id="+380501")) == []
    assert offers(e.tick(129)) == []
    assert offers(e.tick(130)) == [("c3", "b")]


def test_sticky_is_skipped_when_the_last_agent_is_logged_out() -> None:
    e = make_engine([queue(sticky_window_s=30, wrap_up_s=0)], [agent("a"), agent("b")])
    arrive(e, 1, "c1", caller_id="x")
    serve(e, 2, "c1", "a")
    e.handle(AgentLogout(20, "a"))
    assert offers(arrive(e, 30, "c2", caller_id="x")) == [("c2", "b")]


def test_ring_all_first_answer_wins_others_cancelled() -> None:
    e = make_engine(
        [queue(strategy="ring_all", ring_all_max=3)], [agent(x) for x in ("a", "b", "c", "d")]
    )
    d = arrive(e, 1, "c1")
    assert sorted(offers(d)) == [("c1", "a"), ("c1", "b"), ("c1", "c")]
    d = e.handle(OfferAnswered(3, "c1", "b"))
    assert sorted((x.agent_id, x.reason) for x in of_type(d, CancelOffer)) == [
        ("a", "answered_elsewhere"),
        ("c", "answered_elsewhere"),
    ]
    assert e.agent_state("a")[0] == "available" and e.agent_state("b")[0] == "on_call"
    assert e.stats.get("stale_answer") is None
    e.handle(OfferAnswered(3, "c1", "a"))  # too late: counted, no harm
    assert e.stats["stale_answer"] == 1 and e.agent_call("b") == "c1"
    e.check_invariants()


def test_switching_away_from_ring_all_keeps_the_ringing_call() -> None:
    e = make_engine([queue(strategy="ring_all", ring_all_max=2)], [agent("a"), agent("b")])
    arrive(e, 1, "c1")
    e.handle(QueueUpdated(2, queue(strategy="longest_idle")))
    assert e.call_offers("c1") == ["a", "b"]
    e.check_invariants()
    e.handle(OfferAnswered(3, "c1", "b"))
    assert e.agent_state("a")[0] == "available" and e.agent_call("b") == "c1"
    e.check_invariants()


def test_sticky_memory_forgets_callers_after_a_week() -> None:
    e = make_engine([queue(sticky_window_s=30, wrap_up_s=0)], [agent("a"), agent("b")])
    arrive(e, 1, "c1", caller_id="x")
    serve(e, 2, "c1", "a")
    e.handle(AgentBreak(20, "a"))
    week = 7 * 86400
    arrive(e, week + 5, "c2", caller_id="y")
    serve(e, week + 6, "c2", "b")  # a new contact prunes the ones older than a week
    assert offers(arrive(e, week + 100, "c3", caller_id="x")) == [("c3", "b")]


def test_ring_all_call_requeues_when_every_agent_declines() -> None:
    e = make_engine([queue(strategy="ring_all", ring_all_max=2)], [agent("a"), agent("b")])
    arrive(e, 1, "c1")
    e.handle(OfferRejected(2, "c1", "a"))
    assert e.call_state("c1") == "offered"
    e.handle(OfferRejected(3, "c1", "b"))
    assert e.call_state("c1") == "waiting"
    e.check_invariants()


def test_priority_callers_get_a_90_second_head_start() -> None:
    e = make_engine([queue(wrap_up_s=0)], [agent("a")])
    arrive(e, 0, "busy")
    e.handle(OfferAnswered(0, "busy", "a"))
    arrive(e, 10, "regular")
    arrive(e, 60, "vip", priority=1)  # queues as if it arrived at -30
    arrive(e, 101, "late-vip", priority=1)  # as if at 11: behind "regular"
    assert offers(e.handle(CallEnded(200, "busy"))) == [("vip", "a")]
    e.handle(OfferAnswered(201, "vip", "a"))
    assert offers(e.handle(CallEnded(211, "vip"))) == [("regular", "a")]


def test_a_waiting_callers_position_follows_the_queue_order() -> None:
    e = make_engine([queue(wrap_up_s=0)], [agent("a")])
    arrive(e, 0, "busy")
    e.handle(OfferAnswered(0, "busy", "a"))
    assert e.position("busy") is None  # talking, not waiting
    arrive(e, 10, "regular")
    arrive(e, 20, "second")
    assert [e.position(c) for c in ("regular", "second")] == [1, 2]
    arrive(e, 60, "vip", priority=1)  # as if it arrived at -30: first in line
    assert [e.position(c) for c in ("vip", "regular", "second")] == [1, 2, 3]
    e.handle(CallAbandoned(70, "regular"))
    assert [e.position(c) for c in ("vip", "second")] == [1, 2]
    assert e.position("regular") is None and e.position("nobody") is None
    e.handle(CallEnded(80, "busy"))  # offered to the vip: no longer in the line
    assert e.position("vip") is None and e.position("second") == 1


def test_wrap_up_counts_from_the_switchs_hangup_when_the_event_comes_late() -> None:
    e = make_engine([queue(wrap_up_s=10)], [agent("a")])
    arrive(e, 0, "c1")
    e.handle(OfferAnswered(0, "c1", "a"))
    arrive(e, 30, "c2")
    # Hung up at 50 on the switch; the event reaches the engine at 53.
    assert offers(e.handle(CallEnded(53, "c1", ended_at=50.0))) == []
    assert e.agent_state("a")[0] == "wrap_up"
    assert offers(e.tick(59.9)) == []
    assert offers(e.tick(60)) == [("c2", "a")]  # 50 + 10, not 53 + 10
    # Later than the whole wrap-up: available at once; an ended_at after the event is ignored.
    e.handle(OfferAnswered(61, "c2", "a"))
    arrive(e, 62, "c3")
    assert offers(e.handle(CallEnded(80, "c2", ended_at=65.0))) == [("c3", "a")]
    e.handle(OfferAnswered(81, "c3", "a"))
    arrive(e, 85, "c4")
    e.handle(CallEnded(90, "c3", ended_at=95.0))
    assert offers(e.tick(99.9)) == []
    assert offers(e.tick(100)) == [("c4", "a")]  # 90 + 10


def test_skill_relaxation_after_30_and_60_seconds() -> None:
    q = queue(skills=(("cards", 4),), relaxation=((30, 2), (60, 0)))
    e = make_engine([q], [agent("l1", cards=1), agent("l2", cards=2)])
    arrive(e, 0, "c1")
    assert offers(e.tick(29)) == []
    assert offers(e.tick(30)) == [("c1", "l2")]
    e.handle(OfferAnswered(31, "c1", "l2"))
    arrive(e, 40, "c2")
    assert offers(e.tick(99)) == []
    assert offers(e.tick(100)) == [("c2", "l1")]


def test_agent_freed_takes_the_relaxed_oldest_call_over_a_fresh_priority_one() -> None:
    q = queue(skills=(("cards", 4),), relaxation=((30, 2),), wrap_up_s=0)
    e = make_engine([q], [agent("l2", cards=2)], login=False)
    arrive(e, 0, "old")
    arrive(e, 35, "vip", priority=1)  # key -55: head of the queue, but waited only 5 s
    assert offers(e.handle(AgentLogin(36, "l2"))) == [("old", "l2")]


# ---------------------------------------------------------------------------------------------
# Agent states
# ---------------------------------------------------------------------------------------------


def test_no_answer_penalty_then_available_and_call_goes_elsewhere() -> None:
    q = queue(offer_timeout_s=15, no_answer_penalty_s=30)
    e = make_engine([q], [agent("a"), agent("b")], login=False)
    e.handle(AgentLogin(0, "a"))
    e.handle(AgentLogin(1, "b"))
    assert offers(arrive(e, 5, "c1")) == [("c1", "a")]
    assert (e.next_timer_at() or 99) <= 20  # the offer times out at 20 at the latest
    d = e.tick(20)
    assert ("c1", "b") in offers(d)
    assert of_type(d, CancelOffer)[0].reason == "no_answer"
    assert e.agent_state("a") == ("available", None)
    e.handle(OfferAnswered(21, "c1", "b"))
    assert offers(arrive(e, 21, "c2")) == []  # a rests until 50
    assert offers(e.tick(50)) == [("c2", "a")]


def test_consecutive_no_answers_send_an_absent_agent_to_break() -> None:
    q = queue(offer_timeout_s=10, no_answer_penalty_s=5, max_missed_offers=3)
    e = make_engine([q], [agent("a")])
    arrive(e, 0, "c1")
    t = 0.0
    for _ in range(3):
        t = e.next_timer_at() or t
        while e.agent_state("a")[0] != "offered":
            e.tick(e.next_timer_at() or t)
        e.handle(OfferNoAnswer(e.now, "c1", "a"))
    assert e.agent_state("a") == ("break", "missed_offers")
    assert e.call_state("c1") == "waiting"
    e.handle(AgentUnbreak(e.now + 1, "a"))
    assert e.agent_call("a") == "c1"


def test_a_rejection_rests_the_agent_without_counting_a_miss() -> None:
    e = make_engine([queue(max_missed_offers=1, no_answer_penalty_s=5)], [agent("a")])
    arrive(e, 0, "c1")
    e.handle(OfferRejected(1, "c1", "a"))
    assert e.agent_state("a") == ("available", None)
    assert offers(e.tick(6)) == [("c1", "a")]


def test_unregistered_device_is_never_offered_and_offer_moves_on() -> None:
    e = make_engine([queue()], [agent("a"), agent("b")])
    e.handle(DeviceUnregistered(1, "a"))
    assert offers(arrive(e, 2, "c1")) == [("c1", "b")]
    e.handle(OfferAnswered(2.5, "c1", "b"))
    e.handle(DeviceRegistered(3, "a"))
    assert offers(arrive(e, 4, "c2")) == [("c2", "a")]
    d = e.handle(DeviceUnregistered(5, "a"))
    assert of_type(d, CancelOffer)[0].reason == "device_unregistered"
    assert e.agent_state("a")[0] == "available" and e.call_state("c2") == "waiting"
    assert offers(e.handle(CallEnded(6, "c1"))) == []  # b wraps up first
    e.check_invariants()


def test_wrap_up_ends_by_timer() -> None:
    e = make_engine([queue(wrap_up_s=25)], [agent("a")])
    arrive(e, 0, "c1")
    serve(e, 1, "c1", "a", talk=10)
    assert e.agent_state("a")[0] == "wrap_up"
    arrive(e, 12, "c2")
    assert not offers(e.tick(35)) and e.agent_state("a")[0] == "wrap_up"
    assert offers(e.tick(36)) == [("c2", "a")]


def test_break_and_logout_during_a_call_wait_for_the_call_and_wrap_up() -> None:
    e = make_engine([queue(wrap_up_s=5)], [agent("a"), agent("b")])
    arrive(e, 0, "c1")
    arrive(e, 0, "c2")
    e.handle(OfferAnswered(1, "c1", "a"))
    e.handle(OfferAnswered(1, "c2", "b"))
    e.handle(AgentBreak(2, "a", "lunch"))
    e.handle(AgentLogout(2, "b"))
    assert e.agent_state("a")[0] == "on_call" and e.call_state("c1") == "connected"
    e.handle(CallEnded(10, "c1"))
    e.handle(CallEnded(10, "c2"))
    e.tick(15)
    assert e.agent_state("a") == ("break", "lunch")
    assert e.agent_state("b") == ("logged_out", None)
    assert e.outcomes["answered"] == 2


def test_a_command_in_wrap_up_replaces_the_one_pending_from_the_call() -> None:
    e = make_engine([queue(wrap_up_s=30)], [agent("a")])
    arrive(e, 0, "c1")
    e.handle(OfferAnswered(1, "c1", "a"))
    e.handle(AgentLogout(2, "a"))
    e.handle(CallEnded(3, "c1"))
    assert e.agent_state("a")[0] == "wrap_up"
    e.check_invariants()  # a logout pending through wrap-up is legitimate
    e.handle(AgentBreak(4, "a", "coaching"))  # the supervisor changes their mind
    e.handle(AgentUnbreak(5, "a"))
    arrive(e, 6, "c2")
    e.handle(OfferAnswered(7, "c2", "a"))
    e.handle(CallEnded(8, "c2"))
    e.tick(40)
    assert e.agent_state("a") == ("available", None)  # the old logout did not resurface
    e.check_invariants()


def test_break_or_logout_while_ringing_puts_the_call_back() -> None:
    e = make_engine([queue()], [agent("a"), agent("b")])
    arrive(e, 0, "c1")
    d = e.handle(AgentBreak(1, "a", "coffee"))
    assert offers(d) == [("c1", "b")]
    d = e.handle(AgentLogout(2, "b"))
    assert of_type(d, CancelOffer) and e.call_state("c1") == "waiting"
    e.check_invariants()


# ---------------------------------------------------------------------------------------------
# Live edits
# ---------------------------------------------------------------------------------------------


def test_live_queue_edit_keeps_agents_and_callers() -> None:
    e = make_engine([queue(wrap_up_s=0)], [agent("a", cards=1), agent("b")])
    arrive(e, 0, "c1")
    e.handle(OfferAnswered(0, "c1", "a"))
    arrive(e, 0, "c2")
    e.handle(OfferAnswered(0, "c2", "b"))
    arrive(e, 5, "w1")
    arrive(e, 6, "w2")
    d = e.handle(
        QueueUpdated(7, queue(strategy="least_calls", skills=(("cards", 1),), wrap_up_s=0))
    )
    assert not of_type(d, CancelOffer)
    assert e.call_state("w1") == e.call_state("w2") == "waiting"
    assert e.agent_state("a")[0] == e.agent_state("b")[0] == "on_call"
    # b lacks the new skill: when it is free it gets nothing; a gets the oldest waiting call.
    assert offers(e.handle(CallEnded(8, "c2"))) == []
    assert offers(e.handle(CallEnded(9, "c1"))) == [("w1", "a")]
    # Drop the requirement again: b takes w2 at once.
    assert offers(e.handle(QueueUpdated(10, queue()))) == [("w2", "b")]
    e.check_invariants()


def test_removing_a_certification_withdraws_an_offer_in_flight() -> None:
    e = make_engine([queue()], [agent("a")])
    arrive(e, 0, "c1")
    d = e.handle(AgentUpdated(1, AgentProfile("a", {SHOP: {}})))
    assert of_type(d, CancelOffer)[0].reason == "no_longer_member"
    assert e.call_state("c1") == "waiting" and e.agent_state("a")[0] == "available"
    e.check_invariants()


# ---------------------------------------------------------------------------------------------
# Escalation and overflow
# ---------------------------------------------------------------------------------------------


def bank_with_rules() -> TenantConfig:
    return TenantConfig(
        BANK,
        utc_offset_s=7200,
        second_line="client:bank-desk",
        escalation=(
            EscalationRule("client:key-accounts", "vip", vip=True, on_arrival=True),
            EscalationRule("client:fraud", "fraud", topics=("fraud",)),
            EscalationRule("client:night", "after_hours", hours=(20 * 3600, 8 * 3600)),
        ),
    )


def test_vip_callers_escalate_on_arrival() -> None:
    e = make_engine([queue()], [agent("a")], tenants=[bank_with_rules()])
    d = arrive(e, 1000, "c1", vip=True, caller_id="+1")
    esc = of_type(d, Escalate)[0]
    assert (esc.target, esc.reason) == ("client:key-accounts", "vip")
    assert ("caller", "+1") in esc.context
    assert e.call_state("c1") == "escalated" and not offers(d)


def test_agent_escalation_follows_topic_time_of_day_and_default() -> None:
    e = make_engine([queue(wrap_up_s=0)], [agent("a")], tenants=[bank_with_rules()])
    day = 10 * 3600 - 7200  # 10:00 local

    def escalate(t: float, cid: str, topic: str | None) -> Escalate:
        arrive(e, t, cid)
        e.handle(OfferAnswered(t, cid, "a"))
        return of_type(e.handle(EscalationRequested(t + 1, cid, topic)), Escalate)[0]

    assert escalate(day, "c1", "fraud").target == "client:fraud"
    assert escalate(day + 10, "c2", "cards").target == "client:bank-desk"
    night = 22 * 3600 - 7200
    assert escalate(night, "c3", "cards").target == "client:night"
    assert e.outcomes["escalated"] == 3 and e.agent_state("a")[0] == "available"


def test_escalation_without_target_is_a_counted_skip() -> None:
    e = make_engine([queue()], [agent("a")])
    arrive(e, 0, "c1")
    e.handle(OfferAnswered(0, "c1", "a"))
    assert e.handle(EscalationRequested(1, "c1")) == []
    assert e.stats["no_escalation_target"] == 1 and e.call_state("c1") == "connected"


def test_overflow_in_caps_concurrent_and_minutes_per_day() -> None:
    tenant = TenantConfig(
        BANK,
        max_overflow_in_concurrent=2,
        max_overflow_in_minutes_per_day=1,
        overflow_refused_target="client:own-voicemail",
    )
    e = make_engine([queue()], [], tenants=[tenant])
    arrive(e, 0, "o1", overflow_in=True)
    arrive(e, 0, "o2", overflow_in=True)
    d = arrive(e, 0, "o3", overflow_in=True)
    assert of_type(d, Overflow) == [Overflow("o3", "client:own-voicemail", "cap_concurrent")]
    assert not of_type(arrive(e, 1, "own", overflow_in=False), Overflow)  # not overflow: no cap
    e.handle(CallAbandoned(40, "o1"))
    e.handle(CallAbandoned(40, "o2"))  # 80 s used of 60
    d = arrive(e, 41, "o4", overflow_in=True)
    assert of_type(d, Overflow)[0].reason == "cap_minutes"
    d = arrive(e, 86400 + 1, "o5", overflow_in=True)  # a new day
    assert not of_type(d, Overflow)


def test_diversion_by_queue_length_to_another_queue_of_the_tenant() -> None:
    main = queue("main", overflow=(OverflowRule("queue_length", 1, "queue:spill"),))
    e = make_engine([main, queue("spill")], [agent("a")], login=False)
    assert not of_type(arrive(e, 0, "c1", "main"), Overflow)
    d = arrive(e, 1, "c2", "main")
    assert of_type(d, Overflow) == [Overflow("c2", "queue:spill", "queue_length")]
    assert e.call_state("c2") == "waiting" and e.waiting("spill") == 1


def test_diversion_by_estimated_wait_time_of_day_ratio_and_max_wait() -> None:
    rules = (
        OverflowRule("time_of_day", 22 * 3600, "voicemail", until=6 * 3600),
        OverflowRule("available_ratio", 0.5, "site:b"),
    )
    e = make_engine(
        [
            queue("night", overflow=rules[:1]),
            queue("ratio", overflow=rules[1:]),
            queue("slow", overflow=(OverflowRule("max_wait", 120, "callback"),)),
        ],
        [],
    )
    assert of_type(arrive(e, 23 * 3600, "n1", "night"), Overflow)[0].target == "voicemail"
    assert of_type(arrive(e, 23 * 3600, "r1", "ratio"), Overflow)[0].target == "site:b"
    arrive(e, 23 * 3600, "s1", "slow")
    assert not of_type(e.tick(23 * 3600 + 119), OfferCallback)
    assert of_type(e.tick(23 * 3600 + 120), OfferCallback)[0].call_id == "s1"
    d = e.handle(CallbackAccepted(23 * 3600 + 130, "s1"))
    assert of_type(d, Overflow) == [Overflow("s1", "callback", "callback_accepted")]
    assert e.outcomes["overflowed"] == 3
    # The estimated wait needs someone serving the queue to mean anything.
    e = make_engine([queue("ewt", overflow=(OverflowRule("ewt", 100, "site:b"),))], [agent("a")])
    arrive(e, 0, "busy", "ewt")
    e.handle(OfferAnswered(0, "busy", "a"))
    assert of_type(arrive(e, 1, "e1", "ewt"), Overflow) == [Overflow("e1", "site:b", "ewt")]


def test_overflow_to_another_tenants_queue_is_refused() -> None:
    e = make_engine([queue("shopq", SHOP)], [])
    bad = queue("bq", BANK, overflow=(OverflowRule("queue_length", 0, "queue:shopq"),))
    with pytest.raises(ValueError, match="another tenant"):
        e.handle(QueueUpdated(1, bad))
    assert "bq" not in e.queues


def test_diversions_cannot_loop_forever() -> None:
    q1 = queue("q1", overflow=(OverflowRule("queue_length", 0, "queue:q2"),))
    q2 = queue("q2", overflow=(OverflowRule("queue_length", 0, "queue:q1"),))
    e = make_engine([q1, q2], [])
    e.handle(QueueUpdated(0, q1))  # q1's target exists now
    d = arrive(e, 1, "c1", "q1")
    assert len(of_type(d, Overflow)) == 3 and e.call_state("c1") == "waiting"
    assert e.stats["diversion_limit"] == 1


# ---------------------------------------------------------------------------------------------
# Announcements
# ---------------------------------------------------------------------------------------------


def test_announcements_never_repeat_a_figure_and_update_only_with_a_reason() -> None:
    q = QueueConfig("q", BANK, announce_interval_s=30, wrap_up_s=0, callback_over_s=600)
    e = make_engine([q], [agent("a")])
    arrive(e, 0, "busy")
    e.handle(OfferAnswered(0, "busy", "a"))
    told: list[Announce] = []
    for i in range(8):
        told += of_type(arrive(e, 1 + i, f"w{i}"), Announce)
    assert [a.reason for a in told] == ["initial"] * 8
    last = told[-1]
    t, history = 1.0, []
    while t < 1500:
        t += 30
        history += [a for a in of_type(e.tick(t), Announce) if a.call_id == last.call_id]
    figures = [last.seconds] + [a.seconds for a in history]
    assert all(a.reason in ("delay", "ahead") for a in history)
    assert all(x != y for x, y in zip(figures, figures[1:], strict=False))
    assert all(a.seconds % 30 == 0 and a.seconds >= 30 for a in told + history)


def test_a_long_estimate_offers_a_callback() -> None:
    q = QueueConfig("q", BANK, announce_interval_s=60, callback_over_s=120)
    e = make_engine([q], [agent("a")])
    arrive(e, 0, "busy")
    e.handle(OfferAnswered(0, "busy", "a"))
    d = arrive(e, 1, "c1")
    assert of_type(d, Announce) and of_type(d, OfferCallback)
    e.handle(CallbackAccepted(5, "c1"))
    assert e.call_state("c1") == "overflowed"


# ---------------------------------------------------------------------------------------------
# Watchdog and bad input
# ---------------------------------------------------------------------------------------------


def test_watchdog_reports_and_heals_a_stalled_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    e = make_engine([queue()], [agent("a")], login=False)
    arrive(e, 0, "c1")
    monkeypatch.setattr(Engine, "_dispatch_agent", lambda self, a, out: False)  # a bug
    e.handle(AgentLogin(1, "a"))
    assert e.call_state("c1") == "waiting"
    monkeypatch.undo()
    d = e.tick(20)
    assert [(s.queue_id, s.reason) for s in of_type(d, Stall)] == [("q", "idle_agents")]
    assert offers(d) == [("c1", "a")] and e.stats["stall"] == 1


def test_unknown_duplicate_and_late_events_are_counted_skips() -> None:
    e = make_engine([queue()], [agent("a")])
    arrive(e, 0, "c1")
    before = e.snapshot()
    assert e.handle(CallAbandoned(1, "nope")) == []
    assert e.handle(OfferAnswered(1, "c1", "ghost")) == []
    assert e.handle(AgentLogin(1, "ghost")) == []
    assert arrive(e, 1, "c1") == []
    assert e.handle(AgentLogin(1, "a")) == []
    assert offers(arrive(e, 1, "c2", "no-such-queue")) == []
    assert e.stats["unknown_call"] == 1 and e.stats["unknown_agent"] == 2
    assert e.stats["duplicate"] == 2 and e.stats["unknown_queue"] == 1
    assert of_type(arrive(e, 1, "c3", "no-such-queue"), Reject)
    e.handle(OfferAnswered(2, "c1", "a"))
    e.handle(CallEnded(3, "c1"))
    e.handle(CallEnded(4, "c1"))
    assert e.stats["late_event"] == 1
    assert before["calls"] != e.snapshot()["calls"]
    e.check_invariants()


def test_out_of_order_events_are_applied_at_the_engine_clock() -> None:
    e = make_engine([queue(wrap_up_s=10)], [agent("a")])
    arrive(e, 100, "c1")
    e.handle(OfferAnswered(50, "c1", "a"))  # stamped before the arrival
    assert e.stats["out_of_order"] == 1 and e.now == 100
    e.handle(CallEnded(105, "c1"))
    assert e.next_timer_at() is not None
    e.check_invariants()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_bad_times_raise_before_anything_changes(bad: float) -> None:
    e = make_engine([queue()], [agent("a")])
    before = json.dumps(e.snapshot())
    with pytest.raises(ValueError, match="time"):
        arrive(e, bad, "c1")
    assert json.dumps(e.snapshot()) == before


def test_bad_configuration_raises_clear_errors() -> None:
    e = make_engine([queue()], [])
    with pytest.raises(ValueError, match="unknown tenant"):
        e.handle(QueueUpdated(0, queue("x", "nobody")))
    with pytest.raises(ValueError, match="another tenant"):
        e.handle(QueueUpdated(0, queue("q", SHOP)))
    with pytest.raises(ValueError, match="strategy"):
        queue(strategy="random")
    with pytest.raises(ValueError, match="relaxation"):
        queue(relaxation=((60, 0), (30, 2)))
    with pytest.raises(ValueError, match="until"):
        OverflowRule("time_of_day", 0, "voicemail")


# ---------------------------------------------------------------------------------------------
# Snapshot, replay, determinism
# ---------------------------------------------------------------------------------------------


def scenario() -> list[Event]:
    """A busy hour in miniature touching most features."""
    q = QueueConfig(
        "q",
        BANK,
        skills=(("cards", 3),),
        relaxation=((30, 2), (60, 0)),
        sticky_window_s=20,
        announce_interval_s=30,
        callback_over_s=300,
        overflow=(OverflowRule("max_wait", 400, "site:b"),),
    )
    ring = QueueConfig("r", SHOP, strategy="ring_all", ring_all_max=2, wrap_up_s=5)
    ev: list[Event] = [
        TenantUpdated(0, bank_with_rules()),
        TenantUpdated(0, TenantConfig(SHOP)),
        QueueUpdated(0, q),
        QueueUpdated(0, ring),
    ]
    for i in range(6):
        ev.append(AgentUpdated(0, AgentProfile(f"a{i}", {BANK: {"cards": i}, SHOP: {}})))
        ev.append(AgentLogin(i, f"a{i}"))
    t = 10.0
    for n in range(60):
        t += 7
        qid = "q" if n % 3 else "r"
        ev.append(CallArrived(t, f"c{n}", qid, priority=n % 5 == 0, caller_id=f"p{n % 7}"))
        ev.append(Tick(t + 3))
    return ev


def drive(e: Engine, events: list[Event]) -> list[Decision]:
    """Feed events, answering offers and ending calls like people would, deterministically."""
    out: list[Decision] = []
    pending: list[Event] = []
    for ev in events:
        d = e.handle(ev)
        out += d
        for x in d:
            if isinstance(x, Offer) and int(x.call_id[1:]) % 4 != 3:
                pending.append(OfferAnswered(ev.at + 2, x.call_id, x.agent_id))
        for p in [p for p in pending if p.at <= ev.at + 3]:
            pending.remove(p)
            out += e.handle(p)
            out += e.handle(CallEnded(p.at + 40, p.call_id))  # type: ignore[attr-defined]
    return out


def test_same_events_same_decisions() -> None:
    assert drive(Engine(), scenario()) == drive(Engine(), scenario())


def norm(snapshot: dict) -> dict:
    return json.loads(json.dumps(snapshot, allow_nan=False))


def test_snapshot_and_replay_equal_never_stopping() -> None:
    events = scenario()
    whole = Engine()
    for ev in events:
        whole.handle(ev)
    for cut in (8, 40, 90, len(events) - 5):
        first = Engine()
        for ev in events[:cut]:
            first.handle(ev)
        snap = json.loads(json.dumps(first.snapshot(), allow_nan=False))
        restored = Engine.restore(snap)
        tail_a = [first.handle(ev) for ev in events[cut:]]
        tail_b = [restored.handle(ev) for ev in events[cut:]]
        assert tail_a == tail_b
        assert norm(restored.snapshot()) == norm(first.snapshot()) == norm(whole.snapshot())
        restored.check_invariants()


def test_snapshot_replay_with_people_answering() -> None:
    """The people in ``drive`` answer the offers they get, so the events after the cut depend
    on the decisions: they match only if the restored engine decides as the original did."""
    events = scenario()
    original, stopped = Engine(), Engine()
    drive(original, events[:50])
    drive(stopped, events[:50])
    restored = Engine.restore(json.loads(json.dumps(stopped.snapshot())))
    tail = drive(original, events[50:])
    assert any(isinstance(d, Offer) for d in tail)
    assert drive(restored, events[50:]) == tail
    assert norm(restored.snapshot()) == norm(original.snapshot())


def test_events_round_trip_through_dicts() -> None:
    for ev in scenario() + [AgentBreak(1, "a", "lunch"), EscalationRequested(2, "c", "fraud")]:
        d = event_to_dict(ev)
        assert event_from_dict(json.loads(json.dumps(d))) == ev
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_dict({"kind": "explode", "at": 1})
    with pytest.raises(ValueError, match="bad call_arrived"):
        event_from_dict({"kind": "call_arrived", "at": 1})


def test_decisions_do_not_depend_on_the_hash_seed() -> None:
    """Set or dict-of-hash order must never leak into decisions: two interpreters with
    different string hashing give the same decisions for the same events."""
    code = (
        "import hashlib, sys; sys.path.insert(0, '.');"
        "from tests.routing.test_engine import Engine, drive, scenario;"
        "print(hashlib.sha256(repr(drive(Engine(), scenario())).encode()).hexdigest())"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1 and len(digests.pop().strip()) == 64


def test_snapshot_serialisations_agree_and_restore_alike() -> None:
    """``snapshot_json`` and ``snapshot_bytes`` carry exactly ``snapshot()``; an engine
    restored from any of them decides as the original does."""
    import gc
    import pickle

    events = scenario()
    original = Engine()
    drive(original, events[:60])
    snap = original.snapshot()
    assert json.loads(original.snapshot_json()) == norm(snap)
    restored = [
        Engine.restore(json.loads(json.dumps(snap))),
        Engine.restore_json(original.snapshot_json()),
        Engine.restore_bytes(original.snapshot_bytes()),
    ]
    tail = drive(original, events[60:])
    for r in restored:
        assert drive(r, events[60:]) == tail
        assert norm(r.snapshot()) == norm(original.snapshot())
    # The collector is paused only while a snapshot is built, and left as it was found.
    assert gc.isenabled()
    gc.disable()
    try:
        original.snapshot_bytes()
        assert not gc.isenabled()
    finally:
        gc.enable()
    # A pickle that names any class is refused before anything is built.
    with pytest.raises(ValueError, match="names no classes"):
        Engine.restore_bytes(pickle.dumps({"version": 1, "x": Path("/")}))
    with pytest.raises(ValueError, match="not an engine snapshot"):
        Engine.restore_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="version"):
        Engine.restore_bytes(pickle.dumps({"version": 99}))


def test_wrap_up_done_frees_the_agent_early_and_its_timer_then_does_nothing() -> None:
    from routing.engine.model import WrapUpDone

    e = make_engine([queue(wrap_up_s=60)], [agent("a")])
    assert offers(e.handle(CallArrived(1.0, "c1", "q"))) == [("c1", "a")]
    e.handle(OfferAnswered(3.0, "c1", "a"))
    e.handle(CallEnded(50.0, "c1"))
    assert e.agent_state("a")[0] == "wrap_up"
    e.handle(WrapUpDone(55.0, "a"))
    assert e.agent_state("a")[0] == "available"
    # A caller arriving now is offered at once (not after the 60 s wrap-up)...
    assert offers(e.handle(CallArrived(56.0, "c2", "q"))) == [("c2", "a")]
    e.handle(OfferAnswered(57.0, "c2", "a"))
    # ...and the first wrap-up's timer (due at 110) does not end the agent's new call.
    e.handle(Tick(111.0))
    assert e.agent_state("a")[0] == "on_call"
    # Not in wrap-up: counted and skipped, nothing changes.
    before = e.stats.get("invalid_transition", 0)
    assert e.handle(WrapUpDone(112.0, "a")) == []
    assert e.stats["invalid_transition"] == before + 1
    e.check_invariants()
