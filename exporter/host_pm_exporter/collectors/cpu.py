"""Metrics of the ``cpu`` collector (identity per kind of CPU, flags, fingerprint,
x86-64 level) and of the ``vulnerabilities`` collector (bugs and vulnerabilities)."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.readers.cpu import CpuFacts, SecurityFacts
from host_pm_exporter.render.families import Family, Gauge, Info
from host_pm_exporter.render.options import RenderOptions

INFO_LABELS = ["arch", "vendor", "model_name", "family", "model", "stepping", "microcode", "core_type"]


def cpu(facts: CpuFacts | None, options: RenderOptions) -> Iterator[Family]:
    if facts is None:  # no /proc/cpuinfo
        return
    info = Info(
        "host_cpu",
        "One series per distinct kind of CPU on the host (hybrid P/E cores and big.LITTLE "
        "clusters give several). arm64: vendor from the implementer, model_name from the part.",
        labels=INFO_LABELS,
    )
    for kind, core_type in facts.kinds:
        info.add_metric(
            [facts.arch, kind.vendor, kind.model_name, kind.family, kind.model, kind.stepping,
             kind.microcode, core_type],
            {},
        )  # fmt: skip
    yield info

    if options.flags_include is not None:  # one series per flag: 100-200 on x86, so asked for
        flags = Info(
            "host_cpu_flag",
            "A CPU feature flag any CPU of the host has (only with --collector.cpu.flags-include; "
            "host_cpu_features_info fingerprints the whole set).",
            labels=["flag"],
        )
        for flag in sorted(facts.flags):
            if options.show_flag(flag):
                flags.add_metric([flag], {})
        yield flags

    features = Info(
        "host_cpu_features",
        "Fingerprint of the full CPU flag set: sha256 of the sorted flag names joined by "
        "newlines, first 16 hex digits. Hosts with equal fingerprints offer guests the same flags.",
        labels=["fingerprint"],
    )
    features.add_metric([facts.fingerprint], {})
    yield features
    yield Gauge("host_cpu_flags", "How many CPU flags the host has.", value=len(facts.flags))

    if facts.x86_64_level is not None:
        yield Gauge(
            "host_cpu_x86_64_level",
            "The x86-64 psABI micro-architecture level (1-4) the CPU flags reach; 0 below v1.",
            value=facts.x86_64_level,
        )


def vulnerabilities(facts: SecurityFacts, _options: RenderOptions) -> Iterator[Family]:
    if facts.bugs:
        bugs = Info("host_cpu_bug", "A CPU bug the kernel knows of (cpuinfo 'bugs').", labels=["bug"])
        for bug in sorted(facts.bugs):
            bugs.add_metric([bug], {})
        yield bugs
    if facts.vulnerabilities:
        vulns = Info(
            "host_cpu_vulnerability",
            "Status of a CPU vulnerability (not_affected, mitigated, vulnerable, unknown) and "
            "the kernel's words, from /sys/devices/system/cpu/vulnerabilities.",
            labels=["vulnerability", "status", "detail"],
        )
        for vuln in facts.vulnerabilities:
            vulns.add_metric([vuln.name, vuln.status, vuln.detail], {})
        yield vulns
