"""Demo call configuration for the demo clients of ``tenants.demo``: numbers, call policies,
queues, an entry IVR menu each, and ten provider agents (user/1001..user/1010) certified for
them.

Idempotent: rows that exist are left as they are (an edit made in the demo survives a rerun).
"""

from __future__ import annotations

from django.db import transaction
from django_tenants.utils import schema_context

from portal.models import IvrMenu, IvrOption
from routing.models import Agent, Certification, Queue
from telephony.models import CallPolicy, Number
from tenants.demo import DEMO_CLIENTS, DEMO_PASSWORD
from tenants.models import Client, Membership, Role, User

# The i-th demo client gets the i-th of these: (numbers, queues [(id suffix, name, skills)],
# self-service answer, second line ("{schema}" is filled in)).
DEMO_CALLS = [
    (
        [("+380441110001", "direct"), ("+380441110099", "overflow")],
        [("orders", "Orders", [["orders", 1]]), ("returns", "Returns", [["returns", 1]])],
        "Your last order ships tomorrow.",
        "sofia/gateway/{schema}/+380441112233",
    ),
    (
        [("+48221110001", "direct"), ("+48221110099", "overflow")],
        [("cards", "Cards", [["cards", 2]]), ("loans", "Loans", [["loans", 1]])],
        "Your card is active; the balance is in the app.",
        "sofia/gateway/{schema}/+48221112233",
    ),
    (
        [("+77272110001", "direct")],
        [("support", "Support", [["internet", 1]])],
        "There is no outage at your address.",
        "sofia/gateway/{schema}/+77272112233",
    ),
]
AGENT_COUNT = 10


def _queues(client: Client, specs: list[tuple[str, str, list[list[object]]]]) -> list[Queue]:
    queues = []
    for index, (suffix, name, skills) in enumerate(specs):
        queue, _created = Queue.objects.get_or_create(
            queue_id=f"{client.schema_name}-{suffix}",
            defaults={
                "tenant": client,
                "name": name,
                "strategy": "longest_idle" if index == 0 else "skill_weighted",
                "skills": skills,
                "relaxation": [[60.0, 0]],
                "callback_over_s": 180.0,
                "overflow": [{"kind": "ewt", "threshold": 600.0, "target": "callback"}],
            },
        )
        queues.append(queue)
    return queues


def _policy(client: Client, first_queue: Queue, second_line: str) -> None:
    CallPolicy.objects.get_or_create(
        tenant=client,
        defaults={
            "greeting": f"Welcome to {client.name}.",
            "default_queue": first_queue.queue_id,
            # Kvitka buys a 24/7 hotline (so the demo's wallboard moves at any hour); the
            # others keep office hours and go to voicemail when closed.
            "weekly_hours": []
            if client.schema_name == "kvitka"
            else [[day, "08:00:00", "20:00:00"] for day in range(5)]
            + [[5, "10:00:00", "16:00:00"]],
            "holidays": ["2026-12-25", "2027-01-01"],
            "closed_action": "voicemail",
            "recording": CallPolicy.Recording.SAMPLE,
            "recording_sample": 0.2,
            "recording_roles": [Role.CLIENT_ADMIN.value, Role.SUPERVISOR.value],
            "second_line": second_line,
            "voicemail_digit": "9",
            "max_overflow_concurrent": 10,
            "max_overflow_minutes_per_day": 600.0,
            "escalation": [
                {
                    "target": second_line,
                    "reason": "vip",
                    "topics": [],
                    "vip": True,
                    "hours": None,
                    "on_arrival": True,
                }
            ],
        },
    )


def _menu(client: Client, queues: list[Queue], self_service: str) -> None:
    with schema_context(client.schema_name):
        if IvrMenu.objects.exists():
            return
        main = IvrMenu.objects.create(
            menu_id="main",
            prompt_text=(
                "Press 1 to speak to us, 2 for an automatic answer about your account,"
                " 0 for our specialists."
            ),
            on_timeout=f"queue:{queues[0].queue_id}",
            is_entry=True,
        )
        IvrOption.objects.create(menu=main, digit="1", action=f"queue:{queues[0].queue_id}")
        IvrOption.objects.create(menu=main, digit="2", action="answer")
        IvrOption.objects.create(menu=main, digit="0", action="escalate")
        IvrOption.objects.create(menu=main, digit="8", action=f"say:{self_service}")
        if len(queues) > 1:
            IvrOption.objects.create(menu=main, digit="3", action=f"queue:{queues[1].queue_id}")


def _agents(clients: list[Client]) -> None:
    for n in range(1, AGENT_COUNT + 1):
        extension = 1000 + n
        email = f"agent{n:02d}@provider.localhost"
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email, password=DEMO_PASSWORD, full_name=f"Demo Agent {n:02d}"
            )
        Membership.objects.get_or_create(user=user, tenant=None, defaults={"role": Role.AGENT})
        agent, _created = Agent.objects.get_or_create(
            user=user,
            defaults={
                "agent_id": f"agent-{extension}",
                "endpoint": f"user/{extension}",
                "clearance": 1 if n <= 5 else 0,
            },
        )
        for index, client in enumerate(clients):
            # Everyone takes the first client; the others in turns (shared pool, walls by cert).
            if index and n % len(clients) not in (index, 0):
                continue
            skills = {
                skill: 1 + (n + i) % 3
                for i, queue in enumerate(client.queues.all())
                for skill, _level in queue.skills
            }
            Certification.objects.get_or_create(
                agent=agent, tenant=client, defaults={"skills": skills}
            )


def seed_demo_calls(schemas: list[str] | None = None) -> list[str]:
    """Create the demo call configuration for ``schemas`` (default: the demo clients).

    Returns lines to print.
    """
    if schemas is None:
        schemas = [spec.schema for spec in DEMO_CLIENTS]
    lines = []
    clients: list[Client] = []
    with transaction.atomic():
        for schema, template in zip(schemas, DEMO_CALLS, strict=False):
            client = Client.objects.filter(schema_name=schema).first()
            if client is None:
                continue
            numbers, queue_specs, self_service, second_line = template
            second_line = second_line.format(schema=schema)
            queues = _queues(client, queue_specs)
            _policy(client, queues[0], second_line)
            _menu(client, queues, self_service)
            for did, origin in numbers:
                Number.objects.get_or_create(did=did, defaults={"tenant": client, "origin": origin})
            clients.append(client)
            lines.append(f"  {client.name}: numbers {', '.join(d for d, _o in numbers)}")
        _agents(clients)
    lines.append(f"  Agents: user/1001..user/{1000 + AGENT_COUNT} (agentNN@provider.localhost)")
    return ["Demo calls:", *lines]
