"""One scrape's view of the host: every enabled collector's facts and every probe's answers.

Nothing is kept between scrapes.  The probes that run programs or talk to D-Bus start
first, in threads of their own; the sysfs readers run meanwhile; the scrape then waits
for the probes until the probe timeout and no longer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, TypeVar

from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.probes import ProbeResult, kernel, logind, once, pmutils
from host_pm_exporter.readers import ParseError, read_parsed, read_word
from host_pm_exporter.readers.cache import CacheSummary
from host_pm_exporter.readers.cpuinfo import CpuInfo, parse_cpuinfo
from host_pm_exporter.readers.power import (
    ModeList,
    PowerFacts,
    SleepFiles,
    has_rtc_wakealarm,
    read_lockdown,
    read_sleep_files,
)
from host_pm_exporter.readers.topology import CpuSets, Groups, read_core_types, read_cpu_sets, read_groups

log = logging.getLogger("host_pm_exporter.snapshot")

T = TypeVar("T")


class Scrape:
    """The facts one scrape shares between collectors, each read at most once per
    scrape and never kept after it.

    Each shared fact is read and remembered on its own, its error included: a broken
    fact fails exactly the collectors that need it, with the same message for each,
    and no other.  The ``*_or_none`` forms serve collectors that do without the fact.
    """

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs
        self._memo: dict[str, tuple[Any, BaseException | None]] = {}

    def _once(self, key: str, fn: Callable[[], T]) -> T:
        if key not in self._memo:
            try:
                self._memo[key] = (fn(), None)
            except (ReadError, ParseError) as err:
                self._memo[key] = (None, err)
        value, error = self._memo[key]
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def cpuinfo(self) -> CpuInfo | None:
        """/proc/cpuinfo parsed; ``None`` when absent.  Garbage raises."""

        def read() -> CpuInfo | None:
            fs = self.fs
            machine = fs.running_machine()
            byteorder = None if machine else read_word(fs, fs.sys("kernel", "cpu_byteorder"))
            return read_parsed(fs, fs.proc("cpuinfo"), lambda text: parse_cpuinfo(text, machine, byteorder))

        return self._once("cpuinfo", read)

    def cpuinfo_or_none(self) -> CpuInfo | None:
        """/proc/cpuinfo for collectors that can do without it."""
        try:
            return self.cpuinfo()
        except (ReadError, ParseError):
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
        """The decision table's inputs: the sleep files and the RTC."""
        return PowerFacts.of(self.sleep_files(), self.rtc_wakealarm())

    def lockdown(self) -> ModeList | None:
        return self._once("lockdown", lambda: read_lockdown(self.fs))

    def online_or_empty(self) -> frozenset[int]:
        try:
            return self.cpu_sets().online
        except (ReadError, ParseError):
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

    def kind_of(self) -> Callable[[int], Any]:
        """CPU -> its kind (cpuinfo identity and hybrid core type), for readers that
        need to read a fact once per kind of CPU."""

        def build() -> Callable[[int], Any]:
            info = self.cpuinfo_or_none()
            kinds = {e.cpu: e.kind for e in info.cpus} if info is not None else {}
            types = self.core_types()
            return lambda cpu: (kinds.get(cpu), types.get(cpu, ""))

        return self._once("kind_of", build)


@dataclass
class Section(Generic[T]):
    """One collector's facts for one scrape, or why it has none."""

    data: T | None
    error: str | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.error is None


class Gatherer(Protocol):
    """What the snapshot needs of a collector: its name and how it reads its facts."""

    @property
    def name(self) -> str: ...

    @property
    def gather(self) -> Callable[[Scrape], object]: ...


@dataclass
class SnapshotConfig:
    fs: HostFS
    collectors: Sequence[Gatherer] = ()
    probes: tuple[str, ...] = ("kernel", "logind", "pm-utils")
    probe_timeout: float = 2.0
    pm_is_supported: str = pmutils.DEFAULT_PATH


@dataclass
class HostSnapshot:
    sections: dict[str, Section[Any]] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)


def gather(name: str, scrape: Scrape, reader: Callable[[Scrape], T]) -> Section[T]:
    """Run one reader; a read or parse failure becomes the section's error."""
    start = time.perf_counter()
    try:
        data: T | None = reader(scrape)
        error = None
    except (ReadError, ParseError) as err:
        data, error = None, str(err)
    except Exception as err:  # a reader bug must not break the scrape
        log.exception("collector failed", extra={"collector": name})
        data, error = None, f"{type(err).__name__}: {err}"
    if error is not None:
        log.debug("collector failed", extra={"collector": name, "reason": error})
    return Section(data, error, time.perf_counter() - start)


class _ProbeThread(threading.Thread):
    def __init__(self, name: str, fn: Callable[[], ProbeResult]) -> None:
        super().__init__(name=f"probe-{name}", daemon=True)
        self.probe = name
        self.fn = fn
        self.result: ProbeResult | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as err:  # the probes catch their own errors; belt and braces
            self.result = ProbeResult(self.probe, error=f"{type(err).__name__}: {err}")


def build_snapshot(config: SnapshotConfig) -> HostSnapshot:
    start = time.monotonic()
    threads = _start_probes(config)
    snapshot = HostSnapshot()
    scrape = Scrape(config.fs)
    results = [_kernel_probe(scrape)] if "kernel" in config.probes else []
    for collector in config.collectors:
        snapshot.sections[collector.name] = gather(collector.name, scrape, collector.gather)
    # The probes bound their own work by the timeout; the small grace lets a probe that
    # is killing a hung command reap it before the scrape moves on.
    deadline = start + config.probe_timeout + 0.1
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.result is None:
            error = f"timed out after {config.probe_timeout:g}s"
            once.failure(thread.probe, error)
            thread.result = ProbeResult(thread.probe, error=error, duration=config.probe_timeout)
        results.append(thread.result)
    snapshot.probes = sorted(results, key=lambda r: r.probe)
    return snapshot


def _start_probes(config: SnapshotConfig) -> list[_ProbeThread]:
    timeout = config.probe_timeout
    path = config.pm_is_supported
    runners: dict[str, Callable[[], ProbeResult]] = {
        "pm-utils": lambda: pmutils.run(path, timeout),
        "logind": lambda: logind.run(timeout),
    }
    threads = [_ProbeThread(name, run) for name, run in runners.items() if name in config.probes]
    for thread in threads:
        thread.start()
    return threads


def _kernel_probe(scrape: Scrape) -> ProbeResult:
    """The kernel's answers, from the same power facts the collectors share."""
    start = time.perf_counter()
    try:
        facts = scrape.power()
    except (ReadError, ParseError) as err:
        return ProbeResult("kernel", error=str(err), duration=time.perf_counter() - start)
    return kernel.answer(facts, time.perf_counter() - start)
