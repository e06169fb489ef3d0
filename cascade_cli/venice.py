"""The Venice bridge client: serenissima.ai's HTTP API as typed results and cascade errors.

Open a `VeniceBridge` from `VeniceSettings` (use it as a context manager), then call
`probe()` / `ping()` to check the API or `get()` to fetch records. Answer shapes are normalised
by the pure `normalise()`; what went wrong becomes an `UnreachableError` (no answer) or a
`RemoteError` (an error answer). Nothing here prints; the API key never leaves the client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from cascade_cli.bench.stats import latency_summary
from cascade_cli.config import mask_url, read_secret_file
from cascade_cli.connect import NO_RETRIES, RetryHook, RetryPolicy, http_client, parse_retry_after
from cascade_cli.errors import ConfigError, RemoteError, UnreachableError, UsageError

if TYPE_CHECKING:
    import httpx

    from cascade_cli.config import VeniceSettings

FLAGS = ("_fallback", "_cached", "_stale")
FLAG_MEANING = {
    "_fallback": "the API answered with fallback sample records, not live data",
    "_cached": "the API answered from its cache",
    "_stale": "the API answered with stale cached data",
}
_META_KEYS = {"success", "error", "details", "code", "count", "offset", *FLAGS}


@dataclass(frozen=True)
class Resource:
    """A documented collection: its path, the key of one record, and default table columns."""

    name: str
    item_key: str
    columns: tuple[str, ...] = ()
    has_item_route: bool = False


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("citizens", "citizen", ("username", "firstName", "lastName", "socialClass", "ducats",
                                     "influence", "isAi"), True),
    Resource("activities", "activity", ("activityId", "citizen", "type", "status", "startDate",
                                        "endDate")),
    Resource("buildings", "building", ("buildingId", "name", "type", "category", "owner",
                                       "occupant", "rentPrice"), True),
    Resource("contracts", "contract", ("contractId", "type", "seller", "buyer", "resourceType",
                                       "price", "amount", "status")),
    Resource("problems", "problem", ("problemId", "citizen", "severity", "status", "type",
                                     "title"), True),
    Resource("resources", "resource"),
    Resource("lands", "land"),
    Resource("relevancies", "relevancy", has_item_route=True),
    Resource("messages", "message"),
    Resource("economy", "economy"),
    Resource("get-ledger", "data"),
)}


# ---- pure helpers ---------------------------------------------------------------------------

def parse_filters(items: Iterable[str]) -> dict[str, str]:
    """`["Owner=NLR", "Category=business"]` -> a query dict; UsageError on a malformed item."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"bad filter {item!r}: expected Field=value",
                             "e.g. --filter Owner=NLR --filter Category=business")
        result[name.strip()] = value
    return result


def flags_of(body: Any) -> list[str]:
    """The `_fallback`/`_cached`/`_stale` flags an answer carries, in that order."""
    return [flag for flag in FLAGS if isinstance(body, dict) and body.get(flag)]


def normalise(resource: Resource, body: Any, by_id: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """Records from any documented answer shape, and whether the answer is one record.

    Accepts a bare array, `{<plural>: [...]}`, `{<singular>: {...}}`, the singular `message` key
    that may hold a list, and answers with or without `success`. RemoteError if none fits.
    """
    if isinstance(body, list):
        return [_as_record(item) for item in body], False
    if not isinstance(body, dict):
        raise RemoteError(f"unexpected answer: a JSON {type(body).__name__}, not an object or list")
    keys = [resource.item_key, resource.name] if by_id else [resource.name, resource.item_key]
    keys += [k for k, v in body.items() if k not in _META_KEYS and isinstance(v, (list, dict))]
    for key in keys:
        value = body.get(key)
        if isinstance(value, list):
            return [_as_record(item) for item in value], False
        if isinstance(value, dict):
            return [value], True
    raise RemoteError(f"the answer for {resource.name} holds no records "
                      f"(keys: {', '.join(body) or 'none'})")


def _as_record(item: Any) -> dict[str, Any]:
    return item if isinstance(item, dict) else {"value": item}


def count_items(body: Any) -> int | None:
    """How many records an answer carries (for ping); None when it has no records at all."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict):
        for key, value in body.items():
            if key not in _META_KEYS and isinstance(value, list):
                return len(value)
        if any(k not in _META_KEYS and isinstance(v, dict) for k, v in body.items()):
            return 1
    return None


def error_text(status: int, body: Any) -> str:
    """One line describing an error answer, from the documented error shapes."""
    detail = ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "details") if body.get(k)]
        detail = ": ".join(parts)
        if body.get("code"):
            detail += f" ({body['code']})"
    if status in (401, 403):
        head = f"authentication required (HTTP {status})"
    elif status == 429:
        head = "rate limited (HTTP 429)"
    elif status < 400:
        head = f"the API reported failure (HTTP {status}, success: false)"
    else:
        head = f"HTTP {status}"
    return f"{head}: {detail}" if detail else head


def default_columns(resource: Resource, records: list[dict[str, Any]], limit: int = 8) -> list[str]:
    """Table columns: the resource's documented ones that appear, else the first scalar keys.
    With no records at all, the documented columns (so an empty table still has headers)."""
    if not records:
        return list(resource.columns)
    present = {key for record in records for key in record}
    chosen = [c for c in resource.columns if c in present]
    if chosen:
        return chosen
    seen: list[str] = []
    for record in records:
        for key, value in record.items():
            if key not in seen and not isinstance(value, (dict, list)):
                seen.append(key)
    return seen[:limit] or sorted(present)[:limit]


def _decode_json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


_NOT_JSON = object()


# ---- results --------------------------------------------------------------------------------

@dataclass
class Probe:
    """One request to the API and what it showed. `outcome` is ok, error or unreachable."""

    url: str
    outcome: str
    status: int | None = None
    latency_ms: float | None = None
    success: bool | None = None
    items: int | None = None
    flags: list[str] = field(default_factory=list)
    retry_after_s: float | None = None
    message: str | None = None
    hint: str | None = None


@dataclass
class PingReport:
    """Several probes of one URL. `outcome` is the worst probe's: unreachable > error > ok."""

    base_url: str
    probes: list[Probe]
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        for outcome in ("unreachable", "error"):
            if any(p.outcome == outcome for p in self.probes):
                return outcome
        return "ok"

    @property
    def deciding(self) -> Probe:
        """The probe that decided the outcome (the last of the worst kind); the report's status
        fields describe it."""
        return next(p for p in reversed(self.probes) if p.outcome == self.outcome)

    def to_record(self) -> dict[str, Any]:
        """The report as stable snake_case keys; latencies in milliseconds."""
        answered = [p for p in self.probes if p.status is not None]
        last = self.deciding
        latencies = [p.latency_ms for p in answered if p.latency_ms is not None]
        flags = sorted({f for p in answered for f in p.flags}, key=FLAGS.index)
        return {
            "base_url": self.base_url,
            "url": last.url,
            "outcome": self.outcome,
            "status": last.status,
            "success": last.success,
            "items": last.items,
            "latency_ms": last.latency_ms,
            "count": len(self.probes),
            "answered": len(answered),
            "ok": sum(p.outcome == "ok" for p in self.probes),
            **latency_summary(latencies),
            "flags": flags,
            "retry_after_s": last.retry_after_s,
            "error": last.message,
        }


@dataclass
class Fetched:
    """Records fetched by `VeniceBridge.get`; `single` when the answer was one record."""

    url: str
    records: list[dict[str, Any]]
    single: bool
    flags: list[str]


# ---- the client -----------------------------------------------------------------------------

def _unreachable(exc: Exception, url: str, settings: VeniceSettings) -> UnreachableError:
    """Map an httpx transport error to one clear line and a hint."""
    import httpx

    host = _host(url)
    text = str(exc) or type(exc).__name__
    hint = "check the URL and the network; the base URL comes from venice.base_url or CASCADE_VENICE_BASE_URL"
    if isinstance(exc, httpx.ConnectTimeout):
        message = f"timed out connecting to {host} after {settings.connect_timeout:g} s"
        hint = "check that the host is up, or raise venice.connect_timeout"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"no answer from {host} within {settings.timeout:g} s"
        hint = "try again later, or raise venice.timeout (CASCADE_VENICE_TIMEOUT)"
    elif isinstance(exc, httpx.RemoteProtocolError):
        message = f"{host} closed the connection without a valid answer ({text})"
    elif isinstance(exc, httpx.LocalProtocolError):
        # Its text may quote a header, and headers carry the token: never show it.
        message = f"cascade could not send a valid request to {host}"
        hint = "check the base URL and the API token"
    elif "SSL" in text or "TLS" in text or "CERTIFICATE" in text.upper():
        message = f"TLS handshake with {host} failed: {text}"
        hint = "check the scheme (http vs https) and the server's certificate"
    elif "name resolution" in text or "not known" in text or "getaddrinfo" in text or "nodename" in text:
        message = f"cannot resolve host {urlsplit(url).hostname}: {text}"
    elif "refused" in text.lower():
        message = f"connection refused by {host}"
        hint = "nothing listens there: check the host and port in venice.base_url"
    else:
        message = f"cannot reach {host}: {text}"
    return UnreachableError(message, hint)


def _host(url: str) -> str:
    """`host:port` of a URL, without any userinfo."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname}:{port}" if port else str(parts.hostname)


class VeniceBridge:
    """A client for one Venice base URL. Use as a context manager; close() releases the pool."""

    def __init__(self, settings: VeniceSettings, *, retry: bool = True,
                 on_retry: RetryHook | None = None) -> None:
        token = settings.api_key.strip()
        if not token and settings.api_key_file:
            token = read_secret_file(settings.api_key_file, "venice.api_key_file")
        policy = RetryPolicy(retries=settings.retries, backoff=settings.backoff,
                             max_retry_after=settings.max_retry_wait) if retry else NO_RETRIES
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.shown_url = mask_url(self.base_url)
        self._client = http_client(self.base_url, timeout=settings.timeout,
                                   connect_timeout=settings.connect_timeout, retry=policy,
                                   bearer_token=token or None, on_retry=on_retry)

    def __enter__(self) -> VeniceBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[httpx.Response, float]:
        """GET `path`; returns the response and its latency in ms, or raises UnreachableError."""
        import httpx

        url = f"{self.base_url}/{path.lstrip('/')}"
        started = time.perf_counter()
        try:
            response = self._client.get(path.lstrip("/"), params=params)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ConfigError(f"invalid Venice URL {mask_url(url)}: {exc}",
                              "set venice.base_url to an http:// or https:// URL") from exc
        except httpx.TransportError as exc:
            raise _unreachable(exc, url, self.settings) from exc
        return response, (time.perf_counter() - started) * 1000

    def probe(self, path: str | None = None) -> Probe:
        """One request to `path` (default: venice.ping_path), judged; never raises for the API's
        answers, only ConfigError for an unusable URL."""
        path = path or self.settings.ping_path
        url = mask_url(f"{self.base_url}/{path.lstrip('/')}")
        try:
            response, latency = self._request(path)
        except UnreachableError as exc:
            return Probe(url, "unreachable", message=exc.message, hint=exc.hint)
        body = _decode_json(response)
        probe = Probe(mask_url(str(response.url)), "ok", status=response.status_code,
                      latency_ms=round(latency, 3), flags=flags_of(body),
                      retry_after_s=parse_retry_after(response.headers.get("retry-after")))
        if isinstance(body, dict) and isinstance(body.get("success"), bool):
            probe.success = body["success"]
        if body is not _NOT_JSON:
            probe.items = count_items(body)
        if response.is_success and body is _NOT_JSON:
            kind = response.headers.get("content-type", "no content type")
            probe.outcome, probe.message = "error", f"HTTP {response.status_code} but the body is not JSON ({kind})"
            probe.hint = "check that venice.base_url points at the API (.../api), not a web page"
        elif not response.is_success or probe.success is False:
            probe.outcome = "error"
            probe.message = error_text(response.status_code, None if body is _NOT_JSON else body)
            probe.hint = _status_hint(response.status_code, probe.retry_after_s)
        return probe

    def get(self, resource: str, item_id: str | None = None, filters: Mapping[str, str] | None = None,
            limit: int | None = None, offset: int | None = None) -> Fetched:
        """Fetch a resource (or one record by id), normalised; raises cascade errors."""
        spec = RESOURCES.get(resource)
        if spec is None:
            raise UsageError(f"unknown resource {resource!r}",
                             f"choose one of: {', '.join(RESOURCES)}")
        if item_id is not None and item_id.strip() in ("", ".", ".."):
            raise UsageError(f"invalid id {item_id!r}", "give the record's id, e.g. a username")
        if item_id is not None and not spec.has_item_route:
            raise UsageError(f"{resource} cannot be fetched by id",
                             "fetch the collection and narrow it with --filter Field=value")
        path = spec.name if item_id is None else f"{spec.name}/{quote(item_id, safe='')}"
        params: dict[str, Any] = dict(filters or {})
        if limit is not None:
            params["limit"] = limit
        if offset is not None:
            params["offset"] = offset
        response, _ = self._request(path, params)
        body = _decode_json(response)
        if not response.is_success:
            raise RemoteError(error_text(response.status_code, None if body is _NOT_JSON else body),
                              _status_hint(response.status_code,
                                           parse_retry_after(response.headers.get("retry-after"))))
        if body is _NOT_JSON:
            raise RemoteError(f"HTTP {response.status_code} from {mask_url(str(response.url))} but the body is not JSON",
                              "check that venice.base_url points at the API (.../api), not a web page")
        if isinstance(body, dict) and body.get("success") is False:
            raise RemoteError(error_text(response.status_code, body), _status_hint(response.status_code, None))
        records, single = normalise(spec, body, by_id=item_id is not None)
        if limit is not None and not single:
            records = records[:limit]  # some routes ignore `limit`
        return Fetched(mask_url(str(response.url)), records, single, flags_of(body))


def _status_hint(status: int, retry_after: float | None) -> str:
    if status in (401, 403):
        return "set CASCADE_VENICE_API_KEY (or venice.api_key_file) to a token with access"
    if status == 429:
        wait = f"{retry_after:g} s" if retry_after is not None else "a minute"
        return f"the API allows 100 requests per minute; retry after {wait}"
    if status == 404:
        return "check the resource name and id"
    if status >= 500:
        return "the API failed on its side; try again later"
    return "the API rejected the request: check the path, the id and the filters"


def ping(bridge: VeniceBridge, path: str | None, count: int, interval: float,
         on_probe: Callable[[int, Probe], None] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> PingReport:
    """Probe `count` times, `interval` seconds apart; `on_probe(i, probe)` after each.

    Ctrl-C after the first probe ends the run early with what was measured (`interrupted`)."""
    probes: list[Probe] = []
    try:
        for index in range(1, count + 1):
            if index > 1:
                sleep(interval)
            probes.append(bridge.probe(path))
            if on_probe:
                on_probe(index, probes[-1])
    except KeyboardInterrupt:
        if not probes:
            raise
        return PingReport(bridge.shown_url, probes, interrupted=True)
    return PingReport(bridge.shown_url, probes)
