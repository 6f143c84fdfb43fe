"""The wall between client companies, checked on every URL the sites serve.

The URL confs are walked, not hand-picked: a view added later is covered automatically.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST, site

# Served to anyone on any site by design (assets, language switch, sign-in pages, leaving).
OPEN_ROUTES = {
    "login",
    "login_verify",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "accept_invitation",
    "set_language",
    # Machine endpoint: Stripe posts here; authenticated by its signature, not a session.
    "billing_stripe_webhook",
}


def walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name


def concrete(route: str, ids: dict[str, int]) -> str:
    """Fill converters with real ids of tenant A's objects (or 1)."""

    def fill(match: re.Match[str]) -> str:
        return str(ids.get(match.group(2), 1))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", fill, route)


def routes(urlconf: str) -> list[tuple[str, str]]:
    found = [(route, name) for route, name in walk(get_resolver(urlconf).url_patterns)]
    assert len(found) > 10, "the URL conf walk found suspiciously few routes"
    return found


@pytest.fixture
def a_objects(cast, in_schema):  # type: ignore[no-untyped-def]
    from datetime import UTC, date, datetime

    from billing import actions as billing
    from billing import tasks
    from billing.demo import demo_call, demo_plan
    from billing.rating import epoch_ms
    from portal.models import Contact, ContactImport, IvrMenu, IvrOption
    from tenants import actions

    with in_schema("alpha"):
        contact = Contact.objects.create(name="Alpha Secret Customer", phone="+380501112233")
        imp = ContactImport.objects.create(filename="alpha.csv", content="name,phone\n")
        menu = IvrMenu.objects.create(menu_id="alpha-main", prompt_text="Alpha Secret menu")
        option = IvrOption.objects.create(menu=menu, digit="2", action="answer")
    invitation, _token = actions.do_invite(
        email="newbie@alpha.test", role="client_viewer", tenant=cast.a, actor=cast.a_admin
    )
    # One of A's issued invoices, with its PDF rendered (the client's billing pages).
    billing.do_assign_plan(cast.a, demo_plan("alpha-iso", "UAH", date(2026, 3, 1)))
    start = epoch_ms(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    billing.do_record_segments(cast.a, list(demo_call("alpha", 1, start)))
    invoice = billing.do_finalize_invoice(billing.do_prepare_invoice(cast.a, date(2026, 3, 1)))
    tasks.render_invoice_pdf_task(invoice_id=invoice.pk)
    # One of A's calls (the portal's call history).
    from calls.actions import do_record_call
    from telephony.callflow.meter import CallMeter

    call_id = "7d2f0c4e-5a1b-4c3d-9e8f-a1b2c3d4e5f6"
    meter = CallMeter("alpha", call_id, call_id, "direct", "fs-1")
    meter.answered(start)
    meter.enter_queue(start + 10_000, "alpha-general")
    meter.hangup(start + 40_000, "NORMAL_CLEARING")
    do_record_call(cast.a, {"caller_number": "+380501112233", "started_ms": start}, meter)
    return {
        "call_id": call_id,  # type: ignore[dict-item]
        "invoice_id": invoice.pk,
        "contact_id": contact.pk,
        "invitation_id": invitation.pk,
        "import_id": imp.pk,
        "menu_id": menu.pk,
        "option_id": option.pk,
        "client_id": cast.a.pk,
        "user_id": cast.a_admin.pk,
    }


def test_client_b_admin_gets_404_on_every_url_of_client_a(cast, a_objects):  # type: ignore[no-untyped-def]
    intruder = site(A_HOST, cast.b_admin)
    checked = 0
    for route, name in routes("ccplatform.urls_tenant"):
        if name in OPEN_ROUTES or route.startswith("i18n/"):
            continue
        url = concrete(route, a_objects)
        for method in ("get", "post"):
            response = getattr(intruder, method)(url)
            assert response.status_code == 404, (
                f"{method.upper()} {url} ({name}) gave {response.status_code}"
            )
            assert b"Alpha Secret" not in response.content
            checked += 1
    assert checked >= 20


def test_client_users_get_404_on_every_provider_console_url(cast, a_objects):  # type: ignore[no-untyped-def]
    for user in (cast.a_admin, cast.a_viewer, cast.b_admin):
        browser = site(PROVIDER_HOST, user)
        for route, name in routes("ccplatform.urls_public"):
            if name in OPEN_ROUTES or route.startswith("i18n/"):
                continue
            url = concrete(route, a_objects)
            for method in ("get", "post"):
                response = getattr(browser, method)(url)
                assert response.status_code == 404, (
                    f"{user} {method.upper()} {url} gave {response.status_code}"
                )


def test_members_reach_their_own_pages(cast, a_objects):  # type: ignore[no-untyped-def]
    """The 404s above come from the wall, not from broken pages: A's admin gets through."""
    owner = site(A_HOST, cast.a_admin)
    for route, name in routes("ccplatform.urls_tenant"):
        if (
            name in OPEN_ROUTES
            or route.startswith("i18n/")
            or name
            in {
                "contact_delete",
                "team_invite",
                "team_revoke",
                "ivr_menu_delete",
                "ivr_option_delete",
            }
        ):
            continue
        url = concrete(route, a_objects)
        response = owner.get(url)
        assert response.status_code == 200, f"GET {url} ({name}) gave {response.status_code}"


def test_agent_and_finance_see_only_their_parts_of_the_console(cast, a_objects):  # type: ignore[no-untyped-def]
    agent = site(PROVIDER_HOST, cast.agent)
    assert agent.get("/").status_code == 200
    for url in ("/clients/", f"/clients/{cast.a.pk}/", "/users/", "/audit/", "/clients/new/"):
        assert agent.get(url).status_code == 404, url
    finance = site(PROVIDER_HOST, cast.finance)
    assert finance.get("/clients/").status_code == 200
    assert finance.get(f"/clients/{cast.a.pk}/").status_code == 200
    for url in ("/users/", "/audit/", "/clients/new/"):
        assert finance.get(url).status_code == 404, url
    assert finance.post(f"/clients/{cast.a.pk}/status/", {"status": "suspended"}).status_code == 404
    cast.a.refresh_from_db()
    assert cast.a.status == "active"


def test_a_data_never_appears_in_b_pages(cast, a_objects, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import Contact

    with in_schema("beta"):
        Contact.objects.create(name="Beta Own Customer", phone="+12125550100")
    b_admin = site(B_HOST, cast.b_admin)
    for url in (
        "/",
        "/contacts/",
        "/contacts/?q=Alpha",
        "/team/",
        "/activity/",
        "/settings/",
        "/contacts/import/",
    ):
        response = b_admin.get(url)
        assert response.status_code == 200, url
        assert b"Alpha Secret" not in response.content, url
        assert b"newbie@alpha.test" not in response.content, url
        assert b"admin@alpha.test" not in response.content, url
    assert b"Beta Own Customer" in b_admin.get("/contacts/").content
    # A's contact id, asked for on B's site, is looked up in B's schema only.
    response = b_admin.get(f"/contacts/{a_objects['contact_id']}/")
    assert b"Alpha Secret" not in response.content


def test_anonymous_visitors_are_sent_to_sign_in(cast, a_objects):  # type: ignore[no-untyped-def]
    for host in (A_HOST, PROVIDER_HOST):
        response = site(host).get("/")
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
