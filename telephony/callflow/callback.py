"""Callbacks: the platform calls a caller back when an agent is free, keeping their place.

A caller who accepts the callback offer hangs up; a :class:`CallbackSession` then waits in the
same queue in the routing engine, with a priority that puts it where the caller was (the
engine orders by ``entered_at - head_start * priority``). When the engine offers it an agent,
the agent's phone rings first ("agent-first": nobody is called back into a queue); once the
agent answers, the caller is dialled with the client's number as caller id and bridged to the
agent. If the caller does not answer, the agent is released and the callback is tried again
after ``retry_s``, up to ``attempts`` times.

Metering (segments.md): the outbound leg to the caller is the call's A leg, origin
``callback``: ``callback_dial`` from its answer to the bridge, then ``agent``. Each attempt is
one call record (an unanswered attempt has a CDR and no segments; the rate plan's attempt fee,
if any, applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid as uuidlib
from typing import TYPE_CHECKING, Any

from routing.engine.model import CallArrived, CallEnded, Decision, OfferAnswered, Overflow, Reject
from telephony.esl import CommandError, ConnectionLost, ESLError, Event

from .meter import CallMeter
from .switchboard import CallSummary, event_ms

if TYPE_CHECKING:
    from .switchboard import Switchboard

log = logging.getLogger("telephony.switchboard.callback")


class CallbackSession:
    """One attempt to call a caller back (see the module docstring)."""

    def __init__(
        self,
        sb: Switchboard,
        *,
        tenant_id: str,
        number: str,
        queue_id: str,
        parent_call_id: str,
        node: str,
        waited_s: float,
        attempt: int = 1,
    ) -> None:
        self.sb = sb
        self.tenant_id = tenant_id
        self.number = number
        self.queue_id = queue_id
        self.parent_call_id = parent_call_id
        self.node = node
        self.waited_s = waited_s
        self.attempt = attempt
        self.call_id = f"cb-{uuidlib.uuid4()}"
        self.engine_id = self.call_id
        self.state = "queue"
        self.agent: str | None = None
        self.agent_leg: str | None = None
        self.customer_leg: str | None = None
        self.pending: dict[str, str] = {}
        self.meter: CallMeter | None = None
        self.summary = CallSummary(
            call_id=self.call_id,
            tenant_id=tenant_id,
            node=node,
            did="",
            caller=number,
            origin="callback",
            started_ms=int(sb.now() * 1000),
            queue=queue_id,
            parent_call_id=parent_call_id,
        )

    # -- the switchboard's session protocol -------------------------------------------------
    def start(self) -> None:
        queue = self.sb.directory.queues.get(self.queue_id)
        head = queue.priority_head_start_s if queue is not None else 90.0
        priority = max(0, math.ceil(self.waited_s / head)) if head > 0 else 0
        self.sb.sessions[self.engine_id] = self
        self.sb.stats["callbacks_queued"] += 1
        self.sb.feed(
            CallArrived(
                self.sb.now(),
                self.engine_id,
                self.queue_id,
                priority=priority,
                caller_id=self.number,
            )
        )

    def card(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "call_id": self.call_id, "tenant": self.tenant_id, "caller": self.number,
                "queue": self.queue_id, "contact": None, "callback": True}  # fmt: skip

    def offer(self, agent_id: str, offer_id: int) -> None:
        self.sb.spawn(self._serve(agent_id), name=f"callback {self.call_id} {agent_id}")

    def cancel_offer(self, agent_id: str, reason: str) -> None:
        leg = self.pending.pop(agent_id, None)
        if leg is not None:
            self.sb.agent_legs.pop(leg, None)
            self.sb.spawn(self._kill(leg, "ORIGINATOR_CANCEL"))

    def decision(self, d: Decision) -> None:
        if isinstance(d, Overflow | Reject) and self.state == "queue":
            # The queue gave up on it (max wait, closed): the callback is not made.
            self.state = "ended"
            self.summary.outcome, self.summary.cause = (
                "failed",
                f"callback_{getattr(d, 'reason', 'dropped')}",
            )
            self._done()

    def leg_gone(self, uuid: str, ev: Event | None) -> None:
        return  # the serving task waits on the legs itself

    # -- work --------------------------------------------------------------------------------
    async def _kill(self, leg: str, cause: str) -> None:
        with contextlib.suppress(ESLError, ConnectionLost, KeyError, TimeoutError):
            await self.sb.link_for(self.node).api(f"uuid_kill {leg} {cause}")

    def _dial(self, leg: str, dial: str, role: str, extra: dict[str, str]) -> str:
        variables = {
            "origination_uuid": leg,
            "originate_timeout": "30",
            "park_timeout": "60",
            "ignore_early_media": "true",
            "ccp_call": self.call_id,
            "ccp_tenant": self.tenant_id,
            "ccp_role": role,
            **extra,
        }
        return "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}" + dial + " &park()"

    async def _serve(self, agent_id: str) -> None:
        sb = self.sb
        seat = sb.directory.agents.get(agent_id)
        if seat is None:
            sb.offer_failed(self.engine_id, agent_id, "USER_NOT_REGISTERED", sb.now())
            return
        link = sb.link_for(self.node)
        leg = sb.new_leg_uuid()
        self.pending[agent_id] = leg
        sb.register_leg(leg, self.call_id, agent_id)
        try:
            await link.originate(self._dial(leg, seat.endpoint, "agent", {"ccp_agent": agent_id,
                                 "origination_caller_id_number": self.number}), timeout=45)  # fmt: skip
        except (CommandError, ESLError, ConnectionLost, TimeoutError) as exc:
            if self.pending.pop(agent_id, None) == leg:
                sb.agent_legs.pop(leg, None)
                cause = (
                    str(exc).rsplit(" ", 1)[-1]
                    if isinstance(exc, CommandError)
                    else "NORMAL_TEMPORARY_FAILURE"
                )
                sb.offer_failed(self.engine_id, agent_id, cause, sb.now())
            return
        if self.pending.pop(agent_id, None) != leg or self.state != "queue":
            self.summary.legs[leg] = "agent"
            sb.agent_legs.pop(leg, None)
            await self._kill(leg, "ORIGINATOR_CANCEL")
            return
        sb.feed(OfferAnswered(sb.now(), self.engine_id, agent_id))
        if sb.engine.agent_call(agent_id) != self.engine_id:
            self.summary.legs[leg] = "agent"
            await self._kill(leg, "ORIGINATOR_CANCEL")
            return
        self.state = "dialling"
        self.agent, self.agent_leg = agent_id, leg
        self.summary.agent = agent_id
        self.summary.legs[leg] = "agent"
        sb.push(agent_id, self.card("connected"))
        await self._call_customer(link)

    async def _call_customer(self, link: Any) -> None:
        sb = self.sb
        leg = sb.new_leg_uuid()
        self.customer_leg = leg
        self.summary.legs[leg] = "callback"
        sb.register_leg(leg, self.call_id, "")
        meter = self.meter = CallMeter(self.tenant_id, self.call_id, leg, "callback", self.node)
        template = sb.callback_dial
        number_id = self.sb.caller_id_for(self.tenant_id)
        customer_end = link.wait_leg_end(leg)
        agent_end = link.wait_leg_end(self.agent_leg or "")
        try:
            await link.originate(
                self._dial(
                    leg,
                    template.format(number=self.number),
                    "callback",
                    {"origination_caller_id_number": number_id},
                ),  # fmt: skip
                timeout=45,
            )
        except (CommandError, ESLError, ConnectionLost, TimeoutError) as exc:
            sb.agent_legs.pop(leg, None)
            self.summary.outcome, self.summary.cause = (
                "failed",
                f"callback_{str(exc).rsplit(' ', 1)[-1][:40]}",
            )
            await self._release_agent()
            self._retry_or_give_up()
            self._done()
            return
        answered = link.answered_ms.pop(leg, None) or int(sb.now() * 1000)
        meter.answered(answered)
        sb.progress(self)
        try:
            await link.api(f"uuid_bridge {leg} {self.agent_leg}")
            meter.agent_bridged(
                max(answered, int(sb.now() * 1000)), self.agent or "", self.agent_leg or ""
            )
            self.state = "agent"
            sb.progress(self)
        except (ESLError, ConnectionLost, TimeoutError, ValueError) as exc:
            log.warning("callback %s: bridge failed: %r", self.call_id, exc)
            await self._kill(leg, "NORMAL_TEMPORARY_FAILURE")
        # Until the caller's leg ends (the agent hanging up ends it too: bridged).
        done, _pending = await asyncio.wait(
            {customer_end, agent_end}, return_when=asyncio.FIRST_COMPLETED
        )
        if not customer_end.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(customer_end)
        ev = customer_end.result() if customer_end.done() else None
        end = event_ms(ev, sb.now())
        with contextlib.suppress(ValueError):
            meter.hangup(
                max(end, answered),
                (ev.get("Hangup-Cause") if ev is not None else None) or "NORMAL_CLEARING",
            )
        self.summary.answered_ms = answered
        self.summary.ended_ms = end
        self.summary.outcome = "answered" if self.state == "agent" else "failed"
        self.summary.cause = self.summary.cause or (
            "" if self.state == "agent" else "callback_bridge_failed"
        )
        sb.agent_legs.pop(leg, None)
        await self._release_agent()
        self._done()

    async def _release_agent(self) -> None:
        sb = self.sb
        if sb.engine.call_state(self.engine_id) in ("connected", "waiting", "offered"):
            sb.feed(CallEnded(sb.now(), self.engine_id))
        if self.agent_leg is not None:
            sb.agent_legs.pop(self.agent_leg, None)
            await self._kill(self.agent_leg, "NORMAL_CLEARING")
        if self.agent:
            sb.push(self.agent, {"kind": "ended", "call_id": self.call_id})

    def _retry_or_give_up(self) -> None:
        sb = self.sb
        if self.attempt >= sb.callback_attempts:
            sb.stats["callbacks_given_up"] += 1
            return
        sb.stats["callbacks_retried"] += 1

        async def later() -> None:
            await sb.clock.sleep(sb.callback_retry_s)
            CallbackSession(sb, tenant_id=self.tenant_id, number=self.number, queue_id=self.queue_id,
                            parent_call_id=self.parent_call_id, node=self.node,
                            waited_s=self.waited_s + sb.callback_retry_s, attempt=self.attempt + 1).start()  # fmt: skip

        sb.spawn(later(), name=f"callback retry {self.number}")

    def _done(self) -> None:
        self.state = "ended"
        for key in [k for k, v in self.sb.sessions.items() if v is self]:
            del self.sb.sessions[key]
        segments = self.meter.segments() if self.meter is not None and self.meter.is_ended else []
        if self.meter is not None:
            self.summary.meter = self.meter.to_dict()
        self.sb.finished(self.summary, segments)
