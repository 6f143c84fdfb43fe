"""Event model tests: the three encodings agree, real content, validation."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fixtures_esl import (
    load_connections,
    transcript_names,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.esl.events import (
    Event,
    EventValidationError,
    _decode_plain_headers_slow,
    decode_plain_headers,
    event_from_frame,
    event_from_headers,
    is_event_frame,
    parse_json_event,
    parse_plain_event,
    parse_xml_event,
)
from telephony.esl.frames import COMMAND_REPLY, Frame, FrameParser

CORE_BEFORE = "1eb1c0ea-78ab-474f-aaf4-23f62d687c12"
CORE_AFTER = "ed5e41b2-be56-4be5-917b-f811a5893095"


def frames_of(name: str, label: str | None = None) -> list[Frame]:
    parser = FrameParser()
    out: list[Frame] = []
    for chunk in load_connections(name)[label].fs_chunks:
        out.extend(parser.feed(chunk))
    return out


def events_of(name: str, label: str | None = None) -> list[Event]:
    return [event_from_frame(f) for f in frames_of(name, label) if is_event_frame(f)]


def by_sequence(events: list[Event]) -> dict[tuple[str | None, int | None], Event]:
    return {(e.core_uuid, e.sequence): e for e in events}


def identity(e: Event) -> tuple:
    return (e.name, e.subclass, e.unique_id, e.core_uuid, e.job_uuid, e.timestamp, e.sequence)


def test_every_captured_event_is_valid() -> None:
    count = 0
    for name in transcript_names():
        for label in load_connections(name):
            for event in events_of(name, label):
                assert event.name and event.core_uuid in (CORE_BEFORE, CORE_AFTER)
                assert event.timestamp and event.timestamp > 1_700_000_000_000_000
                assert event.defects == ()
                # Lazily decoded plain events agree with an eager rebuild.
                assert identity(Event(event.headers, event.body)) == identity(event)
                count += 1
    assert count == 2186  # README: 2186 captured events


def test_02_same_event_in_plain_json_xml_is_equal() -> None:
    plain = by_sequence(events_of("02-loopback-call-plain.jsonl"))
    json_ = by_sequence(events_of("02-loopback-call-json.jsonl"))
    xml = by_sequence(events_of("02-loopback-call-xml.jsonl"))
    assert len(plain) == len(json_) == 97 and plain.keys() == json_.keys()
    assert len(xml) == 10 and xml.keys() <= plain.keys()
    for key, event in plain.items():
        assert event == json_[key], key
        assert identity(event) == identity(json_[key])
    for key, event in xml.items():
        assert event == plain[key], key
    names = {e.name for e in xml.values()}
    assert names == {"CHANNEL_CREATE", "CHANNEL_ANSWER", "DTMF", "CHANNEL_HANGUP_COMPLETE"}


@pytest.mark.parametrize(
    "base",
    [
        "03-loopback-bridge-transfer",
        "06-sip-call",
        "07-callcenter",
        "07b-callcenter-loopback-agents-fail",
    ],
)
def test_plain_and_json_listeners_agree(base: str) -> None:
    plain = by_sequence(events_of(f"{base}-plain.jsonl"))
    json_ = by_sequence(events_of(f"{base}-json.jsonl"))
    assert plain.keys() == json_.keys()
    assert all(plain[k] == json_[k] for k in plain)


def test_01_xml_and_plain_background_job_bodies() -> None:
    events = events_of("01-inbound-auth-api.jsonl", "C")
    jobs = [e for e in events if e.name == "BACKGROUND_JOB"]
    assert jobs and all(e.job_uuid for e in jobs)
    bodies = [e.body for e in jobs]
    # plain, json and xml BACKGROUND_JOB bodies: no framing header, no XML indentation
    assert "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n" in bodies
    assert "-ERR USER_NOT_REGISTERED\n" in bodies
    assert all("Content-Length" not in e.header_map for e in jobs)
    xml_version = [
        e for e in jobs if e.get("Job-Command") == "version" and e.get("Event-Calling-File")
    ]
    assert all(e.body == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n" for e in xml_version)
    originate = next(e for e in jobs if e.get("Job-Command") == "originate")
    assert originate.get("Job-Command-Arg") == "user/1000 &park()"


def test_bgapi_job_uuid_correlates_reply_and_event() -> None:
    frames = frames_of("01-inbound-auth-api.jsonl", "C")
    reply_uuids = [f.get("Job-UUID") for f in frames if f.content_type == COMMAND_REPLY]
    job_uuids = {event_from_frame(f).job_uuid for f in frames if is_event_frame(f)}
    delivered = [u for u in reply_uuids if u in job_uuids]
    assert len(delivered) >= 5


def test_sendevent_custom_event() -> None:
    events = events_of("01-inbound-auth-api.jsonl", "C")
    (ping,) = [e for e in events if e.subclass == "esltest::ping"]
    assert ping.name == "CUSTOM"
    assert ping.qualified_name == "CUSTOM esltest::ping"
    assert ping["X-Test-Header"] == "hello world"
    assert ping.body == "line one\nline two with spaces & symbols %20 = ok\n"
    # The client-sent Content-Length stays a header; the framing one does not.
    assert ping.get_all("Content-Length") == ["49"]
    assert ping.headers[0] == ("Event-Subclass", "esltest::ping")


def test_repeated_headers_and_first_wins() -> None:
    events = events_of("02-loopback-call-plain.jsonl")
    hangup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert len(hangup.get_all("Hangup-Cause")) == 2
    assert hangup["Hangup-Cause"] == hangup.get_all("Hangup-Cause")[0]
    command = next(e for e in events if e.name == "COMMAND")
    assert command.get_all("Event-Name") == ["COMMAND", "PRIVATE_COMMAND"]
    assert command.name == "COMMAND"
    assert command.sequence == 680  # the first Event-Sequence, not PRIVATE_COMMAND's 685


def test_url_decoding_and_variables() -> None:
    events = events_of("02-loopback-call-plain.jsonl")
    digits = [e["DTMF-Digit"] for e in events if e.name == "DTMF"]
    assert "#" in digits
    create = next(e for e in events if e.name == "CHANNEL_CREATE")
    assert create.unique_id and create.channel_state == "CS_INIT"
    assert create.variables["origination_caller_id_name"] == "Test Caller"
    assert create["FreeSWITCH-IPv6"] == "fd00::2"
    answer = next(e for e in events if e.name == "CHANNEL_ANSWER")
    assert answer.answer_state == "answered"


def test_array_headers_json_vs_plain() -> None:
    plain = by_sequence(events_of("03-loopback-bridge-transfer-plain.jsonl"))
    json_ = by_sequence(events_of("03-loopback-bridge-transfer-json.jsonl"))
    hist = [
        e for e in json_.values() if e.get("variable_transfer_history", "").startswith("ARRAY::")
    ]
    assert hist
    for e in hist:
        key = (e.core_uuid, e.sequence)
        assert plain[key].variables["transfer_history"] == e.variables["transfer_history"]
        assert "|:" in e.variables["transfer_history"]


def test_09_core_uuid_changes_across_restart() -> None:
    before = events_of("09-restart-watcher.jsonl", "watcher")
    after = events_of("09-restart-watcher.jsonl", "watcher-2")
    assert {e.core_uuid for e in before} == {CORE_BEFORE}
    assert [(e.name, e.core_uuid) for e in after] == [("HEARTBEAT", CORE_AFTER)]
    names = [e.name for e in before]
    assert "SHUTDOWN" in names and names[-1] == "MODULE_UNLOAD"
    assert names.count("MODULE_UNLOAD") == 204  # README: "about 200"
    causes = {e.get("Hangup-Cause") for e in before if e.name == "CHANNEL_HANGUP"}
    assert causes == {"SYSTEM_SHUTDOWN"}


def test_callcenter_custom_events_in_order() -> None:
    events = events_of("07-callcenter-plain.jsonl")
    actions = [e["CC-Action"] for e in events if e.qualified_name == "CUSTOM callcenter::info"]
    start = actions.index("member-queue-start")
    assert actions[start : start + 2] == ["member-queue-start", "members-count"]
    assert "bridge-agent-start" in actions and "member-queue-end" in actions


def test_delivery_order_is_not_sequence_order() -> None:
    events = events_of("02-loopback-call-plain.jsonl")
    seqs = [e.sequence for e in events]
    assert seqs != sorted(seqs)  # README fact 14: do not reorder


def test_outbound_connect_reply_as_event() -> None:
    connect = frames_of("04-outbound-socket-async-full.jsonl")[0]
    event = event_from_headers(connect)
    assert event.name == "CHANNEL_DATA"
    assert event.unique_id == event.variables["uuid"]
    assert event.variables["esltest_var"] == "hello world"
    assert event["Socket-Mode"] == "async"


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"Event-Name": "API", ',  # truncated JSON
        b"[1, 2]",  # not an object
        b'{"Core-UUID": "x"}',  # no Event-Name
        b'{"Event-Name": "API", "Event-Sequence": 12}',  # number instead of string
        b'{"Event-Name": "API", "nested": {"a": "b"}}',
        b'{"Event-Name": "API", "Event-Date-Timestamp": "soon"}',
        b"\xff\xfe",
    ],
)
def test_bad_json_events_raise_validation_error(body: bytes) -> None:
    with pytest.raises(EventValidationError):
        parse_json_event(body)


@pytest.mark.parametrize(
    "body",
    [
        b"Core-UUID: x\n\n",
        b"",
        b"\n\n",
        b"Event-Name: API\nEvent-Sequence: 1x\n\n",
        b"Event-Name:\n\n",
    ],
)
def test_bad_plain_events_raise_validation_error(body: bytes) -> None:
    with pytest.raises(EventValidationError):
        parse_plain_event(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<event><headers><Event-Name>API</Event-Name>",
        b"<other/>",
        b"<event></event>",
        b"<event><headers><Core-UUID>x</Core-UUID></headers></event>",
    ],
)
def test_bad_xml_events_raise_validation_error(body: bytes) -> None:
    with pytest.raises(EventValidationError):
        parse_xml_event(body)


def test_event_from_non_event_frame() -> None:
    with pytest.raises(EventValidationError):
        event_from_frame(Frame(COMMAND_REPLY, (), b""))


def test_plain_event_with_garbage_line_keeps_the_rest() -> None:
    event = parse_plain_event(b"Event-Name: API\nthis is garbage\nAPI-Command: status%20x\n\n")
    assert event.headers == (("Event-Name", "API"), ("API-Command", "status x"))
    assert len(event.defects) == 1


def test_plain_event_irregular_lines_match_eager_parse() -> None:
    event = parse_plain_event(b"Event-Name:API\nX: a: b\nUnique-ID: u\n\n")
    assert event.name == "API" and event.unique_id == "u"
    assert event["X"] == "a: b"


def test_plain_event_body_without_inner_content_length() -> None:
    event = parse_plain_event(b"Event-Name: API\n\nbody text")
    assert event.body == "body text"
    assert event.headers == (("Event-Name", "API"),)


def test_json_body_not_last_key() -> None:
    event = parse_json_event(b'{"Event-Name":"X","Content-Length":"2","_body":"hi","Z":"1"}')
    assert event.body == "hi"
    assert event.headers == (("Event-Name", "X"), ("Z", "1"))


# -- the fast plain decoder is exactly the reference decoder -----------------

_names = st.sampled_from(["Event-Name", "Unique-ID", "variable_x", "A", "Content-Length", ""])
_text = st.lists(
    st.sampled_from(
        list("ab :=%_\n\r\t\u00fc\u20ac") + ["%20", "%3A", "%0A", "%C3%BC", "%zz", "%4", "%c3"]
    ),
    max_size=8,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _text, st.booleans()), min_size=1, max_size=8))
def test_fast_plain_decoder_equals_reference(lines: list[tuple[str, str, bool]]) -> None:
    parts = []
    for name, value, encode in lines:
        shown = quote(value, safe="/(),.-_") if encode else value.replace("\n", " ")
        parts.append(f"{name}: {shown}")
    head = "\n".join(parts).encode("utf-8")
    assert decode_plain_headers(head) == _decode_plain_headers_slow(head)
    if b"\n\n" not in head and head.strip():
        try:
            event = parse_plain_event(head + b"\n\n")
        except EventValidationError:
            return
        eager = Event(event.headers, event.body)
        assert identity(eager) == identity(event)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_fast_plain_decoder_on_arbitrary_bytes(head: bytes) -> None:
    assert decode_plain_headers(head) == _decode_plain_headers_slow(head)
