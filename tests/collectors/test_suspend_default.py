"""Which state a plain suspend enters (host_pm_default_suspend_state) beside whether S3
is ready (host_pm_ready), in the metrics, --explain and the status page; and a probe
whose tool is absent, a state of its own (host_pm_probe_tool_present), not a failure.

The mem_sleep contents follow Documentation/admin-guide/pm/sleep-states.rst (the
selected mode in brackets; ``mem_sleep_default=s2idle`` or the firmware picks it) and
Documentation/ABI/testing/sysfs-power (/sys/power/mem_sleep)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import exporter_command, fake_pm_is_supported, fixture_args, http_get, samples, scrape

HOW_TO_DEEP = "S3 available with mem_sleep_default=deep (kernel command line) or systemd MemorySleepMode=deep"


def entered(text: str) -> dict[str, float]:
    return {k: v for k, v in samples(text).items() if k.startswith("host_pm_default_suspend_state")}


@pytest.mark.parametrize(
    ("mem_sleep", "expected"),
    [
        ("[s2idle] deep\n", "S2idle"),
        ("s2idle [deep]\n", "S3"),
        ("s2idle shallow [deep]\n", "S3"),
        ("s2idle [shallow] deep\n", "S1"),
        ("[s2idle]\n", "S2idle"),
    ],
)
def test_the_state_a_plain_suspend_enters_follows_the_selected_mem_sleep_mode(
    host_copy: Any, mem_sleep: str, expected: str
) -> None:
    root = host_copy("server-s3")
    (root / "sys/power/mem_sleep").write_text(mem_sleep)
    text = scrape(root)
    assert entered(text) == {f'host_pm_default_suspend_state{{state="{expected}"}}': 1}
    got = samples(text)
    # host_pm_ready says S3 can be entered; the new metric says whether suspend enters it
    assert got['host_pm_ready{state="S3"}'] == float("deep" in mem_sleep)


def test_kernels_without_mem_sleep_and_hosts_without_suspend() -> None:
    # freeze standby mem disk, no mem_sleep: mem is S3 before 4.10
    assert entered(scrape("old-kernel")) == {'host_pm_default_suspend_state{state="S3"}': 1}
    assert entered(scrape("vm-cloud")) == {}  # nothing to enter: no sample, not a guess


def test_an_unreadable_mem_sleep_leaves_the_state_unknown(host_copy: Any) -> None:
    root = host_copy("server-s3")
    (root / "sys/power/mem_sleep").write_text("s2idle deep\n")  # no selected mode: unparseable
    assert entered(scrape(root)) == {}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exporter_command(), *args], capture_output=True, text=True, timeout=60, check=False,
                          env=env)  # fmt: skip


def test_explain_says_suspend_enters_s2idle_and_how_to_get_s3(host_copy: Any) -> None:
    root = host_copy("server-s3")
    (root / "sys/power/mem_sleep").write_text("[s2idle] deep\n")
    result = run(*fixture_args(root), "--pm.probes=kernel", "--explain")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "S3 (suspend to RAM): yes — but a plain suspend enters another state (see Suspend)" in lines
    (suspend,) = [line for line in lines if line.startswith("Suspend: ")]
    assert suspend.startswith("Suspend: enters s2idle by default; " + HOW_TO_DEEP)
    assert "echo deep > /sys/power/mem_sleep" in suspend
    healthy = run(*fixture_args("server-s3"), "--pm.probes=kernel", "--explain").stdout.splitlines()
    assert "Suspend: enters S3 by default" in healthy
    assert "S3 (suspend to RAM): yes" in healthy
    laptop = run(*fixture_args("laptop-s2idle"), "--pm.probes=kernel", "--explain").stdout.splitlines()
    assert "Suspend: enters s2idle by default" in laptop  # no S3 to offer: no advice


def test_the_status_page_says_it_too(host_copy: Any, exporter: Any) -> None:
    root = host_copy("server-s3")
    (root / "sys/power/mem_sleep").write_text("[s2idle] deep\n")
    exp = exporter([*fixture_args(root), "--pm.probes=kernel"])
    page = http_get(f"http://127.0.0.1:{exp.port}/")
    assert "enters s2idle by default; " + HOW_TO_DEEP in page
    assert "but a plain suspend enters another state" in page
    # a live change is seen on the next scrape
    (root / "sys/power/mem_sleep").write_text("s2idle [deep]\n")
    assert entered(exp.scrape()) == {'host_pm_default_suspend_state{state="S3"}': 1}


# --- a probe whose tool is absent ------------------------------------------------------


def test_absent_pm_utils_is_its_own_state_not_a_failure(tmp_path: Path) -> None:
    got = samples(scrape("server-s3", "--pm.probes=kernel,pm-utils", f"--pm.pm-is-supported={tmp_path / 'none'}"))
    assert got['host_pm_probe_tool_present{probe="pm-utils"}'] == 0
    assert 'host_pm_probe_success{probe="pm-utils"}' not in got
    assert got['host_pm_probe_tool_present{probe="kernel"}'] == 1
    assert got['host_pm_probe_success{probe="kernel"}'] == 1


def test_an_absent_tool_is_said_as_such_in_words_and_in_the_log(tmp_path: Path) -> None:
    """--explain and the log say the tool is not installed, not that the probe failed;
    a present tool that fails is still a failure in both."""
    import subprocess
    import sys

    def run(tool: Path) -> subprocess.CompletedProcess[str]:
        args = [*fixture_args("server-s3"), "--pm.probes=kernel,pm-utils", f"--pm.pm-is-supported={tool}"]
        return subprocess.run(
            [sys.executable, "-m", "host_pm_exporter", *args, "--explain"], capture_output=True, text=True, check=False
        )

    absent = run(tmp_path / "none")
    assert "probe pm-utils: its tool is not installed" in absent.stdout
    assert "could not answer" not in absent.stdout
    assert "probe tool absent" in absent.stderr
    assert "probe failed" not in absent.stderr
    failing = run(fake_pm_is_supported(tmp_path, "exit 2"))
    assert "probe pm-utils could not answer" in failing.stdout
    assert "probe failed" in failing.stderr


def test_a_present_pm_utils_that_fails_is_a_failure(tmp_path: Path) -> None:
    broken = fake_pm_is_supported(tmp_path, "exit 2")
    got = samples(scrape("server-s3", "--pm.probes=kernel,pm-utils", f"--pm.pm-is-supported={broken}"))
    assert got['host_pm_probe_tool_present{probe="pm-utils"}'] == 1
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 0


def test_no_system_bus_socket_is_an_absent_logind(tmp_path: Path, exporter: Any) -> None:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'none'}"}
    exp = exporter([*fixture_args("laptop-s2idle"), "--pm.probes=kernel,logind"], env=env)
    got = samples(exp.scrape())
    assert got['host_pm_probe_tool_present{probe="logind"}'] == 0
    assert 'host_pm_probe_success{probe="logind"}' not in got


def test_a_bus_socket_that_does_not_answer_is_a_failed_logind(tmp_path: Path, exporter: Any) -> None:
    not_a_socket = tmp_path / "bus"
    not_a_socket.write_text("")  # present, but nothing listens: connection refused
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={not_a_socket}"}
    exp = exporter([*fixture_args("laptop-s2idle"), "--pm.probes=kernel,logind"], env=env)
    got = samples(exp.scrape())
    assert got['host_pm_probe_tool_present{probe="logind"}'] == 1
    assert got['host_pm_probe_success{probe="logind"}'] == 0
