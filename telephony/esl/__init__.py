"""FreeSWITCH Event Socket (ESL) library: pure asyncio, no Django.

* :mod:`.frames`: incremental, chunking-independent frame parser.
* :mod:`.events`: typed :class:`Event` from plain/json/xml event frames.
* :mod:`.client`: inbound client and reconnecting supervisor.
* :mod:`.outbound`: outbound socket server (one coroutine per call).
* :mod:`.api`: parsers for ``show channels|calls as json``.

See docs/decisions/0005-esl-library.md for why this exists.
"""

from __future__ import annotations

from .api import CallRow, ChannelRow, ShowFormatError, parse_show_calls, parse_show_channels
from .client import BackgroundJob, InboundClient, ReconnectingClient, Subscription
from .connection import ConnectionStats, ESLConnection
from .errors import AuthError, CommandError, CommandTimeout, ConnectionLost, ESLError
from .events import Event, EventValidationError, event_from_frame
from .frames import Frame, FrameError, FrameParser
from .outbound import OutboundCall, OutboundServer
from .queue import EventQueue, OverflowPolicy

__all__ = [
    "AuthError",
    "BackgroundJob",
    "CallRow",
    "ChannelRow",
    "CommandError",
    "CommandTimeout",
    "ConnectionLost",
    "ConnectionStats",
    "ESLConnection",
    "ESLError",
    "Event",
    "EventQueue",
    "EventValidationError",
    "Frame",
    "FrameError",
    "FrameParser",
    "InboundClient",
    "OutboundCall",
    "OutboundServer",
    "OverflowPolicy",
    "ReconnectingClient",
    "ShowFormatError",
    "Subscription",
    "event_from_frame",
    "parse_show_calls",
    "parse_show_channels",
]
