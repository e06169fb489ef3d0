"""`cascade serve`'s dashboard side, over real HTTP and WebSocket connections: the page at `/`
for browsers (self-contained, locked down by its Content-Security-Policy), the JSON index for
API clients, `GET /api/monitor`, the live feed `/api/monitor/ws`, and `/api/clients` sorting.
(The page itself runs in a real Chromium in test_dashboard_browser.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_support import Serve, start_serve, wait_for
from venice_standin import StandIn
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

def feed_url(serve: Serve) -> str:
    return serve.http_url.replace("http://", "ws://") + "/api/monitor/ws"


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def venice() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, venice: StandIn) -> Iterator[Serve]:
    """The default serve: the embedded in-memory Redis on a free port, Venice at the stand-in."""
    from conftest import free_port

    tmp = tmp_path_factory.mktemp("dashboard")
    server = start_serve(tmp, "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "--allow-origin",
                         "http://good.example", env={"CASCADE_VENICE_BASE_URL": venice.url("ok"),
                                                     "CASCADE_MONITOR_INTERVAL": "0.2"})
    yield server
    server.stop()


def test_browsers_get_the_page_and_api_clients_the_index(serve: Serve) -> None:
    page = serve.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "accept" in page.headers["vary"].lower()
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    html = page.text
    assert "<script" in html and "/api/monitor/ws" in html
    # Self-contained: nothing is fetched from anywhere else (no URL with a scheme to load from).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html, re.IGNORECASE)
    for accept in (None, "application/json", "*/*", "application/json, text/html"):
        index = serve.get("/", headers={"Accept": accept} if accept else {})
        assert index.headers["content-type"] == "application/json", accept
        assert "accept" in index.headers["vary"].lower()
        body = index.json()
        assert body["dashboard"] == serve.http_url + "/" and body["monitor_ws"].endswith("/api/monitor/ws")


def test_api_monitor_gives_one_snapshot_of_every_source(serve: Serve, venice: StandIn) -> None:
    with connect(serve.ws("/consciousness-stream")) as ws:
        ws.recv(timeout=5)
        snap = serve.get("/api/monitor").json()
        assert snap["type"] == "snapshot" and set(snap["sources"]) == {"redis", "hub", "venice"}
        hub = wait_for(lambda: (s := serve.get("/api/monitor").json()["sources"]["hub"])["connections"] == 1 and s,
                       what="the hub panel to count the client")
        assert hub["status"] == "ok" and hub["url"] == "this server"
        assert {c["channel"]: c["subscribers"] for c in hub["channels"]}["consciousness-stream"] == 1
    redis = snap["sources"]["redis"]
    assert (redis["status"], redis["engine"]) == ("ok", "memory")
    venice_panel = wait_for(lambda: (v := serve.get("/api/monitor").json()["sources"]["venice"])["status"] != "pending"
                            and v, what="the first Venice probe")
    assert venice_panel["status"] == "ok" and venice_panel["url"] == venice.url("ok") + "/activities?limit=1"


def test_the_live_feed_streams_snapshots_with_rates(serve: Serve) -> None:
    with connect(feed_url(serve)) as feed:
        first = json.loads(feed.recv(timeout=5))
        assert first["type"] == "snapshot" and first["interval_s"] == 0.2
        serve.post("/api/channels/cascade-events/publish", json={"data": {"n": 1}})

        def published() -> bool:
            snap = json.loads(feed.recv(timeout=5))
            events = {c["channel"]: c for c in snap["sources"]["hub"]["channels"]}["cascade-events"]
            return events["published_per_sec"] is not None and events["published_per_sec"] > 0
        wait_for(published, what="a snapshot with the publish in its rate")


def test_the_live_feed_refuses_origins_off_the_list(serve: Serve) -> None:
    with pytest.raises(InvalidStatus):
        connect(feed_url(serve), origin="http://evil.example")
    with connect(feed_url(serve), origin="http://good.example") as feed:
        assert json.loads(feed.recv(timeout=5))["type"] == "snapshot"
    # The server's own origin (its dashboard page) is allowed whatever the list says.
    with connect(feed_url(serve), origin=serve.http_url) as feed, \
            connect(serve.ws("/cascade-events"), origin=serve.http_url) as tail:
        assert json.loads(feed.recv(timeout=5))["type"] == "snapshot"
        assert json.loads(tail.recv(timeout=5))["type"] == "connected"
    with pytest.raises(InvalidStatus):
        connect(serve.ws("/cascade-events"), origin="http://evil.example")
    # ... but only reached by IP address or localhost: a rebinding site has Origin equal to Host too.
    port = serve.http_url.rsplit(":", 1)[1]
    for url in (feed_url(serve), serve.ws("/cascade-events")):
        with pytest.raises(InvalidStatus):
            connect(url, origin=f"http://evil.example:{port}",
                    additional_headers={"Host": f"evil.example:{port}"})
    with connect(serve.ws("/cascade-events").replace("127.0.0.1", "localhost"),
                 origin=f"http://localhost:{port}") as local:
        assert json.loads(local.recv(timeout=5))["type"] == "connected"


def test_viewers_over_the_limit_are_closed_with_1013(serve: Serve) -> None:
    """(The limit is 100; the test connects 100 viewers and one more.)"""
    from contextlib import ExitStack

    from websockets.exceptions import ConnectionClosed

    with ExitStack() as viewers:
        for _ in range(100):
            viewers.enter_context(connect(feed_url(serve)))
        with connect(feed_url(serve)) as extra, pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


@pytest.mark.parametrize("accept,html", [
    (None, False), ("*/*", False), ("application/json", False), ("text/html", True),
    (BROWSER_ACCEPT, True), ("application/json, text/html", False), ("text/html, application/json", True),
    ("text/html;q=0.1, application/json", False), ("text/html;q=0", False), ("text/html;q=oops", False),
    ("text/html;q=0.5, */*;q=0.9", False),
])
def test_page_or_index_by_accept(accept: str | None, html: bool) -> None:
    from cascade_cli.hub.dashboard import wants_html

    assert wants_html(accept) is html


def test_the_dashboard_without_redis_says_why(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--bus", "local", "--no-venice-proxy") as server:
        sources = server.get("/api/monitor").json()["sources"]
        assert sources["redis"] == {"status": "off", "reason": "this server runs with --bus local"}
        assert sources["venice"]["status"] == "off" and sources["hub"]["bus"] == "local"


def test_clients_sorted_by_queue_depth_and_limited(serve: Serve) -> None:
    with connect(serve.ws("/cascade-events")) as a, connect(serve.ws("/cascade-events")) as b:
        a.recv(timeout=5)
        b.recv(timeout=5)
        listed = serve.get("/api/clients", params={"sort": "queue_depth", "limit": "1"}).json()["clients"]
        assert len(listed) == 1 and "queue_depth" in listed[0]
    for params in ({"sort": "name"}, {"limit": "0"}, {"limit": "x"}):
        answer = serve.get("/api/clients", params=params)
        assert answer.status_code == 422 and "error" in answer.json()
