"""ESL parsing benchmark: telephony.esl vs greenswitch vs genesis, same bytes, same run.

Run: ``.venv/bin/python benchmarks/bench_esl_parse.py [--events 50000] [--chunk 4096] [--repeat 3]``

Input: the ``fs->client`` bytes of every connection of every capture in
``$CCP_SHARED_DIR/fixtures/freeswitch`` (real FreeSWITCH 1.10.12 traffic),
repeated until the stream holds ``--events`` events, fed in ``--chunk``-byte
pieces (what ``recv()`` typically returns).

Two streams:

* **common**: the frames every candidate can parse. JSON and XML events are left
  out (greenswitch's reader crashes on a JSON event: ``ESLEvent.parse_data``
  looks for ``": "`` lines; genesis does not decode them: the raw JSON ends up
  as the body), and so are disconnect notices (greenswitch does not read their
  body, which desynchronises a stream that goes on). Everything else stays:
  plain events, api responses, command replies, the outbound connect reply,
  log data.
* **full**: everything, for our parser only.

How each parser is driven (as directly as their code allows, no sockets):

* greenswitch 0.0.19: ``ESLProtocol.receive_events()`` runs unchanged, its
  ``sock_file`` being a ``BufferedReader`` (as ``socket.makefile('rb')``
  gives) over a raw reader that returns one chunk per ``readinto``. Its gevent
  event queue is replaced by a counter, and command replies go to a stub.
* genesis 2026.10.18: ``Protocol.handler()`` (its reader loop: ``readline``
  until a blank line, ``readexactly`` for bodies, ``ESLReaderFSM``) runs
  unchanged on an ``asyncio.StreamReader`` fed chunk by chunk by a producer
  task; its event queue is replaced by a counter.
* ours, three ways: ``FrameParser.feed`` alone; plus ``event_from_frame`` for
  event frames (what our client does: identity fields decoded and validated,
  the other headers decoded on first use); plus forcing every header to be
  decoded (``event.headers``), which is the same work greenswitch and genesis
  do eagerly. Each result is counted and dropped, like theirs.

Timings are wall-clock best-of-``--repeat`` on whatever machine runs this; the
figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # runnable as a plain script

from telephony.esl.events import event_from_frame  # noqa: E402
from telephony.esl.frames import FrameParser  # noqa: E402

FIXTURES = (
    Path(os.environ.get("CCP_SHARED_DIR", REPO.parent / "shared")) / "fixtures" / "freeswitch"
)
EVENT_TYPES = (b"text/event-plain", b"text/event-json", b"text/event-xml")
NOT_COMMON = (b"text/event-json", b"text/event-xml", b"text/disconnect-notice")


# -- input ---------------------------------------------------------------------------


def connection_streams() -> list[bytes]:
    """The fs->client byte stream of each captured connection."""
    streams = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        per_conn: dict[str | None, list[bytes]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["dir"] == "fs->client" and rec["data"]:
                per_conn.setdefault(rec.get("conn"), []).append(rec["data"].encode("utf-8"))
        streams += [b"".join(chunks) for chunks in per_conn.values()]
    return streams


def raw_frames(stream: bytes) -> list[tuple[bytes, bytes]]:
    """``[(content type, raw frame bytes)]``, split independently of the parsers under test."""
    out = []
    pos = 0
    while pos < len(stream):
        end = stream.find(b"\n\n", pos)
        length = 0
        ctype = b""
        for line in stream[pos:end].split(b"\n"):
            if line.startswith(b"Content-Length: ") and not length:
                length = int(line[16:])
            elif line.startswith(b"Content-Type: ") and not ctype:
                ctype = line[14:]
        stop = end + 2 + length
        out.append((ctype, stream[pos:stop]))
        pos = stop
    return out


class Workload:
    """A stream, its chunks and what it contains."""

    def __init__(
        self, name: str, frames: list[tuple[bytes, bytes]], target_events: int, chunk: int
    ):
        per_copy = sum(ctype in EVENT_TYPES for ctype, _ in frames)
        copies = max(1, -(-target_events // per_copy))
        one = b"".join(raw for _, raw in frames)
        self.name = name
        self.data = one * copies
        self.frames = len(frames) * copies
        self.events = per_copy * copies
        self.chunks = [self.data[i : i + chunk] for i in range(0, len(self.data), chunk)]


# -- drivers ---------------------------------------------------------------------------
# Each returns (frames seen, events seen) so that we can check it parsed everything.


def run_ours_frames(chunks: list[bytes]) -> tuple[int, int]:
    parser = FrameParser()
    frames = events = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            frames += 1
            events += frame.content_type.startswith("text/event-")
    return frames, events


def run_ours_events(chunks: list[bytes]) -> tuple[int, int]:
    parser = FrameParser()
    frames = events = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            frames += 1
            if frame.content_type.startswith("text/event-"):
                event_from_frame(frame)
                events += 1
    return frames, events


def run_ours_events_all_headers(chunks: list[bytes]) -> tuple[int, int]:
    parser = FrameParser()
    frames = events = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            frames += 1
            if frame.content_type.startswith("text/event-"):
                event_from_frame(frame).headers  # noqa: B018  # force the full decode
                events += 1
    return frames, events


class _ChunkReader(io.RawIOBase):
    """A socket stand-in: each read returns (part of) the next chunk."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if not self._current:
            nxt = next(self._chunks, b"")
            if not nxt:
                return 0
            self._current = memoryview(nxt)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def put(self, item: object) -> None:
        self.count += 1


class _AsyncCounter(_Counter):
    async def put(self, item: object) -> None:  # type: ignore[override]
        if item is not None:  # genesis puts None at EOF
            self.count += 1


def run_greenswitch(chunks: list[bytes]) -> tuple[int, int]:
    from greenswitch import esl

    class _Reply:
        def set(self, value: object) -> None:
            replies.count += 1

    class _Replies(list):
        def pop(self, index: int = -1) -> _Reply:  # type: ignore[override]
            return _Reply()

    class _Sock:
        def close(self) -> None:
            pass

    class _AuthEvent:
        def set(self) -> None:
            replies.count += 1

    replies = _Counter()
    events = _Counter()
    proto = esl.ESLProtocol()
    proto._auth_request_event = _AuthEvent()
    proto.sock = _Sock()
    proto.sock_file = io.BufferedReader(_ChunkReader(chunks))
    proto._commands_sent = _Replies()
    proto._esl_event_queue = events
    proto.connected = True
    proto.receive_events()
    # Replies and auth requests go to the stubs, events and log data to the queue.
    return replies.count + events.count, -1


def run_genesis(chunks: list[bytes]) -> tuple[int, int]:
    from genesis.protocol.base import Protocol

    async def main() -> tuple[int, int]:
        proto = Protocol()
        proto.reader = asyncio.StreamReader(limit=2**22)
        proto.is_connected = True
        counter = _AsyncCounter()
        proto.events = counter  # type: ignore[assignment]

        async def produce() -> None:
            for i, chunk in enumerate(chunks):
                proto.reader.feed_data(chunk)  # type: ignore[union-attr]
                if i % 16 == 15:  # 64 KiB at a time, as a busy socket delivers
                    await asyncio.sleep(0)
            proto.reader.feed_eof()  # type: ignore[union-attr]

        producer = asyncio.ensure_future(produce())
        await proto.handler()
        await producer
        return counter.count, -1  # genesis does not tell events from replies

    return asyncio.run(main())


# -- measurement ------------------------------------------------------------------------


def measure(
    fn: Callable[[list[bytes]], tuple[int, int]], work: Workload, repeat: int
) -> tuple[float, tuple[int, int]]:
    best = float("inf")
    counts = (0, 0)
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        counts = fn(work.chunks)
        best = min(best, time.perf_counter() - start)
    return best, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in each stream")
    parser.add_argument("--chunk", type=int, default=4096, help="bytes per feed")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--skip-candidates", action="store_true", help="only our parser")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # genesis/greenswitch log through the root logger

    frames = [f for stream in connection_streams() for f in raw_frames(stream)]
    common = Workload(
        "common", [f for f in frames if f[0] not in NOT_COMMON], args.events, args.chunk
    )
    full = Workload("full", frames, args.events, args.chunk)

    runners: list[tuple[str, Callable[[list[bytes]], tuple[int, int]], Workload]] = [
        ("ours: frames only", run_ours_frames, common),
        ("ours: frames + events (lazy headers)", run_ours_events, common),
        ("ours: frames + events + all headers", run_ours_events_all_headers, common),
    ]
    if not args.skip_candidates:
        runners += [
            ("greenswitch 0.0.19 (receive_events)", run_greenswitch, common),
            ("genesis 2026.10.18 (Protocol.handler)", run_genesis, common),
        ]
    runners += [
        ("ours: frames + events (lazy), full stream", run_ours_events, full),
        ("ours: frames + events + all headers, full", run_ours_events_all_headers, full),
    ]

    print(f"python {sys.version.split()[0]}, chunk {args.chunk} B, best of {args.repeat}")
    for work in (common, full):
        print(
            f"stream {work.name!r}: {len(work.data) / 1e6:.1f} MB, {work.frames} frames, "
            f"{work.events} events, {len(work.chunks)} chunks"
        )
    print()
    print(f"{'parser':46} {'stream':7} {'events/s':>11} {'frames/s':>11} {'MB/s':>8}")
    results: dict[str, float] = {}
    for label, fn, work in runners:
        seconds, (nframes, nevents) = measure(fn, work, args.repeat)
        results[label] = work.events / seconds
        check = ""
        if nframes != work.frames or nevents not in (-1, work.events):
            check = f"  [counted {nframes} frames, {nevents} events]"
        print(
            f"{label:46} {work.name:7} {work.events / seconds:11,.0f} "
            f"{work.frames / seconds:11,.0f} {len(work.data) / seconds / 1e6:8.1f}{check}"
        )

    candidates = {k: v for k, v in results.items() if k.startswith(("greenswitch", "genesis"))}
    if candidates:
        print(
            "(genesis counts a few more frames than there are: it splits events that"
            " contain 'event-lock: true' at each 'Event-Name:' line)"
        )
        best_name, best = max(candidates.items(), key=lambda kv: kv[1])
        print()
        print(f"best candidate: {best_name} ({best:,.0f} events/s)")
        for label in (
            "ours: frames only",
            "ours: frames + events (lazy headers)",
            "ours: frames + events + all headers",
        ):
            print(f"{label:46} {results[label] / best:5.1f}x the best candidate")


if __name__ == "__main__":
    main()
