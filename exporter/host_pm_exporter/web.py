"""HTTP: the landing page, the metrics path (text format or OpenMetrics, gzip when
asked), /healthz, and 404/405 where due.  A request never gets a traceback."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import Any, Callable
from urllib.parse import parse_qs
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from host_pm_exporter.render.page import landing_page

log = logging.getLogger("host_pm_exporter.web")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_ALLOWED = "GET, HEAD"
_Response = tuple[str, list[tuple[str, str]], bytes]


def make_app(
    registry: CollectorRegistry,
    telemetry_path: str,
    collectors: Sequence[str] = (),
    probes: Sequence[str] = (),
) -> WSGIApp:
    static: dict[str, _Response] = {
        "/": (
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8")],
            landing_page(telemetry_path, collectors, probes),
        ),
        "/healthz": ("200 OK", [("Content-Type", "text/plain; charset=utf-8")], b"ok\n"),
    }

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path != telemetry_path and path not in static:
            status, headers, body = _text("404 Not Found", f"404 page not found: {path}\n")
        elif method not in ("GET", "HEAD"):
            status, headers, body = _text(
                "405 Method Not Allowed", f"method {method} not allowed\n", [("Allow", _ALLOWED)]
            )
        else:
            try:
                status, headers, body = _metrics(registry, environ) if path == telemetry_path else static[path]
            except Exception:  # never a traceback to the client
                log.exception("request failed", extra={"path": path})
                status, headers, body = _text("500 Internal Server Error", "internal error\n")
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b""] if method == "HEAD" else [body]  # HEAD: the headers of GET, no body

    return app


def _metrics(registry: CollectorRegistry, environ: dict[str, Any]) -> _Response:
    encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
    params = parse_qs(environ.get("QUERY_STRING", ""))
    source: Collector = registry
    if "name[]" in params:
        source = _NameFilter(registry, params["name[]"])
    body = encoder(source)
    headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
    if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
        body = gzip.compress(body, compresslevel=5)
        headers.append(("Content-Encoding", "gzip"))
    return "200 OK", headers, body


class _NameFilter(Collector):
    """Only the samples named in ``?name[]=...`` (as prometheus_client's own handler).

    The registry's restricted_registry() cannot be used: it finds collectors through
    describe(), which the snapshot collector leaves empty so that registering it does
    not scrape the host.
    """

    def __init__(self, registry: CollectorRegistry, names: Iterable[str]) -> None:
        self._registry = registry
        self._names = set(names)

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            kept = [s for s in metric.samples if s.name in self._names]
            if kept:
                copy = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                copy.samples = kept
                yield copy


def _text(status: str, text: str, extra: list[tuple[str, str]] | None = None) -> _Response:
    return status, [("Content-Type", "text/plain; charset=utf-8"), *(extra or [])], text.encode()


class _ServerHandler(ServerHandler):
    http_version = "1.1"


class _Handler(WSGIRequestHandler):
    """wsgiref's handler, but HTTP/1.1 with keep-alive: Prometheus reuses its connection
    from scrape to scrape, and every response here carries a Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle kept-alive connection is closed after a minute

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm holds
        # the body back for the client's delayed ACK (40 ms) on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        self.close_connection = True
        self._handle_one()
        while not self.close_connection:
            self._handle_one()

    def _handle_one(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:  # idle timeout (socket.timeout on 3.9), reset by the peer
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            self.close_connection = True
            return
        if self.headers.get("Content-Length", "0").strip() != "0" or "Transfer-Encoding" in self.headers:
            # No route takes a body, and it is never read: answer, then close, rather
            # than parse the body as the next request.
            self.close_connection = True
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            # ":port" means every address, IPv4 included, as with node_exporter.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


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


def make_server(host: str, port: int, app: WSGIApp) -> WSGIServer:
    """Bind the server; an empty host means every address (IPv6 and IPv4 where possible)."""
    if host == "":
        candidates = [(socket.AF_INET, "0.0.0.0")]  # noqa: S104 - ":port" means every address
        if socket.has_ipv6:
            candidates.insert(0, (socket.AF_INET6, "::"))
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        candidates = [(family, str(addr[0])) for family, _, _, _, addr in infos]
    error: OSError | None = None
    for family, address in candidates:
        server_class = type("Server", (_Server,), {"address_family": family})
        try:
            server: WSGIServer = server_class((address, port), _Handler)
        except OSError as err:
            error = err
            continue
        server.set_app(app)
        return server
    raise error or OSError(f"cannot listen on {host}:{port}")


def serve_until_stopped(server: WSGIServer, stop: threading.Event) -> None:
    """Serve until `stop` is set (by a signal handler), then close the socket."""

    def wait_then_shutdown() -> None:
        stop.wait()
        server.shutdown()

    waiter = threading.Thread(target=wait_then_shutdown, daemon=True)
    waiter.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
