"""The ``topology`` collector: sockets, dies, clusters, cores, threads; logical CPUs by state."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.families import Family, Gauge
from host_pm_exporter.readers.topology import LOGICAL_STATES, CpuSets, Topology, read_topology


def families(data: tuple[CpuSets, Topology] | None) -> Iterator[Family]:
    if data is None:
        return
    cpus, topo = data
    for name, value, text in (
        ("sockets", topo.sockets, "CPU sockets (packages) with online CPUs."),
        ("dies", topo.dies, "CPU dies on the whole host (dies per socket: divide by sockets)."),
        (
            "clusters",
            topo.clusters,
            "CPU clusters on the whole host (one per die where the kernel has none).",
        ),
        ("cores", topo.cores, "Physical CPU cores on the whole host."),
        ("threads_per_core", topo.threads_per_core, "Hardware threads per core (the most any core has)."),
    ):
        yield Gauge(f"host_cpu_{name}", text, value=value)
    logical = Gauge(
        "host_cpu_logical",
        "Logical CPUs by state: online, offline, present, possible.",
        labels=["state"],
    )
    for state in LOGICAL_STATES:
        logical.add_metric([state], len(getattr(cpus, state)))
    yield logical
    yield Gauge("host_cpu_isolated", "Logical CPUs isolated from the scheduler (isolcpus).", value=len(cpus.isolated))


def gather(facts: ScrapeFacts) -> tuple[CpuSets, Topology] | None:
    cpus = facts.cpu_sets()
    if not cpus.online:
        return None  # no CPU directories: not a host tree with CPUs
    counted = read_topology(facts.groups(), cpus, facts.cpuinfo_or_none())
    return None if counted is None else (cpus, counted)


COLLECTOR = Collector(
    "topology",
    "sockets, dies, clusters, cores, threads per core; logical CPUs by state",
    gather=gather,
    families=families,
    metrics=(
        "host_cpu_sockets",
        "host_cpu_dies",
        "host_cpu_clusters",
        "host_cpu_cores",
        "host_cpu_threads_per_core",
        "host_cpu_logical",
        "host_cpu_isolated",
    ),
)
