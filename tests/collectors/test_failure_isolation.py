"""Failures stay local: each fact that collectors share is read once per scrape on its
own, so breaking one fails exactly the collectors that need it (written out by hand
below) and every other collector still reports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from host_pm_exporter.collectors import REGISTRY
from tests.conftest import samples, scrape

EVERY = [f"--collector.{c.name}" for c in REGISTRY]  # the ones off by default too


def successes(text: str) -> dict[str, float]:
    got = samples(text)
    return {c.name: got[f'host_exporter_collector_success{{collector="{c.name}"}}'] for c in REGISTRY}


def garbage(rel: str, content: bytes) -> Callable[[Path], None]:
    def spoil(root: Path) -> None:
        (root / rel).write_bytes(content)

    return spoil


def symlink_loop(rel: str) -> Callable[[Path], None]:
    """A directory that cannot be listed (ELOOP), as root can still be refused."""

    def spoil(root: Path) -> None:
        path = root / rel
        shutil.rmtree(path)
        os.symlink(path.name, path)

    return spoil


def directory(rel: str) -> Callable[[Path], None]:
    def spoil(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()

    return spoil


CASES = [
    # fact, host, how it is broken, the collectors that need it
    ("sleep files", "server-s3", garbage("sys/power/mem_sleep", b"s2idle deep\n"), {"power", "readiness"}),
    # the RTC decides the wake alarm only: power and readiness stay, suspend-then-hibernate unknown
    ("RTC", "server-s3", symlink_loop("sys/class/rtc"), {"wake"}),
    ("lockdown", "server-s3", directory("sys/kernel/security/lockdown"), {"lockdown", "readiness"}),
    ("cpuinfo", "spr-2s", garbage("proc/cpuinfo", b"\x00\x01\x02 binary junk"), {"cpu", "vulnerabilities"}),
    # a bad online mask is one fact given up: the cpuN/online switches stand in for it
    ("CPU mask", "spr-2s", garbage("sys/devices/system/cpu/online", b"0-3,oops\n"), set()),
    (
        "CPU directory",
        "spr-2s",
        symlink_loop("sys/devices/system/cpu"),
        {"topology", "cache", "idle", "vulnerabilities", "dvfs"},
    ),
    # one CPU's bad core list: its thread_siblings_list stands in for it
    ("topology groups", "spr-2s", garbage("sys/devices/system/cpu/cpu3/topology/core_cpus_list", b"3,oops\n"), set()),
]


@pytest.mark.parametrize("host", sorted({case[1] for case in CASES}))
def test_every_collector_succeeds_on_the_unbroken_host(host: str) -> None:
    assert set(successes(scrape(host, *EVERY)).values()) == {1.0}


@pytest.mark.parametrize(("fact", "host", "spoil", "dependents"), CASES, ids=[case[0] for case in CASES])
def test_a_broken_shared_fact_fails_exactly_its_collectors(
    host_copy: Callable[..., Path], fact: str, host: str, spoil: Callable[[Path], None], dependents: set[str]
) -> None:
    root = host_copy(host)
    spoil(root)
    text = scrape(root, *EVERY)
    failed = {name for name, ok in successes(text).items() if ok == 0}
    assert failed == dependents, fact
    kernel_probe = samples(text)['host_pm_probe_success{probe="kernel"}']
    assert kernel_probe == (0 if {"power"} <= dependents else 1), "the kernel probe needs the power facts"


def test_what_survives_a_broken_fact_is_still_right(host_copy: Callable[..., Path]) -> None:
    """The collectors that do without a broken fact still give the right numbers."""
    root = host_copy("spr-2s")
    garbage("proc/cpuinfo", b"\x00 junk")(root)
    got = samples(scrape(root))
    assert not any(k.startswith("host_cpu_info") for k in got)
    assert got["host_cpu_cores"] == 24  # from sysfs, without cpuinfo
    root = host_copy("spr-2s")
    garbage("sys/devices/system/cpu/cpu3/topology/core_cpus_list", b"3,oops\n")(root)
    got = samples(scrape(root))
    assert got["host_cpu_cores"] == 24  # cpu3's thread_siblings_list instead
    assert got['host_exporter_facts_given_up{collector="topology",reason="malformed"}'] == 1
    assert got['host_cpu_cache_instances{level="2",type="Unified"}'] == 24
    root = host_copy("spr-2s")
    for name in ("core_cpus_list", "thread_siblings_list", "core_cpus", "thread_siblings"):
        garbage(f"sys/devices/system/cpu/cpu3/topology/{name}", b"oops\n")(root)
    got = samples(scrape(root))
    assert "host_cpu_cores" not in got or got["host_cpu_cores"] == 24
    assert got['host_exporter_facts_given_up{collector="topology",reason="malformed"}'] == 5
    assert got["host_cpu_sockets"] == 2  # the other levels stand
    assert got['host_exporter_collector_success{collector="topology"}'] == 1


def test_an_unreadable_rtc_leaves_only_suspend_then_hibernate_unknown(host_copy: Callable[..., Path]) -> None:
    root = host_copy()
    symlink_loop("sys/class/rtc")(root)
    got = samples(scrape(root))
    assert got['host_pm_supported{state="S3"}'] == 1
    assert got['host_pm_supported{state="S4"}'] == 1
    assert 'host_pm_supported{state="suspend_then_hibernate"}' not in got, "unknown is no sample"
    assert 'host_pm_ready{state="suspend_then_hibernate"}' not in got
    assert "host_pm_wakealarm_supported" not in got
    assert 'host_pm_probe_supported{operation="suspend_then_hibernate",probe="kernel"}' not in got
    assert got['host_pm_probe_supported{operation="suspend",probe="kernel"}'] == 1
