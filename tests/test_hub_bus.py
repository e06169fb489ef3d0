"""The Redis bus (`hub/bus.py`) in one event loop against real servers: redis-server and the
in-memory server (the same test on each; they must agree), and the session's Redis Cluster.
These are the corner cases a reviewer found: bursts larger than history, history trimmed past a
lagging instance or under a resuming client, resuming on an instance that is behind, entries
written by someone else, a cluster node that is down when the bus starts, and a resume replaced
by a later subscribe."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from cluster_support import Cluster
from conftest import EngineServer

from cascade_cli.config import RedisSettings
from cascade_cli.hub.bus import RedisBus, Resume, stream_key
from cascade_cli.hub.history import Bounds, parse_id
from cascade_cli.hub.routing import Session
from cascade_cli.hub.service import HubOptions, HubService, redis_bus_factory

SETTINGS = RedisSettings(connect_timeout=1.0, timeout=2.0)


@pytest.fixture(params=["redis", "memory"])
def url(request: pytest.FixtureRequest) -> str:
    server: EngineServer = request.getfixturevalue("real_server" if request.param == "redis" else "memory_server")
    return server.url


class Seen:
    """What a bus hands to its instance: event ids in order, and gap notices."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.gaps: list[dict[str, Any]] = []

    def events(self, channel: str, messages: list[bytes]) -> None:
        self.ids.extend(json.loads(m)["id"] for m in messages)

    def gap(self, channel: str, message: bytes) -> None:
        self.gaps.append(json.loads(message))


def bus(url: str, bounds: Bounds, channel: str, cluster: bool = False) -> tuple[RedisBus, Seen]:
    seen = Seen()
    made = RedisBus(SETTINGS, url, seen.events, instance=uuid.uuid4().hex[:8], bounds=lambda c: bounds,
                    on_gap=seen.gap, cluster=cluster)
    made.follow(channel)
    return made, seen


async def until(predicate: Callable[[], Any], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def events(n: int, tag: str = "x") -> list[tuple[bytes, bytes]]:
    return [(b"1.0", json.dumps({"n": i, "tag": tag}).encode()) for i in range(n)]


class Resuming:
    """A resuming client as the bus sees it."""

    def __init__(self, since: str) -> None:
        self.notices: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.attached = False
        self.request = Resume(parse_id(since), notice=lambda p: self.notices.append(json.loads(p)),
                              send=lambda ps: self.ids.extend(json.loads(p)["id"] for p in ps),
                              attach=lambda: setattr(self, "attached", True), alive=lambda: True)


async def started(*buses: RedisBus, channel: str) -> None:
    for one in buses:
        await one.start(wait=2)
    await until(lambda: all(one.usable(channel) for one in buses), "the channel usable")


def test_a_burst_larger_than_a_page_and_history_reaches_the_writer(url: str) -> None:
    async def scenario() -> None:
        channel = f"b-{uuid.uuid4().hex[:8]}"
        a, seen = bus(url, Bounds(100, 3600), channel)
        await started(a, channel=channel)
        ids = await a.publish(channel, events(1000))
        await until(lambda: len(seen.ids) == 1000, "the writer's own burst")
        assert seen.ids == ids and seen.gaps == []
        await a.stop()
    asyncio.run(scenario())


def test_an_instance_cut_off_while_history_ages_out_gets_a_gap(url: str) -> None:
    """The channel idles past its age limit, then A writes more than history keeps in one round
    (trimmed before B reads it): B's cursor aged out, and events after it went unread too, so B
    says gap."""
    async def scenario() -> None:
        channel = f"g-{uuid.uuid4().hex[:8]}"
        bounds = Bounds(100, 0.5)
        a, _ = bus(url, bounds, channel)
        b, seen = bus(url, bounds, channel)
        await started(a, b, channel=channel)
        await a.publish(channel, events(1))
        await until(lambda: len(seen.ids) == 1, "B's first event")
        await asyncio.sleep(0.7)                       # older than the age limit now
        ids = await a.publish(channel, events(300))
        await until(lambda: bool(seen.gaps), "a gap notice on B")
        await until(lambda: seen.ids[-1:] == ids[-1:], "B caught up")
        assert seen.ids[1:] == ids[-len(seen.ids) + 1:]
        await a.stop()
        await b.stop()
    asyncio.run(scenario())


def test_a_resume_whose_next_page_was_trimmed_gets_a_gap(url: str) -> None:
    async def scenario() -> None:
        channel = f"r-{uuid.uuid4().hex[:8]}"
        a, _ = bus(url, Bounds(600, 0), channel)
        await started(a, channel=channel)
        first = await a.publish(channel, events(600, "old"))
        client = Resuming(first[0])
        a.resume(channel, client.request)              # joins the round of the next burst
        second = await a.publish(channel, events(600, "new"))
        await until(lambda: client.attached, "the resume attached")
        assert client.ids == sorted(set(client.ids), key=parse_id)
        missing = set(first[1:] + second) - set(client.ids)
        assert bool(missing) == bool(client.notices), (len(missing), client.notices)
        await a.stop()
    asyncio.run(scenario())


def test_resuming_on_an_instance_that_is_behind_gives_no_duplicates(url: str) -> None:
    async def scenario() -> None:
        channel = f"l-{uuid.uuid4().hex[:8]}"
        a, _ = bus(url, Bounds(1000, 3600), channel)
        b, seen = bus(url, Bounds(1000, 3600), channel)
        await started(a, b, channel=channel)
        await a.publish(channel, events(1))
        await until(lambda: len(seen.ids) == 1, "B's first event")
        wakes, b._by_shard = b._by_shard, {}      # B misses wake-ups for a moment: it lags
        ids = await a.publish(channel, events(900))
        b._by_shard = wakes
        client = Resuming(ids[-1])                # a client of A saw everything, then moved to B
        joined_at: list[int] = []
        client.request.attach = lambda: joined_at.append(len(seen.ids))
        b.resume(channel, client.request)
        await until(lambda: bool(joined_at), "the resume attached")
        await until(lambda: seen.ids[-1] == ids[-1], "B caught up")
        live_after_join = seen.ids[joined_at[0]:]      # what the client got live once attached
        assert [i for i in live_after_join if parse_id(i) <= parse_id(ids[-1])] == []
        assert client.ids == [] and client.notices == []
        await a.stop()
        await b.stop()
    asyncio.run(scenario())


def test_entries_written_by_someone_else_are_skipped(url: str) -> None:
    async def scenario() -> None:
        channel = f"f-{uuid.uuid4().hex[:8]}"
        a, _ = bus(url, Bounds(1000, 3600), channel)
        b, seen = bus(url, Bounds(1000, 3600), channel)
        await started(a, b, channel=channel)
        before = await a.publish(channel, events(3))
        await until(lambda: len(seen.ids) == 3, "B's first events")
        other = aioredis.Redis.from_url(url)
        await other.xadd(stream_key(channel), {"foo": "bar"})
        await other.aclose()
        after = await a.publish(channel, events(5))
        await until(lambda: len(seen.ids) == 8, "the events after the foreign entry")
        assert seen.ids == before + after
        client = Resuming(before[-1])
        b.resume(channel, client.request)
        await until(lambda: client.attached, "a resume across the foreign entry")
        assert client.ids == after
        page = await a.history(channel, parse_id(before[0]), 100)
        assert [json.loads(e)["id"] for e in page.events] == before[1:] + after
        await a.stop()
        await b.stop()
    asyncio.run(scenario())


def test_a_resume_replaced_by_a_live_subscribe_never_replays(real_server: EngineServer) -> None:
    """subscribe with since, unsubscribe, subscribe live, all while Redis cannot answer yet: the
    first resume must not come back and replay history over the live subscription."""
    class Recorder:
        raw = False

        def __init__(self) -> None:
            self.ids: list[str] = []

        def writable(self) -> bool:
            return True

        def try_write(self, data: bytes) -> bool:
            return False

        def write_frames(self, data: bytes) -> None:
            raise AssertionError("not a raw sink")

        def send_texts(self, payloads: list[bytes]) -> None:
            self.ids.extend(json.loads(p).get("id", "?") for p in payloads)

        def close(self, code: int, reason: str) -> None:
            pass

    async def scenario() -> None:
        options = HubOptions(channels=("c",))
        service = HubService(options, redis_bus_factory(SETTINGS, real_server.url))
        await service.start()
        await until(lambda: service.bus.usable("c"), "the channel usable")
        earlier = await service.publish_many("c", [{"n": n} for n in range(5)])
        sink = Recorder()
        session = Session("s", sink, batch=False)
        service.hub.add(session)
        state = service.channel("c")
        service.subscribe(session, state, since=earlier[0])   # queued: no round has run yet
        service.hub.unsubscribe(session, "c")
        service.subscribe(session, state)
        later = await service.publish_many("c", [{"m": n} for n in range(3)])
        await asyncio.sleep(0.3)
        assert sink.ids == later
        await service.stop()
    asyncio.run(scenario())


def test_a_cluster_bus_started_while_its_node_is_down_connects_later(cluster: Cluster) -> None:
    async def scenario() -> None:
        channel = "late"
        a, seen = bus(cluster.url, Bounds(1000, 3600), channel, cluster=True)
        cluster.stop_node(0)
        try:
            await a.start(wait=1)
            assert not a.usable(channel)
        finally:
            cluster.start_node(0)
        cluster.wait_ok()
        await until(lambda: a.usable(channel), "the cluster bus connected", timeout=20)
        ids = await a.publish(channel, events(2))
        await until(lambda: seen.ids == ids, "its events")
        await a.stop()
    asyncio.run(scenario())
