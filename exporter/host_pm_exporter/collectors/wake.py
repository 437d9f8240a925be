"""The ``wake`` collector: what can wake the host."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, Info
from host_pm_exporter.readers.wake import WakeFacts, read_wake


def families(facts: WakeFacts) -> Iterator[Family]:
    devices = Gauge(
        "host_pm_wakeup_devices",
        "Devices allowed to wake the host (power/wakeup enabled), per subsystem.",
        labels=["subsystem"],
    )
    for subsystem, count in sorted(facts.wakeup_devices.items()):
        devices.add_metric([subsystem], count)
    yield devices
    wol = Info(
        "host_pm_nic_wol",
        "A network interface's Wake-on-LAN modes in ethtool letters (g: magic packet; d: disabled), from the "
        "ethtool ioctl (needs CAP_NET_ADMIN) or, without it, unknown (source sysfs).",
        labels=["interface", "supported", "enabled", "source"],
    )
    switch = Gauge(
        "host_pm_nic_wakeup_enabled", "A network interface's device power/wakeup switch.", labels=["interface"]
    )
    for nic in facts.nics:
        wol.add_metric([nic.name, nic.wol_supported or "", nic.wol_enabled or "", nic.source], {})
        if nic.wakeup is not None:
            switch.add_metric([nic.name], float(nic.wakeup))
    if facts.nics:
        yield wol
    if switch.rows:
        yield switch
    yield Gauge(
        "host_pm_wake_capable",
        "Whether something can wake the host from sleep: an RTC wake alarm, or a NIC that wakes on a magic "
        "packet (ethtool 'g'; power/wakeup enabled where the modes are unknown).",
        value=float(facts.wake_capable),
    )


COLLECTOR = Collector(
    "wake",
    "wake sources: devices allowed to wake, NIC Wake-on-LAN, host_pm_wake_capable",
    gather=lambda facts: read_wake(facts.fs, facts.rtc_wakealarm()),
    families=families,
    metrics=(
        "host_pm_wakeup_devices",
        "host_pm_nic_wol_info",
        "host_pm_nic_wakeup_enabled",
        "host_pm_wake_capable",
    ),
)
