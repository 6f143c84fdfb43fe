"""CDR intake: real mod_json_cdr posts land once, in the right client's schema; bad ones get
a clear 4xx and nothing already stored is touched."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import override_settings

from tests.conftest import A_HOST, PROVIDER_HOST, site

CDR_DIR = (
    Path(os.environ.get("CCP_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
    / "fixtures"
    / "freeswitch"
    / "cdr"
)
URL = "/telephony/cdr/"


def fixture_bodies() -> list[Path]:
    return sorted(p for p in CDR_DIR.glob("*.json") if p.name != "index.json")


def http_capture(number: str) -> tuple[dict[str, str], bytes, str]:
    """Headers, body and request target of one captured mod_json_cdr request."""
    (path,) = CDR_DIR.glob(f"http/{number}-*.http")
    head, body = path.read_bytes().split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    target = lines[0].split(" ")[1]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return headers, body, target


def with_tenant(data: dict, tenant: str | None, did: str = "+12025550100") -> dict:
    """A copy of a fixture CDR as if our dialplan had set the variables (encoded like the
    fixture's other values: with encode-values=false its stamps hold a plain space)."""
    data = json.loads(json.dumps(data))
    if tenant is not None:
        plain = " " in data["variables"].get("start_stamp", "")
        data["variables"]["ccp_tenant"] = tenant
        data["variables"]["ccp_did"] = did if plain else quote(did, safe="")
    return data


def load(name: str) -> dict:
    (path,) = [p for p in fixture_bodies() if p.name.startswith(name)]
    return json.loads(path.read_bytes())


def auth(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def node(cast):  # type: ignore[no-untyped-def]
    from telephony import actions

    made = actions.do_create_node(
        name="fs-1",
        esl_host="10.0.0.21",
        esl_port=8021,
        esl_password="esl-secret-1",
        actor=cast.provider_admin,
    )
    return made


def post(node, body: bytes, *, content_type="application/x-www-form-urlencoded", query="", **extra):  # type: ignore[no-untyped-def]
    extra.setdefault("HTTP_AUTHORIZATION", auth(node.node.name, node.cdr_secret))
    return site(PROVIDER_HOST).post(URL + query, data=body, content_type=content_type, **extra)


def post_json(node, data: dict, **kw):  # type: ignore[no-untyped-def]
    uuid = data["variables"]["uuid"]
    return post(node, json.dumps(data, separators=(",", ":")).encode(), query=f"?uuid={uuid}", **kw)


def rows(schema: str):  # type: ignore[no-untyped-def]
    from django_tenants.utils import schema_context

    from cdrs.models import RawCdr

    with schema_context(schema):
        return {str(r.leg_uuid): r for r in RawCdr.objects.all()}


# -- the good path -----------------------------------------------------------------------------
def test_every_fixture_cdr_lands_once_in_its_clients_schema(cast, node):  # type: ignore[no-untyped-def]
    bodies = fixture_bodies()
    assert len(bodies) >= 50
    expected: dict[str, set[str]] = {"alpha": set(), "beta": set()}
    for i, path in enumerate(bodies):
        tenant = "alpha" if i % 2 == 0 else "beta"
        data = with_tenant(json.loads(path.read_bytes()), tenant)
        response = post_json(node, data)
        assert response.status_code == 200, (path.name, response.content)
        assert response.json() == {"status": "stored", "leg_uuid": data["variables"]["uuid"]}
        expected[tenant].add(data["variables"]["uuid"])
    # Posting all of them again (mod_json_cdr retrying after a lost reply) changes nothing.
    for i, path in enumerate(bodies):
        data = with_tenant(json.loads(path.read_bytes()), "alpha" if i % 2 == 0 else "beta")
        response = post_json(node, data)
        assert response.status_code == 200
        assert response.json()["status"] == "duplicate"
    alpha, beta = rows("alpha"), rows("beta")
    assert set(alpha) == expected["alpha"]
    assert set(beta) == expected["beta"]
    assert not set(alpha) & set(beta), "a leg stored in both clients' schemas"
    assert all(r.node_name == "fs-1" and r.did == "+12025550100" for r in alpha.values())


def test_captured_request_replayed_byte_for_byte(cast, node):  # type: ignore[no-untyped-def]
    headers, body, target = http_capture("041")
    data = with_tenant(json.loads(body), "alpha")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    response = post(
        node,
        json.dumps(data, separators=(",", ":")).encode(),
        content_type=headers["Content-Type"],
        query=target[target.index("?") :],
        HTTP_USER_AGENT=headers["User-Agent"],
    )
    assert response.status_code == 200, response.content
    row = rows("alpha")["a0870693-10c4-4414-82b9-73c33c4cfdae"]
    assert row.channel_name == "loopback/ans-b"
    assert row.hangup_cause == "NORMAL_CLEARING"
    assert row.answered and row.billsec == 2 and row.duration_seconds == 2
    assert row.billmsec == 2040
    assert row.caller_id_number == "5554000"
    assert row.destination_number == "ans"
    assert row.values_encoded is True
    assert row.started_at.isoformat() == "2026-11-25T19:06:09.482684+00:00"
    assert str(row.call_uuid) == "a0870693-10c4-4414-82b9-73c33c4cfdae"
    assert row.core_uuid == "1eb1c0ea-78ab-474f-aaf4-23f62d687c12"
    # The body is kept as sent: values still URL-encoded, as mod_json_cdr wrote them.
    assert row.body["variables"]["esltest_cdr_tag"] == "a%26b%3Dc%20d%20%22q%22%20%C3%BC"


def test_encode_values_false_is_read_as_plain_text(cast, node):  # type: ignore[no-untyped-def]
    data = with_tenant(load("7ffe0c67"), "beta")
    data["variables"]["ccp_did"] = "+12025550101"  # plain, like every value in this mode
    assert post_json(node, data).status_code == 200
    row = rows("beta")["7ffe0c67-e93c-4258-8e89-6bea2a1e9356"]
    assert row.values_encoded is False
    assert row.did == "+12025550101"
    assert row.body["variables"]["esltest_cdr_tag"] == 'a&b=c d "q" ü'


def test_unanswered_leg(cast, node):  # type: ignore[no-untyped-def]
    assert post_json(node, with_tenant(load("198d2eb7"), "alpha")).status_code == 200
    row = rows("alpha")["198d2eb7-bd3b-4f2f-bc68-aeb2042ad1d4"]
    assert row.hangup_cause == "USER_BUSY"
    assert not row.answered and row.answered_at is None and row.billsec == 0


@pytest.mark.parametrize("encoding", ["urlencoded", "base64", "json"])
def test_other_mod_json_cdr_encodings(cast, node, encoding):  # type: ignore[no-untyped-def]
    data = with_tenant(load("a0870693"), "alpha")
    text = json.dumps(data, separators=(",", ":"))
    if encoding == "urlencoded":  # encode=true
        body, ctype = ("cdr=" + quote(text, safe="")).encode(), "application/x-www-form-urlencoded"
    elif encoding == "base64":  # encode=base64
        body, ctype = (
            b"cdr=" + base64.b64encode(text.encode()),
            "application/x-www-form-base64-encoded",
        )
    else:  # encode=false without disable-100-continue
        body, ctype = text.encode(), "application/json"
    response = post(node, body, content_type=ctype)
    assert response.status_code == 200, response.content
    assert "a0870693-10c4-4414-82b9-73c33c4cfdae" in rows("alpha")


# -- unresolvable clients: quarantined, never dropped ------------------------------------------
@pytest.mark.parametrize(
    ("tenant", "reason"),
    [(None, "no_tenant"), ("gamma", "unknown_tenant"), ("public", "unknown_tenant")],
)
def test_unroutable_cdr_is_quarantined_once(cast, node, caplog, tenant, reason):  # type: ignore[no-untyped-def]
    from telephony.models import UnroutedCdr

    data = with_tenant(load("3d645a4a"), tenant)
    with caplog.at_level(logging.WARNING, logger="telephony.cdr"):
        response = post_json(node, data)
    assert response.status_code == 202
    assert response.json()["reason"] == reason
    assert "quarantined" in caplog.text and "3d645a4a" in caplog.text
    assert post_json(node, data).status_code == 202  # repeat: still accepted, still one row
    kept = UnroutedCdr.objects.get()
    assert str(kept.leg_uuid) == "3d645a4a-ecf6-4baf-b72b-7b79e2554969"
    assert kept.reason == reason and kept.node == node.node
    assert kept.body["variables"]["uuid"] == data["variables"]["uuid"]
    assert not rows("alpha") and not rows("beta")


def test_quarantined_leg_leaves_quarantine_once_routable(cast, node):  # type: ignore[no-untyped-def]
    from telephony.models import UnroutedCdr

    assert post_json(node, with_tenant(load("3d645a4a"), None)).status_code == 202
    assert post_json(node, with_tenant(load("3d645a4a"), "beta")).status_code == 200
    assert not UnroutedCdr.objects.exists()
    assert "3d645a4a-ecf6-4baf-b72b-7b79e2554969" in rows("beta")


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "JSON object"),
        (b'{"core-uuid": "x", "switchname": "vm"}', "variables"),
        (b'{"core-uuid": "x", "variables": {"uuid": "not-a-uuid"}}', "not a UUID"),
        (b'{"core-uuid": "x", "variables": {"uuid": 7}}', "variables"),
        (b"cdr=%7Bbroken", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[" * 200_000, "nested too deeply"),
    ],
)
def test_bad_bodies_get_400_with_a_reason(cast, node, caplog, body, message):  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="telephony.cdr"):
        response = post(node, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "refused" in caplog.text


def test_non_numeric_billing_field_is_refused(cast, node):  # type: ignore[no-untyped-def]
    data = with_tenant(load("a0870693"), "alpha")
    data["variables"]["billsec"] = "two"
    response = post_json(node, data)
    assert response.status_code == 400
    assert "billsec" in response.json()["error"]
    assert not rows("alpha")


def test_url_uuid_must_match_the_body(cast, node):  # type: ignore[no-untyped-def]
    data = with_tenant(load("a0870693"), "alpha")
    body = json.dumps(data).encode()
    response = post(node, body, query="?uuid=3d645a4a-ecf6-4baf-b72b-7b79e2554969")
    assert response.status_code == 400
    assert "differ" in response.json()["error"]


def test_credentials_are_required_and_checked(cast, node, caplog):  # type: ignore[no-untyped-def]
    data = json.dumps(with_tenant(load("a0870693"), "alpha")).encode()
    missing = post(node, data, HTTP_AUTHORIZATION="")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Basic ")
    with caplog.at_level(logging.WARNING, logger="telephony.cdr"):
        wrong = post(node, data, HTTP_AUTHORIZATION=auth("fs-1", "guess"))
        unknown = post(node, data, HTTP_AUTHORIZATION=auth("fs-9", node.cdr_secret))
    assert wrong.status_code == 401 and unknown.status_code == 401
    assert wrong.json() == unknown.json()  # no telling which part was wrong
    assert "wrong secret for node fs-1" in caplog.text and "unknown node 'fs-9'" in caplog.text
    garbled = post(node, data, HTTP_AUTHORIZATION="Basic !!!")
    assert garbled.status_code == 401
    assert not rows("alpha")


def test_disabled_node_is_refused(cast, node):  # type: ignore[no-untyped-def]
    from telephony import actions

    actions.do_update_node(node.node, enabled=False, actor=cast.provider_admin)
    response = post_json(node, with_tenant(load("a0870693"), "alpha"))
    assert response.status_code == 403
    assert "disabled" in response.json()["error"]
    assert not rows("alpha")


@override_settings(CDR_MAX_BYTES=2000)
def test_oversized_cdr_gets_413(cast, node):  # type: ignore[no-untyped-def]
    data = with_tenant(load("a0870693"), "alpha")  # ~3 KB
    response = post_json(node, data)
    assert response.status_code == 413
    assert "2000 bytes" in response.json()["error"]
    assert not rows("alpha")


def test_only_post_on_the_providers_host(cast, node):  # type: ignore[no-untyped-def]
    response = site(PROVIDER_HOST).get(URL, HTTP_AUTHORIZATION=auth("fs-1", node.cdr_secret))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    # Client sites don't serve it at all.
    data = json.dumps(with_tenant(load("a0870693"), "alpha")).encode()
    response = site(A_HOST).post(
        URL,
        data=data,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth("fs-1", node.cdr_secret),
    )
    assert response.status_code == 404


def test_a_stored_cdr_is_never_overwritten(cast, node):  # type: ignore[no-untyped-def]
    first = with_tenant(load("a0870693"), "alpha")
    assert post_json(node, first).status_code == 200
    changed = with_tenant(load("a0870693"), "alpha")
    changed["variables"]["billsec"] = "999"
    assert post_json(node, changed).json()["status"] == "duplicate"
    assert rows("alpha")["a0870693-10c4-4414-82b9-73c33c4cfdae"].billsec == 2
