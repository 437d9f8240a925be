"""Scrapes that arrive while a reading of the host is in flight share it; a reading that
has finished is never used again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.workers import InFlight
from tests.conftest import fake_pm_is_supported, fixture_args, samples, start_exporter, wait_until


def test_a_call_arriving_while_an_equal_one_runs_shares_its_result() -> None:
    shared = InFlight()
    release = threading.Event()
    started = threading.Event()
    joined = threading.Event()
    runs: list[int] = []
    results: dict[str, object] = {}

    def reading() -> object:
        runs.append(1)
        started.set()
        assert release.wait(10)
        return object()

    first = threading.Thread(target=lambda: results.setdefault("first", shared.run("all", reading)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.setdefault("second", shared.run("all", reading, joined.set)))
    second.start()
    assert joined.wait(10), "the second call joined the one in flight"
    release.set()
    first.join(10)
    second.join(10)
    assert len(runs) == 1
    assert results["first"] is results["second"]
    # finished: the next call reads anew, even with the same key
    release.set()
    third = shared.run("all", reading)
    assert len(runs) == 2
    assert third is not results["first"]


def test_calls_with_other_keys_do_not_share_and_errors_reach_every_sharer() -> None:
    shared = InFlight()
    release = threading.Event()
    started = threading.Event()
    joined = threading.Event()
    errors: list[BaseException] = []

    def failing() -> object:
        started.set()
        assert release.wait(10)
        raise RuntimeError("read failed")

    def call(notify: Any = lambda: None) -> None:
        try:
            shared.run("all", failing, notify)
        except RuntimeError as err:
            errors.append(err)

    threads = [threading.Thread(target=call)]
    threads[0].start()
    assert started.wait(10)
    threads.append(threading.Thread(target=call, args=(joined.set,)))
    threads[1].start()
    assert joined.wait(10)
    assert shared.run("other", lambda: 7) == 7, "another key runs at once, beside the one in flight"
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 2
    assert errors[0] is errors[1]


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
