"""Each fixture host, read in-process, gives the host_pm_supported values written by hand
in its expected.json from the decision table."""

from __future__ import annotations

import pytest

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers.power import read_lockdown, read_power
from host_pm_exporter.sleep import STATES, supported_states
from tests.conftest import FIXTURES, PM_HOSTS, expected


def fs_for(host: str) -> HostFS:
    root = FIXTURES / host
    return HostFS(procfs=str(root / "proc"), sysfs=str(root / "sys"), rootfs=str(root))


def test_there_are_the_fixture_hosts_the_issue_asks_for() -> None:
    assert {
        "laptop-s2idle",
        "server-s3",
        "vm-cloud",
        "lockdown",
        "standby-shallow",
        "old-kernel",
    } <= set(PM_HOSTS)


@pytest.mark.parametrize("host", PM_HOSTS)
def test_supported_states_match_the_hand_written_table(host: str) -> None:
    got = supported_states(read_power(fs_for(host)))
    want = expected(host)["supported"]
    assert set(want) == set(STATES)
    assert {k: None if v is None else int(v) for k, v in got.items()} == want


def test_lockdown_level_is_the_selected_one() -> None:
    lockdown = read_lockdown(fs_for("lockdown"))
    assert lockdown is not None
    assert lockdown.selected == "integrity"
    assert read_lockdown(fs_for("old-kernel")) is None  # no lockdown LSM: absent, not an error
