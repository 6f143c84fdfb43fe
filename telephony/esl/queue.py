"""Bounded event queue with an explicit, counted and logged overflow policy."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from .errors import ConnectionLost

__all__ = ["EventQueue", "OverflowPolicy"]

T = TypeVar("T")

log = logging.getLogger("telephony.esl.queue")


class OverflowPolicy(enum.StrEnum):
    """What to do when an event arrives and the queue is full.

    * ``DROP_OLDEST``: discard the oldest queued event to make room (the switch
      keeps running; consumers see the freshest state).
    * ``DISCONNECT``: refuse the event and make the connection close (a
      reconnecting supervisor then resynchronises from ``show channels``).

    Either way ``EventQueue.dropped`` is incremented and a warning is logged
    (at most once per ``log_interval`` seconds, with the running total).
    """

    DROP_OLDEST = "drop_oldest"
    DISCONNECT = "disconnect"


class EventQueue(Generic[T]):
    """A bounded FIFO of events for one or more consumers (single event loop).

    ``put`` never blocks (it is called from the socket reader, which must keep
    up with FreeSWITCH) and returns False when the policy is ``DISCONNECT`` and
    the queue is full. ``get`` waits; after :meth:`close` it drains what is left
    and then raises the close reason (``ConnectionLost`` by default).
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        *,
        name: str = "events",
        log_interval: float = 5.0,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.policy = OverflowPolicy(policy)
        self.name = name
        self.log_interval = log_interval
        #: Events discarded (DROP_OLDEST) or refused (DISCONNECT) because the queue was full.
        self.dropped = 0
        #: Events accepted by ``put``.
        self.accepted = 0
        #: Largest length reached.
        self.high_water = 0
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: BaseException | None = None
        self._last_log = float("-inf")
        self._dropped_at_last_log = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (until :meth:`reopen`)."""
        return self._closed is not None

    def put(self, item: T) -> bool:
        """Enqueue ``item``; apply the overflow policy when full.

        Returns False only if the item was refused (``DISCONNECT`` policy): the
        caller must then close the connection. Items put after ``close`` are
        discarded (and counted as dropped).
        """
        items = self._items
        if self._closed is not None:
            self.dropped += 1
            return True
        if len(items) >= self.maxsize:
            self.dropped += 1
            self._log_overflow()
            if self.policy is OverflowPolicy.DISCONNECT:
                return False
            items.popleft()
        items.append(item)
        self.accepted += 1
        if len(items) > self.high_water:
            self.high_water = len(items)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _log_overflow(self) -> None:
        # Never silent, but one line per interval: an overloaded consumer must
        # not also be buried under a log line per event.
        now = time.monotonic()
        if now - self._last_log >= self.log_interval:
            log.warning(
                "%s queue full (%d): %s; %d dropped since last report, %d in total",
                self.name,
                self.maxsize,
                "dropping the oldest event"
                if self.policy is OverflowPolicy.DROP_OLDEST
                else "closing the connection",
                self.dropped - self._dropped_at_last_log,
                self.dropped,
            )
            self._last_log = now
            self._dropped_at_last_log = self.dropped

    def get_nowait(self) -> T:
        """Pop the oldest item; raise ``asyncio.QueueEmpty`` (or the close reason)."""
        if self._items:
            return self._items.popleft()
        if self._closed is not None:
            raise self._closed
        raise asyncio.QueueEmpty

    async def get(self, timeout: float | None = None) -> T:
        """Wait for the oldest item (``TimeoutError`` after ``timeout`` seconds)."""
        if self._items:
            return self._items.popleft()
        async with asyncio.timeout(timeout):
            while not self._items:
                if self._closed is not None:
                    raise self._closed
                waiter = self._waiter
                if waiter is None or waiter.done():
                    waiter = self._waiter = asyncio.get_running_loop().create_future()
                await asyncio.shield(waiter)  # shared by all getters: never cancel it
        return self._items.popleft()

    async def __aiter__(self) -> AsyncIterator[T]:
        """Yield items until the queue is closed and drained."""
        while True:
            try:
                yield await self.get()
            except ConnectionLost:
                return

    def close(self, reason: BaseException | None = None) -> None:
        """Stop accepting items; getters drain the rest, then get ``reason``."""
        self._closed = reason if reason is not None else ConnectionLost(f"{self.name} queue closed")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reopen(self) -> None:
        """Accept items again (used by a supervisor reusing the queue)."""
        self._closed = None
