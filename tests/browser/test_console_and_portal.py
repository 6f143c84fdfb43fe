"""End to end in headless Chromium: what a provider admin and a client admin do first."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from tests.browser.conftest import off_loop, shot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def test_provider_admin_finds_clients_and_switches_language(page, live_port):  # type: ignore[no-untyped-def]
    base = f"http://localhost:{live_port}"
    sign_in(page, base, "admin@provider.test")
    page.click("nav.mainnav >> text=Clients")
    page.wait_for_url(f"{base}/clients/")
    assert page.locator("#client-rows tr").count() >= 2
    # htmx: typing filters the table without a page load.
    page.fill("input[name=q]", "beta")
    page.wait_for_function("document.querySelectorAll('#client-rows tr').length === 1")
    assert "Beta Bank" in page.inner_text("#client-rows")
    # The switcher submits itself (no button) and the interface turns Ukrainian.
    page.select_option("#language-select", "uk")
    page.wait_for_selector("nav.mainnav >> text=Клієнти")
    assert page.evaluate("document.documentElement.lang") == "uk"
    shot(page, "console-clients-uk")


def test_client_admin_adds_a_contact_in_the_company_language(page, live_port, django_db_blocker):  # type: ignore[no-untyped-def]
    base = f"http://alpha.localhost:{live_port}"
    sign_in(page, base, "admin@alpha.test")
    assert page.evaluate("document.documentElement.lang") == "uk"  # Alpha's default
    page.click("nav.mainnav >> text=Контакти")
    page.click("text=Новий контакт")
    page.fill("input[name=name]", "Browser Bohdan")
    page.fill("input[name=phone]", "12")
    page.click("button[type=submit].primary")
    assert page.locator(".has-error .error").count() == 1  # bad number: clear error, nothing saved
    page.fill("input[name=phone]", "+380 67 123 40 00")
    page.click("button[type=submit].primary")
    page.wait_for_selector("h1:has-text('Browser Bohdan')")
    assert "+380671234000" in page.inner_text("dl.facts")
    shot(page, "portal-contact-uk")

    def cleanup() -> None:
        from django.db import connection

        from portal.models import Contact

        with django_db_blocker.unblock(), schema_context("alpha"):
            Contact.objects.filter(phone="+380671234000").delete()
        connection.close()

    off_loop(cleanup)
