"""Byte-exact ESL message encoders: what FreeSWITCH 1.10 writes on the event socket.

Pure functions, no I/O. Parsing is :mod:`telephony.esl.frames`' job; this is the
other direction, and the fixture-replay tests parse what these functions write
with that parser, so both sides are checked against the captures.

Contracts (README of the FreeSWITCH fixtures, "Protocol facts"):

* ``command/reply``: ``Content-Type`` then ``Reply-Text`` (bgapi adds ``Job-UUID``).
* ``api/response``: ``Content-Type`` then ``Content-Length``, then the body.
* events: ``Content-Length`` *first*, then ``Content-Type``; the plain form
  URL-encodes every value with :func:`url_encode` (FreeSWITCH's
  ``switch_url_encode``), the JSON form is a flat object of strings with the body
  under ``_body``, the XML form is indented and URL-encodes values too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Final

Headers = Sequence[tuple[str, str]]

GOODBYE: Final = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
SHUTDOWN_NOTICE: Final = "The system is being shut down.\n"

# switch_utils.c: characters switch_url_encode always escapes; anything outside
# printable ASCII (so every UTF-8 byte of a non-ASCII character) is escaped too.
_URL_UNSAFE: Final = frozenset(b'\r\n "#%&+:;<=>?@[\\]^`{|}')
_SAFE_TABLE: Final = [
    chr(b) if 0x20 <= b <= 0x7E and b not in _URL_UNSAFE else f"%{b:02X}" for b in range(256)
]


def url_encode(value: str) -> str:
    """URL-encode ``value`` exactly like FreeSWITCH does in plain events.

    ``/``, ``(``, ``)``, ``,``, ``.``, ``-``, ``_``, ``'`` and ``~`` stay as they
    are; space is ``%20`` (never ``+``), ``:`` is ``%3A``, ``%`` is ``%25``.
    """
    if value.isascii() and value.isalnum():
        return value
    return "".join(_SAFE_TABLE[b] for b in value.encode("utf-8"))


def command_reply(text: str, *extra: tuple[str, str]) -> bytes:
    """A ``command/reply`` message (``extra`` headers follow ``Reply-Text``)."""
    lines = ["Content-Type: command/reply", f"Reply-Text: {text}"]
    lines.extend(f"{k}: {v}" for k, v in extra)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(body: str | bytes) -> bytes:
    """An ``api/response`` message carrying ``body`` verbatim."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


AUTH_REQUEST: Final = b"Content-Type: auth/request\n\n"


def log_data(level: int, text: str, file: str, func: str, line: int) -> bytes:
    """A ``log/data`` message (header order as captured in 01)."""
    data = text.encode("utf-8")
    head = (
        f"Content-Type: log/data\nContent-Length: {len(data)}\nLog-Level: {level}\n"
        f"Text-Channel: 3\nLog-File: {file}\nLog-Func: {func}\nLog-Line: {line}\nUser-Data: \n\n"
    )
    return head.encode("utf-8") + data


def disconnect_notice(body: str = GOODBYE) -> bytes:
    """The inbound-connection ``text/disconnect-notice`` (goodbye or shutdown)."""
    data = body.encode("utf-8")
    return (b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(data)) + data


def outbound_disconnect_notice(
    uuid: str, *, linger: int | None = None, channel_name: str = ""
) -> bytes:
    """The outbound-socket notice: ``linger`` (no body) or ``disconnect`` (goodbye).

    ``linger`` is the linger time (-1 for "forever") for the linger form, None for
    the final disconnect form.
    """
    lines = [
        "Content-Type: text/disconnect-notice",
        f"Controlled-Session-UUID: {uuid}",
    ]
    if linger is not None:
        lines += [
            "Content-Disposition: linger",
            f"Channel-Name: {channel_name}",
            f"Linger-Time: {linger}",
            "Content-Length: 0",
        ]
        return ("\n".join(lines) + "\n\n").encode("utf-8")
    data = GOODBYE.encode("utf-8")
    lines += ["Content-Disposition: disconnect", f"Content-Length: {len(data)}"]
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data


def serialize_plain(headers: Headers, body: str | None = None) -> str:
    """The ``text/event-plain`` serialisation (``switch_event_serialize``)."""
    parts = [f"{name}: {url_encode(value)}\n" for name, value in headers]
    if body is not None:
        parts.append(f"Content-Length: {len(body.encode('utf-8'))}\n\n{body}")
    else:
        parts.append("\n")
    return "".join(parts)


def serialize_json(headers: Headers, body: str | None = None) -> str:
    """The ``text/event-json`` serialisation (cJSON, unformatted, duplicate keys kept)."""
    items = [
        f"{json.dumps(k, ensure_ascii=False)}:{json.dumps(v, ensure_ascii=False)}"
        for k, v in headers
    ]
    if body is not None:
        items.append(f'"Content-Length":"{len(body.encode("utf-8"))}"')
        items.append(f'"_body":{json.dumps(body, ensure_ascii=False)}')
    return "{" + ",".join(items) + "}"


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def serialize_xml(headers: Headers, body: str | None = None) -> str:
    """The ``text/event-xml`` serialisation (pretty-printed, values URL-encoded)."""
    parts = ["<event>\n  <headers>\n"]
    parts.extend(f"    <{k}>{url_encode(v)}</{k}>\n" for k, v in headers)
    parts.append("  </headers>\n")
    if body is not None:
        parts.append(f"  <Content-Length>{len(body.encode('utf-8'))}</Content-Length>\n")
        parts.append(f"  <body>{_xml_text(body)}  </body>\n")
    parts.append("</event>\n")
    return "".join(parts)


_SERIALIZERS: Final = {
    "plain": (serialize_plain, b"text/event-plain"),
    "json": (serialize_json, b"text/event-json"),
    "xml": (serialize_xml, b"text/event-xml"),
}


def event_message(fmt: str, headers: Headers, body: str | None = None) -> bytes:
    """A complete event message in format ``fmt`` (``plain``, ``json`` or ``xml``)."""
    serializer, ctype = _SERIALIZERS[fmt]
    data = serializer(headers, body).encode("utf-8")
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(data), ctype) + data


def connect_reply(headers: Iterable[tuple[str, str]], *, async_full: bool) -> bytes:
    """The outbound-socket reply to ``connect``: URL-encoded channel data, no Content-Length."""
    lines = [f"{k}: {url_encode(v)}" for k, v in headers]
    lines += ["Content-Type: command/reply", "Reply-Text: %2BOK%0A"]
    if async_full:
        lines += ["Socket-Mode: async", "Control: full"]
    else:
        lines += ["Socket-Mode: static", "Control: single-channel"]
    return ("\n".join(lines) + "\n\n").encode("utf-8")
