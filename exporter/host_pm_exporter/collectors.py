"""Every collector, declared once: its name, flag help, default, how it reads its facts
from a scrape, how it renders them, and the metrics it can emit.

Adding a collector touches its reader, its renderer and one `collector(...)` below.
`collector()` is generic in the facts a collector carries, so mypy checks that what
its `gather` returns is what its `render` takes.  The flags (`--collector.<name>`), the snapshot, the
metrics and the README's metric table all come from `REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, cast

from host_pm_exporter.readers.cache import read_caches
from host_pm_exporter.readers.cpu import CpuFacts, SecurityFacts, cpu_facts
from host_pm_exporter.readers.dvfs import read_dvfs
from host_pm_exporter.readers.identity import read_identity
from host_pm_exporter.readers.idle import read_idle
from host_pm_exporter.readers.numa import read_numa
from host_pm_exporter.readers.readiness import read_readiness
from host_pm_exporter.readers.suspend import read_suspend_stats
from host_pm_exporter.readers.topology import CpuSets, Topology, read_topology
from host_pm_exporter.readers.virt import read_virt
from host_pm_exporter.readers.vulnerabilities import read_vulnerabilities
from host_pm_exporter.readers.wake import read_wake
from host_pm_exporter.render import cpu, dvfs, power, readiness, topology, virt
from host_pm_exporter.render.families import Family
from host_pm_exporter.render.metrics import EXPORTER_METRICS
from host_pm_exporter.render.options import RenderOptions
from host_pm_exporter.render.probes import PROBE_METRICS
from host_pm_exporter.sleep import readiness as ready_states
from host_pm_exporter.snapshot import Scrape, Section

T = TypeVar("T")


@dataclass(frozen=True)
class Collector(Generic[T]):
    """One collector.  `metrics` are the sample names it may emit (a test renders every
    fixture host and holds each collector to its list)."""

    name: str
    help: str
    gather: Callable[[Scrape], T]
    render: Callable[[T, RenderOptions], Iterable[Family]]
    metrics: tuple[str, ...]
    default: bool = True

    def render_section(self, section: Section[Any], options: RenderOptions) -> Iterable[Family]:
        """The metrics of this collector's section, which this same collector gathered
        (rendering asks only for sections that succeeded)."""
        return self.render(cast(T, section.data), options)


def collector(
    name: str,
    help: str,
    *,
    gather: Callable[[Scrape], T],
    render: Callable[[T, RenderOptions], Iterable[Family]],
    metrics: tuple[str, ...],
    default: bool = True,
) -> Collector[Any]:
    """Declare a collector.  T is solved from `gather` and `render` alone (a
    ``Collector[Any]`` context would let anything through), so a renderer that takes
    other facts than the gatherer returns is a type error."""
    return Collector(name, help, gather, render, metrics, default)


def _cpu(scrape: Scrape) -> CpuFacts | None:
    info = scrape.cpuinfo()
    if info is None:
        return None
    return cpu_facts(info, scrape.core_types())


def _security(scrape: Scrape) -> SecurityFacts:
    info = scrape.cpuinfo()
    bugs = info.bugs() if info is not None else frozenset()
    return SecurityFacts(bugs, tuple(read_vulnerabilities(scrape.fs)))


def _topology(scrape: Scrape) -> tuple[CpuSets, Topology] | None:
    cpus = scrape.cpu_sets()
    if not cpus.online:
        return None  # no CPU directories: not a host tree with CPUs
    counted = read_topology(scrape.groups(), cpus, scrape.cpuinfo_or_none())
    return None if counted is None else (cpus, counted)


# The order is the output order.
REGISTRY: tuple[Collector[Any], ...] = (
    collector(
        "power",
        "sleep states from /sys/power: host_pm_supported and the raw mode lists",
        gather=lambda s: s.power(),
        render=power.power,
        metrics=(
            "host_pm_supported",
            "host_pm_default_suspend_state",
            "host_pm_kernel_state_info",
            "host_pm_mem_sleep_mode_info",
            "host_pm_hibernation_mode_info",
            "host_pm_wakealarm_supported",
        ),
    ),
    collector(
        "lockdown",
        "kernel lockdown level from /sys/kernel/security/lockdown",
        gather=lambda s: s.lockdown(),
        render=power.lockdown,
        metrics=("host_pm_lockdown_info",),
    ),
    collector(
        "cpu",
        "CPU identity per kind, features fingerprint, x86-64 level, flag count (flags: --collector.cpu.flags-include)",
        gather=_cpu,
        render=cpu.cpu,
        metrics=(
            "host_cpu_info",
            "host_cpu_flag_info",
            "host_cpu_flags",
            "host_cpu_features_info",
            "host_cpu_x86_64_level",
        ),
    ),
    collector(
        "vulnerabilities",
        "CPU bugs (cpuinfo) and vulnerability status (/sys/devices/system/cpu/vulnerabilities)",
        gather=_security,
        render=cpu.vulnerabilities,
        metrics=("host_cpu_bug_info", "host_cpu_vulnerability_info"),
        default=False,
    ),
    collector(
        "topology",
        "sockets, dies, clusters, cores, threads per core; logical CPUs by state",
        gather=_topology,
        render=topology.topology,
        metrics=(
            "host_cpu_sockets",
            "host_cpu_dies",
            "host_cpu_clusters",
            "host_cpu_cores",
            "host_cpu_threads_per_core",
            "host_cpu_logical",
            "host_cpu_isolated",
        ),
    ),
    collector(
        "numa",
        "NUMA nodes: memory, CPUs, distances, huge pages",
        gather=lambda s: read_numa(s.fs),
        render=topology.numa,
        metrics=(
            "host_numa_nodes",
            "host_numa_node_memory_bytes",
            "host_numa_node_cpus",
            "host_numa_distance",
            "host_numa_node_hugepages",
            "host_numa_node_hugepages_free",
        ),
    ),
    collector(
        "cache",
        "CPU caches per level and type: size and instances",
        gather=lambda s: read_caches(s.fs, s.cpu_sets().online, s.kind_of(), s.cpuinfo_caches()),
        render=topology.cache,
        metrics=("host_cpu_cache_size_bytes", "host_cpu_cache_instances"),
    ),
    collector(
        "virt",
        "hardware virtualization, /dev/kvm, nested KVM, IOMMU groups, hypervisor",
        gather=lambda s: read_virt(s.fs, s.cpuinfo_or_none()),
        render=virt.virt,
        metrics=(
            "host_virt_hardware_supported",
            "host_virt_extension_info",
            "host_virt_kvm_device_present",
            "host_virt_kvm_nested",
            "host_virt_iommu_groups",
            "host_virt_guest",
            "host_virt_hypervisor_info",
        ),
    ),
    collector(
        "identity",
        "host UUID as libvirt finds it (DMI product_uuid, else /etc/machine-id)",
        gather=lambda s: read_identity(s.fs),
        render=virt.identity,
        metrics=("host_uuid_info",),
    ),
    collector(
        "readiness",
        "host_pm_ready: swap for hibernation, resume target, EFI boot, with the reasons",
        gather=lambda s: ready_states(s.power(), s.lockdown(), read_readiness(s.fs)),
        render=readiness.readiness,
        metrics=(
            "host_pm_ready",
            "host_pm_not_ready_reason_info",
            "host_pm_swap_device_info",
            "host_pm_swap_free_bytes",
            "host_pm_hibernation_required_bytes",
            "host_pm_resume_configured",
            "host_pm_resume_offset_pages",
            "host_pm_efi_boot",
            "host_pm_image_size_bytes",
        ),
    ),
    collector(
        "wake",
        "wake sources: devices allowed to wake, NIC Wake-on-LAN, host_pm_wake_capable",
        gather=lambda s: read_wake(s.fs, s.rtc_wakealarm()),
        render=readiness.wake,
        metrics=(
            "host_pm_wakeup_devices",
            "host_pm_nic_wol_info",
            "host_pm_nic_wakeup_enabled",
            "host_pm_wake_capable",
        ),
    ),
    collector(
        "dvfs",
        "cpufreq: driver, CPUs per governor and EPP, frequency limits, boost, p-state mode",
        gather=lambda s: read_dvfs(s.fs, s.kind_of(), s.online_or_empty()),
        render=dvfs.dvfs,
        metrics=(
            "host_cpufreq_driver_info",
            "host_cpufreq_governor_cpus",
            "host_cpufreq_epp_cpus",
            "host_cpufreq_hardware_min_hertz",
            "host_cpufreq_hardware_max_hertz",
            "host_cpufreq_scaling_min_hertz",
            "host_cpufreq_scaling_max_hertz",
            "host_cpufreq_boost_enabled",
            "host_cpufreq_pstate_status_info",
        ),
    ),
    collector(
        "idle",
        "cpuidle driver, governor and C-states (from one online CPU)",
        gather=lambda s: read_idle(s.fs, s.first_online_cpu()),
        render=dvfs.idle,
        metrics=(
            "host_cpuidle_driver_info",
            "host_cpuidle_governor_info",
            "host_cpuidle_state_exit_latency_seconds",
            "host_cpuidle_state_target_residency_seconds",
            "host_cpuidle_state_disabled",
        ),
    ),
    collector(
        "suspend",
        "suspend statistics since boot from /sys/power/suspend_stats",
        gather=lambda s: read_suspend_stats(s.fs),
        render=dvfs.suspend,
        metrics=(
            "host_pm_suspend_success_total",
            "host_pm_suspend_failures_total",
            "host_pm_suspend_step_failures_total",
            "host_pm_suspend_last_failed_info",
        ),
    ),
)

BY_NAME: dict[str, Collector[Any]] = {c.name: c for c in REGISTRY}


def enabled(choices: dict[str, bool | None], disable_defaults: bool = False) -> tuple[Collector[Any], ...]:
    """The collectors to run: an explicit ``--[no-]collector.<name>`` wins, otherwise the
    collector's default unless ``--collector.disable-defaults``."""
    out = []
    for spec in REGISTRY:
        choice = choices.get(spec.name)
        if choice if choice is not None else (spec.default and not disable_defaults):
            out.append(spec)
    return tuple(out)


def metric_table(collectors: Sequence[Collector[Any]] = REGISTRY) -> str:
    """The README's metric -> collector table, in Markdown."""
    rows = ["| metric | from |", "|---|---|"]
    for spec in collectors:
        rows += [f"| `{metric}` | `{spec.name}` |" for metric in spec.metrics]
    rows += [f"| `{metric}` | the probes (`--pm.probes`) |" for metric in PROBE_METRICS]
    rows += [f"| `{metric}` | the exporter itself |" for metric in EXPORTER_METRICS]
    return "\n".join(rows) + "\n"
