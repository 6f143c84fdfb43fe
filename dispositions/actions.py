"""Dispositions' verbs. Every one names its tenant and runs inside its schema.

``check_disposition`` validates what the console posted; ``call_handled_by`` says whether the
call is recorded in that client's schema and whether this agent worked on it;
``do_record_disposition`` stores (or replaces) the agent's disposition of the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django_tenants.utils import schema_context

from dispositions.models import DEFAULT_CODES, NOTE_MAX_CHARS, CallDisposition, DispositionCode
from tenants.models import Client

CALL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class DispositionError(ValueError):
    """Bad input; ``status`` is the HTTP status the view answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DispositionInput:
    tenant: str
    call_id: str
    code: str
    note: str


def disposition_codes(tenant: Client) -> list[dict[str, str]]:
    """The codes ``tenant`` offers (its own active ones, else the defaults), in order."""
    with schema_context(tenant.schema_name):
        own = list(DispositionCode.objects.filter(active=True).values_list("code", "label"))
    if own:
        return [{"code": code, "label": label} for code, label in own]
    return [{"code": code, "label": str(label)} for code, label in DEFAULT_CODES]


def check_disposition(data: Mapping[str, Any]) -> DispositionInput:
    """Validate the posted fields' shapes (not yet against the tenant's codes)."""
    if not isinstance(data, Mapping):
        raise DispositionError("expected an object")
    values = {}
    for name in ("tenant", "call_id", "code"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DispositionError(f"{name} is required")
        values[name] = value.strip()
    note = data.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise DispositionError("note must be text")
    if len(note) > NOTE_MAX_CHARS:
        raise DispositionError(f"note is longer than {NOTE_MAX_CHARS} characters")
    if not CALL_ID_RE.match(values["call_id"]):
        raise DispositionError("call_id is not a call id")
    if len(values["code"]) > 63 or len(values["tenant"]) > 63:
        raise DispositionError("code or tenant too long")
    return DispositionInput(values["tenant"], values["call_id"], values["code"], note.strip())


def call_handled_by(tenant: Client, call_id: str, agent_id: str) -> bool | None:
    """None: no such call in ``tenant``'s schema (not recorded yet, or another client's);
    True/False: recorded, and this agent did (not) answer one of its legs."""
    from calls.models import Call, Leg, Segment

    with schema_context(tenant.schema_name):
        call = Call.objects.filter(call_id=call_id).first()
        if call is None:
            return None
        if call.agent == agent_id:
            return True
        return (
            Leg.objects.filter(call=call, agent=agent_id).exists()
            or Segment.objects.filter(Q(call=call) & Q(agent=agent_id)).exists()
        )


def do_record_disposition(
    tenant: Client, agent_id: str, data: DispositionInput
) -> tuple[CallDisposition, bool]:
    """Store the agent's disposition of the call (replacing an earlier one); the caller has
    checked the agent's right to it. Returns the row and whether it is new."""
    codes = {c["code"] for c in disposition_codes(tenant)}
    if data.code not in codes:
        raise DispositionError("unknown disposition code")
    with schema_context(tenant.schema_name), transaction.atomic():
        row, created = CallDisposition.objects.select_for_update().update_or_create(
            call_id=data.call_id,
            agent_id=agent_id,
            defaults={"code": data.code, "note": data.note},
        )
    return row, created
