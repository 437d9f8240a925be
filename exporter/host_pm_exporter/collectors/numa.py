"""The ``numa`` collector: NUMA nodes, their memory, CPUs, distances and huge pages."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge
from host_pm_exporter.readers.numa import NumaNode, read_numa


def families(nodes: list[NumaNode] | None) -> Iterator[Family]:
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


COLLECTOR = Collector(
    "numa",
    "NUMA nodes: memory, CPUs, distances, huge pages",
    gather=lambda facts: read_numa(facts.fs, facts.online_or_none()),
    families=families,
    metrics=(
        "host_numa_nodes",
        "host_numa_node_memory_bytes",
        "host_numa_node_cpus",
        "host_numa_distance",
        "host_numa_node_hugepages",
        "host_numa_node_hugepages_free",
    ),
)
