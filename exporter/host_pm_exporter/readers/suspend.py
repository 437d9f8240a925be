"""The kernel's suspend statistics since boot (/sys/power/suspend_stats)."""

from __future__ import annotations

from dataclasses import dataclass, field

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import read_word

SUSPEND_STEPS = ("freeze", "prepare", "suspend", "suspend_late", "suspend_noirq", "resume", "resume_early",
                 "resume_noirq")  # fmt: skip


@dataclass
class SuspendStats:
    """Counts as the kernel keeps them; a file the kernel does not have is left out."""

    success: int | None = None
    fail: int | None = None
    step_failures: dict[str, int] = field(default_factory=dict)  # step -> failures
    last_failed_step: str | None = None
    last_failed_device: str | None = None


def read_suspend_stats(fs: HostFS) -> SuspendStats:
    """The counts in /sys/power/suspend_stats; where that directory is absent, none of
    its files is tried (one failed open, not twelve)."""
    with fs.directory(fs.sys("power", "suspend_stats")) as base:
        stats = SuspendStats(success=base.read_int("success"), fail=base.read_int("fail"))
        for step in SUSPEND_STEPS:
            value = base.read_int(f"failed_{step}")
            if value is not None:
                stats.step_failures[step] = value
        stats.last_failed_step = read_word(base, "last_failed_step")
        stats.last_failed_device = read_word(base, "last_failed_dev")
    return stats
