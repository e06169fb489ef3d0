#!/usr/bin/env python3
"""redis-benchmark against a real redis-server and against cascade's in-memory server, side by side.

Both servers start fresh on free loopback ports in the same run; for each pipeline depth the two
are measured back to back (alternating which goes first per round) with the same redis-benchmark
settings, and the script prints per-test ops/s, p50 and the ratio memory/real, then the median
ratio per depth. Targets (issue 3): median ratio >= 0.9 at -P 1 and >= 0.5 at -P 16.

    python benchmarks/resp_server.py                      # -c 50 -n 200000, -P 1 and -P 16
    python benchmarks/resp_server.py -n 50000 --rounds 3 --json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = "set,get,incr,lpush,lpop,sadd,hset,zadd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"error: server on port {port} did not answer PING within 20 s")


def start(kind: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    common = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--dir", str(directory)]
    if kind == "real":
        binary = shutil.which("redis-server") or shutil.which("valkey-server")
        if not binary:
            sys.exit("error: redis-server is not installed; hint: apt-get install redis-server")
        argv = [binary, *common]
    else:
        argv = [sys.executable, "-m", "cascade_cli.resp", *common]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, port


def run_benchmark(port: int, tests: str, clients: int, requests: int, pipeline: int,
                  timeout: float) -> dict[str, tuple[float, float]]:
    """redis-benchmark --csv -> {test: (ops/s, p50 ms)}."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-n", str(requests),
            "-P", str(pipeline), "-t", tests, "--csv"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"error: redis-benchmark failed: {done.stderr.strip()[:200]}")
    out: dict[str, tuple[float, float]] = {}
    for row in csv.DictReader(io.StringIO(done.stdout)):
        name = row["test"].split(" ")[0].lower()
        out[name] = (float(row["rps"]), float(row["p50_latency_ms"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-n", "--requests", type=int, default=200_000)
    parser.add_argument("-t", "--tests", default=TESTS)
    parser.add_argument("-P", "--pipelines", default="1,16", help="comma-separated pipeline depths")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; the median is kept")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per redis-benchmark run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if not shutil.which("redis-benchmark"):
        sys.exit("error: redis-benchmark is not installed; hint: apt-get install redis-tools")
    pipelines = [int(p) for p in args.pipelines.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        real, real_port = start("real", Path(tmp))
        memory, memory_port = start("memory", Path(tmp))
        ports = {"real": real_port, "memory": memory_port}
        results: dict[int, dict[str, dict[str, list[tuple[float, float]]]]] = {}
        try:
            for pipeline in pipelines:
                per = results.setdefault(pipeline, {"real": {}, "memory": {}})
                for round_index in range(args.rounds):
                    order = ("real", "memory") if round_index % 2 == 0 else ("memory", "real")
                    for kind in order:
                        measured = run_benchmark(ports[kind], args.tests, args.clients, args.requests,
                                                 pipeline, args.timeout)
                        for test, value in measured.items():
                            per[kind].setdefault(test, []).append(value)
        finally:
            for proc in (real, memory):
                proc.terminate()
                proc.wait(10)
    report = []
    for pipeline, per in results.items():
        rows = []
        for test in per["real"]:
            real_ops = statistics.median(v[0] for v in per["real"][test])
            mem_ops = statistics.median(v[0] for v in per["memory"][test])
            rows.append({"test": test, "real_ops_per_sec": real_ops, "memory_ops_per_sec": mem_ops,
                         "ratio": mem_ops / real_ops,
                         "real_p50_ms": statistics.median(v[1] for v in per["real"][test]),
                         "memory_p50_ms": statistics.median(v[1] for v in per["memory"][test])})
        report.append({"pipeline": pipeline, "tests": rows,
                       "median_ratio": statistics.median(r["ratio"] for r in rows)})
    if args.json:
        print(json.dumps({"clients": args.clients, "requests": args.requests, "rounds": args.rounds,
                          "results": report}, indent=2))
        return 0
    print(f"redis-benchmark -c {args.clients} -n {args.requests}, {args.rounds} round(s); "
          "ratio = in-memory / redis-server")
    for block in report:
        print(f"\n-P {block['pipeline']}")
        print(f"{'test':8} {'redis ops/s':>12} {'memory ops/s':>13} {'ratio':>6} {'redis p50':>10} {'memory p50':>11}")
        for row in block["tests"]:
            print(f"{row['test']:8} {row['real_ops_per_sec']:12.0f} {row['memory_ops_per_sec']:13.0f} "
                  f"{row['ratio']:6.2f} {row['real_p50_ms']:8.3f}ms {row['memory_p50_ms']:9.3f}ms")
        print(f"median ratio at -P {block['pipeline']}: {block['median_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
