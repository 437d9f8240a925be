"""Metrics of the ``topology``, ``numa`` and ``cache`` collectors."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.readers.cache import CacheSummary
from host_pm_exporter.readers.numa import NumaNode
from host_pm_exporter.readers.topology import LOGICAL_STATES, CpuSets, Topology
from host_pm_exporter.render.families import Family, Gauge
from host_pm_exporter.render.options import RenderOptions


def topology(data: tuple[CpuSets, Topology] | None, _options: RenderOptions) -> Iterator[Family]:
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


def numa(nodes: list[NumaNode] | None, _options: RenderOptions) -> Iterator[Family]:
    if nodes is None:  # a kernel without NUMA support
        return
    yield Gauge("host_numa_nodes", "NUMA nodes online.", value=len(nodes))
    memory = Gauge("host_numa_node_memory_bytes", "Memory of the NUMA node.", labels=["node"])
    cpus = Gauge("host_numa_node_cpus", "Logical CPUs of the NUMA node.", labels=["node"])
    distance = Gauge(
        "host_numa_distance", "ACPI SLIT distance from node to peer (10 = local).", labels=["node", "peer"]
    )
    pages = Gauge(
        "host_numa_node_hugepages",
        "Huge pages reserved on the node, by page size.",
        labels=["node", "size_bytes"],
    )
    free = Gauge(
        "host_numa_node_hugepages_free",
        "Huge pages free on the node, by page size.",
        labels=["node", "size_bytes"],
    )
    for node in nodes:
        label = str(node.node)
        if node.memory_bytes is not None:
            memory.add_metric([label], node.memory_bytes)
        if node.cpus is not None:
            cpus.add_metric([label], len(node.cpus))
        for peer, value in sorted(node.distances.items()):
            distance.add_metric([label, str(peer)], value)
        for size, (total, nfree) in sorted(node.hugepages.items()):
            pages.add_metric([label, str(size)], total)
            free.add_metric([label, str(size)], nfree)
    yield from (family for family in (memory, cpus, distance, pages, free) if family.rows)


def cache(caches: list[CacheSummary], _options: RenderOptions) -> Iterator[Family]:
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
