"""Metrics of the ``dvfs``, ``idle`` and ``suspend`` collectors."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.readers.dvfs import DvfsFacts
from host_pm_exporter.readers.idle import IdleFacts
from host_pm_exporter.readers.suspend import SuspendStats
from host_pm_exporter.render.families import Counter, Family, Gauge, Info
from host_pm_exporter.render.options import RenderOptions


def _info(name: str, text: str, label: str, value: str | None) -> Iterator[Family]:
    if value:
        family = Info(name, text, labels=[label])
        family.add_metric([value], {})
        yield family


def dvfs(facts: DvfsFacts | None, _options: RenderOptions) -> Iterator[Family]:
    if facts is None:  # no cpufreq
        return
    yield from _info("host_cpufreq_driver", "The cpufreq scaling driver.", "driver", facts.driver)
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
        status = Info(
            "host_cpufreq_pstate_status",
            "Mode of intel_pstate or amd_pstate (active, passive, guided, off).",
            labels=["driver", "status"],
        )
        status.add_metric(list(facts.pstate), {})
        yield status


def idle(facts: IdleFacts, _options: RenderOptions) -> Iterator[Family]:
    yield from _info("host_cpuidle_driver", "The cpuidle driver (intel_idle, acpi_idle, ...).", "driver", facts.driver)
    yield from _info(
        "host_cpuidle_governor", "The cpuidle governor (menu, teo, ladder, haltpoll).", "governor", facts.governor
    )
    if facts.states:
        latency = Gauge(
            "host_cpuidle_state_exit_latency_seconds", "Exit latency of a CPU idle state.", labels=["state"]
        )
        residency = Gauge(
            "host_cpuidle_state_target_residency_seconds", "Target residency of a CPU idle state.", labels=["state"]
        )
        disabled = Gauge(
            "host_cpuidle_state_disabled", "Whether the idle state is disabled (on the CPU read).", labels=["state"]
        )
        for state in facts.states:
            latency.add_metric([state.name], state.exit_latency_us / 1e6)
            residency.add_metric([state.name], state.target_residency_us / 1e6)
            disabled.add_metric([state.name], float(state.disabled))
        yield latency
        yield residency
        yield disabled


def suspend(stats: SuspendStats, _options: RenderOptions) -> Iterator[Family]:
    if stats.success is not None:
        yield Counter("host_pm_suspend_success", "Successful suspends since boot.", value=stats.success)
    if stats.fail is not None:
        yield Counter("host_pm_suspend_failures", "Failed suspends since boot.", value=stats.fail)
    if stats.step_failures:
        steps = Counter(
            "host_pm_suspend_step_failures", "Suspend failures since boot by the step that failed.", labels=["step"]
        )
        for step, count in stats.step_failures.items():
            steps.add_metric([step], count)
        yield steps
    if stats.last_failed_step:
        family = Info(
            "host_pm_suspend_last_failed",
            "The step (and device) of the last failed suspend.",
            labels=["step", "device"],
        )
        family.add_metric([stats.last_failed_step, stats.last_failed_device or ""], {})
        yield family
