"""CPU lists as sysfs writes them: ``0-3,8,10-11``."""

from __future__ import annotations

from host_pm_exporter.readers import ParseError


def _digits(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= 10


def parse_cpulist(text: str) -> frozenset[int]:
    """Parse a cpulist; an empty line is the empty set.

    >>> sorted(parse_cpulist("0-3,8,10-11\\n"))
    [0, 1, 2, 3, 8, 10, 11]
    >>> parse_cpulist("\\n")
    frozenset()
    """
    text = text.strip()
    if not text:
        return frozenset()
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not _digits(first) or (dash and not _digits(last)):
            raise ParseError(f"bad cpulist {text[:60]!r}")
        if dash:
            lo, hi = int(first), int(last)
            if hi < lo or hi - lo > 1 << 16:
                raise ParseError(f"bad range {part!r} in cpulist")
            cpus.update(range(lo, hi + 1))
        else:
            cpus.add(int(first))
    return frozenset(cpus)
