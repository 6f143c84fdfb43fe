"""A fake FreeSWITCH inbound event socket that streams a paced firehose of real events.

Used by ``benchmarks/bench_esl_firehose.py`` (in a separate process) and by
``tests/telephony/test_esl_firehose_smoke.py`` (in a thread). Loopback only.

* :func:`build_pool` takes the ``text/event-plain`` events of the real
  FreeSWITCH 1.10.12 captures (``$CCP_SHARED_DIR/fixtures/freeswitch``) whose
  name is in the call/event mix (CHANNEL_*, CALL_*, PLAYBACK_*, DTMF, CODEC,
  RECORD_*, MEDIA_BUG_*, PRESENCE_IN, CUSTOM callcenter/sofia), in capture
  order, and turns each into a template in which ``Event-Date-Timestamp`` and
  ``Event-Sequence`` are filled in at send time. Optionally every channel event
  gets a few extra ``variable_*`` headers so that the average event reaches a
  target size (the real switch of the issue sent ~3.5 KB per event; the
  loopback/SIPp captures average less because their channels carry fewer
  variables). A JSON rendering of the same events is built as well (flat object,
  string values, ``Content-Length`` then ``_body`` last, like mod_event_socket).
* :func:`serve` is the switch: ``auth/request`` on connect, ``auth`` (``+OK
  accepted`` / ``-ERR invalid`` + disconnect notice), ``api global_getvar
  core_uuid``, ``event <fmt> <names...>`` (ALL, names, ``CUSTOM`` + subclasses:
  mod_event_socket's rules), ``noevents``, ``nixevent``, ``exit``; anything
  else gets ``-ERR command not found``. Once ``start`` is set it generates
  ``total`` events at ``rate`` per second, cycling through the pool: event *i*
  is *created* at ``t0 + i / rate`` (its ``Event-Date-Timestamp``, in µs) with
  ``Event-Sequence`` *i* + 1, and is sent, if the subscription wants it, at the
  first 1 ms tick at or after that time (several events per write, as
  FreeSWITCH does). A real HEARTBEAT is injected every 20 s of stream time (and
  first). After the last event it sends ``CUSTOM bench::end`` (always, whatever
  the subscription) whose ``Bench-Sent`` header is the number of events sent
  before it, then waits for ``exit``/EOF.

Timestamps are stamped with the *scheduled* creation time, so the receiver's
lag (receive time minus stamp) includes any time the server spent blocked in
``sendall`` because the client was not reading (TCP back-pressure: what fills
a real switch's listener queue).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import select
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests" / "telephony"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

CORE_UUID = "1eb1c0ea-78ab-474f-aaf4-23f62d687c12"
PASSWORD = "ClueCon"
END_SUBCLASS = "bench::end"
HEARTBEAT_PERIOD = 20.0  # seconds, as FreeSWITCH
TICK = 0.001

_AUTH_REQUEST = b"Content-Type: auth/request\n\n"
_GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

# Event names kept from the captures: a call's events as an all-events
# subscriber sees them (system noise such as MODULE_UNLOAD, API, RELOADXML,
# RE_SCHEDULE and the bgapi results is left out; HEARTBEAT is injected on its
# own 20 s period).
_MIX_PREFIXES = ("CHANNEL_", "CALL_", "PLAYBACK_", "RECORD_", "MEDIA_BUG_")
_MIX_NAMES = frozenset({"DTMF", "CODEC", "PRESENCE_IN"})
_MIX_SUBCLASSES = ("callcenter::", "sofia::")

_TS_RE = re.compile(rb"(?m)^Event-Date-Timestamp: (\d+)$")
_SEQ_RE = re.compile(rb"(?m)^Event-Sequence: (\d+)$")
_PAD_VALUE = "0123456789abcdef" * 5  # 80 chars, nothing to URL-encode


class _Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class Template:
    """One event with holes for the timestamp and the sequence number."""

    name: str
    subclass: str | None
    # Rendered bytes per format: (before ts, between ts and seq, after seq).
    parts: dict[str, tuple[bytes, bytes, bytes]] = field(default_factory=dict)

    def size(self, fmt: str) -> int:
        """Length of the event text (without the outer frame) with a 16-digit ts."""
        a, b, c = self.parts[fmt]
        return len(a) + len(b) + len(c) + 16 + 6


@dataclass
class Pool:
    """The event templates, cycled through in order, plus HEARTBEAT and the end marker."""

    events: list[Template]
    heartbeat: Template
    end_marker: Template

    def mean_size(self, fmt: str = "plain") -> float:
        return sum(t.size(fmt) for t in self.events) / len(self.events)

    def mix(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.events:
            key = f"CUSTOM {t.subclass}" if t.name == "CUSTOM" else t.name
            out[key] = out.get(key, 0) + 1
        return out


def _in_mix(name: str, subclass: str | None) -> bool:
    if name == "CUSTOM":
        return bool(subclass) and subclass.startswith(_MIX_SUBCLASSES)
    return name in _MIX_NAMES or name.startswith(_MIX_PREFIXES)


def _json_text(headers: list[tuple[str, str]], body: str) -> bytes:
    """FreeSWITCH's JSON serialisation: flat object, duplicate keys kept, body last."""
    items = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in headers]
    if body:
        items.append(f'"Content-Length":"{len(body.encode())}"')
        items.append(f'"_body":{json.dumps(body)}')
    return ("{" + ",".join(items) + "}").encode()


def _split(text: bytes, ts_mark: bytes, seq_mark: bytes) -> tuple[bytes, bytes, bytes]:
    a, rest = text.split(ts_mark, 1)
    b, c = rest.split(seq_mark, 1)
    return a, b, c


def _make_template(plain: bytes, pad_lines: int) -> Template:
    """Template from a captured plain event text (header block [+ body])."""
    from telephony.esl.events import parse_plain_event

    event = parse_plain_event(plain)
    ts = _TS_RE.search(plain)
    seq = _SEQ_RE.search(plain)
    assert ts and seq and ts.start() < seq.start(), "unexpected header order"
    pad = [(f"variable_bench_pad_{i:02d}", _PAD_VALUE) for i in range(pad_lines)]
    # plain: replace the two values, insert the padding after Event-Sequence.
    pad_text = b"".join(f"{k}: {v}\n".encode() for k, v in pad)
    a = plain[: ts.start(1)]
    b = plain[ts.end(1) : seq.start(1)]
    c = plain[seq.end(1) :]
    c = c[:1] + pad_text + c[1:]  # c starts with the "\n" ending the sequence line
    tpl = Template(event.name, event.subclass)
    tpl.parts["plain"] = (a, b, c)
    # json: same headers, padding after Event-Sequence.
    headers: list[tuple[str, str]] = []
    for k, v in event.headers:
        if k == "Event-Date-Timestamp":
            v = "@@BENCH_TS@@"
        elif k == "Event-Sequence":
            headers.append((k, "@@BENCH_SEQ@@"))
            headers.extend(pad)
            continue
        headers.append((k, v))
    tpl.parts["json"] = _split(_json_text(headers, event.body), b"@@BENCH_TS@@", b"@@BENCH_SEQ@@")
    return tpl


def _captured_plain_events() -> list[bytes]:
    """Every captured text/event-plain event text, in capture order."""
    from fixtures_esl import load_connections, transcript_names

    from telephony.esl.frames import EVENT_PLAIN, FrameParser

    out = []
    for name in transcript_names():
        for conn in load_connections(name).values():
            parser = FrameParser()
            for frame in parser.feed(conn.fs_stream):
                if frame.content_type == EVENT_PLAIN:
                    out.append(frame.body)
    return out


def build_pool(target_mean: int | None = 3500) -> Pool:
    """Templates of the captured call events; padded to ``target_mean`` bytes on average."""
    from telephony.esl.events import parse_plain_event

    mix: list[bytes] = []
    heartbeat = None
    for text in _captured_plain_events():
        event = parse_plain_event(text)
        if event.name == "HEARTBEAT" and heartbeat is None:
            heartbeat = text
        if _in_mix(event.name, event.subclass):
            mix.append(text)
    assert heartbeat is not None and mix
    base = [_make_template(t, 0) for t in mix]
    pads = [0] * len(mix)
    if target_mean:
        mean = sum(t.size("plain") for t in base) / len(base)
        deficit = (target_mean - mean) * len(base)
        line = len(f"variable_bench_pad_00: {_PAD_VALUE}\n")
        padded = [i for i, text in enumerate(mix) if b"\nvariable_" in text]
        if deficit > 0 and padded:
            per_event = deficit / line / len(padded)
            acc = 0.0
            for i in padded:  # spread the fractional part evenly
                acc += per_event
                pads[i] = int(acc)
                acc -= pads[i]
    events = [_make_template(t, n) if n else b for t, n, b in zip(mix, pads, base, strict=True)]
    end_text = (
        "Event-Name: CUSTOM\n"
        f"Core-UUID: {CORE_UUID}\n"
        "Event-Date-Timestamp: 0\n"
        "Event-Sequence: 0\n"
        "Event-Subclass: bench%3A%3Aend\n"
        "Bench-Sent: @@BENCH_SENT@@\n\n"
    ).encode()
    return Pool(events, _make_template(heartbeat, 0), _make_template(end_text, 0))


# -- the server ------------------------------------------------------------------------


@dataclass
class Subscription:
    """mod_event_socket's event mask: names, ALL, CUSTOM subclasses, format."""

    fmt: str = "plain"
    all: bool = False
    names: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)
    any_custom: bool = False

    def apply(self, tokens: list[str]) -> None:
        custom = False
        for tok in tokens:
            if custom:
                self.subclasses.add(tok)
            elif tok == "ALL":
                self.all = True
            elif tok == "CUSTOM":
                custom = True
                self.any_custom = True
            else:
                self.names.add(tok)

    def wants(self, t: Template) -> bool:
        if self.all:
            return True
        if t.name == "CUSTOM":
            return t.subclass in self.subclasses
        return t.name in self.names


def _frame(ctype: bytes, body: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n%s" % (len(body), ctype, body)


def _reply(text: str) -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode()


_CTYPES = {"plain": b"text/event-plain", "json": b"text/event-json"}


def _render(t: Template, fmt: str, ts_us: int, seq: int) -> bytes:
    a, b, c = t.parts[fmt]
    body = b"%s%d%s%d%s" % (a, ts_us, b, seq, c)
    return b"Content-Length: %d\nContent-Type: %s\n\n%s" % (len(body), _CTYPES[fmt], body)


class _Session:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""
        self.sub = Subscription()
        self.authed = False
        self.closed = False
        self.out: list[bytes] = []

    def poll(self, timeout: float) -> None:
        """Read and answer whatever commands arrived (waiting up to ``timeout``)."""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            return
        try:
            data = self.conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.buf += data
        while b"\n\n" in self.buf and not self.closed:
            block, self.buf = self.buf.split(b"\n\n", 1)
            self.command(block.decode("utf-8", "replace").strip("\n"))

    def command(self, text: str) -> None:
        line = text.split("\n", 1)[0].strip()
        words = line.split()
        verb = words[0] if words else ""
        if verb == "auth":
            if len(words) > 1 and words[1] == PASSWORD:
                self.authed = True
                self.out.append(_reply("+OK accepted"))
            else:
                self.out.append(_reply("-ERR invalid"))
                self.out.append(
                    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s"
                    % (len(_GOODBYE), _GOODBYE)
                )
                self.flush()
                self.closed = True
        elif not self.authed:
            self.out.append(_reply("-ERR command not found"))
        elif verb == "exit":
            self.out.append(_reply("+OK bye"))
            self.out.append(
                b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s"
                % (len(_GOODBYE), _GOODBYE)
            )
            self.flush()
            self.closed = True
        elif verb == "event" and len(words) >= 2:
            fmt = words[1] if words[1] in ("plain", "json", "xml") else "plain"
            names = words[2:] if words[1] in ("plain", "json", "xml") else words[1:]
            if fmt == "xml":
                self.out.append(_reply("-ERR xml not supported by this fake"))
                return
            self.sub.fmt = fmt
            self.sub.apply(names or ["ALL"])
            self.out.append(_reply(f"+OK event listener enabled {fmt}"))
        elif verb == "noevents":
            self.sub = Subscription(fmt=self.sub.fmt)
            self.out.append(_reply("+OK no longer listening for events"))
        elif verb == "nixevent":
            for name in words[1:]:
                self.sub.names.discard(name)
                self.sub.subclasses.discard(name)
                if name == "ALL":
                    self.sub.all = False
            self.out.append(_reply("+OK events nixed"))
        elif verb == "api" and words[1:] == ["global_getvar", "core_uuid"]:
            body = CORE_UUID.encode()
            self.out.append(
                b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(body), body)
            )
        elif verb == "api" and len(words) > 1:
            body = f"-ERR {words[1]} Command not found!\n".encode()
            self.out.append(
                b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(body), body)
            )
        else:
            self.out.append(_reply("-ERR command not found"))

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out = []
            try:
                self.conn.sendall(data)
            except OSError:
                self.closed = True


def serve(
    listener: socket.socket,
    pool: Pool,
    rate: float,
    total: int,
    start: _Flag,
    *,
    deadline: float = 120.0,
) -> dict[str, Any]:
    """Serve one client on ``listener`` (see the module docstring); return the server's figures.

    Everything stops by ``deadline`` seconds after the call, whatever the client does.
    """
    hard_stop = time.monotonic() + deadline
    cpu0 = resource.getrusage(resource.RUSAGE_THREAD if hasattr(resource, "RUSAGE_THREAD") else 0)
    listener.settimeout(max(0.1, deadline))
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.setblocking(True)
    session = _Session(conn)
    session.out.append(_AUTH_REQUEST)
    session.flush()
    stats: dict[str, Any] = {"generated": 0, "sent": 0, "bytes": 0, "max_behind_s": 0.0}
    # Handshake: answer commands until the driver says go.
    while not session.closed and not start.is_set() and time.monotonic() < hard_stop:
        session.poll(0.005)
        session.flush()
    events = pool.events
    n_pool = len(events)
    t0 = time.time()
    stats["t0"] = t0
    i = 0
    next_hb = t0  # first event of the stream is a HEARTBEAT, then every 20 s
    sent = 0
    nbytes = 0
    max_behind = 0.0
    heartbeats = 0
    max_backlog = 0
    while i < total and not session.closed and time.monotonic() < hard_stop:
        now = time.time()
        due = min(total, int((now - t0) * rate) + 1)
        if due > i:
            behind = now - (t0 + i / rate)
            if behind > max_behind:
                max_behind = behind
            if due - i > max_backlog:  # created but not yet written: the listener queue
                max_backlog = due - i
            sub = session.sub
            fmt = sub.fmt
            batch = []
            while i < due:
                sched = t0 + i / rate
                if sched >= next_hb:  # HEARTBEAT is an event of the stream too
                    t = pool.heartbeat
                    next_hb += HEARTBEAT_PERIOD
                else:
                    t = events[i % n_pool]
                if sub.wants(t):
                    batch.append(_render(t, fmt, int(sched * 1e6), i + 1))
                    if t is pool.heartbeat:
                        heartbeats += 1
                i += 1
            if batch:
                data = b"".join(batch)
                session.out.append(data)
                sent += len(batch)
                nbytes += len(data)
        session.flush()  # blocks while the client's receive window is full
        # Commands (and a short sleep until the next tick).
        wait = t0 + i / rate - time.time()
        session.poll(min(max(wait, 0.0), TICK) if i < total else 0)
    stats["generated"] = i
    stats["sent"] = sent
    stats["bytes"] = nbytes
    stats["max_behind_s"] = max_behind
    stats["heartbeats"] = heartbeats
    stats["max_backlog"] = max_backlog
    stats["stream_s"] = time.time() - t0
    if not session.closed:
        end = pool.end_marker
        a, b, c = end.parts["plain" if session.sub.fmt == "plain" else "json"]
        c = c.replace(b"@@BENCH_SENT@@", str(sent).encode())
        body = b"%s%d%s%d%s" % (a, int(time.time() * 1e6), b, total + 1, c)
        session.out.append(_frame(_CTYPES[session.sub.fmt], body))
        session.flush()
    while not session.closed and time.monotonic() < hard_stop:
        session.poll(0.05)
        session.flush()
    with contextlib.suppress(OSError):
        conn.close()
    cpu1 = resource.getrusage(resource.RUSAGE_THREAD if hasattr(resource, "RUSAGE_THREAD") else 0)
    stats["cpu_s"] = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return stats


def open_listener() -> socket.socket:
    """A listening socket on 127.0.0.1, port chosen by the OS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def end_marker_count(headers_get: Any) -> int | None:
    """``Bench-Sent`` of the end marker (``headers_get`` is a ``get(name)``)."""
    value = headers_get("Bench-Sent")
    return int(unquote(value)) if value is not None else None


def pin_to_cpu(cpu: int) -> None:
    """Best effort: run this process on one CPU (if the machine has it)."""
    try:
        if cpu in os.sched_getaffinity(0):
            os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
