"""Parsers for the JSON output of ``show channels as json`` and ``show calls as json``.

A reconnecting switchboard uses these to reconcile its view of live calls after
a reconnection (and to learn that every call is gone after a restart).

Contract: the body is FreeSWITCH's JSON (``{"row_count": 0}`` when empty, with
a space; ``{"row_count":N,"rows":[...]}`` otherwise), every row value a string.
Anything else raises :class:`ShowFormatError` (a ``ValueError``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CallRow",
    "ChannelRow",
    "ShowFormatError",
    "parse_show_calls",
    "parse_show_channels",
    "parse_show_rows",
]


class ShowFormatError(ValueError):
    """The body is not the JSON of a ``show ... as json`` command."""


def parse_show_rows(body: str | bytes) -> list[Mapping[str, str]]:
    """Rows of a ``show <what> as json`` body, validated (see module docstring)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ShowFormatError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("row_count"), int):
        raise ShowFormatError("no integer row_count")
    rows = data.get("rows", [])
    if not isinstance(rows, list) or len(rows) != data["row_count"]:
        raise ShowFormatError(
            f"row_count {data['row_count']} but {len(rows) if isinstance(rows, list) else 'no'} rows"
        )
    out: list[Mapping[str, str]] = []
    for row in rows:
        if not isinstance(row, dict) or not all(isinstance(v, str) for v in row.values()):
            raise ShowFormatError("a row is not an object of strings")
        out.append(MappingProxyType(row))
    return out


def _opt(value: str | None) -> str | None:
    return value or None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One row of ``show channels as json``: a live channel (leg)."""

    uuid: str
    name: str
    direction: str
    state: str
    callstate: str
    call_uuid: str | None
    created_epoch: int | None
    cid_name: str
    cid_num: str
    dest: str
    context: str
    application: str
    application_data: str
    raw: Mapping[str, str]

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> ChannelRow:
        """Build from one JSON row (missing fields become empty)."""
        if not row.get("uuid"):
            raise ShowFormatError("channel row without uuid")
        return cls(
            uuid=row["uuid"],
            name=row.get("name", ""),
            direction=row.get("direction", ""),
            state=row.get("state", ""),
            callstate=row.get("callstate", ""),
            call_uuid=_opt(row.get("call_uuid")),
            created_epoch=_int(row.get("created_epoch")),
            cid_name=row.get("cid_name", ""),
            cid_num=row.get("cid_num", ""),
            dest=row.get("dest", ""),
            context=row.get("context", ""),
            application=row.get("application", ""),
            application_data=row.get("application_data", ""),
            raw=row,
        )


@dataclass(frozen=True, slots=True)
class CallRow:
    """One row of ``show calls as json``: a leg and, if bridged, its peer (``b_*``)."""

    uuid: str
    name: str
    state: str
    callstate: str
    call_uuid: str | None
    created_epoch: int | None
    b_uuid: str | None
    b_name: str | None
    b_state: str | None
    b_callstate: str | None
    call_created_epoch: int | None
    raw: Mapping[str, str]

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> CallRow:
        """Build from one JSON row (an unbridged leg has empty ``b_*`` fields -> None)."""
        if not row.get("uuid"):
            raise ShowFormatError("call row without uuid")
        return cls(
            uuid=row["uuid"],
            name=row.get("name", ""),
            state=row.get("state", ""),
            callstate=row.get("callstate", ""),
            call_uuid=_opt(row.get("call_uuid")),
            created_epoch=_int(row.get("created_epoch")),
            b_uuid=_opt(row.get("b_uuid")),
            b_name=_opt(row.get("b_name")),
            b_state=_opt(row.get("b_state")),
            b_callstate=_opt(row.get("b_callstate")),
            call_created_epoch=_int(row.get("call_created_epoch")),
            raw=row,
        )


def parse_show_channels(body: str | bytes) -> list[ChannelRow]:
    """Parse ``show channels as json``."""
    return [ChannelRow.from_row(row) for row in parse_show_rows(body)]


def parse_show_calls(body: str | bytes) -> list[CallRow]:
    """Parse ``show calls as json``."""
    return [CallRow.from_row(row) for row in parse_show_rows(body)]
