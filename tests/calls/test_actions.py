"""calls.actions: recording metered calls, reconciling them with stored CDRs, rating once,
and the walls between tenants."""

from __future__ import annotations

import io
import json
import uuid
from datetime import date

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from billing import actions as billing
from billing.demo import demo_plan
from billing.models import LedgerEntry
from calls import actions
from calls.models import Call, CdrFlag, Leg, Segment
from cdrs.models import RawCdr
from telephony.actions import do_store_cdr
from telephony.callflow.meter import CallMeter
from telephony.cdr_format import parse_cdr

from .test_meter import AGENT_LEG, ESC, T0, A, worked_example

MARCH = date(2026, 3, 1)
INFO = {"did": "+380441234567", "caller_number": "+380501112233", "started_ms": T0 - 2_000}


@pytest.fixture
def alpha_plan(cast):  # type: ignore[no-untyped-def]
    plan = demo_plan("calls-alpha", "UAH", MARCH)
    billing.do_assign_plan(cast.a, plan)
    return plan


def post_cdr(
    tenant: str,
    leg: str,
    answer_ms: int | None,
    end_ms: int,
    *,
    cause="NORMAL_CLEARING",
    start_ms=None,
):  # type: ignore[no-untyped-def]
    """A leg's CDR as mod_json_cdr posts it, through the real parser and intake (routed to the
    client named by ``ccp_tenant``)."""
    start_ms = start_ms if start_ms is not None else (answer_ms or end_ms) - 1_500
    billmsec = end_ms - answer_ms if answer_ms is not None else 0
    body = {
        "core-uuid": "9f7c3c2a-0000-4000-8000-00000000c0de",
        "switchname": "fs-1",
        "channel_data": {"state": "CS_REPORTING"},
        "variables": {
            "uuid": leg,
            "direction": "inbound",
            "ccp_tenant": tenant,
            "hangup_cause": cause,
            "start_stamp": "2026-03-02 10:00:00",
            "start_uepoch": str(start_ms * 1000),
            "answer_uepoch": str(answer_ms * 1000) if answer_ms is not None else "0",
            "end_uepoch": str(end_ms * 1000),
            "duration": str((end_ms - start_ms) // 1000),
            "billsec": str(billmsec // 1000),
            "billmsec": str(billmsec),
        },
    }
    outcome = do_store_cdr(parse_cdr(json.loads(json.dumps(body))), node=None)
    assert outcome.outcome == "stored", outcome


def post_worked_example_cdrs(tenant: str = "alpha", a_skew: tuple[int, int] = (0, 0)) -> None:
    post_cdr(tenant, A, T0 + a_skew[0], T0 + 420_000 + a_skew[1])
    post_cdr(tenant, ESC, T0 + 270_000, T0 + 420_000)
    post_cdr(tenant, AGENT_LEG, T0 + 96_000, T0 + 310_000)


def ledger(cast, call_id="call-1"):  # type: ignore[no-untyped-def]
    return {
        (e.kind, e.start_ms - T0, e.end_ms - e.start_ms, e.billable_seconds)
        for e in LedgerEntry.objects.filter(tenant=cast.a, call_id=call_id)
    }


def test_the_worked_example_is_recorded_reconciled_and_rated_once(cast, alpha_plan):  # type: ignore[no-untyped-def]
    call = actions.do_record_call(cast.a, INFO, worked_example())
    assert (call.outcome, call.reconcile_status, call.rated) == ("escalated", "waiting", False)
    post_worked_example_cdrs()
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.checked, report.ok, report.rated, report.segments_written) == (1, 1, 1, 5)
    assert report.cdr_flags == 0
    assert ledger(cast) == {
        ("ivr", 0, 25_400, 30),  # 6/6 increments
        ("queue", 25_400, 74_600, 78),
        ("agent", 100_000, 210_000, 210),
        ("handoff", 310_000, 110_000, 114),
        ("escalation", 270_000, 150_000, 150),
    }
    agent = LedgerEntry.objects.get(tenant=cast.a, call_id="call-1", kind="agent")
    assert (str(agent.amount), agent.agent, agent.queue) == ("6.300000", "agent-7", "support")
    with schema_context("alpha"):
        call = Call.objects.get(call_id="call-1")
        assert (call.reconcile_status, call.rated, call.did) == ("ok", True, "+380441234567")
        a_rows = Segment.objects.filter(call=call, leg_uuid=A)
        assert sum(r.billed_end_ms - r.billed_start_ms for r in a_rows) == 420_000
        assert RawCdr.objects.get(leg_uuid=A).billmsec == 420_000
        roles = dict(Leg.objects.filter(call=call).values_list("uuid", "role"))
        assert roles == {
            uuid.UUID(A): "a",
            uuid.UUID(AGENT_LEG): "agent",
            uuid.UUID(ESC): "escalation",
        }
    again = actions.do_reconcile(cast.a, grace_s=0)
    assert (again.checked, again.rated, again.segments_written) == (0, 0, 0)
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 5


def test_segments_without_cdrs_wait_and_then_rate(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_call(cast.a, INFO, worked_example())
    assert actions.do_reconcile(cast.a).waiting == 1
    post_cdr("alpha", A, T0, T0 + 420_000)
    report = actions.do_reconcile(cast.a)
    assert (report.waiting, report.rated) == (1, 0)
    with schema_context("alpha"):
        messages = Call.objects.get().reconcile_messages
    assert any(f"leg {ESC}: no CDR yet" in m for m in messages)
    post_cdr("alpha", ESC, T0 + 270_000, T0 + 420_000)
    assert actions.do_reconcile(cast.a).rated == 1
    assert not LedgerEntry.objects.filter(tenant=cast.b).exists()


def test_small_skews_snap_and_large_ones_are_not_billed(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs(a_skew=(-300, 450))
    assert actions.do_reconcile(cast.a, grace_s=0).rated == 1
    assert ("ivr", -300, 25_700, 30) in ledger(cast)
    assert ("handoff", 310_000, 110_450, 114) in ledger(cast)
    with schema_context("alpha"):
        ivr = Segment.objects.get(kind="ivr")
        assert (ivr.start_ms, ivr.billed_start_ms) == (T0, T0 - 300)  # as metered / as billed

    late = worked_example("call-2", a_leg=str(uuid.uuid4()), esc=str(uuid.uuid4()))
    actions.do_record_call(cast.a, INFO, late)
    legs = {leg["role"]: leg["uuid"] for leg in late.legs()}
    post_cdr("alpha", legs["a"], T0, T0 + 425_000)  # 5 s more than metered
    post_cdr("alpha", legs["escalation"], T0 + 270_000, T0 + 420_000)
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.mismatch, report.rated) == (1, 0)
    assert not LedgerEntry.objects.filter(call_id="call-2").exists()
    with schema_context("alpha"):
        call = Call.objects.get(call_id="call-2")
        assert call.reconcile_status == "mismatch" and not call.rated
        assert "tolerance 1000 ms" in call.reconcile_messages[0]
    # A mismatch is final until the call is recorded again (e.g. a corrected meter).
    assert actions.do_reconcile(cast.a, grace_s=0).checked == 0


def test_recording_again_after_a_restart_updates_and_never_duplicates(cast, alpha_plan):  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", "call-1", A, "direct", "fs-1")
    m.answered(T0)
    m.enter_queue(T0 + 25_400, "support")
    m.agent_bridged(T0 + 100_000, "agent-7", AGENT_LEG)
    actions.do_record_call(cast.a, INFO, m)
    with schema_context("alpha"):
        assert list(Segment.objects.values_list("kind", flat=True)) == ["ivr", "queue"]
        assert Call.objects.get().outcome == ""  # still live
    # The switchboard restarts, resumes the meter from the stored state, and goes on.
    with schema_context("alpha"):
        state = Call.objects.get().meter_state
    resumed = CallMeter.from_dict(state)
    resumed.escalation_answered(T0 + 270_000, ESC, "second-line")
    resumed.agent_left(T0 + 310_000)
    resumed.hangup(T0 + 420_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.a, INFO, resumed)
    assert actions.do_reconcile(cast.a).waiting == 1  # the escalation leg is still up
    resumed.escalation_ended(T0 + 420_000, ESC, "NORMAL_CLEARING")
    for _ in range(3):
        actions.do_record_call(cast.a, INFO, resumed)
    with schema_context("alpha"):
        assert Call.objects.count() == 1 and Leg.objects.count() == 3
        kinds = sorted(Segment.objects.values_list("kind", flat=True))
        assert kinds == ["agent", "escalation", "handoff", "ivr", "queue"]
        assert Call.objects.get().meter_complete
    post_worked_example_cdrs()
    assert actions.do_reconcile(cast.a, grace_s=0).segments_written == 5
    # Once rated, a stale or different meter cannot change what was billed.
    actions.do_record_call(cast.a, INFO, m)
    with schema_context("alpha"):
        assert Segment.objects.count() == 5 and Call.objects.get().rated


def test_recording_a_different_meter_replaces_the_segments_and_reopens_a_mismatch(cast, alpha_plan):  # type: ignore[no-untyped-def]
    def meter(queue_at: int) -> CallMeter:
        m = CallMeter("alpha", "call-1", A, "direct", "fs-1")
        m.answered(T0)
        m.enter_queue(T0 + queue_at, "support")
        m.hangup(T0 + 60_000, "NORMAL_CLEARING")
        return m

    def rows() -> list[tuple[str, int, int]]:
        with schema_context("alpha"):
            return [
                (r.kind, r.start_ms - T0, r.end_ms - T0)
                for r in Segment.objects.order_by("start_ms")
            ]

    actions.do_record_call(cast.a, INFO, meter(25_400))
    post_cdr("alpha", A, T0, T0 + 65_000)  # 5 s more than metered
    assert actions.do_reconcile(cast.a, grace_s=0).mismatch == 1
    actions.do_record_call(cast.a, INFO, meter(30_000))
    assert rows() == [("ivr", 0, 30_000), ("queue", 30_000, 60_000)]
    with schema_context("alpha"):
        call = Call.objects.get()
        assert (call.reconcile_status, call.reconcile_messages) == ("waiting", [])
    assert actions.do_reconcile(cast.a, grace_s=0).mismatch == 1  # still off by 5 s


def test_a_crash_between_the_ledger_and_the_mark_never_bills_twice(cast, alpha_plan, monkeypatch):  # type: ignore[no-untyped-def]
    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs()

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert LedgerEntry.objects.filter(call_id="call-1").count() == 5  # written, not marked
        raise RuntimeError("worker killed")

    real = actions._mark_rated
    monkeypatch.setattr(actions, "_mark_rated", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        actions.do_reconcile(cast.a, grace_s=0)
    assert not LedgerEntry.objects.filter(call_id="call-1").exists()  # rolled back together
    monkeypatch.setattr(actions, "_mark_rated", real)
    assert actions.do_reconcile(cast.a, grace_s=0).segments_written == 5
    assert actions.do_reconcile(cast.a, grace_s=0).segments_written == 0
    assert LedgerEntry.objects.filter(call_id="call-1").count() == 5


def test_segments_already_in_the_ledger_without_the_mark_are_not_written_again(cast, alpha_plan):  # type: ignore[no-untyped-def]
    """The worst case: the ledger committed and the mark was lost (e.g. a rating path that
    commits separately). The ledger's own key makes the rerun write nothing."""
    call = worked_example()
    actions.do_record_call(cast.a, INFO, call)
    post_worked_example_cdrs()
    billing.do_record_segments(cast.a, call.segments())
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.rated, report.segments_written, report.segments_already_in_ledger) == (1, 0, 5)
    assert LedgerEntry.objects.filter(call_id="call-1").count() == 5
    with schema_context("alpha"):
        assert Call.objects.get().rated


def test_a_rating_error_is_kept_on_the_call_and_retried(cast):  # type: ignore[no-untyped-def]
    meter = CallMeter("beta", "b-1", A, "direct", "fs-1")
    meter.answered(T0)
    meter.hangup(T0 + 30_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.b, {}, meter)
    post_cdr("beta", A, T0, T0 + 30_000)
    report = actions.do_reconcile(cast.b, grace_s=0)
    assert (report.ok, report.rated) == (1, 0) and "no rate plan" in report.rating_errors[0]
    with schema_context("beta"):
        call = Call.objects.get()
        assert (call.reconcile_status, call.rated) == ("ok", False)
        assert "no rate plan assigned" in call.rating_error
    billing.do_assign_plan(cast.b, demo_plan("calls-beta", "USD", MARCH))
    assert actions.do_reconcile(cast.b, grace_s=0).rated == 1
    assert LedgerEntry.objects.filter(tenant=cast.b, call_id="b-1").count() == 1


def test_a_call_billing_refuses_does_not_hold_up_the_others(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs()
    february = T0 - 30 * 86_400_000  # before the plan's first version: a plan gap
    leg = str(uuid.uuid4())
    meter = CallMeter("alpha", "call-feb", leg, "direct", "fs-1")
    meter.answered(february)
    meter.hangup(february + 60_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.a, {}, meter)
    post_cdr("alpha", leg, february, february + 60_000)
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.ok, report.rated, report.segments_written) == (2, 1, 5)
    assert len(report.rating_errors) == 1 and "call call-feb" in report.rating_errors[0]
    with schema_context("alpha"):
        feb = Call.objects.get(call_id="call-feb")
        assert (feb.rated, feb.reconcile_status) == (
            False,
            "ok",
        ) and "no version in force" in feb.rating_error
        assert Call.objects.get(call_id="call-1").rated
    assert not LedgerEntry.objects.filter(call_id="call-feb").exists()


def test_cdrs_no_call_accounts_for_are_flagged_after_the_grace(cast, alpha_plan):  # type: ignore[no-untyped-def]
    stray = str(uuid.uuid4())
    post_cdr("alpha", stray, T0, T0 + 60_000)
    post_cdr("alpha", str(uuid.uuid4()), None, T0 + 20_000, cause="NO_ANSWER")  # not answered
    assert actions.do_reconcile(cast.a, grace_s=300).cdr_flags == 0  # still within the grace
    assert actions.do_reconcile(cast.a, grace_s=0).cdr_flags == 1
    assert actions.do_reconcile(cast.a, grace_s=0).cdr_flags == 0
    with schema_context("alpha"):
        flag = CdrFlag.objects.get()
        assert (str(flag.cdr_uuid), flag.reason) == (stray, "cdr_without_segments")
    # An answered escalation leg the meter never saw is flagged on its call, which is still
    # billed for what did match.
    call = worked_example("call-2", a_leg=str(uuid.uuid4()), esc=str(uuid.uuid4()))
    unseen = str(uuid.uuid4())
    actions.do_record_call(cast.a, {"extra_legs": [{"uuid": unseen, "role": "escalation"}]}, call)
    legs = {leg["role"]: leg["uuid"] for leg in call.legs()}
    post_cdr("alpha", legs["a"], T0, T0 + 420_000)
    post_cdr("alpha", legs["escalation"], T0 + 270_000, T0 + 420_000)
    post_cdr("alpha", unseen, T0 + 200_000, T0 + 230_000)
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.flagged, report.rated, report.cdr_flags) == (1, 1, 1)
    with schema_context("alpha"):
        assert Call.objects.get(call_id="call-2").reconcile_status == "flagged"
        assert CdrFlag.objects.get(cdr_uuid=unseen).call.call_id == "call-2"


def test_tenant_walls_hold_for_calls_segments_and_cdrs(cast, alpha_plan):  # type: ignore[no-untyped-def]
    with pytest.raises(actions.CallRecordError, match="metered for tenant 'alpha', not 'beta'"):
        actions.do_record_call(cast.b, INFO, worked_example())
    actions.do_record_call(cast.a, INFO, worked_example())
    # The A leg's CDR arrives under beta (its ccp_tenant says so): it cannot serve alpha's call.
    post_cdr("beta", A, T0, T0 + 420_000)
    post_cdr("alpha", ESC, T0 + 270_000, T0 + 420_000)
    post_cdr("alpha", AGENT_LEG, T0 + 96_000, T0 + 310_000)
    a_report = actions.do_reconcile(cast.a, grace_s=0)
    b_report = actions.do_reconcile(cast.b, grace_s=0)
    assert (a_report.waiting, a_report.rated, a_report.cdr_flags) == (1, 0, 0)
    assert b_report.cdr_flags == 1 and b_report.checked == 0
    with schema_context("beta"):
        assert (Call.objects.count(), Leg.objects.count(), Segment.objects.count()) == (0, 0, 0)
        assert str(CdrFlag.objects.get().cdr_uuid) == A
        assert list(RawCdr.objects.values_list("leg_uuid", flat=True)) == [uuid.UUID(A)]
    with schema_context("alpha"):
        assert not CdrFlag.objects.exists()
        assert not RawCdr.objects.filter(leg_uuid=A).exists()
        assert Call.objects.get().reconcile_status == "waiting"
    assert not LedgerEntry.objects.exists()


def test_a_leg_billed_for_one_tenant_is_refused_for_another(cast, alpha_plan):  # type: ignore[no-untyped-def]
    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs()
    assert actions.do_reconcile(cast.a, grace_s=0).rated == 1
    billing.do_assign_plan(cast.b, demo_plan("calls-beta", "USD", MARCH))
    meter = CallMeter("beta", "b-1", A, "direct", "fs-1")  # the same A leg, under beta
    meter.answered(T0)
    meter.hangup(T0 + 420_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.b, {}, meter)
    post_cdr("beta", A, T0, T0 + 420_000)
    report = actions.do_reconcile(cast.b, grace_s=0)
    assert (
        report.rated == 0
        and "already in the ledger under another tenant" in (report.rating_errors[0])
    )
    assert not LedgerEntry.objects.filter(tenant=cast.b).exists()
    assert LedgerEntry.objects.filter(tenant=cast.a).count() == 5


def test_the_command_and_the_job(cast, alpha_plan):  # type: ignore[no-untyped-def]
    from procrastinate.contrib.django.models import ProcrastinateJob

    from calls.tasks import reconcile_tenant

    actions.do_record_call(cast.a, INFO, worked_example())
    post_worked_example_cdrs()
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile_calls", "--tenant", "alpha", "--grace", "0", stdout=out, stderr=err)
    assert "alpha: 1 calls checked: 1 ok" in out.getvalue() and "1 rated" in out.getvalue()
    out = io.StringIO()
    call_command("reconcile_calls", stdout=out, stderr=err)
    assert "alpha: 0 calls checked" in out.getvalue() and "beta: 0 calls checked" in out.getvalue()
    with pytest.raises(Exception, match="no client company with schema 'nope'"):
        call_command("reconcile_calls", "--tenant", "nope")
    reconcile_tenant.defer(tenant_schema="alpha", grace_s=60)
    job = ProcrastinateJob.objects.filter(task_name="calls.tasks.reconcile_tenant").latest("id")
    assert (job.args, job.queue_name) == ({"tenant_schema": "alpha", "grace_s": 60}, "calls")


def test_a_call_the_switchboard_lost_is_closed_from_its_cdrs_and_rated(cast, alpha_plan):  # type: ignore[no-untyped-def]
    from .test_reconcile import lost_after_agent_left

    actions.do_record_call(cast.a, INFO, lost_after_agent_left())
    post_worked_example_cdrs()
    report = actions.do_reconcile(cast.a)  # within the grace: the switchboard may still come
    assert (report.closed_from_cdr, report.checked) == (0, 0)
    report = actions.do_reconcile(cast.a, grace_s=0)
    assert (report.closed_from_cdr, report.ok, report.rated, report.segments_written) == (
        1,
        1,
        1,
        5,
    )
    assert ("handoff", 310_000, 110_000, 114) in ledger(cast)
    with schema_context("alpha"):
        call = Call.objects.get()
        assert call.outcome == "escalated" and call.started_ms == T0 - 2_000
        assert any("closed at" in m for m in call.reconcile_messages)
