"""Readiness, wake sources, DVFS and idle on every power fixture host, against the values
written by hand in expected.json; the ethtool path on a real interface."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter import hostfs
from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.readers.dvfs import read_dvfs
from tests.conftest import (
    FIXTURES,
    PM_HOSTS,
    by_label,
    expected,
    need_root,
    need_tool,
    samples,
    scrape,
    scrape_fixture,
    series,
)


@pytest.fixture(scope="module")
def scrapes() -> dict[str, str]:
    return {host: scrape_fixture(host) for host in PM_HOSTS}


@pytest.mark.parametrize("host", PM_HOSTS)
def test_ready_and_reasons(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)
    for state, value in want["ready"].items():
        assert got[f'host_pm_ready{{state="{state}"}}'] == value, state
        if value:
            assert not [d for d in series(scrapes[host], "host_pm_not_ready_reason_info") if d["state"] == state]
    reasons = [d["reason"] for d in series(scrapes[host], "host_pm_not_ready_reason_info") if d["state"] == "S4"]
    assert reasons == want["s4_reasons"]
    for state in ("hybrid", "suspend_then_hibernate"):  # they need S4 ready
        if not want["ready"]["S4"]:
            assert got[f'host_pm_ready{{state="{state}"}}'] == 0


@pytest.mark.parametrize("host", PM_HOSTS)
def test_readiness_facts(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)["readiness"]
    assert got["host_pm_efi_boot"] == want["efi"]
    assert got["host_pm_resume_configured"] == want["resume_configured"]
    assert got["host_pm_swap_free_bytes"] == want["swap_free_kb"] * 1024
    assert got["host_pm_hibernation_required_bytes"] == int(want["active_anon_kb"] * 1024 / 0.98)
    swaps = {
        d["device"]: [d["type"], d["usable"], d["reason"]] for d in series(scrapes[host], "host_pm_swap_device_info")
    }
    assert swaps == want["swaps"]


@pytest.mark.parametrize("host", PM_HOSTS)
def test_wake_sources(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)["wake"]
    assert by_label(scrapes[host], "host_pm_wakeup_devices", "subsystem") == want["devices"]
    assert by_label(scrapes[host], "host_pm_nic_wakeup_enabled", "interface") == want["nics"]
    for nic in series(scrapes[host], "host_pm_nic_wol_info"):
        assert nic["source"] == "sysfs"  # a fixture tree's interfaces are not this kernel's
    assert got["host_pm_wake_capable"] == want["capable"]


@pytest.mark.parametrize("host", PM_HOSTS)
def test_dvfs(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)["dvfs"]
    if want is None:
        assert not any(k.startswith("host_cpufreq_") for k in got)
        return
    assert series(scrapes[host], "host_cpufreq_driver_info") == [{"driver": want["driver"]}]
    assert by_label(scrapes[host], "host_cpufreq_governor_cpus", "governor") == want["governors"]
    assert by_label(scrapes[host], "host_cpufreq_epp_cpus", "preference") == want["epp"]
    assert [got["host_cpufreq_hardware_min_hertz"], got["host_cpufreq_hardware_max_hertz"]] == [
        khz * 1000 for khz in want["hardware_khz"]
    ]
    assert got.get("host_cpufreq_boost_enabled") == want["boost"]
    pstate = series(scrapes[host], "host_cpufreq_pstate_status_info")
    assert pstate == ([{"driver": want["pstate"][0], "status": want["pstate"][1]}] if want["pstate"] else [])


@pytest.mark.parametrize("host", PM_HOSTS)
def test_idle_and_suspend_stats(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)["idle"]
    assert series(scrapes[host], "host_cpuidle_driver_info") == [{"driver": want["driver"]}]
    assert series(scrapes[host], "host_cpuidle_governor_info") == [{"governor": want["governor"]}]
    states = {
        d["state"]: [
            round(got[f'host_cpuidle_state_exit_latency_seconds{{state="{d["state"]}"}}'] * 1e6),
            round(got[f'host_cpuidle_state_target_residency_seconds{{state="{d["state"]}"}}'] * 1e6),
        ]
        for d in series(scrapes[host], "host_cpuidle_state_exit_latency_seconds")
    }
    assert states == want["states"]
    for key, value in want["suspend"].items():
        metric = "host_pm_suspend_success_total" if key == "success" else "host_pm_suspend_failures_total"
        assert got[metric] == value
    if not want["suspend"]:
        assert "host_pm_suspend_success_total" not in got
    last = series(scrapes[host], "host_pm_suspend_last_failed_info")
    assert last == ([{"step": want["last_failed"][0], "device": want["last_failed"][1]}] if want["last_failed"] else [])


def test_c_states_are_read_from_one_cpu(host_copy: Callable[..., Path]) -> None:
    root = host_copy()
    (root / "sys/devices/system/cpu/cpu1/cpuidle/state0").mkdir(parents=True)
    (root / "sys/devices/system/cpu/cpu1/cpuidle/state0/name").write_text("garbage-only-on-cpu1\n")
    text = scrape(root)
    assert "garbage-only-on-cpu1" not in text
    assert not series(text, "host_cpu_logical")  # no topology in this tree: still no per-CPU series


# --- the ethtool ioctl on a real interface -------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    need_root()
    ip = need_tool("ip", "iproute2")
    name = f"hpm{uuid.uuid4().hex[:8]}"
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        subprocess.run(
            [ip, "netns", "exec", name, ip, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"], check=True
        )
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], check=False)


_ASK_WOL = (
    "from host_pm_exporter.readers.wake import ethtool_wol\n"
    "print(ethtool_wol('veth0'), ethtool_wol('lo'), ethtool_wol('nope0'))\n"
)


def ask_in_netns(netns: str, *prefix: str, code: str = _ASK_WOL) -> str:
    ip = need_tool("ip", "iproute2")
    result = subprocess.run(
        [ip, "netns", "exec", netns, *prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    return result.stdout.strip()


def test_ethtool_ioctl_on_a_veth_in_a_network_namespace(netns: str) -> None:
    """veth has no Wake-on-LAN: the ioctl answers EOPNOTSUPP, read as "supports nothing",
    as ethtool(8) does (it prints no Wake-on lines); an unknown interface is unknown."""
    assert ask_in_netns(netns) == "(0, 0) (0, 0) None"
    ethtool = need_tool("ethtool", "ethtool")
    out = subprocess.run(
        ["ip", "netns", "exec", netns, ethtool, "veth0"], capture_output=True, text=True, check=True
    ).stdout
    assert "Link detected" in out
    assert "Wake-on" not in out


def test_ethtool_asks_through_one_socket_kept_for_the_process(netns: str) -> None:
    """The ioctl's socket is made on the first question and kept: asking again, of any
    interface, answers the same and opens nothing more."""
    code = (
        "import os\n"
        "from host_pm_exporter.readers.wake import ethtool_wol\n"
        "before = set(os.listdir('/proc/self/fd'))\n"
        "first = ethtool_wol('veth0')\n"
        "kept = set(os.listdir('/proc/self/fd')) - before\n"
        "again = [ethtool_wol(name) for name in ('veth0', 'lo', 'nope0', 'veth0')]\n"
        "print(first, again, len(kept), set(os.listdir('/proc/self/fd')) - before == kept)\n"
    )
    assert ask_in_netns(netns, code=code) == "(0, 0) [(0, 0), (0, 0), None, (0, 0)] 1 True"


def test_ethtool_needs_cap_net_admin_so_unprivileged_falls_back(netns: str) -> None:
    setpriv = need_tool("setpriv", "util-linux")
    out = ask_in_netns(netns, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    assert out == "None None None"  # EPERM: the sysfs switch is used instead


def policy1_fails(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Every file of cpufreq/policy1 fails with `code`, however it is opened (by path or
    by name in a directory).  With EBUSY, sysfs as the kernel has it with CPU 1 offline:
    policy1 stays, and reading any of its attributes fails so (HostFS takes an error of
    open and of read alike)."""
    real = hostfs._open

    def opening(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if "cpufreq/policy1/" in str(path):
            raise OSError(code, os.strerror(code))
        return real(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(hostfs, "_open", opening)


def test_the_policy_of_an_offline_cpu_is_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    root = FIXTURES / "server-s3"
    fs = HostFS(str(root / "proc"), str(root / "sys"), str(root))
    policy1_fails(monkeypatch, errno.EBUSY)
    facts = read_dvfs(fs, lambda cpu: None, frozenset({0, 2, 3}))
    assert facts is not None
    assert facts.governor_cpus == {"schedutil": 3}

    policy1_fails(monkeypatch, errno.EIO)
    with pytest.raises(ReadError, match=r"policy1/.*: Input/output error"):
        read_dvfs(fs, lambda cpu: None, frozenset({0, 2, 3}))  # other errors still fail the collector
