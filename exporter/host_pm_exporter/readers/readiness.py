"""Facts for "can this host hibernate now": swap usable for the image, memory to save,
the resume target, EFI boot and the image size (after systemd's hibernation_is_safe)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError, read_parsed

SWAP_THRESHOLD = 0.98  # systemd: Active(anon) <= free swap * 0.98
_DEVNO = re.compile(r"(\d+):(\d+)")


@dataclass(frozen=True)
class Swap:
    path: str
    type: str  # partition, file
    size_bytes: int
    used_bytes: int
    priority: int
    usable: bool  # for hibernation
    reason: str  # why not usable: zram, deleted, type, not_resume_target; "" when usable

    @property
    def free_bytes(self) -> int:
        return self.size_bytes - self.used_bytes


@dataclass(frozen=True)
class ReadinessFacts:
    swaps: tuple[Swap, ...]
    target: Swap | None  # the swap the image would go to
    active_anon_bytes: int | None
    resume: tuple[int, int] | None  # /sys/power/resume, None when 0:0 or absent
    resume_offset: int | None
    efi: bool
    image_size_bytes: int | None

    @property
    def required_bytes(self) -> int | None:
        """Free swap the image needs: Active(anon) / 0.98."""
        if self.active_anon_bytes is None:
            return None
        return int(self.active_anon_bytes / SWAP_THRESHOLD)


def parse_swaps(text: str) -> list[tuple[str, str, int, int, int]]:
    """/proc/swaps rows: (path, type, size bytes, used bytes, priority).

    >>> parse_swaps("Filename\\t\\t\\t\\tType\\t\\tSize\\t\\tUsed\\t\\tPriority\\n"
    ...             "/dev/sda3                               partition\\t8388604\\t0\\t-2\\n")
    [('/dev/sda3', 'partition', 8589930496, 0, -2)]
    """
    rows = []
    lines = text.splitlines()
    if lines and not lines[0].startswith("Filename"):
        raise ParseError("/proc/swaps has no header")
    for line in lines[1:]:
        if not line.strip():
            continue
        # the path may contain spaces ("\\040(deleted)" is escaped, but be lenient)
        parts = line.rsplit(None, 4)
        if len(parts) != 5:
            raise ParseError(f"bad /proc/swaps line {line[:80]!r}")
        path, kind, size, used, priority = parts
        try:
            rows.append((path.strip(), kind, int(size) * 1024, int(used) * 1024, int(priority)))
        except ValueError:
            raise ParseError(f"bad /proc/swaps line {line[:80]!r}") from None
    return rows


def parse_meminfo_field(text: str, field: str) -> int | None:
    """One ``kB`` field of /proc/meminfo, in bytes.

    >>> parse_meminfo_field("MemTotal: 100 kB\\nActive(anon):    2048 kB\\n", "Active(anon)")
    2097152
    """
    match = re.search(rf"^{re.escape(field)}:\s+(\d+) kB$", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def parse_devno(text: str) -> tuple[int, int] | None:
    """/sys/power/resume: ``major:minor``; ``0:0`` means unset.

    >>> parse_devno("259:3\\n"), parse_devno("0:0\\n")
    ((259, 3), None)
    """
    match = _DEVNO.fullmatch(text.strip())
    if not match:
        raise ParseError(f"bad device number {text.strip()[:20]!r}")
    devno = (int(match.group(1)), int(match.group(2)))
    return None if devno == (0, 0) else devno


def read_readiness(fs: HostFS) -> ReadinessFacts:
    resume = read_parsed(fs, fs.sys("power", "resume"), parse_devno)
    offset = fs.read_int(fs.sys("power", "resume_offset"))
    rows = read_parsed(fs, fs.proc("swaps"), parse_swaps) or []
    devnos = _partition_devnos(fs, rows) if resume is not None else {}
    swaps = [_classify(row, resume, offset, devnos) for row in rows]
    usable = [s for s in swaps if s.usable]
    # The highest priority, then the most free space (systemd's "priority or free"
    # comparison depends on the order of /proc/swaps; this does not).
    target = max(usable, key=lambda s: (s.priority, s.free_bytes)) if usable else None
    return ReadinessFacts(
        swaps=tuple(swaps),
        target=target,
        active_anon_bytes=read_parsed(fs, fs.proc("meminfo"), lambda text: parse_meminfo_field(text, "Active(anon)")),
        resume=resume,
        resume_offset=offset,
        efi=fs.exists(fs.sys("firmware", "efi")),
        image_size_bytes=fs.read_int(fs.sys("power", "image_size")),
    )


def _partition_devnos(fs: HostFS, rows: list[tuple[str, str, int, int, int]]) -> dict[str, tuple[int, int] | None]:
    """Device numbers of the swap partitions (/sys/class/block/<name>/dev), read once."""
    devnos: dict[str, tuple[int, int] | None] = {}
    for path, kind, *_ in rows:
        if kind == "partition":
            devnos[path] = read_parsed(fs, fs.sys("class", "block", os.path.basename(path), "dev"), parse_devno)
    return devnos


def _classify(
    row: tuple[str, str, int, int, int],
    resume: tuple[int, int] | None,
    offset: int | None,
    devnos: dict[str, tuple[int, int] | None],
) -> Swap:
    path, kind, size, used, priority = row
    reason = _unusable(path, kind, resume, offset, devnos)
    return Swap(path, kind, size, used, priority, usable=not reason, reason=reason)


def _unusable(
    path: str,
    kind: str,
    resume: tuple[int, int] | None,
    offset: int | None,
    devnos: dict[str, tuple[int, int] | None],
) -> str:
    """Why a swap area cannot take the hibernation image ("" when it can)."""
    if kind == "file" and path.endswith(("\\040(deleted)", " (deleted)")):
        reason = "deleted"
    elif kind not in ("file", "partition"):
        reason = "type"
    elif kind == "partition" and path.startswith("/dev/zram"):
        reason = "zram"
    elif resume is None:
        reason = ""  # any active swap may take the image
    elif kind == "file":
        # A swap file is the target through resume= (its file system's device) plus
        # resume_offset; its device and first extent cannot be checked without root.
        reason = "" if offset and resume not in devnos.values() else "not_resume_target"
    else:
        reason = "" if devnos.get(path) == resume else "not_resume_target"
    return reason
