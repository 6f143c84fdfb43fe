"""Inbound client and reconnecting supervisor against a fake switch on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import pytest
from esl_fakes import (
    CORE_UUID,
    CORE_UUID_AFTER_RESTART,
    FakeSwitch,
    SwitchConnection,
    api_response,
    background_job,
    captured_event_frames,
    event_frame,
    reply,
)
from fixtures_esl import (
    FIXTURE_DIR,
)

from telephony.esl import (
    AuthError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    Event,
    InboundClient,
    OverflowPolicy,
    ReconnectingClient,
    event_from_frame,
)
from telephony.esl.events import parse_plain_event
from telephony.esl.frames import FrameParser

STATUS_BODY = (FIXTURE_DIR / "api" / "01-inbound-auth-api-001-status.txt").read_bytes()
PLAIN_EVENTS = captured_event_frames("02-loopback-call-plain.jsonl")


@pytest.fixture
async def switch() -> AsyncIterator[FakeSwitch]:
    fake = FakeSwitch()
    await fake.start()
    yield fake
    await fake.close()


def client_for(switch: FakeSwitch, **options: object) -> InboundClient:
    options.setdefault("idle_timeout", None)
    options.setdefault("command_timeout", 2.0)
    return InboundClient("127.0.0.1", switch.port, "ClueCon", **options)  # type: ignore[arg-type]


def first_line(command: bytes) -> str:
    return command.split(b"\n", 1)[0].decode()


# -- connect / auth ----------------------------------------------------------------


async def test_auth_ok_and_api_bodies_are_exact(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        assert esl.core_uuid == CORE_UUID
        assert await esl.api("status") == STATUS_BODY.decode()
        assert await esl.api("version") == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
        assert await esl.api("hostname") == "vm"  # no trailing newline, as captured
        assert await esl.api("show channels as json") == '{"row_count": 0}\n'
    commands = [first_line(c) for c in switch.last.commands]
    assert commands[:2] == ["auth ClueCon", "api global_getvar core_uuid"]
    assert commands[-1] == "exit"


async def test_wrong_password_raises_auth_error(switch: FakeSwitch) -> None:
    esl = InboundClient("127.0.0.1", switch.port, "WrongPassword", idle_timeout=None)
    with pytest.raises(AuthError, match="-ERR invalid"):
        await esl.connect()
    assert esl.is_closed


async def test_rude_rejection_raises_auth_error() -> None:
    def reject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
        )
        writer.close()

    server = await asyncio.start_server(reject, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(AuthError, match="Access Denied"):
            await InboundClient("127.0.0.1", port, "ClueCon", idle_timeout=None).connect()
    finally:
        server.close()
        await server.wait_closed()


async def test_connect_refused_is_oserror() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await InboundClient("127.0.0.1", port, "ClueCon", idle_timeout=None).connect()


async def test_peer_closing_before_auth_request_is_connection_lost() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionLost):
            await InboundClient("127.0.0.1", port, "ClueCon", idle_timeout=None).connect()
    finally:
        server.close()
        await server.wait_closed()


# -- commands ------------------------------------------------------------------------


async def test_err_replies_raise_command_error_and_connection_survives(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        with pytest.raises(CommandError) as info:
            await esl.api("nosuchapi arg1")
        assert info.value.text == "-ERR nosuchapi Command not found!"
        with pytest.raises(CommandError, match="USER_NOT_REGISTERED"):
            await esl.api("originate user/1000 &park()")
        with pytest.raises(CommandError, match="command not found"):
            await esl.command("foobar")
        with pytest.raises(CommandError, match="No such channel"):
            await esl.api("uuid_kill 00000000-0000-0000-0000-000000000000")
        assert await esl.api("status") == STATUS_BODY.decode()


async def test_commands_reject_newlines(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        with pytest.raises(ValueError):
            await esl.api("status\n\nexit")
        with pytest.raises(ValueError):
            await esl.bgapi("status\nJob-UUID: x")
        with pytest.raises(ValueError):
            await esl.sendmsg("uuid\nx", "park")


async def test_concurrent_commands_are_answered_in_order(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        results = await asyncio.gather(
            esl.api("status"), esl.api("version"), esl.api("hostname"), esl.api("uptime")
        )
    assert results[1].startswith("FreeSWITCH Version") and results[2] == "vm"
    assert results[3] == "46\n"


async def test_timeout_keeps_fifo_aligned(switch: FakeSwitch) -> None:
    async def slow(conn: SwitchConnection, command: bytes) -> bool:
        if command.startswith(b"api slow"):
            await asyncio.sleep(0.3)
            await conn.send(api_response(b"slow done\n"))
            return True
        return False

    switch.handlers.append(slow)
    async with client_for(switch) as esl:
        with pytest.raises(CommandTimeout):
            await esl.api("slow", timeout=0.05)
        # The late "slow done" is discarded; this reply is really version's.
        assert (await esl.api("version")).startswith("FreeSWITCH Version")
        assert esl.stats.command_timeouts == 1


async def test_pending_commands_fail_on_disconnect(switch: FakeSwitch) -> None:
    async def hang_then_drop(conn: SwitchConnection, command: bytes) -> bool:
        if command.startswith(b"api hang"):
            await asyncio.sleep(0.05)
            conn.abort()
            return True
        return False

    switch.handlers.append(hang_then_drop)
    esl = client_for(switch)
    await esl.connect()
    job_task = asyncio.ensure_future(esl.bgapi("status"))
    switch.job_delay = 10  # never arrives
    job = await job_task
    with pytest.raises(ConnectionLost):
        await esl.api("hang")
    with pytest.raises(ConnectionLost):
        await job
    with pytest.raises(ConnectionLost):
        await esl.api("status")
    with pytest.raises(ConnectionLost):
        await esl.events.get()
    assert esl.is_closed
    await esl.close()


# -- bgapi ---------------------------------------------------------------------------


async def test_bgapi_correlates_by_job_uuid_out_of_order(switch: FakeSwitch) -> None:
    held: list[tuple[SwitchConnection, str, str]] = []

    async def hold_jobs(conn: SwitchConnection, command: bytes) -> bool:
        if command.startswith(b"bgapi "):
            line, _, rest = command.decode().partition("\n")
            job_uuid = rest.split("Job-UUID: ", 1)[1].strip()
            await conn.send(reply(f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid)))
            held.append((conn, job_uuid, line[6:]))
            if len(held) == 2:  # answer the second job first
                for conn_, uuid_, cmd in reversed(held):
                    await conn_.send(background_job(uuid_, cmd, f"result of {cmd}\n".encode()))
            return True
        return False

    switch.handlers.append(hold_jobs)
    async with client_for(switch) as esl:
        first = await esl.bgapi("status")
        second = await esl.bgapi("version")
        assert first.job_uuid != second.job_uuid
        assert await second == "result of version\n"
        assert await first.result(timeout=1) == "result of status\n"
        assert first.event is not None and first.event.job_uuid == first.job_uuid
        # BACKGROUND_JOB was subscribed for the client's own use: not queued.
        assert len(esl.events) == 0
        assert any(first_line(c) == "event plain BACKGROUND_JOB" for c in switch.last.commands)


async def test_bgapi_result_in_same_segment_as_reply(switch: FakeSwitch) -> None:
    async def packed(conn: SwitchConnection, command: bytes) -> bool:
        if command.startswith(b"bgapi "):
            job_uuid = command.decode().split("Job-UUID: ", 1)[1].strip()
            # As captured: the reply and the event in one TCP segment.
            await conn.send(
                reply(f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid))
                + background_job(
                    job_uuid, "originate user/1000 &park()", b"-ERR USER_NOT_REGISTERED\n"
                )
            )
            return True
        return False

    switch.handlers.append(packed)
    async with client_for(switch) as esl:
        job = await esl.bgapi("originate user/1000 &park()")
        with pytest.raises(CommandError, match="USER_NOT_REGISTERED"):
            await job


async def test_client_supplied_job_uuid(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        job = await esl.bgapi("version", job_uuid="11111111-2222-3333-4444-555555555555")
        assert job.job_uuid == "11111111-2222-3333-4444-555555555555"
        assert await job.result(timeout=1) == "+OK done\n"


# -- events --------------------------------------------------------------------------


async def push(conn: SwitchConnection, frames: list[bytes]) -> None:
    await conn.send(b"".join(frames))


async def test_subscribed_events_arrive_in_order_and_equal_the_capture(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        assert await esl.subscribe("ALL") == "+OK event listener enabled plain"
        await push(switch.last, PLAIN_EVENTS)
        received = [await esl.events.get(timeout=2) for _ in PLAIN_EVENTS]
    expected = [event_from_frame(f) for f in FrameParser().feed(b"".join(PLAIN_EVENTS))]
    assert received == expected
    assert esl.stats.events == len(PLAIN_EVENTS) and esl.stats.events_dropped == 0


async def test_only_subscribed_events_are_queued(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        await esl.subscribe("CHANNEL_CREATE", "CUSTOM", "sofia::register")
        await push(switch.last, PLAIN_EVENTS)
        await esl.api("status")  # a round trip: every event has been read by now
        names = {esl.events.get_nowait().name for _ in range(len(esl.events))}
    assert names == {"CHANNEL_CREATE"}


async def test_json_subscription_format(switch: FakeSwitch) -> None:
    json_events = captured_event_frames("02-loopback-call-json.jsonl")[:5]
    async with client_for(switch) as esl:
        assert await esl.subscribe("ALL", fmt="json") == "+OK event listener enabled json"
        await push(switch.last, json_events)
        got = [await esl.events.get(timeout=2) for _ in json_events]
    assert [e.name for e in got] == [
        e.name for e in map(event_from_frame, FrameParser().feed(b"".join(json_events)))
    ]


async def test_invalid_event_is_skipped_and_counted(
    switch: FakeSwitch, caplog: pytest.LogCaptureFixture
) -> None:
    bad = event_frame(b'{"Event-Name": "API", ', "text/event-json")
    unknown = b"Content-Type: text/x-new\nContent-Length: 2\n\nhi"
    async with client_for(switch) as esl:
        await esl.subscribe("ALL")
        with caplog.at_level(logging.WARNING, logger="telephony.esl"):
            await push(switch.last, [PLAIN_EVENTS[0], bad, unknown, PLAIN_EVENTS[1]])
            first = await esl.events.get(timeout=2)
            second = await esl.events.get(timeout=2)
        assert (first.name, second.name) == ("API", "CODEC")
        assert esl.stats.invalid_events == 1 and esl.stats.unknown_frames == 1
        assert await esl.api("hostname") == "vm"  # still fine
    assert "invalid event" in caplog.text and "unknown type" in caplog.text


async def test_framing_lost_closes_connection_but_keeps_earlier_events(switch: FakeSwitch) -> None:
    esl = client_for(switch)
    await esl.connect()
    await esl.subscribe("ALL")
    await push(
        switch.last, [PLAIN_EVENTS[0], b"Content-Type: api/response\nContent-Length: lots\n\n"]
    )
    reason = await asyncio.wait_for(esl.wait_closed(), 2)
    assert "framing lost" in str(reason)
    assert (await esl.events.get()).name == parse_plain_event(
        FrameParser().feed(PLAIN_EVENTS[0])[0].body
    ).name
    with pytest.raises(ConnectionLost):
        await esl.events.get()


async def test_overflow_drop_oldest_is_counted_and_logged(
    switch: FakeSwitch, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(switch, event_queue_size=5) as esl:
        await esl.subscribe("ALL")
        with caplog.at_level(logging.WARNING, logger="telephony.esl"):
            await push(switch.last, PLAIN_EVENTS[:20])
            await esl.api("status")
        assert len(esl.events) == 5
        assert esl.stats.events_dropped == 15 == esl.events.dropped
        kept = [esl.events.get_nowait() for _ in range(5)]
    expected = [event_from_frame(f) for f in FrameParser().feed(b"".join(PLAIN_EVENTS[15:20]))]
    assert kept == expected  # the newest five
    # One line for the burst (rate-limited), not one per dropped event.
    assert caplog.text.count("queue full") == 1


async def test_overflow_disconnect_policy_closes(switch: FakeSwitch) -> None:
    esl = client_for(switch, event_queue_size=3, overflow_policy=OverflowPolicy.DISCONNECT)
    await esl.connect()
    await esl.subscribe("ALL")
    await push(switch.last, PLAIN_EVENTS[:10])
    reason = await asyncio.wait_for(esl.wait_closed(), 2)
    assert "event queue full" in str(reason)
    assert esl.stats.events_dropped == 1
    assert [(await esl.events.get()).name for _ in range(3)]  # what fitted is still readable
    with pytest.raises(ConnectionLost):
        await esl.api("status")


async def test_log_data_goes_to_log_handler(switch: FakeSwitch) -> None:
    seen = []
    body = b"2026-11-25 18:59:54.642819 83.90% [INFO] mod_commands.c:7200 esltest log line\n"
    frame = (
        b"Content-Type: log/data\nContent-Length: %d\nLog-Level: 6\nText-Channel: 3\n"
        b"Log-File: mod_commands.c\nLog-Func: log_function\nLog-Line: 7200\nUser-Data: \n\n"
        % len(body)
        + body
    )
    async with client_for(switch, log_handler=seen.append) as esl:
        await switch.last.send(frame)
        await esl.api("hostname")
    assert [f.body for f in seen] == [body]


async def test_unexpected_reply_is_counted(switch: FakeSwitch) -> None:
    async with client_for(switch) as esl:
        await switch.last.send(reply("+OK nobody asked"))
        while esl.stats.unexpected_replies == 0:  # read before we send anything
            await asyncio.sleep(0.005)
        assert await esl.api("hostname") == "vm"
        assert esl.stats.unexpected_replies == 1


async def test_sendmsg_wire_format(switch: FakeSwitch) -> None:
    uuid = "53959d9e-40dd-47f1-8048-4daba5dc2df1"
    async with client_for(switch) as esl:
        event_uuid = await esl.sendmsg(
            uuid,
            "playback",
            "tone_stream://%(500,0,600)",
            event_uuid="e1a11536-750b-458a-8f68-4f708c209fdd",
        )
        await esl.sendmsg(uuid, "answer", event_lock=True, event_uuid="x")
        await esl.sendmsg(uuid, "log", "INFO two\nlines", event_uuid="y")
        await esl.sendmsg_hangup(uuid, "USER_BUSY")
    assert event_uuid == "e1a11536-750b-458a-8f68-4f708c209fdd"
    sent = [c for c in switch.last.commands if c.startswith(b"sendmsg")]
    # Byte for byte what the capture tool sent to the real switch (02-plain).
    assert sent[0] == (
        b"sendmsg 53959d9e-40dd-47f1-8048-4daba5dc2df1\ncall-command: execute\n"
        b"execute-app-name: playback\nexecute-app-arg: tone_stream://%(500,0,600)\n"
        b"Event-UUID: e1a11536-750b-458a-8f68-4f708c209fdd\n\n"
    )
    assert b"\nevent-lock: true\n" in sent[1]
    assert sent[2].endswith(
        b"content-type: text/plain\ncontent-length: 14\nEvent-UUID: y\n\nINFO two\nlines"
    )
    assert sent[3] == f"sendmsg {uuid}\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n".encode()


async def test_noevents_restores_internal_subscriptions(switch: FakeSwitch) -> None:
    async with client_for(switch, idle_timeout=30) as esl:
        await esl.subscribe("ALL")
        await esl.noevents()
        await esl.filter("Event-Name", "CHANNEL_ANSWER")
        await esl.filter_delete()
    commands = [first_line(c) for c in switch.last.commands]
    assert commands[commands.index("noevents") + 1] == "event plain HEARTBEAT"
    assert "filter Event-Name HEARTBEAT" in commands
    assert esl.subscription.names == [] and esl.subscription.filters == []


# -- watchdog -------------------------------------------------------------------------


async def test_heartbeat_watchdog_declares_silent_switch_dead(switch: FakeSwitch) -> None:
    esl = client_for(switch, idle_timeout=0.3)
    await esl.connect()
    assert any(first_line(c) == "event plain HEARTBEAT" for c in switch.last.commands)
    switch.silent = True  # TCP stays up, nothing is sent any more
    reason = await asyncio.wait_for(esl.wait_closed(), 3)
    assert "watchdog" in str(reason)
    assert esl.stats.heartbeat_timeouts == 1


async def test_heartbeats_keep_connection_alive(switch: FakeSwitch) -> None:
    heartbeat = captured_event_frames("09-restart-watcher.jsonl", "watcher-2")[0]
    esl = client_for(switch, idle_timeout=0.4)
    await esl.connect()
    for _ in range(10):  # 1 s: long past the limit without heartbeats
        await asyncio.sleep(0.1)
        await switch.last.send(heartbeat)
    assert esl.is_connected and esl.stats.heartbeat_timeouts == 0
    assert len(esl.events) == 0  # HEARTBEAT was the client's own subscription
    await esl.close()


# -- reconnecting supervisor ------------------------------------------------------------


async def test_reconnect_resubscribes_and_reports_same_switch(switch: FakeSwitch) -> None:
    calls: list[bool] = []

    async def on_reconnect(restarted: bool) -> None:
        calls.append(restarted)

    sup = ReconnectingClient(
        "127.0.0.1",
        switch.port,
        "ClueCon",
        events=["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"],
        filters=[("Event-Name", "CHANNEL_CREATE")],
        on_reconnect=on_reconnect,
        backoff_initial=0.02,
        idle_timeout=None,
        rng=random.Random(1),
    )
    async with sup:
        assert sup.core_uuid == CORE_UUID
        first = switch.last
        await push(first, PLAIN_EVENTS)
        event = await sup.events.get(timeout=2)
        assert event.name == "CHANNEL_CREATE"
        first.abort()
        for _ in range(200):
            if sup.connections == 2 and calls:
                break
            await asyncio.sleep(0.01)
        assert calls == [False] and sup.restarts == 0
        second = switch.last
        assert second is not first
        commands = [first_line(c) for c in second.commands]
        assert "event plain CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE" in commands
        assert "filter Event-Name CHANNEL_CREATE" in commands
        assert await sup.api("hostname") == "vm"
        # The consumer's queue survived the reconnection.
        await push(second, PLAIN_EVENTS[:12])
        assert (await sup.events.get(timeout=2)).name == "CHANNEL_CREATE"
    with pytest.raises(ConnectionLost):
        await sup.api("hostname")


async def test_restart_detected_by_core_uuid_change(switch: FakeSwitch) -> None:
    """Scenario 09: shutdown notice, refused connections for a while, new Core-UUID."""
    calls: list[bool] = []
    reconnected = asyncio.Event()

    async def on_reconnect(restarted: bool) -> None:
        calls.append(restarted)
        channels = await sup.api("show channels as json")
        assert channels == '{"row_count": 0}\n'
        reconnected.set()

    sup = ReconnectingClient(
        "127.0.0.1",
        switch.port,
        "ClueCon",
        events=["ALL"],
        on_reconnect=on_reconnect,
        backoff_initial=0.02,
        backoff_max=0.1,
        idle_timeout=None,
    )
    async with sup:
        assert sup.core_uuid == CORE_UUID
        port = switch.port
        await switch.stop_listening()  # the restarting switch refuses connections
        await switch.last.send(
            b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\nThe system is being shut down.\n"
        )
        switch.last.writer.close()
        await asyncio.sleep(0.3)  # several refused attempts, with backoff
        assert not sup.is_connected
        assert isinstance(sup.last_error, OSError)
        switch.core_uuid = CORE_UUID_AFTER_RESTART
        await switch.start(port)
        await asyncio.wait_for(reconnected.wait(), 3)
        assert calls == [True] and sup.restarts == 1
        assert sup.core_uuid == CORE_UUID_AFTER_RESTART
        assert sup.stats.frames > 0


async def test_supervisor_remembers_later_subscriptions(switch: FakeSwitch) -> None:
    sup = ReconnectingClient(
        "127.0.0.1", switch.port, "ClueCon", backoff_initial=0.02, idle_timeout=None
    )
    async with sup:
        await sup.subscribe("CHANNEL_ANSWER", fmt="json")
        await sup.filter("Event-Name", "CHANNEL_ANSWER")
        first = switch.last
        first.abort()
        while sup.connections < 2:
            await asyncio.sleep(0.01)
        assert sup.is_connected
    commands = [first_line(c) for c in switch.last.commands]
    assert "event json CHANNEL_ANSWER" in commands
    assert "filter Event-Name CHANNEL_ANSWER" in commands


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    sup = ReconnectingClient(backoff_initial=0.5, backoff_max=30, jitter=0.2, rng=random.Random(7))
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (40, 30.0)]:
        delays = [sup.backoff_delay(attempt) for _ in range(50)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_core_uuid_from_first_event_when_not_queried(switch: FakeSwitch) -> None:
    esl = client_for(switch)
    await esl.connect(query_core_uuid=False)
    assert esl.core_uuid is None
    await esl.subscribe("ALL")
    await push(switch.last, PLAIN_EVENTS[:1])
    event: Event = await esl.events.get(timeout=2)
    assert esl.core_uuid == event.core_uuid == CORE_UUID
    await esl.close()


async def test_sendevent_wire_format_matches_capture(switch: FakeSwitch) -> None:
    async def ok(conn: SwitchConnection, command: bytes) -> bool:
        if command.startswith(b"sendevent "):
            await conn.send(reply("+OK f75eb1a6-c39e-4aec-acd3-44bed68ca8ea"))
            return True
        return False

    switch.handlers.append(ok)
    async with client_for(switch) as esl:
        text = await esl.sendevent(
            "CUSTOM",
            [("Event-Subclass", "esltest::ping"), ("X-Test-Header", "hello world")],
            "line one\nline two with spaces & symbols %20 = ok\n",
        )
    assert text == "+OK f75eb1a6-c39e-4aec-acd3-44bed68ca8ea"
    sent = next(c for c in switch.last.commands if c.startswith(b"sendevent"))
    assert sent == (  # byte for byte what the capture tool sent (01, conn C)
        b"sendevent CUSTOM\nEvent-Subclass: esltest::ping\nX-Test-Header: hello world\n"
        b"Content-Length: 49\n\nline one\nline two with spaces & symbols %20 = ok\n"
    )
