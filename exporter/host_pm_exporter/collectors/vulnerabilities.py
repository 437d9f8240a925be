"""The ``vulnerabilities`` collector: CPU bugs (cpuinfo) and the kernel's vulnerability status."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.families import Family, Info
from host_pm_exporter.readers.cpu import SecurityFacts
from host_pm_exporter.readers.vulnerabilities import read_vulnerabilities


def families(facts: SecurityFacts) -> Iterator[Family]:
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


def gather(facts: ScrapeFacts) -> SecurityFacts:
    info = facts.cpuinfo()
    bugs = info.bugs() if info is not None else frozenset()
    return SecurityFacts(bugs, tuple(read_vulnerabilities(facts.fs)))


COLLECTOR = Collector(
    "vulnerabilities",
    "CPU bugs (cpuinfo) and vulnerability status (/sys/devices/system/cpu/vulnerabilities)",
    gather=gather,
    families=families,
    metrics=("host_cpu_bug_info", "host_cpu_vulnerability_info"),
    default=False,
)
