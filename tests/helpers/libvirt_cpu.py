"""Comparing a host <cpu> with libvirt's, knowing what /proc/cpuinfo cannot show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from host_pm_exporter.cpumap import linux_x86, x86
from host_pm_exporter.cpumap.loader import Bits, CpuMap


def cpuinfo_flags(bits: Bits, vendor_id: str) -> set[str]:
    """The flags Linux prints for a CPU with these CPUID bits (the inverse of the table)."""
    flags = {flag for flag, bit in linux_x86.LINUX_FLAGS.items() if bit in bits}
    flags |= {flag for flag, bit in linux_x86.SPECULATION.get(vendor_id, {}).items() if bit in bits}
    if linux_x86.IMPLIED["xsave"][0] not in bits:
        flags.discard("xsave")
    return flags


def explain_difference(ours: ET.Element, theirs: ET.Element, cpu_map: CpuMap, vendor_id: str) -> list[str]:
    """Why our host <cpu> differs from virsh's, per what cpuinfo cannot show; the
    differences left unexplained (empty when everything is explained)."""

    def expanded(cpu: ET.Element) -> set[str]:
        names = [f.get("name", "") for f in cpu.findall("feature")]
        return set(x86.features_in(x86.model_bits(cpu.findtext("model") or "", names, cpu_map), cpu_map))

    problems = []
    excused = set(linux_x86.cpuid_only(vendor_id))
    mine, virsh = expanded(ours), expanded(theirs)
    if mine - virsh:
        problems.append(f"ours claims what virsh does not see: {sorted(mine - virsh)}")
    unknowable = virsh - mine
    if unknowable - excused:
        problems.append(f"virsh has features cpuinfo shows but ours lacks: {sorted(unknowable - excused)}")
    their_model = theirs.findtext("model")
    if ours.findtext("model") != their_model:
        back = x86.model_bits(
            ours.findtext("model") or "", [f.get("name", "") for f in ours.findall("feature")], cpu_map
        )
        back |= frozenset(b for name in unknowable for b in cpu_map.feature_index[name].bits)
        sig = theirs.find("signature")
        signature = (
            (int(sig.get("family", "0")), int(sig.get("model", "0")), int(sig.get("stepping", "0")))
            if sig is not None
            else None
        )
        decoded = x86.decode_host(back, cpu_map, theirs.findtext("vendor"), signature)
        if decoded is None or decoded.model != their_model:
            problems.append(f"model {ours.findtext('model')} != {their_model}, not explained by {sorted(unknowable)}")
    listed_theirs = [f.get("name") for f in theirs.findall("feature") if f.get("name") not in excused]
    if ours.findtext("model") == their_model and [f.get("name") for f in ours.findall("feature")] != listed_theirs:
        problems.append("the features beside the model differ from virsh's (CPUID-only ones aside)")
    return problems
