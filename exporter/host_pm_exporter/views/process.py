"""The exporter's own process metrics (``process_*``, the names every Prometheus client
library uses), from this process's figures read on each scrape."""

from __future__ import annotations

import resource

from host_pm_exporter.families import Counter, Family, Gauge, encode_text, go_float
from host_pm_exporter.readers.process import TICKS, ProcessStat, SelfReader, read_boot_time

# Each family: its kind, name and help, in the order a scrape shows them.
_FAMILIES: tuple[tuple[type[Family], str, str], ...] = (
    (Gauge, "process_virtual_memory_bytes", "Virtual memory size in bytes."),
    (Gauge, "process_resident_memory_bytes", "Resident memory size in bytes."),
    (Gauge, "process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds."),
    (Counter, "process_cpu_seconds_total", "User and system CPU time spent, in seconds."),
    (Gauge, "process_open_fds", "Open file descriptors."),
    (Gauge, "process_max_fds", "Most open file descriptors allowed."),
)


class ProcessMetrics:
    """A runtime collector: `collect()` gives this process's CPU time, memory, start
    time and file descriptors (nothing when /proc/self cannot be read); `text()` the
    same as a scrape encodes them."""

    def __init__(self) -> None:
        self._boot = read_boot_time()
        self._self = SelfReader()
        # per format: each family's HELP and TYPE lines and its sample's name, as
        # `encode_text` writes them (a value follows); and each family's last value with
        # the text written for it (most figures are the same from one scrape to the next:
        # the start time, the limit, the memory)
        self._written: dict[bool, tuple[tuple[str, ...], list[tuple[float | None, str]]]] = {}

    def _values(self, stat: ProcessStat) -> tuple[float | None, ...]:
        """Each family's value (``None``: not shown, as a start time without a boot
        time, or no limit on open files)."""
        max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return (
            stat.virtual_bytes,
            stat.resident_bytes,
            None if self._boot is None else self._boot + stat.start_ticks / TICKS,
            stat.cpu_seconds,
            stat.open_fds,
            None if max_fds == resource.RLIM_INFINITY else max_fds,
        )

    def collect(self) -> list[Family]:
        stat = self._self.read()
        if stat is None:
            return []
        return [
            kind(name, documentation, value=value)
            for (kind, name, documentation), value in zip(_FAMILIES, self._values(stat))
            if value is not None
        ]

    def text(self, openmetrics: bool) -> str:
        """`collect()` encoded (`families.encode_text`), written without the families:
        the lines before each value are the same every scrape."""
        stat = self._self.read()
        if stat is None:
            return ""
        known = self._written.get(openmetrics)
        if known is None:
            heads = tuple(
                encode_text([kind(name, documentation, value=0.0)], openmetrics).removesuffix("0.0\n")
                for kind, name, documentation in _FAMILIES
            )
            known = self._written[openmetrics] = (heads, [(None, "")] * len(heads))
        heads, written = known
        for i, value in enumerate(self._values(stat)):
            if value != written[i][0]:
                written[i] = (value, "" if value is None else f"{heads[i]}{go_float(float(value))}\n")
        return "".join([text for _, text in written])
