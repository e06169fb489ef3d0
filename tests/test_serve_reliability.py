"""Reliability with real processes: Redis restarts while publishers keep publishing to two
`cascade serve` instances. The hubs report `degraded` and refuse publishes while it is away,
reconnect, and every event a publisher got an id for reaches a client that stayed connected
and a client that resumed from its last id, once each and in order (delivery is at least once
from the publisher: an attempt cut off by the restart may be stored too)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from conftest import _stop, _wait_port, free_port, redis_binary
from hub_support import Serve, read_events, wait_for
from test_serve_bus import start_many, stop_all, ws_connect

from cascade_cli.hub.history import parse_id

CHANNEL = "cascade-events"


def durable_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """redis-server that keeps every acknowledged write across a restart (AOF, fsync always)."""
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "redis-server")
    return proc


class Publisher(threading.Thread):
    """Publishes numbered events through one instance until stopped; keeps the ids it was given
    and counts refusals (503), which it retries as a client should."""

    def __init__(self, serve: Serve, limit: int = 2000) -> None:
        super().__init__(daemon=True)
        self.serve = serve
        self.limit = limit
        self.accepted: list[tuple[str, int]] = []
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        with self.serve.client() as client:
            while not self.stopping.is_set() and n < self.limit:
                try:
                    response = client.post(f"/api/channels/{CHANNEL}/publish", json={"data": n})
                except Exception:   # noqa: BLE001 - a client retries whatever went wrong
                    response = None
                if response is not None and response.status_code == 200:
                    self.accepted.append((response.json()["ids"][0], n))
                    n += 1
                else:
                    self.refused += 1
                    time.sleep(0.05)
                time.sleep(0.005)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


def assert_delivered(got: list[dict[str, Any]], accepted: list[str]) -> None:
    """Every accepted event once, in order, and nothing else but stored attempts the publisher
    was not told about (at least once: a publish cut off by the restart may have been stored,
    then retried)."""
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=parse_id), ids
    wanted = set(accepted)
    assert [i for i in ids if i in wanted] == accepted
    numbers = {e["data"] for e in got if e["id"] not in wanted}
    assert numbers <= set(range(len(accepted) + 1)), numbers   # retries of numbered events


def state(serve: Serve) -> str:
    return serve.get("/health").json()["redis"]["state"]


def test_redis_restarts_under_load(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    redis_proc = durable_redis(data, port)
    args = ["--redis-url", f"redis://127.0.0.1:{port}/0", "--embedded-redis", "never"]
    a, b = start_many(tmp_path, args, args, env={"CASCADE_REDIS_TIMEOUT": "1"})
    publisher = Publisher(a)
    try:
        for serve in (a, b):
            wait_for(lambda s=serve: state(s) == "ok", timeout=15, what="bus ok")
        with ws_connect(b) as stayed:
            publisher.start()
            with ws_connect(b) as leaving:
                before = read_events(leaving, lambda ev: len(ev) >= 5)
            last_seen = before[-1]["id"]

            _stop(redis_proc)
            for serve in (a, b):
                wait_for(lambda s=serve: state(s) == "down", timeout=15, what="bus down")
                assert serve.get("/health").json()["status"] == "degraded"
            refused_before = publisher.refused
            wait_for(lambda: publisher.refused > refused_before, timeout=15, what="a refused publish")
            redis_proc = durable_redis(data, port)
            for serve in (a, b):
                wait_for(lambda s=serve: state(s) == "ok", timeout=20, what="bus back")
            count = len(publisher.accepted)
            wait_for(lambda: len(publisher.accepted) >= count + 20, timeout=20, what="publishing again")
            publisher.stop()
            accepted = [event_id for event_id, _ in publisher.accepted]
            assert [n for _, n in publisher.accepted] == list(range(len(accepted)))

            got = read_events(stayed, lambda ev: bool(ev) and ev[-1]["id"] == accepted[-1], timeout=20)
            assert_delivered(got, accepted)
            with ws_connect(b, f"/{CHANNEL}?since={last_seen}") as resumed:
                others: list[dict[str, Any]] = []
                got = read_events(resumed, lambda ev: bool(ev) and ev[-1]["id"] == accepted[-1],
                                  timeout=20, others=others)
            assert_delivered(got, accepted[accepted.index(last_seen) + 1:])
            assert not [m for m in others if m["type"] == "gap"], others
    finally:
        publisher.stopping.set()
        codes = stop_all(a, b)
        if redis_proc.poll() is None:
            redis_proc.send_signal(signal.SIGTERM)
            redis_proc.wait(10)
    assert codes == [0, 0], (a.stderr(), b.stderr())
    assert "Traceback" not in a.stderr() + b.stderr()
    assert json.dumps("lost the Redis bus")[1:-1] in a.stderr()
