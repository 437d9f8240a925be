"""Every view, declared once: its name, content type, HTTP route, the command-line
flag that prints it once, and how it renders a reading.  The one-shot flags and the
HTTP routes both come from `VIEWS`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from host_pm_exporter.facts import HOST_DETAILS, Gatherer, HostSnapshot
from host_pm_exporter.families import TEXT_0_0_4
from host_pm_exporter.views.exposition import Exposition
from host_pm_exporter.views.page import status_page
from host_pm_exporter.views.report import build_report, explain


@dataclass(frozen=True)
class Shown:
    """What a view renders: one reading of the host, the exposition bound to it, and
    what the exporter was asked to run."""

    snapshot: HostSnapshot
    exposition: Exposition
    telemetry_path: str
    collectors: Sequence[str]
    probes: Sequence[str]
    colour: bool = False  # a terminal that takes colours


@dataclass(frozen=True)
class View:
    name: str
    content_type: str
    route: str | None  # the HTTP path; None: not served
    flag: str | None  # the command-line flag that prints it once and exits; None: none
    help: str
    render: Callable[[Shown], bytes]
    needs: tuple[Gatherer, ...] = ()  # facts it reads beyond the collectors'
    to_directory: bool = False  # its flag names a directory the view is written to (atomically)


def _capabilities(shown: Shown) -> bytes:
    """The capabilities XML; its module and libvirt's CPU map load on first use."""
    from host_pm_exporter.views.capabilities import capabilities_xml  # noqa: PLC0415

    return capabilities_xml(shown.snapshot)


TEXTFILE = "host_pm_exporter.prom"

VIEWS: tuple[View, ...] = (
    View(
        "metrics",
        TEXT_0_0_4,
        "/metrics",  # --web.telemetry-path; served with content negotiation, gzip and name[]
        "--dump",
        "print one scrape to stdout and exit: 0 when every collector succeeded, else 1",
        lambda shown: shown.exposition.encode(),
    ),
    View(
        "status",
        "text/html; charset=utf-8",
        "/",
        None,
        "the page at /: sleep states, wake sources, CPU and collector health for a person",
        lambda shown: status_page(build_report(shown.snapshot), shown.telemetry_path, shown.collectors, shown.probes),
    ),
    View(
        "explain",
        "text/plain; charset=utf-8",
        None,
        "--explain",
        "say for a person which sleep states this host supports and can use, and why not; exit as --dump",
        lambda shown: explain(build_report(shown.snapshot), shown.colour).encode(),
    ),
    View(
        "capabilities",
        "application/xml; charset=utf-8",
        "/capabilities",
        "--capabilities",
        "print the host's capabilities as libvirt's XML (as GET /capabilities) and exit as --dump",
        _capabilities,
        needs=(HOST_DETAILS,),
    ),
    View(
        "textfile",
        TEXT_0_0_4,
        None,
        "--textfile.directory",
        f"write one scrape atomically to DIR/{TEXTFILE} for node_exporter's textfile collector, exit",
        lambda shown: shown.exposition.encode(),
        to_directory=True,
    ),
)

BY_NAME = {view.name: view for view in VIEWS}
