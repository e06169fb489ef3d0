#!/usr/bin/env python3
"""Delivered events/s of the hub with 1, 2 and 4 `cascade serve` instances on one Redis, one run.

The script starts its own Redis and, for every instance count (--instances, default 1,2,4),
that many `cascade serve` processes on free ports, all on that Redis:

    python -m cascade_cli serve --port 0 --json --redis-url redis://127.0.0.1:P
        --embedded-redis never --no-venice-proxy --channels C,...

Engines (--engine, comma-separated, default redis):
  redis    a real redis-server on a free port (--save '' --appendonly no), one node
  cluster  a real 3-master Redis Cluster (three redis-servers with --cluster-enabled yes, then
           `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`, waited on until
           every node says cluster_state:ok); the hubs get the first node's URL (--cluster is
           short for --engine cluster)
  memory   cascade's in-memory server (`python -m cascade_cli.resp --port P --save ''`)

Load: --subscribers (default 200) WebSocket subscribers, subscriber g on instance g % k, spread
over --channels channels (default 1: cascade-events); --publishers (default 4) publishers,
publisher q on instance q % k, publishing with WebSocket `publish` ops on /ws (or, with
--publish http, POST /api/channels/{c}/publish with --batch events per request). The clients
are cascade's lean WebSocket client (cascade_cli/bench/ws_client.py, through bench/ws_load.py's
HubClient and connect_many) in --processes load processes (default 2), each holding its share
of subscribers (on every instance) and publishers. Every event's data carries the run, the
phase, the publisher, a sequence number and the send time (monotonic ns; event ids are treated
as opaque), so each subscriber counts its deliveries, duplicates and losses (every subscriber
must get every acknowledged event of its channel: reach) and the latency of each delivery.

Phases, per instance count, after a 0.5 s warm-up:
  max    flow-controlled closed loop: each publisher keeps at most --window events that some
         subscriber in its own load process has not received yet; what the system sustains
         without queues growing. Latency from the actual send. More in flight means bigger
         batches and more delivered/s at a higher latency: compare instance counts at the same
         --window (default 16). An event lost in this phase holds its window slot for good.
  rate   open loop at --rate events/s in total (default 500: 100,000 deliveries/s to 200
         subscribers, which 1 to 4 instances carry on 2 cores with CPU to spare); latency from
         each event's intended send time (coordinated omission corrected).
Each phase publishes for --seconds (default 3) and then waits (bounded) for every delivery.

Printed per engine, phase and instance count: delivered events/s (deliveries to subscribers
per second, from the first send to the last arrival, at least --seconds), the scaling ratio
delivered/s(k) / delivered/s(1), published events/s, latency p50/p99, lost, duplicates, reach,
hub CPU per delivery; then where the CPU went, in % of one core (the machine's total is 100% x
cores): each hub instance (utime+stime from /proc/PID/stat before/after the phase), Redis (all
its nodes), each load process, other processes, idle, and the kernel's interrupt time (mostly
loopback TCP; a kernel with tick-based CPU accounting and no CONFIG_IRQ_TIME_ACCOUNTING, such as
the 2-core test machine's, also charges it to the process it interrupted, so it is part of the
other columns there, not on top). The closing lines say what limited delivered/s: on one
machine every instance shares the same cores with Redis and the load generator, so a busy
machine leaves nothing for another instance to use.

Other processes on the machine disturb every figure: before each instance count the script
waits (bounded, --wait-quiet) for a quiet machine, and a phase during which other processes
used more than 25% of a core is measured again (--retries; the least disturbed attempt is
shown, with a note when it was still disturbed). --rounds N measures every instance count N
times (the order reversed every other round) and shows medians.

Targets (--check exits 3 when one is missed): every subscriber got every event exactly once in
every phase (lost 0, duplicates 0), every publish was acknowledged (none refused, none left
unanswered for 5 s); with --min-scaling R, delivered/s in `max` at the largest
instance count >= R x that of 1 instance. Exit 1 when something could not run.

A default run (3 instance counts, one engine) takes about 30 s on a quiet machine, up to about
2 minutes when other processes make it measure again; --engine redis,cluster,memory three times
that.

    python benchmarks/hub_scaling.py                         # redis, 1,2,4 instances
    python benchmarks/hub_scaling.py --cluster               # 3-master Redis Cluster
    python benchmarks/hub_scaling.py --engine memory --instances 1,2
    python benchmarks/hub_scaling.py --channels 3 --publish http --batch 50 --json
    python benchmarks/hub_scaling.py --rate 500 --phases rate --check
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
FIRST_CHANNEL = "cascade-events"
WARMUP_SECONDS = 0.5
START_DELAY = 0.1          # seconds between telling the load processes to go and the start
ACK_WAIT = 5.0             # seconds a load process waits for its last publishes to be answered
HUB_START_TIMEOUT = 30.0
DISTURBED_PCT = 25.0       # other processes' CPU (% of a core) above which a phase is measured again


# ---------------------------------------------------------------- /proc


def proc_cpu(pid: int) -> float:
    """CPU seconds of `pid` (all its threads, and its reaped children); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(")") + 2:].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def machine_cpu() -> tuple[float, float, float]:
    """CPU seconds of all cores since boot: (in tasks, in interrupts, idle) from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + steal) / CLK_TCK, (irq + softirq) / CLK_TCK, (idle + iowait) / CLK_TCK


@functools.cache
def irq_in_tasks() -> bool:
    """Whether this kernel charges interrupt time to the task it interrupted as well as to the
    machine's irq/softirq counters (tick-based accounting without CONFIG_IRQ_TIME_ACCOUNTING),
    so that /proc/PID/stat figures include the interrupts that hit them. False when unknown."""
    import gzip

    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            text = Path(f"/boot/config-{os.uname().release}").read_text()
        except OSError:
            return False
    return "CONFIG_IRQ_TIME_ACCOUNTING=y" not in text


def used_cpu(machine: tuple[float, float, float]) -> float:
    """CPU seconds the tasks used, as /proc/PID/stat figures count them (see irq_in_tasks)."""
    return machine[0] + machine[1] if irq_in_tasks() else machine[0]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_quiet(seconds: float, ours: list[int], threshold_pct: float = 20.0) -> float:
    """Wait (at most `seconds`) until processes other than `ours` and this one keep less than
    `threshold_pct` of a core busy over half a second; returns the last reading."""
    deadline = time.monotonic() + seconds
    while True:
        busy0, mine0, wall0 = used_cpu(machine_cpu()), sum(map(proc_cpu, ours)) + own_cpu(), time.monotonic()
        time.sleep(0.5)
        mine = sum(map(proc_cpu, ours)) + own_cpu() - mine0
        load = 100 * (used_cpu(machine_cpu()) - busy0 - mine) / (time.monotonic() - wall0)
        if load < threshold_pct or time.monotonic() >= deadline:
            return load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# ---------------------------------------------------------------- the load processes


class HttpPublisher:
    """A publisher that POSTs batches to /api/channels/{c}/publish on its instance."""

    def __init__(self, gid: int, http_url: str) -> None:
        from cascade_cli.connect import async_http_client

        self.gid = gid
        self.client = async_http_client(http_url, timeout=30, connect_timeout=10)
        self.alive = True
        self.seq = 0
        self.done = 0
        self.wake = asyncio.Event()


class Phase:
    """One publish phase in one load process (its fleet's `current`): sends, acks, arrivals."""

    def __init__(self, load: Load, k: int, mode: str, window: int) -> None:
        from cascade_cli.bench.histogram import Histogram

        self.load = load
        self.k = k
        self.mode = mode
        self.window = window
        self.run_id = load.run_id
        self.tag = load.run_id.encode()
        self.channels = len(load.channels)
        self.batch = load.batch if load.http else 1
        self.cache: dict[bytes, tuple[tuple[int, int, int, int], ...]] = {}
        self.cache_bytes = 0
        self.latency = Histogram()
        self.send_lag = Histogram()
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.lag_dropped = 0
        self.disconnects = 0
        self.last_arrival = 0
        self.first_send = 0
        self.last_send = 0
        self.sent = 0
        self.acked = [0] * self.channels
        self.refused = 0
        self.expected = math.inf
        self.sending = False
        self.deadline = 0
        self.answers = 0
        self.tasks: set[asyncio.Task[None]] = set()
        # flow control (max): arrivals of each local publisher's events at local subscribers
        self.arrivals: dict[int, list[int]] = {}
        loop = asyncio.get_running_loop()
        self.all_received: asyncio.Future[None] = loop.create_future()
        npub = load.total_publishers
        for sub in load.subscribers:
            sub.seen = [bytearray() for _ in range(npub)]
            sub.last = [-1] * npub
            sub.got = 0
        for pub in load.publishers:
            pub.seq = 0
            pub.done = 0
            self.arrivals[pub.gid] = []
            if not load.http:
                pub.inflight.clear()
                pub.prefixes = [(b'{"op":"publish","channel":' + json.dumps(c).encode() + b',"data":{"b":"'
                                 + self.tag + b'","k":%d,"p":%d,"s":' % (k, pub.gid)) for c in load.channels]

    def channel_of(self, p: int, s: int) -> int:
        return (p + s // self.batch) % self.channels

    # ------------------------------------------------------------ sending

    async def publish(self, start_ns: int, rate: float, seconds: float) -> None:
        from cascade_cli.bench.runner import sleep_until

        pubs = self.load.publishers
        self.deadline = start_ns + int(seconds * 1e9)
        await sleep_until(start_ns)
        self.first_send = time.monotonic_ns()
        self.sending = True
        if not pubs:
            await asyncio.sleep(max(0.0, (self.deadline - time.monotonic_ns()) / 1e9))
        elif self.mode == "max":
            if self.load.http:
                await asyncio.gather(*(self.http_closed_loop(p) for p in pubs))
            else:
                for pub in pubs:
                    self.pump(pub)
                await asyncio.sleep(max(0.0, (self.deadline - time.monotonic_ns()) / 1e9))
        else:
            await self.open_loop(start_ns, rate * len(pubs) / self.load.total_publishers)
        self.sending = False
        await self.settle_acks()

    def pump(self, pub: Any) -> None:
        """Max mode, WebSocket: send while this publisher's window has room and time is left."""
        if not self.sending or not pub.alive:
            return
        now = time.monotonic_ns()
        if now >= self.deadline:
            return
        while pub.seq - pub.done < self.window:
            self.send_ws(pub, now, now)

    def send_ws(self, pub: Any, intended: int, now: int) -> None:
        s = pub.seq
        pub.seq = s + 1
        channel = (pub.gid + s) % self.channels
        pub.inflight.append(channel)
        pub.send_text(pub.prefixes[channel] + b'%d,"t":%d,"a":%d}}' % (s, intended, now))
        self.sent += 1
        self.last_send = now

    def http_body(self, pub: HttpPublisher, count: int, intended: int, now: int) -> tuple[int, bytes]:
        s0 = pub.seq
        pub.seq = s0 + count
        head = b'{"data":{"b":"%s","k":%d,"p":%d,"s":' % (self.tag, self.k, pub.gid)
        events = b",".join(head + b'%d,"t":%d,"a":%d}}' % (s, intended, now) for s in range(s0, s0 + count))
        self.sent += count
        self.last_send = now
        return self.channel_of(pub.gid, s0), b'{"events":[' + events + b"]}"

    async def http_post(self, pub: HttpPublisher, channel: int, body: bytes, count: int) -> None:
        from urllib.parse import quote

        name = quote(self.load.channels[channel], safe="")
        try:
            answer = await pub.client.post(f"/api/channels/{name}/publish", content=body,
                                           headers={"Content-Type": "application/json"})
            ok = answer.status_code == 200
            ids = len(answer.json().get("ids", [])) if ok else 0
        except Exception:  # noqa: BLE001 - a failed publish is counted, the run goes on
            ok, ids = False, 0
        self.answers += 1
        if ok:
            self.acked[channel] += ids
            self.refused += count - ids
        else:
            self.refused += count
        if not ok or self.load.need[channel] == 0:
            for _ in range(count):
                self.complete(pub)

    async def http_closed_loop(self, pub: HttpPublisher) -> None:
        batch = self.batch
        while self.sending and time.monotonic_ns() < self.deadline:
            if pub.seq - pub.done + batch > max(self.window, batch):
                pub.wake.clear()
                try:
                    await asyncio.wait_for(pub.wake.wait(), max(0.001, (self.deadline - time.monotonic_ns()) / 1e9))
                except TimeoutError:
                    pass
                continue
            now = time.monotonic_ns()
            channel, body = self.http_body(pub, batch, now, now)
            await self.http_post(pub, channel, body, batch)

    async def open_loop(self, start_ns: int, rate: float) -> None:
        """Send this process's part of the rate on a fixed schedule, round-robin over its
        publishers; a send that is late keeps its intended time. No spinning: the sleeps may
        be a millisecond late, which the send lag shows."""
        if rate <= 0:
            return
        pubs = self.load.publishers
        batch = self.batch
        interval = 1e9 * batch / rate
        offset = int((self.load.index / max(1, self.load.processes)) * interval)
        i = 0
        while True:
            due = start_ns + offset + int(i * interval)
            if due >= self.deadline or not self.sending:
                return
            now = time.monotonic_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                continue
            live = [p for p in pubs if p.alive]
            if not live:
                return
            pub = live[i % len(live)]
            i += 1
            self.send_lag.record(now - due)
            if self.load.http:
                channel, body = self.http_body(pub, batch, due, now)
                task = asyncio.ensure_future(self.http_post(pub, channel, body, batch))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            else:
                self.send_ws(pub, due, now)

    async def settle_acks(self) -> None:
        """Wait (bounded) until every publish has its answer."""
        deadline = time.monotonic() + ACK_WAIT
        while time.monotonic() < deadline:
            if self.load.http:
                if not self.tasks:
                    return
            elif not any(p.inflight for p in self.load.publishers if p.alive):
                return
            await asyncio.sleep(0.005)
        for task in list(self.tasks):
            task.cancel()

    # ------------------------------------------------------------ arrivals

    def complete(self, pub: Any) -> None:
        pub.done += 1
        if self.mode == "max" and self.sending:
            if self.load.http:
                pub.wake.set()
            else:
                self.pump(pub)

    def on_message(self, client: Any, payload: bytes, now: int) -> None:
        if client.channel < 0:
            self.on_ack(client, payload)
        else:
            self.on_delivery(client, payload, now)

    def on_ack(self, pub: Any, payload: bytes) -> None:
        if not pub.inflight:
            return
        if payload.startswith(b'{"type":"published"'):
            channel = pub.inflight.popleft()
            self.acked[channel] += 1
            self.answers += 1
            if self.load.need[channel] == 0:
                self.complete(pub)
        elif payload.startswith(b'{"type":"error"'):
            pub.inflight.popleft()
            self.refused += 1
            self.answers += 1
            self.complete(pub)

    def on_delivery(self, sub: Any, payload: bytes, now: int) -> None:
        from cascade_cli.bench.ws_load import CACHE_BYTES, CACHE_MAX, decode_events

        cache = self.cache
        events = cache.get(payload)
        if events is None:
            events = decode_events(payload, self.run_id, self.k) if self.tag in payload else ()
            if not events and payload.startswith(b'{"type":"lag"'):
                self.lag_dropped += int(json.loads(payload).get("dropped", 0))
                return
            if len(cache) >= CACHE_MAX or self.cache_bytes > CACHE_BYTES:
                cache.clear()
                self.cache_bytes = 0
            cache[payload] = events
            self.cache_bytes += len(payload)
        if not events:
            return
        seen, last = sub.seen, sub.last
        record = self.latency.record
        arrivals = self.arrivals
        need = self.load.need
        new = 0
        for p, s, t, _a in events:
            if p >= len(seen) or s < 0:
                continue
            bits = seen[p]
            byte = s >> 3
            if byte >= len(bits):
                bits.extend(bytes(byte - len(bits) + 256))
            flag = 1 << (s & 7)
            if bits[byte] & flag:
                self.duplicates += 1
                continue
            bits[byte] |= flag
            if s < last[p]:
                self.out_of_order += 1
            else:
                last[p] = s
            new += 1
            record(now - t)
            counts = arrivals.get(p)
            if counts is not None:  # a publisher of this process: flow control
                if s >= len(counts):
                    counts.extend([0] * (s - len(counts) + 1024))
                counts[s] += 1
                if counts[s] == need[self.channel_of(p, s)]:
                    self.complete(self.load.by_gid[p])
        if new:
            sub.got += new
            self.received += new
            self.answers += new
            self.last_arrival = now
            if self.received >= self.expected and not self.all_received.done():
                self.all_received.set_result(None)

    def on_lost(self, client: Any, code: int, reason: str) -> None:
        self.disconnects += 1
        if client.channel < 0:
            self.refused += len(client.inflight)
            client.inflight.clear()

    # ------------------------------------------------------------ the end

    async def expect(self, totals: list[int], stall: float, cap: float) -> dict[str, Any]:
        """Wait until every local subscriber has every acknowledged event of its channel, while
        deliveries keep coming (`stall` s without one ends it; `cap` s at most)."""
        subs = self.load.subscribers
        self.expected = sum(totals[s.channel] for s in subs)
        end = time.monotonic() + cap
        while self.received < self.expected and time.monotonic() < end:
            before = self.answers
            try:
                await asyncio.wait_for(asyncio.shield(self.all_received),
                                       min(stall, max(0.01, end - time.monotonic())))
            except TimeoutError:
                if self.answers == before:
                    break
        short = [s for s in subs if s.got < totals[s.channel]]
        reach = [s.got / totals[s.channel] for s in subs if totals[s.channel]]
        return {
            "subscribers": len(subs), "publishers": len(self.load.publishers),
            "sent": self.sent, "acked": sum(self.acked), "refused": self.refused,
            "expected": int(self.expected), "received": self.received,
            "lost": sum(max(0, totals[s.channel] - s.got) for s in subs),
            "short_subscribers": len(short), "min_reach": min(reach) if reach else None,
            "duplicates": self.duplicates, "out_of_order": self.out_of_order,
            "lag_dropped": self.lag_dropped, "disconnects": self.disconnects,
            "first_send": self.first_send, "last_send": self.last_send, "last_arrival": self.last_arrival,
            "latency": self.latency.to_dict(), "send_lag": self.send_lag.to_dict(),
        }


class Load:
    """What one load process holds between the parent's commands."""

    def __init__(self) -> None:
        from cascade_cli.bench.ws_load import Fleet

        self.fleet = Fleet()
        self.index = 0
        self.processes = 1
        self.run_id = ""
        self.channels: list[str] = []
        self.total_publishers = 0
        self.http = False
        self.batch = 1
        self.subscribers: list[Any] = []
        self.publishers: list[Any] = []
        self.by_gid: dict[int, Any] = {}
        self.need: list[int] = []
        self.phase: Phase | None = None

    async def connect(self, index: int, processes: int, run_id: str, channels: list[str], total_publishers: int,
                      subs: list[tuple[int, str, int]], pubs: list[tuple[int, str]], http: bool,
                      batch: int) -> dict[str, Any]:
        """Open this process's subscribers ((gid, ws url of the channel, channel index)) and
        publishers ((gid, instance ws or http base)); returns counts and failures."""
        from cascade_cli.bench.histogram import Histogram
        from cascade_cli.bench.ws_client import split_url
        from cascade_cli.bench.ws_load import HubClient, auth_headers, connect_many

        await self.close()
        self.index, self.processes, self.run_id = index, processes, run_id
        self.channels, self.total_publishers, self.http, self.batch = channels, total_publishers, http, batch
        headers = auth_headers(None)
        fleet = self.fleet

        def factory(url: str, gid: int, channel: int) -> Any:
            endpoint = split_url(url)
            return (lambda: HubClient(endpoint, fleet, gid, channel, headers=headers, compression=False),
                    endpoint, url)

        specs = [factory(url, gid, channel) for gid, url, channel in subs]
        if not http:
            specs += [factory(url, gid, -1) for gid, url in pubs]
        started = time.monotonic()
        clients, failures = await connect_many(specs, hub=True, rate=None, hist=Histogram())
        self.subscribers = [c for c in clients if c.channel >= 0]
        if http:
            self.publishers = [HttpPublisher(gid, url) for gid, url in pubs]
        else:
            self.publishers = [c for c in clients if c.channel < 0]
        fleet.subscribers, fleet.publishers = self.subscribers, [p for p in self.publishers if not http]
        self.by_gid = {p.gid: p for p in self.publishers}
        self.need = [sum(1 for s in self.subscribers if s.channel == c) for c in range(len(channels))]
        return {"subscribers": len(self.subscribers), "publishers": len(self.publishers),
                "failures": [str(f.message) for f in failures[:3]], "failed": len(failures),
                "seconds": time.monotonic() - started}

    async def publish(self, k: int, mode: str, start_ns: int, rate: float, seconds: float,
                      window: int) -> dict[str, Any]:
        """Run one phase's sending; returns once every publish is answered (bounded)."""
        self.phase = Phase(self, k, mode, window)
        self.fleet.current = self.phase
        await self.phase.publish(start_ns, rate, seconds)
        return {"acked": self.phase.acked, "sent": self.phase.sent}

    async def expect(self, totals: list[int], stall: float, cap: float) -> dict[str, Any]:
        assert self.phase is not None
        try:
            return await self.phase.expect(totals, stall, cap)
        finally:
            self.fleet.current = None
            self.phase = None

    async def close(self) -> int:
        self.fleet.current = None
        ws = [c for c in self.fleet.all() if c.transport is not None]
        for client in ws:
            client.close()
        if ws:
            await asyncio.wait([asyncio.ensure_future(asyncio.shield(c.closed)) for c in ws], timeout=2.5)
        for pub in self.publishers:
            if isinstance(pub, HttpPublisher):
                await pub.client.aclose()
        closed = len(ws)
        self.fleet.subscribers, self.fleet.publishers = [], []
        self.subscribers, self.publishers, self.by_gid = [], [], {}
        return closed

    async def exit(self) -> str:
        await self.close()
        return "bye"


async def serve_parent(conn: Any) -> None:
    loop = asyncio.get_running_loop()
    load = Load()
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        try:
            reply: tuple[str, Any] = ("ok", await getattr(load, command)(*args))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
            reply = ("error", f"{command}: {type(exc).__name__}: {exc}")
        conn.send(reply)
        if command == "exit":
            return


def worker_main(conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    raise_nofile()
    try:
        import uvloop

        uvloop.run(serve_parent(conn))
    except ImportError:
        asyncio.run(serve_parent(conn))


class Worker:
    """The parent's end of one load process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def send(self, *message: Any) -> None:
        self.conn.send(message)

    def reply(self, deadline: float) -> Any:
        while not self.conn.poll(0.1):
            if not self.process.is_alive():
                raise RuntimeError(f"load process {self.pid} exited with {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"load process {self.pid} did not answer in time")
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"load process {self.pid}: {value}")
        return value

    def stop(self) -> None:
        try:
            self.conn.send(("exit",))
            if self.conn.poll(5):
                self.conn.recv()
        except (OSError, EOFError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def ask_all(workers: list[Worker], messages: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    for worker, message in zip(workers, messages):
        worker.send(*message)
    deadline = time.monotonic() + timeout
    return [worker.reply(deadline) for worker in workers]


# ---------------------------------------------------------------- Redis and the hubs


def clean_env(scratch: Path) -> dict[str, str]:
    """No CASCADE_* settings or user config: the hubs and servers run on defaults and flags."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CASCADE_", "VENICE_")) and not k.lower().endswith("_proxy")}
    (scratch / "config").mkdir(exist_ok=True)
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(scratch / "config"), XDG_STATE_HOME=str(scratch / "state"))
    return env


def stop_process(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM (to its process group when `group`), then SIGKILL after 5 s."""
    if proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(5)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


def redis_ping(port: int) -> str:
    done = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False,
                          timeout=5)
    return done.stdout.strip()


class Engine:
    """The Redis the hubs share: its URL, its server processes, how to stop them."""

    def __init__(self, name: str, url: str, procs: list[subprocess.Popen[bytes]], description: str) -> None:
        self.name, self.url, self.procs, self.description = name, url, procs, description

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


def redis_server_argv(port: int, directory: Path, *extra: str) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("error: redis-server not found; hint: install Redis 7 or use --engine memory")
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--logfile", str(directory / "redis.log"), *extra]


def wait_redis(ports: list[int], procs: list[subprocess.Popen[bytes]], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    for port, proc in zip(ports, procs):
        while redis_ping(port) != "PONG":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Redis server on port {port} did not start")
            time.sleep(0.05)


def redis_version() -> str:
    done = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    version = next((w.split("=", 1)[1] for w in words if w.startswith("v=")), "?")
    return f"redis-server {version}"


def start_redis(scratch: Path, env: dict[str, str]) -> Engine:
    directory = scratch / "redis"
    directory.mkdir()
    port = free_port()
    proc = subprocess.Popen(redis_server_argv(port, directory), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_redis([port], [proc])
    except BaseException:
        stop_process(proc)
        raise
    return Engine("redis", f"redis://127.0.0.1:{port}", [proc], f"{redis_version()}, one node on port {port}")


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
    ports: list[int] = []
    for _ in range(200):
        port = free_port()
        if port + 10000 < 65536 and port not in ports and port_free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for a Redis Cluster (port and port+10000)")


def start_cluster(scratch: Path, env: dict[str, str]) -> Engine:
    ports = cluster_ports(3)
    procs = []
    try:
        for port in ports:
            directory = scratch / f"cluster-{port}"
            directory.mkdir()
            procs.append(subprocess.Popen(
                redis_server_argv(port, directory, "--cluster-enabled", "yes", "--cluster-config-file",
                                  str(directory / "nodes.conf"), "--cluster-node-timeout", "2000"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env))
        wait_redis(ports, procs)
        done = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                               "--cluster-replicas", "0", "--cluster-yes"],
                              capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {(done.stdout + done.stderr)[-400:]}")
        deadline = time.monotonic() + 30
        while True:
            states = [subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"], capture_output=True,
                                     text=True, check=False, timeout=5).stdout for p in ports]
            if all("cluster_state:ok" in s for s in states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok within 30 s")
            time.sleep(0.1)
    except BaseException:
        for proc in procs:
            stop_process(proc)
        raise
    return Engine("cluster", f"redis://127.0.0.1:{ports[0]}", procs,
                  f"{redis_version()}, Redis Cluster of 3 masters on ports {','.join(map(str, ports))}")


def start_memory(scratch: Path, env: dict[str, str]) -> Engine:
    from cascade_cli import __version__

    directory = scratch / "memory"
    directory.mkdir()
    port = free_port()
    with open(directory / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cascade_cli.resp", "--port", str(port), "--save", "",
                                 "--dir", str(directory)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=directory)
    try:
        wait_redis([port], [proc])
    except BaseException:
        stop_process(proc)
        raise
    return Engine("memory", f"redis://127.0.0.1:{port}", [proc],
                  f"cascade {__version__} in-memory server (python -m cascade_cli.resp) on port {port}")


class Hub:
    """One `cascade serve` process."""

    def __init__(self, index: int, engine: Engine, channels: list[str], scratch: Path, env: dict[str, str],
                 extra: list[str]) -> None:
        self.index = index
        self.out_path = scratch / f"hub-{index}-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        self.argv = [sys.executable, "-m", "cascade_cli", "serve", "--host", "127.0.0.1", "--port", "0", "--json",
                     "--redis-url", engine.url, "--embedded-redis", "never", "--no-venice-proxy",
                     "--channels", ",".join(channels), *extra]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                         cwd=scratch, start_new_session=True)
        self.http_url = self.ws_url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def wait_ready(self, deadline: float) -> None:
        while not self.http_url:
            text = self.out_path.read_text(errors="replace")
            if "\n" in text:
                info = json.loads(text.split("\n", 1)[0])
                self.http_url, self.ws_url = info["http_url"], info["ws_url"]
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"cascade serve exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cascade serve printed no URL in time: {self.tail()}")
            time.sleep(0.05)
        while True:
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=2) as answer:
                    health = json.loads(answer.read())
                    if answer.status == 200 and health.get("redis", {}).get("state", "ok") == "ok":
                        return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"cascade serve exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cascade serve at {self.http_url} not healthy with Redis in time: "
                                   f"{self.tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc, group=True)


# ---------------------------------------------------------------- one instance count


def channel_names(count: int) -> list[str]:
    return [FIRST_CHANNEL] + [f"scaling-{i}" for i in range(1, count)]


def plan(k: int, processes: int, subscribers: int, publishers: int, channels: int, hubs: list[Hub],
         names: list[str], http: bool) -> tuple[list[list[tuple[int, str, int]]], list[list[tuple[int, str]]]]:
    """Who goes where: subscriber g on instance g % k, in process (g // k) % P (so each process
    has subscribers on every instance), on channel (g // (k P)) % C; publisher q on instance
    q % k, in process q % P."""
    from cascade_cli.bench.ws_load import hub_urls

    urls = [hub_urls(h.http_url) for h in hubs]
    subs: list[list[tuple[int, str, int]]] = [[] for _ in range(processes)]
    pubs: list[list[tuple[int, str]]] = [[] for _ in range(processes)]
    for g in range(subscribers):
        channel = (g // (k * processes)) % channels
        subs[(g // k) % processes].append((g, urls[g % k].channel(names[channel]), channel))
    for q in range(publishers):
        target = urls[q % k]
        pubs[q % processes].append((q, target.http if http else target.ops))
    return subs, pubs


def snapshot(hubs: list[Hub], engine: Engine, workers: list[Worker]) -> dict[str, Any]:
    return {"wall": time.monotonic(), "hubs": [proc_cpu(h.pid) for h in hubs],
            "redis": sum(proc_cpu(p) for p in engine.pids), "load": [proc_cpu(w.pid) for w in workers],
            "parent": own_cpu(), "machine": machine_cpu()}


def cpu_breakdown(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """% of one core over the window, per part; `other` is what no part of the run used."""
    wall = max(after["wall"] - before["wall"], 1e-9)

    def pct(a: float, b: float) -> float:
        return round(100 * (b - a) / wall, 1)

    hubs = [pct(a, b) for a, b in zip(before["hubs"], after["hubs"])]
    load = [pct(a, b) for a, b in zip(before["load"], after["load"])]
    redis = pct(before["redis"], after["redis"])
    parent = pct(before["parent"], after["parent"])
    busy = pct(used_cpu(before["machine"]), used_cpu(after["machine"]))
    irq = pct(before["machine"][1], after["machine"][1])
    idle = pct(before["machine"][2], after["machine"][2])
    return {"seconds": round(wall, 3), "hubs_pct": hubs, "hubs_total_pct": round(sum(hubs), 1),
            "redis_pct": redis, "load_pct": load, "load_total_pct": round(sum(load) + parent, 1),
            "interrupts_pct": irq, "interrupts_inside_processes": irq_in_tasks(),
            "other_pct": round(max(0.0, busy - sum(hubs) - redis - sum(load) - parent), 1),
            "idle_pct": idle, "capacity_pct": 100 * (os.cpu_count() or 1)}


def run_phase(name: str, k_index: int, mode: str, workers: list[Worker], hubs: list[Hub], engine: Engine,
              channels: int, rate: float, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    """Publish for `seconds`, wait for every delivery, gather the load processes' counts."""
    from cascade_cli.bench.histogram import Histogram

    start_ns = time.monotonic_ns() + int(START_DELAY * 1e9)
    ask = ("publish", k_index, mode, start_ns, rate, seconds, args.window)
    for worker in workers:
        worker.send(*ask)
    time.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
    before = snapshot(hubs, engine, workers)
    deadline = time.monotonic() + seconds + ACK_WAIT + 30
    sent = [w.reply(deadline) for w in workers]
    totals = [sum(s["acked"][c] for s in sent) for c in range(channels)]
    cap = args.drain_cap
    stats = ask_all(workers, [("expect", totals, args.drain, cap)] * len(workers), cap + 30)
    after = snapshot(hubs, engine, workers)
    latency, send_lag = Histogram(), Histogram()
    for s in stats:
        latency.merge(Histogram.from_dict(s["latency"]))
        send_lag.merge(Histogram.from_dict(s["send_lag"]))
    received = sum(s["received"] for s in stats)
    expected = sum(s["expected"] for s in stats)
    acked = sum(totals)
    last_arrival = max(s["last_arrival"] for s in stats)
    # per second of publishing, or up to the last arrival when that came later
    span = max(seconds, (last_arrival - start_ns) / 1e9)
    reaches = [s["min_reach"] for s in stats if s["min_reach"] is not None]
    cpu = cpu_breakdown(before, after)
    result = {
        "phase": name, "mode": mode, "offered_per_s": rate if mode == "rate" else None,
        "seconds": seconds, "sent": sum(s["sent"] for s in stats), "published": acked,
        "refused": sum(s["refused"] for s in stats),
        "unanswered": max(0, sum(s["sent"] - s["acked"] - s["refused"] for s in stats)),
        "published_per_s": round(acked / seconds, 1),
        "expected": expected, "delivered": received,
        "delivered_per_s": round(received / span, 1),
        "reach": round(received / expected, 6) if expected else None,
        "min_subscriber_reach": min(reaches) if reaches else None,
        "lost": sum(s["lost"] for s in stats), "short_subscribers": sum(s["short_subscribers"] for s in stats),
        "duplicates": sum(s["duplicates"] for s in stats), "out_of_order": sum(s["out_of_order"] for s in stats),
        "lag_dropped": sum(s["lag_dropped"] for s in stats), "disconnects": sum(s["disconnects"] for s in stats),
        "p50_ms": round(latency.value_at(50) / 1e6, 3) if latency.count else None,
        "p99_ms": round(latency.value_at(99) / 1e6, 3) if latency.count else None,
        "max_ms": round(latency.max / 1e6, 3) if latency.count else None,
        "send_lag_p99_ms": round(send_lag.value_at(99) / 1e6, 3) if send_lag.count else None,
        "cpu": cpu,
    }
    hub_cpu_s = cpu["hubs_total_pct"] / 100 * cpu["seconds"]
    result["hub_cpu_us_per_delivery"] = round(hub_cpu_s * 1e6 / received, 2) if received else None
    redis_cpu_s = cpu["redis_pct"] / 100 * cpu["seconds"]
    result["redis_cpu_us_per_publish"] = round(redis_cpu_s * 1e6 / acked, 1) if acked else None
    return result


def run_instances(k: int, engine: Engine, workers: list[Worker], args: argparse.Namespace, scratch: Path,
                  env: dict[str, str]) -> dict[str, Any]:
    """Start `k` hubs on `engine`, connect the load, run the phases, stop the hubs."""
    names = channel_names(args.channels)
    hubs: list[Hub] = []
    result: dict[str, Any] = {"instances": k, "phases": {}}
    started = time.monotonic()
    try:
        if args.wait_quiet > 0:
            load = wait_quiet(args.wait_quiet, engine.pids + [w.pid for w in workers])
            result["others_before_pct"] = round(load, 1)
            if load >= 20:
                print(f"warning: other processes keep {load:.0f}% of a core busy", file=sys.stderr)
        hubs = [Hub(i, engine, names, scratch, env, args.hub_arg) for i in range(k)]
        deadline = time.monotonic() + HUB_START_TIMEOUT
        for hub in hubs:
            hub.wait_ready(deadline)
        result["hub_start_s"] = round(time.monotonic() - started, 2)
        run_id = os.urandom(4).hex()
        subs, pubs = plan(k, len(workers), args.subscribers, args.publishers, args.channels, hubs, names,
                          args.publish == "http")
        connected = ask_all(workers, [("connect", i, len(workers), run_id, names, args.publishers, subs[i], pubs[i],
                                       args.publish == "http", args.batch) for i in range(len(workers))], 120)
        failed = sum(c["failed"] for c in connected)
        if failed:
            errors = [e for c in connected for e in c["failures"]]
            raise RuntimeError(f"{failed} of {args.subscribers + args.publishers} connections failed: {errors[:2]}")
        result["connect_s"] = round(max(c["seconds"] for c in connected), 2)
        run_phase("warmup", 0, "max", workers, hubs, engine, args.channels, 0, WARMUP_SECONDS, args)
        ours = engine.pids + [w.pid for w in workers] + [h.pid for h in hubs]
        index = 0
        for name in args.phases:
            rate = args.rate if name == "rate" else 0.0
            best: dict[str, Any] | None = None
            for attempt in range(1, args.retries + 2):
                index += 1
                print(f"  {engine.name}, {k} instance(s): {name} phase"
                      + (f", {rate:,.0f} events/s" if rate else "") + (f", attempt {attempt}" if attempt > 1 else ""),
                      file=sys.stderr)
                measured = run_phase(name, index, name, workers, hubs, engine, args.channels, rate, args.seconds,
                                     args)
                measured["attempts"] = attempt
                if best is None or measured["cpu"]["other_pct"] < best["cpu"]["other_pct"]:
                    best = measured
                other = measured["cpu"]["other_pct"]
                if other < DISTURBED_PCT or attempt > args.retries:
                    break
                print(f"  other processes used {other:.0f}% of a core meanwhile: measuring again", file=sys.stderr)
                if args.wait_quiet > 0:
                    wait_quiet(min(args.wait_quiet, 3.0), ours)
            assert best is not None
            result["phases"][name] = best
    except Exception as exc:  # noqa: BLE001 - one failed instance count is reported, the others go on
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"error: {engine.name} with {k} instance(s): {result['error']}", file=sys.stderr)
    finally:
        try:
            ask_all(workers, [("close",)] * len(workers), 30)
        except RuntimeError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        for hub in hubs:
            hub.stop()
        result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def run_engine(name: str, workers: list[Worker], args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    directory = scratch / name
    directory.mkdir()
    env = clean_env(directory)
    print(f"{name}: starting", file=sys.stderr)
    engine = {"redis": start_redis, "cluster": start_cluster, "memory": start_memory}[name](directory, env)
    report: dict[str, Any] = {"engine": name, "server": engine.description, "scenarios": [], "rounds": []}
    try:
        for round_index in range(args.rounds):
            order = args.instances if round_index % 2 == 0 else args.instances[::-1]
            for k in order:
                if args.rounds > 1:
                    print(f"round {round_index + 1}/{args.rounds}", file=sys.stderr)
                scenario = run_instances(k, engine, workers, args, directory, env)
                scenario["round"] = round_index + 1
                report["rounds"].append(scenario)
    finally:
        engine.stop()
    for k in args.instances:
        report["scenarios"].append(median_of([s for s in report["rounds"] if s["instances"] == k]))
    if args.rounds == 1:
        del report["rounds"]
    base = next((s for s in report["scenarios"] if s["instances"] == 1 and "error" not in s), None)
    for scenario in report["scenarios"]:
        for phase, result in scenario.get("phases", {}).items():
            one = base and base["phases"].get(phase, {}).get("delivered_per_s")
            mine = result.get("delivered_per_s")
            result["scaling"] = round(mine / one, 3) if one and mine is not None else None
    return report


WORST_MAX = {"lost", "short_subscribers", "duplicates", "out_of_order", "lag_dropped", "disconnects", "refused",
             "unanswered", "attempts"}
WORST_MIN = {"reach", "min_subscriber_reach"}


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One instance count's rounds as one: the median of every figure (element by element in
    lists), but the worst of the counts of failures (lost, duplicates, ...) and of reach."""
    import statistics

    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        return {"instances": rounds[0]["instances"], "error": errors[0], "rounds": len(rounds)}

    def merge(key: str, values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge(k, [v[k] for v in values]) for k in first}
        if isinstance(first, list):
            return [merge(key, list(column)) for column in zip(*values)]
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return first
        present = [v for v in values if v is not None]
        if not present:
            return None
        if key in WORST_MAX:
            return max(present)
        if key in WORST_MIN:
            return min(present)
        if all(v == present[0] for v in present):
            return present[0]
        return round(statistics.median(present), 3)

    merged = merge("", [{k: v for k, v in r.items() if k != "round"} for r in rounds])
    merged["rounds"] = len(rounds)
    return merged


# ---------------------------------------------------------------- report


def targets(report: dict[str, Any], min_scaling: float | None) -> list[dict[str, Any]]:
    out = []
    for engine in report["engines"]:
        for scenario in engine["scenarios"]:
            where = f"{engine['engine']}, {scenario['instances']} instance(s)"
            if "error" in scenario:
                continue
            for phase, r in scenario["phases"].items():
                ok = r["lost"] == 0 and r["duplicates"] == 0 and r["expected"] > 0
                out.append({"target": f"every subscriber got every event once ({where}, {phase})",
                            "value": f"lost {r['lost']}, dup {r['duplicates']}", "ok": ok})
                ok = r["refused"] == 0 and r["unanswered"] == 0
                out.append({"target": f"every publish acknowledged ({where}, {phase})",
                            "value": f"refused {r['refused']}, unanswered {r['unanswered']}", "ok": ok})
        if min_scaling is not None:
            ok_runs = [s for s in engine["scenarios"] if "error" not in s and "max" in s["phases"]]
            if ok_runs:
                top = max(ok_runs, key=lambda s: s["instances"])
                value = top["phases"]["max"].get("scaling")
                out.append({"target": f"max delivered/s at {top['instances']} instances >= {min_scaling:g}x "
                                      f"1 instance ({engine['engine']})",
                            "value": "-" if value is None else f"{value:.2f}x",
                            "ok": None if value is None else value >= min_scaling})
    return out


def fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def limits(engine: dict[str, Any]) -> list[str]:
    """What limited delivered/s, from the max phase's CPU breakdown."""
    lines = []
    runs = [s for s in engine["scenarios"] if "error" not in s and "max" in s["phases"]]
    if not runs:
        return lines
    capacity = runs[0]["phases"]["max"]["cpu"]["capacity_pct"]
    for s in runs:
        r = s["phases"]["max"]
        c = r["cpu"]
        busy = capacity - c["idle_pct"]
        hottest = max(c["hubs_pct"])
        parts = (f"hubs {c['hubs_total_pct']:.0f}% (busiest {hottest:.0f}%), Redis {c['redis_pct']:.0f}%, "
                 f"load {c['load_total_pct']:.0f}% (busiest {max(c['load_pct']):.0f}%), "
                 f"other {c['other_pct']:.0f}%; interrupts {c['interrupts_pct']:.0f}%"
                 + (" (inside those figures)" if c["interrupts_inside_processes"] else ""))
        found = []
        if c["idle_pct"] < 0.1 * capacity:
            found.append(f"the cores were saturated (idle {c['idle_pct']:.0f}%)")
        if hottest >= 90:
            found.append(f"a hub process ran at {hottest:.0f}% of its core")
        if max(c["load_pct"]) >= 90:
            found.append(f"a load process ran at {max(c['load_pct']):.0f}% of its core")
        if c["redis_pct"] >= 90:
            found.append(f"Redis ran at {c['redis_pct']:.0f}% of its core")
        verdict = ("; ".join(found) if found else
                   "no part saturated: the flow-control window, not the CPU, set the pace (raise --window)")
        lines.append(f"{s['instances']} instance(s): {busy:.0f}% of {capacity}% busy: {parts}; {verdict}; "
                     f"hub CPU {fmt(r['hub_cpu_us_per_delivery'], '{:.1f}')} us per delivery, Redis CPU "
                     f"{fmt(r['redis_cpu_us_per_publish'], '{:.1f}')} us per published event")
    one = next((s for s in runs if s["instances"] == 1), None)
    if one and len(runs) > 1:
        base = one["phases"]["max"]["hub_cpu_us_per_delivery"]
        top = max(runs, key=lambda s: s["instances"])
        grown = top["phases"]["max"]["hub_cpu_us_per_delivery"]
        if base and grown:
            lines.append(f"hub CPU per delivery at {top['instances']} instances is {grown / base:.2f}x that of one: "
                         "each instance reads every event from Redis and encodes it for its own clients, so "
                         "the per-event work is repeated per instance while the deliveries are only split")
        base = one["phases"]["max"]["redis_cpu_us_per_publish"]
        grown = top["phases"]["max"]["redis_cpu_us_per_publish"]
        if base and grown:
            lines.append(f"Redis CPU per published event at {top['instances']} instances is {grown / base:.2f}x "
                         "that of one: every instance reads every event from Redis")
    return lines


def print_table(report: dict[str, Any]) -> None:
    cfg = report["config"]
    print(f"hub scaling: cascade {cfg['version']} ({cfg['source']}), {cfg['subscribers']} subscribers on {cfg['channels']} "
          f"channel(s), {cfg['publishers']} publishers ({cfg['publish']})")
    print(f"processes: 1..{max(cfg['instances'])} hub instances + Redis (1 process, 3 for the cluster) + "
          f"{cfg['processes']} load processes (+ this script, which only coordinates), all on the machine's "
          f"{cfg['cores']} cores")
    if cfg["rounds"] > 1:
        print(f"figures: the median of {cfg['rounds']} rounds (lost, duplicates: the worst round)")
    print(f"phases: {cfg['seconds']:g} s each after a {WARMUP_SECONDS:g} s warm-up; max = each publisher keeps <= "
          f"{cfg['window']} events undelivered (to its own load process's subscribers), latency from the send; "
          "rate = open loop at a fixed rate, latency from the intended send time")
    for engine in report["engines"]:
        print(f"\n== {engine['engine']}: {engine['server']}")
        for scenario in engine["scenarios"]:
            if "error" in scenario:
                print(f"  {scenario['instances']} instance(s): error: {scenario['error']}")
        for phase in ("max", "rate"):
            rows = [(s["instances"], s["phases"][phase]) for s in engine["scenarios"]
                    if "error" not in s and phase in s["phases"]]
            if not rows:
                continue
            offered = rows[0][1]["offered_per_s"]
            title = "max (flow-controlled)" if phase == "max" else f"rate ({offered:,.0f} events/s offered)"
            print(f"\n  {title}")
            print(f"  {'inst':>4} {'delivered/s':>12} {'scaling':>8} {'publ/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'lost':>6} {'dup':>5} {'reach':>7} {'hub us/dlv':>10}")
            for k, r in rows:
                print(f"  {k:>4} {fmt(r['delivered_per_s'], '{:,.0f}'):>12} {fmt(r['scaling'], '{:.2f}x'):>8} "
                      f"{fmt(r['published_per_s'], '{:,.0f}'):>8} {fmt(r['p50_ms'], '{:.2f}'):>8} "
                      f"{fmt(r['p99_ms'], '{:.2f}'):>8} {r['lost']:>6} {r['duplicates']:>5} "
                      f"{fmt(r['reach'], '{:.4f}'):>7} {fmt(r['hub_cpu_us_per_delivery'], '{:.1f}'):>10}")
            capacity = rows[0][1]["cpu"]["capacity_pct"]
            print(f"  CPU, % of one core ({capacity}% = all {capacity // 100} cores):")
            print(f"  {'inst':>4} {'hubs':>6} {'each hub':<24} {'redis':>6} {'load':>6} {'each load':<12} "
                  f"{'other':>6} {'idle':>6} {'irq':>5}")
            for k, r in rows:
                c = r["cpu"]
                each = "/".join(f"{v:.0f}" for v in c["hubs_pct"])
                loads = "/".join(f"{v:.0f}" for v in c["load_pct"])
                print(f"  {k:>4} {c['hubs_total_pct']:>6.0f} {each:<24} {c['redis_pct']:>6.0f} "
                      f"{c['load_total_pct']:>6.0f} {loads:<12} {c['other_pct']:>6.0f} {c['idle_pct']:>6.0f} "
                      f"{c['interrupts_pct']:>5.0f}")
            if rows[0][1]["cpu"]["interrupts_inside_processes"]:
                print("  irq: interrupt time (mostly loopback TCP), which this kernel's tick accounting also "
                      "charges to the process it interrupted: part of the columns before it, not on top")
            else:
                print("  irq: interrupt time (mostly loopback TCP), charged to no process")
            busy = [(k, r["cpu"]["other_pct"]) for k, r in rows if r["cpu"]["other_pct"] >= DISTURBED_PCT]
            for k, other in busy:
                print(f"  note: {k} instance(s): other processes on the machine used {other:.0f}% of a core "
                      "meanwhile; these figures are disturbed")
            notes = [(k, r) for k, r in rows
                     if r["lag_dropped"] or r["disconnects"] or r["refused"] or r["unanswered"]]
            for k, r in notes:
                print(f"  note: {k} instance(s): {r['lag_dropped']} events dropped for slow subscribers (lag), "
                      f"{r['disconnects']} connections closed, {r['refused']} publishes refused, "
                      f"{r['unanswered']} unanswered after {ACK_WAIT:g} s (delivered ones count beyond reach 1)")
        lines = limits(engine)
        if lines:
            print("\n  what limited delivered/s (max phase):")
            for line in lines:
                print(f"  - {line}")
    if report["targets"]:
        print("\ntargets")
        for t in report["targets"]:
            mark = {True: "PASS", False: "FAIL", None: "n/a "}[t["ok"]]
            print(f"  {mark}  {t['target']}: {t['value']}")
    print(f"\nwall time {report['wall_s']:.0f} s")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--instances", default="1,2,4", help="hub instance counts (default 1,2,4)")
    parser.add_argument("--engine", default="redis",
                        help="comma-separated: redis, cluster, memory (default redis)")
    parser.add_argument("--cluster", action="store_true", help="short for --engine cluster")
    parser.add_argument("--subscribers", type=int, default=200, help="WebSocket subscribers in all (default 200)")
    parser.add_argument("--channels", type=int, default=1, help="channels the subscribers spread over (default 1)")
    parser.add_argument("--publishers", type=int, default=4, help="publishers in all (default 4)")
    parser.add_argument("--publish", choices=("ws", "http"), default="ws",
                        help="publish with WebSocket ops (default) or HTTP POST batches")
    parser.add_argument("--batch", type=int, default=50, help="events per HTTP publish request (default 50)")
    parser.add_argument("--phases", default="max,rate", help="phases to run: max, rate (default both)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="events/s in all in the rate phase (default 500)")
    parser.add_argument("--window", type=int, default=16,
                        help="max phase: events per publisher not yet delivered everywhere in its process "
                             "(default 16)")
    parser.add_argument("--seconds", type=float, default=3.0, help="publishing time per phase (default 3)")
    parser.add_argument("--drain", type=float, default=3.0,
                        help="after publishing, stop waiting for deliveries after this many seconds without one "
                             "(default 3)")
    parser.add_argument("--drain-cap", type=float, default=15.0, help="and after this many seconds in all (default 15)")
    parser.add_argument("--processes", type=int, default=2, help="load processes (default 2)")
    parser.add_argument("--wait-quiet", type=float, default=5.0, metavar="SECONDS",
                        help="before each instance count, wait up to this long for other processes to use "
                             "under 20%% of a core (default 5; 0: don't wait)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every instance count this many times, the order reversed every other "
                             "round; the tables show medians (the worst for losses), --json also each round "
                             "(default 1)")
    parser.add_argument("--retries", type=int, default=1,
                        help="measure a phase again, this many times at most, when other processes used more "
                             f"than {DISTURBED_PCT:.0f}%% of a core meanwhile; the least disturbed attempt is "
                             "reported (default 1)")
    parser.add_argument("--hub-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for every `cascade serve` (repeatable)")
    parser.add_argument("--min-scaling", type=float,
                        help="target: max-phase delivered/s at the largest instance count >= this x 1 instance")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    args = parser.parse_args(argv)
    try:
        args.instances = [int(x) for x in args.instances.split(",") if x.strip()]
    except ValueError:
        parser.error("--instances takes comma-separated numbers, e.g. 1,2,4")
    args.engines = ["cluster"] if args.cluster else [e.strip() for e in args.engine.split(",") if e.strip()]
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if any(e not in ("redis", "cluster", "memory") for e in args.engines) or not args.engines:
        parser.error("--engine takes redis, cluster and/or memory")
    if any(p not in ("max", "rate") for p in args.phases) or not args.phases:
        parser.error("--phases takes max and/or rate")
    caps = {"instances": (args.instances, 1, 16), "subscribers": ([args.subscribers], 1, 20_000),
            "channels": ([args.channels], 1, 100), "publishers": ([args.publishers], 1, 256),
            "batch": ([args.batch], 1, 1000), "window": ([args.window], 1, 10_000),
            "seconds": ([args.seconds], 0.1, 120), "processes": ([args.processes], 1, 32),
            "rounds": ([args.rounds], 1, 20),
            "rate": ([args.rate], 0.1, 1_000_000)}
    for name, (values, low, high) in caps.items():
        if not values or any(not low <= v <= high for v in values):
            parser.error(f"--{name} must be within {low}..{high}")
    return args


def source_state() -> str:
    """The git commit of the cascade_cli that runs, and whether its files differ from it."""
    import cascade_cli

    root = Path(cascade_cli.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "cascade_cli"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{root} (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes in cascade_cli/" if dirty else "")


def main() -> int:
    args = parse_args()
    raise_nofile()
    from cascade_cli import __version__

    started = time.monotonic()
    workers = [Worker() for _ in range(args.processes)]
    engines = []
    try:
        with tempfile.TemporaryDirectory(prefix="hub_scaling-") as tmp:
            for name in args.engines:
                try:
                    engines.append(run_engine(name, workers, args, Path(tmp)))
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    print(f"error: {name}: {exc}", file=sys.stderr)
                    engines.append({"engine": name, "server": "-", "error": str(exc), "scenarios": []})
    finally:
        for worker in workers:
            worker.stop()
    report: dict[str, Any] = {
        "config": {"version": __version__, "source": source_state(), "instances": args.instances, "engines": args.engines,
                   "subscribers": args.subscribers, "channels": args.channels, "publishers": args.publishers,
                   "publish": "WebSocket ops" if args.publish == "ws" else f"HTTP POST, {args.batch} per request",
                   "phases": args.phases, "rate": args.rate, "window": args.window, "seconds": args.seconds,
                   "processes": args.processes, "rounds": args.rounds, "cores": os.cpu_count()},
        "engines": engines,
    }
    report["targets"] = targets(report, args.min_scaling)
    report["wall_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    failed = any("error" in e for e in engines) or any("error" in s for e in engines for s in e["scenarios"])
    if failed:
        return 1
    if args.check and any(t["ok"] is False for t in report["targets"]):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
