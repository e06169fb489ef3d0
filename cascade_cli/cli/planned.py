"""Command groups that later releases fill in. Each says so in its help and exits 2.

When a group is built, give it its own module under cli/ and remove its line from PLANNED.
"""

from __future__ import annotations

import typer

from cascade_cli.errors import NotBuiltError

PLANNED: dict[str, tuple[str, str]] = {
    "monitor": ("Watch the whole stack live.",
                "cascade monitor, a live dashboard of Redis, the hub and the Venice bridge"),
}


def register(app: typer.Typer, name: str) -> None:
    """Add the placeholder command for group `name`; any arguments are accepted and refused."""
    summary, planned = PLANNED[name]

    def placeholder(ctx: typer.Context) -> None:
        raise NotBuiltError(f"'cascade {name}' is not built yet in this release", f"planned: {planned}")

    app.command(
        name,
        help=f"[not built yet] {summary} Planned: {planned}.",
        short_help=f"[not built yet] {summary}",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(placeholder)
