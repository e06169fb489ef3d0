"""Streams commands (Redis 7.0 semantics).

Consumer-group bookkeeping (XGROUP, XREADGROUP, XACK, XCLAIM, XSETID...) does not touch WATCHed
keys in Redis, so those commands only bump the dirty counter (what decides AOF propagation);
XADD, XDEL and XTRIM go through `Database.modified` like any other write.

Non-deterministic writes are propagated as deterministic ones: XADD with `*` / `ms-*` as XADD
with the generated id, approximate trimming as exact trimming to the length reached (LIMIT
dropped), and reads of a consumer group as XGROUP CREATECONSUMER when the read creates the
consumer, XCLAIM ... TIME RETRYCOUNT FORCE JUSTID LASTID per delivered entry and XGROUP SETID
... ENTRIESREAD when the group's last id moved. Unlike Redis, history reads (XREADGROUP with an
id) propagate their delivery-count updates too, so a replay rebuilds the same pending lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascade_cli.resp.commands import (
    NO_SUCH_KEY,
    SYNTAX,
    WRONGTYPE,
    arity_error,
    command,
    container,
    help_command,
    subcommand_syntax_error,
    to_int,
    to_timeout,
)
from cascade_cli.resp.protocol import NULL_ARRAY, OK, ErrorReply
from cascade_cli.resp.store import now_ms
from cascade_cli.resp.stream import (
    INVALID_ENTRIES_READ,
    MAX64,
    MAX_ID,
    NACK,
    Consumer,
    Group,
    Stream,
    format_id,
    parse_id,
    parse_id_seq,
)

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

LLONG_MAX = 2**63 - 1
XREAD_BLOCKED_DEFAULT_COUNT = 1000


# --- helpers -----------------------------------------------------------------------------------

def _read_stream(client: Client, key: bytes) -> Stream | None:
    value = client.db.read(key)
    if value is None or type(value) is Stream:
        return value
    raise ErrorReply(WRONGTYPE)


def _write_stream(client: Client, key: bytes) -> Stream | None:
    value = client.db.lookup(key)
    if value is None or type(value) is Stream:
        return value
    raise ErrorReply(WRONGTYPE)


def _dirty(client: Client, key: bytes | None = None) -> None:
    """A change Redis does not signal to WATCH: count it for propagation; with `key`, also wake
    the clients blocked on it (so a blocked XREADGROUP notices its group is gone)."""
    engine = client.engine
    engine.dirty += 1
    if key is not None:
        slot = (client.db.index, key)
        if engine.blocked_keys and slot in engine.blocked_keys:
            engine.ready_keys[slot] = None


def _strict(raw: bytes) -> int:
    return parse_id(raw, 0, True)


def _interval(raw: bytes, missing_seq: int) -> tuple[int, bool]:
    """A range bound: an id, "-"/"+", or "(id" (exclusive)."""
    if len(raw) > 1 and raw[0] == 40:
        return parse_id(raw[1:], missing_seq, True), True
    return parse_id(raw, missing_seq, False), False


def _start_bound(raw: bytes) -> int:
    ident, exclusive = _interval(raw, 0)
    if exclusive:
        if ident == MAX_ID:
            raise ErrorReply("ERR invalid start ID for the interval")
        ident += 1
    return ident


def _end_bound(raw: bytes) -> int:
    ident, exclusive = _interval(raw, MAX64)
    if exclusive:
        if ident == 0:
            raise ErrorReply("ERR invalid end ID for the interval")
        ident -= 1
    return ident


def _incr(ident: int) -> int:
    """streamIncrID: the next id; the last possible id wraps to 0-0."""
    return 0 if ident == MAX_ID else ident + 1


def _entry(stream: Stream, ident: int) -> list[Any] | None:
    fv = stream.entries.get(ident)
    return None if fv is None else [format_id(ident), fv]


def _ll(value: int) -> bytes:
    return b"%d" % value


def _stream_keys(argv: list[bytes]) -> list[bytes]:
    """Key positions of XREAD / XREADGROUP: the first half of what follows STREAMS."""
    for i in range(1, len(argv)):
        if argv[i].lower() == b"streams":
            rest = argv[i + 1:]
            return rest[:len(rest) // 2]
    return []


# --- XADD / XTRIM ------------------------------------------------------------------------------

class _Trim:
    __slots__ = (
        "approx",
        "id_at",
        "ident",
        "limit",
        "limit_at",
        "maxlen",
        "minid",
        "nomkstream",
        "seq_given",
        "strategy_at",
    )

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: int | None = None
        self.approx = False
        self.limit = 0
        self.strategy_at = 0        # index of the threshold argument
        self.limit_at = 0           # index of the LIMIT keyword
        self.id_at = 0              # XADD: index of the id argument
        self.ident: int | None = None
        self.seq_given = True
        self.nomkstream = False

    @property
    def active(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def _parse_trim(client: Client, argv: list[bytes], xadd: bool) -> _Trim:
    args = _Trim()
    limit_given = False
    argc = len(argv)
    i = 2
    while i < argc:
        more = argc - 1 - i
        opt = argv[i]
        lowered = opt.lower()
        if xadd and opt == b"*":
            break
        if lowered in (b"maxlen", b"minid") and more:
            if args.active:
                raise ErrorReply("ERR syntax error, MAXLEN and MINID options at the same time are not "
                                 "compatible")
            args.approx = False
            following = argv[i + 1]
            if more >= 2 and following == b"~":
                args.approx = True
                i += 1
            elif more >= 2 and following == b"=":
                i += 1
            if lowered == b"maxlen":
                maxlen = to_int(argv[i + 1])
                if maxlen < 0:
                    raise ErrorReply("ERR The MAXLEN argument must be >= 0.")
                args.maxlen = maxlen
            else:
                args.minid = parse_id(argv[i + 1], 0, True)
            i += 1
            args.strategy_at = i
        elif lowered == b"limit" and more:
            limit = to_int(argv[i + 1])
            if limit < 0:
                raise ErrorReply("ERR The LIMIT argument must be >= 0.")
            args.limit = limit
            args.limit_at = i
            limit_given = True
            i += 1
        elif xadd and lowered == b"nomkstream":
            args.nomkstream = True
        elif xadd:
            args.ident, args.seq_given = parse_id_seq(opt, 0, True, True)
            break
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    args.id_at = i
    if args.limit and not args.active:
        raise ErrorReply("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and not args.active:
        raise ErrorReply("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given:
        if not args.approx:
            raise ErrorReply("ERR syntax error, LIMIT cannot be used without the special ~ option")
    elif args.approx:
        limit = 100 * client.engine.params.stream_node_max_entries
        args.limit = 10000 if limit <= 0 else min(limit, 1000000)
    else:
        args.limit = 0
    return args


def _do_trim(stream: Stream, args: _Trim) -> int:
    return stream.trim(args.maxlen, args.minid, args.approx, args.limit)


def _exact_trim_args(argv: list[bytes], args: _Trim, stream: Stream) -> list[bytes]:
    """Rewrite an approximate trim as the exact one that gives the same stream."""
    out = list(argv)
    out[args.strategy_at - 1] = b"="
    if args.maxlen is not None or not stream.length:
        out[args.strategy_at - 2] = b"MAXLEN"
        out[args.strategy_at] = _ll(stream.length)
    else:
        out[args.strategy_at] = format_id(stream.first_valid_id())
    if args.limit_at:
        del out[args.limit_at:args.limit_at + 2]
    return out


@command("xadd", -5, "write denyoom fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Appends a new entry to a stream")
def xadd(client: Client, argv: list[bytes]) -> Any:
    """Appends a new entry to a stream."""
    args = _parse_trim(client, argv, True)
    field_at = args.id_at + 1
    rest = len(argv) - field_at
    if rest < 2 or rest % 2:
        raise arity_error("xadd")
    if args.ident == 0 and args.seq_given:
        raise ErrorReply("ERR The ID specified in XADD must be greater than 0-0")
    key = argv[1]
    db = client.db
    stream = _write_stream(client, key)
    created = stream is None
    if created:
        if args.nomkstream:
            return None
        stream = Stream()
    if stream.last_id == MAX_ID:
        raise ErrorReply("ERR The stream has exhausted the last possible ID, unable to add more items")
    if args.ident is None:
        ident = stream.next_id(now_ms())
    elif args.seq_given:
        ident = args.ident
    elif stream.last_id >> 64 == args.ident >> 64:
        if stream.last_id & MAX64 == MAX64:
            # Redis 7.0 fails here without setting errno, and reports the size error
            raise ErrorReply("ERR Elements are too large to be stored")
        ident = stream.last_id + 1
    else:
        ident = args.ident
    if ident is None or ident <= stream.last_id:
        raise ErrorReply("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    fv = argv[field_at:]
    if sum(len(item) for item in fv) > (1 << 30):
        raise ErrorReply("ERR Elements are too large to be stored")
    params = client.engine.params
    stream.append(ident, fv, params.stream_node_max_bytes, params.stream_node_max_entries)
    if args.active:
        _do_trim(stream, args)
    if created:
        db.set(key, stream)
    else:
        db.modified(key)
    reply = format_id(ident)
    if args.approx or args.ident is None or not args.seq_given:
        out = _exact_trim_args(argv, args, stream) if args.approx else list(argv)
        shift = 0
        if args.approx and args.limit_at and args.limit_at < args.id_at:
            shift = 2
        out[args.id_at - shift] = reply
        client.rewrite(out)
    return reply


@command("xtrim", -4, "write", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Trims the stream to (approximately if '~' is passed) a certain size")
def xtrim(client: Client, argv: list[bytes]) -> Any:
    """Deletes messages from the beginning of a stream."""
    args = _parse_trim(client, argv, False)
    stream = _write_stream(client, argv[1])
    if stream is None:
        return 0
    deleted = _do_trim(stream, args)
    if deleted:
        client.db.modified(argv[1])
        if args.approx:
            client.rewrite(_exact_trim_args(argv, args, stream))
    return deleted


# --- XDEL / XLEN / XRANGE ----------------------------------------------------------------------

@command("xdel", -3, "write fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Removes the specified entries from the stream. Returns the number of items actually "
                 "deleted, that may be different from the number of IDs passed in case certain IDs do not "
                 "exist.")
def xdel(client: Client, argv: list[bytes]) -> Any:
    """Returns the number of messages after removing them from a stream."""
    stream = _write_stream(client, argv[1])
    if stream is None:
        return 0
    ids = [_strict(raw) for raw in argv[2:]]
    gone = stream.delete(ids)
    deleted = len(gone)
    if deleted:
        stream.max_deleted = max(stream.max_deleted, max(gone))
        if not stream.length or stream.first_id in gone:
            stream.refresh_first()
        client.db.modified(argv[1])
        client.engine.dirty += deleted - 1
    return deleted


@command("xlen", 2, "readonly fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Return the number of entries in a stream")
def xlen(client: Client, argv: list[bytes]) -> Any:
    """Return the number of messages in a stream."""
    stream = _read_stream(client, argv[1])
    return 0 if stream is None else stream.length


def _range(client: Client, argv: list[bytes], rev: bool) -> Any:
    start = _start_bound(argv[3] if rev else argv[2])
    end = _end_bound(argv[2] if rev else argv[3])
    count = -1
    i = 4
    while i < len(argv):
        if argv[i].lower() == b"count" and i + 1 < len(argv):
            count = max(to_int(argv[i + 1]), 0)
            i += 2
        else:
            raise ErrorReply(SYNTAX)
    stream = _read_stream(client, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return stream.range(start, end, max(count, 0), rev)


@command("xrange", -4, "readonly", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval")
def xrange(client: Client, argv: list[bytes]) -> Any:
    """Return a range of elements in a stream, with IDs matching the specified IDs interval."""
    return _range(client, argv, False)


@command("xrevrange", -4, "readonly", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval, in "
                 "reverse order (from greater to smaller IDs) compared to XRANGE")
def xrevrange(client: Client, argv: list[bytes]) -> Any:
    """Return a range of elements in a stream, with IDs matching the specified IDs interval,
    in reverse order (from greater to smaller IDs) compared to XRANGE."""
    return _range(client, argv, True)


# --- consumer group reads ----------------------------------------------------------------------

def _xclaim_argv(key: bytes, group: Group, ident: int, nack: NACK) -> list[bytes]:
    owner = nack.consumer.name if nack.consumer is not None else b""
    return [b"XCLAIM", key, group.name, owner, b"0", format_id(ident), b"TIME", _ll(nack.time),
            b"RETRYCOUNT", _ll(nack.count), b"FORCE", b"JUSTID", b"LASTID", format_id(group.last_id)]


def _setid_argv(key: bytes, group: Group) -> list[bytes]:
    return [b"XGROUP", b"SETID", key, group.name, format_id(group.last_id), b"ENTRIESREAD",
            _ll(group.entries_read)]


def _consumer(group: Group, name: bytes, now: int, props: list[list[bytes]], key: bytes) -> Consumer:
    """Look a consumer up (refreshing its seen time) or create it."""
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = group.consumers[name] = Consumer(name, now)
        props.append([b"XGROUP", b"CREATECONSUMER", key, group.name, name])
    else:
        consumer.seen = now
    return consumer


def _serve_group(stream: Stream, key: bytes, group: Group, consumer: Consumer, after: int,
                 count: int, noack: bool, now: int, props: list[list[bytes]]) -> list[Any]:
    """XREADGROUP `>`: entries after `after`, added to the PEL unless NOACK."""
    entries = []
    moved = False
    for ident in stream.select(_incr(after), MAX_ID, count):
        entries.append([format_id(ident), stream.entries[ident]])
        if ident > group.last_id:
            stream.advance_group(group, ident)
            moved = True
        if not noack:
            nack = group.pel.get(ident)
            if nack is None:
                nack = group.pel[ident] = NACK(consumer, now, 1)
            else:
                if nack.consumer is not None:
                    nack.consumer.pel.pop(ident, None)
                nack.consumer = consumer
                nack.time = now
                nack.count = 1
            consumer.pel[ident] = nack
            props.append(_xclaim_argv(key, group, ident, nack))
    if moved:
        props.append(_setid_argv(key, group))
    return entries


def _serve_history(stream: Stream, key: bytes, group: Group, consumer: Consumer, after: int,
                   count: int, now: int, props: list[list[bytes]]) -> list[Any]:
    """XREADGROUP with an id: the consumer's own pending entries after `after`."""
    out: list[Any] = []
    for ident in consumer.pel.take(_incr(after), count):
        fv = stream.entries.get(ident)
        if fv is None:
            out.append([format_id(ident), NULL_ARRAY])
            continue
        nack = consumer.pel[ident]
        nack.time = now
        nack.count += 1
        out.append([format_id(ident), fv])
        props.append(_xclaim_argv(key, group, ident, nack)[:-2])
    return out


def _xread(client: Client, argv: list[bytes], xreadgroup: bool) -> Any:
    timeout = -1.0                     # seconds; -1: no BLOCK
    count = 0
    streams_at = 0
    noack = False
    group_name: bytes | None = None
    consumer_name = b""
    argc = len(argv)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            i += 1
            timeout = to_timeout(argv[i], millis=True)
        elif opt == b"count" and more:
            i += 1
            count = max(to_int(argv[i]), 0)
        elif opt == b"streams" and more:
            streams_at = i + 1
            if (argc - streams_at) % 2:
                raise ErrorReply("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' "
                                 "must be specified.")
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                raise ErrorReply("ERR The GROUP option is only supported by XREADGROUP. You called XREAD "
                                 "instead.")
            group_name = argv[i + 1]
            consumer_name = argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                raise ErrorReply("ERR The NOACK option is only supported by XREADGROUP. You called XREAD "
                                 "instead.")
            noack = True
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    if not streams_at:
        raise ErrorReply(SYNTAX)
    if xreadgroup and group_name is None:
        raise ErrorReply("ERR Missing GROUP option for XREADGROUP")
    nstreams = (argc - streams_at) // 2
    keys = argv[streams_at:streams_at + nstreams]
    db = client.db
    ids: list[int] = []
    groups: list[Group | None] = []
    for index, key in enumerate(keys):
        raw = argv[streams_at + nstreams + index]
        stream = _read_stream(client, key)
        group = None
        if group_name is not None:
            group = stream.groups.get(group_name) if stream is not None else None
            if group is None:
                raise ErrorReply(f"NOGROUP No such key '{key.decode('utf-8', 'replace')}' or consumer group "
                                 f"'{group_name.decode('utf-8', 'replace')}' in XREADGROUP with GROUP option")
        groups.append(group)
        if raw == b"$":
            if xreadgroup:
                raise ErrorReply("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read "
                                 "the history of this consumer by specifying a proper ID, or use the > ID to "
                                 "get new messages. The $ ID would just return an empty result set.")
            ids.append(stream.last_id if stream is not None else 0)
        elif raw == b">":
            if not xreadgroup:
                raise ErrorReply("ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
                                 "<group> <consumer> option.")
            ids.append(-1)
        else:
            ident = _strict(raw)
            # the last possible id is how Redis marks `>`: given explicitly, it means `>`
            ids.append(-1 if ident == MAX_ID and xreadgroup else ident)

    now = now_ms()
    props: list[list[bytes]] = []
    served: list[list[Any]] = []
    group_read = False
    for index, key in enumerate(keys):
        stream = db.read(key)          # Redis looks every key up twice: hits count twice
        if type(stream) is not Stream:
            continue
        after = ids[index]
        group = groups[index]
        history = False
        serve = False
        if group is not None:
            if after != -1:
                serve = history = True
            elif stream.length and stream.last_valid_id() > group.last_id:
                serve = True
                after = group.last_id
        elif stream.length and stream.last_valid_id() > after:
            serve = True
        if not serve:
            continue
        if group is None:
            served.append([key, stream.range(_incr(after), MAX_ID, count)])
            continue
        group_read = True
        consumer = _consumer(group, consumer_name, now, props, key)
        if history:
            entries = _serve_history(stream, key, group, consumer, after, count, now, props)
        else:
            entries = _serve_group(stream, key, group, consumer, after, count, noack, now, props)
        served.append([key, entries])
    if group_read:
        client.engine.dirty += 1
        client.rewrite(*props)
    if served:
        # RESP3 answers a map; a key named twice (allowed, and answered twice by Redis) can
        # only appear once in it here: the reply types have no map with repeated keys
        if client.resp == 2:
            return served
        answer: dict[bytes, Any] = {}
        for key, entries in served:
            answer.setdefault(key, entries)
        return answer
    if timeout < 0:
        return NULL_ARRAY

    # Block: served when an append (or a new stream at the key) brings an id beyond the one
    # waited for; a consumer group's position is re-read each time, as other readers move it.
    snapshot = [_signature(db.lookup(key), group_name) for key in keys]
    block_count = count or XREAD_BLOCKED_DEFAULT_COUNT
    waiting: list[Any] = []

    def attempt() -> Any:
        # Redis serves the key whose change woke the client, the first such key when several
        # changed (the engine retries once per changed key, in the order they changed).
        database = client.db
        woke = getattr(waiting[0], "ready_key", None) if waiting else None
        indexes = [keys.index(woke)] if woke in keys else range(len(keys))
        for index in indexes:
            key = keys[index]
            stream = database.lookup(key)
            signature = _signature(stream, group_name)
            appended = signature != snapshot[index]
            snapshot[index] = signature
            if group_name is not None:
                if type(stream) is not Stream:
                    raise ErrorReply("UNBLOCKED the stream key no longer exists")
                if group_name not in stream.groups:
                    raise ErrorReply("NOGROUP the consumer group this client was blocked on no longer exists")
            if not appended or type(stream) is not Stream:
                continue
            if group_name is None:
                if stream.last_id > ids[index]:
                    return _keyed(client, key, stream.range(_incr(ids[index]), MAX_ID, block_count))
                continue
            group = stream.groups[group_name]
            if stream.last_id <= group.last_id:
                continue
            moment = now_ms()
            changes: list[list[bytes]] = []
            consumer = _consumer(group, consumer_name, moment, changes, key)
            entries = _serve_group(stream, key, group, consumer, group.last_id, block_count, noack, moment,
                                   changes)
            client.engine.dirty += 1
            client.rewrite(*changes)
            return _keyed(client, key, entries)
        return None

    blocked = client.block(list(keys), timeout, NULL_ARRAY, attempt)
    waiting.append(blocked)
    return blocked


def _keyed(client: Client, key: bytes, entries: list[Any]) -> Any:
    return {key: entries} if client.resp == 3 else [[key, entries]]


def _signature(value: Any, group_name: bytes | None) -> tuple[int, int]:
    """What must differ for a blocked reader to look again: a new append (or a new stream,
    each stream starting with a fresh stamp), or its group replaced."""
    if type(value) is not Stream:
        return (0, 0)
    group = value.groups.get(group_name) if group_name is not None else None
    return (value.appended, id(group))


@command("xread", -4, "readonly blocking movablekeys", group="stream", since="5.0.0",
         key_finder=_stream_keys,
         summary="Return never seen elements in multiple streams, with IDs greater than the ones reported "
                 "by the caller for each stream. Can block.")
def xread(client: Client, argv: list[bytes]) -> Any:
    """Return never seen elements in multiple streams, with IDs greater than the ones reported
    by the caller for each stream. Can block."""
    return _xread(client, argv, False)


@command("xreadgroup", -7, "write blocking movablekeys", group="stream", since="5.0.0",
         key_finder=_stream_keys,
         summary="Return new entries from a stream using a consumer group, or access the history of the "
                 "pending entries for a given consumer. Can block.")
def xreadgroup(client: Client, argv: list[bytes]) -> Any:
    """Return new entries from a stream using a consumer group, or access the history of the
    pending entries for a given consumer. Can block."""
    return _xread(client, argv, True)


# --- XGROUP ------------------------------------------------------------------------------------

container("xgroup", -2, group="stream", since="5.0.0", summary="A container for consumer groups commands")

_XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]

_XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


def _entries_read(raw: bytes) -> int:
    value = to_int(raw)
    if value < 0 and value != INVALID_ENTRIES_READ:
        raise ErrorReply("ERR value for ENTRIESREAD must be positive or -1")
    return value


def _xgroup_target(client: Client, argv: list[bytes], mkstream: bool,
                   need_group: bool) -> tuple[Stream | None, Group | None]:
    stream = _write_stream(client, argv[2])
    if stream is None and not mkstream:
        raise ErrorReply("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may "
                         "want to use the MKSTREAM option to create an empty stream automatically.")
    group = stream.groups.get(argv[3]) if stream is not None else None
    if group is None and need_group:
        raise ErrorReply(f"NOGROUP No such consumer group '{argv[3].decode('utf-8', 'replace')}' "
                         f"for key name '{argv[2].decode('utf-8', 'replace')}'")
    return stream, group


@command("xgroup|create", -5, "write denyoom", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="Create a consumer group.")
def xgroup_create(client: Client, argv: list[bytes]) -> Any:
    """Create a consumer group."""
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"mkstream":
            mkstream = True
            i += 1
        elif opt == b"entriesread" and i + 1 < len(argv):
            entries_read = _entries_read(argv[i + 1])
            i += 2
        else:
            raise subcommand_syntax_error(argv)
    stream, _ = _xgroup_target(client, argv, mkstream, False)
    if len(argv) > 8:
        raise subcommand_syntax_error(argv)
    if argv[4] == b"$":
        ident = stream.last_id if stream is not None else 0
    else:
        ident = _strict(argv[4])
    if stream is None:
        stream = Stream()
        client.db.set(argv[2], stream)
    if argv[3] in stream.groups:
        raise ErrorReply("BUSYGROUP Consumer Group name already exists")
    stream.groups[argv[3]] = Group(argv[3], ident, entries_read)
    _dirty(client)
    return OK


@command("xgroup|setid", -5, "write", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="Set a consumer group to an arbitrary last delivered ID value.")
def xgroup_setid(client: Client, argv: list[bytes]) -> Any:
    """Set a consumer group to an arbitrary last delivered ID value."""
    entries_read = INVALID_ENTRIES_READ
    if len(argv) == 7:
        if argv[5].lower() != b"entriesread":
            raise subcommand_syntax_error(argv)
        entries_read = _entries_read(argv[6])
    elif len(argv) > 5:
        raise subcommand_syntax_error(argv)
    stream, group = _xgroup_target(client, argv, False, True)
    assert stream is not None and group is not None
    ident = stream.last_id if argv[4] == b"$" else parse_id(argv[4])
    group.last_id = ident
    group.entries_read = entries_read
    _dirty(client)
    return OK


@command("xgroup|destroy", 4, "write", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="Destroy a consumer group.")
def xgroup_destroy(client: Client, argv: list[bytes]) -> Any:
    """Destroy a consumer group."""
    stream, group = _xgroup_target(client, argv, False, False)
    if group is None:
        return 0
    del stream.groups[argv[3]]  # type: ignore[union-attr]
    _dirty(client, argv[2])
    return 1


@command("xgroup|createconsumer", 5, "write denyoom", keys=(2, 2, 1), group="stream", since="6.2.0",
         summary="Create a consumer in a consumer group.")
def xgroup_createconsumer(client: Client, argv: list[bytes]) -> Any:
    """Create a consumer in a consumer group."""
    _, group = _xgroup_target(client, argv, False, True)
    assert group is not None
    if argv[4] in group.consumers:
        return 0
    group.consumers[argv[4]] = Consumer(argv[4], now_ms())
    _dirty(client)
    return 1


@command("xgroup|delconsumer", 5, "write", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="Delete a consumer from a consumer group.")
def xgroup_delconsumer(client: Client, argv: list[bytes]) -> Any:
    """Delete a consumer from a consumer group."""
    _, group = _xgroup_target(client, argv, False, True)
    assert group is not None
    consumer = group.consumers.pop(argv[4], None)
    if consumer is None:
        return 0
    for ident in consumer.pel:
        group.pel.pop(ident, None)
    _dirty(client)
    return len(consumer.pel)


help_command("xgroup", _XGROUP_HELP, "stream", "5.0.0")


# --- XACK / XPENDING / XCLAIM / XAUTOCLAIM -----------------------------------------------------

def _group_or_nogroup(client: Client, argv: list[bytes]) -> tuple[Stream, Group]:
    stream = _read_stream(client, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        raise ErrorReply(f"NOGROUP No such key '{argv[1].decode('utf-8', 'replace')}' or consumer group "
                         f"'{argv[2].decode('utf-8', 'replace')}'")
    return stream, group  # type: ignore[return-value]


@command("xack", -4, "write fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Marks a pending message as correctly processed, effectively removing it from the pending "
                 "entries list of the consumer group. Return value of the command is the number of messages "
                 "successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.")
def xack(client: Client, argv: list[bytes]) -> Any:
    """Marks a pending message as correctly processed, effectively removing it from the pending
    entries list of the consumer group."""
    stream = _read_stream(client, argv[1])
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [_strict(raw) for raw in argv[3:]]
    acked = 0
    for ident in ids:
        nack = group.pel.pop(ident, None)
        if nack is not None:
            if nack.consumer is not None:
                nack.consumer.pel.pop(ident, None)
            acked += 1
    if acked:
        client.engine.dirty += acked
    return acked


@command("xpending", -3, "readonly", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Return information and entries from a stream consumer group pending entries list, that "
                 "are messages fetched but never acknowledged.")
def xpending(client: Client, argv: list[bytes]) -> Any:
    """Return information and entries from a stream consumer group pending entries list, that
    are messages fetched but never acknowledged."""
    argc = len(argv)
    summary = argc == 3
    if argc != 3 and not 6 <= argc <= 9:
        raise ErrorReply(SYNTAX)
    min_idle = 0
    consumer_name = None
    start = end = count = 0
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            min_idle = to_int(argv[4])
            if argc < 8:
                raise ErrorReply(SYNTAX)
            at += 2
        count = max(to_int(argv[at + 2]), 0)
        start = _start_bound(argv[at])
        end = _end_bound(argv[at + 1])
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    _, group = _group_or_nogroup(client, argv)
    if summary:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        owners = []
        for name in sorted(group.consumers):
            consumer = group.consumers[name]
            if consumer.pel:
                owners.append([name, _ll(len(consumer.pel))])
        return [len(group.pel), format_id(group.pel.first()), format_id(group.pel.last()), owners]
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    else:
        pel = group.pel
    now = now_ms()
    out = []
    if not count:
        return out
    for ident in pel.since(start):
        if ident > end:
            break
        nack = pel[ident]
        if min_idle and now - nack.time < min_idle:
            continue
        owner = nack.consumer.name if nack.consumer is not None else b""
        out.append([format_id(ident), owner, max(now - nack.time, 0), nack.count])
        count -= 1
        if not count:
            break
    return out


def _claim(group: Group, consumer: Consumer, ident: int, nack: NACK, when: int) -> None:
    if nack.consumer is not consumer:
        if nack.consumer is not None:
            nack.consumer.pel.pop(ident, None)
        consumer.pel[ident] = nack
        nack.consumer = consumer
    nack.time = when


@command("xclaim", -6, "write fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="Changes (or acquires) ownership of a message in a consumer group, as if the message was "
                 "delivered to the specified consumer.")
def xclaim(client: Client, argv: list[bytes]) -> Any:
    """Changes (or acquires) ownership of a message in a consumer group, as if the message was
    delivered to the specified consumer."""
    stream, group = _group_or_nogroup(client, argv)
    min_idle = max(to_int(argv[4], "ERR Invalid min-idle-time argument for XCLAIM"), 0)
    argc = len(argv)
    ids: list[int] = []
    j = 5
    while j < argc:
        try:
            ids.append(_strict(argv[j]))
        except ErrorReply:
            break
        j += 1
    now = now_ms()
    retrycount = -1
    when = -1
    force = justid = False
    last_id = 0
    while j < argc:
        more = argc - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            when = now - to_int(argv[j], "ERR Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            when = to_int(argv[j], "ERR Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = to_int(argv[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = _strict(argv[j])
        else:
            raise ErrorReply(f"ERR Unrecognized XCLAIM option '{argv[j].decode('utf-8', 'replace')}'")
        j += 1
    engine = client.engine
    props: list[list[bytes]] = []
    moved = False
    if last_id > group.last_id:
        group.last_id = last_id
        moved = True
    if when == -1 or when < 0 or when > now:
        when = now
    key = argv[1]
    name = argv[3]
    consumer: Consumer | None = None
    out: list[Any] = []
    for ident in ids:
        nack = group.pel.get(ident)
        if ident not in stream.entries:
            if nack is not None:
                props.append(_xclaim_argv(key, group, ident, nack))
                moved = False
                engine.dirty += 1
                del group.pel[ident]
                if nack.consumer is not None:
                    nack.consumer.pel.pop(ident, None)
            continue
        if force and nack is None:
            nack = group.pel[ident] = NACK(None, now, 1)
        if nack is None:
            continue
        if nack.consumer is not None and min_idle and now - nack.time < min_idle:
            continue
        if consumer is None:
            consumer = group.consumers.get(name)
            if consumer is None:
                consumer = group.consumers[name] = Consumer(name, now)
            else:
                consumer.seen = now
        _claim(group, consumer, ident, nack, when)
        if retrycount >= 0:
            nack.count = retrycount
        elif not justid:
            nack.count += 1
        out.append(format_id(ident) if justid else _entry(stream, ident))
        props.append(_xclaim_argv(key, group, ident, nack))
        moved = False
        engine.dirty += 1
    if moved:
        props.append(_setid_argv(key, group))
        engine.dirty += 1
    client.rewrite(*props)
    return out


@command("xautoclaim", -6, "write fast", keys=(1, 1, 1), group="stream", since="6.2.0",
         summary="Changes (or acquires) ownership of messages in a consumer group, as if the messages were "
                 "delivered to the specified consumer.")
def xautoclaim(client: Client, argv: list[bytes]) -> Any:
    """Changes (or acquires) ownership of messages in a consumer group, as if the messages were
    delivered to the specified consumer."""
    min_idle = max(to_int(argv[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM"), 0)
    start = _start_bound(argv[5])
    count = 100
    justid = False
    j = 6
    argc = len(argv)
    while j < argc:
        more = argc - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            try:
                count = to_int(argv[j + 1])
            except ErrorReply:
                raise ErrorReply("ERR COUNT must be > 0") from None
            if not 1 <= count <= LLONG_MAX // 16:
                raise ErrorReply("ERR COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise ErrorReply(SYNTAX)
        j += 1
    stream, group = _group_or_nogroup(client, argv)
    engine = client.engine
    now = now_ms()
    key = argv[1]
    name = argv[3]
    attempts = count * 10
    consumer: Consumer | None = None
    props: list[list[bytes]] = []
    claimed: list[Any] = []
    deleted: list[bytes] = []
    # the PEL ids the scan may reach (it stops after `attempts`), and the next one: the cursor
    pending = group.pel.take(start, attempts + 1)
    position = 0
    while attempts and count and position < len(pending):
        attempts -= 1
        ident = pending[position]
        position += 1
        nack = group.pel[ident]
        if ident not in stream.entries:
            props.append(_xclaim_argv(key, group, ident, nack))
            engine.dirty += 1
            del group.pel[ident]
            if nack.consumer is not None:
                nack.consumer.pel.pop(ident, None)
            deleted.append(format_id(ident))
            count -= 1
            continue
        if min_idle and now - nack.time < min_idle:
            continue
        if consumer is None:
            consumer = group.consumers.get(name)
            if consumer is None:
                consumer = group.consumers[name] = Consumer(name, now)
            else:
                consumer.seen = now
        _claim(group, consumer, ident, nack, now)
        if not justid:
            nack.count += 1
        claimed.append(format_id(ident) if justid else _entry(stream, ident))
        count -= 1
        props.append(_xclaim_argv(key, group, ident, nack))
        engine.dirty += 1
    cursor = format_id(pending[position]) if position < len(pending) else b"0-0"
    client.rewrite(*props)
    return [cursor, claimed, deleted]


# --- XSETID ------------------------------------------------------------------------------------

@command("xsetid", -3, "write denyoom fast", keys=(1, 1, 1), group="stream", since="5.0.0",
         summary="An internal command for replicating stream values")
def xsetid(client: Client, argv: list[bytes]) -> Any:
    """An internal command for replicating stream values."""
    ident = _strict(argv[2])
    entries_added = -1
    max_deleted = 0
    i = 3
    argc = len(argv)
    while i < argc:
        more = argc - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = to_int(argv[i + 1])
            if entries_added < 0:
                raise ErrorReply("ERR entries_added must be positive")
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_deleted = _strict(argv[i + 1])
            if ident < max_deleted:
                raise ErrorReply("ERR The ID specified in XSETID is smaller than the provided "
                                 "max_deleted_entry_id")
            i += 2
        else:
            raise ErrorReply(SYNTAX)
    stream = _write_stream(client, argv[1])
    if stream is None:
        raise ErrorReply(NO_SUCH_KEY)
    if stream.length:
        if ident < stream.last_valid_id():
            raise ErrorReply("ERR The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and stream.length > entries_added:
            raise ErrorReply("ERR The entries_added specified in XSETID is smaller than the target stream "
                             "length")
    stream.last_id = ident
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted:
        stream.max_deleted = max_deleted
    _dirty(client)
    return OK


# --- XINFO -------------------------------------------------------------------------------------

container("xinfo", -2, group="stream", since="5.0.0", summary="A container for stream introspection commands")


def _info_stream(client: Client, argv: list[bytes]) -> Stream:
    stream = _read_stream(client, argv[2])
    if stream is None:
        raise ErrorReply(NO_SUCH_KEY)
    return stream


def _entries_read_reply(group: Group) -> int | None:
    return None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read


@command("xinfo|stream", -3, "readonly", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="Get information about a stream")
def xinfo_stream(client: Client, argv: list[bytes]) -> Any:
    """Get information about a stream."""
    stream = _info_stream(client, argv)
    argc = len(argv)
    full = argc > 3
    count = 10
    if full:
        if argc > 6 or argv[3].lower() != b"full" or argc == 5:
            raise subcommand_syntax_error(argv)
        if argc == 6:
            if argv[4].lower() != b"count":
                raise subcommand_syntax_error(argv)
            count = to_int(argv[5])
            if count < 0:
                count = 10
    head: dict[bytes, Any] = {
        b"length": stream.length,
        b"radix-tree-keys": len(stream.nodes),
        b"radix-tree-nodes": stream.radix_tree_nodes(),
        b"last-generated-id": format_id(stream.last_id),
        b"max-deleted-entry-id": format_id(stream.max_deleted),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": format_id(stream.first_id),
    }
    if not full:
        head[b"groups"] = len(stream.groups)
        first = stream.range(0, MAX_ID, 1)
        last = stream.range(0, MAX_ID, 1, True)
        head[b"first-entry"] = first[0] if first else None
        head[b"last-entry"] = last[0] if last else None
        return head
    head[b"entries"] = stream.range(0, MAX_ID, count)
    groups = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        pel = []
        for ident in group.pel.take(0, count):
            nack = group.pel[ident]
            owner = nack.consumer.name if nack.consumer is not None else b""
            pel.append([format_id(ident), owner, nack.time, nack.count])
        consumers = []
        for cname in sorted(group.consumers):
            consumer = group.consumers[cname]
            own = []
            for ident in consumer.pel.take(0, count):
                nack = consumer.pel[ident]
                own.append([format_id(ident), nack.time, nack.count])
            consumers.append({b"name": cname, b"seen-time": consumer.seen,
                              b"pel-count": len(consumer.pel), b"pending": own})
        groups.append({b"name": name, b"last-delivered-id": format_id(group.last_id),
                       b"entries-read": _entries_read_reply(group), b"lag": stream.lag(group),
                       b"pel-count": len(group.pel), b"pending": pel, b"consumers": consumers})
    head[b"groups"] = groups
    return head


@command("xinfo|groups", 3, "readonly", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="List the consumer groups of a stream")
def xinfo_groups(client: Client, argv: list[bytes]) -> Any:
    """List the consumer groups of a stream."""
    stream = _info_stream(client, argv)
    out = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        out.append({b"name": name, b"consumers": len(group.consumers), b"pending": len(group.pel),
                    b"last-delivered-id": format_id(group.last_id),
                    b"entries-read": _entries_read_reply(group), b"lag": stream.lag(group)})
    return out


@command("xinfo|consumers", 4, "readonly", keys=(2, 2, 1), group="stream", since="5.0.0",
         summary="List the consumers in a consumer group")
def xinfo_consumers(client: Client, argv: list[bytes]) -> Any:
    """List the consumers in a consumer group."""
    stream = _info_stream(client, argv)
    group = stream.groups.get(argv[3])
    if group is None:
        raise ErrorReply(f"NOGROUP No such consumer group '{argv[3].decode('utf-8', 'replace')}' "
                         f"for key name '{argv[2].decode('utf-8', 'replace')}'")
    now = now_ms()
    out = []
    for name in sorted(group.consumers):
        consumer = group.consumers[name]
        out.append({b"name": name, b"pending": len(consumer.pel), b"idle": max(now - consumer.seen, 0)})
    return out


help_command("xinfo", _XINFO_HELP, "stream", "5.0.0")


