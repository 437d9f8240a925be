"""HTTP: the landing page, the metrics path (text format or OpenMetrics, gzip when
asked), /healthz, and 404/405 where due; on a front that no client can take down.

The front is asyncio with h11 parsing the protocol (a sans-IO HTTP/1.1 library: request
lines, header framing, Content-Length rules and keep-alive are its, not ours).  A
connection is a coroutine, not a thread, so slow or idle clients cost a few kilobytes
each.  A scrape's reading of the host runs on a reading worker, within the scrape and
probe timeouts, and the loop renders it; the status page and the capabilities XML run
on request workers.  The limits:

- at most `max_connections` open connections; one more is answered 503 and closed;
- a request's headers must be complete within `read_header_timeout` (counted from the
  connection's start, or from the first byte of a later request), an idle kept-alive
  connection is closed after `idle_timeout`, a response that the client does not read
  is abandoned after `write_timeout`;
- a request runs only once its headers are complete; at most `max_requests` scrapes run
  at once, more get 503 (node_exporter's --web.max-requests);
- anything malformed gets a status line (400, 413, 431 or 505) and the connection
  closes; no response names the server's software.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import gzip
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from host_pm_exporter.address import Limits
from host_pm_exporter.families import AnyFamily, encode, gzip_accepted, negotiate
from host_pm_exporter.logs import Once
from host_pm_exporter.views.exposition import Exposition
from host_pm_exporter.webconfig import Authenticator, WebConfig, WebConfigSource
from host_pm_exporter.workers import Workers

log = logging.getLogger("host_pm_exporter.web")

_ALLOWED = "GET, HEAD"
_MAX_BODY = 64 * 1024  # no route takes a body: a little is read and dropped, more is refused
_MAX_HEADERS = 16 * 1024
_READ = 64 * 1024


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _text(status: int, text: str, extra: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", "text/plain; charset=utf-8"), *extra], text.encode())


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
            return _text(200, "ok\n") if problem is None else _text(503, f"unhealthy: {problem}\n")
        return _text(404, f"404 page not found: {path}\n")

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
        return self.metrics_response(accept, accept_encoding, self.registry.render(plan, snap))

    def metrics_response(self, accept: str, accept_encoding: str, families: list[AnyFamily]) -> Response:
        """One scrape's families in the format the client asks for (the negotiation
        prometheus_client's handler does)."""
        openmetrics, content_type, escaping, version = negotiate(accept)
        body = encode(families, openmetrics, escaping, version)
        headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
        if gzip_accepted(accept_encoding):
            body = gzip.compress(body, compresslevel=5)
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, headers, body)


class _Closed(Exception):
    """The connection is done: timed out, reset, or answered with an error."""


@dataclass
class _State:
    connections: int = 0
    scrapes: int = 0
    draining: bool = False  # shutting down: answer what is in flight with a close, take no more
    busy: set[asyncio.Task[Any]] = field(default_factory=set)  # connections inside a request


class Server:
    """The HTTP front on one listening socket."""

    def __init__(
        self,
        sock: socket.socket,
        routes: Routes,
        limits: Limits | None = None,
        config: WebConfigSource | None = None,
    ) -> None:
        self.sock = sock
        self.routes = routes
        self.limits = limits or Limits()
        self.config = config or WebConfigSource(None)
        self.auth = Authenticator()
        self.bcrypt_slots: asyncio.Semaphore | None = None  # made in serve(): Python 3.9 binds it to a loop
        self.state = _State()
        self.once = Once(log)

    # -- life cycle --------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then drain the requests in flight (up to
        drain_timeout) and close everything."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        self.bcrypt_slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        context = self.config.server_context()
        server = await asyncio.start_server(
            self._connection,
            sock=self.sock,
            backlog=512,
            ssl=context,
            ssl_handshake_timeout=self.limits.read_header_timeout if context else None,
            limit=_READ,
        )
        try:
            await stop.wait()
        finally:
            self.state.draining = True
            server.close()  # no new connections; the requests in flight may finish
            deadline = time.monotonic() + self.limits.drain_timeout
            while self.state.busy and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.state.busy:
                log.warning("shutting down with requests in flight", extra={"requests": len(self.state.busy)})

    def _loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (accept() out of file descriptors: it pauses accepting for
        a second by itself) go to the log once, without a traceback."""
        err = context.get("exception")
        message = f"{context.get('message', '')}: {err}" if err else str(context.get("message", ""))
        self.once.log("server error", "event loop", message, err=message)

    # -- one connection ----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = self.state
        if state.connections >= self.limits.max_connections:
            why = "too many open connections"
            self.once.log("connection refused", "connections", why, err=why, limit=self.limits.max_connections)
            await self._refuse(writer, 503, why, reader)
            writer.close()
            return
        state.connections += 1
        task = asyncio.current_task()
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADERS)
        abort = False
        try:
            deadline = time.monotonic() + self.limits.read_header_timeout
            while not state.draining:
                request = await self._read_request(conn, reader, deadline)
                if request is None:
                    break
                assert task is not None
                state.busy.add(task)
                try:
                    config = self.config.current()  # per request: a revoked user is refused on a kept connection
                    response = await self._respond(request, config)
                    await self._send(conn, writer, request, response, config)
                finally:
                    state.busy.discard(task)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
                deadline = 0.0  # the next request's header deadline starts at its first byte
        except _Closed:
            abort = True  # timed out: drop it now, whatever is still unsent
        except h11.RemoteProtocolError as err:
            await self._refuse(writer, err.error_status_hint, str(err), reader)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            abort = True
        except Exception:  # a bug of ours: logged with its stack, costs only this connection
            log.exception("connection failed")
            abort = True
        finally:
            state.connections -= 1
            if abort:
                writer.transport.abort()  # close() would wait for a client that never reads
            else:
                writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, deadline: float
    ) -> h11.Request | None:
        """The next request once its headers (and any small body) are complete; None
        when the client closed or went idle between requests."""
        request: h11.Request | None = None
        body = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not deadline:  # between requests: wait for the first byte, then the clock runs
                    data = await self._recv(reader, self.limits.idle_timeout)
                    deadline = time.monotonic() + self.limits.read_header_timeout
                else:
                    data = await self._recv(reader, deadline - time.monotonic())
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
                if request.http_version not in (b"1.0", b"1.1"):
                    raise h11.RemoteProtocolError("unsupported HTTP version", error_status_hint=505)
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > _MAX_BODY:
                    raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None
            elif event is h11.PAUSED:
                return request

    async def _recv(self, reader: asyncio.StreamReader, timeout: float) -> bytes:
        if timeout <= 0:
            raise _Closed
        try:
            return await _within(reader.read(_READ), timeout)
        except asyncio.TimeoutError:
            raise _Closed from None

    async def _respond(self, request: h11.Request, config: WebConfig) -> Response:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        # bcrypt takes 50-250 ms: never on the event loop (its verdicts are cached), and
        # a few at a time, so that a flood of new passwords cannot take every core
        if config.users:
            assert self.bcrypt_slots is not None
            async with self.bcrypt_slots:
                allowed = await _in_thread(self.auth.check, config, headers.get("authorization"))
            if not allowed:
                return _text(401, "401 Unauthorized\n", [("WWW-Authenticate", 'Basic realm="host-pm-exporter"')])
        # origin-form ("/metrics?x"): split it ourselves; urlsplit would read "//metrics" as a host
        raw_path, _, query = target.partition("?") if target.startswith("/") else (urlsplit(target).path, "", "")
        path = unquote(raw_path) or "/"
        static = self.routes.static(path)
        if static is not None and static.status == 404:
            return static
        if method not in ("GET", "HEAD"):
            return _text(405, f"method {method} not allowed\n", [("Allow", _ALLOWED)])
        if static is not None:
            return static
        return await self._scrape(path, headers, query)

    async def _scrape(self, path: str, headers: dict[str, str], query: str) -> Response:
        state = self.state
        if state.scrapes >= self.limits.max_requests:
            why = "too many concurrent scrapes"
            self.once.log("scrape refused", "scrapes", why, err=why, limit=self.limits.max_requests)
            return _text(503, f"too many concurrent scrapes (limit {self.limits.max_requests})\n")
        state.scrapes += 1
        try:
            if path == self.routes.telemetry_path:
                return await self._metrics(headers, query)
            # the page's reading has its own deadline; this one frees the slot if anything else hangs
            return await _within(_in_thread(self.routes.page, path), self.limits.request_timeout)
        except asyncio.TimeoutError:
            self.once.log("request timed out", path, "no answer in time", path=path)
            return _text(503, "the host did not answer in time\n")
        except Exception:  # never a traceback to the client
            log.exception("scrape failed")
            return _text(500, "internal error\n")
        finally:
            state.scrapes -= 1

    async def _metrics(self, headers: dict[str, str], query: str) -> Response:
        """A scrape: the host is read on a reading worker (shared with a scrape already
        reading the same, if any) while this loop waits for the files until the scrape
        timeout and for the probes until theirs; the families are rendered and encoded
        here (a few hundred microseconds, and one thread hand-off instead of two)."""
        exposition = self.routes.registry
        plan = exposition.plan(parse_qs(query).get("name[]"))
        pending = exposition.readings.start(plan.collectors, plan.probes)
        for future, deadline in pending.parts:  # the files, then each probe, each until its deadline
            waiter = asyncio.wrap_future(future)
            waiter.add_done_callback(_retrieved)  # an error is the snapshot's to report, also when late
            await asyncio.wait({waiter}, timeout=max(0.0, deadline - time.monotonic()))  # neither raises nor cancels
        snap = pending.snapshot()  # what is done; never waits
        families = exposition.render(plan, snap)
        return self.routes.metrics_response(headers.get("accept", ""), headers.get("accept-encoding", ""), families)

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        response: Response,
        config: WebConfig,
    ) -> None:
        headers = [
            *response.headers,
            *config.headers,
            ("Content-Length", str(len(response.body))),
            ("Date", http_date(time.time())),
        ]
        if self.state.draining or (response.status >= 400 and response.status not in (401, 404, 405)):
            headers.append(("Connection", "close"))
        reason = HTTPStatus(response.status).phrase.encode()
        out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason)) or b""
        if request.method != b"HEAD":
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        if not writer.transport.get_write_buffer_size():
            return  # the kernel took it all (a scrape's answer mostly fits): nothing to wait for
        try:
            await _within(writer.drain(), self.limits.write_timeout)
        except asyncio.TimeoutError:
            raise _Closed from None

    async def _refuse(
        self, writer: asyncio.StreamWriter, status: int, reason: str, reader: asyncio.StreamReader | None = None
    ) -> None:
        """Answer what cannot be served (a request h11 could not parse, a connection past
        the cap): a status line, a short reason, then close.  Closing with the client's
        bytes unread would reset the connection and lose the answer, so what it sends
        meanwhile is read and dropped, for a moment at most."""
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase.lower()}: {reason}\n".encode()
        log.debug("bad request", extra={"status": status, "reason": reason})
        writer.write(
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
            await _within(writer.drain(), self.limits.write_timeout)
            if writer.can_write_eof():
                writer.write_eof()
            if reader is not None:
                await _within(reader.read(_READ), 0.5)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(when: float) -> str:
    """RFC 9110's IMF-fixdate, in English whatever the locale.

    >>> http_date(0)
    'Thu, 01 Jan 1970 00:00:00 GMT'
    """
    t = time.gmtime(when)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


R = TypeVar("R")


async def _within(awaitable: Awaitable[R], timeout: float) -> R:
    """`awaitable`, or asyncio.TimeoutError after `timeout` seconds: every wait of the
    server.  On Python 3.11 and later by asyncio.timeout, a third of asyncio.wait_for's
    cost (which makes a task per call); a request waits so three or four times."""
    if _timeout is None:
        return await asyncio.wait_for(awaitable, timeout)
    async with _timeout(timeout):
        return await awaitable


_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+


_workers = Workers("request")


def _in_thread(fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
    """Run blocking work (a scrape, a bcrypt check) in a daemon worker thread: one
    stuck in a hung read never keeps the process from exiting, as a thread pool's
    would, and never delays the next request.  Scrapes are capped by max_requests."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(done: concurrent.futures.Future[R]) -> None:
        if future.done():
            return
        error = done.exception()
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result())

    def hand_back(done: concurrent.futures.Future[R]) -> None:  # in the worker thread
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(settle, done)

    _workers.submit(fn, *args).add_done_callback(hand_back)
    return future


def basic_credentials(user: str, password: str) -> str:
    """The Authorization header value for basic auth (for clients and tests)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
