"""The host's capabilities as libvirt writes them (``virsh capabilities``, the
``<host>`` part; see libvirt's docs/formatcaps.rst), built from one scrape's facts.

Every fact comes from the reading's sections: the collectors' facts, and the
per-CPU ids, cache banks, page sizes and CPU model decode inputs (libvirt's CPU map,
the CPUID leaves) that `HOST_DETAILS` gathers in the same reading (under the same
deadline); here the CPU is only decoded.  A section that is missing (collector disabled)
or failed leaves its part of the XML out, as a failed collector leaves out its
metrics.  The text is shaped as libvirt prints it: no XML declaration, two-space
indents, single-quoted attributes, a blank line around ``<host>``.

As libvirt, and where it differs on purpose:

- The host ``<cpu>``'s ``<model>``, ``<vendor>`` and ``<feature>`` list are named as
  libvirt names them, from libvirt's CPU map (the host's ``/usr/share/libvirt/cpu_map``
  when present, else the copy packed in ``cpumap/data``) by libvirt's own rules
  (`host_pm_exporter.cpumap`): on x86 the model libvirt's decoder picks and the features
  beyond it, in libvirt's spelling (``sse4.2``, ``pclmuldq``, ``tsc-deadline`` ...).  The
  x86 input is the CPUID bits /proc/cpuinfo's flags show; features only CPUID or an MSR
  shows (``cpumap.linux_x86.CPUID_ONLY``) are missing unless ``/dev/cpu/N/cpuid`` is read
  (``--capabilities.cpuid``).
- libvirt 9.0's own schema (cputypes.rng, "hostcpu") allows host CPU feature names of
  ``[a-zA-Z0-9\\-_]+`` only, while libvirt itself prints ``sse4.1`` and ``sse4.2``
  there when they are beyond the model: like ``virsh capabilities``, ours then fails
  ``xmllint --relaxng capability.rng`` on exactly those names, and on nothing else.
- The host CPU ``<topology>`` carries no ``clusters`` and the cells' CPUs no
  ``cluster_id``: libvirt 9.0's schema has neither (newer libvirt adds them).
- ``<counter>`` (TSC frequency, from KVM), ``<maxphysaddr>``,
  ``<migration_features>``, ``<secmodel>`` and ``<guest>`` describe a hypervisor
  driver and its configuration, not the host: left out.
- ``<power_management>`` follows this exporter's decision table, not
  pm-is-supported: ``suspend_mem`` only with real S3 (never on an s2idle-only
  host, where libvirt says yes), ``suspend_disk`` and ``suspend_hybrid`` only
  when hibernation is ready, not merely configured in the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.collectors.cache import COLLECTOR as CACHE
from host_pm_exporter.collectors.cpu import COLLECTOR as CPU
from host_pm_exporter.collectors.identity import COLLECTOR as IDENTITY
from host_pm_exporter.collectors.numa import COLLECTOR as NUMA
from host_pm_exporter.collectors.power import COLLECTOR as POWER
from host_pm_exporter.collectors.readiness import COLLECTOR as READINESS
from host_pm_exporter.collectors.topology import COLLECTOR as TOPOLOGY
from host_pm_exporter.collectors.virt import COLLECTOR as VIRT
from host_pm_exporter.cpumap.cpuid import Leaves
from host_pm_exporter.cpumap.host import arm_host, ppc64_host, x86_host
from host_pm_exporter.cpumap.loader import CpuMap
from host_pm_exporter.facts import HOST_DETAILS, HostDetails, HostSnapshot, first_cpu
from host_pm_exporter.readers.armparts import IMPLEMENTERS
from host_pm_exporter.readers.cpuinfo import CpuEntry, CpuInfo
from host_pm_exporter.readers.cpus import CacheBank, CpuIds
from host_pm_exporter.readers.numa import NumaNode
from host_pm_exporter.sleep import supported_states
from host_pm_exporter.views import libvirt_features as lv

_CACHE_TYPES = {"Unified": "both", "Data": "data", "Instruction": "code"}
_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
T = TypeVar("T")


def capabilities_xml(snapshot: HostSnapshot) -> bytes:
    """``<capabilities><host>...</host></capabilities>`` in UTF-8, without an XML
    declaration (libvirt prints none), of a reading that took `HOST_DETAILS`."""
    facts = _Facts(snapshot)
    out = _Writer()
    out.open("capabilities")
    out.blank()
    out.open("host")
    uuid = facts.data(IDENTITY)
    if uuid is not None:
        out.leaf("uuid", text=uuid.uuid)
    _cpu(out, facts)
    _power(out, facts)
    virt_facts = facts.data(VIRT)
    if virt_facts is not None:
        out.leaf("iommu", support="yes" if virt_facts.iommu_groups > 0 else "no")
    _cells(out, facts)
    _cache(out, facts)
    out.close("host")
    out.blank()
    out.close("capabilities")
    return out.text().encode()


class _Facts:
    """The reading's sections: the collectors' facts and the host details."""

    def __init__(self, snapshot: HostSnapshot) -> None:
        self.snapshot = snapshot
        section = snapshot.sections.get(HOST_DETAILS.name)
        self.details: HostDetails | None = section.data if section is not None and section.ok else None

    def data(self, collector: Collector[T]) -> T | None:
        return collector.of(self.snapshot)

    def _info(self) -> CpuInfo | None:
        return self.details.cpuinfo if self.details is not None else None

    def cpuinfo(self) -> CpuInfo | None:
        return self._info() if self.data(CPU) is not None else None

    def arch(self) -> str:
        """libvirt's name of the architecture: cpuinfo's, else the running kernel's,
        else this process's (the exporter runs on the host it describes)."""
        cpu_facts = self.data(CPU)
        info = self._info()
        arch = (cpu_facts.arch if cpu_facts is not None else "") or (info.arch if info is not None else "")
        arch = arch or (self.details.machine if self.details is not None else None) or os.uname().machine
        return lv.ARCH_NAMES.get(arch, arch)

    def base_page_kib(self) -> int:
        """The system page size in KiB (see `readers.cpus.base_page_kib`)."""
        arch = self.arch()
        known = self.details.base_page_kib if self.details is not None else {}
        return next((kib for name, kib in known.items() if lv.ARCH_NAMES.get(name, name) == arch), 4)

    def hugepage_sizes(self) -> list[int]:
        return self.details.hugepage_sizes if self.details is not None else []

    def cpu_map(self) -> CpuMap | None:
        """libvirt's CPU map the reading took (the host's, else the packed copy)."""
        return self.details.cpu_map if self.details is not None else None

    def cpuid(self, cpu: int) -> Leaves | None:
        """The CPUID leaves the reading took of `cpu` (--capabilities.cpuid), if any."""
        return self.details.cpuid.get(cpu) if self.details is not None else None

    def cache_banks(self) -> list[CacheBank] | None:
        return self.details.cache_banks if self.details is not None else None

    def online(self) -> frozenset[int]:
        counted = self.data(TOPOLOGY)
        return counted[0].online if counted is not None else frozenset()

    def present(self) -> frozenset[int]:
        counted = self.data(TOPOLOGY)
        return counted[0].present if counted is not None else frozenset()

    def cpu_ids(self) -> list[CpuIds] | None:
        """Every online CPU's ids; ``None`` without topology facts or when they
        cannot be read."""
        if not self.online() or self.details is None:
            return None
        return self.details.cpu_ids

    def nodes(self) -> list[NumaNode]:
        """The NUMA nodes; one node of every CPU where the kernel has none (libvirt
        then fakes one cell too)."""
        nodes = self.data(NUMA)
        if nodes:
            return list(nodes)
        online = self.online()
        return [NumaNode(0, online, None)] if online else []


def _cpu(out: _Writer, facts: _Facts) -> None:
    arch = facts.arch()
    out.open("cpu")
    out.leaf("arch", text=arch)
    info = facts.cpuinfo()
    features: tuple[str, ...] = ()
    if info is not None and info.cpus:
        features = _cpu_identity(out, arch, first_cpu(info, facts.online()), facts)
    counts = _cpu_topology(facts, arch)
    if counts is not None:
        sockets, cores, threads = counts
        out.leaf("topology", sockets=str(sockets), dies="1", cores=str(cores), threads=str(threads))
    for name in features:
        out.leaf("feature", name=name)
    base = facts.base_page_kib()
    sizes = set(facts.hugepage_sizes())
    sizes |= {size // 1024 for node in facts.nodes() for size in node.hugepages}
    for size in [base, *sorted(sizes - {base})]:
        out.leaf("pages", unit="KiB", size=str(size))
    out.close("cpu")


def _cpu_identity(out: _Writer, arch: str, entry: CpuEntry, facts: _Facts) -> tuple[str, ...]:
    """Model, vendor, microcode and signature as libvirt names them from its CPU map;
    the feature names to list beside the model."""
    kind = entry.kind
    flags = entry.flags.split()
    cpu_map = facts.cpu_map()
    if cpu_map is None:
        return ()
    if arch in ("x86_64", "i686"):
        family, model, stepping = _int(kind.family), _int(kind.model), _int(kind.stepping)
        signature = (family, model, stepping) if family and model is not None and stepping is not None else None
        host = x86_host(flags, kind.vendor, signature, cpu_map, facts.cpuid(entry.cpu))
        if host.model:
            out.leaf("model", text=host.model)
        if host.vendor:
            out.leaf("vendor", text=host.vendor)
        microcode = _int(kind.microcode, 16)
        if microcode:
            out.leaf("microcode", version=str(microcode))
        if host.model and host.signature is not None:
            fam, mod, step = host.signature
            out.leaf("signature", family=str(fam), model=str(mod), stepping=str(step))
        return host.features
    if arch == "aarch64" or arch.startswith("arm"):
        host = arm_host(_arm_implementer(kind.vendor), _int(kind.model, 16), flags, cpu_map)
    elif arch.startswith("ppc64"):
        host = ppc64_host(_int(kind.model, 16), cpu_map)
    else:
        return ()
    if host.model:
        out.leaf("model", text=host.model)
    if host.vendor:
        out.leaf("vendor", text=host.vendor)
    return host.features


def _arm_implementer(vendor: str) -> int | None:
    """The MIDR implementer id behind cpuinfo's vendor (a name we know, or its hex)."""
    for number, name in IMPLEMENTERS.items():
        if name == vendor:
            return number
    return _int(vendor, 16)


def _cpu_topology(facts: _Facts, arch: str) -> tuple[int, int, int] | None:
    """Sockets, cores and threads as libvirt counts them: the most sockets in a NUMA
    node, the most distinct core ids in a socket (s390: each CPU is a core), the
    most thread siblings of a CPU.  Where nodes x sockets x cores x threads is not
    the number of present CPUs, libvirt writes one socket of that many one-thread
    cores instead; so does this.  Dies are always 1 in libvirt's host CPU."""
    ids = facts.cpu_ids()
    nodes = facts.nodes()
    if not ids or not nodes:
        return None
    by_cpu = {i.cpu: i for i in ids}
    present = facts.present() or frozenset(by_cpu)
    sockets = cores = threads = 0
    online_count = offline = 0
    for node in nodes:
        members = sorted(node.cpus or ())
        node_ids = [by_cpu[c] for c in members if c in by_cpu]
        online_count += len(node_ids)
        offline += sum(1 for c in members if c not in by_cpu and c in present)
        per_socket: dict[int, set[int]] = {}
        for cpu in node_ids:
            core = cpu.cpu if arch.startswith("s390") else _id(cpu.core)
            per_socket.setdefault(_id(cpu.package), set()).add(core)
            threads = max(threads, len(cpu.siblings))
        sockets = max(sockets, len(per_socket))
        cores = max([cores, *(len(c) for c in per_socket.values())])
    total = online_count + offline
    if not online_count or not sockets or not threads:
        return None
    if len(nodes) * sockets * cores * threads != total:
        return 1, total, 1
    return sockets, cores, threads


def _power(out: _Writer, facts: _Facts) -> None:
    kernel = facts.data(POWER)
    ready = facts.data(READINESS)
    if kernel is not None:
        s3 = supported_states(kernel)["S3"]
    elif ready is not None:
        s3 = ready.ready["S3"]
    else:
        return
    targets = []
    if s3:
        targets.append("suspend_mem")
    if ready is not None:
        if ready.ready["S4"] is True:
            targets.append("suspend_disk")
        if ready.ready["hybrid"] is True:
            targets.append("suspend_hybrid")
    if not targets:
        out.leaf("power_management")
        return
    out.open("power_management")
    for target in targets:
        out.leaf(target)
    out.close("power_management")


def _cells(out: _Writer, facts: _Facts) -> None:
    nodes = facts.nodes()
    if not nodes:
        return
    by_cpu = {i.cpu: i for i in facts.cpu_ids() or ()}
    base = facts.base_page_kib()
    out.open("topology")
    out.open("cells", num=str(len(nodes)))
    for node in nodes:
        out.open("cell", id=str(node.node))
        if node.memory_bytes is not None:
            memory_kib = node.memory_bytes // 1024
            out.leaf("memory", text=str(memory_kib), unit="KiB")
            huge = sorted((size // 1024, total) for size, (total, _free) in node.hugepages.items())
            base_count = max(0, memory_kib - sum(size * total for size, total in huge)) // base
            out.leaf("pages", text=str(base_count), unit="KiB", size=str(base))
            for size, total in huge:
                out.leaf("pages", text=str(total), unit="KiB", size=str(size))
        if node.distances:
            out.open("distances")
            for peer, value in sorted(node.distances.items()):
                out.leaf("sibling", id=str(peer), value=str(value))
            out.close("distances")
        cpus = sorted(node.cpus or ())
        out.open("cpus", num=str(len(cpus)))
        for cpu in cpus:
            ids = by_cpu.get(cpu)
            if ids is None:
                out.leaf("cpu", id=str(cpu))
            else:
                out.leaf(
                    "cpu",
                    id=str(cpu),
                    socket_id=str(_id(ids.package)),
                    die_id=str(_id(ids.die)),
                    core_id=str(_id(ids.core)),
                    siblings=format_cpuset(ids.siblings),
                )
        out.close("cpus")
        out.close("cell")
    out.close("cells")
    out.close("topology")


def _cache(out: _Writer, facts: _Facts) -> None:
    if facts.data(CACHE) is None or not facts.online():
        return
    banks = facts.cache_banks()
    if banks is None:
        return
    banks = [b for b in banks if b.type in _CACHE_TYPES]
    if not banks:
        return
    out.open("cache")
    for bank in banks:
        size, unit = _pretty_size(bank.size_bytes)
        out.leaf(
            "bank",
            id=str(bank.id),
            level=str(bank.level),
            type=_CACHE_TYPES[bank.type],
            size=str(size),
            unit=unit,
            cpus=format_cpuset(bank.cpus),
        )
    out.close("cache")


def format_cpuset(cpus: Iterable[int]) -> str:
    """A CPU set as libvirt writes one: runs of two or more as ranges.

    >>> format_cpuset({0, 1, 2, 5, 7, 8})
    '0-2,5,7-8'
    """
    parts: list[str] = []
    run: list[int] = []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [cpu]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def _pretty_size(size: int) -> tuple[int, str]:
    """The largest unit that divides the size exactly, as libvirt picks it."""
    for unit, factor in _UNITS:
        if size >= factor and size % factor == 0:
            return size // factor, unit
    return size, "B"


def _id(value: int | None) -> int:
    """A topology id as libvirt writes it: absent or -1 (no such level) is 0."""
    return value if value is not None and value >= 0 else 0


def _int(text: str, base: int = 10) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")


class _Writer:
    """Indented XML the way libvirt prints it."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._depth = 0

    def _start(self, tag: str, attrs: dict[str, str]) -> str:
        return "  " * self._depth + "<" + tag + "".join(f" {k}='{_escape(v)}'" for k, v in attrs.items())

    def open(self, tag: str, /, **attrs: str) -> None:
        self._lines.append(self._start(tag, attrs) + ">")
        self._depth += 1

    def close(self, name: str) -> None:
        self._depth -= 1
        self._lines.append("  " * self._depth + f"</{name}>")

    def leaf(self, tag: str, /, text: str | None = None, **attrs: str) -> None:
        start = self._start(tag, attrs)
        self._lines.append(start + "/>" if text is None else f"{start}>{_escape(text)}</{tag}>")

    def blank(self) -> None:
        self._lines.append("")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
