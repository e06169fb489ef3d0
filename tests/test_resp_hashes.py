"""Hashes: the in-memory server against a real redis-server 7.0 (differential), plus
property checks of the random commands on both engines and in-process propagation checks."""

from __future__ import annotations

import random

import pytest
from resp_support import (
    Pair,
    assert_counted_alike,
    config_set,
    encoding,
    execute,
    in_process,
    pair_in_each_protocol,
    shape,
)

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


p = pair_in_each_protocol()


# --- basics ------------------------------------------------------------------------------------

def test_hset_hget_and_friends(p: Pair) -> None:
    assert p.both("HSET", "h", "f1", "v1") == (":", 1)
    assert p.both("HSET", "h", "f1", "v1b", "f2", "v2", "f3", "") == (":", 2)
    p.both("HSET", "h", "f2", "again", "f2", "twice")         # a field repeated in one call
    p.both("HGET", "h", "f1")
    p.both("HGET", "h", "f3")
    p.both("HGET", "h", "nope")
    p.both("HGET", "missing", "f1")
    p.both("HMGET", "h", "f1", "nope", "f2", "f1")
    p.both("HMGET", "missing", "a", "b")
    # Small hashes are listpacks: Redis keeps insertion order, so compare exactly.
    p.both("HGETALL", "h")
    p.both("HKEYS", "h")
    p.both("HVALS", "h")
    p.both("HGETALL", "missing")
    p.both("HKEYS", "missing")
    p.both("HVALS", "missing")
    p.both("HLEN", "h")
    p.both("HLEN", "missing")
    p.both("HSTRLEN", "h", "f1")
    p.both("HSTRLEN", "h", "f3")
    p.both("HSTRLEN", "h", "nope")
    p.both("HSTRLEN", "missing", "f")
    p.both("HEXISTS", "h", "f1")
    p.both("HEXISTS", "h", "nope")
    p.both("HEXISTS", "missing", "f1")
    assert p.both("HMSET", "h", "f4", "v4", "f1", "new") == ("+", "OK")
    p.both("HGETALL", "h")
    p.both("HSETNX", "h", "f1", "ignored")
    p.both("HSETNX", "h", "f5", "v5")
    p.both("HSETNX", "fresh", "f", "v")
    p.both("HGETALL", "fresh")
    p.both("HGET", "h", "f1")
    # Delete, re-add: the re-added field goes to the end as in a listpack.
    p.both("HDEL", "h", "f2", "nope", "f2")
    p.both("HSET", "h", "f2", "back")
    p.both("HGETALL", "h")
    p.both("HDEL", "missing", "f")
    # Binary-safe fields and values.
    p.both("HSET", "bin", b"\x00\xff\r\n", b"\r\n\x00", b"", b"empty-field")
    p.both("HGETALL", "bin")
    p.both("HSTRLEN", "bin", b"\x00\xff\r\n")


def test_hdel_removes_empty_hash(pair: Pair) -> None:
    pair.both("HSET", "h", "a", "1", "b", "2")
    assert pair.both("HDEL", "h", "a", "b", "c") == (":", 2)
    pair.both("HLEN", "h")
    # The key is gone: it can now hold a set.
    assert pair.both("SADD", "h", "x") == (":", 1)
    pair.both("HSET", "h2", "a", "1")
    pair.both("HDEL", "h2", "a")
    assert pair.both("SADD", "h2", "x") == (":", 1)


def test_hset_overwrites_keep_position(pair: Pair) -> None:
    pair.both("HSET", "h", *[x for i in range(10) for x in (f"f{i}", str(i))])
    pair.both("HSET", "h", "f3", "changed", "f0", "changed", "new", "1")
    pair.both("HINCRBY", "h", "f5", "10")
    pair.both("HINCRBYFLOAT", "h", "f6", "0.5")
    pair.both("HGETALL", "h")
    pair.both("HKEYS", "h")
    pair.both("HVALS", "h")


def test_big_hash_unordered(pair: Pair) -> None:
    fields = [x for i in range(300) for x in (f"field:{i}", f"value:{i}")]
    pair.both("HSET", "h", *fields)
    pair.both("HLEN", "h")
    pair.both("HGETALL", "h", sort=True)
    pair.both("HKEYS", "h", sort=True)
    pair.both("HVALS", "h", sort=True)
    pair.both("HDEL", "h", *[f"field:{i}" for i in range(0, 300, 3)])
    pair.both("HGETALL", "h", sort=True)
    pair.hello(3)
    pair.both("HGETALL", "h", sort=True)


# --- errors ------------------------------------------------------------------------------------

ARITY = [
    ("HSET",), ("HSET", "h"), ("HSET", "h", "f"), ("HSET", "h", "f", "v", "f2"),
    ("HMSET", "h", "f"), ("HMSET", "h", "f", "v", "g"),
    ("HSETNX", "h", "f"), ("HSETNX", "h", "f", "v", "x"),
    ("HGET", "h"), ("HGET", "h", "f", "x"), ("HMGET", "h"),
    ("HGETALL",), ("HGETALL", "h", "x"), ("HDEL", "h"), ("HLEN",), ("HLEN", "h", "x"),
    ("HSTRLEN", "h"), ("HEXISTS", "h"), ("HEXISTS", "h", "f", "x"), ("HKEYS",), ("HVALS", "h", "x"),
    ("HINCRBY", "h", "f"), ("HINCRBY", "h", "f", "1", "2"), ("HINCRBYFLOAT", "h", "f"),
    ("HRANDFIELD",), ("HSCAN", "h"),
]


@pytest.mark.parametrize("command", ARITY, ids=lambda c: " ".join(c))
def test_arity_errors(pair: Pair, command: tuple) -> None:
    pair.both("HSET", "h", "f", "v")
    reply = pair.both(*command)
    assert reply[0] == "-" and "wrong number of arguments" in reply[1]


WRONG_TYPE_COMMANDS = [
    ("HSET", "s", "f", "v"), ("HMSET", "s", "f", "v"), ("HSETNX", "s", "f", "v"), ("HGET", "s", "f"),
    ("HMGET", "s", "f"), ("HGETALL", "s"), ("HDEL", "s", "f"), ("HLEN", "s"), ("HSTRLEN", "s", "f"),
    ("HEXISTS", "s", "f"), ("HKEYS", "s"), ("HVALS", "s"), ("HINCRBY", "s", "f", "1"),
    ("HINCRBYFLOAT", "s", "f", "1"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "0"),
    ("HRANDFIELD", "s", "-3", "WITHVALUES"), ("HSCAN", "s", "0"), ("HSCAN", "s", "0", "COUNT", "0"),
]


@pytest.mark.parametrize("command", WRONG_TYPE_COMMANDS, ids=lambda c: " ".join(c))
def test_wrongtype(pair: Pair, command: tuple) -> None:
    pair.both("SADD", "s", "member")
    assert pair.both(*command) == ("-", WRONGTYPE)
    pair.both("SMEMBERS", "s")


def test_error_precedence(pair: Pair) -> None:
    pair.both("SADD", "s", "member")
    # Argument errors come before the type check.
    pair.both("HINCRBY", "s", "f", "x")
    pair.both("HINCRBYFLOAT", "s", "f", "x")
    pair.both("HINCRBYFLOAT", "s", "f", "inf")
    pair.both("HRANDFIELD", "s", "x")
    pair.both("HRANDFIELD", "s", "1", "bad")
    pair.both("HSCAN", "s", "x")
    pair.both("HSCAN", "missing", "x")
    # Scan options are only looked at for an existing hash.
    pair.both("HSCAN", "missing", "0", "COUNT", "0")
    pair.both("HSCAN", "missing", "0", "BAD")


# --- HINCRBY / HINCRBYFLOAT --------------------------------------------------------------------

def test_hincrby(pair: Pair) -> None:
    pair.both("HINCRBY", "h", "n", "5")
    pair.both("HINCRBY", "h", "n", "-12")
    pair.both("HINCRBY", "h", "n", "0")
    pair.both("HSET", "h", "max", "9223372036854775807", "min", "-9223372036854775808",
              "s", "abc", "f", "1.5", "sp", " 1", "lead", "01", "neg0", "-0", "big", "99999999999999999999")
    for field in ("max", "s", "f", "sp", "lead", "neg0", "big"):
        pair.both("HINCRBY", "h", field, "1")
    pair.both("HINCRBY", "h", "min", "-1")
    pair.both("HINCRBY", "h", "min", "9223372036854775807")
    pair.both("HINCRBY", "h", "max", "-9223372036854775808")
    for bad in ("x", "1.0", "", " 1", "9223372036854775808", "-9223372036854775809", "0x10", "+1"):
        pair.both("HINCRBY", "h", "n", bad)
    pair.both("HINCRBY", "new", "f", "-9223372036854775808")
    pair.both("HGETALL", "h")
    pair.both("HGETALL", "new")


FLOAT_INCREMENTS = [
    "0.1", "0.2", "-0.3", "1e-18", "5e-18", "7.5e-18", "-5e-18", "1.25e-17", "2.5e-17",
    "3.0000000000000000000001", "123456789.123456789", "1.1e20", "1e308", "-1e308", "1e400",
    "-1e400", "1e4932", "1.2e4932", "1e5000", "1e-4940", "1e-4960", "1e-5000", "0x10", "0x.8",
    "0X1P-1", "0x1p", "0x", "1e", "1e+", "1.e1", ".5", "+1", "-0", "00012", "5.", ".", "-",
    "inf", "-inf", "Infinity", "+INF", "nan", "-nan", "NaN(123)", "1_0", " 1", "1 ", "\t1", "1\n",
    "", "abc", "1\x00", "\x001", "1e+0001", "1E-2", "9" * 30, "0." + "0" * 40 + "1",
]


def test_hincrbyfloat_differential(p: Pair) -> None:
    for increment in FLOAT_INCREMENTS:
        p.both("HINCRBYFLOAT", "h", "acc", increment)
        p.both("HINCRBYFLOAT", "h", f"fresh:{increment}", increment)
        p.both("HSET", "h", "one", "1.5")
        p.both("HINCRBYFLOAT", "h", "one", increment)
    p.both("HGETALL", "h", sort=True)


def test_hincrbyfloat_existing_values(pair: Pair) -> None:
    values = ["1", "0x10", "1e3", "inf", "-inf", "nan", "1e4000", "-1e4932", " 1", "1 ", "", "abc",
              "1\x00abc", "10.50", "-0", "1" + "0" * 5118, "1" + "0" * 5119, "0." + "0" * 5117 + "1",
              "0." + "0" * 5118 + "1", "9223372036854775807"]
    for i, value in enumerate(values):
        pair.both("HSET", "h", f"f{i}", value)
        pair.both("HINCRBYFLOAT", "h", f"f{i}", "1")
        pair.both("HINCRBYFLOAT", "h", f"f{i}", "-1e4932")
        pair.both("HGET", "h", f"f{i}")


def test_hincrbyfloat_accumulates_like_long_double(pair: Pair) -> None:
    rng = random.Random(7)
    for _ in range(150):
        increment = rng.choice([
            f"{rng.uniform(-1000, 1000):.{rng.randint(0, 20)}f}",
            f"{rng.uniform(-1, 1):.6e}",
            str(rng.randint(-10**6, 10**6)),
            f"{rng.random():.3g}e{rng.randint(-30, 30)}",
        ])
        pair.both("HINCRBYFLOAT", "h", "x", increment)
        pair.both("HINCRBYFLOAT", "h", "y", increment)
        pair.both("HINCRBY", "h", "z", str(rng.randint(-1000, 1000)))
    pair.both("HGETALL", "h")


# --- HRANDFIELD --------------------------------------------------------------------------------

def test_hrandfield_deterministic_shapes(p: Pair) -> None:
    p.both("HSET", "h", "a", "1", "b", "2", "c", "3")
    p.both("HRANDFIELD", "missing")
    p.both("HRANDFIELD", "missing", "5")
    p.both("HRANDFIELD", "missing", "-5", "WITHVALUES")
    p.both("HRANDFIELD", "missing", "0")
    p.both("HRANDFIELD", "h", "0")
    p.both("HRANDFIELD", "h", "0", "WITHVALUES")
    # A count at least the size returns the whole hash in its (listpack) order.
    p.both("HRANDFIELD", "h", "3")
    p.both("HRANDFIELD", "h", "100")
    p.both("HRANDFIELD", "h", "3", "withvalues")
    p.both("HRANDFIELD", "h", "9223372036854775807")
    p.both("HSET", "one", "only", "v")
    p.both("HRANDFIELD", "one")
    p.both("HRANDFIELD", "one", "-3", "WITHVALUES")
    p.both("HRANDFIELD", "one", "1", "WITHVALUES")
    p.both("HRANDFIELD", "one", "-1")
    for count in ("x", "1.5", "", "9223372036854775808", "-9223372036854775808"):
        p.both("HRANDFIELD", "h", count)
    # Redis would stream 2**63 replies; the in-memory server refuses instead of exhausting memory.
    assert p.mem.call("HRANDFIELD", "h", "-9223372036854775807")[0] == "-"
    p.both("HRANDFIELD", "h", "9223372036854775807", "WITHVALUES")
    p.both("HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES")
    p.both("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES")
    p.both("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES")
    for command in (("HRANDFIELD", "h", "2"), ("HRANDFIELD", "h", "-5"),
                    ("HRANDFIELD", "h", "2", "WITHVALUES"), ("HRANDFIELD", "h", "-5", "WITHVALUES"),
                    ("HRANDFIELD", "h")):
        real, mem = p.each(*command)                       # random picks: compare shapes
        assert shape(real) == shape(mem), f"{command}: {real!r} vs {mem!r}"
    p.both("HRANDFIELD", "h", "1", "WITHVALUE")
    p.both("HRANDFIELD", "h", "1", "WITHVALUES", "x")


def test_hrandfield_properties(r, r2) -> None:
    mapping = {f"f{i}": f"v{i}" for i in range(40)}
    r.hset("h", mapping=mapping)
    fields = {k.encode() for k in mapping}
    for client, resp in ((r, 3), (r2, 2)):
        seen = set()
        for _ in range(300):
            seen.add(client.hrandfield("h"))
        assert seen <= fields and len(seen) > 30            # uniform enough to hit most fields
        for count in (1, 5, 39, 40, 41, 100):
            got = client.hrandfield("h", count)
            assert len(got) == min(count, 40)
            assert len(set(got)) == len(got) and set(got) <= fields
        for count in (-1, -5, -40, -200):
            got = client.hrandfield("h", count)
            assert len(got) == -count and set(got) <= fields
        got = client.hrandfield("h", -200)
        assert len(set(got)) > 1                             # repetitions allowed, not constant
        for count in (7, -7, 60):
            got = client.execute_command("HRANDFIELD", "h", count, "WITHVALUES")
            pairs = got if resp == 3 else [got[i:i + 2] for i in range(0, len(got), 2)]
            assert len(pairs) == (min(count, 40) if count > 0 else -count)
            for field, value in pairs:
                assert mapping[field.decode()] == value.decode()
            if count > 0:
                assert len({field for field, _ in pairs}) == len(pairs)


# --- HSCAN -------------------------------------------------------------------------------------

def test_hscan_small_hash_all_at_once(p: Pair) -> None:
    p.both("HSET", "h", *[x for i in range(50) for x in (f"k{i}", f"v{i}")])
    p.both("HSCAN", "h", "0")
    p.both("HSCAN", "h", "0", "COUNT", "1")
    p.both("HSCAN", "h", "0", "MATCH", "k1*")
    p.both("HSCAN", "h", "0", "match", "k[2-3]", "count", "3")
    p.both("HSCAN", "h", "0", "MATCH", "*")
    p.both("HSCAN", "h", "0", "MATCH", "nomatch")
    p.both("HSCAN", "h", "12345")
    p.both("HSCAN", "missing", "0")
    p.both("HSCAN", "missing", "77")
    for bad in (("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "x"), ("COUNT",), ("MATCH",), ("FOO", "bar"),
                ("TYPE", "string"), ("NOVALUES",)):
        p.both("HSCAN", "h", "0", *bad)
    for cursor in ("-1", "x", "18446744073709551616", "1.5", "", "+5", "-0", "+", "-", "007", " 1", "1 ",
                   "0x10", "-18446744073709551615", "-18446744073709551616", "0" * 30 + "1", "9" * 5000,
                   "\x00", "0\x00junk", "x\x00"):
        p.both("HSCAN", "h", cursor)
    p.both("HSCAN", "h", "18446744073709551615")


def test_hscan_big_hash_iterates_everything(r, r2) -> None:
    mapping = {f"key:{i}": f"val:{i}" for i in range(500)}
    r.hset("h", mapping=mapping)
    for client in (r, r2):
        for count, match in ((10, None), (7, "key:1*"), (1000, None), (1, None)):
            cursor, got, calls = 0, {}, 0
            while True:
                cursor, batch = client.hscan("h", cursor, match=match, count=count)
                got.update(batch)
                calls += 1
                if cursor == 0:
                    break
            expected = {k: v for k, v in mapping.items() if match is None or k.startswith("key:1")}
            assert {k.decode(): v.decode() for k, v in got.items()} == expected
            if count == 1000:
                assert calls == 1


def test_hscan_during_changes(r) -> None:
    r.hset("h", mapping={f"k{i}": i for i in range(300)})
    cursor, seen = 0, set()
    deleted = {f"k{i}".encode() for i in range(0, 300, 2)}
    first = True
    while True:
        cursor, batch = r.hscan("h", cursor, count=20)
        seen.update(batch)
        if first:
            r.hdel("h", *deleted)
            r.hset("h", mapping={f"new{i}": i for i in range(50)})
            first = False
        if cursor == 0:
            break
    # Every field present for the whole iteration is returned.
    assert {f"k{i}".encode() for i in range(1, 300, 2)} <= seen


# --- encodings ---------------------------------------------------------------------------------

def test_encoding_transitions(pair: Pair) -> None:
    pair.both("HSET", "small", "f", "x" * 64)
    assert encoding(pair, "small") == ("$", b"listpack")
    pair.both("HSET", "longval", "f", "x" * 65)
    encoding(pair, "longval")
    pair.both("HSET", "longfield", "f" * 65, "x")
    encoding(pair, "longfield")
    pair.both("HSET", "nx", "f", "1")
    pair.both("HSETNX", "nx", "f", "x" * 65)                 # not set: no conversion
    encoding(pair, "nx")
    pair.both("HSETNX", "nx", "g" * 65, "1")
    encoding(pair, "nx")
    # redis-server's built-in default is 512 entries (redis.conf's example says 128).
    pair.both("HSET", "entries", *[x for i in range(512) for x in (f"f{i}", "v")])
    assert encoding(pair, "entries") == ("$", b"listpack")
    pair.both("HSET", "entries", "one-more", "v")
    assert encoding(pair, "entries") == ("$", b"hashtable")
    pair.both("HDEL", "entries", *[f"f{i}" for i in range(500)])
    assert encoding(pair, "entries") == ("$", b"hashtable")   # never converts back
    pair.both("HSET", "incr", "f", "1")
    pair.both("HINCRBY", "incr", "g" * 65, "1")
    encoding(pair, "incr")
    pair.both("HSET", "fincr", "f", "1")
    pair.both("HINCRBYFLOAT", "fincr", "g" * 65, "1")
    encoding(pair, "fincr")
    pair.both("HSET", "many", *[x for i in range(513) for x in (f"f{i}", "v")])
    encoding(pair, "many")
    pair.both("HSET", "full", *[x for i in range(512) for x in (f"f{i}", "v")])
    pair.both("HINCRBY", "full", "counter", "1")
    encoding(pair, "full")


def test_encoding_follows_config(pair: Pair) -> None:
    try:
        config_set(pair, "hash-max-listpack-value", "2")
        pair.both("HINCRBY", "a", "f", "1000")
        encoding(pair, "a")
        pair.both("HSET", "b", "f", "1")
        pair.both("HINCRBYFLOAT", "b", "f", "1000")
        encoding(pair, "b")
        pair.both("HSET", "c", "ff", "12")
        encoding(pair, "c")
        config_set(pair, "hash-max-listpack-value", "64")
        config_set(pair, "hash-max-listpack-entries", "0")
        pair.both("HSET", "d", "f", "1")
        encoding(pair, "d")
        config_set(pair, "hash-max-listpack-entries", "3")
        pair.both("HSET", "e", "a", "1", "b", "2", "c", "3")
        encoding(pair, "e")
        pair.both("HSETNX", "e", "d", "4")
        encoding(pair, "e")
    finally:
        pair.each("CONFIG", "SET", "hash-max-listpack-value", "64")
        pair.each("CONFIG", "SET", "hash-max-listpack-entries", "512")


# --- random operations checked against the real server -----------------------------------------

def test_random_operations(pair: Pair) -> None:
    rng = random.Random(1234)
    keys = ["h1", "h2", "h3"]
    fields = [f"f{i}" for i in range(12)] + ["x" * 70]
    for _ in range(600):
        key = rng.choice(keys)
        op = rng.randrange(9)
        if op == 0:
            args = [x for _ in range(rng.randint(1, 4))
                    for x in (rng.choice(fields), str(rng.randint(0, 99)))]
            pair.both("HSET", key, *args)
        elif op == 1:
            pair.both("HDEL", key, *rng.sample(fields, rng.randint(1, 4)))
        elif op == 2:
            pair.both("HINCRBY", key, rng.choice(fields), str(rng.randint(-50, 50)))
        elif op == 3:
            pair.both("HINCRBYFLOAT", key, rng.choice(fields), f"{rng.uniform(-5, 5):.3f}")
        elif op == 4:
            pair.both("HSETNX", key, rng.choice(fields), "nx")
        elif op == 5:
            pair.both("HMGET", key, *rng.sample(fields, 3))
        elif op == 6:
            pair.both("HGETALL", key, sort=True)
        elif op == 7:
            pair.both("HLEN", key)
        else:
            pair.both("HSTRLEN", key, rng.choice(fields))
    for key in keys:
        pair.both("HGETALL", key, sort=True)


# --- propagation, WATCH and dirty tracking (in process) ----------------------------------------

def test_propagation() -> None:
    engine, client, aof = in_process()
    execute(engine, client, "HSET", "h", "a", "1", "b", "2")
    assert aof.commands[-1] == [b"HSET", b"h", b"a", b"1", b"b", b"2"]
    assert execute(engine, client, "HINCRBYFLOAT", "h", "f", "1.5") == b"1.5"
    assert aof.commands[-1] == [b"HSET", b"h", b"f", b"1.5"]
    assert execute(engine, client, "HINCRBYFLOAT", "h", "f", "0x1p-1") == b"2"
    assert aof.commands[-1] == [b"HSET", b"h", b"f", b"2"]
    count = len(aof.commands)
    execute(engine, client, "HDEL", "h", "nope")           # no change: nothing propagated
    execute(engine, client, "HSETNX", "h", "a", "x")
    execute(engine, client, "HGETALL", "h")
    execute(engine, client, "HRANDFIELD", "h", "-3")
    execute(engine, client, "HINCRBY", "h", "a", "x")
    assert len(aof.commands) == count
    execute(engine, client, "HDEL", "h", "a", "b", "f")
    assert aof.commands[-1] == [b"HDEL", b"h", b"a", b"b", b"f"]
    assert b"h" not in client.db.data


def test_watch_and_dirty() -> None:
    engine, client, _ = in_process()
    execute(engine, client, "HSET", "h", "a", "1")
    engine.watch(client, b"h")
    execute(engine, client, "HDEL", "h", "missing")
    execute(engine, client, "HSETNX", "h", "a", "2")
    assert not client.cas_dirty
    dirty = engine.dirty
    execute(engine, client, "HSET", "h", "a", "2", "b", "3", "c", "4")
    assert client.cas_dirty
    assert engine.dirty == dirty + 3                     # Redis counts one change per field
    dirty = engine.dirty
    execute(engine, client, "HDEL", "h", "a", "b", "c")
    assert engine.dirty == dirty + 3


def test_big_flag() -> None:
    engine, client, _ = in_process()
    engine.params.hash_max_listpack_entries = 128
    engine.params.hash_max_listpack_value = 64
    execute(engine, client, "HSET", "h", "a", "1")
    assert client.db.data[b"h"].big is False
    execute(engine, client, "HSET", "h", *[f"f{i}" for i in range(254)])
    assert client.db.data[b"h"].big is False             # 128 fields
    execute(engine, client, "HSET", "h", "x" * 64, "y" * 64)
    assert client.db.data[b"h"].big is True              # 129 fields
    execute(engine, client, "HSET", "h2", "f", "x" * 64)
    assert client.db.data[b"h2"].big is False
    execute(engine, client, "HINCRBYFLOAT", "h2", "g" * 65, "1")
    assert client.db.data[b"h2"].big is True
    execute(engine, client, "HDEL", "h", *[f"f{i}" for i in range(0, 254, 2)])
    assert client.db.data[b"h"].big is True


def test_keyspace_hits_and_misses(pair: Pair) -> None:
    """Read lookups count keyspace hits/misses (INFO stats) exactly as Redis counts them."""
    pair.both("HSET", "h", "f", "v")
    assert_counted_alike(pair, [
        ("HSET", "h", "g", "v"), ("HINCRBY", "h", "n", "1"), ("HINCRBYFLOAT", "h", "x", "1"),
        ("HSETNX", "h", "x", "1"), ("HDEL", "h", "zz"), ("HGET", "h", "f"), ("HGET", "nokey", "f"),
        ("HMGET", "nokey", "a"), ("HRANDFIELD", "h", "2"), ("HRANDFIELD", "nokey"), ("HSCAN", "h", "0"),
        ("HEXISTS", "h", "f"), ("HGETALL", "h"), ("HKEYS", "nokey"), ("HVALS", "h"), ("HSTRLEN", "h", "f"),
        ("HLEN", "nokey")], send=Pair.each)
