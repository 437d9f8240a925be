"""libvirt's CPU map and its host CPU decoder, judged by libvirt's own expectations:
the 61 real machines of libvirt 9.0's ``tests/cputestdata`` (CPUID captures and the
model + features libvirt names for each), and a real VM whose virsh lists features
/proc/cpuinfo cannot show."""

from __future__ import annotations

import http.server
import logging
import os
import shutil
import socket
import struct
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from host_pm_exporter.cli import parse_config
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.cpumap import baseline, cpuid, linux_x86, x86
from host_pm_exporter.cpumap.host import arm_host, ppc64_host, x86_host
from host_pm_exporter.cpumap.loader import PACKED, CpuMap, load_map, read_map
from host_pm_exporter.facts import HostDetails, ScrapeFacts, first_cpu, host_details
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers.cpuinfo import parse_cpuinfo
from host_pm_exporter.reading import SnapshotConfig, build_snapshot
from host_pm_exporter.views.capabilities import capabilities_xml
from host_pm_exporter.wiring import one_reading, shown
from tests.conftest import host_root, need
from tests.helpers.libvirt_cpu import cpuinfo_flags, explain_difference

DATA = Path(__file__).parents[1] / "libvirt"
CPUTESTDATA = DATA / "cputestdata"
CASES = sorted(p.name[: -len("-host.xml")] for p in CPUTESTDATA.glob("*-host.xml"))
HOST_MAP = Path("/usr/share/libvirt/cpu_map")


@pytest.fixture(scope="module")
def cpu_map() -> CpuMap:
    return load_map()


def expectation(case: str) -> tuple[str, list[str], str | None]:
    root = ET.parse(CPUTESTDATA / f"{case}-host.xml").getroot()
    return root.findtext("model") or "", [f.get("name", "") for f in root.findall("feature")], root.findtext("vendor")


def leaves_of(case: str) -> cpuid.Leaves:
    return cpuid.parse_cpudata((CPUTESTDATA / f"{case}.xml").read_bytes())


def test_the_cases_are_there() -> None:
    assert len(CASES) == 61


@pytest.mark.parametrize("case", CASES)
def test_decoder_names_libvirts_model_from_the_cpuid_capture(case: str, cpu_map: CpuMap) -> None:
    """libvirt's decoder test: the CPUID leaves of a real machine -> libvirt's model
    and the features it lists beside it, in its order."""
    leaves = leaves_of(case)
    vendor = x86.vendor_name(leaves.vendor_id(), cpu_map)
    decoded = x86.decode_host(leaves.bits(), cpu_map, vendor, leaves.signature())
    model, features, their_vendor = expectation(case)
    assert decoded is not None
    assert (decoded.model, list(decoded.features), decoded.vendor) == (model, features, their_vendor)


@pytest.mark.parametrize("case", CASES)
def test_decoder_names_libvirts_model_from_the_same_feature_set(case: str, cpu_map: CpuMap) -> None:
    """The features libvirt lists (its model's and those beside it) fed back as a
    feature set: the same model and the same list."""
    model, features, vendor = expectation(case)
    signature = leaves_of(case).signature()
    decoded = x86.decode_host(x86.model_bits(model, features, cpu_map), cpu_map, vendor, signature)
    assert decoded is not None
    assert (decoded.model, list(decoded.features)) == (model, features)


@pytest.mark.parametrize("case", CASES)
def test_what_cpuinfo_cannot_show_is_listed_with_a_reason(case: str, cpu_map: CpuMap) -> None:
    """From the flags Linux would print for each machine: every feature lost is one
    listed in CPUID_ONLY, none is invented, and the model differs from libvirt's only
    when a lost feature is one of the model's own (then adding the lost ones back
    gives libvirt's model)."""
    leaves = leaves_of(case)
    vendor_id, full = leaves.vendor_id(), leaves.bits()
    seen = linux_x86.bits_from_flags(cpuinfo_flags(full, vendor_id), vendor_id)
    theirs, ours = set(x86.features_in(full, cpu_map)), set(x86.features_in(seen, cpu_map))
    assert ours <= theirs
    excused = set(linux_x86.cpuid_only(vendor_id))
    assert theirs - ours <= excused, sorted(theirs - ours - excused)
    model, _features, vendor = expectation(case)
    decoded = x86.decode_host(seen, cpu_map, vendor, leaves.signature())
    assert decoded is not None
    if decoded.model != model:
        model_features = set(x86.features_in(x86.model_bits(model, (), cpu_map), cpu_map))
        assert (theirs - ours) & model_features, f"{decoded.model} != {model} without a reason"


def test_cooperlake_is_the_case_cpuinfo_cannot_tell(cpu_map: CpuMap) -> None:
    """libvirt's Cooperlake model needs IA32_ARCH_CAPABILITIES bits Linux does not
    print; from cpuinfo alone the decoder can only say Cascadelake-Server."""
    leaves = leaves_of("x86_64-cpuid-Cooperlake")
    seen = linux_x86.bits_from_flags(cpuinfo_flags(leaves.bits(), "GenuineIntel"), "GenuineIntel")
    decoded = x86.decode_host(seen, cpu_map, "Intel", leaves.signature())
    assert decoded is not None
    assert decoded.model == "Cascadelake-Server"


def test_cpuid_walk_reads_the_leaves_libvirt_reads() -> None:
    """The /dev/cpu/N/cpuid walk, run against captured leaves: it asks for every leaf
    and sub-leaf that holds a feature bit, and decoding what it read names the model
    libvirt names."""
    cpu_map = load_map()
    for case in CASES:
        leaves = leaves_of(case)
        asked: list[tuple[int, int]] = []

        def call(
            leaf: int, sub: int, leaves: cpuid.Leaves = leaves, asked: list[tuple[int, int]] = asked
        ) -> cpuid.Regs:
            asked.append((leaf, sub))
            return leaves.cpuid.get((leaf, sub), (0, 0, 0, 0))

        walked = cpuid.Leaves(cpuid.walk(call), leaves.msr)
        feature_leaves = {(b[1], b[2]) for f in cpu_map.x86_features for b in f.bits if b[0] == "cpuid"}
        wanted = {k for k in leaves.cpuid if k in feature_leaves}
        assert wanted <= set(walked.cpuid), (case, sorted(wanted - set(walked.cpuid)))
        model, features, vendor = expectation(case)
        decoded = x86.decode_host(walked.bits(), cpu_map, vendor, walked.signature())
        assert decoded is not None
        assert (decoded.model, list(decoded.features)) == (model, features), case


def test_cpuid_device_unreadable_falls_back_to_cpuinfo(
    cpu_map: CpuMap, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--capabilities.cpuid where the root has no /dev/cpu/N/cpuid (no cpuid module, not
    root): the reading takes no leaves, says so once (a warning naming the file and
    why), and the CPU is named from cpuinfo's flags."""
    flags = ["fpu", "vme", "pse", "sse4_2", "sse4_1"]
    host = x86_host(flags, "GenuineIntel", (6, 15, 11), cpu_map, None)
    assert host.source == "cpuinfo"
    assert host.model == "486"
    assert host.features == ("sse4.1", "sse4.2")
    fixture = host_root("spr-2s")
    fs = HostFS(str(fixture / "proc"), str(fixture / "sys"), str(tmp_path))
    details = host_details(cpuid=True).gather(ScrapeFacts(fs))
    assert isinstance(details, HostDetails)
    assert details.cpuid == {}
    assert details.cpu_map is not None
    assert capabilities_of(fs, cpuid=True) == capabilities_of(fs, cpuid=False)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "CPUID not read" in r.getMessage()]
    assert len(warned) == 1, caplog.records
    assert str(tmp_path / "dev" / "cpu") in str(warned[0].__dict__["file"])
    assert warned[0].__dict__["err"] == "No such file or directory"


def test_feature_names_are_libvirts_spelling(cpu_map: CpuMap) -> None:
    host = x86_host(
        ["fpu", "pse", "vme", "pclmulqdq", "sse4_1", "tsc_deadline_timer", "ibrs"], "GenuineIntel", None, cpu_map
    )
    assert host.features == ("pclmuldq", "sse4.1", "tsc-deadline", "spec-ctrl")


def test_amd_speculation_flags_are_amds_leaf(cpu_map: CpuMap) -> None:
    host = x86_host(["fpu", "pse", "vme", "ibpb", "ibrs", "stibp", "ssbd"], "AuthenticAMD", None, cpu_map)
    assert host.features == ("ibpb", "ibrs", "amd-stibp", "amd-ssbd")
    virt = x86_host(["fpu", "pse", "vme", "ssbd", "virt_ssbd"], "AuthenticAMD", None, cpu_map)
    assert virt.features == ("virt-ssbd",)


def test_every_linux_flag_is_a_feature_of_the_map(cpu_map: CpuMap) -> None:
    """Each bit of the Linux table is exactly one feature of libvirt's map, and each
    CPUID_ONLY name is a feature of the map."""
    by_bit = {b: f.name for f in cpu_map.x86_features for b in f.bits}
    for flag, bit in linux_x86.LINUX_FLAGS.items():
        assert bit in by_bit, flag
    for table in linux_x86.SPECULATION.values():
        assert all(bit in by_bit for bit in table.values())
    assert set(linux_x86.cpuid_only("")) <= {f.name for f in cpu_map.x86_features}


def test_packed_map_is_the_hosts_where_libvirt_is_installed() -> None:
    need(HOST_MAP.is_dir(), "no libvirt CPU map on this host to compare with (tests/run installs libvirt)")
    for path in HOST_MAP.glob("*.xml"):
        assert (PACKED / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_broken_host_map_falls_back_to_the_packed_one(tmp_path: Path) -> None:
    broken = tmp_path / "cpu_map"
    shutil.copytree(PACKED, broken)
    (broken / "x86_features.xml").write_text("<cpus><feature name='x'>")
    assert load_map(str(broken)).source == str(PACKED)
    (broken / "x86_features.xml").write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><cpus/>")
    assert load_map(str(broken)).source == str(PACKED)
    good = tmp_path / "good"
    shutil.copytree(PACKED, good)
    assert load_map(str(good)).source == str(good)
    assert len(read_map(good).x86_models) == len(read_map(PACKED).x86_models)


@pytest.mark.parametrize("name", ["index.xml", "x86_features.xml"])
def test_a_fifo_in_the_host_map_is_refused_at_once(tmp_path: Path, name: str) -> None:
    """A FIFO where a map file should be is not waited on: the packed map is used."""

    odd = tmp_path / "cpu_map"
    shutil.copytree(PACKED, odd)
    (odd / name).unlink()
    os.mkfifo(odd / name)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(load_map(str(odd)).source), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert got == [str(PACKED)], "the map read waited on a FIFO"


def test_arm_and_power_models_come_from_the_map(cpu_map: CpuMap) -> None:
    altra = arm_host(0x41, 0xD0C, ["fp", "asimd", "evtstrm", "aes", "sve2", "paca"], cpu_map)
    assert (altra.model, altra.vendor, altra.features) == (
        "Neoverse-N1",
        "ARM",
        ("fp", "asimd", "evtstrm", "aes", "paca"),
    )
    assert arm_host(0xC0, 0xAC3, ["fp"], cpu_map) == arm_host(None, None, [], cpu_map)  # no model: nothing
    assert arm_host(0x61, 0xD0C, ["fp"], cpu_map).vendor is None  # libvirt knows no vendor 0x61
    assert ppc64_host(0x004E1202, cpu_map).model == "POWER9"
    assert ppc64_host(0x00800100, cpu_map).vendor == "IBM"
    assert ppc64_host(0x12345678, cpu_map).model is None


def vm_cpu() -> tuple[ET.Element, dict[str, str]]:
    caps = ET.parse(DATA / "vm-spr-virsh-capabilities.xml").getroot()
    cpu = caps.find("host/cpu")
    assert cpu is not None
    info = parse_cpuinfo((DATA / "vm-spr-cpuinfo.txt").read_text(), "x86_64")
    entry = info.cpus[0]
    fields = {"vendor_id": entry.kind.vendor, "flags": entry.flags, "family": entry.kind.family,
              "model": entry.kind.model, "stepping": entry.kind.stepping}  # fmt: skip
    return cpu, fields


def test_captured_vm_with_cpuid_only_features_is_explained(cpu_map: CpuMap) -> None:
    """A real VM whose virsh lists features /proc/cpuinfo cannot show: our <cpu> from
    its cpuinfo names the same model and every feature virsh lists but those CPUID_ONLY
    explains."""
    theirs, fields = vm_cpu()
    cpuid_only = {f.get("name") for f in theirs.findall("feature")} & set(linux_x86.cpuid_only(fields["vendor_id"]))
    assert len(cpuid_only) >= 10  # the capture really has them
    signature = (int(fields["family"]), int(fields["model"]), int(fields["stepping"]))
    host = x86_host(fields["flags"].split(), fields["vendor_id"], signature, cpu_map)
    ours = ET.fromstring(
        "<cpu><arch>x86_64</arch>"
        f"<model>{host.model}</model><vendor>{host.vendor}</vendor>"
        + "".join(f"<feature name='{n}'/>" for n in host.features)
        + "</cpu>"
    )
    assert host.model == theirs.findtext("model")
    assert explain_difference(ours, theirs, cpu_map, fields["vendor_id"]) == []
    # a feature that cpuinfo does show, missing from ours, is not excused
    ours.remove(ours.findall("feature")[0])
    assert explain_difference(ours, theirs, cpu_map, fields["vendor_id"])


def test_baseline_refuses_what_has_no_common_cpu(cpu_map: CpuMap) -> None:
    intel = baseline.HostCpuDef("a", "x86_64", "Skylake-Client", "Intel", ())
    amd = baseline.HostCpuDef("b", "x86_64", "EPYC", "AMD", ())
    with pytest.raises(baseline.BaselineError, match="vendors do not match"):
        baseline.baseline([intel, amd], cpu_map)
    with pytest.raises(baseline.BaselineError, match="unknown CPU feature sse4_1"):
        baseline.baseline([baseline.HostCpuDef("c", "x86_64", "486", None, ("sse4_1",))], cpu_map)
    with pytest.raises(baseline.BaselineError, match="missing CPU model name"):
        baseline.host_cpu(b"<capabilities><host><cpu><arch>x86_64</arch></cpu></host></capabilities>", "d")
    with pytest.raises(baseline.BaselineError, match="document type"):
        baseline.host_cpu(b"<!DOCTYPE a [<!ENTITY x 'y'>]><cpu/>", "e")
    with pytest.raises(baseline.BaselineError, match="only x86"):
        baseline.baseline([baseline.HostCpuDef("f", "aarch64", "Neoverse-N1", "ARM", ())], cpu_map)


def test_msr_read_where_the_msr_driver_puts_it(tmp_path: Path) -> None:
    """The msr driver answers an 8-byte read at the MSR's index: a file laid out so
    gives the value back; a missing or short one gives None."""
    path = tmp_path / "msr"
    with path.open("wb") as handle:
        handle.seek(cpuid.ARCH_CAPABILITIES)
        handle.write((0x2B | 1 << 33).to_bytes(8, "little"))
    assert cpuid.read_msr(str(path), cpuid.ARCH_CAPABILITIES) == 0x2B | 1 << 33
    assert cpuid.read_msr(str(path), cpuid.ARCH_CAPABILITIES + 4) is None
    assert cpuid.read_msr(str(tmp_path / "none"), cpuid.ARCH_CAPABILITIES) is None


# libvirt 9.0's tests/cputest.c, DO_TEST_CPUID_BASELINE: expectation -> the two CPUs
CPUID_BASELINES = {
    "Ryzen+Rome": ("Ryzen-7-1800X-Eight-Core", "Ryzen-9-3900X-12-Core"),
    "EPYC+Rome": ("EPYC-7601-32-Core", "EPYC-7502-32-Core"),
    "Haswell-noTSX-IBRS+Skylake": ("Xeon-E5-2609-v3", "Xeon-Gold-6148"),
    "Haswell-noTSX-IBRS+Skylake-IBRS": ("Xeon-E5-2609-v3", "Xeon-Gold-6130"),
    "Broadwell-IBRS+Cascadelake": ("Xeon-E5-2623-v4", "Xeon-Platinum-8268"),
    "Cascadelake+Skylake-IBRS": ("Xeon-Platinum-8268", "Xeon-Gold-6130"),
    "Cascadelake+Skylake": ("Xeon-Platinum-9242", "Xeon-Gold-6148"),
    "Cascadelake+Icelake": ("Xeon-Platinum-9242", "Ice-Lake-Server"),
    "Cooperlake+Icelake": ("Cooperlake", "Ice-Lake-Server"),
    "Cooperlake+Cascadelake": ("Cooperlake", "Xeon-Platinum-9242"),
    "Skylake-Client+Server": ("Core-i5-6600", "Xeon-Gold-6148"),
    "Haswell-noTSX-IBRS+Broadwell": ("Xeon-E5-2609-v3", "Xeon-E5-2650-v4"),
    "Haswell+Skylake": ("Xeon-E7-8890-v3", "Xeon-Gold-5115"),
}


def same_xml(ours: str, theirs: str) -> bool:
    return " ".join(ours.split()) == " ".join(theirs.split())


@pytest.mark.parametrize("label", sorted(CPUID_BASELINES))
def test_baseline_equals_libvirts_expectation_for_real_cpu_pairs(label: str, cpu_map: CpuMap) -> None:
    """libvirt's baseline test over pairs of real CPUs (as QEMU reports them): the same
    model, vendor, required and disabled features, in the same order."""
    hosts = [
        cpu
        for name in CPUID_BASELINES[label]
        for cpu in baseline.host_cpus((CPUTESTDATA / f"x86_64-cpuid-{name}-json.xml").read_bytes(), name)
    ]
    ours = baseline.baseline(hosts, cpu_map, qemu_filter=False).xml()
    assert same_xml(ours, (CPUTESTDATA / f"x86_64-cpuid-baseline-{label}.xml").read_text())


@pytest.mark.parametrize("name", ["simple", "features", "no-vendor", "some-vendors", "Westmere+Nehalem"])
def test_baseline_equals_libvirts_expectation_for_model_lists(name: str, cpu_map: CpuMap) -> None:
    hosts = baseline.host_cpus((CPUTESTDATA / f"x86_64-baseline-{name}.xml").read_bytes(), name)
    ours = baseline.baseline(hosts, cpu_map, qemu_filter=False).xml()
    assert same_xml(ours, (CPUTESTDATA / f"x86_64-baseline-{name}-result.xml").read_text())


def test_baseline_of_incompatible_vendors_fails_as_libvirts(cpu_map: CpuMap) -> None:
    hosts = baseline.host_cpus((CPUTESTDATA / "x86_64-baseline-incompatible-vendors.xml").read_bytes(), "x")
    with pytest.raises(baseline.BaselineError, match="CPU vendors do not match"):
        baseline.baseline(hosts, cpu_map)


class FakeCpuidDriver:
    """Linux's cpuid driver (arch/x86/kernel/cpuid.c) answering from captured leaves: a
    16-byte read at file offset leaf | subleaf << 32 gives EAX, EBX, ECX, EDX (zeros for
    a leaf the capture lacks); the msr driver, an 8-byte read at the MSR's index."""

    def __init__(self, leaves: cpuid.Leaves, cpuid_path: str) -> None:
        self.leaves, self.cpuid_path = leaves, cpuid_path
        self.offsets: list[int] = []

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/cpuid"):
            assert size == 16
            self.offsets.append(offset)
            regs = self.leaves.cpuid.get((offset & 0xFFFFFFFF, offset >> 32), (0, 0, 0, 0))
            return struct.pack("<IIII", *regs)
        eax, edx = self.leaves.msr.get(offset, (0, 0))
        return struct.pack("<II", eax, edx)[:size]


@pytest.mark.parametrize(
    "case", ["x86_64-cpuid-Xeon-Gold-6148", "x86_64-cpuid-EPYC-7601-32-Core-ibpb", "x86_64-cpuid-Cooperlake"]
)
def test_cpuid_device_gives_libvirts_model(
    case: str, cpu_map: CpuMap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leaves read from captured leaves served as the cpuid and msr devices serve
    them, decoded: libvirt's model and features, also where cpuinfo alone could not
    tell (Cooperlake)."""
    leaves = leaves_of(case)
    (tmp_path / "cpuid").write_bytes(b"")
    (tmp_path / "msr").write_bytes(b"")
    driver = FakeCpuidDriver(leaves, str(tmp_path / "cpuid"))
    monkeypatch.setattr(os, "pread", driver.pread)
    host = x86_host(["fpu"], "GenuineIntel", (6, 1, 1), cpu_map, cpuid.read_leaves(str(tmp_path / "cpuid")))
    model, features, vendor = expectation(case)
    assert host.source == "cpuid"
    assert (host.model, list(host.features), host.vendor) == (model, features, vendor)
    assert 0 in driver.offsets
    assert 0x7 | 0 << 32 in driver.offsets
    assert 0x80000000 in driver.offsets


def capabilities_of(fs: HostFS, *, cpuid: bool) -> bytes:
    snapshot = build_snapshot(SnapshotConfig(fs, (*REGISTRY, host_details(cpuid)), probes=("kernel",)))
    return capabilities_xml(snapshot)


def test_capabilities_cpuid_is_read_under_the_root_and_decoded_by_the_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--capabilities.cpuid from the command line through a reading: the leaves and the
    MSR are read while the host is read, from /dev/cpu/N/cpuid under --path.rootfs (N
    the first online CPU), and the XML names libvirt's model and features from them
    (Cooperlake, which cpuinfo's flags cannot tell); without the flag the device is not
    touched."""
    fixture = host_root("spr-2s")
    fs = HostFS(str(fixture / "proc"), str(fixture / "sys"), str(tmp_path))
    facts = ScrapeFacts(fs)
    info = facts.cpuinfo()
    assert info is not None
    device = tmp_path / "dev" / "cpu" / str(first_cpu(info, facts.online_or_empty()).cpu)
    device.mkdir(parents=True)
    (device / "cpuid").write_bytes(b"")
    (device / "msr").write_bytes(b"")
    case = "x86_64-cpuid-Cooperlake"
    driver = FakeCpuidDriver(leaves_of(case), str(device / "cpuid"))
    monkeypatch.setattr(os, "pread", driver.pread)
    args = [f"--path.procfs={fixture / 'proc'}", f"--path.sysfs={fixture / 'sys'}", f"--path.rootfs={tmp_path}"]

    def host_cpu(*flags: str) -> ET.Element:
        config = parse_config([*args, "--pm.probes=kernel", "--capabilities", *flags])
        assert config.one_shot is not None
        snapshot, exposition = one_reading(config, config.one_shot)
        cpu = ET.fromstring(config.one_shot.render(shown(config, snapshot, exposition))).find("host/cpu")
        assert cpu is not None
        return cpu

    cpu = host_cpu("--capabilities.cpuid")
    model, features, vendor = expectation(case)
    assert (cpu.findtext("model"), [f.get("name") for f in cpu.findall("feature")], cpu.findtext("vendor")) == (
        model,
        features,
        vendor,
    )
    read = len(driver.offsets)
    assert read > 0
    assert host_cpu().findtext("model") != model
    assert len(driver.offsets) == read


def test_baseline_cli_refuses_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Garbage, an oversized document, a missing file, a foreign scheme, a closed port:
    exit 1, one line on stderr, nothing on stdout, no traceback."""
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"\x00\xff<capabilities><host><cpu>")
    huge = tmp_path / "huge.xml"
    huge.write_bytes(b"<capabilities>" + b" " * baseline.MAX_INPUT + b"</capabilities>")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/capabilities"
    for source in (str(garbage), str(huge), str(tmp_path / "none.xml"), "ftp://127.0.0.1/x", closed):
        assert baseline.main([source]) == 1, source
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1, err
        assert "Traceback" not in err


def test_baseline_follows_no_redirect_off_http(capsys: pytest.CaptureFixture[str]) -> None:
    """A host answering GET /capabilities with a redirect to file:// or ftp:// is refused."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd" if "file" in self.path else "ftp://127.0.0.1/x")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for path in ("/file", "/ftp"):
            assert baseline.main([f"http://127.0.0.1:{server.server_address[1]}{path}"]) == 1
            out, err = capsys.readouterr()
            assert out == ""
            assert "redirected to" in err or "Redirection to" in err  # ours, or urllib's own refusal of file://
            assert err.count("\n") == 1
    finally:
        server.shutdown()
        server.server_close()
