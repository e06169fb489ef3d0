"""The open-loop schedule: request i is due at a fixed time, whatever happened to request i-1.

`Schedule` is pure arithmetic; `pace()` drives it on the running event loop, calling
`send(intended_ns)` for each request when its time comes (late ones at once, each keeping its
own intended time, which is what latency is then measured from: coordinated omission
corrected, as wrk2 and oha do). The loop sleeps until 1.5 ms before the next request and spins
(yielding to the event loop) for the rest, so sends leave within tens of microseconds of their
time; that spinning shows up as load-generator CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SPIN_NS = 1_500_000


class Schedule:
    """Request i is due at `first_ns + i * interval_ns`."""

    def __init__(self, rate: float, start_ns: int, offset_s: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval_ns = 1e9 / rate
        self.first_ns = start_ns + int((offset_s * 1e9) % self.interval_ns)

    def due_at(self, index: int) -> int:
        return self.first_ns + int(index * self.interval_ns)


async def pace(schedule: Schedule, send: Callable[[int], None], *, limit: int | None = None,
               until_ns: int | None = None, stopping: Callable[[], bool] = lambda: False) -> int:
    """Send requests on `schedule` until `limit` were sent, the next one would be due after
    `until_ns`, or `stopping()` says so; returns how many were sent."""
    index = 0
    clock = time.monotonic_ns
    while True:
        if limit is not None and index >= limit:
            return index
        due = schedule.due_at(index)
        if until_ns is not None and due >= until_ns:
            return index
        now = clock()
        if due <= now:
            send(due)
            index += 1
            continue
        if stopping():
            return index
        wait = due - now
        await asyncio.sleep((wait - SPIN_NS) / 1e9 if wait > SPIN_NS else 0)
