"""What the pm-utils probe costs per scrape on this machine: one ``pm-is-supported
--suspend`` call, the probe asking in three processes (as it did), and the probe
asking in one (as a scrape now does).  Run by hand (needs pm-utils):

    .venv/bin/python tests/bench/probe_cost.py [--rounds 300] [--path /usr/bin/pm-is-supported]

Each round runs the three, in an order that rotates from round to round, after a few
rounds of warm-up.  Measured per run: the wall time, and the CPU seconds (user +
system) of the processes it started and everything they started, from
``getrusage(RUSAGE_CHILDREN)`` before and after (a process's descendants that it
waited for are counted in it when it is reaped).  The exporter's own CPU time for the
run (starting processes, reading the pipe) is printed apart.  Printed: medians over
the rounds, and each figure as a ratio of the single call's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

from host_pm_exporter.probes import pmutils

Sample = tuple[float, float, float]  # wall, children's CPU, own CPU (seconds)


def measure(run: Callable[[], None]) -> Sample:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.thread_time()
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    own = time.thread_time() - own
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return wall, cpu, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--path", default=pmutils.DEFAULT_PATH)
    args = parser.parse_args()
    path = args.path
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found (apt-get install pm-utils)")
    library = pmutils.dispatcher_functions(path)
    if library is None:
        raise SystemExit(f"{path} is not pm-utils' own pm-is-supported: the probe would ask in three processes")

    def one_call() -> None:
        subprocess.run(
            [path, "--suspend"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=pmutils._ENV, cwd="/", close_fds=True, start_new_session=True, check=False,
        )  # fmt: skip

    def probe(way: pmutils.Way) -> Callable[[], None]:
        def run() -> None:
            result = pmutils.run(path, 10.0, way)
            if result.error is not None:
                raise SystemExit(f"the probe ({way}) failed: {result.error}")

        return run

    targets = {
        "one pm-is-supported --suspend": one_call,
        "probe, three processes (before)": probe("separately"),
        "probe, one process (now)": probe("auto"),
    }
    names = list(targets)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for i in range(args.warmup + args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            sample = measure(targets[name])
            if i >= args.warmup:
                samples[name].append(sample)

    answers = pmutils.run(path, 10.0).answers
    print(f"{path} (sources {library}); /bin/sh is {os.path.realpath('/bin/sh')}; {os.cpu_count()} CPUs")
    print(f"answers: {answers}")
    print(f"{args.rounds} rounds, the three targets alternating; medians (ms)")
    base = [statistics.median(s[k] for s in samples[names[0]]) for k in range(3)]
    header = f"{'':<34} {'wall':>7} {'x call':>7} {'CPU':>7} {'x call':>7} {'own CPU':>8}"
    print(header)
    for name in names:
        wall, cpu, own = (statistics.median(s[k] for s in samples[name]) for k in range(3))
        ratios = f"{wall * 1e3:>7.2f} {wall / base[0]:>7.2f} {cpu * 1e3:>7.2f} {cpu / base[1]:>7.2f}"
        print(f"{name:<34} {ratios} {own * 1e3:>8.2f}")
    now = [statistics.median(s[k] for s in samples[names[2]]) for k in range(2)]
    before = [statistics.median(s[k] for s in samples[names[1]]) for k in range(2)]
    print(
        f"one process vs one call: wall {1e3 * (now[0] - base[0]):+.2f} ms; "
        f"vs three processes: wall x{now[0] / before[0]:.2f}, CPU x{now[1] / before[1]:.2f}"
    )


if __name__ == "__main__":
    main()
