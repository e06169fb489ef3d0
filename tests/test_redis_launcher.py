"""`cascade redis start|stop|status|ping` through the real CLI, with real servers on free ports.

Every test runs with XDG_STATE_HOME inside its sandbox, and the `launcher` fixture stops (and
failing that, kills) every server a test started, whatever the test's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import RedisServer, Sandbox, cascade_command, free_port, redis_binary, run_in_pty

def one_line_error(stderr: str) -> str:
    """The `error:` line of stderr; asserts there is exactly one and no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, which nobody may reap here, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class Launcher:
    """Runs `cascade redis ...` with the sandbox's XDG_STATE_HOME; remembers what it started."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.root / "state"
        self.env = {"XDG_STATE_HOME": str(self.state)}
        self.ports: set[int] = set()
        self.pids: set[int] = set()

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.sandbox.run("redis", *args, env={**self.env, **(env or {})}, timeout=timeout)

    def start(self, port: int, *args: str,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.ports.add(port)
        result = self.run("start", "--port", str(port), *args, env=env)
        pid = self.pid(port)
        if pid:
            self.pids.add(pid)
        return result

    def start_json(self, port: int, *args: str, env: dict[str, str] | None = None) -> dict:
        result = self.start(port, "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        self.pids.add(record["pid"])
        return record

    def dir(self, port: int) -> Path:
        return self.state / "cascade" / f"redis-{port}"

    def pid(self, port: int) -> int | None:
        try:
            return int((self.dir(port) / "redis.pid").read_text())
        except (OSError, ValueError):
            return None

    def cleanup(self) -> None:
        """Kill whatever is still running (stopping is tested where it matters, not here)."""
        pids = self.pids | {pid for pid in map(self.pid, self.ports) if pid}
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            wait_until(lambda: not alive(pid), 5)


@pytest.fixture
def launcher(sandbox: Sandbox) -> Iterator[Launcher]:
    started = Launcher(sandbox)
    yield started
    started.cleanup()


def redis_client(port: int, password: str | None = None):  # noqa: ANN201 - redis.Redis
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5,
                       retry=Retry(NoBackoff(), 0))


def empty_path(sandbox: Sandbox) -> str:
    """A PATH on which no redis-server or valkey-server can be found."""
    bare = sandbox.root / "bare-bin"
    bare.mkdir(exist_ok=True)
    return str(bare)


needs_memory = pytest.mark.skipif(not (Path(__file__).resolve().parent.parent / "cascade_cli" / "resp"
                                       / "__main__.py").is_file(),
                                  reason="the in-memory server (cascade_cli/resp) is not in this checkout")


# ---- native: the whole life cycle ------------------------------------------------------------

def test_native_start_status_ping_stop(launcher: Launcher) -> None:
    redis_binary()
    port = free_port()
    result = launcher.start(port, "--engine", "native", "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert (started["engine"], started["server"], started["port"]) == ("native", "redis", port)
    assert started["url"] == f"redis://127.0.0.1:{port}/0" and started["version"]
    assert started["already_running"] is False and alive(started["pid"])
    assert f"started redis {started['version']} on redis://127.0.0.1:{port}/0" in result.stderr
    state = launcher.dir(port)
    assert started["state_dir"] == str(state) and started["data_dir"] == str(state / "data")
    assert (state / "redis.pid").read_text().strip() == str(started["pid"])
    assert stat.S_IMODE((state / "redis.conf").stat().st_mode) == 0o600
    assert (state / "redis.log").is_file()

    shown = launcher.run("status", "--port", str(port), "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["engine"], report["pid"], report["port"], report["version"]) == \
        ("native", started["pid"], port, started["version"])
    assert report["managed"] is True and report["state_dir"] == str(state)
    assert report["keys"] == 0 and report["databases"] == [] and report["aof_enabled"] is False
    assert report["uptime_ms"] >= 0 and report["used_memory_bytes"] > 0 and report["connected_clients"] >= 1
    redis_client(port).set("greeting", "ciao")
    table = launcher.run("status", "--port", str(port))
    assert table.returncode == 0 and "db0=1" in table.stdout and "uptime" in table.stdout

    pinged = launcher.run("ping", "--url", started["url"], "--count", "5", "--interval", "0", "--json")
    assert pinged.returncode == 0, pinged.stderr
    latency = json.loads(pinged.stdout)
    assert (latency["outcome"], latency["count"], latency["answered"]) == ("ok", 5, 5)
    assert 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["min_ms"] <= latency["avg_ms"] <= latency["max_ms"]

    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "" and f"stopped redis-server on port {port}" in stopped.stderr
    assert wait_until(lambda: not alive(started["pid"]), 5)
    assert not (state / "redis.pid").exists() and not (state / "redis.conf").exists()
    assert (state / "data" / "dump.rdb").is_file() and (state / "redis.log").is_file()


def test_already_running_says_so_and_exits_0(launcher: Launcher) -> None:
    redis_binary()
    port = free_port()
    first = launcher.start_json(port, "--engine", "native")
    again = launcher.start(port, "--engine", "native", "--json")
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["already_running"] is True and record["pid"] == first["pid"]
    assert f"already running on port {port}" in again.stderr


def test_data_survives_stop_and_start_native(launcher: Launcher) -> None:
    redis_binary()
    port = free_port()
    launcher.start_json(port, "--engine", "native")
    redis_client(port).set("doge", "Venier")
    assert launcher.run("stop", "--port", str(port)).returncode == 0
    restarted = launcher.start_json(port, "--engine", "native")
    assert redis_client(port).get("doge") == b"Venier"
    assert launcher.run("stop", "--port", str(port), "--nosave").returncode == 0
    assert wait_until(lambda: not alive(restarted["pid"]), 5)


def test_appendonly_and_custom_dir_native(launcher: Launcher, tmp_path: Path) -> None:
    redis_binary()
    port = free_port()
    data = tmp_path / "my data"   # a space: the config file quotes it
    started = launcher.start_json(port, "--engine", "native", "--dir", str(data), "--appendonly",
                                  "--appendfsync", "always")
    assert started["data_dir"] == str(data)
    redis_client(port).set("k", "v")
    report = json.loads(launcher.run("status", "--port", str(port), "--json").stdout)
    assert report["aof_enabled"] is True
    assert launcher.run("stop", "--port", str(port), "--nosave").returncode == 0
    assert any((data / "appendonlydir").iterdir())
    launcher.start_json(port, "--engine", "native", "--dir", str(data), "--appendonly")
    assert redis_client(port).get("k") == b"v"  # replayed from the append-only file, not a snapshot


# ---- ports, pidfiles, nothing running --------------------------------------------------------

def test_port_taken_by_another_process_exits_1(launcher: Launcher) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = launcher.start(port)
        assert result.returncode == 1 and result.stdout == ""
        assert one_line_error(result.stderr) == f"error: port {port} is already in use by another process"
        assert not (launcher.dir(port) / "redis.pid").exists()
        stopped = launcher.run("stop", "--port", str(port))
        assert stopped.returncode == 1
        assert "another process listens there" in one_line_error(stopped.stderr)


def test_stop_with_nothing_running_exits_0(launcher: Launcher) -> None:
    port = free_port()
    result = launcher.run("stop", "--port", str(port))
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == f"nothing to stop: no server is running on port {port}\n"


def test_stale_pidfile_is_cleaned_by_stop_and_start(launcher: Launcher) -> None:
    redis_binary()
    gone = subprocess.Popen(["true"])
    gone.wait()
    port = free_port()
    state = launcher.dir(port)
    state.mkdir(parents=True)
    (state / "redis.pid").write_text(f"{gone.pid}\n")
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    assert f"removed a stale pidfile (pid {gone.pid} was not running)" in stopped.stderr
    assert not (state / "redis.pid").exists()

    (state / "redis.pid").write_text(f"{gone.pid}\n")
    result = launcher.start(port, "--engine", "native", "--json")
    assert result.returncode == 0, result.stderr
    assert f"warning: removed a stale pidfile (pid {gone.pid} was not running)" in result.stderr
    assert json.loads(result.stdout)["pid"] == launcher.pid(port) != gone.pid


def test_server_that_dies_during_startup_is_reported_with_its_log(launcher: Launcher) -> None:
    fake = launcher.sandbox.root / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho '*** FATAL CONFIG ERROR *** bad directive' >&2\nexit 1\n")
    fake.chmod(0o755)
    port = free_port()
    result = launcher.start(port, "--engine", "native", env={"CASCADE_REDIS_SERVER_BINARY": str(fake)})
    assert result.returncode == 1 and result.stdout == ""
    error = one_line_error(result.stderr)
    assert "exited during start-up (exit code 1): *** FATAL CONFIG ERROR *** bad directive" in error
    assert f"hint: see the log {launcher.dir(port) / 'redis.log'}" in result.stderr
    assert not (launcher.dir(port) / "redis.pid").exists()
    missing = launcher.start(port, env={"CASCADE_REDIS_SERVER_BINARY": str(fake) + "-missing"})
    assert missing.returncode == 2 and "redis.server_binary" in one_line_error(missing.stderr)


def test_native_engine_missing_from_path_exits_1(launcher: Launcher) -> None:
    result = launcher.start(free_port(), "--engine", "native", env={"PATH": empty_path(launcher.sandbox)})
    assert result.returncode == 1
    assert "no redis-server or valkey-server found on PATH" in one_line_error(result.stderr)


# ---- status and ping against nothing, and against errors ------------------------------------

def test_status_and_ping_unreachable_exit_1(launcher: Launcher) -> None:
    port = free_port()
    status = launcher.run("status", "--port", str(port))
    assert status.returncode == 1 and status.stdout == ""
    assert f"cannot reach redis://127.0.0.1:{port}/0" in one_line_error(status.stderr)
    ping = launcher.run("ping", "--url", f"redis://127.0.0.1:{port}/0", "-c", "2", "--json")
    assert ping.returncode == 1
    assert f"cannot reach redis://127.0.0.1:{port}/0" in one_line_error(ping.stderr)
    report = json.loads(ping.stdout)
    assert (report["outcome"], report["answered"], report["p99_ms"]) == ("unreachable", 0, None)
    both = launcher.run("status", "--port", str(port), "--url", "redis://127.0.0.1:1/0")
    assert both.returncode == 2 and "--url or --port" in one_line_error(both.stderr)


def test_ping_error_answer_exits_3(launcher: Launcher, redis_server_with_password: RedisServer) -> None:
    result = launcher.run("ping", "--url", redis_server_with_password.url, "-c", "2", "--json")
    assert result.returncode == 3, result.stderr
    assert "refused authentication" in one_line_error(result.stderr)
    assert json.loads(result.stdout)["outcome"] == "error"
    ok = launcher.run("ping", "--url", redis_server_with_password.url, "-c", "1",
                      env={"CASCADE_REDIS_PASSWORD": redis_server_with_password.password or ""})
    assert ok.returncode == 0, ok.stderr
    status = launcher.run("status", "--url", redis_server_with_password.url)
    assert status.returncode == 1 and "refused authentication" in one_line_error(status.stderr)


# ---- passwords --------------------------------------------------------------------------------

def test_requirepass_file_sets_the_password_without_showing_it(launcher: Launcher) -> None:
    redis_binary()
    secret = "s3cret-gondola-7"
    secret_file = launcher.sandbox.root / "redis.pass"
    secret_file.write_text(secret + "\n")
    port = free_port()
    result = launcher.start(port, "--engine", "native", "--requirepass-file", str(secret_file), "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert started["requirepass"] is True
    cmdline = Path(f"/proc/{started['pid']}/cmdline").read_bytes().decode()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert secret not in cmdline and secret not in ps
    conf = launcher.dir(port) / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600 and secret in conf.read_text()

    import redis

    with pytest.raises(redis.AuthenticationError):
        redis_client(port).ping()
    assert redis_client(port, secret).ping() is True

    # status and ping on this machine find the password cascade started the server with
    outputs = [result.stdout, result.stderr]
    for args in (["status", "--port", str(port), "--json"],
                 ["ping", "--port", str(port), "-c", "2", "-i", "0"]):
        checked = launcher.run(*args)
        assert checked.returncode == 0, checked.stderr
        outputs += [checked.stdout, checked.stderr]
    wrong = launcher.run("ping", "--port", str(port), "-c", "1", env={"CASCADE_REDIS_PASSWORD": "wrong"})
    assert wrong.returncode == 3 and "refused authentication" in one_line_error(wrong.stderr)
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    outputs += [wrong.stdout, wrong.stderr, stopped.stdout, stopped.stderr]
    assert all(secret not in text for text in outputs)
    assert not conf.exists()  # the password does not outlive the server


def test_empty_or_missing_password_file_is_a_usage_error(launcher: Launcher) -> None:
    empty = launcher.sandbox.root / "empty.pass"
    empty.write_text("")
    port = free_port()
    for path, needle in ((empty, "is empty"), (launcher.sandbox.root / "nope.pass", "cannot read")):
        result = launcher.start(port, "--requirepass-file", str(path))
        assert result.returncode == 2 and needle in one_line_error(result.stderr)
    assert not (launcher.dir(port) / "redis.pid").exists()


# ---- foreground -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_foreground_stops_cleanly_on_a_signal(launcher: Launcher, sig: signal.Signals) -> None:
    redis_binary()
    port = free_port()
    launcher.ports.add(port)
    env = {**launcher.sandbox.env, **launcher.env}
    proc = subprocess.Popen([*cascade_command(), "redis", "start", "--port", str(port), "--engine", "native",
                             "--foreground", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=launcher.sandbox.cwd)
    try:
        assert wait_until(lambda: launcher.pid(port) is not None and
                          launcher.run("ping", "--port", str(port), "-c", "1").returncode == 0, 15)
        server_pid = launcher.pid(port)
        assert server_pid is not None
        launcher.pids.add(server_pid)
        redis_client(port).set("kept", "yes")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["pid"] == server_pid
    assert "Traceback" not in err and f"stopped (on {sig.name})" in err
    assert wait_until(lambda: not alive(server_pid), 5)
    assert not (launcher.dir(port) / "redis.pid").exists()
    assert (launcher.dir(port) / "data" / "dump.rdb").is_file()  # SIGTERM to redis saves


# ---- the in-memory engine ---------------------------------------------------------------------

@needs_memory
def test_memory_engine_start_status_ping_stop(launcher: Launcher) -> None:
    port = free_port()
    started = launcher.start_json(port, "--engine", "memory")
    assert (started["engine"], started["server"]) == ("memory", "cascade") and started["version"]
    assert "cascade_cli.resp" in Path(f"/proc/{started['pid']}/cmdline").read_bytes().decode()
    report = json.loads(launcher.run("status", "--port", str(port), "--json").stdout)
    assert (report["engine"], report["pid"], report["managed"]) == ("memory", started["pid"], True)
    redis_client(port).set("a", "1")
    report = json.loads(launcher.run("status", "--port", str(port), "--json").stdout)
    assert report["keys"] == 1 and report["databases"][0]["db"] == 0
    pinged = launcher.run("ping", "--port", str(port), "-c", "3", "-i", "0", "--json")
    assert pinged.returncode == 0 and json.loads(pinged.stdout)["answered"] == 3
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0 and "stopped the in-memory server" in stopped.stderr
    assert wait_until(lambda: not alive(started["pid"]), 5)


@needs_memory
def test_memory_engine_gets_the_password_from_its_config_file(launcher: Launcher) -> None:
    secret = "memory pass \"quoted\" \\ 9"
    secret_file = launcher.sandbox.root / "redis.pass"
    secret_file.write_text(secret + "\n")
    port = free_port()
    started = launcher.start_json(port, "--engine", "memory", "--requirepass-file", str(secret_file))
    assert started["engine"] == "memory" and started["requirepass"] is True
    assert secret not in Path(f"/proc/{started['pid']}/cmdline").read_bytes().decode()

    import redis

    with pytest.raises(redis.AuthenticationError):
        redis_client(port).ping()
    assert redis_client(port, secret).ping() is True
    pinged = launcher.run("ping", "--port", str(port), "-c", "2", "-i", "0")
    assert pinged.returncode == 0, pinged.stderr
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: not alive(started["pid"]), 5)


@needs_memory
def test_auto_falls_back_to_memory_without_redis_server_on_path(launcher: Launcher) -> None:
    port = free_port()
    started = launcher.start_json(port, env={"PATH": empty_path(launcher.sandbox)})
    assert started["engine"] == "memory"
    assert redis_client(port).ping() is True
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: not alive(started["pid"]), 5)


@needs_memory
@pytest.mark.parametrize("persistence", ["--no-appendonly", "--appendonly"])
def test_data_survives_stop_and_start_memory(launcher: Launcher, persistence: str) -> None:
    port = free_port()
    launcher.start_json(port, "--engine", "memory", persistence)
    redis_client(port).set("doge", "Venier")
    stopped = launcher.run("stop", "--port", str(port))
    assert stopped.returncode == 0, stopped.stderr
    launcher.start_json(port, "--engine", "memory", persistence)
    client = redis_client(port)
    assert client.get("doge") == b"Venier"
    assert client.info("persistence")["aof_enabled"] == (persistence == "--appendonly")


# ---- progress -------------------------------------------------------------------------------



def test_start_shows_a_spinner_on_a_terminal_only(launcher: Launcher) -> None:
    slow = launcher.sandbox.root / "slow-redis-server"
    slow.write_text(f"#!/bin/sh\nsleep 0.4\nexec {redis_binary()} \"$@\"\n")
    slow.chmod(0o755)
    env = {**launcher.sandbox.env, **launcher.env, "CASCADE_REDIS_SERVER_BINARY": str(slow),
           "TERM": "xterm-256color"}
    first, second = free_port(), free_port()
    launcher.ports.update((first, second))
    screen = run_in_pty(["redis", "start", "--port", str(first)], env, launcher.sandbox.cwd)
    assert f" waiting for the server on port {first} (" in screen and "\r" in screen, screen
    assert "started redis" in screen
    piped = launcher.start(second, env={"CASCADE_REDIS_SERVER_BINARY": str(slow)})
    assert piped.returncode == 0, piped.stderr
    assert "waiting" not in piped.stderr and "\r" not in piped.stderr


# ---- start-up weight --------------------------------------------------------------------------

def test_redis_help_imports_no_client_library(sandbox: Sandbox) -> None:
    probe = ("import sys\nfrom cascade_cli.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('redis', 'httpx', 'asyncio', 'tabulate') if m in sys.modules))\n")
    for args in (["redis", "--help"], ["redis", "start", "--help"], ["redis", "ping", "--help"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                                env=sandbox.env, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]", args
