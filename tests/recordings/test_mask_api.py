"""The mask API: POST /api/calls/<call_id>/recording/mask|unmask on the provider host."""

from __future__ import annotations

import time

import pytest
from django_tenants.utils import schema_context

from recordings.actions import do_register_recording
from recordings.models import Recording
from tenants.models import AuditEvent
from tests.conftest import A_HOST, PROVIDER_HOST, site
from tests.recordings.conftest import T0_MS, switch_path


@pytest.fixture
def live(cast, policy):  # type: ignore[no-untyped-def]
    """Alpha's call live-1 being recorded; agent ag-1 certified for alpha."""
    from routing.models import Agent, Certification

    do_register_recording(
        "alpha",
        {"call_id": "live-1", "path": switch_path("alpha", "live-1"), "started_ms": T0_MS},
    )
    agent = Agent.objects.create(user=cast.agent, agent_id="ag-1", endpoint="user/1001")
    Certification.objects.create(agent=agent, tenant=cast.a, skills={})
    return agent


def _recording() -> Recording:
    with schema_context("alpha"):
        return Recording.objects.get(call_id="live-1")


def test_agent_masks_and_unmasks(cast, live, switch):  # type: ignore[no-untyped-def]
    agent = site(PROVIDER_HOST, cast.agent)
    before = int(time.time() * 1000)
    response = agent.post("/api/calls/live-1/recording/mask")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["masked"] is True and body["call_id"] == "live-1"
    [command] = switch.received
    assert command["type"] == "switchboard.command"
    assert (command["command"], command["call_id"], command["agent_id"]) == (
        "mask",
        "live-1",
        "ag-1",
    )
    assert len(command["request_id"]) >= 16
    rec = _recording()
    assert rec.is_masked and rec.masked_intervals[0]["start_ms"] >= before
    event = AuditEvent.objects.get(action="recording.masked")
    assert event.actor_id == cast.agent.pk and event.tenant_id == cast.a.pk
    assert event.details["agent_id"] == "ag-1" and event.details["outcome"] == "ok"

    response = agent.post("/api/calls/live-1/recording/unmask")
    assert response.status_code == 200 and response.json()["masked"] is False
    assert switch.received[-1]["command"] == "unmask"
    rec = _recording()
    assert not rec.is_masked and rec.masked_intervals[0]["end_ms"] is not None
    assert AuditEvent.objects.filter(action="recording.unmasked").count() == 1


def test_supervisor_masks_without_an_agent_record(cast, live, switch):  # type: ignore[no-untyped-def]
    response = site(PROVIDER_HOST, cast.supervisor).post("/api/calls/live-1/recording/mask")
    assert response.status_code == 200
    assert switch.received[0]["agent_id"] is None
    assert _recording().is_masked


def test_timeout_is_504_and_audited(cast, live, switch, monkeypatch):  # type: ignore[no-untyped-def]
    from recordings import switchboard

    monkeypatch.setattr(switchboard, "REPLY_TIMEOUT_S", 0.3)
    switch.mode = "silent"
    started = time.monotonic()
    response = site(PROVIDER_HOST, cast.agent).post("/api/calls/live-1/recording/mask")
    assert 0.25 <= time.monotonic() - started < 2.0
    assert response.status_code == 504
    body = response.json()
    assert body["ok"] is False and "did not answer within 0.3 s" in body["message"]
    assert not _recording().is_masked
    event = AuditEvent.objects.get(action="recording.mask_failed")
    assert event.details["outcome"] == "timeout"


def test_default_timeout_is_two_seconds(cast, live, switch):  # type: ignore[no-untyped-def]
    switch.mode = "silent"
    started = time.monotonic()
    response = site(PROVIDER_HOST, cast.supervisor).post("/api/calls/live-1/recording/unmask")
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and 1.9 <= elapsed < 4.0
    assert "within 2 s" in response.json()["message"]


def test_switchboard_refusal_is_409(cast, live, switch):  # type: ignore[no-untyped-def]
    switch.mode = "refuse"
    response = site(PROVIDER_HOST, cast.agent).post("/api/calls/live-1/recording/mask")
    assert response.status_code == 409
    assert "not on the call" in response.json()["message"]
    assert not _recording().is_masked
    assert AuditEvent.objects.get(action="recording.mask_failed").details["outcome"] == "refused"


def test_who_may_not_mask(cast, live, switch):  # type: ignore[no-untyped-def]
    url = "/api/calls/live-1/recording/mask"
    # Unknown call, a call of a client the agent is not certified for, finance, client users.
    assert site(PROVIDER_HOST, cast.agent).post("/api/calls/nope/recording/mask").status_code == 404
    do_register_recording(
        "beta", {"call_id": "live-b", "path": switch_path("beta", "live-b"), "started_ms": T0_MS}
    )
    assert (
        site(PROVIDER_HOST, cast.agent).post("/api/calls/live-b/recording/mask").status_code == 404
    )
    assert site(PROVIDER_HOST, cast.finance).post(url).status_code == 404
    assert site(PROVIDER_HOST, cast.a_admin).post(url).status_code == 404
    assert site(A_HOST, cast.a_admin).post(url).status_code == 404  # not on a client's site
    assert site(PROVIDER_HOST).post(url).status_code in (401, 302)
    assert site(PROVIDER_HOST, cast.agent).get(url).status_code == 405
    assert switch.received == []


def test_csrf_is_required(cast, live, switch):  # type: ignore[no-untyped-def]
    from django.test import Client as HttpClient

    browser = HttpClient(HTTP_HOST=PROVIDER_HOST, enforce_csrf_checks=True)
    browser.force_login(cast.agent, backend="django.contrib.auth.backends.ModelBackend")
    assert browser.post("/api/calls/live-1/recording/mask").status_code == 403
    browser.get("/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post("/api/calls/live-1/recording/mask", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_an_ended_recording_cannot_be_masked(cast, live, switch):  # type: ignore[no-untyped-def]
    with schema_context("alpha"):
        Recording.objects.filter(call_id="live-1").update(status="missing")
    response = site(PROVIDER_HOST, cast.agent).post("/api/calls/live-1/recording/mask")
    assert response.status_code == 409 and switch.received == []
