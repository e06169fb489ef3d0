"""The asyncio layer of the in-memory server: TCP connections around the pure engine.

`run(params)` serves until SHUTDOWN, SIGTERM or SIGINT. Each connection parses what arrives,
executes every complete command in order and answers the whole batch with one write
(pipelining). A protocol error answers Redis's error and closes that connection only.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import signal
import socket
import sys
import time
from collections import deque
from typing import Any

from cascade_cli.resp import persistence
from cascade_cli.resp.core import NO_REPLY, Client, Engine
from cascade_cli.resp.params import Params
from cascade_cli.resp.protocol import ErrorReply, ProtocolError, RequestParser, encode

PUBSUB_OUTPUT_LIMIT = 32 * 1024 * 1024      # client-output-buffer-limit pubsub (hard)
MAX_TURN = 1000                             # commands one client runs before others get a turn
DENIED = (b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
          b"password is set for the default user. In this mode connections are only accepted from "
          b"the loopback interface. If you want to connect from external computers to Redis you may "
          b"adopt one of the following solutions: 1) Just disable protected mode sending the command "
          b"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the "
          b"same host the server is running, however MAKE SURE Redis is not publicly accessible from "
          b"internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
          b"you can just disable the protected mode by editing the Redis configuration file, and setting "
          b"the protected mode option to 'no', and then restarting the server. 3) If you started the "
          b"server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a "
          b"an authentication password for the default user. NOTE: You only need to do one of the above "
          b"things in order for the server to start accepting connections from the outside.\r\n")


def log(params: Params, message: str, level: str = "*") -> None:
    """One Redis-style log line to the logfile, or stderr."""
    stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime())
    line = f"{os.getpid()}:M {stamp}.{int(time.time() * 1000) % 1000:03d} {level} {message}\n"
    if params.logfile:
        with open(params.logfile, "a", encoding="utf-8") as handle:
            handle.write(line)
    else:
        sys.stderr.write(line)
        sys.stderr.flush()


class Connection(Client, asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: Server) -> None:   # Client.__init__ runs in connection_made
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.pending: deque[list[bytes]] = deque()
        self.pending_bytes = 0                       # bytes read while commands were waiting
        self.parser = RequestParser(server.engine.params.proto_max_bulk_len)
        self.running = False
        self.flush_scheduled = False
        self.protocol_error: ErrorReply | None = None
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        engine = self.server.engine
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        local = transport.get_extra_info("sockname") or ("127.0.0.1", 0)
        Client.__init__(self, engine, _addr(peer), _addr(local), sock.fileno() if sock else -1)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        params = engine.params
        if len(engine.clients) >= params.maxclients:
            engine.stats.rejected_connections += 1
            transport.write(b"-ERR max number of clients reached\r\n")  # type: ignore[attr-defined]
            transport.close()
            self.closed = True
            return
        if params.protected_mode and not params.requirepass and not _loopback(peer[0]) \
                and self.server.default_bind:
            engine.stats.rejected_connections += 1
            transport.write(DENIED)  # type: ignore[attr-defined]
            transport.close()
            self.closed = True
            return
        engine.connect(self)
        self.parser.auth_required = not self.authenticated and bool(params.requirepass)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.server.engine.stats.total_net_input_bytes += len(data)
        try:
            commands = self.parser.feed(data)
        except ProtocolError as error:
            commands = error.commands  # type: ignore[attr-defined]
            self.protocol_error = error.reply
            if self.transport is not None:
                self.transport.pause_reading()
        if self.parser.pending + self.pending_bytes > self.server.engine.params.client_query_buffer_limit:
            log(self.server.params, f"Closing client that reached max query buffer length: {self.addr}", "#")
            self.server.engine.disconnect(self)
            if self.transport is not None:
                self.transport.abort()
            return
        if self.blocked is not None or self.pending:
            self.pending.extend(commands)
            self.pending_bytes += len(data)       # counted against client-query-buffer-limit
            return
        self.run(commands)
        # Unauthenticated, the parser hands over one command at a time: go on with the rest.
        while commands and not self.closed and self.blocked is None and self.protocol_error is None \
                and self.parser.pending:
            try:
                commands = self.parser.feed(b"")
            except ProtocolError as error:
                commands = error.commands  # type: ignore[attr-defined]
                self.protocol_error = error.reply
            if commands or self.protocol_error is not None:
                self.run(commands)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timer()
        if not self.closed or self.id in self.server.engine.clients:
            self.server.engine.disconnect(self)
        self.closed = True

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # --- running commands ------------------------------------------------------------------

    def run(self, commands: list[list[bytes]] | deque[list[bytes]]) -> None:
        """Execute commands in order and write all their replies at once. What cannot run now
        (the client blocked, CLIENT PAUSE, or MAX_TURN commands done in this turn) stays in
        `pending` and runs later, in order."""
        engine = self.server.engine
        out = self.out
        queue = commands if type(commands) is deque else deque(commands)
        self.running = True
        self.last_interaction = engine.clock = time.monotonic()    # the LRU clock, per batch
        try:
            paused = engine.pause_end_ms
            done = 0
            while queue:
                if done >= MAX_TURN:              # let the other clients have the loop too
                    self.pending = queue
                    self._later(0)
                    break
                if paused and self._paused(queue[0]):
                    self.pending = queue
                    self._later(0.01)
                    break
                argv = queue.popleft()
                done += 1
                reply = engine.execute(self, argv)
                if reply is not NO_REPLY:
                    encode(reply, self.resp, out)
                elif self.blocked is not None:
                    self.pending = queue
                    break
                if self.close_after_reply or self.closed:
                    break
            else:
                if self.protocol_error is not None:
                    encode(self.protocol_error, self.resp, out)
                    self.close_after_reply = True
        finally:
            self.running = False
        self.parser.auth_required = not self.authenticated and bool(engine.params.requirepass)
        self.flush()
        if engine.shutdown_requested:
            self.server.stop()

    def _later(self, delay: float) -> None:
        """Run the pending commands after `delay` seconds; stop reading until then."""
        if self.transport is not None:
            self.transport.pause_reading()
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, self._resume_now)
        else:
            loop.call_soon(self._resume_now)

    def _paused(self, argv: list[bytes]) -> bool:
        """CLIENT PAUSE is in force for this command: it waits (ALL: every command; WRITE:
        writes, PUBLISH and an EXEC with writes queued), as Redis postpones it."""
        engine = self.server.engine
        if engine.pause_end_ms <= time.time() * 1000:
            engine.pause_end_ms = 0
            return False
        if engine.pause_mode == "all":
            return True
        cmd = engine.lookup(argv)
        if isinstance(cmd, ErrorReply):
            return False
        if cmd.name == "exec":
            return any("write" in queued.flags for queued, _ in self.multi or ())
        return "write" in cmd.flags or cmd.name in ("publish", "spublish")

    def flush(self) -> None:
        self.flush_scheduled = False
        aof = self.server.engine.aof
        if aof is not None and aof.buffer:
            self.server.write_aof(aof)
        out = self.out
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            data = b"".join(out) if len(out) > 1 else out[0]
            self.server.engine.stats.total_net_output_bytes += len(data)
            transport.write(data)
        out.clear()
        if transport is not None and (self.close_after_reply or self.closed) and not transport.is_closing():
            self.server.engine.disconnect(self)
            transport.close()
            return
        if self.subscribed and transport is not None \
                and transport.get_write_buffer_size() > PUBSUB_OUTPUT_LIMIT:
            self.server.engine.disconnect(self)
            transport.abort()

    # --- engine hooks ----------------------------------------------------------------------

    def send(self, reply: Any) -> None:
        if self.closed:          # pushes arrive even under CLIENT REPLY OFF, as in Redis 7.0
            return
        encode(reply, self.resp, self.out)
        if not self.running and not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def close(self) -> None:
        self.close_after_reply = True
        if not self.running:
            self.flush()

    def arm_timeout(self, seconds: float) -> None:
        self.cancel_timer()
        self.timer = asyncio.get_running_loop().call_later(
            seconds, self.server.engine.timeout_block, self)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def resume(self) -> None:
        self.cancel_timer()
        asyncio.get_running_loop().call_soon(self._resume_now)

    def _resume_now(self) -> None:
        if self.closed or self.blocked is not None:
            return
        commands = self.pending
        self.pending = deque()
        self.pending_bytes = 0
        if commands or self.protocol_error is not None:
            self.run(commands)
        if not self.pending and self.blocked is None and self.protocol_error is None \
                and self.transport is not None and not self.closed:
            self.transport.resume_reading()


def _addr(pair: Any) -> str:
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host.startswith("/")   # unix socket
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class Server:
    """Listening sockets, the engine, the periodic tick, and the way to stop."""

    def __init__(self, params: Params) -> None:
        self.engine = Engine(params)
        self.params = params
        self.default_bind = params.bind == "* -::*"
        self.servers: list[asyncio.base_events.Server] = []
        self.stopped: asyncio.Event | None = None
        self.engine.hooks["tcp_port"] = lambda: self.port
        self.engine.hooks["shutdown"] = self.stop
        self.engine.hooks["log"] = lambda message, level="*": log(params, message, level)
        self.port = params.port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        persistence.attach(self.engine)
        hosts = self.params.bind.split()
        for host in hosts:
            optional = host.startswith("-")
            host = host.lstrip("-")
            address = None if host == "*" else "::" if host == "::*" else host
            try:
                server = await loop.create_server(lambda: Connection(self), address, self.params.port,
                                                  backlog=self.params.tcp_backlog, reuse_address=True,
                                                  family=socket.AF_INET6 if host == "::*" else socket.AF_UNSPEC)
            except OSError as error:
                if optional and error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL,
                                                errno.EADDRINUSE):
                    continue
                raise
            self.servers.append(server)
            if self.port == 0:
                self.port = server.sockets[0].getsockname()[1]
        loop.call_later(1 / self.params.hz, self._tick)

    def write_aof(self, aof: Any) -> None:
        """Write (and with appendfsync always, fsync) the AOF before replies go out. When that
        fails under appendfsync always, exit at once: the replies must not be sent (as Redis).
        Otherwise writes are refused with MISCONF until a retry from the tick succeeds."""
        try:
            aof.flush()
        except persistence.PersistenceError as error:
            log(self.params, str(error), "#")
            if self.params.appendfsync == "always":
                log(self.params, "Can't recover from AOF write error when the AOF fsync policy is "
                                 "'always'. Exiting...", "#")
                os._exit(1)

    def _tick(self) -> None:
        """Periodic work; whatever goes wrong is logged and the next tick still comes."""
        if self.stopped is None or self.stopped.is_set():
            return
        try:
            self.engine.tick()
            persistence.tick(self.engine)
        except (persistence.PersistenceError, OSError) as error:
            log(self.params, f"persistence: {error}", "#")
        except Exception as error:  # noqa: BLE001 - the server must keep its timer
            log(self.params, f"internal error in the periodic task: {type(error).__name__}: {error}", "#")
        finally:
            asyncio.get_running_loop().call_later(1 / self.params.hz, self._tick)

    def stop(self) -> None:
        if self.stopped is not None:
            self.stopped.set()

    async def serve(self, on_ready: Any = None) -> None:
        """Listen, call `on_ready()`, and serve until stop(); then close clients and the AOF."""
        await self.start()
        if on_ready is not None:
            on_ready()
        assert self.stopped is not None
        await self.stopped.wait()
        for listener in self.servers:
            listener.close()
        for client in list(self.engine.clients.values()):
            if isinstance(client, Connection) and client.transport is not None:
                client.flush()
                client.transport.close()
        persistence.close(self.engine)


def run(params: Params) -> int:
    """Serve until stopped; returns the process exit code."""
    server = Server(params)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _on_signal, server, signum)
        def ready() -> None:
            if params.pidfile:
                with open(params.pidfile, "w", encoding="ascii") as handle:
                    handle.write(f"{os.getpid()}\n")
            log(params, f"cascade in-memory Redis-compatible server {server.engine.cascade_version} "
                        f"(Redis {server.engine.version} compatible), pid {os.getpid()}")
            log(params, f"Ready to accept connections tcp on port {server.port}")

        await server.serve(ready)
        log(params, "Redis is now ready to exit, bye bye...", "#")

    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(main())
    except OSError as error:
        log(params, f"Failed listening on port {params.port} (tcp), aborting: {error.strerror}", "#")
        return 1
    except persistence.PersistenceError as error:
        log(params, f"Fatal error loading the DB, exiting: {error}", "#")
        return 1
    finally:
        if params.pidfile:
            try:
                os.unlink(params.pidfile)
            except OSError:
                pass
    return 0


def _on_signal(server: Server, signum: int) -> None:
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    log(server.params, f"Received {name} scheduling shutdown...", "#")
    try:
        persistence.shutdown_save(server.engine)
    except persistence.PersistenceError as error:
        log(server.params, f"{error}; exiting anyway", "#")
    server.stop()
