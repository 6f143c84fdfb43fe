"""The live wallboard's pure state (routing/live.py), fed by the real routing engine."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

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
    CancelOffer,
    EscalationRequested,
    EscalationRule,
    Event,
    Offer,
    OfferAnswered,
    OfferNoAnswer,
    OverflowRule,
    QueueConfig,
    QueueUpdated,
    TenantConfig,
    TenantUpdated,
    Tick,
)
from routing.engine.router import Engine
from routing.live import LiveBoard, service_level

KYIV = ZoneInfo("Europe/Kyiv")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=KYIV).timestamp()  # a weekday morning in Kyiv


class Switch:
    """What the switchboard does: every event to the engine, then event + decisions to the
    board; ticks when the engine's next timer is due first."""

    def __init__(self, board: LiveBoard | None = None) -> None:
        self.engine = Engine()
        self.board = board or LiveBoard("Europe/Kyiv")

    def feed(self, ev: Event | _AnswerWhenRinging) -> list[Any]:
        if isinstance(ev, _AnswerWhenRinging):
            ev = ev.resolve()
        timer = self.engine.next_timer_at()
        while timer is not None and timer < ev.at:
            self.board.apply(Tick(timer), self.engine.handle(Tick(timer)))
            timer = self.engine.next_timer_at()
        out = self.engine.handle(ev)
        self.board.apply(ev, out)
        return out

    def setup(self, *queues: QueueConfig, agents: tuple[AgentProfile, ...] = ()) -> None:
        for tid in sorted({q.tenant_id for q in queues}):
            self.feed(TenantUpdated(T0, TenantConfig(tid)))
        for q in queues:
            self.feed(QueueUpdated(T0, q))
        for a in agents:
            self.feed(AgentUpdated(T0, a))


def quiet(qid: str, tenant: str = "bank", **kw: Any) -> QueueConfig:
    """A queue without announcements, wrap-up or penalties (fewer timers to think about)."""
    kw.setdefault("wrap_up_s", 0.0)
    return QueueConfig(qid, tenant, announce_interval_s=0.0, no_answer_penalty_s=0.0, **kw)


def answer(sw: Switch, at: float, call: str) -> None:
    (agent,) = sw.engine.call_offers(call)
    sw.feed(OfferAnswered(at, call, agent))


# ---------------------------------------------------------------------------------------------
# Service level and longest wait
# ---------------------------------------------------------------------------------------------


def test_service_level_counts_answers_within_the_threshold_over_answered_and_abandoned() -> None:
    sw = Switch()
    sw.setup(quiet("main"), agents=(AgentProfile("a1", {"bank": {}}),))
    # Four callers queue while the only agent is logged out.
    for i, at in enumerate((0, 1, 2, 3)):
        sw.feed(CallArrived(T0 + at, f"c{i}", "main"))
    sw.feed(CallAbandoned(T0 + 4, "c3"))  # abandoned: counts against the service level
    sw.feed(AgentLogin(T0 + 5, "a1"))  # rings c0 at once
    answer(sw, T0 + 5, "c0")  # waited 5 s
    sw.feed(CallEnded(T0 + 10, "c0"))
    answer(sw, T0 + 21, "c1")  # waited 20 s: exactly the threshold counts as within
    sw.feed(CallEnded(T0 + 22, "c1"))
    answer(sw, T0 + 24, "c2")  # waited 22 s: late
    board = sw.board
    snap = _delta_and_snapshot(board, T0 + 25)
    q = snap["queues"]["main"]
    assert (q["offered"], q["answered"], q["abandoned"], q["answered_in_sl"]) == (4, 3, 1, 2)
    assert q["service_level"] == 0.5 == board.queue_service_level("main")
    assert q["waiting"] == 0 and q["oldest_since"] is None and q["longest_wait_s"] == 0.0
    assert snap["totals"]["service_level"] == 0.5
    assert snap["tenants"]["bank"]["service_level"] == 0.5


def test_service_level_threshold_per_queue() -> None:
    board = LiveBoard("UTC", sl_threshold_s=10.0, sl_thresholds={"vip": 30.0})
    sw = Switch(board)
    sw.setup(quiet("main"), quiet("vip"), agents=(AgentProfile("a1", {"bank": {}}),))
    sw.feed(CallArrived(T0, "m1", "main"))
    sw.feed(CallArrived(T0, "v1", "vip"))
    sw.feed(AgentLogin(T0 + 25, "a1"))  # the older by sequence (m1) rings first
    answer(sw, T0 + 25, "m1")
    sw.feed(CallEnded(T0 + 26, "m1"))
    answer(sw, T0 + 26, "v1")
    assert board.sl_threshold("main") == 10.0 and board.sl_threshold("vip") == 30.0
    assert board.queue_service_level("main") == 0.0
    assert board.queue_service_level("vip") == 1.0
    snap = _delta_and_snapshot(board, T0 + 27)
    assert snap["queues"]["vip"]["sl_threshold_s"] == 30.0
    assert snap["totals"]["service_level"] == 0.5
    board.set_sl_threshold("vip", None)
    assert board.sl_threshold("vip") == 10.0
    with pytest.raises(ValueError):
        board.set_sl_threshold("vip", float("nan"))


def test_service_level_is_none_before_any_answer_or_abandon() -> None:
    assert service_level(0, 0, 0) is None
    assert service_level(1, 2, 2) == 0.25
    assert service_level(2, 3, 0) == pytest.approx(0.6667)


def test_longest_wait_is_the_oldest_call_still_waiting_ringing_included() -> None:
    sw = Switch()
    sw.setup(quiet("main", offer_timeout_s=15.0), agents=(AgentProfile("a1", {"bank": {}}),))
    board = sw.board
    assert board.longest_wait("main", T0) == 0.0
    sw.feed(CallArrived(T0 + 10, "c1", "main"))
    sw.feed(CallArrived(T0 + 20, "c2", "main"))
    assert board.waiting("main") == 2
    assert board.longest_wait("main", T0 + 50) == 40.0
    sw.feed(AgentLogin(T0 + 60, "a1"))  # c1 rings: its caller still waits
    assert board.waiting("main") == 2 and board.longest_wait("main", T0 + 61) == 51.0
    sw.feed(OfferNoAnswer(T0 + 62, "c1", "a1"))  # back in its place, still the oldest
    assert board.longest_wait("main", T0 + 62) == 52.0
    answer(sw, T0 + 63, "c1")  # rings a1 again at once; answered now
    assert board.waiting("main") == 1
    assert board.longest_wait("main", T0 + 70) == 50.0  # c2, since T0 + 20
    snap = _delta_and_snapshot(board, T0 + 70)
    assert snap["queues"]["main"]["oldest_since"] == T0 + 20
    assert snap["queues"]["main"]["longest_wait_s"] == 50.0
    # A later snapshot ticks the wait on; a client does the same from oldest_since and now.
    assert board.snapshot(T0 + 75)["queues"]["main"]["longest_wait_s"] == 55.0
    assert board.delta(T0 + 75) is None  # the wait growing is not a change


def test_tenant_and_provider_longest_wait_is_the_oldest_of_their_queues() -> None:
    sw = Switch()
    sw.setup(quiet("b1"), quiet("b2"), quiet("s1", tenant="shop"))
    sw.feed(CallArrived(T0 + 5, "x", "b2"))
    sw.feed(CallArrived(T0 + 7, "y", "b1"))
    sw.feed(CallArrived(T0 + 1, "z", "s1"))  # out of order: applied at the clock, T0 + 7
    snap = _delta_and_snapshot(sw.board, T0 + 10)
    assert snap["tenants"]["bank"]["oldest_since"] == T0 + 5
    assert snap["tenants"]["bank"]["longest_wait_s"] == 5.0
    assert snap["tenants"]["shop"]["longest_wait_s"] == 3.0
    assert snap["totals"]["waiting"] == 3 and snap["totals"]["longest_wait_s"] == 5.0


# ---------------------------------------------------------------------------------------------
# Agents by state
# ---------------------------------------------------------------------------------------------


def test_agents_are_counted_by_state_per_queue_tenant_and_overall() -> None:
    sw = Switch()
    cards = quiet("cards", skills=(("cards", 3),))
    secure = quiet("secure", clearance=2)
    shop = quiet("shop-main", tenant="shop")
    sw.setup(
        cards,
        secure,
        shop,
        agents=(
            AgentProfile("a1", {"bank": {"cards": 3}, "shop": {}}, clearance=2),
            AgentProfile("a2", {"bank": {"cards": 1}}),  # not skilled for cards, no clearance
            AgentProfile("a3", {"shop": {}}),
        ),
    )
    sw.feed(AgentLogin(T0 + 1, "a1"))
    sw.feed(AgentLogin(T0 + 1, "a2"))
    sw.feed(AgentBreak(T0 + 2, "a2", "lunch"))
    sw.feed(AgentLogin(T0 + 3, "a3"))
    sw.feed(CallArrived(T0 + 4, "c1", "shop-main"))  # rings a1 (idle longest)
    snap = _delta_and_snapshot(sw.board, T0 + 5)
    assert snap["queues"]["cards"]["agents"] == {"offered": 1}
    assert snap["queues"]["secure"]["agents"] == {"offered": 1}
    assert snap["queues"]["shop-main"]["agents"] == {"available": 1, "offered": 1}
    assert snap["tenants"]["bank"]["agents"] == {"break": 1, "offered": 1}
    assert snap["tenants"]["shop"]["agents"] == {"available": 1, "offered": 1}
    assert snap["totals"]["agents"] == {"available": 1, "break": 1, "offered": 1}
    assert snap["agents"]["a2"] == {
        "id": "a2",
        "name": "a2",
        "state": "break",
        "reason": "lunch",
        "since": T0 + 2,
    }
    # Certified for cards now: a2 joins that queue live, with its state.
    sw.feed(AgentUpdated(T0 + 6, AgentProfile("a2", {"bank": {"cards": 3}})))
    sw.feed(AgentUnbreak(T0 + 7, "a2"))
    sw.feed(AgentLogout(T0 + 8, "a3"))
    snap = _delta_and_snapshot(sw.board, T0 + 9)
    assert snap["queues"]["cards"]["agents"] == {"available": 1, "offered": 1}
    assert snap["queues"]["shop-main"]["agents"] == {"logged_out": 1, "offered": 1}
    assert sw.board.agent_state("a2") == ("available", None, T0 + 7)
    # Losing the tenant takes the agent off its queues and its counts.
    sw.feed(AgentUpdated(T0 + 10, AgentProfile("a1", {"shop": {}}, clearance=2)))
    snap = _delta_and_snapshot(sw.board, T0 + 11)
    assert snap["queues"]["cards"]["agents"] == {"available": 1}
    assert snap["tenants"]["bank"]["agents"] == {"available": 1}


def test_agent_in_call_then_wrap_up() -> None:
    sw = Switch()
    sw.setup(quiet("main", wrap_up_s=10.0), agents=(AgentProfile("a1", {"bank": {}}),))
    sw.feed(AgentLogin(T0, "a1"))
    sw.feed(CallArrived(T0 + 1, "c1", "main"))
    answer(sw, T0 + 3, "c1")
    assert sw.board.agent_state("a1") == ("on_call", None, T0 + 3)
    sw.feed(CallEnded(T0 + 60, "c1"))
    assert sw.board.agent_state("a1")[0] == "wrap_up"
    sw.feed(Tick(T0 + 70))
    assert sw.board.agent_state("a1") == ("available", None, T0 + 70)
    snap = _delta_and_snapshot(sw.board, T0 + 71)
    q = snap["queues"]["main"]
    assert (q["offered"], q["answered"], q["answered_in_sl"], q["waiting"]) == (1, 1, 1, 0)


# ---------------------------------------------------------------------------------------------
# Overflow, escalation, abandonment: what the engine decided wins
# ---------------------------------------------------------------------------------------------


def test_overflow_to_another_queue_moves_the_call_and_its_wait_restarts() -> None:
    sw = Switch()
    main = quiet("main", overflow=(OverflowRule("max_wait", 30.0, "queue:backup"),))
    sw.setup(main, quiet("backup"))
    sw.feed(CallArrived(T0, "c1", "main"))
    sw.feed(Tick(T0 + 31))
    board = sw.board
    assert board.waiting("main") == 0 and board.waiting("backup") == 1
    assert board.longest_wait("backup", T0 + 40) == 10.0
    snap = _delta_and_snapshot(board, T0 + 40)
    assert snap["queues"]["main"]["overflowed"] == 1 and snap["queues"]["main"]["offered"] == 1
    assert snap["queues"]["backup"]["offered"] == 1
    # The provider's totals count the call once waiting.
    assert snap["totals"]["waiting"] == 1


def test_timer_overflow_before_an_abandon_in_the_same_handle_wins() -> None:
    sw = Switch()
    main = quiet("main", overflow=(OverflowRule("max_wait", 30.0, "voicemail"),))
    sw.setup(main)
    sw.feed(CallArrived(T0, "c1", "main"))
    # No tick in between: the engine fires the max-wait timer inside this handle, then
    # ignores the abandonment as late. The board must agree.
    out = sw.engine.handle(CallAbandoned(T0 + 40, "c1"))
    sw.board.apply(CallAbandoned(T0 + 40, "c1"), out)
    assert sw.engine.call_state("c1") == "overflowed"
    snap = _delta_and_snapshot(sw.board, T0 + 41)
    q = snap["queues"]["main"]
    assert (q["overflowed"], q["abandoned"], q["waiting"]) == (1, 0, 0)
    assert q["service_level"] is None


def test_escalations_on_arrival_and_after_an_answer() -> None:
    sw = Switch()
    sw.feed(
        TenantUpdated(
            T0,
            TenantConfig(
                "bank",
                second_line="client:desk",
                escalation=(EscalationRule("client:vip", "vip", vip=True, on_arrival=True),),
            ),
        )
    )
    sw.feed(QueueUpdated(T0, quiet("main")))
    sw.feed(AgentUpdated(T0, AgentProfile("a1", {"bank": {}})))
    sw.feed(AgentLogin(T0, "a1"))
    sw.feed(CallArrived(T0 + 1, "vip1", "main", vip=True))
    sw.feed(CallArrived(T0 + 2, "c1", "main"))
    answer(sw, T0 + 4, "c1")
    sw.feed(EscalationRequested(T0 + 30, "c1"))
    snap = _delta_and_snapshot(sw.board, T0 + 31)
    q = snap["queues"]["main"]
    assert (q["offered"], q["answered"], q["escalated"], q["waiting"]) == (2, 1, 2, 0)
    assert q["service_level"] == 1.0
    assert sw.board.agent_state("a1")[0] == "available"


def test_ring_all_answer_counts_once_and_abandon_while_ringing_counts_as_abandoned() -> None:
    sw = Switch()
    sw.setup(
        quiet("all", strategy="ring_all"),
        agents=(AgentProfile("a1", {"bank": {}}), AgentProfile("a2", {"bank": {}})),
    )
    sw.feed(AgentLogin(T0, "a1"))
    sw.feed(AgentLogin(T0, "a2"))
    out = sw.feed(CallArrived(T0 + 1, "c1", "all"))
    assert sum(isinstance(d, Offer) for d in out) == 2
    out = sw.feed(OfferAnswered(T0 + 2, "c1", "a2"))
    assert any(isinstance(d, CancelOffer) for d in out)
    sw.feed(CallArrived(T0 + 3, "c2", "all"))  # rings a1
    sw.feed(CallAbandoned(T0 + 5, "c2"))
    snap = _delta_and_snapshot(sw.board, T0 + 6)
    q = snap["queues"]["all"]
    assert (q["offered"], q["answered"], q["abandoned"], q["waiting"]) == (2, 1, 1, 0)
    assert q["agents"] == {"available": 1, "on_call": 1}


# ---------------------------------------------------------------------------------------------
# The provider's day
# ---------------------------------------------------------------------------------------------


def test_today_is_the_providers_day_in_its_time_zone() -> None:
    sw = Switch(LiveBoard("Europe/Kyiv"))
    sw.setup(quiet("main"))
    late = datetime(2026, 11, 25, 23, 59, 50, tzinfo=KYIV).timestamp()
    sw.feed(CallArrived(late, "c1", "main"))
    sw.feed(CallAbandoned(late + 5, "c1"))
    snap = _delta_and_snapshot(sw.board, late + 6)
    assert snap["day"] == "2026-11-25"
    assert snap["queues"]["main"]["abandoned"] == 1
    # 22:00 UTC is already tomorrow in Kyiv (UTC+2): the counters start again at 0, while
    # a call still waiting keeps waiting.
    sw.feed(CallArrived(late + 8, "c2", "main"))
    midnight = datetime(2026, 11, 26, 0, 0, tzinfo=KYIV).timestamp()
    seq = sw.board.seq()
    delta = sw.board.delta(midnight + 1)
    assert delta is not None and delta["provider"]["seq"] == seq + 1
    assert delta["provider"]["day"] == "2026-11-26"
    q = delta["provider"]["queues"]["main"]
    assert (q["offered"], q["abandoned"], q["waiting"]) == (0, 0, 1)
    sw.feed(CallArrived(midnight + 2, "c3", "main"))
    assert sw.board.snapshot(midnight + 2)["queues"]["main"]["offered"] == 0  # not yet sent
    assert _delta_and_snapshot(sw.board, midnight + 3)["queues"]["main"]["offered"] == 1


def test_the_day_rolls_at_local_midnight_across_a_dst_change() -> None:
    board = LiveBoard("Europe/Kyiv")
    board.apply_event(QueueUpdated(0.0, quiet("main")))
    before = datetime(2026, 10, 24, 23, 0, tzinfo=KYIV).timestamp()  # the night clocks go back
    board.apply(CallArrived(before, "c1", "main"), [])
    board.apply(CallAbandoned(before + 1, "c1"), [])
    assert board.snapshot(before)["day"] == "2026-10-24"
    assert board.delta(before + 2)["provider"]["queues"]["main"]["abandoned"] == 1  # type: ignore[index]
    next_midnight = datetime(2026, 10, 25, 0, 0, tzinfo=KYIV).timestamp()
    assert board.delta(next_midnight - 1) is None
    delta = board.delta(next_midnight)
    assert delta is not None and delta["provider"]["day"] == "2026-10-25"
    # 25 hours later (the day has 25 hours) is the next midnight.
    board.delta(next_midnight + 24 * 3600)
    assert board.day == "2026-10-25"
    board.delta(next_midnight + 25 * 3600)
    assert board.day == "2026-10-26"


# ---------------------------------------------------------------------------------------------
# Streams, sequence numbers, snapshots
# ---------------------------------------------------------------------------------------------


def test_each_stream_counts_its_own_deltas_one_by_one() -> None:
    sw = Switch(LiveBoard("UTC", epoch="run-7"))
    sw.setup(quiet("b1"), quiet("s1", tenant="shop"))
    board = sw.board
    assert board.streams() == ["provider", "tenant:bank", "tenant:shop"]
    first = board.delta(T0)
    assert first is not None
    assert {k: v["seq"] for k, v in first.items()} == {
        "provider": 1,
        "tenant:bank": 1,
        "tenant:shop": 1,
    }
    assert board.delta(T0 + 1) is None  # nothing changed: no message, no seq used
    sw.feed(CallArrived(T0 + 2, "c1", "b1"))
    second = board.delta(T0 + 3)
    assert second is not None and set(second) == {"provider", "tenant:bank"}
    assert second["provider"]["seq"] == 2 and second["tenant:bank"]["seq"] == 2
    assert set(second["provider"]["queues"]) == {"b1"}
    assert set(second["tenant:bank"]["queues"]) == {"b1"}
    assert "agents" not in second["tenant:bank"]  # agents are the provider's business
    assert second["tenant:bank"]["totals"]["waiting"] == 1
    sw.feed(CallArrived(T0 + 4, "c2", "s1"))
    third = board.delta(T0 + 5)
    assert third is not None and set(third) == {"provider", "tenant:shop"}
    assert third["provider"]["seq"] == 3 and third["tenant:shop"]["seq"] == 2
    assert all(m["epoch"] == "run-7" and m["kind"] == "delta" for m in third.values())
    snap = board.snapshot(T0 + 5, "tenant:shop")
    assert snap["seq"] == 2 and set(snap["queues"]) == {"s1"} and snap["totals"]["waiting"] == 1
    assert board.snapshot(T0, "tenant:nobody") == {
        **board.heartbeat(T0, "tenant:nobody"),
        "kind": "snapshot",
        "queues": {},
        "totals": None,
    }
    beat = board.heartbeat(T0 + 6)
    assert beat["kind"] == "heartbeat" and beat["seq"] == 3 and board.seq() == 3


def test_a_client_applying_snapshot_then_deltas_stays_in_step() -> None:
    """The wallboard's algorithm: load a snapshot, apply deltas whose seq is last + 1, replace
    records whole. At any point its view equals a fresh snapshot (waits aside)."""
    sw = Switch()
    world = _random_world(sw, seed=3)
    board = sw.board
    board.delta(T0)
    client = _strip(board.snapshot(T0))
    late_joiner: dict[str, Any] | None = None
    for step, ev in enumerate(world):
        sw.feed(ev)
        if step % 7 == 0:
            delta = board.delta(ev.at)
            if delta is None:
                continue
            msg = delta["provider"]
            assert msg["seq"] == client["seq"] + 1
            _apply(client, msg)
            if late_joiner is not None:
                _apply(late_joiner, msg)
            assert client == _strip(board.snapshot(ev.at))
            if late_joiner is None and step >= 350:
                late_joiner = _strip(board.snapshot(ev.at))
    assert late_joiner == client
    json.dumps(board.snapshots(world[-1].at), allow_nan=False)


def test_a_change_undone_before_the_next_delta_is_not_lost_by_a_snapshot() -> None:
    """Snapshots are the state as of the last delta: a client that loaded one between two
    deltas must not keep a value the next delta does not mention."""
    sw = Switch()
    sw.setup(quiet("main"))
    board = sw.board
    board.delta(T0)
    sw.feed(CallArrived(T0 + 1, "c1", "main"))
    assert board.snapshot(T0 + 1)["queues"]["main"]["waiting"] == 0  # not sent yet
    sw.feed(CallAbandoned(T0 + 2, "c1"))
    delta = board.delta(T0 + 3)
    assert delta is not None and delta["provider"]["queues"]["main"]["abandoned"] == 1


def test_same_events_same_messages() -> None:
    def run() -> str:
        sw = Switch()
        msgs = []
        for i, ev in enumerate(_random_world(sw, seed=11)):
            sw.feed(ev)
            if i % 5 == 0:
                msgs.append(sw.board.delta(ev.at))
        msgs.append(sw.board.snapshots(T0 + 10_000))
        return json.dumps(msgs, allow_nan=False)

    assert run() == run()


def test_names_are_shown_and_changing_one_is_a_change() -> None:
    sw = Switch()
    sw.setup(quiet("main"), agents=(AgentProfile("a1", {"bank": {}}),))
    sw.board.delta(T0)
    sw.board.set_names(
        tenants={"bank": "Nordbank"}, queues={"main": "Cards"}, agents={"a1": "Olha"}
    )
    delta = sw.board.delta(T0 + 1)
    assert delta is not None
    assert delta["provider"]["queues"]["main"]["name"] == "Cards"
    assert delta["provider"]["tenants"]["bank"]["name"] == "Nordbank"
    assert delta["provider"]["agents"]["a1"]["name"] == "Olha"


def test_bad_times_raise() -> None:
    board = LiveBoard()
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            board.delta(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Against the engine on a random overloaded world
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_the_board_agrees_with_the_engine(seed: int) -> None:
    sw = Switch()
    world = _random_world(sw, seed=seed)
    engine, board = sw.engine, sw.board
    for step, ev in enumerate(world):
        sw.feed(ev)
        if step % 25 == 0 or step == len(world) - 1:
            for qid in engine.queues:
                held = sum(
                    1
                    for cid in engine.active_calls()
                    if engine._calls[cid].queue_id == qid  # noqa: SLF001
                    and engine.call_state(cid) in ("waiting", "offered")
                )
                assert board.waiting(qid) == held, (step, qid)
            for aid in engine._agents:  # noqa: SLF001
                assert board.agent_state(aid)[:2] == engine.agent_state(aid), (step, aid)
    snap = _delta_and_snapshot(board, world[-1].at)
    totals = snap["totals"]
    assert totals["abandoned"] == engine.outcomes["abandoned"] > 0
    assert totals["escalated"] == engine.outcomes["escalated"] > 0
    assert totals["answered"] > 0 and totals["overflowed"] >= engine.outcomes["overflowed"]
    connected = sum(1 for c in engine.active_calls() if engine.call_state(c) == "connected")
    escalated_after_answer = totals["answered"] - engine.outcomes["answered"] - connected
    assert 0 <= escalated_after_answer <= totals["escalated"]
    assert totals["offered"] == sum(q["offered"] for q in snap["queues"].values())


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _delta_and_snapshot(board: LiveBoard, now: float) -> dict[str, Any]:
    board.delta(now)
    return board.snapshot(now)


def _strip(msg: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in msg.items() if k not in ("now", "kind")}
    for key in ("queues", "tenants"):
        out[key] = {k: {**r, "longest_wait_s": None} for k, r in out[key].items()}
    out["totals"] = {**out["totals"], "longest_wait_s": None}
    return out


def _apply(client: dict[str, Any], msg: dict[str, Any]) -> None:
    stripped = _strip({**msg, "totals": msg.get("totals", client["totals"])})
    for key in ("queues", "tenants", "agents"):
        client[key].update(stripped[key])
    client["totals"] = stripped["totals"]
    client["seq"] = msg["seq"]
    client["day"] = msg["day"]


def _random_world(sw: Switch, seed: int, calls: int = 400) -> list[Any]:
    """An overloaded two-tenant world; events in time order (the engine's own reactions to
    offers, answers and hang-ups are planned ahead, stale ones it skips)."""
    rng = random.Random(seed)
    sw.feed(
        TenantUpdated(
            T0,
            TenantConfig(
                "bank",
                second_line="client:desk",
                escalation=(EscalationRule("client:vip", "vip", vip=True, on_arrival=True),),
            ),
        )
    )
    sw.feed(TenantUpdated(T0, TenantConfig("shop", second_line="client:shop")))
    queues = [
        QueueConfig(
            "bank-main",
            "bank",
            skills=(("cards", 2),),
            overflow=(OverflowRule("max_wait", 60.0, "queue:bank-backup"),),
        ),
        QueueConfig("bank-backup", "bank", strategy="ring_all", wrap_up_s=5.0),
        QueueConfig(
            "shop-main",
            "shop",
            overflow=(OverflowRule("max_wait", 90.0, "voicemail"),),
            clearance=1,
        ),
    ]
    for q in queues:
        sw.feed(QueueUpdated(T0, q))
    agents = [f"a{i}" for i in range(8)]
    for i, aid in enumerate(agents):
        certs: dict[str, dict[str, int]] = {"bank": {"cards": 1 + i % 3}}
        if i % 2:
            certs["shop"] = {}
        sw.feed(AgentUpdated(T0, AgentProfile(aid, certs, clearance=i % 2)))
        sw.feed(AgentLogin(T0, aid))
    events: list[tuple[float, int, Event]] = []
    t = T0
    for n in range(calls):
        t += rng.expovariate(1 / 8.0)
        cid = f"c{n}"
        q = rng.choice(["bank-main", "bank-main", "bank-backup", "shop-main"])
        events.append((t, len(events), CallArrived(t, cid, q, vip=rng.random() < 0.03)))
        ring = rng.uniform(1, 40)
        agent = rng.choice(agents)
        for attempt in range(0, 130, 10):  # picked up if ringing by then (offers ring 20 s)
            at = t + ring + attempt
            events.append((at, len(events), OfferAnswered(at, cid, agent)))
        talk = t + ring + 130.0 + rng.expovariate(1 / 60.0)
        end = EscalationRequested if rng.random() < 0.1 else CallEnded
        events.append((talk, len(events), end(talk, cid)))
        if rng.random() < 0.4:
            gone = t + rng.uniform(5, 120)
            events.append((gone, len(events), CallAbandoned(gone, cid)))
        if n % 15 == 0:  # agents sent on a break for missed offers come back
            events.extend((t, len(events), AgentUnbreak(t, a)) for a in agents)
        if rng.random() < 0.05:
            a = rng.choice(agents)
            events.append((t, len(events), AgentBreak(t, a, "coffee")))
            events.append((t + 50, len(events), AgentUnbreak(t + 50, a)))
        if rng.random() < 0.02:
            a = rng.choice(agents)
            events.append((t, len(events), AgentLogout(t, a)))
            events.append((t + 80, len(events), AgentLogin(t + 80, a)))
    events.sort(key=lambda e: (e[0], e[1]))
    world = [e[2] for e in events]
    # The answer events above name a random agent; turn each into an answer by an agent the
    # engine actually rang, decided when it comes due (like a real phone).
    return [_AnswerWhenRinging(ev, sw) if isinstance(ev, OfferAnswered) else ev for ev in world]


class _AnswerWhenRinging:
    """Stands for an OfferAnswered whose agent is picked at feed time (a ringing one)."""

    def __init__(self, ev: OfferAnswered, sw: Switch) -> None:
        self.ev, self.sw, self.at = ev, sw, ev.at

    def resolve(self) -> Event:
        offers = self.sw.engine.call_offers(self.ev.call_id)
        if offers:
            return OfferAnswered(self.at, self.ev.call_id, offers[0])
        return Tick(self.at)


def test_a_board_from_an_engine_snapshot_agrees_with_one_that_never_stopped() -> None:
    """The switchboard restarting (or a standby taking over) restores the engine from a
    snapshot; a board seeded from the same snapshot shows the same live picture."""
    sw = Switch()
    world = _random_world(sw, seed=5)
    half = len(world) // 2
    for ev in world[:half]:
        sw.feed(ev)
    while not any(sw.engine.call_state(c) == "connected" for c in sw.engine.active_calls()):
        sw.feed(world[half])  # cut while someone talks
        half += 1
    snap = json.loads(json.dumps(sw.engine.snapshot()))
    seeded = LiveBoard.from_engine_snapshot(snap, "Europe/Kyiv", epoch="2")
    assert seeded.now == sw.engine.now
    held = {c["state"] for c in snap["calls"]}
    assert {"waiting", "connected"} <= held  # the cut is in the thick of it
    assert sum(seeded.waiting(q["queue_id"]) for q in snap["queues"]) > 0
    restored = Engine.restore(snap)
    twin = Switch(seeded)
    twin.engine = restored
    for ev in world[half:]:
        sw.feed(ev)
        twin.feed(ev)
    end = world[-1].at
    a, b = _delta_and_snapshot(sw.board, end), _delta_and_snapshot(seeded, end)
    assert b["epoch"] == "2"
    for qid, rec in a["queues"].items():
        other = b["queues"][qid]
        for key in ("waiting", "oldest_since", "longest_wait_s", "agents", "tenant"):
            assert other[key] == rec[key], (qid, key)
    assert a["agents"] == b["agents"]
    assert a["totals"]["agents"] == b["totals"]["agents"]
    assert {t: r["agents"] for t, r in a["tenants"].items()} == {
        t: r["agents"] for t, r in b["tenants"].items()
    }
