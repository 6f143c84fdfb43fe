"""Helpers for the switch-simulator tests: replay captured client commands, compare events.

The replay drives a :class:`~telephony.simulator.SwitchNode` with the exact
``client->fs`` bytes of a capture, at the captured times (scaled by the virtual
clock's speed), on as many connections as the capture had, and for outbound
socket captures plays the platform's side too. Channel UUIDs the client did not
choose (loopback b-legs, socket legs) differ between the capture and the
simulator, so commands are rewritten through a mapping keyed by channel name and
order of appearance.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fixtures_esl import CLIENT_TO_FS, FS_TO_CLIENT, load_records

from telephony.esl.events import Event, event_from_frame, is_event_frame
from telephony.esl.frames import Frame, FrameParser
from telephony.simulator import Switch, SwitchNode, VirtualClock

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ChannelKey = tuple[str, int]


def client_steps(name: str, conn: str | None = None) -> list[tuple[float, bytes]]:
    """``(t, bytes)`` of every client->fs record of one connection."""
    return [
        (rec["t"], rec["data"].encode("utf-8"))
        for rec in load_records(name)
        if rec["dir"] == CLIENT_TO_FS and rec.get("conn") == conn
    ]


def captured_stream(name: str, conn: str | None = None) -> bytes:
    """Everything FreeSWITCH sent on one connection of a capture."""
    return b"".join(
        rec["data"].encode("utf-8")
        for rec in load_records(name)
        if rec["dir"] == FS_TO_CLIENT and rec.get("conn") == conn and rec["data"]
    )


def parse_frames(stream: bytes) -> list[Frame]:
    """All complete frames of a stream (a truncated tail is ignored)."""
    return FrameParser().feed(stream)


def events_of(stream: bytes) -> list[Event]:
    """The events of a stream, in delivery order."""
    return [event_from_frame(f) for f in parse_frames(stream) if is_event_frame(f)]


def channel_keys(events: list[Event]) -> dict[str, ChannelKey]:
    """UUID -> (channel name, n-th channel of that name) in order of first appearance."""
    keys: dict[str, ChannelKey] = {}
    count: dict[str, int] = defaultdict(int)
    for ev in events:
        uid, cname = ev.unique_id, ev.get("Channel-Name")
        if ev.name == "CODEC" or not uid or not cname or uid in keys:
            continue
        keys[uid] = (cname, count[cname])
        count[cname] += 1
    return keys


def label(ev: Event) -> str:
    """An event's comparable name: state for CHANNEL_(CALL)STATE, app for EXECUTE."""
    if ev.name == "CHANNEL_STATE":
        return f"STATE:{ev.get('Channel-State')}"
    if ev.name == "CHANNEL_CALLSTATE":
        return f"CALLSTATE:{ev.get('Channel-Call-State')}"
    if ev.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        return f"{ev.name}:{ev.get('Application')}"
    return ev.name


#: Events the simulator does not model at all (documented in the decision record).
NOT_MODELLED = frozenset({"CODEC"})


def per_channel(events: list[Event]) -> dict[ChannelKey, list[Event]]:
    """Channel events grouped by channel key, in delivery order."""
    keys = channel_keys(events)
    out: dict[ChannelKey, list[Event]] = defaultdict(list)
    for ev in events:
        if ev.name in NOT_MODELLED or ev.unique_id not in keys:
            continue
        out[keys[ev.unique_id]].append(ev)
    return dict(out)


def header_names(ev: Event) -> frozenset[str]:
    """Header names without ``variable_*`` (their set depends on the call's history)."""
    return frozenset(n for n, _ in ev.headers if not n.startswith("variable_"))


@dataclass
class Replay:
    """Result of a replay: what the simulator sent on each replayed connection."""

    inbound: dict[tuple[str, str | None], bytes] = field(default_factory=dict)
    outbound: list[bytes] = field(default_factory=list)


class _Mapper:
    """Rewrites captured UUIDs in commands to the simulator's UUIDs."""

    def __init__(self, captured_streams: list[bytes]) -> None:
        self.captured: dict[str, ChannelKey] = {}
        for stream in captured_streams:
            for uid, key in channel_keys(events_of(stream)).items():
                self.captured.setdefault(uid, key)
        self.sim_streams: list[bytearray] = []

    def rewrite(self, data: bytes) -> bytes:
        sim: dict[ChannelKey, str] = {}
        for stream in self.sim_streams:
            for uid, key in channel_keys(events_of(bytes(stream))).items():
                sim.setdefault(key, uid)
            # An outbound socket's first message, the connect reply, names its channel.
            frames = parse_frames(bytes(stream))
            if frames and not frames[0].content_type.startswith("text/event"):
                uid, cname = frames[0].get("Unique-ID"), frames[0].get("Channel-Name")
                if uid and cname:
                    sim.setdefault((cname, 0), uid)
        known = set(sim.values())
        text = data.decode("utf-8")

        def sub(m: re.Match[str]) -> str:
            uid = m.group(0)
            key = self.captured.get(uid)
            if uid in known or key is None:
                return uid  # chosen by the client (origination_uuid): same in both
            return sim.get(key, uid)

        return UUID_RE.sub(sub, text).encode("utf-8")


async def _no_wait(t: float) -> None:
    return None


def _replies(sink: bytearray) -> int:
    """How many replies (command/reply, api/response) a stream holds so far."""
    return sink.count(b"Content-Type: command/reply") + sink.count(b"Content-Type: api/response")


async def _pump(reader: asyncio.StreamReader, sink: bytearray) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            sink.extend(data)


async def replay(
    node: SwitchNode,
    inbound: list[tuple[str, str | None]],
    *,
    outbound: list[str] | None = None,
    speed: float,
    tail: float = 2.0,
    trigger: Callable[[], Awaitable[None]] | None = None,
) -> Replay:
    """Replay captured connections against ``node`` at ``speed`` x real time.

    ``inbound``: ``(file, conn)`` of inbound ESL connections to replay (their
    commands are sent at the captured times). ``outbound``: captures of the
    platform's outbound-socket listener, one per connection the switch makes,
    in order; the switch's outbound target is pointed at a local listener that
    plays them. ``trigger`` runs alongside (e.g. an originate for captures whose
    control connection was not recorded). ``tail`` simulated seconds are
    waited after the last command.
    """
    outbound = outbound or []
    files = list(inbound) + [(f, None) for f in outbound]
    mapper = _Mapper([captured_stream(f, c) for f, c in files])
    steps = {(f, c): client_steps(f, c) for f, c in inbound}
    all_t = [s[0][0] for s in steps.values() if s]
    t0 = min(all_t) if all_t else 0.0
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = Replay()
    out_sinks = [bytearray() for _ in outbound]
    mapper.sim_streams.extend(out_sinks)
    accepted = 0

    async def at(t: float) -> None:
        delay = start + (t - t0) / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def run_conn(key: tuple[str, str | None], sink: bytearray) -> None:
        file_steps = steps[key]
        if file_steps:
            await at(file_steps[0][0])
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        pump = asyncio.ensure_future(_pump(reader, sink))
        final = file_steps[-1:] if file_steps and file_steps[-1][1] == b"exit\n\n" else []
        await _send_steps(file_steps[: len(file_steps) - len(final)], writer, sink, at)
        # Passive listeners (02-json/xml) have nothing to send but their final
        # ``exit``: it waits until every connection has sent everything else,
        # since a controller's blocking api calls make it lag the capture.
        sent_one()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(all_sent.wait(), 10.0)
        await asyncio.sleep(tail / speed + 0.2)
        await _send_steps(final, writer, sink, _no_wait)
        await asyncio.sleep(0.05)
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, 1.0)

    async def serve_outbound(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        index, accepted = accepted, accepted + 1
        if index >= len(outbound):
            writer.close()
            return
        out_sink = out_sinks[index]
        out_steps = client_steps(outbound[index])
        pump = asyncio.ensure_future(_pump(reader, out_sink))
        first = out_steps[0][0] if out_steps else 0.0
        begin = loop.time()

        async def at_out(t: float) -> None:
            delay = begin + (t - first) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

        await _send_steps(out_steps, writer, out_sink, at_out)
        sent_one()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, tail / speed + 1.0)
        writer.close()

    # Captured time of each sending connection's next command (causal order).
    pending: dict[object, float] = {}

    async def _send_steps(
        file_steps: list[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        sink: bytearray,
        wait_until: Callable[[float], Awaitable[None]],
    ) -> None:
        """Send each command at its captured time, but never before the previous
        command's reply plus half the captured gap: a blocking command (an
        ``api originate`` that rings for 3 s) must not make the next ones bunch up.

        Across connections the captured order is kept too (files of a scenario
        share one time origin): a command waits until every other connection
        has sent its commands captured before it (04: the control's
        ``uuid_send_dtmf`` must precede the socket's ``uuid_getvar``).
        """
        me = object()
        prev_t: float | None = None
        for i, (t, data) in enumerate(file_steps):
            pending[me] = t
            await wait_until(t)
            for _ in range(2000):  # at most ~2 s real, then go anyway
                if all(other is me or nt >= t for other, nt in pending.items()):
                    break
                await asyncio.sleep(0.001)
            if prev_t is not None:
                await asyncio.sleep(min((t - prev_t) / speed / 2, 1.0))
            await asyncio.sleep(0.002)  # let earlier events land first (mapping)
            before = _replies(sink)
            with contextlib.suppress(ConnectionError):
                writer.write(mapper.rewrite(data))
                await writer.drain()
            for _ in range(1000):  # wait for the reply (at most ~3 s real)
                if _replies(sink) > before or writer.is_closing():
                    break
                await asyncio.sleep(0.001 if _ < 100 else 0.01)
            prev_t = t
            pending[me] = file_steps[i + 1][0] if i + 1 < len(file_steps) else math.inf
        pending.pop(me, None)

    server = None
    if outbound:
        server = await asyncio.start_server(serve_outbound, "127.0.0.1", 0)
        node.switch.outbound = ("127.0.0.1", server.sockets[0].getsockname()[1])
    # Inbound connections and outbound sessions still to send their commands.
    senders_left = [len(steps) + len(outbound)]
    all_sent = asyncio.Event()

    def sent_one() -> None:
        senders_left[0] -= 1
        if senders_left[0] <= 0:
            all_sent.set()

    sinks = {key: bytearray() for key in steps}
    mapper.sim_streams.extend(sinks.values())
    try:
        jobs = [run_conn(key, sinks[key]) for key in steps]
        if trigger is not None:
            jobs.append(trigger())
        await asyncio.gather(*jobs)
        if outbound:
            await asyncio.sleep(tail / speed + 0.2)
    finally:
        if server is not None:
            server.close()
    result.inbound = {key: bytes(sink) for key, sink in sinks.items()}
    result.outbound = [bytes(sink) for sink in out_sinks]
    return result


async def start_node(speed: float = 100.0, seed: int = 1, **kwargs: object) -> SwitchNode:
    """A started node on an ephemeral 127.0.0.1 port (password ``ClueCon``)."""
    switch = Switch(clock=VirtualClock(speed=speed), seed=seed, **kwargs)  # type: ignore[arg-type]
    node = SwitchNode(switch, password="ClueCon")
    await node.start()
    return node


def _drop_leading_park(events: list[Event]) -> list[Event]:
    """Without the CHANNEL_PARK that precedes any CHANNEL_EXECUTE (an FS timing race)."""
    out, executed = [], False
    for ev in events:
        executed = executed or ev.name == "CHANNEL_EXECUTE"
        if ev.name == "CHANNEL_PARK" and not executed:
            continue
        out.append(ev)
    return out


def compare_channels(
    captured: bytes, simulated: bytes, *, outbound: bool = False
) -> tuple[dict[ChannelKey, tuple[list[str], list[str]]], list[str]]:
    """Compare per-channel event sequences and header-name sets.

    ``outbound``: the streams are outbound-socket sessions, where a CHANNEL_PARK
    before the first CHANNEL_EXECUTE depends on FreeSWITCH's own timing and is
    ignored on both sides. Returns ``(sequence mismatches {key: (captured,
    simulated)}, header problems)``.
    """
    cap, sim = per_channel(events_of(captured)), per_channel(events_of(simulated))
    if outbound:
        cap = {k: _drop_leading_park(v) for k, v in cap.items()}
        sim = {k: _drop_leading_park(v) for k, v in sim.items()}
    mismatches: dict[ChannelKey, tuple[list[str], list[str]]] = {}
    problems: list[str] = []
    for key in sorted(set(cap) | set(sim)):
        c_events, s_events = cap.get(key, []), sim.get(key, [])
        c_labels, s_labels = [label(e) for e in c_events], [label(e) for e in s_events]
        if c_labels != s_labels:
            mismatches[key] = (c_labels, s_labels)
            continue
        for c_ev, s_ev in zip(c_events, s_events, strict=True):
            missing = header_names(c_ev) - header_names(s_ev)
            extra = header_names(s_ev) - header_names(c_ev)
            if missing or extra:
                problems.append(
                    f"{key} {label(c_ev)}: missing {sorted(missing)} extra {sorted(extra)}"
                )
    return mismatches, problems
