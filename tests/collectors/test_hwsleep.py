"""The hwsleep collector over whole scrapes: its families on the fixture hosts, and a
missing, garbled or unreadable evidence file costs that fact only: no sample for it, the
collector and every other collector still at success 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.collectors import REGISTRY
from tests.conftest import fixture_args, samples, scrape

HW_SLEEP = ("host_pm_hw_sleep_seconds_total", "host_pm_last_hw_sleep_seconds", "host_pm_hw_sleep_max_seconds")
LPIT = 'host_pm_low_power_idle_residency_seconds_total{scope="system"}'
FADT = "host_pm_firmware_low_power_s0"


def successes(text: str) -> dict[str, float]:
    got = samples(text)
    return {c.name: got[f'host_exporter_collector_success{{collector="{c.name}"}}'] for c in REGISTRY if c.default}


def given_up(text: str) -> dict[str, float]:
    return {k: v for k, v in samples(text).items() if k.startswith("host_exporter_facts_given_up")}


def test_the_laptop_shows_every_family_in_seconds(host_copy: Callable[..., Path]) -> None:
    root = host_copy("laptop-s2idle")
    got = samples(scrape(root))
    stats = root / "sys/power/suspend_stats"
    assert got["host_pm_last_hw_sleep_seconds"] == int((stats / "last_hw_sleep").read_text()) / 1e6
    assert got["host_pm_hw_sleep_seconds_total"] == int((stats / "total_hw_sleep").read_text()) / 1e6
    assert got[FADT] == 1.0
    assert got[LPIT] > 0
    assert sum(v for k, v in got.items() if k.startswith("host_pm_acpi_wakeup_devices{")) == sum(
        1 for line in (root / "proc/acpi/wakeup").read_text().splitlines()[1:] if line and not line.startswith("\t\t")
    )


def test_an_old_kernel_has_no_evidence_sample_and_no_zero(host_copy: Callable[..., Path]) -> None:
    text = scrape(host_copy("old-kernel"))
    assert not [
        k for k in samples(text) if k.startswith(("host_pm_hw_sleep", "host_pm_last_hw", "host_pm_low_power", FADT))
    ]
    assert successes(text)["hwsleep"] == 1.0


def _garbage(rel: str) -> Callable[[Path], None]:
    def spoil(root: Path) -> None:
        (root / rel).write_bytes(b"twelve\n")

    return spoil


def _absent(rel: str) -> Callable[[Path], None]:
    def spoil(root: Path) -> None:
        (root / rel).unlink()

    return spoil


def _directory(rel: str) -> Callable[[Path], None]:
    def spoil(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()

    return spoil


@pytest.mark.parametrize(
    ("spoil", "lost", "reason"),
    [
        (_absent("sys/power/suspend_stats/last_hw_sleep"), ("host_pm_last_hw_sleep_seconds",), None),
        (_absent("proc/acpi/wakeup"), ("host_pm_acpi_wakeup_devices",), None),
        (_absent("sys/firmware/acpi/tables/FACP"), (FADT,), None),
        (_garbage("sys/power/suspend_stats/total_hw_sleep"), HW_SLEEP, "garbage"),
        # the LPIT pair is one fact, as the three hw-sleep counters are (checked against each other)
        (
            _garbage("sys/devices/system/cpu/cpuidle/low_power_idle_system_residency_us"),
            ("host_pm_low_power_idle_residency_seconds_total",),
            "garbage",
        ),
        (_garbage("proc/acpi/wakeup"), ("host_pm_acpi_wakeup_devices",), "garbage"),
        (_garbage("sys/firmware/acpi/tables/FACP"), (FADT,), "garbage"),
        (_directory("sys/firmware/acpi/tables/FACP"), (FADT,), "garbage"),
        (_directory("proc/acpi/wakeup"), ("host_pm_acpi_wakeup_devices",), "garbage"),
    ],
    ids=[
        "absent-last",
        "absent-wakeup",
        "absent-fadt",
        "garbage-total",
        "garbage-lpit",
        "garbage-wakeup",
        "garbage-fadt",
        "unreadable-fadt",
        "unreadable-wakeup",
    ],
)
def test_a_bad_evidence_file_costs_its_fact_only(
    host_copy: Callable[..., Path], spoil: Callable[[Path], None], lost: tuple[str, ...], reason: str | None
) -> None:
    root = host_copy("laptop-s2idle")
    before = samples(scrape(root))
    spoil(root)
    text = scrape(root)
    after = samples(text)
    assert all(v == 1.0 for v in successes(text).values()), successes(text)
    gone = {k for k in before if k not in after}
    assert gone, "the spoilt fact still has its sample"
    assert all(k.startswith(lost) for k in gone), sorted(gone)
    assert not [k for k in after if k not in before and not k.startswith("host_exporter_facts_given_up")]
    if reason is None:  # absent: no fact, nothing given up
        assert given_up(text) == {}
    else:  # one fact given up, as unreadable or malformed (hostfs tells which)
        (key, count), *rest = given_up(text).items()
        assert (rest, count) == ([], 1.0)
        assert key.startswith('host_exporter_facts_given_up{collector="hwsleep",reason=')


def test_the_explain_lines_come_from_the_evidence(host_copy: Callable[..., Path]) -> None:
    root = host_copy("laptop-s2idle")
    full = _explain(root)
    assert "Sleep evidence: last suspend: 31 min in hardware sleep" in full
    assert "ACPI wake:" not in full  # no S3 on this laptop: the table's S-states do not apply to s2idle
    server = _explain(host_copy("server-s3"))
    assert "Sleep evidence: never suspended since boot" in server
    assert (
        "ACPI wake: may wake from S3: PWRB (platform:PNP0C0C:00), NIC0 (pci:0000:19:00.0, pci:0000:19:00.1)" in server
    )
    shutil.rmtree(root / "sys/power/suspend_stats")
    assert "Sleep evidence: this kernel does not record hardware sleep" in _explain(root)


def _explain(root: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "host_pm_exporter", *fixture_args(root), "--pm.probes=kernel", "--explain"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout
