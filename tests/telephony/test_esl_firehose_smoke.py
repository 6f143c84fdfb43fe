"""Firehose smoke test: the fake switch of ``benchmarks/bench_esl_firehose.py`` at a low rate.

Behaviour, not speed: every event the switch sends reaches the consumer of
``InboundClient.events`` exactly once and in order, with nothing dropped or
skipped, for an all-events subscription and for a name/CUSTOM-subclass one.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import esl_firehose_server as fake  # noqa: E402

from telephony.esl.client import InboundClient  # noqa: E402

EVENTS = 500
RATE = 2000  # events/s: the stream takes ~0.25 s
SOME = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "CUSTOM", "callcenter::info")


@pytest.fixture(scope="module")
def pool() -> fake.Pool:
    return fake.build_pool()


def _expected(pool: fake.Pool, wanted) -> list[tuple[int, str, str | None]]:
    """(sequence, name, subclass) of what the switch generates, filtered like it does."""
    out = []
    for i in range(EVENTS):
        t = pool.heartbeat if i == 0 else pool.events[i % len(pool.events)]
        if wanted(t):
            out.append((i + 1, t.name, t.subclass))
    return out


@pytest.mark.parametrize("names", [(), SOME], ids=["all", "some"])
async def test_every_event_arrives_once_in_order(pool: fake.Pool, names: tuple[str, ...]) -> None:
    listener = fake.open_listener()
    port = listener.getsockname()[1]
    go = threading.Event()
    server_stats: dict = {}

    def run_server() -> None:
        try:
            server_stats.update(fake.serve(listener, pool, RATE, EVENTS, go, deadline=10))
        finally:
            listener.close()

    server = threading.Thread(target=run_server, daemon=True)
    server.start()
    client = InboundClient("127.0.0.1", port, fake.PASSWORD)
    await client.connect()
    try:
        assert client.core_uuid == fake.CORE_UUID
        await client.subscribe(*(names + (fake.END_SUBCLASS,) if names else ()))
        go.set()
        got = []
        while True:
            event = await client.events.get(timeout=5)
            if event.name == "CUSTOM" and event.subclass == fake.END_SUBCLASS:
                sent = fake.end_marker_count(event.get)
                break
            got.append((event.sequence, event.name, event.subclass))
    finally:
        await client.disconnect()
        server.join(5)
    assert not server.is_alive()

    if names:
        sub = fake.Subscription()
        sub.apply(list(names))
        expected = _expected(pool, sub.wants)
    else:
        expected = _expected(pool, lambda t: True)
    assert server_stats["generated"] == EVENTS
    assert sent == server_stats["sent"]
    # The HEARTBEAT the client subscribes to for its watchdog is sent but not queued.
    internal = 0 if not names else server_stats["heartbeats"]
    assert sent == len(expected) + internal
    assert got == expected  # each exactly once, in order, nothing else
    assert client.events.dropped == 0
    assert client.stats.events_dropped == 0
    assert client.stats.frame_errors == 0
    assert client.stats.invalid_events == 0
    assert client.stats.events == sent + 1  # + the end marker
