"""Topology, caches, NUMA and CPU sets as the kernel means them, on small trees that
copy what real kernels write (each case says which kernel behaviour it stands for)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import samples, scrape, series

ARM_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
    f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd03\nCPU revision\t: 4\n\n"
    for n in range(8)
)


def make_host(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def cpu_files(cpu: int, **topology: str) -> dict[str, str]:
    return {f"sys/devices/system/cpu/cpu{cpu}/topology/{name}": f"{value}\n" for name, value in topology.items()}


def arm_soc(kernel_has_no_die_level: bool) -> dict[str, str]:
    """An 8-CPU arm64 SoC with three packages (0-3, 4-5, 6-7) as a 5.2-6.0 kernel
    shows it: no die level on arm64, so die_id -1 and die_cpus_list the CPU alone;
    no clusters either (cluster_id -1, cluster_cpus_list the CPU alone)."""
    packages = {**dict.fromkeys(range(4), "0-3"), 4: "4-5", 5: "4-5", 6: "6-7", 7: "6-7"}
    files = {"proc/cpuinfo": ARM_CPUINFO, "sys/devices/system/cpu/online": "0-7\n"}
    for cpu, package in packages.items():
        extra = {"die_id": "-1", "die_cpus_list": str(cpu)} if kernel_has_no_die_level else {}
        files |= cpu_files(
            cpu,
            physical_package_id=str(0 if cpu < 4 else 1 if cpu < 6 else 2),
            package_cpus_list=package,
            core_cpus_list=str(cpu),
            cluster_id="-1",
            cluster_cpus_list=str(cpu),
            **extra,
        )
    return files


def test_die_id_minus_one_means_no_die_level_not_a_die_per_cpu(tmp_path: Path) -> None:
    got = samples(scrape(make_host(tmp_path, arm_soc(kernel_has_no_die_level=True))))
    assert got["host_cpu_sockets"] == 3
    assert got["host_cpu_dies"] == 3, "dies = packages where the kernel has no die information"
    assert got["host_cpu_clusters"] == 3, "and clusters, with cluster_id -1, likewise"
    assert got["host_cpu_cores"] == 8


def test_a_real_die_level_is_still_counted(tmp_path: Path) -> None:
    """x86 with two dies per package writes real die ids: those count."""
    files = {"proc/cpuinfo": ARM_CPUINFO, "sys/devices/system/cpu/online": "0-3\n"}
    for cpu in range(4):
        files |= cpu_files(
            cpu, package_cpus_list="0-3", die_id=str(cpu // 2), die_cpus_list="0-1" if cpu < 2 else "2-3",
            core_cpus_list=str(cpu),
        )  # fmt: skip
    got = samples(scrape(make_host(tmp_path, files)))
    assert (got["host_cpu_sockets"], got["host_cpu_dies"], got["host_cpu_clusters"]) == (1, 2, 2)


def test_cache_instances_are_counted_not_assumed_from_the_topology(tmp_path: Path) -> None:
    """big.LITTLE: CPUs 0-1 share an L2, CPU 2 (same kind of core) has its own, and
    CPUs 3-7 share one: 3 instances, whatever the first CPU's sharing suggests."""
    files = arm_soc(kernel_has_no_die_level=True)
    l2 = {0: "0-1", 1: "0-1", 2: "2", **dict.fromkeys(range(3, 8), "3-7")}
    for cpu, shared in l2.items():
        base = f"sys/devices/system/cpu/cpu{cpu}/cache/index2"
        files |= {f"{base}/level": "2\n", f"{base}/type": "Unified\n", f"{base}/size": "512K\n",
                  f"{base}/shared_cpu_list": f"{shared}\n"}  # fmt: skip
    got = samples(scrape(make_host(tmp_path, files)))
    assert got['host_cpu_cache_instances{level="2",type="Unified"}'] == 3
    assert got['host_cpu_cache_size_bytes{level="2",type="Unified"}'] == 3 * 512 * 1024


def test_caches_with_only_a_shared_cpu_map_are_counted(tmp_path: Path) -> None:
    """Older powerpc kernels write shared_cpu_map (a hex mask) and no shared_cpu_list."""
    files = arm_soc(kernel_has_no_die_level=True)
    for cpu in range(8):
        base = f"sys/devices/system/cpu/cpu{cpu}/cache/index0"
        files |= {f"{base}/level": "1\n", f"{base}/type": "Data\n", f"{base}/size": "32K\n",
                  f"{base}/shared_cpu_map": f"{1 << cpu:08x}\n"}  # fmt: skip
        base = f"sys/devices/system/cpu/cpu{cpu}/cache/index1"
        files |= {f"{base}/level": "2\n", f"{base}/type": "Unified\n", f"{base}/size": "1024K\n",
                  f"{base}/shared_cpu_map": "00000000,0000000f\n" if cpu < 4 else "00000000,000000f0\n"}  # fmt: skip
    got = samples(scrape(make_host(tmp_path, files)))
    assert got['host_exporter_collector_success{collector="cache"}'] == 1
    assert got['host_cpu_cache_instances{level="1",type="Data"}'] == 8
    assert got['host_cpu_cache_instances{level="2",type="Unified"}'] == 2


def test_numa_node_cpus_from_cpumap_or_no_sample(tmp_path: Path) -> None:
    files = arm_soc(kernel_has_no_die_level=True) | {
        "sys/devices/system/node/online": "0-2\n",
        "sys/devices/system/node/node0/cpumap": "0f\n",  # no cpulist: an old kernel
        "sys/devices/system/node/node1/cpulist": "4-7\n",
        "sys/devices/system/node/node2/meminfo": "Node 2 MemTotal:       1024 kB\n",  # neither
    }
    got = samples(scrape(make_host(tmp_path, files)))
    assert got['host_numa_node_cpus{node="0"}'] == 4
    assert got['host_numa_node_cpus{node="1"}'] == 4
    assert 'host_numa_node_cpus{node="2"}' not in got, "unknown is no sample, never 0"
    assert got["host_numa_nodes"] == 3


def test_numa_nodes_listed_online_without_a_directory_have_no_series(tmp_path: Path) -> None:
    files = arm_soc(kernel_has_no_die_level=True) | {
        "sys/devices/system/node/online": "0-7\n",
        "sys/devices/system/node/node0/cpulist": "0-7\n",
    }
    got = samples(scrape(make_host(tmp_path, files)))
    assert got["host_numa_nodes"] == 1
    assert [k for k in got if k.startswith("host_numa_node_cpus")] == ['host_numa_node_cpus{node="0"}']


def test_offline_counts_only_possible_cpus(tmp_path: Path) -> None:
    """A 16-CPU partition: the kernel's offline list runs on to NR_CPUS (16-1023)."""
    files = {
        "proc/cpuinfo": ARM_CPUINFO,
        "sys/devices/system/cpu/online": "0-7\n",
        "sys/devices/system/cpu/possible": "0-15\n",
        "sys/devices/system/cpu/present": "0-15\n",
        "sys/devices/system/cpu/offline": "8-1023\n",
    }
    for cpu in range(8):
        files |= cpu_files(cpu, package_cpus_list="0-7", core_cpus_list=str(cpu))
    got = samples(scrape(make_host(tmp_path, files)))
    assert got['host_cpu_logical{state="offline"}'] == 8
    assert got['host_cpu_logical{state="possible"}'] == 16


# --- which kernel, which guest: excerpts of real files where no whole capture is public ----

POWER9 = (
    "processor\t: 0\ncpu\t\t: POWER9 (architected), altivec supported\nclock\t\t: 2250.000000MHz\n"
    "revision\t: 2.2 (pvr 004e 1202)\n\ntimebase\t: 512000000\nplatform\t: pSeries\nmodel\t\t: IBM,9009-22A\n"
)


def test_power_byte_order_comes_from_the_kernel_where_it_says(tmp_path: Path) -> None:
    little = series(scrape(make_host(tmp_path / "le", {"proc/cpuinfo": POWER9})), "host_cpu_info")
    assert [k["arch"] for k in little] == ["ppc64le"]  # POWER8 and later: little-endian unless told
    big = make_host(tmp_path / "be", {"proc/cpuinfo": POWER9, "sys/kernel/cpu_byteorder": "big\n"})
    assert [k["arch"] for k in series(scrape(big), "host_cpu_info")] == ["ppc64"]


def test_a_32_bit_powerpc_is_ppc(tmp_path: Path) -> None:
    g4 = (
        "processor\t: 0\ncpu\t\t: 7447A, altivec supported\nclock\t\t: 1666.666000MHz\n"
        "revision\t: 1.2 (pvr 8003 0102)\nbogomips\t: 73.72\n\ntimebase\t: 18432000\nplatform\t: PowerMac\n"
    )
    (kind,) = series(scrape(make_host(tmp_path, {"proc/cpuinfo": g4})), "host_cpu_info")
    assert (kind["arch"], kind["vendor"], kind["model_name"]) == ("ppc", "", "7447A")


S390_CPUINFO = (
    "vendor_id       : IBM/S390\n# processors    : 2\nbogomips per cpu: 3033.00\n"
    "features\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te sie\n"
    "processor 0: version = FF,  identification = 0133E8,  machine = 2964\n"
    "processor 1: version = FF,  identification = 0133E8,  machine = 2964\n"
)


def guest(tmp_path: Path, files: dict[str, str]) -> dict[str, float]:
    return samples(scrape(make_host(tmp_path, files)))


def test_s390_kvm_guest_and_lpar(tmp_path: Path) -> None:
    kvm = guest(tmp_path / "kvm", {"proc/cpuinfo": S390_CPUINFO, "proc/sysinfo":
        "Manufacturer:         IBM\nType:                 2964\nLPAR Number:          7\n\n"
        "VM00 Name:            KVMguest\nVM00 Control Program: KVM/Linux\nVM00 Adjustment:      1000\n"})  # fmt: skip
    assert kvm['host_virt_hypervisor_info{hypervisor="kvm"}'] == 1
    lpar = guest(tmp_path / "lpar", {"proc/cpuinfo": S390_CPUINFO, "proc/sysinfo":
        "Manufacturer:         IBM\nType:                 2964\nLPAR Number:          7\n"
        "LPAR Name:            PROD1\n"})  # fmt: skip
    assert lpar["host_virt_guest"] == 0, "an LPAR on PR/SM is no guest, as systemd-detect-virt says"


def test_powervm_partition_and_kvm_pseries_guest(tmp_path: Path) -> None:
    lpar = guest(tmp_path / "powervm", {"proc/cpuinfo": POWER9, "proc/device-tree/ibm,partition-name": "lpar1\0",
                                        "proc/device-tree/hmc-managed?": ""})  # fmt: skip
    assert lpar['host_virt_hypervisor_info{hypervisor="powervm"}'] == 1
    kvm = guest(tmp_path / "kvm", {"proc/cpuinfo": POWER9, "proc/device-tree/ibm,partition-name": "guest\0",
                                   "proc/device-tree/hmc-managed?": "",
                                   "proc/device-tree/chosen/qemu,graphic-width": "\0\0\x03\0",
                                   "proc/device-tree/hypervisor/compatible": "linux,kvm\0"})  # fmt: skip
    assert kvm['host_virt_hypervisor_info{hypervisor="kvm"}'] == 1
    metal = guest(tmp_path / "metal", {"proc/cpuinfo": POWER9})
    assert metal["host_virt_guest"] == 0


def test_sparc64_caches_are_the_cpus_own_attributes(tmp_path: Path) -> None:
    """sparc64 has no cache/indexN directories: l1_dcache_size and the like, in bytes,
    sit in cpuN itself (as lscpu reads them)."""
    files = {"proc/cpuinfo": "cpu\t\t: UltraSparc T5 (Niagara5)\ntype\t\t: sun4v\nncpus active\t: 2\n"
             "CPU0\t\t: online\nCPU1\t\t: online\n", "sys/devices/system/cpu/online": "0-1\n"}  # fmt: skip
    for cpu in range(2):
        files |= {f"sys/devices/system/cpu/cpu{cpu}/l1_dcache_size": "16384\n",
                  f"sys/devices/system/cpu/cpu{cpu}/l1_icache_size": "16384\n",
                  f"sys/devices/system/cpu/cpu{cpu}/l2_cache_size": "131072\n"}  # fmt: skip
    got = samples(scrape(make_host(tmp_path, files)))
    assert got['host_cpu_cache_size_bytes{level="1",type="Data"}'] == 16384
    assert got['host_cpu_cache_size_bytes{level="2",type="Unified"}'] == 131072
    assert not any(k.startswith("host_cpu_cache_instances") for k in got)
    (kind,) = series(scrape(tmp_path), "host_cpu_info")
    assert (kind["arch"], kind["model_name"]) == ("sparc64", "UltraSparc T5 (Niagara5)")
