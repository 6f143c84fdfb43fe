"""The agents' console page and what it asks about a call's client.

``/agent/``: the page (templates/agentdesk/console.html, frontend/src/agent.ts); its live part
runs over ``/ws/agent/`` (agentdesk/consumers.py). ``/agent/clients/<schema>/``: JSON about one
client company the agent is certified for: its name, whether its callers' numbers are masked,
its queues and the other agents who take its calls (transfer targets), and its disposition
codes (wrap-up). Anyone else gets 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context

from agentdesk.access import caller_masked, certified_tenant, console_agent
from dispositions.actions import disposition_codes
from tenants.access import access_provider
from tenants.models import Role


def console_labels() -> dict[str, object]:
    """The words the console's script shows, in the page's language."""
    return {
        "states": {
            "logged_out": _("Logged out"),
            "available": _("Available"),
            "offered": _("Ringing"),
            "on_call": _("On a call"),
            "wrap_up": _("Wrap-up"),
            "break": _("On a break"),
        },
        "connecting": _("Connecting…"),
        "live": _("Connected"),
        "reconnecting": _("Disconnected: reconnecting…"),
        "offline": _("Switchboard offline"),
        "forbidden": _("You may not use the agent console."),
        "not_your_call": _("That call is not yours."),
        "failed": _("The switchboard refused: %(message)s"),
        "on_hold": _("On hold"),
        "recording_paused": _("Recording paused"),
        "transferred_by": _("Transferred by %(agent)s"),
        "vip": _("VIP"),
        "unknown_caller": _("Unknown caller"),
        "saved": _("Disposition saved."),
        "save_failed": _("The disposition could not be saved: %(message)s"),
        "saving": _("Saving…"),
        "choose_code": _("Choose a disposition."),
        "queues": _("Queues"),
        "agents": _("Agents"),
    }


def _require_provider_agent(request: HttpRequest):  # type: ignore[no-untyped-def]
    access_provider(request, [Role.AGENT])
    return console_agent(request.user)


@login_required
def console(request: HttpRequest) -> HttpResponse:
    agent = _require_provider_agent(request)
    return render(
        request,
        "agentdesk/console.html",
        {"agent": agent, "labels": console_labels()},
    )


@login_required
def client_context(request: HttpRequest, schema_name: str) -> JsonResponse:
    agent = _require_provider_agent(request)
    tenant = certified_tenant(agent, schema_name) if agent is not None else None
    if agent is None or tenant is None:
        raise Http404
    from routing.models import Agent, Queue

    with schema_context("public"):
        queues = list(
            Queue.objects.filter(tenant=tenant).order_by("name").values_list("queue_id", "name")
        )
        agents = list(
            Agent.objects.filter(active=True, certifications__tenant=tenant)
            .exclude(pk=agent.pk)
            .select_related("user")
            .order_by("agent_id")
        )
    return JsonResponse(
        {
            "tenant": tenant.schema_name,
            "name": tenant.name,
            "mask_caller": caller_masked(tenant),
            "queues": [{"id": q, "name": name or q} for q, name in queues],
            "agents": [
                {"id": a.agent_id, "name": a.user.get_full_name() or a.agent_id} for a in agents
            ],
            "dispositions": disposition_codes(tenant),
        }
    )
