"""Cursor iteration for SCAN, HSCAN, SSCAN and ZSCAN, and random picks from sets and hashes.

Cursors. Redis walks its hash tables with a reverse-binary cursor; this server keeps, per
iteration, a snapshot of the container's members taken when the cursor is 0, and the cursor
encodes (snapshot id, offset). The guarantees SCAN documents hold: every element present for the
whole iteration is returned; elements added meanwhile may or may not be. Callers drop elements
that are gone when a batch is returned. A snapshot is dropped when its iteration ends, or evicted
only when the snapshots in flight exceed MAX_SNAPSHOTS or together hold more than
MAX_SNAPSHOT_ELEMENTS members (the memory they pin): iterations that were never continued go
first (oldest first), then the least recently continued ones; the snapshot just taken always
stays. A flood of unrelated SCAN 0 calls therefore cannot end an iteration in progress unless
more than MAX_SNAPSHOTS of them stay unfinished. An unknown cursor (evicted or made up) ends the
iteration with cursor 0.

Random picks. Python's sets and dicts have no random access, so SRANDMEMBER, SPOP and HRANDFIELD
on a big container keep a Picker for it (`picker(table)`): a list holding every live member
exactly once plus members removed since the list was built (`gone`, skipped when drawn). The
commands that change a set or hash in place report to its picker, if it has one
(`PICKERS.get(id(table))`, a cheap test while PICKERS is empty), the members they really added
(before or after adding them) and removed (after removing them). A pick costs O(1) expected time;
a picker whose list is half dead is dropped, to be rebuilt by the next pick (amortised O(1) per
removal). Pickers hold their container: one whose container is referenced by nothing else
(deleted, overwritten) is dropped within about a second (a timer on the running event loop, and
on the next pick), as is one unused for PICKER_IDLE seconds; at most MAX_PICKERS pickers holding
MAX_PICKER_MEMBERS members in all are kept (least recently used dropped first).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from cascade_cli.resp.commands import NOT_INT, SYNTAX, c_bytes, to_int
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.protocol import ErrorReply

MAX_SNAPSHOTS = 1024
MAX_SNAPSHOT_ELEMENTS = 20_000_000
# Iterations in flight: never continued yet ("fresh"), and continued at least once ("going"),
# each least recently used first. Values are the snapshots (lists of members).
_fresh: OrderedDict[int, list[Any]] = OrderedDict()
_going: OrderedDict[int, list[Any]] = OrderedDict()
_held = [0]                     # members held by all snapshots
_next_id = [1]


def parse_cursor(raw: bytes) -> int:
    """A SCAN-family cursor as Redis 7.0 reads it: strtoul over the whole argument (an optional
    sign, digits or nothing; a negative value wraps around; a NUL byte ends the number), or
    Redis's 'invalid cursor' error."""
    raw = c_bytes(raw)
    digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not digits.isdigit():
        if raw:                               # "" converts nothing and is cursor 0
            raise ErrorReply("ERR invalid cursor")
        return 0
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > 20 or int(digits) >= 2**64:
        raise ErrorReply("ERR invalid cursor")
    value = int(digits)
    return (-value) % 2**64 if raw[:1] == b"-" else value


def parse_options(argv: list[bytes], start: int, allow_type: bool = False
                  ) -> tuple[Callable[[bytes], bool] | None, int, bytes | None]:
    """MATCH pattern, COUNT n and (SCAN only) TYPE name from argv[start:]."""
    match = None
    count = 10
    kind = None
    i = start
    while i < len(argv):
        option = argv[i].lower()
        if i + 1 >= len(argv):
            raise ErrorReply(SYNTAX)
        value = argv[i + 1]
        if option == b"count":
            count = to_int(value, NOT_INT)
            if count < 1:
                raise ErrorReply(SYNTAX)
        elif option == b"match":
            match = None if value == b"*" else compile_glob(value)
        elif option == b"type" and allow_type:
            kind = value.lower()
        else:
            raise ErrorReply(SYNTAX)
        i += 2
    return match, count, kind


def scan(cursor: int, members: Callable[[], Iterable[Any]], count: int) -> tuple[int, list[Any]]:
    """The next batch of up to about `count` members and the cursor to continue with (0: done).

    `members()` is called only when a new iteration starts (cursor 0).
    """
    if cursor == 0:
        snapshot = list(members())
        if len(snapshot) <= count:
            return 0, snapshot
        ident = _next_id[0]
        _next_id[0] = ident + 1 if ident < 2**31 else 1
        _fresh.pop(ident, None)             # an id wrapped around onto a forgotten iteration
        _forget(_going, ident)
        _fresh[ident] = snapshot
        _held[0] += len(snapshot)
        _evict(ident)
        offset = 0
    else:
        ident, offset = cursor >> 32, cursor & 0xFFFFFFFF
        snapshot = _fresh.pop(ident, None)  # type: ignore[assignment]
        if snapshot is not None:
            _going[ident] = snapshot
        else:
            snapshot = _going.get(ident)  # type: ignore[assignment]
            if snapshot is None:
                return 0, []
            _going.move_to_end(ident)
    batch = snapshot[offset:offset + count]
    offset += count
    if offset >= len(snapshot):
        _forget(_fresh, ident)
        _forget(_going, ident)
        return 0, batch
    return (ident << 32) | offset, batch


def _forget(table: OrderedDict[int, list[Any]], ident: int) -> None:
    snapshot = table.pop(ident, None)
    if snapshot is not None:
        _held[0] -= len(snapshot)


def _evict(keep: int) -> None:
    """Drop snapshots beyond the caps: never-continued ones first, oldest first; never `keep`."""
    while len(_fresh) + len(_going) > MAX_SNAPSHOTS or _held[0] > MAX_SNAPSHOT_ELEMENTS:
        for table in (_fresh, _going):
            victim = next((i for i in table if i != keep), None)
            if victim is not None:
                _forget(table, victim)
                break
        else:
            return


def snapshots_in_flight() -> tuple[int, int]:
    """(iterations in flight, members their snapshots hold): for tests and introspection."""
    return len(_fresh) + len(_going), _held[0]


# --- random picks ------------------------------------------------------------------------------

PICK_MIN = 128                  # smaller containers are simply copied to pick from
MAX_PICKERS = 256
MAX_PICKER_MEMBERS = 16_000_000
PICKER_IDLE = 60.0              # seconds unused after which a picker is dropped
PICKERS: OrderedDict[int, Picker] = OrderedDict()   # id(container) -> its picker, LRU first
_picker_members = [0]
_sweep = [0.0, None]            # next inline sweep (monotonic), the loop the timer runs on
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
        _schedule_sweep()
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


def _schedule_sweep() -> None:
    """Keep sweeping about once a second on the running event loop while pickers exist."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if _sweep[1] is loop:
        return
    _sweep[1] = loop

    def tick() -> None:
        if loop.is_closed():
            return
        sweep_pickers()
        if PICKERS:
            loop.call_later(1.0, tick)
        else:
            _sweep[1] = None

    loop.call_later(1.0, tick)


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
