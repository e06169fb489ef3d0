"""Memory accounting and key eviction of the in-memory server (maxmemory, INFO memory, MEMORY).

`used_memory` is an estimate of what real Redis 7.0 would report for the same dataset, not the
Python process size (tracemalloc is too slow, RSS never shrinks): the memory of a fresh
redis-server, plus a per-connection cost, plus for each key what Redis allocates for it (the
jemalloc size classes of its key string, object, dict entry and encoded value; see
`value_usage`, which is also what MEMORY USAGE answers), plus the hash table buckets.

Per-key sizes are not maintained on every write: each database's average key size is
recomputed lazily (exactly for small databases, from a random sample of keys otherwise) when
the data changed and the last estimate is old enough, and multiplied by the live key count, so
that a burst of writes is accounted for at once and a check costs O(number of databases).

`install(engine)` registers the engine hooks the core calls: "used_memory" (bytes) and "evict"
(frees memory per maxmemory-policy before a command that may grow the dataset; False when it
cannot get under maxmemory), plus "cron" (instantaneous metrics sampling, about every 100 ms)
and "memory" (the Tracker itself).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from cascade_cli.resp.protocol import parse_ll
from cascade_cli.resp.sampling import KeySampler
from cascade_cli.resp.store import RHash, RList, RSet

if TYPE_CHECKING:
    from cascade_cli.resp.core import Engine
    from cascade_cli.resp.store import Database

STARTUP = 876_088               # used_memory_startup of redis-server 7.0.15 (x86-64, jemalloc)
CLIENT = 20_512                 # a normal client: its struct with the 16 KB reply buffer, query buffer
DICT = 56                       # sizeof(dict)
DICT_ENTRY = 24                 # sizeof(dictEntry); jemalloc rounds it to 32
EXACT_KEYS = 256                # databases up to this size are measured key by key
SAMPLE_KEYS = 64                # otherwise, this many random keys
POOL_SIZE = 16                  # eviction pool (best candidates kept between evictions)
INSTANTANEOUS_SAMPLES = 16
SLACK = 16                      # per key: what real Redis shows beyond its MEMORY USAGE (rehashing...)


def jemalloc(size: int) -> int:
    """The jemalloc size class serving an allocation of `size` bytes."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) & ~15
    top = size.bit_length() - 1
    if size == 1 << top:
        return size
    step = 1 << (top - 2)
    return (size + step - 1) & ~(step - 1)


def _sds_header(length: int) -> int:
    return 1 if length < 32 else 3 if length < 256 else 5 if length < 65536 else 9 if length < 2**32 else 17


def sds_size(length: int) -> int:
    """Allocation of an sds string of `length` bytes (keys, hash fields, set members)."""
    return jemalloc(_sds_header(length) + length + 1)


def _raw_sds(length: int) -> int:
    header = 3 if length < 256 else 5 if length < 65536 else 9 if length < 2**32 else 17
    return jemalloc(header + length + 1)


def string_usage(value: bytes | bytearray) -> int:
    """A string object: int encoding (the object only), embstr (object and string in one
    allocation, up to 44 bytes) or raw (object + sds)."""
    size = len(value)
    if type(value) is bytes:
        if size <= 20 and parse_ll(value) is not None:
            return 16
        if size <= 44:
            return jemalloc(16 + 3 + size + 1)
    return 16 + _raw_sds(size)


def _lp_entry(item: bytes | bytearray) -> int:
    """Bytes of one listpack entry (integers are stored as integers)."""
    size = len(item)
    if size <= 20:
        number = parse_ll(item)
        if number is not None:
            if 0 <= number <= 127:
                return 2
            if -4096 <= number <= 4095:
                return 3
            if -2**15 <= number < 2**15:
                return 4
            if -2**23 <= number < 2**23:
                return 5
            if -2**31 <= number < 2**31:
                return 6
            return 10
    encoded = size + (1 if size < 64 else 2 if size < 4096 else 5)
    backlen = 1 if encoded <= 127 else 2 if encoded < 16383 else 3 if encoded < 2**21 - 1 else 4
    return encoded + backlen


def _slots(count: int) -> int:
    """Buckets of a dict holding `count` entries (power of two, at least 4)."""
    if count <= 4:
        return 4
    return 1 << (count - 1).bit_length()


def _spread(items: Any, count: int, samples: int) -> list[Any]:
    """Up to `samples` elements spread over a sequence-like container (all when samples is 0)."""
    if samples <= 0 or count <= samples:
        return list(items)
    if type(items) is RList:
        step = count / samples
        return [items[int(i * step)] for i in range(samples)]
    return list(islice(iter(items), samples))


def _score_text(score: float) -> bytes:
    if score == int(score) and abs(score) < 2**63:
        return b"%d" % int(score)
    return b"%.17g" % score


def value_usage(value: Any, samples: int = 5, fast: bool = False) -> int:
    """What MEMORY USAGE counts for a value (without its key): Redis's objectComputeSize, with
    containers' elements sampled (`samples` of them, all when 0) and extrapolated. `fast` also
    decides a set's intset encoding from a sample (the running estimate's shortcut)."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return string_usage(value)
    count = len(value)
    if kind is RList:
        sample = _spread(value, count, samples)
        per = sum(_lp_entry(item) for item in sample) / max(len(sample), 1)
        total = per * count
        nodes = max(1, -(-int(total) // 8192))
        return 16 + 48 + nodes * (32 + jemalloc(int(total / nodes) + 7))
    if kind is RHash:
        pairs = _spread(value.items(), count, samples)
        if not getattr(value, "big", False):
            per = sum(_lp_entry(f) + _lp_entry(v) for f, v in pairs) / max(len(pairs), 1)
            return 16 + jemalloc(int(per * count) + 7)
        per = sum(sds_size(len(f)) + sds_size(len(v)) + DICT_ENTRY for f, v in pairs) / max(len(pairs), 1)
        return int(16 + DICT + 8 * _slots(count) + per * count)
    if kind is RSet:
        if not getattr(value, "big", False) and count <= 512:
            looked_at = islice(value, 16) if fast else value
            numbers = [parse_ll(m) if len(m) <= 20 else None for m in looked_at]
            if None not in numbers:
                low, high = min(numbers, default=0), max(numbers, default=0)  # type: ignore[type-var]
                width = 2 if -2**15 <= low and high < 2**15 else 4 if -2**31 <= low and high < 2**31 else 8
                return 16 + jemalloc(8 + width * count)
        members = _spread(value, count, samples)
        per = sum(sds_size(len(m)) + DICT_ENTRY for m in members) / max(len(members), 1)
        return int(16 + DICT + 8 * _slots(count) + per * count)
    type_name = getattr(value, "TYPE", None)
    if type_name == b"zset":
        scores = getattr(value, "scores", None)
        pairs = _spread(scores.items(), count, samples) if isinstance(scores, dict) else []
        if not getattr(value, "big", False):
            per = (sum(_lp_entry(m) + _lp_entry(_score_text(s)) for m, s in pairs) / len(pairs)) if pairs else 16
            return 16 + jemalloc(int(per * count) + 7)
        per = (sum(sds_size(len(m)) for m, _ in pairs) / len(pairs)) if pairs else 16
        return int(16 + 16 + 32 + DICT + 8 * _slots(count) + 640 + (per + DICT_ENTRY + 52) * count)
    if type_name == b"stream":
        nodes = max(1, -(-count // 100))
        return 16 + 48 + 160 + nodes * (4096 + 48) + count * 24 + 256 * len(getattr(value, "groups", ()) or ())
    return 64 + 32 * count


def key_usage(key: bytes, value: Any, samples: int = 5, fast: bool = False) -> int:
    """MEMORY USAGE: the value, the key string and the dict entry."""
    return value_usage(value, samples, fast) + sds_size(len(key)) + DICT_ENTRY


def human(size: float) -> str:
    """Redis's bytesToHuman: 894.83K, 1.00M, 0B."""
    if size < 1024:
        return f"{int(size)}B"
    for unit in "KMGTP":
        size /= 1024
        if size < 1024 or unit == "P":
            return f"{size:.2f}{unit}"
    return f"{size:.2f}P"


class Tracker:
    """The engine's memory accounting, eviction and instantaneous metrics."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.estimates: dict[int, tuple[float, float, int, int]] = {}  # db -> (avg, at, dirty, keys)
        self.peak = 0
        self.samplers: dict[tuple[int, bool], KeySampler] = {}
        self.pool: list[tuple[float, int, bytes]] = []   # (score, db, key), best victim last
        self.next_db = 0
        self.metrics: dict[str, deque[float]] = {name: deque(maxlen=INSTANTANEOUS_SAMPLES)
                                                 for name in ("ops", "net_in", "net_out")}
        self.last_sample: tuple[float, int, int, int] | None = None
        self.timer_started = False

    # --- estimate ----------------------------------------------------------------------------

    def _average(self, db: Database, keys: int) -> float:
        """Average bytes per key of `db` (key, value and dict entry)."""
        cached = self.estimates.get(db.index)
        dirty = self.engine.dirty
        now = time.monotonic()
        if cached is not None:
            avg, at, seen_dirty, seen_keys = cached
            if seen_dirty == dirty or now - at < (0.01 if keys <= EXACT_KEYS else 0.1):
                return avg
        data = db.data
        if keys <= EXACT_KEYS:
            total = 0
            for key, value in data.items():
                total += key_usage(key, value, 5, True)
            avg = total / keys
        else:
            sample = self._sampler(db.index, False).sample(data, SAMPLE_KEYS)
            if not sample:
                return cached[0] if cached else 64.0
            avg = sum(key_usage(key, data[key], 5, True) for key in sample) / len(sample)
        avg += 8 + SLACK                         # the dict entry is a 32-byte allocation
        self.estimates[db.index] = (avg, now, dirty, keys)
        return avg

    def dataset(self) -> tuple[int, int]:
        """(bytes of keys and values, bytes of the keyspace hash tables)."""
        data = tables = 0
        for db in self.engine.dbs:
            keys = len(db.data)
            if not keys:
                continue
            data += int(keys * self._average(db, keys))
            tables += 8 * _slots(keys)
            if db.expires:
                expires = len(db.expires)
                tables += expires * (DICT_ENTRY + 8) + 8 * _slots(expires)
        return data, tables

    def overhead(self) -> int:
        """What is not the dataset: the server at startup and the clients."""
        return STARTUP + CLIENT * len(self.engine.clients)

    def used_memory(self) -> int:
        data, tables = self.dataset()
        used = self.overhead() + data + tables
        if used > self.peak:
            self.peak = used
        return used

    # --- eviction ----------------------------------------------------------------------------

    def _sampler(self, index: int, volatile: bool) -> KeySampler:
        sampler = self.samplers.get((index, volatile))
        if sampler is None:
            sampler = self.samplers[(index, volatile)] = KeySampler()
        return sampler

    def evict(self) -> bool:
        """Evict keys per maxmemory-policy until the estimate is under maxmemory. False when
        that is impossible (noeviction, or nothing left to evict)."""
        engine = self.engine
        params = engine.params
        limit = params.maxmemory
        if not limit:
            return True
        used = self.used_memory()
        if used <= limit:
            return True
        policy = params.maxmemory_policy
        if policy == "noeviction":
            return False
        deadline = time.monotonic() + 0.05
        while used > limit:
            victim = self._victim(policy, params.maxmemory_samples)
            if victim is None:
                return False
            db, key = victim
            if db.delete(key):
                engine.stats.evicted_keys += 1
                engine.propagate(db.index, [b"DEL", key])
            used = self.used_memory()
            if time.monotonic() > deadline:
                return True           # Redis too lets the command run while eviction goes on
        return True

    def _victim(self, policy: str, samples: int) -> tuple[Database, bytes] | None:
        dbs = self.engine.dbs
        volatile = policy.startswith("volatile")
        if policy.endswith("random"):
            for step in range(len(dbs)):
                db = dbs[(self.next_db + step) % len(dbs)]
                table = db.expires if volatile else db.data
                if table:
                    self.next_db = (db.index + 1) % len(dbs)
                    keys = self._sampler(db.index, volatile).sample(table, 1)
                    if keys:
                        return db, keys[0]
            return None
        by_ttl = policy == "volatile-ttl"
        now = time.monotonic()
        pool = self.pool
        for _ in range(8):
            for db in dbs:
                table = db.expires if volatile else db.data
                if not table:
                    continue
                access = db.access
                expires = db.expires
                for key in self._sampler(db.index, volatile).sample(table, samples):
                    score = -float(expires[key]) if by_ttl else now - access.get(key, 0.0)
                    if any(entry[2] == key and entry[1] == db.index for entry in pool):
                        continue
                    pool.append((score, db.index, key))
            pool.sort(key=lambda entry: entry[0])
            del pool[:-POOL_SIZE]
            while pool:
                score, index, key = pool.pop()
                db = dbs[index]
                if key not in db.data or (volatile and key not in db.expires):
                    continue
                if not by_ttl and now - db.access.get(key, 0.0) < score - 1e-6:
                    continue                # used since it was sampled: no longer a candidate
                return db, key
            if not any((db.expires if volatile else db.data) for db in dbs):
                return None
        return None

    # --- instantaneous metrics -----------------------------------------------------------------

    def cron(self) -> None:
        """Sample the counters behind instantaneous_ops_per_sec and the kbps figures (call about
        every 100 ms; closer calls are ignored)."""
        stats = self.engine.stats
        now = time.monotonic()
        current = (now, stats.total_commands_processed, stats.total_net_input_bytes,
                   stats.total_net_output_bytes)
        last = self.last_sample
        if last is not None:
            elapsed = now - last[0]
            if elapsed < 0.09:
                return
            self.metrics["ops"].append((current[1] - last[1]) / elapsed)
            self.metrics["net_in"].append((current[2] - last[2]) / elapsed)
            self.metrics["net_out"].append((current[3] - last[3]) / elapsed)
        self.last_sample = current
        used = self.used_memory()
        if used > self.peak:
            self.peak = used

    def instantaneous(self, name: str) -> float:
        samples = self.metrics[name]
        return sum(samples) / len(samples) if samples else 0.0

    def start_timer(self) -> None:
        """Sample every 100 ms from the event loop (until the engine's tick calls cron)."""
        if self.timer_started:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.timer_started = True

        def beat() -> None:
            self.cron()
            loop.call_later(0.1, beat)

        self.cron()
        loop.call_later(0.1, beat)


def install(engine: Engine) -> Tracker:
    """Register the memory hooks on `engine` (once); returns its Tracker."""
    tracker = engine.hooks.get("memory")
    if tracker is None:
        tracker = Tracker(engine)
        engine.hooks["memory"] = tracker
        engine.hooks["used_memory"] = tracker.used_memory
        engine.hooks["evict"] = tracker.evict
        engine.hooks["cron"] = tracker.cron
    return tracker  # type: ignore[no-any-return]
