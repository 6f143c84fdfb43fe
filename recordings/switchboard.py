"""Asking the switchboard to mask, unmask or start a live recording, over the Channels layer.

The request goes to group ``switchboard.control`` as
``{"type": "switchboard.command", "command": "mask" | "unmask" | "record", "call_id", "agent_id",
"request_id"}``; the switchboard answers on group ``switchboard.reply.<request_id>`` with
``{"type": "switchboard.reply", "ok": bool, "message": str}`` (a ``request_id`` in the reply,
if the switchboard adds one, must be the request's).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass

from channels.layers import get_channel_layer

CONTROL_GROUP = "switchboard.control"
REPLY_GROUP_PREFIX = "switchboard.reply."
#: Seconds the API waits for the switchboard's answer.
REPLY_TIMEOUT_S = 2.0
COMMANDS = ("mask", "unmask", "record")


class SwitchboardUnavailable(Exception):
    """No channel layer is configured."""


class SwitchboardTimeout(Exception):
    """The switchboard did not answer in time."""


@dataclass(frozen=True)
class Reply:
    ok: bool
    message: str


#: Idle reply channels kept per (layer, event loop), for reuse.
_idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _idle_channels(layer: object) -> list[str]:
    loop = asyncio.get_running_loop()
    return _idle.setdefault(loop, {}).setdefault(id(layer), [])


async def send_command(
    command: str,
    call_id: str,
    agent_id: str | None,
    *,
    timeout: float | None = None,
) -> Reply:
    """Send one command and wait for its reply (raises :class:`SwitchboardTimeout`).

    Reply channels are reused, one request at a time each: the PostgreSQL layer holds a
    database advisory lock for every channel it has received on, for the life of the
    process, so a new channel per request would pile up locks. A channel whose request timed
    out is dropped (its late answer must not reach the next request).
    """
    timeout = REPLY_TIMEOUT_S if timeout is None else timeout
    if command not in COMMANDS:
        raise ValueError(f"unknown switchboard command {command!r}")
    layer = get_channel_layer()
    if layer is None:
        raise SwitchboardUnavailable("no channel layer")
    request_id = uuid.uuid4().hex
    group = REPLY_GROUP_PREFIX + request_id
    idle = _idle_channels(layer)
    channel = idle.pop() if idle else await layer.new_channel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reusable = False
    # Listen before asking, so no answer can come before anyone hears it.
    await layer.group_add(group, channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        await _listening(layer, channel, receiving, deadline)
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
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SwitchboardTimeout(f"no reply to {command} of call {call_id}")
            try:
                message = await asyncio.wait_for(asyncio.shield(receiving), remaining)
            except TimeoutError:
                raise SwitchboardTimeout(f"no reply to {command} of call {call_id}") from None
            if message.get("type") == "switchboard.reply" and message.get("request_id") in (
                None,
                request_id,
            ):
                reusable = True
                return Reply(bool(message.get("ok")), str(message.get("message") or ""))
            receiving = asyncio.ensure_future(layer.receive(channel))
    finally:
        if not receiving.done():
            receiving.cancel()
        await layer.group_discard(group, channel)
        if reusable:
            idle.append(channel)


async def _listening(
    layer: object, channel: str, receiving: asyncio.Future[dict], deadline: float
) -> None:
    """Wait until the layer can hear a message on ``channel``.

    The PostgreSQL layer (channels_postgres) drops a notification that arrives on a channel
    before its ``receive()`` has taken the channel's advisory lock, and one that arrives while
    its listener is still starting (it reads the stored messages first, then LISTENs); the
    message then sits in the table unheard. A switchboard answers within milliseconds, so the
    command goes out only once both are in place. Other layers queue by channel: nothing to
    wait for.
    """
    locks = getattr(layer, "_channel_advisory_locks", None)
    if not isinstance(locks, dict):
        await asyncio.sleep(0)
        return
    loop = asyncio.get_running_loop()
    while loop.time() < deadline and not receiving.done():
        running = getattr(layer, "listener_task_is_running", None)
        if locks.get(channel) and running is not None and running.is_set():
            return
        await asyncio.sleep(0.005)
