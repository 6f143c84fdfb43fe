from __future__ import annotations

from django.http import HttpRequest

from tenants.access import client_role, provider_role


def platform(request: HttpRequest) -> dict[str, object]:
    """What every page's layout needs: which site this is and the visitor's role on it."""
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    role = None
    if tenant is not None and user is not None and user.is_authenticated:
        role = provider_role(user) if tenant.is_provider else client_role(user, tenant)
    return {
        "site_tenant": tenant,
        "is_provider_site": bool(tenant and tenant.is_provider),
        "site_role": role,
    }
