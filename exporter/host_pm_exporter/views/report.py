"""The snapshot for a person: each sleep state, supported or not, ready or not, and why
in words, beside each probe's answer; used by the status page and ``--explain``."""

from __future__ import annotations

from dataclasses import dataclass, field

from host_pm_exporter.collectors.cpu import COLLECTOR as CPU
from host_pm_exporter.collectors.hwsleep import COLLECTOR as HWSLEEP
from host_pm_exporter.collectors.lockdown import COLLECTOR as LOCKDOWN
from host_pm_exporter.collectors.numa import COLLECTOR as NUMA
from host_pm_exporter.collectors.power import COLLECTOR as POWER
from host_pm_exporter.collectors.readiness import COLLECTOR as READINESS
from host_pm_exporter.collectors.topology import COLLECTOR as TOPOLOGY
from host_pm_exporter.collectors.wake import COLLECTOR as WAKE
from host_pm_exporter.facts import HostSnapshot
from host_pm_exporter.readers.hwsleep import hw_sleep_summary, wakeup_summary
from host_pm_exporter.readers.power import ModeList, PowerFacts
from host_pm_exporter.sleep import STATES, Readiness, supported_states, suspend_default_state

# The probes' operation that answers each state (the kernel probe answers them all).
OPERATION_OF = {"S1": "suspend", "S2idle": "suspend", "S3": "suspend", "S4": "hibernate",
                "hybrid": "suspend_hybrid", "suspend_then_hibernate": "suspend_then_hibernate"}  # fmt: skip
LABEL = {"S1": "S1 (standby)", "S2idle": "s2idle (suspend to idle)", "S3": "S3 (suspend to RAM)",
         "S4": "S4 (hibernate)", "hybrid": "hybrid sleep",
         "suspend_then_hibernate": "suspend, then hibernate"}  # fmt: skip


@dataclass
class StateRow:
    state: str
    supported: bool | None  # None: unknown
    ready: bool | None
    why: list[str] = field(default_factory=list)  # why not supported, or not ready, in words
    probes: dict[str, str] = field(default_factory=dict)  # other probe -> "yes", "no" or "unknown"


@dataclass
class Report:
    states: list[StateRow]
    collectors: dict[str, str | None]  # name -> error, None when it succeeded
    probes: dict[str, str | None]  # name -> error
    facts: dict[str, str]  # a few lines of CPU, topology and wake facts
    absent: frozenset[str] = frozenset()  # probes whose tool is not installed: not failures

    @property
    def healthy(self) -> bool:
        return all(error is None for error in self.collectors.values())


def size(n: float) -> str:
    """Bytes for a person.

    >>> size(0), size(6_549_000_000), size(512 * 1024)
    ('0 B', '6.1 GiB', '512.0 KiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _modes(modes: ModeList | None) -> str:
    if modes is None:
        return "absent"
    return " ".join(f"[{m}]" if m == modes.selected else m for m in modes.modes) or "empty"


def why_unsupported(state: str, facts: PowerFacts) -> str:
    """The decision table's reason, in words, for a state the kernel does not offer."""
    words = " ".join(sorted(facts.state or ())) or "empty"
    supported = supported_states(facts)
    if state == "S3" and facts.mem_sleep is not None:
        only = ", ".join(facts.mem_sleep.modes) or "nothing"
        return f"the kernel offers only {only} (/sys/power/mem_sleep = {_modes(facts.mem_sleep)})"
    if state == "S4" and facts.disk is not None and facts.disk.selected == "disabled":
        return "hibernation is disabled (/sys/power/disk = [disabled]: lockdown or nohibernate)"
    if state == "hybrid" and supported["S4"]:
        return f"no 'suspend' hibernation mode (/sys/power/disk = {_modes(facts.disk)})"
    if state == "suspend_then_hibernate":
        if facts.rtc_wakealarm is None:
            return "the RTC could not be read"
        needs = (
            ("S3 or s2idle", supported["S3"] or supported["S2idle"]),
            ("S4", supported["S4"]),
            ("an RTC wake alarm", facts.rtc_wakealarm),
        )
        return "needs " + " and ".join(name for name, ok in needs if not ok)
    return {
        "S3": f"no 'mem' in /sys/power/state ({words})",
        "S2idle": f"no 'freeze' in /sys/power/state ({words})",
        "S1": f"neither 'standby' in /sys/power/state ({words}) nor 'shallow' in /sys/power/mem_sleep",
        "S4": f"no 'disk' in /sys/power/state ({words})",
        "hybrid": "needs S4",
    }.get(state, "not offered by the kernel")


def why_not_ready(reason: str, readiness: Readiness, lockdown: str | None) -> str:
    facts = readiness.facts
    if reason == "not_enough_swap":
        free = facts.target.free_bytes if facts.target is not None else 0
        return f"{size(free)} swap free, {size(facts.required_bytes or 0)} needed (Active(anon) / 0.98)"
    return {
        "no_usable_swap": "no swap area can take the hibernation image",
        "unknown_memory_use": "Active(anon) is not in /proc/meminfo",
        "no_resume_target": "no resume device (/sys/power/resume is 0:0) and not booted by EFI",
        "lockdown": f"kernel lockdown is {lockdown or 'on'}: hibernation is forbidden",
        "unknown_wakealarm": "the RTC could not be read",
    }.get(reason, reason.replace("_", " "))


def build_report(snap: HostSnapshot) -> Report:
    power_facts = POWER.of(snap)
    ready = READINESS.of(snap)
    levels = LOCKDOWN.of(snap)
    supported = supported_states(power_facts) if power_facts is not None else dict.fromkeys(STATES)
    rows = []
    for state in STATES:
        row = StateRow(state, supported[state], ready.ready[state] if ready is not None else None)
        if power_facts is not None and supported[state] is False:
            row.why.append(why_unsupported(state, power_facts))
        elif ready is not None:
            level = levels.selected if levels is not None else None
            row.why += [why_not_ready(r, ready, level) for r in ready.reasons[state] if r != "not_supported"]
        if (
            state == "S3"
            and supported[state]
            and power_facts is not None
            and suspend_default_state(power_facts) != "S3"
        ):
            row.why.append("but a plain suspend enters another state (see Suspend)")
        for probe in snap.probes:
            if probe.probe == "kernel":
                continue  # the kernel's answer is the supported column itself
            answer = probe.answers.get(OPERATION_OF[state])
            row.probes[probe.probe] = "unknown" if answer is None else "yes" if answer else "no"
        rows.append(row)
    facts = _facts(snap, bool(supported["S3"]))
    if power_facts is not None:
        entered = suspend_default(power_facts)
        if entered is not None:
            facts = {"Suspend": entered, **facts}
    return Report(
        rows,
        {name: section.error for name, section in snap.sections.items()},
        {p.probe: p.error for p in snap.probes},
        facts,
        frozenset(p.probe for p in snap.probes if p.absent),
    )


def suspend_default(facts: PowerFacts) -> str | None:
    """Which state a plain suspend enters, in words; with how to get S3 when the kernel
    offers it but suspend enters another state."""
    entered = suspend_default_state(facts)
    if entered is None:
        return None
    words = f"enters {LABEL[entered].split(' ')[0]} by default"
    if entered != "S3" and supported_states(facts)["S3"]:
        words += (
            "; S3 available with mem_sleep_default=deep (kernel command line) or systemd MemorySleepMode=deep"
            " (sleep.conf), or now: echo deep > /sys/power/mem_sleep"
        )
    return words


def _facts(snap: HostSnapshot, s3_supported: bool) -> dict[str, str]:
    facts: dict[str, str] = {}
    cpu_facts = CPU.of(snap)
    if cpu_facts is not None:
        names = sorted({kind.model_name or kind.vendor or "unknown" for kind, _core in cpu_facts.kinds})
        facts["CPU"] = f"{', '.join(names)} ({cpu_facts.arch})"
    topo = TOPOLOGY.of(snap)
    if topo is not None:
        cpus, t = topo
        facts["Topology"] = (f"{t.sockets} socket(s), {t.cores} core(s), {t.threads_per_core} thread(s) per core; "
                             f"{len(cpus.online)} of {len(cpus.possible)} CPUs online")  # fmt: skip
    nodes = NUMA.of(snap)
    if nodes:
        facts["NUMA"] = f"{len(nodes)} node(s)"
    wakes = WAKE.of(snap)
    if wakes is not None:
        sources = [f"{n} {s}" for s, n in sorted(wakes.wakeup_devices.items())]
        facts["Wake"] = (("RTC wake alarm; " if wakes.rtc_wakealarm else "no RTC wake alarm; ")
                         + (", ".join(sources) or "no wakeup devices") + " enabled")  # fmt: skip
    evidence = HWSLEEP.of(snap)
    if evidence is not None:
        facts["Sleep evidence"] = hw_sleep_summary(evidence)
        if evidence.acpi_wakeup is not None and s3_supported:  # ACPI S-states: s2idle wakes otherwise
            facts["ACPI wake"] = wakeup_summary(evidence.acpi_wakeup, "S3")
    return facts


def explain(report: Report, colour: bool = False) -> str:
    """The report for a terminal: one line per state, then the problems."""

    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    lines = []
    for row in report.states:
        if row.supported is None:
            verdict = paint("unknown", "33")
        elif not row.supported:
            verdict = paint("no", "31")
        elif row.ready is False:
            verdict = paint("not ready", "33")
        elif row.ready is None:
            verdict = paint("supported, readiness unknown", "33")
        else:
            verdict = paint("yes", "32")
        why = f" — {'; '.join(row.why)}" if row.why else ""
        probes = ", ".join(f"{p} {a}" for p, a in row.probes.items())
        lines.append(f"{LABEL[row.state]}: {verdict}{why}" + (f"  [{probes}]" if probes else ""))
    for name, value in report.facts.items():
        lines.append(f"{name}: {value}")
    for name, error in report.collectors.items():
        if error is not None:
            lines.append(paint(f"collector {name} failed: {error}", "31"))
    for name, error in report.probes.items():
        if name in report.absent:
            lines.append(f"probe {name}: its tool is not installed, so it is not asked ({error})")
        elif error is not None:
            lines.append(f"probe {name} could not answer: {error}")
    return "\n".join(lines) + "\n"
