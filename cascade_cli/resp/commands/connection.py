"""Connection commands (Redis 7.0 semantics): PING, ECHO, SELECT, QUIT, AUTH, HELLO, RESET and
the CLIENT container (ID, INFO, LIST, KILL, SETNAME, GETNAME, REPLY, NO-EVICT, UNBLOCK, PAUSE,
UNPAUSE, TRACKING, TRACKINGINFO, CACHING, GETREDIR, HELP).

Decisions where the engine cannot do what Redis does (see the module's report):
- CLIENT PAUSE / UNPAUSE validate their arguments exactly as Redis and record the pause on the
  engine (`engine.pause_mode` "all"|"write", `engine.pause_end_ms` unix ms, cleared by UNPAUSE);
  the command dispatcher does not hold clients back yet, so nothing is actually paused.
- CLIENT TRACKING keeps the client's tracking state exactly as Redis reports it (TRACKINGINFO,
  GETREDIR, CACHING, the t/B flags and redir= of CLIENT LIST). Invalidation messages are sent
  by `tracking_remember` / `tracking_invalidate` / `tracking_flush` below when the engine calls
  them (it does not yet): until then a tracking client receives no invalidations.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from cascade_cli.resp.commands import (
    SYNTAX,
    arity_error,
    c_string,
    command,
    container,
    help_command,
    subcommand_syntax_error,
    to_int,
)
from cascade_cli.resp.protocol import OK, PONG, ErrorReply, Push, SetReply, Simple, Verbatim, parse_ll

if TYPE_CHECKING:
    from cascade_cli.resp.core import Client

INT32_MAX = 2**31 - 1
NAME_ERROR = "ERR Client names cannot contain spaces, newlines or special characters."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


# --- PING ECHO SELECT QUIT ---------------------------------------------------------------------

@command("ping", -1, "fast", group="connection", summary="Ping the server")
def ping(client: Client, argv: list[bytes]) -> object:
    """Ping the server."""
    if len(argv) > 2:
        raise arity_error("ping")
    if client.subscribed and client.resp == 2:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "loading stale fast", group="connection", summary="Echo the given string")
def echo(client: Client, argv: list[bytes]) -> object:
    """Echo the given string."""
    return argv[1]


@command("select", 2, "loading stale fast", group="connection",
         summary="Change the selected database for the current connection")
def select(client: Client, argv: list[bytes]) -> object:
    """Change the selected database."""
    index = to_int(argv[1])
    if not -INT32_MAX - 1 <= index <= INT32_MAX:
        raise ErrorReply("ERR value is out of range, value must between -2147483648 and 2147483647")
    if not 0 <= index < len(client.engine.dbs):
        raise ErrorReply("ERR DB index is out of range")
    client.select(index)
    return OK


@command("quit", -1, "noscript loading stale fast no-auth allow-busy", group="connection",
         summary="Close the connection")
def quit_(client: Client, argv: list[bytes]) -> object:
    """Close the connection."""
    client.close_after_reply = True
    return OK


# --- AUTH HELLO RESET --------------------------------------------------------------------------

def password_ok(client: Client, user: bytes, password: bytes) -> bool:
    """Whether user/password authenticate as the only user, "default" (requirepass)."""
    if user != b"default":
        return False
    required = client.engine.params.requirepass
    if not required:                     # the default user has nopass: any password works
        return True
    return hmac.compare_digest(password, required.encode("utf-8", "surrogateescape"))


@command("auth", -2, "noscript loading stale fast no-auth allow-busy", group="connection",
         summary="Authenticate to the server")
def auth(client: Client, argv: list[bytes]) -> object:
    """Authenticate to the server."""
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    if len(argv) == 2:
        if not client.engine.params.requirepass:
            raise ErrorReply("ERR AUTH <password> called without any password configured for the "
                             "default user. Are you sure your configuration is correct?")
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    if not password_ok(client, user, password):
        raise ErrorReply(WRONGPASS)
    client.authenticated = True
    client.user = "default"
    return OK


def check_name(name: bytes) -> None:
    for byte in name:
        if byte < 33 or byte > 126:
            raise ErrorReply(NAME_ERROR)


@command("hello", -1, "noscript loading stale fast no-auth allow-busy", group="connection",
         since="6.0.0", summary="Handshake with Redis")
def hello(client: Client, argv: list[bytes]) -> object:
    """Handshake: protocol version, optional AUTH and SETNAME."""
    version = client.resp
    if len(argv) >= 2:
        version = parse_ll(argv[1])          # type: ignore[assignment]
        if version is None:
            raise ErrorReply("ERR Protocol version is not an integer or out of range")
        if version not in (2, 3):
            raise ErrorReply("NOPROTO unsupported protocol version")
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"auth" and more >= 2:
            # Redis authenticates right here: a later bad option leaves the client authenticated
            if not password_ok(client, argv[i + 1], argv[i + 2]):
                raise ErrorReply(WRONGPASS)
            client.authenticated = True
            client.user = "default"
            i += 3
        elif option == b"setname" and more >= 1:
            check_name(argv[i + 1])
            client.name = argv[i + 1]          # at once, as Redis (even when NOAUTH follows)
            i += 2
        else:
            raise ErrorReply(f"ERR Syntax error in HELLO option '{c_string(argv[i])}'")
    if not client.authenticated:
        raise ErrorReply("NOAUTH HELLO must be called with the client already authenticated, otherwise "
                         "the HELLO AUTH <user> <pass> option can be used to authenticate the client and "
                         "select the RESP protocol version at the same time")
    client.resp = version
    return {b"server": b"redis", b"version": client.engine.version.encode(), b"proto": version,
            b"id": client.id, b"mode": b"standalone", b"role": b"master", b"modules": []}


@command("reset", 1, "noscript loading stale fast no-auth allow-busy", group="connection",
         since="6.2.0", summary="Reset the connection")
def reset(client: Client, argv: list[bytes]) -> object:
    """Back to a fresh connection's state (the name, RESP2, db 0, no MULTI/WATCH/subscriptions)."""
    engine = client.engine
    tracking_disable(client)
    client.select(0)
    client.resp = 2
    client.user = "default"
    client.authenticated = not engine.params.requirepass
    client.multi = None
    client.multi_error = False
    engine.unwatch_all(client)
    for channel in list(client.channels):
        engine.unsubscribe(client, channel, engine.channels, client.channels)
    for pattern in list(client.patterns):
        engine.unsubscribe(client, pattern, engine.patterns, client.patterns)
    for channel in list(client.shard_channels):
        engine.unsubscribe(client, channel, engine.shard_channels, client.shard_channels)
    client.name = b""
    client.reply_mode = "on"
    if client.monitor:
        engine.monitors.pop(client, None)
        client.monitor = False
    return Simple("RESET")


# --- CLIENT ------------------------------------------------------------------------------------

container("client", -2, "", group="connection", since="2.4.0",
          summary="A container for client connection commands")

_TYPES = {b"normal": "normal", b"pubsub": "pubsub", b"master": "master", b"replica": "replica",
          b"slave": "replica"}


def client_type(other: Client) -> str:
    """Redis's client type: replica, pubsub, master or normal (a MONITOR client is normal)."""
    if other.channels or other.patterns or other.shard_channels:
        return "pubsub"
    return "normal"


def _parse_type(raw: bytes) -> str:
    kind = _TYPES.get(raw.lower())
    if kind is None:
        raise ErrorReply(f"ERR Unknown client type '{c_string(raw)}'")
    return kind


def client_flags(other: Client) -> str:
    out = ""
    if other.monitor:
        out += "O"
    if other.channels or other.patterns or other.shard_channels:
        out += "P"
    if other.multi is not None:
        out += "x"
    if other.blocked is not None:
        out += "b"
    state = _tracking_state(other)
    if state is not None:
        out += "t"
        if state.get("broken"):
            out += "R"
        if state["bcast"]:
            out += "B"
    if other.cas_dirty:
        out += "d"
    if other.close_after_reply:
        out += "c"
    if other.no_evict:
        out += "e"
    return out or "N"


def client_line(other: Client, caller: Client, argv: list[bytes], current: str) -> str:
    """One CLIENT LIST / CLIENT INFO line (Redis 7.0 fields, in order, ending with a newline)."""
    if other is caller:
        argv_mem = sum(len(arg) for arg in argv)
        qbuf = len(b"*%d\r\n" % len(argv)) + sum(len(b"$%d\r\n" % len(arg)) + len(arg) + 2 for arg in argv)
        qbuf_free = max(20474 - qbuf, 0)
        rbs = rbp = 16384
        cmd = current
    else:
        argv_mem = qbuf = 0
        qbuf_free = 20474
        rbs, rbp = 1024, 0
        cmd = other.last_cmd or "NULL"
        if other.multi:                  # Redis names the last command queued
            cmd = other.multi[-1][0].name
    multi = -1
    multi_mem = 0
    if other.multi is not None:
        multi = len(other.multi)
        multi_mem = sum(sum(len(arg) for arg in queued) + 8 * len(queued) for _, queued in other.multi)
    omem = 0
    transport = getattr(other, "transport", None)
    if transport is not None:
        try:
            omem = transport.get_write_buffer_size()
        except Exception:     # noqa: BLE001 - a closing transport: nothing buffered to report
            omem = 0
    tot_mem = 22272 + qbuf + argv_mem + multi_mem + omem
    state = _tracking_state(other)
    redir = -1 if state is None else state["redirect"]
    return (f"id={other.id} addr={other.addr} laddr={other.laddr} fd={other.fd} "
            f"name={other.name.decode('latin-1')} age={max(int(time.time() - other.created), 0)} "
            f"idle={max(int(time.monotonic() - other.last_interaction), 0)} flags={client_flags(other)} "
            f"db={other.db.index} sub={len(other.channels)} psub={len(other.patterns)} "
            f"ssub={len(other.shard_channels)} multi={multi} qbuf={qbuf} qbuf-free={qbuf_free} "
            f"argv-mem={argv_mem} multi-mem={multi_mem} rbs={rbs} rbp={rbp} obl=0 oll=0 omem={omem} "
            f"tot-mem={tot_mem} events=r cmd={cmd} user={other.user} redir={redir} resp={other.resp}\n")


@command("client|id", 2, "noscript loading stale", group="connection", since="5.0.0",
         summary="Returns the client ID for the current connection")
def client_id(client: Client, argv: list[bytes]) -> object:
    return client.id


@command("client|info", 2, "noscript loading stale", group="connection", since="6.2.0",
         summary="Returns information about the current client connection.")
def client_info(client: Client, argv: list[bytes]) -> object:
    return Verbatim(client_line(client, client, argv, "client|info"))


@command("client|list", -2, "admin noscript loading stale", group="connection", since="2.4.0",
         summary="Get the list of client connections")
def client_list(client: Client, argv: list[bytes]) -> object:
    clients = client.engine.clients
    if len(argv) == 2:
        chosen = list(clients.values())
    elif len(argv) == 4 and argv[2].lower() == b"type":
        kind = _parse_type(argv[3])
        chosen = [other for other in clients.values() if client_type(other) == kind]
    elif len(argv) >= 4 and argv[2].lower() == b"id":
        ids = []
        for raw in argv[3:]:
            value = parse_ll(raw)
            if value is None:
                raise ErrorReply("ERR Invalid client ID")
            ids.append(value)
        chosen = [clients[i] for i in ids if i in clients]
    else:
        raise ErrorReply(SYNTAX)
    return Verbatim("".join(client_line(other, client, argv, "client|list") for other in chosen))


@command("client|kill", -3, "admin noscript loading stale", group="connection", since="2.4.0",
         summary="Kill the connection of a client")
def client_kill(client: Client, argv: list[bytes]) -> object:
    engine = client.engine
    if len(argv) == 3:                                   # old form: CLIENT KILL ip:port
        addr = argv[2].decode("utf-8", "surrogateescape")
        for other in list(engine.clients.values()):
            if other.addr == addr:
                _kill(client, other)
                return OK
        raise ErrorReply("ERR No such client")
    wanted_id = None
    wanted_type = None
    addr = laddr = None
    user = None
    skipme = True
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if i + 1 >= len(argv):
            raise ErrorReply(SYNTAX)
        value = argv[i + 1]
        if option == b"id":
            number = parse_ll(value)
            if number is None or number <= 0:
                raise ErrorReply("ERR client-id should be greater than 0")
            wanted_id = number
        elif option == b"type":
            wanted_type = _parse_type(value)
        elif option == b"addr":
            addr = value.decode("utf-8", "surrogateescape")
        elif option == b"laddr":
            laddr = value.decode("utf-8", "surrogateescape")
        elif option == b"user":
            if value != b"default":
                raise ErrorReply(f"ERR No such user '{c_string(value)}'")
            user = "default"
        elif option == b"skipme":
            flag = value.lower()
            if flag == b"yes":
                skipme = True
            elif flag == b"no":
                skipme = False
            else:
                raise ErrorReply(SYNTAX)
        else:
            raise ErrorReply(SYNTAX)
        i += 2
    killed = 0
    for other in list(engine.clients.values()):
        if wanted_id is not None and other.id != wanted_id:
            continue
        if wanted_type is not None and client_type(other) != wanted_type:
            continue
        if addr is not None and other.addr != addr:
            continue
        if laddr is not None and other.laddr != laddr:
            continue
        if user is not None and other.user != user:
            continue
        if other is client and skipme:
            continue
        _kill(client, other)
        killed += 1
    return killed


def _kill(client: Client, other: Client) -> None:
    if other is client:
        client.close_after_reply = True      # answer this command, then close
    else:
        other.close()


@command("client|setname", 3, "noscript loading stale", group="connection", since="2.6.9",
         summary="Set the current connection name")
def client_setname(client: Client, argv: list[bytes]) -> object:
    check_name(argv[2])
    client.name = argv[2]
    return OK


@command("client|getname", 2, "noscript loading stale", group="connection", since="2.6.9",
         summary="Get the current connection name")
def client_getname(client: Client, argv: list[bytes]) -> object:
    return client.name or None


@command("client|reply", 3, "noscript loading stale", group="connection", since="3.2.0",
         summary="Instruct the server whether to reply to commands")
def client_reply(client: Client, argv: list[bytes]) -> object:
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_mode = "on"
    elif mode == b"off":
        client.reply_mode = "off"
    elif mode == b"skip":
        if client.reply_mode != "off":
            client.reply_mode = "skip-now"
    else:
        raise ErrorReply(SYNTAX)
    return OK


@command("client|no-evict", 3, "admin noscript loading stale", group="connection", since="7.0.0",
         summary="Set client eviction mode for the current connection")
def client_no_evict(client: Client, argv: list[bytes]) -> object:
    mode = argv[2].lower()
    if mode == b"on":
        client.no_evict = True
    elif mode == b"off":
        client.no_evict = False
    else:
        raise ErrorReply(SYNTAX)
    return OK


@command("client|unblock", -3, "admin noscript loading stale", group="connection", since="5.0.0",
         summary="Unblock a client blocked in a blocking command from a different connection")
def client_unblock(client: Client, argv: list[bytes]) -> object:
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    target_id = to_int(argv[2])
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason == b"error":
            error = True
        elif reason != b"timeout":
            raise ErrorReply("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    target = client.engine.clients.get(target_id)
    if target is None or target.blocked is None:
        return 0
    return 1 if client.engine.unblock_by_request(target, error) else 0


@command("client|pause", -3, "admin noscript loading stale", group="connection", since="2.9.50",
         summary="Stop processing commands from clients for some time")
def client_pause(client: Client, argv: list[bytes]) -> object:
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    timeout = to_int(argv[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise ErrorReply("ERR timeout is negative")
    now = int(time.time() * 1000)
    if timeout > 0:
        timeout += now
        if timeout >= 2**63:             # Redis's end time wraps around: no pause at all
            timeout = 0
    mode = "all"
    if len(argv) == 4:
        raw = argv[3].lower()
        if raw == b"write":
            mode = "write"
        elif raw != b"all":
            raise ErrorReply("ERR CLIENT PAUSE mode must be WRITE or ALL")
    engine: Any = client.engine
    # A pause never shortens one in effect, nor turns ALL into WRITE (as in Redis).
    current_end = getattr(engine, "pause_end_ms", 0) or 0
    current_mode = getattr(engine, "pause_mode", None)
    if current_mode == "all" and current_end > now and mode == "write":
        mode = "all"
    engine.pause_mode = mode
    engine.pause_end_ms = max(timeout, current_end if current_end > now else 0)
    return OK


@command("client|unpause", 2, "admin noscript loading stale", group="connection", since="6.2.0",
         summary="Resume processing of clients that were paused")
def client_unpause(client: Client, argv: list[bytes]) -> object:
    engine: Any = client.engine
    engine.pause_mode = None
    engine.pause_end_ms = 0
    return OK


# --- client side caching (CLIENT TRACKING) ---------------------------------------------------

def _tracking_state(client: Client) -> dict[str, Any] | None:
    """The client's tracking state when tracking is on: redirect, bcast, optin, optout, noloop,
    prefixes (sorted list), caching (bool), broken (bool)."""
    return getattr(client, "tracking_state", None)


def tracking_disable(client: Client) -> None:
    state = _tracking_state(client)
    if state is None:
        return
    client.tracking_state = None       # type: ignore[attr-defined]
    client.tracking = False
    engine: Any = client.engine
    table = getattr(engine, "tracking_clients", None)
    if table is not None:
        table.pop(client, None)


def _overlap(a: bytes, b: bytes) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


@command("client|tracking", -3, "noscript loading stale", group="connection", since="6.0.0",
         summary="Enable or disable server assisted client side caching support")
def client_tracking(client: Client, argv: list[bytes]) -> object:
    engine: Any = client.engine
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - 1 - i
        if option == b"redirect" and more:
            i += 1
            if redirect != 0:
                raise ErrorReply("ERR A client can only redirect to a single other client")
            target = to_int(argv[i])
            redirect = target
            if target not in engine.clients:
                raise ErrorReply("ERR The client ID you want redirect to does not exist")
        elif option == b"bcast":
            bcast = True
        elif option == b"optin":
            optin = True
        elif option == b"optout":
            optout = True
        elif option == b"noloop":
            noloop = True
        elif option == b"prefix" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise ErrorReply(SYNTAX)
        i += 1
    switch = argv[2].lower()
    if switch == b"off":
        tracking_disable(client)
        return OK
    if switch != b"on":
        raise ErrorReply(SYNTAX)
    state = _tracking_state(client)
    if not bcast and prefixes:
        raise ErrorReply("ERR PREFIX option requires BCAST mode to be enabled")
    if state is not None and state["bcast"] != bcast:
        raise ErrorReply("ERR You can't switch BCAST mode on/off before disabling tracking for this "
                         "client, and then re-enabling it with a different mode.")
    if bcast and (optin or optout):
        raise ErrorReply("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if optin and optout:
        raise ErrorReply("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if state is not None and ((optin and state["optout"]) or (optout and state["optin"])):
        raise ErrorReply("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                         "client, and then re-enabling it with a different mode.")
    existing = state["prefixes"] if state is not None else []
    if bcast:
        for index, prefix in enumerate(prefixes):
            for old in existing:
                if _overlap(old, prefix):
                    raise ErrorReply(
                        f"ERR Prefix '{c_string(prefix)}' overlaps with an existing "
                        f"prefix '{c_string(old)}'. Prefixes for a single client must "
                        "not overlap.")
            for other in prefixes[index + 1:]:
                if _overlap(prefix, other):
                    raise ErrorReply(
                        f"ERR Prefix '{c_string(prefix)}' overlaps with another provided "
                        f"prefix '{c_string(other)}'. Prefixes for a single client must "
                        "not overlap.")
    if state is None:
        state = {"redirect": 0, "bcast": bcast, "optin": False, "optout": False, "noloop": False,
                 "prefixes": [], "caching": False, "broken": False}
    # Redis keeps the options already on and adds the new ones; a new REDIRECT replaces it.
    state["redirect"] = redirect
    state["optin"] = state["optin"] or optin
    state["optout"] = state["optout"] or optout
    state["noloop"] = state["noloop"] or noloop
    if bcast:
        new = prefixes or ([b""] if not existing else [])
        state["prefixes"] = sorted(set(existing) | set(new))
    client.tracking_state = state       # type: ignore[attr-defined]
    client.tracking = True
    _tracking_clients(engine)            # forget the tracking clients that went away
    table = getattr(engine, "tracking_clients", None)
    if table is None:
        table = engine.tracking_clients = {}
    table[client] = None
    return OK


def _caching_active(client: Client, state: dict[str, Any]) -> bool:
    # CLIENT CACHING applies to the next command only (CLIENT subcommands keep it, as in Redis);
    # last_cmd tells even when the engine does not call tracking_after_command.
    return bool(state["caching"]) and client.last_cmd.startswith("client|")


@command("client|caching", 3, "noscript loading stale", group="connection", since="6.0.0",
         summary="Instruct the server about tracking or not keys in the next request")
def client_caching(client: Client, argv: list[bytes]) -> object:
    state = _tracking_state(client)
    if state is None:
        raise ErrorReply("ERR CLIENT CACHING can be called only when the client is in tracking mode "
                         "with OPTIN or OPTOUT mode enabled")
    value = argv[2].lower()
    if value == b"yes":
        if not state["optin"]:
            raise ErrorReply("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif value == b"no":
        if not state["optout"]:
            raise ErrorReply("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise ErrorReply(SYNTAX)
    state["caching"] = True
    return OK


@command("client|getredir", 2, "noscript loading stale", group="connection", since="6.0.0",
         summary="Get tracking notifications redirection client ID if any")
def client_getredir(client: Client, argv: list[bytes]) -> object:
    state = _tracking_state(client)
    return -1 if state is None else state["redirect"]


@command("client|trackinginfo", 2, "noscript loading stale", group="connection", since="6.2.0",
         summary="Return information about server assisted client side caching for the current connection")
def client_trackinginfo(client: Client, argv: list[bytes]) -> object:
    state = _tracking_state(client)
    if state is None:
        return {b"flags": SetReply([b"off"]), b"redirect": -1, b"prefixes": []}
    flags = [b"on"]
    if state["bcast"]:
        flags.append(b"bcast")
    caching = _caching_active(client, state)
    if state["optin"]:
        flags.append(b"optin")
        if caching:
            flags.append(b"caching-yes")
    if state["optout"]:
        flags.append(b"optout")
        if caching:
            flags.append(b"caching-no")
    if state["noloop"]:
        flags.append(b"noloop")
    if state["broken"]:
        flags.append(b"broken_redirect")
    return {b"flags": SetReply(flags), b"redirect": state["redirect"],
            b"prefixes": list(state["prefixes"])}


# Invalidation. The engine should call `tracking_after_command(client, cmd, argv)` after every
# command of a client with `client.tracking` set, `tracking_invalidate(engine, key, writer)` when
# a key changes (writes, expiry, eviction) while `engine.tracking_clients` is non-empty, and
# `tracking_flush(engine)` on FLUSHDB/FLUSHALL. Until it does, no invalidation is sent.

def tracking_after_command(client: Client, cmd: Any, argv: list[bytes]) -> None:
    """Remember the keys a read-only command read (default and OPTIN/OPTOUT modes), then end
    the effect of CLIENT CACHING (kept across CLIENT subcommands and inside MULTI, as Redis)."""
    state = _tracking_state(client)
    if state is None:
        return
    if "readonly" in cmd.flags and not state["bcast"]:
        caching = state["caching"]
        if not ((state["optin"] and not caching) or (state["optout"] and caching)):
            keys = cmd.keys_of(argv)
            if keys:
                engine: Any = client.engine
                table = getattr(engine, "tracking_table", None)
                if table is None:
                    table = engine.tracking_table = {}
                for key in keys:
                    table.setdefault(key, {})[client.id] = None
    if not cmd.name.startswith("client|") and client.multi is None:
        state["caching"] = False


def _tracking_clients(engine: Any) -> list[Client]:
    """The tracking clients still connected (forgets the ones that went away)."""
    table = getattr(engine, "tracking_clients", None)
    if not table:
        return []
    for client in [c for c in table if c.closed or engine.clients.get(c.id) is not c]:
        del table[client]
    return list(table)


def _send_invalidation(engine: Any, client: Client, state: dict[str, Any], keys: list[bytes] | None) -> None:
    target = client
    redirected = bool(state["redirect"])
    if redirected:
        found = engine.clients.get(state["redirect"])
        if found is None:
            if not state["broken"]:
                state["broken"] = True
                if client.resp == 3:
                    client.send(Push([b"tracking-redir-broken", state["redirect"]]))
            return
        target = found
    if target.resp == 3:
        target.send(Push([b"invalidate", keys]))
    elif redirected and target.subscribed:
        target.send(Push([b"message", b"__redis__:invalidate", keys]))


def tracking_invalidate(engine: Any, key: bytes, writer: Client | None = None) -> None:
    """`key` changed: tell the clients that may cache it, and the BCAST clients whose prefixes
    match (NOLOOP clients are not told about their own writes)."""
    clients = _tracking_clients(engine)
    if not clients:
        return
    table = getattr(engine, "tracking_table", None)
    ids = table.pop(key, None) if table else None
    for client_id in ids or ():
        client = engine.clients.get(client_id)
        state = _tracking_state(client) if client is not None else None
        if state is None or state["bcast"] or (state["noloop"] and client is writer):
            continue
        _send_invalidation(engine, client, state, [key])   # type: ignore[arg-type]
    for client in clients:
        state = _tracking_state(client)
        if state is None or not state["bcast"] or (state["noloop"] and client is writer):
            continue
        if any(key.startswith(prefix) for prefix in state["prefixes"]):
            _send_invalidation(engine, client, state, [key])


def tracking_flush(engine: Any) -> None:
    """FLUSHDB/FLUSHALL: every tracking client drops its whole cache (a null invalidation)."""
    table = getattr(engine, "tracking_table", None)
    if table:
        table.clear()
    for client in _tracking_clients(engine):
        state = _tracking_state(client)
        if state is not None:
            _send_invalidation(engine, client, state, None)


# --- CLIENT HELP ---------------------------------------------------------------------------------

CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]


help_command("client", CLIENT_HELP, "connection", "5.0.0")
