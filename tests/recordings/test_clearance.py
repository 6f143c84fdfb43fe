"""A client's admin clears named provider supervisors to play its confidential recordings;
the grant is enforced on playback and every playback records the clearance it used."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from recordings.models import RecordingAccess, RecordingClearance
from tenants.models import AuditEvent
from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST
from tests.conftest import site as _site

URL = "/recordings/clearances/"


@pytest.fixture
def cards(cast, stored_recording, policy):  # type: ignore[no-untyped-def]
    """Alpha's call c-1 in queue alpha-cards, which needs clearance 2; a certified agent
    holding 2; supervisors and agents may play (the policy)."""
    from calls.models import Call
    from routing.models import Agent, Certification, Queue

    Queue.objects.create(queue_id="alpha-cards", tenant=cast.a, name="Cards", clearance=2)
    with schema_context("alpha"):
        assert Call.objects.filter(call_id="c-1").update(queue="alpha-cards") == 1
    agent = Agent.objects.create(
        user=cast.agent, agent_id="ag-1", endpoint="user/1001", clearance=2
    )
    Certification.objects.create(agent=agent, tenant=cast.a, skills={})
    policy.recording_roles = ["supervisor", "agent"]
    policy.save()
    return agent


def site(host: str, user=None):  # type: ignore[no-untyped-def]
    client = _site(host, user)
    client.cookies["ccp_language"] = "en"
    return client


def _play(client, cast, rec):  # type: ignore[no-untyped-def]
    response = client.get(f"/recordings/clients/{cast.a.pk}/?play={rec.pk}")
    if response.status_code == 200:
        b"".join(response.streaming_content)
    return response


def _grants() -> list[RecordingClearance]:
    with schema_context("alpha"):
        return list(RecordingClearance.objects.order_by("id"))


def test_a_grant_lets_the_named_supervisor_play_and_each_playback_names_it(
    cast, stored_recording, cards
):  # type: ignore[no-untyped-def]
    sup = site(PROVIDER_HOST, cast.supervisor)
    refused = _play(sup, cast, stored_recording)
    assert refused.status_code == 403 and b"clearance 2" in refused.content

    admin = site(A_HOST, cast.a_admin)
    page = admin.get(URL)
    assert page.status_code == 200 and b"No supervisor is cleared." in page.content
    response = admin.post(
        URL, {"email": "Supervisor@Provider.test", "queue_id": "alpha-cards", "note": "QA"}
    )
    assert response.status_code == 302
    [grant] = _grants()
    assert (grant.user_id, grant.queue_id, grant.granted_by_id, grant.active) == (
        cast.supervisor.pk,
        "alpha-cards",
        cast.a_admin.pk,
        True,
    )
    event = AuditEvent.objects.get(action="recording.clearance_granted")
    assert (event.actor_id, event.tenant_id, event.details["supervisor"]) == (
        cast.a_admin.pk,
        cast.a.pk,
        "supervisor@provider.test",
    )

    # The list now offers the player, and playing records the grant it used.
    listing = sup.get(f"/recordings/clients/{cast.a.pk}/")
    assert f"?play={stored_recording.pk}".encode() in listing.content
    assert b"clearance 2" not in listing.content
    assert _play(sup, cast, stored_recording).status_code == 200
    with schema_context("alpha"):
        access = RecordingAccess.objects.get(user_id=cast.supervisor.pk)
    assert access.clearance == f"grant:{grant.pk}"
    played = AuditEvent.objects.get(action="recording.played", actor=cast.supervisor)
    assert played.details["clearance"] == f"grant:{grant.pk}"
    # The agent record's own level is recorded as such.
    assert _play(site(PROVIDER_HOST, cast.agent), cast, stored_recording).status_code == 200
    with schema_context("alpha"):
        assert RecordingAccess.objects.get(user_id=cast.agent.pk).clearance == "agent:2"

    # Revoked: refused again, the row kept with who revoked it; audited.
    assert admin.post(URL, {"revoke": grant.pk}).status_code == 302
    [grant] = _grants()
    assert grant.revoked_by_id == cast.a_admin.pk and grant.revoked_at is not None
    assert AuditEvent.objects.filter(action="recording.clearance_revoked").count() == 1
    assert _play(sup, cast, stored_recording).status_code == 403
    again = admin.post(URL, {"revoke": grant.pk}, follow=True)
    assert b"already revoked" in again.content
    assert AuditEvent.objects.filter(action="recording.clearance_revoked").count() == 1


def test_a_grant_covers_its_queue_only_and_all_queues_covers_every_call(
    cast, stored_recording, cards
):  # type: ignore[no-untyped-def]
    from calls.models import Call
    from recordings.actions import do_grant_clearance
    from routing.models import Queue

    Queue.objects.create(queue_id="alpha-vip", tenant=cast.a, name="VIP", clearance=3)
    do_grant_clearance(cast.a, cast.supervisor, queue_id="alpha-vip", actor=cast.a_admin)
    sup = site(PROVIDER_HOST, cast.supervisor)
    assert _play(sup, cast, stored_recording).status_code == 403  # c-1 is in alpha-cards
    with schema_context("alpha"):
        Call.objects.filter(call_id="c-1").update(queue="alpha-vip")
    assert _play(sup, cast, stored_recording).status_code == 200
    with schema_context("alpha"):
        Call.objects.filter(call_id="c-1").update(queue="")  # no queue: needs the highest
    assert _play(sup, cast, stored_recording).status_code == 403
    do_grant_clearance(cast.a, cast.supervisor, queue_id="", actor=cast.a_admin)
    assert _play(sup, cast, stored_recording).status_code == 200


def test_a_grant_never_replaces_the_role_the_policy_allows(cast, stored_recording, cards, policy):  # type: ignore[no-untyped-def]
    from recordings.actions import do_grant_clearance

    do_grant_clearance(cast.a, cast.supervisor, actor=cast.a_admin)
    policy.recording_roles = ["client_admin"]
    policy.save()
    response = _play(site(PROVIDER_HOST, cast.supervisor), cast, stored_recording)
    assert response.status_code == 403 and b"may not play" in response.content
    page = site(A_HOST, cast.a_admin).get(URL)
    assert b"take effect only once it does" in page.content


def test_only_supervisors_can_be_cleared_and_bad_input_is_a_400(cast, stored_recording, cards):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    for email in ("agent@provider.test", "admin@beta.test", "nobody@provider.test", "x"):
        response = admin.post(URL, {"email": email})
        assert response.status_code == 400, email
    assert (
        b"No active provider supervisor"
        in admin.post(URL, {"email": "agent@provider.test"}).content
    )
    assert (
        admin.post(URL, {"email": "supervisor@provider.test", "queue_id": "nope"}).status_code
        == 400
    )
    assert admin.post(URL, {"email": "supervisor@provider.test"}).status_code == 302
    twice = admin.post(URL, {"email": "supervisor@provider.test"})
    assert twice.status_code == 409 and b"already cleared" in twice.content
    assert len(_grants()) == 1
    assert admin.post(URL, {"revoke": "999999"}).status_code == 404
    assert admin.post(URL, {"revoke": "x"}).status_code == 404
    assert _grants()[0].active


def test_only_the_clients_admin_manages_its_grants(cast, stored_recording, cards):  # type: ignore[no-untyped-def]
    from recordings.actions import do_grant_clearance

    grant = do_grant_clearance(cast.a, cast.supervisor, actor=cast.a_admin)
    assert site(A_HOST, cast.a_viewer).get(URL).status_code == 404
    assert site(A_HOST, cast.a_viewer).post(URL, {"revoke": grant.pk}).status_code == 404
    assert site(A_HOST, cast.b_admin).get(URL).status_code == 404
    assert site(A_HOST, cast.supervisor).get(URL).status_code == 404
    assert site(PROVIDER_HOST, cast.provider_admin).get(URL).status_code == 404
    # Beta's admin on beta's portal sees beta's grants (none), and cannot revoke alpha's.
    beta = site(B_HOST, cast.b_admin)
    assert b"No supervisor is cleared." in beta.get(URL).content
    assert beta.post(URL, {"revoke": grant.pk}).status_code == 404
    assert _grants()[0].active
