"""Hashes commands (Redis 7.0 semantics).

A hash is an RHash (dict field -> value, insertion ordered like Redis's listpack encoding).
`RHash.big` turns on, and stays on, once the hash outgrew the listpack encoding: more than
hash-max-listpack-entries fields, or a field or value longer than hash-max-listpack-value.

HRANDFIELD costs O(1) per field on big hashes through the hash's picker (resp/sampling.py), except
when the count is a large part of the hash, where Redis too works on a copy. Every command that
changes a hash in place must report the fields it really added or removed to the hash's picker
when it has one (`PICKERS.get(id(h))`).

HINCRBYFLOAT computes in x87 80-bit long double as Redis does on x86-64 (resp/numbers.py).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from cascade_cli.resp import scan as scanning
from cascade_cli.resp.commands import (
    WRONGTYPE,
    command,
    random_count_args,
    removed,
    to_int,
    typed,
)
from cascade_cli.resp.numbers import ld_format, ld_parse, ld_round
from cascade_cli.resp.protocol import OK, ErrorReply, parse_ll
from cascade_cli.resp.sampling import PICKERS, pick_distinct, pick_many, pick_one
from cascade_cli.resp.store import RHash

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

MAX_RANDOM_REPLY = 1 << 24      # HRANDFIELD negative counts beyond this are refused (memory)
EMPTY_SCAN = [b"0", []]


def _check_big(client: Client, h: RHash, args: list[bytes]) -> None:
    """Turn on `h.big` when it now exceeds the listpack limits (args: the fields/values just set)."""
    params = client.engine.params
    if len(h) > params.hash_max_listpack_entries:
        h.big = True
        return
    limit = params.hash_max_listpack_value
    for arg in args:
        if len(arg) > limit:
            h.big = True
            return


def _set_one(client: Client, key: bytes, h: RHash | None, field: bytes, value: bytes) -> None:
    """Store one field (HINCRBY*, HSETNX): create the hash when missing, keep `big` right."""
    db = client.db
    if h is None:
        h = RHash()
        h[field] = value
        db.set(key, h)
    else:
        if PICKERS and field not in h:
            tracker = PICKERS.get(id(h))
            if tracker is not None:
                tracker.added((field,))
        h[field] = value
        db.modified(key)
    if not h.big:
        _check_big(client, h, [field, value])


# --- writes ------------------------------------------------------------------------------------

@command("hset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hset(client: Client, argv: list[bytes]) -> object:
    """Set the string value of a hash field"""
    n = len(argv)
    if n & 1:
        raise ErrorReply("ERR wrong number of arguments for 'hset' command")
    db = client.db
    key = argv[1]
    h = db.lookup(key)
    if h is None:
        h = RHash()
        if n == 4:
            h[argv[2]] = argv[3]
        else:
            h.update(zip(argv[2::2], argv[3::2]))
        added = len(h)
        db.set(key, h)
    elif type(h) is RHash:
        if PICKERS:
            tracker = PICKERS.get(id(h))
            if tracker is not None:
                tracker.added({field for field in argv[2::2] if field not in h})
        added = len(h)
        if n == 4:
            h[argv[2]] = argv[3]
        else:
            h.update(zip(argv[2::2], argv[3::2]))
        added = len(h) - added
        db.modified(key)
    else:
        raise ErrorReply(WRONGTYPE)
    if n > 4:
        client.engine.dirty += (n - 2) // 2 - 1     # Redis counts one change per field
    if not h.big:
        params = client.engine.params
        limit = params.hash_max_listpack_value
        if len(h) > params.hash_max_listpack_entries or (
                len(argv[2]) > limit or len(argv[3]) > limit if n == 4
                else max(map(len, argv[2:])) > limit):
            h.big = True
    return added


@command("hmset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hmset(client: Client, argv: list[bytes]) -> object:
    """Set multiple hash fields to multiple values"""
    if len(argv) & 1:
        raise ErrorReply("ERR wrong number of arguments for 'hmset' command")
    hset(client, argv)
    return OK


@command("hsetnx", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hsetnx(client: Client, argv: list[bytes]) -> object:
    """Set the value of a hash field, only if the field does not exist"""
    h = typed(client, argv[1], RHash, False)
    if h is not None and argv[2] in h:
        return 0
    _set_one(client, argv[1], h, argv[2], argv[3])
    return 1


@command("hdel", -3, "write fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hdel(client: Client, argv: list[bytes]) -> object:
    """Delete one or more hash fields"""
    key = argv[1]
    h = typed(client, key, RHash, False)
    if h is None:
        return 0
    deleted = 0
    tracker = PICKERS.get(id(h)) if PICKERS else None
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if tracker is not None:
                tracker.removed((field,))
            if not h:
                break
    if deleted:
        removed(client, key, h, deleted)
    return deleted


@command("hincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hincrby(client: Client, argv: list[bytes]) -> object:
    """Increment the integer value of a hash field by the given number"""
    increment = to_int(argv[3])
    key, field = argv[1], argv[2]
    h = typed(client, key, RHash, False)
    current = 0
    if h is not None:
        raw = h.get(field)
        if raw is not None:
            parsed = parse_ll(raw)
            if parsed is None:
                raise ErrorReply("ERR hash value is not an integer")
            current = parsed
    result = current + increment
    if not -2**63 <= result < 2**63:
        raise ErrorReply("ERR increment or decrement would overflow")
    _set_one(client, key, h, field, b"%d" % result)
    return result


@command("hincrbyfloat", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.6.0")
def hincrbyfloat(client: Client, argv: list[bytes]) -> object:
    """Increment the float value of a hash field by the given amount"""
    increment = ld_parse(argv[3])
    if increment is None:
        raise ErrorReply("ERR value is not a valid float")
    if type(increment) is float:            # +-inf
        raise ErrorReply("ERR value is NaN or Infinity")
    key, field = argv[1], argv[2]
    h = typed(client, key, RHash, False)
    current: Fraction | float = Fraction(0)
    if h is not None:
        raw = h.get(field)
        if raw is not None:
            parsed = ld_parse(raw)
            if parsed is None:
                raise ErrorReply("ERR hash value is not a float")
            current = parsed
    if type(current) is float:
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    result = ld_round(current + increment)  # type: ignore[operator]
    if result is None:
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    text = ld_format(result)
    _set_one(client, key, h, field, text)
    client.rewrite([b"HSET", key, field, text])
    return text


# --- reads -------------------------------------------------------------------------------------

@command("hget", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hget(client: Client, argv: list[bytes]) -> object:
    """Get the value of a hash field"""
    h = typed(client, argv[1], RHash)
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hmget(client: Client, argv: list[bytes]) -> object:
    """Get the values of all the given hash fields"""
    h = typed(client, argv[1], RHash)
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hgetall", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hgetall(client: Client, argv: list[bytes]) -> object:
    """Get all the fields and values in a hash"""
    h = typed(client, argv[1], RHash)
    return {} if h is None else dict(h)


@command("hkeys", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hkeys(client: Client, argv: list[bytes]) -> object:
    """Get all the fields in a hash"""
    h = typed(client, argv[1], RHash)
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hvals(client: Client, argv: list[bytes]) -> object:
    """Get all the values in a hash"""
    h = typed(client, argv[1], RHash)
    return [] if h is None else list(h.values())


@command("hlen", 2, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hlen(client: Client, argv: list[bytes]) -> object:
    """Get the number of fields in a hash"""
    h = typed(client, argv[1], RHash)
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="3.2.0")
def hstrlen(client: Client, argv: list[bytes]) -> object:
    """Get the length of the value of a hash field"""
    h = typed(client, argv[1], RHash)
    return 0 if h is None else len(h.get(argv[2], b""))


@command("hexists", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hexists(client: Client, argv: list[bytes]) -> object:
    """Determine if a hash field exists"""
    h = typed(client, argv[1], RHash)
    return 0 if h is None else int(argv[2] in h)


@command("hrandfield", -2, "readonly", keys=(1, 1, 1), group="hash", since="6.2.0")
def hrandfield(client: Client, argv: list[bytes]) -> object:
    """Get one or multiple random fields from a hash"""
    if len(argv) == 2:
        h = typed(client, argv[1], RHash)
        if h is None:
            return None
        return pick_one(h)
    count, withvalues = random_count_args(argv, b"withvalues")
    h = typed(client, argv[1], RHash)
    if h is None or count == 0:
        return []
    if count < 0 or count == 1:
        wanted = -count if count < 0 else 1
        if wanted > MAX_RANDOM_REPLY:
            raise ErrorReply("ERR value is out of range")
        fields = pick_many(h, wanted)
    elif count >= len(h):
        fields = list(h)
    else:
        fields = pick_distinct(h, count)
    if not withvalues:
        return fields
    if client.resp == 3:
        return [[field, h[field]] for field in fields]
    out = []
    for field in fields:
        out.append(field)
        out.append(h[field])
    return out


@command("hscan", -3, "readonly", keys=(1, 1, 1), group="hash", since="2.8.0")
def hscan(client: Client, argv: list[bytes]) -> object:
    """Incrementally iterate hash fields and associated values"""
    cursor = scanning.parse_cursor(argv[2])
    h = typed(client, argv[1], RHash)
    if h is None:
        return EMPTY_SCAN
    match, count, _ = scanning.parse_options(argv, 3)
    if h.big:
        cursor, fields = scanning.scan(cursor, h.keys, count)
    else:                                   # listpack: everything at once, as Redis does
        cursor, fields = 0, h
    out = []
    for field in fields:
        value = h.get(field)
        if value is not None and (match is None or match(field)):
            out.append(field)
            out.append(value)
    return [b"%d" % cursor, out]
