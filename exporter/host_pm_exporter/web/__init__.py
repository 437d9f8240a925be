"""HTTP: the front that faces the network, on a listening socket no client can take down.

asyncio with h11 parsing the protocol (a sans-IO HTTP/1.1 library: request lines, header
framing, Content-Length rules and keep-alive are its, not ours); TLS driven here through
memory BIOs (`streams`).  A connection is a coroutine, not a thread, so slow or idle
clients cost a few kilobytes each.  A scrape's reading of the host runs on a reading
worker, within the scrape and probe timeouts, and the loop renders it; the status page
and the capabilities XML run on request workers; bcrypt on its own one or two threads
(`gate`).  The limits (docs/http.md has the table):

- at most `max_connections` connections, counted from accept (a TLS one before its
  handshake); at the cap, the connection that has waited longest without completing a
  request is closed to make room (`slots`); only when every one is inside a request is
  the new one answered 503;
- a TLS handshake must end within `tls_handshake_timeout`, a request's headers within
  `read_header_timeout` (from the connection's start, or from the first byte of a later
  request) and within 16 KiB however the bytes arrive; an idle kept-alive connection is
  closed after `idle_timeout`, a response the client does not read abandoned after
  `write_timeout`;
- a request runs only once its headers are complete; at most `max_requests` scrapes run
  at once, more get 503 (node_exporter's --web.max-requests);
- anything malformed or ambiguous (two Authorization headers, Transfer-Encoding with
  Content-Length) gets a status line (400, 413, 417, 431 or 505) and the connection
  closes; `Expect: 100-continue` is answered with 100; no response names the server's
  software.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from host_pm_exporter.logs import Once
from host_pm_exporter.web.framing import MAX_BODY, MAX_HEADERS, check_head, head_fits
from host_pm_exporter.web.gate import Gate, Verdict
from host_pm_exporter.web.listen import Limits, listen
from host_pm_exporter.web.routes import Response, Routes, text
from host_pm_exporter.web.slots import Slots
from host_pm_exporter.web.streams import _READ, Closed, PeerReader, Stream, TLSStream
from host_pm_exporter.webconfig import Authenticator, WebConfig, WebConfigSource
from host_pm_exporter.workers import Workers

if TYPE_CHECKING:
    from host_pm_exporter.reading import Reading

__all__ = ["Limits", "Response", "Routes", "Server", "basic_credentials", "listen", "quiet_wakeup_fd"]

log = logging.getLogger("host_pm_exporter.web")

_ALLOWED = "GET, HEAD"
# bcrypt: one thread on a machine of one or two cores, two above; at most this many
# checks wait for one (a few seconds of bcrypt at cost 12), beyond it 503 at once
BCRYPT_THREADS = 1 if (os.cpu_count() or 1) <= 2 else 2
BCRYPT_QUEUE = 8
BACKLOG = 512  # the kernel's queue of connections not yet accepted (capped by net.core.somaxconn)
_ACCEPT_BATCH = 16
# A scrape's reading of files is waited for on the loop's thread up to this long (a
# small host's takes about a millisecond), then on the loop (`Server._waited_in_place`).
IN_PLACE = 0.02


@dataclass(eq=False)
class _Conn:
    task: asyncio.Task[Any] | None
    stream: Stream


@dataclass
class _State:
    scrapes: int = 0
    draining: bool = False  # shutting down: answer what is in flight with a close, take no more
    busy: set[asyncio.Task[Any]] = field(default_factory=set)  # connections inside a request


def _evict(conn: _Conn) -> None:
    conn.stream.abort()
    if conn.task is not None:
        conn.task.cancel()


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
        self.gate = Gate(Authenticator(), BCRYPT_THREADS, BCRYPT_QUEUE)
        self.slots: Slots[_Conn] = Slots(self.limits.max_connections, _evict)
        self.state = _State()
        self.once = Once(log)
        self._tls = False
        self._reloading = False
        self._reload_again = False
        self._slow = False  # the last reading was not done within IN_PLACE: wait for the next one on the loop

    # -- life cycle --------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then drain the requests in flight (up to
        drain_timeout) and close everything."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        self._tls = self.config.tls_context() is not None

        def protocol() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(PeerReader(limit=_READ), self._connection)

        # asyncio accepts up to `backlog` connections per turn of the loop, before any of
        # them is counted: a small batch keeps a burst from holding that many more fds
        # than the cap while evictions catch up; the kernel's queue stays as listen() set it
        server = await loop.create_server(protocol, sock=self.sock, backlog=_ACCEPT_BATCH)
        self.sock.listen(BACKLOG)
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

    def hangup(self) -> None:
        """SIGHUP: re-read the web config on a worker, off the loop; signals that come
        while it reads are one more reading after it, however many they are."""
        if self._reloading:
            self._reload_again = True
            return
        self._reloading = True
        done = asyncio.wrap_future(_workers.submit(self.config.reload))
        done.add_done_callback(self._reloaded)

    def _reloaded(self, done: asyncio.Future[bool]) -> None:
        self._reloading = False
        if not done.cancelled():
            error = done.exception()
            log.info("SIGHUP: web config re-read", extra={"changed": False if error else done.result()})
        if self._reload_again:
            self._reload_again = False
            self.hangup()

    def _loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (accept() out of file descriptors: it pauses accepting for
        a second by itself) go to the log once, without a traceback."""
        err = context.get("exception")
        message = f"{context.get('message', '')}: {err}" if err else str(context.get("message", ""))
        self.once.log("server error", "event loop", message, err=message)

    # -- one connection ----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert isinstance(reader, PeerReader)
        context = self.config.tls_context() if self._tls else None  # per connection: the current config's
        stream = Stream(reader, writer) if context is None else TLSStream(reader, writer, context)
        me = _Conn(asyncio.current_task(), stream)
        if self.slots.admit(me):
            await self._serve_connection(me, stream)
            return
        why = "too many open connections"
        self.once.log("connection refused", "connections", why, err=why, limit=self.limits.max_connections)
        if not self._tls:
            await self._refuse(stream, 503, why)
            stream.close()
        else:
            stream.abort()  # no handshake spent on a connection that cannot be served

    async def _serve_connection(self, me: _Conn, stream: Stream) -> None:
        abort = False
        try:
            deadline = time.monotonic() + self.limits.read_header_timeout
            if self._tls:
                handshake = min(self.limits.tls_handshake_timeout, self.limits.read_header_timeout)
                await self._wait(stream.handshake(), handshake)
            await self._requests(me, stream, deadline)
        except (_Closed, Closed):
            abort = True  # timed out, or TLS failed: drop it now, whatever is still unsent
        except h11.RemoteProtocolError as err:
            await self._refuse(stream, err.error_status_hint, str(err))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            abort = True
        except asyncio.CancelledError:
            if self.slots.holds(me):
                raise  # not evicted: the loop is ending
            abort = True
        except Exception:  # a bug of ours: logged with its stack, costs only this connection
            log.exception("connection failed")
            abort = True
        finally:
            self.slots.leave(me)
            if abort:
                stream.abort()  # close() would wait for a client that never reads
            else:
                stream.close()

    async def _requests(self, me: _Conn, stream: Stream, deadline: float) -> None:
        """Serve requests on the connection until it closes, or the server stops."""
        state = self.state
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        task = me.task
        assert task is not None
        while not state.draining:
            request = await self._read_request(conn, stream, deadline, me)
            if request is None:
                return
            self.slots.to_busy(me)
            state.busy.add(task)
            try:
                config = self.config.current()  # per request: a revoked user is refused on a kept connection
                response = await self._respond(request, config, stream)
                await self._send(conn, stream, request, response, config)
            finally:
                state.busy.discard(task)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            if stream.peer_closed:
                return  # it left: what it pipelined before leaving is not served (nor its bcrypt paid)
            conn.start_next_cycle()
            self.slots.to_idle(me)
            deadline = 0.0  # the next request's header deadline starts at its first byte

    async def _read_request(
        self, conn: h11.Connection, stream: Stream, deadline: float, me: _Conn
    ) -> h11.Request | None:
        """The next request once its headers (and any small body) are complete; None
        when the client closed or went idle between requests."""
        request: h11.Request | None = None
        body = 0
        head = len(conn.trailing_data[0])  # this request's bytes received so far (pipelined)
        while True:
            if request is None and head > MAX_HEADERS:
                head_fits(conn)
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if deadline:
                    data = await self._recv(stream, deadline - time.monotonic())
                else:  # between requests: wait for the first byte, then the clock runs
                    data = await self._recv(stream, self.limits.idle_timeout)
                    deadline = time.monotonic() + self.limits.read_header_timeout
                    self.slots.to_waiting(me)
                conn.receive_data(data)
                head += len(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
                check_head(request)
                if conn.they_are_waiting_for_100_continue:
                    stream.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > MAX_BODY:
                    raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _recv(self, stream: Stream, timeout: float) -> bytes:
        return await self._wait(stream.read(), timeout)

    async def _wait(self, awaitable: Awaitable[R], timeout: float) -> R:
        if timeout <= 0:
            raise _Closed
        try:
            return await _within(awaitable, timeout)
        except asyncio.TimeoutError:
            raise _Closed from None

    async def _authorize(self, request: h11.Request, config: WebConfig, stream: Stream) -> Response | None:
        """None when the request may go on; otherwise the answer that refuses it."""
        authorization = [value for name, value in request.headers if name == b"authorization"]
        if len(authorization) > 1:
            return text(400, "400 bad request: more than one Authorization header\n")
        if not config.users:
            return None
        header = authorization[0].decode("latin-1") if authorization else None
        verdict = await self.gate.verdict(config, header, lambda: stream.peer_closed)
        if verdict is Verdict.GONE:
            raise _Closed
        if verdict is Verdict.BUSY:
            why = "too many password checks waiting"
            self.once.log("request refused", "bcrypt", why, err=why, limit=self.gate.queue)
            return text(503, f"{why}, try again\n", [("Retry-After", "1")])
        if verdict is Verdict.DENIED:
            return text(401, "401 Unauthorized\n", [("WWW-Authenticate", 'Basic realm="host-pm-exporter"')])
        return None

    async def _respond(self, request: h11.Request, config: WebConfig, stream: Stream) -> Response:
        refused = await self._authorize(request, config, stream)
        if refused is not None:
            return refused
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
        # origin-form ("/metrics?x"): split it ourselves; urlsplit would read "//metrics" as a host
        raw_path, _, query = target.partition("?") if target.startswith("/") else (urlsplit(target).path, "", "")
        path = unquote(raw_path) or "/"
        static = self.routes.static(path)
        if static is not None and static.status == 404:
            return static
        if method not in ("GET", "HEAD"):
            return text(405, f"method {method} not allowed\n", [("Allow", _ALLOWED)])
        if static is not None:
            return static
        return await self._scrape(path, headers, query)

    async def _scrape(self, path: str, headers: dict[str, str], query: str) -> Response:
        state = self.state
        if state.scrapes >= self.limits.max_requests:
            why = "too many concurrent scrapes"
            self.once.log("scrape refused", "scrapes", why, err=why, limit=self.limits.max_requests)
            return text(503, f"too many concurrent scrapes (limit {self.limits.max_requests})\n")
        state.scrapes += 1
        try:
            if path == self.routes.telemetry_path:
                return await self._metrics(headers, query)
            # the page's reading has its own deadline; this one frees the slot if anything else hangs
            page = asyncio.wrap_future(_workers.submit(self.routes.page, path))
            return await _within(page, self.limits.request_timeout)
        except asyncio.TimeoutError:
            self.once.log("request timed out", path, "no answer in time", path=path)
            return text(503, "the host did not answer in time\n")
        except Exception:  # never a traceback to the client
            log.exception("scrape failed")
            return text(500, "internal error\n")
        finally:
            state.scrapes -= 1

    async def _metrics(self, headers: dict[str, str], query: str) -> Response:
        """A scrape: the host is read on a reading worker (shared with a scrape already
        reading the same, if any) while this loop waits for the files until the scrape
        timeout and for the probes until theirs (a reading of files only that this scrape
        started, on the loop's thread, for a moment: `_waited_in_place`); the reading is
        then rendered and encoded here (`Exposition.body`)."""
        exposition = self.routes.registry
        plan = exposition.plan(parse_qs(query).get("name[]"))
        # the exporter's own figures first, on a thread still warm from the request (a
        # moment before the host's reading; any moment of the scrape is theirs)
        accept = headers.get("accept", "")
        runtime = self.routes.runtime_text(accept, plan)
        pending = exposition.readings.start(plan.collectors, plan.probes)
        if not self._waited_in_place(pending):
            for future, deadline in pending.parts:  # the files, then each probe, each until its deadline
                waiter = asyncio.wrap_future(future)
                waiter.add_done_callback(_retrieved)  # an error is the snapshot's to report, also when late
                # neither raises nor cancels
                await asyncio.wait({waiter}, timeout=max(0.0, deadline - time.monotonic()))
            files = pending.parts[0][0]
            self._slow = not files.done() or time.monotonic() - pending.started > IN_PLACE
        snap = pending.snapshot()  # what is done; never waits
        return self.routes.scrape_response(accept, headers.get("accept-encoding", ""), plan, snap, runtime)

    def _waited_in_place(self, pending: Reading) -> bool:
        """Wait for a reading of files only, that this scrape started, on the loop's
        thread, for `IN_PLACE` at most: the reading worker wakes this thread directly,
        with no turn through the loop (a third of a scrape's cost on a small host).
        A reading not done by then is waited for as any other; once one was that slow,
        the next ones are too, until one is done in time again: a hung or slow file
        holds the loop once, for `IN_PLACE`."""
        if self._slow or len(pending.parts) != 1 or pending.shared:
            return False
        done = pending.files_read(IN_PLACE)
        self._slow = not done
        return done

    async def _send(
        self, conn: h11.Connection, stream: Stream, request: h11.Request, response: Response, config: WebConfig
    ) -> None:
        headers = [
            *response.headers,
            *config.headers,
            ("Content-Length", str(len(response.body))),
            ("Date", _date_now()),
        ]
        if self.state.draining or (response.status >= 400 and response.status not in (401, 404, 405)):
            headers.append(("Connection", "close"))
        reason = _REASONS.get(response.status) or HTTPStatus(response.status).phrase.encode()
        out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason)) or b""
        if request.method != b"HEAD":
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        stream.write(out)
        if not stream.unsent():
            return  # the kernel took it all (a scrape's answer mostly fits): nothing to wait for
        await self._wait(stream.drain(), self.limits.write_timeout)

    async def _refuse(self, stream: Stream, status: int, reason: str) -> None:
        """Answer what cannot be served (a request h11 could not parse, a connection past
        the cap): a status line, a short reason, then close.  Closing with the client's
        bytes unread would reset the connection and lose the answer, so what it sends
        meanwhile is read and dropped, for a moment at most."""
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase.lower()}: {reason}\n".encode()
        log.debug("bad request", extra={"status": status, "reason": reason})
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError, Closed):
            stream.write(
                f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await _within(stream.drain(), self.limits.write_timeout)
            stream.end()
            await _within(stream.reader.read(_READ), 0.5)


class _Closed(Exception):
    """The connection is done: timed out, or its client left."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


R = TypeVar("R")


async def _within(awaitable: Awaitable[R], timeout: float) -> R:
    """`awaitable`, or asyncio.TimeoutError after `timeout` seconds: every wait of the
    server (asyncio.timeout where there is one, Python 3.11 and later)."""
    if _timeout is None:
        return await asyncio.wait_for(awaitable, timeout)
    async with _timeout(timeout):
        return await awaitable


_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+

# Daemon threads for blocking work (the status page, a config re-read): one stuck in a
# hung read never keeps the process from exiting, as a thread pool's would.
_workers = Workers("request")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(when: float | None = None) -> str:
    """`when` (now) as an HTTP date, the IMF-fixdate of RFC 9110: English names whatever
    the locale.  (``email.utils.formatdate`` writes the same, but loads the whole email
    package, 1.2 MiB of a 30 MiB process, for one header.)

    >>> http_date(784111777)
    'Sun, 06 Nov 1994 08:49:37 GMT'
    """
    t = time.gmtime(when)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_date = (-1, "")  # a second, and the Date header written for it


def _date_now() -> str:
    """`http_date()` of now, written once a second."""
    global _date  # noqa: PLW0603 (one tuple, replaced whole)
    second = int(time.time())
    date = _date
    if second != date[0]:
        date = _date = (second, http_date(second))
    return date[1]


def quiet_wakeup_fd() -> None:
    """After asyncio set the signal wakeup fd (add_signal_handler): a burst of signals
    that fills its pipe is not reported on stderr (CPython prints a BlockingIOError per
    signal that finds the pipe full, outside any logger).  The pipe already holds that
    signal: nothing is lost but a duplicate."""
    if threading.current_thread() is not threading.main_thread():
        return
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)


def basic_credentials(user: str, password: str) -> str:
    """The Authorization header value for basic auth (for clients and tests)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
