"""The exporter's own figures (process_*), read afresh on every scrape."""

from __future__ import annotations

import os
import time

import psutil

from host_pm_exporter.readers.process import SelfReader, read_self


def test_the_kept_stat_reads_afresh_and_agrees_with_psutil() -> None:
    reader = SelfReader()
    first = reader.read()
    assert first is not None
    end = time.process_time() + 0.2
    while time.process_time() < end:  # burn CPU: the next read must see it
        pass
    opened = [os.open("/proc/meminfo", os.O_RDONLY) for _ in range(10)]
    try:
        second = reader.read()
        assert second is not None
        assert second.cpu_seconds >= first.cpu_seconds + 0.15
        me = psutil.Process()
        assert abs(second.open_fds - me.num_fds()) <= 1, "the directory psutil lists is one more"
        assert second.open_fds >= first.open_fds + 10
        memory = me.memory_info()
        assert abs(second.resident_bytes - memory.rss) < 8 << 20
        assert abs(second.virtual_bytes - memory.vms) < 8 << 20
        assert abs(second.cpu_seconds - sum(me.cpu_times()[:2])) < 0.05, "getrusage and /proc agree"
        assert second.start_ticks == first.start_ticks
    finally:
        for fd in opened:
            os.close(fd)
    plain = read_self()
    assert plain is not None
    assert abs(plain.open_fds - second.open_fds + 10) <= 1
