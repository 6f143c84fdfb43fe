"""Outbound ESL: FreeSWITCH connects to us, one TCP connection per call.

The dialplan runs ``socket 127.0.0.1:8084 async full``; FreeSWITCH connects and
then waits (no ``auth/request``). :class:`OutboundServer` accepts, sends
``connect`` (whose reply's headers are the channel data: ``Event-Name:
CHANNEL_DATA``, ``Unique-ID``, every ``variable_*``, then ``Socket-Mode`` and
``Control``) and runs the application's ``async def handle(call)`` in its own
task. When the handler returns or fails, the socket is closed, which makes
FreeSWITCH hang up the call unless the dialplan was told otherwise.

Hangup handling (see captures 04, 04c, 04d, 05): after the channel hangs up
FreeSWITCH sends the remaining channel events, then a ``text/disconnect-notice``
with ``Content-Disposition: linger`` if ``linger`` was requested (the socket
stays open for ``Linger-Time`` seconds, ``-1`` meaning until we close it), and
finally one with ``Content-Disposition: disconnect`` before closing.
:attr:`OutboundCall.hangup` is set at the first of CHANNEL_HANGUP(_COMPLETE)
of the channel or any disconnect notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable

from .connection import ESLConnection, check_line
from .errors import ConnectionLost
from .events import Event, event_from_headers
from .frames import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DISCONNECT_NOTICE, Frame
from .queue import OverflowPolicy

__all__ = ["OutboundCall", "OutboundServer"]

log = logging.getLogger("telephony.esl.outbound")

_HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})


class OutboundCall(ESLConnection):
    """The connection FreeSWITCH opened for one call.

    :attr:`events` receives every event FreeSWITCH sends on the socket (after
    :meth:`myevents` / :meth:`subscribe`). Commands are those of
    :class:`~.connection.ESLConnection` plus the outbound-only ones below;
    ``sendmsg`` without a UUID targets this call's channel.
    """

    def __init__(
        self,
        *,
        command_timeout: float | None = 30.0,
        event_queue_size: int = 1_000,
        overflow_policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        label: str = "outbound",
    ) -> None:
        super().__init__(
            command_timeout=command_timeout,
            idle_timeout=None,  # a call's socket is legitimately silent for minutes
            event_queue_size=event_queue_size,
            overflow_policy=overflow_policy,
            max_header_size=max_header_size,
            max_body_size=max_body_size,
            label=label,
        )
        #: The channel data from the ``connect`` reply (an event named CHANNEL_DATA).
        self.channel: Event | None = None
        #: Set when the channel hung up (hangup event or disconnect notice).
        self.hangup = asyncio.Event()
        #: ``Hangup-Cause`` of the channel's hangup event, once known.
        self.hangup_cause: str | None = None
        #: True after a ``Content-Disposition: linger`` notice.
        self.lingering = False

    # -- channel data ---------------------------------------------------------
    @property
    def uuid(self) -> str:
        """The channel's UUID (``Unique-ID`` of the channel data)."""
        if self.channel is None or not self.channel.unique_id:
            raise RuntimeError("connect() first")
        return self.channel.unique_id

    @property
    def variables(self) -> dict[str, str]:
        """Channel variables as of ``connect`` (``variable_*`` without the prefix)."""
        return dict(self.channel.variables) if self.channel is not None else {}

    @property
    def socket_mode(self) -> str | None:
        """``async`` or ``static`` (sync: ``sendmsg`` replies only once the app finished)."""
        return self.channel.get("Socket-Mode") if self.channel is not None else None

    @property
    def control(self) -> str | None:
        """``full`` (api/bgapi allowed) or ``single-channel``."""
        return self.channel.get("Control") if self.channel is not None else None

    # -- commands -------------------------------------------------------------
    async def connect(self, timeout: float | None = None) -> Event:
        """Send ``connect``; parse and return the channel data."""
        reply = await self.send("connect", timeout)
        channel = event_from_headers(reply)
        if not channel.unique_id:
            raise ConnectionLost(f"{self.label}: connect reply without Unique-ID")
        self.channel = channel
        self.label = f"outbound {channel.unique_id}"
        return channel

    async def myevents(self, fmt: str | None = None) -> str:
        """``myevents [plain|json|xml]``: receive all events of this channel (default plain)."""
        return await self.command(f"myevents {check_line(fmt, 'format')}" if fmt else "myevents")

    async def linger(self, seconds: int | None = None) -> str:
        """``linger [seconds]``: keep the socket open after hangup (to get the last events)."""
        return await self.command("linger" if seconds is None else f"linger {int(seconds)}")

    async def resume(self) -> str:
        """``resume``: if this socket goes away, the channel resumes its dialplan instead of
        being hung up (mod_event_socket sets ``socket_resume=true``)."""
        return await self.command("resume")

    async def nolinger(self) -> str:
        """``nolinger``."""
        return await self.command("nolinger")

    async def execute(
        self,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        loops: int | None = None,
        timeout: float | None = None,
    ) -> str:
        """``sendmsg`` ``execute`` on this channel; return its Event-UUID at once (async mode).

        In sync (``static``) mode FreeSWITCH only replies once the application
        has finished, so the call returns then (mind ``timeout``).
        """
        return await self.sendmsg(
            None, app, arg, event_lock=event_lock, loops=loops, timeout=timeout
        )

    async def execute_wait(
        self,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        loops: int | None = None,
        timeout: float | None = None,
    ) -> Event:
        """Execute ``app`` and wait for its CHANNEL_EXECUTE_COMPLETE; return that event.

        The completion is matched by ``Application-UUID`` == the Event-UUID we
        sent, so two runs of the same application can't be confused. Needs the
        channel's events (:meth:`myevents`). ``timeout`` covers the whole run.
        """
        event_uuid = str(uuidlib.uuid4())
        done = self.add_waiter(
            lambda ev: (
                ev.name == "CHANNEL_EXECUTE_COMPLETE" and ev.get("Application-UUID") == event_uuid
            )
        )
        try:
            async with asyncio.timeout(timeout):
                await self.sendmsg(
                    None, app, arg, event_lock=event_lock, loops=loops, event_uuid=event_uuid
                )
                return await done
        finally:
            if not done.done():
                done.cancel()

    async def hangup_call(self, cause: str = "NORMAL_CLEARING") -> str:
        """``sendmsg`` ``call-command: hangup`` on this channel."""
        return await self.sendmsg_hangup(None, cause)

    async def exit(self) -> None:
        """``exit``: FreeSWITCH replies ``+OK bye``, sends a disconnect notice and closes."""
        with contextlib.suppress(ConnectionLost):
            await self.command("exit")

    async def getvar(self, name: str) -> str:
        """``api uuid_getvar <uuid> <name>`` (needs ``full``); ``_undef_`` is returned as is."""
        return await self.api(f"uuid_getvar {self.uuid} {check_line(name, 'variable')}")

    # -- frame/event hooks ------------------------------------------------------
    def _on_frame(self, frame: Frame) -> bool:
        if frame.content_type == DISCONNECT_NOTICE:
            self.disconnect_notice = frame
            disposition = frame.get("Content-Disposition") or "disconnect"
            if disposition == "linger":
                self.lingering = True
            log.info(
                "%s: disconnect notice (%s, linger time %s)",
                self.label,
                disposition,
                frame.get("Linger-Time") or "-",
            )
            self.hangup.set()
            return True
        return False

    def _route_event(self, event: Event) -> None:
        if (
            event.name in _HANGUP_EVENTS
            and self.channel is not None
            and event.unique_id == self.channel.unique_id
        ):
            if self.hangup_cause is None:
                self.hangup_cause = event.get("Hangup-Cause")
            self.hangup.set()

    def _on_closed(self, reason: BaseException) -> None:
        # A closed socket means the call is over for us, whatever the reason.
        self.hangup.set()


CallHandler = Callable[[OutboundCall], Awaitable[None]]


class OutboundServer:
    """Accepts FreeSWITCH's outbound socket connections and runs ``handler`` per call.

    ``handler(call)`` is called after ``connect`` succeeded (so ``call.channel``
    and ``call.uuid`` are set). Exceptions in a handler are logged and only end
    that call. ``calls`` holds the calls being handled.
    """

    def __init__(
        self,
        handler: CallHandler,
        host: str = "127.0.0.1",
        port: int = 8084,
        *,
        connect_timeout: float = 5.0,
        command_timeout: float | None = 30.0,
        event_queue_size: int = 1_000,
        overflow_policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._call_options: dict[str, object] = {
            "command_timeout": command_timeout,
            "event_queue_size": event_queue_size,
            "overflow_policy": overflow_policy,
        }
        self.calls: set[OutboundCall] = set()
        self.accepted = 0
        self.failed_connects = 0
        self.handler_errors = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; with ``port=0`` the chosen port is stored in :attr:`port`."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("outbound ESL server listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening, cancel running handlers and close their sockets."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> OutboundServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback: we own the task (asyncio would not cancel it on close).
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        call = OutboundCall(label=f"outbound {peer}", **self._call_options)  # type: ignore[arg-type]
        call._attach(reader, writer)
        self.accepted += 1
        try:
            try:
                await call.connect(self.connect_timeout)
            except Exception as exc:  # noqa: BLE001  # a bad peer must not affect others
                self.failed_connects += 1
                log.warning("%s: connect failed: %r", call.label, exc)
                return
            self.calls.add(call)
            try:
                await self.handler(call)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001  # one call's bug must not stop the server
                self.handler_errors += 1
                log.exception("%s: call handler failed", call.label)
        finally:
            self.calls.discard(call)
            await call.close()
