"""When and where the host is read: one reading per scrape (or shared by the scrapes
that arrive while it is in flight), the files on a reading worker, the probes that run
programs or talk to D-Bus on workers of their own, each part waited for until its own
deadline and no longer, and the watchdog that keeps a hung read from taking a thread
per scrape.  What is read is `facts`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, replace
from typing import Any, Callable

from host_pm_exporter.facts import BAD_INPUT, Gatherer, HostSnapshot, ScrapeFacts, Section, failures, gather
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.probes import ProbeResult, kernel, logind, pmutils
from host_pm_exporter.probes import failures as probe_failures
from host_pm_exporter.replay import Memory
from host_pm_exporter.workers import Workers

log = logging.getLogger("host_pm_exporter.reading")


@dataclass
class SnapshotConfig:
    fs: HostFS
    collectors: Sequence[Gatherer] = ()
    probes: tuple[str, ...] = ("kernel", "logind", "pm-utils")
    probe_timeout: float = 2.0
    pm_is_supported: str = pmutils.DEFAULT_PATH
    timeout: float = 9.0  # the host's files must be read within this; a collector past it reports 0
    memory: Memory | None = None  # with one, facts are made again only when their inputs changed (`replay`)


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
        if not self._stuck:  # the usual case, without the lock: a dict's size reads whole
            return None
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


class _FileReading:
    """Reads the host for one scrape, in a worker thread: the kernel probe's facts, then
    every collector in order.  The scrape waits for it until its deadline and no longer."""

    def __init__(self, config: SnapshotConfig, facts: ScrapeFacts, watchdog: Watchdog) -> None:
        self.config, self.facts, self.watchdog = config, facts, watchdog
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
        since = self.watchdog.since(name)
        return None if since is None else f"still stuck reading since {time.monotonic() - since:.0f}s ago"

    def _kernel(self) -> None:
        self.kernel = _kernel_probe(self.facts)

    def _gather(self, collector: Gatherer) -> None:
        # a collector's facts come only from the host's files (a view's extras may read more)
        remember = getattr(collector, "remembered", False)
        section = gather(collector.name, self.facts, collector.gather, remember)
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
                self.watchdog.clear(name)  # the read came back: later scrapes may try again
                return False
        return True

    def abandon(self) -> tuple[dict[str, Section[Any]], ProbeResult | None, str | None]:
        """Stop waiting: what is done, and the step still reading (now marked stuck)."""
        with self._lock:
            self.abandoned = True
            if self.current is not None:
                self.watchdog.mark(self.current)
            return dict(self.sections), self.kernel, self.current


probe_workers = Workers("probe")


class Reading:
    """One reading of the host under way: the probes that run programs or talk to D-Bus
    start at once on workers of their own, the files are read on a reading worker.
    Whoever waits for it waits for each part until its own deadline: the files until
    `--scrape.timeout`, the probes until `--pm.probe-timeout` (and a small grace), then
    takes `snapshot()`: what is done, the same snapshot for every scrape that shares
    this reading."""

    def __init__(self, config: SnapshotConfig, watchdog: Watchdog = watchdog) -> None:
        self.config = config
        self.started = time.monotonic()
        self._probes = _start_probes(config)
        self._reading = _FileReading(config, ScrapeFacts(config.fs, config.memory), watchdog)
        # released when the files are read: the cheapest wait there is for one thread
        # on another (`files_read`); the future serves the event loop
        self._files_read = threading.Lock()
        self._files_read.acquire()
        self._files_finished = False
        self._files_error: BaseException | None = None
        self.files: futures.Future[None] = readers.submit(self._read_files)
        # The probes bound their own work by the timeout; the small grace lets a probe
        # that is killing a hung command reap it before the scrape moves on.
        probe_deadline = self.started + config.probe_timeout + 0.1
        self.parts: list[tuple[futures.Future[Any], float]] = [(self.files, self.started + config.timeout)]
        self.parts += [(future, probe_deadline) for _, future in self._probes]
        self.deadline = max(deadline for _, deadline in self.parts)
        self._snapshot: HostSnapshot | None = None
        self._lock = threading.Lock()
        self.shared = 0  # scrapes that joined this reading after it started

    def _read_files(self) -> None:
        try:
            self._reading.run()
        except BaseException as err:
            self._files_error = err
            raise
        finally:
            self._files_finished = True  # before the release: a waiter woken by it sees the files done
            self._files_read.release()

    def files_read(self, timeout: float) -> bool:
        """Wait in this thread until the files are read, for `timeout` at most."""
        if self._files_read.acquire(timeout=timeout):
            self._files_read.release()  # for any other waiter
            return True
        return False

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
        finished = self._files_finished  # the future is set a moment after
        failed = finished and self._files_error is not None
        if finished:
            done, kernel_result, stuck = self._reading.sections, self._reading.kernel, None
            if failed:  # a bug of ours: the collectors not read fail, the scrape answers
                log.error("reading failed", exc_info=self._files_error)
        else:
            done, kernel_result, stuck = self._reading.abandon()
        snapshot = HostSnapshot()
        timeout = self.config.timeout
        if finished and not failed and len(done) == len(self.config.collectors):
            snapshot.sections = dict(done)  # every collector read, in their order
        for collector in () if snapshot.sections else self.config.collectors:
            section = done.get(collector.name)
            if section is None:
                if failed:
                    why = "not read: the reading failed"
                elif collector.name == stuck:
                    why = f"stuck reading past the {timeout:g}s deadline"
                else:
                    why = f"not read: an earlier collector was stuck past the {timeout:g}s deadline"
                section = Section(None, why, timeout)
                failures.log(collector.name, why)
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
            probe_failures.log(name, error)
            return ProbeResult(name, error=error, duration=self.config.probe_timeout)
        err = future.exception()
        if err is not None:  # the probes catch their own errors; belt and braces
            return ProbeResult(name, error=f"{type(err).__name__}: {err}")
        return future.result()


def build_snapshot(config: SnapshotConfig, watchdog: Watchdog = watchdog) -> HostSnapshot:
    """One fresh reading of the host, waited for in this thread."""
    return Reading(config, watchdog).wait()


Key = tuple[tuple[str, ...], tuple[str, ...]]  # the collectors and probes of a reading
_KINDS_KEPT = 32  # readings of other kinds kept (finished) before they are swept


class GivenSnapshot:
    """Readings that are one snapshot taken already (one-shot outputs render the one
    reading they print)."""

    def __init__(self, snapshot: HostSnapshot) -> None:
        self.snapshot = snapshot

    def start(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> Reading:
        raise NotImplementedError("a snapshot taken already is rendered, not read")

    def read(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> HostSnapshot:
        return self.snapshot


class SharedReadings:
    """Readings of the host for scrapes.  A scrape that arrives while an equal reading
    (the same collectors and probes) is still in flight shares it; a reading that has
    finished, or whose deadline has passed, is never shared: the next scrape starts its
    own.  So no answer comes from a reading that finished before the scrape arrived."""

    def __init__(self, config: SnapshotConfig, watchdog: Watchdog = watchdog) -> None:
        self.config = config
        self.watchdog = watchdog
        self._running: dict[Key, Reading] = {}
        self._configs: dict[Key, SnapshotConfig] = {}
        self._lock = threading.Lock()
        self.shared = 0  # scrapes answered from a reading already in flight

    def start(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> Reading:
        key = (tuple(c.name for c in collectors), probes)
        with self._lock:
            pending = self._running.get(key)
            if pending is not None and not pending.done() and time.monotonic() < pending.deadline:
                self.shared += 1
                pending.shared += 1
                log.debug("sharing a reading in flight", extra={"collectors": len(collectors)})
                return pending
            config = self._configs.get(key)
            if config is None:  # one per set of collectors and probes (the name[] filters make a few)
                config = replace(self.config, collectors=tuple(collectors), probes=probes)
                if len(self._configs) < 256:
                    self._configs[key] = config
            # the reading before it, done by now or past its deadline, is let go here, and
            # so are those of other kinds once they are many (each name[] filter is a kind)
            if len(self._running) >= _KINDS_KEPT:
                now = time.monotonic()
                self._running = {k: r for k, r in self._running.items() if not r.done() and now < r.deadline}
            pending = self._running[key] = Reading(config, self.watchdog)
        return pending

    def read(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> HostSnapshot:
        return self.start(collectors, probes).wait()


def _start_probes(config: SnapshotConfig) -> list[tuple[str, futures.Future[ProbeResult]]]:
    if config.probes in ((), ("kernel",)):
        return []  # the kernel probe reads files, with the collectors
    timeout = config.probe_timeout
    path = config.pm_is_supported
    runners: dict[str, Callable[[], ProbeResult]] = {
        "pm-utils": lambda: pmutils.run(path, timeout),
        "logind": lambda: logind.run(timeout),
    }
    return [(name, probe_workers.submit(run)) for name, run in runners.items() if name in config.probes]


def _kernel_probe(facts: ScrapeFacts) -> ProbeResult:
    """The kernel's answers, from the same power facts the collectors share."""
    start = time.perf_counter()
    try:
        facts_ = facts.power()
    except BAD_INPUT as err:
        return ProbeResult("kernel", error=str(err), duration=time.perf_counter() - start)
    except Exception as err:  # a bug of ours costs the kernel probe, not the scrape
        log.exception("kernel probe failed")
        return ProbeResult("kernel", error=f"{type(err).__name__}: {err}", duration=time.perf_counter() - start)
    return kernel.answer(facts_, time.perf_counter() - start)
