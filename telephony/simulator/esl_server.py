"""Event Socket sessions of the simulated switch: inbound server and outbound sockets.

* :class:`InboundSession`: one client connected to ``mod_event_socket``'s
  listener (auth, event/filter/nixevent/noevents, api/bgapi, sendmsg,
  sendevent, log, exit), replying with the captured texts.
* :class:`OutboundSession`: the ``socket`` application connecting out to the
  platform (connect, myevents, linger, sendmsg execute/hangup, api with
  ``full``, exit, linger/disconnect notices).
* :class:`SwitchNode`: a :class:`~telephony.simulator.switch.Switch` plus its
  listener on ``127.0.0.1:<port>``, with the connection faults (drop, restart).

Only loopback addresses are used: the listener binds 127.0.0.1 and the
outbound target must be a loopback host (checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Iterable

from .model import Channel
from .switch import SimEvent, Switch, _Queued, split_args
from .wire import (
    AUTH_REQUEST,
    SHUTDOWN_NOTICE,
    api_response,
    command_reply,
    connect_reply,
    disconnect_notice,
    event_message,
    log_data,
    outbound_disconnect_notice,
)

log = logging.getLogger(__name__)

#: Events ``myevents`` subscribes to (mod_event_socket.c, "myevents").
MYEVENTS = frozenset(
    {
        "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE",
        "CHANNEL_DATA", "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
        "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF",
        "NOTALK", "TALK",
    }
)  # fmt: skip
MAX_COMMAND = 1024 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def read_command(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], str] | None:
    """Read one client command: ``(first line, headers, body)``; None at EOF."""
    try:
        block = await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        return None
    text = block.decode("utf-8", "replace").lstrip("\n").rstrip("\n")
    if not text:
        return "", {}, ""
    lines = text.replace("\r", "").split("\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    body = ""
    length = headers.get("content-length") or headers.get("Content-Length")
    if length and length.isdigit() and 0 < int(length) <= MAX_COMMAND:
        try:
            body = (await reader.readexactly(int(length))).decode("utf-8", "replace")
        except asyncio.IncompleteReadError:
            return None
    return lines[0].strip(), headers, body


class _Session:
    """What inbound and outbound sessions share: subscription, filters, delivery."""

    def __init__(self, switch: Switch, writer: asyncio.StreamWriter) -> None:
        self.switch = switch
        self.writer = writer
        self.fmt = "plain"
        self.events: set[str] = set()
        self.all_events = False
        self.subclasses: set[str] = set()
        self.filters: list[tuple[str, str]] = []
        self.uuid_filter: str | None = None
        self.closed = False
        self.nixed: set[str] = set()
        self._reorder_buf: list[SimEvent] = []
        # While an api command runs, events wait here: FreeSWITCH writes the
        # api/response before the listener queue is flushed (capture 01).
        self._held: list[SimEvent | bytes] | None = None

    # -- subscription ---------------------------------------------------------
    def wants(self, event: SimEvent) -> bool:
        """mod_event_socket's subscription + filter check."""
        if self.uuid_filter is not None and event.unique_id != self.uuid_filter:
            return False
        if event.name == "CUSTOM" and not self.all_events:
            sub = event.get("Event-Subclass") or ""
            if sub not in self.subclasses and "CUSTOM" not in self.events:
                return False
        elif event.name in self.nixed or (not self.all_events and event.name not in self.events):
            return False
        if self.filters:
            return any(event.get(h) == v for h, v in self.filters)
        return True

    def deliver(self, event: SimEvent) -> None:
        """Queue ``event`` for this connection if subscribed (faults applied)."""
        if self.closed or not self.wants(event):
            return
        if self._held is not None:
            self._held.append(event)
            return
        self._deliver(event)

    def _deliver(self, event: SimEvent) -> None:
        faults = self.switch.faults
        if faults.reorder:
            self._reorder_buf.append(event)
            if len(self._reorder_buf) == 1:
                asyncio.get_running_loop().call_soon(self._flush_reordered)
            return
        if faults.event_delay:
            self.switch.spawn(self._later(event, faults.event_delay))
            return
        self.write_event(event)

    def _flush_reordered(self) -> None:
        """Emit buffered events channel by channel, last-seen channel first.

        Each channel's own order is kept (what FreeSWITCH guarantees); only the
        interleaving between channels and channel-less events changes.
        """
        buf, self._reorder_buf = self._reorder_buf, []
        groups: dict[str | None, list[SimEvent]] = {}
        for ev in buf:
            groups.setdefault(ev.unique_id, []).append(ev)
        for key in reversed(list(groups)):
            for ev in groups[key]:
                self.write_event(ev)

    async def _later(self, event: SimEvent, delay: float) -> None:
        await self.switch.clock.sleep(delay)
        self.write_event(event)

    def write_event(self, event: SimEvent) -> None:
        self.write(event_message(self.fmt, event.headers, event.body))

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True

    def abort(self) -> None:
        """Drop the TCP connection without any notice (the ``drop`` fault)."""
        self.closed = True
        self.switch.listeners.discard(self)
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    async def close(self) -> None:
        self.closed = True
        self.switch.listeners.discard(self)
        with contextlib.suppress(Exception):
            self.writer.close()
            await self.writer.wait_closed()

    # -- commands shared by both modes -----------------------------------------
    def cmd_event(self, arg: str) -> bytes:
        words = arg.split()
        fmt = "plain"
        if words and words[0] in ("plain", "json", "xml"):
            fmt = words.pop(0)
        self.fmt = fmt
        custom = False
        for word in words:
            self.nixed.discard(word)
            if word == "ALL":
                self.all_events = True
                self.nixed.clear()
            elif word == "CUSTOM":
                custom = True
            elif custom or "::" in word:
                self.subclasses.add(word)
            else:
                self.events.add(word)
        self.switch.listeners.add(self)
        return command_reply(f"+OK event listener enabled {fmt}")

    def cmd_nixevent(self, arg: str) -> bytes:
        for word in arg.split():
            if word == "ALL":
                self.all_events = False
                self.events.clear()
                self.subclasses.clear()
                self.nixed.clear()
            else:
                self.events.discard(word)
                self.subclasses.discard(word)
                if self.all_events:
                    self.nixed.add(word)
        return command_reply("+OK events nixed")

    def cmd_noevents(self, arg: str) -> bytes:
        self.all_events = False
        self.events.clear()
        self.subclasses.clear()
        self.nixed.clear()
        return command_reply("+OK no longer listening for events")

    def cmd_filter(self, arg: str) -> bytes:
        words = arg.split(" ", 2)
        if words[0] == "delete":
            if len(words) < 2:
                return command_reply("-ERR invalid syntax")
            if words[1] == "all":
                self.filters.clear()
                return command_reply("+OK filter deleted. [all][]")
            value = words[2] if len(words) > 2 else ""
            self.filters = [
                f for f in self.filters if f[0] != words[1] or (value and f[1] != value)
            ]
            return command_reply(f"+OK filter deleted. [{words[1]}][{value}]")
        if len(words) < 2:
            return command_reply("-ERR invalid syntax")
        header, value = words[0], " ".join(words[1:])
        self.filters.append((header, value))
        return command_reply(f"+OK filter added. [{header}]=[{value}]")

    async def handle(self, line: str, headers: dict[str, str], body: str) -> bytes | None:
        raise NotImplementedError

    async def serve_commands(self) -> None:
        """Read and execute commands until EOF, the peer leaving, or ``self.closed``.

        Shared by inbound ESL sessions and outbound-socket sessions; each ``handle`` returns
        its reply (or None when it wrote it already).
        """
        try:
            while not self.closed:
                cmd = await read_command(self.reader)
                if cmd is None:
                    break
                line, headers, body = cmd
                if not line:
                    continue
                reply = await self.handle(line, headers, body)
                if reply is not None:
                    self.write(reply)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def run_api(self, arg: str) -> bytes | None:
        command, _, rest = arg.strip().partition(" ")
        if not command:
            return command_reply("-ERR command not found")
        self._held = []
        try:
            body = await self.switch.api(command, rest.strip())
            self.write(api_response(body))
            self.switch.fire(self.switch.api_event(command, rest.strip()))
        finally:
            held, self._held = self._held, None
            for item in held or ():
                if isinstance(item, bytes):
                    self.write(item)
                else:
                    self._deliver(item)
        return None

    def run_bgapi(self, arg: str, headers: dict[str, str]) -> bytes:
        command, _, rest = arg.strip().partition(" ")
        job_uuid = headers.get("Job-UUID") or self.switch.new_uuid()
        self.switch.spawn(self._bgapi(job_uuid, command, rest.strip()))
        return command_reply(f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid))

    async def _bgapi(self, job_uuid: str, command: str, arg: str) -> None:
        await asyncio.sleep(0)  # the reply goes out before the job runs
        sw = self.switch
        sw.fire(sw.api_event(command, arg))
        body = await sw.api(command, arg) if command else "-ERR command not found\n"
        headers = sw.core_headers("BACKGROUND_JOB") + [
            ("Job-UUID", job_uuid),
            ("Job-Command", command),
        ]
        if arg:
            headers.append(("Job-Command-Arg", arg))
        sw.fire(SimEvent("BACKGROUND_JOB", headers, body))

    def sendmsg(self, target: Channel, headers: dict[str, str], body: str, *, sync: bool = False
                ) -> tuple[bytes, asyncio.Future[None] | None]:  # fmt: skip
        """Apply a sendmsg to ``target``; returns the reply and, in sync mode, a completion."""
        low = {k.lower(): v for k, v in headers.items()}
        cmd = low.get("call-command", "")
        if cmd == "hangup":
            # The +OK goes out before the hangup events (capture 04c).
            cause = low.get("hangup-cause", "NORMAL_CLEARING")
            asyncio.get_running_loop().call_soon(self.switch.hangup, target, cause)
            return command_reply("+OK"), None
        if cmd == "execute":
            app = low.get("execute-app-name", "")
            arg = low.get("execute-app-arg", "")
            if not arg and body:
                arg = body.rstrip("\n")
            loops = int(low.get("loops", "1") or "1")
            done = asyncio.get_running_loop().create_future()
            lock = low.get("event-lock", "").lower() == "true"
            event_uuid = low.get("event-uuid", "")
            client = [("Command", f"sendmsg {target.uuid}")] + list(headers.items())

            def after() -> None:
                # Captured: a sendmsg carrying Event-UUID fires PRIVATE_COMMAND
                # (client headers first) once the application has run.
                if event_uuid and not isinstance(self, OutboundSession):
                    sw = self.switch
                    hs = client + sw.core_headers("PRIVATE_COMMAND") + target.basic_headers()
                    sw.fire(SimEvent("PRIVATE_COMMAND", hs, None, target.uuid))

            self.switch.queue_app(
                target, _Queued(app, arg, event_uuid, lock, after, done, max(1, loops))
            )
            return command_reply("+OK"), done if sync else None
        if cmd in ("unicast", "nomedia", "xferext"):
            return command_reply("+OK"), None
        return command_reply("-ERR invalid command"), None


class InboundSession(_Session):
    """One inbound ESL client (``mod_event_socket`` listener side)."""

    def __init__(self, node: SwitchNode, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        super().__init__(node.switch, writer)
        self.node = node
        self.reader = reader
        self.authed = False
        self.log_level = -1

    async def run(self) -> None:
        """Serve the connection until EOF, ``exit`` or a fault."""
        self.write(AUTH_REQUEST)
        try:
            await self.serve_commands()
        finally:
            self.closed = True
            self.switch.listeners.discard(self)
            self.switch.log_sinks.discard(self)
            self.node.sessions.discard(self)
            with contextlib.suppress(Exception):
                self.writer.close()

    async def handle(self, line: str, headers: dict[str, str], body: str) -> bytes | None:
        """Execute one command; return the reply (None if already written)."""
        command, _, arg = line.partition(" ")
        if not self.authed:
            if command == "auth":
                if arg.strip() == self.node.password:
                    self.authed = True
                    return command_reply("+OK accepted")
                self.write(command_reply("-ERR invalid") + disconnect_notice())
                await self.close()
                return None
            return command_reply("-ERR command not found")
        if command == "api":
            return await self.run_api(arg)
        if command == "bgapi":
            return self.run_bgapi(arg, headers)
        if command == "event":
            return self.cmd_event(arg)
        if command == "nixevent":
            return self.cmd_nixevent(arg)
        if command == "noevents":
            return self.cmd_noevents(arg)
        if command == "filter":
            return self.cmd_filter(arg)
        if command == "myevents":
            self.uuid_filter = arg.split()[0] if arg.split() else None
            self.events |= MYEVENTS
            self.switch.listeners.add(self)
            return command_reply("+OK Events Enabled")
        if command == "sendmsg":
            target = self.switch.get(arg.strip())
            if target is None:
                return command_reply(f"-ERR invalid session id [{arg.strip()}]")
            return self.sendmsg(target, headers, body)[0]
        if command == "sendevent":
            return self.sendevent(arg.strip(), headers, body)
        if command == "log":
            level = arg.strip() or "7"
            self.log_level = int(level) if level.isdigit() else 7
            self.switch.log_sinks.add(self)
            return command_reply(f"+OK log level {level} [{self.log_level}]")
        if command == "nolog":
            self.switch.log_sinks.discard(self)
            return command_reply("+OK no longer logging")
        if command in ("linger", "nolinger"):
            return command_reply(
                "+OK will linger" if command == "linger" else "+OK will not linger"
            )
        if command == "exit":
            self.write(command_reply("+OK bye") + disconnect_notice())
            await self.close()
            return None
        return command_reply("-ERR command not found")

    def deliver_log(self, level: int, text: str, file: str, func: str, line: int) -> None:
        """Write a ``log/data`` message if ``level`` is within the session's log level."""
        if level <= self.log_level:
            data = log_data(level, text, file, func, line)
            if self._held is not None:
                self._held.append(data)
            else:
                self.write(data)

    def sendevent(self, name: str, headers: dict[str, str], body: str) -> bytes:
        """``sendevent NAME``: the client's headers first, then the core headers."""
        sw = self.switch
        event_uuid = sw.new_uuid()
        # The client's headers come first, its Content-Length included (so it
        # repeats in the serialised event, as captured in 01).
        client = list(headers.items())
        client.insert(1 if client else 0, ("Command", f"sendevent {name}"))
        hs = client + [("Event-UUID", event_uuid)] + sw.core_headers(name or "CUSTOM")
        sub = headers.get("Event-Subclass")
        sw.fire(SimEvent(name or "CUSTOM", hs, body or None, None, sub))
        return command_reply(f"+OK {event_uuid}")


class OutboundSession(_Session):
    """The ``socket`` application's connection to the platform for one channel."""

    def __init__(self, switch: Switch, ch: Channel, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, async_full: bool) -> None:  # fmt: skip
        super().__init__(switch, writer)
        self.ch = ch
        self.reader = reader
        self.async_full = async_full
        self.linger: int | None = None
        self.resume = False
        self.connected = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._park_checked = False
        #: ``host:port`` this socket app connected to, and whether that app still runs.
        self.target = ""
        self.app_running = False
        self._linger_task: asyncio.Task[object] | None = None

    def wants(self, event: SimEvent) -> bool:
        """Outbound sessions only ever see their own channel's events."""
        if event.unique_id is not None and event.unique_id != self.ch.uuid:
            if self.uuid_filter is not None:
                return False
        return super().wants(event)

    async def run(self) -> None:
        """Serve commands until the platform closes or the notice is sent."""
        try:
            await self.serve_commands()
        finally:
            was_closed = self.closed
            self.closed = True
            self.switch.listeners.discard(self)
            with contextlib.suppress(Exception):
                self.writer.close()
            if not was_closed and self.ch.alive:
                bridged = self.ch.bridged_to is not None and self.ch.bridged_to.alive
                # mod_event_socket: the ``resume`` command or the channel variable
                # ``socket_resume`` (the platform's dialplan sets it before the socket app).
                resume = self.resume or self.ch.variables.get("socket_resume") == "true"
                if resume and bridged:
                    # Resumed: the bridge keeps running on the switch; the dialplan goes on
                    # once it ends (ours then hangs up).
                    self.switch.resumed.add(self.ch.uuid)
                elif resume:
                    # mod_event_socket's listener_run: LFLAG_RESUME -> CS_RESET, the socket
                    # app's park ends and the extension goes on with its next application
                    # (the platform's dialplan: the standby switchboard's socket).
                    self.switch.continued.add(self.ch.uuid)
                    if not self.app_running:
                        # Parked by uuid_park since (the socket app is no longer what runs):
                        # the rest of the extension after this socket runs now.
                        self.switch.unwind(self.ch)
                        self.switch.drop_queued(self.ch)
                        self.switch.start_apps(self.ch, self.rest_of_extension())
                else:
                    # The platform closed the socket: FreeSWITCH hangs the call up (04d);
                    # with resume and nothing else to run, the dialplan ends: hangup too.
                    self.switch.socket_hangups.add(self.ch.uuid)
                    self.switch.hangup(self.ch, "NORMAL_CLEARING")
            if not self.finished.done():
                self.finished.set_result(None)

    def rest_of_extension(self) -> list[tuple[str, str]]:
        """The channel's dialplan applications after this socket."""
        apps = self.ch.extension[1] if self.ch.extension else []
        for i, (app, arg) in enumerate(apps):
            if app == "socket" and arg.split()[0] == self.target:
                return list(apps[i + 1 :])
        return []

    async def handle(self, line: str, headers: dict[str, str], body: str) -> bytes | None:
        command, _, arg = line.partition(" ")
        sw = self.switch
        log.debug("outbound %s: %s", self.ch.uuid, line)
        if command == "connect":
            self.connected = True
            # mod_event_socket: core headers, the caller profile again with the
            # prefix "Channel", then the usual channel data and variables.
            data = self.ch.data_headers(True)  # also refreshes the profile's times
            profile = self.ch.profile.headers("Channel", self.ch.uuid, self.ch.name)
            calling = ("mod_event_socket.c", "parse_command", "2021")
            headers = sw.core_headers("CHANNEL_DATA", calling) + profile + data
            return connect_reply(headers, async_full=self.async_full)
        if command == "myevents":
            fmt = arg.split()[0] if arg.split() else "plain"
            self.fmt = fmt if fmt in ("plain", "json", "xml") else "plain"
            self.events |= MYEVENTS
            self.uuid_filter = self.ch.uuid
            sw.listeners.add(self)
            return command_reply("+OK Events Enabled")
        if command == "linger":
            secs = arg.strip()
            self.linger = int(secs) if secs.lstrip("-").isdigit() else -1
            if secs:
                return command_reply(f"+OK will linger {secs} seconds")
            return command_reply("+OK will linger")
        if command == "nolinger":
            self.linger = None
            return command_reply("+OK will not linger")
        if command == "resume":
            # mod_event_socket: LFLAG_RESUME + socket_resume=true; if the platform goes away
            # the channel resumes its dialplan instead of hanging up.
            self.resume = True
            self.ch.variables["socket_resume"] = "true"
            return command_reply("+OK")
        if command == "event":
            return self.cmd_event(arg)
        if command == "nixevent":
            return self.cmd_nixevent(arg)
        if command == "noevents":
            return self.cmd_noevents(arg)
        if command == "filter":
            return self.cmd_filter(arg)
        if command in ("api", "bgapi") and not self.async_full:
            return command_reply("-ERR command not found")
        if command == "api":
            return await self.run_api(arg)
        if command == "bgapi":
            return self.run_bgapi(arg, headers)
        if command == "sendmsg":
            target = sw.get(arg.strip()) if arg.strip() else self.ch
            if target is None or not target.alive:
                return command_reply("-ERR invalid session id")
            if (
                target is self.ch
                and self.async_full
                and not self._park_checked
                and headers.get("call-command") == "execute"
            ):
                # The async socket app parks the channel when it starts serving
                # queued messages; an event-lock message runs before that (04 vs 04c).
                self._park_checked = True
                if headers.get("event-lock", "").lower() != "true":
                    self._announce_park()
            reply, done = self.sendmsg(target, headers, body, sync=not self.async_full)
            if done is not None:
                await done  # sync mode: the reply waits for the application
            return reply
        if command == "exit":
            self.write(command_reply("+OK bye") + outbound_disconnect_notice(self.ch.uuid))
            self.closed = True
            sw.listeners.discard(self)
            with contextlib.suppress(Exception):
                self.writer.close()
            if self.ch.alive:
                sw.hangup(self.ch, "NORMAL_CLEARING")
            return None
        if command in ("log", "nolog"):
            return command_reply("+OK no longer logging" if command == "nolog" else "+OK log level")
        return command_reply("-ERR command not found")

    def _announce_park(self) -> None:
        if self.ch.alive and not self.ch.parked:
            self.ch.parked = True
            self.switch.fire_channel("CHANNEL_PARK", self.ch)

    def hanging_up(self) -> None:
        """The channel starts hanging up: without linger the socket goes now.

        Captured (05, 04d): with no linger FreeSWITCH sends the disconnect
        notice and closes before any hangup event reaches the socket.
        """
        if self.linger is None and not self.closed:
            self.switch.listeners.discard(self)
            self.write(outbound_disconnect_notice(self.ch.uuid))
            self._finish()

    def channel_gone(self) -> None:
        """Called by the switch after CHANNEL_HANGUP_COMPLETE of the controlled channel."""
        sw = self.switch
        sw.listeners.discard(self)
        self.ch.socket_session = None
        if self.closed:
            return
        if self.linger is None:
            self.write(outbound_disconnect_notice(self.ch.uuid))
            self._finish()
            return
        self.write(
            outbound_disconnect_notice(self.ch.uuid, linger=self.linger, channel_name=self.ch.name)
        )
        if self.linger >= 0:
            self._linger_task = sw.spawn(self._linger_then_close(self.linger))

    async def _linger_then_close(self, seconds: int) -> None:
        await self.switch.clock.sleep(seconds)
        self.write(outbound_disconnect_notice(self.ch.uuid))
        self._finish()

    def _finish(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()
        if not self.finished.done():
            self.finished.set_result(None)


class SwitchNode:
    """A simulated FreeSWITCH node: switch core + ESL listener (127.0.0.1 only)."""

    def __init__(self, switch: Switch, *, password: str = "ClueCon", port: int = 0,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        if not _is_loopback(host):
            raise ValueError("the simulator only listens on loopback addresses")
        self.switch = switch
        self.password = password
        self.host = host
        self.port = port
        self.sessions: set[InboundSession] = set()
        self.outbound_sessions: set[OutboundSession] = set()
        self._server: asyncio.base_events.Server | None = None
        switch.socket_connector = self._connect_socket
        switch.on_shutdown = self._on_fsctl_shutdown
        switch.on_node_fault = self._on_node_fault
        #: Simulated seconds the port refuses connections during a restart.
        self.restart_down_for = 5.0

    async def start(self) -> None:
        """Start the switch and listen."""
        await self.switch.start()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=MAX_COMMAND * 2
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close everything (no notices)."""
        await self._stop_listening()
        for session in list(self.sessions) + list(self.outbound_sessions):
            session.abort()
        await self.switch.stop()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = InboundSession(self, reader, writer)
        self.sessions.add(session)
        self.switch.spawn(session.run())

    # -- outbound -------------------------------------------------------------
    async def _connect_socket(self, ch: Channel, host: str, port: int, async_full: bool) -> None:
        sw = self.switch
        if not _is_loopback(host):
            log.error("refusing outbound socket to non-loopback %s", host)
            sw.hangup(ch, "DESTINATION_OUT_OF_ORDER")
            return
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_COMMAND * 2)
        except OSError:
            # socket_function: "Socket Error!" and the extension goes on (the platform's
            # dialplan tries the standby's socket, then hangs up DESTINATION_OUT_OF_ORDER).
            return
        session = OutboundSession(sw, ch, reader, writer, async_full=async_full)
        session.target, session.app_running = f"{host}:{port}", True
        ch.socket_session = session
        self.outbound_sessions.add(session)
        session.finished.add_done_callback(lambda _f: self.outbound_sessions.discard(session))
        sw.spawn(session.run())

        # The socket application owns the channel: it parks and runs
        # queued sendmsg applications until the call ends.
        def unpark() -> None:
            # The socket app always parks, even when CHANNEL_PARK went out
            # before myevents (capture 04 shows CHANNEL_UNPARK without PARK).
            ch.parked = False
            sw.fire_channel("CHANNEL_UNPARK", ch)

        unpark_entry = sw.push_unwind(ch, "socket-unpark", unpark)
        serve = sw.spawn(sw.serve_queue(ch))
        try:
            await asyncio.shield(session.finished)
        finally:
            serve.cancel()
            session.app_running = False
        if ch.alive and ch.uuid in sw.continued:
            # CS_RESET interrupts what the socket had the channel doing (music on hold, a
            # prompt): its EXECUTE_COMPLETE and the UNPARK go out, then the next application.
            # Applications queued by sendmsg and not started are dropped (in FreeSWITCH they
            # return at once: switch_channel_ready() is false in CS_RESET).
            stack = sw.rt(ch).unwind
            while unpark_entry in stack:
                stack.pop().run()
            sw.drop_queued(ch)
            return
        if ch.alive and ch.uuid in sw.resumed:
            # Bridged by uuid_bridge: the extension does not go on (hangup_after_bridge).
            await asyncio.Event().wait()

    # -- faults ---------------------------------------------------------------
    def drop_connections(self) -> int:
        """Abort every inbound ESL connection (no notice). Returns how many."""
        n = 0
        for session in list(self.sessions):
            session.abort()
            n += 1
        return n

    def _on_node_fault(self, name: str, value: str) -> None:
        if name == "drop":
            self.drop_connections()
        elif name == "restart":
            down_for = float(value) if value else 0.0
            self.switch.spawn(self.restart(down_for))

    def _on_fsctl_shutdown(self, restart: bool) -> None:
        if restart:
            self.switch.spawn(self.restart(self.restart_down_for))
        else:
            self.switch.spawn(self.shutdown())

    async def shutdown(self) -> None:
        """What a client sees when FreeSWITCH stops (capture 09): SHUTDOWN, the
        hangups with SYSTEM_SHUTDOWN, UNPUBLISH, the shutdown notice, close."""
        sw = self.switch
        info = [("Event-Info", "System Shutting Down")]
        sw.fire(SimEvent("SHUTDOWN", sw.core_headers("SHUTDOWN") + info))
        for ch in list(sw.channels.values()):
            sw.hangup(ch, "SYSTEM_SHUTDOWN")
        sw.fire(SimEvent("UNPUBLISH", sw.core_headers("UNPUBLISH")))
        await asyncio.sleep(0)
        for session in list(self.sessions):
            session.write(disconnect_notice(SHUTDOWN_NOTICE))
            await session.close()
        for osession in list(self.outbound_sessions):
            osession.abort()
        await self._stop_listening()
        current = asyncio.current_task()
        tasks = [t for t in list(sw._tasks) if t is not current]
        sw._tasks.difference_update(tasks)
        for task in tasks:
            task.cancel()
        if sw._heartbeat is not None:
            sw._heartbeat.cancel()
            sw._heartbeat = None

    async def restart(self, down_for: float = 0.0) -> str:
        """Shut down (see :meth:`shutdown`) and come back with a new Core-UUID.

        Channels are gone; for ``down_for`` simulated seconds the port refuses
        connections (about 5.5 s on the capture host). Returns the new Core-UUID.
        """
        sw = self.switch
        sw.accepting = False
        await self.shutdown()
        if down_for:
            await sw.clock.sleep(down_for)
        sw.core_uuid = sw.new_uuid()
        sw.started_us = sw.clock.now_us()
        sw.session_count = 0
        sw.channels.clear()
        sw._rt.clear()
        sw.listeners.clear()
        sw.log_sinks.clear()
        await self.start()
        sw.accepting = True
        return sw.core_uuid


def parse_dids(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``DID[:tenant]`` strings -> DID table (the tenant is set as a channel variable)."""
    table: dict[str, dict[str, str]] = {}
    for item in items:
        did, _, tenant = item.partition(":")
        if re.fullmatch(r"\+?\d+", did):
            table[did] = {"ccp_did": did, **({"ccp_tenant": tenant} if tenant else {})}
    return table


__all__ = [
    "InboundSession",
    "MYEVENTS",
    "OutboundSession",
    "SwitchNode",
    "parse_dids",
    "read_command",
    "split_args",
]
