"""The host UUID as libvirt finds it: the SMBIOS system UUID (DMI product_uuid), else
/etc/machine-id.  A UUID whose bytes are all equal (all zeros, all ones: firmware that
never set one) is invalid and skipped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from host_pm_exporter.hostfs import HostFS, ReadError

_HEX32 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class HostIdentity:
    uuid: str
    source: str  # "dmi" or "machine-id"


def normalise_uuid(text: str) -> str | None:
    """The canonical lower-case UUID, or ``None`` when it is malformed or invalid.

    >>> normalise_uuid("4C4C4544-0042-3510-8052-B4C04F384833\\n")
    '4c4c4544-0042-3510-8052-b4c04f384833'
    >>> normalise_uuid("00000000-0000-0000-0000-000000000000") is None
    True
    >>> normalise_uuid("0123456789abcdef0123456789abcdef")
    '01234567-89ab-cdef-0123-456789abcdef'
    """
    hexdigits = text.strip().lower().replace("-", "")
    if not _HEX32.fullmatch(hexdigits):
        return None
    if len(set(hexdigits[i : i + 2] for i in range(0, 32, 2))) == 1:
        return None
    h = hexdigits
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def read_identity(fs: HostFS) -> HostIdentity | None:
    """The host UUID and where it came from; ``None`` when neither source has one.

    product_uuid is readable by root only; unprivileged, the machine-id is used (and
    the source label says so)."""
    for path in (
        fs.sys("devices", "virtual", "dmi", "id", "product_uuid"),
        fs.sys("class", "dmi", "id", "product_uuid"),
    ):
        try:
            text = fs.read(path)
        except ReadError:
            continue
        if text is not None:
            uuid = normalise_uuid(text)
            if uuid is not None:
                return HostIdentity(uuid, "dmi")
            break
    text = fs.read(fs.root("etc", "machine-id"))
    if text is not None:
        uuid = normalise_uuid(text)
        if uuid is not None:
            return HostIdentity(uuid, "machine-id")
    return None
