"""The ``cache`` collector: CPU caches per level and type."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge
from host_pm_exporter.readers.cache import CacheSummary, read_caches


def families(caches: list[CacheSummary]) -> Iterator[Family]:
    size = Gauge(
        "host_cpu_cache_size_bytes",
        "Total size of a cache level and type over all its instances (as lscpu prints it).",
        labels=["level", "type"],
    )
    instances = Gauge(
        "host_cpu_cache_instances",
        "How many instances of the cache level and type there are.",
        labels=["level", "type"],
    )
    for summary in caches:
        labels = [str(summary.level), summary.type]
        if summary.size_bytes is not None:
            size.add_metric(labels, summary.size_bytes)
        if summary.instances is not None:
            instances.add_metric(labels, summary.instances)
    if size.rows:
        yield size
    if instances.rows:
        yield instances


COLLECTOR = Collector(
    "cache",
    "CPU caches per level and type: size and instances",
    gather=lambda facts: read_caches(facts.fs, facts.cpu_sets().online, facts.kind_of(), facts.cpuinfo_caches()),
    families=families,
    metrics=("host_cpu_cache_size_bytes", "host_cpu_cache_instances"),
)
