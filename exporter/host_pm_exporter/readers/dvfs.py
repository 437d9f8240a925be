"""CPU frequency scaling: driver, governors, limits, boost and energy/performance
preference, summed over cpufreq policies (no per-CPU series)."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import Dir, HostFS, ReadError
from host_pm_exporter.readers.cpulist import parse_cpulist

_POLICY = re.compile(r"policy\d+")


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


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _global_switches(cpu: Dir, facts: DvfsFacts) -> None:
    """intel_pstate/amd_pstate status, and boost from no_turbo or cpufreq/boost."""
    for name in ("intel_pstate", "amd_pstate"):
        status = cpu.read(f"{name}/status")
        if status is not None:
            facts.pstate = (name, status.strip())
    no_turbo = cpu.read("intel_pstate/no_turbo")
    boost = cpu.read("cpufreq/boost")
    if no_turbo is not None:
        facts.boost, facts.boost_global = no_turbo.strip() == "0", True
    elif boost is not None:
        facts.boost, facts.boost_global = boost.strip() == "1", True


def read_dvfs(fs: HostFS, kind_of: Callable[[int], Hashable], online: frozenset[int]) -> DvfsFacts | None:
    """``None`` without cpufreq.  Per policy: governor, EPP, scaling limits and its CPUs;
    the hardware limits once per kind of CPU (they are the silicon's).

    Reading less on big hosts: optional attributes (EPP, a policy's boost) are the
    driver's, so they are looked for on the first policy only; and when the policies
    are exactly one per online CPU (policyN for each online CPU N) each covers that CPU
    alone, so affected_cpus need not be read.
    """
    with fs.directory(fs.sys("devices", "system", "cpu")) as cpu:
        return _read_dvfs(fs, cpu, kind_of, online)


def _read_dvfs(fs: HostFS, cpu: Dir, kind_of: Callable[[int], Hashable], online: frozenset[int]) -> DvfsFacts | None:
    base = cpu.where("cpufreq")
    policies = sorted((e for e in fs.listdir(base) or [] if _POLICY.fullmatch(e)), key=lambda e: int(e[6:]))
    facts = DvfsFacts()
    _global_switches(cpu, facts)
    if not policies:
        return facts if facts.pstate else None
    per_cpu = {int(p[6:]) for p in policies} == online
    first = f"{base}/{policies[0]}"
    has_epp = fs.exists(f"{first}/energy_performance_preference")
    has_boost = not facts.boost_global and fs.exists(f"{first}/boost")
    reader = _PolicyReader(cpu, facts, kind_of, per_cpu=per_cpu, has_epp=has_epp, has_boost=has_boost)
    for policy in policies:
        try:
            reader.read(policy, int(policy[6:]))
        except ReadError as err:
            if err.errno != errno.EBUSY:
                raise
            # The policy of CPUs that are all offline stays, and every read of it fails
            # with EBUSY: it has no CPU to count.
    for low, high in reader.hardware.values():
        facts.hardware_min_khz = _min(facts.hardware_min_khz, low)
        facts.hardware_max_khz = _max(facts.hardware_max_khz, high)
    return facts


class _PolicyReader:
    """Adds one cpufreq policy's facts to the host's."""

    def __init__(
        self,
        cpu: Dir,
        facts: DvfsFacts,
        kind_of: Callable[[int], Hashable],
        *,
        per_cpu: bool,
        has_epp: bool,
        has_boost: bool,
    ) -> None:
        self.cpu, self.facts, self.kind_of = cpu, facts, kind_of
        self.per_cpu, self.has_epp, self.has_boost = per_cpu, has_epp, has_boost
        self.hardware: dict[Hashable, tuple[int | None, int | None]] = {}

    def read(self, policy: str, first_cpu: int) -> None:
        """Adds cpufreq/`policy` (of the CPU directory)."""
        cpu, facts, path = self.cpu, self.facts, f"cpufreq/{policy}/"
        if self.per_cpu:
            cpus = frozenset((first_cpu,))
        else:
            cpus_text = cpu.read(f"{path}affected_cpus")
            cpus = parse_cpulist(cpus_text.replace(" ", ",")) if cpus_text is not None else frozenset()
        if not cpus:
            return  # every CPU of the policy is offline
        if facts.driver is None:
            driver = cpu.read(f"{path}scaling_driver")
            facts.driver = driver.strip() if driver is not None else None
        _count(facts.governor_cpus, cpu.read(f"{path}scaling_governor"), len(cpus))
        if self.has_epp:
            _count(facts.epp_cpus, cpu.read(f"{path}energy_performance_preference"), len(cpus))
        facts.scaling_min_khz = _min(facts.scaling_min_khz, cpu.read_int(f"{path}scaling_min_freq"))
        facts.scaling_max_khz = _max(facts.scaling_max_khz, cpu.read_int(f"{path}scaling_max_freq"))
        kind = self.kind_of(min(cpus))
        if kind not in self.hardware:
            self.hardware[kind] = (
                cpu.read_int(f"{path}cpuinfo_min_freq"),
                cpu.read_int(f"{path}cpuinfo_max_freq"),
            )
        if self.has_boost:
            per_policy = cpu.read(f"{path}boost")  # amd-pstate on 6.11+
            if per_policy is not None:
                facts.boost = bool(facts.boost) or per_policy.strip() == "1"


def _count(counts: dict[str, int], text: str | None, cpus: int) -> None:
    if text is not None:
        key = text.strip()
        counts[key] = counts.get(key, 0) + cpus
