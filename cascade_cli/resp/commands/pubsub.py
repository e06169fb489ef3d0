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

from typing import TYPE_CHECKING, Any

from cascade_cli.resp.commands import COMMANDS, command, container, help_command, subcommand_syntax_error
from cascade_cli.resp.glob import compile_glob
from cascade_cli.resp.protocol import ErrorReply, Push, Replies

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


def _count(client: Client, shard: bool) -> int:
    """The subscription count an (un)subscribe reply carries."""
    return len(client.shard_channels) if shard else len(client.channels) + len(client.patterns)


def _subscribe(client: Client, names: list[bytes], kind: bytes, table: dict[bytes, Any],
               mine: Any, shard: bool) -> object:
    engine = client.engine
    out = []
    for name in names:
        engine.subscribe(client, name, table, mine)
        out.append(Push([kind, name, _count(client, shard)]))
    return _one_or_many(client, out)


def _unsubscribe(client: Client, argv: list[bytes], kind: bytes, table: dict[bytes, Any],
                 mine: Any, shard: bool) -> object:
    names = argv[1:] if len(argv) > 1 else list(mine)
    if not names:
        return _one_or_many(client, [Push([kind, None, _count(client, shard)])])
    engine = client.engine
    out = []
    for name in names:
        engine.unsubscribe(client, name, table, mine)
        out.append(Push([kind, name, _count(client, shard)]))
    return _one_or_many(client, out)


# --- subscribing -------------------------------------------------------------------------------

@command("subscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listen for messages published to the given channels")
def subscribe(client: Client, argv: list[bytes]) -> object:
    return _subscribe(client, argv[1:], b"subscribe", client.engine.channels, client.channels, False)


@command("psubscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Listen for messages published to channels matching the given patterns")
def psubscribe(client: Client, argv: list[bytes]) -> object:
    return _subscribe(client, argv[1:], b"psubscribe", client.engine.patterns, client.patterns, False)


@command("ssubscribe", -2, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", summary="Listen for messages published to the given shard channels")
def ssubscribe(client: Client, argv: list[bytes]) -> object:
    if not client.may_block:             # inside EXEC (a client that expects one reply per command)
        raise ErrorReply("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    return _subscribe(client, argv[1:], b"ssubscribe", client.engine.shard_channels, client.shard_channels,
                      True)


# --- unsubscribing -----------------------------------------------------------------------------

@command("unsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to the given channels")
def unsubscribe(client: Client, argv: list[bytes]) -> object:
    return _unsubscribe(client, argv, b"unsubscribe", client.engine.channels, client.channels, False)


@command("punsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to channels matching the given patterns")
def punsubscribe(client: Client, argv: list[bytes]) -> object:
    return _unsubscribe(client, argv, b"punsubscribe", client.engine.patterns, client.patterns, False)


@command("sunsubscribe", -1, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", summary="Stop listening for messages posted to the given shard channels")
def sunsubscribe(client: Client, argv: list[bytes]) -> object:
    return _unsubscribe(client, argv, b"sunsubscribe", client.engine.shard_channels, client.shard_channels,
                        True)


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


def _matching(table: dict[bytes, object], argv: list[bytes]) -> list[bytes]:
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
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


def _numsub(table: dict[bytes, Any], argv: list[bytes]) -> list[object]:
    out: list[object] = []
    for channel in argv[2:]:
        out.append(channel)
        out.append(len(table.get(channel, ())))
    return out


@command("pubsub|numsub", -2, "pubsub loading stale", group="pubsub", since="2.8.0",
         summary="Get the count of subscribers for channels")
def pubsub_numsub(client: Client, argv: list[bytes]) -> object:
    return _numsub(client.engine.channels, argv)


@command("pubsub|shardnumsub", -2, "pubsub loading stale", group="pubsub", since="7.0.0",
         summary="Get the count of subscribers for shard channels")
def pubsub_shardnumsub(client: Client, argv: list[bytes]) -> object:
    return _numsub(client.engine.shard_channels, argv)


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


help_command("pubsub", PUBSUB_HELP, "pubsub", "6.2.0")


for _name in (b"ssubscribe", b"sunsubscribe", b"spublish"):
    COMMANDS[_name].extra["key_flags"] = ["not_key"]       # shard channels count as keys for routing only
