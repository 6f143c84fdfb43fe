"""The wallboard's websocket (routing/consumers.py) and the publisher (routing/live_publish.py).

Runs through the real ASGI application (tenant from the Host, session auth). Sessions and
snapshots are committed (the consumer reads them from its own database threads) and removed
after each test; the channel layer is the in-memory one (one process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from routing.engine.model import (
    AgentLogin,
    AgentProfile,
    AgentUpdated,
    CallArrived,
    QueueConfig,
    QueueUpdated,
)
from routing.live import LiveBoard
from routing.live_publish import HEARTBEAT_S, group_name, load_snapshot, publish
from tests.conftest import A_HOST, PROVIDER_HOST
from tests.ws_helpers import closed_with, open_ws

T0 = 1_795_000_000.0


@pytest.fixture
def committed(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Database access outside a test transaction; removes the sessions and snapshots made."""
    from django.contrib.sessions.models import Session

    from routing.models import LiveSnapshot

    with django_db_blocker.unblock():
        before = set(Session.objects.values_list("session_key", flat=True))
        LiveSnapshot.objects.all().delete()
        yield
        Session.objects.exclude(session_key__in=before).delete()
        LiveSnapshot.objects.all().delete()


@pytest.fixture
def memory_layer(settings):  # type: ignore[no-untyped-def]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def _open(email: str | None, host: str = PROVIDER_HOST) -> WebsocketCommunicator:
    return await open_ws("/ws/live/", email, host)


@pytest.fixture
async def board(committed, memory_layer) -> AsyncIterator[LiveBoard]:  # type: ignore[no-untyped-def]
    board = LiveBoard("UTC", queues=[QueueConfig("bank-main", "bank")], epoch="e1")
    board.apply_event(AgentUpdated(T0, AgentProfile("a1", {"bank": {}})))
    yield board


_closed_with = closed_with


@pytest.mark.parametrize("email", ["admin@provider.test", "supervisor@provider.test"])
async def test_staff_get_the_snapshot_then_deltas_and_a_resync(board, email) -> None:  # type: ignore[no-untyped-def]
    assert await publish(board, T0) == {"provider": 1, "tenant:bank": 1}
    ws = await _open(email)
    connected, _ = await ws.connect()
    assert connected
    snap = await ws.receive_json_from(timeout=5)
    assert (snap["kind"], snap["seq"], snap["epoch"]) == ("snapshot", 1, "e1")
    assert snap["queues"]["bank-main"]["waiting"] == 0
    assert snap["agents"]["a1"]["state"] == "logged_out"

    board.apply(CallArrived(T0 + 1, "c1", "bank-main"), [])
    assert await publish(board, T0 + 1) == {"provider": 2, "tenant:bank": 2}
    delta = await ws.receive_json_from(timeout=5)
    assert (delta["kind"], delta["seq"]) == ("delta", 2)
    assert delta["queues"]["bank-main"]["waiting"] == 1
    assert delta["totals"]["waiting"] == 1

    await ws.send_json_to({"type": "resync"})
    again = await ws.receive_json_from(timeout=5)
    assert (again["kind"], again["seq"]) == ("snapshot", 2)
    assert again["queues"]["bank-main"]["waiting"] == 1
    await ws.send_json_to({"type": "nonsense"})  # ignored
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize(
    "email",
    ["agent@provider.test", "finance@provider.test", "admin@alpha.test", "viewer@alpha.test"],
)
async def test_others_are_closed_with_4403(committed, memory_layer, email) -> None:  # type: ignore[no-untyped-def]
    assert await _closed_with(await _open(email)) == 4403


async def test_anonymous_is_closed_with_4401(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    assert await _closed_with(await _open(None)) == 4401


async def test_only_on_the_providers_host(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    assert await _closed_with(await _open("admin@provider.test", host=A_HOST)) == 4404


async def test_before_any_publish_the_snapshot_is_empty(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    ws = await _open("admin@provider.test")
    await ws.connect()
    snap = await ws.receive_json_from(timeout=5)
    assert snap["kind"] == "snapshot" and snap["seq"] == 0 and snap["epoch"] is None
    assert snap["queues"] == {} and snap["totals"] is None
    await ws.disconnect()


async def test_deltas_the_snapshot_holds_are_not_sent_again(board) -> None:  # type: ignore[no-untyped-def]
    await publish(board, T0)
    board.apply(AgentLogin(T0 + 1, "a1"), [])  # nothing for the board (no decisions)
    board.apply(CallArrived(T0 + 1, "c1", "bank-main"), [])
    await publish(board, T0 + 1)  # seq 2, stored before anyone listens
    ws = await _open("admin@provider.test")
    await ws.connect()
    snap = await ws.receive_json_from(timeout=5)
    assert snap["seq"] == 2
    layer = get_channel_layer()
    old = {"kind": "delta", "stream": "provider", "epoch": "e1", "seq": 2, "queues": {}}
    await layer.group_send(group_name("provider"), {"type": "live.message", "message": old})
    assert await ws.receive_nothing(timeout=0.3)
    # Another epoch (the switchboard restarted) passes: the page resyncs on it.
    new = {**old, "epoch": "e2", "seq": 1}
    await layer.group_send(group_name("provider"), {"type": "live.message", "message": new})
    assert (await ws.receive_json_from(timeout=5))["epoch"] == "e2"
    await ws.disconnect()


async def test_heartbeats_when_nothing_changes(board) -> None:  # type: ignore[no-untyped-def]
    await publish(board, T0)
    ws = await _open("supervisor@provider.test")
    await ws.connect()
    await ws.receive_json_from(timeout=5)
    assert await publish(board, T0 + 1) == {}  # nothing changed, heartbeat not due yet
    assert await ws.receive_nothing(timeout=0.2)
    assert await publish(board, T0 + HEARTBEAT_S) == {}
    beat = await ws.receive_json_from(timeout=5)
    assert (beat["kind"], beat["seq"], beat["now"]) == ("heartbeat", 1, T0 + HEARTBEAT_S)
    await ws.disconnect()


async def test_publish_stores_each_changed_streams_snapshot(board) -> None:  # type: ignore[no-untyped-def]
    await publish(board, T0)
    board.apply(CallArrived(T0 + 2, "c1", "bank-main"), [])
    await publish(board, T0 + 3)
    stored = await load_snapshot("tenant:bank")
    assert stored is not None and stored["seq"] == 2 and stored["kind"] == "snapshot"
    assert stored["queues"]["bank-main"]["waiting"] == 1
    assert stored["queues"]["bank-main"]["oldest_since"] == T0 + 2
    assert await load_snapshot("tenant:nobody") is None


def test_group_names_are_valid_and_distinct() -> None:
    import re

    valid = re.compile(r"^[A-Za-z0-9._-]{1,99}$")
    names = [
        "provider",
        "tenant:bank",
        "tenant:bank/1",
        "tenant:bank?1",
        "tenant:банк",
        "tenant:" + "x" * 150,
    ]
    groups = [group_name(s) for s in names]
    assert groups[:2] == ["live.provider", "live.tenant.bank"]
    assert all(valid.match(g) for g in groups)
    assert len(set(groups)) == len(groups)


async def test_after_a_failed_publish_every_stream_is_stored_again(board, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import routing.live_publish as lp

    board.apply_event(QueueUpdated(T0, QueueConfig("shop-main", "shop")))
    await publish(board, T0)  # seq 1 everywhere
    board.apply(CallArrived(T0 + 1, "c1", "shop-main"), [])
    real_store = lp._store

    async def broken(snapshots):  # type: ignore[no-untyped-def]
        raise OSError("database away")

    monkeypatch.setattr(lp, "_store", broken)
    with pytest.raises(OSError):
        await publish(board, T0 + 1)  # seq 2 of provider and tenant:shop is lost
    monkeypatch.setattr(lp, "_store", real_store)
    board.apply(CallArrived(T0 + 2, "c2", "bank-main"), [])
    assert await publish(board, T0 + 2) == {"provider": 3, "tenant:bank": 2}
    # tenant:shop had no change this round, but its stored snapshot is the current one.
    shop = await load_snapshot("tenant:shop")
    assert shop is not None and shop["seq"] == 2 and shop["queues"]["shop-main"]["waiting"] == 1


async def test_publish_forever_keeps_going_after_an_error(board, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import routing.live_publish as lp

    calls: list[float] = []
    real = lp.publish

    async def flaky(b, now, *, layer=None):  # type: ignore[no-untyped-def]
        calls.append(now)
        if len(calls) == 1:
            raise OSError("channel layer away")
        return await real(b, now, layer=layer)

    monkeypatch.setattr(lp, "publish", flaky)
    clock = iter(range(int(T0), int(T0) + 1000))
    task = asyncio.create_task(lp.publish_forever(board, lambda: float(next(clock)), 0.01))
    for _ in range(200):
        if len(calls) >= 3:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3
    stored = await load_snapshot("provider")
    assert stored is not None and stored["seq"] >= 1
