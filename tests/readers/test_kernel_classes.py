"""What real kernels write, one class per fixture host (issue 17): each host's tree is
built by tests/hostgen.py from tests/fixture_hosts.py, and its expected.json holds,
by hand, the class, the kernel source that says what the kernel writes, and the right
answer.  Every collector succeeds on every one of them; a fact given up is counted in
host_exporter_facts_given_up, and only where the host says so."""

from __future__ import annotations

import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.cli import parse_config
from host_pm_exporter.logs import Once
from host_pm_exporter.readers import giveup
from host_pm_exporter.wiring import make_exposition
from tests.conftest import HOSTS, expected, fixture_args, host_root, samples, scrape
from tests.fixture_hosts import asymmetric_caches
from tests.hostgen import Cache, Kind, build

CLASS_HOSTS = [h for h in HOSTS if "kernel_class" in expected(h)]


def want(host: str) -> dict[str, Any]:
    data: dict[str, Any] = expected(host)["kernel_class"]
    return data


@cache
def scraped(host: str) -> dict[str, float]:
    return samples(scrape(host))


def test_every_class_of_the_issue_has_its_host() -> None:
    assert {want(h)["class"] for h in CLASS_HOSTS} >= set(range(1, 11))


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_the_source_is_cited(host: str) -> None:
    assert re.search(r"\b(Documentation|drivers|arch|lib)/[\w./-]+", want(host)["kernel"]), want(host)["kernel"]


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_every_collector_succeeds(host: str) -> None:
    got = scraped(host)
    failed = {k for k, v in got.items() if k.startswith("host_exporter_collector_success") and v != 1}
    assert failed == set()


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_facts_given_up_are_exactly_the_expected(host: str) -> None:
    got = {k: v for k, v in scraped(host).items() if k.startswith("host_exporter_facts_given_up")}
    expect = {
        f'host_exporter_facts_given_up{{collector="{collector}",reason="{reason}"}}': count
        for collector, reasons in want(host)["given_up"].items()
        for reason, count in reasons.items()
    }
    assert got == expect


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_topology_and_logical_cpus(host: str) -> None:
    got = scraped(host)
    for name, value in want(host)["topology"].items():
        assert got[f"host_cpu_{name}"] == value, name
    for state, value in want(host)["logical"].items():
        assert got[f'host_cpu_logical{{state="{state}"}}'] == value, state


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_numa_node_cpus_are_the_online_ones(host: str) -> None:
    got = scraped(host)
    cpus = {k: v for k, v in got.items() if k.startswith("host_numa_node_cpus{")}
    assert cpus == {f'host_numa_node_cpus{{node="{n}"}}': count for n, count in want(host)["numa_cpus"].items()}
    memory = {k.split('"')[1] for k in got if k.startswith("host_numa_node_memory_bytes{")}
    assert memory == set(want(host)["numa_cpus"]) - set(want(host).get("numa_memory_absent", []))


@pytest.mark.parametrize("host", CLASS_HOSTS)
def test_caches_are_sums_over_the_instances(host: str) -> None:
    got = scraped(host)
    caches = want(host)["caches"]
    seen = {k.partition("{")[2] for k in got if k.startswith("host_cpu_cache_")}
    assert seen == {f'level="{key.split()[0]}",type="{key.split()[1]}"}}' for key in caches}
    for key, (size, instances) in caches.items():
        level, ctype = key.split()
        labels = f'{{level="{level}",type="{ctype}"}}'
        assert got.get("host_cpu_cache_size_bytes" + labels) == size, key  # null: no sample
        assert got.get("host_cpu_cache_instances" + labels) == instances, key


# --- each tree really holds its class (else the host above would prove nothing) ------------


def tree(host: str) -> Path:
    return host_root(host)


def test_the_nul_padded_tree_has_nuls_after_the_newline() -> None:
    root = tree("k-nul-padded")
    for rel in (
        "sys/devices/system/node/online",
        "sys/devices/system/node/node1/cpulist",
        "sys/devices/system/cpu/cpu3/topology/package_cpus_list",
        "sys/devices/system/cpu/online",
    ):
        assert (root / rel).read_bytes().endswith(b"\n\x00"), rel


def test_the_switch_trees_lack_their_masks() -> None:
    cpu = tree("k-empty-switch") / "sys/devices/system/cpu"
    assert not (cpu / "online").exists()
    assert (cpu / "cpu2/online").read_bytes() == b""
    assert not (tree("k-no-online-mask") / "sys/devices/system/cpu/cpu1/online").exists()
    cpu = tree("k-switches-only") / "sys/devices/system/cpu"
    assert not any((cpu / name).exists() for name in ("online", "offline", "present", "possible"))
    assert (cpu / "cpu6/online").read_text() == "0\n"


def test_the_node_lists_name_offline_cpus() -> None:
    assert (tree("k-node-lists-offline") / "sys/devices/system/node/node0/cpulist").read_text() == "0-7\n"
    assert (tree("k-s390-drawers") / "sys/devices/system/node/node0/cpulist").read_text() == "0-140\n"


def test_the_hybrid_tree_has_no_core_type_pmus_and_two_l1d_sizes() -> None:
    root = tree("k-hybrid-no-pmu")
    assert not (root / "sys/devices/cpu_core").exists()
    sizes = {(root / f"sys/devices/system/cpu/cpu{n}/cache/index0/size").read_text() for n in range(20)}
    assert sizes == {"48K\n", "32K\n"}


def test_the_ia64_maps_are_all_zeros() -> None:
    index = tree("k-ia64-zero-maps") / "sys/devices/system/cpu/cpu5/cache/index4"
    assert set((index / "shared_cpu_map").read_text().strip()) == {"0"}
    assert not (index / "shared_cpu_list").exists()


def test_the_asymmetric_tree_lacks_index2_on_its_first_cpus() -> None:
    cpu = tree("k-asymmetric-caches") / "sys/devices/system/cpu"
    assert [(cpu / f"cpu{n}/cache/index2").exists() for n in range(8)] == [False] * 4 + [True] * 4


def test_the_cell_tree_has_only_thread_siblings() -> None:
    topology = tree("k-thread-siblings-only") / "sys/devices/system/cpu/cpu0/topology"
    assert sorted(p.name for p in topology.iterdir()) == ["thread_siblings", "thread_siblings_list"]


def test_the_sparc_tree_starts_at_cpu6() -> None:
    cpu = tree("k-first-cpu-not-zero") / "sys/devices/system/cpu"
    assert not (cpu / "cpu0").exists()
    assert (cpu / "online").read_text() == "6-13\n"
    assert (cpu / "cpu6/l1_dcache_size").read_text() == "16384\n"


def test_the_s390_tree_has_l3_and_l4_in_cpuinfo_only() -> None:
    root = tree("k-s390-drawers")
    cpuinfo = (root / "proc/cpuinfo").read_text()
    assert re.search(r"^cache4\s*: level=3 type=Unified scope=Shared", cpuinfo, re.MULTILINE)
    levels = {(root / f"sys/devices/system/cpu/cpu0/cache/index{i}/level").read_text() for i in range(4)}
    assert levels == {"1\n", "2\n"}
    assert not (root / "sys/devices/system/cpu/cpu0/cache/index4").exists()


def test_an_index_means_its_own_level_on_each_cpu(tmp_path: Path) -> None:
    """CPUs 4-7 lack the L2, so their index2 is the L3: each CPU's index is described
    on a CPU of its own shape, never by another CPU's numbering."""
    spec = asymmetric_caches()
    l1 = spec.cores[0].kind.caches[:2]
    with_l2 = Kind(spec.cores[0].kind.cpuinfo, caches=(*l1, Cache(2, 2, "Unified", 512, "core"), l3_at(3)))
    without_l2 = Kind(spec.cores[0].kind.cpuinfo, caches=(*l1, l3_at(2)))
    for core in spec.cores:
        core.kind = with_l2 if core.core_id < 4 else without_l2
    build(spec, tmp_path / "host")
    got = samples(scrape(tmp_path / "host"))
    assert got['host_cpu_cache_instances{level="2",type="Unified"}'] == 4
    assert got['host_cpu_cache_size_bytes{level="2",type="Unified"}'] == 4 * 512 * 1024
    assert got['host_cpu_cache_instances{level="3",type="Unified"}'] == 1
    assert got['host_cpu_cache_size_bytes{level="3",type="Unified"}'] == 4 << 20


def l3_at(index: int) -> Cache:
    return Cache(index, 3, "Unified", 4096, "package")


# --- facts given up: counted, logged once, and read when only they are asked for -----------


def test_each_fact_given_up_is_logged_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(giveup, "_log", Once(logging.getLogger("host_pm_exporter.readers"), limit=512))
    with caplog.at_level(logging.DEBUG, logger="host_pm_exporter.readers"):
        for _ in range(3):
            got = samples(scrape("k-odd-values"))
            assert got['host_exporter_facts_given_up{collector="numa",reason="malformed"}'] == 1
    records = [r for r in caplog.records if r.getMessage() == "fact given up"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(records) == 9  # three facts, three scrapes
    assert sorted(vars(r)["fact"] for r in warnings) == ["cache size", "die siblings", "node memory"]
    assert all("node1/meminfo" in vars(r)["err"] for r in warnings if vars(r)["fact"] == "node memory")


def test_asking_for_the_facts_given_up_alone_reads_every_collector() -> None:
    registry = make_exposition(parse_config([*fixture_args("k-odd-values"), "--pm.probes=kernel"]))
    got = samples(registry.encode(names=["host_exporter_facts_given_up"]).decode())
    collectors = ("topology", "numa", "cache")
    assert got == {f'host_exporter_facts_given_up{{collector="{c}",reason="malformed"}}': 1.0 for c in collectors}
