"""``access_*`` helpers: fetch an object for a user, or answer 404.

A user who may not see an object gets the same 404 as for an object that does not exist, so
nothing about another client's data leaks through status codes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import Http404, HttpRequest

from tenants.models import CLIENT_ROLES, Client, Membership, Role, User


def provider_role(user: User) -> str | None:
    """The user's provider-side role, or None."""
    if not user.is_authenticated or not user.is_active:
        return None
    cached = getattr(user, "_ccp_provider_role", False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    role = (
        Membership.objects.filter(user=user, tenant__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    user._ccp_provider_role = role  # type: ignore[attr-defined]
    return role


def client_role(user: User, tenant: Client) -> str | None:
    """The user's role within ``tenant``, or None."""
    if not user.is_authenticated or not user.is_active or tenant.is_provider:
        return None
    cache = user.__dict__.setdefault("_ccp_client_roles", {})
    if tenant.pk not in cache:
        cache[tenant.pk] = (
            Membership.objects.filter(user=user, tenant=tenant, role__in=CLIENT_ROLES)
            .values_list("role", flat=True)
            .first()
        )
    return cache[tenant.pk]


def access_provider(request: HttpRequest, roles: Iterable[str]) -> str:
    """Require a provider role among ``roles`` on the provider's host; return the role."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or not tenant.is_provider:
        raise Http404
    role = provider_role(request.user)  # type: ignore[arg-type]
    if role is None or role not in set(roles):
        raise Http404
    return role


def access_client_site(request: HttpRequest, roles: Iterable[str] = tuple(CLIENT_ROLES)) -> str:
    """Require a role among ``roles`` in the client company whose host this is."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_provider:
        raise Http404
    role = client_role(request.user, tenant)  # type: ignore[arg-type]
    if role is None or role not in set(roles):
        raise Http404
    return role


def access_client(request: HttpRequest, client_id: int, roles: Iterable[str]) -> Client:
    """A client company as seen from the provider console."""
    access_provider(request, roles)
    try:
        return Client.objects.exclude(schema_name="public").get(pk=client_id)
    except Client.DoesNotExist:
        raise Http404 from None


def access_user(request: HttpRequest, user_id: int) -> User:
    """A user as seen by a provider admin."""
    access_provider(request, [Role.PROVIDER_ADMIN])
    try:
        return User.objects.get(pk=user_id)
    except User.DoesNotExist:
        raise Http404 from None
