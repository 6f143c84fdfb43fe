"""End to end in headless Chromium: the provider's live wallboard.

The test plays the switchboard: it drives a routing engine, feeds a LiveBoard and publishes
over the PostgreSQL channel layer to the running Daphne (another process), exactly as the
switchboard does. The page must show the numbers change, resync after a lost delta, and mark
itself stale while its socket is down.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from routing.engine.model import (
    AgentLogin,
    AgentProfile,
    AgentUpdated,
    CallArrived,
    Event,
    OfferAnswered,
    QueueConfig,
    QueueUpdated,
    TenantConfig,
    TenantUpdated,
)
from routing.engine.router import Engine
from routing.live import LiveBoard
from routing.live_publish import publish
from tests.browser.conftest import off_loop, open_live_board, shot, text_of
from tests.browser.test_console_and_portal import sign_in

pytestmark = pytest.mark.browser


class Switchboard:
    """An engine, a board and a publisher on their own event loop (a thread), talking to the
    test database's channel layer like the real switchboard process would."""

    def __init__(self) -> None:
        from channels_postgres.core import PostgresChannelLayer

        db = connection.settings_dict
        self.layer_config = {
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
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = PostgresChannelLayer(**self.layer_config)
        self.engine = Engine()
        self.board = LiveBoard("UTC", epoch=f"browser-{time.time()}")
        self.board.set_names(tenants={"alpha": "Alpha Retail"}, queues={"alpha-main": "Main line"})

    def configure(self, now: float, *tenants: str) -> None:
        """Each tenant with its main queue, then agent olha, certified for alpha."""
        for tenant in tenants:
            self.feed(TenantUpdated(now, TenantConfig(tenant)))
            self.feed(
                QueueUpdated(now, QueueConfig(f"{tenant}-main", tenant, announce_interval_s=0.0))
            )
        self.feed(AgentUpdated(now, AgentProfile("olha", {"alpha": {}})))

    def lose_a_delta(self, lost: Event, then: Event) -> dict[str, int]:
        """Feed ``lost`` and take its delta without sending it (lost on the way), then feed
        ``then`` and publish: the stream skips a number."""
        self.feed(lost)
        assert self.board.delta(time.time()) is not None  # consumed, never sent
        self.feed(then)
        return off_loop(self.publish)

    def feed(self, ev: Event) -> list[Any]:
        out = self.engine.handle(ev)
        self.board.apply(ev, out)
        return out

    def publish(self) -> dict[str, int]:
        future = asyncio.run_coroutine_threadsafe(
            publish(self.board, time.time(), layer=self.layer), self.loop
        )
        return future.result(timeout=30)

    def close(self) -> None:
        import channels_postgres.db

        async def close_pool() -> None:
            if channels_postgres.db.connection_pool is not None:
                await channels_postgres.db.connection_pool.close()
                channels_postgres.db.connection_pool = None

        asyncio.run_coroutine_threadsafe(close_pool(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def switchboard(live_port, django_db_blocker) -> Iterator[Switchboard]:  # type: ignore[no-untyped-def]
    def start() -> Switchboard:
        with django_db_blocker.unblock():
            return Switchboard()

    sb = off_loop(start)
    blocker = django_db_blocker.unblock()
    blocker.__enter__()
    try:
        yield sb
    finally:
        blocker.__exit__(None, None, None)

        def stop() -> None:
            from routing.models import LiveSnapshot

            sb.close()
            with django_db_blocker.unblock():
                LiveSnapshot.objects.all().delete()
            connection.close()

        off_loop(stop)


def test_wallboard_shows_live_numbers_and_resyncs_after_a_lost_delta(page, live_port, switchboard):  # type: ignore[no-untyped-def]
    sb = switchboard
    sb.configure(time.time(), "alpha")
    assert off_loop(sb.publish)["provider"] == 1

    base = f"http://localhost:{live_port}"
    open_live_board(
        page,
        base,
        "supervisor@provider.test",
        "nav.mainnav >> text=Wallboard",
        "/wallboard/",
        "#wallboard",
    )
    assert "Alpha Retail" in text_of(page, "#wb-tenants tbody")

    # Two callers queue: the page shows them, and their wait ticking.
    sb.feed(CallArrived(time.time() - 3, "c1", "alpha-main"))
    sb.feed(CallArrived(time.time(), "c2", "alpha-main"))
    off_loop(sb.publish)
    page.wait_for_selector("#wallboard[data-seq='2']")
    assert text_of(page, "#wb-waiting") == "2"
    assert text_of(page, "#wb-queues tr[data-queue='alpha-main'] [data-field=waiting]") == "2"
    page.wait_for_function(
        "document.querySelector('#wb-longest').textContent >= '0:04'"
    )  # ticks locally between messages

    # The agent logs in and answers: a delta the page applies in order.
    sb.feed(AgentLogin(time.time(), "olha"))
    sb.feed(OfferAnswered(time.time(), "c1", "olha"))
    off_loop(sb.publish)
    page.wait_for_selector("#wallboard[data-seq='3']")
    assert text_of(page, "#wb-waiting") == "1"
    assert text_of(page, "#wb-answered") == "1"
    assert text_of(page, "#wb-sl") == "100%"
    assert "On a call: 1" in text_of(page, "#wb-queues tr[data-queue='alpha-main']")
    assert page.get_attribute("#wallboard", "data-resyncs") == "0"
    shot(page, "wallboard-live")

    # A delta is lost on the way (seq 4 never reaches the page); the next one (5) shows the
    # gap: the page asks for the snapshot and ends up with both changes.
    lost, then = (
        CallArrived(time.time(), "c3", "alpha-main"),
        CallArrived(time.time(), "c4", "alpha-main"),
    )
    assert sb.lose_a_delta(lost, then)["provider"] == 5
    page.wait_for_selector("#wallboard[data-seq='5'][data-resyncs='1']")
    assert text_of(page, "#wb-waiting") == "3"
    assert page.get_attribute("#wallboard", "data-stale") == "0"

    # The socket drops: stale at once, then back by itself with a fresh snapshot.
    page.evaluate("window.ccpWallboard.dropConnection()")
    page.wait_for_selector("#wallboard[data-stale='1']")
    assert "reconnecting" in text_of(page, "#wb-status")
    sb.feed(CallArrived(time.time(), "c5", "alpha-main"))
    off_loop(sb.publish)  # while the page is away: it gets this in the next snapshot
    page.wait_for_selector("#wallboard[data-stale='0'][data-seq='6']", timeout=20_000)
    assert text_of(page, "#wb-waiting") == "4"
    assert text_of(page, "#wb-status") == "Live"
    shot(page, "wallboard-after-reconnect")


def test_an_agent_cannot_open_the_wallboard(page, live_port):  # type: ignore[no-untyped-def]
    base = f"http://localhost:{live_port}"
    sign_in(page, base, "agent@provider.test")
    assert page.locator("nav.mainnav >> text=Wallboard").count() == 0
    response = page.goto(f"{base}/wallboard/")
    assert response is not None and response.status == 404
