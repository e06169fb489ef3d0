#!/usr/bin/env python3
"""Start-up cost of `cascade --help` against a bare one-command Typer app, side by side.

Both run as fresh processes on the same interpreter, interleaved round by round so that machine
noise hits both alike. Prints the median wall time of each and their ratio (target: <= 1.3x).

    python benchmarks/startup.py [--rounds 30] [--json] [--fail-above 1.3]

Two peers are measured: the bare app with Typer's defaults (rich-formatted help, what a new
Typer app gets), and the same app with rich_markup_mode=None (plain help, as cascade uses), so
the ratio against each is visible.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

BARE_APP = '''
import typer

app = typer.Typer({options})


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    print(f"hello {{name}}")


if __name__ == "__main__":
    app()
'''


def cascade_script() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "cascade"
    if script.exists():
        return [str(script)]
    found = shutil.which("cascade")
    return [found] if found else [sys.executable, "-m", "cascade_cli"]


def wall_time(command: list[str], limit: float = 30.0) -> float:
    """Seconds from spawn to exit. Waits with a blocking waitpid (subprocess's timeout= polls
    with sleeps of up to 50 ms, which would swamp a 100 ms measurement); a timer kills a run
    that exceeds `limit`."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(limit, proc.kill)
    watchdog.start()
    try:
        code = proc.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="runs of each command (max 500)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--fail-above", type=float, default=None,
                        help="exit 3 when the ratio against the default bare app exceeds this")
    args = parser.parse_args()
    rounds = max(3, min(args.rounds, 500))

    with tempfile.TemporaryDirectory() as tmp:
        bare_default = Path(tmp) / "bare_default.py"
        bare_default.write_text(BARE_APP.format(options=""))
        bare_plain = Path(tmp) / "bare_plain.py"
        bare_plain.write_text(BARE_APP.format(options="rich_markup_mode=None"))
        commands = {
            "cascade": [*cascade_script(), "--help"],
            "bare_typer": [sys.executable, str(bare_default), "--help"],
            "bare_typer_plain_help": [sys.executable, str(bare_plain), "--help"],
        }
        for command in commands.values():  # warm the file cache and .pyc files
            wall_time(command)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                samples[name].append(wall_time(command))

    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    result = {
        "rounds": rounds,
        "cascade_help_ms": round(medians["cascade"], 1),
        "bare_typer_help_ms": round(medians["bare_typer"], 1),
        "bare_typer_plain_help_ms": round(medians["bare_typer_plain_help"], 1),
        "ratio_vs_bare_typer": round(medians["cascade"] / medians["bare_typer"], 3),
        "ratio_vs_bare_typer_plain_help": round(medians["cascade"] / medians["bare_typer_plain_help"], 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"median wall time over {rounds} interleaved rounds")
        print(f"  cascade --help                      {result['cascade_help_ms']:7.1f} ms")
        print(f"  bare Typer app --help (defaults)    {result['bare_typer_help_ms']:7.1f} ms"
              f"   ratio {result['ratio_vs_bare_typer']:.2f}x (target <= 1.3x)")
        print(f"  bare Typer app --help (plain help)  {result['bare_typer_plain_help_ms']:7.1f} ms"
              f"   ratio {result['ratio_vs_bare_typer_plain_help']:.2f}x")
    if args.fail_above is not None and result["ratio_vs_bare_typer"] > args.fail_above:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
