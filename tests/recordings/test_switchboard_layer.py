"""The mask command's round trip on the real PostgreSQL channel layer (the default without
Redis), with a switchboard that answers at once: the answer must never be lost."""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection

from recordings import switchboard
from tests.ws_helpers import postgres_layer_config


@pytest.fixture
def postgres_layer(django_db_setup, django_db_blocker, settings):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        if "channels_postgres" not in settings.DATABASES:
            settings.DATABASES["channels_postgres"] = {
                **connection.settings_dict,
                "ENGINE": "django.db.backends.postgresql",
            }
        config = postgres_layer_config()
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_postgres.core.PostgresChannelLayer", "CONFIG": config}
        }
        yield config


async def _switchboard(config: dict[str, object], ready: asyncio.Event, answers: int) -> None:
    """A switchboard on its own layer instance (as in its own process), answering at once."""
    from channels_postgres.core import PostgresChannelLayer

    layer = PostgresChannelLayer(**config)
    channel = await layer.new_channel()
    await layer.group_add(switchboard.CONTROL_GROUP, channel)
    ready.set()
    try:
        for _ in range(answers):
            command = await layer.receive(channel)
            await layer.group_send(
                switchboard.REPLY_GROUP_PREFIX + command["request_id"],
                {"type": "switchboard.reply", "ok": True, "message": command["command"]},
            )
    finally:
        await layer.group_discard(switchboard.CONTROL_GROUP, channel)


async def test_an_immediate_answer_is_heard_on_the_postgres_layer(postgres_layer):  # type: ignore[no-untyped-def]
    from channels.layers import get_channel_layer

    ready = asyncio.Event()
    responder = asyncio.create_task(_switchboard(postgres_layer, ready, answers=3))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        for command in ("mask", "unmask", "mask"):
            reply = await switchboard.send_command(command, "call-pg", "ag-1")
            assert reply == switchboard.Reply(True, command)
        await asyncio.wait_for(responder, 5)
        # One reply channel served all three (the layer keeps a database lock per channel).
        assert len(get_channel_layer()._channel_advisory_locks) == 1
        with pytest.raises(switchboard.SwitchboardTimeout):
            await switchboard.send_command("unmask", "call-pg", None, timeout=0.3)
    finally:
        responder.cancel()
        await _stop_postgres_layers(postgres_layer, get_channel_layer())


async def _stop_postgres_layers(config: dict[str, object], layer) -> None:  # type: ignore[no-untyped-def]
    """Stop this process's LISTEN connections (the library's own shutdown message) and close
    its connection pool, which the library binds to the first event loop (as
    tests/foundation/test_realtime.py does), so the next test's loop starts clean."""
    import channels_postgres.db
    import psycopg

    params = {k: v for k, v in layer.db_params.items()}
    async with await psycopg.AsyncConnection.connect(
        psycopg.conninfo.make_conninfo("", **params), autocommit=True
    ) as conn:
        await conn.execute("NOTIFY channels_postgres_messages, '1:shutdown'")
    for _ in range(50):
        running = layer.listener_task_is_running
        if running is None or not running.is_set():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    if channels_postgres.db.connection_pool is not None:
        await channels_postgres.db.connection_pool.close()
        channels_postgres.db.connection_pool = None


async def test_reply_channels_are_reused_but_not_after_a_timeout(settings):  # type: ignore[no-untyped-def]
    from tests.recordings.fakes import FakeSwitchboardLayer

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.recordings.fakes.FakeSwitchboardLayer"}
    }
    FakeSwitchboardLayer.received = []
    try:
        FakeSwitchboardLayer.mode = "silent"
        with pytest.raises(switchboard.SwitchboardTimeout):
            await switchboard.send_command("mask", "c-x", None, timeout=0.05)
        from channels.layers import get_channel_layer

        idle = switchboard._idle_channels(get_channel_layer())
        assert idle == []  # a late answer must not reach the next request
        FakeSwitchboardLayer.mode = "ok"
        assert (await switchboard.send_command("mask", "c-x", None)).ok
        [channel] = idle
        assert (await switchboard.send_command("unmask", "c-x", None)).ok
        assert idle == [channel]
        assert [m["command"] for m in FakeSwitchboardLayer.received] == ["mask", "mask", "unmask"]
    finally:
        FakeSwitchboardLayer.mode = "ok"
        FakeSwitchboardLayer.received = []
