"""Tenant-aware background jobs on procrastinate (PostgreSQL; no broker needed).

A job that touches a client company's data names it explicitly: the task takes
``tenant_schema`` and the worker re-enters that schema for the task's duration, leaving it in
``finally`` (pretix's ``EventTask`` pattern). Nothing relies on a schema left set by someone else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, transaction
from procrastinate.contrib.django import app


class UnknownTenant(Exception):
    """The job names a tenant schema that does not exist (or no longer does)."""


def tenant_task(**task_options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare a job that runs inside one tenant's schema.

    The decorated function receives ``tenant`` (the Client row) plus the job's own keyword
    arguments; callers defer it with ``tenant_schema=...``.
    """

    def decorator(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def run(*, tenant_schema: str, **kwargs: Any) -> Any:
            from django_tenants.utils import schema_context

            from tenants.models import Client

            close_old_connections()
            try:
                with schema_context("public"):
                    tenant = Client.objects.get(schema_name=tenant_schema)
                with schema_context(tenant.schema_name):
                    return func(tenant=tenant, **kwargs)
            except Client.DoesNotExist:
                raise UnknownTenant(f"no tenant with schema {tenant_schema!r}") from None
            finally:
                close_old_connections()

        task_options.setdefault("name", f"{func.__module__}.{func.__name__}")
        return app.task(**task_options)(run)

    return decorator


def defer_on_commit(task: Any, **kwargs: Any) -> None:
    """Queue ``task`` once the surrounding transaction commits (never for a rolled-back change)."""
    transaction.on_commit(lambda: task.defer(**kwargs))
