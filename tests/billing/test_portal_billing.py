"""The client's own billing in its portal: issued invoices and usage, pages and JSON API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from billing import actions, tasks
from billing.demo import demo_call, demo_plan
from billing.models import Invoice, InvoicePdf, LedgerEntry
from billing.queries import previous_month
from billing.rating import epoch_ms
from tests.conftest import A_HOST, B_HOST, site

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
T_MARCH = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
T_APRIL = epoch_ms(datetime(2026, 4, 6, 10, 0, tzinfo=UTC))


@pytest.fixture
def books(cast):  # type: ignore[no-untyped-def]
    """A: March issued, April a draft; B: March issued."""
    actions.do_assign_plan(cast.a, demo_plan("alpha-std", "UAH", MARCH))
    actions.do_assign_plan(cast.b, demo_plan("beta-std", "USD", MARCH))
    actions.do_record_segments(
        cast.a, [s for i in range(3) for s in demo_call("alpha", i, T_MARCH + i * 3_600_000)]
    )
    actions.do_record_segments(cast.a, list(demo_call("alpha", 10, T_APRIL)))
    actions.do_record_segments(
        cast.b, [s for i in range(2) for s in demo_call("beta", 100 + i, T_MARCH + i * 60_000)]
    )
    a_march = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.a, MARCH))
    a_april = actions.do_prepare_invoice(cast.a, APRIL)
    b_march = actions.do_finalize_invoice(actions.do_prepare_invoice(cast.b, MARCH))
    return {"a_march": a_march, "a_april": a_april, "b_march": b_march}


def test_a_client_sees_its_own_issued_invoices_only(cast, books):  # type: ignore[no-untyped-def]
    a_march, a_april, b_march = books["a_march"], books["a_april"], books["b_march"]
    assert a_april.is_draft
    owner = site(A_HOST, cast.a_admin)

    page = owner.get("/billing/invoices/").content.decode()
    assert a_march.display_number in page
    assert "DRAFT-" not in page and b_march.display_number not in page
    assert "/billing/invoices/" in owner.get("/").content.decode()  # the nav link

    api = owner.get("/api/billing/invoices/").json()
    assert [row["id"] for row in api["results"]] == [a_march.pk]
    assert api["results"][0]["total"] == format(a_march.total_amount.quantize(D("0.01")), "f")
    assert api["count"] == 1 and api["pages"] == 1

    detail = owner.get(f"/api/billing/invoices/{a_march.pk}/").json()
    assert detail["number"] == a_march.display_number
    assert [line["code"] for line in detail["lines"]] == list(
        a_march.lines.values_list("code", flat=True)
    )
    html = owner.get(f"/billing/invoices/{a_march.pk}/").content.decode()
    assert a_march.display_number in html and "Beta" not in html

    # B's invoice and A's own draft: the same 404 as a missing id, by page, API and PDF.
    for invoice_id in (b_march.pk, a_april.pk, 999_999):
        for url in (
            f"/billing/invoices/{invoice_id}/",
            f"/billing/invoices/{invoice_id}/pdf/",
            f"/api/billing/invoices/{invoice_id}/",
        ):
            assert owner.get(url).status_code == 404, url

    # And B sees B's, never A's, on its own site.
    b_api = site(B_HOST, cast.b_admin).get("/api/billing/invoices/").json()
    assert [row["id"] for row in b_api["results"]] == [b_march.pk]
    assert site(B_HOST, cast.b_admin).get(f"/api/billing/invoices/{a_march.pk}/").status_code == 404
    # B's admin on A's site: the wall.
    assert site(A_HOST, cast.b_admin).get("/api/billing/invoices/").status_code == 404


def test_paid_invoices_and_credit_notes_are_listed_and_paginated(cast, books):  # type: ignore[no-untyped-def]
    a_march = books["a_march"]
    note = actions.do_issue_credit_note(a_march, reason="goodwill")
    assert actions.do_mark_paid(a_march, source="manual")
    owner = site(A_HOST, cast.a_admin)
    first = owner.get("/api/billing/invoices/?page_size=1").json()
    assert first["count"] == 2 and first["pages"] == 2
    assert first["next"] == 2 and first["previous"] is None
    second = owner.get("/api/billing/invoices/?page=2&page_size=1").json()
    assert second["next"] is None and second["previous"] == 1
    ids = {first["results"][0]["id"], second["results"][0]["id"]}
    assert ids == {a_march.pk, note.pk}
    statuses = {row["id"]: row["status"] for row in first["results"] + second["results"]}
    assert statuses[a_march.pk] == "paid"
    owner.cookies["ccp_language"] = "en"  # Alpha's default is Ukrainian
    page = owner.get("/billing/invoices/").content.decode()
    assert note.display_number in page and "issued" in page and "paid" in page


def test_the_pdf_is_queued_when_not_rendered_then_downloaded(
    cast, books, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    a_march = books["a_march"]
    InvoicePdf.objects.filter(invoice=a_march).delete()
    owner = site(A_HOST, cast.a_viewer)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = owner.get(f"/billing/invoices/{a_march.pk}/pdf/")
    assert response.status_code == 202 and len(queued) == 1
    tasks.render_invoice_pdf_task(invoice_id=a_march.pk)
    response = owner.get(f"/billing/invoices/{a_march.pk}/pdf/")
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert a_march.display_number in response["Content-Disposition"]


def test_viewers_see_billing_read_only(cast, books):  # type: ignore[no-untyped-def]
    viewer = site(A_HOST, cast.a_viewer)
    a_march = books["a_march"]
    for url in (
        "/billing/invoices/",
        f"/billing/invoices/{a_march.pk}/",
        "/billing/usage/?from=2026-03",
        "/api/billing/invoices/",
        f"/api/billing/invoices/{a_march.pk}/",
        "/api/billing/usage/?from=2026-03",
    ):
        assert viewer.get(url).status_code == 200, url
        assert viewer.post(url).status_code == 405, url
    assert "/billing/invoices/" in viewer.get("/").content.decode()
    a_march.refresh_from_db()
    assert a_march.status == Invoice.Status.FINALIZED


def test_usage_summary_and_calls_come_from_the_ledger(cast, books):  # type: ignore[no-untyped-def]
    owner = site(A_HOST, cast.a_admin)
    data = owner.get("/api/billing/usage/?from=2026-03&to=2026-03&page_size=5").json()
    assert data["from"] == "2026-03" and data["to"] == "2026-03" and data["currency"] == "UAH"
    entries = LedgerEntry.objects.filter(tenant=cast.a, period_start=MARCH)
    by_kind = {row["kind"]: row for row in data["summary"]}
    assert set(by_kind) == set(entries.values_list("kind", flat=True))
    agent = entries.filter(kind="agent")
    assert by_kind["agent"]["segments"] == agent.count() == 3
    assert by_kind["agent"]["calls"] == 3
    assert by_kind["agent"]["billable_seconds"] == sum(e.billable_seconds for e in agent)
    assert data["count"] == entries.count() == 15 and data["pages"] == 3
    assert len(data["results"]) == 5
    assert {row["call_id"] for row in data["results"]} <= {"call-0", "call-1", "call-2"}

    # No range: the previous calendar month in the company's time zone.
    default = owner.get("/api/billing/usage/").json()
    local_today = timezone.now().astimezone(ZoneInfo(cast.a.time_zone)).date()
    assert default["from"] == default["to"] == f"{previous_month(local_today):%Y-%m}"

    both = owner.get("/api/billing/usage/?from=2026-03&to=2026-04").json()
    assert both["count"] == 20
    april_only = owner.get("/api/billing/usage/?from=2026-04").json()
    assert {row["call_id"] for row in april_only["results"]} == {"call-10"}

    page = owner.get("/billing/usage/?from=2026-03&to=2026-03").content.decode()
    assert "agent" in page and "usage.csv?from=2026-03&amp;to=2026-03" in page

    csv_text = b"".join(
        owner.get("/billing/usage.csv?from=2026-03&to=2026-03").streaming_content
    ).decode("utf-8-sig")
    assert csv_text.count("\r\n") == 1 + 15
    assert "call-0" in csv_text and "beta" not in csv_text and "call-100" not in csv_text

    # B's usage is B's only.
    b_data = site(B_HOST, cast.b_admin).get("/api/billing/usage/?from=2026-03").json()
    assert b_data["count"] == 10
    assert {row["call_id"] for row in b_data["results"]} == {"call-100", "call-101"}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/api/billing/invoices/?page=abc", "page"),
        ("/api/billing/invoices/?page=0", "page"),
        ("/api/billing/invoices/?page=99", "out of range"),
        ("/api/billing/invoices/?page_size=1000", "page_size"),
        ("/api/billing/usage/?from=2026-13", "from"),
        ("/api/billing/usage/?from=march", "from"),
        ("/api/billing/usage/?from=2026-03&to=2026-1", "to"),
        ("/api/billing/usage/?from=2026-04&to=2026-03", "before"),
        ("/api/billing/usage/?from=2020-01&to=2026-03", "at most"),
        ("/api/billing/usage/?from=2026-03&page=-1", "page"),
        ("/billing/usage.csv?to=x", "to"),
    ],
)
def test_bad_query_parameters_answer_400_with_a_message(cast, books, url, fragment):  # type: ignore[no-untyped-def]
    response = site(A_HOST, cast.a_admin).get(url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert fragment in response.json()["error"]


def test_bad_query_parameters_on_pages_answer_400(cast, books):  # type: ignore[no-untyped-def]
    owner = site(A_HOST, cast.a_admin)
    for url in ("/billing/invoices/?page=x", "/billing/usage/?from=2026-00"):
        response = owner.get(url)
        assert response.status_code == 400, url
        assert "must" in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(cast, books):  # type: ignore[no-untyped-def]
    for url in ("/billing/invoices/", "/api/billing/invoices/", "/billing/usage.csv"):
        assert site(A_HOST).get(url).status_code == 302
