"""From a `Config` to the working parts: the exposition the metrics path serves, and the
views bound to fresh readings of the host (the HTTP routes and the one-shot outputs
both come from the views table)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Callable

from host_pm_exporter.cli import Config
from host_pm_exporter.facts import HOST_DETAILS, Gatherer, HostSnapshot, host_details
from host_pm_exporter.reading import GivenSnapshot, SharedReadings, build_snapshot
from host_pm_exporter.views.exposition import Exposition, RuntimeCollector
from host_pm_exporter.views.process import ProcessMetrics
from host_pm_exporter.views.table import VIEWS, Shown, View


def make_exposition(config: Config) -> Exposition:
    """What the metrics path serves: a fresh (or in-flight) reading per scrape."""
    runtime: list[RuntimeCollector] = []
    if config.exporter_metrics != "none":
        runtime.append(ProcessMetrics())
    if config.exporter_metrics == "all":  # prometheus_client's Python collectors
        from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector  # noqa: PLC0415

        python = CollectorRegistry(auto_describe=False)
        PlatformCollector(registry=python)
        GCCollector(registry=python)
        runtime.append(python)
    return Exposition(
        SharedReadings(config.snapshot), config.collectors, config.snapshot.probes, config.durations, runtime
    )


def shown(config: Config, snapshot: HostSnapshot, exposition: Exposition, colour: bool = False) -> Shown:
    return Shown(
        snapshot,
        exposition,
        config.telemetry_path,
        [c.name for c in config.collectors],
        config.snapshot.probes,
        colour,
    )


def needs(config: Config, view: View) -> tuple[Gatherer, ...]:
    """What `view` reads beyond the collectors, as the flags shape it: with
    --capabilities.cpuid the host details read the CPUID device too."""
    details = host_details(cpuid=config.capabilities_cpuid)
    return tuple(details if need is HOST_DETAILS else need for need in view.needs)


def pages(config: Config, exposition: Exposition) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """The HTTP routes of the views other than the metrics path (served apart, with
    content negotiation): each renders a fresh reading of everything it needs."""

    def page(view: View) -> Callable[[], bytes]:
        gatherers = (*config.collectors, *needs(config, view))

        def render() -> bytes:
            snapshot = exposition.readings.read(gatherers, config.snapshot.probes)
            return view.render(shown(config, snapshot, exposition))

        return render

    return {v.route: (v.content_type, page(v)) for v in VIEWS if v.route is not None and v.name != "metrics"}


def one_reading(config: Config, view: View) -> tuple[HostSnapshot, Exposition]:
    """Read the host once for `view`; the exposition renders that reading (no process
    metrics: they would describe a process that is about to exit, and clash in
    node_exporter)."""
    gatherers = (*config.collectors, *needs(config, view))
    snapshot = build_snapshot(replace(config.snapshot, collectors=gatherers))
    return snapshot, Exposition(GivenSnapshot(snapshot), config.collectors, config.snapshot.probes, config.durations)


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
