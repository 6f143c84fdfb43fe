"""IVR containment and call figures per tenant (the client's portal home)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from tests.conftest import A_HOST, B_HOST, site

pytestmark = pytest.mark.django_db

NOW_MS = 1_795_000_000_000


def make(outcome: str, *, days_ago: float = 1.0) -> None:
    from calls.models import Call

    Call.objects.create(
        call_id=str(uuid.uuid4()),
        a_leg_uuid=uuid.uuid4(),
        origin="direct",
        started_ms=int(NOW_MS - days_ago * 86_400_000),
        outcome=outcome,
    )


def test_containment_is_calls_ended_in_the_ivr_over_all_calls(cast) -> None:  # type: ignore[no-untyped-def]
    from calls.stats import call_figures

    with schema_context("alpha"):
        for outcome in ["ivr"] * 3 + ["answered"] * 4 + ["abandoned", "escalated"]:
            make(outcome)
        make("ivr", days_ago=40)  # outside the window
        make("")  # in progress: no outcome yet, not counted
        figures = call_figures(30, now_ms=NOW_MS)
    assert figures.total == 9
    assert figures.contained == 3
    assert figures.containment == Decimal("33.3")
    assert figures.by_outcome["answered"] == 4
    with schema_context("beta"):
        empty = call_figures(30, now_ms=NOW_MS)
    assert empty.total == 0 and empty.containment is None


def test_portal_home_shows_the_tenants_own_containment(cast) -> None:  # type: ignore[no-untyped-def]
    import time

    from calls.models import Call

    now = int(time.time() * 1000)
    with schema_context("alpha"):
        for outcome in ("ivr", "answered", "answered", "answered"):
            Call.objects.create(
                call_id=str(uuid.uuid4()),
                a_leg_uuid=uuid.uuid4(),
                origin="direct",
                started_ms=now - 1000,
                outcome=outcome,
            )
    alpha = site(A_HOST, cast.a_viewer)
    alpha.cookies["ccp_language"] = "en"
    page = alpha.get("/").content.decode()
    assert "IVR containment" in page and "25.0 %" in page
    beta = site(B_HOST, cast.b_admin).get("/").content.decode()
    assert "25.0 %" not in beta
