"""One scrape's view of the host: every enabled collector's facts and every probe's answers.

Nothing is kept between scrapes.  The probes that run programs or talk to D-Bus start
first, on workers of their own; the files are read meanwhile on a reading worker; the
scrape waits for the files until the scrape timeout and for the probes until the probe
timeout, and no longer.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, Protocol, TypeVar

from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.logs import Once
from host_pm_exporter.probes import ProbeResult, kernel, logind, once, pmutils
from host_pm_exporter.readers import ParseError, parse_file, read_word
from host_pm_exporter.readers.cache import CacheSummary
from host_pm_exporter.readers.cpuinfo import CpuInfo, parse_cpuinfo
from host_pm_exporter.readers.giveup import tallying
from host_pm_exporter.readers.power import (
    ModeList,
    PowerFacts,
    SleepFiles,
    has_rtc_wakealarm,
    read_lockdown,
    read_sleep_files,
)
from host_pm_exporter.readers.topology import CpuSets, Groups, read_core_types, read_cpu_sets, read_groups
from host_pm_exporter.workers import Workers

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
            path = fs.proc("cpuinfo")
            text = fs.read(path, errors="replace")  # one odd byte in a model name costs nothing
            return None if text is None else parse_file(path, lambda t: parse_cpuinfo(t, machine, byteorder), text)

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
        """The decision table's inputs: the sleep files and the RTC.  An unreadable RTC
        leaves the wake alarm unknown and nothing else: it decides suspend-then-hibernate
        only."""
        try:
            rtc: bool | None = self.rtc_wakealarm()
        except (ReadError, ParseError):
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
    given_up: dict[str, int] = field(default_factory=dict)  # facts left out, by reason (readers.giveup)

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
    timeout: float = 9.0  # the host's files must be read within this; a collector past it reports 0


@dataclass
class HostSnapshot:
    sections: dict[str, Section[Any]] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    scrape: Scrape | None = None  # the facts this reading shared (the capabilities XML reads more through it)


def gather(name: str, scrape: Scrape, reader: Callable[[Scrape], T]) -> Section[T]:
    """Run one reader; a read or parse failure becomes the section's error."""
    start = time.perf_counter()
    given_up: dict[str, int] = {}
    try:
        with tallying() as given_up:
            data: T | None = reader(scrape)
        error = None
    except (ReadError, ParseError) as err:  # bad input: the host's files, not our code
        data, error = None, str(err)
        bad_input.log(name, error)
    except Exception as err:  # a reader bug must not break the scrape
        log.exception("collector failed", extra={"collector": name})
        data, error = None, f"{type(err).__name__}: {err}"
    return Section(data, error, time.perf_counter() - start, given_up)


class _BadInput:
    """Bad host files are logged as a warning once per collector and reason (numbers in
    the reason do not make it new), then at debug level."""

    def __init__(self) -> None:
        self._once = Once(log, limit=512)

    def log(self, collector: str, reason: str) -> None:
        self._once.log("collector failed", collector, reason, collector=collector, reason=reason)


bad_input = _BadInput()


class Watchdog:
    """Collectors still reading past a scrape's deadline (a hung NFS or FUSE mount under
    the roots): each is skipped by later scrapes until its read returns, so a hung file
    holds one thread, not one per scrape, and /healthz says so meanwhile."""

    def __init__(self) -> None:
        self._stuck: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, name: str) -> None:
        with self._lock:
            self._stuck.setdefault(name, time.monotonic())

    def clear(self, name: str) -> None:
        with self._lock:
            self._stuck.pop(name, None)

    def since(self, name: str) -> float | None:
        with self._lock:
            return self._stuck.get(name)

    def problem(self) -> str | None:
        """Why the exporter is unhealthy, or None."""
        with self._lock:
            if not self._stuck:
                return None
            now = time.monotonic()
            return ", ".join(f"{n} stuck reading for {now - t:.0f}s" for n, t in sorted(self._stuck.items()))


watchdog = Watchdog()
readers = Workers("reading")


class _Reading:
    """Reads the host for one scrape, in a worker thread: the kernel probe's facts, then
    every collector in order.  The scrape waits for it until its deadline and no longer."""

    def __init__(self, config: SnapshotConfig, scrape: Scrape, dog: Watchdog) -> None:
        self.config, self.scrape, self.dog = config, scrape, dog
        self.sections: dict[str, Section[Any]] = {}
        self.kernel: ProbeResult | None = None
        self.current: str | None = None
        self.abandoned = False
        self._lock = threading.Lock()

    def run(self) -> None:
        # A step still stuck since an earlier scrape is not started again: one hung read
        # holds one thread.
        if "kernel" in self.config.probes:
            stuck = self._still_stuck("kernel probe")
            if stuck is None:
                self._step("kernel probe", self._kernel)
            else:
                self.kernel = ProbeResult("kernel", error=stuck)
        for collector in self.config.collectors:
            stuck = self._still_stuck(collector.name)
            if stuck is not None:
                self.sections[collector.name] = Section(None, stuck, 0.0)
            elif not self._step(collector.name, functools.partial(self._gather, collector)):
                return

    def _still_stuck(self, name: str) -> str | None:
        since = self.dog.since(name)
        return None if since is None else f"still stuck reading since {time.monotonic() - since:.0f}s ago"

    def _kernel(self) -> None:
        self.kernel = _kernel_probe(self.scrape)

    def _gather(self, collector: Gatherer) -> None:
        section = gather(collector.name, self.scrape, collector.gather)
        with self._lock:
            if not self.abandoned:
                self.sections[collector.name] = section

    def _step(self, name: str, work: Callable[[], object]) -> bool:
        with self._lock:
            if self.abandoned:
                return False
            self.current = name
        work()
        with self._lock:
            self.current = None
            if self.abandoned:
                self.dog.clear(name)  # the read came back: later scrapes may try again
                return False
        return True

    def abandon(self) -> tuple[dict[str, Section[Any]], ProbeResult | None, str | None]:
        """Stop waiting: what is done, and the step still reading (now marked stuck)."""
        with self._lock:
            self.abandoned = True
            if self.current is not None:
                self.dog.mark(self.current)
            return dict(self.sections), self.kernel, self.current


probe_workers = Workers("probe")


class Pending:
    """One reading of the host under way: the probes that run programs or talk to D-Bus
    start at once on workers of their own, the files are read on a reading worker.
    Whoever waits for it waits for each part until its own deadline: the files until
    `--scrape.timeout`, the probes until `--pm.probe-timeout` (and a small grace), then
    takes `snapshot()`: what is done, the same snapshot for every scrape that shares
    this reading."""

    def __init__(self, config: SnapshotConfig, dog: Watchdog = watchdog) -> None:
        self.config = config
        self.started = time.monotonic()
        self._probes = _start_probes(config)
        self._reading = _Reading(config, Scrape(config.fs), dog)
        self.files: futures.Future[None] = readers.submit(self._reading.run)
        # The probes bound their own work by the timeout; the small grace lets a probe
        # that is killing a hung command reap it before the scrape moves on.
        probe_deadline = self.started + config.probe_timeout + 0.1
        self.parts: list[tuple[futures.Future[Any], float]] = [(self.files, self.started + config.timeout)]
        self.parts += [(future, probe_deadline) for _, future in self._probes]
        self.deadline = max(deadline for _, deadline in self.parts)
        self._snapshot: HostSnapshot | None = None
        self._lock = threading.Lock()

    def done(self) -> bool:
        return all(future.done() for future, _ in self.parts)

    def wait(self) -> HostSnapshot:
        """The snapshot, each part waited for in this thread until its deadline."""
        for future, deadline in self.parts:
            futures.wait([future], max(0.0, deadline - time.monotonic()))
        return self.snapshot()

    def snapshot(self) -> HostSnapshot:
        """What is done by now, never waiting: a collector still reading fails and is
        marked stuck; a probe still running has timed out.  Built once: every scrape
        sharing this reading gets the same."""
        with self._lock:
            if self._snapshot is None:
                self._snapshot = self._build()
            return self._snapshot

    def _build(self) -> HostSnapshot:
        failed = self.files.done() and self.files.exception() is not None
        if self.files.done():
            done, kernel_result, stuck = self._reading.sections, self._reading.kernel, None
            if failed:  # a bug of ours: the collectors not read fail, the scrape answers
                log.error("reading failed", exc_info=self.files.exception())
        else:
            done, kernel_result, stuck = self._reading.abandon()
        snapshot = HostSnapshot(scrape=self._reading.scrape)
        timeout = self.config.timeout
        for collector in self.config.collectors:
            section = done.get(collector.name)
            if section is None:
                if failed:
                    why = "not read: the reading failed"
                elif collector.name == stuck:
                    why = f"stuck reading past the {timeout:g}s deadline"
                else:
                    why = f"not read: an earlier collector was stuck past the {timeout:g}s deadline"
                section = Section(None, why, timeout)
                bad_input.log(collector.name, why)
            snapshot.sections[collector.name] = section
        results = []
        if "kernel" in self.config.probes:
            results.append(kernel_result or ProbeResult("kernel", error="stuck reading /sys/power", duration=0.0))
        results += [self._probe_result(name, future) for name, future in self._probes]
        snapshot.probes = sorted(results, key=lambda r: r.probe)
        return snapshot

    def _probe_result(self, name: str, future: futures.Future[ProbeResult]) -> ProbeResult:
        if not future.done():
            error = f"timed out after {self.config.probe_timeout:g}s"
            once.failure(name, error)
            return ProbeResult(name, error=error, duration=self.config.probe_timeout)
        err = future.exception()
        if err is not None:  # the probes catch their own errors; belt and braces
            return ProbeResult(name, error=f"{type(err).__name__}: {err}")
        return future.result()


def build_snapshot(config: SnapshotConfig, dog: Watchdog = watchdog) -> HostSnapshot:
    """One fresh reading of the host, waited for in this thread."""
    return Pending(config, dog).wait()


Key = tuple[tuple[str, ...], tuple[str, ...]]  # the collectors and probes of a reading


class Taken:
    """Readings that are one snapshot taken already (one-shot outputs render the one
    reading they print)."""

    def __init__(self, snapshot: HostSnapshot) -> None:
        self.snapshot = snapshot

    def start(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> Pending:
        raise NotImplementedError("a snapshot taken already is rendered, not read")

    def read(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> HostSnapshot:
        return self.snapshot


class Readings:
    """Readings of the host for scrapes.  A scrape that arrives while an equal reading
    (the same collectors and probes) is still in flight shares it; a reading that has
    finished, or whose deadline has passed, is never shared: the next scrape starts its
    own.  So no answer comes from a reading that finished before the scrape arrived."""

    def __init__(self, config: SnapshotConfig, dog: Watchdog = watchdog) -> None:
        self.config = config
        self.dog = dog
        self._running: dict[Key, Pending] = {}
        self._lock = threading.Lock()
        self.shared = 0  # scrapes answered from a reading already in flight

    def start(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> Pending:
        key = (tuple(c.name for c in collectors), probes)
        with self._lock:
            pending = self._running.get(key)
            if pending is not None and not pending.done() and time.monotonic() < pending.deadline:
                self.shared += 1
                log.debug("sharing a reading in flight", extra={"collectors": len(collectors)})
                return pending
            config = replace(self.config, collectors=tuple(collectors), probes=probes)
            pending = self._running[key] = Pending(config, self.dog)
        for future, _ in pending.parts:  # gone from the table once every part is done
            future.add_done_callback(lambda _: self._forget(key, pending))
        return pending

    def _forget(self, key: Key, pending: Pending) -> None:
        with self._lock:
            if self._running.get(key) is pending and pending.done():
                del self._running[key]

    def read(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> HostSnapshot:
        return self.start(collectors, probes).wait()


def _start_probes(config: SnapshotConfig) -> list[tuple[str, futures.Future[ProbeResult]]]:
    timeout = config.probe_timeout
    path = config.pm_is_supported
    runners: dict[str, Callable[[], ProbeResult]] = {
        "pm-utils": lambda: pmutils.run(path, timeout),
        "logind": lambda: logind.run(timeout),
    }
    return [(name, probe_workers.submit(run)) for name, run in runners.items() if name in config.probes]


def _kernel_probe(scrape: Scrape) -> ProbeResult:
    """The kernel's answers, from the same power facts the collectors share."""
    start = time.perf_counter()
    try:
        facts = scrape.power()
    except (ReadError, ParseError) as err:
        return ProbeResult("kernel", error=str(err), duration=time.perf_counter() - start)
    except Exception as err:  # a bug of ours costs the kernel probe, not the scrape
        log.exception("kernel probe failed")
        return ProbeResult("kernel", error=f"{type(err).__name__}: {err}", duration=time.perf_counter() - start)
    return kernel.answer(facts, time.perf_counter() - start)
