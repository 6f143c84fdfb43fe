"""``show channels|calls as json`` parsers and the bounded event queue."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fixtures_esl import (
    FIXTURE_DIR,
    api_index,
)

from telephony.esl import ConnectionLost, EventQueue, OverflowPolicy
from telephony.esl.api import (
    ShowFormatError,
    parse_show_calls,
    parse_show_channels,
    parse_show_rows,
)


def bodies(command: str) -> list[tuple[str, bytes]]:
    return [
        (entry["file"], (FIXTURE_DIR / entry["file"]).read_bytes())
        for entry in api_index()
        if entry["command"] == f"api {command}"
    ]


def test_every_captured_show_channels_body_parses() -> None:
    found = bodies("show channels as json")
    assert len(found) >= 10
    for name, body in found:
        rows = parse_show_channels(body)
        assert all(r.uuid and r.name and r.state.startswith("CS_") for r in rows), name


def test_every_captured_show_calls_body_parses() -> None:
    found = bodies("show calls as json")
    assert len(found) >= 4
    for _name, body in found:
        parse_show_calls(body)


def test_02_channels_before_answer() -> None:
    body = (
        FIXTURE_DIR / "api" / "02-loopback-call-plain-002-show_channels_as_json.txt"
    ).read_bytes()
    rows = {r.name: r for r in parse_show_channels(body)}
    assert (rows["loopback/park-a"].state, rows["loopback/park-a"].callstate) == (
        "CS_CONSUME_MEDIA",
        "DOWN",
    )
    assert (rows["loopback/park-b"].state, rows["loopback/park-b"].callstate) == (
        "CS_EXECUTE",
        "RINGING",
    )
    assert rows["loopback/park-b"].raw["dest"] == "park"


def test_empty_and_bridged_calls() -> None:
    assert parse_show_channels(b'{"row_count": 0}\n') == []
    body = (FIXTURE_DIR / "api" / "07-callcenter-plain-033-show_calls_as_json.txt").read_bytes()
    calls = parse_show_calls(body)
    bridged = [c for c in calls if c.b_uuid]
    assert len(calls) == 2 and len(bridged) == 1
    assert bridged[0].b_name == "sofia/lo/agent1@127.0.0.1:5070"
    assert [c.b_uuid for c in calls if not c.b_uuid] == [None]
    assert all(c.created_epoch and c.created_epoch > 1_700_000_000 for c in calls)


@pytest.mark.parametrize(
    "body",
    [
        b"-ERR no reply\n",
        b"[]",
        b'{"rows": []}',
        b'{"row_count": 2, "rows": [{"uuid": "a"}]}',
        b'{"row_count": 1, "rows": [{"uuid": 5}]}',
        b'{"row_count": 1, "rows": [{"name": "x"}]}',
    ],
)
def test_malformed_show_bodies(body: bytes) -> None:
    with pytest.raises(ShowFormatError):
        parse_show_channels(body)


def test_parse_show_rows_is_generic() -> None:
    rows = parse_show_rows('{"row_count":1,"rows":[{"reg_user":"1000"}]}')
    assert rows[0]["reg_user"] == "1000"


# -- EventQueue --------------------------------------------------------------------


async def test_queue_drop_oldest(caplog: pytest.LogCaptureFixture) -> None:
    queue: EventQueue[int] = EventQueue(3, OverflowPolicy.DROP_OLDEST, name="t")
    with caplog.at_level(logging.WARNING, logger="telephony.esl.queue"):
        assert all(queue.put(i) for i in range(5))
    assert [queue.get_nowait() for _ in range(3)] == [2, 3, 4]
    assert queue.dropped == 2 and queue.accepted == 5 and queue.high_water == 3
    assert "t queue full (3): dropping the oldest event" in caplog.text


async def test_queue_disconnect_policy_refuses() -> None:
    queue: EventQueue[int] = EventQueue(2, "disconnect")
    assert queue.put(1) and queue.put(2)
    assert queue.put(3) is False
    assert queue.dropped == 1 and len(queue) == 2


async def test_queue_get_waits_times_out_and_closes() -> None:
    queue: EventQueue[int] = EventQueue(10)
    with pytest.raises(TimeoutError):
        await queue.get(timeout=0.01)
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put(7)
    assert await getter == 7
    queue.put(8)
    queue.close()
    assert await queue.get() == 8  # drained first
    with pytest.raises(ConnectionLost):
        await queue.get()
    queue.reopen()
    queue.put(9)
    assert [item async for item in _until_closed(queue)] == [9]


async def _until_closed(queue: EventQueue[int]):  # type: ignore[no-untyped-def]
    asyncio.get_running_loop().call_soon(queue.close)
    async for item in queue:
        yield item


def test_queue_rejects_bad_size() -> None:
    with pytest.raises(ValueError):
        EventQueue(0)
