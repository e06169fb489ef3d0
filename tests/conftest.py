"""Shared fixtures: the real CLI in a clean environment, the Venice stand-in, a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from venice_standin import StandIn

REQUIRE_REDIS = os.environ.get("CASCADE_TEST_REQUIRE_REDIS") == "1"


def cascade_command() -> list[str]:
    """The installed `cascade` console script, or `python -m cascade_cli` when it is missing."""
    script = Path(sysconfig.get_path("scripts")) / "cascade"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cascade_cli"]


@dataclass
class Sandbox:
    """A clean home, XDG config dir and working dir, and the environment that points at them."""

    root: Path
    env: dict[str, str]

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    @property
    def user_config(self) -> Path:
        return self.root / "xdg" / "cascade" / "config.toml"

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real CLI; stdout and stderr are captured separately."""
        return subprocess.run([*cascade_command(), *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=cwd or self.cwd, timeout=timeout)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    for name in ("home", "xdg", "work"):
        (tmp_path / name).mkdir()
    # Tests only talk to 127.0.0.1: no proxy from the machine may get in the way.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CASCADE_", "VENICE_")) and k not in ("NO_COLOR", "TERM")
           and not k.lower().endswith("_proxy")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               PYTHONDONTWRITEBYTECODE="1")
    # Retries in tests wait milliseconds, not seconds, unless a test asks otherwise.
    env["CASCADE_VENICE_BACKOFF"] = "0.01"
    return Sandbox(tmp_path, env)


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def run_in_pty(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns what the terminal got."""
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen([*cascade_command(), *args], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, env=env, cwd=cwd, close_fds=True)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """Path of redis-server (or valkey-server); skips, or fails under CASCADE_TEST_REQUIRE_REDIS=1."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    reason = "redis-server is not installed (apt-get install redis-server); needed for real-Redis tests"
    if REQUIRE_REDIS:
        pytest.fail(f"CASCADE_TEST_REQUIRE_REDIS=1 but {reason}")
    pytest.skip(reason)


@dataclass
class RedisServer:
    port: int
    password: str | None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _start_redis(tmp: Path, password: str | None) -> tuple[subprocess.Popen[bytes], RedisServer]:
    port = free_port()
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp)]
    if password:
        args += ["--requirepass", password]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, RedisServer(port, password)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"redis-server did not start on port {port}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, without a password."""
    proc, server = _start_redis(tmp_path_factory.mktemp("redis"), None)
    yield server
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def redis_server_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server that requires a password."""
    proc, server = _start_redis(tmp_path_factory.mktemp("redis-auth"), "hunter2-redis")
    yield server
    proc.terminate()
    proc.wait(10)


# --- the in-memory server, and differential fixtures over both engines ---------------------------

def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{what} did not start on port {port}")


@dataclass
class EngineServer:
    """A running server for the differential suite: `name` is 'redis' or 'memory'."""

    name: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_memory_server(directory: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start `python -m cascade_cli.resp` on a free port with redis-server style options."""
    port = free_port()
    args = [sys.executable, "-m", "cascade_cli.resp", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(directory), *options]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(directory / "server.log", "ab"))
    _wait_port(port, proc, "the in-memory server")
    return proc, port


def start_real_server(directory: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server on a free port with the given extra options."""
    port = free_port()
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(directory), *options]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "redis-server")
    return proc, port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineServer]:
    """The in-memory server, one per test session."""
    directory = tmp_path_factory.mktemp("memory")
    proc, port = start_memory_server(directory)
    yield EngineServer("memory", port, directory, proc)
    _stop(proc)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineServer]:
    """A real redis-server for the differential suite (skips or fails when not installed)."""
    directory = tmp_path_factory.mktemp("real")
    proc, port = start_real_server(directory)
    yield EngineServer("redis", port, directory, proc)
    _stop(proc)


@pytest.fixture(params=["redis", "memory"])
def engine_server(request: pytest.FixtureRequest) -> EngineServer:
    """Each test runs twice: against real redis-server and against the in-memory server,
    both flushed first."""
    server: EngineServer = request.getfixturevalue(f"{'real' if request.param == 'redis' else 'memory'}_server")
    from resp_support import RawClient
    client = RawClient(server.port)
    client.call("FLUSHALL")
    client.close()
    return server


@pytest.fixture
def r(engine_server: EngineServer) -> Iterator[Any]:
    """A redis-py client speaking RESP3 (redis-py 8's default) on each engine in turn."""
    import redis
    client = redis.Redis(port=engine_server.port, protocol=3)
    yield client
    client.close()


@pytest.fixture
def r2(engine_server: EngineServer) -> Iterator[Any]:
    """A redis-py client speaking RESP2 on each engine in turn."""
    import redis
    client = redis.Redis(port=engine_server.port, protocol=2)
    yield client
    client.close()


@pytest.fixture
def pair(real_server: EngineServer, memory_server: EngineServer) -> Iterator[Any]:
    """Raw connections to both engines, both flushed: `pair.both(*command)` asserts equal replies."""
    from resp_support import Pair
    both = Pair(real_server.port, memory_server.port)
    both.both("FLUSHALL")
    yield both
    both.close()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real 3-master Redis Cluster for the session (tests/cluster_support.py)."""
    from cluster_support import start_cluster

    running = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield running
    running.close()
