from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from tenants import actions, audit
from tenants.models import AuditEvent
from tests.conftest import PROVIDER_HOST, site


def _one_event(cast) -> AuditEvent:  # type: ignore[no-untyped-def]
    return audit.record(
        "test.something", actor=cast.provider_admin, tenant=cast.a, details={"k": 1}
    )


def test_database_refuses_update_of_audit_rows(cast):  # type: ignore[no-untyped-def]
    event = _one_event(cast)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tenants_auditevent SET action = 'forged' WHERE id = %s", [event.pk]
            )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.something"


def test_database_refuses_delete_of_audit_rows(cast):  # type: ignore[no-untyped-def]
    event = _one_event(cast)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM tenants_auditevent WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_saving_an_existing_event_is_refused_before_the_database(cast):  # type: ignore[no-untyped-def]
    event = _one_event(cast)
    event.action = "forged"
    with pytest.raises(ValueError, match="append-only"):
        event.save()


def test_console_actions_record_who_what_where_and_from_where(cast):  # type: ignore[no-untyped-def]
    admin = site(PROVIDER_HOST, cast.provider_admin)
    response = admin.post(
        f"/clients/{cast.a.pk}/domains/",
        {"domain": "alpha-extra.localhost"},
        REMOTE_ADDR="198.51.100.7",
        HTTP_USER_AGENT="pytest-agent",
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="domain.added").latest("id")
    assert event.actor_id == cast.provider_admin.pk
    assert event.actor_email == "admin@provider.test"
    assert event.tenant_id == cast.a.pk and event.tenant_schema == "alpha"
    assert event.object_type == "tenants.domain" and event.object_repr == "alpha-extra.localhost"
    assert event.ip_address == "198.51.100.7"
    assert event.user_agent == "pytest-agent"


def test_forwarded_for_is_trusted_only_behind_configured_proxies(cast, settings, rf):  # type: ignore[no-untyped-def]
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2")
    settings.TRUSTED_PROXY_COUNT = 0
    assert audit.client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert audit.client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 2
    assert audit.client_ip(request) == "203.0.113.9"


def test_audit_log_page_filters_by_client_and_action(cast):  # type: ignore[no-untyped-def]
    actions.do_set_client_status(cast.b, "suspended", actor=cast.provider_admin)
    actions.do_set_client_status(cast.b, "active", actor=cast.provider_admin)
    audit.record("contact.created", actor=cast.a_admin, tenant=cast.a)
    admin = site(PROVIDER_HOST, cast.provider_admin)
    body = admin.get("/audit/", {"tenant": cast.b.pk, "action": "status"}).content.decode()
    assert body.count("client.status_changed") == 2
    assert "contact.created" not in body
    bad = admin.get("/audit/", {"since": "not-a-date"})
    assert bad.status_code == 200
    assert "Enter a valid date" in bad.content.decode()
