"""``access_*`` for telephony objects seen from the provider console (404 otherwise)."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import Http404, HttpRequest

from telephony.models import SwitchNode
from tenants.access import access_provider
from tenants.models import Role

NODE_READERS = (Role.PROVIDER_ADMIN, Role.SUPERVISOR)
NODE_WRITERS = (Role.PROVIDER_ADMIN,)


def access_node(request: HttpRequest, node_id: int, roles: Iterable[str]) -> SwitchNode:
    access_provider(request, roles)
    try:
        return SwitchNode.objects.select_related("status").get(pk=node_id)
    except SwitchNode.DoesNotExist:
        raise Http404 from None
