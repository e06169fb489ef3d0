"""History and resume in a real `cascade serve`, the same tests on each engine: the local bus
(history in the process), cascade's in-memory Redis server and a real redis-server (Redis
streams). They must agree: ids ordered and unique, resume without a gap or a duplicate at the
seam, a gap notice when history was trimmed, publishes acknowledged once in history."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import EngineServer
from hub_support import Serve, read_events, start_serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cascade_cli.hub.history import parse_id


@pytest.fixture(scope="module", params=["local", "memory", "redis"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One `cascade serve` per engine for the module (each test uses its own channel): the local
    bus, or the session's in-memory server / redis-server."""
    if request.param == "local":
        engine_args = ["--bus", "local"]
    else:
        server: EngineServer = request.getfixturevalue("memory_server" if request.param == "memory"
                                                       else "real_server")
        engine_args = ["--redis-url", server.url, "--embedded-redis", "never"]
    with start_serve(tmp_path_factory.mktemp("history"), *engine_args, "--allow-any-channel",
                     "--history-size", "5") as serve:
        yield serve
    assert serve.proc.returncode == 0, serve.stderr()


def fresh_channel() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def publish(serve: Serve, channel: str, *data: Any) -> list[str]:
    response = serve.post(f"/api/channels/{channel}/publish", json=[{"data": d} for d in data])
    assert response.status_code == 200, response.text
    return response.json()["ids"]


@contextmanager
def subscriber(serve: Serve, channel: str, since: str | None = None) -> Iterator[ClientConnection]:
    with connect(serve.ws(f"/{channel}" + (f"?since={since}" if since else "")), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        yield ws


def ids_until(ws: ClientConnection, last: str, others: list[dict[str, Any]] | None = None) -> list[str]:
    """Event ids `ws` receives until it has `last`."""
    return [e["id"] for e in read_events(ws, lambda ev: bool(ev) and ev[-1]["id"] == last, others=others)]


def test_ids_are_ordered_stream_ids(hub: Serve) -> None:
    channel = fresh_channel()
    ids = publish(hub, channel, 1, 2, 3)
    parsed = [parse_id(i) for i in ids]
    assert parsed == sorted(set(parsed)) and len(parsed) == 3
    assert publish(hub, channel, 4)[0] > ids[-1] or parse_id(publish(hub, channel, 5)[0]) > parsed[-1]


def test_resume_by_url_gets_exactly_what_was_missed(hub: Serve) -> None:
    channel = fresh_channel()
    with subscriber(hub, channel) as ws:
        first = publish(hub, channel, "a", "b")
        assert ids_until(ws, first[-1]) == first
    missed = publish(hub, channel, "c", "d")
    with subscriber(hub, channel, since=first[-1]) as ws:
        others: list[dict[str, Any]] = []
        got = ids_until(ws, missed[-1], others)
        assert got == missed and others == []
        live = publish(hub, channel, "e")
        assert ids_until(ws, live[-1]) == live


def test_resume_by_op_then_live_without_a_seam(hub: Serve) -> None:
    channel = fresh_channel()
    before = publish(hub, channel, 1, 2, 3)
    with connect(hub.ws(""), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        ws.send(json.dumps({"op": "subscribe", "channel": channel, "since": before[0]}))
        ack = json.loads(ws.recv(timeout=10))
        assert ack == {"type": "subscribed", "channel": channel, "channels": [channel]}
        after = publish(hub, channel, 4)
        assert ids_until(ws, after[-1]) == before[1:] + after
        ws.send(json.dumps({"op": "subscribe", "channel": channel, "since": "x"}))
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and "since" in error["error"]


def test_gap_when_history_was_trimmed(hub: Serve) -> None:
    channel = fresh_channel()
    ids = publish(hub, channel, *range(8))               # history keeps the last 5
    for since in (ids[0], ids[2]):                       # older than every event kept
        others: list[dict[str, Any]] = []
        with subscriber(hub, channel, since=since) as ws:
            assert ids_until(ws, ids[-1], others) == ids[3:]
        assert others == [{"type": "gap", "channel": channel, "since": since, "first": ids[3]}]
    with subscriber(hub, channel, since=ids[3]) as ws:   # still kept: nothing after it went
        others = []
        assert ids_until(ws, ids[-1], others) == ids[4:]
        assert others == []


def test_history_api(hub: Serve) -> None:
    channel = fresh_channel()
    ids = publish(hub, channel, *[{"n": n} for n in range(7)])
    body = hub.get(f"/api/channels/{channel}/history").json()
    assert [e["id"] for e in body["events"]] == ids[2:]
    assert [e["data"]["n"] for e in body["events"]] == list(range(2, 7))
    assert body["gap"] is False and body["next"] == ids[-1]
    page = hub.get(f"/api/channels/{channel}/history", params={"since": ids[3], "limit": 2}).json()
    assert [e["id"] for e in page["events"]] == ids[4:6] and page["next"] == ids[5] and not page["gap"]
    page = hub.get(f"/api/channels/{channel}/history", params={"since": ids[0]}).json()
    assert page["gap"] is True and [e["id"] for e in page["events"]] == ids[2:]
    page = hub.get(f"/api/channels/{channel}/history", params={"since": ids[-1]}).json()
    assert page == {"channel": channel, "gap": False, "next": ids[-1], "events": []}
    latest = hub.get(f"/api/channels/{channel}/history", params={"limit": 1}).json()
    assert [e["id"] for e in latest["events"]] == ids[-1:]
    for params, status in (({"since": "nope"}, 422), ({"limit": 0}, 422), ({"limit": 5000}, 422)):
        response = hub.get(f"/api/channels/{channel}/history", params=params)
        assert response.status_code == status and "error" in response.json()
    assert hub.get("/api/channels/bad%20name/history").status_code == 404


def test_bad_since_in_the_url_is_refused(hub: Serve) -> None:
    with connect(hub.ws(f"/{fresh_channel()}?since=yesterday"), open_timeout=10) as ws, \
            pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)
    assert ws.close_code == 1008 and "since" in (ws.close_reason or "")


def test_reconnecting_under_load_misses_nothing(hub: Serve) -> None:
    """A publisher keeps publishing while a client disconnects and resumes from its last id
    again and again: it ends with every event once, in order (each reconnect misses fewer events
    than history keeps)."""
    channel = fresh_channel()
    total = 100
    published: list[str] = []

    def publisher() -> None:
        with hub.client() as client:
            for n in range(total):
                response = client.post(f"/api/channels/{channel}/publish", json={"data": n})
                published.extend(response.json()["ids"])
                time.sleep(0.01)

    def enough(events: list[dict[str, Any]]) -> bool:
        return len(events) >= 3 or (bool(events) and events[-1]["data"] == total - 1)

    received: list[dict[str, Any]] = []
    thread = threading.Thread(target=publisher)
    with subscriber(hub, channel) as ws:
        thread.start()
        received += read_events(ws, enough)
    try:
        while received[-1]["data"] != total - 1:
            with subscriber(hub, channel, since=received[-1]["id"]) as ws:
                received += read_events(ws, enough)
    finally:
        thread.join(30)
    assert [e["id"] for e in received] == published and len(published) == total
    assert [e["data"] for e in received] == list(range(total))


def test_a_burst_larger_than_history_reaches_live_subscribers(hub: Serve) -> None:
    channel = fresh_channel()
    with subscriber(hub, channel) as ws:
        ids = publish(hub, channel, *range(8))           # history keeps 5; live clients get all 8
        others: list[dict[str, Any]] = []
        assert ids_until(ws, ids[-1], others) == ids and others == []
    body = hub.get(f"/api/channels/{channel}/history").json()
    assert [e["id"] for e in body["events"]] == ids[3:]


def test_history_reads_create_no_channel(hub: Serve) -> None:
    channel = fresh_channel()
    body = hub.get(f"/api/channels/{channel}/history").json()
    assert body == {"channel": channel, "gap": False, "next": None, "events": []}
    listed = [c["channel"] for c in hub.get("/api/channels").json()["channels"]]
    assert channel not in listed
    response = hub.get(f"/api/channels/{channel}/history", params={"limit": "abc"})
    assert response.status_code == 422 and "limit" in response.json()["error"]


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_instance_that_fell_behind_history_tells_its_clients(tmp_path_factory: pytest.TempPathFactory,
                                                                request: pytest.FixtureRequest,
                                                                kind: str) -> None:
    """Another writer appends more than history keeps without waking this instance (as a far
    behind instance would see it); the next wake-up finds its cursor trimmed away: its live
    subscribers get a gap notice, then the events still kept, in order."""
    import redis

    server: EngineServer = request.getfixturevalue("memory_server" if kind == "memory" else "real_server")
    channel = fresh_channel()
    with start_serve(tmp_path_factory.mktemp("behind"), "--redis-url", server.url, "--embedded-redis", "never",
                     "--channels", channel, "--history-size", "3") as serve, subscriber(serve, channel) as ws:
        (first,) = publish(serve, channel, "seen")
        assert ids_until(ws, first) == [first]
        client = redis.Redis.from_url(server.url)
        written = [client.xadd(f"cascade:hub:{{{channel}}}:history", {"t": "1.0", "d": str(n)}, maxlen=3,
                               approximate=False).decode() for n in range(6)]
        client.close()
        (last,) = publish(serve, channel, "wakes it up")
        others: list[dict[str, Any]] = []
        got = ids_until(ws, last, others)
        assert others == [{"type": "gap", "channel": channel, "since": first, "first": written[3]}]
        assert got == [*written[3:], last]
        assert "cascade_hub_history_gaps_total 1" in serve.get("/metrics").text


def test_publish_ops_echo_their_ref_in_order(hub: Serve) -> None:
    """Publish ops of one client are stored in the order sent while the client keeps sending; each
    reply echoes the op's `ref`."""
    channel = fresh_channel()
    with connect(hub.ws(""), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        for n in range(5):
            ws.send(json.dumps({"op": "publish", "channel": channel, "data": n, "ref": f"r{n}"}))
        ws.send(json.dumps({"op": "publish", "channel": channel, "data": 5, "ref": 7}))
        ws.send(json.dumps({"op": "publish", "channel": channel, "data": 6, "ref": {"not": "allowed"}}))
        replies = [json.loads(ws.recv(timeout=10)) for _ in range(7)]
    published = [r for r in replies if r["type"] == "published"]
    assert [r["ref"] for r in published] == ["r0", "r1", "r2", "r3", "r4", 7]
    ids = [parse_id(r["id"]) for r in published]
    assert ids == sorted(ids)
    (error,) = [r for r in replies if r["type"] == "error"]
    assert error["op"] == "publish" and '"ref"' in error["error"]
    stored = hub.get(f"/api/channels/{channel}/history").json()["events"]
    assert [e["data"] for e in stored[-5:]] == [1, 2, 3, 4, 5]
