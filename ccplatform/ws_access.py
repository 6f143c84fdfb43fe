"""The opening checks every websocket consumer makes (agent console, wallboards, portal live)."""

from __future__ import annotations

from typing import Any


async def accept_signed_in(consumer: Any, *, provider_site: bool) -> Any:
    """Accept, then check the site and the user; the signed-in user, or None (closed).

    Accept first and close with a reason: a browser sees the close code only on an open socket
    (a refused handshake is a bare 1006), and the page stops retrying. 4404: not this kind of
    site (the provider console vs a client's domain); 4401: not signed in."""
    await consumer.accept()
    tenant = consumer.scope.get("tenant")
    if tenant is None or bool(tenant.is_provider) != provider_site:
        await consumer.close(code=4404)
        return None
    user = consumer.scope.get("user")
    if user is None or not user.is_authenticated:
        await consumer.close(code=4401)
        return None
    return user
