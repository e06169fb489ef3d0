"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*`, `?`, `[...]`, `\\x`.

The text between stars has a fixed length, so each such segment is placed leftmost in turn (a
regex search in C); `a*a*a*...*b` costs at most len(pattern) * len(string), never exponential.
Compile once with `compile_glob` when matching many strings against one pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A token is one of: a byte value to compare, -1 for '?', -2 for '*', or a class tuple
# (negated, frozenset of byte values).
Token = "int | tuple[bool, frozenset[int]]"
_SPECIAL = frozenset(b"*?[\\")


def _lower(b: int) -> int:
    return b + 32 if 65 <= b <= 90 else b


def _tokens(pattern: bytes, nocase: bool) -> list[object]:
    out: list[object] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:                                   # '*' (runs collapse)
            if not out or out[-1] != -2:
                out.append(-2)
        elif c == 0x3F:                                 # '?'
            out.append(-1)
        elif c == 0x5B:                                 # '[' ... ']'
            i += 1
            negated = i < n and pattern[i] == 0x5E      # '^'
            if negated:
                i += 1
            members: set[int] = set()
            while i < n and pattern[i] != 0x5D:
                if pattern[i] == 0x5C and i + 1 < n:    # escaped byte
                    i += 1
                    members.add(pattern[i])
                elif i + 2 < n and pattern[i + 1] == 0x2D:  # a-z range (either order)
                    start, end = pattern[i], pattern[i + 2]
                    if start > end:
                        start, end = end, start
                    members.update(range(start, end + 1))
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            if i >= n:
                # Redis: an unterminated class keeps what it read and ends the pattern there
                pass
            if nocase:
                members |= {_lower(m) for m in members}
            out.append((negated, frozenset(members)))
        elif c == 0x5C and i + 1 < n:                   # '\x' matches x literally
            i += 1
            out.append(_lower(pattern[i]) if nocase else pattern[i])
        else:
            out.append(_lower(c) if nocase else c)
        i += 1
    return out


def _segment_regex(tokens: list[object]) -> re.Pattern[bytes]:
    """A fixed-length segment (no '*') as a regex: literals, '?' and classes, one byte each."""
    parts = []
    for token in tokens:
        if token == -1:
            parts.append(b".")
        elif type(token) is int:
            parts.append(re.escape(bytes([token])))  # type: ignore[list-item]
        else:
            negated, members = token  # type: ignore[misc]
            body = b"".join(re.escape(bytes([m])) for m in sorted(members))
            if not members:
                parts.append(b"." if negated else b"(?!)")
            else:
                parts.append(b"[" + (b"^" if negated else b"") + body + b"]")
    return re.compile(b"".join(parts), re.DOTALL)


def _matcher(tokens: list[object]) -> Callable[[bytes], bool]:
    """Greedy segment matching: the segments between stars are fixed-length, so taking the
    leftmost place for each middle segment is always right. Work is bounded by
    len(pattern) * len(text) in C (regex search per segment), never exponential."""
    segments: list[list[object]] = [[]]
    for token in tokens:
        if token == -2:
            segments.append([])
        else:
            segments[-1].append(token)
    if len(segments) == 1:
        whole = _segment_regex(segments[0])
        return lambda text: whole.fullmatch(text) is not None
    head, middle, tail = segments[0], segments[1:-1], segments[-1]
    head_re, tail_re = _segment_regex(head), _segment_regex(tail)
    middle_res = [(_segment_regex(seg), len(seg)) for seg in middle if seg]
    head_len, tail_len = len(head), len(tail)

    def check(text: bytes) -> bool:
        if len(text) < head_len + tail_len or head_re.match(text) is None:
            return False
        end = len(text) - tail_len
        if tail_re.fullmatch(text, end) is None:
            return False
        pos = head_len
        for regex, size in middle_res:
            found = regex.search(text, pos, end)
            if found is None:
                return False
            pos = found.start() + size
        return True
    return check


def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate that tells whether a string matches `pattern` (Redis stringmatchlen).

    As in Redis, the empty string matches only the empty pattern (not even `*`).
    """
    if not pattern:
        return lambda text: not text
    check = _compile(pattern, nocase)
    return lambda text: bool(text) and check(text)


def _compile(pattern: bytes, nocase: bool) -> Callable[[bytes], bool]:
    if pattern == b"*":
        return lambda text: True
    if not _SPECIAL.intersection(pattern) and not nocase:
        return lambda text: text == pattern
    body = pattern[:-1]
    if pattern.endswith(b"*") and not _SPECIAL.intersection(body) and not nocase:
        return lambda text: text.startswith(body)
    check = _matcher(_tokens(pattern, nocase))
    if nocase:
        return lambda text: check(text.lower())
    return check


def match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """True when `text` matches the Redis glob `pattern`."""
    return compile_glob(pattern, nocase)(text)
