"""Spread a workload over N processes, run its tests in step, merge what they measured.

The caller builds a picklable `Workload` (its `tests` and an async `run(test, share, control)`
that returns one `Measurement`) and calls `run_workload()`. Each worker process runs every test
in order, in step with the others (a barrier before each test); the parent merges each test's
measurements, draws the progress line on stderr and turns Ctrl-C into an early, orderly stop:
workers finish the current test with what they measured (marked `interrupted`) and skip the
rest. Errors in a worker come back as `WorkerFailed` with the worker's message and hint.
"""

from __future__ import annotations

import asyncio
import functools
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cascade_cli.bench.pacing import SPIN_NS
from cascade_cli.bench.results import Measurement, merge
from cascade_cli.errors import CascadeError, OperationalError

BARRIER_TIMEOUT = 120.0
START_DELAY_NS = 5_000_000  # every process starts a test at the same instant, this long after the barrier
PROGRESS_EVERY = 0.05       # seconds between a load process's progress reports (and stop checks)


@dataclass(frozen=True)
class Share:
    """This process's part of the load. `requests` is None in duration mode; `rate` (ops/s of this
    process) is None in the closed loop, and `rate_offset` staggers the processes' schedules so
    that together they send evenly."""

    index: int
    processes: int
    clients: int
    first_client: int
    total_clients: int
    requests: int | None
    duration: float | None
    rate: float | None
    rate_offset: float
    warmup: float



def split(total: int, count: int) -> list[int]:
    """`total` spread over `count` parts as evenly as possible (the first parts take the rest)."""
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


@dataclass(frozen=True)
class Plan:
    """The whole load: `clients` connections over `processes` processes."""

    clients: int
    processes: int
    requests: int | None
    duration: float | None
    rate: float | None
    warmup: float

    @property
    def used_processes(self) -> int:
        """The processes that run: one at least, and no more than there are clients."""
        return max(1, min(self.processes, self.clients))

    def shares(self) -> list[Share]:
        processes = self.used_processes
        per_clients = split(self.clients, processes)
        per_client_requests = split(self.requests or 0, self.clients)
        shares, first = [], 0
        for i in range(processes):
            rate = self.rate * per_clients[i] / self.clients if self.rate else None
            # process i takes every processes-th slot of the combined schedule
            offset = first / (self.rate * per_clients[i]) if self.rate else 0.0
            shares.append(Share(index=i, processes=processes, clients=per_clients[i], first_client=first,
                                total_clients=self.clients,
                                requests=(sum(per_client_requests[first:first + per_clients[i]])
                                          if self.requests is not None else None),
                                duration=self.duration, rate=rate, rate_offset=offset, warmup=self.warmup))
            first += per_clients[i]
        return shares


class Control:
    """What a workload reads and reports while it runs: `start_ns` (the instant, on
    `time.monotonic_ns()`, at which every process starts this test: `await wait_start()` and
    start the open-loop schedule there, so the processes' offsets interleave), `stopping()`
    (Ctrl-C or an error elsewhere: finish now with what was measured) and `progress(done)`
    (measured requests so far in this test, for the progress line; cheap enough to call every few
    milliseconds); `watch()` runs both for a test."""

    def __init__(self, index: int, slots: Any, stop: Any, start_at: Any = None) -> None:
        self._index = index
        self._slots = slots
        self._stop = stop
        self._start_at = start_at

    @property
    def start_ns(self) -> int:
        return int(self._start_at.value) if self._start_at is not None else time.monotonic_ns()

    async def wait_start(self) -> int:
        """Wait until `start_ns` (not a moment before: see `sleep_until()`); returns it."""
        start = self.start_ns
        await sleep_until(start)
        return start

    def stopping(self) -> bool:
        return self._stop.is_set()

    def progress(self, done: int) -> None:
        self._slots[self._index] = done

    def watch(self, done: Callable[[], int], on_stop: Callable[[], None]) -> asyncio.Future[None]:
        """Start the test's ticker: every PROGRESS_EVERY seconds it reports `done()` as progress
        and, once stopping() is true, calls `on_stop()` (on every tick: make it idempotent; it
        should send nothing new). Cancel the returned task when the test ends."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY)
                self.progress(done())
                if self.stopping():
                    on_stop()

        return asyncio.ensure_future(tick())


async def sleep_until(instant_ns: int) -> None:
    """Return once `time.monotonic_ns()` has reached `instant_ns`. The event loop's timers may
    fire up to a millisecond early (uvloop's among them), so this sleeps until SPIN_NS before
    the instant and spins for the rest, yielding to the loop."""
    delay = instant_ns - time.monotonic_ns()
    if delay > SPIN_NS:
        await asyncio.sleep((delay - SPIN_NS) / 1e9)
    while time.monotonic_ns() < instant_ns:
        await asyncio.sleep(0)


class Workload(Protocol):
    tests: list[str]

    async def run(self, test: str, share: Share, control: Control) -> Measurement: ...


class WorkerFailed(OperationalError):
    """A worker process stopped with an error; message and hint are the worker's."""


OPEN_LOOP_OPS_PER_PROCESS = 40_000


def is_local(url: str) -> bool:
    """True when `url` points at this machine (loopback address, localhost or a unix socket)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    return parts.scheme == "unix" or host in ("localhost", "::1") or host.startswith("127.")


def default_processes(rate: float | None = None, *, local: bool = False,
                      ops_per_process: float = OPEN_LOOP_OPS_PER_PROCESS) -> int:
    """One process per core this process may run on, one core fewer when the target is on this
    machine (`local`: the server needs a core too; measured on 2 cores against a local
    redis-server, one process gave the same ops/s as two and a third of the p99). In the open
    loop (`rate`), one per `ops_per_process` ops/s up to that: an open-loop process spins to send
    on time, and spinning processes that are not needed take CPU from the server."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        cores = max(1, os.cpu_count() or 1)
    usable = max(1, cores - 1) if local else cores
    if rate:
        return max(1, min(usable, math.ceil(rate / ops_per_process)))
    return usable


def _install_fast_loop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def _stamp_start(start_at: Any) -> None:
    """The barrier's action (run once, by the last process to arrive): the common start."""
    start_at.value = time.monotonic_ns() + START_DELAY_NS


def _worker_main(workload: Workload, share: Share, conn: Any, slots: Any, stop: Any, barrier: Any,
                 start_at: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _install_fast_loop()
    control = Control(share.index, slots, stop, start_at)

    async def main() -> None:
        for test in workload.tests:
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait, BARRIER_TIMEOUT)
            if stop.is_set():
                break
            slots[share.index] = 0
            measurement = await workload.run(test, share, control)
            conn.send(("result", measurement.to_dict()))
        closer = getattr(workload, "close", None)
        if closer is not None:
            await closer()

    try:
        asyncio.run(main())
        conn.send(("done",))
    except CascadeError as exc:
        conn.send(("error", exc.message, exc.hint))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints one line
        if type(exc).__name__ == "BrokenBarrierError":
            conn.send(("done",))
        else:
            conn.send(("error", f"load generator failed: {type(exc).__name__}: {exc}",
                       "rerun with --processes 1 -v to see more"))
    finally:
        conn.close()


class ProgressLine:
    """`test [#####.....] 45%  112,345 ops/s` on stderr, redrawn in place; only when enabled."""

    def __init__(self, enabled: bool, stream: Any = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.shown = 0

    def draw(self, test: str, done: int, fraction: float | None, rate: float) -> None:
        if not self.enabled:
            return
        if fraction is None:
            bar = ""
        else:
            fraction = max(0.0, min(1.0, fraction))  # --duration: connecting, warmup and draining lie outside
            filled = int(fraction * 20)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] {fraction * 100:3.0f}%  "
        line = f"{test:<10} {bar}{done:>11,} done  {rate:>12,.0f} ops/s"
        self.stream.write("\r" + line.ljust(self.shown))
        self.stream.flush()
        self.shown = len(line)

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0


@dataclass
class Outcome:
    """Every finished test, merged, in order; `interrupted` when Ctrl-C cut the run short."""

    results: list[Measurement]
    interrupted: bool


def mp_context() -> Any:
    """The multiprocessing context of the load processes (fork where there is one): make the
    shared arrays, locks and events a workload passes to them with it."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_workload(workload: Workload, plan: Plan, *, progress: ProgressLine | None = None,
                 on_result: Callable[[Measurement], None] | None = None) -> Outcome:
    """Run every test of `workload` under `plan`; returns the merged measurements. Raises
    WorkerFailed when a worker fails (after stopping the others)."""
    ctx = mp_context()
    shares = plan.shares()
    slots = ctx.RawArray("q", len(shares))
    stop = ctx.Event()
    start_at = ctx.RawValue("q", 0)
    barrier = ctx.Barrier(len(shares), action=functools.partial(_stamp_start, start_at))
    workers = []
    for share in shares:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(workload, share, child_end, slots, stop, barrier, start_at),
                           name=f"cascade-bench-{share.index}", daemon=True)
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
    line = progress or ProgressLine(False)
    results: list[Measurement] = []
    pending: dict[int, Measurement] = {}
    open_conns = {i: conn for i, (_, conn) in enumerate(workers)}
    failure: tuple[str, str | None] | None = None
    interrupted = False
    test_index, test_started, last = 0, time.monotonic(), (time.monotonic(), 0)
    rate = 0.0
    try:
        while open_conns:
            try:
                ready = multiprocessing.connection.wait(list(open_conns.values()), timeout=0.2)
            except KeyboardInterrupt:
                if interrupted:  # a second Ctrl-C: stop waiting for the workers
                    raise
                interrupted = True
                stop.set()
                continue
            for conn in ready:
                index = next(i for i, c in open_conns.items() if c is conn)
                try:
                    message = conn.recv()
                except EOFError:
                    message = ("error", f"load generator process {index} died unexpectedly",
                               "rerun with --processes 1 -v to see more")
                if message[0] == "result":
                    pending[index] = Measurement.from_dict(message[1])
                    continue
                if message[0] == "error" and failure is None:
                    failure = (message[1], message[2])
                    stop.set()
                    barrier.abort()
                del open_conns[index]
            if pending and all(i in pending for i in open_conns):
                merged = merge([pending[i] for i in sorted(pending)])
                merged.interrupted = merged.interrupted or interrupted
                results.append(merged)
                pending.clear()
                line.clear()
                if on_result is not None:
                    on_result(merged)
                test_index += 1
                test_started, last = time.monotonic(), (time.monotonic(), 0)
            if test_index < len(workload.tests) and not stop.is_set():
                now, done = time.monotonic(), sum(slots)
                if now - last[0] >= 0.25:
                    rate = (done - last[1]) / (now - last[0]) if done >= last[1] else 0.0
                    last = (now, done)
                fraction = None
                if plan.requests:
                    fraction = done / plan.requests
                elif plan.duration:
                    fraction = (now - test_started - plan.warmup) / plan.duration
                line.draw(workload.tests[test_index], done, fraction, rate)
    finally:
        line.clear()
        stop.set()
        for proc, conn in workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            conn.close()
    if failure is not None:
        raise WorkerFailed(failure[0], failure[1])
    return Outcome(results=results, interrupted=interrupted or any(m.interrupted for m in results))


def check_plan(clients: int, requests: int | None, duration: float | None, rate: float | None) -> None:
    """Reject impossible combinations before any process starts."""
    from cascade_cli.errors import UsageError

    if requests is not None and duration is not None:
        raise UsageError("give --requests or --duration, not both",
                         "--requests N stops after N measured requests, --duration S after S seconds")
    if rate is not None and (rate <= 0 or math.isinf(rate) or math.isnan(rate)):
        raise UsageError(f"--rate must be a positive number of operations per second, got {rate}")
    if clients < 1:
        raise UsageError("--clients must be at least 1")
