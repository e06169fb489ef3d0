"""`python -m cascade_cli.resp [redis.conf] [--port 6379 --bind 127.0.0.1 ...]`: run the server."""

from __future__ import annotations

import sys

USAGE = """\
Usage: python -m cascade_cli.resp [/path/to/redis.conf] [--option value ...]

The cascade in-memory Redis-compatible server (Redis 7.0 behaviour). Options are redis-server's:
  --port 6379 --bind "127.0.0.1 -::1" --requirepass SECRET --dir DIR --appendonly yes
  --appendfsync always|everysec|no --maxmemory 100mb --maxmemory-policy allkeys-lru ...
It runs in the foreground; `cascade redis start --engine memory` runs it detached.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args and args[0] in ("-v", "--version"):
        from cascade_cli.resp.core import REDIS_VERSION
        from cascade_cli import __version__
        sys.stdout.write(f"cascade in-memory server v={__version__} (Redis {REDIS_VERSION} compatible)\n")
        return 0
    from cascade_cli.resp.params import Params, parse_command_line
    params = Params()
    try:
        for name, values in parse_command_line(args):
            if name == "daemonize" and values and values[0].lower() == "yes":
                raise ValueError("daemonize yes is not supported: run `cascade redis start` to detach")
            params.set(name, " ".join(values), startup=True)
    except (OSError, ValueError, KeyError) as error:
        sys.stderr.write(f"*** FATAL CONFIG ERROR *** {error}\n")
        return 1
    from cascade_cli.resp.server import run
    return run(params)


if __name__ == "__main__":
    sys.exit(main())
