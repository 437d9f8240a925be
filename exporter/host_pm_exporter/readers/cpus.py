"""Per-CPU facts for the capabilities XML: each online CPU's topology ids and thread
siblings, the cache instances of level 3 and up, and the huge page sizes.

These are one read per CPU (four id files and a sibling list), unlike the topology
collector's one read per group: only the capabilities XML, which lists every CPU,
needs them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import read_parsed, read_word
from host_pm_exporter.readers.cache import parse_cache_size
from host_pm_exporter.readers.cpulist import read_cpuset
from host_pm_exporter.readers.giveup import or_none
from host_pm_exporter.readers.topology import cpu_dir

_HUGEPAGES = re.compile(r"hugepages-(\d+)kB")
_INDEX = re.compile(r"index\d+")


@dataclass(frozen=True)
class CpuIds:
    """One CPU's topology files as the kernel writes them (``None``: no such file;
    the kernel writes -1 where an architecture has no such level)."""

    cpu: int
    package: int | None
    die: int | None
    cluster: int | None
    core: int | None
    siblings: frozenset[int]  # thread_siblings_list; the CPU alone when absent


@dataclass(frozen=True)
class CacheBank:
    """One cache instance: its id, level, type (Unified, Data, Instruction), size in
    bytes and the CPUs sharing it."""

    id: int
    level: int
    type: str
    size_bytes: int
    cpus: frozenset[int]


def read_cpu_ids(fs: HostFS, online: Iterable[int]) -> list[CpuIds]:
    """The topology ids of every online CPU, in CPU order; an id that cannot be read
    is given up (``None``), as is an unreadable sibling list (the CPU alone)."""
    out = []
    for cpu in sorted(online):
        base = cpu_dir(fs, f"cpu{cpu}", "topology")
        siblings = or_none(
            "thread siblings", read_cpuset, fs, f"{base}/thread_siblings_list", f"{base}/thread_siblings"
        )
        package, die, cluster, core = (or_none(f"cpu {name}", _signed, fs, f"{base}/{name}") for name in _ID_FILES)
        out.append(CpuIds(cpu, package, die, cluster, core, siblings if siblings else frozenset({cpu})))
    return out


_ID_FILES = ("physical_package_id", "die_id", "cluster_id", "core_id")


def _signed(fs: HostFS, path: str) -> int | None:
    return fs.read_int(path, signed=True)


def read_cache_banks(fs: HostFS, online: Iterable[int], min_level: int = 3) -> list[CacheBank]:
    """Every distinct cache instance of `min_level` and up that has an ``id`` (the
    kernel writes one where firmware numbers its caches), sorted by level, type, id.
    A cache without ``id`` or ``size`` cannot be named: it is left out, as is one
    whose files cannot be read (given up).  A sharing map without the CPU itself
    (ia64's zeros) is the CPU's thread siblings."""
    banks: dict[tuple[int, str, int], CacheBank] = {}
    for cpu in sorted(online):
        base = cpu_dir(fs, f"cpu{cpu}", "cache")
        for index in or_none("cache directory", fs.listdir, base) or []:
            if _INDEX.fullmatch(index):
                or_none("cache bank", _bank, fs, cpu, f"{base}/{index}", min_level, banks)
    return [banks[key] for key in sorted(banks)]


def _bank(fs: HostFS, cpu: int, path: str, min_level: int, banks: dict[tuple[int, str, int], CacheBank]) -> None:
    level = fs.read_int(f"{path}/level")
    if level is None or level < min_level:
        return
    ctype = read_word(fs, f"{path}/type")
    bank_id = fs.read_int(f"{path}/id")
    size = read_parsed(fs, f"{path}/size", parse_cache_size)
    if ctype is None or bank_id is None or size is None:
        return
    key = (level, ctype, bank_id)
    if key in banks:
        return
    shared = read_cpuset(fs, f"{path}/shared_cpu_list", f"{path}/shared_cpu_map") or frozenset()
    if cpu not in shared:
        topo = cpu_dir(fs, f"cpu{cpu}", "topology")
        shared = read_cpuset(fs, f"{topo}/thread_siblings_list", f"{topo}/thread_siblings") or frozenset({cpu})
    banks[key] = CacheBank(bank_id, level, ctype, size, shared)


def read_hugepage_sizes(fs: HostFS) -> list[int]:
    """The huge page sizes the kernel offers (/sys/kernel/mm/hugepages), in KiB,
    smallest first; empty without huge page support."""
    sizes = []
    for entry in fs.listdir(fs.sys("kernel", "mm", "hugepages")) or []:
        match = _HUGEPAGES.fullmatch(entry)
        if match:
            sizes.append(int(match.group(1)))
    return sorted(sizes)


# Base page size by architecture where the running kernel cannot be asked: the
# common kernels' defaults (ppc64 distributions build with 64 KiB pages).
_BASE_PAGE_KIB = {"ppc64": 64, "ppc64le": 64}


def base_page_kib(fs: HostFS, arch: str) -> int:
    """The system page size in KiB: the running kernel's when `fs` is its own
    procfs, else the architecture's usual default."""
    if fs.running_machine():
        return max(1, os.sysconf("SC_PAGE_SIZE") // 1024)
    return _BASE_PAGE_KIB.get(arch, 4)
