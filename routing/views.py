"""Provider console: queues, agents and their certifications.

Provider admins edit; supervisors read. Same conventions as ``telephony.config_views``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from routing.forms import AgentForm, CertificationForm, QueueForm
from routing.models import Agent, Certification, Queue
from telephony.config_views import READERS, WRITERS, delete_object, edit_page
from tenants.access import access_provider


def _get(model, request: HttpRequest, pk: int, roles: tuple[str, ...]):  # type: ignore[no-untyped-def]
    access_provider(request, roles)
    try:
        return model.objects.get(pk=pk)
    except model.DoesNotExist:
        raise Http404 from None


# -- queues -----------------------------------------------------------------------------------
@login_required
def queue_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, READERS)
    queues = Queue.objects.select_related("tenant").order_by("tenant__name", "queue_id")
    return render(
        request, "routing/queue_list.html", {"queues": queues, "can_edit": role in WRITERS}
    )


@login_required
def queue_create(request: HttpRequest) -> HttpResponse:
    access_provider(request, WRITERS)
    return edit_page(
        request,
        form_class=QueueForm,
        instance=Queue(),
        can_edit=True,
        action="queue",
        tenant_of=lambda q: q.tenant,
        title=_("New queue"),
        back_url=reverse("calls_queue_list"),
        done_url=lambda q: reverse("calls_queue_list"),
    )


@login_required
def queue_edit(request: HttpRequest, queue_pk: int) -> HttpResponse:
    role = access_provider(request, READERS)
    queue = _get(Queue, request, queue_pk, READERS)
    return edit_page(
        request,
        form_class=QueueForm,
        instance=queue,
        can_edit=role in WRITERS,
        action="queue",
        tenant_of=lambda q: q.tenant,
        title=_("Queue %(queue)s") % {"queue": queue.queue_id},
        back_url=reverse("calls_queue_list"),
        done_url=lambda q: reverse("calls_queue_list"),
    )


# -- agents -----------------------------------------------------------------------------------
@login_required
def agent_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, READERS)
    agents = (
        Agent.objects.select_related("user")
        .annotate(cert_count=Count("certifications"))
        .order_by("agent_id")
    )
    return render(
        request, "routing/agent_list.html", {"agents": agents, "can_edit": role in WRITERS}
    )


@login_required
def agent_create(request: HttpRequest) -> HttpResponse:
    access_provider(request, WRITERS)
    return edit_page(
        request,
        form_class=AgentForm,
        instance=Agent(),
        can_edit=True,
        action="agent",
        tenant_of=lambda a: None,
        title=_("New agent"),
        back_url=reverse("calls_agent_list"),
        done_url=lambda a: reverse("calls_agent_edit", args=[a.pk]),
    )


@login_required
def agent_edit(request: HttpRequest, agent_pk: int) -> HttpResponse:
    role = access_provider(request, READERS)
    agent = _get(Agent, request, agent_pk, READERS)
    certifications = agent.certifications.select_related("tenant").order_by("tenant__name")
    return edit_page(
        request,
        form_class=AgentForm,
        instance=agent,
        can_edit=role in WRITERS,
        action="agent",
        tenant_of=lambda a: None,
        title=_("Agent %(agent)s") % {"agent": agent.agent_id},
        back_url=reverse("calls_agent_list"),
        done_url=lambda a: reverse("calls_agent_edit", args=[a.pk]),
        template="routing/agent_form.html",
        context={
            "certifications": certifications,
            "cert_form": CertificationForm(instance=Certification(agent=agent)),
            "agent": agent,
        },
    )


@login_required
def certification_create(request: HttpRequest, agent_pk: int) -> HttpResponse:
    agent = _get(Agent, request, agent_pk, WRITERS)
    return edit_page(
        request,
        form_class=CertificationForm,
        instance=Certification(agent=agent),
        can_edit=True,
        action="certification",
        tenant_of=lambda c: c.tenant,
        title=_("Certify %(agent)s for a client") % {"agent": agent.agent_id},
        back_url=reverse("calls_agent_edit", args=[agent.pk]),
        done_url=lambda c: reverse("calls_agent_edit", args=[agent.pk]),
    )


@login_required
def certification_edit(request: HttpRequest, certification_id: int) -> HttpResponse:
    role = access_provider(request, READERS)
    cert = _get(Certification, request, certification_id, READERS)
    return edit_page(
        request,
        form_class=CertificationForm,
        instance=cert,
        can_edit=role in WRITERS,
        action="certification",
        tenant_of=lambda c: c.tenant,
        title=_("Certification of %(agent)s for %(client)s")
        % {"agent": cert.agent.agent_id, "client": cert.tenant.name},
        back_url=reverse("calls_agent_edit", args=[cert.agent_id]),
        done_url=lambda c: reverse("calls_agent_edit", args=[c.agent_id]),
        context={"delete_url": reverse("calls_certification_delete", args=[cert.pk])},
    )


@login_required
@require_POST
def certification_delete(request: HttpRequest, certification_id: int) -> HttpResponse:
    cert = _get(Certification, request, certification_id, WRITERS)
    agent_pk = cert.agent_id
    delete_object(request, cert, action="certification.deleted", tenant=cert.tenant)
    messages.success(request, _("Certification removed."))
    return redirect("calls_agent_edit", agent_pk=agent_pk)
