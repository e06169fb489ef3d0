"""ShardedSubscriber and the cluster client against real servers: a single redis-server, the
in-memory server, and a real 3-master Redis Cluster (one per module, see cluster_support)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster_support import Cluster
from conftest import EngineServer, _stop, _wait_port, free_port, redis_binary

from cascade_cli.config import RedisSettings
from cascade_cli.connect import redis_client, redis_cluster_client
from cascade_cli.errors import ConfigError
from cascade_cli.hub import cluster as hub_cluster
from cascade_cli.hub.cluster import ShardedSubscriber, detect_cluster

SETTINGS = RedisSettings(connect_timeout=1.0, timeout=2.0)


def shard_channel(name: str) -> str:
    return f"cascade:hub:{{{name}}}"


def history_key(name: str) -> str:
    return f"cascade:hub:{{{name}}}:history"


class Recorder:
    """A ShardedSubscriber with every callback recorded."""

    def __init__(self, url: str, *, cluster: bool) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed: list[list[str]] = []
        self.states: list[str] = []
        self.sub = ShardedSubscriber(SETTINGS, url, cluster=cluster, on_message=self._message,
                                     on_subscribed=self.subscribed.append,
                                     on_state=lambda: self.states.append(self.sub.state))

    def _message(self, channel: str, data: bytes) -> None:
        self.messages.append((channel, data))

    def got(self, channel: str, data: bytes) -> bool:
        return (channel, data) in self.messages

    def confirmed(self, channel: str) -> int:
        """How many times `channel` was reported subscribed."""
        return sum(batch.count(channel) for batch in self.subscribed)


async def until(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll `predicate()` on the event loop until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:7000/1", "unix:///tmp/redis.sock"])
def test_cluster_client_refuses_what_a_cluster_cannot_use(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid Redis Cluster URL") as caught:
        redis_cluster_client(SETTINGS, url)
    assert "database 0" in caught.value.hint


# -- detection --------------------------------------------------------------------------------

def test_detect_cluster(real_server: EngineServer, memory_server: EngineServer, cluster: Cluster) -> None:
    async def scenario() -> list[bool]:
        return [await detect_cluster(SETTINGS, real_server.url),
                await detect_cluster(SETTINGS, memory_server.url),
                await detect_cluster(SETTINGS, cluster.urls[1]),
                await detect_cluster(SETTINGS, f"redis://127.0.0.1:{free_port()}/0")]

    assert asyncio.run(scenario()) == [False, False, True, False]


@pytest.mark.parametrize("cluster_mode", [False, True], ids=["single", "cluster"])
def test_nothing_listening_is_down(cluster_mode: bool) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario() -> None:
        rec = Recorder(url, cluster=cluster_mode)
        await rec.sub.start()
        rec.sub.follow([shard_channel("nowhere")])
        try:
            await until(lambda: rec.sub.state == "down", "state down")
            assert rec.sub.last_error and url.split("//")[1].split("/")[0] in rec.sub.last_error
            assert not rec.sub.channel_ok(shard_channel("nowhere"))
            assert rec.subscribed == [] and rec.messages == []
        finally:
            await rec.sub.stop()
        assert rec.states[-1] == "down"

    asyncio.run(scenario())


# -- one node ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["real", "memory"])
def test_single_node_delivers_and_reports(engine: str, request: pytest.FixtureRequest) -> None:
    server: EngineServer = request.getfixturevalue(f"{engine}_server")

    async def scenario() -> None:
        rec = Recorder(server.url, cluster=False)
        first, later = shard_channel(f"{engine}-a"), shard_channel(f"{engine}-b")
        rec.sub.follow([first])
        assert rec.sub.state == "connecting"
        await rec.sub.start()
        rec.sub.follow([later, first])          # a known channel again is ignored
        await until(lambda: rec.sub.channel_ok(first) and rec.sub.channel_ok(later), "subscriptions")
        assert sorted(c for batch in rec.subscribed for c in batch) == sorted([first, later])
        assert rec.sub.state == "ok"
        assert rec.sub.shards() == [{"node": f"127.0.0.1:{server.port}", "state": "ok",
                                     "channels": 2, "error": None}]
        assert not rec.sub.channel_ok(shard_channel("never-followed"))
        pub = redis_client(SETTINGS, server.url)
        try:
            assert await pub.spublish(first, b"one") == 1
            assert await pub.spublish(later, b"two") == 1
            assert await pub.publish(first, b"not-sharded") == 0   # plain pub/sub is not followed
            await until(lambda: rec.got(first, b"one") and rec.got(later, b"two"), "messages")
        finally:
            await pub.aclose()
            await rec.sub.stop()
        assert rec.messages == [(first, b"one"), (later, b"two")]
        assert "ok" in rec.states

    asyncio.run(scenario())


def start_redis_on(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """redis-server on `port` (again, after a stop)."""
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "redis-server")
    return proc


def test_single_node_goes_down_and_resubscribes(tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis_on(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    channel = shard_channel("restart")

    async def scenario() -> None:
        nonlocal proc
        rec = Recorder(url, cluster=False)
        await rec.sub.start()
        rec.sub.follow([channel])
        await until(lambda: rec.sub.channel_ok(channel), "the first subscription")
        _stop(proc)
        await until(lambda: rec.sub.state == "down", "state down")
        [shard] = rec.sub.shards()
        assert shard["state"] == "down" and shard["error"] and f"127.0.0.1:{port}" in shard["error"]
        assert not rec.sub.channel_ok(channel)
        proc = start_redis_on(port, tmp_path)
        await until(lambda: rec.sub.state == "ok" and rec.sub.channel_ok(channel), "resubscription")
        assert rec.confirmed(channel) >= 2
        assert rec.sub.shards()[0]["error"] is None
        pub = redis_client(SETTINGS, url)
        try:
            assert await pub.spublish(channel, b"back") == 1
            await until(lambda: rec.got(channel, b"back"), "a message after the restart")
        finally:
            await pub.aclose()
            await rec.sub.stop()
        assert rec.states.index("down") < len(rec.states) - 1 - rec.states[::-1].index("ok")

    try:
        asyncio.run(scenario())
    finally:
        _stop(proc)


def test_single_node_that_stops_answering_is_noticed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that keeps the connection open but answers nothing (SIGSTOP) is found out by
    the idle PING, and the subscriber resubscribes once it answers again (SIGCONT)."""
    monkeypatch.setattr(hub_cluster, "PING_IDLE", 0.2)
    port = free_port()
    proc = start_redis_on(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    channel = shard_channel("hung")

    async def scenario() -> None:
        rec = Recorder(url, cluster=False)
        rec.sub.settings = RedisSettings(connect_timeout=0.5, timeout=0.5)
        rec.sub.follow([channel])
        await rec.sub.start()
        await until(lambda: rec.sub.channel_ok(channel), "the first subscription")
        proc.send_signal(signal.SIGSTOP)
        try:
            await until(lambda: rec.sub.state == "down", "state down")
            assert "PING" in rec.sub.shards()[0]["error"] or "imeout" in rec.sub.shards()[0]["error"]
            assert not rec.sub.channel_ok(channel)
        finally:
            proc.send_signal(signal.SIGCONT)
        await until(lambda: rec.sub.channel_ok(channel), "resubscription")
        assert rec.confirmed(channel) >= 2
        await rec.sub.stop()

    try:
        asyncio.run(scenario())
    finally:
        _stop(proc)


# -- the cluster ------------------------------------------------------------------------------

def test_cluster_has_three_masters_covering_every_slot(cluster: Cluster) -> None:
    print(f"cluster of {len(cluster.ports)} masters started in {cluster.started_in:.2f} s")  # for -s
    ranges = sorted(cluster.slots())
    assert sorted(i for _, _, i in ranges) == [0, 1, 2]
    assert ranges[0][0] == 0 and ranges[-1][1] == 16383
    assert all(ranges[k][1] + 1 == ranges[k + 1][0] for k in range(len(ranges) - 1))


async def moved_replies(cluster: Cluster) -> int:
    """MOVED errors the cluster's nodes have answered so far (INFO errorstats)."""
    total = 0
    for url in cluster.urls:
        client = redis_client(SETTINGS, url)
        try:
            total += (await client.info("errorstats")).get("errorstat_MOVED", {}).get("count", 0)
        finally:
            await client.aclose()
    return total


def test_cluster_pipeline_routes_stream_and_spublish(cluster: Cluster) -> None:
    names = [names[0] for names in cluster.channels_per_node(lambda n: f"pipe-{n}")]

    async def scenario() -> None:
        rec = Recorder(cluster.url, cluster=True)
        await rec.sub.start()
        rec.sub.follow(shard_channel(name) for name in names)
        await until(lambda: all(rec.sub.channel_ok(shard_channel(n)) for n in names), "subscriptions")
        rc = redis_cluster_client(SETTINGS, cluster.url)
        moved_before = await moved_replies(cluster)
        try:
            pipe = rc.pipeline(transaction=False)
            for name in names:
                pipe.xadd(history_key(name), {"data": name}, maxlen=100, approximate=True)
                pipe.spublish(shard_channel(name), b"instance-1")
            replies = await pipe.execute()
            ids = replies[0::2]
            assert replies[1::2] == [1, 1, 1]        # one subscriber on each owning master
            pipe = rc.pipeline(transaction=False)
            for name in names:
                pipe.xrange(history_key(name), "-", "+")
                pipe.xrevrange(history_key(name), "+", "-", count=1)
                pipe.xtrim(history_key(name), minid="0-1", approximate=True)
            replies = await pipe.execute()
            for i, name in enumerate(names):
                assert replies[3 * i] == [(ids[i], {b"data": name.encode()})]
                assert replies[3 * i + 1] == [(ids[i], {b"data": name.encode()})]
                assert replies[3 * i + 2] == 0
            assert await moved_replies(cluster) == moved_before   # each command went to the owner
            await until(lambda: all(rec.got(shard_channel(n), b"instance-1") for n in names), "wake-ups")
        finally:
            await rc.aclose()
            await rec.sub.stop()
        # Each stream lives on the master owning its hash tag.
        for name, node_id in zip(names, range(3), strict=True):
            direct = redis_client(SETTINGS, cluster.urls[node_id])
            try:
                assert await direct.xlen(history_key(name)) == 1
            finally:
                await direct.aclose()

    asyncio.run(scenario())


def test_cluster_shard_down_and_back(cluster: Cluster) -> None:
    per_node = [[shard_channel(name) for name in names]
                for names in cluster.channels_per_node(lambda n: f"live-{n}", per_node=2)]
    victim = 1
    others = [i for i in range(3) if i != victim]

    async def publish(rc: Any, channels: list[str], data: bytes) -> None:
        for channel in channels:
            assert await rc.spublish(channel, data) == 1

    async def scenario() -> None:
        rec = Recorder(cluster.url, cluster=True)
        rec.sub.follow(per_node[0] + per_node[1])
        await rec.sub.start()
        await until(lambda: all(rec.sub.channel_ok(c) for c in per_node[0] + per_node[1]),
                    "subscriptions on two masters")
        assert len(rec.sub.shards()) == 2
        rec.sub.follow(per_node[2])              # a third master joins the set of shards
        everything = [c for channels in per_node for c in channels]
        await until(lambda: all(rec.sub.channel_ok(c) for c in everything), "subscriptions on three")
        assert rec.sub.state == "ok"
        shards = {shard["node"]: shard for shard in rec.sub.shards()}
        assert shards == {cluster.node_name(i): {"node": cluster.node_name(i), "state": "ok",
                                                 "channels": 2, "error": None} for i in range(3)}
        rc = redis_cluster_client(SETTINGS, cluster.url)
        try:
            await publish(rc, everything, b"before")
            await until(lambda: all(rec.got(c, b"before") for c in everything), "messages from 3 shards")

            cluster.stop_node(victim, signal.SIGKILL)
            await until(lambda: rec.sub.state == "partial", "state partial")
            shards = {shard["node"]: shard for shard in rec.sub.shards()}
            assert shards[cluster.node_name(victim)]["state"] == "down"
            assert str(cluster.ports[victim]) in shards[cluster.node_name(victim)]["error"]
            assert all(shards[cluster.node_name(i)]["state"] == "ok" for i in others)
            assert not any(rec.sub.channel_ok(c) for c in per_node[victim])
            alive = [c for i in others for c in per_node[i]]
            assert all(rec.sub.channel_ok(c) for c in alive)
            # Once the other masters flag it FAIL, they go on serving their own slots.
            await asyncio.to_thread(cluster.wait_failed, victim)
            assert rec.sub.state == "partial"
            assert all(rec.sub.channel_ok(c) for c in alive)
            await publish(rc, alive, b"during")
            await until(lambda: all(rec.got(c, b"during") for c in alive), "messages from the others")

            cluster.start_node(victim)
            await asyncio.to_thread(cluster.wait_ok)
            await until(lambda: rec.sub.state == "ok", "state ok again", timeout=15)
            await until(lambda: all(rec.sub.channel_ok(c) for c in per_node[victim]), "resubscription")
            assert all(rec.confirmed(c) >= 2 for c in per_node[victim])
            assert all(rec.confirmed(c) == 1 for c in alive)
            await publish(rc, everything, b"after")
            await until(lambda: all(rec.got(c, b"after") for c in everything), "messages after the restart")
        finally:
            await rc.aclose()
            await rec.sub.stop()
        assert "partial" in rec.states and rec.states[-1] == "ok"

    asyncio.run(scenario())


def test_cluster_follows_a_slot_move(cluster: Cluster) -> None:
    """When a slot moves to another master, Redis unsubscribes its shard channels; the
    subscriber refreshes the slot map and subscribes on the new owner."""
    from redis.crc import key_slot

    per_node = [[shard_channel(name) for name in names]
                for names in cluster.channels_per_node(lambda n: f"move-{n}", per_node=2)]
    mover, stays = per_node[0]
    slot = key_slot(mover.encode())
    assert key_slot(stays.encode()) != slot

    async def scenario() -> None:
        rec = Recorder(cluster.url, cluster=True)
        rec.sub.follow(per_node[0] + per_node[1])
        await rec.sub.start()
        await until(lambda: all(rec.sub.channel_ok(c) for c in per_node[0] + per_node[1]), "subscriptions")
        rc = redis_cluster_client(SETTINGS, cluster.url)
        try:
            await asyncio.to_thread(cluster.move_slot, slot, 2)
            await until(lambda: rec.confirmed(mover) == 2 and rec.sub.channel_ok(mover), "the channel moved")
            shards = {shard["node"]: shard["channels"] for shard in rec.sub.shards()}
            assert shards == {cluster.node_name(0): 1, cluster.node_name(1): 2, cluster.node_name(2): 1}
            assert rec.confirmed(stays) == 1
            assert await rc.spublish(mover, b"moved") == 1
            await until(lambda: rec.got(mover, b"moved"), "a message from the new owner")

            await asyncio.to_thread(cluster.move_slot, slot, 0)
            await until(lambda: rec.confirmed(mover) == 3 and rec.sub.channel_ok(mover), "the channel back")
            assert {shard["node"] for shard in rec.sub.shards()} == {cluster.node_name(0), cluster.node_name(1)}
            assert await rc.spublish(mover, b"back") == 1
            await until(lambda: rec.got(mover, b"back"), "a message from the first owner")
        finally:
            await rc.aclose()
            await rec.sub.stop()

    asyncio.run(scenario())
