"""Channel model and FreeSWITCH-shaped event construction (no I/O).

A :class:`Channel` holds what ``switch_channel_event_set_data`` reads: state,
call state, caller profile, times, the other leg's profile and the variables.
:func:`channel_headers` renders them in FreeSWITCH's header order; empty profile
fields are omitted, as ``switch_caller_profile_event_set_data`` does, which is
why e.g. ``Caller-Caller-ID-Name`` is absent for a caller without a name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

CHANNEL_STATES: Final = (
    "CS_NEW", "CS_INIT", "CS_ROUTING", "CS_SOFT_EXECUTE", "CS_EXECUTE", "CS_EXCHANGE_MEDIA",
    "CS_PARK", "CS_CONSUME_MEDIA", "CS_HIBERNATE", "CS_RESET", "CS_HANGUP", "CS_REPORTING",
    "CS_DESTROY", "CS_NONE",
)  # fmt: skip
CALL_STATES: Final = (
    "DOWN", "DIALING", "RINGING", "EARLY", "ACTIVE", "HELD", "RING_WAIT", "HANGUP", "UNHELD",
)  # fmt: skip

#: Q.850 codes of the hangup causes the simulator produces (switch_channel.c CAUSE_CHART).
Q850: Final = {
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "DESTINATION_OUT_OF_ORDER": 27,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "CHAN_NOT_IMPLEMENTED": 66,
    "ORIGINATOR_CANCEL": 487,
    "LOSE_RACE": 502,
    "USER_NOT_REGISTERED": 606,
    "SYSTEM_SHUTDOWN": 503,
    "MANAGER_REQUEST": 503,
}

#: Events for which FreeSWITCH appends the channel variables (switch_channel.c,
#: switch_channel_event_set_extended_data): CHANNEL_STATE, CALLSTATE, DTMF,
#: OUTGOING... carry only the basic channel data.
EVENTS_WITH_VARIABLES: Final = frozenset(
    {
        "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_ANSWER",
        "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
        "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DATA", "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_DESTROY", "API", "RECORD_START", "RECORD_STOP",
        "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "MEDIA_BUG_START", "MEDIA_BUG_STOP",
        "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CUSTOM",
    }
)  # fmt: skip

#: ``Event-Calling-File/Function/Line`` per event: cosmetic, but clients log them.
CALLING: Final = {
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2408"),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", "301"),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "628"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3469"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3604"),
    "CHANNEL_HANGUP_COMPLETE": (
        "switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1741"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2974"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "3006"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1011"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1254"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", "1689"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", "1755"),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "764"),
    "CHANNEL_ORIGINATE": ("switch_ivr_originate.c", "switch_ivr_originate", "2796"),
    "CHANNEL_UUID": ("switch_core_session.c", "switch_core_session_set_uuid", "2214"),
    "CHANNEL_HOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1558"),
    "CHANNEL_UNHOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1558"),
    "CALL_UPDATE": ("switch_channel.c", "switch_channel_perform_flip_cid", "3509"),
    "DTMF": ("switch_channel.c", "switch_channel_queue_dtmf", "519"),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1399"),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1905"),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", "1232"),
    "RECORD_STOP": ("switch_ivr_async.c", "record_callback", "1396"),
    "MEDIA_BUG_START": ("switch_core_media_bug.c", "switch_core_media_bug_add", "1010"),
    "MEDIA_BUG_STOP": ("switch_core_media_bug.c", "switch_core_media_bug_close", "598"),
    "API": ("switch_loadable_module.c", "switch_api_execute", "2954"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", "95"),
    "RE_SCHEDULE": ("switch_scheduler.c", "switch_scheduler_execute", "73"),
    "COMMAND": ("switch_ivr_async.c", "switch_ivr_broadcast", "5731"),
    "PRIVATE_COMMAND": ("switch_ivr.c", "switch_ivr_parse_next_event", "804"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2090"),
    "SHUTDOWN": ("switch_core.c", "switch_core_destroy", "3070"),
    "CUSTOM": ("mod_event_socket.c", "parse_command", "2275"),
}  # fmt: skip

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def stamp(epoch: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC: the simulated node runs on UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def gmt_date(epoch: float) -> str:
    """``Wed, 25 Nov 2026 19:01:10 GMT`` (``Event-Date-GMT``)."""
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


@dataclass
class Profile:
    """A caller profile (``Caller-*`` / ``Other-Leg-*`` headers). Times are µs epochs."""

    direction: str
    destination_number: str
    caller_id_name: str = ""
    caller_id_number: str = ""
    orig_caller_id_name: str = ""
    orig_caller_id_number: str = ""
    callee_id_name: str = ""
    callee_id_number: str = ""
    ani: str = ""
    source: str = "mod_loopback"
    transfer_source: str = ""
    context: str = "default"
    rdnis: str = ""
    dialplan: str = "xml"
    profile_index: int = 1
    created: int = 0
    channel_created: int = 0
    answered: int = 0
    progress: int = 0
    progress_media: int = 0
    hangup: int = 0
    transfer: int = 0
    bridged: int = 0
    last_hold: int = 0
    hold_accum: int = 0

    def headers(self, prefix: str, unique_id: str, channel_name: str) -> list[tuple[str, str]]:
        """The profile's headers in ``switch_caller_profile_event_set_data`` order."""
        out: list[tuple[str, str]] = []

        def add(name: str, value: str) -> None:
            if value:
                out.append((f"{prefix}-{name}", value))

        add("Direction", self.direction)
        add("Logical-Direction", self.direction)
        add("Dialplan", self.dialplan)
        add("Caller-ID-Name", self.caller_id_name)
        add("Caller-ID-Number", self.caller_id_number)
        add("Orig-Caller-ID-Name", self.orig_caller_id_name)
        add("Orig-Caller-ID-Number", self.orig_caller_id_number)
        add("Callee-ID-Name", self.callee_id_name)
        add("Callee-ID-Number", self.callee_id_number)
        add("ANI", self.ani)
        add("Destination-Number", self.destination_number)
        add("Unique-ID", unique_id)
        add("Source", self.source)
        if prefix != "Other-Leg":
            add("Transfer-Source", self.transfer_source)
        add("Context", self.context)
        if prefix != "Other-Leg":
            add("RDNIS", self.rdnis)
        add("Channel-Name", channel_name)
        if prefix != "Other-Leg":
            add("Profile-Index", str(self.profile_index))
        for name, value in (
            ("Profile-Created-Time", self.created),
            ("Channel-Created-Time", self.channel_created),
            ("Channel-Answered-Time", self.answered),
            ("Channel-Progress-Time", self.progress),
            ("Channel-Progress-Media-Time", self.progress_media),
            ("Channel-Hangup-Time", self.hangup),
            ("Channel-Transfer-Time", self.transfer),
            ("Channel-Resurrect-Time", 0),
            ("Channel-Bridged-Time", self.bridged),
            ("Channel-Last-Hold", self.last_hold),
            ("Channel-Hold-Accum", self.hold_accum),
        ):
            out.append((f"{prefix}-{name}", str(value)))
        out += [
            (f"{prefix}-Screen-Bit", "true"),
            (f"{prefix}-Privacy-Hide-Name", "false"),
            (f"{prefix}-Privacy-Hide-Number", "false"),
        ]
        return out


@dataclass(eq=False)
class Channel:
    """One call leg. Mutated only by :class:`telephony.simulator.switch.Switch`."""

    uuid: str
    name: str
    profile: Profile
    session_id: int
    state: str = "CS_NEW"
    callstate: str = "DOWN"
    answer_state: str = "ringing"
    hit_dialplan: bool = False
    hangup_cause: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    other_type: str = ""
    other_profile: Profile | None = None
    other_uuid: str = ""
    other_name: str = ""
    # Simulator bookkeeping (not headers).
    loopback_peer: Channel | None = None
    bridged_to: Channel | None = None
    is_loopback: bool = False
    parked: bool = False
    current_app: str = ""
    current_app_data: str = ""
    current_app_uuid: str = ""
    held: bool = False
    recording: str = ""
    socket_session: object | None = None
    dtmf_buffer: list[str] = field(default_factory=list)
    #: (application, data, µs stamp) of every application run (CDR ``app_log``).
    app_log: list[tuple[str, str, int]] = field(default_factory=list)
    #: (extension, [(app, data)]) the dialplan routed to (CDR ``callflow``).
    extension: tuple[str, list[tuple[str, str]]] | None = None
    created_us: int = 0
    answered_us: int = 0
    progress_us: int = 0
    progress_media_us: int = 0
    bridged_us: int = 0
    hangup_us: int = 0
    transfer_us: int = 0
    last_hold_us: int = 0
    hold_accum_us: int = 0

    @property
    def alive(self) -> bool:
        """True until the channel starts hanging up."""
        return not self.hangup_cause

    @property
    def direction(self) -> str:
        return self.profile.direction

    def basic_headers(self) -> list[tuple[str, str]]:
        """``switch_channel_event_set_basic_data`` + profile headers (no variables)."""
        h = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.callstate),
            ("Channel-State-Number", str(CHANNEL_STATES.index(self.state))),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.variables.get("call_uuid", self.uuid)),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            h.append(("Hangup-Cause", self.hangup_cause))
        for prefix in ("Channel-Read-Codec", "Channel-Write-Codec"):
            h += [(f"{prefix}-Name", "L16"), (f"{prefix}-Rate", "8000"),
                  (f"{prefix}-Bit-Rate", "128000")]  # fmt: skip
        p = self.profile
        p.channel_created = p.created = p.created or self.created_us
        p.answered, p.progress, p.progress_media = (
            self.answered_us, self.progress_us, self.progress_media_us)  # fmt: skip
        p.hangup, p.transfer, p.bridged = self.hangup_us, self.transfer_us, self.bridged_us
        p.last_hold, p.hold_accum = self.last_hold_us, self.hold_accum_us
        h += p.headers("Caller", self.uuid, self.name)
        if self.other_profile is not None:
            h.append(("Other-Type", self.other_type))
            h += self.other_profile.headers("Other-Leg", self.other_uuid, self.other_name)
        return h

    def data_headers(self, with_variables: bool) -> list[tuple[str, str]]:
        """Basic data plus, if asked, every ``variable_*`` in insertion order."""
        h = self.basic_headers()
        if with_variables:
            h += [(f"variable_{k}", v) for k, v in self.variables.items()]
        return h

    def set_timestamps(self, end_us: int) -> None:
        """Set the CDR timing variables at CS_REPORTING (``switch_channel_set_timestamps``).

        Seconds are differences of whole-second epochs and milliseconds of
        whole-millisecond epochs, exactly like FreeSWITCH, so ``billsec ==
        end_epoch - answer_epoch`` always holds.
        """
        v = self.variables
        created, answered = self.created_us, self.answered_us
        v["hangup_cause"] = self.hangup_cause
        v["hangup_cause_q850"] = str(Q850.get(self.hangup_cause, 16))
        v["start_stamp"] = stamp(created / 1e6)
        v["profile_start_stamp"] = stamp(created / 1e6)
        if answered:
            v["answer_stamp"] = stamp(answered / 1e6)
        if self.bridged_us:
            v["bridge_stamp"] = stamp(self.bridged_us / 1e6)
        if self.progress_us:
            v["progress_stamp"] = stamp(self.progress_us / 1e6)
        v["end_stamp"] = stamp(end_us / 1e6)

        def ep(name: str, us: int) -> None:
            v[f"{name}_epoch"] = str(us // 1_000_000)
            v[f"{name}_uepoch"] = str(us)

        ep("start", created)
        ep("profile_start", created)
        ep("answer", answered)
        ep("bridge", self.bridged_us)
        ep("last_hold", self.last_hold_us)
        v["hold_accum_seconds"] = str(self.hold_accum_us // 1_000_000)
        v["hold_accum_usec"] = str(self.hold_accum_us)
        v["hold_accum_ms"] = str(self.hold_accum_us // 1000)
        ep("resurrect", 0)
        ep("progress", self.progress_us)
        ep("progress_media", self.progress_media_us)
        ep("end", end_us)
        if self.current_app:
            v["last_app"] = self.current_app
            v["last_arg"] = self.current_app_data
        p = self.profile
        v["caller_id"] = f'"{p.caller_id_name}" <{p.caller_id_number}>'

        def diff(a: int, b: int, unit: int) -> str:
            return str(a // unit - b // unit) if a and b else "0"

        for suffix, unit in (("sec", 1_000_000), ("msec", 1000), ("usec", 1)):
            name = {"sec": "duration", "msec": "mduration", "usec": "uduration"}[suffix]
            v[name] = diff(end_us, created, unit)
            v[f"bill{suffix}"] = diff(end_us, answered, unit)
            v[f"progress{suffix}"] = diff(self.progress_us, created, unit)
            v[f"answer{suffix}"] = diff(answered, created, unit)
            v[f"wait{suffix}"] = diff(self.bridged_us, created, unit)
            v[f"progress_media{suffix}"] = diff(self.progress_media_us, created, unit)
            v[f"flow_bill{suffix}"] = diff(end_us, created, unit)
