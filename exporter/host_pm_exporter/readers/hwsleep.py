"""Evidence that a suspend really reached a hardware sleep state, not only that the kernel
offers one.

What the kernel records, and where it says so:

- ``/sys/power/suspend_stats/last_hw_sleep``, ``total_hw_sleep``, ``max_hw_sleep``
  (Linux >= 6.4; Documentation/ABI/testing/sysfs-power): microseconds spent in a
  hardware sleep state in the most recent suspend-resume cycle, in all of them since
  boot, and the most the platform's counter can report (a sleep longer than that makes
  the other two inaccurate: the counter wraps or saturates).  kernel/power/main.c
  prints each with ``%llu`` and makes the three files visible only where the FADT sets
  ``LOW_POWER_S0_IDLE_CAPABLE``; a platform driver (amd_pmc, intel_pmc_core) fills them.
- ``/sys/devices/system/cpu/cpuidle/low_power_idle_cpu_residency_us`` and
  ``low_power_idle_system_residency_us`` (Intel LPIT; Documentation/ABI/testing/
  sysfs-devices-system-cpu and Documentation/acpi/lpit.rst): microseconds since boot
  with the CPU package in PKG C10, and with SLP_S0# asserted (S0ix: the whole platform
  in its lowest power state).
- ``/proc/acpi/wakeup`` (drivers/acpi/proc.c): a header line, then one line per ACPI
  device that may wake the system, ``"%s\\t  S%d\\t%c%-8s  %s:%s\\n"``: its ACPI name,
  the deepest sleep state it can wake the system from, ``*`` (the kernel prints only
  valid entries; kernels before 3.x printed a space), ``enabled``/``disabled``, and
  its physical node ``bus:name``.  A device with several physical nodes prints one
  line per node; the lines after the first start with two tabs and carry no name.
- ``/sys/firmware/acpi/tables/FACP`` (the FADT, binary, mode 0400 root): the 32-bit
  little-endian Flags field at byte offset 112 (ACPI specification, "Fixed ACPI
  Description Table (FADT)": table 5.9 of ACPI 6.x; ``struct acpi_table_fadt`` in
  include/acpi/actbl.h), whose bit 21 is ``LOW_POWER_S0_IDLE_CAPABLE`` (ACPI 5.0+;
  ``ACPI_FADT_LOW_POWER_S0`` in actbl.h): the firmware advertises Modern Standby,
  which is why the kernel then defaults ``mem_sleep`` to s2idle.

Absent files are no facts, never 0.  A file that is there but unreadable or not what
the kernel writes costs its own fact, with the reason in `SleepEvidence.errors`; the
FADT unreadable for want of privilege is the expected case of an unprivileged
exporter: no fact, logged once, no error.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass, field

from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.logs import Once
from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.giveup import give_up

log = logging.getLogger("host_pm_exporter.readers.hwsleep")
_once = Once(log)

MICROSECONDS = 1_000_000
FADT_FLAGS_OFFSET = 112  # ACPI spec, FADT: Flags, 4 bytes, in every revision (1.0 tables are 116 bytes)
LOW_POWER_S0_IDLE_CAPABLE = 1 << 21
SLEEP_STATES = ("S0", "S1", "S2", "S3", "S4", "S5")  # the values of the sleep_state label
MAX_WAKEUP_DEVICES = 1024  # a laptop lists ~30, a big server ~100: more is not the kernel's file
_NAME = r"[A-Za-z0-9_]{1,8}"  # an ACPI name segment (bus_id): four of [A-Z0-9_]
_NODE = r"[!-~]{1,120}"  # bus:device (pci:0000:00:14.0, platform:PNP0C0D:00, no-bus:...), printable ASCII
_STATUS = rf"[* ]?(?P<status>enabled|disabled)(?:[ \t]+(?P<node>{_NODE}))?[ \t]*"
_DEVICE_LINE = re.compile(rf"(?P<name>{_NAME})[ \t]+S(?P<state>[0-9]{{1,3}})[ \t]+{_STATUS}")
_NODE_LINE = re.compile(rf"[ \t]+{_STATUS}")


@dataclass(frozen=True)
class HwSleep:
    """/sys/power/suspend_stats' hardware-sleep counters, in microseconds as the kernel
    writes them; ``None`` where the file is absent."""

    last_us: int | None = None
    total_us: int | None = None
    max_us: int | None = None

    @property
    def present(self) -> bool:
        return self.last_us is not None or self.total_us is not None

    @property
    def last_saturated(self) -> bool:
        """The last sleep reached the counter's limit: it was at least this long, and
        the number is not its length."""
        return self.last_us is not None and bool(self.max_us) and self.last_us >= (self.max_us or 0)


@dataclass(frozen=True)
class LowPowerIdle:
    """LPIT residency counters since boot, microseconds; ``None`` where absent."""

    cpu_us: int | None = None
    system_us: int | None = None


@dataclass(frozen=True)
class WakeupDevice:
    """One device of /proc/acpi/wakeup."""

    name: str  # ACPI name (not unique: firmware repeats PXSX, PEGP ...)
    sleep_state: str  # S0..S5: the deepest state it can wake the system from
    enabled: bool  # some line of it says enabled
    nodes: tuple[str, ...]  # its physical nodes, "bus:name"


@dataclass(frozen=True)
class AcpiWakeup:
    devices: tuple[WakeupDevice, ...]

    def counts(self) -> dict[tuple[str, bool], int]:
        """Devices per (sleep_state, enabled): at most 12 keys whatever the table."""
        out: dict[tuple[str, bool], int] = {}
        for device in self.devices:
            key = (device.sleep_state, device.enabled)
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def can_wake_from(self, state: str) -> int:
        """Enabled devices that can wake the system from `state` (an ACPI device wakes
        it from its own S-state and any shallower one)."""
        return sum(1 for d in self.devices if d.enabled and d.sleep_state >= state)


@dataclass
class SleepEvidence:
    """One reading of every evidence file.  ``None``: not on this host (or, for the
    FADT, not readable by an unprivileged exporter: see `fadt_denied`)."""

    suspend_successes: int | None = None  # /sys/power/suspend_stats/success, for the summary
    hw_sleep: HwSleep = field(default_factory=HwSleep)
    low_power_idle: LowPowerIdle = field(default_factory=LowPowerIdle)
    acpi_wakeup: AcpiWakeup | None = None
    low_power_s0: bool | None = None
    fadt_denied: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # fact -> why it could not be read

    @property
    def problem(self) -> str | None:
        """Every fact that is there but could not be read, in one line; ``None`` when
        each was read or is absent."""
        return "; ".join(f"{fact}: {why}" for fact, why in sorted(self.errors.items())) or None


# --- pure parsers ------------------------------------------------------------------------


def parse_hw_sleep(last: int | None, total: int | None, maximum: int | None) -> HwSleep:
    """The three counters, checked against each other: the kernel adds each sleep to
    the total (kernel/power/main.c, pm_report_hw_sleep_time), so a last sleep longer
    than the total is not the kernel's.

    >>> parse_hw_sleep(1_870_000_000, 9_512_000_000, 4_294_967_295).last_us
    1870000000
    >>> parse_hw_sleep(None, None, None).present
    False
    >>> parse_hw_sleep(5, 4, None)
    Traceback (most recent call last):
    ...
    host_pm_exporter.readers.ParseError: last_hw_sleep 5 is more than total_hw_sleep 4
    """
    if last is not None and total is not None and last > total:
        raise ParseError(f"last_hw_sleep {last} is more than total_hw_sleep {total}")
    return HwSleep(last, total, maximum)


def parse_acpi_wakeup(text: str) -> AcpiWakeup:
    """Parse /proc/acpi/wakeup (drivers/acpi/proc.c).

    >>> table = parse_acpi_wakeup(
    ...     "Device\\tS-state\\t  Status   Sysfs node\\n"
    ...     "LID\\t  S4\\t*enabled   platform:PNP0C0D:00\\n"
    ...     "XHC\\t  S3\\t*disabled  pci:0000:00:14.0\\n"
    ...     "RP01\\t  S4\\t*disabled  pci:0000:00:1c.0\\n"
    ...     "\\t\\t*enabled   pci:0000:01:00.0\\n"
    ...     "PXSX\\t  S4\\t*disabled\\n")
    >>> table.counts()
    {('S3', False): 1, ('S4', False): 1, ('S4', True): 2}
    >>> table.devices[2]
    WakeupDevice(name='RP01', sleep_state='S4', enabled=True, nodes=('pci:0000:00:1c.0', 'pci:0000:01:00.0'))
    >>> table.can_wake_from("S3")
    2
    """
    lines = text.splitlines()
    if not lines or lines[0].split() != ["Device", "S-state", "Status", "Sysfs", "node"]:
        raise ParseError(f"not the ACPI wakeup table: first line {lines[0][:60]!r}" if lines else "empty")
    devices: list[WakeupDevice] = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        node_line = _NODE_LINE.fullmatch(line) if line[0] in " \t" else None
        if node_line is not None:
            if not devices:
                raise ParseError(f"line {number}: a physical node before any device")
            last = devices[-1]
            node = node_line.group("node")
            devices[-1] = WakeupDevice(
                last.name,
                last.sleep_state,
                last.enabled or node_line.group("status") == "enabled",
                last.nodes + ((node,) if node else ()),
            )
            continue
        match = _DEVICE_LINE.fullmatch(line)
        if match is None:
            raise ParseError(f"line {number}: unexpected {line.strip()[:60]!r}")
        state = "S" + str(int(match.group("state")))
        if state not in SLEEP_STATES:
            raise ParseError(f"line {number}: sleep state {state} is not S0..S5")
        if len(devices) >= MAX_WAKEUP_DEVICES:
            raise ParseError(f"more than {MAX_WAKEUP_DEVICES} devices")
        node = match.group("node")
        devices.append(
            WakeupDevice(match.group("name"), state, match.group("status") == "enabled", (node,) if node else ())
        )
    return AcpiWakeup(tuple(devices))


def parse_fadt_flags(table: bytes) -> int:
    """The 32-bit Flags of a FADT (the bytes of /sys/firmware/acpi/tables/FACP).

    The header's Length must cover what was read up to the flags; the checksum is not
    checked, as the kernel uses a table whose checksum is wrong (it only warns).

    >>> header = b"FACP" + (116).to_bytes(4, "little") + bytes(104)
    >>> flags = parse_fadt_flags(header + (0x0020C4B5).to_bytes(4, "little"))
    >>> hex(flags), bool(flags & LOW_POWER_S0_IDLE_CAPABLE)
    ('0x20c4b5', True)
    >>> parse_fadt_flags(b"FACP" + bytes(60))
    Traceback (most recent call last):
    ...
    host_pm_exporter.readers.ParseError: truncated FADT: 64 bytes, the flags end at byte 116
    """
    if table[:4] != b"FACP":
        raise ParseError(f"not a FADT: signature {table[:4]!r}")
    end = FADT_FLAGS_OFFSET + 4
    if len(table) < end:
        raise ParseError(f"truncated FADT: {len(table)} bytes, the flags end at byte {end}")
    length = int.from_bytes(table[4:8], "little")
    if length < end:
        raise ParseError(f"FADT length {length} ends before its flags (byte {end})")
    if length > len(table):
        raise ParseError(f"truncated FADT: {len(table)} of its {length} bytes")
    return int.from_bytes(table[FADT_FLAGS_OFFSET:end], "little")


def hw_sleep_summary(facts: SleepEvidence) -> str:  # noqa: PLR0911 (one sentence per case)
    """What the status page and ``--explain`` say of the last suspend.

    >>> hw_sleep_summary(SleepEvidence(3, HwSleep(1_870_000_000, 9_512_000_000, 4_294_967_295)))
    'last suspend: 31 min in hardware sleep'
    >>> hw_sleep_summary(SleepEvidence(0, HwSleep(0, 0, 4_294_967_295)))
    'never suspended since boot'
    >>> hw_sleep_summary(SleepEvidence(5, HwSleep()))
    'this kernel does not record hardware sleep'
    """
    hw = facts.hw_sleep
    if "hw_sleep" in facts.errors:
        return f"hardware sleep unknown: {facts.errors['hw_sleep']}"
    if facts.suspend_successes == 0:
        return "never suspended since boot"
    if hw.last_us is None:
        return "this kernel does not record hardware sleep"
    if facts.suspend_successes is None and hw.total_us == 0:
        return "no hardware sleep recorded since boot"
    if hw.last_us == 0:
        return "last suspend: never reached hardware sleep"
    seconds = hw.last_us / MICROSECONDS
    amount = f"{seconds:.0f} s" if seconds < 60 else f"{seconds // 60:.0f} min"
    if hw.last_saturated:
        return f"last suspend: at least {amount} in hardware sleep (the counter's limit)"
    return f"last suspend: {amount} in hardware sleep"


def wakeup_summary(table: AcpiWakeup | None, state: str = "S3") -> str:
    """What the status page and ``--explain`` say of the ACPI wake table: the devices
    that may wake the host from `state` by name, the others counted.

    >>> table = parse_acpi_wakeup(
    ...     "Device\\tS-state\\t  Status   Sysfs node\\n"
    ...     "LID0\\t  S4\\t*enabled   platform:PNP0C0D:00\\n"
    ...     "XHC\\t  S3\\t*enabled   pci:0000:00:14.0\\n"
    ...     "SLPB\\t  S1\\t*enabled\\n"
    ...     "PXSX\\t  S4\\t*disabled\\n")
    >>> wakeup_summary(table)
    'may wake from S3: LID0 (platform:PNP0C0D:00), XHC (pci:0000:00:14.0); 2 other ACPI wake devices'
    >>> wakeup_summary(table, "S4")
    'may wake from S4: LID0 (platform:PNP0C0D:00); 3 other ACPI wake devices'
    >>> wakeup_summary(AcpiWakeup(table.devices[3:]))
    'nothing may wake from S3: 1 ACPI wake device, none enabled for S3 or deeper'
    >>> wakeup_summary(AcpiWakeup(()))
    'no ACPI wake device'
    >>> wakeup_summary(None)
    'no ACPI wake table (/proc/acpi/wakeup)'
    """
    if table is None:
        return "no ACPI wake table (/proc/acpi/wakeup)"
    if not table.devices:
        return "no ACPI wake device"
    able = [d for d in table.devices if d.enabled and d.sleep_state >= state]
    others = len(table.devices) - len(able)
    if not able:
        plural = "s" if others != 1 else ""
        return f"nothing may wake from {state}: {others} ACPI wake device{plural}, none enabled for {state} or deeper"
    rest = f"{others} other ACPI wake device{'s' if others != 1 else ''}"
    names = ", ".join(f"{d.name} ({', '.join(d.nodes)})" if d.nodes else d.name for d in able)
    return f"may wake from {state}: {names}" + (f"; {rest}" if others else "")


# --- reading the host --------------------------------------------------------------------


def read_sleep_evidence(fs: HostFS) -> SleepEvidence:
    """Every evidence file of the host under `fs`, each fact on its own: one that
    cannot be read is left out and named in ``errors``, the others stand."""
    facts = SleepEvidence()
    try:
        with fs.directory(fs.sys("power", "suspend_stats")) as stats:
            facts.suspend_successes = stats.read_int("success")
            facts.hw_sleep = parse_hw_sleep(
                stats.read_int("last_hw_sleep"), stats.read_int("total_hw_sleep"), stats.read_int("max_hw_sleep")
            )
    except (ReadError, ParseError) as err:
        _lost(facts, "hw_sleep", err)
    try:
        with fs.directory(fs.sys("devices", "system", "cpu", "cpuidle")) as cpuidle:
            facts.low_power_idle = LowPowerIdle(
                cpuidle.read_int("low_power_idle_cpu_residency_us"),
                cpuidle.read_int("low_power_idle_system_residency_us"),
            )
    except (ReadError, ParseError) as err:
        _lost(facts, "low_power_idle", err)
    path = fs.proc("acpi", "wakeup")
    try:
        text = fs.read(path)
        if text is not None:
            facts.acpi_wakeup = parse_acpi_wakeup(text)
    except ReadError as err:
        _lost(facts, "acpi_wakeup", err)
    except ParseError as err:
        _lost(facts, "acpi_wakeup", ParseError(f"{path}: {err}"))
    _read_fadt(fs, facts)
    return facts


def _lost(facts: SleepEvidence, fact: str, err: ReadError | ParseError) -> None:
    """One fact given up: named in ``errors`` (for the summaries) and counted in
    host_exporter_facts_given_up; the other facts stand."""
    facts.errors[fact] = str(err)
    give_up(fact, err)


def _read_fadt(fs: HostFS, facts: SleepEvidence) -> None:
    path = fs.sys("firmware", "acpi", "tables", "FACP")
    try:
        table = fs.read_bytes(path)
    except ReadError as err:
        if err.errno in (errno.EACCES, errno.EPERM):
            facts.fadt_denied = True
            _once.log(
                "the FADT is readable by root only: host_pm_firmware_low_power_s0 is left out",
                path,
                "permission denied",
                path=path,
            )
        else:
            _lost(facts, "fadt", err)
        return
    if table is None:
        return
    try:
        facts.low_power_s0 = bool(parse_fadt_flags(table) & LOW_POWER_S0_IDLE_CAPABLE)
    except ParseError as err:
        _lost(facts, "fadt", ParseError(f"{path}: {err}"))
