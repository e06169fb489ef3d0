"""The hub's pure cores: routing (Hub, Session, queues, policies, batching), messages (JSON and
op parsing), frames (RFC 6455 server frames) and limits (rate limiter, tokens).

No sockets: `FakeSink` below is the routing core's own seam (the I/O layer's `Sink`), recording
what the hub writes; frames are decoded by a reader written here and cross-checked with the
`websockets` library's own frame parser.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from cascade_cli.hub import frames, messages
from cascade_cli.hub.limits import RateLimiter, bearer, token_matches
from cascade_cli.hub.routing import (
    DISCONNECT,
    DROP_OLDEST,
    MAX_BATCH_BYTES,
    SLOW_CONSUMER_CODE,
    Event,
    Hub,
    Session,
)

# ---- frames, decoded here ---------------------------------------------------------------------


def decode_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split server frames (FIN, unmasked) into (opcode, payload); fails on anything else."""
    out = []
    while data:
        assert len(data) >= 2
        first, second = data[0], data[1]
        assert first & 0x80, "FIN bit"
        assert not first & 0x70, "no RSV bits"
        assert not second & 0x80, "server frames are unmasked"
        size, start = second & 0x7F, 2
        if size == 126:
            size, start = struct.unpack("!H", data[2:4])[0], 4
            assert size >= 126, "minimal length encoding"
        elif size == 127:
            size, start = struct.unpack("!Q", data[2:10])[0], 10
            assert size >= 65536, "minimal length encoding"
        assert len(data) >= start + size, "truncated frame"
        out.append((first & 0x0F, data[start:start + size]))
        data = data[start + size:]
    return out


def websockets_parse(data: bytes) -> Frame:
    """The same bytes read by the websockets library's parser (as a client would)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("the parser wanted more data")


@pytest.mark.parametrize("size,header", [
    (0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10)])
def test_frame_header_lengths(size: int, header: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = frames.text_frame(payload)
    assert len(data) == header + size
    assert data[0] == 0x81
    assert decode_frames(data) == [(0x1, payload)]
    parsed = websockets_parse(data)
    assert (parsed.opcode, parsed.fin, parsed.data) == (Opcode.TEXT, True, payload)


def test_close_frame() -> None:
    payload = struct.pack("!H", 4008) + b"slow consumer"
    data = frames.frame(payload, frames.OP_CLOSE)
    assert data[0] == 0x88
    assert decode_frames(data) == [(0x8, payload)]
    assert websockets_parse(data).opcode == Opcode.CLOSE


# ---- the routing core with a fake sink ----------------------------------------------------------


class FakeSink:
    """Records what the hub writes. `raw` sinks get frames; others get payloads."""

    def __init__(self, raw: bool = True, open_: bool = True) -> None:
        self.raw = raw
        self.open = open_
        self.writes: list[bytes] = []
        self.texts: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    def writable(self) -> bool:
        return self.open

    def try_write(self, data: bytes) -> bool:
        if self.raw and self.open:
            self.write_frames(data)
            return True
        return False

    def write_frames(self, data: bytes) -> None:
        assert self.raw
        self.writes.append(data)

    def send_texts(self, payloads: list[bytes]) -> None:
        assert not self.raw
        self.texts.extend(payloads)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def payloads(self) -> list[bytes]:
        """Every message written, in order."""
        if not self.raw:
            return list(self.texts)
        out = []
        for data in self.writes:
            for opcode, payload in decode_frames(data):
                assert opcode == 0x1
                out.append(payload)
        return out

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads()]

    def events(self) -> list[Any]:
        """The number of every event received (see `event()`), batches flattened, in order."""
        out = []
        for message in self.messages():
            if message["type"] == "batch":
                out += [e["data"] for e in message["events"]]
            elif message["type"] == "event":
                out.append(message["data"])
        return [d["n"] if isinstance(d, dict) else d for d in out]


class Loop:
    """`schedule` and `clock` for the Hub: callbacks run when the test says so."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []
        self.now = 100.0

    def schedule(self, callback: Callable[[], None]) -> None:
        self.pending.append(callback)

    def clock(self) -> float:
        return self.now

    def run(self) -> int:
        ran = 0
        while self.pending:
            self.pending.pop(0)()
            ran += 1
        return ran


def make_hub(loop: Loop, **kwargs: Any) -> Hub:
    kwargs.setdefault("channels", ["a", "b"])
    return Hub(kwargs.pop("channels"), schedule=loop.schedule, clock=loop.clock, **kwargs)


def join(hub: Hub, name: str, *channels: str, sink: FakeSink | None = None, batch: bool = True) -> Session:
    session = Session(name, sink or FakeSink(), remote="127.0.0.1:5", user_agent="ua",
                      connected_at=1.5, batch=batch)
    hub.add(session)
    for channel in channels:
        state = hub.channel(channel)
        assert state is not None
        hub.subscribe(session, state)
    return session


def event(n: Any, channel: str = "a", pad: int = 0) -> bytes:
    return messages.event(channel, f"id-{n}", 1.0, {"n": n, "pad": "p" * pad} if pad else n)


def sink_of(session: Session) -> FakeSink:
    assert isinstance(session.sink, FakeSink)
    return session.sink


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        make_hub(Loop(), policy="block")


def test_deliver_encodes_once_for_every_subscriber() -> None:
    """The first event of a loop turn is written at once: the same frame bytes to everyone.
    A second one in the same turn is queued: one Event object shared by every queue."""
    loop = Loop()
    hub = make_hub(loop)
    sessions = [join(hub, f"s{i}", "a") for i in range(3)]
    other = join(hub, "other", "b")
    assert hub.deliver(hub.channels["a"], event(1)) == 3
    first = [sink_of(s).writes[0] for s in sessions]
    assert all(len(sink_of(s).writes) == 1 and data is first[0] for s, data in zip(sessions, first))
    assert decode_frames(first[0]) == [(0x1, event(1))]
    payload = event(2)
    assert hub.deliver(hub.channels["a"], payload) == 3
    queued = [s.queue[0] for s in sessions]
    assert all(item is queued[0] for item in queued), "one Event object shared by every queue"
    assert isinstance(queued[0], Event) and queued[0].payload is payload
    assert not other.queue
    frame = queued[0].frame
    loop.run()
    for session in sessions:
        assert sink_of(session).writes == [first[0], frame]
        assert sink_of(session).writes[1] is frame, "the same bytes object written to everyone"
        assert session.sent == 2 and not session.queue
    assert sink_of(other).writes == []
    assert hub.channels["a"].published == 2 and hub.channels["a"].delivered == 6


def test_one_flush_per_burst() -> None:
    loop = Loop()
    hub = make_hub(loop)
    a = join(hub, "x", "a")
    b = join(hub, "y", "a", "b")
    for n in range(4):
        hub.deliver(hub.channels["a"], event(n))
        hub.deliver(hub.channels["b"], event(10 + n, "b"))
    assert len(loop.pending) == 2, "one end-of-turn and one flush for the whole burst"
    loop.run()
    assert len(sink_of(a).writes) == 2 and len(sink_of(b).writes) == 2, "the first event, then one batch"
    assert [m["type"] for m in sink_of(a).messages()] == ["event", "batch"]
    assert sink_of(a).events() == [0, 1, 2, 3]
    assert sink_of(b).events() == [0, 10, 1, 11, 2, 12, 3, 13]
    hub.deliver(hub.channels["a"], event(99))
    assert sink_of(a).events()[-1] == 99, "a new turn's first event is written at once"
    hub.deliver(hub.channels["a"], event(100))
    assert len(loop.pending) == 2, "the next one schedules a new flush"
    loop.run()
    assert sink_of(a).events()[-1] == 100


def test_several_waiting_events_go_out_as_one_batch() -> None:
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a")
    payloads = [event(n) for n in range(5)]
    for payload in payloads:
        hub.deliver(hub.channels["a"], payload)
    loop.run()
    first, message = sink_of(session).messages()
    assert first == json.loads(payloads[0]), "the turn's first event went out at once"
    assert message["type"] == "batch"
    assert message["events"] == [json.loads(p) for p in payloads[1:]]
    assert sink_of(session).payloads() == [payloads[0], messages.batch(payloads[1:])]
    assert session.sent == 5


def test_batch_false_sends_one_frame_per_event() -> None:
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a", batch=False)
    for n in range(5):
        hub.deliver(hub.channels["a"], event(n))
    loop.run()
    assert [m["type"] for m in sink_of(session).messages()] == ["event"] * 5
    assert sink_of(session).events() == list(range(5))


def test_compressing_sinks_get_payloads_not_frames() -> None:
    loop = Loop()
    hub = make_hub(loop)
    single = join(hub, "one", "a", sink=FakeSink(raw=False))
    hub.deliver(hub.channels["a"], event(1))
    loop.run()
    assert sink_of(single).texts == [event(1)]
    for n in range(2, 5):
        hub.deliver(hub.channels["a"], event(n))
    loop.run()
    assert sink_of(single).events() == [1, 2, 3, 4]
    assert [m["type"] for m in sink_of(single).messages()] == ["event", "batch"]


def test_batches_are_split_past_max_batch_bytes() -> None:
    loop = Loop()
    hub = make_hub(loop, queue_size=10_000)
    session = join(hub, "s", "a")
    size = 50_000
    count = 3 * MAX_BATCH_BYTES // size + 2
    for n in range(count):
        hub.deliver(hub.channels["a"], event(n, pad=size))
    loop.run()
    sink = sink_of(session)
    payloads = sink.payloads()
    assert len(payloads) >= 3
    assert sink.events() == list(range(count))
    for payload in payloads:
        if payload.startswith(messages.BATCH_PREFIX):
            events = len(payload) - len(messages.BATCH_PREFIX) - len(messages.BATCH_SUFFIX)
            assert events <= MAX_BATCH_BYTES, "a batch holds at most MAX_BATCH_BYTES of events"
    assert len(sink.writes) == 2, "the turn's first event, then one write for the whole queue"


def test_an_event_larger_than_max_batch_bytes_goes_out_alone() -> None:
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a")
    for payload in [event(0), event(1), event(2), event(3, pad=MAX_BATCH_BYTES + 10), event(4), event(5)]:
        hub.deliver(hub.channels["a"], payload)
    loop.run()
    sink = sink_of(session)
    assert sink.events() == [0, 1, 2, 3, 4, 5]
    # 0 goes out at once; the queue 1..5 makes a batch, the big event alone, a batch.
    assert [m["type"] for m in sink.messages()] == ["event", "batch", "event", "batch"]


def test_batching_never_makes_a_frame_over_1_mib_from_events_that_fit() -> None:
    """routing.py promises that batching never exceeds a client's 1 MiB max message size: a batch
    must not grow past MAX_BATCH_BYTES by taking an event that would push it over."""
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a")
    small = [event(n, pad=10_000) for n in range(25)]          # ~250 KB together, under the limit
    big = event("big", pad=900_000)                           # fits alone in 1 MiB
    assert sum(len(p) + 1 for p in small) < MAX_BATCH_BYTES
    for payload in [*small, big]:
        hub.deliver(hub.channels["a"], payload)
    loop.run()
    sizes = [len(p) for p in sink_of(session).payloads()]
    assert len(sink_of(session).events()) == 26
    assert max(sizes) <= 1024 * 1024, f"a {max(sizes)}-byte frame from events of at most {len(big)} bytes"


def test_drop_oldest_counts_and_sends_a_lag_notice_first() -> None:
    loop = Loop()
    hub = make_hub(loop, queue_size=3, policy=DROP_OLDEST)
    sink = FakeSink(open_=False)
    session = join(hub, "s", "a", sink=sink)
    for n in range(7):
        hub.deliver(hub.channels["a"], event(n))
    loop.run()
    assert sink.writes == []
    assert [json.loads(e.payload) for e in session.queue] == [json.loads(event(n)) for n in (4, 5, 6)]
    assert (session.dropped, session.lag, hub.channels["a"].dropped) == (4, 4, 4)
    assert session.info()["events_dropped"] == 4 and session.info()["queue_depth"] == 3

    sink.open = True
    hub.writable(session)
    loop.run()
    got = sink.messages()
    assert got[0] == {"type": "lag", "dropped": 4}
    assert sink.events() == [4, 5, 6]
    assert (session.lag, session.dropped, session.sent) == (0, 4, 3)

    hub.deliver(hub.channels["a"], event(7))
    loop.run()
    assert sink.messages()[-1]["type"] == "event", "no second lag notice without new drops"
    assert sink.events() == [4, 5, 6, 7]


def test_lag_notice_without_batching() -> None:
    loop = Loop()
    hub = make_hub(loop, queue_size=2)
    sink = FakeSink(open_=False)
    session = join(hub, "s", "a", sink=sink, batch=False)
    for n in range(5):
        hub.deliver(hub.channels["a"], event(n))
    sink.open = True
    hub.writable(session)
    loop.run()
    assert [m["type"] for m in sink.messages()] == ["lag", "event", "event"]
    assert sink.messages()[0]["dropped"] == 3


def test_disconnect_policy_closes_4008_and_spares_the_others() -> None:
    loop = Loop()
    hub = make_hub(loop, queue_size=3, policy=DISCONNECT)
    stalled = join(hub, "stalled", "a", "b", sink=FakeSink(open_=False))
    healthy = join(hub, "healthy", "a")
    for n in range(4):
        hub.deliver(hub.channels["a"], event(n))
        loop.run()
    assert sink_of(stalled).closed == (SLOW_CONSUMER_CODE, "slow consumer")
    assert SLOW_CONSUMER_CODE == 4008
    assert "stalled" not in hub.sessions and stalled.closed and not stalled.queue
    assert stalled not in hub.channels["a"].subscribers and stalled not in hub.channels["b"].subscribers
    assert hub.disconnected_slow == 1
    assert sink_of(healthy).events() == [0, 1, 2, 3]
    hub.deliver(hub.channels["a"], event(4))
    loop.run()
    assert sink_of(stalled).writes == [] and sink_of(healthy).events() == [0, 1, 2, 3, 4]


def test_evicted_client_events_are_all_counted_dropped() -> None:
    """Per channel, every event for every subscriber ends up delivered, dropped or still queued;
    under the disconnect policy the event that found the queue full is dropped too."""
    loop = Loop()
    hub = make_hub(loop, queue_size=3, policy=DISCONNECT)
    stalled = join(hub, "stalled", "a", sink=FakeSink(open_=False))
    join(hub, "healthy", "a")
    for n in range(4):
        hub.deliver(hub.channels["a"], event(n))
        loop.run()
    state = hub.channels["a"]
    assert (state.delivered, state.published) == (4, 4)
    assert stalled.dropped == 4, "the evicted client missed 4 events"
    assert state.dropped == 4


def test_a_writable_client_is_not_slow_when_one_burst_exceeds_the_queue() -> None:
    """The queue holds events a client's socket has not taken yet; a burst larger than the queue
    (one publish request with a list) must not drop events for, or evict, a client whose socket
    is writable."""
    for policy in (DROP_OLDEST, DISCONNECT):
        loop = Loop()
        hub = make_hub(loop, queue_size=3, policy=policy)
        session = join(hub, "s", "a")
        for n in range(8):
            hub.deliver(hub.channels["a"], event(n))
        loop.run()
        assert sink_of(session).closed is None, policy
        assert (session.dropped, sink_of(session).events()) == (0, list(range(8))), policy


def test_writable_reflushes_what_waited() -> None:
    loop = Loop()
    hub = make_hub(loop)
    sink = FakeSink(open_=False)
    session = join(hub, "s", "a", sink=sink)
    hub.writable(session)
    assert loop.pending == [], "nothing queued, nothing to schedule"
    hub.deliver(hub.channels["a"], event(1))
    hub.deliver(hub.channels["a"], event(2))
    loop.run()
    assert sink.writes == [] and len(session.queue) == 2 and not session.scheduled
    hub.deliver(hub.channels["a"], event(3))
    loop.run()
    assert len(session.queue) == 3
    sink.open = True
    hub.writable(session)
    hub.writable(session)
    assert len(loop.pending) == 1
    loop.run()
    assert sink.events() == [1, 2, 3] and len(sink.writes) == 1
    hub.writable(session)
    assert loop.pending == []


def test_removed_sessions_are_not_written() -> None:
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a")
    hub.deliver(hub.channels["a"], event(0))      # the turn's first: written at once
    hub.deliver(hub.channels["a"], event(1))      # queued
    hub.remove(session)
    loop.run()
    assert sink_of(session).events() == [0], "nothing written after removal"
    assert hub.sessions == {} and not hub.channels["a"].subscribers
    hub.writable(session)
    assert loop.pending == []
    assert hub.deliver(hub.channels["a"], event(2)) == 0


def test_flush_all_writes_queues_even_when_not_writable() -> None:
    loop = Loop()
    hub = make_hub(loop)
    sink = FakeSink(open_=False)
    session = join(hub, "s", "a", sink=sink)
    for n in range(3):
        hub.deliver(hub.channels["a"], event(n))
    loop.run()
    assert sink.writes == []
    hub.flush_all()
    assert sink.events() == [0, 1, 2] and not session.queue


def test_unsubscribe_and_queue_depths() -> None:
    loop = Loop()
    hub = make_hub(loop)
    session = join(hub, "s", "a", "b", sink=FakeSink(open_=False))
    assert hub.unsubscribe(session, "a") is True
    assert hub.unsubscribe(session, "a") is False
    hub.deliver(hub.channels["a"], event(1))
    hub.deliver(hub.channels["b"], event(2, "b"))
    assert hub.queue_depths() == [1]
    assert hub.channels["a"].published == 1 and hub.channels["a"].delivered == 0


def test_on_flush_gets_the_wait_since_the_first_event() -> None:
    loop = Loop()
    seen: list[float] = []
    hub = make_hub(loop, on_flush=seen.append)
    join(hub, "s", "a")
    hub.deliver(hub.channels["a"], event(1))      # written at once: no wait
    loop.now += 0.25
    hub.deliver(hub.channels["a"], event(2))      # queued at 100.25
    hub.deliver(hub.channels["a"], event(3))
    loop.now += 0.5
    loop.run()
    assert seen == [0.0, pytest.approx(0.5)]


def test_session_info() -> None:
    hub = make_hub(Loop())
    session = join(hub, "id-1", "b", "a")
    assert session.info() == {
        "client_id": "id-1", "channels": ["a", "b"], "remote_address": "127.0.0.1:5",
        "user_agent": "ua", "connected_at": 1.5, "events_sent": 0, "events_dropped": 0,
        "queue_depth": 0, "batching": True}


def test_channels_known_or_any_valid_name() -> None:
    strict = make_hub(Loop())
    assert strict.channel("a") is strict.channels["a"]
    assert strict.channel("new") is None and "new" not in strict.channels
    any_ = make_hub(Loop(), allow_any_channel=True)
    created = any_.channel("new.one")
    assert created is not None and any_.channel("new.one") is created
    assert any_.channel("bad name") is None and "bad name" not in any_.channels


# ---- messages ---------------------------------------------------------------------------------------


def test_event_is_compact_utf8_json() -> None:
    payload = messages.event("c", "i-1", 12.5, {"text": "héllo ✓", "list": [1, None]})
    assert payload == '{"type":"event","channel":"c","id":"i-1","ts":12.5,"data":{"text":"héllo ✓","list":[1,null]}}'.encode()
    assert json.loads(payload)["data"]["text"] == "héllo ✓"


@pytest.mark.parametrize("bad", [math.nan, math.inf, {"x": -math.inf}])
def test_event_refuses_non_json_numbers(bad: Any) -> None:
    with pytest.raises(ValueError):
        messages.event("c", "i", 1.0, bad)


def test_event_refuses_non_json_values() -> None:
    with pytest.raises(TypeError):
        messages.event("c", "i", 1.0, {1, 2})


def test_batch_is_valid_json_of_the_events() -> None:
    events = [messages.event("c", f"i{n}", 1.0, n) for n in range(3)]
    assert json.loads(messages.batch(events)) == {"type": "batch", "events": [json.loads(e) for e in events]}
    assert json.loads(messages.batch(events[:1]))["events"][0]["data"] == 0


def test_server_messages() -> None:
    assert json.loads(messages.connected("u", ["a"], 2.0, "i1")) == {
        "type": "connected", "client_id": "u", "channels": ["a"], "timestamp": 2.0, "instance": "i1"}
    assert json.loads(messages.pong(3.0)) == {"type": "pong", "timestamp": 3.0}
    assert json.loads(messages.lag(7)) == {"type": "lag", "dropped": 7}
    assert json.loads(messages.error("bad")) == {"type": "error", "error": "bad"}
    assert json.loads(messages.error("bad", "publish")) == {"type": "error", "error": "bad", "op": "publish"}
    assert json.loads(messages.subscription("subscribed", "a", ["a", "b"])) == {
        "type": "subscribed", "channel": "a", "channels": ["a", "b"]}
    assert json.loads(messages.published("a", "i-9")) == {"type": "published", "channel": "a", "id": "i-9"}


@pytest.mark.parametrize("text,op", [
    ('{"op":"ping"}', messages.Op("ping")),
    ('{"op":"ping","extra":1}', messages.Op("ping")),
    ('{"op":"subscribe","channel":"a"}', messages.Op("subscribe", "a")),
    ('{"op":"unsubscribe","channel":"a"}', messages.Op("unsubscribe", "a")),
    ('{"op":"publish","channel":"a","data":{"k":[1]}}', messages.Op("publish", "a", {"k": [1]})),
    ('{"op":"publish","channel":"a","data":null}', messages.Op("publish", "a", None)),
])
def test_parse_valid_ops(text: str, op: messages.Op) -> None:
    assert messages.parse_op(text) == op


@pytest.mark.parametrize("text,fragment,op", [
    ("not json", "malformed JSON", None),
    ("", "malformed JSON", None),
    ("[1]", "JSON object", None),
    ('"ping"', "JSON object", None),
    ('{"op":"nope"}', "unknown op", "nope"),
    ('{"op":5}', "unknown op", None),
    ('{"channel":"a"}', "unknown op", None),
    ('{"op":"subscribe"}', '"channel"', "subscribe"),
    ('{"op":"subscribe","channel":""}', '"channel"', "subscribe"),
    ('{"op":"unsubscribe","channel":["a"]}', '"channel"', "unsubscribe"),
    ('{"op":"publish","channel":"a"}', '"data"', "publish"),
    ('{"op":"publish","data":1}', '"channel"', "publish"),
])
def test_parse_op_errors(text: str, fragment: str, op: str | None) -> None:
    with pytest.raises(messages.BadOp) as caught:
        messages.parse_op(text)
    assert fragment in str(caught.value)
    assert caught.value.op == op


def test_unknown_op_message_lists_the_valid_ops_and_stays_short() -> None:
    with pytest.raises(messages.BadOp) as caught:
        messages.parse_op(json.dumps({"op": "x" * 10_000}))
    text = str(caught.value)
    assert all(op in text for op in messages.OPS)
    assert len(text) < 200


@pytest.mark.parametrize("name", ["a", "A", "0", "cascade-events", "a.b_c:d-e", "x" * 128, "9lives"])
def test_valid_channel_names(name: str) -> None:
    assert messages.valid_channel_name(name)


@pytest.mark.parametrize("name", ["", "-a", ".a", "_a", ":a", "a b", "a/b", "a\n", "é", "a%2F", "x" * 129])
def test_invalid_channel_names(name: str) -> None:
    assert not messages.valid_channel_name(name)


# ---- limits -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, clock=clock)
    assert [limiter.allow("ip") for _ in range(3)] == [True, True, False]   # burst 2 by default
    clock.now += 0.5
    assert limiter.allow("ip") is False
    clock.now += 0.5
    assert limiter.allow("ip") is True
    assert limiter.allow("ip") is False
    clock.now += 3600
    assert [limiter.allow("ip") for _ in range(3)] == [True, True, False]   # refill capped at burst


def test_rate_limiter_keys_are_independent() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, burst=1, clock=clock)
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    clock.now += 0.5
    assert limiter.allow("a")


def test_rate_0_allows_everything() -> None:
    limiter = RateLimiter(0, clock=Clock())
    assert all(limiter.allow("ip") for _ in range(1000))


def test_rate_limiter_forgets_refilled_keys_when_full() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, burst=1, clock=clock, max_keys=2)
    assert limiter.allow("a") and limiter.allow("b")
    clock.now += 10
    assert limiter.allow("c")
    assert not limiter.allow("c")
    assert limiter.allow("a") and not limiter.allow("a")   # forgotten, behaves like a new key


@pytest.mark.parametrize("expected,given,ok", [
    (None, None, True), (None, "x", True), ("", None, True),
    ("s3cret", None, False), ("s3cret", "", False), ("s3cret", "s3cret", True),
    ("s3cret", "S3CRET", False), ("s3cret", "s3cret ", False), ("s3cret", "s3cre", False),
    ("clé", "clé", True), ("clé", "cle", False),
])
def test_token_matches(expected: str | None, given: str | None, ok: bool) -> None:
    assert token_matches(expected, given) is ok


@pytest.mark.parametrize("header,token", [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"),
    ("Basic abc", None), ("Bearer", None), ("Bearer   ", None), ("", None), (None, None), ("abc", None),
])
def test_bearer(header: str | None, token: str | None) -> None:
    assert bearer(header) == token
