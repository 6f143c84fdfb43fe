"""The switchboard: switch nodes, the calls' outbound sockets and the routing engine, joined.

One asyncio process (see docs/decisions/0011-switchboard.md):

* one :class:`NodeLink` per FreeSWITCH node: an inbound ESL connection (reconnecting, restart
  aware) for the commands that are not about one caller's socket (``originate`` of agent and
  second-line legs, ``uuid_bridge``, ``uuid_kill``) and for the events of those legs;
* an outbound-socket server: the node's dialplan hands every platform call to it
  (``socket ... async full``), and one :class:`~.session.CallSession` coroutine runs the call;
* the routing engine (:class:`routing.engine.router.Engine`) as the single writer of queue and
  agent state. It is pure and synchronous: every ``handle`` runs on the event loop without an
  ``await`` in between, so there is nothing to lock; its decisions are dispatched to the calls'
  sessions, which act on the switch.

Time: the engine runs on the switch's clock. Events bring their own timestamp
(``Event-Date-Timestamp``); otherwise :attr:`Switchboard.clock` gives "now" (real time in
production, the simulator's virtual clock in tests that run faster than real time).

Persistence goes through a :class:`Sink` (the Django one is ``telephony.switchboard_store``);
this module imports no Django.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing.engine.model import (
    AgentBreak,
    AgentLogin,
    AgentLogout,
    AgentUnbreak,
    AgentUpdated,
    Announce,
    CallAbandoned,
    CallEnded,
    CancelOffer,
    Decision,
    DeviceRegistered,
    DeviceUnregistered,
    Escalate,
    Offer,
    OfferCallback,
    OfferNoAnswer,
    OfferRejected,
    Overflow,
    QueueUpdated,
    Reject,
    Stall,
    TenantUpdated,
    Tick,
    WrapUpDone,
)
from routing.engine.model import (
    Event as EngineEvent,
)
from routing.engine.router import Engine
from telephony.esl import (
    CommandError,
    ConnectionLost,
    ESLError,
    Event,
    OutboundCall,
    OutboundServer,
    ReconnectingClient,
    parse_show_calls,
    parse_show_channels,
)

from .directory import Directory

__all__ = [
    "CallSummary",
    "Clock",
    "MemorySink",
    "NodeLink",
    "NodeSpec",
    "RealClock",
    "Sink",
    "Switchboard",
]

log = logging.getLogger("telephony.switchboard")

#: The events the switchboard subscribes to on each node's inbound connection (not "all":
#: a firehose of ~100 events per call would cost more than everything else together).
NODE_EVENTS = (
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
    "HEARTBEAT",
)

#: Commands the recording API may send without an agent (supervisors, clients' systems).
RECORDING_COMMANDS = frozenset({"mask", "unmask", "record"})

#: originate failures that mean "the agent did not pick up" vs "the agent refused".
NO_ANSWER_CAUSES = frozenset(
    {
        "NO_ANSWER",
        "NO_USER_RESPONSE",
        "ALLOTTED_TIMEOUT",
        "ORIGINATOR_CANCEL",
        "RECOVERY_ON_TIMER_EXPIRE",
    }
)
UNREGISTERED_CAUSES = frozenset({"USER_NOT_REGISTERED", "SUBSCRIBER_ABSENT", "UNALLOCATED_NUMBER"})


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time (production)."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A switch node as the switchboard reaches it."""

    name: str
    host: str
    port: int
    password: str


@dataclass
class CallSummary:
    """What the platform records about one call (the caller's leg and the legs it caused)."""

    call_id: str
    tenant_id: str
    node: str
    did: str
    caller: str
    origin: str
    started_ms: int
    answered_ms: int | None = None
    ended_ms: int | None = None
    outcome: str = ""  # ivr, answered, abandoned, overflowed, escalated, callback, failed
    cause: str = ""  # hangup cause or why it failed
    queue: str = ""
    agent: str = ""
    legs: dict[str, str] = field(default_factory=dict)  # leg uuid -> role (a, agent, escalation)
    meter: dict[str, Any] | None = None
    parent_call_id: str = ""  # a callback's original call

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "tenant_id": self.tenant_id,
            "node": self.node,
            "did": self.did,
            "caller": self.caller,
            "origin": self.origin,
            "started_ms": self.started_ms,
            "answered_ms": self.answered_ms,
            "ended_ms": self.ended_ms,
            "outcome": self.outcome,
            "cause": self.cause,
            "queue": self.queue,
            "agent": self.agent,
            "legs": dict(self.legs),
        }


class Sink(Protocol):
    """Where the switchboard's results go (the database in production)."""

    async def call_finished(self, summary: CallSummary, segments: list[Any]) -> None: ...

    async def call_progress(self, summary: CallSummary) -> None: ...

    async def notice(self, kind: str, data: dict[str, Any]) -> None: ...

    async def lookup(self, tenant_id: str, caller: str) -> dict[str, Any] | None: ...

    async def save_engine_snapshot(self, data: bytes, at: float) -> None: ...

    async def load_engine_snapshot(self) -> tuple[bytes, float] | None: ...

    async def load_progress(self, tenant_id: str, call_id: str) -> dict[str, Any] | None:
        """The meter state last stored for a call in progress (a predecessor's), if any."""
        ...


class MemorySink:
    """Keeps everything in lists (tests, benchmarks)."""

    def __init__(self, shared_with: MemorySink | None = None) -> None:
        """``shared_with``: a predecessor's sink whose stored progress and engine snapshot this
        one sees (what the shared database gives two switchboard processes)."""
        self.calls: dict[str, CallSummary] = {}
        self.segments: dict[str, list[Any]] = {}
        self.notices: list[tuple[str, dict[str, Any]]] = []
        self.contacts: dict[tuple[str, str], dict[str, Any]] = {}
        self.finished = asyncio.Event()
        #: call id -> the last progress record (summary with the meter state so far)
        self.progress: dict[str, CallSummary] = (
            shared_with.progress if shared_with is not None else {}
        )
        self.snapshot: list[tuple[bytes, float]] = (
            shared_with.snapshot if shared_with is not None else []
        )

    async def call_progress(self, summary: CallSummary) -> None:
        self.progress[summary.call_id] = summary

    async def call_finished(self, summary: CallSummary, segments: list[Any]) -> None:
        if summary.call_id in self.calls:
            self.notices.append(("duplicate_call_record", {"call_id": summary.call_id}))
        self.calls[summary.call_id] = summary
        self.segments[summary.call_id] = list(segments)
        self.finished.set()

    async def notice(self, kind: str, data: dict[str, Any]) -> None:
        self.notices.append((kind, data))

    async def lookup(self, tenant_id: str, caller: str) -> dict[str, Any] | None:
        return self.contacts.get((tenant_id, caller))

    async def save_engine_snapshot(self, data: bytes, at: float) -> None:
        self.snapshot[:] = [(data, at)]

    async def load_engine_snapshot(self) -> tuple[bytes, float] | None:
        return self.snapshot[0] if self.snapshot else None

    async def load_progress(self, tenant_id: str, call_id: str) -> dict[str, Any] | None:
        record = self.progress.get(call_id)
        if record is None or record.tenant_id != tenant_id:
            return None
        return record.meter


def event_ms(ev: Event | None, fallback: float) -> int:
    """The event's switch timestamp in ms (``fallback`` seconds when it has none)."""
    if ev is not None and ev.timestamp is not None:
        return ev.timestamp // 1000
    return int(fallback * 1000)


class NodeLink:
    """The inbound ESL connection to one node, with the legs we started there."""

    def __init__(self, switchboard: Switchboard, spec: NodeSpec) -> None:
        self.sb = switchboard
        self.spec = spec
        self.client = ReconnectingClient(
            spec.host,
            spec.port,
            spec.password,
            events=NODE_EVENTS,
            on_reconnect=self._on_reconnect,
            backoff_initial=0.2,
            backoff_max=5.0,
            command_timeout=10.0,
        )
        #: leg uuid -> future resolved with the leg's CHANNEL_HANGUP_COMPLETE event.
        self.leg_waiters: dict[str, list[asyncio.Future[Event]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.reconciliations = 0
        #: answer times (switch ms) of legs we originated, from CHANNEL_ANSWER
        self.answered_ms: dict[str, int] = {}

    async def start(self) -> None:
        await self.client.start(wait=False)
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name=f"node {self.spec.name}"
        )

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.client.stop()

    async def api(self, command: str, timeout: float | None = 10.0) -> str:
        await self.client.wait_connected(timeout)
        started = time.perf_counter()
        try:
            return await self.client.api(command, timeout)
        finally:
            self.sb.command_latency.append(time.perf_counter() - started)

    async def originate(self, dial: str, timeout: float) -> str:
        """``bgapi originate``: the leg's UUID, or raise :class:`CommandError` with the cause."""
        await self.client.wait_connected(10.0)
        job = await self.client.bgapi(f"originate {dial}")
        text = await job.result(timeout)
        if not text.startswith("+OK"):
            raise CommandError(f"originate {dial}", text.strip())
        return text.split()[1] if len(text.split()) > 1 else ""

    def wait_leg_end(self, uuid: str) -> asyncio.Future[Event]:
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self.leg_waiters.setdefault(uuid, []).append(fut)
        return fut

    async def _read(self) -> None:
        async for ev in self.client.iter_events():
            try:
                self._on_event(ev)
            except Exception:  # noqa: BLE001  # one bad event must not stop the node's reader
                log.exception("node %s: event %s failed", self.spec.name, ev.name)

    def _on_event(self, ev: Event) -> None:
        self.sb.stats["node_events"] += 1
        if ev.name == "CHANNEL_ANSWER" and ev.unique_id and ev.unique_id in self.sb.agent_legs:
            self.answered_ms[ev.unique_id] = event_ms(ev, self.sb.now())
        if ev.name == "CHANNEL_HANGUP_COMPLETE" and ev.unique_id:
            self.answered_ms.pop(ev.unique_id, None)
            for fut in self.leg_waiters.pop(ev.unique_id, ()):
                if not fut.done():
                    fut.set_result(ev)
            self.sb._leg_gone(self, ev.unique_id, ev)

    async def _on_reconnect(self, restarted: bool) -> None:
        """After a reconnect: every leg we track that the node no longer has is over."""
        self.reconciliations += 1
        try:
            body = await self.client.api("show channels as json", 10.0)
            live = {row.uuid for row in parse_show_channels(body)}
        except (ESLError, OSError, TimeoutError, ValueError) as exc:
            log.warning(
                "node %s: reconcile failed (%r); will retry on the next reconnect",
                self.spec.name,
                exc,
            )
            return
        self.sb._reconcile_node(self, live, restarted)


class Switchboard:
    """See the module docstring."""

    def __init__(
        self,
        directory: Directory,
        nodes: Iterable[NodeSpec],
        *,
        sink: Sink | None = None,
        clock: Clock | None = None,
        outbound_host: str = "127.0.0.1",
        outbound_port: int = 8084,
        moh: str = "local_stream://moh",
        engine: Engine | None = None,
        board: Any = None,
        callback_dial: str = "sofia/gateway/pstn/{number}",
        callback_attempts: int = 3,
        callback_retry_s: float = 300.0,
        snapshot_every_s: float = 5.0,
        reentry_grace_s: float = 5.0,
    ) -> None:
        self.directory = directory
        self.sink: Sink = sink or MemorySink()
        self.clock: Clock = clock or RealClock()
        self.moh = moh
        self.engine = engine or Engine()
        #: A ``routing.live.LiveBoard`` fed with every engine event and its decisions.
        self.board = board
        #: Dial string for calling a caller back (``{number}``: E.164 with "+").
        self.callback_dial = callback_dial
        self.callback_attempts = callback_attempts
        self.callback_retry_s = callback_retry_s
        self.links: dict[str, NodeLink] = {spec.name: NodeLink(self, spec) for spec in nodes}
        # connect_timeout: a busy loop must not drop a call whose connect reply is already in.
        self.server = OutboundServer(
            self._handle_call, outbound_host, outbound_port, connect_timeout=30.0
        )
        from .session import CallSession  # noqa: PLC0415  # the session module imports this one

        self._session_cls = CallSession
        self.sessions: dict[str, CallSession] = {}
        #: agent leg uuid -> (call id, agent id)
        self.agent_legs: dict[str, tuple[str, str]] = {}
        self.stats: Counter[str] = Counter()
        #: seconds from an event reaching us to the command it caused being answered.
        self.command_latency: deque[float] = deque(maxlen=100_000)
        #: seconds from the engine deciding an offer to the agent's originate being sent.
        self.dispatch_latency: deque[float] = deque(maxlen=100_000)
        #: seconds the loop spent taking each engine snapshot.
        self.snapshot_seconds: deque[float] = deque(maxlen=10_000)
        self.agent_states: dict[str, str] = {}
        self._timer_wakeup = asyncio.Event()
        self._timer_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self.outcomes: Counter[str] = Counter()
        #: Called with (agent id, event) for the agents' consoles (see :meth:`push`).
        self.agent_listener: Any = None
        self._agent_seq: Counter[str] = Counter()
        #: agent legs found bridged on a node at start (a previous switchboard's calls).
        self.adopted: dict[str, str] = {}
        #: Seconds between engine snapshots stored through the sink (0: never), and how long
        #: after a takeover the calls of the restored engine wait for their callers to come back.
        self.snapshot_every_s = snapshot_every_s
        self.reentry_grace_s = reentry_grace_s
        #: Engine calls restored from a predecessor's snapshot and not yet claimed by a caller
        #: who came back (their socket resumed into ours) or an adopted bridged agent.
        self.restored_calls: set[str] = set()
        self.restored_from: float | None = None
        self._active = asyncio.Event()
        self.stopping = False

    # ---------------------------------------------------------------- lifecycle
    async def listen(self) -> None:
        """Open the outbound-socket server before becoming active (a standby): the calls that
        come meanwhile (the active one's, resumed into our socket by the dialplan when it
        died) wait until :meth:`start`."""
        if self.server._server is None:
            await self.server.start()

    async def start(self, *, restore: bool = False, restore_max_age_s: float = 120.0) -> None:
        """Become the active switchboard. ``restore``: take over the engine state (queues,
        agents, estimators) from the last snapshot a predecessor stored through the sink, if
        it is younger than ``restore_max_age_s`` (an older one describes calls long gone)."""
        if restore:
            await self._restore_engine(restore_max_age_s)
        self._load_engine(self.directory)
        await self.listen()
        for link in self.links.values():
            await link.start()
        self._timer_task = asyncio.get_running_loop().create_task(
            self._timers(), name="switchboard timers"
        )
        if self.snapshot_every_s > 0:
            self.spawn(self._snapshots(), name="engine snapshots")
        if self.restored_calls:
            self.spawn(self._expire_restored(), name="restored calls")
        self._started = True
        if not restore or self.restored_from is not None:
            self._active.set()
        # else (no snapshot to restore): after :meth:`adopt`, so the held callers meet an engine
        # that knows which agents are still busy with the predecessor's bridged calls.
        log.info(
            "switchboard up: %d node(s), outbound socket on %s:%s",
            len(self.links),
            self.server.host,
            self.server.port,
        )

    async def wait_active(self, timeout_s: float = 60.0) -> bool:
        """A standby's calls wait here (their sockets set up, their events buffered) until it
        is active; False if that did not happen within ``timeout_s`` (real seconds)."""
        if self._active.is_set():
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._active.wait()
        except TimeoutError:
            return False
        return True

    async def _restore_engine(self, max_age_s: float) -> None:
        snap = await self.sink.load_engine_snapshot()
        if snap is None:
            log.warning("takeover: no engine snapshot stored; starting from the configuration")
            return
        data, at = snap
        if self.clock.now() - at > max_age_s:
            log.warning(
                "engine snapshot is %.0f s old: not restored (starting from the configuration)",
                self.clock.now() - at,
            )
            return
        try:
            engine = Engine.restore_bytes(data)
        except (ValueError, EOFError, TypeError) as exc:
            log.error(
                "takeover: engine snapshot unusable (%r); starting from the configuration", exc
            )
            return
        self.engine = engine
        self.restored_from = at
        self.restored_calls = set(engine.active_calls())
        self.stats["restored_calls"] = len(self.restored_calls)
        log.warning(
            "takeover: engine restored from the snapshot of %.1f s ago (%d calls held)",
            self.clock.now() - at,
            len(self.restored_calls),
        )

    async def _snapshots(self) -> None:
        """Store the engine's state every ``snapshot_every_s`` (a successor restores it)."""
        while True:
            await self.clock.sleep(self.snapshot_every_s)  # switch time, as the engine's
            try:
                await self.save_snapshot()
            except Exception:  # noqa: BLE001  # a failed snapshot must not stop calls
                log.warning("engine snapshot not stored", exc_info=True)

    async def save_snapshot(self) -> None:
        """Store the engine's state now (through the sink)."""
        started = time.perf_counter()
        data = self.engine.snapshot_bytes()  # on the loop: the engine's one writer
        at = self.now()
        self.stats["snapshots"] += 1
        self.snapshot_seconds.append(time.perf_counter() - started)
        await self.sink.save_engine_snapshot(data, at)

    def claim_restored(self, engine_id: str) -> str | None:
        """A caller of the previous switchboard came back (``engine_id`` is the id it had in
        the engine): its state in the restored engine (``waiting``/``offered``), or None if the
        engine does not hold it (it arrived after the snapshot). An offer the predecessor made
        died with its leg: the agent is released and the engine offers the call again."""
        if engine_id not in self.restored_calls:
            return None
        self.restored_calls.discard(engine_id)
        state = self.engine.call_state(engine_id)
        if state not in ("waiting", "offered"):
            return None
        if state == "offered":
            for agent_id in self.engine.call_offers(engine_id):
                self.feed(OfferRejected(self.now(), engine_id, agent_id))
        self.stats["calls_resumed_in_place"] += 1
        return self.engine.call_state(engine_id)

    async def _expire_restored(self) -> None:
        """Restored calls nobody claimed (the caller hung up meanwhile; an agent leg that is
        gone) leave the engine after the grace."""
        # Real seconds: what it waits for is TCP (the callers' sockets resuming into ours).
        await asyncio.sleep(self.reentry_grace_s)
        for call_id in sorted(self.restored_calls):
            state = self.engine.call_state(call_id)
            if state == "connected":
                self.feed(CallEnded(self.now(), call_id))
            elif state in ("waiting", "offered"):
                self.feed(CallAbandoned(self.now(), call_id))
            self.stats["restored_calls_expired"] += 1
        self.restored_calls.clear()

    async def wait_nodes(self, timeout: float = 10.0) -> None:
        for link in self.links.values():
            await link.client.wait_connected(timeout)

    async def stop(self) -> None:
        """Shut down. Calls still up are left to a successor (see ``CallSession.run``)."""
        self.stopping = True
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        await self.server.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self.links.values():
            await link.stop()

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats["task_errors"] += 1
            log.error("switchboard task %s failed", task.get_name(), exc_info=task.exception())

    # ---------------------------------------------------------------- directory
    def _load_engine(self, directory: Directory) -> None:
        at = self.now()
        for tenant in directory.routing.values():
            self.feed(TenantUpdated(at, tenant))
        for tenant_id in directory.tenants:
            if tenant_id not in directory.routing and tenant_id not in self.engine.tenants:
                from routing.engine.model import TenantConfig  # noqa: PLC0415

                self.feed(TenantUpdated(at, TenantConfig(tenant_id)))
        for queue in directory.queues.values():
            self.feed(QueueUpdated(at, queue))
        for seat in directory.agents.values():
            self.feed(AgentUpdated(at, seat.profile))
            if seat.logged_in and self.engine.agent_state(seat.agent_id)[0] == "logged_out":
                self.feed(AgentLogin(at, seat.agent_id))

    def reload(self, directory: Directory) -> None:
        """Apply a changed configuration (new numbers, menus, queues, agents)."""
        self.directory = directory
        self._load_engine(directory)

    # ---------------------------------------------------------------- engine
    def now(self) -> float:
        return max(self.clock.now(), self.engine.now)

    def feed(self, event: EngineEvent) -> list[Decision]:
        """The one place the engine is called; dispatches its decisions."""
        decisions = self.engine.handle(event)
        if self.board is not None:
            self.board.apply(event, decisions)
        if decisions:
            self._dispatch(decisions)
        self._timer_wakeup.set()
        return decisions

    def _dispatch(self, decisions: list[Decision]) -> None:
        for d in decisions:
            cls = type(d)
            if cls is Offer:
                session = self.sessions.get(d.call_id)  # type: ignore[attr-defined]
                if session is None:
                    self.stats["offer_for_unknown_call"] += 1
                    continue
                session.offer(d.agent_id, d.offer_id)  # type: ignore[attr-defined]
                self.push(d.agent_id, session.card("offer"))  # type: ignore[attr-defined]
            elif cls is CancelOffer:
                session = self.sessions.get(d.call_id)  # type: ignore[attr-defined]
                if session is not None:
                    session.cancel_offer(d.agent_id, d.reason)  # type: ignore[attr-defined]
            elif cls in (Announce, Overflow, Escalate, OfferCallback, Reject):
                session = self.sessions.get(d.call_id)  # type: ignore[attr-defined]
                if session is not None:
                    session.decision(d)
                else:
                    self.stats[f"{cls.__name__.lower()}_for_unknown_call"] += 1
            elif cls is Stall:
                log.warning("queue %s stalled: %s (%d waiting)", d.queue_id, d.reason, d.waiting)  # type: ignore[attr-defined]
                self.spawn(self.sink.notice("stall", {"queue": d.queue_id, "reason": d.reason}))  # type: ignore[attr-defined]
            else:  # AgentStateChanged
                agent_id = getattr(d, "agent_id", None)
                if agent_id is not None:
                    self.agent_states[agent_id] = d.state  # type: ignore[attr-defined]
                    self.push(
                        agent_id,
                        {
                            "kind": "state",
                            "state": d.state,
                            "reason": d.reason,
                            "since": self.engine.now,
                        },  # type: ignore[attr-defined]
                    )

    async def _timers(self) -> None:
        """Send ``Tick`` when the engine's next timer is due."""
        while True:
            self._timer_wakeup.clear()
            due = self.engine.next_timer_at()
            if due is None:
                await self._timer_wakeup.wait()
                continue
            delay = due - self.clock.now()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._real_seconds(delay)):
                        await self._timer_wakeup.wait()
                continue
            self.feed(Tick(max(due, self.engine.now)))

    def _real_seconds(self, simulated: float) -> float:
        real = getattr(self.clock, "real", None)
        return real(simulated) if real is not None else simulated

    # ---------------------------------------------------------------- calls
    async def _handle_call(self, call: OutboundCall) -> None:
        session = self._session_cls(self, call)
        self.sessions[session.call_id] = session
        try:
            await session.run()
        finally:
            for key in [k for k, v in self.sessions.items() if v is session]:
                del self.sessions[key]

    def _leg_gone(self, link: NodeLink, uuid: str, ev: Event | None) -> None:
        """An agent or second-line leg hung up (event or reconciliation)."""
        owner = self.agent_legs.pop(uuid, None)
        if owner is None:
            return
        session = self.sessions.get(owner[0])
        if session is not None:
            session.leg_gone(uuid, ev)

    def _reconcile_node(self, link: NodeLink, live: set[str], restarted: bool) -> None:
        gone_legs = [
            u
            for u, (call_id, _a) in self.agent_legs.items()
            if u not in live and self._node_of(call_id) == link.spec.name
        ]
        for uuid in gone_legs:
            self.stats["reconciled_legs"] += 1
            self._leg_gone(link, uuid, None)
        for session in list(self.sessions.values()):
            if session.node == link.spec.name and session.call_id not in live:
                self.stats["reconciled_calls"] += 1
                session.channel_gone_unseen()
        log.info(
            "node %s reconciled (%s): %d live channels, %d legs and calls closed",
            link.spec.name,
            "restarted" if restarted else "reconnected",
            len(live),
            len(gone_legs),
        )

    def _node_of(self, call_id: str) -> str | None:
        session = self.sessions.get(call_id)
        return session.node if session is not None else None

    def link_for(self, node: str) -> NodeLink:
        link = self.links.get(node)
        if link is None:
            if len(self.links) == 1:
                return next(iter(self.links.values()))
            raise KeyError(f"no inbound ESL link to node {node!r}")
        return link

    def register_leg(self, uuid: str, call_id: str, agent_id: str) -> None:
        self.agent_legs[uuid] = (call_id, agent_id)

    def offer_failed(self, call_id: str, agent_id: str, cause: str, at: float) -> None:
        if cause in UNREGISTERED_CAUSES:
            self.stats["agent_unregistered"] += 1
            self.feed(DeviceUnregistered(at, agent_id))
            # No SIP registration feed in this version: look again in a minute.
            self.spawn(self._reregister_later(agent_id, 60.0))
        elif cause in NO_ANSWER_CAUSES:
            self.feed(OfferNoAnswer(at, call_id, agent_id))
        else:
            self.feed(OfferRejected(at, call_id, agent_id))

    async def _reregister_later(self, agent_id: str, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.feed(DeviceRegistered(self.now(), agent_id))

    # ---------------------------------------------------------------- persistence
    def progress(self, session: Any) -> None:
        """Persist a call in progress (meter so far), so a successor can finish it from CDRs."""
        summary = session.summary
        if session.meter is not None:
            summary.meter = session.meter.to_dict()
        snapshot = CallSummary(**{**summary.__dict__, "legs": dict(summary.legs)})
        self.spawn(self.sink.call_progress(snapshot), name=f"progress {summary.call_id}")

    # ---------------------------------------------------------------- agents' consoles
    def push(self, agent_id: str, event: dict[str, Any]) -> None:
        """An event for one agent's console, numbered per agent (a gap means: reload)."""
        if not agent_id or self.agent_listener is None:
            return
        self._agent_seq[agent_id] += 1
        self.agent_listener(agent_id, {**event, "seq": self._agent_seq[agent_id]})

    def agent_snapshot(self, agent_id: str) -> dict[str, Any]:
        state, reason = self.engine.agent_state(agent_id)
        call_id = self.engine.agent_call(agent_id)
        session = self.sessions.get(call_id) if call_id else None
        return {
            "state": state,
            "reason": reason,
            "call": session.card(
                "connected" if session.state in ("agent", "consult", "conference") else "offer"
            )
            if session
            else None,
            "seq": self._agent_seq[agent_id],
        }

    async def command(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A command from an agent's console or the API; returns ``{"ok", "message", ...}``."""
        agent_id = str(msg.get("agent_id") or "")
        command = str(msg.get("command") or "")
        if not agent_id and command in RECORDING_COMMANDS:
            # The recording API on behalf of a supervisor or a client's system (the web side
            # checked who may act on which client's calls): any live call, by its id.
            return await self._recording_command(command, str(msg.get("call_id") or ""))
        if agent_id not in self.directory.agents:
            return {"ok": False, "message": f"unknown agent {agent_id!r}"}
        at = self.now()
        if command == "snapshot":
            return {"ok": True, "message": "", "snapshot": self.agent_snapshot(agent_id)}
        if command == "state":
            wanted = msg.get("state")
            current, _reason = self.engine.agent_state(agent_id)
            if wanted == "available":
                if current == "logged_out":
                    self.feed(AgentLogin(at, agent_id))
                elif current == "break":
                    self.feed(AgentUnbreak(at, agent_id))
            elif wanted == "break":
                self.feed(AgentBreak(at, agent_id, str(msg.get("reason") or "break")[:40]))
            elif wanted == "logout":
                self.feed(AgentLogout(at, agent_id))
            else:
                return {"ok": False, "message": "state must be available, break or logout"}
            state, reason = self.engine.agent_state(agent_id)
            return {"ok": True, "message": f"{state}{f' ({reason})' if reason else ''}"}
        if command == "wrap_up_done":
            if self.engine.agent_state(agent_id)[0] != "wrap_up":
                return {"ok": False, "message": "you are not in wrap-up"}
            self.feed(WrapUpDone(at, agent_id))
            state, _reason = self.engine.agent_state(agent_id)
            return {"ok": True, "message": state}
        session = self._agent_session(agent_id, msg.get("call_id"))
        if session is None:
            return {"ok": False, "message": "you are not on that call"}
        if session.state == "conference" and command not in (
            "leave_conference", "hangup", "mask", "unmask"
        ):  # fmt: skip
            return {"ok": False, "message": "not possible in a conference: leave it first"}
        try:
            if command in ("hold", "unhold"):
                await session.hold(command == "hold")
                self.push(
                    agent_id, {"kind": "hold", "call_id": session.call_id, "on": command == "hold"}
                )
            elif command == "hangup":
                await session.hangup_by_agent()
            elif command in ("mask", "unmask"):
                if not await session.set_masked(command == "mask"):
                    return {"ok": False, "message": "this call is not being recorded"}
            elif command == "record":
                problem = await session.record_on_demand()
                if problem is not None:
                    return {"ok": False, "message": problem}
                self.push(agent_id, {"kind": "recording", "call_id": session.call_id, "on": True})
            elif command == "escalate":
                warm = msg.get("mode") == "warm"
                ok = await (session.consult() if warm else session.escalate_now())
                if not ok:
                    return {
                        "ok": False,
                        "message": "the second line did not answer; the caller is still with you",
                    }
            elif command == "complete_transfer":
                if not await session.complete_transfer():
                    return {"ok": False, "message": "there is no consultation to complete"}
            elif command == "cancel_consult":
                if not await session.cancel_consult():
                    return {"ok": False, "message": "there is no consultation to cancel"}
            elif command == "conference":
                if not await session.conference():
                    return {
                        "ok": False,
                        "message": "a conference needs a consultation with the second line first",
                    }
            elif command == "leave_conference":
                if not await session.leave_conference():
                    return {
                        "ok": False,
                        "message": "you are not in a conference with the second line",
                    }
            elif command == "transfer":
                if msg.get("to_agent"):
                    problem = await session.transfer_to_agent(str(msg["to_agent"]))
                    if problem is not None:
                        return {"ok": False, "message": problem}
                elif not await session.transfer_to_queue(str(msg.get("queue_id") or "")):
                    return {"ok": False, "message": "no such queue for this client"}

            else:
                return {"ok": False, "message": f"unknown command {command!r}"}
        except (ESLError, ConnectionLost, TimeoutError) as exc:
            return {"ok": False, "message": f"the switch refused: {exc}"}
        return {"ok": True, "message": ""}

    async def _recording_command(self, command: str, call_id: str) -> dict[str, Any]:
        session = self.sessions.get(call_id)
        if session is None or session.call_id != call_id or session.state in ("new", "ended"):
            return {"ok": False, "message": "that call is not in progress here"}
        try:
            if command == "record":
                problem = await session.record_on_demand()
                if problem is not None:
                    return {"ok": False, "message": problem}
                if session.agent:
                    self.push(session.agent, {"kind": "recording", "call_id": call_id, "on": True})
            elif not await session.set_masked(command == "mask"):
                return {"ok": False, "message": "this call is not being recorded"}
            elif session.agent:
                # The agent's console shows the state the API set.
                self.push(session.agent, {**session.card("connected"), "kind": "connected"})
        except (ESLError, ConnectionLost, TimeoutError) as exc:
            return {"ok": False, "message": f"the switch refused: {exc}"}
        return {"ok": True, "message": ""}

    def _agent_session(self, agent_id: str, call_id: Any) -> Any:
        engine_call = self.engine.agent_call(agent_id)
        session = self.sessions.get(engine_call) if engine_call else None
        if (
            session is None
            or session.agent != agent_id
            or session.state not in ("agent", "consult", "conference")
        ):
            return None
        if call_id and call_id != session.call_id:
            return None
        return session

    # ---------------------------------------------------------------- takeover
    async def adopt(self) -> int:
        """After a takeover: agents still bridged on a node (calls of the previous switchboard,
        which the switch kept up) are kept out of routing until their leg hangs up. Then the
        callers held since the takeover (see :meth:`start`) go on."""
        adopted = 0
        for link in self.links.values():
            try:
                rows = parse_show_channels(await link.api("show channels as json"))
                bridged: set[str] = set()
                for call in parse_show_calls(await link.api("show calls as json")):
                    if call.b_uuid:
                        bridged.update((call.uuid, call.b_uuid))
            except (ESLError, OSError, TimeoutError, ValueError) as exc:
                log.warning("node %s: cannot list channels to adopt (%r)", link.spec.name, exc)
                continue

            async def getvar(uuid: str, name: str, link: NodeLink = link) -> str:
                return (await link.api(f"uuid_getvar {uuid} {name}")).strip()

            # Ours already (calls resumed into this switchboard, legs it rings) are not asked.
            candidates = [
                row.uuid
                for row in rows
                if row.uuid not in self.agent_legs and row.uuid not in self.sessions
            ]
            # Concurrently (the connection pipelines): hundreds of channels in a few round trips.
            roles = await asyncio.gather(
                *(getvar(u, "ccp_role") for u in candidates), return_exceptions=True
            )
            legs = [(u, r) for u, r in zip(candidates, roles, strict=True) if isinstance(r, str)]
            unbridged = [u for u, r in legs if r in ("agent", "escalation") and u not in bridged]
            # A leg in a conference room (three-way escalation) is in a call, not bridged.
            rooms = await asyncio.gather(
                *(getvar(u, "conference_name") for u in unbridged), return_exceptions=True
            )
            orphans = [
                u
                for u, room in zip(unbridged, rooms, strict=True)
                if not (isinstance(room, str) and room and room != "_undef_")
            ]
            # Rung or parked for a caller the dead switchboard was handling: nobody would ever
            # bridge these legs.
            self.stats["orphan_legs_killed"] += len(orphans)
            await asyncio.gather(
                *(link.api(f"uuid_kill {u} ORIGINATOR_CANCEL") for u in orphans),
                return_exceptions=True,
            )
            agent_legs = [u for u, r in legs if r == "agent" and u in bridged]
            found = await asyncio.gather(
                *(
                    asyncio.gather(getvar(u, "ccp_agent"), getvar(u, "ccp_call"))
                    for u in agent_legs
                ),
                return_exceptions=True,
            )
            for leg_uuid, pair in zip(agent_legs, found, strict=True):
                if not isinstance(pair, list):
                    continue
                agent, call_id = pair
                try:
                    engine_call = self.engine.agent_call(agent)
                except KeyError:
                    engine_call = None
                if (
                    engine_call is not None
                    and engine_call in self.restored_calls
                    and engine_call.split("#")[0] == call_id
                    and self.engine.call_state(engine_call) == "connected"
                ):
                    # The restored engine has this agent on this call: it stays so until the
                    # leg hangs up, then the agent goes to wrap-up as after any call.
                    self.restored_calls.discard(engine_call)
                    self.adopted[leg_uuid] = agent
                    fut = link.wait_leg_end(leg_uuid)
                    fut.add_done_callback(
                        lambda _f, u=leg_uuid, c=engine_call: self._adopted_call_done(u, c)
                    )
                    adopted += 1
                    continue
                if (
                    agent not in self.directory.agents
                    or self.engine.agent_state(agent)[0] != "available"
                ):
                    continue
                self.adopted[leg_uuid] = agent
                self.feed(AgentBreak(self.now(), agent, "adopted_call"))
                fut = link.wait_leg_end(leg_uuid)
                fut.add_done_callback(lambda _f, a=agent, u=leg_uuid: self._adopted_done(u, a))
                adopted += 1
        if adopted:
            log.warning("adopted %d agent call(s) still bridged on the nodes", adopted)
        self._active.set()
        return adopted

    def _adopted_call_done(self, uuid: str, engine_call: str) -> None:
        if self.adopted.pop(uuid, None) is not None and (
            self.engine.call_state(engine_call) == "connected"
        ):
            self.feed(CallEnded(self.now(), engine_call))

    def _adopted_done(self, uuid: str, agent: str) -> None:
        if self.adopted.pop(uuid, None) is not None and self.engine.agent_state(agent) == (
            "break",
            "adopted_call",
        ):
            self.feed(AgentUnbreak(self.now(), agent))

    def request_callback(self, *, tenant_id: str, number: str, queue_id: str, parent_call_id: str,
                         node: str, waited_s: float) -> None:  # fmt: skip
        """Call ``number`` back when an agent of ``queue_id`` is free (see callback.py)."""
        from .callback import CallbackSession  # noqa: PLC0415

        CallbackSession(self, tenant_id=tenant_id, number=number, queue_id=queue_id,
                        parent_call_id=parent_call_id, node=node, waited_s=waited_s).start()  # fmt: skip

    def caller_id_for(self, tenant_id: str) -> str:
        """The number a callback shows: the client's first direct number."""
        for route in self.directory.numbers.values():
            if route.tenant_id == tenant_id and route.origin == "direct":
                return route.did
        return "anonymous"

    def new_leg_uuid(self) -> str:
        return str(uuidlib.uuid4())

    def finished(self, summary: CallSummary, segments: list[Any]) -> None:
        self.outcomes[summary.outcome] += 1
        self.spawn(self.sink.call_finished(summary, segments), name=f"record {summary.call_id}")


__all__ += ["ConnectionLost", "event_ms"]
