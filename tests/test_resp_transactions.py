"""Transactions group of the in-memory server, compared with a real redis-server (differential).

MULTI, EXEC, DISCARD, WATCH, UNWATCH: queueing, queue-time errors (EXECABORT), run-time errors
inside EXEC, WATCH against changes by other clients, by the watcher itself, by expiry, by
FLUSHALL/FLUSHDB and in other databases, blocking commands inside a transaction, and
redis-py's transactional pipelines with WatchError races.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from resp_support import (
    Pair,
    client_id,
    client_info,
    pair_in_each_protocol,
    parse_client_lines,
    watch_change_exec,
)

OK = ("+", "OK")
QUEUED = ("+", "QUEUED")
EXECABORT = ("-", "EXECABORT Transaction discarded because of previous errors.")
WRONGTYPE = ("-", "WRONGTYPE Operation against a key holding the wrong kind of value")


p = pair_in_each_protocol()


def transaction(p: Pair, *commands: tuple[Any, ...]) -> Any:
    """MULTI, the commands (each must be QUEUED), EXEC; returns EXEC's reply."""
    assert p.both("MULTI") == OK
    for command in commands:
        assert p.both(*command) == QUEUED
    return p.both("EXEC")


# --- MULTI / EXEC / DISCARD ------------------------------------------------------------------------

def test_errors_outside_multi(p: Pair) -> None:
    assert p.both("EXEC") == ("-", "ERR EXEC without MULTI")
    assert p.both("DISCARD") == ("-", "ERR DISCARD without MULTI")
    assert p.both("UNWATCH") == OK
    for args in (("MULTI", "x"), ("DISCARD", "x"), ("UNWATCH", "x"), ("WATCH",)):
        assert p.both(*args)[0] == "-"


def test_multi_exec_basic(p: Pair) -> None:
    assert transaction(p, ("SET", "a", "1"), ("INCR", "a"), ("GET", "a"), ("PING",), ("ECHO", "e")) == \
        ("*", [OK, (":", 2), ("$", b"2"), ("+", "PONG"), ("$", b"e")])
    assert transaction(p) == ("*", [])
    assert p.both("GET", "a") == ("$", b"2")


def test_nested_multi_and_watch_inside_multi_do_not_abort(p: Pair) -> None:
    p.both("MULTI")
    assert p.both("MULTI") == ("-", "ERR MULTI calls can not be nested")
    assert p.both("WATCH", "a") == ("-", "ERR WATCH inside MULTI is not allowed")
    assert p.both("SET", "a", "1") == QUEUED
    assert p.both("UNWATCH") == QUEUED
    assert p.both("EXEC") == ("*", [OK, OK])


def test_discard(p: Pair) -> None:
    p.both("MULTI")
    p.both("SET", "d", "1")
    assert p.both("DISCARD") == OK
    assert p.both("GET", "d") == p.null
    assert p.both("EXEC") == ("-", "ERR EXEC without MULTI")
    assert p.both("DISCARD") == ("-", "ERR DISCARD without MULTI")
    # DISCARD after a queue-time error clears the error too
    p.both("MULTI")
    p.both("NOSUCHCOMMAND")
    p.both("DISCARD")
    assert transaction(p, ("SET", "d", "2")) == ("*", [OK])


@pytest.mark.parametrize("bad", [("NOSUCHCOMMAND", "x"), ("SET", "a"), ("GET",), ("CLIENT", "NOSUCH"),
                                 ("CLIENT", "ID", "x"), ("MULTI", "x"), ("WATCH",)])
def test_queue_time_errors_abort_exec(pair: Pair, bad: tuple[str, ...]) -> None:
    pair.both("MULTI")
    assert pair.both("SET", "kept", "before") == QUEUED
    assert pair.both(*bad)[0] == "-"
    assert pair.both("SET", "kept", "after") == QUEUED
    assert pair.both("EXEC") == EXECABORT
    assert pair.both("GET", "kept") == ("$", None)
    assert pair.both("EXEC") == ("-", "ERR EXEC without MULTI")


def test_run_time_errors_are_per_command(p: Pair) -> None:
    p.both("LPUSH", "list", "x")
    reply = transaction(p, ("INCR", "n"), ("INCR", "list"), ("LPUSH", "n", "y"), ("INCR", "n"),
                        ("SET", "s", "v", "EX", "0"), ("GET", "s"))
    assert reply[1][:4] == [(":", 1), WRONGTYPE, WRONGTYPE, (":", 2)]
    assert reply[1][4][0] == "-"                  # invalid expire time: an error, and nothing set
    assert p.both("GET", "n") == ("$", b"2")


def test_exec_reply_shapes_follow_the_protocol(p: Pair) -> None:
    p.both("RPUSH", "l", "a", "b")
    reply = transaction(p, ("LRANGE", "l", "0", "-1"), ("GET", "missing"), ("LPOP", "missing", "2"),
                        ("CLIENT", "GETNAME"), ("PUBSUB", "NUMSUB", "x"))
    assert reply[0] == "*" and len(reply[1]) == 5


def test_multi_with_blocking_commands_answers_at_once(p: Pair) -> None:
    p.both("RPUSH", "full", "v")
    start = time.monotonic()
    reply = transaction(p, ("BLPOP", "empty", "0"), ("BLPOP", "full", "0"), ("BRPOP", "empty", "0.5"),
                        ("BLMOVE", "empty", "dst", "LEFT", "RIGHT", "0"))
    assert time.monotonic() - start < 0.4
    assert len(reply[1]) == 4
    assert reply[1][1] == ("*", [("$", b"full"), ("$", b"v")])


def test_multi_state_shows_in_client_list(pair: Pair) -> None:
    with pair.connect() as observer:
        ids = client_id(pair.real), client_id(pair.mem)
        pair.both("MULTI")
        pair.both("SET", "a", "1")
        pair.both("GET", "a")
        real, mem = (parse_client_lines(client.call("CLIENT", "LIST", "ID", str(i))[1])[0]
                     for client, i in zip((observer.real, observer.mem), ids))
        assert (mem["flags"], mem["multi"], mem["cmd"]) == (real["flags"], real["multi"], real["cmd"]) == \
            ("x", "2", "get")
        assert int(mem["multi-mem"]) > 0
        pair.both("DISCARD")
        mem = parse_client_lines(observer.mem.call("CLIENT", "LIST", "ID", str(ids[1]))[1])[0]
        assert (mem["flags"], mem["multi"], mem["multi-mem"]) == ("N", "-1", "0")


def test_quit_and_reset_inside_multi(pair: Pair) -> None:
    pair.both("MULTI")
    pair.both("SET", "r", "1")
    assert pair.both("RESET") == ("+", "RESET")
    assert pair.both("EXEC") == ("-", "ERR EXEC without MULTI")
    assert pair.both("GET", "r") == ("$", None)


# --- WATCH -----------------------------------------------------------------------------------------

def test_watch_change_by_another_client(p: Pair) -> None:
    with p.connect() as other:
        p.both("SET", "k", "1")
        assert p.both("WATCH", "k") == OK
        assert other.both("SET", "k", "2") == OK
        assert transaction(p, ("SET", "k", "mine")) == p.null_array
        assert p.both("GET", "k") == ("$", b"2")
        # EXEC unwatched everything: the next transaction runs whatever happens
        other.both("SET", "k", "3")
        assert transaction(p, ("GET", "k")) == ("*", [("$", b"3")])
        # not modified: runs
        p.both("WATCH", "k", "other", "k")
        other.both("GET", "k")
        other.both("SET", "unrelated", "x")
        assert transaction(p, ("INCR", "counter")) == ("*", [(":", 1)])
        # one of several watched keys changes: aborted
        p.both("WATCH", "k", "k2", "k3")
        other.both("SET", "k3", "x")
        assert transaction(p, ("INCR", "counter")) == p.null_array
        assert p.both("GET", "counter") == ("$", b"1")


@pytest.mark.parametrize("change", [
    ("SET", "w", "same"),                  # same value: still a change
    ("DEL", "w"),
    ("EXPIRE", "w", "100"),
    ("APPEND", "w", ""),
    ("RENAME", "w", "w2"),
    ("LPUSH", "wl", "x"),
])
def test_watch_sees_every_write(pair: Pair, change: tuple[str, ...]) -> None:
    pair.both("SET", "w", "same")
    with pair.connect() as other:
        watch_change_exec(pair, other, ("w", "wl"), change)


@pytest.mark.parametrize("noop", [
    ("DEL", "missing"),
    ("PERSIST", "w"),
    ("GET", "w"),
    ("EXPIRE", "missing", "10"),
    ("LPOP", "missing"),
    ("SET", "other", "x"),
])
def test_watch_ignores_reads_and_noops(pair: Pair, noop: tuple[str, ...]) -> None:
    with pair.connect() as other:
        pair.both("SET", "w", "v")
        pair.both("WATCH", "w", "missing")
        other.both(*noop)
        assert transaction(pair, ("GET", "w")) == ("*", [("$", b"v")])


def test_watch_change_by_the_watcher_itself(p: Pair) -> None:
    p.both("WATCH", "self")
    p.both("SET", "self", "1")
    assert transaction(p, ("GET", "self")) == p.null_array
    # a change made inside the transaction itself does not matter
    p.both("WATCH", "self")
    assert transaction(p, ("SET", "self", "2"), ("GET", "self")) == ("*", [OK, ("$", b"2")])


def test_watch_missing_key_created_and_deleted(pair: Pair) -> None:
    with pair.connect() as other:
        pair.both("WATCH", "ghost")
        other.both("SET", "ghost", "1")
        other.both("DEL", "ghost")
        assert transaction(pair, ("PING",)) == ("*", None)


def test_watch_key_expiring_meanwhile(p: Pair) -> None:
    p.both("SET", "e", "v", "PX", "60")
    p.both("WATCH", "e")
    time.sleep(0.12)
    assert transaction(p, ("PING",)) == p.null_array
    # expired and gone for another client's read meanwhile
    p.both("SET", "e", "v", "PX", "60")
    p.both("WATCH", "e")
    time.sleep(0.12)
    with p.connect() as other:
        other.both("GET", "e")
    assert transaction(p, ("PING",)) == p.null_array


def test_watch_key_already_expired(pair: Pair) -> None:
    pair.both("SET", "old", "v", "PX", "10")
    time.sleep(0.05)
    pair.both("WATCH", "old")
    assert transaction(pair, ("EXISTS", "old")) == ("*", [(":", 0)])


@pytest.mark.parametrize("after", [("SET", "stale", "new"), ("DEL", "stale"), ("FLUSHDB",), ("GET", "stale"),
                                   ("EXISTS", "stale")])
def test_watch_stale_keys(pair: Pair, after: tuple[str, ...]) -> None:
    """A key already expired when watched: deleting it is no change, writing it is."""
    pair.both("SET", "stale", "v", "PX", "1")
    time.sleep(0.01)
    pair.both("WATCH", "stale")
    pair.both(*after)
    pair.both("MULTI")
    pair.both("PING")
    pair.both("EXEC")


def test_watch_and_flush(pair: Pair) -> None:
    with pair.connect() as other:
        for flush in (("FLUSHALL",), ("FLUSHDB",), ("FLUSHALL", "ASYNC"), ("FLUSHDB", "SYNC")):
            pair.both("SET", "f", "1")
            pair.both("WATCH", "f", "never-existed")
            other.both(*flush)
            assert transaction(pair, ("PING",)) == ("*", None), flush
        # a flush that finds none of the watched keys does not abort
        pair.both("WATCH", "never-existed")
        other.both("FLUSHALL")
        assert transaction(pair, ("PING",)) == ("*", [("+", "PONG")])
        # FLUSHDB of another database leaves this one's watched keys alone
        pair.both("SET", "f", "1")
        pair.both("WATCH", "f")
        other.both("SELECT", "4")
        other.both("SET", "f", "elsewhere")
        other.both("FLUSHDB")
        assert transaction(pair, ("GET", "f")) == ("*", [("$", b"1")])


def test_watch_is_per_database(pair: Pair) -> None:
    with pair.connect() as other:
        pair.both("SELECT", "1")
        pair.both("WATCH", "dbkey")
        other.both("SET", "dbkey", "in-db0")          # another database: no effect
        assert transaction(pair, ("GET", "dbkey")) == ("*", [("$", None)])
        pair.both("WATCH", "dbkey")
        other.both("SELECT", "1")
        other.both("SET", "dbkey", "in-db1")
        assert transaction(pair, ("GET", "dbkey")) == ("*", None)
        # WATCH remembers the database of the moment, even after SELECT
        pair.both("WATCH", "dbkey")
        pair.both("SELECT", "0")
        other.both("SET", "dbkey", "again-db1")
        assert transaction(pair, ("GET", "dbkey")) == ("*", None)


def test_unwatch_and_discard_forget_watches(pair: Pair) -> None:
    with pair.connect() as other:
        pair.both("WATCH", "u")
        assert pair.both("UNWATCH") == OK
        other.both("SET", "u", "1")
        assert transaction(pair, ("GET", "u")) == ("*", [("$", b"1")])
        pair.both("WATCH", "u")
        pair.both("MULTI")
        pair.both("DISCARD")
        other.both("SET", "u", "2")
        assert transaction(pair, ("GET", "u")) == ("*", [("$", b"2")])
        # EXECABORT forgets them as well
        pair.both("WATCH", "u")
        pair.both("MULTI")
        pair.both("NOSUCH")
        assert pair.both("EXEC") == EXECABORT
        other.both("SET", "u", "3")
        assert transaction(pair, ("GET", "u")) == ("*", [("$", b"3")])


def test_dirty_flag_shows_in_client_list(pair: Pair) -> None:
    with pair.connect() as other:
        pair.both("WATCH", "flagged")
        assert client_info(pair.mem)["flags"] == client_info(pair.real)["flags"] == "N"
        other.both("SET", "flagged", "1")
        assert client_info(pair.mem)["flags"] == client_info(pair.real)["flags"] == "d"
        pair.both("UNWATCH")
        assert client_info(pair.mem)["flags"] == client_info(pair.real)["flags"] == "N"


# --- differences from Redis that need a change outside this group -----------------------------------

def test_exec_with_arguments_aborts(pair: Pair) -> None:
    pair.both("MULTI")
    pair.both("SET", "x", "1")
    assert pair.both("EXEC", "x") == ("-", ("EXECABORT Transaction discarded because of: wrong number of "
                                            "arguments for 'exec' command"))
    assert pair.both("EXEC") == ("-", "ERR EXEC without MULTI")


def test_exec_refused_in_subscribed_context_aborts(pair: Pair) -> None:
    pair.both("SUBSCRIBE", "c")
    assert pair.both("EXEC") == ("-", ("EXECABORT Transaction discarded because of: Can't execute 'exec': "
                                       "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                                       "allowed in this context"))


# --- redis-py --------------------------------------------------------------------------------------

def test_redis_py_transaction_pipeline(r: Any, r2: Any) -> None:
    for client in (r, r2):
        client.delete("tp")
        with client.pipeline(transaction=True) as pipe:
            pipe.set("tp", 1).incr("tp").get("tp")
            assert pipe.execute() == [True, 2, b"2"]


def test_redis_py_watch_race(r: Any, r2: Any) -> None:
    import redis
    r.set("balance", 100)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance"))
        r2.set("balance", 0)                     # another client wins the race
        pipe.multi()
        pipe.set("balance", current - 10)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == b"0"


def test_redis_py_concurrent_increments_with_watch(r: Any, engine_server: Any) -> None:
    """Optimistic locking: every increment lands exactly once whatever the interleaving."""
    import redis
    r.set("shared", 0)
    errors: list[BaseException] = []

    def worker() -> None:
        client = redis.Redis(port=engine_server.port)
        try:
            for _ in range(25):
                while True:
                    with client.pipeline() as pipe:
                        try:
                            pipe.watch("shared")
                            value = int(pipe.get("shared"))
                            pipe.multi()
                            pipe.set("shared", value + 1)
                            pipe.execute()
                            break
                        except redis.WatchError:
                            continue
        except BaseException as error:    # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert r.get("shared") == b"100"
