"""Wake sources: devices allowed to wake the host, and network interfaces' Wake-on-LAN.

Wake-on-LAN modes come from the ethtool ioctl (ETHTOOL_GWOL) where the exporter may
use it (it needs CAP_NET_ADMIN); otherwise, and for interfaces of a --path.sysfs tree
that the running kernel does not have, from sysfs: the NIC's power/wakeup switch.
"""

from __future__ import annotations

import array
import errno
import fcntl
import socket
import struct
import threading
from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS

SIOCETHTOOL = 0x8946
ETHTOOL_GWOL = 0x00000005
# ethtool's letters for the WAKE_* bits, lowest bit first.
WOL_LETTERS = "pumbagsf"
WAKE_MAGIC = 1 << 5


@dataclass(frozen=True)
class Nic:
    name: str
    wol_supported: str | None  # ethtool letters ("pumbg"); "" none; None unknown
    wol_enabled: str | None  # ethtool letters, "d" disabled; None unknown
    wakeup: bool | None  # the device's power/wakeup switch; None without one
    source: str  # "ethtool" or "sysfs"

    @property
    def wakes_on_magic_packet(self) -> bool:
        if self.wol_enabled is not None:
            return "g" in self.wol_enabled
        return bool(self.wakeup)


@dataclass(frozen=True)
class WakeFacts:
    wakeup_devices: dict[str, int]  # subsystem -> devices with wakeup enabled
    nics: tuple[Nic, ...]
    rtc_wakealarm: bool

    @property
    def wake_capable(self) -> bool:
        return self.rtc_wakealarm or any(n.wakes_on_magic_packet for n in self.nics)


def wol_letters(bits: int) -> str:
    """ethtool's notation of WAKE_* bits.

    >>> wol_letters(0b100001), wol_letters(0)
    ('pg', '')
    """
    return "".join(letter for i, letter in enumerate(WOL_LETTERS) if bits & (1 << i))


_SOCKETS: list[socket.socket] = []  # the one socket that ethtool_wol asks through
_SOCKET_LOCK = threading.Lock()


def _ioctl_socket() -> int:
    """A datagram socket to address ioctls to, made on first need and kept for the
    process (making one per scrape cost more than the ioctl itself)."""
    if not _SOCKETS:
        with _SOCKET_LOCK:
            if not _SOCKETS:
                _SOCKETS.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    return _SOCKETS[0].fileno()


def ethtool_wol(name: str) -> tuple[int, int] | None:
    """(supported, enabled) WAKE_* bits of an interface, ``(0, 0)`` when its driver has
    no Wake-on-LAN, ``None`` when the ioctl is not allowed or the interface unknown."""
    if not 0 < len(name.encode()) < 16:
        return None
    # The kernel writes the answer into `wolinfo`, through its address in `ifreq` (an
    # array has a fixed address and costs no ctypes, which would load libffi).  It
    # writes sizeof(struct ethtool_wolinfo), 20 bytes with the padding: room for 32.
    wolinfo = array.array("B", struct.pack("=III6s", ETHTOOL_GWOL, 0, 0, b"").ljust(32, b"\0"))
    ifreq = struct.pack("16sP", name.encode(), wolinfo.buffer_info()[0]) + bytes(16)
    try:
        fcntl.ioctl(_ioctl_socket(), SIOCETHTOOL, ifreq)
    except OSError as err:
        if err.errno == errno.EOPNOTSUPP:
            return 0, 0
        return None  # EPERM (no CAP_NET_ADMIN), ENODEV (not in this namespace)...
    _, supported, enabled, _ = struct.unpack("=III6s", wolinfo.tobytes()[:18])
    return supported, enabled


def _read_switch(fs: HostFS, path: str) -> bool | None:
    text = fs.read(path)
    return None if text is None else text.strip() == "enabled"


def read_wake(fs: HostFS, rtc_wakealarm: bool) -> WakeFacts:
    return WakeFacts(wakeup_devices=_wakeup_devices(fs), nics=tuple(_nics(fs)), rtc_wakealarm=rtc_wakealarm)


def _wakeup_devices(fs: HostFS) -> dict[str, int]:
    """Devices whose power/wakeup is enabled, counted per subsystem.  The kernel lists
    each in /sys/class/wakeup (5.4+) with a link to its device."""
    counts: dict[str, int] = {}
    base = fs.sys("class", "wakeup")
    for entry in fs.listdir(base) or []:
        device = f"{base}/{entry}/device"  # the kernel follows the link as it opens
        if _read_switch(fs, f"{device}/power/wakeup") is not True:
            continue  # a wakeup source without a device, or one switched off
        subsystem = fs.resolved_name(f"{device}/subsystem") if fs.exists(f"{device}/subsystem") else "other"
        counts[subsystem] = counts.get(subsystem, 0) + 1
    return counts


def _nics(fs: HostFS) -> list[Nic]:
    base = fs.sys("class", "net")
    out = []
    for name in fs.listdir(base) or []:
        if not fs.exists(f"{base}/{name}/device"):
            continue  # virtual: lo, bridges, veth without a parent device
        wakeup = _read_switch(fs, f"{base}/{name}/device/power/wakeup")
        wol = fs.ask(ethtool_wol, name) if fs.sysfs == "/sys" else None
        if wol is not None:
            supported, enabled = wol
            out.append(Nic(name, wol_letters(supported), wol_letters(enabled) or "d", wakeup, "ethtool"))
        else:
            out.append(Nic(name, None, None, wakeup, "sysfs"))
    return out
