"""Big values: commands on 200k-element containers answer correctly.

Random picks (SRANDMEMBER, SPOP, HRANDFIELD, ZRANDMEMBER) return members and stay uniform as the
container changes; pending-entries-list reads, batched XDEL and exact trimming are right on a
200k-entry stream; a SCAN survives a flood of unrelated SCAN 0 calls; and a differential run
against redis-server exercises the stream structures (batched XDEL, amortised trimming, sorted
PELs) beyond their internal thresholds. How long these commands take against copying the
container is measured by benchmarks/resp_bigvalues.py, not here.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest
from resp_support import Pair, connect, execute

from cascade_cli.resp import sampling
from cascade_cli.resp import scan as scanning
from cascade_cli.resp.core import Engine

N = 200_000


@pytest.fixture(scope="module")
def big() -> tuple[Any, Any]:
    """An in-process engine holding a 200k-member set, hash and sorted set."""
    engine = Engine()
    client = connect(engine)
    for start in range(0, N, 10_000):
        members = [f"m{i}" for i in range(start, start + 10_000)]
        execute(engine, client, "SADD", "s", *members)
        execute(engine, client, "HSET", "h", *[x for m in members for x in (m, "v")])
        execute(engine, client, "ZADD", "z", *[x for i, m in enumerate(members, start) for x in (i, m)])
    return engine, client


# --- random picks ------------------------------------------------------------------------------

def test_big_random_picks_are_members(big: tuple[Any, Any]) -> None:
    engine, client = big
    s = engine.dbs[0].data[b"s"]
    h = engine.dbs[0].data[b"h"]
    for count in (1, 7, 1000):
        got = execute(engine, client, "SRANDMEMBER", "s", count)
        assert len(got) == count == len(set(got)) and all(m in s for m in got)
        got = execute(engine, client, "HRANDFIELD", "h", count)
        assert len(got) == count == len(set(got)) and all(f in h for f in got)
    got = execute(engine, client, "SRANDMEMBER", "s", -5000)
    assert len(got) == 5000 and all(m in s for m in got) and len(set(got)) > 4000
    before = len(s)
    popped = execute(engine, client, "SPOP", "s", 500)
    assert len(popped) == 500 and len(s) == before - 500 and not any(m in s for m in popped)


def _draws(engine: Any, client: Any, command: str, key: str, n: int) -> collections.Counter[bytes]:
    counts: collections.Counter[bytes] = collections.Counter()
    for _ in range(n // 100):
        counts.update(execute(engine, client, command, key, -100))
    return counts


def test_random_picks_follow_changes_and_stay_uniform() -> None:
    engine = Engine()
    client = connect(engine)
    execute(engine, client, "SADD", "s", *[f"a{i}" for i in range(1000)])
    execute(engine, client, "HSET", "h", *[x for i in range(1000) for x in (f"a{i}", "v")])
    execute(engine, client, "SRANDMEMBER", "s", 5)          # the pickers exist from here on
    execute(engine, client, "HRANDFIELD", "h", 5)
    # replace half the members, some of them coming back, through every kind of change
    gone = [f"a{i}" for i in range(0, 1000, 2)]
    execute(engine, client, "SREM", "s", *gone)
    execute(engine, client, "HDEL", "h", *gone)
    back = gone[:100]
    execute(engine, client, "SADD", "s", *back, *[f"b{i}" for i in range(300)], "b0")
    execute(engine, client, "HSET", "h", *[x for f in back + [f"b{i}" for i in range(300)] for x in (f, "w")])
    execute(engine, client, "SADD", "other", "c0", "c1")
    for i in range(100):
        execute(engine, client, "SMOVE", "other" if i < 2 else "nowhere", "s", f"c{i}")
        execute(engine, client, "HSETNX", "h", f"c{i}", "x")
    execute(engine, client, "HINCRBY", "h", "d0", "1")
    execute(engine, client, "SPOP", "s", "3")
    for command, key in (("SRANDMEMBER", "s"), ("HRANDFIELD", "h")):
        value = engine.dbs[0].data[key.encode()]
        counts = _draws(engine, client, command, key, 200 * len(value))
        assert set(counts) == set(value), command              # all live members, nothing else
        assert 100 < min(counts.values()) and max(counts.values()) < 300, command   # expected 200 each


def test_pickers_are_dropped_with_their_container() -> None:
    engine = Engine()
    client = connect(engine)
    execute(engine, client, "SADD", "s", *range(1000))
    execute(engine, client, "SADD", "s", "x")
    execute(engine, client, "HSET", "h", *range(2000))
    execute(engine, client, "SRANDMEMBER", "s")
    execute(engine, client, "HRANDFIELD", "h")
    idents = [id(engine.dbs[0].data[b"s"]), id(engine.dbs[0].data[b"h"])]
    assert all(ident in sampling.PICKERS for ident in idents)
    execute(engine, client, "DEL", "s")
    execute(engine, client, "SET", "h", "overwritten")
    sampling.sweep_pickers()
    assert not any(ident in sampling.PICKERS for ident in idents)


def test_pickers_are_swept_by_the_engine_tick() -> None:
    engine = Engine()
    client = connect(engine)
    execute(engine, client, "SADD", "s", *range(1000))
    execute(engine, client, "SPOP", "s")
    ident = id(engine.dbs[0].data[b"s"])
    assert ident in sampling.PICKERS
    execute(engine, client, "DEL", "s")
    engine.tick()                       # the server's periodic task: no command runs meanwhile
    assert ident not in sampling.PICKERS


# --- streams -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stream() -> tuple[Any, Any]:
    """An in-process engine holding a 200k-entry stream `x` whose group `g` has all of it
    pending (consumer alice), and a 1000-entry stream `small`."""
    engine = Engine()
    client = connect(engine)
    for i in range(1, N + 1):
        execute(engine, client, "XADD", "x", f"{i}-1", "f", "v")
    for i in range(1, 1001):
        execute(engine, client, "XADD", "small", f"{i}-1", "f", "v")
    execute(engine, client, "XGROUP", "CREATE", "x", "g", "0")
    execute(engine, client, "XREADGROUP", "GROUP", "g", "alice", "COUNT", N, "STREAMS", "x", ">")
    return engine, client


def test_pending_list_reads_on_a_big_stream(stream: tuple[Any, Any]) -> None:
    engine, client = stream
    assert execute(engine, client, "XPENDING", "x", "g") == [N, b"1-1", b"%d-1" % N, [[b"alice", b"%d" % N]]]
    rows = execute(engine, client, "XPENDING", "x", "g", "-", "+", 10)
    assert [r[0] for r in rows] == [b"%d-1" % i for i in range(1, 11)] and {r[1] for r in rows} == {b"alice"}
    rows = execute(engine, client, "XPENDING", "x", "g", "(100000-1", "+", 10, "alice")
    assert [r[0] for r in rows] == [b"%d-1" % i for i in range(100001, 100011)]
    assert [r[0] for r in execute(engine, client, "XPENDING", "x", "g", "IDLE", 0, "-", "+", 10)] == \
        [b"%d-1" % i for i in range(1, 11)]
    for after, first in (("0", 1), ("150000-0", 150000)):
        reply = execute(engine, client, "XREADGROUP", "GROUP", "g", "alice", "COUNT", 10, "STREAMS", "x", after)
        assert reply == [[b"x", [[b"%d-1" % i, [b"f", b"v"]] for i in range(first, first + 10)]]]
    cursor, claimed, deleted = execute(engine, client, "XAUTOCLAIM", "x", "g", "bob", 0, "0", "COUNT", 10)
    assert (cursor, deleted) == (b"11-1", []) and [e[0] for e in claimed] == [b"%d-1" % i for i in range(1, 11)]
    assert execute(engine, client, "XAUTOCLAIM", "x", "g", "alice", 0, "120000", "COUNT", 10, "JUSTID") == \
        [b"120010-1", [b"%d-1" % i for i in range(120000, 120010)], []]
    assert execute(engine, client, "XACK", "x", "g", "77777-1") == 1
    assert execute(engine, client, "XACK", "x", "g", "77777-1") == 0
    assert execute(engine, client, "XPENDING", "x", "g")[:3] == [N - 1, b"1-1", b"%d-1" % N]
    assert execute(engine, client, "XRANGE", "x", "-", "+", "COUNT", 10) == \
        [[b"%d-1" % i, [b"f", b"v"]] for i in range(1, 11)]


def test_xdel_many_ids(stream: tuple[Any, Any]) -> None:
    engine, client = stream
    length = execute(engine, client, "XLEN", "x")
    count = 2000
    step = length // count
    for round_ in range(3):             # three batches, each on other ids spread over the stream
        present = [f"{i}-1" for i in range(2 + round_, length, step)][:count]
        absent = [f"{i}-2" for i in range(2 + round_, length, step)][:count]
        assert execute(engine, client, "XDEL", "x", *absent) == 0
        assert execute(engine, client, "XDEL", "x", *present) == count
    assert execute(engine, client, "XLEN", "x") == length - 3 * count
    gone = {i for r in range(3) for i in range(2 + r, length, step)}
    assert execute(engine, client, "XRANGE", "x", "1-1", f"{3 * step}-1") == \
        [[b"%d-1" % i, [b"f", b"v"]] for i in range(1, 3 * step + 1) if i not in gone]


def test_exact_trimming_of_a_big_stream(stream: tuple[Any, Any]) -> None:
    engine, client = stream
    length = execute(engine, client, "XLEN", "x")
    front = [e[0] for e in execute(engine, client, "XRANGE", "x", "-", "+", "COUNT", 241)]
    for _ in range(200):                # one entry in, one entry out: the length holds
        execute(engine, client, "XADD", "x", "MAXLEN", "=", length, "*", "f", "v")
    assert execute(engine, client, "XLEN", "x") == length
    assert execute(engine, client, "XRANGE", "x", "-", "+", "COUNT", 1)[0][0] == front[200]
    for drop in range(1, 41):           # one entry out per call, from the front
        assert execute(engine, client, "XTRIM", "x", "MAXLEN", length - drop) == 1
    assert execute(engine, client, "XLEN", "x") == length - 40
    assert execute(engine, client, "XRANGE", "x", "-", "+", "COUNT", 1)[0][0] == front[240]
    assert execute(engine, client, "XTRIM", "x", "MAXLEN", "=", length - 40) == 0


# --- SCAN snapshots ----------------------------------------------------------------------------

def _iterate(engine: Any, client: Any, command: tuple[Any, ...], flood: Callable[[], None]) -> list[bytes]:
    """Run a whole SCAN-family iteration, calling `flood` between its steps."""
    found: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, batch = execute(engine, client, *command, cursor, "COUNT", 10)
        found += batch
        if cursor == b"0":
            return found
        flood()


def test_scan_survives_unrelated_iterations() -> None:
    engine = Engine()
    client = connect(engine)
    other = connect(engine)
    keys = [f"k{i}" for i in range(2000)]
    execute(engine, client, "MSET", *[x for k in keys for x in (k, "v")])
    execute(engine, client, "SADD", "s", *range(1000), "x")
    execute(engine, client, "HSET", "h", *[x for i in range(1000) for x in (f"f{i}", "v")])

    def flood() -> None:
        for _ in range(100):
            execute(engine, other, "SCAN", 0)

    got = _iterate(engine, client, ("SCAN",), flood)
    assert sorted(got) == sorted(k.encode() for k in [*keys, "s", "h"])
    got = _iterate(engine, client, ("SSCAN", "s"), flood)
    assert sorted(got) == sorted(str(i).encode() for i in [*range(1000), "x"])
    got = _iterate(engine, client, ("HSCAN", "h"), flood)
    assert sorted(got[0::2]) == sorted(f"f{i}".encode() for i in range(1000))
    # the abandoned iterations are capped, by count and by the members they pin
    in_flight, held = scanning.snapshots_in_flight()
    assert in_flight <= scanning.MAX_SNAPSHOTS and held <= scanning.MAX_SNAPSHOT_ELEMENTS
    assert in_flight > 500


def test_scan_snapshots_are_capped_by_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanning, "MAX_SNAPSHOT_ELEMENTS", 5000)
    engine = Engine()
    client = connect(engine)
    execute(engine, client, "MSET", *[x for i in range(1000) for x in (f"k{i}", "v")])
    for _ in range(20):
        execute(engine, client, "SCAN", 0)
    assert scanning.snapshots_in_flight()[1] <= 5000
    # the continued iteration outlives fresh ones beyond the cap
    cursor, _ = execute(engine, client, "SCAN", 0)
    cursor, _ = execute(engine, client, "SCAN", cursor)
    found = 20
    for _ in range(20):
        execute(engine, client, "SCAN", 0)
    while cursor != b"0":
        cursor, batch = execute(engine, client, "SCAN", cursor)
        found += len(batch)
    assert found == 1000


# --- the stream structures against redis-server ------------------------------------------------

def _pipelined(pair: Pair, commands: list[tuple[Any, ...]], mask: Callable[[Any], Any] | None = None) -> None:
    for command in commands:
        pair.send(*command)
    for command in commands:
        real, mem = pair.real.read(), pair.mem.read()
        if mask is not None:
            real, mem = mask(real), mask(mem)
        assert mem == real, f"{command}: redis-server answered {real!r}, in-memory answered {mem!r}"


def _no_idle(reply: Any) -> Any:
    """XPENDING extended rows: [id, consumer, idle, count] without the idle time."""
    kind, rows = reply
    if kind != "*" or not rows or rows[0][0] != "*":
        return reply
    return kind, [("*", row[1][:2] + row[1][3:]) for row in rows]


def test_stream_structures_match_redis(pair: Pair) -> None:
    _pipelined(pair, [("XADD", "x", f"{i}-{i % 3}", "f", str(i)) for i in range(1, 4001)])
    pair.both("XGROUP", "CREATE", "x", "g", "0")
    pair.both("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1500", "STREAMS", "x", ">")
    pair.both("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1500", "STREAMS", "x", ">")
    # batched deletions (many ids, repeated and missing ones), then single ones
    pair.both("XDEL", "x", *[f"{i}-{i % 3}" for i in range(5, 4000, 7)], "5-2", "9-9", "10-1")
    pair.both("XDEL", "x", "1-1", "2-2", "2-2")
    pair.both("XDEL", "x", *[f"{i}-{i % 3}" for i in range(3, 30)])
    # acknowledge and claim so that the sorted pending lists change in the middle and at the ends
    pair.both("XACK", "x", "g", *[f"{i}-{i % 3}" for i in range(1, 3001, 3)])
    pair.both("XCLAIM", "x", "g", "carol", "0", *[f"{i}-{i % 3}" for i in range(2, 3000, 5)], "JUSTID")
    pair.both("XCLAIM", "x", "g", "dave", "0", "3500-2", "3600-0", "FORCE", "JUSTID")
    checks: list[tuple[Any, ...]] = [("XPENDING", "x", "g")]
    for start, end, count in (("-", "+", 10), ("-", "+", 3000), ("1000", "2000", 50), ("(1500-0", "+", 7),
                              ("2999", "+", 5), ("3000-0", "+", 10), ("-", "(100", 100)):
        checks.append(("XPENDING", "x", "g", start, end, count))
        for consumer in ("alice", "bob", "carol", "dave", "nobody"):
            checks.append(("XPENDING", "x", "g", start, end, count, consumer))
    for consumer in ("alice", "bob", "carol"):
        for after in ("0", "1200-0", "2999-2", "4000"):
            checks.append(("XREADGROUP", "GROUP", "g", consumer, "COUNT", "25", "STREAMS", "x", after))
    checks.append(("XREADGROUP", "GROUP", "g", "carol", "STREAMS", "x", "0"))
    _pipelined(pair, checks, _no_idle)
    cursor = "0-0"
    while True:           # a whole XAUTOCLAIM walk (deleted entries come out as deleted ids)
        reply = pair.both("XAUTOCLAIM", "x", "g", "erin", "0", cursor, "COUNT", "40", "JUSTID")
        cursor = reply[1][0][1].decode()
        if cursor == "0-0":
            break
    pair.both("XPENDING", "x", "g")
    pair.both("XPENDING", "x", "g", "-", "+", "20", "erin", mask=_no_idle)
    # exact trimming one entry at a time (past the point where the dropped ids are compacted),
    # approximate trimming, MINID, and reads in between
    steps: list[tuple[Any, ...]] = []
    for i in range(1300):
        steps.append(("XADD", "x", "MAXLEN", "=", str(3000 - i), f"{5000 + i}-0", "f", "v"))
        if i % 97 == 0:
            steps += [("XRANGE", "x", "-", "+", "COUNT", "3"), ("XREVRANGE", "x", "+", "-", "COUNT", "2"),
                      ("XLEN", "x"), ("XINFO", "STREAM", "x")]
    steps += [("XTRIM", "x", "MINID", "5600"), ("XRANGE", "x", "-", "5605", "COUNT", "10"),
              ("XTRIM", "x", "MAXLEN", "~", "900"), ("XLEN", "x"), ("XINFO", "STREAM", "x"),
              ("XDEL", "x", *[f"{i}-0" for i in range(5600, 6000, 2)]), ("XLEN", "x"),
              ("XRANGE", "x", "(5700-0", "+", "COUNT", "5"), ("XINFO", "STREAM", "x"),
              ("XTRIM", "x", "MAXLEN", "0"), ("XLEN", "x"), ("XINFO", "STREAM", "x"),
              ("XADD", "x", "9000-0", "f", "v"), ("XRANGE", "x", "-", "+")]
    _pipelined(pair, steps)
