"""The pure history core of the hub: event ids, bounds, entries -> event messages, resume steps,
and the local bus's in-process stream (Redis's stream rules, checked against real Redis in
test_serve_history.py)."""

from __future__ import annotations

import json

import pytest

from cascade_cli.hub import history, messages
from cascade_cli.hub.history import Bounds, LocalStream, format_id, parse_id, resume_step


def test_ids_parse_and_order() -> None:
    assert parse_id("1733360000000-3") == (1733360000000, 3)
    assert parse_id(b"17-0") == (17, 0)
    assert parse_id("42") == (42, 0)
    assert format_id(parse_id("9-12")) == "9-12"
    assert parse_id("10-0") > parse_id("9-99") > parse_id("9-2")
    assert parse_id("18446744073709551615-18446744073709551615") == (2 ** 64 - 1, 2 ** 64 - 1)
    for bad in ("", "-", "1-", "-1", "1-2-3", "a-1", "1.5", " 1-1", "18446744073709551616-0", "1-" + "9" * 21):
        with pytest.raises(ValueError, match="event id|out of range"):
            parse_id(bad)


def test_since_is_checked_in_ops() -> None:
    op = messages.parse_op('{"op":"subscribe","channel":"c","since":"5-1"}')
    assert (op.op, op.channel, op.since) == ("subscribe", "c", "5-1")
    assert messages.parse_op('{"op":"subscribe","channel":"c"}').since is None
    for since in ('"x"', "5", "[]"):
        with pytest.raises(messages.BadOp, match="since"):
            messages.parse_op(f'{{"op":"subscribe","channel":"c","since":{since}}}')


def test_channel_bounds_and_min_id() -> None:
    bounds = history.channel_bounds(Bounds(1000, 60), ["a=5/0", "b=7/2.5"])
    assert bounds("a") == Bounds(5, 0.0)
    assert bounds("b") == Bounds(7, 2.5)
    assert bounds("other") == Bounds(1000, 60)
    assert Bounds(5, 0).min_id(10_000) is None
    assert Bounds(5, 2.5).min_id(10_000) == (7_500, 0)
    assert Bounds(5, 60).min_id(1_000) == (0, 0)


def test_entry_message_is_the_event_json() -> None:
    prefix = history.event_prefix(messages.dumps("cascade-events"))
    data = messages.data({"text": "héllo ✓", "n": [1, None]})
    payload = history.entry_message(prefix, b"12-3", {b"t": b"1.5", b"d": data})
    assert json.loads(payload) == {"type": "event", "channel": "cascade-events", "id": "12-3", "ts": 1.5,
                                   "data": {"text": "héllo ✓", "n": [1, None]}}
    assert payload == messages.event("cascade-events", "12-3", 1.5, {"text": "héllo ✓", "n": [1, None]})
    with pytest.raises(ValueError, match="fields"):
        history.entry_message(prefix, "1-1", {b"x": b"1"})


def page(*ids: str) -> list[tuple[tuple[int, int], bytes]]:
    return [(parse_id(i), i.encode()) for i in ids]


def test_resume_step_stops_at_the_live_cursor() -> None:
    # the page ran past the cursor (entries added after the live read): those come live later
    step = resume_step((1, 0), page("2-0", "3-0", "4-0"), full=False, live_cursor=(3, 0))
    assert [p for _, p in step.entries] == [b"2-0", b"3-0"]
    assert step.done and step.after == (3, 0)


def test_resume_step_pages_until_the_cursor() -> None:
    step = resume_step((1, 0), page("2-0", "3-0"), full=True, live_cursor=(9, 0))
    assert [p for _, p in step.entries] == [b"2-0", b"3-0"]
    assert not step.done and step.after == (3, 0)
    step = resume_step(step.after, page("4-0", "9-0"), full=True, live_cursor=(9, 0))
    assert step.done and [p for _, p in step.entries] == [b"4-0", b"9-0"]


def test_resume_step_client_ahead_or_nothing_new() -> None:
    step = resume_step((9, 0), [], full=False, live_cursor=(5, 0))
    assert step.done and step.entries == [] and step.after == (9, 0)
    step = resume_step((5, 0), [], full=False, live_cursor=(5, 0))
    assert step.done and step.entries == []


def test_gap_before() -> None:
    gap = history.gap_before
    assert not gap((5, 0), [(5, 0), (6, 0)], (6, 0))    # since still kept: nothing after it went
    assert gap((5, 0), [(7, 0)], (7, 0))                 # since went, later ones are kept
    assert not gap((5, 0), [], (5, 0))                   # nothing after since, nothing delivered after
    assert not gap((9, 0), [], (5, 0))                   # the client is ahead of this instance
    assert gap((5, 0), [], (8, 0))                       # events after since were delivered, then trimmed
    assert not gap((5, 0), [], None)


def test_local_stream_ids_never_go_back_and_trim() -> None:
    now = [1000]
    stream = LocalStream(lambda: now[0])
    bounds = Bounds(3, 0)
    ids = [stream.add(b"1", b"%d" % n, bounds) for n in range(2)]
    assert ids == [(1000, 0), (1000, 1)]
    now[0] = 900                       # the wall clock stepped back: ids keep increasing
    assert stream.add(b"1", b"2", bounds) == (1000, 2)
    now[0] = 2000
    assert stream.add(b"1", b"3", bounds) == (2000, 0)
    assert [e[0] for e in stream.entries] == [(1000, 1), (1000, 2), (2000, 0)]
    assert [e[2] for e in stream.after((1000, 1), 10, inclusive=True)] == [b"1", b"2", b"3"]
    assert [e[2] for e in stream.after((1000, 1), 10)] == [b"2", b"3"]
    assert [e[2] for e in stream.after((0, 0), 2)] == [b"1", b"2"]


def test_local_stream_trims_by_age() -> None:
    now = [10_000]
    stream = LocalStream(lambda: now[0])
    stream.add(b"1", b"old", Bounds(100, 1))
    now[0] = 10_500
    stream.add(b"1", b"mid", Bounds(100, 1))
    now[0] = 11_200
    stream.add(b"1", b"new", Bounds(100, 1))
    assert [e[2] for e in stream.entries] == [b"mid", b"new"]
