"""What one reading of the host costs, collector by collector: the time of each
collector (and the kernel probe), the total, and how many files were opened (and how
many of those were absent).  Run by hand, from the repository:

    PYTHONPATH=exporter:. .venv/bin/python tests/bench/reading_cost.py [--cpus N] [--runs 200] [--profile 15]

Without ``--cpus`` or ``--root`` this host's /proc and /sys are read; with
``--cpus N`` a synthetic x86 host of N CPUs is generated (tests.hostgen) in a
temporary directory, with ``--root DIR`` a tree already there, and read through
``--path.procfs``/``--path.sysfs``/``--path.rootfs``.  Every collector of the
registry is enabled; of the probes only the kernel's.  Printed: the median and the
least time over the runs (each a fresh `ScrapeFacts`: nothing is kept between readings;
on a busy machine the least is the steadier).  ``--profile N`` then profiles as many
runs again and prints cProfile's N costliest functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from host_pm_exporter import hostfs
from host_pm_exporter.cli import parse_config
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.reading import Watchdog, _FileReading


def reading(argv: list[str]) -> _FileReading:
    config = parse_config([*argv, "--pm.probes=kernel", *(f"--collector.{c.name}" for c in REGISTRY)])
    return _FileReading(config.snapshot, ScrapeFacts(config.snapshot.fs), Watchdog())


def count_opens(argv: list[str]) -> tuple[int, int]:
    """Files opened by one reading, and how many of them were absent."""
    opened = Counter[str]()
    real = hostfs._open

    def counting(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        try:
            fd = real(path, flags, mode, dir_fd=dir_fd)
        except FileNotFoundError:
            opened["absent"] += 1
            raise
        finally:
            opened["all"] += 1
        return fd

    hostfs._open = counting
    try:
        reading(argv).run()
    finally:
        hostfs._open = real
    return opened["all"], opened["absent"]


def measure(argv: list[str], runs: int, profile: int) -> None:
    per_step: dict[str, list[float]] = {}
    totals = []
    for _ in range(runs):
        one = reading(argv)
        start = time.perf_counter()
        one.run()
        totals.append(time.perf_counter() - start)
        assert one.kernel is not None
        per_step.setdefault("(kernel probe)", []).append(one.kernel.duration or 0.0)
        for name, section in one.sections.items():
            per_step.setdefault(name, []).append(section.duration)
            if section.error is not None:
                print(f"warning: {name} failed: {section.error}", file=sys.stderr)
    print(f"{'':16} {'median':>8}    {'min':>8}  (of {runs} readings)")
    for name, times in [*per_step.items(), ("total", totals)]:
        print(f"{name:16} {statistics.median(times) * 1e3:8.3f} ms {min(times) * 1e3:8.3f} ms")
    opens, absent = count_opens(argv)
    print(f"{'opens':16} {opens:8d} ({absent} absent)")
    if profile:
        profiler = cProfile.Profile()
        for _ in range(runs):
            one = reading(argv)
            profiler.runcall(one.run)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, help="read a generated x86 host of this many CPUs")
    parser.add_argument("--root", type=Path, help="read this host tree (one tests.hostgen built, a capture)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.root is not None:
        measure(tree(args.root), args.runs, args.profile)
        return
    if args.cpus is None:
        measure([], args.runs, args.profile)
        return
    from tests.fixture_hosts import synthetic_x86
    from tests.hostgen import build

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "host"
        build(synthetic_x86(args.cpus), root)
        measure(tree(root), args.runs, args.profile)


def tree(root: Path) -> list[str]:
    return [f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys", f"--path.rootfs={root}"]


if __name__ == "__main__":
    main()
