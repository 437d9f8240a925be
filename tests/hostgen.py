"""Builds fixture hosts: proc/ and sys/ trees of machines with any number of CPUs.

The CPU fixture hosts' trees are built by this script from the specifications in
tests/fixture_hosts.py (modelled on real machines: their cpuinfo blocks, numbering,
caches and NUMA layout) at test time, into a temporary directory, and never committed;
only each host's hand-written expected.json is, in tests/fixtures/<host>/.  Large
synthetic hosts (the 1024-CPU box, the benchmark hosts) are built the same way:

    python -m tests.hostgen --fixtures OUT        # every CPU fixture host, in OUT/<host>
    python -m tests.hostgen --cpus 1024 OUT       # a synthetic 8-socket x86 host in OUT

Each tree also has what node_exporter's cpu, cpu.info and cpufreq collectors need
(proc/stat, cpufreq policies), so both exporters can be pointed at the same tree.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class Cache:
    index: int
    level: int
    type: str  # Data, Instruction, Unified
    size_kb: int
    shared_by: str  # "core", "cluster", "ccx", "die", "package"
    ways: int = 8
    line: int = 64


@dataclass(frozen=True)
class Kind:
    """A kind of CPU: its /proc/cpuinfo block and caches.

    `cpuinfo` is a block with ``{cpu}``, ``{package}``, ``{core}``, ``{apicid}``,
    ``{siblings}``, ``{cores}`` and ``{mhz}`` placeholders; ``{flags}`` for `flags`.
    """

    cpuinfo: str
    caches: tuple[Cache, ...]
    flags: str = ""
    min_khz: int = 800000
    max_khz: int = 3500000
    core_type: str = ""  # "performance"/"efficiency" on Intel hybrid parts


@dataclass
class Core:
    package: int
    die: int
    cluster: int
    core_id: int
    kind: Kind
    threads: list[int] = field(default_factory=list)  # logical CPU numbers
    ccx: int = 0  # AMD core complex: the CPUs that share an L3 of "ccx" scope


@dataclass
class HostSpec:
    name: str
    description: str
    arch: str
    cores: list[Core]
    numa: list[tuple[set[int], int]]  # per node: the dies it holds, MemTotal kB
    offline: set[int] = field(default_factory=set)
    isolated: set[int] = field(default_factory=set)
    possible_extra: int = 0  # possible CPUs beyond the present ones (hot-pluggable)
    distances: list[list[int]] | None = None
    hugepages: dict[int, int] = field(default_factory=dict)  # size kB -> pages per node
    vulnerabilities: dict[str, str] = field(default_factory=dict)
    dmi: dict[str, str] = field(default_factory=dict)
    machine_id: str = ""
    kvm_device: bool = False
    nested: tuple[str, str] | None = None  # (module, Y/N/1/0)
    iommu_groups: int = 0
    cpufreq: tuple[str, str] | None = ("intel_pstate", "powersave")
    cpuinfo_header: str = ""  # s390x global part
    cpuinfo_trailer: str = ""  # POWER machine block
    power: dict[str, str] = field(default_factory=dict)  # sys/power files
    die_ids: bool = True  # the kernel has die_id / die_cpus_list
    cluster_ids: bool = True  # the kernel has cluster_id / cluster_cpus_list
    cluster_id_value: int | None = None  # AMD: 65535 on every CPU (the kernel never sets it)
    cache_ids: bool = True  # arm64 and RISC-V caches often have no id file
    extra_files: dict[str, str] = field(default_factory=dict)
    # What real kernels (or odd captures of them) write otherwise; each is one class of
    # tests/fixtures/<host>/expected.json's "kernel_class" hosts.
    nul_padded: bool = False  # every list file ends "\n\0" (bitmap_print_to_buf in 5.15-era kernels)
    omit_cpu_masks: tuple[str, ...] = ()  # of online, offline, present, possible: not written
    online_switches: bool = True  # cpuN/online (CONFIG_HOTPLUG_CPU); cpu0 has none
    switch_text: dict[int, str] = field(default_factory=dict)  # cpuN/online as written, where odd
    node_lists_offline: bool = False  # nodeN/cpulist lists the node's offline CPUs too
    core_type_pmus: bool = True  # /sys/devices/cpu_core|cpu_atom/cpus (hybrid PMUs, Linux 5.13+)
    zero_shared_maps: bool = False  # shared_cpu_map all zeros, no shared_cpu_list (ia64)
    sibling_files: tuple[str, ...] | None = None  # only these topology files (no id files)
    sparc_caches: bool = False  # cpuN/l1_dcache_size ... instead of cache/indexN
    spoil: dict[str, str] = field(default_factory=dict)  # files overwritten last: odd values

    @property
    def cpus(self) -> list[int]:
        return sorted(cpu for core in self.cores for cpu in core.threads)

    def online(self) -> list[int]:
        return [cpu for cpu in self.cpus if cpu not in self.offline]


def cpumask(cpus: Iterable[int], nbits: int) -> str:
    """Format a CPU set as the kernel's mask files do (``%*pb`` over nr_cpu_ids bits):
    hex, a comma every 32 bits from the right, ``0000ffff,ffffffff`` style.

    >>> cpumask([0, 1, 2, 3], 4), cpumask([0, 47], 48), cpumask([32], 64)
    ('f', '8000,00000001', '00000001,00000000')
    """
    value = sum(1 << cpu for cpu in set(cpus))
    digits = format(value, f"0{(nbits + 3) // 4}x")
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-8:])
        digits = digits[:-8]
    return ",".join(groups)


def cpulist(cpus: Iterable[int]) -> str:
    """Format a CPU set the way sysfs does: ``0-3,8``."""
    items = sorted(set(cpus))
    out = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def x86_layout(
    kinds: Callable[[int, int], Kind],
    sockets: int,
    cores_per_socket: int,
    threads: int,
    dies_per_socket: int = 1,
    cores_per_cluster: int = 1,
    core_id_of: Callable[[int], int] = lambda i: i,
    sibling_stride: bool = True,
) -> list[Core]:
    """Cores of a multi-socket x86 server.

    With `sibling_stride` (Intel and AMD servers), the first threads of every core come
    first and the second threads after them: on 2 x 12 cores, CPU 0 and 24 are siblings.
    """
    cores = []
    total_cores = sockets * cores_per_socket
    cores_per_die = cores_per_socket // dies_per_socket
    for package in range(sockets):
        for i in range(cores_per_socket):
            index = package * cores_per_socket + i
            die = package * dies_per_socket + i // cores_per_die
            cluster = index // cores_per_cluster
            core = Core(package, die, cluster, core_id_of(i), kinds(package, i))
            if sibling_stride:
                core.threads = [index + t * total_cores for t in range(threads)]
            else:
                core.threads = [index * threads + t for t in range(threads)]
            cores.append(core)
    return cores


def write(root: Path, rel: str, text: str) -> None:
    """Write one file of the tree (a big host has tens of thousands: plain os calls,
    and a directory is made only when the first write into it fails)."""
    path = os.path.join(root, rel)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def build(spec: HostSpec, root: Path) -> None:
    """Write the host's tree under `root` (which must not exist yet)."""
    root.mkdir(parents=True)
    cpu_of = {cpu: core for core in spec.cores for cpu in core.threads}
    cpus = spec.cpus
    online = spec.online()
    online_set = set(online)
    cpu_root = "sys/devices/system/cpu"

    present = cpus
    possible = list(range(max(cpus) + 1 + spec.possible_extra))
    nbits = len(possible)  # nr_cpu_ids: the width of every mask file
    end = "\n\0" if spec.nul_padded else "\n"
    for name, members in (
        ("online", online),
        ("offline", sorted(spec.offline)),
        ("present", present),
        ("possible", possible),
        ("isolated", sorted(spec.isolated)),
    ):
        if name not in spec.omit_cpu_masks:
            write(root, f"{cpu_root}/{name}", cpulist(members) + end)
    write(root, f"{cpu_root}/kernel_max", f"{max(8191, len(possible) - 1)}\n")
    for name, text in sorted(spec.vulnerabilities.items()):
        write(root, f"{cpu_root}/vulnerabilities/{name}", text + "\n")

    groups: dict[tuple[str, int], list[int]] = {}
    for other in spec.cores:
        for attr in ("package", "die", "cluster", "ccx"):
            members = groups.setdefault((attr, getattr(other, attr)), [])
            members.extend(c for c in other.threads if c in online_set)
    core_index = {id(core): i for i, core in enumerate(spec.cores)}

    def group(attr: str, core: Core) -> list[int]:
        return groups[(attr, getattr(core, attr))]

    for cpu in cpus:
        core = cpu_of[cpu]
        base = f"{cpu_root}/cpu{cpu}"
        if cpu != 0 and spec.online_switches:
            switch = "0\n" if cpu in spec.offline else "1\n"
            write(root, f"{base}/online", spec.switch_text.get(cpu, switch))
        elif cpu in spec.offline:
            write(root, f"{base}/uevent", "")  # the directory is there all the same
        if cpu in spec.offline:
            continue  # the kernel removes an offline CPU's topology and cache directories
        topo = f"{base}/topology"
        package = group("package", core)
        if spec.sibling_files is None:
            write(root, f"{topo}/physical_package_id", f"{core.package}\n")
            write(root, f"{topo}/core_id", f"{core.core_id}\n")
        siblings = [c for c in core.threads if c in online_set]
        # Each sibling set as the kernel writes it: a list and its hex-mask twin.
        sets = {"package_cpus": package, "core_siblings": package, "core_cpus": siblings, "thread_siblings": siblings}
        if spec.die_ids:
            write(root, f"{topo}/die_id", f"{core.die}\n")
            sets["die_cpus"] = group("die", core)
        if spec.cluster_ids:
            cluster_id = core.cluster if spec.cluster_id_value is None else spec.cluster_id_value
            write(root, f"{topo}/cluster_id", f"{cluster_id}\n")
            sets["cluster_cpus"] = group("cluster", core)
        for name, members in sets.items():
            for file, text in ((f"{name}_list", cpulist(members) + end), (name, cpumask(members, nbits) + "\n")):
                if spec.sibling_files is None or file in spec.sibling_files:
                    write(root, f"{topo}/{file}", text)
        for cache in core.kind.caches if spec.sparc_caches else ():
            name = {1: f"l1_{cache.type[0].lower()}cache_size", 2: "l2_cache_size", 3: "l3_cache_size"}[cache.level]
            write(root, f"{base}/{name}", f"{cache.size_kb * 1024}\n")
        for cache in () if spec.sparc_caches else core.kind.caches:
            shared = {
                "core": siblings,
                "cluster": group("cluster", core),
                "ccx": group("ccx", core),
                "die": group("die", core),
                "package": package,
            }[cache.shared_by]
            ident = {
                "core": core_index[id(core)],
                "cluster": core.cluster,
                "ccx": core.ccx,
                "die": core.die,
                "package": core.package,
            }[cache.shared_by]
            path = f"{base}/cache/index{cache.index}"
            write(root, f"{path}/level", f"{cache.level}\n")
            write(root, f"{path}/type", f"{cache.type}\n")
            write(root, f"{path}/size", f"{cache.size_kb}K\n")
            if spec.zero_shared_maps:
                write(root, f"{path}/shared_cpu_map", cpumask((), nbits) + "\n")
            else:
                write(root, f"{path}/shared_cpu_list", cpulist(shared) + end)
                write(root, f"{path}/shared_cpu_map", cpumask(shared, nbits) + "\n")
            if spec.cache_ids:
                write(root, f"{path}/id", f"{ident}\n")
            write(root, f"{path}/ways_of_associativity", f"{cache.ways}\n")
            write(root, f"{path}/coherency_line_size", f"{cache.line}\n")
        if spec.cpufreq is not None:
            driver, governor = spec.cpufreq
            policy = f"{cpu_root}/cpufreq/policy{cpu}"
            kind = core.kind
            governors = (
                "performance powersave"
                if driver.startswith(("intel_pstate", "amd-pstate"))
                else ("conservative ondemand userspace powersave performance schedutil")
            )
            for name, text in (
                ("scaling_driver", driver),
                ("scaling_governor", governor),
                ("scaling_available_governors", governors),
                ("related_cpus", str(cpu)),
                ("affected_cpus", str(cpu)),
                ("scaling_setspeed", "<unsupported>"),
                ("cpuinfo_min_freq", str(kind.min_khz)),
                ("cpuinfo_max_freq", str(kind.max_khz)),
                ("scaling_min_freq", str(kind.min_khz)),
                ("scaling_max_freq", str(kind.max_khz)),
                ("scaling_cur_freq", str((kind.min_khz + kind.max_khz) // 2)),
                *([("energy_performance_preference", "balance_performance")] if driver == "intel_pstate" else []),
            ):
                write(root, f"{policy}/{name}", text + "\n")
            link = root / base / "cpufreq"
            link.symlink_to(f"../cpufreq/policy{cpu}")

    if spec.cpufreq is not None and spec.cpufreq[0] == "intel_pstate":
        write(root, f"{cpu_root}/intel_pstate/status", "active\n")
        write(root, f"{cpu_root}/intel_pstate/no_turbo", "0\n")
    for core_type, pmu in (("performance", "cpu_core"), ("efficiency", "cpu_atom")):
        members = [c for c in online if cpu_of[c].kind.core_type == core_type]
        if members and spec.core_type_pmus:
            write(root, f"sys/devices/{pmu}/cpus", cpulist(members) + "\n")

    _write_numa(spec, root, online_set, nbits)
    _write_proc(spec, root, cpu_of, online)
    for name, text in spec.dmi.items():
        write(root, f"sys/class/dmi/id/{name}", text + "\n")
    if spec.machine_id:
        write(root, "etc/machine-id", spec.machine_id + "\n")
    if spec.kvm_device:
        write(root, "dev/kvm", "")
    if spec.nested is not None:
        write(root, f"sys/module/{spec.nested[0]}/parameters/nested", spec.nested[1] + "\n")
    for group_id in range(spec.iommu_groups):
        write(root, f"sys/kernel/iommu_groups/{group_id}/type", "DMA-FQ\n")
    for name, text in spec.power.items():
        write(root, f"sys/power/{name}", text)
    for rel, text in spec.extra_files.items():
        write(root, rel, text)
    for rel, text in spec.spoil.items():
        write(root, rel, text)


def _write_numa(spec: HostSpec, root: Path, online: set[int], nbits: int) -> None:
    base = "sys/devices/system/node"
    nodes = range(len(spec.numa))
    end = "\n\0" if spec.nul_padded else "\n"
    write(root, f"{base}/online", cpulist(nodes) + end)
    write(root, f"{base}/possible", cpulist(nodes) + end)
    for node, (dies, mem_kb) in enumerate(spec.numa):
        listed = set(spec.cpus) if spec.node_lists_offline else online
        cpus = [c for core in spec.cores if core.die in dies for c in core.threads if c in listed]
        path = f"{base}/node{node}"
        write(root, f"{path}/cpulist", cpulist(cpus) + end)
        write(root, f"{path}/cpumap", cpumask(cpus, nbits) + "\n")
        row = spec.distances[node] if spec.distances else [10 if peer == node else 21 for peer in nodes]
        write(root, f"{path}/distance", " ".join(str(d) for d in row) + "\n")
        free = mem_kb // 3 * 2
        lines = [
            ("MemTotal", mem_kb),
            ("MemFree", free),
            ("MemUsed", mem_kb - free),
            ("SwapCached", 0),
            ("Active", mem_kb // 8),
            ("Inactive", mem_kb // 10),
        ]
        meminfo = "".join(f"Node {node} {key + ':':<16}{value:>8} kB\n" for key, value in lines)
        for size in sorted(spec.hugepages):
            meminfo += f"Node {node} HugePages_Total: {spec.hugepages[size]:>5}\n" if size == 2048 else ""
        write(root, f"{path}/meminfo", meminfo)
        for size, count in sorted(spec.hugepages.items()):
            hp = f"{path}/hugepages/hugepages-{size}kB"
            write(root, f"{hp}/nr_hugepages", f"{count}\n")
            write(root, f"{hp}/free_hugepages", f"{count - count // 4}\n")
            write(root, f"{hp}/surplus_hugepages", "0\n")


def _write_proc(spec: HostSpec, root: Path, cpu_of: dict[int, Core], online: list[int]) -> None:
    blocks = []
    per_package: dict[int, int] = {}
    for cpu in online:
        per_package[cpu_of[cpu].package] = per_package.get(cpu_of[cpu].package, 0) + 1
    cores_per_package: dict[int, int] = {}
    for core in spec.cores:
        cores_per_package[core.package] = cores_per_package.get(core.package, 0) + 1
    for cpu in online:
        core = cpu_of[cpu]
        mhz = (core.kind.min_khz + core.kind.max_khz) / 2000 + (cpu % 7) * 13.217
        blocks.append(
            core.kind.cpuinfo.format(
                cpu=cpu,
                package=core.package,
                core=core.core_id,
                apicid=cpu * 2 % 256 + cpu // 128,
                siblings=per_package[core.package],
                cores=cores_per_package[core.package],
                mhz=f"{mhz:.3f}",
                flags=core.kind.flags,
            ).rstrip("\n")
        )
    text = spec.cpuinfo_header + "\n\n".join(blocks) + "\n\n" + spec.cpuinfo_trailer
    write(root, "proc/cpuinfo", text)
    stat = ["cpu  " + " ".join(str(n * len(online)) for n in (4705, 150, 1120, 16250010, 7180, 0, 185, 0, 0, 0))]
    for cpu in online:
        stat.append(f"cpu{cpu} " + " ".join(str(n + cpu) for n in (4705, 150, 1120, 16250010, 7180, 0, 185, 0, 0, 0)))
    stat += [
        "intr 8885917 17 0 0",
        "ctxt 38014093",
        "btime 1795600000",
        "processes 26442",
        "procs_running 2",
        "procs_blocked 0",
        "softirq 5057579 250191 1481983 1647 211099 186066 0 1783 1164316 0 1760494",
    ]
    write(root, "proc/stat", "\n".join(stat) + "\n")
    total = sum(mem for _, mem in spec.numa)
    write(root, "proc/meminfo", f"MemTotal:       {total} kB\nMemFree:        {total // 3 * 2} kB\n")


def build_fixtures(out: Path) -> list[str]:
    """Build every CPU fixture host's tree under `out` (the tests do this once per run;
    the hand-written expected.json of each stays in tests/fixtures/<host>/)."""
    from tests.fixture_hosts import HOSTS

    for spec in HOSTS:
        build(spec, out / spec.name)
    return [spec.name for spec in HOSTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", action="store_true", help="build the CPU fixture hosts under OUT")
    parser.add_argument("--cpus", type=int, help="build a synthetic x86 host with this many CPUs")
    parser.add_argument("out", nargs="?", help="where to build the synthetic host")
    args = parser.parse_args()
    if args.fixtures and args.out:
        print("\n".join(build_fixtures(Path(args.out))))
    elif args.cpus and args.out:
        from tests.fixture_hosts import synthetic_x86

        build(synthetic_x86(args.cpus), Path(args.out))
    else:
        parser.error("give --fixtures OUT, or --cpus N OUT")


if __name__ == "__main__":
    main()
