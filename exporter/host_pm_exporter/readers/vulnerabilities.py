"""CPU vulnerability status (/sys/devices/system/cpu/vulnerabilities/*)."""

from __future__ import annotations

from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS


@dataclass(frozen=True)
class Vulnerability:
    name: str
    status: str  # not_affected, mitigated, vulnerable, unknown
    detail: str


def classify(text: str) -> str:
    """The status class of a vulnerability line.

    >>> classify("Mitigation: PTI"), classify("Not affected"), classify("Vulnerable: Safe RET")
    ('mitigated', 'not_affected', 'vulnerable')
    >>> classify("KVM: Mitigation: Split huge pages")
    'mitigated'
    """
    text = text.strip()
    if text.startswith("KVM: "):
        text = text[5:]
    if text.startswith("Not affected"):
        return "not_affected"
    if text.startswith("Mitigation"):
        return "mitigated"
    if text.startswith("Vulnerable"):
        return "vulnerable"
    return "unknown"


def read_vulnerabilities(fs: HostFS) -> list[Vulnerability]:
    base = fs.sys("devices", "system", "cpu", "vulnerabilities")
    out = []
    for name in fs.listdir(base) or []:
        text = fs.read(f"{base}/{name}")
        if text is not None:
            out.append(Vulnerability(name, classify(text), text.strip()))
    return out
