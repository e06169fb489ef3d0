"""Pub/sub commands (Redis 7.0 semantics): (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH
and the PUBSUB container.

Each (un)subscription answers with its own reply (a push in RESP3): several channels give several
top-level replies (`Replies`). The counts follow Redis 7.0: channels + patterns for
(P)(UN)SUBSCRIBE, shard channels alone for S(UN)SUBSCRIBE. An UN- form without arguments and
without subscriptions still answers once, with a null channel. Unsubscribing from everything
goes in subscription order (Redis walks a hash table, so its order is not defined).
The engine keeps the tables and delivers messages (core.py: subscribe, unsubscribe, publish,
spublish); a RESP2 subscriber may only run the commands the engine lets through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade_cli.resp.commands import COMMANDS, command, container
from cascade_cli.resp.commands.connection import c_string
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.protocol import ErrorReply, Push, Replies, Simple

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client


def _one_or_many(client: Client, replies: list[Push]) -> object:
    if client.reply_mode != "on" and client.may_block:
        # Redis 7.0 delivers (un)subscribe confirmations even under CLIENT REPLY OFF|SKIP: send
        # them out of band (what the command returns is then dropped by the reply mode).
        for reply in replies:
            client.send(reply)
        return None
    return replies[0] if len(replies) == 1 else Replies(replies)


# --- subscribing -------------------------------------------------------------------------------

@command("subscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listen for messages published to the given channels")
def subscribe(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    mine = client.channels
    out = []
    for channel in argv[1:]:
        engine.subscribe(client, channel, engine.channels, mine)
        out.append(Push([b"subscribe", channel, len(mine) + len(client.patterns)]))
    return _one_or_many(client, out)


@command("psubscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listen for messages published to channels matching the given patterns")
def psubscribe(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    mine = client.patterns
    out = []
    for pattern in argv[1:]:
        engine.subscribe(client, pattern, engine.patterns, mine)
        out.append(Push([b"psubscribe", pattern, len(client.channels) + len(mine)]))
    return _one_or_many(client, out)


@command("ssubscribe", -2, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", summary="Listen for messages published to the given shard channels")
def ssubscribe(client: Client, argv: list[bytes]) -> object:
    if not client.may_block:             # inside EXEC (a client that expects one reply per command)
        raise ErrorReply("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    engine = client.engine
    mine = client.shard_channels
    out = []
    for channel in argv[1:]:
        engine.subscribe(client, channel, engine.shard_channels, mine)
        out.append(Push([b"ssubscribe", channel, len(mine)]))
    return _one_or_many(client, out)


# --- unsubscribing -----------------------------------------------------------------------------

@command("unsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to the given channels")
def unsubscribe(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    mine = client.channels
    names = argv[1:] if len(argv) > 1 else list(mine)
    if not names:
        return _one_or_many(client, [Push([b"unsubscribe", None, len(mine) + len(client.patterns)])])
    out = []
    for channel in names:
        engine.unsubscribe(client, channel, engine.channels, mine)
        out.append(Push([b"unsubscribe", channel, len(mine) + len(client.patterns)]))
    return _one_or_many(client, out)


@command("punsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to channels matching the given patterns")
def punsubscribe(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    mine = client.patterns
    names = argv[1:] if len(argv) > 1 else list(mine)
    if not names:
        return _one_or_many(client, [Push([b"punsubscribe", None, len(client.channels) + len(mine)])])
    out = []
    for pattern in names:
        engine.unsubscribe(client, pattern, engine.patterns, mine)
        out.append(Push([b"punsubscribe", pattern, len(client.channels) + len(mine)]))
    return _one_or_many(client, out)


@command("sunsubscribe", -1, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", summary="Stop listening for messages posted to the given shard channels")
def sunsubscribe(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    mine = client.shard_channels
    names = argv[1:] if len(argv) > 1 else list(mine)
    if not names:
        return _one_or_many(client, [Push([b"sunsubscribe", None, len(mine)])])
    out = []
    for channel in names:
        engine.unsubscribe(client, channel, engine.shard_channels, mine)
        out.append(Push([b"sunsubscribe", channel, len(mine)]))
    return _one_or_many(client, out)


# --- publishing --------------------------------------------------------------------------------

@command("publish", 3, "pubsub loading stale fast", group="pubsub", since="2.0.0",
         summary="Post a message to a channel")
def publish(client: Client, argv: list[bytes]) -> object:
    return client.engine.publish(argv[1], argv[2])


@command("spublish", 3, "pubsub loading stale fast", keys=(1, 1, 1), group="pubsub", since="7.0.0",
         summary="Post a message to a shard channel")
def spublish(client: Client, argv: list[bytes]) -> object:
    return client.engine.spublish(argv[1], argv[2])


# --- PUBSUB ------------------------------------------------------------------------------------

container("pubsub", -2, "", group="pubsub", since="2.8.0", summary="A container for Pub/Sub commands")


def _syntax(argv: list[bytes]) -> ErrorReply:
    return ErrorReply(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{c_string(argv[1])[:128]}'. Try PUBSUB HELP.")


def _matching(table: dict[bytes, object], argv: list[bytes]) -> list[bytes]:
    if len(argv) > 3:
        raise _syntax(argv)
    if len(argv) == 2:
        return list(table)
    matches = compile_glob(argv[2])
    return [name for name in table if matches(name)]


@command("pubsub|channels", -2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="List active channels")
def pubsub_channels(client: Client, argv: list[bytes]) -> object:
    return _matching(client.engine.channels, argv)


@command("pubsub|shardchannels", -2, "pubsub loading stale", group="pubsub", since="7.0.0",
         summary="List active shard channels")
def pubsub_shardchannels(client: Client, argv: list[bytes]) -> object:
    return _matching(client.engine.shard_channels, argv)


@command("pubsub|numsub", -2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Get the count of subscribers for channels")
def pubsub_numsub(client: Client, argv: list[bytes]) -> object:
    table = client.engine.channels
    out: list[object] = []
    for channel in argv[2:]:
        out.append(channel)
        out.append(len(table.get(channel, ())))
    return out


@command("pubsub|shardnumsub", -2, "pubsub loading stale", group="pubsub", since="7.0.0",
         summary="Get the count of subscribers for shard channels")
def pubsub_shardnumsub(client: Client, argv: list[bytes]) -> object:
    table = client.engine.shard_channels
    out: list[object] = []
    for channel in argv[2:]:
        out.append(channel)
        out.append(len(table.get(channel, ())))
    return out


@command("pubsub|numpat", 2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Get the count of unique patterns pattern subscriptions")
def pubsub_numpat(client: Client, argv: list[bytes]) -> object:
    return len(client.engine.patterns)


PUBSUB_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


@command("pubsub|help", 2, "loading stale", group="pubsub", since="6.2.0",
         summary="Show helpful text about the different subcommands")
def pubsub_help(client: Client, argv: list[bytes]) -> object:
    return [Simple(line) for line in PUBSUB_HELP]


for _name in (b"ssubscribe", b"sunsubscribe", b"spublish"):
    COMMANDS[_name].extra["key_flags"] = ["not_key"]       # shard channels count as keys for routing only
