"""Connection group of the in-memory server, compared with a real redis-server (differential).

PING ECHO SELECT QUIT AUTH HELLO RESET and CLIENT (ID INFO LIST KILL SETNAME GETNAME REPLY
NO-EVICT UNBLOCK PAUSE UNPAUSE TRACKING TRACKINGINFO CACHING GETREDIR HELP). Replies that carry
per-server values (client ids, addresses, ages) are parsed and compared field by field; AUTH
flows run against a pair of servers started with --requirepass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from resp_support import (
    Pair,
    RawClient,
    client_id,
    client_info,
    connect,
    execute,
    pair_in_each_protocol,
    parse_client_lines,
    started_pair,
)

SYNTAX = ("-", "ERR syntax error")
NOAUTH = ("-", "NOAUTH Authentication required.")
WRONGPASS = ("-", "WRONGPASS invalid username-password pair or user is disabled.")
LINE_FIELDS = ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub", "ssub",
               "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll", "omem",
               "tot-mem", "events", "cmd", "user", "redir", "resp"]
BLOCK_WAIT = 0.06

p = pair_in_each_protocol()


def fields(reply: tuple[str, Any]) -> tuple[str, dict[bytes, Any]]:
    """A HELLO/TRACKINGINFO reply (map in RESP3, flat array in RESP2) -> (kind, dict)."""
    kind, items = reply
    return kind, {key[1]: value for key, value in zip(items[::2], items[1::2])}


# --- PING ECHO SELECT QUIT -----------------------------------------------------------------------

def test_ping_echo(p: Pair) -> None:
    assert p.both("PING") == ("+", "PONG")
    assert p.both("PING", "hello") == ("$", b"hello")
    assert p.both("PING", "") == ("$", b"")
    assert p.both("PING", "a", "b") == ("-", "ERR wrong number of arguments for 'ping' command")
    assert p.both("ping", b"\x00\xff") == ("$", b"\x00\xff")
    assert p.both("ECHO", "x y") == ("$", b"x y")
    assert p.both("ECHO", "") == ("$", b"")
    p.both("ECHO")
    p.both("ECHO", "a", "b")
    p.both_raw(b"PING\r\n")
    p.both_raw(b"ECHO \"a\\x41\"\r\n")


def test_select(pair: Pair) -> None:
    for index in ("1", "15", "0"):
        assert pair.both("SELECT", index) == ("+", "OK")
    for bad in ("16", "-1", "x", "", "1.0", "01", " 1", "2147483647", "-2147483648", "2147483648",
                "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808"):
        pair.both("SELECT", bad)
    pair.both("SELECT")
    pair.both("SELECT", "1", "2")
    pair.both("SELECT", "3")
    pair.both("SET", "k", "in3")
    pair.both("SELECT", "0")
    assert pair.both("GET", "k") == ("$", None)
    pair.both("SELECT", "3")
    assert pair.both("GET", "k") == ("$", b"in3")
    assert client_info(pair.mem)["db"] == "3"


def test_quit_closes_after_reply(pair: Pair) -> None:
    assert pair.both("QUIT") == ("+", "OK")
    assert pair.real.closed_by_server() and pair.mem.closed_by_server()
    with pair.connect() as other:
        assert other.both("QUIT", "extra", "args") == ("+", "OK")
        assert other.real.closed_by_server() and other.mem.closed_by_server()


def test_quit_inside_multi_is_not_queued(pair: Pair) -> None:
    pair.both("MULTI")
    assert pair.both("QUIT") == ("+", "OK")
    assert pair.real.closed_by_server() and pair.mem.closed_by_server()


# --- AUTH and HELLO without a password -----------------------------------------------------------

def test_auth_without_password(pair: Pair) -> None:
    assert pair.both("AUTH", "x")[1].startswith("ERR AUTH <password> called without any password")
    assert pair.both("AUTH", "default", "anything") == ("+", "OK")
    assert pair.both("AUTH", "default", "") == ("+", "OK")
    assert pair.both("AUTH", "someone", "x") == WRONGPASS
    assert pair.both("AUTH", "a", "b", "c") == SYNTAX
    pair.both("AUTH")
    assert pair.both("PING") == ("+", "PONG")


def test_hello_versions(pair: Pair) -> None:
    real = fields(pair.real.call("HELLO"))
    mem = fields(pair.mem.call("HELLO"))
    assert real[0] == mem[0] == "*"
    assert list(real[1]) == list(mem[1]) == [b"server", b"version", b"proto", b"id", b"mode", b"role",
                                             b"modules"]
    assert mem[1][b"id"] == (":", client_id(pair.mem))
    for name in (b"server", b"version", b"proto", b"mode", b"role", b"modules"):
        assert real[1][name] == mem[1][name], name
    assert mem[1][b"proto"] == (":", 2)
    for version, kind in (("3", "%"), ("2", "*"), ("3", "%")):
        real = fields(pair.real.call("HELLO", version))
        mem = fields(pair.mem.call("HELLO", version))
        assert real[0] == mem[0] == kind
        del real[1][b"id"], mem[1][b"id"]
        assert real == mem
        assert mem[1][b"proto"] == (":", int(version))
    # HELLO without a version keeps the protocol in use
    assert pair.real.call("HELLO")[0] == pair.mem.call("HELLO")[0] == "%"
    assert pair.both("CLIENT", "GETNAME") == ("_", None)


def test_hello_errors(pair: Pair) -> None:
    for args in (("4",), ("1",), ("0",), ("-3",), ("x",), ("3.0",), ("", ), ("4", "FOO"),
                 ("3", "FOO"), ("3", "SETNAME"), ("3", "AUTH"), ("3", "AUTH", "default"),
                 ("3", "SETNAME", "a b"), ("3", "SETNAME", "a\nb"), ("3", "SETNAME", "é"),
                 ("3", "SETNAME", "ok", "AUTH", "default"), ("2", "AUTH", "nobody", "x"),
                 ("3", "AUTH", "nobody", "x", "SETNAME", "bad name")):
        pair.both("HELLO", *args)
    pair.both("CLIENT", "GETNAME")            # SETNAME takes effect before a later bad option
    pair.both("CLIENT", "INFO", "x")


def test_hello_setname_and_auth(pair: Pair) -> None:
    for args in (("3", "SETNAME", "first"), ("2", "setname", "second", "SETNAME", "third"),
                 ("3", "AUTH", "default", "whatever", "SETNAME", "fourth")):
        real, mem = pair.each("HELLO", *args)
        assert real[0] == mem[0]
        assert pair.both("CLIENT", "GETNAME") == ("$", args[-1].encode())
    pair.each("HELLO", "2", "SETNAME", "")
    assert pair.both("CLIENT", "GETNAME") == ("$", None)


# --- RESET ---------------------------------------------------------------------------------------

def test_reset_restores_a_fresh_connection(pair: Pair) -> None:
    with pair.connect() as other:
        pair.both("SELECT", "5")
        pair.both("CLIENT", "SETNAME", "before")
        pair.both("CLIENT", "NO-EVICT", "on")
        pair.both("SET", "w", "1")
        pair.both("WATCH", "w")
        pair.hello(3)
        pair.both("SUBSCRIBE", "c1")
        pair.both("PSUBSCRIBE", "p*")
        pair.both("SSUBSCRIBE", "s1")
        pair.both("MULTI")
        pair.both("SET", "x", "1")
        assert pair.both("RESET") == ("+", "RESET")
        # RESP2 again: a null is $-1; the name is gone; db 0; no transaction
        assert pair.both("CLIENT", "GETNAME") == ("$", None)
        assert pair.both("EXEC") == ("-", "ERR EXEC without MULTI")
        assert pair.both("GET", "w") == ("$", None)
        line = client_info(pair.mem)
        assert (line["db"], line["sub"], line["psub"], line["ssub"], line["resp"], line["multi"]) == \
            ("0", "0", "0", "0", "2", "-1")
        assert line["flags"] == client_info(pair.real)["flags"] == "e"          # NO-EVICT survives RESET
        assert other.both("PUBSUB", "NUMSUB", "c1") == ("*", [("$", b"c1"), (":", 0)])
        assert other.both("PUBSUB", "NUMPAT") == (":", 0)
        assert other.both("PUBSUB", "SHARDNUMSUB", "s1") == ("*", [("$", b"s1"), (":", 0)])
        # the WATCH is gone: a change by another client no longer aborts the transaction
        other.both("SELECT", "5")
        other.both("SET", "w", "2")
        pair.both("SELECT", "5")
        pair.both("MULTI")
        pair.both("GET", "w")
        assert pair.both("EXEC") == ("*", [("$", b"2")])
        # a subscriber in RESP2 may RESET, and is then a normal client
        pair.both("SUBSCRIBE", "c2")
        assert pair.both("GET", "w")[0] == "-"
        assert pair.both("RESET") == ("+", "RESET")
        assert pair.both("PING") == ("+", "PONG")
        pair.both("RESET", "extra")


def test_reset_turns_replies_back_on(pair: Pair) -> None:
    for client in (pair.real, pair.mem):
        client.send("CLIENT", "REPLY", "OFF")
        client.send("PING")
        client.send("RESET")
        assert client.read() == ("+", "RESET")
        assert client.call("PING") == ("+", "PONG")


def test_reset_leaves_monitor(pair: Pair) -> None:
    pair.both("MONITOR")
    with pair.connect() as other:
        assert pair.both("RESET") == ("+", "RESET")
        other.both("SET", "seen", "1")
        assert pair.both("PING") == ("+", "PONG")


# --- CLIENT ID / SETNAME / GETNAME / INFO / LIST -------------------------------------------------

def test_client_errors(pair: Pair) -> None:
    for args in ((), ("FOO",), ("ID", "x"), ("INFO", "x"), ("GETNAME", "x"), ("SETNAME",),
                 ("SETNAME", "a", "b"), ("SETNAME", "a b"), ("SETNAME", "a\x01"), ("SETNAME", "é"),
                 ("SETNAME", "x\x7f"), ("HELP", "x"), ("GETREDIR", "x"), ("TRACKINGINFO", "x"),
                 ("UNPAUSE", "x"), ("REPLY",), ("REPLY", "a", "b"), ("REPLY", "maybe"),
                 ("NO-EVICT",), ("NO-EVICT", "maybe"), ("CACHING",), ("CACHING", "a", "b"),
                 ("LIST", "TYPE"), ("LIST", "TYPE", "foo"), ("LIST", "ID"), ("LIST", "ID", "x"),
                 ("LIST", "ID", "1", "x"), ("LIST", "FOO"), ("LIST", "TYPE", "normal", "ID", "1"),
                 ("LIST", "ID", "1", "TYPE", "normal"), ("LIST", "TYPE", "normal", "x")):
        pair.both("CLIENT", *args)
    assert pair.both("client", "nosuch")[1] == "ERR unknown subcommand 'nosuch'. Try CLIENT HELP."


def test_client_setname_getname(p: Pair) -> None:
    assert p.both("CLIENT", "GETNAME") == p.null
    assert p.both("CLIENT", "SETNAME", "conn-1") == ("+", "OK")
    assert p.both("CLIENT", "GETNAME") == ("$", b"conn-1")
    assert p.both("CLIENT", "SETNAME", "bad name")[0] == "-"
    assert p.both("CLIENT", "GETNAME") == ("$", b"conn-1")
    assert p.both("CLIENT", "SETNAME", "!~") == ("+", "OK")
    assert p.both("CLIENT", "SETNAME", "") == ("+", "OK")
    assert p.both("CLIENT", "GETNAME") == p.null
    assert client_info(p.mem)["name"] == ""


def test_client_help(pair: Pair) -> None:
    reply = pair.both("CLIENT", "HELP")
    assert reply[0] == "*" and len(reply[1]) > 40
    assert pair.both("client", "help") == reply


def test_client_info_fields(p: Pair) -> None:
    real, mem = p.each("CLIENT", "INFO")
    assert real[0] == mem[0] == ("=" if p.resp == 3 else "$")
    real_line, mem_line = client_info(p.real), client_info(p.mem)
    assert list(mem_line) == list(real_line) == LINE_FIELDS
    same = ["name", "flags", "db", "sub", "psub", "ssub", "multi", "qbuf", "qbuf-free",
            "argv-mem", "multi-mem", "obl", "oll", "omem", "events", "cmd", "user", "redir", "resp"]
    assert {k: mem_line[k] for k in same} == {k: real_line[k] for k in same}
    for seconds in ("age", "idle"):     # Redis reads a cached clock: a second may tick in between
        assert abs(int(mem_line[seconds]) - int(real_line[seconds])) <= 1, seconds
    assert mem_line["id"] == str(client_id(p.mem))
    host, port = p.mem.sock.getsockname()[:2]
    assert mem_line["addr"] == f"{host}:{port}"
    assert mem_line["laddr"] == f"127.0.0.1:{p.mem_port}"
    assert int(mem_line["fd"]) > 0 and int(mem_line["tot-mem"]) > 0


def test_client_list_reports_every_state(pair: Pair) -> None:
    """Each line of CLIENT LIST tells the same story on both engines (ids, addresses and memory
    figures aside)."""
    extra = [RawClient(pair.real_port) for _ in range(5)], [RawClient(pair.mem_port) for _ in range(5)]
    try:
        real_ids = [client_id(c) for c in (pair.real, *extra[0])]
        mem_ids = [client_id(c) for c in (pair.mem, *extra[1])]
        for clients in extra:
            sub, multi, blocked, named, watcher = clients
            sub.call("SUBSCRIBE", "a", "b")
            sub.read()
            sub.call("PSUBSCRIBE", "x*")
            sub.call("SSUBSCRIBE", "s")
            multi.call("SELECT", "2")
            multi.call("MULTI")
            multi.call("SET", "a", "1")
            multi.call("GET", "a")
            blocked.send("BLPOP", "nolist", "0")
            named.call("CLIENT", "SETNAME", "bob")
            named.call("CLIENT", "NO-EVICT", "on")
            named.call("HELLO", "3")
            named.call("CLIENT", "TRACKING", "on", "BCAST")
            watcher.call("WATCH", "w")
            watcher.call("SET", "w", "1")
        time.sleep(BLOCK_WAIT)
        real = parse_client_lines(pair.real.call("CLIENT", "LIST", "ID", *map(str, real_ids))[1])
        mem = parse_client_lines(pair.mem.call("CLIENT", "LIST", "ID", *map(str, mem_ids))[1])
        assert [line["id"] for line in mem] == [str(i) for i in mem_ids]
        same = ["name", "flags", "db", "sub", "psub", "ssub", "multi", "events", "cmd", "user", "resp"]
        for real_line, mem_line in zip(real, mem, strict=True):
            assert list(mem_line) == LINE_FIELDS
            assert {k: mem_line[k] for k in same} == {k: real_line[k] for k in same}
            assert (mem_line["redir"] == "-1") == (real_line["redir"] == "-1")
            assert (mem_line["multi-mem"] == "0") == (real_line["multi-mem"] == "0")
        flags = [line["flags"] for line in mem]
        assert flags == ["N", "P", "x", "b", "tBe", "d"]
        # filters: TYPE and ID (in the order given, repeated ids repeated)
        for client, ids in ((pair.real, real_ids), (pair.mem, mem_ids)):
            listed = {kind: [int(line["id"])
                             for line in parse_client_lines(client.call("CLIENT", "LIST", "TYPE", kind)[1])]
                      for kind in ("normal", "pubsub", "master", "replica", "SLAVE")}
            assert [i for i in listed["pubsub"] if i in ids] == [ids[1]]
            assert listed["master"] == listed["replica"] == listed["SLAVE"] == []
            assert set(ids) - {ids[1]} <= set(listed["normal"]) and ids[1] not in listed["normal"]
        twice = parse_client_lines(pair.mem.call("CLIENT", "LIST", "ID", str(mem_ids[2]), "0", "-1",
                                          str(mem_ids[2]), "99999")[1])
        assert [line["id"] for line in twice] == [str(mem_ids[2])] * 2
        everyone = parse_client_lines(pair.mem.call("CLIENT", "LIST")[1])
        ids = [int(line["id"]) for line in everyone]
        assert ids == sorted(ids) and set(mem_ids) <= set(ids)
    finally:
        for clients in extra:
            for client in clients:
                client.close()


def test_client_list_verbatim_in_resp3(p: Pair) -> None:
    real, mem = p.each("CLIENT", "LIST", "ID", "0")
    assert real == mem == (("=", b"txt:") if p.resp == 3 else ("$", b""))


def test_client_id_is_unique_and_increasing(pair: Pair) -> None:
    first = client_id(pair.mem)
    other = RawClient(pair.mem_port)
    try:
        second = client_id(other)
        assert second > first
        assert fields(other.call("HELLO"))[1][b"id"] == (":", second)
    finally:
        other.close()


# --- CLIENT KILL -----------------------------------------------------------------------------------

def test_client_kill_errors(pair: Pair) -> None:
    for args in (("1.2.3.4:5",), ("nosuch",), ("ID",), ("ID", "x"), ("ID", "0"), ("ID", "-5"),
                 ("ID", "99999"), ("ADDR", "1.2.3.4:5"), ("LADDR", "1.2.3.4:5"), ("TYPE", "foo"),
                 ("TYPE", "normal", "SKIPME", "maybe"), ("TYPE", "pubsub"), ("TYPE", "master"),
                 ("TYPE", "replica"), ("TYPE", "slave"), ("USER", "nobody"), ("FOO", "bar"),
                 ("ID", "1", "ID"), ("MAXAGE", "10"), ("USER", "default", "SKIPME", "yes", "ID", "99999"),
                 ("addr", "1.2.3.4:5", "laddr", "x", "skipme", "NO")):
        pair.both("CLIENT", "KILL", *args)
    pair.both("CLIENT", "KILL")


def _addr(client: RawClient) -> str:
    host, port = client.sock.getsockname()[:2]
    return f"{host}:{port}"


def test_client_kill_closes_the_other_connection(pair: Pair) -> None:
    victims = pair.connect()
    bystanders = pair.connect()
    try:
        ids = (client_id(victims.real), client_id(victims.mem))
        for client, victim_id in zip((pair.real, pair.mem), ids):
            assert client.call("CLIENT", "KILL", "ID", str(victim_id)) == (":", 1)
        assert victims.real.closed_by_server() and victims.mem.closed_by_server()
        for client, victim_id in zip((pair.real, pair.mem), ids):
            assert client.call("CLIENT", "KILL", "ID", str(victim_id)) == (":", 0)
            assert client.call("CLIENT", "LIST", "ID", str(victim_id))[1] == b""
        assert bystanders.both("PING") == ("+", "PONG")
        # the old form, by address: OK, or an error once it is gone
        addrs = (_addr(bystanders.real), _addr(bystanders.mem))
        for client, addr in zip((pair.real, pair.mem), addrs):
            assert client.call("CLIENT", "KILL", addr) == ("+", "OK")
        assert bystanders.real.closed_by_server() and bystanders.mem.closed_by_server()
        for client, addr in zip((pair.real, pair.mem), addrs):
            assert client.call("CLIENT", "KILL", addr) == ("-", "ERR No such client")
    finally:
        victims.close()
        bystanders.close()


def test_client_kill_filters(pair: Pair) -> None:
    subscriber = pair.connect()
    plain = pair.connect()
    try:
        subscriber.both("SUBSCRIBE", "news")
        for client, peer in ((pair.real, plain.real), (pair.mem, plain.mem)):
            assert client.call("CLIENT", "KILL", "TYPE", "pubsub", "ADDR", _addr(peer)) == (":", 0)
            assert client.call("CLIENT", "KILL", "TYPE", "master", "ADDR", _addr(peer)) == (":", 0)
        for client, peer in ((pair.real, subscriber.real), (pair.mem, subscriber.mem)):
            assert client.call("CLIENT", "KILL", "TYPE", "normal", "ADDR", _addr(peer)) == (":", 0)
            assert client.call("CLIENT", "KILL", "TYPE", "pubsub", "ADDR", _addr(peer)) == (":", 1)
        assert subscriber.real.closed_by_server() and subscriber.mem.closed_by_server()
        assert plain.both("PING") == ("+", "PONG")
        laddrs = (f"127.0.0.1:{pair.real_port}", f"127.0.0.1:{pair.mem_port}")
        for client, laddr, peer in zip((pair.real, pair.mem), laddrs, (plain.real, plain.mem)):
            assert client.call("CLIENT", "KILL", "LADDR", laddr, "ADDR", _addr(peer)) == (":", 1)
        assert plain.real.closed_by_server() and plain.mem.closed_by_server()
        assert pair.both("PING") == ("+", "PONG")
    finally:
        subscriber.close()
        plain.close()


def test_client_kill_skipme(pair: Pair) -> None:
    for client in (pair.real, pair.mem):
        me = str(client_id(client))
        assert client.call("CLIENT", "KILL", "ID", me) == (":", 0)                 # SKIPME yes
        assert client.call("CLIENT", "KILL", "ID", me, "SKIPME", "yes") == (":", 0)
        assert client.call("CLIENT", "KILL", "ID", me, "SKIPME", "no") == (":", 1)  # answered, then closed
        assert client.closed_by_server()


def test_client_kill_self_old_form(pair: Pair) -> None:
    for client in (pair.real, pair.mem):
        assert client.call("CLIENT", "KILL", _addr(client)) == ("+", "OK")
        assert client.closed_by_server()


# --- CLIENT REPLY, NO-EVICT, UNBLOCK, PAUSE ---------------------------------------------------------

def _silent(client: RawClient) -> bool:
    try:
        client.read(timeout=0.1)
    except TimeoutError:
        return True
    return False


def test_client_reply_off_skip_on(pair: Pair) -> None:
    for client in (pair.real, pair.mem):
        client.send("CLIENT", "REPLY", "OFF")
        client.send("SET", "k", "v")
        client.send("PING")
        client.send("CLIENT", "REPLY", "SKIP")          # ignored while OFF
        client.send("GET", "k")
        assert _silent(client)
        assert client.call("CLIENT", "REPLY", "ON") == ("+", "OK")
        client.send("CLIENT", "REPLY", "SKIP")           # no reply to SKIP itself
        client.send("ECHO", "skipped")                   # nor to the next command
        client.send("ECHO", "seen")
        assert client.read() == ("$", b"seen")
        client.send("CLIENT", "REPLY", "SKIP")
        client.send("CLIENT", "REPLY", "ON")             # ON is answered even when skipping
        assert client.read() == ("+", "OK")
        client.send("CLIENT", "REPLY", "SKIP")
        client.send("NOSUCHCOMMAND")                     # errors are skipped too
        assert client.call("GET", "k") == ("$", b"v")
        assert client.call("CLIENT", "REPLY", "bad") == SYNTAX


def test_client_no_evict(pair: Pair) -> None:
    assert pair.both("CLIENT", "NO-EVICT", "on") == ("+", "OK")
    assert client_info(pair.mem)["flags"] == client_info(pair.real)["flags"] == "e"
    assert pair.both("CLIENT", "NO-EVICT", "OFF") == ("+", "OK")
    assert client_info(pair.mem)["flags"] == "N"


@pytest.mark.parametrize("reason", [None, "TIMEOUT", "error"])
def test_client_unblock(pair: Pair, reason: str | None) -> None:
    with pair.connect() as blocked:
        ids = (client_id(blocked.real), client_id(blocked.mem))
        pair.send_blocking(blocked, "BLPOP", "nolist", "0")
        for client, target in zip((pair.real, pair.mem), ids):
            args = ["CLIENT", "UNBLOCK", str(target)] + ([reason] if reason else [])
            assert client.call(*args) == (":", 1)
            assert client.call(*args) == (":", 0)            # not blocked any more
        expected = ("-", "UNBLOCKED client unblocked via CLIENT UNBLOCK") if reason == "error" else ("*", None)
        assert blocked.read(2) == expected
        assert blocked.both("PING") == ("+", "PONG")
        # a client that is not blocked, an unknown one, bad arguments
        for client, target in zip((pair.real, pair.mem), ids):
            assert client.call("CLIENT", "UNBLOCK", str(target)) == (":", 0)
        for args in (("99999",), ("x",), ("1", "foo"), ("1", "timeout", "x"), ("-1",)):
            pair.both("CLIENT", "UNBLOCK", *args)
        pair.both("CLIENT", "UNBLOCK")


def test_client_pause_arguments(pair: Pair) -> None:
    for args in (("x",), ("-1",), ("1.5",), ("10", "foo"), ("10", "write", "x"), ("x", "write", "x"),
                 ("9223372036854775808",)):
        pair.both("CLIENT", "PAUSE", *args)
    pair.both("CLIENT", "PAUSE")
    for args in (("0",), ("1", "WRITE"), ("1", "all"), ("9223372036854775807",)):
        assert pair.both("CLIENT", "PAUSE", *args) == ("+", "OK")
        assert pair.both("CLIENT", "UNPAUSE") == ("+", "OK")
    pair.both("CLIENT", "UNPAUSE", "x")


# --- CLIENT TRACKING ---------------------------------------------------------------------------------

def test_client_tracking_state(p: Pair) -> None:
    """TRACKING options, TRACKINGINFO, GETREDIR and CACHING answer as Redis (invalidation aside)."""
    steps = [
        ("TRACKINGINFO",), ("GETREDIR",), ("TRACKING", "on"), ("TRACKINGINFO",), ("GETREDIR",),
        ("CACHING", "yes"), ("TRACKING", "on", "optin"), ("TRACKING", "off"),
        ("TRACKING", "on", "optin"), ("CACHING", "no"), ("CACHING", "x"), ("CACHING", "yes"),
        ("TRACKINGINFO",), ("TRACKING", "on", "optout"), ("TRACKING", "off"), ("TRACKING", "on", "optout"),
        ("CACHING", "yes"), ("CACHING", "no"), ("TRACKINGINFO",), ("TRACKING", "off"),
        ("TRACKING", "on", "bcast"), ("TRACKINGINFO",), ("TRACKING", "on", "bcast", "prefix", "a"),
        ("TRACKING", "on"), ("TRACKING", "off"),
        ("TRACKING", "on", "bcast", "prefix", "b", "prefix", "a", "prefix", "c"), ("TRACKINGINFO",),
        ("TRACKING", "on", "bcast", "prefix", "d", "prefix", "bb"),
        ("TRACKING", "on", "bcast", "prefix", "e", "prefix", "f", "prefix", "e"),
        ("TRACKING", "on", "bcast", "prefix", "x", "noloop"), ("TRACKINGINFO",), ("TRACKING", "off"),
        ("TRACKING", "on", "noloop"), ("TRACKINGINFO",), ("TRACKING", "off", "bcast"), ("TRACKINGINFO",),
        ("TRACKING",), ("TRACKING", "foo"), ("TRACKING", "on", "foo"), ("TRACKING", "on", "optin", "optout"),
        ("TRACKING", "on", "prefix", "a"), ("TRACKING", "on", "bcast", "optin"), ("TRACKING", "on", "prefix"),
        ("TRACKING", "on", "redirect"), ("TRACKING", "on", "redirect", "x"),
        ("TRACKING", "on", "redirect", "99999"), ("TRACKING", "on", "redirect", "0", "redirect", "0"),
        ("TRACKING", "on", "redirect", "-1"), ("TRACKINGINFO",), ("GETREDIR",),
    ]
    for step in steps:
        p.both("CLIENT", *step)


def test_client_tracking_redirect(pair: Pair) -> None:
    with pair.connect() as target:
        for client, other in ((pair.real, target.real), (pair.mem, target.mem)):
            other_id = client_id(other)
            assert client.call("CLIENT", "TRACKING", "on", "REDIRECT", str(other_id)) == ("+", "OK")
            assert client.call("CLIENT", "GETREDIR") == (":", other_id)
            _, info_fields = fields(client.call("CLIENT", "TRACKINGINFO"))
            assert info_fields[b"redirect"] == (":", other_id)
            assert client_info(client)["redir"] == str(other_id)
            assert client_info(client)["flags"] == "t"
            assert client.call("CLIENT", "TRACKING", "on", "REDIRECT", str(other_id), "REDIRECT",
                               str(other_id)) == ("-", "ERR A client can only redirect to a single other client")
            assert client.call("CLIENT", "TRACKING", "off") == ("+", "OK")
            assert client.call("CLIENT", "GETREDIR") == (":", -1)
            assert client_info(client)["redir"] == "-1"


def test_reset_turns_tracking_off(pair: Pair) -> None:
    pair.both("CLIENT", "TRACKING", "on", "bcast", "prefix", "p")
    pair.both("RESET")
    assert pair.both("CLIENT", "GETREDIR") == (":", -1)
    pair.both("CLIENT", "TRACKINGINFO")
    assert pair.both("CLIENT", "TRACKING", "on") == ("+", "OK")          # BCAST mode may change now


# --- a server with requirepass -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """A real redis-server and an in-memory server, both started with --requirepass pw."""
    with started_pair(tmp_path_factory, "auth", "--requirepass", "pw") as ports:
        yield ports


@pytest.fixture
def locked(secured: tuple[int, int]) -> Iterator[Pair]:
    with Pair(*secured) as both:
        yield both


def test_auth_required(locked: Pair) -> None:
    for args in (("PING",), ("ECHO", "a"), ("GET", "k"), ("SELECT", "1"), ("CLIENT", "ID"), ("MULTI",),
                 ("SUBSCRIBE", "a"), ("NOSUCH",)):
        locked.both(*args)
    locked.both("DISCARD")
    assert locked.both("AUTH", "wrong") == WRONGPASS
    assert locked.both("AUTH", "default", "wrong") == WRONGPASS
    assert locked.both("AUTH", "nobody", "pw") == WRONGPASS
    assert locked.both("AUTH", "pw", "x", "y") == SYNTAX
    locked.both("AUTH")
    assert locked.both("PING") == NOAUTH
    assert locked.both("AUTH", "pw") == ("+", "OK")
    assert locked.both("PING") == ("+", "PONG")
    assert locked.both("AUTH", "wrong") == WRONGPASS
    assert locked.both("PING") == ("+", "PONG")                       # still authenticated
    assert locked.both("AUTH", "default", "pw") == ("+", "OK")
    assert locked.both("RESET") == ("+", "RESET")
    assert locked.both("PING") == NOAUTH                              # RESET deauthenticates
    assert locked.both("QUIT") == ("+", "OK")                         # QUIT needs no AUTH
    assert locked.real.closed_by_server() and locked.mem.closed_by_server()


def test_exec_without_auth_aborts(locked: Pair) -> None:
    assert locked.both("EXEC") == ("-", ("EXECABORT Transaction discarded because of: NOAUTH "
                                         "Authentication required."))


def test_hello_auth_flows(locked: Pair) -> None:
    for args in ((), ("3",), ("2",), ("4",), ("x",), ("3", "FOO"), ("3", "AUTH", "default", "wrong"),
                 ("3", "AUTH", "nobody", "pw"), ("3", "AUTH", "default"), ("3", "SETNAME", "a b", "AUTH",
                 "default", "pw"), ("3", "AUTH", "default", "wrong", "SETNAME", "a b")):
        locked.both("HELLO", *args)
    assert locked.both("PING") == NOAUTH
    real, mem = locked.each("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "named")
    assert real[0] == mem[0] == "%"
    assert locked.both("CLIENT", "GETNAME") == ("$", b"named")
    assert client_info(locked.mem)["resp"] == "3"
    assert locked.both("RESET") == ("+", "RESET")
    assert locked.both("CLIENT", "GETNAME") == NOAUTH
    real, mem = locked.each("HELLO", "2", "AUTH", "default", "pw")
    assert real[0] == mem[0] == "*"
    assert locked.both("CLIENT", "GETNAME") == ("$", None)


def test_auth_inside_multi_is_queued(locked: Pair) -> None:
    assert locked.both("AUTH", "pw") == ("+", "OK")
    locked.both("MULTI")
    assert locked.both("AUTH", "wrong") == ("+", "QUEUED")
    assert locked.both("AUTH", "pw") == ("+", "QUEUED")
    assert locked.both("EXEC") == ("*", [WRONGPASS, ("+", "OK")])


def test_redis_py_auth(secured: tuple[int, int]) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    for port in secured:
        with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
            redis.Redis(port=port, password="wrong", retry=Retry(NoBackoff(), 0)).ping()
        with pytest.raises(redis.AuthenticationError, match="HELLO must be called"):
            redis.Redis(port=port, retry=Retry(NoBackoff(), 0)).ping()
        with pytest.raises(redis.AuthenticationError, match="Authentication required"):
            redis.Redis(port=port, protocol=2, retry=Retry(NoBackoff(), 0)).ping()
        for protocol in (2, 3):
            client = redis.Redis(port=port, password="pw", protocol=protocol, client_name="py")
            try:
                assert client.ping() is True
                assert client.client_getname() in (b"py", "py")
            finally:
                client.close()


# --- redis-py over both engines ---------------------------------------------------------------------

def test_redis_py_client_commands(r: Any, r2: Any) -> None:
    for client in (r, r2):
        assert client.ping() is True
        assert client.echo("hi") == b"hi"
        assert client.client_setname("py-conn") is True
        assert client.client_getname() in (b"py-conn", "py-conn")
        me = client.client_id()
        listed = client.client_list()
        mine = [entry for entry in listed if int(entry["id"]) == me]
        assert len(mine) == 1 and mine[0]["name"] == "py-conn"
        assert client.client_info()["id"] == me
        assert client.client_list(_type="pubsub") == []
        assert client.client_kill_filter(_id=99999) == 0


def test_redis_py_kill_by_id(r: Any, r2: Any) -> None:
    import redis
    victim_id = r2.client_id()
    assert r.client_kill_filter(_id=victim_id) == 1
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        ids = {int(entry["id"]) for entry in r.client_list()}
        if victim_id not in ids:
            break
        time.sleep(0.02)
    assert victim_id not in ids
    try:
        r2.ping()                       # may notice the closed socket first
    except redis.ConnectionError:
        pass
    assert r2.ping() is True
    assert r2.client_id() != victim_id


@pytest.mark.parametrize("args", [
    ("3", "SETNAME", "a b", "AUTH", "default", "wrong"),
    ("3", "AUTH", "default", "pw", "SETNAME", "a b"),
    ("3", "AUTH", "default", "pw", "SETNAME", "ok", "SETNAME", "a b"),
    ("3", "AUTH", "default", "pw", "AUTH", "default", "wrong"),
    ("3", "AUTH", "default", "wrong", "AUTH", "default", "pw"),
    ("3", "AUTH", "default", "pw", "FOO"),
])
def test_hello_authenticates_option_by_option(secured: tuple[int, int], args: tuple[str, ...]) -> None:
    """HELLO runs its options in order: an AUTH before a failing option still authenticates."""
    fresh = Pair(*secured)
    try:
        assert fresh.both("HELLO", *args)[0] == "-"
        fresh.both("PING")
        fresh.both("CLIENT", "GETNAME")
    finally:
        fresh.close()


# --- invalidation hooks (in-process: the engine does not call them yet) -----------------------------

def test_tracking_invalidation_hooks() -> None:
    from cascade_cli.resp.commands.connection import tracking_flush, tracking_invalidate
    from cascade_cli.resp.core import Engine
    from cascade_cli.resp.protocol import Push
    engine = Engine()
    plain = connect(engine, [b"HELLO", b"3"], [b"CLIENT", b"TRACKING", b"on"])
    optin = connect(engine, [b"HELLO", b"3"], [b"CLIENT", b"TRACKING", b"on", b"OPTIN"])
    optout = connect(engine, [b"HELLO", b"3"], [b"CLIENT", b"TRACKING", b"on", b"OPTOUT", b"NOLOOP"])
    bcast = connect(engine, [b"HELLO", b"3"], [b"CLIENT", b"TRACKING", b"on", b"BCAST", b"PREFIX", b"p:"])
    resp2 = connect(engine, [b"CLIENT", b"TRACKING", b"on"])
    listener = connect(engine)
    execute(engine, listener, b"SUBSCRIBE", b"__redis__:invalidate")
    redirected = connect(engine, [b"CLIENT", b"TRACKING", b"on", b"REDIRECT", str(listener.id).encode()])
    for client in (plain, optin, optout, resp2, redirected):
        execute(engine, client, b"GET", b"k")
    execute(engine, optin, b"CLIENT", b"CACHING", b"yes")
    execute(engine, optin, b"MGET", b"k2", b"k3")                 # remembered: CACHING yes came right before
    execute(engine, optin, b"GET", b"k4")                         # not remembered: CACHING applied once
    execute(engine, optout, b"CLIENT", b"CACHING", b"no")
    execute(engine, optout, b"GET", b"k2")                        # not remembered
    execute(engine, optout, b"GET", b"k3")
    for client in (plain, optin, optout, bcast, resp2, listener, redirected):
        client.sent.clear()
    tracking_invalidate(engine, b"k")
    assert plain.sent == [Push([b"invalidate", [b"k"]])]
    assert optin.sent == [] and resp2.sent == [] and bcast.sent == []
    assert optout.sent == [Push([b"invalidate", [b"k"]])]
    assert listener.sent == [Push([b"message", b"__redis__:invalidate", [b"k"]])]
    plain.sent.clear()
    tracking_invalidate(engine, b"k")                 # told once: the key was forgotten
    assert plain.sent == []
    tracking_invalidate(engine, b"k2")
    tracking_invalidate(engine, b"k4")
    assert optin.sent == [Push([b"invalidate", [b"k2"]])]
    assert optout.sent == [Push([b"invalidate", [b"k"]])]
    tracking_invalidate(engine, b"k3", writer=optout)   # NOLOOP: not about its own writes
    assert optout.sent == [Push([b"invalidate", [b"k"]])]
    tracking_invalidate(engine, b"p:1")
    tracking_invalidate(engine, b"q:1")
    assert bcast.sent == [Push([b"invalidate", [b"p:1"]])]
    # FLUSHALL: a null invalidation to every tracking client that can receive one
    for client in (plain, bcast, listener):
        client.sent.clear()
    tracking_flush(engine)
    assert plain.sent == bcast.sent == [Push([b"invalidate", None])]
    assert listener.sent == [Push([b"message", b"__redis__:invalidate", None])]
    # the redirect target goes away: flagged broken (RESP3 clients are told once)
    engine.disconnect(listener)
    execute(engine, redirected, b"GET", b"k")
    tracking_invalidate(engine, b"k")
    line = execute(engine, redirected, b"CLIENT", b"INFO")
    assert " flags=tR " in line
    info_reply = execute(engine, redirected, b"CLIENT", b"TRACKINGINFO")
    assert list(info_reply[b"flags"]) == [b"on", b"broken_redirect"]
    # a tracking client that disconnected is forgotten
    engine.disconnect(plain)
    tracking_flush(engine)
    assert plain not in engine.tracking_clients


@pytest.mark.parametrize("name", ["ping", "echo", "auth", "hello", "select", "quit", "reset", "client",
                                  "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe",
                                  "sunsubscribe", "publish", "spublish", "pubsub", "multi", "exec",
                                  "discard", "watch", "unwatch"])
def test_command_info_of_the_connection_pubsub_and_transaction_groups(pair: Pair, name: str) -> None:
    """Arity, flags, key positions, ACL categories and subcommands as registered match Redis."""
    if name not in ("client", "pubsub"):
        pair.both("COMMAND", "INFO", name)
        return
    real, mem = pair.each("COMMAND", "INFO", name)
    real_info, mem_info = real[1][0][1], mem[1][0][1]
    assert mem_info[:9] == real_info[:9]
    # subcommands in any order
    assert {sub[1][0][1]: sub for sub in mem_info[9][1]} == {sub[1][0][1]: sub for sub in real_info[9][1]}


def test_tracking_invalidation_over_the_wire(pair: Pair) -> None:
    """A RESP3 client caching `k` hears about another client's write, on both engines."""
    pair.hello(3)
    pair.both("CLIENT", "TRACKING", "on")
    pair.both("GET", "k")
    with pair.connect() as writer:
        writer.both("SET", "k", "v")
        assert pair.read(2) == (">", [("$", b"invalidate"), ("*", [("$", b"k")])])
        writer.both("FLUSHALL")
        assert pair.read(2) == (">", [("$", b"invalidate"), ("_", None)])
