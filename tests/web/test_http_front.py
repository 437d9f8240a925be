"""The HTTP front on a hostile network (loopback only, bounded in count and time): no
client can take it down, a request runs only once its headers are complete, the
protocol is h11's, and nothing reaches stderr raw."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

from tests.conftest import fake_pm_is_supported, fixture_args, raw_request, samples
from tests.helpers.serving import serving

BASE = [*fixture_args("server-s3"), "--pm.probes=kernel"]


def status_line(reply: bytes) -> bytes:
    return reply.split(b"\r\n", 1)[0]


def no_raw_stderr(exp: Any) -> None:
    """Every line on stderr is one logfmt record: no traceback, no raw dump."""
    for line in exp.stderr().splitlines():
        assert line.startswith("ts="), line
    assert "Traceback (most recent call last):\n" not in exp.stderr()


@pytest.fixture
def front(exporter: Any) -> Any:
    return exporter([*BASE, "--web.read-header-timeout=1s", "--web.idle-timeout=2s"])


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", b"505"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"505"),
        (b"GET /metrics\r\n\r\n", b"400"),  # HTTP/0.9: refused at once, not held
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc", b"400"),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n" + b"a" * 70000, b"413"),
    ],
)
def test_malformed_requests_get_a_status_line_and_a_close(front: Any, request_bytes: bytes, status: bytes) -> None:
    start = time.monotonic()
    reply = raw_request(front.port, request_bytes)
    assert time.monotonic() - start < 0.9, "answered at once, not at a timeout"
    assert status_line(reply).startswith(b"HTTP/1.1 " + status + b" "), reply[:120]
    assert reply.count(b"HTTP/1.1 ") == 1, "one answer, then the connection closes: nothing smuggled through"
    assert b"host_pm_supported" not in reply
    assert front.get("/healthz")[0] == 200
    no_raw_stderr(front)


def test_unfinished_headers_never_run_a_scrape(front: Any) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX")
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(65536)
    assert b"200 OK" not in reply
    assert b"host_pm_supported" not in reply


def test_headers_must_be_complete_within_the_deadline(front: Any) -> None:
    """A client trickling one header byte every 0.3 s is cut off at 1 s, though it never
    stops sending (the deadline is for the whole header, not per read)."""
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        start = time.monotonic()
        closed = None
        for _ in range(20):
            try:
                sock.sendall(b"X")
                time.sleep(0.3)
                sock.setblocking(False)
                try:
                    if sock.recv(1024) == b"":
                        closed = time.monotonic() - start
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
            except OSError:
                closed = time.monotonic() - start
                break
    assert closed is not None, "never closed"
    assert closed < 2.5, closed


def test_an_idle_kept_alive_connection_is_closed(front: Any) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert sock.recv(1024) == b""  # the server closes it
        assert 1.5 < time.monotonic() - start < 4


def test_no_server_header(front: Any) -> None:
    status, headers, _ = front.get("/metrics")
    assert status == 200
    assert "Server" not in headers


def test_at_the_cap_the_longest_waiting_connection_makes_room(exporter: Any) -> None:
    """Four connections that never send a request hold the four slots: a new client is
    served, and the oldest of the four is the one closed for it."""
    exp = exporter([*BASE, "--web.max-connections=4"])
    time.sleep(0.3)  # the start-up check's connection is gone
    held = []
    for _ in range(4):
        held.append(socket.create_connection(("127.0.0.1", exp.port), timeout=5))
        time.sleep(0.05)  # in this order
    try:
        reply = raw_request(exp.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_line(reply) == b"HTTP/1.1 200 OK"
        assert closed_by_server(held[0])
        assert not any(closed_by_server(sock, wait=0.2) for sock in held[1:])
    finally:
        for sock in held:
            sock.close()
    no_raw_stderr(exp)


def test_at_the_cap_with_every_connection_inside_a_request_the_new_one_is_refused(
    exporter: Any, tmp_path: Path
) -> None:
    script = fake_pm_is_supported(tmp_path, "sleep 2\nexit 0")
    exp = exporter([*BASE, "--web.max-connections=3", "--pm.probes=pm-utils", f"--pm.pm-is-supported={script}"])
    time.sleep(0.3)
    busy = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", exp.port), timeout=10)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        busy.append(sock)
    try:
        time.sleep(0.5)
        reply = raw_request(exp.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_line(reply) == b"HTTP/1.1 503 Service Unavailable"
        for sock in busy:  # none of them was evicted
            assert recv_all(sock).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in busy:
            sock.close()
    assert exp.get("/healthz")[0] == 200


def closed_by_server(sock: socket.socket, wait: float = 3.0) -> bool:
    """True when the server closed (or reset) the connection within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_concurrent_scrapes_past_the_limit_get_503(exporter: Any, tmp_path: Path) -> None:
    script = fake_pm_is_supported(tmp_path, "sleep 1\nexit 0")
    exp = exporter([*BASE, "--web.max-requests=1", "--pm.probes=pm-utils", f"--pm.pm-is-supported={script}"])
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(exp.get("/metrics")[0]))
    first.start()
    time.sleep(0.4)
    status, _, body = exp.get("/metrics")
    first.join()
    assert status == 503, body
    assert results == [200]
    assert exp.get("/healthz")[0] == 200, "the cap is for scrapes only"


def test_a_thousand_slow_clients_cost_no_threads(exporter: Any) -> None:
    exp = exporter(BASE)
    proc = psutil.Process(exp.proc.pid)
    baseline = proc.num_threads()
    held = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", exp.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        time.sleep(0.3)
        start = time.monotonic()
        assert exp.get("/metrics")[0] == 200
        assert time.monotonic() - start < 1.0
        assert proc.num_threads() <= baseline + 4
    finally:
        for sock in held:
            sock.close()
    no_raw_stderr(exp)


def test_a_reset_mid_headers_writes_nothing_raw(front: Any) -> None:
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=5)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # RST
    time.sleep(0.2)
    assert front.get("/healthz")[0] == 200
    no_raw_stderr(front)


def test_many_simultaneous_connects_are_queued_not_refused(front: Any) -> None:
    socks: list[socket.socket] = []
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            socks.append(socket.create_connection(("127.0.0.1", front.port), timeout=0.5))
        except OSError as err:
            errors.append(err)

    threads = [threading.Thread(target=connect) for _ in range(150)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert time.monotonic() - start < 1.0
    for sock in socks:
        sock.close()


def test_scrapes_are_bounded_on_a_fifo_under_the_roots(host_copy: Callable[..., Path], exporter: Any) -> None:
    import os

    root = host_copy()
    (root / "proc/swaps").unlink()
    os.mkfifo(root / "proc/swaps")
    (root / "etc").mkdir(exist_ok=True)
    os.mkfifo(root / "etc/machine-id")
    exp = exporter([*fixture_args(root), "--pm.probes=kernel"])
    proc = psutil.Process(exp.proc.pid)
    for _ in range(3):
        start = time.monotonic()
        got = samples(exp.scrape())
        assert time.monotonic() - start < 1.0
    assert got['host_exporter_collector_success{collector="readiness"}'] == 0
    assert got['host_exporter_collector_success{collector="power"}'] == 1
    assert got['host_pm_supported{state="S3"}'] == 1
    threads, fds = proc.num_threads(), proc.num_fds()
    for _ in range(5):
        exp.scrape()
    assert proc.num_threads() <= threads + 1
    assert proc.num_fds() <= fds + 1
    assert exp.get("/healthz")[0] == 200


def test_a_double_slash_path_is_a_path_not_a_host(front: Any) -> None:
    reply = raw_request(front.port, b"GET //metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_line(reply) == b"HTTP/1.1 404 Not Found"


def test_the_date_header_is_an_imf_fixdate(front: Any) -> None:
    from email.utils import parsedate_to_datetime

    from host_pm_exporter.web import http_date

    for _ in range(2):  # the second in the next second of the clock: written anew, not the last one's
        before = int(time.time())
        _, headers, _ = front.get("/healthz")
        after = int(time.time())
        date = headers["Date"]
        assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                            r"\d{4} \d\d:\d\d:\d\d GMT", date), date  # fmt: skip
        assert date in {http_date(second) for second in range(before, after + 1)}
        assert before <= parsedate_to_datetime(date).timestamp() <= after
        time.sleep(1.01 - time.time() % 1)


def test_a_page_that_does_not_answer_in_time_is_a_503_and_frees_its_slot() -> None:
    """The status page and the capabilities XML run in a request worker; past the request
    timeout the client gets a 503 (and the connection a close), the server goes on."""

    from host_pm_exporter.cli import parse_config
    from host_pm_exporter.web import Limits, Routes, Server, listen
    from host_pm_exporter.wiring import make_exposition

    release = threading.Event()

    def stuck_page() -> bytes:
        release.wait(10)
        return b"too late\n"

    registry = make_exposition(parse_config([*fixture_args("server-s3"), "--pm.probes=kernel"]))
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(sock, Routes(registry, "/metrics", page=stuck_page), Limits(request_timeout=0.3))
    with serving(server):
        try:
            start = time.monotonic()
            reply = raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert time.monotonic() - start < 3
            assert status_line(reply) == b"HTTP/1.1 503 Service Unavailable"
            assert reply.endswith(b"the host did not answer in time\n")
            assert server.state.scrapes == 0
            healthz = raw_request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b"HTTP/1.1 200" in healthz
        finally:
            release.set()


def test_a_hung_read_holds_the_loop_once_and_briefly(tmp_path: Path) -> None:
    """A scrape's reading of files is waited for on the loop's thread for a moment
    (`IN_PLACE`), then on the loop: while a read hangs, the server answers others at
    once, the hung scrape answers at its deadline, and the next scrape skips the stuck
    collector."""

    from host_pm_exporter.collectors.base import Collector
    from host_pm_exporter.hostfs import HostFS
    from host_pm_exporter.reading import SharedReadings, SnapshotConfig, Watchdog
    from host_pm_exporter.views.exposition import Exposition
    from host_pm_exporter.web import IN_PLACE, Routes, Server, listen

    release = threading.Event()
    hung = Collector("hung", "reads a hung mount", gather=lambda s: release.wait(30), families=lambda _: [],
                     metrics=())  # fmt: skip
    fs = HostFS(str(tmp_path), str(tmp_path), str(tmp_path))
    readings = SharedReadings(SnapshotConfig(fs=fs, collectors=(hung,), probes=(), timeout=1.0), Watchdog())
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(sock, Routes(Exposition(readings, (hung,), ()), "/metrics"))
    replies: list[tuple[float, bytes]] = []

    def scrape() -> None:
        start = time.monotonic()
        reply = raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies.append((time.monotonic() - start, reply))

    healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with serving(server):
        try:
            assert b"HTTP/1.1 200" in raw_request(port, healthz)
            first = threading.Thread(target=scrape)
            first.start()
            time.sleep(0.1)
            took = []
            for _ in range(10):  # the hung scrape is still reading: the loop answers others meanwhile
                start = time.monotonic()
                reply = raw_request(port, healthz)
                took.append(time.monotonic() - start)
                assert b"HTTP/1.1 200" in reply
            assert first.is_alive(), "the hung scrape waits for its deadline"
            assert max(took) < 0.5, took
            first.join(10)
            ((elapsed, reply),) = replies
            assert 0.9 < elapsed < 3, elapsed
            assert b'host_exporter_collector_success{collector="hung"} 0.0' in reply
            scrape()  # the next one skips the stuck collector and answers at once
            elapsed, reply = replies[1]
            assert elapsed < 1.0, elapsed
            assert b'host_exporter_collector_success{collector="hung"} 0.0' in reply
            assert IN_PLACE <= 0.05, "the loop is held for a moment at most"
        finally:
            release.set()


def test_http_dates_are_the_standard_librarys_imf_fixdates() -> None:
    import email.utils

    from host_pm_exporter.web import http_date

    for when in [
        0.0,
        784111777.0,
        951782400.0,
        1_700_000_000.5,
        4_102_444_799.0,
        *range(0, 10**9, 86_400 * 37 + 3_671),
    ]:
        assert http_date(when) == email.utils.formatdate(when, usegmt=True), when


def test_a_server_without_a_web_config_loads_no_yaml_bcrypt_or_email() -> None:
    """About 3 MiB of the process (yaml 1.3, email 1.2, bcrypt 0.5): loaded only when a
    web config asks for them (the child imports nothing of the tests': their urllib
    loads email)."""
    from tests.conftest import fresh_python

    code = (
        "import asyncio, socket, sys, threading\n"
        "from host_pm_exporter.cli import parse_config\n"
        "from host_pm_exporter.wiring import make_exposition\n"
        "from host_pm_exporter.web import Routes, Server, listen\n"
        f"config = parse_config({[*fixture_args('spr-2s'), '--pm.probes=kernel']!r})\n"
        "sock = listen('127.0.0.1', 0)\n"
        "server = Server(sock, Routes(make_exposition(config), '/metrics'))\n"
        "loop = asyncio.new_event_loop()\n"
        "stop = []\n"
        "async def serve():\n"
        "    stop.append(asyncio.Event())\n"
        "    await server.serve(stop[0])\n"
        "threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True).start()\n"
        "port = sock.getsockname()[1]\n"
        "client = socket.create_connection(('127.0.0.1', port), timeout=20)\n"
        "client.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
        "reply = b''.join(iter(lambda: client.recv(65536), b''))\n"
        "assert b'HTTP/1.1 200' in reply and b'\\r\\nDate: ' in reply, reply[:200]\n"
        "print(sorted(m for m in ('yaml', 'bcrypt', 'email') if m in sys.modules))\n"
    )
    assert fresh_python(code).strip() == "[]"
