"""Random members of a dict or set in O(1) each (Python containers have no random access).

Sampling (eviction, active expiry, RANDOMKEY). A KeySampler keeps a snapshot list of the container's members and rebuilds it when it has
drifted: the size changed by half, many sampled members are gone, or a second went by. Picks
are uniform over the snapshot and always live (members gone since are skipped).

Random picks. Python's sets and dicts have no random access, so SRANDMEMBER, SPOP and HRANDFIELD
on a big container keep a Picker for it (`picker(table)`): a list holding every live member
exactly once plus members removed since the list was built (`gone`, skipped when drawn). The
commands that change a set or hash in place report to its picker, if it has one
(`PICKERS.get(id(table))`, a cheap test while PICKERS is empty), the members they really added
(before or after adding them) and removed (after removing them). A pick costs O(1) expected time;
a picker whose list is half dead is dropped, to be rebuilt by the next pick (amortised O(1) per
removal). Pickers hold their container: one whose container is referenced by nothing else
(deleted, overwritten) is dropped within about a second (Engine.tick calls sweep_pickers, and
so does the next pick), as is one unused for PICKER_IDLE seconds; at most MAX_PICKERS pickers holding
MAX_PICKER_MEMBERS members in all are kept (least recently used dropped first).
"""

from __future__ import annotations

import random
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
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


PICK_MIN = 128                  # smaller containers are simply copied to pick from
MAX_PICKERS = 256
MAX_PICKER_MEMBERS = 16_000_000
PICKER_IDLE = 60.0              # seconds unused after which a picker is dropped
PICKERS: OrderedDict[int, Picker] = OrderedDict()   # id(container) -> its picker, LRU first
_picker_members = [0]
_sweep = [0.0]                  # next sweep from a pick (monotonic seconds)
_random = random.random


class Picker:
    """Uniform random members of one set or hash (see the module docstring)."""

    __slots__ = ("gone", "members", "table", "used")

    def __init__(self, table: Any) -> None:
        self.table = table
        self.members: list[Any] = list(table)
        self.gone: set[Any] = set()
        self.used = time.monotonic()

    def added(self, members: Iterable[Any]) -> None:
        """`members` (distinct) were just added to the table; none was in it before."""
        gone = self.gone
        for member in members:
            if member in gone:
                gone.discard(member)
            else:
                self.members.append(member)
                _picker_members[0] += 1

    def removed(self, members: Iterable[Any]) -> None:
        """`members` were in the table and were just removed from it."""
        gone = self.gone
        gone.update(members)
        if len(gone) * 2 > len(self.members) and PICKERS.get(id(self.table)) is self:
            _drop(id(self.table))       # half dead: the next pick starts afresh

    def _rebuild(self) -> None:
        _picker_members[0] += len(self.table) - len(self.members)
        self.members = list(self.table)
        self.gone = set()

    def one(self) -> Any:
        """A uniformly random member (the table must not be empty)."""
        members = self.members
        table = self.table
        if len(self.gone) * 2 > len(members) or len(members) - len(self.gone) != len(table):
            self._rebuild()             # half dead, or a change was not reported
            members = self.members
        misses = 0
        while True:
            member = members[int(_random() * len(members))]
            if member in table:
                return member
            misses += 1
            if misses > 64:             # cannot happen while every change is reported
                self._rebuild()
                members = self.members
                misses = 0

    def distinct(self, count: int) -> list[Any]:
        """`count` different random members (count well below the table's size)."""
        picked: dict[Any, None] = {}
        one = self.one
        while len(picked) < count:
            picked[one()] = None
        return list(picked)

    def many(self, count: int) -> list[Any]:
        """`count` random members, repetitions allowed."""
        one = self.one
        return [one() for _ in range(count)]


def picker(table: Any) -> Picker:
    """The picker of `table` (a set or a dict), created when it has none."""
    now = time.monotonic()
    if now >= _sweep[0]:
        _sweep[0] = now + 1.0
        sweep_pickers(now)
    ident = id(table)
    found = PICKERS.get(ident)
    if found is None or found.table is not table:
        if found is not None:
            _drop(ident)
        found = PICKERS[ident] = Picker(table)
        _picker_members[0] += len(found.members)
        while len(PICKERS) > MAX_PICKERS or (_picker_members[0] > MAX_PICKER_MEMBERS and len(PICKERS) > 1):
            _drop(next(iter(PICKERS)))
    else:
        PICKERS.move_to_end(ident)
        found.used = now
    return found


def _drop(ident: int) -> None:
    found = PICKERS.pop(ident)
    _picker_members[0] -= len(found.members)


def sweep_pickers(now: float | None = None) -> None:
    """Drop the pickers whose container is referenced by nothing else, or left unused."""
    if now is None:
        now = time.monotonic()
    getrefcount = sys.getrefcount
    for ident, found in list(PICKERS.items()):
        # references: the picker's own, and the argument of getrefcount
        if getrefcount(found.table) <= 2 or now - found.used > PICKER_IDLE:
            _drop(ident)


def pick_one(table: Any) -> Any:
    """A uniformly random member of a non-empty set or dict."""
    if len(table) <= PICK_MIN:
        return random.choice(list(table))
    return picker(table).one()


def pick_distinct(table: Any, count: int) -> list[Any]:
    """`count` different random members (0 < count < len(table)). As Redis does, a count that is
    a large part of the container works on a copy; smaller ones draw members one by one."""
    size = len(table)
    if size <= PICK_MIN or count * 3 > size:
        return random.sample(list(table), count)
    return picker(table).distinct(count)


def pick_many(table: Any, count: int) -> list[Any]:
    """`count` random members of a non-empty set or dict, repetitions allowed."""
    size = len(table)
    if size <= PICK_MIN or size < 4 * count:
        return random.choices(list(table), k=count)
    return picker(table).many(count)
