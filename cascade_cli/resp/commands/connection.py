"""Connection commands: PING, ECHO, SELECT, QUIT (the rest of the group comes with its owner)."""

from __future__ import annotations

from cascade_cli.resp.commands import command, to_int
from cascade_cli.resp.core import Client
from cascade_cli.resp.protocol import OK, PONG, ErrorReply, Push


@command("ping", -1, "fast stale loading", group="connection")
def ping(client: Client, argv: list[bytes]) -> object:
    """Ping the server."""
    if len(argv) > 2:
        raise ErrorReply("ERR wrong number of arguments for 'ping' command")
    if client.resp == 2 and client.subscriptions:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "fast stale loading", group="connection")
def echo(client: Client, argv: list[bytes]) -> object:
    """Echo the given string."""
    return argv[1]


@command("select", 2, "loading stale fast", group="connection")
def select(client: Client, argv: list[bytes]) -> object:
    """Change the selected database."""
    index = to_int(argv[1], "ERR value is not an integer or out of range")
    if not 0 <= index < len(client.engine.dbs):
        raise ErrorReply("ERR DB index is out of range")
    client.select(index)
    return OK


@command("quit", -1, "no-auth allow-busy noscript loading stale fast", group="connection")
def quit_(client: Client, argv: list[bytes]) -> object:
    """Close the connection."""
    client.close_after_reply = True
    return OK


__all__ = ["Push"]


def _auth(client: Client, user: bytes, password: bytes) -> None:
    engine = client.engine
    required = engine.params.requirepass
    if user != b"default" or (required and password.decode("utf-8", "surrogateescape") != required):
        raise ErrorReply("WRONGPASS invalid username-password pair or user is disabled.")
    client.authenticated = True


@command("auth", -2, "no-auth noscript loading stale fast", group="connection")
def auth(client: Client, argv: list[bytes]) -> object:
    """Authenticate to the server."""
    if len(argv) > 3:
        raise ErrorReply("ERR syntax error")
    if len(argv) == 2 and not client.engine.params.requirepass:
        raise ErrorReply("ERR AUTH <password> called without any password configured for the default "
                         "user. Are you sure your configuration is correct?")
    user, password = (b"default", argv[1]) if len(argv) == 2 else (argv[1], argv[2])
    _auth(client, user, password)
    return OK


@command("hello", -1, "no-auth noscript loading stale fast", group="connection")
def hello(client: Client, argv: list[bytes]) -> object:
    """Handshake: protocol version, optional AUTH and SETNAME."""
    version = client.resp
    if len(argv) >= 2:
        try:
            version = to_int(argv[1])
        except ErrorReply:
            raise ErrorReply("ERR Protocol version is not an integer or out of range") from None
        if version not in (2, 3):
            raise ErrorReply("NOPROTO unsupported protocol version")
    i = 2
    name = None
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"auth" and more >= 2:
            _auth(client, argv[i + 1], argv[i + 2])
            i += 3
        elif option == b"setname" and more >= 1:
            name = argv[i + 1]
            if any(b <= 32 or b > 126 for b in name):
                raise ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")
            i += 2
        else:
            raise ErrorReply(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if not client.authenticated:
        raise ErrorReply("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                         "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                         "select the RESP protocol version at the same time")
    if name is not None:
        client.name = name
    client.resp = version
    return {b"server": b"redis", b"version": client.engine.version.encode(), b"proto": version,
            b"id": client.id, b"mode": b"standalone", b"role": b"master", b"modules": []}
