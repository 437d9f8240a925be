"""CPU idle states (from one online CPU: they are the same on every CPU of a kind, and
reading all costs ~60 ms at 1024 CPUs) and the kernel's suspend statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError


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
    suspend_stats: dict[str, int] = field(default_factory=dict)  # success, fail, failed_<step>
    last_failed_step: str | None = None
    last_failed_device: str | None = None


SUSPEND_STEPS = ("freeze", "prepare", "suspend", "suspend_late", "suspend_noirq", "resume", "resume_early",
                 "resume_noirq")  # fmt: skip


def _number(fs: HostFS, path: str) -> int | None:
    text = fs.read(path)
    if text is None:
        return None
    value = text.strip()
    if not value.lstrip("-").isdigit():
        raise ParseError(f"{path}: not a number")
    return int(value)


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
            latency = _number(fs, f"{base}/{entry}/latency")
            residency = _number(fs, f"{base}/{entry}/residency")
            if name is None or latency is None or residency is None:
                continue
            disable = _number(fs, f"{base}/{entry}/disable")
            facts.states.append(CState(name.strip(), latency, residency, bool(disable)))
    stats = fs.sys("power", "suspend_stats")
    for key in ("success", "fail", *(f"failed_{step}" for step in SUSPEND_STEPS)):
        value = _number(fs, f"{stats}/{key}")
        if value is not None:
            facts.suspend_stats[key] = value
    step = fs.read(f"{stats}/last_failed_step")
    facts.last_failed_step = step.strip() if step is not None and step.strip() else None
    device = fs.read(f"{stats}/last_failed_dev")
    facts.last_failed_device = device.strip() if device is not None and device.strip() else None
    return facts
