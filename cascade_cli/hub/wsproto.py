"""uvicorn's websockets-sansio protocol, extended so the hub can write to a client directly.

`HubWebSocketProtocol` puts itself in the ASGI scope under `extensions["cascade.ws"]`; the hub's
WebSocket endpoint wraps it in a `ProtocolSink`. Events then skip the ASGI `send()` round trip:
the same pre-framed bytes go to every uncompressed client with one `transport.write()`, and
flow control (pause/resume writing) reaches the hub. Other behaviour is uvicorn's, except that
a server shutdown closes clients with 1001 (going away) after writing what they had queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol as FrameParser
from websockets.protocol import State

EXTENSION = "cascade.ws"
WRITE_HIGH_WATER = 256 * 1024
"""Bytes a client's transport buffers before the hub stops writing and queues events instead."""


class LeanQueue:
    """The part of asyncio.Queue uvicorn's protocol uses, for one consumer, without three deques
    per connection (idle memory per connection is a target)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class LeanEvent:
    """asyncio.Event's interface with its waiter list created only when someone waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """Use as uvicorn's `ws=` protocol class."""

    on_writable: Callable[[], None] | None = None
    on_shutdown: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    def release_handshake(self) -> None:
        """After the handshake: drop the request, the response and the scope's headers, which
        nothing reads any more (about 3 KB per connection)."""
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        self.scope["headers"] = []

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = self
            self._restart_parser()

    def _restart_parser(self) -> None:
        """websockets' handshake parser keeps the request (about 2 KB) alive for the whole
        connection as a local of its generator. With nothing buffered, the parser stands at the
        start of a frame, so an equivalent frame-only parser can take its place."""
        conn = self.conn
        if conn.reader.buffer or conn.parser_exc is not None or conn.events:
            return
        conn.parser = FrameParser.parse(conn)
        next(conn.parser)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_writable = None
        self.on_shutdown = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """Server shutdown: flush the client's queue, then close 1001 instead of uvicorn's 1012."""
        if self.on_shutdown is not None and not self.close_sent:
            self.on_shutdown()
            self.on_shutdown = None
        if self.handshake_complete and self.initial_response is None and not self.close_sent:
            self.stop_keepalive()
            self.close_now(1001, "server shutting down")
            self.transport.close()
            return
        super().shutdown()

    # -- direct writes used by ProtocolSink -------------------------------------------------

    @property
    def compressed(self) -> bool:
        return bool(self.conn.extensions)

    def can_write(self) -> bool:
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def try_write(self, data: bytes) -> bool:
        """Write ready-made frames if the socket takes data now; False (nothing written) when
        paused, closing or compressed. The hub's hot path: one call per client per event."""
        if self.writable._value and not self.close_sent and not self.disconnected and not self.conn.extensions:
            self.transport.write(data)
            return True
        return False

    def write_frames(self, data: bytes) -> None:
        if not self.close_sent and not self.disconnected:
            self.transport.write(data)

    def send_texts(self, payloads: list[bytes]) -> None:
        if self.close_sent or self.disconnected or self.conn.state is not State.OPEN:
            return   # CLOSING (the client's close frame arrived): websockets refuses data frames
        for payload in payloads:
            self.conn.send_text(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame now (without waiting for the socket to drain) and end the session."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)


class ProtocolSink:
    """The hub's `Sink` over a HubWebSocketProtocol."""

    __slots__ = ("proto", "raw", "try_write")

    def __init__(self, proto: HubWebSocketProtocol) -> None:
        self.proto = proto
        self.raw = not proto.compressed
        self.try_write = proto.try_write

    def writable(self) -> bool:
        return self.proto.can_write()

    def write_frames(self, data: bytes) -> None:
        self.proto.write_frames(data)

    def send_texts(self, payloads: list[bytes]) -> None:
        self.proto.send_texts(payloads)

    def close(self, code: int, reason: str) -> None:
        self.proto.close_now(code, reason)
