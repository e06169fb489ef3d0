"""What every command shares: global state from the root options, --format/--json, settings.

Commands call `state()` for the messages and settings of this run and `pick_format()` for the
output format; they raise `cascade_cli.errors` exceptions and let `cli.main()` report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascade_cli.output import Format, Messages

if TYPE_CHECKING:
    from cascade_cli.config import Settings


@dataclass
class AppState:
    """The root options of this invocation."""

    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    config_file: Path | None = None

    @property
    def messages(self) -> Messages:
        return Messages(quiet=self.quiet, verbose=self.verbose, no_color=self.no_color)

    def settings(self, overrides: dict[str, tuple[Any, str]] | None = None) -> Settings:
        """Effective settings with these flag overrides (`{"venice.base_url": (value, "--base-url")}`)."""
        from cascade_cli.config import load_settings

        return load_settings(self.config_file, overrides)


_current = AppState()


def set_state(new: AppState) -> None:
    global _current
    _current = new


def state() -> AppState:
    """The state set by the root callback (defaults before it runs)."""
    return _current


FormatOption = Annotated[
    Format,
    typer.Option("--format", case_sensitive=False, help="Output format: table, json, csv or markdown."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Short for --format json.")]


def pick_format(fmt: Format, json_flag: bool) -> Format:
    """--json wins over --format."""
    return Format.json if json_flag else fmt

