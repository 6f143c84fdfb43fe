"""Typed FreeSWITCH events built from ``text/event-plain|json|xml`` frames.

Contract: the same event serialised by FreeSWITCH as plain, JSON or XML gives
*equal* :class:`Event` objects (same headers in the same order, same body).
FreeSWITCH's three serialisers differ, so each parser normalises:

* plain: every header value is URL-encoded; the body, if any, follows an inner
  ``Content-Length: N`` line and a blank line. That trailing ``Content-Length``
  is framing, not an event header, and is dropped.
* JSON: a flat object of strings; repeated headers are repeated keys (kept, in
  order); array headers are JSON arrays (turned into FreeSWITCH's own
  ``ARRAY::a|:b`` text, which is what plain carries); the body is ``_body``,
  preceded by a framing ``Content-Length`` key that is dropped.
* XML: ``<event><headers><Name>url-encoded value</Name>...</headers>`` then
  optionally ``<Content-Length>N</Content-Length><body>text</body>``; the body
  is cut to N bytes (FreeSWITCH's pretty printer adds indentation after it).

A frame that is not a valid event (bad JSON/XML, no ``Event-Name``, a
non-integer ``Event-Date-Timestamp``/``Event-Sequence``) raises
:class:`EventValidationError`; the client logs and skips it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from binascii import a2b_qp
from collections.abc import Iterator, Mapping
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote

from .frames import EVENT_JSON, EVENT_PLAIN, EVENT_XML, Frame

__all__ = [
    "Event",
    "EventValidationError",
    "decode_plain_headers",
    "event_from_frame",
    "event_from_headers",
    "is_event_frame",
    "parse_json_event",
    "parse_plain_event",
    "parse_xml_event",
]

Headers = tuple[tuple[str, str], ...]

VARIABLE_PREFIX: Final = "variable_"
_EMPTY_MAP: Final[Mapping[str, str]] = MappingProxyType({})


class EventValidationError(ValueError):
    """The frame is not a valid FreeSWITCH event (logged and skipped by the client)."""


class Event:
    """One FreeSWITCH event.

    ``headers`` keeps every header in wire order, repeats included (e.g. the two
    ``Hangup-Cause`` of CHANNEL_HANGUP_COMPLETE, or the PRIVATE_COMMAND header
    set embedded in COMMAND). Lookups (:meth:`get`, ``event[name]``) return the
    *first* value, like ``switch_event_get_header``. ``body`` is ``""`` when the
    event has none. Equality compares headers and body only.

    The identity fields (:attr:`name`, :attr:`subclass`, :attr:`unique_id`,
    :attr:`core_uuid`, :attr:`job_uuid`, :attr:`timestamp`, :attr:`sequence`) are
    validated when the event is built. For well-formed plain events the full
    header list is only decoded on first use (most events are routed on those
    fields alone); the result is the same as an eager decode. Such an event keeps
    its raw block and caches only the first-wins ``dict`` (``str`` to ``str``: the
    garbage collector does not track it), never the ``(name, value)`` pairs: a
    retained event would otherwise hold ~100-200 tracked tuples, which made every
    young collection of a busy switchboard traverse hundreds of thousands of them
    (decision 0011, "Proof and figures"). :meth:`get` reads one header from the raw
    block until the map exists.

    Events are immutable by contract: derived values are computed once (except
    :attr:`headers` of a plain event, decoded again on each use; see above).
    """

    __slots__ = (
        "body",
        "_defects",
        "name",
        "unique_id",
        "core_uuid",
        "timestamp",
        "sequence",
        "_headers",
        "_raw",
        "_map",
        "_variables",
    )

    name: str
    """``Event-Name`` (``CUSTOM`` for custom events; see :attr:`subclass`)."""
    unique_id: str | None
    """``Unique-ID``: the channel UUID, None for non-channel events."""
    core_uuid: str | None
    """``Core-UUID``: identifies the FreeSWITCH process (changes on restart)."""
    timestamp: int | None
    """``Event-Date-Timestamp``: microseconds since the epoch."""
    sequence: int | None
    """``Event-Sequence`` (assigned at creation: NOT delivery order)."""

    def __init__(self, headers: Headers, body: str = "", defects: tuple[str, ...] = ()) -> None:
        """Validate and index ``headers``; raise :class:`EventValidationError` if invalid."""
        headers = tuple(headers)  # no copy if it already is one
        self.body = body
        self._defects = defects
        # Flat (name, value, name, value, ...): one tuple of strings, which the GC stops
        # tracking once it has seen it, instead of one tracked pair per header.
        self._headers: tuple[str, ...] | None = tuple(chain.from_iterable(headers))
        self._raw: tuple[bytes, int, bool] | None = None
        # dict() keeps the last duplicate, so build it from the reversed list
        # to get FreeSWITCH's first-match semantics in one C-level call.
        hmap = dict(reversed(headers))
        self._map: dict[str, str] | None = hmap
        self._variables: Mapping[str, str] | None = None
        self._set_identity(
            hmap.get("Event-Name"),
            hmap.get("Unique-ID"),
            hmap.get("Core-UUID"),
            hmap.get("Event-Date-Timestamp"),
            hmap.get("Event-Sequence"),
        )

    def _set_identity(
        self,
        name: str | None,
        unique_id: str | None,
        core_uuid: str | None,
        timestamp: str | None,
        sequence: str | None,
    ) -> None:
        if not name:
            raise EventValidationError("event without Event-Name")
        self.name = name
        self.unique_id = unique_id
        self.core_uuid = core_uuid
        self.timestamp = _to_int("Event-Date-Timestamp", timestamp)
        self.sequence = _to_int("Event-Sequence", sequence)

    @classmethod
    def _from_plain(cls, head: bytes, lines: int, has_body: bool, body: str) -> Event:
        """Build an event whose headers are decoded on first use.

        Precondition (checked by the caller, :func:`_regular_lines`): every line
        of ``head`` has exactly one ``:``, so a header can only match at the
        start of a line.
        """
        self = cls.__new__(cls)
        self.body = body
        self._defects = ()
        self._headers = None
        self._raw = (head, lines, has_body)
        self._map = None
        self._variables = None
        self._set_identity(
            _raw_field(head, b"Event-Name:"),
            _raw_field(head, b"Unique-ID:"),
            _raw_field(head, b"Core-UUID:"),
            _raw_field(head, b"Event-Date-Timestamp:"),
            _raw_field(head, b"Event-Sequence:"),
        )
        return self

    # -- full header list ------------------------------------------------
    @property
    def headers(self) -> Headers:
        """Every header as ``(name, value)`` in wire order, values decoded."""
        flat = self._headers
        if flat is not None:
            return tuple(zip(flat[0::2], flat[1::2], strict=True))
        # Decoded again on each use (rare: equality, get_all, variables once).
        assert self._raw is not None
        head, lines, has_body = self._raw
        headers, self._defects = _decode_regular(head, lines)
        if has_body and headers and headers[-1][0] == "Content-Length":
            headers = headers[:-1]  # framing added by the serializer
        return headers

    @property
    def defects(self) -> tuple[str, ...]:
        """Header lines that were skipped as malformed (normally empty)."""
        if self._headers is None and self._map is None:
            self._hmap  # noqa: B018  # decoding records the defects
        return self._defects

    @property
    def subclass(self) -> str | None:
        """``Event-Subclass`` (e.g. ``sofia::register``), None if absent."""
        raw = self._raw
        if raw is not None:
            return _raw_field(raw[0], b"Event-Subclass:")
        return self._hmap.get("Event-Subclass")

    @property
    def job_uuid(self) -> str | None:
        """``Job-UUID`` of BACKGROUND_JOB events, None if absent."""
        raw = self._raw
        if raw is not None:
            return _raw_field(raw[0], b"Job-UUID:")
        return self._hmap.get("Job-UUID")

    @property
    def _hmap(self) -> dict[str, str]:
        hmap = self._map
        if hmap is None:
            hmap = self._map = dict(reversed(self.headers))
        return hmap

    # -- derived views -----------------------------------------------------
    @property
    def qualified_name(self) -> str:
        """``"CUSTOM sofia::register"`` for custom events, else the event name.

        This is the same spelling as an ``event plain ...`` subscription.
        """
        if self.name == "CUSTOM" and self.subclass:
            return f"CUSTOM {self.subclass}"
        return self.name

    @property
    def channel_state(self) -> str | None:
        """``Channel-State`` (e.g. ``CS_EXECUTE``)."""
        return self._hmap.get("Channel-State")

    @property
    def answer_state(self) -> str | None:
        """``Answer-State`` (``ringing``, ``early``, ``answered``, ``hangup``)."""
        return self._hmap.get("Answer-State")

    @property
    def variables(self) -> Mapping[str, str]:
        """Channel variables: ``variable_foo`` headers as ``{"foo": value}`` (first wins)."""
        if self._variables is None:
            n = len(VARIABLE_PREFIX)
            found = {k[n:]: v for k, v in reversed(self.headers) if k.startswith(VARIABLE_PREFIX)}
            self._variables = MappingProxyType(found) if found else _EMPTY_MAP
        return self._variables

    @property
    def header_map(self) -> Mapping[str, str]:
        """Read-only first-wins mapping of header name to value."""
        return MappingProxyType(self._hmap)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name``, or ``default``."""
        hmap = self._map
        if hmap is None:
            raw = self._raw
            if raw is not None and name and name != "Content-Length" and _plain_name(name):
                # One header from the raw block (a C-level find), not all of them.
                # Content-Length may be the serializer's framing: see `headers`.
                value = _raw_field(raw[0], name.encode() + b":")
                return default if value is None else value
            hmap = self._hmap
        return hmap.get(name, default)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        return [v for k, v in self.headers if k == name]

    def __getitem__(self, name: str) -> str:
        return self._hmap[name]

    def __contains__(self, name: object) -> bool:
        return name in self._hmap

    def __iter__(self) -> Iterator[str]:
        return iter(self._hmap)

    def __len__(self) -> int:
        return len(self._hmap)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.body == other.body and self.headers == other.headers

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Event({self.qualified_name!r}, unique_id={self.unique_id!r}, "
            f"seq={self.sequence}, body={len(self.body)} chars)"
        )


def _plain_name(name: str) -> bool:
    """A header name :func:`_raw_field` can look up (no ``:`` or newline in it)."""
    return ":" not in name and "\n" not in name


def _to_int(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise EventValidationError(f"{name} is not an integer: {value[:40]!r}")
    return int(value)


def _raw_field(head: bytes, key: bytes) -> str | None:
    """First value of ``key`` (``b"Name:"``) in a plain header block, URL-decoded.

    Only valid when each line has exactly one ``:`` (:func:`_regular_lines`): then
    ``"\\n" + key`` can only match at the start of a line. Like the reference
    decoder, one space after the colon is skipped.
    """
    if head.startswith(key):
        start = len(key)
    else:
        pos = head.find(b"\n" + key)
        if pos < 0:
            return None
        start = pos + 1 + len(key)
    stop = head.find(b"\n", start)
    raw = head[start:] if stop < 0 else head[start:stop]
    if raw[:1] == b" ":
        raw = raw[1:]
    value = raw.decode("utf-8", "replace")
    return unquote(value) if "%" in value else value


# -- plain ----------------------------------------------------------------

# A '%' that does not start a valid escape (this includes a '%' at the end of a
# line or of the block). URL-decoding keeps such text as is; the fast decoder
# below cannot, so it hands those blocks to the reference decoder.
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# bytes.translate(None, _ALL_BUT_COLON_NL) keeps only the ':' and '\n' of a block.
_ALL_BUT_COLON_NL = bytes(b for b in range(256) if b not in b":\n")
# One ':' per line looks like ":\n:\n...:" once everything else is removed.
_COLON_NL = b":\n" * 4096


def _decode_plain_headers_slow(head: bytes) -> tuple[Headers, tuple[str, ...]]:
    """Reference decoder: line by line, ``urllib.parse.unquote`` per value."""
    headers = []
    defects = []
    for line in head.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition(":")
            if not sep or not name:
                if line:
                    defects.append(f"header line without ':' skipped: {line[:80]!r}")
                continue
        headers.append((name, unquote(value) if "%" in value else value))
    return tuple(headers), tuple(defects)


def _regular_lines(head: bytes) -> int:
    """Number of lines of ``head`` if every line has exactly one ``:``, else 0.

    FreeSWITCH URL-encodes ':' in plain event values and header names never
    contain one, so its header blocks always pass. Then a header can only be
    found at the start of a line, and (when every colon is followed by a space
    and no name is empty, checked by :func:`_decode_regular`) splitting on
    ``"\\n"`` and ``": "`` alternates names and values exactly. A block with
    a blank line (``"\\n\\n"``) fails too.
    """
    kept = head.translate(None, _ALL_BUT_COLON_NL)
    size = len(kept)
    if size & 1 == 1 and size <= len(_COLON_NL) and kept == _COLON_NL[:size]:
        return (size + 1) >> 1
    return 0


def _decode_regular(head: bytes, lines: int) -> tuple[Headers, tuple[str, ...]]:
    """Decode a block of ``lines`` lines for which :func:`_regular_lines` holds.

    A few C-level passes over the whole block instead of a loop per line.
    """
    flat = head.decode("utf-8", "replace").replace("\n", ": ").split(": ")
    names = flat[0::2]
    if len(flat) != lines + lines or "" in names:
        # Some "Name:value" without the space, or an empty name: be exact.
        return _decode_plain_headers_slow(head)
    values = flat[1::2]
    joined = "\n".join(values)
    if "%" in joined:
        # URL-decode all values in one call. FreeSWITCH encodes '=' as %3D, so
        # with no literal '=' and only well-formed %XX escapes, turning '%' into
        # '=' makes this quoted-printable, which a2b_qp decodes in C (its other
        # rules only concern '=' and, in header mode, '_').
        raw = joined.encode("utf-8")
        if b"=" in raw or _BAD_ESCAPE.search(raw) is not None:
            return _decode_plain_headers_slow(head)
        sep = "\n"
        if b"%0" in raw and (b"%0A" in raw or b"%0a" in raw):
            # A value holds an encoded newline (multi-line app data, SIP
            # headers): separate the values with NUL instead, if none is there.
            if b"\x00" in raw or b"%00" in raw:
                return _decode_plain_headers_slow(head)
            raw = raw.replace(b"\n", b"\x00")
            sep = "\x00"
        decoded = a2b_qp(raw.replace(b"%", b"=")).decode("utf-8", "replace").split(sep)
        if len(decoded) != len(values):  # cannot happen; be exact anyway
            return _decode_plain_headers_slow(head)
        values = decoded
    return tuple(zip(names, values, strict=True)), ()


def decode_plain_headers(head: bytes) -> tuple[Headers, tuple[str, ...]]:
    """Split and URL-decode a plain event's header block (without the final ``\\n\\n``).

    Returns ``(headers, defects)``; lines without ``:`` are skipped and reported
    in ``defects``. The result equals the line-by-line ``unquote`` reference
    decoder for every input (property-tested): the fast path is only taken when
    it provably gives the same result.
    """
    lines = _regular_lines(head)
    if lines:
        return _decode_regular(head, lines)
    return _decode_plain_headers_slow(head)


def parse_plain_event(data: bytes) -> Event:
    """Build an :class:`Event` from a ``text/event-plain`` frame body."""
    if data[-2:] == b"\n\n":
        # The common case, a body-less event: a regular block has no blank
        # line, so this is the first "\n\n" without having to search for it.
        head = data[:-2]
        lines = _regular_lines(head)
        if lines:
            return Event._from_plain(head, lines, False, "")
    end = data.find(b"\n\n")
    if end < 0:
        head, rest = data.rstrip(b"\n"), b""
    else:
        head, rest = data[:end], data[end + 2 :]
    if not head:
        raise EventValidationError("empty event")
    body = rest.decode("utf-8", "replace") if rest else ""
    lines = _regular_lines(head)
    if lines:
        return Event._from_plain(head, lines, bool(rest), body)
    headers, defects = _decode_plain_headers_slow(head)
    if rest and headers and headers[-1][0] == "Content-Length":
        # The serializer appends "Content-Length: N" before the body: framing.
        headers = headers[:-1]
    return Event(headers, body, defects)


# -- JSON -----------------------------------------------------------------


_second = itemgetter(1)


def _json_value(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is list and all(type(item) is str for item in value):
        # FreeSWITCH array header; plain carries it as ARRAY::a|:b.
        return "ARRAY::" + "|:".join(value)
    # Objects decode to tuples (object_pairs_hook), numbers etc. are not allowed.
    raise EventValidationError(f"JSON event header {name!r} is not a string")


def parse_json_event(data: bytes) -> Event:
    """Build an :class:`Event` from a ``text/event-json`` frame body."""
    try:
        # object_pairs_hook keeps repeated keys (and their order); it also makes
        # objects tuples, so they can't be mistaken for arrays (lists).
        pairs = json.loads(data, object_pairs_hook=tuple)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8
        raise EventValidationError(f"bad JSON event: {exc}") from None
    if type(pairs) is not tuple:
        raise EventValidationError("JSON event is not an object")
    body = ""
    try:
        # Fast path: str.join raises TypeError unless every value is a str.
        "".join(map(_second, pairs))
    except TypeError:
        pass
    else:
        headers = pairs
        if pairs and pairs[-1][0] == "_body":
            body = pairs[-1][1]
            headers = pairs[:-1]
            if headers and headers[-1][0] == "Content-Length":
                headers = headers[:-1]  # framing added by the serializer
        event = Event(headers, body)
        if "_body" not in event:  # else "_body" was not last: take the general path
            return event
        body = ""
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        if name == "_body":
            body = _json_value(name, value)
            if out and out[-1][0] == "Content-Length":
                out.pop()  # framing added by the serializer, see module doc
        else:
            out.append((name, _json_value(name, value)))
    return Event(tuple(out), body)


# -- XML ------------------------------------------------------------------


def parse_xml_event(data: bytes) -> Event:
    """Build an :class:`Event` from a ``text/event-xml`` frame body."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise EventValidationError(f"bad XML event: {exc}") from None
    if root.tag != "event":
        raise EventValidationError(f"XML event root is <{root.tag}>")
    hdr_el = root.find("headers")
    if hdr_el is None:
        raise EventValidationError("XML event without <headers>")
    headers = []
    for el in hdr_el:
        value = el.text or ""
        headers.append((el.tag, unquote(value) if "%" in value else value))
    body = ""
    body_el = root.find("body")
    if body_el is not None:
        text = body_el.text or ""
        length = root.findtext("Content-Length")
        if length is not None and length.strip().isdigit():
            # Cut off the pretty printer's indentation after the real body.
            raw = text.encode("utf-8")[: int(length)]
            text = raw.decode("utf-8", "replace")
        body = text
    return Event(tuple(headers), body)


_PARSERS: Final = {
    EVENT_PLAIN: parse_plain_event,
    EVENT_JSON: parse_json_event,
    EVENT_XML: parse_xml_event,
}


def is_event_frame(frame: Frame) -> bool:
    """True for ``text/event-plain|json|xml`` frames."""
    return frame.content_type in _PARSERS


def event_from_frame(frame: Frame) -> Event:
    """Build the :class:`Event` carried by an event frame.

    Raises :class:`EventValidationError` if the frame is not an event frame or
    its content is not a valid event.
    """
    parser = _PARSERS.get(frame.content_type)
    if parser is None:
        raise EventValidationError(f"not an event frame: {frame.content_type!r}")
    return parser(frame.body)


def event_from_headers(frame: Frame) -> Event:
    """Build an :class:`Event` from a frame's *outer* headers.

    Used for the outbound ``connect`` reply, whose header block is the channel
    data (``Event-Name: CHANNEL_DATA``, ``Unique-ID``, every ``variable_*``).
    """
    return Event(frame.headers, frame.text)
