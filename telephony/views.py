"""CDR intake for mod_json_cdr, and the switch nodes pages of the provider console."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telephony import actions
from telephony.access import NODE_READERS, NODE_WRITERS, access_node
from telephony.cdr_format import CdrFormatError, decode_payload, parse_cdr
from telephony.forms import NodeForm
from telephony.models import SwitchNode, SwitchNodeStatus, UnroutedCdr
from tenants.access import access_provider
from tenants.audit import client_ip
from tenants.views import add_form_errors

log = logging.getLogger("telephony.cdr")

# A status report older than this is shown as stale: the switchboard writes one at least
# every few seconds while it runs.
STATUS_STALE_AFTER = timedelta(seconds=60)
QUARANTINE_SHOWN = 20
AUTH_REALM = 'Basic realm="ccp-cdr", charset="UTF-8"'


# -- CDR intake -------------------------------------------------------------------------------
def _reply(status: int, message: str, **extra: object) -> JsonResponse:
    key = "error" if status >= 400 else "status"
    response = JsonResponse({key: message, **extra}, status=status)
    if status == 401:
        # curl (mod_json_cdr) with auth-scheme=any only sends credentials after this challenge.
        response["WWW-Authenticate"] = AUTH_REALM
    return response


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(":")
    return (user, secret) if sep else None


@dataclass(frozen=True)
class _Refusal:
    status: int
    message: str


def _authenticate(request: HttpRequest) -> SwitchNode | _Refusal:
    credentials = _basic_credentials(request)
    if credentials is None:
        return _Refusal(401, "credentials required: HTTP basic auth <node name>:<CDR secret>")
    name, secret = credentials
    node = SwitchNode.objects.filter(name=name).first()
    # Unknown node and wrong secret answer alike; the log line tells them apart.
    if node is None or not node.check_cdr_secret(secret):
        why = f"unknown node {name[:63]!r}" if node is None else f"wrong secret for node {name}"
        log.warning("CDR post refused from %s: %s", client_ip(request), why)
        return _Refusal(401, "wrong node name or CDR secret")
    if not node.enabled:
        log.warning("CDR post refused from %s: node %s is disabled", client_ip(request), name)
        return _Refusal(403, f"node {name} is disabled in the provider console")
    return node


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (read no further than that)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
def cdr_intake(request: HttpRequest) -> HttpResponse:
    """``POST /telephony/cdr/?uuid=<leg>``: one leg's CDR from mod_json_cdr.

    2xx means "kept, don't send it again": 200 stored (or already stored: idempotent on the
    leg UUID), 202 kept in quarantine because its client could not be resolved. Anything the
    node may fix and resend is 4xx (mod_json_cdr retries, then writes the CDR to its
    err-log-dir, where the ``import_cdr_files`` sweeper picks it up): nothing is lost.
    """
    tenant = getattr(request, "tenant", None)
    if tenant is None or not tenant.is_provider:
        raise Http404
    if request.method != "POST":
        response = _reply(405, "POST a mod_json_cdr document here")
        response["Allow"] = "POST"
        return response
    node = _authenticate(request)
    if isinstance(node, _Refusal):
        return _reply(node.status, node.message)
    limit = settings.CDR_MAX_BYTES
    raw = _read_body(request, limit)
    if raw is None:
        log.warning("CDR post from node %s refused: larger than %d bytes", node.name, limit)
        return _reply(413, f"CDR larger than {limit} bytes (CDR_MAX_BYTES)")
    try:
        parsed = parse_cdr(
            decode_payload(raw, request.content_type or ""),
            expected_uuid=request.GET.get("uuid"),
        )
    except CdrFormatError as exc:
        log.warning(
            "CDR post from node %s refused (uuid=%s): %s",
            node.name,
            request.GET.get("uuid", "?")[:40],
            exc,
        )
        return _reply(400, str(exc))
    result = actions.do_store_cdr(parsed, node=node)
    if result.outcome == "quarantined":
        return _reply(202, "quarantined", leg_uuid=str(parsed.leg_uuid), reason=result.reason)
    return _reply(200, result.outcome, leg_uuid=str(parsed.leg_uuid))


# -- nodes console ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusView:
    status: SwitchNodeStatus
    stale: bool
    age: timedelta


def status_of(node: SwitchNode) -> StatusView | None:
    """The node's last status report, or None when the switchboard never wrote one."""
    try:
        status = node.status
    except SwitchNodeStatus.DoesNotExist:
        return None
    age = timezone.now() - status.updated_at
    return StatusView(status=status, stale=age > STATUS_STALE_AFTER, age=age)


@login_required
def node_list(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, NODE_READERS)
    nodes = list(SwitchNode.objects.select_related("status"))
    rows = [(node, status_of(node)) for node in nodes]
    return render(
        request,
        "telephony/node_list.html",
        {
            "rows": rows,
            "role": role,
            "unrouted": UnroutedCdr.objects.all()[:QUARANTINE_SHOWN],
            "unrouted_count": UnroutedCdr.objects.count(),
        },
    )


def _node_kwargs(form: NodeForm) -> dict[str, object]:
    return {field: form.cleaned_data[field] for field in actions.EDITABLE_NODE_FIELDS}


@login_required
def node_create(request: HttpRequest) -> HttpResponse:
    access_provider(request, NODE_WRITERS)
    form = NodeForm(request.POST or None, initial={"esl_port": 8021, "enabled": True})
    if request.method == "POST" and form.is_valid():
        try:
            created = actions.do_create_node(
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                **_node_kwargs(form),  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            return _show_secret(request, created.node, created.cdr_secret, created=True)
    return render(request, "telephony/node_form.html", {"form": form, "node": None})


def _show_secret(
    request: HttpRequest, node: SwitchNode, secret: str, *, created: bool
) -> HttpResponse:
    """The CDR secret, shown once (only its hash is kept), with the line to paste."""
    intake_url = request.build_absolute_uri(reverse("cdr_intake"))
    response = render(
        request,
        "telephony/node_secret.html",
        {"node": node, "secret": secret, "created": created, "intake_url": intake_url},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
def node_detail(request: HttpRequest, node_id: int) -> HttpResponse:
    role = access_provider(request, NODE_READERS)
    node = access_node(request, node_id, NODE_READERS)
    return render(
        request,
        "telephony/node_detail.html",
        {"node": node, "role": role, "view": status_of(node)},
    )


@login_required
def node_edit(request: HttpRequest, node_id: int) -> HttpResponse:
    node = access_node(request, node_id, NODE_WRITERS)
    initial = {field: getattr(node, field) for field in actions.EDITABLE_NODE_FIELDS}
    initial.pop("esl_password")
    form = NodeForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            changed = actions.do_update_node(
                node,
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                **_node_kwargs(form),
            )
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(request, _("Node saved.") if changed else _("Nothing changed."))
            return redirect("node_detail", node_id=node.pk)
    return render(request, "telephony/node_form.html", {"form": form, "node": node})


@login_required
@require_POST
def node_rotate_secret(request: HttpRequest, node_id: int) -> HttpResponse:
    node = access_node(request, node_id, NODE_WRITERS)
    secret = actions.do_rotate_cdr_secret(node, actor=request.user, request=request)  # type: ignore[arg-type]
    return _show_secret(request, node, secret, created=False)
