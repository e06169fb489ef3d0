"""The SERVER command group, differential: INFO, DBSIZE, TIME, CONFIG, COMMAND, DEBUG, MONITOR,
SLOWLOG, LATENCY, MEMORY, FUNCTION, ROLE, LOLWUT; maxmemory (OOM and eviction policies),
maxclients and protected mode.

Most tests run against a module-private pair of servers (real redis-server and the in-memory
server) started with DEBUG enabled, so that CONFIG SET changes stay out of the other suites.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import _stop, start_memory_server, start_real_server
from resp_support import Pair, RawClient, in_process, info, parse_info, plain, started_pair


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(real port, memory port): both with DEBUG enabled."""
    with started_pair(tmp_path_factory, "server", "--enable-debug-command", "yes") as ports:
        yield ports


@pytest.fixture
def p(ports: tuple[int, int]) -> Iterator[Pair]:
    with Pair(*ports) as pair:
        pair.both("FLUSHALL")
        yield pair


def sections(text: bytes) -> list[str]:
    return [line[2:] for line in text.decode().split("\r\n") if line.startswith("# ")]


def config_value(client: RawClient, name: str) -> str:
    reply = plain(client.call("CONFIG", "GET", name))
    return reply[1].decode()


# --- INFO --------------------------------------------------------------------------------------------

def test_info_sections_default_all_everything(p: Pair) -> None:
    for args in [(), ("default",), ("all",), ("everything",), ("server", "CLIENTS"), ("keyspace", "cluster"),
                 ("commandstats",), ("default", "commandstats"), ("nosuchsection",), ("Memory", "memory")]:
        real, mem = p.each("INFO", *args)
        assert real[0] == mem[0] == "$"
        assert sections(mem[1]) == sections(real[1]), args
    assert p.both("INFO", "nosuchsection") == ("$", b"")
    assert p.both("INFO", "keyspace") == ("$", b"# Keyspace\r\n")


def test_info_fields_match_redis(p: Pair) -> None:
    p.both("SET", "k", "v")
    real, mem = p.each("INFO", "everything")
    real_fields, mem_fields = parse_info(real[1]), parse_info(mem[1])
    skip_prefixes = ("cmdstat_", "latency_percentiles_usec_", "errorstat_")
    missing = [key for key in real_fields if key not in mem_fields and not key.startswith(skip_prefixes)]
    assert missing == []
    assert mem_fields["redis_version"] == real_fields["redis_version"] == "7.0.15"
    assert mem_fields["redis_mode"] == "standalone" and mem_fields["role"] == "master"
    assert mem_fields["tcp_port"] == str(p.mem_port)
    assert mem_fields["cascade_version"] and "cascade_version" not in real_fields
    assert len(mem_fields["run_id"]) == 40 and mem_fields["run_id"] != mem_fields["master_replid"]
    assert int(mem_fields["process_id"]) > 0
    assert mem_fields["maxmemory_policy"] == "noeviction" and mem_fields["maxmemory_human"] == "0B"
    assert mem_fields["used_memory_human"].endswith("K")
    assert mem_fields["mem_allocator"] != "jemalloc-5.3.0"
    for name in ("uptime_in_seconds", "connected_clients", "used_memory", "used_memory_peak",
                 "total_connections_received", "total_commands_processed", "rdb_last_save_time"):
        assert int(mem_fields[name]) >= 0, name


def test_info_resp3_is_verbatim(p: Pair) -> None:
    p.hello(3)
    real, mem = p.each("INFO", "server")
    assert real[0] == mem[0] == "="
    assert mem[1].startswith(b"txt:# Server\r\n")
    assert p.both("INFO", "nosuchsection") == ("=", b"txt:")


def test_info_keyspace_and_stats_counters(p: Pair) -> None:
    p.both("CONFIG", "RESETSTAT")
    p.both("SET", "a", "1")
    p.both("SET", "b", "2", "EX", "1000")
    p.both("SELECT", "3")
    p.both("SET", "c", "3")
    p.both("GET", "a")
    p.both("GET", "a")
    p.both("GET", "missing")
    p.both("NOSUCHCOMMAND")
    p.both("INCR", "a", "b")
    real, mem = p.each("INFO", "keyspace")
    real_lines = real[1].decode().split("\r\n")
    mem_lines = mem[1].decode().split("\r\n")
    assert [line.split(",avg_ttl")[0] for line in mem_lines] == [line.split(",avg_ttl")[0] for line in real_lines]
    assert mem_lines[1].startswith("db0:keys=2,expires=1,avg_ttl=")
    assert 990_000 < int(mem_lines[1].rsplit("=", 1)[1]) <= 1_000_000
    real_stats, mem_stats = (parse_info(r[1]) for r in p.each("INFO", "stats"))
    for name in ("keyspace_hits", "keyspace_misses", "total_error_replies", "expired_keys", "evicted_keys"):
        assert mem_stats[name] == real_stats[name], name
    real_err, mem_err = p.each("INFO", "errorstats")
    assert mem_err == real_err
    assert b"errorstat_ERR:count=2" in mem_err[1]
    real_cmd, mem_cmd = (parse_info(r[1]) for r in p.each("INFO", "commandstats"))
    assert mem_cmd["cmdstat_get"].startswith("calls=3,usec=")
    assert mem_cmd["cmdstat_get"].endswith(",rejected_calls=0,failed_calls=0")
    assert real_cmd["cmdstat_select"].split(",")[0] == mem_cmd["cmdstat_select"].split(",")[0]
    p.both("CONFIG", "RESETSTAT")
    real_stats, mem_stats = (parse_info(r[1]) for r in p.each("INFO", "stats"))
    assert mem_stats["keyspace_hits"] == "0" and mem_stats["total_error_replies"] == "0"
    assert p.both("INFO", "errorstats") == ("$", b"# Errorstats\r\n")
    real_cmd, mem_cmd = (parse_info(r[1]) for r in p.each("INFO", "commandstats"))
    assert mem_cmd.keys() == real_cmd.keys() == {"cmdstat_config|resetstat", "cmdstat_info"}


def test_info_latencystats_follow_config(p: Pair) -> None:
    p.both("SET", "x", "1")
    mem = info(p.mem, "latencystats")
    assert mem["latency_percentiles_usec_set"].startswith("p50=")
    assert list(mem["latency_percentiles_usec_set"].split(",")[i].split("=")[0] for i in range(3)) == \
        ["p50", "p99", "p99.9"]
    p.both("CONFIG", "SET", "latency-tracking-info-percentiles", "50 80")
    try:
        mem = info(p.mem, "latencystats")
        assert [part.split("=")[0] for part in mem["latency_percentiles_usec_set"].split(",")] == ["p50", "p80"]
    finally:
        p.both("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")


def test_instantaneous_ops_per_sec(p: Pair) -> None:
    p.mem.call("INFO", "stats")            # starts the sampler if the engine's tick does not drive it
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        for _ in range(50):
            p.mem.send("PING")
        for _ in range(50):
            p.mem.read()
    ops = int(info(p.mem, "stats")["instantaneous_ops_per_sec"])
    assert ops > 100


# --- small commands ------------------------------------------------------------------------------------

def test_dbsize_time_role_lolwut(p: Pair) -> None:
    assert p.both("DBSIZE") == (":", 0)
    p.both("MSET", "a", "1", "b", "2")
    p.both("SET", "c", "3", "EX", "100")
    assert p.both("DBSIZE") == (":", 3)
    for args in [("DBSIZE", "x"), ("TIME", "x"), ("ROLE", "x"), ("LOLWUT", "VERSION", "abc")]:
        p.both(*args)
    assert p.both("ROLE") == ("*", [("$", b"master"), (":", 0), ("*", [])])
    kind, value = p.mem.call("TIME")
    assert kind == "*" and len(value) == 2 and all(item[0] == "$" for item in value)
    assert abs(int(value[0][1]) - time.time()) < 5 and 0 <= int(value[1][1]) < 1_000_000
    for args in [(), ("VERSION", "1"), ("foo",)]:
        assert b"Redis ver. 7.0.15" in p.mem.call("LOLWUT", *args)[1]


def test_flush_commands(p: Pair) -> None:
    p.both("SET", "a", "1")
    p.both("SELECT", "1")
    p.both("SET", "b", "1")
    for args in [("FLUSHDB", "x"), ("FLUSHALL", "async", "sync"), ("FLUSHDB", "ASYNC"), ("DBSIZE",),
                 ("SELECT", "0"), ("DBSIZE",), ("FLUSHALL", "SYNC"), ("DBSIZE",)]:
        p.both(*args)


# --- CONFIG --------------------------------------------------------------------------------------------

def test_config_get(p: Pair) -> None:
    for args in [("maxmemory",), ("MAXMEMORY",), ("maxmem*",), ("MAXMEM*",), ("hash-max-*",),
                 ("*ziplist*",), ("maxmemory", "maxmemory"), ("maxmemory", "maxmem*", "timeout"),
                 ("nonexistent",), ("slaveof", "replicaof"), ("?z",), ("appendfsync",), ("save",),
                 ("client-output-buffer-limit",), ("[ab]ind",), ("key-load-delay",), ("*load-delay",)]:
        p.both("CONFIG", "GET", *args, sort=True)
    p.both("CONFIG", "GET")
    real, mem = p.each("CONFIG", "GET", "*")
    real_names = set(plain(real)[::2])
    mem_names = set(plain(mem)[::2])
    assert mem_names == real_names
    p.hello(3)
    assert p.both("CONFIG", "GET", "maxmemory") == ("%", [("$", b"maxmemory"), ("$", b"0")])


def test_config_get_defaults_match(p: Pair) -> None:
    real, mem = p.each("CONFIG", "GET", "*")
    real_values = dict(zip(*[iter(plain(real))] * 2))
    mem_values = dict(zip(*[iter(plain(mem))] * 2))
    differ = {name: (real_values[name], mem_values[name]) for name in real_values
              if real_values[name] != mem_values[name]}
    assert set(differ) <= {b"port", b"dir"}


def test_config_set_errors(p: Pair) -> None:
    for args in [("foo", "bar"), ("FOO", "bar"), ("maxmemory", "abc"), ("MAXMEMORY", "abc"),
                 ("maxmemory", "1.5mb"), ("maxmemory", "-1"), ("maxmemory", "1tb"),
                 ("maxmemory", "1mb", "maxmemory", "2mb"), ("maxmemory", "1", "MAXMEMORY", "2"),
                 ("maxmemory", "10mb", "foo"), ("maxmemory",), ("daemonize", "yes"), ("DAEMONIZE", "yes"),
                 ("maxmemory", "10mb", "maxmemory-policy", "bogus"), ("maxmemory-samples", "0"),
                 ("maxclients", "0"), ("timeout", "-1"), ("appendfsync", "foo"), ("protected-mode", "maybe"),
                 ("dir", "/tmp"), ("dbfilename", "x.rdb"), ("slowlog-max-len", "01"), ("slowlog-max-len", "+1"),
                 ("slowlog-max-len", "9223372036854775808"), ("hash-max-ziplist-value", "abc"),
                 ("maxmemory", "abc", "foo", "bar"), ("foo", "bar", "maxmemory", "abc"),
                 ("maxmemory", "abc", "daemonize", "yes"), ("maxmemory", "10", "maxmemory", "10", "foo", "bar"),
                 ("save", "100"), ("save", "0 0"), ("save", "1 -1"), ("save", "3600  1"), ("save", "a b"),
                 ("notify-keyspace-events", "KEAq"), ("client-output-buffer-limit", "pubsub 1 2"),
                 ("client-output-buffer-limit", "master 1 2 3"), ("client-output-buffer-limit", "normal a 2 3"),
                 ("oom-score-adj-values", "0 1"), ("oom-score-adj-values", "a b c"),
                 ("latency-tracking-info-percentiles", "abc"), ("latency-tracking-info-percentiles", "101"),
                 ("maxmemory-clients", "abc"), ("maxmemory-clients", "101%"), ("list-max-listpack-size", "99999999999"),
                 ("slowlog-log-slower-than", "-2"), ("key-load-delay", "-99999999999"), ("enable-debug-command", "no"),
                 ("loglevel", "nothing"), ("activedefrag", "1")]:
        p.both("CONFIG", "SET", *args)
    p.both("CONFIG", "GET", "maxmemory")            # unchanged: all or nothing


def test_config_set_values(p: Pair) -> None:
    cases = [("maxmemory", "1Mb"), ("maxmemory", "5G"), ("maxmemory", "1B"), ("maxmemory", "01"),
             ("maxmemory", ""), ("maxmemory", "99999999999999999999"), ("maxmemory", "0"),
             ("hz", "1000"), ("hz", "0"), ("hz", "10"),
             ("notify-keyspace-events", "KEA"), ("notify-keyspace-events", "Kx"), ("notify-keyspace-events", "$lsh"),
             ("notify-keyspace-events", "KEm"), ("notify-keyspace-events", "nd"), ("notify-keyspace-events", "An"),
             ("notify-keyspace-events", "mn"), ("notify-keyspace-events", "tdexzhsl$g"), ("notify-keyspace-events", ""),
             ("save", "100 10"), ("save", "+5 1 10 0"), ("save", ""),
             ("client-output-buffer-limit", "normal 1k 1kb 10 pubsub 0 0 0"),
             ("client-output-buffer-limit", "replica 1 2 3"),
             ("client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
             ("oom-score-adj-values", "00 +1 2"), ("oom-score-adj-values", "0 200 800"),
             ("latency-tracking-info-percentiles", "0.5 1e1 99.99999"),
             ("latency-tracking-info-percentiles", "50 99 99.9"),
             ("maxmemory-clients", "10%"), ("maxmemory-clients", "1mb"), ("maxmemory-clients", "0"),
             ("appendfsync", "ALWAYS"), ("appendfsync", "everysec"), ("lazyfree-lazy-user-flush", "YES"),
             ("lazyfree-lazy-user-flush", "no"), ("slowlog-max-len", "128"), ("list-max-ziplist-size", "-3"),
             ("list-max-listpack-size", "-2")]
    for name, value in cases:
        p.both("CONFIG", "SET", name, value)
        p.both("CONFIG", "GET", name)
    p.both("CONFIG", "SET", "hash-max-ziplist-entries", "100", "hash-max-listpack-entries", "200")
    p.both("CONFIG", "GET", "hash-max-*", sort=True)
    p.both("CONFIG", "SET", "hash-max-listpack-entries", "512", "maxmemory-samples", "5", "timeout", "0")
    p.both("CONFIG", "GET", "hash-max-*", sort=True)
    assert p.mem.call("CONFIG", "SET", "port", str(p.mem_port)) == ("+", "OK")
    assert p.mem.call("CONFIG", "SET", "bind", "127.0.0.1") == ("+", "OK")


def test_config_set_maxmemory_is_all_or_nothing(p: Pair) -> None:
    p.both("CONFIG", "SET", "maxmemory", "10mb", "maxmemory-policy", "bogus")
    assert p.both("CONFIG", "GET", "maxmemory") == ("*", [("$", b"maxmemory"), ("$", b"0")])
    p.both("CONFIG", "SET", "maxmemory-samples", "7", "maxmemory", "nope")
    assert p.both("CONFIG", "GET", "maxmemory-samples") == ("*", [("$", b"maxmemory-samples"), ("$", b"5")])


def test_config_misc(p: Pair) -> None:
    for args in [("HELP",), ("HELP", "x"), ("REWRITE",), ("REWRITE", "x"), ("RESETSTAT", "x"), ("foo",),
                 ("GET",), ("SET", "a")]:
        p.both("CONFIG", *args)
    p.both("CONFIG")


def test_config_rewrite(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("# my settings\nmaxmemory 1mb\nhz 20\nhz 30\nslave-read-only no\n\n")
    from conftest import free_port, _wait_port
    import subprocess
    import sys
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cascade_cli.resp", str(conf), "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, "the in-memory server")
        client = RawClient(port)
        assert info(client, "server")["config_file"] == str(conf)
        assert config_value(client, "hz") == "30"
        assert client.call("CONFIG", "SET", "maxmemory", "2mb", "maxmemory-policy", "allkeys-lru",
                           "requirepass", "a b\"c") == ("+", "OK")
        assert client.call("CONFIG", "REWRITE") == ("+", "OK")
        text = conf.read_text()
        lines = text.splitlines()
        assert lines[0] == "# my settings"
        assert "maxmemory 2097152" in lines and "hz 30" in lines and "hz 20" not in lines
        assert "slave-read-only no" in lines
        assert "maxmemory-policy allkeys-lru" in lines and 'requirepass "a b\\"c"' in lines
        from cascade_cli.resp.params import Params, parse_config_text
        params = Params()
        for name, values in parse_config_text(text):
            params.set(name, " ".join(values), startup=True)
        assert params.requirepass == 'a b"c' and params.maxmemory == 2 * 1024 * 1024 and params.hz == 30
        client.close()
    finally:
        _stop(proc)


# --- COMMAND -------------------------------------------------------------------------------------------

def test_command_info_of_server_commands(p: Pair) -> None:
    for name in ("info", "dbsize", "time", "role", "lolwut", "flushall", "flushdb", "debug", "monitor",
                 "config|get", "config|set", "config|help", "config|resetstat", "config|rewrite",
                 "command|info", "command|count", "command|getkeys", "slowlog|get", "slowlog|len",
                 "slowlog|reset", "latency|latest", "latency|reset", "memory|usage", "memory|stats",
                 "function|flush", "function|list", "function|stats", "function|help"):
        p.both("COMMAND", "INFO", name)
    p.both("COMMAND", "INFO", "nope", "get|key", "CONFIG|GET")
    p.hello(3)
    p.both("COMMAND", "INFO", "info", "memory|usage", "config|set")


def test_command_info_of_every_command_matches_redis(p: Pair) -> None:
    """Name, arity, flags, legacy key positions, ACL categories and tips of every command both
    servers have (key specifications are derived, not Redis's, and are not compared)."""
    mem_names = [item[1] for item in p.mem.call("COMMAND", "LIST")[1]]
    real_names = {item[1] for item in p.real.call("COMMAND", "LIST")[1]}
    common = [name for name in mem_names if name in real_names]
    assert len(common) == len(mem_names) and len(common) > 150
    real_infos, mem_infos = (plain(reply) for reply in p.each("COMMAND", "INFO", *common))
    differ = []
    for real, mem in zip(real_infos, mem_infos):
        real_head = [real[0], real[1], sorted(real[2]), real[3:6], real[6], real[7]]
        mem_head = [mem[0], mem[1], sorted(mem[2]), mem[3:6], mem[6], mem[7]]
        if real_head != mem_head:
            differ.append((real_head, mem_head))
    assert differ == []


def test_command_docs_count_list(p: Pair) -> None:
    assert p.both("COMMAND", "DOCS", "nope") == ("*", [])
    real, mem = p.each("COMMAND", "DOCS", "time", "config|get")
    def head(reply: Any) -> dict[bytes, Any]:
        flat = plain(reply)
        return {flat[i]: dict(zip(flat[i + 1][::2], flat[i + 1][1::2])) for i in range(0, len(flat), 2)}
    real_docs, mem_docs = head(real), head(mem)
    assert mem_docs.keys() == real_docs.keys() == {b"time", b"config|get"}
    for name in mem_docs:
        for field in (b"summary", b"since", b"group"):
            assert mem_docs[name][field] == real_docs[name][field]
    docs = head(p.mem.call("COMMAND", "DOCS", "config"))[b"config"]
    assert b"config|get" in docs[b"subcommands"][::2]
    count = p.mem.call("COMMAND", "COUNT")[1]
    assert count > 150
    assert len(p.mem.call("COMMAND")[1]) == count
    assert len(p.mem.call("COMMAND", "INFO")[1]) == count
    names = [item[1] for item in p.mem.call("COMMAND", "LIST")[1]]
    assert b"get" in names and b"config|get" in names and b"client|list" in names
    for args in [("FILTERBY", "PATTERN", "conf*"), ("FILTERBY", "pattern", "CONFIG|*"),
                 ("FILTERBY", "ACLCAT", "nosuchcategory"), ("FILTERBY", "MODULE", "x"), ("FILTERBY",),
                 ("foo",), ("FILTERBY", "foo", "x"), ("FILTERBY", "PATTERN", "x", "y")]:
        p.both("COMMAND", "LIST", *args, sort=True)
    scripting = [item[1] for item in p.mem.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting")[1]]
    assert b"function|flush" in scripting and b"get" not in scripting
    for args in [("COUNT", "x"), ("HELP",), ("foo",), ("GETKEYS",), ("GETKEYS", "get")]:
        p.both("COMMAND", *args)


def test_command_getkeys(p: Pair) -> None:
    for args in [("set", "a", "b"), ("get", "a"), ("mset", "a", "1", "b", "2"), ("del", "a", "b", "c"),
                 ("lmove", "a", "b", "left", "right"), ("memory", "usage", "k"), ("nope", "a"), ("ping", "x"),
                 ("get", "a", "b"), ("set", "a"), ("config", "get", "x"), ("client", "list"),
                 ("zunionstore", "d", "2", "a", "b"),
                 ("set", "a", "b", "ex", "-1"), ("blpop", "a", "b", "0")]:
        p.both("COMMAND", "GETKEYS", *args)
    p.both("COMMAND", "GETKEYSANDFLAGS", "get", "a")
    p.both("COMMAND", "GETKEYSANDFLAGS", "nope")


# --- DEBUG ---------------------------------------------------------------------------------------------

def test_debug_denied_by_default(pair: Pair) -> None:
    for args in [("SLEEP", "0"), ("HELP",), ("foo",)]:
        pair.both("DEBUG", *args)
    pair.both("DEBUG")


def test_debug_subcommands(p: Pair) -> None:
    for args in [("SLEEP", "0"), ("SLEEP", "abc"), ("SLEEP", "-1"), ("SLEEP",), ("SLEEP", "1", "2"), ("foo",),
                 ("jmap",), ("OBJECT", "nope"), ("ERROR", "CUSTOM the message"), ("LOG", "hello"),
                 ("SET-ACTIVE-EXPIRE", "1"), ("CHANGE-REPL-ID",), ("QUICKLIST-PACKED-THRESHOLD", "100"),
                 ("DIGEST",), ("DIGEST-VALUE", "nope"), ("POPULATE", "x"), ("POPULATE", "-1"),
                 ("POPULATE", "2", "key", "-1"), ("PROTOCOL", "foo")]:
        p.both("DEBUG", *args)
    p.both("DEBUG")
    help_lines = plain(p.mem.call("DEBUG", "HELP"))
    assert help_lines[0].startswith("DEBUG <subcommand>") and "SLEEP <seconds>" in help_lines


def test_debug_protocol_both_versions(p: Pair) -> None:
    kinds = ["string", "integer", "double", "null", "array", "set", "map", "verbatim", "true", "false", "push",
             "bignum", "attrib"]
    for kind in kinds:
        p.both("DEBUG", "PROTOCOL", kind)
    p.hello(3)
    for kind in kinds[:-2]:
        if kind == "push":
            p.both("DEBUG", "PROTOCOL", kind)
            p.read()
        else:
            p.both("DEBUG", "PROTOCOL", kind)


def test_debug_object_populate_digest(p: Pair) -> None:
    assert p.both("DEBUG", "DIGEST") == ("+", "0" * 40)
    p.both("SET", "s", "hello")
    p.both("SET", "n", "123")
    p.both("SET", "big", "x" * 50)
    p.both("RPUSH", "l", "a", "b", "c")
    for key, encoding in [("s", "embstr"), ("n", "int"), ("big", "raw"), ("l", "quicklist")]:
        real, mem = p.each("DEBUG", "OBJECT", key)
        assert real[0] == mem[0] == "+"
        assert f"encoding:{encoding} " in mem[1] and f"encoding:{encoding} " in real[1]
        assert "lru_seconds_idle:" in mem[1]
    assert "refcount:2147483647" in p.mem.call("DEBUG", "OBJECT", "n")[1]
    assert "ql_nodes:1 " in p.mem.call("DEBUG", "OBJECT", "l")[1]
    digest = p.mem.call("DEBUG", "DIGEST")
    assert digest[0] == "+" and digest[1] != "0" * 40
    assert p.mem.call("DEBUG", "DIGEST") == digest
    values = p.mem.call("DEBUG", "DIGEST-VALUE", "s", "nope", "l")
    assert values[1][1] == ("+", "0" * 40) and values[1][0] != values[1][2]
    p.mem.call("SET", "s", "changed")
    assert p.mem.call("DEBUG", "DIGEST") != digest
    p.both("FLUSHALL")
    p.both("DEBUG", "POPULATE", "5")
    p.both("DEBUG", "POPULATE", "3", "p", "10")
    p.both("DEBUG", "POPULATE", "7")
    assert p.both("DBSIZE") == (":", 10)
    p.both("GET", "key:4")
    assert p.both("GET", "p:1") == ("$", b"value:1\x00\x00\x00")
    p.both("DEBUG", "POPULATE", "2", "q", "3")
    p.both("GET", "q:1")
    p.both("DEBUG", "RELOAD")
    assert p.both("DBSIZE") == (":", 12)


def test_debug_sleep_freezes_the_server(p: Pair) -> None:
    other = RawClient(p.mem_port)
    p.mem.send("DEBUG", "SLEEP", "0.4")
    time.sleep(0.05)
    start = time.monotonic()
    assert other.call("PING") == ("+", "PONG")
    assert time.monotonic() - start > 0.25
    assert p.mem.read() == ("+", "OK")
    other.close()


# --- MONITOR -------------------------------------------------------------------------------------------

def test_monitor(p: Pair) -> None:
    with p.connect() as watcher:
        assert watcher.both("MONITOR") == ("+", "OK")
        p.both("SET", "key", "va\"l\n")
        p.both("SELECT", "2")
        p.both("GET", "x")
        p.both("CONFIG", "GET", "hz")              # admin commands are not shown
        p.both("PING")
        for client, port in ((watcher.real, p.real_port), (watcher.mem, p.mem_port)):
            lines = [client.read(timeout=2) for _ in range(4)]
            assert all(kind == "+" for kind, _ in lines)
            texts = [text.split(" ", 1)[1] for _, text in lines]
            local = p.real.sock.getsockname() if port == p.real_port else p.mem.sock.getsockname()
            addr = f"{local[0]}:{local[1]}"
            assert texts[0] == f'[0 {addr}] "SET" "key" "va\\"l\\n"'
            assert texts[1].endswith(f' {addr}] "SELECT" "2"')
            assert texts[2:] == [f'[2 {addr}] "GET" "x"', f'[2 {addr}] "PING"']
            assert abs(float(lines[0][1].split(" ")[0]) - time.time()) < 5
        # a second MONITOR is ignored (no reply), the connection goes on
        watcher.send("MONITOR")
        assert watcher.both("PING") == ("+", "PONG")
    with p.connect() as multi:
        multi.run(("MULTI",), ("MONITOR",), ("EXEC",))


def test_monitor_shows_the_database_after_select(p: Pair) -> None:
    with p.connect() as watcher:
        watcher.both("MONITOR")
        p.both("SELECT", "2")
        real, mem = watcher.real.read(timeout=2), watcher.mem.read(timeout=2)
        assert real[1].split(" ")[1] == mem[1].split(" ")[1] == "[2"


# --- SLOWLOG / LATENCY ---------------------------------------------------------------------------------

def test_slowlog(p: Pair) -> None:
    for args in [("GET", "-2"), ("GET", "abc"), ("GET", "1", "2"), ("LEN", "x"), ("HELP",), ("foo",), ("RESET",),
                 ("LEN",), ("GET",), ("GET", "0")]:
        p.both("SLOWLOG", *args)
    p.both("SLOWLOG")
    p.both("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        p.both("SET", "k", "v")
        p.both("GET", "k")
        p.both("ECHO", "x" * 200)
        p.both("SLOWLOG", "LEN")
        for client in (p.real, p.mem):
            entries = plain(client.call("SLOWLOG", "GET", "-1"))
            assert [entry[3][0].upper() for entry in entries[:4]] == [b"SLOWLOG", b"ECHO", b"GET", b"SET"]
            first = entries[1]
            assert first[3][1] == b"x" * 128 + b"... (72 more bytes)"
            local = client.sock.getsockname()
            assert first[4] == f"{local[0]}:{local[1]}".encode() and first[5] == b""
            assert entries[0][0] > first[0] and abs(first[1] - time.time()) < 5 and first[2] >= 0
            assert len(plain(client.call("SLOWLOG", "GET", "2"))) == 2
            assert len(plain(client.call("SLOWLOG", "GET"))) <= 10
        p.both("CONFIG", "SET", "slowlog-max-len", "2")
        p.both("PING")
        p.both("SLOWLOG", "LEN")
    finally:
        p.both("CONFIG", "SET", "slowlog-log-slower-than", "10000", "slowlog-max-len", "128")
    p.both("SLOWLOG", "RESET")
    p.both("SLOWLOG", "LEN")


def test_latency(p: Pair) -> None:
    p.both("CONFIG", "RESETSTAT")
    for args in [("LATEST",), ("HISTORY", "command"), ("RESET",), ("RESET", "command", "fast-command"),
                 ("GRAPH", "command"), ("HELP",), ("DOCTOR",), ("foo",), ("HISTORY",), ("LATEST", "x")]:
        p.both("LATENCY", *args)
    p.both("SET", "a", "1")
    mem = plain(p.mem.call("LATENCY", "HISTOGRAM", "set", "nope"))
    assert mem[0] == b"set" and mem[1][:2] == [b"calls", 1] and mem[1][2] == b"histogram_usec"
    assert plain(p.both("LATENCY", "HISTOGRAM", "nope")) == []


# --- MEMORY --------------------------------------------------------------------------------------------

def test_memory_usage_matches_redis(p: Pair) -> None:
    p.both("SET", "int", "12345")
    p.both("SET", "bigint", "123456789012")
    p.both("SET", "empty", "")
    p.both("SET", "s44", "x" * 44)
    p.both("SET", "s45", "x" * 45)
    p.both("SET", "s100", "y" * 100)
    p.both("SET", "k" * 40, "v")
    p.both("APPEND", "ap", "x" * 45)
    p.both("HSET", "h", *[f"{kind}{i}" for i in range(10) for kind in "fv"])
    p.both("SADD", "intset", *range(10))
    p.both("SADD", "bigints", 1, 70000, -5)
    p.both("RPUSH", "list", *[f"e{i}" for i in range(1000)])
    p.both("RPUSH", "list2", "a", "b")
    p.both("ZADD", "z", *[x for i in range(10) for x in (i, f"m{i}")])
    for key in ("int", "bigint", "empty", "s44", "s45", "s100", "k" * 40, "ap", "h", "intset", "bigints",
                "list", "list2", "z"):
        p.both("MEMORY", "USAGE", key)
        p.both("MEMORY", "USAGE", key, "SAMPLES", "0")
    p.both("HSET", "bighash", *[f"{kind}{i}" for i in range(1000) for kind in "fv"])
    real, mem = p.each("MEMORY", "USAGE", "bighash", "SAMPLES", "0")
    assert abs(mem[1] - real[1]) <= real[1] * 0.05
    for args in [("nope",), ("int", "SAMPLES", "x"), ("int", "bar"), ("int", "SAMPLES"), ("int", "SAMPLES", "-1"),
                 ("int", "samples", "0", "samples", "2")]:
        p.both("MEMORY", "USAGE", *args)
    p.both("MEMORY", "USAGE")


def test_memory_misc(p: Pair) -> None:
    for args in [("HELP",), ("PURGE",), ("DOCTOR",), ("foo",), ("STATS", "x")]:
        p.both("MEMORY", *args)
    p.both("SET", "a", "1")
    real, mem = p.each("MEMORY", "STATS")
    real_keys = plain(real)[::2]
    mem_keys = plain(mem)[::2]
    assert mem_keys == real_keys
    stats = dict(zip(mem_keys, plain(mem)[1::2]))
    assert stats[b"keys.count"] == 1 and stats[b"total.allocated"] > stats[b"startup.allocated"]
    assert p.mem.call("MEMORY", "MALLOC-STATS")[0] == "$"


def test_used_memory_follows_the_dataset(p: Pair) -> None:
    def used(client: RawClient) -> int:
        return int(info(client, "memory")["used_memory"])
    before = {name: used(client) for name, client in (("real", p.real), ("mem", p.mem))}
    for client in (p.real, p.mem):
        for i in range(2000):
            client.send("SET", f"key:{i}", "v" * 100)
        for i in range(2000):
            client.read()
    time.sleep(0.15)
    grown = {name: used(client) - before[name] for name, client in (("real", p.real), ("mem", p.mem))}
    assert 0.8 * grown["real"] < grown["mem"] < 1.2 * grown["real"]
    p.both("FLUSHALL")
    assert used(p.mem) < before["mem"] + 50_000


# --- FUNCTION, unknown scripting -------------------------------------------------------------------------

def test_function(p: Pair) -> None:
    for args in [("FLUSH",), ("FLUSH", "async"), ("FLUSH", "SYNC"), ("FLUSH", "x"), ("FLUSH", "a", "b"), ("LIST",),
                 ("LIST", "libraryname"), ("LIST", "withcode", "x"), ("LIST", "LIBRARYNAME", "a", "WITHCODE"),
                 ("LIST", "foo"), ("STATS",), ("HELP", "x"), ("foo",)]:
        p.both("FUNCTION", *args)
    p.both("FUNCTION")
    p.hello(3)
    p.both("FUNCTION", "STATS")
    assert p.mem.call("EVAL", "return 1", "0")[1].startswith("ERR unknown command 'EVAL'")


# --- maxmemory -----------------------------------------------------------------------------------------

def _fill(client: RawClient, count: int, size: int = 100, prefix: str = "key") -> list[Any]:
    """SET count keys, pipelined in small batches (real Redis counts pending input as used memory)."""
    replies = []
    for start in range(0, count, 50):
        for i in range(start, min(start + 50, count)):
            client.send("SET", f"{prefix}:{i}", "x" * size)
        replies += [client.read() for _ in range(start, min(start + 50, count))]
    return replies


def test_maxmemory_noeviction(p: Pair) -> None:
    try:
        counts = {}
        for name, client in (("real", p.real), ("mem", p.mem)):
            # each server gets 1 MB over what it uses now: the number of keys that fit compares
            # the per-key accounting (a long-running real server holds per-command histograms)
            base = int(info(client, "memory")["used_memory"])
            assert client.call("CONFIG", "SET", "maxmemory-policy", "noeviction",
                               "maxmemory", str(base + 1_000_000)) == ("+", "OK")
            replies = _fill(client, 12000)
            ok = sum(1 for reply in replies if reply == ("+", "OK"))
            errors = {reply for reply in replies if reply[0] == "-"}
            assert errors == {("-", "OOM command not allowed when used memory > 'maxmemory'.")}
            counts[name] = ok
        assert 0.8 * counts["real"] < counts["mem"] < 1.2 * counts["real"]
        oom = ("-", "OOM command not allowed when used memory > 'maxmemory'.")
        mem = p.mem
        assert mem.call("SET", "another", "x") == oom
        assert mem.call("GET", "key:0") == ("$", b"x" * 100)
        assert mem.call("EXISTS", "key:1") == (":", 1)
        assert mem.call("LPUSH", "l", "x") == oom
        assert mem.call("INCR", "counter") == oom        # denyoom: it may grow the dataset
        assert mem.call("MULTI") == ("+", "OK")
        assert mem.call("SET", "x", "y") == oom
        assert mem.call("EXEC") == ("-", "EXECABORT Transaction discarded because of previous errors.")
        assert mem.call("DEL", "key:0", "key:1", "key:2") == (":", 3)
        for client in (p.real, p.mem):
            stats = info(client, "stats")
            assert stats["evicted_keys"] == "0"
        p.both("FLUSHALL")
        p.both("SET", "after", "flush")
    finally:
        p.both("CONFIG", "SET", "maxmemory", "0")


def test_maxmemory_allkeys_lru_keeps_hot_keys(p: Pair) -> None:
    p.mem.call("CONFIG", "RESETSTAT")
    p.mem.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "maxmemory", "2mb")
    try:
        client = p.mem
        hot = [f"hot:{i}" for i in range(50)]
        for key in hot:
            client.call("SET", key, "h" * 100)
        for batch in range(20):
            for i in range(500):
                client.send("SET", f"cold:{batch}:{i}", "c" * 100)
            for key in hot:
                client.send("GET", key)
            replies = [client.read() for _ in range(500 + len(hot))]
            assert all(reply[0] != "-" for reply in replies)
        stats = info(client, "stats")
        assert int(stats["evicted_keys"]) > 1000
        size = client.call("DBSIZE")[1]
        assert 3000 < size < 9000
        alive = sum(1 for key in hot if client.call("EXISTS", key) == (":", 1))
        assert alive >= 45
        oldest = sum(1 for i in range(100) if client.call("EXISTS", f"cold:0:{i}") == (":", 1))
        assert oldest <= 20
        used = int(info(client, "memory")["used_memory"])
        assert used <= 2 * 1024 * 1024 + 4096
    finally:
        p.mem.call("CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction")


def test_maxmemory_from_the_command_line(tmp_path: Path) -> None:
    proc, port = start_memory_server(tmp_path, "--maxmemory", "1mb")
    try:
        client = RawClient(port)
        replies = _fill(client, 3000)
        assert ("-", "OOM command not allowed when used memory > 'maxmemory'.") in replies
        client.close()
    finally:
        _stop(proc)


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "volatile-random", "allkeys-random",
                                    "volatile-lfu", "allkeys-lfu"])
def test_maxmemory_policies(p: Pair, policy: str) -> None:
    client = p.mem
    client.call("FLUSHALL")
    for i in range(1000):
        client.send("SET", f"keep:{i}", "k" * 100)
    for i in range(1000):
        client.read()
    for i in range(3000):
        client.send("SET", f"vol:{i}", "v" * 100, "EX", str(1000 + i))
    for i in range(3000):
        client.read()
    client.call("CONFIG", "RESETSTAT")
    try:
        assert client.call("CONFIG", "SET", "maxmemory-policy", policy, "maxmemory", "1200kb") == ("+", "OK")
        reply = client.call("SET", "trigger", "x")
        evicted = int(info(client, "stats")["evicted_keys"])
        kept = sum(1 for i in range(0, 1000, 10) if client.call("EXISTS", f"keep:{i}") == (":", 1))
        if policy.startswith("volatile"):
            assert reply == ("+", "OK") and evicted > 500 and kept == 100
            if policy == "volatile-ttl":   # the keys closest to expiring go first
                assert client.call("EXISTS", "vol:0") == (":", 0)
                assert client.call("EXISTS", "vol:2999") == (":", 1)
        else:
            assert reply == ("+", "OK") and evicted > 500 and kept < 100
        # no volatile keys left to evict: volatile policies answer OOM
        client.call("CONFIG", "SET", "maxmemory", "900kb")
        if policy.startswith("volatile"):
            assert client.call("SET", "more", "x") == ("-", "OOM command not allowed when used memory > "
                                                            "'maxmemory'.")
    finally:
        client.call("CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction")


def test_eviction_is_propagated_and_wakes_watchers(p: Pair) -> None:
    client = p.mem
    for i in range(3000):
        client.send("SET", f"key:{i}", "x" * 100)
    for i in range(3000):
        client.read()
    watcher = RawClient(p.mem_port)
    watcher.call("WATCH", "key:0", "key:1", "key:2", "key:3", "key:4", "key:5")
    try:
        client.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random", "maxmemory", "1mb")
        client.call("SET", "x", "y")
        assert client.call("DBSIZE")[1] < 1500
        gone = any(client.call("EXISTS", f"key:{i}") == (":", 0) for i in range(6))
        watcher.call("MULTI")
        watcher.call("PING")
        result = watcher.call("EXEC")
        assert (result == ("*", None)) == gone
    finally:
        client.call("CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction")
        watcher.close()


# --- maxclients, protected mode --------------------------------------------------------------------------

def test_maxclients(p: Pair) -> None:
    for port, client in ((p.real_port, p.real), (p.mem_port, p.mem)):
        connected = int(info(client, "clients")["connected_clients"])
        assert client.call("CONFIG", "SET", "maxclients", str(connected + 1)) == ("+", "OK")
        extra: list[socket.socket] = []
        try:
            ok = RawClient(port)
            assert ok.call("PING") == ("+", "PONG")
            refused = socket.create_connection(("127.0.0.1", port), timeout=5)
            extra.append(refused)
            data = b""
            while True:
                chunk = refused.recv(1024)
                if not chunk:
                    break
                data += chunk
            assert data == b"-ERR max number of clients reached\r\n"
            assert ok.call("PING") == ("+", "PONG")
            ok.close()
            stats = info(client, "stats")
            assert int(stats["rejected_connections"]) >= 1
        finally:
            for sock in extra:
                sock.close()
            client.call("CONFIG", "SET", "maxclients", "10000")


def _non_loopback_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.254", 9))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_protected_mode(tmp_path: Path) -> None:
    replies = _protected_mode_replies(tmp_path)
    assert replies["mem"].startswith(b"-DENIED Redis is running in protected mode")
    assert replies["mem"].endswith(b"\r\n") and replies["mem"].count(b"\r\n") == 1


def test_protected_mode_message_is_redis_text(tmp_path: Path) -> None:
    replies = _protected_mode_replies(tmp_path)
    assert replies["mem"] == replies["real"]


def _protected_mode_replies(tmp_path: Path) -> dict[str, bytes]:
    """What a non-loopback connection reads from each server in protected mode (and that
    loopback connections work, and CONFIG SET protected-mode no lets the remote one in)."""
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    replies = {}
    procs = []
    try:
        for name, start in (("real", start_real_server), ("mem", start_memory_server)):
            proc, port = start(_mkdir(tmp_path / name), "--bind", "* -::*")
            procs.append(proc)
            sock = socket.create_connection((address, port), timeout=5)
            data = b""
            try:
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            sock.close()
            replies[name] = data
            local = RawClient(port)
            assert local.call("PING") == ("+", "PONG")
            assert local.call("CONFIG", "SET", "protected-mode", "no") == ("+", "OK")
            remote = RawClient(port, host=address)
            assert remote.call("PING") == ("+", "PONG")
            remote.close()
            local.close()
    finally:
        for proc in procs:
            _stop(proc)
    return replies


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_concurrent_info_while_writing(p: Pair) -> None:
    """INFO and MEMORY keep answering while another client writes (no shared-state crash)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            client = RawClient(p.mem_port)
            i = 0
            while not stop.is_set():
                client.call("SET", f"w:{i}", "x" * (i % 300))
                i += 1
            client.close()
        except BaseException as error:      # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(30):
            assert p.mem.call("INFO", "everything")[0] == "$"
            assert p.mem.call("MEMORY", "STATS")[0] == "*"
    finally:
        stop.set()
        thread.join(5)
    assert not errors


def test_memory_hooks_in_process() -> None:
    """memory.install wires the hooks the core calls: OOM at the limit, eviction per policy, the
    evicted keys propagated as DEL."""
    from cascade_cli.resp import memory
    from cascade_cli.resp.protocol import ErrorReply
    engine, client, aof = in_process()
    tracker = memory.install(engine)
    assert memory.install(engine) is tracker and engine.hooks["used_memory"] == tracker.used_memory
    engine.params.maxmemory = 1024 * 1024
    replies = [engine.execute(client, [b"SET", b"k%d" % i, b"x" * 100]) for i in range(8000)]
    refused = [reply for reply in replies if isinstance(reply, ErrorReply)]
    assert refused and refused[0].text == "OOM command not allowed when used memory > 'maxmemory'."
    assert engine.execute(client, [b"GET", b"k1"]) == b"x" * 100
    assert 0 < tracker.used_memory() - engine.params.maxmemory < 1024
    engine.params.maxmemory_policy = "allkeys-random"
    keys = len(engine.dbs[0].data)
    assert not isinstance(engine.execute(client, [b"SET", b"new", b"v"]), ErrorReply)
    assert engine.stats.evicted_keys >= 1 and len(engine.dbs[0].data) <= keys
    deleted = [argv for argv in aof.commands if argv[0] == b"DEL"]
    assert len(deleted) == engine.stats.evicted_keys
    assert tracker.used_memory() <= engine.params.maxmemory + 1024      # plus the key just written
