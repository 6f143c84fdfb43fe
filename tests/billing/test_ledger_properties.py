"""Ledger invariants under random input (hypothesis), against the pure core as the oracle."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import actions, adapters
from billing.demo import demo_plan
from billing.models import LedgerEntry
from billing.rating import Segment, epoch_ms, rate_period

MARCH = date(2026, 3, 1)
# March in Kyiv: UTC+2 until DST on 29 March, UTC+3 after.
START = epoch_ms(datetime(2026, 2, 28, 22, 0, tzinfo=UTC))  # 1 March 00:00 in Kyiv
END = epoch_ms(datetime(2026, 3, 31, 21, 0, tzinfo=UTC))  # 1 April 00:00 in Kyiv

segment_args = st.tuples(
    st.sampled_from(["ivr", "queue", "agent", "handoff", "escalation", "callback_dial"]),
    st.sampled_from(["direct", "overflow", "callback"]),
    st.integers(START, END - 1),
    st.integers(0, 4 * 3600 * 1000),
    st.booleans(),
    st.sampled_from(["NORMAL_CLEARING", "USER_BUSY", "NO_ANSWER", "MEDIA_TIMEOUT"]),
)


class _Rollback(Exception):
    pass


@pytest.fixture
def alpha(cast):  # type: ignore[no-untyped-def]
    actions.do_assign_plan(cast.a, demo_plan("alpha-prop", "UAH", MARCH))
    return cast.a


def test_the_period_edges_follow_the_tenants_zone_and_dst(cast):  # type: ignore[no-untyped-def]
    period = adapters.period_for(cast.a, MARCH)
    assert (period.start_ms, period.end_ms) == (START, END)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    args=st.lists(segment_args, min_size=1, max_size=25),
    batch_size=st.integers(1, 7),
    rerun_every=st.integers(1, 4),
)
def test_recording_in_any_batches_any_number_of_times_equals_rating_once(  # type: ignore[no-untyped-def]
    alpha, args, batch_size, rerun_every
):
    segs = [
        Segment(
            "alpha",
            f"call-{i}",
            f"leg-{i}",
            kind,
            origin,
            start,
            start + length,
            answered=answered,
            hangup_cause=cause,
        )
        for i, (kind, origin, start, length, answered, cause) in enumerate(args)
    ]
    try:
        with transaction.atomic():
            actions.do_record_segments(alpha, segs[::rerun_every], batch_size=batch_size)
            result = actions.do_record_segments(alpha, segs, batch_size=batch_size)
            assert result.written + result.already_recorded == len(segs)
            assert LedgerEntry.objects.filter(tenant=alpha).count() == len(segs)

            # Oracle: the core rating the original segments in one pass.
            book, _rows = adapters.book_for_plan(alpha.billing.plan)
            expected = rate_period(segs, book, adapters.period_for(alpha, MARCH))
            got = actions.compute_invoice(alpha, MARCH)
            assert [(ln.code, ln.amount) for ln in got.lines] == [
                (ln.code, ln.amount) for ln in expected.lines
            ]
            assert (got.subtotal, got.tax, got.total) == (
                expected.subtotal,
                expected.tax,
                expected.total,
            )
            assert sum(ln.amount for ln in got.lines) == got.subtotal
            # Every usage line's seconds are exactly its ledger entries' seconds.
            for ln in got.lines:
                if ln.code.startswith("usage:") and ":tier" not in ln.code:
                    entries = LedgerEntry.objects.filter(
                        tenant=alpha, kind=ln.kind, origin__in=ln.origins
                    )
                    assert sum(e.billable_seconds for e in entries) == ln.billable_seconds
            raise _Rollback
    except _Rollback:
        pass


LEDGER_FIELDS = [
    "plan_version_id",
    "entry_type",
    "call_id",
    "leg_uuid",
    "kind",
    "origin",
    "start_ms",
    "end_ms",
    "answered",
    "hangup_cause",
    "agent",
    "queue",
    "disposition",
    "billable_seconds",
    "amount",
    "currency",
    "period_start",
    "late",
    "long_segment",
]
# Text that COPY's text format must escape, and some that it must not mangle.
awkward_text = st.lists(
    st.sampled_from(list("ab\t\\\n\r ,;\"'=+-@") + ["ї", "€", "\\N", "\x7f", "\\."]),
    max_size=8,
).map("".join)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    args=st.lists(
        st.tuples(segment_args, awkward_text, awkward_text, awkward_text), min_size=1, max_size=20
    ),
    batch_size=st.integers(1, 7),
    march_closed=st.booleans(),
    rerun_every=st.integers(1, 4),
)
def test_the_copy_writer_books_exactly_what_the_orm_writer_books(  # type: ignore[no-untyped-def]
    alpha, args, batch_size, march_closed, rerun_every
):
    from billing.models import Invoice

    segs = [
        Segment(
            "alpha",
            f"call-{i}-{call_text}",
            f"leg-{i}",
            kind,
            origin,
            start,
            start + length,
            answered=answered,
            hangup_cause=cause,
            agent=agent or None,
            queue=queue or None,
        )
        for i, ((kind, origin, start, length, answered, cause), call_text, agent, queue) in (
            enumerate(args)
        )
    ]
    booked = {}
    for writer in ("orm", "copy"):
        try:
            with transaction.atomic():
                if march_closed:
                    Invoice.objects.create(
                        tenant=alpha,
                        series="T",
                        year=2026,
                        number=1,
                        status="finalized",
                        period_start=MARCH,
                        period_end=date(2026, 4, 1),
                        currency="UAH",
                        language="uk",
                    )
                first = actions.do_record_segments(
                    alpha, segs[::rerun_every], batch_size=batch_size, writer=writer
                )
                again = actions.do_record_segments(
                    alpha, segs, batch_size=batch_size, writer=writer
                )
                rows = sorted(
                    LedgerEntry.objects.filter(tenant=alpha).values_list(*LEDGER_FIELDS),
                    key=lambda r: (r[3], r[4], r[6]),
                )
                booked[writer] = (rows, first, again)
                raise _Rollback
        except _Rollback:
            pass
    assert booked["copy"] == booked["orm"]
    rows, first, again = booked["copy"]
    assert len(rows) == len(segs) == first.written + again.written
    assert again.already_recorded == first.written
    assert {r[17] for r in rows} == {march_closed}  # late: booked into April when March closed
