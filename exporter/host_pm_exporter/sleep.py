"""The sleep-state decision table (../shared/DESIGN.md): which states the kernel supports.

`mem` in /sys/power/state proves nothing on its own: every kernel with CONFIG_SUSPEND
lists it, and it may mean s2idle.  S3 is `deep` in /sys/power/mem_sleep; only kernels
older than mem_sleep (< 4.10) fall back to `mem`.
"""

from __future__ import annotations

from dataclasses import dataclass

from host_pm_exporter.readers.power import ModeList, PowerFacts
from host_pm_exporter.readers.readiness import ReadinessFacts

STATES = ("S1", "S2idle", "S3", "S4", "hybrid", "suspend_then_hibernate")
OPERATIONS = ("suspend", "hibernate", "suspend_hybrid", "suspend_then_hibernate")


def supported_states(facts: PowerFacts) -> dict[str, bool | None]:
    """Apply the decision table to the kernel's facts: state name -> supported, or None
    when a fact it needs could not be read (an unreadable RTC leaves only
    suspend-then-hibernate unknown)."""
    state = facts.state or frozenset()
    mem_sleep = set(facts.mem_sleep.modes) if facts.mem_sleep is not None else None
    disk = facts.disk
    s1 = "standby" in state or (mem_sleep is not None and "shallow" in mem_sleep)
    s2idle = "freeze" in state
    s3 = "deep" in mem_sleep if mem_sleep is not None else "mem" in state
    s4 = "disk" in state and disk is not None and disk.selected != "disabled"
    hybrid = s4 and disk is not None and "suspend" in disk.modes
    then_hibernate = facts.rtc_wakealarm if (s3 or s2idle) and s4 else False
    return {
        "S1": s1,
        "S2idle": s2idle,
        "S3": s3,
        "S4": s4,
        "hybrid": hybrid,
        "suspend_then_hibernate": then_hibernate,
    }


def suspend_default_state(facts: PowerFacts) -> str | None:
    """The state a plain suspend enters now (``systemctl suspend``, logind's Suspend,
    libvirt's ``nodesuspend mem``, ``echo mem > /sys/power/state``), or None when it
    cannot be told.

    systemd writes the first of its SuspendState= words (``mem standby freeze``) that
    /sys/power/state lists; ``mem`` enters the mode /sys/power/mem_sleep selects
    (Documentation/admin-guide/pm/sleep-states.rst: ``s2idle``, ``shallow`` (S1) or
    ``deep`` (S3); the default is ``mem_sleep_default=`` or the firmware's choice).
    Kernels without mem_sleep (< 4.10) enter S3 for ``mem``.  A host can have S3
    supported and ready while its suspend enters s2idle: see host_pm_ready.
    """
    state = facts.state or frozenset()
    if "mem" in state:
        if facts.mem_sleep is None:
            return "S3"
        return {"s2idle": "S2idle", "shallow": "S1", "deep": "S3"}.get(facts.mem_sleep.selected or "")
    if "standby" in state:
        return "S1"
    if "freeze" in state:
        return "S2idle"
    return None


def kernel_operations(supported: dict[str, bool | None]) -> dict[str, bool]:
    """The kernel's answer to each operation the other probes are asked about (an
    unknown one is left out, as the probes leave out what they cannot answer)."""
    answers = {
        "suspend": bool(supported["S1"] or supported["S2idle"] or supported["S3"]),
        "hibernate": supported["S4"],
        "suspend_hybrid": supported["hybrid"],
        "suspend_then_hibernate": supported["suspend_then_hibernate"],
    }
    return {operation: answer for operation, answer in answers.items() if answer is not None}


@dataclass(frozen=True)
class Readiness:
    ready: dict[str, bool | None]  # None: unknown (a fact could not be read)
    reasons: dict[str, tuple[str, ...]]  # state -> why not ready (empty when ready)
    facts: ReadinessFacts
    wakealarm: bool | None


def readiness(power: PowerFacts, lockdown: ModeList | None, facts: ReadinessFacts) -> Readiness:
    """The "ready when (also)" column of the decision table.

    S4 is ready when supported, swap usable for the image has Active(anon)/0.98 free,
    a resume target is set (resume != 0:0) or the host booted by EFI (systemd then
    stores the location in an EFI variable), and lockdown is none.  hybrid and
    suspend-then-hibernate need S4 ready; the suspend states need only support.
    """
    supported = supported_states(power)
    hibernate: list[str] = []
    if facts.target is None:
        hibernate.append("no_usable_swap")
    elif facts.required_bytes is None:
        hibernate.append("unknown_memory_use")
    elif facts.target.free_bytes < facts.required_bytes:
        hibernate.append("not_enough_swap")
    if facts.resume is None and not facts.efi:
        hibernate.append("no_resume_target")
    if lockdown is not None and lockdown.selected not in (None, "none"):
        hibernate.append("lockdown")
    reasons: dict[str, tuple[str, ...]] = {}
    for state in STATES:
        why = [] if supported[state] else ["unknown_wakealarm" if supported[state] is None else "not_supported"]
        if state in ("S4", "hybrid", "suspend_then_hibernate"):
            why += hibernate
        reasons[state] = tuple(why)
    ready: dict[str, bool | None] = {
        state: None if reasons[state] == ("unknown_wakealarm",) else not reasons[state] for state in STATES
    }
    return Readiness(ready, reasons, facts, power.rtc_wakealarm)
