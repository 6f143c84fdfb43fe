"""Asking the switchboard to mask or unmask a live recording, over the Channels layer.

The request goes to group ``switchboard.control`` as
``{"type": "switchboard.command", "command": "mask" | "unmask", "call_id", "agent_id",
"request_id"}``; the switchboard answers on group ``switchboard.reply.<request_id>`` with
``{"type": "switchboard.reply", "ok": bool, "message": str}``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from channels.layers import get_channel_layer

CONTROL_GROUP = "switchboard.control"
REPLY_GROUP_PREFIX = "switchboard.reply."
#: Seconds the API waits for the switchboard's answer.
REPLY_TIMEOUT_S = 2.0
COMMANDS = ("mask", "unmask")


class SwitchboardUnavailable(Exception):
    """No channel layer is configured."""


class SwitchboardTimeout(Exception):
    """The switchboard did not answer in time."""


@dataclass(frozen=True)
class Reply:
    ok: bool
    message: str


async def send_command(
    command: str,
    call_id: str,
    agent_id: str | None,
    *,
    timeout: float | None = None,
) -> Reply:
    """Send one command and wait for its reply (raises :class:`SwitchboardTimeout`)."""
    timeout = REPLY_TIMEOUT_S if timeout is None else timeout
    if command not in COMMANDS:
        raise ValueError(f"unknown switchboard command {command!r}")
    layer = get_channel_layer()
    if layer is None:
        raise SwitchboardUnavailable("no channel layer")
    request_id = uuid.uuid4().hex
    group = REPLY_GROUP_PREFIX + request_id
    channel = await layer.new_channel()
    # Listen before asking, so no answer can come before anyone hears it.
    await layer.group_add(group, channel)
    try:
        await layer.group_send(
            CONTROL_GROUP,
            {
                "type": "switchboard.command",
                "command": command,
                "call_id": call_id,
                "agent_id": agent_id,
                "request_id": request_id,
            },
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SwitchboardTimeout(f"no reply to {command} of call {call_id}")
            try:
                message = await asyncio.wait_for(layer.receive(channel), remaining)
            except TimeoutError:
                raise SwitchboardTimeout(f"no reply to {command} of call {call_id}") from None
            if message.get("type") == "switchboard.reply":
                return Reply(bool(message.get("ok")), str(message.get("message") or ""))
    finally:
        await layer.group_discard(group, channel)
