"""Incremental ESL frame parser (pure Python, no I/O, no Django).

Wire format (see the README of the FreeSWITCH fixtures, "Protocol facts"):
every message is a block of ``Name: value\\n`` lines ended by an empty line
(``\\n\\n``, never CRLF). If the block has a ``Content-Length`` header, exactly
that many bytes of body follow, with no terminator after the body.

Contract of :class:`FrameParser`:

* ``feed(data)`` accepts any chunking of the byte stream (a chunk may start or
  end anywhere, even inside ``\\n\\n`` or inside a body) and returns the frames
  completed by that chunk, in stream order. Feeding the same stream chunked
  differently yields equal frames.
* Recoverable problems never raise: a header line without ``:`` is skipped and a
  frame whose body exceeds ``max_body_size`` is discarded (its length is known,
  so framing is kept). Each is recorded as a :class:`FrameError` (``fatal`` is
  ``False``) that the caller collects with :meth:`FrameParser.take_errors`.
* Problems after which the frame boundaries are unknown (a non-numeric
  ``Content-Length``, a header block larger than ``max_header_size``) raise a
  fatal :class:`FrameError`. Its ``frames`` attribute holds the frames completed
  earlier in the same ``feed`` call, so nothing received is lost. The parser is
  then unusable; the connection must be closed.
* ``eof()`` reports a frame truncated by the peer closing the connection.

Outer header values are URL-decoded when they contain ``%`` (this is what
FreeSWITCH's own libesl does; the outbound ``connect`` reply is URL-encoded,
``Reply-Text: %2BOK%0A``). Bodies are returned as raw bytes.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

__all__ = [
    "AUTH_REQUEST",
    "API_RESPONSE",
    "COMMAND_REPLY",
    "DISCONNECT_NOTICE",
    "EVENT_JSON",
    "EVENT_PLAIN",
    "EVENT_XML",
    "KNOWN_CONTENT_TYPES",
    "LOG_DATA",
    "RUDE_REJECTION",
    "BadContentLength",
    "BodyTooLarge",
    "Frame",
    "FrameError",
    "FrameParser",
    "HeaderTooLarge",
    "MalformedHeaderLine",
    "ParserBroken",
    "TruncatedFrame",
]

AUTH_REQUEST: Final = "auth/request"
COMMAND_REPLY: Final = "command/reply"
API_RESPONSE: Final = "api/response"
EVENT_PLAIN: Final = "text/event-plain"
EVENT_JSON: Final = "text/event-json"
EVENT_XML: Final = "text/event-xml"
DISCONNECT_NOTICE: Final = "text/disconnect-notice"
LOG_DATA: Final = "log/data"
RUDE_REJECTION: Final = "text/rude-rejection"

KNOWN_CONTENT_TYPES: Final = frozenset(
    {
        AUTH_REQUEST,
        COMMAND_REPLY,
        API_RESPONSE,
        EVENT_PLAIN,
        EVENT_JSON,
        EVENT_XML,
        DISCONNECT_NOTICE,
        LOG_DATA,
        RUDE_REJECTION,
    }
)

#: Default limits. The biggest header block FreeSWITCH sends is the outbound
#: ``connect`` reply (the whole channel data, ~10 KiB); bodies are events or API
#: output, where a big ``show channels`` can reach a few MiB.
DEFAULT_MAX_HEADER_SIZE: Final = 256 * 1024
DEFAULT_MAX_BODY_SIZE: Final = 8 * 1024 * 1024


class FrameError(Exception):
    """A framing problem. ``fatal`` tells whether the stream can continue.

    ``frames`` holds the frames completed in the same ``feed`` call before a
    fatal error was raised (empty for recoverable errors, which are not raised).
    """

    fatal: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.frames: list[Frame] = []


class MalformedHeaderLine(FrameError):
    """A header line had no ``:``; it was skipped, the frame was kept."""


class BodyTooLarge(FrameError):
    """A frame's ``Content-Length`` exceeded the limit; its body was skipped."""


class HeaderTooLarge(FrameError):
    """A header block exceeded the limit: the end of the frame is unknown."""

    fatal = True


class BadContentLength(FrameError):
    """``Content-Length`` was not a decimal number: the end of the frame is unknown."""

    fatal = True


class TruncatedFrame(FrameError):
    """The stream ended in the middle of a frame (reported by :meth:`FrameParser.eof`)."""

    fatal = True


class ParserBroken(FrameError):
    """``feed`` was called again after a fatal error."""

    fatal = True


class Frame:
    """One ESL message: its outer headers (in wire order) and its raw body.

    ``headers`` is a tuple of ``(name, value)`` pairs with values URL-decoded;
    repeated names are kept. ``content_type`` is ``""`` when the block had no
    ``Content-Type``. ``known`` is False for content types this library does not
    handle (the client logs and skips those).
    """

    __slots__ = ("content_type", "headers", "body")

    def __init__(self, content_type: str, headers: tuple[tuple[str, str], ...], body: bytes):
        self.content_type = content_type
        self.headers = headers
        self.body = body

    @property
    def known(self) -> bool:
        """True if the content type is one FreeSWITCH is documented to send."""
        return self.content_type in KNOWN_CONTENT_TYPES

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name`` (case-sensitive, like FreeSWITCH)."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` of a command/reply, ``""`` if absent."""
        return self.get("Reply-Text") or ""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            self.content_type == other.content_type
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-ish value object

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 60 else self.body[:57] + b"..."
        return f"Frame({self.content_type!r}, {len(self.headers)} headers, body={body!r})"


def _parse_header_block(
    block: bytes, errors: list[FrameError]
) -> tuple[str, int | None, tuple[tuple[str, str], ...]]:
    """Split a header block into ``(content_type, content_length, headers)``.

    Raises :class:`BadContentLength` if ``Content-Length`` is not a number.
    Malformed lines are appended to ``errors`` and skipped.
    """
    # surrogateescape: a stray non-UTF-8 byte must not kill the connection, and
    # the header names we act on are ASCII anyway.
    text = block.decode("utf-8", "surrogateescape")
    headers: list[tuple[str, str]] = []
    content_type = ""
    content_length: int | None = None
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            # Tolerate "Name:value" and a bare "Name:" (empty value); anything
            # without a colon is garbage we can skip without losing framing.
            name, sep, value = line.partition(":")
            if not sep or not name:
                if line:  # a lone leading "\n" between frames is harmless
                    errors.append(
                        MalformedHeaderLine(f"header line without ':' skipped: {line[:80]!r}")
                    )
                continue
        if "%" in value:
            value = unquote(value)
        headers.append((name, value))
        if name == "Content-Length":
            if content_length is None:
                if not (value.isascii() and value.isdigit()):
                    raise BadContentLength(f"bad Content-Length {value[:40]!r}")
                content_length = int(value)
        elif name == "Content-Type" and not content_type:
            content_type = value
    return content_type, content_length, tuple(headers)


class FrameParser:
    """Incremental, chunking-independent ESL frame parser (see module docstring).

    Not thread-safe; one parser per connection.
    """

    __slots__ = (
        "max_header_size",
        "max_body_size",
        "_buf",
        "_scan_from",
        "_body_chunks",
        "_body_have",
        "_pending",
        "_skip",
        "_errors",
        "_broken",
    )

    def __init__(
        self,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        # Bytes not yet consumed while looking for the end of a header block.
        self._buf = b""
        # Offset in _buf from which "\n\n" can still start (avoids rescanning).
        self._scan_from = 0
        # While waiting for a body: the chunks received so far (joined once,
        # when complete, so a multi-MiB body costs O(n) and not O(n^2)).
        self._body_chunks: list[bytes] = []
        self._body_have = 0
        # (content_type, headers, content_length) of the frame awaiting its body.
        self._pending: tuple[str, tuple[tuple[str, str], ...], int] | None = None
        # Bytes still to discard from an oversized body.
        self._skip = 0
        self._errors: list[FrameError] = []
        self._broken: FrameError | None = None

    def take_errors(self) -> list[FrameError]:
        """Return and clear the recoverable errors recorded since the last call."""
        errors, self._errors = self._errors, []
        return errors

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        return len(self._buf) + self._body_have

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completes, in order.

        Raises a fatal :class:`FrameError` (with ``.frames``) if framing is lost.
        """
        if self._broken is not None:
            raise ParserBroken(f"parser unusable after: {self._broken}")
        frames: list[Frame] = []
        if not data:
            return frames
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return frames
            data = data[self._skip :]
            self._skip = 0
        if self._pending is not None:
            # Waiting for a body: only join when it is complete.
            self._body_chunks.append(data)
            self._body_have += len(data)
            content_type, headers, length = self._pending
            if self._body_have < length:
                return frames
            data = b"".join(self._body_chunks)
            self._body_chunks = []
            self._body_have = 0
            self._pending = None
            frames.append(Frame(content_type, headers, data[:length]))
            pos = length
            scan = length
        elif self._buf:
            scan = self._scan_from
            data = self._buf + data
            self._buf = b""
            pos = 0
        else:
            pos = scan = 0
        try:
            self._parse(data, pos, scan, frames)
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            raise
        return frames

    def _parse(self, data: bytes, pos: int, scan: int, frames: list[Frame]) -> None:
        """Parse complete frames from ``data[pos:]`` into ``frames``; keep the rest."""
        size = len(data)
        find = data.find
        max_header = self.max_header_size
        errors = self._errors
        while pos < size:
            end = find(b"\n\n", scan)
            if end < 0:
                # Header block incomplete. If even the next byte could not end it
                # within the limit, framing is lost for good.
                if size - pos - 1 > max_header:
                    raise HeaderTooLarge(f"header block over {max_header} bytes without terminator")
                self._buf = data[pos:]
                self._scan_from = max(0, size - pos - 1)
                return
            if end == pos:
                # Stray blank line between frames: skip it (FreeSWITCH never
                # sends one, but libesl tolerates it and so do we).
                pos += 1
                scan = pos
                continue
            if end - pos > max_header:
                raise HeaderTooLarge(f"header block of {end - pos} bytes over limit {max_header}")
            content_type, length, headers = _parse_header_block(data[pos:end], errors)
            pos = end + 2
            if not length:
                frames.append(Frame(content_type, headers, b""))
                scan = pos
                continue
            if length > self.max_body_size:
                errors.append(
                    BodyTooLarge(
                        f"{content_type or 'frame'} body of {length} bytes over limit "
                        f"{self.max_body_size}; skipped"
                    )
                )
                if size - pos < length:
                    self._skip = length - (size - pos)
                    return
                pos += length
                scan = pos
                continue
            stop = pos + length
            if stop > size:
                self._pending = (content_type, headers, length)
                rest = data[pos:]
                self._body_chunks = [rest]
                self._body_have = len(rest)
                return
            frames.append(Frame(content_type, headers, data[pos:stop]))
            pos = scan = stop
        self._scan_from = 0

    def eof(self) -> None:
        """Declare the end of the stream; raise :class:`TruncatedFrame` if a frame is incomplete."""
        if self._broken is not None:
            return
        if self._pending is not None:
            content_type, _headers, length = self._pending
            have = self._body_have
            self._reset()
            raise TruncatedFrame(
                f"stream ended after {have} of {length} body bytes of {content_type!r}"
            )
        if self._skip:
            skip = self._skip
            self._reset()
            raise TruncatedFrame(f"stream ended with {skip} bytes of an oversized body missing")
        if self._buf.strip(b"\n"):
            have = len(self._buf)
            self._reset()
            raise TruncatedFrame(f"stream ended inside a header block ({have} bytes)")
        self._reset()

    def _reset(self) -> None:
        self._buf = b""
        self._scan_from = 0
        self._body_chunks = []
        self._body_have = 0
        self._pending = None
        self._skip = 0
