"""This machine, read for real: the exporter's topology and caches equal lscpu's, and its
NUMA cells, CPU signature and host UUID equal what a real libvirtd reports in
``virsh capabilities``.

Each assertion holds on any x86 or arm64 Debian host, not only this one: it compares
only what the exporter can know from the same /proc and /sys (libvirt and lscpu read
more: libvirt's flat fallback shape, its offline CPUs in a cell, CPUID-only features
(those are tests/views/test_capabilities.py's) are left out, each below with its reason)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_pm_exporter.readers.cpulist import parse_cpulist
from tests.conftest import need_root, need_tool, samples, scrape, series, wait_until
from tests.test_real_hosts import compare_with_lscpu, lscpu

ONLINE = parse_cpulist(Path("/sys/devices/system/cpu/online").read_text())


@pytest.fixture(scope="module")
def this_host() -> str:
    """A scrape of the live /proc and /sys, in process."""
    return scrape(Path("/"))


def test_topology_and_caches_equal_lscpu(this_host: str) -> None:
    """lscpu reads the same files (its own JSON, sizes in bytes): the same comparison as
    on every capture and generated tree."""
    compare_with_lscpu(Path("/"), this_host)
    got = samples(this_host)
    info = lscpu(Path("/"))
    assert info is not None
    assert got["host_numa_nodes"] == int(info.get("NUMA node(s)", "1"))
    assert got['host_cpu_logical{state="present"}'] == int(info["CPU(s)"])


@pytest.fixture(scope="module")
def capabilities(this_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ET.Element]:
    """`virsh capabilities` from a libvirtd of our own (private socket, host UUID taken
    from the same source the exporter used)."""
    need_root()
    libvirtd = need_tool("libvirtd", "libvirt-daemon-system")
    virsh = need_tool("virsh", "libvirt-clients")
    tmp = tmp_path_factory.mktemp("libvirt")
    source = series(this_host, "host_uuid_info")[0]["source"]
    conf = tmp / "libvirtd.conf"
    conf.write_text(
        f'unix_sock_dir = "{tmp}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        f'host_uuid_source = "{"machine-id" if source == "machine-id" else "smbios"}"\n'
    )
    proc = subprocess.Popen(
        [libvirtd, "-f", str(conf), "-p", str(tmp / "libvirtd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "libvirtd.log").open("wb"),
    )
    uri = f"qemu:///system?socket={tmp}/libvirt-sock"

    def capabilities() -> str | None:
        result = subprocess.run([virsh, "-c", uri, "capabilities"], capture_output=True, text=True, check=False)
        return result.stdout if result.returncode == 0 else None

    try:
        xml = wait_until(
            capabilities, "libvirtd answering", timeout=60, interval=0.5, proc=proc,
            log=tmp / "libvirtd.log",
        )  # fmt: skip
        yield ET.fromstring(xml)
    finally:
        proc.terminate()
        proc.wait(30)


def test_numa_cells_equal_libvirts(this_host: str, capabilities: ET.Element) -> None:
    got = samples(this_host)
    cells = capabilities.findall("./host/topology/cells/cell")
    assert cells
    assert got["host_numa_nodes"] == len(cells)
    for cell in cells:
        node = cell.get("id")
        memory = cell.find("memory")
        assert memory is not None
        assert memory.get("unit") == "KiB"
        assert got[f'host_numa_node_memory_bytes{{node="{node}"}}'] == int(memory.text or 0) * 1024
        # libvirt lists a node's offline CPUs too; the exporter counts the online ones
        online = [c for c in cell.findall("./cpus/cpu") if int(c.get("id", "-1")) in ONLINE]
        assert got[f'host_numa_node_cpus{{node="{node}"}}'] == len(online)
        for sibling in cell.findall("./distances/sibling"):
            assert got[f'host_numa_distance{{node="{node}",peer="{sibling.get("id")}"}}'] == int(
                sibling.get("value", "")
            )
        for pages in cell.findall("pages"):
            size_kib = int(pages.get("size", "0"))
            if size_kib != 4:  # the base page count is libvirt's own arithmetic
                key = f'host_numa_node_hugepages{{node="{node}",size_bytes="{size_kib * 1024}"}}'
                assert got[key] == int(pages.text or 0)


def test_topology_equals_libvirts(this_host: str, capabilities: ET.Element) -> None:
    got = samples(this_host)
    # libvirt writes no ids for an offline CPU
    cpus = [c for c in capabilities.findall("./host/topology/cells/cell/cpus/cpu") if c.get("socket_id") is not None]
    assert got["host_cpu_sockets"] == len({c.get("socket_id") for c in cpus})
    assert got["host_cpu_cores"] == len({(c.get("socket_id"), c.get("die_id"), c.get("core_id")) for c in cpus})
    assert got["host_cpu_threads_per_core"] == max(len(parse_cpulist(c.get("siblings", ""))) for c in cpus)
    topology = capabilities.find("./host/cpu/topology")
    assert topology is not None
    per_node = int(topology.get("sockets", "0")) * int(topology.get("cores", "0")) * int(topology.get("threads", "0"))
    if per_node * got["host_numa_nodes"] == got['host_cpu_logical{state="online"}']:
        # libvirt's own shape; where its product does not add up it falls back to a flat
        # one (1 socket, N cores, 1 thread), which is libvirt's arithmetic, not the host's
        assert got["host_cpu_threads_per_core"] == int(topology.get("threads", "0"))


def test_cpu_signature_and_uuid_equal_libvirts(this_host: str, capabilities: ET.Element) -> None:
    kinds = series(this_host, "host_cpu_info")  # a hybrid or big.LITTLE host has several
    assert kinds
    signature = capabilities.find("./host/cpu/signature")
    if signature is not None:  # x86: every kind has the package's signature
        for info in kinds:
            assert info["family"] == signature.get("family")
            assert info["model"] == signature.get("model")
            assert info["stepping"] == signature.get("stepping")
    microcode = capabilities.find("./host/cpu/microcode")
    if microcode is not None:
        assert int(microcode.get("version", "")) in {int(info["microcode"], 16) for info in kinds}
    uuid = capabilities.find("./host/uuid")
    assert uuid is not None
    assert series(this_host, "host_uuid_info")[0]["uuid"] == uuid.text
