"""The host CPU as ``virsh capabilities`` names it: model, vendor and the features
listed beside the model, per architecture, from libvirt's CPU map.

- x86: the model libvirt's decoder picks (`x86.decode_host`) from the CPUID bits the
  cpuinfo flags show (`linux_x86`), or from the CPUID leaves themselves where the
  reading took them from ``/dev/cpu/N/cpuid`` (`cpuid.read_leaves`); the features are those
  beyond the model, in the map's order.  No model fits: no model, vendor or features
  (libvirt then names none either).
- arm/aarch64: the first model of the map whose MIDR part number is the CPU's, the
  vendor whose MIDR implementer id is the CPU's, and the AT_HWCAP features (the first
  32 hwcaps, as cpuinfo names them) the CPU has, as libvirt 9.0's ARM driver lists them
  (``virCPUarmDecode``); no model for the part: nothing (libvirt fails to decode).
- ppc64: the first model whose PVR (under its mask) is the CPU's, with its vendor.
- anything else (s390 ...): nothing; libvirt's map has no models there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from host_pm_exporter.cpumap import cpuid, linux_x86, x86
from host_pm_exporter.cpumap.loader import CpuMap, PvrModel

# libvirt 9.0's names of the AT_HWCAP bits 0-31 it lists for an aarch64 host
# (src/cpu/cpu_arm.c, aarch64_cpu_flags; the same strings and order as Linux's
# arch/arm64/kernel/cpuinfo.c hwcap_str for those bits).  Data, LGPL-2.1-or-later.
ARM_HWCAPS: tuple[str, ...] = (
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
    "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
    "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
    "paca", "pacg",
)  # fmt: skip


@dataclass(frozen=True)
class HostCpu:
    """What libvirt prints of a host CPU's identity; empty where it names nothing."""

    model: str | None = None
    vendor: str | None = None
    features: tuple[str, ...] = ()
    signature: tuple[int, int, int] | None = None
    source: str = "cpuinfo"  # where the x86 bits came from: cpuinfo, or the cpuid device


def x86_host(
    flags: Iterable[str],
    vendor_id: str,
    signature: tuple[int, int, int] | None,
    cpu_map: CpuMap,
    leaves: cpuid.Leaves | None = None,
) -> HostCpu:
    """The host CPU from cpuinfo's flags, vendor_id and (family, model, stepping); with
    `leaves` (read from ``/dev/cpu/N/cpuid``), from those CPUID leaves instead (the MSR
    bits only cpuinfo shows, e.g. ibrs_enhanced, are kept where the MSR was not read)."""
    bits = linux_x86.bits_from_flags(list(flags), vendor_id)
    source = "cpuinfo"
    if leaves is not None:
        msr_bits = frozenset(b for b in bits if b[0] == "msr") if not leaves.msr else frozenset()
        bits = leaves.bits() | msr_bits
        vendor_id = leaves.vendor_id() or vendor_id
        signature = leaves.signature() or signature
        source = "cpuid"
    vendor = x86.vendor_name(vendor_id, cpu_map)
    decoded = x86.decode_host(bits, cpu_map, vendor, signature)
    if decoded is None:
        return HostCpu(source=source)
    return HostCpu(decoded.model, vendor, decoded.features, signature, source)


def arm_host(implementer: int | None, part: int | None, features: Iterable[str], cpu_map: CpuMap) -> HostCpu:
    """The host CPU of an ARM machine from its MIDR implementer and part numbers.

    >>> from host_pm_exporter.cpumap.loader import load_map
    >>> arm_host(0x41, 0xD0C, ["fp", "asimd", "sve2", "cpuid"], load_map())
    HostCpu(model='Neoverse-N1', vendor='ARM', features=('fp', 'asimd', 'cpuid'), signature=None, source='cpuinfo')
    """
    model = _by_pvr(cpu_map.arm_models, part) if part is not None else None
    if model is None:
        return HostCpu()
    vendor = cpu_map.arm_vendors.get(implementer) if implementer else None
    if implementer and vendor is None:
        return HostCpu(model.name)  # libvirt has set the model when the vendor lookup fails
    have = frozenset(features)
    return HostCpu(model.name, vendor, tuple(f for f in ARM_HWCAPS if f in have))


def ppc64_host(pvr: int | None, cpu_map: CpuMap) -> HostCpu:
    """The host CPU of a POWER machine from its PVR.

    >>> from host_pm_exporter.cpumap.loader import load_map
    >>> ppc64_host(0x004E1202, load_map()).model
    'POWER9'
    """
    model = _by_pvr(cpu_map.ppc64_models, pvr) if pvr is not None else None
    return HostCpu(model.name, model.vendor) if model is not None else HostCpu()


def _by_pvr(models: list[PvrModel], pvr: int) -> PvrModel | None:
    for model in models:
        if any(pvr & mask == value for value, mask in model.pvrs):
            return model
    return None


def cpuid_path(root: str, cpu: int) -> str:
    """The cpuid device of CPU `cpu` under the root filesystem `root`."""
    return os.path.join(root, "dev", "cpu", str(cpu), "cpuid")
