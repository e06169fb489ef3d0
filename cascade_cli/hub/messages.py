"""Pure: the hub's JSON messages, both ways (documented in docs/hub.md).

Server -> client messages are encoded here once; client ops are parsed and validated into `Op`
values. Nothing here touches a socket.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cascade_cli.hub.history import parse_id

CHANNEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""Names `--allow-any-channel` accepts: a letter or digit, then letters, digits, `.`, `_`, `:`, `-`
(at most 128 characters)."""

OPS = ("ping", "subscribe", "unsubscribe", "publish")
MAX_REF = 128
"""Longest `ref` a publish op may carry (echoed in its `published` or `error` reply)."""
NESTING_LIMIT = 900
"""Roughly how deep JSON may nest before Python's parser gives up (its recursion limit)."""
MAX_EVENT_BYTES = 1024 * 1024 - 1024
"""Largest encoded event: it then fits, with its frame header, in the 1 MiB message limit that
most WebSocket client libraries apply by default."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

BATCH_PREFIX = b'{"type":"batch","events":['
BATCH_SUFFIX = b"]}"


def dumps(message: Any) -> bytes:
    """Compact UTF-8 JSON; raises ValueError for NaN/Infinity and TypeError for non-JSON values."""
    return _encoder.encode(message).encode()


class EventTooLarge(ValueError):
    """The encoded event would exceed MAX_EVENT_BYTES."""


def data(value: Any) -> bytes:
    """An event's data as compact JSON. Raises ValueError / TypeError when it is not JSON (NaN,
    too deeply nested, not a JSON type)."""
    try:
        return dumps(value)
    except RecursionError:
        raise ValueError(f"data nested too deeply (the limit is about {NESTING_LIMIT} levels)") from None


def event(channel: str, event_id: str, ts: float, data: Any) -> bytes:
    """The event message, encoded once per broadcast. Raises EventTooLarge, or ValueError /
    TypeError when `data` is not JSON (NaN, too deeply nested, not a JSON type)."""
    try:
        payload = dumps({"type": "event", "channel": channel, "id": event_id, "ts": ts, "data": data})
    except RecursionError:
        raise ValueError(f"data nested too deeply (the limit is about {NESTING_LIMIT} levels)") from None
    if len(payload) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"the event is {len(payload)} bytes encoded; the limit is {MAX_EVENT_BYTES}")
    return payload


def batch(events: list[bytes]) -> bytes:
    """One batch message from already-encoded events, without decoding them."""
    return BATCH_PREFIX + b",".join(events) + BATCH_SUFFIX


def connected(client_id: str, channels: list[str], ts: float, instance: str = "") -> bytes:
    return dumps({"type": "connected", "client_id": client_id, "channels": channels, "timestamp": ts,
                  "instance": instance})


def pong(ts: float) -> bytes:
    return dumps({"type": "pong", "timestamp": ts})


def lag(dropped: int) -> bytes:
    return dumps({"type": "lag", "dropped": dropped})


def error(message: str, op: str | None = None, ref: str | int | None = None) -> bytes:
    body: dict[str, Any] = {"type": "error", "error": message}
    if op is not None:
        body["op"] = op
    if ref is not None:
        body["ref"] = ref
    return dumps(body)


def subscription(kind: str, channel: str, channels: list[str]) -> bytes:
    """`subscribed` / `unsubscribed` acknowledgement with the client's channels afterwards."""
    return dumps({"type": kind, "channel": channel, "channels": channels})


def published(channel: str, event_id: str, ref: str | int | None = None) -> bytes:
    body: dict[str, Any] = {"type": "published", "channel": channel, "id": event_id}
    if ref is not None:
        body["ref"] = ref
    return dumps(body)


@dataclass(frozen=True)
class Op:
    """A valid client op. `data` is set for publish; `channel` for every op but ping; `since`
    (a valid event id) for a subscribe that resumes; `ref` (the client's own reference, echoed in
    the reply) for a publish that gave one."""

    op: str
    channel: str | None = None
    data: Any = None
    since: str | None = None
    ref: str | int | None = None


class BadOp(ValueError):
    """The frame is not a valid op; `str(exc)` is the message for the client's error frame."""

    def __init__(self, message: str, op: str | None = None) -> None:
        super().__init__(message)
        self.op = op


def parse_op(text: str) -> Op:
    """Parse one client frame into an Op; raises BadOp with a message the client can act on."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise BadOp(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadOp(f"JSON nested too deeply (the limit is about {NESTING_LIMIT} levels)") from None
    if not isinstance(message, dict):
        raise BadOp('a message must be a JSON object such as {"op":"ping"}')
    op = message.get("op")
    if op not in OPS:
        shown = json.dumps(op)[:60]
        raise BadOp(f"unknown op {shown}; valid ops: {', '.join(OPS)}", op if isinstance(op, str) else None)
    if op == "ping":
        return Op(op)
    channel = message.get("channel")
    if not isinstance(channel, str) or not channel:
        raise BadOp(f'"{op}" needs a "channel" string', op)
    if op == "publish":
        if "data" not in message:
            raise BadOp('"publish" needs a "data" field (any JSON value)', op)
        ref = message.get("ref")
        if ref is not None and not (isinstance(ref, str) and len(ref) <= MAX_REF
                                    or isinstance(ref, int) and not isinstance(ref, bool)):
            raise BadOp(f'"ref" must be a string of at most {MAX_REF} characters or an integer', op)
        return Op(op, channel, message["data"], ref=ref)
    since = message.get("since")
    if op == "subscribe" and since is not None:
        return Op(op, channel, since=check_since(since))
    return Op(op, channel)


def check_since(since: Any) -> str:
    """A `since` value from a client: the event id as given; BadOp when it is not an id."""
    if not isinstance(since, str):
        raise BadOp('"since" must be an event id string such as "1733360000000-0"', "subscribe")
    try:
        parse_id(since)
    except ValueError as exc:
        raise BadOp(f'"since": {exc}', "subscribe") from None
    return since


def valid_channel_name(name: str) -> bool:
    return CHANNEL_PATTERN.fullmatch(name) is not None
