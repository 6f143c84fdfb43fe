"""Faults mid-call: the ESL connection drops, the node restarts, CDR posting fails.

Done-when of the telephony substrate: every live call is reconciled (no session, engine call or
agent left hanging) and every leg's CDR is imported exactly once, whether it was posted or left
in the node's error folder and swept later.
"""

from __future__ import annotations

import asyncio
import base64
import random

import pytest
from switchboard_world import did_of, make_directory, start_world

from tests.conftest import PROVIDER_HOST, site

pytestmark = [pytest.mark.django_db]

URL = "/telephony/cdr/"


class InProcessPoster:
    """mod_json_cdr's POSTs, captured while the switch runs and delivered to the real intake
    view afterwards through Django's test client from the sync test (the ORM then runs on the
    test's connection and transaction). ``outage`` makes posts fail like a refused socket, so
    the poster falls back to its error folder as mod_json_cdr does."""

    def __init__(self, node, err_dir):  # type: ignore[no-untyped-def]
        from telephony.simulator.cdr import CdrPoster

        self.node = node
        self.outage = False
        self.captured: list[tuple[str, bytes]] = []
        outer = self

        class Poster(CdrPoster):
            async def post(self, uuid: str, body: bytes) -> int:
                if outer.outage:
                    raise OSError(111, "Connection refused")
                outer.captured.append((uuid, body))
                return 200

        self.poster = Poster("http://127.0.0.1:9/cdr", err_dir)

    def deliver(self, uuid: str, body: bytes) -> int:
        auth = base64.b64encode(f"{self.node.node.name}:{self.node.cdr_secret}".encode()).decode()
        response = site(PROVIDER_HOST).post(
            f"{URL}?uuid={uuid}",
            data=body,
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )
        return response.status_code


def stored_cdrs() -> dict[str, list[str]]:
    from django_tenants.utils import schema_context

    from cdrs.models import RawCdr

    out: dict[str, list[str]] = {}
    for schema in ("alpha", "beta"):
        with schema_context(schema):
            for leg in RawCdr.objects.values_list("leg_uuid", flat=True):
                out.setdefault(str(leg), []).append(schema)
    return out


async def caller(world, switch, tenant: str, i: int, talk: float, digit: str = "1"):  # type: ignore[no-untyped-def]
    from telephony.simulator.traffic import Caller, CallerOutcome, CallerPlan, TenantProfile

    plan = CallerPlan(i, 0.0, tenant, did_of(tenant), f"+38050{i:07d}", patience=10_000.0,
                      talk_time=talk, choices=[digit], wants_callback=False)  # fmt: skip
    outcome = CallerOutcome(plan)
    Caller(
        switch, plan, TenantProfile(tenant, [did_of(tenant)], 0), outcome, random.Random(i)
    ).start()
    return outcome


def test_esl_drop_and_node_restart_mid_call_reconcile_every_call_and_import_every_cdr_once(
    cast, tmp_path
):  # type: ignore[no-untyped-def]
    from telephony import actions
    from telephony.cdr_files import sweep_cdr_dir

    node = actions.do_create_node(
        name="node1",
        esl_host="127.0.0.1",
        esl_port=8021,
        esl_password="ClueCon",
        actor=cast.provider_admin,
    )
    posting = InProcessPoster(node, tmp_path / "cdr-errors")
    world = asyncio.run(_faults(posting))

    # CDRs: posted ones reach the intake (a retried post is stored once); the outage's are in
    # the error folder; the sweeper imports them; a second sweep changes nothing.
    assert posting.poster.written > 0
    for uuid, body in posting.captured:
        assert posting.deliver(uuid, body) in (200, 201)
    for uuid, body in posting.captured[:3]:
        assert posting.deliver(uuid, body) in (200, 201)  # mod_json_cdr retry after a lost reply
    report = sweep_cdr_dir(tmp_path / "cdr-errors", node=node.node, max_bytes=1_000_000, min_age=0)
    assert report.counts["stored"] == posting.poster.written
    again = sweep_cdr_dir(tmp_path / "cdr-errors", node=node.node, max_bytes=1_000_000, min_age=0)
    assert sum(again.counts.values()) == 0
    stored = stored_cdrs()
    assert set(stored) == set(world.cdrs)
    assert all(len(schemas) == 1 for schemas in stored.values())
    for leg, schemas in stored.items():
        assert schemas == [world.cdrs[leg]["tenant"]]
    # Every caller leg's CDR belongs to a call summary of the same tenant.
    for call in world.sink.calls.values():
        assert stored[call.call_id] == [call.tenant_id]


async def _faults(posting):  # type: ignore[no-untyped-def]
    world = await start_world(make_directory(("alpha", "beta"), agents=3), speed=20.0)
    switch, sim_node = world.switches[0], world.nodes[0]
    posting.poster.attach(switch)
    try:
        # Phase 1: calls in every state, then the ESL connection drops under them.
        outcomes = [
            await caller(world, switch, t, i, talk=40.0)
            for i, t in enumerate(["alpha", "beta"] * 3)
        ]
        await asyncio.sleep(1.0)  # 20 simulated seconds: some with agents, some queued
        bridged = [o for o in outcomes if o.bridged_at is not None]
        assert bridged, "some calls should be with agents before the fault"
        link = world.sb.links["node1"]
        assert sim_node.drop_connections() == 1
        async with asyncio.timeout(10):
            while link.client.connections < 2 or not link.client.is_connected:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert link.reconciliations == 1
        # The calls carried on without the control connection (the switch keeps media up).
        assert all(o.ended_at is None for o in outcomes)

        # Phase 2: CDR posting fails, then the node restarts with calls up.
        posting.outage = True
        more = [
            await caller(world, switch, t, 10 + i, talk=500.0)
            for i, t in enumerate(["alpha", "beta"])
        ]
        await asyncio.sleep(0.5)
        live_before = set(switch.channels)
        assert live_before
        new_core = await sim_node.restart(0.5)
        async with asyncio.timeout(10):
            while link.client.core_uuid != new_core or not link.client.is_connected:
                await asyncio.sleep(0.02)
        await world.settle(20)
        await posting.poster.drain()
        assert link.client.restarts == 1
        assert link.reconciliations == 2

        # Every call ended and is accounted for; nobody is left on a call.
        for o in outcomes + more:
            assert o.ended_at is not None
            assert o.uuid in world.sink.calls, o.uuid
        assert world.sb.sessions == {}
        assert world.sb.engine.active_calls() == []
        for agent in ("agent0", "agent1", "agent2"):
            assert world.sb.engine.agent_state(agent)[0] in ("available", "wrap_up")
        restarted = [world.sink.calls[o.uuid] for o in more]
        assert {c.cause for c in restarted} <= {"SYSTEM_SHUTDOWN", "LOST_CHANNEL"}

        return world
    finally:
        await world.close()
