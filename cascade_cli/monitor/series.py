"""Pure: bounded time series, per-second rates from counters, text sparklines. No I/O, no clock:
callers pass the time."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


MAX_POINTS = 300
"""Points a series keeps at most: enough for any chart, and a snapshot stays small (at a short
interval the series then covers less than the window)."""


class Series:
    """(time, value) points of the last `window` seconds, at most `max_points`; a value may be
    None (no figure)."""

    __slots__ = ("points", "window")

    def __init__(self, window: float, max_points: int = MAX_POINTS) -> None:
        self.window = window
        self.points: deque[tuple[float, float | None]] = deque(maxlen=max_points)

    def add(self, now: float, value: float | None) -> None:
        """Append a point and forget those older than the window."""
        self.points.append((now, value))
        while self.points and self.points[0][0] < now - self.window:
            self.points.popleft()

    def values(self) -> list[float | None]:
        return [value for _, value in self.points]

    def to_json(self, digits: int = 3) -> list[list[float | None]]:
        """`[[t, v], ...]` with t and v rounded, for the JSON snapshot."""
        return [[round(t, 3), None if v is None else round(v, digits)] for t, v in self.points]


class Rate:
    """Per-second rate of a monotonic counter between two readings. `update()` returns None on
    the first reading and after a reset (the counter went down: the peer restarted)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[float, float] | None = None

    def update(self, now: float, counter: float, own: float = 0.0) -> float | None:
        """The rate since the last reading, minus `own` increments the caller caused itself."""
        last, self.last = self.last, (now, counter)
        if last is None or counter < last[1] or now <= last[0]:
            return None
        return max(0.0, counter - last[1] - own) / (now - last[0])

    def reset(self) -> None:
        self.last = None


def sparkline(values: Sequence[float | None], width: int, floor: float = 0.0) -> str:
    """The last `width` values as block characters scaled from `floor` to their maximum; a gap
    (None) is a space. Always `width` characters (padded on the left)."""
    tail = list(values)[-width:] if width > 0 else []
    known = [v for v in tail if v is not None]
    top = max(known, default=floor)
    span = top - floor
    chars = []
    for value in tail:
        if value is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(SPARK_BLOCKS[0])
        else:
            level = (max(value, floor) - floor) / span
            chars.append(SPARK_BLOCKS[min(len(SPARK_BLOCKS) - 1, int(level * (len(SPARK_BLOCKS) - 1) + 0.5))])
    return " " * (width - len(chars)) + "".join(chars)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def total(values: Iterable[float | None]) -> float | None:
    """Sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None
