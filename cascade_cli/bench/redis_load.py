"""The `cascade bench redis` load generator: a lean RESP client on asyncio protocols.

Commands are encoded once (`redis_commands.command_ring`), replies are parsed by hiredis's
reader, and each connection is driven from its `data_received` callback with no coroutine per
request. Closed loop: a connection sends a batch of `pipeline` commands, waits for every reply,
records one latency for the batch (every command in it waited that long), sends the next.
Open loop: `pacing.pace()` hands out requests round-robin over the connections at their
intended times; replies come back in order per connection, and each is measured from its
intended time (and, apart, from its actual send time).

Call `preflight()` in the CLI process first (clean errors for unreachable or refusing servers),
run `RedisWorkload` through `runner.run_workload`, then `cleanup()`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from cascade_cli.bench.pacing import Schedule, pace
from cascade_cli.bench.redis_commands import command_ring, encode, list_fill_args
from cascade_cli.bench.results import Measurement
from cascade_cli.bench.runner import split
from cascade_cli.errors import ConfigError, UnreachableError

if TYPE_CHECKING:
    from cascade_cli.bench.runner import Control, Share
    from cascade_cli.config import Settings

DRAIN_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where the load goes and how to log in; `display_url` has the password masked."""

    host: str
    port: int
    path: str | None
    tls: bool
    password: str | None
    username: str | None
    db: int
    display_url: str
    server: str = ""


def parse_target(url: str, settings: Settings, fallback_password: str | None = None) -> Target:
    """Host, port or socket path, TLS, credentials and db from a redis:// URL. ConfigError when
    it is not one."""
    from cascade_cli.launcher import mask_url

    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {url!r}: {exc}", "use redis://HOST:PORT/DB") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"invalid Redis URL {mask_url(url)!r}: scheme must be redis, rediss or unix",
                          "use redis://HOST:PORT/DB")
    query = parse_qs(parts.query)
    db_text = (parts.path.strip("/") if parts.scheme != "unix" else "") or query.get("db", ["0"])[0]
    try:
        db = int(db_text)
    except ValueError:
        raise ConfigError(f"invalid database {db_text!r} in {mask_url(url)}", "use redis://HOST:PORT/DB") from None
    password = unquote(parts.password) if parts.password else (query.get("password", [None])[0]
                                                               or settings.redis.password or fallback_password)
    username = unquote(parts.username) if parts.username else None
    return Target(host=parts.hostname or "127.0.0.1", port=port,
                  path=parts.path if parts.scheme == "unix" else None, tls=parts.scheme == "rediss",
                  password=password or None, username=username or None, db=db, display_url=mask_url(url))


def preflight(url: str, settings: Settings, resp: int) -> Target:
    """Check that the server answers (INFO) before any load process starts; returns the target
    with the server's name and version. Raises UnreachableError / RemoteError like `redis status`."""
    from cascade_cli import launcher

    resolved, fallback = launcher.target(url)
    status = launcher.status(settings.redis, url)
    target = parse_target(resolved, settings, fallback)
    server = f"{status.server} {status.version}".strip()
    if resp == 3 and status.redis_version and int(status.redis_version.split(".")[0] or 0) < 6:
        from cascade_cli.errors import UsageError

        raise UsageError(f"{server} does not speak RESP3 (HELLO needs Redis 6 or later)", "use --resp 2")
    return Target(**{**target.__dict__, "server": server})


def _sync_client(url: str, settings: Settings) -> Any:
    """A redis-py client for the set-up and clean-up around the load (not for the load)."""
    import redis

    from cascade_cli import launcher

    resolved, fallback = launcher.target(url)
    target = parse_target(resolved, settings, fallback)
    kwargs: dict[str, Any] = {"socket_timeout": settings.redis.timeout,
                              "socket_connect_timeout": settings.redis.connect_timeout}
    if target.password:
        kwargs["password"] = target.password
    return redis.Redis.from_url(resolved, **kwargs)


def fill_list(url: str, settings: Settings, data_size: int, prefix: str) -> None:
    """Create the list the LRANGE tests read. Raises RemoteError when the server refuses."""
    import redis

    from cascade_cli.errors import RemoteError

    client = _sync_client(url, settings)
    try:
        for args in list_fill_args(data_size, prefix):
            client.execute_command(*args)
    except (redis.RedisError, OSError) as exc:
        raise RemoteError(f"could not create the list for the LRANGE tests: {exc}",
                          "check the server's memory limit and ACLs") from None
    finally:
        client.close()


def cleanup(url: str, settings: Settings, prefix: str) -> int:
    """Delete the run's keys (SCAN MATCH prefix* + UNLINK); returns how many. Errors are
    ignored: the benchmark's results do not depend on it."""
    import redis

    deleted = 0
    try:
        client = _sync_client(url, settings)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += client.unlink(*batch)
        finally:
            client.close()
    except (redis.RedisError, OSError):
        pass
    return deleted


class Connection(asyncio.Protocol):
    """One load connection. `on_replies(conn, n, errors)` is called with the number of complete
    replies in each read; error replies are counted and the first message kept."""

    def __init__(self, driver: Any, reply_error: type) -> None:
        import hiredis

        self.reader = hiredis.Reader(replyError=reply_error)
        self.reply_error = reply_error
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.write: Any = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handshake = 0
        self.lost: Exception | None = None
        # closed loop: the batch in flight
        self.waiting = 0
        self.sent_ns = 0
        self.batch = 0
        self.quota = 0
        self.position = 0
        # open loop: (intended, sent) per request in flight
        self.inflight: deque[tuple[int, int]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.write = transport.write  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("connection closed by the server")
        if not self.ready.done():
            self.ready.set_exception(self.lost)
        self.driver.on_lost(self)

    def data_received(self, data: bytes) -> None:
        received = time.monotonic_ns()  # replies count as answered when their bytes arrive
        reader = self.reader
        reader.feed(data)
        got = errors = 0
        error_type = self.reply_error
        while True:
            try:
                reply = reader.gets()
            except Exception as exc:  # noqa: BLE001 - hiredis.ProtocolError: not a Redis server
                self.driver.last_error = f"unreadable reply: {exc}"
                if self.transport is not None:
                    self.transport.abort()
                return
            if reply is False:
                break
            got += 1
            if type(reply) is error_type:
                errors += 1
                self.driver.last_error = str(reply)
        if self.handshake:
            self._handshake_replies(got, errors)
        elif got:
            self.driver.on_replies(self, got, errors, received)

    def _handshake_replies(self, got: int, errors: int) -> None:
        if errors:
            if not self.ready.done():
                self.ready.set_exception(ConnectionRefusedError(self.driver.last_error))
            return
        self.handshake -= got
        if self.handshake <= 0:
            self.handshake = 0
            if not self.ready.done():
                self.ready.set_result(None)

    def start(self, commands: list[bytes]) -> None:
        """Send the login commands (HELLO, AUTH, SELECT); `ready` resolves when all answered."""
        if not commands:
            self.ready.set_result(None)
            return
        self.handshake = len(commands)
        self.write(b"".join(commands))


@dataclass
class RedisWorkload:
    """The tests to run and how; picklable, one copy per load process."""

    tests: list[str]
    url: str
    password: str | None
    username: str | None
    db: int
    pipeline: int
    data_size: int
    keyspace: int
    resp: int
    prefix: str
    connections: list[Connection] = field(default_factory=list, repr=False)
    board: Switchboard | None = field(default=None, repr=False)

    async def run(self, test: str, share: Share, control: Control) -> Measurement:
        """One test on this process's connections; returns what it measured."""
        if not self.connections:
            await self._connect(share)
        ring = command_ring(test, self.data_size, self.keyspace, seed=hash((test, share.index)) & 0xFFFF,
                            prefix=self.prefix)
        driver = Driver(self, share, control, test, ring)
        return await driver.run()

    async def close(self) -> None:
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()
        self.connections.clear()

    def login_commands(self) -> list[bytes]:
        commands = []
        if self.resp == 3:
            args = [b"HELLO", b"3"]
            if self.password:
                args += [b"AUTH", (self.username or "default").encode(), self.password.encode()]
            commands.append(encode(args))
        elif self.password:
            args = [b"AUTH"] + ([self.username.encode()] if self.username else []) + [self.password.encode()]
            commands.append(encode(args))
        if self.db:
            commands.append(encode([b"SELECT", str(self.db).encode()]))
        return commands

    async def _open(self, driver: Any) -> Connection:
        import hiredis

        loop = asyncio.get_running_loop()
        parts = urlsplit(self.url)

        def factory() -> Connection:
            return Connection(driver, hiredis.ReplyError)

        try:
            if parts.scheme == "unix":
                _, conn = await loop.create_unix_connection(factory, parts.path)
            else:
                context = ssl.create_default_context() if parts.scheme == "rediss" else None
                _, conn = await loop.create_connection(factory, parts.hostname or "127.0.0.1", parts.port or 6379,
                                                       ssl=context)
            conn.start(self.login_commands())
            await asyncio.wait_for(conn.ready, 10)
        except (OSError, TimeoutError) as exc:
            raise UnreachableError(f"load connection to {parts.hostname}:{parts.port} failed: {exc}",
                                   "fewer --clients, or raise the server's maxclients and ulimit -n") from None
        return conn

    async def _connect(self, share: Share) -> None:
        self.board = Switchboard()
        for start in range(0, share.clients, 100):
            batch = [self._open(self.board) for _ in range(start, min(share.clients, start + 100))]
            self.connections.extend(await asyncio.gather(*batch))


class Switchboard:
    """Routes connection callbacks to the driver of the test that is running."""

    def __init__(self) -> None:
        self.current: Driver | None = None
        self.last_error = ""

    def on_replies(self, conn: Connection, got: int, errors: int, received: int) -> None:
        if self.current is not None:
            self.current.on_replies(conn, got, errors, received)

    def on_lost(self, conn: Connection) -> None:
        if self.current is not None:
            self.current.on_lost(conn)


class Driver:
    """One test on one process: sends, receives, measures."""

    def __init__(self, workload: RedisWorkload, share: Share, control: Control, test: str,
                 ring: list[bytes]) -> None:
        self.workload = workload
        self.share = share
        self.control = control
        self.ring = ring
        self.pipeline = workload.pipeline
        self.m = Measurement(test=test)
        self.record = self.m.latency.record
        self.record_uncorrected = self.m.uncorrected.record
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.measure_from = 0
        self.deadline = 0
        self.sending = True
        self.active = 0
        assert workload.board is not None
        self.board = workload.board
        self.board.current = self
        self.batches = self._batches()

    def _batches(self) -> list[bytes]:
        """Pre-joined pipelines cycling through the ring."""
        ring, p = self.ring, self.pipeline
        if len(ring) == 1:
            return [ring[0] * p]
        count = max(1, len(ring) // p)
        return [b"".join(ring[(i * p + j) % len(ring)] for j in range(p)) for i in range(count)]

    # ------------------------------------------------------------------ entry

    async def run(self) -> Measurement:
        share, conns = self.share, self.workload.connections
        now = await self.control.wait_start()
        cpu = [time.process_time()]
        self.measure_from = now + int(share.warmup * 1e9)
        if share.warmup:
            asyncio.get_running_loop().call_later(share.warmup, lambda: cpu.__setitem__(0, time.process_time()))
        self.deadline = self.measure_from + int(share.duration * 1e9) if share.duration else 0
        ticker = self.control.watch(lambda: self.m.ops, self._stop)
        quotas = split(share.requests or 0, len(conns))
        try:
            if share.rate:
                await self._open_loop(quotas)
            else:
                for i, conn in enumerate(conns):
                    conn.quota = quotas[i] if share.requests is not None else -1
                    conn.position = (i * 7919) % len(self.batches)
                    self.active += 1
                    self._send_batch(conn, now)
                self._maybe_done()
            await self.done
        finally:
            ticker.cancel()
            self.sending = False
        end = self.m.ended or time.monotonic_ns()
        self.m.finish(self.measure_from / 1e9, end / 1e9, time.process_time() - cpu[0])
        self.m.interrupted = self.control.stopping()
        return self.m

    def _stop(self) -> None:
        """The parent said stop: send nothing more, wait for the replies (DRAIN_TIMEOUT at most)."""
        if self.sending:
            self.sending = False
            asyncio.get_running_loop().call_later(DRAIN_TIMEOUT, self._give_up)
            self._maybe_done()

    def _give_up(self) -> None:
        lost = sum(c.waiting for c in self.workload.connections) + sum(len(c.inflight) for c in
                                                                          self.workload.connections)
        if lost:
            self.m.add_error(f"{lost} replies did not arrive within {DRAIN_TIMEOUT:g} s", lost)
        if not self.done.done():
            self.done.set_result(None)

    def _maybe_done(self) -> None:
        if self.done.done():
            return
        if all(c.waiting == 0 and not c.inflight for c in self.workload.connections) and (
                not self.sending or self.active == 0):
            self.done.set_result(None)

    # ------------------------------------------------------------------ closed loop

    def _send_batch(self, conn: Connection, now: int) -> None:
        """Send the next pipeline on `conn`, or retire it when its quota or time is up."""
        if not self.sending or (self.deadline and now >= self.deadline and now >= self.measure_from):
            self.active -= 1
            return
        batches = self.batches
        measured = now >= self.measure_from
        size = self.pipeline
        if measured and conn.quota >= 0:
            if conn.quota == 0:
                self.active -= 1
                return
            size = min(size, conn.quota)
            conn.quota -= size
        payload = batches[conn.position]
        conn.position = conn.position + 1 if conn.position + 1 < len(batches) else 0
        if size != self.pipeline:
            payload = b"".join(self.ring[(conn.position + j) % len(self.ring)] for j in range(size))
        conn.waiting = size
        conn.batch = size if measured else -size
        conn.sent_ns = time.monotonic_ns()
        conn.write(payload)

    def on_replies(self, conn: Connection, got: int, errors: int, received: int) -> None:
        """Replies arrived at `received` (ns): the closed loop sends the next batch first, then
        records the one answered (so recording is not on the next request's path)."""
        if self.share.rate:
            self._open_replies(conn, got, errors, received)
            return
        conn.waiting -= got
        if errors and conn.batch > 0:
            self.m.add_error(self.workload_last_error(), errors)
        if conn.waiting > 0:
            return
        batch, sent = conn.batch, conn.sent_ns
        self._send_batch(conn, received)
        if batch > 0:
            ok = batch - min(errors, batch)
            if ok:
                self.record(received - sent, ok)
            self.m.ops += ok
            self.m.ended = received
        if self.active == 0 or not self.sending:
            self._maybe_done()

    def workload_last_error(self) -> str:
        return self.board.last_error

    def on_lost(self, conn: Connection) -> None:
        pending = max(conn.waiting, 0) + len(conn.inflight)
        if pending:
            self.m.add_error(f"connection lost: {conn.lost}", pending)
        conn.waiting = 0
        conn.inflight.clear()
        if conn in self.workload.connections:
            self.workload.connections.remove(conn)
        if self.active > 0 and not self.share.rate:
            self.active -= 1
        if not self.workload.connections:
            if not self.done.done():
                self.done.set_result(None)
        else:
            self._maybe_done()

    # ------------------------------------------------------------------ open loop

    async def _open_loop(self, quotas: list[int]) -> None:
        conns = self.workload.connections
        share = self.share
        assert share.rate
        schedule = Schedule(share.rate, self.control.start_ns, share.rate_offset)
        warm = int(share.warmup * share.rate)  # requests sent during the warmup
        limit = warm + share.requests if share.requests is not None else None
        self.measure_from = schedule.due_at(warm)
        until = self.measure_from + int(share.duration * 1e9) if share.duration else None
        self.deadline = 0
        lag = self.m.send_lag.record
        ring, size = self.ring, len(self.ring)
        state = {"i": 0}
        count = len(conns)

        def send(intended: int) -> None:
            i = state["i"]
            state["i"] = i + 1
            live = self.workload.connections
            if not live:
                return
            conn = live[i % len(live)] if len(live) != count else conns[i % count]
            now = time.monotonic_ns()
            if intended >= self.measure_from:
                lag(now - intended)
            conn.inflight.append((intended, now))
            conn.write(ring[i % size])

        self.active = 1
        await pace(schedule, send, limit=limit, until_ns=until, stopping=lambda: not self.sending)
        self.active = 0
        self.sending = False
        self._maybe_done()

    def _open_replies(self, conn: Connection, got: int, errors: int, now: int) -> None:
        measure_from = self.measure_from
        inflight = conn.inflight
        if errors:
            counted = sum(1 for k in range(min(got, len(inflight))) if inflight[k][0] >= measure_from)
            if counted:
                self.m.add_error(self.workload_last_error(), min(errors, counted))
        ok_budget = got - errors
        for _ in range(min(got, len(inflight))):
            intended, sent = inflight.popleft()
            if intended >= measure_from and ok_budget > 0:
                ok_budget -= 1
                self.record(now - intended)
                self.record_uncorrected(now - sent)
                self.m.ops += 1
                self.m.ended = now
        if not self.sending:
            self._maybe_done()
