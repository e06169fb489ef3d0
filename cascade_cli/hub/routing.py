"""Pure: the hub's channel registry, client sessions, bounded send queues and slow-client policies.

The I/O layer gives each client a `Sink` (see `wsproto.py`) and calls `deliver()` for every
event. The first event of a turn of the event loop is written at once to every subscriber with
nothing waiting (lowest latency when traffic is light); events that follow it in the same turn
are queued, and `flush()`, scheduled once per turn, writes each waiting client's queue as one
frame (a batch when several events wait: fewer writes when traffic is heavy). A full queue gets
the slow-client policy. Nothing blocks: a client whose socket is not writable keeps its events
queued until the I/O layer calls `writable()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cascade_cli.hub import messages
from cascade_cli.hub.frames import text_frame

DROP_OLDEST = "drop-oldest"
DISCONNECT = "disconnect"
POLICIES = (DROP_OLDEST, DISCONNECT)

SLOW_CONSUMER_CODE = 4008
MAX_CHANNELS = 10_000
"""With any channel name allowed, the hub creates at most this many channels (each has counters
and metric labels); names past it are refused like unknown ones."""
MAX_BATCH_BYTES = 256 * 1024
"""A batch frame holds at most this many bytes of events (an event larger than this goes out
alone), so batching never makes a message larger than the largest event, which
`messages.MAX_EVENT_BYTES` keeps under the 1 MiB most client libraries accept."""


class Sink(Protocol):
    """Where a session's bytes go. `raw` sinks take ready-made frames (same bytes for everyone);
    others (per-connection compression) take message payloads and frame them themselves."""

    raw: bool

    def writable(self) -> bool: ...

    def try_write(self, data: bytes) -> bool:
        """Write frames now if the socket takes them (raw sinks); False and nothing written
        otherwise."""

    def write_frames(self, data: bytes) -> None: ...

    def send_texts(self, payloads: list[bytes]) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class ChannelState:
    """One channel: its local subscribers and counters since start."""

    name: str
    subscribers: set[Session] = field(default_factory=set)
    published: int = 0
    delivered: int = 0
    dropped: int = 0


class Event:
    """One encoded event shared by every subscriber's queue (encoded and framed once)."""

    __slots__ = ("payload", "frame", "channel")

    def __init__(self, payload: bytes, channel: ChannelState) -> None:
        self.payload = payload
        self.frame = text_frame(payload)
        self.channel = channel


class Session:
    """One connected client and its bounded queue of events not yet written to its socket."""

    __slots__ = ("id", "sink", "channels", "remote", "user_agent", "connected_at", "batch",
                 "queue", "sent", "dropped", "lag", "scheduled", "closed", "try_write", "__weakref__")

    def __init__(self, client_id: str, sink: Sink, *, remote: str = "", user_agent: str = "",
                 connected_at: float = 0.0, batch: bool = True) -> None:
        self.id = client_id
        self.sink = sink
        self.channels: dict[str, ChannelState] = {}
        self.remote = remote
        self.user_agent = user_agent
        self.connected_at = connected_at
        self.batch = batch
        self.queue: list[Event] = []   # a list: 56 bytes idle; only slow clients pop at the front
        self.sent = 0
        self.dropped = 0
        self.lag = 0
        self.scheduled = False
        self.closed = False
        self.try_write = sink.try_write   # bound once: the hot path makes one call per client

    def info(self) -> dict[str, object]:
        """The per-client metadata `GET /api/clients` reports."""
        return {
            "client_id": self.id,
            "channels": sorted(self.channels),
            "remote_address": self.remote,
            "user_agent": self.user_agent,
            "connected_at": self.connected_at,
            "events_sent": self.sent,
            "events_dropped": self.dropped,
            "queue_depth": len(self.queue),
            "batching": self.batch,
        }


class Hub:
    """Channels, sessions and delivery. `schedule(callback)` must run `callback` soon, once, on
    the same thread (e.g. `loop.call_soon`); `clock()` returns seconds for latency figures."""

    def __init__(self, channels: Iterable[str], *, queue_size: int = 1000, policy: str = DROP_OLDEST,
                 schedule: Callable[[Callable[[], None]], object], clock: Callable[[], float],
                 allow_any_channel: bool = False,
                 on_flush: Callable[[float], None] | None = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown slow-client policy {policy!r}")
        self.channels: dict[str, ChannelState] = {name: ChannelState(name) for name in channels}
        self.allow_any_channel = allow_any_channel
        self.queue_size = queue_size
        self.policy = policy
        self.sessions: dict[str, Session] = {}
        self.disconnected_slow = 0
        self._schedule = schedule
        self._clock = clock
        self._on_flush = on_flush
        self._dirty: list[Session] = []
        self._pending_since: float | None = None
        self._busy = False   # an event was delivered in this turn of the loop: queue, don't write

    # -- channels and sessions ---------------------------------------------------------------

    def channel(self, name: str) -> ChannelState | None:
        """The channel called `name`, created on first use when any valid name is allowed;
        None when the hub does not accept that name."""
        state = self.channels.get(name)
        if (state is None and self.allow_any_channel and len(self.channels) < MAX_CHANNELS
                and messages.valid_channel_name(name)):
            state = self.channels[name] = ChannelState(name)
        return state

    def add(self, session: Session) -> None:
        self.sessions[session.id] = session

    def remove(self, session: Session) -> None:
        """Forget a session that disconnected: its queue is discarded."""
        session.closed = True
        for state in session.channels.values():
            state.subscribers.discard(session)
        session.channels.clear()
        session.queue.clear()
        self.sessions.pop(session.id, None)

    def subscribe(self, session: Session, state: ChannelState) -> None:
        state.subscribers.add(session)
        session.channels[state.name] = state

    def enqueue(self, session: Session, state: ChannelState, payloads: list[bytes]) -> None:
        """Queue messages for one session (history for a resuming client) whatever the queue
        limit, ahead of live events, and schedule their write."""
        if session.closed:
            return
        session.queue.extend(Event(payload, state) for payload in payloads)
        if not session.scheduled:
            session.scheduled = True
            self._dirty.append(session)
            if self._pending_since is None:
                self._pending_since = self._clock()
                self._schedule(self.flush)

    def notify(self, session: Session, payload: bytes) -> None:
        """Write one message to a session now, ahead of anything queued (a notice, not an event)."""
        if session.closed:
            return
        if session.sink.raw:
            session.sink.write_frames(text_frame(payload))
        else:
            session.sink.send_texts([payload])

    def unsubscribe(self, session: Session, name: str) -> bool:
        """False when the session was not subscribed to `name`."""
        state = session.channels.pop(name, None)
        if state is None:
            return False
        state.subscribers.discard(session)
        return True

    # -- delivery ----------------------------------------------------------------------------

    def deliver(self, state: ChannelState, payload: bytes) -> int:
        """Write or queue an encoded event for every local subscriber of `state`; returns their
        number. The first event of a loop turn goes straight to subscribers with nothing
        waiting; later ones in the same turn queue up for one batched flush."""
        state.published += 1
        subscribers = state.subscribers
        if not subscribers:
            return 0
        item = Event(payload, state)
        direct = not self._busy
        if direct:
            self._busy = True
            self._schedule(self._turn_over)
            started = self._clock()
        frame = item.frame
        limit = self.queue_size
        dirty = self._dirty
        written = 0
        evicted: list[Session] | None = None
        for session in subscribers:
            queue = session.queue
            if direct and not queue and not session.lag and session.try_write(frame):
                session.sent += 1
                written += 1
                continue
            if len(queue) >= limit:
                if session.sink.writable():
                    # Not a slow client: one burst outgrew the queue before a flush; write now.
                    self.drain(session)
                elif self.policy == DROP_OLDEST:
                    queue.pop(0).channel.dropped += 1
                    session.dropped += 1
                    session.lag += 1
                else:
                    state.dropped += 1        # the event that found the queue full
                    session.dropped += 1
                    evicted = evicted or []
                    evicted.append(session)
                    continue
            queue.append(item)
            if not session.scheduled:
                session.scheduled = True
                dirty.append(session)
        state.delivered += written
        if evicted:
            for session in evicted:
                self._evict(session)
        if dirty and self._pending_since is None:
            self._pending_since = self._clock()
            self._schedule(self.flush)
        elif direct and written and self._on_flush is not None:
            self._on_flush(self._clock() - started)
        return len(subscribers)

    def _turn_over(self) -> None:
        """End of a loop turn: the next event may be written straight away again."""
        self._busy = False

    def writable(self, session: Session) -> None:
        """The session's socket drained: flush what waited (call from the I/O layer)."""
        if session.queue and not session.scheduled and not session.closed:
            session.scheduled = True
            self._dirty.append(session)
            if self._pending_since is None:
                self._pending_since = self._clock()
                self._schedule(self.flush)

    def flush(self) -> None:
        """Write every waiting session's queue; sessions whose socket is full keep theirs."""
        dirty, self._dirty = self._dirty, []
        started, self._pending_since = self._pending_since, None
        for session in dirty:
            session.scheduled = False
            if not session.closed and session.sink.writable():
                self.drain(session)
        if self._on_flush is not None and started is not None:
            self._on_flush(self._clock() - started)

    def flush_all(self) -> None:
        """Write every queue now whatever was scheduled (at shutdown, before closing)."""
        for session in list(self.sessions.values()):
            if session.queue and not session.closed:
                self.drain(session)

    def drain(self, session: Session) -> None:
        """Write the session's whole queue: one frame per batch (or per event with batch=0)."""
        queue = session.queue
        count = len(queue)
        if not count and not session.lag:
            return
        sink = session.sink
        payloads: list[bytes] = []
        if session.lag:
            payloads.append(messages.lag(session.lag))
            session.lag = 0
        if count == 1 and not payloads and sink.raw:
            item = queue[0]
            item.channel.delivered += 1
            queue.clear()
            session.sent += 1
            sink.write_frames(item.frame)
            return
        if session.batch and count > 1:
            chunk: list[bytes] = []
            size = 0
            for item in queue:
                item.channel.delivered += 1
                payload = item.payload
                if chunk and size + len(payload) > MAX_BATCH_BYTES:
                    payloads.append(messages.batch(chunk) if len(chunk) > 1 else chunk[0])
                    chunk, size = [], 0
                chunk.append(payload)
                size += len(payload) + 1
            payloads.append(messages.batch(chunk) if len(chunk) > 1 else chunk[0])
        else:
            for item in queue:
                item.channel.delivered += 1
            if sink.raw:   # one frame per event, each framed once per broadcast already
                frames = [text_frame(p) for p in payloads]
                frames.extend([item.frame for item in queue])
                queue.clear()
                session.sent += count
                sink.write_frames(b"".join(frames))
                return
            payloads.extend([item.payload for item in queue])
        queue.clear()
        session.sent += count
        if sink.raw:
            sink.write_frames(b"".join([text_frame(p) for p in payloads]))
        else:
            sink.send_texts(payloads)

    def _evict(self, session: Session) -> None:
        """Disconnect policy: close the session 4008 and forget it."""
        self.disconnected_slow += 1
        for item in session.queue:
            item.channel.dropped += 1
        session.dropped += len(session.queue)
        self.remove(session)
        session.sink.close(SLOW_CONSUMER_CODE, "slow consumer")

    # -- figures -----------------------------------------------------------------------------

    def queue_depths(self) -> list[int]:
        return [len(session.queue) for session in self.sessions.values()]
