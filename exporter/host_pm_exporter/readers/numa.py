"""NUMA nodes: CPUs, memory, distances and huge pages per node
(/sys/devices/system/node/node*)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers import ParseError, read_parsed
from host_pm_exporter.readers.cpulist import parse_cpulist, read_cpuset
from host_pm_exporter.readers.giveup import give_up, or_none

_MEMTOTAL = re.compile(r"^Node \d+ MemTotal:\s+(\d+) kB", re.MULTILINE)
_HUGEPAGES_DIR = re.compile(r"hugepages-(\d+)kB")


@dataclass(frozen=True)
class NumaNode:
    node: int
    cpus: frozenset[int] | None  # None when the node has neither cpulist nor cpumap
    memory_bytes: int | None
    distances: dict[int, int] = field(default_factory=dict)
    hugepages: dict[int, tuple[int, int]] = field(default_factory=dict)  # size bytes -> (total, free)


def parse_node_meminfo(text: str) -> int:
    """MemTotal of a node's meminfo, in bytes.

    >>> parse_node_meminfo("Node 0 MemTotal:       65536000 kB\\nNode 0 MemFree: 1 kB\\n")
    67108864000
    """
    match = _MEMTOTAL.search(text)
    if not match:
        raise ParseError("no MemTotal in node meminfo")
    return int(match.group(1)) * 1024


def parse_distance(text: str) -> list[int]:
    """A node's distance row.

    >>> parse_distance("10 21\\n")
    [10, 21]
    """
    try:
        return [int(word) for word in text.split()]
    except ValueError:
        raise ParseError(f"bad distance row {text.strip()[:60]!r}") from None


def read_numa(fs: HostFS, online_cpus: frozenset[int] | None = None) -> list[NumaNode] | None:
    """The online NUMA nodes; ``None`` when the kernel has no node directory.

    A node's CPUs are its online ones (`online_cpus`, when known): the kernel's
    ``cpulist`` also lists offline CPUs on some architectures (s390 drawers, CPUs
    taken offline).  Each fact of a node stands on its own: one that cannot be read is
    given up and the others stay.  The nodes come from ``node/online``, else from the
    ``nodeN`` directories."""
    base = fs.sys("devices", "system", "node")
    online = or_none("node online list", read_parsed, fs, f"{base}/online", parse_cpulist)
    if online is not None:
        ids = sorted(online)
    else:
        entries = fs.listdir(base)
        if entries is None:
            return None
        ids = sorted(int(e[4:]) for e in entries if e.startswith("node") and e[4:].isascii() and e[4:].isdigit())
    nodes = []
    for node in ids:
        with fs.directory(f"{base}/node{node}") as files:
            if files.absent:
                continue  # listed online, but no directory: nothing to report
            nodes.append(_node(fs, files, node, ids, online_cpus))
    return nodes


def _node(fs: HostFS, path: Dir, node: int, ids: list[int], online_cpus: frozenset[int] | None) -> NumaNode:
    """One node's facts, from its directory."""
    cpus = or_none("node cpu list", read_cpuset, path, "cpulist", "cpumap")
    if cpus is not None and online_cpus is not None:
        cpus &= online_cpus
    memory = or_none("node memory", read_parsed, path, "meminfo", parse_node_meminfo)
    row = or_none("node distances", read_parsed, path, "distance", parse_distance) or []
    if row and len(row) != len(ids):
        give_up("node distances", ParseError(f"{path.where('distance')}: {len(row)} distances for {len(ids)} nodes"))
    hugepages = {}
    for entry in or_none("node huge pages", fs.listdir, path.where("hugepages")) or []:
        match = _HUGEPAGES_DIR.fullmatch(entry)
        if match:
            total = or_none("node huge pages", path.read_int, f"hugepages/{entry}/nr_hugepages")
            free = or_none("node huge pages", path.read_int, f"hugepages/{entry}/free_hugepages")
            if total is not None and free is not None:  # absent is no sample, not 0
                hugepages[int(match.group(1)) * 1024] = (total, free)
    return NumaNode(
        node=node,
        cpus=cpus,
        memory_bytes=memory,
        distances=dict(zip(ids, row)) if len(row) == len(ids) else {},
        hugepages=hugepages,
    )
