"""Call segments as the rating core sees them (see shared/design/segments.md).

A segment is a span of *answered* time of one leg, of one kind; segments.md is authoritative on
where each kind starts and ends. The core only needs what pricing and the disposition policy use;
the ledger keeps the rest (node, second-line target).

Times are integer milliseconds since the Unix epoch, UTC, taken from the switch's event
timestamps. They are never floats: durations are computed as ``end_ms - start_ms`` in Python's
unbounded integers, so a 24-hour (or 30-day) segment is just a larger number, with no 16- or
32-bit field to wrap around.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import InvalidSegmentError, SegmentTimeError, UnknownKindError, UnknownOriginError

__all__ = ["Origin", "Segment", "SegmentKind", "parse_kind", "parse_origin"]


class SegmentKind(StrEnum):
    """What a span of a call used; the unit a rate plan prices."""

    IVR = "ivr"
    QUEUE = "queue"
    AGENT = "agent"
    HANDOFF = "handoff"
    ESCALATION = "escalation"
    CALLBACK_DIAL = "callback_dial"


class Origin(StrEnum):
    """How the call reached the platform; rate plans may override a kind's price per origin."""

    DIRECT = "direct"
    OVERFLOW = "overflow"
    CALLBACK = "callback"


_KIND_NAMES = ", ".join(k.value for k in SegmentKind)
_ORIGIN_NAMES = ", ".join(o.value for o in Origin)


def parse_kind(value: object) -> SegmentKind:
    """Return ``value`` as a :class:`SegmentKind`; raise :class:`UnknownKindError` otherwise."""
    if isinstance(value, SegmentKind):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return SegmentKind(value)
    except ValueError:
        raise UnknownKindError(
            f"unknown segment kind {value!r}; expected one of {_KIND_NAMES}"
        ) from None


def parse_origin(value: object) -> Origin:
    """Return ``value`` as an :class:`Origin`; raise :class:`UnknownOriginError` otherwise."""
    if isinstance(value, Origin):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return Origin(value)
    except ValueError:
        raise UnknownOriginError(
            f"unknown call origin {value!r}; expected one of {_ORIGIN_NAMES}"
        ) from None


@dataclass(frozen=True, slots=True)
class Segment:
    """One metered span of a leg, validated on construction.

    Contract:

    * ``kind`` and ``origin`` may be passed as strings; they are stored as the enums. Anything
      else raises :class:`UnknownKindError` / :class:`UnknownOriginError`.
    * ``start_ms`` and ``end_ms`` are ``int`` epoch milliseconds (UTC), ``0 <= start_ms <=
      end_ms``; a float, a bool or a reversed span raises :class:`SegmentTimeError`. A zero-length
      segment is valid (a queue entry and a bridge in the same millisecond) and bills nothing.
    * ``answered`` is ``True`` for every segment in the segments.md sense. ``False`` marks an
      *attempt record* made from an unanswered leg's CDR (its span is ring time): it is never
      billed by time; see :mod:`billing.rating.disposition` for the one fee it may carry.
    * ``hangup_cause`` is the FreeSWITCH hangup cause of the leg (``NORMAL_CLEARING``,
      ``USER_BUSY``...). It never changes what an answered segment costs.
    * ``tenant_id``, ``call_id`` and ``leg_uuid`` are non-empty strings. ``(leg_uuid, kind,
      start_ms)`` identifies a segment: feeding the same one twice into a period rating raises
      :class:`~billing.rating.errors.DuplicateSegmentError`.
    """

    tenant_id: str
    call_id: str
    leg_uuid: str
    kind: SegmentKind
    origin: Origin
    start_ms: int
    end_ms: int
    answered: bool = True
    hangup_cause: str = "NORMAL_CLEARING"
    agent: str | None = None
    queue: str | None = None

    def __post_init__(self) -> None:
        # Normalise str -> enum so that equality, hashing and lookups downstream are cheap and
        # a typo fails here, at the ingest boundary, rather than at invoice time.
        if type(self.kind) is not SegmentKind:
            object.__setattr__(self, "kind", parse_kind(self.kind))
        if type(self.origin) is not Origin:
            object.__setattr__(self, "origin", parse_origin(self.origin))
        start, end = self.start_ms, self.end_ms
        # type() rather than isinstance(): bool is an int subclass and must not pass as a time.
        if type(start) is not int or type(end) is not int:
            raise SegmentTimeError(
                f"segment {self.leg_uuid}/{self.kind}: start_ms and end_ms must be int epoch "
                f"milliseconds, got {type(start).__name__} {start!r} and "
                f"{type(end).__name__} {end!r}"
            )
        if start < 0:
            raise SegmentTimeError(
                f"segment {self.leg_uuid}/{self.kind}: start_ms {start} is before the epoch"
            )
        if end < start:
            raise SegmentTimeError(
                f"segment {self.leg_uuid}/{self.kind} ends before it starts: "
                f"start_ms={start}, end_ms={end} ({end - start} ms)"
            )
        for name in ("tenant_id", "call_id", "leg_uuid"):
            value = getattr(self, name)
            if type(value) is not str or not value:
                raise InvalidSegmentError(
                    f"segment {name} must be a non-empty string, got {value!r}"
                )
        if type(self.answered) is not bool:
            raise InvalidSegmentError(f"segment answered must be a bool, got {self.answered!r}")
        if type(self.hangup_cause) is not str:
            raise InvalidSegmentError(
                f"segment hangup_cause must be a string, got {self.hangup_cause!r}"
            )

    @property
    def duration_ms(self) -> int:
        """Length of the span in milliseconds (``end_ms - start_ms``, never negative)."""
        return self.end_ms - self.start_ms

    @property
    def key(self) -> tuple[str, SegmentKind, int]:
        """The identity the ledger makes unique: ``(leg_uuid, kind, start_ms)``."""
        return (self.leg_uuid, self.kind, self.start_ms)
