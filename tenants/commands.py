"""Helpers for management commands that work on client companies."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import QuerySet

from tenants.models import Client


def clients_option(schema: str | None) -> QuerySet[Client]:
    """The client companies a ``--tenant`` option names: all of them (by schema name) when it
    is empty, else the one; an unknown schema is a :class:`CommandError` naming the option."""
    clients = Client.objects.exclude(schema_name="public").order_by("schema_name")
    if schema:
        clients = clients.filter(schema_name=schema)
        if not clients.exists():
            raise CommandError(f"--tenant: no client company with schema {schema!r}")
    return clients
