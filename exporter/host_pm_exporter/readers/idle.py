"""CPU idle states, from one online CPU: they are the same on every CPU of a kind, and
reading all costs ~60 ms at 1024 CPUs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import HostFS


@dataclass(frozen=True)
class CState:
    name: str
    exit_latency_us: int
    target_residency_us: int
    disabled: bool


@dataclass
class IdleFacts:
    driver: str | None = None
    governor: str | None = None
    states: list[CState] = field(default_factory=list)


def read_idle(fs: HostFS, first_online_cpu: int | None) -> IdleFacts:
    facts = IdleFacts()
    cpuidle = fs.sys("devices", "system", "cpu", "cpuidle")
    driver = fs.read(f"{cpuidle}/current_driver")
    facts.driver = driver.strip() if driver is not None else None
    governor = fs.read(f"{cpuidle}/current_governor_ro") or fs.read(f"{cpuidle}/current_governor")
    facts.governor = governor.strip() if governor is not None else None
    if first_online_cpu is not None:
        base = fs.sys("devices", "system", "cpu", f"cpu{first_online_cpu}", "cpuidle")
        entries = [e for e in fs.listdir(base) or [] if re.fullmatch(r"state\d+", e)]
        for entry in sorted(entries, key=lambda e: int(e[5:])):
            name = fs.read(f"{base}/{entry}/name")
            latency = fs.read_int(f"{base}/{entry}/latency")
            residency = fs.read_int(f"{base}/{entry}/residency")
            if name is None or latency is None or residency is None:
                continue
            disable = fs.read_int(f"{base}/{entry}/disable")
            facts.states.append(CState(name.strip(), latency, residency, bool(disable)))
    return facts
