"""/proc/cpuinfo on x86, arm64, POWER, s390x and RISC-V.

Big hosts repeat one block per logical CPU, identical but for a few per-CPU lines
(processor, APIC ids, core id, MHz).  Each block is reduced to a signature without
those lines and only distinct signatures are parsed: a 1024-CPU host usually has one
or two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.armparts import arm_kind
from host_pm_exporter.readers.cpukind import CpuKind

# The lines this exporter uses, of every architecture; everything else is skipped by
# the regular expression engine, not by Python.
_KEYS = re.compile(
    r"\n(processor|physical id|core id|vendor_id|cpu family|model|model name|stepping|microcode"
    r"|flags|bugs|Features|CPU implementer|CPU architecture|CPU variant|CPU part|CPU revision"
    r"|cpu|revision|isa|uarch|mvendorid|marchid|mimpid)[ \t]*: ?([^\n]*)"
)
_PER_CPU_KEYS = ("processor", "physical id", "core id")
_LINE = re.compile(r"^([^:\n]*?)\s*:[ \t]?(.*)$", re.MULTILINE)
_PER_CPU = re.compile(r"^(cpu number|physical id|core id)\s*:\s*(\d+)\s*$", re.MULTILINE)
_S390_PROCESSOR = re.compile(r"^processor (\d+): (.*)$", re.MULTILINE)
_S390_CACHE = re.compile(r"^cache\d+\s*: level=(\d+) type=(\w+) scope=(\w+) size=(\d+)([KMG]?)\b", re.MULTILINE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


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


def detect_arch(text: str) -> str:
    """The architecture (as ``uname -m`` names it) that wrote this cpuinfo.

    >>> detect_arch("processor\\t: 0\\nvendor_id\\t: GenuineIntel\\nflags\\t\\t: fpu lm\\n")
    'x86_64'
    >>> detect_arch("processor\\t: 0\\nFeatures\\t: fp asimd\\nCPU implementer\\t: 0x41\\n")
    'aarch64'
    """
    head = text[:8192]
    if re.search(r"^vendor_id\s*: IBM/S390", head, re.MULTILINE):
        return "s390x"
    if re.search(r"^CPU implementer\s*:", head, re.MULTILINE):
        return "aarch64"
    if re.search(r"^isa\s*: rv(32|64)", head, re.MULTILINE):
        return "riscv64" if "rv64" in head else "riscv32"
    if re.search(r"^cpu\s*: POWER|^cpu\s*: PPC|^revision\s*: .*\(pvr", head, re.MULTILINE):
        return "ppc64le"
    if re.search(r"^vendor_id\s*:", head, re.MULTILINE) or re.search(r"^flags\s*:", head, re.MULTILINE):
        return "x86_64" if re.search(r"^flags\s*:.* lm( |$)", head, re.MULTILINE) else "i686"
    raise ParseError("cannot tell the architecture from /proc/cpuinfo")


def parse_cpuinfo(text: str) -> CpuInfo:
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
    arch = detect_arch(text)
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


def _parse_x86(text: str) -> list[CpuEntry]:
    """x86 fast path: a block's identity is everything but the per-CPU lines, which sit
    between the first line (processor) and ``flags``; ``cpu MHz`` starts them."""
    parsed: dict[str, tuple[CpuKind, str, str]] = {}
    cpus = []
    for raw in text.split("\n\n"):
        block = raw.strip("\n")
        if not block.startswith("processor"):
            continue
        first = block.find("\n")
        mhz = block.find("\ncpu MHz")
        flags_at = block.find("\nflags")
        if first < 0 or mhz < 0 or flags_at < mhz:
            return _parse_blocks(text, "x86_64")  # an unusual layout: take the general path
        signature = block[first:mhz] + block[flags_at:]
        identity = parsed.get(signature)
        if identity is None:
            identity = parsed[signature] = _identity(_fields(block), "x86_64")
        number = block[block.find(":") + 1 : first].strip()
        if not number.isdigit():
            raise ParseError(f"bad processor number {number[:20]!r}")
        cpus.append(CpuEntry(int(number), *identity, _int_field(block, "physical id"), _int_field(block, "core id")))
    return cpus


def _int_field(block: str, key: str) -> int | None:
    at = block.find("\n" + key)
    if at < 0:
        return None
    end = block.find("\n", at + 1)
    value = block[block.find(":", at) + 1 : end if end >= 0 else None].strip()
    return int(value) if value.isdigit() else None


def _parse_blocks(text: str, arch: str) -> list[CpuEntry]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for key, value in _KEYS.findall("\n" + text):
        if key == "processor":
            current = {"processor": value}
            records.append(current)
        elif records and key not in current:
            current[key] = value
    parsed: dict[tuple[tuple[str, str], ...], tuple[CpuKind, str, str]] = {}
    cpus = []
    for record in records:
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
    if arch == "aarch64":
        return arm_kind(fields), fields.get("Features", ""), ""
    if arch == "ppc64le":
        cpu = fields.get("cpu", "")
        revision = fields.get("revision", "")
        pvr = re.search(r"pvr ([0-9a-f]{4}) ([0-9a-f]{4})", revision)
        return (
            CpuKind(
                vendor="IBM",
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
        return (
            CpuKind(
                vendor=fields.get("mvendorid", ""),
                model_name=fields.get("uarch", ""),
                family=isa.split("_")[0],
                model=fields.get("marchid", ""),
                stepping=fields.get("mimpid", ""),
            ),
            "",
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
