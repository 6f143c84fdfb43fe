"""A real server (Daphne, our ASGI app) on the test database, and a real headless Chromium.

Debian's chromium is launched by path: Playwright cannot download browsers here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "var" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_port(django_db_setup) -> Iterator[int]:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make browsers)"
        )
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SITE_PORT": str(port),
        "CCP_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "ccplatform.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if server.poll() is not None:
            raise RuntimeError(
                f"daphne exited: {server.stderr.read().decode() if server.stderr else ''}"
            )
        time.sleep(0.2)
    yield port
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(live_port):  # type: ignore[no-untyped-def]
    """Module-scoped: Playwright's sync API keeps an event loop running on this thread, where
    Django's ORM refuses to run, so it must not outlive the browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def off_loop(func):  # type: ignore[no-untyped-def]
    """Run ORM code from a browser test: in a worker thread, away from Playwright's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(func).result()


def text_of(page, selector: str) -> str:  # type: ignore[no-untyped-def]
    return page.inner_text(selector).strip()


def open_live_board(page, base: str, email: str, link: str, path: str, board: str) -> None:  # type: ignore[no-untyped-def]
    """Sign ``email`` in at ``base``, follow the menu's ``link`` to ``path`` and wait for the
    live board (the selector ``board``) to show the first snapshot: alpha's main line, nobody
    waiting yet."""
    from tests.browser.test_console_and_portal import sign_in

    sign_in(page, base, email)
    page.click(link)
    page.wait_for_url(f"{base}{path}")
    page.wait_for_selector(f"{board}[data-stale='0'][data-seq='1']")
    assert text_of(page, "#wb-waiting") == "0"
    assert "Main line" in text_of(page, "#wb-queues tbody")
