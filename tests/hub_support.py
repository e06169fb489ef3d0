"""Run a real `cascade serve` process for tests, and talk to it over real sockets.

`start_serve(tmp_path, "--bus", "local")` starts the real CLI on a free port (`--port 0`, the
URL read from its stdout), waits until `GET /health` answers, and returns a `Serve`; call
`.stop()` (SIGTERM, waits, returns the exit code) or use it as a context manager.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from conftest import cascade_command


def clean_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a sandboxed CLI run: no user config, no proxies, no CASCADE_* leaks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CASCADE_", "VENICE_")) and not k.lower().endswith("_proxy")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_STATE_HOME=str(home / ".state"), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


@dataclass
class Serve:
    """A running `cascade serve`."""

    proc: subprocess.Popen[str]
    http_url: str
    ws_url: str
    info: dict[str, Any]
    stderr_path: Path
    stopped: bool = field(default=False)

    def ws(self, path: str = "") -> str:
        """The WebSocket URL of `path` (e.g. "/cascade-events?batch=0")."""
        return self.ws_url + path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.http_url, timeout=10, trust_env=False, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, **kwargs)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the process and wait; returns its exit code."""
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        return self.proc.returncode

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 20) -> Serve:
    """Start `cascade --format json serve --port 0 ARGS` and wait until it answers /health."""
    stderr_path = tmp_path / f"serve-{time.monotonic_ns()}.err"
    proc = subprocess.Popen([*cascade_command(), "serve", "--port", "0", "--json", *args],
                            stdout=subprocess.PIPE, stderr=open(stderr_path, "w"), text=True,
                            env=clean_env(tmp_path, env), cwd=tmp_path)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(f"cascade serve exited {proc.returncode}: {stderr_path.read_text()}")
    info = json.loads(line)
    serve = Serve(proc, info["http_url"], info["ws_url"], info, stderr_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if serve.get("/health").status_code == 200:
                return serve
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            serve.stop(signal.SIGKILL)
            raise AssertionError(f"cascade serve did not become healthy: {serve.stderr()}")
        time.sleep(0.05)


def wait_for(predicate: Any, timeout: float = 10, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll `predicate()` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def read_events(ws: Any, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 10,
                others: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Events a sync WebSocket client receives (batches unwrapped) until `until(events)` holds;
    other messages go to `others`. Fails after `timeout` seconds."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            message = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            raise AssertionError(f"timed out waiting for events; got {events}") from None
        if message["type"] == "batch":
            events.extend(message["events"])
        elif message["type"] == "event":
            events.append(message)
        elif others is not None:
            others.append(message)
    return events
