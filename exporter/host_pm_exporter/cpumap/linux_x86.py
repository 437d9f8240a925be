"""What Linux's /proc/cpuinfo ``flags`` say about the CPUID bits libvirt reads.

Each flag Linux prints for a CPUID (or IA32_ARCH_CAPABILITIES MSR) bit is carried here
with that bit's place: leaf, sub-leaf, register, bit.  These are facts from Linux's
``arch/x86/include/asm/cpufeatures.h`` (project torvalds/linux, licence GPL-2.0; each
feature word there is one CPUID leaf register, e.g. word 4 = CPUID 1 ECX; checked at
commit 005401e94f18ad4190fd12e6c552db5dfb911c1a and later kernels for the words added
since), cross-checked against the same bit in libvirt's ``x86_features.xml``.  libvirt's
name for each bit is not carried here: it is read from the CPU map (`loader`), so the
names are always those of the libvirt whose map is used.

Flags the kernel synthesises from either vendor's bits (``ibrs``, ``ibpb``, ``stibp``,
``ssbd``: Linux's ``init_speculation_control()`` in ``arch/x86/kernel/cpu/common.c``)
are placed by the vendor: on Intel from CPUID 7 EDX (libvirt: spec-ctrl, stibp, ssbd),
on AMD and Hygon from CPUID 0x80000008 EBX (libvirt: ibrs, ibpb, amd-stibp, amd-ssbd).
What a flag cannot tell is listed in `CPUID_ONLY`, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from host_pm_exporter.cpumap.loader import Bit, Bits


def C(leaf: int, sub: int, reg: str, bit: int) -> Bit:
    """A CPUID bit."""
    return ("cpuid", leaf, sub, reg, bit)


def M(index: int, reg: str, bit: int) -> Bit:
    """An MSR bit."""
    return ("msr", index, 0, reg, bit)


# Linux /proc/cpuinfo flag -> the CPUID or MSR bit it shows.
LINUX_FLAGS: Mapping[str, Bit] = {
    # CPUID 0x1 EDX
    "fpu": C(0x1, 0, "edx", 0), "vme": C(0x1, 0, "edx", 1), "de": C(0x1, 0, "edx", 2), "pse": C(0x1, 0, "edx", 3),
    "tsc": C(0x1, 0, "edx", 4), "msr": C(0x1, 0, "edx", 5), "pae": C(0x1, 0, "edx", 6), "mce": C(0x1, 0, "edx", 7),
    "cx8": C(0x1, 0, "edx", 8), "apic": C(0x1, 0, "edx", 9), "sep": C(0x1, 0, "edx", 11),
    "mtrr": C(0x1, 0, "edx", 12), "pge": C(0x1, 0, "edx", 13), "mca": C(0x1, 0, "edx", 14),
    "cmov": C(0x1, 0, "edx", 15), "pat": C(0x1, 0, "edx", 16), "pse36": C(0x1, 0, "edx", 17),
    "pn": C(0x1, 0, "edx", 18), "clflush": C(0x1, 0, "edx", 19), "dts": C(0x1, 0, "edx", 21),
    "acpi": C(0x1, 0, "edx", 22), "mmx": C(0x1, 0, "edx", 23), "fxsr": C(0x1, 0, "edx", 24),
    "sse": C(0x1, 0, "edx", 25), "sse2": C(0x1, 0, "edx", 26), "ss": C(0x1, 0, "edx", 27), "ht": C(0x1, 0, "edx", 28),
    "tm": C(0x1, 0, "edx", 29), "ia64": C(0x1, 0, "edx", 30), "pbe": C(0x1, 0, "edx", 31),
    # CPUID 0x1 ECX
    "pni": C(0x1, 0, "ecx", 0), "pclmulqdq": C(0x1, 0, "ecx", 1), "dtes64": C(0x1, 0, "ecx", 2),
    "monitor": C(0x1, 0, "ecx", 3), "ds_cpl": C(0x1, 0, "ecx", 4), "vmx": C(0x1, 0, "ecx", 5),
    "smx": C(0x1, 0, "ecx", 6), "est": C(0x1, 0, "ecx", 7), "tm2": C(0x1, 0, "ecx", 8), "ssse3": C(0x1, 0, "ecx", 9),
    "cid": C(0x1, 0, "ecx", 10), "fma": C(0x1, 0, "ecx", 12), "cx16": C(0x1, 0, "ecx", 13),
    "xtpr": C(0x1, 0, "ecx", 14), "pdcm": C(0x1, 0, "ecx", 15), "pcid": C(0x1, 0, "ecx", 17),
    "dca": C(0x1, 0, "ecx", 18), "sse4_1": C(0x1, 0, "ecx", 19), "sse4_2": C(0x1, 0, "ecx", 20),
    "x2apic": C(0x1, 0, "ecx", 21), "movbe": C(0x1, 0, "ecx", 22), "popcnt": C(0x1, 0, "ecx", 23),
    "tsc_deadline_timer": C(0x1, 0, "ecx", 24), "aes": C(0x1, 0, "ecx", 25), "xsave": C(0x1, 0, "ecx", 26),
    "avx": C(0x1, 0, "ecx", 28), "f16c": C(0x1, 0, "ecx", 29), "rdrand": C(0x1, 0, "ecx", 30),
    "hypervisor": C(0x1, 0, "ecx", 31),
    # CPUID 0x6 EAX
    "arat": C(0x6, 0, "eax", 2),
    # CPUID 0x7 EBX
    "fsgsbase": C(0x7, 0, "ebx", 0), "tsc_adjust": C(0x7, 0, "ebx", 1), "sgx": C(0x7, 0, "ebx", 2),
    "bmi1": C(0x7, 0, "ebx", 3), "hle": C(0x7, 0, "ebx", 4), "avx2": C(0x7, 0, "ebx", 5), "smep": C(0x7, 0, "ebx", 7),
    "bmi2": C(0x7, 0, "ebx", 8), "erms": C(0x7, 0, "ebx", 9), "invpcid": C(0x7, 0, "ebx", 10),
    "rtm": C(0x7, 0, "ebx", 11), "cqm": C(0x7, 0, "ebx", 12), "mpx": C(0x7, 0, "ebx", 14),
    "avx512f": C(0x7, 0, "ebx", 16), "avx512dq": C(0x7, 0, "ebx", 17), "rdseed": C(0x7, 0, "ebx", 18),
    "adx": C(0x7, 0, "ebx", 19), "smap": C(0x7, 0, "ebx", 20), "avx512ifma": C(0x7, 0, "ebx", 21),
    "pcommit": C(0x7, 0, "ebx", 22), "clflushopt": C(0x7, 0, "ebx", 23), "clwb": C(0x7, 0, "ebx", 24),
    "intel_pt": C(0x7, 0, "ebx", 25), "avx512pf": C(0x7, 0, "ebx", 26), "avx512er": C(0x7, 0, "ebx", 27),
    "avx512cd": C(0x7, 0, "ebx", 28), "sha_ni": C(0x7, 0, "ebx", 29), "avx512bw": C(0x7, 0, "ebx", 30),
    "avx512vl": C(0x7, 0, "ebx", 31),
    # CPUID 0x7 ECX
    "avx512vbmi": C(0x7, 0, "ecx", 1), "umip": C(0x7, 0, "ecx", 2), "pku": C(0x7, 0, "ecx", 3),
    "ospke": C(0x7, 0, "ecx", 4), "waitpkg": C(0x7, 0, "ecx", 5), "avx512_vbmi2": C(0x7, 0, "ecx", 6),
    "gfni": C(0x7, 0, "ecx", 8), "vaes": C(0x7, 0, "ecx", 9), "vpclmulqdq": C(0x7, 0, "ecx", 10),
    "avx512_vnni": C(0x7, 0, "ecx", 11), "avx512_bitalg": C(0x7, 0, "ecx", 12),
    "avx512_vpopcntdq": C(0x7, 0, "ecx", 14), "la57": C(0x7, 0, "ecx", 16), "rdpid": C(0x7, 0, "ecx", 22),
    "bus_lock_detect": C(0x7, 0, "ecx", 24), "cldemote": C(0x7, 0, "ecx", 25), "movdiri": C(0x7, 0, "ecx", 27),
    "movdir64b": C(0x7, 0, "ecx", 28), "sgx_lc": C(0x7, 0, "ecx", 30), "pks": C(0x7, 0, "ecx", 31),
    # CPUID 0x7 EDX
    "avx512_4vnniw": C(0x7, 0, "edx", 2), "avx512_4fmaps": C(0x7, 0, "edx", 3), "fsrm": C(0x7, 0, "edx", 4),
    "avx512_vp2intersect": C(0x7, 0, "edx", 8), "md_clear": C(0x7, 0, "edx", 10), "serialize": C(0x7, 0, "edx", 14),
    "tsxldtrk": C(0x7, 0, "edx", 16), "pconfig": C(0x7, 0, "edx", 18), "arch_lbr": C(0x7, 0, "edx", 19),
    "amx_bf16": C(0x7, 0, "edx", 22), "avx512_fp16": C(0x7, 0, "edx", 23), "amx_tile": C(0x7, 0, "edx", 24),
    "amx_int8": C(0x7, 0, "edx", 25), "arch_capabilities": C(0x7, 0, "edx", 29),
    # CPUID 0x7.1 EAX
    "avx_vnni": C(0x7, 1, "eax", 4), "avx512_bf16": C(0x7, 1, "eax", 5),
    # CPUID 0xD.1 EAX
    "xsaveopt": C(0xD, 1, "eax", 0), "xsavec": C(0xD, 1, "eax", 1), "xgetbv1": C(0xD, 1, "eax", 2),
    "xsaves": C(0xD, 1, "eax", 3),
    # CPUID 0xF.1 EDX
    "cqm_mbm_total": C(0xF, 1, "edx", 1), "cqm_mbm_local": C(0xF, 1, "edx", 2),
    # CPUID 0x80000001 EDX
    "syscall": C(0x80000001, 0, "edx", 11), "nx": C(0x80000001, 0, "edx", 20), "mmxext": C(0x80000001, 0, "edx", 22),
    "fxsr_opt": C(0x80000001, 0, "edx", 25), "pdpe1gb": C(0x80000001, 0, "edx", 26),
    "rdtscp": C(0x80000001, 0, "edx", 27), "lm": C(0x80000001, 0, "edx", 29), "3dnowext": C(0x80000001, 0, "edx", 30),
    "3dnow": C(0x80000001, 0, "edx", 31),
    # CPUID 0x80000001 ECX
    "lahf_lm": C(0x80000001, 0, "ecx", 0), "cmp_legacy": C(0x80000001, 0, "ecx", 1),
    "svm": C(0x80000001, 0, "ecx", 2), "extapic": C(0x80000001, 0, "ecx", 3),
    "cr8_legacy": C(0x80000001, 0, "ecx", 4), "abm": C(0x80000001, 0, "ecx", 5), "sse4a": C(0x80000001, 0, "ecx", 6),
    "misalignsse": C(0x80000001, 0, "ecx", 7), "3dnowprefetch": C(0x80000001, 0, "ecx", 8),
    "osvw": C(0x80000001, 0, "ecx", 9), "ibs": C(0x80000001, 0, "ecx", 10), "xop": C(0x80000001, 0, "ecx", 11),
    "skinit": C(0x80000001, 0, "ecx", 12), "wdt": C(0x80000001, 0, "ecx", 13), "lwp": C(0x80000001, 0, "ecx", 15),
    "fma4": C(0x80000001, 0, "ecx", 16), "tce": C(0x80000001, 0, "ecx", 17),
    "nodeid_msr": C(0x80000001, 0, "ecx", 19), "tbm": C(0x80000001, 0, "ecx", 21),
    "topoext": C(0x80000001, 0, "ecx", 22), "perfctr_core": C(0x80000001, 0, "ecx", 23),
    "perfctr_nb": C(0x80000001, 0, "ecx", 24),
    # CPUID 0x80000007 EDX
    "nonstop_tsc": C(0x80000007, 0, "edx", 8),
    # CPUID 0x80000008 EBX
    "clzero": C(0x80000008, 0, "ebx", 0), "xsaveerptr": C(0x80000008, 0, "ebx", 2),
    "wbnoinvd": C(0x80000008, 0, "ebx", 9), "virt_ssbd": C(0x80000008, 0, "ebx", 25),
    # CPUID 0x8000000A EDX
    "npt": C(0x8000000A, 0, "edx", 0), "lbrv": C(0x8000000A, 0, "edx", 1), "svm_lock": C(0x8000000A, 0, "edx", 2),
    "nrip_save": C(0x8000000A, 0, "edx", 3), "tsc_scale": C(0x8000000A, 0, "edx", 4),
    "vmcb_clean": C(0x8000000A, 0, "edx", 5), "flushbyasid": C(0x8000000A, 0, "edx", 6),
    "decodeassists": C(0x8000000A, 0, "edx", 7), "pausefilter": C(0x8000000A, 0, "edx", 10),
    "pfthreshold": C(0x8000000A, 0, "edx", 12), "avic": C(0x8000000A, 0, "edx", 13),
    "v_vmsave_vmload": C(0x8000000A, 0, "edx", 15), "vgif": C(0x8000000A, 0, "edx", 16),
    "svme_addr_chk": C(0x8000000A, 0, "edx", 28),
    # MSR 0x10A EAX
    "ibrs_enhanced": M(0x10A, "eax", 1),
}  # fmt: skip

# CPUID 1 ECX OSXSAVE mirrors CR4.OSXSAVE, which Linux sets whenever it uses XSAVE;
# Linux prints "xsave" only then ("noxsave" clears both).
IMPLIED: Mapping[str, tuple[Bit, ...]] = {"xsave": (C(0x1, 0, "ecx", 27),)}

# The speculation-control flags, by vendor (Linux's init_speculation_control()).
_INTEL_SPECULATION: Mapping[str, Bit] = {
    "ibrs": C(0x7, 0, "edx", 26),  # SPEC_CTRL enumerates IBRS and IBPB on Intel
    "ibpb": C(0x7, 0, "edx", 26),
    "stibp": C(0x7, 0, "edx", 27),
    "ssbd": C(0x7, 0, "edx", 31),
}
_AMD_SPECULATION: Mapping[str, Bit] = {
    "ibpb": C(0x80000008, 0, "ebx", 12),
    "ibrs": C(0x80000008, 0, "ebx", 14),
    "stibp": C(0x80000008, 0, "ebx", 15),
    "ssbd": C(0x80000008, 0, "ebx", 24),  # unless virt_ssbd: Linux then has both
}
SPECULATION: Mapping[str, Mapping[str, Bit]] = {
    "GenuineIntel": _INTEL_SPECULATION,
    "AuthenticAMD": _AMD_SPECULATION,
    "HygonGenuine": _AMD_SPECULATION,
}

_BY_HIDDEN = "Linux reads the bit but gives it no /proc/cpuinfo name"
_OTHER_VENDOR = (
    "the other vendor's enumeration of a speculation control, which hypervisors also offer; Linux folds "
    "both into its ibrs/ibpb/stibp/ssbd flags, so cpuinfo cannot tell which CPUID leaf set it"
)
_ARCH_CAPS = "a bit of the IA32_ARCH_CAPABILITIES MSR, which libvirt reads and Linux does not print"

# libvirt features that /proc/cpuinfo cannot show, and why (the names of libvirt 9.0's map).
CPUID_ONLY: Mapping[str, str] = {
    "la57": "Linux clears the flag when the kernel runs with 4-level paging (no5lvl, or built without "
    "CONFIG_X86_5LEVEL), though CPUID still has the bit",
    "xfd": _BY_HIDDEN + " (X86_FEATURE_XFD)",
    "core-capability": _BY_HIDDEN + " (X86_FEATURE_CORE_CAPABILITIES)",
    "amd-no-ssb": _BY_HIDDEN + " (X86_FEATURE_AMD_SSB_NO)",
    "cvt16": "Linux does not know the bit (CPUID 0x80000001 ECX 18)",
    "intel-pt-lip": "Linux does not know the bit (CPUID 0x14 ECX 31)",
    "sgx1": _BY_HIDDEN + " (X86_FEATURE_SGX1)",
    "sgx2": _BY_HIDDEN + " (X86_FEATURE_SGX2)",
    "sgx-exinfo": "CPUID leaf 0x12 bits Linux does not print",
    "sgx-debug": "CPUID leaf 0x12 bits Linux does not print",
    "sgx-mode64": "CPUID leaf 0x12 bits Linux does not print",
    "sgx-provisionkey": "CPUID leaf 0x12 bits Linux does not print",
    "sgx-tokenkey": "CPUID leaf 0x12 bits Linux does not print",
    "sgx-kss": "CPUID leaf 0x12 bits Linux does not print",
    "rdctl-no": _ARCH_CAPS,
    "rsba": _ARCH_CAPS,
    "skip-l1dfl-vmentry": _ARCH_CAPS,
    "ssb-no": _ARCH_CAPS,
    "mds-no": _ARCH_CAPS,
    "pschange-mc-no": _ARCH_CAPS,
    "tsx-ctrl": _ARCH_CAPS,
    "taa-no": _ARCH_CAPS,
    "split-lock-detect": "a bit of the IA32_CORE_CAPABILITIES MSR; Linux's split_lock_detect flag also "
    "comes from a list of CPU models and is cleared when the kernel does not use it",
}


# The other vendor's speculation-control features, which cpuinfo cannot show either.
_INTEL_NAMES = ("spec-ctrl", "stibp", "ssbd")
_AMD_NAMES = ("ibpb", "ibrs", "amd-stibp", "amd-ssbd")
OTHER_VENDOR: Mapping[str, tuple[str, ...]] = {
    "GenuineIntel": _AMD_NAMES,
    "AuthenticAMD": _INTEL_NAMES,
    "HygonGenuine": _INTEL_NAMES,
}


def cpuid_only(vendor_id: str) -> dict[str, str]:
    """The libvirt features cpuinfo cannot show on a CPU of this vendor, and why.

    >>> sorted(set(cpuid_only("GenuineIntel")) - set(CPUID_ONLY))
    ['amd-ssbd', 'amd-stibp', 'ibpb', 'ibrs']
    """
    out = dict(CPUID_ONLY)
    names = OTHER_VENDOR.get(vendor_id, _INTEL_NAMES + _AMD_NAMES)
    out.update((name, _OTHER_VENDOR) for name in names)
    return out


def bits_from_flags(flags: Iterable[str], vendor_id: str) -> Bits:
    """The CPUID/MSR bits a CPU's cpuinfo flags show, for its ``vendor_id``.

    >>> sorted(bits_from_flags(["sse4_2", "ibrs"], "GenuineIntel"))
    [('cpuid', 1, 0, 'ecx', 20), ('cpuid', 7, 0, 'edx', 26)]
    >>> sorted(bits_from_flags(["ibrs", "ssbd", "virt_ssbd"], "AuthenticAMD"))
    [('cpuid', 2147483656, 0, 'ebx', 14), ('cpuid', 2147483656, 0, 'ebx', 25)]
    """
    have = frozenset(flags)
    out: set[Bit] = set()
    for flag in have:
        bit = LINUX_FLAGS.get(flag)
        if bit is not None:
            out.add(bit)
        out.update(IMPLIED.get(flag, ()))
    speculation = SPECULATION.get(vendor_id, {})
    for flag, bit in speculation.items():
        if flag in have and not (flag == "ssbd" and vendor_id != "GenuineIntel" and "virt_ssbd" in have):
            out.add(bit)
    return frozenset(out)
