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
