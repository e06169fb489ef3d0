"""Sorted set commands (Redis 7.0 semantics).

Scores follow Redis's parsers exactly: member scores, increments and weights use string2d
(strtod over the whole argument: no spaces, no overflow or underflow to zero, no NaN); range
bounds use zslParseRange (strtod, '(' for exclusive, leading spaces and an empty string
allowed); lexicographical bounds are '[x', '(x', '-' and '+'.

Encodings: a ZSet is a listpack (`big` False) until it holds more than
zset-max-listpack-entries members or a member longer than zset-max-listpack-value bytes; the
store commands (ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZRANGESTORE) pick the encoding from the
result. A listpack keeps scores as printed strings, so it stores -0 as 0 and ZSCAN prints its
integral scores without an exponent.
"""

from __future__ import annotations

import random
from math import inf
from typing import TYPE_CHECKING, Any

from cascade_cli.resp import scan as scanning
from cascade_cli.resp.commands import (
    COMMANDS,
    SYNTAX,
    WRONGTYPE,
    c_bytes,
    command,
    mpop_args,
    numkeys_keys,
    random_count_args,
    to_float,
    to_int,
    to_timeout,
    typed,
)
from cascade_cli.resp.numbers import SPACE, strtod
from cascade_cli.resp.protocol import NULL_ARRAY, ErrorReply, format_double, parse_ll
from cascade_cli.resp.store import type_name
from cascade_cli.resp.zset import ZSet

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

GROUP = "sorted-set"
NAN_SCORE = "ERR resulting score is not a number (NaN)"
RANGE_NOT_FLOAT = "ERR min or max is not a float"
LEX_RANGE_BAD = "ERR min or max not valid string range item"

# --- number parsing ----------------------------------------------------------------------------

def _score_bound(raw: bytes) -> tuple[float, bool]:
    """One bound of a score range (zslParseRange): (value, exclusive)."""
    exclusive = raw[:1] == b"("
    text = c_bytes(raw[1:] if exclusive else raw)
    if not text:
        return 0.0, exclusive
    if text[0] in SPACE:
        text = text.lstrip(SPACE)
    parsed = strtod(text) if text else None
    if parsed is None:
        raise ErrorReply(RANGE_NOT_FLOAT)
    return parsed[0], exclusive


def _score_range(zmin: bytes, zmax: bytes) -> tuple[float, bool, float, bool]:
    low, low_ex = _score_bound(zmin)
    high, high_ex = _score_bound(zmax)
    return low, low_ex, high, high_ex


MIN_STRING = object()   # '-'
MAX_STRING = object()   # '+'


def _lex_bound(raw: bytes) -> tuple[Any, bool]:
    """One bound of a lexicographical range: (bytes or MIN_STRING / MAX_STRING, exclusive)."""
    first = raw[:1]
    if first == b"(":
        return raw[1:], True
    if first == b"[":
        return raw[1:], False
    if first == b"+" and raw[1:2] in (b"", b"\0"):
        return MAX_STRING, True
    if first == b"-" and raw[1:2] in (b"", b"\0"):
        return MIN_STRING, True
    raise ErrorReply(LEX_RANGE_BAD)


def _lex_range(zmin: bytes, zmax: bytes) -> tuple[Any, bool, Any, bool]:
    low, low_ex = _lex_bound(zmin)
    high, high_ex = _lex_bound(zmax)
    return low, low_ex, high, high_ex


# --- shared helpers ----------------------------------------------------------------------------

def _emit(client: Client, entries: list[tuple[float, bytes]], withscores: bool) -> list[Any]:
    """Range results: members, or with scores a flat list (RESP2) or [member, score] pairs."""
    if not withscores:
        return [member for _, member in entries]
    if client.resp == 3:
        return [[member, score] for score, member in entries]
    out: list[Any] = []
    for score, member in entries:
        out.append(member)
        out.append(score)
    return out


def _new_zset(client: Client, scores: dict[bytes, float]) -> ZSet:
    """A store command's result, encoded as Redis encodes a fresh result."""
    params = client.engine.params
    big = len(scores) > params.zset_max_listpack_entries or \
        max(map(len, scores), default=0) > params.zset_max_listpack_value
    if not big:
        for member, score in scores.items():
            if score == 0.0:
                scores[member] = 0.0
    zset = ZSet.from_scores(scores)
    zset.big = big
    return zset


def _store(client: Client, dst: bytes, scores: dict[bytes, float]) -> int:
    """Write a store command's result to `dst` (deleting it when the result is empty)."""
    db = client.db
    if scores:
        db.set(dst, _new_zset(client, scores))
        return len(scores)
    db.delete(dst)
    return 0


def _gte_min(member: bytes, low: Any, low_ex: bool) -> bool:
    if low is MIN_STRING:
        return True
    if low is MAX_STRING:
        return False
    return member > low if low_ex else member >= low


def _lte_max(member: bytes, high: Any, high_ex: bool) -> bool:
    if high is MAX_STRING:
        return True
    if high is MIN_STRING:
        return False
    return member < high if high_ex else member <= high


def _lex_empty(low: Any, low_ex: bool, high: Any, high_ex: bool) -> bool:
    """Redis's test for lexicographical ranges that are always empty."""
    if low is high:
        cmp = 0
    elif low is MIN_STRING or high is MAX_STRING:
        cmp = -1
    elif low is MAX_STRING or high is MIN_STRING:
        cmp = 1
    else:
        cmp = (low > high) - (low < high)
    return cmp > 0 or (cmp == 0 and (low_ex or high_ex))


def _lp_lex_first(entries: list[tuple[float, bytes]], low: Any, low_ex: bool, high: Any, high_ex: bool,
                  reverse: bool) -> int | None:
    """Where a listpack's walk over a lexicographical range starts (Redis scans it linearly, which
    decides the answer when scores differ): the first entry >= min from the head (the last
    entry <= max from the tail with reverse), when that entry is also in range."""
    if not entries or _lex_empty(low, low_ex, high, high_ex) \
            or not _gte_min(entries[-1][1], low, low_ex) or not _lte_max(entries[0][1], high, high_ex):
        return None
    if reverse:
        for i in range(len(entries) - 1, -1, -1):
            member = entries[i][1]
            if _lte_max(member, high, high_ex):
                return i if _gte_min(member, low, low_ex) else None
    else:
        for i, (_, member) in enumerate(entries):
            if _gte_min(member, low, low_ex):
                return i if _lte_max(member, high, high_ex) else None
    return None


def _lex_span(zset: ZSet, low: Any, low_ex: bool, high: Any, high_ex: bool) -> tuple[int, int]:
    """[start, stop) ranks of a lexicographical range."""
    if not zset.big:
        entries = zset.slice(0, len(zset))
        start = _lp_lex_first(entries, low, low_ex, high, high_ex, False)
        if start is None:
            return 0, 0
        stop = start + 1
        while stop < len(entries) and _lte_max(entries[stop][1], high, high_ex):
            stop += 1
        return start, stop
    if low is MIN_STRING:
        start = 0
    elif low is MAX_STRING:
        start = len(zset)
    else:
        start = zset.lex_below(low, low_ex)
    if high is MAX_STRING:
        stop = len(zset)
    elif high is MIN_STRING:
        stop = 0
    else:
        stop = zset.lex_below(high, not high_ex)
    return start, stop


def _lp_lex_range(zset: ZSet, bounds: tuple[Any, bool, Any, bool], reverse: bool, offset: int,
                  limit: int) -> list[tuple[float, bytes]]:
    """ZRANGE BYLEX over a listpack, walked as Redis walks it."""
    entries = zset.slice(0, len(zset))
    low, low_ex, high, high_ex = bounds
    i = _lp_lex_first(entries, low, low_ex, high, high_ex, reverse)
    out: list[tuple[float, bytes]] = []
    if i is None:
        return out
    step = -1 if reverse else 1
    i += step * offset
    count = len(entries)
    while 0 <= i < count and limit != 0:
        member = entries[i][1]
        if not (_gte_min(member, low, low_ex) if reverse else _lte_max(member, high, high_ex)):
            break
        out.append(entries[i])
        i += step
        limit -= 1
    return out


def _score_span(zset: ZSet, low: float, low_ex: bool, high: float, high_ex: bool) -> tuple[int, int]:
    """[start, stop) ranks of a score range."""
    return zset.count_below(low, low_ex), zset.count_below(high, not high_ex)


def _rank_span(length: int, start: int, end: int) -> tuple[int, int] | None:
    """Inclusive ranks after Redis's index sanitising, or None for an empty range."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return None
    if end >= length:
        end = length - 1
    return start, end


def _lp_score(score: float) -> bytes:
    """A score as a listpack stores it (what ZSCAN prints for the listpack encoding)."""
    if score == inf:
        return b"inf"
    if score == -inf:
        return b"-inf"
    if score.is_integer() and -4611686018427387904.0 <= score <= 4611686018427387904.0:
        return b"%d" % int(score)
    return b"%.17g" % score


# --- ZADD / ZINCRBY ----------------------------------------------------------------------------

@command("zadd", -4, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="1.2.0",
         summary="Add one or more members to a sorted set, or update its score if it already exists")
def zadd(client: Client, argv: list[bytes], incr: bool = False) -> Any:
    """ZADD, and ZINCRBY with incr (Redis's zaddGenericCommand: ZINCRBY takes the options too)."""
    nx = xx = gt = lt = ch = False
    idx = 2
    argc = len(argv)
    while idx < argc:
        option = argv[idx]
        if len(option) != 2 and len(option) != 4:
            break
        option = option.lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option == b"gt":
            gt = True
        elif option == b"lt":
            lt = True
        elif option == b"ch":
            ch = True
        elif option == b"incr":
            incr = True
        else:
            break
        idx += 1
    pairs = argc - idx
    if pairs % 2 or not pairs:
        raise ErrorReply(SYNTAX)
    if nx and xx:
        raise ErrorReply("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise ErrorReply("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and pairs > 2:
        raise ErrorReply("ERR INCR option supports a single increment-element pair")
    if pairs == 2:
        raw = argv[idx]
        scores = [float(raw) if raw.isdigit() and len(raw) < 300 else to_float(raw)]
    else:
        scores = [to_float(argv[i]) for i in range(idx, argc, 2)]

    key = argv[1]
    db = client.db
    zset = db.lookup(key)
    if zset is not None and type(zset) is not ZSet:
        raise ErrorReply(WRONGTYPE)
    created = zset is None
    if created:
        if xx:
            return None if incr else 0
        zset = ZSet()
    current = zset.scores
    added = updated = processed = 0
    newscore = 0.0
    member_index = idx + 1
    for score in scores:
        member = argv[member_index]
        member_index += 2
        old = current.get(member)
        if old is not None:
            if nx:
                continue
            if incr:
                score += old
                if score != score:
                    raise ErrorReply(NAN_SCORE)
            if (lt and score >= old) or (gt and score <= old):
                continue
            processed += 1
            newscore = score
            if score != old:
                if not zset.big and score == 0.0:
                    score = 0.0
                zset.add(member, score)
                updated += 1
        elif not xx:
            newscore = score
            if not zset.big:
                params = client.engine.params
                if len(current) >= params.zset_max_listpack_entries \
                        or len(member) > params.zset_max_listpack_value:
                    zset.big = True
                elif score == 0.0:
                    score = 0.0
            zset.insert(member, score)
            added += 1
            processed += 1
    if added or updated:
        if created:
            db.set(key, zset)
        else:
            db.modified(key)
    if incr:
        return newscore if processed else None
    return added + updated if ch else added


@command("zincrby", 4, "write denyoom fast", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zincrby(client: Client, argv: list[bytes]) -> Any:
    """Increment the score of a member in a sorted set"""
    return zadd(client, argv, True)


# --- simple reads and removals -----------------------------------------------------------------

@command("zrem", -3, "write fast", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zrem(client: Client, argv: list[bytes]) -> Any:
    """Remove one or more members from a sorted set"""
    key = argv[1]
    zset = typed(client, key, ZSet, False)
    if zset is None:
        return 0
    deleted = 0
    for member in argv[2:]:
        if zset.discard(member):
            deleted += 1
            if not zset:
                break
    if deleted:
        db = client.db
        db.modified(key)
        db.drop_if_empty(key)
    return deleted


@command("zcard", 2, "readonly fast", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zcard(client: Client, argv: list[bytes]) -> Any:
    """Get the number of members in a sorted set"""
    zset = typed(client, argv[1], ZSet)
    return len(zset) if zset is not None else 0


@command("zscore", 3, "readonly fast", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zscore(client: Client, argv: list[bytes]) -> Any:
    """Get the score associated with the given member in a sorted set"""
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return None
    return zset.scores.get(argv[2])


@command("zmscore", -3, "readonly fast", keys=(1, 1, 1), group=GROUP, since="6.2.0")
def zmscore(client: Client, argv: list[bytes]) -> Any:
    """Get the score associated with the given members in a sorted set"""
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return [None] * (len(argv) - 2)
    get = zset.scores.get
    return [get(member) for member in argv[2:]]


def _zrank(client: Client, argv: list[bytes], reverse: bool) -> Any:
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return None
    rank = zset.rank(argv[2])
    if rank is None:
        return None
    return len(zset) - 1 - rank if reverse else rank


@command("zrank", 3, "readonly fast", keys=(1, 1, 1), group=GROUP, since="2.0.0")
def zrank(client: Client, argv: list[bytes]) -> Any:
    """Determine the index of a member in a sorted set"""
    return _zrank(client, argv, False)


@command("zrevrank", 3, "readonly fast", keys=(1, 1, 1), group=GROUP, since="2.0.0")
def zrevrank(client: Client, argv: list[bytes]) -> Any:
    """Determine the index of a member in a sorted set, with scores ordered from high to low"""
    return _zrank(client, argv, True)


@command("zcount", 4, "readonly fast", keys=(1, 1, 1), group=GROUP, since="2.0.0")
def zcount(client: Client, argv: list[bytes]) -> Any:
    """Count the members in a sorted set with scores within the given values"""
    bounds = _score_range(argv[2], argv[3])
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return 0
    start, stop = _score_span(zset, *bounds)
    return max(stop - start, 0)


@command("zlexcount", 4, "readonly fast", keys=(1, 1, 1), group=GROUP, since="2.8.9")
def zlexcount(client: Client, argv: list[bytes]) -> Any:
    """Count the number of members in a sorted set between a given lexicographical range"""
    bounds = _lex_range(argv[2], argv[3])
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return 0
    start, stop = _lex_span(zset, *bounds)
    return max(stop - start, 0)


# --- ZRANGE and friends ------------------------------------------------------------------------

RANK, SCORE, LEX = 1, 2, 3


def _zrange(client: Client, argv: list[bytes], first: int, store: bool, kind: int | None,
            reverse: bool | None) -> Any:
    """The body of ZRANGE, ZRANGESTORE and the older range commands (Redis's
    zrangeGenericCommand): `first` is the index of the source key in argv."""
    key = argv[first]
    min_index, max_index = first + 1, first + 2
    withscores = False
    offset, limit = 0, -1
    argc = len(argv)
    j = first + 3
    while j < argc:
        option = argv[j].lower()
        left = argc - j - 1
        if not store and option == b"withscores":
            withscores = True
        elif option == b"limit" and left >= 2:
            offset = to_int(argv[j + 1])
            limit = to_int(argv[j + 2])
            j += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif kind is None and option == b"bylex":
            kind = LEX
        elif kind is None and option == b"byscore":
            kind = SCORE
        else:
            raise ErrorReply(SYNTAX)
        j += 1
    reverse = bool(reverse)
    if kind is None:
        kind = RANK
    if limit != -1 and kind == RANK:
        raise ErrorReply("ERR syntax error, LIMIT is only supported in combination with either "
                         "BYSCORE or BYLEX")
    if withscores and kind == LEX:
        raise ErrorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    if reverse and kind != RANK:
        min_index, max_index = max_index, min_index
    if kind == RANK:
        start, end = to_int(argv[min_index]), to_int(argv[max_index])
    elif kind == SCORE:
        bounds: tuple[Any, bool, Any, bool] = _score_range(argv[min_index], argv[max_index])
    else:
        bounds = _lex_range(argv[min_index], argv[max_index])

    zset = typed(client, key, ZSet)
    if zset is None:
        return _store(client, argv[1], {}) if store else []

    length = len(zset)
    entries: list[tuple[float, bytes]]
    if kind == RANK:
        span = _rank_span(length, start, end)
        if span is None:
            entries = []
        elif reverse:
            entries = zset.slice(length - 1 - span[1], length - span[0])
            entries.reverse()
        else:
            entries = zset.slice(span[0], span[1] + 1)
    else:
        if (offset > 0 and offset >= length) or offset < 0:
            entries = []
        elif kind == LEX and not zset.big:
            entries = _lp_lex_range(zset, bounds, reverse, offset, limit)
        else:
            low, stop = (_score_span if kind == SCORE else _lex_span)(zset, *bounds)
            count = stop - low - offset
            if count <= 0:
                entries = []
            else:
                if 0 <= limit < count:
                    count = limit
                if reverse:
                    entries = zset.slice(stop - offset - count, stop - offset)
                    entries.reverse()
                else:
                    entries = zset.slice(low + offset, low + offset + count)
    if store:
        return _store(client, argv[1], {member: score for score, member in entries})
    return _emit(client, entries, withscores)


@command("zrange", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zrange(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set"""
    return _zrange(client, argv, 1, False, None, None)


@command("zrangestore", -5, "write denyoom", keys=(1, 2, 1), group=GROUP, since="6.2.0")
def zrangestore(client: Client, argv: list[bytes]) -> Any:
    """Store a range of members from sorted set into another key"""
    return _zrange(client, argv, 2, True, None, None)


@command("zrevrange", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zrevrange(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set, by index, with scores ordered from high to low"""
    return _zrange(client, argv, 1, False, RANK, True)


@command("zrangebyscore", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="1.0.5")
def zrangebyscore(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set, by score"""
    return _zrange(client, argv, 1, False, SCORE, False)


@command("zrevrangebyscore", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="2.2.0")
def zrevrangebyscore(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set, by score, with scores ordered from high to low"""
    return _zrange(client, argv, 1, False, SCORE, True)


@command("zrangebylex", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="2.8.9")
def zrangebylex(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set, by lexicographical range"""
    return _zrange(client, argv, 1, False, LEX, False)


@command("zrevrangebylex", -4, "readonly", keys=(1, 1, 1), group=GROUP, since="2.8.9",
         summary="Return a range of members in a sorted set, by lexicographical range, ordered from "
                 "higher to lower strings.")
def zrevrangebylex(client: Client, argv: list[bytes]) -> Any:
    """Return a range of members in a sorted set, by lexicographical range, ordered from higher
    to lower strings."""
    return _zrange(client, argv, 1, False, LEX, True)


# --- ZREMRANGEBY* ------------------------------------------------------------------------------

def _zremrange(client: Client, argv: list[bytes], kind: int) -> Any:
    key = argv[1]
    if kind == RANK:
        start, end = to_int(argv[2]), to_int(argv[3])
    elif kind == SCORE:
        bounds: tuple[Any, bool, Any, bool] = _score_range(argv[2], argv[3])
    else:
        bounds = _lex_range(argv[2], argv[3])
    zset = typed(client, key, ZSet, False)
    if zset is None:
        return 0
    if kind == RANK:
        span = _rank_span(len(zset), start, end)
        if span is None:
            return 0
        low, stop = span[0], span[1] + 1
    else:
        low, stop = (_score_span if kind == SCORE else _lex_span)(zset, *bounds)
    if stop <= low:
        return 0
    removed = zset.delete_slice(low, stop)
    db = client.db
    db.modified(key)
    db.drop_if_empty(key)
    return len(removed)


@command("zremrangebyrank", 4, "write", keys=(1, 1, 1), group=GROUP, since="2.0.0")
def zremrangebyrank(client: Client, argv: list[bytes]) -> Any:
    """Remove all members in a sorted set within the given indexes"""
    return _zremrange(client, argv, RANK)


@command("zremrangebyscore", 4, "write", keys=(1, 1, 1), group=GROUP, since="1.2.0")
def zremrangebyscore(client: Client, argv: list[bytes]) -> Any:
    """Remove all members in a sorted set within the given scores"""
    return _zremrange(client, argv, SCORE)


@command("zremrangebylex", 4, "write", keys=(1, 1, 1), group=GROUP, since="2.8.9")
def zremrangebylex(client: Client, argv: list[bytes]) -> Any:
    """Remove all members in a sorted set between the given lexicographical range"""
    return _zremrange(client, argv, LEX)


# --- ZUNION / ZINTER / ZDIFF (and STORE, ZINTERCARD) -------------------------------------------

UNION, INTER, DIFF = 1, 2, 3
SUM, MIN, MAX = 1, 2, 3


def _members(source: Any) -> Any:
    """(member, score) pairs of a sorted set, or of a set with scores of 1."""
    if type(source) is ZSet:
        return source.items()
    return ((member, 1.0) for member in source)


def _score_in(source: Any, member: bytes) -> float | None:
    if type(source) is ZSet:
        return source.scores.get(member)
    return 1.0 if member in source else None


def _aggregate(target: float, value: float, how: int) -> float:
    if how == SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == MIN:
        return value if value < target else target
    return value if value > target else target


def _setop(client: Client, argv: list[bytes], name: str, dst: bytes | None, numkeys_index: int,
           op: int, card_only: bool = False) -> Any:
    """Redis's zunionInterDiffGenericCommand."""
    setnum = to_int(argv[numkeys_index])
    if setnum < 1:
        raise ErrorReply(f"ERR at least 1 input key is needed for '{name}' command")
    argc = len(argv)
    if setnum > argc - numkeys_index - 1:
        raise ErrorReply(SYNTAX)
    db = client.db
    sources: list[Any] = []
    for j in range(numkeys_index + 1, numkeys_index + 1 + setnum):
        value = db.read(argv[j])
        if value is not None and type(value) is not ZSet and type_name(value) != b"set":
            raise ErrorReply(WRONGTYPE)
        sources.append(value)
    weights = [1.0] * setnum
    how = SUM
    withscores = False
    limit = 0
    j = numkeys_index + 1 + setnum
    while j < argc:
        remaining = argc - j
        option = argv[j].lower()
        if op != DIFF and not card_only and remaining >= setnum + 1 and option == b"weights":
            j += 1
            for i in range(setnum):
                weights[i] = to_float(argv[j], "ERR weight value is not a float")
                j += 1
        elif op != DIFF and not card_only and remaining >= 2 and option == b"aggregate":
            choice = argv[j + 1].lower()
            if choice == b"sum":
                how = SUM
            elif choice == b"min":
                how = MIN
            elif choice == b"max":
                how = MAX
            else:
                raise ErrorReply(SYNTAX)
            j += 2
        elif remaining >= 1 and dst is None and not card_only and option == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and option == b"limit":
            limit = parse_ll(argv[j + 1])  # type: ignore[assignment]
            if limit is None or limit < 0:
                raise ErrorReply("ERR LIMIT can't be negative")
            j += 2
        else:
            raise ErrorReply(SYNTAX)

    pairs = list(zip(sources, weights))
    if op != DIFF:
        pairs.sort(key=lambda pair: len(pair[0]) if pair[0] is not None else 0)
    result: dict[bytes, float] = {}
    if op == INTER:
        first, first_weight = pairs[0]
        cardinality = 0
        if first:
            rest = pairs[1:]
            for member, value in list(_members(first)):
                score = first_weight * value
                if score != score:
                    score = 0.0
                for source, weight in rest:
                    if source is first:
                        other = value
                    else:
                        other = _score_in(source, member)  # type: ignore[assignment]
                        if other is None:
                            break
                    score = _aggregate(score, other * weight, how)
                else:
                    if card_only:
                        cardinality += 1
                        if limit and cardinality >= limit:
                            break
                    else:
                        result[member] = score
        if card_only:
            return cardinality
    elif op == UNION:
        for source, weight in pairs:
            if not source:
                continue
            for member, value in list(_members(source)):
                score = weight * value
                if score != score:
                    score = 0.0
                old = result.get(member)
                result[member] = score if old is None else _aggregate(old, score, how)
    else:
        first = pairs[0][0]
        if first:
            others = [source for source, _ in pairs[1:] if source]
            for member, value in list(_members(first)):
                for source in others:
                    if _score_in(source, member) is not None:
                        break
                else:
                    result[member] = value

    if dst is not None:
        return _store(client, dst, result)
    entries = sorted([(score, member) for member, score in result.items()])
    return _emit(client, entries, withscores)


@command("zunionstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group=GROUP, since="2.0.0",
         key_finder=numkeys_keys(2, True))
def zunionstore(client: Client, argv: list[bytes]) -> Any:
    """Add multiple sorted sets and store the resulting sorted set in a new key"""
    return _setop(client, argv, "zunionstore", argv[1], 2, UNION)


@command("zinterstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group=GROUP, since="2.0.0",
         key_finder=numkeys_keys(2, True))
def zinterstore(client: Client, argv: list[bytes]) -> Any:
    """Intersect multiple sorted sets and store the resulting sorted set in a new key"""
    return _setop(client, argv, "zinterstore", argv[1], 2, INTER)


@command("zdiffstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group=GROUP, since="6.2.0",
         key_finder=numkeys_keys(2, True))
def zdiffstore(client: Client, argv: list[bytes]) -> Any:
    """Subtract multiple sorted sets and store the resulting sorted set in a new key"""
    return _setop(client, argv, "zdiffstore", argv[1], 2, DIFF)


@command("zunion", -3, "readonly movablekeys", group=GROUP, since="6.2.0", key_finder=numkeys_keys(1))
def zunion(client: Client, argv: list[bytes]) -> Any:
    """Add multiple sorted sets"""
    return _setop(client, argv, "zunion", None, 1, UNION)


@command("zinter", -3, "readonly movablekeys", group=GROUP, since="6.2.0", key_finder=numkeys_keys(1))
def zinter(client: Client, argv: list[bytes]) -> Any:
    """Intersect multiple sorted sets"""
    return _setop(client, argv, "zinter", None, 1, INTER)


@command("zdiff", -3, "readonly movablekeys", group=GROUP, since="6.2.0", key_finder=numkeys_keys(1))
def zdiff(client: Client, argv: list[bytes]) -> Any:
    """Subtract multiple sorted sets"""
    return _setop(client, argv, "zdiff", None, 1, DIFF)


@command("zintercard", -3, "readonly movablekeys", group=GROUP, since="7.0.0",
         key_finder=numkeys_keys(1))
def zintercard(client: Client, argv: list[bytes]) -> Any:
    """Intersect multiple sorted sets and return the cardinality of the result"""
    return _setop(client, argv, "zintercard", None, 1, INTER, card_only=True)


# --- pops --------------------------------------------------------------------------------------

def _pop(client: Client, key: bytes, zset: ZSet, last: bool, count: int, emitkey: bool,
         nested: bool) -> Any:
    """Pop up to `count` entries from a non-empty `zset` at `key` and shape the reply."""
    popped = [zset.pop(last) for _ in range(min(count, len(zset)))]
    db = client.db
    db.modified(key)
    db.drop_if_empty(key)
    if nested:
        items: list[Any] = [[member, score] for score, member in popped]
        return [key, items] if emitkey else items
    out: list[Any] = [key] if emitkey else []
    for score, member in popped:
        out.append(member)
        out.append(score)
    return out


def _zpop(client: Client, argv: list[bytes], last: bool) -> Any:
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    count = -1
    if len(argv) == 3:
        count = parse_ll(argv[2])  # type: ignore[assignment]
        if count is None or count < 0:
            raise ErrorReply("ERR value is out of range, must be positive")
    key = argv[1]
    zset = typed(client, key, ZSet, False)
    if zset is None or count == 0:
        return []
    return _pop(client, key, zset, last, 1 if count == -1 else count, False,
                client.resp == 3 and count != -1)


@command("zpopmin", -2, "write fast", keys=(1, 1, 1), group=GROUP, since="5.0.0")
def zpopmin(client: Client, argv: list[bytes]) -> Any:
    """Remove and return members with the lowest scores in a sorted set"""
    return _zpop(client, argv, False)


@command("zpopmax", -2, "write fast", keys=(1, 1, 1), group=GROUP, since="5.0.0")
def zpopmax(client: Client, argv: list[bytes]) -> Any:
    """Remove and return members with the highest scores in a sorted set"""
    return _zpop(client, argv, True)


def _blocking_pop(client: Client, keys: list[bytes], timeout: float, last: bool, count: int,
                  multi: bool) -> Any:
    """Pop from the first non-empty sorted set among `keys`, or block. `multi`: BZMPOP's
    reply shape; otherwise BZPOPMIN/BZPOPMAX's. Served pops propagate as ZPOPMIN/ZPOPMAX."""
    name = b"ZPOPMAX" if last else b"ZPOPMIN"

    def serve(key: bytes, zset: ZSet) -> Any:
        reply = _pop(client, key, zset, last, count, True, multi)
        client.rewrite([name, key, b"%d" % count] if multi else [name, key])
        return reply

    db = client.db
    for key in keys:
        zset = db.lookup(key)
        if zset is None:
            continue
        if type(zset) is not ZSet:
            raise ErrorReply(WRONGTYPE)
        if zset:
            return serve(key, zset)

    def attempt() -> Any:
        # Redis serves a woken client from the key that became ready; when the engine says
        # which one (Block.ready_key), only that key is tried, otherwise the keys in order.
        database = client.db
        ready = client.blocked.ready_key if client.blocked is not None else None
        for key in (ready,) if ready is not None and ready in keys else keys:
            value = database.lookup(key)
            if type(value) is ZSet and value:
                return serve(key, value)
        return None

    return client.block(keys, timeout, NULL_ARRAY, attempt)


def _bzpop(client: Client, argv: list[bytes], last: bool) -> Any:
    timeout = to_timeout(argv[-1])
    return _blocking_pop(client, argv[1:-1], timeout, last, 1, False)


@command("bzpopmin", -3, "write noscript blocking fast", keys=(1, -2, 1), group=GROUP, since="5.0.0",
         summary="Remove and return the member with the lowest score from one or more sorted sets, or "
                 "block until one is available")
def bzpopmin(client: Client, argv: list[bytes]) -> Any:
    """Remove and return the member with the lowest score from one or more sorted sets, or block
    until one is available"""
    return _bzpop(client, argv, False)


@command("bzpopmax", -3, "write noscript blocking fast", keys=(1, -2, 1), group=GROUP, since="5.0.0",
         summary="Remove and return the member with the highest score from one or more sorted sets, or "
                 "block until one is available")
def bzpopmax(client: Client, argv: list[bytes]) -> Any:
    """Remove and return the member with the highest score from one or more sorted sets, or block
    until one is available"""
    return _bzpop(client, argv, True)


@command("zmpop", -4, "write movablekeys", group=GROUP, since="7.0.0", key_finder=numkeys_keys(1))
def zmpop(client: Client, argv: list[bytes]) -> Any:
    """Remove and return members with scores in a sorted set"""
    keys, last, count = mpop_args(argv, 1, (b"min", b"max"))
    db = client.db
    for key in keys:
        zset = db.lookup(key)
        if zset is None:
            continue
        if type(zset) is not ZSet:
            raise ErrorReply(WRONGTYPE)
        reply = _pop(client, key, zset, last, count, True, True)
        client.rewrite([b"ZPOPMAX" if last else b"ZPOPMIN", key, b"%d" % count])
        return reply
    return NULL_ARRAY


@command("bzmpop", -5, "write blocking movablekeys", group=GROUP, since="7.0.0",
         key_finder=numkeys_keys(2))
def bzmpop(client: Client, argv: list[bytes]) -> Any:
    """Remove and return members with scores in a sorted set or block until one is available"""
    keys, last, count = mpop_args(argv, 2, (b"min", b"max"))
    timeout = to_timeout(argv[1])
    return _blocking_pop(client, keys, timeout, last, count, True)


# --- ZRANDMEMBER, ZSCAN ------------------------------------------------------------------------

@command("zrandmember", -2, "readonly", keys=(1, 1, 1), group=GROUP, since="6.2.0")
def zrandmember(client: Client, argv: list[bytes]) -> Any:
    """Get one or multiple random elements from a sorted set"""
    argc = len(argv)
    if argc >= 3:
        count, withscores = random_count_args(argv, b"withscores")
        zset = typed(client, argv[1], ZSet)
        if zset is None or count == 0:
            return []
        size = len(zset)
        if count < 0 or count == 1:
            at = zset.at
            randbelow = random.randrange
            entries = [at(randbelow(size)) for _ in range(abs(count))]
        elif count >= size:
            entries = zset.slice(0, size)
            entries.reverse()
        elif count * 3 > size:
            entries = random.sample(zset.slice(0, size), count)
        else:
            at = zset.at
            entries = [at(i) for i in random.sample(range(size), count)]
        return _emit(client, entries, withscores)
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return None
    return zset.at(random.randrange(len(zset)))[1]


@command("zscan", -3, "readonly", keys=(1, 1, 1), group=GROUP, since="2.8.0")
def zscan(client: Client, argv: list[bytes]) -> Any:
    """Incrementally iterate sorted sets elements and associated scores"""
    cursor = scanning.parse_cursor(argv[2])
    zset = typed(client, argv[1], ZSet)
    if zset is None:
        return [b"0", []]
    match, count, _ = scanning.parse_options(argv, 3)
    out: list[bytes] = []
    if not zset.big:
        for score, member in zset.entries():
            if match is None or match(member):
                out.append(member)
                out.append(_lp_score(score))
        return [b"0", out]
    following, batch = scanning.scan(cursor, lambda: list(zset), count)
    scores = zset.scores
    for member in batch:
        score = scores.get(member)
        if score is None or (match is not None and not match(member)):
            continue
        out.append(member)
        out.append(format_double(score))
    return [b"%d" % following, out]


# COMMAND INFO details that the flags alone do not imply: key-spec flags and command tips.
_KEY_FLAGS = {"zincrby": "RW access update", "zrem": "RW delete", "zcard": "RO",
              "zremrangebyrank": "RW delete", "zremrangebyscore": "RW delete", "zremrangebylex": "RW delete",
              "zpopmin": "RW access delete", "zpopmax": "RW access delete", "zmpop": "RW access delete",
              "bzpopmin": "RW access delete", "bzpopmax": "RW access delete", "bzmpop": "RW access delete"}
for _name, _flags in _KEY_FLAGS.items():
    COMMANDS[_name.encode()].extra["key_flags"] = _flags.split()
for _name in ("zrandmember", "zscan"):
    COMMANDS[_name.encode()].extra["tips"] = ["nondeterministic_output"]

__all__ = ["ZSet"]
