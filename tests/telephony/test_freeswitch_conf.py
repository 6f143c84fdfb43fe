"""freeswitch-conf/: every file is well-formed XML and says what the platform relies on."""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CONF = Path(__file__).resolve().parents[2] / "freeswitch-conf"
XML_FILES = sorted(CONF.rglob("*.xml"))


def parse(relative: str) -> ET.Element:
    return ET.parse(CONF / relative).getroot()


def global_vars() -> dict[str, str]:
    """vars.xml's defaults (``set``), expanded; each must also be overridable from the env."""
    found: dict[str, str] = {}
    for pre in parse("vars.xml").iter("X-PRE-PROCESS"):
        name, _sep, value = pre.get("data", "").partition("=")
        if pre.get("cmd") == "set":
            found[name] = expand(value, found)
        elif pre.get("cmd") == "exec-set":
            found[name] = "<output of: " + value + ">"
    return found


def env_overrides() -> dict[str, str]:
    out = {}
    for pre in parse("vars.xml").iter("X-PRE-PROCESS"):
        if pre.get("cmd") == "env-set":
            name, _sep, value = pre.get("data", "").partition("=")
            out[name] = value
    return out


def expand(value: str, variables: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"$${{{match.group(1)}}} is not defined in vars.xml"
        return variables[match.group(1)]

    return re.sub(r"\$\$\{(\w+)\}", sub, value)


def params(root: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in root.iter("param")}


def test_the_files_a_node_needs_are_there_and_well_formed():  # type: ignore[no-untyped-def]
    names = {str(p.relative_to(CONF)) for p in XML_FILES}
    assert {
        "vars.xml",
        "autoload_configs/event_socket.conf.xml",
        "autoload_configs/json_cdr.conf.xml",
        "autoload_configs/acl.conf.xml",
        "autoload_configs/modules.conf.xml",
        "sip_profiles/ccp-carriers.xml",
        "sip_profiles/ccp-agents.xml",
        "dialplan/ccp.xml",
    } <= names
    for path in XML_FILES:
        ET.parse(path)  # raises on anything not well-formed
        # Included files must not carry an XML declaration (FreeSWITCH pastes them together).
        assert not path.read_text().lstrip().startswith("<?xml"), path
    assert (CONF / "README.md").read_text().count("Switch nodes") >= 1


def test_every_global_variable_used_is_defined():  # type: ignore[no-untyped-def]
    variables = global_vars()
    for path in XML_FILES:
        for name in re.findall(r"\$\$\{(\w+)\}", path.read_text()):
            assert name in variables, f"{path.name} uses $${{{name}}}, not set in vars.xml"


def test_event_socket_is_private_and_its_password_comes_from_the_environment():  # type: ignore[no-untyped-def]
    settings = params(parse("autoload_configs/event_socket.conf.xml"))
    variables = global_vars()
    listen = ipaddress.ip_address(expand(settings["listen-ip"], variables))
    assert listen.is_private and not listen.is_unspecified and not listen.is_loopback
    assert settings["listen-port"] == "8021"
    assert settings["password"] == "$${esl_password}"
    assert env_overrides()["esl_password"] == "$CCP_ESL_PASSWORD"
    assert env_overrides()["ccp_esl_listen_ip"] == "$CCP_ESL_LISTEN_IP"
    # No fixed password anywhere (FreeSWITCH's stock one least of all).
    for path in XML_FILES:
        assert "ClueCon" not in path.read_text(), path
    acl = parse("autoload_configs/acl.conf.xml")
    lists = {node.get("name"): node for node in acl.iter("list")}
    assert settings["apply-inbound-acl"] in lists
    platform = lists[settings["apply-inbound-acl"]]
    assert platform.get("default") == "deny"
    for allowed in platform.iter("node"):
        assert ipaddress.ip_network(expand(allowed.get("cidr"), variables)).is_private


def test_json_cdr_posts_to_the_intake_with_retries_and_an_error_folder():  # type: ignore[no-untyped-def]
    from django.urls import resolve

    from telephony.views import cdr_intake

    settings = params(parse("autoload_configs/json_cdr.conf.xml"))
    variables = global_vars()
    url = urlsplit(expand(settings["url"], variables))
    assert url.scheme == "https"
    assert url.path.endswith("/"), "without the slash the POST would be redirected"
    assert resolve(url.path, urlconf="ccplatform.urls_public").func is cdr_intake
    assert settings["cred"] == "$${ccp_cdr_cred}"
    assert env_overrides()["ccp_cdr_cred"] == "$CCP_CDR_CRED"
    assert settings["auth-scheme"] == "basic"
    assert int(settings["retries"]) >= 1 and int(settings["delay"]) >= 1
    assert settings["log-errors-to-disk"] == "true"
    assert expand(settings["err-log-dir"], variables).startswith("/")
    assert settings["log-b-leg"] == "true"  # every leg's CDR, agents' legs included
    assert settings["prefix-a-leg"] == "false"
    # The body shape our captures (and so the intake's tests) have.
    assert settings["encode"] == "false" and settings["disable-100-continue"] == "true"


def test_dialplan_sends_every_did_call_to_the_platform_socket():  # type: ignore[no-untyped-def]
    from telephony.cdr_format import DID_VARIABLE, TENANT_VARIABLE

    variables = global_vars()
    root = parse("dialplan/ccp.xml")
    contexts = {c.get("name"): c for c in root.iter("context")}
    carriers = params(parse("sip_profiles/ccp-carriers.xml"))
    agents = params(parse("sip_profiles/ccp-agents.xml"))
    assert carriers["context"] in contexts and agents["context"] in contexts
    assert carriers["auth-calls"] == "false" and carriers["apply-inbound-acl"] == "ccp_carriers"
    assert agents["auth-calls"] == "true"
    inbound = contexts[carriers["context"]]
    # The DID map is included before the gate.
    includes = [p.get("data") for p in inbound.iter("X-PRE-PROCESS") if p.get("cmd") == "include"]
    assert includes == ["ccp_dids/*.xml"]
    gate = next(e for e in inbound.iter("extension") if e.get("name") == "ccp-to-platform")
    condition = gate.find("condition")
    assert condition.get("field") == "${" + TENANT_VARIABLE + "}"
    actions = [(a.get("application"), a.get("data")) for a in condition.iter("action")]
    exported = {data.split("=", 1)[0] for app, data in actions if app == "export"}
    assert {TENANT_VARIABLE, DID_VARIABLE, "ccp_node"} <= exported
    sockets = [expand(data, variables) for app, data in actions if app == "socket"]
    # The active switchboard, then the standby (where a resumed caller goes when it dies).
    assert len(sockets) == 2 and sockets[0] != sockets[1]
    for socket in sockets:
        assert re.fullmatch(r"[\w.\-]+:8084 async full", socket), socket
    assert [app for app, _data in actions][-3:] == ["socket", "socket", "respond"]
    # A socket that goes away continues the dialplan (to the standby) instead of hanging up,
    # from the very start (before the platform's own ``resume``).
    first_socket = [app for app, _data in actions].index("socket")
    assert actions.index(("set", "socket_resume=true")) < first_socket
    recording = next(data for app, data in actions if data.startswith("ccp_recording_file="))
    assert expand(recording, variables).startswith(
        "ccp_recording_file=" + variables["ccp_recordings_dir"] + "/${ccp_tenant}/"
    )
    for context in contexts.values():
        for app, data in ((a.get("application"), a.get("data")) for a in context.iter("action")):
            if app == "socket":
                assert data in (
                    "$${ccp_platform_socket} async full",
                    "$${ccp_platform_socket_standby} async full",
                )


@pytest.mark.parametrize(
    "path", sorted((CONF / "dialplan" / "ccp_dids").glob("*.xml")), ids=lambda p: p.name
)
def test_did_map_sets_the_tenant_inline(path):  # type: ignore[no-untyped-def]
    from telephony.cdr_format import TENANT_VARIABLE

    extensions = list(ET.parse(path).getroot().iter("extension"))
    assert extensions
    for extension in extensions:
        assert extension.get("continue") == "true"
        sets = {
            a.get("data").split("=", 1)[0]: a
            for a in extension.iter("action")
            if a.get("application") == "set"
        }
        assert TENANT_VARIABLE in sets and "ccp_did" in sets
        assert all(a.get("inline") == "true" for a in sets.values())
        tenant = sets[TENANT_VARIABLE].get("data").split("=", 1)[1]
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,62}", tenant)


def test_modules_the_platform_needs_are_loaded():  # type: ignore[no-untyped-def]
    loaded = {m.get("module") for m in parse("autoload_configs/modules.conf.xml").iter("load")}
    assert {
        "mod_event_socket",
        "mod_json_cdr",
        "mod_sofia",
        "mod_dptools",
        "mod_dialplan_xml",
        "mod_commands",
        "mod_sndfile",
    } <= loaded


def test_the_conference_profile_the_switchboard_joins_exists():  # type: ignore[no-untyped-def]
    from telephony.callflow.session import CONFERENCE_PROFILE

    loaded = {m.get("module") for m in parse("autoload_configs/modules.conf.xml").iter("load")}
    assert "mod_conference" in loaded
    profiles = {
        p.get("name"): params(p)
        for p in parse("autoload_configs/conference.conf.xml").iter("profile")
    }
    assert CONFERENCE_PROFILE in profiles
    # A digit pressed by the caller must not mute or kick the agent or the second line.
    assert profiles[CONFERENCE_PROFILE]["caller-controls"] == "none"
