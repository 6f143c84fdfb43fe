"""Start a recording on demand: POST /api/calls/<call_id>/recording/start on the provider host.

Same walls as the mask API (agents certified for the call's client, supervisors); the
switchboard applies the client's recording policy and its refusal comes back as 409 with the
reason. The recording row itself is registered from the switchboard's notice, as any other.
"""

from __future__ import annotations

import uuid

import pytest
from django_tenants.utils import schema_context

from recordings.actions import do_register_recording
from tenants.models import AuditEvent
from tests.conftest import A_HOST, PROVIDER_HOST, site
from tests.recordings.conftest import T0_MS, switch_path

URL = "/api/calls/live-1/recording/start"


def _call(schema: str, call_id: str, ended: bool = False) -> None:
    from calls.models import Call

    with schema_context(schema):
        Call.objects.create(
            call_id=call_id,
            a_leg_uuid=uuid.uuid4(),
            origin="direct",
            started_ms=T0_MS,
            answered_ms=T0_MS + 100,
            ended_ms=T0_MS + 60_000 if ended else None,
        )


@pytest.fixture
def live(cast):  # type: ignore[no-untyped-def]
    """Alpha's call live-1 going on, not recorded; agent ag-1 certified for alpha."""
    from routing.models import Agent, Certification

    _call("alpha", "live-1")
    agent = Agent.objects.create(user=cast.agent, agent_id="ag-1", endpoint="user/1001")
    Certification.objects.create(agent=agent, tenant=cast.a, skills={})
    return agent


def test_agent_starts_the_recording(cast, live, switch):  # type: ignore[no-untyped-def]
    response = site(PROVIDER_HOST, cast.agent).post(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["recording"] is True and body["call_id"] == "live-1"
    [command] = switch.received
    assert (command["command"], command["call_id"], command["agent_id"]) == (
        "record",
        "live-1",
        "ag-1",
    )
    event = AuditEvent.objects.get(action="recording.started")
    assert event.actor_id == cast.agent.pk and event.tenant_id == cast.a.pk
    assert event.details["outcome"] == "ok" and event.details["call_id"] == "live-1"


def test_the_policy_refusal_is_409_with_the_reason(cast, live, switch):  # type: ignore[no-untyped-def]
    switch.mode = "refuse"
    switch.message = "this client does not allow recording"
    response = site(PROVIDER_HOST, cast.agent).post(URL)
    assert response.status_code == 409
    assert response.json()["message"] == (
        "The switchboard refused: this client does not allow recording"
    )
    event = AuditEvent.objects.get(action="recording.start_failed")
    assert event.details["outcome"] == "refused"


def test_a_call_already_recorded_is_409_without_asking(cast, live, switch):  # type: ignore[no-untyped-def]
    do_register_recording(
        "alpha",
        {"call_id": "live-1", "path": switch_path("alpha", "live-1"), "started_ms": T0_MS},
    )
    response = site(PROVIDER_HOST, cast.agent).post(URL)
    assert response.status_code == 409
    assert "already being recorded" in response.json()["message"]
    assert switch.received == []


def test_timeout_is_504_and_audited(cast, live, switch, monkeypatch):  # type: ignore[no-untyped-def]
    from recordings import switchboard

    monkeypatch.setattr(switchboard, "REPLY_TIMEOUT_S", 0.3)
    switch.mode = "silent"
    response = site(PROVIDER_HOST, cast.agent).post(URL)
    assert response.status_code == 504
    assert "may not have started" in response.json()["message"]
    assert AuditEvent.objects.get(action="recording.start_failed").details["outcome"] == "timeout"


def test_who_may_not_start(cast, live, switch):  # type: ignore[no-untyped-def]
    agent = site(PROVIDER_HOST, cast.agent)
    assert agent.post("/api/calls/nope/recording/start").status_code == 404
    _call("beta", "live-b")  # a client the agent is not certified for
    assert agent.post("/api/calls/live-b/recording/start").status_code == 404
    _call("alpha", "over-1", ended=True)  # a call that has ended
    response = agent.post("/api/calls/over-1/recording/start")
    assert (
        response.status_code == 404 and "No call over-1 is going on" in response.json()["message"]
    )
    assert site(PROVIDER_HOST, cast.finance).post(URL).status_code == 404
    assert site(PROVIDER_HOST, cast.a_admin).post(URL).status_code == 404
    assert site(A_HOST, cast.a_admin).post(URL).status_code == 404
    assert site(PROVIDER_HOST).post(URL).status_code in (401, 302)
    assert agent.get(URL).status_code == 405
    assert switch.received == []
