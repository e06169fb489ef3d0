"""Run the real CLI on a pseudo-terminal and read its screen as a terminal would show it.

`Terminal(args, env, cols, rows)` starts `cascade ARGS` with the pty as its stdin, stdout and
stderr; pyte (a VT100 emulator) keeps the screen. `wait_for(text)` pumps output until the
text is on screen, `resize()` changes the window size and signals SIGWINCH, `send()`
types keys, `close()` ends the process. Only for tests.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable

import pyte
from conftest import cascade_command


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str], cols: int = 100, rows: int = 40) -> None:
        self.leader, follower = os.openpty()
        _set_size(follower, cols, rows)
        self.proc = subprocess.Popen([*cascade_command(), *args], stdin=follower, stdout=follower,
                                     stderr=follower, env={**env, "TERM": "xterm-256color"},
                                     start_new_session=True, close_fds=True)
        os.close(follower)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()

    def pump(self, timeout: float = 0.1) -> bool:
        """Feed what the program wrote to the screen; False once the pty is closed."""
        ready, _, _ = select.select([self.leader], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.leader, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def settle(self, quiet: float = 0.1) -> bool:
        """Pump until the program has written nothing for `quiet` seconds, so the screen holds
        whole frames (a frame can reach the pty in several reads); False once the pty is closed."""
        while True:
            ready, _, _ = select.select([self.leader], [], [], quiet)
            if not ready:
                return True
            if not self.pump(0):
                return False

    def wait_for(self, check: str | Callable[[str], bool], timeout: float = 15) -> str:
        """Pump until `check` (a substring, or a predicate of the screen text) holds on a settled
        screen; fails with the screen after `timeout` seconds."""
        predicate = (lambda screen: check in screen) if isinstance(check, str) else check
        deadline = time.monotonic() + timeout
        while True:
            open_ = self.settle()
            screen = self.text()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {check!r}; the screen:\n{screen}")
            if not open_ and self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {check!r}; the screen:\n{screen}")

    def colour_of(self, word: str, on_line_with: str) -> str | None:
        """The foreground colour (pyte's name, e.g. "green") of `word` on the first line that
        shows `on_line_with`; None when no such line is on screen."""
        for y, line in enumerate(self.screen.display):
            if on_line_with in line:
                x = line.find(word, line.find(on_line_with))
                return self.screen.buffer[y][x].fg if x >= 0 else None
        return None

    def resize(self, cols: int, rows: int) -> None:
        _set_size(self.leader, cols, rows)
        self.screen.resize(rows, cols)
        self.proc.send_signal(signal.SIGWINCH)   # what the kernel sends a terminal's foreground job

    def send(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def wait_exit(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        if self.proc.poll() is None:
            raise AssertionError(f"still running {timeout:g} s later; the screen:\n{self.text()}")
        for _ in range(100):   # what it wrote on the way out (leaving the alternate screen)
            ready, _, _ = select.select([self.leader], [], [], 0.05)
            if not ready or not self.pump(0):
                break
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.leader)
