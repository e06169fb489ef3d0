"""`cascade -v serve`: logs go to stderr with tokens masked; stdout carries only the URLs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from conftest import cascade_command
from hub_support import clean_env, wait_for
from websockets.sync.client import connect

SECRET = "tok-5e1b7c"


def test_verbose_logs_go_to_stderr_and_mask_the_token(tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"CASCADE_SERVE_TOKEN": SECRET})
    err = tmp_path / "err"
    with open(err, "w") as err_file:
        proc = subprocess.Popen([*cascade_command(), "-v", "serve", "--port", "0", "--bus", "local", "--json"],
                                stdout=subprocess.PIPE, stderr=err_file, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with connect(f"{info['ws_url']}/cascade-events?token={SECRET}", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        with httpx.Client(trust_env=False) as client:
            assert client.get(f"{info['http_url']}/health", params={"token": SECRET}).status_code == 200
        wait_for(lambda: "GET /health" in err.read_text(), what="the access log line")
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert rest == "", "stdout carries only the URL line"
    log = err.read_text()
    assert "WebSocket /ws/cascade-events?token=***" in log
    assert "GET /health?token=*** HTTP/1.1" in log
    assert SECRET not in log
