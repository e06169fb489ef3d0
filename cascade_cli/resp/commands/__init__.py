"""The command table and what every command module shares: registration, argument parsing,
Redis's standard error replies.

A command is a function `handler(client, argv) -> reply` registered with `@command(...)`.
`argv[0]` is the command name as sent; `client.db` is the selected Database, `client.engine`
the Engine. Return a reply value (see resp/protocol.py) or raise ErrorReply. Register
subcommands as "parent|sub" after declaring the parent with `container(...)`.

Arity follows Redis: n > 0 means exactly n arguments including the name, -n means at least n.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from math import inf
from typing import TYPE_CHECKING, Any

from cascade_cli.resp.numbers import is_decimal, ld_parse, ld_round, nonzero_mantissa, strtod
from cascade_cli.resp.protocol import ErrorReply, Simple, parse_ll

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

Handler = Callable[["Client", list[bytes]], Any]

GROUP_MODULES = ("connection", "keys", "strings", "hashes", "lists", "sets", "zsets", "streams",
                 "pubsub", "transactions", "server", "persist")

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
NO_SUCH_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
LLONG_MAX = 2**63 - 1


@dataclass(eq=False)
class Command:
    """One entry of the command table, with its call statistics (INFO commandstats)."""

    name: str                       # lower case; "parent|sub" for subcommands
    handler: Handler | None
    arity: int
    flags: frozenset[str]
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    since: str = "1.0.0"
    summary: str = ""
    subcommands: dict[bytes, Command] | None = None
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def arity_ok(self, argc: int) -> bool:
        arity = self.arity
        return argc == arity if arity > 0 else argc >= -arity

    def keys_of(self, argv: list[bytes]) -> list[bytes]:
        """The key arguments, by first/last/step (commands with numkeys override via extra)."""
        finder = self.extra.get("keys")
        if finder is not None:
            return finder(argv)
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return argv[self.first_key:last + 1:self.step or 1]


COMMANDS: dict[bytes, Command] = {}


def _flags(flags: str) -> frozenset[str]:
    return frozenset(flags.split())


def container(name: str, arity: int = -2, flags: str = "", group: str = "generic",
              since: str = "1.0.0", summary: str = "") -> Command:
    """Declare a command that only dispatches to subcommands (CLIENT, CONFIG, OBJECT...)."""
    cmd = Command(name, None, arity, _flags(flags), group=group, since=since, summary=summary,
                  subcommands={})
    COMMANDS[name.encode()] = cmd
    return cmd


def command(name: str, arity: int, flags: str = "", keys: tuple[int, int, int] = (0, 0, 0),
            group: str = "generic", since: str = "1.0.0", summary: str = "",
            key_finder: Callable[[list[bytes]], list[bytes]] | None = None) -> Callable[[Handler], Handler]:
    """Register `handler` under `name` ("get", or "client|setname" for a subcommand).

    flags: space-separated Redis command flags (write readonly denyoom admin pubsub noscript
    blocking fast loading stale no-auth no-multi...). keys: (first, last, step) key positions;
    last -1 means the final argument. key_finder overrides them for numkeys-style commands.
    """
    def register(handler: Handler) -> Handler:
        cmd = Command(name, handler, arity, _flags(flags), keys[0], keys[1], keys[2], group, since,
                      summary or (handler.__doc__ or "").strip().split("\n")[0])
        if key_finder is not None:
            cmd.extra["keys"] = key_finder
        if "|" in name:
            parent, sub = name.split("|", 1)
            table = COMMANDS[parent.encode()].subcommands
            assert table is not None, f"{parent} is not a container"
            table[sub.encode()] = cmd
        else:
            COMMANDS[name.encode()] = cmd
        return handler
    return register


_loaded = False


def load_all() -> dict[bytes, Command]:
    """Import every command group module once; returns the command table."""
    global _loaded
    if not _loaded:
        for module in GROUP_MODULES:
            importlib.import_module(f"cascade_cli.resp.commands.{module}")
        _loaded = True
    return COMMANDS


# --- argument parsing ----------------------------------------------------------------------------

def to_int(raw: bytes, error: str = NOT_INT) -> int:
    """A signed 64-bit integer argument, or Redis's 'not an integer' error."""
    value = parse_ll(raw)
    if value is None:
        raise ErrorReply(error)
    return value


def to_float(raw: bytes, error: str = NOT_FLOAT) -> float:
    """A double argument as Redis's string2d reads it (scores, increments, weights): strtod over
    the whole argument; inf allowed; no spaces, NaN, overflow or underflow to zero."""
    if raw.isdigit() and len(raw) < 300:
        return float(raw)
    if is_decimal(raw):
        value = float(raw)
        if value == inf or value == -inf or (value == 0.0 and raw != b"0" and nonzero_mantissa(raw)):
            raise ErrorReply(error)
        return value
    parsed = strtod(raw)
    if parsed is None or parsed[1]:
        raise ErrorReply(error)
    return parsed[0]


def to_timeout(raw: bytes, millis: bool = False) -> float:
    """A blocking timeout in seconds (0 = forever), as Redis 7.0's getTimeoutFromObjectOrReply
    reads it: seconds as a long double (BLPOP and friends), or whole milliseconds with `millis`
    (XREAD BLOCK).

    Seconds are multiplied by 1000 and rounded up (ceill) in long double arithmetic, then
    converted to a long long: tiny negatives round to 0 (block forever), and what is beyond the
    long long range, inf included, converts to LLONG_MIN ("timeout is negative").
    """
    if millis:
        ms = to_int(raw, "ERR timeout is not an integer or out of range")
    elif raw.isdigit() and len(raw) < 16:            # whole seconds: exact in any precision
        ms = int(raw) * 1000
    else:
        seconds = ld_parse(raw)
        if seconds is None:
            raise ErrorReply(TIMEOUT_NOT_FLOAT)
        product = None if type(seconds) is float else ld_round(seconds * 1000)
        ms = -1 if product is None else math.ceil(product)
        if ms > LLONG_MAX:
            ms = -1
    if ms < 0:
        raise ErrorReply("ERR timeout is negative")
    return ms / 1000


def c_bytes(raw: bytes) -> bytes:
    """An argument as C string functions see it: up to the first NUL byte."""
    cut = raw.find(b"\0")
    return raw if cut < 0 else raw[:cut]


def c_string(raw: bytes) -> str:
    """An argument as Redis's C formatting (%s) prints it: up to the first NUL byte (other
    bytes kept as they are, through surrogate escapes that the reply encoder undoes)."""
    return c_bytes(raw).decode("utf-8", "surrogateescape")


def arity_error(name: str) -> ErrorReply:
    return ErrorReply(f"ERR wrong number of arguments for '{name}' command")


def subcommand_syntax_error(argv: list[bytes]) -> ErrorReply:
    """Redis's reply to a known subcommand with a wrong number of arguments."""
    sub = c_string(argv[1])[:128]
    return ErrorReply(f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
                      f"Try {c_string(argv[0]).upper()} HELP.")


def help_reply(lines: list[str]) -> list[Simple]:
    """A HELP subcommand's answer: one status line each."""
    return [Simple(line) for line in lines]


def help_command(parent: str, lines: list[str], group: str, since: str,
                 summary: str = "Show helpful text about the different subcommands") -> None:
    """Register PARENT|HELP (a container's help text, as every container has one)."""
    def handler(client: Client, argv: list[bytes]) -> Any:
        return help_reply(lines)
    handler.__name__ = handler.__qualname__ = f"{parent}_help"
    command(f"{parent}|help", 2, "loading stale", group=group, since=since, summary=summary)(handler)


def numkeys_keys(index: int, first_key: bool = False) -> Callable[[list[bytes]], list[bytes]]:
    """A key finder for commands whose keys follow a numkeys argument at argv[index] (with
    first_key, argv[1] is a key too: the destination of ZUNIONSTORE and friends). As in Redis,
    a numkeys that is not a positive count of the arguments that follow gives no such keys."""
    def find(argv: list[bytes]) -> list[bytes]:
        count = parse_ll(argv[index]) if len(argv) > index else None
        keys = [argv[1]] if first_key else []
        if count is None or count < 1 or count > len(argv) - index - 1:
            return keys
        return keys + argv[index + 1:index + 1 + count]
    return find


def mpop_args(argv: list[bytes], index: int, sides: tuple[bytes, bytes]) -> tuple[list[bytes], bool, int]:
    """`numkeys key... SIDE [COUNT count]` of LMPOP, BLMPOP, ZMPOP and BZMPOP from argv[index]:
    (keys, whether SIDE is the second of `sides` (lower case), count)."""
    numkeys = parse_ll(argv[index])
    if numkeys is None or numkeys < 1:
        raise ErrorReply("ERR numkeys should be greater than 0")
    where = index + numkeys + 1
    argc = len(argv)
    if where >= argc:
        raise ErrorReply(SYNTAX)
    side = argv[where].lower()
    if side not in sides:
        raise ErrorReply(SYNTAX)
    count = -1
    i = where + 1
    while i < argc:
        if count == -1 and argv[i].lower() == b"count" and i + 1 < argc:
            number = parse_ll(argv[i + 1])
            if number is None or number < 1:
                raise ErrorReply("ERR count should be greater than 0")
            count = number
            i += 2
        else:
            raise ErrorReply(SYNTAX)
    return argv[index + 1:where], side == sides[1], 1 if count == -1 else count


def random_count_args(argv: list[bytes], option: bytes) -> tuple[int, bool]:
    """`key count [WITHVALUES|WITHSCORES]` of HRANDFIELD and ZRANDMEMBER (option in lower case):
    (count, whether the option was given)."""
    count = to_int(argv[2])
    if count < -LLONG_MAX:
        raise ErrorReply(f"ERR value is out of range, value must between {-LLONG_MAX} and {LLONG_MAX}")
    argc = len(argv)
    if argc > 4 or (argc == 4 and argv[3].lower() != option):
        raise ErrorReply(SYNTAX)
    with_option = argc == 4
    if with_option and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise ErrorReply("ERR value is out of range")
    return count, with_option


def typed(client: Client, key: bytes, kind: type, read: bool = True) -> Any:
    """The value at `key` when it has type `kind`, None when missing; WRONGTYPE otherwise."""
    db = client.db
    value = db.read(key) if read else db.lookup(key)
    if value is None or type(value) is kind:
        return value
    raise ErrorReply(WRONGTYPE)


def removed(client: Client, key: bytes, value: Any, count: int) -> None:
    """After `count` (> 0) elements were removed from the container `value` at `key`: one
    change signalled (the key deleted when the container became empty) and `count` changes for
    the dirty counter, as Redis counts them."""
    engine = client.engine
    dirty = engine.dirty
    if value:
        client.db.modified(key)
    else:
        client.db.drop_if_empty(key)
    engine.dirty = dirty + count


def upper(raw: bytes) -> bytes:
    return raw.upper()
