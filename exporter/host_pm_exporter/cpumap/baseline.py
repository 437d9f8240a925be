"""A pool's common CPU: the CPU every host of a pool can run, from the hosts'
capabilities XML (``GET /capabilities`` of each exporter, or ``virsh capabilities``).

This is what ``virsh cpu-baseline`` computes (libvirt 9.0's ``virCPUx86Baseline`` and
the QEMU driver's ``qemuConnectBaselineCPU``), written anew: each host's CPU is its
model's features plus the features listed beside it; the pool's CPU is what all of
them have; it is named by the guest decode (`x86.decode_guest`), preferring the models
the hosts were named with; a vendor is written when every host names the same one
(hosts of different vendors have no common CPU); the features the QEMU driver never
passes on (cmt, mbm_total, mbm_local, osxsave, ospke) are left out of the list, as
``virsh cpu-baseline`` leaves them out.  x86 only: libvirt's other CPU drivers
baseline by model name alone.

Inputs are bounded (4 MiB each, no DOCTYPE); a URL is fetched with a 10 s timeout.
"""

from __future__ import annotations

import sys
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from host_pm_exporter.cpumap import x86, xmltext
from host_pm_exporter.cpumap.loader import Bit, CpuMap, load_map

MAX_INPUT = 4 << 20
TIMEOUT = 10.0
_X86 = ("x86_64", "i686")
# qemu_capabilities.c, virQEMUCapsCPUFilterFeatures (libvirt 9.0): never given to QEMU
QEMU_FILTERED = frozenset({"cmt", "mbm_total", "mbm_local", "osxsave", "ospke"})


class BaselineError(Exception):
    """Inputs that have no common CPU, or that are not a host's CPU."""


@dataclass(frozen=True)
class HostCpuDef:
    """One host's CPU as its capabilities XML names it."""

    source: str
    arch: str
    model: str
    vendor: str | None
    features: tuple[str, ...]
    disabled: tuple[str, ...] = ()  # a guest CPU's (policy disable or forbid)


@dataclass(frozen=True)
class Baseline:
    model: str
    vendor: str | None
    required: tuple[str, ...]
    disabled: tuple[str, ...]
    forbid_fallback: bool

    def xml(self) -> str:
        """As ``virsh cpu-baseline`` prints it."""
        fallback = "forbid" if self.forbid_fallback else "allow"
        lines = ["<cpu mode='custom' match='exact'>", f"  <model fallback='{fallback}'>{_esc(self.model)}</model>"]
        if self.vendor:
            lines.append(f"  <vendor>{_esc(self.vendor)}</vendor>")
        lines += [f"  <feature policy='require' name='{_esc(n)}'/>" for n in self.required]
        lines += [f"  <feature policy='disable' name='{_esc(n)}'/>" for n in self.disabled]
        lines.append("</cpu>")
        return "\n".join(lines) + "\n"


def host_cpus(data: bytes, source: str) -> list[HostCpuDef]:
    """Every CPU definition of a document, as ``virsh cpu-baseline`` finds them: each
    ``<cpu>`` not inside ``<cpus>`` (a capabilities document has one, the host's;
    several documents may be wrapped or concatenated in one file)."""
    try:
        root = xmltext.parse(data, MAX_INPUT, source)
    except xmltext.XmlRefused as error:
        if "junk after document element" not in str(error):
            raise BaselineError(str(error)) from None
        try:
            root = xmltext.parse(b"<container>" + _without_declarations(data) + b"</container>", MAX_INPUT + 64, source)
        except xmltext.XmlRefused as again:
            raise BaselineError(str(again)) from None
    listed = {id(c) for cpus in root.iter("cpus") for c in cpus}
    found = [_cpu(cpu, source) for cpu in root.iter("cpu") if id(cpu) not in listed]
    if not found:
        raise BaselineError(f"{source}: no host <cpu> element")
    return found


def host_cpu(data: bytes, source: str) -> HostCpuDef:
    """The one CPU of a host's capabilities document (or of a bare ``<cpu>``)."""
    return host_cpus(data, source)[0]


def _without_declarations(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if not line.lstrip().startswith(b"<?xml"))


def _cpu(cpu: ET.Element, source: str) -> HostCpuDef:
    model = (cpu.findtext("model") or "").strip()
    if not model:
        raise BaselineError(f"{source}: missing CPU model name")
    features, disabled = [], []
    for feature in cpu.findall("feature"):
        policy = feature.get("policy", "require")
        if policy in ("require", "force"):
            features.append(feature.get("name", ""))
        elif policy in ("disable", "forbid"):
            disabled.append(feature.get("name", ""))
        elif policy != "optional":
            raise BaselineError(f"{source}: feature policy {policy!r}")
    return HostCpuDef(
        source=source,
        arch=(cpu.findtext("arch") or "").strip(),
        model=model,
        vendor=(cpu.findtext("vendor") or "").strip() or None,
        features=tuple(features),
        disabled=tuple(disabled),
    )


def baseline(hosts: Sequence[HostCpuDef], cpu_map: CpuMap, *, qemu_filter: bool = True) -> Baseline:
    """The CPU every host in `hosts` can run; `qemu_filter`: without the features the
    QEMU driver never passes on (as ``virsh cpu-baseline`` prints it; libvirt's own
    ``virCPUBaseline`` keeps them)."""
    if not hosts:
        raise BaselineError("no hosts")
    bits: set[Bit] | None = None
    vendor: str | None = None
    names: list[str] = []
    for index, host in enumerate(hosts):
        host_bits, named = _host(index, host, cpu_map)
        if named and vendor is None:
            vendor = named
        elif named and vendor != named:
            raise BaselineError("CPU vendors do not match")
        if host.model not in names:
            names.append(host.model)
        bits = set(host_bits) if bits is None else bits & host_bits
    if not bits:
        raise BaselineError("CPUs are incompatible")
    decoded = x86.decode_guest(frozenset(bits), cpu_map, vendor, names)
    if decoded is None:
        raise BaselineError("cannot find a suitable CPU model for the common features")
    return Baseline(
        model=decoded.model,
        vendor=vendor if all(h.vendor for h in hosts) else None,
        required=tuple(n for n in decoded.features if not (qemu_filter and n in QEMU_FILTERED)),
        disabled=tuple(n for n in decoded.disabled if not (qemu_filter and n in QEMU_FILTERED)),
        forbid_fallback=len(names) == 1 and decoded.model == names[0],
    )


def _host(index: int, host: HostCpuDef, cpu_map: CpuMap) -> tuple[frozenset[Bit], str | None]:
    """A host's CPU bits and the vendor it counts with (its own; after the first host,
    else its model's)."""
    if host.arch and host.arch not in _X86:
        raise BaselineError(f"{host.source}: arch {host.arch}: only x86 CPUs are baselined here")
    model = cpu_map.model(host.model)
    if model is None:
        raise BaselineError(f"{host.source}: unknown CPU model {host.model}")
    try:
        host_bits = x86.model_bits(host.model, host.features, cpu_map, host.disabled)
    except KeyError as error:
        raise BaselineError(f"{host.source}: unknown CPU feature {error.args[0]}") from None
    if index and host.vendor and model.vendor and host.vendor != model.vendor:
        raise BaselineError(f"{host.source}: vendor {host.vendor} differs from {model.name}'s {model.vendor}")
    named = host.vendor or (model.vendor if index else None)
    if named and named not in cpu_map.x86_vendors:
        raise BaselineError(f"{host.source}: unknown CPU vendor {named}")
    return host_bits, named


def fetch(source: str) -> bytes:
    """The document at a URL (http, https) or in a file, at most `MAX_INPUT` bytes."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "application/xml"})  # noqa: S310 - scheme checked
        opener = urllib.request.build_opener(_HttpOnlyRedirects)
        with opener.open(request, timeout=TIMEOUT) as response:
            data: bytes = response.read(MAX_INPUT + 1)
    elif "://" in source:
        raise BaselineError(f"{source}: only http, https and files")
    else:
        with open(source, "rb") as handle:
            data = handle.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise BaselineError(f"{source}: larger than {MAX_INPUT} bytes")
    return data


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another http or https URL (urllib would follow ftp)."""

    def redirect_request(  # type: ignore[no-untyped-def]  # noqa: PLR0917 - urllib's signature
        self, req, fp, code, msg, headers, newurl
    ) -> urllib.request.Request | None:
        if not newurl.startswith(("http://", "https://")):
            raise BaselineError(f"{req.full_url}: redirected to {newurl}: only http and https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def main(sources: Sequence[str], cpu_map_dir: str = "/usr/share/libvirt/cpu_map") -> int:
    """Print the pool's CPU for the hosts at `sources`; 0, or 1 with one line on stderr."""
    try:
        hosts = [cpu for source in sources for cpu in host_cpus(fetch(source), source)]
        result = baseline(hosts, load_map(cpu_map_dir))
    except (BaselineError, OSError, ValueError) as error:
        sys.stderr.write(f"host-pm-exporter: baseline: {error}\n")
        return 1
    sys.stdout.write(result.xml())
    return 0


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
