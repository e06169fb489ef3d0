"""Server parameters: the redis.conf / CONFIG GET|SET table of the in-memory server.

Each parameter has a kind that parses and prints its value the way Redis does. Values live as
attributes of `Params` (dashes become underscores: `params.maxmemory_policy`). `set` validates
and raises ValueError with Redis's reason; `get` returns the text CONFIG GET shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int:
    """Redis memory notation: 100, 1k, 1kb, 5mb, 1gb (case-insensitive)."""
    match = re.fullmatch(r"(-?\d+)([a-zA-Z]*)", text.strip())
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError("argument must be a memory value")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class Param:
    """One parameter: `kind` is bool, int, memory, enum, string or special."""

    name: str
    kind: str
    default: Any
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    mutable: bool = True
    alias: str | None = None

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    def parse(self, text: str) -> Any:
        if self.kind == "bool":
            lowered = text.lower()
            if lowered not in ("yes", "no"):
                raise ValueError("argument must be 'yes' or 'no'")
            return lowered == "yes"
        if self.kind in ("int", "memory"):
            if self.kind == "memory":
                value = parse_memory(text)
            else:
                try:
                    value = int(text)
                except ValueError:
                    raise ValueError("argument couldn't be parsed into an integer") from None
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ValueError(f"argument must be between {self.low} and {self.high} inclusive")
            return value
        if self.kind == "enum":
            lowered = text.lower()
            if lowered not in self.choices:
                raise ValueError(f"argument(s) must be one of the following: {', '.join(self.choices)}")
            return lowered
        return text

    def show(self, value: Any) -> str:
        if self.kind == "bool":
            return "yes" if value else "no"
        return str(value)


PARAMS: dict[str, Param] = {}


def _add(*params: Param) -> None:
    for param in params:
        PARAMS[param.name] = param


_add(
    Param("port", "int", 6379, low=0, high=65535, mutable=False),
    Param("bind", "string", "* -::*", mutable=False),
    Param("unixsocket", "string", "", mutable=False),
    Param("protected-mode", "bool", True),
    Param("requirepass", "string", ""),
    Param("databases", "int", 16, low=1, high=1 << 20, mutable=False),
    Param("daemonize", "bool", False, mutable=False),
    Param("pidfile", "string", "", mutable=False),
    Param("logfile", "string", "", mutable=False),
    Param("loglevel", "enum", "notice", choices=("debug", "verbose", "notice", "warning", "nothing")),
    Param("dir", "string", "", ),
    Param("dbfilename", "string", "dump.rdb"),
    Param("save", "string", "3600 1 300 100 60 10000"),
    Param("appendonly", "bool", False),
    Param("appendfilename", "string", "appendonly.aof", mutable=False),
    Param("appenddirname", "string", "appendonlydir", mutable=False),
    Param("appendfsync", "enum", "everysec", choices=("always", "everysec", "no")),
    Param("auto-aof-rewrite-percentage", "int", 100, low=0, high=2**31 - 1),
    Param("auto-aof-rewrite-min-size", "memory", 64 * 1024 * 1024, low=0),
    Param("aof-use-rdb-preamble", "bool", True),
    Param("maxclients", "int", 10000, low=1),
    Param("maxmemory", "memory", 0, low=0),
    Param("maxmemory-policy", "enum", "noeviction",
          choices=("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
                   "allkeys-lfu", "allkeys-random", "noeviction")),
    Param("maxmemory-samples", "int", 5, low=1, high=64),
    Param("timeout", "int", 0, low=0),
    Param("tcp-keepalive", "int", 300, low=0),
    Param("tcp-backlog", "int", 511, low=0, mutable=False),
    Param("hz", "int", 10, low=1, high=500),
    Param("proto-max-bulk-len", "memory", 512 * 1024 * 1024, low=1024 * 1024),
    Param("client-query-buffer-limit", "memory", 1024 * 1024 * 1024, low=1024 * 1024),
    Param("slowlog-log-slower-than", "int", 10000),
    Param("slowlog-max-len", "int", 128, low=0),
    Param("latency-monitor-threshold", "int", 0, low=0),
    Param("notify-keyspace-events", "string", ""),
    Param("hash-max-listpack-entries", "int", 128, low=0),
    Param("hash-max-listpack-value", "int", 64, low=0),
    Param("hash-max-ziplist-entries", "int", 128, low=0, alias="hash-max-listpack-entries"),
    Param("hash-max-ziplist-value", "int", 64, low=0, alias="hash-max-listpack-value"),
    Param("set-max-intset-entries", "int", 512, low=0),
    Param("zset-max-listpack-entries", "int", 128, low=0),
    Param("zset-max-listpack-value", "int", 64, low=0),
    Param("zset-max-ziplist-entries", "int", 128, low=0, alias="zset-max-listpack-entries"),
    Param("zset-max-ziplist-value", "int", 64, low=0, alias="zset-max-listpack-value"),
    Param("list-max-listpack-size", "int", -2),
    Param("list-max-ziplist-size", "int", -2, alias="list-max-listpack-size"),
    Param("list-compress-depth", "int", 0, low=0),
    Param("stream-node-max-bytes", "memory", 4096, low=0),
    Param("stream-node-max-entries", "int", 100, low=0),
    Param("lua-time-limit", "int", 5000),
    Param("busy-reply-threshold", "int", 5000, alias="lua-time-limit"),
    Param("activerehashing", "bool", True),
    Param("lazyfree-lazy-user-flush", "bool", False),
    Param("replica-read-only", "bool", True),
    Param("cluster-enabled", "bool", False, mutable=False),
    Param("io-threads", "int", 1, low=1, high=128, mutable=False),
    Param("enable-debug-command", "string", "no", mutable=False),
)


class Params:
    """Current parameter values, as attributes (`params.requirepass`)."""

    def __init__(self) -> None:
        for param in PARAMS.values():
            if param.alias is None:
                setattr(self, param.attr, param.default)

    def canonical(self, name: str) -> Param:
        param = PARAMS[name.lower()]
        return PARAMS[param.alias] if param.alias else param

    def set(self, name: str, text: str, startup: bool = False) -> None:
        """Set from text; ValueError on an unknown name, a bad value or an immutable parameter."""
        try:
            param = self.canonical(name)
        except KeyError:
            raise ValueError("Unknown option or number of arguments for CONFIG SET") from None
        if not param.mutable and not startup:
            raise ValueError("can't set immutable config")
        setattr(self, param.attr, param.parse(text))

    def get(self, name: str) -> str:
        param = self.canonical(name)
        return param.show(getattr(self, param.attr))

    def __getattr__(self, name: str) -> Any:     # only reached for attributes never set
        raise AttributeError(name)


def parse_command_line(argv: list[str]) -> list[tuple[str, list[str]]]:
    """redis-server style `[configfile] --name value ...` -> [(name, [values])] in order.

    A config file's lines come first, then the command-line options (which win).
    """
    entries: list[tuple[str, list[str]]] = []
    rest = list(argv)
    if rest and not rest[0].startswith("--"):
        path = rest.pop(0)
        with open(path, encoding="utf-8") as handle:
            entries += parse_config_text(handle.read())
    name: str | None = None
    values: list[str] = []
    for arg in rest:
        if arg.startswith("--") and len(arg) > 2:
            if name is not None:
                entries.append((name, values))
            name, values = arg[2:].lower(), []
        else:
            if name is None:
                raise ValueError(f"unexpected argument {arg!r}: options look like --port 6379")
            values.append(arg)
    if name is not None:
        entries.append((name, values))
    return entries


def parse_config_text(text: str) -> list[tuple[str, list[str]]]:
    """redis.conf lines `name value...` (comments and blank lines skipped; quotes honoured)."""
    from cascade_cli.resp.protocol import split_args
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        args = split_args(stripped.encode())
        if not args:
            raise ValueError(f"line {number}: unbalanced quotes")
        entries.append((args[0].decode().lower(), [a.decode() for a in args[1:]]))
    return entries
