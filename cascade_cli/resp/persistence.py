"""Persistence of the in-memory server: the append-only file (placeholder until built).

`attach(engine)` loads the file and starts logging writes; `shutdown_save(engine)` and
`close(engine)` are called on the way out.
"""

from __future__ import annotations

from typing import Any


def attach(engine: Any) -> None:
    """Load the append-only file (when appendonly is on) and log every write from now on."""


def shutdown_save(engine: Any) -> None:
    """Make everything durable before a shutdown."""


def close(engine: Any) -> None:
    """Flush and close the file."""
