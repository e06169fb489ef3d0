"""Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, SHUTDOWN (Redis 7.0 semantics).

The files and their format are described in resp/persistence.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade_cli.resp import persistence
from cascade_cli.resp.commands import SYNTAX, command
from cascade_cli.resp.protocol import OK, ErrorReply, Simple

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client


@command("save", 1, "admin noscript no-async-loading no-multi", group="server")
def save(client: Client, argv: list[bytes]) -> object:
    """Synchronously save the dataset to disk."""
    state = persistence.of(client.engine)
    if state.child is not None and state.child[0] == "bgsave":
        raise ErrorReply("ERR Background save already in progress")
    try:
        state.save()
    except OSError as error:
        raise ErrorReply(f"ERR {error.strerror}") from None
    return OK


@command("bgsave", -1, "admin noscript no-async-loading", group="server")
def bgsave(client: Client, argv: list[bytes]) -> object:
    """Asynchronously save the dataset to disk."""
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise ErrorReply(SYNTAX)
    state = persistence.of(client.engine)
    if state.child is not None:
        if state.child[0] == "bgsave":
            raise ErrorReply("ERR Background save already in progress")
        if schedule:
            return Simple("Background saving scheduled")
        raise ErrorReply("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                         "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
    state.bgsave()
    return Simple("Background saving started")


@command("bgrewriteaof", 1, "admin noscript no-async-loading", group="server")
def bgrewriteaof(client: Client, argv: list[bytes]) -> object:
    """Asynchronously rewrite the append-only file."""
    state = persistence.of(client.engine)
    if state.child is not None or client.engine.pending_propagation:
        if state.child is not None and state.child[0] == "aofrewrite":
            raise ErrorReply("ERR Background append only file rewriting already in progress")
        # Another child runs, or writes of this transaction are applied but not yet in the
        # file: a child forked now would see them twice. Start it from the next tick.
        state.rewrite_scheduled = True
        return Simple("Background append only file rewriting scheduled")
    state.bgrewriteaof()
    return Simple("Background append only file rewriting started")


@command("lastsave", 1, "random fast loading stale", group="server")
def lastsave(client: Client, argv: list[bytes]) -> object:
    """Get the Unix timestamp of the last successful save to disk."""
    return client.engine.lastsave


@command("shutdown", -1, "admin noscript loading stale no-multi allow-busy", group="server")
def shutdown(client: Client, argv: list[bytes]) -> object:
    """Synchronously save the dataset to disk and then shut down the server."""
    mode = None
    force = False
    for raw in argv[1:]:
        option = raw.lower()
        if option in (b"save", b"nosave") and mode is None:
            mode = option.decode()
        elif option in (b"now", b"force", b"abort"):
            if option == b"abort":
                raise ErrorReply("ERR No shutdown in progress.")
            force = force or option == b"force"
        else:
            raise ErrorReply(SYNTAX)
    from cascade_cli.resp.core import NO_REPLY
    engine = client.engine
    try:
        persistence.shutdown_save(engine, mode)
    except persistence.PersistenceError as error:
        log = engine.hooks.get("log")
        if log is not None:
            log(str(error), "#")
        if not force:
            raise ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.") from None
    engine.shutdown_requested = mode or "default"
    stop = engine.hooks.get("shutdown")
    if stop is not None:
        stop()
    client.close_after_reply = True
    return NO_REPLY
