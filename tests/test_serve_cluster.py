"""Two real `cascade serve` processes on a real 3-master Redis Cluster: events cross instances on
channels owned by every shard (history and wake-ups stay on the channel's shard); a master
stops: the hubs report it, refuse publishes on its channels only and keep serving the others;
it comes back: its channels work again, and a client that stayed connected gets what was
published after the recovery."""

from __future__ import annotations

import json
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cluster_support import Cluster
from hub_support import Serve, read_events, wait_for
from test_serve_bus import start_many, stop_all, ws_connect


def publish(serve: Serve, channel: str, data: Any) -> str:
    response = serve.post(f"/api/channels/{channel}/publish", json={"data": data})
    assert response.status_code == 200, response.text
    return response.json()["ids"][0]


def receive(ws: Any, event_id: str) -> dict[str, Any]:
    (event,) = [e for e in read_events(ws, lambda ev: any(e["id"] == event_id for e in ev), timeout=15)
                if e["id"] == event_id]
    return event


def redis_health(serve: Serve) -> dict[str, Any]:
    return serve.get("/health").json()["redis"]


def test_hubs_on_a_cluster(tmp_path: Path, cluster: Cluster) -> None:
    owned = cluster.channels_per_node(lambda n: f"shard-{n}")
    channels = [names[0] for names in owned]             # channels[i] lives on node i
    args = ["--redis-url", cluster.url, "--embedded-redis", "never", "--channels", ",".join(channels)]
    a, b = start_many(tmp_path, args, args)
    try:
        for serve in (a, b):
            wait_for(lambda s=serve: redis_health(s)["state"] == "ok", timeout=15, what="cluster bus ok")
            shards = redis_health(serve)["shards"]
            assert sorted(s["node"] for s in shards) == sorted(cluster.node_name(i) for i in range(3))
            assert all(s["state"] == "ok" for s in shards)
        stack = ExitStack()
        clients = {channel: stack.enter_context(ws_connect(b, f"/{channel}")) for channel in channels}
        for channel in channels:
            event_id = publish(a, channel, {"on": channel})
            assert receive(clients[channel], event_id)["data"] == {"on": channel}

        cluster.stop_node(0, signal.SIGKILL)
        for serve in (a, b):
            wait_for(lambda s=serve: redis_health(s)["state"] == "partial", timeout=15, what="partial")
        health = a.get("/health").json()
        assert health["status"] == "degraded"
        down = [s for s in health["redis"]["shards"] if s["state"] != "ok"]
        assert [s["node"] for s in down] == [cluster.node_name(0)]
        assert a.get("/ready").status_code == 200             # the other shards still serve
        response = a.post(f"/api/channels/{channels[0]}/publish", json={"data": "lost shard"})
        assert response.status_code == 503 and cluster.node_name(0) in response.json()["error"]
        for channel in channels[1:]:
            event_id = publish(a, channel, "still served")
            assert receive(clients[channel], event_id)["data"] == "still served"
        assert "partial" in a.stderr() or "unreachable" in a.stderr()

        cluster.start_node(0)
        cluster.wait_ok()
        for serve in (a, b):
            wait_for(lambda s=serve: redis_health(s)["state"] == "ok", timeout=20, what="recovered")
        event_id = wait_for(lambda: _try_publish(a, channels[0]), timeout=15, what="publish after recovery")
        assert receive(clients[channels[0]], event_id)["data"] == "back"
        stack.close()
    finally:
        codes = stop_all(a, b)
    assert codes == [0, 0], (a.stderr(), b.stderr())
    assert "Traceback" not in a.stderr() + b.stderr()


def _try_publish(serve: Serve, channel: str) -> str | None:
    response = serve.post(f"/api/channels/{channel}/publish", json={"data": "back"})
    return response.json()["ids"][0] if response.status_code == 200 else None


def test_resume_on_a_cluster(tmp_path: Path, cluster: Cluster) -> None:
    """History lives on the channel's shard: a client resumes on the other instance."""
    channel = cluster.channels_per_node(lambda n: f"resume-{n}")[1][0]
    args = ["--redis-url", cluster.url, "--embedded-redis", "never", "--channels", channel]
    a, b = start_many(tmp_path, args, args)
    try:
        for serve in (a, b):
            wait_for(lambda s=serve: redis_health(s)["state"] == "ok", timeout=15, what="cluster bus ok")
        first = publish(a, channel, 0)
        missed = [publish(a, channel, n) for n in (1, 2)]
        with ws_connect(b, f"/{channel}?since={first}") as ws:
            events = read_events(ws, lambda ev: len(ev) >= 2, timeout=15)
        assert [e["id"] for e in events] == missed
        body = b.get(f"/api/channels/{channel}/history", params={"since": first}).json()
        assert [json.dumps(e["data"]) for e in body["events"]] == ["1", "2"] and body["gap"] is False
    finally:
        assert stop_all(a, b) == [0, 0], (a.stderr(), b.stderr())
