"""CPU caches per level and type: total size and number of instances, as lscpu counts
them (/sys/devices/system/cpu/cpu*/cache/index*)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Callable

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError, read_parsed
from host_pm_exporter.readers.cpulist import parse_cpulist
from host_pm_exporter.readers.topology import Groups

_SIZE = re.compile(r"(\d+)([KMG]?)")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


@dataclass(frozen=True)
class CacheSummary:
    level: int
    type: str  # Data, Instruction, Unified
    size_bytes: int | None  # all instances together, as lscpu prints it; None when unknown
    instances: int


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
    fs: HostFS, online: Iterable[int], kind_of: Callable[[int], Hashable], groups: Groups | None = None
) -> list[CacheSummary]:
    """Count cache instances reading as little as possible.

    For each cache index and kind of CPU, one CPU's cache is described (level, type,
    size, shared_cpu_list).  The kernel derives a cache's sharing from the CPU's
    topology, so when that CPU's shared list is exactly its core, cluster, die or
    package, every CPU of the kind shares the same way and the instances are the
    groups of that level: no more reads.  Otherwise (an L3 per AMD CCX, say) the CPUs
    of the kind are covered by their own shared lists, one read per instance.
    """
    cpus = sorted(online)
    if not cpus:
        return []
    base = fs.sys("devices", "system", "cpu")
    indexes = [e for e in fs.listdir(f"{base}/cpu{cpus[0]}/cache") or [] if re.fullmatch(r"index\d+", e)]
    online_set = frozenset(cpus)
    by_kind: dict[Hashable, list[int]] = {}
    for cpu in cpus:
        by_kind.setdefault(kind_of(cpu), []).append(cpu)
    levels = [g for g in (groups.core, groups.cluster, groups.die, groups.package) if g is not None] if groups else []
    group_of = [{cpu: group for group in level for cpu in group} for level in levels]
    totals: dict[tuple[int, str], list[int | None]] = {}
    for index in indexes:
        # Instances of this index, by the CPUs that share them: a cache shared by CPUs
        # of two kinds (an L3 over P- and E-cores) is one instance.
        instances: dict[frozenset[int], tuple[int, str, int | None]] = {}
        for members in by_kind.values():
            path = f"{base}/cpu{{}}/cache/{index}"
            _instances(fs, path, members=members, online=online_set, levels=levels, group_of=group_of, out=instances)
        for level, ctype, size in instances.values():
            total = totals.setdefault((level, ctype), [0, 0])
            total[0] = None if size is None or total[0] is None else total[0] + size
            total[1] = (total[1] or 0) + 1
    return [CacheSummary(level, ctype, size, count or 0) for (level, ctype), (size, count) in sorted(totals.items())]


def _instances(
    fs: HostFS,
    path: str,
    *,
    members: list[int],
    online: frozenset[int],
    levels: list[list[frozenset[int]]],
    group_of: list[dict[int, frozenset[int]]],
    out: dict[frozenset[int], tuple[int, str, int | None]],
) -> None:
    """Add the instances of one cache index over the CPUs of one kind to `out`."""
    rep = members[0]
    shared_list = read_parsed(fs, path.format(rep) + "/shared_cpu_list", parse_cpulist)
    if shared_list is None:
        return  # these CPUs have no such cache
    shared = (shared_list & online) | {rep}
    description = _describe(fs, path.format(rep))
    kind = frozenset(members)
    for partition, owner in zip(levels, group_of):
        if owner.get(rep) == shared:
            for group in partition:
                if group & kind:
                    out.setdefault(group, description)
            return
    covered = set(shared)
    out.setdefault(frozenset(shared), description)
    for cpu in members:
        if cpu in covered:
            continue
        listed = read_parsed(fs, path.format(cpu) + "/shared_cpu_list", parse_cpulist)
        group = ((listed & online) if listed is not None else frozenset()) | {cpu}
        out.setdefault(frozenset(group), description)
        covered |= group


def _describe(fs: HostFS, path: str) -> tuple[int, str, int | None]:
    """Level, type and size of a cache.  The kernel leaves out ``size`` when firmware
    does not say it (arm64 guests, some boards): the size is then unknown."""
    level = fs.read_int(f"{path}/level")
    ctype, size = fs.read(f"{path}/type"), fs.read(f"{path}/size")
    if level is None or ctype is None:
        raise ParseError(f"{path}: level or type missing")
    return level, ctype.strip(), parse_cache_size(size) if size is not None else None
