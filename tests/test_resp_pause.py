"""CLIENT PAUSE holds commands back on both engines (WRITE: only writes; ALL: everything)."""

from __future__ import annotations

import time

import pytest

from resp_support import Pair


@pytest.mark.parametrize("mode", ["WRITE", "ALL"])
def test_client_pause_holds_commands_until_it_ends(pair: Pair, mode: str) -> None:
    other = pair.connect()
    try:
        for client in (pair.real, pair.mem):
            assert client.call("CLIENT", "PAUSE", "400", mode) == ("+", "OK")
            started = time.monotonic()
            other_client = other.real if client is pair.real else other.mem
            other_client.send("GET", "k")
            read_waited = _answer_time(other_client, started)
            other_client.send("SET", "k", "v")
            write_waited = _answer_time(other_client, started)
            assert write_waited >= 0.3, f"{mode}: the write was not held back"
            if mode == "WRITE":
                assert read_waited < 0.2, "a read waited under PAUSE WRITE"
            else:
                assert read_waited >= 0.3, "a read ran under PAUSE ALL"
    finally:
        other.close()


def test_client_unpause_releases_held_commands(pair: Pair) -> None:
    other = pair.connect()
    try:
        for client, held in ((pair.real, other.real), (pair.mem, other.mem)):
            client.call("CLIENT", "PAUSE", "5000", "WRITE")
            started = time.monotonic()
            held.send("SET", "k", "v")
            time.sleep(0.1)
            client.call("CLIENT", "UNPAUSE")
            assert _answer_time(held, started) < 2
    finally:
        other.close()


def _answer_time(client: object, started: float) -> float:
    reply = client.read(timeout=5)  # type: ignore[attr-defined]
    assert reply[0] != "-", reply
    return time.monotonic() - started
