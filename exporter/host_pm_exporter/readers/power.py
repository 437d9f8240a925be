"""Sleep-state facts: /sys/power/{state,mem_sleep,disk}, the RTC wake alarm, lockdown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers import ParseError, read_parsed

_TOKEN = re.compile(r"\[?([a-z0-9_-]+)\]?")


@dataclass(frozen=True)
class ModeList:
    """A sysfs choice list such as ``s2idle [deep]``: the modes and the selected one."""

    modes: tuple[str, ...]
    selected: str | None


@dataclass(frozen=True)
class SleepFiles:
    """/sys/power/state, mem_sleep and disk, parsed.  ``None`` means the file is absent."""

    state: frozenset[str] | None
    mem_sleep: ModeList | None
    disk: ModeList | None


@dataclass(frozen=True)
class PowerFacts:
    """What the kernel says about sleep: the sleep files and whether an RTC can wake
    (None: /sys/class/rtc could not be read)."""

    state: frozenset[str] | None
    mem_sleep: ModeList | None
    disk: ModeList | None
    rtc_wakealarm: bool | None

    @classmethod
    def of(cls, files: SleepFiles, rtc_wakealarm: bool | None) -> PowerFacts:
        return cls(files.state, files.mem_sleep, files.disk, rtc_wakealarm)


def parse_sleep_states(text: str) -> frozenset[str]:
    """Parse /sys/power/state.

    >>> sorted(parse_sleep_states("freeze mem disk\\n"))
    ['disk', 'freeze', 'mem']
    >>> parse_sleep_states("\\n")
    frozenset()
    """
    words = text.split()
    for word in words:
        if not re.fullmatch(r"[a-z0-9_-]+", word):
            raise ParseError(f"unexpected word {word[:40]!r} in sleep state list")
    return frozenset(words)


def parse_mode_list(text: str) -> ModeList:
    """Parse a bracketed choice list: /sys/power/mem_sleep, /sys/power/disk, lockdown.

    >>> parse_mode_list("s2idle [deep]\\n")
    ModeList(modes=('s2idle', 'deep'), selected='deep')
    >>> parse_mode_list("[disabled]\\n")
    ModeList(modes=('disabled',), selected='disabled')
    >>> parse_mode_list("")
    ModeList(modes=(), selected=None)
    """
    modes = []
    selected = None
    for word in text.split():
        match = _TOKEN.fullmatch(word)
        bracketed = word.startswith("[") and word.endswith("]")
        if not match or (word.startswith("[") != word.endswith("]")):
            raise ParseError(f"unexpected word {word[:40]!r} in mode list")
        mode = match.group(1)
        if bracketed:
            if selected is not None:
                raise ParseError(f"two selected modes in {text.strip()[:80]!r}")
            selected = mode
        modes.append(mode)
    if modes and selected is None:
        raise ParseError(f"no selected mode in {text.strip()[:80]!r}")
    return ModeList(tuple(modes), selected)


def read_sleep_files(fs: HostFS) -> SleepFiles:
    """/sys/power/state, mem_sleep and disk of the host under `fs`."""
    return SleepFiles(
        state=read_parsed(fs, fs.sys("power", "state"), parse_sleep_states),
        mem_sleep=read_parsed(fs, fs.sys("power", "mem_sleep"), parse_mode_list),
        disk=read_parsed(fs, fs.sys("power", "disk"), parse_mode_list),
    )


def read_power(fs: HostFS) -> PowerFacts:
    """Every sleep fact of the host under `fs`."""
    return PowerFacts.of(read_sleep_files(fs), has_rtc_wakealarm(fs))


def has_rtc_wakealarm(fs: HostFS) -> bool:
    """True when some RTC under /sys/class/rtc offers a ``wakealarm`` attribute."""
    rtcs = fs.listdir(fs.sys("class", "rtc")) or []
    return any(fs.exists(fs.sys("class", "rtc", rtc, "wakealarm")) for rtc in rtcs)


def read_lockdown(fs: HostFS) -> ModeList | None:
    """The kernel lockdown list (/sys/kernel/security/lockdown), ``None`` when absent."""
    path = fs.sys("kernel", "security", "lockdown")
    levels = read_parsed(fs, path, parse_mode_list)
    if levels is not None and levels.selected is None:
        raise ParseError(f"{path}: empty")
    return levels
