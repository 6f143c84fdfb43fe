"""The client portal's call history: every call of this company, and one call in detail.

Served on the client's own domain (``/call-history/``); everything is read from the request's
tenant schema, so another company's call id answers the same 404 as a missing one. Any member
of the company may look (read-only). Times are stored as epoch milliseconds UTC and shown in
the company's time zone (activated per request by the tenant middleware); date filters are
days in that zone. Recordings are only linked through the recordings app's own page and
playback view, and only for users its access rules allow (``recordings.access``); playback is
audited there.

The switchboard links the client's second line to the detail page on escalation, so its
address (``/call-history/<call_id>/``) must stay stable.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, Paginator
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django_tenants.utils import schema_context

from calls.models import Call, Leg, Segment
from dispositions.models import DEFAULT_CODES, CallDisposition, DispositionCode
from tenants.access import access_client_site
from tenants.models import Client

PAGE_SIZE = 50
#: Most rows one CSV export holds; a larger selection is refused with a message.
CSV_MAX_ROWS = 50_000
CSV_CHUNK = 500
#: Longest date range a filter may span (days).
MAX_RANGE_DAYS = 366 * 3

_CALLER_RE = re.compile(r"^\+?[0-9]{1,20}$")
_CALLER_NOISE = re.compile(r"[\s().-]")

OUTCOMES: list[tuple[str, Any]] = [
    ("ivr", gettext_lazy("Ended in the IVR (self-service)")),
    ("answered", gettext_lazy("Answered by an agent")),
    ("abandoned", gettext_lazy("Abandoned while waiting")),
    ("overflowed", gettext_lazy("Overflowed out")),
    ("escalated", gettext_lazy("Handed to your second line")),
    ("callback", gettext_lazy("Callback requested")),
    ("failed", gettext_lazy("Not connected")),
]
OUTCOME_LABELS = {**dict(OUTCOMES), "": gettext_lazy("In progress")}

ORIGINS: list[tuple[str, Any]] = [
    ("direct", gettext_lazy("Direct (dialled your number)")),
    ("overflow", gettext_lazy("Overflow (sent by your own centre)")),
    ("callback", gettext_lazy("Callback (we called the caller back)")),
]
ORIGIN_LABELS = dict(ORIGINS)

#: The timeline's kinds, explained for the client (shared/design/segments.md, decision 0011).
SEGMENT_KINDS: dict[str, tuple[Any, Any]] = {
    "ivr": (
        gettext_lazy("IVR"),
        gettext_lazy("The caller in your IVR: greetings, menus, self-service answers, a survey."),
    ),
    "queue": (
        pgettext_lazy("time spent waiting", "Waiting"),
        gettext_lazy("The caller waiting in a queue for an agent (or until taking a callback)."),
    ),
    "agent": (
        gettext_lazy("With an agent"),
        gettext_lazy(
            "The caller talking to one of our agents; hold and consultation time count here."
        ),
    ),
    "handoff": (
        gettext_lazy("With your second line"),
        gettext_lazy(
            "The caller talking to your second line with no agent of ours on the call: after "
            "a transfer, or when the IVR or the queue sent the caller straight to you."
        ),
    ),
    "escalation": (
        gettext_lazy("Second line's leg"),
        gettext_lazy(
            "The call to your second line, from its answer to its hangup (it overlaps the "
            "agent's time while the agent introduces the caller)."
        ),
    ),
    "callback_dial": (
        gettext_lazy("Calling back"),
        gettext_lazy("Our call to the caller for a callback, from their answer until they queue."),
    ),
}

LEG_ROLES = {
    Leg.Role.A: gettext_lazy("Caller"),
    Leg.Role.AGENT: gettext_lazy("Agent"),
    Leg.Role.ESCALATION: gettext_lazy("Your second line"),
    Leg.Role.CALLBACK: gettext_lazy("Callback to the caller"),
}

RECONCILE_TEXT = {
    Call.Reconcile.WAITING: (
        gettext_lazy("Being checked"),
        gettext_lazy(
            "The call's timings are being checked against the phone network's records; this "
            "usually takes a few minutes after the call ends."
        ),
    ),
    Call.Reconcile.OK: (
        gettext_lazy("Checked"),
        gettext_lazy("The call's timings match the phone network's records."),
    ),
    Call.Reconcile.FLAGGED: (
        gettext_lazy("Checked"),
        gettext_lazy(
            "The call's timings match the phone network's records; your provider is reviewing "
            "a related record."
        ),
    ),
    Call.Reconcile.MISMATCH: (
        gettext_lazy("Under review"),
        gettext_lazy(
            "The call's timings differ from the phone network's records. Your provider is "
            "looking into it; the call is not billed until it is resolved."
        ),
    ),
}

#: Hang-up causes a client may meet on a call that did not connect, in plain words.
CAUSES = {
    "NO_ANSWER": gettext_lazy("no answer"),
    "USER_BUSY": gettext_lazy("busy"),
    "ORIGINATOR_CANCEL": gettext_lazy("the caller hung up first"),
    "NORMAL_CLEARING": gettext_lazy("normal hang-up"),
    "CALL_REJECTED": gettext_lazy("rejected"),
    "NO_ROUTE_DESTINATION": gettext_lazy("number unreachable"),
    "UNALLOCATED_NUMBER": gettext_lazy("number not in service"),
    "NORMAL_TEMPORARY_FAILURE": gettext_lazy("temporary network failure"),
    "RECOVERY_ON_TIMER_EXPIRE": gettext_lazy("network timeout"),
}


#: Why a timeline step ended (the meter's reasons, telephony/callflow/meter.py), in plain words.
END_REASONS = {
    "queue": gettext_lazy("went to a queue"),
    "bridge": gettext_lazy("connected to an agent"),
    "abandon": gettext_lazy("the caller hung up while waiting"),
    "overflow": gettext_lazy("sent on to another centre"),
    "voicemail": gettext_lazy("went to voicemail"),
    "callback": gettext_lazy("the caller chose a callback"),
    "timeout": gettext_lazy("longest wait reached"),
    "exit_key": gettext_lazy("the caller pressed the exit key"),
    "ivr": gettext_lazy("back to the menu"),
    "after_agent": gettext_lazy("back to the menu after the agent"),
    "agent_left": gettext_lazy("our agent left the caller with your second line"),
    "agent_hangup": gettext_lazy("the agent hung up"),
    "transfer": gettext_lazy("transferred"),
    "consult_ended": gettext_lazy("consultation ended"),
    "takeover": gettext_lazy("moved to a standby system"),
    "escalation": gettext_lazy("answered by your second line"),
    "second_line_ended": gettext_lazy("your second line hung up"),
    "hangup": gettext_lazy("the call ended"),
}


def end_reason_text(reason: str) -> str:
    if not reason:
        return ""
    text = END_REASONS.get(reason) or CAUSES.get(reason)
    return str(text) if text else reason.replace("_", " ").lower()


class BadFilter(Exception):
    """A bad query parameter: answered 400 with the message."""


# -- filters ---------------------------------------------------------------------------------
class CallFilterForm(forms.Form):
    since = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"),
        required=False,
        choices=[
            ("", gettext_lazy("Any outcome")),
            *OUTCOMES,
            ("live", gettext_lazy("In progress")),
        ],
    )
    queue = forms.ChoiceField(label=gettext_lazy("Queue"), required=False)
    origin = forms.ChoiceField(
        label=gettext_lazy("Origin"),
        required=False,
        choices=[("", gettext_lazy("Any origin")), *ORIGINS],
    )
    caller = forms.CharField(
        label=gettext_lazy("Caller number"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"type": "search", "inputmode": "tel"}),
    )

    def __init__(self, *args: Any, queues: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue"].choices = [("", _("Any queue")), *queues]

    def clean_caller(self) -> str:
        raw = self.cleaned_data.get("caller") or ""
        value = _CALLER_NOISE.sub("", raw)
        if value and not _CALLER_RE.match(value):
            raise forms.ValidationError(
                _("Search by digits of the caller's number (an optional leading + is fine).")
            )
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since > until:
                raise forms.ValidationError(_("'From' must not be after 'To'."))
            if (until - since).days > MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    _("Choose a date range of at most %(days)s days.") % {"days": MAX_RANGE_DAYS}
                )
        return data


def _queue_choices(tenant: Client) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The company's queues (name by id), plus ids its calls name that no longer exist."""
    from routing.models import Queue

    names = dict(
        Queue.objects.filter(tenant=tenant).order_by("name").values_list("queue_id", "name")
    )
    used = Call.objects.exclude(queue="").values_list("queue", flat=True).distinct()
    choices = [(qid, name) for qid, name in names.items()]
    choices += [(qid, qid) for qid in sorted(set(used) - set(names))]
    return choices, names


def _local_day_ms(day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
    return int(start.timestamp() * 1000)


def filtered_calls(data: dict[str, Any]) -> QuerySet[Call]:
    """The current schema's calls that match cleaned filter ``data``, newest first."""
    calls = Call.objects.all()
    if data.get("since"):
        calls = calls.filter(started_ms__gte=_local_day_ms(data["since"]))
    if data.get("until"):
        calls = calls.filter(started_ms__lt=_local_day_ms(data["until"] + timedelta(days=1)))
    if data.get("outcome"):
        # A call still going on has no outcome yet ("live" in the filter).
        calls = calls.filter(outcome="" if data["outcome"] == "live" else data["outcome"])
    if data.get("queue"):
        calls = calls.filter(queue=data["queue"])
    if data.get("origin"):
        calls = calls.filter(origin=data["origin"])
    if data.get("caller"):
        calls = calls.filter(caller_number__contains=data["caller"])
    return calls.order_by(F("started_ms").desc(nulls_last=True), "-id")


def _form_errors(form: forms.Form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        for error in errors:
            parts.append(f"{label}: {error}" if label else str(error))
    return " ".join(parts)


class BadForm(BadFilter):
    """Filters that do not validate; the list shows the form with its errors."""

    def __init__(self, form: CallFilterForm) -> None:
        super().__init__(_form_errors(form))
        self.form = form


def _parse(request: HttpRequest, tenant: Client) -> tuple[CallFilterForm, dict[str, str]]:
    queues, names = _queue_choices(tenant)
    params = {k: v for k, v in request.GET.items() if k in CallFilterForm.base_fields}
    form = CallFilterForm(params or None, queues=queues)
    if form.is_bound and not form.is_valid():
        raise BadForm(form)
    return form, names


# -- rows ------------------------------------------------------------------------------------
def ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def clock(ms: int | None) -> str:
    """Milliseconds as h:mm:ss or m:ss ("" for None)."""
    if ms is None:
        return ""
    seconds = int(round(ms / 1000))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def agent_names(agent_ids: Iterable[str]) -> dict[str, str]:
    """Display names of provider agents (their user's full name, else the agent id)."""
    from routing.models import Agent

    ids = {a for a in agent_ids if a}
    if not ids:
        return {}
    return {
        a.agent_id: a.user.get_full_name() or a.agent_id
        for a in Agent.objects.filter(agent_id__in=ids).select_related("user")
    }


def disposition_labels() -> dict[str, str]:
    """Every code this company has defined (also switched-off ones), over the defaults."""
    labels = {code: str(label) for code, label in DEFAULT_CODES}
    labels.update(DispositionCode.objects.values_list("code", "label"))
    return labels


@dataclass
class CallRow:
    call: Call
    queue_name: str = ""
    agent_name: str = ""
    talk_ms: int = 0
    wait_ms: int = 0
    handoff_ms: int = 0
    disposition: str = ""
    disposition_code: str = ""
    recording: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def started(self) -> datetime | None:
        return ms_to_dt(self.call.started_ms)

    @property
    def outcome_label(self) -> str:
        return str(OUTCOME_LABELS.get(self.call.outcome, self.call.outcome))

    @property
    def origin_label(self) -> str:
        return str(ORIGIN_LABELS.get(self.call.origin, self.call.origin))

    @property
    def talk(self) -> str:
        return clock(self.talk_ms) if self.talk_ms else ""

    @property
    def wait(self) -> str:
        return clock(self.wait_ms) if self.wait_ms else ""


def call_rows(calls: list[Call], queue_names: dict[str, str]) -> list[CallRow]:
    """The list's columns for ``calls`` (a handful of queries, whatever their number)."""
    from recordings.models import Recording

    if not calls:
        return []
    pks = [c.pk for c in calls]
    ids = [c.call_id for c in calls]
    # Per call and kind; agent/queue/handoff are spans of the caller's leg only.
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call_pk, kind, start, end in Segment.objects.filter(call_id__in=pks).values_list(
        "call_id", "kind", "start_ms", "end_ms"
    ):
        totals[call_pk][kind] += end - start
    dispositions: dict[str, list[CallDisposition]] = defaultdict(list)
    for d in CallDisposition.objects.filter(call_id__in=ids).order_by("-updated_at", "-id"):
        dispositions[d.call_id].append(d)
    recorded = set(
        Recording.objects.filter(
            call_id__in=ids, status__in=[Recording.Status.STORED, Recording.Status.RECORDING]
        ).values_list("call_id", flat=True)
    )
    names = agent_names(c.agent for c in calls)
    labels = disposition_labels() if dispositions else {}
    rows = []
    for c in calls:
        ds = dispositions.get(c.call_id, [])
        chosen = next((d for d in ds if d.agent_id == c.agent), ds[0] if ds else None)
        rows.append(
            CallRow(
                call=c,
                queue_name=queue_names.get(c.queue, c.queue),
                agent_name=names.get(c.agent, c.agent),
                talk_ms=totals[c.pk]["agent"],
                wait_ms=totals[c.pk]["queue"],
                handoff_ms=totals[c.pk]["handoff"],
                disposition=labels.get(chosen.code, chosen.code) if chosen else "",
                disposition_code=chosen.code if chosen else "",
                recording=c.call_id in recorded,
            )
        )
    return rows


def latest_calls(tenant: Client, n: int) -> list[CallRow]:
    """The company's ``n`` newest calls (the portal's home page; current schema)."""
    from routing.models import Queue

    names = dict(Queue.objects.filter(tenant=tenant).values_list("queue_id", "name"))
    return call_rows(list(filtered_calls({})[:n]), names)


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page") or "1"
    try:
        number = int(raw)
    except ValueError:
        raise BadFilter(
            _("The page must be a whole number, not %(raw)r.") % {"raw": raw[:20]}
        ) from None
    if number < 1:
        raise BadFilter(_("The page must be 1 or more."))
    return number


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(
        request, "portal/calls/error.html", {"message": message, "status": 400}, status=400
    )


def _guarded(view):  # type: ignore[no-untyped-def]
    """Members of this company only; GET/HEAD only; bad filters answer 400 with the reason."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        role = access_client_site(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        try:
            return view(request, role, *args, **kwargs)  # type: ignore[no-any-return]
        except BadFilter as exc:
            return _bad_request(request, str(exc))

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return login_required(wrapped)


# -- views -----------------------------------------------------------------------------------
@_guarded
def call_list(request: HttpRequest, role: str) -> HttpResponse:
    """``/call-history/``: the company's calls, newest first, with filters."""
    tenant: Client = request.tenant  # type: ignore[attr-defined]
    try:
        form, queue_names = _parse(request, tenant)
    except BadForm as exc:
        # The page again, with the filters as typed and what is wrong with them.
        context = {"form": exc.form, "error": str(exc), "rows": [], "filtered": True}
        context["zone"] = timezone.get_current_timezone_name()
        return render(request, "portal/calls/list.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    number = _page_number(request)
    paginator = Paginator(filtered_calls(data), PAGE_SIZE)
    try:
        page = paginator.page(number)
    except EmptyPage:
        raise BadFilter(
            _("Page %(number)s is past the last page (%(last)s).")
            % {"number": number, "last": paginator.num_pages}
        ) from None
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/calls/list.html",
        {
            "form": form,
            "page": page,
            "rows": call_rows(list(page.object_list), queue_names),
            "query": query.urlencode(),
            "filtered": form.is_bound,
            "zone": timezone.get_current_timezone_name(),
        },
    )


CSV_HEADER = [
    "call_id",
    "started",
    "caller",
    "number_dialled",
    "origin",
    "queue",
    "outcome",
    "cause",
    "agent",
    "wait_seconds",
    "talk_seconds",
    "second_line_seconds",
    "disposition",
    "recording",
    "parent_call_id",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(
    schema: str, pks: list[int], queue_names: dict[str, str], zone: tzinfo
) -> Iterator[str]:
    """The rows of calls ``pks`` (in that order), read in chunks of :data:`CSV_CHUNK`.

    This runs after the view has returned (the response streams), when the request's schema
    and time zone may no longer be the connection's: each chunk is read inside the company's
    own schema, named explicitly, and times are shown in ``zone`` (the company's)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for first in range(0, len(pks), CSV_CHUNK):
        chunk = pks[first : first + CSV_CHUNK]
        with schema_context(schema):
            by_pk = Call.objects.in_bulk(chunk)
            rows = call_rows([by_pk[pk] for pk in chunk if pk in by_pk], queue_names)
        for row in rows:
            c = row.call
            started = row.started
            yield writer.writerow(
                [
                    c.call_id,
                    started.astimezone(zone).isoformat(timespec="seconds") if started else "",
                    _csv_safe(c.caller_number),
                    _csv_safe(c.did),
                    c.origin,
                    row.queue_name,
                    c.outcome or "in_progress",
                    c.cause,
                    _csv_safe(row.agent_name),
                    f"{row.wait_ms / 1000:.3f}",
                    f"{row.talk_ms / 1000:.3f}",
                    f"{row.handoff_ms / 1000:.3f}",
                    row.disposition_code,
                    "yes" if row.recording else "no",
                    c.parent_call_id,
                ]
            )


def _csv_safe(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula (a caller id may be anything)."""
    if value and value[0] in "=@" or (value and value[0] in "+-" and not value[1:].isdigit()):
        return "'" + value
    return value


@_guarded
def call_list_csv(request: HttpRequest, role: str) -> HttpResponse:
    """``/call-history/export.csv``: the filtered list as CSV (at most :data:`CSV_MAX_ROWS`)."""
    tenant: Client = request.tenant  # type: ignore[attr-defined]
    form, queue_names = _parse(request, tenant)
    calls = filtered_calls(form.cleaned_data if form.is_bound else {})
    pks = list(calls.values_list("pk", flat=True)[: CSV_MAX_ROWS + 1])
    if len(pks) > CSV_MAX_ROWS:
        count = calls.count()
        raise BadFilter(
            _(
                "%(count)s calls match; an export holds at most %(max)s. Narrow the date range "
                "or the filters."
            )
            % {"count": count, "max": CSV_MAX_ROWS}
        )
    response = StreamingHttpResponse(
        _csv_lines(tenant.schema_name, pks, queue_names, timezone.get_current_timezone()),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="calls-{tenant.schema_name}-{stamp}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _not_found(request: HttpRequest, call_id: str) -> HttpResponse:
    return render(
        request,
        "portal/calls/error.html",
        {
            "status": 404,
            "message": _(
                "No call %(call)s in your company's call history. Check the link; calls "
                "appear here once they have started."
            )
            % {"call": call_id[:80]},
        },
        status=404,
    )


def _recordings(request: HttpRequest, tenant: Client, role: str, call: Call) -> dict[str, Any]:
    """The call's recordings and whether this user may play them (``recordings.access``)."""
    from recordings.access import allowed_roles, playback_denial, role_label
    from recordings.models import Recording

    recordings = list(Recording.objects.filter(call_id=call.call_id).order_by("started_ms", "id"))
    if not recordings:
        return {"recordings": [], "denial": None}
    denial = playback_denial(request.user, role, tenant, call.call_id)  # type: ignore[arg-type]
    return {
        "recordings": recordings,
        "denial": denial,
        "allowed": [role_label(r) for r in allowed_roles(tenant)],
    }


@_guarded
def call_detail(request: HttpRequest, role: str, call_id: str) -> HttpResponse:
    """``/call-history/<call_id>/``: one call's timeline, legs, wrap-up and recording."""
    tenant: Client = request.tenant  # type: ignore[attr-defined]
    call = Call.objects.filter(call_id=call_id).first() if len(call_id) <= 64 else None
    if call is None:
        return _not_found(request, call_id)
    from routing.models import Queue

    queue_names = dict(Queue.objects.filter(tenant=tenant).values_list("queue_id", "name"))
    segments = list(Segment.objects.filter(call=call).order_by("start_ms", "id"))
    legs = list(Leg.objects.filter(call=call).order_by(F("answered_ms").asc(nulls_last=True), "id"))
    dispositions = list(CallDisposition.objects.filter(call_id=call.call_id).order_by("created_at"))
    names = agent_names(
        [call.agent, *(s.agent for s in segments), *(leg.agent for leg in legs)]
        + [d.agent_id for d in dispositions]
    )
    labels = disposition_labels() if dispositions else {}
    timeline = [
        {
            "kind": s.kind,
            "label": SEGMENT_KINDS.get(s.kind, (s.kind, ""))[0],
            "help": SEGMENT_KINDS.get(s.kind, ("", ""))[1],
            "caller_leg": s.leg_uuid == call.a_leg_uuid,
            "start": ms_to_dt(s.start_ms),
            "end": ms_to_dt(s.end_ms),
            "duration": clock(s.duration_ms),
            "queue": queue_names.get(s.queue, s.queue),
            "agent": names.get(s.agent, s.agent),
            "target": s.target,
            "end_reason": end_reason_text(s.end_reason),
        }
        for s in segments
    ]
    row = call_rows([call], queue_names)[0]
    parent = (
        Call.objects.filter(call_id=call.parent_call_id).first() if call.parent_call_id else None
    )
    callbacks = list(
        Call.objects.filter(parent_call_id=call.call_id).order_by(
            F("started_ms").asc(nulls_last=True), "id"
        )
    )
    status_label, status_help = RECONCILE_TEXT.get(
        call.reconcile_status, (call.get_reconcile_status_display(), "")
    )
    duration_ms = call.ended_ms - call.answered_ms if call.ended_ms and call.answered_ms else None
    context = {
        "call": call,
        "row": row,
        "started": ms_to_dt(call.started_ms),
        "answered": ms_to_dt(call.answered_ms),
        "ended": ms_to_dt(call.ended_ms),
        "duration": clock(duration_ms),
        "cause": str(CAUSES.get(call.cause, call.cause)) if call.cause else "",
        "timeline": timeline,
        "legs": [
            {
                "role": LEG_ROLES.get(leg.role, leg.role),
                "answered": ms_to_dt(leg.answered_ms),
                "ended": ms_to_dt(leg.ended_ms),
                "who": names.get(leg.agent, leg.agent) if leg.agent else leg.target,
                "uuid": leg.uuid,
            }
            for leg in legs
        ],
        "dispositions": [
            {
                "agent": names.get(d.agent_id, d.agent_id),
                "label": labels.get(d.code, d.code),
                "code": d.code,
                "note": d.note,
                "at": d.updated_at,
            }
            for d in dispositions
        ],
        "parent": parent,
        "callbacks": [
            {"call": c, "started": ms_to_dt(c.started_ms), "outcome": OUTCOME_LABELS.get(c.outcome)}
            for c in callbacks
        ],
        "status_label": status_label,
        "status_help": status_help,
        "kinds": [(k, label, help_text) for k, (label, help_text) in SEGMENT_KINDS.items()],
        "zone": timezone.get_current_timezone_name(),
        **_recordings(request, tenant, role, call),
    }
    return render(request, "portal/calls/detail.html", context)
