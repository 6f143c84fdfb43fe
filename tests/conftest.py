"""The fixed cast every test can use, created once per test session.

Tenant schemas are expensive (each is migrated), so the public tenant, client companies A
and B and one user per role are created once, committed in the test database, and reused;
each test then runs in a transaction that is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client as HttpClient

PASSWORD = "test-pass-9731"
PROVIDER_HOST = "localhost"
A_HOST = "alpha.localhost"
B_HOST = "beta.localhost"


@dataclass
class Cast:
    public: object
    a: object
    b: object
    provider_admin: object
    supervisor: object
    agent: object
    finance: object
    a_admin: object
    a_viewer: object
    b_admin: object


def _create_cast() -> None:
    from tenants.demo import ensure_public_tenant
    from tenants.models import Client, Domain, Membership, Role, User

    ensure_public_tenant([PROVIDER_HOST, "testserver"])
    for schema, name, host, tz, currency, language in (
        ("alpha", "Alpha Retail", A_HOST, "Europe/Kyiv", "UAH", "uk"),
        ("beta", "Beta Bank", B_HOST, "America/New_York", "USD", "en"),
    ):
        client = Client(
            schema_name=schema,
            name=name,
            time_zone=tz,
            currency=currency,
            language=language,
            status=Client.Status.ACTIVE,
            legal_name=f"{name} LLC",
        )
        client.save(verbosity=0)
        Domain.objects.create(domain=host, tenant=client, is_primary=True)
    a = Client.objects.get(schema_name="alpha")
    b = Client.objects.get(schema_name="beta")
    for email, role, tenant in (
        ("admin@provider.test", Role.PROVIDER_ADMIN, None),
        ("supervisor@provider.test", Role.SUPERVISOR, None),
        ("agent@provider.test", Role.AGENT, None),
        ("finance@provider.test", Role.FINANCE, None),
        ("admin@alpha.test", Role.CLIENT_ADMIN, a),
        ("viewer@alpha.test", Role.CLIENT_VIEWER, a),
        ("admin@beta.test", Role.CLIENT_ADMIN, b),
    ):
        user = User.objects.create_user(
            email=email, password=PASSWORD, full_name=email.split("@")[0].title()
        )
        Membership.objects.create(user=user, tenant=tenant, role=role)


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):  # type: ignore[no-untyped-def]
    """Always build the test database (pytest-django skips it when no test carries the
    django_db mark, e.g. the job-queue tests that commit for a real worker)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set()
        )
        assert connection.settings_dict["NAME"].startswith("test_"), (
            "refusing to seed a non-test database"
        )
        _create_cast()
        connection.set_schema_to_public()
    yield
    with django_db_blocker.unblock():
        # Connections opened by worker threads, channel layers and subprocesses would make
        # DROP DATABASE fail; they belong to this test run, so end them first.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(config, verbosity=0)


@pytest.fixture(autouse=True)
def _public_schema_after_test(request):  # type: ignore[no-untyped-def]
    """Requests switch the connection's schema; never let one test inherit another's.

    Only for tests that use the database: pure-core tests run without Django at all.
    """
    yield
    if "django_db_setup" in request.fixturenames:
        connection.set_schema_to_public()


@pytest.fixture
def cast(db) -> Cast:  # type: ignore[no-untyped-def]
    from tenants.models import Client, User

    users = {u.email: u for u in User.objects.all()}
    return Cast(
        public=Client.objects.get(schema_name="public"),
        a=Client.objects.get(schema_name="alpha"),
        b=Client.objects.get(schema_name="beta"),
        provider_admin=users["admin@provider.test"],
        supervisor=users["supervisor@provider.test"],
        agent=users["agent@provider.test"],
        finance=users["finance@provider.test"],
        a_admin=users["admin@alpha.test"],
        a_viewer=users["viewer@alpha.test"],
        b_admin=users["admin@beta.test"],
    )


def site(host: str, user=None) -> HttpClient:  # type: ignore[no-untyped-def]
    """An HTTP client speaking to one site (by Host), optionally signed in as ``user``."""
    client = HttpClient(HTTP_HOST=host)
    if user is not None:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def in_schema():  # type: ignore[no-untyped-def]
    """Context manager to run ORM code inside a tenant's schema."""
    from django_tenants.utils import schema_context

    return schema_context
