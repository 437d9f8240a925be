"""Scrape latency of host-pm-exporter beside node_exporter on this machine, and the
exporter's RSS after 1,000 scrapes.  Run by hand (needs wrk and prometheus-node-exporter):

    .venv/bin/python tests/bench/scrape_latency.py [--seconds 10] [--rounds 3]

Targets run one after another in alternating rounds, each measured by
``wrk -t1 -c1 --latency`` (one scrape at a time, as Prometheus does).  Printed: p50
and p99 per target (median over rounds), requests per second, and RSS.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

EXPORTER = str(Path(sys.executable).with_name("host-pm-exporter"))
NODE_EXPORTER_FLAGS = [
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.cpu.info",
    "--collector.cpufreq",
]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*cmd, f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not start")


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    assert match, value
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(port: int, seconds: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/metrics"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return p50, p99, rps


def rss_after(port: int, pid: int, scrapes: int) -> tuple[float, float]:
    before = psutil.Process(pid).memory_info().rss / 2**20
    for _ in range(scrapes):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            resp.read()
    return before, psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node or not shutil.which("wrk"):
        raise SystemExit("needs wrk and prometheus-node-exporter (apt-get install wrk prometheus-node-exporter)")
    targets = {
        "host-pm-exporter (default: kernel,logind,pm-utils)": [EXPORTER],
        "host-pm-exporter --pm.probes=kernel": [EXPORTER, "--pm.probes=kernel"],
        "node_exporter cpu,cpu.info,cpufreq": [node, *NODE_EXPORTER_FLAGS],
    }
    procs, ports = {}, {}
    for name, cmd in targets.items():
        ports[name] = free_port()
        procs[name] = start(cmd, ports[name])
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
    try:
        for _ in range(args.rounds):
            for name in targets:
                results[name].append(wrk(ports[name], args.seconds))
        rss = rss_after(ports[next(iter(targets))], procs[next(iter(targets))].pid, 1000)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait()
    print(f"wrk -t1 -c1, {args.rounds} alternating rounds of {args.seconds}s; median over rounds")
    print(f"{'target':<52} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, rows in results.items():
        p50 = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        rps = statistics.median(r[2] for r in rows)
        print(f"{name:<52} {p50:>8.2f} {p99:>8.2f} {rps:>8.1f}")
    print(f"host-pm-exporter (default) RSS: {rss[0]:.1f} MiB before, {rss[1]:.1f} MiB after 1,000 more scrapes")


if __name__ == "__main__":
    main()
