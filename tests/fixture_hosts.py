"""Specifications of the CPU fixture hosts, each modelled on a real machine.

tests/hostgen.py builds their trees under tests/fixtures/<name>/; the values each host
must give are written by hand in tests/fixtures/<name>/expected.json.
"""

from __future__ import annotations

from typing import Any

from tests.hostgen import Cache, Core, HostSpec, Kind, x86_layout

# --- x86 ------------------------------------------------------------------------------

X86_BLOCK = """processor\t: {cpu}
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {model_name}
stepping\t: {stepping}
microcode\t: {microcode}
cpu MHz\t\t: {{mhz}}
cache size\t: {cache_size}
physical id\t: {{package}}
siblings\t: {{siblings}}
core id\t\t: {{core}}
cpu cores\t: {{cores}}
apicid\t\t: {{apicid}}
initial apicid\t: {{apicid}}
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: {cpuid_level}
wp\t\t: yes
flags\t\t: {{flags}}
{vmx_flags}bugs\t\t: {bugs}
bogomips\t: {bogomips}
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: {address_sizes}
power management:{power_management}
"""


def x86_block(**fields: str) -> str:
    defaults = {"vmx_flags": "", "power_management": "", "cpuid_level": "32"}
    merged = {**defaults, **fields}
    if merged["vmx_flags"]:
        merged["vmx_flags"] = f"vmx flags\t: {merged['vmx_flags']}\n"
    return X86_BLOCK.replace("{cpu}", "{{cpu}}").format(**merged)


SPR_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
    "sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl "
    "xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor ds_cpl vmx smx est "
    "tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes "
    "xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l3 cat_l2 cdp_l3 intel_ppin cdp_l2 "
    "ssbd mba ibrs ibpb stibp ibrs_enhanced tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 "
    "avx2 smep bmi2 erms invpcid cqm rdt_a avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb "
    "intel_pt avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc "
    "cqm_mbm_total cqm_mbm_local split_lock_detect user_shstk avx_vnni avx512_bf16 wbnoinvd dtherm ida arat "
    "pln pts hfi vnmi avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni "
    "avx512_bitalg tme avx512_vpopcntdq la57 rdpid bus_lock_detect cldemote movdiri movdir64b enqcmd fsrm "
    "md_clear serialize tsxldtrk pconfig arch_lbr ibt amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d "
    "arch_capabilities"
)
SPR_VULNERABILITIES = {
    "gather_data_sampling": "Not affected",
    "itlb_multihit": "Not affected",
    "l1tf": "Not affected",
    "mds": "Not affected",
    "meltdown": "Not affected",
    "mmio_stale_data": "Not affected",
    "reg_file_data_sampling": "Not affected",
    "retbleed": "Not affected",
    "spec_rstack_overflow": "Not affected",
    "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
    "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
    "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; "
    "PBRSB-eIBRS: SW sequence; BHI: BHI_DIS_S",
    "srbds": "Not affected",
    "tsx_async_abort": "Not affected",
}


def spr_kind(model_name: str, cache_size: str, l3_kb: int) -> Kind:
    return Kind(
        cpuinfo=x86_block(
            vendor="GenuineIntel",
            family="6",
            model="143",
            model_name=model_name,
            stepping="8",
            microcode="0x2b0005c0",
            cache_size=cache_size,
            bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs eibrs_pbrsb bhi",
            bogomips="4000.00",
            address_sizes="46 bits physical, 57 bits virtual",
            vmx_flags="vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad ept_1gb flexpriority apicv "
            "tsc_offset vtpr mtf vapic ept vpid unrestricted_guest vapic_reg vid ple shadow_vmcs pml "
            "ept_mode_based_exec tsc_scaling usr_wait_pause notify_vm_exiting ipi_virt",
        ),
        flags=SPR_FLAGS,
        caches=(
            Cache(0, 1, "Data", 48, "core", ways=12),
            Cache(1, 1, "Instruction", 32, "core"),
            Cache(2, 2, "Unified", 2048, "core", ways=16),
            Cache(3, 3, "Unified", l3_kb, "package", ways=15),
        ),
        min_khz=800000,
        max_khz=3900000,
    )


def synthetic_x86(cpus: int) -> HostSpec:
    """An x86 server of `cpus` logical CPUs (Sapphire Rapids cores, SMT on): 8 sockets
    from 1024 CPUs on, 2 below; one NUMA node per socket."""
    sockets = 8 if cpus >= 1024 else (2 if cpus >= 4 else 1)
    threads = 2 if cpus >= 2 else 1
    cores_per_socket = max(1, cpus // (sockets * threads))
    kind = spr_kind("Intel(R) Xeon(R) Platinum 8490H", "115200 KB", 115200)
    cores = x86_layout(lambda p, i: kind, sockets, cores_per_socket, threads)
    return HostSpec(
        name=f"synthetic-{cpus}",
        description=f"generated {cpus}-CPU x86 host",
        arch="x86_64",
        cores=cores,
        numa=[({p}, 128 * 1024 * 1024) for p in range(sockets)],
        hugepages={2048: 1024, 1048576: 4},
        vulnerabilities=SPR_VULNERABILITIES,
        kvm_device=True,
        nested=("kvm_intel", "Y"),
        iommu_groups=64,
        machine_id="5a1e0f6d7c2b4e3f9a8b7c6d5e4f3a2b",
        dmi={
            "sys_vendor": "Intel Corporation",
            "product_name": "D50DNP",
            "product_uuid": "8c3b1a2e-5d4f-11ee-8000-a4bf01c2d3e4",
        },
    )


def spr_2s() -> HostSpec:
    """2 x Xeon Silver 4410Y (Sapphire Rapids, 12 cores, SMT): core ids with gaps where
    cores are fused off, SMT siblings 24 apart, one NUMA node per socket."""
    kind = spr_kind("Intel(R) Xeon(R) Silver 4410Y", "30720 KB", 30720)
    cores = x86_layout(lambda p, i: kind, 2, 12, 2, core_id_of=lambda i: i + i // 3)
    for core in cores:
        core.cluster = core.package * 128 + core.core_id * 2  # the L2 cluster id is an APIC id
    return HostSpec(
        name="spr-2s",
        description="2-socket Intel Xeon Silver 4410Y (Sapphire Rapids), 12 cores each, SMT on",
        arch="x86_64",
        cores=cores,
        numa=[({0}, 131_588_200), ({1}, 132_086_424)],
        hugepages={2048: 512, 1048576: 0},
        vulnerabilities=SPR_VULNERABILITIES,
        dmi={
            "sys_vendor": "Supermicro",
            "product_name": "SYS-221H-TNR",
            "board_vendor": "Supermicro",
            "bios_vendor": "American Megatrends International, LLC.",
            "product_uuid": "03D502E0-045E-0518-4A06-BC0700080009",
        },
        machine_id="b3f1c8e2a4d94f5e8c7a6b5d4e3f2a1b",
        kvm_device=True,
        nested=("kvm_intel", "Y"),
        iommu_groups=96,
        power={
            "state": "freeze mem\n",
            "mem_sleep": "s2idle [deep]\n",
            "disk": "[disabled]\n",
        },
    )


ZEN1_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
    "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid "
    "amd_dcm aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx "
    "f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw skinit "
    "wdt tce topoext perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb hw_pstate ssbd ibpb vmmcall "
    "fsgsbase bmi1 avx2 smep bmi2 rdseed adx smap clflushopt sha_ni xsaveopt xsavec xgetbv1 xsaves clzero "
    "irperf xsaveerptr arat npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists "
    "pausefilter pfthreshold avic v_vmsave_vmload vgif overflow_recov succor smca sme sev"
)


def epyc_naples() -> HostSpec:
    """EPYC 7351P (Zen 1 "Naples"): one socket of four dies, each die its own NUMA node
    with two 2-core CCXes sharing an L3; cluster_id is never set on AMD (65535)."""
    kind = Kind(
        cpuinfo=x86_block(
            vendor="AuthenticAMD",
            family="23",
            model="1",
            model_name="AMD EPYC 7351P 16-Core Processor",
            stepping="2",
            microcode="0x8001250",
            cache_size="512 KB",
            cpuid_level="13",
            bugs="sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass retbleed smt_rsb srso div0",
            bogomips="4790.99",
            address_sizes="43 bits physical, 48 bits virtual",
            power_management=" ts ttp tm hwpstate cpb eff_freq_ro [13] [14]",
        ),
        flags=ZEN1_FLAGS,
        caches=(
            Cache(0, 1, "Data", 32, "core"),
            Cache(1, 1, "Instruction", 64, "core", ways=4),
            Cache(2, 2, "Unified", 512, "core"),
            Cache(3, 3, "Unified", 8192, "ccx", ways=16),
        ),
        min_khz=1200000,
        max_khz=2400000,
    )
    # Zen 1 APIC layout: 4 core slots per CCX, 2 CCXes per die, 8 slots per die.
    cores = x86_layout(
        lambda p, i: kind, 1, 16, 2, dies_per_socket=4, core_id_of=lambda i: (i // 4) * 8 + (i % 4 // 2) * 4 + i % 2
    )
    for index, core in enumerate(cores):
        core.cluster = core.core_id  # L2 per core
        core.ccx = index // 2
    return HostSpec(
        name="epyc-naples",
        description="1-socket AMD EPYC 7351P (Zen 1 Naples): 4 dies per socket, a NUMA node per die, SMT on",
        arch="x86_64",
        cores=cores,
        numa=[({0}, 32_857_352), ({1}, 33_019_108), ({2}, 33_019_108), ({3}, 32_991_264)],
        distances=[[10, 16, 16, 16], [16, 10, 16, 16], [16, 16, 10, 16], [16, 16, 16, 10]],
        hugepages={2048: 0, 1048576: 2},
        vulnerabilities={
            "itlb_multihit": "Not affected",
            "l1tf": "Not affected",
            "mds": "Not affected",
            "meltdown": "Not affected",
            "mmio_stale_data": "Not affected",
            "retbleed": "Mitigation: untrained return thunk; SMT vulnerable",
            "spec_rstack_overflow": "Mitigation: Safe RET",
            "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
            "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
            "spectre_v2": "Mitigation: Retpolines; IBPB: conditional; STIBP: disabled; RSB filling; "
            "PBRSB-eIBRS: Not affected; BHI: Not affected",
            "srbds": "Not affected",
            "tsx_async_abort": "Not affected",
        },
        dmi={
            "sys_vendor": "Dell Inc.",
            "product_name": "PowerEdge R7415",
            "bios_vendor": "Dell Inc.",
            "product_uuid": "4c4c4544-0036-4a10-8031-b8c04f4b4c32",
        },
        machine_id="e5d4c3b2a1f04e9d8c7b6a5f4e3d2c1b",
        kvm_device=True,
        nested=("kvm_amd", "1"),
        iommu_groups=48,
        cluster_id_value=65535,
        cpufreq=("acpi-cpufreq", "schedutil"),
        power={
            "state": "freeze mem\n",
            "mem_sleep": "[s2idle]\n",
        },
    )


ADL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
    "sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl "
    "xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor ds_cpl vmx smx est "
    "tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave "
    "avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb ssbd ibrs ibpb stibp ibrs_enhanced "
    "tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed "
    "adx smap clflushopt clwb intel_pt sha_ni xsaveopt xsavec xgetbv1 xsaves split_lock_detect user_shstk "
    "avx_vnni dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp hwp_pkg_req hfi vnmi umip pku "
    "ospke waitpkg gfni vaes vpclmulqdq rdpid movdiri movdir64b fsrm md_clear serialize arch_lbr ibt "
    "flush_l1d arch_capabilities"
)


def hybrid_adl() -> HostSpec:
    """Core i7-12700 (Alder Lake): 8 P-cores with SMT (siblings adjacent, core ids 0, 4,
    8...) and 4 E-cores sharing one L2 cluster; cpuinfo is the same on both, the perf
    PMUs cpu_core and cpu_atom tell them apart."""
    block = x86_block(
        vendor="GenuineIntel",
        family="6",
        model="151",
        model_name="12th Gen Intel(R) Core(TM) i7-12700",
        stepping="2",
        microcode="0x37",
        cache_size="25600 KB",
        bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs eibrs_pbrsb rfds bhi",
        bogomips="4224.00",
        address_sizes="46 bits physical, 48 bits virtual",
        vmx_flags="vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad ept_1gb flexpriority apicv "
        "tsc_offset vtpr mtf vapic ept vpid unrestricted_guest vapic_reg vid ple shadow_vmcs ept_mode_based_exec "
        "tsc_scaling usr_wait_pause",
    )
    p_core = Kind(
        block,
        flags=ADL_FLAGS,
        core_type="performance",
        min_khz=800000,
        max_khz=4900000,
        caches=(
            Cache(0, 1, "Data", 48, "core", ways=12),
            Cache(1, 1, "Instruction", 32, "core"),
            Cache(2, 2, "Unified", 1280, "core", ways=10),
            Cache(3, 3, "Unified", 25600, "package", ways=10),
        ),
    )
    e_core = Kind(
        block,
        flags=ADL_FLAGS,
        core_type="efficiency",
        min_khz=800000,
        max_khz=3600000,
        caches=(
            Cache(0, 1, "Data", 32, "core"),
            Cache(1, 1, "Instruction", 64, "core"),
            Cache(2, 2, "Unified", 2048, "cluster", ways=16),
            Cache(3, 3, "Unified", 25600, "package", ways=10),
        ),
    )
    cores = []
    for i in range(8):
        cores.append(Core(0, 0, i * 8, i * 4, p_core, [2 * i, 2 * i + 1]))
    for i in range(4):
        cores.append(Core(0, 0, 64, 32 + i, e_core, [16 + i]))
    return HostSpec(
        name="hybrid-adl",
        description="Intel Core i7-12700 (Alder Lake): 8 P-cores with SMT + 4 E-cores in one L2 cluster",
        arch="x86_64",
        cores=cores,
        numa=[({0}, 32_578_212)],
        hugepages={2048: 0, 1048576: 0},
        vulnerabilities={
            "gather_data_sampling": "Not affected",
            "itlb_multihit": "Not affected",
            "l1tf": "Not affected",
            "mds": "Not affected",
            "meltdown": "Not affected",
            "mmio_stale_data": "Not affected",
            "reg_file_data_sampling": "Mitigation: Clear Register File",
            "retbleed": "Not affected",
            "spec_rstack_overflow": "Not affected",
            "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
            "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
            "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; "
            "PBRSB-eIBRS: SW sequence; BHI: BHI_DIS_S",
            "srbds": "Not affected",
            "tsx_async_abort": "Not affected",
        },
        dmi={
            "sys_vendor": "Dell Inc.",
            "product_name": "OptiPlex 7000",
            "bios_vendor": "Dell Inc.",
            "product_uuid": "4C4C4544-0052-3410-8048-B3C04F4E5233",
        },
        machine_id="0f1e2d3c4b5a49687766554433221100",
        kvm_device=True,
        nested=("kvm_intel", "N"),
        iommu_groups=17,
        cluster_ids=True,
        power={
            "state": "freeze mem disk\n",
            "mem_sleep": "s2idle [deep]\n",
            "disk": "[platform] shutdown reboot suspend test_resume\n",
        },
    )


def arm64_altra() -> HostSpec:
    """Ampere Altra Q32-17: 32 Neoverse-N1 cores, no SMT, cores paired in clusters; the
    package and cluster ids are ACPI PPTT offsets, not 0-based; no die files, no cache ids."""
    block = (
        "processor\t: {cpu}\nBogoMIPS\t: 50.00\nFeatures\t: {flags}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n"
    )
    kind = Kind(
        block,
        flags="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs",
        caches=(
            Cache(0, 1, "Data", 64, "core", ways=4),
            Cache(1, 1, "Instruction", 64, "core", ways=4),
            Cache(2, 2, "Unified", 1024, "core"),
            Cache(3, 3, "Unified", 32768, "package", ways=16),
        ),
        min_khz=1000000,
        max_khz=1700000,
    )
    cores = [Core(36, 0, 138 + (i // 2) * 108, i, kind, [i]) for i in range(32)]
    return HostSpec(
        name="arm64-altra",
        description="Ampere Altra Q32-17: 32 Arm Neoverse-N1 cores, one socket, 2-core clusters",
        arch="aarch64",
        cores=cores,
        numa=[({0}, 65_261_312)],
        hugepages={64: 0, 2048: 256, 32768: 0, 1048576: 0},
        vulnerabilities={
            "meltdown": "Not affected",
            "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
            "spectre_v1": "Mitigation: __user pointer sanitization",
            "spectre_v2": "Mitigation: CSV2, BHB",
            "srbds": "Not affected",
            "tsx_async_abort": "Not affected",
            "l1tf": "Not affected",
            "mds": "Not affected",
            "retbleed": "Not affected",
        },
        dmi={
            "sys_vendor": "WIWYNN",
            "product_name": "Mt.Jade Server System B81.030Z1.0007",
            "bios_vendor": "Ampere(R)",
            "product_uuid": "2ec4e4e2-1c11-11ec-8000-3cecef1c7a5e",
        },
        machine_id="a1b2c3d4e5f60718293a4b5c6d7e8f90",
        kvm_device=True,
        iommu_groups=24,
        die_ids=False,
        cache_ids=False,
        cpufreq=("cppc_cpufreq", "schedutil"),
        power={
            "state": "freeze mem disk\n",
            "mem_sleep": "[s2idle]\n",
            "disk": "[shutdown] reboot suspend test_resume\n",
        },
    )


def power9() -> HostSpec:
    """POWER9 4-core (Raptor Talos II, PowerNV bare metal) with SMT4: core ids are the
    first thread's number; no die or cluster files; a machine block after the CPUs."""
    block = (
        "processor\t: {cpu}\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: {mhz}000MHz\n"
        "revision\t: 2.3 (pvr 004e 1203)\n"
    )
    kind = Kind(
        block,
        min_khz=2166000,
        max_khz=3800000,
        caches=(
            Cache(0, 1, "Data", 32, "core"),
            Cache(1, 1, "Instruction", 32, "core"),
            Cache(2, 2, "Unified", 512, "core"),
            Cache(3, 3, "Unified", 10240, "core", ways=20),
        ),
    )
    cores = [Core(0, 0, 0, i * 4, kind, [i * 4 + t for t in range(4)]) for i in range(4)]
    return HostSpec(
        name="power9",
        description="IBM POWER9 4-core (Raptor Talos II, PowerNV), SMT4: 16 logical CPUs",
        arch="ppc64le",
        cores=cores,
        numa=[({0}, 33_161_664)],
        hugepages={2048: 0, 1048576: 0},
        vulnerabilities={
            "l1tf": "Mitigation: RFI Flush, L1D private per thread",
            "meltdown": "Mitigation: RFI Flush, L1D private per thread",
            "spec_store_bypass": "Mitigation: Kernel entry/exit barrier (eieio)",
            "spectre_v1": "Mitigation: __user pointer sanitization, ori31 speculation barrier enabled",
            "spectre_v2": "Mitigation: Indirect branch serialisation (kernel only)",
            "mds": "Not affected",
            "srbds": "Not affected",
            "tsx_async_abort": "Not affected",
        },
        machine_id="c0ffee00c0ffee00c0ffee00c0ffee01",
        kvm_device=True,
        die_ids=False,
        cluster_ids=False,
        cpufreq=("powernv-cpufreq", "ondemand"),
        cpuinfo_trailer="timebase\t: 512000000\nplatform\t: PowerNV\nmodel\t\t: T2P9D01 REV 1.01\n"
        "machine\t\t: PowerNV T2P9D01 REV 1.01\nfirmware\t: OPAL\nMMU\t\t: Radix\n",
        power={"state": "freeze mem disk\n", "disk": "[shutdown] reboot suspend test_resume\n"},
    )


def s390x_z15() -> HostSpec:
    """IBM z15 LPAR with 4 CPUs, SMT2: the machine type names the model; the CPU numbers
    of cpuinfo come from the global "processor N:" lines."""
    header = (
        "vendor_id       : IBM/S390\n# processors    : 4\nbogomips per cpu: 3241.00\nmax thread id   : 1\n"
        "features\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te vx vxd vxe gs vxe2 vxp "
        "sort dflt sie \n"
        "facilities      : 0 1 2 3 4 6 7 8 9 10 12 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 30 31 32 33 "
        "34 35 36 37 38 40 41 42 43 44 45 47 48 49 50 51 52 53 54 57 58 59 60 61 73 74 75 76 77 80 81 82 129 "
        "130 131 133 134 135 138 139 146 147 148 150 151 152 155 156 168\n"
        "cache0          : level=1 type=Data scope=Private size=128K line_size=256 associativity=8\n"
        "cache1          : level=1 type=Instruction scope=Private size=128K line_size=256 associativity=8\n"
        "cache2          : level=2 type=Data scope=Private size=4096K line_size=256 associativity=8\n"
        "cache3          : level=2 type=Instruction scope=Private size=4096K line_size=256 associativity=8\n"
        "cache4          : level=3 type=Unified scope=Shared size=262144K line_size=256 associativity=32\n"
        "cache5          : level=4 type=Unified scope=Shared size=983040K line_size=256 associativity=60\n"
        + "".join(f"processor {n}: version = 00,  identification = 1A2B38,  machine = 8561\n" for n in range(4))
        + "\n"
    )
    block = (
        "cpu number      : {cpu}\nphysical id     : {package}\ncore id         : {core}\nbook id         : 1\n"
        "drawer id       : 4\ndedicated       : 1\naddress         : {cpu}\nsiblings        : 4\n"
        "cpu cores       : 2\nversion         : 00\nidentification  : 1A2B38\nmachine         : 8561\n"
        "cpu MHz dynamic : 5200\ncpu MHz static  : 5200\n"
    )
    kind = Kind(
        block,
        caches=(
            Cache(0, 1, "Data", 128, "core"),
            Cache(1, 1, "Instruction", 128, "core"),
            Cache(2, 2, "Data", 4096, "core"),
            Cache(3, 2, "Instruction", 4096, "core"),
            # The shared L3 and L4 are in cpuinfo only: the s390 kernel puts only the
            # private caches in sysfs.
        ),
    )
    cores = [Core(2, 2, 0, i * 2, kind, [i * 2, i * 2 + 1]) for i in range(2)]
    return HostSpec(
        name="s390x-z15",
        description="IBM z15 T01 LPAR, 2 cores with SMT2: 4 logical CPUs",
        arch="s390x",
        cores=cores,
        numa=[({2}, 16_338_712)],
        vulnerabilities={
            "spectre_v1": "Mitigation: __user pointer sanitization",
            "spectre_v2": "Mitigation: etokens",
            "meltdown": "Not affected",
            "spec_store_bypass": "Not affected",
            "l1tf": "Not affected",
            "mds": "Not affected",
        },
        machine_id="5eed5eed5eed4eed8eed5eed5eed5eed",
        kvm_device=True,
        nested=("kvm", "1"),
        die_ids=False,
        cluster_ids=False,
        cache_ids=False,
        cpufreq=None,
        cpuinfo_header=header,
    )


ICELAKE_VM_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss "
    "syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon rep_good nopl xtopology cpuid tsc_known_freq pni "
    "pclmulqdq vmx ssse3 fma cx16 pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave "
    "avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault ssbd ibrs ibpb stibp ibrs_enhanced "
    "tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f "
    "avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec "
    "xgetbv1 xsaves wbnoinvd arat vnmi avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq "
    "avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid fsrm md_clear arch_capabilities"
)


def vm_flat() -> HostSpec:
    """A KVM guest with 4 vCPUs as 4 sockets of 1 core (QEMU's -smp 4 on older machine
    types): DMI says QEMU, kvm-clock says KVM; no cpufreq."""
    kind = Kind(
        cpuinfo=x86_block(
            vendor="GenuineIntel",
            family="6",
            model="106",
            model_name="Intel Xeon Processor (Icelake)",
            stepping="0",
            microcode="0x1",
            cache_size="16384 KB",
            cpuid_level="13",
            bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs taa mmio_stale_data bhi",
            bogomips="5187.81",
            address_sizes="46 bits physical, 57 bits virtual",
        ),
        flags=ICELAKE_VM_FLAGS,
        caches=(
            Cache(0, 1, "Data", 32, "core"),
            Cache(1, 1, "Instruction", 32, "core"),
            Cache(2, 2, "Unified", 4096, "core", ways=16),
            Cache(3, 3, "Unified", 16384, "package", ways=16),
        ),
    )
    cores = x86_layout(lambda p, i: kind, 4, 1, 1)
    return HostSpec(
        name="vm-flat",
        description="KVM guest, 4 vCPUs as 4 single-core sockets (flat topology), Icelake-Server CPU model",
        arch="x86_64",
        cores=cores,
        numa=[({0, 1, 2, 3}, 8_129_536)],
        hugepages={2048: 0, 1048576: 0},
        vulnerabilities={
            "itlb_multihit": "Not affected",
            "l1tf": "Not affected",
            "mds": "Not affected",
            "meltdown": "Not affected",
            "mmio_stale_data": "Vulnerable: Clear CPU buffers attempted, no microcode; SMT Host state unknown",
            "retbleed": "Not affected",
            "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
            "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
            "spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; "
            "PBRSB-eIBRS: SW sequence; BHI: SW loop, KVM: SW loop",
            "srbds": "Not affected",
            "tsx_async_abort": "Not affected",
        },
        dmi={
            "sys_vendor": "QEMU",
            "product_name": "Standard PC (i440FX + PIIX, 1996)",
            "bios_vendor": "SeaBIOS",
            "product_uuid": "7d3b9a4e-2f1c-4b8a-9e6d-5c4b3a291807",
        },
        machine_id="7d3b9a4e2f1c4b8a9e6d5c4b3a291807",
        cpufreq=None,
        extra_files={"sys/devices/system/clocksource/clocksource0/available_clocksource": "kvm-clock tsc acpi_pm \n"},
    )


def offline_cpus() -> HostSpec:
    """Xeon E-2234 (4 cores, SMT): CPUs 6 and 7 (second threads of cores 2 and 3) are
    offline, 2-3 isolated, and the firmware allows 8 more hot-pluggable CPUs."""
    kind = Kind(
        cpuinfo=x86_block(
            vendor="GenuineIntel",
            family="6",
            model="158",
            model_name="Intel(R) Xeon(R) E-2234 CPU @ 3.60GHz",
            stepping="10",
            microcode="0xf8",
            cache_size="8192 KB",
            cpuid_level="22",
            bugs="spectre_v1 spectre_v2 spec_store_bypass swapgs taa itlb_multihit srbds mmio_stale_data retbleed "
            "gds bhi",
            bogomips="7200.00",
            address_sizes="39 bits physical, 48 bits virtual",
        ),
        flags="fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr "
        "sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl "
        "xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg "
        "fma cx16 xtpr pdcm pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand "
        "lahf_lm abm 3dnowprefetch cpuid_fault epb invpcid_single ssbd ibrs ibpb stibp tpr_shadow flexpriority "
        "ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx rdseed adx smap clflushopt "
        "intel_pt xsaveopt xsavec xgetbv1 xsaves dtherm ida arat pln pts hwp hwp_notify hwp_act_window hwp_epp "
        "vnmi md_clear flush_l1d arch_capabilities",
        caches=(
            Cache(0, 1, "Data", 32, "core"),
            Cache(1, 1, "Instruction", 32, "core"),
            Cache(2, 2, "Unified", 256, "core", ways=4),
            Cache(3, 3, "Unified", 8192, "package", ways=16),
        ),
        max_khz=4800000,
    )
    cores = x86_layout(lambda p, i: kind, 1, 4, 2)
    return HostSpec(
        name="offline-cpus",
        description="Intel Xeon E-2234, 4 cores with SMT, two siblings offline, two CPUs isolated",
        arch="x86_64",
        cores=cores,
        offline={6, 7},
        isolated={2, 3},
        possible_extra=8,
        numa=[({0}, 32_695_404)],
        hugepages={2048: 64, 1048576: 0},
        vulnerabilities={
            "meltdown": "Not affected",
            "spectre_v2": "Mitigation: IBRS; IBPB: conditional; "
            "STIBP: conditional; RSB filling; PBRSB-eIBRS: Not affected; BHI: Not affected",
            "mds": "Mitigation: Clear CPU buffers; SMT vulnerable",
            "l1tf": "Not affected",
        },
        dmi={
            "sys_vendor": "Supermicro",
            "product_name": "Super Server",
            "product_uuid": "00000000-0000-0000-0000-000000000000",
        },
        machine_id="9f8e7d6c5b4a49382716051423324150",
        kvm_device=False,
        power={
            "state": "freeze mem disk\n",
            "mem_sleep": "s2idle [deep]\n",
            "disk": "[platform] shutdown reboot suspend test_resume\n",
        },
    )


# --- the kernel classes (issue 17): what real kernels write, each on its own host ------------
# Each host's tests/fixtures/<name>/expected.json carries "kernel_class": the class, the
# kernel source that says what the kernel writes, and the right answer, by hand.


def _e2234() -> Kind:
    return offline_cpus().cores[0].kind


def _small_x86(name: str, description: str, **quirks: Any) -> HostSpec:
    """One Xeon E-2234 socket: 4 cores with SMT (siblings 4 apart), one NUMA node."""
    return HostSpec(
        name=name,
        description=description,
        arch="x86_64",
        cores=x86_layout(lambda p, i: _e2234(), 1, 4, 2),
        numa=[({0}, 32_695_404)],
        hugepages={2048: 0},
        machine_id="17171717171717171717171717171717",
        **quirks,
    )


def _two_socket_x86(name: str, description: str, **quirks: Any) -> HostSpec:
    """2 x 4-core Sapphire Rapids with SMT, a NUMA node per socket."""
    kind = spr_kind("Intel(R) Xeon(R) Silver 4410Y", "30720 KB", 30720)
    return HostSpec(
        name=name,
        description=description,
        arch="x86_64",
        cores=x86_layout(lambda p, i: kind, 2, 4, 2),
        numa=[({0}, 65_794_100), ({1}, 66_043_212)],
        hugepages={2048: 0},
        machine_id="17171717171717171717171717171718",
        **quirks,
    )


def nul_padded() -> HostSpec:
    return _two_socket_x86(
        "k-nul-padded", "every list file ends in a NUL after its newline (2 x 4 cores, SMT)", nul_padded=True
    )


def empty_switch() -> HostSpec:
    return _small_x86(
        "k-empty-switch",
        "no online/offline masks; cpu2/online is empty, cpu7/online says 0",
        omit_cpu_masks=("online", "offline"),
        switch_text={2: ""},
        offline={7},
    )


def no_online_mask() -> HostSpec:
    return _small_x86(
        "k-no-online-mask",
        "a kernel without the online/offline masks nor CPU hotplug: present and possible only",
        omit_cpu_masks=("online", "offline"),
        online_switches=False,
    )


def switches_only() -> HostSpec:
    return _small_x86(
        "k-switches-only",
        "no online/offline/present/possible masks: cpuN directories and their online switches, 6 and 7 off",
        omit_cpu_masks=("online", "offline", "present", "possible"),
        offline={6, 7},
    )


def node_lists_offline() -> HostSpec:
    return _small_x86(
        "k-node-lists-offline",
        "CPUs 6 and 7 offline, still in node0's cpulist",
        offline={6, 7},
        node_lists_offline=True,
    )


def hybrid_no_pmu() -> HostSpec:
    spec = hybrid_adl()
    spec.name = "k-hybrid-no-pmu"
    spec.description = "the Alder Lake of hybrid-adl on a kernel before 5.13: no cpu_core/cpu_atom PMUs"
    spec.core_type_pmus = False
    spec.iommu_groups = 0
    return spec


IA64_BLOCK = (
    "processor  : {cpu}\nvendor     : GenuineIntel\narch       : IA-64\nfamily     : 32\nmodel      : 0\n"
    "model name : Dual-Core Intel(R) Itanium(R) 2 Processor 9050\nrevision   : 7\narchrev    : 0\n"
    "features   : branchlong, 16-byte atomic ops\ncpu number : 0\ncpu regs   : 4\ncpu MHz    : 1598.998\n"
    "itc MHz    : 399.749\nBogoMIPS   : 3186.68\nsiblings   : 4\nphysical id: {package}\ncore id    : {core}\n"
    "thread id  : 0\n"
)


def ia64_zero_maps() -> HostSpec:
    """2 x dual-core Itanium 2 9050 (Montecito) with two threads per core: every
    shared_cpu_map is all zeros."""
    kind = Kind(
        IA64_BLOCK,
        caches=(
            Cache(0, 1, "Data", 16, "core"),
            Cache(1, 1, "Instruction", 16, "core"),
            Cache(2, 2, "Data", 256, "core"),
            Cache(3, 2, "Instruction", 1024, "core"),
            Cache(4, 3, "Unified", 12288, "core"),
        ),
    )
    return HostSpec(
        name="k-ia64-zero-maps",
        description="2 x dual-core Itanium 2 9050, 2 threads per core: shared_cpu_map all zeros",
        arch="ia64",
        cores=x86_layout(lambda p, i: kind, 2, 2, 2, sibling_stride=False),
        numa=[({0, 1}, 16_658_432)],
        machine_id="17171717171717171717171717171719",
        zero_shared_maps=True,
        sibling_files=("core_siblings_list", "core_siblings", "thread_siblings_list", "thread_siblings"),
        die_ids=False,
        cluster_ids=False,
        cache_ids=False,
        cpufreq=None,
    )


def asymmetric_caches() -> HostSpec:
    """8 Neoverse-N1 cores of one kind; firmware describes an L2 (index2) for cores 4-7
    only."""
    base = arm64_altra().cores[0].kind
    l1 = base.caches[:2]
    without_l2 = Kind(base.cpuinfo, caches=l1, flags=base.flags)
    with_l2 = Kind(base.cpuinfo, caches=(*l1, Cache(2, 2, "Unified", 512, "core")), flags=base.flags)
    cores = [Core(0, 0, 0, i, without_l2 if i < 4 else with_l2, [i]) for i in range(8)]
    return HostSpec(
        name="k-asymmetric-caches",
        description="8 arm64 cores of one kind: only cores 4-7 have an index2 (L2)",
        arch="aarch64",
        cores=cores,
        numa=[({0}, 16_303_520)],
        machine_id="1717171717171717171717171717171a",
        die_ids=False,
        cache_ids=False,
        cpufreq=None,
    )


def thread_siblings_only() -> HostSpec:
    """A Cell (PlayStation 3, Linux 2.6): one PPE core with two threads; the topology
    directory has only the thread sibling files."""
    block = "processor\t: {cpu}\ncpu\t\t: Cell Broadband Engine, altivec supported\nclock\t\t: 3192.000000MHz\n"
    block += "revision\t: 5.1 (pvr 0070 0501)\n"
    return HostSpec(
        name="k-thread-siblings-only",
        description="Cell Broadband Engine (PS3): 1 core, 2 threads, only thread_siblings(_list)",
        arch="ppc64",
        cores=[Core(0, 0, 0, 0, Kind(block, caches=()), [0, 1])],
        numa=[({0}, 219_236)],
        machine_id="1717171717171717171717171717171b",
        sibling_files=("thread_siblings_list", "thread_siblings"),
        die_ids=False,
        cluster_ids=False,
        cpufreq=None,
        cpuinfo_trailer="timebase\t: 79800000\nplatform\t: PS3\nmodel\t\t: SonyPS3\n",
    )


def first_cpu_not_zero() -> HostSpec:
    """A SPARC T5 LDOM whose 8 virtual CPUs are 6-13 (cpu0-5 belong to other domains);
    sparc64 keeps cache sizes as attributes of each CPU."""
    header = (
        "cpu\t\t: UltraSparc T5 (Niagara5)\nfpu\t\t: UltraSparc T5 integrated FPU\npmu\t\t: niagara5\n"
        "prom\t\t: OBP 4.38.12 2018/03/28 14:54\ntype\t\t: sun4v\nncpus probed\t: 8\nncpus active\t: 8\n"
        + "".join(f"Cpu{n}ClkTck\t: 00000000d6924470\n" for n in range(6, 14))
        + "MMU Type\t: Hypervisor (sun4v)\nState:\n"
        + "".join(f"CPU{n}:\t\tonline\n" for n in range(6, 14))
    )
    kind = Kind(
        "",
        caches=(
            Cache(0, 1, "Data", 16, "core"),
            Cache(1, 1, "Instruction", 16, "core"),
            Cache(2, 2, "Unified", 128, "core"),  # arch/sparc/kernel/sysfs.c has no l3_cache_size
        ),
    )
    return HostSpec(
        name="k-first-cpu-not-zero",
        description="SPARC T5 LDOM: CPUs 6-13 (2 cores x 4 threads), cache sizes as CPU attributes",
        arch="sparc64",
        cores=[Core(0, 0, 0, i, kind, list(range(6 + 4 * i, 10 + 4 * i))) for i in range(2)],
        numa=[({0}, 33_456_128)],
        machine_id="1717171717171717171717171717171c",
        omit_cpu_masks=("offline",),
        sparc_caches=True,
        die_ids=False,
        cluster_ids=False,
        cache_ids=False,
        cpufreq=None,
        cpuinfo_header=header,
    )


def s390_drawers() -> HostSpec:
    """A z15 LPAR with 141 CPUs of which 8 are online (4 cores, SMT2; the rest in
    standby): node0's cpulist has all 141; sysfs has the private caches (L1, L2),
    /proc/cpuinfo the shared L3 and L4."""
    z15 = s390x_z15()
    kind = z15.cores[0].kind
    cores = [Core(2, 2, 0, i * 2, kind, [i * 2, i * 2 + 1]) for i in range(70)] + [Core(2, 2, 0, 140, kind, [140])]
    z15.name = "k-s390-drawers"
    z15.description = "z15 LPAR: 141 CPUs, 8 online; node0 lists all; L3/L4 from cpuinfo"
    z15.cores = cores
    z15.offline = set(range(8, 141))
    z15.node_lists_offline = True
    z15.kvm_device = False
    z15.nested = None
    z15.machine_id = "1717171717171717171717171717171d"
    return z15


def odd_values() -> HostSpec:
    """Three odd values, each costing one fact: a die list, a node's meminfo and one L3
    instance's size."""
    return _two_socket_x86(
        "k-odd-values",
        "2 x 4 cores, SMT: cpu4's die_cpus_list, node1's meminfo and cpu4's L3 size are garbage",
        spoil={
            "sys/devices/system/cpu/cpu4/topology/die_cpus_list": "x\n",
            "sys/devices/system/node/node1/meminfo": "garbage\n",
            "sys/devices/system/cpu/cpu4/cache/index3/size": "lots\n",
        },
    )


KERNEL_CLASS_HOSTS: list[HostSpec] = [
    nul_padded(),
    empty_switch(),
    no_online_mask(),
    switches_only(),
    node_lists_offline(),
    hybrid_no_pmu(),
    ia64_zero_maps(),
    asymmetric_caches(),
    thread_siblings_only(),
    first_cpu_not_zero(),
    s390_drawers(),
    odd_values(),
]


HOSTS: list[HostSpec] = [
    spr_2s(),
    epyc_naples(),
    hybrid_adl(),
    arm64_altra(),
    power9(),
    s390x_z15(),
    vm_flat(),
    offline_cpus(),
    *KERNEL_CLASS_HOSTS,
]
