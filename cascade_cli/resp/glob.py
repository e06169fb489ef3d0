"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*`, `?`, `[...]`, `\\x`.

Matching is the classic two-pointer wildcard walk: it only ever backtracks to the last `*`, so
`a*a*a*...*b` costs at most len(pattern) * len(string) steps, never exponential time.
Compile once with `compile_glob` when matching many strings against one pattern.
"""

from __future__ import annotations

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


def _one(token: object, byte: int) -> bool:
    if type(token) is int:
        return token == -1 or token == byte
    negated, members = token  # type: ignore[misc]
    return (byte in members) != negated


def _walk(tokens: list[object], text: bytes) -> bool:
    ti = si = 0
    star_t = star_s = -1
    nt, ns = len(tokens), len(text)
    while si < ns:
        if ti < nt:
            token = tokens[ti]
            if token == -2:
                star_t, star_s = ti, si
                ti += 1
                continue
            if _one(token, text[si]):
                ti += 1
                si += 1
                continue
        if star_t < 0:
            return False
        star_s += 1
        si = star_s
        ti = star_t + 1
    while ti < nt and tokens[ti] == -2:
        ti += 1
    return ti == nt


def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate that tells whether a string matches `pattern` (Redis stringmatchlen)."""
    if pattern == b"*":
        return lambda text: True
    if not _SPECIAL.intersection(pattern) and not nocase:
        return lambda text: text == pattern
    body = pattern[:-1]
    if pattern.endswith(b"*") and not _SPECIAL.intersection(body) and not nocase:
        return lambda text: text.startswith(body)
    tokens = _tokens(pattern, nocase)
    if nocase:
        return lambda text: _walk(tokens, text.lower())
    return lambda text: _walk(tokens, text)


def match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """True when `text` matches the Redis glob `pattern`."""
    return compile_glob(pattern, nocase)(text)
