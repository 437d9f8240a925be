"""The command line: node_exporter-style flags -> `Config`.  Each collector adds its own
flags (`Collector.flags`); the one-shot flags come from the views table, but for
``--capabilities-baseline``, which reads other hosts' XML, not this host."""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from host_pm_exporter import __version__, logs
from host_pm_exporter.collectors import REGISTRY, enabled
from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.probes import PROBES, pmutils
from host_pm_exporter.reading import SnapshotConfig
from host_pm_exporter.replay import Memory
from host_pm_exporter.views.table import VIEWS, View
from host_pm_exporter.web import Limits

DEFAULT_PORT = 8731
EXPORTER_LEVELS = ("none", "process", "all")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")


@dataclass
class Config:
    listen: tuple[str, int]
    telemetry_path: str
    web_config: str | None
    limits: Limits
    collectors: tuple[Collector[Any], ...]
    snapshot: SnapshotConfig
    exporter_metrics: str  # none, process, all
    log_level: str
    log_format: str
    one_shot: View | None = None  # the view to print (or write) once, then exit
    capabilities_cpuid: bool = False  # the capabilities XML's x86 CPU from the CPUID device
    capabilities_baseline: tuple[str, ...] = ()  # a one-shot of its own: the pool's common CPU of these XMLs
    textfile_directory: str | None = None

    @property
    def durations(self) -> bool:
        """host_exporter_collector_duration_seconds and host_pm_probe_duration_seconds."""
        return self.exporter_metrics == "all"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad flag is one line on stderr and exit status 2, no usage dump."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_duration(value: str) -> float:
    """Seconds from ``2s``, ``500ms``, ``1m`` or a bare number of seconds.

    >>> parse_duration("500ms"), parse_duration("2s"), parse_duration("1.5")
    (0.5, 2.0, 1.5)
    """
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {value!r} (examples: 2s, 500ms)")
    seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, not {value!r}")
    return seconds


def parse_probes(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown probe {unknown[0]!r} (choose from {', '.join(PROBES)})")
    return tuple(dict.fromkeys(names))


def _absolute_path(value: str) -> str:
    if not os.path.isabs(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an absolute path")
    return value


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split ``host:port``, ``:port`` or ``[v6]:port``.

    >>> parse_listen_address(":8731"), parse_listen_address("[::1]:80")
    (('', 8731), ('::1', 80))
    """
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"invalid listen address {value!r}: expected [host]:port")
        port = rest[1:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"invalid listen address {value!r}: expected host:port or :port")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid port in listen address {value!r}")
    return host, int(port)


def _listen(value: str) -> tuple[str, int]:
    try:
        return parse_listen_address(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value!r}")
    return int(value)


def _telemetry_path(value: str) -> str:
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"telemetry path must start with '/', not {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="host-pm-exporter",
        description="Prometheus exporter: which sleep states this host really supports.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--web.listen-address",
        dest="listen",
        type=_listen,
        default=f":{DEFAULT_PORT}",
        help="address to listen on: host:port, :port or [v6]:port",
    )
    add(
        "--web.telemetry-path",
        dest="telemetry_path",
        type=_telemetry_path,
        default="/metrics",
        help="path under which to expose metrics",
    )
    add(
        "--web.config.file",
        dest="web_config",
        type=_absolute_path,
        default=None,
        help="exporter-toolkit web config (TLS, client certificates, basic auth, headers); re-read on change",
    )
    add(
        "--web.max-connections",
        dest="max_connections",
        type=_positive_int,
        default=512,
        help="open connections at most, from accept; at the cap, the one waiting longest for a request is closed",
    )
    add(
        "--web.max-requests",
        dest="max_requests",
        type=_positive_int,
        default=40,
        help="scrapes in parallel at most; more get 503",
    )
    add(
        "--web.read-header-timeout",
        dest="read_header_timeout",
        type=parse_duration,
        default="10s",
        help="how long a client may take to send a request's headers",
    )
    add(
        "--web.tls-handshake-timeout",
        dest="tls_handshake_timeout",
        type=parse_duration,
        default="5s",
        help="how long a client may take to complete a TLS handshake",
    )
    add(
        "--web.idle-timeout",
        dest="idle_timeout",
        type=parse_duration,
        default="60s",
        help="how long a kept-alive connection may sit idle",
    )
    add(
        "--scrape.timeout",
        dest="scrape_timeout",
        type=parse_duration,
        default="9s",
        help="how long the host's files may take to read; a collector still reading reports 0",
    )
    add(
        "--web.exporter-metrics",
        dest="exporter_metrics",
        choices=EXPORTER_LEVELS,
        default="process",
        help="the exporter's own metrics: none; process (process_*, the default); all (also python_* "
        "and how long each collector and probe took)",
    )
    add(
        "--web.disable-exporter-metrics",
        dest="exporter_metrics",
        action="store_const",
        const="none",
        help="same as --web.exporter-metrics=none",
    )
    add("--path.procfs", dest="procfs", default="/proc", help="procfs mountpoint")
    add("--path.sysfs", dest="sysfs", default="/sys", help="sysfs mountpoint")
    add("--path.rootfs", dest="rootfs", default="/", help="rootfs mountpoint")
    add(
        "--path.kept-files",
        dest="kept_files",
        type=int,
        default=-1,
        metavar="N",
        help="keep up to N sysfs and procfs attribute files open between scrapes and read them again in "
        "place (every scrape still reads the host afresh; about 4 KiB of kernel memory each); 0: open "
        "every file on every scrape; default: half of the open-file limit left after --web.max-connections, "
        "at most 8192",
    )
    add(
        "--collector.disable-defaults",
        dest="disable_defaults",
        action="store_true",
        help="enable only the collectors named with --collector.<name>",
    )
    for spec in REGISTRY:
        add(
            f"--collector.{spec.name}",
            dest=f"collector_{spec.name}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"{spec.help} (default: {'enabled' if spec.default else 'disabled'})",
        )
    for spec in REGISTRY:
        if spec.flags is not None:
            spec.flags(add)
    add(
        "--pm.probes",
        dest="probes",
        type=parse_probes,
        default=",".join(PROBES),
        help="comma-separated sleep probes to run on every scrape: kernel, logind, pm-utils",
    )
    add(
        "--pm.probe-timeout",
        dest="probe_timeout",
        type=parse_duration,
        default="2s",
        help="how long each probe may take before it counts as failed",
    )
    add(
        "--pm.pm-is-supported",
        dest="pm_is_supported",
        type=_absolute_path,
        default=pmutils.DEFAULT_PATH,
        help="absolute path of pm-utils' pm-is-supported",
    )
    add(
        "--log.level",
        dest="log_level",
        choices=list(logs.LEVELS),
        default="info",
        help="only log messages of this severity or above",
    )
    add(
        "--log.format",
        dest="log_format",
        choices=["logfmt", "json"],
        default="logfmt",
        help="output format of log messages",
    )
    one_shot = parser.add_mutually_exclusive_group()
    for view in VIEWS:
        if view.flag is None:
            continue
        if view.to_directory:
            one_shot.add_argument(view.flag, dest=f"view_{view.name}", type=_absolute_path, default=None,
                                  metavar="TEXTFILE_DIRECTORY", help=view.help)  # fmt: skip
        else:
            one_shot.add_argument(view.flag, dest=f"view_{view.name}", action="store_true", help=view.help)
    add(
        "--capabilities.cpuid",
        dest="capabilities_cpuid",
        action="store_true",
        help="name the x86 CPU in the capabilities XML from /dev/cpu/N/cpuid where readable (root, cpuid module)",
    )
    one_shot.add_argument(
        "--capabilities-baseline",
        dest="capabilities_baseline",
        nargs="+",
        metavar="URL_OR_FILE",
        default=(),
        help="print the CPU every host can run, from their capabilities XML (as virsh cpu-baseline), and exit",
    )
    add(
        "--version",
        action="version",
        version=f"host-pm-exporter, version {__version__} (python {sys.version.split()[0]})",
    )
    return parser


def kept_files_default(max_connections: int, reserve: int = 64) -> int:
    """How many files to keep open when not told: half of what the open-file limit
    leaves after the connections and a reserve (the listening socket, the probes'
    pipes, the status page's reads), at most 8192 (a 1,024-CPU host reads ~7,000)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(0, min(8192, (soft - max_connections - reserve) // 2))


def parse_config(argv: Sequence[str] | None = None) -> Config:
    args = build_parser().parse_args(argv)
    chosen = enabled({c.name: getattr(args, f"collector_{c.name}") for c in REGISTRY}, args.disable_defaults)
    collectors = tuple(c.with_flags(args) for c in chosen)
    one_shot = next((v for v in VIEWS if v.flag is not None and getattr(args, f"view_{v.name}")), None)
    keep = args.kept_files if args.kept_files >= 0 else kept_files_default(args.max_connections)
    fs = HostFS(procfs=args.procfs, sysfs=args.sysfs, rootfs=args.rootfs, keep=keep)
    return Config(
        listen=args.listen,
        telemetry_path=args.telemetry_path,
        web_config=args.web_config,
        limits=Limits(
            max_connections=args.max_connections,
            max_requests=args.max_requests,
            read_header_timeout=args.read_header_timeout,
            tls_handshake_timeout=args.tls_handshake_timeout,
            idle_timeout=args.idle_timeout,
        ),
        collectors=collectors,
        snapshot=SnapshotConfig(
            fs=fs,
            collectors=collectors,
            probes=args.probes,
            probe_timeout=args.probe_timeout,
            pm_is_supported=args.pm_is_supported,
            timeout=args.scrape_timeout,
            memory=Memory(),
        ),
        exporter_metrics=args.exporter_metrics,
        log_level=args.log_level,
        log_format=args.log_format,
        one_shot=one_shot,
        capabilities_cpuid=args.capabilities_cpuid,
        capabilities_baseline=tuple(args.capabilities_baseline),
        textfile_directory=args.view_textfile,
    )
