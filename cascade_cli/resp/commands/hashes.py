"""Hashes commands (Redis 7.0 semantics).

A hash is an RHash (dict field -> value, insertion ordered like Redis's listpack encoding).
`RHash.big` turns on, and stays on, once the hash outgrew the listpack encoding: more than
hash-max-listpack-entries fields, or a field or value longer than hash-max-listpack-value.

HINCRBYFLOAT computes in x87 80-bit long double as Redis does on x86-64 (64-bit significand,
15-bit exponent), emulated exactly with fractions, and prints the result like "%.17Lf" with the
trailing zeros removed.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from cascade_cli.resp import scan as scanning
from cascade_cli.resp.commands import NOT_INT, SYNTAX, WRONGTYPE, command, to_int
from cascade_cli.resp.protocol import OK, ErrorReply, parse_ll
from cascade_cli.resp.store import RHash

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

LONG_MAX = 2**63 - 1
MAX_RANDOM_REPLY = 1 << 24      # HRANDFIELD negative counts beyond this are refused (memory)
EMPTY_SCAN = [b"0", []]


def _read(client: Client, key: bytes) -> Any:
    """The hash at key for a read command (None when missing); WRONGTYPE otherwise."""
    value = client.db.read(key)
    if value is None or type(value) is RHash:
        return value
    raise ErrorReply(WRONGTYPE)


def _write(client: Client, key: bytes) -> Any:
    value = client.db.lookup(key)
    if value is None or type(value) is RHash:
        return value
    raise ErrorReply(WRONGTYPE)


def parse_cursor(raw: bytes) -> int:
    """A SCAN-family cursor as Redis 7.0 reads it (strtoul over the whole argument: an optional
    sign, digits or nothing at all; a negative value wraps around). Stands in for
    scan.parse_cursor, which rejects "", "+5" and "-1" that Redis accepts. strtoul stops at a
    NUL byte, so "1\\0x" is cursor 1 and "\\0" is cursor 0."""
    cut = raw.find(b"\0")
    if cut >= 0:
        raw = raw[:cut]
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
    h = _write(client, argv[1])
    if h is not None and argv[2] in h:
        return 0
    _set_one(client, argv[1], h, argv[2], argv[3])
    return 1


@command("hdel", -3, "write fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hdel(client: Client, argv: list[bytes]) -> object:
    """Delete one or more hash fields"""
    key = argv[1]
    h = _write(client, key)
    if h is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if not h:
                break
    if deleted:
        db = client.db
        db.modified(key)
        client.engine.dirty += deleted - 1
        if not h:
            db.drop_if_empty(key)
            client.engine.dirty -= 1
    return deleted


@command("hincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hincrby(client: Client, argv: list[bytes]) -> object:
    """Increment the integer value of a hash field by the given number"""
    increment = to_int(argv[3])
    key, field = argv[1], argv[2]
    h = _write(client, key)
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
    h = _write(client, key)
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
    h = _read(client, argv[1])
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hmget(client: Client, argv: list[bytes]) -> object:
    """Get the values of all the given hash fields"""
    h = _read(client, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hgetall", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hgetall(client: Client, argv: list[bytes]) -> object:
    """Get all the fields and values in a hash"""
    h = _read(client, argv[1])
    return {} if h is None else dict(h)


@command("hkeys", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hkeys(client: Client, argv: list[bytes]) -> object:
    """Get all the fields in a hash"""
    h = _read(client, argv[1])
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0")
def hvals(client: Client, argv: list[bytes]) -> object:
    """Get all the values in a hash"""
    h = _read(client, argv[1])
    return [] if h is None else list(h.values())


@command("hlen", 2, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hlen(client: Client, argv: list[bytes]) -> object:
    """Get the number of fields in a hash"""
    h = _read(client, argv[1])
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="3.2.0")
def hstrlen(client: Client, argv: list[bytes]) -> object:
    """Get the length of the value of a hash field"""
    h = _read(client, argv[1])
    return 0 if h is None else len(h.get(argv[2], b""))


@command("hexists", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0")
def hexists(client: Client, argv: list[bytes]) -> object:
    """Determine if a hash field exists"""
    h = _read(client, argv[1])
    return 0 if h is None else int(argv[2] in h)


@command("hrandfield", -2, "readonly", keys=(1, 1, 1), group="hash", since="6.2.0")
def hrandfield(client: Client, argv: list[bytes]) -> object:
    """Get one or multiple random fields from a hash"""
    if len(argv) == 2:
        h = _read(client, argv[1])
        if h is None:
            return None
        return random.choice(list(h))
    count = parse_ll(argv[2])
    if count is None:
        raise ErrorReply(NOT_INT)
    if count < -LONG_MAX:
        raise ErrorReply(f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}")
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise ErrorReply(SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
        raise ErrorReply("ERR value is out of range")
    h = _read(client, argv[1])
    if h is None or count == 0:
        return []
    if count < 0 or count == 1:
        wanted = -count if count < 0 else 1
        if wanted > MAX_RANDOM_REPLY:
            raise ErrorReply("ERR value is out of range")
        fields = random.choices(list(h), k=wanted)
    elif count >= len(h):
        fields = list(h)
    else:
        fields = random.sample(list(h), count)
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
    cursor = parse_cursor(argv[2])
    h = _read(client, argv[1])
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


# --- x87 long double arithmetic (HINCRBYFLOAT) -------------------------------------------------

LD_DIGITS = 64                  # significand bits
LD_MIN_EXP = -16382             # exponent of the smallest normal number
LD_OVERFLOW_EXP = 16384         # values >= 2**16384 overflow
MAX_LONG_DOUBLE_CHARS = 5 * 1024
INF = float("inf")

_DECIMAL = re.compile(r"([+-]?)(?=\.?[0-9])([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_HEX = re.compile(r"([+-]?)0[xX](?=\.?[0-9a-fA-F])([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?"
                  r"(?:[pP]([+-]?[0-9]+))?")
_SPECIAL = re.compile(r"([+-]?)(inf|infinity|nan|nan\([0-9a-zA-Z_]*\))", re.IGNORECASE)
_CHUNK = 4000
_E_CHUNK = 10**_CHUNK


def _digits_to_int(digits: str) -> int:
    """int(digits) without Python's limit on long decimal conversions."""
    if len(digits) <= _CHUNK:
        return int(digits) if digits else 0
    return _digits_to_int(digits[:-_CHUNK]) * _E_CHUNK + int(digits[-_CHUNK:])


def _int_to_digits(value: int) -> str:
    if value < _E_CHUNK:
        return str(value)
    high, low = divmod(value, _E_CHUNK)
    return _int_to_digits(high) + str(low).rjust(_CHUNK, "0")


def ld_round(value: Fraction) -> Fraction | None:
    """Round an exact value to the nearest long double (ties to even); None on overflow."""
    if not value:
        return Fraction(0)
    n, d = value.numerator, value.denominator
    negative = n < 0
    if negative:
        n = -n
    e = n.bit_length() - d.bit_length()
    if (n < d << e) if e >= 0 else ((n << -e) < d):
        e -= 1                               # now 2**e <= n/d < 2**(e+1)
    if e < LD_MIN_EXP:
        e = LD_MIN_EXP                       # subnormal: fixed quantum
    shift = LD_DIGITS - 1 - e
    if shift >= 0:
        num, den = n << shift, d
    else:
        num, den = n, d << -shift
    m, rest = divmod(num, den)
    rest *= 2
    if rest > den or (rest == den and m & 1):
        m += 1
    if m.bit_length() - 1 - shift >= LD_OVERFLOW_EXP:
        return None
    if negative:
        m = -m
    return Fraction(m << -shift) if shift < 0 else Fraction(m, 1 << shift)


def ld_parse(raw: bytes) -> Fraction | float | None:
    """A long double the way Redis's string2ld reads it (strtold on the whole argument):
    an exact Fraction of the rounded value, +-inf as a float, or None when invalid."""
    if not raw or len(raw) >= MAX_LONG_DOUBLE_CHARS or raw[0] in b" \t\n\v\f\r" or b"\0" in raw:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    match = _DECIMAL.fullmatch(text)
    if match is not None:
        sign, whole, frac, exp = match.groups()
        frac = frac or ""
        digits = (whole + frac).lstrip("0")
        if not digits:
            return Fraction(0)
        exp_text = (exp or "0").lstrip("+-").lstrip("0")
        if len(exp_text) > 9:
            return None                      # overflow or underflow, whatever the digits
        exponent = (int(exp) if exp else 0) - len(frac)
        magnitude = len(digits) + exponent   # value < 10**magnitude
        if magnitude > 4933 or magnitude < -4960:
            return None
        mantissa = _digits_to_int(digits)
        exact = Fraction(mantissa * 10**exponent) if exponent >= 0 else Fraction(mantissa, 10**-exponent)
    else:
        match = _HEX.fullmatch(text)
        if match is not None:
            sign, whole, frac, exp = match.groups()
            frac = frac or ""
            mantissa = int(whole + frac, 16) if whole + frac else 0
            if not mantissa:
                return Fraction(0)
            exp_text = (exp or "0").lstrip("+-").lstrip("0")
            if len(exp_text) > 9:
                return None
            exponent = (int(exp) if exp else 0) - 4 * len(frac)
            bits = mantissa.bit_length() + exponent
            if bits > LD_OVERFLOW_EXP + 1 or bits < -16500:
                return None
            exact = Fraction(mantissa << exponent) if exponent >= 0 else Fraction(mantissa, 1 << -exponent)
        else:
            match = _SPECIAL.fullmatch(text)
            if match is None or match.group(2).lower().startswith("nan"):
                return None
            return -INF if match.group(1) == "-" else INF
    if sign == "-":
        exact = -exact
    rounded = ld_round(exact)
    if rounded is None or not rounded:       # ERANGE: overflow, or underflow to zero
        return None
    return rounded


def ld_format(value: Fraction) -> bytes:
    """printf("%.17Lf") with trailing zeros (and a trailing dot) removed; "-0" prints "0"."""
    negative = value < 0
    n, d = abs(value.numerator), value.denominator
    scaled, rest = divmod(n * 10**17, d)
    rest *= 2
    if rest > d or (rest == d and scaled & 1):
        scaled += 1
    digits = _int_to_digits(scaled).rjust(18, "0")
    whole, frac = digits[:-17], digits[-17:].rstrip("0")
    text = whole + "." + frac if frac else whole
    if negative and text != "0":
        text = "-" + text
    return text.encode()
