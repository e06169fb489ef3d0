"""Server parameters: the redis.conf / CONFIG GET|SET table of the in-memory server.

The table is Redis 7.0's (names, aliases, defaults of a redis-server started without a config
file, bounds, which are immutable or protected). Each parameter has a kind that parses and
prints its value the way Redis does. Values live as attributes of `Params` (dashes become
underscores: `params.maxmemory_policy`). `Param.parse` validates and raises ValueError with
Redis's reason; `Params.get` returns the text CONFIG GET shows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from cascade_cli.resp.protocol import repr_bytes

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
UINT64_MAX = 2**64 - 1
INT_MIN, INT_MAX = -2**31, 2**31 - 1
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_MEMORY = re.compile(r"([0-9]*)([a-zA-Z]*)")
_LL = re.compile(r"-?[1-9][0-9]*|0")
_STRTOLL = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]*)")

CONFIG_FILE = ""        # absolute path of the config file the server started with ("" = none)


def parse_memory(text: str) -> int:
    """Redis memory notation (memtoull): 100, 1k, 1kb, 5mb, 1gb (units case-insensitive).
    Saturates at 2**64-1 like strtoull; raises ValueError otherwise."""
    match = _MEMORY.fullmatch(text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError("argument must be a memory value")
    digits = match.group(1)
    number = min(int(digits), UINT64_MAX) if digits else 0
    return (number * _UNITS[match.group(2).lower()]) % 2**64


def parse_ll(text: str) -> int:
    """A strict signed 64-bit decimal (string2ll), or ValueError."""
    if not _LL.fullmatch(text) or not INT64_MIN <= int(text) <= INT64_MAX:
        raise ValueError("argument couldn't be parsed into an integer")
    return int(text)


def strtoll(text: str) -> int | None:
    """C strtoll over the whole string (leading blanks and a sign allowed, "" is 0); None when
    characters are left over. Saturates like strtoll."""
    match = _STRTOLL.fullmatch(text)
    if match is None:
        return None
    raw = match.group(1)
    if raw in ("", "+", "-"):
        return 0 if raw == "" else None
    return max(INT64_MIN, min(INT64_MAX, int(raw)))


# --- the special kinds: parse (text -> stored value) and show (stored value -> text) ------------

def _parse_save(text: str) -> str:
    if text == "":
        return ""
    parts = text.split(" ")
    if len(parts) % 2:
        raise ValueError("Invalid save parameters")
    out = []
    for seconds_text, changes_text in zip(parts[::2], parts[1::2]):
        seconds, changes = strtoll(seconds_text), strtoll(changes_text)
        if seconds is None or changes is None or seconds < 1 or changes < 0:
            raise ValueError("Invalid save parameters")
        out += [str(seconds), str(changes)]
    return " ".join(out)


_NOTIFY_TYPES = "g$lshzxetd"          # what 'A' stands for


def _parse_notify(text: str) -> str:
    flags = set()
    for ch in text:
        if ch == "A":
            flags.update(_NOTIFY_TYPES)
        elif ch in "g$lshzxetdnKEm":
            flags.add(ch)
        else:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    if flags.issuperset(_NOTIFY_TYPES):
        out = "A"
    else:
        out = "".join(ch for ch in _NOTIFY_TYPES + "n" if ch in flags)
    return out + "".join(ch for ch in "KEm" if ch in flags)


_OBUF_CLASSES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}
_OBUF_DEFAULT = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"


def _parse_obuf(text: str, current: str = _OBUF_DEFAULT) -> str:
    from cascade_cli.resp.protocol import split_args
    args = split_args(text.encode()) or []
    words = [a.decode("utf-8", "replace") for a in args]
    if len(words) % 4 or not words:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    table: dict[str, list[str]] = {}
    spec = current.split()
    for i in range(0, len(spec), 4):
        table[spec[i]] = spec[i + 1:i + 4]
    for i in range(0, len(words), 4):
        klass = _OBUF_CLASSES.get(words[i].lower())
        if klass is None:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        try:
            hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
        except ValueError:
            raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit "
                             "configuration.") from None
        seconds = strtoll(words[i + 3])
        if seconds is None or seconds < 0:
            raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        table[klass] = [str(hard), str(soft), str(seconds)]
    return " ".join(f"{klass} {' '.join(table[klass])}" for klass in ("normal", "slave", "pubsub"))


def _parse_oom_values(text: str) -> str:
    parts = text.split(" ")
    if len(parts) != 3:
        raise ValueError("wrong number of arguments")
    values = []
    for part in parts:
        value = strtoll(part)
        if value is None or not -2000 <= value <= 2000:
            raise ValueError("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
        values.append(str(value))
    return " ".join(values)


def _parse_percentiles(text: str) -> str:
    if text == "":
        return ""
    out = []
    for part in text.split(" "):
        try:
            value = float(part)
        except ValueError:
            raise ValueError("Invalid latency-tracking-info-percentiles parameters") from None
        if value != value or not 0.0 <= value <= 100.0:
            raise ValueError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        out.append(f"{value:f}".rstrip("0").rstrip("."))
    return " ".join(out)


def _parse_maxmemory_clients(text: str) -> str:
    if text.endswith("%"):
        number = text[:-1]
        if not number.isdigit():
            raise ValueError("argument must be a memory or percent value")
        if int(number) > 100:
            raise ValueError("percentage argument must be less or equal to 100")
        return f"{int(number)}%"
    try:
        return str(parse_memory(text))
    except ValueError:
        raise ValueError("argument must be a memory or percent value") from None


def _parse_bind(text: str) -> str:
    words = text.split()
    if not words or len(words) > 16:
        raise ValueError("Too many bind addresses specified.")
    return " ".join(words)


def _parse_dir(text: str) -> str:
    if not os.path.isdir(text):
        raise ValueError(os.strerror(2) if not os.path.exists(text) else os.strerror(20))
    return os.path.abspath(text)


def _show_dir(value: str) -> str:
    return value or os.getcwd()


SPECIAL: dict[str, tuple[Callable[[str], Any], Callable[[Any], str]]] = {
    "save": (_parse_save, str),
    "notify-keyspace-events": (_parse_notify, str),
    "client-output-buffer-limit": (_parse_obuf, str),
    "oom-score-adj-values": (_parse_oom_values, str),
    "latency-tracking-info-percentiles": (_parse_percentiles, str),
    "maxmemory-clients": (_parse_maxmemory_clients, str),
    "bind": (_parse_bind, str),
    "dir": (_parse_dir, _show_dir),
}


@dataclass(frozen=True)
class Param:
    """One parameter. kind: bool, int, memory (signed, bounded), umemory (unsigned 64-bit),
    enum, string or special (see SPECIAL). `alias` is set on the entries of alias names."""

    name: str
    kind: str
    default: Any
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    mutable: bool = True
    alias: str | None = None
    protected: bool = False
    hidden: bool = False           # CONFIG GET patterns skip it; an exact name still works
    aliases: tuple[str, ...] = ()
    clamp: bool = False            # out-of-range values are clamped (hz), not refused

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    def parse(self, text: str, current: Any = None) -> Any:
        """The value for `text`, or ValueError with Redis's reason."""
        kind = self.kind
        if kind == "bool":
            lowered = text.lower()
            if lowered not in ("yes", "no"):
                raise ValueError("argument must be 'yes' or 'no'")
            return lowered == "yes"
        if kind in ("int", "memory", "umemory"):
            value = parse_ll(text) if kind == "int" else parse_memory(text)
            if kind == "umemory":
                return value
            low = INT64_MIN if self.low is None else self.low
            high = INT64_MAX if self.high is None else self.high
            if not low <= value <= high:
                raise ValueError(f"argument must be between {low} and {high} inclusive")
            if self.clamp:
                value = max(1, min(value, 500))
            return value
        if kind == "enum":
            lowered = text.lower()
            if lowered not in self.choices:
                raise ValueError(f"argument(s) must be one of the following: {', '.join(self.choices)}")
            return lowered
        if kind == "special":
            parse = SPECIAL[self.name][0]
            if self.name == "client-output-buffer-limit" and current is not None:
                return _parse_obuf(text, current)
            return parse(text)
        return text

    def show(self, value: Any) -> str:
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "special":
            return SPECIAL[self.name][1](value)
        return str(value)


PARAMS: dict[str, Param] = {}


def _add(*params: Param) -> None:
    for param in params:
        PARAMS[param.name] = param
        for alias in param.aliases:
            PARAMS[alias] = Param(alias, param.kind, param.default, param.choices, param.low, param.high,
                                  param.mutable, param.name, param.protected, param.hidden)


_PROTECTED_ACTION = ("no", "yes", "local")

_add(
    Param("acl-pubsub-default", "enum", 'resetchannels', choices=('allchannels', 'resetchannels')),
    Param("aclfile", "string", '', mutable=False),
    Param("acllog-max-len", "int", 128, low=0),
    Param("active-defrag-cycle-max", "int", 25, low=1, high=99),
    Param("active-defrag-cycle-min", "int", 1, low=1, high=99),
    Param("active-defrag-ignore-bytes", "memory", 104857600, low=1),
    Param("active-defrag-max-scan-fields", "int", 1000, low=1),
    Param("active-defrag-threshold-lower", "int", 10, low=0, high=1000),
    Param("active-defrag-threshold-upper", "int", 100, low=0, high=1000),
    Param("active-expire-effort", "int", 1, low=1, high=10),
    Param("activedefrag", "bool", False),
    Param("activerehashing", "bool", True),
    Param("always-show-logo", "bool", False, mutable=False),
    Param("aof-disable-auto-gc", "bool", False),
    Param("aof-load-truncated", "bool", True),
    Param("aof-rewrite-incremental-fsync", "bool", True),
    Param("aof-timestamp-enabled", "bool", False),
    Param("aof-use-rdb-preamble", "bool", True),
    Param("aof_rewrite_cpulist", "string", '', mutable=False),
    Param("appenddirname", "string", 'appendonlydir', mutable=False),
    Param("appendfilename", "string", 'appendonly.aof', mutable=False),
    Param("appendfsync", "enum", 'everysec', choices=('everysec', 'always', 'no')),
    Param("appendonly", "bool", False),
    Param("auto-aof-rewrite-min-size", "memory", 67108864, low=0),
    Param("auto-aof-rewrite-percentage", "int", 100, low=0, high=2147483647),
    Param("bgsave_cpulist", "string", '', mutable=False),
    Param("bind", "special", '* -::*'),
    Param("bind-source-addr", "string", ''),
    Param("bio_cpulist", "string", '', mutable=False),
    Param("busy-reply-threshold", "int", 5000, low=0, aliases=('lua-time-limit',)),
    Param("client-output-buffer-limit", "special", 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60'),
    Param("client-query-buffer-limit", "memory", 1073741824, low=1048576),
    Param("cluster-allow-pubsubshard-when-down", "bool", True),
    Param("cluster-allow-reads-when-down", "bool", False),
    Param("cluster-allow-replica-migration", "bool", True),
    Param("cluster-announce-bus-port", "int", 0, low=0, high=65535),
    Param("cluster-announce-hostname", "string", ''),
    Param("cluster-announce-ip", "string", ''),
    Param("cluster-announce-port", "int", 0, low=0, high=65535),
    Param("cluster-announce-tls-port", "int", 0, low=0, high=65535),
    Param("cluster-config-file", "string", 'nodes.conf', mutable=False),
    Param("cluster-enabled", "bool", False, mutable=False),
    Param("cluster-link-sendbuf-limit", "umemory", 0),
    Param("cluster-migration-barrier", "int", 1, low=0, high=2147483647),
    Param("cluster-node-timeout", "int", 15000, low=0),
    Param("cluster-port", "int", 0, mutable=False),
    Param("cluster-preferred-endpoint-type", "enum", 'ip', choices=('ip', 'hostname', 'unknown-endpoint')),
    Param("cluster-replica-no-failover", "bool", False, aliases=('cluster-slave-no-failover',)),
    Param("cluster-replica-validity-factor", "int", 10, low=0, high=2147483647, aliases=('cluster-slave-validity-factor',)),
    Param("cluster-require-full-coverage", "bool", True),
    Param("crash-log-enabled", "bool", True),
    Param("crash-memcheck-enabled", "bool", True),
    Param("daemonize", "bool", False, mutable=False),
    Param("databases", "int", 16, low=1, high=2147483647, mutable=False),
    Param("dbfilename", "string", 'dump.rdb', protected=True),
    Param("dir", "special", "", protected=True),
    Param("disable-thp", "bool", True, mutable=False),
    Param("dynamic-hz", "bool", True),
    Param("enable-debug-command", "enum", "no", choices=_PROTECTED_ACTION, mutable=False),
    Param("enable-module-command", "enum", "no", choices=_PROTECTED_ACTION, mutable=False),
    Param("enable-protected-configs", "enum", "no", choices=_PROTECTED_ACTION, mutable=False),
    Param("hash-max-listpack-entries", "int", 512, low=0, aliases=('hash-max-ziplist-entries',)),
    Param("hash-max-listpack-value", "memory", 64, low=0, aliases=('hash-max-ziplist-value',)),
    Param("hll-sparse-max-bytes", "memory", 3000, low=0),
    Param("hz", "int", 10, low=0, high=2147483647, clamp=True),
    Param("ignore-warnings", "string", ''),
    Param("io-threads", "int", 1, mutable=False),
    Param("io-threads-do-reads", "bool", False, mutable=False),
    Param("jemalloc-bg-thread", "bool", True),
    Param("latency-monitor-threshold", "int", 0, low=0),
    Param("latency-tracking", "bool", True),
    Param("latency-tracking-info-percentiles", "special", '50 99 99.9'),
    Param("lazyfree-lazy-eviction", "bool", False),
    Param("lazyfree-lazy-expire", "bool", False),
    Param("lazyfree-lazy-server-del", "bool", False),
    Param("lazyfree-lazy-user-del", "bool", False),
    Param("lazyfree-lazy-user-flush", "bool", False),
    Param("lfu-decay-time", "int", 1, low=0, high=2147483647),
    Param("lfu-log-factor", "int", 10, low=0, high=2147483647),
    Param("list-compress-depth", "int", 0, low=0, high=2147483647),
    Param("list-max-listpack-size", "int", -2, low=INT_MIN, high=INT_MAX, aliases=('list-max-ziplist-size',)),
    Param("logfile", "string", '', mutable=False),
    Param("loglevel", "enum", 'notice', choices=('debug', 'verbose', 'notice', 'warning')),
    Param("masterauth", "string", ''),
    Param("masteruser", "string", ''),
    Param("maxclients", "int", 10000, low=1, high=4294967295),
    Param("maxmemory", "umemory", 0),
    Param("maxmemory-clients", "special", '0'),
    Param("maxmemory-eviction-tenacity", "int", 10, low=0, high=100),
    Param("maxmemory-policy", "enum", 'noeviction', choices=('volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'noeviction')),
    Param("maxmemory-samples", "int", 5, low=1, high=2147483647),
    Param("min-replicas-max-lag", "int", 10, low=0, high=2147483647, aliases=('min-slaves-max-lag',)),
    Param("min-replicas-to-write", "int", 0, low=0, high=2147483647, aliases=('min-slaves-to-write',)),
    Param("no-appendfsync-on-rewrite", "bool", False),
    Param("notify-keyspace-events", "special", ''),
    Param("oom-score-adj", "enum", 'no', choices=('no', 'yes', 'relative', 'absolute')),
    Param("oom-score-adj-values", "special", '0 200 800'),
    Param("pidfile", "string", '', mutable=False),
    Param("port", "int", 6379, low=0, high=65535),
    Param("proc-title-template", "string", '{title} {listen-addr} {server-mode}'),
    Param("propagation-error-behavior", "enum", 'ignore', choices=('ignore', 'panic', 'panic-on-replicas')),
    Param("protected-mode", "bool", True),
    Param("proto-max-bulk-len", "memory", 536870912, low=1048576),
    Param("rdb-del-sync-files", "bool", False),
    Param("rdb-save-incremental-fsync", "bool", True),
    Param("rdbchecksum", "bool", True, mutable=False),
    Param("rdbcompression", "bool", True),
    Param("repl-backlog-size", "memory", 1048576, low=1),
    Param("repl-backlog-ttl", "int", 3600, low=0),
    Param("repl-disable-tcp-nodelay", "bool", False),
    Param("repl-diskless-load", "enum", 'disabled', choices=('disabled', 'on-empty-db', 'swapdb')),
    Param("repl-diskless-sync", "bool", True),
    Param("repl-diskless-sync-delay", "int", 5, low=0, high=2147483647),
    Param("repl-diskless-sync-max-replicas", "int", 0, low=0, high=2147483647),
    Param("repl-ping-replica-period", "int", 10, low=1, high=2147483647, aliases=('repl-ping-slave-period',)),
    Param("repl-timeout", "int", 60, low=1, high=2147483647),
    Param("replica-announce-ip", "string", '', aliases=('slave-announce-ip',)),
    Param("replica-announce-port", "int", 0, low=0, high=65535, aliases=('slave-announce-port',)),
    Param("replica-announced", "bool", True),
    Param("replica-ignore-disk-write-errors", "bool", False),
    Param("replica-ignore-maxmemory", "bool", True, aliases=('slave-ignore-maxmemory',)),
    Param("replica-lazy-flush", "bool", False, aliases=('slave-lazy-flush',)),
    Param("replica-priority", "int", 100, low=0, high=2147483647, aliases=('slave-priority',)),
    Param("replica-read-only", "bool", True, aliases=('slave-read-only',)),
    Param("replica-serve-stale-data", "bool", True, aliases=('slave-serve-stale-data',)),
    Param("replicaof", "string", '', mutable=False, aliases=('slaveof',)),
    Param("requirepass", "string", ''),
    Param("sanitize-dump-payload", "enum", 'no', choices=('no', 'yes', 'clients')),
    Param("save", "special", '3600 1 300 100 60 10000'),
    Param("server_cpulist", "string", '', mutable=False),
    Param("set-max-intset-entries", "int", 512, low=0),
    Param("set-proc-title", "bool", True, mutable=False),
    Param("shutdown-on-sigint", "enum", 'default', choices=('default', 'save', 'nosave', 'now', 'force')),
    Param("shutdown-on-sigterm", "enum", 'default', choices=('default', 'save', 'nosave', 'now', 'force')),
    Param("shutdown-timeout", "int", 10, low=0, high=2147483647),
    Param("slowlog-log-slower-than", "int", 10000, low=-1),
    Param("slowlog-max-len", "int", 128, low=0),
    Param("socket-mark-id", "int", 0, mutable=False),
    Param("stop-writes-on-bgsave-error", "bool", True),
    Param("stream-node-max-bytes", "memory", 4096, low=0),
    Param("stream-node-max-entries", "int", 100, low=0),
    Param("supervised", "enum", "no", choices=("upstart", "systemd", "auto", "no"), mutable=False),
    Param("syslog-enabled", "bool", False, mutable=False),
    Param("syslog-facility", "string", 'local0', mutable=False),
    Param("syslog-ident", "string", 'redis', mutable=False),
    Param("tcp-backlog", "int", 511, mutable=False),
    Param("tcp-keepalive", "int", 300, low=0, high=2147483647),
    Param("timeout", "int", 0, low=0, high=2147483647),
    Param("tls-auth-clients", "enum", 'yes', choices=('no', 'yes', 'optional')),
    Param("tls-ca-cert-dir", "string", ''),
    Param("tls-ca-cert-file", "string", ''),
    Param("tls-cert-file", "string", ''),
    Param("tls-ciphers", "string", ''),
    Param("tls-ciphersuites", "string", ''),
    Param("tls-client-cert-file", "string", ''),
    Param("tls-client-key-file", "string", ''),
    Param("tls-client-key-file-pass", "string", ''),
    Param("tls-cluster", "bool", False),
    Param("tls-dh-params-file", "string", ''),
    Param("tls-key-file", "string", ''),
    Param("tls-key-file-pass", "string", ''),
    Param("tls-port", "int", 0, low=0, high=65535),
    Param("tls-prefer-server-ciphers", "bool", False),
    Param("tls-protocols", "string", ''),
    Param("tls-replication", "bool", False),
    Param("tls-session-cache-size", "int", 20480, low=0, high=2147483647),
    Param("tls-session-cache-timeout", "int", 300, low=0, high=2147483647),
    Param("tls-session-caching", "bool", True),
    Param("tracking-table-max-keys", "int", 1000000, low=0),
    Param("unixsocket", "string", '', mutable=False),
    Param("unixsocketperm", "int", 0, mutable=False),
    Param("zset-max-listpack-entries", "int", 128, low=0, aliases=('zset-max-ziplist-entries',)),
    Param("zset-max-listpack-value", "memory", 64, low=0, aliases=('zset-max-ziplist-value',)),
    # hidden (testing) parameters: only an exact name reaches them
    Param("key-load-delay", "int", 0, low=INT_MIN, high=INT_MAX, hidden=True),
    Param("rdb-key-save-delay", "int", 0, low=INT_MIN, high=INT_MAX, hidden=True),
    Param("loading-process-events-interval-bytes", "int", 2 * 1024 * 1024, low=1024, high=INT_MAX, hidden=True),
)


class Params:
    """Current parameter values, as attributes (`params.requirepass`)."""

    def __init__(self) -> None:
        for param in PARAMS.values():
            if param.alias is None:
                setattr(self, param.attr, param.default)

    @staticmethod
    def canonical(name: str) -> Param:
        """The parameter named `name` (an alias resolves to its parameter); KeyError if none."""
        param = PARAMS[name.lower()]
        return PARAMS[param.alias] if param.alias else param

    def set(self, name: str, text: str, startup: bool = False) -> None:
        """Set from text; ValueError on an unknown name, a bad value or an immutable parameter."""
        try:
            param = self.canonical(name)
        except KeyError:
            raise ValueError(f"Bad directive or wrong number of arguments: '{name}'") from None
        if not startup:
            if not param.mutable:
                raise ValueError("can't set immutable config")
            if param.protected and self.enable_protected_configs != "yes":
                raise ValueError("can't set protected config")
        setattr(self, param.attr, param.parse(text, getattr(self, param.attr)))

    def get(self, name: str) -> str:
        param = self.canonical(name)
        return param.show(getattr(self, param.attr))

    def is_default(self, param: Param) -> bool:
        return bool(getattr(self, param.attr) == param.default)

    def __getattr__(self, name: str) -> Any:     # only reached for attributes never set
        raise AttributeError(name)


def parse_command_line(argv: list[str]) -> list[tuple[str, list[str]]]:
    """redis-server style `[configfile] --name value ...` -> [(name, [values])] in order.

    A config file's lines come first, then the command-line options (which win). The config
    file's absolute path is remembered in CONFIG_FILE (INFO, CONFIG REWRITE).
    """
    global CONFIG_FILE
    entries: list[tuple[str, list[str]]] = []
    rest = list(argv)
    if rest and not rest[0].startswith("--"):
        path = rest.pop(0)
        with open(path, encoding="utf-8") as handle:
            entries += parse_config_text(handle.read())
        CONFIG_FILE = os.path.abspath(path)
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


# --- CONFIG REWRITE ------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """A value as a config file token: bare when safe, else double-quoted with escapes."""
    if text and all(33 <= ord(ch) < 127 and ch not in "\"'\\" for ch in text):
        return text
    return '"' + repr_bytes(text.encode("utf-8", "surrogateescape")) + '"'


def config_line(name: str, param: Param, params: Params) -> str:
    value = params.get(param.name)
    if param.kind in ("bool", "int", "memory", "umemory", "enum"):
        return f"{name} {value}"
    return f"{name} {_quote(value)}"


def rewrite_config(path: str, params: Params) -> None:
    """Rewrite the config file at `path` with the current values: lines of known parameters get
    the current value (repeated ones are dropped), other lines are kept, and non-default
    parameters missing from the file are appended. Raises OSError."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    from cascade_cli.resp.protocol import split_args
    written: set[str] = set()
    out: list[str] = []
    marker = "# Generated by CONFIG REWRITE"
    for line in lines:
        stripped = line.strip()
        if stripped == marker:
            continue
        args = split_args(stripped.encode()) if stripped and not stripped.startswith("#") else None
        if not args:
            out.append(line)
            continue
        name = args[0].decode("utf-8", "replace").lower()
        try:
            param = Params.canonical(name)
        except KeyError:
            out.append(line)
            continue
        if param.name in written:
            continue
        written.add(param.name)
        out.append(config_line(name, param, params))
    while out and not out[-1].strip():
        out.pop()
    extra = [config_line(param.name, param, params) for param in PARAMS.values()
             if param.alias is None and param.name not in written and not param.hidden
             and not params.is_default(param)]
    if extra:
        out += [marker, *extra]
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
