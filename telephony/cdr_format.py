"""Reading what mod_json_cdr sends: the HTTP body or error-log file, and the fields we use.

No database here: bytes in, a validated :class:`ParsedCdr` (or :class:`CdrFormatError`) out.

What mod_json_cdr (FreeSWITCH 1.10) actually sends, from its source and our captures
(``shared/fixtures/freeswitch/cdr/``):

- ``POST <url>?uuid=<leg uuid>``, one post per leg, HTTP basic auth from the ``cred`` param.
- ``encode=false``: the body is the raw JSON. The Content-Type is ``application/json``, or
  ``application/x-www-form-urlencoded`` when ``disable-100-continue`` is on (that option
  replaces curl's header list, so curl's default form type is sent with a raw JSON body: this
  is what the captures show).
- ``encode=true``: ``cdr=<URL-encoded JSON>``; ``encode=base64``: ``cdr=<base64 JSON>`` with
  ``application/x-www-form-base64-encoded``.
- Error-log files (``<err-log-dir>/[a_]<uuid>.cdr.json``) hold the JSON, URL-encoded when
  ``encode=true``, plus a trailing newline.
- ``encode-values=true`` (the default) URL-encodes every variable value; we detect it from
  the ``*_stamp`` variables, which always contain a space and a colon.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Set by the dialplan (``export``, so bridged legs inherit them); see freeswitch-conf/README.md.
TENANT_VARIABLE = "ccp_tenant"
DID_VARIABLE = "ccp_did"

_INT_RE = re.compile(r"^\d{1,20}$")


class CdrFormatError(ValueError):
    """The bytes are not a CDR we can read; the message says why (shown to the sender)."""


class _Variables(BaseModel):
    """The variables we rely on. Values are strings (possibly URL-encoded); others pass."""

    model_config = ConfigDict(extra="allow")

    uuid: str
    call_uuid: str = ""
    direction: str = ""
    channel_name: str = ""
    caller_id_number: str = ""
    hangup_cause: str = ""
    start_uepoch: str = "0"
    answer_uepoch: str = "0"
    end_uepoch: str = "0"
    duration: str = "0"
    billsec: str = "0"
    billmsec: str = "0"


class _CdrBody(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    core_uuid: str = Field(alias="core-uuid", max_length=64)
    switchname: str = ""
    channel_data: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any]
    callflow: list[Any] | dict[str, Any] | None = None

    @field_validator("variables")
    @classmethod
    def _strings_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        if bad:
            raise ValueError(f"variable values must be strings (not: {', '.join(bad[:5])})")
        return value


@dataclass(frozen=True)
class ParsedCdr:
    body: dict[str, Any]
    leg_uuid: uuid.UUID
    call_uuid: uuid.UUID | None
    core_uuid: str
    switchname: str
    values_encoded: bool
    tenant: str  # decoded ccp_tenant, "" when absent
    did: str
    direction: str
    channel_name: str
    caller_id_number: str
    destination_number: str
    hangup_cause: str
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int
    billsec: int
    billmsec: int

    @property
    def answered(self) -> bool:
        return self.answered_at is not None


def decode_payload(raw: bytes, content_type: str = "") -> dict[str, Any]:
    """The CDR JSON object inside a post body or error-log file, in any of its encodings."""
    text = raw.strip()
    if not text:
        raise CdrFormatError("empty body: expected a mod_json_cdr JSON document")
    if text.startswith(b"cdr="):
        # encode=true / encode=base64. parse_qs would turn '+' into spaces; mod_json_cdr
        # encodes spaces as %20 and '+' as %2B, so a plain percent-decode is exact.
        value = text[4:].split(b"&", 1)[0]
        if "base64" in content_type:
            try:
                text = base64.b64decode(unquote_to_bytes(value), validate=False)
            except (binascii.Error, ValueError):
                raise CdrFormatError("the cdr field is not valid base64") from None
        else:
            text = unquote_to_bytes(value)
    elif text.startswith(b"%7B") or text.startswith(b"%7b"):
        text = unquote_to_bytes(text)  # an error-log file written with encode=true
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CdrFormatError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise CdrFormatError("body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise CdrFormatError("body must be a JSON object (one CDR per leg)")
    return data


def _epoch_us(value: str, name: str) -> datetime | None:
    if not _INT_RE.match(value):
        raise CdrFormatError(f"variables.{name} must be an integer, got {value[:40]!r}")
    micros = int(value)
    if micros == 0:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def _int(value: str, name: str) -> int:
    if not _INT_RE.match(value):
        raise CdrFormatError(f"variables.{name} must be an integer, got {value[:40]!r}")
    return int(value)


def _values_encoded(variables: dict[str, str]) -> bool:
    for name in ("start_stamp", "end_stamp", "profile_start_stamp"):
        stamp = variables.get(name)
        if stamp:
            return " " not in stamp
    return True  # mod_json_cdr's default


def _profile_field(callflow: Any, name: str) -> str:
    """A caller-profile field of the leg's first dialplan pass (callflow is a list in 1.10)."""
    flows = callflow if isinstance(callflow, list) else [callflow] if callflow else []
    for flow in flows:
        if isinstance(flow, dict):
            profile = flow.get("caller_profile")
            if isinstance(profile, dict) and isinstance(profile.get(name), str):
                return profile[name]
    return ""


def parse_cdr(data: dict[str, Any], *, expected_uuid: str | None = None) -> ParsedCdr:
    """Validate the shape we rely on and extract the columns of a RawCdr."""
    try:
        body = _CdrBody.model_validate(data)
        variables = _Variables.model_validate(body.variables)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CdrFormatError(f"not a mod_json_cdr document: {where}: {first['msg']}") from None
    encoded = _values_encoded(body.variables)

    def value(raw: str) -> str:
        return unquote(raw) if encoded else raw

    try:
        leg_uuid = uuid.UUID(value(variables.uuid))
    except ValueError:
        raise CdrFormatError("variables.uuid is not a UUID") from None
    if expected_uuid is not None and expected_uuid.strip():
        try:
            url_uuid = uuid.UUID(expected_uuid.strip())
        except ValueError:
            raise CdrFormatError(
                "the uuid sent with the CDR (?uuid= or file name) is not a UUID"
            ) from None
        if url_uuid != leg_uuid:
            raise CdrFormatError(
                "the uuid sent with the CDR (?uuid= or file name) and variables.uuid differ"
            )
    call_uuid: uuid.UUID | None = None
    if variables.call_uuid:
        try:
            call_uuid = uuid.UUID(value(variables.call_uuid))
        except ValueError:
            raise CdrFormatError("variables.call_uuid is not a UUID") from None
    raw_vars: dict[str, str] = body.variables
    return ParsedCdr(
        body=data,
        leg_uuid=leg_uuid,
        call_uuid=call_uuid,
        core_uuid=body.core_uuid,
        switchname=body.switchname[:255],
        values_encoded=encoded,
        tenant=value(raw_vars.get(TENANT_VARIABLE, "")).strip(),
        did=value(raw_vars.get(DID_VARIABLE, ""))[:64],
        direction=value(variables.direction)[:16],
        channel_name=value(variables.channel_name)[:255],
        caller_id_number=(
            value(variables.caller_id_number) or _profile_field(body.callflow, "caller_id_number")
        )[:64],
        destination_number=_profile_field(body.callflow, "destination_number")[:128],
        hangup_cause=value(variables.hangup_cause)[:64],
        started_at=_epoch_us(variables.start_uepoch, "start_uepoch"),
        answered_at=_epoch_us(variables.answer_uepoch, "answer_uepoch"),
        ended_at=_epoch_us(variables.end_uepoch, "end_uepoch"),
        duration_seconds=_int(variables.duration, "duration"),
        billsec=_int(variables.billsec, "billsec"),
        billmsec=_int(variables.billmsec, "billmsec"),
    )
