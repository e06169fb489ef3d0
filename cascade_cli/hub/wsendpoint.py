"""The hub's WebSocket endpoint as a bare ASGI callable (no framework on the hot path).

`ws://HOST:PORT/ws/{channel}` subscribes to one channel; `ws://HOST:PORT/ws` to none, and
either accepts the ops of docs/hub.md. Needs uvicorn with `wsproto.HubWebSocketProtocol`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from cascade_cli.hub import messages
from cascade_cli.hub.frames import text_frame
from cascade_cli.hub.limits import RateLimiter, bearer, origin_allowed, token_matches
from cascade_cli.hub.routing import Session
from cascade_cli.hub.service import BusUnavailable, HubService, UnknownChannel
from cascade_cli.hub.wsproto import EXTENSION, ProtocolSink

UNKNOWN_CHANNEL = 4000
UNAUTHORIZED = 4401
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008
MAX_PUBLISHING = 1000
"""Publish ops of one client waiting for Redis; past this the endpoint stops reading its frames."""


WANTED = (b"origin", b"authorization", b"user-agent", b"host")


def _headers(scope: dict[str, Any]) -> dict[bytes, str]:
    """The few request headers the endpoint reads (the others are not kept)."""
    return {name.lower(): value.decode("latin-1") for name, value in scope["headers"]
            if name.lower() in WANTED}


class WebSocketEndpoint:
    """Serves every WebSocket connection of the app."""

    def __init__(self, service: HubService, limiter: RateLimiter) -> None:
        self.service = service
        self.limiter = limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        service = self.service
        options = service.options
        path = scope["path"].rstrip("/")
        if path == "/ws":
            channel_name = None
        elif path.startswith("/ws/") and "/" not in path[4:]:
            channel_name = path[4:]   # the server already percent-decoded the path, once
        else:
            await receive()
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})  # HTTP 403
            return
        headers = _headers(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        origin = headers.get(b"origin")
        await receive()  # websocket.connect
        if not origin_allowed(origin, options.allowed_origins, headers.get(b"host")):
            service.count_rejection("origin")
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})  # HTTP 403
            return
        proto = scope.get("extensions", {}).get(EXTENSION)
        if proto is None:
            raise RuntimeError("cascade's hub needs uvicorn with ws=cascade_cli.hub.wsproto.HubWebSocketProtocol")
        await send({"type": "websocket.accept"})

        async def close(code: int, reason: str, counter: str) -> None:
            service.count_rejection(counter)
            await send({"type": "websocket.close", "code": code, "reason": reason})

        token = bearer(headers.get(b"authorization")) or (query.get("token") or [None])[0]
        if not token_matches(options.token, token):
            return await close(UNAUTHORIZED, "unauthorized: give the hub's token as a Bearer header "
                                             "or ?token=", "unauthorized")
        if len(service.hub.sessions) >= options.max_connections:
            return await close(TRY_AGAIN_LATER, "too many connections, try again later", "max_connections")
        client = scope.get("client") or ("", 0)
        if not self.limiter.allow(client[0]):
            return await close(TRY_AGAIN_LATER, "connect rate limit, try again later", "connect_rate")
        state = None
        since = (query.get("since") or [None])[0]
        if channel_name is not None:
            try:
                state = service.channel(channel_name)
            except UnknownChannel:
                return await close(UNKNOWN_CHANNEL, _unknown(channel_name), "unknown_channel")
            if since is not None:
                try:
                    messages.check_since(since)
                except messages.BadOp as exc:
                    return await close(POLICY_VIOLATION, str(exc)[:120], "bad_since")

        sink = ProtocolSink(proto)
        hub = service.hub
        session = Session(str(uuid.uuid4()), sink, remote=f"{client[0]}:{client[1]}",
                          user_agent=headers.get(b"user-agent", ""), connected_at=time.time(),
                          batch=(query.get("batch") or ["1"])[0] not in ("0", "false", "no"))
        del headers, query
        proto.release_handshake()
        hub.add(session)
        proto.on_writable = lambda: hub.writable(session)
        proto.on_shutdown = lambda: hub.drain(session)

        async def reply(payload: bytes) -> None:
            if not sink.writable() and not proto.close_sent and not proto.disconnected:
                await proto.writable.wait()
            if sink.raw:
                sink.write_frames(text_frame(payload))
            else:
                sink.send_texts([payload])

        publishing: set[asyncio.Future[None]] = set()

        async def publish(channel: str, data: object, ref: str | int | None) -> None:
            """One publish op: it joins the channel's history in the order ops arrived (each
            enters the bus before the next op is read), the ack follows once it is stored; the
            client's next ops are read meanwhile."""
            try:
                answer = messages.published(channel, await service.publish(channel, data), ref)
            except BusUnavailable as exc:
                answer = messages.error(f"not published: {exc}; retry later", "publish", ref)
            except messages.EventTooLarge as exc:
                answer = messages.error(f"{exc}: publish smaller events", "publish", ref)
            except (ValueError, TypeError) as exc:
                answer = messages.error(f"data is not valid JSON: {exc}", "publish", ref)
            if not session.closed:
                await reply(answer)

        try:
            await reply(messages.connected(session.id, [state.name] if state else [], time.time(),
                                           service.instance))
            if state is not None:   # after `connected`: a resume's gap notice and history follow it
                service.subscribe(session, state, since)
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                text = message.get("text")
                if text is None:
                    await reply(messages.error("binary frames are not supported: send JSON text"))
                    continue
                try:
                    op = messages.parse_op(text)
                except messages.BadOp as exc:
                    await reply(messages.error(str(exc), exc.op))
                    continue
                if op.op == "ping":
                    await reply(messages.pong(time.time()))
                    continue
                assert op.channel is not None
                if op.op == "unsubscribe":
                    if hub.unsubscribe(session, op.channel):
                        await reply(messages.subscription("unsubscribed", op.channel, sorted(session.channels)))
                    else:
                        await reply(messages.error(f"not subscribed to {op.channel!r}", op.op))
                    continue
                try:
                    target = service.channel(op.channel)
                except UnknownChannel:
                    await close(UNKNOWN_CHANNEL, _unknown(op.channel), "unknown_channel")
                    break
                if op.op == "subscribe":
                    # the ack first: history for a resume follows it through the send queue
                    await reply(messages.subscription("subscribed", op.channel,
                                                      sorted({*session.channels, op.channel})))
                    if op.since is not None or session.channels.get(op.channel) is not target:
                        hub.unsubscribe(session, op.channel)   # a resume replaces the live subscription
                        service.subscribe(session, target, op.since)
                else:
                    if len(publishing) >= MAX_PUBLISHING:   # stop reading until some are stored
                        await asyncio.wait(publishing, return_when=asyncio.FIRST_COMPLETED)
                    task = asyncio.ensure_future(publish(op.channel, op.data, op.ref))
                    publishing.add(task)
                    task.add_done_callback(publishing.discard)
        finally:
            proto.on_writable = None
            proto.on_shutdown = None
            hub.remove(session)


def _unknown(channel: str) -> str:
    shown = channel if len(channel) <= 60 else channel[:57] + "..."
    return f"unknown channel {shown!r}"
