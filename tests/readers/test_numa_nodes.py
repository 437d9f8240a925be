"""A node listed online whose directory is not there (or is not a directory) is left
out, told by opening the directory: no stat before it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers.numa import read_numa


def _host(root: Path) -> HostFS:
    node = root / "sys/devices/system/node"
    (node / "node0").mkdir(parents=True)
    (node / "online").write_text("0-2\n")
    (node / "node0/cpulist").write_text("0-3\n")
    (node / "node0/distance").write_text("10 20 20\n")
    (node / "node2").write_text("a file, not a node directory\n")
    return HostFS(f"{root}/proc", f"{root}/sys", str(root))


def test_nodes_without_a_directory_are_left_out_without_a_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = _host(tmp_path)
    stats: list[str] = []
    real = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    nodes = read_numa(fs, frozenset(range(4)))
    assert nodes is not None
    assert [(n.node, n.cpus, n.distances) for n in nodes] == [(0, frozenset(range(4)), {0: 10, 1: 20, 2: 20})]
    assert stats == []
