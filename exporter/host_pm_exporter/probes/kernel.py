"""The kernel probe: the sleep operations as /sys/power says them (the decision table)."""

from __future__ import annotations

from host_pm_exporter.probes import ProbeResult
from host_pm_exporter.readers.power import PowerFacts
from host_pm_exporter.sleep import kernel_operations, supported_states


def answer(facts: PowerFacts, duration: float) -> ProbeResult:
    """The kernel's answers, derived from the facts the power collector read."""
    return ProbeResult("kernel", answers=kernel_operations(supported_states(facts)), duration=duration)
