"""End to end in headless Chromium: a client's admin finds a call in the call history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from billing.rating import epoch_ms
from tests.browser.conftest import off_loop, shot
from tests.browser.test_console_and_portal import sign_in

pytestmark = pytest.mark.browser

T0 = epoch_ms(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))  # 10:00 in New York (beta's zone)


def _record_beta_calls(django_db_blocker) -> list[str]:  # type: ignore[no-untyped-def]
    from django.db import connection

    from calls.actions import do_record_call
    from telephony.callflow.meter import CallMeter
    from tenants.models import Client

    ids = [f"hist-{uuid.uuid4()}" for _ in range(3)]
    with django_db_blocker.unblock():
        beta = Client.objects.get(schema_name="beta")
        answered = CallMeter("beta", ids[0], str(uuid.uuid4()), "direct", "fs-1")
        answered.answered(T0)
        answered.enter_queue(T0 + 12_000, "beta-cards")
        answered.agent_bridged(T0 + 42_000, "agent-b", str(uuid.uuid4()))
        answered.hangup(T0 + 222_000, "NORMAL_CLEARING")
        do_record_call(beta, {"caller_number": "+15551230001", "started_ms": T0}, answered)
        gone = CallMeter("beta", ids[1], str(uuid.uuid4()), "direct", "fs-1")
        gone.answered(T0 + 600_000)
        gone.enter_queue(T0 + 608_000, "beta-cards")
        gone.leave_queue(T0 + 703_000, "abandon")
        gone.hangup(T0 + 703_000, "ORIGINATOR_CANCEL")
        do_record_call(beta, {"caller_number": "+15559870002", "started_ms": T0 + 600_000}, gone)
        ivr = CallMeter("beta", ids[2], str(uuid.uuid4()), "direct", "fs-1")
        ivr.answered(T0 + 900_000)
        ivr.hangup(T0 + 960_000, "NORMAL_CLEARING")
        do_record_call(beta, {"caller_number": "+15550000003", "started_ms": T0 + 900_000}, ivr)
        connection.close()
    return ids


def test_a_client_admin_filters_the_calls_and_opens_one(page, live_port, django_db_blocker):  # type: ignore[no-untyped-def]
    ids = off_loop(lambda: _record_beta_calls(django_db_blocker))
    try:
        base = f"http://beta.localhost:{live_port}"
        sign_in(page, base, "admin@beta.test")
        page.click("nav.mainnav a[href='/call-history/']")
        page.wait_for_url(f"{base}/call-history/")
        for call_id in ids:
            assert page.locator(f"#call-rows tr[data-call='{call_id}']").count() == 1
        assert "2026-03-04 10:00:00" in page.inner_text(
            f"#call-rows tr[data-call='{ids[0]}']"
        )  # New York

        page.select_option("#id_outcome", "abandoned")
        page.fill("#id_caller", "555 987")
        page.click("#call-filters button[type=submit]")
        page.wait_for_url("**/call-history/?*outcome=abandoned*")
        assert page.locator("#call-rows tbody tr").count() == 1
        row = page.locator(f"#call-rows tr[data-call='{ids[1]}']")
        assert "Abandoned" in row.inner_text() and "1:35" in row.inner_text()
        shot(page, "portal-call-history")

        row.locator("a").first.click()
        page.wait_for_url(f"{base}/call-history/{ids[1]}/")
        assert "Abandoned" in page.inner_text("#call-outcome")
        kinds = page.locator("#call-timeline tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.kind)"
        )
        assert kinds == ["ivr", "queue"]
        assert "Being checked" in page.inner_text("#call-check")
        assert "the caller hung up first" in page.inner_text("#call-facts")
        shot(page, "portal-call-detail")

        # Back to the list with the filters still applied.
        page.go_back()
        assert page.locator("#call-rows tbody tr").count() == 1
    finally:

        def cleanup() -> None:
            from django.db import connection

            from calls.models import Call

            with django_db_blocker.unblock(), schema_context("beta"):
                Call.objects.filter(call_id__in=ids).delete()
            connection.close()

        off_loop(cleanup)
