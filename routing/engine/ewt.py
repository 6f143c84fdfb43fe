"""Estimated wait time (EWT): real-time delay estimators fed by queue events, and a replay driver.

Every estimator follows one small interface and reads no clock; the time is passed in::

    est = make_estimator("blend")
    est.on_enter(call_id, t, priority)       # a call joins the queue
    est.on_service_start(call_id, t)         # an agent answers it
    est.on_abandon(call_id, t)               # the caller hangs up while queued
    est.on_service_end(call_id, t)           # the agent finishes it (frees capacity)
    est.estimate(call_id_or_position, t)     # -> Estimate(seconds, low, high)

``estimate`` takes either the id of a queued call or an integer position (the number of calls
ahead, 0 meaning next in line; a position is assumed to be a priority-0 caller). The estimate
is the caller's *potential* wait from ``t``: how much longer it would wait if it never hung up.
For a new arrival that is the whole wait. ``low``/``high`` bound an 80% prediction interval.

The estimators (see ``ESTIMATORS`` for the registry):

* ``ql``: queue length, (k + 1) / (s mu): k calls ahead, s busy agents, mu the service rate.
  The conditional mean of the wait in M/M/s without abandonment (Whitt 1999).
* ``ql-m``: the M/M/s+M refinement sum_{i=0..k} 1 / (s mu + i theta): callers ahead abandon at
  rate theta each, estimated online as abandonments per second of waiting (the censored-data
  MLE of exponential patience): the conditional mean under M/M/s+M (Ibrahim & Whitt 2009).
* ``ql-mp``: ``ql-m`` plus the callers expected to overtake this one: priority customers get a
  head start (90 s at the bank), so a regular caller is passed by priority callers who arrive
  within the head start after it. Solved as a small fixed point on the expected wait.
* ``hol``: head-of-line, the time the caller at the head of the queue has waited so far.
* ``les``: last-to-enter-service, the wait of the most recent caller to reach an agent.
* ``avg-les``: the mean wait of the last 10 callers to reach an agent.
* ``blend`` (ours): ``ql-mp`` corrected online by a weighted recursive-least-squares regression
  (with forgetting, memory of a few thousand calls) of realised waits on (1/s, ``ql``,
  ``ql-mp``), one regression per staffing band (<= 2, 3-9, 10-29, 30+ busy agents). Why: the
  queue-length estimators react instantly and use the staffing, but carry the bias of their
  model (exponential service, the patience and overtaking estimates); the regression learns that
  bias per staffing band from the calls just answered and can lean on plain ``ql`` when the
  abandonment term misleads. Realised waits are only seen for answered calls, and long
  potential waits are the ones cut short by abandonment, so each answered call is weighted by
  the inverse of its probability of having stayed, exp(theta w) (capped at 20): inverse
  probability weighting under exponential patience, which removes that selection bias. It
  starts as ``ql-mp`` and falls back to it when the fit strays. Delay-history features (HOL,
  LES, position-scaled history, elapsed service ages) were tried in the regression and earned
  no weight in simulation (docs/decisions/0006-erlang-and-ewt.md).
* ``adaptive`` (ours, best in every benchmark scenario): ``ql-mp`` plus what an online least
  squares fit of the *potential* wait has learned. Three things make it work where ``blend``
  did not. (1) Labels for every queued caller, not only the answered: a caller who hangs up is
  followed as a ghost holding its place, and its potential wait ends, as observed later in the
  stream, when a caller queued behind it is answered (it would have been answered first) or
  when an agent frees with nobody queued; no selection bias, no inverse-probability weights.
  (2) Features (in mean service times): 1, 1/s, ``ql``, ``ql-m``, ``ql-mp``, priority,
  priority x ``ql-mp`` and the expected time to the first departure T1 given how long each
  call in service has lasted (a log-normal fitted to completed services; under a log-normal a
  call that has lasted long tends to go on), with T1/s and T1 x calls ahead: small teams wait
  mostly for the residual of the calls in progress. The fit is ridge least squares on
  forgotten sufficient statistics (memory ~20,000 callers), re-solved every 20 labels.
  (3) Stacking: the fit's departure from ``ql-mp`` counts only as far as it has paid off out of
  sample (a one-coefficient regression of y - ``ql-mp`` on fitted - ``ql-mp``, starting at 0),
  so on a queue where ``ql-mp`` is already the conditional mean (M/M/s+M) the fit's noise is
  not added. Its observer keeps 4,000 calls of memory instead of 500 (steadier service and
  patience estimates). Interval: the rolling ratio quantiles, fed by ghosts' waits too.

Common ground for all of them: an arrival with nobody ahead while an agent looks free is told 0.
The number of agents is not in a call log, so it is inferred from the calls in service: when a
caller who waited is answered, every agent is busy, so the busy count is the staffing then
(raised by any larger busy count since); after 15 minutes without such a moment, the largest
number of calls in service at once during the last 15 minutes. The mean service time is a
forgetting average of completed services (prior 180 s). Prediction intervals: until 50 calls answered after waiting, a gamma(k + 1) interval
around the point estimate; then the 10% and 90% quantiles of the last 500 ratios
actual / predicted (a rolling split-conformal interval).

Replay: :func:`replay` drives one estimator per queue through a call log in time order and
yields each call's prediction at the moment it entered the queue.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from routing.engine.calllog import CallRecord

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "Estimator",
    "Prediction",
    "QueueObserver",
    "make_estimator",
    "replay",
]

_Z80 = 1.2815515655446004  # standard normal 90% quantile: an 80% two-sided interval
_AGENTS_WINDOW_S = 900.0
_PRIOR_SERVICE_S = 180.0
_PRIOR_PATIENCE_S = 600.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """A wait estimate in seconds with an 80% prediction interval ``low <= seconds <= high``."""

    seconds: float
    low: float
    high: float


# ---------------------------------------------------------------------------------------------
# Observable state of one queue
# ---------------------------------------------------------------------------------------------


class _SlidingMax:
    """Maximum of a step function over a trailing time window (monotone deque)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, int]] = deque()  # (since, value), values decreasing
        self._current = 0

    def set(self, t: float, value: int) -> None:
        self._current = value
        while self._points and self._points[-1][1] <= value:
            self._points.pop()
        self._points.append((t, value))

    def max(self, t: float) -> int:
        # A value set at `since` holds until the next set, so it counts while the next point is
        # inside the window; dropping points whose successor is older than the window is exact
        # enough for an agent count.
        horizon = t - self.window_s
        while len(self._points) > 1 and self._points[1][0] <= horizon:
            self._points.popleft()
        return max(self._points[0][1], self._current) if self._points else self._current


class QueueObserver:
    """What can be known about one queue from its events: the shared state of the estimators.

    Contract: events for one call arrive in order (enter, then start or abandon, then end) with
    non-decreasing times; unknown call ids in later events are ignored, so a replay that starts
    mid-stream is safe.
    """

    def __init__(
        self,
        *,
        head_start_s: float = 90.0,
        prior_service_s: float = _PRIOR_SERVICE_S,
        prior_patience_s: float = _PRIOR_PATIENCE_S,
        memory_calls: int = 500,
        rate_window_s: float = 1800.0,
    ) -> None:
        self.head_start_s = head_start_s
        self._queue: list[tuple[float, int, str]] = []  # (priority key, seq, call_id), sorted
        self._entries: dict[str, tuple[float, int, float, int]] = {}  # id -> key, seq, t, prio
        self._seq = 0
        self.in_service: dict[str, float] = {}
        self._agents = _SlidingMax(_AGENTS_WINDOW_S)
        # Forgetting averages: weight 1 per observation, decayed by `keep` per observation.
        self._keep = 1.0 - 1.0 / memory_calls
        self._service_sum = prior_service_s * 5.0
        self._service_n = 5.0
        self._abandons = 1.0
        self._exposure = prior_patience_s  # seconds of waiting observed
        self.les: deque[tuple[float, float, int, int]] = deque(maxlen=50)  # t, wait, ahead, prio
        # Arrival rate per priority, exponentially decayed counts over rate_window_s.
        self._rate_tau = rate_window_s
        self._rate_counts: dict[int, float] = {}
        self._rate_t = math.nan
        self._first_t = math.nan
        self.ahead_at_entry: dict[str, int] = {}
        # Agents on shift are all busy whenever someone had to wait, so the busy count when a
        # waiting call is answered is the staffing at that moment; more busy since then means
        # more staff. Past a quiet spell of _AGENTS_WINDOW_S the recent peak is used instead.
        self._known_at = -math.inf
        self._known_agents = 0

    # -- events --------------------------------------------------------------------------------

    def enter(self, call_id: str, t: float, priority: int) -> None:
        if call_id in self._entries:
            return
        self._decay_rates(t)
        self._rate_counts[priority] = self._rate_counts.get(priority, 0.0) + 1.0
        key = t - self.head_start_s * priority
        self._seq += 1
        item = (key, self._seq, call_id)
        bisect.insort(self._queue, item)
        self._entries[call_id] = (key, self._seq, t, priority)
        self.ahead_at_entry[call_id] = bisect.bisect_left(self._queue, item)

    def _leave(self, call_id: str, t: float) -> tuple[float, int, int] | None:
        """Remove a queued call; returns (wait, ahead at entry, priority) or None if unknown."""
        entry = self._entries.pop(call_id, None)
        if entry is None:
            return None
        key, seq, entered, priority = entry
        i = bisect.bisect_left(self._queue, (key, seq, call_id))
        if i < len(self._queue) and self._queue[i][2] == call_id:
            del self._queue[i]
        wait = max(0.0, t - entered)
        self._exposure = self._exposure * self._keep + wait
        self._abandons *= self._keep
        return wait, self.ahead_at_entry.pop(call_id, 0), priority

    def start(self, call_id: str, t: float) -> tuple[float, int, int] | None:
        """An agent answers a queued call; returns (wait, ahead at entry, priority)."""
        left = self._leave(call_id, t)
        if left is None:
            return None
        self.in_service[call_id] = t
        busy = len(self.in_service)
        self._agents.set(t, busy)
        if left[0] > 0:
            self._known_at, self._known_agents = t, busy
        else:
            self._known_agents = max(self._known_agents, busy)
        self.les.append((t, left[0], left[1], left[2]))
        return left

    def abandon(self, call_id: str, t: float) -> tuple[float, int, int] | None:
        left = self._leave(call_id, t)
        if left is not None:
            self._abandons += 1.0
        return left

    def leave(self, call_id: str, t: float) -> None:
        """A queued call leaves unanswered without abandoning (moved to another queue)."""
        self._leave(call_id, t)

    def end(self, call_id: str, t: float) -> None:
        started = self.in_service.pop(call_id, None)
        if started is None:
            return
        self._service_sum = self._service_sum * self._keep + (t - started)
        self._service_n = self._service_n * self._keep + 1.0
        self._agents.set(t, len(self.in_service))

    # -- derived quantities ----------------------------------------------------------------------

    def _decay_rates(self, t: float) -> None:
        if math.isnan(self._rate_t):
            self._rate_t = self._first_t = t
            return
        if t > self._rate_t:
            factor = math.exp(-(t - self._rate_t) / self._rate_tau)
            for p in self._rate_counts:
                self._rate_counts[p] *= factor
            self._rate_t = t

    def arrival_rate(self, priority: int, t: float) -> float:
        """Recent arrivals per second of this priority (decayed count / effective window)."""
        count = self._rate_counts.get(priority, 0.0)
        if count == 0.0:
            return 0.0
        count *= math.exp(-max(0.0, t - self._rate_t) / self._rate_tau)
        span = max(t - self._first_t, 60.0)  # the window is short right after the start
        return count / (self._rate_tau * -math.expm1(-span / self._rate_tau))

    def priorities(self) -> Iterable[int]:
        return self._rate_counts.keys()

    @property
    def busy(self) -> int:
        return len(self.in_service)

    def agents(self, t: float) -> int:
        """Inferred agents on shift (see ``__init__``): the busy count when a waiting call was
        last answered, raised by any larger busy count since; after 15 minutes without such an
        answer, the most calls in service at once in the last 15 minutes."""
        # At least one: before any evidence, an arrival to an idle queue is assumed answered.
        if t - self._known_at <= _AGENTS_WINDOW_S:
            return max(1, self._known_agents, len(self.in_service))
        return max(1, self._agents.max(t), len(self.in_service))

    @property
    def mean_service_s(self) -> float:
        return self._service_sum / self._service_n

    @property
    def abandon_rate(self) -> float:
        """theta: abandonments per second of waiting (MLE of exponential patience, censored)."""
        return self._abandons / max(self._exposure, 1e-9)

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    def position(self, call_id: str) -> int | None:
        """Calls ahead of a queued call (0 = next), or None if it is not queued."""
        entry = self._entries.get(call_id)
        if entry is None:
            return None
        key, seq, _t, _p = entry
        return bisect.bisect_left(self._queue, (key, seq, call_id))

    def priority_of(self, call_id: str) -> int:
        entry = self._entries.get(call_id)
        return 0 if entry is None else entry[3]

    def head_wait(self, t: float, exclude: str | None = None) -> float | None:
        """How long the caller at the head of the queue has waited so far (not ``exclude``)."""
        for _key, _seq, call_id in self._queue[:2]:
            if call_id != exclude:
                return max(0.0, t - self._entries[call_id][2])
        return None


# ---------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------


class _RatioCalibrator:
    """Rolling split-conformal interval: quantiles of actual/predicted over recent calls."""

    def __init__(self, size: int = 500, warmup: int = 50) -> None:
        self._window: deque[float] = deque()
        self._sorted: list[float] = []
        self._size = size
        self._warmup = warmup

    def add(self, ratio: float) -> None:
        self._window.append(ratio)
        bisect.insort(self._sorted, ratio)
        if len(self._window) > self._size:
            old = self._window.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def interval(self, seconds: float, shape: float) -> tuple[float, float]:
        if len(self._sorted) >= self._warmup:
            n = len(self._sorted)
            return seconds * self._sorted[int(0.1 * (n - 1))], seconds * self._sorted[
                int(math.ceil(0.9 * (n - 1)))
            ]
        return _gamma_interval(seconds, shape)


def _gamma_interval(mean: float, shape: float) -> tuple[float, float]:
    """10% and 90% quantiles of a gamma with this mean and shape (Wilson-Hilferty)."""
    c = 1.0 / (9.0 * shape)
    root = math.sqrt(c)
    low = mean * max(0.0, 1.0 - c - _Z80 * root) ** 3
    high = mean * (1.0 - c + _Z80 * root) ** 3
    return low, high


def _digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to x >= 6, then the asymptotic series (error < 1e-13)."""
    shift = 0.0
    while x < 6.0:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return shift + math.log(x) - 0.5 / x - series


def _reciprocal_sum(capacity: float, theta: float, k: int) -> float:
    """sum_{i=0}^{k} 1/(capacity + i theta): a loop for short queues, else digammas.

    The closed form (psi(a + k + 1) - psi(a)) / theta, a = capacity/theta, keeps a 100k-call
    replay of a long queue linear; a loop is exact and as cheap for the first few dozen terms.
    """
    if theta <= 0.0:
        return (k + 1) / capacity
    if k < 48:
        total = 0.0
        for i in range(k + 1):
            total += 1.0 / (capacity + i * theta)
        return total
    a = capacity / theta
    return (_digamma(a + k + 1) - _digamma(a)) / theta


class Estimator(ABC):
    """Base of all estimators: event plumbing, the free-agent rule and prediction intervals.

    Subclasses implement :meth:`_predict`. Instances hold the state of one queue; they are not
    thread-safe (the router is the single writer of queue state).
    """

    name: str = ""
    description: str = ""

    def __init__(self, *, head_start_s: float = 90.0) -> None:
        self.observer = QueueObserver(head_start_s=head_start_s)
        self._calibrator = _RatioCalibrator()
        self._issued: dict[str, float] = {}  # call -> first estimate given at queue entry

    # -- events --------------------------------------------------------------------------------

    def on_enter(self, call_id: str, t: float, priority: int = 0) -> None:
        """A call joins the queue at ``t`` with ``priority`` (0 = regular, higher = sooner)."""
        self.observer.enter(call_id, t, priority)

    def on_service_start(self, call_id: str, t: float) -> None:
        """An agent answers ``call_id`` at ``t``."""
        left = self.observer.start(call_id, t)
        issued = self._issued.pop(call_id, None)
        if left is None:
            return
        wait = left[0]
        if issued is not None and issued > 0 and wait > 0:
            self._calibrator.add(wait / issued)
        self._learn(call_id, wait, left[1])

    def on_abandon(self, call_id: str, t: float) -> None:
        """The caller of ``call_id`` hangs up while queued at ``t``."""
        self._issued.pop(call_id, None)
        self.observer.abandon(call_id, t)
        self._forget(call_id)

    def on_leave(self, call_id: str, t: float) -> None:
        """``call_id`` leaves the queue at ``t`` neither answered nor abandoned (the router
        moved it to another queue or handed it off): its wait so far counts as exposure, but it
        is not an abandonment and teaches no realised wait."""
        self._issued.pop(call_id, None)
        self.observer.leave(call_id, t)
        self._forget(call_id)

    def on_service_end(self, call_id: str, t: float) -> None:
        """The agent finishes ``call_id`` at ``t``: its capacity is free again."""
        self.observer.end(call_id, t)

    # -- estimates -----------------------------------------------------------------------------

    def estimate(self, who: str | int, t: float) -> Estimate:
        """Expected remaining (potential) wait from ``t`` for a queued call id or a position.

        A position is the number of calls ahead (>= 0) for a hypothetical regular caller.
        An unknown call id is treated as a new caller at the back of the queue.
        """
        obs = self.observer
        call_id: str | None
        if type(who) is str:
            # The router's case (a queued call's id): one lookup for position and priority.
            entry = obs._entries.get(who)
            if entry is None:
                ahead, priority, call_id = len(obs._queue), 0, None
            else:
                ahead = bisect.bisect_left(obs._queue, (entry[0], entry[1], who))
                priority, call_id = entry[3], who
        elif isinstance(who, bool):
            raise ValueError("give a call id or a position, not a bool")
        elif isinstance(who, int):
            if who < 0:
                raise ValueError("position must be >= 0")
            ahead, priority, call_id = who, 0, None
        else:
            position = obs.position(who)
            call_id = who
            if position is None:
                ahead, priority, call_id = obs.queue_length, 0, None
            else:
                ahead, priority = position, obs.priority_of(who)
        if ahead == 0 and obs.busy < obs.agents(t):
            result = Estimate(0.0, 0.0, 0.0)
        else:
            seconds = max(0.0, self._predict(call_id, ahead, priority, t))
            low, high = self._calibrator.interval(seconds, ahead + 1.0)
            result = Estimate(seconds, min(low, seconds), max(high, seconds))
        if call_id is not None and call_id not in self._issued:
            self._issued[call_id] = result.seconds
        return result

    @abstractmethod
    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        """Point estimate in seconds for a caller with ``ahead`` calls ahead, all agents busy."""

    # Hooks for learning estimators.
    def _learn(self, call_id: str, wait: float, ahead_at_entry: int) -> None:  # noqa: B027
        """Called when a call is answered after ``wait`` seconds (no-op by default)."""

    def _forget(self, call_id: str) -> None:  # noqa: B027
        """Called when a call abandons (no-op by default)."""

    # -- shared building blocks ----------------------------------------------------------------

    def _capacity(self) -> float:
        """Departure rate from the queue per second when all agents are busy: s * mu."""
        obs = self.observer
        return max(1, obs.busy) / obs.mean_service_s

    def _qlm(self, ahead: float) -> float:
        """sum_{i=0}^{k} 1/(s mu + i theta), linearly interpolated for fractional k."""
        return self._qlm_at(self._capacity(), self.observer.abandon_rate, ahead)

    @staticmethod
    def _qlm_at(capacity: float, theta: float, ahead: float) -> float:
        whole = int(ahead)
        total = _reciprocal_sum(capacity, theta, whole)
        frac = ahead - whole
        if frac > 0:
            total += frac / (capacity + (whole + 1) * theta)
        return total

    def _qlmp(self, ahead: int, priority: int, t: float) -> float:
        """``_qlm`` with the callers of higher priority expected to overtake during the wait."""
        obs = self.observer
        higher = [p for p in obs.priorities() if p > priority]
        capacity = self._capacity()
        theta = obs.abandon_rate
        wait = self._qlm_at(capacity, theta, ahead)
        if not higher or obs.head_start_s <= 0:
            return wait
        # Nothing changes during the fixed point but `wait`: rates and head starts are hoisted
        # (the router asks this for every announcement, so it is on the hot path).
        overtakers = [(obs.arrival_rate(p, t), obs.head_start_s * (p - priority)) for p in higher]
        for _ in range(3):  # the fixed point converges in a couple of steps
            extra = 0.0
            for rate, head_start in overtakers:
                extra += rate * min(wait, head_start)
            new = self._qlm_at(capacity, theta, ahead + extra)
            if new == wait:
                break  # a fixed point: further rounds would return the same number
            wait = new
        return wait

    def _les_mean(self, count: int) -> float | None:
        history = self.observer.les
        if not history:
            return None
        recent = list(history)[-count:]
        return sum(w for _t, w, _a, _p in recent) / len(recent)


class QueueLength(Estimator):
    name = "ql"
    description = "queue length: (k + 1) / (s mu); the mean for M/M/s (Whitt 1999)"

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        return (ahead + 1) / self._capacity()


class QueueLengthMarkov(Estimator):
    name = "ql-m"
    description = "M/M/s+M: sum_{i<=k} 1/(s mu + i theta), theta estimated online"

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        return self._qlm(ahead)


class QueueLengthMarkovPriority(Estimator):
    name = "ql-mp"
    description = "ql-m plus expected overtaking by priority callers (head start)"

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        return self._qlmp(ahead, priority, t)


class HeadOfLine(Estimator):
    name = "hol"
    description = "head of line: elapsed wait of the caller at the head of the queue"

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        head = self.observer.head_wait(t, exclude=call_id if ahead == 0 else None)
        if head is not None:
            return head
        last = self._les_mean(1)  # nobody else waits: the latest delay is the best history
        return last if last is not None else (ahead + 1) / self._capacity()


class LastToEnterService(Estimator):
    name = "les"
    description = "last to enter service: wait of the most recently answered caller"

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        last = self._les_mean(1)
        return last if last is not None else (ahead + 1) / self._capacity()


class AverageLes(Estimator):
    name = "avg-les"
    description = "mean wait of the last 10 callers to enter service"
    window = 10

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        mean = self._les_mean(self.window)
        return mean if mean is not None else (ahead + 1) / self._capacity()


class _WeightedRls:
    """Weighted recursive least squares with exponential forgetting (plain lists, small d)."""

    def __init__(self, start: list[float], prior_var: float, forget: float) -> None:
        d = len(start)
        self.coef = list(start)
        self._start = list(start)
        self._prior_var = prior_var
        self.cov = [[prior_var if i == j else 0.0 for j in range(d)] for i in range(d)]
        self.forget = forget

    def predict(self, x: list[float]) -> float:
        return sum(c * v for c, v in zip(self.coef, x, strict=True))

    def update(self, x: list[float], y: float, weight: float) -> None:
        d = len(x)
        px = [sum(self.cov[i][j] * x[j] for j in range(d)) for i in range(d)]
        denom = self.forget + weight * sum(x[i] * px[i] for i in range(d))
        if not denom > 0 or not math.isfinite(denom):
            return
        gain = [weight * v / denom for v in px]
        error = y - self.predict(x)
        self.coef = [c + g * error for c, g in zip(self.coef, gain, strict=True)]
        self.cov = [
            [(self.cov[i][j] - gain[i] * px[j]) / self.forget for j in range(d)] for i in range(d)
        ]
        if not all(math.isfinite(c) for c in self.coef) or self.cov[0][0] > 1e12:
            self.reset()

    def reset(self) -> None:
        d = len(self.coef)
        self.coef = list(self._start)
        self.cov = [[self._prior_var if i == j else 0.0 for j in range(d)] for i in range(d)]


class Blend(Estimator):
    name = "blend"
    description = (
        "ours: ql-mp corrected online by an IPW-weighted regression on (1/s, ql, ql-mp), "
        "one per staffing band"
    )
    # Staffing bands (busy agents): small teams and large ones err differently (the residual
    # service of a lone agent dominates a small team's wait; overtaking dominates a large one).
    bands = (2, 9, 29)
    max_weight = 20.0

    def __init__(self, *, head_start_s: float = 90.0, forget: float = 0.9997) -> None:
        super().__init__(head_start_s=head_start_s)
        # Features are in units of the mean service time, so one prior fits every queue. Each
        # band starts as pure ql-mp: coefficients on (1/s, ql, ql-mp) = (0, 0, 1).
        self._fits = [
            _WeightedRls([0.0, 0.0, 1.0], prior_var=0.05, forget=forget)
            for _ in range(len(self.bands) + 1)
        ]
        self._features: dict[str, tuple[int, list[float]]] = {}

    def _band(self, agents: int) -> int:
        for i, top in enumerate(self.bands):
            if agents <= top:
                return i
        return len(self.bands)

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        obs = self.observer
        scale = obs.mean_service_s
        agents = max(1, obs.busy)
        qlmp = self._qlmp(ahead, priority, t)
        x = [1.0 / agents, (ahead + 1) / self._capacity() / scale, qlmp / scale]
        band = self._band(agents)
        if call_id is not None and call_id not in self._features:
            self._features[call_id] = (band, x)
        guess = self._fits[band].predict(x) * scale
        # A regression can extrapolate wildly on an unusual queue; stay with the model then.
        if not (0.0 <= guess <= 4.0 * qlmp + 4.0 * scale):
            return qlmp
        return guess

    def _learn(self, call_id: str, wait: float, ahead_at_entry: int) -> None:
        features = self._features.pop(call_id, None)
        if features is None:
            return
        band, x = features
        # Inverse probability of having stayed this long under exponential patience: answered
        # calls stand in for the abandoned ones whose (longer) potential waits go unseen.
        weight = min(self.max_weight, math.exp(self.observer.abandon_rate * wait))
        self._fits[band].update(x, wait / self.observer.mean_service_s, weight)

    def _forget(self, call_id: str) -> None:
        self._features.pop(call_id, None)


class _DecayedLeastSquares:
    """Ridge least squares on exponentially forgotten sufficient statistics, re-solved every
    ``every`` updates. Unlike recursive least squares with forgetting, a direction the data stop
    exciting cannot wind up (the ridge toward ``start`` keeps every solve well posed).

    Forgetting without touching old terms: observation n is added with weight ``f ** -n`` and
    the statistics are divided by the newest weight when solved (rescaled now and then)."""

    def __init__(self, start: list[float], ridge: float, forget: float, every: int) -> None:
        d = len(start)
        self.coef = list(start)
        self._start = list(start)
        self._ridge = ridge
        self.forget = forget
        self._every = every
        self._pending = 0
        self._weight = 1.0  # weight of the newest observation
        self.xtx = [[0.0] * d for _ in range(d)]
        self.xty = [0.0] * d

    def predict(self, x: list[float]) -> float:
        total = 0.0
        for c, v in zip(self.coef, x, strict=True):
            total += c * v
        return total

    def update(self, x: list[float], y: float) -> None:
        if not math.isfinite(y + sum(x)):
            return  # one bad observation would poison the statistics for good
        w = self._weight = self._weight / self.forget
        xtx = self.xtx
        for i, xi in enumerate(x):
            wxi = w * xi
            xtx[i] = [r + wxi * xj for r, xj in zip(xtx[i], x, strict=True)]
        wy = w * y
        self.xty = [r + wy * xi for r, xi in zip(self.xty, x, strict=True)]
        if w > 1e100:
            self._rescale()
        self._pending += 1
        if self._pending >= self._every:
            self._pending = 0
            self.solve()

    def _rescale(self) -> None:
        inv = 1.0 / self._weight
        self.xtx = [[v * inv for v in row] for row in self.xtx]
        self.xty = [v * inv for v in self.xty]
        self._weight = 1.0

    def solve(self) -> None:
        """Gaussian elimination with partial pivoting on (X'X + ridge I) b = X'y + ridge start
        (X'X and X'y forgotten, in units of the newest observation's weight)."""
        d = len(self.coef)
        ridge = self._ridge
        inv = 1.0 / self._weight
        a = [
            [
                *(v * inv + (ridge if i == j else 0.0) for j, v in enumerate(row)),
                rhs * inv + ridge * s0,
            ]
            for i, (row, rhs, s0) in enumerate(zip(self.xtx, self.xty, self._start, strict=True))
        ]
        for col in range(d):
            pivot = max(range(col, d), key=lambda r: abs(a[r][col]))
            if not abs(a[pivot][col]) > 1e-12:
                return  # singular (not with a ridge > 0): keep the last solution
            a[col], a[pivot] = a[pivot], a[col]
            head = a[col]
            inv_head = 1.0 / head[col]
            for r in range(col + 1, d):
                row = a[r]
                factor = row[col] * inv_head
                if factor:
                    a[r] = [v - factor * h for v, h in zip(row, head, strict=True)]
        coef = [0.0] * d
        for i in range(d - 1, -1, -1):
            row = a[i]
            total = row[d]
            for j in range(i + 1, d):
                total -= row[j] * coef[j]
            coef[i] = total / row[i]
        if all(math.isfinite(c) for c in coef):
            self.coef = coef


class _LogNormalService:
    """Forgetting moments of log service times: a log-normal fit, for the residual service of
    the calls in progress (under a log-normal, a call that has lasted long tends to go on)."""

    def __init__(self, prior_mean_s: float, memory_calls: int) -> None:
        sigma2 = 1.0  # prior: log-normal with sigma 1 (the bank's 179 s / 109 s gives 0.99)
        mu = math.log(prior_mean_s) - sigma2 / 2
        self._keep = 1.0 - 1.0 / memory_calls
        self._n = 5.0
        self._sum = mu * 5.0
        self._sum2 = (sigma2 + mu * mu) * 5.0

    def add(self, seconds: float) -> None:
        if seconds > 0.5:  # sub-second calls are glitches, and log(0) is undefined
            v = math.log(seconds)
            k = self._keep
            self._n = self._n * k + 1.0
            self._sum = self._sum * k + v
            self._sum2 = self._sum2 * k + v * v

    def params(self) -> tuple[float, float]:
        """(mu, sigma * sqrt 2) of the fitted log-normal (sigma at least 0.1)."""
        mu = self._sum / self._n
        var = max(self._sum2 / self._n - mu * mu, 0.01)
        return mu, math.sqrt(2.0 * var)


# Where the survival of the calls in service is sampled (in mean service times) to integrate
# the expected time to the first departure (trapezoids; stops once the product is < 1e-4).
_FIRST_DEPARTURE_GRID = (
    0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0,
    4.0, 5.0, 7.0, 10.0,
)  # fmt: skip
_FIRST_DEPARTURE_MAX_AGENTS = 12  # beyond, 1 / (s mu): ages barely matter and cost s each
_ADAPTIVE_QLMP = 4  # index of ql-mp among the features (the model the fit starts from)
_TRUST_PRIOR = 5.0  # pseudo-weight (squared deviations, service-time units) of trust 0


class Adaptive(Estimator):
    name = "adaptive"
    description = (
        "ours: online least squares on every queued caller's potential wait (abandoners "
        "followed as ghosts) over ql, ql-m, ql-mp and the calls in service's ages"
    )

    def __init__(
        self,
        *,
        head_start_s: float = 90.0,
        memory_calls: int = 4000,
        forget: float = 0.99995,
        ridge: float = 10.0,
        trust_keep: float = 0.9999,
    ) -> None:
        super().__init__(head_start_s=head_start_s)
        # Longer memory than the other estimators' 500 calls: steadier service and patience
        # estimates (the regression, not the averages, follows shifts in the queue's behaviour).
        self.observer = QueueObserver(head_start_s=head_start_s, memory_calls=memory_calls)
        self._service = _LogNormalService(_PRIOR_SERVICE_S, memory_calls)
        start = [0.0] * 10
        start[_ADAPTIVE_QLMP] = 1.0
        self._fit = _DecayedLeastSquares(start, ridge=ridge, forget=forget, every=20)
        # call -> (features, fitted value) at its first estimate, until its wait is known
        self._features: dict[str, tuple[list[float], float]] = {}
        self._trust_keep = trust_keep
        self._trust_dd = 0.0
        self._trust_de = 0.0
        self._trust = 0.0
        # Callers who hung up, still holding their place: (priority key, seq, entered, issued,
        # call_id), sorted. A ghost's potential wait ends when a caller behind it is answered
        # (it would have been answered first) or when an agent frees with nobody queued.
        self._ghosts: list[tuple[float, int, float, float, str]] = []

    def _first_departure(self, t: float, scale: float) -> float:
        """Expected time until the first call in service ends, given how long each has lasted
        (log-normal fit); 1 / (s mu) beyond a dozen calls, where ages barely matter."""
        in_service = self.observer.in_service
        s = len(in_service)
        if s == 0 or s > _FIRST_DEPARTURE_MAX_AGENTS:
            return scale / max(1, s)
        mu, root = self._service.params()
        erfc, log = math.erfc, math.log
        calls = []
        for started in in_service.values():
            age = t - started
            base = erfc((log(age) - mu) / root) if age > 0 else 2.0
            if base > 0.0:  # a call past any fitted length says nothing: leave it out
                calls.append((age, 1.0 / base))
        total = 0.0
        prev_u, prev_p = 0.0, 1.0
        for g in _FIRST_DEPARTURE_GRID:
            u = g * scale
            p = 1.0
            for age, inv_base in calls:
                p *= erfc((log(age + u) - mu) / root) * inv_base
            total += 0.5 * (p + prev_p) * (u - prev_u)
            prev_u, prev_p = u, p
            if p < 1e-4:
                break
        return total

    def _features_of(self, ahead: int, priority: int, t: float) -> list[float]:
        """Regression inputs, waits in mean service times: 1, 1/s, ql, ql-m, ql-mp, priority,
        priority x ql-mp, first departure T1, T1/s, T1 x ahead."""
        obs = self.observer
        scale = obs.mean_service_s
        s = max(1, obs.busy)
        inv_s = 1.0 / s
        qlm = self._qlm_at(s / scale, obs.abandon_rate, ahead) / scale
        qlmp = self._qlmp(ahead, priority, t) / scale
        first = self._first_departure(t, scale) / scale
        prio = 1.0 if priority > 0 else 0.0
        return [
            1.0, inv_s, (ahead + 1) * inv_s, qlm, qlmp, prio, prio * qlmp,
            first, first * inv_s, first * ahead,
        ]  # fmt: skip

    def _predict(self, call_id: str | None, ahead: int, priority: int, t: float) -> float:
        x = self._features_of(ahead, priority, t)
        scale = self.observer.mean_service_s
        fitted = self._fit.predict(x)
        base = x[_ADAPTIVE_QLMP]
        if call_id is not None and call_id not in self._features:
            self._features[call_id] = (x, fitted)
        # The fit's departure from ql-mp counts as far as it has paid off out of sample.
        guess = (base + self._trust * (fitted - base)) * scale
        top = 4.0 * (base + 1.0) * scale
        if not 0.0 <= guess <= top:
            # An unusual queue can make a regression extrapolate: stay within reason.
            return min(max(guess, 0.0), top) if math.isfinite(guess) else base * scale
        return guess

    def _teach(self, call_id: str, wait: float) -> None:
        """``call_id``'s potential wait is known: fit it, and score the fit's prediction."""
        stored = self._features.pop(call_id, None)
        if stored is None:
            return
        x, fitted = stored
        y = wait / self.observer.mean_service_s
        self._fit.update(x, y)
        # Stacking: regress (y - ql-mp) on (fitted - ql-mp), both known before y was: the
        # trust the fit earned, 0 when its corrections are noise (as in M/M/s+M, where ql-mp is
        # the conditional mean), ~1 where the model is biased.
        base = x[_ADAPTIVE_QLMP]
        d, e = fitted - base, y - base
        k = self._trust_keep
        self._trust_dd = self._trust_dd * k + d * d
        self._trust_de = self._trust_de * k + d * e
        self._trust = min(max(self._trust_de / (self._trust_dd + _TRUST_PRIOR), 0.0), 1.5)

    def _learn(self, call_id: str, wait: float, ahead_at_entry: int) -> None:
        self._teach(call_id, wait)

    def _forget(self, call_id: str) -> None:
        self._features.pop(call_id, None)

    def _resolve(self, upto: tuple[float, int] | None, t: float) -> None:
        """End at ``t`` the potential waits of the ghosts ahead of ``upto`` (all if None)."""
        ghosts = self._ghosts
        n = 0
        for key, seq, entered, issued, call_id in ghosts:
            if upto is not None and (key, seq) >= upto:
                break
            n += 1
            wait = max(0.0, t - entered)
            if issued > 0 and wait > 0:
                self._calibrator.add(wait / issued)
            self._teach(call_id, wait)
        if n:
            del ghosts[:n]

    def on_service_start(self, call_id: str, t: float) -> None:
        entry = self.observer._entries.get(call_id)
        if entry is not None and self._ghosts:
            self._resolve((entry[0], entry[1]), t)
        super().on_service_start(call_id, t)

    def on_abandon(self, call_id: str, t: float) -> None:
        obs = self.observer
        entry = obs._entries.get(call_id)
        issued = self._issued.pop(call_id, None)
        obs.abandon(call_id, t)
        if entry is not None and call_id in self._features:
            bisect.insort(self._ghosts, (entry[0], entry[1], entry[2], issued or 0.0, call_id))
            if len(self._ghosts) > _MAX_GHOSTS:  # an agent never came: give up on the oldest
                self._features.pop(self._ghosts.pop(0)[4], None)

    def on_service_end(self, call_id: str, t: float) -> None:
        started = self.observer.in_service.get(call_id)
        if started is not None:
            self._service.add(t - started)
        super().on_service_end(call_id, t)
        if self._ghosts and not self.observer._queue:
            self._resolve(None, t)


_MAX_GHOSTS = 1000


ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls
    for cls in (
        QueueLength,
        QueueLengthMarkov,
        QueueLengthMarkovPriority,
        HeadOfLine,
        LastToEnterService,
        AverageLes,
        Blend,
        Adaptive,
    )
}


def make_estimator(name: str, **params: float) -> Estimator:
    """A new estimator by registry name; ``ValueError`` lists the names if unknown."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None
    return cls(**params)


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------

# Order of events stamped with the same instant: capacity frees before it is reused, callers
# leave before a newcomer looks at the queue. A call answered (or abandoning) at the very instant
# it entered is handled right after its own entry, before the next caller's, and a zero-length
# service ends right after it starts.
_END, _LEAVE, _ENTER = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Prediction:
    """One replayed call: the estimate it would have been given when it entered the queue."""

    record: CallRecord
    estimate: Estimate


def replay(
    records: Iterable[CallRecord], estimator_factory: Callable[[], Estimator]
) -> Iterator[Prediction]:
    """Drive one estimator per queue through ``records`` in time order.

    Yields, in queue-entry order, each call's estimate at its queue entry (made after every
    earlier event was applied and before its own outcome is known). Pure; O(events log events).
    """
    # (time, rank, record index, step within the call, kind, record)
    events: list[tuple[float, int, int, int, int, CallRecord]] = []
    for i, r in enumerate(records):
        events.append((r.queue_entered_at, _ENTER, i, 0, _ENTER, r))
        if r.queue_exited_at <= r.queue_entered_at:
            events.append((r.queue_exited_at, _ENTER, i, 1, _LEAVE, r))
        else:
            events.append((r.queue_exited_at, _LEAVE, i, 0, _LEAVE, r))
        if r.answered and r.service_ended_at is not None:
            if r.service_ended_at <= r.queue_exited_at:
                rank = _ENTER if r.queue_exited_at <= r.queue_entered_at else _LEAVE
                events.append((r.service_ended_at, rank, i, 2, _END, r))
            else:
                events.append((r.service_ended_at, _END, i, 0, _END, r))
    events.sort(key=lambda e: e[:4])
    estimators: dict[str, Estimator] = {}
    for t, _rank, _i, _step, kind, r in events:
        est = estimators.get(r.queue)
        if est is None:
            est = estimators[r.queue] = estimator_factory()
        if kind == _ENTER:
            est.on_enter(r.call_id, t, r.priority)
            yield Prediction(r, est.estimate(r.call_id, t))
        elif kind == _END:
            est.on_service_end(r.call_id, t)
        elif r.answered:
            est.on_service_start(r.call_id, t)
        else:
            est.on_abandon(r.call_id, t)
