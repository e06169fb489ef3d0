"""Cursor iteration for SCAN, HSCAN, SSCAN and ZSCAN.

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
"""

from __future__ import annotations

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
