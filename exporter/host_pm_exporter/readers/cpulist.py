"""CPU lists as sysfs writes them: ``0-3,8,10-11``."""

from __future__ import annotations

import functools

from host_pm_exporter.hostfs import Dir, HostFS
from host_pm_exporter.readers import ParseError, read_parsed

# Linux's NR_CPUS tops out at 8,192 (x86 MAXSMP; arm64 4,096): a longer list is garbage,
# and must not cost gigabytes (a 4 KB file of "0-65535," ranges would).
MAX_CPUS = 16384


def _digits(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= 10


def _plain(text: str) -> frozenset[int] | None:
    """The plain cases a big host reads by the thousand ("5", "4-7", "3,515"), with the
    same checks as `parse_cpulist`'s loop and without its per-part calls; ``None``
    for any other list (that loop then parses it, or says what is wrong)."""
    if "-" not in text:
        parts = text.split(",")
        digits = text.replace(",", "")
        if digits.isascii() and digits.isdigit() and "" not in parts and max(map(len, parts)) <= 10:
            single = frozenset(map(int, parts))
            if len(single) > MAX_CPUS:
                raise ParseError(f"more than {MAX_CPUS} CPUs in a cpulist: not a kernel's")
            return single
    elif "," not in text:
        first, _, last = text.partition("-")
        if _digits(first) and _digits(last):
            lo, hi = int(first), int(last)
            if lo <= hi and hi - lo < MAX_CPUS:
                return frozenset(range(lo, hi + 1))
    return None


@functools.lru_cache(maxsize=4096)
def parse_cpulist(text: str) -> frozenset[int]:
    """Parse a cpulist; an empty line is the empty set.  A pure function of the text
    (the set is immutable): the lists a host writes again on every reading, each read
    afresh, are parsed once.

    >>> sorted(parse_cpulist("0-3,8,10-11\\n"))
    [0, 1, 2, 3, 8, 10, 11]
    >>> parse_cpulist("\\n")
    frozenset()
    """
    text = text.strip()
    if not text:
        return frozenset()
    plain = _plain(text)
    if plain is not None:
        return plain
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not _digits(first) or (dash and not _digits(last)):
            raise ParseError(f"bad cpulist {text[:60]!r}")
        if dash:
            lo, hi = int(first), int(last)
            if hi < lo or hi - lo >= MAX_CPUS:
                raise ParseError(f"bad range {part!r} in cpulist")
            cpus.update(range(lo, hi + 1))
        else:
            cpus.add(int(first))
        if len(cpus) > MAX_CPUS:
            raise ParseError(f"more than {MAX_CPUS} CPUs in a cpulist: not a kernel's")
    return frozenset(cpus)


def parse_cpumask(text: str) -> frozenset[int]:
    """Parse a CPU mask as sysfs writes it (``shared_cpu_map``, ``cpumap``,
    ``thread_siblings``): 32-bit hex words separated by commas, most significant first.

    >>> sorted(parse_cpumask("00000000,00000f01\\n"))
    [0, 8, 9, 10, 11]
    >>> parse_cpumask("0\\n")
    frozenset()
    """
    words = text.strip().split(",")
    cpus: set[int] = set()
    if len(words) * 32 > MAX_CPUS * 4:
        raise ParseError(f"cpumask of {len(words) * 32} bits: not a kernel's")
    for position, word in enumerate(reversed(words)):
        if not word or len(word) > 8 or not all(c in "0123456789abcdefABCDEF" for c in word):
            raise ParseError(f"bad cpumask {text.strip()[:60]!r}")
        value = int(word, 16)
        cpus.update(position * 32 + bit for bit in range(32) if value >> bit & 1)
    return frozenset(cpus)


def read_cpuset(fs: HostFS | Dir, list_path: str, mask_path: str) -> frozenset[int] | None:
    """The CPUs of a sysfs list file, or of its hex-mask twin where the kernel has only
    the mask (older powerpc kernels write no ``shared_cpu_list``); ``None`` when
    neither exists."""
    cpus = read_parsed(fs, list_path, parse_cpulist)
    return cpus if cpus is not None else read_parsed(fs, mask_path, parse_cpumask)
