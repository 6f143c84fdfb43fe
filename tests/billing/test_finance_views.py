"""The finance page of the provider console: finance and provider admins only."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from billing import actions, tasks
from billing.demo import demo_call, demo_plan
from billing.models import Invoice, PeriodExport
from billing.rating import epoch_ms
from tests.conftest import A_HOST, PROVIDER_HOST, site

MARCH = date(2026, 3, 1)
T0 = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def books(cast):  # type: ignore[no-untyped-def]
    actions.do_assign_plan(cast.a, demo_plan("alpha-std", "UAH", MARCH))
    actions.do_assign_plan(
        cast.b, demo_plan("beta-std", "USD", MARCH, monthly_platform_fee=D("250"))
    )
    segs = [s for i in range(2) for s in demo_call("alpha", i, T0 + i * 3_600_000)]
    actions.do_record_segments(cast.a, segs)


def test_only_finance_and_provider_admins_see_the_finance_page(cast, books):  # type: ignore[no-untyped-def]
    for user in (cast.finance, cast.provider_admin):
        assert site(PROVIDER_HOST, user).get("/billing/?period=2026-03").status_code == 200
    for user in (cast.supervisor, cast.agent, cast.a_admin, cast.a_viewer, cast.b_admin):
        browser = site(PROVIDER_HOST, user)
        assert browser.get("/billing/").status_code == 404, user
        assert browser.post("/billing/periods/2026-03/run/").status_code == 404, user
    assert not Invoice.objects.exists()
    # Not on client sites at all.
    assert site(A_HOST, cast.a_admin).get("/billing/").status_code == 404
    assert site(PROVIDER_HOST).get("/billing/").status_code == 302  # sign in first


def test_finance_runs_reviews_finalizes_and_downloads_a_period(
    cast, books, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    finance = site(PROVIDER_HOST, cast.finance)
    response = finance.post("/billing/periods/2026-03/run/")
    assert response.status_code == 302 and response["Location"] == "/billing/?period=2026-03"
    page = finance.get("/billing/?period=2026-03").content.decode()
    assert "Alpha Retail" in page and "Beta Bank" in page and "DRAFT-" in page

    alpha = Invoice.objects.get(tenant=cast.a)
    detail = finance.get(f"/billing/invoices/{alpha.pk}/").content.decode()
    agent_line = alpha.lines.get(code="usage:agent")
    assert f"/billing/invoices/{alpha.pk}/lines/{agent_line.pk}/" in detail
    drill = finance.get(f"/billing/invoices/{alpha.pk}/lines/{agent_line.pk}/").content.decode()
    assert "call-0" in drill and "call-1" in drill and "420 billable seconds" in drill

    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert finance.post("/billing/periods/2026-03/finalize/").status_code == 302
    assert len(queued) == 2  # one PDF job per invoice, after commit
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [1, 2]
    alpha.refresh_from_db()

    response = finance.get(f"/billing/invoices/{alpha.pk}/pdf/")
    assert response.status_code == 202  # not rendered yet: queued, not done in the request
    tasks.render_invoice_pdf_task(invoice_id=alpha.pk)
    response = finance.get(f"/billing/invoices/{alpha.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")

    csv_text = b"".join(finance.get("/billing/periods/2026-03/invoices.csv").streaming_content)
    assert b"INV-2026-00001" in csv_text and b"INV-2026-00002" in csv_text
    usage = b"".join(finance.get("/billing/periods/2026-03/usage.csv").streaming_content)
    assert usage.decode("utf-8-sig").count("\r\n") == 1 + 10

    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert finance.post("/billing/periods/2026-03/export/").status_code == 302
    assert len(queued) == 1
    export = PeriodExport.objects.get()
    assert finance.get(f"/billing/exports/{export.pk}/").status_code == 404  # not built yet
    tasks.build_period_export_task(export_id=export.pk)
    response = finance.get(f"/billing/exports/{export.pk}/")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".pdf")]) == 2


def test_status_actions_from_the_invoice_page(cast, books):  # type: ignore[no-untyped-def]
    finance = site(PROVIDER_HOST, cast.finance)
    invoice = actions.do_prepare_invoice(cast.a, MARCH)
    assert finance.post(f"/billing/invoices/{invoice.pk}/finalize/").status_code == 302
    response = finance.post(
        f"/billing/invoices/{invoice.pk}/status/",
        {"action": "credit", "reason": "outage", "amount": "1,50"},
    )
    note = Invoice.objects.get(kind="credit_note")
    assert response["Location"] == f"/billing/invoices/{note.pk}/"
    assert note.total_amount == D("-1.80")
    finance.post(f"/billing/invoices/{invoice.pk}/status/", {"action": "paid"})
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    # A refused action is a message, not a crash.
    response = finance.post(
        f"/billing/invoices/{invoice.pk}/status/", {"action": "void", "reason": "x"}, follow=True
    )
    assert "only a finalized, unpaid invoice can be voided" in response.content.decode()


def test_bad_periods_and_missing_invoices_are_404(cast, books):  # type: ignore[no-untyped-def]
    finance = site(PROVIDER_HOST, cast.finance)
    assert finance.get("/billing/?period=2026-13").status_code == 404
    assert finance.get("/billing/periods/nonsense/usage.csv").status_code == 404
    assert finance.get("/billing/invoices/999999/").status_code == 404
    draft = actions.do_prepare_invoice(cast.a, MARCH)
    assert finance.get(f"/billing/invoices/{draft.pk}/pdf/").status_code == 404  # drafts: no PDF
