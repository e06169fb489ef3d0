"""`cascade bench redis`, the real CLI in subprocesses against real servers: redis-server and
cascade's in-memory server over real sockets, a deliberately slow TCP proxy, a password-protected
redis-server. Counts must add up, percentiles must be ordered, data must really arrive, injected
delay must show up, thresholds and errors must exit with their codes. No timing assertions
beyond "the 20 ms we injected is visible"."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import redis
from conftest import EngineServer, RedisServer, Sandbox, cascade_command, free_port, start_real_server

PREFIX = "cascade-bench:"
ALL_TESTS = "set,get,incr,lpush,lpop,sadd,hset,zadd,lrange,mset,ping,publish"
ALL_NAMES = ["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd", "lrange_100", "mset", "ping",
             "publish"]
CHAIN = ("min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")
LEAN = ("--warmup", "0", "--processes", "1", "-c", "2")


def bench(sandbox: Sandbox, url: str, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return sandbox.run("bench", "redis", "--url", url, *args, env=env, timeout=timeout)


def bench_doc(sandbox: Sandbox, url: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run with --json; exit 0 expected; returns the document."""
    done = bench(sandbox, url, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["test"]: row for row in doc["results"]}


def check_row(row: dict[str, Any], requests: int | None = None) -> None:
    """Counts and percentiles of one row are consistent with each other."""
    if requests is not None:
        assert row["requests"] + row["errors"] == requests, row
    assert row["requests"] > 0, row
    chain = [row[k] for k in CHAIN]
    assert chain == sorted(chain), row
    assert row["min_ms"] <= row["mean_ms"] <= row["max_ms"]
    assert row["duration_s"] > 0
    assert row["ops_per_sec"] == pytest.approx(row["requests"] / row["duration_s"], rel=1e-3)
    assert row["interrupted"] is False


def client(port: int, password: str | None = None) -> redis.Redis:
    return redis.Redis(port=port, password=password, decode_responses=True, socket_timeout=10)


def bench_keys(port: int, password: str | None = None) -> list[str]:
    r = client(port, password)
    try:
        return sorted(r.scan_iter(match=f"{PREFIX}*", count=1000))
    finally:
        r.close()


def counter_key(doc: dict[str, Any]) -> str:
    """The one INCR key of a run without --keyspace (literally `__rand_int__`, as redis-benchmark)."""
    return f"{doc['settings']['key_prefix']}counter:__rand_int__"


def one_error_line(stderr: str) -> str:
    """The stderr of a failed run: exactly one `error:` line, no traceback; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --------------------------------------------------------------------------- both engines

def test_every_test_against_each_engine(engine_server: EngineServer, sandbox: Sandbox) -> None:
    r = client(engine_server.port)
    r.set("mine", "untouched")
    doc = bench_doc(sandbox, engine_server.url, "-t", ALL_TESTS, "-n", "2000", "-c", "4", "--warmup", "0",
                    "--processes", "2")
    assert doc["command"] == "redis" and doc["interrupted"] is False and doc["passed"] is True
    assert doc["settings"]["processes"] == 2 and doc["settings"]["clients"] == 4
    assert doc["settings"]["server"].startswith("redis" if engine_server.name == "redis" else "cascade")
    got = rows(doc)
    assert list(got) == ALL_NAMES
    for row in got.values():
        assert row["requests"] + row["errors"] == 2000, row
    with_errors = {name: row["errors"] for name, row in got.items() if row["errors"]}
    assert with_errors == {}, f"error replies on {engine_server.name}: {with_errors}"
    for row in got.values():
        check_row(row, 2000)
    # cleaned up afterwards, and nothing outside the prefix touched
    assert bench_keys(engine_server.port) == []
    assert r.get("mine") == "untouched"
    r.close()


@pytest.mark.parametrize("keyspace", ["0", "50"])
def test_zadd_without_keyspace(keyspace: str, real_server: EngineServer, sandbox: Sandbox) -> None:
    # redis-benchmark sends `ZADD myzset 0 element:__rand_int__` without -r: the score must be a
    # number whether or not keys are drawn at random
    doc = bench_doc(sandbox, real_server.url, "-t", "zadd", "-r", keyspace, "-n", "200", *LEAN, "--keep-keys")
    row = rows(doc)["zadd"]
    assert row["errors"] == 0, row
    check_row(row, 200)
    r = client(real_server.port)
    members = r.zrange(f"{doc['settings']['key_prefix']}myzset", 0, -1, withscores=True)
    r.flushall()
    r.close()
    assert 0 < len(members) <= (1 if keyspace == "0" else 50)


def test_data_really_arrives(engine_server: EngineServer, sandbox: Sandbox) -> None:
    port, url = engine_server.port, engine_server.url
    r = client(port)
    doc = bench_doc(sandbox, url, "-t", "set,incr,lpush,hset", "--keep-keys", "-r", "100", "-n", "500",
                    "--data-size", "10", *LEAN)
    assert doc["settings"]["keyspace"] == 100 and doc["settings"]["keys_kept"] is True
    prefix = doc["settings"]["key_prefix"]
    assert re.fullmatch(rf"{PREFIX}[0-9a-zA-Z_-]+:", prefix)
    keys = bench_keys(port)
    strings = [k for k in keys if k.startswith(f"{prefix}key:")]
    counters = [k for k in keys if k.startswith(f"{prefix}counter:")]
    assert 0 < len(strings) <= 100 and 0 < len(counters) <= 100
    for key in strings + counters:
        assert re.fullmatch(rf"{re.escape(prefix)}(key|counter):\d{{12}}", key)
        assert int(key.rsplit(":", 1)[1]) < 100
    assert all(r.type(k) == "string" and r.get(k) == "x" * 10 for k in strings)
    assert sum(int(r.get(k)) for k in counters) == 500      # every counted INCR arrived, once
    assert r.llen(f"{prefix}mylist") == 500 and r.lindex(f"{prefix}mylist", 0) == "x" * 10
    assert 0 < r.hlen(f"{prefix}myhash") <= 100
    assert set(keys) == {*strings, *counters, f"{prefix}mylist", f"{prefix}myhash"}
    # a later run cleans up its own keys only: the kept ones of the first run stay
    doc = bench_doc(sandbox, url, "-t", "set,lrange", "-r", "10", "-n", "100", *LEAN)
    assert doc["settings"]["key_prefix"] != prefix and doc["settings"]["keys_kept"] is False
    assert bench_keys(port) == keys
    r.close()


def test_counts_are_exact_with_pipelines_and_open_loop(engine_server: EngineServer, sandbox: Sandbox) -> None:
    port, url = engine_server.port, engine_server.url
    r = client(port)
    # 1001 is not a multiple of 16: the last batch of each connection is shorter
    doc = bench_doc(sandbox, url, "-t", "incr", "-P", "16", "-n", "1001", "-c", "3", "--warmup", "0",
                    "--processes", "2", "--keep-keys")
    assert doc["settings"]["pipeline"] == 16
    check_row(rows(doc)["incr"], 1001)
    assert rows(doc)["incr"]["requests"] == 1001
    assert r.get(counter_key(doc)) == "1001"          # sent == counted

    doc = bench_doc(sandbox, url, "-t", "incr", "--rate", "2000", "-n", "1000", "-c", "2", "--warmup", "0",
                    "--processes", "2", "--keep-keys")
    row = rows(doc)["incr"]
    check_row(row, 1000)
    assert row["requests"] == 1000 and row["target_rate"] == 2000.0 and doc["settings"]["rate"] == 2000.0
    assert None not in (row["uncorrected_p50_ms"], row["uncorrected_p99_ms"], row["uncorrected_max_ms"],
                        row["send_lag_p99_ms"])
    assert row["uncorrected_p50_ms"] <= row["uncorrected_p99_ms"] <= row["uncorrected_max_ms"]
    # measured from the intended send time, latency can only be longer than from the actual send
    assert row["uncorrected_p50_ms"] <= row["p50_ms"] and row["uncorrected_p99_ms"] <= row["p99_ms"]
    assert row["uncorrected_max_ms"] <= row["max_ms"]
    assert r.get(counter_key(doc)) == "1000"
    r.close()


def test_resp3_and_database(engine_server: EngineServer, sandbox: Sandbox) -> None:
    # HELLO 3, then SELECT 3: the load, the LRANGE list and the keys all live in database 3
    url = f"redis://127.0.0.1:{engine_server.port}/3"
    doc = bench_doc(sandbox, url, "-t", "set,get,hset,lrange,ping", "--resp", "3", "-n", "400", *LEAN,
                    "--keep-keys")
    assert doc["settings"]["resp"] == 3
    for row in rows(doc).values():
        check_row(row, 400)
        assert row["errors"] == 0
    prefix = doc["settings"]["key_prefix"]
    db3 = redis.Redis(port=engine_server.port, db=3, decode_responses=True)
    assert sorted(db3.keys("*")) == sorted(f"{prefix}{k}" for k in ("key:__rand_int__", "myhash", "lrange-list"))
    assert db3.llen(f"{prefix}lrange-list") == 600
    db3.close()
    assert bench_keys(engine_server.port) == []     # nothing in database 0


# --------------------------------------------------------------------------- modes

def test_warmup_is_sent_but_not_measured(real_server: EngineServer, sandbox: Sandbox) -> None:
    r = client(real_server.port)
    r.flushall()
    doc = bench_doc(sandbox, real_server.url, "-t", "incr", "-n", "500", "--warmup", "0.3", "--processes", "1",
                    "-c", "2", "--keep-keys")
    assert doc["settings"]["warmup_s"] == 0.3
    check_row(rows(doc)["incr"], 500)
    assert rows(doc)["incr"]["requests"] == 500
    assert int(r.get(counter_key(doc))) > 500   # the warmup's requests did arrive
    r.flushall()
    r.close()


def test_duration_mode(real_server: EngineServer, sandbox: Sandbox) -> None:
    doc = bench_doc(sandbox, real_server.url, "-t", "ping", "--duration", "0.5", *LEAN)
    assert doc["settings"]["duration_s"] == 0.5 and doc["settings"]["requests"] is None
    for row in rows(doc).values():
        check_row(row)
        assert 0.1 < row["duration_s"] < 10


class DelayProxy:
    """A TCP proxy on 127.0.0.1:0 in front of `upstream`: every chunk the server sends reaches the
    client `delay` seconds after the proxy read it (in order); the other direction is not delayed."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(self._session(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def to_server() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def from_server() -> None:
            while data := await up_reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
            queue.put_nowait((0.0, b""))

        async def delayed() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        parts = [asyncio.ensure_future(p) for p in (to_server(), from_server(), delayed())]
        try:
            await asyncio.gather(*parts)
        except (OSError, ConnectionError):
            pass
        finally:
            for part in parts:
                part.cancel()
            writer.close()
            up_writer.close()


def test_injected_server_delay_shows_up_in_latency(real_server: EngineServer, sandbox: Sandbox) -> None:
    with DelayProxy(real_server.port, 0.020) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        closed = rows(bench_doc(sandbox, url, "-t", "get", "-n", "60", *LEAN))["get"]
        opened = rows(bench_doc(sandbox, url, "-t", "get", "--rate", "200", "-n", "40", *LEAN))["get"]
    check_row(closed, 60)
    check_row(opened, 40)
    # every reply was held 20 ms: no request can have been faster than that
    assert closed["min_ms"] >= 20 and closed["p50_ms"] >= 20
    assert opened["min_ms"] >= 20 and opened["uncorrected_p50_ms"] >= 20


# --------------------------------------------------------------------------- thresholds

def test_breached_threshold_exits_3_and_is_marked(real_server: EngineServer, sandbox: Sandbox) -> None:
    url = real_server.url
    table = bench(sandbox, url, "-t", "set,get", "-n", "200", *LEAN, "--fail-if", "p50_ms>0")
    assert table.returncode == 3, table.stderr
    assert "threshold" in one_error_line(table.stderr)
    lines = [line for line in table.stdout.splitlines() if line.startswith(("set ", "get "))]
    assert len(lines) == 2
    assert all(" !" in line and line.rstrip().endswith("FAIL") for line in lines), table.stdout

    done = bench(sandbox, url, "-t", "set,get", "-n", "200", *LEAN, "--json", "--fail-if", "p50_ms>0",
                 "--fail-if", "p50_ms<0")
    assert done.returncode == 3
    doc = json.loads(done.stdout)
    assert doc["passed"] is False
    assert {(c["threshold"], c["test"], c["breached"]) for c in doc["thresholds"]} == {
        ("p50_ms>0", "set", True), ("p50_ms>0", "get", True),
        ("p50_ms<0", "set", False), ("p50_ms<0", "get", False)}
    assert all(row["breaches"] == ["p50_ms>0"] for row in doc["results"])


def test_met_and_per_test_thresholds(real_server: EngineServer, sandbox: Sandbox) -> None:
    done = bench(sandbox, real_server.url, "-t", "set,get", "-n", "200", *LEAN, "--json",
                 "--fail-if", "p50_ms<0.0", "--fail-if", "set:p99_ms>100000", "--fail-if", "errors != 0",
                 "--fail-if", "get:requests<200")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["passed"] is True
    per_test = [c for c in doc["thresholds"] if c["threshold"] == "set:p99_ms>100000"]
    assert [c["test"] for c in per_test] == ["set"]
    assert [c["test"] for c in doc["thresholds"] if c["threshold"] == "get:requests<200"] == ["get"]
    assert len(doc["thresholds"]) == 2 + 1 + 2 + 1
    table = bench(sandbox, real_server.url, "-t", "set", "-n", "100", *LEAN, "--fail-if", "set:p99_ms>100000")
    assert table.returncode == 0 and "!" not in table.stdout and " ok" in table.stdout


@pytest.mark.parametrize(("threshold", "says"), [("latency_ms>5", "unknown metric"),
                                                ("p99_ms>>5", "cannot read"),
                                                ("hset:p99_ms>1", "not run")])
def test_bad_threshold_exits_2(threshold: str, says: str, real_server: EngineServer, sandbox: Sandbox) -> None:
    done = bench(sandbox, real_server.url, "-t", "set,get", "-n", "10", *LEAN, "--fail-if", "p99_ms>1000",
                 "--fail-if", threshold)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert threshold in line and says in line
    assert done.stdout == ""


def test_bad_threshold_is_a_usage_error_before_any_connection(sandbox: Sandbox) -> None:
    # like an unknown test name or --requests with --duration: refused before the server is asked
    done = bench(sandbox, f"redis://127.0.0.1:{free_port()}/0", "-t", "set", "-n", "10", *LEAN,
                 "--fail-if", "latency_ms>5")
    assert done.returncode == 2, done.stderr
    assert "latency_ms" in one_error_line(done.stderr)


# --------------------------------------------------------------------------- outputs

def test_csv_and_markdown(real_server: EngineServer, sandbox: Sandbox) -> None:
    done = bench(sandbox, real_server.url, "-t", "set,get,ping", "-n", "200", *LEAN, "--format", "csv")
    assert done.returncode == 0, done.stderr
    parsed = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["test"] for row in parsed] == ["set", "get", "ping"]
    for row in parsed:
        assert int(row["requests"]) == 200 and int(row["errors"]) == 0
        assert float(row["p50_ms"]) <= float(row["p99_ms"]) <= float(row["max_ms"])
        assert row["interrupted"] == "false" and row["target_rate"] == ""

    done = bench(sandbox, real_server.url, "-t", "set,get", "-n", "200", *LEAN, "--format", "markdown")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert re.fullmatch(r"\|[-:|]+\|", lines[1])
    assert [c.strip() for c in lines[0].strip("|").split("|")][:3] == ["test", "requests", "errors"]
    assert lines[2].startswith("| set") and lines[3].startswith("| get")


def test_exports_and_histogram(real_server: EngineServer, sandbox: Sandbox, tmp_path: Path) -> None:
    export_json, export_csv = tmp_path / "out.json", tmp_path / "out.csv"
    done = bench(sandbox, real_server.url, "-t", "set,get", "-n", "300", *LEAN, "--histogram",
                 "--export-json", str(export_json), "--export-csv", str(export_csv))
    assert done.returncode == 0, done.stderr
    doc = json.loads(export_json.read_text())
    assert [row["test"] for row in doc["results"]] == ["set", "get"]
    for row in doc["results"]:
        check_row(row, 300)
    for name in ("set", "get"):
        assert sum(b["count"] for b in doc["histograms"][name]) == 300
    parsed = list(csv.DictReader(io.StringIO(export_csv.read_text())))
    assert [(row["test"], row["requests"]) for row in parsed] == [("set", "300"), ("get", "300")]
    # the table and one histogram per test on stdout
    assert "set latency (ms), 300 samples" in done.stdout and "get latency (ms), 300 samples" in done.stdout
    bars = [line for line in done.stdout.splitlines() if re.match(r"^\s+[\d.]+ -\s+[\d.]+ ms \| #*\s+[\d,]+$", line)]
    assert len(bars) >= 2
    assert sum(int(line.rsplit(" ", 1)[1].replace(",", "")) for line in bars) == 600


# --------------------------------------------------------------------------- errors

def test_unreachable_server(sandbox: Sandbox) -> None:
    port = free_port()
    done = bench(sandbox, f"redis://127.0.0.1:{port}/0", "-t", "set", "-n", "10", *LEAN)
    assert done.returncode == 1
    assert str(port) in one_error_line(done.stderr)
    assert any(line.startswith("hint:") for line in done.stderr.splitlines())
    assert done.stdout == ""


def test_password(redis_server_with_password: RedisServer, sandbox: Sandbox) -> None:
    server = redis_server_with_password
    port, password = server.port, server.password
    assert password
    for url in (f"redis://:not-the-pw-42@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0"):
        done = bench(sandbox, url, "-t", "set", "-n", "10", *LEAN)
        assert done.returncode in (1, 3), done.stderr
        assert "auth" in one_error_line(done.stderr).lower()
        assert "not-the-pw-42" not in done.stderr      # the password is masked
        assert done.stdout == ""
    # the right password: in the URL with RESP3 (HELLO 3 AUTH), from the environment with RESP2 (AUTH)
    for url, resp, env in ((f"redis://:{password}@127.0.0.1:{port}/0", "3", None),
                           (f"redis://127.0.0.1:{port}/0", "2", {"CASCADE_REDIS_PASSWORD": password})):
        doc = bench_doc(sandbox, url, "-t", "set,incr", "-n", "200", *LEAN, "--resp", resp, env=env)
        for row in rows(doc).values():
            check_row(row, 200)
            assert row["errors"] == 0
        assert password not in json.dumps(doc)
        assert bench_keys(port, password) == []   # cleanup logged in too


def test_usage_errors(sandbox: Sandbox) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    unknown = bench(sandbox, url, "-t", "set,nope", "-n", "10", *LEAN)
    assert unknown.returncode == 2 and "nope" in one_error_line(unknown.stderr)
    both = bench(sandbox, url, "-t", "set", "-n", "10", "--duration", "1", *LEAN)
    assert both.returncode == 2 and "--duration" in one_error_line(both.stderr)


# --------------------------------------------------------------------------- Ctrl-C

@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[int]:
    """A redis-server of this test's own, so that its command counter only sees this test."""
    proc, port = start_real_server(tmp_path)
    yield port
    proc.terminate()
    proc.wait(10)


def test_ctrl_c_prints_what_was_measured(own_redis: int, sandbox: Sandbox) -> None:
    r = client(own_redis)
    proc = subprocess.Popen([*cascade_command(), "bench", "redis", "--url", f"redis://127.0.0.1:{own_redis}/0",
                             "--duration", "30", "-t", "set,ping", "--json", *LEAN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sandbox.env,
                            cwd=sandbox.cwd)
    try:
        deadline = time.monotonic() + 20
        while r.info("stats")["total_commands_processed"] < 2000:   # the load is running
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no load reached the server"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        r.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    (row,) = doc["results"]        # the test that was running; the ones after it are skipped
    assert row["test"] == "set" and row["interrupted"] is True
    assert row["requests"] > 0 and row["errors"] == 0
    assert row["duration_s"] < 25
    assert bench_keys(own_redis) == []          # cleaned up after Ctrl-C too
