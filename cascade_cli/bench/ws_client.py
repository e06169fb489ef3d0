"""A lean WebSocket client (RFC 6455, RFC 7692) for load generation: a pure core and a thin
asyncio protocol.

Pure part (no sockets, no clock), tested by feeding bytes:
- `split_url()` reads a ws:// or wss:// URL; `handshake_request()` writes the opening request
  (with `new_key()`); `parse_response()` finds the 101 response in what arrived and
  `check_response()` verifies `Sec-WebSocket-Accept` and the negotiated extension.
- `encode_frame()` writes masked client frames (7-, 16- and 64-bit lengths); `FrameParser.feed()`
  turns server bytes into whole messages (fragments joined, permessage-deflate undone) and
  control frames, raising `ProtocolError` (with the close code to send) on anything RFC 6455
  forbids. `parse_close()` / `close_payload()` read and write close frames.
- `PerMessageDeflate` is permessage-deflate with zlib, built from the server's answer.

I/O part: `WebSocketClient`, an `asyncio.Protocol` with no coroutine per message. It does the
handshake, answers pings, echoes the server's close, and hands each text or binary message to
`on_message(opcode, payload, now_ns)` (subclasses override it; `now_ns` is
`time.monotonic_ns()` taken once per read). Open one with `await open_client(factory, url)`;
then call `send_text()` and, at the end, `close()`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
MAX_HEAD = 65536
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
_DEFLATE_TAIL = b"\x00\x00\xff\xff"

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009


class ProtocolError(Exception):
    """The peer broke RFC 6455 / 7692; `code` is the close code to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class HandshakeError(Exception):
    """The opening handshake failed; `status` is the HTTP status when one arrived."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosed(Exception):
    """The connection ended; `code`/`reason` are from the server's close frame (1006: none)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}" + (f" {reason!r}" if reason else ""))
        self.code = code
        self.reason = reason


# ---------------------------------------------------------------------------------- handshake


@dataclass(frozen=True)
class Endpoint:
    """Where a ws:// or wss:// URL points: TCP host and port, TLS, the Host header, the resource."""

    host: str
    port: int
    tls: bool
    host_header: str
    resource: str


def split_url(url: str) -> Endpoint:
    """The endpoint of a ws:// or wss:// URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    tls = parts.scheme == "wss"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(host, port, tls, host_header, resource)


def new_key() -> bytes:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16))


def accept_value(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept a server must answer to `key`."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def handshake_request(host_header: str, resource: str, key: bytes, *,
                      headers: Sequence[tuple[str, str]] = (), extensions: str | None = None) -> bytes:
    """The HTTP/1.1 upgrade request of a client."""
    lines = [f"GET {resource} HTTP/1.1", f"Host: {host_header}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class Response:
    """The server's answer to the upgrade: status, reason, headers (lower-case names; repeated
    headers joined with ', ')."""

    status: int
    reason: str
    headers: dict[str, str]


def parse_response(data: bytes) -> tuple[Response, bytes] | None:
    """The response head at the start of `data` and the bytes after it, or None while the head
    is incomplete. HandshakeError when it is not an HTTP response or longer than 64 KiB."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HEAD:
            raise HandshakeError("the server's response head is longer than 64 KiB")
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HandshakeError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HandshakeError(f"malformed header line {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers), data[end + 4:]


def check_response(response: Response, key: bytes, *, offered_deflate: bool) -> PerMessageDeflate | None:
    """Verify a 101 answer to `key`; returns the negotiated permessage-deflate or None.
    HandshakeError (with the status) otherwise."""
    if response.status != 101:
        raise HandshakeError(f"the server answered HTTP {response.status} {response.reason}".rstrip(),
                             response.status)
    headers = response.headers
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError("the 101 response has no 'Upgrade: websocket'", 101)
    if "upgrade" not in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
        raise HandshakeError("the 101 response has no 'Connection: Upgrade'", 101)
    if headers.get("sec-websocket-accept", "").encode() != accept_value(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept in the server's answer", 101)
    value = headers.get("sec-websocket-extensions")
    if not value:
        return None
    if not offered_deflate:
        raise HandshakeError(f"the server accepted an extension that was not offered: {value}", 101)
    return PerMessageDeflate.from_header(value)


# ---------------------------------------------------------------------------------- frames


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `mask` (masking and unmasking are the same)."""
    size = len(payload)
    if not size:
        return b""
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False,
                 mask: bytes | None = None, masked: bool = True) -> bytes:
    """One frame. Client frames are masked (`mask`: 4 bytes, random when None); `masked=False`
    writes a server frame (for tests)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    if mask is None:
        mask = os.urandom(4)
    return head + mask + mask_payload(payload, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    """The body of a close frame (reason cut to fit 123 bytes)."""
    return code.to_bytes(2, "big") + reason.encode()[:123]


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame's body; 1005 when it has none. ProtocolError when bad."""
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError("close frame with a 1-byte body")
    code = int.from_bytes(payload[:2], "big")
    reserved = code in (1004, CLOSE_NO_STATUS, CLOSE_ABNORMAL, 1015) or 1016 <= code < 3000
    if code < 1000 or code >= 5000 or reserved:
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not UTF-8", CLOSE_INVALID_DATA) from None
    return code, reason


class PerMessageDeflate:
    """permessage-deflate as negotiated: `decompress()` server messages, `compress()` ours."""

    def __init__(self, *, server_bits: int = 15, client_bits: int = 15,
                 server_no_context_takeover: bool = False, client_no_context_takeover: bool = False) -> None:
        self.server_bits = server_bits
        self.client_bits = client_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self._inflate: Any = None
        self._deflate: Any = None

    @classmethod
    def from_header(cls, value: str) -> PerMessageDeflate:
        """From the server's Sec-WebSocket-Extensions answer to DEFLATE_OFFER; HandshakeError
        when it is anything else or has parameters that were not offered."""
        offers = [v for v in value.split(",") if v.strip()]
        if len(offers) != 1:
            raise HandshakeError(f"the server accepted extensions that were not offered: {value}", 101)
        name, *params = [p.strip() for p in offers[0].split(";")]
        if name.lower() != "permessage-deflate":
            raise HandshakeError(f"the server accepted an extension that was not offered: {name}", 101)
        options: dict[str, Any] = {}
        seen: set[str] = set()
        for param in params:
            key, sep, raw = param.partition("=")
            key, raw = key.strip().lower(), raw.strip().strip('"')
            if key in seen:
                raise HandshakeError(f"permessage-deflate parameter {key} given twice", 101)
            seen.add(key)
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                if sep:
                    raise HandshakeError(f"permessage-deflate parameter {key} takes no value", 101)
                options[key] = True
            elif key in ("server_max_window_bits", "client_max_window_bits"):
                if not raw.isdigit() or not 8 <= int(raw) <= 15:
                    raise HandshakeError(f"bad {key} in the server's answer: {raw!r}", 101)
                if key == "client_max_window_bits" and int(raw) == 8:
                    raise HandshakeError("client_max_window_bits=8 is not supported (zlib needs 9..15)", 101)
                options["server_bits" if key.startswith("server") else "client_bits"] = int(raw)
            else:
                raise HandshakeError(f"unknown permessage-deflate parameter {key}", 101)
        return cls(**options)

    def decompress(self, data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
        """One compressed message (its frames joined) back to its bytes."""
        if self._inflate is None or self.server_no_context_takeover:
            self._inflate = zlib.decompressobj(-self.server_bits)
        try:
            out = self._inflate.decompress(data + _DEFLATE_TAIL, max_size)
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}", CLOSE_INVALID_DATA) from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError(f"message larger than {max_size} bytes once decompressed", CLOSE_TOO_BIG)
        return out

    def compress(self, data: bytes) -> bytes:
        """One message compressed for a frame with RSV1 set."""
        if self._deflate is None or self.client_no_context_takeover:
            self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.client_bits)
        out: bytes = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(_DEFLATE_TAIL) else out


class FrameParser:
    """Bytes from the peer -> [(opcode, payload)]: whole text/binary messages (fragments joined,
    decompressed when `deflate` is set) and ping/pong/close frames as they come (also between
    the fragments of a message). Server frames must be unmasked; `masked=True` parses client
    frames instead (tests). Raises ProtocolError; the parser is unusable after that."""

    def __init__(self, *, deflate: PerMessageDeflate | None = None, max_size: int = DEFAULT_MAX_SIZE,
                 masked: bool = False) -> None:
        self.deflate = deflate
        self.max_size = max_size
        self.masked = masked
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._need = 0
        self._opcode = 0          # opcode of the fragmented message in progress (0: none)
        self._compressed = False
        self._fragments: list[bytes] = []
        self._fragments_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Everything complete once `data` is added."""
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._need:
                return []
            data = b"".join(self._pending)
            self._pending.clear()
        out: list[tuple[int, bytes]] = []
        pos, size = 0, len(data)
        mask_bit = 0x80 if self.masked else 0
        while size - pos >= 2:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    self._need = 4
                    break
                length, head = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    self._need = 10
                    break
                length, head = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
                if length >> 63:
                    raise ProtocolError("frame length with the most significant bit set")
            if second & 0x80 != mask_bit:
                raise ProtocolError("masked frame from the server" if second & 0x80
                                    else "unmasked client frame")
            if length > self.max_size:
                raise ProtocolError(f"frame of {length} bytes exceeds the limit of {self.max_size}",
                                    CLOSE_TOO_BIG)
            if mask_bit:
                head += 4
            end = pos + head + length
            if end > size:
                self._need = head + length
                break
            if mask_bit:
                payload = mask_payload(data[pos + head:end], data[pos + head - 4:pos + head])
            else:
                payload = data[pos + head:end]
            pos = end
            if first == 0x81 and not self._opcode:  # the common case: a whole, uncompressed text frame
                out.append((OP_TEXT, payload))
            else:
                self._frame(first, payload, out)
        if pos < size:
            rest = data[pos:]
            self._pending = [rest]
            self._pending_size = len(rest)
            self._need = max(self._need, 2)
        else:
            self._pending_size = self._need = 0
        return out

    def _frame(self, first: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        fin, rsv1, opcode = first & 0x80, first & 0x40, first & 0x0F
        if first & 0x30:
            raise ProtocolError("reserved bits RSV2/RSV3 set")
        if opcode >= 8:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise ProtocolError(f"reserved control opcode {opcode:#x}")
            if not fin or rsv1:
                raise ProtocolError("fragmented or compressed control frame")
            if len(payload) > 125:
                raise ProtocolError("control frame longer than 125 bytes")
            out.append((opcode, payload))
            return
        if rsv1 and (self.deflate is None or opcode == OP_CONT):
            raise ProtocolError("RSV1 set without permessage-deflate" if self.deflate is None
                                else "RSV1 set on a continuation frame")
        if opcode == OP_CONT:
            if not self._opcode:
                raise ProtocolError("continuation frame without a message to continue")
            self._fragments.append(payload)
            self._fragments_size += len(payload)
            if self._fragments_size > self.max_size:
                raise ProtocolError(f"message exceeds the limit of {self.max_size} bytes", CLOSE_TOO_BIG)
            if not fin:
                return
            opcode, compressed = self._opcode, self._compressed
            message = b"".join(self._fragments)
            self._opcode, self._fragments, self._fragments_size = 0, [], 0
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._opcode:
                raise ProtocolError("a new message started before the fragmented one ended")
            if not fin:
                self._opcode, self._compressed = opcode, bool(rsv1)
                self._fragments, self._fragments_size = [payload], len(payload)
                return
            message, compressed = payload, bool(rsv1)
        else:
            raise ProtocolError(f"reserved data opcode {opcode:#x}")
        if compressed:
            assert self.deflate is not None
            message = self.deflate.decompress(message, self.max_size)
        out.append((opcode, message))


# ---------------------------------------------------------------------------------- asyncio


class WebSocketClient(asyncio.Protocol):
    """One client connection. `opened` resolves with the Response after a good handshake (or
    fails with HandshakeError / ConnectionClosed); `closed` resolves with (code, reason) when
    the connection is gone. Subclasses override `on_message` (and may override `on_close`)."""

    def __init__(self, endpoint: Endpoint, *, headers: Sequence[tuple[str, str]] = (),
                 compression: bool = False, max_size: int = DEFAULT_MAX_SIZE) -> None:
        loop = asyncio.get_running_loop()
        self.endpoint = endpoint
        self.headers = headers
        self.offer_deflate = compression
        self.max_size = max_size
        self.key = new_key()
        self.opened: asyncio.Future[Response] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.parser: FrameParser | None = None
        self.deflate: PerMessageDeflate | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_sent = False
        self.opened_ns = 0
        self._head = b""

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(handshake_request(  # type: ignore[attr-defined]
            self.endpoint.host_header, self.endpoint.resource, self.key, headers=self.headers,
            extensions=DEFLATE_OFFER if self.offer_deflate else None))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        parser = self.parser
        if parser is None:
            parser = self._handshake(data)
            if parser is None:
                return
            self.opened_ns = now
            data, self._head = self._head, b""
        try:
            frames = parser.feed(data)
        except ProtocolError as exc:
            self.fail(exc.code, str(exc))
            return
        for opcode, payload in frames:
            if opcode == OP_TEXT or opcode == OP_BINARY:
                self.on_message(opcode, payload, now)
            elif opcode == OP_PING:
                self.write_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                try:
                    code, reason = parse_close(payload)
                except ProtocolError as exc:
                    self.fail(exc.code, str(exc))
                    return
                self.close_code, self.close_reason = code, reason
                if not self.close_sent:
                    self.close_sent = True
                    self.write_frame(OP_CLOSE, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                return

    def _handshake(self, data: bytes) -> FrameParser | None:
        self._head += data
        try:
            parsed = parse_response(self._head)
            if parsed is None:
                return None
            response, self._head = parsed
            self.deflate = check_response(response, self.key, offered_deflate=self.offer_deflate)
        except HandshakeError as exc:
            if not self.opened.done():
                self.opened.set_exception(exc)
            self.abort()
            return None
        self.parser = FrameParser(deflate=self.deflate, max_size=self.max_size)
        if not self.opened.done():
            self.opened.set_result(response)
        return self.parser

    def connection_lost(self, exc: Exception | None) -> None:
        code = self.close_code if self.close_code is not None else CLOSE_ABNORMAL
        if not self.opened.done():
            self.opened.set_exception(ConnectionClosed(code, self.close_reason or (str(exc) if exc else "")))
        if not self.closed.done():
            self.closed.set_result((code, self.close_reason))
        self.on_close(code, self.close_reason)

    # -- to override

    def on_message(self, opcode: int, payload: bytes, now_ns: int) -> None:
        """A whole text or binary message arrived at `now_ns`."""

    def on_close(self, code: int, reason: str) -> None:
        """The connection is gone (1006 when no close frame came)."""

    # -- sending

    def write_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, data: bytes) -> None:
        """One text message (compressed when permessage-deflate was negotiated)."""
        transport = self.transport
        if transport is None or self.close_sent:
            return
        if self.deflate is not None:
            transport.write(encode_frame(OP_TEXT, self.deflate.compress(data), rsv1=True))
        else:
            transport.write(encode_frame(OP_TEXT, data))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "", timeout: float = 2.0) -> None:
        """Start the closing handshake; the TCP connection is dropped after `timeout` at most."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.close_sent:
            self.close_sent = True
            self.write_frame(OP_CLOSE, close_payload(code, reason))
        asyncio.get_running_loop().call_later(timeout, self.abort)

    def fail(self, code: int, reason: str) -> None:
        """Close at once after a protocol error."""
        self.close_code = self.close_code or code
        self.close_reason = self.close_reason or reason
        if not self.close_sent and self.parser is not None:
            self.close_sent = True
            self.write_frame(OP_CLOSE, close_payload(code, reason))
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection now."""
        if self.transport is not None:
            self.transport.abort()


C = TypeVar("C", bound=WebSocketClient)


async def open_client(factory: Callable[[], C], endpoint: Endpoint, *, timeout: float = 10.0) -> C:
    """Connect, handshake, return the protocol. Raises OSError (TCP, TLS), HandshakeError,
    ConnectionClosed or asyncio.TimeoutError."""
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if endpoint.tls else None

    async def go() -> C:
        _, proto = await loop.create_connection(factory, endpoint.host, endpoint.port, ssl=context,
                                                server_hostname=endpoint.host if context else None)
        try:
            await proto.opened
        except BaseException:
            proto.abort()
            raise
        return proto

    return await asyncio.wait_for(go(), timeout)
