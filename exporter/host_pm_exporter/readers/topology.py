"""CPU topology: sockets, dies, clusters, cores, threads per core, and logical CPU states.

Reading less: instead of every CPU's ``physical_package_id``, ``die_id``, ``cluster_id``
and ``core_id`` (four files per CPU), each group is found once from its sibling list:
the first online CPU not yet covered reads its ``core_cpus_list``, which covers all its
siblings.  A 1024-CPU host with SMT reads 512 core lists, not 4096 id files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers import ParseError, read_parsed
from host_pm_exporter.readers.cpuinfo import CpuInfo
from host_pm_exporter.readers.cpulist import parse_cpulist, parse_cpumask

LOGICAL_STATES = ("online", "offline", "present", "possible")


@dataclass(frozen=True)
class CpuSets:
    """The kernel's CPU masks (/sys/devices/system/cpu/{online,offline,...})."""

    online: frozenset[int]
    offline: frozenset[int]
    present: frozenset[int]
    possible: frozenset[int]
    isolated: frozenset[int]


@dataclass(frozen=True)
class Topology:
    """Host totals, as libvirt and lscpu count them over the online CPUs."""

    sockets: int
    dies: int
    clusters: int
    cores: int
    threads_per_core: int
    source: str  # "sysfs" or "cpuinfo"


def cpu_dir(fs: HostFS, *parts: str) -> str:
    return fs.sys("devices", "system", "cpu", *parts)


def read_cpu_sets(fs: HostFS) -> CpuSets:
    """The CPU masks; an absent ``online`` falls back to the cpuN directories."""
    with fs.directory(cpu_dir(fs)) as cpu:
        return _cpu_sets(fs, cpu)


def _cpu_sets(fs: HostFS, cpu: Dir) -> CpuSets:
    masks = {}
    for name in (*LOGICAL_STATES, "isolated"):
        masks[name] = read_parsed(cpu, name, parse_cpulist)
    if masks["online"] is None:
        # Old kernels without the mask: every cpuN directory, but not those whose own
        # online switch says 0 (the boot CPU usually has no switch).
        entries = fs.listdir(cpu.path) or []
        numbers = sorted(int(e[3:]) for e in entries if e.startswith("cpu") and e[3:].isascii() and e[3:].isdigit())
        masks["online"] = frozenset(n for n in numbers if cpu.read_int(f"cpu{n}/online") != 0)
    online = masks["online"] or frozenset()
    present = masks["present"] if masks["present"] is not None else online
    possible = masks["possible"] if masks["possible"] is not None else present
    return CpuSets(
        online=online,
        # The kernel's offline list runs on to its compile-time maximum (16-1023 on a
        # 16-CPU partition): only possible CPUs can be offline.
        offline=(masks["offline"] or frozenset()) & (possible | online),
        present=present,
        possible=possible,
        isolated=masks["isolated"] or frozenset(),
    )


@dataclass(frozen=True)
class Groups:
    """The online CPUs partitioned by package, die, cluster and core (``None``: the
    kernel has no such sibling lists)."""

    package: list[frozenset[int]] | None
    die: list[frozenset[int]] | None
    cluster: list[frozenset[int]] | None
    core: list[frozenset[int]] | None


def sibling_groups(cpus: Dir, online: Iterable[int], names: Sequence[str]) -> list[frozenset[int]] | None:
    """Partition the online CPUs by a sibling list (the first of `names` that exists;
    a name without ``_list`` is the hex-mask form older kernels have) in `cpus`, the
    CPU directory.

    Reads one list per group.  ``None`` when the kernel has none of those files.
    """
    online_set = frozenset(online)
    covered: set[int] = set()
    groups: list[frozenset[int]] = []
    name: str | None = None
    for cpu in sorted(online_set):
        if cpu in covered:
            continue
        members = None
        for candidate in [name] if name else names:
            parse = parse_cpulist if candidate.endswith("_list") else parse_cpumask
            members = read_parsed(cpus, f"cpu{cpu}/topology/{candidate}", parse)
            if members is not None:
                name = candidate
                break
        if members is None or name is None:
            if groups:
                raise ParseError(f"cpu{cpu} has no topology/{name} but other CPUs do")
            return None
        members = (members & online_set) - covered
        members |= {cpu}
        groups.append(frozenset(members))
        covered |= members
    return groups


def id_groups(cpus: Dir, online: Sequence[int], id_file: str) -> list[frozenset[int]] | None:
    """Partition the online CPUs by an id file (old kernels with only
    ``physical_package_id`` and ``thread_siblings``); ``None`` where the kernel has
    none.  One read per CPU: only on such kernels."""
    by_id: dict[int, set[int]] = {}
    for cpu in online:
        value = cpus.read_int(f"cpu{cpu}/topology/{id_file}", signed=True)
        if value is None:
            return None
        by_id.setdefault(value, set()).add(cpu)
    return [frozenset(group) for _, group in sorted(by_id.items())] or None


# Sibling files, newest name first; the hex-mask forms for kernels without the lists.
_PACKAGE = ("package_cpus_list", "core_siblings_list", "package_cpus", "core_siblings")
_DIE = ("die_cpus_list", "die_cpus")
_CLUSTER = ("cluster_cpus_list", "cluster_cpus")
_CORE = ("core_cpus_list", "thread_siblings_list", "core_cpus", "thread_siblings")


def read_groups(fs: HostFS, online: Iterable[int]) -> Groups:
    online = sorted(online)
    with fs.directory(cpu_dir(fs)) as cpus:
        return Groups(
            package=sibling_groups(cpus, online, _PACKAGE) or id_groups(cpus, online, "physical_package_id"),
            die=None if _no_such_level(cpus, online, "die_id") else sibling_groups(cpus, online, _DIE),
            cluster=None if _no_such_level(cpus, online, "cluster_id") else sibling_groups(cpus, online, _CLUSTER),
            core=sibling_groups(cpus, online, _CORE),
        )


# "No such level": -1 (arm64, RISC-V... on kernels 5.2 to about 6.0) and x86's BAD_APICID
# 0xffff (and its 32-bit form), which x86 writes as cluster_id where it does not know
# which CPUs share an L2.
_UNKNOWN_IDS = (-1, 0xFFFF, 0xFFFFFFFF)


def _no_such_level(cpus: Dir, online: Sequence[int], id_file: str) -> bool:
    """Kernels 5.2 to about 6.0 write ``die_id`` -1 (and, later, ``cluster_id`` -1) with
    a sibling list of the CPU alone on every architecture that has no such level: the
    level is then unknown, not one per CPU.  The kernel's default is the same for every
    CPU, so the first online CPU tells."""
    if not online:
        return False
    return cpus.read_int(f"cpu{online[0]}/topology/{id_file}", signed=True) in _UNKNOWN_IDS


def read_topology(groups: Groups, cpus: CpuSets, cpuinfo: CpuInfo | None) -> Topology | None:
    """Host totals; ``None`` when neither sysfs nor /proc/cpuinfo describes the CPUs."""
    packages, cores = groups.package, groups.core
    if packages is None or cores is None:
        return topology_from_cpuinfo(cpus, cpuinfo) if cpuinfo is not None else None
    n_dies = len(groups.die) if groups.die is not None else len(packages)
    return Topology(
        sockets=len(packages),
        dies=n_dies,
        clusters=len(groups.cluster) if groups.cluster is not None else n_dies,
        cores=len(cores),
        threads_per_core=max((len(g) for g in cores), default=0),
        source="sysfs",
    )


def topology_from_cpuinfo(cpus: CpuSets, cpuinfo: CpuInfo) -> Topology:
    """Without sysfs topology: x86 and s390x cpuinfo carry physical and core ids."""
    entries = [e for e in cpuinfo.cpus if e.cpu in cpus.online] or list(cpuinfo.cpus)
    if all(e.package is not None and e.core is not None for e in entries):
        per_core: dict[tuple[int | None, int | None], int] = {}
        for entry in entries:
            key = (entry.package, entry.core)
            per_core[key] = per_core.get(key, 0) + 1
        sockets = len({e.package for e in entries})
        return Topology(
            sockets=sockets,
            dies=sockets,
            clusters=sockets,
            cores=len(per_core),
            threads_per_core=max(per_core.values()),
            source="cpuinfo",
        )
    # Nothing says how CPUs group: each is its own core on one socket.
    return Topology(1, 1, 1, len(entries), 1 if entries else 0, source="cpuinfo")


# Intel hybrid CPUs register one perf PMU per core type, each listing its CPUs.
CORE_TYPE_PMUS = (("cpu_core", "performance"), ("cpu_atom", "efficiency"))


def read_core_types(fs: HostFS) -> dict[int, str]:
    """CPU -> ``performance`` or ``efficiency`` on Intel hybrid hosts; empty elsewhere."""
    types = {}
    for pmu, name in CORE_TYPE_PMUS:
        cpus = read_parsed(fs, fs.sys("devices", pmu, "cpus"), parse_cpulist)
        if cpus is not None:
            types.update(dict.fromkeys(cpus, name))
    return types
