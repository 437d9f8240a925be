"""Command line: node_exporter-style flags -> `Config`; then serve."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from host_pm_exporter import __version__, logs
from host_pm_exporter.collectors import REGISTRY, Collector, enabled
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.probes import PROBES, pmutils
from host_pm_exporter.render.metrics import SnapshotCollector
from host_pm_exporter.render.options import RenderOptions
from host_pm_exporter.snapshot import SnapshotConfig, build_snapshot
from host_pm_exporter.web import make_app, make_server, parse_listen_address, serve_until_stopped

log = logging.getLogger("host_pm_exporter.cli")

DEFAULT_PORT = 8731
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")


@dataclass
class Config:
    listen: tuple[str, int]
    telemetry_path: str
    collectors: tuple[Collector[Any], ...]
    snapshot: SnapshotConfig
    exporter_metrics: bool
    render: RenderOptions
    log_level: str
    log_format: str


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


def _listen(value: str) -> tuple[str, int]:
    try:
        return parse_listen_address(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"invalid regex {value!r}: {err}") from None


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
        "--web.disable-exporter-metrics",
        dest="exporter_metrics",
        action="store_false",
        help="leave out the exporter's own process_* and python_* metrics",
    )
    add("--path.procfs", dest="procfs", default="/proc", help="procfs mountpoint")
    add("--path.sysfs", dest="sysfs", default="/sys", help="sysfs mountpoint")
    add("--path.rootfs", dest="rootfs", default="/", help="rootfs mountpoint")
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
    add(
        "--collector.cpu.flags-include",
        dest="flags_include",
        type=_regex,
        default=None,
        help="only CPU flags matching this regex in host_cpu_flag_info (default: all)",
    )
    add(
        "--collector.cpu.flags-exclude",
        dest="flags_exclude",
        type=_regex,
        default=None,
        help="leave out CPU flags matching this regex from host_cpu_flag_info",
    )
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
    add(
        "--version",
        action="version",
        version=f"host-pm-exporter, version {__version__} (python {sys.version.split()[0]})",
    )
    return parser


def parse_config(argv: Sequence[str] | None = None) -> Config:
    args = build_parser().parse_args(argv)
    collectors = enabled({c.name: getattr(args, f"collector_{c.name}") for c in REGISTRY}, args.disable_defaults)
    fs = HostFS(procfs=args.procfs, sysfs=args.sysfs, rootfs=args.rootfs)
    return Config(
        listen=args.listen,
        telemetry_path=args.telemetry_path,
        collectors=collectors,
        snapshot=SnapshotConfig(
            fs=fs,
            collectors=collectors,
            probes=args.probes,
            probe_timeout=args.probe_timeout,
            pm_is_supported=args.pm_is_supported,
        ),
        exporter_metrics=args.exporter_metrics,
        render=RenderOptions(flags_include=args.flags_include, flags_exclude=args.flags_exclude),
        log_level=args.log_level,
        log_format=args.log_format,
    )


def make_registry(config: Config) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if config.exporter_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    registry.register(SnapshotCollector(lambda: build_snapshot(config.snapshot), config.collectors, config.render))
    return registry


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logs.setup(config.log_level, config.log_format)
    app = make_app(
        make_registry(config),
        config.telemetry_path,
        collectors=[c.name for c in config.collectors],
        probes=config.snapshot.probes,
    )
    host, port = config.listen
    try:
        server = make_server(host, port, app)
    except OSError as err:
        log.error("cannot listen", extra={"address": f"{host}:{port}", "err": err.strerror or err})
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    log.info(
        "listening",
        extra={
            "address": f"[{bound_host}]:{bound_port}" if ":" in str(bound_host) else f"{bound_host}:{bound_port}",
            "version": __version__,
            "collectors": ",".join(c.name for c in config.collectors),
            "probes": ",".join(config.snapshot.probes),
        },
    )
    serve_until_stopped(server, stop)
    return 0
