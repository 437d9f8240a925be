"""Garbage or unreadable files: the scrape still answers 200, the affected collector
reports success 0, the others are unaffected, and nothing wrong is called supported."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, fixture_args, need_root, need_tool, samples


@pytest.fixture
def host_copy() -> Iterator[Path]:
    """A world-readable copy of the server-s3 fixture that a test may spoil."""
    top = Path(tempfile.mkdtemp(prefix="host-pm-bad-"))
    top.chmod(0o755)
    root = top / "host"
    shutil.copytree(FIXTURES / "server-s3", root, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    yield root
    shutil.rmtree(top)


def assert_power_failed_lockdown_ok(got: dict[str, float]) -> None:
    assert got['host_exporter_collector_success{collector="power"}'] == 0
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 1
    assert got['host_pm_lockdown_info{level="none"}'] == 1
    assert not any(k.startswith("host_pm_supported") for k in got), "no verdict from garbage"
    assert got['host_pm_probe_success{probe="kernel"}'] == 0
    assert not any(k.startswith("host_pm_probe_supported") and 'probe="kernel"' in k for k in got)


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
def test_garbage_in_a_power_file(host_copy: Path, exporter: Any, relpath: str, content: bytes) -> None:
    (host_copy / relpath).write_bytes(content)
    exp = exporter([*fixture_args(host_copy), "--pm.probes=kernel"])
    status, _, body = exp.get("/metrics")
    assert status == 200
    assert_power_failed_lockdown_ok(samples(body.decode()))
    assert "Traceback" not in exp.stderr()


def test_a_directory_where_a_file_should_be(host_copy: Path, exporter: Any) -> None:
    lockdown = host_copy / "sys/kernel/security/lockdown"
    lockdown.unlink()
    lockdown.mkdir()
    exp = exporter([*fixture_args(host_copy), "--pm.probes=kernel"])
    got = samples(exp.scrape())
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 0
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1


def as_nobody() -> list[str]:
    need_root()
    setpriv = need_tool("setpriv", "util-linux")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unreadable_lockdown_file_fails_only_lockdown(host_copy: Path, exporter: Any) -> None:
    (host_copy / "sys/kernel/security/lockdown").chmod(0o000)
    exp = exporter([*fixture_args(host_copy), "--pm.probes=kernel"], prefix=as_nobody())
    got = samples(exp.scrape())
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 0
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1
    assert not any(k.startswith("host_pm_lockdown_info") for k in got)


def test_unreadable_power_directory_fails_only_power(host_copy: Path, exporter: Any) -> None:
    (host_copy / "sys/power").chmod(0o000)
    exp = exporter([*fixture_args(host_copy), "--pm.probes=kernel"], prefix=as_nobody())
    status, _, body = exp.get("/metrics")
    assert status == 200
    assert_power_failed_lockdown_ok(samples(body.decode()))
    assert "Traceback" not in exp.stderr()


def test_missing_files_mean_absent_not_failure(host_copy: Path, exporter: Any) -> None:
    shutil.rmtree(host_copy / "sys")
    exp = exporter([*fixture_args(host_copy), "--pm.probes=kernel"])
    got = samples(exp.scrape())
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_exporter_collector_success{collector="lockdown"}'] == 1
    assert all(got[f'host_pm_supported{{state="{s}"}}'] == 0 for s in ("S1", "S2idle", "S3", "S4"))
    assert not any(k.startswith("host_pm_mem_sleep_mode_info") for k in got)
