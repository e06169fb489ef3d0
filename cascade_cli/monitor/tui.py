"""The full-screen live view: redraw every interval, on a source's first reading and on resize;
`q` quits, Ctrl-C too. Call `run(monitor, console)` from a terminal; it returns the exit
code (0 for `q`, 130 for Ctrl-C)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any

from cascade_cli.monitor.render import screen
from cascade_cli.monitor.sources import Monitor

QUIT_KEYS = {"q", "Q"}


@contextlib.contextmanager
def _keys_unbuffered(fd: int) -> Iterator[None]:
    """Keys arrive one by one and unechoed; the terminal is restored on the way out."""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:   # stdin is not a terminal: no keys, Ctrl-C still quits
        yield
        return
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def run(monitor: Monitor, console: Any) -> int:
    """Show the live view until `q` or Ctrl-C; returns the exit code."""
    from rich.live import Live

    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    done: asyncio.Future[int] = loop.create_future()

    def finish(code: int) -> None:
        if not done.done():
            done.set_result(code)
        wake.set()

    stdin = sys.stdin.fileno()

    def on_key() -> None:
        try:
            data = os.read(stdin, 64).decode(errors="replace")
        except OSError:
            data = ""
        if not data:   # end of input: keep running until Ctrl-C
            loop.remove_reader(stdin)
            return
        if any(ch in QUIT_KEYS for ch in data):
            finish(0)
        else:
            wake.set()

    def draw() -> Any:
        width, height = console.size
        return screen(monitor.snapshot(), width, height)

    monitor.start()
    loop.add_signal_handler(signal.SIGWINCH, wake.set)
    loop.add_signal_handler(signal.SIGINT, finish, 130)
    loop.add_signal_handler(signal.SIGTERM, finish, 143)
    try:
        with _keys_unbuffered(stdin), Live(draw(), console=console, screen=True, auto_refresh=False,
                                            redirect_stdout=False, redirect_stderr=False) as live:
            with contextlib.suppress(OSError, ValueError):
                loop.add_reader(stdin, on_key)
            next_draw = loop.time() + monitor.interval
            while not done.done():
                # Redraw once per interval (readings in between wait for it), at once on a key or
                # a resize, and as soon as a source's first reading arrives.
                waiters = [asyncio.ensure_future(wake.wait())]
                if any(p.get("status") == "pending" for p in monitor.panels.values()):
                    monitor.changed.clear()
                    waiters.append(asyncio.ensure_future(monitor.changed.wait()))
                await asyncio.wait(waiters, timeout=max(0.0, next_draw - loop.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                wake.clear()
                if done.done():
                    break
                live.update(draw(), refresh=True)
                if loop.time() >= next_draw:
                    next_draw = loop.time() + monitor.interval
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(stdin)
    finally:
        for sig in (signal.SIGWINCH, signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await monitor.aclose()
    return done.result()
