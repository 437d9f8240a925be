"""CPU topology: sockets, dies, clusters, cores, threads per core, and logical CPU states.

Reading less: instead of every CPU's ``physical_package_id``, ``die_id``, ``cluster_id``
and ``core_id`` (four files per CPU), each group is found once from its sibling list:
the first online CPU not yet covered reads its ``core_cpus_list``, which covers all its
siblings.  A 1024-CPU host with SMT reads 512 core lists, not 4096 id files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from host_pm_exporter.hostfs import Dir, HostFS, ReadError
from host_pm_exporter.readers import ParseError, read_parsed
from host_pm_exporter.readers.cpuinfo import CpuInfo
from host_pm_exporter.readers.cpulist import parse_cpulist, parse_cpumask
from host_pm_exporter.readers.giveup import give_up, or_none

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
    """The CPU masks, each with its fallback where the kernel has no such file or it
    cannot be read (docs/architectures.md, "Fallbacks"):

    - present: ``present``; else every ``cpuN`` directory (kernels register a CPU
      device for each present CPU), and the online CPUs;
    - online: ``online``; else every present CPU whose ``cpuN/online`` switch does
      not say ``0`` (an absent or empty switch is online: the boot CPU has none, and
      kernels without CPU hotplug none at all);
    - possible: ``possible``; else the present CPUs;
    - offline: ``offline`` (the kernel's list runs on to its compile-time maximum:
      only possible CPUs count); else the possible CPUs not online.
    """
    with fs.directory(cpu_dir(fs)) as cpu:
        return _cpu_sets(fs, cpu)


def _mask(cpu: Dir, name: str) -> frozenset[int] | None:
    return or_none(f"cpu {name} list", read_parsed, cpu, name, parse_cpulist)


def cpu_numbers(fs: HostFS, cpu: Dir) -> list[int]:
    """The N of every ``cpuN`` directory, sorted."""
    entries = fs.listdir(cpu.path) or []
    return sorted(int(e[3:]) for e in entries if e.startswith("cpu") and e[3:].isascii() and e[3:].isdigit())


def parse_online_switch(text: str) -> bool:
    """A CPU's ``online`` switch: ``0`` is offline, ``1`` (or nothing: a damaged or
    odd capture) online.

    >>> parse_online_switch("0\\n"), parse_online_switch("1\\n"), parse_online_switch("\\n")
    (False, True, True)
    """
    word = text.strip()
    if word not in ("", "0", "1"):
        raise ParseError(f"not 0 or 1: {word[:20]!r}")
    return word != "0"


def _switched_on(cpu: Dir, number: int) -> bool:
    """Whether ``cpuN/online`` leaves the CPU online; one that cannot be read is
    counted online (its directory is there) and the switch given up."""
    state = or_none("cpu online switch", read_parsed, cpu, f"cpu{number}/online", parse_online_switch)
    return state is not False


def _cpu_sets(fs: HostFS, cpu: Dir) -> CpuSets:
    masks = {name: _mask(cpu, name) for name in (*LOGICAL_STATES, "isolated")}
    online, present = masks["online"], masks["present"]
    if present is None:
        present = frozenset(cpu_numbers(fs, cpu))
        if online is not None:
            present |= online
    if online is None:
        online = frozenset(n for n in present if _switched_on(cpu, n))
    possible = masks["possible"] if masks["possible"] is not None else present
    offline = masks["offline"]
    return CpuSets(
        online=online,
        # The kernel's offline list runs on to its compile-time maximum (16-1023 on a
        # 16-CPU partition): only possible CPUs can be offline.
        offline=(offline & (possible | online)) if offline is not None else possible - online,
        present=present,
        possible=possible,
        isolated=masks["isolated"] or frozenset(),
    )


@dataclass(frozen=True)
class Groups:
    """The online CPUs partitioned by package, die, cluster and core (``None``: the
    kernel has no such sibling lists, or they could not be read)."""

    package: list[frozenset[int]] | None
    die: list[frozenset[int]] | None
    cluster: list[frozenset[int]] | None
    core: list[frozenset[int]] | None


def sibling_groups(
    cpus: Dir, online: Iterable[int], names: Sequence[str], fact: str = "sibling list"
) -> list[frozenset[int]] | None:
    """Partition the online CPUs by a sibling list (the first of `names` that exists;
    a name without ``_list`` is the hex-mask form older kernels have) in `cpus`, the
    CPU directory.

    Reads one list per group.  ``None`` when the kernel has none of those files.  A
    CPU whose list cannot be read or parsed is read from the next name (the fact given
    up from that file); a CPU with none of them while others have them raises
    `ParseError`: the grouping is then unknown.
    """
    online_set = frozenset(online)
    covered: set[int] = set()
    groups: list[frozenset[int]] = []
    name: str | None = None
    for cpu in sorted(online_set):
        if cpu in covered:
            continue
        members = None
        for candidate in [name, *(n for n in names if n != name)] if name else names:
            parse = parse_cpulist if candidate.endswith("_list") else parse_cpumask
            try:
                members = read_parsed(cpus, f"cpu{cpu}/topology/{candidate}", parse)
            except (ReadError, ParseError) as err:
                give_up(fact, err)
                continue
            if members is not None:
                name = name or candidate
                break
        if members is None or name is None:
            if groups:
                raise ParseError(f"cpu{cpu} has no readable topology/{name} but other CPUs do")
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
    """Each level's groups, each on its own: a level whose files cannot be read is
    given up (``None``) and the others stand."""
    online = sorted(online)
    with fs.directory(cpu_dir(fs)) as cpus:

        def level(fact: str, names: Sequence[str]) -> list[frozenset[int]] | None:
            return or_none(fact, sibling_groups, cpus, online, names, fact)

        package = level("package siblings", _PACKAGE)
        if package is None:
            package = or_none("package ids", id_groups, cpus, online, "physical_package_id")
        return Groups(
            package=package,
            die=None if _no_such_level(cpus, online, "die_id") else level("die siblings", _DIE),
            cluster=None if _no_such_level(cpus, online, "cluster_id") else level("cluster siblings", _CLUSTER),
            core=level("core siblings", _CORE),
        )


# "No such level": -1 (arm64, RISC-V... on kernels 5.2 to about 6.0) and x86's BAD_APICID
# 0xffff (and its 32-bit form), which x86 writes as cluster_id where it does not know
# which CPUs share an L2.
_UNKNOWN_IDS = (-1, 0xFFFF, 0xFFFFFFFF)


def _no_such_level(cpus: Dir, online: Sequence[int], id_file: str) -> bool:
    """Kernels 5.2 to about 6.0 write ``die_id`` -1 (and, later, ``cluster_id`` -1) with
    a sibling list of the CPU alone on every architecture that has no such level: the
    level is then unknown, not one per CPU.  The kernel's default is the same for every
    CPU, so the first online CPU tells.  An id that cannot be read leaves the level
    unknown too (given up)."""
    if not online:
        return False
    try:
        return cpus.read_int(f"cpu{online[0]}/topology/{id_file}", signed=True) in _UNKNOWN_IDS
    except ReadError as err:  # read_int raises ReadError for what is not a number too
        give_up(id_file, err)
        return True


def read_topology(groups: Groups, cpus: CpuSets, cpuinfo: CpuInfo | None) -> Topology | None:
    """Host totals, each fact from its best source (docs/architectures.md):

    - sockets: the package sibling lists (or ``physical_package_id``); else cpuinfo's
      ``physical id``; else one;
    - cores and threads per core: the core sibling lists (``core_cpus_list``, else
      ``thread_siblings_list``: on kernels with only those, the sibling sets are the
      cores); else cpuinfo's ``physical id`` and ``core id`` pairs; else each CPU is
      its own core;
    - dies and clusters: their sibling lists; else one per socket, one per die.

    ``None`` when neither sysfs nor /proc/cpuinfo describes the CPUs."""
    packages, cores = groups.package, groups.core
    if packages is None and cores is None and cpuinfo is None:
        return None
    entries = [] if cpuinfo is None else [e for e in cpuinfo.cpus if e.cpu in cpus.online] or list(cpuinfo.cpus)
    with_ids = bool(entries) and all(e.package is not None and e.core is not None for e in entries)
    if packages is not None:
        sockets = len(packages)
    elif with_ids:
        sockets = len({e.package for e in entries})
    else:
        sockets = 1 if (cpus.online or entries) else 0
    if cores is not None:
        n_cores, threads = len(cores), max((len(g) for g in cores), default=0)
    elif with_ids:
        per_core: dict[tuple[int | None, int | None], int] = {}
        for entry in entries:
            key = (entry.package, entry.core)
            per_core[key] = per_core.get(key, 0) + 1
        n_cores, threads = len(per_core), max(per_core.values())
    else:  # nothing says how CPUs group: each is its own core
        count = len(entries) or len(cpus.online)
        n_cores, threads = count, 1 if count else 0
    n_dies = len(groups.die) if groups.die is not None else sockets
    return Topology(
        sockets=sockets,
        dies=n_dies,
        clusters=len(groups.cluster) if groups.cluster is not None else n_dies,
        cores=n_cores,
        threads_per_core=threads,
        source="sysfs" if packages is not None and cores is not None else "cpuinfo",
    )


# Intel hybrid CPUs register one perf PMU per core type, each listing its CPUs.
CORE_TYPE_PMUS = (("cpu_core", "performance"), ("cpu_atom", "efficiency"))


def read_core_types(fs: HostFS) -> dict[int, str]:
    """CPU -> ``performance`` or ``efficiency`` on Intel hybrid hosts; empty elsewhere."""
    types = {}
    for pmu, name in CORE_TYPE_PMUS:
        cpus = or_none("core type list", read_parsed, fs, fs.sys("devices", pmu, "cpus"), parse_cpulist)
        if cpus is not None:
            types.update(dict.fromkeys(cpus, name))
    return types
