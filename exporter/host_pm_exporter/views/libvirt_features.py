"""Facts about libvirt's names, carried as data for the capabilities XML.

Provenance.  The libvirt spellings, their order, the vendor names and the model ->
PVR pairs are facts taken from libvirt's CPU map:

- project libvirt (https://gitlab.com/libvirt/libvirt, mirrored at
  github.com/libvirt/libvirt), files ``src/cpu_map/x86_features.xml``,
  ``x86_vendors.xml``, ``arm_vendors.xml``, ``arm_*.xml`` and ``ppc64_*.xml``, at
  commit 01be1472f9b1874b1997dabe38ba0b3f94ca208d, cross-checked against the copy
  Debian 12 ships in libvirt 9.0.0-4+deb12u2 (``/usr/share/libvirt/cpu_map/``);
  licence LGPL-2.1-or-later.  Only names and numbers are carried, no code.
- the Linux spellings are the names /proc/cpuinfo prints, from Linux's
  ``arch/x86/include/asm/cpufeatures.h`` (project torvalds/linux, commit
  005401e94f18ad4190fd12e6c552db5dfb911c1a and later kernels for the words added
  since; licence GPL-2.0), matched to libvirt's name by the CPUID leaf, sub-leaf,
  register and bit both files give for the feature.

Left out on purpose: Linux flags that the kernel synthesises from either vendor's
bits (``ibrs``, ``ibpb``, ``stibp``, ``ssbd``: on Intel they come from CPUID 7 EDX,
which libvirt calls spec-ctrl/stibp/ssbd, on AMD from 0x80000008 EBX, which libvirt
calls ibrs/ibpb/amd-stibp/amd-ssbd), flags the kernel may set without the CPUID bit
(``split_lock_detect``), flags whose Linux spelling was not certain (fzrm, fsrs,
fsrc, xfd, auto-ibrs), and libvirt features Linux does not print (sgx1, sgx2,
intel-pt-lip, the IA32_ARCH_CAPABILITIES "-no" bits but ibrs-all).
"""

from __future__ import annotations

# Linux /proc/cpuinfo flag -> libvirt x86 feature name, in the order of libvirt's
# x86_features.xml (which is the order libvirt prints them in).
X86_FEATURES: tuple[tuple[str, str], ...] = (
    # CPUID 1 EDX
    ("fpu", "fpu"), ("vme", "vme"), ("de", "de"), ("pse", "pse"), ("tsc", "tsc"), ("msr", "msr"),
    ("pae", "pae"), ("mce", "mce"), ("cx8", "cx8"), ("apic", "apic"), ("sep", "sep"), ("mtrr", "mtrr"),
    ("pge", "pge"), ("mca", "mca"), ("cmov", "cmov"), ("pat", "pat"), ("pse36", "pse36"), ("pn", "pn"),
    ("clflush", "clflush"), ("dts", "ds"), ("acpi", "acpi"), ("mmx", "mmx"), ("fxsr", "fxsr"),
    ("sse", "sse"), ("sse2", "sse2"), ("ss", "ss"), ("ht", "ht"), ("tm", "tm"), ("ia64", "ia64"),
    ("pbe", "pbe"),
    # CPUID 1 ECX
    ("pni", "pni"), ("pclmulqdq", "pclmuldq"), ("dtes64", "dtes64"), ("monitor", "monitor"),
    ("ds_cpl", "ds_cpl"), ("vmx", "vmx"), ("smx", "smx"), ("est", "est"), ("tm2", "tm2"),
    ("ssse3", "ssse3"), ("cid", "cid"), ("fma", "fma"), ("cx16", "cx16"), ("xtpr", "xtpr"),
    ("pdcm", "pdcm"), ("pcid", "pcid"), ("dca", "dca"), ("sse4_1", "sse4.1"), ("sse4_2", "sse4.2"),
    ("x2apic", "x2apic"), ("movbe", "movbe"), ("popcnt", "popcnt"), ("tsc_deadline_timer", "tsc-deadline"),
    ("aes", "aes"), ("xsave", "xsave"), ("avx", "avx"), ("f16c", "f16c"),
    ("rdrand", "rdrand"), ("hypervisor", "hypervisor"),
    # CPUID 6 EAX
    ("arat", "arat"),
    # CPUID 7.0 EBX
    ("fsgsbase", "fsgsbase"), ("tsc_adjust", "tsc_adjust"), ("sgx", "sgx"), ("bmi1", "bmi1"), ("hle", "hle"),
    ("avx2", "avx2"), ("smep", "smep"), ("bmi2", "bmi2"), ("erms", "erms"), ("invpcid", "invpcid"),
    ("rtm", "rtm"), ("cqm", "cmt"), ("mpx", "mpx"), ("avx512f", "avx512f"), ("avx512dq", "avx512dq"),
    ("rdseed", "rdseed"), ("adx", "adx"), ("smap", "smap"), ("avx512ifma", "avx512ifma"),
    ("pcommit", "pcommit"), ("clflushopt", "clflushopt"), ("clwb", "clwb"), ("intel_pt", "intel-pt"),
    ("avx512pf", "avx512pf"), ("avx512er", "avx512er"), ("avx512cd", "avx512cd"), ("sha_ni", "sha-ni"),
    ("avx512bw", "avx512bw"), ("avx512vl", "avx512vl"),
    # CPUID 7.0 ECX
    ("avx512vbmi", "avx512vbmi"), ("umip", "umip"), ("pku", "pku"), ("ospke", "ospke"),
    ("waitpkg", "waitpkg"), ("avx512_vbmi2", "avx512vbmi2"), ("gfni", "gfni"), ("vaes", "vaes"),
    ("vpclmulqdq", "vpclmulqdq"), ("avx512_vnni", "avx512vnni"), ("avx512_bitalg", "avx512bitalg"),
    ("avx512_vpopcntdq", "avx512-vpopcntdq"), ("la57", "la57"), ("rdpid", "rdpid"),
    ("bus_lock_detect", "bus-lock-detect"), ("cldemote", "cldemote"), ("movdiri", "movdiri"),
    ("movdir64b", "movdir64b"), ("sgx_lc", "sgxlc"), ("pks", "pks"),
    # CPUID 7.0 EDX
    ("avx512_4vnniw", "avx512-4vnniw"), ("avx512_4fmaps", "avx512-4fmaps"), ("fsrm", "fsrm"),
    ("avx512_vp2intersect", "avx512-vp2intersect"), ("md_clear", "md-clear"), ("serialize", "serialize"),
    ("tsxldtrk", "tsx-ldtrk"), ("pconfig", "pconfig"), ("arch_lbr", "arch-lbr"), ("amx_bf16", "amx-bf16"),
    ("avx512_fp16", "avx512-fp16"), ("amx_tile", "amx-tile"), ("amx_int8", "amx-int8"),
    ("arch_capabilities", "arch-capabilities"),
    # CPUID 7.1 EAX
    ("avx_vnni", "avx-vnni"), ("avx512_bf16", "avx512-bf16"),
    # CPUID 0xD.1 EAX
    ("xsaveopt", "xsaveopt"), ("xsavec", "xsavec"), ("xgetbv1", "xgetbv1"), ("xsaves", "xsaves"),
    # CPUID 0xF.1 EDX
    ("cqm_mbm_total", "mbm_total"), ("cqm_mbm_local", "mbm_local"),
    # CPUID 0x80000001 EDX
    ("syscall", "syscall"), ("nx", "nx"), ("mmxext", "mmxext"), ("fxsr_opt", "fxsr_opt"),
    ("pdpe1gb", "pdpe1gb"), ("rdtscp", "rdtscp"), ("lm", "lm"), ("3dnowext", "3dnowext"),
    ("3dnow", "3dnow"),
    # CPUID 0x80000001 ECX
    ("lahf_lm", "lahf_lm"), ("cmp_legacy", "cmp_legacy"), ("svm", "svm"), ("extapic", "extapic"),
    ("cr8_legacy", "cr8legacy"), ("abm", "abm"), ("sse4a", "sse4a"), ("misalignsse", "misalignsse"),
    ("3dnowprefetch", "3dnowprefetch"), ("osvw", "osvw"), ("ibs", "ibs"), ("xop", "xop"),
    ("skinit", "skinit"), ("wdt", "wdt"), ("lwp", "lwp"), ("fma4", "fma4"), ("tce", "tce"),
    ("nodeid_msr", "nodeid_msr"), ("tbm", "tbm"), ("topoext", "topoext"),
    ("perfctr_core", "perfctr_core"), ("perfctr_nb", "perfctr_nb"),
    # CPUID 0x80000007 EDX bit 8 (invariant TSC): Linux sets nonstop_tsc from it
    ("nonstop_tsc", "invtsc"),
    # CPUID 0x80000008 EBX
    ("clzero", "clzero"), ("xsaveerptr", "xsaveerptr"), ("wbnoinvd", "wbnoinvd"), ("virt_ssbd", "virt-ssbd"),
    # CPUID 0x8000000A EDX (SVM)
    ("npt", "npt"), ("lbrv", "lbrv"), ("svm_lock", "svm-lock"), ("nrip_save", "nrip-save"),
    ("tsc_scale", "tsc-scale"), ("vmcb_clean", "vmcb-clean"), ("flushbyasid", "flushbyasid"),
    ("decodeassists", "decodeassists"), ("pausefilter", "pause-filter"), ("pfthreshold", "pfthreshold"),
    ("avic", "avic"), ("v_vmsave_vmload", "v-vmsave-vmload"), ("vgif", "vgif"),
    ("svme_addr_chk", "svme-addr-chk"),
    # IA32_ARCH_CAPABILITIES bit 1: Linux sets ibrs_enhanced from it
    ("ibrs_enhanced", "ibrs-all"),
)  # fmt: skip

# libvirt features with no /proc/cpuinfo flag of their own but implied by one:
# CPUID 1 ECX OSXSAVE mirrors CR4.OSXSAVE, which Linux sets whenever it uses XSAVE,
# and Linux prints "xsave" only then ("noxsave" clears it).  Placed after "xsave" in
# libvirt's order.
X86_IMPLIED: dict[str, tuple[str, ...]] = {"xsave": ("osxsave",)}

# libvirt 9.0's capability.rng (cputypes.rng, define "hostcpu") allows only
# [a-zA-Z0-9\-_]+ as a host CPU feature name, so its own "sse4.1" and "sse4.2" do not
# validate.  These two are written in the spelling libvirt's cpu_map records as their
# alias (source='qemu'), which is also Linux's.
RNG_SAFE_SPELLING: dict[str, str] = {"sse4.1": "sse4_1", "sse4.2": "sse4_2"}

# x86 vendor_id -> libvirt vendor name (x86_vendors.xml).
X86_VENDORS: dict[str, str] = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}

# ARM vendor names libvirt knows (arm_vendors.xml), as the MIDR implementer names them.
ARM_VENDORS: frozenset[str] = frozenset(
    {"ARM", "Broadcom", "Cavium", "DigitalEquipment", "Fujitsu", "HiSilicon", "Infineon", "Freescale",
     "NVIDIA", "APM", "Qualcomm", "Marvell", "Intel", "Phytium"}
)  # fmt: skip

# (vendor, MIDR part) -> libvirt ARM model (arm_<model>.xml: <vendor> and <pvr>).
ARM_MODELS: dict[tuple[str, int], str] = {
    ("ARM", 0xD03): "cortex-a53", ("ARM", 0xD07): "cortex-a57", ("ARM", 0xD08): "cortex-a72",
    ("ARM", 0xD0C): "Neoverse-N1", ("ARM", 0xD49): "Neoverse-N2", ("ARM", 0xD40): "Neoverse-V1",
    ("Fujitsu", 0x001): "a64fx", ("HiSilicon", 0xD01): "Kunpeng-920", ("Cavium", 0x0AF): "ThunderX299xx",
    ("Qualcomm", 0xC00): "Falkor", ("Phytium", 0x662): "FT-2000plus", ("Phytium", 0x663): "Tengyun-S2500",
}  # fmt: skip

# ARM features libvirt lists that /proc/cpuinfo names the same (arm_features.xml:
# the SVE vector lengths are not in cpuinfo).
ARM_FEATURES: tuple[str, ...] = ("sve",)

# PVR & 0xffff0000 -> (libvirt ppc64 model, vendor) (ppc64_<model>.xml).
PPC64_MODELS: dict[int, tuple[str, str]] = {
    0x003E0000: ("POWER6", "IBM"), 0x003F0000: ("POWER7", "IBM"), 0x004A0000: ("POWER7", "IBM"),
    0x004B0000: ("POWER8", "IBM"), 0x004C0000: ("POWER8", "IBM"), 0x004D0000: ("POWER8", "IBM"),
    0x004E0000: ("POWER9", "IBM"), 0x00800000: ("POWER10", "IBM"),
    0x80240000: ("POWERPC_e5500", "Freescale"), 0x80400000: ("POWERPC_e6500", "Freescale"),
}  # fmt: skip

# libvirt's architecture names (basictypes.rng "archnames") for what uname -m says.
ARCH_NAMES: dict[str, str] = {"i386": "i686", "i486": "i686", "i586": "i686", "arm64": "aarch64"}
LIBVIRT_ARCHES: frozenset[str] = frozenset(
    {"aarch64", "alpha", "armv6l", "armv7l", "cris", "i686", "ia64", "lm32", "m68k", "microblaze",
     "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64", "ppc",
     "ppc64", "ppc64le", "ppcemb", "riscv32", "riscv64", "s390", "s390x", "sh4", "sh4eb", "sparc",
     "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb"}
)  # fmt: skip
