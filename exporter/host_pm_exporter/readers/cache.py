"""CPU caches per level and type: total size and number of instances, as lscpu counts
them (/sys/devices/system/cpu/cpu*/cache/index*)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Callable

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers import ParseError, parse_file
from host_pm_exporter.readers.cpulist import read_cpuset

_SIZE = re.compile(r"(\d+)([KMG]?)")
_INDEX = re.compile(r"index\d+")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class CacheSummary:
    level: int
    type: str  # Data, Instruction, Unified
    size_bytes: int | None  # all instances together, as lscpu prints it; None when unknown
    instances: int | None  # None when the kernel does not say (s390's shared caches)


def parse_cache_size(text: str) -> int:
    """A cache size as sysfs writes it.

    >>> parse_cache_size("48K\\n"), parse_cache_size("32768K")
    (49152, 33554432)
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ParseError(f"bad cache size {text.strip()[:20]!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def read_caches(
    fs: HostFS,
    online: Iterable[int],
    kind_of: Callable[[int], Hashable],
    elsewhere: Sequence[CacheSummary] = (),
) -> list[CacheSummary]:
    """Count cache instances as lscpu does: the distinct sets of online CPUs that share
    one, from each CPU's ``shared_cpu_list`` (or, on older kernels, ``shared_cpu_map``).

    Each cache index is described (level, type, size) once per kind of CPU, and one
    sharing list is read per instance: a CPU that an instance already covers is not
    read again.  Nothing is assumed from the topology: on a big.LITTLE SoC two small
    cores may share an L2 while a third of the same kind has its own.

    `elsewhere` are caches the kernel keeps outside sysfs (s390's shared caches are
    only in /proc/cpuinfo); a level and type that sysfs has wins.
    """
    cpus = sorted(online)
    if not cpus:
        return list(elsewhere)
    with fs.directory(fs.sys("devices", "system", "cpu")) as cpu_dir:
        return _read_caches(fs, cpu_dir, cpus, kind_of, elsewhere)


def _read_caches(
    fs: HostFS,
    cpu_dir: Dir,
    cpus: list[int],
    kind_of: Callable[[int], Hashable],
    elsewhere: Sequence[CacheSummary],
) -> list[CacheSummary]:
    online_set = frozenset(cpus)
    by_kind: dict[Hashable, list[int]] = {}
    for cpu in cpus:
        by_kind.setdefault(kind_of(cpu), []).append(cpu)
    # (level, type, sharing CPUs) -> size: a cache shared by CPUs of two kinds (an L3
    # over P- and E-cores) is one instance.
    instances: dict[tuple[int, str, frozenset[int]], int | None] = {}
    for members in by_kind.values():
        rep = members[0]
        for index in fs.listdir(cpu_dir.where(f"cpu{rep}/cache")) or []:
            if not _INDEX.fullmatch(index):
                continue
            level, ctype, size = _describe(cpu_dir, f"cpu{rep}/cache/{index}")
            covered: set[int] = set()
            for cpu in members:
                if cpu in covered:
                    continue
                path = f"cpu{cpu}/cache/{index}"
                shared = read_cpuset(cpu_dir, f"{path}/shared_cpu_list", f"{path}/shared_cpu_map")
                if shared is None:
                    continue  # this CPU has no such cache
                group = frozenset((shared & online_set) | {cpu})
                instances.setdefault((level, ctype, group), size)
                covered |= group
    totals: dict[tuple[int, str], list[int | None]] = {}
    for (level, ctype, _group), size in instances.items():
        total = totals.setdefault((level, ctype), [0, 0])
        total[0] = None if size is None or total[0] is None else total[0] + size
        total[1] = (total[1] or 0) + 1
    if not totals:
        elsewhere = [*elsewhere, *_sparc_caches(cpu_dir, f"cpu{cpus[0]}")]
    out = [CacheSummary(level, ctype, size, count or 0) for (level, ctype), (size, count) in sorted(totals.items())]
    out += [c for c in elsewhere if (c.level, c.type) not in totals]
    return sorted(out, key=lambda c: (c.level, c.type))


def _describe(cpu_dir: Dir, path: str) -> tuple[int, str, int | None]:
    """Level, type and size of a cache (`path` in the CPU directory).  The kernel
    leaves out ``size`` when firmware does not say it (arm64 guests, some boards): the
    size is then unknown."""
    level = cpu_dir.read_int(f"{path}/level")
    ctype, size = cpu_dir.read(f"{path}/type"), cpu_dir.read(f"{path}/size")
    if level is None or ctype is None:
        raise ParseError(f"{cpu_dir.where(path)}: level or type missing")
    if size is None:
        return level, ctype.strip(), None
    return level, ctype.strip(), parse_file(cpu_dir.where(f"{path}/size"), parse_cache_size, size)


# sparc64 keeps a CPU's caches as attributes of the CPU itself, in bytes.
_SPARC_CACHES = (("l1_dcache_size", 1, "Data"), ("l1_icache_size", 1, "Instruction"), ("l2_cache_size", 2, "Unified"),
                 ("l3_cache_size", 3, "Unified"))  # fmt: skip


def _sparc_caches(cpu_dir: Dir, cpu: str) -> list[CacheSummary]:
    """sparc64's cache sizes (``cpuN/l1_dcache_size`` ...), as lscpu reads them there.
    Which CPUs share one, the kernel does not say: no instance count."""
    out = []
    for name, level, ctype in _SPARC_CACHES:
        size = cpu_dir.read_int(f"{cpu}/{name}")
        if size:
            out.append(CacheSummary(level, ctype, size, None))
    return out
