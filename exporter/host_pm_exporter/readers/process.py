"""This process's own figures from /proc/self (not under --path.procfs: the exporter's
process is here, whichever host tree it reads), and the boot time from /proc/stat."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = resource.getpagesize()


@dataclass(frozen=True)
class ProcessStat:
    cpu_seconds: float
    start_ticks: int
    virtual_bytes: int
    resident_bytes: int
    open_fds: int


def parse_self_stat(text: bytes) -> tuple[int, int, int, int, int]:
    """utime, stime, starttime, vsize and rss (pages) from /proc/<pid>/stat (proc(5)
    fields 14, 15, 22, 23, 24; the name in parentheses may hold spaces).

    >>> parse_self_stat(b"7 (a b) S 1 7 7 0 -1 0 0 0 0 0 5 3 0 0 20 0 1 0 99 4096 12 x")
    (5, 3, 99, 4096, 12)
    """
    fields = text.rpartition(b")")[2].split()
    # fields[0] is the state (field 3 of proc(5)): utime is field 14, so index 11
    return int(fields[11]), int(fields[12]), int(fields[19]), int(fields[20]), int(fields[21])


def read_self() -> ProcessStat | None:
    """This process's CPU time, memory and open files; ``None`` when /proc/self cannot
    be read or parsed."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            utime, stime, start, vsize, rss = parse_self_stat(stat.read())
        open_fds = len(os.listdir("/proc/self/fd"))
    except (OSError, IndexError, ValueError):
        return None
    return ProcessStat((utime + stime) / TICKS, start, vsize, rss * PAGE, open_fds)


def read_boot_time() -> float | None:
    """The boot time (``btime`` of /proc/stat), seconds since the epoch."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
