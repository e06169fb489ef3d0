"""Server commands (Redis 7.0 semantics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade_cli.resp.commands import SYNTAX, command
from cascade_cli.resp.protocol import OK, ErrorReply

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise ErrorReply(SYNTAX)


@command("flushall", -1, "write", group="server")
def flushall(client: Client, argv: list[bytes]) -> object:
    """Remove all keys from all databases."""
    _flush_mode(argv)
    for db in client.engine.dbs:
        db.flush()
    client.engine.dirty += 1
    return OK


@command("flushdb", -1, "write", group="server")
def flushdb(client: Client, argv: list[bytes]) -> object:
    """Remove all keys from the current database."""
    _flush_mode(argv)
    client.db.flush()
    client.engine.dirty += 1
    return OK
