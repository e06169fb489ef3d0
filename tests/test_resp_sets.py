"""Sets: the in-memory server against a real redis-server 7.0 (differential), plus property
checks of the random commands on both engines and in-process propagation checks."""

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


def scan_both(pair: Pair, *args: str) -> tuple:
    """A one-call SSCAN on both servers: same cursor, same elements in any order."""
    real, mem = pair.each(*args)
    if real[0] == "*" and mem[0] == "*":
        real = ("*", [real[1][0], ("*", sorted(real[1][1][1]))])
        mem = ("*", [mem[1][0], ("*", sorted(mem[1][1][1]))])
    assert mem == real, f"{args!r}: redis-server answered {real!r}, in-memory answered {mem!r}"
    return real


p = pair_in_each_protocol()


def ints(*values: int) -> list[str]:
    return [str(v) for v in values]


# --- basics ------------------------------------------------------------------------------------

def test_sadd_srem_membership(p: Pair) -> None:
    assert p.both("SADD", "s", "3", "1", "2") == (":", 3)
    assert p.both("SADD", "s", "2", "4", "4") == (":", 1)
    p.both("SADD", "s", "1")
    p.both("SCARD", "s")
    p.both("SCARD", "missing")
    p.both("SISMEMBER", "s", "4")
    p.both("SISMEMBER", "s", "9")
    p.both("SISMEMBER", "missing", "9")
    p.both("SMISMEMBER", "s", "1", "9", "4", "1")
    p.both("SMISMEMBER", "missing", "1", "2")
    # An intset iterates in ascending numeric order: compare exactly.
    p.both("SMEMBERS", "s")
    p.both("SMEMBERS", "missing")
    p.both("SADD", "neg", "-5", "100", "-9223372036854775808", "9223372036854775807", "0", "7")
    p.both("SMEMBERS", "neg")
    p.both("SSCAN", "neg", "0")
    p.both("SADD", "s", "a", "b")
    p.both("SMEMBERS", "s", sort=True)
    p.both("SREM", "s", "a", "nope", "a", "1")
    p.both("SREM", "s", "nope")
    p.both("SREM", "missing", "x")
    p.both("SMEMBERS", "s", sort=True)
    p.both("SADD", "bin", b"\x00\r\n", b"", b"\xff")
    p.both("SMEMBERS", "bin", sort=True)
    p.both("SISMEMBER", "bin", b"")


def test_srem_removes_empty_set(pair: Pair) -> None:
    pair.both("SADD", "s", "a", "b")
    assert pair.both("SREM", "s", "a", "b", "c") == (":", 2)
    assert pair.both("HSET", "s", "f", "v") == (":", 1)      # the key is gone
    pair.both("SADD", "t", "1")
    pair.both("SPOP", "t")
    assert pair.both("HSET", "t", "f", "v") == (":", 1)


def test_integer_like_members_are_strings(pair: Pair) -> None:
    pair.both("SADD", "s", "1", "01", "+1", "-0", "0", " 1", "1.0", "0x1")
    pair.both("SCARD", "s")
    pair.both("SMEMBERS", "s", sort=True)
    pair.both("SISMEMBER", "s", "01")
    pair.both("SADD", "t", "9223372036854775807", "9223372036854775808")
    pair.both("SMEMBERS", "t", sort=True)


# --- errors ------------------------------------------------------------------------------------

ARITY = [
    ("SADD", "s"), ("SREM", "s"), ("SMEMBERS",), ("SMEMBERS", "s", "x"), ("SISMEMBER", "s"),
    ("SISMEMBER", "s", "a", "b"), ("SMISMEMBER", "s"), ("SCARD",), ("SCARD", "s", "x"), ("SPOP",),
    ("SRANDMEMBER",), ("SMOVE", "a", "b"), ("SMOVE", "a", "b", "c", "d"), ("SINTER",),
    ("SINTERCARD", "1"), ("SINTERSTORE", "d"), ("SUNION",), ("SUNIONSTORE", "d"), ("SDIFF",),
    ("SDIFFSTORE", "d"), ("SSCAN", "s"),
]


@pytest.mark.parametrize("command", ARITY, ids=lambda c: " ".join(c))
def test_arity_errors(pair: Pair, command: tuple) -> None:
    reply = pair.both(*command)
    assert reply[0] == "-" and "wrong number of arguments" in reply[1]


WRONG_TYPE_COMMANDS = [
    ("SADD", "h", "a"), ("SREM", "h", "a"), ("SMEMBERS", "h"), ("SISMEMBER", "h", "a"),
    ("SMISMEMBER", "h", "a"), ("SCARD", "h"), ("SPOP", "h"), ("SPOP", "h", "2"), ("SPOP", "h", "0"),
    ("SRANDMEMBER", "h"), ("SRANDMEMBER", "h", "2"), ("SRANDMEMBER", "h", "0"), ("SSCAN", "h", "0"),
    ("SSCAN", "h", "0", "COUNT", "0"),
    ("SMOVE", "h", "s", "a"), ("SMOVE", "s", "h", "a"), ("SMOVE", "h", "missing", "a"),
    ("SINTER", "s", "h"), ("SINTER", "h", "missing"), ("SINTER", "missing", "h"),
    ("SINTERSTORE", "d", "s", "h"), ("SINTERSTORE", "d", "missing", "h"),
    ("SUNION", "missing", "h"), ("SUNIONSTORE", "d", "s", "h"),
    ("SDIFF", "missing", "h"), ("SDIFF", "h", "s"), ("SDIFF", "s", "h"), ("SDIFFSTORE", "d", "missing", "h"),
    ("SINTERCARD", "2", "s", "h"), ("SINTERCARD", "2", "missing", "h"), ("SINTERCARD", "2", "h", "missing"),
]


@pytest.mark.parametrize("command", WRONG_TYPE_COMMANDS, ids=lambda c: " ".join(c))
def test_wrongtype(pair: Pair, command: tuple) -> None:
    pair.both("HSET", "h", "f", "v")
    pair.both("SADD", "s", "a", "b")
    pair.both("SADD", "d", "old")
    assert pair.both(*command) == ("-", WRONGTYPE)
    pair.both("SMEMBERS", "s", sort=True)
    pair.both("SMEMBERS", "d")                                # left alone


def test_argument_errors(pair: Pair) -> None:
    pair.both("SADD", "s", "1", "2", "3")
    pair.both("HSET", "h", "f", "v")
    for count in ("x", "-1", "1.5", "", "9223372036854775808", "-9223372036854775808"):
        pair.both("SPOP", "s", count)
        pair.both("SPOP", "h", count)                          # count checked before the type
    pair.both("SPOP", "s", "1", "2")
    pair.both("SPOP", "missing", "1", "2")
    for count in ("x", "1.5", "", "9223372036854775808", "-9223372036854775808"):
        pair.both("SRANDMEMBER", "s", count)
        pair.both("SRANDMEMBER", "h", count)
    pair.both("SRANDMEMBER", "s", "1", "2")
    pair.both("SRANDMEMBER", "s", "1", "WITHSCORES")
    pair.both("SCARD", "s")
    pair.both("SMEMBERS", "s")


def test_sintercard(pair: Pair) -> None:
    pair.both("SADD", "a", *ints(*range(20)))
    pair.both("SADD", "b", *ints(*range(10, 30)), "x")
    pair.both("SADD", "c", *ints(*range(0, 30, 2)), "x")
    pair.both("HSET", "h", "f", "v")
    for args in (("1", "a"), ("2", "a", "b"), ("3", "a", "b", "c"), ("2", "a", "missing"),
                 ("2", "b", "c"), ("1", "missing"), ("2", "a", "a"),
                 ("2", "a", "b", "LIMIT", "0"), ("2", "a", "b", "LIMIT", "3"),
                 ("2", "a", "b", "limit", "100"),
                 ("1", "a", "LIMIT", "1", "LIMIT", "5"), ("1", "a", "LIMIT", "5", "LIMIT", "0"),
                 ("0", "a"), ("-1", "a"), ("x", "a"), ("1.5", "a"), ("9223372036854775808", "a"),
                 ("3", "a", "b"),
                 ("9223372036854775807", "a"),
                 ("1", "a", "LIMIT"), ("1", "a", "LIMIT", "-1"), ("1", "a", "LIMIT", "x"), ("1", "a", "FOO"),
                 ("1", "a", "FOO", "1"), ("1", "a", "b"), ("1", "h", "LIMIT", "x"), ("1", "h", "BAD"),
                 ("2", "missing", "h"), ("1", "h")):
        pair.both("SINTERCARD", *args)


# --- SMOVE -------------------------------------------------------------------------------------

def test_smove(pair: Pair) -> None:
    pair.both("SADD", "src", "1", "2", "3")
    pair.both("SADD", "dst", "3", "4")
    pair.both("HSET", "h", "f", "v")
    pair.both("SMOVE", "src", "dst", "1")
    pair.both("SMOVE", "src", "dst", "3")                    # already in dst: still moved out of src
    pair.both("SMOVE", "src", "dst", "9")
    pair.both("SMOVE", "src", "src", "2")
    pair.both("SMOVE", "src", "src", "9")
    pair.both("SMOVE", "missing", "h", "1")                  # missing source answers 0 before type checks
    pair.both("SMOVE", "src", "new", "2")                    # creates the destination, empties src
    pair.both("SMEMBERS", "src")
    pair.both("SMEMBERS", "dst")
    pair.both("SMEMBERS", "new")
    pair.both("SMOVE", "dst", "new", "missing-member")
    assert pair.both("HSET", "src", "f", "v") == (":", 1)    # src was deleted when emptied


# --- SPOP / SRANDMEMBER ------------------------------------------------------------------------

def test_spop_srandmember_deterministic(p: Pair) -> None:
    p.both("SPOP", "missing")
    p.both("SPOP", "missing", "3")
    p.both("SPOP", "missing", "0")
    p.both("SRANDMEMBER", "missing")
    p.both("SRANDMEMBER", "missing", "3")
    p.both("SRANDMEMBER", "missing", "-3")
    p.both("SADD", "s", "5", "3", "1", "4")
    p.both("SPOP", "s", "0")
    p.both("SRANDMEMBER", "s", "0")
    # Counts covering the whole intset return it in order.
    p.both("SRANDMEMBER", "s", "4")
    p.both("SRANDMEMBER", "s", "100")
    p.both("SRANDMEMBER", "s", "9223372036854775807")
    p.both("SADD", "one", "x")
    p.both("SRANDMEMBER", "one")
    p.both("SRANDMEMBER", "one", "-3")
    p.both("SRANDMEMBER", "one", "1")
    p.both("SPOP", "one", "1")
    p.both("SADD", "one", "x")
    p.both("SPOP", "one")
    p.both("SPOP", "s", "4")
    p.both("SCARD", "s")
    p.both("SADD", "s", "9", "7", "8")
    p.both("SPOP", "s", "9223372036854775807")
    p.both("SADD", "m", "a", "b", "c")
    p.both("SPOP", "m", "10", sort=True)
    p.both("SCARD", "m")
    # Random picks: the same reply shapes (set vs array) and sizes on both servers.
    p.both("SADD", "r", "1", "2", "3", "a", "b")
    for command in (("SPOP", "r", "2"), ("SRANDMEMBER", "r", "2"), ("SRANDMEMBER", "r", "-7"), ("SPOP", "r")):
        real, mem = p.each(*command)
        assert shape(real) == shape(mem), f"{command}: {real!r} vs {mem!r}"
    # A hashtable set left with integers only: popping it all answers in intset order.
    p.both("SADD", "h", "x", "30", "10", "20")
    p.both("SREM", "h", "x")
    p.both("SPOP", "h", "3")


def test_srandmember_huge_negative_count_is_refused(pair: Pair) -> None:
    pair.both("SADD", "s", "a")
    # Redis would stream 2**63 replies; the in-memory server refuses instead of exhausting memory.
    assert pair.mem.call("SRANDMEMBER", "s", "-9223372036854775807")[0] == "-"


def test_spop_srandmember_properties(r, r2) -> None:
    members = {f"m{i}".encode() for i in range(50)} | {str(i).encode() for i in range(10)}
    for client in (r, r2):
        client.delete("s")
        client.sadd("s", *members)
        seen = set()
        pipe = client.pipeline(transaction=False)
        for _ in range(2000):
            pipe.srandmember("s")
        seen = set(pipe.execute())
        assert seen == members                                 # uniform enough to hit them all
        for count in (1, 5, 59, 60, 61, 1000):
            got = client.srandmember("s", count)
            assert len(got) == min(count, 60) and len(set(got)) == len(got) and set(got) <= members
        for count in (1, 5, 60, 300):
            got = client.srandmember("s", -count)
            assert len(got) == count and set(got) <= members
        assert len(set(client.srandmember("s", -300))) > 1
        remaining = set(members)
        popped = client.spop("s")
        assert popped in remaining
        remaining.discard(popped)
        for count in (3, 10, 1, 25):
            got = client.spop("s", count)
            assert len(got) == count and len(set(got)) == count and set(got) <= remaining
            remaining -= set(got)
            assert set(client.smembers("s")) == remaining
        got = client.spop("s", 100)
        assert set(got) == remaining
        assert client.scard("s") == 0 and client.spop("s") is None


def test_spop_with_count_every_strategy(r) -> None:
    # Few, many and nearly all members popped; an intset and a hashtable set.
    for template in ([str(i) for i in range(200)], [f"m{i}" for i in range(200)]):
        for count in (1, 10, 150, 170, 199):
            r.delete("s")
            r.sadd("s", *template)
            got = r.spop("s", count)
            left = r.smembers("s")
            assert len(got) == count == len(set(got))
            assert set(got) | left == {m.encode() for m in template}
            assert not set(got) & left


# --- set algebra -------------------------------------------------------------------------------

def test_set_algebra_intsets_in_order(p: Pair) -> None:
    p.both("SADD", "a", *ints(9, 1, 5, 3, 7, -2))
    p.both("SADD", "b", *ints(3, 4, 5, 6, 7, -2))
    p.both("SADD", "c", *ints(5, 7, 100))
    for command in ("SINTER", "SUNION", "SDIFF"):
        p.both(command, "a")
        p.both(command, "a", "b")
        p.both(command, "a", "b", "c")
        p.both(command, "b", "a")
        p.both(command, "a", "missing")
        p.both(command, "missing", "a")
        p.both(command, "missing")
        p.both(command, "a", "a")


def test_set_algebra_mixed(p: Pair) -> None:
    p.both("SADD", "a", "x", "y", "z", "1", "2")
    p.both("SADD", "b", "y", "2", "w")
    p.both("SADD", "n", "1", "2", "3")
    for command in ("SINTER", "SUNION", "SDIFF"):
        p.both(command, "a", "b", sort=True)
        p.both(command, "b", "a", "n", sort=True)
        p.both(command, "n", "a", sort=True)
        p.both(command, "a", "missing", "b", sort=True)
    # Results made only of integers come back as an intset would iterate them.
    p.both("SINTER", "n", "a")
    p.both("SDIFF", "n", "b")
    p.both("SDIFF", "a", "b", "n", sort=True)


def test_store_commands(pair: Pair) -> None:
    pair.both("SADD", "a", "1", "2", "3", "x")
    pair.both("SADD", "b", "2", "3", "4")
    pair.both("HSET", "h", "f", "v")
    for command in ("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"):
        pair.both(command, "dst", "a", "b")
        pair.both("SMEMBERS", "dst", sort=True)
        pair.both(command, "h", "a", "b")                      # overwrites a key of another type
        pair.both("SMEMBERS", "h", sort=True)
        pair.both("DEL", "h")
        pair.both("HSET", "h", "f", "v")
        pair.both(command, "a", "a", "b")                      # destination among the sources
        pair.both("SMEMBERS", "a", sort=True)
        pair.both("SADD", "a", "1", "2", "3", "x")
    # Empty results delete the destination.
    pair.both("SADD", "dst", "old")
    assert pair.both("SINTERSTORE", "dst", "a", "missing") == (":", 0)
    assert pair.both("HSET", "dst", "f", "v") == (":", 1)
    pair.both("DEL", "dst")
    pair.both("SADD", "dst", "old")
    assert pair.both("SDIFFSTORE", "dst", "b", "b") == (":", 0)
    assert pair.both("SUNIONSTORE", "dst", "missing", "missing2") == (":", 0)
    assert pair.both("SINTERSTORE", "never", "missing") == (":", 0)


def test_store_clears_ttl(pair: Pair) -> None:
    pair.both("SADD", "a", "1", "2")
    pair.both("SADD", "dst", "old")
    pair.both("EXPIRE", "dst", "100")
    pair.both("SUNIONSTORE", "dst", "a")
    pair.both("TTL", "dst")
    pair.both("EXPIRE", "a", "100")
    pair.both("SADD", "a", "9")
    pair.both("TTL", "a")                                     # in-place changes keep the TTL


# --- SSCAN -------------------------------------------------------------------------------------

def test_sscan_small_sets(p: Pair) -> None:
    p.both("SADD", "i", *ints(*range(100, 0, -3)))
    p.both("SSCAN", "i", "0")
    p.both("SSCAN", "i", "0", "COUNT", "2")
    p.both("SSCAN", "i", "0", "MATCH", "1*")
    p.both("SSCAN", "i", "0", "MATCH", "*0", "COUNT", "1")
    p.both("SSCAN", "i", "99")
    p.both("SSCAN", "missing", "0")
    p.both("SSCAN", "missing", "0", "MATCH")
    for bad in (("COUNT", "0"), ("COUNT", "x"), ("COUNT",), ("MATCH",), ("FOO", "bar"), ("TYPE", "set")):
        p.both("SSCAN", "i", "0", *bad)
    for cursor in ("-1", "x", "", "+3", "18446744073709551616", " 0", "\x00", "0\x00x", "-\x001"):
        p.both("SSCAN", "i", cursor)
    p.both("SADD", "m", "a", "b", "c")
    scan_both(p, "SSCAN", "m", "0", "MATCH", "[ab]")


def test_sscan_big_set_iterates_everything(r, r2) -> None:
    members = {f"member:{i}" for i in range(700)}
    r.sadd("s", *members)
    r.sadd("n", *range(1000))
    for client in (r, r2):
        for key, expected_all in (("s", members), ("n", {str(i) for i in range(1000)})):
            for count, match in ((10, None), (3, "*1*"), (5000, None)):
                cursor, got = 0, []
                while True:
                    cursor, batch = client.sscan(key, cursor, match=match, count=count)
                    got.extend(batch)
                    if cursor == 0:
                        break
                expected = {m for m in expected_all if match is None or "1" in m}
                assert {m.decode() for m in got} == expected


# --- encodings ---------------------------------------------------------------------------------

def test_encoding_transitions(pair: Pair) -> None:
    pair.both("SADD", "i", *ints(*range(512)))
    assert encoding(pair, "i") == ("$", b"intset")
    pair.both("SADD", "i", "512")
    assert encoding(pair, "i") == ("$", b"hashtable")
    pair.both("SREM", "i", *ints(*range(400)))
    assert encoding(pair, "i") == ("$", b"hashtable")        # never converts back
    pair.both("SADD", "s", "1", "a")
    encoding(pair, "s")
    pair.both("SREM", "s", "a")
    encoding(pair, "s")
    for value in ("-0", "01", "9223372036854775808", "-9223372036854775808", "1.5", " 1"):
        pair.both("SADD", f"v{value}", value)
        encoding(pair, f"v{value}")
    pair.both("SADD", "x", "1")
    pair.both("SADD", "x", "a")
    encoding(pair, "x")
    # Stores build a fresh set: an intset whenever the result allows.
    pair.both("SADD", "mixed", "a", "1", "2", "3")
    pair.both("SADD", "nums", "1", "2")
    pair.both("SINTERSTORE", "d1", "mixed", "nums")
    assert encoding(pair, "d1") == ("$", b"intset")
    pair.both("SUNIONSTORE", "d2", "mixed")
    encoding(pair, "d2")
    pair.both("SDIFFSTORE", "d3", "mixed", "nums")
    encoding(pair, "d3")
    pair.both("SDIFFSTORE", "d4", "i", "nums")
    encoding(pair, "d4")
    pair.both("SMOVE", "mixed", "d5", "3")
    assert encoding(pair, "d5") == ("$", b"intset")
    pair.both("SMOVE", "mixed", "d6", "a")
    encoding(pair, "d6")
    pair.both("SMOVE", "mixed", "nums", "1")
    encoding(pair, "nums")


def test_spop_rebuild_encoding(pair: Pair) -> None:
    # Popping nearly everything rebuilds the set from the remaining members: with integers
    # only left, Redis makes it an intset again, whichever members were popped.
    pair.both("SADD", "s", "a", "b", "c", *ints(*range(600)))
    assert encoding(pair, "s") == ("$", b"hashtable")
    real, mem = pair.each("SPOP", "s", "590")
    assert len(real[1]) == len(mem[1]) == 590
    real_left, mem_left = pair.real.call("SMEMBERS", "s")[1], pair.mem.call("SMEMBERS", "s")[1]
    real_enc, mem_enc = pair.each("OBJECT", "ENCODING", "s")

    def expected(left: list) -> bytes:
        return b"intset" if all(m[1].lstrip(b"-").isdigit() for m in left) else b"hashtable"

    assert real_enc[1] == expected(real_left) and mem_enc[1] == expected(mem_left)
    # Popping a smaller share keeps the encoding.
    pair.both("DEL", "t")
    pair.both("SADD", "t", "a", *ints(*range(20)))
    real, mem = pair.each("SPOP", "t", "10")
    assert len(real[1]) == len(mem[1]) == 10
    assert encoding(pair, "t") == ("$", b"hashtable")


def test_encoding_follows_config(pair: Pair) -> None:
    try:
        config_set(pair, "set-max-intset-entries", "0")
        pair.both("SADD", "a", "1")
        encoding(pair, "a")
        config_set(pair, "set-max-intset-entries", "3")
        pair.both("SADD", "b", "1", "2", "3")
        encoding(pair, "b")
        pair.both("SADD", "b", "4")
        encoding(pair, "b")
        pair.both("SADD", "c", "1", "2", "3", "4")
        pair.both("SINTERSTORE", "d", "c", "c")
        encoding(pair, "d")
    finally:
        pair.each("CONFIG", "SET", "set-max-intset-entries", "512")


# --- random operations checked against the real server -----------------------------------------

def test_random_operations(pair: Pair) -> None:
    rng = random.Random(99)
    keys = ["s1", "s2", "s3", "s4"]
    members = [str(i) for i in range(15)] + ["a", "b", "c"]
    for _ in range(700):
        key, other = rng.sample(keys, 2)
        op = rng.randrange(12)
        if op in (0, 1):
            pair.both("SADD", key, *rng.sample(members, rng.randint(1, 5)))
        elif op == 2:
            pair.both("SREM", key, *rng.sample(members, rng.randint(1, 4)))
        elif op == 3:
            pair.both("SMOVE", key, other, rng.choice(members))
        elif op == 4:
            pair.both(rng.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key, other, rng.choice(keys))
        elif op == 5:
            pair.both(rng.choice(["SINTER", "SUNION", "SDIFF"]), key, other, sort=True)
        elif op == 6:
            pair.both("SINTERCARD", "2", key, other, "LIMIT", str(rng.randint(0, 5)))
        elif op == 7:
            pair.both("SMISMEMBER", key, *rng.sample(members, 3))
        elif op == 8:
            pair.both("SCARD", key)
        elif op == 9:
            pair.both("SMEMBERS", key, sort=True)
        elif op == 10:
            pair.both("SISMEMBER", key, rng.choice(members))
        else:
            scan_both(pair, "SSCAN", key, "0", "COUNT", "100")
    for key in keys:
        pair.both("SMEMBERS", key, sort=True)


# --- propagation, WATCH and dirty tracking (in process) ----------------------------------------

def test_propagation() -> None:
    engine, client, aof = in_process()
    execute(engine, client, "SADD", "s", *[f"m{i}" for i in range(20)])
    assert aof.commands[-1][:3] == [b"SADD", b"s", b"m0"]
    count = len(aof.commands)
    execute(engine, client, "SADD", "s", "m1", "m2")                  # nothing new: not propagated
    execute(engine, client, "SREM", "s", "nope")
    execute(engine, client, "SMOVE", "s", "t", "nope")
    execute(engine, client, "SMOVE", "s", "s", "m1")
    execute(engine, client, "SPOP", "s", "0")
    execute(engine, client, "SPOP", "missing")
    execute(engine, client, "SRANDMEMBER", "s", "-5")
    assert len(aof.commands) == count
    popped = execute(engine, client, "SPOP", "s")
    assert aof.commands[-1] == [b"SREM", b"s", popped]
    popped = execute(engine, client, "SPOP", "s", "3")
    assert aof.commands[-1][:2] == [b"SREM", b"s"] and sorted(aof.commands[-1][2:]) == sorted(popped)
    popped = execute(engine, client, "SPOP", "s", "100")
    assert len(popped) == 16 and aof.commands[-1] == [b"DEL", b"s"]
    assert b"s" not in client.db.data
    execute(engine, client, "SADD", "big", *[str(i) for i in range(3000)])
    popped = execute(engine, client, "SPOP", "big", "2500")
    entries = aof.commands[-3:]
    assert [len(e) - 2 for e in entries] == [1024, 1024, 452]
    assert sorted(m for e in entries for m in e[2:]) == sorted(popped)


def test_watch_and_dirty() -> None:
    engine, client, _ = in_process()
    execute(engine, client, "SADD", "s", "a")
    engine.watch(client, b"s")
    execute(engine, client, "SADD", "s", "a")
    execute(engine, client, "SREM", "s", "b")
    execute(engine, client, "SMOVE", "s", "s", "a")
    assert not client.cas_dirty
    dirty = engine.dirty
    execute(engine, client, "SADD", "s", "b", "c", "d")
    assert client.cas_dirty and engine.dirty == dirty + 3
    dirty = engine.dirty
    execute(engine, client, "SREM", "s", "a", "b", "c", "d")
    assert engine.dirty == dirty + 4


def test_big_flag() -> None:
    engine, client, _ = in_process()
    engine.params.set_max_intset_entries = 512
    execute(engine, client, "SADD", "s", *[str(i) for i in range(512)])
    assert client.db.data[b"s"].big is False
    execute(engine, client, "SADD", "s", "512")
    assert client.db.data[b"s"].big is True
    execute(engine, client, "SREM", "s", *[str(i) for i in range(500)])
    assert client.db.data[b"s"].big is True
    execute(engine, client, "SADD", "t", "1", "x")
    execute(engine, client, "SREM", "t", "x")
    assert client.db.data[b"t"].big is True
    execute(engine, client, "SINTERSTORE", "u", "t", "t")
    assert client.db.data[b"u"].big is False


def test_keyspace_hits_and_misses(pair: Pair) -> None:
    """Read lookups count keyspace hits/misses (INFO stats) exactly as Redis counts them."""
    pair.both("SADD", "a", "1", "2")
    pair.both("SADD", "b", "2")
    assert_counted_alike(pair, [
        ("SINTERSTORE", "d", "a", "b", "nokey"), ("SUNIONSTORE", "d", "a", "nokey"),
        ("SDIFFSTORE", "d", "a", "nokey"), ("SINTER", "a", "b", "nokey"), ("SUNION", "a", "nokey"),
        ("SDIFF", "nokey", "a"), ("SINTERCARD", "2", "a", "nokey"), ("SMOVE", "a", "b", "1"),
        ("SADD", "a", "1"), ("SREM", "a", "zz"), ("SRANDMEMBER", "a"), ("SRANDMEMBER", "nokey", "3"),
        ("SSCAN", "a", "0"), ("SMISMEMBER", "a", "1"), ("SISMEMBER", "nokey", "1"), ("SCARD", "a"),
        ("SMEMBERS", "nokey"), ("SPOP", "nokey")], send=Pair.each)
