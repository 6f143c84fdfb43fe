from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase

from tenants import actions
from tenants.models import AuditEvent, Client, Domain, Invitation
from tenants.signals import client_status_changed
from tests.conftest import A_HOST, PROVIDER_HOST, site


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [name])
        return cursor.fetchone() is not None


def test_provisioning_command_creates_schema_domain_and_invitation(cast, capsys):  # type: ignore[no-untyped-def]
    call_command(
        "provision_client",
        "--name",
        "Gamma Shop",
        "--schema",
        "gamma",
        "--domain",
        "gamma.localhost",
        "--admin-email",
        "boss@gamma.test",
        "--currency",
        "EUR",
        "--time-zone",
        "Europe/Berlin",
        "--language",
        "en",
    )
    client = Client.objects.get(schema_name="gamma")
    assert schema_exists("gamma")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema='gamma' AND table_name='portal_contact'"
        )
        assert cursor.fetchone(), "the new schema is migrated"
    assert Domain.objects.get(domain="gamma.localhost").tenant == client
    invitation = Invitation.objects.get(tenant=client)
    assert invitation.email == "boss@gamma.test" and invitation.role == "client_admin"
    out = capsys.readouterr().out
    assert "http://gamma.localhost:8000/accept/" in out
    assert AuditEvent.objects.filter(action="client.created", tenant_schema="gamma").exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--schema", "Bad-Name", "--domain", "ok.localhost"], "--schema"),
        (["--schema", "public", "--domain", "ok.localhost"], "--schema"),
        (["--schema", "alpha", "--domain", "ok.localhost"], "--schema"),
        (["--schema", "okname", "--domain", A_HOST], "--domain"),
        (["--schema", "okname", "--domain", "not a host"], "--domain"),
        (
            ["--schema", "okname", "--domain", "ok.localhost", "--time-zone", "Mars/Olympus"],
            "--time-zone",
        ),
        (["--schema", "okname", "--domain", "ok.localhost", "--currency", "XXX"], "--currency"),
        (
            ["--schema", "okname", "--domain", "ok.localhost", "--admin-email", "nope"],
            "--admin-email",
        ),
    ],
)
def test_provisioning_rejects_bad_input_naming_the_field_and_writes_nothing(cast, args, flag):  # type: ignore[no-untyped-def]
    before = Client.objects.count()
    with pytest.raises(CommandError, match=flag):
        call_command("provision_client", "--name", "Whatever", *args)
    assert Client.objects.count() == before
    assert not schema_exists("okname")


def test_console_creates_a_client_and_shows_field_errors(cast):  # type: ignore[no-untyped-def]
    admin = site(PROVIDER_HOST, cast.provider_admin)
    form = {
        "name": "Delta",
        "schema_name": "delta",
        "domain": "delta.localhost",
        "admin_email": "",
        "status": "trial",
        "time_zone": "Europe/Kyiv",
        "currency": "UAH",
        "language": "uk",
    }
    bad = admin.post("/clients/new/", {**form, "schema_name": "9bad", "domain": A_HOST})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert "starting with a letter" in body and "already in use" in body
    assert not Client.objects.filter(name="Delta").exists()
    good = admin.post("/clients/new/", form)
    assert good.status_code == 302
    delta = Client.objects.get(schema_name="delta")
    assert good["Location"] == f"/clients/{delta.pk}/"
    assert schema_exists("delta")
    assert (
        site(PROVIDER_HOST, cast.supervisor)
        .post("/clients/new/", {**form, "schema_name": "eps"})
        .status_code
        == 404
    )


def test_suspending_a_client_shows_its_users_a_clear_page_and_signals(cast):  # type: ignore[no-untyped-def]
    seen: list[tuple[str, str]] = []

    def receiver(sender, client, previous, status, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((client.schema_name, status))

    client_status_changed.connect(receiver)
    try:
        admin = site(PROVIDER_HOST, cast.provider_admin)
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = admin.post(f"/clients/{cast.a.pk}/status/", {"status": "suspended"})
        assert response.status_code == 302
    finally:
        client_status_changed.disconnect(receiver)
    assert seen == [("alpha", "suspended")]
    member = site(A_HOST, cast.a_admin)
    member.cookies["ccp_language"] = "en"
    page = member.get("/contacts/")
    assert page.status_code == 403
    assert "Service suspended" in page.content.decode() and "Alpha Retail" in page.content.decode()
    assert site(A_HOST).get("/login/").status_code == 403
    # Reactivating restores access.
    actions.do_set_client_status(
        Client.objects.get(pk=cast.a.pk), "active", actor=cast.provider_admin
    )
    assert member.get("/contacts/").status_code == 200


def test_unknown_status_is_refused(cast):  # type: ignore[no-untyped-def]
    admin = site(PROVIDER_HOST, cast.provider_admin)
    response = admin.post(f"/clients/{cast.a.pk}/status/", {"status": "deleted"}, follow=True)
    assert "Unknown status" in response.content.decode()
    assert Client.objects.get(pk=cast.a.pk).status == "active"


@pytest.mark.parametrize("host", ["nope.localhost", "evil.example.com"])
def test_unknown_host_gets_a_proper_404_page(cast, host):  # type: ignore[no-untyped-def]
    response = site(host).get("/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "There is no contact-centre site at this address." in body
    assert "<html" in body


def test_client_admin_edits_company_settings_viewer_cannot(cast):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    data = {
        "name": "Alpha Retail",
        "legal_name": "Alpha Retail TOV",
        "legal_address": "Kyiv",
        "tax_id": "12345678",
        "registration_number": "",
        "billing_email": "billing@alpha.test",
        "time_zone": "Europe/Kyiv",
        "currency": "UAH",
        "language": "uk",
    }
    assert admin.post("/settings/", {**data, "time_zone": "Nowhere/City"}).status_code == 200
    assert admin.post("/settings/", data).status_code == 302
    assert Client.objects.get(pk=cast.a.pk).tax_id == "12345678"
    event = AuditEvent.objects.filter(action="client.updated").latest("id")
    assert event.details["changes"]["tax_id"] == ["", "12345678"]
    viewer = site(A_HOST, cast.a_viewer)
    assert viewer.get("/settings/").status_code == 200
    assert viewer.post("/settings/", {**data, "tax_id": "666"}).status_code == 404
    assert Client.objects.get(pk=cast.a.pk).tax_id == "12345678"
