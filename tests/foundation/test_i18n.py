from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from ccplatform.money import format_money
from tenants import audit
from tenants.models import AuditEvent
from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST, site


def test_client_site_speaks_the_company_language_by_default(cast):  # type: ignore[no-untyped-def]
    page = site(A_HOST).get("/login/")  # Alpha's default language is Ukrainian
    assert page["Content-Language"] == "uk"
    assert 'lang="uk"' in page.content.decode()
    assert "Увійти" in page.content.decode()
    assert site(B_HOST).get("/login/")["Content-Language"] == "en"


def test_the_visitor_choice_beats_the_company_default(cast):  # type: ignore[no-untyped-def]
    browser = site(A_HOST)
    response = browser.post("/i18n/setlang/", {"language": "ru", "next": "/login/"})
    assert response.status_code == 302
    page = browser.get("/login/")
    assert page["Content-Language"] == "ru"
    assert "Войти" in page.content.decode()


def test_browser_language_is_used_where_nothing_else_decides(cast):  # type: ignore[no-untyped-def]
    page = site(PROVIDER_HOST).get("/login/", HTTP_ACCEPT_LANGUAGE="uk-UA,uk;q=0.9")
    assert page["Content-Language"] == "uk"
    assert site(PROVIDER_HOST).get("/login/", HTTP_ACCEPT_LANGUAGE="de")["Content-Language"] == "en"


def test_a_user_preference_applies_after_sign_in(cast):  # type: ignore[no-untyped-def]
    cast.b_admin.language = "uk"
    cast.b_admin.save(update_fields=["language"])
    page = site(B_HOST, cast.b_admin).get("/contacts/")
    assert page["Content-Language"] == "uk"
    assert "Контакти" in page.content.decode()


def test_language_switcher_lists_all_three_languages(cast):  # type: ignore[no-untyped-def]
    body = site(PROVIDER_HOST).get("/login/").content.decode()
    for name in ("English", "Русский", "Українська"):
        assert name in body


@pytest.mark.parametrize(
    ("currency", "language", "expected"),
    [
        ("UAH", "uk", "1\xa0234,50\xa0₴"),
        ("UAH", "en", "UAH1,234.50"),
        ("EUR", "ru", "1\xa0234,50\xa0€"),
        ("USD", "en", "US$1,234.50"),
    ],
)
def test_money_is_formatted_per_currency_and_language(currency, language, expected):  # type: ignore[no-untyped-def]
    assert format_money(Decimal("1234.5"), currency, language) == expected


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        format_money(1234.5, "UAH", "uk")  # type: ignore[arg-type]


def test_money_tag_uses_the_site_tenant_currency(cast):  # type: ignore[no-untyped-def]
    template = Template("{% load money %}{% money amount %}")
    with translation.override("uk"):
        assert (
            template.render(Context({"amount": Decimal("0.12"), "site_tenant": cast.a}))
            == "0,12\xa0₴"
        )
    with translation.override("en"):
        assert (
            template.render(Context({"amount": Decimal("3.5"), "site_tenant": cast.b})) == "US$3.50"
        )


def test_dates_are_shown_in_the_company_time_zone(cast):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    from django.utils import timezone
    from django.utils.formats import date_format

    event = audit.record("tz.check", actor=cast.a_admin, tenant=cast.a)
    stored = AuditEvent.objects.get(pk=event.pk).created_at
    assert stored.utcoffset() == timedelta(0)  # stored in UTC

    def shown(zone: str) -> str:
        with translation.override("en"), timezone.override(ZoneInfo(zone)):
            return date_format(timezone.localtime(stored), "DATETIME_FORMAT")

    assert shown("Europe/Kyiv") != shown("UTC")
    browser = site(A_HOST, cast.a_admin)
    browser.cookies["ccp_language"] = "en"
    body = browser.get("/activity/").content.decode()
    assert shown("Europe/Kyiv") in body
    assert shown("UTC") not in body
