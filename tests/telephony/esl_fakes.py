"""Tiny fake FreeSWITCH peers for the ESL client/server tests (127.0.0.1 only).

* :class:`FakeSwitch`: an inbound ``mod_event_socket`` that answers commands
  with bytes captured from the real switch (01-inbound-auth-api, conn C) and
  can push captured event frames, drop connections, go silent, or "restart"
  (new Core-UUID).
* :func:`replay_outbound`: plays FreeSWITCH's side of an outbound-socket
  capture against our :class:`~telephony.esl.outbound.OutboundServer`, step by
  step: it checks each command we send against the captured one and answers
  with the captured chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fixtures_esl import CLIENT_TO_FS, FS_TO_CLIENT, load_records

from telephony.esl.frames import EVENT_PLAIN, FrameParser

CORE_UUID = "1eb1c0ea-78ab-474f-aaf4-23f62d687c12"
CORE_UUID_AFTER_RESTART = "ed5e41b2-be56-4be5-917b-f811a5893095"
AUTH_REQUEST = b"Content-Type: auth/request\n\n"
GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
UUID_RE = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def reply(text: str, *extra: tuple[str, str]) -> bytes:
    """A ``command/reply`` frame."""
    lines = ["Content-Type: command/reply", f"Reply-Text: {text}"]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\n".join(lines) + "\n\n").encode()


def api_response(body: bytes) -> bytes:
    """An ``api/response`` frame."""
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


def event_frame(text: bytes, ctype: str = EVENT_PLAIN) -> bytes:
    """Wrap an event serialisation in its outer frame."""
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(text), ctype.encode()) + text


async def read_command(reader: asyncio.StreamReader) -> bytes:
    """One client command: header block, plus a body if it has a content-length."""
    head = await reader.readuntil(b"\n\n")
    match = re.search(rb"(?im)^content-length: *(\d+)$", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return head + body


def command_steps(name: str, conn: str | None = None) -> list[tuple[bytes, list[bytes]]]:
    """``[(client command, [fs chunks that followed it])]`` of one captured connection.

    The first entry has command ``b""``: what FreeSWITCH sent before any command.
    """
    steps: list[tuple[bytes, list[bytes]]] = [(b"", [])]
    for rec in load_records(name):
        if rec.get("conn") != conn:
            continue
        if rec["dir"] == CLIENT_TO_FS:
            steps.append((rec["data"].encode(), []))
        elif rec["dir"] == FS_TO_CLIENT and rec["data"]:
            steps[-1][1].append(rec["data"].encode())
    return steps


def captured_replies(
    name: str = "01-inbound-auth-api.jsonl", conn: str = "C"
) -> dict[bytes, bytes]:
    """First captured answer to each distinct command (command without its ``\\n\\n``)."""
    table: dict[bytes, bytes] = {}
    for command, chunks in command_steps(name, conn):
        table.setdefault(command.rstrip(b"\n"), b"".join(chunks))
    return table


def captured_event_frames(name: str, conn: str | None = None) -> list[bytes]:
    """Raw bytes of every event frame FreeSWITCH sent on a captured connection."""
    stream = b"".join(c for _, chunks in command_steps(name, conn) for c in chunks)
    # Re-serialised exactly as sent: events are "Content-Length, Content-Type" + body.
    return [
        event_frame(frame.body, frame.content_type)
        for frame in FrameParser().feed(stream)
        if frame.content_type.startswith("text/event-")
    ]


@dataclass
class SwitchConnection:
    """Server side of one client connection to :class:`FakeSwitch`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    commands: list[bytes] = field(default_factory=list)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def abort(self) -> None:
        """Drop the TCP connection abruptly."""
        self.writer.transport.abort()


Handler = Callable[[SwitchConnection, bytes], Awaitable[bool | None]]


class FakeSwitch:
    """A scripted inbound event socket on 127.0.0.1 (random port).

    Default behaviour: ``auth/request`` on connect; ``auth ClueCon`` accepted,
    any other password rejected exactly like the capture (reply, disconnect
    notice and close in one chunk); ``api`` commands answered with the
    captured bytes (``global_getvar core_uuid`` with :attr:`core_uuid`);
    ``event``/``filter``/``nixevent``/``noevents``/``exit`` answered like the
    real switch; ``bgapi`` replied with the client's Job-UUID and followed by a
    BACKGROUND_JOB event after :attr:`job_delay` seconds. ``handlers`` run first
    and can take over any command (return True when handled).
    """

    def __init__(self) -> None:
        self.password = "ClueCon"
        self.core_uuid = CORE_UUID
        self.job_delay = 0.01
        self.job_results: dict[str, bytes] = {}
        self.silent = False  # accept commands but never answer (watchdog tests)
        self.handlers: list[Handler] = []
        self.connections: list[SwitchConnection] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._replies = captured_replies()
        self.connected = asyncio.Event()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """Close the listening socket (new connections are refused)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.stop_listening()
        for conn in self.connections:
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def last(self) -> SwitchConnection:
        return self.connections[-1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(SwitchConnection(reader, writer)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: SwitchConnection) -> None:
        self.connections.append(conn)
        self.connected.set()
        with contextlib.suppress(
            asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, OSError
        ):
            await conn.send(AUTH_REQUEST)
            while True:
                command = await read_command(conn.reader)
                conn.commands.append(command)
                if self.silent:
                    continue
                for handler in self.handlers:
                    if await handler(conn, command):
                        break
                else:
                    if await self._default(conn, command):
                        return
        conn.writer.close()

    async def _default(self, conn: SwitchConnection, command: bytes) -> bool:
        """Answer like FreeSWITCH; return True when the connection must end."""
        line = command.split(b"\n", 1)[0].decode()
        verb, _, arg = line.partition(" ")
        if verb == "auth":
            if arg == self.password:
                await conn.send(reply("+OK accepted"))
                return False
            await conn.send(
                reply("-ERR invalid")
                + b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
                + GOODBYE
            )
            conn.writer.close()
            return True
        if verb == "exit":
            await conn.send(
                reply("+OK bye")
                + b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
                + GOODBYE
            )
            conn.writer.close()
            return True
        if line == "api global_getvar core_uuid":
            await conn.send(api_response(self.core_uuid.encode()))
        elif verb == "event":
            await conn.send(reply(f"+OK event listener enabled {arg.split(' ', 1)[0]}"))
        elif verb == "noevents":
            await conn.send(reply("+OK no longer listening for events"))
        elif verb == "nixevent":
            await conn.send(reply("+OK events nixed"))
        elif verb == "filter":
            await conn.send(reply(f"+OK filter added. [{arg}]"))
        elif verb == "bgapi":
            await self._bgapi(conn, command, arg)
        elif verb == "sendmsg":
            await conn.send(reply("+OK"))
        elif line.encode() in self._replies and verb == "api":
            await conn.send(self._replies[line.encode()])
        elif verb == "api":
            name = arg.split(" ", 1)[0]
            await conn.send(api_response(f"-ERR {name} Command not found!\n".encode()))
        else:
            await conn.send(reply("-ERR command not found"))
        return False

    async def _bgapi(self, conn: SwitchConnection, command: bytes, arg: str) -> None:
        match = re.search(rb"\nJob-UUID: (" + UUID_RE + rb")", command)
        assert match, "the client always sends its own Job-UUID"
        job_uuid = match.group(1).decode()
        await conn.send(reply(f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid)))
        result = self.job_results.get(arg, b"+OK done\n")

        async def later() -> None:
            await asyncio.sleep(self.job_delay)
            with contextlib.suppress(ConnectionError, OSError):
                await conn.send(background_job(job_uuid, arg, result, self.core_uuid))

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def background_job(job_uuid: str, command: str, result: bytes, core_uuid: str = CORE_UUID) -> bytes:
    """A BACKGROUND_JOB event frame laid out like the captured ones."""
    cmd, _, cmd_arg = command.partition(" ")
    head = (
        "Event-Name: BACKGROUND_JOB\n"
        f"Core-UUID: {core_uuid}\n"
        "FreeSWITCH-Hostname: vm\n"
        "Event-Date-Timestamp: 1795633186442701\n"
        "Event-Sequence: 493\n"
        f"Job-UUID: {job_uuid}\n"
        f"Job-Command: {cmd}\n"
    )
    if cmd_arg:
        head += (
            "Job-Command-Arg: "
            + cmd_arg.replace("%", "%25").replace(" ", "%20").replace("&", "%26")
            + "\n"
        )
    text = head.encode() + b"Content-Length: %d\n\n" % len(result) + result
    return event_frame(text)


# -- outbound replay -------------------------------------------------------------


def _normalise(command: bytes) -> bytes:
    """Drop the Event-UUID line we add to sendmsg (the capture tool did not)."""
    return re.sub(rb"\nEvent-UUID: [^\n]*", b"", command)


def _app_uuid_pattern(app: bytes) -> re.Pattern[bytes]:
    """The Application-UUID of a run of ``app`` in a plain or JSON event."""
    name = re.escape(app)
    plain = (
        rb"\nApplication: " + name + rb"\n(?:Application-[A-Za-z]+: [^\n]*\n)*?Application-UUID: "
    )
    json = (
        rb'"Application":"'
        + name
        + rb'",(?:"Application-[A-Za-z]+":"[^"]*",)*?"Application-UUID":"'
    )
    return re.compile(rb"(?:" + plain + rb"|" + json + rb")(" + UUID_RE + rb")")


async def replay_outbound(
    port: int,
    name: str,
    *,
    read_timeout: float = 5.0,
    peer_closes: bool = False,
) -> list[bytes]:
    """Connect to our outbound server as FreeSWITCH did and replay capture ``name``.

    For each captured command, read ours, assert it equals the captured one
    (modulo our Event-UUID line), then send the captured answer chunks. When
    our sendmsg carries an Event-UUID, the captured Application-UUID of that
    application run is replaced by it in the rest of the capture (UUIDs have a
    fixed length, so Content-Length stays right), as the real switch does.
    With ``peer_closes`` (the capture ends with FreeSWITCH closing the
    socket) the fake closes after its last answer; otherwise it waits for us to
    close. Returns the commands received.
    """
    steps = command_steps(name)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received: list[bytes] = []
    try:
        for index, (expected, _) in enumerate(steps[1:], start=1):
            async with asyncio.timeout(read_timeout):
                ours = await read_command(reader)
            received.append(ours)
            assert _normalise(ours) == expected, (ours, expected)
            event_uuid = re.search(rb"\nEvent-UUID: (" + UUID_RE + rb")", ours)
            app = re.search(rb"\nexecute-app-name: ([^\n]*)", ours)
            if event_uuid and app:
                rest = b"".join(c for _, chunks in steps[index:] for c in chunks)
                found = _app_uuid_pattern(app.group(1)).search(rest)
                if found:
                    old, new = found.group(1), event_uuid.group(1)
                    for later_index in range(index, len(steps)):
                        cmd, chunks = steps[later_index]
                        steps[later_index] = (cmd, [c.replace(old, new) for c in chunks])
            for chunk in steps[index][1]:
                writer.write(chunk)
                await writer.drain()
        if peer_closes:
            return received
        # Wait for our side to close (linger -1: FreeSWITCH itself never closes).
        async with asyncio.timeout(read_timeout):
            while await reader.read(65536):
                pass
    finally:
        writer.close()
    return received
