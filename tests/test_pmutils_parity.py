"""The pm-utils probe against the real ``pm-is-supported`` (Debian pm-utils), each fixture
host's /sys/power mounted over the real one in a private mount namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import FIXTURES, PM_HOSTS, expected, need_root, need_tool, samples

PM_IS_SUPPORTED = "/usr/bin/pm-is-supported"


def in_namespace(host: str, mode: str, *args: str) -> list[str]:
    unshare = need_tool("unshare", "util-linux")
    need_root()
    need_tool("pm-is-supported", "pm-utils")
    outer = os.readlink("/proc/self/ns/mnt")
    return [
        unshare, "-m", "--propagation", "private",
        sys.executable, "-m", "tests.helpers.pm_namespace", str(FIXTURES / host), outer, mode, *args,
    ]  # fmt: skip


def ask(host: str) -> dict[str, Any]:
    cmd = in_namespace(host, "ask", PM_IS_SUPPORTED)
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=60, cwd=FIXTURES.parent.parent)
    answers: dict[str, Any] = json.loads(out.stdout)
    return answers


@pytest.mark.parametrize("host", PM_HOSTS)
def test_probe_answers_equal_the_real_scripts_exit_codes(host: str) -> None:
    got = ask(host)
    assert got["probe_error"] is None
    real = {op: code == 0 for op, code in got["real_exit_codes"].items()}
    assert all(code in (0, 1) for code in got["real_exit_codes"].values())
    assert got["probe_answers"] == real
    # and both equal what pm-utils' logic gives, worked out by hand for the fixture
    assert {op: int(v) for op, v in real.items()} == expected(host)["pm_utils"]


def test_pm_utils_and_the_decision_table_disagree_on_the_s2idle_laptop(exporter: Any) -> None:
    """pm-utils says "suspend" because /sys/power/state lists mem; the laptop has no S3."""
    cmd = in_namespace("laptop-s2idle", "exec")
    exp = exporter(["--pm.probes=kernel,pm-utils", "--web.disable-exporter-metrics"], prefix=cmd)
    got = samples(exp.scrape())
    assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 1
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 0
    assert got['host_pm_supported{state="S2idle"}'] == 1
    assert got['host_pm_mem_sleep_mode_info{default="true",mode="s2idle"}'] == 1


def test_pm_utils_agrees_with_the_table_where_s3_is_real(exporter: Any) -> None:
    cmd = in_namespace("server-s3", "exec")
    exp = exporter(["--pm.probes=kernel,pm-utils", "--web.disable-exporter-metrics"], prefix=cmd)
    got = samples(exp.scrape())
    assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1


def test_pm_utils_calls_shallow_suspend_suspend_too() -> None:
    got = ask("standby-shallow")
    assert got["probe_answers"]["suspend"] is True
    assert expected("standby-shallow")["supported"]["S3"] == 0
