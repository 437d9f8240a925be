"""Reads that cannot hang or blow up: only regular files, bounded sizes and CPU lists,
a deadline on the whole reading of the host, and bad input logged once, as bad input."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.collectors import BY_NAME
from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.facts import HostSnapshot
from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.probes import failures
from host_pm_exporter.reading import GivenSnapshot, SnapshotConfig, Watchdog, build_snapshot
from tests.conftest import samples, scrape, series


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    start = time.monotonic()
    with pytest.raises(ReadError, match="not a regular file"):
        HostFS(procfs=str(tmp_path)).read(str(tmp_path / "fifo"))
    assert time.monotonic() - start < 0.5


def test_a_huge_sysfs_file_is_refused_fast(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"1" * (10 << 20))
    start = time.monotonic()
    with pytest.raises(ReadError, match="not a kernel file"):
        HostFS(sysfs=str(tmp_path)).read(str(tmp_path / "big"))
    assert time.monotonic() - start < 0.5


def test_procfs_files_are_read_to_the_end_through_short_reads() -> None:
    """/proc/kallsyms is a seq file: every read returns one page or less."""
    path = "/proc/kallsyms"
    text = HostFS().read(path)
    assert text is not None
    assert len(text) > 100_000
    assert text == Path(path).read_text()


@pytest.mark.parametrize("content", ["0-65535," * 400, ",".join(str(n) for n in range(0, 40000, 2))])
def test_cpu_lists_beyond_any_kernel_fail_fast(host_copy: Callable[..., Path], content: str) -> None:
    root = host_copy("spr-2s")
    (root / "sys/devices/system/cpu/possible").write_text(content + "\n")
    start = time.monotonic()
    got = samples(scrape(root))
    assert time.monotonic() - start < 1.0
    # the possible mask is given up, no more: the present CPUs stand in for it
    assert got['host_exporter_collector_success{collector="topology"}'] == 1
    # too many CPUs (malformed) or more than a sysfs page can hold (unreadable)
    given_up = {k: v for k, v in got.items() if k.startswith('host_exporter_facts_given_up{collector="topology"')}
    assert list(given_up.values()) == [1]
    assert got['host_cpu_logical{state="possible"}'] == got['host_cpu_logical{state="present"}']
    assert got['host_exporter_collector_success{collector="cpu"}'] == 1


def test_a_non_utf8_byte_in_cpuinfo_costs_nothing(host_copy: Callable[..., Path]) -> None:
    root = host_copy("spr-2s")
    cpuinfo = root / "proc/cpuinfo"
    cpuinfo.write_bytes(cpuinfo.read_bytes().replace(b"Intel(R) Xeon(R)", b"Intel(R) Xe\xffon(R)"))
    text = scrape(root)
    assert samples(text)['host_exporter_collector_success{collector="cpu"}'] == 1
    assert series(text, "host_cpu_info")[0]["model_name"].startswith("Intel(R) Xe\ufffdon(R)")


def test_a_collector_past_the_deadline_reports_0_and_the_scrape_answers_on_time(tmp_path: Path) -> None:
    release = threading.Event()
    hung = Collector("hung", "reads a hung mount", gather=lambda s: release.wait(30), families=lambda _: [],
                     metrics=())  # fmt: skip
    collectors = (BY_NAME["lockdown"], hung, BY_NAME["suspend"])
    config = SnapshotConfig(fs=HostFS(str(tmp_path), str(tmp_path), str(tmp_path)), collectors=collectors,
                            probes=("kernel",), timeout=0.3)  # fmt: skip
    watchdog = Watchdog()
    try:
        start = time.monotonic()
        snap = build_snapshot(config, watchdog)
        assert time.monotonic() - start < 0.8
        assert snap.sections["lockdown"].ok
        assert "stuck reading past the 0.3s deadline" in (snap.sections["hung"].error or "")
        assert "earlier collector was stuck" in (snap.sections["suspend"].error or "")
        assert "hung stuck reading" in (watchdog.problem() or "")
        # the next scrape skips the stuck collector: one hung read holds one thread
        threads = threading.active_count()
        again = build_snapshot(config, watchdog)
        assert "still stuck" in (again.sections["hung"].error or "")
        assert again.sections["suspend"].ok
        assert threading.active_count() <= threads + 1
    finally:
        release.set()
    deadline = time.monotonic() + 2
    while watchdog.problem() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watchdog.problem() is None, "healthy again once the read returns"
    assert build_snapshot(config, watchdog).sections["hung"].ok


def test_bad_numbers_are_bad_input_logged_once(
    host_copy: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = host_copy()
    (root / "sys/power/suspend_stats/fail").write_text("--1\n")
    caplog.set_level(logging.DEBUG, logger="host_pm_exporter")
    for _ in range(3):
        scrape(root)
    records = [r for r in caplog.records if getattr(r, "collector", "") == "suspend"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert not any(r.exc_info for r in caplog.records), "not logged as a bug of ours"
    assert all(r.levelno < logging.ERROR for r in caplog.records)


def test_probe_failures_are_logged_once_per_reason_class(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="host_pm_exporter")
    for seconds in ("0.53", "0.61", "1.2"):
        failures.log("logind-test", f"no answer from D-Bus within {seconds}s")
    levels = [r.levelno for r in caplog.records if getattr(r, "probe", "") == "logind-test"]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_non_ascii_digits_in_cpuinfo_fail_only_the_cpu_collector(host_copy: Callable[..., Path]) -> None:
    root = host_copy("spr-2s")
    cpuinfo = root / "proc/cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace("processor\t: 1\n", "processor\t: \u00b9\n", 1))
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="cpu"}'] == 0
    for other in ("topology", "virt", "cache", "dvfs"):
        assert got[f'host_exporter_collector_success{{collector="{other}"}}'] == 1, other


def test_a_kernel_probe_stuck_in_sys_power_is_not_started_again(tmp_path: Path) -> None:
    watchdog = Watchdog()
    watchdog.mark("kernel probe")
    config = SnapshotConfig(fs=HostFS(str(tmp_path), str(tmp_path), str(tmp_path)), collectors=(BY_NAME["suspend"],),
                            probes=("kernel",), timeout=1.0)  # fmt: skip
    snap = build_snapshot(config, watchdog)
    (kernel,) = snap.probes
    assert "still stuck" in (kernel.error or "")
    assert snap.sections["suspend"].ok, "the collectors still run"


def test_healthz_says_503_with_the_reason_while_a_read_is_stuck() -> None:
    from host_pm_exporter.views.exposition import Exposition
    from host_pm_exporter.web import Routes

    watchdog = Watchdog()
    routes = Routes(Exposition(GivenSnapshot(HostSnapshot()), (), ()), "/metrics", health=watchdog.problem)
    healthy = routes.static("/healthz")
    assert healthy is not None
    assert (healthy.status, healthy.body) == (200, b"ok\n")
    watchdog.mark("numa")
    stuck = routes.static("/healthz")
    assert stuck is not None
    assert stuck.status == 503
    assert b"numa stuck reading" in stuck.body
    watchdog.clear("numa")
    assert routes.static("/healthz") == healthy
