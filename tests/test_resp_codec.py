"""The pure RESP codec and glob matcher (no sockets): parsing in any chunking, both parse paths
agreeing, Redis's protocol errors, reply encoding per protocol version, bounded glob matching."""

from __future__ import annotations

import random

import pytest

from cascade_cli.resp.glob import match
from cascade_cli.resp.protocol import (NULL_ARRAY, OK, ErrorReply, ProtocolError, Push, RequestParser,
                                       SetReply, Verbatim, split_args, to_bytes)


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def parse_all(data: bytes, cut_points: list[int], fast: bool = True) -> list[list[bytes]]:
    parser = RequestParser()
    if not fast:
        parser._reader = None
    out: list[list[bytes]] = []
    last = 0
    for cut in [*cut_points, len(data)]:
        out += [list(map(bytes, c)) for c in parser.feed(data[last:cut])]
        last = cut
    return out


def random_commands(rng: random.Random, count: int) -> list[list[bytes]]:
    commands = []
    for _ in range(count):
        nargs = rng.randint(1, 6)
        args = []
        for _ in range(nargs):
            size = rng.choice([0, 1, 3, 10, 100, 40000])
            alphabet = b"ab\r\n$*-0:+\x00\xff"
            args.append(bytes(alphabet[b % len(alphabet)] for b in rng.randbytes(size)))
        commands.append(args)
    return commands


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_and_either_path_gives_the_same_commands(seed: int) -> None:
    rng = random.Random(seed)
    commands = random_commands(rng, 12)
    data = b"".join(multibulk(*c) for c in commands)
    cuts = sorted(rng.sample(range(1, len(data)), min(8, len(data) - 1)))
    assert parse_all(data, []) == commands
    assert parse_all(data, [], fast=False) == commands
    assert parse_all(data, cuts) == commands
    assert parse_all(data, cuts, fast=False) == commands


def test_byte_by_byte_feeding() -> None:
    data = multibulk(b"SET", b"key", b"value") + b"PING\r\n" + multibulk(b"GET", b"key")
    assert parse_all(data, list(range(1, len(data)))) == [[b"SET", b"key", b"value"], [b"PING"],
                                                          [b"GET", b"key"]]


def test_a_big_bulk_arriving_in_many_chunks_is_gathered_once() -> None:
    value = bytes(range(256)) * 4096                    # 1 MiB
    data = multibulk(b"SET", b"k", value)
    parser = RequestParser()
    got = []
    for start in range(0, len(data), 65536):
        got += parser.feed(data[start:start + 65536])
    assert [list(map(bytes, c)) for c in got] == [[b"SET", b"k", value]]
    assert parser.pending == 0


@pytest.mark.parametrize("data, message", [
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*3000000000\r\n", "invalid multibulk length"),
    (b"*1\r\n:5\r\n", "expected '$', got ':'"),
    (b"*1\r\n$-3\r\n", "invalid bulk length"),
    (b"*1\r\n$600000000\r\n", "invalid bulk length"),
    (b"*1\r\n$03\r\nabc\r\n", "invalid bulk length"),
    (b'SET "abc\r\n', "unbalanced quotes in request"),
    (b'SET "a"b\r\n', "unbalanced quotes in request"),
    (b"x" * (64 * 1024 + 1), "too big inline request"),
    (b"*" + b"1" * (64 * 1024 + 1), "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * (64 * 1024 + 1), "too big bulk count string"),
])
def test_protocol_errors_carry_redis_messages(data: bytes, message: str) -> None:
    for fast in (True, False):
        parser = RequestParser()
        if not fast:
            parser._reader = None
        with pytest.raises(ProtocolError) as caught:
            parser.feed(multibulk(b"PING") + data)
        assert caught.value.reply.text == f"ERR Protocol error: {message}"
        assert caught.value.commands == [[b"PING"]]        # what came before still runs


def test_unauthenticated_clients_get_small_limits() -> None:
    parser = RequestParser()
    parser.auth_required = True
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parser.feed(b"*11\r\n")
    parser = RequestParser()
    parser.auth_required = True
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        parser.feed(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n")


def test_empty_and_null_multibulk_are_skipped() -> None:
    assert parse_all(b"*0\r\n*-1\r\n\r\n\r\n" + multibulk(b"PING"), []) == [[b"PING"]]


@pytest.mark.parametrize("line, args", [
    (b"set a b", [b"set", b"a", b"b"]),
    (b"  set   a\tb  ", [b"set", b"a", b"b"]),
    (b'set "a b" \'c d\'', [b"set", b"a b", b"c d"]),
    (b'echo "\\x41\\n\\t\\"q"', [b"echo", b'A\n\t"q']),
    (b"echo 'it\\'s'", [b"echo", b"it's"]),
    (b'echo ""', [b"echo", b""]),
    (b"", []),
])
def test_inline_splitting(line: bytes, args: list[bytes]) -> None:
    assert split_args(line) == args


@pytest.mark.parametrize("value, resp2, resp3", [
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (b"x", b"$1\r\nx\r\n", b"$1\r\nx\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (7, b":7\r\n", b":7\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    ({b"a": 1}, b"*2\r\n$1\r\na\r\n:1\r\n", b"%1\r\n$1\r\na\r\n:1\r\n"),
    (SetReply([b"a"]), b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n"),
    (Push([b"message"]), b"*1\r\n$7\r\nmessage\r\n", b">1\r\n$7\r\nmessage\r\n"),
    (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    (Verbatim("a:1"), b"$3\r\na:1\r\n", b"=7\r\ntxt:a:1\r\n"),
    ([1, [b"x", None]], b"*2\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n", b"*2\r\n:1\r\n*2\r\n$1\r\nx\r\n_\r\n"),
])
def test_reply_encoding(value: object, resp2: bytes, resp3: bytes) -> None:
    assert to_bytes(value, 2) == resp2
    assert to_bytes(value, 3) == resp3


@pytest.mark.parametrize("pattern, text, expected", [
    (b"*", b"anything", True),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),               # reversed ranges work as Redis's do
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"user:*:name", b"user:42:name", True),
    (b"*a*b", b"xaxxb", True),
    (b"*a*b", b"xaxxbc", False),
    (b"[abc", b"a", True),
])
def test_glob(pattern: bytes, text: bytes, expected: bool) -> None:
    assert match(pattern, text) is expected


def test_glob_work_is_bounded_on_pathological_patterns() -> None:
    pattern = b"a*" * 300 + b"b"
    text = b"a" * 5000
    # quadratic at worst, never exponential: pytest-timeout bounds it; benchmarks/resp_bigvalues.py
    # measures it against matching `*` on the same text
    assert not match(pattern, text)
