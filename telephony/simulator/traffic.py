"""Callers and agents that behave like people, driving a simulated switch.

Arrivals: a non-homogeneous Poisson process per tenant DID (thinning), whose
rate is ``calls_per_hour`` x a time-of-day shape. The default shape is the
mean 6-minute arrival curve of a real bank's 1999 call centre
(``shared/data/anonymous_bank_1999_6min``) normalised to a peak of 1.

Each caller gets, from the seeded generator and in arrival order:

* patience: exponential, mean ``patience_mean`` (6 min); once the platform
  announces a wait (channel variable ``ccp_announced_wait_sec``) and the caller
  has waited longer than announced, the remaining patience is halved once;
* IVR choices: one digit per ``play_and_get_digits``, drawn from the tenant's
  ``ivr_choices`` weights, typed 1-3 s after the prompt starts; a caller who
  wants a callback answers a prompt whose variable name contains ``callback``
  with ``callback_digit`` (and declines such prompts otherwise);
* talk time: log-normal with mean ``talk_mean`` (3 min); the caller hangs up
  that long after being bridged to an agent;
* abandon: if not bridged when patience runs out, the caller hangs up
  (NORMAL_CLEARING, as a SIP BYE from the caller gives).

Agent phones are :class:`~telephony.simulator.switch.AgentPhone`: they ring,
answer after a few seconds, sometimes never answer (NO_ANSWER) or reject
(USER_BUSY). Everything is deterministic for a given seed; all times are
virtual (see :class:`~telephony.simulator.clock.VirtualClock`).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .model import Channel
from .switch import AgentPhone, OriginateError, SimEvent, Switch, split_args

log = logging.getLogger(__name__)

INTERVALS_PER_DAY = 240  # 6-minute intervals
FLAT_SHAPE: tuple[float, ...] = (1.0,) * INTERVALS_PER_DAY


def load_day_shape(path: str | Path) -> tuple[float, ...]:
    """Mean calls per 6-minute interval of the day from the bank CSV, peak = 1.

    The CSV has ``interval_start,date,weekday,interval_6min,calls``;
    ``interval_6min`` is 1..240.
    """
    sums: dict[int, float] = defaultdict(float)
    days: set[str] = set()
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            idx = int(row["interval_6min"]) - 1
            if 0 <= idx < INTERVALS_PER_DAY:
                sums[idx] += float(row["calls"])
                days.add(row["date"])
    n = max(1, len(days))
    means = [sums[i] / n for i in range(INTERVALS_PER_DAY)]
    peak = max(means) or 1.0
    return tuple(m / peak for m in means)


@dataclass
class TenantProfile:
    """Traffic of one tenant: its DIDs, peak rate and IVR behaviour."""

    tenant: str
    dids: Sequence[str]
    calls_per_hour: float
    ivr_choices: dict[str, float] = field(default_factory=lambda: {"1": 0.6, "2": 0.3, "0": 0.1})
    p_callback: float = 0.05
    callback_digit: str = "1"
    decline_digit: str = "2"


@dataclass
class CallerPlan:
    """Everything random about one caller, drawn up front from the seed."""

    index: int
    at: float  # simulated seconds after the traffic start
    tenant: str
    did: str
    number: str
    patience: float
    talk_time: float
    choices: list[str]
    wants_callback: bool


@dataclass
class CallerOutcome:
    """What happened to a caller (for tests and load reports)."""

    plan: CallerPlan
    uuid: str = ""
    bridged_at: float | None = None
    abandoned: bool = False
    ended_at: float | None = None
    digits_sent: str = ""
    hangup_cause: str = ""


def lognormal_params(mean: float, sigma: float) -> tuple[float, float]:
    """``(mu, sigma)`` of a log-normal whose mean is ``mean``."""
    return math.log(mean) - sigma * sigma / 2, sigma


class TrafficGenerator:
    """Plans and plays callers against a :class:`Switch` (see module docstring)."""

    def __init__(
        self,
        switch: Switch,
        profiles: Sequence[TenantProfile],
        *,
        seed: int = 0,
        shape: Sequence[float] = FLAT_SHAPE,
        start_hour: float = 9.0,
        patience_mean: float = 360.0,
        talk_mean: float = 180.0,
        talk_sigma: float = 0.6,
    ) -> None:
        self.switch = switch
        self.profiles = list(profiles)
        self.seed = seed
        self.shape = tuple(shape) or FLAT_SHAPE
        self.start_hour = start_hour
        self.patience_mean = patience_mean
        self.talk_mu, self.talk_sigma = lognormal_params(talk_mean, talk_sigma)
        self.outcomes: list[CallerOutcome] = []
        for profile in self.profiles:
            for did in profile.dids:
                switch.dids.setdefault(did, {"ccp_did": did, "ccp_tenant": profile.tenant})

    def rate_factor(self, t: float) -> float:
        """Shape value at ``t`` simulated seconds after the start."""
        seconds = (self.start_hour * 3600 + t) % 86400
        return self.shape[int(seconds // 360) % len(self.shape)]

    def plan(self, duration: float) -> list[CallerPlan]:
        """All callers arriving within ``duration`` seconds, sorted by arrival.

        Thinning (Lewis-Shedler): candidates at the peak rate, each kept with
        probability shape(t). Same seed, profiles and duration give the same plan.
        """
        rng = random.Random(self.seed)
        plans: list[CallerPlan] = []
        for profile in self.profiles:
            peak = profile.calls_per_hour / 3600.0
            if peak <= 0 or not profile.dids:
                continue
            t = 0.0
            digits, weights = zip(*profile.ivr_choices.items(), strict=True)
            while True:
                t += rng.expovariate(peak)
                if t >= duration:
                    break
                if rng.random() > self.rate_factor(t):
                    continue
                plans.append(
                    CallerPlan(
                        index=0,
                        at=t,
                        tenant=profile.tenant,
                        did=rng.choice(list(profile.dids)),
                        number=f"+3809{rng.randrange(10**8):08d}",
                        patience=rng.expovariate(1.0 / self.patience_mean),
                        talk_time=rng.lognormvariate(self.talk_mu, self.talk_sigma),
                        choices=list(rng.choices(digits, weights, k=4)),
                        wants_callback=rng.random() < profile.p_callback,
                    )
                )
        plans.sort(key=lambda p: (p.at, p.tenant))
        for i, p in enumerate(plans):
            p.index = i
        return plans

    async def run(self, duration: float) -> list[CallerOutcome]:
        """Play the plan for ``duration`` simulated seconds; return the outcomes.

        Returns once every caller has arrived; callers still in progress keep
        running on the switch's tasks.
        """
        clock = self.switch.clock
        start = clock.now()
        for plan in self.plan(duration):
            delay = start + plan.at - clock.now()
            if delay > 0:
                await clock.sleep(delay)
            profile = next(p for p in self.profiles if p.tenant == plan.tenant)
            self.outcomes.append(self.place(plan, profile))
        return self.outcomes

    def place(self, plan: CallerPlan, profile: TenantProfile) -> CallerOutcome:
        """Start one caller now."""
        outcome = CallerOutcome(plan)
        caller = Caller(
            self.switch, plan, profile, outcome, random.Random(self.seed * 1_000_003 + plan.index)
        )
        caller.start()
        return outcome


class Caller:
    """One person on the phone: listens to their channel's events and reacts."""

    def __init__(self, switch: Switch, plan: CallerPlan, profile: TenantProfile,
                 outcome: CallerOutcome, rng: random.Random) -> None:  # fmt: skip
        self.switch = switch
        self.plan = plan
        self.profile = profile
        self.outcome = outcome
        self.rng = rng
        self.ch: Channel | None = None
        self.arrived = 0.0
        self.patience_cut = False
        self._abandon: asyncio.Task[object] | None = None
        self._choice = 0

    def start(self) -> None:
        sw = self.switch
        self.arrived = sw.clock.now()
        sw.listeners.add(self)
        try:
            self.ch = sw.inbound_call(
                self.plan.did,
                self.plan.number,
                variables={"ccp_sim_caller": str(self.plan.index)},
            )
        except OriginateError as exc:
            # The node is down: the call never reached it (no channel, no CDR).
            sw.listeners.discard(self)
            self.outcome.hangup_cause = exc.cause
            self.outcome.ended_at = sw.clock.now()
            return
        self.outcome.uuid = self.ch.uuid
        self._abandon = sw.spawn(self._patience(self.plan.patience))

    async def _patience(self, seconds: float) -> None:
        await self.switch.clock.sleep(seconds)
        ch = self.ch
        if ch is not None and ch.alive and self.outcome.bridged_at is None:
            self.outcome.abandoned = True
            self.switch.hangup(ch, "NORMAL_CLEARING")

    def deliver(self, event: SimEvent) -> None:
        """React to events of our channel (the switch calls this synchronously)."""
        ch = self.ch
        if ch is None:
            return
        mine = event.unique_id == ch.uuid
        if event.name == "CHANNEL_BRIDGE" and ch.uuid in (
            event.get("Bridge-A-Unique-ID"),
            event.get("Bridge-B-Unique-ID"),
        ):
            self._bridged()
        elif not mine:
            return
        elif event.name == "CHANNEL_EXECUTE" and event.get("Application") == "play_and_get_digits":
            self.switch.spawn(self._answer_prompt(event.get("Application-Data") or ""))
        elif event.name == "CHANNEL_EXECUTE_COMPLETE":
            # The platform may have set ccp_announced_wait_sec (set/export).
            self._check_announcement()
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            self.outcome.ended_at = self.switch.clock.now()
            self.outcome.hangup_cause = event.get("Hangup-Cause") or ""
            self.switch.listeners.discard(self)
            if self._abandon is not None:
                self._abandon.cancel()

    async def _answer_prompt(self, arg: str) -> None:
        parts = split_args(arg)  # quoted prompts hold spaces
        var = parts[7] if len(parts) > 7 else ""
        if "callback" in var:
            digit = (
                self.profile.callback_digit
                if self.plan.wants_callback
                else self.profile.decline_digit
            )
            if self.plan.wants_callback:
                # Their phone, reachable as user/<number> for the callback.
                self.switch.agents.setdefault(
                    self.plan.number,
                    AgentPhone(self.plan.number, p_no_answer=0.1, hangup_after=self.plan.talk_time),
                )
        else:
            digit = self.plan.choices[self._choice % len(self.plan.choices)]
            self._choice += 1
        await self.switch.clock.sleep(self.rng.uniform(1.0, 3.0))
        ch = self.ch
        if ch is not None and ch.alive:
            self.outcome.digits_sent += digit
            self.switch.receive_dtmf(ch, digit + "#")

    def _check_announcement(self) -> None:
        """A wrong wait announcement makes callers less patient (once)."""
        ch = self.ch
        if ch is None or self.patience_cut:
            return
        announced = ch.variables.get("ccp_announced_wait_sec", "")
        if not announced.replace(".", "", 1).isdigit():
            return
        self.patience_cut = True
        now = self.switch.clock.now()
        waited = now - self.arrived
        remaining = self.plan.patience - waited
        if remaining <= 0:
            return
        # Once the announced wait has passed, half the remaining patience goes.
        until_overdue = max(0.0, float(announced))
        new_remaining = until_overdue + max(0.0, remaining - until_overdue) / 2
        if self._abandon is not None:
            self._abandon.cancel()
        self._abandon = self.switch.spawn(self._patience(new_remaining))

    def _bridged(self) -> None:
        if self.outcome.bridged_at is not None:
            return
        self.outcome.bridged_at = self.switch.clock.now()
        if self._abandon is not None:
            self._abandon.cancel()
        self.switch.spawn(self._talk())

    async def _talk(self) -> None:
        await self.switch.clock.sleep(self.plan.talk_time)
        ch = self.ch
        if ch is not None and ch.alive:
            self.switch.hangup(ch, "NORMAL_CLEARING")


def add_agents(
    switch: Switch,
    extensions: Sequence[str],
    *,
    p_no_answer: float = 0.05,
    p_busy: float = 0.03,
    answer_delay: tuple[float, float] = (2.0, 6.0),
) -> list[AgentPhone]:
    """Register agent phones reachable as ``user/<ext>``."""
    phones = []
    for ext in extensions:
        phone = AgentPhone(ext, answer_delay=answer_delay, p_no_answer=p_no_answer, p_busy=p_busy)
        switch.agents[ext] = phone
        phones.append(phone)
    return phones


__all__ = [
    "CallerOutcome",
    "CallerPlan",
    "FLAT_SHAPE",
    "TenantProfile",
    "TrafficGenerator",
    "add_agents",
    "load_day_shape",
]
