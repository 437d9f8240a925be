"""Scrapes that arrive while a reading of the host is in flight share it; a reading that
has finished is never used again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import pytest

from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.reading import SharedReadings, SnapshotConfig, Watchdog
from tests.conftest import fake_pm_is_supported, fixture_args, samples, start_exporter, wait_until


class Blocking:
    """A collector whose reading waits for `release`, counting its readings."""

    def __init__(self, name: str = "blocking") -> None:
        self.name = name
        self.release = threading.Event()
        self.started = threading.Event()
        self.reads = 0

    @property
    def gather(self) -> Callable[[ScrapeFacts], object]:
        def read(_scrape: ScrapeFacts) -> object:
            self.reads += 1
            self.started.set()
            assert self.release.wait(10)
            return object()

        return read


def readings_of(*collectors: Blocking) -> SharedReadings:
    return SharedReadings(SnapshotConfig(fs=HostFS("/nonexistent", "/nonexistent"), collectors=collectors, probes=()))


def test_a_scrape_arriving_while_an_equal_reading_runs_shares_it() -> None:
    blocking = Blocking()
    readings = readings_of(blocking)
    first = readings.start([blocking], ())
    assert blocking.started.wait(10)
    second = readings.start([blocking], ())
    assert second is first, "the reading in flight is shared"
    assert readings.shared == 1
    blocking.release.set()
    snap = first.wait()
    assert second.wait() is snap
    assert blocking.reads == 1
    # finished: the next scrape reads anew
    third = readings.start([blocking], ())
    assert third is not first
    assert third.wait() is not snap
    assert blocking.reads == 2


def test_other_collectors_or_probes_read_on_their_own() -> None:
    one, two = Blocking("one"), Blocking("two")
    readings = readings_of(one, two)
    first = readings.start([one], ())
    assert one.started.wait(10)
    assert readings.start([two], ()) is not first
    assert readings.start([one], ("kernel",)) is not first
    one.release.set()
    two.release.set()
    assert readings.shared == 0


def test_a_reading_past_its_deadline_is_not_shared() -> None:
    blocking = Blocking()
    config = SnapshotConfig(
        fs=HostFS("/nonexistent", "/nonexistent"), collectors=(blocking,), probes=(), timeout=0.2, probe_timeout=0.0
    )
    readings = SharedReadings(config, Watchdog())
    first = readings.start([blocking], ())
    snap = first.wait()  # gives up at the deadline
    assert not snap.sections["blocking"].ok
    second = readings.start([blocking], ())
    assert second is not first, "a reading past its deadline is never shared"
    blocking.release.set()
    second.wait()


@pytest.fixture
def slow_pm_utils(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A pm-is-supported that logs each call, then waits for a release file."""
    log, release = tmp_path / "calls.log", tmp_path / "release"
    script = fake_pm_is_supported(
        tmp_path,
        f'echo "$1" >> {log}\n'
        f"i=0; while [ ! -e {release} ] && [ $i -lt 400 ]; do sleep 0.025; i=$((i+1)); done\n"
        "exit 1",
    )
    return script, log, release


def calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_two_scrapes_at_once_cost_one_reading_and_the_next_reads_anew(
    tmp_path: Path, slow_pm_utils: tuple[Path, Path, Path]
) -> None:
    script, log, release = slow_pm_utils
    exporter = start_exporter(
        [*fixture_args("server-s3"), "--pm.probes=kernel,pm-utils", f"--pm.pm-is-supported={script}",
         "--pm.probe-timeout=15s", "--log.level=debug"],
        tmp_path,
    )  # fmt: skip
    try:
        bodies: list[str] = []
        scrapes = [threading.Thread(target=lambda: bodies.append(exporter.scrape())) for _ in range(2)]
        scrapes[0].start()
        wait_until(lambda: calls(log) == 3, "the first scrape's probe running (three calls: a stand-in script)")
        scrapes[1].start()
        wait_until(lambda: "sharing a reading in flight" in exporter.stderr(), "the second scrape joining it")
        release.touch()
        for thread in scrapes:
            thread.join(30)
        assert len(bodies) == 2
        assert calls(log) == 3, "one reading for both scrapes"
        for body in bodies:
            got = samples(body)
            assert got['host_pm_probe_success{probe="pm-utils"}'] == 1
            assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 0
        exporter.scrape()
        assert calls(log) == 6, "a finished reading is never reused: the next scrape asks again"
    finally:
        release.touch()
        exporter.stop()


def test_the_files_are_given_up_at_the_scrape_timeout_even_when_the_probes_may_take_longer(tmp_path: Path) -> None:
    blocking = Blocking()
    quick = fake_pm_is_supported(tmp_path, "exit 1")
    config = SnapshotConfig(
        fs=HostFS("/nonexistent", "/nonexistent"),
        collectors=(blocking,),
        probes=("pm-utils",),
        timeout=0.2,
        probe_timeout=30.0,
        pm_is_supported=str(quick),
    )
    watchdog = Watchdog()
    reading = SharedReadings(config, watchdog).start([blocking], ("pm-utils",))
    try:
        snap = reading.wait()
        assert blocking.reads == 1
        assert not blocking.release.is_set(), "answered while the collector was still reading"
        assert snap.sections["blocking"].error == "stuck reading past the 0.2s deadline"
        assert watchdog.since("blocking") is not None
        assert [p.probe for p in snap.probes] == ["pm-utils"]
        assert snap.probes[0].success, "the probe had its own, longer deadline"
    finally:
        blocking.release.set()
    reading.files.result(10)
    assert reading.snapshot() is snap, "every sharer gets the same snapshot, also after the read returns"


def test_an_unexpected_error_costs_the_kernel_probe_not_the_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    from host_pm_exporter import facts, reading
    from host_pm_exporter.cli import parse_config

    def broken(_fs: object) -> object:
        raise ValueError("a bug")

    monkeypatch.setattr(facts, "read_sleep_files", broken)
    config = parse_config([*fixture_args("server-s3"), "--pm.probes=kernel"]).snapshot
    snap = reading.build_snapshot(config)
    kernel = {p.probe: p for p in snap.probes}["kernel"]
    assert kernel.error == "ValueError: a bug"
    assert not snap.sections["power"].ok
    assert snap.sections["numa"].ok, "the other collectors still report"


def test_readings_of_many_kinds_are_let_go_when_done() -> None:
    """Every name[] filter a client sends is a kind of reading: the finished ones are
    not kept without bound, while one in flight stays to be shared."""
    from host_pm_exporter.collectors import REGISTRY
    from host_pm_exporter.reading import _KINDS_KEPT

    readings = SharedReadings(SnapshotConfig(fs=HostFS("/nonexistent", "/nonexistent"), probes=()))
    blocking = Blocking()
    in_flight = readings.start([blocking], ())
    assert blocking.started.wait(10)
    for mask in range(1, 300):  # 299 kinds: sets of collectors
        chosen = [c for i, c in enumerate(REGISTRY) if mask >> i & 1]
        readings.read(chosen, ())
        assert len(readings._running) <= _KINDS_KEPT + 1
    assert readings.start([blocking], ()) is in_flight, "the reading in flight is still shared"
    blocking.release.set()
    in_flight.wait()
