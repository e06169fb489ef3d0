"""A local stand-in for the serenissima.ai API, answering with the shapes in shared/VENICE_API.md.

The first path segment picks a behaviour, so one server serves every scenario:
`http://127.0.0.1:PORT/<mode>/api/<route>`. Modes: ok, auth (401 unless the right Bearer
token), forbidden (403), ratelimit (429, Retry-After: 30), flaky (503 twice per route, then ok),
throttled (429 Retry-After: 1 once per route, then ok), error500, failure (200 with
success: false), slow (answers after 3 s), nonjson (an HTML page), drop (closes the connection
without answering), flagged (answers carry _fallback / _cached / _stale). A suffix after a dot
("flaky.test3") keeps the mode and gives a test its own retry counters.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "s3cret-venice-token"

CITIZENS = [
    {"username": "NLR", "firstName": "Niccolo", "lastName": "Lombardi", "socialClass": "Nobili",
     "isAi": False, "ducats": 125000.5, "influence": 420, "position": {"lat": 45.43, "lng": 12.33},
     "corePersonality": ["Shrewd", "Proud", "Patient"], "worksFor": None,
     "workplace": {"name": "Rialto Bank", "type": "bank", "buildingId": "bld_1"}},
    {"username": "marco_polo", "firstName": "Marco", "lastName": "Polo", "socialClass": "Cittadini",
     "isAi": True, "ducats": 5400, "influence": 35, "position": "45.44,12.32",
     "corePersonality": None, "worksFor": "NLR", "workplace": None},
    {"username": "anna_b", "firstName": "Anna", "lastName": "Bellini", "socialClass": "Popolani",
     "isAi": True, "ducats": 310, "influence": 2, "position": None, "corePersonality": None,
     "worksFor": "NLR", "workplace": None},
]
ACTIVITIES = [
    {"activityId": f"act_{i}", "citizen": "marco_polo", "type": "goto_work", "status": "created",
     "startDate": "2026-11-26T08:00:00Z", "endDate": "2026-11-26T09:00:00Z", "path": [],
     "notes": None, "fromBuilding": "bld_2", "toBuilding": "bld_1"}
    for i in range(1, 4)
]
BUILDINGS = [
    {"id": f"rec{i}", "buildingId": f"bld_{i}", "type": "bakery" if i % 2 else "bank",
     "landId": "land_1", "owner": "NLR", "occupant": "anna_b", "category": "business",
     "runBy": "NLR", "position": {"lat": 45.4, "lng": 12.3}, "name": f"Building {i}",
     "rentPrice": 100 * i, "leasePrice": 10 * i, "isConstructed": True, "wages": 20}
    for i in range(1, 6)
]
CONTRACTS = [{"id": "rc1", "contractId": "ct_1", "type": "public_sell", "buyer": None,
              "seller": "NLR", "resourceType": "bread", "resourceName": "Bread", "price": 12.5,
              "amount": 40, "status": "active", "createdAt": "2026-11-25T10:00:00Z"}]
PROBLEMS = [{"id": "rp1", "problemId": "prob_1", "citizen": "anna_b", "assetType": "building",
             "asset": "bld_3", "severity": "high", "status": "active", "type": "no_workplace",
             "title": "Unemployed", "description": "No job", "solutions": "Find work"}]
RESOURCES = [{"id": "res_1", "type": "bread", "name": "Bread", "owner": "NLR", "count": 40},
             {"id": "res_2", "type": "flour", "name": "Flour | fine\nmilled", "count": 9}]  # no owner
LANDS = [{"landId": "land_1", "historicalName": "Sestiere di San Marco", "owner": "NLR"}]
RELEVANCIES = [{"relevancyId": "rel_1", "relevantToCitizen": "NLR", "targetCitizen": "anna_b",
                "assetType": "citizen", "score": 0.7}]
MESSAGES = [{"messageId": "msg_1", "sender": "NLR", "receiver": "anna_b", "type": "message",
             "content": "Buongiorno"}]
ECONOMY = {"totalDucats": 130710.5, "citizenCount": 3, "transactionCount": 12, "loanCount": 1,
           "lastUpdated": "2026-11-26T12:00:00Z"}


@dataclass
class Seen:
    """One request the stand-in received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float


def _filtered(records: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """PascalCase query parameters filter the camelCase field of the same name."""
    for name, values in query.items():
        if name in ("limit", "offset", "type", "latest", "receiver") or not name[:1].isupper():
            continue
        field = name[0].lower() + name[1:]
        records = [r for r in records if str(r.get(field)).lower() == values[-1].lower()]
    return records


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the slow mode does this on purpose)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        self.server.record(Seen(parts.path, query, dict(self.headers), time.monotonic()))
        if len(segments) < 3 or segments[1] != "api":
            self._send(404, {"success": False, "error": "Not found"})
            return
        mode, route = segments[0].partition(".")[0], segments[2:]  # "flaky.t1" acts as "flaky"
        key = "/".join(segments)
        if mode == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if mode == "slow":
            time.sleep(3)
        if mode == "nonjson":
            self._send(200, "<html><body>Venice</body></html>", content_type="text/html")
            return
        if mode == "auth" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "Authentication required", "code": "AUTH_REQUIRED"})
            return
        if mode == "forbidden":
            self._send(403, {"error": "Access denied to this citizen", "code": "CITIZEN_ACCESS_DENIED"})
            return
        if mode == "ratelimit":
            self._send(429, {"error": "Too many requests", "code": "RATE_LIMIT_EXCEEDED"},
                       {"Retry-After": "30"})
            return
        if mode == "flaky" and self.server.count(key) <= 2:
            self._send(503, {"success": False, "error": "Service unavailable"})
            return
        if mode == "throttled" and self.server.count(key) <= 1:
            self._send(429, {"error": "Too many requests", "code": "RATE_LIMIT_EXCEEDED"},
                       {"Retry-After": "1"})
            return
        if mode == "error500":
            self._send(500, {"success": False, "error": "Internal error", "details": "Airtable down"})
            return
        if mode == "failure":
            self._send(200, {"success": False, "error": "Invalid filter", "details": "Unknown field"})
            return
        status, body = self._route(route, query)
        if mode == "flagged" and isinstance(body, dict):
            body.update({"_fallback": True, "_cached": True, "_stale": True})
        self._send(status, body)

    def do_POST(self) -> None:  # noqa: N802
        """Only POST /messages/send exists; every mode applies as for GET."""
        self.posted = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.do_GET()

    def _route(self, route: list[str], query: dict[str, list[str]]) -> tuple[int, Any]:
        name, item = route[0], (route[1] if len(route) > 1 else None)
        if self.command == "POST":
            if route != ["messages", "send"]:
                return 405, {"success": False, "error": "Method not allowed"}
            return 200, {"success": True, "message": {"messageId": "msg_new", **self.posted}}
        limit = int(query["limit"][-1]) if "limit" in query else None
        offset = int(query.get("offset", ["0"])[-1])

        def page(records: list[dict[str, Any]], default_limit: int | None) -> list[dict[str, Any]]:
            records = _filtered(records, query)[offset:]
            cap = limit if limit is not None else default_limit
            return records if cap is None else records[:cap]

        by_key = {"citizens": ("username", CITIZENS, "citizen"),
                  "buildings": ("buildingId", BUILDINGS, "building"),
                  "problems": ("problemId", PROBLEMS, "problem")}
        if item is not None and name in by_key:
            field, records, singular = by_key[name]
            found = [r for r in records if r[field] == item]
            if not found:
                return 404, {"success": False, "error": f"{singular.capitalize()} not found: {item}"}
            body = {singular: found[0]}
            return 200, body if name == "buildings" else {"success": True, **body}
        if name == "citizens":
            return 200, {"success": True, "citizens": page(CITIZENS, None)}
        if name == "activities":
            return 200, {"success": True, "activities": page(ACTIVITIES, 100)}
        if name == "buildings":  # no success key; ignores limit
            return 200, {"buildings": _filtered(BUILDINGS, query)}
        if name == "contracts":
            return 200, {"success": True, "contracts": page(CONTRACTS, None)}
        if name == "problems":
            return 200, {"success": True, "problems": page(PROBLEMS, None)}
        if name == "resources":  # a bare array
            return 200, page(RESOURCES, None)
        if name == "lands":
            return 200, {"success": True, "lands": page(LANDS, None)}
        if name == "relevancies" and item is not None:
            return 200, {"success": True, "citizen": item, "relevancies": RELEVANCIES, "count": 1}
        if name == "relevancies":
            return 200, {"success": True, "relevancies": RELEVANCIES}
        if name == "messages":
            if "type" not in query:
                return 400, {"success": False, "error": "type is required"}
            return 200, {"success": True, "message": MESSAGES}
        if name == "economy":
            return 200, {"success": True, "economy": dict(ECONOMY)}
        return 404, {"success": False, "error": f"Unknown route /{'/'.join(route)}"}


class StandIn(ThreadingHTTPServer):
    """The stand-in server. Call `start()`, use `url(mode)`, read `requests`, call `stop()`."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: list[Seen] = []
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def count(self, key: str) -> int:
        """How many times `key` was asked for, this request included."""
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}/api"

    def seen(self, mode: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(f"/{mode}/")]

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
