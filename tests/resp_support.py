"""Raw RESP clients for differential tests: send the same bytes to real Redis and to the
in-memory server, and compare the replies exactly (type and value), not as redis-py decodes them.

Replies are tagged tuples, so a null bulk and a null array, or a set and an array, differ:
    ("+", "OK")  ("-", "ERR ...")  (":", 5)  ("$", b"x")  ("$", None)  ("*", [...])  ("*", None)
    ("_", None)  ("%", [k, v, ...])  ("~", [...])  (">", [...])  (",", "1.5")  ("#", True)
    ("=", b"txt:...")  ("(", "123")
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

import pytest

Reply = tuple[str, Any]


class Incomplete(Exception):
    pass


def encode_command(*args: Any) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def parse_reply(buf: bytes, pos: int = 0) -> tuple[Reply, int]:
    """One reply from buf at pos -> (tagged reply, next pos); raises Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind = chr(buf[pos])
    line = buf[pos + 1:end]
    pos = end + 2
    if kind in "+-":
        return (kind, line.decode("utf-8", "replace")), pos
    if kind == ":":
        return (":", int(line)), pos
    if kind in ",(":
        return (kind, line.decode()), pos
    if kind == "#":
        return ("#", line == b"t"), pos
    if kind == "_":
        return ("_", None), pos
    if kind in "$=!":
        size = int(line)
        if size < 0:
            return (kind, None), pos
        if len(buf) < pos + size + 2:
            raise Incomplete
        return (kind, buf[pos:pos + size]), pos + size + 2
    if kind in "*~>%|":
        count = int(line)
        if count < 0:
            return (kind, None), pos
        if kind in "%|":
            count *= 2
        items = []
        for _ in range(count):
            item, pos = parse_reply(buf, pos)
            items.append(item)
        return (kind, items), pos
    raise ValueError(f"bad reply type {kind!r} in {buf[pos - 1:pos + 40]!r}")


class RawClient:
    """A blocking socket client speaking raw RESP to one server."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *args: Any) -> None:
        self.sock.sendall(encode_command(*args))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float | None = None) -> Reply:
        """The next reply; socket.timeout when none arrives within `timeout`."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    reply, pos = parse_reply(self.buf)
                    self.buf = self.buf[pos:]
                    return reply
                except Incomplete:
                    pass
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed by server")
                self.buf += chunk
        finally:
            if timeout is not None:
                self.sock.settimeout(10)

    def call(self, *args: Any) -> Reply:
        self.send(*args)
        return self.read()

    def closed_by_server(self, wait: float = 2.0) -> bool:
        """True when the server closes the connection (after any pending replies) within `wait`."""
        deadline = time.monotonic() + wait
        self.sock.settimeout(0.1)
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    return True
                if not chunk:
                    return True
                self.buf += chunk
            return False
        finally:
            self.sock.settimeout(10)

    def close(self) -> None:
        self.sock.close()


def plain(reply: Reply) -> Any:
    """Tagged reply -> plain Python (errors become ('error', text))."""
    kind, value = reply
    if kind == "-":
        return ("error", value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _sort_key(reply: Reply) -> str:
    return repr(reply)


def unordered(reply: Reply) -> Reply:
    """Sort an array/set reply's elements (and a map's pairs) for order-free comparison."""
    kind, value = reply
    if not isinstance(value, list):
        return reply
    if kind in "%|":
        pairs = sorted(zip(value[::2], value[1::2]), key=lambda pair: _sort_key(pair[0]))
        return kind, [item for pair in pairs for item in pair]
    return kind, sorted(value, key=_sort_key)


class Pair:
    """The same connection twice: `real` to redis-server, `mem` to the in-memory server.
    `resp` is the protocol both connections speak (see `hello`)."""

    def __init__(self, real_port: int, mem_port: int) -> None:
        self.real = RawClient(real_port)
        self.mem = RawClient(mem_port)
        self.real_port, self.mem_port = real_port, mem_port
        self.resp = 2

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, *args: Any) -> None:
        """Send to both without reading (a blocking command, pipelining)."""
        self.real.send(*args)
        self.mem.send(*args)

    def each(self, *args: Any) -> tuple[Reply, Reply]:
        """Send to both; return (real reply, memory reply) without comparing."""
        self.send(*args)
        return self.real.read(), self.mem.read()

    def both(self, *args: Any, sort: bool = False, mask: Callable[[Reply], Any] | None = None) -> Reply:
        """Send to both, assert the replies are identical (order-free with sort=True, after
        `mask(reply)` blanks volatile values), return it."""
        real, mem = self.each(*args)
        return self._same(repr(args), real, mem, sort, mask)

    @staticmethod
    def _same(what: str, real: Any, mem: Any, sort: bool = False,
              mask: Callable[[Reply], Any] | None = None) -> Any:
        if sort:
            real, mem = unordered(real), unordered(mem)
        if mask is not None:
            real, mem = mask(real), mask(mem)
        assert mem == real, f"{what}: redis-server answered {real!r}, in-memory answered {mem!r}"
        return real

    def run(self, *commands: tuple[Any, ...] | str, sort: bool = False) -> None:
        """`both` for each command: an argument tuple, or one shell-quoted line."""
        for command in commands:
            self.both(*(shlex.split(command) if isinstance(command, str) else command), sort=sort)

    def hello(self, version: int) -> None:
        """Switch both connections to RESP `version` (HELLO's replies differ in the server field)."""
        self.each("HELLO", str(version))
        self.resp = version

    @contextmanager
    def resp3(self) -> Iterator[Pair]:
        """Both connections speak RESP3 inside the block, RESP2 again after it."""
        self.hello(3)
        try:
            yield self
        finally:
            self.hello(2)

    @property
    def null(self) -> Reply:
        """A null bulk string as this pair's protocol writes it."""
        return ("_", None) if self.resp == 3 else ("$", None)

    @property
    def null_array(self) -> Reply:
        """A null array as this pair's protocol writes it (EXEC aborted, a pop from nothing)."""
        return ("_", None) if self.resp == 3 else ("*", None)

    def read(self, timeout: float = 3, sort: bool = False,
             mask: Callable[[Reply], Any] | None = None) -> Reply:
        """The next reply from each engine (a served blocked command, a push); they must be equal."""
        real, mem = self.real.read(timeout), self.mem.read(timeout)
        return self._same("next reply", real, mem, sort, mask)

    def read_many(self, count: int, sort: bool = False, timeout: float = 3) -> list[Reply]:
        """The next `count` replies from each engine, equal one by one (as multisets with sort)."""
        real = [self.real.read(timeout) for _ in range(count)]
        mem = [self.mem.read(timeout) for _ in range(count)]
        if sort:
            real, mem = sorted(real, key=repr), sorted(mem, key=repr)
        assert mem == real, f"next {count} replies: redis-server {real!r}, in-memory {mem!r}"
        return real

    def quiet(self, wait: float = 0.06) -> None:
        """Neither engine says anything within `wait` seconds (a command is still blocked)."""
        for side, client, timeout in (("redis-server", self.real, wait), ("in-memory", self.mem, 0.005)):
            try:
                reply = client.read(timeout)    # the in-memory side had `wait` seconds already
            except TimeoutError:
                continue
            pytest.fail(f"{side} answered {reply!r} instead of staying silent")

    def send_blocking(self, other: Pair, *args: Any) -> None:
        """Send `args` on `other` (more connections to the same servers) and wait until both
        servers count one more blocked client."""
        before = blocked_clients(self.real), blocked_clients(self.mem)
        other.send(*args)
        deadline = time.monotonic() + 2
        while (blocked_clients(self.real), blocked_clients(self.mem)) <= before:
            if time.monotonic() > deadline:
                pytest.fail(f"{args!r} did not block on both servers")
            time.sleep(0.005)

    def both_raw(self, data: bytes) -> Reply:
        """Send raw bytes to both; compare the next reply."""
        self.real.send_raw(data)
        self.mem.send_raw(data)
        real, mem = self.real.read(), self.mem.read()
        assert mem == real, f"{data!r}: redis-server answered {real!r}, in-memory answered {mem!r}"
        return real

    def connect(self, resp: int | None = None) -> Pair:
        """More connections to the same two servers, speaking RESP `resp` (by default, as these do)."""
        other = Pair(self.real_port, self.mem_port)
        if (self.resp if resp is None else resp) == 3:
            other.hello(3)
        return other

    def block(self, *args: Any, resp: int | None = None) -> Pair:
        """A new pair of connections that sent `args` and is now blocked on both servers."""
        other = self.connect(resp)
        self.send_blocking(other, *args)
        return other

    def close(self) -> None:
        self.real.close()
        self.mem.close()


def watch_change_exec(pair: Pair, other: Pair, watched: str | tuple[str, ...], change: tuple[Any, ...],
                      *queued: tuple[Any, ...]) -> Reply:
    """WATCH `watched` on `pair`, run `change` on `other`, then MULTI, `queued` (PING by default),
    EXEC on `pair`, every reply compared: EXEC's reply (returned) tells whether `change` touched
    a watched key."""
    pair.both("WATCH", *((watched,) if isinstance(watched, str) else watched))
    other.both(*change)
    pair.run(("MULTI",), *(queued or [("PING",)]))
    return pair.both("EXEC")


def pair_in_each_protocol() -> Any:
    """A fixture for a module (`p = pair_in_each_protocol()`): the differential `pair`, each test
    run twice, speaking RESP2 then RESP3 (`p.resp` tells which)."""
    @pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
    def fixture(pair: Pair, request: pytest.FixtureRequest) -> Pair:
        if request.param == 3:
            pair.hello(3)
        return pair
    return fixture


@contextmanager
def started_pair(tmp_path_factory: pytest.TempPathFactory, name: str,
                 *options: str) -> Iterator[tuple[int, int]]:
    """A private redis-server and in-memory server started with the same options:
    (real port, memory port), both stopped afterwards."""
    from conftest import _stop, start_memory_server, start_real_server
    real, real_port = start_real_server(tmp_path_factory.mktemp(f"{name}-real"), *options)
    try:
        mem, mem_port = start_memory_server(tmp_path_factory.mktemp(f"{name}-mem"), *options)
    except BaseException:
        _stop(real)
        raise
    try:
        yield real_port, mem_port
    finally:
        _stop(real)
        _stop(mem)


# --- INFO, CLIENT INFO / LIST ------------------------------------------------------------------------

def parse_info(text: bytes | str) -> dict[str, str]:
    """INFO text -> field -> value (section headers, blank lines and a RESP3 'txt:' prefix dropped)."""
    text = text.decode() if isinstance(text, bytes) else text
    out = {}
    for line in text.removeprefix("txt:").split("\r\n"):
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            out[key] = value
    return out


def info(client: RawClient, section: str) -> dict[str, str]:
    """INFO `section` of one server, parsed."""
    kind, text = client.call("INFO", section)
    assert kind in "$=", (kind, text)
    return parse_info(text)


def blocked_clients(client: RawClient) -> int:
    return int(info(client, "clients")["blocked_clients"])


KEYSPACE_COUNTERS = ("keyspace_hits", "keyspace_misses")


def assert_counted_alike(pair: Pair, commands: Iterable[tuple[Any, ...] | str],
                         counters: tuple[str, ...] = KEYSPACE_COUNTERS, section: str = "stats",
                         send: Callable[..., Any] = Pair.both) -> None:
    """Run each command on both engines with `send(pair, *command)` (default: replies must match;
    a string is one shell-quoted line) and check that the INFO `section` counters moved by the
    same amounts on both."""
    def values(client: RawClient) -> list[int]:
        fields = info(client, section)
        return [int(fields[name]) for name in counters]

    for command in commands:
        args = shlex.split(command) if isinstance(command, str) else command
        before = values(pair.real), values(pair.mem)
        send(pair, *args)
        after = values(pair.real), values(pair.mem)
        real = [a - b for a, b in zip(after[0], before[0])]
        mem = [a - b for a, b in zip(after[1], before[1])]
        assert mem == real, f"{args!r}: redis-server counted {real} {counters}, in-memory {mem}"


def parse_client_lines(text: bytes) -> list[dict[str, str]]:
    """CLIENT LIST / CLIENT INFO text -> one dict per line, fields in order."""
    assert text.endswith(b"\n") or text == b""
    out = []
    for line in text.decode().split("\n")[:-1]:
        entry: dict[str, str] = {}
        for item in line.split(" "):
            name, _, value = item.partition("=")
            entry[name] = value
        out.append(entry)
    return out


def client_info(client: RawClient) -> dict[str, str]:
    """CLIENT INFO of this connection, parsed (either protocol)."""
    kind, text = client.call("CLIENT", "INFO")
    if kind == "=":
        assert text.startswith(b"txt:")
        text = text[4:]
    (line,) = parse_client_lines(text)
    return line


def client_id(client: RawClient) -> int:
    kind, value = client.call("CLIENT", "ID")
    assert kind == ":"
    return value


# --- encodings and configuration ---------------------------------------------------------------------

def encoding(pair: Pair, key: str) -> Reply:
    """OBJECT ENCODING of `key`, the same on both servers."""
    return pair.both("OBJECT", "ENCODING", key)


def config_set(pair: Pair, name: str, value: str) -> None:
    assert pair.both("CONFIG", "SET", name, value) == ("+", "OK")


def shape(reply: Reply) -> object:
    """A reply's types and sizes without its values (for random replies)."""
    kind, value = reply
    return (kind, [shape(item) for item in value]) if isinstance(value, list) else kind


# --- the engine in this process (no sockets) -----------------------------------------------------------

class AofRecorder:
    """Stands in for the append-only file: `entries` are the (db, argv) the engine propagated."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, list[bytes]]] = []

    def feed(self, entries: list[tuple[int, list[bytes]]]) -> None:
        self.entries += entries

    @property
    def commands(self) -> list[list[bytes]]:
        """The propagated commands without their databases."""
        return [argv for _db, argv in self.entries]


def connect(engine: Any, *setup: tuple[Any, ...]) -> Any:
    """A new client of an in-process engine that keeps what is sent to it out of band
    (`sent`: pushes, the replies of served blocking commands), after running `setup` commands."""
    from cascade_cli.resp.core import Client

    class Recorded(Client):
        def __init__(self, engine: Any) -> None:
            super().__init__(engine)
            self.sent: list[Any] = []

        def send(self, reply: Any) -> None:
            self.sent.append(reply)

    client = Recorded(engine)
    engine.connect(client)
    for argv in setup:
        execute(engine, client, *argv)
    return client


def in_process() -> tuple[Any, Any, AofRecorder]:
    """(engine, a connected client, its append-only file stand-in)."""
    from cascade_cli.resp.core import Engine
    engine = Engine()
    aof = AofRecorder()
    engine.aof = aof
    return engine, connect(engine), aof


def execute(engine: Any, client: Any, *args: Any) -> Any:
    """Run one command in process; arguments that are not bytes are sent as their text."""
    return engine.execute(client, [a if isinstance(a, bytes) else str(a).encode() for a in args])
