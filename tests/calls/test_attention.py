"""The provider's "calls that need attention" page: mismatches, CDR flags, calls overdue for
their CDRs, across tenants, for provider admins, supervisors and finance only."""

from __future__ import annotations

import uuid

import pytest
from django_tenants.utils import schema_context
from procrastinate.contrib.django.models import ProcrastinateJob

from calls import actions
from calls.models import Call, CdrFlag
from tenants.models import AuditEvent
from tests.conftest import A_HOST, PROVIDER_HOST, site

from .test_actions import INFO, post_cdr, post_worked_example_cdrs
from .test_meter import ESC, T0, A, worked_example

URL = "/attention/"


@pytest.fixture
def trouble(cast):  # type: ignore[no-untyped-def]
    """alpha: one mismatch (A leg 5 s longer on its CDR), one stray CDR flagged, one call
    overdue for its CDRs; beta: one stray CDR flagged."""
    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs(a_skew=(0, 5_000))
    stray = str(uuid.uuid4())
    post_cdr("alpha", stray, T0, T0 + 60_000)
    late = worked_example("call-late", a_leg=str(uuid.uuid4()), esc=str(uuid.uuid4()))
    actions.do_record_call(cast.a, INFO, late)
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.mismatch, report.waiting, report.cdr_flags) == (1, 1, 1)
    beta_stray = str(uuid.uuid4())
    post_cdr("beta", beta_stray, T0, T0 + 30_000)
    assert actions.do_reconcile(cast.b, grace_s=0).cdr_flags == 1
    with schema_context("alpha"):
        flag = CdrFlag.objects.get()
    with schema_context("beta"):
        beta_flag = CdrFlag.objects.get()
    return {"stray": stray, "flag": flag, "beta_flag": beta_flag}


def test_only_provider_admin_supervisor_and_finance_see_it(cast, trouble):  # type: ignore[no-untyped-def]
    for user in (cast.provider_admin, cast.supervisor, cast.finance):
        assert site(PROVIDER_HOST, user).get(URL).status_code == 200
    assert site(PROVIDER_HOST, cast.agent).get(URL).status_code == 404
    assert site(PROVIDER_HOST).get(URL).status_code == 302  # to the login page
    # A client's admin: not on the provider host, and no such page on their own domain.
    assert site(PROVIDER_HOST, cast.a_admin).get(URL).status_code == 404
    assert site(A_HOST, cast.a_admin).get(URL).status_code == 404
    detail = f"/attention/clients/{cast.a.pk}/calls/call-1/"
    assert site(PROVIDER_HOST, cast.agent).get(detail).status_code == 404
    # The console links to it for the roles that may use it.
    home = site(PROVIDER_HOST, cast.finance).get("/").content.decode()
    assert 'href="/attention/"' in home
    assert 'href="/attention/"' not in site(PROVIDER_HOST, cast.agent).get("/").content.decode()


def test_the_list_counts_each_kind_across_tenants_and_filters(cast, trouble):  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.finance)
    page = client.get(URL)
    rows = page.context["page"].object_list
    assert sorted((r.tenant.schema_name, r.kind, r.call_id) for r in rows) == [
        ("alpha", "cdr_flag", ""),
        ("alpha", "mismatch", "call-1"),
        ("alpha", "overdue", "call-late"),
        ("beta", "cdr_flag", ""),
    ]
    assert [(k, n) for k, _label, n in page.context["totals"]] == [
        ("mismatch", 1),
        ("cdr_flag", 2),
        ("overdue", 1),
    ]
    html = page.content.decode()
    assert "tolerance 1000 ms" in html  # the reconciliation message is shown
    assert "What the segment kinds mean" in html and "handoff" in html

    only_beta = client.get(URL, {"tenant": cast.b.pk}).context["page"].object_list
    assert [(r.tenant.schema_name, r.kind) for r in only_beta] == [("beta", "cdr_flag")]
    mismatches = client.get(URL, {"kind": "mismatch"}).context["page"].object_list
    assert [r.call_id for r in mismatches] == ["call-1"]
    # The calls started on 2026-03-02 (provider zone UTC): a range around it keeps them,
    # one after it drops them.
    inside = client.get(URL, {"since": "2026-03-02", "until": "2026-03-02"})
    assert len(inside.context["page"].object_list) == 4
    # The kind tiles keep the other filters.
    assert 'href="?since=2026-03-02&amp;until=2026-03-02&amp;kind=mismatch"' in (
        inside.content.decode()
    )
    after = client.get(URL, {"since": "2026-03-03"})
    assert after.context["page"].object_list == []
    assert "Nothing needs attention." in after.content.decode()


def test_bad_filters_get_a_400_with_a_message(cast, trouble):  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.supervisor)
    backwards = client.get(URL, {"since": "2026-03-05", "until": "2026-03-01"})
    assert backwards.status_code == 400
    assert "must not be after" in backwards.content.decode()
    assert client.get(URL, {"kind": "bogus"}).status_code == 400
    assert client.get(URL, {"since": "yesterday"}).status_code == 400
    assert client.get(URL, {"tenant": "999999"}).status_code == 400


def test_the_call_detail_shows_segments_beside_each_legs_cdr(cast, trouble):  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.supervisor)
    page = client.get(f"/attention/clients/{cast.a.pk}/calls/call-1/")
    assert page.status_code == 200
    legs = {str(item["leg"].uuid): item for item in page.context["legs"]}
    a = legs[A]
    assert [s["s"].kind for s in a["segments"]] == ["ivr", "queue", "agent", "handoff"]
    assert (a["metered_s"], a["cdr_s"], a["diff_s"]) == (420.0, 425.0, -5.0)
    assert legs[ESC]["diff_s"] == 0.0
    html = page.content.decode()
    assert "-5.000 s" in html and "Re-run reconciliation" in html
    # Another tenant's id, or a call of alpha under beta's id: 404.
    assert client.get(f"/attention/clients/{cast.b.pk}/calls/call-1/").status_code == 404
    assert client.get(f"/attention/clients/{cast.a.pk}/calls/nope/").status_code == 404


def test_rerunning_a_mismatch_reopens_it_queues_the_job_and_audits(  # type: ignore[no-untyped-def]
    cast, trouble, django_capture_on_commit_callbacks
):
    client = site(PROVIDER_HOST, cast.finance)
    url = f"/attention/clients/{cast.a.pk}/calls/call-1/reconcile/"
    assert client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302
    with schema_context("alpha"):
        assert Call.objects.get(call_id="call-1").reconcile_status == "waiting"
    job = ProcrastinateJob.objects.filter(task_name="calls.tasks.reconcile_tenant").latest("id")
    assert (job.args, job.queueing_lock) == ({"tenant_schema": "alpha"}, "reconcile-alpha")
    event = AuditEvent.objects.get(action="calls.reconcile_requested")
    assert (event.actor, event.tenant, event.details["previous_status"]) == (
        cast.finance,
        cast.a,
        "mismatch",
    )
    # The whole tenant, while one job is already queued: still fine (one job takes all).
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/attention/clients/{cast.a.pk}/reconcile/").status_code == 302
    assert ProcrastinateJob.objects.filter(queueing_lock="reconcile-alpha").count() == 1
    assert AuditEvent.objects.filter(action="calls.reconcile_requested").count() == 2
    # Nobody without the role can queue it.
    assert site(PROVIDER_HOST, cast.agent).post(url).status_code == 404


def test_a_rated_call_cannot_be_reopened(cast, trouble):  # type: ignore[no-untyped-def]
    with schema_context("alpha"):
        Call.objects.filter(call_id="call-1").update(reconcile_status="ok", rated=True)
    response = site(PROVIDER_HOST, cast.supervisor).post(
        f"/attention/clients/{cast.a.pk}/calls/call-1/reconcile/"
    )
    assert response.status_code == 409 and "already rated" in response.content.decode()
    assert not AuditEvent.objects.filter(action="calls.reconcile_requested").exists()


def test_resolving_a_flag_needs_a_note_is_audited_and_happens_once(cast, trouble):  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.finance)
    flag = trouble["flag"]
    page = client.get(f"/attention/clients/{cast.a.pk}/flags/{flag.pk}/")
    assert page.status_code == 200 and trouble["stray"] in page.content.decode()
    url = f"/attention/clients/{cast.a.pk}/flags/{flag.pk}/resolve/"
    empty = client.post(url, {"note": "   "})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    # beta's flag id under alpha, or alpha's under beta: 404, nothing written.
    wrong = f"/attention/clients/{cast.b.pk}/flags/{flag.pk + 1000}/resolve/"
    assert client.post(wrong, {"note": "x"}).status_code == 404
    assert client.post(url, {"note": "Test call from the carrier"}).status_code == 302
    with schema_context("alpha"):
        flag.refresh_from_db()
    assert (flag.resolved_by_email, flag.resolution_note) == (
        "finance@provider.test",
        "Test call from the carrier",
    )
    assert flag.resolved_at is not None
    event = AuditEvent.objects.get(action="calls.cdr_flag_resolved")
    assert (event.actor, event.tenant, event.details["cdr_uuid"], event.details["note"]) == (
        cast.finance,
        cast.a,
        trouble["stray"],
        "Test call from the carrier",
    )
    again = client.post(url, {"note": "again"})
    assert again.status_code == 409 and "already resolved" in again.content.decode()
    assert AuditEvent.objects.filter(action="calls.cdr_flag_resolved").count() == 1
    # Resolved flags leave the list unless asked for.
    rows = client.get(URL, {"kind": "cdr_flag"}).context["page"].object_list
    assert [r.tenant.schema_name for r in rows] == ["beta"]
    rows = client.get(URL, {"kind": "cdr_flag", "resolved": "on"}).context["page"].object_list
    assert sorted(r.tenant.schema_name for r in rows) == ["alpha", "beta"]
