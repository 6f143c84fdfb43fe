"""Asyncio inbound ESL client, and a reconnecting supervisor around it.

:class:`InboundClient` is one authenticated connection to ``mod_event_socket``
(commands, ``bgapi`` jobs correlated by Job-UUID, bounded event delivery,
heartbeat watchdog). :class:`ReconnectingClient` keeps one alive: it reconnects
with exponential backoff and jitter, re-subscribes, detects a FreeSWITCH
restart by a Core-UUID change and calls ``on_reconnect(restarted)`` so the
application can reconcile its view of live calls (``show channels as json``,
see :mod:`.api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid as uuidlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from .connection import (
    EVENT_FORMATS,
    ConnectionStats,
    ESLConnection,
    _check_reply,
    _fail,
    check_line,
)
from .errors import AuthError, ConnectionLost, ESLError
from .events import Event
from .frames import (
    AUTH_REQUEST,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HEADER_SIZE,
    RUDE_REJECTION,
    Frame,
)
from .queue import EventQueue, OverflowPolicy

__all__ = ["BackgroundJob", "InboundClient", "ReconnectingClient", "Subscription"]

log = logging.getLogger("telephony.esl.client")

#: FreeSWITCH sends HEARTBEAT every 20 s: three missed ones mean the link is dead.
DEFAULT_IDLE_TIMEOUT = 60.0


class BackgroundJob:
    """A ``bgapi`` job: its Job-UUID now, its result later.

    ``await job`` (or ``await job.result()``) returns the BACKGROUND_JOB body,
    e.g. ``"+OK <uuid>\\n"``, and raises :class:`~.errors.CommandError` if it
    starts with ``-ERR``. :attr:`event` is the BACKGROUND_JOB event once received.
    """

    def __init__(self, command: str, job_uuid: str, future: asyncio.Future[Event]) -> None:
        self.command = command
        self.job_uuid = job_uuid
        self._future = future

    @property
    def done(self) -> bool:
        """True once the result (or a failure) is known."""
        return self._future.done()

    @property
    def event(self) -> Event | None:
        """The BACKGROUND_JOB event, if it arrived."""
        if (
            self._future.done()
            and not self._future.cancelled()
            and self._future.exception() is None
        ):
            return self._future.result()
        return None

    async def result(self, timeout: float | None = None) -> str:
        """Wait for the job's output (``TimeoutError`` after ``timeout``; the job keeps running)."""
        async with asyncio.timeout(timeout):
            event = await asyncio.shield(self._future)
        return _check_reply(f"bgapi {self.command}", event.body)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.result().__await__()

    def __repr__(self) -> str:
        return f"BackgroundJob({self.command!r}, job_uuid={self.job_uuid!r}, done={self.done})"


@dataclass
class Subscription:
    """What a client asked FreeSWITCH to send (re-applied after a reconnect).

    ``names`` holds event names as given to ``event``: ``ALL``, ``CHANNEL_ANSWER``,
    ``CUSTOM`` followed by subclasses (``sofia::register``...).
    """

    fmt: str = "plain"
    names: list[str] = field(default_factory=list)
    filters: list[tuple[str, str]] = field(default_factory=list)

    def wants(self, event: Event) -> bool:
        """Mirror of mod_event_socket's subscription test (filters aside)."""
        names = self.names
        if not names:
            return False
        if "ALL" in names:
            return True
        if event.name == "CUSTOM":
            subclass = event.subclass
            return (subclass in names) if subclass else "CUSTOM" in names
        return event.name in names


class InboundClient(ESLConnection):
    """One inbound ESL connection (``mod_event_socket`` listening, we connect).

    Usage::

        async with InboundClient("127.0.0.1", 8021, "ClueCon") as esl:
            await esl.subscribe("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
            print(await esl.api("status"))
            job = await esl.bgapi("originate loopback/ans/esltest &park()")
            print(await job)
            event = await esl.events.get()

    Events go to :attr:`events` only if the application subscribed to them;
    the client may subscribe to more for its own use (HEARTBEAT for the
    watchdog, BACKGROUND_JOB for ``bgapi``) without filling the queue.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        user: str | None = None,
        connect_timeout: float = 5.0,
        command_timeout: float | None = 30.0,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        event_queue: EventQueue[Event] | None = None,
        event_queue_size: int = 10_000,
        overflow_policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        log_handler: Callable[[Frame], None] | None = None,
    ) -> None:
        """``idle_timeout``: seconds without any byte before the connection is
        declared dead (the client subscribes to HEARTBEAT so that a healthy
        switch always talks at least every 20 s); None disables the watchdog.
        ``user``: authenticate with ``userauth user:password`` instead of ``auth``.
        """
        super().__init__(
            command_timeout=command_timeout,
            idle_timeout=idle_timeout,
            event_queue=event_queue,
            event_queue_size=event_queue_size,
            overflow_policy=overflow_policy,
            max_header_size=max_header_size,
            max_body_size=max_body_size,
            log_handler=log_handler,
            label=f"esl {host}:{port}",
        )
        self.host = host
        self.port = port
        self._password = check_line(password, "password")
        self._user = check_line(user, "user") if user else None
        self.connect_timeout = connect_timeout
        #: The switch's Core-UUID (from ``connect(query_core_uuid=True)`` or the first event).
        self.core_uuid: str | None = None
        self.subscription = Subscription()
        self._internal: set[str] = set()  # event names subscribed for our own use
        self._jobs: dict[str, asyncio.Future[Event]] = {}
        self._auth_request: asyncio.Future[Frame] | None = None

    # -- connect / auth ----------------------------------------------------------
    async def connect(self, *, query_core_uuid: bool = True) -> None:
        """Open the TCP connection and authenticate.

        Raises :class:`~.errors.AuthError` (wrong password, ACL rejection),
        ``OSError`` (refused...), ``TimeoutError`` or ``ConnectionLost``.
        With ``query_core_uuid`` the switch's Core-UUID is fetched
        (``api global_getvar core_uuid``) into :attr:`core_uuid`.
        """
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        self._auth_request = asyncio.get_running_loop().create_future()
        self._attach(reader, writer)
        try:
            async with asyncio.timeout(self.connect_timeout):
                first = await asyncio.shield(self._auth_request)
            if first.content_type == RUDE_REJECTION:
                raise AuthError(first.text.strip() or "rude rejection")
            if self._user:
                command = f"userauth {self._user}:{self._password}"
            else:
                command = f"auth {self._password}"
            reply = await self.send(command, self.connect_timeout)
            if not reply.reply_text.startswith("+OK"):
                raise AuthError(reply.reply_text or reply.content_type)
            if query_core_uuid:
                self.core_uuid = (
                    await self.api("global_getvar core_uuid", self.connect_timeout)
                ).strip()
            if self.idle_timeout:
                await self._subscribe_internal("HEARTBEAT")
                self._start_watchdog()
        except BaseException:
            await self.close()
            raise
        log.info("%s: connected (Core-UUID %s)", self.label, self.core_uuid)

    async def __aenter__(self) -> InboundClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def disconnect(self) -> None:
        """Say ``exit`` politely (best effort), then close."""
        if self.is_connected:
            with contextlib.suppress(ESLError, OSError, TimeoutError):
                await self.send("exit", timeout=1.0)
        await self.close()

    def _on_frame(self, frame: Frame) -> bool:
        if frame.content_type in (AUTH_REQUEST, RUDE_REJECTION):
            fut = self._auth_request
            if fut is not None and not fut.done():
                fut.set_result(frame)
                return True
        return False

    def _on_closed(self, reason: BaseException) -> None:
        if self._auth_request is not None and not self._auth_request.done():
            _fail(
                self._auth_request, ConnectionLost(f"{self.label}: {reason} (before auth/request)")
            )
        jobs, self._jobs = self._jobs, {}
        for job_uuid, fut in jobs.items():
            _fail(fut, ConnectionLost(f"{self.label}: {reason} (background job {job_uuid} lost)"))

    # -- events ------------------------------------------------------------------
    def _route_event(self, event: Event) -> None:
        if self.core_uuid is None and event.core_uuid:
            self.core_uuid = event.core_uuid
        if event.name == "BACKGROUND_JOB":
            job_uuid = event.job_uuid
            fut = self._jobs.pop(job_uuid, None) if job_uuid else None
            if fut is not None and not fut.done():
                fut.set_result(event)

    def _wants(self, event: Event) -> bool:
        return self.subscription.wants(event)

    async def subscribe(self, *event_names: str, fmt: str | None = None) -> str:
        """``event <fmt> <names...>`` (default ``ALL``); remembered for re-subscription.

        ``fmt`` (plain, json or xml) applies to all later events of the
        connection; by default the current format is kept.
        """
        fmt = fmt or self.subscription.fmt
        names = list(event_names) or ["ALL"]
        reply = await super().subscribe(*names, fmt=fmt)
        self.subscription.fmt = fmt
        for name in names:
            if name not in self.subscription.names:
                self.subscription.names.append(name)
        return reply

    async def _subscribe_internal(self, *names: str) -> None:
        new = [n for n in names if n not in self._internal]
        if not new:
            return
        self._internal.update(new)  # before awaiting: concurrent callers don't resend
        try:
            await super().subscribe(*new, fmt=self.subscription.fmt)
        except BaseException:
            self._internal.difference_update(new)
            raise
        if self.subscription.filters:
            for name in new:
                await super().filter("Event-Name", name)

    async def _restore_internal(self) -> None:
        internal, self._internal = sorted(self._internal), set()
        if internal:
            await self._subscribe_internal(*internal)

    async def nixevent(self, *event_names: str) -> str:
        """``nixevent <names...>``; the client's own subscriptions are kept."""
        reply = await super().nixevent(*event_names)
        self.subscription.names = [n for n in self.subscription.names if n not in event_names]
        if self._internal & set(event_names):
            await self._restore_internal()
        return reply

    async def noevents(self) -> str:
        """``noevents``; the client's own subscriptions (HEARTBEAT...) are restored."""
        reply = await super().noevents()
        self.subscription.names = []
        await self._restore_internal()
        return reply

    async def filter(self, header: str, value: str) -> str:
        """``filter <header> <value>`` (remembered for re-subscription).

        Filters are an allow-list; on the first one the client also allows the
        events it needs itself (HEARTBEAT, BACKGROUND_JOB), or the watchdog and
        ``bgapi`` would starve.
        """
        first = not self.subscription.filters
        reply = await super().filter(header, value)
        self.subscription.filters.append((header, value))
        if first:
            for name in sorted(self._internal):
                if (header, value) != ("Event-Name", name):
                    await super().filter("Event-Name", name)
        return reply

    async def filter_delete(self, header: str = "all", value: str | None = None) -> str:
        """``filter delete``; forgets the matching remembered filters."""
        reply = await super().filter_delete(header, value)
        if header == "all":
            self.subscription.filters = []
        else:
            self.subscription.filters = [
                (h, v)
                for h, v in self.subscription.filters
                if not (h == header and (value is None or v == value))
            ]
        return reply

    # -- commands ----------------------------------------------------------------
    async def bgapi(
        self, command: str, *, job_uuid: str | None = None, timeout: float | None = None
    ) -> BackgroundJob:
        """Run ``bgapi <command>``; return at once with a :class:`BackgroundJob`.

        The Job-UUID is generated here and sent with the command (FreeSWITCH
        honours a client-supplied ``Job-UUID``), so the job is registered before
        its BACKGROUND_JOB event can possibly arrive. The client subscribes to
        BACKGROUND_JOB itself if needed (the result is lost otherwise).
        """
        check_line(command, "bgapi command")
        job_uuid = check_line(job_uuid, "job uuid") if job_uuid else str(uuidlib.uuid4())
        await self._subscribe_internal("BACKGROUND_JOB")
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._jobs[job_uuid] = fut
        try:
            reply = await self.send(f"bgapi {command}\nJob-UUID: {job_uuid}", timeout)
            _check_reply(f"bgapi {command}", reply.reply_text)
        except BaseException:
            # The job may still run (timeout), but nobody can get its result.
            self._jobs.pop(job_uuid, None)
            fut.cancel()
            raise
        echoed = reply.get("Job-UUID")
        if echoed and echoed != job_uuid:  # not expected: FreeSWITCH honours ours
            log.warning("%s: bgapi Job-UUID %s replaced by %s", self.label, job_uuid, echoed)
            self._jobs[echoed] = self._jobs.pop(job_uuid)
            job_uuid = echoed
        return BackgroundJob(command, job_uuid, fut)

    async def sendevent(
        self, event_name: str, headers: Iterable[tuple[str, str]] = (), body: str = ""
    ) -> str:
        """``sendevent <name>`` with headers and an optional body; return the reply text."""
        lines = [f"sendevent {check_line(event_name, 'event name')}"]
        lines += [f"{check_line(k, 'header')}: {check_line(v, 'value')}" for k, v in headers]
        if body:
            lines.append(f"Content-Length: {len(body.encode('utf-8'))}")
        text = "\n".join(lines) + "\n\n" + body
        return await self.command(text)


class ReconnectingClient:
    """Keeps an :class:`InboundClient` connected (see the module docstring).

    * Backoff: ``min(backoff_max, backoff_initial * 2**attempt)``, multiplied by
      a random factor in ``[1 - jitter, 1 + jitter]`` so that many workers
      don't reconnect in lockstep after a switch restart.
    * After each successful connection it re-applies the subscription (format,
      events, filters) and compares the Core-UUID with the previous one.
    * ``on_reconnect(restarted)`` is awaited after every *re*connection
      (``restarted`` is True if the Core-UUID changed, i.e. every call the
      application knew about is gone). It runs in the supervisor task, so it
      should reconcile and return (e.g. ``show channels as json`` with
      :func:`~.api.parse_show_channels`); its exceptions are logged, not
      raised. The initial load after :meth:`start` is the application's job.
    * Events of all successive connections go to one bounded :attr:`events`
      queue, so a consumer loop survives reconnections.
    * Commands are not queued while disconnected: they raise ``ConnectionLost``
      (the caller knows best whether a retry is safe).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        events: Iterable[str] = (),
        fmt: str = "plain",
        filters: Iterable[tuple[str, str]] = (),
        on_reconnect: Callable[[bool], Awaitable[None]] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        jitter: float = 0.2,
        event_queue_size: int = 10_000,
        overflow_policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        rng: random.Random | None = None,
        **client_options: object,
    ) -> None:
        if fmt not in EVENT_FORMATS:
            raise ValueError(f"event format must be one of {EVENT_FORMATS}")
        self.host = host
        self.port = port
        self._password = password
        self._events = list(events)
        self._fmt = fmt
        self._filters = list(filters)
        self.on_reconnect = on_reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._client_options = client_options
        self.events: EventQueue[Event] = EventQueue(
            event_queue_size, overflow_policy, name=f"esl {host}:{port} events"
        )
        #: Core-UUID of the switch at the last successful connection.
        self.core_uuid: str | None = None
        #: Successful connections so far (1 after the first connect).
        self.connections = 0
        #: Times a new Core-UUID was seen on reconnection.
        self.restarts = 0
        self.last_error: BaseException | None = None
        self._client: InboundClient | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._past_stats = ConnectionStats()

    @property
    def client(self) -> InboundClient:
        """The live client; raises ``ConnectionLost`` while disconnected."""
        client = self._client
        if client is None or not client.is_connected:
            raise ConnectionLost(f"esl {self.host}:{self.port}: not connected")
        return client

    @property
    def is_connected(self) -> bool:
        """True while a client is connected and subscribed."""
        return self._client is not None and self._client.is_connected

    @property
    def stats(self) -> ConnectionStats:
        """Counters summed over all connections so far."""
        total = ConnectionStats()
        total.add(self._past_stats)
        if self._client is not None:
            total.add(self._client.stats)
        total.events_dropped = self.events.dropped
        return total

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start the supervisor; with ``wait``, return once connected (or time out)."""
        if self._task is None:
            self._stopping = False
            self.events.reopen()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"esl-supervisor {self.host}:{self.port}"
            )
        if wait:
            await self.wait_connected(timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is up and subscribed."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def stop(self) -> None:
        """Stop reconnecting and close the connection; the event queue is closed."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.close()
            self._past_stats.add(client.stats)
        self._connected.clear()
        self.events.close(ConnectionLost("esl supervisor stopped"))

    async def __aenter__(self) -> ReconnectingClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def backoff_delay(self, attempt: int) -> float:
        """Delay before reconnection attempt ``attempt`` (0-based), jitter included."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** min(attempt, 30))
        return base * (1.0 + self._rng.uniform(-self.jitter, self.jitter))

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            client = InboundClient(
                self.host,
                self.port,
                self._password,
                event_queue=self.events,
                **self._client_options,  # type: ignore[arg-type]
            )
            try:
                await client.connect(query_core_uuid=True)
                await self._resubscribe(client)
            except asyncio.CancelledError:
                await client.close()
                raise
            except (ESLError, OSError, TimeoutError) as exc:
                await client.close()
                self._past_stats.add(client.stats)
                self.last_error = exc
                delay = self.backoff_delay(attempt)
                attempt += 1
                level = logging.ERROR if isinstance(exc, AuthError) else logging.WARNING
                log.log(
                    level,
                    "esl %s:%s: connect failed (%r); retry in %.2f s",
                    self.host,
                    self.port,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            previous = self.core_uuid
            restarted = previous is not None and client.core_uuid != previous
            self.core_uuid = client.core_uuid
            self.connections += 1
            if restarted:
                self.restarts += 1
                log.warning(
                    "esl %s:%s: FreeSWITCH restarted (Core-UUID %s -> %s)",
                    self.host,
                    self.port,
                    previous,
                    client.core_uuid,
                )
            self._client = client
            self._connected.set()
            if self.connections > 1 and self.on_reconnect is not None:
                try:
                    await self.on_reconnect(restarted)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001  # the hook must not kill the supervisor
                    log.exception("esl %s:%s: on_reconnect hook failed", self.host, self.port)
            reason = await client.wait_closed()
            self._connected.clear()
            self._client = None
            self._past_stats.add(client.stats)
            self.last_error = reason
            if self._stopping:
                break
            delay = self.backoff_delay(0)
            log.warning(
                "esl %s:%s: connection lost (%s); reconnecting in %.2f s",
                self.host,
                self.port,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            attempt = 1

    async def _resubscribe(self, client: InboundClient) -> None:
        if self._events:
            await client.subscribe(*self._events, fmt=self._fmt)
        else:
            client.subscription.fmt = self._fmt
        for header, value in self._filters:
            await client.filter(header, value)

    # -- subscription (remembered for the next connections) --------------------------
    async def subscribe(self, *event_names: str, fmt: str | None = None) -> None:
        """Add events (and/or change the format) now and after every reconnection."""
        if fmt is not None:
            if fmt not in EVENT_FORMATS:
                raise ValueError(f"event format must be one of {EVENT_FORMATS}")
            self._fmt = fmt
        for name in event_names:
            if name not in self._events:
                self._events.append(check_line(name, "event name"))
        names = event_names or tuple(self._events)
        if self.is_connected and names:
            await self.client.subscribe(*names, fmt=self._fmt)

    async def filter(self, header: str, value: str) -> None:
        """Add a filter now and after every reconnection."""
        self._filters.append((check_line(header, "header"), check_line(value, "value")))
        if self.is_connected:
            await self.client.filter(header, value)

    # -- delegation ---------------------------------------------------------------
    async def api(self, command: str, timeout: float | None = None) -> str:
        """:meth:`InboundClient.api` on the live connection."""
        return await self.client.api(command, timeout)

    async def bgapi(self, command: str, **kwargs: object) -> BackgroundJob:
        """:meth:`InboundClient.bgapi` on the live connection."""
        return await self.client.bgapi(command, **kwargs)  # type: ignore[arg-type]

    async def sendmsg(
        self, uuid: str | None, app: str, arg: str | None = None, **kwargs: object
    ) -> str:
        """:meth:`InboundClient.sendmsg` on the live connection."""
        return await self.client.sendmsg(uuid, app, arg, **kwargs)  # type: ignore[arg-type]

    async def command(self, text: str, timeout: float | None = None) -> str:
        """:meth:`InboundClient.command` on the live connection."""
        return await self.client.command(text, timeout)

    async def iter_events(self) -> AsyncIterator[Event]:
        """Yield events across reconnections until :meth:`stop`."""
        async for event in self.events:
            yield event
