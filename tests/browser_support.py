"""Drive Debian's headless Chromium over the Chrome DevTools Protocol, for browser tests.

`chromium_binary()` finds the browser (None when missing); `require_chromium()` skips the test
then, or fails it under CASCADE_TEST_REQUIRE_CHROMIUM=1 (as .ci/run sets). `Browser.launch(dir)`
starts it with its own profile in `dir`; `browser.open(url)` loads a page and returns a `Page`
with `evaluate(js)`, `wait_for(js_predicate, timeout)`, `screenshot(path)` and what the page
asked the network for (`page.requested`); `browser.close()` (or `with`) ends the process group.
The protocol goes over one WebSocket (the `websockets` sync client), with flat sessions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import pytest

REQUIRE_CHROMIUM = os.environ.get("CASCADE_TEST_REQUIRE_CHROMIUM") == "1"
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--window-size=1280,1000", "--remote-debugging-port=0")


class BrowserError(AssertionError):
    """The browser or the page did not do what the test asked."""


def chromium_binary() -> str | None:
    """Path of a Chromium or Chrome executable, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium path; skips the test when it is missing, or fails it when CI requires one."""
    found = chromium_binary()
    if found:
        return found
    reason = "chromium is not installed (apt-get install chromium); needed for the browser tests"
    if REQUIRE_CHROMIUM:
        pytest.fail(f"CASCADE_TEST_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)


class Browser:
    """A running headless Chromium and its DevTools connection."""

    def __init__(self, proc: subprocess.Popen[bytes], profile: Path, ws: Any, own_profile: bool) -> None:
        self.proc = proc
        self.profile = profile
        self._ws = ws
        self._own_profile = own_profile
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    @classmethod
    def launch(cls, profile: Path | None = None, binary: str | None = None,
               timeout: float = 30) -> Browser:
        """Start Chromium with a fresh profile in `profile` (a temp dir when None) and connect."""
        from websockets.sync.client import connect

        binary = binary or require_chromium()
        own = profile is None
        profile = Path(tempfile.mkdtemp(prefix="cascade-chromium-")) if profile is None else profile
        profile.mkdir(parents=True, exist_ok=True)
        with open(profile / "chromium.log", "wb") as log:
            proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while len(lines) < 2:
            if port_file.exists():
                lines = port_file.read_text().split()
            if len(lines) >= 2:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                _kill_group(proc)
                tail = (profile / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium did not open its DevTools port (exit {proc.poll()}): {tail}")
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        try:
            # entered here and exited by close(): a connection held across calls
            ws = connect(url, max_size=None, open_timeout=timeout, proxy=None, ping_interval=None).__enter__()
        except Exception:
            _kill_group(proc)
            raise
        return cls(proc, profile, ws, own)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:
        """Send one command and return its result; protocol events read meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline - time.monotonic(), method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def _receive(self, left: float, what: str) -> dict[str, Any]:
        if left <= 0:
            raise BrowserError(f"no answer from chromium to {what}")
        try:
            return json.loads(self._ws.recv(timeout=left))
        except TimeoutError:
            raise BrowserError(f"no answer from chromium to {what}") from None

    def drain(self) -> None:
        """Read the protocol events already waiting, without blocking."""
        while True:
            try:
                message = json.loads(self._ws.recv(timeout=0))
            except TimeoutError:
                return
            if "method" in message:
                self._events.append(message)

    def events(self, session: str, method: str) -> list[dict[str, Any]]:
        """The params of the events `method` of `session` seen so far."""
        self.drain()
        return [e.get("params", {}) for e in self._events
                if e.get("sessionId") == session and e.get("method") == method]

    def open(self, url: str, timeout: float = 20) -> Page:
        """A new tab that records its network requests, navigated to `url` and loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        page.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'",
                      timeout, what=f"{url} to load")
        return page

    def close(self, timeout: float = 5) -> None:
        """Ask the browser to quit, then end its process group; bounded waits."""
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed, OSError, subprocess.TimeoutExpired):
            self._ws.send(json.dumps({"id": 0, "method": "Browser.close"}))
            self.proc.wait(timeout)
        with contextlib.suppress(ConnectionClosed, OSError):
            self._ws.close()
        _kill_group(self.proc, timeout)
        if self._own_profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab, attached with its own protocol session."""

    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def evaluate(self, expression: str, timeout: float = 10) -> Any:
        """The JSON value of `expression` in the page (promises awaited); raises on a JS error."""
        result = self.browser.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
            "timeout": int(timeout * 1000)}, session=self.session, timeout=timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page raised evaluating {expression!r}: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, predicate: str, timeout: float = 10, interval: float = 0.05,
                 what: str | None = None) -> Any:
        """Poll the JS `predicate` until it is truthy and return its value; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(predicate)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout} s waiting for {what or predicate}")
            time.sleep(interval)

    def screenshot(self, path: Path, full_page: bool = True, max_height: int = 4000) -> Path:
        """Save a PNG of the page to `path`: the whole page (up to `max_height` CSS pixels) or
        just the viewport."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1})
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    @property
    def requested(self) -> list[str]:
        """Every URL the page asked for so far: HTTP requests and WebSocket handshakes."""
        urls = [e.get("request", {}).get("url", "")
                for e in self.browser.events(self.session, "Network.requestWillBeSent")]
        urls += [e.get("url", "") for e in self.browser.events(self.session, "Network.webSocketCreated")]
        return urls

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions the page threw so far."""
        return [json.dumps(e.get("exceptionDetails", {}))[:500]
                for e in self.browser.events(self.session, "Runtime.exceptionThrown")]


def _kill_group(proc: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """SIGTERM then SIGKILL the process group Chromium leads; waits at most about 2 * timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout)
            # the leader is gone: still end the renderers and helpers left in its group
            if sig == signal.SIGTERM:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            _wait_group_gone(proc.pid, timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait (bounded) until every process of the group has exited (zombies left for init count
    as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
