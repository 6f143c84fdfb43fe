"""Garbage collection paced by the switchboard's event loop (decision 0011, "Proof and figures").

CPython 3.11's collector pauses the whole process for a time proportional to the objects it
examines. Its automatic trigger counts allocations *minus deallocations* of tracked objects, so
in the switchboard's steady state (calls start as fast as others end) the young generation's
counter hardly grows while the young generation itself fills with every call's live objects:
with ``gc.set_threshold(50_000, 20, 100)`` a young collection examined 70,000-170,000 objects
and held the loop for 50-190 ms of CPU. The defaults (700, 10, 10) collect often, but move every
call's objects to the old generation, where a full collection of the live heap (the 25 % rule)
costs the same pause every few seconds.

:class:`GcPacer` instead:

* freezes what start-up built (``gc.freeze``: never examined again);
* collects the young generation from the loop every ``young_every`` seconds (250 ms: the
  objects created since and still alive, ~2-5 ms of CPU), and lets the automatic trigger do it too
  when a burst allocates ``young_threshold`` objects in between;
* never starts a middle or full collection on its own (huge thresholds): the call flow makes no
  reference cycles that outlive the young collection in normal operation (the per-call ones
  were removed), so those run on a timer (``middle_every``, ``full_every``), each one a pause
  of the size of the live heap, a few times an hour instead of every few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("telephony.switchboard.gc")

#: Effectively "never" for the automatic middle and full collections.
_NEVER = 1_000_000_000


class GcPacer:
    """See the module docstring. ``start()`` on the running loop, ``stop()`` to restore."""

    def __init__(
        self,
        *,
        young_every: float = 0.25,
        young_threshold: int = 10_000,
        middle_every: float = 300.0,
        full_every: float = 1800.0,
    ) -> None:
        self.young_every = young_every
        self.young_threshold = young_threshold
        self.middle_every = middle_every
        self.full_every = full_every
        #: collections run by the pacer: generation -> (count, seconds)
        self.runs: dict[int, list[float]] = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
        self._saved: tuple[int, int, int] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._next_middle = 0.0
        self._next_full = 0.0

    def start(self) -> None:
        """Freeze the start-up heap and take over the schedule (call on the running loop)."""
        loop = asyncio.get_running_loop()
        self._saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(self.young_threshold, _NEVER, _NEVER)
        now = loop.time()
        self._next_middle = now + self.middle_every
        self._next_full = now + self.full_every
        self._handle = loop.call_later(self.young_every, self._tick)

    def stop(self) -> None:
        """Stop pacing; restore the thresholds (the frozen heap stays frozen)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._next_full:
            generation = 2
            self._next_full = now + self.full_every
            self._next_middle = now + self.middle_every
        elif now >= self._next_middle:
            generation = 1
            self._next_middle = now + self.middle_every
        else:
            generation = 0
        t0 = time.perf_counter()
        gc.collect(generation)
        took = time.perf_counter() - t0
        run = self.runs[generation]
        run[0] += 1
        run[1] += took
        if generation:
            log.info("gc: generation %d collected in %.1f ms", generation, took * 1000)
        self._handle = loop.call_later(self.young_every, self._tick)
