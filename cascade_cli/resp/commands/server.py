"""Server commands (Redis 7.0 semantics): FLUSHALL FLUSHDB INFO DBSIZE TIME CONFIG COMMAND DEBUG
MONITOR SLOWLOG LATENCY MEMORY FUNCTION (FLUSH LIST STATS) LOLWUT ROLE.

SAVE/BGSAVE/BGREWRITEAOF/LASTSAVE/SHUTDOWN live in commands/persist.py; EVAL/SCRIPT and the
FUNCTION subcommands that need a script engine are not implemented (Redis's unknown-command or
unknown-subcommand error answers them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import re
import resource
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

from cascade_cli.resp import memory
from cascade_cli.resp import params as params_module
from cascade_cli.resp.commands import (
    COMMANDS,
    NO_SUCH_KEY,
    NOT_INT,
    SYNTAX,
    Command,
    command,
    container,
    help_command,
    help_reply,
    subcommand_syntax_error,
    to_int,
)
from cascade_cli.resp.commands.keys import encoding_of, refcount_of
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.params import PARAMS, Param, Params
from cascade_cli.resp.protocol import OK, ErrorReply, Push, Replies, SetReply, Simple, Verbatim, parse_ll
from cascade_cli.resp.store import RHash, RList, RSet, now_ms, type_name

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client, Engine


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise ErrorReply(SYNTAX)


def _acl(name: str, categories: str, tips: str = "") -> None:
    """Record a command's explicit ACL categories and command tips (COMMAND INFO)."""
    parent, _, sub = name.partition("|")
    cmd = COMMANDS[parent.encode()]
    if sub:
        assert cmd.subcommands is not None
        cmd = cmd.subcommands[sub.encode()]
    if categories:
        cmd.extra["acl"] = categories.split()
    if tips:
        cmd.extra["tips"] = tips.split()


@command("flushall", -1, "write", group="server", summary="Remove all keys from all databases")
def flushall(client: Client, argv: list[bytes]) -> object:
    """Remove all keys from all databases."""
    _flush_mode(argv)
    engine = client.engine
    for db in engine.dbs:
        db.flush()
    engine.dirty += 1
    if engine.tracking_clients:
        engine.invalidate_all()
    return OK


@command("flushdb", -1, "write", group="server", summary="Remove all keys from the current database")
def flushdb(client: Client, argv: list[bytes]) -> object:
    """Remove all keys from the current database."""
    _flush_mode(argv)
    client.db.flush()
    client.engine.dirty += 1
    if client.engine.tracking_clients:
        client.engine.invalidate_all()
    return OK


_acl("flushall", "@keyspace @dangerous", "request_policy:all_shards response_policy:all_succeeded")
_acl("flushdb", "@keyspace @dangerous", "request_policy:all_shards response_policy:all_succeeded")


# --- per-engine state ------------------------------------------------------------------------------

class _State:
    """What the server commands remember per engine (run id, replication id, DEBUG switches)."""

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(20)
        self.replid = secrets.token_hex(20)


def _state(engine: Engine) -> _State:
    state = engine.hooks.get("server_state")
    if state is None:
        state = engine.hooks["server_state"] = _State()  # type: ignore[assignment]
    return state  # type: ignore[return-value]


def _tracker(engine: Engine) -> memory.Tracker:
    tracker = memory.install(engine)
    tracker.start_timer()
    return tracker


def _is_local(client: Client) -> bool:
    host = client.addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "localhost", "") or host.startswith("/") \
        or host.startswith("::ffff:127.")


def _allowed(setting: str, client: Client) -> bool:
    """enable-debug-command / enable-protected-configs: yes, no, or local (loopback clients)."""
    return setting == "yes" or (setting == "local" and _is_local(client))


# --- INFO ------------------------------------------------------------------------------------------

SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
            "commandstats", "errorstats", "latencystats", "cluster", "keyspace")
DEFAULT_SECTIONS = frozenset(SECTIONS) - {"commandstats", "latencystats"}


def _lines(title: str, fields: dict[str, Any] | list[tuple[str, Any]]) -> str:
    items = fields.items() if isinstance(fields, dict) else fields
    return f"# {title}\r\n" + "".join(f"{key}:{value}\r\n" for key, value in items)


def _fmt_float(value: float) -> str:
    return f"{value:.2f}"


def _info_server(engine: Engine) -> dict[str, Any]:
    uname = platform.uname()
    uptime = engine.uptime()
    port = engine.hooks.get("tcp_port")
    return {
        "redis_version": engine.version,
        "redis_git_sha1": "00000000",
        "redis_git_dirty": 0,
        "redis_build_id": "0" * 16,
        "redis_mode": "standalone",
        "os": f"{uname.system} {uname.release} {uname.machine}",
        "arch_bits": 64 if sys.maxsize > 2**32 else 32,
        "monotonic_clock": "POSIX clock_gettime",
        "multiplexing_api": "epoll" if sys.platform.startswith("linux") else "kqueue",
        "atomicvar_api": "c11-builtin",
        "gcc_version": "0.0.0",
        "process_id": engine.pid,
        "process_supervised": "no",
        "run_id": _state(engine).run_id,
        "tcp_port": port() if port is not None else engine.params.port,
        "server_time_usec": int(time.time() * 1_000_000),
        "uptime_in_seconds": uptime,
        "uptime_in_days": uptime // 86400,
        "hz": engine.params.hz,
        "configured_hz": engine.params.hz,
        "lru_clock": int(time.time()) & ((1 << 24) - 1),
        "executable": sys.executable,
        "config_file": params_module.CONFIG_FILE,
        "io_threads_active": 0,
        "cascade_version": engine.cascade_version,
    }


def _info_clients(engine: Engine) -> dict[str, Any]:
    clients = list(engine.clients.values())
    pending = [getattr(getattr(c, "parser", None), "pending", 0) for c in clients]
    return {
        "connected_clients": len(clients),
        "cluster_connections": 0,
        "maxclients": engine.params.maxclients,
        "client_recent_max_input_buffer": max(pending, default=0),
        "client_recent_max_output_buffer": 0,
        "blocked_clients": len(engine.blocked_clients),
        "tracking_clients": sum(1 for c in clients if c.tracking),
        "clients_in_timeout_table": sum(1 for c in engine.blocked_clients
                                        if c.blocked is not None and c.blocked.timeout > 0),
    }


def _rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


def _info_memory(engine: Engine) -> dict[str, Any]:
    tracker = _tracker(engine)
    data, tables = tracker.dataset()
    overhead = tracker.overhead() + tables
    used = overhead + data
    tracker.peak = max(tracker.peak, used)
    peak = tracker.peak
    rss = _rss()
    startup = memory.STARTUP
    dataset = max(used - overhead, 0)
    params = engine.params
    return {
        "used_memory": used,
        "used_memory_human": memory.human(used),
        "used_memory_rss": rss,
        "used_memory_rss_human": memory.human(rss),
        "used_memory_peak": peak,
        "used_memory_peak_human": memory.human(peak),
        "used_memory_peak_perc": f"{used * 100 / peak:.2f}%" if peak else "0.00%",
        "used_memory_overhead": overhead,
        "used_memory_startup": startup,
        "used_memory_dataset": dataset,
        "used_memory_dataset_perc": f"{dataset * 100 / max(used - startup, 1):.2f}%",
        "allocator_allocated": used,
        "allocator_active": used,
        "allocator_resident": rss,
        "total_system_memory": _system_memory(),
        "total_system_memory_human": memory.human(_system_memory()),
        "used_memory_lua": 32768,
        "used_memory_vm_eval": 32768,
        "used_memory_lua_human": "32.00K",
        "used_memory_scripts_eval": 0,
        "number_of_cached_scripts": 0,
        "number_of_functions": 0,
        "number_of_libraries": 0,
        "used_memory_vm_functions": 32768,
        "used_memory_vm_total": 65536,
        "used_memory_vm_total_human": "64.00K",
        "used_memory_functions": 0,
        "used_memory_scripts": 0,
        "used_memory_scripts_human": "0B",
        "maxmemory": params.maxmemory,
        "maxmemory_human": memory.human(params.maxmemory),
        "maxmemory_policy": params.maxmemory_policy,
        "allocator_frag_ratio": "1.00",
        "allocator_frag_bytes": 0,
        "allocator_rss_ratio": _fmt_float(rss / used) if used else "0.00",
        "allocator_rss_bytes": rss - used,
        "rss_overhead_ratio": "1.00",
        "rss_overhead_bytes": 0,
        "mem_fragmentation_ratio": _fmt_float(rss / used) if used else "0.00",
        "mem_fragmentation_bytes": rss - used,
        "mem_not_counted_for_evict": 0,
        "mem_replication_backlog": 0,
        "mem_total_replication_buffers": 0,
        "mem_clients_slaves": 0,
        "mem_clients_normal": memory.CLIENT * len(engine.clients),
        "mem_cluster_links": 0,
        "mem_aof_buffer": 0,
        "mem_allocator": "libc",
        "active_defrag_running": 0,
        "lazyfree_pending_objects": 0,
        "lazyfreed_objects": 0,
    }


def _info_persistence(engine: Engine) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "loading": int(engine.loading), "async_loading": 0, "current_cow_peak": 0,
        "current_cow_size": 0, "current_cow_size_age": 0, "current_fork_perc": "0.00",
        "current_save_keys_processed": 0, "current_save_keys_total": 0,
        "rdb_changes_since_last_save": engine.dirty, "rdb_bgsave_in_progress": 0,
        "rdb_last_save_time": engine.lastsave, "rdb_last_bgsave_status": "ok",
        "rdb_last_bgsave_time_sec": -1, "rdb_current_bgsave_time_sec": -1, "rdb_saves": 0,
        "rdb_last_cow_size": 0, "rdb_last_load_keys_expired": 0, "rdb_last_load_keys_loaded": 0,
        "aof_enabled": int(bool(engine.params.appendonly)), "aof_rewrite_in_progress": 0,
        "aof_rewrite_scheduled": 0, "aof_last_rewrite_time_sec": -1, "aof_current_rewrite_time_sec": -1,
        "aof_last_bgrewrite_status": "ok", "aof_rewrites": 0, "aof_rewrites_consecutive_failures": 0,
        "aof_last_write_status": "ok", "aof_last_cow_size": 0, "module_fork_in_progress": 0,
        "module_fork_last_cow_size": 0,
    }
    state = engine.hooks.get("persistence")
    info = getattr(state, "info", None)
    if info is not None:
        fields.update(info())
    if not fields.get("aof_enabled"):
        fields.pop("aof_current_size", None)
        fields.pop("aof_base_size", None)
    return fields


def _info_stats(engine: Engine) -> dict[str, Any]:
    stats = engine.stats
    tracker = _tracker(engine)
    return {
        "total_connections_received": stats.total_connections_received,
        "total_commands_processed": stats.total_commands_processed,
        "instantaneous_ops_per_sec": int(tracker.instantaneous("ops")),
        "total_net_input_bytes": stats.total_net_input_bytes,
        "total_net_output_bytes": stats.total_net_output_bytes,
        "total_net_repl_input_bytes": 0,
        "total_net_repl_output_bytes": 0,
        "instantaneous_input_kbps": _fmt_float(tracker.instantaneous("net_in") / 1024),
        "instantaneous_output_kbps": _fmt_float(tracker.instantaneous("net_out") / 1024),
        "instantaneous_input_repl_kbps": "0.00",
        "instantaneous_output_repl_kbps": "0.00",
        "rejected_connections": stats.rejected_connections,
        "sync_full": 0, "sync_partial_ok": 0, "sync_partial_err": 0,
        "expired_keys": stats.expired_keys,
        "expired_stale_perc": "0.00",
        "expired_time_cap_reached_count": 0,
        "expire_cycle_cpu_milliseconds": 0,
        "evicted_keys": stats.evicted_keys,
        "evicted_clients": 0,
        "total_eviction_exceeded_time": 0,
        "current_eviction_exceeded_time": 0,
        "keyspace_hits": stats.keyspace_hits,
        "keyspace_misses": stats.keyspace_misses,
        "pubsub_channels": len(engine.channels),
        "pubsub_patterns": len(engine.patterns),
        "pubsubshard_channels": len(engine.shard_channels),
        "latest_fork_usec": 0, "total_forks": 0, "migrate_cached_sockets": 0,
        "slave_expires_tracked_keys": 0, "active_defrag_hits": 0, "active_defrag_misses": 0,
        "active_defrag_key_hits": 0, "active_defrag_key_misses": 0, "total_active_defrag_time": 0,
        "current_active_defrag_time": 0, "tracking_total_keys": 0, "tracking_total_items": 0,
        "tracking_total_prefixes": 0, "unexpected_error_replies": 0,
        "total_error_replies": stats.total_error_replies,
        "dump_payload_sanitizations": 0,
        "total_reads_processed": stats.total_commands_processed,
        "total_writes_processed": stats.total_commands_processed,
        "io_threaded_reads_processed": 0, "io_threaded_writes_processed": 0,
        "reply_buffer_shrinks": 0, "reply_buffer_expands": 0,
    }


def _info_replication(engine: Engine) -> dict[str, Any]:
    return {"role": "master", "connected_slaves": 0, "master_failover_state": "no-failover",
            "master_replid": _state(engine).replid, "master_replid2": "0" * 40,
            "master_repl_offset": 0, "second_repl_offset": -1, "repl_backlog_active": 0,
            "repl_backlog_size": 1048576, "repl_backlog_first_byte_offset": 0, "repl_backlog_histlen": 0}


def _info_cpu(engine: Engine) -> dict[str, Any]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"used_cpu_sys": f"{own.ru_stime:.6f}", "used_cpu_user": f"{own.ru_utime:.6f}",
            "used_cpu_sys_children": f"{children.ru_stime:.6f}",
            "used_cpu_user_children": f"{children.ru_utime:.6f}",
            "used_cpu_sys_main_thread": f"{own.ru_stime:.6f}",
            "used_cpu_user_main_thread": f"{own.ru_utime:.6f}"}


def _all_commands() -> list[Command]:
    out = []
    for cmd in COMMANDS.values():
        out.append(cmd)
        if cmd.subcommands:
            out.extend(cmd.subcommands.values())
    return out


def _info_commandstats(engine: Engine) -> list[tuple[str, Any]]:
    out = []
    for cmd in _all_commands():
        if cmd.calls or cmd.failed_calls or cmd.rejected_calls:
            per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
            out.append((f"cmdstat_{cmd.name}", f"calls={cmd.calls},usec={cmd.usec},"
                        f"usec_per_call={per_call:.2f},rejected_calls={cmd.rejected_calls},"
                        f"failed_calls={cmd.failed_calls}"))
    return out


def _info_errorstats(engine: Engine) -> list[tuple[str, Any]]:
    counts = engine.stats.error_counts
    return [(f"errorstat_{code}", f"count={counts[code]}") for code in sorted(counts)]


def _info_latencystats(engine: Engine) -> list[tuple[str, Any]]:
    """Per-command latency percentiles. Only the mean is known, so every percentile shows it."""
    params = engine.params
    if not params.latency_tracking:
        return []
    percentiles = params.latency_tracking_info_percentiles.split()
    out = []
    for cmd in _all_commands():
        if cmd.calls:
            mean = cmd.usec / cmd.calls
            out.append((f"latency_percentiles_usec_{cmd.name}",
                        ",".join(f"p{p}={mean:.3f}" for p in percentiles)))
    return out


def _avg_ttl(db: Any) -> int:
    expires = db.expires
    if not expires:
        return 0
    now = now_ms()
    sample = list(expires.values())[:64] if len(expires) <= 64 else \
        [expires[key] for key in memory._KeySampler().sample(expires, 64)]
    live = [when - now for when in sample if when > now]
    return int(sum(live) / len(live)) if live else 0


def _info_keyspace(engine: Engine) -> list[tuple[str, Any]]:
    return [(f"db{db.index}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={_avg_ttl(db)}")
            for db in engine.dbs if db.data]


_SECTION_BUILDERS = {
    "server": ("Server", _info_server), "clients": ("Clients", _info_clients),
    "memory": ("Memory", _info_memory), "persistence": ("Persistence", _info_persistence),
    "stats": ("Stats", _info_stats), "replication": ("Replication", _info_replication),
    "cpu": ("CPU", _info_cpu), "modules": ("Modules", lambda engine: []),
    "commandstats": ("Commandstats", _info_commandstats), "errorstats": ("Errorstats", _info_errorstats),
    "latencystats": ("Latencystats", _info_latencystats),
    "cluster": ("Cluster", lambda engine: {"cluster_enabled": 0}), "keyspace": ("Keyspace", _info_keyspace),
}


def info_text(engine: Engine, names: list[str] | None = None) -> str:
    """INFO's text for the given section names (None: the default sections)."""
    wanted: set[str] = set()
    for name in (names or ["default"]):
        name = name.lower()
        if name in ("all", "everything"):
            wanted.update(SECTIONS)
        elif name == "default":
            wanted.update(DEFAULT_SECTIONS)
        else:
            wanted.add(name)
    parts = []
    for section in SECTIONS:
        if section in wanted:
            title, build = _SECTION_BUILDERS[section]
            parts.append(_lines(title, build(engine)))
    return "\r\n".join(parts)


@command("info", -1, "loading stale", group="server", summary="Get information and statistics about the server")
def info(client: Client, argv: list[bytes]) -> object:
    names = [raw.decode("utf-8", "replace") for raw in argv[1:]] or None
    return Verbatim(info_text(client.engine, names))


@command("dbsize", 1, "readonly fast", group="server", summary="Return the number of keys in the selected database")
def dbsize(client: Client, argv: list[bytes]) -> object:
    return len(client.db.data)


@command("time", 1, "loading stale fast", group="server", since="2.6.0", summary="Return the current server time")
def time_(client: Client, argv: list[bytes]) -> object:
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("role", 1, "noscript loading stale fast", group="server", since="2.8.12",
         summary="Return the role of the instance in the context of replication")
def role(client: Client, argv: list[bytes]) -> object:
    return [b"master", 0, []]


@command("lolwut", -1, "readonly fast", group="server", since="5.0.0",
         summary="Display some computer art and the Redis version")
def lolwut(client: Client, argv: list[bytes]) -> object:
    if len(argv) >= 3 and argv[1].lower() == b"version":
        to_int(argv[2])
    return f"Redis ver. {client.engine.version}\n".encode()


_acl("info", "@dangerous", "nondeterministic_output request_policy:all_shards response_policy:special")
_acl("dbsize", "@keyspace", "request_policy:all_shards response_policy:agg_sum")
_acl("time", "", "nondeterministic_output")
_acl("role", "@admin @dangerous")


# --- CONFIG ----------------------------------------------------------------------------------------

container("config", -2, group="server", since="2.0.0", summary="A container for server configuration commands")

CONFIG_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]


help_command("config", CONFIG_HELP, "server", "5.0.0")


@command("config|get", -3, "admin noscript loading stale", group="server", since="2.0.0",
         summary="Get the values of configuration parameters")
def config_get(client: Client, argv: list[bytes]) -> object:
    params = client.engine.params
    matches: dict[str, tuple[str, Param]] = {}
    for raw in argv[2:]:
        pattern = raw.decode("utf-8", "surrogateescape")
        if not any(ch in pattern for ch in "[*?"):
            lowered = pattern.lower()
            if lowered not in matches and lowered in PARAMS:
                matches[lowered] = (pattern, PARAMS[lowered])
            continue
        matcher = compile_glob(raw, nocase=True)
        for name, param in PARAMS.items():
            if not param.hidden and name not in matches and matcher(name.encode()):
                matches[name] = (name, param)
    return {shown.encode("utf-8", "surrogateescape"): params.get(param.name).encode("utf-8", "surrogateescape")
            for shown, param in matches.values()}


def _config_error(name: str, reason: str) -> ErrorReply:
    return ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


@command("config|set", -4, "admin noscript loading stale", group="server", since="2.0.0",
         summary="Set configuration parameters to the given values")
def config_set(client: Client, argv: list[bytes]) -> object:
    if len(argv) % 2:
        raise ErrorReply(SYNTAX)
    engine = client.engine
    params = engine.params
    chosen: list[tuple[str, Param, str]] = []
    seen: set[str] = set()
    for raw_name, raw_value in zip(argv[2::2], argv[3::2]):
        name = raw_name.decode("utf-8", "surrogateescape")
        entry = PARAMS.get(name.lower())
        if entry is None:
            raise ErrorReply(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
        param = Params.canonical(name)
        if not param.mutable:
            raise _config_error(name, "can't set immutable config")
        if param.protected and not _allowed(params.enable_protected_configs, client):
            raise _config_error(name, "can't set protected config")
        if name.lower() in seen:
            raise _config_error(name, "duplicate parameter")
        seen.add(name.lower())
        chosen.append((name, param, raw_value.decode("utf-8", "surrogateescape")))
    values = []
    for name, param, text in chosen:
        try:
            values.append(param.parse(text, getattr(params, param.attr)))
        except ValueError as error:
            raise _config_error(name.lower(), str(error)) from None
    old = {param.attr: getattr(params, param.attr) for _, param, _ in chosen}
    for (_, param, _), value in zip(chosen, values):
        setattr(params, param.attr, value)
    try:
        for (name, param, _), value in zip(chosen, values):
            _apply(client, name, param, old[param.attr], value)
        hook = engine.hooks.get("config_set")
        if hook is not None:
            hook([param.name for _, param, _ in chosen])
    except ErrorReply:
        for attr, value in old.items():
            setattr(params, attr, value)
        raise
    except ValueError as error:
        for attr, value in old.items():
            setattr(params, attr, value)
        raise _config_error(chosen[0][0].lower(), str(error)) from None
    if "maxmemory" in seen or "maxmemory-policy" in seen:
        if params.maxmemory:
            tracker = _tracker(engine)
            if tracker.used_memory() > params.maxmemory:
                engine.hooks.get("log", lambda *a: None)(
                    "WARNING: the new maxmemory value set via CONFIG SET is smaller than the current "
                    "memory usage. This will result in key eviction and/or the inability to accept "
                    "new write commands depending on the maxmemory-policy.", "#")
                tracker.evict()
    return OK


def _apply(client: Client, name: str, param: Param, old: Any, new: Any) -> None:
    """Side effects of a new value; raises ErrorReply to refuse it (everything is rolled back)."""
    engine = client.engine
    if param.name in ("port", "bind") and old != new:
        rebind = engine.hooks.get("rebind")
        if rebind is None:
            reason = "Unable to listen on this port" if param.name == "port" else \
                "Failed to bind to specified addresses."
            raise _config_error(name.lower(), reason)
        try:
            rebind()
        except (OSError, ValueError) as error:
            raise _config_error(name.lower(), str(error)) from None
    elif param.name == "proto-max-bulk-len":
        for other in engine.clients.values():
            parser = getattr(other, "parser", None)
            if parser is not None:
                parser.max_bulk = new
    elif param.name in ("maxmemory", "maxmemory-policy"):
        memory.install(engine)


@command("config|resetstat", 2, "admin noscript loading stale", group="server", since="2.0.0",
         summary="Reset the stats returned by INFO")
def config_resetstat(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    stats = engine.stats
    for item in dataclasses.fields(stats):
        if item.default is not dataclasses.MISSING:
            setattr(stats, item.name, item.default)
        elif item.default_factory is not dataclasses.MISSING:
            setattr(stats, item.name, item.default_factory())
    for cmd in _all_commands():
        cmd.calls = cmd.usec = cmd.failed_calls = cmd.rejected_calls = 0
    tracker = _tracker(engine)
    tracker.peak = tracker.used_memory()
    for samples in tracker.metrics.values():
        samples.clear()
    tracker.last_sample = None
    return OK


@command("config|rewrite", 2, "admin noscript loading stale", group="server", since="2.8.0",
         summary="Rewrite the configuration file with the in memory configuration")
def config_rewrite(client: Client, argv: list[bytes]) -> object:
    path = params_module.CONFIG_FILE
    if not path:
        raise ErrorReply("ERR The server is running without a config file")
    try:
        params_module.rewrite_config(path, client.engine.params)
    except OSError as error:
        raise ErrorReply(f"ERR Rewriting config file: {error.strerror or error}") from None
    return OK


_acl("config|set", "", "request_policy:all_nodes response_policy:all_succeeded")


# --- COMMAND ---------------------------------------------------------------------------------------

_cmd_container = container("command", -1, "loading stale", group="server", since="2.8.13",
                           summary="Get array of Redis command details")

COMMAND_HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]

FLAG_ORDER = ("write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
              "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
              "may_replicate", "sentinel", "only_sentinel", "no_mandatory_keys", "protected",
              "module_getkeys_api", "module_no_cluster", "no_async_loading", "no_multi", "movablekeys",
              "allow_busy")
ACL_ORDER = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
             "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
             "connection", "transaction", "scripting")
GROUP_NAMES = {"zset": "sorted-set", "sorted_set": "sorted-set", "sortedset": "sorted-set", "keys": "generic",
               "keyspace": "generic", "transaction": "transactions", "strings": "string", "lists": "list",
               "sets": "set", "hashes": "hash", "streams": "stream"}
GROUP_ACL = {"generic": "keyspace", "string": "string", "list": "list", "set": "set",
             "sorted-set": "sortedset", "hash": "hash", "transactions": "transaction",
             "connection": "connection", "scripting": "scripting", "hyperloglog": "hyperloglog",
             "geo": "geo", "stream": "stream", "bitmap": "bitmap"}



# Redis 7.0's ACL categories and command tips of every command ("name categories ; tips"), as
# COMMAND INFO reports them; a command missing here gets categories derived from its flags.
_REDIS_METADATA = """
acl slow
acl|cat slow
acl|deluser admin slow dangerous
acl|dryrun admin slow dangerous
acl|genpass slow
acl|getuser admin slow dangerous
acl|help slow
acl|list admin slow dangerous
acl|load admin slow dangerous
acl|log admin slow dangerous
acl|save admin slow dangerous
acl|setuser admin slow dangerous
acl|users admin slow dangerous
acl|whoami slow
append write string fast
asking fast connection
auth fast connection
bgrewriteaof admin slow dangerous
bgsave admin slow dangerous
bitcount read bitmap slow
bitfield write bitmap slow
bitfield_ro read bitmap fast
bitop write bitmap slow
bitpos read bitmap slow
blmove write list slow blocking
blmpop write list slow blocking
blpop write list slow blocking
brpop write list slow blocking
brpoplpush write list slow blocking
bzmpop write sortedset slow blocking
bzpopmax write sortedset fast blocking
bzpopmin write sortedset fast blocking
client slow
client|caching slow connection
client|getname slow connection
client|getredir slow connection
client|help slow connection
client|id slow connection
client|info slow connection ; nondeterministic_output
client|kill admin slow dangerous connection
client|list admin slow dangerous connection ; nondeterministic_output
client|no-evict admin slow dangerous connection
client|pause admin slow dangerous connection
client|reply slow connection
client|setname slow connection
client|tracking slow connection
client|trackinginfo slow connection
client|unblock admin slow dangerous connection
client|unpause admin slow dangerous connection
cluster slow
cluster|addslots admin slow dangerous
cluster|addslotsrange admin slow dangerous
cluster|bumpepoch admin slow dangerous ; nondeterministic_output
cluster|count-failure-reports admin slow dangerous ; nondeterministic_output
cluster|countkeysinslot slow
cluster|delslots admin slow dangerous
cluster|delslotsrange admin slow dangerous
cluster|failover admin slow dangerous
cluster|flushslots admin slow dangerous
cluster|forget admin slow dangerous
cluster|getkeysinslot slow ; nondeterministic_output
cluster|help slow
cluster|info slow ; nondeterministic_output
cluster|keyslot slow
cluster|links slow ; nondeterministic_output
cluster|meet admin slow dangerous
cluster|myid slow
cluster|nodes slow ; nondeterministic_output
cluster|replicas admin slow dangerous ; nondeterministic_output
cluster|replicate admin slow dangerous
cluster|reset admin slow dangerous
cluster|saveconfig admin slow dangerous
cluster|set-config-epoch admin slow dangerous
cluster|setslot admin slow dangerous
cluster|shards slow ; nondeterministic_output
cluster|slaves admin slow dangerous ; nondeterministic_output
cluster|slots slow ; nondeterministic_output
command slow connection ; nondeterministic_output_order
command|count slow connection
command|docs slow connection ; nondeterministic_output_order
command|getkeys slow connection
command|getkeysandflags slow connection
command|help slow connection
command|info slow connection ; nondeterministic_output_order
command|list slow connection ; nondeterministic_output_order
config slow
config|get admin slow dangerous
config|help slow
config|resetstat admin slow dangerous
config|rewrite admin slow dangerous
config|set admin slow dangerous ; request_policy:all_nodes response_policy:all_succeeded
copy keyspace write slow
dbsize keyspace read fast ; request_policy:all_shards response_policy:agg_sum
debug admin slow dangerous
decr write string fast
decrby write string fast
del keyspace write slow ; request_policy:multi_shard response_policy:agg_sum
discard fast transaction
dump keyspace read slow ; nondeterministic_output
echo fast connection
eval slow scripting
eval_ro slow scripting
evalsha slow scripting
evalsha_ro slow scripting
exec slow transaction
exists keyspace read fast ; request_policy:multi_shard response_policy:agg_sum
expire keyspace write fast
expireat keyspace write fast
expiretime keyspace read fast
failover admin slow dangerous
fcall slow scripting
fcall_ro slow scripting
flushall keyspace write slow dangerous ; request_policy:all_shards response_policy:all_succeeded
flushdb keyspace write slow dangerous ; request_policy:all_shards response_policy:all_succeeded
function slow
function|delete write slow scripting ; request_policy:all_shards response_policy:all_succeeded
function|dump slow scripting
function|flush write slow scripting ; request_policy:all_shards response_policy:all_succeeded
function|help slow scripting
function|kill slow scripting ; request_policy:all_shards response_policy:one_succeeded
function|list slow scripting ; nondeterministic_output_order
function|load write slow scripting ; request_policy:all_shards response_policy:all_succeeded
function|restore write slow scripting ; request_policy:all_shards response_policy:all_succeeded
function|stats slow scripting ; nondeterministic_output request_policy:all_shards response_policy:special
geoadd write geo slow
geodist read geo slow
geohash read geo slow
geopos read geo slow
georadius write geo slow
georadius_ro read geo slow
georadiusbymember write geo slow
georadiusbymember_ro read geo slow
geosearch read geo slow
geosearchstore write geo slow
get read string fast
getbit read bitmap fast
getdel write string fast
getex write string fast
getrange read string slow
getset write string fast
hdel write hash fast
hello fast connection
hexists read hash fast
hget read hash fast
hgetall read hash slow ; nondeterministic_output_order
hincrby write hash fast
hincrbyfloat write hash fast
hkeys read hash slow ; nondeterministic_output_order
hlen read hash fast
hmget read hash fast
hmset write hash fast
hrandfield read hash slow ; nondeterministic_output
hscan read hash slow ; nondeterministic_output
hset write hash fast
hsetnx write hash fast
hstrlen read hash fast
hvals read hash slow ; nondeterministic_output_order
incr write string fast
incrby write string fast
incrbyfloat write string fast
info slow dangerous ; nondeterministic_output request_policy:all_shards response_policy:special
keys keyspace read slow dangerous ; request_policy:all_shards nondeterministic_output_order
lastsave admin fast dangerous ; nondeterministic_output
latency slow
latency|doctor admin slow dangerous ; nondeterministic_output request_policy:all_nodes response_policy:special
latency|graph admin slow dangerous ; nondeterministic_output request_policy:all_nodes response_policy:special
latency|help slow
latency|histogram admin slow dangerous ; nondeterministic_output request_policy:all_nodes response_policy:special
latency|history admin slow dangerous ; nondeterministic_output request_policy:all_nodes response_policy:special
latency|latest admin slow dangerous ; nondeterministic_output request_policy:all_nodes response_policy:special
latency|reset admin slow dangerous ; request_policy:all_nodes response_policy:all_succeeded
lcs read string slow
lindex read list slow
linsert write list slow
llen read list fast
lmove write list slow
lmpop write list slow
lolwut read fast
lpop write list fast
lpos read list slow
lpush write list fast
lpushx write list fast
lrange read list slow
lrem write list slow
lset write list slow
ltrim write list slow
memory slow
memory|doctor slow ; nondeterministic_output request_policy:all_shards response_policy:special
memory|help slow
memory|malloc-stats slow ; nondeterministic_output request_policy:all_shards response_policy:special
memory|purge slow ; request_policy:all_shards response_policy:all_succeeded
memory|stats slow ; nondeterministic_output request_policy:all_shards response_policy:special
memory|usage read slow
mget read string fast ; request_policy:multi_shard
migrate keyspace write slow dangerous ; nondeterministic_output
module slow
module|help slow
module|list admin slow dangerous ; nondeterministic_output_order
module|load admin slow dangerous
module|loadex admin slow dangerous
module|unload admin slow dangerous
monitor admin slow dangerous
move keyspace write fast
mset write string slow ; request_policy:multi_shard response_policy:all_succeeded
msetnx write string slow ; request_policy:multi_shard response_policy:agg_min
multi fast transaction
object slow
object|encoding keyspace read slow ; nondeterministic_output
object|freq keyspace read slow ; nondeterministic_output
object|help keyspace slow
object|idletime keyspace read slow ; nondeterministic_output
object|refcount keyspace read slow ; nondeterministic_output
persist keyspace write fast
pexpire keyspace write fast
pexpireat keyspace write fast
pexpiretime keyspace read fast
pfadd write hyperloglog fast
pfcount read hyperloglog slow
pfdebug write hyperloglog admin slow dangerous
pfmerge write hyperloglog slow
pfselftest hyperloglog admin slow dangerous
ping fast connection ; request_policy:all_shards response_policy:all_succeeded
psetex write string slow
psubscribe pubsub slow
psync admin slow dangerous
pttl keyspace read fast ; nondeterministic_output
publish pubsub fast
pubsub slow
pubsub|channels pubsub slow
pubsub|help slow
pubsub|numpat pubsub slow
pubsub|numsub pubsub slow
pubsub|shardchannels pubsub slow
pubsub|shardnumsub pubsub slow
punsubscribe pubsub slow
quit fast connection
randomkey keyspace read slow ; request_policy:all_shards nondeterministic_output
readonly fast connection
readwrite fast connection
rename keyspace write slow
renamenx keyspace write fast
replconf admin slow dangerous
replicaof admin slow dangerous
reset fast connection
restore keyspace write slow dangerous
restore-asking keyspace write slow dangerous
role admin fast dangerous
rpop write list fast
rpoplpush write list slow
rpush write list fast
rpushx write list fast
sadd write set fast
save admin slow dangerous
scan keyspace read slow ; nondeterministic_output request_policy:special
scard read set fast
script slow
script|debug slow scripting
script|exists slow scripting ; request_policy:all_shards response_policy:agg_logical_and
script|flush slow scripting ; request_policy:all_nodes response_policy:all_succeeded
script|help slow scripting
script|kill slow scripting ; request_policy:all_shards response_policy:one_succeeded
script|load slow scripting ; request_policy:all_nodes response_policy:all_succeeded
sdiff read set slow ; nondeterministic_output_order
sdiffstore write set slow
select fast connection
set write string slow
setbit write bitmap slow
setex write string slow
setnx write string fast
setrange write string slow
shutdown admin slow dangerous
sinter read set slow ; nondeterministic_output_order
sintercard read set slow
sinterstore write set slow
sismember read set fast
slaveof admin slow dangerous
slowlog slow
slowlog|get admin slow dangerous ; request_policy:all_nodes nondeterministic_output
slowlog|help slow
slowlog|len admin slow dangerous ; request_policy:all_nodes response_policy:agg_sum nondeterministic_output
slowlog|reset admin slow dangerous ; request_policy:all_nodes response_policy:all_succeeded
smembers read set slow ; nondeterministic_output_order
smismember read set fast
smove write set fast
sort write set sortedset list slow dangerous
sort_ro read set sortedset list slow dangerous
spop write set fast ; nondeterministic_output
spublish pubsub fast
srandmember read set slow ; nondeterministic_output
srem write set fast
sscan read set slow ; nondeterministic_output
ssubscribe pubsub slow
strlen read string fast
subscribe pubsub slow
substr read string slow
sunion read set slow ; nondeterministic_output_order
sunionstore write set slow
sunsubscribe pubsub slow
swapdb keyspace write fast dangerous
sync admin slow dangerous
time fast ; nondeterministic_output
touch keyspace read fast ; request_policy:multi_shard response_policy:agg_sum
ttl keyspace read fast ; nondeterministic_output
type keyspace read fast
unlink keyspace write fast ; request_policy:multi_shard response_policy:agg_sum
unsubscribe pubsub slow
unwatch fast transaction
wait slow connection ; request_policy:all_shards response_policy:agg_min
watch fast transaction
xack write stream fast
xadd write stream fast ; nondeterministic_output
xautoclaim write stream fast ; nondeterministic_output
xclaim write stream fast ; nondeterministic_output
xdel write stream fast
xgroup slow
xgroup|create write stream slow
xgroup|createconsumer write stream slow
xgroup|delconsumer write stream slow
xgroup|destroy write stream slow
xgroup|help stream slow
xgroup|setid write stream slow
xinfo slow
xinfo|consumers read stream slow ; nondeterministic_output
xinfo|groups read stream slow
xinfo|help stream slow
xinfo|stream read stream slow
xlen read stream fast
xpending read stream slow ; nondeterministic_output
xrange read stream slow
xread read stream slow blocking
xreadgroup write stream slow blocking
xrevrange read stream slow
xsetid write stream fast
xtrim write stream slow ; nondeterministic_output
zadd write sortedset fast
zcard read sortedset fast
zcount read sortedset fast
zdiff read sortedset slow
zdiffstore write sortedset slow
zincrby write sortedset fast
zinter read sortedset slow
zintercard read sortedset slow
zinterstore write sortedset slow
zlexcount read sortedset fast
zmpop write sortedset slow
zmscore read sortedset fast
zpopmax write sortedset fast
zpopmin write sortedset fast
zrandmember read sortedset slow ; nondeterministic_output
zrange read sortedset slow
zrangebylex read sortedset slow
zrangebyscore read sortedset slow
zrangestore write sortedset slow
zrank read sortedset fast
zrem write sortedset fast
zremrangebylex write sortedset slow
zremrangebyrank write sortedset slow
zremrangebyscore write sortedset slow
zrevrange read sortedset slow
zrevrangebylex read sortedset slow
zrevrangebyscore read sortedset slow
zrevrank read sortedset fast
zscan read sortedset slow ; nondeterministic_output
zscore read sortedset fast
zunion read sortedset slow
zunionstore write sortedset slow
"""


def _parse_metadata(text: str) -> dict[str, tuple[list[str], list[str]]]:
    table = {}
    for line in text.strip().splitlines():
        head, _, tips = line.partition(" ; ")
        name, *categories = head.split()
        table[name] = (categories, tips.split())
    return table


REDIS_METADATA = _parse_metadata(_REDIS_METADATA)


def _group(cmd: Command) -> str:
    return GROUP_NAMES.get(cmd.group, cmd.group)


def _flags(cmd: Command) -> list[str]:
    flags = {flag.replace("-", "_") for flag in cmd.flags}
    if "keys" in cmd.extra:
        flags.add("movablekeys")
    return [flag for flag in FLAG_ORDER if flag in flags]


def acl_categories(cmd: Command) -> list[str]:
    """The command's ACL categories (without '@'), in Redis's order."""
    known = REDIS_METADATA.get(cmd.name)
    if known is not None:
        return known[0]
    if cmd.subcommands is not None and cmd.handler is None:
        return ["slow"]
    cats = set(cat.lstrip("@") for cat in cmd.extra.get("acl", ()))
    flags = cmd.flags
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags and _group(cmd) != "scripting":
        cats.add("read")
    if "admin" in flags:
        cats.update(("admin", "dangerous"))
    if "pubsub" in flags:
        cats.add("pubsub")
    if "fast" in flags:
        cats.add("fast")
    if "blocking" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    group_cat = GROUP_ACL.get(_group(cmd))
    if group_cat is not None:
        cats.add(group_cat)
    return sorted(cats, key=lambda c: ACL_ORDER.index(c) if c in ACL_ORDER else len(ACL_ORDER))


def _has_keys(cmd: Command) -> bool:
    return bool(cmd.first_key) or "keys" in cmd.extra


def _key_flags(cmd: Command) -> list[str]:
    explicit = cmd.extra.get("key_flags")
    if explicit is not None:
        return list(explicit)
    flags = cmd.flags
    if "write" in flags:
        return ["RW", "update"] if "readonly" not in flags else ["RW", "access"]
    return ["RO", "access"]


def _key_specs(cmd: Command) -> SetReply:
    if not _has_keys(cmd):
        return SetReply()
    if cmd.first_key:
        last = cmd.last_key
        lastkey = last - cmd.first_key if last >= 0 else last
        find: dict[bytes, Any] = {b"type": b"range", b"spec": {b"lastkey": lastkey,
                                                               b"keystep": cmd.step or 1, b"limit": 0}}
        begin: dict[bytes, Any] = {b"type": b"index", b"spec": {b"index": cmd.first_key}}
    else:
        find = {b"type": b"unknown", b"spec": {}}
        begin = {b"type": b"unknown", b"spec": {}}
    return SetReply([{b"flags": SetReply(Simple(f) for f in _key_flags(cmd)), b"begin_search": begin,
                      b"find_keys": find}])


def command_info(cmd: Command) -> list[Any]:
    subs = [command_info(sub) for sub in (cmd.subcommands or {}).values()]
    return [cmd.name.encode(), cmd.arity, SetReply(Simple(f) for f in _flags(cmd)),
            cmd.first_key, cmd.last_key, cmd.step,
            SetReply(Simple("@" + c) for c in acl_categories(cmd)),
            SetReply(t.encode() for t in _tips(cmd)), _key_specs(cmd), SetReply(subs)]


def _tips(cmd: Command) -> list[str]:
    known = REDIS_METADATA.get(cmd.name)
    return known[1] if known is not None else list(cmd.extra.get("tips", ()))


def command_docs(cmd: Command) -> dict[bytes, Any]:
    doc: dict[bytes, Any] = {b"summary": (cmd.summary or "").encode(), b"since": cmd.since.encode(),
                             b"group": _group(cmd).encode()}
    if cmd.subcommands:
        doc[b"subcommands"] = {sub.name.encode(): command_docs(sub) for sub in cmd.subcommands.values()}
    return doc


def find_command(name: bytes) -> Command | None:
    """A command by name, "parent|sub" for a subcommand (case-insensitive)."""
    parent, _, sub = name.lower().partition(b"|")
    cmd = COMMANDS.get(parent)
    if cmd is None or not sub:
        return cmd
    return (cmd.subcommands or {}).get(sub)


def _all_command_info(client: Client, argv: list[bytes]) -> object:
    return [command_info(cmd) for cmd in COMMANDS.values()]


_cmd_container.handler = _all_command_info


help_command("command", COMMAND_HELP, "server", "5.0.0")


@command("command|count", 2, "loading stale", group="server", since="2.8.13",
         summary="Get total number of Redis commands")
def command_count(client: Client, argv: list[bytes]) -> object:
    return len(COMMANDS)


@command("command|info", -2, "loading stale", group="server", since="2.8.13",
         summary="Get array of specific Redis command details, or all when no argument is given.")
def command_info_cmd(client: Client, argv: list[bytes]) -> object:
    if len(argv) == 2:
        return [command_info(cmd) for cmd in COMMANDS.values()]
    out: list[Any] = []
    for name in argv[2:]:
        cmd = find_command(name)
        out.append(command_info(cmd) if cmd is not None else None)
    return out


@command("command|docs", -2, "loading stale", group="server", since="7.0.0",
         summary="Get array of specific Redis command documentation")
def command_docs_cmd(client: Client, argv: list[bytes]) -> object:
    if len(argv) == 2:
        return {cmd.name.encode(): command_docs(cmd) for cmd in COMMANDS.values()}
    out: dict[bytes, Any] = {}
    for name in argv[2:]:
        cmd = find_command(name)
        if cmd is not None:
            out[cmd.name.encode()] = command_docs(cmd)
    return out


@command("command|list", -2, "loading stale", group="server", since="7.0.0",
         summary="Get an array of Redis command names")
def command_list(client: Client, argv: list[bytes]) -> object:
    commands = _all_commands()
    if len(argv) == 2:
        return [cmd.name.encode() for cmd in commands]
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise ErrorReply(SYNTAX)
    kind, value = argv[3].lower(), argv[4]
    if kind == b"module":
        return []
    if kind == b"aclcat":
        category = value.decode("utf-8", "replace").lower().lstrip("@")
        return [cmd.name.encode() for cmd in commands if category in acl_categories(cmd)]
    if kind == b"pattern":
        matcher = compile_glob(value, nocase=True)
        return [cmd.name.encode() for cmd in commands if matcher(cmd.name.encode())]
    raise ErrorReply(SYNTAX)


def _getkeys(argv: list[bytes]) -> tuple[Command, list[bytes]]:
    target = argv[2:]
    cmd = COMMANDS.get(target[0].lower())
    if cmd is not None and cmd.subcommands is not None and len(target) >= 2:
        cmd = cmd.subcommands.get(target[1].lower())
    if cmd is None:
        raise ErrorReply("ERR Invalid command specified")
    if not _has_keys(cmd):
        raise ErrorReply("ERR The command has no key arguments")
    if not cmd.arity_ok(len(target)):
        raise ErrorReply("ERR Invalid number of arguments specified for command")
    try:
        keys = cmd.keys_of(target)
    except (ErrorReply, ValueError, IndexError, TypeError):
        keys = []
    if not keys and "no-mandatory-keys" not in cmd.flags:
        raise ErrorReply("ERR Invalid arguments specified for command")
    return cmd, keys


@command("command|getkeys", -4, "loading stale", group="server", since="2.8.13",
         summary="Extract keys given a full Redis command")
def command_getkeys(client: Client, argv: list[bytes]) -> object:
    return _getkeys(argv)[1]


@command("command|getkeysandflags", -4, "loading stale", group="server", since="7.0.0",
         summary="Extract keys and access flags given a full Redis command")
def command_getkeysandflags(client: Client, argv: list[bytes]) -> object:
    cmd, keys = _getkeys(argv)
    flags = _key_flags(cmd)
    return [[key, SetReply(Simple(f) for f in flags)] for key in keys]


for _name in ("command", "command|help", "command|count", "command|info", "command|docs", "command|list",
              "command|getkeys", "command|getkeysandflags"):
    _acl(_name, "@connection")
for _name in ("command", "command|info", "command|docs", "command|list"):
    _acl(_name, "", "nondeterministic_output_order")


# --- DEBUG -----------------------------------------------------------------------------------------

DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "HELP",
    "    Prints this help.",
]

DEBUG_DENIED = ("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", "
                "you can run it from a local connection, otherwise you need to set this option in the "
                "configuration file, and then restart the server.")

PROTOCOL_TYPES = "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"

_ATOF = re.compile(rb"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf(inity)?|nan)", re.I)


def _atof(raw: bytes) -> float:
    """C atof: the longest numeric prefix, 0 when there is none."""
    match = _ATOF.match(raw)
    if not match:
        return 0.0
    try:
        return float(match.group(0))
    except ValueError:
        return 0.0


def _serialized_length(value: Any) -> int:
    kind = type(value)
    if kind is bytes or kind is bytearray:
        if kind is bytes and len(value) <= 11 and parse_ll(value) is not None:
            number = int(value)
            return 2 if -128 <= number < 128 else 3 if -32768 <= number < 32768 else 5
        return len(value) + (1 if len(value) < 64 else 2 if len(value) < 16384 else 5)
    return memory.value_usage(value, 0) // 2 + 1


def _digest_value(value: Any) -> bytes:
    """A stable 20-byte digest of a value (element order matters only where Redis's does)."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return hashlib.sha1(b"s" + bytes(value)).digest()
    name = type_name(value)
    if kind is RList:
        digest = hashlib.sha1(b"l")
        for item in value:
            digest.update(b"%d:" % len(item) + bytes(item))
        return digest.digest()
    acc = bytearray(20)

    def mix(data: bytes) -> None:
        for i, byte in enumerate(hashlib.sha1(data).digest()):
            acc[i] ^= byte

    if kind is RHash:
        for field, item in value.items():
            mix(b"%d:" % len(field) + field + bytes(item))
    elif kind is RSet:
        for member in value:
            mix(bytes(member))
    elif name == b"zset":
        scores = getattr(value, "scores", {})
        for member, score in scores.items():
            mix(member + b"\0" + (b"%.17g" % score))
    else:
        mix(repr(value).encode())
    return hashlib.sha1(name + bytes(acc)).digest()


def _digest_key(key: bytes, value: Any, expire: int | None) -> bytes:
    digest = hashlib.sha1(key + b"\0" + _digest_value(value))
    if expire is not None:
        digest.update(b"!expire!%d" % expire)
    return digest.digest()


def _live(db: Any, key: bytes) -> Any:
    """A key's value without touching its access time (None when missing or expired)."""
    value = db.data.get(key)
    if value is not None:
        when = db.expires.get(key)
        if when is not None and when <= now_ms():
            return None
    return value


@command("debug", -2, "admin noscript loading stale", group="server",
         summary="A container for debugging commands")
def debug(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    if not _allowed(engine.params.enable_debug_command, client):
        raise ErrorReply(DEBUG_DENIED)
    sub = argv[1].lower()
    argc = len(argv)
    db = client.db
    if sub == b"help" and argc == 2:
        return help_reply(DEBUG_HELP)
    if sub == b"sleep" and argc == 3:
        seconds = _atof(argv[2])
        if seconds > 0:
            time.sleep(seconds)
        return OK
    if sub == b"object" and argc == 3:
        value = _live(db, argv[2])
        if value is None:
            raise ErrorReply(NO_SUCH_KEY)
        encoding = encoding_of(value, engine.params).decode()
        idle = int(time.monotonic() - db.access.get(argv[2], time.monotonic()))
        text = (f"Value at:0x{id(value):x} refcount:{refcount_of(value, engine.params)} encoding:{encoding} "
                f"serializedlength:{_serialized_length(value)} lru:{(int(time.time()) - idle) & 0xFFFFFF} "
                f"lru_seconds_idle:{idle}")
        if encoding == "quicklist":
            size = sum(len(item) + 2 for item in value)
            nodes = max(1, -(-size // 8192))
            text += (f" ql_nodes:{nodes} ql_avg_node:{len(value) / nodes:.2f} "
                     f"ql_listpack_max:{engine.params.list_max_listpack_size} ql_compressed:0 "
                     f"ql_uncompressed_size:{size}")
        return Simple(text)
    if sub == b"set-active-expire" and argc == 3:
        engine.active_expire_enabled = argv[2] != b"0"  # type: ignore[attr-defined]
        return OK
    if sub == b"digest" and argc == 2:
        acc = bytearray(20)
        for database in engine.dbs:
            for key in list(database.data):
                value = _live(database, key)
                if value is None:
                    continue
                for i, byte in enumerate(_digest_key(key + b"@%d" % database.index, value,
                                                     database.expires.get(key))):
                    acc[i] ^= byte
        return Simple(acc.hex())
    if sub == b"digest-value" and argc >= 2:
        out = []
        for key in argv[2:]:
            value = _live(db, key)
            out.append(Simple(_digest_value(value).hex() if value is not None else "0" * 40))
        return out
    if sub == b"protocol" and argc == 3:
        return _debug_protocol(client, argv[2].lower())
    if sub == b"error" and argc == 3:
        return ErrorReply(argv[2].decode("utf-8", "replace"))
    if sub == b"log" and argc == 3:
        log = engine.hooks.get("log")
        if log is not None:
            log("DEBUG LOG: " + argv[2].decode("utf-8", "replace"))
        return OK
    if sub == b"populate" and 3 <= argc <= 5:
        return _debug_populate(client, argv)
    if sub == b"change-repl-id" and argc == 2:
        _state(engine).replid = secrets.token_hex(20)
        return OK
    if (sub in (b"reload", b"loadaof") and argc >= 2) \
            or (sub in (b"quicklist-packed-threshold", b"set-skip-checksum-validation", b"pause-cron",
                        b"set-disable-deny-scripts", b"aof-flush-sleep") and argc == 3) \
            or (sub == b"replybuffer" and argc == 4):
        return OK
    raise subcommand_syntax_error(argv)


def _debug_populate(client: Client, argv: list[bytes]) -> object:
    def positive(raw: bytes) -> int:
        number = parse_ll(raw)
        if number is None or number < 0:
            raise ErrorReply("ERR value is out of range, must be positive")
        return number

    count = positive(argv[2])
    prefix = argv[3] if len(argv) >= 4 else b"key"
    size = positive(argv[4]) if len(argv) == 5 else 0
    db = client.db
    rewrites = []
    for index in range(count):
        key = b"%s:%d" % (prefix, index)
        if key in db.data:
            continue
        value = b"value:%d" % index
        if size:
            value = value[:size].ljust(size, b"\0")
        db.set(key, value)
        rewrites.append([b"SET", key, value])
    client.rewrite(*rewrites)
    return OK


def _debug_protocol(client: Client, kind: bytes) -> object:
    resp3 = client.resp == 3
    if kind == b"string":
        return b"Hello World"
    if kind == b"integer":
        return 12345
    if kind == b"double":
        return 3.141
    if kind == b"bignum":
        return b"1234567999999999999999999999999999999"
    if kind == b"null":
        return None
    if kind == b"array":
        return [0, 1, 2]
    if kind == b"set":
        return SetReply([0, 1, 2])
    if kind == b"map":
        return {0: False, 1: True, 2: False}
    if kind == b"attrib":
        return b"Some real reply following the attribute"
    if kind == b"push":
        if not resp3:
            raise ErrorReply("ERR RESP2 is not supported by this command")
        return Replies([Push([b"server-cpu-usage", 42]), b"Some real reply following the push reply"])
    if kind == b"verbatim":
        return Verbatim("This is a verbatim\nstring")
    if kind == b"true":
        return True
    if kind == b"false":
        return False
    raise ErrorReply(f"ERR Wrong protocol type name. Please use one of the following: {PROTOCOL_TYPES}")


# --- MONITOR ---------------------------------------------------------------------------------------

@command("monitor", 1, "admin noscript loading stale", group="server",
         summary="Listen for all requests received by the server in real time")
def monitor(client: Client, argv: list[bytes]) -> object:
    from cascade_cli.resp.core import NO_REPLY
    if not client.may_block:
        raise ErrorReply("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if client.monitor:
        return NO_REPLY
    client.monitor = True
    client.engine.monitors[client] = None
    return OK


# --- SLOWLOG ---------------------------------------------------------------------------------------

container("slowlog", -2, group="server", since="2.2.12", summary="A container for slow log commands")

SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


help_command("slowlog", SLOWLOG_HELP, "server", "6.2.0")


@command("slowlog|get", -2, "admin loading stale", group="server", since="2.2.12",
         summary="Get the slow log's entries")
def slowlog_get(client: Client, argv: list[bytes]) -> object:
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    count = 10
    if len(argv) == 3:
        number = parse_ll(argv[2])
        if number is None or number < -1:
            raise ErrorReply("ERR count should be greater than or equal to -1")
        count = number
    entries = list(client.engine.slowlog)
    if count != -1:
        entries = entries[:count]
    return [[entry[0], entry[1], entry[2], list(entry[3]), entry[4], entry[5]] for entry in entries]


@command("slowlog|len", 2, "admin loading stale", group="server", since="2.2.12",
         summary="Get the slow log's length")
def slowlog_len(client: Client, argv: list[bytes]) -> object:
    return len(client.engine.slowlog)


@command("slowlog|reset", 2, "admin loading stale", group="server", since="2.2.12",
         summary="Clear all entries from the slow log")
def slowlog_reset(client: Client, argv: list[bytes]) -> object:
    client.engine.slowlog.clear()
    return OK


_acl("slowlog|get", "", "request_policy:all_nodes nondeterministic_output")
_acl("slowlog|len", "", "request_policy:all_nodes response_policy:agg_sum nondeterministic_output")
_acl("slowlog|reset", "", "request_policy:all_nodes response_policy:all_succeeded")


# --- LATENCY (the latency monitor is never armed: no events are recorded) ----------------------------

container("latency", -2, group="server", since="2.8.13", summary="A container for latency diagnostics commands")

LATENCY_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified "
    "command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
]

LATENCY_DISABLED = ("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. "
                    "You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. "
                    "If we weren't in a deep space mission I'd suggest to take a look at "
                    "https://redis.io/topics/latency-monitor.\n")


help_command("latency", LATENCY_HELP, "server", "2.8.13",
             summary="Show helpful text about the different subcommands.")


@command("latency|latest", 2, "admin noscript loading stale", group="server", since="2.8.13",
         summary="Return the latest latency samples for all events.")
def latency_latest(client: Client, argv: list[bytes]) -> object:
    return []


@command("latency|history", 3, "admin noscript loading stale", group="server", since="2.8.13",
         summary="Return timestamp-latency samples for the event.")
def latency_history(client: Client, argv: list[bytes]) -> object:
    return []


@command("latency|reset", -2, "admin noscript loading stale", group="server", since="2.8.13",
         summary="Reset latency data for one or more events.")
def latency_reset(client: Client, argv: list[bytes]) -> object:
    return 0


@command("latency|graph", 3, "admin noscript loading stale", group="server", since="2.8.13",
         summary="Return a latency graph for the event.")
def latency_graph(client: Client, argv: list[bytes]) -> object:
    raise ErrorReply(f"ERR No samples available for event '{argv[2].decode('utf-8', 'replace')}'")


@command("latency|doctor", 2, "admin noscript loading stale", group="server", since="2.8.13",
         summary="Return a human readable latency analysis report.")
def latency_doctor(client: Client, argv: list[bytes]) -> object:
    if not client.engine.params.latency_monitor_threshold:
        return Verbatim(LATENCY_DISABLED)
    return Verbatim("Dave, no latency spike was observed during the lifetime of this Redis instance, "
                    "not in the slightest bit. I honestly think you ought to sleep tonight.\n")


@command("latency|histogram", -2, "admin noscript loading stale", group="server", since="7.0.0",
         summary="Return the cumulative distribution of latencies of a subset of commands or all.")
def latency_histogram(client: Client, argv: list[bytes]) -> object:
    """Per command: calls and a one-bucket histogram at the mean latency (only the mean is kept)."""
    if len(argv) == 2:
        chosen = [cmd for cmd in _all_commands() if cmd.calls]
    else:
        chosen = []
        for name in argv[2:]:
            cmd = find_command(name)
            if cmd is not None and cmd.calls and cmd not in chosen:
                chosen.append(cmd)
    out: dict[bytes, Any] = {}
    for cmd in chosen:
        mean = max(1, cmd.usec // max(cmd.calls, 1))
        bucket = 1 << (mean - 1).bit_length()
        out[cmd.name.encode()] = {b"calls": cmd.calls, b"histogram_usec": {bucket: cmd.calls}}
    return out


for _name in ("latency|latest", "latency|history", "latency|graph", "latency|doctor", "latency|histogram"):
    _acl(_name, "", "nondeterministic_output request_policy:all_nodes response_policy:special")
_acl("latency|reset", "", "request_policy:all_nodes response_policy:all_succeeded")


# --- MEMORY ----------------------------------------------------------------------------------------

container("memory", -2, group="server", since="4.0.0", summary="A container for memory diagnostics commands")

MEMORY_HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


help_command("memory", MEMORY_HELP, "server", "4.0.0")


@command("memory|usage", -3, "readonly", keys=(2, 2, 1), group="server", since="4.0.0",
         summary="Estimate the memory usage of a key")
def memory_usage(client: Client, argv: list[bytes]) -> object:
    samples = 5
    index = 3
    while index < len(argv):
        if argv[index].lower() == b"samples" and index + 1 < len(argv):
            samples = to_int(argv[index + 1], NOT_INT)
            if samples < 0:
                raise ErrorReply(SYNTAX)
            index += 2
        else:
            raise ErrorReply(SYNTAX)
    value = client.db.data.get(argv[2])
    if value is None:
        return None
    return memory.key_usage(argv[2], value, samples)


@command("memory|stats", 2, "", group="server", since="4.0.0", summary="Show memory usage details")
def memory_stats(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    tracker = _tracker(engine)
    data, tables = tracker.dataset()
    overhead = tracker.overhead() + tables
    used = overhead + data
    tracker.peak = max(tracker.peak, used)
    keys = sum(len(db.data) for db in engine.dbs)
    rss = _rss()
    out: dict[bytes, Any] = {
        b"peak.allocated": tracker.peak, b"total.allocated": used, b"startup.allocated": memory.STARTUP,
        b"replication.backlog": 0, b"clients.slaves": 0,
        b"clients.normal": memory.CLIENT * len(engine.clients), b"cluster.links": 0, b"aof.buffer": 0,
        b"lua.caches": 0, b"functions.caches": 0,
    }
    for db in engine.dbs:
        if db.data or db.expires:
            out[b"db.%d" % db.index] = {
                b"overhead.hashtable.main": 8 * memory._slots(len(db.data)) + memory.DICT * 2,
                b"overhead.hashtable.expires": (8 * memory._slots(len(db.expires)) + memory.DICT * 2
                                                if db.expires else 0),
                b"overhead.hashtable.slot-to-keys": 0}
    out.update({
        b"overhead.total": overhead, b"keys.count": keys,
        b"keys.bytes-per-key": (used - memory.STARTUP) // keys if keys else 0,
        b"dataset.bytes": data, b"dataset.percentage": data * 100 / max(used - memory.STARTUP, 1),
        b"peak.percentage": used * 100 / max(tracker.peak, 1),
        b"allocator.allocated": used, b"allocator.active": used, b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0, b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": rss / max(used, 1), b"allocator-rss.bytes": rss - used,
        b"rss-overhead.ratio": 1.0, b"rss-overhead.bytes": 0,
        b"fragmentation": rss / max(used, 1), b"fragmentation.bytes": rss - used,
    })
    return out


@command("memory|doctor", 2, "", group="server", since="4.0.0", summary="Outputs memory problems report")
def memory_doctor(client: Client, argv: list[bytes]) -> object:
    used = _tracker(client.engine).used_memory()
    if used < 5 * 1024 * 1024:
        return Verbatim("Hi Sam, this instance is empty or is using very little memory, my issues detector "
                        "can't be used in these conditions. Please, leave for your mission on Earth and fill "
                        "it with some data. The new Sam and I will be back to our programming as soon as I "
                        "finished rebooting.\n")
    return Verbatim("Hi Sam, I can't find any memory issue in your instance. I can only account for what "
                    "occurs on this base.\n")


@command("memory|malloc-stats", 2, "", group="server", since="4.0.0", summary="Show allocator internal stats")
def memory_malloc_stats(client: Client, argv: list[bytes]) -> object:
    return Verbatim("Stats not supported for the current allocator")


@command("memory|purge", 2, "", group="server", since="4.0.0", summary="Ask the allocator to release memory")
def memory_purge(client: Client, argv: list[bytes]) -> object:
    return OK


COMMANDS[b"memory"].subcommands[b"usage"].extra["key_flags"] = ["RO"]  # type: ignore[index]
for _name in ("memory|doctor", "memory|stats", "memory|malloc-stats"):
    _acl(_name, "", "nondeterministic_output request_policy:all_shards response_policy:special")
_acl("memory|purge", "", "request_policy:all_shards response_policy:all_succeeded")


# --- FUNCTION (no script engine: there are never any libraries) --------------------------------------

container("function", -2, group="scripting", since="7.0.0", summary="A container for function commands")

FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "HELP",
    "    Prints this help.",
]


help_command("function", FUNCTION_HELP, "scripting", "7.0.0")


@command("function|flush", -2, "write noscript", group="scripting", since="7.0.0",
         summary="Deleting all functions")
def function_flush(client: Client, argv: list[bytes]) -> object:
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    if len(argv) == 3 and argv[2].lower() not in (b"async", b"sync"):
        raise ErrorReply("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    return OK


@command("function|list", -2, "noscript", group="scripting", since="7.0.0",
         summary="List information about all the functions")
def function_list(client: Client, argv: list[bytes]) -> object:
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        if option == b"withcode":
            index += 1
        elif option == b"libraryname":
            if index + 1 >= len(argv):
                raise ErrorReply("ERR library name argument was not given")
            index += 2
        else:
            raise ErrorReply(f"ERR Unknown argument {argv[index].decode('utf-8', 'replace')}")
    return []


@command("function|stats", 2, "noscript allow-busy", group="scripting", since="7.0.0",
         summary="Return information about the function currently running (name, description, duration)")
def function_stats(client: Client, argv: list[bytes]) -> object:
    return {b"running_script": None,
            b"engines": {b"LUA": {b"libraries_count": 0, b"functions_count": 0}}}


_acl("function|flush", "", "request_policy:all_shards response_policy:all_succeeded")
_acl("function|list", "", "nondeterministic_output_order")
_acl("function|stats", "", "nondeterministic_output request_policy:all_shards response_policy:special")
