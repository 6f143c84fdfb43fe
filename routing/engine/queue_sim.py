"""A seeded discrete-event simulator of one call-centre queue that writes call log v1.

Model: Poisson arrivals with a piecewise-constant time-of-day rate (one expected call count per
bin, repeated every day), a recorded greeting before the queue, exponential patience, service
times log-normal (given mean and median, like the bank's 179 s / 109 s) or exponential, a
staffing schedule per bin, and priority callers who get a head start: a caller of priority
``p`` queues as if it had arrived ``p * head_start_s`` earlier (the bank gives priority
customers 90 s). Agents are never pre-empted: when the schedule drops, busy agents finish their
call and then leave. After the last bin no one arrives, and at least one agent stays until the
queue is empty, so every call has an outcome.

Known truth: :class:`SimResult` carries, for every call, its *potential* wait: the time it
would have waited with infinite patience, others behaving as they did. An abandoning caller
stays in the queue as a ghost that holds its place (later priority callers still overtake it);
when it reaches the head while an agent is free, its potential wait ends, and it is dropped
without using the agent. For answered calls the potential wait is the actual wait.

Pure: no clock, no I/O; the same config and seed give the same calls bit for bit.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

from routing.engine.calllog import CallRecord

__all__ = ["SimConfig", "SimResult", "simulate"]

_DEPARTURE, _SHIFT, _ABANDON, _ARRIVAL = 0, 1, 2, 3  # order of events at the same instant


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate.

    ``calls_per_bin``: expected calls in each bin of the day (the profile repeats every day);
    ``agents_per_bin``: agents on shift in each bin (same length) or one number for all bins;
    ``bin_s``: bin length in seconds. Service: ``"lognormal"`` with ``service_mean_s`` and
    ``service_median_s`` (mean > median) or ``"exponential"`` with ``service_mean_s``.
    ``patience_mean_s``: exponential patience; ``math.inf`` means nobody abandons.
    ``priority_share``: fraction of callers with priority 1. ``greeting_s``: uniform range of the
    recorded greeting between arrival and queue entry. ``wrap_up_s``: after-call work that keeps
    the agent busy after each call but, as in most call logs, is not recorded.
    """

    calls_per_bin: tuple[float, ...]
    agents_per_bin: tuple[int, ...] | int
    bin_s: float = 1800.0
    days: int = 1
    seed: int = 1
    service: str = "lognormal"
    service_mean_s: float = 179.0
    service_median_s: float = 109.0
    patience_mean_s: float = 350.0
    priority_share: float = 0.0
    head_start_s: float = 90.0
    greeting_s: tuple[float, float] = (15.0, 20.0)
    wrap_up_s: float = 0.0
    start_at: float = 946_684_800.0  # 2000-01-01T00:00:00Z; any epoch second works
    queue: str = "main"

    def __post_init__(self) -> None:
        if not self.calls_per_bin:
            raise ValueError("calls_per_bin must not be empty")
        if any(not math.isfinite(c) or c < 0 for c in self.calls_per_bin):
            raise ValueError("calls_per_bin must be finite and >= 0")
        agents = self.agents_per_bin
        if isinstance(agents, int):
            if agents < 0:
                raise ValueError("agents_per_bin must be >= 0")
        elif len(agents) != len(self.calls_per_bin) or any(a < 0 for a in agents):
            raise ValueError("agents_per_bin must be >= 0, one per bin")
        if not (self.bin_s > 0 and math.isfinite(self.bin_s)):
            raise ValueError("bin_s must be finite and > 0")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.service not in ("lognormal", "exponential"):
            raise ValueError("service must be 'lognormal' or 'exponential'")
        if not (self.service_mean_s > 0 and math.isfinite(self.service_mean_s)):
            raise ValueError("service_mean_s must be finite and > 0")
        if self.service == "lognormal" and not 0 < self.service_median_s < self.service_mean_s:
            raise ValueError("a log-normal service needs 0 < median < mean")
        if not self.patience_mean_s > 0:
            raise ValueError("patience_mean_s must be > 0 (math.inf for none)")
        if not 0 <= self.priority_share <= 1:
            raise ValueError("priority_share must be in [0, 1]")
        if not (self.head_start_s >= 0 and math.isfinite(self.head_start_s)):
            raise ValueError("head_start_s must be finite and >= 0")
        if not (self.wrap_up_s >= 0 and math.isfinite(self.wrap_up_s)):
            raise ValueError("wrap_up_s must be finite and >= 0")
        low, high = self.greeting_s
        if not 0 <= low <= high < math.inf:
            raise ValueError("greeting_s must be a range 0 <= low <= high")

    def agents_in_bin(self, index: int) -> int:
        if isinstance(self.agents_per_bin, int):
            return self.agents_per_bin
        return self.agents_per_bin[index % len(self.agents_per_bin)]


@dataclass(frozen=True, slots=True)
class SimResult:
    """Simulated calls (in arrival order) and the truth behind them.

    ``potential_wait_s[call_id]``: the wait the caller would have had with infinite patience;
    equals the actual wait for answered calls. ``delayed[call_id]``: True when no agent was free
    at queue entry (the call had to queue), the population wait-time estimates are judged on.
    """

    config: SimConfig
    records: list[CallRecord]
    potential_wait_s: dict[str, float] = field(repr=False)
    delayed: dict[str, bool] = field(repr=False)


def simulate(config: SimConfig) -> SimResult:
    """Run the simulation described by ``config``; deterministic for a given seed."""
    rng = random.Random(config.seed)
    n_bins = len(config.calls_per_bin)
    horizon_bins = n_bins * config.days
    end_at = config.start_at + horizon_bins * config.bin_s

    if config.service == "lognormal":
        sigma = math.sqrt(2.0 * math.log(config.service_mean_s / config.service_median_s))
        log_median = math.log(config.service_median_s)

        def service_time() -> float:
            return rng.lognormvariate(log_median, sigma)
    else:
        service_rate = 1.0 / config.service_mean_s

        def service_time() -> float:
            return rng.expovariate(service_rate)

    # Arrivals: a Poisson process per bin, then a greeting before the queue.
    arrivals: list[tuple[float, float, int]] = []  # (queue entry, arrival, priority)
    for b in range(horizon_bins):
        rate = config.calls_per_bin[b % n_bins] / config.bin_s
        bin_start = config.start_at + b * config.bin_s
        if rate <= 0:
            continue
        t = bin_start + rng.expovariate(rate)
        while t < bin_start + config.bin_s:
            level = 1 if rng.random() < config.priority_share else 0
            arrivals.append((t + rng.uniform(*config.greeting_s), t, level))
            t += rng.expovariate(rate)
    arrivals.sort()

    n_calls = len(arrivals)
    ids = [f"{config.queue}-{config.seed}-{i:07d}" for i in range(n_calls)]
    entered = [a[0] for a in arrivals]
    priority = [a[2] for a in arrivals]
    state = [0] * n_calls  # 0 waiting / not yet arrived, 1 served, 2 abandoned (ghost)
    exited = [math.nan] * n_calls
    started = [math.nan] * n_calls
    ended = [math.nan] * n_calls
    agent_of: list[str | None] = [None] * n_calls
    potential = [math.nan] * n_calls
    delayed = [False] * n_calls

    events: list[tuple[float, int, int, int]] = []  # (time, kind, seq, payload)
    seq = 0
    for i in range(n_calls):
        events.append((entered[i], _ARRIVAL, seq, i))
        seq += 1
    for b in range(horizon_bins + 1):
        events.append((config.start_at + b * config.bin_s, _SHIFT, seq, b))
        seq += 1
    heapq.heapify(events)

    waiting: list[tuple[float, int, int]] = []  # (priority key, seq, call)
    real_waiting = 0
    free_agents: list[str] = []  # agents on shift and idle
    off_shift: list[str] = []  # known agents not on shift, reused first
    on_shift = 0  # agents on shift, busy or idle
    staff = 0  # agents the schedule wants on shift
    agent_names = 0

    def hire() -> str:
        nonlocal agent_names
        if off_shift:
            return off_shift.pop()
        agent_names += 1
        return f"agent-{agent_names:03d}"

    def dispatch(now: float) -> None:
        nonlocal seq, real_waiting
        while free_agents and waiting:
            _key, _s, call = heapq.heappop(waiting)
            if state[call] == 2:  # a ghost reaches the head: its potential wait ends here
                potential[call] = now - entered[call]
                continue
            agent = free_agents.pop()
            real_waiting -= 1
            state[call] = 1
            exited[call] = started[call] = now
            potential[call] = now - entered[call]
            ended[call] = now + service_time()
            agent_of[call] = agent
            # The agent is free again after the (unlogged) wrap-up.
            heapq.heappush(events, (ended[call] + config.wrap_up_s, _DEPARTURE, seq, call))
            seq += 1

    while events:
        now, kind, _s, payload = heapq.heappop(events)
        if kind == _ARRIVAL:
            call = payload
            delayed[call] = not free_agents or real_waiting > 0
            key = entered[call] - config.head_start_s * priority[call]
            heapq.heappush(waiting, (key, seq, call))
            seq += 1
            real_waiting += 1
            if math.isfinite(config.patience_mean_s):
                patience = rng.expovariate(1.0 / config.patience_mean_s)
                heapq.heappush(events, (now + patience, _ABANDON, seq, call))
                seq += 1
            dispatch(now)
        elif kind == _ABANDON:
            call = payload
            if state[call] == 0:
                state[call] = 2
                exited[call] = now
                real_waiting -= 1
        elif kind == _DEPARTURE:
            agent = agent_of[payload] or ""
            if on_shift > staff:  # the schedule shrank: this agent leaves after the call
                on_shift -= 1
                off_shift.append(agent)
            else:
                free_agents.append(agent)
            dispatch(now)
        else:  # shift change at a bin boundary
            b = payload
            if b < horizon_bins:
                staff = config.agents_in_bin(b)
            else:  # after the horizon: drain the queue with whoever is there, at least one
                staff = max(1, staff)
            while on_shift < staff:
                on_shift += 1
                free_agents.append(hire())
            while on_shift > staff and free_agents:
                on_shift -= 1
                off_shift.append(free_agents.pop())
            dispatch(now)
        if not events and (real_waiting or waiting):
            # Only reachable if nobody is on shift at the end: keep one agent to drain.
            staff = max(1, staff)
            heapq.heappush(events, (max(now, end_at), _SHIFT, seq, horizon_bins))
            seq += 1

    records = []
    truth: dict[str, float] = {}
    delayed_by_id: dict[str, bool] = {}
    for i in range(n_calls):
        answered = state[i] == 1
        records.append(
            CallRecord(
                call_id=ids[i],
                queue=config.queue,
                priority=priority[i],
                arrived_at=round(arrivals[i][1], 3),
                queue_entered_at=round(entered[i], 3),
                queue_exited_at=round(exited[i], 3),
                outcome="answered" if answered else "abandoned",
                service_started_at=round(started[i], 3) if answered else None,
                service_ended_at=round(ended[i], 3) if answered else None,
                agent=agent_of[i] if answered else None,
            )
        )
        truth[ids[i]] = potential[i]
        delayed_by_id[ids[i]] = delayed[i]
    return SimResult(config, records, truth, delayed_by_id)
