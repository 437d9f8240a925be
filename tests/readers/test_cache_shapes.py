"""How the cache reader finds each CPU's cache indexes: the first CPU of a kind lists
its directory, the others are told apart by one stat (the directory's link count,
2 + its subdirectories on sysfs and ext4/tmpfs), or by two stats where the file system
does not count subdirectories (btrfs writes 1)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers.cache import CacheSummary, read_caches
from tests.fixture_hosts import asymmetric_caches, synthetic_x86
from tests.hostgen import Cache, Kind, build


def _counting(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the stats and listings of cache directories and index directories."""
    seen = Counter[str]()
    stat, listdir = os.stat, os.listdir

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        name = str(path)
        if "/index" in name:
            seen["stat index"] += 1
        elif name.endswith("/cache"):
            seen["stat cache"] += 1
        return stat(path, *args, **kwargs)

    def counting_listdir(path: Any) -> list[str]:
        seen["listdir"] += 1
        return listdir(path)

    monkeypatch.setattr(os, "stat", counting_stat)
    monkeypatch.setattr(os, "listdir", counting_listdir)
    return seen


def _caches(root: Path, cpus: int) -> list[CacheSummary]:
    fs = HostFS(f"{root}/proc", f"{root}/sys", str(root))
    return read_caches(fs, range(cpus), lambda _cpu: "one kind")


def _uneven(root: Path) -> Path:
    """CPUs 4-7 lack the L2, so their index2 is the L3 (as in test_kernel_classes)."""
    spec = asymmetric_caches()
    l1 = spec.cores[0].kind.caches[:2]
    l3 = Cache(3, 3, "Unified", 4096, "package")
    with_l2 = Kind(spec.cores[0].kind.cpuinfo, caches=(*l1, Cache(2, 2, "Unified", 512, "core"), l3))
    without_l2 = Kind(spec.cores[0].kind.cpuinfo, caches=(*l1, Cache(2, 3, "Unified", 4096, "package")))
    for core in spec.cores:
        core.kind = with_l2 if core.core_id < 4 else without_l2
    build(spec, root)
    return root


def _by_level(caches: list[CacheSummary]) -> dict[tuple[int, str], tuple[int | None, int | None]]:
    return {(c.level, c.type): (c.instances, c.size_bytes) for c in caches}


def test_like_cpus_cost_one_stat_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(synthetic_x86(16), tmp_path / "host")
    seen = _counting(monkeypatch)
    got = _by_level(_caches(tmp_path / "host", 16))
    assert seen == {"listdir": 1, "stat cache": 16}, "the first CPU listed and stated, 15 stated once"
    assert got[(1, "Data")][0] == 8  # SMT pairs share the L1
    assert got[(3, "Unified")][0] == 2  # one per socket


def test_a_cpu_with_fewer_indexes_is_listed_by_its_link_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _uneven(tmp_path / "host")
    seen = _counting(monkeypatch)
    got = _by_level(_caches(root, 8))
    assert got[(2, "Unified")] == (4, 4 * 512 * 1024)
    assert got[(3, "Unified")] == (1, 4 << 20)
    assert seen["stat index"] == 0
    assert seen["listdir"] == 2, "the first CPU, and the first that differs from it (CPU 4)"


def test_without_link_counts_two_stats_decide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system whose directories do not count their subdirectories (btrfs): the
    reader falls back to stating index N (one more) and the last index (one fewer)."""
    root = _uneven(tmp_path / "host")
    with_links = _by_level(_caches(root, 8))
    real = os.stat

    def btrfs_like(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real(path, *args, **kwargs)
        if not str(path).endswith("/cache"):
            return result
        fields = list(result)
        fields[3] = 1  # st_nlink
        return os.stat_result(fields)

    monkeypatch.setattr(os, "stat", btrfs_like)
    with Dir(f"{root}/sys/devices/system/cpu", True) as cpu_dir:
        assert cpu_dir.links("cpu0/cache") == 1
    got = _by_level(_caches(root, 8))
    assert got[(2, "Unified")] == (4, 4 * 512 * 1024)
    assert got[(3, "Unified")] == (1, 4 << 20)
    assert got == with_links
