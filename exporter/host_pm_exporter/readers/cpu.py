"""CPU identity and features for the ``cpu`` collector (kinds of CPU, flags), and the
CPU's security bugs for the ``vulnerabilities`` collector."""

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
    fingerprint: str
    x86_64_level: int | None  # None off x86


@dataclass(frozen=True)
class SecurityFacts:
    bugs: frozenset[str]  # cpuinfo's "bugs"
    vulnerabilities: tuple[Vulnerability, ...]  # /sys/devices/system/cpu/vulnerabilities


def cpu_facts(cpuinfo: CpuInfo, core_types: dict[int, str]) -> CpuFacts:
    kinds = dict.fromkeys((entry.kind, core_types.get(entry.cpu, "")) for entry in cpuinfo.cpus)
    flags = cpuinfo.flags()
    return CpuFacts(
        arch=cpuinfo.arch,
        kinds=tuple(kinds),
        flags=flags,
        fingerprint=fingerprint(flags),
        x86_64_level=x86_64_level(flags) if cpuinfo.arch == "x86_64" else None,
    )
