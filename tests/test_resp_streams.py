"""Streams: differential tests against a real redis-server (RESP2 and RESP3), and behavioural
tests per engine for what differs by nature (generated ids, times, blocking)."""

from __future__ import annotations

import re
import time

import pytest
from resp_support import (
    Pair,
    assert_counted_alike,
    client_id,
    connect,
    execute,
    in_process,
    pair_in_each_protocol,
)

p = pair_in_each_protocol()


def fill(pair: Pair, key: str, n: int, start: int = 1, fields=("f", "v")) -> None:
    for i in range(start, start + n):
        pair.both("XADD", key, f"{i}-1", *fields)


# --- masks for volatile values (idle times, delivery times) --------------------------------------

def mask_keys(*names: bytes):
    """Zero the integer values that follow the given map keys, at any depth."""
    def walk(reply):
        kind, value = reply
        if not isinstance(value, list):
            return reply
        out = []
        zero_next = False
        for item in value:
            if zero_next and item[0] == ":":
                out.append((":", 0))
            else:
                out.append(walk(item))
            zero_next = item[0] == "$" and item[1] in names
        return kind, out
    return walk


def mask_pending_rows(reply):
    """XPENDING extended rows: [id, consumer, idle, count] -> idle 0."""
    kind, rows = reply
    if not isinstance(rows, list):
        return reply
    return kind, [("*", [row[1][0], row[1][1], (":", 0),
                         row[1][3]]) if row[0] == "*" else row for row in rows]


def mask_full(reply):
    """XINFO STREAM FULL: seen-time, and the delivery times inside pending lists."""
    def walk(value, inside=None):
        kind, items = value
        if not isinstance(items, list):
            return value
        out = []
        previous = None
        for item in items:
            if previous in (b"pending",) and item[0] == "*":
                rows = []
                for row in item[1]:
                    fields = list(row[1])
                    if len(fields) == 4:        # group PEL: id, consumer, time, count
                        fields[2] = (":", 0)
                    elif len(fields) == 3:      # consumer PEL: id, time, count
                        fields[1] = (":", 0)
                    rows.append(("*", fields))
                out.append(("*", rows))
            elif previous == b"seen-time":
                out.append((":", 0))
            else:
                out.append(walk(item))
            previous = item[1] if item[0] == "$" else None
        return kind, out
    return walk(reply)


# --- XADD and ids -------------------------------------------------------------------------------

def test_xadd_explicit_ids_and_errors(p):
    p.both("XADD", "s", "1-1", "a", "1")
    p.both("XADD", "s", "1-2", "a", "2", "b", "3")
    p.both("XADD", "s", "1-2", "a", "1")                 # equal
    p.both("XADD", "s", "1-1", "a", "1")                 # smaller
    p.both("XADD", "s", "0-5", "a", "1")
    p.both("XADD", "s", "5", "a", "1")                   # ms only: seq 0
    p.both("XADD", "s", "5", "a", "1")
    p.both("XADD", "s", "5-*", "a", "1")                 # next seq of the same ms
    p.both("XADD", "s", "4-*", "a", "1")                 # earlier ms
    p.both("XADD", "s", "9-*", "a", "1")                 # new ms: seq 0
    p.both("XADD", "n", "0-0", "a", "1")
    p.both("XADD", "n", "0", "a", "1")
    p.both("EXISTS", "n")
    p.both("XADD", "n", "0-*", "a", "1")
    p.both("XADD", "n", "0-*", "a", "1")
    p.both("XRANGE", "s", "-", "+")
    p.both("XRANGE", "n", "-", "+")
    p.both("XLEN", "s")
    # arity and odd field lists
    p.both("XADD", "s", "10-1", "a")
    p.both("XADD", "s", "10-1", "a", "b", "c")
    p.both("XADD", "s", "*")
    p.both("XADD", "s")
    p.both("XADD", "s", "NOMKSTREAM", "NOMKSTREAM", "NOMKSTREAM")
    # wrong type
    p.both("SET", "str", "x")
    p.both("XADD", "str", "1-1", "a", "b")
    p.both("XADD", "str", "NOMKSTREAM", "1-1", "a", "b")


@pytest.mark.parametrize("raw", [
    "1-", "-1", "1-2-3", "1--5", "1--05", " 1-1", "+1-1", "01-01", "1- 1", "1-+1", "a-1", "1-a",
    "18446744073709551615-18446744073709551615", "18446744073709551616-0", "1-18446744073709551616",
    "18446744073709551615", "9223372036854775808-1", "-", "+", "*-1", "1-**", "1*", "",
    "1" * 128, "1" * 127, "1\x00-5", "2-3\x00xyz", "1-*",
])
def test_id_parsing(pair, raw):
    pair.both("XADD", "s", raw, "f", "v")
    pair.both("XRANGE", "s", "-", "+")
    pair.both("XRANGE", "s", raw, "+")
    pair.both("XRANGE", "s", "-", raw)
    pair.both("XDEL", "s", raw)


def test_xadd_exhausted_and_max_ids(p):
    top = "18446744073709551615-18446744073709551615"
    p.both("XADD", "s", "18446744073709551615-18446744073709551614", "a", "1")
    p.both("XADD", "s", "18446744073709551615-*", "a", "1")
    p.both("XADD", "s", "18446744073709551615-*", "a", "1")
    p.both("XADD", "s", "*", "a", "1")
    p.both("XADD", "s", top, "a", "1")
    p.both("XRANGE", "s", "-", "+")
    p.both("XRANGE", "s", "(" + top, "+")
    p.both("XADD", "t", "5-18446744073709551615", "a", "1")
    p.both("XADD", "t", "5-*", "a", "1")
    real, mem = p.each("XADD", "t", "*", "a", "1")      # the clock: compare the shape only
    assert real[0] == mem[0] == "$" and real[1].endswith(b"-0") and mem[1].endswith(b"-0")


def test_xadd_nomkstream(p):
    p.both("XADD", "s", "NOMKSTREAM", "1-1", "a", "b")
    p.both("EXISTS", "s")
    p.both("XADD", "s", "nomkstream", "*", "a", "b")
    p.both("XADD", "s", "1-1", "a", "b")
    p.both("XADD", "s", "NOMKSTREAM", "2-1", "a", "b")
    p.both("XADD", "s", "NOMKSTREAM", "MAXLEN", "1", "3-1", "a", "b")
    p.both("XRANGE", "s", "-", "+")


def test_xadd_generated_ids(r):
    ids = [r.xadd("s", {"f": i}) for i in range(50)]
    before = int(time.time() * 1000)
    assert all(re.fullmatch(rb"\d+-\d+", i) for i in ids)
    parsed = [tuple(map(int, i.split(b"-"))) for i in ids]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)
    assert abs(parsed[-1][0] - before) < 5000
    # a last id in the future: `*` continues from it
    r.xadd("f", {"a": 1}, id="99999999999999-5")
    assert r.xadd("f", {"a": 2}) == b"99999999999999-6"
    # ms-* on the current top ms continues its sequence
    assert r.xadd("f", {"a": 3}, id="99999999999999-*") == b"99999999999999-7"
    assert r.xlen("s") == 50


# --- XRANGE / XREVRANGE ---------------------------------------------------------------------------

def test_xrange_xrevrange(p):
    for ms in range(1, 6):
        for seq in range(3):
            p.both("XADD", "s", f"{ms}-{seq}", "f", f"{ms}.{seq}", "g", "x")
    for cmd in ("XRANGE", "XREVRANGE"):
        lo, hi = ("-", "+")
        p.both(cmd, "s", lo, hi) if cmd == "XRANGE" else p.both(cmd, "s", hi, lo)
        for a, b in [("2", "3"), ("2-1", "4-1"), ("(2-1", "(4-1"), ("(2", "4"), ("-", "(3-0"), ("(1-2", "+"),
                     ("3", "3"), ("4", "2"), ("(3-1", "(3-2"), ("(3-1", "3-1"), ("0", "0"), ("6", "+")]:
            args = (a, b) if cmd == "XRANGE" else (b, a)
            p.both(cmd, "s", *args)
            p.both(cmd, "s", *args, "COUNT", "2")
            p.both(cmd, "s", *args, "count", "1", "COUNT", "100")
        p.both(cmd, "s", "-", "+", "COUNT", "0")
        p.both(cmd, "s", "+", "-", "COUNT", "0")
        p.both(cmd, "s", "-", "+", "COUNT", "-3")
        p.both(cmd, "missing", "-", "+", "COUNT", "0")
        p.both(cmd, "missing", "-", "+")
        p.both(cmd, "s", "-", "+", "COUNT")
        p.both(cmd, "s", "-", "+", "COUNT", "x")
        p.both(cmd, "s", "-", "+", "LIMIT", "1")
        p.both(cmd, "s", "(", "+")
        p.both(cmd, "s", "(-", "+")
        p.both(cmd, "s", "-", "(+")
        p.both(cmd, "s", "((1", "+")
        p.both(cmd, "s", "x", "+")
        p.both(cmd, "s", "-")
    p.both("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+")
    p.both("XRANGE", "s", "-", "(0-0")
    p.both("XREVRANGE", "s", "(0-0", "-")
    p.both("XRANGE", "s", "(18446744073709551615", "+")
    p.both("XRANGE", "s", "-", "(0")
    p.both("SET", "str", "x")
    p.both("XRANGE", "str", "-", "+")
    p.both("XRANGE", "str", "x", "+")
    p.both("XREVRANGE", "str", "+", "-")
    p.both("XLEN", "str")
    p.both("XLEN", "missing")


# --- XDEL / XLEN --------------------------------------------------------------------------------

def test_xdel(p):
    fill(p, "s", 10)
    p.both("XDEL", "s", "1-1")
    p.both("XDEL", "s", "1-1")
    p.both("XDEL", "s", "5-1", "6-1", "5-1", "99-1")
    p.both("XDEL", "s", "10-1")
    p.both("XDEL", "s", "2-1", "bad")
    p.both("XDEL", "s", "-")
    p.both("XDEL", "s", "+")
    p.both("XDEL", "s", "3")
    p.both("XLEN", "s")
    p.both("XRANGE", "s", "-", "+")
    p.both("XINFO", "STREAM", "s")
    p.both("XDEL", "s", "2-1", "4-1", "7-1", "8-1", "9-1")
    p.both("XINFO", "STREAM", "s")
    p.both("EXISTS", "s")                 # empty streams stay
    p.both("XADD", "s", "10-1", "a", "b")
    p.both("XADD", "s", "11-1", "a", "b")
    p.both("XINFO", "STREAM", "s")
    p.both("XDEL", "missing", "1-1")
    p.both("XDEL", "missing", "junk")
    p.both("SET", "str", "x")
    p.both("XDEL", "str", "1-1")
    p.both("XDEL", "s")


def test_xdel_nodes(p):
    """Deleting entries keeps their room in the node; a node goes when its last entry does."""
    fill(p, "s", 250)
    for i in range(101, 201):
        p.both("XDEL", "s", f"{i}-1")
    p.both("XINFO", "STREAM", "s")
    p.both("XADD", "s", "300-1", "f", "v")
    p.both("XINFO", "STREAM", "s")
    for i in range(1, 100):
        p.both("XDEL", "s", f"{i}-1")
    p.both("XINFO", "STREAM", "s")
    p.both("XTRIM", "s", "MAXLEN", "~", "0")
    p.both("XINFO", "STREAM", "s")
    p.both("XRANGE", "s", "-", "+", "COUNT", "3")


# --- trimming -----------------------------------------------------------------------------------

def test_xtrim_exact(p):
    fill(p, "s", 20)
    p.both("XTRIM", "s", "MAXLEN", "15")
    p.both("XTRIM", "s", "MAXLEN", "=", "12")
    p.both("XTRIM", "s", "MAXLEN", "100")
    p.both("XTRIM", "s", "MINID", "10")
    p.both("XTRIM", "s", "MINID", "=", "12-1")
    p.both("XTRIM", "s", "minid", "12-2")
    p.both("XRANGE", "s", "-", "+")
    p.both("XINFO", "STREAM", "s")
    p.both("XTRIM", "s", "MAXLEN", "0")
    p.both("XINFO", "STREAM", "s")
    p.both("XTRIM", "missing", "MAXLEN", "0")


def test_xtrim_errors(p):
    fill(p, "s", 3)
    for args in (["MAXLEN"], ["MAXLEN", "~"], ["MAXLEN", "x"], ["MAXLEN", "-1"], ["MAXLEN", "~", "-1"],
                 ["MINID", "x"], ["MINID", "-"], ["MINID", "+"], ["MAXLEN", "1", "MINID", "1"],
                 ["MAXLEN", "1", "LIMIT", "1"], ["MAXLEN", "~", "1", "LIMIT", "-1"],
                 ["MAXLEN", "~", "1", "LIMIT", "x"], ["LIMIT", "5"], ["LIMIT", "0"], ["FOO"], [],
                 ["MAXLEN", "=", "1", "extra"], ["*"], ["NOMKSTREAM", "MAXLEN", "1"],
                 ["MAXLEN", "1", "MAXLEN", "2"], ["MAXLEN", "~", "~"], ["MAXLEN", "=", "~", "1"]):
        p.both("XTRIM", "s", *args)
        p.both("XTRIM", "missing", *args)
    p.both("SET", "str", "x")
    p.both("XTRIM", "str", "MAXLEN", "1")
    p.both("XTRIM", "str", "MAXLEN", "x")


def test_xadd_trim_options(p):
    for i in range(1, 11):
        p.both("XADD", "s", "MAXLEN", "5", f"{i}-1", "f", "v")
    p.both("XRANGE", "s", "-", "+")
    p.both("XADD", "s", "MINID", "9", "11-1", "f", "v")
    p.both("XADD", "s", "MAXLEN", "=", "2", "12-1", "f", "v")
    p.both("XADD", "s", "MAXLEN", "0", "13-1", "f", "v")
    p.both("XINFO", "STREAM", "s")
    p.both("XADD", "s", "MINID", "~", "100", "LIMIT", "10", "14-1", "f", "v")
    p.both("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "0", "15-1", "f", "v")
    p.both("XRANGE", "s", "-", "+")
    for args in (["MAXLEN", "1", "LIMIT", "5"], ["MAXLEN", "-1"], ["LIMIT", "5"], ["MINID", "1", "MAXLEN",
                                                                                   "1"],
                 ["MAXLEN", "x"], ["MAXLEN"], ["MINID"], ["LIMIT"], ["MAXLEN", "~"], ["MINID", "~", "+"]):
        p.both("XADD", "s", *args, "20-1", "f", "v")
        p.both("XADD", "s", *args, "*", "f", "v")
    p.both("XADD", "s", "LIMIT", "0", "21-1", "f", "v")
    p.both("XADD", "s", "MAXLEN", "~", "1", "MAXLEN", "5", "22-1", "f", "v")
    p.both("XLEN", "s")


@pytest.mark.parametrize("value", ["v", "12345", "x" * 30, "y" * 200, "z" * 1500])
def test_approximate_trim_matches_nodes(pair, value):
    """MAXLEN ~ removes whole nodes only (stream-node-max-entries 100, -max-bytes 4096)."""
    for i in range(1, 1001):
        pair.both("XADD", "s", "MAXLEN", "~", "555", f"{i}-{i % 7}", "field", value, "n", str(i))
    pair.both("XLEN", "s")
    info = pair.both("XINFO", "STREAM", "s")
    assert info[0] == "*"
    pair.both("XTRIM", "s", "MAXLEN", "~", "100")
    pair.both("XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "150")
    pair.both("XTRIM", "s", "MINID", "~", "900")
    pair.both("XLEN", "s")
    pair.both("XINFO", "STREAM", "s")
    pair.both("XTRIM", "s", "MINID", "950")
    pair.both("XRANGE", "s", "-", "+", "COUNT", "2")
    pair.both("XINFO", "STREAM", "s")


def test_approximate_trim_mixed_fields(pair):
    """Entries whose fields differ from their node's first entry take more room."""
    for i in range(1, 600):
        fields = ["a", "1"] if i % 3 else ["b" * (i % 50), "2" * (i % 40), "c", "-" + str(i * 1000)]
        pair.both("XADD", "s", f"{i * 1000}-{i * 7 % 5}", *fields)
    pair.both("XDEL", "s", "5000-0", "6000-2")
    pair.both("XINFO", "STREAM", "s")
    pair.both("XTRIM", "s", "MAXLEN", "~", "300")
    pair.both("XTRIM", "s", "MINID", "~", "450000")
    pair.both("XLEN", "s")
    pair.both("XINFO", "STREAM", "s")


def test_approximate_trim_1000_entries_default_limit(pair):
    for i in range(1, 1001):
        pair.both("XADD", "s", f"{i}-0", "f", "v")
    assert pair.both("XTRIM", "s", "MAXLEN", "~", "1") == (":", 900)
    pair.both("XLEN", "s")
    for i in range(1001, 2001):
        pair.both("XADD", "s", f"{i}-0", "f", "v")
    pair.both("XADD", "s", "MAXLEN", "~", "10", "3000-0", "f", "v")
    pair.both("XLEN", "s")
    pair.both("XINFO", "STREAM", "s")


# --- XREAD --------------------------------------------------------------------------------------

def test_xread_sync(p):
    fill(p, "a", 5)
    fill(p, "b", 3, start=10)
    p.both("XREAD", "STREAMS", "a", "0")
    p.both("XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0")
    p.both("XREAD", "COUNT", "0", "STREAMS", "a", "b", "3", "11")
    p.both("XREAD", "COUNT", "-5", "STREAMS", "a", "b", "3", "11")
    p.both("XREAD", "STREAMS", "a", "b", "5-1", "12-1")
    p.both("XREAD", "STREAMS", "a", "b", "$", "$")
    p.both("XREAD", "STREAMS", "a", "missing", "b", "0", "0", "0")
    p.both("XREAD", "STREAMS", "missing", "0")
    p.both("XREAD", "streams", "a", "4")
    p.both("XREAD", "BLOCK", "100", "STREAMS", "a", "3")
    p.both("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "3")
    p.both("XDEL", "a", "5-1")
    p.both("XREAD", "STREAMS", "a", "4-1")               # last valid entry is 4-1
    p.both("XREAD", "STREAMS", "a", "3-1")
    p.both("XREAD", "STREAMS", "a", "18446744073709551615-18446744073709551615")


def test_xread_errors(p):
    fill(p, "a", 2)
    p.both("SET", "str", "x")
    for args in (["STREAMS", "a"], ["STREAMS", "a", "b", "0"], ["COUNT", "1"], ["COUNT", "x", "STREAMS",
                                                                                "a", "0"],
                 ["BLOCK", "x", "STREAMS", "a", "0"], ["BLOCK", "-1", "STREAMS", "a", "0"],
                 ["BLOCK", "1.5", "STREAMS", "a", "0"], ["FOO", "STREAMS", "a", "0"],
                 ["GROUP", "g", "c", "STREAMS", "a", "0"], ["NOACK", "STREAMS", "a", "0"],
                 ["STREAMS", "a", ">"], ["STREAMS", "a", "x"], ["STREAMS", "a", "-"], ["STREAMS", "a", "+"],
                 ["STREAMS", "str", "0"], ["STREAMS", "a", "str", "0", "0"], ["STREAMS", "str", "a", "x",
                                                                              "0"],
                 ["COUNT", "1", "COUNT"], ["STREAMS", "a", "b", "c"], ["BLOCK"], ["BLOCK", "0"],
                 ["STREAMS", "a", "(1"], ["BLOCK", "0", "STREAMS", "str", "$"], ["BLOCK", "0", "STREAMS",
                                                                                 "a", "str", "$", "$"]):
        p.both("XREAD", *args)
    p.both("XREAD")
    p.both("XREAD", "STREAMS")


def test_xread_inside_multi(p):
    fill(p, "a", 2)
    p.both("MULTI")
    p.both("XREAD", "BLOCK", "0", "STREAMS", "a", "$")
    p.both("XREAD", "BLOCK", "0", "STREAMS", "a", "0")
    p.both("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", ">")
    p.both("EXEC")
    p.both("XGROUP", "CREATE", "a", "g", "$")
    p.both("MULTI")
    p.both("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", ">")
    p.both("XADD", "a", "9-1", "f", "v")
    p.both("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", ">")
    p.both("EXEC")


def test_xread_block_served_by_xadd(p):
    other = p.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    other.quiet(0.1)
    p.both("SET", "unrelated", "1")
    p.both("XADD", "s", "1-1", "f", "v")
    other.read(2)
    # `$` is the last id at call time: entries added before are not served
    p.both("XADD", "s", "2-1", "f", "v")
    p.send_blocking(other, "XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "s", "$")
    other.quiet(0.1)
    p.both("XDEL", "s", "1-1")
    p.both("XSETID", "s", "5-5")
    other.quiet(0.1)
    p.both("XADD", "s", "6-1", "f", "v")
    other.read(2)
    # an explicit id: served as soon as something newer arrives
    p.send_blocking(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "other", "7-0", "$")
    other.quiet(0.1)
    p.both("XADD", "other", "1-1", "a", "b")
    other.read(2)
    other.close()


def test_xread_block_timeout_and_replacement(p):
    other = p.block("XREAD", "BLOCK", "150", "STREAMS", "s", "$")
    assert other.read(2) in (("*", None), ("_", None))
    # a key replaced by another type does not wake XREAD; a new stream does
    p.send_blocking(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    p.both("SET", "s", "x")
    other.quiet(0.1)
    p.both("DEL", "s")
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    other.quiet(0.1)
    p.both("XADD", "s", "3-3", "a", "b")
    other.read(2)
    other.close()


def test_xread_block_serves_the_key_that_woke_it(p):
    for group in (False, True):
        if group:
            p.both("XGROUP", "CREATE", "a", "g", "$", "MKSTREAM")
            p.both("XGROUP", "CREATE", "b", "g", "$", "MKSTREAM")
            args = ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", "b", ">", ">")
        else:
            args = ("XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$")
        other = p.block(*args)
        p.both("MULTI")
        p.both("XADD", "b", f"{10 + group}-1", "f", "v")
        p.both("XADD", "a", f"{10 + group}-1", "f", "v")
        p.both("XADD", "b", f"{10 + group}-2", "f", "v")
        p.both("EXEC")
        other.read(2)
        p.send_blocking(other, *args)
        p.both("XDEL", "a", "10-1")          # no append: no wake-up
        p.both("XADD", "a", f"{20 + group}-1", "f", "v")
        other.read(2)
        other.close()


def test_xread_block_multi_and_fifo(p):
    first = p.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    second = p.block("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "0")
    first.quiet(0.1)
    p.both("MULTI")
    p.both("XADD", "s", "1-1", "f", "v")
    p.both("XADD", "s", "2-1", "f", "v")
    p.both("EXEC")
    first.read(2)
    second.read(2)
    first.close()
    second.close()


# --- XGROUP -------------------------------------------------------------------------------------

def test_xgroup_create_and_errors(p):
    p.both("XGROUP", "CREATE", "s", "g", "$")
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    p.both("XLEN", "s")
    fill(p, "s", 3)
    p.both("XGROUP", "CREATE", "s", "g2", "0")
    p.both("XGROUP", "CREATE", "s", "g3", "$", "ENTRIESREAD", "2")
    p.both("XGROUP", "CREATE", "s", "g4", "1-1", "entriesread", "-1", "mkstream")
    p.both("XGROUP", "CREATE", "s", "g5", "2", "ENTRIESREAD", "-2")
    p.both("XGROUP", "CREATE", "s", "g5", "2", "ENTRIESREAD", "x")
    p.both("XGROUP", "CREATE", "s", "g5", "2", "ENTRIESREAD")
    p.both("XGROUP", "CREATE", "s", "g5", "-")
    p.both("XGROUP", "CREATE", "s", "g5", "+")
    p.both("XGROUP", "CREATE", "s", "g5", "x")
    p.both("XGROUP", "CREATE", "s", "g5", "99-99")
    p.both("XGROUP", "CREATE", "s", "g6", "0", "FOO")
    p.both("XGROUP", "CREATE", "s", "g6", "0", "MKSTREAM", "MKSTREAM", "MKSTREAM", "MKSTREAM")
    p.both("XGROUP", "CREATE", "s")
    p.both("XGROUP", "CREATE", "missing", "g", "0")
    p.both("XGROUP", "create", "missing2", "g", "bad", "MKSTREAM")
    p.both("EXISTS", "missing2")
    p.both("SET", "str", "x")
    p.both("XGROUP", "CREATE", "str", "g", "0")
    p.both("XGROUP", "CREATE", "str", "g", "0", "MKSTREAM")
    p.both("XGROUP", "FOO", "s")
    p.both("XGROUP")
    p.both("XGROUP", "HELP")
    p.both("XGROUP", "help", "x")
    p.both("XINFO", "GROUPS", "s")


def test_xgroup_setid_destroy_consumers(p):
    fill(p, "s", 5)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XGROUP", "SETID", "s", "g", "3-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "5")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "-")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "+")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "2", "ENTRIESREAD", "1")
    p.both("XINFO", "GROUPS", "s")
    for args in (["s", "g", "x"], ["s", "g", "1", "ENTRIESREAD"], ["s", "g", "1", "FOO", "1"],
                 ["s", "g", "1", "ENTRIESREAD", "-5"], ["s", "g", "1", "ENTRIESREAD", "1", "x"],
                 ["s", "nog", "1"], ["missing", "g", "1"], ["s", "g"]):
        p.both("XGROUP", "SETID", *args)
    p.both("XGROUP", "CREATECONSUMER", "s", "g", "c1")
    p.both("XGROUP", "CREATECONSUMER", "s", "g", "c1")
    p.both("XGROUP", "CREATECONSUMER", "s", "g", "c0")
    p.both("XGROUP", "CREATECONSUMER", "s", "nog", "c1")
    p.both("XGROUP", "CREATECONSUMER", "missing", "g", "c1")
    p.both("XGROUP", "CREATECONSUMER", "s", "g")
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    p.both("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">")
    p.both("XGROUP", "DELCONSUMER", "s", "g", "c1")
    p.both("XGROUP", "DELCONSUMER", "s", "g", "c1")
    p.both("XGROUP", "DELCONSUMER", "s", "nog", "c1")
    p.both("XGROUP", "DELCONSUMER", "missing", "g", "c1")
    p.both("XPENDING", "s", "g")
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    p.both("XGROUP", "DESTROY", "s", "g")
    p.both("XGROUP", "DESTROY", "s", "g")
    p.both("XGROUP", "DESTROY", "missing", "g")
    p.both("XGROUP", "DESTROY", "s")
    p.both("XINFO", "GROUPS", "s")
    p.both("SET", "str", "x")
    for sub in (["SETID", "str", "g", "0"], ["DESTROY", "str", "g"], ["CREATECONSUMER", "str", "g", "c"],
                ["DELCONSUMER", "str", "g", "c"]):
        p.both("XGROUP", *sub)


# --- XREADGROUP ---------------------------------------------------------------------------------

def test_xreadgroup_basics(p):
    fill(p, "s", 6)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "1-1")
    p.both("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", "0")
    p.both("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0-0")
    p.both("XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", "0")     # new consumer, empty history
    p.both("XREADGROUP", "GROUP", "g", "carol", "BLOCK", "0", "STREAMS", "s", "0")   # history never blocks
    p.both("XREADGROUP", "GROUP", "g", "dave", "NOACK", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")     # nothing new: null
    p.both("XREADGROUP", "GROUP", "g", "erin", "STREAMS", "s", ">")      # not created
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    p.both("XINFO", "GROUPS", "s")
    p.both("XPENDING", "s", "g")
    p.both("XPENDING", "s", "g", "-", "+", "10", mask=mask_pending_rows)
    # deleted entries show up in the history with a null body
    p.both("XDEL", "s", "1-1", "4-1")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0")
    p.both("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0")
    p.both("XPENDING", "s", "g", "-", "+", "10", mask=mask_pending_rows)
    # the last possible id wraps around to the whole history
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "18446744073709551615-18446744073709551615")


def test_xreadgroup_multiple_streams_and_setid(p):
    fill(p, "a", 3)
    fill(p, "b", 3, start=5)
    p.both("XGROUP", "CREATE", "a", "g", "0")
    p.both("XGROUP", "CREATE", "b", "g", "$")
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">")
    p.both("XADD", "b", "9-1", "f", "v")
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">")
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", "0", ">")
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", "0", "0")
    # SETID backwards: entries are delivered again and change owner
    p.both("XGROUP", "SETID", "a", "g", "0")
    p.both("XREADGROUP", "GROUP", "g", "d", "COUNT", "2", "STREAMS", "a", ">")
    p.both("XPENDING", "a", "g")
    p.both("XINFO", "GROUPS", "a")
    p.both("XINFO", "STREAM", "a", "FULL", mask=mask_full)


def test_xreadgroup_errors(p):
    fill(p, "s", 2)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("SET", "str", "x")
    for args in (["GROUP", "g", "c", "STREAMS", "s", "$"], ["GROUP", "nog", "c", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "STREAMS", "missing", ">"], ["GROUP", "g", "c", "STREAMS", "str", ">"],
                 ["GROUP", "g", "c", "STREAMS", "s", "x"], ["GROUP", "g", "c", "STREAMS", "s", "-"],
                 ["GROUP", "g", "c", "STREAMS", "s", "missing", ">", ">"],
                 ["GROUP", "g", "c", "STREAMS", "s", "str", ">", ">"],
                 ["GROUP", "g", "c", "STREAMS", "s", "s", "t", ">", ">"],
                 ["STREAMS", "s", ">", "x", "y"], ["GROUP", "g", "STREAMS", "s", ">"],
                 ["COUNT", "x", "GROUP", "g", "c", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "FOO", "STREAMS", "s", ">"],
                 ["GROUP", "g", "c", "STREAMS", "s"], ["GROUP", "g", "c", "COUNT", "1", "NOACK"]):
        p.both("XREADGROUP", *args)
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS")
    p.both("XINFO", "GROUPS", "s")


def test_xreadgroup_block(p):
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    first = p.block("XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">")
    second = p.block("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "BLOCK", "0", "STREAMS",
                     "s", ">")
    first.quiet(0.1)
    p.both("XADD", "s", "1-1", "f", "v")
    first.read(2)
    second.quiet(0.1)                      # the group already delivered 1-1
    p.both("XGROUP", "SETID", "s", "g", "0")     # no wake-up without an append
    second.quiet(0.1)
    p.both("XADD", "s", "2-1", "f", "v")
    second.read(2)
    p.both("XPENDING", "s", "g")
    p.both("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">")      # 2-1: nothing left to deliver
    # the group or the key vanishing wakes the reader with an error
    other = p.block("XREADGROUP", "GROUP", "g", "c3", "BLOCK", "0", "STREAMS", "s", ">")
    p.both("XGROUP", "DESTROY", "s", "g")
    assert other.read(2)[0] == "-"
    p.both("XGROUP", "CREATE", "s", "g", "$")
    p.send_blocking(other, "XREADGROUP", "GROUP", "g", "c3", "BLOCK", "0", "STREAMS", "s", ">")
    p.both("DEL", "s")
    assert other.read(2)[0] == "-"
    # timeout
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    other.send("XREADGROUP", "GROUP", "g", "c3", "BLOCK", "100", "STREAMS", "s", ">")
    other.read(2)
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    for client in (first, second, other):
        client.close()


def test_xreadgroup_block_noack_and_count(p):
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    other = p.block("XREADGROUP", "GROUP", "g", "c", "NOACK", "COUNT", "2", "BLOCK", "0",
                    "STREAMS", "s", ">")
    p.both("MULTI")
    for i in range(1, 5):
        p.both("XADD", "s", f"{i}-1", "f", "v")
    p.both("EXEC")
    other.read(2)
    p.both("XPENDING", "s", "g")
    p.both("XINFO", "GROUPS", "s")
    other.close()


# --- XACK / XPENDING ----------------------------------------------------------------------------

def test_xack_xpending(p):
    fill(p, "s", 8)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XPENDING", "s", "g")
    p.both("XREADGROUP", "GROUP", "g", "bob", "COUNT", "3", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "alice", "COUNT", "4", "STREAMS", "s", ">")
    p.both("XPENDING", "s", "g")
    for args in (["-", "+", "10"], ["-", "+", "2"], ["(2-1", "+", "10"], ["3", "(6-1", "10"], ["-", "+", "0"],
                 ["-", "+", "-1"], ["-", "+", "10", "alice"], ["-", "+", "10", "nobody"],
                 ["IDLE", "0", "-", "+", "10"], ["IDLE", "0", "-", "+", "10", "bob"],
                 ["idle", "100000", "-", "+", "10"], ["4", "2", "10"]):
        p.both("XPENDING", "s", "g", *args, mask=mask_pending_rows)
    for args in (["-"], ["-", "+"], ["-", "+", "x"], ["x", "+", "1"], ["-", "x", "1"], ["(", "+", "1"],
                 ["IDLE", "x", "-", "+", "1"], ["IDLE", "1", "-", "+"], ["IDLE", "1", "-", "+", "1", "a",
                                                                         "b"],
                 ["-", "+", "1", "a", "b"], ["(18446744073709551615-18446744073709551615", "+", "1"],
                 ["-", "(0-0", "1"]):
        p.both("XPENDING", "s", "g", *args)
    p.both("XPENDING", "s", "nog")
    p.both("XPENDING", "missing", "g")
    p.both("XPENDING", "missing", "g", "x", "+", "1")
    p.both("SET", "str", "x")
    p.both("XPENDING", "str", "g")
    p.both("XACK", "s", "g", "1-1", "2-1", "2-1", "99-1")
    p.both("XACK", "s", "g", "1-1")
    p.both("XACK", "s", "g", "3-1", "bad")
    p.both("XACK", "s", "g", "-")
    p.both("XACK", "s", "nog", "bad")
    p.both("XACK", "missing", "g", "bad")
    p.both("XACK", "str", "g", "1-1")
    p.both("XACK", "s", "g")
    p.both("XPENDING", "s", "g")
    p.both("XPENDING", "s", "g", "-", "+", "100", mask=mask_pending_rows)
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))


# --- XCLAIM / XAUTOCLAIM ------------------------------------------------------------------------

def test_xclaim(p):
    fill(p, "s", 6)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
    p.both("XCLAIM", "s", "g", "bob", "0", "1-1", "2-1")
    p.both("XCLAIM", "s", "g", "bob", "3600000", "3-1")          # not idle enough
    p.both("XCLAIM", "s", "g", "bob", "0", "3-1", "JUSTID")
    p.both("XCLAIM", "s", "g", "bob", "0", "4-1", "RETRYCOUNT", "7", "IDLE", "5000")
    p.both("XPENDING", "s", "g", "-", "+", "10", mask=mask_pending_rows)
    p.both("XCLAIM", "s", "g", "carol", "1000", "4-1")            # idle 5000 >= 1000
    p.both("XCLAIM", "s", "g", "carol", "0", "5-1", "TIME", "1", "justid")
    p.both("XCLAIM", "s", "g", "carol", "0", "99-1")              # not pending
    p.both("XACK", "s", "g", "6-1")
    p.both("XCLAIM", "s", "g", "dave", "0", "6-1")                # acked: nothing
    p.both("XCLAIM", "s", "g", "dave", "0", "6-1", "FORCE", "JUSTID")
    p.both("XCLAIM", "s", "g", "dave", "0", "98-1", "FORCE")      # not in the stream
    p.both("XCLAIM", "s", "g", "erin", "0", "1-1", "LASTID", "50-1", "JUSTID")
    p.both("XINFO", "GROUPS", "s")
    p.both("XCLAIM", "s", "g", "erin", "0", "LASTID", "60-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XDEL", "s", "2-1")
    p.both("XCLAIM", "s", "g", "frank", "0", "2-1", "3-1")        # deleted entry leaves the PEL
    p.both("XPENDING", "s", "g", "-", "+", "10", mask=mask_pending_rows)
    p.both("XPENDING", "s", "g")
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    p.both("SET", "str", "x")
    for args in (["s", "g", "c", "x", "1-1"], ["s", "g", "c", "0", "1-1", "bad"], ["s", "g", "c", "0",
                                                                                   "1-1", "IDLE"],
                 ["s", "g", "c", "0", "1-1", "IDLE", "x"], ["s", "g", "c", "0", "1-1", "TIME", "x"],
                 ["s", "g", "c", "0", "1-1", "RETRYCOUNT", "x"], ["s", "g", "c", "0", "1-1", "LASTID", "x"],
                 ["s", "g", "c", "0", "1-1", "LASTID", "-"], ["s", "nog", "c", "x", "1-1"],
                 ["missing", "g", "c", "0", "1-1"], ["str", "g", "c", "0", "1-1"], ["s", "g", "c", "-5",
                                                                                    "3-1"],
                 ["s", "g", "c", "0", "FORCE"], ["s", "g", "c", "0"], ["s", "g", "c", "0", "1-1", "+"]):
        p.both("XCLAIM", *args)
    p.both("XPENDING", "s", "g", "-", "+", "10", mask=mask_pending_rows)


def test_xautoclaim(p):
    fill(p, "s", 12)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
    p.both("XAUTOCLAIM", "s", "g", "bob", "0", "0", "COUNT", "3")
    p.both("XAUTOCLAIM", "s", "g", "bob", "0", "4-1", "COUNT", "2", "JUSTID")
    p.both("XAUTOCLAIM", "s", "g", "bob", "3600000", "0")
    p.both("XDEL", "s", "7-1", "8-1", "11-1")
    p.both("XAUTOCLAIM", "s", "g", "carol", "0", "(6-1", "COUNT", "3")
    p.both("XAUTOCLAIM", "s", "g", "carol", "0", "-", "count", "100", "justid")
    p.both("XAUTOCLAIM", "s", "g", "carol", "0", "+")
    p.both("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1")
    p.both("XPENDING", "s", "g", "-", "+", "20", mask=mask_pending_rows)
    p.both("XPENDING", "s", "g")
    p.both("SET", "str", "x")
    for args in (["s", "g", "c", "x", "0"], ["s", "g", "c", "0", "x"], ["s", "g", "c", "0", "0", "COUNT",
                                                                        "0"],
                 ["s", "g", "c", "0", "0", "COUNT", "x"], ["s", "g", "c", "0", "0", "COUNT", "-1"],
                 ["s", "g", "c", "0", "0", "COUNT", "576460752303423488"], ["s", "g", "c", "0", "0", "COUNT"],
                 ["s", "g", "c", "0", "0", "FOO"], ["s", "nog", "c", "0", "0"], ["missing", "g", "c", "0",
                                                                                 "0"],
                 ["str", "g", "c", "0", "0"], ["missing", "g", "c", "x", "0"], ["s", "g", "c", "0", "(+"],
                 ["s", "g", "c", "0", "(18446744073709551615-18446744073709551615"], ["s", "g", "c", "-1",
                                                                                      "0"]):
        p.both("XAUTOCLAIM", *args)


def test_xautoclaim_attempts_limit(p):
    fill(p, "s", 30)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XREADGROUP", "GROUP", "g", "alice", "COUNT", "25", "STREAMS", "s", ">")
    p.both("XCLAIM", "s", "g", "alice", "0", "20-1", "21-1", "IDLE", "100000", "JUSTID")
    # only 10 * COUNT entries are examined per call
    p.both("XAUTOCLAIM", "s", "g", "bob", "50000", "0", "COUNT", "1")
    p.both("XAUTOCLAIM", "s", "g", "bob", "50000", "0", "COUNT", "2", "JUSTID")
    p.both("XAUTOCLAIM", "s", "g", "bob", "50000", "11-1", "COUNT", "1", "JUSTID")


# --- XSETID -------------------------------------------------------------------------------------

def test_xsetid(p):
    fill(p, "s", 3)
    p.both("XSETID", "s", "3-0")
    p.both("XSETID", "s", "3-1")
    p.both("XSETID", "s", "10-10")
    p.both("XADD", "s", "10-10", "a", "b")
    p.both("XSETID", "s", "20-0", "ENTRIESADDED", "2")
    p.both("XSETID", "s", "20-0", "ENTRIESADDED", "100", "MAXDELETEDID", "15-0")
    p.both("XSETID", "s", "14-0")
    p.both("XSETID", "s", "21-0", "MAXDELETEDID", "22-0")
    p.both("XSETID", "s", "21-0", "ENTRIESADDED", "-1")
    p.both("XSETID", "s", "21-0", "ENTRIESADDED", "x")
    p.both("XSETID", "s", "21-0", "ENTRIESADDED")
    p.both("XSETID", "s", "21-0", "FOO", "1")
    p.both("XSETID", "s", "21-0", "MAXDELETEDID", "x")
    p.both("XSETID", "s", "x")
    p.both("XSETID", "s", "-")
    p.both("XSETID", "missing", "1-1")
    p.both("XSETID", "missing", "x")
    p.both("SET", "str", "x")
    p.both("XSETID", "str", "1-1")
    p.both("XINFO", "STREAM", "s")
    p.both("XTRIM", "s", "MAXLEN", "0")
    p.both("XSETID", "s", "16-0")                  # empty stream: may go backwards
    p.both("XSETID", "s", "14-0")
    p.both("XINFO", "STREAM", "s")
    p.both("XADD", "s", "16-*", "a", "b")
    p.both("XINFO", "STREAM", "s")


# --- XINFO and consumer-group counters ----------------------------------------------------------

def test_xinfo_stream_and_full(p):
    p.both("XINFO", "STREAM", "s")
    p.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    p.both("XINFO", "STREAM", "s")
    p.both("XINFO", "STREAM", "s", "FULL")
    fill(p, "s", 15, fields=("name", "value", "n", "1"))
    p.both("XGROUP", "CREATE", "s", "g2", "0")
    p.both("XREADGROUP", "GROUP", "g", "c1", "COUNT", "12", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "g2", "c1", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XGROUP", "CREATECONSUMER", "s", "g2", "idle")
    p.both("XINFO", "STREAM", "s")
    p.both("XINFO", "STREAM", "s", "FULL", mask=mask_full)
    p.both("XINFO", "STREAM", "s", "FULL", "COUNT", "3", mask=mask_full)
    p.both("XINFO", "STREAM", "s", "FULL", "COUNT", "0", mask=mask_full)
    p.both("XINFO", "STREAM", "s", "full", "count", "-2", mask=mask_full)
    p.both("XINFO", "GROUPS", "s")
    p.both("XINFO", "CONSUMERS", "s", "g", mask=mask_keys(b"idle"))
    p.both("XINFO", "CONSUMERS", "s", "g2", mask=mask_keys(b"idle"))
    p.both("SET", "str", "x")
    for args in (["STREAM", "missing"], ["STREAM", "str"], ["GROUPS", "missing"], ["GROUPS", "str"],
                 ["CONSUMERS", "missing", "g"], ["CONSUMERS", "s", "nog"], ["CONSUMERS", "str", "g"],
                 ["STREAM", "s", "FULL", "x"], ["STREAM", "s", "x"], ["STREAM", "s", "FULL", "COUNT"],
                 ["STREAM", "s", "FULL", "COUNT", "x"], ["STREAM", "s", "FULL", "COUNT", "1", "x"],
                 ["STREAM", "s", "FULL", "FOO", "1"], ["STREAM"], ["GROUPS"], ["GROUPS", "s", "x"],
                 ["CONSUMERS", "s"], ["CONSUMERS", "s", "g", "x"], ["FOO", "s"], ["HELP", "x"], ["HELP"],
                 ["help"], ["STREAM", "missing", "FULL", "x"]):
        p.both("XINFO", *args)
    p.both("XINFO")


def test_entries_read_and_lag(p):
    """entries-read / lag as XDEL, trimming, SETID and XSETID change what can be known."""
    fill(p, "s", 10)
    p.both("XGROUP", "CREATE", "s", "g", "0")
    p.both("XGROUP", "CREATE", "s", "h", "$")
    p.both("XGROUP", "CREATE", "s", "i", "5-1")
    p.both("XGROUP", "CREATE", "s", "j", "5-1", "ENTRIESREAD", "3")
    p.both("XINFO", "GROUPS", "s")
    p.both("XREADGROUP", "GROUP", "g", "c", "COUNT", "3", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "i", "c", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XINFO", "GROUPS", "s")
    p.both("XDEL", "s", "8-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">")
    p.both("XINFO", "GROUPS", "s")
    p.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    p.both("XINFO", "GROUPS", "s")
    p.both("XDEL", "s", "1-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XTRIM", "s", "MAXLEN", "5")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "0")
    p.both("XGROUP", "SETID", "s", "h", "7-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XREADGROUP", "GROUP", "h", "c", "COUNT", "1", "STREAMS", "s", ">")
    p.both("XINFO", "GROUPS", "s")
    p.both("XADD", "s", "20-1", "f", "v")
    p.both("XINFO", "GROUPS", "s")
    p.both("XSETID", "s", "30-1", "ENTRIESADDED", "50", "MAXDELETEDID", "25-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "i", "$")
    p.both("XGROUP", "SETID", "s", "j", "99-1")
    p.both("XINFO", "GROUPS", "s")
    p.both("XTRIM", "s", "MAXLEN", "0")
    p.both("XINFO", "GROUPS", "s")
    p.both("XGROUP", "SETID", "s", "g", "0")
    p.both("XINFO", "GROUPS", "s")
    p.both("XINFO", "STREAM", "s")


def test_radix_tree_shapes(pair):
    """XINFO's radix-tree-keys / -nodes for node ids spread over the id space."""
    for ms in ("1", "2", "256", "257", "65536", "70000", "4294967296", "4294967297", "1099511627776"):
        for seq in range(101):
            pair.both("XADD", "s", f"{ms}-{seq * 3}", "f", "v")
        pair.both("XINFO", "STREAM", "s")
    for ident in ("256-150", "1-30", "70000-300", "4294967296-0"):
        pair.both("XTRIM", "s", "MINID", ident)
        pair.both("XINFO", "STREAM", "s")
    pair.both("XDEL", "s", *[f"4294967297-{seq * 3}" for seq in range(101)])
    pair.both("XINFO", "STREAM", "s")


# --- propagation: what the append-only file would replay ----------------------------------------

def _state(engine, client, key=b"s"):
    from cascade_cli.resp.protocol import to_bytes
    info = execute(engine, client, "XINFO", "STREAM", key, "FULL", "COUNT", "0")
    seen = info[b"groups"]
    for group in seen:
        for consumer in group[b"consumers"]:
            consumer[b"seen-time"] = 0
    return to_bytes(info, 3), to_bytes(execute(engine, client, "XRANGE", key, "-", "+"), 3)


def test_propagation_replays_to_the_same_state():
    engine, client, log = in_process()
    ids = [execute(engine, client, "XADD", "s", "*", "a", str(i)) for i in range(3)]
    ids.append(execute(engine, client, "XADD", "s", "MAXLEN", "~", "1", "LIMIT", "5", "*", "b", "3"))
    ids.append(execute(engine, client, "XADD", "s", (ids[-1].split(b"-")[0] + b"-*"), "b", "4"))
    for i in range(5, 130):
        ids.append(execute(engine, client, "XADD", "s", "*", "n", str(i)))
    script = [
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "NOACK", "COUNT", "1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "5", "STREAMS", "s", ">"),
        ("XCLAIM", "s", "g", "c4", "0", ids[1], "LASTID", ids[20]),
        ("XCLAIM", "s", "g", "c4", "0", ids[0], "LASTID", ids[30], "FORCE", "RETRYCOUNT", "9"),
        ("XCLAIM", "s", "g", "c4", "0", "LASTID", ids[40]),
        ("XAUTOCLAIM", "s", "g", "c5", "0", "0", "COUNT", "2"),
        ("XACK", "s", "g", ids[3]),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c6"),
        ("XGROUP", "CREATE", "s", "h", "$"),
        ("XADD", "s", "*", "c", "4"),
        ("XADD", "s", "*", "c", "5"),
        ("XREADGROUP", "GROUP", "h", "x", "STREAMS", "s", ">"),
        ("XDEL", "s", ids[0], ids[50]),
        ("XGROUP", "SETID", "s", "h", ids[100]),
        ("XREADGROUP", "GROUP", "h", "y", "COUNT", "2", "STREAMS", "s", ">"),
        ("XDEL", "s", ids[102]),
        ("XAUTOCLAIM", "s", "h", "z", "0", "0"),
        ("XCLAIM", "s", "g", "c9", "0", ids[1], ids[2]),
        ("XTRIM", "s", "MAXLEN", "~", "60"),
        ("XTRIM", "s", "MINID", "~", ids[115]),
        ("XGROUP", "DELCONSUMER", "s", "g", "c6"),
        ("XSETID", "s", "99999999999999-0", "ENTRIESADDED", "1000", "MAXDELETEDID", "999-9"),
        ("XADD", "s", "*", "d", "6"),
    ]
    for command in script:
        reply = execute(engine, client, *command)
        assert not isinstance(reply, Exception), (command, reply)
    assert all(b"*" not in argv[2:] and b"~" not in argv for _, argv in log.entries), log.entries
    assert not any(argv[0].upper() == b"XREADGROUP" for _, argv in log.entries)
    replay, replay_client, _ = in_process()
    for _, argv in log.entries:
        reply = replay.execute(replay_client, list(argv))
        assert not isinstance(reply, Exception), (argv, reply)
    assert _state(replay, replay_client) == _state(engine, client)


def test_rewrite_commands_rebuild_the_stream():
    engine, client, _ = in_process()
    for i in range(1, 8):
        execute(engine, client, "XADD", "s", f"{i}-1", "f", str(i))
    execute(engine, client, "XDEL", "s", "3-1")
    execute(engine, client, "XGROUP", "CREATE", "s", "g", "0")
    execute(engine, client, "XREADGROUP", "GROUP", "g", "c", "COUNT", "4", "STREAMS", "s", ">")
    execute(engine, client, "XGROUP", "CREATECONSUMER", "s", "g", "idle")
    stream = engine.dbs[0].data[b"s"]
    replay, replay_client, _ = in_process()
    for argv in stream.rewrite_commands(b"s"):
        assert not isinstance(replay.execute(replay_client, argv), Exception), argv
    assert _state(replay, replay_client) == _state(engine, client)
    copy = stream.copy()
    engine.dbs[0].data[b"t"] = copy
    assert _state(engine, client, b"t") == _state(engine, client)


# --- randomized differential run ----------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations(pair, seed, steps=500):
    import random
    rnd = random.Random(seed)
    if seed == 2:
        pair.hello(3)
    ms, seq = 1, 0
    added: list[str] = []
    groups = ["g0", "g1", "g2"]
    consumers = ["c0", "c1", "c2", "c3"]
    fieldsets = [["f", "v"], ["f", "w"], ["a", "1", "b", "2"], ["x" * 70, "12345678901"], ["f", "-5"]]

    def some_id():
        if added and rnd.random() < 0.8:
            return rnd.choice(added)
        return f"{rnd.randint(0, ms + 1)}-{rnd.randint(0, 3)}"

    def bound():
        choice = rnd.random()
        if choice < 0.15:
            return rnd.choice(["-", "+"])
        ident = some_id()
        return "(" + ident if choice < 0.35 else ident

    for step in range(steps):
        op = rnd.random()
        if op < 0.3:
            if rnd.random() < 0.3:
                ms += rnd.randint(1, 5000)
                seq = rnd.randint(0, 3)
            else:
                seq += rnd.randint(1, 3)
            ident = f"{ms}-{seq}"
            trim = []
            if rnd.random() < 0.1:
                trim = ["MAXLEN", rnd.choice(["~", "="]), str(rnd.randint(0, 150))]
            elif rnd.random() < 0.05:
                trim = ["MINID", rnd.choice(["~", "="]), some_id()]
            reply = pair.both("XADD", "s", *trim, ident, *rnd.choice(fieldsets))
            if reply[0] == "$":
                added.append(ident)
        elif op < 0.36:
            pair.both("XDEL", "s", *[some_id() for _ in range(rnd.randint(1, 3))])
        elif op < 0.38:
            pair.both("XTRIM", "s", rnd.choice(["MAXLEN", "MINID"]), rnd.choice(["~", "="]),
                      str(rnd.randint(0, 200)) if rnd.random() < 0.5 else some_id())
        elif op < 0.43:
            extra = ["ENTRIESREAD", str(rnd.randint(-1, 20))] if rnd.random() < 0.3 else []
            pair.both("XGROUP", "CREATE", "s", rnd.choice(groups), rnd.choice(["$", "0", some_id()]),
                      "MKSTREAM",
                      *extra)
        elif op < 0.46:
            extra = ["ENTRIESREAD", str(rnd.randint(-1, 300))] if rnd.random() < 0.5 else []
            pair.both("XGROUP", "SETID", "s", rnd.choice(groups), rnd.choice(["$", "0", some_id()]), *extra)
        elif op < 0.47:
            pair.both("XGROUP", "DESTROY", "s", rnd.choice(groups))
        elif op < 0.49:
            pair.both("XGROUP", rnd.choice(["CREATECONSUMER", "DELCONSUMER"]), "s", rnd.choice(groups),
                      rnd.choice(consumers))
        elif op < 0.62:
            options = ["COUNT", str(rnd.randint(1, 6))] if rnd.random() < 0.7 else []
            if rnd.random() < 0.15:
                options.append("NOACK")
            position = ">" if rnd.random() < 0.7 else rnd.choice(["0", some_id()])
            pair.both("XREADGROUP", "GROUP", rnd.choice(groups), rnd.choice(consumers), *options,
                      "STREAMS", "s", position)
        elif op < 0.67:
            pair.both("XACK", "s", rnd.choice(groups), *[some_id() for _ in range(rnd.randint(1, 3))])
        elif op < 0.72:
            options = []
            for option in ("JUSTID", "FORCE"):
                if rnd.random() < 0.3:
                    options.append(option)
            if rnd.random() < 0.3:
                options += ["RETRYCOUNT", str(rnd.randint(0, 5))]
            if rnd.random() < 0.2:
                options += ["LASTID", some_id()]
            pair.both("XCLAIM", "s", rnd.choice(groups), rnd.choice(consumers), rnd.choice(["0", "3600000"]),
                      *[some_id() for _ in range(rnd.randint(1, 3))], *options)
        elif op < 0.76:
            options = ["COUNT", str(rnd.randint(1, 5))] if rnd.random() < 0.7 else []
            if rnd.random() < 0.3:
                options.append("JUSTID")
            pair.both("XAUTOCLAIM", "s", rnd.choice(groups), rnd.choice(consumers), rnd.choice(["0",
                                                                                                "3600000"]),
                      bound(), *options)
        elif op < 0.8:
            pair.both("XINFO", "GROUPS", "s")
        elif op < 0.82:
            pair.both("XINFO", "STREAM", "s", "FULL", "COUNT", str(rnd.randint(0, 5)), mask=mask_full)
        elif op < 0.84:
            pair.both("XINFO", "STREAM", "s")
        elif op < 0.86:
            pair.both("XINFO", "CONSUMERS", "s", rnd.choice(groups), mask=mask_keys(b"idle"))
        elif op < 0.88:
            pair.both("XPENDING", "s", rnd.choice(groups))
        elif op < 0.9:
            extra = [rnd.choice(consumers)] if rnd.random() < 0.4 else []
            pair.both("XPENDING", "s", rnd.choice(groups), bound(), bound(), str(rnd.randint(0, 8)), *extra,
                 mask=mask_pending_rows)
        elif op < 0.95:
            cmd = rnd.choice(["XRANGE", "XREVRANGE"])
            count = ["COUNT", str(rnd.randint(0, 5))] if rnd.random() < 0.5 else []
            pair.both(cmd, "s", bound(), bound(), *count)
        elif op < 0.97:
            pair.both("XREAD", "COUNT", str(rnd.randint(0, 4)), "STREAMS", "s", rnd.choice(["$", "0",
                                                                                            some_id()]))
        elif op < 0.98:
            args = ["ENTRIESADDED", str(rnd.randint(0, 500))] if rnd.random() < 0.5 else []
            if rnd.random() < 0.3:
                args += ["MAXDELETEDID", some_id()]
            reply = pair.both("XSETID", "s", f"{ms}-{seq + rnd.randint(0, 2)}", *args)
            if reply == ("+", "OK"):
                seq += 3
        else:
            pair.both("XLEN", "s")
    pair.both("XINFO", "STREAM", "s", "FULL", "COUNT", "0", mask=mask_full)


def test_same_key_twice(pair):
    fill(pair, "s", 3)
    pair.both("XREAD", "STREAMS", "s", "s", "0", "2-1")
    pair.both("XGROUP", "CREATE", "s", "g", "0")
    pair.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "s", ">", ">")
    pair.both("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "s", "0", "2-1")


def test_watch(pair):
    """XADD, XDEL and XTRIM touch WATCHed keys; consumer-group bookkeeping and XSETID do not."""
    fill(pair, "s", 5)
    pair.both("XGROUP", "CREATE", "s", "g", "0")
    other = pair.connect()
    commands = [
        ("XGROUP", "CREATE", "s", "h", "0"), ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"), ("XCLAIM", "s", "g", "d", "0", "1-1"),
        ("XAUTOCLAIM", "s", "g", "e", "0", "0"), ("XACK", "s", "g", "1-1"), ("XGROUP", "SETID", "s", "g",
                                                                             "0"),
        ("XGROUP", "DELCONSUMER", "s", "g", "c"), ("XGROUP", "DESTROY", "s", "h"), ("XSETID", "s", "9-9"),
        ("XDEL", "s", "99-1"), ("XTRIM", "s", "MAXLEN", "100"), ("XDEL", "s", "1-1"), ("XTRIM", "s",
                                                                                       "MAXLEN", "2"),
        ("XADD", "s", "10-1", "f", "v"), ("XADD", "s", "NOMKSTREAM", "11-1", "f", "v"),
        ("XGROUP", "CREATE", "new", "g", "$", "MKSTREAM"),
    ]
    for command in commands:
        key = "new" if "new" in command else "s"
        pair.both("WATCH", key)
        other.both(*command)
        pair.both("MULTI")
        pair.both("PING")
        pair.both("EXEC")
    other.close()


@pytest.mark.parametrize("values", [
    ["-4096", "4095", "-4097", "4096", "32767", "-32769", "8388607", "8388608", "-8388609", "2147483647",
     "2147483648", "-2147483649", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
     "007", "-0", "0", "127", "128", " 1", "1 "],
    ["a" * 63, "b" * 64, "c" * 4095, "d" * 4096, "e" * 126, "f" * 127, "g" * 128, "h" * 5000],
])
def test_node_sizes(pair, values):
    """Integers and strings take the listpack room Redis gives them: where nodes split shows in
    radix-tree-keys and in what MAXLEN ~ can remove."""
    n = 0
    for round_ in range(30):
        for value in values:
            n += 1
            fields = ["k", value] if n % 4 else [value[:70], value, "k", "1"]
            pair.both("XADD", "s", f"{n}-{round_}", *fields)
    pair.both("XINFO", "STREAM", "s")
    pair.both("XTRIM", "s", "MAXLEN", "~", str(n // 2))
    pair.both("XLEN", "s")
    pair.both("XINFO", "STREAM", "s")


@pytest.mark.parametrize("setting", [("stream-node-max-entries", "7"), ("stream-node-max-entries", "0"),
                                     ("stream-node-max-bytes", "300"), ("stream-node-max-bytes", "0")])
def test_node_limits_from_config(pair, setting):
    name, value = setting
    default = "100" if name.endswith("entries") else "4096"
    pair.both("CONFIG", "SET", name, value)
    try:
        for i in range(1, 400):
            pair.both("XADD", "s", "MAXLEN", "~", "250", f"{i}-0", "f", "v" * (i % 30))
        pair.both("XLEN", "s")
        pair.both("XINFO", "STREAM", "s")
        pair.both("XTRIM", "s", "MINID", "~", "300")
        pair.both("XTRIM", "s", "MAXLEN", "~", "10")
        pair.both("XLEN", "s")
        pair.both("XINFO", "STREAM", "s")
    finally:
        pair.both("CONFIG", "SET", name, default)


def test_client_unblock(pair):
    other = pair.connect()
    ids = [client_id(other.real), client_id(other.mem)]
    pair.send_blocking(other, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert pair.real.call("CLIENT", "UNBLOCK", ids[0]) == pair.mem.call("CLIENT", "UNBLOCK",
                                                                        ids[1]) == (":", 1)
    other.read(2)
    other.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    other.read(2)           # NOGROUP: nothing to block on
    pair.both("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.send_blocking(other, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    pair.real.call("CLIENT", "UNBLOCK", ids[0], "ERROR")
    pair.mem.call("CLIENT", "UNBLOCK", ids[1], "ERROR")
    other.read(2)
    other.close()


def test_blocked_reads_propagate_deterministically():
    from cascade_cli.resp.core import NO_REPLY

    engine, client, log = in_process()
    reader = connect(engine)
    execute(engine, client, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    assert execute(engine, reader, "XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "0", "STREAMS",
                   "s", ">") is NO_REPLY
    plain_reader = connect(engine)
    assert execute(engine, plain_reader, "XREAD", "BLOCK", "0", "STREAMS", "s", "$") is NO_REPLY
    execute(engine, client, "MULTI")
    execute(engine, client, "XADD", "s", "*", "f", "1")
    execute(engine, client, "XADD", "s", "*", "f", "2")
    execute(engine, client, "EXEC")
    assert len(reader.sent) == 1 and len(plain_reader.sent) == 1
    [[key, entries]] = reader.sent[0]
    assert key == b"s" and len(entries) == 1
    assert len(plain_reader.sent[0][0][1]) == 2
    commands = [argv[0].upper() for _, argv in log.entries]
    assert commands.count(b"XCLAIM") == 1 and b"XREADGROUP" not in commands and b"XREAD" not in commands
    replay, replay_client, _ = in_process()
    for _, argv in log.entries:
        assert not isinstance(replay.execute(replay_client, list(argv)), Exception), argv
    assert _state(replay, replay_client) == _state(engine, client)


@pytest.mark.parametrize("script", [
    [("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")],
    [("XADD", "s", "5-5", "a", "b"), ("XDEL", "s", "5-5")],
    [("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2", "c", "3"), ("XADD", "s", "3-1", "a", "4"),
     ("XDEL", "s", "2-1"), ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "s", "h", "$",
                                                                 "ENTRIESREAD", "9"),
     ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", ">"),
     ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"), ("XCLAIM", "s", "g", "c3", "0", "3-1",
                                                               "RETRYCOUNT", "5"),
     ("XGROUP", "CREATECONSUMER", "s", "h", "idle"), ("XSETID", "s", "10-0", "ENTRIESADDED", "20",
                                                      "MAXDELETEDID", "9-9")],
])
def test_rewrite_commands_load_into_redis(pair, script):
    """What an append-only file rewrite writes for a stream rebuilds it in real Redis too."""
    engine, client, _ = in_process()
    for command in script:
        execute(engine, client, *command)
        pair.real.call(*command)
    for argv in engine.dbs[0].data[b"s"].rewrite_commands(b"copy"):
        reply = pair.real.call(*argv)
        assert reply[0] != "-", (argv, reply)
    drop = mask_full
    original = drop(pair.real.call("XINFO", "STREAM", "s", "FULL"))
    rebuilt = drop(pair.real.call("XINFO", "STREAM", "copy", "FULL"))
    # the node layout is new (no deleted entries inside), everything else is the same
    original[1][3] = rebuilt[1][3] = original[1][5] = rebuilt[1][5] = None
    assert rebuilt == original


def test_propagated_commands_load_into_redis(pair):
    """The deterministic commands written for the append-only file rebuild the same stream in
    real Redis (same entries, node layout, groups, pending entries and delivery counts)."""
    from resp_support import parse_reply

    from cascade_cli.resp.protocol import to_bytes
    engine, client, log = in_process()
    for i in range(1, 260):
        execute(engine, client, "XADD", "s", "MAXLEN", "~", "150", f"{i}-*", "f", "v" * (i % 7))
    for command in [
        ("XGROUP", "CREATE", "s", "g", "0"), ("XREADGROUP", "GROUP", "g", "a", "COUNT", "5", "STREAMS",
                                              "s", ">"),
        ("XREADGROUP", "GROUP", "g", "b", "NOACK", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"), ("XDEL", "s", "120-0", "230-0"),
        ("XCLAIM", "s", "g", "c", "0", "115-0", "RETRYCOUNT", "4"), ("XAUTOCLAIM", "s", "g", "d", "0",
                                                                     "0", "COUNT", "2"),
        ("XTRIM", "s", "MINID", "~", "140"), ("XGROUP", "CREATECONSUMER", "s", "g", "e"),
    ]:
        execute(engine, client, *command)
    for _, argv in log.entries:
        reply = pair.real.call(*argv)
        assert reply[0] != "-", (argv, reply)
    mine, _ = parse_reply(to_bytes(execute(engine, client, "XINFO", "STREAM", "s", "FULL", "COUNT", "0"), 2))
    assert mask_full(pair.real.call("XINFO", "STREAM", "s", "FULL", "COUNT", "0")) == mask_full(mine)


def test_keyspace_hits_and_misses(pair):
    for setup in (("XADD", "s", "1-1", "a", "b"), ("XADD", "s", "2-1", "a", "b"), ("SET", "str", "x"),
                  ("XGROUP", "CREATE", "s", "g", "0")):
        pair.both(*setup)
    assert_counted_alike(pair, [
        ("XLEN", "s"), ("XLEN", "nokey"), ("XRANGE", "s", "-", "+"), ("XRANGE", "nokey", "-", "+"),
        ("XREVRANGE", "s", "+", "-"), ("XREAD", "STREAMS", "s", "nokey", "0", "0"), ("XREAD", "STREAMS",
                                                                                     "s", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("XREADGROUP", "GROUP", "g", "c",
                                                                 "STREAMS", "s", "0"),
        ("XPENDING", "s", "g"), ("XPENDING", "nokey", "g"), ("XACK", "s", "g", "1-1"), ("XACK", "nokey",
                                                                                        "g", "1-1"),
        ("XCLAIM", "s", "g", "d", "0", "2-1"), ("XAUTOCLAIM", "s", "g", "e", "0", "0"), ("XINFO",
                                                                                         "STREAM", "s"),
        ("XINFO", "GROUPS", "s"), ("XINFO", "CONSUMERS", "s", "g"), ("XINFO", "STREAM", "nokey"),
        ("XADD", "s", "3-1", "a", "b"), ("XADD", "nokey", "NOMKSTREAM", "*", "a", "b"), ("XDEL", "s", "3-1"),
        ("XTRIM", "s", "MAXLEN", "5"), ("XGROUP", "CREATE", "s", "h", "0"), ("XGROUP", "SETID", "s", "h",
                                                                             "0"),
        ("XSETID", "s", "9-9"), ("XSETID", "nokey", "9-9"), ("XLEN", "str"), ("XREAD", "STREAMS", "str", "0"),
    ], send=Pair.each)
