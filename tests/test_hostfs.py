"""HostFS: the one way to read a number from a host file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.hostfs import HostFS, ReadError
from tests.conftest import samples, scrape


def fs_with(tmp_path: Path, content: str) -> tuple[HostFS, str]:
    (tmp_path / "value").write_text(content)
    return HostFS(sysfs=str(tmp_path)), str(tmp_path / "value")


@pytest.mark.parametrize(("content", "value"), [("1800000\n", 1800000), ("0", 0), ("  42 \n", 42)])
def test_read_int_reads_a_sysfs_number(tmp_path: Path, content: str, value: int) -> None:
    fs, path = fs_with(tmp_path, content)
    assert fs.read_int(path) == value


def test_read_int_of_an_absent_file_is_none_never_0(tmp_path: Path) -> None:
    assert HostFS(sysfs=str(tmp_path)).read_int(str(tmp_path / "nope")) is None
    assert HostFS(sysfs=str(tmp_path)).read_int(str(tmp_path / "nope" / "deeper")) is None


@pytest.mark.parametrize("content", ["", "-1", "--1", "+1", "\u00b2", "1.5", "0x10", "12 kB", "1 2", "9" * 21])
def test_read_int_names_the_file_in_every_error(tmp_path: Path, content: str) -> None:
    fs, path = fs_with(tmp_path, content)
    with pytest.raises(ReadError, match=rf"^{path}: not a non-negative integer"):
        fs.read_int(path)


def test_signed_read_int_takes_a_minus_and_nothing_else(tmp_path: Path) -> None:
    fs, path = fs_with(tmp_path, "-1\n")
    assert fs.read_int(path, signed=True) == -1
    fs, path = fs_with(tmp_path, "- 1\n")
    with pytest.raises(ReadError, match=f"^{path}: not an integer"):
        fs.read_int(path, signed=True)


def test_an_absent_hugepage_count_is_no_sample_not_0(host_copy: Callable[..., Path]) -> None:
    root = host_copy("spr-2s")
    (root / "sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages").unlink()
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="numa"}'] == 1
    assert got['host_numa_node_hugepages{node="0",size_bytes="2097152"}'] == 512
    assert 'host_numa_node_hugepages{node="1",size_bytes="2097152"}' not in got
    assert 'host_numa_node_hugepages_free{node="1",size_bytes="2097152"}' not in got
    assert got['host_numa_node_hugepages{node="1",size_bytes="1073741824"}'] == 0
