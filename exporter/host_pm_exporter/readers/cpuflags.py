"""CPU feature flags: the x86-64 psABI level and a stable fingerprint of the flag set.

The fingerprint lets a fleet group hosts whose guests can live-migrate between each
other.  Algorithm, so that other tools can compute it: sort the flag names (byte order),
join them with single newlines (no trailing newline), hash with SHA-256, and keep the
first 16 hex digits.  It covers every flag of every CPU, whatever the metric filters.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from hashlib import sha256

# x86-64 psABI micro-architecture levels, by /proc/cpuinfo flag names.
# (pni is SSE3; abm carries LZCNT; osxsave is implied by xsave being listed and used.)
X86_64_LEVELS = (
    (1, frozenset({"lm", "cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2"})),
    (2, frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"})),
    (3, frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})),
    (4, frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)


def x86_64_level(flags: Iterable[str]) -> int:
    """The highest psABI level whose flags (and all lower levels') are all present; 0
    when not even x86-64 v1.

    >>> x86_64_level("lm cmov cx8 fpu fxsr mmx syscall sse sse2".split())
    1
    >>> x86_64_level(["sse2"])
    0
    """
    have = frozenset(flags)
    level = 0
    for number, needed in X86_64_LEVELS:
        if not needed <= have:
            break
        level = number
    return level


def fingerprint(flags: Iterable[str]) -> str:
    """Stable hash of a flag set.

    >>> fingerprint(["sse2", "fpu"]) == fingerprint(["fpu", "sse2"])
    True
    >>> fingerprint([])
    'e3b0c44298fc1c14'
    """
    return _fingerprint(frozenset(flags))


@functools.lru_cache(maxsize=64)
def _fingerprint(flags: frozenset[str]) -> str:
    """A pure function of the set: the same flags, read on another scrape, hash once."""
    text = "\n".join(sorted(flags))
    return sha256(text.encode()).hexdigest()[:16]
