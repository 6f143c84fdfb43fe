"""The disposition policy: what a leg costs, by how it ended.

Policy (decided in docs/decisions/0007-rating-rules.md; tests name each rule):

=====================================  ===========================================================
situation                              billed
=====================================  ===========================================================
answered segment, any hangup cause     its full duration, after the kind's increments and minimum
                                       (``NORMAL_CLEARING``, ``USER_BUSY``, ``ORIGINATOR_CANCEL``,
                                       ``NO_USER_RESPONSE``, ``MEDIA_TIMEOUT``... all alike)
answered segment of 0 ms               nothing (no minimum, no connect fee): no time was used
very long answered segment             its full duration, never capped, never wrapped; segments of
                                       :data:`LONG_SEGMENT_MS` or more are *flagged* for review
                                       (a stuck channel?) but their amount is unchanged
unanswered leg (attempt record)        nothing, with one exception:
unanswered ``callback_dial`` attempt   the plan's ``attempt_fee`` for that rate, when the cause
                                       shows the network reached the caller's line
                                       (:data:`ATTEMPT_FEE_CAUSES`); free otherwise, and free when
                                       the plan sets no attempt fee (the default)
=====================================  ===========================================================

Why the cause never matters once a leg is answered: a segment is answered time by definition
(segments.md), and the resources were used whatever ended the call. A cause says who hung up or
why, not whether the minutes happened. Rating systems that bill only ``NORMAL_CLEARING`` (ASTPP
rated an answered 72-second call at 0 because its cause was ``USER_BUSY``) lose revenue silently
and make the invoice disagree with the CDRs' billsec; rating that packs durations into a small
field (ASTPP billed calls over ~4,500 s as 1 s) does the same for the longest, dearest calls.
Here durations are unbounded Python ints and the cause is not consulted for answered time.

Why attempts are free except callback dials: an unanswered inbound leg consumed nothing the
client asked for. A callback is an outbound call the platform places on the client's behalf; the
carrier may charge a set-up for a call that rang or was refused, so a plan may pass that on. The
allow-list errs in the client's favour: an unknown or platform-side cause (``SYSTEM_SHUTDOWN``,
``NORMAL_TEMPORARY_FAILURE``, ``UNALLOCATED_NUMBER``...) is free.

Platform faults on answered calls (``MEDIA_TIMEOUT`` after answer) are still billed by time:
service credits are issued as credit notes under the SLA, not by silently zeroing rated usage.
"""

from __future__ import annotations

from enum import StrEnum

from .segment import Segment, SegmentKind

__all__ = [
    "ATTEMPT_FEE_CAUSES",
    "LONG_SEGMENT_MS",
    "Disposition",
    "classify",
]

#: Answered segments at least this long are flagged for review (4 hours); billing is unchanged.
LONG_SEGMENT_MS = 4 * 3600 * 1000

#: Causes of an unanswered callback dial that may carry the plan's attempt fee: the caller's line
#: was reached (it rang, was busy, or refused the call).
ATTEMPT_FEE_CAUSES: frozenset[str] = frozenset(
    {
        "USER_BUSY",
        "NO_ANSWER",
        "NO_USER_RESPONSE",
        "CALL_REJECTED",
        "SUBSCRIBER_ABSENT",
        # The platform stopped ringing (originate timeout / cancel): the caller's phone rang.
        "ORIGINATOR_CANCEL",
    }
)


class Disposition(StrEnum):
    """How the policy treats one segment."""

    #: Answered, non-zero time: billed by time (+ connect fee).
    BILLED = "billed"
    #: Answered but zero-length: nothing billed.
    ZERO_LENGTH = "zero_length"
    #: Unanswered callback dial that carries the attempt fee (if the plan sets one).
    ATTEMPT_FEE = "attempt_fee"
    #: Unanswered leg: nothing billed.
    NOT_BILLED = "not_billed"


def classify(segment: Segment) -> Disposition:
    """Apply the policy above to one segment. Pure; depends on nothing but the segment."""
    if segment.answered:
        if segment.end_ms > segment.start_ms:
            return Disposition.BILLED
        return Disposition.ZERO_LENGTH
    if (
        segment.kind is SegmentKind.CALLBACK_DIAL
        and segment.hangup_cause.upper() in ATTEMPT_FEE_CAUSES
    ):
        return Disposition.ATTEMPT_FEE
    return Disposition.NOT_BILLED
