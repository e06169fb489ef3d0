"""Pure: channel history as streams: event ids, history bounds, stream entries <-> event messages,
and the in-process stream of the local bus.

An event id is a Redis stream id, `<milliseconds>-<sequence>`: ordered and unique across every
instance on one Redis, because Redis assigns it. The history of a channel is its stream,
bounded by a count (MAXLEN) and an age (MINID); `resume_step()` decides what a resuming client
gets from a page of it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

StreamId = tuple[int, int]
"""A stream id as (milliseconds, sequence): tuples compare in stream order."""

ZERO: StreamId = (0, 0)
_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
MAX_PART = 2 ** 64 - 1
MAX_ID_CHARS = 41
"""The longest stream id, `18446744073709551615-18446744073709551615`."""
PAGE = 500
"""Entries read from a stream per request (a resume or catch-up takes as many pages as it needs)."""


def parse_id(text: str | bytes) -> StreamId:
    """`"1733360000000-3"` (or `"1733360000000"`, sequence 0) as a StreamId; ValueError otherwise."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    match = _ID.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:60]!r} is not an event id: ids look like 1733360000000-0")
    ms, seq = int(match.group(1)), int(match.group(2) or 0)
    if ms > MAX_PART or seq > MAX_PART:
        raise ValueError(f"{text[:60]!r} is out of range for an event id")
    return ms, seq


def format_id(ident: StreamId) -> str:
    return f"{ident[0]}-{ident[1]}"


@dataclass(frozen=True)
class Bounds:
    """How much history a channel keeps: at most `size` events, none older than `ttl` seconds
    (0: no age limit)."""

    size: int
    ttl: float

    def min_id(self, now_ms: int) -> StreamId | None:
        """The oldest id to keep at `now_ms` (for XTRIM MINID), or None without an age limit."""
        if self.ttl <= 0:
            return None
        return max(0, now_ms - int(self.ttl * 1000)), 0


def channel_bounds(default: Bounds, overrides: Iterable[str]) -> Callable[[str], Bounds]:
    """`bounds(channel)` from the default and `CHANNEL=SIZE/TTL` overrides (validated by config)."""
    table: dict[str, Bounds] = {}
    for item in overrides:
        name, _, spec = item.partition("=")
        size, _, ttl = spec.partition("/")
        table[name] = Bounds(int(size), float(ttl))
    return lambda channel: table.get(channel, default)


# --- entries and event messages ------------------------------------------------------------------

TS_FIELD = b"t"
DATA_FIELD = b"d"


def event_prefix(channel_json: bytes) -> bytes:
    """The constant start of every event message of a channel (`channel_json` is its JSON string)."""
    return b'{"type":"event","channel":' + channel_json + b',"id":"'


def event_message(prefix: bytes, ident: bytes, ts: bytes, data: bytes) -> bytes:
    """The event message `{"type":"event","channel":..,"id":..,"ts":..,"data":..}` built from a
    stream entry's parts without decoding its data (`data` is already compact JSON)."""
    return b"".join((prefix, ident, b'","ts":', ts, b',"data":', data, b"}"))


def entry_message(prefix: bytes, ident: bytes | str, fields: dict[bytes, bytes]) -> bytes:
    """The event message of one stream entry as XRANGE returns it; ValueError for a foreign entry."""
    try:
        ts, data = fields[TS_FIELD], fields[DATA_FIELD]
    except (KeyError, TypeError):
        raise ValueError("a history entry without the hub's fields") from None
    return event_message(prefix, ident.encode() if isinstance(ident, str) else ident, ts, data)


# --- resuming ------------------------------------------------------------------------------------

@dataclass
class ResumeStep:
    """What one page of history gives a resuming client: `entries` to send (in order), whether the
    client is `done` (then it joins live delivery), and where the next page starts."""

    entries: list[tuple[StreamId, bytes]]
    done: bool
    after: StreamId


def resume_step(after: StreamId, page: list[tuple[StreamId, bytes]], full: bool,
                live_cursor: StreamId) -> ResumeStep:
    """Split a page read after `after` (ids ascending; `full` when it hit the page size) against
    the instance's live cursor: entries up to the cursor go to the client; entries past it reach
    the client live once it joins, so they are left out here. The client is done when the page
    reached the cursor or the end of the stream."""
    entries = [item for item in page if after < item[0] <= live_cursor]
    last = entries[-1][0] if entries else after
    done = not full or last >= live_cursor or (bool(page) and page[-1][0] >= live_cursor)
    return ResumeStep(entries, done, last)


def gap_before(since: StreamId, page: list[StreamId], live_cursor: StreamId | None) -> bool:
    """Whether a client resuming from `since` missed events that history no longer has, from the
    first page read from `since` INCLUSIVE: `since` still kept means nothing after it was trimmed
    (trimming removes the oldest first); later events kept but not `since` means the id is older
    than the history kept; nothing at all from `since` on while events after it were delivered
    (the live cursor) means they were all trimmed."""
    if page:
        return page[0] != since
    return live_cursor is not None and since < live_cursor


# --- the local bus's stream ------------------------------------------------------------------------

class LocalStream:
    """An in-process stream with Redis's id rules (for `--bus local`): ids from the wall clock in
    milliseconds, never going back, bounded like a Redis stream with exact trimming."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self.entries: deque[tuple[StreamId, bytes, bytes]] = deque()
        self.last: StreamId = ZERO
        self._clock_ms = clock_ms

    def add(self, ts: bytes, data: bytes, bounds: Bounds) -> StreamId:
        """Append an entry and trim to `bounds`; returns its id."""
        now = self._clock_ms()
        ident = (now, 0) if now > self.last[0] else (self.last[0], self.last[1] + 1)
        self.entries.append((ident, ts, data))
        self.last = ident
        floor = bounds.min_id(now)
        while self.entries and (len(self.entries) > bounds.size
                                or (floor is not None and self.entries[0][0] < floor)):
            self.entries.popleft()
        return ident

    def after(self, since: StreamId, count: int, inclusive: bool = False) -> list[tuple[StreamId, bytes, bytes]]:
        """Up to `count` entries with ids greater than `since` (or equal, `inclusive`), oldest first."""
        out = []
        for entry in reversed(self.entries):   # resumes ask for recent history: walk back
            if entry[0] < since or (entry[0] == since and not inclusive):
                break
            out.append(entry)
        out.reverse()
        return out[:count]
