"""Websocket test helpers shared by the consumers' tests (wallboard, agent console)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from tests.conftest import PROVIDER_HOST


@sync_to_async
def session_for(email: str | None) -> str | None:
    """A logged-in session key for ``email`` (None: anonymous)."""
    if email is None:
        return None
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from tenants.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


async def open_ws(path: str, email: str | None, host: str = PROVIDER_HOST) -> WebsocketCommunicator:
    """A communicator on ``path`` as ``email`` would open it from ``host``."""
    from ccplatform.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    key = await session_for(email)
    if key is not None:
        headers.append((b"cookie", f"sessionid={key}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def closed_with(communicator: WebsocketCommunicator) -> int | None:
    """Connect and return the close code (accepted, then closed with a readable reason)."""
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message.get("code")


def postgres_layer_config() -> dict[str, object]:
    """The PostgreSQL channel layer's settings, pointed at the test database (after
    ``django_db_setup``)."""
    db = connection.settings_dict
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db["NAME"],
        "USER": db["USER"],
        "PASSWORD": db["PASSWORD"] or "",
        "HOST": db["HOST"],
        "PORT": db["PORT"],
        "TIME_ZONE": None,
        "OPTIONS": {},
        "PSYCOPG_OPTIONS": {"min_size": 1, "max_size": 2},
    }
