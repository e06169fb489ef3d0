"""A Redis stream: entries ordered by (ms, seq) ids, consumer groups with their pending lists.

An id is kept as one int, `ms << 64 | seq`, so ids compare, sort and step (+1 / -1) as plain
integers; `format_id` prints it as Redis does ("ms-seq").

Live entries are `entries` (id -> flat [field, value, ...] list) and their ids in order:
`_ids[_head:]` (a sorted list; trimming from the front only moves `_head`, and the list is
compacted once the dead prefix outweighs the rest, so trimming costs O(1) amortised per entry;
XDEL of many ids rebuilds the list once per command).
Beside them the stream models how Redis lays entries out in memory, because that layout is
visible: entries live in nodes (listpacks) of at most stream-node-max-entries entries and
stream-node-max-bytes bytes, a deleted entry keeps its place in its node until the whole node
goes, and approximate trimming (MAXLEN ~ / MINID ~) only ever removes whole nodes. `Node`
tracks per node what those rules need: its first ("master") id and fields, live and deleted
counts, its encoded size in bytes and the id of the last entry appended to it.

A consumer group's pending entries list, and each consumer's, is a `Pel`: a dict id -> NACK
plus the ids in order (a chunked sorted list), so range reads (XPENDING, XAUTOCLAIM, XREADGROUP
history, XINFO FULL) start with a bisection and cost what they return, and XACK stays O(log n).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import count as _counter
from typing import Any

from cascade_cli.resp.protocol import ErrorReply, parse_ll

MAX64 = (1 << 64) - 1
MAX_ID = (MAX64 << 64) | MAX64
INVALID_ENTRIES_READ = -1
LISTPACK_MAX_SIZE = 1 << 30
INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
COMPACT_MIN = 1024              # trimmed ids kept before the live ones at least this long
PEL_LOAD = 512                  # PEL chunks split beyond 2 * PEL_LOAD ids
_STAMPS = _counter(1)           # orders appends across all streams (blocked readers' wake-up)


def make_id(ms: int, seq: int) -> int:
    return ms << 64 | seq


def format_id(ident: int) -> bytes:
    return b"%d-%d" % (ident >> 64, ident & MAX64)


def _strtoull(raw: bytes) -> int | None:
    """Redis's string2ull: a canonical integer, or what C strtoull accepts (spaces, sign,
    leading zeros; a negative value wraps around) without overflow."""
    value = parse_ll(raw)
    if value is not None:
        return value if value >= 0 else None
    n = len(raw)
    if not n:
        return None
    i = 0
    while i < n and raw[i] in b" \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and raw[i] in b"+-":
        negative = raw[i] == 45
        i += 1
    if i == n or not raw[i:].isdigit():
        return None
    value = int(raw[i:])
    if value > MAX64:
        return None
    return (-value) & MAX64 if negative else value


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False) -> int:
    """A stream id argument: "ms-seq", "ms" (seq = missing_seq), "-" and "+" unless strict."""
    ident, _ = parse_id_seq(raw, missing_seq, strict, False)
    return ident


def parse_id_seq(raw: bytes, missing_seq: int, strict: bool, star: bool) -> tuple[int, bool]:
    """Like parse_id; with `star`, "ms-*" is accepted and gives (ms << 64, False)."""
    if len(raw) > 127:
        raise ErrorReply(INVALID_ID)
    cut = raw.find(b"\0")          # the C string ends there
    if cut >= 0:
        raw = raw[:cut]
    if raw == b"-" or raw == b"+":
        if strict:
            raise ErrorReply(INVALID_ID)
        return (0 if raw == b"-" else MAX_ID), True
    dash = raw.find(b"-")
    if dash < 0:
        ms = _strtoull(raw)
        if ms is None:
            raise ErrorReply(INVALID_ID)
        return ms << 64 | missing_seq, True
    ms = _strtoull(raw[:dash])
    if ms is None:
        raise ErrorReply(INVALID_ID)
    tail = raw[dash + 1:]
    if star and tail == b"*":
        return ms << 64, False
    seq = _strtoull(tail)
    if seq is None:
        raise ErrorReply(INVALID_ID)
    return ms << 64 | seq, True


# --- listpack sizes (what decides where Redis starts a new node) --------------------------------

def int_size(value: int) -> int:
    """Bytes a listpack integer element takes (encoding + backlen)."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -2147483648 <= value <= 2147483647:
        return 6
    return 10


def str_size(raw: bytes) -> int:
    """Bytes a listpack string element takes (stored as an integer when it is one)."""
    n = len(raw)
    if n <= 20:
        value = parse_ll(raw)
        if value is not None:
            return int_size(value)
    size = n + (1 if n < 64 else 2 if n < 4096 else 5)
    if size <= 127:
        return size + 1
    if size < 16383:
        return size + 2
    if size < 2097151:
        return size + 3
    if size < 268435455:
        return size + 4
    return size + 5


def _signed(value: int) -> int:
    value &= MAX64
    return value - (1 << 64) if value >> 63 else value


class Node:
    """One listpack of the stream (see the module docstring)."""

    __slots__ = ("deleted", "fields", "last", "live", "master", "size")

    def __init__(self, master: int, fields: tuple[bytes, ...]) -> None:
        self.master = master
        self.fields = fields
        self.live = 0
        self.deleted = 0
        # header (6) + end byte (1) + master entry without its two counters
        self.size = 7 + int_size(len(fields)) + sum(str_size(f) for f in fields) + 2
        self.last = master

    def nbytes(self) -> int:
        return self.size + int_size(self.live) + int_size(self.deleted)


# --- consumer groups ---------------------------------------------------------------------------

class NACK:
    """A pending entry: delivered to `consumer`, not acknowledged yet."""

    __slots__ = ("consumer", "count", "time")

    def __init__(self, consumer: Consumer | None, time: int, count: int) -> None:
        self.consumer = consumer
        self.time = time
        self.count = count


_MISSING: Any = object()


class Pel:
    """A pending entries list: id -> NACK like a dict (iteration in insertion order), plus the
    ids in ascending order for range reads (`since`, `take`, `first`, `last`). Change it only
    through `pel[id] = nack`, `del pel[id]` and `pop`."""

    __slots__ = ("_chunks", "_maxes", "map")

    def __init__(self) -> None:
        self.map: dict[int, NACK] = {}
        self._chunks: list[list[int]] = []     # sorted chunks of ids, in order
        self._maxes: list[int] = []            # the last id of each chunk

    def __len__(self) -> int:
        return len(self.map)

    def __bool__(self) -> bool:
        return bool(self.map)

    def __contains__(self, ident: object) -> bool:
        return ident in self.map

    def __iter__(self) -> Iterator[int]:
        return iter(self.map)

    def __getitem__(self, ident: int) -> NACK:
        return self.map[ident]

    def get(self, ident: int, default: Any = None) -> Any:
        return self.map.get(ident, default)

    def items(self) -> Iterable[tuple[int, NACK]]:
        return self.map.items()

    def __setitem__(self, ident: int, nack: NACK) -> None:
        if ident not in self.map:
            self._insert(ident)
        self.map[ident] = nack

    def __delitem__(self, ident: int) -> None:
        del self.map[ident]
        self._remove(ident)

    def pop(self, ident: int, default: Any = None) -> Any:
        nack = self.map.pop(ident, _MISSING)
        if nack is _MISSING:
            return default
        self._remove(ident)
        return nack

    def first(self) -> int:
        return self._chunks[0][0]

    def last(self) -> int:
        return self._maxes[-1]

    def since(self, start: int) -> Iterator[int]:
        """The ids >= start in ascending order (do not change the PEL while iterating)."""
        maxes = self._maxes
        i = bisect_left(maxes, start)
        if i == len(maxes):
            return
        chunks = self._chunks
        chunk = chunks[i]
        j = bisect_left(chunk, start)
        yield from (chunk[j:] if j else chunk)
        for k in range(i + 1, len(chunks)):
            yield from chunks[k]

    def take(self, start: int, limit: int = 0) -> list[int]:
        """Up to `limit` (0: all) ids >= start in ascending order."""
        out: list[int] = []
        maxes = self._maxes
        i = bisect_left(maxes, start)
        chunks = self._chunks
        j = bisect_left(chunks[i], start) if i < len(maxes) else 0
        while i < len(chunks):
            chunk = chunks[i]
            if limit:
                room = limit - len(out)
                if room <= 0:
                    break
                out += chunk[j:j + room]
            else:
                out += chunk[j:] if j else chunk
            i += 1
            j = 0
        return out

    def _insert(self, ident: int) -> None:
        maxes = self._maxes
        chunks = self._chunks
        if not maxes:
            chunks.append([ident])
            maxes.append(ident)
            return
        if ident > maxes[-1]:
            i = len(maxes) - 1
            chunk = chunks[i]
            chunk.append(ident)
            maxes[i] = ident
        else:
            i = bisect_left(maxes, ident)
            chunk = chunks[i]
            insort(chunk, ident)
        if len(chunk) > 2 * PEL_LOAD:
            chunks[i:i + 1] = [chunk[:PEL_LOAD], chunk[PEL_LOAD:]]
            maxes[i:i + 1] = [chunk[PEL_LOAD - 1], chunk[-1]]

    def _remove(self, ident: int) -> None:
        maxes = self._maxes
        i = bisect_left(maxes, ident)
        chunk = self._chunks[i]
        j = bisect_left(chunk, ident)
        del chunk[j]
        if not chunk:
            del self._chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]


class Consumer:
    __slots__ = ("name", "pel", "seen")

    def __init__(self, name: bytes, seen: int) -> None:
        self.name = name
        self.seen = seen
        self.pel = Pel()


class Group:
    __slots__ = ("consumers", "entries_read", "last_id", "name", "pel")

    def __init__(self, name: bytes, last_id: int, entries_read: int) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = Pel()
        self.consumers: dict[bytes, Consumer] = {}

    def sorted_pel(self) -> list[int]:
        return self.pel.take(0)


# --- the stream --------------------------------------------------------------------------------

class Stream:
    """A Redis stream (TYPE "stream"). Empty streams stay in the keyspace."""

    TYPE = b"stream"
    ENCODING = b"stream"

    __slots__ = (
        "__weakref__",
        "_head",
        "_ids",
        "appended",
        "entries",
        "entries_added",
        "first_id",
        "groups",
        "last_id",
        "masters",
        "max_deleted",
        "nodes",
    )

    def __init__(self) -> None:
        self._ids: list[int] = []      # the live ids are _ids[_head:]
        self._head = 0
        self.entries: dict[int, list[bytes]] = {}
        self.nodes: list[Node] = []
        self.masters: list[int] = []
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}
        self.appended = next(_STAMPS)  # stamp of the latest append: what wakes blocked readers

    def __bool__(self) -> bool:        # a stream is a value even when it has no entries
        return True

    def __len__(self) -> int:
        return len(self._ids) - self._head

    @property
    def length(self) -> int:
        return len(self._ids) - self._head

    def ids(self) -> list[int]:
        """The ids of the live entries, in order (a copy)."""
        return self._ids[self._head:]

    def first_valid_id(self) -> int:
        """The id of the first live entry, 0 when there is none."""
        return self._ids[self._head] if len(self._ids) > self._head else 0

    # --- entries ---------------------------------------------------------------------------

    def next_id(self, now_ms: int) -> int | None:
        """The id `*` generates: the clock, or the last id + 1 when the clock is behind."""
        last = self.last_id
        if now_ms > last >> 64:
            return now_ms << 64
        if last == MAX_ID:
            return None
        return last + 1

    def append(self, ident: int, fv: list[bytes], max_bytes: int, max_entries: int) -> None:
        """Add an entry (ident must be greater than last_id; the caller checks)."""
        nfields = len(fv) >> 1
        fields = tuple(fv[0::2])
        node = self.nodes[-1] if self.nodes else None
        if node is not None:
            if max_bytes <= 0 or max_bytes > LISTPACK_MAX_SIZE:
                max_bytes = LISTPACK_MAX_SIZE
            total = 0
            for item in fv:
                total += len(item)
            full = node.nbytes() + total >= max_bytes
            if full or (max_entries > 0 and node.live + node.deleted >= max_entries):
                node = None
        if node is None:
            node = Node(ident, fields)
            self.nodes.append(node)
            self.masters.append(ident)
            same = True
        else:
            same = node.fields == fields
        master = node.master
        size = 2 + int_size(_signed((ident >> 64) - (master >> 64))) \
            + int_size(_signed((ident & MAX64) - (master & MAX64)))
        if same:
            for value in fv[1::2]:
                size += str_size(value)
            size += int_size(3 + nfields)
        else:
            size += int_size(nfields) + int_size(4 + 2 * nfields)
            for item in fv:
                size += str_size(item)
        node.size += size
        node.live += 1
        node.last = ident
        self._ids.append(ident)
        self.entries[ident] = fv
        self.last_id = ident
        self.entries_added += 1
        self.appended = next(_STAMPS)
        if len(self._ids) - self._head == 1:
            self.first_id = ident

    def delete(self, idents: Iterable[int]) -> list[int]:
        """XDEL: remove these entries; returns the ids that existed, each once, in the order
        given (first_id / max_deleted are the caller's). One pass over the ids for the whole
        batch, plus O(log n) per id."""
        entries = self.entries
        masters = self.masters
        nodes = self.nodes
        gone: list[int] = []
        emptied = False
        for ident in idents:
            if entries.pop(ident, None) is None:
                continue
            gone.append(ident)
            node = nodes[bisect_right(masters, ident) - 1]
            node.live -= 1
            if node.live == 0:
                emptied = True
            else:
                node.deleted += 1
        if emptied:                    # a node goes when its last live entry does
            kept = [i for i, node in enumerate(nodes) if node.live]
            self.nodes = [nodes[i] for i in kept]
            self.masters = [masters[i] for i in kept]
        if gone:
            ids = self._ids
            head = self._head
            if len(gone) <= 8:
                for ident in gone:
                    del ids[bisect_left(ids, ident, head)]
            else:
                rebuilt: list[int] = []
                start = head
                for ident in sorted(gone):
                    position = bisect_left(ids, ident, start)
                    rebuilt += ids[start:position]
                    start = position + 1
                rebuilt += ids[start:]
                self._ids = rebuilt
                self._head = 0
        return gone

    def refresh_first(self) -> None:
        self.first_id = self.first_valid_id()

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """Trim by MAXLEN (maxlen) or MINID (minid); returns how many entries went."""
        deleted = 0
        nodes = self.nodes
        while nodes:
            length = len(self._ids) - self._head
            if maxlen is not None and length <= maxlen:
                break
            node = nodes[0]
            live = node.live
            if limit and deleted + live > limit:
                break
            if maxlen is not None:
                whole = length - live >= maxlen
            else:
                whole = node.last < minid       # type: ignore[operator]
            if whole:
                self._drop_ids(live)
                del nodes[0]
                del self.masters[0]
                deleted += live
                continue
            if approx:
                break
            if maxlen is not None:
                count = length - maxlen
            else:
                count = min(bisect_left(self._ids, minid, self._head) - self._head,  # type: ignore[arg-type]
                            live)
            self._drop_ids(count)
            node.live -= count
            node.deleted += count
            deleted += count
            break
        self.refresh_first()
        return deleted

    def _drop_ids(self, count: int) -> None:
        """Forget the first `count` live entries (amortised O(1) each)."""
        if count:
            entries = self.entries
            ids = self._ids
            head = self._head
            for ident in ids[head:head + count]:
                del entries[ident]
            head += count
            if head == len(ids):
                ids.clear()
                head = 0
            elif head >= COMPACT_MIN and head * 2 >= len(ids):
                del ids[:head]
                head = 0
            self._head = head

    def range(self, start: int, end: int, count: int = 0, rev: bool = False) -> list[list[Any]]:
        """Live entries with start <= id <= end as [id, [field, value, ...]], count 0 = all."""
        entries = self.entries
        return [[format_id(i), entries[i]] for i in self.select(start, end, count, rev)]

    def select(self, start: int, end: int, count: int = 0, rev: bool = False) -> list[int]:
        """Ids of the live entries with start <= id <= end, count 0 = all."""
        if start > end:
            return []
        ids = self._ids
        lo = bisect_left(ids, start, self._head)
        hi = bisect_right(ids, end, lo)
        if rev:
            if count and hi - lo > count:
                lo = hi - count
            selected = ids[lo:hi]
            selected.reverse()
        else:
            if count and hi - lo > count:
                hi = lo + count
            selected = ids[lo:hi]
        return selected

    def last_valid_id(self) -> int:
        return self._ids[-1] if len(self._ids) > self._head else 0

    # --- consumer-group counters -------------------------------------------------------------

    def has_tombstones(self, start: int) -> bool:
        """Is there a deleted entry (the latest one XDEL removed) at or after `start`?"""
        if not self.length or not self.max_deleted:
            return False
        if self.first_id > self.max_deleted:
            return False
        return start <= self.max_deleted

    def estimate_read(self, ident: int) -> int:
        """How many entries were added up to `ident` (the group's entries-read), or -1."""
        if not self.entries_added:
            return 0
        if not self.length and ident <= self.last_id:
            return self.entries_added
        if ident == self.last_id:
            return self.entries_added
        if ident > self.last_id:
            return INVALID_ENTRIES_READ
        if not self.max_deleted or self.max_deleted < self.first_id:
            if ident < self.first_id:
                return self.entries_added - self.length
            if ident == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_ENTRIES_READ

    def lag(self, group: Group) -> int | None:
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_read(group.last_id)
        if read == INVALID_ENTRIES_READ:
            return None
        return self.entries_added - read

    def advance_group(self, group: Group, ident: int) -> None:
        """A read delivered `ident` beyond the group's last id: move it and its counter."""
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(ident):
            group.entries_read += 1
        elif self.entries_added:
            group.entries_read = self.estimate_read(ident)
        group.last_id = ident

    # --- introspection -----------------------------------------------------------------------

    def radix_tree_nodes(self) -> int:
        """Node count of the radix tree that indexes the nodes by master id (as XINFO shows it)."""
        if not self.masters:
            return 1
        keys = [m.to_bytes(16, "big") for m in self.masters]
        return _rax_nodes(keys, 0, len(keys), 0)

    def copy(self) -> Stream:
        """A deep copy (COPY, RESTORE)."""
        other = Stream()
        other._ids = self.ids()
        other.entries = {i: list(fv) for i, fv in self.entries.items()}
        for node in self.nodes:
            twin = Node.__new__(Node)
            for slot in Node.__slots__:
                setattr(twin, slot, getattr(node, slot))
            other.nodes.append(twin)
        other.masters = list(self.masters)
        other.last_id = self.last_id
        other.first_id = self.first_id
        other.max_deleted = self.max_deleted
        other.entries_added = self.entries_added
        for name, group in self.groups.items():
            twin_group = Group(name, group.last_id, group.entries_read)
            for cname, consumer in group.consumers.items():
                twin_group.consumers[cname] = Consumer(cname, consumer.seen)
            for ident, nack in group.pel.items():
                owner = twin_group.consumers[nack.consumer.name] if nack.consumer else None
                twin_nack = NACK(owner, nack.time, nack.count)
                twin_group.pel[ident] = twin_nack
                if owner is not None:
                    owner.pel[ident] = twin_nack
            other.groups[name] = twin_group
        return other

    def rewrite_commands(self, key: bytes) -> list[list[bytes]]:
        """Commands that rebuild this stream (for an append-only file rewrite)."""
        out: list[list[bytes]] = []
        if self.length:
            for ident in self.ids():
                out.append([b"XADD", key, format_id(ident), *self.entries[ident]])
        else:
            out.append([b"XADD", key, b"MAXLEN", b"0", format_id(self.last_id or 1), b"x", b"y"])
        out.append([b"XSETID", key, format_id(self.last_id), b"ENTRIESADDED",
                    b"%d" % self.entries_added, b"MAXDELETEDID", format_id(self.max_deleted)])
        for name, group in self.groups.items():
            out.append([b"XGROUP", b"CREATE", key, name, format_id(group.last_id),
                        b"ENTRIESREAD", b"%d" % group.entries_read])
            for ident in group.sorted_pel():
                nack = group.pel[ident]
                owner = nack.consumer.name if nack.consumer else b""
                out.append([b"XCLAIM", key, name, owner, b"0", format_id(ident),
                            b"TIME", b"%d" % nack.time, b"RETRYCOUNT", b"%d" % nack.count,
                            b"JUSTID", b"FORCE"])
            for cname, consumer in group.consumers.items():
                if not consumer.pel:
                    out.append([b"XGROUP", b"CREATECONSUMER", key, name, cname])
        return out


def _rax_nodes(keys: list[bytes], lo: int, hi: int, depth: int) -> int:
    """Nodes of a compressed radix tree holding keys[lo:hi] (sorted, equal length, sharing
    their first `depth` bytes), counted from the node at `depth`."""
    width = len(keys[lo])
    if hi - lo == 1:
        return 2 if depth < width else 1
    first, last = keys[lo], keys[hi - 1]
    common = depth
    while first[common] == last[common]:
        common += 1
    total = (1 if common > depth else 0) + 1
    start = lo
    while start < hi:
        byte = keys[start][common]
        end = start + 1
        while end < hi and keys[end][common] == byte:
            end += 1
        total += _rax_nodes(keys, start, end, common + 1)
        start = end
    return total
