"""The sorted set value type (Redis's zset).

A ZSet maps members (bytes) to scores (floats) and keeps its entries ordered by score, then by
member bytes (memcmp order, as Redis). The order lives in a chunked sorted list of
(score, member) tuples: a list of sorted chunks of at most 2 * LOAD entries, with each chunk's
last entry in `_maxes`. Inserting or removing costs a bisect plus a short list shift; rank and
index lookups go through cumulative chunk offsets that are rebuilt lazily after a change.

Dict-like API: `len(z)`, `member in z`, `z.scores[member]`, `iter(z)` (members in order),
`z.items()` ((member, score) in order), `z.copy()`. Ordered access: `entries()`, `slice()`,
`rank()`, `at()`, `count_below()`, `lex_below()`, `pop()`, `delete_slice()`.
Changing: `add()` (insert or move), `insert()` (a member known to be absent), `discard()`.

`big` mirrors OBJECT ENCODING: False = listpack, True = skiplist. The command layer decides
it (zset-max-listpack-entries / -value); a listpack stores -0 as 0 (it keeps scores as
printed strings), which the command layer applies as well.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain
from math import inf, nextafter
from operator import itemgetter

LOAD = 256                      # chunks split beyond 2 * LOAD entries, merge below LOAD // 2
Entry = tuple[float, bytes]
_member = itemgetter(1)


class ZSet:
    """A Redis sorted set."""

    TYPE = b"zset"
    __slots__ = ("scores", "_chunks", "_maxes", "_offsets", "big")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self._chunks: list[list[Entry]] = []
        self._maxes: list[Entry] = []
        self._offsets: list[int] | None = None
        self.big = False

    @classmethod
    def from_scores(cls, scores: dict[bytes, float]) -> ZSet:
        """A ZSet holding these member -> score pairs."""
        zset = cls()
        zset.scores = dict(scores)
        zset._build(sorted([(score, member) for member, score in scores.items()]))
        return zset

    def __copy__(self) -> ZSet:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, object]) -> ZSet:
        return self.copy()

    def copy(self) -> ZSet:
        other = ZSet()
        other.scores = dict(self.scores)
        other._chunks = [list(chunk) for chunk in self._chunks]
        other._maxes = list(self._maxes)
        other.big = self.big
        return other

    # --- dict-like ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __iter__(self) -> Iterator[bytes]:
        """Members, lowest score first."""
        return map(_member, chain.from_iterable(self._chunks))

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())!r})"

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) pairs, lowest score first."""
        for chunk in self._chunks:
            for score, member in chunk:
                yield member, score

    def entries(self) -> Iterator[Entry]:
        """(score, member) tuples, lowest score first."""
        return chain.from_iterable(self._chunks)

    # --- changing ----------------------------------------------------------------------------

    def add(self, member: bytes, score: float) -> bool:
        """Insert `member` or move it to `score`; True when it is new."""
        old = self.scores.get(member)
        if old is not None:
            self._remove((old, member))
        self.insert(member, score)
        return old is None

    def insert(self, member: bytes, score: float) -> None:
        """Add a member that is not in the set yet (the fast path of `add`)."""
        self.scores[member] = score
        entry = (score, member)
        maxes = self._maxes
        self._offsets = None
        if not maxes:
            self._chunks.append([entry])
            maxes.append(entry)
            return
        i = bisect_left(maxes, entry)
        if i == len(maxes):
            i -= 1
            chunk = self._chunks[i]
            chunk.append(entry)
            maxes[i] = entry
        else:
            chunk = self._chunks[i]
            insort(chunk, entry)
        if len(chunk) > 2 * LOAD:
            self._split(i)

    def discard(self, member: bytes) -> bool:
        """Remove `member`; True when it was there."""
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self._remove((score, member))
        return True

    def pop(self, last: bool = False) -> Entry:
        """Remove and return the lowest (or highest) (score, member); the set must not be empty."""
        chunks = self._chunks
        maxes = self._maxes
        if last:
            chunk = chunks[-1]
            entry = chunk.pop()
            if chunk:
                maxes[-1] = chunk[-1]
            else:
                del chunks[-1], maxes[-1]
        else:
            chunk = chunks[0]
            entry = chunk.pop(0)
            if not chunk:
                del chunks[0], maxes[0]
        del self.scores[entry[1]]
        self._offsets = None
        return entry

    def delete_slice(self, start: int, stop: int) -> list[Entry]:
        """Remove the entries of ranks start..stop-1; returns them in order."""
        removed = self.slice(start, stop)
        if len(removed) > LOAD:
            self._build(self.slice(0, start) + self.slice(stop, len(self.scores)))
        else:
            for entry in removed:
                self._remove(entry)
        scores = self.scores
        for entry in removed:
            del scores[entry[1]]
        return removed

    # --- ordered access ----------------------------------------------------------------------

    def rank(self, member: bytes) -> int | None:
        """0-based rank of `member` by ascending score, or None."""
        score = self.scores.get(member)
        if score is None:
            return None
        return self._bisect((score, member))

    def at(self, index: int) -> Entry:
        """The (score, member) of rank `index` (0 <= index < len)."""
        chunks = self._chunks
        if len(chunks) == 1:
            return chunks[0][index]
        offsets = self._offs()
        i = bisect_right(offsets, index) - 1
        return chunks[i][index - offsets[i]]

    def slice(self, start: int, stop: int) -> list[Entry]:
        """Entries of ranks start..stop-1 (0 <= start, stop <= len), in order."""
        chunks = self._chunks
        if len(chunks) == 1:
            return chunks[0][start:stop]
        if stop <= start:
            return []
        offsets = self._offs()
        i = bisect_right(offsets, start) - 1
        pos = start - offsets[i]
        out: list[Entry] = []
        remaining = stop - start
        count = len(chunks)
        while remaining > 0 and i < count:
            part = chunks[i][pos:pos + remaining]
            out += part
            remaining -= len(part)
            i += 1
            pos = 0
        return out

    def count_below(self, score: float, inclusive: bool = False) -> int:
        """How many entries have a score < `score` (<= with inclusive)."""
        if inclusive:
            if score == inf:
                return len(self.scores)
            score = nextafter(score, inf)
        return self._bisect((score,))

    def lex_below(self, member: bytes, inclusive: bool = False) -> int:
        """How many entries have a member < `member` (<= with inclusive), assuming all scores
        are equal (what lexicographical ranges require in Redis)."""
        maxes = self._maxes
        find = bisect_right if inclusive else bisect_left
        i = find(maxes, member, key=_member)
        if i == len(maxes):
            return len(self.scores)
        j = find(self._chunks[i], member, key=_member)
        return self._offs()[i] + j if i else j

    # --- internals ---------------------------------------------------------------------------

    def _offs(self) -> list[int]:
        offsets = self._offsets
        if offsets is None:
            offsets = self._offsets = [0, *accumulate(map(len, self._chunks))]
        return offsets

    def _bisect(self, key: tuple[float, ...] | Entry) -> int:
        """How many entries sort before `key`."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return len(self.scores)
        j = bisect_left(self._chunks[i], key)
        return self._offs()[i] + j if i else j

    def _build(self, entries: list[Entry]) -> None:
        chunks = [entries[i:i + LOAD] for i in range(0, len(entries), LOAD)]
        self._chunks = chunks
        self._maxes = [chunk[-1] for chunk in chunks]
        self._offsets = None

    def _split(self, i: int) -> None:
        chunk = self._chunks[i]
        tail = chunk[LOAD:]
        del chunk[LOAD:]
        self._chunks.insert(i + 1, tail)
        self._maxes[i] = chunk[-1]
        self._maxes.insert(i + 1, tail[-1])

    def _remove(self, entry: Entry) -> None:
        chunks = self._chunks
        maxes = self._maxes
        self._offsets = None
        i = bisect_left(maxes, entry)
        chunk = chunks[i]
        j = bisect_left(chunk, entry)
        del chunk[j]
        if not chunk:
            del chunks[i], maxes[i]
            return
        if j == len(chunk):
            maxes[i] = chunk[-1]
        if len(chunk) < LOAD // 2 and len(chunks) > 1:
            if i == 0:
                i = 1
            previous = chunks[i - 1]
            previous += chunks[i]
            del chunks[i], maxes[i]
            maxes[i - 1] = previous[-1]
            if len(previous) > 2 * LOAD:
                self._split(i - 1)


def zset_from(entries: Iterable[tuple[bytes, float]]) -> ZSet:
    """A ZSet from (member, score) pairs (later pairs win)."""
    return ZSet.from_scores(dict(entries))
