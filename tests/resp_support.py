"""Raw RESP clients for differential tests: send the same bytes to real Redis and to the
in-memory server, and compare the replies exactly (type and value), not as redis-py decodes them.

Replies are tagged tuples, so a null bulk and a null array, or a set and an array, differ:
    ("+", "OK")  ("-", "ERR ...")  (":", 5)  ("$", b"x")  ("$", None)  ("*", [...])  ("*", None)
    ("_", None)  ("%", [k, v, ...])  ("~", [...])  (">", [...])  (",", "1.5")  ("#", True)
    ("=", b"txt:...")  ("(", "123")
"""

from __future__ import annotations

import socket
import time
from typing import Any

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
                except socket.timeout:
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
    """The same connection twice: `real` to redis-server, `mem` to the in-memory server."""

    def __init__(self, real_port: int, mem_port: int) -> None:
        self.real = RawClient(real_port)
        self.mem = RawClient(mem_port)
        self.real_port, self.mem_port = real_port, mem_port

    def each(self, *args: Any) -> tuple[Reply, Reply]:
        """Send to both; return (real reply, memory reply) without comparing."""
        self.real.send(*args)
        self.mem.send(*args)
        return self.real.read(), self.mem.read()

    def both(self, *args: Any, sort: bool = False) -> Reply:
        """Send to both, assert the replies are identical (order-free with sort=True), return it."""
        real, mem = self.each(*args)
        if sort:
            real, mem = unordered(real), unordered(mem)
        assert mem == real, f"{args!r}: redis-server answered {real!r}, in-memory answered {mem!r}"
        return real

    def both_raw(self, data: bytes) -> Reply:
        """Send raw bytes to both; compare the next reply."""
        self.real.send_raw(data)
        self.mem.send_raw(data)
        real, mem = self.real.read(), self.mem.read()
        assert mem == real, f"{data!r}: redis-server answered {real!r}, in-memory answered {mem!r}"
        return real

    def connect(self) -> Pair:
        """A second pair of connections to the same two servers."""
        return Pair(self.real_port, self.mem_port)

    def close(self) -> None:
        self.real.close()
        self.mem.close()
