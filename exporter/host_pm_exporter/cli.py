"""Command line: node_exporter-style flags -> `Config`; then serve."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from host_pm_exporter import __version__, logs
from host_pm_exporter.address import Limits, listen, parse_listen_address
from host_pm_exporter.collectors import REGISTRY, Collector, enabled
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.probes import PROBES, pmutils
from host_pm_exporter.render.metrics import Exposition, RuntimeCollector
from host_pm_exporter.render.options import RenderOptions
from host_pm_exporter.render.process import ProcessMetrics
from host_pm_exporter.snapshot import HostSnapshot, Readings, Scrape, SnapshotConfig, Taken, build_snapshot, watchdog
from host_pm_exporter.webconfig import WebConfigError, WebConfigSource

if TYPE_CHECKING:
    from host_pm_exporter.web import Server

log = logging.getLogger("host_pm_exporter.cli")

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
    render: RenderOptions
    log_level: str
    log_format: str
    dump: bool = False
    explain: bool = False
    capabilities: bool = False
    textfile_directory: str | None = None


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


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value!r}")
    return int(value)


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
        help="show the CPU flags matching this regex as host_cpu_flag_info ('.*': all; default: none)",
    )
    add(
        "--collector.cpu.flags-exclude",
        dest="flags_exclude",
        type=_regex,
        default=None,
        help="of the flags --collector.cpu.flags-include shows, leave out those matching this regex",
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
    one_shot = parser.add_mutually_exclusive_group()
    one_shot.add_argument(
        "--dump",
        action="store_true",
        help="print one scrape to stdout and exit: 0 when every collector succeeded, else 1",
    )
    one_shot.add_argument(
        "--explain",
        action="store_true",
        help="say for a person which sleep states this host supports and can use, and why not; exit as --dump",
    )
    one_shot.add_argument(
        "--capabilities",
        action="store_true",
        help="print the host's capabilities as libvirt's XML (as GET /capabilities) and exit as --dump",
    )
    one_shot.add_argument(
        "--textfile.directory",
        dest="textfile_directory",
        type=_absolute_path,
        default=None,
        help="write one scrape atomically to DIR/host_pm_exporter.prom for node_exporter's textfile collector, exit",
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
        ),
        exporter_metrics=args.exporter_metrics,
        render=RenderOptions(
            flags_include=args.flags_include,
            flags_exclude=args.flags_exclude,
            durations=args.exporter_metrics == "all",
        ),
        log_level=args.log_level,
        log_format=args.log_format,
        dump=args.dump,
        explain=args.explain,
        capabilities=args.capabilities,
        textfile_directory=args.textfile_directory,
    )


def make_registry(config: Config) -> Exposition:
    """What the metrics path serves: a fresh (or in-flight) reading per scrape."""
    runtime: list[RuntimeCollector] = []
    if config.exporter_metrics != "none":
        runtime.append(ProcessMetrics())
    if config.exporter_metrics == "all":  # prometheus_client's Python collectors: imported only then
        from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector  # noqa: PLC0415

        python = CollectorRegistry(auto_describe=False)
        PlatformCollector(registry=python)
        GCCollector(registry=python)
        runtime.append(python)
    return Exposition(Readings(config.snapshot), config.collectors, config.snapshot.probes, config.render, runtime)


def write_textfile(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: a reader (the
    textfile collector) never sees half a file.  The temporary file is created anew,
    never through a link someone left in its place."""
    tmp = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # one left by a crash of a process with our number (a link is removed, not followed)
    try:
        with os.fdopen(os.open(tmp, flags, 0o644), "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


TEXTFILE = "host_pm_exporter.prom"


def capabilities_of(snap: HostSnapshot, config: Config) -> bytes:
    """libvirt's host capabilities XML of one reading of the host."""
    from host_pm_exporter.render.capabilities import capabilities_xml  # noqa: PLC0415 (on first use: 0.6 MiB)

    return capabilities_xml(snap, snap.scrape or Scrape(config.snapshot.fs))


def one_scrape(config: Config) -> tuple[HostSnapshot, Exposition]:
    """Read the host once; the exposition renders that reading (no process metrics: they
    would describe a process that is about to exit, and clash in node_exporter)."""
    snap = build_snapshot(config.snapshot)
    return snap, Exposition(Taken(snap), config.collectors, config.snapshot.probes, config.render)


def run_once(config: Config) -> int:
    snap, registry = one_scrape(config)
    healthy = all(section.ok for section in snap.sections.values())
    if config.textfile_directory is not None:
        path = os.path.join(config.textfile_directory, TEXTFILE)
        try:
            write_textfile(path, registry.encode())
        except OSError as err:
            log.error("cannot write the textfile", extra={"file": path, "err": err.strerror or err})
            return 1
        return 0
    if config.explain:
        from host_pm_exporter.render.report import build_report, explain  # noqa: PLC0415

        sys.stdout.write(explain(build_report(snap), colour=sys.stdout.isatty()))
    elif config.capabilities:
        sys.stdout.write(capabilities_of(snap, config).decode())
    else:
        sys.stdout.write(registry.encode().decode())
    sys.stdout.flush()
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logs.setup(config.log_level, config.log_format)
    if config.dump or config.explain or config.capabilities or config.textfile_directory is not None:
        return run_once(config)
    # Until the event loop takes the signals over: a SIGHUP is a re-read the loop will do
    # anyway, a SIGTERM a stop it must still honour; neither may kill the process.
    early_stop: list[signal.Signals] = []
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early_stop.append(signal.Signals(signum)))
    try:
        web_config = WebConfigSource(config.web_config)
    except WebConfigError as err:
        log.error("bad web config", extra={"err": str(err)})
        return 1
    host, port = config.listen
    try:
        sock = listen(host, port)
    except OSError as err:
        log.error("cannot listen", extra={"address": f"{host}:{port}", "err": err.strerror or err})
        return 1
    _import_asyncio(tls=web_config.tls_context() is not None)
    from host_pm_exporter.web import Routes, Server  # noqa: PLC0415 (asyncio: after the line above)

    names = [c.name for c in config.collectors]
    registry = make_registry(config)

    def full_reading() -> HostSnapshot:  # the status page and the capabilities XML: everything
        return registry.readings.read(config.collectors, config.snapshot.probes)

    def page() -> bytes:
        from host_pm_exporter.render.page import status_page  # noqa: PLC0415 (on first use)
        from host_pm_exporter.render.report import build_report  # noqa: PLC0415

        report = build_report(full_reading())
        return status_page(report, config.telemetry_path, names, config.snapshot.probes)

    routes = Routes(
        registry,
        config.telemetry_path,
        health=watchdog.problem,
        page=page,
        capabilities=lambda: capabilities_of(full_reading(), config),
    )
    server = Server(sock, routes, config.limits, web_config)
    bound = sock.getsockname()
    log.info(
        "listening",
        extra={
            "address": f"[{bound[0]}]:{bound[1]}" if ":" in str(bound[0]) else f"{bound[0]}:{bound[1]}",
            "version": __version__,
            "tls": web_config.tls_context() is not None,
            "collectors": ",".join(c.name for c in config.collectors),
            "probes": ",".join(config.snapshot.probes),
        },
    )
    import asyncio  # noqa: PLC0415

    asyncio.run(_serve(server, early_stop))
    pmutils.kill_all()  # no probe outlives the exporter
    return 0


def _import_asyncio(tls: bool) -> None:
    """Import asyncio, without the ssl module unless the server listens with TLS.

    asyncio imports ssl, and OpenSSL with it, whether or not a server uses TLS: 5 MiB of
    resident memory, a sixth of the exporter's.  Without TLS in the web config at start
    (turning TLS on later takes a restart), asyncio is imported as on a Python built
    without ssl, which it supports: ``import ssl`` fails for that moment only, and
    asyncio does without.  Whatever imports ssl later gets it."""
    if tls or "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # makes `import ssl` raise ImportError
    try:
        import asyncio  # noqa: F401, PLC0415
    finally:
        del sys.modules["ssl"]


async def _serve(server: Server, early_stop: list[signal.Signals]) -> None:
    import asyncio  # noqa: PLC0415 (imported by _import_asyncio)

    from host_pm_exporter.web import quiet_wakeup_fd  # noqa: PLC0415 (asyncio: after _import_asyncio)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_stop(sig: signal.Signals) -> None:
        log.info("shutting down", extra={"signal": sig.name})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig)
    loop.add_signal_handler(signal.SIGHUP, server.hangup)
    quiet_wakeup_fd()
    if early_stop:
        on_stop(early_stop[0])
    await server.serve(stop)
