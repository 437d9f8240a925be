"""Real machines nobody here wrote: the /proc and /sys captures under tests/real/ (each
with its source's provenance), scraped end to end and held to what their sources
expect (libvirt's virhostcpudata numbers, ansible's CPU facts, archspec's targets) and
to Debian's lscpu on the same tree.  Every difference from a peer is written down here
with its reason; anything else fails."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.readers.cpulist import parse_cpulist
from tests.conftest import GENERATED, host_root, need_tool, samples, scrape, series

REAL = Path(__file__).resolve().parent / "real"
CAPTURES = sorted(p.stem for p in REAL.glob("*.json"))


@cache
def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REAL / f"{name}.json").read_text())
    return data


@cache
def trees() -> Path:
    """Every capture unpacked once per run (files and symlinks as the source has them)."""
    top = Path(tempfile.mkdtemp(prefix="host-pm-real-"))
    atexit.register(shutil.rmtree, top, True)
    for name in CAPTURES:
        root = top / name
        for sub in ("proc", "sys"):
            (root / sub).mkdir(parents=True)
        data = capture(name)
        for rel, text in data["files"].items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for rel, target in data.get("symlinks", {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)
    return top


@cache
def scraped(name: str) -> str:
    return scrape(trees() / name)


def has_sysfs_cpus(name: str) -> bool:
    return any(rel.startswith("sys/devices/system/cpu/cpu") for rel in capture(name)["files"])


# --- the corpus itself ------------------------------------------------------------------


def test_the_corpus_covers_the_architectures_asked_for() -> None:
    arches = [capture(n)["arch"] for n in CAPTURES]
    assert len(CAPTURES) >= 15
    assert len(set(arches)) >= 6, sorted(set(arches))
    assert sum(a.startswith("ppc") for a in arches) >= 2
    assert arches.count("s390x") >= 2
    arm64_servers = [n for n in CAPTURES if capture(n)["arch"] == "aarch64" and re.search(
        r"mustang|thunderx|neoverse|ampere|a64fx", n)]  # fmt: skip
    assert len(arm64_servers) >= 3, arm64_servers


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_says_where_it_comes_from(name: str) -> None:
    provenance = capture(name)["provenance"]
    assert provenance["project"] in ("libvirt/libvirt", "ansible/ansible", "archspec/archspec-json"), provenance
    assert provenance["path"]
    assert re.fullmatch(r"[0-9a-f]{40}", provenance["commit"])
    assert provenance["licence"]


# --- every collector succeeds ------------------------------------------------------------

# The one capture where a collector rightly fails.
FAILS = {
    "libvirt-aarch64-rhelsa-3.19.0-mustang": (
        {"cpu"},
        "the source's cpuinfo is an empty file (its test reads only sysfs); no kernel writes an "
        "empty /proc/cpuinfo, so it is bad input and fails the cpu collector alone",
    ),
}


@pytest.mark.parametrize("name", CAPTURES)
def test_every_collector_succeeds_on_a_real_host(name: str) -> None:
    got = samples(scraped(name))
    failed = {k.split('"')[1] for k, v in got.items() if k.startswith("host_exporter_collector_success") and v != 1}
    assert failed == FAILS.get(name, (set(), ""))[0]


# --- libvirt's own numbers ---------------------------------------------------------------

LIBVIRT = [n for n in CAPTURES if n.startswith("libvirt-") and has_sysfs_cpus(n)]
PPC64_SUBCORES = (
    "libvirt's test mocks KVM's threads-per-subcore as 8 on ppc64 and counts 8 CPUs for every online "
    "primary thread; the kernel's sysfs shows only the primary threads online, and we report the kernel"
)
FLAT = (
    "libvirt fell back to its flat shape (1 node, 1 socket, N cores, 1 thread) because its per-node "
    "product did not add up; the kernel's package lists say otherwise"
)
# name -> (facts that differ from libvirt's, why)
LIBVIRT_DIFFERS = {
    "libvirt-ppc64-deconf-cpus": ({"online", "sockets", "cores"}, PPC64_SUBCORES + ", and then its flat shape"),
    "libvirt-ppc64-subcores1": ({"online", "threads"}, PPC64_SUBCORES),
    "libvirt-ppc64-subcores2": ({"online", "cores", "threads"}, PPC64_SUBCORES),
    "libvirt-ppc64-subcores3": ({"cores"}, PPC64_SUBCORES),
    "libvirt-x86_64-test3": (
        {"sockets"},
        "libvirt counts sockets per NUMA node: each Magny-Cours package is two nodes (8 nodes x 1 socket), "
        "while the kernel shows 4 packages",
    ),
    "libvirt-x86_64-test7": ({"sockets"}, FLAT),
    "libvirt-x86_64-test8": (
        {"sockets", "cores", "threads"},
        FLAT + "; the kernel pairs each Bulldozer compute unit's two CPUs as thread siblings (32 x 2)",
    ),
}


@pytest.mark.parametrize("name", LIBVIRT)
def test_topology_equals_libvirts_expected_numbers(name: str) -> None:
    want = capture(name)["expected"]
    got = samples(scraped(name))
    ours = {
        "online": got['host_cpu_logical{state="online"}'],
        "sockets": got["host_cpu_sockets"],
        "cores": got["host_cpu_cores"],
        "threads": got["host_cpu_threads_per_core"],
    }
    theirs = {
        "online": want["cpus_online"],
        "sockets": want["nodes"] * want["sockets"],
        "cores": want["nodes"] * want["sockets"] * want["cores"],
        "threads": want["threads"],
    }
    differs, _why = LIBVIRT_DIFFERS.get(name, (set(), ""))
    assert {k for k in ours if ours[k] != theirs[k]} == differs, (ours, theirs)


# --- Debian's lscpu on the same tree -------------------------------------------------------

LSCPU_TREES = [n for n in CAPTURES if has_sysfs_cpus(n)]
NO_POSSIBLE = "lscpu 2.38 exits 1 without cpu/possible, which this older kernel's tree lacks"
SPARSE_PPC64 = "lscpu 2.38 aborts (assertion in print_cpuset) on this ppc64 tree with its gaps in the CPU sets"
# Where Debian's lscpu gives no topology to compare with, and why.
LSCPU_CANNOT = {
    **{f"libvirt-x86_64-test{n}": NO_POSSIBLE for n in range(1, 9)},
    "libvirt-ppc-test1": NO_POSSIBLE,
    **{f"libvirt-ppc64-{case}": SPARSE_PPC64 for case in ("deconf-cpus", "subcores1", "subcores2", "subcores3")},
    "libvirt-aarch64-rhelsa-3.19.0-mustang": "the capture's cpuinfo is empty: lscpu prints no sockets or cores",
}


def lscpu(root: Path) -> dict[str, str] | None:
    """lscpu's fields for a tree (cache sizes in bytes); ``None`` when it gives no
    topology."""
    binary = need_tool("lscpu", "util-linux")
    result = subprocess.run(
        [binary, "--sysroot", str(root), "--json", "--bytes"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return None
    fields = {row["field"].rstrip(":"): row.get("data") for row in json.loads(result.stdout)["lscpu"]}
    return fields if fields.get("Socket(s)") else None


# lscpu's cache names -> ours
LSCPU_CACHES = {
    "L1d cache": (1, "Data"),
    "L1i cache": (1, "Instruction"),
    "L2 cache": (2, "Unified"),
    "L2d cache": (2, "Data"),
    "L2i cache": (2, "Instruction"),
    "L3 cache": (3, "Unified"),
    "L4 cache": (4, "Unified"),
}
_LSCPU_CACHE = re.compile(r"(\d+)(?: \((\d+) instances?\))?")


def compare_with_lscpu(root: Path, text: str, caches: bool = True) -> None:
    """Topology, online CPUs (where lscpu lists them: it reads only the online mask)
    and, with `caches`, every cache level lscpu prints: its total size in bytes and
    its instances (where lscpu counts them)."""
    theirs = lscpu(root)
    assert theirs is not None
    got = samples(text)
    sockets = int(theirs["Socket(s)"])
    assert got["host_cpu_sockets"] == sockets
    assert got["host_cpu_cores"] == sockets * int(theirs["Core(s) per socket"])
    assert got["host_cpu_threads_per_core"] == int(theirs["Thread(s) per core"])
    if "On-line CPU(s) list" in theirs:
        assert got['host_cpu_logical{state="online"}'] == len(parse_cpulist(theirs["On-line CPU(s) list"]))
    if not caches:
        return
    for name, (level, ctype) in LSCPU_CACHES.items():
        if name not in theirs:
            continue
        match = _LSCPU_CACHE.fullmatch(theirs[name])
        assert match, theirs[name]
        labels = f'{{level="{level}",type="{ctype}"}}'
        assert got[f"host_cpu_cache_size_bytes{labels}"] == int(match.group(1)), name
        if match.group(2):
            assert got[f"host_cpu_cache_instances{labels}"] == int(match.group(2)), name


@pytest.mark.parametrize("name", LSCPU_TREES)
def test_topology_equals_lscpu_on_the_capture(name: str) -> None:
    root = trees() / name
    if name in LSCPU_CANNOT:
        assert lscpu(root) is None, f"lscpu reads {name} now: compare, and drop the reason"
        return
    compare_with_lscpu(root, scraped(name), caches=True)


# Generated hosts lscpu 2.38 (Debian 12) cannot read, and why.
LSCPU_CANNOT_GENERATED = {
    "k-switches-only": "lscpu 2.38 exits 1 without cpu/possible, which this tree lacks by design",
    "k-thread-siblings-only": "lscpu 2.38 crashes (SIGSEGV) on a topology directory with only thread_siblings",
}
# Generated hosts whose caches lscpu 2.38 counts otherwise, and why (topology still compared).
LSCPU_CACHES_DIFFER = {
    "k-ia64-zero-maps": "lscpu 2.38 has no fallback for an all-zero shared_cpu_map: one cache per thread",
    "k-first-cpu-not-zero": "lscpu assumes sparc64's caches unshared (an instance per CPU); the kernel does "
    "not say, so we give one instance's size and no count",
    "k-odd-values": "lscpu counts a size it cannot parse as 0; we leave that total out",
}


@pytest.mark.parametrize("host", sorted(GENERATED))
def test_topology_and_caches_equal_lscpu_on_the_generated_hosts(host: str) -> None:
    if host in LSCPU_CANNOT_GENERATED:
        assert lscpu(host_root(host)) is None, f"lscpu reads {host} now: compare, and drop the reason"
        return
    compare_with_lscpu(host_root(host), scrape(host), caches=host not in LSCPU_CACHES_DIFFER)


# --- hwloc's lstopo on the same tree (a second, independent reader) ------------------------

_HWLOC_TYPES = {"0": "Unified", "1": "Data", "2": "Instruction"}


def lstopo(root: Path) -> dict[str, Any] | None:
    """hwloc's view of a tree (its Linux reader only, not the running CPU's CPUID):
    how many packages, cores, PUs and NUMA nodes, and each cache level's total size and
    instances; ``None`` when lstopo cannot read it."""
    binary = need_tool("lstopo-no-graphics", "hwloc")
    env = {"HWLOC_FSROOT": str(root), "HWLOC_COMPONENTS": "linux,-x86", "PATH": os.defpath}
    result = subprocess.run([binary, "--of", "xml"], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    counts: dict[str, int] = {}
    caches: dict[tuple[int, str], list[int]] = {}
    for obj in ET.fromstring(result.stdout).iter("object"):
        kind = obj.get("type", "")
        counts[kind] = counts.get(kind, 0) + 1
        if kind.endswith("Cache"):
            total = caches.setdefault((int(kind[1]), _HWLOC_TYPES[obj.get("cache_type", "0")]), [0, 0])
            total[0] += int(obj.get("cache_size", "0"))
            total[1] += 1
    return {"counts": counts, "caches": caches}


# Generated hosts whose caches hwloc counts otherwise, and why (the rest still compared).
HWLOC_CACHES_DIFFER = {"k-odd-values": "hwloc counts a size it cannot parse as 0; we leave that total out"}


def compare_with_hwloc(root: Path, text: str, caches: bool = True) -> None:
    theirs = lstopo(root)
    assert theirs is not None
    got = samples(text)
    counts = theirs["counts"]
    if counts.get("Package"):  # hwloc makes none where nothing names packages
        assert got["host_cpu_sockets"] == counts["Package"]
    assert got["host_cpu_cores"] == counts["Core"]
    assert got['host_cpu_logical{state="online"}'] == counts["PU"]
    assert got.get("host_numa_nodes", 1) == counts.get("NUMANode", 1)
    if not caches:
        return
    for (level, ctype), (size, instances) in theirs["caches"].items():
        labels = f'{{level="{level}",type="{ctype}"}}'
        assert got[f"host_cpu_cache_size_bytes{labels}"] == size, labels
        assert got[f"host_cpu_cache_instances{labels}"] == instances, labels


@pytest.mark.parametrize("host", sorted(GENERATED))
def test_topology_and_caches_equal_hwlocs_on_the_generated_hosts(host: str) -> None:
    compare_with_hwloc(host_root(host), scrape(host), caches=host not in HWLOC_CACHES_DIFFER)


# --- identity ------------------------------------------------------------------------------

# The source's arch label against ours, where they differ, and why.
ARCH_DIFFERS = {
    "ansible-arm64-4cpu": ("aarch64", "ansible's test names the architecture arm64; Linux's uname says aarch64"),
    "libvirt-ppc-test1": ("ppc64", "libvirt runs this POWER7 tree as its 32-bit ppc case; POWER7 is 64-bit"),
    "archspec-linux-rhel8-power9": (
        "ppc64le",
        "archspec's target family is ppc64 for every POWER; cpuinfo has no byte order, and POWER8 and "
        "later run little-endian Linux far more often (on a live host uname, or cpu_byteorder, decides)",
    ),
    "archspec-linux-unknown-power10": ("ppc64le", "as for POWER9"),
    **{
        name: ("ppc64le", "as for POWER9: libvirt's test runs the POWER8 trees as ppc64, byte order unknown")
        for name in CAPTURES
        if name.startswith("libvirt-ppc64-")
    },
}


@pytest.mark.parametrize("name", [n for n in CAPTURES if "cpuinfo" not in capture(n).get("incomplete", "")])
def test_arch_and_vendor_are_the_sources(name: str) -> None:
    data = capture(name)
    kinds = series(scraped(name), "host_cpu_info")
    if not data["files"].get("proc/cpuinfo"):
        assert kinds == []
        return
    want_arch = ARCH_DIFFERS.get(name, (data["arch"], ""))[0]
    assert {k["arch"] for k in kinds} == {want_arch}
    vendor = data["expected"].get("vendor")
    if name.startswith("archspec-") and vendor not in (None, "generic"):
        assert {k["vendor"] for k in kinds} == {vendor}
    processors = data["expected"].get("processor", [])
    if name.startswith("ansible-") and data["arch"] == "x86_64":
        assert {k["model_name"] for k in kinds} <= set(processors)


def test_old_arm_cpuinfo_with_the_shared_fields_once_is_one_kind() -> None:
    """The Raspberry Pi's 3.x kernel prints "Processor : ARMv6-compatible ... (v6l)" and
    the CPU implementer fields once; the X-Gene's old arm64 kernel lists bare processor
    lines, then the fields."""
    assert series(scraped("libvirt-armv6l-raspberrypi"), "host_cpu_info") == [
        {"arch": "armv6l", "vendor": "ARM", "model_name": "ARM1176", "family": "7", "model": "0xb76",
         "stepping": "r0p7", "microcode": "", "core_type": ""},
    ]  # fmt: skip
    kinds = series(scraped("libvirt-aarch64-f21-mustang"), "host_cpu_info")
    assert [(k["arch"], k["vendor"], k["model_name"]) for k in kinds] == [("aarch64", "APM", "X-Gene")]


def test_32_bit_arm_parts_are_named() -> None:
    kinds = series(scraped("ansible-armv7-rev3-8cpu"), "host_cpu_info")
    assert sorted(k["model_name"] for k in kinds) == ["Cortex-A15", "Cortex-A7"]  # a big.LITTLE Exynos
    assert {k["arch"] for k in kinds} == {"armv7l"}


def test_an_architecture_without_a_parser_is_no_failure() -> None:
    text = scraped("ansible-sparc-t5-debian-ldom-24vcpu")
    assert series(text, "host_cpu_info") == [
        {"arch": "sparc64", "vendor": "", "model_name": "UltraSparc T5 (Niagara5)", "family": "", "model": "",
         "stepping": "", "microcode": "", "core_type": ""},
    ]  # fmt: skip
    assert samples(text)['host_exporter_collector_success{collector="cpu"}'] == 1


# --- s390 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "l3", "l4"),
    [
        ("libvirt-s390x-with-frequency", 65536, 491520),
        ("ansible-s390x-z13-2cpu", None, None),
        ("ansible-s390x-z14-64cpu", None, None),
    ],
)
def test_s390_shared_caches_come_from_cpuinfo(name: str, l3: int | None, l4: int | None) -> None:
    cpuinfo = capture(name)["files"]["proc/cpuinfo"]
    sizes = dict(re.findall(r"level=(\d) type=Unified scope=Shared size=(\d+)K", cpuinfo))
    if l3 is not None:  # the sizes written out, where they are known
        assert (int(sizes["3"]), int(sizes["4"])) == (l3, l4)
    got = samples(scraped(name))
    assert got['host_cpu_cache_size_bytes{level="3",type="Unified"}'] == int(sizes["3"]) * 1024
    assert got['host_cpu_cache_size_bytes{level="4",type="Unified"}'] == int(sizes["4"]) * 1024
    assert 'host_cpu_cache_instances{level="3",type="Unified"}' not in got, "how many, the kernel does not say"


def test_a_z_vm_guest_is_a_guest() -> None:
    got = samples(scraped("ansible-s390x-8561-sysinfo"))
    assert got["host_virt_guest"] == 1
    assert got['host_virt_hypervisor_info{hypervisor="zvm"}'] == 1
