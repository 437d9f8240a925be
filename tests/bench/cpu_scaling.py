"""ScrapeFacts latency against generated hosts of 2, 64, 256 and 1024 CPUs, host-pm-exporter
beside node_exporter pointed at the same trees, alternating in one run.  By hand:

    .venv/bin/python tests/bench/cpu_scaling.py [--seconds 5] [--rounds 3] [--cpus 2,64,256,1024]

node_exporter runs ``--collector.disable-defaults --collector.cpu --collector.cpu.info
--collector.cpu.info.flags-include=.* --collector.cpufreq``; host-pm-exporter its
defaults but ``--pm.probes=kernel`` (pm-utils and logind read the real host, not the
tree, and cost the same at any size).  Printed: p50/p99 per target (median over
rounds) and the ratio of the p50s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.scrape_latency import EXPORTER, free_port, start, wrk
from tests.fixture_hosts import synthetic_x86
from tests.hostgen import build

NODE_FLAGS = [
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.cpu.info",
    "--collector.cpu.info.flags-include=.*",
    "--collector.cpufreq",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", default="2,64,256,1024")
    parser.add_argument("--exporter-args", default="", help="extra host-pm-exporter flags, space-separated")
    parser.add_argument(
        "--before",
        metavar="TREE",
        help="also run the exporter of another checkout (a `git worktree` of an older commit) on the same trees",
    )
    args = parser.parse_args()
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node or not shutil.which("wrk"):
        raise SystemExit("needs wrk and prometheus-node-exporter (apt-get install wrk prometheus-node-exporter)")
    sizes = [int(n) for n in args.cpus.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for cpus in sizes:
            root = Path(tmp) / str(cpus)
            build(synthetic_x86(cpus), root)
            paths = [f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys"]
            targets = {
                "host-pm-exporter": [
                    EXPORTER,
                    *paths,
                    f"--path.rootfs={root}",
                    "--pm.probes=kernel",
                    *args.exporter_args.split(),
                ],
                "node_exporter": [node, *paths, *NODE_FLAGS],
            }
            envs: dict[str, dict[str, str] | None] = {name: None for name in targets}
            if args.before:
                targets["before"] = targets["host-pm-exporter"]
                envs["before"] = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve() / "exporter")}
            ports = {name: free_port() for name in targets}
            procs = {name: start(cmd, ports[name], envs[name]) for name, cmd in targets.items()}
            results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in targets}
            try:
                for _ in range(args.rounds):
                    for name in targets:
                        results[name].append(wrk(ports[name], args.seconds))
            finally:
                for proc in procs.values():
                    proc.terminate()
                    proc.wait()
            med = {
                n: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
                for n, rs in results.items()
            }
            rows.append((cpus, med["host-pm-exporter"], med["node_exporter"], med.get("before")))
    print(f"wrk -t1 -c1, {args.rounds} alternating rounds of {args.seconds}s per target; median over rounds (ms)")
    before = " before p50 before/node" if args.before else ""
    print(f"{'CPUs':>5} {'ours p50':>9} {'ours p99':>9} {'node p50':>9} {'node p99':>9} {'ours/node':>9}{before}")
    for cpus, ours, theirs, old in rows:
        line = f"{cpus:>5} {ours[0]:>9.2f} {ours[1]:>9.2f} {theirs[0]:>9.2f} {theirs[1]:>9.2f}"
        line += f" {ours[0] / theirs[0]:>9.2f}"
        if old is not None:
            line += f" {old[0]:>11.2f} {old[0] / theirs[0]:>11.2f}"
        print(line)
    if len(rows) > 1:
        (c0, o0, n0, _), (c1, o1, n1, _) = rows[-2], rows[-1]
        print(
            f"cost per extra CPU from {c0} to {c1}: ours {(o1[0] - o0[0]) / (c1 - c0) * 1000:.1f} us, "
            f"node_exporter {(n1[0] - n0[0]) / (c1 - c0) * 1000:.1f} us"
        )


if __name__ == "__main__":
    main()
