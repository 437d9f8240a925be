"""How low a scrape of this host can go in this design: the floors under
host-pm-exporter's default scrape, beside node_exporter's whole scrape, from one run.
Run by hand (needs wrk, prometheus-node-exporter and gcc), from the repository:

    .venv/bin/python tests/bench/floor.py [--seconds 5] [--runs 2000] [--cpus N]

With ``--cpus N``, a generated x86 host of N CPUs (tests.hostgen) instead of this one,
read with every collector and every CPU flag on, as cpu_scaling.py does.

Printed, each a median:

- the files of one default reading (`--pm.probes=kernel`), as the exporter opens them
  (recorded from a real reading), opened, fstat'ed, read and closed by a C loop: what
  the kernel charges, with nothing of Python;
- the same in a bare Python loop (``os.open``/``os.fstat``/``os.read``/``os.close``, no
  parsing): the least a Python reader pays;
- the same with the files the exporter keeps open re-read in place (one ``pread``
  each; the others opened as above): the least a Python reader with kept files pays;
- one job handed to a reading worker and back to the event loop (the hand-off that
  keeps a hung read off the loop), and the same waited for in place (the server's
  way for a reading of files only);
- the exporter's cheapest HTTP answer (``/healthz``, by wrk, keep-alive);
- the reading inside the server: the sum of the collectors' own durations
  (``--web.exporter-metrics=all``) over scrapes back to back;
- the exporter's rendering and encoding of one reading of this host, and the same as
  the server does it when the facts are equal to the scrape before's (texts given
  again);
- the exporter's whole reading, and its files read in this thread with every fact
  made anew, back to back and each after 2 ms idle (as a worker woken per scrape finds
  its CPU), and with the facts of unchanged answers taken again (`replay`, the
  server's way);
- node_exporter's whole scrape, by wrk, with scrape_latency's flags;
- "as built": the replayed reading, the in-place wait, the texts given again and the
  HTTP answer, the parts the server's scrape is made of.

The sum of the floors is what a Python exporter of the same reads, hand-off, HTTP
front and output would take at best, were its readers free; beside it, node_exporter's
scrape, and the targets (1.0x and 1.5x of it on this host, 0.20x with ``--cpus``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "exporter"))

from host_pm_exporter import hostfs, reading
from host_pm_exporter.cli import parse_config
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.families import encode
from host_pm_exporter.wiring import make_exposition
from host_pm_exporter.workers import Workers
from tests.bench.scrape_cadence import Client
from tests.bench.scrape_latency import EXPORTER, NODE_EXPORTER_FLAGS, free_port, start, wrk
from tests.fixture_hosts import synthetic_x86
from tests.hostgen import build

_C_LOOP = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int runs = atoi(argv[1]);
    char **paths = argv + 2;
    int n = argc - 2;
    static char buf[1 << 16];
    double *took = malloc(sizeof(double) * runs);
    for (int r = 0; r < runs; r++) {
        double start = now();
        for (int i = 0; i < n; i++) {
            int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
            if (fd < 0) continue;
            struct stat st;
            if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                while (read(fd, buf, sizeof buf) > 0) {}
            close(fd);
        }
        took[r] = now() - start;
    }
    qsort(took, runs, sizeof(double), cmp);
    printf("%.6f\n", took[runs / 2]);
    return 0;
}
"""


def reading_paths(argv: list[str]) -> list[str]:
    """Every path one default reading opens, in order, absent ones included."""
    paths: list[str] = []
    real = hostfs._open

    def recording(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is not None:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        if not flags & os.O_PATH:
            paths.append(str(path))
        return real(path, flags, mode)

    config = parse_config(argv)
    hostfs._open = recording
    try:
        reading._FileReading(config.snapshot, ScrapeFacts(config.snapshot.fs), reading.Watchdog()).run()
    finally:
        hostfs._open = real
    return paths


def c_floor(paths: list[str], runs: int) -> float | None:
    if not any(Path(d, "gcc").exists() for d in os.environ.get("PATH", "").split(":")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp, "floor.c"), Path(tmp, "floor")
        source.write_text(_C_LOOP)
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
        out = subprocess.run([str(binary), str(runs), *paths], capture_output=True, text=True, check=True).stdout
    return float(out) * 1e3


def median_ms(fn: Callable[[], object], runs: int) -> float:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1e3


def python_floor(paths: list[str]) -> None:
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_mode & 0o170000 == 0o100000:
                while os.read(fd, 1 << 16):
                    pass
        finally:
            os.close(fd)


def kept_floor(paths: list[str], kept: set[str]) -> Callable[[], None]:
    """The reading's files as the exporter reads them with kept files: the kept ones
    re-read in place (one pread each), the others opened, fstat'ed, read and closed (the
    absent ones tried), in a bare Python loop."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    fds = [os.open(path, flags) for path in paths if path in kept]
    others = [path for path in paths if path not in kept]

    def run() -> None:
        for fd in fds:
            os.pread(fd, 4096, 0)
        python_floor(others)

    return run


def in_place_ms(runs: int) -> float:
    """One job handed to a reading worker, waited for on this thread (the server's way
    for a reading of files only: a lock the worker releases)."""
    workers = Workers("floor")
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        done = threading.Lock()
        done.acquire()
        workers.submit(done.release)
        done.acquire(timeout=5)
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1e3


def hand_off_ms(runs: int) -> float:
    workers = Workers("floor")

    async def measure() -> float:
        took = []
        for _ in range(runs):
            start = time.perf_counter()
            waiter = asyncio.wrap_future(workers.submit(int))
            await asyncio.wait({waiter}, timeout=5)
            took.append(time.perf_counter() - start)
        return statistics.median(took) * 1e3

    return asyncio.run(measure())


def in_server_ms(argv: list[str], scrapes: int = 300) -> float:
    """The median reading time inside a running exporter, by its own duration metrics."""
    port = free_port()
    proc = start([EXPORTER, *argv, "--web.exporter-metrics=all"], port)
    try:
        client, took = Client(port), []
        for _ in range(scrapes):
            lines = client.scrape()[1].decode().splitlines()
            took.append(sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(_DURATIONS)))
        return statistics.median(took) * 1e3
    finally:
        proc.terminate()
        proc.wait()


_DURATIONS = ("host_exporter_collector_duration_seconds{", 'host_pm_probe_duration_seconds{probe="kernel"}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run")
    parser.add_argument("--runs", type=int, default=2000, help="in-process repetitions")
    parser.add_argument("--cpus", type=int, help="a generated host of this many CPUs, every collector on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        argv, node_argv = ["--pm.probes=kernel"], list(NODE_EXPORTER_FLAGS)
        if args.cpus:
            root = Path(tmp, "host")
            build(synthetic_x86(args.cpus), root)
            roots = [f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys"]
            argv += [*roots, f"--path.rootfs={root}", "--collector.cpu.flags-include=.*"]
            argv += [f"--collector.{c.name}" for c in REGISTRY]
            node_argv += roots
            args.runs = max(10, args.runs // args.cpus)
        measure(args, argv, node_argv)


def measure(args: argparse.Namespace, argv: list[str], node_argv: list[str]) -> None:

    paths = reading_paths(argv)
    config = parse_config(argv)
    registry = make_exposition(config)
    plan = registry.plan(None)
    snap = registry.readings.read(plan.collectors, plan.probes)
    families = registry.render(plan, snap)

    def whole_reading() -> object:
        return registry.readings.read(plan.collectors, plan.probes)

    def after_idle() -> float:  # a worker woken per scrape finds a cold CPU
        took = []
        for _ in range(max(10, args.runs // 4)):
            time.sleep(0.002)
            one = reading._FileReading(config.snapshot, ScrapeFacts(config.snapshot.fs), reading.Watchdog())
            start = time.perf_counter()
            one.run()
            took.append(time.perf_counter() - start)
        return statistics.median(took) * 1e3

    def back_to_back() -> None:
        reading._FileReading(config.snapshot, ScrapeFacts(config.snapshot.fs), reading.Watchdog()).run()

    memory = config.snapshot.memory

    def taken_again() -> None:  # the facts of unchanged answers taken again (replay)
        reading._FileReading(config.snapshot, ScrapeFacts(config.snapshot.fs, memory), reading.Watchdog()).run()

    def body() -> bytes:  # as the server encodes: a collector's text given again for equal facts
        return registry.body(plan, snap, False, "underscores", "1.0.0")

    kept_fs = config.snapshot.fs.kept
    kept = set(kept_fs.paths()) if kept_fs is not None else set()
    rows: list[tuple[str, float | None]] = [
        (f"C loop over the reading's {len(paths)} opens", c_floor(paths, args.runs)),
        ("the same, bare Python loop", median_ms(lambda: python_floor(paths), args.runs)),
        (f"  {len(kept)} of them kept and re-read (pread), Python", median_ms(kept_floor(paths, kept), args.runs)),
        ("hand-off to a worker and back to the loop", hand_off_ms(args.runs)),
        ("  the same, waited for in place (the server's way)", in_place_ms(args.runs)),
        ("render and encode one reading", median_ms(lambda: encode(registry.render(plan, snap)), args.runs)),
        ("  the same for equal facts (the server's way)", median_ms(body, args.runs)),
        ("whole reading, as the exporter does it", median_ms(whole_reading, max(10, args.runs // 4))),
        ("  its files alone, made anew, back to back", median_ms(back_to_back, max(10, args.runs // 4))),
        ("  its files alone, made anew, each after 2 ms idle", after_idle()),
        ("  its files alone, facts taken again (replay)", median_ms(taken_again, max(10, args.runs // 4))),
    ]
    ours, node = free_port(), free_port()
    procs = [start([EXPORTER, *argv], ours), start(["prometheus-node-exporter", *node_argv], node)]
    try:
        healthz = wrk(ours, args.seconds, "/healthz")[0]
        scrape = wrk(ours, args.seconds)[0]
        node_p50 = wrk(node, args.seconds)[0]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    rows += [
        ("the reading inside the server, back to back", in_server_ms(argv)),
        ("HTTP: /healthz over keep-alive (wrk p50)", healthz),
        ("our whole scrape (wrk p50)", scrape),
    ]

    print(f"{len(families)} families, {sum(len(getattr(f, 'rows', ())) for f in families)} samples per scrape")
    for name, value in rows:
        print(f"{name:<52} {'n/a' if value is None else f'{value:8.3f} ms'}")
    print(f"{'node_exporter whole scrape (wrk p50)':<52} {node_p50:8.3f} ms")
    values = dict(rows)
    rest = values["  the same, waited for in place (the server's way)"] or 0.0
    rest += (values["render and encode one reading"] or 0.0) + healthz
    floors = (
        ("Python", values["the same, bare Python loop"]),
        ("kept Python", values[rows[2][0]]),
        ("C", values[rows[0][0]]),
    )
    targets = ", ".join(f"{t:.2f}x = {t * node_p50:.3f} ms" for t in ((0.3,) if args.cpus else (1.0, 1.5)))
    for label, reads in floors:
        if reads is None:
            continue
        floor = reads + rest
        print(f"floor with {label} reads: {floor:.3f} ms = {floor / node_p50:.2f}x node_exporter (targets: {targets})")
    built = healthz + sum(
        values[label] or 0.0
        for label in (
            "  its files alone, facts taken again (replay)",
            "  the same, waited for in place (the server's way)",
            "  the same for equal facts (the server's way)",
        )
    )
    print(
        f"as built (replayed reading + in-place wait + texts given again + HTTP): {built:.3f} ms = "
        f"{built / node_p50:.2f}x node_exporter"
    )


if __name__ == "__main__":
    main()
