"""`cascade serve --workers N`: one listening socket, N worker processes, one Redis bus.

`supervise(...)` runs in the `cascade serve` process. It resolves Redis as a single process does
(when nothing answers at a local URL it hosts the in-memory server in its own event loop), binds
the port once, and starts N `python -m cascade_cli.hub.workers` processes that inherit the
socket and each run the normal hub (`runner.run(..., sock=, worker=True)`) on that Redis. It
calls `on_started` once every worker listens, restarts a worker that dies (with backoff; a
crash loop ends it with OperationalError), and on SIGINT/SIGTERM stops every worker gracefully
and returns 0 (a second SIGINT kills them: 130). A worker that cannot start raises its error.

Between the supervisor and each worker (its own process group, so a terminal's Ctrl-C reaches
the supervisor only, which forwards it as SIGTERM):
  stdin   the work order (pickled settings, plan and message flags), length-prefixed; the pipe
          then stays open, and EOF (the supervisor is gone) makes the worker stop gracefully.
  stdout  control lines, JSON: {"event": "listening", "pid": P} once serving, or
          {"event": "error", "message", "hint", "exit_code"} when start-up failed. The worker
          points its own fd 1 at stderr, so nothing it prints reaches the user's stdout.
  stderr  messages, copied to the supervisor's stderr as "worker I: LINE".
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cascade_cli.errors import CascadeError, OperationalError

if TYPE_CHECKING:
    from cascade_cli.config import Settings
    from cascade_cli.hub.runner import ServePlan, Started

STARTUP_TIMEOUT = 60.0    # seconds for every worker to listen at start
SHUTDOWN_TIMEOUT = 20.0   # seconds for workers to end gracefully before they are killed
FORCE_TIMEOUT = 5.0       # seconds to wait for killed workers to be gone


@dataclass
class RestartPolicy:
    """When to restart one worker slot, and when to give up on it (a crash loop).

    Pure: the caller says how long the dead worker had run. A worker that ran `stable_after`
    seconds or more starts a fresh count; `max_failures` quick deaths in a row end the service.
    """

    first_delay: float = 0.5
    max_delay: float = 10.0
    stable_after: float = 10.0
    max_failures: int = 5
    failures: int = 0

    def died(self, uptime: float) -> float | None:
        """Seconds to wait before restarting a worker that ran `uptime` seconds; None: give up."""
        if uptime >= self.stable_after:
            self.failures = 0
        self.failures += 1
        if self.failures > self.max_failures:
            return None
        return min(self.first_delay * 2 ** (self.failures - 1), self.max_delay)


def describe_exit(code: int | None) -> str:
    """How a process ended, for messages ("exited with code 1", "was killed by SIGKILL")."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class Worker:
    """One worker process (a restart is a new Worker in the same slot `index`)."""

    def __init__(self, index: int, proc: subprocess.Popen[bytes], restart: bool) -> None:
        self.index = index
        self.proc = proc
        self.pid = proc.pid
        self.restart = restart
        self.spawned = time.monotonic()
        self.listening = False
        self.error: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"worker {self.index} (pid {self.pid})"

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass


class Supervisor:
    """The `cascade serve` process of `--workers N`; see the module docstring."""

    def __init__(self, settings: Settings, plan: ServePlan, count: int,
                 notice: Callable[[str, str], None], on_started: Callable[[Started], None],
                 quiet: bool = False, verbose: bool = False) -> None:
        self.settings = settings
        self.plan = plan
        self.count = count
        self.notice = notice
        self.on_started = on_started
        self.quiet = quiet
        self.verbose = verbose
        self.workers: dict[int, Worker] = {}
        self.policies = {index: RestartPolicy() for index in range(1, count + 1)}
        self.pending_restarts: dict[int, asyncio.TimerHandle] = {}
        self.stderr_lock = threading.Lock()
        self.stopping = False

    async def run(self) -> int:
        from cascade_cli.hub.runner import bind_socket, resolve_redis, stop_embedded

        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        redis_mode, embedded = await resolve_redis(self.settings, self.plan, self.notice)
        try:
            self.sock = bind_socket(self.plan.host, self.plan.port)
        except BaseException:
            stop_embedded(embedded)
            raise
        import pickle

        order = pickle.dumps((self.settings, self.plan, self.quiet, self.verbose))
        self.order = len(order).to_bytes(8, "big") + order
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, self.events.put_nowait, ("signal", None, sig))
        try:
            return await self._serve(redis_mode)
        finally:
            await self._stop_workers()   # after an error; a no-op after a shutdown
            self.sock.close()
            stop_embedded(embedded)      # last: the workers used it until they stopped

    # -- phases ----------------------------------------------------------------------------------

    async def _serve(self, redis_mode: str) -> int:
        from cascade_cli.config import mask_url
        from cascade_cli.hub.runner import Started, listening_urls

        for index in range(1, self.count + 1):
            self._spawn(index)
        waiting = set(self.workers)
        deadline = self.loop.time() + STARTUP_TIMEOUT
        while waiting:
            try:
                kind, worker, detail = await asyncio.wait_for(self.events.get(),
                                                              max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                names = ", ".join(self.workers[i].name for i in sorted(waiting))
                raise OperationalError(f"{names} did not start listening within {STARTUP_TIMEOUT:g} s",
                                       "see the worker messages above; run with -v for details") from None
            if kind == "signal":
                return await self._stop_workers(detail)
            self._control(kind, worker, detail)
            if kind == "listening":
                waiting.discard(worker.index)
            elif kind == "exit":
                raise self._start_failure(worker)
        http_url, ws_url = listening_urls(self.sock)
        pids = ", ".join(str(self.workers[i].pid) for i in sorted(self.workers))
        self.notice("info", f"cascade serve: {self.count} worker processes share {http_url} (pids {pids})")
        self.on_started(Started(http_url, ws_url, redis_mode,
                                mask_url(self.plan.redis_url) if self.plan.bus == "redis" else "",
                                workers=self.count))
        while True:
            kind, worker, detail = await self.events.get()
            if kind == "signal":
                return await self._stop_workers(detail)
            if kind == "spawn-failed":
                raise detail
            if worker is not self.workers.get(worker.index):
                continue   # a process this slot no longer tracks
            self._control(kind, worker, detail)
            if kind == "listening" and worker.restart:
                self.notice("info", f"cascade serve: {worker.name} restarted and listening")
            elif kind == "exit":
                self._died(worker)

    def _control(self, kind: str, worker: Worker, detail: Any) -> None:
        if kind == "listening":
            worker.listening = True
        elif kind == "error":
            worker.error = detail

    def _died(self, worker: Worker) -> None:
        """A worker that had started ended on its own: restart it later, or give up."""
        del self.workers[worker.index]
        how = describe_exit(worker.proc.returncode)
        if worker.error is not None and not worker.listening:
            raise self._start_failure(worker)   # a restart that cannot start: starting again will not help
        uptime = time.monotonic() - worker.spawned
        policy = self.policies[worker.index]
        delay = policy.died(uptime)
        if delay is None:
            raise OperationalError(
                f"worker {worker.index} keeps dying right after it starts ({policy.failures} times in a row "
                f"within {policy.stable_after:g} s of its start; the last one {how}); giving up",
                "see the worker messages above (run with -v for details); the other workers were stopped")
        self.notice("warn", f"cascade serve: {worker.name} {how}; restarting it in {delay:g} s "
                            "(clients of the other workers are not affected)")
        self.pending_restarts[worker.index] = self.loop.call_later(delay, self._restart, worker.index)

    def _restart(self, index: int) -> None:
        self.pending_restarts.pop(index, None)
        if not self.stopping:
            try:
                self._spawn(index, restart=True)
            except OperationalError as exc:
                self.notice("warn", f"cascade serve: {exc.message}")
                self.events.put_nowait(("spawn-failed", None, exc))

    def _start_failure(self, worker: Worker) -> CascadeError:
        """The error that ends the service when `worker` could not start."""
        self.workers.pop(worker.index, None)
        if worker.error is not None:
            error = CascadeError(f"worker {worker.index} could not start: {worker.error.get('message')}",
                                 worker.error.get("hint"))
            error.exit_code = int(worker.error.get("exit_code") or 1)
            return error
        return OperationalError(f"{worker.name} {describe_exit(worker.proc.returncode)} before it listened",
                                "see the worker messages above; run with -v for details")

    async def _stop_workers(self, sig: int | None = None) -> int:
        """SIGTERM every worker and wait for them; a second SIGINT (or the deadline) kills them.
        Returns the exit code of the service: 0 when every worker ended cleanly."""
        self.stopping = True
        for handle in self.pending_restarts.values():
            handle.cancel()
        self.pending_restarts.clear()
        if getattr(self, "sock", None) is not None:   # no restarts from here on: once the workers close their copies
            self.sock.close()       # the port refuses new connections instead of queueing them
        if not self.workers:
            return 0
        if sig is not None:
            self.notice("info", f"cascade serve: stopping {len(self.workers)} workers"
                                + (" (Ctrl-C again to force)" if sig == signal.SIGINT else ""))
        for worker in self.workers.values():
            worker.signal(signal.SIGTERM)
        forced = killed = False
        unclean: list[str] = []
        deadline = self.loop.time() + SHUTDOWN_TIMEOUT
        while self.workers:
            try:
                kind, worker, detail = await asyncio.wait_for(self.events.get(),
                                                              max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                if killed:
                    names = ", ".join(w.name for w in self.workers.values())
                    self.notice("warn", f"cascade serve: {names} still running after SIGKILL; leaving them")
                    self.workers.clear()
                    return 1
                names = ", ".join(w.name for w in self.workers.values())
                self.notice("warn", f"cascade serve: {names} did not stop within {SHUTDOWN_TIMEOUT:g} s; "
                                    "killing them")
                self._kill_all()
                killed = True
                deadline = self.loop.time() + FORCE_TIMEOUT
                continue
            if kind == "signal":
                if detail == signal.SIGINT and not forced:
                    forced = killed = True
                    self._kill_all()
                    deadline = self.loop.time() + FORCE_TIMEOUT
                continue   # a repeated SIGTERM does not interrupt the graceful end
            if kind != "exit" or worker is not self.workers.get(worker.index):
                continue
            del self.workers[worker.index]
            code = worker.proc.returncode
            if code != 0 and not (code == -signal.SIGTERM and not worker.listening) and not forced:
                unclean.append(f"{worker.name} {describe_exit(code)}")
        if forced:
            return 130
        if unclean:
            self.notice("warn", f"cascade serve: {'; '.join(unclean)} while stopping")
            return 1
        return 0

    def _kill_all(self) -> None:
        for worker in self.workers.values():
            worker.signal(signal.SIGKILL)

    # -- processes -------------------------------------------------------------------------------

    def _spawn(self, index: int, restart: bool = False) -> Worker:
        fd = self.sock.fileno()
        args = [sys.executable, "-P", "-m", "cascade_cli.hub.workers", str(index), str(fd)]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(fd,), close_fds=True,
                                    process_group=0)
        except OSError as exc:
            raise OperationalError(f"cannot start worker {index}: {exc.strerror or exc}",
                                   "check the process and file limits (ulimit -u, ulimit -n)") from exc
        worker = Worker(index, proc, restart)
        self.workers[index] = worker
        assert proc.stdin is not None
        try:
            proc.stdin.write(self.order)
            proc.stdin.flush()   # the pipe stays open: its EOF tells the worker we are gone
        except OSError:
            pass                 # it died already: its exit is reported by the watcher
        self._watch(worker)
        return worker

    def _post(self, item: tuple[str, Any, Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)
        except RuntimeError:   # the loop is closed: nobody waits for this any more
            pass

    def _watch(self, worker: Worker) -> None:
        """Threads that copy the worker's stderr, read its control lines, and report its exit
        (after its last message)."""
        proc = worker.proc
        prefix = f"worker {worker.index}: "

        def copy_stderr() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = prefix + raw.decode(errors="replace").rstrip("\r\n") + "\n"
                with self.stderr_lock:
                    try:
                        sys.stderr.write(line)
                        sys.stderr.flush()
                    except (OSError, ValueError):
                        pass

        def control() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("event") in ("listening", "error"):
                    self._post((message["event"], worker, message))
            proc.wait()
            copier.join(5)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
            self._post(("exit", worker, proc.returncode))

        copier = threading.Thread(target=copy_stderr, name=f"worker-{worker.index}-stderr", daemon=True)
        copier.start()
        threading.Thread(target=control, name=f"worker-{worker.index}-control", daemon=True).start()


async def supervise(settings: Settings, plan: ServePlan, count: int, notice: Callable[[str, str], None],
                    on_started: Callable[[Started], None], quiet: bool = False, verbose: bool = False) -> int:
    """Serve plan.host:plan.port with `count` worker processes until a signal; returns the exit
    code (0 after a graceful stop, 130 when forced). Raises cascade errors when it cannot start,
    when a worker cannot start, or when a worker keeps dying (the other workers are stopped)."""
    return await Supervisor(settings, plan, count, notice, on_started, quiet, verbose).run()


# -- the worker process --------------------------------------------------------------------------

def _read_order(fd: int) -> bytes:
    def exactly(size: int) -> bytes:
        chunks = []
        while size:
            chunk = os.read(fd, size)
            if not chunk:
                raise EOFError("the supervisor closed the pipe before the work order")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    return exactly(int.from_bytes(exactly(8), "big"))


async def _serve_worker(settings: Settings, plan: ServePlan, sock: socket.socket,
                        notice: Callable[[str, str], None], on_started: Callable[[Any], None]) -> int:
    from cascade_cli.hub.runner import run

    loop = asyncio.get_running_loop()

    def supervisor_gone() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            os.kill(os.getpid(), signal.SIGTERM)   # the graceful path, as if the supervisor asked

    loop.add_reader(0, supervisor_gone)
    return await run(settings, plan, notice, on_started, sock=sock, worker=True)


def worker_main(argv: list[str]) -> int:
    """`python -m cascade_cli.hub.workers INDEX FD`, started by the supervisor only."""
    import pickle

    from cascade_cli.output import Messages

    if len(argv) != 2 or os.isatty(0):
        sys.stderr.write("this is a worker of `cascade serve --workers N`; run that instead\n")
        return 2
    fd = int(argv[1])
    settings, plan, quiet, verbose = pickle.loads(_read_order(0))
    control = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)   # whatever this process prints is a message: stderr
    messages = Messages(quiet=quiet, verbose=verbose, no_color=True)

    def report(message: dict[str, Any]) -> None:
        try:
            control.write(json.dumps(message) + "\n")
        except OSError:
            pass

    def notice(kind: str, text: str) -> None:
        (messages.warn if kind == "warn" else messages.info)(text)

    sock = socket.socket(fileno=fd)
    try:
        return _run_loop(_serve_worker(settings, plan, sock, notice,
                                       lambda info: report({"event": "listening", "pid": os.getpid()})))
    except CascadeError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        report({"event": "error", "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
        return exc.exit_code
    except SystemExit:   # uvicorn's start-up failure (its reason is in the messages above)
        return 1


def _run_loop(coro: Any) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return int(asyncio.run(coro))
    return int(uvloop.run(coro))


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
