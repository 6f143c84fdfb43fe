"""Frame parser tests: every captured stream, any chunking, malformed input."""

from __future__ import annotations

import pytest
from fixtures_esl import (
    FIXTURE_DIR,
    api_index,
    load_connections,
    transcript_names,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.esl.frames import (
    API_RESPONSE,
    AUTH_REQUEST,
    COMMAND_REPLY,
    DISCONNECT_NOTICE,
    EVENT_PLAIN,
    LOG_DATA,
    BadContentLength,
    BodyTooLarge,
    Frame,
    FrameParser,
    HeaderTooLarge,
    MalformedHeaderLine,
    ParserBroken,
    TruncatedFrame,
)

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

STREAMS = [
    (name, label)
    for name in transcript_names()
    for label in load_connections(name)
    if load_connections(name)[label].fs_chunks
]


def parse_chunks(chunks: list[bytes], parser: FrameParser | None = None) -> list[Frame]:
    """Feed ``chunks`` one by one, then declare EOF; return all frames."""
    parser = parser or FrameParser()
    frames: list[Frame] = []
    for chunk in chunks:
        frames.extend(parser.feed(chunk))
    parser.eof()
    return frames


def reference_split(stream: bytes) -> list[tuple[bytes, bytes]]:
    """Naive whole-buffer splitter (README recipe) used as an oracle."""
    out = []
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\n\n", pos)
        length = 0
        for line in stream[pos:end].split(b"\n"):
            if line.startswith(b"Content-Length: "):
                length = int(line[16:])
                break
        out.append((stream[pos:end], stream[end + 2 : end + 2 + length]))
        pos = end + 2 + length
    return out


def test_fixture_directory_present() -> None:
    assert len(transcript_names()) == 21, FIXTURE_DIR


@pytest.mark.parametrize(("name", "label"), STREAMS, ids=[f"{n}:{c}" for n, c in STREAMS])
def test_every_stream_parses_as_captured(name: str, label: str | None) -> None:
    conn = load_connections(name)[label]
    parser = FrameParser()
    frames = parse_chunks(conn.fs_chunks, parser)
    assert parser.take_errors() == []
    assert all(frame.known for frame in frames)
    ref = reference_split(conn.fs_stream)
    assert [f.body for f in frames] == [body for _, body in ref]
    assert len(frames) == len(ref)


@pytest.mark.parametrize(("name", "label"), STREAMS, ids=[f"{n}:{c}" for n, c in STREAMS])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_chunking_gives_the_same_frames(
    name: str, label: str | None, data: st.DataObject
) -> None:
    stream = load_connections(name)[label].fs_stream
    expected = parse_chunks([stream])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=120), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert parse_chunks(chunks) == expected


def test_byte_by_byte() -> None:
    stream = load_connections("01-inbound-auth-api.jsonl")["C"].fs_stream
    assert parse_chunks([stream[i : i + 1] for i in range(len(stream))]) == parse_chunks([stream])


def test_09_chunk_starting_mid_event() -> None:
    conn = load_connections("09-restart-watcher.jsonl")["watcher"]
    # The capture really has chunks that start inside an event.
    assert any(not c.startswith((b"Content-", b"Event-Name")) for c in conn.fs_chunks)
    frames = parse_chunks(conn.fs_chunks)
    assert frames[-1].content_type == DISCONNECT_NOTICE
    assert frames[-1].body == b"The system is being shut down.\n"
    assert sum(f.content_type == EVENT_PLAIN for f in frames) == 254


def test_01_wrong_password_sequence() -> None:
    frames = parse_chunks(load_connections("01-inbound-auth-api.jsonl")["A"].fs_chunks)
    assert [f.content_type for f in frames] == [AUTH_REQUEST, COMMAND_REPLY, DISCONNECT_NOTICE]
    assert frames[1].reply_text == "-ERR invalid"
    assert frames[2].body == GOODBYE
    assert frames[2].headers == (
        ("Content-Type", DISCONNECT_NOTICE),
        ("Content-Length", "67"),
    )


def test_01_command_before_auth() -> None:
    frames = parse_chunks(load_connections("01-inbound-auth-api.jsonl")["B"].fs_chunks)
    assert [f.reply_text for f in frames[1:]] == ["-ERR command not found", "+OK accepted"]


def test_api_bodies_match_extracted_files_byte_for_byte() -> None:
    by_stream: dict[tuple[str, str | None], list[bytes]] = {}
    for entry in api_index():
        body = (FIXTURE_DIR / entry["file"]).read_bytes()
        assert len(body) == entry["content_length"]
        by_stream.setdefault((entry["transcript"], entry["conn"]), []).append(body)
    checked = 0
    for name, label in STREAMS:
        frames = parse_chunks(load_connections(name)[label].fs_chunks)
        bodies = [f.body for f in frames if f.content_type == API_RESPONSE]
        assert bodies == by_stream.get((name, label), []), (name, label)
        checked += len(bodies)
    assert checked == 185


def test_log_data_frame() -> None:
    frames = parse_chunks(load_connections("01-inbound-auth-api.jsonl")["C"].fs_chunks)
    (log,) = [f for f in frames if f.content_type == LOG_DATA]
    assert [name for name, _ in log.headers] == [
        "Content-Type",
        "Content-Length",
        "Log-Level",
        "Text-Channel",
        "Log-File",
        "Log-Func",
        "Log-Line",
        "User-Data",
    ]
    assert log.get("User-Data") == ""
    assert log.get("Log-Level") == "6"
    assert log.body.endswith(b"[INFO] mod_commands.c:7200 esltest log line\n")


def test_bgapi_reply_has_job_uuid_header() -> None:
    frames = parse_chunks(load_connections("01-inbound-auth-api.jsonl")["C"].fs_chunks)
    replies = [f for f in frames if f.content_type == COMMAND_REPLY and f.get("Job-UUID")]
    assert replies
    for reply in replies:
        assert reply.reply_text == f"+OK Job-UUID: {reply.get('Job-UUID')}"


def test_outbound_connect_reply_is_url_decoded_channel_data() -> None:
    frames = parse_chunks(load_connections("04-outbound-socket-async-full.jsonl")[None].fs_chunks)
    connect = frames[0]
    assert connect.content_type == COMMAND_REPLY
    assert connect.headers[0] == ("Event-Name", "CHANNEL_DATA")
    assert connect.reply_text == "+OK\n"  # Reply-Text: %2BOK%0A
    assert connect.get("Socket-Mode") == "async"
    assert connect.get("Control") == "full"
    assert connect.get("variable_esltest_var") == "hello world"
    linger = frames[-1]
    assert linger.content_type == DISCONNECT_NOTICE
    assert linger.get("Content-Disposition") == "linger"
    assert linger.get("Linger-Time") == "-1"
    assert linger.body == b""


def test_04c_linger_then_disconnect() -> None:
    frames = parse_chunks(
        load_connections("04c-outbound-socket-linger-timeout.jsonl")[None].fs_chunks
    )
    notices = [f for f in frames if f.content_type == DISCONNECT_NOTICE]
    assert [n.get("Content-Disposition") for n in notices] == ["linger", "disconnect"]
    assert notices[0].get("Linger-Time") == "3"
    assert notices[1].body == GOODBYE


# -- malformed input ------------------------------------------------------

REPLY = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
API = b"Content-Type: api/response\nContent-Length: 3\n\nabc"


def test_bad_content_length_is_fatal_but_keeps_earlier_frames() -> None:
    parser = FrameParser()
    with pytest.raises(BadContentLength) as info:
        parser.feed(REPLY + API + b"Content-Type: api/response\nContent-Length: 1x\n\nzz" + REPLY)
    assert info.value.fatal
    assert [f.content_type for f in info.value.frames] == [COMMAND_REPLY, API_RESPONSE]
    with pytest.raises(ParserBroken):
        parser.feed(REPLY)


@pytest.mark.parametrize("value", [b"-1", b"", b" 3", b"1_0", b"+3"])
def test_non_decimal_content_length_rejected(value: bytes) -> None:
    with pytest.raises(BadContentLength):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: " + value + b"\n\nabc")


def test_truncated_body_at_eof() -> None:
    parser = FrameParser()
    frames = parser.feed(REPLY + b"Content-Type: api/response\nContent-Length: 10\n\nabc")
    assert [f.content_type for f in frames] == [COMMAND_REPLY]
    with pytest.raises(TruncatedFrame, match="3 of 10"):
        parser.eof()


def test_truncated_header_at_eof() -> None:
    parser = FrameParser()
    assert parser.feed(API + b"Content-Type: command/re") == [
        Frame(API_RESPONSE, (("Content-Type", API_RESPONSE), ("Content-Length", "3")), b"abc")
    ]
    with pytest.raises(TruncatedFrame):
        parser.eof()


def test_clean_eof() -> None:
    parser = FrameParser()
    parser.feed(REPLY)
    parser.eof()  # no exception


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_oversized_body_is_skipped_and_stream_continues(chunk_size: int) -> None:
    stream = REPLY + b"Content-Type: api/response\nContent-Length: 100\n\n" + b"x" * 100 + API
    parser = FrameParser(max_body_size=50)
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    frames = parse_chunks(chunks, parser)
    assert [f.content_type for f in frames] == [COMMAND_REPLY, API_RESPONSE]
    assert frames[1].body == b"abc"
    (error,) = parser.take_errors()
    assert isinstance(error, BodyTooLarge) and not error.fatal


@pytest.mark.parametrize("chunk_size", [1, 16, 10_000])
def test_oversized_header_block_is_fatal(chunk_size: int) -> None:
    stream = REPLY + b"X-Filler: " + b"y" * 300 + b"\n\n" + REPLY
    parser = FrameParser(max_header_size=200)
    frames: list[Frame] = []
    with pytest.raises(HeaderTooLarge) as info:
        for i in range(0, len(stream), chunk_size):
            frames.extend(parser.feed(stream[i : i + chunk_size]))
    frames.extend(info.value.frames)
    assert frames == [
        Frame(COMMAND_REPLY, (("Content-Type", COMMAND_REPLY), ("Reply-Text", "+OK accepted")), b"")
    ]


def test_garbage_header_lines_are_skipped() -> None:
    parser = FrameParser()
    frames = parser.feed(
        b"Content-Type: command/reply\ngarbage without colon\nReply-Text: +OK\n:novalue\n\n" + API
    )
    assert frames[0].headers == (("Content-Type", COMMAND_REPLY), ("Reply-Text", "+OK"))
    assert frames[1].body == b"abc"
    errors = parser.take_errors()
    assert len(errors) == 2 and all(isinstance(e, MalformedHeaderLine) for e in errors)
    assert parser.take_errors() == []


def test_unknown_content_type_is_flagged_not_dropped() -> None:
    frames = FrameParser().feed(b"Content-Type: text/x-future\nContent-Length: 2\n\nhi" + REPLY)
    assert not frames[0].known
    assert frames[0].content_type == "text/x-future"
    assert frames[0].body == b"hi"
    assert frames[1].known


def test_header_variants() -> None:
    frames = FrameParser().feed(
        b"\nContent-Type:command/reply\nEmpty:\nReply-Text: %2BOK%20x\n\n\n" + API
    )
    assert frames[0].headers == (
        ("Content-Type", COMMAND_REPLY),
        ("Empty", ""),
        ("Reply-Text", "+OK x"),
    )
    assert frames[1].body == b"abc"


def test_rude_rejection_frame() -> None:
    body = b"Access Denied, go away.\n"
    frames = FrameParser().feed(
        b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(body) + body
    )
    assert frames[0].known and frames[0].body == body


def test_zero_length_body() -> None:
    frames = FrameParser().feed(b"Content-Type: api/response\nContent-Length: 0\n\n" + REPLY)
    assert frames[0].body == b"" and frames[1].content_type == COMMAND_REPLY


def test_buffered_counts_pending_bytes() -> None:
    parser = FrameParser()
    parser.feed(b"Content-Type: api/response\nContent-Length: 10\n\nabc")
    assert parser.buffered == 3
    parser.feed(b"defghij")
    assert parser.buffered == 0
