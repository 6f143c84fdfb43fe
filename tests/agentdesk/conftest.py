"""The agents' console: an agent row for the cast's agent, certified for client A."""

from __future__ import annotations

import pytest


def make_agents():  # type: ignore[no-untyped-def]
    """agent@provider.test -> Agent "olha" certified for alpha; a second agent "petro"
    (a user of its own) certified for alpha too; queues in alpha and beta."""
    from routing.models import Agent, Certification, Queue
    from tenants.models import Client, Membership, Role, User
    from tests.conftest import PASSWORD

    alpha = Client.objects.get(schema_name="alpha")
    beta = Client.objects.get(schema_name="beta")
    olha = Agent.objects.create(
        user=User.objects.get(email="agent@provider.test"), agent_id="olha", endpoint="user/1001"
    )
    petro_user = User.objects.create_user(
        email="petro@provider.test", password=PASSWORD, full_name="Petro"
    )
    Membership.objects.create(user=petro_user, tenant=None, role=Role.AGENT)
    petro = Agent.objects.create(user=petro_user, agent_id="petro", endpoint="user/1002")
    Certification.objects.create(agent=olha, tenant=alpha, skills={})
    Certification.objects.create(agent=petro, tenant=alpha, skills={})
    Queue.objects.create(queue_id="alpha-main", tenant=alpha, name="Main line")
    Queue.objects.create(queue_id="beta-main", tenant=beta, name="Beta line")
    return olha, petro


def remove_agents() -> None:
    from routing.models import Agent, Queue
    from tenants.models import User

    Agent.objects.filter(agent_id__in=["olha", "petro"]).delete()
    Queue.objects.filter(queue_id__in=["alpha-main", "beta-main"]).delete()
    User.objects.filter(email="petro@provider.test").delete()


@pytest.fixture
def agents(cast):  # type: ignore[no-untyped-def]
    """Inside the test's transaction (HTTP tests)."""
    return make_agents()
