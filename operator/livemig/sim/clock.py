"""Simulated time.  Rules never read a clock; the engine asks a `Clock` and passes `now` in.

Simulated seconds run `time_scale` times faster than wall seconds (a 60× scale turns a 10-minute drain into 10 s).
`ManualClock` is the test double: time moves only when a test calls `advance()`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Simulated seconds since the simulation started."""

    @property
    def time_scale(self) -> float: ...

    def now(self) -> float: ...

    async def sleep(self, sim_seconds: float) -> None:
        """Wait until `sim_seconds` of simulated time have passed."""
        ...


class RealClock:
    """Wall clock scaled by `time_scale`; simulated time 0 is the moment the clock was built."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self._scale = float(time_scale)
        self._start = time.monotonic()

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return (time.monotonic() - self._start) * self._scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(max(0.0, sim_seconds) / self._scale)


class ManualClock:
    """A clock that only moves when told to; `sleep` returns once `advance` has carried time past the deadline."""

    def __init__(self, start: float = 0.0, time_scale: float = 1.0) -> None:
        self._now = float(start)
        self._scale = float(time_scale)
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._now

    def advance(self, sim_seconds: float) -> None:
        if sim_seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += sim_seconds
        due = [w for w in self._waiters if w[0] <= self._now]
        self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, sim_seconds: float) -> None:
        if sim_seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + sim_seconds, fut))
        await fut
