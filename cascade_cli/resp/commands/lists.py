"""Lists commands (Redis 7.0 semantics), including the blocking pops.

A list is an RList (a deque) and is never stored empty: removing its last element deletes the
key. LPUSH, RPUSH, LPOP, RPOP and LRANGE are benchmark hot paths and are kept short.

Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) first try to serve at once; if
they cannot they hand the engine an `attempt` closure that it re-runs whenever one of the keys
changes. A served blocking pop is propagated as the equivalent non-blocking command (LPOP key,
LPOP key count, LMOVE ..., RPOPLPUSH ...), as Redis does.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from cascade_cli.resp.commands import (
    COMMANDS,
    NO_SUCH_KEY,
    NOT_INT,
    OUT_OF_RANGE,
    SYNTAX,
    WRONGTYPE,
    command,
    mpop_args,
    numkeys_keys,
    removed,
    to_int,
    to_timeout,
)
from cascade_cli.resp.protocol import NULL_ARRAY, OK, ErrorReply, SetReply, Simple, parse_ll
from cascade_cli.resp.store import RList

GROUP = "list"
LLONG_MAX = 2**63 - 1
LLONG_MIN = -2**63
POSITIVE = "ERR value is out of range, must be positive"


def _side(raw: bytes) -> bool:
    """LEFT -> True, RIGHT -> False; anything else is a syntax error."""
    lowered = raw.lower()
    if lowered == b"left":
        return True
    if lowered == b"right":
        return False
    raise ErrorReply(SYNTAX)


def _touched(db: Any, key: bytes, value: RList) -> None:
    """Signal one change at key after removals: deleted when emptied, else modified."""
    if value:
        db.modified(key)
    else:
        db.drop_if_empty(key)


# --- pushes ----------------------------------------------------------------------------------

@command("lpush", -3, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Prepend one or multiple elements to a list")
def lpush(client: Any, argv: list[bytes]) -> int:
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        value = RList()
        value.extendleft(argv[2:])
        db.set(key, value)
    elif type(value) is RList:
        value.extendleft(argv[2:])
        db.modified(key)
    else:
        raise ErrorReply(WRONGTYPE)
    if len(argv) > 3:
        client.engine.dirty += len(argv) - 3
    return len(value)


@command("rpush", -3, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Append one or multiple elements to a list")
def rpush(client: Any, argv: list[bytes]) -> int:
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        value = RList(argv[2:])
        db.set(key, value)
    elif type(value) is RList:
        value.extend(argv[2:])
        db.modified(key)
    else:
        raise ErrorReply(WRONGTYPE)
    if len(argv) > 3:
        client.engine.dirty += len(argv) - 3
    return len(value)


def _pushx(client: Any, argv: list[bytes], left: bool) -> int:
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        return 0
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    if left:
        value.extendleft(argv[2:])
    else:
        value.extend(argv[2:])
    db.modified(key)
    client.engine.dirty += len(argv) - 3
    return len(value)


@command("lpushx", -3, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="2.2.0",
         summary="Prepend an element to a list, only if the list exists")
def lpushx(client: Any, argv: list[bytes]) -> int:
    return _pushx(client, argv, True)


@command("rpushx", -3, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="2.2.0",
         summary="Append an element to a list, only if the list exists")
def rpushx(client: Any, argv: list[bytes]) -> int:
    return _pushx(client, argv, False)


# --- pops ------------------------------------------------------------------------------------

def _pop_many(client: Any, argv: list[bytes], left: bool) -> Any:
    """LPOP/RPOP key count."""
    if len(argv) > 3:
        raise ErrorReply(f"ERR wrong number of arguments for '{'lpop' if left else 'rpop'}' command")
    count = parse_ll(argv[2])
    if count is None or count < 0:
        raise ErrorReply(POSITIVE)
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        return NULL_ARRAY
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    if not count:
        return []
    return _pop_n(client, key, value, left, count)


def _pop_n(client: Any, key: bytes, value: RList, left: bool, count: int) -> list[bytes]:
    """Pop up to count elements of a non-empty list."""
    n = min(count, len(value))
    pop = value.popleft if left else value.pop
    items = [pop() for _ in range(n)]
    removed(client, key, value, n)
    return items


def _pop_command(left: bool) -> Any:
    """The LPOP (left) or RPOP handler: one element without a count, else _pop_many."""
    def pop_one(client: Any, argv: list[bytes]) -> Any:
        if len(argv) != 2:
            return _pop_many(client, argv, left)
        db = client.db
        key = argv[1]
        value = db.lookup(key)
        if value is None:
            return None
        if type(value) is not RList:
            raise ErrorReply(WRONGTYPE)
        item = value.popleft() if left else value.pop()
        if value:
            db.modified(key)
        else:
            db.drop_if_empty(key)
        return item
    return pop_one


command("lpop", -2, "write fast", keys=(1, 1, 1), group=GROUP, since="1.0.0",
        summary="Remove and get the first elements in a list")(_pop_command(True))
command("rpop", -2, "write fast", keys=(1, 1, 1), group=GROUP, since="1.0.0",
        summary="Remove and get the last elements in a list")(_pop_command(False))


# --- reads -----------------------------------------------------------------------------------

@command("llen", 2, "readonly fast", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Get the length of a list")
def llen(client: Any, argv: list[bytes]) -> int:
    value = client.db.read(argv[1])
    if value is None:
        return 0
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    return len(value)


@command("lrange", 4, "readonly", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Get a range of elements from a list")
def lrange(client: Any, argv: list[bytes]) -> list[bytes]:
    start = parse_ll(argv[2])
    end = parse_ll(argv[3])
    if start is None or end is None:
        raise ErrorReply(NOT_INT)
    value = client.db.read(argv[1])
    if value is None:
        return []
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    size = len(value)
    if start < 0:
        start = max(start + size, 0)
    if end < 0:
        end += size
    elif end >= size:
        end = size - 1
    if start > end:
        return []
    if start == 0 and end == size - 1:
        return list(value)
    if start <= size - 1 - end:             # nearer the head: walk from the left
        return list(islice(value, start, end + 1))
    out = list(islice(reversed(value), size - 1 - end, size - start))
    out.reverse()
    return out


@command("lindex", 3, "readonly", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Get an element from a list by its index")
def lindex(client: Any, argv: list[bytes]) -> Any:
    value = client.db.read(argv[1])
    if value is None:
        return None
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    index = to_int(argv[2])
    size = len(value)
    if index < 0:
        index += size
    if 0 <= index < size:
        return value[index]
    return None


_RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
              "or use negative to start from the end of the list")


@command("lpos", -3, "readonly", keys=(1, 1, 1), group=GROUP, since="6.0.6",
         summary="Return the index of matching elements on a list")
def lpos(client: Any, argv: list[bytes]) -> Any:
    rank = 1
    count: int | None = None
    maxlen = 0
    i = 3
    argc = len(argv)
    while i < argc:
        option = argv[i].lower()
        if i + 1 >= argc:
            raise ErrorReply(SYNTAX)
        raw = argv[i + 1]
        if option == b"rank":
            rank = to_int(raw)
            if rank == 0:
                raise ErrorReply(_RANK_ZERO)
        elif option == b"count":
            parsed = parse_ll(raw)
            if parsed is None or parsed < 0:
                raise ErrorReply("ERR COUNT can't be negative")
            count = parsed
        elif option == b"maxlen":
            parsed = parse_ll(raw)
            if parsed is None or parsed < 0:
                raise ErrorReply("ERR MAXLEN can't be negative")
            maxlen = parsed
        else:
            raise ErrorReply(SYNTAX)
        i += 2
    value = client.db.read(argv[1])
    if value is None:
        return None if count is None else []
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    element = argv[2]
    size = len(value)
    forward = rank > 0
    if forward:
        items = iter(value)
    else:
        items = reversed(value)
        # -LLONG_MIN overflows to itself in Redis: every match qualifies, like rank 1.
        rank = 1 if rank == LLONG_MIN else -rank
    if maxlen:
        items = islice(items, maxlen)
    wanted = 1 if count is None else count
    matches = 0
    found: list[int] = []
    for n, item in enumerate(items):
        if item == element:
            matches += 1
            if matches >= rank:
                found.append(n if forward else size - 1 - n)
                if wanted and len(found) >= wanted:
                    break
    if count is None:
        return found[0] if found else None
    return found


# --- in-place writes -------------------------------------------------------------------------

@command("lset", 4, "write denyoom", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Set the value of an element in a list by its index")
def lset(client: Any, argv: list[bytes]) -> Any:
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        raise ErrorReply(NO_SUCH_KEY)
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    index = to_int(argv[2])
    size = len(value)
    if index < 0:
        index += size
    if not 0 <= index < size:
        raise ErrorReply(OUT_OF_RANGE)
    value[index] = argv[3]
    db.modified(key)
    return OK


@command("linsert", 5, "write denyoom", keys=(1, 1, 1), group=GROUP, since="2.2.0",
         summary="Insert an element before or after another element in a list")
def linsert(client: Any, argv: list[bytes]) -> int:
    where = argv[2].lower()
    if where == b"after":
        after = True
    elif where == b"before":
        after = False
    else:
        raise ErrorReply(SYNTAX)
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        return 0
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    try:
        index = value.index(argv[3])
    except ValueError:
        return -1
    value.insert(index + 1 if after else index, argv[4])
    db.modified(key)
    return len(value)


@command("lrem", 4, "write", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Remove elements from a list")
def lrem(client: Any, argv: list[bytes]) -> int:
    count = to_int(argv[2])
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        return 0
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    element = argv[3]
    size = len(value)
    if count == 1 or count == -1:
        # One removal: deque.remove works from the head; from the tail, search reversed.
        if count == 1:
            try:
                value.remove(element)
            except ValueError:
                return 0
        else:
            for n, item in enumerate(reversed(value)):
                if item == element:
                    del value[size - 1 - n]
                    break
            else:
                return 0
        gone = 1
    else:
        limit = abs(count) or size
        kept: list[bytes] = []
        gone = 0
        source = value if count >= 0 else reversed(value)
        for item in source:
            if gone < limit and item == element:
                gone += 1
            else:
                kept.append(item)
        if not gone:
            return 0
        if count < 0:
            kept.reverse()
        value.clear()
        value.extend(kept)
    removed(client, key, value, gone)
    return gone


@command("ltrim", 4, "write", keys=(1, 1, 1), group=GROUP, since="1.0.0",
         summary="Trim a list to the specified range")
def ltrim(client: Any, argv: list[bytes]) -> Any:
    start = to_int(argv[2])
    end = to_int(argv[3])
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    if value is None:
        return OK
    if type(value) is not RList:
        raise ErrorReply(WRONGTYPE)
    size = len(value)
    if start < 0:
        start = max(start + size, 0)
    if end < 0:
        end += size
    if start > end or start >= size:
        left, right = size, 0                 # everything goes
    else:
        end = min(end, size - 1)
        left, right = start, size - 1 - end
    if not left and not right:
        # Nothing removed: Redis still signals the key (WATCH) but does not dirty the dataset.
        engine = client.engine
        if engine.watched:
            engine.touch_watched(db.index, key)
        return OK
    keep = size - left - right
    if keep < left + right:
        kept = list(islice(value, left, left + keep))
        value.clear()
        value.extend(kept)
    else:
        popleft, pop = value.popleft, value.pop
        for _ in range(left):
            popleft()
        for _ in range(right):
            pop()
    removed(client, key, value, left + right)
    return OK


# --- moves -----------------------------------------------------------------------------------

def _move(client: Any, source: bytes, destination: bytes, from_left: bool, to_left: bool) -> Any:
    """Pop from source, push to destination; None when source is missing."""
    db = client.db
    src = db.lookup(source)
    if src is None:
        return None
    if type(src) is not RList:
        raise ErrorReply(WRONGTYPE)
    dst = db.lookup(destination)
    if dst is not None and type(dst) is not RList:
        raise ErrorReply(WRONGTYPE)
    engine = client.engine
    dirty = engine.dirty
    item = src.popleft() if from_left else src.pop()
    if dst is None:
        db.set(destination, RList((item,)))
    else:
        if to_left:
            dst.appendleft(item)
        else:
            dst.append(item)
        db.modified(destination)
    if src is not dst:
        _touched(db, source, src)
    engine.dirty = dirty + 1                 # one change, as Redis counts it
    return item


@command("lmove", 5, "write denyoom", keys=(1, 2, 1), group=GROUP, since="6.2.0",
         summary="Pop an element from a list, push it to another list and return it")
def lmove(client: Any, argv: list[bytes]) -> Any:
    from_left = _side(argv[3])
    to_left = _side(argv[4])
    return _move(client, argv[1], argv[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", keys=(1, 2, 1), group=GROUP, since="1.2.0",
         summary="Remove the last element in a list, prepend it to another list and return it")
def rpoplpush(client: Any, argv: list[bytes]) -> Any:
    return _move(client, argv[1], argv[2], False, True)


# --- multi-key pops --------------------------------------------------------------------------

def _pop_range(client: Any, key: bytes, value: RList, left: bool, count: int) -> list[Any]:
    """Pop up to count elements of a non-empty list: [key, [elements]], propagated as [LR]POP."""
    items = _pop_n(client, key, value, left, count)
    client.rewrite([b"LPOP" if left else b"RPOP", key, b"%d" % len(items)])
    return [key, items]


def _mpop_now(client: Any, keys: list[bytes], left: bool, count: int) -> Any:
    db = client.db
    for key in keys:
        value = db.lookup(key)
        if value is None:
            continue
        if type(value) is not RList:
            raise ErrorReply(WRONGTYPE)
        if value:
            return _pop_range(client, key, value, left, count)
    return None


@command("lmpop", -4, "write movablekeys", group=GROUP, since="7.0.0",
         summary="Pop elements from a list", key_finder=numkeys_keys(1))
def lmpop(client: Any, argv: list[bytes]) -> Any:
    keys, right, count = mpop_args(argv, 1, (b"left", b"right"))
    left = not right
    reply = _mpop_now(client, keys, left, count)
    return NULL_ARRAY if reply is None else reply


# --- blocking --------------------------------------------------------------------------------

# The timeout parser, under the name this module has always offered (tests import it).
parse_timeout = to_timeout


def _ready_key(client: Any) -> bytes | None:
    """The key whose change woke this blocked client up (Redis serves from that key); None on
    the first attempt (then the keys are tried in argument order)."""
    block = client.blocked
    if block is None:
        return None
    return block.ready_key


def _ordered(client: Any, keys: list[bytes]) -> list[bytes]:
    ready = _ready_key(client)
    if ready is None or ready not in keys or keys[0] == ready:
        return keys
    return [ready] + [key for key in keys if key != ready]


def _unique(keys: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(keys))


def _served(client: Any, propagate: list[bytes], change: Callable[..., Any], *args: Any) -> Any:
    """Run the change that serves a blocked BLPOP/BRPOP/BLMOVE/BRPOPLPUSH. Redis 7.0 leaves the
    dirty counter alone there but still propagates the plain command, so propagate it here."""
    engine = client.engine
    dirty = engine.dirty
    result = change(*args)
    engine.dirty = dirty
    engine.propagate(client.db.index, propagate)
    client.rewrite()
    return result


def _bpop(client: Any, argv: list[bytes], left: bool) -> Any:
    timeout = to_timeout(argv[-1])
    keys = argv[1:-1]
    name = b"LPOP" if left else b"RPOP"
    db = client.db
    for key in keys:
        value = db.lookup(key)
        if value is None:
            continue
        if type(value) is not RList:
            raise ErrorReply(WRONGTYPE)
        if value:
            item = value.popleft() if left else value.pop()
            _touched(db, key, value)
            client.rewrite([name, key])
            return [key, item]
    keys = _unique(keys)

    def attempt() -> Any:
        current = client.db
        for key in _ordered(client, keys):
            value = current.lookup(key)
            if type(value) is RList and value:
                item = value.popleft() if left else value.pop()
                _served(client, [name, key], _touched, current, key, value)
                return [key, item]
        return None

    return client.block(keys, timeout, NULL_ARRAY, attempt)


@command("blpop", -3, "write noscript blocking", keys=(1, -2, 1), group=GROUP, since="2.0.0",
         summary="Remove and get the first element in a list, or block until one is available")
def blpop(client: Any, argv: list[bytes]) -> Any:
    return _bpop(client, argv, True)


@command("brpop", -3, "write noscript blocking", keys=(1, -2, 1), group=GROUP, since="2.0.0",
         summary="Remove and get the last element in a list, or block until one is available")
def brpop(client: Any, argv: list[bytes]) -> Any:
    return _bpop(client, argv, False)


def _bmove(client: Any, argv: list[bytes], from_left: bool, to_left: bool, timeout: float,
           propagate: list[bytes]) -> Any:
    source, destination = argv[1], argv[2]
    db = client.db
    src = db.lookup(source)
    if src is not None:
        if type(src) is not RList:
            raise ErrorReply(WRONGTYPE)
        if src:
            item = _move(client, source, destination, from_left, to_left)
            client.rewrite(propagate)
            return item
    if not client.may_block:
        return None                            # MULTI / scripts: a null bulk, not a null array

    def attempt() -> Any:
        current = client.db
        value = current.lookup(source)
        if type(value) is not RList or not value:
            return None
        target = current.lookup(destination)
        if target is not None and type(target) is not RList:
            raise ErrorReply(WRONGTYPE)                 # Redis unblocks the client with the error
        return _served(client, propagate, _move, client, source, destination, from_left, to_left)

    return client.block([source], timeout, NULL_ARRAY, attempt)


@command("blmove", 6, "write denyoom noscript blocking", keys=(1, 2, 1), group=GROUP, since="6.2.0",
         summary="Pop an element from a list, push it to another list and return it; "
                 "or block until one is available")
def blmove(client: Any, argv: list[bytes]) -> Any:
    from_left = _side(argv[3])
    to_left = _side(argv[4])
    timeout = to_timeout(argv[5])
    return _bmove(client, argv, from_left, to_left, timeout,
                  [b"LMOVE", argv[1], argv[2], b"LEFT" if from_left else b"RIGHT",
                   b"LEFT" if to_left else b"RIGHT"])


@command("brpoplpush", 4, "write denyoom noscript blocking", keys=(1, 2, 1), group=GROUP, since="2.2.0",
         summary="Pop an element from a list, push it to another list and return it; "
                 "or block until one is available")
def brpoplpush(client: Any, argv: list[bytes]) -> Any:
    timeout = to_timeout(argv[3])
    return _bmove(client, argv, False, True, timeout, [b"RPOPLPUSH", argv[1], argv[2]])


@command("blmpop", -5, "write blocking movablekeys", group=GROUP, since="7.0.0",
         summary="Pop elements from a list, or block until one is available", key_finder=numkeys_keys(2))
def blmpop(client: Any, argv: list[bytes]) -> Any:
    keys, right, count = mpop_args(argv, 2, (b"left", b"right"))
    left = not right
    timeout = to_timeout(argv[1])
    reply = _mpop_now(client, keys, left, count)
    if reply is not None:
        return reply
    keys = _unique(keys)

    def attempt() -> Any:
        current = client.db
        for key in _ordered(client, keys):
            value = current.lookup(key)
            if type(value) is RList and value:
                return _pop_range(client, key, value, left, count)
        return None

    return client.block(keys, timeout, NULL_ARRAY, attempt)


# --- COMMAND INFO details the flags alone do not imply ---------------------------------------

def _spec(flags: str, begin: int, find: dict[bytes, Any]) -> dict[bytes, Any]:
    return {b"flags": SetReply(Simple(flag) for flag in flags.split()),
            b"begin_search": {b"type": b"index", b"spec": {b"index": begin}}, b"find_keys": find}


_ONE = {b"type": b"range", b"spec": {b"lastkey": 0, b"keystep": 1, b"limit": 0}}
_KEYNUM = {b"type": b"keynum", b"spec": {b"keynumidx": 0, b"firstkey": 1, b"keystep": 1}}
_KEY_FLAGS = {"lpush": "RW insert", "rpush": "RW insert", "lpushx": "RW insert", "rpushx": "RW insert",
              "linsert": "RW insert", "lpop": "RW access delete", "rpop": "RW access delete",
              "blpop": "RW access delete", "brpop": "RW access delete", "lmpop": "RW access delete",
              "blmpop": "RW access delete", "llen": "RO", "lrem": "RW delete", "ltrim": "RW delete",
              "lmove": "RW access delete", "rpoplpush": "RW access delete", "blmove": "RW access delete",
              "brpoplpush": "RW access delete"}
for _name, _flags in _KEY_FLAGS.items():
    COMMANDS[_name.encode()].extra["key_flags"] = _flags.split()
# Full key specs where one range spec cannot say it: source and destination of the moves,
# numkeys of the multi-pops (read by COMMAND INFO when it supports extra["key_specs"]).
for _name in ("lmove", "rpoplpush", "blmove", "brpoplpush"):
    COMMANDS[_name.encode()].extra["key_specs"] = [_spec("RW access delete", 1, _ONE),
                                                   _spec("RW insert", 2, _ONE)]
COMMANDS[b"lmpop"].extra["key_specs"] = [_spec("RW access delete", 1, _KEYNUM)]
COMMANDS[b"blmpop"].extra["key_specs"] = [_spec("RW access delete", 2, _KEYNUM)]
