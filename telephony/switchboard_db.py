"""The database side of the switchboard's configuration: ``load_directory`` and ``config_version``.

``load_directory()`` reads numbers, call policies, queues, agents and certifications from the
public schema (five queries) and each client's IVR menus from its own schema (two queries per
client, each inside an explicit ``schema_context``), and returns one immutable
:class:`~telephony.callflow.directory.Directory`.

One client's broken configuration never takes the others down: a plan that fails validation
(a menu pointing at a deleted queue, say) is replaced by the same plan without menus and logged;
a number whose override names no menu or queue of its client loses the override; an overflow
rule naming another client's queue is dropped. Every such repair is logged at WARNING.

``config_version()`` is cheap (one query) and changes whenever anything ``load_directory``
reads changes: a counter bumped by signals on every save/delete of these models (and of
memberships), the clients' ``updated_at`` (status, time zone, language), each client's current
UTC offset (daylight saving moves ``TenantConfig.utc_offset_s``) and the set of agents whose
user account is switched off. Poll it; reload when it differs. Read the version *before*
loading the directory, so a change made in between is seen at the next poll.

Both are synchronous ORM code: from async code call them through ``sync_to_async``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django_tenants.utils import schema_context

from portal.models import IvrMenu, IvrOption
from routing.engine.model import OverflowRule, QueueConfig, TenantConfig
from routing.models import Agent, Certification, Queue
from telephony.callflow.directory import (
    AgentSeat,
    Directory,
    Menu,
    NumberRoute,
    Prompt,
    TenantCallPlan,
    check_action,
)
from telephony.models import (
    DEFAULT_CLOSED_MESSAGE,
    DEFAULT_SUSPENDED_MESSAGE,
    CallPolicy,
    Number,
)
from tenants.actions import site_url
from tenants.models import Client, Role

log = logging.getLogger("telephony.switchboard_db")

__all__ = ["config_version", "load_directory", "load_tenant_menus", "utc_offset_s"]


def utc_offset_s(time_zone: str, at: datetime | None = None) -> float:
    """The zone's offset from UTC at ``at`` (now), in seconds."""
    moment = at or datetime.now(UTC)
    offset = moment.astimezone(ZoneInfo(time_zone)).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def config_version() -> str:
    """A value that changes whenever the call configuration changes (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT value FROM public.telephony_callconfigversion WHERE id = 1),"
            " (SELECT max(updated_at) FROM public.tenants_client),"
            " (SELECT array_agg(DISTINCT time_zone ORDER BY time_zone) FROM public.tenants_client),"
            # Agents whose user account is switched off (done with a bulk update, no signal).
            " (SELECT md5(coalesce(string_agg(a.id::text, ',' ORDER BY a.id), ''))"
            "    FROM public.routing_agent a JOIN public.tenants_user u ON u.id = a.user_id"
            "   WHERE NOT u.is_active)"
        )
        counter, clients_changed, zones, inactive_agents = cursor.fetchone()
    now = datetime.now(UTC)
    offsets = ",".join(f"{int(utc_offset_s(z, now))}" for z in zones or () if _known_zone(z))
    changed = clients_changed.isoformat() if clients_changed else "-"
    return f"{counter or 0}|{changed}|{offsets}|{inactive_agents[:12]}"


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True


def load_tenant_menus(schema_name: str) -> tuple[dict[str, Menu], str]:
    """A client's menus (by id) and its entry menu id ("" = none), read in its own schema."""
    with schema_context(schema_name):
        menus = list(IvrMenu.objects.all())
        options: dict[int, list[IvrOption]] = defaultdict(list)
        for option in IvrOption.objects.order_by("menu_id", "digit"):
            options[option.menu_id].append(option)
    built: dict[str, Menu] = {}
    entry = ""
    for menu in menus:
        try:
            built[menu.menu_id] = menu.to_menu(options.get(menu.pk, []))
        except ValueError as exc:
            log.warning("client %s: menu %s skipped: %s", schema_name, menu.menu_id, exc)
            continue
        if menu.is_entry:
            entry = menu.menu_id
    return built, entry


def _plan(
    client: Client, policy: CallPolicy | None, menus: dict[str, Menu], entry: str
) -> TenantCallPlan:
    base: dict[str, object]
    if policy is not None:
        policy.tenant = client  # already loaded; no query
        base = policy.plan_kwargs()
    else:
        base = {
            "suspended_prompt": Prompt(text=DEFAULT_SUSPENDED_MESSAGE),
            "closed_prompt": Prompt(text=DEFAULT_CLOSED_MESSAGE),
        }
    return TenantCallPlan(
        tenant_id=client.schema_name,
        active=not client.is_suspended,
        entry_menu=entry,
        menus=menus,
        language=client.language,
        portal_url=site_url(client),
        **base,  # type: ignore[arg-type]
    )


def _menu_queues(plan: TenantCallPlan) -> set[str]:
    found = {plan.default_queue} if plan.default_queue else set()
    for menu in plan.menus.values():
        for action in [o.action for o in menu.options] + [menu.on_timeout]:
            kind, arg = check_action(action)
            if kind == "queue":
                found.add(arg)
    return found


def _tenant_config(client: Client, policy: CallPolicy | None, now: datetime) -> TenantConfig:
    offset = utc_offset_s(client.time_zone, now) if _known_zone(client.time_zone) else 0.0
    if policy is None:
        return TenantConfig(tenant_id=client.schema_name, utc_offset_s=offset)
    try:
        return policy.tenant_config(offset)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("client %s: escalation rules ignored: %s", client.schema_name, exc)
        return replace(
            TenantConfig(tenant_id=client.schema_name, utc_offset_s=offset),
            max_overflow_in_concurrent=policy.max_overflow_concurrent,
            max_overflow_in_minutes_per_day=policy.max_overflow_minutes_per_day,
            overflow_refused_target=policy.overflow_refused_target or "client:busy",
            second_line=policy.second_line or None,
        )


def _queue_config(queue: Queue, tenant_queues: set[str]) -> QueueConfig | None:
    try:
        config = queue.to_config()
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("queue %s skipped: %s", queue.queue_id, exc)
        return None
    kept: list[OverflowRule] = []
    for rule in config.overflow:
        kind, _sep, target = rule.target.partition(":")
        if kind == "queue" and (target not in tenant_queues or target == queue.queue_id):
            log.warning(
                "queue %s: overflow to %s dropped (not a queue of its client)",
                queue.queue_id,
                target,
            )
            continue
        kept.append(rule)
    if len(kept) != len(config.overflow):
        config = replace(config, overflow=tuple(kept))
    return config


def load_directory(now: datetime | None = None) -> Directory:
    """Everything the call flow reads, from the database, as one immutable value."""
    now = now or datetime.now(UTC)
    clients = list(Client.objects.exclude(schema_name="public").order_by("schema_name"))
    schema_of = {c.pk: c.schema_name for c in clients}
    policies = {p.tenant_id: p for p in CallPolicy.objects.all()}
    queue_rows = [
        row
        for row in Queue.objects.select_related("tenant").order_by("queue_id")
        if row.tenant_id in schema_of
    ]
    by_tenant: dict[int, set[str]] = defaultdict(set)
    for row in queue_rows:
        by_tenant[row.tenant_id].add(row.queue_id)
    queues: dict[str, QueueConfig] = {}
    usable: dict[int, set[str]] = defaultdict(set)  # queues that made it into the directory
    for row in queue_rows:
        config = _queue_config(row, by_tenant[row.tenant_id])
        if config is not None:
            queues[config.queue_id] = config
            usable[row.tenant_id].add(config.queue_id)

    tenants: dict[str, TenantCallPlan] = {}
    routing: dict[str, TenantConfig] = {}
    for client in clients:
        policy = policies.get(client.pk)
        menus, entry = load_tenant_menus(client.schema_name)
        try:
            plan = _plan(client, policy, menus, entry)
        except ValueError as exc:
            log.warning("client %s: menus ignored: %s", client.schema_name, exc)
            plan = _plan(client, policy, {}, "")
        own = usable[client.pk]
        missing = _menu_queues(plan) - own
        if missing:
            log.warning(
                "client %s: menus ignored, they name queues it does not have: %s",
                client.schema_name,
                ", ".join(sorted(missing)),
            )
            plan = replace(plan, menus={}, entry_menu="")
            if plan.default_queue not in own:
                plan = replace(plan, default_queue="")
        tenants[client.schema_name] = plan
        routing[client.schema_name] = _tenant_config(client, policy, now)

    numbers: dict[str, NumberRoute] = {}
    for number in Number.objects.filter(active=True).order_by("did"):
        schema = schema_of.get(number.tenant_id)
        if schema is None:
            continue
        plan = tenants[schema]
        entry_menu, queue = number.entry_menu, number.queue
        if entry_menu and entry_menu not in plan.menus:
            log.warning(
                "number %s: entry menu %s is not a menu of %s", number.did, entry_menu, schema
            )
            entry_menu = ""
        if queue and queue not in usable[number.tenant_id]:
            log.warning("number %s: queue %s is not a queue of %s", number.did, queue, schema)
            queue = ""
        try:
            numbers[number.did] = NumberRoute(
                did=number.did,
                tenant_id=schema,
                origin=number.origin,
                entry_menu=entry_menu,
                queue=queue,
            )
        except ValueError as exc:
            log.warning("number %s skipped: %s", number.did, exc)

    certs: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
    for agent_pk, schema, skills in Certification.objects.filter(agent__active=True).values_list(
        "agent_id", "tenant__schema_name", "skills"
    ):
        certs[agent_pk][schema] = {str(k): int(v) for k, v in (skills or {}).items()}
    agents: dict[str, AgentSeat] = {}
    seated = Agent.objects.filter(
        active=True,
        user__is_active=True,
        user__memberships__tenant__isnull=True,
        user__memberships__role=Role.AGENT,
    )
    for agent in seated.order_by("agent_id"):
        try:
            agents[agent.agent_id] = agent.seat(certs.get(agent.pk, {}))
        except (ValueError, TypeError) as exc:
            log.warning("agent %s skipped: %s", agent.agent_id, exc)

    return Directory(
        numbers=numbers, tenants=tenants, routing=routing, queues=queues, agents=agents
    )
