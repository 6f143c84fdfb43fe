"""A fake switchboard on an in-memory channel layer.

Commands sent to ``switchboard.control`` are taken by the fake (as the switchboard's control
consumer would) and answered on ``switchboard.reply.<request_id>`` through the layer, after
``delay_s``; ``mode`` "silent" never answers (the API's timeout).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from channels.layers import InMemoryChannelLayer

from recordings.switchboard import CONTROL_GROUP, REPLY_GROUP_PREFIX


class FakeSwitchboardLayer(InMemoryChannelLayer):
    mode: ClassVar[str] = "ok"  # "ok", "refuse" or "silent"
    message: ClassVar[str] = ""
    delay_s: ClassVar[float] = 0.01
    received: ClassVar[list[dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if group != CONTROL_GROUP:
            await super().group_send(group, message)
            return
        type(self).received.append(dict(message))
        if self.mode == "silent":
            return
        asyncio.get_running_loop().create_task(self._answer(message))

    async def _answer(self, command: dict[str, Any]) -> None:
        await asyncio.sleep(self.delay_s)
        # Something else on the reply group first: the API waits for the reply itself.
        await super().group_send(
            REPLY_GROUP_PREFIX + command["request_id"], {"type": "switchboard.noise"}
        )
        await super().group_send(
            REPLY_GROUP_PREFIX + command["request_id"],
            {
                "type": "switchboard.reply",
                "ok": self.mode == "ok",
                "message": self.message
                or ("done" if self.mode == "ok" else "this agent is not on the call"),
            },
        )
