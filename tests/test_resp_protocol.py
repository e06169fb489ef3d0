"""Protocol robustness, differential: inline commands, pipelining, malformed RESP (Redis's exact
"ERR Protocol error: ..." then the connection closes while other clients go on), unauthenticated
length limits, huge bulk lengths refused or awaited without allocating, half-sent frames, binary
garbage, and a seeded fuzz test: the in-memory server never dies, answers well-formed replies or
closes, and a fresh connection still works after every case.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import _stop, start_memory_server
from resp_support import Incomplete, Pair, RawClient, encode_command, parse_reply, started_pair


def exchange(port: int, data: bytes, wait: float = 0.3) -> tuple[bytes, bool]:
    """Send `data` on a fresh connection; return (what was read, closed by server). Reading stops
    at the server's close, once complete replies were followed by 60 ms of quiet (a protocol
    error is always followed by the close), or after `wait` seconds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data)
    sock.settimeout(0.02)
    out = b""
    closed = False
    deadline = time.monotonic() + wait
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if out and time.monotonic() - quiet_since > 0.06 and _complete(out) \
                        and b"-ERR Protocol error" not in out:
                    break
                continue
            if not chunk:
                closed = True
                break
            out += chunk
            quiet_since = time.monotonic()
    except ConnectionResetError:
        closed = True
    finally:
        sock.close()
    return out, closed


def _complete(data: bytes) -> bool:
    try:
        replies_of(data)
    except (Incomplete, ValueError):
        return False
    return True


def both_exchange(pair: Pair, data: bytes, wait: float = 0.3) -> tuple[bytes, bool]:
    real = exchange(pair.real_port, data, wait)
    mem = exchange(pair.mem_port, data, wait)
    assert mem == real, f"{data[:80]!r}: redis-server {real!r}, in-memory {mem!r}"
    return real


def replies_of(data: bytes) -> list[tuple[str, object]]:
    """Parse a whole reply stream; fails on anything malformed or cut short."""
    out = []
    pos = 0
    while pos < len(data):
        reply, pos = parse_reply(data, pos)
        out.append(reply)
    return out


def alive(port: int) -> None:
    client = RawClient(port, timeout=5)
    try:
        assert client.call("PING") == ("+", "PONG")
    finally:
        client.close()


# --- inline commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"PING\r\n", b"PING\n", b"\r\n\r\nPING\r\n", b"\n\n\nPING\n", b"  PING   \r\n", b"ping\r\n",
    b'ECHO "a b"\r\n', b"ECHO 'a b'\r\n", b'ECHO "\\x41\\n\\r\\t\\b\\a\\\\"\r\n', b"ECHO 'it\\'s'\r\n",
    b'ECHO "\\xZZ"\r\n', b'ECHO "\\q"\r\n', b"ECHO a'b'\r\n", b"ECHO a\tb\r\n", b'""\r\n', b"''\r\n",
    b'SET k "a\\"b"\r\nGET k\r\n', b"FOO a\rb\r\n", b"FOO " + b"a" * 200 + b"\r\n", b"GET \xff\xfe\r\n",
    b'ECHO "\xc3\xa9"\r\n',
])
def test_inline_commands(pair: Pair, data: bytes) -> None:
    out, closed = both_exchange(pair, data)
    assert out and not closed


def test_empty_lines_answer_nothing(pair: Pair) -> None:
    for data in (b"\r\n", b"\n\n\n", b"   \r\n", b"*0\r\n", b"*-5\r\n"):
        assert both_exchange(pair, data, wait=0.15) == (b"", False)


def test_null_multibulk_alone(pair: Pair) -> None:
    assert both_exchange(pair, b"*-1\r\n", wait=0.15) == (b"", False)


def test_inline_and_multibulk_mixed_in_one_write(pair: Pair) -> None:
    data = (b"SET a 1\r\n" + encode_command("INCR", "a") + b"GET a\n" + b"*0\r\n" + encode_command("ECHO", "x\r\ny")
            + b"ECHO 'q'\r\n")
    out, closed = both_exchange(pair, data)
    assert replies_of(out) == [("+", "OK"), (":", 2), ("$", b"2"), ("$", b"x\r\ny"), ("$", b"q")]


# --- pipelining ------------------------------------------------------------------------------------------

def test_pipeline_of_1000_commands_in_one_write(pair: Pair) -> None:
    data = b"".join(encode_command("RPUSH", "list", str(i)) for i in range(1000)) + encode_command("LLEN", "list")
    data += b"".join(b"LINDEX list %d\r\n" % i for i in range(0, 1000, 7))
    for client in (pair.real, pair.mem):
        client.send_raw(data)
        replies = [client.read() for _ in range(1001 + len(range(0, 1000, 7)))]
        assert replies[:1000] == [(":", i + 1) for i in range(1000)]
        assert replies[1000] == (":", 1000)
        assert replies[1001:] == [("$", str(i).encode()) for i in range(0, 1000, 7)]
    pair.both("PING")


def test_pipeline_split_at_every_byte(pair: Pair) -> None:
    data = encode_command("SET", "k", "v" * 10) + b"GET k\r\n" + encode_command("ECHO", "")
    for client in (pair.real, pair.mem):
        for byte in data:
            client.send_raw(bytes([byte]))
        assert [client.read() for _ in range(3)] == [("+", "OK"), ("$", b"v" * 10), ("$", b"")]


# --- malformed requests: exact error, then the connection closes --------------------------------------------

@pytest.mark.parametrize("data,error", [
    (b'ECHO "abc\r\n', "unbalanced quotes in request"),
    (b"ECHO 'abc\r\n", "unbalanced quotes in request"),
    (b'ECHO "a"b\r\n', "unbalanced quotes in request"),
    (b'"\r\n', "unbalanced quotes in request"),
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*3000000000\r\n", "invalid multibulk length"),
    (b"*01\r\n$4\r\nPING\r\n", "invalid multibulk length"),
    (b"*+1\r\n$4\r\nPING\r\n", "invalid multibulk length"),
    (b"* 1\r\n$4\r\nPING\r\n", "invalid multibulk length"),
    (b"*1 \r\n$4\r\nPING\r\n", "invalid multibulk length"),
    (b"*1\n$4\r\nPING\r\n", "invalid multibulk length"),
    (b"*1\r\nx\r\n", "expected '$', got 'x'"),
    (b"*2\r\n$4\r\nPING\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$abc\r\n", "invalid bulk length"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$-5\r\n", "invalid bulk length"),
    (b"*1\r\n$04\r\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$+4\r\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$ 4\r\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$4\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),
    (b"*1\r\n$600000000\r\n", "invalid bulk length"),
    (b"x" * 70000, "too big inline request"),
    (b"*" + b"1" * 70000, "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 70000, "too big bulk count string"),
])
def test_protocol_errors(pair: Pair, data: bytes, error: str) -> None:
    out, closed = both_exchange(pair, data)
    assert out == f"-ERR Protocol error: {error}\r\n".encode() and closed
    pair.both("PING")                           # the other connections go on


def test_commands_before_the_error_are_answered(pair: Pair) -> None:
    for data in (b"PING\r\n*abc\r\nPING\r\n", encode_command("SET", "a", "1") + b"*1\r\n$x\r\n",
                 b"ECHO one\r\nECHO 'two\r\n"):
        out, closed = both_exchange(pair, data)
        assert closed and out.endswith(b"\r\n") and b"-ERR Protocol error: " in out
    pair.both("GET", "a")


def test_error_reply_while_another_client_keeps_working(pair: Pair) -> None:
    with pair.connect() as other:
        other.both("SET", "k", "1")
        for client in (pair.real, pair.mem):
            client.send_raw(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n")
            assert client.read() == ("+", "PONG")
            assert client.read() == ("-", "ERR Protocol error: invalid bulk length")
            assert client.closed_by_server()
        other.both("INCR", "k")


# --- lengths: allowed ones are awaited without allocating, bigger ones refused -----------------------------

def test_valid_big_lengths_wait_for_data(pair: Pair) -> None:
    for data in (b"*1048577\r\n", b"*1\r\n$536870912\r\n", b"*1\r\n$512000000\r\n", b"*1\r\n$4\r\nPINGxx",
                 b"*1\r\n$4\r\nPING\r\n*1\r\n$"):
        out, closed = both_exchange(pair, data, wait=0.15)
        assert not closed


def test_proto_max_bulk_len_follows_config(pair: Pair) -> None:
    pair.both("CONFIG", "SET", "proto-max-bulk-len", "1mb")
    try:
        for data in (b"*2\r\n$4\r\nECHO\r\n$1048577\r\n", b"*1\r\n$2000000\r\n"):
            assert both_exchange(pair, data) == (b"-ERR Protocol error: invalid bulk length\r\n", True)
        value = b"v" * (1024 * 1024)
        assert both_exchange(pair, encode_command("ECHO", value))[0] == b"$%d\r\n%s\r\n" % (len(value), value)
    finally:
        pair.both("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to measure memory")
def test_huge_declared_bulk_is_not_allocated(fuzz_server: tuple[int, int, Path]) -> None:
    port, pid, _ = fuzz_server
    before = _rss(pid)
    socks = []
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"*2\r\n$3\r\nSET\r\n$500000000\r\n" + b"x" * 100_000)
        socks.append(sock)
    time.sleep(0.3)
    alive(port)
    assert _rss(pid) - before < 64 * 1024 * 1024
    for sock in socks:
        sock.close()
    time.sleep(0.1)
    alive(port)


def test_big_bulk_arriving_in_pieces(pair: Pair) -> None:
    value = bytes(random.Random(3).randbytes(300_000))
    data = encode_command("SET", "big", value) + encode_command("STRLEN", "big")
    for client in (pair.real, pair.mem):
        for start in range(0, len(data), 7919):
            client.send_raw(data[start:start + 7919])
        assert client.read() == ("+", "OK") and client.read() == (":", 300_000)
    pair.both("GET", "big")


# --- half-sent frames, disconnects, garbage ---------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", b"*3\r\n$3\r\nSE",
    b"*3\r\n", b"*", b"SET k half", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"z" * 50_000,
])
def test_half_sent_frame_then_disconnect(pair: Pair, data: bytes) -> None:
    for port in (pair.real_port, pair.mem_port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(data)
        time.sleep(0.02)
        sock.close()
    time.sleep(0.05)
    assert pair.both("EXISTS", "k") == (":", 0)
    assert pair.both("PING") == ("+", "PONG")


def test_client_stalled_mid_frame_does_not_block_others(pair: Pair) -> None:
    stalled = []
    for port in (pair.real_port, pair.mem_port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"*2\r\n$4\r\nECHO\r\n$10\r\nabc")
        stalled.append(sock)
    pair.both("SET", "x", "1")
    pair.both("GET", "x")
    for sock in stalled:
        sock.sendall(b"defghij\r\n")
        sock.settimeout(2)
        assert sock.recv(100) == b"$10\r\nabcdefghij\r\n"
        sock.close()


def test_binary_garbage(pair: Pair) -> None:
    rng = random.Random(7)
    for _ in range(20):
        garbage = bytes(rng.choice(b"\x01\x02\x7f\x80\xfe\xffab *$\t") for _ in range(rng.randint(1, 60)))
        real = exchange(pair.real_port, garbage + b"\r\n", 0.15)
        mem = exchange(pair.mem_port, garbage + b"\r\n", 0.15)
        assert mem[1] == real[1]
        assert [kind for kind, _ in replies_of(mem[0])] == [kind for kind, _ in replies_of(real[0])]
    alive(pair.mem_port)


def test_unknown_binary_command_name_is_echoed_raw(pair: Pair) -> None:
    both_exchange(pair, b"\xff\xfe\r\n")
    both_exchange(pair, encode_command(b"\xe9\xe9\xe9"))


def test_inline_with_nul_byte(pair: Pair) -> None:
    both_exchange(pair, b"PING\x00X\r\n", wait=0.15)


# --- unauthenticated limits ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with started_pair(tmp_path_factory, "proto-auth", "--requirepass", "secret") as ports, \
            Pair(*ports) as both:
        yield both


def test_unauthenticated_lengths(auth_pair: Pair) -> None:
    for data, expected in [(b"*11\r\n", (b"-ERR Protocol error: unauthenticated multibulk length\r\n", True)),
                           (b"*1\r\n$16385\r\n", (b"-ERR Protocol error: unauthenticated bulk length\r\n", True)),
                           (b"*10\r\n", (b"", False)), (b"*1\r\n$16384\r\n", (b"", False)),
                           (b"PING\r\n", (b"-NOAUTH Authentication required.\r\n", False)),
                           (encode_command("AUTH", "wrong") + b"*11\r\n",
                            (b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                             b"-ERR Protocol error: unauthenticated multibulk length\r\n", True))]:
        assert both_exchange(auth_pair, data) == expected
    for client in (auth_pair.real, auth_pair.mem):
        assert client.call("AUTH", "secret") == ("+", "OK")
        client.send_raw(b"*12\r\n" + b"".join(b"$1\r\na\r\n" for _ in range(12)))
        assert client.read()[0] == "-"
        assert client.call("ECHO", "x" * 20000) == ("$", b"x" * 20000)


def test_auth_then_big_request_in_one_write(auth_pair: Pair) -> None:
    both_exchange(auth_pair, b"AUTH secret\r\n*11\r\n$1\r\na\r\n")


# --- fuzz ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """A private in-memory server (random commands must not disturb the shared one):
    (port, pid, its stderr log)."""
    directory = tmp_path_factory.mktemp("proto-fuzz")
    proc, port = start_memory_server(directory)
    yield port, proc.pid, directory / "server.log"
    assert proc.poll() is None, "the in-memory server died"
    _stop(proc)


SEEDS = [
    ["SET", "k", "v"], ["GET", "k"], ["ECHO", "hello"], ["PING"], ["LPUSH", "l", "a", "b"], ["LRANGE", "l", "0", "-1"],
    ["HSET", "h", "f", "v"], ["HGETALL", "h"], ["SADD", "s", "1", "2"], ["SMEMBERS", "s"], ["ZADD", "z", "1", "m"],
    ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["INCR", "n"], ["INCRBYFLOAT", "f", "1.5"], ["DEL", "k", "l"],
    ["MSET", "a", "1", "b", "2"], ["MGET", "a", "b", "c"], ["EXPIRE", "a", "100"], ["TTL", "a"], ["TYPE", "h"],
    ["APPEND", "k", "xyz"], ["GETRANGE", "k", "0", "-1"], ["XADD", "x", "*", "f", "v"], ["XRANGE", "x", "-", "+"],
    ["MULTI"], ["EXEC"], ["HELLO", "3"], ["HELLO", "2"], ["CLIENT", "SETNAME", "fuzz"], ["BLPOP", "nolist", "0.01"],
    ["SCAN", "0", "COUNT", "5"], ["OBJECT", "ENCODING", "h"], ["SETRANGE", "k", "5", "abc"], ["BITCOUNT", "k"],
    ["SUBSCRIBE", "chan"], ["PUBLISH", "chan", "m"], ["WATCH", "k"], ["SINTERCARD", "1", "s"], ["INFO", "stats"],
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(raw) + 1)
        if choice < 0.25 and raw:
            raw[min(position, len(raw) - 1)] = rng.randrange(256)
        elif choice < 0.45:
            raw[position:position] = bytes(rng.choice(b"*$\r\n-0123456789:+ \x00\xff") for _ in range(rng.randint(1, 5)))
        elif choice < 0.6:
            del raw[position:position + rng.randint(1, 8)]
        elif choice < 0.75:
            raw += raw[position:]
        elif choice < 0.9:
            digits = [i for i, b in enumerate(raw) if 48 <= b <= 57]
            if digits:
                raw[rng.choice(digits)] = rng.choice(b"0123456789-")
        else:
            raw = raw[:position]
    return bytes(raw)


def _case(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return rng.randbytes(rng.randint(1, 200))
    commands = [rng.choice(SEEDS) for _ in range(rng.randint(1, 4))]
    if kind < 0.5:
        data = b"".join(b" ".join(arg.encode() for arg in command) + b"\r\n" for command in commands)
    else:
        data = b"".join(encode_command(*command) for command in commands)
    return _mutate(rng, data)


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    out = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_fuzz(fuzz_server: tuple[int, int, Path]) -> None:
    port, _, log = fuzz_server
    rng = random.Random(20240601)
    started = time.monotonic()
    for number in range(300):
        data = _case(rng)
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.settimeout(0.5)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)      # end of input: the server answers what it got, then closes
        except OSError:
            pass                              # already refused and closed: fine
        out = _read_until_closed(sock, time.monotonic() + 3)
        sock.close()
        try:
            replies_of(out)
        except (Incomplete, ValueError) as error:
            pytest.fail(f"case {number}: malformed reply stream {out[:200]!r} for {data[:200]!r}: {error!r}")
        alive(port)
    assert time.monotonic() - started < 20
    # the server never hit an internal error (asyncio logs unhandled exceptions with a traceback)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
