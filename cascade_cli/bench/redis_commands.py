"""The `cascade bench redis` tests: which command each sends, encoded once. Pure.

Test names follow redis-benchmark's (`set`, `get`, `lrange_100`, ...). Every key of a run lives
under `cascade-bench:<run id>:` (`run_prefix()`), so a benchmark never touches other data, nor
the keys of another run going on at the same time; `--keyspace N` draws keys at random
from N per request, as redis-benchmark's `-r N` does (12-digit numbers), from a ring of
pre-encoded commands (RING commands per test), so nothing is encoded in the hot loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PREFIX = "cascade-bench:"
RAND = "__rand_int__"
RING = 8192
RING_BYTES = 64 * 1024 * 1024   # a ring of big values holds fewer commands
LIST_FILL = 600
LIST_KEY = f"{PREFIX}lrange-list"


@dataclass(frozen=True)
class TestSpec:
    """`args` may contain RAND (replaced per command with a random 12-digit key number) and
    DATA (the value of --data-size bytes). `needs_list` tests read LIST_KEY, which
    `list_fill_commands()` fills with 600 elements before the run."""

    args: tuple[str, ...]
    needs_list: bool = False


DATA = "__data__"
TESTS: dict[str, TestSpec] = {
    "ping": TestSpec(("PING",)),
    "set": TestSpec(("SET", f"{PREFIX}key:{RAND}", DATA)),
    "get": TestSpec(("GET", f"{PREFIX}key:{RAND}")),
    "incr": TestSpec(("INCR", f"{PREFIX}counter:{RAND}")),
    "lpush": TestSpec(("LPUSH", f"{PREFIX}mylist", DATA)),
    "rpush": TestSpec(("RPUSH", f"{PREFIX}mylist", DATA)),
    "lpop": TestSpec(("LPOP", f"{PREFIX}mylist")),
    "rpop": TestSpec(("RPOP", f"{PREFIX}mylist")),
    "sadd": TestSpec(("SADD", f"{PREFIX}myset", f"element:{RAND}")),
    "spop": TestSpec(("SPOP", f"{PREFIX}myset")),
    "hset": TestSpec(("HSET", f"{PREFIX}myhash", f"element:{RAND}", DATA)),
    "zadd": TestSpec(("ZADD", f"{PREFIX}myzset", RAND, f"element:{RAND}")),
    "zpopmin": TestSpec(("ZPOPMIN", f"{PREFIX}myzset")),
    "lrange_100": TestSpec(("LRANGE", LIST_KEY, "0", "99"), needs_list=True),
    "lrange_300": TestSpec(("LRANGE", LIST_KEY, "0", "299"), needs_list=True),
    "lrange_500": TestSpec(("LRANGE", LIST_KEY, "0", "499"), needs_list=True),
    "lrange_600": TestSpec(("LRANGE", LIST_KEY, "0", "599"), needs_list=True),
    "mset": TestSpec(("MSET", *[part for _ in range(10) for part in (f"{PREFIX}key:{RAND}", DATA)])),
    "publish": TestSpec(("PUBLISH", f"{PREFIX}channel", DATA)),
}
ALIASES = {"lrange": "lrange_100"}
DEFAULT_TESTS = ("set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd", "lrange_100", "mset",
                 "ping", "publish")


def resolve_tests(text: str) -> list[str]:
    """Test names from `set,get,...` (case-insensitive, `lrange` = `lrange_100`). Raises
    ValueError naming the unknown ones."""
    names = [ALIASES.get(n, n) for n in (part.strip().lower() for part in text.split(",")) if n]
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        raise ValueError(", ".join(unknown))
    if not names:
        raise ValueError("(none given)")
    return list(dict.fromkeys(names))


def encode(args: list[bytes]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def run_prefix(run_id: str) -> str:
    """The key prefix of one run: `cascade-bench:<run id>:`."""
    return f"{PREFIX}{run_id}:"


def command_ring(test: str, data_size: int, keyspace: int, seed: int, prefix: str = PREFIX) -> list[bytes]:
    """The encoded commands test `test` cycles through: one when there is nothing random
    (keyspace 0: the key is literally `...:__rand_int__`, as in redis-benchmark without -r),
    else RING commands with keys drawn uniformly from `keyspace`."""
    spec = TESTS[test]
    data = b"x" * data_size
    rng = random.Random(seed)
    randomized = keyspace > 0 and any(RAND in arg for arg in spec.args)
    one_size = sum(len(arg) + 16 for arg in spec.args) + sum(data_size for arg in spec.args if arg == DATA)
    count = max(16, min(RING, RING_BYTES // one_size)) if randomized else 1
    ring = []
    for _ in range(count):
        args = []
        for template in spec.args:
            arg = template.replace(PREFIX, prefix, 1)
            if arg == DATA:
                args.append(data)
            elif randomized and RAND in arg:
                args.append(arg.replace(RAND, f"{rng.randrange(keyspace):012d}").encode())
            elif arg == RAND:  # a bare number (ZADD's score) without --keyspace: 0, as redis-benchmark
                args.append(b"0")
            else:
                args.append(arg.encode())
        ring.append(encode(args))
    return ring


def list_fill_args(data_size: int, prefix: str = PREFIX) -> list[list[bytes]]:
    """DEL and RPUSH of LIST_FILL values: what the LRANGE tests read, sent once before the run."""
    key = LIST_KEY.replace(PREFIX, prefix, 1).encode()
    return [[b"DEL", key], [b"RPUSH", key, *([b"x" * data_size] * LIST_FILL)]]
