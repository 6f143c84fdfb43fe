"""Websocket consumers of the routing app: the provider's live wallboard, and a client's.

``/ws/live/`` on the provider's host: provider admins and supervisors get the latest snapshot
of the ``provider`` stream (routing/live.py, stored by routing/live_publish.py) on connect,
then every delta and heartbeat the switchboard publishes, and the snapshot again when they send
``{"type": "resync"}`` (a sequence gap, a new epoch). Close codes: 4401 not signed in,
4403 signed in without a wallboard role, 4404 not the provider's host.

``/ws/portal/live/`` on a client's own domain (:class:`PortalLiveConsumer`): the users of that
client company (admin or viewer) get its ``tenant:<schema>`` stream only, the tenant coming
from the Host, never from the browser; so a user of A cannot reach B's stream (on B's domain
they have no role: 4403; on the provider's host: 4404). The publisher sends heartbeats on the
provider stream only, so this consumer sends its own every :data:`PORTAL_HEARTBEAT_S` with
the stream's stored ``seq`` (``now`` null: it is not the switch's clock): a client behind it
missed a delta and resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ccplatform.ws_access import accept_signed_in
from routing.live import PROVIDER_STREAM
from routing.live_publish import group_name, load_snapshot

__all__ = ["LIVE_ROLES", "LiveConsumer", "PortalLiveConsumer", "empty_snapshot", "tenant_stream"]

log = logging.getLogger(__name__)

LIVE_ROLES = ("provider_admin", "supervisor")
PORTAL_LIVE_ROLES = ("client_admin", "client_viewer")
PORTAL_HEARTBEAT_S = 5.0


def tenant_stream(schema_name: str) -> str:
    """The live stream of one client company (routing/live.py names tenants by schema)."""
    return f"tenant:{schema_name}"


def empty_snapshot(stream: str) -> dict[str, Any]:
    """What a client gets before the switchboard ever published: nothing, at seq 0."""
    return {
        "kind": "snapshot",
        "stream": stream,
        "epoch": None,
        "seq": 0,
        "now": None,
        "day": None,
        "queues": {},
        "tenants": {},
        "agents": {},
        "totals": None,
    }


@database_sync_to_async
def _provider_role(user: Any) -> str | None:
    from django_tenants.utils import schema_context

    from tenants.access import provider_role

    with schema_context("public"):
        return provider_role(user)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Forwards one live stream to a wallboard; see the module docstring."""

    stream = PROVIDER_STREAM

    async def connect(self) -> None:
        self.group: str | None = None
        self.epoch: str | None = None
        self.seq = 0
        user = await accept_signed_in(self, provider_site=True)
        if user is None:
            return
        if await _provider_role(user) not in LIVE_ROLES:
            await self.close(code=4403)
            return
        self.group = group_name(self.stream)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.group is None:
            return
        if isinstance(content, dict) and content.get("type") == "resync":
            await self.send_snapshot()

    async def send_snapshot(self) -> None:
        snapshot = await load_snapshot(self.stream) or empty_snapshot(self.stream)
        self.epoch, self.seq = snapshot.get("epoch"), int(snapshot.get("seq") or 0)
        await self.send_json(snapshot)

    async def live_message(self, event: dict[str, Any]) -> None:
        """A delta or heartbeat from the publisher (group message type ``live.message``)."""
        message = event.get("message")
        if not isinstance(message, dict) or self.group is None:
            return
        if message.get("kind") == "delta":
            seq = int(message.get("seq") or 0)
            if message.get("epoch") == self.epoch and seq <= self.seq:
                return  # the snapshot this client got already holds it
            self.epoch, self.seq = message.get("epoch"), seq
        await self.send_json(message)


@database_sync_to_async
def _client_role(user: Any, tenant: Any) -> str | None:
    from django_tenants.utils import schema_context

    from tenants.access import client_role

    with schema_context("public"):
        return client_role(user, tenant)


@database_sync_to_async
def _stored_position(stream: str) -> tuple[str | None, int]:
    from django_tenants.utils import schema_context

    from routing.models import LiveSnapshot

    with schema_context("public"):
        row = LiveSnapshot.objects.filter(stream=stream).values_list("epoch", "seq").first()
    return (row[0], int(row[1])) if row else (None, 0)


class PortalLiveConsumer(LiveConsumer):
    """One client company's live stream on its own domain; see the module docstring."""

    heartbeat_s = PORTAL_HEARTBEAT_S

    async def connect(self) -> None:
        self.group = None
        self.epoch = None
        self.seq = 0
        self._beats: asyncio.Task[None] | None = None
        user = await accept_signed_in(self, provider_site=False)
        if user is None:
            return
        tenant = self.scope["tenant"]
        if await _client_role(user, tenant) not in PORTAL_LIVE_ROLES:
            await self.close(code=4403)
            return
        self.stream = tenant_stream(tenant.schema_name)
        self.group = group_name(self.stream)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_snapshot()
        self._beats = asyncio.ensure_future(self._heartbeats())

    async def disconnect(self, code: int) -> None:
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
            self._beats = None
        await super().disconnect(code)

    async def _heartbeats(self) -> None:
        while self.group is not None:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.send_heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away for a moment: the next beat tries again
                log.warning("live page heartbeat of %s failed", self.stream, exc_info=True)

    async def send_heartbeat(self) -> None:
        epoch, seq = await _stored_position(self.stream)
        await self.send_json(
            {"kind": "heartbeat", "stream": self.stream, "epoch": epoch, "seq": seq, "now": None}
        )

    async def live_message(self, event: dict[str, Any]) -> None:
        message = event.get("message")
        # Only this tenant's group is joined; checking the stream too costs nothing.
        if isinstance(message, dict) and message.get("stream") == self.stream:
            await super().live_message(event)
