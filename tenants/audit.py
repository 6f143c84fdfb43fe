"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from tenants.models import AuditEvent, Client, User


def client_ip(request: HttpRequest | None) -> str | None:
    """The caller's address; X-Forwarded-For is trusted only behind known proxies."""
    if request is None:
        return None
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    actor: User | None = None,
    request: HttpRequest | None = None,
    tenant: Client | None = None,
    obj: models.Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. Call inside the transaction of the change it records."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user  # type: ignore[assignment]
    if tenant is None and request is not None:
        current = getattr(request, "tenant", None)
        if current is not None and not current.is_provider:
            tenant = current
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=actor.email if actor else "",
        tenant=tenant,
        tenant_schema=tenant.schema_name if tenant else "",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:300] if obj is not None else "",
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
        details=details or {},
    )
