from __future__ import annotations

import re

import pytest
from django.core import mail
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import actions
from tenants.models import Invitation, Membership, User
from tests.conftest import A_HOST, B_HOST, PASSWORD, PROVIDER_HOST, site


def login(host: str, email: str, password: str = PASSWORD, **extra):  # type: ignore[no-untyped-def]
    browser = site(host)
    response = browser.post("/login/", {"username": email, "password": password}, **extra)
    return browser, response


def test_provider_staff_sign_in_on_the_console_and_out_again(cast):  # type: ignore[no-untyped-def]
    browser, response = login(PROVIDER_HOST, "admin@provider.test")
    assert response.status_code == 302 and response["Location"] == "/"
    assert browser.get("/clients/").status_code == 200
    assert browser.post("/logout/").status_code == 302
    assert browser.get("/clients/").status_code == 302  # back to sign-in


def test_client_admin_signs_in_on_own_site_only(cast):  # type: ignore[no-untyped-def]
    _browser, ok = login(A_HOST, "admin@alpha.test")
    assert ok.status_code == 302
    for host in (B_HOST, PROVIDER_HOST):
        _browser, refused = login(host, "admin@alpha.test")
        assert refused.status_code == 200
        assert "Please enter a correct" in refused.content.decode()


def test_wrong_password_gives_a_clear_error_and_no_session(cast):  # type: ignore[no-untyped-def]
    browser, response = login(PROVIDER_HOST, "admin@provider.test", "wrong-password")
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()
    assert browser.get("/").status_code == 302


def test_login_is_throttled_after_repeated_failures(cast, settings):  # type: ignore[no-untyped-def]
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(PROVIDER_HOST, "supervisor@provider.test", "nope-nope-nope", REMOTE_ADDR="192.0.2.50")
    _browser, locked = login(PROVIDER_HOST, "supervisor@provider.test", REMOTE_ADDR="192.0.2.50")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # Another address is not locked out by someone else's guessing.
    _browser, other = login(PROVIDER_HOST, "supervisor@provider.test", REMOTE_ADDR="192.0.2.51")
    assert other.status_code == 302


def test_password_reset_mails_a_working_link_for_the_same_site(cast):  # type: ignore[no-untyped-def]
    browser = site(A_HOST)
    response = browser.post("/password-reset/", {"email": "viewer@alpha.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://(\S+?)(/password-reset/\S+/)", mail.outbox[0].body)
    assert link and link.group(1) == A_HOST
    step = browser.get(link.group(2), follow=True)
    assert step.status_code == 200
    new_password = "a-much-better-secret-42"
    done = browser.post(
        step.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302
    assert User.objects.get(email="viewer@alpha.test").check_password(new_password)
    # Unknown addresses get the same answer and no mail.
    assert (
        site(A_HOST).post("/password-reset/", {"email": "nobody@nowhere.test"}).status_code == 302
    )
    assert len(mail.outbox) == 1


def _code(device: TOTPDevice, ahead: int = 0) -> str:
    return (
        f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead):06d}"
    )


def test_provider_staff_can_turn_on_totp_and_then_need_a_code(cast):  # type: ignore[no-untyped-def]
    browser = site(PROVIDER_HOST, cast.finance)
    page = browser.get("/account/two-factor/")
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=cast.finance, confirmed=False)
    assert (
        browser.post(
            "/account/two-factor/", {"token": "000000" if _code(device) != "000000" else "111111"}
        ).status_code
        == 200
    )
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # wrong codes are throttled
    device.throttle_reset()  # as if the user waited
    used_code = _code(device)
    assert browser.post("/account/two-factor/", {"token": used_code}).status_code == 302
    assert TOTPDevice.objects.filter(user=cast.finance, confirmed=True).exists()

    fresh, response = login(PROVIDER_HOST, "finance@provider.test")
    assert response["Location"].startswith("/login/verify/")
    assert fresh.get("/clients/").status_code == 302, "password alone must not sign in"
    bad = fresh.post("/login/verify/", {"token": "12"})
    assert bad.status_code == 200 and "Enter the 6-digit code" in bad.content.decode()
    replay = fresh.post("/login/verify/", {"token": used_code})
    assert replay.status_code == 200, "a code already used must not work twice"
    device.refresh_from_db()
    device.throttle_reset()
    good = fresh.post("/login/verify/", {"token": _code(device, ahead=1)})
    assert good.status_code == 302
    assert fresh.get("/clients/").status_code == 200


def test_totp_is_not_offered_on_client_sites(cast):  # type: ignore[no-untyped-def]
    browser = site(A_HOST, cast.a_admin)
    assert browser.get("/account/two-factor/").status_code == 404
    assert b"Two-factor" not in browser.get("/account/").content


def test_invitation_creates_the_account_once(cast):  # type: ignore[no-untyped-def]
    mail.outbox.clear()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        _invitation, token = actions.do_invite(
            email="New.Person@Alpha.test", role="client_viewer", tenant=cast.a, actor=cast.a_admin
        )
    assert len(mail.outbox) == 1
    assert f"http://{A_HOST}:8000/accept/{token}/" in mail.outbox[0].body
    assert "Alpha Retail" in mail.outbox[0].body
    # Tokens are stored hashed only.
    assert not Invitation.objects.filter(token_hash=token).exists()

    wrong_site = site(B_HOST).get(f"/accept/{token}/")
    assert wrong_site.status_code == 404
    browser = site(A_HOST)
    browser.cookies["ccp_language"] = "en"  # Alpha's default is Ukrainian
    weak = browser.post(f"/accept/{token}/", {"full_name": "New Person", "password": "123"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    accepted = browser.post(
        f"/accept/{token}/", {"full_name": "New Person", "password": "long-enough-pass-77"}
    )
    assert accepted.status_code == 302
    user = User.objects.get(email="new.person@alpha.test")
    assert Membership.objects.get(user=user).role == "client_viewer"
    assert site(A_HOST).get(f"/accept/{token}/").status_code == 404  # used


def test_invitations_are_validated(cast):  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        actions.do_invite(email="not-an-email", role="client_admin", tenant=cast.a, actor=None)
    assert "email" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        actions.do_invite(email="x@alpha.test", role="provider_admin", tenant=cast.a, actor=None)
    assert "role" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        actions.do_invite(email="admin@alpha.test", role="client_viewer", tenant=cast.a, actor=None)
    assert "already has access" in exc.value.message_dict["email"][0]


def test_deactivated_users_cannot_sign_in(cast):  # type: ignore[no-untyped-def]
    admin = site(PROVIDER_HOST, cast.provider_admin)
    assert admin.post(f"/users/{cast.supervisor.pk}/active/", {"active": "0"}).status_code == 302
    _browser, response = login(PROVIDER_HOST, "supervisor@provider.test")
    assert response.status_code == 200
    # An admin cannot lock themselves out.
    admin.post(f"/users/{cast.provider_admin.pk}/active/", {"active": "0"})
    assert User.objects.get(pk=cast.provider_admin.pk).is_active
