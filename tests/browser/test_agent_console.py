"""End to end in headless Chromium: the agents' call console (/agent/, /ws/agent/).

The test plays the switchboard: on its own event loop (a thread) it listens on the
``switchboard.control`` group of the PostgreSQL channel layer, answers every command on the
reply group and pushes events to ``agent.<agent_id>``, as the switchboard process does, while
the page talks to the running Daphne (another process).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from tests.browser.conftest import off_loop, shot
from tests.browser.test_console_and_portal import sign_in

pytestmark = pytest.mark.browser

CONTROL_GROUP = "switchboard.control"


class FakeSwitchboard:
    """Answers console commands and pushes events over the test database's channel layer."""

    def __init__(self) -> None:
        from channels_postgres.core import PostgresChannelLayer

        db = connection.settings_dict
        config = {
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
        self.layer = PostgresChannelLayer(**config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.seen: list[dict[str, Any]] = []
        self.silent = False
        #: command -> the message the switchboard refuses it with (``ok`` false)
        self.refuse: dict[str, str] = {}
        self.seq = 0
        self.snapshot: dict[str, Any] = {"state": "logged_out", "reason": None, "call": None}
        self.task = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)

    async def _serve(self) -> None:
        channel = await self.layer.new_channel()
        await self.layer.group_add(CONTROL_GROUP, channel)
        while True:
            message = await self.layer.receive(channel)
            self.seen.append(message)
            if self.silent:
                continue
            reply: dict[str, Any] = {"ok": True, "message": ""}
            command = message.get("command")
            if command in self.refuse:
                reply = {"ok": False, "message": self.refuse[command]}
            if command == "snapshot":
                reply["snapshot"] = {**self.snapshot, "seq": self.seq}
            await self.layer.group_send(
                f"switchboard.reply.{message['request_id']}",
                {"type": "switchboard.reply", **reply},
            )
            # Like the real switchboard: a hold is confirmed by a push as well.
            if command in ("hold", "unhold") and reply["ok"]:
                await self._push(
                    message["agent_id"],
                    {"kind": "hold", "call_id": message["call_id"], "on": command == "hold"},
                )

    async def _push(self, agent_id: str, event: dict[str, Any], skip: int = 0) -> None:
        self.seq += 1 + skip
        await self.layer.group_send(
            f"agent.{agent_id}", {"type": "agent.event", "event": {**event, "seq": self.seq}}
        )

    def push(self, agent_id: str, event: dict[str, Any], skip: int = 0) -> None:
        asyncio.run_coroutine_threadsafe(self._push(agent_id, event, skip), self.loop).result(30)

    def wait_for(self, command: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.seen:
                if message.get("command") == command:
                    return message
            time.sleep(0.05)
        raise AssertionError(f"the switchboard never got {command!r}: {self.seen}")

    def commands(self) -> list[str]:
        """The commands received so far, in order, without the page's snapshot requests."""
        return [m["command"] for m in list(self.seen) if m.get("command") != "snapshot"]

    def close(self) -> None:
        import channels_postgres.db

        self.task.cancel()

        async def close_pool() -> None:
            if channels_postgres.db.connection_pool is not None:
                await channels_postgres.db.connection_pool.close()
                channels_postgres.db.connection_pool = None

        asyncio.run_coroutine_threadsafe(close_pool(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _setup_agent() -> None:
    from routing.models import Agent, Certification, Queue
    from tenants.models import Client, User

    alpha = Client.objects.get(schema_name="alpha")
    agent = Agent.objects.create(
        user=User.objects.get(email="agent@provider.test"), agent_id="olha", endpoint="user/1001"
    )
    Certification.objects.create(agent=agent, tenant=alpha, skills={})
    Queue.objects.create(queue_id="alpha-main", tenant=alpha, name="Main line")
    Queue.objects.create(queue_id="alpha-vip", tenant=alpha, name="VIP line")


def _teardown_agent() -> None:
    from django_tenants.utils import schema_context

    from calls.models import Call
    from dispositions.models import CallDisposition
    from routing.models import Agent, Queue
    from tenants.models import User

    Agent.objects.filter(agent_id__in=["olha", "taras"]).delete()
    User.objects.filter(email="taras@provider.test").delete()
    Queue.objects.filter(queue_id__in=["alpha-main", "alpha-vip"]).delete()
    with schema_context("alpha"):
        CallDisposition.objects.all().delete()
        Call.objects.filter(call_id="call-77").delete()


@pytest.fixture
def switchboard(live_port, django_db_blocker) -> Iterator[FakeSwitchboard]:  # type: ignore[no-untyped-def]
    def start() -> FakeSwitchboard:
        with django_db_blocker.unblock():
            _teardown_agent()
            _setup_agent()
            return FakeSwitchboard()

    sb = off_loop(start)
    try:
        yield sb
    finally:

        def stop() -> None:
            sb.close()
            with django_db_blocker.unblock():
                _teardown_agent()
            connection.close()

        off_loop(stop)


def _record_call(django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    def record() -> None:
        from django_tenants.utils import schema_context

        from calls.models import Call

        with django_db_blocker.unblock(), schema_context("alpha"):
            Call.objects.create(
                call_id="call-77", a_leg_uuid=uuid.uuid4(), origin="direct", agent="olha"
            )
        connection.close()

    off_loop(record)


def _dispositions(django_db_blocker) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    def read() -> list[tuple[str, str, str, str]]:
        from django_tenants.utils import schema_context

        from dispositions.models import CallDisposition

        with django_db_blocker.unblock(), schema_context("alpha"):
            rows = list(CallDisposition.objects.values_list("call_id", "agent_id", "code", "note"))
        connection.close()
        return rows

    return off_loop(read)


def test_agent_takes_a_call_holds_it_and_wraps_up(page, live_port, switchboard, django_db_blocker):  # type: ignore[no-untyped-def]
    sb = switchboard
    base = f"http://localhost:{live_port}"
    sign_in(page, base, "agent@provider.test")
    page.click("nav.mainnav >> text=Call console")
    page.wait_for_url(f"{base}/agent/")
    page.wait_for_selector("#agent-console[data-connected='1'][data-snapshots='1']")
    assert sb.wait_for("snapshot")["agent_id"] == "olha"
    assert page.inner_text("#ad-state") == "Logged out"

    # Available: the command reaches the switchboard; its push changes the page.
    page.click("button[data-command=state][data-state=available]")
    assert sb.wait_for("state")["state"] == "available"
    sb.push("olha", {"kind": "state", "state": "available", "reason": None, "since": time.time()})
    page.wait_for_selector("#agent-console[data-state='available'][data-seq='1']")

    # An offer rings: the banner names the client (as the client context loads) and caller.
    sb.push("olha", {"kind": "state", "state": "offered", "reason": None, "since": time.time()})
    sb.push(
        "olha",
        {
            "kind": "offer",
            "call_id": "call-77",
            "tenant": "alpha",
            "tenant_name": "Alpha Retail",
            "caller": "+380441234567",
            "queue": "alpha-main",
        },
    )
    page.wait_for_selector("#ad-offer:not([hidden])")
    assert "Alpha Retail" in page.inner_text("#ad-offer")
    assert "+380441234567" in page.inner_text("#ad-offer")

    # Answered on the phone: the call card, with the contact and the VIP mark.
    sb.push(
        "olha",
        {
            "kind": "connected",
            "call_id": "call-77",
            "tenant": "alpha",
            "caller": "+380441234567",
            "queue": "alpha-main",
            "contact": {"name": "Ivan Petrenko", "vip": True},
        },
    )
    sb.push("olha", {"kind": "state", "state": "on_call", "reason": None, "since": time.time()})
    page.wait_for_selector("#agent-console[data-call='call-77'][data-seq='5']")
    assert page.is_hidden("#ad-offer")
    page.wait_for_selector("#ad-call-tenant:text-is('Alpha Retail')")
    assert page.inner_text("#ad-call-contact") == "Ivan Petrenko"
    assert page.is_visible("#ad-call-vip")
    page.wait_for_selector("#ad-transfer-target option[value='queue:alpha-vip']", state="attached")

    # Hold: the switchboard gets it for this agent and this call, and confirms with a push.
    page.click("#ad-hold")
    hold = sb.wait_for("hold")
    assert (hold["agent_id"], hold["call_id"]) == ("olha", "call-77")
    page.wait_for_selector("#ad-hold-flag:not([hidden])")
    page.wait_for_selector("#ad-unhold:not([hidden])")
    shot(page, "agent-console-on-hold")

    # A push is lost (seq 7 never comes): the page asks for a snapshot and catches up.
    sb.snapshot = {
        "state": "on_call",
        "reason": None,
        "call": {
            "kind": "connected",
            "call_id": "call-77",
            "tenant": "alpha",
            "caller": "+380441234567",
            "queue": "alpha-main",
            "contact": None,
        },
    }
    sb.push("olha", {"kind": "hold", "call_id": "call-77", "on": False}, skip=1)
    page.wait_for_selector("#agent-console[data-snapshots='2'][data-seq='8']")

    # The switchboard stops answering: the page says so.
    sb.silent = True
    page.click("#ad-hold")
    page.wait_for_selector("#agent-console[data-offline='1']", timeout=10_000)
    assert "Switchboard offline" in page.inner_text("#ad-status")
    sb.silent = False
    page.wait_for_selector("#agent-console[data-offline='0']", timeout=15_000)

    # The caller hangs up; wrap-up with a disposition once the call is recorded.
    _record_call(django_db_blocker)
    sb.push("olha", {"kind": "ended", "call_id": "call-77"})
    sb.push("olha", {"kind": "state", "state": "wrap_up", "reason": None, "since": time.time()})
    page.wait_for_selector("#ad-wrapup:not([hidden])")
    assert page.is_hidden("#ad-call")
    # A reload during wrap-up keeps the call to dispose of (the snapshot no longer names it).
    sb.snapshot = {"state": "wrap_up", "reason": None, "call": None}
    page.reload()
    page.wait_for_selector("#agent-console[data-snapshots='1'][data-state='wrap_up']")
    page.wait_for_selector("#ad-wrapup:not([hidden])")
    page.wait_for_selector("#ad-wrapup-call:has-text('Alpha Retail')")
    page.wait_for_selector("#ad-disposition option[value='sale']", state="attached")
    page.select_option("#ad-disposition", "sale")
    page.fill("#ad-note", "Ordered two cases")
    page.click("#ad-wrapup-done")
    done = sb.wait_for("wrap_up_done")
    assert (done["agent_id"], done["call_id"]) == ("olha", "call-77")
    assert _dispositions(django_db_blocker) == [("call-77", "olha", "sale", "Ordered two cases")]
    shot(page, "agent-console-wrapped-up")


def _add_colleague(django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """Another agent of Alpha Retail, by name: a target for a transfer to a named agent."""

    def add() -> None:
        from routing.models import Agent, Certification
        from tenants.models import Client, User

        with django_db_blocker.unblock():
            user = User.objects.create_user(
                email="taras@provider.test", password=None, full_name="Taras Bondar"
            )
            agent = Agent.objects.create(user=user, agent_id="taras", endpoint="user/1002")
            Certification.objects.create(
                agent=agent, tenant=Client.objects.get(schema_name="alpha"), skills={}
            )
        connection.close()

    off_loop(add)


def _card(**flags: Any) -> dict[str, Any]:
    """The call card the switchboard pushes (``Session.card("connected")``)."""
    return {
        "kind": "connected",
        "call_id": "call-88",
        "tenant": "alpha",
        "caller": "+380442220000",
        "queue": "alpha-main",
        "contact": None,
        "on_hold": False,
        "masked": False,
        "consulting": False,
        "recording": False,
        "transferred_by": None,
        "conference": False,
        **flags,
    }


def test_agent_records_transfers_and_holds_a_conference(  # type: ignore[no-untyped-def]
    page, live_port, switchboard, django_db_blocker
):
    sb = switchboard
    _add_colleague(django_db_blocker)
    base = f"http://localhost:{live_port}"
    sign_in(page, base, "agent@provider.test")
    page.goto(f"{base}/agent/")
    page.wait_for_selector("#agent-console[data-connected='1'][data-snapshots='1']")

    # A call another agent handed over: the card says who, by name.
    sb.push("olha", _card(transferred_by="taras"))
    sb.push("olha", {"kind": "state", "state": "on_call", "reason": None, "since": time.time()})
    page.wait_for_selector("#agent-console[data-call='call-88'][data-seq='2']")
    page.wait_for_selector("#ad-xfer-flag:text-is('Transferred by Taras Bondar')")
    assert page.is_visible("#ad-record") and page.inner_text("#ad-record") == "Record"
    for hidden in ("#ad-rec-flag", "#ad-conference", "#ad-leave", "#ad-conference-flag"):
        assert page.is_hidden(hidden), hidden

    # Record: the page sends it for this call; the flag waits for the switchboard's push.
    page.click("#ad-record")
    record = sb.wait_for("record")
    assert (record["agent_id"], record["call_id"]) == ("olha", "call-88")
    assert page.is_hidden("#ad-rec-flag")
    sb.push("olha", {"kind": "recording", "call_id": "call-88", "on": True})
    page.wait_for_selector("#ad-rec-flag:not([hidden])")
    assert page.inner_text("#ad-rec-flag") == "Recording"
    assert page.is_hidden("#ad-record")

    # Transfer to a named agent: the colleague is offered by name (not the agent herself);
    # the switchboard refuses and the agent reads why, still with the caller.
    page.wait_for_selector("#ad-transfer-target option[value='agent:taras']", state="attached")
    agents = page.eval_on_selector_all(
        "#ad-transfer-target optgroup[label='Agents'] option",
        "options => options.map(o => [o.value, o.textContent])",
    )
    assert agents == [["agent:taras", "Taras Bondar"]]
    sb.refuse["transfer"] = "taras cannot take this call: not logged in"
    page.select_option("#ad-transfer-target", "agent:taras")
    page.click("button[data-command=transfer]")
    transfer = sb.wait_for("transfer")
    assert (transfer["agent_id"], transfer["call_id"], transfer["to_agent"]) == (
        "olha",
        "call-88",
        "taras",
    )
    assert "queue_id" not in transfer
    page.wait_for_selector("#ad-feedback.bad:has-text('taras cannot take this call')")
    assert page.inner_text("#ad-feedback") == (
        "The switchboard refused: taras cannot take this call: not logged in"
    )
    assert page.is_visible("#ad-call")

    # Consulting the second line (warm escalation): Conference is offered beside Complete.
    page.click("button[data-command=escalate][data-mode=warm]")
    assert sb.wait_for("escalate")["mode"] == "warm"
    sb.push("olha", _card(transferred_by="taras", recording=True, consulting=True))
    page.wait_for_selector("#agent-console[data-seq='4']")
    page.wait_for_selector("#ad-conference:not([hidden])")
    assert page.inner_text("#ad-conference") == "Conference"
    assert page.is_visible("#ad-complete")
    assert page.is_hidden("#ad-leave") and page.is_hidden("#ad-conference-flag")
    shot(page, "agent-console-consulting")

    # The conference: the flag and Leave show; Conference and Complete go.
    page.click("#ad-conference")
    conference = sb.wait_for("conference")
    assert (conference["agent_id"], conference["call_id"]) == ("olha", "call-88")
    sb.push("olha", _card(transferred_by="taras", recording=True, conference=True))
    page.wait_for_selector("#ad-conference-flag:not([hidden])")
    assert page.inner_text("#ad-conference-flag") == "Conference"
    assert page.is_visible("#ad-leave") and page.inner_text("#ad-leave") == "Leave"
    assert page.is_hidden("#ad-conference") and page.is_hidden("#ad-complete")
    assert page.is_visible("#ad-rec-flag")
    shot(page, "agent-console-conference")

    # Leave: the caller stays with the second line; the agent's part of the call ends.
    page.click("#ad-leave")
    leave = sb.wait_for("leave_conference")
    assert (leave["agent_id"], leave["call_id"]) == ("olha", "call-88")
    sb.push("olha", {"kind": "ended", "call_id": "call-88"})
    page.wait_for_selector("#ad-call", state="hidden")
    assert sb.commands() == ["record", "transfer", "escalate", "conference", "leave_conference"]


def test_a_supervisor_has_no_call_console(page, live_port):  # type: ignore[no-untyped-def]
    base = f"http://localhost:{live_port}"
    sign_in(page, base, "supervisor@provider.test")
    assert page.locator("nav.mainnav >> text=Call console").count() == 0
    response = page.goto(f"{base}/agent/")
    assert response is not None and response.status == 404
