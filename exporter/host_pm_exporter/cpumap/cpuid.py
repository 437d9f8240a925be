"""The CPUID leaves libvirt reads, from ``/dev/cpu/N/cpuid`` (opt-in).

Linux's cpuid driver (``arch/x86/kernel/cpuid.c``; the ``cpuid`` module, root only)
answers a 16-byte read at file offset ``leaf | subleaf << 32`` with EAX, EBX, ECX, EDX
(little-endian) of that CPUID leaf and sub-leaf, executed on CPU N.  libvirt walks the
same leaves (``cpuidSet`` in ``src/cpu/cpu_x86.c``): every basic leaf up to leaf 0's
EAX and every extended leaf up to 0x80000000's EAX, with the sub-leaves of 4, 7, 0xB,
0xD, 0xF, 0x10, 0x12, 0x14 and 0x17.  The bits of the leaves libvirt's features name
are what this reads; the IA32_ARCH_CAPABILITIES MSR (``/dev/cpu/N/msr``) is not read.

`Leaves` is also what libvirt's own test data holds (``tests/cputestdata``'s
``<cpudata>`` files), so `parse_cpudata` reads those captures the same way.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from host_pm_exporter.cpumap import xmltext
from host_pm_exporter.cpumap.loader import Bit, Bits

_REGS = ("eax", "ebx", "ecx", "edx")
_MAX_SUBLEAVES = 64
_MAX_LEAVES = 256
_MAX_CPUDATA = 1 << 20
Regs = tuple[int, int, int, int]


@dataclass(frozen=True)
class Leaves:
    """CPUID leaves: (leaf, subleaf) -> (eax, ebx, ecx, edx); MSR index -> (eax, edx)."""

    cpuid: dict[tuple[int, int], tuple[int, int, int, int]]
    msr: dict[int, tuple[int, int]]

    def bits(self) -> Bits:
        out: set[Bit] = set()
        for (leaf, sub), regs in self.cpuid.items():
            for reg, value in zip(_REGS, regs):
                out.update(("cpuid", leaf, sub, reg, b) for b in range(32) if value >> b & 1)
        for index, (eax, edx) in self.msr.items():
            for reg, value in (("eax", eax), ("edx", edx)):
                out.update(("msr", index, 0, reg, b) for b in range(32) if value >> b & 1)
        return frozenset(out)

    def vendor_id(self) -> str:
        """Leaf 0's vendor string (EBX, EDX, ECX)."""
        regs = self.cpuid.get((0, 0))
        if regs is None:
            return ""
        raw = struct.pack("<III", regs[1], regs[3], regs[2])
        return raw.decode("ascii", "replace").rstrip("\0")

    def signature(self) -> tuple[int, int, int] | None:
        """(family, model, stepping) from leaf 1 EAX, as libvirt computes them."""
        regs = self.cpuid.get((1, 0))
        if regs is None:
            return None
        eax = regs[0]
        family = ((eax >> 20) & 0xFF) + ((eax >> 8) & 0xF)
        model = ((eax >> 12) & 0xF0) + ((eax >> 4) & 0xF)
        return family, model, eax & 0xF


def parse_cpudata(text: str | bytes) -> Leaves:
    """libvirt's ``<cpudata arch='x86'>`` capture of CPUID leaves and MSRs.

    >>> leaves = parse_cpudata("<cpudata arch='x86'><cpuid eax_in='0x0' ecx_in='0x0' "
    ...     "eax='0xd' ebx='0x756e6547' ecx='0x6c65746e' edx='0x49656e69'/></cpudata>")
    >>> leaves.vendor_id()
    'GenuineIntel'
    """
    data = text.encode() if isinstance(text, str) else text
    root = xmltext.parse(data, _MAX_CPUDATA, "CPU data")
    cpuid: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    msr: dict[int, tuple[int, int]] = {}
    for element in root:
        if element.tag == "cpuid":
            key = (int(element.get("eax_in", "0"), 0), int(element.get("ecx_in", "0"), 0))
            cpuid[key] = (
                int(element.get("eax", "0"), 0),
                int(element.get("ebx", "0"), 0),
                int(element.get("ecx", "0"), 0),
                int(element.get("edx", "0"), 0),
            )
        elif element.tag == "msr":
            msr[int(element.get("index", "0"), 0)] = (int(element.get("eax", "0"), 0), int(element.get("edx", "0"), 0))
    return Leaves(cpuid, msr)


class CpuidReader:
    """One open ``/dev/cpu/N/cpuid``."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def __enter__(self) -> CpuidReader:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._fd)

    def __call__(self, leaf: int, sub: int = 0) -> Regs:
        raw = os.pread(self._fd, 16, leaf | sub << 32)
        if len(raw) != 16:
            raise OSError(f"short CPUID read of leaf {leaf:#x}")
        eax, ebx, ecx, edx = struct.unpack("<IIII", raw)
        return eax, ebx, ecx, edx


def read_leaves(path: str = "/dev/cpu/0/cpuid") -> Leaves:
    """Walk the leaves libvirt walks on the CPU whose cpuid device `path` is, and read
    the IA32_ARCH_CAPABILITIES MSR from the ``msr`` device beside it where CPUID says
    the MSR exists and the device is readable (as libvirt's ``virHostCPUGetMSR`` does
    first; its fallback through /dev/kvm is not taken).

    Raises OSError where the cpuid device is absent (no ``cpuid`` module) or not
    readable (not root)."""
    with CpuidReader(path) as call:
        leaves = walk(call)
    msr: dict[int, tuple[int, int]] = {}
    if leaves.get((0x7, 0), (0, 0, 0, 0))[3] >> 29 & 1:
        value = read_msr(os.path.join(os.path.dirname(path), "msr"), ARCH_CAPABILITIES)
        if value is not None:
            msr[ARCH_CAPABILITIES] = (value & 0xFFFFFFFF, value >> 32)
    return Leaves(leaves, msr)


ARCH_CAPABILITIES = 0x10A


def read_msr(path: str, index: int) -> int | None:
    """One MSR of Linux's msr driver (``arch/x86/kernel/msr.c``: an 8-byte read at
    offset `index`); None where it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.pread(fd, 8, index)
    except OSError:
        return None
    finally:
        os.close(fd)
    return struct.unpack("<Q", raw)[0] if len(raw) == 8 else None


def walk(call: Callable[[int, int], Regs]) -> dict[tuple[int, int], Regs]:
    """Every leaf and sub-leaf libvirt's ``cpuidSet`` reads that holds a feature bit,
    asked of `call` (leaf, subleaf) -> registers.  Leaves 4 and 0xB (cache and
    topology enumeration) carry no features and are not walked past sub-leaf 0."""
    out: dict[tuple[int, int], Regs] = {}
    for base in (0, 0x80000000):
        top = call(base, 0)[0]
        top = min(top, base + _MAX_LEAVES) if top >= base else base
        for leaf in range(base, top + 1):
            regs = call(leaf, 0)
            out[(leaf, 0)] = regs
            for sub in _subleaves(leaf, regs, out, call):
                out[(leaf, sub)] = call(leaf, sub)
    return out


def _subleaves(leaf: int, regs: Regs, seen: dict[tuple[int, int], Regs], call: Callable[[int, int], Regs]) -> list[int]:
    eax, ebx, _ecx, edx = regs
    if leaf in (0x7, 0x14) or (leaf == 0x17 and eax >= 3):
        return list(range(1, min(eax, _MAX_SUBLEAVES) + 1))
    if leaf == 0xD:
        sub1 = call(0xD, 1)
        low = [s for s in range(2, 32) if eax >> s & 1 or sub1[2] >> s & 1]
        high = [s for s in range(32, 64) if edx >> (s - 32) & 1 or sub1[3] >> (s - 32) & 1]
        return [1, *low, *high]
    if leaf == 0xF:
        return [s for s in range(1, 32) if edx >> s & 1]
    if leaf == 0x10:
        return [s for s in range(1, 32) if ebx >> s & 1]
    if leaf == 0x12 and (seen.get((0x7, 0), (0, 0, 0, 0))[1] >> 2 & 1):
        return [1]
    return []
