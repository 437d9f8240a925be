"""The pm-utils probe against the real ``pm-is-supported`` (Debian pm-utils), each fixture
host's /sys/power mounted over the real one in a private mount namespace.

Every host is asked four ways: the script's three real calls, and the probe in one
process (pm-functions sourced once), in three, and as a scrape asks (one process
when the script is pm-utils' own): all must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, PM_HOSTS, expected, need_root, need_tool, samples

PM_IS_SUPPORTED = "/usr/bin/pm-is-supported"
PM_FUNCTIONS = "/usr/lib/pm-utils/pm-functions"

# /sys/power trees the fixture hosts do not have, for pm-functions' other branches:
# suspend by "standby" alone, hibernation without "suspend" in /sys/power/disk (then
# hybrid sleep only by the RTC wake alarm), no suspend at all.
SYNTHETIC: dict[str, dict[str, str]] = {
    "mem-only": {"sys/power/state": "freeze mem\n"},
    "standby-only": {"sys/power/state": "standby\n"},
    "disk-only": {"sys/power/state": "disk\n", "sys/power/disk": "[shutdown] reboot\n"},
    "hybrid-by-rtc": {
        "sys/power/state": "freeze mem disk\n",
        "sys/power/disk": "[platform] shutdown reboot\n",
        "sys/class/rtc/rtc0/wakealarm": "\n",
        "sys/class/rtc/rtc0/since_epoch": "1700000000\n",
    },
    "no-hybrid-without-rtc": {
        "sys/power/state": "freeze mem disk\n",
        "sys/power/disk": "[platform] shutdown reboot\n",
    },
    "nothing": {"sys/power/state": "\n"},
}


def in_namespace(root: Path, mode: str, *args: str) -> list[str]:
    unshare = need_tool("unshare", "util-linux")
    need_root()
    need_tool("pm-is-supported", "pm-utils")
    outer = os.readlink("/proc/self/ns/mnt")
    return [
        unshare, "-m", "--propagation", "private",
        sys.executable, "-m", "tests.helpers.pm_namespace", str(root), outer, mode, *args,
    ]  # fmt: skip


def ask(host: str | Path, *args: str) -> dict[str, Any]:
    root = host if isinstance(host, Path) else FIXTURES / host
    cmd = in_namespace(root, "ask", PM_IS_SUPPORTED, *args)
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=60, cwd=FIXTURES.parent.parent)
    answers: dict[str, Any] = json.loads(out.stdout)
    return answers


def assert_every_way_agrees(got: dict[str, Any]) -> dict[str, bool]:
    """The real calls' answers, after checking that each way of asking gives them."""
    assert all(code in (0, 1) for code in got["real_exit_codes"].values()), got
    real = {op: code == 0 for op, code in got["real_exit_codes"].items()}
    assert got["recognised"] == PM_FUNCTIONS
    for way in ("together", "separately", "auto"):
        assert got[way] == {"answers": real, "error": None}, way
    return real


@pytest.mark.parametrize("host", PM_HOSTS)
def test_probe_answers_equal_the_real_scripts_exit_codes(host: str) -> None:
    real = assert_every_way_agrees(ask(host))
    # and both equal what pm-utils' logic gives, worked out by hand for the fixture
    assert {op: int(v) for op, v in real.items()} == expected(host)["pm_utils"]


@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_one_process_answers_equal_the_real_scripts_on_other_branches(tmp_path: Path, case: str) -> None:
    for name, text in SYNTHETIC[case].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    real = assert_every_way_agrees(ask(tmp_path))
    if case == "hybrid-by-rtc":
        assert real == {"suspend": True, "hibernate": True, "suspend_hybrid": True}
    if case == "no-hybrid-without-rtc":
        assert real == {"suspend": True, "hibernate": True, "suspend_hybrid": False}


def test_with_configuration_files_the_probe_asks_separately(tmp_path: Path) -> None:
    """A file in /etc/pm/config.d is sourced with the call's own argument in $1, so
    its effect may differ per call: the one-process form declines, and the probe
    gives the three real calls' answers."""
    config = tmp_path / "config.d"
    config.mkdir()
    (config / "hibernate-only-when-asked").write_text('[ "$1" = --hibernate ] && HIBERNATE_MODULE=configured\n')
    got = ask("vm-cloud", str(config))
    assert got["real_exit_codes"] == {"suspend": 1, "hibernate": 0, "suspend_hybrid": 1}
    assert got["together"]["answers"] == {}
    assert "configuration files" in got["together"]["error"]
    for way in ("separately", "auto"):
        assert got[way] == {"answers": {"suspend": False, "hibernate": True, "suspend_hybrid": False}, "error": None}


def test_pm_utils_and_the_decision_table_disagree_on_the_s2idle_laptop(exporter: Any) -> None:
    """pm-utils says "suspend" because /sys/power/state lists mem; the laptop has no S3."""
    cmd = in_namespace(FIXTURES / "laptop-s2idle", "exec")
    exp = exporter(["--pm.probes=kernel,pm-utils", "--web.disable-exporter-metrics"], prefix=cmd)
    got = samples(exp.scrape())
    assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 1
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 0
    assert got['host_pm_supported{state="S2idle"}'] == 1
    assert got['host_pm_mem_sleep_mode_info{default="true",mode="s2idle"}'] == 1


def test_pm_utils_agrees_with_the_table_where_s3_is_real(exporter: Any) -> None:
    cmd = in_namespace(FIXTURES / "server-s3", "exec")
    exp = exporter(["--pm.probes=kernel,pm-utils", "--web.disable-exporter-metrics"], prefix=cmd)
    got = samples(exp.scrape())
    assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1


def test_pm_utils_calls_shallow_suspend_suspend_too() -> None:
    got = ask("standby-shallow")
    assert got["auto"]["answers"]["suspend"] is True
    assert expected("standby-shallow")["supported"]["S3"] == 0
