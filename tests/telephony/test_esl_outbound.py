"""Outbound socket server against a fake FreeSWITCH replaying the 04/05 captures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from esl_fakes import command_steps, replay_outbound
from fixtures_esl import (
    load_connections,
)

from telephony.esl import CommandError, ConnectionLost, Event, OutboundCall, OutboundServer

Handler = Callable[[OutboundCall], Awaitable[None]]


class Harness:
    """Our OutboundServer on a random port, recording calls and handler outcomes."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.calls: list[OutboundCall] = []
        self.done: asyncio.Queue[BaseException | None] = asyncio.Queue()
        self.server = OutboundServer(self._handle, "127.0.0.1", 0, command_timeout=3.0)

    async def _handle(self, call: OutboundCall) -> None:
        self.calls.append(call)
        assert self.handler is not None
        try:
            await self.handler(call)
        except BaseException as exc:
            await self.done.put(exc)
            raise
        await self.done.put(None)

    async def run(self, name: str, handler: Handler) -> list[bytes]:
        """Replay capture ``name`` with ``handler``; re-raise the handler's failure."""
        self.handler = handler
        peer_closes = load_connections(name)[None].peer_closed
        received = await asyncio.wait_for(
            replay_outbound(self.server.port, name, peer_closes=peer_closes), 10
        )
        outcome = await asyncio.wait_for(self.done.get(), 5)
        if outcome is not None:
            raise outcome
        return received


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.server.start()
    yield h
    await h.server.stop()


def completed(event: Event, app: str) -> None:
    assert event.name == "CHANNEL_EXECUTE_COMPLETE"
    assert event["Application"] == app


async def test_04_async_full_call(harness: Harness) -> None:
    seen: dict[str, object] = {}

    async def handle(call: OutboundCall) -> None:
        assert call.socket_mode == "async" and call.control == "full"
        assert call.uuid == "02dca18f-25ad-4da4-af51-542c1d97bf11"
        assert call.variables["esltest_var"] == "hello world"
        assert call.channel is not None and call.channel.name == "CHANNEL_DATA"
        assert await call.myevents() == "+OK Events Enabled"
        assert await call.linger() == "+OK will linger"
        await call.subscribe("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "DTMF")
        assert await call.getvar("esltest_var") == "hello world"
        completed(await call.execute_wait("answer", event_lock=True, timeout=3), "answer")
        completed(await call.execute_wait("set", "esltest_set=from outbound", timeout=3), "set")
        played = await call.execute_wait("playback", "tone_stream://%(800,0,440)", timeout=3)
        assert played["Application-Response"] == "FILE PLAYED"
        digits = await call.execute_wait(
            "play_and_get_digits",
            r"1 4 1 5000 # tone_stream://%(300,0,500) tone_stream://%(300,0,300) pagd_digits \d+",
            timeout=3,
        )
        assert digits.variables["pagd_digits"] == "42"
        assert await call.getvar("pagd_digits") == "42"
        await call.execute("log", "INFO body-passed arg\n\n")  # multi-line: sent as a body
        await call.execute("bridge", "{loopback_bowout=false}loopback/ans/esltest")
        await asyncio.wait_for(call.hangup.wait(), 3)
        seen["cause"] = call.hangup_cause
        # Linger -1: the socket stays open after the linger notice until we close it.
        while call.disconnect_notice is None:
            await asyncio.sleep(0.01)
        seen["lingering"] = call.lingering
        seen["events"] = [call.events.get_nowait() for _ in range(len(call.events))]

    received = await harness.run("04-outbound-socket-async-full.jsonl", handle)
    assert len(received) == len(command_steps("04-outbound-socket-async-full.jsonl")) - 1
    assert seen["cause"] == "NORMAL_CLEARING"
    assert seen["lingering"] is True
    events = seen["events"]
    assert isinstance(events, list)
    assert [e["DTMF-Digit"] for e in events if e.name == "DTMF"] == ["4", "2", "#"]
    assert events[-1].name == "CHANNEL_HANGUP_COMPLETE"
    call = harness.calls[0]
    assert call.is_closed  # closed by us when the handler returned
    assert call.disconnect_notice is not None
    assert call.disconnect_notice.get("Linger-Time") == "-1"


async def test_04c_linger_timeout_then_disconnect(harness: Harness) -> None:
    async def handle(call: OutboundCall) -> None:
        await call.myevents()
        assert await call.linger(3) == "+OK will linger 3 seconds"
        await call.execute("answer")
        assert await call.hangup_call("NORMAL_CLEARING") == "+OK"
        reason = await asyncio.wait_for(call.wait_closed(), 3)
        assert "closed by peer" in str(reason) and "goodbye" in str(reason)
        assert call.lingering and call.hangup_cause == "NORMAL_CLEARING"
        assert call.disconnect_notice is not None
        assert call.disconnect_notice.get("Content-Disposition") == "disconnect"

    await harness.run("04c-outbound-socket-linger-timeout.jsonl", handle)


async def test_04d_exit_mid_call(harness: Harness) -> None:
    async def handle(call: OutboundCall) -> None:
        await call.myevents("json")
        answered = await call.execute_wait("answer", timeout=3)  # JSON events this time
        completed(answered, "answer")
        await call.exit()
        await asyncio.wait_for(call.wait_closed(), 3)
        assert call.hangup.is_set() and not call.lingering
        with pytest.raises(ConnectionLost):
            await call.execute("park")

    await harness.run("04d-outbound-socket-client-exit.jsonl", handle)


async def test_05_sync_single_channel(harness: Harness) -> None:
    async def handle(call: OutboundCall) -> None:
        assert call.socket_mode == "static" and call.control == "single-channel"
        await call.myevents("plain")
        await call.execute("answer")
        await call.execute("playback", "tone_stream://%(1000,0,440)")
        await call.execute("playback", "tone_stream://%(300,0,440)", event_lock=True)
        with pytest.raises(CommandError, match="command not found"):
            await call.api(f"uuid_getvar {call.uuid} channel_name")  # api needs "full"
        await call.hangup_call("USER_BUSY")
        await asyncio.wait_for(call.wait_closed(), 3)
        names = [call.events.get_nowait().name for _ in range(len(call.events))]
        assert names.count("CHANNEL_EXECUTE_COMPLETE") == 3

    await harness.run("05-outbound-socket-sync.jsonl", handle)


async def test_handler_failure_is_contained(harness: Harness) -> None:
    async def handle(call: OutboundCall) -> None:
        raise RuntimeError("bug in one call")

    harness.handler = handle
    # We close the socket right after connect, so the replay stops short.
    with pytest.raises(asyncio.IncompleteReadError):
        await replay_outbound(harness.server.port, "04d-outbound-socket-client-exit.jsonl")
    outcome = await asyncio.wait_for(harness.done.get(), 2)
    assert isinstance(outcome, RuntimeError)
    for _ in range(100):
        if harness.server.handler_errors:
            break
        await asyncio.sleep(0.01)
    assert harness.server.handler_errors == 1
    assert harness.calls[0].is_closed

    # The server still serves the next call.
    async def ok(call: OutboundCall) -> None:
        await call.myevents("json")
        await call.execute("answer")
        await call.exit()

    await harness.run("04d-outbound-socket-client-exit.jsonl", ok)
    assert harness.server.accepted == 2


async def test_peer_that_never_answers_connect(harness: Harness) -> None:
    harness.server.connect_timeout = 0.2
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.server.port)
    assert await reader.readuntil(b"\n\n") == b"connect\n\n"
    assert await asyncio.wait_for(reader.read(), 2) == b""  # we gave up and closed
    writer.close()
    assert harness.server.failed_connects == 1 and harness.calls == []
