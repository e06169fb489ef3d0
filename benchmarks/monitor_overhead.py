#!/usr/bin/env python3
"""What watching costs: the hub's latency under the same load with nobody watching, with
`cascade monitor` watching it live, and with a browser's dashboard feed open, in one run.

The script starts a redis-server on a free port (`--save '' --appendonly no`) and one
`cascade serve --redis-url` on it (Venice proxy off). Then, in each of the setups below, it runs
`cascade bench ws --url <hub> -c C --rate R --duration D --warmup 1 --json` (the hub's fan-out
measured end to end, open loop, coordinated omission corrected) and prints the median and p99
latency, delivered events/s and the watcher's CPU, each with its ratio to `none` in the same run:

  none       nobody watches
  monitor    `cascade monitor --interval I --no-venice` live on a pseudo-terminal (its screen is
             read and thrown away), reading the hub over HTTP and Redis over RESP every I seconds
  dashboard  a WebSocket client on the hub's /api/monitor/ws, the hub's own monitor reading
             itself and Redis every I seconds (CASCADE_MONITOR_INTERVAL)

The setups run --rounds times (default 2) in alternating order; the table shows medians. CPU
is utime+stime from /proc/PID/stat (the monitor process; for the dashboard the hub's CPU above
`none` is the cost). Defaults: -c 200, --rate 200 events/s (40,000 deliveries/s), 6 s, I = 0.2
s (five times the default refresh rate, to make the cost visible).

    python3 benchmarks/monitor_overhead.py [--clients 200] [--rate 200] [--duration 6]
        [--interval 0.2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

CASCADE = [sys.executable, "-m", "cascade_cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {seconds} s")


def start_monitor(hub: str, redis_url: str, interval: float) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """The live view on a pty whose output a thread reads and discards."""
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 140, 0, 0))
    proc = subprocess.Popen([*CASCADE, "monitor", "--hub-url", hub, "--redis-url", redis_url, "--no-venice",
                             "--interval", str(interval)], stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "TERM": "xterm-256color"}, start_new_session=True)
    os.close(follower)

    def drain() -> None:
        while True:
            try:
                if not os.read(leader, 65536):
                    break
            except OSError:
                break
        os.close(leader)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return proc, thread


def start_dashboard_viewer(hub: str) -> tuple[subprocess.Popen[bytes], None]:
    code = ("import sys, time\nfrom websockets.sync.client import connect\n"
            "with connect(sys.argv[1]) as ws:\n"
            "    end = time.monotonic() + 600\n"
            "    while time.monotonic() < end:\n"
            "        ws.recv(timeout=30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, hub.replace("http://", "ws://") + "/api/monitor/ws"])
    return proc, None


def bench(hub: str, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run([*CASCADE, "bench", "ws", "--url", hub, "-c", str(args.clients), "--rate", str(args.rate),
                          "--duration", str(args.duration), "--warmup", "1", "--processes", "1", "--json"],
                         capture_output=True, text=True, timeout=args.duration + 120, check=False)
    if out.returncode != 0:
        raise SystemExit(f"cascade bench ws failed ({out.returncode}): {out.stderr.strip()}")
    result = json.loads(out.stdout)["results"][0]
    return {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "delivered_per_sec": result["delivered_per_sec"],
            "lost": result["lost"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    redis = shutil.which("redis-server")
    if not redis:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    results: dict[str, list[dict[str, float]]] = {"none": [], "monitor": [], "dashboard": []}
    with TemporaryDirectory() as tmp:
        redis_port, hub_port = free_port(), free_port()
        redis_proc = subprocess.Popen([redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        wait_port(redis_port)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        hub = f"http://127.0.0.1:{hub_port}"
        serve = subprocess.Popen([*CASCADE, "serve", "--port", str(hub_port), "--redis-url", redis_url,
                                  "--embedded-redis", "never", "--no-venice-proxy"],
                                 env={**os.environ, "CASCADE_MONITOR_INTERVAL": str(args.interval)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(hub_port)
        try:
            for round_ in range(args.rounds):
                order = ["none", "monitor", "dashboard"]
                for setup in order if round_ % 2 == 0 else order[::-1]:
                    watcher = None
                    if setup == "monitor":
                        watcher, _ = start_monitor(hub, redis_url, args.interval)
                    elif setup == "dashboard":
                        watcher, _ = start_dashboard_viewer(hub)
                    time.sleep(1.5)   # the watcher connected and read at least once
                    hub_cpu, watcher_cpu = cpu_seconds(serve.pid), cpu_seconds(watcher.pid) if watcher else 0.0
                    started = time.monotonic()
                    figures = bench(hub, args)
                    elapsed = time.monotonic() - started
                    figures["hub_cpu_pct"] = 100 * (cpu_seconds(serve.pid) - hub_cpu) / elapsed
                    figures["watcher_cpu_pct"] = (100 * (cpu_seconds(watcher.pid) - watcher_cpu) / elapsed
                                                  if watcher else 0.0)
                    results[setup].append(figures)
                    if watcher:
                        watcher.terminate()
                        watcher.wait(10)
                    print(f"round {round_ + 1} {setup:9s} " + "  ".join(f"{k} {v:g}" for k, v in figures.items()),
                          file=sys.stderr)
        finally:
            serve.terminate()
            serve.wait(15)
            redis_proc.terminate()
            redis_proc.wait(10)
    base = {k: statistics.median(r[k] for r in results["none"]) for k in results["none"][0]}
    print(f"hub fan-out: {args.clients} subscribers, {args.rate:g} events/s, {args.duration:g} s, watchers every "
          f"{args.interval:g} s; medians of {args.rounds} rounds; (ratio to none)")
    print(f"{'setup':10s} {'p50 ms':>14s} {'p99 ms':>14s} {'delivered/s':>20s} {'lost':>5s} {'hub CPU %':>16s} "
          f"{'watcher CPU %':>14s}")
    for setup, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}

        def cell(key: str, digits: int = 2, med: dict[str, float] = med) -> str:
            ratio = med[key] / base[key] if base[key] else float("nan")
            return f"{med[key]:.{digits}f} ({ratio:.2f}x)"
        print(f"{setup:10s} {cell('p50_ms'):>14s} {cell('p99_ms'):>14s} {cell('delivered_per_sec', 0):>20s} "
              f"{med['lost']:5.0f} {cell('hub_cpu_pct', 1):>16s} {med['watcher_cpu_pct']:14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
