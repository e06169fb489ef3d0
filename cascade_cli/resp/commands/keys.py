"""Keyspace commands (Redis 7.0 semantics): DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, MOVE,
SWAPDB, RANDOMKEY, TOUCH, OBJECT, the EXPIRE/TTL family, PERSIST, SORT and SORT_RO.

`encoding_of(value, params)` answers OBJECT ENCODING for every value type, `refcount_of` OBJECT
REFCOUNT (DEBUG OBJECT prints both).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cascade_cli.resp import scan as scanning
from cascade_cli.resp.commands import (
    NO_SUCH_KEY,
    NOT_INT,
    SYNTAX,
    WRONGTYPE,
    c_bytes,
    command,
    container,
    help_command,
    to_int,
)
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.numbers import SPACE, strtod
from cascade_cli.resp.protocol import OK, ErrorReply, Simple, parse_ll
from cascade_cli.resp.store import RHash, RList, RSet, now_ms, type_name

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client
    from cascade_cli.resp.store import Database

LLONG_MAX = 2**63 - 1
LLONG_MIN = -2**63
INT_MAX = 2**31 - 1
SAME_OBJECT = "ERR source and destination objects are the same"
DB_RANGE = "ERR DB index is out of range"
SHARED_REFCOUNT = 2147483647
DBL_MIN = sys.float_info.min
OBJ_SHARED_INTEGERS = 10000
_LFU = ("allkeys-lfu", "volatile-lfu")
_LRU_OR_LFU = ("allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu")


def _read_notouch(db: Database, key: bytes) -> Any:
    """lookupKeyRead with LOOKUP_NOTOUCH: counts a hit/miss, leaves the access time alone."""
    before = db.access.get(key)
    value = db.read(key)
    if value is not None and before is not None:
        db.access[key] = before
    return value


# --- encodings ---------------------------------------------------------------------------------

def _is_int_string(value: bytes) -> bool:
    return len(value) <= 20 and parse_ll(value) is not None


def encoding_of(value: Any, params: Any) -> bytes:
    """OBJECT ENCODING of a stored value, as Redis 7.0 names it."""
    t = type(value)
    if t is bytes:
        if _is_int_string(value):
            return b"int"
        return b"embstr" if len(value) <= 44 else b"raw"
    if t is bytearray:
        return b"raw"
    if t is RList:
        return b"quicklist"
    # Containers: their owners turn `big` on when a write makes them outgrow the compact
    # encoding (thresholds in params), as Redis converts on writes only: a CONFIG SET of a
    # lower threshold leaves existing values as they are until their next write.
    if t is RHash:
        return b"hashtable" if value.big else b"listpack"
    if t is RSet:
        return b"hashtable" if value.big else b"intset"
    kind = type_name(value)
    if kind == b"zset":
        return b"skiplist" if getattr(value, "big", False) else b"listpack"
    if kind == b"stream":
        return b"stream"
    return b"raw"


def refcount_of(value: Any, params: Any) -> int:
    """OBJECT REFCOUNT: small integers are shared objects (unless maxmemory evicts by LRU/LFU)."""
    if type(value) is bytes and _is_int_string(value) and 0 <= int(value) < OBJ_SHARED_INTEGERS \
            and not (params.maxmemory and params.maxmemory_policy in _LRU_OR_LFU):
        return SHARED_REFCOUNT
    return 1


# --- DEL, EXISTS, TYPE, TOUCH, RANDOMKEY ---------------------------------------------------------

@command("del", -2, "write", keys=(1, -1, 1), group="generic", since="1.0.0",
         summary="Delete a key")
def del_(client: Client, argv: list[bytes]) -> Any:
    delete = client.db.delete
    count = 0
    for key in argv[1:]:
        if delete(key):
            count += 1
    return count


@command("unlink", -2, "write fast", keys=(1, -1, 1), group="generic", since="4.0.0",
         summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, "
                 "but non blocking.")
def unlink(client: Client, argv: list[bytes]) -> Any:
    return del_(client, argv)


@command("exists", -2, "readonly fast", keys=(1, -1, 1), group="generic", since="1.0.0",
         summary="Determine if a key exists")
def exists(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    count = 0
    for key in argv[1:]:
        if _read_notouch(db, key) is not None:
            count += 1
    return count


@command("type", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="1.0.0",
         summary="Determine the type stored at key")
def type_(client: Client, argv: list[bytes]) -> Any:
    value = _read_notouch(client.db, argv[1])
    if value is None:
        return Simple("none")
    return Simple(type_name(value).decode())


@command("touch", -2, "readonly fast", keys=(1, -1, 1), group="generic", since="3.2.1",
         summary="Alters the last access time of a key(s). Returns the number of existing keys "
                 "specified.")
def touch(client: Client, argv: list[bytes]) -> Any:
    read = client.db.read
    return sum(1 for key in argv[1:] if read(key) is not None)


@command("randomkey", 1, "readonly", group="generic", since="1.0.0",
         summary="Return a random key from the keyspace")
def randomkey(client: Client, argv: list[bytes]) -> Any:
    return client.db.random_key()


# --- KEYS and SCAN -----------------------------------------------------------------------------

@command("keys", 2, "readonly", group="generic", since="1.0.0",
         summary="Find all keys matching the given pattern")
def keys(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    pattern = argv[1]
    expires = db.expires
    now = now_ms()
    if pattern == b"*":
        if not expires:
            return list(db.data)
        return [key for key in db.data if not (key in expires and expires[key] <= now)]
    matches = _matcher(pattern)
    return [key for key in db.data
            if matches(key) and not (expires and key in expires and expires[key] <= now)]


def _last_match(argv: list[bytes]) -> bytes:
    """The pattern of the last MATCH option of SCAN (options come in name/value pairs)."""
    pattern = b"*"
    for i in range(2, len(argv) - 1, 2):
        if argv[i].lower() == b"match":
            pattern = argv[i + 1]
    return pattern


def _matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """Redis's stringmatchlen for one pattern. An empty string matches only the empty pattern
    (Redis's loop never runs on an empty string: even `**` does not match it)."""
    matches = compile_glob(pattern)
    if not pattern:
        return matches
    return lambda key: bool(key) and matches(key)


@command("scan", -2, "readonly", group="generic", since="2.8.0",
         summary="Incrementally iterate the keys space")
def scan(client: Client, argv: list[bytes]) -> Any:
    cursor = scanning.parse_cursor(argv[1])
    matches, count, kind = scanning.parse_options(argv, 2, allow_type=True)
    if matches is not None:
        matches = _matcher(_last_match(argv))
    db = client.db
    cursor, batch = scanning.scan(cursor, lambda: list(db.data), count)
    out = []
    data = db.data
    expires = db.expires
    stats = client.engine.stats
    now = now_ms()
    for key in batch:
        value = data.get(key)
        if value is None:
            continue
        if matches is not None and not matches(key):
            continue
        if expires and key in expires and expires[key] <= now:
            if kind is not None:               # Redis looked it up (a miss) for its type
                stats.keyspace_misses += 1
            db.lookup(key)                     # deletes it (and propagates the DEL)
            continue
        if kind is not None:
            stats.keyspace_hits += 1
            if type_name(value) != kind:
                continue
        out.append(key)
    return [b"%d" % cursor, out]


# --- RENAME, COPY, MOVE, SWAPDB ----------------------------------------------------------------

def _rename(client: Client, argv: list[bytes], nx: bool) -> Any:
    db = client.db
    old, new = argv[1], argv[2]
    value = db.lookup(old)
    if value is None:
        raise ErrorReply(NO_SUCH_KEY)
    if old == new:
        return 0 if nx else OK
    when = db.expires.get(old)
    if db.lookup(new) is not None:
        if nx:
            return 0
        db.delete(new)
    accessed = db.access.get(old)
    db.set(new, value)
    if when is not None:
        db.expires[new] = when
    if accessed is not None:
        db.access[new] = accessed
    db.delete(old)
    return 1 if nx else OK


@command("rename", 3, "write", keys=(1, 2, 1), group="generic", since="1.0.0",
         summary="Rename a key")
def rename(client: Client, argv: list[bytes]) -> Any:
    return _rename(client, argv, False)


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group="generic", since="1.0.0",
         summary="Rename a key, only if the new key does not exist")
def renamenx(client: Client, argv: list[bytes]) -> Any:
    return _rename(client, argv, True)


def _db_index(raw: bytes, error: str | None = None) -> int:
    """A DB number argument (getIntFromObjectOrReply: a C int) -> number."""
    number = parse_ll(raw)
    if number is None:
        raise ErrorReply(error or NOT_INT)
    if not -2**31 <= number <= INT_MAX:
        raise ErrorReply(error or "ERR value is out of range, value must between -2147483648 and "
                                  "2147483647")
    return number


def duplicate(value: Any) -> Any:
    """A deep copy of a stored value (COPY)."""
    t = type(value)
    if t is bytes:
        return value
    if t is bytearray:
        return bytearray(value)
    if t is RList:
        return RList(value)
    if t is RHash or t is RSet:
        new = t(value)
        new.big = value.big
        return new
    dup = getattr(value, "copy", None)         # ZSet, Stream
    if dup is not None:
        return dup()
    return copy.deepcopy(value)


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group="generic", since="6.2.0",
         summary="Copy a key")
def copy_(client: Client, argv: list[bytes]) -> Any:
    engine = client.engine
    src = client.db
    dst = src
    replace = False
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < n:
            number = to_int(argv[i + 1])
            if not 0 <= number < len(engine.dbs):
                raise ErrorReply(DB_RANGE)
            dst = engine.dbs[number]
            i += 1
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    key, newkey = argv[1], argv[2]
    if src is dst and key == newkey:
        raise ErrorReply(SAME_OBJECT)
    value = src.read(key)
    if value is None:
        return 0
    when = src.expires.get(key)
    if dst.lookup(newkey) is not None:
        if not replace:
            return 0
        dst.delete(newkey)
    dst.set(newkey, duplicate(value))
    if when is not None:
        dst.expires[newkey] = when
    return 1


@command("move", 3, "write fast", keys=(1, 1, 1), group="generic", since="1.0.0",
         summary="Move a key to another database")
def move(client: Client, argv: list[bytes]) -> Any:
    engine = client.engine
    number = _db_index(argv[2])
    if not 0 <= number < len(engine.dbs):
        raise ErrorReply(DB_RANGE)
    src = client.db
    dst = engine.dbs[number]
    if src is dst:
        raise ErrorReply(SAME_OBJECT)
    key = argv[1]
    value = src.lookup(key)
    if value is None:
        return 0
    when = src.expires.get(key)
    if dst.lookup(key) is not None:
        return 0
    accessed = src.access.get(key)
    dst.set(key, value)
    if when is not None:
        dst.expires[key] = when
    if accessed is not None:
        dst.access[key] = accessed
    src.delete(key)
    return 1


@command("swapdb", 3, "write fast", group="server", since="4.0.0",
         summary="Swaps two Redis databases")
def swapdb(client: Client, argv: list[bytes]) -> Any:
    engine = client.engine
    first = _db_index(argv[1], "ERR invalid first DB index")
    second = _db_index(argv[2], "ERR invalid second DB index")
    count = len(engine.dbs)
    if not (0 <= first < count and 0 <= second < count):
        raise ErrorReply(DB_RANGE)
    engine.dirty += 1
    if first == second:
        return OK
    a, b = engine.dbs[first], engine.dbs[second]
    # A WATCHed key is touched when it exists in its db before or after the swap.
    if engine.watched:
        engine.touch_all_watched(first)
        engine.touch_all_watched(second)
    a.data, b.data = b.data, a.data
    a.expires, b.expires = b.expires, a.expires
    a.access, b.access = b.access, a.access
    a.avg_ttl, b.avg_ttl = b.avg_ttl, a.avg_ttl
    if engine.watched:
        engine.touch_all_watched(first)
        engine.touch_all_watched(second)
    if engine.blocked_keys:
        for index, key in list(engine.blocked_keys):
            if index in (first, second) and key in engine.dbs[index].data:
                engine.ready_keys[(index, key)] = None
    return OK


# --- OBJECT ------------------------------------------------------------------------------------

container("object", -2, "", group="generic", since="2.2.3",
          summary="A container for object introspection commands")

OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]

help_command("object", OBJECT_HELP, "generic", "6.2.0")


@command("object|encoding", 3, "readonly", keys=(2, 2, 1), group="generic", since="2.2.3",
         summary="Inspect the internal encoding of a Redis object")
def object_encoding(client: Client, argv: list[bytes]) -> Any:
    value = _read_notouch(client.db, argv[2])
    if value is None:
        return None
    return encoding_of(value, client.engine.params)


@command("object|refcount", 3, "readonly", keys=(2, 2, 1), group="generic", since="2.2.3",
         summary="Get the number of references to the value of the key")
def object_refcount(client: Client, argv: list[bytes]) -> Any:
    value = _read_notouch(client.db, argv[2])
    if value is None:
        return None
    return refcount_of(value, client.engine.params)


@command("object|idletime", 3, "readonly", keys=(2, 2, 1), group="generic", since="2.2.3",
         summary="Get the time since a Redis object was last accessed")
def object_idletime(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    before = db.access.get(argv[2])
    value = _read_notouch(db, argv[2])
    if value is None:
        return None
    if client.engine.params.maxmemory_policy in _LFU:
        raise ErrorReply("ERR An LFU maxmemory policy is selected, idle time not tracked. Please "
                         "note that when switching between policies at runtime LRU and LFU data "
                         "will take some time to adjust.")
    if before is None:
        return 0
    return max(int(time.monotonic() - before), 0)


@command("object|freq", 3, "readonly", keys=(2, 2, 1), group="generic", since="4.0.0",
         summary="Get the logarithmic access frequency counter of a Redis object")
def object_freq(client: Client, argv: list[bytes]) -> Any:
    value = _read_notouch(client.db, argv[2])
    if value is None:
        return None
    if client.engine.params.maxmemory_policy not in _LFU:
        raise ErrorReply("ERR An LFU maxmemory policy is not selected, access frequency not "
                         "tracked. Please note that when switching between policies at runtime "
                         "LRU and LFU data will take some time to adjust.")
    return 5                                   # LFU_INIT_VAL: access counts are not tracked


# --- expiry ------------------------------------------------------------------------------------

_EXPIRE_FLAGS = {b"nx": 1, b"xx": 2, b"gt": 4, b"lt": 8}


def _expire(client: Client, argv: list[bytes], base: int, seconds: bool) -> Any:
    name = argv[0].decode("utf-8", "replace").lower()
    flags = 0
    for raw in argv[3:]:
        raw = c_bytes(raw)                   # options are compared and printed as C strings
        flag = _EXPIRE_FLAGS.get(raw.lower())
        if flag is None:
            raise ErrorReply(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
        flags |= flag
    if flags & 1 and flags & 14:
        raise ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & 4 and flags & 8:
        raise ErrorReply("ERR GT and LT options at the same time are not compatible")
    when = to_int(argv[2])
    invalid = f"ERR invalid expire time in '{name}' command"
    if seconds:
        if when > LLONG_MAX // 1000 or when < -(LLONG_MAX // 1000):
            raise ErrorReply(invalid)
        when *= 1000
    if when > LLONG_MAX - base:
        raise ErrorReply(invalid)
    when += base
    db = client.db
    key = argv[1]
    if db.lookup(key) is None:
        return 0
    if flags:
        current = db.expires.get(key)
        if flags & 1 and current is not None:
            return 0
        if flags & 2 and current is None:
            return 0
        if flags & 4 and (current is None or when <= current):
            return 0
        if flags & 8 and current is not None and when >= current:
            return 0
    if when <= now_ms():
        db.delete(key)
        client.rewrite([b"DEL", key])
        return 1
    db.expires[key] = when
    db.modified(key)
    client.rewrite([b"PEXPIREAT", key, b"%d" % when, *argv[3:]])
    return 1


@command("expire", -3, "write fast", keys=(1, 1, 1), group="generic", since="1.0.0",
         summary="Set a key's time to live in seconds")
def expire(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, now_ms(), True)


@command("pexpire", -3, "write fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         summary="Set a key's time to live in milliseconds")
def pexpire(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, now_ms(), False)


@command("expireat", -3, "write fast", keys=(1, 1, 1), group="generic", since="1.2.0",
         summary="Set the expiration for a key as a UNIX timestamp")
def expireat(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 0, True)


@command("pexpireat", -3, "write fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds")
def pexpireat(client: Client, argv: list[bytes]) -> Any:
    return _expire(client, argv, 0, False)


def _ttl(client: Client, key: bytes, ms: bool, absolute: bool) -> int:
    db = client.db
    if _read_notouch(db, key) is None:
        return -2
    when = db.expires.get(key)
    if when is None:
        return -1
    ttl = when if absolute else when - now_ms()
    ttl = max(ttl, 0)
    return ttl if ms else (ttl + 500) // 1000


@command("ttl", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="1.0.0",
         summary="Get the time to live for a key in seconds")
def ttl(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], False, False)


@command("pttl", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         summary="Get the time to live for a key in milliseconds")
def pttl(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], True, False)


@command("expiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="7.0.0",
         summary="Get the expiration Unix timestamp for a key")
def expiretime(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], False, True)


@command("pexpiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="7.0.0",
         summary="Get the expiration Unix timestamp for a key in milliseconds")
def pexpiretime(client: Client, argv: list[bytes]) -> Any:
    return _ttl(client, argv[1], True, True)


@command("persist", 2, "write fast", keys=(1, 1, 1), group="generic", since="2.2.0",
         summary="Remove the expiration from a key")
def persist(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    if db.lookup(argv[1]) is None:
        return 0
    return 1 if db.persist(argv[1]) else 0


# --- SORT --------------------------------------------------------------------------------------

def _strtod(raw: bytes) -> float | None:
    """SORT's score: C strtod over the whole C string (an empty one is 0, leading spaces are
    skipped); None when it has trailing garbage, is NaN, or sets ERANGE (overflow, underflow,
    a subnormal result)."""
    raw = c_bytes(raw)
    if not raw:
        return 0.0
    parsed = strtod(raw.lstrip(SPACE))
    if parsed is None or parsed[1] or 0.0 < abs(parsed[0]) < DBL_MIN:
        return None
    return parsed[0]


def _by_pattern(db: Database, pattern: bytes, subst: bytes) -> bytes | None:
    """lookupKeyByPattern: the string (or hash field, with `->`) that `pattern` names when its
    first `*` is replaced by `subst`; `#` is the element itself."""
    if pattern[:1] == b"#" and (len(pattern) == 1 or pattern[1] == 0):
        return subst
    cpattern = c_bytes(pattern)
    star = cpattern.find(b"*")
    if star < 0:
        return None
    arrow = cpattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(cpattern):
        field = pattern[arrow + 2:]
        key = pattern[:star] + subst + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + subst + pattern[star + 1:]
    value = db.read(key)
    if value is None:
        return None
    if field is not None:
        if type(value) is not RHash:
            return None
        item = value.get(field)
        return None if item is None else bytes(item)
    t = type(value)
    if t is bytes:
        return value  # type: ignore[no-any-return]
    if t is bytearray:
        return bytes(value)
    return None


def _zset_items(value: Any) -> list[tuple[bytes, float]]:
    """(member, score) pairs of a sorted set in its order (score, then member)."""
    return list(value.items())


def _sort_keys(argv: list[bytes]) -> list[bytes]:
    found = [argv[1]] if len(argv) > 1 else []
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"store" and i + 1 < len(argv):
            found.append(argv[i + 1])
            i += 2
        elif opt == b"limit":
            i += 3
        elif opt in (b"by", b"get"):
            i += 2
        else:
            i += 1
    return found


def _sort(client: Client, argv: list[bytes], readonly: bool) -> Any:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    i = 2
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        left = n - i - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            start = parse_ll(argv[i + 1])
            count = parse_ll(argv[i + 2]) if start is not None else None
            if start is None or count is None:
                raise ErrorReply(NOT_INT)
            limit_start, limit_count = start, count
            i += 2
        elif not readonly and opt == b"store" and left >= 1:
            store = argv[i + 1]
            i += 1
        elif opt == b"by" and left >= 1:
            sortby = argv[i + 1]
            if b"*" not in c_bytes(sortby):
                dontsort = True                # and a later BY with a pattern does not undo it
            i += 1
        elif opt == b"get" and left >= 1:
            gets.append(argv[i + 1])
            i += 1
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    db = client.db
    value = db.read(argv[1])
    kind = b"list" if value is None else type_name(value)
    if kind not in (b"list", b"set", b"zset"):
        raise ErrorReply(WRONGTYPE)
    if dontsort and kind == b"set" and store is not None:
        dontsort, alpha, sortby = False, True, None
    if kind == b"list":
        elements: list[bytes] = [bytes(e) for e in value] if value is not None else []
    elif kind == b"set":
        elements = [bytes(e) for e in value]
    else:
        elements = [member for member, _ in _zset_items(value)]
    size = len(elements)
    start = min(max(limit_start, 0), size)
    limit_count = min(max(limit_count, -1), size)
    end = size - 1 if limit_count < 0 else start + limit_count - 1
    if start >= size:
        start, end = size - 1, size - 2
    if end >= size:
        end = size - 1
    if dontsort:
        if kind != b"set":
            if desc:
                elements.reverse()
    else:
        error = False
        if alpha:
            if sortby is not None:
                # key: missing compare objects sort first; ties keep the load order
                keyed = []
                for element in elements:
                    found = _by_pattern(db, sortby, element)
                    if found is None:
                        keyed.append(((0, b""), element))
                    else:
                        keyed.append(((1, found if store is not None else c_bytes(found)), element))
                keyed.sort(key=lambda pair: pair[0], reverse=desc)
                elements = [element for _, element in keyed]
            else:
                if store is not None:
                    elements.sort(reverse=desc)
                else:
                    elements.sort(key=c_bytes, reverse=desc)
        else:
            scored = []
            for element in elements:
                raw = _by_pattern(db, sortby, element) if sortby is not None else element
                if raw is None:
                    score = 0.0
                else:
                    parsed = _strtod(raw)
                    if parsed is None:
                        error = True
                        score = 0.0
                    else:
                        score = parsed
                scored.append((score, element))
            scored.sort(reverse=desc)
            elements = [element for _, element in scored]
        if error:
            raise ErrorReply("ERR One or more scores can't be converted into double")
    selected = elements[start:end + 1] if end >= start else []
    if store is None:
        if not gets:
            return selected
        out: list[Any] = []
        for element in selected:
            for pattern in gets:
                out.append(_by_pattern(db, pattern, element))
        return out
    result = RList()
    if not gets:
        result.extend(selected)
    else:
        for element in selected:
            for pattern in gets:
                found = _by_pattern(db, pattern, element)
                result.append(b"" if found is None else found)
    if result:
        db.set(store, result)
        client.engine.dirty += len(result) - 1
    else:
        db.delete(store)
    return len(result)


@command("sort", -2, "write denyoom movablekeys", keys=(1, 1, 1), group="generic", since="1.0.0",
         summary="Sort the elements in a list, set or sorted set", key_finder=_sort_keys)
def sort(client: Client, argv: list[bytes]) -> Any:
    return _sort(client, argv, False)


@command("sort_ro", -2, "readonly movablekeys", keys=(1, 1, 1), group="generic", since="7.0.0",
         summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT.")
def sort_ro(client: Client, argv: list[bytes]) -> Any:
    return _sort(client, argv, True)
