"""Who may see and play a client company's recordings.

- Seeing the list (call, time, length, status; never the audio) is for the company's own
  members on its portal, and on the provider console for provider admins, supervisors and the
  agents certified for that company. Anyone else gets 404, as for every wall in the platform.
- Playing or downloading is for the roles the company's call policy names
  (``telephony.CallPolicy.recording_roles``; no policy or an empty list: nobody). A member
  whose role is not named gets 403 with a message saying so.
- Provider staff also need clearance: a client whose queues require clearance (the call's queue,
  or for a call without one the highest of the client's queues) has its recordings played only
  by provider staff holding at least that clearance. Clearance is carried by the agent record
  (``routing.Agent.clearance``); provider staff without one hold none, so they may play only
  recordings of clients that require no clearance. Agents must also be certified for the client.
- A client's admin may clear named provider supervisors instead (``RecordingClearance``, on
  the portal's recordings clearance page): for all the client's queues or one queue. A grant
  stands in for the clearance level, not for the role: the call policy must still allow the
  supervisor role, and the grant counts only while its holder is a supervisor.
- Every playback records the clearance it used (``RecordingAccess.clearance`` and the audit
  event): none needed, the agent record's level, or the grant.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _

from tenants.access import access_provider
from tenants.models import PROVIDER_ROLES, Client, Role, User

#: Provider roles that may open a client's recordings list on the console.
CONSOLE_LISTERS = (Role.PROVIDER_ADMIN, Role.SUPERVISOR, Role.AGENT)
#: Provider roles that may mask and unmask a live recording through the API.
MASKERS = (Role.AGENT, Role.SUPERVISOR)


def allowed_roles(tenant: Client) -> list[str]:
    from telephony.models import CallPolicy

    roles = (
        CallPolicy.objects.filter(tenant=tenant).values_list("recording_roles", flat=True).first()
    )
    return [str(r) for r in roles or ()]


def agent_of(user: User):  # type: ignore[no-untyped-def]
    from routing.models import Agent

    return Agent.objects.filter(user=user, active=True).first()


def certified(user: User, tenant: Client) -> bool:
    from routing.models import Certification

    return Certification.objects.filter(
        agent__user=user, agent__active=True, tenant=tenant
    ).exists()


def required_clearance(tenant: Client, call_id: str | None = None) -> int:
    """Clearance the client's calls need (the call's queue, else the client's highest)."""
    from django_tenants.utils import schema_context

    from calls.models import Call
    from routing.models import Queue

    queue_id = ""
    if call_id:
        with schema_context(tenant.schema_name):
            queue_id = (
                Call.objects.filter(call_id=call_id).values_list("queue", flat=True).first() or ""
            )
    queues = Queue.objects.filter(tenant=tenant)
    if queue_id:
        needed = queues.filter(queue_id=queue_id).values_list("clearance", flat=True).first()
        if needed is not None:
            return int(needed)
    return max((int(c) for c in queues.values_list("clearance", flat=True)), default=0)


def clearance_grants(user: User, role: str, tenant: Client) -> dict[str, int]:
    """The client's active clearance grants to ``user``: ``{queue_id or "": grant id}``
    (``""``: every queue). Only a supervisor holds grants; for anyone else: none."""
    from django_tenants.utils import schema_context

    from recordings.models import RecordingClearance

    if role != Role.SUPERVISOR or not getattr(user, "pk", None):
        return {}
    with schema_context(tenant.schema_name):
        return dict(
            RecordingClearance.objects.filter(user_id=user.pk, revoked_at__isnull=True).values_list(
                "queue_id", "pk"
            )
        )


def _grant_covering(grants: dict[str, int], queue_id: str) -> int | None:
    """The grant that covers a call of ``queue_id`` ("" for a call in no queue: only an
    all-queues grant covers it)."""
    if queue_id and queue_id in grants:
        return grants[queue_id]
    return grants.get("")


def clearance_denials(
    user: User, tenant: Client, call_ids: list[str], role: str = ""
) -> dict[str, str]:
    """For provider staff already allowed by role: the calls whose clearance they lack, with
    the reason (few queries, whatever the number of calls)."""
    from django_tenants.utils import schema_context

    from calls.models import Call
    from routing.models import Queue

    needed_by_queue = dict(Queue.objects.filter(tenant=tenant).values_list("queue_id", "clearance"))
    highest = max((int(c) for c in needed_by_queue.values()), default=0)
    if highest == 0:
        return {}
    agent = agent_of(user)
    held = int(agent.clearance) if agent is not None else 0
    with schema_context(tenant.schema_name):
        queue_of = dict(
            Call.objects.filter(call_id__in=set(call_ids)).values_list("call_id", "queue")
        )
    grants = clearance_grants(user, role, tenant)
    denials = {}
    for call_id in call_ids:
        queue_id = queue_of.get(call_id) or ""
        needed = int(needed_by_queue.get(queue_id, highest)) if queue_id else highest
        if held < needed and _grant_covering(grants, queue_id) is None:
            denials[call_id] = _clearance_message(tenant, needed, held)
    return denials


def _clearance_message(tenant: Client, needed: int, held: int) -> str:
    return _(
        "Recordings of %(client)s's calls need clearance %(needed)s; you hold "
        "%(held)s. Clearance is set on an agent record in the provider console, or granted "
        "to a supervisor by the client's admin."
    ) % {"client": tenant.name, "needed": needed, "held": held}


def role_label(role: str) -> str:
    try:
        return str(Role(role).label)
    except ValueError:
        return role


def playback_denial(
    user: User,
    role: str,
    tenant: Client,
    call_id: str | None = None,
    *,
    clearance: bool = True,
) -> str | None:
    """None when ``user`` (with ``role`` on this site) may play the call's recordings, else
    the reason, phrased for that user. ``clearance=False`` leaves clearance out (a list checks
    it per call with :func:`clearance_denials`)."""
    return playback_check(user, role, tenant, call_id, clearance=clearance)[0]


def _call_queue(tenant: Client, call_id: str | None) -> str:
    from django_tenants.utils import schema_context

    from calls.models import Call

    if not call_id:
        return ""
    with schema_context(tenant.schema_name):
        return Call.objects.filter(call_id=call_id).values_list("queue", flat=True).first() or ""


def playback_check(
    user: User,
    role: str,
    tenant: Client,
    call_id: str | None = None,
    *,
    clearance: bool = True,
) -> tuple[str | None, str]:
    """``(denial, clearance used)``: the denial as :func:`playback_denial` gives it, and what
    cleared the user: ``""`` (none needed), ``"agent:<level>"`` or ``"grant:<id>"``."""
    allowed = allowed_roles(tenant)
    if role not in allowed:
        names = ", ".join(role_label(r) for r in allowed) or _("none")
        return _(
            "Your role (%(role)s) may not play %(client)s's call recordings. The roles allowed "
            "are set in the company's call policy; now: %(allowed)s."
        ) % {"role": role_label(role), "client": tenant.name, "allowed": names}, ""
    if role in PROVIDER_ROLES:
        if role == Role.AGENT and not certified(user, tenant):
            return _("You are not certified for %(client)s.") % {"client": tenant.name}, ""
        needed = required_clearance(tenant, call_id) if clearance else 0
        if needed > 0:
            agent = agent_of(user)
            held = int(agent.clearance) if agent is not None else 0
            if held >= needed:
                return None, f"agent:{held}"
            grant = _grant_covering(
                clearance_grants(user, role, tenant), _call_queue(tenant, call_id)
            )
            if grant is not None:
                return None, f"grant:{grant}"
            return _clearance_message(tenant, needed, held), ""
    return None, ""


def access_console_client(request: HttpRequest, client_id: int) -> tuple[Client, str]:
    """A client company whose recordings list the provider user may open; 404 otherwise."""
    role = access_provider(request, CONSOLE_LISTERS)
    try:
        tenant = Client.objects.exclude(schema_name="public").get(pk=client_id)
    except Client.DoesNotExist:
        raise Http404 from None
    if role == Role.AGENT and not certified(request.user, tenant):  # type: ignore[arg-type]
        raise Http404
    return tenant, role


def console_clients(request: HttpRequest, role: str):  # type: ignore[no-untyped-def]
    clients = Client.objects.exclude(schema_name="public").order_by("name")
    if role == Role.AGENT:
        clients = clients.filter(certifications__agent__user=request.user).distinct()
    return clients
