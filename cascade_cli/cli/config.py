"""cascade config show|path|init."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade_cli.cli.common import FormatOption, JsonOption, pick_format, state
from cascade_cli.output import Format, render_rows

app = typer.Typer(help="Show, locate and create cascade's configuration.", no_args_is_help=True)


@app.command("show")
def show(fmt: FormatOption = Format.table, json_flag: JsonOption = False) -> None:
    """Print every effective setting with its source; secrets are masked."""
    settings = state().settings()
    files = ", ".join(str(p) for p in settings.files) or "none"
    state().messages.info(f"config files read: {files}")
    render_rows(settings.rows(), ["key", "value", "source"], pick_format(fmt, json_flag),
                no_color=state().no_color)


def _target() -> Path:
    from cascade_cli.config import user_config_path

    return state().config_file or user_config_path()


@app.command("path")
def path(
    all_files: Annotated[bool, typer.Option("--all", help="List every config file consulted, in precedence order.")] = False,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """Print the config file `cascade config init` writes (--config FILE, else the user file)."""
    if not all_files:
        typer.echo(str(_target()))
        return
    from cascade_cli.config import config_files

    files = config_files(state().config_file, os.environ, Path.cwd())
    rows = [{"layer": layer, "path": str(p), "exists": p.is_file()}
            for layer, p in zip(("user", "project"), files)]
    render_rows(rows, ["layer", "path", "exists"], pick_format(fmt, json_flag), no_color=state().no_color)


@app.command("init")
def init(
    target: Annotated[Optional[Path], typer.Argument(metavar="[PATH]", help="Where to write (default: as `cascade config path`).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print the starter file instead of writing it.")] = False,
) -> None:
    """Write a commented starter config file listing every key at its default."""
    from cascade_cli.config import starter_file, write_starter_file

    if stdout:
        typer.echo(starter_file(), nl=False)
        return
    written = write_starter_file(target or _target(), force)
    state().messages.info(f"wrote {written}")
    typer.echo(str(written))
