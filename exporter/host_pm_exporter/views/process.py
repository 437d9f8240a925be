"""The exporter's own process metrics (``process_*``, the names every Prometheus client
library uses), from this process's figures read on each scrape."""

from __future__ import annotations

import resource

from host_pm_exporter.families import Counter, Family, Gauge
from host_pm_exporter.readers.process import TICKS, SelfReader, read_boot_time


class ProcessMetrics:
    """A runtime collector: `collect()` gives this process's CPU time, memory, start
    time and file descriptors (nothing when /proc/self cannot be read)."""

    def __init__(self) -> None:
        self._boot = read_boot_time()
        self._self = SelfReader()

    def collect(self) -> list[Family]:
        stat = self._self.read()
        if stat is None:
            return []
        max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        out: list[Family] = [
            Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=stat.virtual_bytes),
            Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", value=stat.resident_bytes),
        ]
        if self._boot is not None:
            out.append(
                Gauge(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch, in seconds.",
                    value=self._boot + stat.start_ticks / TICKS,
                )
            )
        out += [
            Counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                    value=stat.cpu_seconds),
            Gauge("process_open_fds", "Open file descriptors.", value=stat.open_fds),
        ]  # fmt: skip
        if max_fds != resource.RLIM_INFINITY:
            out.append(Gauge("process_max_fds", "Most open file descriptors allowed.", value=max_fds))
        return out
