"""Erlang B / C / A: published values, exact references, properties, big cases, pyworkforce.

The references in this file are written independently of routing.erlang: exact rational
arithmetic (fractions.Fraction, factorial sums) for Erlang B and C, and for Erlang A a direct
integration of the hypoexponential waiting-time density against the patience survival function,
carried out in 80-digit decimal arithmetic. No Django, no database.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import erlang
from routing.erlang import (
    ErlangAResult,
    StaffingResult,
    erlang_a,
    erlang_a_agents_needed,
    erlang_a_asa,
    erlang_a_p_abandon,
    erlang_a_p_wait,
    erlang_a_service_level,
    erlang_b,
    erlang_b_lines_needed,
    erlang_c,
    erlang_c_agents_needed,
    erlang_c_asa,
    erlang_c_metrics,
    erlang_c_occupancy,
    erlang_c_p_wait,
    erlang_c_queue_length,
    erlang_c_service_level,
    offered_load,
)

# ---------------------------------------------------------------------------------------------
# Independent exact references
# ---------------------------------------------------------------------------------------------


def exact_erlang_b(traffic: Fraction, lines: int) -> Fraction:
    """(E^N / N!) / sum_{k<=N} E^k / k!, exactly."""
    terms = [traffic**k / math.factorial(k) for k in range(lines + 1)]
    return terms[-1] / sum(terms)


def exact_erlang_c(traffic: Fraction, agents: int) -> Fraction:
    """Erlang C from its textbook definition (not via Erlang B), exactly."""
    top = traffic**agents / math.factorial(agents) * Fraction(agents) / (agents - traffic)
    below = sum(traffic**k / math.factorial(k) for k in range(agents))
    return top / (below + top)


def exact_erlang_b_big(traffic: int, lines: int) -> Fraction:
    """Exact Erlang B with integer traffic for thousands of lines, by Horner on big integers.

    g_k = E^k + k * g_{k-1}, g_0 = 1 gives g_N = N! * sum_{k<=N} E^k/k!, so B = E^N / g_N.
    """
    g = 1
    power = 1
    for k in range(1, lines + 1):
        power *= traffic
        g = power + k * g
    return Fraction(power, g)


def reference_erlang_a(
    lam: Fraction, mu: Fraction, theta: Fraction, n: int, t: Fraction, max_queue: int
) -> dict[str, float]:
    """M/M/n+M by brute force over a truncated state space, in 80-digit arithmetic.

    For an arrival finding k callers queued, its potential wait V is a sum of exponentials
    with rates n mu + i theta (i = 0..k), density f(v) = sum_i c_i r_i e^{-r_i v} with
    c_i = prod_{j != i} r_j / (r_j - r_i). With patience tau ~ Exp(theta), P(answered) =
    int f e^{-theta v}, E[V; answered] = int v f e^{-theta v}, P(answered by t) =
    int_0^t f e^{-theta v}: each integral done term by term in closed form.
    """
    with localcontext() as ctx:
        ctx.prec = 80
        weights = [Fraction(1)]
        traffic = lam / mu
        for j in range(1, n + 1):
            weights.append(weights[-1] * traffic / j)
        for k in range(1, max_queue + 1):
            weights.append(weights[-1] * lam / (n * mu + k * theta))
        total = sum(weights)
        p_wait = Fraction(0)
        p_ab = Fraction(0)
        answered_wait = Decimal(0)
        fast = Decimal(0)
        for k in range(max_queue + 1):
            pk = weights[n + k] / total
            rates = [n * mu + i * theta for i in range(k + 1)]
            answered = Fraction(0)
            wait_sum = Fraction(0)
            fast_k = Decimal(0)
            for i, r in enumerate(rates):
                c = Fraction(1)
                for j, rj in enumerate(rates):
                    if j != i:
                        c *= rj / (rj - r)
                answered += c * r / (r + theta)
                wait_sum += c * r / (r + theta) ** 2
                rt = (r + theta) * t
                decay = (-Decimal(rt.numerator) / Decimal(rt.denominator)).exp()
                ratio = c * r / (r + theta)
                fast_k += Decimal(ratio.numerator) / Decimal(ratio.denominator) * (1 - decay)
            p_wait += pk
            p_ab += pk * (1 - answered)
            answered_wait += (
                Decimal(pk.numerator)
                / Decimal(pk.denominator)
                * Decimal(wait_sum.numerator)
                / Decimal(wait_sum.denominator)
            )
            fast += Decimal(pk.numerator) / Decimal(pk.denominator) * fast_k
        p_answered = 1 - p_ab
        return {
            "p_wait": float(p_wait),
            "p_abandon": float(p_ab),
            "asa_s": float(
                answered_wait / (Decimal(p_answered.numerator) / p_answered.denominator)
            ),
            "service_level": float(1 - p_wait) + float(fast),
            "tail": float(weights[-1] / total),
        }


# ---------------------------------------------------------------------------------------------
# Erlang B
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traffic", "lines", "published"),
    [
        # Classic Erlang B table values (e.g. the ITU/Telecom tables).
        (10, 15, 0.0365),
        (1, 2, 0.2),
        (1, 1, 0.5),
        (5, 10, 0.0184),
        (20, 30, 0.0085),
    ],
)
def test_erlang_b_matches_published_tables(traffic: float, lines: int, published: float) -> None:
    assert erlang_b(traffic, lines) == pytest.approx(published, abs=5e-5)


@pytest.mark.parametrize(("traffic", "lines"), [(1, 2), (10, 15), (Fraction(7, 3), 5), (50, 40)])
def test_erlang_b_equals_exact_rational(traffic: Fraction | int, lines: int) -> None:
    exact = exact_erlang_b(Fraction(traffic), lines)
    assert erlang_b(float(traffic), lines) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_b_edges() -> None:
    assert erlang_b(5.0, 0) == 1.0  # no lines: every call is blocked
    assert erlang_b(0.0, 3) == 0.0  # no traffic: nothing is blocked
    assert erlang_b(1e6, 1) == pytest.approx(1e6 / (1 + 1e6))


def test_erlang_b_inverse_table() -> None:
    # 10 Erlangs at 1% blocking needs 18 lines (standard table); 1 Erlang at 20% needs 2.
    assert erlang_b_lines_needed(10, 0.01) == 18
    assert erlang_b_lines_needed(1, 0.2) == 2
    assert erlang_b_lines_needed(0, 0.01) == 0
    assert erlang_b_lines_needed(3, 1.0) == 0


@given(
    traffic=st.floats(min_value=0.01, max_value=300),
    target=st.floats(min_value=1e-6, max_value=0.99),
)
def test_erlang_b_inverse_is_minimal(traffic: float, target: float) -> None:
    lines = erlang_b_lines_needed(traffic, target)
    assert erlang_b(traffic, lines) <= target
    assert lines == 0 or erlang_b(traffic, lines - 1) > target


@given(traffic=st.floats(min_value=0.0, max_value=500), lines=st.integers(0, 600))
def test_erlang_b_monotone(traffic: float, lines: int) -> None:
    b = erlang_b(traffic, lines)
    assert 0.0 <= b <= 1.0
    assert erlang_b(traffic, lines + 1) <= b
    assert erlang_b(traffic + 1.0, lines) >= b


# ---------------------------------------------------------------------------------------------
# Erlang C
# ---------------------------------------------------------------------------------------------


def test_offered_load_textbook() -> None:
    # 100 calls per half hour at 180 s is 10 Erlangs.
    assert offered_load(100, 180, 1800) == pytest.approx(10.0)


def test_erlang_c_classic_example() -> None:
    # The textbook example: 100 calls / 30 min, AHT 180 s -> 10 Erlangs; 13 agents.
    m = erlang_c_metrics(100, 180, 13, interval_s=1800, answer_time_s=20)
    exact_pw = exact_erlang_c(Fraction(10), 13)
    assert m.p_wait == pytest.approx(float(exact_pw), rel=1e-12)
    assert m.p_wait == pytest.approx(0.2853, abs=1e-4)
    assert m.service_level == pytest.approx(1 - float(exact_pw) * math.exp(-3 * 20 / 180), 1e-12)
    assert m.service_level == pytest.approx(0.7956, abs=1e-4)
    assert m.asa_s == pytest.approx(float(exact_pw) * 180 / 3, rel=1e-12)  # ~17.1 s
    assert m.occupancy == pytest.approx(10 / 13)
    assert m.queue_length == pytest.approx(float(exact_pw) * 10 / 3, rel=1e-12)
    # The single-figure helpers agree with the bundle.
    assert erlang_c_p_wait(100, 180, 13) == m.p_wait
    assert erlang_c_asa(100, 180, 13) == m.asa_s
    assert erlang_c_service_level(100, 180, 13, 20) == m.service_level
    assert erlang_c_occupancy(100, 180, 13) == m.occupancy
    assert erlang_c_queue_length(100, 180, 13) == m.queue_length
    assert erlang_c(10.0, 13) == m.p_wait


def test_erlang_c_staffing_for_80_20() -> None:
    # 13 agents give 79.6% < 80%, so 80/20 needs 14 (88.8%).
    r = erlang_c_agents_needed(100, 180, 1800, service_level=0.8, answer_time_s=20)
    assert isinstance(r, StaffingResult)
    assert r.agents == 14
    assert r.model == "erlang_c"
    assert r.service_level == pytest.approx(0.8884, abs=1e-4)
    assert r.p_abandon == 0.0
    assert erlang_c_agents_needed(100, 180, service_level=0.79, answer_time_s=20).agents == 13


def test_erlang_c_staffing_for_asa_occupancy_and_shrinkage() -> None:
    # ASA at 13 agents is 17.1 s, at 12 agents ~ 44 s.
    assert erlang_c_agents_needed(100, 180, max_asa_s=20).agents == 13
    assert erlang_c_agents_needed(100, 180, max_asa_s=17).agents == 14
    # An 80% occupancy ceiling on 10 Erlangs forces 13 agents even for a loose SL.
    assert erlang_c_agents_needed(100, 180, service_level=0.1, max_occupancy=0.8).agents == 13
    r = erlang_c_agents_needed(100, 180, service_level=0.8, shrinkage=0.3)
    assert r.agents == 14
    assert r.scheduled_agents == 20  # ceil(14 / 0.7)
    assert erlang_c_agents_needed(80, 180, 1800, service_level=0.5, shrinkage=0.2).agents == 10
    assert (
        erlang_c_agents_needed(80, 180, 1800, service_level=0.5, shrinkage=0.2).scheduled_agents
        == 13
    )
    # Exactly divisible gross-up is not rounded up by floating noise: 8 / 0.8 = 10.
    assert erlang.StaffingResult  # public name
    assert erlang._scheduled(8, 0.2) == 10


@pytest.mark.parametrize(
    ("traffic", "agents"), [(Fraction(1, 2), 1), (Fraction(10), 11), (Fraction(37, 4), 12)]
)
def test_erlang_c_equals_exact_rational(traffic: Fraction, agents: int) -> None:
    assert erlang_c(float(traffic), agents) == pytest.approx(
        float(exact_erlang_c(traffic, agents)), rel=1e-12
    )


def test_erlang_c_unstable_is_reported_not_raised() -> None:
    m = erlang_c_metrics(200, 180, 10)  # 20 Erlangs on 10 agents
    assert m.p_wait == 1.0
    assert m.asa_s == math.inf
    assert m.service_level == 0.0
    assert m.queue_length == math.inf
    assert m.occupancy == 1.0
    assert erlang_c(10.0, 10) == 1.0  # traffic == agents is unstable too


def test_erlang_c_zero_traffic() -> None:
    m = erlang_c_metrics(0, 180, 1)
    assert (m.p_wait, m.asa_s, m.service_level, m.occupancy) == (0.0, 0.0, 1.0, 0.0)
    r = erlang_c_agents_needed(0, 180, service_level=0.8)
    assert r.agents == 0 and r.scheduled_agents == 0 and r.service_level == 1.0


@settings(max_examples=150)
@given(
    calls=st.floats(min_value=0.5, max_value=3000),
    aht=st.floats(min_value=10, max_value=900),
    extra=st.integers(0, 40),
)
def test_erlang_c_monotone_in_agents(calls: float, aht: float, extra: int) -> None:
    traffic = offered_load(calls, aht)
    n = math.floor(traffic) + 1 + extra
    a = erlang_c_metrics(calls, aht, n)
    b = erlang_c_metrics(calls, aht, n + 1)
    assert 0.0 <= b.p_wait <= a.p_wait <= 1.0
    assert b.asa_s <= a.asa_s
    assert a.service_level <= b.service_level <= 1.0
    assert b.queue_length <= a.queue_length


@settings(max_examples=100)
@given(
    calls=st.floats(min_value=1, max_value=5000),
    aht=st.floats(min_value=30, max_value=600),
    target=st.floats(min_value=0.05, max_value=0.99),
    answer=st.floats(min_value=0, max_value=120),
)
def test_erlang_c_staffing_is_minimal(calls: float, aht: float, target: float, answer: float):
    r = erlang_c_agents_needed(calls, aht, service_level=target, answer_time_s=answer)
    assert r.service_level >= target
    assert r.agents > r.traffic_erlangs
    if r.agents > 1:
        below = erlang_c_metrics(calls, aht, r.agents - 1, answer_time_s=answer)
        assert below.service_level < target


def test_large_systems_do_not_overflow() -> None:
    # 5000 agents, 4900 Erlangs: the factorial form would overflow long before this.
    b = erlang_b(4900, 5000)
    exact = exact_erlang_b_big(4900, 5000)
    assert b == pytest.approx(float(exact), rel=1e-9)
    c = erlang_c(4900, 5000)
    exact_c = 5000 * exact / (5000 - 4900 * (1 - exact))
    assert c == pytest.approx(float(exact_c), rel=1e-9)
    m = erlang_c_metrics(4900 * 1800 / 180, 180, 5000)
    assert all(math.isfinite(v) for v in (m.p_wait, m.asa_s, m.service_level, m.queue_length))
    r = erlang_c_agents_needed(4900 * 1800 / 180, 180, service_level=0.8)
    assert 4900 < r.agents < 5000
    # Tiny blocking underflows gracefully to a tiny number or zero, never NaN.
    assert 0.0 <= erlang_b(10, 20000) < 1e-300
    assert erlang_b(20000, 20000) == pytest.approx(
        float(exact_erlang_b_big(20000, 20000)), rel=1e-9
    )


# ---------------------------------------------------------------------------------------------
# Erlang A
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "aht", "patience", "agents", "t", "states"),
    [
        (100, 180, 350, 11, 20, 50),  # lightly loaded
        (100, 180, 350, 9, 20, 55),  # overloaded: 10 Erlangs on 9 agents, stable thanks to patience
        (60, 120, 60, 3, 30, 24),  # impatient callers, small team
        (40, 300, 900, 5, 0, 60),  # SL at t = 0 is the share answered at once
    ],
)
def test_erlang_a_matches_brute_force(
    calls: int, aht: int, patience: int, agents: int, t: int, states: int
) -> None:
    lam = Fraction(calls, 1800)
    mu, theta = Fraction(1, aht), Fraction(1, patience)
    ref = reference_erlang_a(lam, mu, theta, agents, Fraction(t), states)
    assert ref["tail"] < 1e-17  # the truncated state space holds all the mass
    r = erlang_a(calls, aht, patience, agents, 1800, answer_time_s=t)
    assert isinstance(r, ErlangAResult)
    assert r.p_wait == pytest.approx(ref["p_wait"], rel=1e-10)
    assert r.p_abandon == pytest.approx(ref["p_abandon"], rel=1e-10)
    assert r.asa_s == pytest.approx(ref["asa_s"], rel=1e-10)
    assert r.service_level == pytest.approx(ref["service_level"], rel=1e-10)
    assert r.mean_wait_s == pytest.approx(r.p_abandon * patience, rel=1e-12)
    assert erlang_a_p_wait(calls, aht, patience, agents) == r.p_wait
    assert erlang_a_p_abandon(calls, aht, patience, agents) == r.p_abandon
    assert erlang_a_asa(calls, aht, patience, agents) == r.asa_s
    assert erlang_a_service_level(calls, aht, patience, agents, t) == r.service_level


def test_erlang_a_garnett_mandelbaum_reiman_identity() -> None:
    # GMR (2002): P(Ab | W > 0) = 1/(rho A(x, y)) + 1 - 1/rho, rho = lam/(n mu),
    # A(x, y) = 1 + sum_j y^j / prod_{k<=j} (x + k), x = n mu/theta, y = lam/theta.
    lam, mu, theta, n = Fraction(1, 18), Fraction(1, 180), Fraction(1, 350), 9
    x, y = n * mu / theta, lam / theta
    series, term = Fraction(1), Fraction(1)
    for j in range(1, 120):
        term = term * y / (x + j)
        series += term
    rho = lam / (n * mu)
    p_ab_given_wait = 1 / (rho * series) + 1 - 1 / rho
    r = erlang_a(100, 180, 350, n)
    assert r.p_abandon / r.p_wait == pytest.approx(float(p_ab_given_wait), rel=1e-12)


@pytest.mark.parametrize("agents", [11, 13, 20])
def test_erlang_a_converges_to_erlang_c(agents: int) -> None:
    c = erlang_c_metrics(100, 180, agents)
    previous_gap = math.inf
    for patience in (1e3, 1e5, 1e7):
        a = erlang_a(100, 180, patience, agents)
        gap = abs(a.p_wait - c.p_wait) + abs(a.service_level - c.service_level)
        assert gap < previous_gap
        previous_gap = gap
    a = erlang_a(100, 180, 1e9, agents)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.asa_s == pytest.approx(c.asa_s, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)
    assert a.p_abandon < 1e-6
    inf = erlang_a(100, 180, math.inf, agents)
    assert (inf.p_wait, inf.asa_s, inf.p_abandon) == (c.p_wait, c.asa_s, 0.0)


def test_erlang_a_bank_profile_is_plausible() -> None:
    # Anonymous Bank, Feb 1999: ~8 agents in a daytime hour, mean service 179 s, mean patience
    # ~350 s; observed 54% of calls wait and 21.8% of those hang up (~12% of all calls).
    # A busy hour of ~150 calls is 7.5 Erlangs on 8 agents.
    r = erlang_a(150, 179, 350, 8, interval_s=3600)
    assert 0.40 < r.p_wait < 0.70
    assert 0.05 < r.p_abandon < 0.20
    assert 0.10 < r.p_abandon / r.p_wait < 0.30
    assert 10 < r.asa_s < 90
    # Erlang C would call 7.46 Erlangs on 8 agents far worse than Erlang A does.
    c = erlang_c_metrics(150, 179, 8, interval_s=3600)
    assert c.p_wait > r.p_wait and c.asa_s > r.asa_s
    # Abandonment keeps even one agent stable; the fluid limit is 1 - n mu / lam.
    one = erlang_a(150, 179, 350, 1, interval_s=3600)
    assert one.p_abandon == pytest.approx(1 - 1 / 7.458333, abs=0.01)


def test_erlang_a_staffing() -> None:
    by_ab = erlang_a_agents_needed(150, 179, 350, 3600, max_abandon=0.05)
    assert by_ab.model == "erlang_a"
    assert by_ab.p_abandon <= 0.05
    assert erlang_a(150, 179, 350, by_ab.agents - 1, 3600).p_abandon > 0.05
    by_sl = erlang_a_agents_needed(150, 179, 350, 3600, service_level=0.8, answer_time_s=20)
    assert by_sl.service_level >= 0.8
    assert erlang_a(150, 179, 350, by_sl.agents - 1, 3600).service_level < 0.8
    both = erlang_a_agents_needed(
        150, 179, 350, 3600, max_abandon=0.01, service_level=0.8, shrinkage=0.25
    )
    assert both.agents >= max(by_ab.agents, by_sl.agents)
    assert both.scheduled_agents == math.ceil(both.agents / 0.75)
    by_asa = erlang_a_agents_needed(150, 179, 350, 3600, max_asa_s=15)
    assert by_asa.asa_s <= 15
    # Erlang A never needs more agents than Erlang C for the same ASA target.
    assert by_asa.agents <= erlang_c_agents_needed(150, 179, 3600, max_asa_s=15).agents
    # Infinite patience is Erlang C staffing.
    inf = erlang_a_agents_needed(100, 180, math.inf, service_level=0.8)
    assert inf.agents == 14
    assert erlang_a_agents_needed(100, 180, math.inf, max_abandon=0.1).agents == 11
    zero = erlang_a_agents_needed(0, 180, 350, max_abandon=0.05)
    assert zero.agents == 0


@settings(max_examples=60, deadline=None)
@given(
    calls=st.floats(min_value=1, max_value=2000),
    aht=st.floats(min_value=30, max_value=600),
    patience=st.floats(min_value=10, max_value=3000),
    agents=st.integers(1, 120),
    answer=st.floats(min_value=0, max_value=120),
)
def test_erlang_a_monotone_in_agents(
    calls: float, aht: float, patience: float, agents: int, answer: float
) -> None:
    a = erlang_a(calls, aht, patience, agents, answer_time_s=answer)
    b = erlang_a(calls, aht, patience, agents + 1, answer_time_s=answer)
    slack = 1e-12
    for r in (a, b):
        assert 0.0 <= r.p_abandon <= r.p_wait <= 1.0
        assert 0.0 <= r.service_level <= 1.0
        assert math.isfinite(r.asa_s) and r.asa_s >= 0
    assert b.p_wait <= a.p_wait + slack
    assert b.p_abandon <= a.p_abandon + slack
    assert b.asa_s <= a.asa_s * (1 + 1e-9) + slack
    assert b.service_level >= a.service_level - slack


@settings(max_examples=40, deadline=None)
@given(
    calls=st.floats(min_value=1, max_value=3000),
    aht=st.floats(min_value=30, max_value=600),
    patience=st.floats(min_value=10, max_value=3000),
    target=st.floats(min_value=0.001, max_value=0.5),
)
def test_erlang_a_staffing_is_minimal(calls: float, aht: float, patience: float, target: float):
    r = erlang_a_agents_needed(calls, aht, patience, max_abandon=target)
    assert r.p_abandon <= target
    assert r.agents == 1 or erlang_a(calls, aht, patience, r.agents - 1).p_abandon > target


def test_erlang_a_large_and_overloaded() -> None:
    big = erlang_a(4900 * 1800 / 180, 180, 350, 5000)
    assert 0 < big.p_abandon < big.p_wait < 1
    # 30,000 Erlangs on 5,000 agents: the queue series terms reach e^1000s; rescaling copes.
    flood = erlang_a(30000 * 1800 / 180, 180, 350, 5000)
    assert flood.p_abandon == pytest.approx(1 - 5000 / 30000, rel=1e-6)
    # Fluid limit of the answered wait: ln(lam / (n mu)) / theta.
    assert flood.asa_s == pytest.approx(math.log(6) * 350, rel=0.01)
    quiet = erlang_a(10, 180, 350, 5000)
    assert quiet.p_wait == 0.0 and quiet.service_level == 1.0


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang_b(-1, 3),
        lambda: erlang_b(math.nan, 3),
        lambda: erlang_b(math.inf, 3),
        lambda: erlang_b(1, -1),
        lambda: erlang_b(1, 2.5),
        lambda: erlang_b(1, True),
        lambda: erlang_b("3", 2),
        lambda: erlang_b_lines_needed(1, 0),
        lambda: erlang_b_lines_needed(1, 1.5),
        lambda: erlang_c(1, 0),
        lambda: erlang_c_metrics(100, 0, 10),
        lambda: erlang_c_metrics(100, 180, 10, interval_s=0),
        lambda: erlang_c_metrics(-5, 180, 10),
        lambda: erlang_c_metrics(100, 180, 10, answer_time_s=-1),
        lambda: erlang_c_agents_needed(100, 180),
        lambda: erlang_c_agents_needed(100, 180, service_level=1.0),
        lambda: erlang_c_agents_needed(100, 180, service_level=math.nan),
        lambda: erlang_c_agents_needed(100, 180, max_asa_s=0),
        lambda: erlang_c_agents_needed(100, 180, service_level=0.8, max_occupancy=0),
        lambda: erlang_c_agents_needed(100, 180, service_level=0.8, shrinkage=1),
        lambda: erlang_a(100, 180, 0, 10),
        lambda: erlang_a(100, 180, -3, 10),
        lambda: erlang_a(100, 180, math.nan, 10),
        lambda: erlang_a(100, 180, 350, 0),
        lambda: erlang_a_agents_needed(100, 180, 350),
        lambda: erlang_a_agents_needed(100, 180, 350, max_abandon=0),
        lambda: erlang_a_agents_needed(0, 180, -1, max_abandon=0.1),
    ],
)
def test_bad_input_raises_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_integral_floats_accepted_as_counts() -> None:
    assert erlang_b(10, 15.0) == erlang_b(10, 15)


# ---------------------------------------------------------------------------------------------
# pyworkforce cross-check (only when it imports cleanly)
# ---------------------------------------------------------------------------------------------


def _pyworkforce_erlang_c():
    try:
        from pyworkforce.queuing import ErlangC
    except Exception as exc:  # any import failure (missing joblib, broken wheel) means skip
        pytest.skip(f"pyworkforce does not import cleanly: {exc!r}")
    return ErlangC


@pytest.mark.parametrize(
    ("calls", "aht_s", "interval_s", "target", "answer_s"),
    [
        (100, 180, 1800, 0.8, 20),
        (1400 / 24, 179, 3600, 0.8, 20),
        (600, 240, 1800, 0.9, 15),
        (2500, 300, 1800, 0.8, 30),
        (7, 179, 1800, 0.5, 60),
    ],
)
def test_agrees_with_pyworkforce(
    calls: float, aht_s: float, interval_s: float, target: float, answer_s: float
) -> None:
    ErlangC = _pyworkforce_erlang_c()
    theirs = ErlangC(
        transactions=calls, aht=aht_s / 60, asa=answer_s / 60, interval=interval_s / 60
    )
    ours = erlang_c_agents_needed(
        calls, aht_s, interval_s, service_level=target, answer_time_s=answer_s
    )
    required = theirs.required_positions(service_level=target)
    assert ours.agents == required["raw_positions"]
    assert ours.service_level == pytest.approx(required["service_level"], rel=1e-9)
    for n in (ours.agents, ours.agents + 3):
        assert erlang_c_p_wait(calls, aht_s, n, interval_s) == pytest.approx(
            theirs.waiting_probability(n), rel=1e-9
        )


@settings(max_examples=200)
@given(traffic=st.floats(min_value=81.5, max_value=20000), offset=st.floats(0, 29.9))
def test_erlang_b_shortcut_matches_recursion(traffic: float, offset: float) -> None:
    # Near the traffic, erlang_b sums 1/B backwards in O(sqrt E); it must equal the recursion.
    lines = math.ceil(traffic + offset * math.sqrt(traffic) * 0.999)
    b = 1.0
    for k in range(1, lines + 1):
        b = traffic * b / (k + traffic * b)
    assert erlang_b(traffic, lines) == pytest.approx(b, rel=1e-11, abs=1e-300)


@settings(max_examples=40, deadline=None)
@given(
    calls=st.floats(min_value=1, max_value=3000),
    aht=st.floats(min_value=30, max_value=600),
    patience=st.floats(min_value=10, max_value=3000),
    target=st.floats(min_value=0.05, max_value=0.95),
    answer=st.floats(min_value=0, max_value=60),
)
def test_erlang_a_service_level_staffing_is_minimal(
    calls: float, aht: float, patience: float, target: float, answer: float
) -> None:
    r = erlang_a_agents_needed(calls, aht, patience, service_level=target, answer_time_s=answer)
    assert r.service_level >= target
    if r.agents > 1:
        assert erlang_a(calls, aht, patience, r.agents - 1, answer_time_s=answer).service_level < (
            target
        )


@settings(max_examples=60, deadline=None)
@given(
    agents=st.integers(1, 3000),
    load=st.floats(min_value=0.5, max_value=1.5),
    t1=st.floats(min_value=0, max_value=900),
    t2=st.floats(min_value=0, max_value=900),
)
def test_erlang_a_service_level_monotone_in_answer_time(
    agents: int, load: float, t1: float, t2: float
) -> None:
    # Large n mu t makes the first negative-binomial term underflow: the log-space start must
    # keep the service level continuous and monotone in t.
    calls = agents * load * 1800 / 180
    lo, hi = sorted((t1, t2))
    a = erlang_a(calls, 180, 350, agents, answer_time_s=lo)
    b = erlang_a(calls, 180, 350, agents, answer_time_s=hi)
    assert a.service_level <= b.service_level + 1e-12
    assert 1 - a.p_wait <= a.service_level <= 1 - a.p_abandon + 1e-12
