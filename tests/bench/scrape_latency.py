"""Per-scrape cost of host-pm-exporter beside node_exporter on this machine: latency,
CPU seconds per scrape and RSS, from one run.  Run by hand (needs wrk and
prometheus-node-exporter; pm-utils for the default probes):

    .venv/bin/python tests/bench/scrape_latency.py [--seconds 10] [--rounds 3] [--before TREE]

The targets run one after another in alternating rounds, each measured by
``wrk -t1 -c1 --latency`` (keep-alive, one scrape at a time, as Prometheus scrapes).
CPU per scrape is the process's user+system time over a round (its reaped children's
too: the probes' commands) divided by the requests wrk completed.  node_exporter runs
``--collector.disable-defaults --collector.cpu --collector.cpu.info
--collector.cpu.info.flags-include=.* --collector.cpufreq``.  Printed: medians over the
rounds, the ratio of each to node_exporter's, RSS after every round's scrapes, and the
default scrape beside one ``pm-is-supported --suspend`` call.  ``--on-loop`` adds the
exporter with its reading on the event loop's thread (`on_loop.py`): what handing the
reading to a worker and back costs a scrape, measured, not a way to run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

EXPORTER = str(Path(sys.executable).with_name("host-pm-exporter"))
NODE_EXPORTER_FLAGS = [
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.cpu.info",
    "--collector.cpu.info.flags-include=.*",
    "--collector.cpufreq",
]
PM_IS_SUPPORTED = "/usr/bin/pm-is-supported"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*cmd, f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
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


def wrk(port: int, seconds: int, path: str = "/metrics") -> tuple[float, float, float, int]:
    """p50 and p99 in ms, requests per second, requests completed."""
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return p50, p99, rps, done


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class Target:
    name: str
    cmd: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None
    rows: list[tuple[float, float, float, float]] = field(default_factory=list)  # p50, p99, rps, cpu ms/scrape
    scrapes: int = 0

    def round(self, seconds: int) -> None:
        assert self.proc is not None
        before = cpu_seconds(self.proc.pid)
        p50, p99, rps, done = wrk(self.port, seconds)
        cpu = (cpu_seconds(self.proc.pid) - before) / max(done, 1) * 1e3
        self.rows.append((p50, p99, rps, cpu))
        self.scrapes += done

    def median(self, i: int) -> float:
        return statistics.median(row[i] for row in self.rows)

    def rss(self) -> float:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20


def one_call_ms(rounds: int = 200) -> float | None:
    """Median wall time of one ``pm-is-supported --suspend``."""
    if not Path(PM_IS_SUPPORTED).is_file():
        return None
    times = []
    for _ in range(rounds):
        start_ = time.perf_counter()
        subprocess.run([PM_IS_SUPPORTED, "--suspend"], check=False, capture_output=True)
        times.append((time.perf_counter() - start_) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before",
        metavar="TREE",
        help="also run the exporter of another checkout (e.g. a `git worktree` of an older commit) for a "
        "before/after in the same run",
    )
    parser.add_argument(
        "--on-loop",
        action="store_true",
        help="also run the exporter with its reading on the event loop's thread, not a worker (on_loop.py): "
        "what the hand-off costs a scrape; a measurement only",
    )
    args = parser.parse_args()
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node or not shutil.which("wrk"):
        raise SystemExit("needs wrk and prometheus-node-exporter (apt-get install wrk prometheus-node-exporter)")
    targets = [
        Target("host-pm-exporter --pm.probes=kernel", [EXPORTER, "--pm.probes=kernel"]),
        Target("node_exporter cpu,cpu.info(flags),cpufreq", [node, *NODE_EXPORTER_FLAGS]),
        Target("host-pm-exporter (default probes)", [EXPORTER]),
    ]
    compared: list[tuple[str, Target]] = []  # beside the exporter as built
    if args.before:
        env = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve() / "exporter")}
        compared.append(("before", Target("before: --pm.probes=kernel", [EXPORTER, "--pm.probes=kernel"], env=env)))
    if args.on_loop:
        on_loop = [sys.executable, str(Path(__file__).with_name("on_loop.py")), "--pm.probes=kernel"]
        compared.append(("on the loop", Target("reading on the loop's thread (measurement)", on_loop)))
    targets += [target for _, target in compared]
    try:
        for target in targets:
            target.port = free_port()
            target.proc = start(target.cmd, target.port, target.env)
        for _ in range(args.rounds):
            for target in targets:
                target.round(args.seconds)
        rss = {t.name: t.rss() for t in targets}
    finally:
        for target in targets:
            if target.proc is not None:
                target.proc.terminate()
                target.proc.wait()
    call = one_call_ms()
    ours, node_t, default = targets[:3]
    print(f"wrk -t1 -c1 keep-alive, {args.rounds} alternating rounds of {args.seconds}s; medians over rounds")
    print(f"{'target':<44} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'CPU ms':>8} {'RSS MiB':>8} {'scrapes':>8}")
    for t in targets:
        print(
            f"{t.name:<44} {t.median(0):>8.3f} {t.median(1):>8.3f} {t.median(2):>8.1f} "
            f"{t.median(3):>8.3f} {rss[t.name]:>8.1f} {t.scrapes:>8}"
        )
    print(
        f"{'ratio kernel-only / node_exporter':<44} {ours.median(0) / node_t.median(0):>7.2f}x "
        f"{ours.median(1) / node_t.median(1):>7.2f}x {ours.median(2) / node_t.median(2):>7.2f}x "
        f"{ours.median(3) / node_t.median(3):>7.2f}x {rss[ours.name] / rss[node_t.name]:>7.2f}x"
    )
    for label, t in compared:
        print(
            f"{f'ratio {label} / node_exporter':<44} {t.median(0) / node_t.median(0):>7.2f}x "
            f"{t.median(1) / node_t.median(1):>7.2f}x {t.median(2) / node_t.median(2):>7.2f}x "
            f"{t.median(3) / node_t.median(3):>7.2f}x {rss[t.name] / rss[node_t.name]:>7.2f}x"
        )
    if call is not None:
        print(
            f"default scrape p50 {default.median(0):.2f} ms = one pm-is-supported --suspend call "
            f"({call:.2f} ms) {default.median(0) - call:+.2f} ms; CPU per default scrape "
            f"{default.median(3):.2f} ms (probes' commands included)"
        )


if __name__ == "__main__":
    main()
