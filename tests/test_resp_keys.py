"""KEYS (generic keyspace) commands: the in-memory server against a real redis-server."""

from __future__ import annotations

import socket
import time

import pytest
from resp_support import assert_counted_alike, execute, in_process, watch_change_exec


def fill_types(pair):
    pair.run(("SET", "str", "v"), ("RPUSH", "list", "a", "b"), ("HSET", "hash", "f", "v"),
             ("SADD", "set", "m"), ("ZADD", "zset", "1", "m"), ("XADD", "stream", "1-1", "f", "v"))


# --- DEL, UNLINK, EXISTS, TYPE, TOUCH, RANDOMKEY ---------------------------------------------------

def test_del_unlink_exists(pair):
    pair.run(("MSET", "a", "1", "b", "2", "c", "3"), ("EXISTS", "a", "a", "b", "nope"),
             ("DEL", "a", "a", "nope"), ("EXISTS", "a"), ("UNLINK", "b", "c", "d"), ("EXISTS", "b", "c"),
             ("DEL",), ("UNLINK",), ("EXISTS",), ("DEL", "nope"))


def test_type_of_every_kind(pair):
    fill_types(pair)
    for key in ("str", "list", "hash", "set", "zset", "stream", "missing"):
        pair.both("TYPE", key)
    with pair.resp3():
        pair.run(("TYPE", "zset"), ("TYPE", "missing"))
    pair.run(("TYPE",), ("TYPE", "a", "b"))


def test_touch_and_randomkey(pair):
    pair.run(("RANDOMKEY",), ("TOUCH", "a", "b"), ("SET", "a", "1"), ("RANDOMKEY",),
             ("TOUCH", "a", "a", "b"), ("TOUCH",), ("RANDOMKEY", "x"))
    with pair.resp3():
        pair.run(("FLUSHALL",), ("RANDOMKEY",))


def test_randomkey_returns_live_keys(r):
    r.mset({f"k{i}": i for i in range(50)})
    seen = {r.randomkey() for _ in range(200)}
    assert seen <= {f"k{i}".encode() for i in range(50)} and len(seen) > 10
    r.flushall()
    r.set("only", "1")
    assert r.randomkey() == b"only"


def test_dump_restore_are_unknown(pair):
    pair.both("SET", "k", "v")
    assert pair.mem.call("DUMP", "k") == (
        "-", "ERR unknown command 'DUMP', with args beginning with: 'k' ")
    assert pair.mem.call("RESTORE", "k", "0", "x") == (
        "-", "ERR unknown command 'RESTORE', with args beginning with: 'k' '0' 'x' ")


# --- KEYS and glob patterns ------------------------------------------------------------------------

GLOB_KEYS = ["hello", "hallo", "hxllo", "hllo", "heeeello", "hbllo", "h*llo", "h?llo", "h[a]llo",
             "a\\b", "foo:bar", "foo:baz:1", "", "-", "]", "[", "^", "a-b", "x", "X", "abcabc",
             "aaa", "ab", "a*", "*", "?"]
GLOB_PATTERNS = ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h\\*llo",
                 "h\\?llo", "h\\[a\\]llo", "foo:*", "foo:*:*", "*:ba?", "[", "[a", "]", "\\", "a\\\\b",
                 "a\\", "[^]", "[]]", "[-]", "a[-]b", "[a-]", "[\\]]", "[\\-]", "*a*", "a*a", "**",
                 "???", "?", "", "*\\*", "\\*", "[!a]*", "[a-c]*c", "[^a-z]", "[X-x]", "h[a-e-l]llo",
                 "[[]", "[\\", "a*b*c*", "*[", "h[^]llo", "ab[", "ab[c"]


def test_keys_glob_edge_cases(pair):
    pair.both("MSET", *[part for key in GLOB_KEYS for part in (key, "1")])
    for pattern in GLOB_PATTERNS:
        pair.both("KEYS", pattern, sort=True)
    pair.run(("KEYS",), ("KEYS", "a", "b"))


def test_keys_skips_expired_and_binary(pair):
    pair.run(("SET", b"bin\x00key", "1"), ("SET", "gone", "1", "PX", "1"), ("SET", "live", "1"))
    time.sleep(0.01)
    pair.run(("KEYS", "*"), ("KEYS", "bin?key"), ("KEYS", "g*"), sort=True)


def test_keys_pathological_pattern_is_bounded(pair):
    key = "a" * 3000
    pattern = "a*" * 300 + "b"
    pair.both("SET", key, "1")
    # exponential matching would run into the test timeout; the speed is measured by
    # benchmarks/resp_bigvalues.py
    real, mem = pair.each("KEYS", pattern)
    assert real == mem == ("*", [])
    assert pair.mem.call("PING") == ("+", "PONG")       # the server still answers
    pair.both("SCAN", "0", "MATCH", pattern, "COUNT", "10")


# --- SCAN ------------------------------------------------------------------------------------------

def scan_all(client, *options):
    cursor = b"0"
    found = []
    rounds = 0
    while True:
        kind, (cur, keys) = client.call("SCAN", cursor, *options)
        assert kind == "*"
        found += [item[1] for item in keys[1]]
        cursor = cur[1]
        rounds += 1
        if cursor == b"0":
            return found, rounds
        assert rounds < 10000


@pytest.mark.parametrize("options", [(), ("COUNT", "1"), ("COUNT", "7"), ("COUNT", "1000"),
                                     ("MATCH", "user:*"), ("MATCH", "*:1?"), ("MATCH", "nomatch*"),
                                     ("TYPE", "string"), ("TYPE", "list"), ("TYPE", "hash"),
                                     ("TYPE", "SET"), ("TYPE", "zset"), ("TYPE", "stream"),
                                     ("TYPE", "nosuchtype"),
                                     ("MATCH", "user:*", "TYPE", "string", "COUNT", "3"),
                                     ("count", "5", "match", "*1*", "type", "STRING")])
def test_scan_full_iteration(pair, options):
    for client in (pair.real, pair.mem):
        client.call("MSET", *[part for i in range(120) for part in (f"user:{i}", str(i))])
        client.call("MSET", *[part for i in range(30) for part in (f"item:{i}", str(i))])
        client.call("RPUSH", "list:1", "a")
        client.call("HSET", "hash:1", "f", "v")
        client.call("SADD", "set:1", "m")
        client.call("ZADD", "zset:1", "1", "m")
        client.call("XADD", "stream:1", "1-1", "f", "v")
    real, _ = scan_all(pair.real, *options)
    mem, rounds = scan_all(pair.mem, *options)
    assert len(mem) == len(set(mem)) or options == ()
    assert set(mem) == set(real)
    if options in ((), ("COUNT", "1")):
        assert rounds > 1


def test_scan_errors_and_shape(pair):
    pair.run(("SET", "k", "v"), ("SCAN", "0"), ("SCAN", "x"), ("SCAN", " 0"), ("SCAN", "1.5"),
             ("SCAN", "18446744073709551616"), ("SCAN", "-18446744073709551616"), ("SCAN", "+0"),
             ("SCAN", "000"), ("SCAN", ""), ("SCAN", "0", "COUNT"), ("SCAN", "0", "COUNT", "0"),
             ("SCAN", "0", "COUNT", "-1"), ("SCAN", "0", "COUNT", "x"), ("SCAN", "0", "MATCH"),
             ("SCAN", "0", "TYPE"), ("SCAN", "0", "FOO", "bar"), ("SCAN", "0", "MATCH", "k", "COUNT", "10"),
             ("SCAN",))
    with pair.resp3():
        pair.run(("SCAN", "0"), ("SCAN", "0", "TYPE", "string"))
    # strtoul accepts a sign: "-1" is a (huge) cursor, not an error
    kind, (cursor, _keys) = pair.mem.call("SCAN", "-1")
    assert kind == "*" and cursor == ("$", b"0")


def test_scan_skips_expired_keys(pair):
    pair.run(("SET", "a", "1", "PX", "1"), ("SET", "b", "1"))
    time.sleep(0.01)
    pair.run(("SCAN", "0"), ("DBSIZE",))


# --- RENAME, COPY, MOVE, SWAPDB --------------------------------------------------------------------

def test_rename_and_renamenx(pair):
    pair.run(("RENAME", "nope", "x"), ("RENAMENX", "nope", "x"), ("SET", "a", "1", "EX", "100"),
             ("RENAME", "a", "a"), ("RENAMENX", "a", "a"), ("RENAME", "a", "b"), ("EXISTS", "a"),
             ("GET", "b"), ("TTL", "b"), ("SET", "c", "3"), ("RENAMENX", "b", "c"), ("GET", "c"),
             ("RENAMENX", "b", "d"), ("TTL", "d"), ("RPUSH", "l", "x"), ("RENAME", "d", "l"), ("TYPE", "l"),
             ("TTL", "l"), ("SET", "e", "1", "EX", "100"), ("RENAME", "c", "e"), ("TTL", "e"),
             ("RENAME", "a"), ("RENAMENX", "a", "b", "c"))


def test_rename_wakes_blocked_client(pair):
    with pair.block("BLPOP", "dst", "5") as other:
        pair.run(("RPUSH", "src", "x"), ("RENAME", "src", "dst"))
        other.read(2)
        pair.run(("EXISTS", "dst"))


def test_copy(pair):
    fill_types(pair)
    for key in ("str", "list", "hash", "set", "zset", "stream"):
        pair.both("COPY", key, key + "2")
        pair.both("TYPE", key + "2")
    pair.run(("LRANGE", "list2", "0", "-1"), ("RPUSH", "list2", "c"), ("LLEN", "list"), ("HGETALL", "hash2"),
             ("SMEMBERS", "set2"), ("ZRANGE", "zset2", "0", "-1", "WITHSCORES"),
             ("XRANGE", "stream2", "-", "+"), ("COPY", "str", "list"), ("COPY", "str", "list", "REPLACE"),
             ("TYPE", "list"), ("COPY", "nope", "x"), ("COPY", "str", "str"),
             ("COPY", "str", "str", "DB", "0"), ("COPY", "str", "str", "DB", "1"), ("SELECT", "1"),
             ("GET", "str"), ("SELECT", "0"), ("COPY", "str", "str", "DB", "1"),
             ("COPY", "str", "str", "DB", "1", "REPLACE"), ("COPY", "str", "x", "DB", "16"),
             ("COPY", "str", "x", "DB", "-1"), ("COPY", "str", "x", "DB", "a"), ("COPY", "str", "x", "DB"),
             ("COPY", "str", "x", "FOO"), ("COPY", "str", "x", "REPLACE", "REPLACE"),
             ("SET", "t", "v", "EX", "100"), ("COPY", "t", "t2"), ("TTL", "t2"), ("COPY", "str"))
    pair.run(("SMEMBERS", "set2"), sort=True)
    pair.run(("SET", "n", "123"), ("COPY", "n", "n2"), ("OBJECT", "ENCODING", "n2"),
             ("APPEND", "str2", "x"), ("COPY", "str2", "str3"), ("OBJECT", "ENCODING", "str3"),
             ("APPEND", "str3", "y"), ("GET", "str2"))


def test_move(pair):
    pair.run(("SET", "a", "1", "EX", "100"), ("MOVE", "a", "1"), ("EXISTS", "a"), ("SELECT", "1"),
             ("GET", "a"), ("TTL", "a"), ("SELECT", "0"), ("MOVE", "a", "1"), ("SET", "a", "2"),
             ("MOVE", "a", "1"), ("GET", "a"), ("MOVE", "a", "0"), ("MOVE", "a", "16"), ("MOVE", "a", "-1"),
             ("MOVE", "a", "x"), ("MOVE", "a", "4294967296"), ("MOVE", "nope", "1"), ("MOVE", "a"))


def test_swapdb(pair):
    pair.run(("SET", "a", "0"), ("SELECT", "1"), ("SET", "b", "1", "EX", "100"), ("SELECT", "0"),
             ("SWAPDB", "0", "1"), ("GET", "a"), ("GET", "b"), ("TTL", "b"), ("DBSIZE",), ("SELECT", "1"),
             ("GET", "a"), ("SELECT", "0"), ("SWAPDB", "0", "0"), ("GET", "b"), ("SWAPDB", "0", "16"),
             ("SWAPDB", "-1", "0"), ("SWAPDB", "x", "0"), ("SWAPDB", "0", "x"), ("SWAPDB", "0", "2147483648"),
             ("SWAPDB", "0"))


def test_swapdb_touches_watched_keys(pair):
    with pair.connect() as other:
        # a key that exists in db 0 only before the swap, one that exists only after
        pair.both("SET", "x", "1")
        watch_change_exec(pair, other, "x", ("SWAPDB", "0", "1"))
        other.both("SWAPDB", "0", "1")
        pair.run(("SELECT", "1"), ("SET", "y", "1"), ("SELECT", "0"))
        watch_change_exec(pair, other, "y", ("SWAPDB", "0", "1"))
        # a key that exists in neither db: untouched
        watch_change_exec(pair, other, "zzz", ("SWAPDB", "0", "1"))


def test_swapdb_wakes_blocked_client(pair):
    pair.run(("SELECT", "1"), ("RPUSH", "q", "job"), ("SELECT", "0"))
    with pair.block("BLPOP", "q", "5") as other:
        pair.both("SWAPDB", "0", "1")
        assert other.read(2) == ("*", [("$", b"q"), ("$", b"job")])


# --- OBJECT ----------------------------------------------------------------------------------------

def test_object_basics(pair):
    pair.run(("SET", "k", "v"), ("OBJECT", "HELP"), ("OBJECT", "help"), ("OBJECT", "ENCODING", "nope"),
             ("OBJECT", "REFCOUNT", "nope"), ("OBJECT", "IDLETIME", "nope"), ("OBJECT", "FREQ", "nope"),
             ("OBJECT", "FREQ", "k"), ("OBJECT", "REFCOUNT", "k"), ("OBJECT", "IDLETIME", "k"),
             ("OBJECT",), ("OBJECT", "FOO"), ("OBJECT", "FOO", "k"), ("OBJECT", "ENCODING"),
             ("OBJECT", "ENCODING", "k", "x"), ("OBJECT", "HELP", "x"))
    with pair.resp3():
        pair.run(("OBJECT", "ENCODING", "nope"), ("OBJECT", "HELP"))


def test_object_freq_and_idletime_by_policy(pair):
    try:
        pair.run(("SET", "k", "v"), ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"),
                 ("SET", "k2", "v"), ("OBJECT", "IDLETIME", "k"), ("OBJECT", "FREQ", "k2"),
                 ("OBJECT", "IDLETIME", "nope"), ("OBJECT", "FREQ", "nope"),
                 ("CONFIG", "SET", "maxmemory-policy", "volatile-lfu"), ("OBJECT", "IDLETIME", "k"),
                 ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"), ("OBJECT", "FREQ", "k"))
    finally:
        pair.each("CONFIG", "SET", "maxmemory-policy", "noeviction")
    pair.run(("OBJECT", "FREQ", "k"))


def test_object_idletime_grows(r):
    r.set("k", "v")
    time.sleep(1.2)
    assert r.object("idletime", "k") >= 1
    r.get("k")
    assert r.object("idletime", "k") == 0


def test_object_encoding_transitions(pair):
    try:
        _encoding_transitions(pair)
    finally:
        pair.each("CONFIG", "SET", "set-max-intset-entries", "512")
        pair.each("CONFIG", "SET", "hash-max-listpack-entries", "512")      # the built-in default


def _encoding_transitions(pair):
    pair.run(
        ("RPUSH", "l", "a"), ("OBJECT", "ENCODING", "l"),
        ("HSET", "h", "f", "v"), ("OBJECT", "ENCODING", "h"), ("HSET", "h", "long", "x" * 65),
        ("OBJECT", "ENCODING", "h"), ("HDEL", "h", "long"), ("OBJECT", "ENCODING", "h"),
        ("HSET", "h2", *[f"f{i}" for i in range(258)]), ("OBJECT", "ENCODING", "h2"),
        ("HSET", "h3", *[f"f{i}" for i in range(256)]), ("OBJECT", "ENCODING", "h3"),
        ("SADD", "s", "1", "2", "-3"), ("OBJECT", "ENCODING", "s"), ("SADD", "s", "x"),
        ("OBJECT", "ENCODING", "s"), ("SREM", "s", "x"), ("OBJECT", "ENCODING", "s"),
        ("SADD", "s2", *[str(i) for i in range(512)]), ("OBJECT", "ENCODING", "s2"),
        ("SADD", "s2", "512"), ("OBJECT", "ENCODING", "s2"),
        ("SADD", "s3", "9223372036854775808"), ("OBJECT", "ENCODING", "s3"),
        ("ZADD", "z", "1", "a"), ("OBJECT", "ENCODING", "z"), ("ZADD", "z", "2", "y" * 65),
        ("OBJECT", "ENCODING", "z"), ("ZADD", "z2", *[x for i in range(129) for x in (str(i), f"m{i}")]),
        ("OBJECT", "ENCODING", "z2"), ("XADD", "x", "1-1", "f", "v"), ("OBJECT", "ENCODING", "x"),
        ("CONFIG", "SET", "set-max-intset-entries", "2"), ("SADD", "s4", "1", "2"),
        ("OBJECT", "ENCODING", "s4"), ("SADD", "s4", "3"), ("OBJECT", "ENCODING", "s4"),
        ("SADD", "s5", "1", "2", "3"), ("OBJECT", "ENCODING", "s5"),
        ("CONFIG", "SET", "set-max-intset-entries", "512"),
        ("HSET", "h5", "a", "1", "b", "2"), ("CONFIG", "SET", "hash-max-listpack-entries", "1"),
        ("OBJECT", "ENCODING", "h5"), ("HSET", "h5", "a", "2"), ("OBJECT", "ENCODING", "h5"),
        ("CONFIG", "SET", "hash-max-listpack-entries", "128"))


def test_object_refcount_of_shared_integers(pair):
    pair.run(("SET", "a", "100"), ("OBJECT", "REFCOUNT", "a"), ("SET", "b", "100000"),
             ("OBJECT", "REFCOUNT", "b"), ("RPUSH", "l", "x"), ("OBJECT", "REFCOUNT", "l"))


# --- expiry ----------------------------------------------------------------------------------------

def test_expire_family_options(pair):
    for name, amount in (("EXPIRE", "100"), ("PEXPIRE", "100000"), ("EXPIREAT", "9999999999"),
                         ("PEXPIREAT", "9999999999000")):
        bigger = str(int(amount) * 2)
        huge = str(int(amount) * 3)
        pair.both("SET", "k", "v")
        pair.run((name, "nope", amount), (name, "k", amount, "XX"), (name, "k", amount, "GT"),
                 (name, "k", amount, "LT"), ("TTL", "k"), ("PERSIST", "k"), (name, "k", amount, "NX"),
                 (name, "k", amount, "NX"), (name, "k", bigger, "XX"), (name, "k", amount, "GT"),
                 (name, "k", huge, "GT"), (name, "k", bigger, "GT"), (name, "k", amount, "LT"),
                 (name, "k", huge, "LT"), (name, "k", bigger, "lt", "xx"), (name, "k", amount, "NX", "XX"),
                 (name, "k", amount, "NX", "GT"), (name, "k", amount, "NX", "LT"),
                 (name, "k", amount, "GT", "LT"), (name, "k", amount, "FOO"), (name, "k", "x"),
                 (name, "k", "1.5"), (name, "k", "x", "FOO"), (name, "k", "x", "NX", "XX"), (name, "k"),
                 ("PERSIST", "k"), ("PERSIST", "k"), ("PERSIST", "nope"), ("TTL", "k"),
                 (name, "k", amount, "GT", "GT"), (name, "k", amount, "LT", "GT"),
                 (name, "k", amount, "nx\x00junk"), (name, "k", amount, "\x00"), (name, "k", amount, "é"))
    # equal absolute times are neither greater nor less
    pair.run(("PEXPIREAT", "k", "9999999999000"), ("PEXPIREAT", "k", "9999999999000", "GT"),
             ("PEXPIREAT", "k", "9999999999000", "LT"), ("EXPIREAT", "k", "9999999999", "LT"))


def test_expire_overflow_errors(pair):
    pair.both("SET", "k", "v")
    for name in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        for amount in ("9223372036854775807", "-9223372036854775808", "9223372036854775",
                       "9223372036854776", "-9223372036854775", "-9223372036854776", "9223370000000000000"):
            pair.both(name, "k", amount)
            pair.both("EXISTS", "k")
            pair.both("SET", "k", "v")


def test_expire_in_the_past_deletes(pair):
    for cmd in (("EXPIRE", "k", "0"), ("EXPIRE", "k", "-10"), ("PEXPIRE", "k", "-1"),
                ("EXPIREAT", "k", "1"), ("PEXPIREAT", "k", "0"), ("EXPIRE", "k", "-5", "LT"),
                ("EXPIRE", "k", "-5", "GT"), ("EXPIRE", "k", "-5", "NX")):
        pair.both("SET", "k", "v")
        pair.both(*cmd)
        pair.both("EXISTS", "k")


def test_ttl_commands(pair):
    pair.run(("TTL", "nope"), ("PTTL", "nope"), ("EXPIRETIME", "nope"), ("PEXPIRETIME", "nope"),
             ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
             ("PEXPIREAT", "k", "33177117420000"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
             ("PEXPIREAT", "k", "33177117420499"), ("EXPIRETIME", "k"), ("PEXPIREAT", "k", "33177117420500"),
             ("EXPIRETIME", "k"), ("EXPIRE", "k", "100"), ("TTL", "k"), ("TTL",), ("PTTL", "a", "b"))


def test_ttl_values(r, r2):
    for client in (r, r2):
        client.set("k", "v", px=10499)
        assert client.ttl("k") == 10
        assert 10000 < client.pttl("k") <= 10499
        client.pexpire("k", 1600)
        assert client.ttl("k") == 2
        client.expire("k", 100)
        assert abs(client.expiretime("k") - (time.time() + 100)) <= 2
        assert abs(client.pexpiretime("k") - (time.time() * 1000 + 100000)) <= 2000
        assert client.persist("k") is True and client.ttl("k") == -1


def test_lazy_expiry(r):
    r.set("k", "v", px=50)
    assert r.get("k") == b"v"
    time.sleep(0.1)
    assert r.get("k") is None
    assert r.exists("k") == 0 and r.ttl("k") == -2


def test_active_expiry_reclaims_keys(r):
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        pipe.set(f"k{i}", "v", px=50)
    for i in range(5):
        pipe.set(f"keep{i}", "v")
    pipe.execute()
    assert r.dbsize() == 305
    deadline = time.monotonic() + 5
    while r.dbsize() > 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.dbsize() == 5
    assert int(r.info("stats")["expired_keys"]) >= 300


def test_expire_then_watch(pair):
    pair.both("SET", "k", "v")
    with pair.connect() as other:
        watch_change_exec(pair, other, "k", ("EXPIRE", "k", "100"), ("GET", "k"))
        watch_change_exec(pair, other, "k", ("EXPIRE", "nope", "100"), ("GET", "k"))


# --- SORT ------------------------------------------------------------------------------------------

def setup_sort(pair):
    pair.run(("RPUSH", "nums", "3", "1", "2", "10", "-5", "2.5"),
             ("RPUSH", "words", "banana", "apple", "Cherry", "date", "apple"),
             ("SADD", "numset", "30", "4", "100", "7"), ("SADD", "wordset", "b", "a", "c"),
             ("ZADD", "z", "3", "c", "1", "a", "2", "b", "0", "d"),
             ("MSET", "w_3", "30", "w_1", "10", "w_2", "20", "w_10", "5", "w_-5", "50",
             "n_3", "three", "n_1", "one", "n_2", "two"),
             ("HSET", "h_3", "f", "1"), ("HSET", "h_1", "f", "3"), ("HSET", "h_2", "f", "2"),
             ("HSET", "h_10", "f", "-1"), ("HSET", "h_a", "f", "2"), ("HSET", "h_b", "f", "1"),
             ("HSET", "h_c", "f", "3"), ("HSET", "h_d", "f", "0"),
             ("MSET", "w_a", "3", "w_b", "2", "w_c", "1", "w_d", "1"))


SORT_CASES = [
    ("nums",), ("nums", "DESC"), ("nums", "ASC"), ("nums", "LIMIT", "1", "2"), ("nums", "LIMIT", "0", "0"),
    ("nums", "LIMIT", "-1", "2"), ("nums", "LIMIT", "2", "-1"), ("nums", "LIMIT", "10", "5"),
    ("nums", "LIMIT", "5", "100"), ("nums", "DESC", "LIMIT", "1", "3"), ("nums", "ALPHA"),
    ("nums", "ALPHA", "DESC"), ("words", "ALPHA"), ("words", "ALPHA", "DESC", "LIMIT", "1", "2"),
    ("words",), ("nums", "BY", "w_*"), ("nums", "BY", "w_*", "DESC"), ("nums", "BY", "nosort"),
    ("nums", "BY", "nosort", "DESC"), ("nums", "BY", "nosort", "LIMIT", "1", "3"),
    ("nums", "BY", "nosort", "DESC", "LIMIT", "1", "3"), ("nums", "BY", "h_*->f"),
    ("nums", "BY", "h_*->f", "DESC"), ("nums", "BY", "h_*->nofield"), ("nums", "BY", "h_*->"),
    ("nums", "BY", "n_*", "ALPHA"), ("nums", "BY", "n_*", "ALPHA", "DESC"), ("nums", "BY", "n_*"),
    ("nums", "GET", "#"), ("nums", "GET", "n_*"), ("nums", "GET", "#", "GET", "n_*", "GET", "h_*->f"),
    ("nums", "GET", "nostar"), ("nums", "GET", "w_*", "BY", "w_*", "LIMIT", "0", "2"),
    ("nums", "BY", "w_*", "GET", "#", "DESC", "LIMIT", "1", "10"), ("z",), ("z", "DESC"),
    ("z", "BY", "nosort"), ("z", "BY", "nosort", "DESC"), ("z", "BY", "nosort", "LIMIT", "1", "2"),
    ("z", "BY", "nosort", "DESC", "LIMIT", "1", "2"), ("z", "ALPHA"), ("z", "BY", "h_*->f"),
    ("z", "BY", "w_*", "GET", "#", "GET", "w_*"), ("numset",), ("numset", "DESC"), ("wordset", "ALPHA"),
    ("numset", "BY", "w_*"), ("wordset", "BY", "w_*"), ("wordset", "BY", "w_*", "ALPHA"),
    ("missing",), ("missing", "BY", "nosort"), ("missing", "GET", "#"), ("missing", "LIMIT", "0", "1"),
    ("words", "LIMIT", "0"), ("words", "LIMIT", "a", "1"), ("words", "LIMIT", "0", "b"),
    ("words", "FOO"), ("words", "BY"), ("words", "GET"), ("str",), ("hash",), ("nums", "STORE"),
    ("words", "ALPHA", "LIMIT", "-5", "-5"), ("nums", "BY", "w_*", "LIMIT", "1", "2"),
    ("numset", "limit", "1", "2", "desc"), ("numset", "ALPHA", "DESC"), ("nums", "BY", "nosort", "BY", "w_*"),
    ("nums", "BY", "w_*", "BY", "nosort"), ("nums", "LIMIT", "0", "9223372036854775807"),
    ("nums", "BY", "nosort", "DESC", "LIMIT", "-9223372036854775808", "2"), ("nums", "BY", "*"),
    ("nums", "GET", "h_*->"), ("nums", "GET", "h_*->f->g"), ("nums", "ASC", "DESC", "ALPHA", "ASC"),
]


@pytest.mark.parametrize("args", SORT_CASES)
def test_sort(pair, args):
    setup_sort(pair)
    pair.run(("SET", "str", "x"), ("HSET", "hash", "f", "v"))
    pair.both("SORT", *args)
    pair.both("SORT_RO", *args)


def test_sort_set_without_sorting_is_unordered(pair):
    setup_sort(pair)
    pair.run(("SORT", "numset", "BY", "nosort"), ("SORT", "wordset", "BY", "nosort", "GET", "#"),
             ("SORT", "wordset", "BY", "nosort", "ALPHA", "LIMIT", "0", "10"),
             ("SORT", "numset", "BY", "nosort", "DESC"),
             sort=True)


def test_sort_score_conversion_errors(pair):
    # (Redis leaves errno set after a score overflows, which fails later SORTs in the same process
    # until a system call resets it: the ERANGE cases come last.)
    pair.run(("RPUSH", "l", "1", "x", "2"), ("SORT", "l"), ("SORT", "l", "ALPHA"),
             ("RPUSH", "e", "", " 5", "0x10", "inf", "-inf", "1e3", "infinity", "0x1p3", "-.5e1"),
             ("SORT", "e"), ("RPUSH", "n", "nan"), ("SORT", "n"), ("RPUSH", "s", "5 "), ("SORT", "s"),
             ("RPUSH", "sp", "  "), ("SORT", "sp"), ("RPUSH", "tab", "\t5"), ("SORT", "tab"),
             ("MSET", "bad_1", "x"), ("RPUSH", "b", "1"), ("SORT", "b", "BY", "bad_*"),
             ("SORT", "b", "BY", "bad_*", "ALPHA"), ("RPUSH", "t", "3", "03", "3.0", "+3"), ("SORT", "t"),
             ("SORT", "t", "DESC"), ("RPUSH", "m", "1e400"), ("SORT", "m"), ("RPUSH", "u", "1e-310"),
             ("SORT", "u"))


def test_sort_store(pair):
    setup_sort(pair)
    pair.run(("SORT", "nums", "STORE", "out"), ("LRANGE", "out", "0", "-1"), ("TYPE", "out"),
             ("OBJECT", "ENCODING", "out"), ("SORT", "nums", "GET", "n_*", "STORE", "out"),
             ("LRANGE", "out", "0", "-1"),
             ("SORT", "nums", "GET", "#", "GET", "w_*", "LIMIT", "0", "2", "STORE", "out"),
             ("LRANGE", "out", "0", "-1"), ("SORT", "missing", "STORE", "out"), ("EXISTS", "out"),
             ("SET", "out", "x", "EX", "100"), ("SORT", "nums", "LIMIT", "0", "1", "STORE", "out"),
             ("TTL", "out"), ("SORT", "wordset", "BY", "nosort", "STORE", "out"),
             ("LRANGE", "out", "0", "-1"), ("SORT", "numset", "BY", "nosort", "DESC", "STORE", "out"),
             ("LRANGE", "out", "0", "-1"), ("SORT_RO", "nums", "STORE", "out"),
             ("SORT", "nums", "LIMIT", "0", "0", "STORE", "out"), ("EXISTS", "out"),
             ("SORT", "str", "STORE", "out"))
    pair.run(("SET", "str", "x"), ("SORT", "str", "STORE", "out"))


def test_sort_resp3(pair):
    setup_sort(pair)
    with pair.resp3():
        pair.run(("SORT", "nums", "GET", "n_*"), ("SORT", "nums", "STORE", "o"), ("SORT", "missing"))


def test_commands_do_not_crash_on_binary(pair):
    for cmd in (("KEYS", b"\x00\xff[\\"), ("SCAN", "0", "MATCH", b"[\xff-\x00]"),
                ("EXPIRE", "k", "1", b"\xff"), ("SORT", "k", "BY", b"\x00*"), ("OBJECT", b"\xff", "k")):
        pair.both(*cmd)
    with socket.create_connection(("127.0.0.1", pair.mem_port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"


# --- what is propagated to the append-only file (pure engine, no sockets) --------------------------

def test_expire_propagates_as_pexpireat_or_del():
    engine, client, aof = in_process()
    execute(engine, client, "SET", "k", "v")
    aof.entries.clear()
    before = int(time.time() * 1000)
    assert execute(engine, client, "EXPIRE", "k", "100") == 1
    (db, argv), = aof.entries
    assert db == 0 and argv[:2] == [b"PEXPIREAT", b"k"]
    assert before + 100000 <= int(argv[2]) <= before + 101000
    aof.entries.clear()
    assert execute(engine, client, "PEXPIREAT", "k", "99999999999999", "GT") == 1
    assert aof.entries == [(0, [b"PEXPIREAT", b"k", b"99999999999999", b"GT"])]
    aof.entries.clear()
    assert execute(engine, client, "EXPIRE", "k", "-1") == 1
    assert aof.entries == [(0, [b"DEL", b"k"])]
    aof.entries.clear()
    assert execute(engine, client, "EXPIRE", "k", "100") == 0          # no key: nothing to propagate
    assert execute(engine, client, "PERSIST", "k") == 0
    assert aof.entries == []


def test_lazy_expiry_propagates_del():
    engine, client, aof = in_process()
    execute(engine, client, "SET", "k", "v", "PX", "20")
    aof.entries.clear()
    time.sleep(0.03)
    assert execute(engine, client, "GET", "k") is None
    assert aof.entries == [(0, [b"DEL", b"k"])]


def test_keys_writes_propagation():
    engine, client, aof = in_process()
    execute(engine, client, "SET", "a", "1")
    aof.entries.clear()
    execute(engine, client, "RENAME", "a", "a")                       # same key: no change
    execute(engine, client, "DEL", "nope")
    execute(engine, client, "SORT", "nope", "STORE", "nope2")
    assert aof.entries == []
    execute(engine, client, "RENAME", "a", "b")
    execute(engine, client, "COPY", "b", "c", "DB", "3")
    execute(engine, client, "MOVE", "b", "2")
    execute(engine, client, "SWAPDB", "0", "1")
    assert [argv[0] for _db, argv in aof.entries] == [b"RENAME", b"COPY", b"MOVE", b"SWAPDB"]
    assert engine.dbs[3].data == {b"c": b"1"} and engine.dbs[2].data == {b"b": b"1"}


def test_keyspace_hits_and_misses(pair):
    def send(pair, *cmd):
        if cmd[0] in ("SCAN", "RANDOMKEY"):
            pair.each(*cmd)
        else:
            pair.both(*cmd, sort=cmd[0] == "KEYS")

    pair.run(("CONFIG", "RESETSTAT"), ("MSET", "a", "1", "b", "2", "c", "3"), ("RPUSH", "l", "x"))
    assert_counted_alike(pair, [
        ("SCAN", "0", "TYPE", "string"), ("SCAN", "0", "MATCH", "a", "TYPE", "list"), ("SCAN", "0"),
        ("KEYS", "*"), ("EXISTS", "a", "nope"), ("TYPE", "a"), ("TYPE", "nope"), ("OBJECT", "ENCODING", "a"),
        ("TTL", "a"), ("PTTL", "nope"), ("SORT", "nope"), ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "a"),
        ("RANDOMKEY",), ("TOUCH", "a", "nope"), ("GET", "a"), ("MGET", "a", "nope"), ("STRLEN", "a"),
        ("GETRANGE", "nope", "0", "1"), ("EXPIRE", "a", "100"), ("RENAME", "a", "a2"), ("COPY", "a2", "a3"),
        ("COPY", "nope", "x"), ("LCS", "a2", "nope"), ("BITCOUNT", "b"), ("BITPOS", "nope", "1"),
        ("GETBIT", "b", "1"), ("BITOP", "OR", "d", "b", "nope"), ("BITFIELD", "b", "GET", "u8", "0"),
        ("BITFIELD", "b", "SET", "u8", "0", "1"), ("SETBIT", "b", "1", "1"), ("INCR", "n"),
        ("APPEND", "b", "x"), ("SET", "b", "v", "GET"), ("GETEX", "b"), ("GETDEL", "b"),
        ("GETSET", "c", "1"), ("SETRANGE", "c", "1", "x"), ("INCRBYFLOAT", "c", "1"), ("PERSIST", "a2"),
        ("MOVE", "a2", "1"), ("DEL", "a3"), ("OBJECT", "FREQ", "nope")], send=send)
