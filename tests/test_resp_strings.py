"""STRING and BITMAP commands: the in-memory server against a real redis-server, reply by reply."""

from __future__ import annotations

import time

import pytest
from resp_support import execute, in_process, pair_in_each_protocol, watch_change_exec

p = pair_in_each_protocol()


# --- SET / GET and the SET options ---------------------------------------------------------------

def test_set_get_basics(p):
    p.run(
        ("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", ""), ("GET", "k"),
        ("SET", "k", b"\x00\xffbin\r\n"), ("GET", "k"), ("STRLEN", "k"), ("STRLEN", "nope"),
        ("SET", "k"), ("GET",), ("GET", "a", "b"),
        ("RPUSH", "l", "x"), ("GET", "l"), ("SET", "l", "now-a-string"), ("GET", "l"), ("TYPE", "l"),
    )


@pytest.mark.parametrize("args", [
    ("NX",), ("XX",), ("GET",), ("NX", "GET"), ("XX", "GET"), ("NX", "NX"), ("GET", "GET"),
    ("NX", "XX"), ("XX", "NX"), ("KEEPTTL",), ("KEEPTTL", "EX", "10"), ("EX", "10", "KEEPTTL"),
    ("EX", "10", "PX", "100"), ("PX", "100", "EX", "10"), ("EX", "10", "EX", "20"),
    ("EXAT", "9999999999", "PXAT", "9999999999000"), ("PXAT", "1", "EX", "1"), ("EX",), ("PX",),
    ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("EXAT", "0"), ("PXAT", "-5"), ("EX", "abc"),
    ("EX", "1.5"), ("EX", "9223372036854775807"), ("EX", "9223372036854775"),
    ("PX", "9223372036854775807"), ("EXAT", "9223372036854775"), ("PERSIST",), ("FOO",),
    ("nx", "get", "ex", "100"), ("gEt", "xx", "keepttl"), ("EX", "10", "GET", "NX"),
])
def test_set_option_combinations(pair, args):
    pair.both("SET", "missing", "v", *args)
    pair.both("GET", "missing")
    pair.both("SET", "present", "old")
    pair.both("SET", "present", "new", *args)
    pair.both("GET", "present")
    pair.both("SET", "ttl", "old", "EX", "1000")
    pair.both("SET", "ttl", "new", *args)
    real, mem = pair.each("TTL", "ttl")
    assert (real[1] > 0) == (mem[1] > 0) and (real[1] == -2) == (mem[1] == -2)


def test_set_get_option_errors(pair):
    pair.both("RPUSH", "list", "a")
    pair.run(("SET", "list", "v", "GET"), ("SET", "list", "v", "GET", "EX", "0"),
             ("SET", "list", "v", "NX", "GET"), ("LRANGE", "list", "0", "-1"),
             ("SET", "list", "v", "XX"), ("GET", "list"))


def test_set_expiry_options(r):
    r.set("a", "v", ex=100)
    assert 98 <= r.ttl("a") <= 100
    r.set("a", "v", px=5000)
    assert 4900 <= r.pttl("a") <= 5000
    now = int(time.time())
    r.set("a", "v", exat=now + 50)
    assert 48 <= r.ttl("a") <= 50
    r.set("a", "v", pxat=(now + 60) * 1000)
    assert 58 <= r.ttl("a") <= 60
    r.set("a", "w", keepttl=True)
    assert 58 <= r.ttl("a") <= 60 and r.get("a") == b"w"
    r.set("a", "x")
    assert r.ttl("a") == -1
    r.set("a", "v", pxat=1)                   # in the past: gone
    assert r.get("a") is None and r.exists("a") == 0
    assert r.set("b", "v", px=50) is True
    time.sleep(0.12)
    assert r.get("b") is None


def test_setnx_setex_psetex(pair):
    pair.run(("SETNX", "k", "1"), ("SETNX", "k", "2"), ("GET", "k"), ("SETNX", "k"),
             ("SETEX", "e", "100", "v"), ("TTL", "e"), ("GET", "e"), ("SETEX", "e", "0", "v"),
             ("SETEX", "e", "-1", "v"), ("SETEX", "e", "x", "v"), ("SETEX", "e", "9223372036854775807", "v"),
             ("PSETEX", "p", "100000", "v"), ("GET", "p"), ("PSETEX", "p", "0", "v"),
             ("PSETEX", "p", "abc", "v"), ("SETEX", "e", "1"), ("PSETEX", "p"))
    real, mem = pair.each("PTTL", "p")
    assert abs(real[1] - mem[1]) < 1000


def test_getex(pair):
    pair.run(("GETEX", "nope"), ("GETEX", "nope", "EX", "10"), ("SET", "k", "v"),
             ("GETEX", "k"), ("TTL", "k"), ("GETEX", "k", "EX", "100"), ("TTL", "k"),
             ("GETEX", "k", "PERSIST"), ("TTL", "k"), ("GETEX", "k", "PX", "200000"),
             ("GETEX", "k", "EXAT", "99999999999"), ("GETEX", "k", "PXAT", "99999999999999"),
             ("EXPIRETIME", "k"), ("GETEX", "k", "EX", "0"), ("GETEX", "k", "EX", "-3"),
             ("GETEX", "k", "PX", "x"), ("GETEX", "k", "NX"), ("GETEX", "k", "KEEPTTL"),
             ("GETEX", "k", "GET"), ("GETEX", "k", "EX"), ("GETEX", "k", "EX", "1", "PX", "1"),
             ("GETEX", "k", "PERSIST", "EX", "1"), ("GETEX", "k", "EX", "1", "PERSIST"),
             ("GETEX", "k", "PERSIST", "PERSIST"), ("GETEX", "k", "EXAT", "1"), ("EXISTS", "k"),
             ("RPUSH", "l", "a"), ("GETEX", "l"), ("GETEX", "l", "EX", "5"), ("GETEX", "l", "EX", "x"),
             ("GETEX", "nope", "PXAT", "EX"), ("GETEX", "nope", "EX", "0"), ("GETEX",))


def test_getdel_getset(pair):
    pair.run(("GETDEL", "nope"), ("SET", "k", "v"), ("GETDEL", "k"), ("EXISTS", "k"),
             ("RPUSH", "l", "a"), ("GETDEL", "l"), ("GETSET", "l", "x"), ("GETSET", "k", "1"),
             ("GETSET", "k", "2"), ("GET", "k"), ("SET", "t", "v", "EX", "100"), ("GETSET", "t", "w"),
             ("TTL", "t"), ("GETDEL", "a", "b"), ("GETSET", "k"))


def test_mget_mset_msetnx(pair):
    pair.run(("MSET", "a", "1", "b", "2", "c", "3"), ("MGET", "a", "b", "c", "nope"),
             ("MSET", "a"), ("MSET", "a", "1", "b"), ("RPUSH", "l", "x"), ("MGET", "a", "l", "a"),
             ("MSETNX", "x", "1", "y", "2"), ("MSETNX", "x", "1", "z", "2"), ("MGET", "x", "y", "z"),
             ("MSETNX", "n", "1", "n", "2"), ("GET", "n"), ("MSETNX", "q"), ("MSETNX", "q", "1", "r"),
             ("MSET", "d", "1", "d", "2"), ("GET", "d"), ("MGET",))


# --- counters ------------------------------------------------------------------------------------

def test_incr_decr(pair):
    pair.run(("INCR", "n"), ("INCR", "n"), ("DECR", "n"), ("DECR", "m"), ("INCRBY", "n", "10"),
             ("INCRBY", "n", "-25"), ("DECRBY", "n", "5"), ("DECRBY", "n", "-7"), ("GET", "n"),
             ("INCRBY", "n", "x"), ("INCRBY", "n", "1.5"), ("INCRBY", "n", " 1"), ("INCRBY", "n", "+1"),
             ("INCRBY", "n", "01"), ("INCRBY", "n", "9223372036854775808"),
             ("DECRBY", "n", "-9223372036854775808"), ("DECRBY", "n", "9223372036854775807"),
             ("SET", "big", "9223372036854775807"), ("INCR", "big"), ("INCRBY", "big", "-1"),
             ("SET", "small", "-9223372036854775808"), ("DECR", "small"), ("INCRBY", "small", "-1"),
             ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"), ("SET", "s", "1 "),
             ("INCR", "s"), ("SET", "s", "-0"), ("INCR", "s"), ("SET", "s", "007"), ("INCR", "s"),
             ("SET", "s", ""), ("INCR", "s"), ("RPUSH", "l", "a"), ("INCR", "l"), ("DECRBY", "l", "1"),
             ("SET", "t", "5", "EX", "100"), ("INCR", "t"), ("TTL", "t"), ("INCR",), ("INCRBY", "n"))


@pytest.mark.parametrize("start,steps", [
    ("10.5", ["0.1"]), (None, ["3.0e3"]), (None, ["5.0e3"]), ("5.0e3", ["2.0e2"]),
    (None, ["3.0e3", "5.0e3"]), ("1", ["1"]), ("0", ["-0"]), ("-1", ["1"]), (None, ["0.1"] * 10),
    ("1.1", ["-1.1"]), ("3.14159", ["2.71828"]), (None, ["1e-5"]), (None, ["-1e-20"]),
    (None, ["1e308"]), (None, ["1e4000"]), (None, ["123456789012345678"]), ("0x10", ["1"]),
    (None, ["0x1p-3"]), ("1e", ["1"]), (None, ["1e"]), (None, ["inf"]), (None, ["-inf"]),
    (None, ["nan"]), (None, ["abc"]), (None, [" 1"]), (None, ["1 "]), (None, [""]), (None, ["."]),
    (None, ["+.5"]), (None, ["5."]), (None, ["1e5000"]), (None, ["1e-5000"]), ("abc", ["1"]),
    ("9223372036854775807", ["1"]), (None, ["0.1", "0.2", "0.3"]), ("1.5", ["1.5"]),
    (None, ["17976931348623157e292"]), (None, ["1e4932"]), (None, ["1.18e4932", "1.18e4932"]),
    (None, ["-3.3e-5", "7"]), ("2", ["-1e-17"]), (None, ["0.00000000000000001"]),
    (None, ["0.000000000000000005"]), (None, ["0.000000000000000015"]),
])
def test_incrbyfloat_exact_formatting(pair, start, steps):
    if start is not None:
        pair.both("SET", "f", start)
    for step in steps:
        pair.both("INCRBYFLOAT", "f", step)
    pair.both("GET", "f")


def test_incrbyfloat_errors_and_ttl(pair):
    pair.run(("RPUSH", "l", "a"), ("INCRBYFLOAT", "l", "1"), ("INCRBYFLOAT", "l", "x"),
             ("INCRBYFLOAT", "f"), ("SET", "t", "1.5", "EX", "100"), ("INCRBYFLOAT", "t", "1"),
             ("TTL", "t"), ("SET", "z", "1\x00x"), ("INCRBYFLOAT", "z", "1"))


# --- substrings ------------------------------------------------------------------------------------

def test_append_strlen(pair):
    pair.run(("APPEND", "k", "hello"), ("APPEND", "k", " world"), ("GET", "k"), ("STRLEN", "k"),
             ("APPEND", "k", ""), ("OBJECT", "ENCODING", "k"), ("APPEND", "n", "123"),
             ("OBJECT", "ENCODING", "n"), ("APPEND", "n", "4"), ("OBJECT", "ENCODING", "n"), ("INCR", "n"),
             ("RPUSH", "l", "a"), ("APPEND", "l", "x"), ("STRLEN", "l"), ("APPEND", "k"))


def test_append_is_not_visible_in_earlier_queued_replies(pair):
    pair.run(("SET", "k", "ab"), ("APPEND", "k", "c"), ("MULTI",), ("GET", "k"), ("APPEND", "k", "d"),
             ("GETRANGE", "k", "0", "-1"), ("EXEC",))


@pytest.mark.parametrize("name", ["GETRANGE", "SUBSTR"])
def test_getrange(pair, name):
    pair.both("SET", "k", "Hello World")
    pair.both("SET", "n", "12345")
    for start, end in [(0, 4), (0, -1), (-5, -1), (-1, -5), (5, 2), (0, 100), (100, 200), (-100, 2),
                       (-100, -50), (3, 3), (-3, 100), (0, 0), (-1, -1), (11, 11), (10, 10)]:
        pair.both(name, "k", start, end)
        pair.both(name, "n", start, end)
        pair.both(name, "missing", start, end)
    pair.run((name, "k", "a", "1"), (name, "k", "1", "b"), (name, "k", "0"),
             ("SET", "e", ""), (name, "e", "0", "-1"), ("RPUSH", "l", "x"), (name, "l", "0", "1"),
             (name, "k", "9223372036854775807", "9223372036854775807"),
             (name, "k", "-9223372036854775808", "-9223372036854775808"))


def test_setrange(pair):
    pair.run(("SETRANGE", "k", "0", "Hello"), ("SETRANGE", "k", "6", "World"), ("GET", "k"),
             ("SETRANGE", "k", "1", "a"), ("GET", "k"), ("SETRANGE", "k", "20", ""), ("GET", "k"),
             ("SETRANGE", "new", "3", ""), ("EXISTS", "new"), ("SETRANGE", "new", "3", "x"),
             ("GET", "new"), ("SETRANGE", "k", "-1", "x"), ("SETRANGE", "k", "x", "x"),
             ("SETRANGE", "k", "536870912", "x"), ("SETRANGE", "k", "536870911", "xy"),
             ("SETRANGE", "k", "536870911", ""), ("SETRANGE", "k", "9223372036854775807", "xx"),
             ("RPUSH", "l", "a"), ("SETRANGE", "l", "0", "x"), ("SETRANGE", "l", "-1", "x"),
             ("SETRANGE", "l", "0", ""), ("SET", "n", "123"), ("SETRANGE", "n", "1", "9"),
             ("OBJECT", "ENCODING", "n"), ("GET", "n"), ("SETRANGE", "k", "0"))


# --- LCS -----------------------------------------------------------------------------------------

RNA1 = ("CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGC"
        "TGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTG"
        "CTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTGACCGAAAGGTAAGATGGAGAGCCTTGTCC")
RNA2 = ("ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTG"
        "GCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATC"
        "TTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTGACCGAAAGGTAAGATGGAG")


def test_lcs(pair):
    pair.both("MSET", "a", "ohmytext", "b", "mynewtext", "r1", RNA1, "r2", RNA2, "e", "")
    for keys in [("a", "b"), ("b", "a"), ("r1", "r2"), ("a", "missing"), ("missing", "a"),
                 ("missing", "gone"), ("e", "a"), ("a", "a")]:
        for opts in [(), ("LEN",), ("IDX",), ("IDX", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", "4"),
                     ("IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", "-3"),
                     ("idx", "minmatchlen", "0", "withmatchlen")]:
            pair.both("LCS", *keys, *opts)
    pair.run(("LCS", "a", "b", "IDX", "LEN"), ("LCS", "a", "b", "LEN", "IDX"),
             ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
             ("LCS", "a", "b", "FOO"), ("RPUSH", "l", "x"), ("LCS", "a", "l"), ("LCS", "l", "a"),
             ("LCS", "a"))
    pair.hello(3)
    pair.both("LCS", "a", "b", "IDX", "WITHMATCHLEN")
    pair.both("LCS", "r1", "r2", "IDX", "MINMATCHLEN", "5")


def test_lcs_random_against_redis(pair):
    import random
    rng = random.Random(7)
    for _ in range(40):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        pair.both("MSET", "x", a, "y", b)
        pair.both("LCS", "x", "y")
        pair.both("LCS", "x", "y", "IDX", "WITHMATCHLEN")


def test_lcs_large_is_fast(pair):
    import random
    rng = random.Random(3)
    a = "".join(rng.choice("ACGT") for _ in range(3000))
    b = "".join(rng.choice("ACGT") for _ in range(3000))
    pair.both("MSET", "x", a, "y", b)
    started = time.monotonic()
    pair.mem.call("LCS", "x", "y", "IDX")
    assert time.monotonic() - started < 3
    pair.both("LCS", "x", "y", "LEN")
    pair.both("LCS", "x", "y", "IDX", "MINMATCHLEN", "6", "WITHMATCHLEN")


# --- bitmaps ---------------------------------------------------------------------------------------

def test_setbit_getbit(pair):
    pair.run(("SETBIT", "b", "7", "1"), ("GET", "b"), ("SETBIT", "b", "7", "0"), ("GETBIT", "b", "7"),
             ("SETBIT", "b", "100", "1"), ("STRLEN", "b"), ("GETBIT", "b", "100"), ("GETBIT", "b", "10000"),
             ("GETBIT", "nope", "3"), ("SETBIT", "b", "1", "2"), ("SETBIT", "b", "1", "-1"),
             ("SETBIT", "b", "1", "x"), ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "x", "1"),
             ("SETBIT", "b", "4294967296", "1"),
             ("GETBIT", "b", "-1"), ("GETBIT", "b", "4294967296"), ("GETBIT", "b", "x"),
             ("RPUSH", "l", "a"), ("SETBIT", "l", "0", "1"), ("GETBIT", "l", "0"), ("SETBIT", "l", "-1", "1"),
             ("SET", "n", "12"), ("SETBIT", "n", "0", "0"), ("OBJECT", "ENCODING", "n"), ("GET", "n"),
             ("SETBIT", "b", "1"), ("GETBIT", "b"))


def test_size_limits_follow_proto_max_bulk_len(pair):
    try:
        pair.run(("CONFIG", "SET", "proto-max-bulk-len", "1mb"), ("SET", "k", "abc"),
                 ("SETRANGE", "k", "1048575", "x"), ("STRLEN", "k"), ("SETRANGE", "k", "1048575", "xy"),
                 ("SETRANGE", "k", "1048576", "x"), ("APPEND", "k", "y"), ("SETBIT", "b", "8388607", "1"),
                 ("STRLEN", "b"), ("SETBIT", "b", "8388608", "1"), ("GETBIT", "b", "8388608"),
                 ("BITFIELD", "b", "SET", "u8", "#1048575", "1"), ("BITFIELD", "b", "GET", "u8", "#1048576"),
                 ("BITFIELD", "b", "SET", "u16", "8388607", "1"), ("STRLEN", "b"),
                 ("SET", "a", "x" * 600), ("LCS", "a", "a", "LEN"), ("SET", "a", "x" * 200),
                 ("LCS", "a", "a", "LEN"))
    finally:
        pair.each("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_setbit_unchanged_bit_does_not_touch_watch(pair):
    pair.both("SET", "k", "\xff")
    with pair.connect() as other:
        watch_change_exec(pair, other, "k", ("SETBIT", "k", "0", "1"), ("GET", "k"))
        watch_change_exec(pair, other, "k", ("SETBIT", "k", "0", "0"), ("GET", "k"))


@pytest.mark.parametrize("args", [
    (), ("0", "-1"), ("0", "0"), ("1", "1"), ("-2", "-1"), ("-1", "-2"), ("5", "30"), ("100", "200"),
    ("-100", "-50"), ("0", "-1", "BYTE"), ("0", "-1", "BIT"), ("5", "30", "BIT"), ("-3", "-1", "bit"),
    ("1", "12", "BIT"), ("7", "8", "BIT"), ("9", "9", "BIT"), ("-100", "5", "BIT"), ("0", "1", "FOO"),
    ("0",), ("a", "1"), ("0", "b"), ("0", "1", "BIT", "x"), ("-1", "-5", "BIT"),
])
def test_bitcount(pair, args):
    pair.both("SET", "k", "foobar\x00\xff\x81")
    pair.both("BITCOUNT", "k", *args)
    pair.both("BITCOUNT", "missing", *args)


def test_bitcount_wrongtype(pair):
    pair.run(("RPUSH", "l", "a"), ("BITCOUNT", "l"), ("BITCOUNT", "l", "0", "1"), ("BITCOUNT",))


@pytest.mark.parametrize("value", ["\xff\xf0\x00", "\x00\x00\x00", "\xff\xff\xff", "", "\x00\x0f\x80",
                                   "a"])
def test_bitpos(pair, value):
    pair.both("SET", "k", value)
    for bit in ("0", "1"):
        for args in [(), ("0",), ("1",), ("-1",), ("2",), ("10",), ("0", "-1"), ("1", "1"), ("0", "0"),
                     ("2", "1"), ("-2", "-1"), ("0", "-1", "BYTE"), ("0", "-1", "BIT"), ("3", "12", "BIT"),
                     ("7", "15", "BIT"), ("9", "9", "BIT"), ("-5", "-1", "BIT"), ("12", "23", "bit"),
                     ("0", "100", "BIT"), ("30", "40", "BIT")]:
            pair.both("BITPOS", "k", bit, *args)
        pair.both("BITPOS", "missing", bit)
        pair.both("BITPOS", "missing", bit, "1", "2")


def test_bitpos_errors(pair):
    pair.run(("SET", "k", "\x0f"), ("BITPOS", "k", "2"), ("BITPOS", "k", "-1"), ("BITPOS", "k", "x"),
             ("BITPOS", "missing", "2"), ("BITPOS", "k", "1", "x"), ("BITPOS", "k", "1", "0", "x"),
             ("BITPOS", "k", "1", "0", "1", "FOO"), ("BITPOS", "k", "1", "0", "1", "BIT", "x"),
             ("BITPOS", "missing", "1", "x"), ("RPUSH", "l", "a"), ("BITPOS", "l", "1"), ("BITPOS", "k"))


def test_bitop(pair):
    pair.run(("SET", "a", "\xff\x0f"), ("SET", "b", "\x0f"), ("SET", "c", "abc"),
             ("BITOP", "AND", "d", "a", "b"), ("GET", "d"), ("BITOP", "OR", "d", "a", "b", "c"), ("GET", "d"),
             ("BITOP", "XOR", "d", "a", "c"), ("GET", "d"), ("BITOP", "NOT", "d", "a"), ("GET", "d"),
             ("BITOP", "and", "d", "a", "missing"), ("GET", "d"), ("BITOP", "AND", "d", "missing"),
             ("EXISTS", "d"), ("SET", "d", "x"), ("BITOP", "OR", "d", "m1", "m2"), ("EXISTS", "d"),
             ("BITOP", "NOT", "d", "a", "b"), ("BITOP", "NOT", "d", "missing"), ("BITOP", "FOO", "d", "a"),
             ("BITOP", "ANDX", "d", "a"), ("RPUSH", "l", "x"), ("BITOP", "AND", "d", "a", "l"),
             ("BITOP", "AND", "l", "a"), ("TYPE", "l"), ("OBJECT", "ENCODING", "l"), ("BITOP", "AND", "d"),
             ("SET", "t", "x", "EX", "100"), ("BITOP", "OR", "t", "a"), ("TTL", "t"),
             ("BITOP", "NOT", "d", "d"), ("GET", "d"))


BITFIELD_CASES = [
    ("GET", "u8", "0"), ("GET", "i8", "0"), ("GET", "u4", "4"), ("GET", "i64", "0"), ("GET", "u63", "3"),
    ("GET", "i5", "#2"), ("GET", "u8", "1000"), ("SET", "u8", "0", "255"), ("SET", "u8", "0", "256"),
    ("SET", "i8", "0", "127"), ("SET", "i8", "0", "128"), ("SET", "i8", "0", "-129"),
    ("SET", "u8", "0", "-1"), ("SET", "i64", "0", "-9223372036854775808"), ("SET", "u2", "#3", "3"),
    ("INCRBY", "u2", "100", "1"), ("INCRBY", "u8", "0", "300"), ("INCRBY", "i8", "0", "-300"),
    ("INCRBY", "i64", "0", "9223372036854775807"), ("INCRBY", "u63", "0", "-1"),
    ("INCRBY", "i16", "#1", "-32768"), ("INCRBY", "u1", "7", "1"),
    ("OVERFLOW", "SAT", "INCRBY", "u8", "0", "300"), ("OVERFLOW", "SAT", "INCRBY", "u8", "0", "-300"),
    ("OVERFLOW", "SAT", "INCRBY", "i8", "0", "300"), ("OVERFLOW", "SAT", "INCRBY", "i8", "0", "-300"),
    ("OVERFLOW", "SAT", "SET", "u8", "0", "-1"), ("OVERFLOW", "SAT", "SET", "i4", "0", "100"),
    ("OVERFLOW", "SAT", "SET", "i4", "0", "-100"),
    ("OVERFLOW", "SAT", "INCRBY", "i64", "0", "9223372036854775807"),
    ("OVERFLOW", "SAT", "INCRBY", "i64", "0", "-9223372036854775808"),
    ("OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"), ("OVERFLOW", "FAIL", "SET", "i8", "0", "200"),
    ("OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1"), ("OVERFLOW", "fail", "INCRBY", "i3", "0", "-5"),
    ("OVERFLOW", "WRAP", "INCRBY", "i8", "0", "200"), ("OVERFLOW", "FAIL", "GET", "u8", "0"),
    ("OVERFLOW", "SAT", "SET", "u8", "0", "10", "OVERFLOW", "WRAP", "INCRBY", "u8", "0", "250",
     "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000", "GET", "u8", "0"),
    ("SET", "i8", "#0", "100", "SET", "i8", "#1", "-100", "GET", "u16", "0", "INCRBY", "i8", "#1", "-100"),
    ("OVERFLOW", "SAT", "INCRBY", "u63", "0", "9223372036854775807", "INCRBY", "u63", "0", "1"),
]


@pytest.mark.parametrize("ops", BITFIELD_CASES)
def test_bitfield(pair, ops):
    pair.both("SET", "k", "\xaa\x55\x0f\xf0\x81")
    pair.both("BITFIELD", "k", *ops)
    pair.both("GET", "k")
    pair.both("BITFIELD", "new", *ops)
    pair.both("GET", "new")
    if "SET" not in ops and "INCRBY" not in ops:
        pair.both("BITFIELD_RO", "k", *ops)


def test_bitfield_random_against_redis(pair):
    import random
    rng = random.Random(11)
    pair.both("SET", "k", "")
    for _ in range(150):
        signed = rng.random() < 0.5
        bits = rng.randint(1, 64 if signed else 63)
        kind = ("i" if signed else "u") + str(bits)
        offset = str(rng.randint(0, 80))
        overflow = rng.choice(["WRAP", "SAT", "FAIL"])
        op = rng.choice(["SET", "INCRBY", "GET"])
        value = str(rng.choice([rng.randint(-2**63, 2**63 - 1), rng.randint(-300, 300),
                                2**(bits - 1), -2**(bits - 1), 2**bits - 1]))
        if op == "GET":
            pair.both("BITFIELD", "k", "GET", kind, offset)
        else:
            pair.both("BITFIELD", "k", "OVERFLOW", overflow, op, kind, offset, value)
    pair.both("GET", "k")


def test_bitfield_errors(pair):
    pair.run(("SET", "k", "x"), ("BITFIELD", "k"), ("BITFIELD", "missing"), ("BITFIELD_RO", "k"),
             ("BITFIELD", "k", "GET"), ("BITFIELD", "k", "GET", "u8"), ("BITFIELD", "k", "GET", "x8", "0"),
             ("BITFIELD", "k", "GET", "u64", "0"), ("BITFIELD", "k", "GET", "i65", "0"),
             ("BITFIELD", "k", "GET", "i0", "0"), ("BITFIELD", "k", "GET", "u", "0"),
             ("BITFIELD", "k", "GET", "u8", "-1"), ("BITFIELD", "k", "GET", "u8", "x"),
             ("BITFIELD", "k", "GET", "u8", "#x"), ("BITFIELD", "k", "GET", "u8", "#-1"),
             ("BITFIELD", "k", "GET", "u8", "4294967296"), ("BITFIELD", "k", "GET", "u8", "4294967295"),
             ("BITFIELD", "k", "SET", "u8", "0"), ("BITFIELD", "k", "SET", "u8", "0", "x"),
             ("BITFIELD", "k", "INCRBY", "u8", "0", "1.5"), ("BITFIELD", "k", "OVERFLOW"),
             ("BITFIELD", "k", "OVERFLOW", "FOO", "GET", "u8", "0"), ("BITFIELD", "k", "FOO"),
             ("BITFIELD", "k", "GET", "u8", "0", "FOO"), ("BITFIELD_RO", "k", "SET", "u8", "0", "1"),
             ("BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"), ("BITFIELD_RO", "k", "OVERFLOW", "SAT"),
             ("BITFIELD_RO", "k", "GET", "u8", "0", "OVERFLOW", "WRAP"), ("GET", "k"), ("RPUSH", "l", "a"),
             ("BITFIELD", "l", "GET", "u8", "0"), ("BITFIELD", "l", "SET", "u8", "0", "1"),
             ("BITFIELD_RO", "l", "GET", "u8", "0"), ("BITFIELD",), ("BITFIELD_RO",),
             ("BITFIELD", "k", "GET", "i64", "#9223372036854775807"),
             ("BITFIELD", "k", "GET", "i8", "#536870912"))


def test_bitfield_resp3_and_fail_null(p):
    p.run(("SET", "k", "\x00"),
          ("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "7", "GET", "u2", "0"))


# --- encodings of strings -------------------------------------------------------------------------

def test_string_encodings(pair):
    pair.run(("SET", "a", "1"), ("OBJECT", "ENCODING", "a"), ("SET", "a", "-9223372036854775808"),
             ("OBJECT", "ENCODING", "a"), ("SET", "a", "9223372036854775808"), ("OBJECT", "ENCODING", "a"),
             ("SET", "a", "01"), ("OBJECT", "ENCODING", "a"), ("SET", "a", "x" * 44),
             ("OBJECT", "ENCODING", "a"), ("SET", "a", "x" * 45), ("OBJECT", "ENCODING", "a"),
             ("SET", "a", ""), ("OBJECT", "ENCODING", "a"), ("INCR", "c"), ("OBJECT", "ENCODING", "c"),
             ("OBJECT", "REFCOUNT", "c"), ("SET", "c", "123456"), ("OBJECT", "REFCOUNT", "c"),
             ("SET", "c", "9999"), ("OBJECT", "REFCOUNT", "c"), ("SET", "c", "10000"),
             ("OBJECT", "REFCOUNT", "c"), ("SET", "c", "-1"), ("OBJECT", "REFCOUNT", "c"),
             ("MSET", "m", "5", "n", "x"), ("OBJECT", "ENCODING", "m"), ("OBJECT", "ENCODING", "n"),
             ("GETSET", "m", "7"), ("OBJECT", "ENCODING", "m"), ("SETRANGE", "m", "0", "8"),
             ("OBJECT", "ENCODING", "m"), ("BITOP", "OR", "d", "n"), ("OBJECT", "ENCODING", "d"))


# --- what is propagated to the append-only file (pure engine, no sockets) --------------------------

def test_relative_and_float_writes_propagate_deterministically():
    engine, client, aof = in_process()
    before = int(time.time() * 1000)
    execute(engine, client, "SET", "k", "v", "EX", "100", "GET")
    execute(engine, client, "SETEX", "s", "10", "v")
    execute(engine, client, "PSETEX", "p", "10000", "v")
    execute(engine, client, "INCRBYFLOAT", "f", "10.5")
    execute(engine, client, "GETEX", "k", "PX", "5000")
    execute(engine, client, "GETEX", "k", "PERSIST")
    execute(engine, client, "GETEX", "k", "PERSIST")                   # no TTL left: nothing
    execute(engine, client, "GETEX", "k")                              # nothing
    execute(engine, client, "GETDEL", "s")
    execute(engine, client, "GETSET", "p", "w")
    execute(engine, client, "SET", "g", "v", "GET", "XX")              # XX fails: nothing
    execute(engine, client, "SET", "g", "v", "GET")
    execute(engine, client, "GETEX", "g", "EXAT", "1")
    got = [argv for _db, argv in aof.entries]
    assert [argv[0] for argv in got] == [b"SET", b"SET", b"SET", b"SET", b"PEXPIREAT", b"PERSIST", b"DEL",
                                         b"SET", b"SET", b"DEL"]
    assert got[0][:4] == [b"SET", b"k", b"v", b"PXAT"] and before + 100000 <= int(got[0][4]) < before + 101000
    assert got[1][:4] == [b"SET", b"s", b"v", b"PXAT"]
    assert got[3] == [b"SET", b"f", b"10.5", b"KEEPTTL"]
    assert got[4][:2] == [b"PEXPIREAT", b"k"] and before + 5000 <= int(got[4][2]) < before + 6000
    assert got[6] == [b"DEL", b"s"] and got[7] == [b"SET", b"p", b"w"]
    assert got[8] == [b"SET", b"g", b"v"] and got[9] == [b"DEL", b"g"]


def test_noop_writes_are_not_propagated():
    engine, client, aof = in_process()
    execute(engine, client, "SET", "k", b"\xff")
    aof.entries.clear()
    execute(engine, client, "SETNX", "k", "x")
    execute(engine, client, "MSETNX", "k", "x", "j", "y")
    execute(engine, client, "SETBIT", "k", "0", "1")                   # already 1
    execute(engine, client, "BITOP", "AND", "dest", "nope")            # nothing to delete
    execute(engine, client, "SETRANGE", "nope", "3", "")
    execute(engine, client, "BITFIELD", "k", "GET", "u8", "0")
    assert aof.entries == []
    execute(engine, client, "BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000")
    execute(engine, client, "BITFIELD", "k", "SET", "u8", "0", "255")
    assert aof.entries == []
    execute(engine, client, "SETBIT", "k", "0", "0")
    execute(engine, client, "BITFIELD", "k", "INCRBY", "u8", "0", "1")
    assert [argv[0] for _db, argv in aof.entries] == [b"SETBIT", b"BITFIELD"]


def test_bitfield_signals_only_real_changes(pair):
    with pair.connect() as other:
        pair.both("SET", "x", "a")
        for cmd in (("BITFIELD", "x", "SET", "u8", "0", "98"), ("BITFIELD", "x", "SET", "u8", "0", "98"),
                    ("BITFIELD", "x", "INCRBY", "u8", "0", "0"), ("BITFIELD", "x", "INCRBY", "i8", "0", "1"),
                    ("BITFIELD", "x", "GET", "u8", "0"),
                    ("BITFIELD", "x", "OVERFLOW", "FAIL", "INCRBY", "u8", "100", "1000"),
                    ("BITFIELD", "x", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000",
                     "SET", "u8", "0", "99"),
                    ("SETRANGE", "x", "0", "c"), ("SETRANGE", "x", "0", ""), ("APPEND", "x", ""),
                    ("PERSIST", "x"), ("BITOP", "OR", "x", "x")):
            watch_change_exec(pair, other, "x", cmd)
        pair.both("GET", "x")
        watch_change_exec(pair, other, "n",
                          ("BITFIELD", "n", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000"))
        pair.both("GET", "n")
