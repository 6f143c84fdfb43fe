"""A client's live page: ``/ws/portal/live/`` (routing.consumers.PortalLiveConsumer) and
``/live/`` on the client's domain. Each client company's users get their own stream only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from channels.layers import get_channel_layer

from routing.consumers import PortalLiveConsumer
from routing.engine.model import AgentProfile, AgentUpdated, CallArrived, QueueConfig
from routing.live import LiveBoard
from routing.live_publish import group_name, publish
from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST, site
from tests.ws_helpers import closed_with, open_ws

from .test_consumer import T0, committed, memory_layer  # noqa: F401  (fixtures)

PATH = "/ws/portal/live/"


@pytest.fixture
async def board(committed, memory_layer) -> AsyncIterator[LiveBoard]:  # type: ignore[no-untyped-def]  # noqa: F811
    board = LiveBoard(
        "UTC",
        queues=[QueueConfig("alpha-main", "alpha"), QueueConfig("beta-main", "beta")],
        epoch="e1",
    )
    board.set_names(queues={"alpha-main": "Alpha main line", "beta-main": "Beta main line"})
    board.apply_event(AgentUpdated(T0, AgentProfile("olha", {"alpha": {}})))
    board.apply_event(AgentUpdated(T0, AgentProfile("bob", {"beta": {}})))
    yield board


async def _snapshot(email: str, host: str):  # type: ignore[no-untyped-def]
    ws = await open_ws(PATH, email, host)
    connected, _ = await ws.connect()
    assert connected
    return ws, await ws.receive_json_from(timeout=5)


@pytest.mark.parametrize("email", ["admin@alpha.test", "viewer@alpha.test"])
async def test_a_clients_users_get_their_own_stream_only(board, email) -> None:  # type: ignore[no-untyped-def]
    sent = await publish(board, T0)
    assert sent == {"provider": 1, "tenant:alpha": 1, "tenant:beta": 1}
    ws, snap = await _snapshot(email, A_HOST)
    assert (snap["kind"], snap["stream"], snap["seq"], snap["epoch"]) == (
        "snapshot",
        "tenant:alpha",
        1,
        "e1",
    )
    assert list(snap["queues"]) == ["alpha-main"]
    assert snap["totals"]["agents"] == {"logged_out": 1}  # olha, counted, not named
    assert "agents" not in snap and "tenants" not in snap

    # beta's caller: a delta on beta's stream and the provider's, none for alpha's page.
    board.apply(CallArrived(T0 + 1, "b1", "beta-main"), [])
    assert await publish(board, T0 + 1) == {"provider": 2, "tenant:beta": 2}
    assert await ws.receive_nothing(timeout=0.3)

    board.apply(CallArrived(T0 + 2, "a1", "alpha-main"), [])
    assert await publish(board, T0 + 2) == {"provider": 3, "tenant:alpha": 2}
    delta = await ws.receive_json_from(timeout=5)
    assert (delta["kind"], delta["stream"], delta["seq"]) == ("delta", "tenant:alpha", 2)
    assert delta["queues"]["alpha-main"]["waiting"] == 1
    assert delta["totals"]["waiting"] == 1 and delta["totals"]["oldest_since"] == T0 + 2
    assert set(delta) & {"agents", "tenants"} == set()

    await ws.send_json_to({"type": "resync"})
    again = await ws.receive_json_from(timeout=5)
    assert (again["kind"], again["seq"], list(again["queues"])) == ("snapshot", 2, ["alpha-main"])
    await ws.disconnect()


async def test_a_message_of_another_stream_is_never_forwarded(board) -> None:  # type: ignore[no-untyped-def]
    await publish(board, T0)
    ws, _ = await _snapshot("admin@alpha.test", A_HOST)
    layer = get_channel_layer()
    foreign = {"kind": "delta", "stream": "tenant:beta", "epoch": "e1", "seq": 9, "queues": {}}
    await layer.group_send(group_name("tenant:alpha"), {"type": "live.message", "message": foreign})
    await layer.group_send(group_name("provider"), {"type": "live.message", "message": foreign})
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.parametrize(
    ("email", "host", "code"),
    [
        ("admin@beta.test", A_HOST, 4403),  # B's admin on A's domain
        ("admin@alpha.test", B_HOST, 4403),  # A's admin on B's domain
        ("supervisor@provider.test", A_HOST, 4403),  # provider staff are not A's users
        ("admin@alpha.test", PROVIDER_HOST, 4404),  # not on the provider's host
        (None, A_HOST, 4401),
    ],
)
@pytest.mark.usefixtures("committed", "memory_layer")
async def test_nobody_else_gets_a_tenants_stream(email, host, code) -> None:  # type: ignore[no-untyped-def]
    assert await closed_with(await open_ws(PATH, email, host)) == code


async def test_heartbeats_carry_the_stored_seq_so_a_lost_delta_shows(board, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(PortalLiveConsumer, "heartbeat_s", 0.2)
    await publish(board, T0)
    ws, snap = await _snapshot("viewer@alpha.test", A_HOST)
    beat = await ws.receive_json_from(timeout=5)
    assert (beat["kind"], beat["stream"], beat["epoch"], beat["seq"], beat["now"]) == (
        "heartbeat",
        "tenant:alpha",
        "e1",
        snap["seq"],
        None,
    )
    # A delta stored but lost on the way: the next heartbeat says seq 2 (the page resyncs).
    board.apply(CallArrived(T0 + 1, "a1", "alpha-main"), [])
    layer = get_channel_layer()
    real_send = layer.group_send

    async def lose_alpha(group, message):  # type: ignore[no-untyped-def]
        if group != group_name("tenant:alpha"):
            await real_send(group, message)

    monkeypatch.setattr(layer, "group_send", lose_alpha)
    assert (await publish(board, T0 + 1, layer=layer))["tenant:alpha"] == 2
    while (message := await ws.receive_json_from(timeout=5))["seq"] == 1:
        assert message["kind"] == "heartbeat"
    assert (message["kind"], message["seq"]) == ("heartbeat", 2)
    await ws.disconnect()


def test_the_live_page_is_on_the_clients_portal_only(cast) -> None:  # type: ignore[no-untyped-def]
    for user in (cast.a_admin, cast.a_viewer):
        client = site(A_HOST, user)
        assert 'href="/live/"' in client.get("/").content.decode()
        page = client.get("/live/")
        assert page.status_code == 200
        html = page.content.decode()
        assert 'id="portal-live"' in html and 'data-ws-path="/ws/portal/live/"' in html
    assert site(A_HOST, cast.b_admin).get("/live/").status_code == 404
    assert site(A_HOST, cast.supervisor).get("/live/").status_code == 404
    assert site(PROVIDER_HOST, cast.supervisor).get("/live/").status_code == 404
    response = site(A_HOST).get("/live/")
    assert response.status_code == 302 and "/login/" in response["Location"]
