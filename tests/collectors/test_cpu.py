"""CPU identity, topology, NUMA, caches, flags and virtualization on every CPU fixture
host, scraped in process and checked against the values written by hand in each
host's expected.json."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.readers.cpuflags import fingerprint
from tests import hostgen
from tests.conftest import (
    CPU_HOSTS,
    FIXTURES,
    GENERATED,
    by_label,
    expected,
    free_port,
    host_root,
    http_get,
    need_tool,
    samples,
    scrape,
    scrape_fixture,
    series,
    wait_until,
)
from tests.fixture_hosts import synthetic_x86
from tests.hostgen import build


@pytest.fixture(scope="module")
def scrapes() -> dict[str, str]:
    """Every flag shown, and the CPU's bugs and vulnerabilities (both off by default)."""
    return {host: scrape(host, *EVERYTHING) for host in CPU_HOSTS}


EVERYTHING = ("--collector.cpu.flags-include=.*", "--collector.vulnerabilities")


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_by_default_no_flag_series_but_the_fingerprint_level_and_count(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrape_fixture(host))
    full = samples(scrapes[host])
    optional = ("host_cpu_flag_info", "host_cpu_bug_info", "host_cpu_vulnerability_info")
    assert not any(k.startswith(optional) for k in got)
    for name in ("host_cpu_features_info", "host_cpu_flags", "host_cpu_x86_64_level"):
        assert {k: v for k, v in got.items() if k.startswith(name)} == {
            k: v for k, v in full.items() if k.startswith(name)
        }, name
    assert any(k.startswith("host_cpu_features_info") for k in got)


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_identity_one_series_per_kind(host: str, scrapes: dict[str, str]) -> None:
    text = scrapes[host]
    got = sorted(series(text, "host_cpu_info"), key=lambda d: d["core_type"])
    want = sorted(expected(host)["cpu_info"], key=lambda d: d["core_type"])
    assert got == want


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_topology_and_logical_cpus(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)
    for name, value in want["topology"].items():
        assert got[f"host_cpu_{name}"] == value, name
    for state, value in want["logical"].items():
        assert got[f'host_cpu_logical{{state="{state}"}}'] == value, state
    assert got["host_cpu_isolated"] == want["isolated"]


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_numa(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    numa = expected(host)["numa"]
    assert got["host_numa_nodes"] == numa["nodes"]
    for node, cpus in numa["cpus"].items():
        assert got[f'host_numa_node_cpus{{node="{node}"}}'] == cpus
    for node, kb in numa["memory_kb"].items():
        assert got[f'host_numa_node_memory_bytes{{node="{node}"}}'] == kb * 1024
    for node, row in numa["distance"].items():
        for peer, value in row.items():
            assert got[f'host_numa_distance{{node="{node}",peer="{peer}"}}'] == value
    for node, sizes in numa["hugepages"].items():
        for size, count in sizes.items():
            assert got[f'host_numa_node_hugepages{{node="{node}",size_bytes="{size}"}}'] == count
    assert len([k for k in got if k.startswith("host_numa_distance{")]) == numa["nodes"] ** 2


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_caches(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    want = expected(host)["caches"]
    seen = {k.partition("{")[2] for k in got if k.startswith("host_cpu_cache_")}
    assert len(seen) == len(want)
    for key, (size, instances) in want.items():
        level, ctype = key.split()
        labels = f'{{level="{level}",type="{ctype}"}}'
        assert got["host_cpu_cache_size_bytes" + labels] == size, key
        # null: the kernel does not say how many (s390's shared caches, from cpuinfo)
        assert got.get("host_cpu_cache_instances" + labels) == instances, key


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_flags_level_and_fingerprint(host: str, scrapes: dict[str, str]) -> None:
    text = scrapes[host]
    want = expected(host)
    flags = {d["flag"] for d in series(text, "host_cpu_flag_info")}
    assert len(flags) == want["flags"]
    assert set(want["flags_include"]) <= flags
    got = samples(text)
    assert got["host_cpu_flags"] == want["flags"]
    if want["x86_64_level"] is None:
        assert "host_cpu_x86_64_level" not in got
    else:
        assert got["host_cpu_x86_64_level"] == want["x86_64_level"]
    # the fingerprint is documented: sha256 of the sorted names joined by newlines
    prints = series(text, "host_cpu_features_info")
    assert prints == [{"fingerprint": fingerprint(flags)}]
    documented = hashlib.sha256("\n".join(sorted(flags)).encode()).hexdigest()[:16]  # OpenSSL's, not ours
    assert prints == [{"fingerprint": documented}]


@pytest.mark.parametrize("host", CPU_HOSTS)
def test_virtualization_and_uuid(host: str, scrapes: dict[str, str]) -> None:
    got = samples(scrapes[host])
    virt = expected(host)["virt"]
    if virt["hardware"] is None:
        assert "host_virt_hardware_supported" not in got
    else:
        assert got["host_virt_hardware_supported"] == virt["hardware"]
    assert {d["extension"] for d in series(scrapes[host], "host_virt_extension_info")} == set(virt["extensions"])
    assert got["host_virt_kvm_device_present"] == virt["kvm_device"]
    assert by_label(scrapes[host], "host_virt_kvm_nested", "module") == virt["nested"]
    assert got["host_virt_iommu_groups"] == virt["iommu_groups"]
    assert got["host_virt_guest"] == virt["guest"]
    hypervisors = [d["hypervisor"] for d in series(scrapes[host], "host_virt_hypervisor_info")]
    assert hypervisors == ([virt["hypervisor"]] if virt["hypervisor"] else [])
    assert series(scrapes[host], "host_uuid_info") == [expected(host)["uuid"]]


def test_flag_filters_leave_the_fingerprint_alone() -> None:
    full = scrape("spr-2s")
    filtered = scrape("spr-2s", "--collector.cpu.flags-include=avx512.*", "--collector.cpu.flags-exclude=avx512_.*")
    flags = {d["flag"] for d in series(filtered, "host_cpu_flag_info")}
    assert flags == {"avx512f", "avx512dq", "avx512ifma", "avx512cd", "avx512bw", "avx512vl", "avx512vbmi"}
    assert series(filtered, "host_cpu_features_info") == series(full, "host_cpu_features_info")
    assert samples(filtered)["host_cpu_flags"] == 170


def test_default_scrape_of_the_two_socket_host_stays_small() -> None:
    """Cardinality: the whole default output (exporter metrics and every probe included)
    stays within the fleet budget of 125 series on a 2-socket server."""
    text = scrape("spr-2s", "--pm.probes=kernel,logind,pm-utils", exporter_metrics="process")
    count = len(samples(text))
    assert count <= 125, count
    assert not re.search(r'[{,]cpu="', text), "no per-CPU series"


def test_series_do_not_grow_with_cpus(tmp_path: Path) -> None:
    """Hosts of 64 and 256 CPUs (same sockets and NUMA nodes) give the same series."""
    names = []
    for cpus in (64, 256):
        build(synthetic_x86(cpus), tmp_path / str(cpus))
        names.append(set(samples(scrape(tmp_path / str(cpus)))))
    assert names[0] == names[1]


def test_generated_1024_cpu_eight_socket_host(tmp_path: Path) -> None:
    root = tmp_path / "h1024"
    build(synthetic_x86(1024), root)
    got = samples(scrape(root))
    assert got['host_cpu_logical{state="online"}'] == 1024
    assert got["host_cpu_sockets"] == 8
    assert got["host_cpu_dies"] == 8
    assert got["host_cpu_cores"] == 512
    assert got["host_cpu_threads_per_core"] == 2
    assert got["host_numa_nodes"] == 8
    assert all(got[f'host_numa_node_cpus{{node="{n}"}}'] == 128 for n in range(8))
    assert got['host_cpu_cache_instances{level="1",type="Data"}'] == 512
    assert got['host_cpu_cache_instances{level="3",type="Unified"}'] == 8
    assert got['host_cpu_cache_size_bytes{level="3",type="Unified"}'] == 8 * 115200 * 1024
    assert all(v == 1 for k, v in got.items() if k.startswith("host_exporter_collector_success"))


def node_exporter_flags(root: Path, tmp_path: Path) -> set[str]:
    binary = need_tool("prometheus-node-exporter", "prometheus-node-exporter")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--path.procfs={root / 'proc'}",
            f"--path.sysfs={root / 'sys'}",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.cpu.info",
            "--collector.cpu.info.flags-include=.*",
        ],
        stderr=(tmp_path / "node_exporter.log").open("wb"),
    )
    try:
        text = wait_until(lambda: http_get(f"http://127.0.0.1:{port}/metrics"), "node_exporter", proc=proc)
    finally:
        proc.terminate()
        proc.wait(10)
    assert 'node_scrape_collector_success{collector="cpu"} 1' in text
    return {d["flag"] for d in series(text, "node_cpu_flag_info")}


X86_HOSTS = [h for h in CPU_HOSTS if expected(h)["cpu_info"][0]["arch"] == "x86_64"]


@pytest.mark.parametrize("host", X86_HOSTS)
def test_flags_equal_node_exporters(host: str, scrapes: dict[str, str], tmp_path: Path) -> None:
    """node_exporter's amd64 build parses x86 cpuinfo only, hence the x86 hosts."""
    ours = {d["flag"] for d in series(scrapes[host], "host_cpu_flag_info")}
    theirs = node_exporter_flags(host_root(host), tmp_path)
    assert theirs
    assert ours == theirs


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def test_the_generated_fixture_trees_are_deterministic(tmp_path: Path) -> None:
    """The trees are built at test time, not committed: the same specification must
    always give the same tree, or the golden scrapes would drift."""
    hostgen.build_fixtures(tmp_path)
    for host in GENERATED:
        assert tree(tmp_path / host) == tree(host_root(host)), host
    assert not (FIXTURES / "spr-2s" / "sys").exists(), "generated trees are not committed"


def test_caches_without_a_size_still_count(host_copy: Callable[..., Path]) -> None:
    root = host_copy("arm64-altra")
    for size in (root / "sys/devices/system/cpu").glob("cpu*/cache/index*/size"):
        size.unlink()
    got = samples(scrape(root))
    assert got['host_exporter_collector_success{collector="cache"}'] == 1
    assert got['host_cpu_cache_instances{level="1",type="Data"}'] == 32
    assert not any(k.startswith("host_cpu_cache_size_bytes") for k in got)
