from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from telephony.callflow.directory import Directory
from telephony.switchboard_db import config_version, load_directory


def test_load_directory_builds_a_valid_directory(calls, cast):  # type: ignore[no-untyped-def]
    directory = load_directory(datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert isinstance(directory, Directory)
    assert directory.route("+380441110001").tenant_id == "alpha"
    assert directory.route("+12125550001").origin == "overflow"
    alpha = directory.tenants["alpha"]
    assert alpha.active and alpha.entry_menu == "main"
    assert alpha.menus["main"].action_for("1") == "queue:alpha-sales"
    assert alpha.default_queue == "alpha-sales"
    assert alpha.language == "uk"
    assert alpha.hours.time_zone == "Europe/Kyiv"
    assert date(2026, 12, 25) in alpha.hours.holidays
    assert directory.routing["alpha"].utc_offset_s == 3 * 3600  # Kyiv in summer
    assert directory.routing["alpha"].second_line == "sofia/gateway/alpha/+380441112233"
    assert directory.tenants["beta"].entry_menu == "beta-main"
    assert directory.queues["alpha-vip"].skills == (("vip", 2),)
    seat = directory.agents["a1"]
    assert seat.endpoint == "user/1001"
    assert seat.profile.certs == {"alpha": {"vip": 1}, "beta": {}}
    assert directory.agents["a2"].profile.certs == {"alpha": {"vip": 2}}


def test_suspended_client_plays_its_message(calls, cast):  # type: ignore[no-untyped-def]
    from tenants import actions

    actions.do_set_client_status(cast.b, "suspended", actor=cast.provider_admin)
    plan = load_directory().tenants["beta"]
    assert plan.active is False
    assert plan.suspended_prompt.text


def test_inactive_rows_are_left_out(calls, cast):  # type: ignore[no-untyped-def]
    from telephony.models import Number

    Number.objects.filter(did="+12125550001").update(active=False)
    agent = calls["agents"][1]
    agent.active = False
    agent.save()
    directory = load_directory()
    assert "+12125550001" not in directory.numbers
    assert "a2" not in directory.agents


def test_one_broken_client_does_not_break_the_directory(calls, cast, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import IvrMenu, IvrOption
    from routing.models import Queue
    from telephony.models import Number

    with in_schema("beta"):
        menu = IvrMenu.objects.get(menu_id="beta-main")
        # Written past validation (as a stale row would be): another client's queue.
        IvrOption.objects.create(menu=menu, digit="1", action="queue:alpha-sales")
    Number.objects.filter(did="+12125550001").update(entry_menu="nope", queue="alpha-sales")
    Queue.objects.filter(queue_id="alpha-vip").update(
        overflow=[{"kind": "ewt", "threshold": 60, "target": "queue:beta-cards"}]
    )
    directory = load_directory()
    assert directory.tenants["beta"].menus == {}
    assert directory.tenants["alpha"].menus  # untouched
    route = directory.route("+12125550001")
    assert route.entry_menu == "" and route.queue == ""
    assert directory.queues["alpha-vip"].overflow == ()


def test_queries_are_few(calls, cast, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    # public: clients, policies, queues, numbers, certifications, agents (+ schema switches)
    with django_assert_max_num_queries(6 + 2 * 2 + 6):
        load_directory()


def test_config_version_changes_on_every_kind_of_edit(calls, cast, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import IvrOption
    from routing.models import Certification, Queue
    from telephony.models import CallPolicy, Number

    seen = {config_version()}

    def changed() -> None:
        version = config_version()
        assert version not in seen
        seen.add(version)

    q = Queue.objects.get(queue_id="alpha-sales")
    q.wrap_up_s = 5
    q.save()
    changed()
    policy = CallPolicy.objects.get(tenant=cast.a)
    policy.greeting = "Hi"
    policy.save()
    changed()
    Number.objects.get(did="+380441110001").delete()
    changed()
    Certification.objects.filter(tenant=cast.b).first().delete()
    changed()
    with in_schema("alpha"):
        IvrOption.objects.filter(digit="2").first().delete()
    changed()
    cast.b.time_zone = "Europe/London"
    cast.b.save()
    changed()
    assert config_version() == config_version()


# -- validation through the dataclasses -----------------------------------------------------
def test_number_clean_names_the_field(cast):  # type: ignore[no-untyped-def]
    from telephony.models import Number

    with pytest.raises(ValidationError) as err:
        Number(did="380441", tenant=cast.a).full_clean()
    assert "did" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        Number(did="+380441110002", tenant=cast.a, queue="nope").full_clean()
    assert "queue" in err.value.message_dict


def test_queue_clean_uses_the_engine_rules(cast):  # type: ignore[no-untyped-def]
    from routing.models import Queue

    with pytest.raises(ValidationError) as err:
        Queue(queue_id="q1", tenant=cast.a, name="Q", offer_timeout_s=0).full_clean()
    assert "offer_timeout_s" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        Queue(queue_id="q1", tenant=cast.a, name="Q", relaxation=[[60, 1], [30, 0]]).full_clean()
    assert "relaxation" in err.value.message_dict
    Queue.objects.create(queue_id="beta-q", tenant=cast.b, name="B")
    with pytest.raises(ValidationError) as err:
        Queue(
            queue_id="q1",
            tenant=cast.a,
            name="Q",
            overflow=[{"kind": "ewt", "threshold": 60, "target": "queue:beta-q"}],
        ).full_clean()
    assert "overflow" in err.value.message_dict


def test_menu_and_option_clean(cast, in_schema):  # type: ignore[no-untyped-def]
    from portal.models import IvrMenu, IvrOption

    with in_schema("alpha"):
        with pytest.raises(ValidationError) as err:
            IvrMenu(menu_id="m", prompt_text="Hi", timeout_s=120).full_clean()
        assert "timeout_s" in err.value.message_dict
        with pytest.raises(ValidationError) as err:
            IvrMenu(menu_id="m", prompt_text="Hi", prompt_file="/a.wav").full_clean()
        assert "prompt_text" in err.value.message_dict
        with pytest.raises(ValidationError) as err:
            IvrMenu(menu_id="m", prompt_text="Hi", on_timeout="dance").full_clean()
        assert "on_timeout" in err.value.message_dict
        menu = IvrMenu.objects.create(menu_id="m", prompt_text="Hi")
        with pytest.raises(ValidationError) as err:
            IvrOption(menu=menu, digit="x", action="answer").full_clean()
        assert "digit" in err.value.message_dict
        with pytest.raises(ValidationError) as err:
            IvrOption(menu=menu, digit="1", action="queue:").full_clean()
        assert "action" in err.value.message_dict


def test_policy_clean(cast, calls):  # type: ignore[no-untyped-def]
    from telephony.models import CallPolicy

    policy = CallPolicy.objects.get(tenant=cast.a)
    policy.weekly_hours = [[0, "18:00:00", "09:00:00"]]
    policy.closed_action = "sing"
    policy.recording = "sample"
    policy.recording_sample = 0
    with pytest.raises(ValidationError) as err:
        policy.full_clean()
    assert {"weekly_hours", "closed_action", "recording_sample"} <= set(err.value.message_dict)


def test_agent_needs_a_provider_agent_membership(cast):  # type: ignore[no-untyped-def]
    from routing.models import Agent

    with pytest.raises(ValidationError) as err:
        Agent(user=cast.a_admin, agent_id="x1", endpoint="user/1009").full_clean()
    assert "user" in err.value.message_dict
    Agent(user=cast.agent, agent_id="x1", endpoint="user/1009").full_clean()


def test_demo_calls_give_a_valid_directory_and_are_idempotent(cast):  # type: ignore[no-untyped-def]
    from routing.models import Agent, Certification
    from telephony.demo_calls import seed_demo_calls

    seed_demo_calls(["alpha", "beta"])
    counts = (Agent.objects.count(), Certification.objects.count())
    version = config_version()
    seed_demo_calls(["alpha", "beta"])
    assert (Agent.objects.count(), Certification.objects.count()) == counts
    assert config_version() == version  # nothing rewritten
    directory = load_directory()
    assert len([a for a in directory.agents if a.startswith("agent-10")]) == 10
    assert {s.endpoint for s in directory.agents.values()} >= {
        f"user/{1000 + n}" for n in range(1, 11)
    }
    for schema in ("alpha", "beta"):
        plan = directory.tenants[schema]
        menu = plan.menus[plan.entry_menu]
        assert menu.action_for("1").startswith("queue:")
        assert menu.action_for("2") == "answer"
        assert menu.action_for("0") == "escalate"
        assert any(r.tenant_id == schema for r in directory.numbers.values())
        certified = [s for s in directory.agents.values() if schema in s.profile.certs]
        assert certified


def test_a_skipped_queue_takes_the_menus_naming_it_along(calls, cast):  # type: ignore[no-untyped-def]
    from routing.models import Queue

    # A row broken past validation (the engine refuses offer_timeout_s = 0).
    Queue.objects.filter(queue_id="alpha-sales").update(offer_timeout_s=0)
    directory = load_directory()
    assert "alpha-sales" not in directory.queues
    plan = directory.tenants["alpha"]
    assert plan.menus == {} and plan.default_queue == ""
    assert directory.tenants["beta"].entry_menu == "beta-main"


def test_weekly_hours_text_round_trips():  # type: ignore[no-untyped-def]
    from telephony.config_checks import format_weekly, parse_weekly

    text = "Mon-Fri 09:00-13:00, 14:00-18:00\nSat 10:00-24:00"
    rows = parse_weekly(text, "weekly_hours")
    assert len(rows) == 11
    assert format_weekly(rows) == text
    assert parse_weekly(format_weekly(rows), "weekly_hours") == rows
    assert format_weekly(parse_weekly("Mon 09:00-18:00\nWed 09:00-18:00", "f")) == (
        "Mon 09:00-18:00\nWed 09:00-18:00"
    )


def test_an_agent_whose_account_or_role_goes_leaves_the_directory(calls, cast):  # type: ignore[no-untyped-def]
    from tenants import actions
    from tenants.models import Membership

    a1, a2 = calls["agents"]
    before = config_version()
    actions.do_set_user_active(a1.user, False, actor=cast.provider_admin)  # a bulk update
    after = config_version()
    assert after != before
    assert "a1" not in load_directory().agents
    Membership.objects.filter(user=a2.user).delete()
    assert config_version() != after
    assert "a2" not in load_directory().agents


def test_each_plan_links_to_its_clients_portal(calls, cast, settings):  # type: ignore[no-untyped-def]
    """The second line gets a link to the call's record on the client's own portal domain."""
    from tenants.actions import site_url

    directory = load_directory()
    for schema, client in (("alpha", cast.a), ("beta", cast.b)):
        plan = directory.tenants[schema]
        assert plan.portal_url == site_url(client)
        assert client.primary_domain.domain in plan.portal_url
        assert plan.call_link("c-1") == f"{plan.portal_url}/call-history/c-1/"
