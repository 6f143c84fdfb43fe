"""The simulated switch core: channels, applications, API commands, events.

One :class:`Switch` is one FreeSWITCH node (its own ``Core-UUID``). It owns the
channels and the event bus; ESL sessions (:mod:`.esl_server`) subscribe to the
bus and call :meth:`Switch.api`. Everything is driven by one asyncio loop and
one :class:`~telephony.simulator.clock.VirtualClock`.

Contracts:

* Events carry the names, header names and per-channel order of FreeSWITCH
  1.10.12 as captured in the fixtures (see ``docs/decisions/0009``).
* A channel's hangup always runs the full sequence (CHANNEL_HANGUP, unwinding
  of the running applications, CS_HANGUP, CS_REPORTING,
  CHANNEL_HANGUP_COMPLETE with billing variables, CHANNEL_DESTROY, CS_DESTROY)
  exactly once, whatever caused it.
* Randomness (UUIDs, agent behaviour) comes only from ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import re
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from .clock import VirtualClock
from .conference import ConferenceMixin, Room
from .model import (
    CALL_STATES,
    CALLING,
    EVENTS_WITH_VARIABLES,
    Channel,
    Profile,
    gmt_date,
    stamp,
)
from .wire import serialize_json, serialize_plain

log = logging.getLogger(__name__)

VERSION = "1.10.12-release~64bit"
Headers = list[tuple[str, str]]


@dataclass
class SimEvent:
    """One fired event: ordered headers, optional body, routing keys."""

    name: str
    headers: Headers
    body: str | None = None
    unique_id: str | None = None
    subclass: str | None = None

    def get(self, name: str) -> str | None:
        """First value of header ``name``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Listener(Protocol):
    """Anything that receives fired events (an ESL session)."""

    def deliver(self, event: SimEvent) -> None: ...


@dataclass
class AgentPhone:
    """A simulated agent phone reachable as ``user/<ext>``.

    ``answer_delay`` seconds of ringing before answering; with probability
    ``p_no_answer`` it never answers (NO_ANSWER at the originate timeout), with
    ``p_busy`` it rejects (USER_BUSY) after ``reject_delay``.
    """

    ext: str
    answer_delay: tuple[float, float] = (2.0, 6.0)
    p_no_answer: float = 0.0
    p_busy: float = 0.0
    reject_delay: float = 1.0
    registered: bool = True
    #: A person's phone (a caller being called back) hangs up this long after answering.
    hangup_after: float | None = None


@dataclass
class Faults:
    """Faults switched on by tests or the CLI (see :meth:`Switch.set_fault`)."""

    refuse_originate: str = ""  # a hangup cause, e.g. "NORMAL_TEMPORARY_FAILURE"
    slow_answer: float = 0.0  # extra simulated seconds before any answer
    event_delay: float = 0.0  # simulated seconds every delivery is held back
    reorder: bool = False  # interleave channels differently (per-channel order kept)


@dataclass
class _Unwind:
    """One entry of a channel's unwind stack (what to emit if interrupted)."""

    run: Callable[[], None]
    label: str


@dataclass
class _Queued:
    """An application queued on a channel (sendmsg execute / uuid_broadcast)."""

    app: str
    arg: str
    event_uuid: str = ""
    event_lock: bool = False
    after: Callable[[], None] | None = None
    done: asyncio.Future[None] | None = None
    loops: int = 1


@dataclass
class _ChannelRuntime:
    """Per-channel simulator state that is not FreeSWITCH data."""

    unwind: list[_Unwind] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    queue: asyncio.Queue[_Queued] = field(default_factory=asyncio.Queue)
    outcome: asyncio.Future[str] | None = None  # originate: "" answered or a cause
    dtmf_waiter: asyncio.Future[None] | None = None
    park_announced: bool = False
    playback_break: asyncio.Event | None = None  # set by uuid_break: the playback stops


class OriginateError(Exception):
    """Originate failed with a hangup cause (``-ERR <cause>``)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


# Dialplan of the capture host (context ``esltest``, README "Where the data came
# from"), plus the platform's DIDs which go to the outbound socket.
TONE_ENDLESS = "tone_stream://%(1000,0,440);loops=-1"


def tone_seconds(path: str) -> float | None:
    """Length of a ``tone_stream://`` in seconds; None if endless (also ``local_stream://``,
    FreeSWITCH's music on hold, which never ends); 2 s for files."""
    if path.startswith("local_stream://"):
        return None
    if not path.startswith("tone_stream://"):
        return 2.0
    if "loops=-1" in path:
        return None
    total = 0
    for on, off in re.findall(r"%\((\d+),(\d+)", path):
        total += int(on) + int(off)
    loops = re.search(r"loops=(\d+)", path)
    return total / 1000 * (int(loops.group(1)) if loops else 1)


def split_args(text: str) -> list[str]:
    """Split on spaces, keeping single-quoted words together (FreeSWITCH's quoting)."""
    out, cur, quote = [], [], False
    for ch in text:
        if ch == "'":
            quote = not quote
        elif ch == " " and not quote:
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def parse_var_block(text: str) -> tuple[dict[str, str], str] | None:
    """Split ``{a=b,c='x y'}rest`` into vars and rest; None on a parse error.

    FreeSWITCH cuts the originate argument at the first space outside quotes,
    so an unquoted space inside ``{}`` breaks the dial string
    (``-ERR DESTINATION_OUT_OF_ORDER``, as in capture 03).
    """
    variables: dict[str, str] = {}
    if not text.startswith(("{", "[")):
        return variables, text
    close = "}" if text[0] == "{" else "]"
    quote = False
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif ch == " " and not quote:
            return None
        elif ch == close and not quote:
            body, rest = text[1:i], text[i + 1 :]
            break
    else:
        return None
    for item in re.split(r",(?=(?:[^']*'[^']*')*[^']*$)", body):
        if "=" in item:
            key, value = item.split("=", 1)
            variables[key.strip()] = value.strip().strip("'")
    return variables, rest


class Switch(ConferenceMixin):
    """One simulated FreeSWITCH node."""

    def __init__(
        self,
        *,
        clock: VirtualClock | None = None,
        seed: int = 0,
        hostname: str = "vm",
        ipv4: str = "192.0.2.2",
        ipv6: str = "fd00::2",
        outbound: tuple[str, int] | None = None,
        standby: tuple[str, int] | None = None,
        dids: dict[str, dict[str, str]] | None = None,
        heartbeat_interval: float = 20.0,
        uptime: float = 0.0,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.rng = random.Random(seed)
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.outbound = outbound
        #: A second ``socket`` in the platform DIDs' extension (the standby switchboard): a
        #: channel whose first socket went away after ``resume`` continues there.
        self.standby = standby
        #: DID -> variables set on the inbound leg before the socket app.
        self.dids: dict[str, dict[str, str]] = dict(dids or {})
        self.heartbeat_interval = heartbeat_interval
        self.agents: dict[str, AgentPhone] = {}
        self.faults = Faults()
        self.channels: dict[str, Channel] = {}
        self._rt: dict[str, _ChannelRuntime] = {}
        self.listeners: set[Listener] = set()
        #: Sessions that asked for log lines (``log <level>``).
        self.log_sinks: set[object] = set()
        self.sequence = 0
        self.session_count = 0
        self.core_uuid = self.new_uuid()
        #: ``uptime`` back-dates the start (to line a replay up with a capture).
        self.started_us = self.clock.now_us() - int(uptime * 1_000_000)
        self._tasks: set[asyncio.Task[object]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        #: Called with (channel, host, port, async_full) to connect an outbound socket.
        self.socket_connector: Callable[[Channel, str, int, bool], Awaitable[None]] | None = None
        #: Called with ``restart`` by ``fsctl shutdown [restart]`` (set by the node).
        self.on_shutdown: Callable[[bool], None] | None = None
        #: Called with (fault, value) for node-level faults (drop, restart).
        self.on_node_fault: Callable[[str, str], None] | None = None
        #: The :class:`~telephony.simulator.cdr.CdrPoster`, if CDRs are posted.
        self.cdr_poster: object | None = None
        #: Called after every CHANNEL_HANGUP_COMPLETE (e.g. CDR posting).
        self.on_hangup_complete: list[Callable[[Channel], None]] = []
        #: False while the node is down (restarting): no call can reach it.
        self.accepting = True
        #: Channels hung up because their outbound socket closed (the platform went away).
        self.socket_hangups: set[str] = set()
        #: Channels whose outbound socket went away after ``resume`` while bridged.
        self.resumed: set[str] = set()
        #: Channels whose outbound socket went away after ``resume`` while not bridged: their
        #: dialplan went on to its next application (the standby's socket).
        self.continued: set[str] = set()
        #: mod_conference rooms by name, and the node's member id counter (see conference.py).
        self.conferences: dict[str, Room] = {}
        self.conference_ids = 0

    # ------------------------------------------------------------------ basics
    def new_uuid(self) -> str:
        """A random UUID from the seeded generator (deterministic per seed)."""
        return str(uuid_mod.UUID(int=self.rng.getrandbits(128), version=4))

    def spawn(self, coro: Awaitable[object]) -> asyncio.Task[object]:
        """Run ``coro`` as a tracked task (cancelled by :meth:`stop`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def start(self) -> None:
        """Start periodic work (HEARTBEAT)."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.ensure_future(self._heartbeats())

    async def stop(self) -> None:
        """Cancel every task (channels vanish without events)."""
        tasks = list(self._tasks)
        if self._heartbeat is not None:
            tasks.append(self._heartbeat)  # type: ignore[arg-type]
            self._heartbeat = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()

    def uptime_us(self) -> int:
        """Microseconds since this core started."""
        return self.clock.now_us() - self.started_us

    # ------------------------------------------------------------------ events
    def core_headers(self, name: str, calling: tuple[str, str, str] | None = None) -> Headers:
        """The 13 headers every event starts with (``switch_event_prep_for_delivery``)."""
        self.sequence += 1
        now_us = self.clock.now_us()
        file, func, line = calling or CALLING.get(
            name, ("switch_event.c", "switch_event_fire", "1")
        )
        return [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
            ("Event-Date-Local", stamp(now_us / 1e6)),
            ("Event-Date-GMT", gmt_date(now_us / 1e6)),
            ("Event-Date-Timestamp", str(now_us)),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(self.sequence)),
        ]

    def channel_event(
        self,
        name: str,
        ch: Channel,
        *,
        pre: Headers | None = None,
        post: Headers | None = None,
        body: str | None = None,
    ) -> SimEvent:
        """Build a channel event: core headers, ``pre``, channel data, ``post``."""
        headers = self.core_headers(name) + (pre or [])
        headers += ch.data_headers(name in EVENTS_WITH_VARIABLES)
        headers += post or []
        return SimEvent(name, headers, body, ch.uuid)

    def fire(self, event: SimEvent) -> None:
        """Deliver ``event`` to every listener (each applies its own subscription)."""
        for listener in list(self.listeners):
            try:
                listener.deliver(event)
            except Exception:  # a broken session must not break the switch
                log.exception("listener failed")

    def fire_channel(self, name: str, ch: Channel, **kwargs: object) -> None:
        """Build and fire a channel event (see :meth:`channel_event`)."""
        self.fire(self.channel_event(name, ch, **kwargs))  # type: ignore[arg-type]

    def set_state(self, ch: Channel, state: str) -> None:
        """Change the running state and fire CHANNEL_STATE."""
        ch.state = state
        self.fire_channel("CHANNEL_STATE", ch)

    def set_callstate(self, ch: Channel, callstate: str) -> None:
        """Change the call state and fire CHANNEL_CALLSTATE."""
        old, ch.callstate = ch.callstate, callstate
        self.fire_channel(
            "CHANNEL_CALLSTATE",
            ch,
            pre=[
                ("Original-Channel-Call-State", old),
                ("Channel-Call-State-Number", str(CALL_STATES.index(callstate))),
            ],
        )

    async def _heartbeats(self) -> None:
        """HEARTBEAT every ``heartbeat_interval`` s of uptime, then RE_SCHEDULE.

        Beats are aligned on the core's start (uptime 20 s, 40 s...), like the
        core scheduler; every third beat (60 s) the ``check_ip`` task reschedules too.
        """
        interval = self.heartbeat_interval
        while True:
            up = self.uptime_us() / 1e6
            beat = (int(up // interval) + 1) * interval
            await self.clock.sleep(beat - up)
            self.fire(self.heartbeat_event())
            self.fire(self._reschedule(1, "heartbeat", interval))
            if round(beat) % 60 == 0:
                self.fire(self._reschedule(2, "check_ip", 60.0))

    def _reschedule(self, task_id: int, desc: str, every: float) -> SimEvent:
        headers = self.core_headers("RE_SCHEDULE") + [
            ("Task-ID", str(task_id)),
            ("Task-Desc", desc),
            ("Task-Group", "core"),
            ("Task-Runtime", str(int(self.clock.now() + every))),
        ]
        return SimEvent("RE_SCHEDULE", headers)

    def heartbeat_event(self) -> SimEvent:
        """A HEARTBEAT event with the live counters."""
        up = self.uptime_us()
        headers = self.core_headers("HEARTBEAT") + [
            ("Event-Info", "System Ready"),
            ("Up-Time", self.uptime_text(up)),
            ("FreeSWITCH-Version", VERSION),
            ("Uptime-msec", str(up // 1000)),
            ("Session-Count", str(len(self.channels))),
            ("Max-Sessions", "1000"),
            ("Session-Per-Sec", "30"),
            ("Session-Per-Sec-Last", "0"),
            ("Session-Per-Sec-Max", "0"),
            ("Session-Per-Sec-FiveMin", "0"),
            ("Session-Since-Startup", str(self.session_count)),
            ("Session-Peak-Max", str(len(self.channels))),
            ("Session-Peak-FiveMin", str(len(self.channels))),
            ("Idle-CPU", "99.000000"),
        ]
        return SimEvent("HEARTBEAT", headers)

    @staticmethod
    def uptime_text(up_us: int) -> str:
        """``0 years, 0 days, 0 hours, 2 minutes, 19 seconds, 866 milliseconds, 126 microseconds``."""
        secs, us = divmod(up_us, 1_000_000)
        ms, us = divmod(us, 1000)
        mins, secs = divmod(secs, 60)
        hours, mins = divmod(mins, 60)
        days, hours = divmod(hours, 24)
        years, days = divmod(days, 365)
        return (
            f"{years} years, {days} days, {hours} hours, {mins} minutes, {secs} seconds, "
            f"{ms} milliseconds, {us} microseconds"
        )

    # ---------------------------------------------------------------- channels
    def new_channel(
        self,
        name: str,
        profile: Profile,
        *,
        uuid: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """Create a channel in CS_NONE (no event yet) and register it."""
        self.session_count += 1
        now = self.clock.now_us()
        ch = Channel(
            uuid=uuid or self.new_uuid(),
            name=name,
            profile=profile,
            session_id=self.session_count,
            state="CS_NONE",
            created_us=now,
        )
        profile.created = profile.channel_created = now
        v = ch.variables
        v["direction"] = profile.direction
        if profile.direction == "outbound":
            v["is_outbound"] = "true"
        v["session_id"] = str(ch.session_id)
        for key, value in (
            ("read_codec", "L16"),
            ("read_rate", "8000"),
            ("write_codec", "L16"),
            ("write_rate", "8000"),
        ):
            v[key] = value
        v["channel_name"] = name
        v["uuid"] = ch.uuid
        v.update(variables or {})
        v["call_uuid"] = ch.uuid
        self.channels[ch.uuid] = ch
        self._rt[ch.uuid] = _ChannelRuntime()
        return ch

    def rt(self, ch: Channel) -> _ChannelRuntime:
        """Runtime bookkeeping of a channel."""
        return self._rt.setdefault(ch.uuid, _ChannelRuntime())

    def get(self, uuid: str) -> Channel | None:
        """A live channel by UUID."""
        ch = self.channels.get(uuid)
        return ch if ch is not None and ch.alive else None

    def push_unwind(self, ch: Channel, label: str, run: Callable[[], None]) -> _Unwind:
        """Register what to emit if the channel is interrupted (LIFO)."""
        entry = _Unwind(run, label)
        self.rt(ch).unwind.append(entry)
        return entry

    def pop_unwind(self, ch: Channel, entry: _Unwind) -> bool:
        """Run ``entry`` now if it is still pending; False if already unwound."""
        stack = self.rt(ch).unwind
        if entry in stack:
            stack.remove(entry)
            entry.run()
            return True
        return False

    def unwind(self, ch: Channel) -> None:
        """Emit every pending unwind entry, innermost first, and stop the app task."""
        rt = self.rt(ch)
        while rt.unwind:
            rt.unwind.pop().run()
        task, rt.task = rt.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def answer(self, ch: Channel) -> None:
        """Mark answered: CHANNEL_ANSWER + CALLSTATE ACTIVE (a loopback a-leg first)."""
        if ch.answered_us or not ch.alive:
            return
        peer = ch.loopback_peer
        if ch.is_loopback and peer is not None and peer.alive and not peer.answered_us:
            self._mark_answered(peer)
        self._mark_answered(ch)

    def _mark_answered(self, ch: Channel) -> None:
        ch.answered_us = self.clock.now_us()
        ch.answer_state = "answered"
        ch.variables.setdefault("endpoint_disposition", "ANSWER")
        self.fire_channel("CHANNEL_ANSWER", ch)
        self.set_callstate(ch, "ACTIVE")
        rt = self.rt(ch)
        if rt.outcome is not None and not rt.outcome.done():
            rt.outcome.set_result("")

    def ring_ready(self, ch: Channel) -> None:
        """CHANNEL_PROGRESS (ringing) on ``ch`` and, for loopback, on its a-leg."""
        if ch.progress_us or not ch.alive:
            return
        ch.progress_us = self.clock.now_us()
        self.fire_channel("CHANNEL_PROGRESS", ch)
        peer = ch.loopback_peer
        if ch.is_loopback and peer is not None and peer.alive and not peer.progress_us:
            peer.progress_us = ch.progress_us
            self.fire_channel("CHANNEL_PROGRESS", peer)
            self.set_callstate(peer, "RINGING")

    def hangup(self, ch: Channel, cause: str = "NORMAL_CLEARING") -> bool:
        """Hang ``ch`` up with ``cause``; False if it was already hanging up.

        Runs the whole FreeSWITCH teardown synchronously, then hangs up the
        loopback peer (same cause) and the bridged leg (NORMAL_CLEARING).
        """
        if not ch.alive:
            return False
        other = ch.bridged_to  # unwinding (CHANNEL_UNBRIDGE) clears it
        if ch.socket_session is not None:
            ch.socket_session.hanging_up()  # type: ignore[attr-defined]
        now = self.clock.now_us()
        ch.hangup_cause = cause
        ch.hangup_us = now
        if ch.answer_state != "answered":
            ch.variables.setdefault("endpoint_disposition", cause)
        ch.answer_state = "hangup"
        self.fire_channel("CHANNEL_HANGUP", ch)
        rt = self.rt(ch)
        self.unwind(ch)
        if rt.outcome is not None and not rt.outcome.done():
            rt.outcome.set_result(cause)
        if rt.dtmf_waiter is not None and not rt.dtmf_waiter.done():
            rt.dtmf_waiter.set_result(None)
        self.set_state(ch, "CS_HANGUP")
        self.set_callstate(ch, "HANGUP")
        ch.variables["hangup_cause"] = cause
        self.set_state(ch, "CS_REPORTING")
        ch.set_timestamps(now)
        self.fire_channel("CHANNEL_HANGUP_COMPLETE", ch, pre=[("Hangup-Cause", cause)])
        for hook in self.on_hangup_complete:
            hook(ch)
        if ch.socket_session is not None:
            ch.socket_session.channel_gone()  # type: ignore[attr-defined]
        self.fire_channel("CHANNEL_DESTROY", ch)
        self.set_state(ch, "CS_DESTROY")
        self.channels.pop(ch.uuid, None)
        self._rt.pop(ch.uuid, None)
        peer = ch.loopback_peer
        if peer is not None and peer.alive:
            self.hangup(peer, cause)
        if other is not None and other.alive:
            self.hangup(other, "NORMAL_CLEARING")
        return True

    # ------------------------------------------------------------ applications
    def start_apps(
        self, ch: Channel, apps: list[tuple[str, str]], *, end_hangup: bool = True
    ) -> None:
        """Run ``apps`` on ``ch`` in its own task (replacing any running one)."""
        rt = self.rt(ch)
        old = rt.task
        rt.task = None
        if old is not None and not old.done():
            old.cancel()
        rt.task = self.spawn(self._run_apps(ch, apps, end_hangup))  # type: ignore[assignment]

    async def _run_apps(self, ch: Channel, apps: list[tuple[str, str]], end_hangup: bool) -> None:
        queue = self.rt(ch).queue
        for app, arg in apps:
            # Messages queued by sendmsg/uuid_broadcast run between dialplan
            # applications, as switch_ivr_parse_all_events does.
            while not queue.empty() and ch.alive:
                item = queue.get_nowait()
                await self.execute(ch, item.app, item.arg, event_uuid=item.event_uuid)
                if item.after is not None:
                    item.after()
                if item.done is not None and not item.done.done():
                    item.done.set_result(None)
            if not ch.alive:
                return
            await self.execute(ch, app, arg)
        if end_hangup and ch.alive and not self.rt(ch).unwind:
            # Dialplan ran out of applications: FreeSWITCH hangs up.
            self.hangup(ch, "NORMAL_CLEARING")

    async def execute(
        self, ch: Channel, app: str, arg: str = "", *, app_uuid: str = "", event_uuid: str = ""
    ) -> str:
        """Run one dialplan application with CHANNEL_EXECUTE(_COMPLETE) around it.

        Returns the application response (``Application-Response``).
        """
        app_uuid = app_uuid or event_uuid or self.new_uuid()
        ch.current_app, ch.current_app_data, ch.current_app_uuid = app, arg, app_uuid
        ch.app_log.append((app, arg, self.clock.now_us()))
        v = ch.variables
        if arg:
            v["current_application_data"] = arg
        v["current_application"] = app
        data = [("Application", app)] + ([("Application-Data", arg)] if arg else [])
        self.fire_channel("CHANNEL_EXECUTE", ch, post=data + [("Application-UUID", app_uuid)])
        response = ["_none_"]

        def complete() -> None:
            self.fire_channel(
                "CHANNEL_EXECUTE_COMPLETE",
                ch,
                post=data + [("Application-Response", response[0]), ("Application-UUID", app_uuid)],
            )

        entry = self.push_unwind(ch, f"exec:{app}", complete)
        handler = getattr(self, f"app_{app}", None)
        if handler is None:
            log.info("application %s not modelled; treated as a no-op", app)
        else:
            result = await handler(ch, arg)
            if result is not None:
                response[0] = result
        if ch.alive:
            self.pop_unwind(ch, entry)
        return response[0]

    async def app_answer(self, ch: Channel, arg: str) -> None:
        """``answer``: slow-answer fault applies."""
        if self.faults.slow_answer:
            await self.clock.sleep(self.faults.slow_answer)
        self.answer(ch)

    async def app_pre_answer(self, ch: Channel, arg: str) -> None:
        """``pre_answer``: early media."""
        if not ch.progress_media_us:
            ch.progress_media_us = self.clock.now_us()
            self.fire_channel("CHANNEL_PROGRESS_MEDIA", ch)

    async def app_ring_ready(self, ch: Channel, arg: str) -> None:
        """``ring_ready``."""
        self.ring_ready(ch)

    async def app_set(self, ch: Channel, arg: str) -> None:
        """``set name=value``."""
        name, _, value = arg.partition("=")
        if name:
            ch.variables[name] = value

    async def app_export(self, ch: Channel, arg: str) -> None:
        """``export`` (stored like ``set``)."""
        await self.app_set(ch, arg)

    async def app_log(self, ch: Channel, arg: str) -> None:
        """``log``: nothing to simulate."""

    async def app_sleep(self, ch: Channel, arg: str) -> None:
        """``sleep <ms>``."""
        await self.clock.sleep(int(arg or "0") / 1000)

    async def app_hangup(self, ch: Channel, arg: str) -> None:
        """``hangup [cause]``."""
        self.hangup(ch, arg or "NORMAL_CLEARING")

    async def app_park(self, ch: Channel, arg: str) -> None:
        """``park``: wait, running queued applications (sendmsg, broadcast) meanwhile."""
        ch.parked = True
        self.fire_channel("CHANNEL_PARK", ch)

        def unpark() -> None:
            ch.parked = False
            self.fire_channel("CHANNEL_UNPARK", ch)

        self.push_unwind(ch, "unpark", unpark)
        # park_timeout=<seconds>[:<cause>] (switch_ivr_park): hang up when nobody came.
        spec = ch.variables.get("park_timeout", "")
        seconds, _, cause = spec.partition(":")
        if seconds.isdigit() and int(seconds) > 0:
            try:
                await asyncio.wait_for(self.serve_queue(ch), self.clock.real(float(seconds)))
            except TimeoutError:
                if ch.alive:
                    self.hangup(ch, cause or "NORMAL_CLEARING")
            return
        await self.serve_queue(ch)

    def drop_queued(self, ch: Channel) -> int:
        """Forget the applications queued on ``ch`` and not started (their waiters are
        released). Returns how many."""
        queue = self.rt(ch).queue
        dropped = 0
        while not queue.empty():
            item = queue.get_nowait()
            dropped += 1
            if item.done is not None and not item.done.done():
                item.done.set_result(None)
        return dropped

    async def serve_queue(
        self, ch: Channel, first: Callable[[_Queued], None] | None = None
    ) -> None:
        """Execute queued applications until the channel dies or the task is cancelled."""
        queue = self.rt(ch).queue
        while ch.alive:
            item = await queue.get()
            if first is not None:
                first(item)
                first = None
            for _ in range(item.loops):
                await self.execute(ch, item.app, item.arg, event_uuid=item.event_uuid)
            if item.after is not None:
                item.after()
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    async def app_playback(self, ch: Channel, arg: str) -> str:
        """``playback``: PLAYBACK_START, the file's length, PLAYBACK_STOP."""
        path = arg
        ftype = path.split("://", 1)[0] if "://" in path else path.rsplit(".", 1)[-1]
        file_headers = [("Playback-File-Type", ftype), ("Playback-File-Path", path)]
        self.fire_channel("PLAYBACK_START", ch, post=file_headers)
        seconds = tone_seconds(path)
        status = ["done"]

        def stop() -> None:
            self._playback_vars(ch, seconds or 0.0)
            self.fire_channel(
                "PLAYBACK_STOP", ch, post=file_headers + [("Playback-Status", status[0])]
            )

        entry = self.push_unwind(ch, "playback", stop)
        rt = self.rt(ch)
        brk = rt.playback_break = asyncio.Event()
        waiter = asyncio.ensure_future(brk.wait())
        sleeper = asyncio.ensure_future(
            asyncio.Event().wait() if seconds is None else self.clock.sleep(seconds)
        )
        try:
            # Endless playback runs until hangup/transfer/uuid_break.
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
            if rt.playback_break is brk:
                rt.playback_break = None
        if brk.is_set():
            status[0] = "break"
            if seconds is None:
                seconds = 0.0
        if ch.alive:
            self.pop_unwind(ch, entry)
        return "FILE PLAYED"

    def _playback_vars(self, ch: Channel, seconds: float) -> None:
        v = ch.variables
        samples = int(seconds * 8000)
        v["playback_last_offset_pos"] = str(samples)
        v["playback_seconds"] = str(int(seconds))
        v["playback_ms"] = str(int(seconds * 1000))
        v["playback_samples"] = str(samples)
        v["current_application_response"] = "FILE PLAYED"

    async def app_play_and_get_digits(self, ch: Channel, arg: str) -> None:
        """``play_and_get_digits min max tries timeout terminators file invalid var regexp``.

        Plays the prompt, then collects DTMF until a terminator, ``max``
        digits or ``timeout`` ms; sets ``var`` when the digits match.
        """
        parts = split_args(arg)
        if len(parts) < 8:
            return
        min_d, max_d, tries, timeout = (int(x) for x in parts[:4])
        terminators, prompt, _invalid, var = parts[4:8]
        regexp = parts[8] if len(parts) > 8 else r"\d+"
        rt = self.rt(ch)
        for _ in range(max(1, tries)):
            ch.dtmf_buffer.clear()
            await self.app_playback(ch, prompt)
            deadline = self.clock.now() + timeout / 1000
            digits = ""
            while ch.alive:
                while ch.dtmf_buffer:
                    d = ch.dtmf_buffer.pop(0)
                    if d in terminators:
                        deadline = 0
                        break
                    digits += d
                    if len(digits) >= max_d:
                        deadline = 0
                        break
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    break
                rt.dtmf_waiter = asyncio.get_running_loop().create_future()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(rt.dtmf_waiter, self.clock.real(remaining))
                rt.dtmf_waiter = None
            if not ch.alive:
                return
            if len(digits) >= min_d and re.fullmatch(regexp, digits):
                ch.variables[var] = digits
                return
        ch.variables.pop(var, None)

    async def app_socket(self, ch: Channel, arg: str) -> None:
        """``socket host:port [async] [full]``: hand the channel to an outbound socket."""
        parts = arg.split()
        host, _, port = parts[0].rpartition(":")
        async_full = "async" in parts[1:] and "full" in parts[1:]
        ch.variables["socket_host"] = host
        if self.socket_connector is None:
            self.hangup(ch, "DESTINATION_OUT_OF_ORDER")
            return
        await self.socket_connector(ch, host, int(port), async_full)

    async def app_bridge(self, ch: Channel, arg: str) -> str | None:
        """``bridge <dialstring>``: originate a leg and bridge to it."""
        try:
            other = await self.originate_leg(arg, caller=ch)
        except OriginateError as exc:
            ch.variables["originate_disposition"] = exc.cause
            return None
        self._bridge(ch, other)
        await asyncio.Event().wait()  # until hangup or transfer unwinds us
        return None

    @staticmethod
    def _set_other(x: Channel, y: Channel, kind: str) -> None:
        """Give ``x`` a snapshot of ``y``'s profile as its ``Other-Leg``."""
        x.other_type, x.other_profile = kind, dataclasses.replace(y.profile)
        x.other_uuid, x.other_name = y.uuid, y.name

    def _bridge(self, a: Channel, b: Channel) -> None:
        """Bridge ``a`` (originator) and ``b``: CHANNEL_BRIDGE on ``a``."""
        now = self.clock.now_us()
        a.bridged_to, b.bridged_to = b, a
        a.bridged_us = a.bridged_us or now
        b.bridged_us = b.bridged_us or now
        for x, y, kind in ((a, b, "originatee"), (b, a, "originator")):
            self._set_other(x, y, kind)
            x.variables["bridge_uuid"] = y.uuid
            x.variables["signal_bond"] = y.uuid
            x.variables["last_bridge_to"] = y.uuid
        ids = [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]
        self.fire_channel("CHANNEL_BRIDGE", a, pre=ids)

        def unbridge() -> None:
            a.bridged_to = None
            if b.bridged_to is a:
                b.bridged_to = None
            self.fire_channel("CHANNEL_UNBRIDGE", a, pre=ids)

        self.push_unwind(a, "unbridge", unbridge)

    # --------------------------------------------------------------- dialplan
    def dialplan(self, ch: Channel, dest: str, context: str) -> list[tuple[str, str]]:
        """The applications for ``dest`` (capture host extensions and platform DIDs)."""
        sock = self._socket_target()
        agent = re.fullmatch(r"agent\d+", dest)
        table: dict[str, list[tuple[str, str]]] = {
            "park": [("park", "")],
            "ans": [("answer", ""), ("park", "")],
            "ring": [("ring_ready", ""), ("park", "")],
            "busy": [("hangup", "USER_BUSY")],
            "tone": [("answer", ""), ("playback", TONE_ENDLESS)],
            "socket": [("set", "esltest_var=hello world"), ("socket", f"{sock} async full")],
            "socketsync": [("socket", sock)],
            "sipp": [
                ("answer", ""),
                ("playback", "tone_stream://%(500,500,440);loops=3"),
                ("hangup", ""),
            ],
        }
        if dest in table:
            return table[dest]
        if agent:
            return [("answer", ""), ("park", "")]
        if dest in self.dids:
            sockets = [("socket", f"{sock} async full")]
            if self.standby is not None:
                sockets.append(("socket", f"{self.standby[0]}:{self.standby[1]} async full"))
            # freeswitch-conf/dialplan/ccp.xml: reached only if no switchboard took the call.
            return (
                [("set", f"{k}={v}") for k, v in self.dids[dest].items()]
                + ([("set", "socket_resume=true")] if self.standby is not None else [])
                + sockets
                + [("hangup", "DESTINATION_OUT_OF_ORDER")]
            )
        return [("hangup", "NO_ROUTE_DESTINATION")]

    def _socket_target(self) -> str:
        host, port = self.outbound or ("127.0.0.1", 8084)
        return f"{host}:{port}"

    def route(self, ch: Channel, dest: str, context: str, *, call_update: bool = False) -> None:
        """CS_ROUTING -> CS_EXECUTE and run the extension's applications."""
        self.set_state(ch, "CS_ROUTING")
        if call_update:
            # After a bridge the caller/callee ids flip back (CALL_UPDATE).
            p = ch.profile
            p.caller_id_name, p.callee_id_name = p.callee_id_name, p.caller_id_name
            p.caller_id_number, p.callee_id_number = p.callee_id_number, p.caller_id_number
            self.fire_channel("CALL_UPDATE", ch, pre=[("Direction", "RECV")])
        ch.hit_dialplan = True
        self.set_state(ch, "CS_EXECUTE")
        apps = self.dialplan(ch, dest, context)
        ch.extension = (dest, apps)
        self.start_apps(ch, apps)

    # -------------------------------------------------------------- originate
    async def originate(self, arg: str) -> str:
        """The ``originate`` API: ``+OK <uuid>\\n`` or ``-ERR <CAUSE>\\n``."""
        parts = self._split_originate(arg)
        if parts is None:
            return "-ERR DESTINATION_OUT_OF_ORDER\n"
        dial, rest = parts
        try:
            ch = await self.originate_leg(dial)
        except OriginateError as exc:
            return f"-ERR {exc.cause}\n"
        self._after_originate(ch, rest)
        return f"+OK {ch.uuid}\n"

    @staticmethod
    def _split_originate(arg: str) -> tuple[str, str] | None:
        arg = arg.strip()
        if arg.startswith(("{", "[")):
            parsed = parse_var_block(arg)
            if parsed is None:
                return None
            close = arg.index("}" if arg[0] == "{" else "]", 0)
            # find the real closing brace (quotes may contain braces: rare, ignored)
            head, _, tail = arg[close + 1 :].partition(" ")
            return arg[: close + 1] + head, tail.strip()
        head, _, tail = arg.partition(" ")
        return head, tail.strip()

    def _after_originate(self, ch: Channel, rest: str) -> None:
        """Run the originate's application (``&app(arg)``) or extension on the a-leg."""
        self.set_state(ch, "CS_EXECUTE")
        match = re.fullmatch(r"&(\w+)(?:\((.*)\))?", rest)
        if match:
            self.start_apps(ch, [(match.group(1), match.group(2) or "")])
        elif rest:
            words = rest.split()
            context = words[2] if len(words) > 2 else "default"
            ch.profile.destination_number = words[0]
            self.start_apps(ch, self.dialplan(ch, words[0], context))
        else:
            self.start_apps(ch, [("park", "")])

    async def originate_leg(self, dial: str, caller: Channel | None = None) -> Channel:
        """Create an outbound leg for ``dial`` and wait until it answers.

        Raises :class:`OriginateError` with the hangup cause when it fails.
        """
        if self.faults.refuse_originate:
            raise OriginateError(self.faults.refuse_originate)
        parsed = parse_var_block(dial.strip())
        if parsed is None:
            raise OriginateError("DESTINATION_OUT_OF_ORDER")
        variables, endpoint = parsed
        if caller is not None:
            variables.setdefault("origination_caller_id_number", caller.profile.caller_id_number)
            variables.setdefault("origination_caller_id_name", caller.profile.caller_id_name)
        timeout = float(variables.get("originate_timeout", "60"))
        if endpoint.startswith("loopback/"):
            a = self._loopback(endpoint, variables)
        elif endpoint.startswith("user/"):
            a = self._user_leg(endpoint, variables)
        else:
            raise OriginateError("CHAN_NOT_IMPLEMENTED")
        if caller is not None:
            self._set_other(a, caller, "originator")
        rt = self.rt(a)
        rt.outcome = asyncio.get_running_loop().create_future()
        try:
            cause = await asyncio.wait_for(asyncio.shield(rt.outcome), self.clock.real(timeout))
        except TimeoutError:
            cause = "NO_ANSWER"
            self.hangup(a, cause)
        if cause:
            raise OriginateError(cause)
        if a.is_loopback and caller is None:
            # Only the originate API flips the a-leg's ids; a bridge keeps them
            # (capture 04: the bridged leg's Other-Leg has a callee name only).
            self._flip_cid(a)
        return a

    def _profile_for(self, direction: str, dest: str, variables: dict[str, str], context: str,
                     source: str) -> Profile:  # fmt: skip
        name = variables.get("origination_caller_id_name", "")
        number = variables.get("origination_caller_id_number", "0000000000")
        return Profile(
            direction=direction,
            destination_number=dest,
            caller_id_name=name,
            caller_id_number=number,
            orig_caller_id_name=name,
            orig_caller_id_number=number,
            ani=number,
            context=context,
            source=source,
        )

    def _loopback(self, endpoint: str, variables: dict[str, str]) -> Channel:
        """Create both loopback legs; the b-leg runs the dialplan."""
        parts = endpoint.split("/")
        ext = parts[1] if len(parts) > 1 else ""
        context = parts[2] if len(parts) > 2 else "default"
        pa = self._profile_for("outbound", ext, variables, context, "mod_loopback")
        pa.callee_id_name, pa.callee_id_number = "Outbound Call", context
        uuid = variables.get("origination_uuid")
        a_vars = {k: v for k, v in variables.items() if k != "originate_timeout"}
        a = self.new_channel(f"loopback/{ext}-a", pa, uuid=uuid or None, variables=None)
        a.is_loopback = True
        if uuid:
            a.variables["origination_uuid"] = uuid
            self.fire_channel("CHANNEL_UUID", a, pre=[("Old-Unique-ID", self.new_uuid())])
        for key, value in a_vars.items():
            if key != "origination_uuid":
                a.variables[key] = value
        a.variables["originate_early_media"] = "true"
        a.variables["originate_endpoint"] = "loopback"
        self.fire_channel("CHANNEL_OUTGOING", a)
        self.set_state(a, "CS_INIT")
        self.fire_channel("CHANNEL_CREATE", a)
        self.fire_channel("CHANNEL_ORIGINATE", a)
        self.set_state(a, "CS_ROUTING")
        self.set_state(a, "CS_CONSUME_MEDIA")
        pb = self._profile_for("inbound", ext, variables, context, "mod_loopback")
        pb.callee_id_name, pb.callee_id_number = "Outbound Call", context
        b_vars = {k: v for k, v in variables.items() if k.startswith(("origination", "loopback"))}
        b_vars["other_loopback_leg_uuid"] = a.uuid
        b_vars["loopback_leg"] = "B"
        b = self.new_channel(f"loopback/{ext}-b", pb, variables=b_vars)
        b.is_loopback = True
        a.variables["other_loopback_leg_uuid"] = b.uuid
        a.variables["loopback_leg"] = "A"
        a.loopback_peer, b.loopback_peer = b, a
        self.set_state(b, "CS_INIT")
        self.fire_channel("CHANNEL_CREATE", b)
        self.set_callstate(b, "RINGING")
        self.route(b, ext, context)
        return a

    def _user_leg(self, endpoint: str, variables: dict[str, str]) -> Channel:
        """A simulated agent phone: ring, then answer / NO_ANSWER / USER_BUSY."""
        ext = endpoint.split("/", 1)[1].split("@", 1)[0]
        phone = self.agents.get(ext)
        if phone is None or not phone.registered:
            raise OriginateError("USER_NOT_REGISTERED")
        p = self._profile_for("outbound", ext, variables, "default", "mod_sofia")
        p.callee_id_name, p.callee_id_number = "Outbound Call", ext
        a = self.new_channel(
            f"sofia/internal/{ext}@127.0.0.1:5070",
            p,
            uuid=variables.get("origination_uuid") or None,
            variables={k: v for k, v in variables.items() if k != "originate_timeout"},
        )
        a.variables["originate_endpoint"] = "user"
        a.variables["dialed_user"] = ext
        self.fire_channel("CHANNEL_OUTGOING", a)
        self.set_state(a, "CS_INIT")
        self.fire_channel("CHANNEL_CREATE", a)
        self.fire_channel("CHANNEL_ORIGINATE", a)
        self.set_state(a, "CS_ROUTING")
        self.set_state(a, "CS_CONSUME_MEDIA")
        roll = self.rng.random()
        delay = self.rng.uniform(*phone.answer_delay) + self.faults.slow_answer
        self.spawn(self._phone(a, phone, roll, delay))
        return a

    async def _phone(self, a: Channel, phone: AgentPhone, roll: float, delay: float) -> None:
        await self.clock.sleep(0.05)
        self.ring_ready(a)
        self.set_callstate(a, "RINGING")
        if roll < phone.p_busy:
            await self.clock.sleep(phone.reject_delay)
            self.hangup(a, "USER_BUSY")
        elif roll < phone.p_busy + phone.p_no_answer:
            return  # rings until the originate timeout: NO_ANSWER
        else:
            await self.clock.sleep(delay)
            if a.alive:
                self._mark_answered(a)
                if phone.hangup_after is not None:
                    await self.clock.sleep(phone.hangup_after)
                    if a.alive:
                        self.hangup(a, "NORMAL_CLEARING")

    def _flip_cid(self, a: Channel) -> None:
        """After a loopback a-leg answers FreeSWITCH swaps caller and callee ids."""
        p = a.profile
        a.variables["pre_transfer_caller_id_name"] = p.caller_id_name
        a.variables["pre_transfer_caller_id_number"] = p.caller_id_number
        a.variables["channel_cid_flipped"] = "yes"
        p.caller_id_name, p.callee_id_name = p.callee_id_name, p.caller_id_name
        p.caller_id_number, p.callee_id_number = p.callee_id_number, p.caller_id_number
        self.fire_channel("CALL_UPDATE", a, pre=[("Direction", "RECV")])

    # -------------------------------------------------------- inbound callers
    def inbound_call(
        self,
        did: str,
        caller_number: str,
        caller_name: str = "",
        *,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """A call arriving from the PSTN/SIP trunk to ``did`` (runs the dialplan).

        Raises :class:`OriginateError` while the node is down (the carrier's INVITE fails)."""
        if not self.accepting:
            raise OriginateError("NETWORK_OUT_OF_ORDER")
        p = Profile(
            direction="inbound",
            destination_number=did,
            caller_id_name=caller_name,
            caller_id_number=caller_number,
            orig_caller_id_name=caller_name,
            orig_caller_id_number=caller_number,
            ani=caller_number,
            source="mod_sofia",
            context="public",
        )
        ch = self.new_channel(
            f"sofia/external/{caller_number}@198.51.100.10", p, variables=variables
        )
        ch.variables["sip_from_user"] = caller_number
        ch.variables["sip_to_user"] = did
        self.set_state(ch, "CS_INIT")
        self.fire_channel("CHANNEL_CREATE", ch)
        self.set_callstate(ch, "RINGING")
        self.route(ch, did, "public")
        return ch

    def receive_dtmf(self, ch: Channel, digits: str, source: str = "RTP") -> None:
        """DTMF received on ``ch`` (fires DTMF, feeds play_and_get_digits)."""
        for d in digits:
            if not ch.alive:
                return
            self.fire_channel(
                "DTMF",
                ch,
                post=[("DTMF-Digit", d), ("DTMF-Duration", "2000"), ("DTMF-Source", source)],
            )
            ch.variables["last_dtmf_duration"] = "2000"
            ch.dtmf_buffer.append(d)
            waiter = self.rt(ch).dtmf_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def transfer(self, ch: Channel, dest: str, context: str = "default") -> None:
        """``uuid_transfer``: break out of the running apps and route to ``dest``."""
        other = ch.bridged_to
        ch.transfer_us = self.clock.now_us()
        ch.profile.transfer_source = f"{ch.transfer_us // 1_000_000}:{ch.uuid}:uuid_br:{dest}"
        old_dest = ch.profile.destination_number
        if other is None:
            ch.profile.rdnis = old_dest
        self.unwind(ch)
        if other is not None:
            self.set_state(ch, "CS_EXCHANGE_MEDIA")
            # Leaving the bridge: the new caller profile has no other leg.
            ch.other_profile, ch.other_type = None, ""
            ch.profile.rdnis = old_dest
        if other is not None:
            other.bridged_to = None
            ch.bridged_to = None
            # The bridge breaks: the other leg returns to CS_EXECUTE and, with
            # nothing left to run (no park_after_bridge), hangs up.
            self.unwind(other)
            self.set_state(other, "CS_EXECUTE")
            self.hangup(other, "NORMAL_CLEARING")
        if dest.startswith("'") or ":" in dest:
            # inline dialplan: 'app:arg,app2:arg2'
            apps = []
            for item in dest.strip("'").split(","):
                app, _, arg = item.partition(":")
                apps.append((app, arg))
            self.set_state(ch, "CS_ROUTING")
            ch.profile.rdnis = ""  # the inline dialplan's profile has none (capture 03)
            self.set_state(ch, "CS_EXECUTE")
            self.start_apps(ch, apps)
            return
        ch.profile.destination_number = dest
        self.route(ch, dest, context, call_update=other is not None)

    def queue_app(self, ch: Channel, item: _Queued) -> None:
        """Queue an application for a parked / socket-controlled channel."""
        self.rt(ch).queue.put_nowait(item)

    # ------------------------------------------------------------ restart/faults
    def set_fault(self, name: str, value: object) -> None:
        """Switch a fault on/off: ``refuse_originate``, ``slow_answer``, ``event_delay``, ``reorder``."""
        if not hasattr(self.faults, name):
            raise ValueError(f"unknown fault {name!r}")
        setattr(self.faults, name, value)

    # ---------------------------------------------------------------- the API
    async def api(self, command: str, arg: str = "") -> str:
        """Execute an API command and return its body, exactly as FreeSWITCH prints it."""
        handler = getattr(self, f"api_{command}", None)
        if handler is None:
            return f"-ERR {command} Command not found!\n"
        result = handler(arg)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def api_event(self, command: str, arg: str) -> SimEvent:
        """The API event FreeSWITCH fires for every api/bgapi command."""
        headers = self.core_headers("API") + [("API-Command", command)]
        if arg:
            headers.append(("API-Command-Argument", arg))
        return SimEvent("API", headers)

    def api_status(self, arg: str) -> str:
        up = self.uptime_text(self.uptime_us())
        n = len(self.channels)
        return (
            f"UP {up}\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
            f"{self.session_count} session(s) since startup\n"
            f"{n} session(s) - peak {n}, last 5min {n} \n"
            "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
            "1000 session(s) max\nmin idle cpu 0.00/99.00\n"
            "Current Stack Size/Max 240K/8192K\n"
        )

    def api_version(self, arg: str) -> str:
        return f"FreeSWITCH Version {VERSION} ( 64bit)\n"

    def api_uptime(self, arg: str) -> str:
        return f"{self.uptime_us() // 1_000_000}\n"

    def api_hostname(self, arg: str) -> str:
        return self.hostname

    def api_global_getvar(self, arg: str) -> str:
        values = {"hostname": self.hostname, "core_uuid": self.core_uuid,
                  "switchname": self.hostname, "local_ip_v4": self.ipv4}  # fmt: skip
        return values.get(arg.strip(), "")

    def api_reloadxml(self, arg: str) -> str:
        self.fire(
            SimEvent(
                "RELOADXML",
                self.core_headers("RELOADXML", ("switch_xml.c", "switch_xml_open_root", "2385")),
            )
        )
        return "+OK [Success]\n"

    _LOG_LEVELS = {"CONSOLE": 0, "ALERT": 1, "CRIT": 2, "ERR": 3, "WARNING": 4,
                   "NOTICE": 5, "INFO": 6, "DEBUG": 7}  # fmt: skip

    def api_log(self, arg: str) -> str:
        """``log <LEVEL> <text>``: a log line to every session that enabled ``log``."""
        level_name, _, text = arg.partition(" ")
        level = self._LOG_LEVELS.get(level_name.upper(), 7)
        now = self.clock.now()
        frac = int(now * 1e6) % 1_000_000
        line = f"{stamp(now)}.{frac:06d} 99.00% [{level_name.upper()}] mod_commands.c:7200 {text}\n"
        for sink in list(self.log_sinks):
            sink.deliver_log(level, line, "mod_commands.c", "log_function", 7200)  # type: ignore[attr-defined]
        return "+OK\n"

    def api_sofia(self, arg: str) -> str:
        """``sofia status``: one profile, as on the capture host."""
        bar = "=" * 97
        return (
            f"{'Name':>25}\t{'Type':>7}\t{'Data':>42}\tState\n{bar}\n"
            f"{'lo':>25}\t{'profile':>7}\t{'sip:mod_sofia@127.0.0.1:5060':>42}\tRUNNING (0)\n"
            f"{bar}\n1 profile 0 aliases\n"
        )

    def api_originate(self, arg: str) -> Awaitable[str]:
        return self.originate(arg)

    def _rows(self) -> list[dict[str, str]]:
        rows = []
        for ch in sorted(self.channels.values(), key=lambda c: c.created_us):
            if not ch.alive:
                continue
            p = ch.profile
            created = ch.created_us / 1e6
            rows.append(
                {
                    "uuid": ch.uuid, "direction": ch.direction, "created": stamp(created),
                    "created_epoch": str(int(created)), "name": ch.name, "state": ch.state,
                    "cid_name": p.caller_id_name, "cid_num": p.caller_id_number, "ip_addr": "",
                    "dest": p.destination_number, "application": ch.current_app,
                    "application_data": ch.current_app_data, "dialplan": p.dialplan,
                    "context": p.context, "read_codec": "L16", "read_rate": "8000",
                    "read_bit_rate": "128000", "write_codec": "L16", "write_rate": "8000",
                    "write_bit_rate": "128000", "secure": "", "hostname": self.hostname,
                    "presence_id": "", "presence_data": "", "accountcode": "",
                    "callstate": ch.callstate, "callee_name": p.callee_id_name,
                    "callee_num": p.callee_id_number,
                    "callee_direction": "RECV" if ch.direction == "outbound" else "",
                    "call_uuid": ch.uuid if ch.direction == "outbound" else "",
                    "sent_callee_name": "", "sent_callee_num": "",
                    "initial_cid_name": p.orig_caller_id_name,
                    "initial_cid_num": p.orig_caller_id_number, "initial_ip_addr": "",
                    "initial_dest": p.destination_number, "initial_dialplan": p.dialplan,
                    "initial_context": p.context,
                }
            )  # fmt: skip
        return rows

    _CALL_KEYS = ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name",
                  "cid_num", "ip_addr", "dest", "presence_id", "presence_data", "accountcode",
                  "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid",
                  "hostname", "sent_callee_name", "sent_callee_num")  # fmt: skip
    _B_KEYS = ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name",
               "cid_num", "ip_addr", "dest", "presence_id", "presence_data", "accountcode",
               "callstate", "callee_name", "callee_num", "callee_direction", "sent_callee_name",
               "sent_callee_num")  # fmt: skip

    def _call_rows(self, bridged_only: bool = False) -> list[dict[str, str]]:
        by_uuid = {r["uuid"]: r for r in self._rows()}
        rows, seen = [], set()
        for uuid, row in by_uuid.items():
            if uuid in seen:
                continue
            ch = self.channels[uuid]
            other = ch.bridged_to
            if other is not None and other.uuid in by_uuid and ch.other_type == "originator":
                continue  # listed under its originator
            out = {k: row[k] for k in self._CALL_KEYS}
            b = by_uuid.get(other.uuid) if other is not None else None
            if bridged_only and b is None:
                continue
            for k in self._B_KEYS:
                out[f"b_{k}"] = b[k] if b else ""
            out["call_created_epoch"] = str(int(ch.bridged_us / 1e6)) if b else ""
            seen.add(uuid)
            if b:
                seen.add(b["uuid"])
            rows.append(out)
        return rows

    @staticmethod
    def _show(
        rows: list[dict[str, str]], as_json: bool, keys: tuple[str, ...] | None = None
    ) -> str:
        if as_json:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"),
                              ensure_ascii=False) + "\n"  # fmt: skip
        if not rows:
            return "\n0 total.\n"
        head = ",".join(rows[0])
        lines = [",".join(r.values()) for r in rows]
        return head + "\n" + "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def api_show(self, arg: str) -> str:
        words = arg.split()
        as_json = words[-2:] == ["as", "json"]
        what = words[0] if words else ""
        if what == "channels" and words[1:2] == ["count"]:
            return f"\n{len(self._rows())} total.\n"
        if what == "channels":
            return self._show(self._rows(), as_json)
        if what == "calls":
            return self._show(self._call_rows(), as_json)
        if what == "bridged_calls":
            return self._show(self._call_rows(bridged_only=True), as_json)
        return "-USAGE: show <channels|calls|bridged_calls> [as json]\n"

    def _chan(self, uuid: str) -> Channel | None:
        return self.get(uuid.strip())

    def api_uuid_exists(self, arg: str) -> str:
        return "true" if self._chan(arg) else "false"

    def api_uuid_answer(self, arg: str) -> str:
        ch = self._chan(arg.split()[0] if arg else "")
        if ch is None:
            return "-ERR No such channel!\n"
        if self.faults.slow_answer:
            self.spawn(self._slow_answer(ch))
        else:
            self.answer(ch)
        return "+OK\n"

    async def _slow_answer(self, ch: Channel) -> None:
        await self.clock.sleep(self.faults.slow_answer)
        self.answer(ch)

    def api_uuid_kill(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.hangup(ch, words[1] if len(words) > 1 else "NORMAL_CLEARING")
        return "+OK\n"

    def api_uuid_getvar(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        if len(words) < 2:
            return "_undef_"
        value = ch.variables.get(words[1])
        if value is None:
            # switch_channel_get_variable falls back to the caller profile's fields.
            value = self._profile_var(ch, words[1])
        return value if value is not None else "_undef_"

    @staticmethod
    def _profile_var(ch: Channel, name: str) -> str | None:
        p = ch.profile
        fields = {
            "caller_id_name": p.caller_id_name,
            "caller_id_number": p.caller_id_number,
            "callee_id_name": p.callee_id_name,
            "callee_id_number": p.callee_id_number,
            "destination_number": p.destination_number,
            "ani": p.ani,
            "rdnis": p.rdnis,
            "context": p.context,
            "dialplan": p.dialplan,
            "source": p.source,
            "chan_name": ch.name,
        }
        return fields.get(name) or None

    def api_uuid_setvar(self, arg: str) -> str:
        uuid, _, rest = arg.partition(" ")
        ch = self._chan(uuid)
        if ch is None:
            return "-ERR No such channel!\n"
        name, _, value = rest.partition(" ")
        if not name:
            return "-USAGE: <uuid> <var> [value]\n"
        if value:
            ch.variables[name] = value
        else:
            ch.variables.pop(name, None)
        return "+OK\n"

    def api_uuid_setvar_multi(self, arg: str) -> str:
        uuid, _, rest = arg.partition(" ")
        ch = self._chan(uuid)
        if ch is None:
            return "-ERR No such channel!\n"
        for item in rest.split(";"):
            name, _, value = item.partition("=")
            if name:
                ch.variables[name] = value
        return "+OK\n"

    def api_uuid_dump(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        event = self.channel_event("CHANNEL_DATA", ch)
        if words[1:2] == ["json"]:
            return serialize_json(event.headers)
        return serialize_plain(event.headers)

    def api_uuid_broadcast(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None or len(words) < 2:
            return "-ERR No such channel!\n"
        path = words[1]
        legs = words[2] if len(words) > 2 else "aleg"
        target = ch
        if legs == "bleg" and ch.bridged_to is not None:
            target = ch.bridged_to

        def after() -> None:
            cmd = [
                ("call-command", "execute"),
                ("execute-app-name", "playback"),
                ("execute-app-arg", path),
                ("event-lock", "true"),
                ("lead-frames", "5"),
            ]
            self.fire_channel("COMMAND", target, pre=cmd)

        self.queue_app(target, _Queued("playback", path, after=after))
        return "+OK Message sent\n"

    def api_uuid_send_dtmf(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None or len(words) < 2:
            return "-ERR No such channel!\n"
        digits = words[1].split("@")[0]
        # Sent DTMF is received by the far end: the loopback peer or bridged leg.
        far = ch.loopback_peer if ch.is_loopback else ch.bridged_to
        if far is not None and far.alive:
            self.receive_dtmf(far, digits, "UNKNOWN")
        return f"+OK {ch.uuid} sent DTMF {digits}.\n"

    def api_uuid_recv_dtmf(self, arg: str) -> str:
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None or len(words) < 2:
            return "-ERR No such channel!\n"
        self.receive_dtmf(ch, words[1], "APP")
        return f"+OK {ch.uuid} received DTMF {words[1]}.\n"

    def api_uuid_hold(self, arg: str) -> str:
        words = arg.split()
        mode = ""
        if words and words[0] in ("off", "toggle"):
            mode = words.pop(0)
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        if mode == "off":
            if ch.is_loopback or not ch.held:
                # Captured: "uuid_hold off" on a loopback channel fails.
                return "-ERR Operation failed\n"
            self._unhold(ch)
        elif mode == "toggle" and ch.held and not ch.is_loopback:
            self._unhold(ch)
        else:
            # Captured on loopback: every hold/toggle fires CHANNEL_HOLD.
            ch.held = True
            ch.last_hold_us = self.clock.now_us()
            self.fire_channel("CHANNEL_HOLD", ch)
        return "+OK Success\n"

    def _unhold(self, ch: Channel) -> None:
        ch.held = False
        if ch.last_hold_us:
            ch.hold_accum_us += self.clock.now_us() - ch.last_hold_us
        self.fire_channel("CHANNEL_UNHOLD", ch)

    def api_uuid_record(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"
        ch = self._chan(words[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        action, path = words[1], words[2]
        rec = [("Record-File-Path", path)]
        if action == "start":
            ch.recording = path
            ch.variables["record_file_path"] = path
            self.fire_channel("RECORD_START", ch, post=rec)
            self.fire_channel(
                "MEDIA_BUG_START", ch,
                post=[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)],
            )  # fmt: skip
        elif action == "stop":
            if not ch.recording:
                return "-ERR Cannot find bug!\n"
            ch.recording = ""
            v = ch.variables
            v["record_samples"] = "0"
            v["record_seconds"] = "0"
            v["record_ms"] = "0"
            self.fire_channel(
                "RECORD_STOP", ch, post=rec + [("Record-Completion-Cause", "empty-file")]
            )
            self.fire_channel(
                "MEDIA_BUG_STOP", ch,
                post=[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)],
            )  # fmt: skip
        elif action in ("mask", "unmask"):
            if not ch.recording:
                return "-ERR Cannot find bug!\n"
            ch.variables["record_masked"] = "true" if action == "mask" else "false"
        else:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"
        return "+OK Success\n"

    def api_uuid_transfer(self, arg: str) -> str:
        words = split_args(arg)
        if len(words) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self._chan(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        rest = words[1:]
        both: Channel | None = None
        if rest[0] in ("-bleg", "-both"):
            flag = rest.pop(0)
            if flag == "-bleg" and ch.bridged_to is not None and ch.bridged_to.alive:
                # -bleg means the bridge partner; without one FreeSWITCH
                # transfers the channel itself (capture 03, CALL_REJECTED).
                ch = ch.bridged_to
            elif flag == "-both" and ch.bridged_to is not None and ch.bridged_to.alive:
                # Both legs get CF_REDIRECT (the broken bridge hangs neither up) and
                # the partner is transferred first (mod_commands transfer_function).
                both = ch.bridged_to
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        dest = rest[0]
        inline = len(rest) > 1 and rest[1] == "inline"
        context = rest[2] if len(rest) > 2 else "default"
        target = f"'{dest}'" if inline else dest
        if both is not None:
            self._break_bridge_redirect(ch, both)
            self.transfer(both, target, context)
        self.transfer(ch, target, context)
        return "+OK\n"

    def _break_bridge_redirect(self, a: Channel, b: Channel) -> None:
        """End the bridge of ``a`` and ``b`` for a redirect: CHANNEL_UNBRIDGE, nobody hung up."""
        for x in (a, b):
            for entry in [e for e in self.rt(x).unwind if e.label == "unbridge"]:
                self.pop_unwind(x, entry)
        for x, y in ((a, b), (b, a)):
            if x.bridged_to is y:
                x.bridged_to = None

    def api_uuid_park(self, arg: str) -> str:
        """``uuid_park <uuid>``: break whatever the channel does (a bridge too) and park it."""
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.unwind(ch)
        self.start_apps(ch, [("park", "")], end_hangup=False)
        return "+OK\n"

    def api_uuid_break(self, arg: str) -> str:
        """``uuid_break <uuid> [all]``: stop the file playing now (``all``: and the queued ones)."""
        words = arg.split()
        ch = self._chan(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        rt = self.rt(ch)
        if len(words) > 1 and words[1] == "all":
            while not rt.queue.empty():
                rt.queue.get_nowait()
        if rt.playback_break is not None:
            rt.playback_break.set()
        return "+OK\n"

    def api_uuid_bridge(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <other_uuid>\n"
        a, b = self._chan(words[0]), self._chan(words[1])
        if a is None or b is None:
            return "-ERR Invalid uuid\n"
        # A leg already bridged elsewhere leaves that bridge first (its old partner is
        # unbridged, not hung up: it goes back to what it ran before, e.g. park).
        for ch in (a, b):
            if ch.bridged_to is not None and ch.bridged_to not in (a, b):
                self._break_bridge(ch)
        # switch_ivr_uuid_bridge: both legs get a transfer source and each
        # other's profile before their parks are broken.
        now_s = self.clock.now_us() // 1_000_000
        a.profile.transfer_source = f"{now_s}:{a.uuid}:uuid_br:{b.uuid}"
        b.profile.transfer_source = f"{now_s}:{b.uuid}:uuid_br:{a.uuid}"
        self._set_other(a, b, "originatee")
        self._set_other(b, a, "originator")
        for ch in (a, b):
            self.unwind(ch)
            for state in ("CS_HIBERNATE", "CS_RESET", "CS_SOFT_EXECUTE"):
                self.set_state(ch, state)
        self.spawn(self._uuid_bridge(a, b))
        return f"+OK {b.uuid}\n"

    def _break_bridge(self, ch: Channel) -> None:
        other = ch.bridged_to
        if other is None:
            return
        for x in (ch, other):
            for entry in [e for e in self.rt(x).unwind if e.label == "unbridge"]:
                self.pop_unwind(x, entry)
        if ch.bridged_to is other:
            ch.bridged_to = None
        if other.bridged_to is ch:
            other.bridged_to = None

    async def _uuid_bridge(self, a: Channel, b: Channel) -> None:
        for ch, other in ((a, b), (b, a)):
            ch.current_app = "uuid_bridge"
            self.fire_channel(
                "CHANNEL_EXECUTE",
                ch,
                post=[
                    ("Application", "uuid_bridge"),
                    ("Application-Data", other.uuid),
                ],
            )
        self._bridge(a, b)
        # The second leg now sits in CS_EXCHANGE_MEDIA (the first stays in
        # CS_SOFT_EXECUTE); no CHANNEL_STATE is fired for it (capture 03: only
        # ``show bridged_calls`` reveals the state).
        b.state = "CS_EXCHANGE_MEDIA"

    # ------------------------------------------------ simulator-only commands
    def api_sim_fault(self, arg: str) -> str:
        """Faults on demand over ESL (not a FreeSWITCH command).

        ``sim_fault drop`` | ``restart [down_for]`` | ``refuse_originate <CAUSE|off>``
        | ``slow_answer <seconds>`` | ``event_delay <seconds>`` | ``reorder on|off``
        | ``disk_full on|off`` (CDR backup files cannot be written) | ``clear``.
        """
        words = arg.split()
        if not words:
            return "-USAGE: sim_fault <drop|restart|refuse_originate|slow_answer|event_delay|reorder|clear> [value]\n"
        name, value = words[0], (words[1] if len(words) > 1 else "")
        if name in ("drop", "restart"):
            if self.on_node_fault is None:
                return "-ERR no node\n"
            # After the +OK has been written.
            asyncio.get_running_loop().call_soon(self.on_node_fault, name, value)
            return "+OK\n"
        if name == "clear":
            self.faults = Faults()
            if self.cdr_poster is not None:
                self.cdr_poster.disk_full = False  # type: ignore[attr-defined]
            return "+OK\n"
        if name == "disk_full":
            if self.cdr_poster is None:
                return "-ERR no CDR poster\n"
            self.cdr_poster.disk_full = value != "off"  # type: ignore[attr-defined]
            return "+OK\n"
        try:
            if name == "refuse_originate":
                self.set_fault(name, "" if value in ("", "off") else value.upper())
            elif name in ("slow_answer", "event_delay"):
                self.set_fault(name, float(value or "0"))
            elif name == "reorder":
                self.set_fault(name, value != "off")
            else:
                return f"-ERR unknown fault {name}\n"
        except ValueError as exc:
            return f"-ERR {exc}\n"
        return "+OK\n"

    def api_sim_call(self, arg: str) -> str:
        """``sim_call <did> <caller-number> [caller name]``: an inbound call now."""
        words = arg.split(" ", 2)
        if len(words) < 2:
            return "-USAGE: sim_call <did> <caller-number> [caller name]\n"
        ch = self.inbound_call(words[0], words[1], words[2] if len(words) > 2 else "")
        return f"+OK {ch.uuid}\n"

    def api_sim_agent(self, arg: str) -> str:
        """``sim_agent add|del|busy|noanswer <ext>``: manage simulated agent phones."""
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: sim_agent <add|del|busy|noanswer|normal> <ext>\n"
        action, ext = words[0], words[1]
        if action == "add":
            self.agents[ext] = AgentPhone(ext)
        elif action == "del":
            self.agents.pop(ext, None)
        elif ext in self.agents and action in ("busy", "noanswer", "normal"):
            phone = self.agents[ext]
            phone.p_busy = 1.0 if action == "busy" else 0.0
            phone.p_no_answer = 1.0 if action == "noanswer" else 0.0
        else:
            return f"-ERR no agent {ext}\n"
        return "+OK\n"

    def api_eval(self, arg: str) -> str:
        return arg.replace("${domain}", "127.0.0.1")

    def api_fsctl(self, arg: str) -> str:
        """``fsctl shutdown [restart]``: handled by the node (see SwitchNode.restart)."""
        words = arg.split()
        if words[:1] == ["shutdown"] and self.on_shutdown is not None:
            # After the +OK has been written (capture 09: the reply comes first).
            asyncio.get_running_loop().call_soon(self.on_shutdown, "restart" in words)
        return "+OK\n"
