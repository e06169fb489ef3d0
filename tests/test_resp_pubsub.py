"""Pub/sub group of the in-memory server, compared with a real redis-server (differential).

(P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB. Subscribers and publishers are
second connections (`pair.connect()`); what each engine delivers to a subscriber is read and
compared, in RESP2 and RESP3. Where Redis walks a hash table (unsubscribing from everything,
several patterns matching one message) the order is not defined, so those replies are compared
as multisets.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from resp_support import Pair, pair_in_each_protocol

NOT_ALLOWED = ("-", ("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                     "RESET are allowed in this context"))


p = pair_in_each_protocol()


def push(p: Any, *items: Any) -> tuple[str, list[Any]]:
    """The tagged reply of a subscription event / message: a push in RESP3, an array in RESP2."""
    tagged = []
    for item in items:
        if item is None:
            tagged.append(("_", None) if p.resp == 3 else ("$", None))
        elif isinstance(item, int):
            tagged.append((":", item))
        else:
            tagged.append(("$", item if isinstance(item, bytes) else item.encode()))
    return (">" if p.resp == 3 else "*", tagged)


# --- errors --------------------------------------------------------------------------------------

def test_arity_and_subcommand_errors(p: Pair) -> None:
    for args in (("SUBSCRIBE",), ("PSUBSCRIBE",), ("SSUBSCRIBE",), ("PUBLISH",), ("PUBLISH", "c"),
                 ("PUBLISH", "c", "m", "x"), ("SPUBLISH", "c"), ("SPUBLISH", "c", "m", "x"), ("PUBSUB",),
                 ("PUBSUB", "FOO"), ("pubsub", "nosuch", "x"), ("PUBSUB", "NUMPAT", "x"),
                 ("PUBSUB", "CHANNELS", "a", "b"), ("pubsub", "channels", "a", "b"),
                 ("PUBSUB", "SHARDCHANNELS", "a", "b"), ("PUBSUB", "HELP", "x")):
        assert p.both(*args)[0] == "-"


def test_pubsub_help(p: Pair) -> None:
    reply = p.both("PUBSUB", "HELP")
    assert reply[0] == "*"
    assert reply[1][0] == ("+", "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    assert p.both("pubsub", "help") == reply


# --- subscribing and unsubscribing -----------------------------------------------------------------

def test_subscribe_and_unsubscribe_replies(p: Pair) -> None:
    assert p.both("UNSUBSCRIBE") == push(p, "unsubscribe", None, 0)
    assert p.both("PUNSUBSCRIBE") == push(p, "punsubscribe", None, 0)
    assert p.both("SUNSUBSCRIBE") == push(p, "sunsubscribe", None, 0)
    assert p.both("UNSUBSCRIBE", "never") == push(p, "unsubscribe", "never", 0)
    assert p.both("SUBSCRIBE", "a", "b", "a") == push(p, "subscribe", "a", 1)
    assert p.read_many(2) == [push(p, "subscribe", "b", 2), push(p, "subscribe", "a", 2)]
    assert p.both("PSUBSCRIBE", "p*", "q?") == push(p, "psubscribe", "p*", 3)
    assert p.read() == push(p, "psubscribe", "q?", 4)
    # shard subscriptions count on their own
    assert p.both("SSUBSCRIBE", "s1", "s2", "s1") == push(p, "ssubscribe", "s1", 1)
    p.read_many(2)
    assert p.both("SUNSUBSCRIBE", "zz") == push(p, "sunsubscribe", "zz", 2)
    assert p.both("UNSUBSCRIBE", "a", "zz") == push(p, "unsubscribe", "a", 3)
    p.read()
    assert p.both("PUNSUBSCRIBE", "q?") == push(p, "punsubscribe", "q?", 2)
    assert p.both("PUNSUBSCRIBE", "nope") == push(p, "punsubscribe", "nope", 2)
    assert p.both("SUNSUBSCRIBE", "s2", "s1") == push(p, "sunsubscribe", "s2", 1)
    assert p.read() == push(p, "sunsubscribe", "s1", 0)
    assert p.both("SUNSUBSCRIBE") == push(p, "sunsubscribe", None, 0)
    assert p.both("PUNSUBSCRIBE") == push(p, "punsubscribe", "p*", 1)
    assert p.both("UNSUBSCRIBE") == push(p, "unsubscribe", "b", 0)
    assert p.both("UNSUBSCRIBE") == push(p, "unsubscribe", None, 0)
    assert p.both("PING") == ("+", "PONG")
    p.quiet()


def test_unsubscribe_from_everything(p: Pair) -> None:
    names = [f"chan:{i}" for i in range(6)]
    p.both("SUBSCRIBE", *names)
    p.read_many(5)
    p.both("PSUBSCRIBE", "x*", "y*")
    p.read()
    p.send("UNSUBSCRIBE")
    real = [p.real.read(timeout=2) for _ in names]
    mem = [p.mem.read(timeout=2) for _ in names]
    # the order is Redis's hash table order; the counts always go down one by one
    assert [r[1][2] for r in mem] == [r[1][2] for r in real] == [(":", n) for n in range(7, 1, -1)]
    assert sorted((r[1][1] for r in mem), key=repr) == sorted((r[1][1] for r in real), key=repr)
    p.send("PUNSUBSCRIBE")
    for client in (p.real, p.mem):
        replies = [client.read(timeout=2) for _ in range(2)]
        assert [r[1][2] for r in replies] == [(":", 1), (":", 0)]
        assert sorted(r[1][1][1] for r in replies) == [b"x*", b"y*"]
    assert p.both("PING") == ("+", "PONG")
    p.quiet()


def test_subscriptions_survive_only_their_connection(pair: Pair) -> None:
    sub = pair.connect()
    sub.both("SUBSCRIBE", "gone")
    sub.both("PSUBSCRIBE", "gone*")
    sub.both("SSUBSCRIBE", "gone")
    assert pair.both("PUBSUB", "NUMSUB", "gone") == ("*", [("$", b"gone"), (":", 1)])
    sub.close()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if pair.mem.call("PUBSUB", "NUMPAT") == pair.real.call("PUBSUB", "NUMPAT") == (":", 0):
            break
        time.sleep(0.02)
    assert pair.both("PUBSUB", "NUMSUB", "gone") == ("*", [("$", b"gone"), (":", 0)])
    assert pair.both("PUBSUB", "SHARDNUMSUB", "gone") == ("*", [("$", b"gone"), (":", 0)])
    assert pair.both("PUBSUB", "NUMPAT") == (":", 0)
    assert pair.both("PUBLISH", "gone", "x") == (":", 0)


# --- messages --------------------------------------------------------------------------------------

@pytest.mark.parametrize("resp", [2, 3])
def test_messages_reach_subscribers(pair: Pair, resp: int) -> None:
    with pair.connect(resp) as sub:
        sub.both("SUBSCRIBE", "news")
        sub.both("PSUBSCRIBE", "n*")
        sub.both("SSUBSCRIBE", "shard")
        assert pair.both("PUBLISH", "news", "hello") == (":", 2)
        assert sub.read_many(2) == [push(sub, "message", "news", "hello"),
                                    push(sub, "pmessage", "n*", "news", "hello")]
        assert pair.both("PUBLISH", "nothing", b"\x00\r\n\xff") == (":", 1)
        assert sub.read() == push(sub, "pmessage", "n*", "nothing", b"\x00\r\n\xff")
        assert pair.both("PUBLISH", "other", "x") == (":", 0)
        assert pair.both("SPUBLISH", "shard", "s-msg") == (":", 1)
        assert sub.read() == push(sub, "smessage", "shard", "s-msg")
        assert pair.both("SPUBLISH", "news", "not for channel subscribers") == (":", 0)
        assert pair.both("PUBLISH", "shard", "not for shard subscribers") == (":", 0)
        assert pair.both("PUBLISH", "", "") == (":", 0)
        sub.quiet()
        # a message to oneself arrives before the reply to PUBLISH (RESP3 allows the command)
        if resp == 3:
            assert sub.both("PUBLISH", "news", "me") == push(sub, "message", "news", "me")
            sub.read()
            assert sub.read() == (":", 2)


def test_every_subscriber_receives(pair: Pair) -> None:
    subs = [pair.connect(resp) for resp in (2, 3, 2)]
    try:
        for sub in subs:
            sub.both("SUBSCRIBE", "fan")
            sub.both("PSUBSCRIBE", "f*", "*")
            sub.read()
        assert pair.both("PUBLISH", "fan", "out") == (":", 9)
        for sub in subs:
            assert sub.read_many(3, sort=True) == sorted(
                [push(sub, "message", "fan", "out"), push(sub, "pmessage", "f*", "fan", "out"),
                 push(sub, "pmessage", "*", "fan", "out")], key=repr)
        assert pair.both("PUBSUB", "NUMSUB", "fan", "f*", "none") == (
            "*", [("$", b"fan"), (":", 3), ("$", b"f*"), (":", 0), ("$", b"none"), (":", 0)])
        assert pair.both("PUBSUB", "NUMPAT") == (":", 2)          # unique patterns, not subscriptions
    finally:
        for sub in subs:
            sub.close()


PATTERNS = ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "\\*", "a\\",
            "[", "[a", "[]", "[^]", "x[\\]]y", "*a*b*", "**", "?", "[!a]", "[a-]", "h\\?llo", "",
            "\xe9*", "[[]", "a[", "*[", "h[a-]llo", "[^a-z]", "\\", "a*", "*b", "[a-c][a-c]", "[\\-]"]
CHANNELS = ["hello", "hallo", "hbllo", "hxllo", "hllo", "heeello", "*", "a\\", "a", "b", "[", "[a", "x]y",
            "ab", "aXbYb", "\xe91", "?", "-", "h?llo", "!", "]", "a[", "A", "bb", "cc", "\\", "zz", "h-llo"]


def test_pattern_glob_edge_cases(pair: Pair) -> None:
    with pair.connect(2) as sub:
        sub.both("PSUBSCRIBE", *PATTERNS)
        sub.read_many(len(PATTERNS) - 1)
        assert pair.both("PUBSUB", "NUMPAT") == (":", len(set(PATTERNS)))
        for channel in CHANNELS:
            kind, receivers = pair.both("PUBLISH", channel, "m")
            assert kind == ":"
            sub.read_many(receivers, sort=True)
        sub.quiet()
        for pattern in ("h*", "[ab]*", "*\\**", "?", "", "h[^x]llo"):
            pair.both("PUBSUB", "CHANNELS", pattern)


def test_empty_channel_name(pair: Pair) -> None:
    with pair.connect(2) as sub:
        sub.both("SUBSCRIBE", "")
        sub.both("PSUBSCRIBE", "*", "**", "")
        sub.read_many(2)
        for pattern in ("*", "**", "", "?", "*?"):
            pair.both("PUBSUB", "CHANNELS", pattern)
        pair.both("PUBSUB", "CHANNELS")
        pair.both("PUBSUB", "NUMSUB", "")


def test_publish_to_empty_channel_name(pair: Pair) -> None:
    with pair.connect(2) as sub:
        sub.both("PSUBSCRIBE", "*", "**", "")
        sub.read_many(2)
        assert pair.both("PUBLISH", "", "m") == (":", 1)
        assert sub.read() == push(sub, "pmessage", "", "", "m")


def test_many_channels(pair: Pair) -> None:
    names = [f"ch:{i}" for i in range(300)]
    with pair.connect(3) as sub:
        assert sub.both("SUBSCRIBE", *names) == push(sub, "subscribe", "ch:0", 1)
        replies = sub.read_many(len(names) - 1)
        assert replies[-1] == push(sub, "subscribe", "ch:299", 300)
        assert pair.both("PUBSUB", "CHANNELS", sort=True)[1] == sorted(
            [("$", name.encode()) for name in names], key=repr)
        assert len(pair.both("PUBSUB", "CHANNELS", "ch:1?", sort=True)[1]) == 10
        assert len(pair.both("PUBSUB", "CHANNELS", "ch:[12]*", sort=True)[1]) == 222
        assert pair.both("PUBSUB", "CHANNELS", "nomatch*") == ("*", [])
        numsub = pair.both("PUBSUB", "NUMSUB", *names[::7])
        assert numsub[1][1::2] == [(":", 1)] * len(names[::7])
        for name in names[::50]:
            assert pair.both("PUBLISH", name, name) == (":", 1)
            assert sub.read() == push(sub, "message", name, name)
        sub.send("UNSUBSCRIBE")
        real = [sub.real.read(timeout=2) for _ in names]
        mem = [sub.mem.read(timeout=2) for _ in names]
        assert [r[1][2] for r in mem] == [r[1][2] for r in real] == [(":", n) for n in range(299, -1, -1)]
        assert sorted(r[1][1][1] for r in mem) == sorted(r[1][1][1] for r in real) == sorted(
            name.encode() for name in names)
        assert pair.both("PUBSUB", "CHANNELS") == ("*", [])


def test_shard_channels(pair: Pair) -> None:
    subs = [pair.connect(resp) for resp in (2, 3)]
    try:
        for sub in subs:
            sub.both("SSUBSCRIBE", "{u1}a", "{u1}b")
            sub.read()
        assert pair.both("PUBSUB", "SHARDCHANNELS", sort=True) == ("*", [("$", b"{u1}a"), ("$", b"{u1}b")])
        assert pair.both("PUBSUB", "SHARDCHANNELS", "*a") == ("*", [("$", b"{u1}a")])
        assert pair.both("PUBSUB", "CHANNELS") == ("*", [])
        assert pair.both("PUBSUB", "SHARDNUMSUB", "{u1}a", "x") == ("*", [("$", b"{u1}a"), (":", 2),
                                                                        ("$", b"x"), (":", 0)])
        assert pair.both("PUBSUB", "SHARDNUMSUB") == ("*", [])
        assert pair.both("SPUBLISH", "{u1}b", "hi") == (":", 2)
        for sub in subs:
            assert sub.read() == push(sub, "smessage", "{u1}b", "hi")
    finally:
        for sub in subs:
            sub.close()


# --- the subscribed context ------------------------------------------------------------------------

def test_resp2_subscriber_may_only_run_pubsub_commands(pair: Pair) -> None:
    pair.both("SUBSCRIBE", "c")
    assert pair.both("PING") == ("*", [("$", b"pong"), ("$", b"")])
    assert pair.both("PING", "msg") == ("*", [("$", b"pong"), ("$", b"msg")])
    assert pair.both("GET", "k") == (NOT_ALLOWED[0], NOT_ALLOWED[1].format("get"))
    assert pair.both("PUBSUB", "NUMSUB", "c") == (NOT_ALLOWED[0], NOT_ALLOWED[1].format("pubsub|numsub"))
    assert pair.both("CLIENT", "ID") == (NOT_ALLOWED[0], NOT_ALLOWED[1].format("client|id"))
    assert pair.both("PUBLISH", "c", "x")[0] == "-"
    assert pair.both("MULTI")[0] == "-"
    assert pair.both("NOSUCH")[0] == "-"
    pair.both("PSUBSCRIBE", "x")
    pair.both("SSUBSCRIBE", "y")
    pair.both("UNSUBSCRIBE")
    pair.both("PUNSUBSCRIBE")
    assert pair.both("GET", "k")[0] == "-"              # still a shard subscription
    pair.both("SUNSUBSCRIBE")
    assert pair.both("GET", "k") == ("$", None)
    assert pair.both("PING") == ("+", "PONG")
    pair.both("SUBSCRIBE", "c")
    assert pair.both("QUIT") == ("+", "OK")
    assert pair.real.closed_by_server() and pair.mem.closed_by_server()


def test_resp3_pushes_interleave_with_replies(pair: Pair) -> None:
    with pair.connect(3) as sub:
        sub.both("SUBSCRIBE", "c")
        assert sub.both("SET", "k", "v") == ("+", "OK")
        assert sub.both("PING") == ("+", "PONG")
        assert sub.both("PUBSUB", "NUMSUB", "c") == ("*", [("$", b"c"), (":", 1)])
        pair.both("PUBLISH", "c", "m1")
        assert sub.both("GET", "k") == push(sub, "message", "c", "m1")   # the push came first
        assert sub.read() == ("$", b"v")
        sub.send("GET", "k")
        pair.both("PUBLISH", "c", "m2")
        assert sub.read_many(2) == [("$", b"v"), push(sub, "message", "c", "m2")]


def test_subscribe_inside_multi(pair: Pair) -> None:
    pair.both("MULTI")
    assert pair.both("SUBSCRIBE", "a", "b") == ("+", "QUEUED")
    assert pair.both("SSUBSCRIBE", "s") == ("+", "QUEUED")
    assert pair.both("PSUBSCRIBE", "p") == ("+", "QUEUED")
    # Redis writes one reply per channel into the EXEC array, whose length counts commands
    assert pair.both("EXEC") == ("*", [("*", [("$", b"subscribe"), ("$", b"a"), (":", 1)]),
                                       ("*", [("$", b"subscribe"), ("$", b"b"), (":", 2)]),
                                       ("-", "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")])
    assert pair.read() == ("*", [("$", b"psubscribe"), ("$", b"p"), (":", 3)])
    assert pair.both("PING") == ("*", [("$", b"pong"), ("$", b"")])
    pair.both("RESET")
    pair.both("MULTI")
    pair.both("UNSUBSCRIBE")
    pair.both("PUNSUBSCRIBE", "p")
    assert pair.both("EXEC") == ("*", [("*", [("$", b"unsubscribe"), ("$", None), (":", 0)]),
                                       ("*", [("$", b"punsubscribe"), ("$", b"p"), (":", 0)])])


def test_publish_to_self_inside_multi(p: Pair) -> None:
    """Messages to oneself during EXEC are written inside the EXEC array, as Redis does."""
    if p.resp == 3:
        p.both("SUBSCRIBE", "foo")
        p.both("MULTI")
        for args in (("PING", "abc"), ("PUBLISH", "foo", "bar"), ("PUBLISH", "foo", "vaz"), ("PING", "def")):
            p.both(*args)
        p.both("EXEC")
        p.read_many(2)
        p.both("UNSUBSCRIBE")
    p.both("MULTI")
    for args in (("SUBSCRIBE", "foo"), ("PUBLISH", "foo", "x"), ("PSUBSCRIBE", "f*"), ("PUBLISH", "foo", "y"),
                 ("UNSUBSCRIBE", "foo"), ("PUBLISH", "foo", "z")):
        p.both(*args)
    p.both("EXEC")
    p.read_many(4)
    p.both("PUNSUBSCRIBE")
    p.quiet()


def test_subscription_replies_ignore_client_reply_skip(pair: Pair) -> None:
    pair.send("CLIENT", "REPLY", "SKIP")
    pair.send("SUBSCRIBE", "a", "b")
    assert pair.read_many(2) == [("*", [("$", b"subscribe"), ("$", b"a"), (":", 1)]),
                                 ("*", [("$", b"subscribe"), ("$", b"b"), (":", 2)])]
    assert pair.both("PING") == ("*", [("$", b"pong"), ("$", b"")])       # SKIP was used up
    pair.send("UNSUBSCRIBE", "a", "b")
    pair.read_many(2)
    pair.send("CLIENT", "REPLY", "SKIP")
    pair.send("PUNSUBSCRIBE")
    assert pair.read() == ("*", [("$", b"punsubscribe"), ("$", None), (":", 0)])
    assert pair.both("PING") == ("+", "PONG")


def test_subscription_replies_ignore_client_reply_off(pair: Pair) -> None:
    pair.send("CLIENT", "REPLY", "OFF")
    pair.send("SUBSCRIBE", "a")
    assert pair.read(0.5) == ("*", [("$", b"subscribe"), ("$", b"a"), (":", 1)])


def test_client_reply_off_still_receives_messages(pair: Pair) -> None:
    with pair.connect(3) as sub:
        sub.both("SUBSCRIBE", "c")
        sub.send("CLIENT", "REPLY", "OFF")
        pair.both("PUBLISH", "c", "while-off")
        assert sub.read(0.5) == push(sub, "message", "c", "while-off")


# --- redis-py ------------------------------------------------------------------------------------

def _get(pubsub: Any, timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            return message
    raise AssertionError("no message")


def test_redis_py_pubsub(r: Any, r2: Any) -> None:
    for client in (r, r2):
        pubsub = client.pubsub()
        try:
            pubsub.subscribe("py-chan")
            assert _get(pubsub) == {"type": "subscribe", "pattern": None, "channel": b"py-chan", "data": 1}
            pubsub.psubscribe("py-*")
            assert _get(pubsub) == {"type": "psubscribe", "pattern": None, "channel": b"py-*", "data": 2}
            assert client.pubsub_numsub("py-chan") == [(b"py-chan", 1)]
            assert client.pubsub_numpat() == 1
            assert client.pubsub_channels() == [b"py-chan"]
            assert client.publish("py-chan", "hello") == 2
            got = [_get(pubsub), _get(pubsub)]
            assert {"type": "message", "pattern": None, "channel": b"py-chan", "data": b"hello"} in got
            assert {"type": "pmessage", "pattern": b"py-*", "channel": b"py-chan", "data": b"hello"} in got
            pubsub.unsubscribe("py-chan")
            assert _get(pubsub)["type"] == "unsubscribe"
            pubsub.punsubscribe()
            assert _get(pubsub) == {"type": "punsubscribe", "pattern": None, "channel": b"py-*", "data": 0}
            assert client.publish("py-chan", "nobody") == 0
        finally:
            pubsub.close()


def test_redis_py_sharded_pubsub(r: Any) -> None:
    pubsub = r.pubsub()
    try:
        pubsub.ssubscribe("py-shard")
        assert _get(pubsub) == {"type": "ssubscribe", "pattern": None, "channel": b"py-shard", "data": 1}
        assert r.spublish("py-shard", "sharded") == 1
        assert _get(pubsub) == {"type": "smessage", "pattern": None, "channel": b"py-shard", "data": b"sharded"}
        assert r.pubsub_shardnumsub("py-shard") == [(b"py-shard", 1)]
    finally:
        pubsub.close()


def test_raw_client_helper_is_honest(pair: Pair) -> None:
    """quiet() really notices a pending message (guards the tests above)."""
    with pair.connect(2) as sub:
        sub.both("SUBSCRIBE", "c")
        pair.both("PUBLISH", "c", "x")
        time.sleep(0.05)
        with pytest.raises(pytest.fail.Exception):
            sub.quiet()
