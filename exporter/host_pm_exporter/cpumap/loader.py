"""Reading libvirt's CPU map (``cpu_map/index.xml`` and the files it includes).

What is kept is what libvirt's CPU drivers use to name a host CPU:

- x86: vendors (name, CPUID vendor string), features (name, the CPUID leaf/register
  bits or IA32 MSR bits that enumerate it, in the map's order, which is the order
  libvirt prints features in), models (name, ``<decode host= guest=>``, vendor,
  family/model/stepping signatures, feature bits; a ``<model name=>`` ancestor is
  copied first; a feature marked ``removed='yes'`` is not part of the model);
- arm: vendors (name, MIDR implementer id), models (name, MIDR part number, vendor);
- ppc64: models (name, PVR value and mask, vendor).

Where a map comes from: `load_map` takes the host's directory when it holds a readable,
well-formed map, else the copy packed with this package (`PACKED`); the map says
which (`CpuMap.source`).  A map is read once per process per directory state (the
files' names, sizes and mtimes): it is data shipped with libvirt, not host state.
"""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from host_pm_exporter.cpumap import xmltext

PACKED = Path(__file__).parent / "data" / "cpu_map"
HOST_MAP = ("usr", "share", "libvirt", "cpu_map")

# A bit of CPU data: ("cpuid", leaf, subleaf, register, bit) or ("msr", index, 0,
# register, bit); register is one of eax/ebx/ecx/edx.
Bit = tuple[str, int, int, str, int]
Bits = frozenset[Bit]

_REGS = ("eax", "ebx", "ecx", "edx")
_MAX_FILE = 1 << 20
_MAX_FILES = 400


class MapError(Exception):
    """A CPU map that cannot be read or is not what libvirt writes."""


@dataclass(frozen=True)
class X86Feature:
    name: str
    bits: Bits


@dataclass(frozen=True)
class Signature:
    family: int
    model: int
    steppings: frozenset[int] | None  # None: any stepping

    def matches(self, family: int, model: int, stepping: int) -> bool:
        return self.family == family and self.model == model and (self.steppings is None or stepping in self.steppings)


@dataclass(frozen=True)
class X86Model:
    name: str
    decode_host: bool
    decode_guest: bool
    vendor: str | None
    signatures: tuple[Signature, ...]
    bits: Bits
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PvrModel:
    name: str
    vendor: str | None
    pvrs: tuple[tuple[int, int], ...]  # (value, mask)


@dataclass
class CpuMap:
    """One CPU map: where it was read from, and what libvirt's drivers use of it."""

    source: str
    x86_vendors: dict[str, str] = field(default_factory=dict)  # name -> CPUID vendor string
    x86_features: list[X86Feature] = field(default_factory=list)
    x86_models: list[X86Model] = field(default_factory=list)
    arm_vendors: dict[int, str] = field(default_factory=dict)  # MIDR implementer -> name
    arm_models: list[PvrModel] = field(default_factory=list)
    ppc64_models: list[PvrModel] = field(default_factory=list)

    feature_index: dict[str, X86Feature] = field(default_factory=dict)

    def feature(self, name: str) -> X86Feature | None:
        return self.feature_index.get(name)

    def model(self, name: str) -> X86Model | None:
        for model in self.x86_models:
            if model.name == name:
                return model
        return None


_CACHE: dict[tuple[str, tuple[tuple[str, int, int], ...]], CpuMap] = {}


def load_map(host_dir: str | None = None) -> CpuMap:
    """The host's map at `host_dir` when it is a readable map, else the packed one.

    >>> load_map("/nonexistent").source.endswith("data/cpu_map")
    True
    """
    if host_dir is not None:
        try:
            return _load_cached(Path(host_dir))
        except (OSError, MapError, ValueError):
            pass
    return _load_cached(PACKED)


def _load_cached(directory: Path) -> CpuMap:
    state = _state(directory)
    key = (str(directory), state)
    found = _CACHE.get(key)
    if found is None:
        found = read_map(directory)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = found
    return found


def _state(directory: Path) -> tuple[tuple[str, int, int], ...]:
    with os.scandir(directory) as entries:
        files = sorted(
            (e.name, st.st_size, st.st_mtime_ns)
            for e in entries
            if e.name.endswith(".xml") and (st := e.stat()) is not None
        )
    if not any(name == "index.xml" for name, _s, _m in files):
        raise MapError(f"{directory}: no index.xml")
    if len(files) > _MAX_FILES:
        raise MapError(f"{directory}: more than {_MAX_FILES} files")
    return tuple(files)


def read_map(directory: Path) -> CpuMap:
    """Parse the map in `directory` (index.xml and every file it includes)."""
    index = _parse(directory / "index.xml")
    cpu_map = CpuMap(source=str(directory))
    for arch in index.findall("arch"):
        name = arch.get("name")
        for include in arch.findall("include"):
            filename = include.get("filename", "")
            if not filename or "/" in filename or filename.startswith("."):
                raise MapError(f"bad include {filename!r}")
            root = _parse(directory / filename)
            if name == "x86":
                _x86(cpu_map, root)
            elif name == "arm":
                _arm(cpu_map, root)
            elif name == "ppc64":
                _ppc64(cpu_map, root)
    if not cpu_map.x86_features or not cpu_map.x86_models:
        raise MapError(f"{directory}: no x86 features or models")
    return cpu_map


def _parse(path: Path) -> ET.Element:
    """One map file, bounded: opened without blocking (a FIFO or a device in its place
    is refused at once, never waited on) and read only if it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MapError(f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(_MAX_FILE + 1)
    finally:
        os.close(fd)
    return xmltext.parse(data, _MAX_FILE, str(path))


def _int(text: str | None) -> int:
    if text is None:
        return 0
    return int(text, 0)


def bits_of(element: ET.Element) -> Bits:
    """The bits a feature's ``<cpuid>`` and ``<msr>`` children set."""
    out: set[Bit] = set()
    for child in element:
        if child.tag == "cpuid":
            leaf, sub = _int(child.get("eax_in")), _int(child.get("ecx_in"))
            for reg in _REGS:
                value = _int(child.get(reg))
                out.update(("cpuid", leaf, sub, reg, b) for b in range(32) if value >> b & 1)
        elif child.tag == "msr":
            index = _int(child.get("index"))
            for reg in ("eax", "edx"):
                value = _int(child.get(reg))
                out.update(("msr", index, 0, reg, b) for b in range(32) if value >> b & 1)
    return frozenset(out)


def _x86(cpu_map: CpuMap, root: ET.Element) -> None:
    for element in root:
        name = element.get("name", "")
        if element.tag == "vendor":
            cpu_map.x86_vendors[name] = element.get("string", "")
        elif element.tag == "feature":
            if cpu_map.feature(name) is not None:
                raise MapError(f"feature {name} defined twice")
            feature = X86Feature(name, bits_of(element))
            cpu_map.x86_features.append(feature)
            cpu_map.feature_index[name] = feature
        elif element.tag == "model":
            cpu_map.x86_models.append(_x86_model(cpu_map, element))


def _x86_model(cpu_map: CpuMap, element: ET.Element) -> X86Model:
    name = element.get("name", "")
    decode = element.find("decode")
    decode_host = decode_guest = True
    if decode is not None:
        decode_host = decode.get("host") == "on"
        decode_guest = decode.get("guest") == "on"
    vendor: str | None = None
    signatures: tuple[Signature, ...] = ()
    bits: set[Bit] = set()
    ancestor = element.find("model")
    if ancestor is not None:
        parent = cpu_map.model(ancestor.get("name", ""))
        if parent is None:
            raise MapError(f"model {name}: unknown ancestor")
        vendor, signatures, bits = parent.vendor, parent.signatures, set(parent.bits)
    found = [_signature(s) for s in element.findall("signature")]
    if found:
        signatures = tuple(found)
    vendor_element = element.find("vendor")
    if vendor_element is not None:
        vendor = vendor_element.get("name")
        if vendor not in cpu_map.x86_vendors:
            raise MapError(f"model {name}: unknown vendor")
    removed = []
    for feature in element.findall("feature"):
        fname = feature.get("name", "")
        known = cpu_map.feature(fname)
        if known is None:
            raise MapError(f"model {name}: unknown feature {fname}")
        if feature.get("removed") == "yes":
            removed.append(fname)
            continue
        bits |= known.bits
    return X86Model(name, decode_host, decode_guest, vendor, signatures, frozenset(bits), tuple(removed))


def _signature(element: ET.Element) -> Signature:
    steppings: set[int] | None = None
    text = element.get("stepping")
    if text:
        steppings = set()
        for part in text.split(","):
            low, _, high = part.partition("-")
            steppings.update(range(int(low), int(high or low) + 1))
    return Signature(
        _int(element.get("family")), _int(element.get("model")), None if steppings is None else frozenset(steppings)
    )


def _arm(cpu_map: CpuMap, root: ET.Element) -> None:
    for element in root:
        if element.tag == "vendor":
            cpu_map.arm_vendors[_int(element.get("value"))] = element.get("name", "")
        elif element.tag == "model":
            vendor = element.find("vendor")
            pvr = element.find("pvr")
            if pvr is not None:
                cpu_map.arm_models.append(
                    PvrModel(
                        element.get("name", ""),
                        vendor.get("name") if vendor is not None else None,
                        ((_int(pvr.get("value")), 0xFFF),),
                    )
                )


def _ppc64(cpu_map: CpuMap, root: ET.Element) -> None:
    for element in root:
        if element.tag == "model":
            vendor = element.find("vendor")
            pvrs = tuple((_int(p.get("value")), _int(p.get("mask"))) for p in element.findall("pvr"))
            cpu_map.ppc64_models.append(
                PvrModel(element.get("name", ""), vendor.get("name") if vendor is not None else None, pvrs)
            )
