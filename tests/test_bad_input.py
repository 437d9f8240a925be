"""Garbage or unreadable files: the scrape still answers, the affected collector reports
success 0, the others are unaffected, and nothing wrong is called supported."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import fixture_args, need_root, need_tool, samples, scrape


def assert_power_failed_lockdown_ok(got: dict[str, float]) -> None:
    assert got['host_exporter_collector_success{collector="power"}'] == 0
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 1
    assert got['host_pm_lockdown_info{level="none"}'] == 1
    assert not any(k.startswith("host_pm_supported") for k in got), "no verdict from garbage"
    assert got['host_pm_probe_success{probe="kernel"}'] == 0
    assert not any(k.startswith("host_pm_probe_supported") and 'probe="kernel"' in k for k in got)


def no_reader_bug(caplog: pytest.LogCaptureFixture) -> None:
    """Bad input is not a bug of ours: nothing was logged with a stack."""
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


@pytest.mark.parametrize(
    ("relpath", "content"),
    [
        ("sys/power/state", b"\xff\xfe\x00\x01garbage"),
        ("sys/power/state", b"freeze mem disk [weird]\n"),
        ("sys/power/mem_sleep", b"[s2idle] [deep]\n"),
        ("sys/power/mem_sleep", b"s2idle deep\n"),
        ("sys/power/disk", b"platform shutdown\n"),
    ],
)
def test_garbage_in_a_power_file(
    host_copy: Callable[..., Path], caplog: pytest.LogCaptureFixture, relpath: str, content: bytes
) -> None:
    root = host_copy()
    (root / relpath).write_bytes(content)
    caplog.set_level("DEBUG", logger="host_pm_exporter")
    assert_power_failed_lockdown_ok(samples(scrape(root)))
    no_reader_bug(caplog)
    reasons = {getattr(r, "reason", "") for r in caplog.records if getattr(r, "collector", "") == "power"}
    assert len(reasons) == 1
    assert reasons.pop().startswith(f"{root / relpath}: "), "the error names the file"


def test_a_directory_where_a_file_should_be(host_copy: Callable[..., Path]) -> None:
    root = host_copy()
    lockdown = root / "sys/kernel/security/lockdown"
    lockdown.unlink()
    lockdown.mkdir()
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 0
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1


@pytest.mark.parametrize("number", ["--1", "\u00b2", "1" * 5000, "", "12 kB", "0x10"])
def test_a_bad_number_fails_its_collector_and_names_the_file(
    host_copy: Callable[..., Path], caplog: pytest.LogCaptureFixture, number: str
) -> None:
    root = host_copy()
    (root / "sys/power/suspend_stats/success").write_text(number + "\n")
    caplog.set_level("DEBUG", logger="host_pm_exporter")
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="suspend"}'] == 0
    assert got['host_exporter_collector_success{collector="idle"}'] == 1
    assert "host_pm_suspend_failures_total" not in got
    reasons = [getattr(r, "reason", "") for r in caplog.records if getattr(r, "collector", "") == "suspend"]
    assert any("suspend_stats/success: not a non-negative integer" in reason for reason in reasons), reasons
    no_reader_bug(caplog)


def as_nobody() -> list[str]:
    need_root()
    setpriv = need_tool("setpriv", "util-linux")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unreadable_lockdown_file_fails_only_lockdown(host_copy: Callable[..., Path], exporter: Any) -> None:
    root = host_copy()
    (root / "sys/kernel/security/lockdown").chmod(0o000)
    exp = exporter([*fixture_args(root), "--pm.probes=kernel"], prefix=as_nobody())
    got = samples(exp.scrape())
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 0
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1
    assert not any(k.startswith("host_pm_lockdown_info") for k in got)


def test_unreadable_power_directory_fails_only_power(host_copy: Callable[..., Path], exporter: Any) -> None:
    root = host_copy()
    (root / "sys/power").chmod(0o000)
    exp = exporter([*fixture_args(root), "--pm.probes=kernel"], prefix=as_nobody())
    status, _, body = exp.get("/metrics")
    assert status == 200
    assert_power_failed_lockdown_ok(samples(body.decode()))
    assert "Traceback" not in exp.stderr()


def test_missing_files_mean_absent_not_failure(host_copy: Callable[..., Path]) -> None:
    root = host_copy()
    shutil.rmtree(root / "sys")
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 1
    assert all(got[f'host_pm_supported{{state="{s}"}}'] == 0 for s in ("S1", "S2idle", "S3", "S4"))
    assert not any(k.startswith("host_pm_mem_sleep_mode_info") for k in got)
