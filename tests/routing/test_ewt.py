"""Estimated-wait-time estimators, the replay driver and the queue simulator (pure, no Django)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from routing.engine.calllog import CallRecord
from routing.engine.estimator_state import dump_estimator, load_estimator
from routing.engine.ewt import (
    ESTIMATORS,
    Estimate,
    Estimator,
    make_estimator,
    replay,
)
from routing.engine.queue_sim import SimConfig, SimResult, simulate
from routing.erlang import erlang_a, erlang_c_metrics

PRIOR_SERVICE_S = 180.0  # estimators' prior mean service time before any call completes
PRIOR_THETA = 1 / 600.0  # and their prior abandonment rate


def two_agents_busy(name: str) -> Estimator:
    """A queue whose two agents (A, B) both started a call at t = 0."""
    est = make_estimator(name)
    for call in ("A", "B"):
        est.on_enter(call, 0.0, 0)
        est.estimate(call, 0.0)
        est.on_service_start(call, 0.0)
    return est


# ---------------------------------------------------------------------------------------------
# Estimators on tiny hand-made logs
# ---------------------------------------------------------------------------------------------


def test_registry_lists_the_literature_and_ours() -> None:
    assert set(ESTIMATORS) == {
        "ql",
        "ql-m",
        "ql-mp",
        "hol",
        "les",
        "avg-les",
        "blend",
        "adaptive",
    }
    for name, cls in ESTIMATORS.items():
        assert cls.name == name and cls.description
        assert isinstance(make_estimator(name), Estimator)
    with pytest.raises(ValueError, match="unknown estimator"):
        make_estimator("oracle")


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_idle_agent_means_no_wait(name: str) -> None:
    est = make_estimator(name)
    assert est.estimate(0, 0.0) == Estimate(0.0, 0.0, 0.0)  # nothing known: assume someone free
    est.on_enter("A", 5.0, 0)
    assert est.estimate("A", 5.0).seconds == 0.0


def test_queue_length_estimators_by_hand() -> None:
    ql, qlm = two_agents_busy("ql"), two_agents_busy("ql-m")
    for est in (ql, qlm):
        est.on_enter("C", 10.0, 0)
    # Both agents busy, nobody ahead: one service slot, 1 / (s mu) = 180 / 2.
    assert ql.estimate("C", 10.0).seconds == pytest.approx(PRIOR_SERVICE_S / 2)
    assert qlm.estimate("C", 10.0).seconds == pytest.approx(PRIOR_SERVICE_S / 2)
    for est in (ql, qlm):
        est.on_enter("D", 20.0, 0)
    assert ql.estimate("D", 20.0).seconds == pytest.approx(PRIOR_SERVICE_S)  # (k + 1)/(s mu)
    # QL-m: the caller ahead may hang up, so the second slot comes at rate s mu + theta.
    s_mu = 2 / PRIOR_SERVICE_S
    assert qlm.estimate("D", 20.0).seconds == pytest.approx(
        1 / s_mu + 1 / (s_mu + PRIOR_THETA), rel=1e-9
    )
    # A position works like a queued caller's id.
    assert ql.estimate(1, 20.0).seconds == pytest.approx(PRIOR_SERVICE_S)
    assert ql.estimate(5, 20.0).seconds == pytest.approx(3 * PRIOR_SERVICE_S)
    with pytest.raises(ValueError):
        ql.estimate(-1, 20.0)


def test_delay_history_estimators_by_hand() -> None:
    hol, les, avg = (two_agents_busy(n) for n in ("hol", "les", "avg-les"))
    for est in (hol, les, avg):
        est.on_enter("C", 10.0, 0)
        est.on_enter("D", 20.0, 0)
    assert hol.estimate("D", 20.0).seconds == pytest.approx(10.0)  # C has waited 10 s
    # No one has been answered after waiting yet: LES has only zero-wait history.
    assert les.estimate("D", 20.0).seconds == pytest.approx(0.0)
    for est in (hol, les, avg):
        est.on_service_end("A", 100.0)
        est.on_service_start("C", 100.0)  # C waited 90 s
        est.on_enter("E", 110.0, 0)
    assert hol.estimate("E", 110.0).seconds == pytest.approx(90.0)  # D, 20 -> 110
    assert les.estimate("E", 110.0).seconds == pytest.approx(90.0)
    # The last 10 answered: A, B (0 s) and C (90 s).
    assert avg.estimate("E", 110.0).seconds == pytest.approx(30.0)


def test_priority_callers_jump_the_queue() -> None:
    qlm, qlmp = two_agents_busy("ql-m"), two_agents_busy("ql-mp")
    for est in (qlm, qlmp):
        est.on_enter("C", 10.0, 0)
        est.on_enter("P", 30.0, 1)  # 90 s head start: queues as if it came at -60
        assert est.observer.position("P") == 0
        assert est.observer.position("C") == 1
        est.on_enter("Q", 200.0, 1)  # 110 s after C: C keeps its place ahead of Q
        assert est.observer.position("Q") == 2
        est.on_enter("R", 205.0, 0)
    # Priority callers keep arriving, so a regular caller expects to be overtaken.
    assert qlmp.estimate("R", 205.0).seconds > qlm.estimate("R", 205.0).seconds
    # Nobody outranks a priority caller: ql-mp is ql-m for it.
    assert qlmp.estimate("Q", 205.0).seconds == pytest.approx(qlm.estimate("Q", 205.0).seconds)


def test_abandonment_updates_patience_estimate_and_queue() -> None:
    est = two_agents_busy("ql-m")
    theta0 = est.observer.abandon_rate
    est.on_enter("C", 10.0, 0)
    est.on_enter("D", 20.0, 0)
    est.on_abandon("C", 40.0)
    assert est.observer.position("D") == 0
    assert est.observer.abandon_rate > theta0
    # Unknown ids in later events are ignored (a replay may start mid-stream).
    est.on_abandon("ghost", 41.0)
    est.on_service_start("ghost", 41.0)
    est.on_service_end("ghost", 42.0)


def test_intervals_bracket_the_estimate_and_calibrate() -> None:
    est = make_estimator("ql")
    e = est.estimate(3, 0.0)
    assert e.low <= e.seconds <= e.high
    # One agent; every caller waits exactly twice what QL predicts: after the warm-up the
    # interval's top follows the observed ratio.
    est.on_enter("busy", 0.0, 0)
    est.estimate("busy", 0.0)
    est.on_service_start("busy", 0.0)
    t = 1.0
    for i in range(80):
        call = f"c{i}"
        est.on_enter(call, t, 0)
        predicted = est.estimate(call, t).seconds
        t += 2 * predicted
        est.on_service_end("busy" if i == 0 else f"c{i - 1}", t)
        est.on_service_start(call, t)
    est.on_enter("last", t, 0)
    e = est.estimate("last", t)
    assert e.high == pytest.approx(2 * e.seconds, rel=1e-9)
    assert e.low == pytest.approx(e.seconds)


def test_blend_learns_a_biased_queue() -> None:
    # One agent, callers wait 1.6x what the queue model says: the regression should move
    # towards the truth while ql-mp cannot.
    blend, base = make_estimator("blend"), make_estimator("ql-mp")
    errors = {"blend": [], "ql-mp": []}
    t = 0.0
    for est in (blend, base):
        est.on_enter("busy", 0.0, 0)
        est.estimate("busy", 0.0)
        est.on_service_start("busy", 0.0)
    for i in range(600):
        call = f"c{i}"
        truths = []
        for est in (blend, base):
            est.on_enter(call, t + 1, 0)
            truths.append(est.estimate(call, t + 1).seconds)
        truth = 1.6 * base.estimate(call, t + 1).seconds
        for name, predicted in zip(("blend", "ql-mp"), truths, strict=True):
            errors[name].append(abs(predicted - truth) / truth)
        t += 1 + truth
        for est in (blend, base):
            est.on_service_end("busy" if i == 0 else f"c{i - 1}", t)
            est.on_service_start(call, t)
    late = slice(400, 600)
    blend_err = sum(errors["blend"][late]) / 200
    base_err = sum(errors["ql-mp"][late]) / 200
    assert base_err == pytest.approx(0.375, abs=0.01)  # 1 - 1/1.6
    assert blend_err < 0.1


# ---------------------------------------------------------------------------------------------
# Replay driver
# ---------------------------------------------------------------------------------------------


def rec(
    call_id: str,
    entered: float,
    exited: float,
    outcome: str = "answered",
    ended: float | None = None,
    priority: int = 0,
    queue: str = "q",
) -> CallRecord:
    answered = outcome == "answered"
    return CallRecord(
        call_id=call_id,
        queue=queue,
        priority=priority,
        arrived_at=entered,
        queue_entered_at=entered,
        queue_exited_at=exited,
        outcome=outcome,
        service_started_at=exited if answered else None,
        service_ended_at=(ended if ended is not None else exited + 100) if answered else None,
        agent="a1" if answered else None,
    )


def test_replay_predicts_at_entry_in_time_order() -> None:
    records = [
        rec("D", 20.0, 100.0, ended=300.0),
        rec("A", 0.0, 0.0, ended=100.0),  # answered at once, same instant as its entry
        rec("B", 0.0, 0.0, ended=200.0),
        rec("C", 10.0, 15.0, outcome="abandoned"),
        rec("X", 0.0, 0.0, ended=0.0, queue="other"),  # zero-length service, another queue
        rec("Y", 1.0, 1.0, queue="other"),
    ]
    out = list(replay(records, lambda: make_estimator("ql")))
    assert [p.record.call_id for p in out] == ["A", "B", "X", "Y", "C", "D"]
    by_id = {p.record.call_id: p.estimate.seconds for p in out}
    assert by_id["A"] == 0.0
    # A is answered before B looks; nothing says a second agent exists, so B is quoted one
    # service time (it was in fact answered at once: the cold start of any replay).
    assert by_id["B"] == pytest.approx(PRIOR_SERVICE_S)
    assert by_id["C"] == pytest.approx(PRIOR_SERVICE_S / 2)  # two busy, nobody ahead
    assert by_id["D"] == pytest.approx(PRIOR_SERVICE_S / 2)  # C hung up at 15, before D came
    assert by_id["X"] == 0.0 and by_id["Y"] == 0.0  # the other queue's agent is free again


def test_replay_handles_a_start_mid_stream() -> None:
    # Exits of calls the estimator never saw enter must not break it.
    est = make_estimator("blend")
    est.on_service_start("unknown", 5.0)
    est.on_abandon("unknown2", 6.0)
    est.on_service_end("unknown", 7.0)
    assert est.estimate(2, 8.0).seconds >= 0


# ---------------------------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------------------------


def stationary(agents: int, patience: float, days: int, seed: int = 3) -> SimConfig:
    # 100 calls per half hour with exponential 180 s service: 10 Erlangs, Erlang's assumptions.
    return SimConfig(
        calls_per_bin=(100.0,),
        agents_per_bin=agents,
        bin_s=1800.0,
        days=days,
        service="exponential",
        service_mean_s=180.0,
        patience_mean_s=patience,
        greeting_s=(0.0, 0.0),
        seed=seed,
    )


def test_simulator_is_deterministic_per_seed() -> None:
    config = SimConfig(calls_per_bin=(30.0, 60.0), agents_per_bin=(3, 5), days=2, seed=42)
    a, b = simulate(config), simulate(config)
    assert a.records == b.records and a.potential_wait_s == b.potential_wait_s
    other = simulate(SimConfig(calls_per_bin=(30.0, 60.0), agents_per_bin=(3, 5), days=2, seed=43))
    assert other.records != a.records


def test_simulator_truth_is_consistent() -> None:
    res = simulate(
        SimConfig(calls_per_bin=(120.0,) * 4, agents_per_bin=9, days=3, priority_share=0.3, seed=9)
    )
    assert len(res.records) > 1000
    for r in res.records:
        assert r.arrived_at <= r.queue_entered_at <= r.queue_exited_at
        potential = res.potential_wait_s[r.call_id]
        if r.answered:
            assert potential == pytest.approx(r.wait_s, abs=2e-3)
            assert r.service_started_at <= r.service_ended_at
        else:
            assert potential >= r.wait_s - 2e-3  # would have waited at least as long
        if not res.delayed[r.call_id]:
            assert r.wait_s == pytest.approx(0.0, abs=2e-3)
    # The head start works: priority callers wait less.
    waits = {0: [], 1: []}
    for r in res.records:
        if r.answered:
            waits[r.priority].append(r.wait_s)
    assert sum(waits[1]) / len(waits[1]) < sum(waits[0]) / len(waits[0])


def test_simulator_reproduces_erlang_a() -> None:
    res = simulate(stationary(agents=11, patience=350.0, days=300))
    n = len(res.records)
    p_wait = sum(res.delayed.values()) / n
    p_abandon = sum(not r.answered for r in res.records) / n
    model = erlang_a(100, 180, 350, 11)
    assert p_wait == pytest.approx(model.p_wait, abs=0.03)
    assert p_abandon == pytest.approx(model.p_abandon, abs=0.015)


def test_simulator_reproduces_erlang_c() -> None:
    res = simulate(stationary(agents=13, patience=math.inf, days=300, seed=5))
    n = len(res.records)
    model = erlang_c_metrics(100, 180, 13)
    assert sum(res.delayed.values()) / n == pytest.approx(model.p_wait, abs=0.03)
    asa = sum(r.wait_s for r in res.records) / n
    assert asa == pytest.approx(model.asa_s, rel=0.2)
    within = sum(r.wait_s <= 20 for r in res.records) / n
    assert within == pytest.approx(model.service_level, abs=0.03)


def test_simulator_rejects_bad_configs() -> None:
    with pytest.raises(ValueError):
        SimConfig(calls_per_bin=(), agents_per_bin=1)
    with pytest.raises(ValueError):
        SimConfig(calls_per_bin=(1.0, 2.0), agents_per_bin=(1,))
    with pytest.raises(ValueError):
        SimConfig(calls_per_bin=(1.0,), agents_per_bin=1, service_median_s=200.0)


def test_estimators_rank_sensibly_on_a_markovian_queue() -> None:
    # Under M/M/s+M the Markov queue-length estimator is the conditional mean: it must beat the
    # delay-history ones, and ours must stay within a whisker of it.
    res = simulate(stationary(agents=10, patience=350.0, days=40, seed=21))
    rrase = {}
    for name in ESTIMATORS:
        se = total = n = 0.0
        for p in replay(res.records, lambda name=name: make_estimator(name)):
            if res.delayed[p.record.call_id]:
                truth = res.potential_wait_s[p.record.call_id]
                se += (p.estimate.seconds - truth) ** 2
                total += truth
                n += 1
        rrase[name] = math.sqrt(se / n) / (total / n)
    assert rrase["ql-m"] < min(rrase["hol"], rrase["les"], rrase["avg-les"])
    assert rrase["ql-m"] < rrase["ql"]
    assert rrase["blend"] < rrase["ql-m"] * 1.03
    # ql-m is the conditional mean here: ours may only win by steadier parameter estimates.
    assert rrase["adaptive"] < rrase["ql-m"] * 1.005


# ---------------------------------------------------------------------------------------------
# adaptive (ours): ghost labels, accuracy where the model is biased, intervals, snapshots
# ---------------------------------------------------------------------------------------------


def accuracy(res: SimResult, name: str) -> tuple[float, float]:
    """RRASE against the potential wait over delayed callers, and the share of those potential
    waits inside the 80% interval."""
    se = total = n = inside = 0.0
    for p in replay(res.records, lambda: make_estimator(name)):
        if res.delayed[p.record.call_id]:
            truth = res.potential_wait_s[p.record.call_id]
            se += (p.estimate.seconds - truth) ** 2
            total += truth
            n += 1
            inside += p.estimate.low <= truth <= p.estimate.high
    return math.sqrt(se / n) / (total / n), inside / n


def small_team(wrap_up_s: float, seed: int = 2) -> SimResult:
    # Four agents, log-normal service (the bank's 179 s / 109 s), 30% priority callers.
    return simulate(
        SimConfig(
            calls_per_bin=(32.0,),
            agents_per_bin=4,
            days=300,
            wrap_up_s=wrap_up_s,
            priority_share=0.3,
            seed=seed,
        )
    )


def test_adaptive_follows_abandoned_callers_as_ghosts() -> None:
    est = two_agents_busy("adaptive")
    taught: list[tuple[str, float]] = []
    teach = est._teach  # type: ignore[attr-defined]
    est._teach = lambda call, wait: (taught.append((call, wait)), teach(call, wait))  # type: ignore[attr-defined]
    est.on_enter("C", 10.0, 0)
    est.estimate("C", 10.0)
    est.on_enter("D", 20.0, 0)
    est.estimate("D", 20.0)
    est.on_abandon("C", 50.0)
    est.on_enter("P", 60.0, 1)  # a priority caller overtakes the ghost of C
    est.estimate("P", 60.0)
    est.on_service_end("A", 70.0)
    est.on_service_start("P", 70.0)
    assert taught == [("P", 10.0)]  # C would still have been waiting behind P
    est.on_service_end("B", 100.0)
    est.on_service_start("D", 100.0)
    # C held its place ahead of D: had it stayed, it would have been answered at 100.
    assert taught == [("P", 10.0), ("C", 90.0), ("D", 80.0)]
    # A ghost with nobody behind it ends when an agent frees.
    est.on_enter("E", 110.0, 0)
    est.estimate("E", 110.0)
    est.on_abandon("E", 120.0)
    est.on_service_end("P", 150.0)
    assert taught[-1] == ("E", 40.0)


def test_adaptive_beats_the_queue_models_where_they_are_biased() -> None:
    # Unlogged wrap-up: agents look free when they are not and services look shorter than the
    # time they hold an agent; every queue-length model is biased, the regression learns it.
    res = small_team(wrap_up_s=30.0)
    rrase = {name: accuracy(res, name)[0] for name in ("ql", "ql-m", "ql-mp", "blend", "adaptive")}
    assert rrase["adaptive"] < 0.9 * rrase["ql-mp"]
    assert rrase["adaptive"] < min(rrase["ql"], rrase["ql-m"], rrase["blend"])


def test_adaptive_interval_covers_the_truth_about_80_percent() -> None:
    res = small_team(wrap_up_s=0.0)
    rrase, coverage = accuracy(res, "adaptive")
    assert 0.72 <= coverage <= 0.88
    assert rrase < accuracy(res, "ql-mp")[0]


def test_adaptive_snapshot_restores_exactly() -> None:
    """Stop mid-stream, round-trip the estimator through strict JSON, go on with both: every
    later estimate is the same float."""
    res = small_team(wrap_up_s=10.0, seed=5)
    events: list[tuple[float, int, str, str, int]] = []
    for r in res.records[:3000]:
        events.append((r.queue_entered_at, 2, "enter", r.call_id, r.priority))
        kind = "start" if r.answered else "abandon"
        events.append((r.queue_exited_at, 1, kind, r.call_id, 0))
        if r.answered and r.service_ended_at is not None:
            events.append((r.service_ended_at, 0, "end", r.call_id, 0))
    events.sort()

    def feed(est: Estimator, part: list[tuple[float, int, str, str, int]]) -> list[Estimate]:
        out = []
        for t, _rank, kind, call, priority in part:
            if kind == "enter":
                est.on_enter(call, t, priority)
                out.append(est.estimate(call, t))
                out.append(est.estimate(3, t))
            elif kind == "start":
                est.on_service_start(call, t)
            elif kind == "abandon":
                est.on_abandon(call, t)
            else:
                est.on_service_end(call, t)
        return out

    original = make_estimator("adaptive")
    cut = len(events) // 2
    feed(original, events[:cut])
    while not original._ghosts:  # type: ignore[attr-defined]
        feed(original, events[cut : cut + 1])  # stop while an abandoned caller is followed
        cut += 1
    assert original._fit.coef[0] != 0.0  # type: ignore[attr-defined]  # it has learned
    restored = load_estimator(json.loads(json.dumps(dump_estimator(original), allow_nan=False)))
    assert type(restored) is type(original)
    assert feed(restored, events[cut:]) == feed(original, events[cut:])
    assert dump_estimator(restored) == dump_estimator(original)


def test_engine_with_adaptive_queues_snapshots_exactly() -> None:
    from routing.engine.model import QueueUpdated
    from routing.engine.router import Engine
    from tests.routing.test_engine import drive, norm, scenario

    events = [
        QueueUpdated(ev.at, dataclasses.replace(ev.queue, estimator="adaptive"))
        if isinstance(ev, QueueUpdated)
        else ev
        for ev in scenario()
    ]
    original, stopped = Engine(), Engine()
    drive(original, events[:70])
    drive(stopped, events[:70])
    restored = Engine.restore(json.loads(json.dumps(stopped.snapshot(), allow_nan=False)))
    tail = drive(original, events[70:])
    assert drive(restored, events[70:]) == tail
    assert norm(restored.snapshot()) == norm(original.snapshot())


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fast_snapshot_encoding_equals_the_reference_walker(name: str) -> None:
    from routing.engine import estimator_state

    res = small_team(wrap_up_s=10.0, seed=6)
    estimators: list[Estimator] = []

    def factory() -> Estimator:
        estimators.append(make_estimator(name))
        return estimators[-1]

    for i, _p in enumerate(replay(res.records[:1500], factory)):
        if i == 700:  # mid-stream: calls queued, in service, ghosts, a fitted regression
            break
    est = estimators[0]
    est.observer._exposure = math.inf  # a non-finite float must be tagged the same way
    fast = estimator_state._enc(est)
    assert json.dumps(fast, sort_keys=True) == json.dumps(
        estimator_state._enc_reference(est), sort_keys=True
    )
    again = load_estimator(json.loads(json.dumps(fast, allow_nan=False)))
    assert json.dumps(dump_estimator(again), sort_keys=True) == json.dumps(fast, sort_keys=True)
