"""The ``readiness`` collector: whether each sleep state can be used now, and why not."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, Info
from host_pm_exporter.readers.readiness import read_readiness
from host_pm_exporter.sleep import STATES, Readiness, readiness


def families(data: Readiness) -> Iterator[Family]:
    ready = Gauge(
        "host_pm_ready",
        "Whether the sleep state is supported and ready to use now (S4: usable swap with room for "
        "Active(anon)/0.98, a resume target or EFI boot, lockdown none).",
        labels=["state"],
    )
    reasons = Info(
        "host_pm_not_ready_reason",
        "Why a sleep state is not ready: not_supported, no_usable_swap, not_enough_swap, "
        "unknown_memory_use, no_resume_target, lockdown.",
        labels=["state", "reason"],
    )
    for state in STATES:
        known = data.ready[state]
        if known is not None:
            ready.add_metric([state], float(known))
        for reason in data.reasons[state]:
            reasons.add_metric([state, reason], {})
    yield ready
    if reasons.rows:
        yield reasons
    facts = data.facts
    if facts.swaps:
        swaps = Info(
            "host_pm_swap_device",
            "An active swap area and whether it can take the hibernation image (reason: zram, deleted, "
            "type, not_resume_target).",
            labels=["device", "type", "usable", "reason"],
        )
        for swap in facts.swaps:
            swaps.add_metric([swap.path, swap.type, "true" if swap.usable else "false", swap.reason], {})
        yield swaps
    yield Gauge(
        "host_pm_swap_free_bytes",
        "Free space of the swap area the hibernation image would go to (0 when none is usable).",
        value=facts.target.free_bytes if facts.target is not None else 0,
    )
    if facts.required_bytes is not None:
        yield Gauge(
            "host_pm_hibernation_required_bytes",
            "Free swap hibernation needs, as systemd counts it: Active(anon) / 0.98.",
            value=facts.required_bytes,
        )
    yield Gauge(
        "host_pm_resume_configured",
        "Whether /sys/power/resume names a device (not 0:0).",
        value=float(facts.resume is not None),
    )
    if facts.resume_offset is not None:
        yield Gauge(
            "host_pm_resume_offset_pages",
            "/sys/power/resume_offset: where a swap file's image starts on the resume device, in pages.",
            value=facts.resume_offset,
        )
    yield Gauge("host_pm_efi_boot", "Whether the host booted by EFI (/sys/firmware/efi).", value=float(facts.efi))
    if facts.image_size_bytes is not None:
        yield Gauge(
            "host_pm_image_size_bytes",
            "/sys/power/image_size: the size the kernel tries to shrink the hibernation image to.",
            value=facts.image_size_bytes,
        )


COLLECTOR = Collector(
    "readiness",
    "host_pm_ready: swap for hibernation, resume target, EFI boot, with the reasons",
    gather=lambda facts: readiness(facts.power(), facts.lockdown(), read_readiness(facts.fs)),
    families=families,
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
)
