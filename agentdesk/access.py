"""Who may use the agents' console, and which client companies an agent works for.

An agent of the console is a provider user with the ``agent`` membership *and* an active
``routing.models.Agent`` row; the agent id always comes from that row, never from the browser.
All reads are in the public schema, named explicitly.
"""

from __future__ import annotations

from typing import Any

from django_tenants.utils import schema_context

from routing.models import Agent, Certification
from tenants.models import Client, Membership, Role


def console_agent(user: Any) -> Agent | None:
    """The user's active Agent row if the user is a provider agent, else None."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    with schema_context("public"):
        if not Membership.objects.filter(
            user_id=user.pk, tenant__isnull=True, role=Role.AGENT
        ).exists():
            return None
        return Agent.objects.filter(user_id=user.pk, active=True).first()


def certified_tenant(agent: Agent, schema_name: str) -> Client | None:
    """The client company ``schema_name`` if ``agent`` is certified for its calls, else None."""
    if not isinstance(schema_name, str) or not schema_name or schema_name == "public":
        return None
    with schema_context("public"):
        cert = (
            Certification.objects.select_related("tenant")
            .filter(agent=agent, tenant__schema_name=schema_name)
            .exclude(tenant__schema_name="public")
            .first()
        )
        return cert.tenant if cert else None


def caller_masked(tenant: Client) -> bool:
    """Whether the client hides its callers' numbers from provider agents.

    Read from the client's ``telephony.models.CallPolicy`` field ``mask_caller_number`` when
    the policy has one; there is no such setting yet, so numbers are shown.
    """
    from telephony.models import CallPolicy

    with schema_context("public"):
        policy = CallPolicy.objects.filter(tenant=tenant).first()
    return bool(getattr(policy, "mask_caller_number", False)) if policy is not None else False


def mask_number(number: str) -> str:
    """``+380441234567`` -> ``+38••••••4567``: enough to recognise, not to dial."""
    if not number:
        return number
    keep_head = 3 if number.startswith("+") else 2
    if len(number) <= keep_head + 4:
        return "•" * len(number)
    return number[:keep_head] + "•" * (len(number) - keep_head - 4) + number[-4:]
