"""ARM CPU identity (arm64 and 32-bit ARM): MIDR implementer and part numbers to names.

arm64 /proc/cpuinfo has no model name, only ``CPU implementer``, ``CPU part``,
``CPU variant`` and ``CPU revision``.  The common server and client parts are named
here; anything else keeps its raw ids.
"""

from __future__ import annotations

from host_pm_exporter.readers.cpukind import CpuKind

IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x56: "Marvell",
    0x51: "Qualcomm",
    0x61: "Apple",
    0x6D: "Microsoft",
    0xC0: "Ampere",
}

PARTS = {
    0x41: {
        0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
        0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
        0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD0E: "Cortex-A76AE", 0xD40: "Neoverse-V1",
        0xD41: "Cortex-A78", 0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710",
        0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4A: "Neoverse-E1", 0xD4B: "Cortex-A78C",
        0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520",
        0xD81: "Cortex-A720", 0xD82: "Cortex-X4", 0xD83: "Neoverse-V3AE", 0xD84: "Neoverse-V3",
        0xD8E: "Neoverse-N3",
        # 32-bit cores (ARMv6, ARMv7; the Cortex-A32 of ARMv8-A runs AArch32 only)
        0xB02: "ARM11-MPCore", 0xB36: "ARM1136", 0xB56: "ARM1156", 0xB76: "ARM1176", 0xC05: "Cortex-A5",
        0xC07: "Cortex-A7", 0xC08: "Cortex-A8", 0xC09: "Cortex-A9", 0xC0D: "Cortex-A12", 0xC0E: "Cortex-A17",
        0xC0F: "Cortex-A15", 0xC14: "Cortex-R4", 0xC15: "Cortex-R5", 0xC17: "Cortex-R7", 0xC18: "Cortex-R8",
        0xD01: "Cortex-A32",
    },
    0x42: {0x516: "ThunderX2 (Vulcan)"},
    0x43: {0x0A1: "ThunderX", 0x0AF: "ThunderX2", 0x0B8: "ThunderX3"},
    0x46: {0x001: "A64FX", 0x003: "MONAKA"},
    0x48: {0xD01: "Kunpeng-920", 0xD02: "Kunpeng-930"},
    0x4E: {0x004: "Carmel"},
    0x50: {0x000: "X-Gene"},
    0x51: {0x00F: "Scorpion", 0x02D: "Scorpion", 0x04D: "Krait", 0x06F: "Krait", 0x800: "Kryo-2XX-Gold",
           0x801: "Kryo-2XX-Silver", 0xC00: "Falkor", 0x001: "Oryon"},
    0x56: {0x131: "Feroceon-88FR131", 0x581: "PJ4", 0x584: "PJ4B-MP"},
    0x61: {0x022: "Icestorm (M1)", 0x023: "Firestorm (M1)", 0x032: "Blizzard (M2)", 0x033: "Avalanche (M2)"},
    0xC0: {0xAC3: "AmpereOne", 0xAC4: "AmpereOne-AC04", 0xAC5: "AmpereOne-AC05"},
}  # fmt: skip


def arm_kind(fields: dict[str, str]) -> CpuKind:
    """The kind of an arm64 CPU from its cpuinfo fields.

    >>> arm_kind({"CPU implementer": "0x41", "CPU architecture": "8", "CPU variant": "0x3",
    ...           "CPU part": "0xd0c", "CPU revision": "1"})  # doctest: +NORMALIZE_WHITESPACE
    CpuKind(vendor='ARM', model_name='Neoverse-N1', family='8', model='0xd0c',
            stepping='r3p1', microcode='')
    """
    implementer_raw = fields.get("CPU implementer", "")
    part_raw = fields.get("CPU part", "")
    try:
        implementer = int(implementer_raw, 16)
        part = int(part_raw, 16)
    except ValueError:
        implementer = part = -1
    vendor = IMPLEMENTERS.get(implementer, implementer_raw)
    name = PARTS.get(implementer, {}).get(part) or fields.get("model name") or fields.get("Processor", "")
    variant, revision = fields.get("CPU variant", ""), fields.get("CPU revision", "")
    stepping = ""
    if variant.startswith("0x") and revision.isdigit():
        stepping = f"r{int(variant, 16)}p{revision}"
    return CpuKind(
        vendor=vendor,
        model_name=name,
        family=fields.get("CPU architecture", ""),
        model=part_raw,
        stepping=stepping,
    )
