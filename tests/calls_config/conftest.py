"""Demo call configuration on the test cast's clients (alpha, beta), built per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def calls(cast, in_schema):  # type: ignore[no-untyped-def]
    """Queues, policies, numbers, menus and two agents for clients A and B."""
    from portal.models import IvrMenu, IvrOption
    from routing.models import Agent, Certification, Queue
    from telephony.models import CallPolicy, Number
    from tenants.models import Membership, Role, User

    qa = Queue.objects.create(queue_id="alpha-sales", tenant=cast.a, name="Alpha sales")
    qa2 = Queue.objects.create(
        queue_id="alpha-vip", tenant=cast.a, name="Alpha VIP", skills=[["vip", 2]]
    )
    qb = Queue.objects.create(queue_id="beta-cards", tenant=cast.b, name="Beta cards")
    CallPolicy.objects.create(
        tenant=cast.a,
        default_queue="alpha-sales",
        weekly_hours=[[0, "09:00:00", "18:00:00"]],
        holidays=["2026-12-25"],
        second_line="sofia/gateway/alpha/+380441112233",
    )
    Number.objects.create(did="+380441110001", tenant=cast.a)
    Number.objects.create(did="+12125550001", tenant=cast.b, origin="overflow")
    with in_schema("alpha"):
        main = IvrMenu.objects.create(menu_id="main", prompt_text="Hello", is_entry=True)
        IvrOption.objects.create(menu=main, digit="1", action="queue:alpha-sales")
        IvrOption.objects.create(menu=main, digit="2", action="answer")
        IvrOption.objects.create(menu=main, digit="0", action="escalate")
    with in_schema("beta"):
        IvrMenu.objects.create(menu_id="beta-main", prompt_text="Beta Secret Menu", is_entry=True)
    agents = []
    for n in (1, 2):
        user = User.objects.create_user(email=f"pool{n}@provider.test", password="x-pass-12345")
        Membership.objects.create(user=user, tenant=None, role=Role.AGENT)
        agent = Agent.objects.create(user=user, agent_id=f"a{n}", endpoint=f"user/100{n}")
        Certification.objects.create(agent=agent, tenant=cast.a, skills={"vip": n})
        agents.append(agent)
    Certification.objects.create(agent=agents[0], tenant=cast.b, skills={})
    return {
        "queues": (qa, qa2, qb),
        "menu": main,
        "agents": agents,
    }
