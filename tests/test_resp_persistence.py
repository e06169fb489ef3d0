"""Persistence of the in-memory server: the append-only file (loaded by real redis-server too),
snapshots, rewrites, truncated tails and kill -9 recovery."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import _stop, start_memory_server, start_real_server
from resp_support import RawClient


def dump_all(client: redis.Redis) -> dict[tuple[int, bytes], Any]:
    """Every key of every non-empty database: (db, key) -> (type, value, has_ttl)."""
    out: dict[tuple[int, bytes], Any] = {}
    for db in range(16):
        client.execute_command("SELECT", db)
        for key in client.execute_command("KEYS", "*"):
            kind = client.execute_command("TYPE", key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                value: Any = client.execute_command("GET", key)
            elif kind == "list":
                value = client.execute_command("LRANGE", key, 0, -1)
            elif kind == "hash":
                value = sorted(client.execute_command("HGETALL", key).items())
            elif kind == "set":
                value = sorted(client.execute_command("SMEMBERS", key))
            elif kind == "zset":
                value = client.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")
            elif kind == "stream":
                value = client.execute_command("XRANGE", key, "-", "+")
            else:
                raise AssertionError(f"unexpected type {kind}")
            ttl = client.execute_command("PTTL", key)
            out[(db, key)] = (kind, value, ttl > 0)
    client.execute_command("SELECT", 0)
    return out


def client_for(port: int) -> redis.Redis:
    """A client that does not retry: redis-py's default retries (with backoff, seconds in all)
    would wait out every SHUTDOWN here."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(port=port, protocol=2, retry=Retry(NoBackoff(), 0))


def write_sample(client: redis.Redis) -> None:
    """A bit of everything: each type, TTLs, several databases, deletes, a transaction."""
    c = client
    c.execute_command("SET", "plain", "value")
    c.execute_command("SET", "ttl", "soon", "EX", "1000")
    c.execute_command("SET", "gone", "x")
    c.execute_command("DEL", "gone")
    c.execute_command("INCRBYFLOAT", "float", "10.5")
    c.execute_command("INCR", "counter")
    c.execute_command("APPEND", "plain", "-more")
    c.execute_command("RPUSH", "list", *[f"item{i}" for i in range(150)])
    c.execute_command("LPOP", "list")
    c.execute_command("HSET", "hash", *[x for i in range(100) for x in (f"f{i}", f"v{i}")])
    c.execute_command("HINCRBYFLOAT", "hash", "num", "0.25")
    c.execute_command("SADD", "set", *[f"m{i}" for i in range(80)])
    c.execute_command("SPOP", "set")
    c.execute_command("ZADD", "zset", *[x for i in range(70) for x in (str(i / 3), f"z{i}")])
    c.execute_command("ZINCRBY", "zset", "0.1", "z5")
    c.execute_command("EXPIRE", "hash", "5000")
    c.execute_command("SELECT", "3")
    c.execute_command("SET", "in-db-3", "three")
    c.execute_command("SELECT", "0")
    pipe = c.pipeline(transaction=True)
    pipe.set("tx-a", "1")
    pipe.set("tx-b", "2")
    pipe.execute()
    try:
        c.execute_command("XADD", "stream", "1-1", "field", "value")
        c.execute_command("XADD", "stream", "2-1", "other", "thing")
    except redis.ResponseError:
        pass                      # streams may be missing in a partial build; the rest still counts


@pytest.fixture
def memory_aof(tmp_path: Path) -> Any:
    """Start in-memory servers with appendonly on a given directory; all are stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(directory: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
        directory.mkdir(exist_ok=True)
        proc, port = start_memory_server(directory, "--appendonly", "yes", *options)
        procs.append(proc)
        return proc, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def shutdown(port: int, *args: str) -> None:
    try:
        client_for(port).execute_command("SHUTDOWN", *args)
    except redis.ConnectionError:
        pass


def test_real_redis_loads_the_append_only_file(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    write_sample(client)
    expected = dump_all(client)
    shutdown(port, "NOSAVE")
    proc.wait(10)
    copy = tmp_path / "real"
    copy.mkdir()
    shutil.copy(tmp_path / "mem" / "appendonly.aof", copy / "appendonly.aof")
    real, real_port = start_real_server(copy, "--appendonly", "yes")
    try:
        assert dump_all(client_for(real_port)) == expected
    finally:
        _stop(real)
    assert len(expected) >= 10


def test_restart_reloads_the_same_data(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    write_sample(client_for(port))
    expected = dump_all(client_for(port))
    shutdown(port)
    assert proc.wait(10) == 0
    _, port = memory_aof(tmp_path / "mem")
    assert dump_all(client_for(port)) == expected


def test_appendfsync_always_loses_no_acknowledged_write_on_kill_9(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem", "--appendfsync", "always")
    client = client_for(port)
    for i in range(300):
        assert client.execute_command("SET", f"k{i}", str(i))
    pipe = client.pipeline(transaction=False)
    for i in range(300):
        pipe.execute_command("RPUSH", "acked", str(i))
    pipe.execute()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    _, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    assert client.execute_command("MGET", *[f"k{i}" for i in range(300)]) == [str(i).encode() for i in range(300)]
    assert client.execute_command("LLEN", "acked") == 300


def test_truncated_tail_is_cut_off_and_the_rest_loads(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    client_for(port).execute_command("SET", "kept", "yes")
    shutdown(port, "NOSAVE")
    proc.wait(10)
    aof = tmp_path / "mem" / "appendonly.aof"
    whole = aof.stat().st_size
    with open(aof, "ab") as handle:
        handle.write(b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$10\r\nhal")     # a write cut by a crash
    _, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    assert client.execute_command("GET", "kept") == b"yes"
    assert client.execute_command("EXISTS", "lost") == 0
    assert aof.stat().st_size == whole


def test_incomplete_transaction_at_the_end_is_dropped(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    client_for(port).execute_command("SET", "kept", "yes")
    shutdown(port, "NOSAVE")
    proc.wait(10)
    with open(tmp_path / "mem" / "appendonly.aof", "ab") as handle:
        handle.write(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$1\r\n1\r\n")
    _, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    assert client.execute_command("GET", "kept") == b"yes"
    assert client.execute_command("EXISTS", "half") == 0
    assert client.execute_command("SET", "after", "1")


def test_a_corrupt_file_stops_start_up_with_a_clear_log_line(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    directory.mkdir()
    (directory / "appendonly.aof").write_bytes(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$9\r\nNOSUCHCMD\r\n")
    from conftest import free_port
    port = free_port()
    proc = subprocess.run(
        [*start_memory_command(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--appendonly", "yes"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "Fatal error loading the DB" in proc.stderr
    assert "NOSUCHCMD" in proc.stderr or "nosuchcmd" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def start_memory_command() -> list[str]:
    import sys
    return [sys.executable, "-m", "cascade_cli.resp"]


def _wait(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_bgrewriteaof_compacts_and_keeps_writes_made_meanwhile(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    for _ in range(2000):
        client.execute_command("INCR", "hits")
    aof = tmp_path / "mem" / "appendonly.aof"
    before = aof.stat().st_size
    assert RawClient(port).call("BGREWRITEAOF") == ("+", "Background append only file rewriting started")
    client.execute_command("SET", "during", "rewrite")
    _wait(lambda: aof.stat().st_size < before / 10)
    client.execute_command("SET", "after", "rewrite")
    expected = dump_all(client)
    shutdown(port, "NOSAVE")
    proc.wait(10)
    _, port = memory_aof(tmp_path / "mem")
    assert dump_all(client_for(port)) == expected
    assert expected[(0, b"hits")][1] == b"2000"


def test_the_file_is_compacted_when_it_grows(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem", "--auto-aof-rewrite-min-size", "64kb",
                            "--auto-aof-rewrite-percentage", "100")
    client = client_for(port)
    aof = tmp_path / "mem" / "appendonly.aof"
    pipe = client.pipeline(transaction=False)
    for i in range(6000):
        pipe.execute_command("SET", "same-key", f"value-{i:06d}")
    pipe.execute()
    _wait(lambda: aof.stat().st_size < 64 * 1024)
    assert client.execute_command("GET", "same-key") == b"value-005999"


def test_snapshots_without_aof_survive_restart(tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    directory.mkdir()
    proc, port = start_memory_server(directory)
    try:
        client = client_for(port)
        write_sample(client)
        expected = dump_all(client)
        assert client.execute_command("SAVE")
        assert (directory / "dump.aof").exists()
        assert RawClient(port).call("LASTSAVE")[1] >= int(time.time()) - 5
        client.execute_command("SET", "late", "write")
        expected = dump_all(client)
        shutdown(port, "SAVE")
        assert proc.wait(10) == 0
        proc, port = start_memory_server(directory)
        assert dump_all(client_for(port)) == expected
        assert RawClient(port).call("BGSAVE") == ("+", "Background saving started")
    finally:
        _stop(proc)


def test_shutdown_nosave_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    directory = tmp_path / "snap"
    directory.mkdir()
    proc, port = start_memory_server(directory)
    client = client_for(port)
    client.execute_command("SET", "saved", "1")
    client.execute_command("SAVE")
    client.execute_command("SET", "unsaved", "1")
    shutdown(port, "NOSAVE")
    assert proc.wait(10) == 0
    proc, port = start_memory_server(directory)
    try:
        client = client_for(port)
        assert client.execute_command("EXISTS", "saved", "unsaved") == 1
    finally:
        _stop(proc)


def test_bgrewriteaof_inside_a_transaction_does_not_replay_it_twice(memory_aof: Any, tmp_path: Path) -> None:
    proc, port = memory_aof(tmp_path / "mem")
    raw = RawClient(port)
    for command in (("MULTI",), ("RPUSH", "l", "x"), ("INCR", "c"), ("BGREWRITEAOF",)):
        raw.call(*command)
    assert raw.call("EXEC")[0] == "*"
    aof = tmp_path / "mem" / "appendonly.aof"
    _wait(lambda: b"MULTI" not in aof.read_bytes())          # the rewrite ran after the EXEC
    shutdown(port, "NOSAVE")
    proc.wait(10)
    _, port = memory_aof(tmp_path / "mem")
    client = client_for(port)
    assert client.execute_command("LRANGE", "l", 0, -1) == [b"x"]
    assert client.execute_command("GET", "c") == b"1"


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 512 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): " + done.stderr.decode().strip())
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill_until_refused(raw: RawClient, prefix: str) -> tuple[list[str], str]:
    acknowledged = []
    for i in range(400):
        reply = raw.call("SET", f"{prefix}{i}", "v" * 4000)
        if reply[0] == "-":
            return acknowledged, reply[1]
        acknowledged.append(f"{prefix}{i}")
    raise AssertionError("the disk never filled up")


def test_a_full_disk_refuses_writes_with_misconf_and_loses_no_acknowledged_write(
        small_disk: Path, memory_aof: Any, tmp_path: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * 200 * 1024)
    proc, port = memory_aof(small_disk, "--appendfsync", "everysec")
    raw = RawClient(port)
    acknowledged, error = _fill_until_refused(raw, "k")
    assert error.startswith("MISCONF Errors writing to the AOF file")
    assert raw.call("GET", acknowledged[0])[0] == "$"                 # reads still work
    filler.unlink()                                                   # room again: the retry lands
    _wait(lambda: raw.call("SET", "after", "1") == ("+", "OK"))
    shutdown(port, "NOSAVE")
    proc.wait(10)
    _, port = memory_aof(small_disk)
    client = client_for(port)
    assert client.execute_command("EXISTS", *acknowledged, "after") == len(acknowledged) + 1


def test_appendfsync_always_exits_rather_than_acknowledge_an_unwritten_write(
        small_disk: Path, memory_aof: Any) -> None:
    proc, port = memory_aof(small_disk, "--appendfsync", "always")
    raw = RawClient(port)
    acknowledged = []
    for i in range(400):
        try:
            reply = raw.call("SET", f"k{i}", "v" * 4000)
        except ConnectionError:
            break
        assert reply == ("+", "OK")
        acknowledged.append(f"k{i}")
    assert proc.wait(10) == 1
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    _, port = memory_aof(small_disk)
    assert client_for(port).execute_command("EXISTS", *acknowledged) == len(acknowledged)
