"""Console and portal screens of the call configuration: who may read, who may edit, what
bad input gets, what the audit log keeps, and the wall between client companies."""

from __future__ import annotations

from tenants.models import AuditEvent
from tests.conftest import A_HOST, B_HOST, PROVIDER_HOST, site


def _audited(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).first()
    assert event is not None, f"no audit event {action}"
    return event


# -- provider console -------------------------------------------------------------------------
def test_console_pages_open_for_admin_and_supervisor(calls, cast):  # type: ignore[no-untyped-def]
    agent = calls["agents"][0]
    cert = agent.certifications.first()
    qa = calls["queues"][0]
    from telephony.models import Number

    number = Number.objects.get(did="+380441110001")
    pages = [
        "/calls/numbers/",
        f"/calls/numbers/{number.pk}/",
        "/calls/policies/",
        f"/calls/policies/{cast.a.pk}/",
        f"/calls/policies/{cast.b.pk}/",
        "/calls/queues/",
        f"/calls/queues/{qa.pk}/",
        "/calls/agents/",
        f"/calls/agents/{agent.pk}/",
        f"/calls/certifications/{cert.pk}/",
    ]
    for user in (cast.provider_admin, cast.supervisor):
        browser = site(PROVIDER_HOST, user)
        for url in pages:
            response = browser.get(url)
            assert response.status_code == 200, (user, url, response.status_code)
    body = site(PROVIDER_HOST, cast.supervisor).get(f"/calls/queues/{qa.pk}/").content.decode()
    assert "disabled" in body
    assert site(PROVIDER_HOST, cast.provider_admin).get("/calls/numbers/new/").status_code == 200


def test_supervisor_cannot_change_anything(calls, cast):  # type: ignore[no-untyped-def]
    browser = site(PROVIDER_HOST, cast.supervisor)
    qa = calls["queues"][0]
    from telephony.models import Number

    number = Number.objects.get(did="+380441110001")
    for url in (
        "/calls/numbers/new/",
        f"/calls/numbers/{number.pk}/",
        f"/calls/numbers/{number.pk}/delete/",
        f"/calls/queues/{qa.pk}/",
        "/calls/queues/new/",
        "/calls/agents/new/",
        f"/calls/policies/{cast.a.pk}/",
    ):
        assert browser.post(url, {"name": "x"}).status_code == 404, url
    assert Number.objects.filter(pk=number.pk).exists()


def test_agent_and_finance_do_not_see_call_configuration(calls, cast):  # type: ignore[no-untyped-def]
    for user in (cast.agent, cast.finance):
        browser = site(PROVIDER_HOST, user)
        for url in ("/calls/numbers/", "/calls/queues/", "/calls/agents/", "/calls/policies/"):
            assert browser.get(url).status_code == 404, (user, url)


def test_admin_assigns_a_number_and_it_is_audited(calls, cast):  # type: ignore[no-untyped-def]
    from telephony.models import Number

    browser = site(PROVIDER_HOST, cast.provider_admin)
    response = browser.post(
        "/calls/numbers/new/",
        {"did": "+380441110777", "tenant": cast.a.pk, "origin": "direct", "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    number = Number.objects.get(did="+380441110777")
    assert number.tenant == cast.a
    event = _audited("number.created")
    assert event.tenant_id == cast.a.pk and event.actor_id == cast.provider_admin.pk
    response = browser.post(f"/calls/numbers/{number.pk}/delete/")
    assert response.status_code == 302
    assert not Number.objects.filter(pk=number.pk).exists()
    _audited("number.deleted")


def test_bad_numbers_get_400_with_the_field_named(calls, cast):  # type: ignore[no-untyped-def]
    browser = site(PROVIDER_HOST, cast.provider_admin)
    for data, field in (
        ({"did": "0441110777", "tenant": cast.a.pk, "origin": "direct"}, "did"),
        ({"did": "+380441110001", "tenant": cast.a.pk, "origin": "direct"}, "did"),  # taken
        ({"did": "+380441110778", "tenant": cast.a.pk, "origin": "sideways"}, "origin"),
        (
            {
                "did": "+380441110778",
                "tenant": cast.a.pk,
                "origin": "direct",
                "queue": "beta-cards",
            },
            "queue",
        ),
        (
            {"did": "+380441110778", "tenant": cast.a.pk, "origin": "direct", "entry_menu": "nope"},
            "entry_menu",
        ),
        ({"did": "+380441110778", "tenant": cast.public.pk, "origin": "direct"}, "tenant"),
    ):
        response = browser.post("/calls/numbers/new/", data, HTTP_HX_REQUEST="true")
        assert response.status_code == 400, (data, response.status_code)
        assert field in response.context["form"].errors, (data, response.context["form"].errors)
    assert not AuditEvent.objects.filter(action="number.created").exists()


def test_queue_edit_reuses_the_engine_rules(calls, cast):  # type: ignore[no-untyped-def]
    browser = site(PROVIDER_HOST, cast.provider_admin)
    base = {
        "queue_id": "alpha-new",
        "tenant": cast.a.pk,
        "name": "New",
        "strategy": "longest_idle",
        "skills": "billing=2, uk=1",
        "relaxation": "30=1, 60=0",
        "clearance": 0,
        "wrap_up_s": 10,
        "priority_head_start_s": 90,
        "sticky_window_s": 0,
        "ring_all_max": 5,
        "offer_timeout_s": 20,
        "no_answer_penalty_s": 30,
        "max_missed_offers": 3,
        "announce_interval_s": 60,
        "announce_granularity_s": 30,
        "callback_over_s": "",
        "overflow": '[{"kind": "ewt", "threshold": 300, "target": "queue:alpha-sales"}]',
        "estimator": "ql-mp",
    }
    for change, field in (
        ({"offer_timeout_s": 0}, "offer_timeout_s"),
        ({"relaxation": "60=0, 30=1"}, "relaxation"),
        ({"skills": "billing"}, "skills"),
        ({"overflow": "[{"}, "overflow"),
        (
            {"overflow": '[{"kind": "ewt", "threshold": 1, "target": "queue:beta-cards"}]'},
            "overflow",
        ),
        ({"overflow": '[{"kind": "sometimes", "threshold": 1, "target": "callback"}]'}, "overflow"),
        ({"strategy": "random"}, "strategy"),
        (
            {
                "overflow": '[{"kind": "time_of_day", "threshold": 1, "until": "x", "target": "callback"}]'
            },
            "overflow",
        ),
        ({"queue_id": "Alpha New"}, "queue_id"),
    ):
        response = browser.post("/calls/queues/new/", {**base, **change})
        assert response.status_code == 400, change
        assert field in response.context["form"].errors, (change, response.context["form"].errors)
    response = browser.post("/calls/queues/new/", base)
    assert response.status_code == 302, response.context["form"].errors
    from routing.models import Queue

    queue = Queue.objects.get(queue_id="alpha-new")
    config = queue.to_config()
    assert config.skills == (("billing", 2), ("uk", 1))
    assert config.relaxation == ((30.0, 1), (60.0, 0))
    assert _audited("queue.created").tenant_id == cast.a.pk
    # Its id and client are fixed once created.
    response = browser.post(
        f"/calls/queues/{queue.pk}/",
        {**base, "queue_id": "renamed", "tenant": cast.b.pk, "name": "Renamed"},
    )
    assert response.status_code == 302
    queue.refresh_from_db()
    assert (queue.queue_id, queue.tenant_id, queue.name) == ("alpha-new", cast.a.pk, "Renamed")


def test_agents_and_certifications(calls, cast):  # type: ignore[no-untyped-def]
    from routing.models import Agent, Certification

    browser = site(PROVIDER_HOST, cast.provider_admin)
    # A client admin is not a provider agent.
    response = browser.post(
        "/calls/agents/new/",
        {"user": cast.a_admin.pk, "agent_id": "maria", "endpoint": "user/1050", "clearance": 0},
    )
    assert response.status_code == 400
    response = browser.post(
        "/calls/agents/new/",
        {"user": cast.agent.pk, "agent_id": "maria", "endpoint": "user 1050", "clearance": 0},
    )
    assert response.status_code == 400 and "endpoint" in response.context["form"].errors
    response = browser.post(
        "/calls/agents/new/",
        {
            "user": cast.agent.pk,
            "agent_id": "maria",
            "endpoint": "user/1050",
            "clearance": 1,
            "active": "on",
        },
    )
    assert response.status_code == 302
    agent = Agent.objects.get(agent_id="maria")
    _audited("agent.created")
    url = f"/calls/agents/{agent.pk}/certifications/new/"
    response = browser.post(url, {"tenant": cast.a.pk, "skills": "vip=x"})
    assert response.status_code == 400 and "skills" in response.context["form"].errors
    response = browser.post(url, {"tenant": cast.a.pk, "skills": "vip=2, uk=1"})
    assert response.status_code == 302
    cert = Certification.objects.get(agent=agent, tenant=cast.a)
    assert cert.skills == {"vip": 2, "uk": 1}
    assert _audited("certification.created").tenant_id == cast.a.pk
    response = browser.post(url, {"tenant": cast.a.pk, "skills": "vip=1"})  # twice
    assert response.status_code == 400
    assert browser.post(f"/calls/certifications/{cert.pk}/delete/").status_code == 302
    _audited("certification.deleted")
    assert site(PROVIDER_HOST, cast.supervisor).post(url, {"tenant": cast.a.pk}).status_code == 404


def test_call_policy_edit(calls, cast):  # type: ignore[no-untyped-def]
    from telephony.models import CallPolicy

    browser = site(PROVIDER_HOST, cast.provider_admin)
    url = f"/calls/policies/{cast.b.pk}/"
    good = {
        "greeting": "Welcome to Beta",
        "default_queue": "beta-cards",
        "weekly_hours": "Mon-Fri 09:00-18:00\nSat 10:00-14:00",
        "holidays": "2026-12-25 2027-01-01",
        "closed_message": "Closed.",
        "closed_action": "voicemail",
        "suspended_message": "Suspended.",
        "recording": "sample",
        "recording_sample": "0.25",
        "recording_retention_days": 30,
        "recording_roles": ["client_admin", "supervisor"],
        "lookup_url": "https://beta.example/lookup",
        "lookup_secret": "s3cret",
        "lookup_timeout_s": 1.5,
        "second_line": "sofia/gateway/beta/+12125550199",
        "callback_digit": "1",
        "voicemail_digit": "9",
        "max_overflow_concurrent": 5,
        "max_overflow_minutes_per_day": 300,
        "overflow_refused_target": "client:busy",
        "escalation": '[{"target": "sofia/gateway/beta/+1212", "vip": true, "on_arrival": true}]',
    }
    for change, field in (
        ({"weekly_hours": "Fri-Mon 09:00-18:00"}, "weekly_hours"),
        ({"weekly_hours": "Mon 18:00-09:00"}, "weekly_hours"),
        ({"holidays": "25.12.2026"}, "holidays"),
        ({"closed_action": "sing"}, "closed_action"),
        ({"closed_action": "queue:alpha-sales"}, "closed_action"),
        ({"default_queue": "alpha-sales"}, "default_queue"),
        ({"recording_sample": "1.5"}, "recording_sample"),
        ({"escalation": '[{"vip": true}]'}, "escalation"),
        ({"voicemail_digit": "x"}, "voicemail_digit"),
        ({"escalation": '[{"target": "x", "vip": "yes"}]'}, "escalation"),
        ({"escalation": '[{"target": "x", "hours": ["a", "b"]}]'}, "escalation"),
        ({"lookup_secret": ""}, "lookup_secret"),
    ):
        response = browser.post(url, {**good, **change})
        assert response.status_code == 400, change
        assert field in response.context["form"].errors, (change, response.context["form"].errors)
    assert not CallPolicy.objects.filter(tenant=cast.b).exists()
    response = browser.post(url, good)
    assert response.status_code == 302, response.context["form"].errors
    policy = CallPolicy.objects.get(tenant=cast.b)
    assert policy.weekly_hours[0] == [0, "09:00:00", "18:00:00"] and len(policy.weekly_hours) == 6
    assert policy.recording_roles == ["client_admin", "supervisor"]
    event = _audited("call_policy.created")
    assert event.details["changes"]["lookup_secret"] == "***"
    # The secret is never shown back, and an empty field keeps it.
    assert "s3cret" not in browser.get(url).content.decode()
    response = browser.post(url, {**good, "lookup_secret": "", "greeting": "Hi"})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.lookup_secret == "s3cret" and policy.greeting == "Hi"
    from telephony.switchboard_db import load_directory

    plan = load_directory().tenants["beta"]
    assert plan.lookup.url == "https://beta.example/lookup" and plan.recording_sample == 0.25


# -- client portal ------------------------------------------------------------------------------
def test_portal_pages_for_admin_and_viewer(calls, cast):  # type: ignore[no-untyped-def]
    menu = calls["menu"]
    option = menu.options.first() if False else None  # noqa: F841 (schema-bound; read below)
    for user in (cast.a_admin, cast.a_viewer):
        browser = site(A_HOST, user)
        for url in ("/calls/", "/calls/hours/", f"/calls/menus/{menu.pk}/"):
            response = browser.get(url)
            assert response.status_code == 200, (user, url)
        assert "Hello" in browser.get("/calls/").content.decode()
    viewer = site(A_HOST, cast.a_viewer)
    for url in ("/calls/menus/new/", f"/calls/menus/{menu.pk}/options/new/"):
        assert viewer.get(url).status_code == 404
    for url in (
        "/calls/hours/",
        f"/calls/menus/{menu.pk}/",
        f"/calls/menus/{menu.pk}/delete/",
        "/calls/menus/new/",
    ):
        assert viewer.post(url, {"menu_id": "x", "prompt_text": "x"}).status_code == 404, url


def test_admin_edits_menus_and_options(calls, cast, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import IvrMenu, IvrOption

    browser = site(A_HOST, cast.a_admin)
    menu_data = {
        "menu_id": "billing",
        "prompt_text": "Billing: press 1",
        "prompt_file": "",
        "timeout_s": 5,
        "retries": 3,
        "invalid_prompt": "Sorry.",
        "on_timeout": "menu:main",
    }
    for change, field in (
        ({"timeout_s": 0}, "timeout_s"),
        ({"retries": 11}, "retries"),
        ({"prompt_file": "/x.wav"}, "prompt_text"),
        ({"on_timeout": "menu:nowhere"}, "on_timeout"),
        ({"on_timeout": "queue:beta-cards"}, "on_timeout"),
        ({"on_timeout": "fly"}, "on_timeout"),
        ({"menu_id": "main"}, "menu_id"),
    ):
        response = browser.post(
            "/calls/menus/new/", {**menu_data, **change}, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 400, change
        assert field in response.context["form"].errors, (change, response.context["form"].errors)
    response = browser.post("/calls/menus/new/", menu_data)
    assert response.status_code == 302, response.context["form"].errors
    with in_schema("alpha"):
        billing = IvrMenu.objects.get(menu_id="billing")
    assert _audited("ivr_menu.created").tenant_id == cast.a.pk
    url = f"/calls/menus/{billing.pk}/options/new/"
    for data, field in (
        ({"digit": "x", "action": "answer"}, "digit"),
        ({"digit": "1", "action": "queue:beta-cards"}, "action"),
        ({"digit": "1", "action": "say:"}, "action"),
    ):
        response = browser.post(url, data)
        assert response.status_code == 400 and field in response.context["form"].errors, data
    assert browser.post(url, {"digit": "1", "action": "queue:alpha-vip"}).status_code == 302
    assert browser.post(url, {"digit": "1", "action": "answer"}).status_code == 400  # digit taken
    _audited("ivr_option.created")
    # main -> billing; billing can't be deleted while main points at it.
    with in_schema("alpha"):
        main = IvrMenu.objects.get(menu_id="main")
    assert (
        browser.post(
            f"/calls/menus/{main.pk}/options/new/", {"digit": "5", "action": "menu:billing"}
        ).status_code
        == 302
    )
    assert browser.post(f"/calls/menus/{billing.pk}/delete/").status_code == 400
    with in_schema("alpha"):
        option = IvrOption.objects.get(menu=main, digit="5")
    assert browser.post(f"/calls/options/{option.pk}/delete/").status_code == 302
    _audited("ivr_option.deleted")
    # Making billing the entry menu unmarks main.
    response = browser.post(f"/calls/menus/{billing.pk}/", {**menu_data, "is_entry": "on"})
    assert response.status_code == 302
    from telephony.switchboard_db import load_directory

    plan = load_directory().tenants["alpha"]
    assert plan.entry_menu == "billing"
    assert plan.menus["billing"].action_for("1") == "queue:alpha-vip"
    assert browser.post(f"/calls/menus/{billing.pk}/delete/").status_code == 302
    _audited("ivr_menu.deleted")


def test_admin_edits_hours(calls, cast):  # type: ignore[no-untyped-def]
    from telephony.models import CallPolicy

    browser = site(A_HOST, cast.a_admin)
    response = browser.post(
        "/calls/hours/", {"weekly_hours": "Mon-Fri 25:00-18:00", "holidays": ""}
    )
    assert response.status_code == 400 and "weekly_hours" in response.context["form"].errors
    response = browser.post(
        "/calls/hours/", {"weekly_hours": "Mon-Sun 08:00-20:00", "holidays": "2026-01-07"}
    )
    assert response.status_code == 302
    policy = CallPolicy.objects.get(tenant=cast.a)
    assert len(policy.weekly_hours) == 7 and policy.holidays == ["2026-01-07"]
    assert _audited("call_policy.hours_updated").tenant_id == cast.a.pk
    # A company without a policy yet gets one.
    response = site(B_HOST, cast.b_admin).post(
        "/calls/hours/", {"weekly_hours": "", "holidays": "2026-12-25"}
    )
    assert response.status_code == 302
    assert CallPolicy.objects.get(tenant=cast.b).holidays == ["2026-12-25"]


def test_a_company_never_sees_or_edits_another_companys_menus(calls, cast, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import IvrMenu

    with in_schema("beta"):
        beta_menu = IvrMenu.objects.get(menu_id="beta-main")
    alpha_admin = site(A_HOST, cast.a_admin)
    # B's menu id asked on A's site is looked up in A's schema: either nothing or A's own.
    for url in (f"/calls/menus/{beta_menu.pk}/", "/calls/"):
        response = alpha_admin.get(url)
        assert b"Beta Secret Menu" not in response.content
    alpha_admin.post(f"/calls/menus/{beta_menu.pk}/delete/")
    with in_schema("beta"):
        assert IvrMenu.objects.filter(pk=beta_menu.pk, menu_id="beta-main").exists()
    # A's admin on B's site: 404 everywhere.
    intruder = site(B_HOST, cast.a_admin)
    for url in ("/calls/", "/calls/hours/", f"/calls/menus/{beta_menu.pk}/"):
        assert intruder.get(url).status_code == 404
        assert intruder.post(url, {"weekly_hours": ""}).status_code == 404
    # Client users never reach the console's call configuration.
    assert site(PROVIDER_HOST, cast.a_admin).get("/calls/numbers/").status_code == 404


def test_call_flow_pages_speak_the_company_language(calls, cast):  # type: ignore[no-untyped-def]
    body = site(A_HOST, cast.a_admin).get("/calls/").content.decode()  # Alpha: Ukrainian
    assert "Обробка дзвінків" in body
    browser = site(PROVIDER_HOST, cast.provider_admin)
    body = browser.get("/calls/agents/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Операторы" in body and "1 клиент" in body
