#!/usr/bin/env python3
"""Big values: commands whose cost must not grow with the container they read, against a peer.

Builds, in process (an Engine and a Client, no sockets), a set, a hash and a sorted set of
`--size` members and a `--size`-entry stream whose group has all of it pending, then times each
command (the best of `--rounds` rounds) and the peer operation it is compared with, measured in
the same run:

  random picks (SRANDMEMBER, SPOP, HRANDFIELD, ZRANDMEMBER)  vs  copying the container into a list
  pending-list reads (XPENDING, XREADGROUP history, ...)     vs  copying a list of `--size` ids
  XDEL of 2000 spread ids, per id beyond its lookup           vs  deleting one id from the middle
                                                                  of a `--size`-long list
  exact trimming (XADD MAXLEN =, XTRIM MAXLEN) at `--size`    vs  the same at 1000 entries
  glob of a pathological pattern (a*a*...a*b on 5000 a's)     vs  `*` on the same text

and prints per row the command's time, the peer's time, the ratio command/peer and a verdict
against the bound the row must stay under (the slow versions copied the container per call).

    python benchmarks/resp_bigvalues.py                  # --size 200000
    python benchmarks/resp_bigvalues.py --size 50000 --rounds 3 --json
    python benchmarks/resp_bigvalues.py --check          # exit 3 when a row misses its bound
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cascade_cli.resp.core import Client, Engine
from cascade_cli.resp.glob import match

ROUNDS = 5


class Quiet(Client):
    """An in-process client that keeps out-of-band sends (pushes, served blocking replies)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.sent: list[Any] = []

    def send(self, reply: Any) -> None:
        self.sent.append(reply)


def connect(engine: Engine) -> Quiet:
    client = Quiet(engine)
    engine.connect(client)
    return client


def execute(engine: Engine, client: Client, *args: Any) -> Any:
    return engine.execute(client, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def best_time(action: Callable[[], Any], calls: int = 20) -> float:
    """Seconds per call of `action`: the best of ROUNDS rounds of `calls` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            action()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def per_call(engine: Engine, client: Client, *args: Any, calls: int = 20) -> float:
    """Seconds per call of a command, after one call that may build per-container state."""
    execute(engine, client, *args)
    return best_time(lambda: execute(engine, client, *args), calls)


def copy_time(container: Any) -> float:
    return best_time(lambda: list(container), calls=3)


def label(args: tuple[Any, ...]) -> str:
    return " ".join(str(a) for a in args)


def row(group: str, command: str, took: float, peer: str, peer_took: float, bound: float) -> dict[str, Any]:
    ratio = took / peer_took if peer_took > 0 else float("inf")
    return {"group": group, "command": command, "seconds": took, "peer": peer, "peer_seconds": peer_took,
            "ratio": ratio, "bound": bound, "ok": ratio < bound}


def random_picks(size: int) -> list[dict[str, Any]]:
    engine = Engine()
    client = connect(engine)
    for start in range(0, size, 10_000):
        members = [f"m{i}" for i in range(start, min(start + 10_000, size))]
        execute(engine, client, "SADD", "s", *members)
        execute(engine, client, "HSET", "h", *[x for m in members for x in (m, "v")])
        execute(engine, client, "ZADD", "z", *[x for i, m in enumerate(members, start) for x in (i, m)])
    commands: list[tuple[Any, ...]] = [
        ("SRANDMEMBER", "s"), ("SRANDMEMBER", "s", 1), ("SRANDMEMBER", "s", 10), ("SRANDMEMBER", "s", -10),
        ("SPOP", "s"), ("SPOP", "s", 1), ("SPOP", "s", 10),
        ("HRANDFIELD", "h"), ("HRANDFIELD", "h", 1), ("HRANDFIELD", "h", 10),
        ("HRANDFIELD", "h", -10, "WITHVALUES"),
        ("ZRANDMEMBER", "z"), ("ZRANDMEMBER", "z", 10), ("ZRANDMEMBER", "z", -10, "WITHSCORES"),
    ]
    rows = []
    for command in commands:
        value = engine.dbs[0].data[command[1].encode()]
        copying = copy_time(value)
        took = per_call(engine, client, *command)
        rows.append(row("random picks", label(command), took, f"list({command[1]})", copying, 0.1))
    return rows


def streams(size: int) -> list[dict[str, Any]]:
    engine = Engine()
    client = connect(engine)
    for i in range(1, size + 1):
        execute(engine, client, "XADD", "x", f"{i}-1", "f", "v")
    for i in range(1, 1001):
        execute(engine, client, "XADD", "small", f"{i}-1", "f", "v")
    execute(engine, client, "XGROUP", "CREATE", "x", "g", "0")
    execute(engine, client, "XREADGROUP", "GROUP", "g", "alice", "COUNT", size, "STREAMS", "x", ">")
    rows = []

    # pending-list reads against copying the id list once
    id_copy = copy_time([(i << 64) | 1 for i in range(size)])
    commands: list[tuple[Any, ...]] = [
        ("XPENDING", "x", "g"),
        ("XPENDING", "x", "g", "-", "+", 10),
        ("XPENDING", "x", "g", f"({size // 2}-1", "+", 10, "alice"),
        ("XPENDING", "x", "g", "IDLE", 0, "-", "+", 10),
        ("XREADGROUP", "GROUP", "g", "alice", "COUNT", 10, "STREAMS", "x", "0"),
        ("XREADGROUP", "GROUP", "g", "alice", "COUNT", 10, "STREAMS", "x", f"{size * 3 // 4}-0"),
        ("XAUTOCLAIM", "x", "g", "bob", 0, "0", "COUNT", 10),
        ("XAUTOCLAIM", "x", "g", "alice", 0, str(size * 3 // 5), "COUNT", 10, "JUSTID"),
        ("XACK", "x", "g", f"{size * 7 // 18}-1"),
        ("XRANGE", "x", "-", "+", "COUNT", 10),
    ]
    for command in commands:
        took = per_call(engine, client, *command)
        rows.append(row("pending reads", label(command), took, f"list({size} ids)", id_copy, 0.2))

    # XDEL of many ids: per id, beyond parsing and looking the ids up, against deleting one id
    # from the middle of a list as long as the stream (what editing the id list id by id paid)
    length = execute(engine, client, "XLEN", "x")
    ids = list(range(length))
    middle = length // 2

    def shift() -> None:
        del ids[middle]
        ids.insert(middle, middle)

    one_by_one = best_time(shift, calls=200) / 2
    count = 2000
    step = length // count
    best = float("inf")
    for round_ in range(3):
        present = [f"{i}-1" for i in range(2 + round_, length, step)][:count]
        absent = [f"{i}-2" for i in range(2 + round_, length, step)][:count]
        start = time.perf_counter()
        execute(engine, client, "XDEL", "x", *absent)
        lookups = time.perf_counter() - start
        start = time.perf_counter()
        execute(engine, client, "XDEL", "x", *present)
        best = min(best, time.perf_counter() - start - lookups)
    rows.append(row("stream edits", f"XDEL x <{count} ids> (per id)", max(best, 0.0) / count,
                    f"del ids[{middle}] in {length}", one_by_one, 1 / 3))

    # exact trimming, one entry per call: at ~size entries against at 1000 entries
    for key in ("small", "x"):
        execute(engine, client, "XADD", key, "MAXLEN", "=", 1000 if key == "small" else size, "*", "f", "v")
    small = per_call(engine, client, "XADD", "small", "MAXLEN", "=", 1000, "*", "f", "v", calls=200)
    large_length = execute(engine, client, "XLEN", "x")
    large = per_call(engine, client, "XADD", "x", "MAXLEN", "=", large_length, "*", "f", "v", calls=200)
    rows.append(row("stream edits", f"XADD x MAXLEN = {large_length} * f v", large,
                    "same at 1000 entries", small, 2.5))

    def xtrim(key: str) -> float:
        lengths = iter(range(execute(engine, client, "XLEN", key) - 1, 0, -1))
        return best_time(lambda: execute(engine, client, "XTRIM", key, "MAXLEN", next(lengths)), calls=40)

    small, large = xtrim("small"), xtrim("x")
    rows.append(row("stream edits", f"XTRIM x MAXLEN <len-1> at ~{large_length}", large,
                    "same at 1000 entries", small, 2.5))
    return rows


def glob() -> list[dict[str, Any]]:
    pattern = b"a*" * 300 + b"b"
    text = b"a" * 5000
    took = best_time(lambda: match(pattern, text), calls=1)
    plain = best_time(lambda: match(b"*", text), calls=1000)
    # no ratio bound: the peer is near-constant; the bound is the old test's 5 s (quadratic at
    # worst, never exponential), so the verdict is on the absolute time
    result = row("glob", "match((a*)x300 b, a x5000)", took, "match(*, same text)", plain, float("inf"))
    result["bound_seconds"] = 5.0
    result["ok"] = took < 5.0
    return [result]


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def main() -> int:
    global ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="members / entries per big value")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per timing; the best is kept")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 3 when a row misses its bound")
    args = parser.parse_args()
    ROUNDS = max(1, args.rounds)
    size = max(4000, args.size)

    rows = random_picks(size) + streams(size) + glob()
    if args.json:
        print(json.dumps({"size": size, "rounds": ROUNDS,
                          "rows": [{k: (None if v == float("inf") else v) for k, v in r.items()}
                                   for r in rows]}, indent=2))
    else:
        print(f"size {size}, best of {ROUNDS} round(s); ratio = command / peer (same run)")
        width = max(len(r["command"]) for r in rows)
        peer_width = max(len(r["peer"]) for r in rows)
        print(f"{'command':{width}} {'time':>10}  {'peer':{peer_width}} {'peer time':>10} {'ratio':>9}  verdict")
        group = None
        for r in rows:
            if r["group"] != group:
                group = r["group"]
                print(f"-- {group}")
            if "bound_seconds" in r:
                verdict = f"{'ok' if r['ok'] else 'SLOW'} (< {r['bound_seconds']:g} s)"
            else:
                verdict = f"{'ok' if r['ok'] else 'SLOW'} (< {r['bound']:.2f})"
            print(f"{r['command']:{width}} {fmt(r['seconds']):>10}  {r['peer']:{peer_width}} "
                  f"{fmt(r['peer_seconds']):>10} {r['ratio']:9.4f}  {verdict}")
        failed = [r for r in rows if not r["ok"]]
        print(f"{len(rows) - len(failed)}/{len(rows)} rows within their bound")
    if args.check and not all(r["ok"] for r in rows):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
