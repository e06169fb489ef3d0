"""Streams commands (Redis 7.0 semantics)."""

from __future__ import annotations

from cascade_cli.resp.commands import command  # noqa: F401
