"""Sans-I/O RESP2/RESP3: request bytes in -> argument lists; reply values -> bytes.

Feed whatever arrived on a socket to `RequestParser.feed`; it returns every complete command
and keeps the rest. A request that breaks the protocol raises `ProtocolError` carrying Redis's own
message, after the commands before it were returned: reply with the error, then close.

Replies are plain Python values, encoded per protocol version by `encode`:
bytes -> bulk string, None -> null, int -> integer, float -> double, list -> array,
dict -> map, plus the marker types below for the shapes plain values cannot express.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain

try:
    from hiredis import ProtocolError as _HiredisError
    from hiredis import Reader as _Reader
except ImportError:           # hiredis is optional: the pure parser is complete on its own
    _Reader = None

INT_MAX = 2**31 - 1
INLINE_MAX = 64 * 1024          # PROTO_INLINE_MAX_SIZE
BIG_ARG = 32 * 1024             # beyond this, a bulk still arriving is gathered chunk by chunk


class ProtocolError(Exception):
    """The client broke the protocol; `reply` is the error to send before closing."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.reply = ErrorReply(f"ERR Protocol error: {detail}")


class ErrorReply(Exception):
    """An error reply, e.g. ErrorReply("ERR syntax error"). Raise it from a command, or put it
    in an array (EXEC results). The text starts with the error code."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Simple(str):
    """A simple string reply (+OK)."""


class Push(list):
    """An out-of-band push (pub/sub message): `>` in RESP3, a plain array in RESP2."""


class SetReply(list):
    """A set: `~` in RESP3, a plain array in RESP2."""


class Verbatim(str):
    """A verbatim text string (`=` with `txt:` in RESP3, a bulk string in RESP2)."""


class Replies(list):
    """Several top-level replies from one command (SUBSCRIBE a b c answers once per channel)."""


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()       # *-1 in RESP2, _ in RESP3
OK = Simple("OK")
PONG = Simple("PONG")
QUEUED = Simple("QUEUED")
_SIMPLE = {text: b"+%s\r\n" % text.encode() for text in ("OK", "PONG", "QUEUED")}

_NUMBER = re.compile(rb"-?[1-9][0-9]{0,18}|0")
# Multibulk counts of 10000 and more go to the exact parser: hiredis would allocate the array
# before the elements arrive. (Zero-padded lengths hiredis refuses itself; null and empty
# elements are caught after parsing.)
_BIG_COUNT = re.compile(rb"\*[0-9]{5}")


def parse_ll(raw: bytes | bytearray) -> int | None:
    """Redis's string2ll: a canonical signed 64-bit decimal, or None."""
    if _NUMBER.fullmatch(raw) is None:
        return None
    value = int(raw)
    if -2**63 <= value < 2**63:
        return value
    return None


_SPACE = b" \t\n\r\v\f"
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def _line_end(buf: bytes, end: bytes, pos: int) -> int:
    """Where the line starting at pos ends, or -1. Redis looks with strchr, which stops at a
    NUL byte: a NUL before the line end means the end is never found."""
    found = buf.find(end, pos)
    if found > pos and buf.find(b"\0", pos, found) >= 0:
        return -1
    return found


_REPR = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x07: "\\a", 0x08: "\\b"}


def repr_bytes(raw: bytes) -> str:
    """Redis's sdscatrepr without the quotes: printable ASCII as is, the usual backslash
    escapes, \\xHH for any other byte. split_args reads it back (inside double quotes)."""
    out = []
    for b in raw:
        escaped = _REPR.get(b)
        out.append(escaped if escaped is not None else chr(b) if 32 <= b < 127 else "\\x%02x" % b)
    return "".join(out)


def split_args(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs: split an inline command, honouring "..." and '...' quoting.

    Returns None for unbalanced quotes (or a closing quote not followed by a space).
    """
    cut = line.find(b"\0")
    if cut >= 0:
        line = line[:cut]
    args: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            ch = line[i] if i < n else 0
            if in_double:
                if (ch == 0x5C and i + 3 < n and line[i + 1] == 0x78
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    current.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif ch == 0x5C and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], line[i:i + 1])
                elif ch == 0x22:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    current.append(ch)
            elif in_single:
                if ch == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif ch == 0x27:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    current.append(ch)
            else:
                if i >= n or ch in b" \n\r\t":
                    break
                if ch == 0x22:
                    in_double = True
                elif ch == 0x27:
                    in_single = True
                else:
                    current.append(ch)
            i += 1
        args.append(bytes(current))


class RequestParser:
    """Incremental request parser for one connection (multibulk and inline requests).

    Set `auth_required` while the client has not authenticated: Redis then refuses large
    multibulk and bulk lengths before reading them.
    """

    __slots__ = ("_buf", "_off", "_argv", "_remaining", "_bulklen", "_chunks", "_have", "_need",
                 "max_bulk", "auth_required", "_reader")

    def __init__(self, max_bulk: int = 512 * 1024 * 1024) -> None:
        self._buf = b""
        self._off = 0                # where the unread part of _buf starts
        self._argv: list[bytes] = []
        self._remaining = 0          # arguments still to read for the current multibulk
        self._bulklen = -1           # length of the bulk being read, -1 before its header
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0               # bytes needed before parsing can progress (big bulks)
        self.max_bulk = max_bulk
        self.auth_required = False
        self._reader = _Reader() if _Reader is not None else None

    @property
    def pending(self) -> int:
        """Bytes received and not yet part of a complete command."""
        return len(self._buf) - self._off + self._have

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add bytes; return the complete commands. Raises ProtocolError, with the commands
        parsed before the error in `error.commands`."""
        if (self._reader is not None and not self._buf and not self._remaining and not self._need
                and data[:1] == b"*" and data[-2:] == b"\r\n" and not self.auth_required):
            fast = self._feed_hiredis(data)
            if fast is not None:
                return fast
        return self._feed(data)

    def _feed_hiredis(self, data: bytes) -> list[list[bytes]] | None:
        """The fast path: hiredis's C reader, for a chunk of whole, plain multibulk commands.

        Used only when the chunk starts and ends on command boundaries; any doubt (a partial
        command, a header hiredis reads differently from Redis, a non-bulk element) returns
        None and the pure parser reads the chunk instead, so replies never depend on the path.
        """
        several = b"\r\n*" in data
        if data[1:6].isdigit() or (several and _BIG_COUNT.search(data) is not None) or b"$-" in data:
            return None
        reader = self._reader
        commands: list[list[bytes]] = []
        try:
            reader.feed(data)  # type: ignore[union-attr]
            item = reader.gets()  # type: ignore[union-attr]
            while item is not False:
                commands.append(item)
                item = reader.gets()  # type: ignore[union-attr]
        except _HiredisError:
            self._reader = _Reader()
            return None
        if reader.has_data() or not commands:  # type: ignore[union-attr]
            self._reader = _Reader()
            return None
        # Each command is one "*" header then one "$" header per argument, and every element a
        # bulk string (join refuses ints, nulls, maps and errors). A chunk holding anything
        # else, empty commands, or such bytes in its payloads takes the exact path.
        try:
            if not several:                         # one command: the common case at -P 1
                command = commands[0]
                if type(command) is not list or not command or len(commands) != 1:
                    return None
                b"".join(command)
                return commands if data.count(b"\r\n$") == len(command) else None
            lengths = list(map(len, commands))
            b"".join(chain.from_iterable(commands))
        except TypeError:                           # a null multibulk (*-1) or another element type
            return None
        if (set(map(type, commands)) != {list} or min(lengths) == 0
                or data.count(b"\r\n$") != sum(lengths) or data.count(b"\r\n*") != len(commands) - 1):
            return None
        return commands

    def _feed(self, data: bytes) -> list[list[bytes]]:
        if self._need:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            data = b"".join(self._chunks)
            self._chunks, self._have, self._need = [], 0, 0
        pos = 0
        if self._off:                # unauthenticated: the rest of the last read, one at a time
            buf = self._buf[self._off:] + data if data else self._buf
            pos = 0 if data else self._off
            self._off = 0
        else:
            buf = self._buf + data if self._buf else data
        out: list[list[bytes]] = []
        n = len(buf)
        try:
            while pos < n:
                if not self._remaining:
                    if buf[pos] != 42:                      # not '*': inline request
                        nl = _line_end(buf, b"\n", pos)
                        if nl < 0:
                            if n - pos > INLINE_MAX:
                                raise ProtocolError("too big inline request")
                            break
                        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
                        args = split_args(buf[pos:end])
                        if args is None:
                            raise ProtocolError("unbalanced quotes in request")
                        pos = nl + 1
                        if args:
                            out.append(args)
                            if self.auth_required:      # AUTH may change the limits: one at a time
                                break
                        continue
                    nl = _line_end(buf, b"\r", pos)
                    if nl < 0:
                        if n - pos > INLINE_MAX:
                            raise ProtocolError("too big mbulk count string")
                        break
                    if nl + 1 >= n:
                        break
                    raw = buf[pos + 1:nl]
                    count = int(raw) if raw.isdigit() and (raw[0] != 48 or len(raw) == 1) else parse_ll(raw)
                    if count is None or count > INT_MAX:
                        raise ProtocolError("invalid multibulk length")
                    if count > 10 and self.auth_required:
                        raise ProtocolError("unauthenticated multibulk length")
                    pos = nl + 2
                    if count <= 0:
                        continue
                    self._remaining = count
                    self._argv = []
                argv = self._argv
                while self._remaining:
                    if self._bulklen < 0:
                        nl = _line_end(buf, b"\r", pos)
                        if nl < 0:
                            if n - pos > INLINE_MAX:
                                raise ProtocolError("too big bulk count string")
                            return out
                        if nl + 1 >= n:
                            return out
                        if buf[pos] != 36:
                            raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
                        raw = buf[pos + 1:nl]
                        size = int(raw) if raw.isdigit() and (raw[0] != 48 or len(raw) == 1) else parse_ll(raw)
                        if size is None or size < 0 or size > self.max_bulk:
                            raise ProtocolError("invalid bulk length")
                        if size > 16384 and self.auth_required:
                            raise ProtocolError("unauthenticated bulk length")
                        pos = nl + 2
                        self._bulklen = size
                    size = self._bulklen
                    if n - pos < size + 2:
                        if size >= BIG_ARG:
                            self._need = size + 2
                        return out
                    argv.append(buf[pos:pos + size])
                    pos += size + 2
                    self._bulklen = -1
                    self._remaining -= 1
                out.append(argv)
                if self.auth_required:                  # AUTH may change the limits: one at a time
                    break
            return out
        except ProtocolError as error:
            error.commands = out  # type: ignore[attr-defined]
            pos = n
            self._remaining = 0
            self._bulklen = -1
            raise
        finally:
            if pos >= n:
                self._buf = b""
            elif self.auth_required and not self._need:
                self._buf, self._off = buf, pos     # no copy per command before AUTH
            else:
                self._buf = buf[pos:]
            if self._need:
                self._chunks = [self._buf]
                self._have = len(self._buf)
                self._buf = b""
                if self._have >= self._need:        # cannot happen; keep the invariant
                    self._need = 0


# --- replies -----------------------------------------------------------------------------------

def format_double(value: float) -> bytes:
    """A double as Redis 7.0 prints it (%.17g, inf/-inf)."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def encode(value: object, resp: int, out: list[bytes]) -> None:
    """Append the RESP encoding of `value` (for protocol version `resp`) to `out`."""
    t = type(value)
    if t is bytes or t is bytearray:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))  # type: ignore[arg-type]
    elif t is int:
        out.append(b":%d\r\n" % value)  # type: ignore[str-format]
    elif t is Simple:
        raw = _SIMPLE.get(value)  # type: ignore[call-overload]
        out.append(raw if raw is not None else b"+%s\r\n" % value.encode())  # type: ignore[union-attr]
    elif value is None:
        out.append(b"_\r\n" if resp == 3 else b"$-1\r\n")
    elif t is list or t is Push or t is SetReply:
        mark = b"*"
        if resp == 3:
            mark = b">" if t is Push else b"~" if t is SetReply else b"*"
        out.append(b"%s%d\r\n" % (mark, len(value)))  # type: ignore[arg-type]
        append = out.append
        for item in value:  # type: ignore[union-attr]
            if type(item) is bytes:
                append(b"$%d\r\n%s\r\n" % (len(item), item))
            else:
                encode(item, resp, out)
    elif t is ErrorReply:
        out.append(b"-%s\r\n" % value.text.replace("\r", " ").replace("\n", " ")  # type: ignore[union-attr]
                   .encode("utf-8", "surrogateescape"))
    elif t is float:
        raw = format_double(value)  # type: ignore[arg-type]
        out.append(b",%s\r\n" % raw if resp == 3 else b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is dict:
        out.append(b"%%%d\r\n" % len(value) if resp == 3 else b"*%d\r\n" % (2 * len(value)))  # type: ignore[arg-type]
        for key, item in value.items():  # type: ignore[union-attr]
            encode(key, resp, out)
            encode(item, resp, out)
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if resp == 3 else b"*-1\r\n")
    elif t is bool:
        out.append((b"#t\r\n" if value else b"#f\r\n") if resp == 3 else (b":1\r\n" if value else b":0\r\n"))
    elif t is Verbatim:
        raw = value.encode()  # type: ignore[union-attr]
        if resp == 3:
            out.append(b"=%d\r\ntxt:%s\r\n" % (len(raw) + 4, raw))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is Replies:
        for item in value:  # type: ignore[union-attr]
            encode(item, resp, out)
    elif t is str:
        raw = value.encode()  # type: ignore[union-attr]
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif isinstance(value, ErrorReply):
        encode(ErrorReply(value.text), resp, out)
    elif isinstance(value, (list, tuple)):
        encode(list(value), resp, out)  # type: ignore[arg-type]
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    else:
        raise TypeError(f"cannot encode {t.__name__} as a RESP reply")


def to_bytes(value: object, resp: int = 2) -> bytes:
    """Encode one reply to bytes (tests and out-of-band sends)."""
    out: list[bytes] = []
    encode(value, resp, out)
    return b"".join(out)


Encoder = Callable[[object, int, list[bytes]], None]
