"""One scrape's facts: what collectors share (each read at most once, its failure
included), each collector's section, and the snapshot the views render.

Nothing here decides when or on which thread the host is read (that is `reading`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

from host_pm_exporter.hostfs import Failed, HostFS, Op, ReadError
from host_pm_exporter.logs import Failures, Once
from host_pm_exporter.probes import ProbeResult
from host_pm_exporter.readers import ParseError, parse_file, read_word
from host_pm_exporter.readers.cache import CacheSummary
from host_pm_exporter.readers.cpuinfo import CpuEntry, CpuInfo, parse_cpuinfo
from host_pm_exporter.readers.cpus import (
    CacheBank,
    CpuIds,
    base_page_kib,
    read_cache_banks,
    read_cpu_ids,
    read_hugepage_sizes,
)
from host_pm_exporter.readers.giveup import tally
from host_pm_exporter.readers.power import (
    ModeList,
    PowerFacts,
    SleepFiles,
    has_rtc_wakealarm,
    read_lockdown,
    read_sleep_files,
)
from host_pm_exporter.readers.topology import CpuSets, Groups, read_core_types, read_cpu_sets, read_groups
from host_pm_exporter.replay import FACT, Made, Memory, answers_again

if TYPE_CHECKING:  # the CPU map and its decoder load on the first capabilities view only
    from host_pm_exporter.cpumap.cpuid import Leaves
    from host_pm_exporter.cpumap.loader import CpuMap

log = logging.getLogger("host_pm_exporter.facts")

T = TypeVar("T")

BAD_INPUT = (ReadError, ParseError)  # the host's files, not our code


class ScrapeFacts:
    """The facts one scrape shares between collectors, each read at most once per
    scrape and never kept after it.

    Each shared fact is read and remembered on its own, its error included: a broken
    fact fails exactly the collectors that need it, with the same message for each,
    and no other.  The ``*_or_none`` forms serve collectors that do without the fact.

    With a `Memory`, facts whose every input the host answers as before are taken
    from it rather than made again (`replay`); each shared fact's key is the name of
    the method that gives it.
    """

    def __init__(self, fs: HostFS, memory: Memory | None = None) -> None:
        self.memory = memory
        self.fs = fs if memory is None else fs.for_reading()  # with a trace of this reading's own
        self._memo: dict[str, tuple[Any, BaseException | None]] = {}

    def _once(self, key: str, fn: Callable[[], T]) -> T:
        memo = self._memo
        if key not in memo:
            try:
                memo[key] = (self.remembered((FACT, key), fn), None)
            except BAD_INPUT as err:
                memo[key] = (None, err)
        value, error = memo[key]
        trace = self.fs.trace
        if trace is not None:  # a fact taken is an input of whatever is being made
            trace.append((FACT, key, value if error is None else Failed.of(error)))
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def remembered(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, or what it made last time when the host answers every question
        it then asked as it did (`replay`); a clean run's facts are kept for the next."""
        memory = self.memory
        if memory is None:
            return make()
        made = memory.get(key)
        if made is not None and answers_again(made, self.fs, self._fact, BAD_INPUT):
            memory.replayed += 1
            return made.value  # type: ignore[return-value]
        counts = tally.get()  # a run that gives up a fact is not kept: it counts there
        token = None
        if counts is None:  # outside a collector (the kernel probe's facts)
            counts = {}
            token = tally.set(counts)
        given_up = sum(counts.values())
        fs = self.fs
        outer = fs.trace
        trace: list[Op] = []
        fs.trace = trace
        try:
            value = make()
        finally:
            fs.trace = outer
            if token is not None:
                tally.reset(token)
        if sum(counts.values()) == given_up:
            memory.put(key, Made.of(trace, value))
        return value

    def _fact(self, key: str) -> object:
        """The shared fact `key` (a method's name) for this reading."""
        return getattr(self, key)()

    def machine(self) -> str | None:
        """The running kernel's machine name (``uname -m`` of the host read)."""
        return self._once("machine", self.fs.running_machine)

    def cpuinfo(self) -> CpuInfo | None:
        """/proc/cpuinfo parsed; ``None`` when absent.  Garbage raises."""

        def read() -> CpuInfo | None:
            fs = self.fs
            machine = self.machine()
            byteorder = None if machine else read_word(fs, fs.sys("kernel", "cpu_byteorder"))
            path = fs.proc("cpuinfo")
            text = fs.read(path, errors="replace")  # one odd byte in a model name costs nothing
            return None if text is None else parse_file(path, lambda t: parse_cpuinfo(t, machine, byteorder), text)

        return self._once("cpuinfo", read)

    def cpuinfo_or_none(self) -> CpuInfo | None:
        """/proc/cpuinfo for collectors that can do without it."""
        try:
            return self.cpuinfo()
        except BAD_INPUT:
            return None

    def cpu_sets(self) -> CpuSets:
        return self._once("cpu_sets", lambda: read_cpu_sets(self.fs))

    def sleep_files(self) -> SleepFiles:
        """/sys/power/state, mem_sleep and disk."""
        return self._once("sleep_files", lambda: read_sleep_files(self.fs))

    def rtc_wakealarm(self) -> bool:
        """Whether an RTC under /sys/class/rtc can wake the host."""
        return self._once("rtc_wakealarm", lambda: has_rtc_wakealarm(self.fs))

    def power(self) -> PowerFacts:
        """The decision table's inputs: the sleep files and the RTC.  An unreadable RTC
        leaves the wake alarm unknown and nothing else: it decides suspend-then-hibernate
        only."""
        try:
            rtc: bool | None = self.rtc_wakealarm()
        except BAD_INPUT:
            rtc = None
        return PowerFacts.of(self.sleep_files(), rtc)

    def lockdown(self) -> ModeList | None:
        return self._once("lockdown", lambda: read_lockdown(self.fs))

    def online_or_none(self) -> frozenset[int] | None:
        try:
            return self.cpu_sets().online
        except (ReadError, ParseError):
            return None

    def online_or_empty(self) -> frozenset[int]:
        try:
            return self.cpu_sets().online
        except BAD_INPUT:
            return frozenset()

    def first_online_cpu(self) -> int | None:
        """The lowest online CPU; ``None`` on a tree without CPUs.  Raises when the
        CPU sets cannot be read: which CPU is online is not guessed."""
        online = self.cpu_sets().online
        return min(online) if online else None

    def groups(self) -> Groups:
        return self._once("groups", lambda: read_groups(self.fs, self.cpu_sets().online))

    def cpuinfo_caches(self) -> list[CacheSummary]:
        """Caches only /proc/cpuinfo describes (s390 keeps its shared L3/L4 there, not
        in sysfs); how many instances there are it does not say."""
        info = self.cpuinfo_or_none()
        if info is None:
            return []
        return [
            CacheSummary(level, ctype, size, None) for level, ctype, scope, size in info.caches if scope == "Shared"
        ]

    def core_types(self) -> dict[int, str]:
        return self._once("core_types", lambda: read_core_types(self.fs))

    def kind_of(self) -> Callable[[int], Hashable]:
        """CPU -> its kind (cpuinfo identity and hybrid core type), for readers that
        need to read a fact once per kind of CPU."""

        def build() -> Callable[[int], Hashable]:
            info = self.cpuinfo_or_none()
            kinds = {e.cpu: e.kind for e in info.cpus} if info is not None else {}
            types = self.core_types()
            # Each distinct (identity, core type) is numbered once here: the readers key
            # dicts by kind per CPU, and a small int hashes for nothing where the
            # identity (a frozen dataclass) hashes all its fields every time.
            ids: dict[tuple[Hashable, str], int] = {}
            numbered = {
                cpu: ids.setdefault((kinds.get(cpu), types.get(cpu, "")), len(ids)) for cpu in kinds.keys() | types
            }
            unknown = ids.setdefault((None, ""), len(ids))
            return lambda cpu: numbered.get(cpu, unknown)

        return self._once("kind_of", build)


@dataclass
class Section(Generic[T]):
    """One collector's facts for one scrape, or why it has none."""

    data: T | None
    error: str | None
    duration: float
    given_up: dict[str, int] = field(default_factory=dict)  # facts left out, by reason (readers.giveup)

    @property
    def ok(self) -> bool:
        return self.error is None


class Gatherer(Protocol):
    """What a reading needs of a collector: its name and how it gathers its facts."""

    @property
    def name(self) -> str: ...

    @property
    def gather(self) -> Callable[[ScrapeFacts], object]: ...


@dataclass
class HostSnapshot:
    """One reading of the host: each collector's section and each probe's answers.
    Views take a collector's facts through that collector (`Collector.of`)."""

    sections: dict[str, Section[Any]] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)


@dataclass(frozen=True)
class HostDetails:
    """What libvirt's capabilities XML needs beyond the collectors' facts: the per-CPU
    ids, cache banks and page sizes, and the inputs of libvirt's CPU model decode (its
    CPU map, and with --capabilities.cpuid the CPUID leaves libvirt reads)."""

    machine: str | None  # the running kernel's, when the roots are its own
    cpuinfo: CpuInfo | None
    cpu_ids: list[CpuIds] | None  # None: unreadable
    cache_banks: list[CacheBank] | None
    hugepage_sizes: list[int]
    base_page_kib: dict[str, int]  # by the names of the architecture this host may go by
    cpu_map: CpuMap | None = None  # libvirt's, under --path.rootfs, else the packed copy; None: no CPUs
    cpuid: dict[int, Leaves] = field(default_factory=dict)  # by CPU: the leaves read (--capabilities.cpuid)


def first_cpu(info: CpuInfo, online: frozenset[int]) -> CpuEntry:
    """The lowest online CPU's cpuinfo entry (libvirt reads CPUID where it runs)."""
    entries = [e for e in info.cpus if e.cpu in online] or list(info.cpus)
    return min(entries, key=lambda e: e.cpu)


def _or_none(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except BAD_INPUT:
        return None


_X86 = ("x86_64", "i386", "i486", "i586", "i686")
_cpuid_failures = Once(log)


def _cpuid(fs: HostFS, info: CpuInfo | None, online: frozenset[int]) -> dict[int, Leaves]:
    """The CPUID leaves (and the IA32_ARCH_CAPABILITIES MSR) of the CPU the XML names,
    from ``/dev/cpu/N/cpuid`` under the root; none where it cannot be read (no
    ``cpuid`` module, not root): the CPU is then named from /proc/cpuinfo's flags."""
    if info is None or not info.cpus or info.arch not in _X86:
        return {}
    from host_pm_exporter.cpumap.cpuid import read_leaves  # noqa: PLC0415 (with --capabilities.cpuid only)
    from host_pm_exporter.cpumap.host import cpuid_path  # noqa: PLC0415

    cpu = first_cpu(info, online).cpu
    path = cpuid_path(fs.root(), cpu)
    try:
        return {cpu: read_leaves(path)}
    except OSError as err:
        why = err.strerror or str(err)
        msg = "CPUID not read: the x86 CPU is named from /proc/cpuinfo's flags"
        _cpuid_failures.log(msg, path, why, file=path, err=why)
        return {}


def _details(facts: ScrapeFacts, cpuid: bool = False) -> HostDetails:
    from host_pm_exporter.cpumap.loader import HOST_MAP, load_map  # noqa: PLC0415 (capabilities view only)

    fs, info, online = facts.fs, facts.cpuinfo_or_none(), facts.online_or_empty()
    machine = _or_none(facts.machine)
    arches = {info.arch if info is not None else "", machine or "", os.uname().machine}
    return HostDetails(
        machine=machine,
        cpuinfo=info,
        cpu_ids=_or_none(lambda: read_cpu_ids(fs, online)) if online else None,
        cache_banks=_or_none(lambda: read_cache_banks(fs, online)) if online else None,
        hugepage_sizes=_or_none(lambda: read_hugepage_sizes(fs)) or [],
        base_page_kib={arch: base_page_kib(fs, arch) for arch in arches},
        cpu_map=load_map(fs.root(*HOST_MAP)) if info is not None and info.cpus else None,
        cpuid=_cpuid(fs, info, online) if cpuid else {},
    )


@dataclass(frozen=True)
class Extra:
    """Facts a view needs beyond the collectors', gathered in the same reading."""

    name: str
    gather: Callable[[ScrapeFacts], object]


def host_details(cpuid: bool = False) -> Extra:
    """`HOST_DETAILS`, reading the CPUID device too with `cpuid` (--capabilities.cpuid)."""
    return Extra("host_details", lambda facts: _details(facts, cpuid))


HOST_DETAILS = host_details()


failures = Failures(log, "collector failed", "collector", limit=512)


def gather(name: str, facts: ScrapeFacts, reader: Callable[[ScrapeFacts], T], remember: bool = False) -> Section[T]:
    """Run one reader; a read or parse failure becomes the section's error.  With
    `remember`, the facts are made again only when an input has changed
    (`ScrapeFacts.remembered`)."""
    start = time.perf_counter()
    given_up: dict[str, int] = {}
    token = tally.set(given_up)  # the facts given up inside, by reason (readers.giveup)
    try:
        data: T | None = facts.remembered(name, lambda: reader(facts)) if remember else reader(facts)
        error = None
    except BAD_INPUT as err:
        data, error = None, str(err)
        failures.log(name, error)
    except Exception as err:  # a reader bug must not break the scrape
        log.exception("collector failed", extra={"collector": name})
        data, error = None, f"{type(err).__name__}: {err}"
    finally:
        tally.reset(token)
    return Section(data, error, time.perf_counter() - start, given_up)
