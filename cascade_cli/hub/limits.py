"""Pure: per-client-address connect-rate limiting (token buckets) and token checks."""

from __future__ import annotations

import hmac
from collections.abc import Callable


class RateLimiter:
    """Allows `rate` events per second per key, in bursts of up to `burst`; rate 0 allows all."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float],
                 max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for `key`; False when its bucket is empty (answer 503 / close 1013)."""
        if self.rate <= 0:
            return True
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they behave like new ones)."""
        full = self.burst / self.rate
        for key, (_tokens, last) in list(self._buckets.items()):
            if now - last >= full:
                del self._buckets[key]


def token_matches(expected: str | None, given: str | None) -> bool:
    """True when no token is required, or `given` equals it (compared in constant time)."""
    if not expected:
        return True
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def origin_allowed(origin: str | None, allowed: tuple[str, ...], host: str | None) -> bool:
    """A browser's `Origin` may connect: no Origin (not a browser), no allow-list, listed, or the
    server's own page (e.g. the dashboard) reached by IP address or `localhost`: Origin equal to
    `http(s)://<Host header>`. A Host that is a DNS name is not trusted that way (a rebinding
    site has Origin equal to Host too): such an origin must be listed."""
    if not origin or not allowed or origin in allowed:
        return True
    if not host or origin not in (f"http://{host}", f"https://{host}"):
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
