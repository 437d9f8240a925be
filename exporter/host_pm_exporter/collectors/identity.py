"""The ``identity`` collector: the host UUID as libvirt finds it."""

from __future__ import annotations

from collections.abc import Iterator

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.families import Family, one_info
from host_pm_exporter.readers.identity import HostIdentity, read_identity


def families(ident: HostIdentity | None) -> Iterator[Family]:
    if ident is None:
        return
    yield one_info(
        "host_uuid",
        "The host UUID as libvirt finds it; source is dmi (SMBIOS product_uuid) or machine-id.",
        {"uuid": ident.uuid, "source": ident.source},
    )


COLLECTOR = Collector(
    "identity",
    "host UUID as libvirt finds it (DMI product_uuid, else /etc/machine-id)",
    gather=lambda facts: read_identity(facts.fs),
    families=families,
    metrics=("host_uuid_info",),
)
