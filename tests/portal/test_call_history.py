"""The client portal's call history (``/call-history/``): list, filters, CSV, one call in
detail; the walls between companies and the recording rules."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from billing.rating import epoch_ms
from calls import actions
from calls.models import Call
from recordings.models import RecordingAccess
from telephony.callflow.meter import CallMeter
from tests.conftest import A_HOST, B_HOST
from tests.conftest import site as _site

# 23:30 UTC on 2 March is 01:30 on 3 March in Kyiv (alpha's zone, UTC+2 then).
T0 = epoch_ms(datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
HOUR = 3_600_000
LIST = "/call-history/"
CSV_URL = "/call-history/export.csv"


def site(host: str, user=None):  # type: ignore[no-untyped-def]
    """A signed-in client reading the portal in English (alpha's default is Ukrainian)."""
    client = _site(host, user)
    client.cookies["ccp_language"] = "en"
    return client


def leg() -> str:
    return str(uuid.uuid4())


def answered_call(call_id: str, start: int, *, caller: str, queue="support", agent="agent-7"):  # type: ignore[no-untyped-def]
    """IVR 10 s, queue 30 s, agent 120 s; the caller hangs up."""
    m = CallMeter("alpha", call_id, leg(), "direct", "fs-1")
    m.answered(start)
    m.enter_queue(start + 10_000, queue)
    m.agent_bridged(start + 40_000, agent, leg())
    m.hangup(start + 160_000, "NORMAL_CLEARING")
    return m, {"caller_number": caller, "did": "+380441234567", "started_ms": start - 1_000}


def escalated_call(call_id: str, start: int):  # type: ignore[no-untyped-def]
    """segments.md's example: ivr, queue, agent, a warm transfer, handoff to the second line."""
    m = CallMeter("alpha", call_id, leg(), "direct", "fs-1")
    m.answered(start)
    m.enter_queue(start + 25_400, "support")
    m.agent_bridged(start + 100_000, "agent-7", leg())
    esc = leg()
    m.escalation_answered(start + 270_000, esc, "second-line")
    m.agent_left(start + 310_000)
    m.hangup(start + 420_000, "NORMAL_CLEARING")
    m.escalation_ended(start + 420_000, esc, "NORMAL_CLEARING")
    return m, {"caller_number": "+380509990000", "started_ms": start}


def abandoned_overflow(call_id: str, start: int):  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", call_id, leg(), "overflow", "fs-1")
    m.answered(start)
    m.enter_queue(start + 5_000, "sales")
    m.leave_queue(start + 65_000, "callback")
    m.hangup(start + 70_000, "NORMAL_CLEARING")
    return m, {"caller_number": "+380671234567", "started_ms": start}


def callback_of(call_id: str, parent: str, start: int):  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", call_id, leg(), "callback", "fs-1")
    m.callback_dial(leg())
    m.answered(start)
    m.enter_queue(start + 3_000, "sales")
    m.agent_bridged(start + 8_000, "agent-7", leg())
    m.hangup(start + 68_000, "NORMAL_CLEARING")
    return m, {"caller_number": "+380671234567", "started_ms": start, "parent_call_id": parent}


def failed_call(call_id: str, start: int):  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", call_id, leg(), "direct", "fs-1")
    m.hangup(start + 20_000, "NO_ANSWER")
    return m, {"caller_number": "+380931112233", "started_ms": start}


@pytest.fixture
def history(cast):  # type: ignore[no-untyped-def]
    """Alpha: six calls over three days (Kyiv), an agent with a name, two queues with names,
    a disposition with a note. Beta: one call of its own."""
    from dispositions.models import CallDisposition
    from routing.models import Agent, Queue

    Agent.objects.create(user=cast.agent, agent_id="agent-7", endpoint="user/1007")
    Queue.objects.create(queue_id="support", tenant=cast.a, name="Support line")
    Queue.objects.create(queue_id="sales", tenant=cast.a, name="Sales line")
    ids = {
        "answered": str(uuid.uuid4()),
        "escalated": str(uuid.uuid4()),
        "abandoned": str(uuid.uuid4()),
        "callback": f"cb-{uuid.uuid4()}",
        "failed": str(uuid.uuid4()),
        "old": str(uuid.uuid4()),
    }
    made = [
        answered_call(ids["answered"], T0, caller="+380501112233"),  # 3 March, Kyiv
        escalated_call(ids["escalated"], T0 - 2 * HOUR),  # 2 March 23:30 Kyiv
        abandoned_overflow(ids["abandoned"], T0 - 3 * HOUR),  # 2 March
        callback_of(ids["callback"], ids["abandoned"], T0 - HOUR),  # 3 March 00:30 Kyiv
        failed_call(ids["failed"], T0 - 4 * HOUR),
        answered_call(ids["old"], T0 - 48 * HOUR, caller="+380441000000", queue="sales"),
    ]
    for meter, info in made:
        actions.do_record_call(cast.a, info, meter)
    with schema_context("alpha"):
        CallDisposition.objects.create(
            call_id=ids["answered"], agent_id="agent-7", code="resolved", note="Card unblocked"
        )
    b = CallMeter("beta", "beta-call-1", leg(), "direct", "fs-1")
    b.answered(T0)
    b.hangup(T0 + 30_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.b, {"caller_number": "+15550001111", "started_ms": T0}, b)
    return ids


def listed(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.call.call_id for row in response.context["rows"]]


def csv_rows(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


# -- list --------------------------------------------------------------------------------------
def test_members_see_their_calls_newest_first_with_the_columns(cast, history):  # type: ignore[no-untyped-def]
    for user in (cast.a_admin, cast.a_viewer):
        response = site(A_HOST, user).get(LIST)
        assert response.status_code == 200
        assert listed(response) == [
            history["answered"],
            history["callback"],
            history["escalated"],
            history["abandoned"],
            history["failed"],
            history["old"],
        ]
    rows = {r.call.call_id: r for r in response.context["rows"]}
    answered = rows[history["answered"]]
    assert (answered.queue_name, answered.agent_name) == ("Support line", "Agent")
    assert (answered.wait, answered.talk, answered.disposition) == ("0:30", "2:00", "Resolved")
    escalated = rows[history["escalated"]]
    assert (escalated.wait, escalated.talk, escalated.handoff_ms) == ("1:15", "3:30", 110_000)
    assert rows[history["failed"]].talk == "" and rows[history["failed"]].call.outcome == "failed"
    html = response.content.decode()
    assert f'href="/call-history/{history["answered"]}/"' in html
    assert "Card unblocked" not in html  # notes are on the detail page only
    assert "beta-call-1" not in html and "+15550001111" not in html


def test_anonymous_users_sign_in_and_other_companies_get_404(cast, history):  # type: ignore[no-untyped-def]
    assert site(A_HOST).get(LIST).status_code == 302
    assert site(A_HOST, cast.b_admin).get(LIST).status_code == 404
    assert site(A_HOST, cast.b_admin).get(CSV_URL).status_code == 404
    assert site(A_HOST, cast.b_admin).get(f"{LIST}{history['answered']}/").status_code == 404
    # Provider staff do not browse a client's portal.
    assert site(A_HOST, cast.provider_admin).get(LIST).status_code == 404


def test_a_company_never_sees_another_companys_calls(cast, history):  # type: ignore[no-untyped-def]
    alpha = site(A_HOST, cast.a_admin)
    missing = alpha.get(f"{LIST}beta-call-1/")
    assert missing.status_code == 404
    assert "No call beta-call-1 in your company" in missing.content.decode()
    assert "beta-call-1" not in [r["call_id"] for r in csv_rows(alpha.get(CSV_URL))]
    assert "+15550001111" not in alpha.get(LIST, {"caller": "5550001111"}).content.decode()
    beta = site(B_HOST, cast.b_admin)
    assert listed(beta.get(LIST)) == ["beta-call-1"]
    assert beta.get(f"{LIST}{history['answered']}/").status_code == 404
    assert [r["call_id"] for r in csv_rows(beta.get(CSV_URL))] == ["beta-call-1"]
    # The export streams after the view returned: whatever schema the connection holds by
    # then (another request's), its rows are read in alpha's own.
    response = alpha.get(CSV_URL)
    with schema_context("beta"):
        exported = [r["call_id"] for r in csv_rows(response)]
    assert len(exported) == 6 and "beta-call-1" not in exported


def test_filters_narrow_the_list(cast, history):  # type: ignore[no-untyped-def]
    client = site(A_HOST, cast.a_admin)

    def ids(**params: str) -> set[str]:
        response = client.get(LIST, params)
        assert response.status_code == 200, response.content
        return set(listed(response))

    assert ids(outcome="escalated") == {history["escalated"]}
    assert ids(outcome="callback") == {history["abandoned"]}
    assert ids(outcome="failed") == {history["failed"]}
    assert ids(origin="overflow") == {history["abandoned"]}
    assert ids(origin="callback") == {history["callback"]}
    assert ids(queue="sales") == {history["abandoned"], history["callback"], history["old"]}
    assert ids(caller="+380 50 111") == {history["answered"]}
    assert ids(caller="0671234567") == {history["abandoned"], history["callback"]}
    # Days are the company's (Kyiv): 23:30 UTC on 2 March is already 3 March there.
    assert ids(since="2026-03-03", until="2026-03-03") == {history["answered"], history["callback"]}
    assert ids(until="2026-03-02") == {
        history["escalated"],
        history["abandoned"],
        history["failed"],
        history["old"],
    }
    assert ids(since="2026-03-02", outcome="answered") == {
        history["answered"],
        history["callback"],  # the callback reached an agent
    }
    assert ids(outcome="abandoned") == set()
    live = CallMeter("alpha", "c-live", leg(), "direct", "fs-1")
    live.answered(T0 + HOUR)
    live.enter_queue(T0 + HOUR + 4_000, "support")
    actions.do_record_call(cast.a, {"caller_number": "+380661110000"}, live)
    assert ids(outcome="live") == {"c-live"}
    assert "In progress" in client.get(LIST, {"outcome": "live"}).content.decode()
    detail = client.get(f"{LIST}c-live/").content.decode()
    assert "still going on" in detail
    assert "No calls match these filters." in client.get(LIST, {"outcome": "ivr"}).content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"outcome": "lost"}, "Outcome: Select a valid choice"),
        ({"origin": "space"}, "Origin: Select a valid choice"),
        ({"queue": "nope"}, "Queue: Select a valid choice"),
        ({"since": "yesterday"}, "From: Enter a valid date"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "&#x27;From&#x27; must not be after"),
        ({"caller": "robert'); drop"}, "Search by digits of the caller"),
        ({"caller": "1" * 41}, "Caller number: Ensure this value has at most 40"),
        ({"page": "two"}, "The page must be a whole number"),
        ({"page": "0"}, "The page must be 1 or more"),
        ({"page": "9"}, "Page 9 is past the last page (1)"),
    ],
)
def test_bad_filters_are_a_400_with_the_reason(cast, history, params, message):  # type: ignore[no-untyped-def]
    client = site(A_HOST, cast.a_viewer)
    response = client.get(LIST, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    if "page" not in params:
        csv_response = client.get(CSV_URL, params)
        assert csv_response.status_code == 400
        assert message in csv_response.content.decode()


def test_a_bad_filter_shows_the_form_again_with_what_was_typed(cast, history):  # type: ignore[no-untyped-def]
    response = site(A_HOST, cast.a_admin).get(LIST, {"caller": "+380 50", "since": "2026-02-30"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="call-filters"' in html and 'value="+380 50"' in html
    assert "From: Enter a valid date." in html
    assert response.context["rows"] == []


def test_the_list_is_read_only(cast, history):  # type: ignore[no-untyped-def]
    assert site(A_HOST, cast.a_admin).post(LIST).status_code == 405


def test_csv_exports_the_filtered_list_in_the_company_zone(cast, history, monkeypatch):  # type: ignore[no-untyped-def]
    from portal import call_views

    client = site(A_HOST, cast.a_viewer)
    response = client.get(CSV_URL, {"since": "2026-03-03"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [r["call_id"] for r in rows] == [history["answered"], history["callback"]]
    first = rows[0]
    assert first["started"] == "2026-03-03T01:29:59+02:00"  # started_ms is 1 s before answer
    assert (first["caller"], first["queue"], first["agent"]) == (
        "+380501112233",
        "Support line",
        "Agent",
    )
    assert (first["wait_seconds"], first["talk_seconds"]) == ("30.000", "120.000")
    assert (first["outcome"], first["disposition"], first["recording"]) == (
        "answered",
        "resolved",
        "no",
    )
    assert rows[1]["parent_call_id"] == history["abandoned"]
    # Bounded: a selection over the limit is refused with a message, not truncated.
    monkeypatch.setattr(call_views, "CSV_MAX_ROWS", 3)
    too_many = client.get(CSV_URL)
    assert too_many.status_code == 400
    assert "6 calls match; an export holds at most 3" in too_many.content.decode()
    assert client.get(CSV_URL, {"since": "2026-03-03"}).status_code == 200


def test_csv_cells_never_start_a_formula(cast):  # type: ignore[no-untyped-def]
    m = CallMeter("alpha", "c-formula", leg(), "direct", "fs-1")
    m.answered(T0)
    m.hangup(T0 + 5_000, "NORMAL_CLEARING")
    actions.do_record_call(cast.a, {"caller_number": "=HYPERLINK(1)", "started_ms": T0}, m)
    rows = csv_rows(site(A_HOST, cast.a_admin).get(CSV_URL))
    assert rows[0]["caller"] == "'=HYPERLINK(1)"


# -- detail ------------------------------------------------------------------------------------
def test_the_detail_page_tells_the_story_of_a_call(cast, history):  # type: ignore[no-untyped-def]
    response = site(A_HOST, cast.a_viewer).get(f"{LIST}{history['escalated']}/")
    assert response.status_code == 200
    timeline = response.context["timeline"]
    assert [(s["kind"], s["duration"], s["caller_leg"]) for s in timeline] == [
        ("ivr", "0:25", True),
        ("queue", "1:15", True),
        ("agent", "3:30", True),
        ("escalation", "2:30", False),
        ("handoff", "1:50", True),
    ]
    assert timeline[2]["agent"] == "Agent" and timeline[4]["target"] == "second-line"
    assert [s["end_reason"] for s in timeline] == [
        "went to a queue",
        "connected to an agent",
        "our agent left the caller with your second line",
        "normal hang-up",
        "the call ended",
    ]
    # Shown in Kyiv time: the call began at 21:30 UTC.
    assert timeline[0]["start"].astimezone(UTC).hour == 21
    html = response.content.decode()
    assert "23:30:00" in html and "21:30:00" not in html
    assert "With your second line" in html and "no agent of ours" in html
    assert "Handed to your second line" in html
    assert "Being checked" in html  # no CDRs yet: reconciliation is waiting
    assert "This call was not recorded." in html


def test_the_detail_page_shows_the_wrap_up_and_links_callbacks_both_ways(cast, history):  # type: ignore[no-untyped-def]
    client = site(A_HOST, cast.a_admin)
    answered = client.get(f"{LIST}{history['answered']}/").content.decode()
    assert "Resolved" in answered and "Card unblocked" in answered
    original = client.get(f"{LIST}{history['abandoned']}/").content.decode()
    assert f'href="/call-history/{history["callback"]}/"' in original
    assert "Callback requested" in original and "Overflow (sent by your own centre)" in original
    callback = client.get(f"{LIST}{history['callback']}/").content.decode()
    assert f'href="/call-history/{history["abandoned"]}/"' in callback
    assert "Calling back" in callback
    failed = client.get(f"{LIST}{history['failed']}/").content.decode()
    assert "Not connected" in failed and "no answer" in failed
    assert "never connected" in failed


def test_reconciliation_is_told_in_plain_words(cast, history):  # type: ignore[no-untyped-def]
    client = site(A_HOST, cast.a_admin)
    url = f"{LIST}{history['answered']}/"
    with schema_context("alpha"):
        Call.objects.filter(call_id=history["answered"]).update(reconcile_status="mismatch")
    assert "Under review" in client.get(url).content.decode()
    with schema_context("alpha"):
        Call.objects.filter(call_id=history["answered"]).update(reconcile_status="ok")
    html = client.get(url).content.decode()
    assert "Checked" in html and "match the phone network" in html


def test_an_unknown_call_is_a_404_with_a_message(cast, history):  # type: ignore[no-untyped-def]
    client = site(A_HOST, cast.a_admin)
    for call_id in (str(uuid.uuid4()), "not-a-call", "x" * 300):
        response = client.get(f"{LIST}{call_id}/")
        assert response.status_code == 404
        assert "in your company&#x27;s call history" in response.content.decode()


# -- recordings --------------------------------------------------------------------------------
@pytest.fixture
def recorded(cast, history, settings, tmp_path):  # type: ignore[no-untyped-def]
    """The answered call has a stored recording; alpha's policy lets client admins play."""
    from recordings.actions import do_import_recordings, do_register_recording
    from telephony.models import CallPolicy
    from tests.recordings.conftest import wav_bytes

    settings.RECORDINGS_ROOT = tmp_path / "store"
    CallPolicy.objects.create(
        tenant=cast.a,
        recording=CallPolicy.Recording.ALL,
        recording_retention_days=30,
        recording_roles=["client_admin"],
    )
    call_id = history["answered"]
    path = f"/var/lib/freeswitch/recordings/alpha/2026/03/02/{call_id}.wav"
    recording = do_register_recording(
        "alpha", {"tenant_id": "alpha", "call_id": call_id, "path": path, "started_ms": T0}
    )
    node = tmp_path / "node"
    target = node / f"alpha/2026/03/02/{call_id}.wav"
    target.parent.mkdir(parents=True)
    target.write_bytes(wav_bytes(1.0))
    assert do_import_recordings(cast.a, node, settle_s=0).stored == 1
    return recording


def test_the_recording_is_playable_only_by_the_roles_the_policy_names(cast, history, recorded):  # type: ignore[no-untyped-def]
    url = f"{LIST}{history['answered']}/"
    play = f"/recordings/?play={recorded.pk}"
    admin = site(A_HOST, cast.a_admin)
    html = admin.get(url).content.decode()
    assert f'src="{play}"' in html
    assert f'href="/recordings/?call={history["answered"]}"' in html
    viewer_html = site(A_HOST, cast.a_viewer).get(url).content.decode()
    assert "?play=" not in viewer_html
    assert "Your role (Client viewer) may not play" in viewer_html
    # The list says a recording exists, to everyone.
    rows = {r.call.call_id: r for r in site(A_HOST, cast.a_viewer).get(LIST).context["rows"]}
    assert rows[history["answered"]].recording and not rows[history["old"]].recording
    # The player's link goes through the recordings app: it streams and audits the playback.
    response = admin.get(play)
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    b"".join(response.streaming_content)
    with schema_context("alpha"):
        assert (
            RecordingAccess.objects.filter(recording=recorded, user_id=cast.a_admin.pk).count() == 1
        )
    assert site(A_HOST, cast.a_viewer).get(play).status_code == 403


# -- navigation --------------------------------------------------------------------------------
def test_the_portal_links_to_the_call_history(cast, history):  # type: ignore[no-untyped-def]
    home = site(A_HOST, cast.a_viewer).get("/")
    html = home.content.decode()
    assert 'href="/call-history/"' in html
    assert f'href="/call-history/?since={home.context["calls_since"]}&amp;outcome=answered"' in html
    # The latest five calls, each linking to its page; never another company's.
    latest = [row.call.call_id for row in home.context["latest_calls"]]
    assert latest == [
        history["answered"],
        history["callback"],
        history["escalated"],
        history["abandoned"],
        history["failed"],
    ]
    assert f'href="/call-history/{history["callback"]}/"' in html
    beta_home = site(B_HOST, cast.b_admin).get("/")
    assert [row.call.call_id for row in beta_home.context["latest_calls"]] == ["beta-call-1"]
