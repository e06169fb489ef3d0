"""The web dashboard in a real headless Chromium: a real `cascade serve` (the embedded in-memory
Redis on a free port, a token, the Venice bridge pointed at the stand-in) serves the page at `/`;
the page shows the live panels and the connection count, follows an event published through the
API into its tail, switches channel, and says it is retrying when the server goes away. The
screenshot is left in the test's temp directory (`dashboard.png`) as an artifact."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from browser_support import Browser, Page, require_chromium
from conftest import free_port
from hub_support import Serve, start_serve
from venice_standin import StandIn
from websockets.sync.client import connect

TOKEN = "dash-board-token"
STATUS_WORDS = {"ok", "degraded", "unreachable", "off"}


def text_of(page: Page, selector: str) -> str:
    return page.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def connections_at_least(page: Page, n: int, timeout: float = 15) -> int:
    """Wait until #hub-connections shows plain digits of at least `n`; returns the number."""
    return int(page.wait_for(
        "(function () { var t = (document.getElementById('hub-connections') || {}).textContent || '';"
        f" return /^[0-9]+$/.test(t) && +t >= {n} ? t : null; }})()",
        timeout, what=f"#hub-connections >= {n}"))


def publish(serve: Serve, channel: str, data: dict[str, str]) -> None:
    response = serve.post(f"/api/channels/{channel}/publish", json={"data": data},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text


def tail_shows(page: Page, marker: str, timeout: float = 10) -> None:
    page.wait_for(f"document.getElementById('tail').textContent.indexOf({json.dumps(marker)}) >= 0",
                  timeout, what=f"{marker} in #tail")


def test_dashboard_live_in_chromium(tmp_path: Path, standin: StandIn) -> None:
    require_chromium()
    # snapshots 4 times a second: the page sees each change sooner (the default is 1 s)
    env = {"CASCADE_SERVE_TOKEN": TOKEN, "CASCADE_VENICE_BASE_URL": standin.url("ok"),
           "CASCADE_MONITOR_INTERVAL": "0.25"}
    serve = start_serve(tmp_path, "--redis-url", f"redis://127.0.0.1:{free_port()}/0", env=env)
    with serve, Browser.launch(tmp_path / "chromium") as browser:
        # a browser gets the page at /, an API client still gets the JSON index
        assert serve.get("/", headers={"Accept": "application/json"}).json()["name"] == "cascade hub"
        page = browser.open(f"{serve.http_url}/?token={TOKEN}")

        # the page's own tail socket is a hub connection
        before = connections_at_least(page, 1)

        # every panel gets a status word; these sources are all up
        words = page.wait_for(
            "(function () { var w = ['redis', 'hub', 'venice'].map(function (n) {"
            " return document.getElementById(n + '-status').textContent; });"
            " return w.every(function (x) { return x !== 'waiting'; }) ? w : null; })()",
            10, what="three status words")
        assert set(words) <= STATUS_WORDS, words
        assert words == ["ok", "ok", "ok"], (words, text_of(page, "#panels"))
        assert text_of(page, "#overall-status") == "ok"

        # the picker lists the hub's channels, the first chosen, and the tail follows it
        hub = serve.get("/api/monitor").json()["sources"]["hub"]
        channels = [c["channel"] for c in hub["channels"]]
        assert page.evaluate("Array.from(document.getElementById('tail-channel').options, o => o.value)") == channels
        first = page.evaluate("document.getElementById('tail-channel').value")
        assert first == channels[0]

        # one more WebSocket client: the count rises
        with connect(serve.ws(f"/{first}?token={TOKEN}"), open_timeout=10, close_timeout=2,
                     compression=None, proxy=None) as extra:
            assert json.loads(extra.recv(timeout=10))["type"] == "connected"
            connections_at_least(page, before + 1)

            # an event published through the API appears in the tail, with its JSON data
            marker = f"marker-{uuid.uuid4()}"
            publish(serve, first, {"marker": marker})
            tail_shows(page, marker)
            assert json.dumps({"marker": marker}, separators=(",", ":")) in text_of(page, "#tail li")

        # switching channel: the old socket closes, a new one opens; the tail shows the new channel
        second = channels[1]
        page.evaluate(f"(function () {{ var s = document.getElementById('tail-channel');"
                      f" s.value = {json.dumps(second)}; s.dispatchEvent(new Event('change')); }})()")
        page.wait_for(f"document.getElementById('tail-state').textContent.indexOf('live on ' + {json.dumps(second)}) >= 0",
                      10, what=f"the tail live on {second}")
        other = f"other-{uuid.uuid4()}"
        publish(serve, second, {"marker": other})
        tail_shows(page, other)
        assert marker not in text_of(page, "#tail")

        # a snapshot taken after the publishes, for the artifact
        page.wait_for("document.getElementById('hub-body').textContent.indexOf('/publish') >= 0",
                      10, what="the publish route in the HTTP table")
        shot = page.screenshot(tmp_path / "dashboard.png")
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, len(png)

        # nothing but this server was asked for: the page, its two WebSockets, the data: icon
        requested = page.requested
        monitor_ws = "ws" + serve.http_url.removeprefix("http") + "/api/monitor/ws"
        assert any(u.startswith(monitor_ws) for u in requested), requested
        off_host = [u for u in requested if not u.startswith("data:") and urlsplit(u).hostname != "127.0.0.1"]
        assert off_host == [], off_host
        assert all(f"token={TOKEN}" in u for u in requested if u.startswith("ws")), requested

        # the server goes away: the page says it is retrying, and threw nothing all along
        assert serve.stop() == 0
        page.wait_for("document.getElementById('conn').textContent.indexOf('disconnected') >= 0",
                      10, what="the disconnected line")
        assert "retrying" in text_of(page, "#conn")
        assert page.errors == []
