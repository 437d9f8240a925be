"""This process's own figures from /proc/self (not under --path.procfs: the exporter's
process is here, whichever host tree it reads), and the boot time from /proc/stat."""

from __future__ import annotations

import os
import resource
import weakref
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


class SelfReader:
    """This process's CPU time, memory and open files, read afresh on each call:
    /proc/self/stat through a descriptor opened once (the process is always this one)
    and read again in place, the open files from /proc/self/fd's size (Linux 6.2 and
    later give the count there), else by listing it."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None
        else:
            weakref.finalize(self, os.close, self._fd)

    def read(self) -> ProcessStat | None:
        """``None`` when /proc/self cannot be read or parsed."""
        if self._fd is None:
            return read_self()
        try:
            return _process_stat(os.pread(self._fd, 1024, 0))
        except (OSError, IndexError, ValueError):
            return None


def read_self() -> ProcessStat | None:
    """As `SelfReader.read`, opening /proc/self/stat."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            return _process_stat(stat.read())
    except (OSError, IndexError, ValueError):
        return None


def _process_stat(stat: bytes) -> ProcessStat:
    """The figures from /proc/self/stat's text, and the open files counted now."""
    utime, stime, start, vsize, rss = parse_self_stat(stat)
    open_fds = os.stat("/proc/self/fd").st_size or len(os.listdir("/proc/self/fd"))
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
