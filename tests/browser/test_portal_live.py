"""End to end in headless Chromium: a client's live page on its own portal.

The test plays the switchboard as tests/browser/test_wallboard.py does (engine, board,
publisher over the PostgreSQL channel layer to the running Daphne). Alpha's admin sees
alpha's queue and numbers change, never beta's; a lost delta is caught up by a resync.
"""

from __future__ import annotations

import time

import pytest

from routing.engine.model import AgentLogin, CallArrived, OfferAnswered
from tests.browser.conftest import off_loop, open_live_board, shot, text_of
from tests.browser.test_console_and_portal import sign_in
from tests.browser.test_wallboard import switchboard  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_a_client_sees_its_own_queues_live(page, live_port, switchboard) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    sb = switchboard
    sb.board.set_names(queues={"beta-main": "Beta secret line"})
    now = time.time()
    sb.configure(now, "alpha", "beta")
    sb.feed(CallArrived(now, "b1", "beta-main"))  # beta's caller: never on alpha's page
    assert off_loop(sb.publish)["tenant:alpha"] == 1

    base = f"http://alpha.localhost:{live_port}"
    open_live_board(
        page, base, "admin@alpha.test", "nav.mainnav a[href='/live/']", "/live/", "#portal-live"
    )
    assert "Beta" not in text_of(page, "#portal-live")

    sb.feed(CallArrived(time.time() - 3, "a1", "alpha-main"))
    sb.feed(AgentLogin(time.time(), "olha"))
    off_loop(sb.publish)
    page.wait_for_selector("#portal-live[data-seq='2']")
    assert text_of(page, "#wb-queues tr[data-queue='alpha-main'] [data-field=waiting]") == "1"
    page.wait_for_function("document.querySelector('#wb-longest').textContent >= '0:04'")

    # A delta lost on the way: the next one shows the gap and the page reloads the snapshot.
    lost, then = (
        OfferAnswered(time.time(), "a1", "olha"),
        CallArrived(time.time(), "a2", "alpha-main"),
    )
    assert sb.lose_a_delta(lost, then)["tenant:alpha"] == 4
    page.wait_for_selector("#portal-live[data-seq='4'][data-resyncs='1']")
    assert text_of(page, "#wb-answered") == "1"
    assert text_of(page, "#wb-sl") == "100%"
    assert text_of(page, "#wb-agents li[data-state='on_call'] b") == "1"
    assert "Beta" not in text_of(page, "#portal-live")
    shot(page, "portal-live")


def test_another_clients_user_gets_no_live_page_here(page, live_port) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, f"http://beta.localhost:{live_port}", "admin@beta.test")
    page.goto(f"http://alpha.localhost:{live_port}/live/")
    # Signed in on beta's domain only: alpha's portal asks who this is.
    assert "/login/" in page.url
    assert page.locator("#portal-live").count() == 0
