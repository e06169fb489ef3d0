"""Sets commands (Redis 7.0 semantics).

A set is an RSet (a Python set of bytes). `RSet.big` turns on once the set outgrew the intset
encoding: a member that is not a 64-bit decimal integer, or more than set-max-intset-entries
members. It never turns off, except where Redis itself builds a fresh set (SPOP with a count
that leaves few members, and the *STORE commands).

Replies follow Redis's iteration order where Redis's is deterministic: an intset iterates its
integers in ascending order, so intset-encoded results are sorted numerically; hashtable order
is arbitrary in Redis too.

Random picks (SRANDMEMBER, SPOP) cost O(1) per member on big sets through the set's picker
(resp/sampling.py), except when the count is a large part of the set, where Redis too works on a
copy. Every command that changes a set in place must report the members it really added or
removed to the set's picker when it has one (`PICKERS.get(id(s))`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cascade_cli.resp import scan as scanning
from cascade_cli.resp.commands import (
    LLONG_MAX,
    SYNTAX,
    WRONGTYPE,
    command,
    numkeys_keys,
    removed,
    to_int,
    typed,
)
from cascade_cli.resp.protocol import ErrorReply, SetReply, parse_ll
from cascade_cli.resp.sampling import PICKERS, pick_distinct, pick_many, pick_one
from cascade_cli.resp.store import RSet

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

MAX_RANDOM_REPLY = 1 << 24      # SRANDMEMBER negative counts beyond this are refused (memory)
SPOP_MOVE_STRATEGY_MUL = 5      # SPOP rebuilds the set from the remaining members below this ratio
SREM_BATCH = 1024               # SPOP with a count propagates SREMs of this many members
EMPTY_SCAN = [b"0", []]


def _is_intset(members: Iterable[bytes], size: int, client: Client) -> bool:
    """Would Redis keep these members in an intset?"""
    if size > client.engine.params.set_max_intset_entries:
        return False
    for member in members:
        if parse_ll(member) is None:
            return False
    return True


def _ordered(s: RSet | set[bytes], intset: bool) -> list[bytes]:
    """Members in Redis's iteration order: ascending integers for an intset."""
    return sorted(s, key=int) if intset else list(s)


def _new_set(members: Iterable[bytes], client: Client) -> RSet:
    """A set built from scratch (the *STORE commands): intset while it can be."""
    s = RSet(members)
    s.big = not _is_intset(s, len(s), client)
    return s


# --- writes ------------------------------------------------------------------------------------

@command("sadd", -3, "write denyoom fast", keys=(1, 1, 1), group="set", since="1.0.0")
def sadd(client: Client, argv: list[bytes]) -> object:
    """Add one or more members to a set"""
    db = client.db
    key = argv[1]
    s = db.lookup(key)
    if s is None:
        s = RSet(argv[2:]) if len(argv) > 3 else RSet((argv[2],))
        added = len(s)
        db.set(key, s)
        if added > 1:
            client.engine.dirty += added - 1
    elif type(s) is RSet:
        before = len(s)
        tracker = PICKERS.get(id(s)) if PICKERS else None
        if tracker is not None:
            fresh = {member for member in argv[2:] if member not in s}
        if len(argv) == 3:
            s.add(argv[2])
        else:
            s.update(argv[2:])
        added = len(s) - before
        if not added:
            return 0
        if tracker is not None:
            tracker.added(fresh)
        db.modified(key)
        if added > 1:
            client.engine.dirty += added - 1
    else:
        raise ErrorReply(WRONGTYPE)
    if not s.big and not _is_intset(argv[2:], len(s), client):
        s.big = True
    return added


@command("srem", -3, "write fast", keys=(1, 1, 1), group="set", since="1.0.0")
def srem(client: Client, argv: list[bytes]) -> object:
    """Remove one or more members from a set"""
    key = argv[1]
    s = typed(client, key, RSet, False)
    if s is None:
        return 0
    before = len(s)
    tracker = PICKERS.get(id(s)) if PICKERS else None
    if tracker is not None:
        present = [member for member in set(argv[2:]) if member in s]
    if len(argv) == 3:
        s.discard(argv[2])
    else:
        s.difference_update(argv[2:])
    gone = before - len(s)
    if tracker is not None and gone:
        tracker.removed(present)
    if gone:
        removed(client, key, s, gone)
    return gone


@command("smove", 4, "write fast", keys=(1, 2, 1), group="set", since="1.0.0")
def smove(client: Client, argv: list[bytes]) -> object:
    """Move a member from one set to another"""
    source, destination, member = argv[1], argv[2], argv[3]
    db = client.db
    src = db.lookup(source)
    dst = db.lookup(destination)
    if src is None:
        return 0
    if type(src) is not RSet or (dst is not None and type(dst) is not RSet):
        raise ErrorReply(WRONGTYPE)
    if src is dst:
        return int(member in src)
    if member not in src:
        return 0
    engine = client.engine
    dirty = engine.dirty
    src.discard(member)
    _removed(src, (member,))
    db.modified(source)
    db.drop_if_empty(source)
    added = 1
    if dst is None:
        db.set(destination, _new_set((member,), client))
    elif member in dst:
        added = 0
    else:
        dst.add(member)
        tracker = PICKERS.get(id(dst)) if PICKERS else None
        if tracker is not None:
            tracker.added((member,))
        if not dst.big and not _is_intset((member,), len(dst), client):
            dst.big = True
        db.modified(destination)
    engine.dirty = dirty + 1 + added
    return 1


def _removed(s: RSet, members: Iterable[bytes]) -> None:
    """Tell the random picker of `s`, if any, that these members were removed."""
    tracker = PICKERS.get(id(s)) if PICKERS else None
    if tracker is not None:
        tracker.removed(members)


@command("spop", -2, "write fast", keys=(1, 1, 1), group="set", since="1.0.0")
def spop(client: Client, argv: list[bytes]) -> object:
    """Remove and return one or multiple random members from a set"""
    if len(argv) == 3:
        return _spop_count(client, argv)
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    key = argv[1]
    s = typed(client, key, RSet, False)
    if s is None:
        return None
    member = pick_one(s)
    s.discard(member)
    _removed(s, (member,))
    removed(client, key, s, 1)
    client.rewrite([b"SREM", key, member])
    return member


def _spop_count(client: Client, argv: list[bytes]) -> object:
    count = parse_ll(argv[2])
    if count is None or count < 0:
        raise ErrorReply("ERR value is out of range, must be positive")
    key = argv[1]
    s = typed(client, key, RSet, False)
    if s is None or count == 0:
        return SetReply()
    db = client.db
    size = len(s)
    if count >= size:
        reply = _reply_set(client, s)       # Redis answers with SUNION of the set
        db.delete(key)
        client.rewrite([b"DEL", key])
        return reply
    popped = pick_distinct(s, count)
    s.difference_update(popped)
    _removed(s, popped)
    remaining = size - count
    if remaining * SPOP_MOVE_STRATEGY_MUL <= count:
        s.big = not _is_intset(s, remaining, client)     # Redis rebuilt the set
    removed(client, key, s, count)
    client.rewrite(*([b"SREM", key, *popped[i:i + SREM_BATCH]] for i in range(0, count, SREM_BATCH)))
    return SetReply(popped)


# --- reads -------------------------------------------------------------------------------------

@command("smembers", 2, "readonly", keys=(1, 1, 1), group="set", since="1.0.0")
def smembers(client: Client, argv: list[bytes]) -> object:
    """Get all the members in a set"""
    s = typed(client, argv[1], RSet)
    if s is None:
        return SetReply()
    return SetReply(_ordered(s, not s.big))


@command("sismember", 3, "readonly fast", keys=(1, 1, 1), group="set", since="1.0.0")
def sismember(client: Client, argv: list[bytes]) -> object:
    """Determine if a given value is a member of a set"""
    s = typed(client, argv[1], RSet)
    return 0 if s is None else int(argv[2] in s)


@command("smismember", -3, "readonly fast", keys=(1, 1, 1), group="set", since="6.2.0")
def smismember(client: Client, argv: list[bytes]) -> object:
    """Returns the membership associated with the given elements for a set"""
    s = typed(client, argv[1], RSet)
    if s is None:
        return [0] * (len(argv) - 2)
    return [int(member in s) for member in argv[2:]]


@command("scard", 2, "readonly fast", keys=(1, 1, 1), group="set", since="1.0.0")
def scard(client: Client, argv: list[bytes]) -> object:
    """Get the number of members in a set"""
    s = typed(client, argv[1], RSet)
    return 0 if s is None else len(s)


@command("srandmember", -2, "readonly", keys=(1, 1, 1), group="set", since="1.0.0")
def srandmember(client: Client, argv: list[bytes]) -> object:
    """Get one or multiple random members from a set"""
    if len(argv) == 2:
        s = typed(client, argv[1], RSet)
        return None if s is None else pick_one(s)
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    count = to_int(argv[2])
    if count < -LLONG_MAX:
        raise ErrorReply(f"ERR value is out of range, value must between {-LLONG_MAX} and {LLONG_MAX}")
    s = typed(client, argv[1], RSet)
    if s is None or count == 0:
        return []
    if count < 0:
        if -count > MAX_RANDOM_REPLY:
            raise ErrorReply("ERR value is out of range")
        return pick_many(s, -count)
    if count >= len(s):
        return _ordered(s, not s.big)
    return pick_distinct(s, count)


@command("sscan", -3, "readonly", keys=(1, 1, 1), group="set", since="2.8.0")
def sscan(client: Client, argv: list[bytes]) -> object:
    """Incrementally iterate Set elements"""
    cursor = scanning.parse_cursor(argv[2])
    s = typed(client, argv[1], RSet)
    if s is None:
        return EMPTY_SCAN
    match, count, _ = scanning.parse_options(argv, 3)
    if s.big:
        cursor, members = scanning.scan(cursor, lambda: s, count)
        members = [m for m in members if m in s]
    else:                                   # intset: everything at once, in order
        cursor, members = 0, _ordered(s, True)
    if match is not None:
        members = [m for m in members if match(m)]
    return [b"%d" % cursor, members]


# --- set algebra -------------------------------------------------------------------------------

def _gather(client: Client, keys: list[bytes]) -> list[Any]:
    """The sets at keys (None for missing ones); WRONGTYPE if any key holds another type."""
    read = client.db.read                   # the *STORE variants count keyspace hits too
    sets = []
    for key in keys:
        value = read(key)
        if value is not None and type(value) is not RSet:
            raise ErrorReply(WRONGTYPE)
        sets.append(value)
    return sets


def _intersection(sets: list[Any]) -> tuple[set[bytes], bool]:
    """The intersection, and whether Redis would iterate it in intset order (its smallest
    input set is an intset)."""
    if any(s is None for s in sets):
        return set(), True
    ordered = sorted(sets, key=len)
    smallest = ordered[0]
    return smallest.intersection(*ordered[1:]), not smallest.big


def _store(client: Client, destination: bytes, result: set[bytes]) -> int:
    db = client.db
    if not result:
        db.delete(destination)
        return 0
    db.set(destination, _new_set(result, client))
    return len(result)


@command("sinter", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0")
def sinter(client: Client, argv: list[bytes]) -> object:
    """Intersect multiple sets"""
    result, intset = _intersection(_gather(client, argv[1:]))
    return SetReply(_ordered(result, intset))


@command("sinterstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0")
def sinterstore(client: Client, argv: list[bytes]) -> object:
    """Intersect multiple sets and store the resulting set in a key"""
    result, _ = _intersection(_gather(client, argv[2:]))
    return _store(client, argv[1], result)


@command("sintercard", -3, "readonly movablekeys", group="set", since="7.0.0",
         key_finder=numkeys_keys(1))
def sintercard(client: Client, argv: list[bytes]) -> object:
    """Intersect multiple sets and return the cardinality of the result"""
    numkeys = parse_ll(argv[1])
    if numkeys is None or numkeys < 1:
        raise ErrorReply("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise ErrorReply("ERR Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = parse_ll(argv[i + 1])  # type: ignore[assignment]
            if limit is None or limit < 0:
                raise ErrorReply("ERR LIMIT can't be negative")
            i += 2
        else:
            raise ErrorReply(SYNTAX)
    sets = _gather(client, argv[2:2 + numkeys])
    if any(s is None for s in sets):
        return 0
    ordered = sorted(sets, key=len)
    smallest, others = ordered[0], ordered[1:]
    if not limit:
        return len(smallest.intersection(*others))
    found = 0
    for member in smallest:
        for other in others:
            if member not in other:
                break
        else:
            found += 1
            if found >= limit:
                break
    return found


def _union(sets: list[Any]) -> set[bytes]:
    present = [s for s in sets if s is not None]
    return set().union(*present) if present else set()


def _difference(sets: list[Any]) -> set[bytes]:
    first = sets[0]
    if first is None:
        return set()
    return first.difference(*(s for s in sets[1:] if s is not None))


def _reply_set(client: Client, result: set[bytes]) -> SetReply:
    """A computed union/difference as Redis replies it (it builds an intset when it can)."""
    return SetReply(_ordered(result, _is_intset(result, len(result), client)))


@command("sunion", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0")
def sunion(client: Client, argv: list[bytes]) -> object:
    """Add multiple sets"""
    return _reply_set(client, _union(_gather(client, argv[1:])))


@command("sunionstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0")
def sunionstore(client: Client, argv: list[bytes]) -> object:
    """Add multiple sets and store the resulting set in a key"""
    return _store(client, argv[1], _union(_gather(client, argv[2:])))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0")
def sdiff(client: Client, argv: list[bytes]) -> object:
    """Subtract multiple sets"""
    return _reply_set(client, _difference(_gather(client, argv[1:])))


@command("sdiffstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0")
def sdiffstore(client: Client, argv: list[bytes]) -> object:
    """Subtract multiple sets and store the resulting set in a key"""
    return _store(client, argv[1], _difference(_gather(client, argv[2:])))
