"""Random members of a dict or set in O(1) each (Python containers have no random access).

A KeySampler keeps a snapshot list of the container's members and rebuilds it when it has
drifted: the size changed by half, many sampled members are gone, or a second went by. Picks
are uniform over the snapshot and always live (members gone since are skipped).
"""

from __future__ import annotations

import random
import time
from typing import Any


class KeySampler:
    """Random keys of one dict in O(1) per key, from a snapshot of its keys that is rebuilt when
    it has drifted (size changed by half, many sampled keys gone, or a second went by)."""

    __slots__ = ("keys", "built", "size")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.built = 0.0
        self.size = 0

    def sample(self, table: Any, count: int) -> list[bytes]:
        """`count` live members of `table` (a dict or set) chosen at random: distinct for
        tables of up to 64 members, drawn with replacement beyond; fewer only when most
        members of the snapshot are gone."""
        size = len(table)
        if size <= 64:
            keys = list(table)
            return random.sample(keys, min(count, size))
        now = time.monotonic()
        if not self.keys or size > self.size * 3 // 2 or size < self.size // 2 \
                or (now - self.built > 1.0 and size != self.size):
            self._rebuild(table, now)
        out = []
        misses = 0
        keys = self.keys
        while len(out) < count:
            key = keys[random.randrange(len(keys))]
            if key in table:
                out.append(key)
            else:
                misses += 1
                if misses > count + 8:
                    if now == self.built:
                        break
                    self._rebuild(table, now)
                    keys = self.keys
                    misses = 0
        return out

    def _rebuild(self, table: Any, now: float) -> None:
        self.keys = list(table)
        self.built = now
        self.size = len(table)
