"""Call log v1: one row per call, read with per-row validation and written back.

Columns (header required, order free)::

    call_id,queue,priority,arrived_at,queue_entered_at,queue_exited_at,outcome,
    service_started_at,service_ended_at,agent

Times are epoch seconds (decimals allowed); ``outcome`` is ``answered`` or ``abandoned``;
fields that do not apply are empty (an abandoned call has no service times and no agent).
``priority`` is a non-negative integer, empty meaning 0.

A row is *bad*, and is skipped with a reason, when: a required field is missing or not a
number, a time is negative, NaN or infinite, the call entered the queue before it arrived, left
it before entering, an answered call lacks service times, started service before leaving the
queue... (see :func:`parse_row`). Bad rows never raise: callers count and report them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "COLUMNS",
    "BadRow",
    "CallRecord",
    "parse_row",
    "read_call_log",
    "write_call_log",
]

COLUMNS = (
    "call_id",
    "queue",
    "priority",
    "arrived_at",
    "queue_entered_at",
    "queue_exited_at",
    "outcome",
    "service_started_at",
    "service_ended_at",
    "agent",
)
OUTCOMES = frozenset({"answered", "abandoned"})
# Real logs stamp queue exit and service start from different events; allow this much skew.
_SKEW_S = 1e-6


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One validated call. Times are epoch seconds; ``wait_s`` is time spent queueing."""

    call_id: str
    queue: str
    priority: int
    arrived_at: float
    queue_entered_at: float
    queue_exited_at: float
    outcome: str
    service_started_at: float | None
    service_ended_at: float | None
    agent: str | None

    @property
    def wait_s(self) -> float:
        return self.queue_exited_at - self.queue_entered_at

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A rejected row: ``row`` is its 1-based line number in the file (the header is line 1)."""

    row: int
    reason: str


class _Reject(Exception):
    pass


def _time(fields: dict[str, str | None], name: str, *, required: bool) -> float | None:
    raw = (fields.get(name) or "").strip()
    if raw == "":
        if required:
            raise _Reject(f"{name} is empty")
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _Reject(f"{name} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise _Reject(f"{name} is not finite: {raw!r}")
    if value < 0:
        raise _Reject(f"{name} is negative: {raw!r}")
    return value


def parse_row(fields: dict[str, str | None]) -> CallRecord:
    """Validate one CSV row (a ``csv.DictReader`` dict) into a :class:`CallRecord`.

    Raises ``ValueError`` with the reason when the row is bad.
    """
    try:
        call_id = (fields.get("call_id") or "").strip()
        if not call_id:
            raise _Reject("call_id is empty")
        raw_priority = (fields.get("priority") or "").strip()
        try:
            priority = int(raw_priority) if raw_priority else 0
        except ValueError:
            raise _Reject(f"priority is not an integer: {raw_priority!r}") from None
        if priority < 0:
            raise _Reject(f"priority is negative: {raw_priority!r}")
        outcome = (fields.get("outcome") or "").strip().lower()
        if outcome not in OUTCOMES:
            raise _Reject(f"unknown outcome {fields.get('outcome')!r}")
        arrived = _time(fields, "arrived_at", required=True)
        entered = _time(fields, "queue_entered_at", required=True)
        exited = _time(fields, "queue_exited_at", required=True)
        started = _time(fields, "service_started_at", required=outcome == "answered")
        ended = _time(fields, "service_ended_at", required=outcome == "answered")
        assert arrived is not None and entered is not None and exited is not None
        if entered < arrived - _SKEW_S:
            raise _Reject("queue_entered_at is before arrived_at")
        if exited < entered - _SKEW_S:
            raise _Reject("queue_exited_at is before queue_entered_at")
        if outcome == "answered":
            assert started is not None and ended is not None
            if started < exited - _SKEW_S:
                raise _Reject("service_started_at is before queue_exited_at")
            if ended < started - _SKEW_S:
                raise _Reject("service_ended_at is before service_started_at")
        elif started is not None or ended is not None:
            raise _Reject("an abandoned call has service times")
        agent = (fields.get("agent") or "").strip() or None
        return CallRecord(
            call_id=call_id,
            queue=(fields.get("queue") or "").strip(),
            priority=priority,
            arrived_at=arrived,
            queue_entered_at=entered,
            queue_exited_at=max(exited, entered),
            outcome=outcome,
            service_started_at=started,
            service_ended_at=ended,
            agent=agent,
        )
    except _Reject as exc:
        raise ValueError(str(exc)) from None


def read_call_log(handle: TextIO) -> tuple[list[CallRecord], list[BadRow]]:
    """Read a call log v1 CSV from an open text handle.

    Returns the good records (file order) and the bad rows with their line numbers. A missing
    required column makes every row bad (reported once, as row 1). Duplicate ``call_id`` rows
    after the first are bad. Never raises on content.
    """
    reader = csv.DictReader(handle)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        return [], [BadRow(1, f"header lacks column(s): {', '.join(missing)}")]
    records: list[CallRecord] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for fields in reader:
        row = reader.line_num
        try:
            record = parse_row(fields)
        except ValueError as exc:
            bad.append(BadRow(row, str(exc)))
            continue
        if record.call_id in seen:
            bad.append(BadRow(row, f"duplicate call_id {record.call_id!r}"))
            continue
        seen.add(record.call_id)
        records.append(record)
    return records, bad


def _cell(value: float | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_rows(records: Iterable[CallRecord]) -> Iterator[list[str]]:
    """Header then one list of cells per record, times at millisecond precision."""
    yield list(COLUMNS)
    for r in records:
        yield [
            r.call_id,
            r.queue,
            str(r.priority),
            _cell(r.arrived_at),
            _cell(r.queue_entered_at),
            _cell(r.queue_exited_at),
            r.outcome,
            _cell(r.service_started_at),
            _cell(r.service_ended_at),
            _cell(r.agent),
        ]


def write_call_log(handle: TextIO, records: Iterable[CallRecord]) -> None:
    """Write records as call log v1 CSV to an open text handle (newline='' recommended)."""
    csv.writer(handle, lineterminator="\n").writerows(format_rows(records))
