"""The console page, the client context an agent may read, and the wrap-up endpoint."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import A_HOST, PROVIDER_HOST, site

URL = "/agent/dispositions/"


def _call(schema: str, call_id: str, agent: str = "olha", leg_agent: str = "") -> None:
    from django_tenants.utils import schema_context

    from calls.models import Call, Leg

    with schema_context(schema):
        call = Call.objects.create(
            call_id=call_id, a_leg_uuid=uuid.uuid4(), origin="direct", agent=agent
        )
        if leg_agent:
            Leg.objects.create(uuid=uuid.uuid4(), call=call, role="agent", agent=leg_agent)


def _post(client, body) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    response = client.post(
        URL,
        json.dumps(body) if not isinstance(body, bytes) else body,
        content_type="application/json",
    )
    is_json = response.get("Content-Type") == "application/json"
    return response.status_code, response.json() if is_json else {}


def _dispositions(schema: str) -> list[tuple[str, str, str, str]]:
    from django_tenants.utils import schema_context

    from dispositions.models import CallDisposition

    with schema_context(schema):
        return list(CallDisposition.objects.values_list("call_id", "agent_id", "code", "note"))


# -- page and client context -------------------------------------------------------------------


def test_the_agent_opens_the_console_from_the_nav(cast, agents) -> None:  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.agent)
    home = client.get("/")
    assert 'href="/agent/"' in home.content.decode()
    page = client.get("/agent/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="agent-console"' in body and 'data-agent="olha"' in body
    assert 'id="agent-labels"' in body


def test_an_agent_without_an_agent_row_sees_why(cast) -> None:  # type: ignore[no-untyped-def]
    page = site(PROVIDER_HOST, cast.agent).get("/agent/")
    assert page.status_code == 200
    assert 'id="agent-console"' not in page.content.decode()


@pytest.mark.parametrize("who", ["supervisor", "provider_admin", "finance"])
def test_other_staff_get_404(cast, agents, who) -> None:  # type: ignore[no-untyped-def]
    assert site(PROVIDER_HOST, getattr(cast, who)).get("/agent/").status_code == 404


def test_not_on_client_hosts(cast, agents) -> None:  # type: ignore[no-untyped-def]
    assert site(A_HOST, cast.agent).get("/agent/").status_code == 404
    assert site(A_HOST, cast.a_admin).get("/agent/").status_code == 404


def test_client_context_for_a_certified_client_only(cast, agents) -> None:  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.agent)
    data = client.get("/agent/clients/alpha/").json()
    assert data["name"] == "Alpha Retail" and data["mask_caller"] is False
    assert data["queues"] == [{"id": "alpha-main", "name": "Main line"}]
    assert data["agents"] == [{"id": "petro", "name": "Petro"}]
    assert [d["code"] for d in data["dispositions"]][:2] == ["resolved", "follow_up"]
    assert client.get("/agent/clients/beta/").status_code == 404
    assert client.get("/agent/clients/public/").status_code == 404
    assert client.get("/agent/clients/nowhere/").status_code == 404
    assert site(PROVIDER_HOST, cast.supervisor).get("/agent/clients/alpha/").status_code == 404


# -- dispositions ------------------------------------------------------------------------------


def test_the_agent_records_a_disposition_and_may_correct_it(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1")
    client = site(PROVIDER_HOST, cast.agent)
    body = {"tenant": "alpha", "call_id": "call-1", "code": "sale", "note": " two cases "}
    assert _post(client, body) == (200, {"ok": True, "created": True})
    assert _dispositions("alpha") == [("call-1", "olha", "sale", "two cases")]
    assert _post(client, {**body, "code": "resolved", "note": ""}) == (
        200,
        {"ok": True, "created": False},
    )
    assert _dispositions("alpha") == [("call-1", "olha", "resolved", "")]
    assert _dispositions("beta") == []


def test_a_form_post_works_too(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1")
    response = site(PROVIDER_HOST, cast.agent).post(
        URL, {"tenant": "alpha", "call_id": "call-1", "code": "complaint"}
    )
    assert response.status_code == 200
    assert _dispositions("alpha") == [("call-1", "olha", "complaint", "")]


def test_an_agent_on_a_leg_of_the_call_may_dispose_of_it(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1", agent="petro", leg_agent="olha")  # olha took it over
    status, _ = _post(
        site(PROVIDER_HOST, cast.agent), {"tenant": "alpha", "call_id": "call-1", "code": "sale"}
    )
    assert status == 200


def test_another_agents_call_is_404(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1", agent="petro")
    status, data = _post(
        site(PROVIDER_HOST, cast.agent), {"tenant": "alpha", "call_id": "call-1", "code": "sale"}
    )
    assert (status, data["ok"]) == (404, False)
    assert _dispositions("alpha") == []


def test_tenant_walls(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("beta", "call-b")  # a beta call, as if olha had answered it
    client = site(PROVIDER_HOST, cast.agent)
    # Not certified for beta: 404, whatever the call.
    assert _post(client, {"tenant": "beta", "call_id": "call-b", "code": "sale"})[0] == 404
    # Naming alpha for beta's call: alpha's schema has no such call (not recorded: 409).
    assert _post(client, {"tenant": "alpha", "call_id": "call-b", "code": "sale"})[0] == 409
    assert _post(client, {"tenant": "public", "call_id": "call-b", "code": "sale"})[0] == 404
    assert _dispositions("alpha") == [] and _dispositions("beta") == []


def test_a_call_not_recorded_yet_is_409(cast, agents) -> None:  # type: ignore[no-untyped-def]
    status, data = _post(
        site(PROVIDER_HOST, cast.agent), {"tenant": "alpha", "call_id": "later", "code": "sale"}
    )
    assert status == 409 and "not recorded" in data["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"tenant": "alpha", "call_id": "call-1"},
        {"tenant": "alpha", "call_id": "call-1", "code": ""},
        {"tenant": "alpha", "call_id": "call-1", "code": "made-up"},
        {"tenant": "alpha", "call_id": "call-1", "code": "sale", "note": "x" * 2001},
        {"tenant": "alpha", "call_id": "call-1", "code": "sale", "note": 5},
        {"tenant": "alpha", "call_id": "bad id!", "code": "sale"},
        {"call_id": "call-1", "code": "sale"},
        ["alpha", "call-1", "sale"],
        b"{not json",
    ],
)
def test_bad_input_is_400(cast, agents, body) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1")
    status, data = _post(site(PROVIDER_HOST, cast.agent), body)
    assert status == 400 and data["ok"] is False
    assert _dispositions("alpha") == []


def test_a_clients_own_codes_replace_the_defaults(cast, agents) -> None:  # type: ignore[no-untyped-def]
    from django_tenants.utils import schema_context

    from dispositions.models import DispositionCode

    with schema_context("alpha"):
        DispositionCode.objects.create(code="order", label="Order placed", position=1)
        DispositionCode.objects.create(code="old", label="Retired", active=False)
    _call("alpha", "call-1")
    client = site(PROVIDER_HOST, cast.agent)
    codes = client.get("/agent/clients/alpha/").json()["dispositions"]
    assert codes == [{"code": "order", "label": "Order placed"}]
    assert _post(client, {"tenant": "alpha", "call_id": "call-1", "code": "sale"})[0] == 400
    assert _post(client, {"tenant": "alpha", "call_id": "call-1", "code": "old"})[0] == 400
    assert _post(client, {"tenant": "alpha", "call_id": "call-1", "code": "order"})[0] == 200


@pytest.mark.parametrize("who", ["supervisor", "provider_admin", "a_admin"])
def test_only_agents_may_post(cast, agents, who) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1")
    status, _ = _post(
        site(PROVIDER_HOST, getattr(cast, who)),
        {"tenant": "alpha", "call_id": "call-1", "code": "sale"},
    )
    assert status == 404


def test_not_on_a_client_host_nor_by_get(cast, agents) -> None:  # type: ignore[no-untyped-def]
    _call("alpha", "call-1")
    client = site(A_HOST, cast.agent)
    response = client.post(
        URL,
        json.dumps({"tenant": "alpha", "call_id": "call-1", "code": "sale"}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert site(PROVIDER_HOST, cast.agent).get(URL).status_code == 405


def test_anonymous_is_sent_to_sign_in_or_refused(cast, agents) -> None:  # type: ignore[no-untyped-def]
    assert site(PROVIDER_HOST).get("/agent/").status_code == 302
    assert _post(site(PROVIDER_HOST), {"tenant": "alpha", "call_id": "c", "code": "sale"})[0] == 404
