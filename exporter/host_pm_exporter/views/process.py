"""The exporter's own process metrics (``process_*``, the names every Prometheus client
library uses), read from /proc/self on each scrape."""

from __future__ import annotations

import os
import resource

from host_pm_exporter.render.families import Counter, Family, Gauge

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = resource.getpagesize()


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("/proc/stat has no btime")


class ProcessMetrics:
    """A runtime collector: `collect()` gives this process's CPU time, memory, start
    time and file descriptors (nothing when /proc/self cannot be read)."""

    def __init__(self) -> None:
        try:
            self._boot: float | None = _boot_time()
        except (OSError, ValueError, IndexError):
            self._boot = None

    def collect(self) -> list[Family]:
        try:
            with open("/proc/self/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
            open_fds = len(os.listdir("/proc/self/fd"))
            # fields[0] is the state (field 3 of proc(5)): utime is field 14, so index 11
            utime, stime = int(fields[11]), int(fields[12])
            start_ticks, vsize, rss_pages = int(fields[19]), int(fields[20]), int(fields[21])
        except (OSError, IndexError, ValueError):
            return []
        max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        out: list[Family] = [
            Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=vsize),
            Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", value=rss_pages * _PAGE),
        ]
        if self._boot is not None:
            out.append(
                Gauge(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch, in seconds.",
                    value=self._boot + start_ticks / _TICKS,
                )
            )
        out += [
            Counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                    value=(utime + stime) / _TICKS),
            Gauge("process_open_fds", "Open file descriptors.", value=open_fds),
        ]  # fmt: skip
        if max_fds != resource.RLIM_INFINITY:
            out.append(Gauge("process_max_fds", "Most open file descriptors allowed.", value=max_fds))
        return out
