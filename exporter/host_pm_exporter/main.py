"""What the exporter does once its flags are parsed: print (or write) one view of one
reading and exit, print a pool's common CPU (--capabilities-baseline) and exit, or
serve."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from host_pm_exporter import __version__, logs
from host_pm_exporter.cli import Config, parse_config
from host_pm_exporter.probes import pmutils
from host_pm_exporter.reading import watchdog
from host_pm_exporter.views.table import TEXTFILE, View
from host_pm_exporter.web import Routes, Server, listen, quiet_wakeup_fd
from host_pm_exporter.webconfig import WebConfigError, WebConfigSource
from host_pm_exporter.wiring import make_exposition, one_reading, pages, shown, write_textfile

log = logging.getLogger("host_pm_exporter.main")


def run_once(config: Config, view: View) -> int:
    """`view` of one reading on stdout (or into the textfile directory); 0 when every
    collector succeeded, else 1 (a textfile written is 0)."""
    snapshot, exposition = one_reading(config, view)
    healthy = all(snapshot.sections[c.name].ok for c in config.collectors)
    data = view.render(shown(config, snapshot, exposition, colour=sys.stdout.isatty()))
    if config.textfile_directory is not None:
        path = os.path.join(config.textfile_directory, TEXTFILE)
        try:
            write_textfile(path, data)
        except OSError as err:
            log.error("cannot write the textfile", extra={"file": path, "err": err.strerror or err})
            return 1
        return 0
    sys.stdout.write(data.decode())
    sys.stdout.flush()
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logs.setup(config.log_level, config.log_format)
    if config.capabilities_baseline:  # other hosts' XML, not a view of this host
        from host_pm_exporter.cpumap import baseline  # noqa: PLC0415 (only this one-shot needs it: urllib)

        return baseline.main(config.capabilities_baseline)
    if config.one_shot is not None:
        return run_once(config, config.one_shot)
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
    exposition = make_exposition(config)
    routes = Routes(exposition, config.telemetry_path, health=watchdog.problem, pages=pages(config, exposition))
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
    asyncio.run(_serve(server, early_stop))
    pmutils.kill_all()  # no probe outlives the exporter
    return 0


async def _serve(server: Server, early_stop: list[signal.Signals]) -> None:
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
