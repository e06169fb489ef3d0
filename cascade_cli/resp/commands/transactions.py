"""Transaction commands (Redis 7.0 semantics): MULTI, EXEC, DISCARD, WATCH, UNWATCH.

The engine queues commands while `client.multi` is a list, flags queue-time errors (unknown
command, wrong arity, NOAUTH, no-multi commands, OOM) in `client.multi_error`, marks WATCHing
clients dirty when their keys change, and runs the queue in `Engine.exec` (EXECABORT after
queue-time errors, a null reply when a watched key changed or expired, per-command errors
inside the result otherwise; blocking commands answer at once inside EXEC).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade_cli.resp.commands import COMMANDS, command
from cascade_cli.resp.protocol import OK, ErrorReply, Replies

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client


@command("multi", 1, "noscript loading stale fast allow-busy", group="transactions", since="1.2.0",
         summary="Mark the start of a transaction block")
def multi(client: Client, argv: list[bytes]) -> object:
    if client.multi is not None:
        raise ErrorReply("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    return OK


def _discard(client: Client) -> None:
    client.multi = None
    client.multi_error = False
    client.engine.unwatch_all(client)


@command("exec", 1, "noscript loading stale skip-slowlog", group="transactions", since="1.2.0",
         summary="Execute all commands issued after MULTI")
def exec_(client: Client, argv: list[bytes]) -> object:
    queued = client.multi
    if queued is None:
        raise ErrorReply("ERR EXEC without MULTI")
    engine = client.engine
    if not (client.subscribed or client.tracking or any("pubsub" in cmd.flags for cmd, _ in queued)):
        return engine.exec(client)
    # Messages this client sends itself during EXEC (PUBLISH to a channel it listens to) go
    # where Redis writes them: inside the EXEC array, before the reply of the command that
    # caused them (the array's length still counts commands).
    stats = engine.stats
    base = stats.total_commands_processed
    pushes: list[tuple[int, object]] = []
    shadowed = client.__dict__.get("send")

    def capture(reply: object) -> None:
        pushes.append((stats.total_commands_processed - base, reply))

    client.send = capture                 # type: ignore[method-assign]
    try:
        results = engine.exec(client)
    finally:
        if shadowed is None:
            del client.send
        else:
            client.send = shadowed        # type: ignore[method-assign]
    if not pushes:
        return results
    if type(results) is not list or not results:
        for _, reply in pushes:
            client.send(reply)
        return results
    merged: list[object] = list(results)
    for index in range(len(merged)):
        before = [reply for position, reply in pushes if position == index]
        if before:
            merged[index] = Replies([*before, merged[index]])
    for position, reply in pushes:
        if position >= len(merged):
            client.send(reply)
    return merged


@command("discard", 1, "noscript loading stale fast allow-busy", group="transactions",
         since="2.0.0", summary="Discard all commands issued after MULTI")
def discard(client: Client, argv: list[bytes]) -> object:
    if client.multi is None:
        raise ErrorReply("ERR DISCARD without MULTI")
    _discard(client)
    return OK


@command("watch", -2, "noscript loading stale fast allow-busy", keys=(1, -1, 1), group="transactions",
         since="2.2.0", summary="Watch the given keys to determine execution of the MULTI/EXEC block")
def watch(client: Client, argv: list[bytes]) -> object:
    if client.multi is not None:
        raise ErrorReply("ERR WATCH inside MULTI is not allowed")
    engine = client.engine
    for key in argv[1:]:
        engine.watch(client, key)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow-busy", group="transactions",
         since="2.2.0", summary="Forget about all watched keys")
def unwatch(client: Client, argv: list[bytes]) -> object:
    client.engine.unwatch_all(client)
    return OK


COMMANDS[b"watch"].extra["key_flags"] = ["RO"]
