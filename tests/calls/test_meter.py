"""The call meter (pure): segments.md's worked example, the partition property, bad events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.rating import epoch_ms
from telephony.callflow.meter import A_LEG_KINDS, LEAVE_REASONS, CallMeter, MeterError

T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
A = "0a000000-0000-4000-8000-000000000001"
AGENT_LEG = "0a000000-0000-4000-8000-000000000002"
ESC = "0a000000-0000-4000-8000-000000000003"


def worked_example(call_id: str = "call-1", a_leg: str = A, esc: str = ESC) -> CallMeter:
    """segments.md's example, as the switchboard would feed it."""
    m = CallMeter("alpha", call_id, a_leg, "direct", "fs-1")
    m.answered(T0)  # 10:00:00.000
    m.enter_queue(T0 + 25_400, "support")  # 10:00:25.400
    agent_leg = AGENT_LEG if a_leg == A else str(uuid.uuid5(uuid.NAMESPACE_OID, a_leg))
    m.agent_bridged(T0 + 100_000, "agent-7", agent_leg)
    m.escalation_answered(T0 + 270_000, esc, "second-line")  # 10:04:30
    m.agent_left(T0 + 310_000)  # 10:05:10
    m.hangup(T0 + 420_000, "NORMAL_CLEARING")  # 10:07:00
    m.escalation_ended(T0 + 420_000, esc, "NORMAL_CLEARING")
    return m


def test_the_worked_example_of_segments_md() -> None:
    m = worked_example()
    got = [(s.leg_uuid, s.kind.value, s.start_ms - T0, s.duration_ms) for s in m.segments()]
    assert got == [
        (A, "ivr", 0, 25_400),
        (A, "queue", 25_400, 74_600),
        (A, "agent", 100_000, 210_000),
        (A, "handoff", 310_000, 110_000),
        (ESC, "escalation", 270_000, 150_000),
    ]
    a_leg = [s for s in m.segments() if s.leg_uuid == A]
    assert sum(s.duration_ms for s in a_leg) == 420_000  # the A leg's billsec
    segs = {s.kind.value: s for s in m.segments()}
    assert segs["agent"].agent == "agent-7" and segs["agent"].queue == "support"
    assert all(s.origin.value == "direct" and s.tenant_id == "alpha" for s in m.segments())
    spans = {s.kind: s for s in m.spans()}
    assert spans["handoff"].target == spans["escalation"].target == "second-line"
    assert spans["agent"].end_reason == "agent_left"
    assert m.is_complete and m.outcome() == ("escalated", "")
    assert {leg["uuid"]: leg["role"] for leg in m.legs()} == {
        A: "a",
        AGENT_LEG: "agent",
        ESC: "escalation",
    }


def test_an_unanswered_call_has_no_segments_and_fails_with_its_cause() -> None:
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    m.hangup(T0, "NO_ANSWER")
    assert m.segments() == [] and m.outcome() == ("failed", "NO_ANSWER")


def test_leaving_the_queue_returns_the_caller_to_ivr_time() -> None:
    m = CallMeter("alpha", "c", A, "overflow", "fs-1")
    m.answered(T0)
    m.enter_queue(T0 + 5_000, "sales")
    m.leave_queue(T0 + 65_000, "voicemail")
    m.hangup(T0 + 95_000, "NORMAL_CLEARING")
    assert [(s.kind.value, s.duration_ms) for s in m.segments()] == [
        ("ivr", 5_000),
        ("queue", 60_000),
        ("ivr", 30_000),
    ]
    assert m.spans()[1].end_reason == "voicemail"
    assert all(s.origin.value == "overflow" for s in m.segments())


def test_an_abandon_in_the_queue_is_counted_and_a_zero_length_span_is_dropped() -> None:
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    m.answered(T0)
    m.enter_queue(T0 + 5_000, "sales")
    m.leave_queue(T0 + 35_000, "abandon")
    m.hangup(T0 + 35_000, "ORIGINATOR_CANCEL")
    assert [s.kind.value for s in m.segments()] == ["ivr", "queue"]
    assert m.outcome() == ("abandoned", "ORIGINATOR_CANCEL")


def test_a_callback_call_starts_with_callback_dial_until_queue_entry() -> None:
    out = "0c000000-0000-4000-8000-000000000009"
    m = CallMeter("alpha", "cb-1", A, "direct", "fs-1")
    m.callback_dial(out)
    m.answered(T0)
    m.enter_queue(T0 + 8_000, "support")
    m.agent_bridged(T0 + 9_000, "agent-1", AGENT_LEG)
    m.hangup(T0 + 69_000, "NORMAL_CLEARING")
    assert [(s.leg_uuid, s.kind.value, s.duration_ms) for s in m.segments()] == [
        (out, "callback_dial", 8_000),
        (out, "queue", 1_000),
        (out, "agent", 60_000),
    ]
    assert all(s.origin.value == "callback" for s in m.segments())
    assert m.legs()[0] == {
        "uuid": out,
        "role": "callback",
        "answered_ms": T0,
        "ended_ms": T0 + 69_000,
        "agent": None,
        "target": None,
    }


def test_an_ivr_escalation_is_handoff_and_the_caller_returns_when_the_second_line_drops() -> None:
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    m.answered(T0)
    m.escalation_answered(T0 + 10_000, ESC, "+380441112233")
    m.escalation_ended(T0 + 40_000, ESC, "NORMAL_CLEARING")
    m.hangup(T0 + 45_000, "NORMAL_CLEARING")
    assert [(s.kind.value, s.start_ms - T0, s.duration_ms) for s in m.segments()] == [
        ("ivr", 0, 10_000),
        ("handoff", 10_000, 30_000),
        ("ivr", 40_000, 5_000),
        ("escalation", 10_000, 30_000),
    ]


def test_bad_events_raise_clear_errors_are_counted_and_change_nothing() -> None:
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    with pytest.raises(MeterError, match="before the call was answered"):
        m.enter_queue(T0, "q")
    m.answered(T0)
    m.enter_queue(T0 + 10_000, "q")
    before = m.to_dict()
    with pytest.raises(MeterError, match="out of order"):
        m.agent_bridged(T0 + 9_999, "a1", AGENT_LEG)
    assert m.to_dict() == before | {"rejected": 2}
    with pytest.raises(MeterError, match="must be int epoch ms"):
        m.hangup(float(T0 + 20_000), "X")  # type: ignore[arg-type]
    with pytest.raises(MeterError, match="must be int epoch ms"):
        m.hangup(True, "X")  # type: ignore[arg-type]
    with pytest.raises(MeterError, match="unknown queue exit 'bored'"):
        m.leave_queue(T0 + 11_000, "bored")
    with pytest.raises(MeterError, match="no second-line leg is up"):
        m.agent_bridged(T0 + 12_000, "a1", AGENT_LEG)
        m.agent_left(T0 + 13_000)
    with pytest.raises(MeterError, match="no such leg"):
        m.escalation_ended(T0 + 14_000, ESC, "X")
    m.hangup(T0 + 20_000, "NORMAL_CLEARING")
    with pytest.raises(MeterError, match="after hangup"):
        m.enter_queue(T0 + 21_000, "q")
    with pytest.raises(MeterError, match="hangup after hangup"):
        m.hangup(T0 + 21_000, "X")
    assert m.rejected == 9
    assert sum(s.duration_ms for s in m.segments()) == 20_000


def test_state_survives_json_and_resumes() -> None:
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    m.answered(T0)
    m.enter_queue(T0 + 25_400, "support")
    m.agent_bridged(T0 + 100_000, "agent-7", AGENT_LEG)
    m.escalation_answered(T0 + 270_000, ESC, "second-line")
    resumed = CallMeter.from_dict(json.loads(json.dumps(m.to_dict())))
    resumed.agent_left(T0 + 310_000)
    resumed.hangup(T0 + 420_000, "NORMAL_CLEARING")
    assert not resumed.is_complete and resumed.open_legs == [ESC]
    resumed.escalation_ended(T0 + 420_000, ESC, "NORMAL_CLEARING")
    assert resumed.segments() == worked_example("c").segments()
    bad = m.to_dict() | {"format": 99}
    with pytest.raises(MeterError, match="unknown meter state format"):
        CallMeter.from_dict(bad)


# -- the partition property ----------------------------------------------------------------
EVENTS = (
    "enter_queue",
    "leave_queue",
    "back_to_ivr",
    "agent_bridged",
    "agent_unbridged",
    "escalation_answered",
    "escalation_ended",
    "agent_left",
    "hangup",
)


def apply(m: CallMeter, name: str, at: int, pick: int, n: int) -> None:
    legs = [f"leg-esc-{i}" for i in range(4)]
    if name == "enter_queue":
        m.enter_queue(at, ("support", "sales")[pick % 2])
    elif name == "leave_queue":
        m.leave_queue(at, LEAVE_REASONS[pick % len(LEAVE_REASONS)])
    elif name == "back_to_ivr":
        m.back_to_ivr(at)
    elif name == "agent_bridged":
        m.agent_bridged(at, f"agent-{pick % 3}", f"leg-agent-{n}")
    elif name == "agent_unbridged":
        m.agent_unbridged(at, "transfer")
    elif name == "escalation_answered":
        m.escalation_answered(at, legs[pick % 4], "second-line")
    elif name == "escalation_ended":
        m.escalation_ended(at, legs[pick % 4], "NORMAL_CLEARING")
    elif name == "agent_left":
        m.agent_left(at)
    else:
        m.hangup(at, "NORMAL_CLEARING")


@settings(max_examples=400, deadline=None)
@given(
    callback=st.booleans(),
    steps=st.lists(
        st.tuples(
            st.sampled_from(EVENTS),
            st.integers(-2_000, 60_000),  # negative: an out-of-order event
            st.integers(0, 11),
            st.booleans(),  # persist and resume before this event
        ),
        max_size=40,
    ),
    tail=st.integers(0, 60_000),
)
def test_any_sequence_of_events_partitions_the_answered_time(callback, steps, tail) -> None:  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    if callback:
        m.callback_dial("leg-callback")
    m.answered(T0)
    now = T0
    for n, (name, delta, pick, resume) in enumerate(steps):
        if resume:
            m = CallMeter.from_dict(json.loads(json.dumps(m.to_dict())))
        try:
            apply(m, name, now + delta, pick, n)
        except MeterError:
            continue
        now = max(now, now + delta)
    if not m.is_ended:
        now += tail
        m.hangup(now, "NORMAL_CLEARING")
    for leg in m.open_legs:
        m.escalation_ended(now + tail, leg, "NORMAL_CLEARING")
    assert m.is_complete

    a_leg = [s for s in m.segments() if s.leg_uuid == m.a_leg_uuid]
    others = [s for s in m.segments() if s.leg_uuid != m.a_leg_uuid]
    assert m.answer_ms == T0 and m.hangup_ms is not None
    # Exact partition of [answer, hangup]: chained, no gap, no overlap, sums to the span.
    assert sum(s.duration_ms for s in a_leg) == m.hangup_ms - m.answer_ms
    edge = m.answer_ms
    for s in a_leg:
        assert s.start_ms == edge and s.duration_ms > 0 and s.kind.value in A_LEG_KINDS
        edge = s.end_ms
    assert edge == m.hangup_ms or not a_leg
    # callback_dial only opens a callback call's A leg.
    dials = [i for i, s in enumerate(a_leg) if s.kind.value == "callback_dial"]
    assert dials in ([], [0]) and (callback or not dials)
    # Escalation segments lie within their own leg's answered span, one per leg.
    spans = {leg["uuid"]: leg for leg in m.legs()}
    assert len({s.leg_uuid for s in others}) == len(others)
    for s in others:
        assert s.kind.value == "escalation"
        assert (s.start_ms, s.end_ms) == (
            spans[s.leg_uuid]["answered_ms"],
            spans[s.leg_uuid]["ended_ms"],
        )
        assert s.start_ms >= m.answer_ms
    # Keys are unique (the ledger's identity).
    keys = [s.key for s in m.segments()]
    assert len(keys) == len(set(keys))
