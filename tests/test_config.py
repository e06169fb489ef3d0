"""Config precedence, validation and `cascade config show|path|init`."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from cascade_cli.config import SCHEMA, load_settings, mask_url, starter_file
from cascade_cli.errors import ConfigError
from conftest import Sandbox


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- the loader ------------------------------------------------------------------------------

def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path)}, cwd=tmp_path)
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
    assert settings.venice.base_url == "https://serenissima.ai/api"
    assert settings.serve.channels == ["consciousness-stream", "ai-collaborations", "cascade-events"]
    assert set(settings.sources.values()) == {"default"} and settings.files == []


def test_precedence_user_project_env_flag(tmp_path: Path) -> None:
    xdg, cwd = tmp_path / "xdg", tmp_path / "cwd"
    user = write(xdg / "cascade" / "config.toml", '[venice]\nbase_url = "http://user/api"\ntimeout = 1.5\n'
                 '[bench]\nclients = 7\n[redis]\nmax_connections = 3\n')
    project = write(cwd / "cascade.toml", '[venice]\nbase_url = "http://project/api"\ntimeout = 2\n'
                    '[bench]\nclients = 8\n')
    env = {"XDG_CONFIG_HOME": str(xdg), "CASCADE_VENICE_BASE_URL": "http://env/api",
           "CASCADE_BENCH_CLIENTS": "9"}
    settings = load_settings(env=env, cwd=cwd, overrides={"venice.base_url": ("http://flag/api", "--base-url")})
    assert settings.files == [user, project]
    assert (settings.venice.base_url, settings.source("venice.base_url")) == ("http://flag/api", "flag --base-url")
    assert (settings.bench.clients, settings.source("bench.clients")) == (9, "env CASCADE_BENCH_CLIENTS")
    assert (settings.venice.timeout, settings.source("venice.timeout")) == (2.0, f"file {project}")
    assert (settings.redis.max_connections, settings.source("redis.max_connections")) == (3, f"file {user}")
    assert isinstance(settings.venice.timeout, float)


def test_config_flag_replaces_project_file(tmp_path: Path) -> None:
    write(tmp_path / "cascade.toml", "[bench]\nclients = 8\n")
    chosen = write(tmp_path / "other.toml", "[bench]\npipeline = 16\n")
    settings = load_settings(chosen, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}, cwd=tmp_path)
    assert (settings.bench.clients, settings.bench.pipeline) == (50, 16)


def test_legacy_env_is_below_cascade_env(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "VENICE_API_URL": "http://legacy/api"}
    assert load_settings(env=env, cwd=tmp_path).venice.base_url == "http://legacy/api"
    env["CASCADE_VENICE_BASE_URL"] = "http://new/api"
    assert load_settings(env=env, cwd=tmp_path).venice.base_url == "http://new/api"


def test_env_values_are_typed(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "CASCADE_SERVE_CHANNELS": "a, b,,c", "CASCADE_SERVE_PORT": "0"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.serve.channels == ["a", "b", "c"] and settings.serve.port == 0


@pytest.mark.parametrize("text,line,needle", [
    ('[venice]\nbase_url = "http://x/api"\ntimeout = = 3\n', 3, "invalid TOML"),
    ('[redis]\nurl = "redis://h:1/0"\n\n[redis]\n', 4, "invalid TOML"),
    ('[venice]\nbase_url = "http://x/api"\nbase_ulr = "http://y/api"\n', 3, "unknown key 'venice.base_ulr'"),
    ('[bench]\nclients = 5\n\n[benchmark]\nclients = 5\n', 4, "unknown section [benchmark]"),
    ('[serve]\nport = "eighty"\n', 2, "must be an integer"),
    ('[serve]\nport = 70000\n', 2, "must be a TCP port"),
    ('[serve]\nslow_client_policy = "ignore"\n', 2, "must be one of: drop-oldest, disconnect"),
    ('[redis]\nurl = "http://localhost"\n', 2, "must be a URL starting with redis://"),
    ('venice = 3\n', 1, "must be a table"),
    ('[venice]\nretries = 2\n\n[venice.extra]\nx = 1\n', 4, "unknown key 'venice.extra'"),
    ('venice = { timeout = "x" }\n', 1, "'venice.timeout' must be a finite number"),
    ('[bench]\nclients = 2\nvenice.timeout = 3\n', 3, "unknown key 'bench.venice'"),
    ('[[venice]]\ntimeout = 1\n', 1, "must be a table"),
    ('[bench]\nclients = 2\n[benchmark.x]\ny = 1\n', 3, "unknown section [benchmark]"),
    ('[venice]\ntimeout = inf\n', 2, "must be a finite number"),
    ('[venice]\nretries = 1000000\n', 2, "must be between 0 and 10"),
    ('[venice]\nbase_url = "http://127.0.0.1:99999/api"\n', 2, "Port out of range"),
    ('[redis]\nurl = "redis://[bad"\n', 2, "must be a URL starting with redis://"),
])
def test_bad_files_name_file_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path / "cascade.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "x")}, cwd=tmp_path)
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"{path}:{line}: ")
    assert needle in caught.value.message
    assert caught.value.hint


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    write(tmp_path / "cascade.toml", "[bench]\npipelne = 4\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "x")}, cwd=tmp_path)
    assert "did you mean 'pipeline'?" in (caught.value.hint or "")


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CASCADE_BENCH_CLIENTS.*must be an integer"):
        load_settings(env={"XDG_CONFIG_HOME": str(tmp_path), "CASCADE_BENCH_CLIENTS": "lots"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="CASCADE_BENCH_CLIENTS.*greater than 0"):
        load_settings(env={"XDG_CONFIG_HOME": str(tmp_path), "CASCADE_BENCH_CLIENTS": "-1"}, cwd=tmp_path)


def test_unrelated_cascade_variables_are_ignored(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "CASCADE_TEST_REQUIRE_REDIS": "1"}
    assert load_settings(env=env, cwd=tmp_path).bench.clients == 50


def test_mask_url() -> None:
    assert mask_url("redis://:hunter2@h:6379/0") == "redis://:********@h:6379/0"
    assert mask_url("redis://u:p@h/0") == "redis://u:********@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_starter_file_parses_and_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    text = starter_file()
    assert tomllib.loads(text) == {section: {} for section in ("redis", "serve", "venice", "bench", "monitor")}
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)
    path = write(tmp_path / "cascade.toml", uncommented)
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "x")}, cwd=tmp_path)
    assert settings.files == [path]
    for spec in SCHEMA:
        assert settings.value(spec.dotted) == spec.default
        assert settings.source(spec.dotted) == f"file {path}"
        assert spec.env in text


# ---- through the CLI -------------------------------------------------------------------------

def test_config_show_formats_and_masks(sandbox: Sandbox) -> None:
    write(sandbox.user_config, '[redis]\nurl = "redis://:pw-in-file@10.0.0.5:6380/2"\n')
    env = {"CASCADE_REDIS_PASSWORD": "pw-in-env", "CASCADE_SERVE_PORT": "9001"}
    result = sandbox.run("config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {spec.dotted for spec in SCHEMA}
    assert rows["redis.url"] == {"key": "redis.url", "value": "redis://:********@10.0.0.5:6380/2",
                                 "source": f"file {sandbox.user_config}"}
    assert rows["redis.password"]["value"] == "********"
    assert rows["serve.port"] == {"key": "serve.port", "value": 9001, "source": "env CASCADE_SERVE_PORT"}
    for fmt in ("table", "csv", "markdown"):
        shown = sandbox.run("config", "show", "--format", fmt, env=env)
        assert shown.returncode == 0
        assert "pw-in-file" not in shown.stdout and "pw-in-env" not in shown.stdout
        assert "env CASCADE_SERVE_PORT" in shown.stdout
    assert "config files read: " in result.stderr


def test_config_errors_through_cli_exit_2(sandbox: Sandbox) -> None:
    write(sandbox.cwd / "cascade.toml", "[venice]\nretries = 2\ncolour = true\n")
    result = sandbox.run("config", "show")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {sandbox.cwd / 'cascade.toml'}:3: unknown key 'venice.colour'"
    assert lines[1].startswith("hint: valid [venice]: base_url, ")
    assert len(lines) == 2
    missing = sandbox.run("--config", "nope.toml", "config", "show")
    assert missing.returncode == 2 and "config file nope.toml does not exist" in missing.stderr


def test_config_flag_and_env_variable(sandbox: Sandbox) -> None:
    chosen = write(sandbox.root / "ci.toml", "[bench]\nclients = 4\n")
    for args, env in ((["--config", str(chosen)], {}), ([], {"CASCADE_CONFIG": str(chosen)})):
        result = sandbox.run(*args, "config", "show", "--json", env=env)
        rows = {row["key"]: row for row in json.loads(result.stdout)}
        assert rows["bench.clients"] == {"key": "bench.clients", "value": 4, "source": f"file {chosen}"}


def test_config_path_and_init(sandbox: Sandbox) -> None:
    assert sandbox.run("config", "path").stdout.strip() == str(sandbox.user_config)
    listing = json.loads(sandbox.run("config", "path", "--all", "--json").stdout)
    assert listing == [
        {"layer": "user", "path": str(sandbox.user_config), "exists": False},
        {"layer": "project", "path": str(sandbox.cwd / "cascade.toml"), "exists": False},
    ]
    created = sandbox.run("config", "init")
    assert created.returncode == 0 and created.stdout.strip() == str(sandbox.user_config)
    assert sandbox.user_config.read_text() == starter_file()
    sandbox.user_config.write_text("[bench]\nclients = 3\n")
    again = sandbox.run("config", "init")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert sandbox.user_config.read_text() == "[bench]\nclients = 3\n"
    forced = sandbox.run("config", "init", "--force")
    assert forced.returncode == 0 and sandbox.user_config.read_text() == starter_file()
    other = sandbox.run("config", "init", "project.toml")
    assert other.returncode == 0 and (sandbox.cwd / "project.toml").read_text() == starter_file()
    assert sandbox.run("config", "init", "--stdout").stdout == starter_file()


@pytest.mark.parametrize("text", ['[venice]\napi_key = 123456789\n', '[redis]\npassword = ["hunter2"]\n',
                                  '[redis]\nurl = "http://:hunter2@h/0"\n'])
def test_errors_never_show_a_secret(tmp_path: Path, text: str) -> None:
    write(tmp_path / "cascade.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "x")}, cwd=tmp_path)
    assert "123456789" not in caught.value.message and "hunter2" not in caught.value.message
    assert f"{tmp_path / 'cascade.toml'}:2: " in caught.value.message


@pytest.mark.parametrize("var,value,needle", [
    ("CASCADE_VENICE_TIMEOUT", "inf", "must be a finite number"),
    ("CASCADE_VENICE_TIMEOUT", "nan", "must be a finite number"),
    ("CASCADE_REDIS_URL", "redis://[bad", "must be a URL"),
    ("CASCADE_VENICE_BASE_URL", "http://127.0.0.1:abc/api", "must be a URL"),
])
def test_bad_env_values_are_usage_errors(sandbox: Sandbox, var: str, value: str, needle: str) -> None:
    result = sandbox.run("config", "show", env={var: value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: environment variable {var}: ") and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_masks_passwords_in_every_url(sandbox: Sandbox) -> None:
    env = {"CASCADE_VENICE_BASE_URL": "http://bob:hunter2@127.0.0.1:1/api",
           "CASCADE_REDIS_URL": "redis://127.0.0.1:6379/0?password=hunter2"}
    result = sandbox.run("config", "show", "--json", env=env)
    assert result.returncode == 0 and "hunter2" not in result.stdout
    rows = {row["key"]: row["value"] for row in json.loads(result.stdout)}
    assert rows["venice.base_url"] == "http://bob:********@127.0.0.1:1/api"
    assert rows["redis.url"] == "redis://127.0.0.1:6379/0?password=********"
