"""This process's own figures from /proc/self (not under --path.procfs: the exporter's
process is here, whichever host tree it reads), and the boot time from /proc/stat."""

from __future__ import annotations

import os
import resource
import weakref
from typing import NamedTuple

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = resource.getpagesize()


class ProcessStat(NamedTuple):  # made on every scrape: a tuple is made at a fifth of a frozen dataclass's cost
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
    """This process's CPU time, memory and open files, read afresh on each call, each
    the cheapest way the kernel gives it: the CPU time by getrusage(2) (all threads,
    to the microsecond), the memory from /proc/self/statm (the process's counters
    alone: /proc/self/stat also walks every thread for its times), the open files from
    the size of /proc/self/fd (Linux 6.2 and later give the count there; before, by
    listing it), the two files opened once and read again in place (the process is
    always this one).  The start time cannot change: read once."""

    def __init__(self) -> None:
        self._statm = _open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        self._fds = _open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for fd in (self._statm, self._fds):
            if fd is not None:
                weakref.finalize(self, os.close, fd)
        first = read_self()
        self._start = None if first is None else first.start_ticks

    def read(self) -> ProcessStat | None:
        """``None`` when /proc/self cannot be read or parsed."""
        if self._statm is None or self._fds is None or self._start is None:
            return read_self()
        try:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            size, resident = os.pread(self._statm, 256, 0).split(None, 2)[:2]
            open_fds = _open_fds(os.fstat(self._fds).st_size)
            return ProcessStat(
                round(usage.ru_utime + usage.ru_stime, 6), self._start, int(size) * PAGE, int(resident) * PAGE, open_fds
            )
        except (OSError, ValueError):
            return None


def _open(path: str, flags: int) -> int | None:
    try:
        return os.open(path, flags)
    except OSError:
        return None


def read_self() -> ProcessStat | None:
    """As `SelfReader.read`, from /proc/self/stat alone (ticks of CPU time)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            utime, stime, start, vsize, rss = parse_self_stat(stat.read())
        open_fds = _open_fds(os.stat("/proc/self/fd").st_size)
    except (OSError, IndexError, ValueError):
        return None
    return ProcessStat((utime + stime) / TICKS, start, vsize, rss * PAGE, open_fds)


def _open_fds(size: int) -> int:
    """This process's open files: the size of /proc/self/fd (Linux 6.2 and later give
    the count there), else by listing it."""
    return size or len(os.listdir("/proc/self/fd"))


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
