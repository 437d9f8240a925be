"""The ``dvfs`` collector: cpufreq driver, governors, EPP, frequency limits, boost."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, one_info
from host_pm_exporter.readers.dvfs import DvfsFacts, read_dvfs


def families(facts: DvfsFacts | None) -> Iterator[Family]:
    if facts is None:  # no cpufreq
        return
    if facts.driver:
        yield one_info("host_cpufreq_driver", "The cpufreq scaling driver.", {"driver": facts.driver})
    for name, text, counts, label in (
        ("host_cpufreq_governor_cpus", "Online CPUs per cpufreq governor.", facts.governor_cpus, "governor"),
        ("host_cpufreq_epp_cpus", "Online CPUs per energy_performance_preference.", facts.epp_cpus, "preference"),
    ):
        if counts:
            family = Gauge(name, text, labels=[label])
            for key, count in sorted(counts.items()):
                family.add_metric([key], count)
            yield family
    for name, text, khz in (
        (
            "host_cpufreq_hardware_min_hertz",
            "Lowest hardware frequency of any CPU (cpuinfo_min_freq).",
            facts.hardware_min_khz,
        ),
        (
            "host_cpufreq_hardware_max_hertz",
            "Highest hardware frequency of any CPU (cpuinfo_max_freq).",
            facts.hardware_max_khz,
        ),
        ("host_cpufreq_scaling_min_hertz", "Lowest scaling_min_freq over the policies.", facts.scaling_min_khz),
        ("host_cpufreq_scaling_max_hertz", "Highest scaling_max_freq over the policies.", facts.scaling_max_khz),
    ):
        if khz is not None:
            yield Gauge(name, text, value=khz * 1000)
    if facts.boost is not None:
        yield Gauge(
            "host_cpufreq_boost_enabled",
            "Whether turbo/boost is on (intel_pstate no_turbo, cpufreq/boost, or a policy's boost).",
            value=float(facts.boost),
        )
    if facts.pstate is not None:
        driver, status = facts.pstate
        yield one_info(
            "host_cpufreq_pstate_status",
            "Mode of intel_pstate or amd_pstate (active, passive, guided, off).",
            {"driver": driver, "status": status},
        )


COLLECTOR = Collector(
    "dvfs",
    "cpufreq: driver, CPUs per governor and EPP, frequency limits, boost, p-state mode",
    gather=lambda facts: read_dvfs(facts.fs, facts.kind_of(), facts.online_or_empty()),
    families=families,
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
)
