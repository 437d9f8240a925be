"""What each path answers: the landing page, the metrics path (text format or
OpenMetrics, gzip when asked), /healthz and 404 (the server in `web` does the rest)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs

from host_pm_exporter.facts import HostSnapshot
from host_pm_exporter.families import gzip_accepted, negotiate
from host_pm_exporter.views.exposition import Exposition, Plan


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def text(status: int, body: str, extra: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", "text/plain; charset=utf-8"), *extra], body.encode())


class Routes:
    """What each path answers.  `health` returns why the exporter is unhealthy, or None;
    `pages` (path -> content type and render, from the views table), like `page` and
    `capabilities`, render a fresh reading of the host, as the metrics path does."""

    def __init__(
        self,
        registry: Exposition,
        telemetry_path: str,
        health: Callable[[], str | None] = lambda: None,
        page: Callable[[], bytes] | None = None,
        capabilities: Callable[[], bytes] | None = None,
        *,
        pages: Mapping[str, tuple[str, Callable[[], bytes]]] | None = None,
    ) -> None:
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.health = health
        self.pages: dict[str, tuple[str, Callable[[], bytes]]] = {}
        if page is not None:
            self.pages["/"] = ("text/html; charset=utf-8", page)
        if capabilities is not None:
            self.pages["/capabilities"] = ("application/xml; charset=utf-8", capabilities)
        self.pages.update(pages or {})

    def static(self, path: str) -> Response | None:
        """The answer for a path that needs no reading of the host; None for those that do."""
        if path == self.telemetry_path or path in self.pages:
            return None
        if path == "/healthz":
            problem = self.health()
            return text(200, "ok\n") if problem is None else text(503, f"unhealthy: {problem}\n")
        return text(404, f"404 page not found: {path}\n")

    def page(self, path: str) -> Response:
        """A page that reads the host (the status page, the capabilities XML), in a
        request worker."""
        content_type, render = self.pages[path]
        return Response(200, [("Content-Type", content_type)], render())

    def metrics(self, accept: str, accept_encoding: str, query: str) -> Response:
        """One scrape, read in this thread and rendered (the server reads and renders in
        `Server._metrics` instead, without a thread of its own; this is the same answer)."""
        plan = self.registry.plan(parse_qs(query).get("name[]"))
        snap = self.registry.readings.read(plan.collectors, plan.probes)
        return self.scrape_response(accept, accept_encoding, plan, snap)

    def runtime_text(self, accept: str, plan: Plan) -> list[str] | None:
        """The exporter's own families, now, in the format the client asks for
        (`Exposition.runtime_text`), for `scrape_response` to take."""
        openmetrics, _, escaping, version = negotiate(accept)
        return self.registry.runtime_text(plan, openmetrics, escaping, version)

    def scrape_response(
        self, accept: str, accept_encoding: str, plan: Plan, snap: HostSnapshot, runtime: list[str] | None = None
    ) -> Response:
        """One reading as the metrics path answers it (`Exposition.body`), in the format
        the client asks for; `runtime`: `runtime_text`, taken earlier in the scrape."""
        openmetrics, content_type, escaping, version = negotiate(accept)
        body = self.registry.body(plan, snap, openmetrics, escaping, version, runtime=runtime)
        return _response(content_type, accept_encoding, body)


def _response(content_type: str, accept_encoding: str, body: bytes) -> Response:
    headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body, compresslevel=5)
        headers.append(("Content-Encoding", "gzip"))
    return Response(200, headers, body)
