"""The machinery shared by inbound clients and outbound calls: one ESL TCP connection.

Contract of :class:`ESLConnection`:

* One reader task owns the socket's read side. It never awaits while
  dispatching, so frames are handled strictly in arrival order and a slow
  consumer can only fill the bounded event queue (see :mod:`.queue`).
* FreeSWITCH answers the commands of one connection strictly in order, so each
  command appends a future to a FIFO before it is written; each
  ``command/reply`` or ``api/response`` resolves the oldest one. A command that
  times out keeps its FIFO slot (its late reply is discarded), so later replies
  still line up.
* Nothing the peer sends can crash the reader: malformed frames and invalid
  events are counted in :attr:`ESLConnection.stats`, logged and skipped; when
  framing is lost the connection is closed.
* When the connection ends for any reason, every pending command, waiter and
  background job fails with :class:`~.errors.ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from .errors import CommandError, CommandTimeout, ConnectionLost
from .events import Event, EventValidationError, event_from_frame
from .frames import (
    API_RESPONSE,
    AUTH_REQUEST,
    COMMAND_REPLY,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HEADER_SIZE,
    DISCONNECT_NOTICE,
    EVENT_JSON,
    EVENT_PLAIN,
    EVENT_XML,
    LOG_DATA,
    RUDE_REJECTION,
    Frame,
    FrameError,
    FrameParser,
)
from .queue import EventQueue, OverflowPolicy

__all__ = ["ConnectionStats", "ESLConnection", "build_sendmsg", "check_line"]

log = logging.getLogger("telephony.esl")

EVENT_FORMATS = ("plain", "json", "xml")
_EVENT_TYPES = frozenset({EVENT_PLAIN, EVENT_JSON, EVENT_XML})
_REPLY_TYPES = frozenset({COMMAND_REPLY, API_RESPONSE})


@dataclass
class ConnectionStats:
    """Counters of one connection (or, for a supervisor, summed over its connections)."""

    bytes_received: int = 0
    frames: int = 0
    events: int = 0
    #: Events refused or evicted by the bounded queue.
    events_dropped: int = 0
    #: Event frames that were not valid events (bad JSON, no Event-Name...), skipped.
    invalid_events: int = 0
    #: Recoverable framing errors (malformed header line, oversized body skipped).
    frame_errors: int = 0
    #: Frames with a content type we do not handle, skipped.
    unknown_frames: int = 0
    #: Replies that arrived with no command waiting for them.
    unexpected_replies: int = 0
    commands: int = 0
    command_timeouts: int = 0
    heartbeat_timeouts: int = 0
    log_frames: int = 0

    def add(self, other: ConnectionStats) -> None:
        """Add ``other``'s counters to this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def check_line(value: str, what: str) -> str:
    """Reject values that would inject extra ESL lines or commands."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{what} must not contain a newline: {value!r}")
    return value


def build_sendmsg(
    uuid: str | None,
    app: str,
    arg: str | None = None,
    *,
    event_lock: bool = False,
    loops: int | None = None,
    event_uuid: str | None = None,
) -> str:
    """Text of a ``sendmsg`` ``execute`` command (see 04 and 02 captures).

    An ``arg`` containing a newline is sent as a ``text/plain`` body, which is
    how FreeSWITCH accepts multi-line application data.
    """
    lines = [f"sendmsg {check_line(uuid, 'uuid')}" if uuid else "sendmsg"]
    lines.append("call-command: execute")
    lines.append(f"execute-app-name: {check_line(app, 'application name')}")
    body = ""
    if arg is not None:
        if "\n" in arg or "\r" in arg:
            body = arg
            lines.append("content-type: text/plain")
            lines.append(f"content-length: {len(arg.encode('utf-8'))}")
        else:
            lines.append(f"execute-app-arg: {arg}")
    if loops is not None:
        lines.append(f"loops: {int(loops)}")
    if event_lock:
        lines.append("event-lock: true")
    if event_uuid:
        lines.append(f"Event-UUID: {check_line(event_uuid, 'event uuid')}")
    return "\n".join(lines) + "\n\n" + body


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail ``fut`` without an "exception never retrieved" warning if nobody awaits it."""
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # marks it retrieved; an awaiting caller still gets it raised


def _check_reply(command: str, text: str) -> str:
    stripped = text.rstrip()
    if stripped.startswith(("-ERR", "-USAGE")):
        raise CommandError(command.split("\n", 1)[0], stripped)
    return text


class _Waiter:
    __slots__ = ("predicate", "future")

    def __init__(self, predicate: Callable[[Event], bool], future: asyncio.Future[Event]) -> None:
        self.predicate = predicate
        self.future = future


class ESLConnection:
    """One ESL connection over an asyncio stream pair (see the module docstring).

    Subclasses decide which events go to :attr:`events` (:meth:`_wants`) and
    react to frames before the generic handling (:meth:`_on_frame`).
    """

    def __init__(
        self,
        *,
        command_timeout: float | None = 30.0,
        idle_timeout: float | None = None,
        event_queue: EventQueue[Event] | None = None,
        event_queue_size: int = 10_000,
        overflow_policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        log_handler: Callable[[Frame], None] | None = None,
        label: str = "esl",
    ) -> None:
        self.command_timeout = command_timeout
        #: Declare the connection dead if no byte arrives for this many seconds.
        self.idle_timeout = idle_timeout
        self.label = label
        self.stats = ConnectionStats()
        self._own_queue = event_queue is None
        #: Events for the application (bounded; see :class:`~.queue.EventQueue`).
        self.events: EventQueue[Event] = (
            event_queue
            if event_queue is not None
            else EventQueue(event_queue_size, overflow_policy, name=f"{label} events")
        )
        self._dropped_base = self.events.dropped
        self._parser = FrameParser(max_header_size, max_body_size)
        self._log_handler = log_handler
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[tuple[str, asyncio.Future[Frame]]] = deque()
        self._waiters: list[_Waiter] = []
        self._read_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[BaseException] | None = None
        self._close_reason: BaseException | None = None
        self._last_rx = 0.0
        #: The last ``text/disconnect-notice`` frame received, if any.
        self.disconnect_notice: Frame | None = None

    # -- lifecycle -----------------------------------------------------------
    def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Start reading from an open stream pair."""
        loop = asyncio.get_running_loop()
        self._reader, self._writer = reader, writer
        self._closed = loop.create_future()
        self._last_rx = loop.time()
        if self._own_queue:
            self.events.reopen()
        self._read_task = loop.create_task(self._read_loop(), name=f"esl-read {self.label}")

    def _start_watchdog(self) -> None:
        if self.idle_timeout and self._watchdog_task is None and not self.is_closed:
            self._last_rx = asyncio.get_running_loop().time()
            self._watchdog_task = asyncio.get_running_loop().create_task(
                self._watchdog(self.idle_timeout), name=f"esl-watchdog {self.label}"
            )

    @property
    def is_connected(self) -> bool:
        """True between attachment and the end of the connection."""
        return self._closed is not None and not self._closed.done()

    @property
    def is_closed(self) -> bool:
        """True once the connection has ended (for any reason)."""
        return self._closed is not None and self._closed.done()

    async def close(self) -> None:
        """Close the connection (idempotent); pending commands fail with ConnectionLost."""
        self._shutdown(ConnectionLost(f"{self.label}: closed locally"))
        if self._read_task is not None and self._read_task is not asyncio.current_task():
            try:
                await self._read_task
            except asyncio.CancelledError:
                pass
        if self._writer is not None:
            try:
                await self._writer.wait_closed()
            except (OSError, ConnectionError):
                pass

    async def wait_closed(self) -> BaseException:
        """Wait until the connection ends; return why (a ``ConnectionLost``)."""
        if self._closed is None:
            raise RuntimeError("connection not started")
        return await asyncio.shield(self._closed)

    def _shutdown(self, reason: BaseException) -> None:
        """End the connection now for ``reason`` (idempotent, synchronous)."""
        if self._closed is None or self._closed.done():
            return
        self._close_reason = reason
        self._closed.set_result(reason)
        if self._writer is not None:
            # abort(): drop unsent data; nothing useful can follow a failure.
            self._writer.transport.abort()
        current = asyncio.current_task()
        for task in (self._read_task, self._watchdog_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
        pending, self._pending = self._pending, deque()
        for command, fut in pending:
            _fail(fut, ConnectionLost(f"{self.label}: {reason} (while waiting for {command!r})"))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _fail(waiter.future, ConnectionLost(f"{self.label}: {reason}"))
        self._on_closed(reason)
        if self._own_queue:
            self.events.close(ConnectionLost(f"{self.label}: {reason}"))
        log.info("%s: connection closed: %s", self.label, reason)

    def _on_closed(self, reason: BaseException) -> None:
        """Hook for subclasses: fail their own futures."""

    # -- reading ---------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._reader is not None
        reader = self._reader
        parser = self._parser
        loop = asyncio.get_running_loop()
        stats = self.stats
        reason: BaseException
        try:
            while True:
                data = await reader.read(262_144)
                if not data:
                    try:
                        parser.eof()
                    except FrameError as exc:
                        stats.frame_errors += 1
                        log.warning("%s: %s", self.label, exc)
                    notice = self.disconnect_notice
                    detail = f" after disconnect notice {notice.text.strip()!r}" if notice else ""
                    reason = ConnectionLost(f"closed by peer{detail}")
                    break
                self._last_rx = loop.time()
                stats.bytes_received += len(data)
                try:
                    frames = parser.feed(data)
                except FrameError as exc:
                    # Fatal: frames completed before the error still count.
                    self._count_frame_errors()
                    self._dispatch(exc.frames)
                    stats.frame_errors += 1
                    log.error("%s: framing lost, closing: %s", self.label, exc)
                    reason = ConnectionLost(f"framing lost: {exc}")
                    reason.__cause__ = exc
                    break
                self._count_frame_errors()
                self._dispatch(frames)
                if self.is_closed:
                    return
        except asyncio.CancelledError:
            reason = self._close_reason or ConnectionLost("reader cancelled")
        except (OSError, ConnectionError) as exc:
            reason = ConnectionLost(f"socket error: {exc!r}")
        except Exception as exc:  # a bug here must fail the connection, never hang it
            log.exception("%s: reader failed", self.label)
            reason = ConnectionLost(f"reader failed: {exc!r}")
        self._shutdown(reason)

    def _count_frame_errors(self) -> None:
        errors = self._parser.take_errors()
        if errors:
            self.stats.frame_errors += len(errors)
            for err in errors:
                log.warning("%s: %s", self.label, err)

    def _dispatch(self, frames: list[Frame]) -> None:
        stats = self.stats
        for frame in frames:
            stats.frames += 1
            ctype = frame.content_type
            try:
                if ctype in _EVENT_TYPES:
                    self._on_event_frame(frame)
                elif ctype in _REPLY_TYPES:
                    self._on_reply(frame)
                else:
                    self._on_other(frame)
            except Exception:  # noqa: BLE001  # the reader must survive any handler bug
                log.exception("%s: error while handling %r", self.label, frame)
            if self.is_closed:
                return

    def _on_reply(self, frame: Frame) -> None:
        if self._on_frame(frame):
            return
        if not self._pending:
            self.stats.unexpected_replies += 1
            log.warning("%s: reply with no command waiting: %r", self.label, frame)
            return
        _command, fut = self._pending.popleft()
        if not fut.done():  # done = the caller timed out or was cancelled
            fut.set_result(frame)

    def _on_other(self, frame: Frame) -> None:
        if self._on_frame(frame):
            return
        ctype = frame.content_type
        if ctype == DISCONNECT_NOTICE:
            self.disconnect_notice = frame
            log.info(
                "%s: disconnect notice (%s): %s",
                self.label,
                frame.get("Content-Disposition") or "disconnect",
                frame.text.strip(),
            )
        elif ctype == LOG_DATA:
            self.stats.log_frames += 1
            if self._log_handler is not None:
                self._log_handler(frame)
        elif ctype in (AUTH_REQUEST, RUDE_REJECTION):
            log.warning("%s: unexpected %s frame", self.label, ctype)
        else:
            self.stats.unknown_frames += 1
            log.warning("%s: skipping frame of unknown type %r", self.label, ctype)

    def _on_frame(self, frame: Frame) -> bool:
        """Subclass hook run before the generic handling; return True if consumed."""
        return False

    def _on_event_frame(self, frame: Frame) -> None:
        try:
            event = event_from_frame(frame)
        except EventValidationError as exc:
            self.stats.invalid_events += 1
            log.warning("%s: skipping invalid event: %s", self.label, exc)
            return
        self.stats.events += 1
        self._route_event(event)
        if self._waiters:
            self._check_waiters(event)
        if self._wants(event) and not self.events.put(event):
            self.stats.events_dropped = self.events.dropped - self._dropped_base
            self._shutdown(ConnectionLost("event queue full (overflow policy: disconnect)"))
            return
        self.stats.events_dropped = self.events.dropped - self._dropped_base

    def _route_event(self, event: Event) -> None:
        """Subclass hook: internal consumers (jobs, call state) see every event first."""

    def _wants(self, event: Event) -> bool:
        """Whether ``event`` goes to :attr:`events`."""
        return True

    def _check_waiters(self, event: Event) -> None:
        keep = []
        for waiter in self._waiters:
            if waiter.future.done():
                continue
            try:
                matched = waiter.predicate(event)
            except Exception as exc:  # noqa: BLE001  # a bad predicate fails its own waiter only
                _fail(waiter.future, exc)
                continue
            if matched:
                waiter.future.set_result(event)
            else:
                keep.append(waiter)
        self._waiters = keep

    async def _watchdog(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        period = min(timeout / 4, 1.0)
        while True:
            await asyncio.sleep(period)
            idle = loop.time() - self._last_rx
            if idle > timeout:
                self.stats.heartbeat_timeouts += 1
                log.warning(
                    "%s: nothing received for %.1f s (limit %.1f s); connection presumed dead",
                    self.label,
                    idle,
                    timeout,
                )
                self._shutdown(ConnectionLost(f"watchdog: nothing received for {idle:.1f} s"))
                return

    # -- commands --------------------------------------------------------------
    def _send_nowait(self, text: str) -> asyncio.Future[Frame]:
        """Write one command and queue its reply future (both synchronously, so in order)."""
        if not self.is_connected or self._writer is None:
            raise ConnectionLost(f"{self.label}: not connected")
        if not text.endswith("\n\n"):
            text += "\n\n"
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending.append((text.split("\n", 1)[0], fut))
        self._writer.write(text.encode("utf-8"))
        self.stats.commands += 1
        return fut

    async def send(self, text: str, timeout: float | None = None) -> Frame:
        """Send a raw command (one or more lines, no blank line) and return its reply frame.

        ``timeout`` defaults to :attr:`command_timeout`; on expiry
        :class:`~.errors.CommandTimeout` is raised and the connection stays usable.
        """
        fut = self._send_nowait(text)
        assert self._writer is not None
        try:
            await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            raise ConnectionLost(f"{self.label}: write failed: {exc!r}") from exc
        return await self._await_reply(text, fut, timeout)

    async def _await_reply(
        self, text: str, fut: asyncio.Future[Frame], timeout: float | None
    ) -> Frame:
        if timeout is None:
            timeout = self.command_timeout
        if timeout is None:
            return await fut
        # The FIFO slot stays in `_pending` whatever happens to `fut` (`_on_reply` drops a
        # reply whose future is done), so `fut` is awaited as is: no shield and no
        # asyncio.timeout, whose extra future, callbacks and Timeout per command made up a
        # good part of what every young collection of a busy switchboard examined.
        expiry = asyncio.get_running_loop().call_later(timeout, self._expire, fut, text, timeout)
        try:
            return await fut
        finally:
            expiry.cancel()

    def _expire(self, fut: asyncio.Future[Frame], text: str, timeout: float) -> None:
        """No reply in time: fail the caller's wait; the connection stays usable."""
        if not fut.done():
            self.stats.command_timeouts += 1
            first = text.split("\n", 1)[0]
            fut.set_exception(CommandTimeout(f"{self.label}: no reply to {first!r} in {timeout} s"))

    async def command(self, text: str, timeout: float | None = None) -> str:
        """Send a command answered by ``command/reply``; return its ``Reply-Text``.

        Raises :class:`~.errors.CommandError` on ``-ERR ...``.
        """
        reply = await self.send(text, timeout)
        return _check_reply(text, reply.reply_text)

    async def api(self, command: str, timeout: float | None = None) -> str:
        """Run ``api <command>`` and return the response body (exactly as sent, newline included).

        Raises :class:`~.errors.CommandError` if FreeSWITCH answers ``-ERR ...``
        (unknown command, originate failure...) or ``-USAGE: ...``.
        """
        check_line(command, "api command")
        reply = await self.send(f"api {command}", timeout)
        if reply.content_type == API_RESPONSE:
            return _check_reply(f"api {command}", reply.text)
        # e.g. "-ERR command not found" as a command/reply (api on a non-full socket)
        _check_reply(f"api {command}", reply.reply_text)
        return reply.reply_text

    async def subscribe(self, *event_names: str, fmt: str = "plain") -> str:
        """``event <fmt> <names...>``. The format applies to all later events of the connection."""
        if fmt not in EVENT_FORMATS:
            raise ValueError(f"event format must be one of {EVENT_FORMATS}")
        names = " ".join(check_line(n, "event name") for n in event_names) or "ALL"
        return await self.command(f"event {fmt} {names}")

    async def filter(self, header: str, value: str) -> str:
        """``filter <header> <value>`` (an allow-list: only matching events are sent)."""
        return await self.command(
            f"filter {check_line(header, 'header')} {check_line(value, 'value')}"
        )

    async def filter_delete(self, header: str = "all", value: str | None = None) -> str:
        """``filter delete <header> [<value>]``; ``filter_delete()`` removes all filters."""
        text = f"filter delete {check_line(header, 'header')}"
        if value is not None:
            text += f" {check_line(value, 'value')}"
        return await self.command(text)

    async def nixevent(self, *event_names: str) -> str:
        """``nixevent <names...>``: unsubscribe from these events."""
        return await self.command(
            "nixevent " + " ".join(check_line(n, "event name") for n in event_names)
        )

    async def noevents(self) -> str:
        """``noevents``: unsubscribe from all events."""
        return await self.command("noevents")

    async def sendmsg(
        self,
        uuid: str | None,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """``sendmsg`` ``execute`` of ``app`` on channel ``uuid``; return the Event-UUID used.

        The Event-UUID (generated unless given) comes back as ``Application-UUID``
        in the CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE events of this run.
        ``event_lock`` makes FreeSWITCH run queued messages one at a time.
        """
        event_uuid = event_uuid or str(uuidlib.uuid4())
        text = build_sendmsg(
            uuid, app, arg, event_lock=event_lock, loops=loops, event_uuid=event_uuid
        )
        await self.command(text, timeout)
        return event_uuid

    async def sendmsg_hangup(
        self, uuid: str | None, cause: str = "NORMAL_CLEARING", timeout: float | None = None
    ) -> str:
        """``sendmsg`` with ``call-command: hangup``."""
        head = f"sendmsg {check_line(uuid, 'uuid')}" if uuid else "sendmsg"
        return await self.command(
            f"{head}\ncall-command: hangup\nhangup-cause: {check_line(cause, 'cause')}", timeout
        )

    def add_waiter(self, predicate: Callable[[Event], bool]) -> asyncio.Future[Event]:
        """Future resolved with the first later event matching ``predicate``.

        Register it *before* sending the command that causes the event, so that
        an event arriving in the same TCP segment as the reply is not missed.
        Waiters see every event, whether or not it goes to :attr:`events`.
        """
        if not self.is_connected:
            raise ConnectionLost(f"{self.label}: not connected")
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(predicate, fut))
        return fut

    async def wait_for_event(
        self, predicate: Callable[[Event], bool], timeout: float | None = None
    ) -> Event:
        """Wait for the first later event matching ``predicate``."""
        fut = self.add_waiter(predicate)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            if not fut.done():
                fut.cancel()
