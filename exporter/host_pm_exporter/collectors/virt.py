"""The ``virt`` collector: hardware virtualization, /dev/kvm, nested KVM, IOMMU, hypervisor."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, Gauge, Info, one_info
from host_pm_exporter.readers.virt import VirtFacts, read_virt


def families(facts: VirtFacts) -> Iterator[Family]:
    if facts.extensions_known:
        yield Gauge(
            "host_virt_hardware_supported",
            "Whether the CPU offers hardware virtualization (vmx, svm or sie among its flags).",
            value=float(bool(facts.extensions)),
        )
    if facts.extensions:
        ext = Info("host_virt_extension", "A hardware virtualization extension.", labels=["extension"])
        for name in sorted(facts.extensions):
            ext.add_metric([name], {})
        yield ext
    yield Gauge(
        "host_virt_kvm_device_present",
        "Whether /dev/kvm exists (under --path.rootfs).",
        value=float(facts.kvm_device),
    )
    if facts.nested:
        nested = Gauge("host_virt_kvm_nested", "Whether the loaded KVM module allows nested guests.", labels=["module"])
        for module, enabled in sorted(facts.nested.items()):
            nested.add_metric([module], float(enabled))
        yield nested
    yield Gauge(
        "host_virt_iommu_groups",
        "IOMMU groups (0: no IOMMU in use, no device passthrough).",
        value=facts.iommu_groups,
    )
    yield Gauge(
        "host_virt_guest",
        "Whether this host itself runs under a hypervisor.",
        value=float(facts.hypervisor is not None),
    )
    if facts.hypervisor is not None:
        yield one_info("host_virt_hypervisor", "The hypervisor this host runs under.", {"hypervisor": facts.hypervisor})


COLLECTOR = Collector(
    "virt",
    "hardware virtualization, /dev/kvm, nested KVM, IOMMU groups, hypervisor",
    gather=lambda facts: read_virt(facts.fs, facts.cpuinfo_or_none()),
    families=families,
    metrics=(
        "host_virt_hardware_supported",
        "host_virt_extension_info",
        "host_virt_kvm_device_present",
        "host_virt_kvm_nested",
        "host_virt_iommu_groups",
        "host_virt_guest",
        "host_virt_hypervisor_info",
    ),
)
