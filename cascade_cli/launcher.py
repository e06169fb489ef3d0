"""Run Redis on this machine: find redis-server, start it or the in-memory server, stop, check.

    start(StartOptions)        detached server: pidfile, log, config and data under the state dir
    run_foreground(...)        the same server attached; SIGINT/SIGTERM stop it cleanly
    stop(port, nosave)         SHUTDOWN [SAVE|NOSAVE], wait for the process to exit, clean up
    status(settings, url)      INFO as one record: engine, version, pid, uptime, memory, keys...
    ping(settings, url, n)     PING round trips: min/avg/p50/p99/max in milliseconds

Both engines take the same redis.conf directives, so one generated config file (mode 0600,
in the state dir) serves both: `redis-server FILE` (or valkey-server) and
`python -m cascade_cli.resp FILE`. The password only ever travels in that file, never on a
command line. The state of the server on port P lives in `$XDG_STATE_HOME/cascade/redis-P/`
(`~/.local/state/...`): `redis.pid`, `redis.log`, `redis.conf`, `launch.json`, `lock` and
`data/`.

Start-up and stop talk to the server with a tiny synchronous RESP client (PING, AUTH, INFO,
SHUTDOWN: a few commands on a local socket, no client library to import); status and ping go
through `connect.redis_client`, like every other Redis client in cascade. Nothing here prints;
failures are `cascade_cli.errors` exceptions.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cascade_cli.config import mask_url
from cascade_cli.errors import (
    CheckFailed,
    ConfigError,
    OperationalError,
    RemoteError,
    UnreachableError,
    UsageError,
)

if TYPE_CHECKING:
    from cascade_cli.config import RedisSettings

ENGINES = ("auto", "native", "memory")
APPENDFSYNC = ("always", "everysec", "no")
NATIVE_NAMES = ("redis-server", "valkey-server")
MEMORY_MODULE = "cascade_cli.resp"
DEFAULT_PORT = 6379
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
POLL_S = 0.02


# ---- state files ------------------------------------------------------------------------------

def state_home(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/cascade (an absolute XDG_STATE_HOME only, as the XDG spec says), else
    ~/.local/state/cascade."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME", "")
    if not base or not os.path.isabs(base):
        base = str(Path(env.get("HOME") or "~").expanduser() / ".local" / "state")
    return Path(base) / "cascade"


@dataclass(frozen=True)
class StatePaths:
    """The files of the server cascade runs on one port."""

    root: Path

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    @property
    def conf(self) -> Path:
        return self.root / "redis.conf"

    @property
    def launch(self) -> Path:
        return self.root / "launch.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def read_pid(self) -> int | None:
        try:
            text = self.pidfile.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and int(text) > 0 else None

    def read_launch(self) -> dict[str, Any]:
        try:
            data = json.loads(self.launch.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def password(self) -> str | None:
        """The requirepass of the generated config file, if any."""
        try:
            text = self.conf.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        for line in text.splitlines():
            name, _, value = line.strip().partition(" ")
            if name.lower() == "requirepass":
                return unquote_conf(value.strip()) or None
        return None

    def clean(self) -> None:
        """Remove the pidfile, launch record and config file (the log and data stay)."""
        for path in (self.pidfile, self.launch, self.conf):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def state_paths(port: int, env: Mapping[str, str] | None = None) -> StatePaths:
    return StatePaths(state_home(env) / f"redis-{port}")


@contextmanager
def _locked(paths: StatePaths) -> Iterator[None]:
    """Serialise starts and stops on one port (two at once would fight over the pidfile)."""
    try:
        paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(paths.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OperationalError(f"cannot use the state directory {paths.root}: {exc.strerror}",
                               "check its permissions, or set XDG_STATE_HOME") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---- pure helpers -----------------------------------------------------------------------------

def default_port(url: str) -> int:
    """The port of a redis:// or rediss:// URL (6379 when it has none or is a unix socket)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return DEFAULT_PORT
    return port if parts.scheme in ("redis", "rediss") and port else DEFAULT_PORT


def connect_host(bind: str) -> str:
    """Where a local client reaches a server bound to `bind` (its first address; a wildcard
    becomes loopback)."""
    first = (bind.split() or ["127.0.0.1"])[0].lstrip("-")
    if first in ("0.0.0.0", "*", ""):
        return "127.0.0.1"
    if first in ("::", "::*", "[::]"):
        return "::1"
    return first


def local_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"redis://{shown}:{port}/0"


def quote_conf(value: str) -> str:
    """A redis.conf argument: bare when safe, else double-quoted with backslash escapes."""
    if value and all(c.isalnum() or c in "-_./:,@+=%~*" for c in value):
        return value
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def unquote_conf(text: str) -> str:
    """Undo `quote_conf` (for the values cascade itself wrote)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    body, out, i = text[1:-1], [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "x" and i + 3 < len(body):
                out.append(chr(int(body[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def config_text(*, port: int, bind: str, data_dir: Path, appendonly: bool, appendfsync: str,
                password: str | None) -> str:
    """The redis.conf both engines read. Holds the password, so it is written with mode 0600."""
    lines = [
        "# Written by `cascade redis start`; regenerated on every start.",
        f"port {port}",
        f"bind {' '.join(quote_conf(b) for b in bind.split()) or '127.0.0.1'}",
        f"dir {quote_conf(str(data_dir))}",
        "daemonize no",
        f"appendonly {'yes' if appendonly else 'no'}",
        f"appendfsync {appendfsync}",
    ]
    if password:
        lines.append(f"requirepass {quote_conf(password)}")
    return "\n".join(lines) + "\n"


def parse_info(text: str) -> dict[str, str]:
    """INFO's `name:value` lines as a flat dict (section headers and blanks skipped)."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if sep:
            info[name] = value
    return info


def keyspace(info: Mapping[str, str]) -> list[dict[str, int]]:
    """`db0:keys=3,expires=1,avg_ttl=0` lines as `[{"db": 0, "keys": 3, "expires": 1,
    "avg_ttl_ms": 0}]`, by database number."""
    dbs = []
    for name, value in info.items():
        if not (name.startswith("db") and name[2:].isdigit()):
            continue
        fields_ = dict(part.partition("=")[::2] for part in value.split(","))
        dbs.append({"db": int(name[2:]), "keys": _int(fields_.get("keys")),
                    "expires": _int(fields_.get("expires")), "avg_ttl_ms": _int(fields_.get("avg_ttl"))})
    return sorted(dbs, key=lambda d: d["db"])


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _num(value: str | None) -> int | float | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None


def identify(info: Mapping[str, str]) -> tuple[str, str, str]:
    """(engine, server, version) from INFO server: the in-memory server says `cascade_version`,
    valkey says `server_name:valkey`, real Redis says neither."""
    if "cascade_version" in info:
        return "memory", "cascade", info["cascade_version"]
    if info.get("server_name", "").lower() == "valkey":
        return "native", "valkey", info.get("valkey_version") or info.get("redis_version", "")
    return "native", "redis", info.get("redis_version", "")


def _identity(info: Mapping[str, str], engine: str, argv: list[str]) -> tuple[str, str, str]:
    """identify() when INFO said something, else what cascade launched (version unknown)."""
    if "redis_version" in info or "cascade_version" in info:
        return identify(info)
    if engine == "memory":
        return "memory", "cascade", ""
    name = Path(str(argv[0])).name if argv else ""
    return engine, "valkey" if "valkey" in name else "redis", ""


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


# ---- a tiny synchronous RESP client (start-up and stop only) ------------------------------------

class ReplyError(Exception):
    """An error reply (`-ERR ...`, `-NOAUTH ...`) from the server."""


class _Resp:
    """One RESP2 connection: `call(*args)` returns the reply, error replies as ReplyError values."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def __enter__(self) -> _Resp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for closer in (self.file.close, self.sock.close):
            try:
                closer()
            except OSError:
                pass

    def send(self, *args: str | bytes) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))

    def read(self) -> Any:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError("connection closed by the server")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode(errors="replace")
        if kind == b"-":
            return ReplyError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionResetError("connection closed by the server")
            return data[:-2]
        if kind == b"*":
            count = int(body)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise ConnectionResetError(f"not a RESP reply: {line[:40]!r}")

    def call(self, *args: str | bytes) -> Any:
        self.send(*args)
        return self.read()


@dataclass
class _Answer:
    """What a quick look at a port found."""

    state: str                   # "down", "ready", "loading", "auth", "error"
    info: dict[str, str] = field(default_factory=dict)
    message: str = ""


def _look(host: str, port: int, password: str | None, timeout: float = 1.0) -> _Answer:
    """Connect, AUTH if we have a password, PING, and INFO server when it answers PONG."""
    try:
        with _Resp(host, port, timeout) as conn:
            if password:
                reply = conn.call("AUTH", password)
                if isinstance(reply, ReplyError):
                    return _Answer("auth", message=str(reply))
            reply = conn.call("PING")
            if isinstance(reply, ReplyError):
                text = str(reply)
                kind = "loading" if text.startswith("LOADING") else \
                    "auth" if text.startswith(("NOAUTH", "WRONGPASS")) else "error"
                return _Answer(kind, message=text)
            info = conn.call("INFO", "server")
            text = info.decode(errors="replace") if isinstance(info, bytes) else ""
            return _Answer("ready", parse_info(text))
    except (OSError, ValueError) as exc:
        return _Answer("down", message=str(exc))


def _listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _port_in_use(host: str, port: int) -> bool:
    """Whether binding `host:port` fails because something holds the port. UsageError when the
    address itself cannot be bound here."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot use bind address {host!r}: {exc.strerror}",
                         "give an IP address of this machine, e.g. --bind 127.0.0.1") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EACCES:
                raise UsageError(f"not allowed to listen on port {port}",
                                 "ports below 1024 need privileges; choose a higher --port") from exc
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                             "give an IP address of this machine, e.g. --bind 127.0.0.1") from exc
    return False


# ---- processes --------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _looks_like_server(pid: int) -> bool:
    """Guard against a recycled pid: the process's command line names a Redis-like server
    (where /proc exists; elsewhere we trust the pidfile)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    return any(word in cmdline for word in ("redis", "valkey", MEMORY_MODULE))


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(POLL_S)
    return not _alive(pid)


def _log_tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined on one line (for an error message)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def find_native(configured: str = "", path: str | None = None) -> str | None:
    """The redis-server to run: the configured binary (which must exist), else redis-server or
    valkey-server from PATH."""
    if configured:
        found = shutil.which(os.path.expanduser(configured), path=path)
        if not found:
            raise ConfigError(f"redis.server_binary {configured!r} is not an executable file",
                              "fix redis.server_binary (CASCADE_REDIS_SERVER_BINARY) or leave it "
                              "empty to search PATH for redis-server")
        return found
    for name in NATIVE_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def memory_available() -> bool:
    """Whether this install has the in-memory server (`python -m cascade_cli.resp`)."""
    return (Path(__file__).resolve().parent / "resp" / "__main__.py").is_file()


def server_argv(engine: str, server_binary: str = "") -> tuple[str, list[str]]:
    """(engine, argv without the config file) for `auto`, `native` or `memory`."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", f"choose one of: {', '.join(ENGINES)}")
    if engine in ("auto", "native"):
        binary = find_native(server_binary)
        if binary:
            return "native", [binary]
        if engine == "native":
            raise OperationalError("no redis-server or valkey-server found on PATH",
                                   "install redis-server (apt-get install redis-server), set "
                                   "redis.server_binary, or use --engine memory")
    if not memory_available():
        raise OperationalError("the in-memory server is not part of this install",
                               "install redis-server, or use --engine native")
    return "memory", [sys.executable, "-m", MEMORY_MODULE]


def _child_env() -> dict[str, str]:
    """The environment of the server: ours, plus this package on PYTHONPATH (the server runs
    in its data directory, so `python -m cascade_cli.resp` must not depend on the cwd)."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    return env


# ---- start ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StartOptions:
    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    engine: str = "auto"
    data_dir: Path | None = None
    appendonly: bool = False
    appendfsync: str = "everysec"
    password: str | None = field(default=None, repr=False)
    server_binary: str = ""
    timeout: float = 30.0


@dataclass
class Started:
    """A server that answers: the one just started, or the one already running there."""

    engine: str
    server: str
    version: str
    pid: int
    port: int
    bind: str
    url: str
    data_dir: str
    log_file: str | None
    state_dir: str
    requirepass: bool
    already_running: bool = False
    startup_ms: float | None = None
    removed_stale_pid: int | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _prepare(options: StartOptions, paths: StatePaths) -> tuple[str, list[str], Path]:
    """Check the port, pick the engine, create the directories and write the config file.
    Returns (engine, argv, data_dir)."""
    if options.appendfsync not in APPENDFSYNC:
        raise UsageError(f"unknown appendfsync policy {options.appendfsync!r}",
                         f"choose one of: {', '.join(APPENDFSYNC)}")
    host = connect_host(options.bind)
    if _port_in_use((options.bind.split() or ["127.0.0.1"])[0].lstrip("-"), options.port):
        raise OperationalError(f"port {options.port} is already in use by another process",
                               f"choose another --port, or stop whatever listens on {host}:{options.port}")
    engine, argv = server_argv(options.engine, options.server_binary)
    data_dir = (options.data_dir.expanduser().resolve() if options.data_dir else paths.data)
    try:
        paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(paths.conf, config_text(port=options.port, bind=options.bind, data_dir=data_dir,
                                               appendonly=options.appendonly,
                                               appendfsync=options.appendfsync,
                                               password=options.password))
    except OSError as exc:
        raise OperationalError(f"cannot prepare {exc.filename or paths.root}: {exc.strerror}",
                               "check the permissions of the state and data directories") from exc
    return engine, [*argv, str(paths.conf)], data_dir


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _already_running(options: StartOptions, paths: StatePaths) -> Started | int | None:
    """The running server started by cascade on this port (a Started), the pid of a stale
    pidfile that was removed (an int), or None. OperationalError when our process lives but
    does not answer."""
    pid = paths.read_pid()
    if pid is None:
        return None
    if not (_alive(pid) and _looks_like_server(pid)):
        paths.clean()
        return pid
    launch = paths.read_launch()
    host = connect_host(launch.get("bind", options.bind))
    answer = _look(host, options.port, paths.password() or options.password)
    if answer.state == "down":
        raise OperationalError(f"the server cascade started on port {options.port} (pid {pid}) "
                               "is running but does not answer",
                               f"see {paths.log}; stop it with `cascade redis stop --port {options.port}`")
    engine, server, version = _identity(answer.info, launch.get("engine", "native"), launch.get("argv") or [])
    return Started(engine=engine, server=server, version=version, pid=pid, port=options.port,
                   bind=launch.get("bind", options.bind), url=local_url(host, options.port),
                   data_dir=launch.get("data_dir", ""), log_file=launch.get("log_file"),
                   state_dir=str(paths.root), requirepass=bool(paths.password()),
                   already_running=True)


def _wait_ready(proc: subprocess.Popen[bytes], host: str, port: int, password: str | None,
                timeout: float, log: Path | None, started: float,
                on_wait: Callable[[float], None] | None) -> _Answer:
    """Poll until the server answers PING; OperationalError when it exits or takes too long."""
    deadline = started + timeout
    answer = _Answer("down")
    while True:
        code = proc.poll()
        if code is not None:
            tail = _log_tail(log) if log else ""
            raise OperationalError(f"the server exited during start-up (exit code {code})"
                                   + (f": {tail}" if tail else ""),
                                   f"see the log {log}" if log else "see its messages above")
        answer = _look(host, port, password, timeout=1.0)
        if answer.state in ("ready", "auth", "error"):
            return answer
        if time.monotonic() > deadline:
            what = "is still loading its data" if answer.state == "loading" else "does not answer PING"
            raise OperationalError(f"the server (pid {proc.pid}) {what} after {timeout:g} s",
                                   f"it is still running: see {log or 'its messages'}, raise --timeout, "
                                   f"or stop it with `cascade redis stop --port {port}`")
        if on_wait:
            on_wait(time.monotonic() - started)
        time.sleep(POLL_S)


def _spawn(options: StartOptions, paths: StatePaths, *, foreground: bool,
           on_wait: Callable[[float], None] | None = None,
           on_spawn: Callable[[subprocess.Popen[bytes]], None] | None = None,
           ) -> tuple[subprocess.Popen[bytes], Started]:
    engine, argv, data_dir = _prepare(options, paths)
    host = connect_host(options.bind)
    log = None if foreground else paths.log
    started = time.monotonic()
    try:
        if foreground:
            # The server's messages go to stderr: stdout is for data.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                                    stderr=sys.stderr.fileno(), cwd=data_dir, env=_child_env(),
                                    start_new_session=True)
        else:
            with paths.log.open("ab") as log_file:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                        stderr=subprocess.STDOUT, cwd=data_dir, env=_child_env(),
                                        start_new_session=True)
    except OSError as exc:
        paths.clean()
        raise OperationalError(f"cannot run {argv[0]}: {exc.strerror}",
                               "check redis.server_binary, or use --engine memory") from exc
    if on_spawn:
        on_spawn(proc)
    paths.pidfile.write_text(f"{proc.pid}\n")
    paths.launch.write_text(json.dumps({
        "engine": engine, "pid": proc.pid, "port": options.port, "bind": options.bind,
        "data_dir": str(data_dir), "log_file": str(log) if log else None,
        "argv": argv, "started_at": time.time(), "foreground": foreground,
    }, indent=2) + "\n")
    try:
        answer = _wait_ready(proc, host, options.port, options.password, options.timeout, log,
                             started, on_wait)
    except BaseException as exc:
        # A detached server that is merely slow keeps running (the error says so); one
        # interrupted by Ctrl-C, or a foreground one, goes.
        if proc.poll() is None and (foreground or not isinstance(exc, OperationalError)):
            _terminate(proc)
        if proc.poll() is not None:
            paths.clean()
        raise
    if answer.state != "ready":
        _terminate(proc)
        paths.clean()
        raise OperationalError(f"the server answered PING with an error: {answer.message}",
                               f"see {log or 'its messages'}")
    found_engine, server, version = _identity(answer.info, engine, argv)
    result = Started(engine=found_engine, server=server, version=version, pid=proc.pid,
                     port=options.port, bind=options.bind, url=local_url(host, options.port),
                     data_dir=str(data_dir), log_file=str(log) if log else None,
                     state_dir=str(paths.root), requirepass=bool(options.password),
                     startup_ms=round((time.monotonic() - started) * 1000, 1))
    return proc, result


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(options: StartOptions, *, on_wait: Callable[[float], None] | None = None,
          env: Mapping[str, str] | None = None) -> Started:
    """Start a detached server on `options.port`, or report the one cascade already runs there.

    `on_wait(elapsed_s)` is called while waiting for the first PONG (for a progress display).
    Raises OperationalError when the port is taken, the engine is missing, or the server exits
    or does not answer in time; UsageError for a bad bind address.
    """
    paths = state_paths(options.port, env)
    with _locked(paths):
        found = _already_running(options, paths)
        if isinstance(found, Started):
            return found
        _, result = _spawn(options, paths, foreground=False, on_wait=on_wait)
    result.removed_stale_pid = found
    return result


@dataclass
class Finished:
    """How a foreground server ended."""

    exit_code: int
    signal_name: str | None      # the signal that asked it to stop, if any


def run_foreground(options: StartOptions, *, on_ready: Callable[[Started], None] | None = None,
                   env: Mapping[str, str] | None = None) -> Started | Finished:
    """Run the server attached until it exits. SIGINT, SIGTERM and SIGHUP are passed on as
    SIGTERM (a clean shutdown that saves); a second one kills it. Returns the running server's
    Started when one already runs on the port, else how it finished. OperationalError when it
    fails to start or exits on its own with an error."""
    paths = state_paths(options.port, env)
    procs: list[subprocess.Popen[bytes]] = []
    asked: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        asked.append(signum)
        if procs and procs[0].poll() is None:
            procs[0].send_signal(signal.SIGTERM if len(asked) == 1 else signal.SIGKILL)

    def spawned(proc: subprocess.Popen[bytes]) -> None:
        procs.append(proc)
        if asked:  # a signal came before the process existed
            proc.send_signal(signal.SIGTERM)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, forward) for sig in handled}
    try:
        with _locked(paths):  # held until the server answers, not while it runs
            found = _already_running(options, paths)
            if isinstance(found, Started):
                return found
            try:
                proc, result = _spawn(options, paths, foreground=True, on_spawn=spawned)
            except OperationalError:
                if asked:  # stopped while starting: that is what was asked for
                    return Finished(0, signal.Signals(asked[0]).name)
                raise
        result.removed_stale_pid = found if isinstance(found, int) else None
        try:
            if on_ready:
                on_ready(result)
            code = proc.wait()
        except BaseException:
            _terminate(proc)
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if procs and procs[0].poll() is not None:
            paths.clean()
    if asked:
        if code not in (0, -signal.SIGTERM):
            raise OperationalError(f"the server exited with code {code} while stopping",
                                   "see its messages above")
        return Finished(0, signal.Signals(asked[0]).name)
    if code != 0:
        raise OperationalError(f"the server exited with code {code}", "see its messages above")
    return Finished(0, None)


# ---- stop -------------------------------------------------------------------------------------

@dataclass
class Stopped:
    """What `stop` did: `outcome` is stopped, not_running or stale_pidfile."""

    port: int
    outcome: str
    pid: int | None = None
    engine: str | None = None
    server: str | None = None    # what ran: redis-server, valkey-server or the in-memory server
    saved: bool = False
    data_dir: str | None = None
    stop_ms: float | None = None
    how: str | None = None       # "SHUTDOWN SAVE", "SHUTDOWN NOSAVE" or "SIGTERM"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def stop(port: int, *, nosave: bool = False, timeout: float = 30.0,
         env: Mapping[str, str] | None = None) -> Stopped:
    """Stop the server cascade started on `port`: SHUTDOWN SAVE (or NOSAVE), then wait for the
    process to exit and remove the pidfile, launch record and config file.

    Nothing running there is not an error (outcome `not_running`, or `stale_pidfile` after
    removing a pidfile whose process is gone). Raises OperationalError when something cascade
    did not start listens there, RemoteError when the server refuses to shut down (e.g. the
    save failed), OperationalError when it does not exit within `timeout` seconds.
    """
    paths = state_paths(port, env)
    if not paths.root.is_dir():
        return _stop(paths, port, nosave, timeout)
    with _locked(paths):
        return _stop(paths, port, nosave, timeout)


def _stop(paths: StatePaths, port: int, nosave: bool, timeout: float) -> Stopped:
    launch = paths.read_launch()
    host = connect_host(launch.get("bind", "127.0.0.1"))
    pid = paths.read_pid()
    if pid is None or not (_alive(pid) and _looks_like_server(pid)):
        paths.clean()
        if _listening(host, port):
            raise OperationalError(f"cascade started no server on port {port}, but another process "
                                   "listens there; cascade only stops servers it started",
                                   "stop it the way it was started (for a Redis server: "
                                   f"redis-cli -p {port} shutdown)")
        return Stopped(port, "stale_pidfile" if pid is not None else "not_running", pid=pid)

    started = time.monotonic()
    how = f"SHUTDOWN {'NOSAVE' if nosave else 'SAVE'}"
    try:
        with _Resp(host, port, timeout=2.0) as conn:
            password = paths.password()
            if password:
                reply = conn.call("AUTH", password)
                if isinstance(reply, ReplyError):
                    raise RemoteError(f"the server on port {port} refused the password cascade "
                                      f"started it with: {reply}", f"see {paths.log}")
            conn.send("SHUTDOWN", "NOSAVE" if nosave else "SAVE")
            try:
                reply = conn.read()
            except OSError:
                reply = None  # the server closed the connection: it is shutting down
    except OSError:
        reply, how = None, "SIGTERM"  # it does not answer: ask the process instead
        _signal(pid, signal.SIGTERM)
    if isinstance(reply, ReplyError):
        if "unknown command" in str(reply).lower():
            how = "SIGTERM"
            _signal(pid, signal.SIGTERM)
        else:
            hint = f"see {paths.log}" + ("" if nosave else "; `--nosave` stops it without saving")
            raise RemoteError(f"the server on port {port} refused to shut down: {reply}", hint)
    if not _wait_gone(pid, timeout):
        raise OperationalError(f"the server (pid {pid}) is still running {timeout:g} s after {how}",
                               f"see {paths.log}; wait longer with --timeout, or `kill {pid}`")
    paths.clean()
    argv = launch.get("argv") or [""]
    server = "the in-memory server" if launch.get("engine") == "memory" else Path(str(argv[0])).name or None
    return Stopped(port, "stopped", pid=pid, engine=launch.get("engine"), server=server, saved=not nosave,
                   data_dir=launch.get("data_dir"), stop_ms=round((time.monotonic() - started) * 1000, 1),
                   how=how)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ---- clients: status and ping -----------------------------------------------------------------

def port_url(port: int, env: Mapping[str, str] | None = None) -> str:
    """The URL of the server on this machine's `port`: where cascade started it, else loopback."""
    bind = state_paths(port, env).read_launch().get("bind") or "127.0.0.1"
    return local_url(connect_host(str(bind)), port)


def target(url: str, env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(url, fallback password) for a status or ping. The fallback is the password cascade
    started a local server with, when the URL points at one on this machine."""
    try:
        parts = urlsplit(url)
        port = parts.port if parts.scheme in ("redis", "rediss") else None
    except ValueError:
        return url, None
    if parts.hostname not in LOOPBACK or port is None:
        return url, None
    paths = state_paths(port, env)
    return url, (paths.password() if paths.read_pid() is not None else None)


def _client(settings: RedisSettings, url: str, fallback_password: str | None) -> Any:
    from cascade_cli.connect import redis_client

    options: dict[str, Any] = {}
    try:
        has_password = urlsplit(url).password is not None or "password=" in urlsplit(url).query
    except ValueError:
        has_password = False
    if fallback_password and not settings.password and not has_password:
        options["password"] = fallback_password
    return redis_client(settings, url, **options)


def _redis_failure(exc: Exception, shown: str, settings: RedisSettings, *, check: bool) -> Exception:
    """A redis-py exception as one cascade error; an error answer is a failed check (exit 3)
    for ping and a remote error (exit 1) for status."""
    import redis.exceptions as rx

    answered = CheckFailed if check else RemoteError
    text = str(exc) or type(exc).__name__
    if isinstance(exc, rx.AuthenticationError):
        return answered(f"{shown} refused authentication: {text}",
                        "set the password with CASCADE_REDIS_PASSWORD or in the URL "
                        "(redis://:PASSWORD@host:port)")
    if isinstance(exc, rx.BusyLoadingError):
        return answered(f"{shown} is loading its data: {text}", "try again in a moment")
    if isinstance(exc, rx.ResponseError):
        return answered(f"{shown} answered with an error: {text}", "check the server's configuration")
    if isinstance(exc, (rx.TimeoutError, TimeoutError)):
        return UnreachableError(f"no answer from {shown} within {settings.timeout:g} s",
                                "check that the server is up, or raise redis.timeout")
    return UnreachableError(f"cannot reach {shown}: {text}",
                            "is a server running there? start one with `cascade redis start`, "
                            "or check redis.url (CASCADE_REDIS_URL)")


@dataclass
class Status:
    url: str
    engine: str
    server: str
    version: str
    redis_version: str
    pid: int | None
    port: int | None
    uptime_ms: int | None
    used_memory_bytes: int | None
    used_memory_human: str | None
    connected_clients: int | None
    keys: int
    databases: list[dict[str, int]]
    ops_per_sec: float | None
    aof_enabled: bool | None
    rdb_changes_since_last_save: int | None
    rdb_last_save_time: int | None
    rdb_last_bgsave_status: str | None
    loading: bool | None
    managed: bool
    state_dir: str | None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def status_from_info(url: str, info: Mapping[str, str], env: Mapping[str, str] | None = None) -> Status:
    """The status record from INFO's fields (pure apart from reading the state dir)."""
    engine, server, version = identify(info)
    dbs = keyspace(info)
    pid = _num(info.get("process_id"))
    port = _num(info.get("tcp_port"))
    uptime = _num(info.get("uptime_in_seconds"))
    managed, state_dir = False, None
    if isinstance(port, int) and isinstance(pid, int):
        paths = state_paths(port, env)
        if paths.read_pid() == pid:
            managed, state_dir = True, str(paths.root)

    def flag(name: str) -> bool | None:
        value = info.get(name)
        return None if value is None else value.strip() in ("1", "yes")

    return Status(
        url=mask_url(url), engine=engine, server=server, version=version,
        redis_version=info.get("redis_version", ""), pid=pid if isinstance(pid, int) else None,
        port=port if isinstance(port, int) else None,
        uptime_ms=int(uptime * 1000) if uptime is not None else None,
        used_memory_bytes=_as_int(info.get("used_memory")),
        used_memory_human=info.get("used_memory_human"),
        connected_clients=_as_int(info.get("connected_clients")),
        keys=sum(db["keys"] for db in dbs), databases=dbs,
        ops_per_sec=_num(info.get("instantaneous_ops_per_sec")),
        aof_enabled=flag("aof_enabled"),
        rdb_changes_since_last_save=_as_int(info.get("rdb_changes_since_last_save")),
        rdb_last_save_time=_as_int(info.get("rdb_last_save_time")),
        rdb_last_bgsave_status=info.get("rdb_last_bgsave_status"),
        loading=flag("loading"), managed=managed, state_dir=state_dir,
    )


def _as_int(value: str | None) -> int | None:
    number = _num(value)
    return int(number) if number is not None else None


def status(settings: RedisSettings, url: str | None = None,
           env: Mapping[str, str] | None = None) -> Status:
    """INFO from the server at `url` (default redis.url) as a Status. UnreachableError when
    nothing answers, RemoteError when it answers with an error (e.g. NOAUTH)."""
    import asyncio

    import redis.exceptions as rx

    url, fallback = target(url or settings.url, env)
    shown = mask_url(url)

    async def fetch() -> str:
        client = _client(settings, url, fallback)
        try:
            conn = await client.connection_pool.get_connection()
            try:
                await conn.send_command("INFO")
                raw = await conn.read_response()
            finally:
                await client.connection_pool.release(conn)
        finally:
            await client.aclose()
        if isinstance(raw, Exception):
            raise raw
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    try:
        text = asyncio.run(fetch())
    except (rx.RedisError, OSError) as exc:
        raise _redis_failure(exc, shown, settings, check=False) from exc
    info = parse_info(text)
    if not info:
        raise RemoteError(f"{shown} answered INFO with nothing cascade can read",
                          "is this a Redis server?")
    return status_from_info(url, info, env)


@dataclass
class PingReport:
    """PING round trips on one connection. `outcome` is ok, error or unreachable."""

    url: str
    count: int
    samples_ms: list[float]
    outcome: str = "ok"
    error: str | None = None
    hint: str | None = None
    interrupted: bool = False
    exit_error: Exception | None = field(default=None, repr=False)

    def to_record(self) -> dict[str, Any]:
        from cascade_cli.bench.stats import percentile

        s = self.samples_ms
        stats: dict[str, float | None] = dict.fromkeys(("min_ms", "avg_ms", "p50_ms", "p99_ms", "max_ms"))
        if s:
            stats = {"min_ms": round(min(s), 3), "avg_ms": round(sum(s) / len(s), 3),
                     "p50_ms": round(percentile(s, 50), 3), "p99_ms": round(percentile(s, 99), 3),
                     "max_ms": round(max(s), 3)}
        return {"url": self.url, "outcome": self.outcome, "count": self.count,
                "answered": len(s), **stats, "interrupted": self.interrupted, "error": self.error}


def ping(settings: RedisSettings, url: str | None = None, count: int = 10, interval: float = 0.1,
         env: Mapping[str, str] | None = None,
         on_sample: Callable[[int, float], None] | None = None) -> PingReport:
    """Send `count` PINGs, `interval` seconds apart, on one connection opened (and authenticated)
    first, as `redis-cli --latency` does; each sample is one round trip in milliseconds.

    Never raises for what the server did: the report's `outcome` says ok, error (an error
    answer such as NOAUTH) or unreachable, and `exit_error` holds the matching cascade error.
    Ctrl-C stops early and keeps the samples taken so far.
    """
    import asyncio

    import redis.exceptions as rx

    url, fallback = target(url or settings.url, env)
    report = PingReport(mask_url(url), count, [])

    def failed(exc: BaseException) -> None:
        error = _redis_failure(exc if isinstance(exc, Exception) else Exception(str(exc)),
                               report.url, settings, check=True)
        report.outcome = "unreachable" if isinstance(error, UnreachableError) else "error"
        report.error, report.hint = str(error), getattr(error, "hint", None)
        report.exit_error = error

    async def run() -> None:
        client = _client(settings, url, fallback)
        conn = None
        try:
            conn = await client.connection_pool.get_connection()
            for index in range(count):
                if index and interval:
                    await asyncio.sleep(interval)
                began = time.perf_counter()
                await conn.send_command("PING")
                reply = await conn.read_response()
                elapsed = (time.perf_counter() - began) * 1000
                if isinstance(reply, Exception):
                    raise reply
                report.samples_ms.append(elapsed)
                if on_sample:
                    on_sample(index + 1, elapsed)
        except asyncio.CancelledError:
            report.interrupted = True
        except (rx.RedisError, OSError) as exc:
            failed(exc)
        finally:
            if conn is not None:
                await client.connection_pool.release(conn)
            await client.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        report.interrupted = True
    return report
