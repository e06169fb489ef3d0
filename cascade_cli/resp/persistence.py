"""Persistence of the in-memory server: the append-only file and snapshots, both in RESP.

The append-only file is Redis's classic single file, `<dir>/<appendfilename>`: the write
commands, with SELECT before a change of database. Redis 7.0 loads such a file as it is (and
migrates it into its multi-part directory). Snapshots (SAVE, BGSAVE, save points, SHUTDOWN)
are the same format, written to `<dir>/<dbfilename stem>.aof` (`dump.aof` by default): a
compacted command list, not RDB, so that real Redis never mistakes it for a dump.rdb.

Background work forks like Redis: the child writes the compacted dataset; the parent keeps
serving, buffers the writes that arrive meanwhile and appends them when the child is done.

Engine integration: `attach(engine)` at start (loads data, opens the file, sets engine.aof);
the transport calls `engine.aof.flush()` before it sends replies (so with appendfsync always,
a reply is sent only after its write reached the disk) and `tick()` every cycle; `close(engine)`
and `shutdown_save(engine)` on the way out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cascade_cli.resp.protocol import ProtocolError, RequestParser, format_double
from cascade_cli.resp.store import RHash, RList, RSet, now_ms

ITEMS_PER_COMMAND = 64          # elements per RPUSH/SADD/HSET/ZADD when compacting


class PersistenceError(Exception):
    """A file could not be loaded or written; the message says which and why."""


def encode_command(argv: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


# --- compaction: the dataset as commands ---------------------------------------------------------

def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def value_commands(key: bytes, value: Any) -> Iterator[list[bytes]]:
    """Commands that rebuild `value` at `key` (no expiry)."""
    if type(value) in (bytes, bytearray):
        yield [b"SET", key, bytes(value)]
    elif type(value) is RList:
        for chunk in _chunks(list(value), ITEMS_PER_COMMAND):
            yield [b"RPUSH", key, *chunk]
    elif type(value) is RSet:
        for chunk in _chunks(list(value), ITEMS_PER_COMMAND):
            yield [b"SADD", key, *chunk]
    elif type(value) is RHash:
        flat = [item for pair in value.items() for item in pair]
        for chunk in _chunks(flat, 2 * ITEMS_PER_COMMAND):
            yield [b"HSET", key, *chunk]
    elif hasattr(value, "rewrite_commands"):
        yield from value.rewrite_commands(key)
    elif getattr(value, "TYPE", None) == b"zset":
        flat = []
        for member, score in _zset_items(value):
            flat += [format_double(score), member]
        for chunk in _chunks(flat, 2 * ITEMS_PER_COMMAND):
            yield [b"ZADD", key, *chunk]
    else:
        raise PersistenceError(f"cannot persist a value of type {type(value).__name__}")


def _zset_items(value: Any) -> Iterator[tuple[bytes, float]]:
    scores = getattr(value, "scores", None) or getattr(value, "dict", None)
    if isinstance(scores, dict):
        yield from scores.items()
        return
    for member, score in value.items():
        yield member, score


def dataset_commands(engine: Any) -> Iterator[list[bytes]]:
    """The whole live dataset as commands: SELECT, then per key its value and PEXPIREAT."""
    now = now_ms()
    for db in engine.dbs:
        if not db.data:
            continue
        yield [b"SELECT", b"%d" % db.index]
        expires = db.expires
        for key, value in list(db.data.items()):
            when = expires.get(key)
            if when is not None and when <= now:
                continue
            yield from value_commands(key, value)
            if when is not None:
                yield [b"PEXPIREAT", key, b"%d" % when]


def write_dataset(engine: Any, path: Path) -> None:
    """Write the compacted dataset to `path` atomically (temp file, fsync, rename)."""
    temp = path.with_name(f"temp-{os.getpid()}-{path.name}")
    with open(temp, "wb") as handle:
        batch: list[bytes] = []
        size = 0
        for argv in dataset_commands(engine):
            chunk = encode_command(argv)
            batch.append(chunk)
            size += len(chunk)
            if size > 1 << 20:
                handle.write(b"".join(batch))
                batch, size = [], 0
        handle.write(b"".join(batch))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- loading -------------------------------------------------------------------------------------

def load_file(engine: Any, path: Path, log: Any = None) -> int:
    """Replay the commands of `path` into the engine; returns how many ran.

    A truncated tail (a crash in the middle of a write) is cut off, as Redis does with
    aof-load-truncated yes; an incomplete MULTI at the end is dropped. Any other problem raises
    PersistenceError.
    """
    from cascade_cli.resp.core import Client
    from cascade_cli.resp.protocol import ErrorReply
    data = path.read_bytes()
    if data.startswith(b"REDIS"):
        raise PersistenceError(f"{path} starts with an RDB preamble, which this server cannot read; "
                               "load it with redis-server, or rewrite it with aof-use-rdb-preamble no")
    parser = RequestParser(max_bulk=1 << 62)
    try:
        commands = parser.feed(data)
    except ProtocolError as error:
        raise PersistenceError(f"bad file format reading {path}: {error}") from None
    loader = Client(engine)
    loader.authenticated = True
    loader.may_block = False
    saved_aof, engine.aof = engine.aof, None
    engine.loading = True
    offset = 0
    multi_start = 0
    try:
        for argv in commands:
            if argv[0].lower() == b"multi":
                multi_start = offset
            reply = engine.execute(loader, argv)
            offset += len(encode_command(argv))
            if isinstance(reply, ErrorReply):
                raise PersistenceError(f"{path}: command {argv[0].decode('utf-8', 'replace')!r} at byte "
                                       f"{offset} failed while loading: {reply.text}")
        good = offset                   # the files are canonical RESP: bytes of whole commands
        if loader.multi is not None:
            loader.multi = None
            good = multi_start
        if good < len(data):
            if log is not None:
                log(f"!!! Warning: short read while loading the AOF file {path}: "
                    f"{len(data) - good} bytes of an incomplete command dropped, file truncated")
            with open(path, "r+b") as handle:
                handle.truncate(good)
    finally:
        engine.loading = False
        engine.aof = saved_aof
        engine.pending_propagation = []
        engine.clients.pop(loader.id, None)
    return len(commands)


# --- the live append-only file -------------------------------------------------------------------

class AppendOnlyFile:
    """The open AOF of a running server. Engine.flush_propagation calls `feed`."""

    def __init__(self, engine: Any, path: Path) -> None:
        self.engine = engine
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.base_size = self.size
        self.buffer: list[bytes] = []
        self.db = -1                       # database of the last SELECT written
        self.last_fsync = time.monotonic()
        self.unsynced = False
        self.rewrite_buffer: list[tuple[int, list[bytes]]] | None = None
        self.last_write_ok = True

    def feed(self, entries: list[tuple[int, list[bytes]]]) -> None:
        buffer = self.buffer
        for db, argv in entries:
            if db != self.db:
                buffer.append(encode_command([b"SELECT", b"%d" % db]))
                self.db = db
            buffer.append(encode_command(argv))
        if self.rewrite_buffer is not None:
            self.rewrite_buffer.extend(entries)

    def flush(self) -> None:
        """Write what was fed; with appendfsync always, also fsync. Call before replying."""
        if not self.buffer:
            return
        data = b"".join(self.buffer)
        self.buffer = []
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            if self.engine.params.appendfsync == "always":
                os.fsync(self.fd)
        except OSError as error:
            # Cut a partial write off so the file ends on a whole command; keep it for a retry.
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            self.buffer = [data]
            self.last_write_ok = False
            self.engine.write_error = f"MISCONF Errors writing to the AOF file: {error.strerror}"
            raise PersistenceError(f"cannot write the append-only file {self.path}: {error.strerror}") from None
        self.size += len(data)
        self.unsynced = self.engine.params.appendfsync != "always"
        if not self.last_write_ok:
            self.last_write_ok = True
            self.engine.write_error = None

    def tick(self) -> None:
        self.flush()
        if self.unsynced and self.engine.params.appendfsync == "everysec" \
                and time.monotonic() - self.last_fsync >= 1:
            self.fsync()

    def fsync(self) -> None:
        if self.unsynced:
            os.fsync(self.fd)
            self.unsynced = False
        self.last_fsync = time.monotonic()

    def reopen(self, base_size: int) -> None:
        """After the file was replaced by a rewrite whose compacted part is `base_size` bytes:
        append to the new file."""
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.base_size = base_size
        self.db = -1

    def close(self) -> None:
        try:
            self.flush()
            self.fsync()
        finally:
            os.close(self.fd)


# --- background work (fork) ----------------------------------------------------------------------

class Persistence:
    """Per-engine persistence state: the AOF, snapshots, child processes, INFO fields."""

    def __init__(self, engine: Any, log: Any) -> None:
        self.engine = engine
        self.log = log
        self.aof: AppendOnlyFile | None = None
        self.child: tuple[str, int, float] | None = None      # (kind, pid, started)
        self.rewrite_scheduled = False
        self.rdb_last_bgsave_ok = True
        self.aof_last_rewrite_ok = True
        self.aof_rewrites = 0
        self.rewrite_failed_at = -1e9           # monotonic time of the last failed rewrite
        self.last_save_dirty = engine.dirty
        self.last_save_time = time.time()

    @property
    def directory(self) -> Path:
        return Path(self.engine.params.dir or ".")

    @property
    def aof_path(self) -> Path:
        return self.directory / self.engine.params.appendfilename

    @property
    def snapshot_path(self) -> Path:
        return self.directory / (Path(self.engine.params.dbfilename).stem + ".aof")

    # ---- start-up ----

    def load(self) -> None:
        """Load the AOF when appendonly is on (else the snapshot), then open the AOF."""
        params = self.engine.params
        source = self.aof_path if params.appendonly else self.snapshot_path
        if source.exists():
            started = time.monotonic()
            count = load_file(self.engine, source, self.log)
            self.log(f"DB loaded from {source.name}: {count} commands, "
                     f"{time.monotonic() - started:.3f} seconds")
        if params.appendonly:
            self.open_aof()
        self.last_save_dirty = self.engine.dirty

    def open_aof(self) -> None:
        self.aof = AppendOnlyFile(self.engine, self.aof_path)
        self.engine.aof = self.aof

    # ---- snapshots ----

    def save(self) -> None:
        """SAVE: write the snapshot now (and the AOF stays as it is)."""
        write_dataset(self.engine, self.snapshot_path)
        self.saved()

    def saved(self) -> None:
        self.last_save_dirty = self.engine.dirty
        self.last_save_time = time.time()
        self.engine.lastsave = int(self.last_save_time)
        self.rdb_last_bgsave_ok = True

    def bgsave(self) -> bool:
        """Fork a child that writes the snapshot; False when a child is already running."""
        return self._fork("bgsave", lambda: write_dataset(self.engine, self.snapshot_path))

    def bgrewriteaof(self) -> bool:
        """Fork a child that writes the compacted AOF; writes meanwhile are buffered."""
        temp = self.directory / f"temp-rewriteaof-bg-{os.getpid()}.aof"
        if self.child is not None:
            return False
        if self.aof is not None:
            self.aof.flush()
        started = self._fork("aofrewrite", lambda: write_dataset(self.engine, temp))
        if started and self.aof is not None:
            self.aof.rewrite_buffer = []
        return started

    def _fork(self, kind: str, work: Any) -> bool:
        if self.child is not None:
            return False
        pid = os.fork()
        if pid == 0:                                   # the child: write, then leave at once
            code = 0
            try:
                work()
            except BaseException:                      # noqa: BLE001 - report through the exit code
                code = 1
            os._exit(code)
        self.child = (kind, pid, time.time())
        self.log(f"Background {'saving' if kind == 'bgsave' else 'append only file rewriting'} "
                 f"started by pid {pid}")
        return True

    def wait_child(self, block: bool = False) -> None:
        """Reap a finished child and complete its work (rename, append the buffered writes)."""
        if self.child is None:
            return
        kind, pid, _ = self.child
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done == 0:
            return
        self.child = None
        ok = os.waitstatus_to_exitcode(status) == 0
        if kind == "bgsave":
            self.rdb_last_bgsave_ok = ok
            if ok:
                self.saved()
            self.log("Background saving terminated with success" if ok else "Background saving error", )
        else:
            self._finish_rewrite(pid, ok)
        if self.rewrite_scheduled and self.child is None:
            self.rewrite_scheduled = False
            self.bgrewriteaof()

    def _finish_rewrite(self, pid: int, ok: bool) -> None:
        temp = self.directory / f"temp-rewriteaof-bg-{os.getpid()}.aof"
        aof = self.aof
        buffered = aof.rewrite_buffer if aof is not None else None
        if aof is not None:
            aof.rewrite_buffer = None
        self.aof_last_rewrite_ok = ok
        if not ok:
            self.rewrite_failed_at = time.monotonic()
            self.log("Background AOF rewrite failed", "#")
            temp.unlink(missing_ok=True)
            return
        compacted = temp.stat().st_size         # growth is measured against this, as Redis does
        if buffered:
            with open(temp, "ab") as handle:
                db = -1
                for index, argv in buffered:
                    if index != db:
                        handle.write(encode_command([b"SELECT", b"%d" % index]))
                        db = index
                    handle.write(encode_command(argv))
                handle.flush()
                os.fsync(handle.fileno())
        if aof is not None:
            aof.flush()
        os.replace(temp, self.aof_path)
        _fsync_dir(self.aof_path.parent)
        if aof is not None:
            aof.reopen(compacted)
        self.aof_rewrites += 1
        self.log("Background AOF rewrite finished successfully")

    # ---- periodic ----

    def tick(self) -> None:
        self.wait_child()
        self._follow_config()
        if self.rewrite_scheduled and self.child is None and not self.engine.pending_propagation:
            self.rewrite_scheduled = False
            self.bgrewriteaof()
        if self.aof is not None:
            self.aof.tick()
            params = self.engine.params
            growth = params.auto_aof_rewrite_percentage
            if self.child is None and growth and self.aof.size > params.auto_aof_rewrite_min_size \
                    and time.monotonic() - self.rewrite_failed_at > 5:
                base = max(self.aof.base_size, 1)
                if (self.aof.size - base) * 100 // base >= growth:
                    self.log("Starting automatic rewriting of AOF on "
                             f"{(self.aof.size - base) * 100 // base}% growth")
                    self.bgrewriteaof()
        if self.child is None:
            self._save_points()

    def _follow_config(self) -> None:
        """CONFIG SET appendonly yes|no: start (from a fresh rewrite) or stop the AOF."""
        wanted = bool(self.engine.params.appendonly)
        if wanted and self.aof is None and self.child is None:
            write_dataset(self.engine, self.aof_path)
            self.open_aof()
            self.log("AOF enabled: the dataset was written to " + str(self.aof_path))
        elif not wanted and self.aof is not None:
            self.aof.close()
            self.aof = None
            self.engine.aof = None

    def _save_points(self) -> None:
        spec = self.engine.params.save.split()
        changes = self.engine.dirty - self.last_save_dirty
        if not changes or len(spec) % 2:
            return
        elapsed = time.time() - self.last_save_time
        for seconds, count in zip(spec[::2], spec[1::2]):
            if changes >= int(count) and elapsed >= int(seconds):
                self.log(f"{count} changes in {seconds} seconds. Saving...")
                self.bgsave()
                return

    # ---- shutdown ----

    def shutdown(self, mode: str | None) -> None:
        """Make data durable before exit: mode "save" forces a snapshot, "nosave" skips it,
        None saves when save points are configured. Raises PersistenceError on failure."""
        if self.child is not None:
            try:
                os.kill(self.child[1], 9)
                os.waitpid(self.child[1], 0)
            except OSError:
                pass
            if self.aof is not None:
                self.aof.rewrite_buffer = None
            self.child = None
        if self.aof is not None:
            self.aof.flush()
            self.aof.fsync()
        if mode == "save" or (mode is None and self.engine.params.save.strip()):
            try:
                self.save()
            except OSError as error:
                raise PersistenceError(f"Error trying to save the DB: {error.strerror}") from None

    def info(self) -> dict[str, Any]:
        """Fields for INFO persistence."""
        aof = self.aof
        child = self.child
        return {
            "loading": 0,
            "async_loading": 0,
            "rdb_changes_since_last_save": self.engine.dirty - self.last_save_dirty,
            "rdb_bgsave_in_progress": int(child is not None and child[0] == "bgsave"),
            "rdb_last_save_time": int(self.last_save_time),
            "rdb_last_bgsave_status": "ok" if self.rdb_last_bgsave_ok else "err",
            "aof_enabled": int(bool(self.engine.params.appendonly)),   # at once, as Redis: not at the next tick
            "aof_rewrite_in_progress": int(child is not None and child[0] == "aofrewrite"),
            "aof_rewrite_scheduled": int(self.rewrite_scheduled),
            "aof_last_bgrewrite_status": "ok" if self.aof_last_rewrite_ok else "err",
            "aof_rewrites": self.aof_rewrites,
            "aof_last_write_status": "ok" if aof is None or aof.last_write_ok else "err",
            "aof_current_size": aof.size if aof is not None else 0,
            "aof_base_size": aof.base_size if aof is not None else 0,
            "cascade_snapshot_file": str(self.snapshot_path),
        }


# --- the hooks the server calls ------------------------------------------------------------------

def of(engine: Any) -> Persistence:
    """The engine's Persistence (created on first use)."""
    state = engine.hooks.get("persistence")
    if state is None:
        log = engine.hooks.get("log") or (lambda message, level="*": None)
        state = Persistence(engine, log)
        engine.hooks["persistence"] = state
    return state  # type: ignore[no-any-return]


def attach(engine: Any) -> None:
    """Load the data files and open the append-only file (when appendonly is on)."""
    of(engine).load()


def tick(engine: Any) -> None:
    state = engine.hooks.get("persistence")
    if state is not None:
        state.tick()


def shutdown_save(engine: Any, mode: str | None = None) -> None:
    """Make everything durable before a shutdown (SIGTERM, SHUTDOWN)."""
    of(engine).shutdown(mode)


def close(engine: Any) -> None:
    """Close the append-only file."""
    state = engine.hooks.get("persistence")
    if state is not None and state.aof is not None:
        state.aof.close()
        state.aof = None
        engine.aof = None
