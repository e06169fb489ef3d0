"""The Typer layer: the root app, its global options, and `main()`, which maps errors to exit codes.

Each command module registers its group on `app`; commands import heavy libraries inside their
bodies so that `cascade --help` and tab completion stay fast.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade_cli import __version__
from cascade_cli.cli import bench as bench_cli
from cascade_cli.cli import config as config_cli
from cascade_cli.cli import monitor as monitor_cli
from cascade_cli.cli import redis as redis_cli
from cascade_cli.cli import serve as serve_cli
from cascade_cli.cli import venice as venice_cli
from cascade_cli.cli.common import AppState, set_state, state
from cascade_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CascadeError

HELP = """\
cascade: operations toolkit for Redis, a WebSocket event hub and the HTTP APIs around them.

Global options go before the command: `cascade -v venice ping`.

Exit codes: 0 success; 1 operational failure (unreachable, remote error, start failed);
2 usage or configuration error; 3 a check failed (a threshold, a ping answered an error).
"""

app = typer.Typer(
    name="cascade",
    help=HELP,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cascade {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose",
                                          help="Debug messages, and tracebacks on errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (NO_COLOR and TERM=dumb also work).")] = False,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", envvar="CASCADE_CONFIG",
                                                   help="Config file to use instead of ./cascade.toml.")] = None,
) -> None:
    set_state(AppState(quiet=quiet, verbose=verbose and not quiet, no_color=no_color, config_file=config))


app.add_typer(redis_cli.app, name="redis")
app.command("serve", help=serve_cli.HELP, short_help="Serve the HTTP API and the WebSocket hub.")(serve_cli.serve)
app.add_typer(bench_cli.app, name="bench")
app.add_typer(venice_cli.app, name="venice")
app.command("monitor", help=monitor_cli.HELP, short_help="Watch Redis, the hub and the Venice bridge live.")(
    monitor_cli.monitor)
app.add_typer(config_cli.app, name="config")


def _report_click_error(exc: Exception) -> int:
    """Errors found by the argument parser: one line plus a hint, exit 2. A group run without
    a command prints its help on stderr instead."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stderr.write(ctx.get_help() + "\n")
        return int(exc.exit_code)  # type: ignore[attr-defined]
    where = ctx.command_path if ctx is not None else "cascade"
    state().messages.error(exc.format_message(), f"see '{where} --help'")  # type: ignore[attr-defined]
    return int(exc.exit_code)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its documented exit code; never lets a traceback through
    unless -v was given."""
    from typer.main import get_command

    command = get_command(app)
    try:
        code = command.main(args=argv, prog_name="cascade", standalone_mode=False)
    except CascadeError as exc:
        if state().verbose:
            traceback.print_exc()
        state().messages.error(exc.message, exc.hint)
        code = exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            code = _report_click_error(exc)
        elif type(exc).__name__ == "Abort":
            state().messages.error("aborted")
            code = EXIT_FAILURE
        else:
            if state().verbose:
                traceback.print_exc()
            state().messages.error(f"internal error: {type(exc).__name__}: {exc}",
                                   "rerun with -v for the traceback and report it as a bug")
            code = EXIT_FAILURE
    if code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C into this exit code
        state().messages.error("interrupted")
    sys.exit(code if isinstance(code, int) else 0)
