"""The collectors, one module each (its registration, flags, gathering, metric families
and metric names), listed here once.  The order is the output order.  The flags
(``--collector.<name>``), the readings, the metrics and the README's metric table all
come from `REGISTRY`."""

from __future__ import annotations

from typing import Any

from host_pm_exporter.collectors import (
    cache,
    cpu,
    dvfs,
    hwsleep,
    identity,
    idle,
    lockdown,
    numa,
    power,
    readiness,
    suspend,
    topology,
    virt,
    vulnerabilities,
    wake,
)
from host_pm_exporter.collectors.base import Collector

REGISTRY: tuple[Collector[Any], ...] = (
    power.COLLECTOR,
    lockdown.COLLECTOR,
    cpu.COLLECTOR,
    vulnerabilities.COLLECTOR,
    topology.COLLECTOR,
    numa.COLLECTOR,
    cache.COLLECTOR,
    virt.COLLECTOR,
    identity.COLLECTOR,
    readiness.COLLECTOR,
    wake.COLLECTOR,
    dvfs.COLLECTOR,
    idle.COLLECTOR,
    suspend.COLLECTOR,
    hwsleep.COLLECTOR,
)

BY_NAME: dict[str, Collector[Any]] = {c.name: c for c in REGISTRY}


def enabled(choices: dict[str, bool | None], disable_defaults: bool = False) -> tuple[Collector[Any], ...]:
    """The collectors to run: an explicit ``--[no-]collector.<name>`` wins, otherwise the
    collector's default unless ``--collector.disable-defaults``."""
    out = []
    for spec in REGISTRY:
        choice = choices.get(spec.name)
        if choice if choice is not None else (spec.default and not disable_defaults):
            out.append(spec)
    return tuple(out)
