"""Business verbs for switch nodes and CDRs: ``check_*`` validates, ``do_*`` writes.

Console changes to nodes are audited. Two writers are deliberately *not* audited, because
they are machine traffic at call rate, not someone's decision: CDR intake
(:func:`do_store_cdr`, which logs instead) and the switchboard's status reports
(:func:`do_record_node_status`).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_context

from cdrs.models import RawCdr
from telephony.cdr_format import ParsedCdr
from telephony.models import (
    NODE_NAME_RE,
    SwitchNode,
    SwitchNodeStatus,
    UnroutedCdr,
    hash_cdr_secret,
)
from tenants import audit
from tenants.models import Client, User

log = logging.getLogger("telephony.cdr")

_HOST_RE = re.compile(r"^[A-Za-z0-9.:\-\[\]]{1,255}$")
EDITABLE_NODE_FIELDS = ("name", "description", "esl_host", "esl_port", "esl_password", "enabled")


# -- nodes ------------------------------------------------------------------------------------
def new_cdr_secret() -> str:
    """256 random bits, URL-safe (no ':' so it fits mod_json_cdr's ``cred`` user:secret)."""
    return secrets.token_urlsafe(32)


def check_node_fields(
    *,
    name: str,
    esl_host: str,
    esl_port: int,
    esl_password: str,
    instance: SwitchNode | None = None,
) -> None:
    """Raise ValidationError keyed by field for anything a node cannot be saved with."""
    errors: dict[str, str] = {}
    if not re.match(NODE_NAME_RE, name or ""):
        errors["name"] = _("Use lowercase letters, digits and dashes, e.g. fs-1.")
    elif SwitchNode.objects.filter(name=name).exclude(pk=getattr(instance, "pk", None)).exists():
        errors["name"] = _("A node with this name already exists.")
    if not _HOST_RE.match(esl_host or ""):
        errors["esl_host"] = _("Enter a host name or IP address.")
    if not isinstance(esl_port, int) or not 1 <= esl_port <= 65535:
        errors["esl_port"] = _("Enter a port between 1 and 65535.")
    elif (
        "esl_host" not in errors
        and SwitchNode.objects.filter(esl_host=esl_host, esl_port=esl_port)
        .exclude(pk=getattr(instance, "pk", None))
        .exists()
    ):
        errors["esl_host"] = _("Another node already uses this Event Socket address.")
    if not esl_password or any(c.isspace() for c in esl_password):
        errors["esl_password"] = _("Enter the Event Socket password (no spaces).")
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True)
class NodeWithSecret:
    node: SwitchNode
    cdr_secret: str  # shown once; only its hash is kept


def do_create_node(
    *,
    name: str,
    esl_host: str,
    esl_port: int,
    esl_password: str,
    description: str = "",
    enabled: bool = True,
    actor: User | None,
    request: HttpRequest | None = None,
) -> NodeWithSecret:
    name, esl_host = (name or "").strip(), (esl_host or "").strip()
    check_node_fields(name=name, esl_host=esl_host, esl_port=esl_port, esl_password=esl_password)
    secret = new_cdr_secret()
    with transaction.atomic():
        node = SwitchNode.objects.create(
            name=name,
            description=(description or "").strip(),
            esl_host=esl_host,
            esl_port=esl_port,
            esl_password=esl_password,
            enabled=enabled,
            cdr_secret_hash=hash_cdr_secret(secret),
            cdr_secret_hint=secret[-4:],
        )
        audit.record(
            "telephony.node_created",
            actor=actor,
            request=request,
            obj=node,
            details={"esl": node.esl_address, "enabled": enabled},
        )
    return NodeWithSecret(node, secret)


def do_update_node(
    node: SwitchNode,
    *,
    actor: User | None,
    request: HttpRequest | None = None,
    **changes: object,
) -> list[str]:
    """Apply the given editable fields; an empty ``esl_password`` keeps the current one.

    Returns the names of the fields that changed (the audit event lists them; it never
    carries the password itself).
    """
    unknown = set(changes) - set(EDITABLE_NODE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    if not changes.get("esl_password"):
        changes.pop("esl_password", None)
    for key in ("name", "esl_host", "description"):
        if key in changes:
            changes[key] = str(changes[key] or "").strip()
    with transaction.atomic():
        locked = SwitchNode.objects.select_for_update().get(pk=node.pk)
        merged = {f: changes.get(f, getattr(locked, f)) for f in EDITABLE_NODE_FIELDS}
        check_node_fields(
            name=merged["name"],  # type: ignore[arg-type]
            esl_host=merged["esl_host"],  # type: ignore[arg-type]
            esl_port=merged["esl_port"],  # type: ignore[arg-type]
            esl_password=merged["esl_password"],  # type: ignore[arg-type]
            instance=locked,
        )
        changed = [f for f in EDITABLE_NODE_FIELDS if merged[f] != getattr(locked, f)]
        if not changed:
            return []
        for field in changed:
            setattr(locked, field, merged[field])
        locked.save(update_fields=[*changed, "updated_at"])
        details: dict[str, object] = {"changed": changed}
        if "enabled" in changed:
            details["enabled"] = locked.enabled
        if "esl_host" in changed or "esl_port" in changed:
            details["esl"] = locked.esl_address
        audit.record(
            "telephony.node_updated", actor=actor, request=request, obj=locked, details=details
        )
    for field in changed:
        setattr(node, field, merged[field])
    return changed


def do_rotate_cdr_secret(
    node: SwitchNode, *, actor: User | None, request: HttpRequest | None = None
) -> str:
    """A new CDR secret; the old one stops working at once (posts fail until the node's
    json_cdr.conf.xml has the new one; they land in its err-log-dir, for the sweeper)."""
    secret = new_cdr_secret()
    with transaction.atomic():
        SwitchNode.objects.filter(pk=node.pk).update(
            cdr_secret_hash=hash_cdr_secret(secret),
            cdr_secret_hint=secret[-4:],
            updated_at=timezone.now(),
        )
        audit.record("telephony.node_cdr_secret_rotated", actor=actor, request=request, obj=node)
    node.cdr_secret_hash, node.cdr_secret_hint = hash_cdr_secret(secret), secret[-4:]
    return secret


def do_record_node_status(
    node: SwitchNode,
    *,
    connected: bool,
    core_uuid: str = "",
    version: str = "",
    uptime_seconds: int | None = None,
    channels: int | None = None,
    sessions_per_second: float | None = None,
    max_sessions_per_second: int | None = None,
    sessions_since_startup: int | None = None,
    last_error: str = "",
    now: datetime | None = None,
) -> SwitchNodeStatus:
    """The switchboard's report of what it sees on ``node`` (overwrites the previous one)."""
    status, _created = SwitchNodeStatus.objects.update_or_create(
        node=node,
        defaults={
            "connected": connected,
            "core_uuid": core_uuid[:64],
            "version": version[:128],
            "uptime_seconds": uptime_seconds,
            "channels": channels,
            "sessions_per_second": sessions_per_second,
            "max_sessions_per_second": max_sessions_per_second,
            "sessions_since_startup": sessions_since_startup,
            "last_error": last_error[:300],
            "updated_at": now or timezone.now(),
        },
    )
    return status


# -- CDRs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CdrOutcome:
    outcome: str  # "stored" | "duplicate" | "quarantined"
    tenant: str = ""  # schema name when stored or duplicate
    reason: str = ""  # UnroutedCdr.Reason when quarantined


def _resolve_tenant(value: str) -> Client | None:
    if not value:
        return None
    return Client.objects.exclude(schema_name="public").filter(schema_name=value).first()


def do_store_cdr(
    cdr: ParsedCdr, *, node: SwitchNode | None, source: str = RawCdr.Source.HTTP
) -> CdrOutcome:
    """Store one leg's CDR in its client's schema, exactly once per leg UUID.

    A CDR whose ``ccp_tenant`` is missing or names no client goes to the public
    ``UnroutedCdr`` quarantine (also once per leg); nothing is dropped. When a quarantined
    leg later arrives with a resolvable client (e.g. re-imported after a fix), it is stored
    there and leaves the quarantine.
    """
    node_name = node.name if node is not None else ""
    tenant = _resolve_tenant(cdr.tenant)
    if tenant is None:
        reason = UnroutedCdr.Reason.UNKNOWN_TENANT if cdr.tenant else UnroutedCdr.Reason.NO_TENANT
        try:
            with transaction.atomic():
                UnroutedCdr.objects.create(
                    leg_uuid=cdr.leg_uuid,
                    core_uuid=cdr.core_uuid,
                    node=node,
                    node_name=node_name,
                    source=source,
                    reason=reason,
                    tenant_value=cdr.tenant[:200],
                    body=cdr.body,
                )
        except IntegrityError:
            log.info("CDR %s already quarantined (%s)", cdr.leg_uuid, reason)
        else:
            log.warning(
                "CDR %s from node %s quarantined: %s (ccp_tenant=%r)",
                cdr.leg_uuid,
                node_name or "?",
                reason,
                cdr.tenant[:60],
            )
        return CdrOutcome("quarantined", reason=str(reason))

    with transaction.atomic(), schema_context(tenant.schema_name):
        try:
            with transaction.atomic():
                RawCdr.objects.create(
                    leg_uuid=cdr.leg_uuid,
                    call_uuid=cdr.call_uuid,
                    core_uuid=cdr.core_uuid,
                    node_id=node.pk if node is not None else None,
                    node_name=node_name,
                    switchname=cdr.switchname,
                    source=source,
                    direction=cdr.direction,
                    channel_name=cdr.channel_name,
                    did=cdr.did,
                    caller_id_number=cdr.caller_id_number,
                    destination_number=cdr.destination_number,
                    hangup_cause=cdr.hangup_cause,
                    started_at=cdr.started_at,
                    answered_at=cdr.answered_at,
                    ended_at=cdr.ended_at,
                    answered=cdr.answered,
                    duration_seconds=cdr.duration_seconds,
                    billsec=cdr.billsec,
                    billmsec=cdr.billmsec,
                    values_encoded=cdr.values_encoded,
                    body=cdr.body,
                )
        except IntegrityError:
            # Same leg again (mod_json_cdr retry after a lost reply, or the sweeper
            # importing a file that was in fact posted): the first copy stands.
            log.info("CDR %s for %s already stored", cdr.leg_uuid, tenant.schema_name)
            return CdrOutcome("duplicate", tenant=tenant.schema_name)
    UnroutedCdr.objects.filter(leg_uuid=cdr.leg_uuid).delete()
    return CdrOutcome("stored", tenant=tenant.schema_name)
