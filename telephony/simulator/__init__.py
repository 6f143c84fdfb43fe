"""A simulated FreeSWITCH 1.10 node for tests, demos and load runs (pure asyncio, no Django).

* :mod:`.wire`: byte-exact ESL encoders (replies, api responses, events).
* :mod:`.model`: channel model and FreeSWITCH-shaped channel headers.
* :mod:`.switch`: the switch core (channels, applications, API, events, faults).
* :mod:`.esl_server`: inbound ESL listener, outbound ``socket`` sessions, nodes.
* :mod:`.traffic`: callers and agent phones that behave like people.
* :mod:`.clock`: the virtual clock.

Run one node with ``python -m telephony.simulator --esl-port 8021 --password ClueCon
--outbound 127.0.0.1:8084 --seed 1``. See docs/decisions/0009-switch-simulator.md.
"""

from __future__ import annotations

from .clock import VirtualClock
from .esl_server import InboundSession, OutboundSession, SwitchNode
from .switch import AgentPhone, Faults, OriginateError, SimEvent, Switch

__all__ = [
    "AgentPhone",
    "Faults",
    "InboundSession",
    "OriginateError",
    "OutboundSession",
    "SimEvent",
    "Switch",
    "SwitchNode",
    "VirtualClock",
]
