"""The CPU readers on text and small trees: architectures without a fixture host,
fallbacks, and garbage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.cpuflags import x86_64_level
from host_pm_exporter.readers.cpuinfo import parse_cpuinfo
from host_pm_exporter.readers.cpulist import parse_cpulist
from host_pm_exporter.readers.identity import normalise_uuid
from host_pm_exporter.readers.topology import read_cpu_sets, read_groups, read_topology

RISCV = """processor\t: 0
hart\t\t: 1
isa\t\t: rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb
mmu\t\t: sv39
uarch\t\t: sifive,u74-mc
mvendorid\t: 0x489
marchid\t\t: 0x8000000000000007
mimpid\t\t: 0x4210427

processor\t: 1
hart\t\t: 2
isa\t\t: rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb
mmu\t\t: sv39
uarch\t\t: sifive,u74-mc
mvendorid\t: 0x489
marchid\t\t: 0x8000000000000007
mimpid\t\t: 0x4210427

"""

BIG_LITTLE = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x2
CPU part\t: 0xd05
CPU revision\t: 0

processor\t: 1
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 0

processor\t: 2
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x99
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0x123
CPU revision\t: 2

"""


def test_riscv_identity_from_uarch_and_isa() -> None:
    info = parse_cpuinfo(RISCV)
    assert info.arch == "riscv64"
    kinds = info.kinds()
    assert len(kinds) == 1
    assert kinds[0].model_name == "sifive,u74-mc"
    assert kinds[0].family == "rv64imafdc"
    assert kinds[0].vendor == "SiFive"  # mvendorid 0x489, named
    assert [e.cpu for e in info.cpus] == [0, 1]


def test_arm_big_little_gives_one_kind_per_part_and_raw_ids_when_unknown() -> None:
    kinds = parse_cpuinfo(BIG_LITTLE).kinds()
    assert [(k.vendor, k.model_name, k.stepping) for k in kinds] == [
        ("ARM", "Cortex-A55", "r2p0"),
        ("ARM", "Cortex-A76", "r4p0"),
        ("0x99", "", "r0p2"),
    ]


@pytest.mark.parametrize(
    "text", ["", "\n\n", "processor\t: x\nvendor_id\t: GenuineIntel\nflags\t: fpu lm\n\n", "hello world\n"]
)
def test_cpuinfo_garbage_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cpuinfo(text)


@pytest.mark.parametrize("text", ["0-", "a", "3-1", "1,,2", "0-99999999"])
def test_cpulist_garbage_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cpulist(text)


def test_x86_64_levels_need_every_lower_level() -> None:
    v1 = ["lm", "cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2"]
    v2 = ["cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"]
    v3 = ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"]
    v4 = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
    assert x86_64_level(v1 + v2 + v3 + v4) == 4
    assert x86_64_level(v1 + v2 + v3) == 3
    assert x86_64_level(v1 + v3 + v4) == 1  # AVX-512 without SSE4.2 is still v1
    assert x86_64_level(v1 + v2 + v3[:-1] + v4) == 2


def test_uuid_validity() -> None:
    assert normalise_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff") is None
    assert normalise_uuid("not-a-uuid") is None
    assert normalise_uuid("03D502E0-045E-0518-4A06-BC0700080009") == "03d502e0-045e-0518-4a06-bc0700080009"


def test_topology_falls_back_to_cpuinfo_without_sysfs_topology(host_copy: Callable[..., Path]) -> None:
    root = host_copy("spr-2s")
    for topo in (root / "sys/devices/system/cpu").glob("cpu*/topology"):
        shutil.rmtree(topo)
    fs = HostFS(str(root / "proc"), str(root / "sys"), str(root))
    cpus = read_cpu_sets(fs)
    info = parse_cpuinfo((root / "proc/cpuinfo").read_text())
    counted = read_topology(read_groups(fs, cpus.online), cpus, info)
    assert counted is not None
    assert counted.source == "cpuinfo"
    assert (counted.sockets, counted.cores, counted.threads_per_core) == (2, 24, 2)
