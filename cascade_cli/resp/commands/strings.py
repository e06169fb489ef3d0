"""String and bitmap commands (Redis 7.0 semantics).

Values are bytes (what SET stores: OBJECT ENCODING says int or embstr/raw by content) or
bytearray (after APPEND, SETRANGE, SETBIT, BITFIELD writes and BITOP: the "raw" encoding, changed
in place). Replies never hand out a stored bytearray itself: a reply queued in a transaction
must not change when a later command of the same transaction appends to the string.

INCRBYFLOAT computes in x87 80-bit extended precision as Redis does (`long double`, see
resp/numbers.py), and prints like Redis: "%.17Lf" with the trailing zeros removed.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from cascade_cli.resp.commands import NOT_FLOAT, NOT_INT, SYNTAX, WRONGTYPE, c_bytes, command, to_int
from cascade_cli.resp.numbers import ld_format, ld_parse, ld_round
from cascade_cli.resp.protocol import OK, ErrorReply, parse_ll
from cascade_cli.resp.store import now_ms

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

LLONG_MAX = 2**63 - 1
LLONG_MIN = -2**63
TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BAD_FIELD_TYPE = ("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not "
                  "supported but i64 is.")

# SET / GETEX option flags
_NX, _XX, _GET, _KEEPTTL, _PERSIST, _EX, _PX, _EXAT, _PXAT = (1 << i for i in range(9))
_EXPIRES = _EX | _PX | _EXAT | _PXAT


def _string(value: Any) -> bytes | bytearray:
    """A stored value that must be a string (WRONGTYPE otherwise)."""
    t = type(value)
    if t is bytes or t is bytearray:
        return value  # type: ignore[no-any-return]
    raise ErrorReply(WRONGTYPE)


def _read_string(client: Client, key: bytes) -> bytes | None:
    """GET's lookup: the value as immutable bytes, None when missing, WRONGTYPE otherwise."""
    value = client.db.read(key)
    if value is None or type(value) is bytes:
        return value
    if type(value) is bytearray:
        return bytes(value)
    raise ErrorReply(WRONGTYPE)


def _max_bulk(client: Client) -> int:
    return client.engine.params.proto_max_bulk_len  # type: ignore[no-any-return]


def _check_length(client: Client, size: int, append: int) -> None:
    if size + append > _max_bulk(client):
        raise ErrorReply(TOO_BIG)


# --- SET and friends ---------------------------------------------------------------------------

def _parse_set_options(argv: list[bytes], start: int, getex: bool) -> tuple[int, bytes | None]:
    """Redis's extended SET/GETEX options -> (flags, raw expire argument or None)."""
    flags = 0
    expire = None
    i = start
    n = len(argv)
    while i < n:
        opt = argv[i]
        if b"\0" in opt:                       # compared as a C string
            opt = opt[:opt.index(b"\0")]
        opt = opt.upper()
        more = i + 1 < n
        if opt == b"NX" and not flags & _XX and not getex:
            flags |= _NX
        elif opt == b"XX" and not flags & _NX and not getex:
            flags |= _XX
        elif opt == b"GET" and not getex:
            flags |= _GET
        elif opt == b"KEEPTTL" and not flags & (_PERSIST | _EXPIRES) and not getex:
            flags |= _KEEPTTL
        elif opt == b"PERSIST" and getex and not flags & (_EXPIRES | _KEEPTTL):
            flags |= _PERSIST
        elif opt == b"EX" and more and not flags & (_KEEPTTL | _PERSIST | _EXAT | _PX | _PXAT):
            flags |= _EX
            i += 1
            expire = argv[i]
        elif opt == b"PX" and more and not flags & (_KEEPTTL | _PERSIST | _EX | _EXAT | _PXAT):
            flags |= _PX
            i += 1
            expire = argv[i]
        elif opt == b"EXAT" and more and not flags & (_KEEPTTL | _PERSIST | _EX | _PX | _PXAT):
            flags |= _EXAT
            i += 1
            expire = argv[i]
        elif opt == b"PXAT" and more and not flags & (_KEEPTTL | _PERSIST | _EX | _EXAT | _PX):
            flags |= _PXAT
            i += 1
            expire = argv[i]
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    return flags, expire


def _expire_at(raw: bytes, seconds: bool, relative: bool, name: str) -> int:
    """An expire argument of SET/GETEX/SETEX/PSETEX -> absolute unix ms (Redis's checks)."""
    value = to_int(raw)
    if value <= 0 or (seconds and value > LLONG_MAX // 1000):
        raise ErrorReply(f"ERR invalid expire time in '{name}' command")
    if seconds:
        value *= 1000
    if relative:
        value += now_ms()
        if value > LLONG_MAX:                  # wraps around in Redis: a negative time
            value = 0
    if value <= 0:
        raise ErrorReply(f"ERR invalid expire time in '{name}' command")
    return value


@command("set", -3, "write denyoom", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Set the string value of a key")
def set_(client: Client, argv: list[bytes]) -> Any:
    if len(argv) == 3:                         # the benchmark's path: no options
        client.db.set(argv[1], argv[2])
        return OK
    flags, expire = _parse_set_options(argv, 3, False)
    when = None
    if expire is not None:
        when = _expire_at(expire, bool(flags & (_EX | _EXAT)), bool(flags & (_EX | _PX)), "set")
    return _set_generic(client, argv, argv[1], argv[2], flags, when)


def _set_generic(client: Client, argv: list[bytes], key: bytes, value: bytes, flags: int,
                 when: int | None, ok: Any = OK, abort: Any = None) -> Any:
    db = client.db
    old = None
    if flags & _GET:
        old = _read_string(client, key)
    if flags & (_NX | _XX):
        found = db.lookup(key) is not None
        if (flags & _NX and found) or (flags & _XX and not found):
            return old if flags & _GET else abort
    db.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    if when is not None:
        db.set_expire(key, when)
        client.rewrite([b"SET", key, value, b"PXAT", b"%d" % when])
    elif flags & _GET:
        client.rewrite([a for i, a in enumerate(argv) if i < 3 or a.upper() != b"GET"])
    return old if flags & _GET else ok


@command("setnx", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Set the value of a key, only if the key does not exist")
def setnx(client: Client, argv: list[bytes]) -> Any:
    return _set_generic(client, argv, argv[1], argv[2], _NX, None, 1, 0)


@command("setex", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.0.0",
         summary="Set the value and expiration of a key")
def setex(client: Client, argv: list[bytes]) -> Any:
    when = _expire_at(argv[2], True, True, "setex")
    return _set_generic(client, argv, argv[1], argv[3], 0, when)


@command("psetex", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.6.0",
         summary="Set the value and expiration in milliseconds of a key")
def psetex(client: Client, argv: list[bytes]) -> Any:
    when = _expire_at(argv[2], False, True, "psetex")
    return _set_generic(client, argv, argv[1], argv[3], 0, when)


@command("get", 2, "readonly fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Get the value of a key")
def get(client: Client, argv: list[bytes]) -> Any:
    value = client.db.read(argv[1])
    if value is None or type(value) is bytes:
        return value
    if type(value) is bytearray:
        return bytes(value)
    raise ErrorReply(WRONGTYPE)


@command("getex", -2, "write fast", keys=(1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and optionally set its expiration")
def getex(client: Client, argv: list[bytes]) -> Any:
    flags, expire = _parse_set_options(argv, 2, True)
    key = argv[1]
    value = _read_string(client, key)
    if value is None:
        return None
    when = None
    if expire is not None:                     # validated after the lookup, as Redis does
        when = _expire_at(expire, bool(flags & (_EX | _EXAT)), bool(flags & (_EX | _PX)), "getex")
    db = client.db
    if when is not None:
        if flags & (_EXAT | _PXAT) and when <= now_ms():
            db.delete(key)
            client.rewrite([b"DEL", key])
        else:
            db.set_expire(key, when)
            client.rewrite([b"PEXPIREAT", key, b"%d" % when])
    elif flags & _PERSIST:
        if db.persist(key):
            client.rewrite([b"PERSIST", key])
    return value


@command("getdel", 2, "write fast", keys=(1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and delete the key")
def getdel(client: Client, argv: list[bytes]) -> Any:
    value = _read_string(client, argv[1])
    if value is not None:
        client.db.delete(argv[1])
        client.rewrite([b"DEL", argv[1]])
    return value


@command("getset", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Set the string value of a key and return its old value")
def getset(client: Client, argv: list[bytes]) -> Any:
    old = _read_string(client, argv[1])
    client.db.set(argv[1], argv[2])
    client.rewrite([b"SET", argv[1], argv[2]])
    return old


@command("mget", -2, "readonly fast", keys=(1, -1, 1), group="string", since="1.0.0",
         summary="Get the values of all the given keys")
def mget(client: Client, argv: list[bytes]) -> Any:
    read = client.db.read
    out = []
    for key in argv[1:]:
        value = read(key)
        t = type(value)
        if t is bytes:
            out.append(value)
        elif t is bytearray:
            out.append(bytes(value))
        else:
            out.append(None)
    return out


@command("mset", -3, "write denyoom", keys=(1, -1, 2), group="string", since="1.0.1",
         summary="Set multiple keys to multiple values")
def mset(client: Client, argv: list[bytes]) -> Any:
    n = len(argv)
    if not n & 1:
        raise ErrorReply("ERR wrong number of arguments for 'mset' command")
    store = client.db.set
    for i in range(1, n, 2):
        store(argv[i], argv[i + 1])
    return OK


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2), group="string", since="1.0.1",
         summary="Set multiple keys to multiple values, only if none of the keys exist")
def msetnx(client: Client, argv: list[bytes]) -> Any:
    n = len(argv)
    if not n & 1:
        raise ErrorReply("ERR wrong number of arguments for 'msetnx' command")
    db = client.db
    for i in range(1, n, 2):
        if db.lookup(argv[i]) is not None:
            return 0
    for i in range(1, n, 2):
        db.set(argv[i], argv[i + 1])
    return 1


# --- counters ----------------------------------------------------------------------------------

def _incr(client: Client, key: bytes, delta: int) -> int:
    db = client.db
    value = db.lookup(key)
    if value is None:
        number = delta
    else:
        t = type(value)
        if t is not bytes and t is not bytearray:
            raise ErrorReply(WRONGTYPE)
        if len(value) > 20:
            raise ErrorReply(NOT_INT)
        try:
            old = int(value)
        except ValueError:
            raise ErrorReply(NOT_INT) from None
        # string2ll: canonical decimal only (no sign, spaces, leading zeros or underscores)
        if b"%d" % old != value or not LLONG_MIN <= old <= LLONG_MAX:
            raise ErrorReply(NOT_INT)
        number = old + delta
        if not LLONG_MIN <= number <= LLONG_MAX:
            raise ErrorReply("ERR increment or decrement would overflow")
    db.set(key, b"%d" % number, True)
    return number


@command("incr", 2, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Increment the integer value of a key by one")
def incr(client: Client, argv: list[bytes]) -> Any:
    return _incr(client, argv[1], 1)


@command("decr", 2, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Decrement the integer value of a key by one")
def decr(client: Client, argv: list[bytes]) -> Any:
    return _incr(client, argv[1], -1)


@command("incrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Increment the integer value of a key by the given amount")
def incrby(client: Client, argv: list[bytes]) -> Any:
    delta = to_int(argv[2])
    return _incr(client, argv[1], delta)


@command("decrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Decrement the integer value of a key by the given number")
def decrby(client: Client, argv: list[bytes]) -> Any:
    delta = to_int(argv[2])
    if delta == LLONG_MIN:
        raise ErrorReply("ERR decrement would overflow")
    return _incr(client, argv[1], -delta)


@command("incrbyfloat", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="2.6.0",
         summary="Increment the float value of a key by the given amount")
def incrbyfloat(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    key = argv[1]
    value = db.lookup(key)
    current = Fraction(0) if value is None else ld_parse(bytes(_string(value)))
    if current is None:
        raise ErrorReply(NOT_FLOAT)
    increment = ld_parse(argv[2])
    if increment is None:
        raise ErrorReply(NOT_FLOAT)
    result = None if type(current) is float or type(increment) is float else ld_round(current + increment)
    if result is None:
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    text = ld_format(result)
    db.set(key, text, True)
    client.rewrite([b"SET", key, text, b"KEEPTTL"])
    return text


# --- substrings --------------------------------------------------------------------------------

@command("append", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="2.0.0",
         summary="Append a value to a key")
def append(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    key, tail = argv[1], argv[2]
    value = db.lookup(key)
    if value is None:
        db.set(key, tail)
        return len(tail)
    t = type(value)
    if t is bytes:
        _check_length(client, len(value), len(tail))
        value = bytearray(value)
        value += tail
        db.data[key] = value
    elif t is bytearray:
        _check_length(client, len(value), len(tail))
        value += tail
    else:
        raise ErrorReply(WRONGTYPE)
    db.modified(key)
    return len(value)


@command("strlen", 2, "readonly fast", keys=(1, 1, 1), group="string", since="2.2.0",
         summary="Get the length of the value stored in a key")
def strlen(client: Client, argv: list[bytes]) -> Any:
    value = client.db.read(argv[1])
    if value is None:
        return 0
    return len(_string(value))


def _getrange(client: Client, argv: list[bytes]) -> Any:
    start = parse_ll(argv[2])
    end = parse_ll(argv[3])
    if start is None or end is None:
        raise ErrorReply(NOT_INT)
    value = client.db.read(argv[1])
    if value is None:
        return b""
    value = _string(value)
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = max(start, 0)
    end = max(end, 0)
    if end >= size:
        end = size - 1
    if start > end or size == 0:
        return b""
    return bytes(value[start:end + 1])


@command("getrange", 4, "readonly", keys=(1, 1, 1), group="string", since="2.4.0",
         summary="Get a substring of the string stored at a key")
def getrange(client: Client, argv: list[bytes]) -> Any:
    return _getrange(client, argv)


@command("substr", 4, "readonly", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Get a substring of the string stored at a key")
def substr(client: Client, argv: list[bytes]) -> Any:
    return _getrange(client, argv)


@command("setrange", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.2.0",
         summary="Overwrite part of a string at key starting at the specified offset")
def setrange(client: Client, argv: list[bytes]) -> Any:
    offset = to_int(argv[2])
    if offset < 0:
        raise ErrorReply("ERR offset is out of range")
    db = client.db
    key, patch = argv[1], argv[3]
    value = db.lookup(key)
    if value is None:
        if not patch:
            return 0
        _check_length(client, offset, len(patch))
        new = bytearray(offset)
        new += patch
        db.set(key, new)
        return len(new)
    value = _string(value)
    if not patch:
        return len(value)
    _check_length(client, offset, len(patch))
    if type(value) is bytes:
        value = bytearray(value)
        db.data[key] = value
    end = offset + len(patch)
    if end > len(value):
        value.extend(bytes(end - len(value)))
    value[offset:end] = patch  # type: ignore[index]
    db.modified(key)
    return len(value)


# --- LCS ---------------------------------------------------------------------------------------

def _lcs_rows(a: bytes, b: bytes) -> list[int]:
    """Bit-parallel LCS table: rows[i] has bit j set when LCS(a[:i], b[:j+1]) ==
    LCS(a[:i], b[:j]) (no step), so LCS(i, j) = j - popcount(rows[i] & (2**j - 1))."""
    m = len(b)
    full = (1 << m) - 1
    masks: dict[int, int] = {}
    for j, ch in enumerate(b):
        masks[ch] = masks.get(ch, 0) | (1 << j)
    v = full
    rows = [v]
    append = rows.append
    for ch in a:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        append(v)
    return rows


def _lcs_value(rows: list[int], i: int, j: int) -> int:
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


@command("lcs", -3, "readonly", keys=(1, 2, 1), group="string", since="7.0.0",
         summary="Find longest common substring")
def lcs(client: Client, argv: list[bytes]) -> Any:
    db = client.db
    va = db.read(argv[1])
    vb = db.read(argv[2])
    if (va is not None and type(va) not in (bytes, bytearray)) or \
            (vb is not None and type(vb) not in (bytes, bytearray)):
        raise ErrorReply("ERR The specified keys must contain string values")
    a = bytes(va) if va is not None else b""
    b = bytes(vb) if vb is not None else b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].upper()
        if opt == b"IDX":
            getidx = True
        elif opt == b"LEN":
            getlen = True
        elif opt == b"WITHMATCHLEN":
            withmatchlen = True
        elif opt == b"MINMATCHLEN" and i + 1 < n:
            number = to_int(argv[i + 1])
            minmatchlen = max(number, 0)
            i += 1
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    if getidx and getlen:
        raise ErrorReply("ERR If you want both the length and indexes, please just use IDX.")
    alen, blen = len(a), len(b)
    if (alen + 1) * (blen + 1) * 4 > _max_bulk(client):
        raise ErrorReply("ERR Insufficient memory, transient memory for LCS exceeds "
                         "proto-max-bulk-len")
    rows = _lcs_rows(a, b)
    total = _lcs_value(rows, alen, blen)
    if getlen:
        return total
    # Walk back from (alen, blen) as Redis does: on a match go diagonally, otherwise towards
    # the larger neighbour (up when LCS(i-1, j) > LCS(i, j-1), else left).
    result = bytearray(total)
    idx = total
    matches: list[Any] = []
    i, j = alen, blen
    here = total                              # LCS(i, j)
    up = _lcs_value(rows, i - 1, j) if i > 0 else 0   # LCS(i-1, j)
    a_start = -1                              # current range: a[a_start..a_end], b[b_start..b_end]
    a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            idx -= 1
            result[idx] = a[i - 1]
            if a_start < 0:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            # move to (i-1, j-1)
            here = up - (1 - ((rows[i - 1] >> (j - 1)) & 1))
            i -= 1
            j -= 1
            up = _lcs_value(rows, i - 1, j) if i > 0 else 0
        else:
            left = here - (1 - ((rows[i] >> (j - 1)) & 1))      # LCS(i, j-1)
            if up > left:
                i -= 1
                here = up
                up = _lcs_value(rows, i - 1, j) if i > 0 else 0
            else:
                j -= 1
                here = left
                up = up - (1 - ((rows[i - 1] >> j) & 1))        # LCS(i-1, j-1)
            if a_start >= 0:
                emit = True
        if emit:
            length = a_end - a_start + 1
            if getidx and (minmatchlen == 0 or length >= minmatchlen):
                entry: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    entry.append(length)
                matches.append(entry)
            a_start = -1
    if getidx:
        return {b"matches": matches, b"len": total}
    return bytes(result)


# --- bitmaps -----------------------------------------------------------------------------------

def _bit_offset(client: Client, raw: bytes, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset, `#n` meaning n*bits when bits is given."""
    hashed = bits > 0 and raw[:1] == b"#"
    number = parse_ll(raw[1:] if hashed else raw)
    if number is None:
        raise ErrorReply(BIT_OFFSET)
    if hashed:
        number *= bits
        number = (number + 2**63) % 2**64 - 2**63        # C signed overflow wraps
    if number < 0 or (number >> 3) >= _max_bulk(client):
        raise ErrorReply(BIT_OFFSET)
    return number


def _bit_target(client: Client, key: bytes, maxbit: int) -> tuple[bytearray, bool]:
    """lookupStringForBitCommand: the string at key as a bytearray grown to hold maxbit
    (created when missing); also whether it was created or grown."""
    db = client.db
    need = (maxbit >> 3) + 1
    value = db.lookup(key)
    if value is None:
        new = bytearray(need)
        db.data[key] = new                     # the caller signals the change (db.modified)
        db.access[key] = time.monotonic()
        return new, True
    t = type(value)
    if t is bytes:
        value = bytearray(value)
        db.data[key] = value
    elif t is not bytearray:
        raise ErrorReply(WRONGTYPE)
    if len(value) < need:
        value.extend(bytes(need - len(value)))
        return value, True
    return value, False


@command("setbit", 4, "write denyoom", keys=(1, 1, 1), group="bitmap", since="2.2.0",
         summary="Sets or clears the bit at offset in the string value stored at key")
def setbit(client: Client, argv: list[bytes]) -> Any:
    offset = _bit_offset(client, argv[2])
    on = parse_ll(argv[3])
    if on is None or on & ~1:
        raise ErrorReply(BIT_VALUE)
    value, dirty = _bit_target(client, argv[1], offset)
    byte = offset >> 3
    mask = 1 << (7 - (offset & 7))
    old = 1 if value[byte] & mask else 0
    if dirty or old != on:
        if on:
            value[byte] |= mask
        else:
            value[byte] &= ~mask & 0xFF
        client.db.modified(argv[1])
    return old


@command("getbit", 3, "readonly fast", keys=(1, 1, 1), group="bitmap", since="2.2.0",
         summary="Returns the bit value at offset in the string value stored at key")
def getbit(client: Client, argv: list[bytes]) -> Any:
    offset = _bit_offset(client, argv[2])
    value = client.db.read(argv[1])
    if value is None:
        return 0
    value = _string(value)
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return 1 if value[byte] & (1 << (7 - (offset & 7))) else 0


def _bit_unit(raw: bytes) -> bool:
    unit = raw.upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise ErrorReply(SYNTAX)


def _bits_of(value: bytes | bytearray, first: int, last: int) -> tuple[int, int]:
    """Bits first..last (inclusive, 0 = most significant bit of byte 0) as (int, width)."""
    chunk = value[first >> 3:(last >> 3) + 1]
    number = int.from_bytes(chunk, "big") >> (7 - (last & 7))
    width = last - first + 1
    return number & ((1 << width) - 1), width


@command("bitcount", -2, "readonly", keys=(1, 1, 1), group="bitmap", since="2.6.0",
         summary="Count set bits in a string")
def bitcount(client: Client, argv: list[bytes]) -> Any:
    value = client.db.read(argv[1])
    if value is None:
        return 0
    value = _string(value)
    n = len(argv)
    size = len(value)
    if n == 2:
        return int.from_bytes(value, "big").bit_count()
    if n not in (4, 5):
        raise ErrorReply(SYNTAX)
    start = to_int(argv[2])
    end = to_int(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0
    isbit = _bit_unit(argv[4]) if n == 5 else False
    total = size * 8 if isbit else size
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    if start > end:
        return 0
    if isbit:
        return _bits_of(value, start, end)[0].bit_count()
    return int.from_bytes(value[start:end + 1], "big").bit_count()


@command("bitpos", -3, "readonly", keys=(1, 1, 1), group="bitmap", since="2.8.7",
         summary="Find first bit set or clear in a string")
def bitpos(client: Client, argv: list[bytes]) -> Any:
    bit = to_int(argv[2])
    if bit not in (0, 1):
        raise ErrorReply("ERR The bit argument must be 1 or 0.")
    value = client.db.read(argv[1])
    if value is None:
        return -1 if bit else 0
    value = _string(value)
    n = len(argv)
    size = len(value)
    isbit = False
    end_given = False
    if n == 3:
        start, end = 0, size - 1
    elif n in (4, 5, 6):
        start = to_int(argv[3])
        if n == 6:
            isbit = _bit_unit(argv[5])
        if n >= 5:
            end = to_int(argv[4])
            end_given = True
        else:
            end = size * 8 + 7 if isbit else size - 1
        total = size * 8 if isbit else size
        if start < 0:
            start += total
        if end < 0:
            end += total
        start = max(start, 0)
        end = max(end, 0)
        if end >= total:
            end = total - 1
    else:
        raise ErrorReply(SYNTAX)
    if start > end:
        return -1
    first, last = (start, end) if isbit else (start * 8, end * 8 + 7)
    number, width = _bits_of(value, first, last)
    if not bit:
        number ^= (1 << width) - 1
    if number:
        return first + width - number.bit_length()
    if bit or end_given:
        return -1
    return last + 1


_BITOPS = {b"AND": 0, b"OR": 1, b"XOR": 2, b"NOT": 3}


@command("bitop", -4, "write denyoom", keys=(2, -1, 1), group="bitmap", since="2.6.0",
         summary="Perform bitwise operations between strings")
def bitop(client: Client, argv: list[bytes]) -> Any:
    op = _BITOPS.get(argv[1].upper())
    if op is None:
        raise ErrorReply(SYNTAX)
    if op == 3 and len(argv) != 4:
        raise ErrorReply("ERR BITOP NOT must be called with a single source key.")
    db = client.db
    sources: list[bytes | bytearray] = []
    for key in argv[3:]:
        value = db.read(key)
        sources.append(b"" if value is None else _string(value))
    size = max(len(s) for s in sources)
    dest = argv[2]
    if not size:
        db.delete(dest)
        return 0
    numbers = [int.from_bytes(s, "big") << (8 * (size - len(s))) for s in sources]
    result = numbers[0]
    if op == 0:
        for number in numbers[1:]:
            result &= number
    elif op == 1:
        for number in numbers[1:]:
            result |= number
    elif op == 2:
        for number in numbers[1:]:
            result ^= number
    else:
        result ^= (1 << (8 * size)) - 1
    db.set(dest, bytearray(result.to_bytes(size, "big")))
    return size


def _field_type(raw: bytes) -> tuple[bool, int]:
    """i1..i64 / u1..u63 -> (signed, bits)."""
    kind = raw[:1].lower()
    if kind not in (b"i", b"u"):
        raise ErrorReply(BAD_FIELD_TYPE)
    bits = parse_ll(c_bytes(raw[1:]))
    signed = kind == b"i"
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise ErrorReply(BAD_FIELD_TYPE)
    return signed, bits


def _field_get(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = value[first:last + 1]
    width = (last - first + 1) * 8
    number = int.from_bytes(chunk, "big") << (8 * (last - first + 1 - len(chunk)))
    number = (number >> (width - (offset & 7) - bits)) & ((1 << bits) - 1)
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def _field_set(value: bytearray, offset: int, bits: int, number: int) -> None:
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = (last - first + 1) * 8
    shift = width - (offset & 7) - bits
    current = int.from_bytes(value[first:last + 1], "big")
    mask = ((1 << bits) - 1) << shift
    current = (current & ~mask) | ((number << shift) & mask)
    value[first:last + 1] = current.to_bytes(last - first + 1, "big")


_WRAP, _SAT, _FAIL = 0, 1, 2
_GET_OP, _SET_OP, _INCR_OP = 0, 1, 2


def _bitfield(client: Client, argv: list[bytes], readonly_cmd: bool) -> Any:
    ops: list[tuple[int, int, int, bool, int, int]] = []   # (op, offset, bits, signed, arg, overflow)
    overflow = _WRAP
    readonly = True
    highest = 0
    i = 2
    n = len(argv)
    while i < n:
        left = n - i - 1
        sub = argv[i].lower()
        if sub == b"get" and left >= 2:
            op = _GET_OP
        elif sub == b"set" and left >= 3:
            op = _SET_OP
        elif sub == b"incrby" and left >= 3:
            op = _INCR_OP
        elif sub == b"overflow" and left >= 1:
            kind = argv[i + 1].lower()
            if kind == b"wrap":
                overflow = _WRAP
            elif kind == b"sat":
                overflow = _SAT
            elif kind == b"fail":
                overflow = _FAIL
            else:
                raise ErrorReply("ERR Invalid OVERFLOW type specified")
            i += 2
            continue
        else:
            raise ErrorReply(SYNTAX)
        signed, bits = _field_type(argv[i + 1])
        offset = _bit_offset(client, argv[i + 2], bits)
        arg = 0
        if op != _GET_OP:
            readonly = False
            number = to_int(argv[i + 3])
            arg = number
            highest = max(highest, offset + bits - 1)
        ops.append((op, offset, bits, signed, arg, overflow))
        i += 4 if op != _GET_OP else 3
    db = client.db
    if readonly:
        value = db.read(argv[1])
        if value is not None:
            value = _string(value)
        else:
            value = b""
    else:
        if readonly_cmd:
            raise ErrorReply("ERR BITFIELD_RO only supports the GET subcommand")
        value, _ = _bit_target(client, argv[1], highest)
    out: list[Any] = []
    changes = 0
    for op, offset, bits, signed, arg, ow in ops:
        old = _field_get(value, offset, bits, signed)
        if op == _GET_OP:
            out.append(old)
            continue
        if signed:
            high = (1 << (bits - 1)) - 1
            low = -high - 1
            target = old + arg if op == _INCR_OP else arg
        else:
            high = (1 << bits) - 1
            low = 0
            target = old + arg if op == _INCR_OP else arg % 2**64
        if target > high or target < low:
            if ow == _FAIL:
                out.append(None)               # not written, not a change
                continue
            if ow == _SAT:
                target = high if target > high else low
            else:
                target %= 1 << bits
                if signed and target > high:
                    target -= 1 << bits
        out.append(target if op == _INCR_OP else old)
        unsigned_old = old % (1 << bits)
        if target % (1 << bits) != unsigned_old:           # Redis signals real changes only
            _field_set(value, offset, bits, target)  # type: ignore[arg-type]
            changes += 1
    if changes:
        db.modified(argv[1])
    return out


@command("bitfield", -2, "write denyoom", keys=(1, 1, 1), group="bitmap", since="3.2.0",
         summary="Perform arbitrary bitfield integer operations on strings")
def bitfield(client: Client, argv: list[bytes]) -> Any:
    return _bitfield(client, argv, False)


@command("bitfield_ro", -2, "readonly fast", keys=(1, 1, 1), group="bitmap", since="6.0.0",
         summary="Perform arbitrary bitfield integer operations on strings. Read-only variant of "
                 "BITFIELD")
def bitfield_ro(client: Client, argv: list[bytes]) -> Any:
    return _bitfield(client, argv, True)

