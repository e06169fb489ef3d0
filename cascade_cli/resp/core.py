"""The engine: databases, clients, command dispatch, transactions, blocking and pub/sub.

Pure: no sockets and no event loop. The asyncio layer (resp/server.py) subclasses `Client`
to deliver out-of-band replies (`send`), close connections (`close`), arm block timeouts
(`arm_timeout`) and resume a client's pipeline after it was unblocked (`resume`); it calls
`Engine.execute(client, argv)` for each parsed command and writes the returned reply unless it
is NO_REPLY.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cascade_cli import __version__
from cascade_cli.resp.commands import COMMANDS, Command, arity_error, c_string, load_all
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.params import Params
from cascade_cli.resp.protocol import NULL_ARRAY, QUEUED, ErrorReply, Push, repr_bytes
from cascade_cli.resp.sampling import sweep_pickers
from cascade_cli.resp.store import Database

REDIS_VERSION = "7.0.15"
perf_counter_ns = time.perf_counter_ns


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY = _NoReply()   # nothing to write now (client blocked, or replies switched off)

# Commands allowed while a RESP2 client is subscribed, and before AUTH.
PUBSUB_ALLOWED = frozenset({"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                            "sunsubscribe", "ping", "quit", "reset"})
NO_QUEUE = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})


@dataclass
class Stats:
    """Counters behind INFO stats; CONFIG RESETSTAT zeroes them."""

    total_connections_received: int = 0
    total_commands_processed: int = 0
    rejected_connections: int = 0
    expired_keys: int = 0
    evicted_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    total_net_input_bytes: int = 0
    total_net_output_bytes: int = 0
    total_error_replies: int = 0
    error_counts: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class Block:
    """A command waiting for keys. `attempt()` retries it: a reply, or None to keep waiting."""

    db: int
    keys: list[bytes]
    timeout: float                   # seconds, 0 = forever
    timeout_reply: Any
    attempt: Callable[[], Any]
    started: float = field(default_factory=time.monotonic)
    ready_key: bytes | None = None   # set before attempt(): the key whose change woke it up


class Client:
    """One connection's state. The transport layer overrides the hook methods."""

    def __init__(self, engine: Engine, addr: str = "127.0.0.1:0", laddr: str = "127.0.0.1:0",
                 fd: int = -1) -> None:
        self.engine = engine
        self.id = engine.next_client_id()
        self.addr = addr
        self.laddr = laddr
        self.fd = fd
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.resp = 2
        self.db: Database = engine.dbs[0]
        self.authenticated = not engine.params.requirepass
        self.user = "default"
        self.created = time.time()
        self.last_interaction = time.monotonic()
        self.last_cmd = "NULL"
        self.multi: list[tuple[Command, list[bytes]]] | None = None
        self.multi_error = False
        self.cas_dirty = False
        self.watched: dict[tuple[int, bytes], bool] = {}      # (db, key) -> expired at WATCH time
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.subscribed = 0                # len(channels) + len(patterns) + len(shard_channels)
        self.blocked: Block | None = None
        self.reply_mode = "on"             # on | off | skip (skip the next reply) | skip-now
        self.may_block = True
        self.close_after_reply = False
        self.closed = False
        self.monitor = False
        self.no_evict = False
        self.rewrite_as: list[list[bytes]] | None = None
        self.tracking = False

    # --- transport hooks -------------------------------------------------------------------

    def send(self, reply: Any) -> None:
        """Deliver an out-of-band reply (push message, an unblocked command's reply)."""

    def close(self) -> None:
        """Close the connection (CLIENT KILL, SHUTDOWN)."""
        self.closed = True

    def arm_timeout(self, seconds: float) -> None:
        """Call engine.timeout_block(self) after `seconds` unless unblocked first."""

    def resume(self) -> None:
        """The client was unblocked: go on with the commands it pipelined behind the block."""

    # --- state -----------------------------------------------------------------------------

    @property
    def subscriptions(self) -> int:
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)

    def select(self, index: int) -> None:
        self.db = self.engine.dbs[index]

    def rewrite(self, *argvs: list[bytes]) -> None:
        """Propagate these commands to the append-only file instead of the one received
        (none at all when called without arguments)."""
        self.rewrite_as = list(argvs)

    def block(self, keys: list[bytes], timeout: float, timeout_reply: Any,
              attempt: Callable[[], Any]) -> Any:
        """Wait for `keys` (or answer `timeout_reply` at once when the client may not block,
        e.g. inside MULTI). Return what this returns from the command handler."""
        if not self.may_block:
            return timeout_reply
        return Block(self.db.index, keys, timeout, timeout_reply, attempt)


class Engine:
    """All server state. Call `execute` per command; `tick` about every 100 ms."""

    def __init__(self, params: Params | None = None) -> None:
        load_all()
        self.params = params or Params()
        self.dbs = [Database(i, self) for i in range(self.params.databases)]
        self.clients: dict[int, Client] = {}
        self._next_id = 0
        self.stats = Stats()
        self.dirty = 0
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.watched: dict[tuple[int, bytes], set[Client]] = {}
        self.blocked_keys: dict[tuple[int, bytes], deque[Client]] = {}
        self.ready_keys: dict[tuple[int, bytes], None] = {}
        self.blocked_clients: set[Client] = set()
        self.channels: dict[bytes, dict[Client, None]] = {}
        self.patterns: dict[bytes, dict[Client, None]] = {}
        self.pattern_matchers: dict[bytes, Callable[[bytes], bool]] = {}
        self.shard_channels: dict[bytes, dict[Client, None]] = {}
        self.monitors: dict[Client, None] = {}
        self.pending_propagation: list[tuple[int, list[bytes]]] = []
        self.aof: Any = None                  # persistence: .feed(entries) after each command
        self.slowlog: deque[list[Any]] = deque()
        self.slowlog_next_id = 0
        self.lastsave = int(time.time())
        self.shutdown_requested: str | None = None   # "save" | "nosave" | "default"
        self.loading = False
        self.pid = os.getpid()
        self.version = REDIS_VERSION
        self.cascade_version = __version__
        self.used_memory_cache = 0
        self.hooks: dict[str, Callable[..., Any]] = {}  # transport-provided (e.g. "tcp_port")
        # Exact-case lookups for the common spellings (GET, get); others go through lower().
        self.fast_commands = {**COMMANDS, **{name.upper(): cmd for name, cmd in COMMANDS.items()}}
        self.clock = time.monotonic()         # the LRU clock: advanced by tick() and per batch
        self.active_expire_enabled = True     # DEBUG SET-ACTIVE-EXPIRE
        self.write_error: str | None = None    # MISCONF text while the AOF cannot be written
        self.pause_mode: str | None = None     # CLIENT PAUSE: "all" | "write" until pause_end_ms
        self.pause_end_ms = 0
        self.tracking_clients: dict[Client, None] = {}   # CLIENT TRACKING (commands/connection.py)
        self.current_client: Client | None = None       # the writer, for tracking NOLOOP
        from cascade_cli.resp import memory
        memory.install(self)                  # used_memory, eviction, per-second samples

    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- connections -----------------------------------------------------------------------

    def connect(self, client: Client) -> None:
        self.clients[client.id] = client
        self.stats.total_connections_received += 1

    def disconnect(self, client: Client) -> None:
        """Forget a closed connection: its blocks, WATCHes, subscriptions and MONITOR."""
        if client.blocked is not None:
            self.unblock(client)
        self.unwatch_all(client)
        for channel in list(client.channels):
            self.unsubscribe(client, channel, self.channels, client.channels)
        for pattern in list(client.patterns):
            self.unsubscribe(client, pattern, self.patterns, client.patterns)
        for channel in list(client.shard_channels):
            self.unsubscribe(client, channel, self.shard_channels, client.shard_channels)
        self.monitors.pop(client, None)
        self.tracking_clients.pop(client, None)
        self.clients.pop(client.id, None)
        client.closed = True

    # --- dispatch --------------------------------------------------------------------------

    def lookup(self, argv: list[bytes]) -> Command | ErrorReply:
        """The command for argv, or the error Redis gives for an unknown command or arity."""
        cmd = COMMANDS.get(argv[0].lower())
        if cmd is None:
            args = ""
            for raw in argv[1:]:
                if len(args) >= 128:
                    break
                args += "'" + c_string(raw)[:128 - len(args)] + "' "
            return ErrorReply(f"ERR unknown command '{c_string(argv[0])[:128]}', "
                              f"with args beginning with: {args}")
        if cmd.subcommands is not None and len(argv) >= 2:
            sub = cmd.subcommands.get(argv[1].lower())
            if sub is None:
                return ErrorReply(f"ERR unknown subcommand '{c_string(argv[1])[:128]}'. "
                                  f"Try {c_string(argv[0]).upper()} HELP.")
            cmd = sub
        if not cmd.arity_ok(len(argv)):
            return arity_error(cmd.name)
        return cmd

    def execute(self, client: Client, argv: list[bytes]) -> Any:
        """Run one command for `client`; returns its reply, or NO_REPLY."""
        cmd = self.fast_commands.get(argv[0])
        if cmd is None or cmd.subcommands is not None:
            cmd = self.lookup(argv)
            if type(cmd) is ErrorReply:
                return self._reply(client, self._reject(client, COMMANDS.get(argv[0].lower()), cmd))
        else:
            arity = cmd.arity
            argc = len(argv)
            if (argc != arity) if arity > 0 else (argc < -arity):
                return self._reply(client, self._reject(client, cmd, arity_error(cmd.name)))
        if client.authenticated and client.multi is None and not client.subscribed \
                and not self.monitors and not self.params.maxmemory and not client.tracking \
                and self.write_error is None:
            reply = self.call(client, cmd, argv)  # type: ignore[arg-type]
        else:
            reply = self._checked_call(client, cmd, argv)  # type: ignore[arg-type]
            if reply is NO_REPLY:
                return reply
        if type(reply) is Block:
            return self._block(client, reply)
        if self.ready_keys:
            self.handle_ready()
        if self.pending_propagation:
            self.flush_propagation()
        if client.reply_mode == "on":
            return reply
        return self._reply(client, reply)

    def _checked_call(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """The checks Redis makes before running a command, then the call (or the refusal)."""
        name = cmd.name
        if not client.authenticated and self.params.requirepass and "no-auth" not in cmd.flags:
            return self._reject(client, cmd, ErrorReply("NOAUTH Authentication required."))
        if self.write_error is not None and ("write" in cmd.flags or name == "ping"):
            return self._reject(client, cmd, ErrorReply(self.write_error))
        if client.multi is not None and name not in NO_QUEUE:
            if "no-multi" in cmd.flags:
                client.multi_error = True
                return self._count_error(ErrorReply("ERR Command not allowed inside a transaction"))
            oom = self._oom(client, cmd)
            if oom is not None:
                client.multi_error = True
                return oom
            client.multi.append((cmd, argv))
            return QUEUED
        if client.resp == 2 and client.subscribed and name not in PUBSUB_ALLOWED:
            return self._reject(client, cmd, ErrorReply(
                f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                "RESET are allowed in this context"))
        if self.params.maxmemory:
            oom = self._oom(client, cmd)
            if oom is not None:
                cmd.rejected_calls += 1
                return oom
        self.current_client = client
        try:
            reply = self.call(client, cmd, argv)
        finally:
            self.current_client = None
        if self.monitors and "admin" not in cmd.flags:
            self.feed_monitors(client, argv)        # after the call, as Redis (SELECT shows its db)
        if client.tracking:
            from cascade_cli.resp.commands.connection import tracking_after_command
            tracking_after_command(client, cmd, argv)
        return reply

    def _reject(self, client: Client, cmd: Command | None, error: ErrorReply) -> ErrorReply:
        """Refuse a command before it runs. A refused EXEC aborts the transaction (as Redis's
        execCommandAbort); any other refusal inside MULTI makes the EXEC fail."""
        if cmd is not None:
            cmd.rejected_calls += 1
            if cmd.name == "exec":
                client.multi = None
                client.multi_error = False
                self.unwatch_all(client)
                text = error.text[4:] if error.text.startswith("ERR ") else error.text
                error = ErrorReply(f"EXECABORT Transaction discarded because of: {text}")
        if client.multi is not None:
            client.multi_error = True
        return self._count_error(error)

    def invalidate(self, key: bytes) -> None:
        """`key` changed while clients track keys (CLIENT TRACKING): send invalidations."""
        from cascade_cli.resp.commands.connection import tracking_invalidate
        tracking_invalidate(self, key, self.current_client)

    def invalidate_all(self) -> None:
        from cascade_cli.resp.commands.connection import tracking_flush
        tracking_flush(self)

    def call(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """Run a looked-up command (also used by EXEC); errors come back as ErrorReply values."""
        dirty = self.dirty
        client.rewrite_as = None
        start = perf_counter_ns()
        try:
            reply = cmd.handler(client, argv)  # type: ignore[misc]
        except ErrorReply as error:
            reply = self._count_error(error)
            cmd.failed_calls += 1
        except Exception as error:  # noqa: BLE001 - see _internal_error
            reply = self._count_error(_internal_error(cmd, error))
        elapsed = (perf_counter_ns() - start) // 1000
        cmd.calls += 1
        cmd.usec += elapsed
        self.stats.total_commands_processed += 1
        client.last_cmd = cmd.name
        if elapsed >= self.params.slowlog_log_slower_than >= 0:
            self.slowlog_add(client, argv, elapsed)
        if self.dirty != dirty and self.aof is not None:
            self._propagate_call(client, argv, reply)
        return reply

    def _propagate_call(self, client: Client, argv: list[bytes], reply: Any) -> None:
        """Queue a command that changed data for the AOF: its rewrite, or argv as received."""
        rewrite = client.rewrite_as
        index = client.db.index if type(reply) is not Block else reply.db
        for entry in (rewrite if rewrite is not None else (argv,)):
            self.pending_propagation.append((index, entry))

    def _reply(self, client: Client, reply: Any) -> Any:
        mode = client.reply_mode
        if mode == "on":
            return reply
        if mode == "skip-now":          # CLIENT REPLY SKIP itself: no reply, skip the next one
            client.reply_mode = "skip"
            return NO_REPLY
        if mode == "skip":
            client.reply_mode = "on"
        return NO_REPLY

    def _count_error(self, error: ErrorReply) -> ErrorReply:
        stats = self.stats
        stats.total_error_replies += 1
        code = error.text.split(" ", 1)[0]
        stats.error_counts[code] = stats.error_counts.get(code, 0) + 1
        return error

    def _oom(self, client: Client, cmd: Command) -> ErrorReply | None:
        if "denyoom" not in cmd.flags or not self.params.maxmemory:
            return None
        evict = self.hooks.get("evict")
        try:
            if evict is not None and evict():
                return None
        except Exception as error:  # noqa: BLE001 - eviction trouble must not drop the client
            _internal_error(cmd, error)
        if self.used_memory() <= self.params.maxmemory:
            return None
        return self._count_error(ErrorReply("OOM command not allowed when used memory > 'maxmemory'."))

    def used_memory(self) -> int:
        measure = self.hooks.get("used_memory")
        return measure() if measure is not None else self.used_memory_cache

    # --- propagation (append-only file) ----------------------------------------------------

    def propagate(self, db: int, argv: list[bytes]) -> None:
        """Queue a write for the append-only file (sent after the current command); nothing
        is kept while there is no append-only file."""
        if self.aof is not None:
            self.pending_propagation.append((db, argv))

    def flush_propagation(self) -> None:
        entries = self.pending_propagation
        self.pending_propagation = []
        if self.aof is not None:
            try:
                self.aof.feed(entries)
            except Exception as error:  # noqa: BLE001 - a bad entry must not cost the others
                _internal_error(None, error)

    # --- MONITOR and SLOWLOG ---------------------------------------------------------------

    def feed_monitors(self, client: Client, argv: list[bytes]) -> None:
        from cascade_cli.resp.protocol import Simple
        now = time.time()
        args = " ".join('"' + repr_bytes(a) + '"' for a in argv)
        line = Simple(f"{now:.6f} [{client.db.index} {client.addr}] {args}")
        for monitor in list(self.monitors):
            if monitor is not client:
                monitor.send(line)

    def slowlog_add(self, client: Client, argv: list[bytes], usec: int) -> None:
        args = list(argv[:32])
        if len(argv) > 32:
            args[-1] = b"... (%d more arguments)" % (len(argv) - 31)
        args = [a if len(a) <= 128 else a[:128] + b"... (%d more bytes)" % (len(a) - 128) for a in args]
        self.slowlog.appendleft([self.slowlog_next_id, int(time.time()), usec, args,
                                 client.addr.encode(), client.name])
        self.slowlog_next_id += 1
        while len(self.slowlog) > max(self.params.slowlog_max_len, 0):
            self.slowlog.pop()

    # --- transactions ----------------------------------------------------------------------

    def watch(self, client: Client, key: bytes) -> None:
        slot = (client.db.index, key)
        if slot in client.watched:
            return
        expired = key in client.db.expires and client.db.lookup(key) is None
        client.watched[slot] = expired
        self.watched.setdefault(slot, set()).add(client)

    def unwatch_all(self, client: Client) -> None:
        for slot in client.watched:
            clients = self.watched.get(slot)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self.watched[slot]
        client.watched = {}
        client.cas_dirty = False

    def touch_watched(self, db: int, key: bytes) -> None:
        for client in self.watched.get((db, key), ()):
            client.cas_dirty = True

    def touch_all_watched(self, db: int, only_existing: bool = True) -> None:
        """FLUSHDB/FLUSHALL/SWAPDB: mark clients watching keys of `db`."""
        database = self.dbs[db]
        for (index, key), clients in self.watched.items():
            if index == db and (not only_existing or key in database.data):
                for client in clients:
                    client.cas_dirty = True

    def exec(self, client: Client) -> Any:
        """Run the queued commands of `client` (the EXEC command's body)."""
        queued = client.multi or []
        client.multi = None
        if client.multi_error:
            client.multi_error = False
            self.unwatch_all(client)
            raise ErrorReply("EXECABORT Transaction discarded because of previous errors.")
        dirty = client.cas_dirty
        if not dirty:
            now = None
            for (index, key), expired_at_watch in client.watched.items():
                when = self.dbs[index].expires.get(key)
                if when is not None and not expired_at_watch:
                    now = now or int(time.time() * 1000)
                    if when <= now:
                        dirty = True
                        break
        self.unwatch_all(client)
        if dirty:
            return NULL_ARRAY
        results = []
        client.may_block = False
        start = len(self.pending_propagation)
        try:
            for cmd, argv in queued:
                if self.params.maxmemory:
                    oom = self._oom(client, cmd)
                    if oom is not None:
                        results.append(oom)
                        continue
                results.append(self.call(client, cmd, argv))
        finally:
            client.may_block = True
        entries = self.pending_propagation[start:]
        if len(entries) > 1 or (entries and len(queued) > 1):
            first = entries[0][0]
            self.pending_propagation[start:] = [(first, [b"MULTI"]), *entries, (entries[-1][0], [b"EXEC"])]
        client.rewrite_as = []          # EXEC itself: its commands are already queued above
        return results

    # --- blocking --------------------------------------------------------------------------

    def _block(self, client: Client, block: Block) -> Any:
        client.blocked = block
        self.blocked_clients.add(client)
        for key in block.keys:
            self.blocked_keys.setdefault((block.db, key), deque()).append(client)
        if block.timeout > 0:
            client.arm_timeout(block.timeout)
        if self.ready_keys:
            self.handle_ready()
        if self.pending_propagation:
            self.flush_propagation()
        return NO_REPLY

    def unblock(self, client: Client) -> None:
        """Remove `client` from the queues of the keys it waits for (no reply is sent)."""
        block = client.blocked
        if block is None:
            return
        client.blocked = None
        self.blocked_clients.discard(client)
        for key in block.keys:
            queue = self.blocked_keys.get((block.db, key))
            if queue is not None:
                try:
                    queue.remove(client)
                except ValueError:
                    pass
                if not queue:
                    del self.blocked_keys[(block.db, key)]

    def timeout_block(self, client: Client) -> None:
        """The transport's timer fired: answer the timeout reply and resume the client."""
        block = client.blocked
        if block is None:
            return
        self.unblock(client)
        self._deliver(client, block.timeout_reply)

    def unblock_by_request(self, client: Client, error: bool) -> bool:
        """CLIENT UNBLOCK: answer as on timeout, or with an UNBLOCKED error."""
        block = client.blocked
        if block is None:
            return False
        self.unblock(client)
        self._deliver(client, ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                      if error else block.timeout_reply)
        return True

    def _deliver(self, client: Client, reply: Any) -> None:
        reply = self._reply(client, reply)
        if reply is not NO_REPLY:
            client.send(reply)
        client.resume()

    def handle_ready(self) -> None:
        """Serve clients blocked on keys that changed, first come first served."""
        while self.ready_keys:
            ready = list(self.ready_keys)
            self.ready_keys.clear()
            for slot in ready:
                queue = self.blocked_keys.get(slot)
                if not queue:
                    continue
                for client in list(queue):
                    block = client.blocked
                    if block is None:
                        continue
                    client.rewrite_as = None
                    previous = client.db
                    client.db = self.dbs[block.db]
                    block.ready_key = slot[1]
                    try:
                        reply = block.attempt()
                    except ErrorReply as error:
                        reply = self._count_error(error)
                    except Exception as error:  # noqa: BLE001 - see _internal_error
                        reply = self._count_error(_internal_error(None, error))
                    finally:
                        client.db = previous
                    if reply is None:
                        value = self.dbs[block.db].data.get(slot[1])
                        if value is None or (not len(value) and getattr(value, "TYPE", None) != b"stream"):
                            break       # nothing left to serve: the others keep waiting (O(1))
                        continue
                    if client.rewrite_as is not None and self.aof is not None:
                        for entry in client.rewrite_as:
                            self.pending_propagation.append((block.db, entry))
                    self.unblock(client)
                    self._deliver(client, reply)

    # --- pub/sub ---------------------------------------------------------------------------

    def subscribe(self, client: Client, name: bytes, table: dict[bytes, dict[Client, None]],
                  mine: dict[bytes, None]) -> None:
        if name not in mine:
            mine[name] = None
            client.subscribed = client.subscriptions
            table.setdefault(name, {})[client] = None
            if table is self.patterns and name not in self.pattern_matchers:
                self.pattern_matchers[name] = compile_glob(name)

    def unsubscribe(self, client: Client, name: bytes, table: dict[bytes, dict[Client, None]],
                    mine: dict[bytes, None]) -> bool:
        if name not in mine:
            return False
        del mine[name]
        client.subscribed = client.subscriptions
        subscribers = table.get(name)
        if subscribers is not None:
            subscribers.pop(client, None)
            if not subscribers:
                del table[name]
                if table is self.patterns:
                    self.pattern_matchers.pop(name, None)
        return True

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to channel and pattern subscribers; returns how many received it."""
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            push = Push([b"message", channel, message])
            for client in list(subscribers):
                client.send(push)
            receivers += len(subscribers)
        if self.patterns:
            for pattern, clients in list(self.patterns.items()):
                if self.pattern_matchers[pattern](channel):
                    push = Push([b"pmessage", pattern, channel, message])
                    for client in list(clients):
                        client.send(push)
                    receivers += len(clients)
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        subscribers = self.shard_channels.get(channel)
        if not subscribers:
            return 0
        push = Push([b"smessage", channel, message])
        for client in list(subscribers):
            client.send(push)
        return len(subscribers)

    # --- housekeeping ----------------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work (hz): active expiry; the transport calls this about every 100 ms."""
        self.clock = time.monotonic()
        sweep_pickers()
        cron = self.hooks.get("cron")
        if cron is not None:
            cron()
        deadline = time.monotonic() + 0.025
        for db in self.dbs if self.active_expire_enabled else ():
            while db.expires and db.active_expire() > 5 and time.monotonic() < deadline:
                pass
        if self.pending_propagation:
            self.flush_propagation()

    def uptime(self) -> int:
        return int(time.monotonic() - self.started_monotonic)


def _internal_error(cmd: Command | None, error: Exception) -> ErrorReply:
    """A bug in a command must not take the connection down: answer an error and log it."""
    import traceback
    traceback.print_exception(error)
    where = f" in '{cmd.name}'" if cmd is not None else ""
    return ErrorReply(f"ERR internal error{where}: {type(error).__name__}: {error}")

