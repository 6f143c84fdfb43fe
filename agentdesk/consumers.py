"""The agents' console websocket, ``/ws/agent/`` on the provider's host.

It joins the agent's push group and relays the browser's commands to the switchboard over the
Channels layer. The protocol with the switchboard (telephony/callflow implements its side):

* to the switchboard: group ``switchboard.control``, ``{"type": "switchboard.command",
  "request_id": <uuid4>, "agent_id", "command", ...args}``; the agent id is always the signed-in
  user's ``routing.models.Agent.agent_id``, never anything the browser sent;
* its reply: group ``switchboard.reply.<request_id>``, ``{"type": "switchboard.reply", "ok",
  "message"[, "snapshot"][, "request_id"]}``; none within :data:`REPLY_TIMEOUT_S` answers the
  browser ``{"ok": false, "message": "switchboard not responding", "timeout": true}``;
* pushes: group ``agent.<agent_id>``, ``{"type": "agent.event", "event": {...}}`` (kinds
  ``state``, ``offer``, ``connected``, ``ended``, ``hold``, ``recording``; ``seq`` +1 per message
  per agent).

Commands are relayed one at a time per connection (a reply names its request only through the
group it is sent to, so one request in flight makes every reply unambiguous; if the switchboard
echoes ``request_id`` in the reply, a stale reply is also recognised and dropped).

Browser -> server: ``{"command", "id"?, ...args}``. Server -> browser: ``{"type": "hello",
"agent_id"}`` once, ``{"type": "event", "event"}`` per push, ``{"type": "reply", "id",
"command", "ok", "message"[, "snapshot"][, "timeout"]}`` per command. Call commands name a
``call_id`` this connection has seen offered or connected to this agent (in a push or a
snapshot); others are refused before they reach the switchboard. A transfer's queue must be one
of the call's client and an agent transfer target must be certified for that client. Caller
numbers are masked here, before they reach the browser, when the call's client asks for it
(:func:`agentdesk.access.caller_masked`).

Close codes: 4401 not signed in, 4403 not an agent (no agent membership or no active Agent
row), 4404 not the provider's host.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agentdesk.access import caller_masked, certified_tenant, console_agent, mask_number
from ccplatform.ws_access import accept_signed_in

__all__ = [
    "CONTROL_GROUP",
    "REPLY_TIMEOUT_S",
    "AgentConsumer",
    "CommandError",
    "agent_group",
    "check_command",
    "reply_group",
]

log = logging.getLogger(__name__)

CONTROL_GROUP = "switchboard.control"
REPLY_TIMEOUT_S = 3.0
NOT_RESPONDING = "switchboard not responding"
MAX_WAITING_COMMANDS = 8
MASK_TTL_S = 60.0

STATES = ("available", "break", "logout")
ESCALATION_MODES = ("cold", "warm")
CALL_COMMANDS = frozenset(
    {
        "hold",
        "unhold",
        "hangup",
        "escalate",
        "complete_transfer",
        "transfer",
        "mask",
        "unmask",
        "record",
        "conference",
        "leave_conference",
    }
)
COMMANDS = CALL_COMMANDS | {"state", "wrap_up_done", "snapshot"}
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CALL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def agent_group(agent_id: str) -> str:
    return f"agent.{agent_id}"


def reply_group(request_id: str) -> str:
    return f"switchboard.reply.{request_id}"


class CommandError(ValueError):
    """A command the console may not send; the message goes back to the browser."""


def _text(content: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = content.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise CommandError(f"{name} is missing or malformed")
    return value


def check_command(content: Any) -> dict[str, Any]:
    """The switchboard message fields for one browser command (without request and agent id).

    Only the arguments each command takes are copied; anything else the browser sent (an
    ``agent_id`` above all) is dropped.
    """
    if not isinstance(content, dict):
        raise CommandError("a command is a JSON object")
    command = content.get("command")
    if command not in COMMANDS:
        raise CommandError("unknown command")
    out: dict[str, Any] = {"command": command}
    if command == "state":
        state = content.get("state")
        if state not in STATES:
            raise CommandError("state must be available, break or logout")
        out["state"] = state
        reason = content.get("reason")
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > 100:
                raise CommandError("reason must be text of at most 100 characters")
            if reason.strip():
                out["reason"] = reason.strip()
    elif command == "wrap_up_done":
        if content.get("call_id") is not None:
            out["call_id"] = _text(content, "call_id", CALL_ID_RE)
    elif command in CALL_COMMANDS:
        out["call_id"] = _text(content, "call_id", CALL_ID_RE)
        if command == "escalate":
            mode = content.get("mode")
            if mode not in ESCALATION_MODES:
                raise CommandError("mode must be cold or warm")
            out["mode"] = mode
        elif command == "transfer":
            has_queue = content.get("queue_id") not in (None, "")
            has_agent = content.get("to_agent") not in (None, "")
            if has_queue == has_agent:
                raise CommandError("transfer to a queue_id or to_agent (one of them)")
            if has_queue:
                out["queue_id"] = _text(content, "queue_id", SLUG_RE)
            else:
                out["to_agent"] = _text(content, "to_agent", SLUG_RE)
    return out


def _client_id(content: Any) -> str | int | None:
    value = content.get("id") if isinstance(content, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and len(value) <= 64):
        return value
    return None


@database_sync_to_async
def _agent_of(user: Any) -> tuple[str, int] | None:
    agent = console_agent(user)
    return (agent.agent_id, agent.pk) if agent is not None else None


@database_sync_to_async
def _masked(schema_name: str) -> bool:
    from django_tenants.utils import schema_context

    from tenants.models import Client

    with schema_context("public"):
        tenant = Client.objects.filter(schema_name=schema_name).first()
        return caller_masked(tenant) if tenant is not None else False


@database_sync_to_async
def _transfer_problem(agent_pk: int, tenant: str, message: dict[str, Any]) -> str | None:
    """Why the transfer crosses a wall (None when it does not)."""
    from django_tenants.utils import schema_context

    from routing.models import Agent, Queue

    with schema_context("public"):
        me = Agent.objects.filter(pk=agent_pk, active=True).first()
        if me is None or certified_tenant(me, tenant) is None:
            return "not an agent of this client"
        if "queue_id" in message:
            if not Queue.objects.filter(
                queue_id=message["queue_id"], tenant__schema_name=tenant
            ).exists():
                return "not a queue of this client"
            return None
        if message["to_agent"] == me.agent_id:
            return "cannot transfer to yourself"
        target = Agent.objects.filter(agent_id=message["to_agent"], active=True).first()
        if target is None or certified_tenant(target, tenant) is None:
            return "that agent does not take this client's calls"
        return None


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """One agent's console; see the module docstring."""

    async def connect(self) -> None:
        self.agent_id: str | None = None
        self.agent_pk: int | None = None
        self.group: str | None = None
        self.worker: asyncio.Task[None] | None = None
        self.inflight: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self.calls: dict[str, str] = {}  # call id -> client schema, from pushes and snapshots
        self.mask_cache: dict[str, tuple[float, bool]] = {}
        user = await accept_signed_in(self, provider_site=True)
        if user is None:
            return
        found = await _agent_of(user)
        if found is None:
            await self.close(code=4403)
            return
        self.agent_id, self.agent_pk = found
        self.group = agent_group(self.agent_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.commands: asyncio.Queue[tuple[Any, dict[str, Any]]] = asyncio.Queue(
            maxsize=MAX_WAITING_COMMANDS
        )
        self.worker = asyncio.create_task(self._relay_loop())
        await self.send_json(
            {"type": "hello", "agent_id": self.agent_id, "reply_timeout_s": REPLY_TIMEOUT_S}
        )

    async def disconnect(self, code: int) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker = None
        if self.inflight is not None:
            await self.channel_layer.group_discard(reply_group(self.inflight[0]), self.channel_name)
            self.inflight = None
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    # -- browser -> switchboard -----------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.agent_id is None:
            return
        client_id = _client_id(content)
        try:
            message = check_command(content)
        except CommandError as exc:
            await self._answer(client_id, content, {"ok": False, "message": str(exc)})
            return
        try:
            self.commands.put_nowait((client_id, message))
        except asyncio.QueueFull:
            await self._answer(
                client_id, message, {"ok": False, "message": "too many commands waiting"}
            )

    async def _answer(self, client_id: Any, message: Any, reply: dict[str, Any]) -> None:
        command = message.get("command") if isinstance(message, dict) else None
        await self.send_json(
            {
                "type": "reply",
                "id": client_id,
                "command": command if command in COMMANDS else None,
                **reply,
            }
        )

    async def _relay_loop(self) -> None:
        while True:
            client_id, message = await self.commands.get()
            try:
                reply = await self._relay(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken layer must not kill the console's connection
                log.exception("relaying %s for agent %s failed", message["command"], self.agent_id)
                reply = {"ok": False, "message": NOT_RESPONDING, "timeout": True}
            await self._answer(client_id, message, reply)

    async def _relay(self, message: dict[str, Any]) -> dict[str, Any]:
        problem = await self._wall_problem(message)
        if problem is not None:
            return {"ok": False, "message": problem}
        request_id = str(uuid.uuid4())
        group = reply_group(request_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self.channel_layer.group_add(group, self.channel_name)
        self.inflight = (request_id, future)
        try:
            await self.channel_layer.group_send(
                CONTROL_GROUP,
                {
                    "type": "switchboard.command",
                    "request_id": request_id,
                    "agent_id": self.agent_id,
                    **message,
                },
            )
            try:
                reply = await asyncio.wait_for(future, REPLY_TIMEOUT_S)
            except TimeoutError:
                return {"ok": False, "message": NOT_RESPONDING, "timeout": True}
        finally:
            self.inflight = None
            await self.channel_layer.group_discard(group, self.channel_name)
        result: dict[str, Any] = {
            "ok": bool(reply.get("ok")),
            "message": str(reply.get("message") or ""),
        }
        snapshot = reply.get("snapshot")
        if message["command"] == "snapshot" and result["ok"] and isinstance(snapshot, dict):
            result["snapshot"] = await self._snapshot_out(snapshot)
        return result

    async def _wall_problem(self, message: dict[str, Any]) -> str | None:
        command = message["command"]
        if command not in CALL_COMMANDS:
            return None
        tenant = self.calls.get(message["call_id"])
        if tenant is None:
            return "not your call"
        if command == "transfer":
            assert self.agent_pk is not None
            return await _transfer_problem(self.agent_pk, tenant, message)
        return None

    async def switchboard_reply(self, event: dict[str, Any]) -> None:
        """The switchboard's answer to the request in flight (``switchboard.reply``)."""
        inflight = self.inflight
        if inflight is None:
            return  # late: that request already timed out
        request_id, future = inflight
        echoed = event.get("request_id")
        if echoed is not None and echoed != request_id:
            return
        if not future.done():
            future.set_result(event)

    # -- switchboard -> browser -----------------------------------------------------------------

    async def agent_event(self, event: dict[str, Any]) -> None:
        """A push for this agent (``agent.event``): tracked, masked, forwarded."""
        body = event.get("event")
        if not isinstance(body, dict) or self.agent_id is None:
            return
        body = dict(body)
        kind = body.get("kind")
        call_id = body.get("call_id")
        if kind in ("offer", "connected") and isinstance(call_id, str):
            tenant = body.get("tenant")
            if isinstance(tenant, str):
                self.calls[call_id] = tenant
        elif kind == "ended" and isinstance(call_id, str):
            self.calls.pop(call_id, None)
        await self._mask_caller(body, self.calls.get(call_id) if isinstance(call_id, str) else None)
        await self.send_json({"type": "event", "event": body})

    async def _snapshot_out(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        snapshot = dict(snapshot)
        call = snapshot.get("call")
        self.calls = {}
        if isinstance(call, dict):
            call = dict(call)
            call_id, tenant = call.get("call_id"), call.get("tenant")
            if isinstance(call_id, str) and isinstance(tenant, str):
                self.calls[call_id] = tenant
            await self._mask_caller(call, tenant if isinstance(tenant, str) else None)
            snapshot["call"] = call
        return snapshot

    async def _mask_caller(self, body: dict[str, Any], tenant: str | None) -> None:
        caller = body.get("caller")
        if not isinstance(caller, str) or not caller or tenant is None:
            return
        now = time.monotonic()
        cached = self.mask_cache.get(tenant)
        if cached is None or cached[0] < now:
            cached = (now + MASK_TTL_S, await _masked(tenant))
            self.mask_cache[tenant] = cached
        if cached[1]:
            body["caller"] = mask_number(caller)
            body["caller_masked"] = True
