"""CPU identity and features for the ``cpu`` collector: kinds of CPU, flags, bugs and
vulnerabilities."""

from __future__ import annotations

from dataclasses import dataclass

from host_pm_exporter.readers.cpuflags import fingerprint, x86_64_level
from host_pm_exporter.readers.cpuinfo import CpuInfo
from host_pm_exporter.readers.cpukind import CpuKind
from host_pm_exporter.readers.vulnerabilities import Vulnerability


@dataclass(frozen=True)
class CpuFacts:
    arch: str
    kinds: tuple[tuple[CpuKind, str], ...]  # (identity, core type or "")
    flags: frozenset[str]
    bugs: frozenset[str]
    fingerprint: str
    x86_64_level: int | None  # None off x86
    vulnerabilities: tuple[Vulnerability, ...]


def cpu_facts(cpuinfo: CpuInfo, core_types: dict[int, str], vulnerabilities: list[Vulnerability]) -> CpuFacts:
    kinds = dict.fromkeys((entry.kind, core_types.get(entry.cpu, "")) for entry in cpuinfo.cpus)
    flags = cpuinfo.flags()
    return CpuFacts(
        arch=cpuinfo.arch,
        kinds=tuple(kinds),
        flags=flags,
        bugs=cpuinfo.bugs(),
        fingerprint=fingerprint(flags),
        x86_64_level=x86_64_level(flags) if cpuinfo.arch == "x86_64" else None,
        vulnerabilities=tuple(vulnerabilities),
    )
