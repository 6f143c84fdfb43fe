"""The configuration the call flow reads: numbers, tenants' call plans, queues, agent seats.

Plain frozen dataclasses, no Django: the switchboard is handed one :class:`Directory` at start
and a new one whenever the configuration changes (``telephony.switchboard_db.load_directory``
builds it from the database; tests build it by hand). Nothing here does I/O.

Actions (what a menu option, a timeout or a rule does) are short strings, validated here so a
typo fails when the directory is built, not in the middle of a call:

``queue:<queue_id>``   join a queue of the same tenant
``menu:<menu_id>``     go to another menu of the same tenant
``say:<text>``         speak ``text`` (text-to-speech on the switch), then return to the menu
``answer``             self-service: speak the caller-lookup answer, then offer the menu again
``escalate``           bridge to the tenant's second line
``voicemail``          leave a message (the tenant's voicemail box)
``hangup``             say goodbye and hang up
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from routing.engine.model import AgentProfile, QueueConfig, TenantConfig

__all__ = [
    "ACTION_KINDS",
    "AgentSeat",
    "BusinessHours",
    "Directory",
    "LookupWebhook",
    "Menu",
    "MenuOption",
    "NumberRoute",
    "Prompt",
    "TenantCallPlan",
    "check_action",
]

ACTION_KINDS = ("queue", "menu", "say", "answer", "escalate", "voicemail", "hangup")
RECORDING_POLICIES = ("all", "none", "sample", "on_demand")
ORIGINS = ("direct", "overflow")


def check_action(action: str) -> tuple[str, str]:
    """Split ``action`` into ``(kind, argument)``; raise ``ValueError`` naming what is wrong."""
    kind, _, arg = action.partition(":")
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTION_KINDS)}")
    if kind in ("queue", "menu", "say") and not arg:
        raise ValueError(f"action {action!r} needs an argument ({kind}:...)")
    return kind, arg


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the caller hears: an uploaded file (path on the switch) or text to speak."""

    text: str = ""
    file: str = ""

    def __post_init__(self) -> None:
        if bool(self.text) == bool(self.file):
            raise ValueError("a prompt is either text or a file, exactly one of them")

    def app(self) -> tuple[str, str]:
        """The switch application and argument that play it."""
        if self.file:
            return "playback", self.file
        return "speak", f"flite|kal|{self.text}"


@dataclass(frozen=True, slots=True)
class MenuOption:
    digit: str
    action: str

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in "0123456789*#":
            raise ValueError(f"menu digit must be one of 0-9 * #, got {self.digit!r}")
        check_action(self.action)


@dataclass(frozen=True, slots=True)
class Menu:
    """One IVR menu: a prompt, digit options, and what a timeout or wrong digits lead to."""

    menu_id: str
    prompt: Prompt
    options: tuple[MenuOption, ...] = ()
    timeout_s: float = 5.0
    retries: int = 3
    invalid_prompt: Prompt = field(
        default_factory=lambda: Prompt(text="Sorry, that is not an option.")
    )
    on_timeout: str = "hangup"  # after ``retries`` attempts without a valid digit

    def __post_init__(self) -> None:
        if not self.menu_id:
            raise ValueError("menu_id must not be empty")
        if not 0 < self.timeout_s <= 60:
            raise ValueError(
                f"menu {self.menu_id}: timeout_s must be in (0, 60], got {self.timeout_s}"
            )
        if not 1 <= self.retries <= 10:
            raise ValueError(f"menu {self.menu_id}: retries must be 1..10, got {self.retries}")
        digits = [o.digit for o in self.options]
        if len(set(digits)) != len(digits):
            raise ValueError(f"menu {self.menu_id}: a digit is used twice")
        check_action(self.on_timeout)

    def action_for(self, digit: str) -> str | None:
        for opt in self.options:
            if opt.digit == digit:
                return opt.action
        return None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours in the tenant's time zone: weekday (0 = Monday) -> list of (open, close)."""

    time_zone: str = "UTC"
    weekly: tuple[tuple[int, time, time], ...] = ()  # empty = always open
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # raises for an unknown zone
        for day, start, end in self.weekly:
            if not 0 <= day <= 6:
                raise ValueError(f"weekday must be 0..6 (Monday = 0), got {day}")
            if not start < end:
                raise ValueError(f"opening {start} must be before closing {end}")

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (aware) falls in opening hours, local to the tenant."""
        local = at.astimezone(ZoneInfo(self.time_zone))
        if local.date() in self.holidays:
            return False
        if not self.weekly:
            return True
        t = local.time()
        return any(day == local.weekday() and start <= t < end for day, start, end in self.weekly)


@dataclass(frozen=True, slots=True)
class LookupWebhook:
    """The client's own system, asked about a caller (signed HTTPS POST, short timeout)."""

    url: str
    secret: str
    timeout_s: float = 1.5


@dataclass(frozen=True, slots=True)
class TenantCallPlan:
    """How a tenant's calls are handled (the parts the call flow needs, not the whole tenant)."""

    tenant_id: str
    active: bool = True
    suspended_prompt: Prompt = field(
        default_factory=lambda: Prompt(text="This service is not available at the moment.")
    )
    entry_menu: str = ""  # "" = straight to ``default_queue``
    menus: dict[str, Menu] = field(default_factory=dict)
    default_queue: str = ""
    hours: BusinessHours = field(default_factory=BusinessHours)
    closed_prompt: Prompt = field(default_factory=lambda: Prompt(text="We are closed now."))
    closed_action: str = "hangup"
    greeting: Prompt | None = None
    recording: str = "none"
    recording_sample: float = 0.0  # share of calls recorded when ``recording == "sample"``
    lookup: LookupWebhook | None = None
    second_line: str = ""  # dial string (e.g. "sofia/gateway/alpha/+380441112233") or "queue:<id>"
    callback_digit: str = "1"
    voicemail_digit: str = ""  # exit key while queued ("" = none)
    language: str = "en"
    #: The client's portal (``https://calls.client.example``): the second line gets a link to
    #: the call's record there (``/call-history/<call id>/``).
    portal_url: str = ""

    def call_link(self, call_id: str) -> str:
        return f"{self.portal_url.rstrip('/')}/call-history/{call_id}/" if self.portal_url else ""

    def __post_init__(self) -> None:
        if self.recording not in RECORDING_POLICIES:
            raise ValueError(
                f"recording policy must be one of {', '.join(RECORDING_POLICIES)}, got {self.recording!r}"
            )
        if not 0.0 <= self.recording_sample <= 1.0:
            raise ValueError("recording_sample must be in [0, 1]")
        if self.entry_menu and self.entry_menu not in self.menus:
            raise ValueError(
                f"tenant {self.tenant_id}: entry menu {self.entry_menu!r} is not defined"
            )
        for menu in self.menus.values():
            for action in [o.action for o in menu.options] + [menu.on_timeout]:
                kind, arg = check_action(action)
                if kind == "menu" and arg not in self.menus:
                    raise ValueError(
                        f"tenant {self.tenant_id}: menu {menu.menu_id} points to unknown menu {arg!r}"
                    )
        check_action(self.closed_action)


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """A DID (E.164 with "+") and the tenant it belongs to; ``origin`` is how its calls count."""

    did: str
    tenant_id: str
    origin: str = "direct"
    entry_menu: str = ""  # overrides the tenant's entry menu for this number
    queue: str = ""  # overrides the tenant's default queue for this number

    def __post_init__(self) -> None:
        if not (self.did.startswith("+") and self.did[1:].isdigit() and 4 <= len(self.did) <= 16):
            raise ValueError(f"DID must be E.164 with '+', got {self.did!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, got {self.origin!r}")


@dataclass(frozen=True, slots=True)
class AgentSeat:
    """A provider agent as the switchboard needs it: routing profile and the phone to ring."""

    profile: AgentProfile
    endpoint: str  # dial string, e.g. "user/1001" or "sofia/internal/1001@10.0.0.5"
    logged_in: bool = True

    @property
    def agent_id(self) -> str:
        return self.profile.agent_id


@dataclass(frozen=True, slots=True)
class Directory:
    """Everything the call flow reads, as one immutable value."""

    numbers: dict[str, NumberRoute] = field(default_factory=dict)
    tenants: dict[str, TenantCallPlan] = field(default_factory=dict)
    routing: dict[str, TenantConfig] = field(default_factory=dict)
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    agents: dict[str, AgentSeat] = field(default_factory=dict)
    unknown_number_prompt: Prompt = field(
        default_factory=lambda: Prompt(text="The number you have dialled is not in service.")
    )

    def __post_init__(self) -> None:
        for did, route in self.numbers.items():
            if did != route.did:
                raise ValueError(f"number key {did!r} differs from its route's DID {route.did!r}")
            if route.tenant_id not in self.tenants:
                raise ValueError(f"number {did} belongs to unknown tenant {route.tenant_id!r}")
        for qid, queue in self.queues.items():
            if qid != queue.queue_id:
                raise ValueError(f"queue key {qid!r} differs from its queue_id {queue.queue_id!r}")
            if queue.tenant_id not in self.tenants:
                raise ValueError(f"queue {qid} belongs to unknown tenant {queue.tenant_id!r}")
        for plan in self.tenants.values():
            queue_ids = [plan.default_queue] if plan.default_queue else []
            for menu in plan.menus.values():
                for action in [o.action for o in menu.options] + [menu.on_timeout]:
                    kind, arg = check_action(action)
                    if kind == "queue":
                        queue_ids.append(arg)
            for qid in queue_ids:
                queue = self.queues.get(qid)
                if queue is None or queue.tenant_id != plan.tenant_id:
                    raise ValueError(
                        f"tenant {plan.tenant_id}: queue {qid!r} is not one of its queues"
                    )

    def route(self, did: str) -> NumberRoute | None:
        return self.numbers.get(did)
