"""The ``suspend`` collector: suspend statistics since boot."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Counter, Family, one_info
from host_pm_exporter.readers.suspend import SuspendStats, read_suspend_stats


def families(stats: SuspendStats) -> Iterator[Family]:
    if stats.success is not None:
        yield Counter("host_pm_suspend_success", "Successful suspends since boot.", value=stats.success)
    if stats.fail is not None:
        yield Counter("host_pm_suspend_failures", "Failed suspends since boot.", value=stats.fail)
    if stats.step_failures:
        steps = Counter(
            "host_pm_suspend_step_failures", "Suspend failures since boot by the step that failed.", labels=["step"]
        )
        for step, count in stats.step_failures.items():
            steps.add_metric([step], count)
        yield steps
    if stats.last_failed_step:
        yield one_info(
            "host_pm_suspend_last_failed",
            "The step (and device) of the last failed suspend.",
            {"step": stats.last_failed_step, "device": stats.last_failed_device or ""},
        )


COLLECTOR = Collector(
    "suspend",
    "suspend statistics since boot from /sys/power/suspend_stats",
    gather=lambda facts: read_suspend_stats(facts.fs),
    families=families,
    metrics=(
        "host_pm_suspend_success_total",
        "host_pm_suspend_failures_total",
        "host_pm_suspend_step_failures_total",
        "host_pm_suspend_last_failed_info",
    ),
)
