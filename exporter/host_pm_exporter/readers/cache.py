"""CPU caches per level and type: total size and number of instances, as lscpu counts
them (/sys/devices/system/cpu/cpu*/cache/index*)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Callable

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers import ParseError, read_parsed, read_word
from host_pm_exporter.readers.cpulist import read_cpuset
from host_pm_exporter.readers.giveup import or_none

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
    one, from each CPU's ``shared_cpu_list`` (or, on older kernels, ``shared_cpu_map``),
    and sum their sizes, each instance's own (an Intel hybrid's L1d is 8 x 48 KiB and
    4 x 32 KiB on a Core i7-12700; an SoC's L3 slices may differ in size).

    Each CPU's own indexes count, so a CPU without some level (an asymmetric SoC)
    neither hides that level on the others nor borrows it: the first CPU of each kind
    lists its cache directory, the others are checked by one stat (its subdirectory
    count; two stats where the file system does not count them) and listed where
    they differ.  Each index is described (level, type) once per kind of CPU and set
    of indexes; one sharing list and one size are read per instance: a CPU that an
    instance already covers is not read again.  A sharing map without the CPU itself (ia64 writes all zeros) falls
    back to the CPU's thread siblings, as lscpu does.  Nothing else is assumed from the
    topology: on a big.LITTLE SoC two small cores may share an L2 while a third of the
    same kind has its own.

    `elsewhere` are caches the kernel keeps outside sysfs (s390's shared caches are
    only in /proc/cpuinfo); a level and type that sysfs has wins.
    """
    cpus = sorted(online)
    if not cpus:
        return list(elsewhere)
    with fs.directory(fs.sys("devices", "system", "cpu")) as cpu_dir:
        return _read_caches(fs, cpu_dir, cpus, kind_of, elsewhere)


def _indexes(fs: HostFS, cpu_dir: Dir, cpu: int) -> tuple[str, ...]:
    names = or_none("cache directory", fs.listdir, cpu_dir.where(f"cpu{cpu}/cache")) or []
    return tuple(sorted((n for n in names if _INDEX.fullmatch(n)), key=lambda n: int(n[5:])))


def _shapes(
    fs: HostFS, cpu_dir: Dir, cpus: list[int], kind_of: Callable[[int], Hashable]
) -> dict[tuple[Hashable, tuple[str, ...]], list[int]]:
    """The CPUs by kind and cache indexes."""
    # Each CPU's indexes: listed for the first CPU of each kind; the others are taken
    # to have the same unless a stat says otherwise (one more index, or one fewer:
    # the kernel numbers a CPU's indexes from 0 without gaps), then listed themselves.
    # Where the first CPU's cache directory counts its subdirectories in its link count
    # (sysfs, ext4 and tmpfs write 2 + subdirectories; the listing had no other
    # subdirectory), one stat of each other CPU's directory tells the same: an equal
    # count is the same indexes, and a CPU whose count differs is listed unless one of
    # its kind with that count was (listing is the dearer).  Elsewhere (btrfs writes 1)
    # the two stats decide.
    shapes: dict[tuple[Hashable, tuple[str, ...]], list[int]] = {}
    first: dict[Hashable, tuple[tuple[str, ...], bool]] = {}
    by_links: dict[tuple[Hashable, int], tuple[str, ...]] = {}
    for cpu in cpus:
        kind = kind_of(cpu)
        known = first.get(kind)
        if known is None:
            indexes = _indexes(fs, cpu_dir, cpu)
            links = cpu_dir.links(f"cpu{cpu}/cache")
            counted = links == len(indexes) + 2
            first[kind] = (indexes, counted)
            if counted:
                by_links[(kind, len(indexes) + 2)] = indexes
        elif known[1]:
            links = cpu_dir.links(f"cpu{cpu}/cache")
            seen = by_links.get((kind, links or 0))
            if seen is not None:
                indexes = seen
            else:
                indexes = _indexes(fs, cpu_dir, cpu)
                if links == len(indexes) + 2:
                    by_links[(kind, links)] = indexes
        else:
            indexes = known[0]
            if cpu_dir.exists(f"cpu{cpu}/cache/index{len(indexes)}") or (
                indexes and not cpu_dir.exists(f"cpu{cpu}/cache/{indexes[-1]}")
            ):
                indexes = _indexes(fs, cpu_dir, cpu)
        shapes.setdefault((kind, indexes), []).append(cpu)
    return shapes


def _read_caches(
    fs: HostFS,
    cpu_dir: Dir,
    cpus: list[int],
    kind_of: Callable[[int], Hashable],
    elsewhere: Sequence[CacheSummary],
) -> list[CacheSummary]:
    online_set = frozenset(cpus)
    shapes = _shapes(fs, cpu_dir, cpus, kind_of)
    # (level, type, sharing CPUs) -> size: a cache shared by CPUs of two kinds (an L3
    # over P- and E-cores) is one instance.
    instances: dict[tuple[int, str, frozenset[int]], int | None] = {}
    for (_kind, indexes), members in shapes.items():
        for index in indexes:
            described = or_none("cache level and type", _describe, cpu_dir, f"cpu{members[0]}/cache/{index}")
            if described is None:
                continue
            level, ctype = described
            covered: set[int] = set()
            for cpu in members:
                if cpu in covered:
                    continue
                path = f"cpu{cpu}/cache/{index}"
                shared = or_none("cache sharing list", _sharing, cpu_dir, cpu, path)
                if shared is None:
                    continue  # no such cache after all, or its list given up
                group = frozenset((shared & online_set) | {cpu})
                key = (level, ctype, group)
                if key not in instances:
                    instances[key] = or_none("cache size", read_parsed, cpu_dir, f"{path}/size", parse_cache_size)
                covered |= group
    totals: dict[tuple[int, str], list[int | None]] = {}
    for (level, ctype, _group), size in instances.items():
        total = totals.setdefault((level, ctype), [0, 0])
        total[0] = None if size is None or total[0] is None else total[0] + size
        total[1] = (total[1] or 0) + 1
    if not totals:
        elsewhere = [*elsewhere, *_sparc_caches(cpu_dir, cpus)]
    out = [CacheSummary(level, ctype, size, count or 0) for (level, ctype), (size, count) in sorted(totals.items())]
    out += [c for c in elsewhere if (c.level, c.type) not in totals]
    return sorted(out, key=lambda c: (c.level, c.type))


def _sharing(cpu_dir: Dir, cpu: int, path: str) -> frozenset[int] | None:
    """The CPUs sharing `cpu`'s cache at `path`; ``None`` when the CPU has no such
    cache.  A map without the CPU itself (ia64 writes all zeros) is the CPU's thread
    siblings, as lscpu takes it."""
    shared = read_cpuset(cpu_dir, f"{path}/shared_cpu_list", f"{path}/shared_cpu_map")
    if shared is None or cpu in shared:
        return shared
    topo = f"cpu{cpu}/topology"
    siblings = read_cpuset(cpu_dir, f"{topo}/thread_siblings_list", f"{topo}/thread_siblings")
    return siblings if siblings and cpu in siblings else frozenset({cpu})


def _describe(cpu_dir: Dir, path: str) -> tuple[int, str]:
    """Level and type of a cache (`path` in the CPU directory)."""
    level = cpu_dir.read_int(f"{path}/level")
    ctype = read_word(cpu_dir, f"{path}/type")
    if level is None or ctype is None:
        raise ParseError(f"{cpu_dir.where(path)}: level or type missing")
    return level, ctype


# sparc64 keeps a CPU's caches as attributes of the CPU itself, in bytes.
_SPARC_CACHES = (("l1_dcache_size", 1, "Data"), ("l1_icache_size", 1, "Instruction"), ("l2_cache_size", 2, "Unified"),
                 ("l3_cache_size", 3, "Unified"))  # fmt: skip


def _sparc_caches(cpu_dir: Dir, cpus: list[int]) -> list[CacheSummary]:
    """sparc64's cache sizes (``cpuN/l1_dcache_size`` ...), as lscpu reads them there,
    from the first online CPU whose directory is there (sparc64's first CPU need not
    be cpu0).  Which CPUs share one, the kernel does not say: no instance count, and
    the size is one instance's."""
    for cpu in cpus:
        if not cpu_dir.is_dir(f"cpu{cpu}"):
            continue
        out = []
        for name, level, ctype in _SPARC_CACHES:
            size = or_none("sparc cache size", cpu_dir.read_int, f"cpu{cpu}/{name}")
            if size:
                out.append(CacheSummary(level, ctype, size, None))
        return out
    return []
