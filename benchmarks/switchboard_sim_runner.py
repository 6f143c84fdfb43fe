"""The switch side of ``benchmarks/bench_switchboard.py``: one simulated node in its own process.

Started by the benchmark (never by hand, although it can be): it runs a
:class:`~telephony.simulator.SwitchNode` with agent phones and a Poisson caller stream at a fixed
rate, and records on the switch side, on one clock (``time.perf_counter`` of this process), when
it wrote every event to a connection and when every command arrived. The platform's process is
then measured on its own (CPU, RSS) and the latencies use one clock for both ends.

Protocol (JSON lines): this process prints ``{"event": "listening", "port": P}``; the parent
answers on stdin with ``{"outbound": PORT}`` (its outbound-socket server); once the platform
has subscribed on the inbound connection this prints ``{"event": "started"}`` and places calls
for ``--duration`` seconds, prints ``{"event": "arrivals_done"}``, waits until every channel is
gone (``{"event": "drained"}``), closes the node, writes the analysis to ``--result`` and prints
``{"event": "done"}``. It exits when its stdin closes (the parent went away).

Instrumentation (here, not in the simulator): ``_Session.write_event`` and the sessions'
``handle`` are wrapped to timestamp what goes out and what comes in. ``--indexed-fanout``
replaces the switch's "every listener sees every event" loop by a per-channel index (same
listeners get the same events in the same per-listener order; see :class:`IndexedListeners`):
the stock loop costs O(live calls) per event, which makes the simulator, not the platform, the
bottleneck at a few hundred concurrent calls.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import json
import os
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony.simulator import (  # noqa: E402
    Switch,
    SwitchNode,
    VirtualClock,
    wire,  # noqa: E402
)
from telephony.simulator import esl_server as es  # noqa: E402
from telephony.simulator.switch import SimEvent  # noqa: E402
from telephony.simulator.traffic import (  # noqa: E402
    FLAT_SHAPE,
    Caller,
    TenantProfile,
    TrafficGenerator,
    add_agents,
)

perf = time.perf_counter


# --------------------------------------------------------------------------- recording
class Recorder:
    """What went out (events) and came in (commands), stamped on this process's clock."""

    def __init__(self) -> None:
        #: (t, unique_id, application) of the EXECUTE_COMPLETE the platform waits for
        self.exec_complete: list[tuple[float, str, str]] = []
        #: call uuid -> t of the first CHANNEL_HANGUP written on any connection
        self.first_hangup: dict[str, float] = {}
        #: leg uuid -> t of CHANNEL_ANSWER written on the inbound connection
        self.answers: dict[str, float] = {}
        #: channels seen bridged (CHANNEL_BRIDGE on the inbound connection)
        self.bridged: set[str] = set()
        #: job uuid -> (t, body starts +OK) of BACKGROUND_JOB written on the inbound connection
        self.jobs: dict[str, tuple[float, bool]] = {}
        #: commands: (t, where, kind, call uuid, detail)
        self.commands: list[tuple[float, str, str, str, str]] = []
        #: agent originates: (t, call uuid, leg uuid, agent ext, job uuid)
        self.originates: list[tuple[float, str, str, str, str]] = []
        self.inbound_events_sent = 0
        self.inbound_by_name: dict[str, int] = defaultdict(int)
        #: socket (channel uuid) -> events written on its outbound socket
        self.outbound_sent: dict[str, int] = defaultdict(int)
        self.outbound_by_name: dict[str, int] = defaultdict(int)
        self.connects: list[tuple[float, str]] = []  # (t socket opened, uuid)
        self.socket_opened: dict[str, float] = {}


REC = Recorder()

#: Applications the switchboard runs with ``execute_wait`` (it acts when they complete).
#: Music on hold and wait announcements are ``playback`` too, but nothing waits for them.
WAITED_APPS = frozenset({"answer", "play_and_get_digits", "playback"})


def _unwaited(data: str) -> bool:
    return data.startswith("local_stream://") or data.startswith(
        ("say:Your estimated wait", "say:We are sorry for the delay")
    )


def _wrap_write_event() -> None:
    orig = es._Session.write_event

    def write_event(self: es._Session, event: SimEvent) -> None:
        if self.closed:
            return
        t = perf()
        name = event.name
        if isinstance(self, es.OutboundSession):
            REC.outbound_sent[self.ch.uuid] += 1
            REC.outbound_by_name[name] += 1
            if name == "CHANNEL_EXECUTE_COMPLETE":
                app = event.get("Application") or ""
                if app in WAITED_APPS and not _unwaited(event.get("Application-Data") or ""):
                    REC.exec_complete.append((t, event.unique_id or "", app))
            elif name == "CHANNEL_HANGUP":
                REC.first_hangup.setdefault(event.unique_id or "", t)
        else:
            REC.inbound_events_sent += 1
            REC.inbound_by_name[name] += 1
            if name == "BACKGROUND_JOB":
                REC.jobs[event.get("Job-UUID") or ""] = (t, (event.body or "").startswith("+OK"))
            elif name == "CHANNEL_HANGUP_COMPLETE" or name == "CHANNEL_HANGUP":
                REC.first_hangup.setdefault(event.unique_id or "", t)
            elif name == "CHANNEL_ANSWER":
                REC.answers.setdefault(event.unique_id or "", t)
            elif name == "CHANNEL_BRIDGE":
                for key in ("Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID"):
                    REC.bridged.add(event.get(key) or "")
        orig(self, event)

    es._Session.write_event = write_event  # type: ignore[method-assign]


def _var(dial: str, name: str) -> str:
    key = name + "="
    i = dial.find(key)
    if i < 0:
        return ""
    j = i + len(key)
    end = min((k for k in (dial.find(",", j), dial.find("}", j)) if k >= 0), default=len(dial))
    return dial[j:end]


def _wrap_handles() -> None:
    orig_out = es.OutboundSession.handle
    orig_in = es.InboundSession.handle

    async def handle_out(self: es.OutboundSession, line: str, headers: dict[str, str],
                         body: str) -> bytes | None:  # fmt: skip
        t = perf()
        command, _, arg = line.partition(" ")
        uuid = self.ch.uuid
        detail = ""
        if command == "sendmsg":
            low = {k.lower(): v for k, v in headers.items()}
            cmd = low.get("call-command", "")
            detail = cmd + ":" + low.get("execute-app-name", "")
        elif command == "api":
            detail = arg.split(" ", 1)[0]
        elif command == "connect":
            opened = REC.socket_opened.get(uuid)
            if opened is not None:
                REC.connects.append((t - opened, uuid))
        REC.commands.append((t, "out", command, uuid, detail))
        return await orig_out(self, line, headers, body)

    async def handle_in(self: es.InboundSession, line: str, headers: dict[str, str],
                        body: str) -> bytes | None:  # fmt: skip
        t = perf()
        command, _, arg = line.partition(" ")
        if command == "bgapi" and arg.startswith("originate "):
            call = _var(arg, "ccp_call")
            leg = _var(arg, "origination_uuid")
            role = _var(arg, "ccp_role")
            ext = ""
            if role == "agent":
                tail = arg.rsplit("}", 1)[-1].strip().split(" ", 1)[0]
                ext = tail.split("/", 1)[-1]
                REC.originates.append((t, call, leg, ext, headers.get("Job-UUID", "")))
            REC.commands.append((t, "in", "originate", call, headers.get("Job-UUID", "")))
        elif command == "api":
            words = arg.split()
            if words and words[0] in ("uuid_bridge", "uuid_kill", "uuid_break") and len(words) > 1:
                REC.commands.append((t, "in", words[0], words[1], " ".join(words[2:3])))
        return await orig_in(self, line, headers, body)

    es.OutboundSession.handle = handle_out  # type: ignore[method-assign]
    es.InboundSession.handle = handle_in  # type: ignore[method-assign]


def _wrap_connect(node: SwitchNode) -> None:
    orig = node._connect_socket

    async def connect(ch: Any, host: str, port: int, async_full: bool) -> None:
        t = perf()
        task = asyncio.ensure_future(orig(ch, host, port, async_full))
        await asyncio.sleep(0)
        REC.socket_opened.setdefault(ch.uuid, t)
        await task

    node.switch.socket_connector = connect


# --------------------------------------------------------------------------- fast url_encode
_ESCAPES = {
    chr(b): f"%{b:02X}" for b in range(128) if not (0x20 <= b <= 0x7E and b not in wire._URL_UNSAFE)
}
_UNSAFE_RE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")


def _escape(m: re.Match[str]) -> str:
    return _ESCAPES[m.group()]


@functools.lru_cache(maxsize=1 << 16)
def fast_url_encode(value: str, _slow: Any = wire.url_encode) -> str:
    """:func:`telephony.simulator.wire.url_encode`, same output, faster.

    The original escapes byte by byte in a generator (~60 % of the simulator's CPU at 30
    calls/s). Here ASCII values are escaped by one regex pass (most have nothing to escape)
    and results are cached: a channel's events repeat the same values over and over.
    Checked equal at start-up.
    """
    if value.isascii():
        return _UNSAFE_RE.sub(_escape, value)
    return _slow(value)


def _use_fast_url_encode() -> None:
    samples = ["", "abc", "a b:c%d+e", "".join(map(chr, range(160))), "Ünïcødé ☎ x"]
    samples += ["sofia/external/+380931234567@198.51.100.10", "{a=b,c='d e'}user/1001"]
    for v in samples:
        assert fast_url_encode(v) == wire.url_encode(v), v
    wire.url_encode = fast_url_encode  # serialize_plain / serialize_xml look it up at call time


# --------------------------------------------------------------------------- fan-out index
class IndexedListeners(set):  # type: ignore[type-arg]
    """``Switch.listeners`` with a per-channel index used by :meth:`IndexedSwitch.fire`.

    Channel-bound listeners (an outbound socket after ``myevents``, a :class:`Caller`) only
    ever accept events of their own channel (plus, for a caller, the CHANNEL_BRIDGE naming it),
    so they are looked up by Unique-ID instead of being asked one by one; every other
    listener (the inbound ESL connections) is asked as before. The set itself is unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.others: dict[int, Any] = {}
        self.callers: dict[int, Caller] = {}
        #: callers added before their channel exists (they ignore events until then)
        self.pending: list[Caller] = []

    def add(self, item: Any) -> None:
        super().add(item)
        if isinstance(item, Caller):
            self.callers[id(item)] = item
            self.pending.append(item)
        elif not (isinstance(item, es.OutboundSession) and _bound(item)):
            self.others[id(item)] = item

    def discard(self, item: Any) -> None:
        super().discard(item)
        self.others.pop(id(item), None)
        self.callers.pop(id(item), None)

    def remove(self, item: Any) -> None:
        if item not in self:
            raise KeyError(item)
        self.discard(item)

    def clear(self) -> None:
        super().clear()
        self.others.clear()
        self.callers.clear()
        self.pending.clear()


def _bound(session: es.OutboundSession) -> bool:
    return (
        session.uuid_filter == session.ch.uuid
        and not session.all_events
        and not session.subclasses
        and not session.filters
    )


class IndexedSwitch(Switch):
    """A :class:`Switch` whose ``fire`` uses :class:`IndexedListeners` (see module docstring)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.listeners = IndexedListeners()
        self._caller_by_uuid: dict[str, Caller] = {}

    def fire(self, event: SimEvent) -> None:
        ls: IndexedListeners = self.listeners  # type: ignore[assignment]
        uid = event.unique_id
        targets: list[Any] = list(ls.others.values())
        if uid is not None:
            ch = self.channels.get(uid)
            sess = getattr(ch, "socket_session", None) if ch is not None else None
            if sess is not None and sess in ls and id(sess) not in ls.others:
                targets.append(sess)
        if ls.callers:
            by_uuid = self._caller_by_uuid
            if ls.pending:  # a caller's channel is known once inbound_call returned
                still = []
                for c in ls.pending:
                    if c.ch is not None:
                        by_uuid[c.ch.uuid] = c
                    elif id(c) in ls.callers:
                        still.append(c)  # Caller.deliver ignores events until then
                ls.pending = still
            keys = {uid}
            if event.name == "CHANNEL_BRIDGE":
                keys |= {event.get("Bridge-A-Unique-ID"), event.get("Bridge-B-Unique-ID")}
            for key in keys:
                c = by_uuid.get(key) if key else None
                if c is not None and id(c) in ls.callers:
                    targets.append(c)
        for listener in targets:
            try:
                listener.deliver(event)
            except Exception:  # noqa: BLE001  # as Switch.fire
                import logging  # noqa: PLC0415

                logging.getLogger(__name__).exception("listener failed")
        if event.name == "CHANNEL_DESTROY" and uid is not None:
            self._caller_by_uuid.pop(uid, None)


# --------------------------------------------------------------------------- analysis
def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def analyse(args: argparse.Namespace, placed: list[str], outcomes: list[Any],
            samples: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    rec = REC
    wrap = args.wrap_up
    # Commands per call, in arrival order.
    cmds_by_call: dict[str, list[tuple[float, str, str, str]]] = defaultdict(list)
    leg_to_call: dict[str, str] = {}
    for _t, call, leg, _ext, _job in rec.originates:
        leg_to_call[leg] = call
    for t, where, kind, key, detail in rec.commands:
        call = leg_to_call.get(key, key)
        cmds_by_call[call].append((t, where, kind, detail))
    for lst in cmds_by_call.values():
        lst.sort()

    def next_cmd(call: str, after: float) -> tuple[float, str, str, str] | None:
        for c in cmds_by_call.get(call, ()):
            if c[0] >= after:
                return c
        return None

    lat: dict[str, list[float]] = defaultdict(list)
    # 1. execute_wait completions -> the next command about that call.
    queue_entry: dict[str, float] = {}
    for t, uid, app in rec.exec_complete:
        if app == "play_and_get_digits" and uid not in queue_entry:
            queue_entry[uid] = t  # every caller presses 1 at the menu: this ends the IVR
        c = next_cmd(uid, t)
        if c is not None:
            lat[f"EXECUTE_COMPLETE({app})"].append(c[0] - t)
    # 2. BACKGROUND_JOB of an agent originate -> uuid_bridge / uuid_kill of that leg.
    jobs_to_leg = {job: (call, leg) for _t, call, leg, _e, job in rec.originates}
    for job, (t, ok) in rec.jobs.items():
        owner = jobs_to_leg.get(job)
        if owner is None or not ok:
            continue
        call, leg = owner
        c = next_cmd(call, t)
        if c is not None:
            lat["BACKGROUND_JOB(originate +OK)"].append(c[0] - t)
    # 3. the caller's CHANNEL_HANGUP -> the socket's next command (exit).
    for call in placed:
        t = rec.first_hangup.get(call)
        if t is None:
            continue
        c = next_cmd(call, t)
        if c is not None:
            lat[f"CHANNEL_HANGUP -> {c[2]}"].append(c[0] - t)
    connect_lat = [d for d, _u in rec.connects]
    all_lat = [x for xs in lat.values() for x in xs]

    # Dispatch. Agent busy intervals on the switch side: originate -> leg end + wrap-up.
    first_orig: dict[str, float] = {}
    by_agent: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for t, call, leg, ext, _job in sorted(rec.originates):
        first_orig.setdefault(call, t)
        by_agent[ext].append((t, call, leg))
    call_end = {c: rec.first_hangup.get(c) for c in placed}

    def leg_end(call: str, leg: str) -> float | None:
        ends = [x for x in (rec.first_hangup.get(leg), rec.first_hangup.get(call)) if x]
        return min(ends) if ends else None

    starts: list[float] = []
    ends: list[float] = []
    for runs in by_agent.values():
        for t, call, leg in runs:
            end = leg_end(call, leg)
            starts.append(t)
            # Wrap-up only follows a call the agent took (a withdrawn offer frees at once).
            ends.append((end if end is not None else 1e18) + (wrap if leg in rec.bridged else 0.0))
    starts.sort()
    ends.sort()
    n_agents = args.agents

    def free_agents(at: float) -> int:
        """Agents not ringing, talking or in wrap-up at ``at`` (switch side)."""
        return n_agents - (bisect.bisect_right(starts, at) - bisect.bisect_right(ends, at))

    entries = sorted((t, c) for c, t in queue_entry.items())
    entry_times = [t for t, _c in entries]
    stops = sorted(
        min(x for x in (first_orig.get(c), call_end.get(c), 1e18) if x is not None)
        for _t, c in entries
    )

    def waiting(at: float) -> int:
        """Callers in the queue at ``at``: entered before, not yet offered, not gone."""
        return bisect.bisect_left(entry_times, at) - bisect.bisect_right(stops, at)

    free_offer: list[float] = []
    free_skipped = 0
    for t, c in entries:
        o = first_orig.get(c)
        if o is None:
            continue
        if free_agents(t) > waiting(t):
            free_offer.append(o - t)
        else:
            free_skipped += 1
    wrap_offer: list[float] = []
    for runs in by_agent.values():
        for (_t0, call0, leg0), (t1, _call1, _leg1) in zip(runs, runs[1:], strict=False):
            end = leg_end(call0, leg0)
            if end is None or leg0 not in rec.bridged:
                continue
            wrap_end = end + wrap
            # Callers waiting, at least one for every agent free then (this one included).
            w = waiting(wrap_end)
            if w > 0 and w >= free_agents(wrap_end):
                wrap_offer.append(t1 - wrap_end)

    bridged = sum(1 for o in outcomes if o.bridged_at is not None)
    abandoned = sum(1 for o in outcomes if o.abandoned)
    return {
        "placed": len(placed),
        "placed_uuids": placed,
        "bridged": bridged,
        "abandoned": abandoned,
        "latency": {k: v for k, v in lat.items()},
        "latency_all": all_lat,
        "connect": connect_lat,
        "dispatch_free": free_offer,
        "dispatch_free_skipped": free_skipped,
        "dispatch_wrap": wrap_offer,
        "inbound_events_sent": rec.inbound_events_sent,
        "inbound_by_name": dict(rec.inbound_by_name),
        "outbound_sent": dict(rec.outbound_sent),
        "outbound_by_name": dict(rec.outbound_by_name),
        "originates": len(rec.originates),
        **samples,
    }


# --------------------------------------------------------------------------- main
def _exit_on_eof() -> None:
    while sys.stdin.readline():
        pass
    os._exit(3)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def sampler(switch: Switch, out: dict[str, Any], stop: asyncio.Event) -> None:
    """Concurrency and this process's event-loop lag, every 0.5 s / 10 ms."""
    conc: list[tuple[float, int, int]] = []
    lag: list[float] = []
    t0 = perf()
    last_sample = 0.0
    while not stop.is_set():
        before = perf()
        await asyncio.sleep(0.01)
        now = perf()
        lag.append(max(0.0, now - before - 0.01))
        if now - last_sample >= 0.5:
            last_sample = now
            calls = sum(1 for ch in switch.channels.values() if ch.profile.direction == "inbound")
            conc.append((now - t0, calls, len(switch.channels)))
    out["concurrency"] = conc
    out["sim_loop_lag"] = lag


async def main_async(args: argparse.Namespace) -> None:
    _wrap_write_event()
    _wrap_handles()
    if os.environ.get("SIM_RUNNER_GC", "paced") == "paced":
        # The simulator stands in for FreeSWITCH (C: no collector pauses). Its own Python GC
        # pauses (0.2 s at times, the sim keeps every call's timings) would otherwise show up
        # as platform latency; SIM_RUNNER_GC=default keeps CPython's stock collector.
        from telephony.callflow.gcpacer import GcPacer  # noqa: PLC0415

        GcPacer().start()
    clock = VirtualClock(speed=1.0)
    if args.indexed_fanout:  # the load generator's two speed-ups go together
        _use_fast_url_encode()
    cls = IndexedSwitch if args.indexed_fanout else Switch
    switch = cls(clock=clock, seed=args.seed, hostname="node1")
    lo, hi = (float(x) for x in args.answer_delay.split(","))
    add_agents(switch, [str(1001 + i) for i in range(args.agents)], p_no_answer=0.0, p_busy=0.0,
               answer_delay=(lo, hi))  # fmt: skip
    add_agents(switch, ["2001"], p_no_answer=0.0, p_busy=0.0)
    dids: dict[str, list[str]] = defaultdict(list)
    for item in args.did:
        did, _, tenant = item.partition(":")
        switch.dids[did] = {"ccp_did": did, "ccp_tenant": tenant}
        dids[tenant].append(did)
    node = SwitchNode(switch, password="ClueCon", port=0)
    await node.start()
    _wrap_connect(node)
    emit({"event": "listening", "port": node.port})
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    switch.outbound = ("127.0.0.1", int(json.loads(line)["outbound"]))
    # The parent holds our stdin: when it goes away (EOF), so do we.
    threading.Thread(target=_exit_on_eof, daemon=True).start()
    async with asyncio.timeout(20):
        while not any(isinstance(s, es.InboundSession) and s.events for s in switch.listeners):
            await asyncio.sleep(0.05)
    per_tenant = args.cps * 3600.0 / max(1, len(dids))
    profiles = [
        TenantProfile(t, d, per_tenant, ivr_choices={"1": 1.0}, p_callback=0.0)
        for t, d in dids.items()
    ]
    gen = TrafficGenerator(switch, profiles, seed=args.seed + 1, shape=FLAT_SHAPE,
                           patience_mean=args.patience, talk_mean=args.talk,
                           talk_sigma=args.talk_sigma)  # fmt: skip
    samples: dict[str, Any] = {}
    stop = asyncio.Event()
    cpu0, wall0 = time.process_time(), perf()
    sampling = asyncio.ensure_future(sampler(switch, samples, stop))
    emit({"event": "started"})
    outcomes = await gen.run(args.duration)
    emit({"event": "arrivals_done", "placed": len(outcomes)})
    drained_at = None
    deadline = perf() + args.drain_timeout
    while perf() < deadline:
        if not switch.channels:
            drained_at = drained_at or perf()
            if perf() - drained_at > 1.0:
                break
        else:
            drained_at = None
        await asyncio.sleep(0.1)
    emit({"event": "drained"})
    stop.set()
    await sampling
    # No more events: stop the heartbeat, let the socket buffers drain, then count.
    if switch._heartbeat is not None:
        switch._heartbeat.cancel()
        switch._heartbeat = None
    for _ in range(50):
        pending = sum(
            s.writer.transport.get_write_buffer_size()
            for s in node.sessions
            if not s.closed and s.writer.transport is not None
        )
        if not pending:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    cpu = time.process_time() - cpu0
    wall = perf() - wall0
    samples.update(
        sim_cpu_s=cpu,
        sim_wall_s=wall,
        sim_maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        left_channels=len(switch.channels),
        left_details=[
            {
                "uuid": ch.uuid,
                "name": ch.name,
                "state": ch.state,
                "answer": ch.answer_state,
                "role": ch.variables.get("ccp_role", "caller"),
                "call": ch.variables.get("ccp_call", ch.uuid),
                "bridged": ch.bridged_to is not None,
                "age_s": (clock.now_us() - ch.created_us) / 1e6,
                "apps": [a for a, _d, _t in ch.app_log][-6:],
            }
            for ch in list(switch.channels.values())[:10]
        ],
    )
    placed = [o.uuid for o in outcomes if o.uuid]
    result = analyse(args, placed, outcomes, samples)
    Path(args.result).write_text(json.dumps(result))
    for s in list(node.sessions):
        with contextlib.suppress(Exception):
            await s.close()
    await node.stop()
    emit({"event": "done"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cps", type=float, required=True, help="new calls per second (all tenants)")
    p.add_argument("--duration", type=float, required=True, help="seconds of arrivals")
    p.add_argument("--did", action="append", default=[], help="DID:tenant (repeatable)")
    p.add_argument("--agents", type=int, required=True, help="agent phones 1001..")
    p.add_argument("--answer-delay", default="0.5,1.5", help="agent ring seconds lo,hi")
    p.add_argument("--talk", type=float, default=6.5, help="mean talk seconds (log-normal)")
    p.add_argument("--talk-sigma", type=float, default=0.5)
    p.add_argument("--patience", type=float, default=600.0, help="mean caller patience s")
    p.add_argument("--wrap-up", type=float, default=3.0, help="the queues' wrap_up_s (analysis)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument("--indexed-fanout", action="store_true")
    p.add_argument("--result", required=True, help="JSON file for the analysis")
    return p


def main() -> None:
    args = build_parser().parse_args()
    if os.environ.get("SIM_RUNNER_GC_FREEZE"):
        import gc  # noqa: PLC0415

        gc.freeze()
    prof_path = os.environ.get("SIM_RUNNER_PROFILE")
    if not prof_path:
        asyncio.run(main_async(args))
        return
    import cProfile  # noqa: PLC0415

    prof = cProfile.Profile(time.process_time)
    prof.enable()
    try:
        asyncio.run(main_async(args))
    finally:
        prof.disable()
        prof.dump_stats(prof_path)


if __name__ == "__main__":
    main()
