"""A virtual clock: simulated wall time that can run faster than real time.

Contract: ``now()`` is the simulated epoch time in seconds; it advances ``speed``
times faster than the event loop's monotonic clock, plus any manual
:meth:`VirtualClock.skip`. ``sleep(d)`` waits ``d`` simulated seconds (``d /
speed`` real seconds). All simulator timing (ring times, playback lengths,
HEARTBEAT every 20 s, talk times) goes through one clock, so a test can run a
six-minute call in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import time


class VirtualClock:
    """Simulated time; ``start`` is the epoch at creation (default: now)."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._t0: float | None = None
        self._skipped = 0.0

    def _loop_time(self) -> float:
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self._start + self._loop_time() * self.speed + self._skipped

    def now_us(self) -> int:
        """Simulated epoch microseconds (``Event-Date-Timestamp``)."""
        return int(self.now() * 1_000_000)

    def skip(self, seconds: float) -> None:
        """Jump simulated time forward (sleepers are not woken early)."""
        self._skipped += seconds

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of simulated time take."""
        return max(0.0, seconds) / self.speed

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time."""
        await asyncio.sleep(self.real(seconds))
