"""CPU idle states, from one online CPU: they are the same on every CPU of a kind, so
reading every CPU would read the same values again per CPU."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import Dir, HostFS

_STATE = re.compile(r"state\d+")


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
    with fs.directory(fs.sys("devices", "system", "cpu")) as cpu:
        return _read_idle(fs, cpu, first_online_cpu)


def _read_idle(fs: HostFS, cpu: Dir, first_online_cpu: int | None) -> IdleFacts:
    facts = IdleFacts()
    driver = cpu.read("cpuidle/current_driver")
    facts.driver = driver.strip() if driver is not None else None
    governor = cpu.read("cpuidle/current_governor_ro") or cpu.read("cpuidle/current_governor")
    facts.governor = governor.strip() if governor is not None else None
    if first_online_cpu is not None:
        base = f"cpu{first_online_cpu}/cpuidle"
        entries = [e for e in fs.listdir(cpu.where(base)) or [] if _STATE.fullmatch(e)]
        for entry in sorted(entries, key=lambda e: int(e[5:])):
            state = f"{base}/{entry}"
            name = cpu.read(f"{state}/name")
            latency = cpu.read_int(f"{state}/latency")
            residency = cpu.read_int(f"{state}/residency")
            if name is None or latency is None or residency is None:
                continue
            disable = cpu.read_int(f"{state}/disable")
            facts.states.append(CState(name.strip(), latency, residency, bool(disable)))
    return facts
