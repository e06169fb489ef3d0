"""Settings: defaults < user file < project file or --config < CASCADE_* env < flags.

Call `load_settings()` once per command with the flag overrides it received, then read typed
values such as `settings.venice.base_url`; `settings.source("venice.base_url")` says where a
value came from. Every problem is a `ConfigError` (exit 2) naming the file, line and key.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from cascade_cli.errors import ConfigError

PROJECT_FILE = "cascade.toml"
MASK = "********"
DEFAULT_CHANNELS = ["consciousness-stream", "ai-collaborations", "cascade-events"]


def _key(
    default: Any,
    help: str,
    *,
    secret: bool = False,
    check: Callable[[Any], str | None] | None = None,
    legacy_env: str | None = None,
) -> Any:
    """Declare one config key: its default, its one-line help and how to validate it."""
    meta = {"help": help, "secret": secret, "check": check, "legacy_env": legacy_env}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda value: None if low <= value <= high else f"must be between {low:g} and {high:g}"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port between 0 and 65535"


def _url(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        problem = f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number or too big
        except ValueError as exc:
            return f"{problem} ({exc})"
        if parts.scheme in schemes and (parts.hostname or parts.scheme == "unix"):
            return None
        return problem

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"must be one of: {', '.join(choices)}"


def _channels(value: list[str]) -> str | None:
    bad = [name for name in value if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", name)]
    if bad:
        return (f"has invalid channel name {bad[0]!r} (letters, digits, '.', '_', ':', '-'; "
                "starting with a letter or digit)")
    return None if value else "must name at least one channel"


def _channel_history(value: list[str]) -> str | None:
    for item in value:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}=[0-9]+/[0-9]+(\.[0-9]+)?", item) \
                or int(item.split("=")[1].split("/")[0]) < 1:
            return (f"has {item!r}: write CHANNEL=SIZE/TTL, SIZE at least 1 and TTL in seconds (0: no "
                    "age limit), e.g. cascade-events=10000/86400")
    return None


def _path_with_query(value: str) -> str | None:
    return None if value.startswith("/") else "must be a path starting with /"


@dataclass(frozen=True)
class RedisSettings:
    url: str = _key(
        "redis://127.0.0.1:6379/0",
        "Redis URL: redis://[:password@]host:port/db, rediss://... or unix:///path",
        check=_url("redis", "rediss", "unix"),
    )
    password: str = _key("", "Redis password; prefer CASCADE_REDIS_PASSWORD", secret=True)
    max_connections: int = _key(50, "connection pool limit per process", check=_positive)
    connect_timeout: float = _key(2.0, "seconds to wait for a TCP connection", check=_positive)
    timeout: float = _key(5.0, "seconds to wait for a reply", check=_positive)
    engine: str = _key("auto", "server `cascade redis start` runs: auto (redis-server if installed, "
                       "else the in-memory server), native or memory",
                       check=_one_of("auto", "native", "memory"))
    server_binary: str = _key("", "redis-server or valkey-server to run (empty: search PATH)")
    cluster: str = _key("auto", "whether redis.url is a Redis Cluster node: auto (ask the server), yes or no",
                        check=_one_of("auto", "yes", "no"))


@dataclass(frozen=True)
class ServeSettings:
    host: str = _key("127.0.0.1", "address the HTTP API and WebSocket hub bind to")
    port: int = _key(8000, "TCP port of the HTTP API and WebSocket hub (0: any free port)", check=_port)
    channels: list[str] = _key(DEFAULT_CHANNELS, "channels the hub accepts", check=_channels)
    allow_any_channel: bool = _key(False, "accept any channel name matching [A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
    bus: str = _key("redis", "how instances share events: redis (pub/sub on redis.url) or local (one "
                    "process)", check=_one_of("redis", "local"))
    embedded_redis: str = _key("auto", "auto: start the in-memory Redis server in-process when nothing "
                               "answers at a local redis.url; never: run degraded and keep retrying",
                               check=_one_of("auto", "never"))
    queue_size: int = _key(1000, "events buffered per client before the slow-client policy applies",
                           check=_positive)
    slow_client_policy: str = _key("drop-oldest", "drop-oldest or disconnect",
                                   check=_one_of("drop-oldest", "disconnect"))
    heartbeat: float = _key(20.0, "seconds between server pings to each client", check=_positive)
    heartbeat_timeout: float = _key(20.0, "seconds a client has to answer a ping before it is closed",
                                    check=_positive)
    max_message_size: int = _key(65536, "largest WebSocket frame accepted, in bytes", check=_positive)
    compression: bool = _key(False, "offer permessage-deflate to WebSocket clients (costs memory per "
                             "connection)")
    max_connections: int = _key(10000, "WebSocket clients at once; more are closed with 1013",
                                check=_positive)
    connect_rate: float = _key(0.0, "WebSocket connects and publish requests per second per client "
                               "address (bursts of twice that); 0: no limit", check=_not_negative)
    forwarded_allow_ips: str = _key("", "proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted, "
                                    "comma-separated IPs or *; empty: none (clients are who connect)")
    allowed_origins: list[str] = _key([], "browser Origins allowed to connect (empty: any)")
    token: str = _key("", "token required to publish and to connect; prefer CASCADE_SERVE_TOKEN or "
                      "token_file", secret=True)
    token_file: str = _key("", "file whose first line is the token (used when token is empty)")
    workers: int = _key(1, "worker processes serving one port, joined through the Redis bus",
                        check=_between(1, 64))
    history_size: int = _key(1000, "events kept per channel for resuming clients (Redis stream MAXLEN)",
                             check=_between(1, 1_000_000))
    history_ttl: float = _key(3600.0, "seconds events stay in a channel's history (stream MINID); 0: no "
                              "age limit", check=_not_negative)
    channel_history: list[str] = _key([], "per-channel history bounds, CHANNEL=SIZE/TTL (e.g. "
                                      "cascade-events=10000/86400)", check=_channel_history)
    venice_proxy: bool = _key(True, "serve GET /api/venice/{path} from the Venice bridge")
    venice_cache_ttl: float = _key(30.0, "seconds Venice answers stay cached in Redis", check=_positive)


@dataclass(frozen=True)
class VeniceSettings:
    base_url: str = _key("https://serenissima.ai/api", "base URL of the Venice bridge API",
                         check=_url("http", "https"), legacy_env="VENICE_API_URL")
    api_key: str = _key("", "optional API key sent as a Bearer token; prefer CASCADE_VENICE_API_KEY",
                        secret=True, legacy_env="VENICE_API_KEY")
    api_key_file: str = _key("", "file whose first line is the API key (used when api_key is empty)")
    ping_path: str = _key("/activities?limit=1", "path that `cascade venice ping` probes",
                          check=_path_with_query)
    timeout: float = _key(10.0, "seconds to wait for an answer", check=_positive)
    connect_timeout: float = _key(5.0, "seconds to wait for a connection", check=_positive)
    retries: int = _key(2, "retries of a GET after a connect error, 429, 502, 503 or 504",
                        check=_between(0, 10))
    backoff: float = _key(0.5, "first retry delay in seconds; doubles each retry, with jitter",
                          check=_between(0, 60))
    max_retry_wait: float = _key(10.0, "longest Retry-After cascade waits for before giving up",
                                 check=_between(0, 600))


@dataclass(frozen=True)
class BenchSettings:
    clients: int = _key(50, "concurrent connections", check=_positive)
    requests: int = _key(100000, "requests per test", check=_positive)
    pipeline: int = _key(1, "commands in flight per connection", check=_positive)
    data_size: int = _key(3, "value size in bytes", check=_positive)
    processes: int = _key(0, "load generator processes (0: one per core)", check=_not_negative)
    warmup: float = _key(1.0, "seconds of load excluded from results", check=_not_negative)


@dataclass(frozen=True)
class MonitorSettings:
    interval: float = _key(1.0, "seconds between refreshes of `cascade monitor` and the dashboard",
                           check=_between(0.1, 3600))
    timeout: float = _key(2.0, "seconds each source has to answer one reading before it counts as "
                          "unreachable", check=_between(0.1, 60))
    window: float = _key(300.0, "seconds of history behind the sparklines and charts",
                         check=_between(10, 86400))
    hub_url: str = _key("", "URL of the `cascade serve` to watch (empty: http://serve.host:serve.port)",
                        check=lambda v: None if not v else _url("http", "https")(v))
    venice: bool = _key(True, "watch the Venice bridge too (probes venice.ping_path)")
    venice_interval: float = _key(15.0, "seconds between Venice probes (the API allows 100 requests "
                                  "a minute per address)", check=_between(1, 3600))


SECTIONS: dict[str, type] = {
    "redis": RedisSettings,
    "serve": ServeSettings,
    "venice": VeniceSettings,
    "bench": BenchSettings,
    "monitor": MonitorSettings,
}


@dataclass(frozen=True)
class KeySpec:
    """One config key as the schema declares it."""

    section: str
    name: str
    type: type
    default: Any
    help: str
    secret: bool
    check: Callable[[Any], str | None] | None
    legacy_env: str | None

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"CASCADE_{self.section}_{self.name}".upper()


def _schema() -> list[KeySpec]:
    specs = []
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            hint = hints[f.name]
            specs.append(KeySpec(section, f.name, list if hint == list[str] else hint, default,
                                 f.metadata["help"], f.metadata["secret"], f.metadata["check"],
                                 f.metadata["legacy_env"]))
    return specs


SCHEMA: list[KeySpec] = _schema()
SPECS: dict[str, KeySpec] = {spec.dotted: spec for spec in SCHEMA}


@dataclass(frozen=True)
class Settings:
    """Effective settings, one typed section per attribute, plus where each value came from."""

    redis: RedisSettings
    serve: ServeSettings
    venice: VeniceSettings
    bench: BenchSettings
    monitor: MonitorSettings
    sources: dict[str, str]
    files: list[Path]

    def value(self, dotted: str) -> Any:
        section, name = dotted.split(".", 1)
        return getattr(getattr(self, section), name)

    def source(self, dotted: str) -> str:
        return self.sources[dotted]

    def rows(self) -> list[dict[str, Any]]:
        """Every key with its effective value (secrets masked) and source, in schema order."""
        return [
            {"key": spec.dotted, "value": display_value(spec, self.value(spec.dotted)),
             "source": self.sources[spec.dotted]}
            for spec in SCHEMA
        ]


def display_value(spec: KeySpec, value: Any) -> Any:
    """The value as it may be shown to a user: secrets masked, passwords cut out of URLs."""
    if spec.secret:
        return MASK if value else ""
    if spec.name.endswith("url") and isinstance(value, str):
        return mask_url(value)
    return value


def mask_url(url: str) -> str:
    """The URL with the password in its userinfo and any `password=` query value masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}")
    query = re.sub(r"(^|&)(password|pass|auth)=[^&]*", rf"\1\2={MASK}", parts.query, flags=re.I)
    return urlunsplit(parts._replace(query=query))


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the per-user config file lives: $XDG_CONFIG_HOME/cascade/config.toml."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "cascade" / "config.toml"


def config_files(config_file: Path | None, env: Mapping[str, str], cwd: Path) -> list[Path]:
    """The files read, lowest precedence first: the user file, then --config or ./cascade.toml."""
    files = [user_config_path(env)]
    files.append(config_file if config_file is not None else cwd / PROJECT_FILE)
    return files


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the effective settings.

    `overrides` maps a dotted key to `(value, flag name)` for flags the user passed (None values
    are ignored). Raises ConfigError on any invalid file, variable or value.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {spec.dotted: spec.default for spec in SCHEMA}
    sources: dict[str, str] = {spec.dotted: "default" for spec in SCHEMA}
    loaded: list[Path] = []

    for path in config_files(config_file, env, cwd):
        if not path.is_file():
            if path == config_file:
                raise ConfigError(f"config file {path} does not exist",
                                  "check the --config path or create it with `cascade config init`")
            continue
        for dotted, value in _read_file(path).items():
            values[dotted], sources[dotted] = value, f"file {path}"
        loaded.append(path)

    for spec in SCHEMA:
        for var in (spec.legacy_env, spec.env):
            if var and env.get(var, "") != "":
                where = f"environment variable {var}"
                values[spec.dotted] = _coerce_text(spec, env[var], where)
                sources[spec.dotted] = f"env {var}"

    for dotted, (value, flag) in (overrides or {}).items():
        if value is not None:
            spec = SPECS[dotted]
            where = f"flag {flag}"
            values[dotted] = (_coerce_text(spec, value, where) if isinstance(value, str)
                              else _check(spec, value, where))
            sources[dotted] = f"flag {flag}"

    sections = {
        name: cls(**{f.name: values[f"{name}.{f.name}"] for f in fields(cls)})
        for name, cls in SECTIONS.items()
    }
    return Settings(**sections, sources=sources, files=loaded)


def _read_file(path: Path) -> dict[str, Any]:
    """Parse one TOML file into dotted keys, validating every key and value against the schema."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}",
                          "check the file's permissions and that it is UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise ConfigError(f"{where}: invalid TOML: {exc}",
                          "fix the syntax, or compare with `cascade config init --stdout`") from exc

    result: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            raise _unknown(path, text, section, None, list(SECTIONS))
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, section)}: '{section}' must be a "
                              f"table such as [{section}]", "see `cascade config init --stdout`")
        for name, value in table.items():
            spec = SPECS.get(f"{section}.{name}")
            if spec is None:
                keys = [s.name for s in SCHEMA if s.section == section]
                raise _unknown(path, text, section, name, keys)
            result[spec.dotted] = _coerce_toml(spec, value, _where(path, text, spec.dotted))
    return result


def _unknown(path: Path, text: str, section: str, name: str | None, valid: list[str]) -> ConfigError:
    what = f"key '{section}.{name}'" if name else f"section [{section}]"
    wrong = name if name is not None else section
    close = difflib.get_close_matches(wrong, valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    scope = f"[{section}]" if name else "sections"
    dotted = f"{section}.{name}" if name is not None else section
    return ConfigError(f"{_where(path, text, dotted)}: unknown {what}",
                       f"{hint}valid {scope}: {', '.join(valid)}")


_HEADER = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^([A-Za-z0-9_.\"' -]+?)\s*=")


def _dotted(raw: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in raw.split("."))


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer + ".")


def _where(path: Path, text: str, dotted: str) -> str:
    """`file:line` of the first line that defines `dotted` (a section or `section.key`).

    Understands `[a.b]` and `[[a]]` headers, dotted keys (`a.b = 1`) and inline tables
    (`a = { b = 1 }`); falls back to the bare file name.
    """
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            current = _dotted(header.group(1))
            if _within(current, dotted):
                return f"{path}:{number}"
            continue
        key = _KEY.match(line)
        if key:
            full = _dotted(f"{current}.{key.group(1)}" if current else key.group(1))
            if _within(full, dotted) or _within(dotted, full):
                return f"{path}:{number}"
    return str(path)


def _type_name(spec: KeySpec) -> str:
    return {str: "a string", int: "an integer", float: "a finite number", bool: "true or false",
            list: "a list of strings"}[spec.type]


def _invalid(spec: KeySpec, where: str, problem: str, shown: Any) -> ConfigError:
    """The error for a bad value; a secret's value is never shown, only its type."""
    got = f"a {type(shown).__name__} value" if spec.secret else json.dumps(display_value(spec, shown),
                                                                          default=str)
    return ConfigError(f"{where}: '{spec.dotted}' {problem}, got {got}",
                       "fix the value, or remove it to use the default "
                       "(`cascade config init --stdout` shows every key)")


def _coerce_toml(spec: KeySpec, value: Any, where: str) -> Any:
    """Check a value parsed from TOML against the key's type and rule."""
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        list: isinstance(value, list) and all(isinstance(item, str) for item in value),
    }[spec.type]
    if not ok or (spec.type is float and not math.isfinite(value)):
        raise _invalid(spec, where, f"must be {_type_name(spec)}", value)
    return _check(spec, float(value) if spec.type is float else value, where)


def _coerce_text(spec: KeySpec, text: str, where: str) -> Any:
    """Convert a string from the environment or a flag to the key's type."""
    try:
        if spec.type is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            value: Any = lowered in ("1", "true", "yes", "on")
        elif spec.type is list:
            value = [item.strip() for item in text.split(",") if item.strip()]
        else:
            value = spec.type(text.strip()) if spec.type is not str else text
            if spec.type is float and not math.isfinite(value):
                raise ValueError(text)
    except ValueError:
        raise _invalid(spec, where, f"must be {_type_name(spec)}", text) from None
    return _check(spec, value, where)


def _check(spec: KeySpec, value: Any, where: str) -> Any:
    problem = spec.check(value) if spec.check else None
    if problem:
        raise _invalid(spec, where, problem, value)
    return value


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, str)):
        return json.dumps(value)
    return repr(value)


def starter_file() -> str:
    """A commented config file listing every key at its default; every line is commented out."""
    out = [
        "# cascade configuration.",
        "# Precedence: flags > CASCADE_* environment > --config FILE or ./cascade.toml",
        "#             > $XDG_CONFIG_HOME/cascade/config.toml > defaults.",
        "# Every key below is shown at its default; uncomment a line to change it.",
        "# Secrets belong in the environment or in a file, never in a flag.",
    ]
    section = None
    for spec in SCHEMA:
        if spec.section != section:
            section = spec.section
            out += ["", f"[{section}]"]
        out.append(f"# {spec.help} (env {spec.env})")
        out.append(f"# {spec.name} = {_toml_literal(spec.default)}")
    return "\n".join(out) + "\n"


def write_starter_file(path: Path, force: bool) -> Path:
    """Write `starter_file()` to `path`; refuses to overwrite an existing file unless `force`."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_file(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}",
                          "choose another path or fix the directory's permissions") from exc
    return path


def read_secret_file(path_text: str, key: str) -> str:
    """The first line of a secret file named by config key `key`; ConfigError when unreadable."""
    path = Path(path_text).expanduser()
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip() if path.stat().st_size else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {key} file {path}: {getattr(exc, 'strerror', exc)}",
                          f"check the path set in '{key}'") from exc
