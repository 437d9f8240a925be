"""Rendering options that come from flags (filters on what is shown, never on what is read)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    flags_include: re.Pattern[str] | None = None
    flags_exclude: re.Pattern[str] | None = None
    durations: bool = False  # host_exporter_collector_duration_seconds, host_pm_probe_duration_seconds

    def show_flag(self, flag: str) -> bool:
        """Whether `flag` gets a host_cpu_flag_info series: none unless asked for by
        --collector.cpu.flags-include (the exclude filter narrows what that lets in)."""
        if self.flags_include is None or not self.flags_include.fullmatch(flag):
            return False
        return self.flags_exclude is None or not self.flags_exclude.fullmatch(flag)
