"""The agents' console websocket (agentdesk/consumers.py) through the real ASGI application.

A fake switchboard listens on the ``switchboard.control`` group of the in-memory channel layer
and answers on the reply group, as the switchboard process does over Redis or PostgreSQL.
Sessions and agent rows are committed (the consumer reads them from its own database threads)
and removed after each test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

import agentdesk.consumers as consumers
from agentdesk.consumers import CONTROL_GROUP, CommandError, check_command, reply_group
from tests.agentdesk.conftest import make_agents, remove_agents
from tests.conftest import A_HOST, PROVIDER_HOST
from tests.ws_helpers import closed_with, open_ws


@pytest.fixture
def committed(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    from django.contrib.sessions.models import Session

    with django_db_blocker.unblock():
        before = set(Session.objects.values_list("session_key", flat=True))
        remove_agents()
        make_agents()
        yield
        Session.objects.exclude(session_key__in=before).delete()
        remove_agents()


@pytest.fixture
def memory_layer(settings):  # type: ignore[no-untyped-def]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def quick(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(consumers, "REPLY_TIMEOUT_S", 0.4)


async def _open(email: str | None, host: str = PROVIDER_HOST) -> WebsocketCommunicator:
    return await open_ws("/ws/agent/", email, host)


_closed_with = closed_with


async def _agent(email: str = "agent@provider.test") -> WebsocketCommunicator:
    ws = await _open(email)
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return ws


Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


class FakeSwitchboard:
    """Listens on ``switchboard.control``; answers each command with ``answer(message)``
    (None: stays silent)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[dict[str, Any]] = []
        self.layer = get_channel_layer()

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(CONTROL_GROUP, self.channel)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self.seen.append(message)
            reply = self.answer(message)
            if reply is not None:
                await self.layer.group_send(
                    reply_group(message["request_id"]), {"type": "switchboard.reply", **reply}
                )

    async def stop(self) -> None:
        self.task.cancel()
        await self.layer.group_discard(CONTROL_GROUP, self.channel)


@pytest.fixture
async def switchboard(committed, memory_layer) -> AsyncIterator[FakeSwitchboard]:  # type: ignore[no-untyped-def]
    def answer(message: dict[str, Any]) -> dict[str, Any]:
        if message["command"] == "snapshot":
            return {
                "ok": True,
                "message": "",
                "snapshot": {"state": "available", "call": None, "seq": 4},
            }
        return {"ok": True, "message": f"did {message['command']}"}

    sb = FakeSwitchboard(answer)
    await sb.start()
    yield sb
    await sb.stop()


async def _push(agent_id: str, event: dict[str, Any]) -> None:
    await get_channel_layer().group_send(
        f"agent.{agent_id}", {"type": "agent.event", "event": event}
    )


OFFER = {
    "kind": "offer",
    "call_id": "call-1",
    "tenant": "alpha",
    "tenant_name": "Alpha Retail",
    "caller": "+380441234567",
    "queue": "alpha-main",
    "seq": 5,
}


# -- who may connect ---------------------------------------------------------------------------


async def test_an_agent_connects_and_is_told_its_id(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    ws = await _open("agent@provider.test")
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello == {"type": "hello", "agent_id": "olha", "reply_timeout_s": 3.0}
    await ws.disconnect()


@pytest.mark.parametrize(
    "email",
    [
        "supervisor@provider.test",
        "admin@provider.test",
        "finance@provider.test",
        "admin@alpha.test",
    ],
)
async def test_others_are_closed_with_4403(committed, memory_layer, email) -> None:  # type: ignore[no-untyped-def]
    assert await _closed_with(await _open(email)) == 4403


async def test_an_agent_without_an_active_agent_row_is_closed_with_4403(
    committed, memory_layer
) -> None:  # type: ignore[no-untyped-def]
    from routing.models import Agent

    await sync_to_async(Agent.objects.filter(agent_id="olha").update)(active=False)
    assert await _closed_with(await _open("agent@provider.test")) == 4403
    await sync_to_async(Agent.objects.filter(agent_id="olha").delete)()
    assert await _closed_with(await _open("agent@provider.test")) == 4403


async def test_anonymous_4401_and_client_hosts_4404(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    assert await _closed_with(await _open(None)) == 4401
    assert await _closed_with(await _open("agent@provider.test", host=A_HOST)) == 4404


# -- commands ----------------------------------------------------------------------------------


async def test_a_command_is_relayed_with_the_users_agent_id_and_the_reply_returned(
    switchboard,
) -> None:  # type: ignore[no-untyped-def]
    ws = await _agent()
    await ws.send_json_to(
        {
            "command": "state",
            "state": "break",
            "reason": "lunch",
            "id": 7,
            "agent_id": "petro",  # never believed
            "request_id": "mine",
            "type": "switchboard.nonsense",
        }
    )
    reply = await ws.receive_json_from(timeout=5)
    assert reply == {
        "type": "reply",
        "id": 7,
        "command": "state",
        "ok": True,
        "message": "did state",
    }
    (seen,) = switchboard.seen
    assert seen["type"] == "switchboard.command"
    assert seen["agent_id"] == "olha"
    assert uuid.UUID(seen["request_id"]).version == 4
    assert {k: v for k, v in seen.items() if k not in ("type", "request_id")} == {
        "agent_id": "olha",
        "command": "state",
        "state": "break",
        "reason": "lunch",
    }
    await ws.disconnect()


async def test_each_agent_speaks_only_for_itself(switchboard) -> None:  # type: ignore[no-untyped-def]
    olha, petro = await _agent(), await _agent("petro@provider.test")
    await petro.send_json_to({"command": "state", "state": "available", "agent_id": "olha"})
    await olha.send_json_to({"command": "state", "state": "logout", "agent_id": "petro"})
    assert (await petro.receive_json_from(timeout=5))["ok"] is True
    assert (await olha.receive_json_from(timeout=5))["ok"] is True
    by_agent = {m["agent_id"]: m["state"] for m in switchboard.seen}
    assert by_agent == {"petro": "available", "olha": "logout"}
    await olha.disconnect()
    await petro.disconnect()


async def test_no_reply_in_time_says_the_switchboard_is_not_responding(
    committed, memory_layer, quick
) -> None:  # type: ignore[no-untyped-def]
    silent = FakeSwitchboard(lambda message: None)
    await silent.start()
    ws = await _agent()
    await ws.send_json_to({"command": "snapshot", "id": "s1"})
    reply = await ws.receive_json_from(timeout=5)
    assert reply == {
        "type": "reply",
        "id": "s1",
        "command": "snapshot",
        "ok": False,
        "message": "switchboard not responding",
        "timeout": True,
    }
    assert len(silent.seen) == 1
    await silent.stop()
    await ws.disconnect()


async def test_nobody_listening_times_out_too(committed, memory_layer, quick) -> None:  # type: ignore[no-untyped-def]
    ws = await _agent()
    await ws.send_json_to({"command": "wrap_up_done"})
    reply = await ws.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"], reply["timeout"]) == (
        False,
        "switchboard not responding",
        True,
    )
    await ws.disconnect()


async def test_a_refusal_is_passed_on(committed, memory_layer) -> None:  # type: ignore[no-untyped-def]
    sb = FakeSwitchboard(lambda m: {"ok": False, "message": "you are on a call"})
    await sb.start()
    ws = await _agent()
    await ws.send_json_to({"command": "state", "state": "logout", "id": 1})
    reply = await ws.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"]) == (False, "you are on a call")
    await sb.stop()
    await ws.disconnect()


async def test_a_reply_naming_another_request_is_not_taken(committed, memory_layer, quick) -> None:  # type: ignore[no-untyped-def]
    sb = FakeSwitchboard(lambda m: {"ok": True, "message": "stale", "request_id": "old-one"})
    await sb.start()
    ws = await _agent()
    await ws.send_json_to({"command": "state", "state": "available"})
    reply = await ws.receive_json_from(timeout=5)
    assert reply["timeout"] is True and reply["ok"] is False
    await sb.stop()
    await ws.disconnect()


async def test_the_snapshot_reply_carries_the_snapshot(switchboard) -> None:  # type: ignore[no-untyped-def]
    ws = await _agent()
    await ws.send_json_to({"command": "snapshot", "id": 1})
    reply = await ws.receive_json_from(timeout=5)
    assert reply["ok"] is True
    assert reply["snapshot"] == {"state": "available", "call": None, "seq": 4}
    await ws.disconnect()


@pytest.mark.parametrize(
    "content",
    [
        {"command": "dial", "number": "+1555"},
        {"command": "state", "state": "on_call"},
        {"command": "state", "state": "break", "reason": "x" * 101},
        {"command": "hold"},
        {"command": "escalate", "call_id": "call-1", "mode": "hot"},
        {"command": "transfer", "call_id": "call-1"},
        {"command": "transfer", "call_id": "call-1", "queue_id": "a", "to_agent": "b"},
        {"command": "transfer", "call_id": "call-1", "queue_id": "Bad Queue!"},
        ["state"],
    ],
)
async def test_malformed_commands_never_reach_the_switchboard(switchboard, content) -> None:  # type: ignore[no-untyped-def]
    ws = await _agent()
    await ws.send_json_to(content)
    reply = await ws.receive_json_from(timeout=5)
    assert reply["type"] == "reply" and reply["ok"] is False
    assert switchboard.seen == []
    await ws.disconnect()


def test_check_command_copies_only_each_commands_arguments() -> None:
    assert check_command(
        {"command": "escalate", "call_id": "c1", "mode": "warm", "agent_id": "x", "queue_id": "q"}
    ) == {"command": "escalate", "call_id": "c1", "mode": "warm"}
    assert check_command({"command": "transfer", "call_id": "c1", "to_agent": "petro"}) == {
        "command": "transfer",
        "call_id": "c1",
        "to_agent": "petro",
    }
    assert check_command({"command": "state", "state": "available", "reason": " "}) == {
        "command": "state",
        "state": "available",
    }
    with pytest.raises(CommandError):
        check_command({"command": "snapshot "})


# -- calls: pushes, walls, masking -------------------------------------------------------------


async def test_pushes_are_forwarded_only_to_their_agent(switchboard) -> None:  # type: ignore[no-untyped-def]
    olha, petro = await _agent(), await _agent("petro@provider.test")
    await _push("olha", OFFER)
    event = await olha.receive_json_from(timeout=5)
    assert event == {"type": "event", "event": OFFER}
    await _push(
        "olha", {"kind": "state", "state": "on_call", "reason": None, "since": 1.0, "seq": 6}
    )
    assert (await olha.receive_json_from(timeout=5))["event"]["state"] == "on_call"
    assert await petro.receive_nothing(timeout=0.2)
    await olha.disconnect()
    await petro.disconnect()


async def test_call_commands_only_for_the_agents_own_call(switchboard) -> None:  # type: ignore[no-untyped-def]
    olha, petro = await _agent(), await _agent("petro@provider.test")
    await petro.send_json_to({"command": "hold", "call_id": "call-1"})
    assert (await petro.receive_json_from(timeout=5))["message"] == "not your call"
    await _push("olha", {**OFFER, "kind": "connected", "contact": None})
    await olha.receive_json_from(timeout=5)
    # Olha's call: still not Petro's.
    await petro.send_json_to({"command": "hangup", "call_id": "call-1"})
    assert (await petro.receive_json_from(timeout=5))["message"] == "not your call"
    assert switchboard.seen == []
    await olha.send_json_to({"command": "hold", "call_id": "call-1", "id": 3})
    reply = await olha.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"]) == (True, "did hold")
    assert [(m["agent_id"], m["command"], m["call_id"]) for m in switchboard.seen] == [
        ("olha", "hold", "call-1")
    ]
    # Once ended, the call is not hers to act on any more.
    await _push("olha", {"kind": "ended", "call_id": "call-1", "seq": 6})
    await olha.receive_json_from(timeout=5)
    await olha.send_json_to({"command": "unhold", "call_id": "call-1"})
    assert (await olha.receive_json_from(timeout=5))["message"] == "not your call"
    await olha.disconnect()
    await petro.disconnect()


async def test_a_snapshot_tells_which_call_is_the_agents(switchboard) -> None:  # type: ignore[no-untyped-def]
    call = {"call_id": "call-9", "tenant": "alpha", "caller": "+380441234567", "queue": "q"}
    switchboard.answer = lambda m: (
        {"ok": True, "message": "", "snapshot": {"state": "on_call", "call": call, "seq": 9}}
        if m["command"] == "snapshot"
        else {"ok": True, "message": "ok"}
    )
    ws = await _agent()
    await ws.send_json_to({"command": "snapshot"})
    assert (await ws.receive_json_from(timeout=5))["snapshot"]["call"] == call
    await ws.send_json_to({"command": "mask", "call_id": "call-9"})
    assert (await ws.receive_json_from(timeout=5))["ok"] is True
    assert switchboard.seen[-1]["command"] == "mask"
    await ws.disconnect()


async def test_transfers_stay_inside_the_calls_client(switchboard) -> None:  # type: ignore[no-untyped-def]
    ws = await _agent()
    await _push("olha", {**OFFER, "kind": "connected", "contact": {"name": "Ivan", "vip": True}})
    await ws.receive_json_from(timeout=5)
    for args, problem in (
        ({"queue_id": "beta-main"}, "not a queue of this client"),
        ({"queue_id": "nowhere"}, "not a queue of this client"),
        ({"to_agent": "olha"}, "cannot transfer to yourself"),
        ({"to_agent": "ghost"}, "that agent does not take this client's calls"),
    ):
        await ws.send_json_to({"command": "transfer", "call_id": "call-1", **args})
        assert (await ws.receive_json_from(timeout=5))["message"] == problem
    assert switchboard.seen == []
    for args in ({"queue_id": "alpha-main"}, {"to_agent": "petro"}):
        await ws.send_json_to({"command": "transfer", "call_id": "call-1", **args})
        assert (await ws.receive_json_from(timeout=5))["ok"] is True
    assert [m.get("queue_id") or m.get("to_agent") for m in switchboard.seen] == [
        "alpha-main",
        "petro",
    ]
    await ws.disconnect()


async def test_caller_numbers_are_masked_before_the_browser_when_the_client_says_so(
    switchboard, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(consumers, "caller_masked", lambda tenant: tenant.schema_name == "alpha")
    ws = await _agent()
    await _push("olha", OFFER)
    event = (await ws.receive_json_from(timeout=5))["event"]
    assert event["caller"] == "+38••••••4567" and event["caller_masked"] is True
    await _push("olha", {**OFFER, "tenant": "beta", "call_id": "call-2", "seq": 6})
    assert (await ws.receive_json_from(timeout=5))["event"]["caller"] == "+380441234567"
    await ws.disconnect()


def test_mask_number() -> None:
    from agentdesk.access import mask_number

    assert mask_number("+380441234567") == "+38••••••4567"
    assert mask_number("0441234567") == "04••••4567"
    assert mask_number("12345") == "•••••"
    assert mask_number("") == ""


# -- the real layers ---------------------------------------------------------------------------


def _postgres_layer(settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from django.db import connection

    db = connection.settings_dict
    if "channels_postgres" not in settings.DATABASES:
        settings.DATABASES["channels_postgres"] = {
            **db,
            "ENGINE": "django.db.backends.postgresql",
        }
    return {
        "BACKEND": "channels_postgres.core.PostgresChannelLayer",
        "CONFIG": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db["NAME"],
            "USER": db["USER"],
            "PASSWORD": db["PASSWORD"] or "",
            "HOST": db["HOST"],
            "PORT": db["PORT"],
            "TIME_ZONE": None,
            "OPTIONS": {},
            "PSYCOPG_OPTIONS": {"min_size": 1, "max_size": 4},
        },
    }


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_the_relay_works_over_the_real_layers(committed, settings, backend) -> None:  # type: ignore[no-untyped-def]
    """Group names and messages the Redis and PostgreSQL layers accept, end to end."""
    import os

    from channels.layers import channel_layers

    if backend == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("REDIS_URL not set: the Redis layer is not in use")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": "ccp-test"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": _postgres_layer(settings)}
    channel_layers.backends.clear()
    sb = FakeSwitchboard(
        lambda m: {
            "ok": True,
            "message": "",
            "snapshot": {"state": "break", "call": None, "seq": 2},
        }
    )
    await sb.start()
    try:
        ws = await _agent()
        await ws.send_json_to({"command": "snapshot", "id": 1})
        reply = await ws.receive_json_from(timeout=10)
        assert reply["ok"] is True and reply["snapshot"]["state"] == "break"
        await _push("olha", OFFER)
        assert (await ws.receive_json_from(timeout=10))["event"]["call_id"] == "call-1"
        await ws.send_json_to({"command": "hold", "call_id": "call-1", "agent_id": "petro"})
        assert (await ws.receive_json_from(timeout=10))["ok"] is True
        assert [(m["command"], m["agent_id"]) for m in sb.seen] == [
            ("snapshot", "olha"),
            ("hold", "olha"),
        ]
        await ws.disconnect()
    finally:
        await sb.stop()
        if backend == "postgres":
            import channels_postgres.db

            if channels_postgres.db.connection_pool is not None:
                await channels_postgres.db.connection_pool.close()
                channels_postgres.db.connection_pool = None
        channel_layers.backends.clear()


async def test_conference_and_leave_are_relayed_for_the_agents_own_call(switchboard) -> None:  # type: ignore[no-untyped-def]
    refusals = {"leave_conference": "you are not in a conference with the second line"}
    switchboard.answer = lambda m: (
        {"ok": False, "message": refusals[m["command"]]}
        if m["command"] in refusals
        else {"ok": True, "message": ""}
    )
    olha, petro = await _agent(), await _agent("petro@provider.test")
    await olha.send_json_to({"command": "conference", "call_id": "call-1"})
    assert (await olha.receive_json_from(timeout=5))["message"] == "not your call"
    await _push("olha", {**OFFER, "kind": "connected", "contact": None, "consulting": True})
    await olha.receive_json_from(timeout=5)
    await petro.send_json_to({"command": "conference", "call_id": "call-1"})
    assert (await petro.receive_json_from(timeout=5))["message"] == "not your call"
    # A refusal (not in a conference yet) reaches the browser as the switchboard said it.
    await olha.send_json_to({"command": "leave_conference", "call_id": "call-1", "id": 1})
    assert await olha.receive_json_from(timeout=5) == {
        "type": "reply",
        "id": 1,
        "command": "leave_conference",
        "ok": False,
        "message": "you are not in a conference with the second line",
    }
    await olha.send_json_to({"command": "conference", "call_id": "call-1", "mode": "x", "id": 2})
    reply = await olha.receive_json_from(timeout=5)
    assert (reply["command"], reply["ok"]) == ("conference", True)
    # The card pushed again says the call is a conference now.
    await _push("olha", {**OFFER, "kind": "connected", "contact": None, "conference": True})
    event = (await olha.receive_json_from(timeout=5))["event"]
    assert event["conference"] is True and event["call_id"] == "call-1"
    await olha.send_json_to({"command": "leave_conference", "call_id": "call-1"})
    await olha.receive_json_from(timeout=5)
    assert [
        {k: v for k, v in m.items() if k not in ("type", "request_id")} for m in switchboard.seen
    ] == [
        {"agent_id": "olha", "command": "leave_conference", "call_id": "call-1"},
        {"agent_id": "olha", "command": "conference", "call_id": "call-1"},
        {"agent_id": "olha", "command": "leave_conference", "call_id": "call-1"},
    ]
    await olha.disconnect()
    await petro.disconnect()
