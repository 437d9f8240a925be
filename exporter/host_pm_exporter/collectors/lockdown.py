"""The ``lockdown`` collector: the kernel lockdown level."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, one_info
from host_pm_exporter.readers.power import ModeList


def families(levels: ModeList | None) -> Iterator[Family]:
    if levels is None:  # no lockdown LSM on this kernel
        return
    yield one_info(
        "host_pm_lockdown",
        "The kernel lockdown level from /sys/kernel/security/lockdown; anything but 'none' forbids hibernation.",
        {"level": levels.selected or ""},
    )


COLLECTOR = Collector(
    "lockdown",
    "kernel lockdown level from /sys/kernel/security/lockdown",
    gather=lambda facts: facts.lockdown(),
    families=families,
    metrics=("host_pm_lockdown_info",),
)
