"""A real 3-master Redis Cluster (no replicas) on free loopback ports, for tests that need one.

`start_cluster(directory)` starts three `redis-server --cluster-enabled yes` processes, joins
them with `redis-cli --cluster create` and waits for `cluster_state:ok` on every node; it
returns a `Cluster` (`urls`, `ports`, `stop_node(i)`, `start_node(i)`, `wait_ok()`,
`node_for_channel(name)`, `close()`). Tests take the session's cluster with the `cluster`
fixture of conftest.py (one cluster for the whole run: a test that stops a node or moves a
slot puts it back).

It skips when redis-server or redis-cli is missing, or fails under CASCADE_TEST_REQUIRE_REDIS=1.
The nodes run with `cluster-require-full-coverage no`, so the masters still up keep serving
their slots while one is stopped, which is how a hub keeps serving the other shards.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE_REDIS, free_port

MASTERS = 3
NODE_TIMEOUT_MS = 2000
"""Short enough that the other masters flag a stopped one FAIL within seconds, long enough that
a busy 2-core machine does not make a live node look failed."""
START_TIMEOUT = 20.0


def cluster_binaries() -> tuple[str, str]:
    """Paths of redis-server and redis-cli; skips, or fails under CASCADE_TEST_REQUIRE_REDIS=1."""
    server = shutil.which("redis-server")
    cli = shutil.which("redis-cli")
    if server and cli:
        return server, cli
    missing = " and ".join(name for name, path in (("redis-server", server), ("redis-cli", cli)) if not path)
    reason = f"{missing} not installed (apt-get install redis-server); needed for Redis Cluster tests"
    if REQUIRE_REDIS:
        pytest.fail(f"CASCADE_TEST_REQUIRE_REDIS=1 but {reason}")
    pytest.skip(reason)


def _command(port: int, *args: str, timeout: float = 2.0) -> Any:
    """One command over a fresh connection, replies decoded (RESP2); raises OSError when unreachable."""
    import redis

    client = redis.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                         protocol=2, decode_responses=True)
    try:
        return client.execute_command(*args)
    except redis.ConnectionError as exc:
        raise OSError(str(exc)) from exc
    finally:
        client.close()


@dataclass
class Cluster:
    """A running cluster; node `i` listens on `ports[i]` (its bus on `bus_ports[i]`)."""

    directory: Path
    server: str
    cli: str
    ports: list[int]
    bus_ports: list[int]
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    started_in: float = 0.0
    """Seconds from the first redis-server spawn to cluster_state:ok everywhere."""

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    @property
    def url(self) -> str:
        """The URL of node 0, a good startup node while node 0 runs."""
        return self.urls[0]

    def node_name(self, i: int) -> str:
        """`host:port` of node `i`, as redis-py names cluster nodes."""
        return f"127.0.0.1:{self.ports[i]}"

    def running(self) -> list[int]:
        return [i for i, proc in enumerate(self.procs) if proc is not None and proc.poll() is None]

    # -- processes ----------------------------------------------------------------------------

    def _spawn(self, i: int) -> None:
        node_dir = self.directory / f"node{i}"
        node_dir.mkdir(exist_ok=True)
        args = [self.server, "--port", str(self.ports[i]), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(self.bus_ports[i]),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-require-full-coverage", "no",
                "--save", "", "--appendonly", "no", "--dir", str(node_dir),
                "--logfile", str(node_dir / "redis.log")]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if len(self.procs) <= i:
            self.procs.extend([None] * (i + 1 - len(self.procs)))
        self.procs[i] = proc

    def _wait_listening(self, i: int, timeout: float = 10.0) -> None:
        proc = self.procs[i]
        assert proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server node {i} exited with {proc.returncode}; "
                                   f"see {self.directory / f'node{i}' / 'redis.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.ports[i]), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server node {i} did not listen on {self.ports[i]}")

    def stop_node(self, i: int, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop node `i` with `sig` (SIGTERM or SIGKILL) and wait until it has exited. Its
        nodes.conf stays, so `start_node(i)` brings it back with the same id and slots."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def start_node(self, i: int) -> None:
        """Restart node `i` on its ports with its nodes.conf; returns once it listens (call
        `wait_ok()` to wait until the cluster agrees it is back)."""
        if i in self.running():
            return
        self._spawn(i)
        self._wait_listening(i)

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL if one lingers)."""
        for i in range(len(self.procs)):
            self.stop_node(i)

    # -- state --------------------------------------------------------------------------------

    def info(self, i: int) -> dict[str, str]:
        """`CLUSTER INFO` of node `i` as a dict."""
        text = _command(self.ports[i], "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def wait_ok(self, timeout: float = 15.0) -> None:
        """Wait until every running node says cluster_state:ok and knows no failed node."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                if all(self._node_ok(i) for i in self.running()):
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        states = {i: self._describe(i) for i in self.running()}
        raise AssertionError(f"cluster not ok after {timeout} s: {states} {last or ''}")

    def _node_ok(self, i: int) -> bool:
        if self.info(i).get("cluster_state") != "ok":
            return False
        nodes = _command(self.ports[i], "CLUSTER", "NODES")
        # Every running node is known as connected and not flagged failing by node i.
        lines = [line.split() for line in nodes.splitlines() if line.strip()]
        live_ports = {self.ports[j] for j in self.running()}
        for parts in lines:
            port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
            if port in live_ports and ("fail" in parts[2] or "fail?" in parts[2] or parts[7] != "connected"):
                return False
        return True

    def wait_failed(self, i: int, timeout: float = 15.0) -> None:
        """Wait until every running node flags stopped node `i` as failed (FAIL, not PFAIL):
        the cluster has noticed the outage, as it would a crashed machine's."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._flags(j, i) and "fail" in self._flags(j, i).split(",") for j in self.running()):
                return
            time.sleep(0.05)
        raise AssertionError(f"node {i} was not flagged failed within {timeout} s")

    def _flags(self, j: int, i: int) -> str:
        """The flags node `j` gives node `i` in CLUSTER NODES ('' when unknown)."""
        for line in _command(self.ports[j], "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[1].split("@")[0].endswith(f":{self.ports[i]}"):
                return parts[2]
        return ""

    def _describe(self, i: int) -> str:
        try:
            return self.info(i).get("cluster_state", "?")
        except OSError as exc:
            return f"unreachable ({exc})"

    def node_id(self, i: int) -> str:
        return _command(self.ports[i], "CLUSTER", "MYID")

    def move_slot(self, slot: int, to: int) -> None:
        """Hand `slot` (which must hold no keys) from its owner to node `to`, the way a reshard
        does (IMPORTING / MIGRATING, then SETSLOT NODE everywhere), and wait for agreement."""
        source = next(i for first, last, i in self.slots() if first <= slot <= last)
        if source == to:
            return
        target_id, source_id = self.node_id(to), self.node_id(source)
        _command(self.ports[to], "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        _command(self.ports[source], "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        if _command(self.ports[source], "CLUSTER", "COUNTKEYSINSLOT", str(slot)):
            raise AssertionError(f"slot {slot} holds keys; move_slot only moves empty slots")
        for i in [to, source, *(j for j in self.running() if j not in (to, source))]:
            _command(self.ports[i], "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(_owner_of(_command(self.ports[j], "CLUSTER", "SLOTS"), slot) == self.ports[to]
                   for j in self.running()):
                return
            time.sleep(0.05)
        raise AssertionError(f"the nodes did not agree that slot {slot} moved to node {to}")

    def slots(self) -> list[tuple[int, int, int]]:
        """(first slot, last slot, node index) for every slot range, asked of a running node."""
        for i in self.running():
            try:
                reply = _command(self.ports[i], "CLUSTER", "SLOTS")
            except OSError:
                continue
            return [(int(r[0]), int(r[1]), self.ports.index(int(r[2][1]))) for r in reply]
        raise AssertionError("no cluster node is running")

    def node_for_channel(self, name: str) -> int:
        """Index of the node owning the slot of key or shard channel `name` (hash tags apply)."""
        from redis.crc import key_slot

        slot = key_slot(name.encode())
        for first, last, i in self.slots():
            if first <= slot <= last:
                return i
        raise AssertionError(f"slot {slot} of {name!r} is not covered")

    def channels_per_node(self, make: Callable[[int], str], per_node: int = 1, limit: int = 10_000) -> list[list[str]]:
        """`per_node` names `make(n)` (n = 0, 1, ...) owned by each node: `result[i]` are node i's."""
        from redis.crc import key_slot

        ranges = self.slots()
        found: list[list[str]] = [[] for _ in self.ports]
        for n in range(limit):
            name = make(n)
            slot = key_slot(name.encode())
            owner = next(i for first, last, i in ranges if first <= slot <= last)
            if len(found[owner]) < per_node:
                found[owner].append(name)
            if all(len(names) >= per_node for names in found):
                return found
        raise AssertionError(f"no {per_node} names per node among {limit}")


def start_cluster(directory: Path) -> Cluster:
    """Start a 3-master cluster in `directory`; `Cluster.started_in` says how long it took."""
    server, cli = cluster_binaries()
    started = time.monotonic()
    cluster = Cluster(directory, server, cli, [free_port() for _ in range(MASTERS)],
                      [free_port() for _ in range(MASTERS)])
    try:
        for i in range(MASTERS):
            cluster._spawn(i)
        for i in range(MASTERS):
            cluster._wait_listening(i)
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=False, capture_output=True, text=True, timeout=START_TIMEOUT,
            stdin=subprocess.DEVNULL)
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed ({create.returncode}): "
                               f"{create.stdout[-2000:]} {create.stderr[-2000:]}")
        cluster.wait_ok(START_TIMEOUT)
    except BaseException:
        cluster.close()
        raise
    cluster.started_in = time.monotonic() - started
    return cluster


def _owner_of(cluster_slots: list[Any], slot: int) -> int | None:
    """Port of the master serving `slot` in a CLUSTER SLOTS reply."""
    for entry in cluster_slots:
        if int(entry[0]) <= slot <= int(entry[1]):
            return int(entry[2][1])
    return None
