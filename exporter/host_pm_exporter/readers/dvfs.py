"""CPU frequency scaling: driver, governors, limits, boost and energy/performance
preference, summed over cpufreq policies (no per-CPU series)."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.cpulist import parse_cpulist


@dataclass
class DvfsFacts:
    driver: str | None = None
    governor_cpus: dict[str, int] = field(default_factory=dict)
    epp_cpus: dict[str, int] = field(default_factory=dict)
    hardware_min_khz: int | None = None
    hardware_max_khz: int | None = None
    scaling_min_khz: int | None = None
    scaling_max_khz: int | None = None
    boost: bool | None = None
    pstate: tuple[str, str] | None = None  # (intel_pstate | amd_pstate, status)
    boost_global: bool = False  # boost came from a host-wide switch, not per policy


def _khz(text: str | None, path: str) -> int | None:
    if text is None:
        return None
    value = text.strip()
    if not value.isdigit():
        raise ParseError(f"{path}: not a frequency")
    return int(value)


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _global_switches(fs: HostFS, facts: DvfsFacts) -> None:
    """intel_pstate/amd_pstate status, and boost from no_turbo or cpufreq/boost."""
    cpu = fs.sys("devices", "system", "cpu")
    for name in ("intel_pstate", "amd_pstate"):
        status = fs.read(f"{cpu}/{name}/status")
        if status is not None:
            facts.pstate = (name, status.strip())
    no_turbo = fs.read(f"{cpu}/intel_pstate/no_turbo")
    boost = fs.read(f"{cpu}/cpufreq/boost")
    if no_turbo is not None:
        facts.boost, facts.boost_global = no_turbo.strip() == "0", True
    elif boost is not None:
        facts.boost, facts.boost_global = boost.strip() == "1", True


def read_dvfs(fs: HostFS, kind_of: Callable[[int], Hashable]) -> DvfsFacts | None:
    """``None`` without cpufreq.  Per policy: governor, EPP, scaling limits and its CPUs;
    the hardware limits once per kind of CPU (they are the silicon's)."""
    base = fs.sys("devices", "system", "cpu", "cpufreq")
    policies = sorted((e for e in fs.listdir(base) or [] if re.fullmatch(r"policy\d+", e)), key=lambda e: int(e[6:]))
    facts = DvfsFacts()
    _global_switches(fs, facts)
    if not policies:
        return facts if facts.pstate else None
    hardware: dict[Hashable, tuple[int | None, int | None]] = {}
    for policy in policies:
        path = f"{base}/{policy}"
        cpus_text = fs.read(f"{path}/affected_cpus")
        if cpus_text is None:
            continue
        cpus = parse_cpulist(cpus_text.replace(" ", ","))
        if not cpus:
            continue  # every CPU of the policy is offline
        if facts.driver is None:
            driver = fs.read(f"{path}/scaling_driver")
            facts.driver = driver.strip() if driver is not None else None
        governor = fs.read(f"{path}/scaling_governor")
        if governor is not None:
            facts.governor_cpus[governor.strip()] = facts.governor_cpus.get(governor.strip(), 0) + len(cpus)
        epp = fs.read(f"{path}/energy_performance_preference")
        if epp is not None:
            facts.epp_cpus[epp.strip()] = facts.epp_cpus.get(epp.strip(), 0) + len(cpus)
        facts.scaling_min_khz = _min(facts.scaling_min_khz, _khz(fs.read(f"{path}/scaling_min_freq"), path))
        facts.scaling_max_khz = _max(facts.scaling_max_khz, _khz(fs.read(f"{path}/scaling_max_freq"), path))
        kind = kind_of(min(cpus))
        if kind not in hardware:
            hardware[kind] = (
                _khz(fs.read(f"{path}/cpuinfo_min_freq"), path),
                _khz(fs.read(f"{path}/cpuinfo_max_freq"), path),
            )
        if facts.boost is None or not facts.boost_global:
            per_policy = fs.read(f"{path}/boost")  # amd-pstate on 6.11+
            if per_policy is not None:
                facts.boost = bool(facts.boost) or per_policy.strip() == "1"
    for low, high in hardware.values():
        facts.hardware_min_khz = _min(facts.hardware_min_khz, low)
        facts.hardware_max_khz = _max(facts.hardware_max_khz, high)
    return facts
