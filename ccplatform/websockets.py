"""Websocket plumbing: the tenant of a connection comes from its Host header.

Consumers read ``scope["tenant"]`` and enter ``schema_context`` explicitly inside the sync
functions that touch the database; nothing relies on a schema left set on a connection.
Later issues add the agent console, wallboards and portal dashboards here.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.urls import path

from agentdesk.consumers import AgentConsumer
from routing.consumers import LiveConsumer, PortalLiveConsumer


def _host_of(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return value.decode("latin-1").split(":")[0].lower()
    return ""


@database_sync_to_async
def _tenant_for_host(host: str):  # type: ignore[no-untyped-def]
    from django_tenants.utils import remove_www, schema_context

    from tenants.models import Domain

    with schema_context("public"):
        domain = Domain.objects.select_related("tenant").filter(domain=remove_www(host)).first()
        return domain.tenant if domain else None


class TenantWebsocketMiddleware:
    """Puts the tenant of the Host into ``scope["tenant"]``; unknown hosts are refused."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        tenant = await _tenant_for_host(_host_of(scope))
        if tenant is None:
            await send({"type": "websocket.close", "code": 4404})
            return None
        return await self.inner({**scope, "tenant": tenant}, receive, send)


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Liveness of the realtime path: echoes the tenant and a sequence number."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.seq = 0
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.seq += 1
        await self.send_json(
            {"seq": self.seq, "tenant": self.scope["tenant"].schema_name, "echo": content}
        )


websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/live/", LiveConsumer.as_asgi()),  # the provider's wallboard
    path("ws/portal/live/", PortalLiveConsumer.as_asgi()),  # a client's live page
    path("ws/agent/", AgentConsumer.as_asgi()),  # the agents' console (agentdesk)
]
