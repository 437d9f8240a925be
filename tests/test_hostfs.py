"""HostFS: the one way to read a number from a host file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.hostfs import MAX_SYSFS_FILE, HostFS, ReadError
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


def test_files_in_a_directory_follow_the_same_rules(tmp_path: Path) -> None:
    """`HostFS.directory`: files opened by name in it, as `HostFS.read` opens them by path."""
    (tmp_path / "cpu0").mkdir()
    (tmp_path / "cpu0" / "online").write_text("1\n")
    (tmp_path / "cpu0" / "garbage").write_text("one\n")
    os.mkfifo(tmp_path / "cpu0" / "fifo")
    (tmp_path / "big").write_bytes(b"1" * (MAX_SYSFS_FILE + 1))
    fs = HostFS(sysfs=str(tmp_path))
    with fs.directory(str(tmp_path)) as cpus:
        assert cpus.read_int("cpu0/online") == 1
        assert cpus.read("cpu0/absent") is None
        assert cpus.read("cpu9/online") is None
        assert cpus.where("cpu0/online") == f"{tmp_path}/cpu0/online"
        with pytest.raises(ReadError, match=rf"^{tmp_path}/cpu0/garbage: not a non-negative integer"):
            cpus.read_int("cpu0/garbage")
        with pytest.raises(ReadError, match=rf"^{tmp_path}/cpu0/fifo: not a regular file"):
            cpus.read("cpu0/fifo")
        with pytest.raises(ReadError, match=rf"^{tmp_path}/cpu0: not a regular file"):
            cpus.read("cpu0")
        with pytest.raises(ReadError, match=rf"^{tmp_path}/big: larger than"):
            cpus.read("big")


def test_an_absent_directory_has_no_files_and_an_unopenable_one_fails_each(tmp_path: Path) -> None:
    fs = HostFS(sysfs=str(tmp_path))
    (tmp_path / "file").write_text("x\n")
    for absent in ("nope", "nope/deeper", "file"):  # missing, missing parent, not a directory
        with fs.directory(str(tmp_path / absent)) as files:
            assert files.read("success") is None
            assert files.read_int("fail") is None
            assert files.read_bytes("x") is None
    os.symlink("loop", tmp_path / "loop")
    with fs.directory(str(tmp_path / "loop")) as files, pytest.raises(ReadError, match=rf"^{tmp_path}/loop/success: "):
        files.read("success")


def test_resolved_name_is_the_basename_of_the_real_path(tmp_path: Path) -> None:
    (tmp_path / "bus" / "pci").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    os.symlink("../bus/pci", tmp_path / "dev" / "subsystem")  # sysfs's kind of link
    os.symlink("pci", tmp_path / "bus" / "alias")
    os.symlink("../bus/alias", tmp_path / "dev" / "chained")  # a link to a link
    os.symlink("../bus/gone", tmp_path / "dev" / "dangling")
    os.symlink("../bus/pci/", tmp_path / "dev" / "slash")
    os.symlink("..", tmp_path / "dev" / "up")
    for name in ("subsystem", "chained", "dangling", "slash", "up", "absent"):
        path = str(tmp_path / "dev" / name)
        assert HostFS().resolved_name(path) == os.path.basename(os.path.realpath(path)), name
    assert HostFS().resolved_name(str(tmp_path / "dev" / "chained")) == "pci"


def test_whether_a_path_is_there_is_asked_as_os_path_exists_answers(tmp_path: Path) -> None:
    """`HostFS.exists` and `Dir.exists` ask ``access``, which raises nothing where a path
    leads nowhere: each answers what os.path.exists does, for every kind of entry and
    every way of leading nowhere."""
    (tmp_path / "file").write_text("1\n")
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("file")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "loop").symlink_to("loop")
    names = ["file", "dir", "fifo", "link", "dangling", "loop", "nope", "file/under", "nope/under", "dir/."]
    fs = HostFS(sysfs=str(tmp_path))
    with fs.directory(str(tmp_path)) as where:
        for name in names:
            expected = os.path.exists(tmp_path / name)
            assert fs.exists(f"{tmp_path}/{name}") is expected, name
            assert where.exists(name) is expected, name
    assert [n for n in names if os.path.exists(tmp_path / n)] == ["file", "dir", "fifo", "link", "dir/."]
