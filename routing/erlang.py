"""Erlang B, Erlang C and Erlang A (Palm's M/M/n+M) formulas and staffing searches.

Pure Python, standard library only: no Django, no numpy, no clock. Every function is a
deterministic function of its arguments, so it can run in a view, a job, a benchmark or a test.

Units and conventions
---------------------
* ``calls`` is the number of calls offered in one interval (a forecast bin);
  ``interval_s`` is that interval's length in seconds (default 1800 s, a half hour).
* ``aht_s`` is the average handle time in seconds (talk + hold + wrap-up), ``patience_s`` the
  callers' mean patience in seconds (Erlang A only), ``answer_time_s`` the service-level target
  time ("80/20" means ``service_level=0.8`` with ``answer_time_s=20``).
* Offered traffic in Erlangs is ``E = calls * aht_s / interval_s``.
* ``agents`` / ``lines`` are integers; ``bool`` and non-integral numbers are rejected.
* Bad input (negative, NaN, infinite where a finite number is needed, a probability outside its
  range) raises :class:`ValueError` naming the argument.

Methods
-------
* **Erlang B** uses the classic forward recursion ``B(0) = 1``,
  ``B(k) = E*B(k-1) / (k + E*B(k-1))``. Every step combines positive numbers only, so it is
  numerically stable and never overflows (unlike the factorial form), for any number of lines and
  any traffic; its cost is ``O(lines)``. Near and just above the traffic (E > 81,
  ``0 <= n - E < 30 sqrt E``, where staffing lives) it instead sums
  ``1/B = sum_j n!/((n-j)! E^j)`` until the terms fall below 1e-17 of the sum: also positive
  terms only, and ``O(n - E + 9 sqrt E)``. Values below ~1e-308 underflow to 0.0 (Erlang A then
  takes log B from the Poisson form).
* **Erlang C** is derived from Erlang B: ``C = n*B / (n - E*(1 - B))`` for ``E < n``.
  An unstable system (``E >= n``) is *not* an error: the queue grows without bound, so it
  reports ``p_wait = 1``, ``asa_s = inf``, ``service_level = 0``, ``queue_length = inf`` and
  occupancy capped at 1. Staffing searches therefore start at the first stable head count.
* **Erlang A** (M/M/n+M, exponential patience) is computed from its birth-death stationary
  distribution, normalised at state ``n`` (all agents busy, nobody waiting). The part below
  ``n`` is ``(1 - B)/B`` with ``B`` the Erlang B value, and the queue part is the series
  ``A(x, y) = 1 + sum_j y^j / prod_{k<=j}(x + k)`` with ``x = n*mu/theta``, ``y = lambda/theta``:
  the Garnett-Mandelbaum-Reiman (2002) function, equal to ``x e^y y^-x gamma(x, y)``.
  The series is summed term by term with a running rescale (the terms are kept below 1e250 and
  the scale is carried as a logarithm), so heavily overloaded systems do not overflow; it stops
  once the remaining tail is provably below 1e-16 of the sum. Conditional on ``k`` callers
  ahead, a caller's potential wait is a sum of exponentials with rates
  ``n*mu + i*theta`` (``i = 0..k``). Exponential tilting by the caller's own patience gives
  closed forms: it is answered with probability ``n*mu / (n*mu + (k+1)*theta)``, its expected
  answered wait is that times ``sum_{i=1}^{k+1} 1/(n*mu + i*theta)``, and the probability it is
  answered within ``t`` is that times ``1 - I_u(x+1, k+1)`` where ``u = exp(-theta*t)`` and
  ``I`` is the regularised incomplete beta (a negative-binomial CDF, updated in O(1) per ``k``
  in log space until it is representable). The cost is ``O(n + K)`` where ``K`` is the number of
  queue states that carry probability mass (about ``(lambda - n*mu)/theta`` plus a few standard
  deviations when overloaded, a few dozen otherwise).
* **Staffing searches** rely on every metric being monotone in the head count (more agents:
  lower wait probability, ASA and abandonment, higher service level; property-tested). Erlang C
  steps the recursion one agent at a time from the first stable head count
  (``O(sqrt E)`` steps). Erlang A starts from a head count known to fail (capacity bounds:
  ``P(abandon) >= 1 - n/E`` and ``service level <= n/E``), gallops up in doubling steps and
  bisects, skipping the service-level sum when it is not a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

__all__ = [
    "ErlangAResult",
    "ErlangCResult",
    "StaffingResult",
    "erlang_a",
    "erlang_a_agents_needed",
    "erlang_a_asa",
    "erlang_a_p_abandon",
    "erlang_a_p_wait",
    "erlang_a_service_level",
    "erlang_b",
    "erlang_b_lines_needed",
    "erlang_c",
    "erlang_c_agents_needed",
    "erlang_c_asa",
    "erlang_c_metrics",
    "erlang_c_occupancy",
    "erlang_c_p_wait",
    "erlang_c_queue_length",
    "erlang_c_service_level",
    "offered_load",
]

DEFAULT_INTERVAL_S = 1800.0
DEFAULT_ANSWER_TIME_S = 20.0

# Relative precision at which the Erlang A queue series is truncated.
_SERIES_TOLERANCE = 1e-16
# Rescale the Erlang A series when a term exceeds this, keeping everything finite.
_RESCALE_ABOVE = 1e250
# Below this an Erlang B value from the float recursion may have lost digits to denormals, so its
# logarithm is taken from the Poisson form instead.
_TINY_BLOCKING = 1e-280
# Refuse Erlang A inputs whose queue distribution would need more terms than this (an overloaded
# system with near-infinite patience); use Erlang C or a fluid model for those.
_MAX_QUEUE_TERMS = 5_000_000


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErlangCResult:
    """Erlang C (M/M/n) figures for one interval.

    ``p_wait``: probability an arriving call has to queue. ``asa_s``: average speed of answer
    (mean queueing delay over all calls, the answered-immediately ones counting as 0).
    ``service_level``: fraction of calls answered within ``answer_time_s``. ``occupancy``:
    fraction of agent time spent handling calls. ``queue_length``: time-average number waiting.
    """

    traffic_erlangs: float
    agents: int
    p_wait: float
    asa_s: float
    service_level: float
    answer_time_s: float
    occupancy: float
    queue_length: float


@dataclass(frozen=True, slots=True)
class ErlangAResult:
    """Erlang A (M/M/n+M, exponential patience) figures for one interval.

    ``p_wait``: probability a call has to queue. ``p_abandon``: probability it hangs up before
    an answer. ``asa_s``: mean wait of *answered* calls (immediate answers count as 0).
    ``mean_wait_s``: mean time in queue over all calls, abandoned ones included (equals
    ``p_abandon * patience_s`` by Little's law). ``service_level``: fraction of *offered* calls
    answered within ``answer_time_s``; calls that abandon, even quickly, count as misses.
    ``occupancy``: fraction of agent time busy (only answered calls load the agents).
    ``queue_length``: time-average number waiting.
    """

    traffic_erlangs: float
    agents: int
    patience_s: float
    p_wait: float
    p_abandon: float
    asa_s: float
    mean_wait_s: float
    service_level: float
    answer_time_s: float
    occupancy: float
    queue_length: float


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """The smallest head count meeting every target, and the figures it achieves.

    ``agents`` is the number needed on the phones; ``scheduled_agents`` grosses that up for
    shrinkage (breaks, training, absence): ``ceil(agents / (1 - shrinkage))``. ``model`` is
    ``"erlang_c"`` or ``"erlang_a"``; ``p_abandon`` is 0 under Erlang C, which has no abandonment.
    """

    model: str
    agents: int
    scheduled_agents: int
    traffic_erlangs: float
    p_wait: float
    p_abandon: float
    asa_s: float
    service_level: float
    answer_time_s: float
    occupancy: float
    queue_length: float


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _real(name: str, value: object) -> float:
    # Fast path for the two types nearly every caller passes; ABC checks cost ~0.3 us each.
    if type(value) is float or type(value) is int:
        result = float(value)
        if result != result:  # NaN
            raise ValueError(f"{name} must not be NaN")
        return result
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{name} must not be NaN")
    return result


def _non_negative(name: str, value: object) -> float:
    result = _real(name, value)
    if result < 0 or math.isinf(result):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return result


def _positive(name: str, value: object) -> float:
    result = _real(name, value)
    if result <= 0 or math.isinf(result):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return result


def _count(name: str, value: object, minimum: int) -> int:
    # Integral floats (10.0) are accepted because spreadsheets and JSON produce them; 10.5 is not.
    if type(value) is int:
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    elif isinstance(value, Integral):
        result = int(value)
    elif isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        result = int(float(value))
    else:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return result


def _open_probability(name: str, value: object, *, allow_zero: bool, allow_one: bool) -> float:
    result = _real(name, value)
    low_ok = result > 0 or (allow_zero and result == 0)
    high_ok = result < 1 or (allow_one and result == 1)
    if not (low_ok and high_ok):
        low = "[0" if allow_zero else "(0"
        high = "1]" if allow_one else "1)"
        raise ValueError(f"{name} must be in {low}, {high}, got {value!r}")
    return result


def _patience(value: object) -> float:
    result = _real("patience_s", value)
    if result <= 0:
        raise ValueError(f"patience_s must be > 0 (math.inf for none), got {value!r}")
    return result


def _shrinkage(value: object) -> float:
    return _open_probability("shrinkage", value, allow_zero=True, allow_one=False)


def _scheduled(agents: int, shrinkage: float) -> int:
    if shrinkage == 0:
        return agents
    # The tiny slack stops 8 / (1 - 0.2) = 10.000000000000002 from rounding up to 11.
    return math.ceil(agents / (1.0 - shrinkage) - 1e-9)


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


def offered_load(calls: float, aht_s: float, interval_s: float = DEFAULT_INTERVAL_S) -> float:
    """Offered traffic in Erlangs: ``calls * aht_s / interval_s``.

    ``calls`` >= 0 per interval, ``aht_s`` > 0 and ``interval_s`` > 0 seconds, all finite.
    Example: 100 calls per half hour with a 180 s handle time is 10 Erlangs.
    """
    calls = _non_negative("calls", calls)
    aht_s = _positive("aht_s", aht_s)
    interval_s = _positive("interval_s", interval_s)
    return calls * aht_s / interval_s


# --------------------------------------------------------------------------------------------
# Erlang B
# --------------------------------------------------------------------------------------------


def _erlang_b(traffic: float, lines: int) -> float:
    # Inputs already validated. Near and above the traffic the backward sum is cheaper; it is
    # only used where its largest term, about exp((n - E)^2 / 2E), cannot overflow.
    if traffic > 81.0 and 0.0 <= lines - traffic < 30.0 * math.sqrt(traffic):
        return _erlang_b_backward(traffic, lines)
    # Forward recursion: stable, no factorials, no overflow; O(lines).
    b = 1.0
    for k in range(1, lines + 1):
        eb = traffic * b
        b = eb / (k + eb)
    return b


def _erlang_b_backward(traffic: float, lines: int) -> float:
    """Erlang B from 1/B = sum_{j=0}^{n} n! / ((n - j)! E^j), truncated at double precision.

    The terms rise while n - j > E and then fall faster than geometrically (like
    exp(-j^2 / 2E) near n = E), so about (n - E) + 9 sqrt(E) of them reach 1e-17 of the sum:
    O(sqrt E) instead of the recursion's O(n) when n is close to E. All terms are positive, so
    the sum is as stable as the recursion. Requires traffic > 0 and 0 <= n - E < 30 sqrt(E).
    """
    total = 1.0
    term = 1.0
    for i in range(lines):
        term *= (lines - i) / traffic
        total += term
        if term < 1e-17 * total:
            break
    return 1.0 / total


def erlang_b(traffic_erlangs: float, lines: int) -> float:
    """Blocking probability of an M/M/n/n loss system (Erlang B).

    ``traffic_erlangs`` >= 0 (finite), ``lines`` >= 0. Returns a probability in [0, 1]:
    1 with no lines, 0 with no traffic and at least one line. Cost O(lines); works for tens of
    thousands of lines and Erlangs (values below ~1e-308 underflow to 0.0).
    """
    traffic = _non_negative("traffic_erlangs", traffic_erlangs)
    n = _count("lines", lines, 0)
    return _erlang_b(traffic, n)


def erlang_b_lines_needed(traffic_erlangs: float, max_blocking: float) -> int:
    """Smallest number of lines whose Erlang B blocking is <= ``max_blocking``.

    ``max_blocking`` in (0, 1]; ``traffic_erlangs`` >= 0 (finite). Zero traffic needs 0 lines.
    Cost O(answer): the recursion is advanced one line at a time until the target is met.
    """
    traffic = _non_negative("traffic_erlangs", traffic_erlangs)
    target = _open_probability("max_blocking", max_blocking, allow_zero=False, allow_one=True)
    if traffic == 0:
        return 0
    b = 1.0
    lines = 0
    while b > target:
        lines += 1
        eb = traffic * b
        b = eb / (lines + eb)
    return lines


def _log_erlang_b(traffic: float, lines: int) -> float:
    """log B(lines, traffic) for traffic > 0, accurate even where B underflows."""
    b = _erlang_b(traffic, lines)
    if b > _TINY_BLOCKING:
        return math.log(b)
    # B = Poisson pmf(n) / Poisson cdf(n). B can only be this small far above the mean
    # (B >= 1 - n/E below it), where the cdf is 1 to double precision.
    return lines * math.log(traffic) - traffic - math.lgamma(lines + 1)


# --------------------------------------------------------------------------------------------
# Erlang C
# --------------------------------------------------------------------------------------------


def _erlang_c_from_b(traffic: float, agents: int, b: float) -> float:
    if traffic >= agents:
        return 1.0
    return agents * b / (agents - traffic * (1.0 - b))


def erlang_c(traffic_erlangs: float, agents: int) -> float:
    """Probability of waiting in an M/M/n queue (Erlang C), from traffic in Erlangs.

    ``traffic_erlangs`` >= 0 (finite), ``agents`` >= 1. When ``traffic_erlangs >= agents`` the
    queue is unstable and every call eventually waits: returns 1.0 rather than raising.
    """
    traffic = _non_negative("traffic_erlangs", traffic_erlangs)
    n = _count("agents", agents, 1)
    return _erlang_c_from_b(traffic, n, _erlang_b(traffic, n))


def _c_metrics(
    traffic: float, agents: int, b: float, aht_s: float, answer_time_s: float
) -> ErlangCResult:
    if traffic >= agents:
        return ErlangCResult(
            traffic_erlangs=traffic,
            agents=agents,
            p_wait=1.0,
            asa_s=math.inf,
            service_level=0.0,
            answer_time_s=answer_time_s,
            occupancy=1.0,
            queue_length=math.inf,
        )
    p_wait = _erlang_c_from_b(traffic, agents, b)
    spare = agents - traffic
    # Waiting time given a wait is exponential with rate (n - E)/AHT.
    service_level = 1.0 - p_wait * math.exp(-spare * answer_time_s / aht_s)
    return ErlangCResult(
        traffic_erlangs=traffic,
        agents=agents,
        p_wait=p_wait,
        asa_s=p_wait * aht_s / spare,
        service_level=max(0.0, service_level),
        answer_time_s=answer_time_s,
        occupancy=traffic / agents,
        queue_length=p_wait * traffic / spare,
    )


def erlang_c_metrics(
    calls: float,
    aht_s: float,
    agents: int,
    interval_s: float = DEFAULT_INTERVAL_S,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
) -> ErlangCResult:
    """All Erlang C figures for ``agents`` agents facing ``calls`` calls per interval.

    Unstable systems (traffic >= agents) give ``p_wait=1``, ``asa_s=inf``,
    ``service_level=0``, ``occupancy=1`` and ``queue_length=inf`` instead of raising.
    """
    traffic = offered_load(calls, aht_s, interval_s)
    n = _count("agents", agents, 1)
    answer_time_s = _non_negative("answer_time_s", answer_time_s)
    return _c_metrics(traffic, n, _erlang_b(traffic, n), float(aht_s), answer_time_s)


def erlang_c_p_wait(
    calls: float, aht_s: float, agents: int, interval_s: float = DEFAULT_INTERVAL_S
) -> float:
    """Probability a call waits (Erlang C); 1.0 when traffic >= agents."""
    return erlang_c_metrics(calls, aht_s, agents, interval_s).p_wait


def erlang_c_asa(
    calls: float, aht_s: float, agents: int, interval_s: float = DEFAULT_INTERVAL_S
) -> float:
    """Average speed of answer in seconds (Erlang C): ``C * AHT / (n - E)``; inf if unstable."""
    return erlang_c_metrics(calls, aht_s, agents, interval_s).asa_s


def erlang_c_service_level(
    calls: float,
    aht_s: float,
    agents: int,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> float:
    """Fraction of calls answered within ``answer_time_s``: ``1 - C e^{-(n-E) t / AHT}``.

    0.0 when the system is unstable (traffic >= agents).
    """
    return erlang_c_metrics(calls, aht_s, agents, interval_s, answer_time_s).service_level


def erlang_c_occupancy(
    calls: float, aht_s: float, agents: int, interval_s: float = DEFAULT_INTERVAL_S
) -> float:
    """Agent occupancy ``E / n``, capped at 1.0 for unstable systems."""
    return erlang_c_metrics(calls, aht_s, agents, interval_s).occupancy


def erlang_c_queue_length(
    calls: float, aht_s: float, agents: int, interval_s: float = DEFAULT_INTERVAL_S
) -> float:
    """Time-average number of calls waiting: ``C * E / (n - E)``; inf if unstable."""
    return erlang_c_metrics(calls, aht_s, agents, interval_s).queue_length


def _staffing_targets(
    service_level: float | None,
    answer_time_s: float,
    max_asa_s: float | None,
    max_occupancy: float | None,
    shrinkage: float,
) -> tuple[float | None, float, float | None, float | None, float]:
    sl = (
        None
        if service_level is None
        else _open_probability("service_level", service_level, allow_zero=True, allow_one=False)
    )
    answer_time = _non_negative("answer_time_s", answer_time_s)
    asa = None if max_asa_s is None else _positive("max_asa_s", max_asa_s)
    occ = (
        None
        if max_occupancy is None
        else _open_probability("max_occupancy", max_occupancy, allow_zero=False, allow_one=True)
    )
    return sl, answer_time, asa, occ, _shrinkage(shrinkage)


def erlang_c_agents_needed(
    calls: float,
    aht_s: float,
    interval_s: float = DEFAULT_INTERVAL_S,
    *,
    service_level: float | None = None,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
    max_asa_s: float | None = None,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
) -> StaffingResult:
    """Fewest agents meeting every given target under Erlang C.

    Targets (at least one of ``service_level`` / ``max_asa_s`` is required):
    ``service_level`` in [0, 1) answered within ``answer_time_s`` seconds (80/20 is
    ``service_level=0.8, answer_time_s=20``); ``max_asa_s`` > 0; optionally ``max_occupancy`` in
    (0, 1] as an extra ceiling. ``shrinkage`` in [0, 1) only grosses up ``scheduled_agents``.
    The answer is always a stable head count (> traffic). Zero calls need zero agents.
    """
    traffic = offered_load(calls, aht_s, interval_s)
    sl, answer_time, asa, occ, shrink = _staffing_targets(
        service_level, answer_time_s, max_asa_s, max_occupancy, shrinkage
    )
    if sl is None and asa is None:
        raise ValueError("give at least one target: service_level or max_asa_s")
    aht = float(aht_s)
    if traffic == 0:
        return StaffingResult("erlang_c", 0, 0, 0.0, 0.0, 0.0, 0.0, 1.0, answer_time, 0.0, 0.0)

    n = math.floor(traffic) + 1  # first stable head count
    b = _erlang_b(traffic, n)
    # The hot loop of every forecast-to-schedule run: figures are computed inline (the same
    # expressions as _c_metrics) and the recursion advances one agent per step.
    while True:
        spare = n - traffic
        p_wait = n * b / (n - traffic * (1.0 - b))
        if (
            (sl is None or 1.0 - p_wait * math.exp(-spare * answer_time / aht) >= sl)
            and (asa is None or p_wait * aht / spare <= asa)
            and (occ is None or traffic / n <= occ)
        ):
            break
        n += 1
        eb = traffic * b
        b = eb / (n + eb)
    return StaffingResult(
        model="erlang_c",
        agents=n,
        scheduled_agents=_scheduled(n, shrink),
        traffic_erlangs=traffic,
        p_wait=p_wait,
        p_abandon=0.0,
        asa_s=p_wait * aht / spare,
        service_level=max(0.0, 1.0 - p_wait * math.exp(-spare * answer_time / aht)),
        answer_time_s=answer_time,
        occupancy=traffic / n,
        queue_length=p_wait * traffic / spare,
    )


# --------------------------------------------------------------------------------------------
# Erlang A
# --------------------------------------------------------------------------------------------


def _erlang_a_core(
    traffic: float, aht_s: float, patience_s: float, agents: int, answer_time_s: float | None
) -> ErlangAResult:
    """Erlang A for ``traffic`` Erlangs, handle time ``aht_s``, mean patience ``patience_s``.

    Requires traffic > 0, aht_s > 0, patience_s > 0 (all finite), agents >= 1,
    answer_time_s >= 0 or None. Rates are per second: lam = traffic/aht, mu = 1/aht,
    theta = 1/patience. ``answer_time_s=None`` skips the service level (reported as NaN), which
    the staffing search uses when no service-level target is set: it is the costliest part.
    """
    n = agents
    mu = 1.0 / aht_s
    lam = traffic * mu
    theta = 1.0 / patience_s
    n_mu = n * mu

    # The service level needs the negative-binomial cdf I_u(x + 1, k + 1), x = n mu / theta,
    # u = exp(-theta t), whose pmf obeys t_k = t_{k-1} (1 - u) (x + k) / k from t_0 = u^(x+1).
    # t_0 can underflow (large n mu t) while later terms are not negligible, so the pmf is
    # carried as a logarithm until it is representable, then as a float.
    t_answer = 0.0 if answer_time_s is None else answer_time_s
    track_fast = t_answer > 0
    nb_shape = n_mu / theta + 1.0
    one_minus_u = 0.0
    log_one_minus_u = 0.0
    nb_log_term = 0.0
    nb_term = 0.0
    nb_cdf = 1.0  # with t = 0 (or no service level) nobody is answered "within t" from queue
    nb_in_log = False
    if track_fast:
        u = math.exp(-theta * t_answer)
        one_minus_u = -math.expm1(-theta * t_answer)
        log_one_minus_u = math.log(one_minus_u) if u < 1.0 else -math.inf
        nb_log_term = -(n_mu + theta) * t_answer  # log of u**(x + 1)
        nb_in_log = nb_log_term <= -700.0
        nb_term = 0.0 if nb_in_log else math.exp(nb_log_term)
        nb_cdf = nb_term
        if u >= 1.0:  # t so small that exp(-theta t) rounds to 1: same as t = 0
            nb_cdf = 1.0

    # Queue states n+k, k >= 0, as weights relative to state n: w_k = prod_{i<=k} lam/(n mu + i th).
    w = 1.0
    log_scale = 0.0  # the weights are w * exp(log_scale)
    s_queue = 0.0  # sum of w_k                    (= GMR's A(x, y), scaled)
    s_abandon = 0.0  # sum of w_k * P(abandon | k)
    s_answered_wait = 0.0  # sum of w_k * E[wait; answered | k]
    s_fast = 0.0  # sum of w_k * P(answered within t | k)
    harmonic = 0.0  # sum_{i=1}^{k+1} 1 / (n mu + i theta)

    k = 0
    while True:
        rate_next = n_mu + (k + 1) * theta
        harmonic += 1.0 / rate_next
        p_answered = n_mu / rate_next
        s_queue += w
        s_abandon += w * ((k + 1) * theta / rate_next)
        s_answered_wait += w * p_answered * harmonic
        if nb_cdf < 1.0:
            s_fast += w * p_answered * (1.0 - nb_cdf)

        ratio = lam / rate_next  # w_{k+1} / w_k
        w *= ratio
        # Past the mode the ratios fall, so the tail after w_{k+1} is below w_{k+1}/(1 - ratio).
        if ratio < 1.0 and w <= _SERIES_TOLERANCE * s_queue * (1.0 - ratio):
            break
        if w > _RESCALE_ABOVE:
            w /= _RESCALE_ABOVE
            s_queue /= _RESCALE_ABOVE
            s_abandon /= _RESCALE_ABOVE
            s_answered_wait /= _RESCALE_ABOVE
            s_fast /= _RESCALE_ABOVE
            log_scale += math.log(_RESCALE_ABOVE)
        k += 1
        if k > _MAX_QUEUE_TERMS:
            raise ValueError(
                "Erlang A queue distribution is too wide to sum (overloaded system with "
                "near-infinite patience); use Erlang C or a fluid approximation"
            )
        if nb_cdf < 1.0:
            if nb_in_log:
                nb_log_term += log_one_minus_u + math.log((nb_shape + k - 1) / k)
                if nb_log_term > -700.0:
                    nb_in_log = False
                    nb_term = math.exp(nb_log_term)
                    nb_cdf += nb_term
            else:
                nb_term *= one_minus_u * (nb_shape + k - 1) / k
                nb_cdf += nb_term

    # States below n, relative to state n: sum_{j<n} pi_j / pi_n = (1 - B) / B.
    log_b = _log_erlang_b(traffic, n)
    log_below = math.log1p(-math.exp(log_b)) - log_b if log_b < 0 else -math.inf
    log_queue = math.log(s_queue) + log_scale
    log_total = max(log_below, log_queue)
    log_total += math.log(math.exp(log_below - log_total) + math.exp(log_queue - log_total))
    # Probability mass of all-busy states, divided by s_queue, so each scaled sum -> probability.
    per_unit = math.exp(log_queue - log_total) / s_queue

    p_wait = s_queue * per_unit
    p_abandon = s_abandon * per_unit
    answered_wait = s_answered_wait * per_unit  # E[wait; answered]
    p_fast = s_fast * per_unit if answer_time_s is not None else math.nan
    p_answered = 1.0 - p_abandon
    asa = answered_wait / p_answered if p_answered > 0 else math.inf
    mean_wait = p_abandon / theta  # Little: lam * P(ab) = theta * Lq, Lq = lam * E[W]
    return ErlangAResult(
        traffic_erlangs=traffic,
        agents=n,
        patience_s=patience_s,
        p_wait=min(1.0, p_wait),
        p_abandon=min(1.0, p_abandon),
        asa_s=asa,
        mean_wait_s=mean_wait,
        service_level=math.nan if answer_time_s is None else min(1.0, (1.0 - p_wait) + p_fast),
        answer_time_s=math.nan if answer_time_s is None else answer_time_s,
        occupancy=min(1.0, traffic * p_answered / n),
        queue_length=lam * mean_wait,
    )


def erlang_a(
    calls: float,
    aht_s: float,
    patience_s: float,
    agents: int,
    interval_s: float = DEFAULT_INTERVAL_S,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
) -> ErlangAResult:
    """All Erlang A (M/M/n+M) figures: ``calls`` per interval, exponential patience.

    ``patience_s`` > 0 is the callers' mean patience in seconds; ``math.inf`` means nobody
    abandons and the figures are Erlang C's (then unstable systems give ``p_wait=1``,
    ``asa_s=inf``). With finite patience the system is stable at any load, even 1 agent.
    ``agents`` >= 1. See the module docstring for the method and the service-level definition.
    """
    traffic = offered_load(calls, aht_s, interval_s)
    n = _count("agents", agents, 1)
    patience = _patience(patience_s)
    answer_time = _non_negative("answer_time_s", answer_time_s)
    aht = float(aht_s)
    if math.isinf(patience):
        c = _c_metrics(traffic, n, _erlang_b(traffic, n), aht, answer_time)
        return ErlangAResult(
            traffic_erlangs=traffic,
            agents=n,
            patience_s=math.inf,
            p_wait=c.p_wait,
            p_abandon=0.0,
            asa_s=c.asa_s,
            mean_wait_s=c.asa_s,
            service_level=c.service_level,
            answer_time_s=answer_time,
            occupancy=c.occupancy,
            queue_length=c.queue_length,
        )
    if traffic == 0:
        return ErlangAResult(traffic, n, patience, 0.0, 0.0, 0.0, 0.0, 1.0, answer_time, 0.0, 0.0)
    return _erlang_a_core(traffic, aht, patience, n, answer_time)


def erlang_a_p_wait(
    calls: float,
    aht_s: float,
    patience_s: float,
    agents: int,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> float:
    """Probability a call has to queue under Erlang A."""
    return erlang_a(calls, aht_s, patience_s, agents, interval_s).p_wait


def erlang_a_p_abandon(
    calls: float,
    aht_s: float,
    patience_s: float,
    agents: int,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> float:
    """Probability a call abandons before an answer under Erlang A."""
    return erlang_a(calls, aht_s, patience_s, agents, interval_s).p_abandon


def erlang_a_asa(
    calls: float,
    aht_s: float,
    patience_s: float,
    agents: int,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> float:
    """Average speed of answer (mean wait of answered calls) in seconds under Erlang A."""
    return erlang_a(calls, aht_s, patience_s, agents, interval_s).asa_s


def erlang_a_service_level(
    calls: float,
    aht_s: float,
    patience_s: float,
    agents: int,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> float:
    """Fraction of offered calls answered within ``answer_time_s`` under Erlang A.

    Abandoned calls count as misses whenever they hang up.
    """
    return erlang_a(calls, aht_s, patience_s, agents, interval_s, answer_time_s).service_level


def erlang_a_agents_needed(
    calls: float,
    aht_s: float,
    patience_s: float,
    interval_s: float = DEFAULT_INTERVAL_S,
    *,
    max_abandon: float | None = None,
    service_level: float | None = None,
    answer_time_s: float = DEFAULT_ANSWER_TIME_S,
    max_asa_s: float | None = None,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
) -> StaffingResult:
    """Fewest agents meeting every given target under Erlang A (M/M/n+M).

    Targets (at least one of ``max_abandon`` / ``service_level`` / ``max_asa_s``):
    ``max_abandon`` in (0, 1] is the highest acceptable probability of abandonment;
    ``service_level`` in [0, 1) answered within ``answer_time_s`` (abandons count as misses);
    ``max_asa_s`` > 0 is the highest acceptable mean wait of answered calls; ``max_occupancy``
    in (0, 1] an extra ceiling. ``shrinkage`` in [0, 1) grosses up ``scheduled_agents``.
    ``patience_s`` may be ``math.inf`` (no abandonment, i.e. Erlang C staffing, in which case
    ``max_abandon`` is trivially met). Zero calls need zero agents.
    """
    sl, answer_time, asa, occ, shrink = _staffing_targets(
        service_level, answer_time_s, max_asa_s, max_occupancy, shrinkage
    )
    ab = (
        None
        if max_abandon is None
        else _open_probability("max_abandon", max_abandon, allow_zero=False, allow_one=True)
    )
    if sl is None and asa is None and ab is None:
        raise ValueError("give at least one target: max_abandon, service_level or max_asa_s")
    traffic = offered_load(calls, aht_s, interval_s)
    patience = _patience(patience_s)
    if traffic == 0:
        return StaffingResult("erlang_a", 0, 0, 0.0, 0.0, 0.0, 0.0, 1.0, answer_time, 0.0, 0.0)

    aht = float(aht_s)
    infinite_patience = math.isinf(patience)
    # The costly service-level sum is only evaluated during the search when it is a target.
    search_answer_time = answer_time if sl is not None else None

    def evaluate(n: int, answer_time_s: float | None) -> ErlangAResult:
        if infinite_patience:
            return erlang_a(calls, aht_s, patience_s, n, interval_s, answer_time)
        return _erlang_a_core(traffic, aht, patience, n, answer_time_s)

    def meets(r: ErlangAResult) -> bool:
        return (
            (sl is None or r.service_level >= sl)
            and (asa is None or r.asa_s <= asa)
            and (ab is None or r.p_abandon <= ab)
            and (occ is None or r.occupancy <= occ)
            # With infinite patience (Erlang C) an unstable head count meets nothing.
            and math.isfinite(r.asa_s)
        )

    # Known failures give the search a floor. Answered calls cannot exceed the agents'
    # capacity, so P(abandon) >= 1 - n/E and the service level <= n/E: any n below
    # E(1 - max_abandon) or E * service_level fails. Without abandonment n <= E is unstable.
    lo = 0  # the largest head count known to fail (0 is a sentinel, never evaluated)
    if ab is not None:
        lo = max(lo, math.ceil(traffic * (1.0 - ab)) - 1)
    if sl is not None:
        lo = max(lo, math.ceil(traffic * sl) - 1)
    if infinite_patience:
        lo = max(lo, math.floor(traffic))
    # Gallop up from the floor (the answer is usually within a few sqrt(E) of it), then bisect:
    # O(log sqrt E) evaluations of O(n + queue states) each.
    step = max(1, math.isqrt(math.ceil(traffic)) // 2)
    limit = 16 * (math.ceil(traffic) + 64)  # far beyond any sane target; guards a bad loop
    hi = lo + step
    best = evaluate(hi, search_answer_time)
    while not meets(best):
        lo = hi
        step *= 2
        hi = lo + step
        if hi > limit:
            raise ValueError("targets cannot be met by any head count (are they too strict?)")
        best = evaluate(hi, search_answer_time)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = evaluate(mid, search_answer_time)
        if meets(r):
            hi, best = mid, r
        else:
            lo = mid
    if search_answer_time is None:
        best = evaluate(hi, answer_time)  # fill in the service level for the report
    return StaffingResult(
        model="erlang_a",
        agents=hi,
        scheduled_agents=_scheduled(hi, shrink),
        traffic_erlangs=traffic,
        p_wait=best.p_wait,
        p_abandon=best.p_abandon,
        asa_s=best.asa_s,
        service_level=best.service_level,
        answer_time_s=answer_time,
        occupancy=best.occupancy,
        queue_length=best.queue_length,
    )
