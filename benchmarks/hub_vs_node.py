#!/usr/bin/env python3
"""The hub (`cascade serve`) against a minimal Node.js `ws` broadcast server, same client load, one run.

For each client count (default 500 and 2000) and each server, a fresh server process starts on a
free loopback port and the same Python load runs against it (--rounds times, the servers' order
alternating; the table shows medians, --json also every round):

  idle      N subscribers connect to /ws/cascade-events (spread over --workers processes); the
            server's RSS after they settle minus its RSS before, per connection
  warm-up   a few events, not measured
  burst     one publisher sends --burst events as fast as it can (op "publish" over /ws); measured
            until every subscriber has every event or --timeout
  rate      --rate events/s for --seconds seconds; latency = receive time - data.t (the time the
            publisher sent it), per event per client

Printed per server and scenario: server CPU microseconds per delivered event (the on-CPU time of
the server's process tree from /proc, before/after the phase), delivered events/s, latency
p50/p99, for the fixed rate also the time to the first subscriber and the fan-out span (first to
last receipt of one event), reach (delivered/expected), idle RSS per connection, the ratio
hub/Node, and the issue-4 targets with pass/fail marks. Two rows say how far to trust a run: the
busiest client process's CPU (near 100%: the load generator set the pace) and the CPU that other
processes on the machine used meanwhile (--wait-quiet waits, bounded, for a quiet machine before
each run). Targets:

  server CPU per delivery <= 1.0x Node's at 2000 clients under burst
  p99 latency at a fixed rate <= Node's
  idle memory <= 16 KB per connection

The Node server (benchmarks/node_ws/server.js) gets its `ws` package from the npm registry, pinned
in benchmarks/node_ws/package.json, installed once into $XDG_CACHE_HOME/cascade-bench/node_ws
(never into the repository). The hub runs as `python -m cascade_cli serve --port P --bus local`
(`--bus` only when `cascade serve --help` offers it); --hub-cmd replaces that command.

    python benchmarks/hub_vs_node.py --quick                 # smoke run: 50 and 200 clients
    python benchmarks/hub_vs_node.py                         # 500 and 2000 clients
    python benchmarks/hub_vs_node.py --servers node --json
    python benchmarks/hub_vs_node.py --hub-cmd "cascade serve --bus redis" --check   # exit 3 on a miss
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node_ws"
CHANNEL = "cascade-events"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = 1  # VmRSS is in kB already
TARGET_IDLE_KB = 16.0


# ---------------------------------------------------------------- /proc: CPU and RSS of a tree


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode()
    return raw[raw.rfind(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """CPU seconds of `root` and its descendants, two ways: (ticks, nanoseconds).

    Ticks: utime+stime (+ reaped children) from /proc/PID/stat, 1/CLK_TCK resolution, counting
    threads that have exited. Nanoseconds: the on-CPU time of every live thread from
    /proc/PID/task/TID/schedstat, exact but blind to threads that exited.
    """
    ticks = 0
    nanos = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    nanos += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / CLK_TCK, nanos / 1e9


def cpu_delta(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The exact delta, unless the tick count saw more (a thread's time lost when it exited)."""
    coarse, fine = after[0] - before[0], after[1] - before[1]
    return coarse if coarse - fine > 2 / CLK_TCK else fine


def tree_rss_kb(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total * PAGE_KB


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds all CPUs spent since boot (/proc/stat) (in tasks, in interrupts), whoever used them.

    Interrupt time is mostly softirq: loopback TCP delivery, which the kernel charges to no
    process, so the servers' own figures leave it out (for both alike).
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + steal) / CLK_TCK, (irq + softirq) / CLK_TCK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- the subscriber side (workers)


class Tally:
    """What one worker process counts during a phase: events whose seq is in [lo, hi)."""

    def __init__(self) -> None:
        self.lo = self.hi = 0
        self.record = False
        self.count = 0
        self.stale = 0
        self.lag_dropped = 0
        self.last = 0.0
        self.latencies = array("d")
        self.spans: dict[int, list[float]] = {}  # seq -> [sent, first receipt, last receipt]
        self.closed = 0

    def reset(self, lo: int, hi: int, record: bool) -> None:
        self.lo, self.hi, self.record = lo, hi, record
        self.count = self.stale = self.lag_dropped = 0
        self.last = 0.0
        self.latencies = array("d")
        self.spans = {}

    def on_text(self, payload: bytes | str, now: float) -> str | None:
        """Count the events of one text frame; returns the frame's type."""
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "event":
            self.event(message, now)
        elif kind == "batch":
            for event in message["events"]:
                self.event(event, now)
        elif kind == "lag":
            self.lag_dropped += int(message.get("dropped", 0))
        return kind

    def event(self, event: dict[str, Any], now: float) -> None:
        data = event["data"]
        if self.lo <= data["seq"] < self.hi:
            self.count += 1
            self.last = now
            if self.record:
                self.latencies.append((now - data["t"]) * 1000.0)
                span = self.spans.get(data["seq"])
                if span is None:
                    self.spans[data["seq"]] = [data["t"], now, now]
                else:
                    span[2] = now
        else:
            self.stale += 1


class RawSubscriber(asyncio.Protocol):
    """A minimal RFC 6455 client: handshake, unmasked server frames in, masked pong/close out."""

    def __init__(self, tally: Tally, host: str, path: str, ready: asyncio.Future[None]) -> None:
        self.tally, self.host, self.path, self.ready = tally, host, path, ready
        self.key = base64.b64encode(os.urandom(16))
        self.buf = b""
        self.open = False
        self.fragments: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(  # type: ignore[attr-defined]
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: hub_vs_node\r\n\r\n"
            % (self.path.encode(), self.host.encode(), self.key))

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before connected: {exc}"))

    def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buf:
            data = self.buf + data
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head, data = data[:end], data[end + 4:]
            accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
            if b" 101 " not in head.split(b"\r\n", 1)[0] or accept not in head:
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.open = True
        pos, size = 0, len(data)
        while size - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, header = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, header = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
            if size - pos < header + length:
                break
            payload = data[pos + header:pos + header + length]
            pos += header + length
            opcode = first & 0x0F
            if opcode == 1 and first & 0x80:
                self.text(payload, now)
            elif opcode in (0, 1):
                self.fragments.append(payload)
                if first & 0x80:
                    self.text(b"".join(self.fragments), now)
                    self.fragments.clear()
            elif opcode == 9:
                self.send_frame(0xA, payload)
            elif opcode == 8:
                self.send_frame(0x8, payload[:2])
                assert self.transport is not None
                self.transport.close()
                return
        self.buf = data[pos:] if pos < size else b""

    def text(self, payload: bytes, now: float) -> None:
        if self.tally.on_text(payload, now) == "connected" and not self.ready.done():
            self.ready.set_result(None)


class Worker:
    """One client process: holds its subscribers, answers the parent's commands over a pipe."""

    def __init__(self, conn: Any, impl: str) -> None:
        self.conn, self.impl = conn, impl
        self.tally = Tally()
        self.transports: list[asyncio.BaseTransport] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.phase_cpu = self.phase_wall = 0.0

    async def connect_raw(self, host: str, port: int, path: str) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: RawSubscriber(self.tally, f"{host}:{port}", path, ready), host, port)
        self.transports.append(transport)
        await ready

    async def connect_websockets(self, host: str, port: int, path: str) -> None:
        from websockets.asyncio.client import connect

        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                async with connect(f"ws://{host}:{port}{path}", compression=None, ping_interval=None,
                                   max_queue=None, open_timeout=30, user_agent_header="hub_vs_node") as ws:
                    async for message in ws:
                        now = time.time()
                        if self.tally.on_text(message, now) == "connected" and not ready.done():
                            ready.set_result(None)
            except Exception as exc:  # noqa: BLE001 - a benchmark client reports, never raises
                if not ready.done():
                    ready.set_exception(exc)
            finally:
                self.tally.closed += 1

        self.tasks.append(asyncio.create_task(run()))
        await ready

    async def connect(self, host: str, port: int, path: str, count: int, parallel: int,
                      timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        gate = asyncio.Semaphore(parallel)
        one = self.connect_raw if self.impl == "raw" else self.connect_websockets
        errors: list[str] = []

        async def guarded() -> None:
            async with gate:
                try:
                    await asyncio.wait_for(one(host, port, path), timeout)
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.wait_for(asyncio.gather(*(guarded() for _ in range(count))), timeout + 5)
        return {"ok": count - len(errors), "errors": errors[:3], "seconds": time.monotonic() - started}

    async def wait(self, expected: int, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while self.tally.count < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        cpu = own_cpu_seconds() - self.phase_cpu
        wall = time.monotonic() - self.phase_wall
        t = self.tally
        return {"count": t.count, "stale": t.stale, "lag_dropped": t.lag_dropped, "last": t.last,
                "closed": t.closed, "cpu": cpu, "wall": wall, "latencies": t.latencies.tobytes(),
                "spans": t.spans}

    async def close(self) -> int:
        for transport in self.transports:
            transport.abort()  # type: ignore[attr-defined]
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        closed = len(self.transports) + len(self.tasks)
        self.transports, self.tasks = [], []
        await asyncio.sleep(0.05)
        self.tally = Tally()
        return closed

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        fd = self.conn.fileno()

        def readable() -> None:
            os.set_blocking(fd, True)  # uvloop's add_reader makes the fd non-blocking
            inbox.put_nowait(self.conn.recv())

        loop.add_reader(fd, readable)
        while True:
            command, *args = await inbox.get()
            if command == "connect":
                reply: Any = await self.connect(*args)
            elif command == "phase":
                self.tally.reset(*args)
                self.phase_cpu, self.phase_wall = own_cpu_seconds(), time.monotonic()
                reply = "ok"
            elif command == "wait":
                reply = await self.wait(*args)
            elif command == "close":
                reply = await self.close()
            else:
                await self.close()
                reply = "bye"
            os.set_blocking(fd, True)
            self.conn.send(reply)
            if reply == "bye":
                return


def worker_main(conn: Any, impl: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Worker(conn, impl).serve())


class WorkerHandle:
    """The parent's end of one worker's pipe, awaitable."""

    def __init__(self, impl: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, impl), daemon=True)
        self.process.start()
        child.close()

    async def request(self, *message: Any, timeout: float = 120) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        fd = self.conn.fileno()

        def readable() -> None:
            loop.remove_reader(fd)
            os.set_blocking(fd, True)  # uvloop's add_reader makes the fd non-blocking
            try:
                future.set_result(self.conn.recv())
            except Exception as exc:  # noqa: BLE001
                future.set_exception(exc)

        os.set_blocking(fd, True)
        self.conn.send(message)
        loop.add_reader(fd, readable)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            loop.remove_reader(fd)

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


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cascade-bench" / "node_ws"


def install_ws() -> tuple[Path, str]:
    """node_modules holding the pinned `ws` (installed from the npm registry when missing)."""
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["ws"]
    target = cache_dir()
    installed = target / "node_modules" / "ws" / "package.json"
    if not (installed.exists() and json.loads(installed.read_text())["version"] == wanted):
        npm = shutil.which("npm")
        if not npm or not shutil.which("node"):
            sys.exit("error: node and npm are needed for the Node peer; hint: install Node.js 18+ "
                     "or run with --servers hub")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE_DIR / "package.json", target / "package.json")
        print(f"installing ws@{wanted} into {target}", file=sys.stderr)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--no-package-lock"],
                              check=False, cwd=target, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not installed.exists():
            sys.exit(f"error: npm install ws@{wanted} failed: {done.stderr.strip()[-400:]}")
    return target / "node_modules", json.loads(installed.read_text())["version"]


def hub_help() -> str:
    done = subprocess.run([sys.executable, "-m", "cascade_cli", "serve", "--help"], capture_output=True,
                          check=False, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})
    return done.stdout if done.returncode == 0 else ""


class Server:
    """How to start one of the two servers on a given port."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], version: str) -> None:
        self.name, self.argv, self.env, self.version = name, argv, env, version

    def command(self, port: int, clients: int) -> list[str]:
        argv = [a.replace("{port}", str(port)).replace("{max_connections}", str(2 * clients + 100))
                for a in self.argv]
        if not any("{port}" in a for a in self.argv):
            argv += ["--port", str(port)]
        return argv


def node_server() -> Server:
    modules, version = install_ws()
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    env = {**os.environ, "NODE_PATH": str(modules), "NODE_ENV": "production"}
    return Server("node", ["node", str(NODE_DIR / "server.js"), "--host", "127.0.0.1"], env,
                  f"node {node_version}, ws {version}")


def hub_server(hub_cmd: str | None, scratch: Path) -> Server | None:
    from cascade_cli import __version__

    # Defaults only: no CASCADE_* variables, no user config file (the server runs in a temp dir).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    (scratch / "config").mkdir(exist_ok=True)
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(scratch / "config"))
    if hub_cmd:
        return Server("hub", shlex.split(hub_cmd), env, f"cascade {__version__} ({hub_cmd})")
    text = hub_help()
    if not text or "not built yet" in text:
        print("warning: `cascade serve` is not built yet; measuring the Node server only", file=sys.stderr)
        return None
    argv = [sys.executable, "-m", "cascade_cli", "serve", "--host", "127.0.0.1"]
    if "--bus" in text:
        argv += ["--bus", "local"]
    elif "--redis-url" in text:
        # Nothing answers on a fresh free port, so the hub embeds its in-memory Redis in-process.
        argv += ["--redis-url", f"redis://127.0.0.1:{free_port()}/0"]
    if "--max-connections" in text:
        argv += ["--max-connections", "{max_connections}"]
    if "--connect-rate" in text:
        argv += ["--connect-rate", "0"]
    return Server("hub", argv, env, f"cascade {__version__}")


class Running:
    """A started server process (own session, so it and its children stop together)."""

    def __init__(self, server: Server, clients: int, log_dir: Path) -> None:
        self.port = free_port()
        self.argv = server.command(self.port, clients)
        self.log = open(log_dir / f"{server.name}-{clients}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, env=server.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=log_dir, start_new_session=True)

    def tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-800:]

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{shlex.join(self.argv)} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{shlex.join(self.argv)}: no 200 from /health within {seconds:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self.log.close()


# ---------------------------------------------------------------- one measured run


class Publisher:
    """One client on /ws that publishes; the server's `published` answers are drained."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seq = 0
        self.ws: Any = None
        self.drain: asyncio.Task[None] | None = None
        self.answers = 0

    async def __aenter__(self) -> Self:
        from websockets.asyncio.client import connect

        self.ws = await asyncio.wait_for(connect(f"ws://127.0.0.1:{self.port}/ws", compression=None,
                                                 ping_interval=None, max_queue=None), 20)
        await asyncio.wait_for(self.ws.recv(), 10)  # connected

        async def drain() -> None:
            async for _ in self.ws:
                self.answers += 1

        self.drain = asyncio.create_task(drain())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.drain:
            self.drain.cancel()
        await asyncio.wait_for(self.ws.close(), 5)

    async def send(self) -> None:
        self.seq += 1
        await self.ws.send(json.dumps({"op": "publish", "channel": CHANNEL,
                                       "data": {"seq": self.seq, "t": time.time()}}))

    async def burst(self, count: int) -> None:
        for _ in range(count):
            await self.send()

    async def rate(self, per_second: float, count: int) -> float:
        """`count` events at `per_second`, each stamped when actually sent; returns the achieved rate."""
        start = time.monotonic()
        for i in range(count):
            delay = start + i / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send()
        took = time.monotonic() - start
        return count / took if took > 0 else float("inf")


async def settle_rss(pid: int, seconds: float) -> int:
    """RSS once two readings 0.5 s apart agree within 1% (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    last = tree_rss_kb(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = tree_rss_kb(pid)
        if abs(now - last) <= max(64, last * 0.01):
            return now
        last = now
    return last


def fanout(replies: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per event: send -> first subscriber's receipt, and first -> last receipt (the fan-out span)."""
    from cascade_cli.bench.stats import percentile

    spans: dict[int, list[float]] = {}
    for reply in replies:
        for seq, (sent, first, last) in reply["spans"].items():
            known = spans.get(seq)
            if known is None:
                spans[seq] = [sent, first, last]
            else:
                known[1], known[2] = min(known[1], first), max(known[2], last)
    firsts = [(first - sent) * 1000 for sent, first, _ in spans.values()]
    widths = [(last - first) * 1000 for _, first, last in spans.values()]
    if not spans:
        return {"first_p50_ms": None, "span_p50_ms": None, "span_p99_ms": None}
    return {"first_p50_ms": percentile(firsts, 50), "span_p50_ms": percentile(widths, 50),
            "span_p99_ms": percentile(widths, 99)}


async def phase(workers: list[WorkerHandle], shares: list[int], server_pid: int, publisher: Publisher,
                events: int, send: Any, timeout: float) -> dict[str, Any]:
    """Publish `events` through `send` and wait until every subscriber has all of them."""
    lo = publisher.seq + 1
    hi = lo + events
    await asyncio.gather(*(w.request("phase", lo, hi, True) for w in workers))
    parent_cpu = own_cpu_seconds()
    busy0 = machine_busy_seconds()
    wall0 = time.monotonic()
    cpu0 = tree_cpu_seconds(server_pid)
    started = time.time()
    waits = [asyncio.create_task(w.request("wait", share * events, timeout, timeout=timeout + 60))
             for w, share in zip(workers, shares)]
    sent_rate = await asyncio.wait_for(send(), timeout)
    replies = await asyncio.gather(*waits)
    cpu1 = tree_cpu_seconds(server_pid)
    busy1 = machine_busy_seconds()
    busy, interrupts = busy1[0] - busy0[0], busy1[1] - busy0[1]
    wall = time.monotonic() - wall0
    publisher_cpu = own_cpu_seconds() - parent_cpu
    delivered = sum(r["count"] for r in replies)
    expected = sum(shares) * events
    last = max((r["last"] for r in replies if r["count"]), default=started)
    span = max(last - started, 1e-9)
    latencies = array("d")
    for r in replies:
        latencies.frombytes(r["latencies"])
    from cascade_cli.bench.stats import percentile

    server_cpu = cpu_delta(cpu0, cpu1)
    return {
        "events": events, "expected": expected, "delivered": delivered, "reach": delivered / expected,
        "seconds": span, "delivered_per_s": delivered / span,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_delivery": server_cpu * 1e6 / delivered if delivered else None,
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        **fanout(replies),
        "client_cpu_max_pct": max(100 * r["cpu"] / r["wall"] for r in replies),
        "client_cpu_s": sum(r["cpu"] for r in replies),
        "publisher_cpu_s": publisher_cpu,
        # CPU that neither the server nor our clients used during the phase, in % of one core:
        # other processes on the machine competing with the measurement.
        "other_cpu_pct": max(0.0, 100 * (busy - server_cpu - publisher_cpu - sum(r["cpu"] for r in replies))
                             / wall),
        "softirq_cpu_pct": 100 * interrupts / wall,
        "sent_per_s": sent_rate,
        "stale": sum(r["stale"] for r in replies), "lag_dropped": sum(r["lag_dropped"] for r in replies),
        "closed_clients": max(r["closed"] for r in replies),
    }


async def wait_quiet(seconds: float, threshold_pct: float = 20.0) -> float:
    """Wait (at most `seconds`) until the machine, without us, is busy below `threshold_pct` of a
    core over one second; returns the last reading."""
    deadline = time.monotonic() + seconds
    while True:
        busy0, mine0, wall0 = machine_busy_seconds()[0], own_cpu_seconds(), time.monotonic()
        await asyncio.sleep(1.0)
        load = 100 * (machine_busy_seconds()[0] - busy0 - (own_cpu_seconds() - mine0)) / (time.monotonic() - wall0)
        if load < threshold_pct or time.monotonic() >= deadline:
            return load


async def measure(server: Server, clients: int, workers: list[WorkerHandle], args: argparse.Namespace,
                  log_dir: Path) -> dict[str, Any]:
    running = Running(server, clients, log_dir)
    result: dict[str, Any] = {"server": server.name, "clients": clients, "command": shlex.join(running.argv)}
    try:
        running.wait_ready(30)
        pid = running.proc.pid
        rss0 = await settle_rss(pid, 5)
        path = f"/ws/{CHANNEL}" + ("?batch=0" if args.no_batch else "")
        shares = [clients // len(workers) + (i < clients % len(workers)) for i in range(len(workers))]
        connected = await asyncio.gather(*(
            w.request("connect", "127.0.0.1", running.port, path, share, 64, args.timeout,
                      timeout=args.timeout + 30)
            for w, share in zip(workers, shares)))
        ok = sum(c["ok"] for c in connected)
        result["connect_seconds"] = max(c["seconds"] for c in connected)
        if ok < clients:
            errors = [e for c in connected for e in c["errors"]]
            raise RuntimeError(f"only {ok}/{clients} clients connected: {errors[:3]}")
        rss1 = await settle_rss(pid, 10)
        result["idle_rss_kb_before"] = rss0
        result["idle_rss_kb_after"] = rss1
        result["idle_kb_per_connection"] = (rss1 - rss0) / clients
        async with Publisher(running.port) as publisher:
            await phase(workers, shares, pid, publisher, args.warmup, lambda: publisher.burst(args.warmup),
                        args.timeout)
            burst = args.burst or min(800, max(200, 400_000 // clients))
            result["burst"] = await phase(workers, shares, pid, publisher, burst,
                                          lambda: publisher.burst(burst), args.timeout)
            count = max(1, round(args.rate * args.seconds))
            result["rate"] = await phase(workers, shares, pid, publisher, count,
                                         lambda: publisher.rate(args.rate, count), args.seconds + args.timeout)
            result["rate"]["target_per_s"] = args.rate
    except Exception as exc:  # noqa: BLE001 - one failed run is reported, the others go on
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"error: {server.name} at {clients} clients: {result['error']}", file=sys.stderr)
    finally:
        await asyncio.gather(*(w.request("close", timeout=60) for w in workers), return_exceptions=True)
        running.stop()
    return result


# ---------------------------------------------------------------- report


def ratio(hub: float | None, node: float | None) -> float | None:
    if hub is None or node is None or node == 0:
        return None
    return hub / node


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["server"], r["clients"]): r for r in results if "error" not in r}
    counts = sorted({r["clients"] for r in results})
    out = []
    cpu_at = 2000 if 2000 in counts else (counts[-1] if counts else None)
    for clients in counts:
        hub, node = by.get(("hub", clients)), by.get(("node", clients))
        if clients == cpu_at:
            value = ratio(hub and hub["burst"]["server_cpu_us_per_delivery"],
                          node and node["burst"]["server_cpu_us_per_delivery"])
            out.append({"target": f"burst server CPU/delivery <= 1.0x Node at {clients} clients",
                        "clients": clients, "value": value, "bound": 1.0,
                        "ok": None if value is None else value <= 1.0})
        value = ratio(hub and hub["rate"]["p99_ms"], node and node["rate"]["p99_ms"])
        out.append({"target": f"fixed-rate p99 <= Node's at {clients} clients", "clients": clients,
                    "value": value, "bound": 1.0, "ok": None if value is None else value <= 1.0})
        value = hub["idle_kb_per_connection"] if hub else None
        out.append({"target": f"idle memory <= {TARGET_IDLE_KB:.0f} KB/connection at {clients} clients",
                    "clients": clients, "value": value, "bound": TARGET_IDLE_KB,
                    "ok": None if value is None else value <= TARGET_IDLE_KB})
    return out


ROWS = [  # (label, scenario, key, format)
    ("server CPU us/delivery", "burst", "server_cpu_us_per_delivery", "{:.2f}"),
    ("delivered events/s", "burst", "delivered_per_s", "{:,.0f}"),
    ("latency p50 ms", "burst", "p50_ms", "{:.1f}"),
    ("latency p99 ms", "burst", "p99_ms", "{:.1f}"),
    ("reach", "burst", "reach", "{:.4f}"),
    ("busiest client CPU %", "burst", "client_cpu_max_pct", "{:.0f}"),
    ("other processes CPU %", "burst", "other_cpu_pct", "{:.0f}"),
    ("interrupts CPU % (all)", "burst", "softirq_cpu_pct", "{:.0f}"),
    ("server CPU us/delivery", "rate", "server_cpu_us_per_delivery", "{:.2f}"),
    ("delivered events/s", "rate", "delivered_per_s", "{:,.0f}"),
    ("latency p50 ms", "rate", "p50_ms", "{:.2f}"),
    ("latency p99 ms", "rate", "p99_ms", "{:.2f}"),
    ("to first client p50 ms", "rate", "first_p50_ms", "{:.2f}"),
    ("fan-out span p50 ms", "rate", "span_p50_ms", "{:.2f}"),
    ("fan-out span p99 ms", "rate", "span_p99_ms", "{:.2f}"),
    ("reach", "rate", "reach", "{:.4f}"),
    ("busiest client CPU %", "rate", "client_cpu_max_pct", "{:.0f}"),
    ("other processes CPU %", "rate", "other_cpu_pct", "{:.0f}"),
    ("interrupts CPU % (all)", "rate", "softirq_cpu_pct", "{:.0f}"),
    ("idle RSS KB/connection", None, "idle_kb_per_connection", "{:.1f}"),
]


def cell(result: dict[str, Any] | None, scenario: str | None, key: str, fmt: str) -> tuple[str, float | None]:
    if result is None:
        return "-", None
    if "error" in result:
        return "error", None
    value = (result[scenario] if scenario else result).get(key)
    return ("-" if value is None else fmt.format(value)), value


def print_table(report: dict[str, Any]) -> None:
    cfg = report["config"]
    print(f"hub vs Node ws, median of {cfg['rounds']} round(s): {cfg['workers']} client processes "
          f"({cfg['client']} client), "
          f"burst {cfg['burst'] or 'auto'} events, rate {cfg['rate']:g}/s for {cfg['seconds']:g} s"
          f"{'' if cfg['batch'] else ', subscribers with ?batch=0'}")
    for name, info in report["servers"].items():
        print(f"  {name}: {info['version']}")
    results = report["results"]
    for clients in sorted({r["clients"] for r in results}):
        by = {r["server"]: r for r in results if r["clients"] == clients}
        print(f"\n{clients} clients")
        for r in by.values():
            if "error" in r:
                print(f"  {r['server']}: {r['error']}")
        print(f"  {'scenario':8} {'metric':24} {'node':>12} {'hub':>12} {'hub/node':>9}")
        for label, scenario, key, fmt in ROWS:
            node_text, node_value = cell(by.get("node"), scenario, key, fmt)
            hub_text, hub_value = cell(by.get("hub"), scenario, key, fmt)
            r = ratio(hub_value, node_value)
            print(f"  {scenario or 'idle':8} {label:24} {node_text:>12} {hub_text:>12} "
                  f"{'-' if r is None else f'{r:.2f}x':>9}")
        phases = [(f"{server} {scenario}", r[scenario]) for server, r in by.items() if "error" not in r
                  for scenario in ("burst", "rate")]
        saturated = [name for name, p in phases if p["client_cpu_max_pct"] >= 90]
        if saturated:
            print(f"  note: a client process ran at >= 90% CPU in {', '.join(saturated)}: there the load "
                  "generator, not the server, set the pace")
        other = max((p["other_cpu_pct"] for _, p in phases), default=0)
        if other >= 25:
            print(f"  note: other processes used up to {other:.0f}% of a core during these phases: latency and "
                  "throughput are disturbed (CPU per delivery much less)")
        if cfg["rounds"] > 1:
            print("  each round:")
            for server in by:
                rounds = [r for r in report["rounds"] if r["server"] == server and r["clients"] == clients
                          and "error" not in r]

                def series(scenario: str, key: str, fmt: str, rounds: list[dict[str, Any]] = rounds) -> str:
                    return " ".join("-" if r[scenario][key] is None else fmt.format(r[scenario][key])
                                    for r in rounds)

                print(f"    {server:5} burst CPU us/delivery {series('burst', 'server_cpu_us_per_delivery', '{:.2f}')}"
                      f" | rate p99 ms {series('rate', 'p99_ms', '{:.1f}')}"
                      f" | other CPU % {series('rate', 'other_cpu_pct', '{:.0f}')}")
    print("\ntargets (issue 4)")
    for t in report["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "n/a "}[t["ok"]]
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        print(f"  {mark}  {t['target']:58} {value:>8} (bound {t['bound']:g})")


# ---------------------------------------------------------------- main


async def run_all(servers: list[Server], args: argparse.Namespace, workers: list[WorkerHandle],
                  log_dir: Path) -> list[dict[str, Any]]:
    """Every (round, client count, server), the servers' order alternating round by round."""
    results = []
    for round_index in range(args.rounds):
        order = servers if round_index % 2 == 0 else servers[::-1]
        for clients in args.clients:
            for server in order:
                print(f"round {round_index + 1}/{args.rounds}: {server.name} at {clients} clients",
                      file=sys.stderr)
                if args.wait_quiet > 0:
                    load = await wait_quiet(args.wait_quiet)
                    if load >= 20:
                        print(f"warning: other processes keep {load:.0f}% of a core busy", file=sys.stderr)
                result = await measure(server, clients, workers, args, log_dir)
                result["round"] = round_index + 1
                results.append(result)
    return results


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One result per (server, clients): the median of every number over the rounds."""
    first = rounds[0]
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        return {"server": first["server"], "clients": first["clients"], "error": errors[0]}

    def merge(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {key: merge([v[key] for v in values]) for key in values[0]}
        if isinstance(values[0], bool) or not isinstance(values[0], (int, float)):
            return values[0]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    merged = merge([{k: v for k, v in r.items() if k != "round"} for r in rounds])
    merged["clients"] = first["clients"]
    merged["rounds"] = len(rounds)
    return merged


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["server"], r["clients"]), []).append(r)
    return [median_of(group) for group in groups.values()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", help="comma-separated subscriber counts (default 500,2000)")
    parser.add_argument("--burst", type=int,
                        help="events per burst (default: 400000 deliveries' worth, within 200..800)")
    parser.add_argument("--rate", type=float, help="events/s of the fixed-rate phase (default 20)")
    parser.add_argument("--seconds", type=float, help="duration of the fixed-rate phase (default 10)")
    parser.add_argument("--warmup", type=int, help="unmeasured events before the burst (default 20)")
    parser.add_argument("--no-batch", action="store_true",
                        help="subscribers connect with ?batch=0 (the hub then sends one frame per event)")
    parser.add_argument("--workers", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--rounds", type=int,
                        help="measure each server this many times, alternating; medians are reported "
                             "(default 3, --quick 1)")
    parser.add_argument("--client", choices=("raw", "websockets"), default="raw",
                        help="subscriber implementation: a minimal asyncio protocol, or websockets' "
                             "asyncio client")
    parser.add_argument("--wait-quiet", type=float, default=30.0, metavar="SECONDS",
                        help="before each server run, wait up to this long for other processes to use "
                             "under 20%% of a core (0: don't wait)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each phase may take")
    parser.add_argument("--servers", default="node,hub", help="which servers to run (node, hub)")
    parser.add_argument("--hub-cmd", help="command that starts the hub; '{port}' is replaced by the port, "
                                          "else '--port P' is appended")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50,200 clients, burst 50, 10/s for 3 s (explicit flags win)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    args = parser.parse_args(argv)
    defaults = ({"clients": "50,200", "burst": 50, "rate": 10.0, "seconds": 3.0, "warmup": 5, "rounds": 1}
                if args.quick else
                {"clients": "500,2000", "burst": 0, "rate": 20.0, "seconds": 10.0, "warmup": 20, "rounds": 3})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.clients = [int(c) for c in str(args.clients).split(",") if c]
    caps = {"clients": (args.clients, 1, 20_000), "burst": ([args.burst], 0, 10_000),
            "rate": ([args.rate], 0.1, 10_000), "seconds": ([args.seconds], 0.1, 600),
            "workers": ([args.workers], 1, 64), "warmup": ([args.warmup], 1, 1000),
            "rounds": ([args.rounds], 1, 20)}
    for name, (values, low, high) in caps.items():
        if any(not low <= v <= high for v in values):
            parser.error(f"--{name} must be within {low}..{high}")
    if max(args.clients) * args.rate * args.seconds > 5_000_000:
        parser.error("clients x rate x seconds above 5,000,000 latency samples; lower one of them")
    return args


def main() -> int:
    args = parse_args()
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="hub_vs_node-") as tmp:
        report = run(args, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    if any("error" in r for r in report["results"]):
        return 1
    if args.check and any(t["ok"] is False for t in report["targets"]):
        return 3
    return 0


def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Start the workers, measure every server at every client count, stop the workers."""
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    servers = []
    for name in wanted:
        if name == "node":
            servers.append(node_server())
        elif name == "hub":
            hub = hub_server(args.hub_cmd, scratch)
            if hub:
                servers.append(hub)
        else:
            sys.exit(f"error: unknown server {name!r}; hint: --servers node,hub")
    if not servers:
        sys.exit("error: no server to measure")
    workers = [WorkerHandle(args.client) for _ in range(args.workers)]
    try:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        rounds = runner(run_all(servers, args, workers, scratch))
    finally:
        for worker in workers:
            worker.stop()
    report = {
        "config": {"clients": args.clients, "burst": args.burst, "rate": args.rate, "seconds": args.seconds,
                   "warmup": args.warmup, "workers": args.workers, "client": args.client,
                   "batch": not args.no_batch, "rounds": args.rounds,
                   "cpus": os.cpu_count(), "channel": CHANNEL},
        "servers": {s.name: {"version": s.version} for s in servers},
        "results": aggregate(rounds),
        "rounds": rounds,
    }
    report["targets"] = targets(report["results"])
    return report


if __name__ == "__main__":
    sys.exit(main())
