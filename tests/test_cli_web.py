"""Flags, the HTTP surface and shutdown of the installed console script."""

from __future__ import annotations

import gzip
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter import __version__
from tests.conftest import (
    Exporter,
    exporter_command,
    fixture_args,
    raw_request,
    samples,
    scrape,
    start_exporter,
)

BASE = [*fixture_args("server-s3"), "--pm.probes=kernel"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter over HTTP for the tests that only ask it things."""
    exp = start_exporter(BASE, tmp_path_factory.mktemp("served"))
    yield exp
    assert exp.stop() == 0, exp.stderr()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exporter_command(), *args], capture_output=True, text=True, timeout=30, check=False)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert f"version {__version__}" in result.stdout


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "host_pm_exporter", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        ("--pm.probe-timeout=abc", "invalid duration"),
        ("--pm.probe-timeout=0s", "positive"),
        ("--pm.probes=kernel,bogus", "unknown probe 'bogus'"),
        ("--web.listen-address=nonsense", "invalid listen address"),
        ("--web.listen-address=:99999", "invalid port"),
        ("--web.telemetry-path=metrics", "must start with '/'"),
        ("--pm.pm-is-supported=bin/pm-is-supported", "not an absolute path"),
        ("--log.level=loud", "invalid choice"),
        ("--collector.nonexistent", "unrecognized arguments"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(flag: str, needle: str) -> None:
    result = run(flag)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_address_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(f"--web.listen-address=127.0.0.1:{port}", *BASE)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_landing_page_links_to_the_telemetry_path(exporter: Any) -> None:
    exp = exporter([*BASE, "--web.telemetry-path=/custom-metrics"])
    status, headers, body = exp.get("/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'href="/custom-metrics"' in body
    assert exp.get("/custom-metrics")[0] == 200
    assert exp.get("/metrics")[0] == 404


def test_healthz_404_405_and_head(served: Exporter) -> None:
    exp = served
    assert exp.get("/healthz")[0:3:2] == (200, b"ok\n")
    status, _, body = exp.get("/nope")
    assert status == 404
    assert b"not found" in body
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = exp.get("/metrics", method=method)
        assert status == 405
        assert headers["Allow"] == "GET, HEAD"
    status, headers, body = exp.get("/metrics", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) > 0


def test_gzip_when_asked(served: Exporter) -> None:
    exp = served
    status, headers, body = exp.get("/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert b"host_pm_supported" in gzip.decompress(body)
    _, plain_headers, plain = exp.get("/metrics")
    assert "Content-Encoding" not in plain_headers
    assert plain.startswith(b"# HELP")


def test_openmetrics_by_content_negotiation(served: Exporter) -> None:
    exp = served
    status, headers, body = exp.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert b"# TYPE host_pm_mem_sleep_mode info" in body
    _, headers, _ = exp.get("/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_name_filter(served: Exporter) -> None:
    exp = served
    _, _, body = exp.get("/metrics?name[]=host_pm_supported")
    names = {k.split("{")[0] for k in samples(body.decode())}
    assert names == {"host_pm_supported"}


def test_malformed_request_gets_400_and_the_server_lives_on(served: Exporter) -> None:
    exp = served
    reply = raw_request(exp.port, b"GET /metrics HTTP/1.1 trailing-junk\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    reply = raw_request(exp.port, b"GET /metrics HTTP/7.q\r\n\r\n")
    assert b"400" in reply
    reply = raw_request(exp.port, b"\x00\xffGARBAGE\r\n\r\n")  # not even HTTP: HTTP/0.9 rules
    assert b"400" in reply
    reply = raw_request(exp.port, b"GET /metrics HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n")
    assert b" 431 " in reply.split(b"\r\n")[0] or b" 400 " in reply.split(b"\r\n")[0]
    assert exp.get("/healthz")[0] == 200
    assert "Traceback" not in exp.stderr()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown(tmp_path: Path, sig: int) -> None:
    exp = start_exporter(BASE, tmp_path)
    exp.scrape()
    assert exp.stop(sig) == 0
    log = exp.stderr()
    assert "shutting down" in log
    assert "Traceback" not in log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", exp.port), timeout=1).close()


def test_collector_switches() -> None:
    got = samples(scrape("server-s3", "--collector.disable-defaults", "--collector.lockdown"))
    assert 'host_exporter_collector_success{collector="lockdown"}' in got
    assert 'host_exporter_collector_success{collector="power"}' not in got
    assert not any(k.startswith("host_pm_supported") for k in got)
    assert got['host_pm_probe_success{probe="kernel"}'] == 1  # the kernel probe still reads power

    got = samples(scrape("server-s3", "--no-collector.lockdown", "--pm.probes="))
    assert 'host_exporter_collector_success{collector="lockdown"}' not in got
    assert got['host_pm_supported{state="S3"}'] == 1
    assert not any(k.startswith("host_pm_probe_") for k in got)


def test_each_switch_drops_its_own_metrics_only() -> None:
    """Switching off idle leaves the suspend statistics, and the other way round."""
    no_idle = samples(scrape("server-s3", "--no-collector.idle"))
    assert "host_pm_suspend_success_total" in no_idle
    assert not any(k.startswith("host_cpuidle_") for k in no_idle)
    no_suspend = samples(scrape("server-s3", "--no-collector.suspend"))
    assert not any(k.startswith("host_pm_suspend_") for k in no_suspend)
    assert any(k.startswith("host_cpuidle_state_") for k in no_suspend)


def test_default_listen_port_is_documented() -> None:
    from host_pm_exporter.cli import DEFAULT_PORT, build_parser

    assert not 9100 <= DEFAULT_PORT <= 9999
    assert build_parser().parse_args([]).listen == ("", DEFAULT_PORT)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f":{DEFAULT_PORT}" in readme


def test_keep_alive_serves_several_scrapes_on_one_connection(served: Exporter) -> None:
    import http.client

    exp = served
    conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
    try:
        for path in ("/metrics", "/healthz", "/metrics", "/nope"):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.version == 11
            assert int(resp.getheader("Content-Length", "-1")) == len(body)
            assert resp.status == (404 if path == "/nope" else 200)
        assert conn.sock is not None  # still the same, open connection
    finally:
        conn.close()


def test_head_errors_have_no_body_on_a_kept_alive_connection(served: Exporter) -> None:
    exp = served
    reply = raw_request(
        exp.port,
        b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    first, _, rest = reply.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404")
    assert rest.startswith(b"HTTP/1.1 200"), rest[:80]
    assert rest.endswith(b"\r\n\r\nok\n")


def test_a_request_body_is_not_read_as_the_next_request(served: Exporter) -> None:
    """The body is framed by its Content-Length (h11's rules): it is dropped, and the
    request after it is the one that follows it, not the body."""
    exp = served
    reply = raw_request(
        exp.port,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=b"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 405")
    assert reply.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 200" in reply
    assert reply.endswith(b"ok\n")
    assert exp.get("/healthz")[0] == 200


def test_a_plain_http_exporter_serves_fingerprints_and_gzip(tmp_path: Path) -> None:
    exp = start_exporter([*fixture_args("spr-2s"), "--pm.probes=kernel", "--web.exporter-metrics=process"], tmp_path)
    try:
        text = exp.scrape()
        assert 'host_cpu_features_info{fingerprint="' in text
        status, headers, body = exp.get(headers={"Accept-Encoding": "gzip"})
        assert (status, headers.get("Content-Encoding")) == (200, "gzip")
        assert gzip.decompress(body).decode().startswith("# HELP")
    finally:
        assert exp.stop() == 0, exp.stderr()
