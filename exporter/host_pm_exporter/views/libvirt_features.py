"""libvirt's names of architectures, carried as data for the capabilities XML.

The CPU names (models, vendors, features) are not here: they are read from libvirt's
CPU map (`host_pm_exporter.cpumap`).  Provenance of these names: libvirt's
``src/conf/schemas/basictypes.rng`` (define "archnames", libvirt 9.0.0; project libvirt,
licence LGPL-2.1-or-later).
"""

from __future__ import annotations

# libvirt's architecture names (basictypes.rng "archnames") for what uname -m says.
ARCH_NAMES: dict[str, str] = {"i386": "i686", "i486": "i686", "i586": "i686", "arm64": "aarch64"}
LIBVIRT_ARCHES: frozenset[str] = frozenset(
    {"aarch64", "alpha", "armv6l", "armv7l", "cris", "i686", "ia64", "lm32", "m68k", "microblaze",
     "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64", "ppc",
     "ppc64", "ppc64le", "ppcemb", "riscv32", "riscv64", "s390", "s390x", "sh4", "sh4eb", "sparc",
     "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb"}
)  # fmt: skip
