"""The root command: help, version, global options, exit codes, start-up weight, colour rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cascade_cli import __version__
from conftest import Sandbox, free_port, run_in_pty

GROUPS = ["redis", "serve", "bench", "venice", "monitor", "config"]


def test_help_lists_every_group_and_the_exit_codes(sandbox: Sandbox) -> None:
    for flag in ("--help", "-h"):
        result = sandbox.run(flag)
        assert result.returncode == 0 and result.stderr == ""
        commands = result.stdout.split("Commands:")[1].split()
        assert all(group in commands for group in GROUPS)
        assert "2 usage or configuration error" in result.stdout
    for option in ("--version", "--quiet", "--verbose", "--no-color", "--config FILE"):
        assert option in sandbox.run("--help").stdout


def test_no_arguments_shows_help_on_stderr_and_exits_2(sandbox: Sandbox) -> None:
    for args in ([], ["venice"]):
        result = sandbox.run(*args)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"Usage: {' '.join(['cascade', *args])} ")
        assert "error:" not in result.stderr


def test_version(sandbox: Sandbox) -> None:
    result = sandbox.run("--version")
    assert (result.returncode, result.stdout) == (0, f"cascade {__version__}\n")


@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "No such option: --bogus"),
    (["venice", "frobnicate"], "No such command 'frobnicate'"),
    (["venice", "ping", "--count", "many"], "Invalid value for '--count'"),
    (["config", "show", "--format", "yaml"], "'yaml' is not one of"),
])
def test_parser_errors_are_one_line_with_a_hint(sandbox: Sandbox, args: list[str], needle: str) -> None:
    result = sandbox.run(*args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert lines[1].startswith("hint: see 'cascade") and lines[1].endswith(" --help'")


def test_help_and_completion_do_not_import_heavy_libraries(sandbox: Sandbox) -> None:
    probe = (
        "import sys, os\n"
        "from cascade_cli.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('redis', 'httpx', 'httpcore', 'websockets', 'uvicorn', 'hiredis',"
        " 'rich.live', 'tabulate', 'fastapi', 'starlette', 'uvloop') if m in sys.modules)\n"
        "os.write(int(os.environ['PROBE_FD']), ' '.join(heavy).encode())\n"
    )
    cases = [(["--help"], {}), (["--version"], {}), (["venice", "get", "--help"], {}), (["serve", "--help"], {}),
             (["bench", "redis", "--help"], {}), (["bench", "ws", "--help"], {}), (["bench", "api", "--help"], {}),
             (["monitor", "--help"], {}),
             ([], {"_CASCADE_COMPLETE": "complete_bash", "COMP_WORDS": "cascade venice get ci",
                   "COMP_CWORD": "3"})]
    for args, extra in cases:
        read, write = os.pipe()
        proc = subprocess.run([sys.executable, "-c", probe, *args], env={**sandbox.env, **extra, "PROBE_FD": str(write)},
                              pass_fds=(write,), capture_output=True, text=True, timeout=30)
        os.close(write)
        with os.fdopen(read) as pipe:
            heavy = pipe.read()
        assert proc.returncode == 0, proc.stderr
        assert heavy == "", f"{args or extra}: imported {heavy}"
        if extra:
            assert "citizens" in proc.stdout  # resource names complete without a network library


def test_quiet_silences_messages_but_not_errors(sandbox: Sandbox) -> None:
    shown = sandbox.run("-q", "config", "show", "--json")
    assert shown.returncode == 0 and shown.stderr == "" and json.loads(shown.stdout)
    failed = sandbox.run("-q", "redis", "status", "--port", str(free_port()))
    assert failed.returncode == 1 and failed.stderr.startswith("error: ")




def test_colour_only_on_a_terminal_and_never_when_disabled(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "TERM": "xterm-256color", "COLUMNS": "160"}
    coloured = run_in_pty(["config", "show"], env)
    assert "\x1b[" in coloured and "redis.url" in coloured
    unreachable = ["redis", "status", "--port", str(free_port())]
    error = run_in_pty(unreachable, env)
    assert "\x1b[1;31merror:" in error
    for extra_args, extra_env in ((["--no-color"], {}), ([], {"NO_COLOR": "1"}), ([], {"TERM": "dumb"})):
        plain = run_in_pty([*extra_args, "config", "show"], {**env, **extra_env})
        assert "redis.url" in plain and "\x1b[" not in plain, (extra_args, extra_env)
        plain_error = run_in_pty([*extra_args, *unreachable], {**env, **extra_env})
        assert "error: cannot reach redis://" in plain_error and "\x1b[" not in plain_error
    piped = sandbox.run("config", "show", env={"TERM": "xterm-256color"})
    assert "\x1b[" not in piped.stdout + piped.stderr


def test_terminal_table_uses_rich_and_pipe_uses_plain_text(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "TERM": "xterm-256color", "COLUMNS": "160", "NO_COLOR": "1"}
    screen = run_in_pty(["config", "show"], env)
    assert "redis.url" in screen and ("┃" in screen or "│" in screen)
    assert "│" not in sandbox.run("config", "show").stdout


def test_python_dash_m_entry_point(sandbox: Sandbox) -> None:
    result = subprocess.run([sys.executable, "-m", "cascade_cli", "--version"], capture_output=True,
                            text=True, env=sandbox.env, timeout=30)
    assert result.stdout == f"cascade {__version__}\n"
