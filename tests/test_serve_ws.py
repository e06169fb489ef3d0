"""The WebSocket side of `cascade serve`, through real sockets against a real `cascade serve`.

One server per configuration, shared by the tests of that configuration (module-scoped
fixtures). Clients are the `websockets` library's sync client, and `RawClient` (a few lines of
RFC 6455 written here) where a test must stall reading or never answer pings. Every wait is
bounded: receive timeouts, socket timeouts and `hub_support.wait_for`.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hub_support import Serve, start_serve, wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.timeout(60)

RECV = 5.0
"""Seconds any single receive may take before the test fails."""

CHANNEL = "cascade-events"
OTHER = "ai-collaborations"
THIRD = "consciousness-stream"
PAD = "x" * 65536
"""A 64 KiB payload: a few dozen of them fill a stalled client's socket buffers."""


# ---- clients ----------------------------------------------------------------------------------


def open_ws(url: str, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("open_timeout", RECV)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("compression", None)
    return connect(url, **kwargs)


def recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(RECV))


def connected(ws: ClientConnection) -> dict[str, Any]:
    message = recv(ws)
    assert message["type"] == "connected", message
    return message


def close_of(url: str, **kwargs: Any) -> tuple[int | None, str, list[dict[str, Any]]]:
    """Connect, expecting the server to close at once; returns (code, reason, messages received
    before, i.e. [] or the one `connected` message when the server accepted instead)."""
    with open_ws(url, **kwargs) as ws:
        try:
            return 1000, "(accepted)", [recv(ws)]
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, f"closed without a close frame: {exc}"
            return exc.rcvd.code, exc.rcvd.reason, []


def flatten(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of an `event` or `batch` message ([] for anything else)."""
    if message["type"] == "event":
        return [message]
    if message["type"] == "batch":
        return list(message["events"])
    return []


def read_events(ws: ClientConnection, count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Read until `count` events arrived; returns (the frame types seen, the events)."""
    kinds: list[str] = []
    events: list[dict[str, Any]] = []
    while len(events) < count:
        message = recv(ws)
        kinds.append(message["type"])
        events.extend(flatten(message))
    return kinds, events


def publish(serve: Serve, channel: str, *datas: Any, **kwargs: Any) -> list[str]:
    body = [{"data": d} for d in datas] if len(datas) != 1 else {"data": datas[0]}
    response = serve.post(f"/api/channels/{channel}/publish", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["ids"]


def clients(serve: Serve) -> dict[str, dict[str, Any]]:
    return {c["client_id"]: c for c in serve.get("/api/clients").json()["clients"]}


def assert_event_shape(event: dict[str, Any], channel: str) -> None:
    assert set(event) == {"type", "channel", "id", "ts", "data"}, event
    assert event["type"] == "event" and event["channel"] == channel
    assert isinstance(event["id"], str) and event["id"]
    assert isinstance(event["ts"], float)


class RawClient:
    """A WebSocket client on a bare socket: it reads only when told to, answers nothing by
    itself, and can shrink its receive buffer so that the server's writes back up quickly."""

    def __init__(self, serve: Serve, path: str, *, rcvbuf: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(serve.http_url)
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(RECV)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def _need(self, size: int) -> None:
        while len(self.buf) < size:
            self._fill()

    def frame(self) -> tuple[int, bytes]:
        """The next whole frame from the server: (opcode, payload)."""
        self._need(2)
        first, second = self.buf[0], self.buf[1]
        assert first & 0x80, "the hub sends unfragmented frames"
        assert not second & 0x80, "server frames are not masked"
        size, start = second & 0x7F, 2
        if size == 126:
            self._need(4)
            size, start = struct.unpack("!H", self.buf[2:4])[0], 4
        elif size == 127:
            self._need(10)
            size, start = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(start + size)
        payload, self.buf = self.buf[start:start + size], self.buf[start + size:]
        return first & 0x0F, payload

    def message(self) -> dict[str, Any]:
        """The next text message (pings are skipped, not answered); fails on a close frame."""
        while True:
            opcode, payload = self.frame()
            if opcode == 0x1:
                return json.loads(payload)
            assert opcode == 0x9, f"expected a text frame, got opcode {opcode} {payload[:40]!r}"

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()


def read_until_close(raw: RawClient) -> tuple[list[dict[str, Any]], int, str]:
    """Read text messages until the close frame; returns (messages, close code, reason)."""
    messages: list[dict[str, Any]] = []
    while True:
        opcode, payload = raw.frame()
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return messages, code, payload[2:].decode()
        if opcode == 0x1:
            messages.append(json.loads(payload))


# ---- servers ----------------------------------------------------------------------------------


def _server(tmp_path_factory: pytest.TempPathFactory, *args: str,
            env: dict[str, str] | None = None) -> Iterator[Serve]:
    serve = start_serve(tmp_path_factory.mktemp("serve"), "--bus", "local", *args, env=env)
    try:
        yield serve
    finally:
        serve.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """Defaults, but frames over 4 KiB are refused."""
    yield from _server(tmp_path_factory, "--max-message-size", "4096")


@pytest.fixture(scope="module")
def any_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, "--allow-any-channel", "--compression")


@pytest.fixture(scope="module")
def beat_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, "--heartbeat", "0.2", "--heartbeat-timeout", "0.3")


@pytest.fixture(scope="module")
def token_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, env={"CASCADE_SERVE_TOKEN": "env-s3cret"})


@pytest.fixture(scope="module")
def token_file_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    path = tmp_path_factory.mktemp("secret") / "token"
    path.write_text("file-s3cret\n")
    yield from _server(tmp_path_factory, "--token-file", str(path))


@pytest.fixture(scope="module")
def origin_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, "--allow-origin", "http://ok.example")


# ---- connecting, subscribing, events ------------------------------------------------------------


def test_connect_to_a_channel_sends_connected(hub: Serve) -> None:
    before = time.time()
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        message = connected(ws)
    assert set(message) == {"type", "client_id", "channels", "timestamp", "instance"}
    assert message["instance"] == hub.get("/health").json()["instance"]
    assert str(uuid.UUID(message["client_id"])) == message["client_id"]
    assert message["channels"] == [CHANNEL]
    assert isinstance(message["timestamp"], float)
    assert before - 60 < message["timestamp"] < time.time() + 60   # unix seconds, not ms


def test_ws_without_channel_subscribes_and_unsubscribes_by_op(hub: Serve) -> None:
    with open_ws(hub.ws()) as ws:
        first = connected(ws)
        assert first["channels"] == []
        ws.send(json.dumps({"op": "subscribe", "channel": OTHER}))
        assert recv(ws) == {"type": "subscribed", "channel": OTHER, "channels": [OTHER]}
        ws.send(json.dumps({"op": "subscribe", "channel": CHANNEL}))
        assert recv(ws) == {"type": "subscribed", "channel": CHANNEL, "channels": sorted([OTHER, CHANNEL])}
        ws.send(json.dumps({"op": "subscribe", "channel": THIRD}))
        assert recv(ws)["channels"] == sorted([OTHER, CHANNEL, THIRD])
        ws.send(json.dumps({"op": "unsubscribe", "channel": OTHER}))
        assert recv(ws) == {"type": "unsubscribed", "channel": OTHER, "channels": sorted([CHANNEL, THIRD])}
        assert clients(hub)[first["client_id"]]["channels"] == sorted([CHANNEL, THIRD])

        # Events come in publish order: had the OTHER event been delivered, it would come first.
        publish(hub, OTHER, "not for me")
        [on_channel] = publish(hub, CHANNEL, "for me 1")
        [on_third] = publish(hub, THIRD, "for me 2")
        _, events = read_events(ws, 2)
        assert [(e["channel"], e["id"], e["data"]) for e in events] == [
            (CHANNEL, on_channel, "for me 1"), (THIRD, on_third, "for me 2")]

        ws.send(json.dumps({"op": "unsubscribe", "channel": OTHER}))
        error = recv(ws)
        assert error["type"] == "error" and OTHER in error["error"]


def test_events_reach_every_subscriber_of_the_channel_and_no_one_else(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as a, open_ws(hub.ws(f"/{CHANNEL}")) as b, \
            open_ws(hub.ws(f"/{OTHER}")) as other:
        for ws in (a, b, other):
            connected(ws)
        data = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
        [event_id] = publish(hub, CHANNEL, data)
        for ws in (a, b):
            event = recv(ws)
            assert_event_shape(event, CHANNEL)
            assert event["id"] == event_id and event["data"] == data
        [marker] = publish(hub, OTHER, "marker")
        event = recv(other)   # the CHANNEL event would have come first
        assert_event_shape(event, OTHER)
        assert (event["id"], event["data"]) == (marker, "marker")


def test_events_waiting_together_arrive_as_one_batch(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        ids = publish(hub, CHANNEL, *range(50))
        kinds, events = read_events(ws, 50)
    assert "batch" in kinds
    assert len(kinds) < 50
    assert [e["id"] for e in events] == ids
    assert [e["data"] for e in events] == list(range(50))
    for event in events:
        assert_event_shape(event, CHANNEL)


def test_batch_0_gets_single_event_frames(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}?batch=0")) as ws:
        me = connected(ws)["client_id"]
        assert clients(hub)[me]["batching"] is False
        ids = publish(hub, CHANNEL, *range(50))
        kinds, events = read_events(ws, 50)
    assert kinds == ["event"] * 50
    assert [e["id"] for e in events] == ids


def test_ping_gets_pong(hub: Serve) -> None:
    with open_ws(hub.ws()) as ws:
        connected(ws)
        ws.send('{"op":"ping"}')
        pong = recv(ws)
    assert set(pong) == {"type", "timestamp"} and pong["type"] == "pong"
    assert isinstance(pong["timestamp"], float)


def test_publish_op_is_acknowledged_and_delivered(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as publisher, open_ws(hub.ws(f"/{CHANNEL}")) as listener, \
            open_ws(hub.ws(f"/{OTHER}")) as bystander:
        for ws in (publisher, listener, bystander):
            connected(ws)
        publisher.send(json.dumps({"op": "publish", "channel": CHANNEL, "data": {"from": "ws"}}))
        got = [recv(publisher), recv(publisher)]
        [ack] = [m for m in got if m["type"] == "published"]
        assert set(ack) == {"type", "channel", "id"} and ack["channel"] == CHANNEL
        [own] = [m for m in got if m["type"] == "event"]     # the publisher is subscribed too
        event = recv(listener)
        for e in (own, event):
            assert_event_shape(e, CHANNEL)
            assert (e["id"], e["data"]) == (ack["id"], {"from": "ws"})
        # A publish op to a channel the client is not subscribed to reaches that channel only.
        publisher.send(json.dumps({"op": "publish", "channel": OTHER, "data": 7}))
        ack2 = recv(publisher)
        assert ack2["type"] == "published" and ack2["channel"] == OTHER
        assert recv(bystander)["id"] == ack2["id"]


@pytest.mark.parametrize("frame", [
    "this is not json",
    "[1, 2]",
    '{"op": "nope"}',
    '{"no_op": 1}',
    '{"op": "subscribe"}',
    '{"op": "subscribe", "channel": 5}',
    '{"op": "publish", "data": 1}',
    '{"op": "publish", "channel": "cascade-events"}',
    '{"op": "publish", "channel": "cascade-events", "data": NaN}',
    b"\x00\x01binary",
], ids=["malformed", "not-object", "unknown-op", "no-op", "no-channel", "channel-not-string",
        "publish-no-channel", "publish-no-data", "publish-nan", "binary"])
def test_bad_frames_get_an_error_and_the_connection_stays_usable(hub: Serve, frame: str | bytes) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        ws.send(frame)
        error = recv(ws)
        assert error["type"] == "error" and isinstance(error["error"], str) and error["error"]
        ws.send('{"op":"ping"}')
        assert recv(ws)["type"] == "pong"
        [event_id] = publish(hub, CHANNEL, "still here")
        assert recv(ws)["id"] == event_id


def test_frames_over_max_message_size_close_1009(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        fits = json.dumps({"op": "publish", "channel": OTHER, "data": "y" * 3900})
        assert len(fits) < 4096
        ws.send(fits)
        assert recv(ws)["type"] == "published"
        ws.send(json.dumps({"op": "publish", "channel": OTHER, "data": "y" * 5000}))
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


def test_fragmented_message_over_max_message_size_closes_1009(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        with pytest.raises(ConnectionClosed) as caught:   # the server may close before the last fragment
            ws.send(['{"op":"publish","channel":"ai-collaborations","data":"' + "a" * 3000, "b" * 3000 + '"}'])
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


@pytest.mark.parametrize("name", ["no-such-channel", "bad name!", "x" * 200])
def test_unknown_channel_in_the_path_closes_4000(hub: Serve, name: str) -> None:
    code, reason, got = close_of(hub.ws("/" + name.replace(" ", "%20")))
    assert (code, got) == (4000, [])
    assert "unknown channel" in reason


@pytest.mark.parametrize("op", ["subscribe", "publish"])
def test_unknown_channel_in_an_op_closes_4000(hub: Serve, op: str) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        ws.send(json.dumps({"op": op, "channel": "no-such-channel", "data": 1}))
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4000


def test_channel_in_the_path_is_percent_decoded_once(hub: Serve) -> None:
    """`%252D` names the channel "cascade%2Devents" (decoded once, as the HTTP routes do: the
    publish route answers 404 for it), not "cascade-events"."""
    assert hub.post("/api/channels/cascade%252Devents/publish", json={"data": 1}).status_code == 404
    code, _, got = close_of(hub.ws("/cascade%252Devents"))
    assert (code, [m["type"] for m in got]) == (4000, []), "subscribed to cascade-events"


def test_clients_metadata(hub: Serve) -> None:
    before = time.time()
    with open_ws(hub.ws(f"/{CHANNEL}"), user_agent_header="cascade-test/1.0 (meta)") as ws:
        me = connected(ws)["client_id"]
        publish(hub, CHANNEL, 1, 2, 3)
        read_events(ws, 3)
        info = wait_for(lambda: (c := clients(hub).get(me)) and c["events_sent"] == 3 and c,
                        what="events_sent to reach 3")
        host, port = ws.local_address[:2]
        assert info["client_id"] == me
        assert info["channels"] == [CHANNEL]
        assert info["remote_address"] == f"{host}:{port}"
        assert info["user_agent"] == "cascade-test/1.0 (meta)"
        assert before - 60 < info["connected_at"] < time.time() + 60
        assert (info["events_dropped"], info["queue_depth"], info["batching"]) == (0, 0, True)
        channel = hub.get(f"/api/channels/{CHANNEL}").json()
        assert me in channel["clients"]
    wait_for(lambda: me not in clients(hub), what="the closed client to leave /api/clients")
    assert me not in hub.get(f"/api/channels/{CHANNEL}").json()["clients"]


def test_compression_is_not_negotiated_without_the_flag(hub: Serve) -> None:
    with open_ws(hub.ws(f"/{CHANNEL}"), compression="deflate") as ws:
        connected(ws)
        assert ws.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


# ---- --allow-any-channel, --compression -----------------------------------------------------------


def test_allow_any_channel_accepts_a_valid_new_name(any_hub: Serve) -> None:
    name = "team.alpha_1:room-2"
    with open_ws(any_hub.ws(f"/{name}")) as ws, open_ws(any_hub.ws()) as by_op:
        assert connected(ws)["channels"] == [name]
        connected(by_op)
        by_op.send(json.dumps({"op": "subscribe", "channel": "other.new"}))
        assert recv(by_op)["channels"] == ["other.new"]
        [event_id] = publish(any_hub, name, {"hello": name})
        event = recv(ws)
        assert (event["channel"], event["id"]) == (name, event_id)
        [other_id] = publish(any_hub, "other.new", 1)
        assert recv(by_op)["id"] == other_id


@pytest.mark.parametrize("name", ["-starts-with-dash", "has%20space", "x" * 129, "semi;colon"])
def test_allow_any_channel_still_refuses_an_invalid_name(any_hub: Serve, name: str) -> None:
    code, _, got = close_of(any_hub.ws(f"/{name}"))
    assert (code, got) == (4000, [])


def test_allow_any_channel_subscribe_op_refuses_an_invalid_name(any_hub: Serve) -> None:
    with open_ws(any_hub.ws()) as ws:
        connected(ws)
        ws.send(json.dumps({"op": "subscribe", "channel": "bad name"}))
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4000


def test_compression_is_negotiated_when_offered_and_events_arrive(any_hub: Serve) -> None:
    with open_ws(any_hub.ws(f"/{CHANNEL}"), compression="deflate") as deflated, \
            open_ws(any_hub.ws(f"/{CHANNEL}")) as plain:
        assert [e.name for e in deflated.protocol.extensions] == ["permessage-deflate"]
        assert "permessage-deflate" in deflated.response.headers["Sec-WebSocket-Extensions"]
        assert plain.protocol.extensions == []
        for ws in (deflated, plain):
            connected(ws)
        deflated.send('{"op":"ping"}')
        assert recv(deflated)["type"] == "pong"
        [single] = publish(any_hub, CHANNEL, {"text": "z" * 5000})
        ids = publish(any_hub, CHANNEL, *({"n": n, "text": "abc" * n} for n in range(30)))
        for ws in (deflated, plain):
            kinds, events = read_events(ws, 31)
            assert kinds[0] == "event" and "batch" in kinds
            assert [e["id"] for e in events] == [single, *ids]
            assert events[0]["data"] == {"text": "z" * 5000}
            assert [e["data"]["n"] for e in events[1:]] == list(range(30))


def test_compressed_message_over_max_message_size_closes_1009(any_hub: Serve) -> None:
    """The limit applies to the decompressed size (default 64 KiB): 200 KB of one letter
    compresses to a few hundred bytes and must still be refused."""
    with open_ws(any_hub.ws(f"/{CHANNEL}"), compression="deflate") as ws:
        connected(ws)
        ws.send(json.dumps({"op": "publish", "channel": CHANNEL, "data": "a" * 200_000}))
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


# ---- heartbeat --------------------------------------------------------------------------------------


def test_heartbeat_closes_a_client_that_never_answers_pings(beat_hub: Serve) -> None:
    raw = RawClient(beat_hub, f"/ws/{CHANNEL}")
    try:
        assert raw.status == 101
        opcode, payload = raw.frame()
        me = json.loads(payload)["client_id"]
        opcodes = []
        code = None
        while True:
            try:
                opcode, payload = raw.frame()
            except EOFError:
                break
            opcodes.append(opcode)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0]
        assert 0x9 in opcodes, "the server never pinged"
        assert code == 1011, f"closed with {code}, frames {opcodes}"
    finally:
        raw.close()
    wait_for(lambda: me not in clients(beat_hub), what="the silent client to leave /api/clients")


def test_heartbeat_keeps_clients_that_answer(beat_hub: Serve) -> None:
    with open_ws(beat_hub.ws(f"/{CHANNEL}")) as library_client:
        library_id = connected(library_client)["client_id"]
        raw = RawClient(beat_hub, f"/ws/{CHANNEL}")
        try:
            raw.message()
            pings = 0
            while pings < 5:      # answered 5 pings: 1 s, over three pong timeouts
                opcode, payload = raw.frame()
                assert opcode == 0x9, (opcode, payload)
                raw.send(0xA, payload)
                pings += 1
            raw.send(0x1, b'{"op":"ping"}')
            assert raw.message()["type"] == "pong"
        finally:
            raw.close()
        library_client.send('{"op":"ping"}')
        assert recv(library_client)["type"] == "pong"
        assert library_id in clients(beat_hub)


# ---- slow clients -----------------------------------------------------------------------------------


def _stall(serve: Serve, stalled_id: str, healthy: ClientConnection, *, stop: Any, rounds: int = 60,
           per_round: int = 5, extra: int = 2) -> tuple[list[str], list[dict[str, Any]]]:
    """With a raw client that stopped reading and a healthy one on CHANNEL, publish rounds of
    64 KiB events (each read by the healthy client before the next: a round never exceeds
    --queue-size) until `stop(stalled client's info)`, then `extra` more rounds. Returns (the ids
    published, the events the healthy client received)."""
    ids: list[str] = []
    received: list[dict[str, Any]] = []
    remaining = None
    with serve.client() as http:
        for _ in range(rounds):
            response = http.post(f"/api/channels/{CHANNEL}/publish",
                                 json=[{"data": {"n": len(ids) + i, "pad": PAD}} for i in range(per_round)])
            assert response.status_code == 200, response.text
            ids += response.json()["ids"]
            received += read_events(healthy, len(ids) - len(received))[1]
            if remaining is None:
                info = {c["client_id"]: c for c in http.get("/api/clients").json()["clients"]}
                if stop(info.get(stalled_id)):
                    remaining = extra
            elif remaining:
                remaining -= 1
            if remaining == 0:
                return ids, received
    raise AssertionError(f"the stalled client's buffers never filled in {rounds} rounds")


@pytest.fixture(scope="module")
def drop_oldest_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, "--queue-size", "5")


@pytest.fixture(scope="module")
def disconnect_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from _server(tmp_path_factory, "--queue-size", "5", "--slow-client-policy", "disconnect")


def test_drop_oldest_counts_drops_sends_a_lag_notice_and_never_delays_others(drop_oldest_hub: Serve) -> None:
    serve = drop_oldest_hub
    first_drops: list[int] = []

    def dropping(info: dict[str, Any] | None) -> bool:
        assert info is not None, "drop-oldest must not disconnect the stalled client"
        if info["events_dropped"]:
            first_drops.append(info["events_dropped"])
        return bool(info["events_dropped"])

    stalled = RawClient(serve, f"/ws/{CHANNEL}", rcvbuf=8192)
    try:
        stalled_id = stalled.message()["client_id"]
        with open_ws(serve.ws(f"/{CHANNEL}")) as healthy:
            healthy_id = connected(healthy)["client_id"]
            ids, received = _stall(serve, stalled_id, healthy, stop=dropping)
            assert [e["id"] for e in received] == ids          # the healthy client got every event
            infos = clients(serve)
            assert infos[healthy_id]["events_dropped"] == 0
        stalled_info = infos[stalled_id]
        assert stalled_info["events_dropped"] > first_drops[0]     # it grew while stalled
        assert 0 < stalled_info["queue_depth"] <= 5

        # Reading again: what was buffered, then a lag notice, then the newest events.
        order = {event_id: index for index, event_id in enumerate(ids)}
        seen: list[int] = []
        lags: list[tuple[int, int]] = []          # (index of the last event before it, dropped)
        while not seen or seen[-1] != len(ids) - 1:
            message = stalled.message()
            if message["type"] == "lag":
                assert set(message) == {"type", "dropped"}
                lags.append((seen[-1] if seen else -1, message["dropped"]))
            seen += [order[e["id"]] for e in flatten(message)]
        assert seen == sorted(seen)
        assert lags, "no lag notice"
        total = clients(serve)[stalled_id]["events_dropped"]
        assert total == sum(d for _, d in lags)
        assert len(seen) + total == len(ids)
        for before, dropped in lags:                  # each notice covers exactly its gap
            after = seen[seen.index(before) + 1] if before >= 0 else seen[0]
            assert after - before - 1 == dropped
    finally:
        stalled.close()


def test_disconnect_policy_closes_a_stalled_client_4008_and_never_delays_others(disconnect_hub: Serve) -> None:
    serve = disconnect_hub
    stalled = RawClient(serve, f"/ws/{CHANNEL}", rcvbuf=8192)
    try:
        stalled_id = stalled.message()["client_id"]
        with open_ws(serve.ws(f"/{CHANNEL}")) as healthy:
            healthy_id = connected(healthy)["client_id"]
            ids, received = _stall(serve, stalled_id, healthy, stop=lambda info: info is None)
            assert [e["id"] for e in received] == ids
            infos = clients(serve)
            assert healthy_id in infos and stalled_id not in infos
        messages, code, reason = read_until_close(stalled)
        assert (code, reason) == (4008, "slow consumer")
        got = [e["id"] for m in messages for e in flatten(m)]
        assert got == ids[:len(got)]                  # what it got is in order, with no gap
        assert not [m for m in messages if m["type"] not in ("event", "batch")]
    finally:
        stalled.close()


@pytest.mark.parametrize("policy", ["drop-oldest", "disconnect"])
def test_a_reading_client_is_not_slow_when_one_request_exceeds_the_queue(
        drop_oldest_hub: Serve, disconnect_hub: Serve, policy: str) -> None:
    """--queue-size 5 and one publish request of 8 small events: the client reads, its socket
    is writable, so it is no slow consumer: it must get all 8 (no lag notice, no 4008)."""
    serve = drop_oldest_hub if policy == "drop-oldest" else disconnect_hub
    with open_ws(serve.ws(f"/{CHANNEL}")) as ws:
        connected(ws)
        ids = publish(serve, CHANNEL, *range(8))
        got: list[dict[str, Any]] = []
        try:
            while len(got) < 8:
                message = recv(ws)
                got += [message] if message["type"] != "batch" else message["events"]
                assert message["type"] != "lag", f"events dropped: {got}"
        except ConnectionClosed as exc:
            raise AssertionError(f"closed {exc.rcvd} after {got}") from None
        except TimeoutError:
            raise AssertionError(f"only got {got}") from None
    assert [m["type"] for m in got] == ["event"] * 8
    assert [m["id"] for m in got] == ids


# ---- graceful shutdown ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_writes_queued_events_then_closes_1001_and_exits_0(tmp_path: Path, sig: int) -> None:
    serve = start_serve(tmp_path, "--bus", "local")
    stalled = RawClient(serve, f"/ws/{CHANNEL}", rcvbuf=8192)
    try:
        stalled_id = stalled.message()["client_id"]
        with open_ws(serve.ws(f"/{CHANNEL}")) as on_path, open_ws(serve.ws()) as by_op:
            connected(on_path)
            connected(by_op)
            by_op.send(json.dumps({"op": "subscribe", "channel": OTHER}))
            assert recv(by_op)["type"] == "subscribed"
            ids: list[str] = []
            other_ids: list[str] = []
            with serve.client() as http:
                for _ in range(40):   # until events wait in the hub's queue for the stalled client
                    ids += http.post(f"/api/channels/{CHANNEL}/publish",
                                     json=[{"data": {"pad": PAD}}] * 10).json()["ids"]
                    other_ids += http.post(f"/api/channels/{OTHER}/publish",
                                           json=[{"data": n} for n in range(10)]).json()["ids"]
                    info = {c["client_id"]: c for c in http.get("/api/clients").json()["clients"]}
                    if info[stalled_id]["queue_depth"]:
                        break
                else:
                    raise AssertionError("the stalled client's buffers never filled")
            serve.proc.send_signal(sig)
            for ws, expected in ((on_path, ids), (by_op, other_ids)):
                got: list[str] = []
                with pytest.raises(ConnectionClosed) as caught:
                    while True:
                        got += [e["id"] for e in flatten(recv(ws))]
                assert got == expected
                assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
        messages, code, _ = read_until_close(stalled)
        assert code == 1001
        assert [e["id"] for m in messages for e in flatten(m)] == ids
        assert serve.proc.wait(15) == 0
    finally:
        stalled.close()
        serve.stopped = serve.proc.poll() is not None
        serve.stop()


# ---- security ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["none", "wrong-header", "wrong-query", "not-bearer"])
def test_token_missing_or_wrong_closes_4401(token_hub: Serve, how: str) -> None:
    headers = {"wrong-header": {"Authorization": "Bearer nope"},
               "not-bearer": {"Authorization": "Basic env-s3cret"}}.get(how)
    query = "?token=nope" if how == "wrong-query" else ""
    code, _, got = close_of(token_hub.ws(f"/{CHANNEL}{query}"), additional_headers=headers)
    assert (code, got) == (4401, [])


@pytest.mark.parametrize("how", ["header", "query"])
def test_right_token_connects(token_hub: Serve, how: str) -> None:
    kwargs: dict[str, Any] = {}
    url = token_hub.ws(f"/{CHANNEL}")
    if how == "header":
        kwargs["additional_headers"] = {"Authorization": "Bearer env-s3cret"}
    else:
        url += "?token=env-s3cret"
    with open_ws(url, **kwargs) as ws:
        connected(ws)
        [event_id] = publish(token_hub, CHANNEL, 1, headers={"Authorization": "Bearer env-s3cret"})
        assert recv(ws)["id"] == event_id


def test_token_file(token_file_hub: Serve) -> None:
    assert close_of(token_file_hub.ws(f"/{CHANNEL}"))[0] == 4401
    assert close_of(token_file_hub.ws(f"/{CHANNEL}?token=file-s3cret%0A"))[0] == 4401
    with open_ws(token_file_hub.ws(f"/{CHANNEL}"),
                 additional_headers={"Authorization": "Bearer file-s3cret"}) as ws:
        connected(ws)
    with open_ws(token_file_hub.ws(f"/{CHANNEL}?token=file-s3cret")) as ws:
        connected(ws)


def test_disallowed_origin_is_refused_with_403(origin_hub: Serve) -> None:
    with pytest.raises(InvalidStatus) as caught:
        open_ws(origin_hub.ws(f"/{CHANNEL}"), origin="http://evil.example")
    assert caught.value.response.status_code == 403


@pytest.mark.parametrize("origin", ["http://ok.example", None])
def test_allowed_or_no_origin_connects(origin_hub: Serve, origin: str | None) -> None:
    with open_ws(origin_hub.ws(f"/{CHANNEL}"), origin=origin) as ws:
        connected(ws)


def test_max_connections_closes_the_extra_client_1013(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--bus", "local", "--max-connections", "2") as serve, \
            open_ws(serve.ws(f"/{CHANNEL}")) as first, open_ws(serve.ws(f"/{CHANNEL}")) as second:
        connected(first)
        connected(second)
        code, _, got = close_of(serve.ws(f"/{CHANNEL}"))
        assert (code, got) == (1013, [])
        second.close()
        wait_for(lambda: serve.get("/health").json()["connections"] == 1, what="one connection left")
        with open_ws(serve.ws(f"/{CHANNEL}")) as third:
            connected(third)


def test_connect_rate_refuses_part_of_a_burst_with_1013(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--bus", "local", "--connect-rate", "1") as serve:
        outcomes = []
        for _ in range(6):
            with open_ws(serve.ws(f"/{CHANNEL}")) as ws:
                try:
                    outcomes.append(recv(ws)["type"])
                except ConnectionClosed as exc:
                    assert exc.rcvd is not None
                    outcomes.append(exc.rcvd.code)
        assert "connected" in outcomes and 1013 in outcomes, outcomes
        assert set(outcomes) <= {"connected", 1013}
