"""`cascade serve --workers N`: worker processes on one port, joined through the Redis bus.

Real `cascade serve --workers 2` processes, real sockets, a real redis-server (and the in-memory
server the supervisor hosts when none answers). Which worker a connection lands on is the
kernel's choice, so the tests open clients until both workers have some, and tell them apart by
asking one worker (over one keep-alive connection) which clients it holds. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import cascade_command, free_port
from hub_support import Serve, clean_env, read_events, start_serve, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cascade_cli.hub.workers import RestartPolicy, describe_exit

pytestmark = pytest.mark.timeout(90)

CHANNEL = "cascade-events"
RECV = 5.0
MAX_CLIENTS = 40
"""Clients opened at most while looking for one on each worker."""


# ---- helpers ----------------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def open_client(serve: Serve, stack: ExitStack) -> tuple[ClientConnection, str]:
    """A WebSocket client on CHANNEL (closed by `stack`) and its client id."""
    ws = stack.enter_context(connect(serve.ws(f"/{CHANNEL}?batch=0"), open_timeout=RECV, close_timeout=2,
                                     compression=None))
    message = json.loads(ws.recv(RECV))
    assert message["type"] == "connected", message
    return ws, message["client_id"]


def ask_one_worker(serve: Serve) -> tuple[str, set[str]]:
    """(instance, its client ids), both from the one worker a fresh connection lands on."""
    with httpx.Client(base_url=serve.http_url, timeout=RECV, trust_env=False) as http:
        instance = http.get("/health").json()["instance"]
        clients = {c["client_id"] for c in http.get("/api/clients").json()["clients"]}
        assert http.get("/health").json()["instance"] == instance, "the keep-alive connection moved"
    return instance, clients


def clients_on_both(serve: Serve, stack: ExitStack) -> tuple[list[ClientConnection], list[ClientConnection]]:
    """Open clients until both workers of a 2-worker serve hold some: (on the worker one probe
    reached, on the other). Every client opened stays open (closed by `stack`)."""
    opened: dict[str, ClientConnection] = {}
    for _ in range(MAX_CLIENTS):
        ws, client_id = open_client(serve, stack)
        opened[client_id] = ws
        _, here = ask_one_worker(serve)
        assert here <= set(opened), f"a worker lists clients this test did not open: {here - set(opened)}"
        there = set(opened) - here
        if here and there:
            return [opened[c] for c in sorted(here)], [opened[c] for c in sorted(there)]
    raise AssertionError(f"{MAX_CLIENTS} connections all landed on one worker")


def publish_ws(ws: ClientConnection, data: Any) -> None:
    ws.send(json.dumps({"op": "publish", "channel": CHANNEL, "data": data}))


def receives(ws: ClientConnection, data: Any) -> list[dict[str, Any]]:
    return read_events(ws, lambda events: any(e["data"] == data for e in events), timeout=RECV)


def closed_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent (None: no close frame)."""
    try:
        while True:
            ws.recv(RECV)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except TimeoutError:
        raise AssertionError("the connection stayed open") from None


def start_workers(tmp_path: Path, *args: str) -> Serve:
    return start_serve(tmp_path, "--workers", "2", *args)


# ---- the restart policy (pure) ----------------------------------------------------------------


def test_restart_policy_backs_off_then_gives_up_on_a_crash_loop() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3, stable_after=10, max_failures=4)
    assert [policy.died(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3, None]


def test_restart_policy_forgets_deaths_after_a_stable_run() -> None:
    policy = RestartPolicy(first_delay=0.5, stable_after=10, max_failures=2)
    assert policy.died(0.2) == 0.5
    assert policy.died(0.2) == 1.0
    assert policy.died(60) == 0.5     # it had run long enough: not a crash loop
    assert policy.died(0.1) == 1.0
    assert policy.died(0.1) is None


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"


# ---- real processes -----------------------------------------------------------------------------


def test_workers_share_events_survive_a_killed_worker_and_stop_on_sigterm(tmp_path: Path,
                                                                          redis_server: Any) -> None:
    serve = start_workers(tmp_path, "--redis-url", redis_server.url)
    with serve, ExitStack() as stack:
        assert serve.info["workers"] == 2 and serve.info["redis"] == "redis"
        pids = wait_for(lambda: (found := children(serve.proc.pid)) and len(found) == 2 and found,
                        what="two worker processes")
        here, there = clients_on_both(serve, stack)

        # published on one worker, received on the other, both ways
        publish_ws(here[0], "from-here")
        receives(there[0], "from-here")
        publish_ws(there[0], "from-there")
        receives(here[0], "from-there")

        # SIGKILL one worker: its clients are cut, the other worker's clients keep receiving
        last = serve.get(f"/api/channels/{CHANNEL}/history", params={"limit": 1}).json()["events"][-1]
        assert last["data"] == "from-there"
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not alive(victim), what="the killed worker to be gone")
        response = serve.post(f"/api/channels/{CHANNEL}/publish", json={"data": "after-kill"})
        assert response.status_code == 200, response.text
        cut, kept = [], []
        for group in (here, there):
            for ws in group:
                try:
                    receives(ws, "after-kill")
                    kept.append(ws)
                except (ConnectionClosed, AssertionError):
                    cut.append(ws)
        assert (cut, kept) in ((here, there), (there, here)), "exactly the killed worker's clients are cut"

        # the supervisor restarts it
        new = wait_for(lambda: (found := children(serve.proc.pid)) and len(found) == 2 and found - pids,
                       what="a restarted worker")
        assert pids - {victim} <= children(serve.proc.pid)
        wait_for(lambda: f"pid {next(iter(new))}) restarted and listening" in serve.stderr(),
                 what="the restart reported")
        assert f"pid {victim}) was killed by SIGKILL; restarting" in serve.stderr()
        response = serve.post(f"/api/channels/{CHANNEL}/publish", json={"data": "after-restart"})
        assert response.status_code == 200, response.text
        receives(kept[0], "after-restart")

        # a cut client reconnects (to either worker) and resumes from its last id: no gap
        others: list[dict[str, Any]] = []
        resumed = stack.enter_context(connect(serve.ws(f"/{CHANNEL}?since={last['id']}"), open_timeout=RECV))
        got = read_events(resumed, lambda events: len(events) >= 2, timeout=RECV, others=others)
        assert [e["data"] for e in got] == ["after-kill", "after-restart"]
        assert [m["type"] for m in others] == ["connected"]

        # SIGTERM: every worker ends gracefully (clients get 1001), the supervisor exits 0
        workers = children(serve.proc.pid)
        assert serve.stop() == 0, serve.stderr()
        assert closed_code(kept[0]) == 1001
        assert not any(alive(pid) for pid in workers)
        assert serve.proc.stdout is not None and serve.proc.stdout.read() == ""   # the URLs, once


def test_workers_share_the_in_memory_server_the_supervisor_hosts(tmp_path: Path) -> None:
    serve = start_workers(tmp_path, "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    with serve, ExitStack() as stack:
        assert serve.info["redis"] == "embedded" and serve.info["workers"] == 2
        here, there = clients_on_both(serve, stack)
        publish_ws(there[0], {"n": 1})
        receives(here[0], {"n": 1})
        publish_ws(here[0], {"n": 2})
        receives(there[0], {"n": 2})
        workers = children(serve.proc.pid)
        assert len(workers) == 2
        assert serve.stop() == 0, serve.stderr()
        assert not any(alive(pid) for pid in workers)
    assert serve.stderr().count("started cascade's in-memory Redis-compatible server") == 1


def test_workers_need_the_redis_bus(tmp_path: Path) -> None:
    result = subprocess.run([*cascade_command(), "serve", "--workers", "2", "--bus", "local", "--port", "0"],
                            check=False, capture_output=True, text=True, env=clean_env(tmp_path), cwd=tmp_path,
                            timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "need the Redis bus" in result.stderr and "hint:" in result.stderr


def test_one_worker_is_the_single_process(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--workers", "1", "--bus", "local") as serve:
        assert serve.info["workers"] == 1
        assert children(serve.proc.pid) == set()
        assert serve.stop() == 0
