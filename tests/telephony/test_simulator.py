"""The switch simulator driven by the project's own ESL library (telephony.esl).

Covers: auth, api, bgapi/BACKGROUND_JOB, events in three formats, a call's life
cycle with consistent billing variables, originate refusals and agent phones,
the outbound socket with a platform handler, HEARTBEAT on the virtual clock,
faults (drop, restart with a new Core-UUID, refused originates, slow answer,
delayed/reordered events), several nodes, determinism, traffic, wire format.
Everything is on 127.0.0.1 with a fast virtual clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sim_helpers import start_node

from telephony.esl import (
    AuthError,
    CommandError,
    ConnectionLost,
    Event,
    InboundClient,
    OutboundCall,
    OutboundServer,
    ReconnectingClient,
)
from telephony.esl.events import event_from_frame
from telephony.esl.frames import FrameParser
from telephony.simulator import AgentPhone, Switch, SwitchNode, VirtualClock
from telephony.simulator.__main__ import _extensions, build_parser
from telephony.simulator.cdr import CdrPoster, build_cdr
from telephony.simulator.model import CHANNEL_STATES
from telephony.simulator.traffic import (
    TenantProfile,
    TrafficGenerator,
    add_agents,
    load_day_shape,
)
from telephony.simulator.wire import event_message, url_encode

SPEED = 200.0
A_UUID = "aaaaaaaa-0000-4000-8000-000000000001"
CURVE = (
    Path(__file__).resolve().parents[3]
    / "shared/data/anonymous_bank_1999_6min/callcenter_1999_6min.csv"
)


@pytest.fixture
async def node() -> AsyncIterator[SwitchNode]:
    n = await start_node(speed=SPEED, seed=11)
    try:
        yield n
    finally:
        await n.stop()


@pytest.fixture
async def esl(node: SwitchNode) -> AsyncIterator[InboundClient]:
    client = InboundClient("127.0.0.1", node.port, "ClueCon", command_timeout=5.0)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


async def collect_until(client: InboundClient, predicate, timeout: float = 5.0) -> list[Event]:  # type: ignore[no-untyped-def]
    """Events from ``client.events`` up to and including the first matching ``predicate``."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        while True:
            ev = await client.events.get()
            out.append(ev)
            if predicate(ev):
                return out


# -- inbound basics --------------------------------------------------------------------
async def test_auth_and_core_uuid(node: SwitchNode, esl: InboundClient) -> None:
    assert esl.core_uuid == node.switch.core_uuid
    bad = InboundClient("127.0.0.1", node.port, "wrong")
    with pytest.raises(AuthError):
        await bad.connect()
    await bad.close()


async def test_api_commands(esl: InboundClient) -> None:
    assert (await esl.api("version")) == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    status = await esl.api("status")
    assert "FreeSWITCH (Version 1.10.12-release  64bit) is ready" in status
    assert await esl.api("hostname") == "vm"
    assert await esl.api("show channels as json") == '{"row_count": 0}\n'
    assert await esl.api("show channels") == "\n0 total.\n"
    assert await esl.api("show channels count") == "\n0 total.\n"
    assert (await esl.api("uptime")).rstrip("\n").isdigit()
    assert await esl.api("uuid_exists " + A_UUID) == "false"
    with pytest.raises(CommandError, match="No such channel"):
        await esl.api(f"uuid_kill {A_UUID}")
    with pytest.raises(CommandError, match="Command not found"):
        await esl.api("nosuchapi arg1")
    with pytest.raises(CommandError, match="command not found"):
        await esl.command("foobar")


async def test_bgapi_background_job(esl: InboundClient) -> None:
    job = await esl.bgapi("version")
    assert (await job.result(5)).startswith("FreeSWITCH Version")
    job = await esl.bgapi("originate bogus/endpoint &park()")
    with pytest.raises(CommandError, match="CHAN_NOT_IMPLEMENTED"):
        await job.result(5)
    assert job.event is not None and job.event.get("Job-Command") == "originate"


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
async def test_event_formats_round_trip(node: SwitchNode, fmt: str) -> None:
    client = InboundClient("127.0.0.1", node.port, "ClueCon")
    await client.connect()
    try:
        await client.subscribe("CHANNEL_CREATE", fmt=fmt)
        await client.api(
            "originate {origination_caller_id_name='Tést & Co'}loopback/ans/esltest &park()"
        )
        ev = await client.events.get(5)
        assert ev.name == "CHANNEL_CREATE"
        assert ev.variables["origination_caller_id_name"] == "Tést & Co"
        assert ev.core_uuid == node.switch.core_uuid
    finally:
        await client.disconnect()


# -- a call's life cycle ------------------------------------------------------------------
async def test_call_life_cycle_and_billing(node: SwitchNode, esl: InboundClient) -> None:
    await esl.subscribe("ALL")
    out = await esl.api(
        f"originate {{origination_uuid={A_UUID},origination_caller_id_number=5551000}}"
        "loopback/ans/esltest &park()"
    )
    assert out == f"+OK {A_UUID}\n"
    assert await esl.api(f"uuid_setvar_multi {A_UUID} a=1;b=two words") == "+OK\n"
    assert await esl.api(f"uuid_getvar {A_UUID} b") == "two words"
    assert await esl.api(f"uuid_getvar {A_UUID} nope") == "_undef_"
    assert "Unique-ID: " + A_UUID in await esl.api(f"uuid_dump {A_UUID}")
    assert (await esl.api(f"uuid_broadcast {A_UUID} tone_stream://%(1000,0,440) aleg")).startswith(
        "+OK"
    )
    await collect_until(esl, lambda e: e.name == "PLAYBACK_STOP")
    for action in ("start", "mask", "unmask", "stop"):
        assert await esl.api(f"uuid_record {A_UUID} {action} /tmp/x.wav") == "+OK Success\n"
    assert await esl.api(f"uuid_hold {A_UUID}") == "+OK Success\n"
    assert (await esl.api(f"uuid_send_dtmf {A_UUID} 12#")).startswith(f"+OK {A_UUID} sent DTMF")
    rows = await esl.api("show calls as json")
    assert '"row_count":2' in rows
    await node.switch.clock.sleep(30)  # thirty simulated seconds of talk
    assert await esl.api(f"uuid_kill {A_UUID}") == "+OK\n"
    events = await collect_until(
        esl, lambda e: e.name == "CHANNEL_DESTROY" and e.unique_id == A_UUID
    )
    names = [e.name for e in events]
    for name in ("RECORD_START", "RECORD_STOP", "CHANNEL_HOLD", "DTMF", "CHANNEL_HANGUP_COMPLETE"):
        assert name in names
    hc = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == A_UUID)
    v = hc.variables
    assert hc.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
    assert int(v["billsec"]) == int(v["end_epoch"]) - int(v["answer_epoch"])
    assert int(v["duration"]) == int(v["end_epoch"]) - int(v["start_epoch"])
    assert int(v["answersec"]) == int(v["answer_epoch"]) - int(v["start_epoch"])
    assert int(v["billusec"]) == int(v["end_uepoch"]) - int(v["answer_uepoch"])
    assert int(v["billsec"]) >= 29
    assert v["hangup_cause_q850"] == "16"
    for key in ("progresssec", "waitsec", "mduration", "billmsec", "flow_billsec", "start_stamp"):
        assert key in v
    assert await esl.api("show channels as json") == '{"row_count": 0}\n'


async def test_originate_refusals_and_agent_phones(node: SwitchNode, esl: InboundClient) -> None:
    sw = node.switch
    with pytest.raises(CommandError, match="USER_NOT_REGISTERED"):
        await esl.api("originate user/1000 &park()")
    with pytest.raises(CommandError, match="USER_BUSY"):
        await esl.api("originate loopback/busy/esltest &park()")
    with pytest.raises(CommandError, match="NO_ANSWER"):
        await esl.api("originate {originate_timeout=3}loopback/ring/esltest &park()")
    with pytest.raises(CommandError, match="DESTINATION_OUT_OF_ORDER"):
        await esl.api(
            "originate {origination_caller_id_name=Two Words}loopback/ans/esltest &park()"
        )
    sw.agents["1001"] = AgentPhone("1001", answer_delay=(2.0, 2.0))
    sw.agents["1002"] = AgentPhone("1002", p_busy=1.0)
    sw.agents["1003"] = AgentPhone("1003", p_no_answer=1.0)
    ok = await esl.api("originate user/1001 &park()")
    assert ok.startswith("+OK ")
    with pytest.raises(CommandError, match="USER_BUSY"):
        await esl.api("originate user/1002 &park()")
    with pytest.raises(CommandError, match="NO_ANSWER"):
        await esl.api("originate {originate_timeout=10}user/1003 &park()")
    assert await esl.api("sim_fault refuse_originate NORMAL_TEMPORARY_FAILURE") == "+OK\n"
    with pytest.raises(CommandError, match="NORMAL_TEMPORARY_FAILURE"):
        await esl.api("originate user/1001 &park()")
    await esl.api("sim_fault clear")


async def test_slow_answer_fault(node: SwitchNode, esl: InboundClient) -> None:
    await esl.api("sim_fault slow_answer 10")
    clock = node.switch.clock
    before = clock.now()
    await esl.api("originate loopback/ans/esltest &park()")
    assert clock.now() - before >= 10


# -- outbound socket with a platform handler -------------------------------------------------
async def test_inbound_did_call_through_outbound_socket(
    node: SwitchNode, esl: InboundClient
) -> None:
    sw = node.switch
    sw.dids["380441234567"] = {"ccp_tenant": "alpha"}
    sw.agents["1001"] = AgentPhone("1001", answer_delay=(1.0, 1.0))
    seen: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    async def platform(call: OutboundCall) -> None:
        await seen.put(("vars", call.variables))
        await call.myevents()
        await call.linger()
        await call.execute_wait("answer", timeout=5)
        done = await call.execute_wait(
            "play_and_get_digits",
            "1 1 2 5000 # tone_stream://%(300,0,500) silence_stream://1 menu \\d",
            timeout=5,
        )
        await seen.put(("menu", await call.getvar("menu")))
        assert done.name == "CHANNEL_EXECUTE_COMPLETE"
        await call.execute("bridge", "user/1001")
        bridge = await call.wait_for_event(lambda e: e.name == "CHANNEL_BRIDGE", timeout=5)
        await seen.put(("bridge", bridge.get("Bridge-B-Unique-ID")))
        await call.hangup.wait()

    server = OutboundServer(platform, "127.0.0.1", 0)
    await server.start()
    sw.outbound = ("127.0.0.1", server.port)
    try:
        await esl.subscribe("CHANNEL_HANGUP_COMPLETE")
        caller = sw.inbound_call("380441234567", "+380501112233")
        kind, variables = await asyncio.wait_for(seen.get(), 5)
        assert kind == "vars" and variables["ccp_tenant"] == "alpha"  # type: ignore[index]
        while caller.current_app != "play_and_get_digits":
            await asyncio.sleep(0.005)
        await sw.clock.sleep(1)
        sw.receive_dtmf(caller, "2")
        assert await asyncio.wait_for(seen.get(), 5) == ("menu", "2")
        kind, agent_uuid = await asyncio.wait_for(seen.get(), 5)
        assert kind == "bridge" and agent_uuid in sw.channels
        assert sw.channels[agent_uuid].name.startswith("sofia/internal/1001@")
        await sw.clock.sleep(5)
        sw.hangup(caller, "NORMAL_CLEARING")
        ends = await collect_until(esl, lambda e: e.unique_id == agent_uuid)
        assert {e.unique_id for e in ends} >= {caller.uuid, agent_uuid}
    finally:
        await server.stop()


# -- heartbeat and the virtual clock ----------------------------------------------------------
async def test_heartbeat_every_20_virtual_seconds(node: SwitchNode, esl: InboundClient) -> None:
    await esl.subscribe("HEARTBEAT")
    first = await esl.events.get(5)
    second = await esl.events.get(5)
    assert first.name == second.name == "HEARTBEAT"
    gap = (second.timestamp or 0) - (first.timestamp or 0)
    assert 18_000_000 <= gap <= 24_000_000  # 20 s; loop jitter x speed on a busy host
    assert second.get("FreeSWITCH-Version") == "1.10.12-release~64bit"


# -- faults -------------------------------------------------------------------------------------
async def test_drop_connection_fault(node: SwitchNode, esl: InboundClient) -> None:
    await esl.api("sim_fault drop")
    reason = await asyncio.wait_for(esl.wait_closed(), 5)
    assert isinstance(reason, ConnectionLost | ConnectionError | Exception)
    again = InboundClient("127.0.0.1", node.port, "ClueCon")
    await again.connect()
    assert again.core_uuid == node.switch.core_uuid  # same process: same Core-UUID
    await again.disconnect()


async def test_restart_changes_core_uuid_and_kills_calls(node: SwitchNode) -> None:
    sup = ReconnectingClient(
        "127.0.0.1", node.port, "ClueCon", events=["CHANNEL_HANGUP_COMPLETE"],
        backoff_initial=0.02, backoff_max=0.05,
    )  # fmt: skip
    await sup.start(timeout=5)
    try:
        old = sup.core_uuid
        out = await sup.api(f"originate {{origination_uuid={A_UUID}}}loopback/ans/esltest &park()")
        assert out.startswith("+OK")
        await sup.api("sim_fault restart 2")
        hangups = []
        async with asyncio.timeout(5):
            while len(hangups) < 2:
                ev = await sup.events.get()
                hangups.append(ev)
        assert {e.get("Hangup-Cause") for e in hangups} == {"SYSTEM_SHUTDOWN"}
        async with asyncio.timeout(5):
            while sup.restarts < 1:
                await asyncio.sleep(0.01)
        await sup.wait_connected(5)
        assert sup.core_uuid == node.switch.core_uuid != old
        assert await sup.api(f"uuid_exists {A_UUID}") == "false"
        assert await sup.api("show channels as json") == '{"row_count": 0}\n'
    finally:
        await sup.stop()


async def test_event_delay_and_reorder_keep_per_channel_order(node: SwitchNode) -> None:
    sw = node.switch
    client = InboundClient("127.0.0.1", node.port, "ClueCon")
    await client.connect()
    try:
        await client.subscribe("ALL")
        sw.set_fault("reorder", True)
        await client.api("originate loopback/ans/esltest &park()")
        await client.api("originate loopback/ans/esltest &park()")
        await asyncio.sleep(0.05)
        events = []
        while len(client.events):
            events.append(client.events.get_nowait())
        by_channel: dict[str, list[int]] = {}
        for ev in events:
            if ev.unique_id:
                by_channel.setdefault(ev.unique_id, []).append(ev.sequence or 0)
        assert len(by_channel) == 4
        for seqs in by_channel.values():
            assert seqs == sorted(seqs)  # each channel's own order is kept
        all_seqs = [ev.sequence or 0 for ev in events]
        assert all_seqs != sorted(all_seqs)  # ...but the interleaving changed
        sw.set_fault("reorder", False)
        sw.set_fault("event_delay", 5.0)  # 5 simulated seconds = 25 ms here
        loop = asyncio.get_running_loop()
        start = loop.time()
        await client.api("originate loopback/ans/esltest &park()")
        ev = await client.events.get(5)
        assert ev.unique_id and loop.time() - start >= 0.02
    finally:
        await client.disconnect()


async def test_several_nodes_have_their_own_core_uuid() -> None:
    clock = VirtualClock(speed=SPEED)
    nodes = [SwitchNode(Switch(clock=clock, seed=i)) for i in range(3)]
    for n in nodes:
        await n.start()
    try:
        uuids = set()
        for n in nodes:
            client = InboundClient("127.0.0.1", n.port, "ClueCon")
            await client.connect()
            uuids.add(await client.api("global_getvar core_uuid"))
            await client.disconnect()
        assert len(uuids) == 3
    finally:
        for n in nodes:
            await n.stop()


# -- determinism ---------------------------------------------------------------------------------
async def _scripted_run(seed: int) -> list[tuple[str, str | None, str | None]]:
    node = await start_node(speed=SPEED, seed=seed)
    client = InboundClient("127.0.0.1", node.port, "ClueCon")
    await client.connect()
    try:
        await client.subscribe("ALL")
        out = await client.api("originate loopback/ans/esltest &park()")
        uuid = out.split()[1]
        await client.api(f"uuid_kill {uuid} USER_BUSY")
        events = await collect_until(
            client, lambda e: e.name == "CHANNEL_DESTROY" and e.unique_id == uuid
        )
        return [(e.name, e.unique_id, e.get("Channel-State")) for e in events if e.unique_id]
    finally:
        await client.disconnect()
        await node.stop()


async def test_same_seed_same_uuids_and_events() -> None:
    a, b, c = await _scripted_run(5), await _scripted_run(5), await _scripted_run(6)
    assert a == b
    assert [x[0] for x in a] == [x[0] for x in c] and a != c


def test_traffic_plan_is_deterministic_and_shaped() -> None:
    profiles = [TenantProfile("alpha", ["380441"], 600.0), TenantProfile("beta", ["380442"], 300.0)]
    sw = Switch(seed=1)
    plan1 = TrafficGenerator(sw, profiles, seed=3).plan(3600)
    plan2 = TrafficGenerator(Switch(seed=1), profiles, seed=3).plan(3600)
    plan3 = TrafficGenerator(Switch(seed=1), profiles, seed=4).plan(3600)
    assert plan1 == plan2 != plan3
    assert 700 < len(plan1) < 1100  # ~900 calls in an hour at a flat shape
    patience = sum(p.patience for p in plan1) / len(plan1)
    talk = sum(p.talk_time for p in plan1) / len(plan1)
    assert 300 < patience < 420 and 150 < talk < 210
    assert any(p.wants_callback for p in plan1)
    assert sw.dids["380441"]["ccp_tenant"] == "alpha"


@pytest.mark.skipif(not CURVE.exists(), reason="bank curve missing")
def test_bank_curve_shapes_arrivals() -> None:
    shape = load_day_shape(CURVE)
    assert len(shape) == 240 and max(shape) == 1.0
    assert shape[30] < 0.2 < shape[110]  # 03:00 is quiet, 11:00 is busy
    profiles = [TenantProfile("alpha", ["1"], 600.0)]
    night = TrafficGenerator(Switch(), profiles, seed=1, shape=shape, start_hour=2).plan(3600)
    day = TrafficGenerator(Switch(), profiles, seed=1, shape=shape, start_hour=11).plan(3600)
    assert len(night) * 4 < len(day)


async def test_traffic_callers_abandon_choose_and_talk(node: SwitchNode) -> None:
    """Callers against a tiny platform: IVR digit, then the agent queue, then talk or abandon."""
    sw = node.switch
    add_agents(sw, ["2001", "2002"], p_no_answer=0.0, p_busy=0.0, answer_delay=(1.0, 2.0))
    free = asyncio.Queue[str]()
    for ext in ("2001", "2002"):
        free.put_nowait(ext)

    async def platform(call: OutboundCall) -> None:
        await call.myevents()
        await call.execute_wait("answer", timeout=10)
        await call.execute_wait(
            "play_and_get_digits",
            "1 1 1 4000 # tone_stream://%(500,0,500) silence_stream://1 choice \\d",
            timeout=10,
        )
        await call.execute("set", "ccp_announced_wait_sec=30")
        ext = await free.get()
        try:
            await call.execute("bridge", f"user/{ext}")
            await call.hangup.wait()
        finally:
            free.put_nowait(ext)

    server = OutboundServer(platform, "127.0.0.1", 0)
    await server.start()
    sw.outbound = ("127.0.0.1", server.port)
    try:
        profile = TenantProfile("alpha", ["380440000001"], 120.0, p_callback=0.0)
        gen = TrafficGenerator(sw, [profile], seed=9, patience_mean=120.0, talk_mean=60.0)
        outcomes = await gen.run(600)
        async with asyncio.timeout(15):
            while any(o.ended_at is None for o in outcomes):
                await asyncio.sleep(0.02)
        assert outcomes
        assert all(o.digits_sent for o in outcomes if o.bridged_at is not None)
        assert any(o.bridged_at is not None for o in outcomes)
        assert all(o.hangup_cause for o in outcomes)
        plan_digits = {o.plan.index: o.plan.choices[0] for o in outcomes}
        assert all(
            o.digits_sent[:1] == plan_digits[o.plan.index] for o in outcomes if o.digits_sent
        )
    finally:
        await server.stop()


# -- wire format -----------------------------------------------------------------------------------
def test_url_encode_matches_freeswitch() -> None:
    assert url_encode("tone_stream://%(1000,0,440)") == "tone_stream%3A//%25(1000,0,440)"
    assert url_encode("#") == "%23"
    assert url_encode("fd00::2") == "fd00%3A%3A2"
    assert (
        url_encode("Wed, 25 Nov 2026 19:01:10 GMT") == "Wed,%2025%20Nov%202026%2019%3A01%3A10%20GMT"
    )
    assert url_encode("{a=b}x &park()") == "%7Ba%3Db%7Dx%20%26park()"
    assert url_encode("'Test Caller'") == "'Test%20Caller'"
    assert url_encode("ü") == "%C3%BC"


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_event_serialisations_parse_back_equal(fmt: str) -> None:
    headers = [("Event-Name", "BACKGROUND_JOB"), ("Core-UUID", A_UUID), ("Event-Date-Timestamp", "1"),
               ("Event-Sequence", "7"), ("Job-Command-Arg", "{a='b c'}loopback/x &park()")]  # fmt: skip
    body = "+OK done\n"
    frames = FrameParser().feed(event_message(fmt, headers, body))
    event = event_from_frame(frames[0])
    assert list(event.headers) == headers
    assert event.body == body


def test_channel_state_numbers() -> None:
    assert CHANNEL_STATES.index("CS_EXECUTE") == 4
    assert CHANNEL_STATES.index("CS_REPORTING") == 11


def test_cli_parser() -> None:
    args = build_parser().parse_args(
        [
            "--esl-port",
            "18021",
            "--outbound",
            "127.0.0.1:18084",
            "--seed",
            "3",
            "--did",
            "380441:alpha",
        ]
    )
    assert args.outbound == ("127.0.0.1", 18084) and args.seed == 3
    assert _extensions("1001-1003,2001") == ["1001", "1002", "1003", "2001"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--outbound", "10.0.0.1:8084"])


# -- CDR posting (mod_json_cdr) --------------------------------------------------------------------
async def test_cdr_posts_and_error_log_fallback(node: SwitchNode, tmp_path: Path) -> None:
    requests: list[bytes] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        requests.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    poster = CdrPoster(f"http://127.0.0.1:{port}/cdr", tmp_path)
    poster.attach(node.switch)
    client = InboundClient("127.0.0.1", node.port, "ClueCon")
    await client.connect()
    try:
        out = await client.api(
            "originate {origination_caller_id_name='CDR Test',esltest_cdr_tag='a&b=c d'}"
            "loopback/ans/esltest &park()"
        )
        await client.api(f"uuid_kill {out.split()[1]}")
        await poster.drain()
        assert poster.posted == 2 and len(requests) == 2
        head, _, body = requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("POST /cdr?uuid=") and lines[0].endswith(" HTTP/1.1")
        assert [ln.split(":")[0] for ln in lines[1:]] == [
            "Host", "User-Agent", "Accept", "Content-Length", "Content-Type",
        ]  # fmt: skip
        assert "Content-Type: application/x-www-form-urlencoded" in lines
        doc = json.loads(body)
        assert list(doc) == ["core-uuid", "switchname", "channel_data", "callStats",
                             "variables", "app_log", "callflow"]  # fmt: skip
        assert doc["core-uuid"] == node.switch.core_uuid
        assert doc["variables"]["start_stamp"].count("%20") == 1  # encode-values=true
        # The sink goes away: both legs land in the error-log folder, once each.
        server.close()
        await server.wait_closed()
        out = await client.api("originate loopback/ans/esltest &park()")
        await client.api(f"uuid_kill {out.split()[1]} USER_BUSY")
        await poster.drain()
        files = sorted(p.name for p in tmp_path.glob("*.cdr.json"))
        assert len(files) == 2 and poster.written == 2
        assert (
            json.loads((tmp_path / files[0]).read_text())["variables"]["hangup_cause"]
            == "USER_BUSY"
        )
        # Disk full: the backup cannot be written either; the loss is counted.
        assert await client.api("sim_fault disk_full on") == "+OK\n"
        out = await client.api("originate loopback/ans/esltest &park()")
        await client.api(f"uuid_kill {out.split()[1]}")
        await poster.drain()
        assert poster.lost == 2 and len(list(tmp_path.glob("*.cdr.json"))) == 2
    finally:
        await client.disconnect()


def test_cdr_document_shape_matches_fixture() -> None:
    fixture = Path(__file__).resolve().parents[3] / "shared/fixtures/freeswitch/cdr"
    sample = fixture / "1128f284-d349-4551-8995-7d806addd049.json"
    if not sample.exists():
        pytest.skip("CDR fixtures missing")
    real = json.loads(sample.read_text())
    sw = Switch(seed=1)
    from telephony.simulator.model import Profile

    ch = sw.new_channel("loopback/park-b", Profile("inbound", "park", context="esltest"))
    ch.app_log.append(("park", "", 1))
    ch.extension = ("park", [("park", "")])
    ch.hangup_cause = "NORMAL_CLEARING"
    ch.set_timestamps(2_000_000)
    doc = build_cdr(sw, ch)
    assert list(doc) == list(real)
    assert list(doc["channel_data"]) == list(real["channel_data"])  # type: ignore[arg-type]
    flow, real_flow = doc["callflow"][0], real["callflow"][0]  # type: ignore[index]
    assert list(flow) == list(real_flow)
    assert list(flow["caller_profile"]) == list(real_flow["caller_profile"])
    assert list(flow["times"]) == list(real_flow["times"])
