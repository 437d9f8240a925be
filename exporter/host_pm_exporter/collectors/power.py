"""The ``power`` collector: the sleep states the kernel supports (the decision table)
and the raw mode lists of /sys/power."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, Info
from host_pm_exporter.readers.power import ModeList, PowerFacts
from host_pm_exporter.sleep import STATES, supported_states, suspend_default_state


def families(facts: PowerFacts) -> Iterator[Family]:
    supported = supported_states(facts)
    family = Gauge(
        "host_pm_supported",
        "Whether the kernel supports the sleep state (1) or not (0), per the decision "
        "table: S3 needs 'deep' in /sys/power/mem_sleep, not just 'mem' in /sys/power/state.",
        labels=["state"],
    )
    for state in STATES:
        known = supported[state]
        if known is not None:  # unknown is no sample, never 0
            family.add_metric([state], float(known))
    yield family
    default = suspend_default_state(facts)
    if default is not None:
        entered = Gauge(
            "host_pm_default_suspend_state",
            "The state a plain suspend (systemctl suspend, libvirt's nodesuspend mem) enters now, "
            "always 1: S1, S2idle or S3, from the mode /sys/power/mem_sleep selects. "
            "host_pm_ready says S3 can be entered; this says whether suspend enters it.",
            labels=["state"],
        )
        entered.add_metric([default], 1.0)
        yield entered

    if facts.state:
        words = Info(
            "host_pm_kernel_state",
            "A sleep state word listed in /sys/power/state.",
            labels=["state"],
        )
        for word in sorted(facts.state):
            words.add_metric([word], {})
        yield words
    if facts.mem_sleep is not None:
        yield _modes(
            "host_pm_mem_sleep_mode",
            "A suspend mode listed in /sys/power/mem_sleep; default=true for the one 'mem' selects.",
            facts.mem_sleep,
        )
    if facts.disk is not None:
        yield _modes(
            "host_pm_hibernation_mode",
            "A hibernation mode listed in /sys/power/disk; default=true for the one in "
            "use. The only mode 'disabled' means hibernation is off (lockdown, nohibernate).",
            facts.disk,
        )
    if facts.rtc_wakealarm is not None:
        yield Gauge(
            "host_pm_wakealarm_supported",
            "Whether an RTC under /sys/class/rtc offers a wakealarm (needed to suspend then hibernate).",
            value=float(facts.rtc_wakealarm),
        )


def _modes(name: str, documentation: str, modes: ModeList) -> Family:
    family = Info(name, documentation, labels=["mode", "default"])
    for mode in modes.modes:
        family.add_metric([mode, "true" if mode == modes.selected else "false"], {})
    return family


COLLECTOR = Collector(
    "power",
    "sleep states from /sys/power: host_pm_supported and the raw mode lists",
    gather=lambda facts: facts.power(),
    families=families,
    metrics=(
        "host_pm_supported",
        "host_pm_default_suspend_state",
        "host_pm_kernel_state_info",
        "host_pm_mem_sleep_mode_info",
        "host_pm_hibernation_mode_info",
        "host_pm_wakealarm_supported",
    ),
)
