"""The wallboard page on the provider console: who may open it, and what it carries."""

from __future__ import annotations

import json

import pytest

from tests.conftest import A_HOST, PROVIDER_HOST, site


@pytest.mark.parametrize("who", ["provider_admin", "supervisor"])
def test_staff_open_the_wallboard_from_the_nav(cast, who) -> None:  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, getattr(cast, who))
    home = client.get("/").content.decode()
    assert 'href="/wallboard/"' in home
    page = client.get("/wallboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="wallboard"' in html and 'data-ws-path="/ws/live/"' in html
    labels = json.loads(
        html.split('id="wallboard-labels" type="application/json">')[1].split("<")[0]
    )
    assert labels["states"]["on_call"] == "On a call"


@pytest.mark.parametrize("who", ["agent", "finance"])
def test_other_provider_roles_get_404_and_no_link(cast, who) -> None:  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, getattr(cast, who))
    assert client.get("/wallboard/").status_code == 404
    assert 'href="/wallboard/"' not in client.get("/").content.decode()


def test_signed_out_goes_to_sign_in(cast) -> None:  # type: ignore[no-untyped-def]
    response = site(PROVIDER_HOST).get("/wallboard/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_not_on_client_sites(cast) -> None:  # type: ignore[no-untyped-def]
    assert site(A_HOST, cast.a_admin).get("/wallboard/").status_code == 404


def test_labels_follow_the_language(cast) -> None:  # type: ignore[no-untyped-def]
    client = site(PROVIDER_HOST, cast.supervisor)
    client.cookies["ccp_language"] = "uk"
    html = client.get("/wallboard/").content.decode()
    assert "Табло" in html
