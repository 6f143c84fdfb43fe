"""Playing recordings: who may, Range requests, and the audit of every playback."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from recordings.actions import stored_file
from recordings.models import RecordingAccess
from tenants.models import AuditEvent
from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST
from tests.conftest import site as _site


def site(host: str, user=None):  # type: ignore[no-untyped-def]
    """A client of one site, in English (alpha's own default is Ukrainian)."""
    client = _site(host, user)
    client.cookies["ccp_language"] = "en"
    return client


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content)


def _accesses(recording) -> list[RecordingAccess]:  # type: ignore[no-untyped-def]
    with schema_context("alpha"):
        return list(RecordingAccess.objects.filter(recording=recording).order_by("id"))


def test_client_admin_plays_and_every_playback_is_recorded(cast, stored_recording):  # type: ignore[no-untyped-def]
    rec = stored_recording
    data = stored_file(rec).read_bytes()
    admin = site(A_HOST, cast.a_admin)
    page = admin.get("/recordings/")
    assert page.status_code == 200
    assert b"c-1" in page.content and f"?play={rec.pk}".encode() in page.content
    response = admin.get(f"/recordings/?play={rec.pk}", HTTP_USER_AGENT="TestPlayer/1.0")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data))
    assert "no-store" in response["Cache-Control"]
    assert _body(response) == data
    [access] = _accesses(rec)
    assert (access.kind, access.user_id, access.role, access.site) == (
        "play",
        cast.a_admin.pk,
        "client_admin",
        "portal",
    )
    assert access.user_agent == "TestPlayer/1.0" and access.ip_address == "127.0.0.1"
    event = AuditEvent.objects.get(action="recording.played")
    assert event.actor_id == cast.a_admin.pk and event.tenant_id == cast.a.pk
    assert event.object_id == str(rec.pk) and event.details["access_id"] == access.pk
    # A download is its own access, as an attachment.
    response = admin.get(f"/recordings/?play={rec.pk}&download=1")
    assert response["Content-Disposition"].startswith("attachment;")
    _body(response)
    assert [a.kind for a in _accesses(rec)] == ["play", "download"]
    assert AuditEvent.objects.filter(action="recording.downloaded").count() == 1


def test_range_requests(cast, stored_recording):  # type: ignore[no-untyped-def]
    rec = stored_recording
    data = stored_file(rec).read_bytes()
    size = len(data)
    admin = site(A_HOST, cast.a_admin)
    url = f"/recordings/?play={rec.pk}"
    response = admin.get(url, HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-99/{size}"
    assert response["Content-Length"] == "100"
    assert _body(response) == data[:100]
    response = admin.get(url, HTTP_RANGE="bytes=100-")
    assert response.status_code == 206 and _body(response) == data[100:]
    assert response["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    response = admin.get(url, HTTP_RANGE="bytes=-10")
    assert response.status_code == 206 and _body(response) == data[-10:]
    response = admin.get(url, HTTP_RANGE=f"bytes=10-{size + 500}")  # end clipped
    assert response.status_code == 206 and _body(response) == data[10:]
    response = admin.get(url, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{size}"
    response = admin.get(url, HTTP_RANGE="bytes=0-1,5-9")  # multiple ranges: whole file
    assert response.status_code == 200 and _body(response) == data
    # One playback from the start, its continuation not counted again; a new start is.
    accesses = _accesses(rec)
    assert [a.byte_range for a in accesses] == ["0-99", ""]
    assert AuditEvent.objects.filter(action="recording.played").count() == 2


def test_a_later_part_alone_is_still_audited(cast, stored_recording):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    response = admin.get(f"/recordings/?play={stored_recording.pk}", HTTP_RANGE="bytes=500-")
    assert response.status_code == 206
    assert [a.byte_range for a in _accesses(stored_recording)] != []
    assert AuditEvent.objects.filter(action="recording.played").count() == 1


def test_a_role_the_policy_does_not_name_gets_403_with_the_reason(cast, stored_recording):  # type: ignore[no-untyped-def]
    viewer = site(A_HOST, cast.a_viewer)
    page = viewer.get("/recordings/")
    assert page.status_code == 200  # the list, without players
    assert f"?play={stored_recording.pk}".encode() not in page.content
    assert b"may not play" in page.content
    response = viewer.get(f"/recordings/?play={stored_recording.pk}")
    assert response.status_code == 403
    assert b"Client viewer" in response.content and b"may not play" in response.content
    assert _accesses(stored_recording) == []
    assert AuditEvent.objects.filter(action="recording.play_refused").count() == 1
    assert not AuditEvent.objects.filter(action="recording.played").exists()


def test_outsiders_and_other_clients_never_reach_it(cast, stored_recording):  # type: ignore[no-untyped-def]
    url = f"/recordings/?play={stored_recording.pk}"
    # B's admin on A's site: the wall.
    assert site(A_HOST, cast.b_admin).get(url).status_code == 404
    # B's admin on B's own site, asking for A's id: looked up in B's schema only.
    response = site(B_HOST, cast.b_admin).get(url)
    assert response.status_code == 404
    assert b"c-1" not in site(B_HOST, cast.b_admin).get("/recordings/").content
    # Provider staff on a client's portal are outsiders there.
    assert site(A_HOST, cast.supervisor).get(url).status_code == 404
    # Nobody signed in: sign in first.
    assert site(A_HOST).get(url).status_code == 302
    assert _accesses(stored_recording) == []


def test_console_supervisor_plays_when_the_policy_names_the_role(cast, stored_recording):  # type: ignore[no-untyped-def]
    sup = site(PROVIDER_HOST, cast.supervisor)
    assert sup.get("/recordings/").status_code == 200
    base = f"/recordings/clients/{cast.a.pk}/"
    page = sup.get(base)
    assert page.status_code == 200 and b"c-1" in page.content
    response = sup.get(f"{base}?play={stored_recording.pk}", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206
    [access] = _accesses(stored_recording)
    assert (access.site, access.role) == ("console", "supervisor")
    event = AuditEvent.objects.get(action="recording.played")
    assert event.tenant_id == cast.a.pk and event.actor_id == cast.supervisor.pk
    # B's recordings list is B's: A's id there is nothing.
    assert (
        sup.get(f"/recordings/clients/{cast.b.pk}/?play={stored_recording.pk}").status_code == 404
    )


def test_console_roles_outside_the_policy(cast, stored_recording):  # type: ignore[no-untyped-def]
    base = f"/recordings/clients/{cast.a.pk}/?play={stored_recording.pk}"
    response = site(PROVIDER_HOST, cast.provider_admin).get(base)
    assert response.status_code == 403 and b"Provider admin" in response.content
    assert site(PROVIDER_HOST, cast.finance).get(base).status_code == 404
    assert site(PROVIDER_HOST, cast.finance).get("/recordings/").status_code == 404
    # An agent not certified for the client does not even see its list.
    assert site(PROVIDER_HOST, cast.agent).get(base).status_code == 404
    # Client users never reach the console.
    assert site(PROVIDER_HOST, cast.a_admin).get(base).status_code == 404
    assert _accesses(stored_recording) == []


@pytest.fixture
def cleared(cast, policy):  # type: ignore[no-untyped-def]
    """Alpha's call c-1 queued in a queue needing clearance 2; a certified agent holding 2."""
    from calls.models import Call
    from routing.models import Agent, Certification, Queue

    Queue.objects.create(queue_id="alpha-cards", tenant=cast.a, name="Cards", clearance=2)
    with schema_context("alpha"):
        Call.objects.filter(call_id="c-1").update(queue="alpha-cards")
    agent = Agent.objects.create(
        user=cast.agent, agent_id="ag-1", endpoint="user/1001", clearance=2
    )
    Certification.objects.create(agent=agent, tenant=cast.a, skills={})
    policy.recording_roles = ["supervisor", "agent"]
    policy.save()
    return agent


def test_provider_staff_need_the_clearance_the_client_requires(cast, stored_recording, cleared):  # type: ignore[no-untyped-def]
    url = f"/recordings/clients/{cast.a.pk}/?play={stored_recording.pk}"
    response = site(PROVIDER_HOST, cast.supervisor).get(url)
    assert response.status_code == 403
    assert b"clearance 2" in response.content
    response = site(PROVIDER_HOST, cast.agent).get(url)
    assert response.status_code == 200
    _body(response)
    cleared.clearance = 1
    cleared.save()
    assert site(PROVIDER_HOST, cast.agent).get(url).status_code == 403
    assert [a.user_id for a in _accesses(stored_recording)] == [cast.agent.pk]


def test_a_purged_recording_is_not_played(cast, stored_recording):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from recordings.actions import do_purge_recordings

    do_purge_recordings(cast.a, now=datetime(2030, 1, 1, tzinfo=UTC))
    response = site(A_HOST, cast.a_admin).get(f"/recordings/?play={stored_recording.pk}")
    assert response.status_code == 404
    assert _accesses(stored_recording) == []


def test_legal_hold_is_set_by_admins_and_audited(cast, stored_recording):  # type: ignore[no-untyped-def]
    from recordings.models import Recording

    admin = site(A_HOST, cast.a_admin)
    response = admin.post("/recordings/", {"recording": stored_recording.pk, "legal_hold": "1"})
    assert response.status_code == 302
    with schema_context("alpha"):
        assert Recording.objects.get(pk=stored_recording.pk).legal_hold
    event = AuditEvent.objects.get(action="recording.legal_hold_set")
    assert event.actor_id == cast.a_admin.pk and event.tenant_id == cast.a.pk
    # A viewer may not; nor may a supervisor on the console.
    viewer = site(A_HOST, cast.a_viewer)
    assert viewer.post("/recordings/", {"recording": stored_recording.pk}).status_code == 404
    console = site(PROVIDER_HOST, cast.supervisor)
    url = f"/recordings/clients/{cast.a.pk}/"
    assert console.post(url, {"recording": stored_recording.pk}).status_code == 404
    # The provider admin lifts it.
    response = site(PROVIDER_HOST, cast.provider_admin).post(
        url, {"recording": stored_recording.pk, "legal_hold": "0"}
    )
    assert response.status_code == 302
    with schema_context("alpha"):
        assert not Recording.objects.get(pk=stored_recording.pk).legal_hold
    assert AuditEvent.objects.filter(action="recording.legal_hold_cleared").count() == 1


def test_the_call_page_lists_who_listened(cast, stored_recording):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    _body(admin.get(f"/recordings/?play={stored_recording.pk}"))
    page = admin.get("/recordings/?call=c-1")
    assert b"Who listened" in page.content and b"admin@alpha.test" in page.content
    # Viewers see recordings' list, not who listened.
    assert b"Who listened" not in site(A_HOST, cast.a_viewer).get("/recordings/?call=c-1").content


def test_the_list_checks_clearance_in_few_queries(
    cast, stored_recording, cleared, django_assert_max_num_queries
):  # type: ignore[no-untyped-def]
    from recordings.actions import do_register_recording
    from tests.recordings.conftest import T0_MS, switch_path

    for n in range(30):
        do_register_recording(
            "alpha",
            {"call_id": f"x-{n}", "path": switch_path("alpha", f"x-{n}"), "started_ms": T0_MS},
        )
    sup = site(PROVIDER_HOST, cast.supervisor)
    with django_assert_max_num_queries(25):
        page = sup.get(f"/recordings/clients/{cast.a.pk}/")
    assert page.status_code == 200 and b"clearance 2" in page.content


def test_the_portal_speaks_the_company_language(cast, stored_recording):  # type: ignore[no-untyped-def]
    from tests.conftest import site as plain_site

    page = plain_site(A_HOST, cast.a_viewer).get("/recordings/")  # alpha speaks Ukrainian
    assert "Записи дзвінків" in page.content.decode()
    assert "не може прослуховувати" in page.content.decode()


def test_clearance_is_per_call_queue(cast, stored_recording, cleared):  # type: ignore[no-untyped-def]
    """A call in the client's queue needing no clearance is playable by uncleared staff even
    though another of the client's queues needs clearance."""
    from calls.models import Call
    from routing.models import Queue

    Queue.objects.create(queue_id="alpha-open", tenant=cast.a, name="Open", clearance=0)
    with schema_context("alpha"):
        Call.objects.filter(call_id="c-1").update(queue="alpha-open")
    sup = site(PROVIDER_HOST, cast.supervisor)
    page = sup.get(f"/recordings/clients/{cast.a.pk}/")
    assert f"?play={stored_recording.pk}".encode() in page.content
    assert b"clearance 2" not in page.content
    response = sup.get(f"/recordings/clients/{cast.a.pk}/?play={stored_recording.pk}")
    assert response.status_code == 200
    _body(response)
