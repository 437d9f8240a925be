"""The attacks of the second hostile-network round, on loopback, bounded in count and
time, asserting counts, states and bounded fds/RSS (the figures come from
tests/bench/attack_*.py): TLS connections counted from accept and cheap, a handshake
deadline, basic auth that never makes a known verdict wait and never queues without
bound, no bcrypt for a client that left, fair connection slots, HTTP framing, signals."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import bcrypt
import psutil
import pytest

from host_pm_exporter.cli import parse_config, parse_duration
from host_pm_exporter.web import BCRYPT_QUEUE, BCRYPT_THREADS, Limits, Routes, Server, basic_credentials, listen
from host_pm_exporter.webconfig import Check, WebConfigSource
from host_pm_exporter.wiring import make_exposition
from tests.conftest import fixture_args, need_tool, raw_request, wait_until
from tests.helpers.serving import serving

BASE = [*fixture_args("server-s3"), "--pm.probes=kernel"]


def status_line(reply: bytes) -> bytes:
    return reply.split(b"\r\n", 1)[0]


def no_raw_stderr(text: str) -> None:
    for line in text.splitlines():
        assert line.startswith("ts="), line


def request(path: str = "/metrics", *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [need_tool("openssl", "openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(d / "server.key"), "-out", str(d / "server.crt"), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "server.crt", d / "server.key"


def tls_config(tmp_path: Path, cert: tuple[Path, Path], extra: str = "") -> Path:
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {cert[0]}\n  key_file: {cert[1]}\n{extra}")
    return path


def tls_get(port: int, cert: Path, path: str = "/healthz") -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with raw, ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(request(path))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_tls_connections_count_from_accept_and_make_room(exporter: Any, tmp_path: Path, cert: Any) -> None:
    """Connections that never send a ClientHello hold a slot each, up to the cap (so the
    process holds no more sockets than that); a real client still gets in."""
    exp = exporter([*BASE, "--web.max-connections=16", f"--web.config.file={tls_config(tmp_path, cert)}"])
    proc = psutil.Process(exp.proc.pid)
    time.sleep(0.3)
    base_fds = proc.num_fds()
    held = [socket.create_connection(("127.0.0.1", exp.port), timeout=5) for _ in range(80)]
    try:
        wait_until(lambda: proc.num_fds() <= base_fds + 16, "the cap holds for connections before a handshake")
        assert status_line(tls_get(exp.port, cert[0])) == b"HTTP/1.1 200 OK"
        assert proc.num_fds() <= base_fds + 16 + 1
    finally:
        for sock in held:
            sock.close()
    no_raw_stderr(exp.stderr())


def test_a_stalled_tls_handshake_is_cut_at_its_own_deadline(exporter: Any, tmp_path: Path, cert: Any) -> None:
    config = tls_config(tmp_path, cert)
    exp = exporter([*BASE, "--web.tls-handshake-timeout=1s", "--web.read-header-timeout=60s",
                    f"--web.config.file={config}"])  # fmt: skip
    with socket.create_connection(("127.0.0.1", exp.port), timeout=20) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never finished
        with suppress(ConnectionResetError):
            assert sock.recv(1024) == b"", "closed by the server, long before the header deadline"
    assert status_line(tls_get(exp.port, cert[0])) == b"HTTP/1.1 200 OK"


def test_tls_probes_and_idle_connections_cost_bounded_memory(exporter: Any, tmp_path: Path, cert: Any) -> None:
    """What a kubelet tcpSocket probe does, 600 times, and 600 connections that never
    say hello: the process's memory stays bounded and mostly comes back."""
    exp = exporter([*BASE, f"--web.config.file={tls_config(tmp_path, cert)}"])
    proc = psutil.Process(exp.proc.pid)
    time.sleep(0.3)
    start = proc.memory_info().rss
    for _ in range(600):
        socket.create_connection(("127.0.0.1", exp.port), timeout=5).close()
    held = [socket.create_connection(("127.0.0.1", exp.port), timeout=5) for _ in range(600)]
    time.sleep(0.5)
    peak = proc.memory_info().rss
    assert proc.num_fds() <= 512 + 16
    for sock in held:
        sock.close()
    time.sleep(1.0)
    assert peak - start < 60 * 2**20, (start, peak)  # asyncio's TLS: 256 KiB each, 150 MB here
    assert proc.memory_info().rss - start < 30 * 2**20
    assert status_line(tls_get(exp.port, cert[0])) == b"HTTP/1.1 200 OK"


# -- basic auth, in process (to hold bcrypt and read the gate's counters) ------------------


class Served:
    def __init__(self, server: Server, port: int) -> None:
        self.server = server
        self.port = port


@contextmanager
def in_process(web_config: Path | None, limits: Limits | None = None) -> Iterator[Served]:
    registry = make_exposition(parse_config(BASE))
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(
        sock, Routes(registry, "/metrics"), limits, WebConfigSource(str(web_config) if web_config else None)
    )
    with serving(server):
        yield Served(server, port)


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()
    path.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    return path


class HeldBcrypt:
    """bcrypt checks that wait until released: the thread is busy for as long as a test
    needs, with no clock involved."""

    def __init__(self, server: Server) -> None:
        self.release = threading.Event()
        self.started = 0
        auth = server.gate.auth
        real = auth.verify

        def verify(check: Check) -> bool:
            self.started += 1
            self.release.wait(20)
            return real(check)

        auth.verify = verify  # type: ignore[method-assign]


def send(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    with sock:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


RIGHT = f"Authorization: {basic_credentials('prometheus', 'right')}"


def wrong(i: int) -> str:
    return f"Authorization: {basic_credentials('prometheus', f'wrong{i}')}"


def test_a_known_verdict_never_waits_and_a_full_queue_is_refused_at_once(users: Path) -> None:
    with in_process(users) as served:
        assert status_line(raw_request(served.port, request("/healthz", RIGHT))) == b"HTTP/1.1 200 OK"  # cached now
        held = HeldBcrypt(served.server)
        gate = served.server.gate
        pending = [send(served.port, request("/healthz", wrong(i))) for i in range(BCRYPT_THREADS + BCRYPT_QUEUE)]
        wait_until(lambda: len(gate._waiters) == BCRYPT_QUEUE, "the queue is full")
        assert held.started == BCRYPT_THREADS
        # bcrypt is busy and its queue full: a known verdict is answered all the same ...
        assert status_line(raw_request(served.port, request("/healthz", RIGHT))) == b"HTTP/1.1 200 OK"
        # ... and one more unknown password is refused at once, not queued
        busy = raw_request(served.port, request("/healthz", wrong(99)))
        assert status_line(busy) == b"HTTP/1.1 503 Service Unavailable"
        assert b"Retry-After: 1" in busy
        assert held.started == BCRYPT_THREADS, "nothing ran meanwhile: those answers did not wait for bcrypt"
        held.release.set()
        for sock in pending:
            assert status_line(read_all(sock)) == b"HTTP/1.1 401 Unauthorized"
        assert gate.checks == 1 + BCRYPT_THREADS + BCRYPT_QUEUE
        assert gate.refused == 1


def test_no_bcrypt_for_clients_that_left(users: Path) -> None:
    """Fire and forget: clients that send pipelined wrong passwords and close cost no
    bcrypt check once they are gone (at most the ones already running)."""
    with in_process(users) as served:
        held = HeldBcrypt(served.server)
        gate = served.server.gate
        first = send(served.port, request("/healthz", wrong(0)))
        wait_until(lambda: held.started == BCRYPT_THREADS, "bcrypt is busy")
        for i in range(20):
            sock = send(served.port, b"".join(request("/healthz", wrong(1000 + 100 * i + j)) for j in range(30)))
            sock.close()
        wait_until(lambda: len(gate._waiters) + gate.refused >= 20, "every client was queued or refused")
        held.release.set()
        assert status_line(read_all(first)) == b"HTTP/1.1 401 Unauthorized"
        wait_until(lambda: not gate._waiters and not gate._running, "the queue is empty")
        assert gate.checks == BCRYPT_THREADS  # only the one that was running
        assert gate.dropped == min(20, BCRYPT_QUEUE)
        assert gate.dropped + gate.refused == 20


def test_the_same_unknown_credentials_share_one_check(users: Path) -> None:
    with in_process(users) as served:
        held = HeldBcrypt(served.server)
        socks = [send(served.port, request("/healthz", wrong(7))) for _ in range(5)]
        wait_until(lambda: held.started == 1, "a check runs")
        time.sleep(0.2)
        held.release.set()
        for sock in socks:
            assert status_line(read_all(sock)) == b"HTTP/1.1 401 Unauthorized"
        assert served.server.gate.checks == 1


def test_two_authorization_headers_are_a_400_and_a_close(users: Path) -> None:
    with in_process(users) as served:
        for pair in ((RIGHT, wrong(1)), (wrong(1), RIGHT), (RIGHT, RIGHT)):
            reply = raw_request(served.port, request("/metrics", *pair).replace(b"Connection: close\r\n", b""))
            assert status_line(reply) == b"HTTP/1.1 400 Bad Request"
            assert reply.count(b"HTTP/1.1 ") == 1
            assert b"host_pm_" not in reply


# -- HTTP framing --------------------------------------------------------------------------


@pytest.fixture
def front(exporter: Any) -> Any:
    return exporter([*BASE, "--web.read-header-timeout=3s", "--web.idle-timeout=3s"])


def test_transfer_encoding_with_content_length_is_refused_and_nothing_is_smuggled(front: Any) -> None:
    hidden = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    reply = raw_request(
        front.port,
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body,
    )
    assert status_line(reply) == b"HTTP/1.1 400 Bad Request"
    assert reply.count(b"HTTP/1.1 ") == 1
    assert b"host_pm_" not in reply


@pytest.mark.parametrize("chunk", [0, 1000, 7], ids=["one-write", "1k-writes", "7-byte-writes"])
def test_the_header_limit_holds_however_the_bytes_arrive(front: Any, chunk: int) -> None:
    data = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"a:b\r\n" * 10000 + b"\r\n"  # 70 KB of tiny headers
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        try:
            if chunk == 0:
                sock.sendall(data)
            else:
                for i in range(0, min(len(data), 40000), chunk):
                    sock.sendall(data[i : i + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: what is read below says so
        reply = sock.recv(65536)
    assert status_line(reply) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"host_pm_" not in reply


def test_expect_100_continue_is_answered(front: Any) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hello")
        reply = sock.recv(65536)
    assert status_line(reply) == b"HTTP/1.1 405 Method Not Allowed"  # answered, once the body came


def test_an_unknown_expectation_is_417(front: Any) -> None:
    reply = raw_request(front.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n")
    assert status_line(reply) == b"HTTP/1.1 417 Expectation Failed"


def test_a_body_too_large_for_a_client_awaiting_100_is_refused_before_it_is_sent(front: Any) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\nExpect: 100-continue\r\n\r\n")
        reply = sock.recv(65536)
    assert status_line(reply).startswith(b"HTTP/1.1 413 ")


# -- fair slots ----------------------------------------------------------------------------


def test_slow_header_connections_past_the_cap_do_not_keep_scrapes_out(exporter: Any) -> None:
    exp = exporter([*BASE, "--web.max-connections=32", "--web.read-header-timeout=60s"])
    proc = psutil.Process(exp.proc.pid)
    time.sleep(0.3)
    base_fds = proc.num_fds()
    held = []
    try:
        for _ in range(150):  # slowloris: headers begun, never finished
            sock = socket.create_connection(("127.0.0.1", exp.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        statuses = [status_line(raw_request(exp.port, request())) for _ in range(20)]
        assert statuses.count(b"HTTP/1.1 200 OK") >= 19, statuses
        assert proc.num_fds() <= base_fds + 32 + 16
    finally:
        for sock in held:
            sock.close()
    no_raw_stderr(exp.stderr())


# -- signals -------------------------------------------------------------------------------


def test_a_storm_of_sighups_during_scrapes_prints_nothing_raw(exporter: Any, tmp_path: Path, users: Path) -> None:
    exp = exporter([*BASE, f"--web.config.file={users}"])
    stop = threading.Event()
    statuses: list[bytes] = []

    def scrape() -> None:
        while not stop.is_set():
            statuses.append(status_line(raw_request(exp.port, request("/metrics", RIGHT))))

    assert status_line(raw_request(exp.port, request("/metrics", RIGHT))) == b"HTTP/1.1 200 OK"  # the loop runs
    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for _ in range(1000):
            exp.proc.send_signal(signal.SIGHUP)
    finally:
        time.sleep(0.5)
        stop.set()
        scraper.join(30)
    assert exp.proc.poll() is None
    assert status_line(raw_request(exp.port, request("/metrics", RIGHT))) == b"HTTP/1.1 200 OK"
    assert set(statuses) <= {b"HTTP/1.1 200 OK"}
    no_raw_stderr(exp.stderr())
    rereads = exp.stderr().count("SIGHUP: web config re-read")
    assert 1 <= rereads < 1000, "coalesced"


def test_a_tls12_session_is_never_resumed_under_a_stricter_config(exporter: Any, tmp_path: Path, cert: Any) -> None:
    """Resumed under the config that made it (harmless, and a cheaper handshake); after
    the config turns client certificates on, the same session gets a full handshake,
    which asks for the certificate."""
    config = tls_config(tmp_path, cert)
    exp = exporter([*BASE, f"--web.config.file={config}"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert[0])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def get(session: ssl.SSLSession | None) -> tuple[ssl.SSLSession | None, bool, bytes]:
        raw = socket.create_connection(("127.0.0.1", exp.port), timeout=10)
        with raw, ctx.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
            sock.sendall(request("/healthz"))
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            return sock.session, bool(sock.session_reused), status_line(reply)

    session, reused, status = get(None)
    assert (reused, status) == (False, b"HTTP/1.1 200 OK")
    assert get(session)[1:] == (True, b"HTTP/1.1 200 OK")
    config.write_text(
        config.read_text() + f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {cert[0]}\n"
    )
    exp.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "web config re-read" in exp.stderr() and "changed=True" in exp.stderr(), "the config re-read")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(session)


WAKEUP = """
import asyncio, os, signal, sys, threading, time
from host_pm_exporter.web import quiet_wakeup_fd

async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    if sys.argv[1] == "quiet":
        quiet_wakeup_fd()
    blast = threading.Thread(target=lambda: [os.kill(os.getpid(), signal.SIGHUP) for _ in range(100000)])
    blast.start()
    time.sleep(1)  # the loop is busy: the wakeup pipe fills
    blast.join()
    await asyncio.sleep(0.1)
    print("alive")

asyncio.run(main())
"""


def test_a_full_signal_wakeup_pipe_prints_nothing() -> None:
    """CPython reports every signal that finds asyncio's wakeup pipe full with a
    traceback on stderr; the server turns that off (the pipe already holds the signal)."""
    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", WAKEUP, mode], capture_output=True, text=True, timeout=60, check=True
        )
        for mode in ("loud", "quiet")
    }
    assert "BlockingIOError" in runs["loud"].stderr, "the control: without it, the pipe fills and CPython prints"
    assert runs["quiet"].stdout == "alive\n"
    assert runs["quiet"].stderr == ""


def test_slots_evict_the_oldest_unfinished_request_then_the_oldest_idle_never_a_busy_one() -> None:
    from host_pm_exporter.web.slots import Slots

    evicted: list[str] = []
    slots: Slots[str] = Slots(4, evicted.append)
    for name in ("a", "b", "c", "d"):
        assert slots.admit(name)
    slots.to_busy("a")
    slots.to_busy("b")
    slots.to_idle("b")  # answered, kept alive
    slots.to_idle("a")  # answered after b: idle since later
    assert slots.admit("e")  # c: the oldest still without a complete request
    assert slots.admit("f")  # d
    slots.to_busy("e")
    slots.to_busy("f")
    assert slots.admit("g")  # no unfinished request left: b, idle the longest
    assert evicted == ["c", "d", "b"]
    slots.to_busy("g")
    slots.to_waiting("a")  # a's next request begins
    assert slots.admit("h")  # a
    slots.to_busy("h")
    assert not slots.admit("i"), "every slot inside a request: refused, none evicted"
    assert evicted == ["c", "d", "b", "a"]
    assert len(slots) == 4
    slots.to_idle("c")  # an evicted connection finishing late takes no slot back
    assert not slots.holds("c")
    assert slots.evicted == 4


def test_a_client_that_half_closes_after_its_request_is_still_answered(users: Path) -> None:
    """`printf 'GET ...' | nc -N`: the request, then a FIN, then it waits for the answer.
    Only a check that had to wait in the queue is dropped for a client that left."""
    with in_process(users) as served:
        for header in (RIGHT, wrong(5)):
            with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
                sock.sendall(request("/healthz", header).replace(b"Connection: close\r\n", b""))
                sock.shutdown(socket.SHUT_WR)
                reply = read_all(sock)
            assert status_line(reply) == (b"HTTP/1.1 200 OK" if header == RIGHT else b"HTTP/1.1 401 Unauthorized")
        assert served.server.gate.dropped == 0


def _limits_table() -> dict[str, tuple[str, str]]:
    """docs/http.md's limits table: the limit -> (default, flag)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "http.md").read_text()
    section = text.split("### Limits", 1)[1].split("\n\n", 2)[2]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| limit") or line.startswith("|---"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1], cells[2].strip("`"))
    return rows


def test_the_limits_table_gives_the_defaults_in_force() -> None:
    from host_pm_exporter import web
    from host_pm_exporter.cli import build_parser
    from host_pm_exporter.web import framing

    rows = _limits_table()
    defaults = build_parser().parse_args([])
    flags = {flag: default for default, flag in rows.values() if flag}
    assert set(flags) == {
        "--web.max-connections", "--web.tls-handshake-timeout", "--web.read-header-timeout", "--web.idle-timeout",
        "--web.max-requests", "--scrape.timeout", "--pm.probe-timeout",
    }  # fmt: skip
    for flag, documented in flags.items():
        dest = {"--scrape.timeout": "scrape_timeout", "--pm.probe-timeout": "probe_timeout"}.get(
            flag, flag.split(".", 1)[1].replace("-", "_")
        )
        value = getattr(defaults, dest)
        if isinstance(value, str):
            value = parse_duration(value)
        assert documented in (f"{value:g}", f"{value:g} s"), (flag, documented, value)
    limits = Limits()
    by_name = {name.split(" (")[0]: default for name, (default, _) in rows.items()}
    assert by_name["a request's head"] == f"{framing.MAX_HEADERS // 1024} KiB"
    assert by_name["a request's body"] == f"{framing.MAX_BODY // 1024} KiB"
    assert by_name["bcrypt checks waiting for a thread"] == str(web.BCRYPT_QUEUE)
    assert by_name["connections accepted per turn of the event loop"] == str(web._ACCEPT_BATCH)
    assert by_name["connections the kernel holds before the exporter accepts them"].startswith(f"{web.BACKLOG} ")
    assert by_name["a response the client does not read"] == f"{limits.write_timeout:g} s"
    assert by_name["the status page or the capabilities XML"] == f"{limits.request_timeout:g} s"
    assert by_name["shutdown: requests in flight may finish"] == f"{limits.drain_timeout:g} s"
