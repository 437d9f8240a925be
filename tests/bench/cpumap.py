"""What naming the host CPU costs: reading libvirt's CPU map (once per process per map
state), one x86 decode, and GET /capabilities' XML of this host.  Run by hand:

    .venv/bin/python tests/bench/cpumap.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.cpumap import linux_x86, loader, x86
from host_pm_exporter.facts import HOST_DETAILS
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.reading import SnapshotConfig, build_snapshot
from host_pm_exporter.views.capabilities import capabilities_xml


def median_ms(run: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    start = time.perf_counter()
    cpu_map = loader.read_map(loader.PACKED)
    print(f"read the packed CPU map (83 files): {(time.perf_counter() - start) * 1000:.1f} ms")
    print(f"load_map, cached: {median_ms(lambda: loader.load_map(str(loader.PACKED)), 200):.3f} ms")
    with open("/proc/cpuinfo") as handle:
        text = handle.read()
    flags = text.split("\nflags\t\t: ", 1)[1].split("\n", 1)[0].split()
    bits = linux_x86.bits_from_flags(flags, "GenuineIntel")
    print(f"x86 host decode: {median_ms(lambda: x86.decode_host(bits, cpu_map, 'Intel', (6, 207, 2)), 50):.2f} ms")
    fs = HostFS()

    def render() -> None:
        snapshot = build_snapshot(SnapshotConfig(fs, (*REGISTRY, HOST_DETAILS), probes=("kernel",)))
        capabilities_xml(snapshot)

    print(f"reading + capabilities XML of this host: {median_ms(render, 20):.1f} ms")


if __name__ == "__main__":
    main()
