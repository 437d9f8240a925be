"""Virtualization: hardware support, /dev/kvm, nested KVM, IOMMU groups, and whether
this host itself is a guest (and of which hypervisor)."""

from __future__ import annotations

from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.readers import read_parsed
from host_pm_exporter.readers.cpuinfo import CpuInfo

# CPU flags that mean hardware virtualization, per architecture.
EXTENSIONS = ("vmx", "svm", "sie")
KVM_MODULES = ("kvm_intel", "kvm_amd", "kvm_hv", "kvm")

# DMI vendor/product strings -> hypervisor, first match wins (after systemd's
# detect-virt table).  Matched as prefixes of sys_vendor, product_name, board_vendor
# and bios_vendor.
DMI_HYPERVISORS = (
    ("KVM", "kvm"),
    ("OpenStack", "kvm"),
    ("KubeVirt", "kvm"),
    ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"),
    ("VMware", "vmware"),
    ("VMW", "vmware"),
    ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"),
    ("Oracle Corporation", "oracle"),
    ("Xen", "xen"),
    ("Bochs", "bochs"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
    ("Hyper-V", "microsoft"),
    ("Apple Virtualization", "apple"),
    ("Google Compute Engine", "google"),
)
_DMI_FILES = ("product_name", "sys_vendor", "board_vendor", "bios_vendor")


@dataclass(frozen=True)
class VirtFacts:
    extensions: frozenset[str]  # vmx / svm / sie found in the CPU flags
    extensions_known: bool  # the architecture lists such flags (x86, s390x)
    kvm_device: bool
    nested: dict[str, bool]  # loaded kvm module -> nested enabled
    iommu_groups: int
    hypervisor: str | None  # this host runs under: kvm, vmware, ...; None on bare metal


def parse_bool_param(text: str) -> bool:
    """A module parameter: ``Y``/``N`` or ``1``/``0``.

    >>> parse_bool_param("Y\\n"), parse_bool_param("0\\n")
    (True, False)
    """
    return text.strip() in ("Y", "y", "1")


def read_virt(fs: HostFS, cpuinfo: CpuInfo | None) -> VirtFacts:
    flags = cpuinfo.flags() if cpuinfo is not None else frozenset()
    nested = {}
    for module in KVM_MODULES:
        value = read_parsed(fs, fs.sys("module", module, "parameters", "nested"), parse_bool_param)
        if value is not None:
            nested[module] = value
    groups = fs.listdir(fs.sys("kernel", "iommu_groups")) or []
    return VirtFacts(
        extensions=frozenset(flags & set(EXTENSIONS)),
        extensions_known=cpuinfo is not None and cpuinfo.arch in ("x86_64", "i686", "s390x"),
        kvm_device=fs.exists(fs.root("dev", "kvm")),
        nested=nested,
        iommu_groups=len(groups),
        hypervisor=detect_hypervisor(fs, cpuinfo),
    )


def detect_hypervisor(fs: HostFS, cpuinfo: CpuInfo | None) -> str | None:
    """Which hypervisor this host runs under, as systemd-detect-virt finds it: the device
    tree on POWER and ARM (PowerVM, KVM), /proc/sysinfo on s390 (z/VM, KVM; an LPAR on
    PR/SM is not a guest), DMI, /sys/hypervisor; with the CPU's hypervisor flag but no
    name, the paravirtual clock (kvm-clock under KVM, also where DMI says only QEMU);
    "other" failing all that."""
    for platform in (_device_tree_hypervisor, _sysinfo_hypervisor):
        found = platform(fs)
        if found is not None:
            return found or None
    xen = fs.read(fs.sys("hypervisor", "type"))
    if xen is not None and xen.strip() == "xen":
        return "xen"
    found = _dmi_hypervisor(fs)
    guest = cpuinfo is not None and cpuinfo.hypervisor_flag
    if guest and found in (None, "qemu"):
        clocks = fs.read(fs.sys("devices", "system", "clocksource", "clocksource0", "available_clocksource"))
        for clock, hypervisor in (("kvm-clock", "kvm"), ("hyperv_clocksource", "microsoft"), ("xen", "xen")):
            if clocks is not None and clock in clocks.split():
                return hypervisor
    if found is None and guest:
        return "other"
    return found


def _device_tree_hypervisor(fs: HostFS) -> str | None:
    """POWER and ARM guests: the device tree's hypervisor node names KVM, Xen or
    VMware; a PowerVM partition has ibm,partition-name and hmc-managed? (and not the
    qemu,graphic-width a KVM pseries guest also has).  ``None``: the tree says nothing."""
    raw = fs.read_bytes(fs.proc("device-tree", "hypervisor", "compatible"))
    if raw is not None:  # NUL-separated strings
        compatible = raw.decode(errors="replace")
        for needle, hypervisor in (("linux,kvm", "kvm"), ("xen", "xen"), ("vmware", "vmware")):
            if needle in compatible:
                return hypervisor
    if (
        fs.exists(fs.proc("device-tree", "ibm,partition-name"))
        and fs.exists(fs.proc("device-tree", "hmc-managed?"))
        and not fs.exists(fs.proc("device-tree", "chosen", "qemu,graphic-width"))
    ):
        return "powervm"
    return None


def _sysinfo_hypervisor(fs: HostFS) -> str | None:
    """s390: /proc/sysinfo has a "VM00 Control Program" line under z/VM ("z/VM 7.1.0")
    and KVM ("KVM/Linux"); an LPAR has none: "" (bare metal, as systemd says)."""
    text = fs.read(fs.proc("sysinfo"))
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("VM00 Control Program:"):
            return "zvm" if "z/VM" in line else "kvm"
    return ""


def _dmi_hypervisor(fs: HostFS) -> str | None:
    """systemd-detect-virt's DMI check: each file's value against the prefix table."""
    values = {}
    with fs.directory(fs.sys("class", "dmi", "id")) as dmi:  # absent: no file is tried
        for name in _DMI_FILES:
            try:
                text = dmi.read(name)
            except ReadError:
                continue
            if text is not None:
                values[name] = text.strip()
    for name in _DMI_FILES:
        value = values.get(name)
        if value is None:
            continue
        for prefix, hypervisor in DMI_HYPERVISORS:
            if value.startswith(prefix):
                return hypervisor
        if (
            name == "product_name"
            and value == "Virtual Machine"
            and values.get("sys_vendor") == "Microsoft Corporation"
        ):
            return "microsoft"
    return None
