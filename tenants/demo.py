"""Demo data: a provider, three client companies on <name>.localhost, a user for every role.

Idempotent: running it again leaves existing rows as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from tenants import actions
from tenants.models import Client, Domain, Membership, Role, User

DEMO_PASSWORD = "demo-pass-2026"


@dataclass(frozen=True)
class DemoClient:
    schema: str
    name: str
    legal_name: str
    time_zone: str
    currency: str
    language: str
    status: str


DEMO_CLIENTS = [
    DemoClient(
        "kvitka", "Kvitka Retail", "TOV Kvitka Retail", "Europe/Kyiv", "UAH", "uk", "active"
    ),
    DemoClient("nordbank", "Nordbank", "Nordbank S.A.", "Europe/Warsaw", "PLN", "en", "active"),
    DemoClient(
        "stepnoy", "Stepnoy Telecom", "TOO Stepnoy Telecom", "Asia/Almaty", "KZT", "ru", "trial"
    ),
]

PROVIDER_USERS = [
    ("admin@provider.localhost", "Olena Admin", Role.PROVIDER_ADMIN),
    ("supervisor@provider.localhost", "Taras Supervisor", Role.SUPERVISOR),
    ("agent@provider.localhost", "Maria Agent", Role.AGENT),
    ("finance@provider.localhost", "Ivan Finance", Role.FINANCE),
]


def ensure_public_tenant(domains: list[str]) -> Client:
    public, _created = Client.objects.get_or_create(
        schema_name="public",
        defaults={
            "name": "Provider",
            "status": Client.Status.ACTIVE,
            "time_zone": "UTC",
            "currency": "UAH",
        },
    )
    for index, host in enumerate(domains):
        Domain.objects.get_or_create(
            domain=host, defaults={"tenant": public, "is_primary": index == 0}
        )
    return public


def _user(email: str, name: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name)
    return user


def seed_demo(base_domain: str = "localhost") -> list[tuple[str, str, str]]:
    """Create the demo world; return (site URL, login e-mail, role) rows to print."""
    logins: list[tuple[str, str, str]] = []
    with transaction.atomic():
        public = ensure_public_tenant([base_domain, "127.0.0.1"])
        for email, name, role in PROVIDER_USERS:
            user = _user(email, name)
            Membership.objects.get_or_create(user=user, tenant=None, defaults={"role": role})
            logins.append((actions.site_url(public), email, role.label))
    for spec in DEMO_CLIENTS:
        client = Client.objects.filter(schema_name=spec.schema).first()
        if client is None:
            client = actions.do_create_client(
                name=spec.name,
                schema_name=spec.schema,
                domain=f"{spec.schema}.{base_domain}",
                admin_email=None,
                actor=None,
                time_zone=spec.time_zone,
                currency=spec.currency,
                language=spec.language,
                status=spec.status,
                legal_name=spec.legal_name,
                legal_address="1 Demo Street",
                billing_email=f"billing@{spec.schema}.{base_domain}",
            ).client
        for role, label in ((Role.CLIENT_ADMIN, "admin"), (Role.CLIENT_VIEWER, "viewer")):
            email = f"{label}@{spec.schema}.{base_domain}"
            user = _user(email, f"{spec.name} {label.title()}")
            Membership.objects.get_or_create(user=user, tenant=client, defaults={"role": role})
            logins.append((actions.site_url(client), email, role.label))
    return logins
