"""/proc/cpuinfo on x86, arm64 and 32-bit ARM, POWER and 32-bit PowerPC, s390x and
RISC-V; on any other architecture (LoongArch, sparc64, MIPS...) what its cpuinfo says.

Big hosts repeat one block per logical CPU, identical but for a few per-CPU lines
(processor, APIC ids, core id, MHz).  Each block is reduced to a signature without
those lines and only distinct signatures are parsed: a 1024-CPU host usually has one
or two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, NamedTuple

from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.armparts import arm_kind
from host_pm_exporter.readers.cpukind import CpuKind

# The lines this exporter uses, of every architecture; everything else is skipped by
# the regular expression engine, not by Python.
_KEYS = re.compile(
    r"\n(processor|physical id|core id|vendor_id|cpu family|model|model name|stepping|microcode"
    r"|flags|bugs|Features|CPU implementer|CPU architecture|CPU variant|CPU part|CPU revision"
    r"|cpu|revision|isa|uarch|mvendorid|marchid|mimpid|Processor|Model Name|CPU Family|cpu model)[ \t]*: ?([^\n]*)"
)
_PER_CPU_KEYS = ("processor", "physical id", "core id")
_LINE = re.compile(r"^([^:\n]*?)\s*:[ \t]?(.*)$", re.MULTILINE)
_PER_CPU = re.compile(r"^(cpu number|physical id|core id)\s*:\s*(\d+)\s*$", re.MULTILINE)
_S390_PROCESSOR = re.compile(r"^processor (\d+): (.*)$", re.MULTILINE)
_S390_CACHE = re.compile(r"^cache\d+\s*: level=(\d+) type=(\w+) scope=(\w+) size=(\d+)([KMG]?)\b", re.MULTILINE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_CPU_ONLINE = re.compile(r"^CPU(\d+)\s*:\s*online", re.MULTILINE)  # sparc64: no processor blocks
# 32-bit ARM names its ELF platform in parentheses: "ARMv7 Processor rev 4 (v7l)".
_ARM_PLATFORM = re.compile(r"^(?:Processor|model name)\s*: .*\((v\d+\w*?[lb]|aarch64)\)\s*$", re.MULTILINE)
_POWER64 = re.compile(r"^cpu\s*: (?:POWER|PPC970|Cell|e5500|e6500|PA6T)", re.MULTILINE)
_POWER_GENERATION = re.compile(r"^cpu\s*: POWER(\d+)", re.MULTILINE)


class CpuEntry(NamedTuple):
    """One logical CPU of /proc/cpuinfo."""

    cpu: int
    kind: CpuKind
    flags: str  # the raw flag line, shared by identical CPUs
    bugs: str
    package: int | None = None  # "physical id" (x86, s390x)
    core: int | None = None  # "core id"


@dataclass(frozen=True)
class CpuInfo:
    arch: str
    cpus: tuple[CpuEntry, ...]
    hypervisor_flag: bool = False
    caches: tuple[tuple[int, str, str, int], ...] = ()  # s390: (level, type, scope, bytes)

    def kinds(self) -> list[CpuKind]:
        return list(dict.fromkeys(entry.kind for entry in self.cpus))

    def flag_sets(self) -> list[frozenset[str]]:
        return [frozenset(line.split()) for line in dict.fromkeys(e.flags for e in self.cpus)]

    def flags(self) -> frozenset[str]:
        """Every flag any CPU has (hybrid CPUs may differ)."""
        return frozenset().union(*self.flag_sets()) if self.cpus else frozenset()

    def bugs(self) -> frozenset[str]:
        lines = dict.fromkeys(e.bugs for e in self.cpus)
        return frozenset(word for line in lines for word in line.split())


def detect_arch(text: str, machine: str | None = None, byteorder: str | None = None) -> str:
    """The architecture (as ``uname -m`` names it) that wrote this cpuinfo.

    `machine` is the running kernel's ``uname -m``, given only when the cpuinfo is the
    running kernel's: then it is the answer.  `byteorder` is
    /sys/kernel/cpu_byteorder where the kernel has it (POWER8 and later run either
    endianness; POWER7 and older only big-endian).  An architecture nothing here
    recognises is ``""``: unknown, not an error.

    >>> detect_arch("processor\\t: 0\\nvendor_id\\t: GenuineIntel\\nflags\\t\\t: fpu lm\\n")
    'x86_64'
    >>> detect_arch("processor\\t: 0\\nFeatures\\t: fp asimd\\nCPU implementer\\t: 0x41\\n")
    'aarch64'
    >>> detect_arch("processor\\t: 0\\ncpu\\t\\t: POWER7 (architected), altivec supported\\n")
    'ppc64'
    >>> detect_arch("processor\\t: 0\\ncpu\\t\\t: POWER9, altivec supported\\n", byteorder="big")
    'ppc64'
    """
    if machine:
        return machine
    head = text[:8192]
    return next((arch for detect in _DETECTORS if (arch := detect(head, byteorder))), "")


def _matches(pattern: str, arch: str) -> Callable[[str, str | None], str | None]:
    regex = re.compile(pattern, re.MULTILINE | re.IGNORECASE)
    return lambda head, _byteorder: arch if regex.search(head) else None


def _arm(head: str, _byteorder: str | None) -> str | None:
    platform = _ARM_PLATFORM.search(head)
    if platform:
        return "aarch64" if platform.group(1) == "aarch64" else "arm" + platform.group(1)
    if not re.search(r"^CPU implementer\s*:", head, re.MULTILINE):
        return None
    version = re.search(r"^CPU architecture\s*: ?(\d+)", head, re.MULTILINE)
    return f"armv{version.group(1)}l" if version and int(version.group(1)) < 8 else "aarch64"


def _power(head: str, byteorder: str | None) -> str | None:
    if not re.search(r"^cpu\s*: POWER|^cpu\s*: PPC|^revision\s*: .*\(pvr", head, re.MULTILINE):
        return None
    if not _POWER64.search(head):
        return "ppc"  # 7xx, 74xx, e300, e500, 4xx: 32-bit PowerPC
    if byteorder in ("little", "big"):
        return "ppc64le" if byteorder == "little" else "ppc64"
    generation = _POWER_GENERATION.search(head)
    return "ppc64le" if generation and int(generation.group(1)) >= 8 else "ppc64"


def _x86(head: str, _byteorder: str | None) -> str | None:
    if not re.search(r"^(vendor_id|flags)\s*:", head, re.MULTILINE):
        return None
    return "x86_64" if re.search(r"^flags\s*:.* lm( |$)", head, re.MULTILINE) else "i686"


def _riscv(head: str, _byteorder: str | None) -> str | None:
    isa = re.search(r"^isa\s*: rv(32|64)", head, re.MULTILINE)
    return f"riscv{isa.group(1)}" if isa else None


# In this order: s390 and ARM cpuinfo have lines that look like others' (vendor_id,
# "cpu"), sparc's "cpu" line would look like POWER's.
_DETECTORS: tuple[Callable[[str, str | None], str | None], ...] = (
    _matches(r"^vendor_id\s*: IBM/S390", "s390x"),
    _arm,
    _riscv,
    _matches(r"^type\s*: sun4|^cpu\s*: .*sparc", "sparc64"),
    _power,
    _matches(r"^(CPU Family|Model Name)\s*: Loongson", "loongarch64"),
    _matches(r"^cpu model\s*: ", "mips"),
    _x86,
)


def parse_cpuinfo(text: str, machine: str | None = None, byteorder: str | None = None) -> CpuInfo:
    """Parse /proc/cpuinfo of any supported architecture.

    >>> info = parse_cpuinfo(
    ...     "processor\\t: 0\\nvendor_id\\t: GenuineIntel\\ncpu family\\t: 6\\nmodel\\t\\t: 143\\n"
    ...     "model name\\t: Intel(R) Xeon(R) Silver 4410Y\\nstepping\\t: 8\\nmicrocode\\t: 0x2b0004b1\\n"
    ...     "flags\\t\\t: fpu lm vmx\\n\\n")
    >>> info.arch, info.kinds()[0].model, sorted(info.flags())
    ('x86_64', '143', ['fpu', 'lm', 'vmx'])
    """
    if not text.strip():
        raise ParseError("empty /proc/cpuinfo")
    arch = detect_arch(text, machine, byteorder)
    if not arch and not _LINE.search(text):
        raise ParseError("no 'name : value' line in /proc/cpuinfo")
    if arch == "s390x":
        cpus = _parse_s390x(text)
    elif arch in ("x86_64", "i686"):
        cpus = _parse_x86(text)
    else:
        cpus = _parse_blocks(text, arch)
    if not cpus:
        raise ParseError("no processors in /proc/cpuinfo")
    hypervisor = any("hypervisor" in line.split() for line in dict.fromkeys(c.flags for c in cpus))
    caches = tuple(
        (int(level), ctype, scope, int(size) * _UNITS[unit])
        for level, ctype, scope, size, unit in _S390_CACHE.findall(text)
    ) if arch == "s390x" else ()  # fmt: skip
    return CpuInfo(arch, tuple(cpus), hypervisor, caches)


def _fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in _LINE.findall(block):
        fields.setdefault(key.strip(), value.strip())
    return fields


# A kind's identity by the text of its block that is not per CPU: parsing the same text
# gives the same kind, on every reading (each still reads /proc/cpuinfo afresh).
_X86_KINDS: dict[str, tuple[CpuKind, str, str]] = {}


def _parse_x86(text: str) -> list[CpuEntry]:
    """x86 fast path: a block's identity is everything but the per-CPU lines, which sit
    between the first line (processor) and ``flags``; ``cpu MHz`` starts them."""
    cpus = []
    # The CPUs come in runs of one kind: a block like the one before is compared with it
    # (a memcmp), not hashed (~1.5 KB with the flags, a thousand times on a big host).
    last: tuple[str, str, tuple[CpuKind, str, str]] | None = None
    for raw in text.split("\n\n"):
        block = raw.strip("\n")
        if not block.startswith("processor"):
            continue
        first = block.find("\n")
        mhz = block.find("\ncpu MHz")
        flags_at = block.find("\nflags")
        if first < 0 or mhz < 0 or flags_at < mhz:
            return _parse_blocks(text, "x86_64")  # an unusual layout: take the general path
        head, tail = block[first:mhz], block[flags_at:]
        if last is not None and last[0] == head and last[1] == tail:
            identity = last[2]
        else:
            signature = head + tail
            known = _X86_KINDS.get(signature)  # (a pure function of the signature's text)
            if known is None:
                known = _identity(_fields(block), "x86_64")
                if len(_X86_KINDS) >= 256:
                    _X86_KINDS.clear()
                _X86_KINDS[signature] = known
            identity = known
            last = (head, tail, identity)
        number = block[block.find(":") + 1 : first].strip()
        if not (number.isascii() and number.isdigit()):
            raise ParseError(f"bad processor number {number[:20]!r}")
        cpus.append(CpuEntry(int(number), *identity, _int_field(block, "physical id"), _int_field(block, "core id")))
    return cpus


def _int_field(block: str, key: str) -> int | None:
    at = block.find("\n" + key)
    if at < 0:
        return None
    end = block.find("\n", at + 1)
    value = block[block.find(":", at) + 1 : end if end >= 0 else None].strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _parse_blocks(text: str, arch: str) -> list[CpuEntry]:
    """The general path: one record per ``processor`` line.  Lines outside every
    processor's block are shared by all (old 32-bit ARM kernels print ``Processor``
    first and the CPU implementer fields once, at the end); a cpuinfo with no
    processor line at all (sparc64, the oldest ARM kernels) describes every CPU, and
    so do the fields after a bare list of ``processor`` lines (old arm64 kernels)."""
    records: list[dict[str, str]] = []
    shared: dict[str, str] = {}
    for block in text.split("\n\n"):
        current: dict[str, str] | None = None
        bare_run = False  # "processor : 0\nprocessor : 1\n...": a list, not blocks
        for key, value in _KEYS.findall("\n" + block):
            if key == "processor":
                bare_run = bare_run or (current is not None and len(current) == 1)
                current = {"processor": value}
                records.append(current)
            elif current is None:
                shared.setdefault(key, value)
            elif key not in current:
                current[key] = value
        if bare_run and current is not None:
            # after a bare list of processors, the fields that follow describe them all
            for key in [k for k in current if k not in _PER_CPU_KEYS]:
                shared.setdefault(key, current.pop(key))
    if not records:
        records = [{"processor": n} for n in _CPU_ONLINE.findall(text)] or [{"processor": "0"}]
    parsed: dict[tuple[tuple[str, str], ...], tuple[CpuKind, str, str]] = {}
    cpus = []
    for own in records:
        record = {**shared, **own} if shared else own
        signature = tuple((k, v) for k, v in record.items() if k not in _PER_CPU_KEYS)
        if signature not in parsed:
            fields = {k: v.strip() for k, v in signature}
            parsed[signature] = _identity(fields, arch)
        kind, flags, bugs = parsed[signature]
        try:
            cpu = int(record["processor"])
            package = int(record["physical id"]) if "physical id" in record else None
            core = int(record["core id"]) if "core id" in record else None
        except ValueError:
            raise ParseError(f"bad processor ids in {record.get('processor', '')[:20]!r}") from None
        cpus.append(CpuEntry(cpu, kind, flags, bugs, package, core))
    return cpus


def _identity(fields: dict[str, str], arch: str) -> tuple[CpuKind, str, str]:
    if arch == "aarch64" or arch.startswith("arm"):
        return arm_kind(fields), fields.get("Features", ""), ""
    if arch.startswith("ppc"):
        cpu = fields.get("cpu", "")
        revision = fields.get("revision", "")
        pvr = re.search(r"pvr ([0-9a-f]{4}) ([0-9a-f]{4})", revision)
        return (
            CpuKind(
                vendor="IBM" if arch != "ppc" else "",  # 32-bit parts: Freescale, AMCC, IBM...
                model_name=cpu.split(" (")[0].split(",")[0].strip(),
                family=cpu.split(" (")[0].split(",")[0].strip(),
                model=f"0x{pvr.group(1)}{pvr.group(2)}" if pvr else "",
                stepping=revision.split(" (")[0].strip(),
            ),
            "",
            "",
        )
    if arch.startswith("riscv"):
        isa = fields.get("isa", "")
        uarch = fields.get("uarch", "")
        return (
            CpuKind(
                vendor=_riscv_vendor(fields.get("mvendorid", ""), uarch),
                model_name=fields.get("uarch", ""),
                family=isa.split("_")[0],
                model=fields.get("marchid", ""),
                stepping=fields.get("mimpid", ""),
            ),
            "",
            "",
        )
    if arch not in ("x86_64", "i686"):  # LoongArch, sparc64, MIPS and the unknown
        return (
            CpuKind(
                vendor=fields.get("vendor_id", ""),
                model_name=fields.get("model name")
                or fields.get("Model Name")
                or fields.get("cpu model")
                or fields.get("cpu", ""),
                family=fields.get("CPU Family") or fields.get("cpu family", ""),
            ),
            fields.get("flags") or fields.get("Features", ""),
            "",
        )
    return (
        CpuKind(
            vendor=fields.get("vendor_id", ""),
            model_name=fields.get("model name", ""),
            family=fields.get("cpu family", ""),
            model=fields.get("model", ""),
            stepping=fields.get("stepping", ""),
            microcode=fields.get("microcode", ""),
        ),
        fields.get("flags", ""),
        fields.get("bugs", ""),
    )


# RISC-V mvendorid (JEDEC bank and id) and the vendor prefix of the device-tree uarch.
RISCV_VENDORS = {0x489: "SiFive", 0x5B7: "T-Head", 0x710: "SpacemiT"}
RISCV_UARCH_VENDORS = {"sifive": "SiFive", "thead": "T-Head", "spacemit": "SpacemiT"}


def _riscv_vendor(mvendorid: str, uarch: str) -> str:
    """The vendor's name where it is known, else the raw mvendorid.

    >>> _riscv_vendor("0x489", ""), _riscv_vendor("", "sifive,u74-mc"), _riscv_vendor("0x123", "")
    ('SiFive', 'SiFive', '0x123')
    """
    try:
        named = RISCV_VENDORS.get(int(mvendorid, 16))
    except ValueError:
        named = None
    return named or RISCV_UARCH_VENDORS.get(uarch.split(",", maxsplit=1)[0], mvendorid)


# IBM Z machine types -> model names.
S390_MACHINES = {
    "2964": "z13", "2965": "z13s", "3906": "z14", "3907": "z14 ZR1", "8561": "z15 T01",
    "8562": "z15 T02", "3931": "z16 A01", "3932": "z16 A02", "9175": "z17 ME1",
}  # fmt: skip


def _parse_s390x(text: str) -> list[CpuEntry]:
    header, _, _ = text.partition("\n\n")
    fields = _fields(header)
    features = fields.get("features", "")
    machines = {int(n): rest for n, rest in _S390_PROCESSOR.findall(text)}
    cpus = []
    for number, rest in sorted(machines.items()):
        parts = dict(p.strip().split(" = ", 1) for p in rest.split(",") if " = " in p)
        machine = parts.get("machine", "")
        kind = CpuKind(
            vendor=fields.get("vendor_id", ""),
            model_name=S390_MACHINES.get(machine) or machine,
            family="",
            model=machine,
            stepping=parts.get("version", ""),
        )
        cpus.append(CpuEntry(cpu=number, kind=kind, flags=features, bugs=""))
    # Newer kernels add per-CPU blocks with topology ids, by CPU number (online CPUs only).
    index = {entry.cpu: i for i, entry in enumerate(cpus)}
    for block in text.split("\n\n")[1:]:
        ids = dict(_PER_CPU.findall(block))
        if "cpu number" in ids and int(ids["cpu number"]) in index:
            i = index[int(ids["cpu number"])]
            entry = cpus[i]
            cpus[i] = entry._replace(
                package=int(ids["physical id"]) if "physical id" in ids else None,
                core=int(ids["core id"]) if "core id" in ids else None,
            )
    return cpus
