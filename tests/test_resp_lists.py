"""Lists group of the in-memory server, compared with a real redis-server (differential).

Every non-blocking command is sent to both engines in RESP2 and RESP3 and the raw replies must
match exactly. Blocking commands use second connections (`pair.connect()`): one connection
blocks, another pushes, and what each engine answers to the blocked connection is compared.
The last tests run the engine in-process to check what served blocking pops propagate.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from resp_support import assert_counted_alike, connect, in_process, pair_in_each_protocol

from cascade_cli.resp.commands.lists import parse_timeout
from cascade_cli.resp.core import NO_REPLY
from cascade_cli.resp.protocol import ErrorReply

WRONGTYPE = ("-", "WRONGTYPE Operation against a key holding the wrong kind of value")
NOT_INT = ("-", "ERR value is not an integer or out of range")
SYNTAX = ("-", "ERR syntax error")
BLOCK_WAIT = 0.06          # long enough for a server to notice a closed connection

p = pair_in_each_protocol()


def arr(*items: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    return ("*", [("$", item) for item in items])


# --- pushes, pops, length --------------------------------------------------------------------

def test_push_and_len(p: Any) -> None:
    assert p.both("RPUSH", "l", "a", "b", "c") == (":", 3)
    assert p.both("LPUSH", "l", "x", "y") == (":", 5)
    assert p.both("LRANGE", "l", "0", "-1") == arr(b"y", b"x", b"a", b"b", b"c")
    assert p.both("LPUSHX", "nokey", "a", "b") == (":", 0)
    assert p.both("RPUSHX", "nokey", "a") == (":", 0)
    assert p.both("EXISTS", "nokey") == (":", 0)
    assert p.both("LPUSHX", "l", "1", "2") == (":", 7)
    assert p.both("RPUSHX", "l", "3") == (":", 8)
    assert p.both("LLEN", "l") == (":", 8)
    assert p.both("LLEN", "nokey") == (":", 0)
    p.both("LRANGE", "l", "0", "-1")
    p.both("SET", "s", "x")
    for cmd in ("LPUSH", "RPUSH", "LPUSHX", "RPUSHX"):
        assert p.both(cmd, "s", "a") == WRONGTYPE
        p.both(cmd)
        p.both(cmd, "l")
    assert p.both("LLEN", "s") == WRONGTYPE
    p.both("LLEN")
    p.both("LLEN", "a", "b")
    p.both("RPUSH", "bin", b"\x00\xff\r\n", b"")
    p.both("LRANGE", "bin", "0", "-1")


def test_pop_without_count(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c")
    assert p.both("LPOP", "l") == ("$", b"a")
    assert p.both("RPOP", "l") == ("$", b"c")
    assert p.both("LPOP", "l") == ("$", b"b")
    assert p.both("EXISTS", "l") == (":", 0)          # the emptied list is deleted
    assert p.both("LPOP", "l") == p.null
    assert p.both("RPOP", "nokey") == p.null
    p.both("SET", "s", "x")
    assert p.both("LPOP", "s") == WRONGTYPE
    assert p.both("RPOP", "s") == WRONGTYPE
    p.both("LPOP")
    p.both("RPOP")


def test_pop_with_count(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "d", "e")
    assert p.both("LPOP", "l", "2") == arr(b"a", b"b")
    assert p.both("RPOP", "l", "2") == arr(b"e", b"d")
    assert p.both("LPOP", "l", "0") == ("*", [])          # existing key, count 0: empty array
    assert p.both("LPOP", "l", "10") == arr(b"c")
    assert p.both("EXISTS", "l") == (":", 0)
    assert p.both("LPOP", "l", "0") == p.null_array      # missing key: null array
    assert p.both("RPOP", "l", "3") == p.null_array
    p.both("RPUSH", "l", "a")
    p.both("SET", "s", "x")
    for cmd in ("LPOP", "RPOP"):
        for bad in ("-1", "x", "9223372036854775808", "1.5", ""):
            p.both(cmd, "l", bad)
            p.both(cmd, "nokey", bad)
            p.both(cmd, "s", bad)                         # the count is checked before the type
        p.both(cmd, "s", "0")
        p.both(cmd, "s", "9223372036854775807")
        p.both(cmd, "l", "1", "2")
        p.both(cmd, "nokey", "1", "2")


# --- reads -----------------------------------------------------------------------------------

def test_lrange(p: Any) -> None:
    p.both("RPUSH", "l", *"abcdefg")
    for start, stop in [(0, -1), (0, 0), (-1, -1), (-100, 100), (5, 1), (2, 4), (-3, -2), (6, 100),
                        (7, 10), (-8, 0), (0, -8), (3, -5), (-9223372036854775808, 9223372036854775807),
                        (9223372036854775807, -9223372036854775808)]:
        p.both("LRANGE", "l", start, stop)
    for bad in ("x", "1.0", "9223372036854775808", "", " 1"):
        assert p.both("LRANGE", "l", bad, "1") == NOT_INT
        assert p.both("LRANGE", "l", "1", bad) == NOT_INT
        assert p.both("LRANGE", "nokey", bad, "1") == NOT_INT
    assert p.both("LRANGE", "nokey", "0", "-1") == ("*", [])
    p.both("SET", "s", "x")
    assert p.both("LRANGE", "s", "0", "-1") == WRONGTYPE
    assert p.both("LRANGE", "s", "x", "1") == NOT_INT    # indexes are parsed before the lookup
    p.both("LRANGE", "l", "0")


def test_lrange_benchmark_sizes(p: Any) -> None:
    """LRANGE on lists the size redis-benchmark uses, walking from both ends."""
    rng = random.Random(7)
    for size in (100, 300, 600):
        key = f"l{size}"
        p.both("RPUSH", key, *[f"v{i}" for i in range(size)])
        for start, stop in [(0, 99), (0, 299), (0, 449), (0, 599), (0, -1), (-100, -1), (size - 3, size + 5)]:
            p.both("LRANGE", key, start, stop)
        for _ in range(15):
            a, b = rng.randrange(-size - 5, size + 5), rng.randrange(-size - 5, size + 5)
            p.both("LRANGE", key, a, b)


def test_lindex(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c")
    for index in ("0", "1", "2", "3", "-1", "-3", "-4", "9223372036854775807", "-9223372036854775808"):
        p.both("LINDEX", "l", index)
    assert p.both("LINDEX", "l", "x") == NOT_INT
    assert p.both("LINDEX", "nokey", "0") == p.null
    assert p.both("LINDEX", "nokey", "x") == p.null        # missing key wins over a bad index
    p.both("SET", "s", "x")
    assert p.both("LINDEX", "s", "0") == WRONGTYPE
    assert p.both("LINDEX", "s", "x") == WRONGTYPE          # and the type too
    p.both("LINDEX", "l")
    p.both("LINDEX", "l", "0", "1")


def test_lpos(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c")
    p.both("SET", "s", "x")
    cases = [
        [], ["RANK", "2"], ["RANK", "-1"], ["RANK", "-3"], ["RANK", "-4"], ["RANK", "4"],
        ["COUNT", "0"], ["COUNT", "2"], ["COUNT", "0", "RANK", "-1"],
        ["COUNT", "0", "RANK", "2", "MAXLEN", "3"], ["COUNT", "0", "MAXLEN", "3"], ["MAXLEN", "3"],
        ["MAXLEN", "2"], ["MAXLEN", "0"], ["RANK", "-2", "MAXLEN", "2"],
        ["RANK", "-9223372036854775808"], ["RANK", "-9223372036854775808", "COUNT", "0"],
        ["RANK", "9223372036854775807"], ["RANK", "1", "RANK", "2"], ["COUNT", "1", "COUNT", "0"],
        ["rank", "1", "count", "2", "maxlen", "100"],
        # errors
        ["RANK", "0"], ["RANK", "x"], ["RANK", "9223372036854775808"], ["COUNT", "-1"], ["COUNT", "x"],
        ["MAXLEN", "-1"], ["MAXLEN", "x"], ["FOO", "1"], ["RANK"], ["COUNT"], ["MAXLEN"],
        ["RANK", "0", "FOO"], ["COUNT", "1", "RANK"],
    ]
    for options in cases:
        for key in ("l", "nokey", "s"):
            for element in ("c", "zz"):
                p.both("LPOS", key, element, *options)
    p.both("LPOS", "l")


# --- in-place writes -------------------------------------------------------------------------

def test_lset(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c")
    assert p.both("LSET", "l", "0", "x") == ("+", "OK")
    assert p.both("LSET", "l", "-1", "z") == ("+", "OK")
    p.both("LRANGE", "l", "0", "-1")
    assert p.both("LSET", "l", "3", "a") == ("-", "ERR index out of range")
    assert p.both("LSET", "l", "-4", "a") == ("-", "ERR index out of range")
    assert p.both("LSET", "l", "x", "a") == NOT_INT
    assert p.both("LSET", "nokey", "0", "a") == ("-", "ERR no such key")
    assert p.both("LSET", "nokey", "x", "a") == ("-", "ERR no such key")
    p.both("SET", "s", "x")
    assert p.both("LSET", "s", "0", "a") == WRONGTYPE
    assert p.both("LSET", "s", "x", "a") == WRONGTYPE
    p.both("LSET", "l", "0")
    p.both("LRANGE", "l", "0", "-1")


def test_linsert(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "a", "b", "c")
    assert p.both("LINSERT", "l", "BEFORE", "b", "X") == (":", 7)
    assert p.both("LINSERT", "l", "after", "c", "Y") == (":", 8)
    assert p.both("LINSERT", "l", "before", "a", "1") == (":", 9)
    assert p.both("LINSERT", "l", "AFTER", "c", "2") == (":", 10)
    assert p.both("LINSERT", "l", "before", "zz", "Y") == (":", -1)
    p.both("LRANGE", "l", "0", "-1")
    assert p.both("LINSERT", "l", "middle", "b", "X") == SYNTAX
    assert p.both("LINSERT", "nokey", "before", "b", "X") == (":", 0)
    assert p.both("LINSERT", "nokey", "middle", "b", "X") == SYNTAX
    p.both("SET", "s", "x")
    assert p.both("LINSERT", "s", "before", "b", "X") == WRONGTYPE
    assert p.both("LINSERT", "s", "middle", "b", "X") == SYNTAX
    p.both("LINSERT", "l", "before", "b")
    assert p.both("EXISTS", "nokey") == (":", 0)


def test_lrem(p: Any) -> None:
    p.both("RPUSH", "l", *"abcabcabcaa")
    for count, element in [("1", "b"), ("-1", "c"), ("2", "a"), ("-2", "a"), ("0", "b"), ("1", "zz"),
                           ("-5", "zz"), ("0", "zz"), ("100", "c")]:
        p.both("LREM", "l", count, element)
        p.both("LRANGE", "l", "0", "-1")
    assert p.both("LREM", "l", "0", "a") == (":", 1)
    assert p.both("EXISTS", "l") == (":", 0)
    assert p.both("LREM", "l", "x", "a") == NOT_INT
    assert p.both("LREM", "nokey", "x", "a") == NOT_INT
    assert p.both("LREM", "nokey", "1", "a") == (":", 0)
    p.both("SET", "s", "x")
    assert p.both("LREM", "s", "1", "a") == WRONGTYPE
    assert p.both("LREM", "s", "x", "a") == NOT_INT
    p.both("LREM", "s", "1")


def test_ltrim(p: Any) -> None:
    for start, stop in [(1, -2), (0, -1), (0, 0), (-1, -1), (-100, 100), (5, 1), (2, 100), (100, 200),
                        (-3, -5), (0, -100), (-9223372036854775808, 9223372036854775807)]:
        p.both("DEL", "l")
        p.both("RPUSH", "l", *"abcdefg")
        assert p.both("LTRIM", "l", start, stop) == ("+", "OK")
        p.both("LRANGE", "l", "0", "-1")
        p.both("EXISTS", "l")
    assert p.both("LTRIM", "l", "x", "1") == NOT_INT
    assert p.both("LTRIM", "nokey", "x", "1") == NOT_INT
    assert p.both("LTRIM", "nokey", "0", "1") == ("+", "OK")
    p.both("SET", "s", "x")
    assert p.both("LTRIM", "s", "0", "1") == WRONGTYPE
    assert p.both("LTRIM", "s", "x", "1") == NOT_INT
    p.both("LTRIM", "s", "0")


def test_random_edits_on_long_lists(p: Any) -> None:
    """Random LREM/LTRIM/LINSERT/LSET/LPOS/LINDEX on long lists with repeats, compared step by step."""
    rng = random.Random(3)
    p.both("RPUSH", "l", *[str(rng.randrange(20)) for _ in range(1500)])
    for _ in range(60):
        size = 1500
        op = rng.randrange(7)
        value = str(rng.randrange(22))
        if op == 0:
            p.both("LREM", "l", rng.randrange(-5, 6), value)
        elif op == 1:
            p.both("LTRIM", "l", rng.randrange(-3, 4), rng.randrange(-4, 3) - 1)
        elif op == 2:
            p.both("LINSERT", "l", rng.choice(["BEFORE", "AFTER"]), value, "new")
        elif op == 3:
            p.both("LSET", "l", rng.randrange(-size, size), value)
        elif op == 4:
            p.both("LPOS", "l", value, "RANK", rng.choice([1, 2, -1, -3]), "COUNT", rng.randrange(4),
                   "MAXLEN", rng.randrange(0, 300))
        elif op == 5:
            p.both("LINDEX", "l", rng.randrange(-size, size))
        else:
            p.both("RPUSH", "l", *[str(rng.randrange(20)) for _ in range(20)])
    p.both("LRANGE", "l", "0", "-1")


def test_watch_sees_list_changes(p: Any) -> None:
    """A no-op LTRIM still touches WATCHed keys (Redis signals the key); a no-op LREM does not."""
    p.both("RPUSH", "l", "a", "b")
    for touching, untouched in [(("LTRIM", "l", "0", "-1"), ("LREM", "l", "0", "zz")),
                                (("LPUSH", "l", "c"), ("LPUSHX", "nokey", "c")),
                                (("LINSERT", "l", "BEFORE", "a", "x"), ("LINSERT", "l", "BEFORE", "zz", "x")),
                                (("RPOP", "l"), ("LPOP", "nokey"))]:
        for cmd, aborted in ((touching, True), (untouched, False)):
            p.both("WATCH", "l")
            p.both(*cmd)
            p.both("MULTI")
            p.both("LLEN", "l")
            reply = p.both("EXEC")
            assert (reply[1] is None) == aborted, (cmd, reply)


# --- moves and multi-key pops ----------------------------------------------------------------

def test_lmove_and_rpoplpush(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "d")
    p.both("SET", "s", "x")
    assert p.both("LMOVE", "l", "d", "LEFT", "RIGHT") == ("$", b"a")
    assert p.both("LMOVE", "l", "d", "right", "left") == ("$", b"d")
    assert p.both("LMOVE", "l", "d", "LEFT", "LEFT") == ("$", b"b")
    assert p.both("LMOVE", "l", "d", "RIGHT", "RIGHT") == ("$", b"c")
    assert p.both("EXISTS", "l") == (":", 0)
    p.both("LRANGE", "d", "0", "-1")
    for args in [("l", "d", "up", "left"), ("l", "d", "left", "up"), ("nokey", "d", "left", "up"),
                 ("s", "d", "up", "left")]:
        assert p.both("LMOVE", *args) == SYNTAX
    assert p.both("LMOVE", "nokey", "d", "LEFT", "LEFT") == p.null
    assert p.both("LMOVE", "nokey", "s", "LEFT", "LEFT") == p.null
    assert p.both("LMOVE", "d", "s", "LEFT", "LEFT") == WRONGTYPE
    assert p.both("LMOVE", "s", "d", "LEFT", "LEFT") == WRONGTYPE
    assert p.both("LMOVE", "s", "nokey", "LEFT", "LEFT") == WRONGTYPE
    p.both("LRANGE", "d", "0", "-1")                     # untouched by the failed moves
    assert p.both("LMOVE", "d", "d", "LEFT", "RIGHT") == ("$", b"b")   # rotation
    p.both("LRANGE", "d", "0", "-1")
    p.both("RPUSH", "one", "x")
    assert p.both("LMOVE", "one", "one", "LEFT", "RIGHT") == ("$", b"x")
    assert p.both("LLEN", "one") == (":", 1)
    assert p.both("RPOPLPUSH", "d", "e")[0] == "$"
    assert p.both("RPOPLPUSH", "d", "d")[0] == "$"
    p.both("LRANGE", "d", "0", "-1")
    p.both("LRANGE", "e", "0", "-1")
    assert p.both("RPOPLPUSH", "nokey", "d") == p.null
    assert p.both("RPOPLPUSH", "d", "s") == WRONGTYPE
    assert p.both("RPOPLPUSH", "s", "d") == WRONGTYPE
    p.both("RPOPLPUSH", "d", "s", "x")
    p.both("LMOVE", "d", "s", "LEFT")


def test_lmpop(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "d", "e")
    p.both("SET", "s", "x")
    assert p.both("LMPOP", "1", "l", "LEFT") == ("*", [("$", b"l"), arr(b"a")])
    assert p.both("LMPOP", "2", "nokey", "l", "right", "COUNT", "2") == ("*", [("$", b"l"), arr(b"e", b"d")])
    assert p.both("LMPOP", "1", "l", "left", "count", "100") == ("*", [("$", b"l"), arr(b"b", b"c")])
    assert p.both("EXISTS", "l") == (":", 0)
    assert p.both("LMPOP", "2", "nokey", "l", "LEFT") == p.null_array
    for args in [("0", "l", "LEFT"), ("-1", "l", "LEFT"), ("x", "l", "LEFT"), ("", "l", "LEFT"),
                 ("2", "l", "LEFT"), ("10", "l", "LEFT"), ("9223372036854775807", "l", "LEFT"),
                 ("9223372036854775808", "l", "LEFT"), ("1", "l", "MIDDLE"),
                 ("1", "l", "LEFT", "COUNT", "0"), ("1", "l", "LEFT", "COUNT", "-1"),
                 ("1", "l", "LEFT", "COUNT", "x"), ("1", "l", "LEFT", "COUNT"),
                 ("1", "l", "LEFT", "COUNT", "1", "COUNT", "2"), ("1", "l", "LEFT", "FOO"),
                 ("1", "s", "LEFT"), ("2", "nokey", "s", "LEFT"), ("1", "s", "LEFT", "COUNT", "0"),
                 ("1", "l"), ("1",), ()]:
        p.both("LMPOP", *args)
    p.both("RPUSH", "l", "z")
    assert p.both("LMPOP", "2", "l", "s", "RIGHT") == ("*", [("$", b"l"), arr(b"z")])  # stops at l


# --- blocking: immediate answers and argument errors -----------------------------------------

def test_blocking_commands_that_answer_at_once(p: Any) -> None:
    p.both("RPUSH", "l", "a", "b", "c", "d", "e", "f")
    p.both("SET", "s", "x")
    assert p.both("BLPOP", "l", "0") == arr(b"l", b"a")
    assert p.both("BLPOP", "nokey", "l", "0") == arr(b"l", b"b")
    assert p.both("BRPOP", "nokey", "l", "s", "0") == arr(b"l", b"f")
    assert p.both("BLMOVE", "l", "d", "LEFT", "RIGHT", "0") == ("$", b"c")
    assert p.both("BRPOPLPUSH", "l", "d", "0") == ("$", b"e")
    assert p.both("BLMPOP", "0", "2", "nokey", "l", "LEFT", "COUNT", "5") == ("*", [("$", b"l"), arr(b"d")])
    assert p.both("EXISTS", "l") == (":", 0)
    p.both("LRANGE", "d", "0", "-1")
    assert p.both("BLPOP", "s", "0") == WRONGTYPE
    assert p.both("BRPOP", "nokey", "s", "0") == WRONGTYPE
    assert p.both("BLMOVE", "d", "s", "LEFT", "LEFT", "0") == WRONGTYPE
    assert p.both("BLMOVE", "s", "d", "LEFT", "LEFT", "0") == WRONGTYPE
    assert p.both("BRPOPLPUSH", "s", "d", "0") == WRONGTYPE
    assert p.both("BLMPOP", "0", "2", "nokey", "s", "LEFT") == WRONGTYPE


TIMEOUT_ERRORS = ["-1", "-0.5", "x", "inf", "-inf", "+inf", "infinity", "nan", "1e30", "9223372036854775807",
                  "1e-5000", "1e5000", "1e4000", "1_0", "1 ", " 1", "abc", "0x", "", "1e", "1.2.3", "--1",
                  "0.01\x00", "\x001", "\xff", "1e-999999999", "1e999999999", "0x1p99999", "0x1p-16500",
                  "0x1p2000", "1.2e4932", "0.1e4933", "9223372036854775.808", "-9223372036854775.809",
                  "1" + "0" * 5000, "1" * 5200, "0x.p1", "0x1p", "nan(1)", "infinit"]


def test_blocking_argument_errors(p: Any) -> None:
    p.both("SET", "s", "x")
    for bad in TIMEOUT_ERRORS:
        p.both("BLPOP", "nokey", bad)
        p.both("BRPOP", "s", bad)                   # the timeout is parsed before the keys
        p.both("BLMOVE", "nokey", "d", "LEFT", "LEFT", bad)
        p.both("BRPOPLPUSH", "nokey", "d", bad)
        p.both("BLMPOP", bad, "1", "nokey", "LEFT")
    # BLMOVE checks LEFT/RIGHT before the timeout; BLMPOP checks its other arguments first.
    assert p.both("BLMOVE", "nokey", "d", "UP", "LEFT", "x") == SYNTAX
    assert p.both("BLMOVE", "nokey", "d", "LEFT", "UP", "-1") == SYNTAX
    for args in [("x", "1", "nokey", "FOO"), ("x", "0", "nokey", "LEFT"),
                 ("x", "1", "nokey", "LEFT", "COUNT", "0"),
                 ("0", "1", "nokey"), ("0", "2", "nokey", "LEFT"), ("0.01", "1", "nokey", "LEFT", "COUNT"),
                 ("0", "1", "nokey", "LEFT", "COUNT", "1", "COUNT", "1"), ("0", "-1", "nokey", "LEFT")]:
        p.both("BLMPOP", *args)
    for cmd in [("BLPOP", "k"), ("BRPOP",), ("BLMOVE", "a", "b", "LEFT", "LEFT"), ("BRPOPLPUSH", "a", "b"),
                ("BLMPOP", "0", "1", "k")]:
        p.both(*cmd)


@pytest.mark.parametrize("timeout", ["0.0001", "1e-400", "0.0005", ".5e-3", "+0.01", "0x1p-20", "0X.8p-8",
                                     "1e-4940", "1e-4950", "0x1p-16440"])
def test_tiny_timeouts_round_up_to_a_millisecond(pair: Any, timeout: str) -> None:
    assert pair.both("BLPOP", "nokey", timeout) == ("*", None)


@pytest.mark.parametrize("timeout", ["-0.0001", "-0", "0", "0.0", "-0x0.0001p-10", "9223372036854775.807",
                                     "0e99999999999", "-0x1p-30"])
def test_timeouts_that_block_forever(pair: Any, timeout: str) -> None:
    with pair.connect() as other:
        other.send("BLPOP", "k", timeout)
        other.quiet(0.15)
        pair.both("RPUSH", "k", "v")
        assert other.read() == arr(b"k", b"v")


def test_parse_timeout_unit() -> None:
    assert parse_timeout(b"1.5") == 1.5
    assert parse_timeout(b"0") == 0
    assert parse_timeout(b"0.0001") == 0.001
    assert parse_timeout(b"-0.0004") == 0
    for bad, message in [(b"-1", "ERR timeout is negative"), (b"inf", "ERR timeout is negative"),
                         (b"nan", "ERR timeout is not a float or out of range"),
                         (b"a", "ERR timeout is not a float or out of range")]:
        with pytest.raises(ErrorReply) as caught:
            parse_timeout(bad)
        assert caught.value.text == message


def test_blocking_inside_multi_answers_at_once(p: Any) -> None:
    p.both("SET", "s", "x")
    p.both("MULTI")
    for cmd in [("BLPOP", "nokey", "0"), ("BRPOP", "nokey", "nokey2", "0"),
                ("BLMOVE", "nokey", "d", "LEFT", "LEFT", "0"),
                ("BRPOPLPUSH", "nokey", "d", "0"), ("BLMPOP", "0", "1", "nokey", "LEFT"),
                ("BLPOP", "nokey", "-1"),
                ("BLPOP", "s", "0"), ("RPUSH", "l", "a", "b"), ("BLMOVE", "l", "d", "LEFT", "LEFT", "0"),
                ("BLPOP", "d", "0"), ("BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "3")]:
        assert p.both(*cmd) == ("+", "QUEUED")
    p.both("EXEC")
    p.both("KEYS", "*", sort=True)


# --- blocking: served by other clients -------------------------------------------------------

@pytest.mark.parametrize("resp", [2, 3])
def test_blpop_served_by_push(pair: Any, resp: int) -> None:
    a = pair.block("BLPOP", "k1", "k2", "0", resp=resp)
    b = pair.block("BRPOP", "k2", "0", resp=resp)
    c = pair.block("BLMPOP", "0", "2", "k3", "k2", "RIGHT", "COUNT", "2", resp=resp)
    assert pair.both("RPUSH", "k2", "x", "y", "z", "w", "v") == (":", 5)   # the pusher sees the full length
    assert a.read() == arr(b"k2", b"x")
    assert b.read() == arr(b"k2", b"v")
    assert c.read() == ("*", [("$", b"k2"), arr(b"w", b"z")])
    assert pair.both("LRANGE", "k2", "0", "-1") == arr(b"y")
    for conn in (a, b, c):
        conn.close()


def test_timeouts(pair: Any) -> None:
    for resp in (2, 3):
        conns = []
        for cmd in [("BLPOP", "k", "0.1"), ("BRPOP", "k", "k2", "0.1"),
                    ("BLMOVE", "k", "d", "LEFT", "RIGHT", "0.1"),
                    ("BRPOPLPUSH", "k", "d", "0.1"), ("BLMPOP", "0.1", "1", "k", "LEFT")]:
            conn = pair.connect(resp)
            conn.send(*cmd)
            conns.append(conn)
        start = time.monotonic()
        for conn in conns:
            assert conn.read() == (("_", None) if resp == 3 else ("*", None))   # null array, even for BLMOVE
        elapsed = time.monotonic() - start
        assert 0.07 < elapsed < 1.5
        for conn in conns:
            assert conn.both("PING") == ("+", "PONG")                           # the connection goes on
            conn.close()
    assert pair.both("EXISTS", "k", "d") == (":", 0)


def test_fifo_over_three_blocked_clients(pair: Any) -> None:
    clients = [pair.block("BLPOP", "q", "0") for _ in range(3)]
    assert pair.both("RPUSH", "q", "1", "2") == (":", 2)
    assert clients[0].read() == arr(b"q", b"1")
    assert clients[1].read() == arr(b"q", b"2")
    clients[2].quiet()
    assert pair.both("EXISTS", "q") == (":", 0)
    assert pair.both("LPUSH", "q", "3") == (":", 1)
    assert clients[2].read() == arr(b"q", b"3")
    # Served clients are no longer in the queue: the next push stays in the list.
    pair.both("RPUSH", "q", "4")
    assert pair.both("LRANGE", "q", "0", "-1") == arr(b"4")
    for conn in clients:
        conn.close()


def test_one_push_serves_several_keys_and_clients(pair: Any) -> None:
    a = pair.block("BRPOP", "x", "y", "0")
    b = pair.block("BLPOP", "y", "x", "0")
    pair.both("MULTI")
    pair.both("RPUSH", "y", "y1", "y2")
    pair.both("RPUSH", "x", "x1")
    pair.both("EXEC")
    # Keys are served in the order they became ready: y first, to both clients.
    assert a.read() == arr(b"y", b"y2")
    assert b.read() == arr(b"y", b"y1")
    assert pair.both("LRANGE", "x", "0", "-1") == arr(b"x1")
    a.close()
    b.close()


def test_push_then_pop_in_a_transaction_serves_nobody(pair: Any) -> None:
    a = pair.block("BLPOP", "k", "0")
    pair.both("MULTI")
    pair.both("RPUSH", "k", "x")
    pair.both("LPOP", "k")
    assert pair.both("EXEC") == ("*", [(":", 1), ("$", b"x")])
    a.quiet()
    pair.both("RPUSH", "k", "z")
    assert a.read() == arr(b"k", b"z")
    a.close()


def test_blmove_chain_and_lmove_into_blocked_key(pair: Any) -> None:
    a = pair.block("BLMOVE", "x", "y", "LEFT", "RIGHT", "0")
    b = pair.block("BRPOPLPUSH", "y", "z", "0")
    c = pair.block("BLPOP", "z", "0")
    assert pair.both("RPUSH", "x", "e1", "e2") == (":", 2)
    assert a.read() == ("$", b"e1")
    assert b.read() == ("$", b"e1")
    assert c.read() == arr(b"z", b"e1")
    pair.both("KEYS", "*", sort=True)
    pair.both("LRANGE", "x", "0", "-1")
    # LMOVE (not blocking) into a key a client waits on serves that client.
    d = pair.block("BLPOP", "target", "0")
    assert pair.both("LMOVE", "x", "target", "LEFT", "LEFT") == ("$", b"e2")
    assert d.read() == arr(b"target", b"e2")
    assert pair.both("EXISTS", "x", "target") == (":", 0)
    # A rotation on the key itself, then another client takes the element.
    e = pair.block("BLMOVE", "loop", "loop", "LEFT", "RIGHT", "0")
    f = pair.block("BLPOP", "loop", "0")
    pair.both("RPUSH", "loop", "v")
    assert e.read() == ("$", b"v")
    assert f.read() == arr(b"loop", b"v")
    assert pair.both("EXISTS", "loop") == (":", 0)
    for conn in (a, b, c, d, e, f):
        conn.close()


def test_wrong_type_while_blocked(pair: Any) -> None:
    # The key becomes a string: a list pop keeps waiting.
    a = pair.block("BLPOP", "k", "0")
    pair.both("SET", "k", "x")
    a.quiet()
    pair.both("DEL", "k")
    pair.both("RPUSH", "k", "v")
    assert a.read() == arr(b"k", b"v")
    # BLMOVE whose destination turned into a string: unblocked with WRONGTYPE, source intact.
    pair.both("SET", "dst", "x")
    b = pair.block("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0")
    pair.both("RPUSH", "src", "1", "2")
    assert b.read() == WRONGTYPE
    assert pair.both("LRANGE", "src", "0", "-1") == arr(b"1", b"2")
    assert b.both("PING") == ("+", "PONG")
    a.close()
    b.close()


def test_client_disconnecting_while_blocked(pair: Any) -> None:
    gone = pair.block("BLPOP", "k", "0")
    stays = pair.block("BRPOP", "k", "0")
    gone.close()
    time.sleep(BLOCK_WAIT)
    pair.both("RPUSH", "k", "a", "b")
    assert stays.read() == arr(b"k", b"b")          # the first waiter left: the second is served
    assert pair.both("LRANGE", "k", "0", "-1") == arr(b"a")
    stays.close()
    alone = pair.block("BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
    alone.close()
    time.sleep(BLOCK_WAIT)
    pair.both("RPUSH", "src", "x")
    assert pair.both("LRANGE", "src", "0", "-1") == arr(b"x")   # nobody took it
    assert pair.both("EXISTS", "dst") == (":", 0)


def test_commands_pipelined_behind_a_block_wait(pair: Any) -> None:
    conn = pair.connect()
    for side in (conn.real, conn.mem):
        side.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n0\r\n*2\r\n$4\r\nLLEN\r\n$1\r\nk\r\n")
    conn.quiet()
    pair.both("RPUSH", "k", "a", "b")
    assert conn.read() == arr(b"k", b"a")
    assert conn.read() == (":", 1)
    conn.close()


def test_expired_lists_and_ttls(p: Any) -> None:
    p.both("RPUSH", "k", "a", "b")
    p.both("PEXPIRE", "k", "30")
    assert p.both("LPUSH", "k", "c") == (":", 3)          # in place: the TTL stays
    assert p.both("TTL", "k") == (":", 0)
    p.both("RPUSH", "gone", "a")
    p.both("PEXPIRE", "gone", "1")
    time.sleep(0.05)
    assert p.both("LLEN", "k") == (":", 0)
    assert p.both("LPUSHX", "k", "x") == (":", 0)
    assert p.both("RPOPLPUSH", "gone", "k") == p.null
    assert p.both("LPUSH", "k", "new") == (":", 1)
    assert p.both("TTL", "k") == (":", -1)                 # a new list has no TTL
    p.both("RPUSH", "m", "1", "2")
    p.both("EXPIRE", "m", "100")
    p.both("LTRIM", "m", "1", "1")
    p.both("TTL", "m")
    p.both("LMOVE", "m", "m", "LEFT", "RIGHT")
    p.both("TTL", "m")
    p.both("LPOP", "m")
    assert p.both("TTL", "m") == (":", -2)


def test_keyspace_hits_like_redis(pair: Any) -> None:
    """Reads (LLEN LRANGE LINDEX LPOS) count keyspace hits and misses; writes do not."""
    pair.both("SET", "s", "x")
    assert_counted_alike(pair, [
        ("RPUSH", "l", "a", "b", "c"), ("LLEN", "l"), ("LLEN", "n"), ("LRANGE", "l", "0", "-1"),
        ("LRANGE", "n", "0", "1"), ("LINDEX", "l", "0"), ("LINDEX", "n", "0"), ("LPOS", "l", "a"),
        ("LPOS", "n", "a"), ("LSET", "l", "0", "q"), ("LINSERT", "l", "BEFORE", "q", "z"),
        ("LREM", "l", "0", "a"), ("LTRIM", "l", "0", "-1"), ("LPOP", "l"), ("LPOP", "n"),
        ("LMOVE", "l", "d", "LEFT", "LEFT"), ("LMPOP", "2", "n", "l", "LEFT"), ("BLPOP", "n", "d", "0"),
        ("LLEN", "s"), ("LRANGE", "s", "0", "1"), ("LPOS", "s", "a"), ("LINDEX", "s", "0")])


def test_changes_counted_like_redis(pair: Any) -> None:
    """rdb_changes_since_last_save grows as in Redis 7.0: per element pushed, popped, removed or
    trimmed, one per LSET/LINSERT/move; served BLPOP/BLMOVE add nothing, served BLMPOP its count."""
    def changes(*commands: tuple[Any, ...]) -> None:
        assert_counted_alike(pair, commands, counters=("rdb_changes_since_last_save",), section="persistence")

    changes(("RPUSH", "l", "a", "b", "c", "d"), ("LPUSH", "l", "x", "y"), ("LPUSHX", "l", "1", "2"),
            ("RPUSHX", "nokey", "1"), ("LPOP", "l"), ("RPOP", "l", "2"), ("LPOP", "l", "0"),
            ("LSET", "l", "0", "q"), ("LINSERT", "l", "BEFORE", "q", "z"),
            ("LINSERT", "l", "AFTER", "no", "z"), ("LREM", "l", "0", "a"), ("LREM", "l", "1", "no"),
            ("LTRIM", "l", "1", "-2"), ("LTRIM", "l", "0", "-1"), ("LMOVE", "l", "d", "LEFT", "LEFT"),
            ("RPOPLPUSH", "l", "d"), ("LMOVE", "d", "d", "LEFT", "RIGHT"),
            ("LMPOP", "1", "d", "LEFT", "COUNT", "9"), ("RPUSH", "e", "1", "2", "3"), ("RPOP", "e", "5"),
            ("RPUSH", "e", "1", "1"), ("LREM", "e", "0", "1"), ("RPUSH", "e", "1", "2"),
            ("LTRIM", "e", "5", "6"), ("RPUSH", "e", "1", "2"), ("BLPOP", "e", "0"),
            ("BLMOVE", "e", "f", "LEFT", "LEFT", "0"), ("RPUSH", "e", "1", "2"),
            ("BLMPOP", "0", "1", "e", "LEFT", "COUNT", "5"), ("LPOP", "nokey", "3"))
    for blocking in [("BLPOP", "k", "0"), ("BLMOVE", "k", "k2", "LEFT", "LEFT", "0"),
                     ("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "5"), ("BRPOPLPUSH", "k", "k3", "0")]:
        conn = pair.block(*blocking)
        changes(("RPUSH", "k", "a", "b", "c"))
        conn.read()
        conn.close()
        pair.both("DEL", "k", "k2", "k3")


# --- propagation (in-process engine) ---------------------------------------------------------

def test_served_blocking_pops_propagate_as_plain_pops() -> None:
    engine, _, aof = in_process()
    a, b, c, d = connect(engine), connect(engine), connect(engine), connect(engine)
    assert engine.execute(a, [b"BLPOP", b"k", b"0"]) is NO_REPLY
    assert engine.execute(b, [b"BLMPOP", b"0", b"1", b"k", b"RIGHT", b"COUNT", b"5"]) is NO_REPLY
    assert engine.execute(c, [b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0"]) is NO_REPLY
    assert engine.execute(d, [b"BRPOPLPUSH", b"dst", b"d2", b"0"]) is NO_REPLY
    assert aof.commands == []                          # blocking changed nothing
    writer = connect(engine)
    assert engine.execute(writer, [b"RPUSH", b"k", b"1", b"2", b"3"]) == 3
    assert a.sent == [[b"k", b"1"]] and b.sent == [[b"k", [b"3", b"2"]]]
    assert engine.execute(writer, [b"LPUSH", b"src", b"x"]) == 1
    assert c.sent == [b"x"] and d.sent == [b"x"]
    assert aof.commands == [[b"RPUSH", b"k", b"1", b"2", b"3"], [b"LPOP", b"k"], [b"RPOP", b"k", b"2"],
                            [b"LPUSH", b"src", b"x"], [b"LMOVE", b"src", b"dst", b"LEFT", b"RIGHT"],
                            [b"RPOPLPUSH", b"dst", b"d2"]]
    aof.entries.clear()
    # Answered at once: propagated the same way; LPOP of a missing key propagates nothing.
    engine.execute(writer, [b"RPUSH", b"k", b"1", b"2", b"3"])
    assert engine.execute(writer, [b"BRPOP", b"k", b"0"]) == [b"k", b"3"]
    assert engine.execute(writer, [b"LMPOP", b"1", b"k", b"LEFT", b"COUNT", b"9"]) == [b"k", [b"1", b"2"]]
    assert engine.execute(writer, [b"LPOP", b"nokey"]) is None
    engine.execute(writer, [b"RPUSH", b"s", b"v"])
    assert engine.execute(writer, [b"BLMOVE", b"s", b"t", b"RIGHT", b"LEFT", b"5"]) == b"v"
    assert aof.commands == [[b"RPUSH", b"k", b"1", b"2", b"3"], [b"RPOP", b"k"], [b"LPOP", b"k", b"2"],
                            [b"RPUSH", b"s", b"v"], [b"LMOVE", b"s", b"t", b"RIGHT", b"LEFT"]]


def test_blocked_client_is_served_in_its_own_database() -> None:
    engine, writer, _ = in_process()
    waiting = connect(engine)
    engine.execute(waiting, [b"SELECT", b"3"])
    engine.execute(waiting, [b"BLPOP", b"k", b"0"])
    engine.execute(writer, [b"RPUSH", b"k", b"db0"])
    assert waiting.sent == []
    engine.execute(writer, [b"SELECT", b"3"])
    engine.execute(writer, [b"RPUSH", b"k", b"db3"])
    assert waiting.sent == [[b"k", b"db3"]]
    assert engine.dbs[0].data[b"k"] == type(engine.dbs[0].data[b"k"])([b"db0"])
    assert b"k" not in engine.dbs[3].data
