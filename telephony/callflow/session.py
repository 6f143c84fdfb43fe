"""One call, from the moment the switch hands it to our outbound socket until it hangs up.

A :class:`CallSession` is the coroutine of one call (the A leg): it routes the dialled number to
its tenant, runs the tenant's IVR, queues the caller with the routing engine (music on hold,
honest wait announcements that never delay a bridge: ``uuid_bridge`` breaks whatever is
playing), rings the agent the engine chooses on the caller's node, bridges, escalates to the
client's second line, and meters every millisecond of the caller's answered time into segments
(:mod:`.meter`, shared/design/segments.md). Times are the switch's event timestamps.

The session never blocks the engine: decisions arrive through :meth:`offer`,
:meth:`cancel_offer` and :meth:`decision`, which only start tasks or queue work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from routing.engine.model import (
    Announce,
    CallAbandoned,
    CallArrived,
    CallbackAccepted,
    CallEnded,
    Decision,
    Escalate,
    OfferAnswered,
    OfferCallback,
    Overflow,
    Reject,
)
from telephony.esl import CommandError, ConnectionLost, ESLError, Event, OutboundCall

from .directory import Menu, Prompt, TenantCallPlan, check_action
from .meter import CallMeter
from .switchboard import CallSummary, event_ms

if TYPE_CHECKING:
    from .switchboard import Switchboard

log = logging.getLogger("telephony.switchboard.call")

GOODBYE = Prompt(text="Thank you for calling. Goodbye.")
SATISFIED = Prompt(text="If that answers your question, press 1. To talk to an agent, press 2.")
CALLBACK_OFFER = Prompt(
    text="To be called back when an agent is free, press 1. To keep waiting, press 2."
)
SECOND_LINE_FAILED = Prompt(text="Our specialists are busy. Please hold for the next agent.")
BUSY = Prompt(text="All our agents are busy. Please call again later.")
#: mod_conference profile of the per-call rooms (freeswitch-conf/autoload_configs/conference.conf.xml).
CONFERENCE_PROFILE = "ccp"


#: Channel events a call's socket does not need (``nixevent`` after ``myevents``).
UNUSED_EVENTS = (
    "CHANNEL_EXECUTE", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "DTMF", "CHANNEL_PARK",
    "CHANNEL_UNPARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_CREATE",
    "CHANNEL_DESTROY", "CHANNEL_OUTGOING", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
    "CHANNEL_APPLICATION", "CHANNEL_DATA", "PLAYBACK_START", "PLAYBACK_STOP", "RECORD_START",
    "RECORD_STOP", "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
    "CALL_UPDATE", "TALK", "NOTALK",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExitKey:
    """The caller pressed the queue's exit key (the tenant's ``voicemail_digit``)."""

    digit: str


class CallerGone(Exception):
    """The caller hung up (or the channel vanished) while we were waiting on something."""


def _quote(text: str) -> str:
    """A single word for FreeSWITCH's argument splitter (quotes are its only escape)."""
    return "'" + text.replace("'", "") + "'"


def playable(prompt: Prompt) -> str:
    """What ``playback`` plays: the file, or ``say:`` text-to-speech (tts_engine on the channel)."""
    return prompt.file or f"say:{prompt.text}"


def seconds_phrase(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


class CallSession:
    """See the module docstring."""

    #: An agent's transfer to a named agent: that agent, for the next ``CallArrived`` only.
    transfer_target: str | None = None
    #: Who handed the call over by a transfer to a named agent (shown on the next agent's card).
    transferred_by: str | None = None
    #: How long a call transferred to a named agent waits for that agent before the queue.
    TRANSFER_WINDOW_S = 30.0
    #: The call's conference room (``ccp-<call id>``) once :meth:`conference` put it in one.
    conference_room: str | None = None

    def __init__(self, switchboard: Switchboard, call: OutboundCall) -> None:
        self.sb = switchboard
        self.call = call
        ch = call.channel
        assert ch is not None  # the server only hands over connected calls
        self.channel = ch
        self.call_id = call.uuid
        #: The call's id in the routing engine (changes when an agent transfers it to a queue).
        self.engine_id = call.uuid
        self.hops = 0
        v = ch.variables
        self.did = _e164(v.get("ccp_did") or ch.get("Caller-Destination-Number") or "")
        self.caller = ch.get("Caller-Caller-ID-Number") or ""
        self.node = self._node_name(ch)
        self.overflow_reason = v.get("sip_h_X-Overflow-Reason", "")
        #: Answered before it reached us: a previous switchboard's call whose socket resumed
        #: into ours when that one died (decision 0011, takeover). Never true of a new call:
        #: the dialplan hands calls over unanswered.
        answered_us = ch.get("Caller-Channel-Answered-Time") or "0"
        self.resumed_answer_ms = int(answered_us) // 1000 if answered_us.isdigit() else 0
        self.plan: TenantCallPlan | None = None
        self.state = "new"  # ivr, queue, agent, escalated, ended
        self.gone = asyncio.Event()
        self.hangup_ev: Event | None = None
        self.hangup_cause = ""
        self.answered_ms: int | None = None
        self.meter: CallMeter | None = None
        self.summary = CallSummary(
            call_id=self.call_id,
            tenant_id="",
            node=self.node,
            did=self.did,
            caller=self.caller,
            origin="overflow" if self.overflow_reason else "direct",
            started_ms=event_ms(ch, switchboard.now()),
        )
        self.summary.legs[self.call_id] = "a"
        self.decisions: asyncio.Queue[Decision] = asyncio.Queue()
        self.pending: dict[str, str] = {}  # agent id -> leg uuid being rung
        self.agent: str | None = None
        self.agent_leg: str | None = None
        self.second_leg: str | None = None
        self.bridged = asyncio.Event()
        self.second_end: asyncio.Future[Event] | None = None
        self.in_engine = False
        self.recording: str = ""
        self._lookup: asyncio.Task[dict[str, Any] | None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._finished = False
        self._moh_playing = False
        self._last_t = 0
        self.held = False
        self.masked = False
        self.queued_at = 0.0
        self._dtmf = False
        self.unbridge_ev: Event | None = None

    # ------------------------------------------------------------------ helpers
    def _node_name(self, ch: Event) -> str:
        for name, link in self.sb.links.items():
            if link.client.core_uuid and link.client.core_uuid == ch.core_uuid:
                return name
        host = ch.get("FreeSWITCH-Hostname")
        for name in self.sb.links:
            if name == host:
                return name
        return next(iter(self.sb.links), host or "")

    def now(self) -> float:
        return self.sb.now()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def t(self, at_ms: int) -> int:
        """A meter time: never before the last one (switch and platform clocks may differ)."""
        at_ms = max(at_ms, self._last_t)
        self._last_t = at_ms
        return at_ms

    async def _guard(self, aw: Any) -> Any:
        """Await ``aw`` unless the caller goes first (then raise :class:`CallerGone`)."""
        if self.gone.is_set():
            if asyncio.iscoroutine(aw):
                aw.close()
            raise CallerGone
        task = asyncio.ensure_future(aw)
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise CallerGone
        try:
            return task.result()
        except (ConnectionLost, ESLError) as exc:
            if "invalid session id" in str(exc).lower():
                # The switch no longer has the channel (its hangup may never reach us, e.g.
                # the node restarted): the caller is gone.
                self.channel_gone_unseen()
                raise CallerGone from exc
            # A closed socket usually means the caller has just hung up and the event is on
            # its way: give it a moment to arrive.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.gone.wait()
            if self.gone.is_set():
                raise CallerGone from exc
            raise

    async def _play(self, prompt: Prompt) -> None:
        await self._guard(self.call.execute_wait("playback", playable(prompt)))

    async def _digits(self, prompt: Prompt, var: str, *, timeout_s: float, tries: int = 1,
                      invalid: Prompt | None = None, valid: str = "0-9*#") -> str:  # fmt: skip
        arg = " ".join(
            (
                "1", "1", str(tries), str(int(timeout_s * 1000)), "#",
                _quote(playable(prompt)),
                _quote(playable(invalid)) if invalid else "silence_stream://250",
                var, f"[{valid}]",
            )
        )  # fmt: skip
        ev = await self._guard(self.call.execute_wait("play_and_get_digits", arg))
        value = ev.variables.get(var, "") if ev is not None else ""
        if not value:
            with contextlib.suppress(ESLError, ConnectionLost):
                value = (await self._guard(self.call.getvar(var))).strip()
            if value == "_undef_":
                value = ""
        return value

    async def _hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if not self.gone.is_set():
            with contextlib.suppress(ESLError, ConnectionLost):
                await self.call.hangup_call(cause)

    # ------------------------------------------------------------------ main
    async def run(self) -> None:
        call = self.call
        try:
            await call.myevents()
            # The call's coroutine reads only these: answer, bridge, unbridge, hangup, and the
            # EXECUTE_COMPLETE of what it runs; the rest would be parsed for nothing (about
            # 24 -> 10 frames per call).
            with contextlib.suppress(ESLError):
                await call.nixevent(*UNUSED_EVENTS)
            await call.linger()
            # If this process dies, a bridged caller stays bridged (media runs on the switch).
            await call.resume()
        except (ESLError, ConnectionLost):
            self.sb.stats["socket_setup_failed"] += 1
            if self.resumed_answer_ms:
                await self._resumed_caller_gone()
                return
            self.summary.outcome, self.summary.cause = "failed", "socket_setup_failed"
            self._finish()
            return
        self._pump = asyncio.get_running_loop().create_task(
            self._events(), name=f"events {self.call_id}"
        )
        if not await self.sb.wait_active():
            # A standby that never became active: close the socket, the dialplan goes on (to
            # an apology and hangup). Nothing to record: the call was never ours.
            self.sb.stats["calls_refused_inactive"] += 1
            self._stop_pump()
            return
        try:
            await self._flow()
            await self.gone.wait()
        except CallerGone:
            pass
        except Exception:
            log.exception("call %s: flow failed", self.call_id)
            self.summary.outcome = self.summary.outcome or "failed"
            self.summary.cause = self.summary.cause or "platform_error"
            await self._hangup("NORMAL_TEMPORARY_FAILURE")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.gone.wait()
        finally:
            if self.sb.stopping and not self.gone.is_set():
                # This switchboard is shutting down with the caller still up: the socket's end
                # resumes the call into the standby (or, bridged, the switch keeps it), which
                # carries it on from the progress stored at its last transition. Recording an
                # end here would be false (and would close the meter the standby needs).
                self.sb.stats["calls_left_to_successor"] += 1
                self._stop_pump()
            else:
                await self._close(call)

    def _stop_pump(self) -> None:
        # Drop the reference as well: the cancelled task keeps its CancelledError, whose
        # traceback holds `_events`' frame and so this session, a cycle per call that only
        # the GC could free (with everything the call built: hundreds of objects).
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()

    async def _close(self, call: OutboundCall) -> None:
        if self.second_end is not None and not self.second_end.done():
            # The second line usually hangs up with the caller: wait for its CDR time.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(5):
                    await asyncio.shield(self.second_end)
        self._finish()
        self._stop_pump()
        with contextlib.suppress(ESLError, ConnectionLost):
            await call.exit()

    async def _flow(self) -> None:
        sb = self.sb
        route = sb.directory.route(self.did)
        if route is None:
            sb.stats["unknown_number"] += 1
            await sb.sink.notice(
                "unknown_number",
                {
                    "did": self.did,
                    "caller": self.caller,
                    "node": self.node,
                    "call_id": self.call_id,
                },
            )
            self.summary.outcome, self.summary.cause = "failed", "unknown_number"
            await self._answer()
            await self._play(sb.directory.unknown_number_prompt)
            await self._hangup("UNALLOCATED_NUMBER")
            return
        plan = sb.directory.tenants[route.tenant_id]
        self.plan = plan
        self.summary.tenant_id = plan.tenant_id
        if route.origin == "overflow":
            self.summary.origin = "overflow"
        self.meter = CallMeter(
            plan.tenant_id, self.call_id, self.call_id, self.summary.origin, self.node
        )
        if self.resumed_answer_ms:
            await self._resume(plan, route.queue or plan.default_queue, route.entry_menu)
            return
        if not plan.active:
            sb.stats["suspended_tenant"] += 1
            self.summary.outcome, self.summary.cause = "failed", "tenant_suspended"
            await self._answer()
            await self._play(plan.suspended_prompt)
            await self._hangup()
            return
        # Caller lookup starts now (the tenant's contacts, and its webhook if configured) and
        # runs while the greeting plays; the IVR waits for it only when it needs the answer.
        self._lookup = asyncio.get_running_loop().create_task(self._do_lookup(plan))
        queue_id = route.queue or plan.default_queue
        if self.summary.origin == "overflow":
            # The client's centre sent it: straight to the queue; over the cap it goes back
            # unanswered (the client's PBX gets a busy and keeps the call).
            await self._queue(queue_id, before_answer=True)
            return
        await self._answer()
        if plan.recording != "none":
            await self._start_recording(plan)
        if not plan.hours.is_open(_utc(self.now())):
            await self._play(plan.closed_prompt)
            action = plan.closed_action
        else:
            if plan.greeting is not None:
                await self._play(plan.greeting)
            entry = route.entry_menu or plan.entry_menu
            action = f"menu:{entry}" if entry else f"queue:{queue_id}"
        await self._run_actions(action, queue_id)

    async def _resume(self, plan: TenantCallPlan, queue_id: str, entry_menu: str | None) -> None:
        """Carry on with a call a dead switchboard was running (its caller is still up).

        The meter goes on from the state the predecessor stored (answer, queue entry, bridge),
        so the call's segments partition its answered time as if nothing happened; a caller
        who was queued keeps their place (the engine restored from its snapshot still holds
        the call, or it re-enters with the priority of the time it waited); a caller who was
        in the IVR hears the menu again; one whose agent or second line is gone goes back to
        the queue."""
        sb = self.sb
        sb.stats["calls_resumed"] += 1
        assert self.meter is not None
        self.answered_ms = self.summary.answered_ms = self.resumed_answer_ms
        stored: dict[str, Any] | None = None
        with contextlib.suppress(Exception):
            stored = await sb.sink.load_progress(plan.tenant_id, self.call_id)
        if stored:
            try:
                meter = CallMeter.from_dict(stored)
                if meter.is_answered and not meter.is_ended:
                    self.meter = meter
                    self.summary.origin = meter.origin
            except ValueError:
                log.warning(
                    "call %s: stored meter unusable; metering from the answer", self.call_id
                )
        if not self.meter.is_answered:
            self.meter.answered(self.t(self.resumed_answer_ms))
        else:
            self._last_t = self.meter._clock()
        self.summary.queue = self.meter.queue_id or ""
        self.summary.agent = self.meter.agent_id or ""
        self._lookup = asyncio.get_running_loop().create_task(self._do_lookup(plan))
        self.state = "ivr"
        with contextlib.suppress(ESLError, ConnectionLost):
            await self.call.execute("set", "tts_engine=flite")
        queue_id = self.meter.queue_id or queue_id
        held = next((e for e in self._engine_ids() if e in sb.restored_calls), None)
        if self.meter.state == "queue" or (held is not None and self.meter.state == "ivr"):
            if self.meter.state != "queue":
                self.meter.enter_queue(self.t(self.now_ms()), queue_id)
            await self._queue(queue_id, rejoin=True)
        elif self.meter.state in ("agent", "handoff"):
            # Bridged no more (the agent or the second line left while nobody controlled the
            # call): back to the queue, never to silence.
            if self.meter.state == "agent":
                self.meter.agent_unbridged(self.t(self.now_ms()), "takeover")
            # The restored engine may still hold the call under its id (its agent, still
            # bridged to the second line, is adopted on it): queue it under a new one.
            while sb.engine.call_state(self._engine_ids()[min(self.hops, 9)]) is not None:
                self.hops += 1
                if self.hops >= 9:
                    break
            await self._play(SECOND_LINE_FAILED)
            await self._queue(queue_id)
        else:
            entry = entry_menu or plan.entry_menu
            await self._run_actions(f"menu:{entry}" if entry else f"queue:{queue_id}", queue_id)

    async def _resumed_caller_gone(self) -> None:
        """A predecessor's caller who hung up as the socket resumed into ours. Its stored
        progress, if any, stands and is closed from the CDRs; if the predecessor died before
        storing even the answer, the call is recorded here, answered (the switch says when)
        and left open: reconciliation closes it from the CDRs (the only thing a call does
        before its first stored transition is the IVR)."""
        route = self.sb.directory.route(self.did)
        if route is None:
            return
        plan = self.sb.directory.tenants[route.tenant_id]
        with contextlib.suppress(Exception):
            if await self.sb.sink.load_progress(plan.tenant_id, self.call_id):
                return
        self.plan = plan
        self.summary.tenant_id = plan.tenant_id
        self.meter = CallMeter(
            plan.tenant_id, self.call_id, self.call_id, self.summary.origin, self.node
        )
        self.meter.answered(self.resumed_answer_ms)
        self.answered_ms = self.summary.answered_ms = self.resumed_answer_ms
        self.state = "ivr"
        self.sb.stats["resumed_calls_left_for_cdrs"] += 1
        self._finish()

    def _engine_ids(self) -> list[str]:
        """The ids this call may have had in the engine (``#n`` after transfers)."""
        return [self.call_id] + [f"{self.call_id}#{i}" for i in range(1, 10)]

    async def _answer(self) -> None:
        await self._guard(self.call.execute_wait("answer"))
        if self.answered_ms is None:
            # CHANNEL_ANSWER arrives before the answer's EXECUTE_COMPLETE.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    while self.answered_ms is None:
                        await asyncio.sleep(0)
        if self.answered_ms is None:
            self.answered_ms = self.now_ms()
        self.summary.answered_ms = self.answered_ms
        if self.meter is not None:
            self.meter.answered(self.t(self.answered_ms))
            self.sb.progress(self)  # from here on a successor can bill it from its CDRs
        self.state = "ivr"
        with contextlib.suppress(ESLError, ConnectionLost):
            await self.call.execute("set", "tts_engine=flite")

    async def _run_actions(self, action: str, default_queue: str) -> None:
        plan = self.plan
        assert plan is not None
        hops = 0
        while True:
            hops += 1
            if hops > 50:
                action = "hangup"
            kind, arg = check_action(action)
            if kind == "menu":
                action = await self._menu(plan.menus[arg])
            elif kind in ("say", "answer"):
                text = arg if kind == "say" else await self._self_service_answer()
                await self._play(Prompt(text=text))
                digit = await self._digits(SATISFIED, "ccp_satisfied", timeout_s=5, valid="12")
                if digit == "1":
                    self.summary.outcome, self.summary.cause = "ivr", "self_service"
                    await self._play(GOODBYE)
                    await self._hangup()
                    return
                action = f"queue:{default_queue}" if default_queue else "hangup"
            elif kind == "queue":
                await self._queue(arg)
                return
            elif kind == "escalate":
                ok = await self._escalate(reason="ivr", context={})
                if ok:
                    return
                action = f"queue:{default_queue}" if default_queue else "hangup"
            elif kind == "voicemail":
                await self._voicemail()
                return
            else:  # hangup
                self.summary.outcome = self.summary.outcome or "ivr"
                self.summary.cause = self.summary.cause or "ivr_hangup"
                await self._play(GOODBYE)
                await self._hangup()
                return

    async def _menu(self, menu: Menu) -> str:
        for _ in range(menu.retries):
            digit = await self._digits(menu.prompt, "ccp_digit", timeout_s=menu.timeout_s)
            if digit:
                action = menu.action_for(digit)
                if action is not None:
                    return action
                await self._play(menu.invalid_prompt)
        return menu.on_timeout

    async def _do_lookup(self, plan: TenantCallPlan) -> dict[str, Any] | None:
        timeout = plan.lookup.timeout_s if plan.lookup is not None else 1.0
        try:
            async with asyncio.timeout(timeout):
                return await self.sb.sink.lookup(plan.tenant_id, self.caller)
        except TimeoutError:
            self.sb.stats["lookup_timeout"] += 1
        except Exception:  # noqa: BLE001  # a failing lookup never blocks the call
            self.sb.stats["lookup_failed"] += 1
            log.warning("call %s: caller lookup failed", self.call_id, exc_info=True)
        return None

    async def _lookup_result(self) -> dict[str, Any] | None:
        if self._lookup is None:
            return None
        try:
            return await self._guard(asyncio.shield(self._lookup))
        except CallerGone:
            raise
        except Exception:  # noqa: BLE001
            return None

    async def _self_service_answer(self) -> str:
        found = await self._lookup_result()
        if found and found.get("answer"):
            self.sb.stats["self_service_answers"] += 1
            return str(found["answer"])
        return "We could not find anything for your number."

    async def _voicemail(self) -> None:
        self.summary.outcome = self.summary.outcome or "ivr"
        self.summary.cause = "voicemail"
        await self._play(Prompt(text="Please leave a message after the tone."))
        await self._guard(self.call.execute_wait("playback", "tone_stream://%(500,0,800)"))
        await self._hangup()

    async def _start_recording(self, plan: TenantCallPlan) -> None:
        if plan.recording == "on_demand":
            return  # the agent starts it (record_on_demand)
        if plan.recording == "sample":
            share = int(hashlib.sha256(self.call_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if share >= plan.recording_sample:
                return
        await self._record(plan)

    def recording_path(self, plan: TenantCallPlan) -> str:
        """Where the switch writes this call's recording (one file per call)."""
        day = time.strftime("%Y/%m/%d", time.gmtime(self.now()))
        path = f"$${{recordings_dir}}/{plan.tenant_id}/{day}/{self.call_id}.wav"
        return path.replace("$${recordings_dir}", "/var/lib/freeswitch/recordings")

    async def _record(self, plan: TenantCallPlan) -> bool:
        """``uuid_record`` the caller's leg and tell the sink (the recordings app registers it)."""
        path = self.recording_path(plan)
        try:
            await self.call.api(f"uuid_record {self.call_id} start {path}")
        except (ESLError, ConnectionLost) as exc:
            log.warning("call %s: recording did not start: %s", self.call_id, exc)
            return False
        self.recording = path
        await self.sb.sink.notice(
            "recording",
            {
                "tenant_id": plan.tenant_id,
                "call_id": self.call_id,
                "path": path,
                "started_ms": self.now_ms(),
            },
        )
        return True

    async def record_on_demand(self) -> str | None:
        """The agent starts recording (policy ``on_demand``): None, or why it cannot."""
        plan = self.plan
        if plan is None or self.state != "agent":
            return "you are not talking to this caller"
        if plan.recording == "none":
            return "this client does not allow recording"
        if plan.recording == "all":
            return "this client records every call: the recording is already decided by policy"
        if plan.recording == "sample":
            return "this client records a sample of calls chosen by policy, not on demand"
        if self.recording:
            return "this call is already being recorded"
        if not await self._record(plan):
            return "the switch did not start the recording"
        return None

    async def set_masked(self, masked: bool) -> bool:
        """Pause (mask) or resume the recording while a secret is spoken."""
        if not self.recording:
            return False
        await self.call.api(
            f"uuid_record {self.call_id} {'mask' if masked else 'unmask'} {self.recording}"
        )
        self.masked = masked
        await self.sb.sink.notice(
            "masked",
            {
                "tenant_id": self.summary.tenant_id,
                "call_id": self.call_id,
                "masked": masked,
                "at_ms": self.now_ms(),
            },
        )
        return True

    # ------------------------------------------------------------------ queue
    async def _queue(
        self, queue_id: str, *, before_answer: bool = False, rejoin: bool = False
    ) -> None:
        """Queue the caller. ``rejoin``: a resumed caller whose meter is already in the queue
        (see :meth:`_resume`) takes its place back instead of arriving."""
        assert self.meter is not None
        sb = self.sb
        self.summary.queue = queue_id
        lookup = (
            None
            if before_answer
            else (
                self._lookup.result()
                if self._lookup is not None and self._lookup.done() and not self._lookup.exception()
                else None
            )
        )
        at = self.now()
        held = None
        if rejoin:
            self.queued_at = self.meter._clock() / 1000
            for hops, engine_id in enumerate(self._engine_ids()):
                if engine_id in sb.restored_calls:
                    self.engine_id, self.hops = engine_id, hops + 1
                    sb.sessions[engine_id] = self
                    self.in_engine = True
                    held = sb.claim_restored(engine_id)
                    break
        if held is None:
            if self.hops:
                self.engine_id = f"{self.call_id}#{self.hops}"
                sb.sessions[self.engine_id] = self
            self.hops += 1
            priority = int((lookup or {}).get("priority", 0) or 0)
            if rejoin:
                # Not in the restored engine (it queued after the snapshot): the time it has
                # waited puts it back at its place, as callbacks do.
                queue = sb.directory.queues.get(queue_id)
                head = queue.priority_head_start_s if queue is not None else 90.0
                waited = max(0.0, at - self.queued_at)
                priority = max(priority, math.ceil(waited / head) if head > 0 else 0)
            sb.feed(
                CallArrived(
                    at,
                    self.engine_id,
                    queue_id,
                    priority=priority,
                    caller_id=self.caller or None,
                    vip=bool((lookup or {}).get("vip")),
                    topic=(lookup or {}).get("topic"),
                    overflow_in=self.summary.origin == "overflow",
                    target_agent=self.transfer_target,
                    target_window_s=self.TRANSFER_WINDOW_S,
                )
            )
            self.transfer_target = None
            self.in_engine = True
            if not rejoin:
                self.queued_at = at
        if before_answer:
            refused = [d for d in _drain(self.decisions) if isinstance(d, Overflow | Reject)]
            if refused:
                self.in_engine = False
                self.summary.outcome, self.summary.cause = (
                    "overflowed",
                    f"refused:{refused[0].reason}",
                )
                sb.stats["overflow_refused"] += 1
                target = getattr(refused[0], "target", "")
                if target == "callback" and self.caller:
                    # Over the cap, the tenant's rule offers a callback instead of a busy.
                    await self._answer()
                    self.summary.outcome = "callback"
                    sb.request_callback(tenant_id=self.summary.tenant_id, number=self.caller,
                                        queue_id=queue_id, parent_call_id=self.call_id,
                                        node=self.node, waited_s=0.0)  # fmt: skip
                    await self._play(Prompt(text="All our agents are busy. We will call you back."))
                    await self._hangup()
                    return
                await self._hangup("USER_BUSY")
                return
            await self._answer()
        self.state = "queue"
        if not rejoin:
            # An overflow call joined the queue before we answered it: its queue time starts
            # at the answer (no IVR); otherwise now, as the IVR hands over.
            entered = self.answered_ms if before_answer and self.answered_ms else self.now_ms()
            self.meter.enter_queue(self.t(entered), queue_id)
        self.sb.progress(self)
        plan = self.plan
        if plan is not None and plan.voicemail_digit and not self._dtmf:
            # The queue's exit key: its DTMF events from now on (nixed at the start: the IVR
            # reads its digits from play_and_get_digits).
            self._dtmf = True
            with contextlib.suppress(ESLError, ConnectionLost):
                await self.call.subscribe("DTMF")
        await self._moh()
        while self.state == "queue":
            getter = asyncio.ensure_future(self.decisions.get())
            bridged = asyncio.ensure_future(self.bridged.wait())
            try:
                await self._guard(
                    asyncio.wait((getter, bridged), return_when=asyncio.FIRST_COMPLETED)
                )
            finally:
                bridged.cancel()
                if not getter.done():
                    getter.cancel()
            if self.bridged.is_set() or not getter.done() or getter.cancelled():
                break
            await self._on_queue_decision(getter.result())

    async def _moh(self) -> None:
        self._moh_playing = True
        with contextlib.suppress(ESLError, ConnectionLost):
            await self.call.execute("playback", self.sb.moh)

    async def _break(self) -> None:
        with contextlib.suppress(ESLError, ConnectionLost):
            await self.call.api(f"uuid_break {self.call_id} all")

    async def _on_queue_decision(self, d: Decision) -> None:
        if isinstance(d, Announce):
            if self.state != "queue" or self.pending_bridge():
                return
            await self._break()
            await self._guard(self.call.execute("set", f"ccp_announced_wait_sec={int(d.seconds)}"))
            text = f"Your estimated wait is {seconds_phrase(d.seconds)}."
            position = self.sb.engine.position(self.engine_id)
            if position is not None:
                text = f"You are number {position} in the queue. {text}"
            if d.reason == "delay":
                text = f"We are sorry for the delay. {text}"
            await self._guard(self.call.execute("playback", playable(Prompt(text=text))))
            await self._moh()
            self.sb.stats["announcements"] += 1
        elif isinstance(d, OfferCallback):
            await self._break()
            digit = await self._digits(CALLBACK_OFFER, "ccp_callback", timeout_s=5, valid="12")
            if digit == "1" and self.state == "queue":
                self._leave_queue("callback")
                self.sb.feed(CallbackAccepted(self.now(), self.engine_id))
                self.summary.outcome, self.summary.cause = "callback", "callback_accepted"
                await self.sb.sink.notice(
                    "callback_request",
                    {
                        "tenant_id": self.summary.tenant_id,
                        "call_id": self.call_id,
                        "number": self.caller,
                        "queue": self.summary.queue,
                    },
                )
                self.sb.request_callback(
                    tenant_id=self.summary.tenant_id,
                    number=self.caller,
                    queue_id=self.summary.queue,
                    parent_call_id=self.call_id,
                    node=self.node,
                    waited_s=max(0.0, self.now() - self.queued_at),
                )
                await self._play(Prompt(text="We will call you back. Goodbye."))
                await self._hangup()
            elif self.state == "queue":
                await self._moh()
        elif isinstance(d, Overflow):
            self._leave_queue("overflow")
            self.summary.outcome, self.summary.cause = "overflowed", f"{d.target}:{d.reason}"
            await self._overflow_to(d.target)
        elif isinstance(d, Escalate):
            await self._break()
            self._leave_queue("escalation")
            ok = await self._escalate(reason=d.reason, context=dict(d.context), target=d.target)
            if not ok and not self.gone.is_set():
                await self._play(SECOND_LINE_FAILED)
                await self._queue(self.summary.queue)
        elif isinstance(d, ExitKey):
            if self.state != "queue" or self.bridged.is_set():
                return
            # The caller would rather leave a message: out of the engine (an agent being rung
            # is cancelled), the queue time ends, the voicemail prompt.
            self._engine_end()
            self._leave_queue("voicemail")
            self.cancel_all_offers()
            self.sb.stats["queue_exit_key"] += 1
            await self._break()
            await self._voicemail()
        elif isinstance(d, Reject):
            self._leave_queue("rejected")
            self.summary.outcome, self.summary.cause = "failed", f"rejected:{d.reason}"
            await self._break()
            await self._play(BUSY)
            await self._hangup()

    def pending_bridge(self) -> bool:
        return self.agent is not None

    def _leave_queue(self, reason: str) -> None:
        if self.state == "queue" and self.meter is not None:
            self.meter.leave_queue(self.t(self.now_ms()), reason)
        self.state = "ivr" if reason == "escalation" else "leaving"
        self.in_engine = False

    async def _overflow_to(self, target: str) -> None:
        kind, _, arg = target.partition(":")
        await self._break()
        if kind == "voicemail":
            await self._voicemail()
        elif kind in ("client", "busy") or not arg:
            await self._play(BUSY)
            await self._hangup()
        else:
            # Another site or number: hand the call over (the caller's leg stays ours).
            ok = await self._escalate(reason="overflow", context={}, target=target)
            if not ok:
                await self._play(BUSY)
                await self._hangup()

    # ------------------------------------------------------------------ engine decisions
    def offer(self, agent_id: str, offer_id: int) -> None:
        self.sb.spawn(self._ring(agent_id, offer_id, time.perf_counter()), name=f"ring {agent_id}")

    def cancel_offer(self, agent_id: str, reason: str) -> None:
        leg = self.pending.pop(agent_id, None)
        if leg is not None:
            self.sb.agent_legs.pop(leg, None)
            self.sb.spawn(self._kill(leg, "ORIGINATOR_CANCEL"))

    def cancel_all_offers(self) -> None:
        for agent_id in list(self.pending):
            self.cancel_offer(agent_id, "caller_left")

    def decision(self, d: Decision) -> None:
        self.decisions.put_nowait(d)

    async def _kill(self, leg: str, cause: str) -> None:
        with contextlib.suppress(ESLError, ConnectionLost, KeyError, TimeoutError):
            await self.sb.link_for(self.node).api(f"uuid_kill {leg} {cause}")

    async def _ring(self, agent_id: str, offer_id: int, decided: float) -> None:
        sb = self.sb
        seat = sb.directory.agents.get(agent_id)
        if seat is None or self.plan is None:
            sb.offer_failed(self.call_id, agent_id, "USER_NOT_REGISTERED", self.now())
            return
        leg = sb.new_leg_uuid()
        self.pending[agent_id] = leg
        sb.register_leg(leg, self.call_id, agent_id)
        queue = sb.directory.queues.get(self.summary.queue)
        ring_s = int((queue.offer_timeout_s if queue else 20.0) + 5)
        variables = {
            "origination_uuid": leg,
            "originate_timeout": str(ring_s),
            "ignore_early_media": "true",
            "park_timeout": "60",  # parked and never bridged (its caller vanished): hang up
            "ccp_call": self.call_id,
            "ccp_tenant": self.plan.tenant_id,
            "ccp_role": "agent",
            "ccp_agent": agent_id,
            "ccp_queue": self.summary.queue,
            "origination_caller_id_number": self.caller or "anonymous",
        }
        dial = (
            "{"
            + ",".join(f"{k}={v}" for k, v in variables.items())
            + "}"
            + seat.endpoint
            + " &park()"
        )
        link = sb.link_for(self.node)
        sb.dispatch_latency.append(time.perf_counter() - decided)
        try:
            await link.originate(dial, timeout=ring_s + 10)
        except CommandError as exc:
            cause = str(exc).rsplit(":", 1)[-1].strip().removeprefix("-ERR").strip() or "NO_ANSWER"
            cause = cause.split()[-1] if cause else "NO_ANSWER"
            if self.pending.get(agent_id) == leg:
                self.pending.pop(agent_id, None)
                sb.agent_legs.pop(leg, None)
                sb.offer_failed(self.call_id, agent_id, cause, self.now())
            return
        except (ESLError, ConnectionLost, TimeoutError, KeyError) as exc:
            log.warning("call %s: ringing %s failed: %r", self.call_id, agent_id, exc)
            if self.pending.get(agent_id) == leg:
                self.pending.pop(agent_id, None)
                sb.agent_legs.pop(leg, None)
                sb.offer_failed(self.call_id, agent_id, "NORMAL_TEMPORARY_FAILURE", self.now())
            await self._kill(leg, "NORMAL_TEMPORARY_FAILURE")
            return
        if self.pending.get(agent_id) != leg or self.gone.is_set() or self.state != "queue":
            # Withdrawn while it rang (caller left, answered elsewhere, timer): not wanted.
            self.summary.legs[leg] = "agent"  # answered, so its CDR is this call's
            sb.agent_legs.pop(leg, None)
            if self.pending.get(agent_id) == leg:
                del self.pending[agent_id]
            await self._kill(leg, "ORIGINATOR_CANCEL")
            return
        self.pending.pop(agent_id, None)
        sb.feed(OfferAnswered(self.now(), self.engine_id, agent_id))
        if (
            sb.engine.call_state(self.engine_id) != "connected"
            or sb.engine.agent_call(agent_id) != self.engine_id
        ):
            self.summary.legs[leg] = "agent"
            sb.agent_legs.pop(leg, None)
            await self._kill(leg, "ORIGINATOR_CANCEL")
            return
        self.agent, self.agent_leg = agent_id, leg
        self.summary.agent = agent_id
        self.summary.legs[leg] = "agent"
        try:
            await link.api(f"uuid_bridge {self.call_id} {leg}")
        except (ESLError, ConnectionLost, TimeoutError) as exc:
            log.warning("call %s: bridge to %s failed: %r", self.call_id, agent_id, exc)
            await self._kill(leg, "NORMAL_TEMPORARY_FAILURE")
            return
        if self.gone.is_set():
            # The caller hung up while we bridged: the agent must not be left on a dead call.
            await self._kill(leg, "NORMAL_CLEARING")

    def leg_gone(self, uuid: str, ev: Event | None) -> None:
        """An agent or second-line leg of this call hung up."""
        if self.conference_room is not None and self.state in ("conference", "escalated"):
            if not self.gone.is_set() and uuid in (self.agent_leg, self.second_leg):
                self.sb.spawn(self._conference_leg_gone(uuid, ev), name=f"room {self.call_id}")
            return
        if uuid == self.second_leg and self.state == "escalated":
            return  # the caller's own hangup follows (or already came)
        if self.state == "consult" and uuid in (self.agent_leg, self.second_leg):
            if not self.gone.is_set():
                self.sb.spawn(self._consult_leg_gone(uuid, ev), name=f"consult {self.call_id}")
            return
        if uuid == self.agent_leg and self.state == "agent" and not self.gone.is_set():
            # The node's connection and the caller's socket race: when the caller hung up
            # (and the switch then cleared the agent), the caller's hangup is about to arrive.
            self.sb.spawn(self._agent_gone(ev), name=f"agent gone {self.call_id}")

    async def _consult_leg_gone(self, uuid: str, ev: Event | None) -> None:
        """The agent's or the second line's leg hung up while they consulted (the caller
        parked with music). Never left there: back to the agent if the agent is still up, to
        the second line if only it is, else back to the queue (the first line)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):  # the caller's hangup, or the partner's, may follow
                await self.gone.wait()
        if self.state == "conference" and not self.gone.is_set():
            # The leg went while the agent moved everyone into the room.
            await self._conference_leg_gone(uuid, ev)
            return
        if self.gone.is_set() or self.state != "consult" or self.meter is None:
            return
        at_ms = self.t(event_ms(ev, self.now()))
        link = self.sb.link_for(self.node)
        agent_up = self.agent_leg is not None and self.agent_leg in self.sb.agent_legs
        second = self.second_leg
        second_up = second is not None and second in self.sb.agent_legs
        if second is not None and not second_up and second in self.meter.open_legs:
            end = ev if uuid == second else None
            if end is None and self.second_end is not None and self.second_end.done():
                end = self.second_end.result()
            cause = (end.get("Hangup-Cause") if end is not None else None) or "NORMAL_CLEARING"
            with contextlib.suppress(ValueError):
                self.meter.escalation_ended(event_ms(end, self.now()), second, cause)
            self.second_end = None
        if agent_up != second_up:
            # One of them is still up: the caller joins it (the agent back with the caller,
            # or, when our agent hung up while consulting, the second line takes the caller).
            other = self.agent_leg if agent_up else second
            try:
                await link.api(f"uuid_bridge {self.call_id} {other}")
            except (ESLError, ConnectionLost, TimeoutError) as exc:
                log.warning("call %s: bridge after the consultation failed: %r", self.call_id, exc)
            else:
                if agent_up:
                    self.state = "agent"
                    if self.agent is not None:
                        self.sb.push(self.agent, self.card("connected"))
                else:
                    self.meter.agent_left(at_ms)
                    self.state = "escalated"
                    self.summary.outcome, self.summary.cause = "escalated", "warm"
                    self._engine_end_connected()
                    self.sb.stats["escalations"] += 1
                return
            if self.gone.is_set() or self.state != "consult":
                return
        # Both gone (a bridged pair ends together): the caller goes back to the queue.
        for leg in (self.agent_leg, second):
            if leg is not None and self.sb.agent_legs.pop(leg, None) is not None:
                await self._kill(leg, "NORMAL_CLEARING")  # a leg we could not bridge to
        self.meter.agent_unbridged(at_ms, "consult_ended")
        self.state = "ivr"
        self._engine_end()
        self.agent, self.agent_leg, self.second_leg = None, None, None
        self.bridged = asyncio.Event()
        self.in_engine = False
        self.sb.stats["consult_lost"] += 1
        with contextlib.suppress(CallerGone):
            await self._break()
            await self._play(SECOND_LINE_FAILED)
            await self._queue(self.summary.queue)

    async def _agent_gone(self, ev: Event | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self.gone.wait()
        if self.gone.is_set() or self.state != "agent":
            return
        # The agent hung up and the caller is still here: the agent part is over.
        at_ms = event_ms(self.unbridge_ev or ev, self.now())
        if self.meter is not None:
            self.meter.agent_unbridged(self.t(at_ms), "agent_hangup")
        self.state = "after_agent"
        self._engine_end(self.unbridge_ev or ev)
        await self._after_agent()

    async def _after_agent(self) -> None:
        with contextlib.suppress(CallerGone, ESLError, ConnectionLost):
            await self._play(GOODBYE)
            await self._hangup()

    # ------------------------------------------------------------------ escalation
    async def _escalate(
        self, *, reason: str, context: dict[str, str], target: str | None = None
    ) -> bool:
        """Cold transfer of the caller to the second line; False if it did not answer."""
        plan = self.plan
        assert plan is not None and self.meter is not None
        dest = target or plan.second_line
        if not dest or dest.startswith(("queue:", "client:")):
            self.sb.stats["escalation_without_target"] += 1
            return False
        leg = self.sb.new_leg_uuid()
        self.sb.register_leg(leg, self.call_id, "")
        variables = {
            "origination_uuid": leg,
            "originate_timeout": "30",
            "park_timeout": "60",
            "ccp_call": self.call_id,
            "ccp_tenant": plan.tenant_id,
            "ccp_role": "escalation",
            "sip_h_X-CCP-Call": self.call_id,
            "sip_h_X-CCP-Reason": reason.replace(",", " ")[:60],
            "origination_caller_id_number": self.caller or "anonymous",
        }
        if plan.portal_url:
            # The call's record in the client's portal (who called, IVR path, agent's notes).
            variables["sip_h_X-CCP-Link"] = plan.call_link(self.call_id)
        for key, value in list(context.items())[:5]:
            variables[f"sip_h_X-CCP-{key.title()}"] = value.replace(",", " ")[:60]
        dial = (
            "{"
            + ",".join(f"{k}={v}" for k, v in variables.items() if " " not in v)
            + "}"
            + dest
            + " &park()"
        )
        link = self.sb.link_for(self.node)
        try:
            await self._guard(link.originate(dial, timeout=40))
        except CallerGone:
            await self._kill(leg, "ORIGINATOR_CANCEL")
            raise
        except (CommandError, ESLError, ConnectionLost, TimeoutError) as exc:
            self.sb.agent_legs.pop(leg, None)
            self.sb.stats["escalation_failed"] += 1
            log.info("call %s: second line %s did not answer: %s", self.call_id, dest, exc)
            return False
        # Its answer as the switch stamped it (CHANNEL_ANSWER came on the node's connection
        # before the originate's result), not when the result reached us.
        at_ms = self.t(link.answered_ms.pop(leg, None) or self.now_ms())
        self.second_leg = leg
        self.second_end = link.wait_leg_end(leg)
        self.summary.legs[leg] = "escalation"
        self.meter.escalation_answered(at_ms, leg, dest)
        was_agent = self.state == "agent"
        await link.api(f"uuid_bridge {self.call_id} {leg}")
        if was_agent and self.agent_leg is not None:
            self.meter.agent_left(self.t(self.now_ms()))
            self.sb.agent_legs.pop(self.agent_leg, None)
            self._engine_end()
            await self._kill(self.agent_leg, "NORMAL_CLEARING")
        self.state = "escalated"
        self.summary.outcome, self.summary.cause = "escalated", reason
        self.sb.stats["escalations"] += 1
        return True

    async def escalate_now(self, reason: str = "agent") -> bool:
        """The agent asks to hand the caller to the second line (cold)."""
        if self.state != "agent":
            return False
        return await self._escalate(reason=reason, context={"agent": self.agent or ""})

    async def consult(self) -> bool:
        """Warm escalation: the agent talks to the second line first, the caller on hold (music).

        The agent's segment goes on (hold and consult count as agent time); the second line's
        leg is metered as ``escalation`` from its answer. :meth:`complete_transfer` hands the
        caller over; :meth:`cancel_consult` takes the agent back to the caller."""
        plan = self.plan
        if self.state != "agent" or plan is None or self.meter is None or self.agent_leg is None:
            return False
        dest = plan.second_line
        if not dest or dest.startswith(("queue:", "client:")):
            return False
        link = self.sb.link_for(self.node)
        leg = self.sb.new_leg_uuid()
        self.sb.register_leg(leg, self.call_id, "")
        variables = {
            "origination_uuid": leg,
            "originate_timeout": "30",
            "park_timeout": "120",
            "ccp_call": self.call_id,
            "ccp_tenant": plan.tenant_id,
            "ccp_role": "escalation",
            "sip_h_X-CCP-Call": self.call_id,
            "sip_h_X-CCP-Agent": self.agent or "",
            "origination_caller_id_number": self.caller or "anonymous",
        }
        if plan.portal_url:
            variables["sip_h_X-CCP-Link"] = plan.call_link(self.call_id)
        dial = "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}" + dest + " &park()"
        try:
            await link.originate(dial, timeout=40)
        except (CommandError, ESLError, ConnectionLost, TimeoutError):
            self.sb.agent_legs.pop(leg, None)
            self.sb.stats["escalation_failed"] += 1
            return False
        self.second_leg = leg
        self.second_end = link.wait_leg_end(leg)
        self.summary.legs[leg] = "escalation"
        self.meter.escalation_answered(
            self.t(link.answered_ms.pop(leg, None) or self.now_ms()), leg, dest
        )
        self.state = "consult"
        # Park the caller first (breaking the bridge by parking does not hang the caller up,
        # whatever hangup_after_bridge says); the agent then talks to the second line and the
        # caller hears music.
        await link.api(f"uuid_park {self.call_id}")
        await link.api(f"uuid_bridge {self.agent_leg} {leg}")
        await self._moh()
        self.sb.stats["consults"] += 1
        return True

    async def complete_transfer(self) -> bool:
        """End of a warm escalation: the caller goes to the second line, our agent drops."""
        if self.state != "consult" or self.second_leg is None or self.meter is None:
            return False
        link = self.sb.link_for(self.node)
        agent_leg = self.agent_leg
        await link.api(f"uuid_bridge {self.call_id} {self.second_leg}")
        self.meter.agent_left(self.t(self.now_ms()))
        self.state = "escalated"
        self.summary.outcome, self.summary.cause = "escalated", "warm"
        self._engine_end_connected()
        if agent_leg is not None:
            self.sb.agent_legs.pop(agent_leg, None)
            await self._kill(agent_leg, "NORMAL_CLEARING")
        self.sb.stats["escalations"] += 1
        return True

    async def cancel_consult(self) -> bool:
        """The second line can't help: drop it, the agent is back with the caller."""
        if self.state != "consult" or self.second_leg is None or self.agent_leg is None:
            return False
        link = self.sb.link_for(self.node)
        leg, self.second_leg = self.second_leg, None
        await link.api(f"uuid_bridge {self.call_id} {self.agent_leg}")
        self.state = "agent"
        await self._kill(leg, "NORMAL_CLEARING")
        if self.second_end is not None:
            ev = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    ev = await asyncio.shield(self.second_end)
            assert self.meter is not None
            with contextlib.suppress(ValueError):
                self.meter.escalation_ended(event_ms(ev, self.now()), leg, "NORMAL_CLEARING")
            self.second_end = None
        return True

    async def conference(self) -> bool:
        """From a consultation: the caller, our agent and the second line in one room.

        The agent's leg and the second line are bridged: ``uuid_transfer -both`` moves both
        into the room (both get CF_REDIRECT, so the broken bridge hangs neither up). The
        caller is parked under our socket with music: ``uuid_break all`` stops it and
        ``execute conference`` runs the room from that park, so a caller who leaves the room
        is back with us, not hung up. The caller's time stays ``agent`` (our agent is on); the
        second line's ``escalation`` segment goes on from its answer."""
        if (
            self.state != "consult"
            or self.second_leg is None
            or self.agent_leg is None
            or self.meter is None
        ):
            return False
        link = self.sb.link_for(self.node)
        room = f"ccp-{self.call_id}"
        target = f"{room}@{CONFERENCE_PROFILE}"
        await link.api(f"uuid_transfer {self.agent_leg} -both conference:{target} inline")
        self.conference_room = room
        self.state = "conference"
        if self.gone.is_set():
            self._close_room()  # the caller hung up while the legs moved: clear the room
            return True
        self._moh_playing = False
        await self._break()
        with contextlib.suppress(ESLError, ConnectionLost):
            await self.call.execute("conference", target)
        self.sb.stats["conferences"] += 1
        if self.agent is not None:
            self.sb.push(self.agent, self.card("connected"))
        return True

    async def leave_conference(self) -> bool:
        """Our agent leaves the room; the caller and the second line talk on (``handoff``)."""
        if (
            self.state != "conference"
            or self.meter is None
            or self.second_leg is None
            or self.second_leg not in self.meter.open_legs
        ):
            return False
        agent_leg = self.agent_leg
        self._conference_agent_left(self.t(self.now_ms()))
        if agent_leg is not None:
            self.sb.agent_legs.pop(agent_leg, None)
            await self._kill(agent_leg, "NORMAL_CLEARING")
        return True

    def _conference_agent_left(self, at_ms: int) -> None:
        assert self.meter is not None
        self.meter.agent_left(at_ms)
        self.state = "escalated"
        self.summary.outcome, self.summary.cause = "escalated", "conference"
        self._engine_end_connected()
        self.sb.stats["escalations"] += 1
        self.sb.progress(self)  # a successor bills what follows as handoff, from the CDRs

    async def _conference_leg_gone(self, uuid: str, ev: Event | None) -> None:
        """A leg left the room by hanging up (the caller's own hangup is :meth:`_close_room`)."""
        # The node's connection and the caller's socket race: if the caller hung up (and we
        # cleared the room), the caller's hangup is about to arrive.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self.gone.wait()
        if self.gone.is_set() or self.meter is None:
            return
        at_ms = self.t(event_ms(ev, self.now()))
        link = self.sb.link_for(self.node)
        if uuid == self.agent_leg and self.state == "conference":
            if self.second_leg in self.meter.open_legs:
                # Our agent's phone hung up: the caller stays with the second line.
                self._conference_agent_left(at_ms)
                return
            self.meter.agent_unbridged(at_ms, "agent_hangup")
            self.state = "after_agent"
            self._engine_end()
            await self._leave_room_and(self._after_agent())
            return
        if uuid != self.second_leg:
            return
        cause = (ev.get("Hangup-Cause") if ev is not None else None) or "NORMAL_CLEARING"
        with contextlib.suppress(ValueError):
            # In handoff with no second line left the meter puts the caller back in ivr.
            self.meter.escalation_ended(at_ms, uuid, cause)
        self.second_end = None
        self.sb.progress(self)
        if self.state == "conference" and self.agent_leg in self.sb.agent_legs:
            # The second line left: the caller and our agent back to a plain bridge.
            try:
                await link.api(f"uuid_bridge {self.call_id} {self.agent_leg}")
            except (ESLError, ConnectionLost, TimeoutError) as exc:
                log.warning("call %s: bridge back to the agent failed: %r", self.call_id, exc)
                await self._leave_room_and(self._after_agent())
                return
            self.state = "agent"
            self.conference_room = None
            if self.agent is not None:
                self.sb.push(self.agent, self.card("connected"))
        elif self.state == "escalated":
            # The second line ended the handoff: the caller is alone in the room.
            self.state = "after_agent"
            await self._leave_room_and(self._after_agent())

    async def _leave_room_and(self, then: Any) -> None:
        """Take the caller out of the room (back to our park), then run ``then``."""
        room, self.conference_room = self.conference_room, None
        if room is not None:
            with contextlib.suppress(ESLError, ConnectionLost, TimeoutError, KeyError):
                await self.sb.link_for(self.node).api(f"conference {room} kick all")
        await then

    def _close_room(self) -> None:
        """The caller hung up while in a room: nobody is left behind in it."""
        if self.conference_room is None:
            return
        for leg in (self.agent_leg, self.second_leg):
            if leg is not None:
                self.sb.spawn(self._kill(leg, "NORMAL_CLEARING"), name=f"close room {leg}")

    def _engine_end_connected(self) -> None:
        """The engine's part ends (agent to wrap-up) while the call goes on elsewhere."""
        if self.in_engine and self.sb.engine.call_state(self.engine_id) == "connected":
            self.in_engine = False
            self.sb.feed(CallEnded(self.now(), self.engine_id))
            if self.agent is not None:
                self.sb.push(self.agent, {"kind": "ended", "call_id": self.call_id})

    # ------------------------------------------------------------------ agent commands
    def card(self, kind: str) -> dict[str, Any]:
        """What the agent's console shows about this call."""
        lookup = None
        if self._lookup is not None and self._lookup.done() and not self._lookup.cancelled():
            with contextlib.suppress(Exception):
                lookup = self._lookup.result()
        return {
            "kind": kind,
            "call_id": self.call_id,
            "tenant": self.summary.tenant_id,
            "caller": self.caller,
            "queue": self.summary.queue,
            "contact": lookup,
            "on_hold": self.held,
            "masked": self.masked,
            "consulting": self.state == "consult",
            "recording": bool(self.recording),
            "transferred_by": self.transferred_by,
            "conference": self.state == "conference",
        }

    async def hold(self, on: bool) -> None:
        await self.sb.link_for(self.node).api(
            f"uuid_hold {'' if on else 'off '}{self.call_id}".replace("  ", " ")
        )
        self.held = on

    async def hangup_by_agent(self) -> None:
        await self._hangup()

    async def transfer_to_queue(self, queue_id: str) -> bool:
        """Take the caller from the agent back into a queue of the same tenant."""
        queue = self.sb.directory.queues.get(queue_id)
        if self.state != "agent" or queue is None or queue.tenant_id != self.summary.tenant_id:
            return False
        await self._hand_over(queue_id, None)
        return True

    async def transfer_to_agent(self, target: str) -> str | None:
        """Take the caller from the agent to another agent by name: None, or why not (then
        nothing changed and the caller is still with the agent).

        The call re-enters its queue held for ``target`` (the engine's sticky reservation) for
        :attr:`TRANSFER_WINDOW_S`; if the target does not answer, or is still busy when the
        window ends, the call waits in the queue as any caller, at the place it took."""
        queue_id = self.summary.queue
        if self.state != "agent" or not queue_id:
            return "you are not talking to this caller"
        if target == self.agent:
            return "you cannot transfer a call to yourself"
        if target not in self.sb.directory.agents:
            return f"unknown agent {target!r}"
        refusal = self.sb.engine.transfer_refusal(target, queue_id)
        if refusal is not None:
            return f"{target} cannot take this call: {refusal}"
        await self._hand_over(queue_id, target)
        return None

    async def _hand_over(self, queue_id: str, target: str | None) -> None:
        """The agent's part ends (metered ``transfer``) and the caller re-enters ``queue_id``."""
        agent_leg = self.agent_leg
        self.transferred_by = self.agent if target is not None else None
        # Park the caller first: the bridge ends without hanging the caller up.
        await self.sb.link_for(self.node).api(f"uuid_park {self.call_id}")
        assert self.meter is not None
        self.meter.agent_unbridged(self.t(self.now_ms()), "transfer")
        self.state = "ivr"
        self._engine_end()
        if agent_leg is not None:
            self.sb.agent_legs.pop(agent_leg, None)
            await self._kill(agent_leg, "NORMAL_CLEARING")
        self.agent, self.agent_leg = None, None
        self.bridged = asyncio.Event()
        self.in_engine = False
        self.sb.spawn(self._requeue(queue_id, target), name=f"transfer {self.call_id}")

    async def _requeue(self, queue_id: str, target: str | None = None) -> None:
        self.transfer_target = target
        with contextlib.suppress(CallerGone):
            await self._queue(queue_id)

    # ------------------------------------------------------------------ channel events
    async def _events(self) -> None:
        async for ev in self.call.events:
            name = ev.name
            if ev.unique_id not in (None, self.call_id) and name != "CHANNEL_BRIDGE":
                continue
            if name == "CHANNEL_ANSWER":
                if self.answered_ms is None:
                    self.answered_ms = event_ms(ev, self.now())
            elif name == "CHANNEL_BRIDGE":
                other = ev.get("Bridge-B-Unique-ID") or ev.get("Other-Leg-Unique-ID")
                if other is not None and other == self.agent_leg and self.state == "queue":
                    self.state = "agent"
                    if self.meter is not None:
                        self.meter.agent_bridged(
                            self.t(event_ms(ev, self.now())), self.agent or "", other
                        )
                    self.bridged.set()
                    self.sb.progress(self)
                    self.sb.push(self.agent or "", self.card("connected"))
            elif name == "CHANNEL_UNBRIDGE":
                self.unbridge_ev = ev
            elif name == "DTMF":
                digit = ev.get("DTMF-Digit") or ""
                plan = self.plan
                if (
                    self.state == "queue"
                    and plan is not None
                    and plan.voicemail_digit
                    and digit == plan.voicemail_digit
                ):
                    self.decisions.put_nowait(ExitKey(digit))  # type: ignore[arg-type]
            elif name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
                self._on_hangup(ev)
        # The socket closed: whatever we did not see, the channel is gone.
        self.channel_gone_unseen()

    def _on_hangup(self, ev: Event | None) -> None:
        if self.gone.is_set():
            return
        self.hangup_ev = ev
        self.hangup_cause = (ev.get("Hangup-Cause") if ev is not None else None) or "LOST_CHANNEL"
        self.gone.set()
        self._close_room()

    def channel_gone_unseen(self) -> None:
        """Reconciliation or a closed socket says the channel is gone."""
        if not self.gone.is_set():
            self.sb.stats["calls_closed_unseen"] += 1
            self._on_hangup(None)

    def _engine_end(self, ended: Event | None = None) -> None:
        """The engine's part of the call ends; ``ended``: the switch's event of that moment
        (a hangup, an unbridge), so the agent's wrap-up counts from when it happened."""
        if not self.in_engine:
            return
        self.in_engine = False
        state = self.sb.engine.call_state(self.engine_id)
        if state == "connected":
            ended_at = ended.timestamp / 1e6 if ended is not None and ended.timestamp else None
            self.sb.feed(CallEnded(self.now(), self.engine_id, ended_at=ended_at))
            if self.agent is not None:
                self.sb.push(self.agent, {"kind": "ended", "call_id": self.call_id})
        elif state in ("waiting", "offered"):
            self.sb.feed(CallAbandoned(self.now(), self.engine_id))

    # ------------------------------------------------------------------ the end
    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for leg in list(self.pending.values()):
            self.sb.agent_legs.pop(leg, None)
            self.sb.spawn(self._kill(leg, "ORIGINATOR_CANCEL"))
        self.pending.clear()
        if self.agent_leg is not None and self.sb.agent_legs.pop(self.agent_leg, None) is not None:
            # Normally the switch clears the bridged agent with the caller; a race with the
            # bridge can leave it up, so make sure.
            self.sb.spawn(self._kill(self.agent_leg, "NORMAL_CLEARING"))
        ev = self.hangup_ev
        end_ms = event_ms(ev, self.now())
        if self.answered_ms is not None:
            end_ms = max(end_ms, self.answered_ms)
        self.summary.ended_ms = end_ms
        self.summary.cause = self.summary.cause or self.hangup_cause
        if self.state == "queue":
            self.summary.outcome = self.summary.outcome or "abandoned"
            if self.meter is not None:
                self.meter.leave_queue(self.t(end_ms), "abandon")
        elif self.state in ("agent", "after_agent", "consult", "conference"):
            self.summary.outcome = self.summary.outcome or "answered"
        elif self.state == "escalated":
            self.summary.outcome = self.summary.outcome or "escalated"
        elif self.answered_ms is None:
            self.summary.outcome = self.summary.outcome or "abandoned"
            self.summary.cause = self.summary.cause or "before_answer"
        else:
            self.summary.outcome = self.summary.outcome or "ivr"
        self._engine_end(ev)
        segments: list[Any] = []
        if self.meter is not None and ev is None and self.meter.is_answered:
            # We never heard the hangup: leave the meter open; reconciliation closes it from
            # the legs' CDRs (the ground truth) instead of our guess of the time.
            self.sb.stats["meters_left_for_cdrs"] += 1
            segments = self.meter.segments()
            self.summary.meter = self.meter.to_dict()
            self.state = "ended"
            self.sb.finished(self.summary, segments)
            return
        if self.meter is not None:
            with contextlib.suppress(ValueError):
                self.meter.hangup(self.t(end_ms), self.hangup_cause or "NORMAL_CLEARING")
            if self.second_end is not None and self.second_leg in self.meter.open_legs:
                ev2 = self.second_end.result() if self.second_end.done() else None
                with contextlib.suppress(ValueError):
                    # Unheard (the node's connection was down): the second line was bridged
                    # to the caller, so it ended with the caller; reconciliation checks it
                    # against its CDR.
                    self.meter.escalation_ended(
                        max(event_ms(ev2, end_ms / 1000), self.meter.answered_ms or 0),
                        self.second_leg,
                        (ev2.get("Hangup-Cause") if ev2 is not None else None) or "NORMAL_CLEARING",
                    )
            segments = self.meter.segments()
            self.summary.meter = self.meter.to_dict()
        self.state = "ended"
        if self.summary.tenant_id or self.summary.outcome == "failed":
            self.sb.finished(self.summary, segments)


def _drain(q: asyncio.Queue[Decision]) -> list[Decision]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    for d in out:
        if not isinstance(d, Overflow | Reject):
            q.put_nowait(d)
    return out


def _e164(number: str) -> str:
    digits = number.strip()
    if digits and not digits.startswith("+") and digits.isdigit():
        digits = "+" + digits
    return digits


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
