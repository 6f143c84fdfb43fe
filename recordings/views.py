"""Recordings on the client portal and the provider console; the mask API and starting a
recording on demand (``api/calls/<call_id>/recording/start``).

One page per client company lists its recordings (``?call=<call id>`` narrows it to one call)
with a player for each recording the viewer may play; the same address with ``?play=<id>``
streams the WAV (HTTP Range supported; ``&download=1`` as an attachment). Every playback and
download is a ``RecordingAccess`` row and an audit event. Access rules: ``recordings.access``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_tenants.utils import schema_context

from recordings import switchboard
from recordings.access import (
    MASKERS,
    access_console_client,
    agent_of,
    allowed_roles,
    certified,
    clearance_denials,
    console_clients,
    playback_check,
    playback_denial,
    role_label,
)
from recordings.actions import do_mark_masked, stored_file
from recordings.models import Recording, RecordingAccess
from tenants import audit
from tenants.access import access_client_site, access_provider, provider_role
from tenants.models import PROVIDER_ROLES, Client, Role

log = logging.getLogger(__name__)

#: Recordings a list page shows (the latest first).
LIST_LIMIT = 200
#: Accesses listed under a call's recordings, and who sees that list.
ACCESS_LIMIT = 50
ACCESS_READERS = (Role.CLIENT_ADMIN, Role.PROVIDER_ADMIN, Role.SUPERVISOR)
#: Who may put a recording under legal hold (or lift it).
HOLDERS = (Role.CLIENT_ADMIN, Role.PROVIDER_ADMIN)
#: Range requests continuing a playback within this long are one playback (one audit row).
PLAYBACK_SESSION = timedelta(minutes=10)
CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


# -- pages ----------------------------------------------------------------------------------


@login_required
def portal_recordings(request: HttpRequest) -> HttpResponse:
    """The company's recordings on its own portal (any member sees the list)."""
    role = access_client_site(request)
    tenant: Client = request.tenant  # type: ignore[attr-defined]
    return _recordings(request, tenant, role, site="portal")


@login_required
def console_index(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, (Role.PROVIDER_ADMIN, Role.SUPERVISOR, Role.AGENT))
    return render(
        request, "recordings/console_index.html", {"clients": console_clients(request, role)}
    )


@login_required
def console_recordings(request: HttpRequest, client_id: int) -> HttpResponse:
    tenant, role = access_console_client(request, client_id)
    return _recordings(request, tenant, role, site="console")


def _recordings(request: HttpRequest, tenant: Client, role: str, *, site: str) -> HttpResponse:
    if "play" in request.GET:
        return _play(request, tenant, role, site=site)
    if request.method == "POST":
        return _set_legal_hold(request, tenant, role, site=site)
    call_id = request.GET.get("call", "").strip()[:64]
    with schema_context(tenant.schema_name):
        rows = Recording.objects.all()
        if call_id:
            rows = rows.filter(call_id=call_id)
        recordings = list(rows[:LIST_LIMIT])
        accesses = (
            list(
                RecordingAccess.objects.filter(recording__in=recordings).order_by("-at", "-id")[
                    :ACCESS_LIMIT
                ]
            )
            if call_id and role in ACCESS_READERS
            else []
        )
    denial = playback_denial(request.user, role, tenant, clearance=False)  # type: ignore[arg-type]
    per_call: dict[str, str] = {}
    if denial is None and role in PROVIDER_ROLES:
        per_call = clearance_denials(
            request.user,  # type: ignore[arg-type]
            tenant,
            [r.call_id for r in recordings],
            role,
        )
    items = [{"rec": rec, "denial": denial or per_call.get(rec.call_id)} for rec in recordings]
    return render(
        request,
        "recordings/list.html",
        {
            "client": tenant,
            "site": site,
            "items": items,
            "call_id": call_id,
            "denial": denial,
            "allowed": [role_label(r) for r in allowed_roles(tenant)],
            "limit": LIST_LIMIT,
            "accesses": accesses,
            "can_hold": role in HOLDERS,
        },
    )


def _set_legal_hold(request: HttpRequest, tenant: Client, role: str, *, site: str) -> HttpResponse:
    """POST ``recording=<id>&legal_hold=1|0``: keep a recording past its retention, or not."""
    if role not in HOLDERS:
        raise Http404
    try:
        pk = int(request.POST.get("recording", ""))
    except ValueError:
        raise Http404 from None
    hold = request.POST.get("legal_hold") == "1"
    with schema_context(tenant.schema_name), transaction.atomic():
        try:
            recording = Recording.objects.select_for_update().get(pk=pk)
        except Recording.DoesNotExist:
            raise Http404 from None
        if recording.legal_hold != hold:
            recording.legal_hold = hold
            recording.save(update_fields=["legal_hold", "updated_at"])
            audit.record(
                "recording.legal_hold_set" if hold else "recording.legal_hold_cleared",
                request=request,
                tenant=tenant,
                obj=recording,
                details={"call_id": recording.call_id, "role": role, "site": site},
            )
    messages.success(
        request,
        _("Recording of call %(call)s is under legal hold: it will not be deleted.")
        % {"call": recording.call_id}
        if hold
        else _("Legal hold lifted: the recording of call %(call)s follows its retention again.")
        % {"call": recording.call_id},
    )
    return redirect(f"{request.path}?call={recording.call_id}")


# -- streaming ------------------------------------------------------------------------------


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """The one byte range asked for: ``(first, last)``; None to send the whole file (no or
    an unusable header: RFC 9110 lets a server ignore it); False when unsatisfiable."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        return False
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


def _file_chunks(path: Any, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _denied(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "recordings/denied.html", {"message": message}, status=403)


def _play(request: HttpRequest, tenant: Client, role: str, *, site: str) -> HttpResponse:
    try:
        pk = int(request.GET["play"])
    except ValueError:
        raise Http404 from None
    with schema_context(tenant.schema_name):
        try:
            recording = Recording.objects.get(pk=pk)
        except Recording.DoesNotExist:
            raise Http404 from None
    denial, cleared_by = playback_check(request.user, role, tenant, recording.call_id)  # type: ignore[arg-type]
    if denial is not None:
        audit.record(
            "recording.play_refused",
            request=request,
            tenant=tenant,
            obj=recording,
            details={"call_id": recording.call_id, "role": role, "site": site},
        )
        return _denied(request, denial)
    path = stored_file(recording)
    if not recording.playable or path is None or not path.is_file():
        return render(
            request,
            "recordings/denied.html",
            {
                "message": _("This recording cannot be played: it is %(status)s.")
                % {"status": recording.get_status_display()}
            },
            status=404 if recording.status != Recording.Status.STORED else 410,
        )
    size = path.stat().st_size
    wanted = parse_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    download = request.GET.get("download") == "1"
    kind = RecordingAccess.Kind.DOWNLOAD if download else RecordingAccess.Kind.PLAY
    first, last = wanted if wanted else (0, size - 1)
    if request.method != "HEAD":  # a HEAD fetches no audio: nothing played
        _record_access(request, tenant, recording, role, site, kind, wanted, first, cleared_by)
    length = max(0, last - first + 1)
    response = StreamingHttpResponse(
        _file_chunks(path, first, length),
        status=206 if wanted else 200,
        content_type="audio/wav",
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    filename = f"call-{re.sub(r'[^A-Za-z0-9_.-]+', '_', recording.call_id)}.wav"
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


def _record_access(
    request: HttpRequest,
    tenant: Client,
    recording: Recording,
    role: str,
    site: str,
    kind: str,
    wanted: tuple[int, int] | None | bool,
    first: int,
    cleared_by: str = "",
) -> None:
    """One access row and one audit event per playback.

    A player fetches a file in several Range requests; a request from the start (or without a
    Range) begins a playback, a later part continues one begun within ``PLAYBACK_SESSION`` by
    the same user. A request for a later part with no playback begun counts as one, so no
    part of a recording is ever fetched unaudited.
    """
    user = request.user
    byte_range = f"{wanted[0]}-{wanted[1]}" if isinstance(wanted, tuple) else ""
    with schema_context(tenant.schema_name), transaction.atomic():
        if kind == RecordingAccess.Kind.PLAY and first > 0:
            recent = RecordingAccess.objects.filter(
                recording=recording,
                user_id=user.pk,
                kind=kind,
                at__gte=timezone.now() - PLAYBACK_SESSION,
            ).exists()
            if recent:
                return
        access = RecordingAccess.objects.create(
            recording=recording,
            kind=kind,
            user_id=user.pk,
            user_email=getattr(user, "email", ""),
            role=role,
            site=site,
            ip_address=audit.client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            byte_range=byte_range,
            clearance=cleared_by,
        )
        audit.record(
            "recording.downloaded" if kind == RecordingAccess.Kind.DOWNLOAD else "recording.played",
            request=request,
            tenant=tenant,
            obj=recording,
            details={
                "call_id": recording.call_id,
                "access_id": access.pk,
                "role": role,
                "site": site,
                "range": byte_range,
                "clearance": cleared_by,
            },
        )


# -- mask API (provider host) -----------------------------------------------------------------


def _json(status: int, **body: Any) -> JsonResponse:
    return JsonResponse(body, status=status)


def _find_recording_tenant(call_id: str, tenants: list[Client]) -> tuple[Client, Recording] | None:
    """The client whose schema holds a recording of ``call_id`` (the live one first)."""
    found: tuple[Client, Recording] | None = None
    for tenant in tenants:
        with schema_context(tenant.schema_name):
            rec = (
                Recording.objects.filter(call_id=call_id)
                .exclude(status=Recording.Status.PURGED)
                .order_by("-started_ms", "-id")
                .first()
            )
        if rec is None:
            continue
        if rec.status == Recording.Status.RECORDING:
            return tenant, rec
        found = found or (tenant, rec)
    return found


def _acting_on_calls(request: HttpRequest, user: Any) -> dict[str, Any]:
    """Who may act on live calls through the API (provider host, roles in ``MASKERS``; an
    agent only on the clients it is certified for): ``{"role", "agent", "tenants"}`` or
    ``{"error": response}``; ``Http404`` for everyone else."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or not tenant.is_provider:
        raise Http404
    role = provider_role(user)
    if role not in MASKERS:
        raise Http404
    agent = agent_of(user)
    if role == Role.AGENT and agent is None:
        return {"error": _json(403, ok=False, message=_("You have no agent record."))}
    tenants = list(Client.objects.exclude(schema_name="public").order_by("schema_name"))
    if role == Role.AGENT:
        tenants = [t for t in tenants if certified(user, t)]
    return {"role": role, "agent": agent, "tenants": tenants}


def _prepare_mask(request: HttpRequest, user: Any, call_id: str, command: str) -> dict[str, Any]:
    who = _acting_on_calls(request, user)
    if "error" in who:
        return who
    role, agent, tenants = who["role"], who["agent"], who["tenants"]
    found = _find_recording_tenant(call_id, tenants)
    if found is None:
        return {
            "error": _json(
                404,
                ok=False,
                message=_("No recording of call %(call)s is known.") % {"call": call_id},
            )
        }
    client, recording = found
    if recording.status != Recording.Status.RECORDING:
        return {
            "error": _json(
                409,
                ok=False,
                message=_("The recording of call %(call)s has ended; nothing to %(command)s.")
                % {"call": call_id, "command": command},
            )
        }
    return {"client": client, "role": role, "agent_id": agent.agent_id if agent else None}


def _finish_mask(
    request: HttpRequest,
    user: Any,
    client: Client,
    call_id: str,
    command: str,
    agent_id: str | None,
    outcome: str,
    message: str,
    at_ms: int,
) -> None:
    details = {
        "call_id": call_id,
        "command": command,
        "agent_id": agent_id,
        "outcome": outcome,
        "message": message[:300],
        "at_ms": at_ms,
    }
    with transaction.atomic():
        recording = None
        if outcome == "ok" and command in ("mask", "unmask"):
            recording = do_mark_masked(client.schema_name, call_id, command == "mask", at_ms)
        verb = "start" if command == "record" else command
        action = f"recording.{verb}ed" if outcome == "ok" else f"recording.{verb}_failed"
        audit.record(
            action, actor=user, request=request, tenant=client, obj=recording, details=details
        )


async def _mask_command(request: HttpRequest, call_id: str, command: str) -> HttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        return _json(401, ok=False, message=_("Sign in first."))
    call_id = call_id[:64]
    try:
        prep = await sync_to_async(_prepare_mask)(request, user, call_id, command)
    except Http404:
        return _json(404, ok=False, message=_("Not found."))
    if "error" in prep:
        return prep["error"]
    client, agent_id = prep["client"], prep["agent_id"]
    try:
        reply = await switchboard.send_command(command, call_id, agent_id)
    except switchboard.SwitchboardTimeout:
        message = _(
            "The switchboard did not answer within %(seconds)s s; the recording may not be "
            "%(state)s. Try again, or tell your supervisor."
        ) % {
            "seconds": f"{switchboard.REPLY_TIMEOUT_S:g}",
            "state": _("masked") if command == "mask" else _("unmasked"),
        }
        await sync_to_async(_finish_mask)(
            request,
            user,
            client,
            call_id,
            command,
            agent_id,
            "timeout",
            "",
            int(time.time() * 1000),
        )
        return _json(504, ok=False, call_id=call_id, message=message)
    except switchboard.SwitchboardUnavailable:
        return _json(503, ok=False, call_id=call_id, message=_("The switchboard is unreachable."))
    at_ms = int(time.time() * 1000)
    if not reply.ok:
        await sync_to_async(_finish_mask)(
            request, user, client, call_id, command, agent_id, "refused", reply.message, at_ms
        )
        return _json(
            409,
            ok=False,
            call_id=call_id,
            message=_("The switchboard refused: %(reason)s") % {"reason": reply.message},
        )
    await sync_to_async(_finish_mask)(
        request, user, client, call_id, command, agent_id, "ok", reply.message, at_ms
    )
    return _json(
        200,
        ok=True,
        call_id=call_id,
        masked=command == "mask",
        at_ms=at_ms,
        message=reply.message
        or (_("Recording paused.") if command == "mask" else _("Recording resumed.")),
    )


@require_POST
async def api_mask(request: HttpRequest, call_id: str) -> HttpResponse:
    """POST: pause the call's recording while a secret is spoken (JSON answer)."""
    return await _mask_command(request, call_id, "mask")


@require_POST
async def api_unmask(request: HttpRequest, call_id: str) -> HttpResponse:
    """POST: resume the call's recording (JSON answer)."""
    return await _mask_command(request, call_id, "unmask")


# -- clearance grants on the client's portal ---------------------------------------------------
class ClearanceForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Provider supervisor's e-mail"),
        help_text=gettext_lazy("Ask the provider for the supervisor's sign-in e-mail."),
    )
    queue_id = forms.ChoiceField(label=gettext_lazy("Calls of"), required=False)
    note = forms.CharField(label=gettext_lazy("Why (optional)"), max_length=300, required=False)

    def __init__(self, *args: Any, tenant: Client, **kwargs: Any) -> None:
        from routing.models import Queue

        super().__init__(*args, **kwargs)
        queues = Queue.objects.filter(tenant=tenant).order_by("name")
        self.fields["queue_id"].choices = [("", gettext_lazy("All our queues"))] + [
            (q.queue_id, f"{q.name} ({_('clearance')} {q.clearance})") for q in queues
        ]

    def clean_email(self) -> Any:
        from tenants.access import provider_role
        from tenants.models import User

        email = self.cleaned_data["email"]
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None or provider_role(user) != Role.SUPERVISOR:
            raise forms.ValidationError(
                _("No active provider supervisor signs in with this e-mail.")
            )
        return user


def _clearance_page(
    request: HttpRequest, tenant: Client, form: ClearanceForm, status: int = 200
) -> HttpResponse:
    from recordings.models import RecordingClearance
    from routing.models import Queue

    with schema_context(tenant.schema_name):
        grants = list(RecordingClearance.objects.all()[:200])
    names = dict(Queue.objects.filter(tenant=tenant).values_list("queue_id", "name"))
    needs = Queue.objects.filter(tenant=tenant, clearance__gt=0).exists()
    return render(
        request,
        "recordings/clearances.html",
        {
            "form": form,
            "active": [(g, names.get(g.queue_id, g.queue_id)) for g in grants if g.active],
            "revoked": [(g, names.get(g.queue_id, g.queue_id)) for g in grants if not g.active],
            "needs_clearance": needs,
            "supervisors_allowed": Role.SUPERVISOR in allowed_roles(tenant),
        },
        status=status,
    )


@login_required
def portal_clearances(request: HttpRequest) -> HttpResponse:
    """The client's admin clears named provider supervisors to play its recordings."""
    from recordings.actions import ClearanceError, do_grant_clearance

    access_client_site(request, [Role.CLIENT_ADMIN])
    tenant: Client = request.tenant  # type: ignore[attr-defined]
    if request.method != "POST":
        return _clearance_page(request, tenant, ClearanceForm(tenant=tenant))
    if "revoke" in request.POST:
        return _revoke_clearance(request, tenant)
    form = ClearanceForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _clearance_page(request, tenant, form, status=400)
    supervisor = form.cleaned_data["email"]
    try:
        do_grant_clearance(
            tenant,
            supervisor,
            queue_id=form.cleaned_data["queue_id"],
            note=form.cleaned_data["note"],
            actor=request.user,
            request=request,
        )
    except ClearanceError as exc:
        form.add_error(None, str(exc))
        return _clearance_page(request, tenant, form, status=409)
    messages.success(
        request, _("%(who)s may now play these recordings.") % {"who": supervisor.email}
    )
    return redirect("recording_clearances")


def _revoke_clearance(request: HttpRequest, tenant: Client) -> HttpResponse:
    """POST ``revoke=<grant id>`` on the clearances page."""
    from recordings.actions import ClearanceError, do_revoke_clearance
    from recordings.models import RecordingClearance

    try:
        grant_id = int(request.POST["revoke"])
    except ValueError:
        raise Http404 from None
    try:
        grant = do_revoke_clearance(tenant, grant_id, actor=request.user, request=request)
    except RecordingClearance.DoesNotExist:
        raise Http404 from None
    except ClearanceError as exc:
        messages.error(request, str(exc))
        return redirect("recording_clearances")
    messages.success(request, _("Clearance of %(who)s revoked.") % {"who": grant.user_email})
    return redirect("recording_clearances")


# -- start a recording on demand (provider host) ----------------------------------------------


def _live_call_tenant(call_id: str, tenants: list[Client]) -> Client | None:
    """The client whose schema holds ``call_id`` as a call still going on."""
    from calls.models import Call

    for tenant in tenants:
        with schema_context(tenant.schema_name):
            if Call.objects.filter(call_id=call_id, ended_ms__isnull=True).exists():
                return tenant
    return None


def _prepare_start(request: HttpRequest, user: Any, call_id: str) -> dict[str, Any]:
    who = _acting_on_calls(request, user)
    if "error" in who:
        return who
    agent = who["agent"]
    client = _live_call_tenant(call_id, who["tenants"])
    if client is None:
        return {
            "error": _json(
                404,
                ok=False,
                message=_("No call %(call)s is going on.") % {"call": call_id},
            )
        }
    with schema_context(client.schema_name):
        recording = Recording.objects.filter(
            call_id=call_id, status=Recording.Status.RECORDING
        ).exists()
    if recording:
        return {
            "error": _json(
                409,
                ok=False,
                message=_("Call %(call)s is already being recorded.") % {"call": call_id},
            )
        }
    return {"client": client, "agent_id": agent.agent_id if agent else None}


@require_POST
async def api_record(request: HttpRequest, call_id: str) -> HttpResponse:
    """POST: start recording a call whose client records on demand (JSON answer).

    The switchboard applies the client's policy: ``all``/``sample`` are decided by the policy
    and ``none`` forbids it; it refuses with the reason (409). The recording row appears when
    the switchboard's notice is stored, as for any recording."""
    user = await request.auser()
    if not user.is_authenticated:
        return _json(401, ok=False, message=_("Sign in first."))
    call_id = call_id[:64]
    try:
        prep = await sync_to_async(_prepare_start)(request, user, call_id)
    except Http404:
        return _json(404, ok=False, message=_("Not found."))
    if "error" in prep:
        return prep["error"]
    client, agent_id = prep["client"], prep["agent_id"]
    try:
        reply = await switchboard.send_command("record", call_id, agent_id)
    except switchboard.SwitchboardTimeout:
        await sync_to_async(_finish_mask)(
            request, user, client, call_id, "record", agent_id, "timeout", "",
            int(time.time() * 1000),
        )  # fmt: skip
        message = _(
            "The switchboard did not answer within %(seconds)s s; the recording may not have "
            "started. Try again, or tell your supervisor."
        ) % {"seconds": f"{switchboard.REPLY_TIMEOUT_S:g}"}
        return _json(504, ok=False, call_id=call_id, message=message)
    except switchboard.SwitchboardUnavailable:
        return _json(503, ok=False, call_id=call_id, message=_("The switchboard is unreachable."))
    at_ms = int(time.time() * 1000)
    outcome = "ok" if reply.ok else "refused"
    await sync_to_async(_finish_mask)(
        request, user, client, call_id, "record", agent_id, outcome, reply.message, at_ms
    )
    if not reply.ok:
        return _json(
            409,
            ok=False,
            call_id=call_id,
            message=_("The switchboard refused: %(reason)s") % {"reason": reply.message},
        )
    return _json(
        200,
        ok=True,
        call_id=call_id,
        recording=True,
        at_ms=at_ms,
        message=reply.message or _("Recording started."),
    )
