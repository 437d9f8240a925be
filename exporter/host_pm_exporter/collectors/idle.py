"""The ``idle`` collector: cpuidle driver, governor and C-states."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, one_info
from host_pm_exporter.readers.idle import IdleFacts, read_idle


def families(facts: IdleFacts) -> Iterator[Family]:
    if facts.driver:
        yield one_info(
            "host_cpuidle_driver", "The cpuidle driver (intel_idle, acpi_idle, ...).", {"driver": facts.driver}
        )
    if facts.governor:
        yield one_info(
            "host_cpuidle_governor", "The cpuidle governor (menu, teo, ladder, haltpoll).", {"governor": facts.governor}
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


COLLECTOR = Collector(
    "idle",
    "cpuidle driver, governor and C-states (from one online CPU)",
    gather=lambda facts: read_idle(facts.fs, facts.first_online_cpu()),
    families=families,
    metrics=(
        "host_cpuidle_driver_info",
        "host_cpuidle_governor_info",
        "host_cpuidle_state_exit_latency_seconds",
        "host_cpuidle_state_target_residency_seconds",
        "host_cpuidle_state_disabled",
    ),
)
