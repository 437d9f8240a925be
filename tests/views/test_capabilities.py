"""The libvirt capabilities XML: valid against libvirt's own schema for every fixture
host, power management by the decision table, and equal to what a real libvirtd says
of this machine (``virsh capabilities``) but for the differences listed below."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.facts import HOST_DETAILS
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.reading import SnapshotConfig, build_snapshot
from host_pm_exporter.views import libvirt_features
from host_pm_exporter.views.capabilities import capabilities_xml
from tests.conftest import (
    CPU_HOSTS,
    HOSTS,
    expected,
    exporter_command,
    fixture_args,
    host_root,
    need,
    need_root,
    need_tool,
    wait_until,
)

LIBVIRT_SHARE = Path("/usr/share/libvirt")
RNG = LIBVIRT_SHARE / "schemas" / "capability.rng"
CPU_MAP = LIBVIRT_SHARE / "cpu_map" / "x86_features.xml"

# Where ours differs from virsh's on purpose: virsh's spelling -> ours, and why.
FEATURE_SPELLING = {
    # libvirt 9.0's capability.rng allows host CPU feature names of [a-zA-Z0-9\-_]+
    # only: its own "sse4.1" fails it.  Ours is the alias libvirt's cpu_map records.
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
}
# Elements virsh has and ours leaves out, and why.
LEFT_OUT = {
    "cpu/model": "x86: libvirt's model choice is its own scoring against its model list",
    "cpu/counter": "the TSC frequency comes from KVM, a hypervisor driver's fact",
    "cpu/maxphysaddr": "a QEMU driver setting (mode='emulate')",
    "migration_features": "the hypervisor driver's",
    "secmodel": "the hypervisor driver's security drivers",
}


def render(fs: HostFS) -> bytes:
    snapshot = build_snapshot(SnapshotConfig(fs, (*REGISTRY, HOST_DETAILS), probes=("kernel",)))
    return capabilities_xml(snapshot)


def fixture_fs(host: str) -> HostFS:
    root = host_root(host)
    return HostFS(str(root / "proc"), str(root / "sys"), str(root))


def validate(xml: bytes, tmp_path: Path) -> None:
    xmllint = need_tool("xmllint", "libxml2-utils")
    need(RNG.is_file(), f"{RNG} not found (Debian package libvirt0)")
    path = tmp_path / "capabilities.xml"
    path.write_bytes(xml)
    result = subprocess.run(
        [xmllint, "--noout", "--relaxng", str(RNG), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr + xml.decode()


@pytest.mark.parametrize("host", HOSTS)
def test_fixture_hosts_validate_against_libvirts_schema(host: str, tmp_path: Path) -> None:
    xml = render(fixture_fs(host))
    validate(xml, tmp_path)
    assert not xml.startswith(b"<?xml")  # libvirt prints no declaration
    root = ET.fromstring(xml)
    if host in CPU_HOSTS:
        assert root.findall("./host/topology/cells/cell/cpus/cpu"), "a CPU host lists its CPUs"
        assert root.find("./host/cpu/topology") is not None


def test_this_host_validates(tmp_path: Path) -> None:
    validate(render(HostFS()), tmp_path)


def test_libvirts_own_output_needs_the_respelling(tmp_path: Path) -> None:
    """The schema rejects a dotted host CPU feature name (what libvirt 9.0 prints),
    which is why ours respells them."""
    xml = render(fixture_fs("spr-2s"))
    assert b"<feature name='sse4_2'/>" in xml
    xmllint = need_tool("xmllint", "libxml2-utils")
    need(RNG.is_file(), f"{RNG} not found (Debian package libvirt0)")
    path = tmp_path / "dotted.xml"
    path.write_bytes(xml.replace(b"'sse4_2'", b"'sse4.2'"))
    result = subprocess.run(
        [xmllint, "--noout", "--relaxng", str(RNG), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "Element feature failed to validate attributes" in result.stderr


def power_targets(host: str) -> set[str]:
    root = ET.fromstring(render(fixture_fs(host)))
    pm = root.find("./host/power_management")
    assert pm is not None
    return {child.tag for child in pm}


def test_s2idle_laptop_has_no_suspend_mem() -> None:
    facts = expected("laptop-s2idle")
    assert facts["supported"]["S3"] == 0
    assert facts["supported"]["S2idle"] == 1
    targets = power_targets("laptop-s2idle")
    assert "suspend_mem" not in targets
    assert ("suspend_disk" in targets) == bool(facts["ready"]["S4"])
    assert ("suspend_hybrid" in targets) == bool(facts["ready"]["hybrid"])


def test_s3_server_suspends_to_memory_and_disk() -> None:
    facts = expected("server-s3")
    assert facts["supported"]["S3"] == 1
    assert facts["ready"]["S4"] == 1
    assert power_targets("server-s3") == {"suspend_mem", "suspend_disk", "suspend_hybrid"}


def test_feature_table_is_libvirts_data() -> None:
    """Every libvirt name in the table is a feature of libvirt's installed cpu_map,
    in its order, and no Linux flag maps twice."""
    need(CPU_MAP.is_file(), f"{CPU_MAP} not found (Debian package libvirt0)")
    names = [f.get("name", "") for f in ET.parse(CPU_MAP).getroot().iter("feature")]
    ours = [name for _linux, name in libvirt_features.X86_FEATURES]
    ours += [n for implied in libvirt_features.X86_IMPLIED.values() for n in implied]
    assert set(ours) <= set(names), set(ours) - set(names)
    order = [names.index(name) for _linux, name in libvirt_features.X86_FEATURES]
    assert order == sorted(order)
    linux = [flag for flag, _name in libvirt_features.X86_FEATURES]
    assert len(linux) == len(set(linux))


@pytest.fixture(scope="module")
def virsh_capabilities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], ET.Element]]:
    """`virsh capabilities`, asked anew on each call, of a libvirtd of our own
    (private socket; host UUID from the source the exporter uses)."""
    need_root()
    libvirtd = need_tool("libvirtd", "libvirt-daemon-system")
    virsh = need_tool("virsh", "libvirt-clients")
    tmp = tmp_path_factory.mktemp("libvirt")
    ours = ET.fromstring(render(HostFS()))
    dmi = any(Path(p).is_file() for p in ("/sys/class/dmi/id/product_uuid", "/sys/devices/virtual/dmi/id/product_uuid"))
    source = "smbios" if dmi and ours.find("./host/uuid") is not None else "machine-id"
    conf = tmp / "libvirtd.conf"
    conf.write_text(
        f'unix_sock_dir = "{tmp}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\nhost_uuid_source = "{source}"\n'
    )
    log = tmp / "libvirtd.log"
    proc = subprocess.Popen(
        [libvirtd, "-f", str(conf), "-p", str(tmp / "libvirtd.pid")], stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )
    uri = f"qemu:///system?socket={tmp}/libvirt-sock"

    def ask() -> str | None:
        result = subprocess.run([virsh, "-c", uri, "capabilities"], capture_output=True, text=True, check=False)
        return result.stdout if result.returncode == 0 else None

    try:
        wait_until(ask, "libvirtd answering", timeout=60, interval=0.5, proc=proc, log=log)
        yield lambda: ET.fromstring(wait_until(ask, "virsh capabilities", timeout=10))
    finally:
        proc.terminate()
        proc.wait(30)


def attrs(elements: list[ET.Element], *names: str) -> list[tuple[str | None, ...]]:
    return [tuple(e.get(n) for n in names) for e in elements]


def test_this_host_equals_virsh(virsh_capabilities: Callable[[], ET.Element]) -> None:
    before = virsh_capabilities()
    ours = ET.fromstring(render(HostFS()))
    after = virsh_capabilities()
    theirs_host, host = before.find("host"), ours.find("host")
    assert theirs_host is not None
    assert host is not None
    assert host.findtext("uuid") == theirs_host.findtext("uuid")
    assert host.findtext("cpu/arch") == theirs_host.findtext("cpu/arch")
    assert host.findtext("cpu/vendor") == theirs_host.findtext("cpu/vendor")
    for path, names in (
        ("cpu/microcode", ("version",)),
        ("cpu/signature", ("family", "model", "stepping")),
        ("cpu/topology", ("sockets", "dies", "cores", "threads")),
        ("iommu", ("support",)),
    ):
        assert attrs(host.findall(path), *names) == attrs(theirs_host.findall(path), *names), path
    assert attrs(host.findall("cpu/pages"), "unit", "size") == attrs(theirs_host.findall("cpu/pages"), "unit", "size")
    features = {f.get("name") for f in host.findall("cpu/feature")}
    wanted = {FEATURE_SPELLING.get(n, n) for f in theirs_host.findall("cpu/feature") if (n := f.get("name"))}
    assert wanted <= features, f"virsh lists features ours lacks: {sorted(wanted - features)}"
    # cells: memory may move between two reads on a guest with a balloon or hotplug
    # memory, so ours must equal virsh's just before or just after
    cells = host.findall("topology/cells/cell")
    for when in (before, after):
        theirs = when.findall("host/topology/cells/cell")
        assert attrs(cells, "id") == attrs(theirs, "id")
    for cell in cells:
        at = f"host/topology/cells/cell[@id='{cell.get('id')}']"
        memory = cell.findtext("memory")
        pages = [(p.get("size"), p.text) for p in cell.findall("pages")]
        candidates = [(w.findtext(f"{at}/memory"), [(p.get("size"), p.text) for p in w.findall(f"{at}/pages")])
                      for w in (before, after)]  # fmt: skip
        assert (memory, pages) in candidates
        theirs_cell = before.find(at)
        assert theirs_cell is not None
        sib = ("id", "value")
        assert attrs(cell.findall("distances/sibling"), *sib) == attrs(theirs_cell.findall("distances/sibling"), *sib)
        ids = ("id", "socket_id", "die_id", "core_id", "siblings")
        assert attrs(cell.findall("cpus/cpu"), *ids) == attrs(theirs_cell.findall("cpus/cpu"), *ids)
        ours_cpus, theirs_cpus = cell.find("cpus"), theirs_cell.find("cpus")
        assert ours_cpus is not None
        assert theirs_cpus is not None
        assert ours_cpus.get("num") == theirs_cpus.get("num")
    bank = ("id", "level", "type", "size", "unit", "cpus")
    assert attrs(host.findall("cache/bank"), *bank) == attrs(theirs_host.findall("cache/bank"), *bank)
    # every element virsh has is in ours, or left out for a reason written above
    for child in theirs_host:
        for path in [child.tag, *(f"{child.tag}/{c.tag}" for c in child)]:
            if path in LEFT_OUT or path.split("/")[0] in LEFT_OUT:
                continue
            assert host.find(path) is not None, f"ours lacks {path}"


def test_get_capabilities_and_the_flag_through_the_console_script(exporter: Any, tmp_path: Path) -> None:
    """The same XML over HTTP and from --capabilities, valid against libvirt's schema."""
    exp = exporter([*fixture_args("spr-2s"), "--pm.probes=kernel"])
    status, headers, body = exp.get("/capabilities")
    assert status == 200
    assert headers["Content-Type"].startswith("application/xml")
    validate(body, tmp_path)
    flag = subprocess.run([*exporter_command(), *fixture_args("spr-2s"), "--pm.probes=kernel", "--capabilities"],
                          capture_output=True, check=False, timeout=60)  # fmt: skip
    assert flag.returncode == 0, flag.stderr
    assert flag.stdout == body
    assert ET.fromstring(body).find("./host/power_management/suspend_mem") is not None
