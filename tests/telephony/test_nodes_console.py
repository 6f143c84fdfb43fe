"""Switch nodes in the provider console: who may see and change them, what they show."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import A_HOST, PROVIDER_HOST, site

NEW_NODE = {
    "name": "fs-1",
    "description": "Kyiv rack 2",
    "esl_host": "10.0.0.21",
    "esl_port": "8021",
    "esl_password": "s3cret-esl",
    "enabled": "on",
}


@pytest.fixture
def node(cast):  # type: ignore[no-untyped-def]
    from telephony import actions

    return actions.do_create_node(
        name="fs-7", esl_host="10.0.0.27", esl_port=8021, esl_password="pw-7", actor=None
    ).node


def secret_on(page: bytes) -> str:
    match = re.search(rb"<code data-secret>([A-Za-z0-9_-]{40,})</code>", page)
    assert match, "the CDR secret is not shown"
    return match.group(1).decode()


def cdr_auth(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def test_admin_adds_a_node_and_sees_its_secret_once(cast):  # type: ignore[no-untyped-def]
    from telephony.models import SwitchNode, hash_cdr_secret
    from tenants.models import AuditEvent

    admin = site(PROVIDER_HOST, cast.provider_admin)
    assert b"Switch nodes" in admin.get("/").content  # the nav link
    assert admin.get("/telephony/nodes/new/").status_code == 200
    response = admin.post("/telephony/nodes/new/", NEW_NODE)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = secret_on(response.content)
    assert f"CCP_CDR_CRED=fs-1:{secret}".encode() in response.content
    node = SwitchNode.objects.get(name="fs-1")
    assert node.esl_password == "s3cret-esl"  # the switchboard must present it
    assert node.cdr_secret_hash == hash_cdr_secret(secret) and secret not in node.cdr_secret_hash
    event = AuditEvent.objects.get(action="telephony.node_created")
    assert event.actor == cast.provider_admin and event.object_id == str(node.pk)
    assert secret not in str(event.details) and "s3cret-esl" not in str(event.details)
    # Never shown again: not on the detail page, not the ESL password either.
    detail = admin.get(f"/telephony/nodes/{node.pk}/").content
    assert secret.encode() not in detail and b"s3cret-esl" not in detail
    assert b"10.0.0.21:8021" in detail
    listing = admin.get("/telephony/nodes/").content
    assert b"fs-1" in listing and b"no status yet" in listing


def test_admin_edits_a_node_keeping_the_password(cast, node):  # type: ignore[no-untyped-def]
    from tenants.models import AuditEvent

    admin = site(PROVIDER_HOST, cast.provider_admin)
    assert admin.get(f"/telephony/nodes/{node.pk}/edit/").status_code == 200
    response = admin.post(
        f"/telephony/nodes/{node.pk}/edit/",
        {"name": "fs-7", "esl_host": "10.0.0.70", "esl_port": "8022", "esl_password": ""},
    )
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.esl_host, node.esl_port, node.esl_password, node.enabled) == (
        "10.0.0.70",
        8022,
        "pw-7",
        False,
    )
    event = AuditEvent.objects.get(action="telephony.node_updated")
    assert event.details["changed"] == ["esl_host", "esl_port", "enabled"]
    assert event.details["enabled"] is False
    admin.post(
        f"/telephony/nodes/{node.pk}/edit/",
        {
            "name": "fs-7",
            "esl_host": "10.0.0.70",
            "esl_port": "8022",
            "esl_password": "new-pw",
            "enabled": "on",
        },
    )
    node.refresh_from_db()
    assert node.esl_password == "new-pw"
    last = AuditEvent.objects.filter(action="telephony.node_updated").first()
    assert last.details["changed"] == ["esl_password", "enabled"]
    assert "new-pw" not in str(last.details)


def test_invalid_node_input_is_shown_on_the_form(cast, node):  # type: ignore[no-untyped-def]
    from telephony.models import SwitchNode

    admin = site(PROVIDER_HOST, cast.provider_admin)
    taken = admin.post("/telephony/nodes/new/", {**NEW_NODE, "name": "fs-7"})
    assert taken.status_code == 200 and b"already exists" in taken.content
    bad = admin.post("/telephony/nodes/new/", {**NEW_NODE, "name": "FS 1", "esl_port": "70000"})
    assert bad.status_code == 200 and b"has-error" in bad.content
    clash = admin.post("/telephony/nodes/new/", {**NEW_NODE, "esl_host": "10.0.0.27"})
    assert b"already uses this Event Socket address" in clash.content
    assert SwitchNode.objects.count() == 1


def test_rotating_the_cdr_secret(cast, node):  # type: ignore[no-untyped-def]
    from tenants.models import AuditEvent

    admin = site(PROVIDER_HOST, cast.provider_admin)
    assert admin.get(f"/telephony/nodes/{node.pk}/cdr-secret/").status_code == 405
    first = secret_on(admin.post(f"/telephony/nodes/{node.pk}/cdr-secret/").content)
    second = secret_on(admin.post(f"/telephony/nodes/{node.pk}/cdr-secret/").content)
    assert first != second
    assert AuditEvent.objects.filter(action="telephony.node_cdr_secret_rotated").count() == 2
    intake = site(PROVIDER_HOST)
    old = intake.post(
        "/telephony/cdr/",
        b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=cdr_auth("fs-7", first),
    )
    new = intake.post(
        "/telephony/cdr/",
        b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=cdr_auth("fs-7", second),
    )
    assert old.status_code == 401
    assert new.status_code == 400  # authenticated; the body is what is wrong


def test_supervisor_reads_but_does_not_change(cast, node):  # type: ignore[no-untyped-def]
    from telephony.models import SwitchNode

    supervisor = site(PROVIDER_HOST, cast.supervisor)
    listing = supervisor.get("/telephony/nodes/")
    assert listing.status_code == 200 and b"fs-7" in listing.content
    assert b"/telephony/nodes/new/" not in listing.content
    detail = supervisor.get(f"/telephony/nodes/{node.pk}/")
    assert detail.status_code == 200
    assert b"/edit/" not in detail.content and b"cdr-secret" not in detail.content
    assert supervisor.get("/telephony/nodes/new/").status_code == 404
    assert supervisor.post("/telephony/nodes/new/", NEW_NODE).status_code == 404
    assert supervisor.get(f"/telephony/nodes/{node.pk}/edit/").status_code == 404
    assert supervisor.post(f"/telephony/nodes/{node.pk}/edit/", NEW_NODE).status_code == 404
    assert supervisor.post(f"/telephony/nodes/{node.pk}/cdr-secret/").status_code == 404
    assert SwitchNode.objects.get().name == "fs-7"


@pytest.mark.parametrize("who", ["agent", "finance", "a_admin", "a_viewer", "b_admin"])
def test_everyone_else_gets_404(cast, node, who):  # type: ignore[no-untyped-def]
    browser = site(PROVIDER_HOST, getattr(cast, who))
    for url in (
        "/telephony/nodes/",
        "/telephony/nodes/new/",
        f"/telephony/nodes/{node.pk}/",
        f"/telephony/nodes/{node.pk}/edit/",
    ):
        assert browser.get(url).status_code == 404, url
    assert browser.post(f"/telephony/nodes/{node.pk}/cdr-secret/").status_code == 404
    assert browser.post("/telephony/nodes/new/", NEW_NODE).status_code == 404
    assert b"Switch nodes" not in browser.get("/").content


def test_client_sites_have_no_nodes_pages(cast, node):  # type: ignore[no-untyped-def]
    assert site(A_HOST, cast.a_admin).get("/telephony/nodes/").status_code == 404


def test_unknown_node_is_404(cast):  # type: ignore[no-untyped-def]
    admin = site(PROVIDER_HOST, cast.provider_admin)
    assert admin.get("/telephony/nodes/999999/").status_code == 404
    assert admin.post("/telephony/nodes/999999/cdr-secret/").status_code == 404


def test_live_status_as_the_switchboard_reports_it(cast, node):  # type: ignore[no-untyped-def]
    from telephony import actions

    admin = site(PROVIDER_HOST, cast.provider_admin)
    page = admin.get(f"/telephony/nodes/{node.pk}/").content
    assert b"No status yet" in page
    actions.do_record_node_status(
        node,
        connected=True,
        core_uuid="ed5e41b2-be56-4be5-917b-f811a5893095",
        version="1.10.12-release",
        uptime_seconds=3725,
        channels=42,
        sessions_per_second=12.5,
        max_sessions_per_second=30,
        sessions_since_startup=1234,
    )
    page = admin.get(f"/telephony/nodes/{node.pk}/").content.decode()
    assert "ed5e41b2-be56-4be5-917b-f811a5893095" in page
    assert "connected" in page and "42" in page and "12.5" in page and "3725" in page
    assert "No status yet" not in page and "stale" not in page
    listing = admin.get("/telephony/nodes/").content.decode()
    assert "ed5e41b2" in listing and "12.5" in listing

    # A report the switchboard stopped renewing is called stale, not passed off as live.
    actions.do_record_node_status(
        node, connected=True, channels=42, now=timezone.now() - timedelta(minutes=5)
    )
    page = admin.get(f"/telephony/nodes/{node.pk}/").content.decode()
    assert "stale" in page and "may be out of date" in page
    actions.do_record_node_status(node, connected=False, last_error="connection refused")
    page = admin.get(f"/telephony/nodes/{node.pk}/").content.decode()
    assert "disconnected" in page and "connection refused" in page


def test_quarantined_cdrs_are_listed_for_the_provider(cast, node):  # type: ignore[no-untyped-def]
    from telephony.models import UnroutedCdr

    supervisor = site(PROVIDER_HOST, cast.supervisor)
    assert b"every CDR found its client" in supervisor.get("/telephony/nodes/").content
    UnroutedCdr.objects.create(
        leg_uuid="3d645a4a-ecf6-4baf-b72b-7b79e2554969",
        node=node,
        node_name=node.name,
        reason=UnroutedCdr.Reason.UNKNOWN_TENANT,
        tenant_value="gamma",
        body={},
    )
    page = supervisor.get("/telephony/nodes/").content.decode()
    assert "CDRs in quarantine (1)" in page
    assert "3d645a4a-ecf6-4baf-b72b-7b79e2554969" in page and "gamma" in page
