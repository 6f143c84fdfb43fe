"""Exceptions raised by the ESL client and server (frame/event errors live with their parsers)."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CommandError",
    "CommandTimeout",
    "ConnectionLost",
    "ESLError",
]


class ESLError(Exception):
    """Base class of the ESL library's connection-level errors."""


class ConnectionLost(ESLError, ConnectionError):
    """The ESL connection is closed (peer closed it, we closed it, watchdog, framing lost).

    Every command still waiting for its reply, every background job still
    waiting for its result and every event waiter fails with this error.
    """


class AuthError(ESLError):
    """FreeSWITCH refused the connection: wrong password, or an ACL rejected us."""

    def __init__(self, reply: str) -> None:
        super().__init__(f"ESL authentication refused: {reply}")
        self.reply = reply


class CommandError(ESLError):
    """A command was answered with ``-ERR ...`` (or ``-USAGE: ...``).

    ``text`` is FreeSWITCH's reply text or api body, stripped of trailing whitespace.
    """

    def __init__(self, command: str, text: str) -> None:
        super().__init__(f"{command!r} failed: {text}")
        self.command = command
        self.text = text


class CommandTimeout(ESLError, TimeoutError):
    """No reply in time. The connection stays usable: the late reply is discarded."""
