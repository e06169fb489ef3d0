"""The keyspace: databases of typed values with expiry. Pure: no sockets, no event loop.

Value types (what `Database.data` holds):
    string  bytes (embstr/int encodings) or bytearray (after APPEND/SETRANGE/SETBIT: raw)
    list    RList (a deque)
    hash    RHash (a dict bytes -> bytes)
    set     RSet (a set of bytes)
    zset    ZSet (resp/zset.py)
    stream  Stream (resp/stream.py)

Every change goes through the Database so that WATCH, blocked clients, the dirty counter and
the append-only file see it: `set`/`delete` for whole values, `modified(key)` after changing a
container in place. Commands must call `modified` after every in-place change, and
`drop_if_empty` after removing elements.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from cascade_cli.resp.sampling import KeySampler

if TYPE_CHECKING:
    from cascade_cli.resp.core import Engine


class RList(deque):  # type: ignore[type-arg]
    """A Redis list."""

    __slots__ = ()


class RHash(dict):  # type: ignore[type-arg]
    """A Redis hash; `big` once it outgrew the listpack encoding (never shrinks back)."""

    __slots__ = ("big",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.big = False


class RSet(set):  # type: ignore[type-arg]
    """A Redis set; `big` once it outgrew the intset encoding (never shrinks back)."""

    __slots__ = ("big",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.big = False


def now_ms() -> int:
    return int(time.time() * 1000)


TYPE_NAMES: dict[type, bytes] = {bytes: b"string", bytearray: b"string", RList: b"list",
                                 RHash: b"hash", RSet: b"set"}


def type_name(value: object) -> bytes:
    """Redis's TYPE of a stored value."""
    return TYPE_NAMES.get(type(value)) or getattr(value, "TYPE", b"none")


class Database:
    """One numbered database: `data` (key -> value) and `expires` (key -> unix ms)."""

    __slots__ = ("index", "data", "expires", "engine", "access", "avg_ttl", "key_sampler", "expire_sampler")

    def __init__(self, index: int, engine: Engine) -> None:
        self.index = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        # last access (monotonic seconds of the engine clock, which the server advances per
        # batch of commands; Redis's LRU clock ticks once a second), for eviction and IDLETIME
        self.access: dict[bytes, float] = {}
        self.engine = engine
        self.avg_ttl = 0
        self.key_sampler = KeySampler()              # RANDOMKEY
        self.expire_sampler = KeySampler()           # the active expiry cycle

    # --- reading -----------------------------------------------------------------------------

    def lookup(self, key: bytes) -> Any:
        """The live value of `key` or None; deletes it first when it has expired."""
        value = self.data.get(key)
        if value is not None:
            if self.expires and key in self.expires and self.expires[key] <= now_ms():
                self.expire_now(key)
                return None
            self.access[key] = self.engine.clock
        return value

    def read(self, key: bytes) -> Any:
        """Like lookup, and counts a keyspace hit or miss (INFO stats): for read commands."""
        value = self.lookup(key)
        stats = self.engine.stats
        if value is None:
            stats.keyspace_misses += 1
        else:
            stats.keyspace_hits += 1
        return value

    def __contains__(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def __len__(self) -> int:
        return len(self.data)

    def ttl_ms(self, key: bytes) -> int | None:
        """Absolute expiry (unix ms) of a live key, or None when it has none."""
        return self.expires.get(key)

    # --- writing -----------------------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store `value` at `key`, replacing any value; clears the TTL unless keep_ttl."""
        self.data[key] = value
        self.access[key] = self.engine.clock
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)
        self.modified(key)

    def delete(self, key: bytes) -> bool:
        """Delete a live key; True when it existed."""
        if self.lookup(key) is None:
            return False
        self._remove(key)
        self.modified(key)
        return True

    def drop_if_empty(self, key: bytes) -> None:
        """Delete `key` when its container became empty (call after removing elements)."""
        value = self.data.get(key)
        if value is not None and not len(value):
            self._remove(key)
            self.modified(key)

    def modified(self, key: bytes) -> None:
        """Signal a change at `key`: WATCHers, blocked clients, dirty counter."""
        engine = self.engine
        engine.dirty += 1
        if engine.watched:
            engine.touch_watched(self.index, key)
        if engine.blocked_keys and (self.index, key) in engine.blocked_keys:
            engine.ready_keys[(self.index, key)] = None
        if engine.tracking_clients:
            engine.invalidate(key)

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give a live key an absolute expiry (unix ms). A time in the past deletes the key."""
        if when_ms <= now_ms():
            self.delete(key)
            return
        self.expires[key] = when_ms
        self.modified(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.modified(key)
        return True

    def expire_now(self, key: bytes) -> None:
        """Remove an expired key and tell the append-only file (as DEL)."""
        self._remove(key)
        engine = self.engine
        engine.stats.expired_keys += 1
        if engine.watched:
            engine.touch_watched(self.index, key)
        if engine.tracking_clients:
            engine.invalidate(key)
        engine.propagate(self.index, [b"DEL", key])

    def _remove(self, key: bytes) -> None:
        del self.data[key]
        self.access.pop(key, None)
        if self.expires:
            self.expires.pop(key, None)

    def flush(self) -> None:
        """Empty the database: WATCHers of its keys fail, blocked readers are re-checked.
        (FLUSHDB/FLUSHALL tell tracking clients once per command.)"""
        engine = self.engine
        if engine.watched:
            for key in list(self.data):
                engine.touch_watched(self.index, key)
        for slot in engine.blocked_keys:
            if slot[0] == self.index and slot[1] in self.data:
                engine.ready_keys[slot] = None
        engine.dirty += len(self.data)
        self.data = {}
        self.expires = {}
        self.access = {}

    # --- keyspace-wide -----------------------------------------------------------------------

    def random_key(self) -> bytes | None:
        """A random live key, or None (bounded tries, as Redis, when most keys are expired)."""
        for _ in range(100):
            if not self.data:
                return None
            picked = self.key_sampler.sample(self.data, 1)
            if picked and self.lookup(picked[0]) is not None:
                return picked[0]
        return None

    def active_expire(self, budget: int = 20) -> int:
        """Sample keys with a TTL (O(1) each) and delete the expired; returns how many."""
        if not self.expires:
            return 0
        now = now_ms()
        deleted = 0
        for key in set(self.expire_sampler.sample(self.expires, budget)):
            when = self.expires.get(key)
            if when is not None and when <= now:
                self.expire_now(key)
                deleted += 1
        return deleted
