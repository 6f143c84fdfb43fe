"""Realtime plumbing: the channel layer carries messages between processes; websockets know
their tenant from the Host."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from ccplatform.asgi import application
from tests.ws_helpers import postgres_layer_config

ROOT = Path(__file__).resolve().parents[2]
GROUP = "tenant.alpha.wallboard"

SENDER = """
import asyncio, json, sys, django
django.setup()
from channels_postgres.core import PostgresChannelLayer
config = json.loads(sys.argv[1])
async def main():
    await PostgresChannelLayer(**config).group_send(sys.argv[2], {"type": "queue.update", "seq": 7, "from": "other process"})
asyncio.run(main())
"""


@pytest.fixture
def test_database(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        yield


async def test_postgres_layer_carries_group_messages_between_processes(test_database, settings):  # type: ignore[no-untyped-def]
    import channels_postgres.db
    from channels_postgres.core import PostgresChannelLayer

    if "channels_postgres" not in settings.DATABASES:
        settings.DATABASES["channels_postgres"] = {
            **connection.settings_dict,
            "ENGINE": "django.db.backends.postgresql",
        }
    config = postgres_layer_config()
    receiver = PostgresChannelLayer(**config)
    channel = await receiver.new_channel()
    try:
        await receiver.group_add(GROUP, channel)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ccplatform.settings",
            "PYTHONPATH": str(ROOT),
        }
        sent = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", SENDER, json.dumps(config), GROUP],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        message = await asyncio.wait_for(receiver.receive(channel), timeout=15)
        assert message == {"type": "queue.update", "seq": 7, "from": "other process"}
    finally:
        await receiver.group_discard(GROUP, channel)
        # Stop the layer's LISTEN connection (the library's own shutdown message)...
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            psycopg.conninfo.make_conninfo("", **receiver.db_params), autocommit=True
        ) as conn:
            await conn.execute("NOTIFY channels_postgres_messages, '1:shutdown'")
        for _ in range(50):
            if not receiver.listener_task_is_running.is_set():
                break
            await asyncio.sleep(0.05)
        # ...and, as the library keeps one pool per process, bound to the first event loop: close it so
        # the next test's loop starts clean.
        if channels_postgres.db.connection_pool is not None:
            await channels_postgres.db.connection_pool.close()
            channels_postgres.db.connection_pool = None


@pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="REDIS_URL not set: the Redis layer is not in use"
)
async def test_redis_layer_carries_group_messages_between_instances():
    from channels_redis.core import RedisChannelLayer

    sender = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix="ccp-test")
    receiver = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix="ccp-test")
    channel = await receiver.new_channel()
    await receiver.group_add(GROUP, channel)
    await sender.group_send(GROUP, {"type": "queue.update", "seq": 7})
    assert await asyncio.wait_for(receiver.receive(channel), timeout=10) == {
        "type": "queue.update",
        "seq": 7,
    }
    await receiver.group_discard(GROUP, channel)


@pytest.fixture
def memory_layer(settings):  # type: ignore[no-untyped-def]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.mark.django_db
async def test_websocket_on_unknown_host_is_refused(cast, memory_layer):  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(
        application,
        "/ws/ping/",
        headers=[(b"host", b"nope.localhost"), (b"origin", b"http://nope.localhost")],
    )
    connected, _code = await communicator.connect()
    assert not connected


@pytest.mark.django_db
async def test_websocket_requires_a_signed_in_user(cast, memory_layer):  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(
        application,
        "/ws/ping/",
        headers=[(b"host", b"alpha.localhost"), (b"origin", b"http://alpha.localhost")],
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4401
