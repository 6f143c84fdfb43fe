"""The console's agent-to-agent transfer and on-demand recording commands (agentdesk/consumers.py).

Same fake switchboard as test_consumer.py: the consumer checks the walls, relays with the
signed-in agent's id and passes the switchboard's answer (or refusal) back to the browser.
"""

from __future__ import annotations

from agentdesk.consumers import check_command
from tests.agentdesk import test_consumer as base
from tests.agentdesk.test_consumer import OFFER, _agent, _push

# The fake switchboard and its fixtures, shared with test_consumer.py.
committed = base.committed
memory_layer = base.memory_layer
switchboard = base.switchboard


def test_record_takes_only_a_call_id() -> None:
    assert check_command({"command": "record", "call_id": "c1", "path": "/etc/passwd"}) == {
        "command": "record",
        "call_id": "c1",
    }


async def test_record_is_relayed_for_the_agents_own_call_only(switchboard) -> None:  # type: ignore[no-untyped-def]
    olha, petro = await _agent(), await _agent("petro@provider.test")
    await _push("olha", {**OFFER, "kind": "connected", "contact": None})
    await olha.receive_json_from(timeout=5)
    await petro.send_json_to({"command": "record", "call_id": "call-1"})
    assert (await petro.receive_json_from(timeout=5))["message"] == "not your call"
    await olha.send_json_to({"command": "record", "id": 7})
    reply = await olha.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"]) == (False, "call_id is missing or malformed")
    assert switchboard.seen == []
    await olha.send_json_to({"command": "record", "call_id": "call-1", "id": 8})
    reply = await olha.receive_json_from(timeout=5)
    assert (reply["id"], reply["command"], reply["ok"]) == (8, "record", True)
    assert [(m["agent_id"], m["command"], m["call_id"]) for m in switchboard.seen] == [
        ("olha", "record", "call-1")
    ]
    # The switchboard's "recording" push reaches the agent's console as is.
    await _push("olha", {"kind": "recording", "call_id": "call-1", "on": True, "seq": 6})
    event = (await olha.receive_json_from(timeout=5))["event"]
    assert (event["kind"], event["on"]) == ("recording", True)
    await olha.disconnect()
    await petro.disconnect()


async def test_a_refused_record_or_transfer_shows_the_switchboards_reason(switchboard) -> None:  # type: ignore[no-untyped-def]
    refusals = {
        "record": "this client does not allow recording",
        "transfer": "petro cannot take this call: not logged in",
    }
    switchboard.answer = lambda m: {"ok": False, "message": refusals[m["command"]]}
    ws = await _agent()
    await _push("olha", {**OFFER, "kind": "connected", "contact": None})
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"command": "record", "call_id": "call-1"})
    reply = await ws.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"]) == (False, refusals["record"])
    await ws.send_json_to({"command": "transfer", "call_id": "call-1", "to_agent": "petro"})
    reply = await ws.receive_json_from(timeout=5)
    assert (reply["ok"], reply["message"]) == (False, refusals["transfer"])
    assert [(m["command"], m.get("to_agent")) for m in switchboard.seen] == [
        ("record", None),
        ("transfer", "petro"),
    ]
    await ws.disconnect()
