"""Provider console: calls that need attention, across every client company.

Three kinds of trouble, each read inside its tenant's schema (named explicitly per tenant):

- ``mismatch``: a call whose segments differ from its legs' CDRs by more than the 1 s that
  reconciliation snaps; it is not billed until someone finds out why and re-runs it;
- ``cdr_flag``: a CDR no segment accounts for (:class:`calls.models.CdrFlag`), open until
  provider staff resolve it with a note;
- ``overdue``: an ended call still waiting for its CDRs longer than :data:`OVERDUE_S`.

Only provider admins, supervisors and finance see it (404 for anyone else, as elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_tenants.utils import schema_context

from calls import actions
from calls.models import Call, CdrFlag, Leg, Segment
from cdrs.models import RawCdr
from tenants.access import access_client, access_provider
from tenants.models import Client, Role

ROLES = (Role.PROVIDER_ADMIN, Role.SUPERVISOR, Role.FINANCE)
#: An ended call whose CDRs have not all arrived after this long needs a look (CDRs are
#: posted at hangup; the switchboard's reconciliation grace is the same 5 minutes).
OVERDUE_S = actions.DEFAULT_GRACE_S
#: Rows read per tenant and kind for the list (counts are always exact).
ROWS_PER_TENANT = 500
PAGE_SIZE = 50

KINDS = {
    "mismatch": _("Segments differ from CDRs"),
    "cdr_flag": _("CDR without segments"),
    "overdue": _("Waiting for CDRs too long"),
}

SEGMENT_KINDS = [
    ("ivr", _("Caller in the client's IVR: greetings, menus, self-service, post-call survey.")),
    ("queue", _("Caller waiting in a queue for a provider agent (or a callback offer).")),
    (
        "agent",
        _("Caller bridged to a provider agent; hold and consult time with our agent count here."),
    ),
    (
        "handoff",
        _(
            "Caller talking to the client's second line with no agent of ours: after a warm "
            "transfer completes, or when the IVR or the queue hands the caller straight to the "
            "second line."
        ),
    ),
    (
        "escalation",
        _(
            "The leg to the client's second line, from its answer to its hangup (it overlaps "
            "'agent' during a warm consult: both are real resources)."
        ),
    ),
    (
        "callback_dial",
        _("The platform's outbound leg calling the caller back, until the caller enters a queue."),
    ),
]


class AttentionFilterForm(forms.Form):
    tenant = forms.ModelChoiceField(
        label=_("Client"),
        queryset=Client.objects.exclude(schema_name="public").order_by("name"),
        required=False,
        empty_label=_("All clients"),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("", _("All kinds")), *KINDS.items()], required=False
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    resolved = forms.BooleanField(label=_("Include resolved flags"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("'From' must not be after 'To'."))
        return data


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("How was it resolved?"),
        max_length=actions.RESOLUTION_NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@dataclass
class Row:
    tenant: Client
    kind: str
    when: datetime | None
    call_id: str
    summary: str
    flag: CdrFlag | None = None

    @property
    def kind_label(self) -> str:
        return str(KINDS[self.kind])


def ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _local_day_ms(day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
    return int(start.timestamp() * 1000)


def _bounds(data: dict[str, Any]) -> tuple[int | None, int | None]:
    """The date range (in the viewer's zone) as epoch ms, end exclusive."""
    since = _local_day_ms(data["since"]) if data.get("since") else None
    until = _local_day_ms(data["until"] + timedelta(days=1)) if data.get("until") else None
    return since, until


def _calls(kind: str, since: int | None, until: int | None) -> QuerySet[Call]:
    if kind == "mismatch":
        qs = Call.objects.filter(reconcile_status=Call.Reconcile.MISMATCH, rated=False)
    else:
        cutoff = int((timezone.now() - timedelta(seconds=OVERDUE_S)).timestamp() * 1000)
        qs = Call.objects.filter(
            reconcile_status=Call.Reconcile.WAITING, ended_ms__isnull=False, ended_ms__lt=cutoff
        )
    if since is not None:
        qs = qs.filter(started_ms__gte=since)
    if until is not None:
        qs = qs.filter(started_ms__lt=until)
    return qs.order_by("-started_ms", "-id")


def _flags(since: int | None, until: int | None, resolved: bool) -> QuerySet[CdrFlag]:
    cdr_start = RawCdr.objects.filter(leg_uuid=OuterRef("cdr_uuid")).values("started_at")[:1]
    qs = CdrFlag.objects.select_related("call").annotate(
        when=Coalesce(Subquery(cdr_start, output_field=DateTimeField()), "created")
    )
    if not resolved:
        qs = qs.filter(resolved_at__isnull=True)
    if since is not None:
        qs = qs.filter(when__gte=ms_to_dt(since))
    if until is not None:
        qs = qs.filter(when__lt=ms_to_dt(until))
    return qs.order_by("-when", "-id")


def _tenant_rows(
    tenant: Client, kinds: list[str], data: dict[str, Any]
) -> tuple[dict[str, int], list[Row]]:
    since, until = _bounds(data)
    counts: dict[str, int] = {}
    rows: list[Row] = []
    with schema_context(tenant.schema_name):
        for kind in kinds:
            if kind == "cdr_flag":
                flags = _flags(since, until, bool(data.get("resolved")))
                counts[kind] = flags.count()
                for flag in flags[:ROWS_PER_TENANT]:
                    rows.append(
                        Row(
                            tenant,
                            kind,
                            flag.when,
                            flag.call.call_id if flag.call else "",
                            flag.message or flag.get_reason_display(),
                            flag,
                        )
                    )
            else:
                calls = _calls(kind, since, until)
                counts[kind] = calls.count()
                for call in calls[:ROWS_PER_TENANT]:
                    summary = "; ".join(call.reconcile_messages or []) or call.get_outcome_display()
                    rows.append(Row(tenant, kind, ms_to_dt(call.started_ms), call.call_id, summary))
    return counts, rows


@login_required
def attention(request: HttpRequest) -> HttpResponse:
    role = access_provider(request, ROLES)
    form = AttentionFilterForm(request.GET or None)
    status = 200
    data: dict[str, Any] = {}
    if form.is_bound:
        if form.is_valid():
            data = form.cleaned_data
        else:
            status = 400
    tenants = (
        [data["tenant"]]
        if data.get("tenant")
        else list(Client.objects.exclude(schema_name="public").order_by("name"))
    )
    kinds = [data["kind"]] if data.get("kind") else list(KINDS)
    per_tenant = []
    totals = dict.fromkeys(KINDS, 0)
    rows: list[Row] = []
    if status == 200:
        for tenant in tenants:
            counts, tenant_rows = _tenant_rows(tenant, kinds, data)
            per_tenant.append((tenant, [counts.get(k) for k in KINDS], sum(counts.values())))
            for k, n in counts.items():
                totals[k] += n
            rows.extend(tenant_rows)
    epoch = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: r.when or epoch, reverse=True)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    other_filters = query.copy()
    other_filters.pop("kind", None)
    kind_prefix = f"{other_filters.urlencode()}&" if other_filters else ""
    context = {
        "role": role,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "kinds": KINDS,
        "totals": [(k, KINDS[k], totals[k]) for k in KINDS],
        "kind_prefix": kind_prefix,
        "per_tenant": [t for t in per_tenant if t[2]],
        "truncated": sum(totals.values()) > len(rows),
        "overdue_minutes": OVERDUE_S // 60,
        "segment_kinds": SEGMENT_KINDS,
    }
    return render(request, "calls/attention.html", context, status=status)


def _leg_rows(call: Call) -> list[dict[str, Any]]:
    legs = list(call.legs.all().order_by("answered_ms", "id"))
    segments = list(Segment.objects.filter(call=call).order_by("start_ms", "id"))
    cdrs = {c.leg_uuid: c for c in RawCdr.objects.filter(leg_uuid__in=[leg.uuid for leg in legs])}
    known = {leg.uuid for leg in legs}
    out = []
    for leg in legs:
        leg_segments = [s for s in segments if s.leg_uuid == leg.uuid]
        cdr = cdrs.get(leg.uuid)
        metered = sum(s.duration_ms for s in leg_segments)
        cdr_ms = (cdr.billmsec or cdr.billsec * 1000) if cdr is not None and cdr.answered else None
        out.append(
            {
                "leg": leg,
                "segments": [
                    {
                        "s": s,
                        "start": ms_to_dt(s.start_ms),
                        "end": ms_to_dt(s.end_ms),
                        "seconds": s.duration_ms / 1000,
                    }
                    for s in leg_segments
                ],
                "cdr": cdr,
                "metered_s": metered / 1000,
                "cdr_s": None if cdr_ms is None else cdr_ms / 1000,
                "diff_s": None if cdr_ms is None else (metered - cdr_ms) / 1000,
                # Agent legs are not metered by time (segments.md): no segments is expected.
                "unmetered": leg.role == Leg.Role.AGENT,
            }
        )
    stray = [s for s in segments if s.leg_uuid not in known]
    if stray:
        out.append({"leg": None, "segments": [{"s": s} for s in stray], "cdr": None})
    return out


@login_required
def attention_call(request: HttpRequest, client_id: int, call_id: str) -> HttpResponse:
    role = access_provider(request, ROLES)
    tenant = access_client(request, client_id, ROLES)
    with schema_context(tenant.schema_name):
        call = Call.objects.filter(call_id=call_id).first()
        if call is None:
            raise Http404
        legs = _leg_rows(call)
        flags = list(CdrFlag.objects.filter(call=call))
    return render(
        request,
        "calls/attention_call.html",
        {
            "role": role,
            "tenant": tenant,
            "call": call,
            "started": ms_to_dt(call.started_ms),
            "answered": ms_to_dt(call.answered_ms),
            "ended": ms_to_dt(call.ended_ms),
            "legs": legs,
            "flags": flags,
            "resolve_form": ResolveForm(),
            "segment_kinds": SEGMENT_KINDS,
        },
    )


def _flag(tenant: Client, flag_id: int) -> CdrFlag:
    with schema_context(tenant.schema_name):
        flag = CdrFlag.objects.select_related("call").filter(pk=flag_id).first()
    if flag is None:
        raise Http404
    return flag


@login_required
def attention_flag(request: HttpRequest, client_id: int, flag_id: int) -> HttpResponse:
    role = access_provider(request, ROLES)
    tenant = access_client(request, client_id, ROLES)
    flag = _flag(tenant, flag_id)
    with schema_context(tenant.schema_name):
        cdr = RawCdr.objects.filter(leg_uuid=flag.cdr_uuid).first()
    return render(
        request,
        "calls/attention_flag.html",
        {"role": role, "tenant": tenant, "flag": flag, "cdr": cdr, "resolve_form": ResolveForm()},
    )


@login_required
@require_POST
def attention_resolve_flag(request: HttpRequest, client_id: int, flag_id: int) -> HttpResponse:
    access_provider(request, ROLES)
    tenant = access_client(request, client_id, ROLES)
    flag = _flag(tenant, flag_id)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        with schema_context(tenant.schema_name):
            cdr = RawCdr.objects.filter(leg_uuid=flag.cdr_uuid).first()
        return render(
            request,
            "calls/attention_flag.html",
            {"tenant": tenant, "flag": flag, "cdr": cdr, "resolve_form": form},
            status=400,
        )
    try:
        actions.do_resolve_flag(
            tenant, flag.pk, note=form.cleaned_data["note"], actor=request.user, request=request
        )
    except actions.AttentionError as exc:
        return render(
            request,
            "calls/attention_error.html",
            {"message": str(exc), "tenant": tenant},
            status=409,
        )
    except CdrFlag.DoesNotExist:
        raise Http404 from None
    messages.success(request, _("Flag resolved."))
    return redirect("calls_attention_flag", client_id=tenant.pk, flag_id=flag.pk)


@login_required
@require_POST
def attention_reconcile(
    request: HttpRequest, client_id: int, call_id: str | None = None
) -> HttpResponse:
    access_provider(request, ROLES)
    tenant = access_client(request, client_id, ROLES)
    try:
        actions.do_request_reconcile(tenant, call_id=call_id, actor=request.user, request=request)
    except Call.DoesNotExist:
        raise Http404 from None
    except actions.AttentionError as exc:
        return render(
            request,
            "calls/attention_error.html",
            {"message": str(exc), "tenant": tenant},
            status=409,
        )
    if call_id is None:
        messages.success(
            request, _("Reconciliation of %(client)s queued.") % {"client": tenant.name}
        )
        return redirect(f"{_attention_url()}?tenant={tenant.pk}")
    messages.success(request, _("Reconciliation of this call queued."))
    return redirect("calls_attention_call", client_id=tenant.pk, call_id=call_id)


def _attention_url() -> str:
    from django.urls import reverse

    return reverse("calls_attention")
