"""reconcile() (pure): the CDR is the ground truth; small skews snap, big ones are mismatches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.callflow.meter import CallMeter, CdrTimes, MeterError, reconcile

from .test_meter import AGENT_LEG, ESC, EVENTS, T0, A, apply, worked_example


def cdrs(a_skew=(0, 0), esc_skew=(0, 0), agent=True):  # type: ignore[no-untyped-def]
    out = {
        A: CdrTimes(A, T0 + a_skew[0], T0 + 420_000 + a_skew[1], 420_000 + a_skew[1] - a_skew[0]),
        ESC: CdrTimes(
            ESC,
            T0 + 270_000 + esc_skew[0],
            T0 + 420_000 + esc_skew[1],
            150_000 + esc_skew[1] - esc_skew[0],
            "NORMAL_CLEARING",
        ),
    }
    if agent:
        out[AGENT_LEG] = CdrTimes(AGENT_LEG, T0 + 95_000, T0 + 310_000, 215_000)
    return out


def test_matching_cdrs_give_ok_and_the_segments_unchanged() -> None:
    segs = worked_example().segments()
    r = reconcile(segs, cdrs(), a_leg_uuid=A, unmetered_legs=[AGENT_LEG])
    assert (r.status, r.flags, r.snapped) == ("ok", (), 0)
    assert list(r.segments) == segs
    a_leg = [s for s in r.segments if s.leg_uuid == A]
    assert sum(s.duration_ms for s in a_leg) == cdrs()[A].billsec_ms


def test_small_skews_snap_to_the_cdr_edges_and_are_counted() -> None:
    r = reconcile(
        worked_example().segments(),
        cdrs(a_skew=(-400, 700), esc_skew=(1000, -3)),
        unmetered_legs=[AGENT_LEG],
    )
    assert r.status == "ok" and (r.snapped, r.snapped_ms) == (4, 400 + 700 + 1000 + 3)
    segs = {s.kind.value: s for s in r.segments}
    assert segs["ivr"].start_ms == T0 - 400 and segs["ivr"].end_ms == T0 + 25_400
    assert segs["handoff"].end_ms == T0 + 420_700
    assert (segs["escalation"].start_ms, segs["escalation"].end_ms) == (T0 + 271_000, T0 + 419_997)
    a_leg = [s for s in r.segments if s.leg_uuid == A]
    assert sum(s.duration_ms for s in a_leg) == 421_100 == r_cdr_billsec((-400, 700))
    assert any("snapped" in m for m in r.messages)


def r_cdr_billsec(skew: tuple[int, int]) -> int:
    return cdrs(a_skew=skew)[A].billsec_ms


def test_a_larger_difference_is_a_mismatch_with_a_message() -> None:
    r = reconcile(worked_example().segments(), cdrs(a_skew=(0, 1001)), unmetered_legs=[AGENT_LEG])
    assert r.status == "mismatch"
    assert any(f"leg {A}: segments run" in m and "end -1.001 s" in m for m in r.messages)
    assert list(r.segments) == worked_example().segments()  # untouched


def test_a_leg_without_a_cdr_waits() -> None:
    c = cdrs()
    del c[ESC]
    r = reconcile(worked_example().segments(), c, unmetered_legs=[AGENT_LEG])
    assert r.status == "waiting" and any(f"leg {ESC}: no CDR yet" in m for m in r.messages)


def test_a_cdr_without_segments_is_flagged_but_agent_legs_are_not() -> None:
    segs = [s for s in worked_example().segments() if s.leg_uuid != ESC]
    r = reconcile(segs, cdrs(), unmetered_legs=[AGENT_LEG])
    assert r.status == "ok" and r.flags == ((ESC, "cdr_without_segments"),)
    r2 = reconcile(segs, cdrs(), unmetered_legs=[])
    assert {f[0] for f in r2.flags} == {ESC, AGENT_LEG}


def test_an_open_leg_waits_and_is_not_flagged() -> None:
    segs = [s for s in worked_example().segments() if s.leg_uuid != ESC]
    r = reconcile(segs, cdrs(), unmetered_legs=[AGENT_LEG], open_legs=[ESC])
    assert r.status == "waiting" and r.flags == ()


def test_segments_on_a_leg_the_cdr_says_was_unanswered_are_a_mismatch() -> None:
    c = cdrs()
    c[ESC] = CdrTimes(ESC, None, T0 + 420_000, 0, "NO_ANSWER")
    r = reconcile(worked_example().segments(), c, unmetered_legs=[AGENT_LEG])
    assert r.status == "mismatch" and any("never answered" in m for m in r.messages)


def test_the_cdr_hangup_cause_is_carried_onto_the_final_segments() -> None:
    c = cdrs()
    c[A] = CdrTimes(A, T0, T0 + 420_000, 420_000, "USER_BUSY")
    r = reconcile(worked_example().segments(), c, unmetered_legs=[AGENT_LEG])
    assert {s.hangup_cause for s in r.segments if s.leg_uuid == A} == {"USER_BUSY"}


def test_an_answered_a_leg_with_no_time_is_not_flagged() -> None:
    c = {A: CdrTimes(A, T0, T0 + 200, 200)}
    assert reconcile([], c, a_leg_uuid=A) == reconcile([], {})
    assert reconcile([], {A: CdrTimes(A, T0, T0 + 5000, 5000)}, a_leg_uuid=A).flags


# -- finishing a call the switchboard lost, from its CDRs -----------------------------------
def lost_after_agent_left() -> CallMeter:
    m = CallMeter("alpha", "call-1", A, "direct", "fs-1")
    m.answered(T0)
    m.enter_queue(T0 + 25_400, "support")
    m.agent_bridged(T0 + 100_000, "agent-7", AGENT_LEG)
    m.escalation_answered(T0 + 270_000, ESC, "second-line")
    m.agent_left(T0 + 310_000)
    return m  # ... and then the switchboard died


def test_a_lost_call_is_closed_from_its_cdrs_exactly_as_if_seen() -> None:
    m = CallMeter.from_dict(lost_after_agent_left().to_dict())
    done = m.finish_from_cdrs(cdrs())
    assert len(done) == 2 and all("from its CDR" in d for d in done)

    def spans(meter: CallMeter) -> list[tuple[object, ...]]:
        return [(s.key, s.end_ms, s.agent, s.queue) for s in meter.segments()]

    assert m.is_complete and spans(m) == spans(worked_example())
    assert m.closed_from_cdr == done and m.rejected == 0
    assert CallMeter.from_dict(m.to_dict()).closed_from_cdr == done
    assert reconcile(m.segments(), cdrs(), unmetered_legs=[AGENT_LEG]).status == "ok"


def test_a_live_call_is_left_alone_and_a_contradicting_cdr_is_reported_not_applied() -> None:
    m = lost_after_agent_left()
    live = {ESC: cdrs()[ESC]}  # the second line hung up; the caller is still on
    assert m.finish_from_cdrs(live) == [] and not m.is_ended
    early = {A: CdrTimes(A, T0, T0 + 300_000, 300_000)}  # ends before the handoff began
    before = m.to_dict()
    (msg,) = m.finish_from_cdrs(early)
    assert "could not close it" in msg and "out of order" in msg
    assert m.to_dict() == before | {"closed_from_cdr": [msg]}


def test_a_call_whose_answer_was_never_seen_ends_empty_and_its_cdr_is_flagged() -> None:
    m = CallMeter("alpha", "call-1", A, "direct", "fs-1")
    m.finish_from_cdrs({A: CdrTimes(A, T0, T0 + 60_000, 60_000, "NORMAL_CLEARING")})
    assert m.is_ended and m.segments() == [] and m.outcome() == ("failed", "NORMAL_CLEARING")
    r = reconcile(m.segments(), {A: CdrTimes(A, T0, T0 + 60_000, 60_000)}, a_leg_uuid=A)
    assert r.flags == ((A, "cdr_without_segments"),)


# -- conservation, as a property --------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(EVENTS), st.integers(0, 60_000), st.integers(0, 11), st.just(False)
        ),
        max_size=30,
    ),
    skews=st.lists(st.integers(-1000, 1000), min_size=10, max_size=10),
)
def test_reconciled_segments_of_each_leg_add_up_to_its_cdr_billsec(steps, skews) -> None:  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", "c", A, "direct", "fs-1")
    m.answered(T0)
    now = T0
    for n, (name, delta, pick, _resume) in enumerate(steps):
        try:
            apply(m, name, now + delta, pick, n)
        except MeterError:
            continue
        now += delta
    if not m.is_ended:
        m.hangup(now + 1, "NORMAL_CLEARING")
    for leg in m.open_legs:
        m.escalation_ended(m.hangup_ms + 5, leg, "NORMAL_CLEARING")
    # Each metered leg's CDR, its edges off by up to the tolerance.
    legs = {leg["uuid"]: leg for leg in m.legs() if leg["role"] in ("a", "escalation")}
    cdr_map = {}
    for i, (leg, info) in enumerate(sorted(legs.items())):
        answer = info["answered_ms"] + skews[(2 * i) % 10]
        end = max(answer, info["ended_ms"] + skews[(2 * i + 1) % 10])
        cdr_map[leg] = CdrTimes(leg, answer, end, end - answer)
    r = reconcile(m.segments(), cdr_map, a_leg_uuid=A)
    by_leg: dict[str, list] = {}
    for s in r.segments:
        by_leg.setdefault(s.leg_uuid, []).append(s)
    if r.status == "mismatch":
        # Only when snapping would swallow a whole edge segment.
        assert any("would reverse" in msg for msg in r.messages)
        return
    assert r.status == "ok"
    for leg, segs in by_leg.items():
        assert sum(s.duration_ms for s in segs) == cdr_map[leg].billsec_ms
        assert segs[0].start_ms == cdr_map[leg].answer_ms
    short = [leg for leg, c in cdr_map.items() if c.billsec_ms > 1000 and leg not in by_leg]
    assert {f[0] for f in r.flags} == set(short)
