"""The ``hwsleep`` collector: evidence that a suspend reached hardware sleep (suspend_stats'
hardware-sleep counters, Intel LPIT residency, the ACPI wake table, the FADT's
low-power-S0 flag).  Each fact is read on its own: an absent file is no sample, an
unreadable one is a fact given up, never the collector."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Counter, Family, Gauge
from host_pm_exporter.readers.hwsleep import MICROSECONDS, SleepEvidence, read_sleep_evidence


def families(facts: SleepEvidence) -> Iterator[Family]:
    hw = facts.hw_sleep
    if hw.total_us is not None:
        yield Counter(
            "host_pm_hw_sleep_seconds",
            "Time suspends spent in a hardware sleep state since boot (suspend_stats/total_hw_sleep).",
            value=hw.total_us / MICROSECONDS,
        )
    if hw.last_us is not None:
        yield Gauge(
            "host_pm_last_hw_sleep_seconds",
            "Time the last suspend spent in a hardware sleep state; 0: it never reached one.",
            value=hw.last_us / MICROSECONDS,
        )
    if hw.max_us is not None:
        yield Gauge(
            "host_pm_hw_sleep_max_seconds",
            "The most the platform's hardware-sleep counter can measure (a last value at it is a lower bound).",
            value=hw.max_us / MICROSECONDS,
        )
    lpi = facts.low_power_idle
    residency = Counter(
        "host_pm_low_power_idle_residency_seconds",
        "Intel LPIT low-power idle residency since boot: cpu (package C10), system (S0ix).",
        labels=["scope"],
    )
    for scope, us in (("cpu", lpi.cpu_us), ("system", lpi.system_us)):
        if us is not None:
            residency.add_metric([scope], us / MICROSECONDS)
    if residency.rows:
        yield residency
    if facts.acpi_wakeup is not None:
        wake = Gauge(
            "host_pm_acpi_wakeup_devices",
            "Devices of /proc/acpi/wakeup by the deepest sleep state they wake the host from, and enabled.",
            labels=["sleep_state", "enabled"],
        )
        for (state, enabled), count in facts.acpi_wakeup.counts().items():
            wake.add_metric([state, "true" if enabled else "false"], count)
        yield wake
    if facts.low_power_s0 is not None:
        yield Gauge(
            "host_pm_firmware_low_power_s0",
            "1 if the FADT sets LOW_POWER_S0_IDLE_CAPABLE (the firmware is built for s2idle/Modern Standby).",
            value=float(facts.low_power_s0),
        )


COLLECTOR = Collector(
    "hwsleep",
    "evidence that suspends reached hardware sleep: suspend_stats hw-sleep counters, LPIT, ACPI wake table, FADT",
    gather=lambda facts: read_sleep_evidence(facts.fs),
    families=families,
    metrics=(
        "host_pm_hw_sleep_seconds_total",
        "host_pm_last_hw_sleep_seconds",
        "host_pm_hw_sleep_max_seconds",
        "host_pm_low_power_idle_residency_seconds_total",
        "host_pm_acpi_wakeup_devices",
        "host_pm_firmware_low_power_s0",
    ),
)
