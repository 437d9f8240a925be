"""The Prometheus collector: one snapshot per scrape, rendered by each enabled collector."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable, Protocol

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from host_pm_exporter import __version__
from host_pm_exporter.render import probes
from host_pm_exporter.render.options import RenderOptions
from host_pm_exporter.snapshot import HostSnapshot, Section

log = logging.getLogger("host_pm_exporter.render")


class SectionRenderer(Protocol):
    """What rendering needs of a collector: its name and how it renders its section."""

    @property
    def name(self) -> str: ...

    def render_section(self, section: Section[Any], options: RenderOptions) -> Iterable[Metric]: ...


class SnapshotCollector(Collector):
    """Builds a fresh snapshot on every collect() and renders it."""

    def __init__(
        self,
        snapshot: Callable[[], HostSnapshot],
        collectors: Sequence[SectionRenderer],
        options: RenderOptions | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._collectors = collectors
        self._options = options or RenderOptions()

    def describe(self) -> list[Metric]:
        return []  # registering must not run a collection

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        return iter(render(snap, self._collectors, self._options))


def render(
    snap: HostSnapshot, collectors: Sequence[SectionRenderer], options: RenderOptions | None = None
) -> list[Metric]:
    """Every metric of one snapshot: each collector's section, the probes, the
    exporter's own."""
    options = options or RenderOptions()
    out: list[Metric] = []
    success = GaugeMetricFamily(
        "host_exporter_collector_success",
        "Whether the collector's facts could be read (1) or not (0).",
        labels=["collector"],
    )
    duration = GaugeMetricFamily(
        "host_exporter_collector_duration_seconds",
        "How long the collector took on this scrape.",
        labels=["collector"],
    )
    for collector in collectors:
        name = collector.name
        section = snap.sections.get(name)
        if section is None:
            continue
        ok = section.ok
        if ok:
            try:
                out.extend(list(collector.render_section(section, options)))
            except Exception:  # a renderer bug costs its collector, not the scrape
                log.exception("rendering failed", extra={"collector": name})
                ok = False
        success.add_metric([name], float(ok))
        duration.add_metric([name], section.duration)
    out.extend(probes.probes(snap.probes))
    out.append(success)
    out.append(duration)
    build = InfoMetricFamily("host_exporter_build", "host-pm-exporter's version.", labels=["version"])
    build.add_metric([__version__], {})
    out.append(build)
    return out
