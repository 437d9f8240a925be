"""The logind probe against a real D-Bus peer: a private dbus-daemon on a socket the
test owns, and a stand-in logind service on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter.probes import logind
from tests.conftest import fixture_args, need_tool, samples

METHODS = logind.METHODS  # operation -> method


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    daemon = need_tool("dbus-daemon", "dbus")
    address = f"unix:path={tmp_path / 'bus'}"
    proc = subprocess.Popen(
        [daemon, "--session", f"--address={address}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("unix:path="), line
    yield address
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def fake_logind(bus: str) -> Iterator[Any]:
    procs = []

    def start(**answers: str) -> None:
        args = [f"{method}={answer}" for method, answer in answers.items()]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.fake_logind", bus, *args],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("answer", ["yes", "no", "na", "challenge"])
def test_each_answer_maps_as_documented(bus: str, fake_logind: Any, answer: str) -> None:
    fake_logind(**{method: answer for method in METHODS.values()})
    result = logind.run(2.0, address=bus)
    assert result.error is None
    assert result.success
    want = answer in ("yes", "challenge")
    assert result.answers == {op: want for op in METHODS}
    assert result.raw == {op: answer for op in METHODS}


def test_mixed_answers_and_an_old_logind_without_suspend_then_hibernate(bus: str, fake_logind: Any) -> None:
    fake_logind(CanSuspend="yes", CanHibernate="na", CanHybridSleep="challenge")  # no 4th method
    result = logind.run(2.0, address=bus)
    assert result.success, result.error
    assert result.answers == {
        "suspend": True, "hibernate": False, "suspend_hybrid": True, "suspend_then_hibernate": False,
    }  # fmt: skip
    assert result.raw["suspend_then_hibernate"] == "na"


def test_a_dbus_error_leaves_that_operation_unknown(bus: str, fake_logind: Any) -> None:
    fake_logind(CanSuspend="yes", CanHibernate="error", CanHybridSleep="no", CanSuspendThenHibernate="no")
    result = logind.run(2.0, address=bus)
    assert not result.success
    assert "AccessDenied" in (result.error or "")
    assert "hibernate" not in result.answers
    assert result.answers["suspend"] is True
    assert result.answers["suspend_hybrid"] is False


def test_a_logind_that_never_answers_is_cut_off_at_the_timeout(bus: str, fake_logind: Any) -> None:
    fake_logind(CanSuspend="hang")
    start = time.monotonic()
    result = logind.run(0.5, address=bus)
    assert time.monotonic() - start < 1.5
    assert not result.success
    assert "timed out" in (result.error or "")


def test_no_bus_at_all(tmp_path: Path) -> None:
    result = logind.run(1.0, address=f"unix:path={tmp_path / 'nothing-here'}")
    assert not result.success
    assert "not reachable" in (result.error or "")
    assert result.answers == {}


def test_bus_without_logind_on_it(bus: str) -> None:
    result = logind.run(1.0, address=bus)
    assert not result.success
    assert "ServiceUnknown" in (result.error or "") or "NameHasNoOwner" in (result.error or "")


def test_exporter_scrape_over_the_private_bus(bus: str, fake_logind: Any, exporter: Any) -> None:
    fake_logind(
        CanSuspend="yes",
        CanHibernate="no",
        CanHybridSleep="na",
        CanSuspendThenHibernate="challenge",
    )
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus}
    exp = exporter([*fixture_args("laptop-s2idle"), "--pm.probes=kernel,logind"], env=env)
    got = samples(exp.scrape())
    assert got['host_pm_probe_success{probe="logind"}'] == 1
    assert got['host_pm_probe_supported{operation="suspend",probe="logind"}'] == 1
    assert got['host_pm_probe_supported{operation="hibernate",probe="logind"}'] == 0
    assert got['host_pm_probe_supported{operation="suspend_hybrid",probe="logind"}'] == 0
    assert got['host_pm_probe_supported{operation="suspend_then_hibernate",probe="logind"}'] == 1
    assert got['host_pm_logind_answer_info{answer="no",operation="hibernate"}'] == 1
    assert got['host_pm_logind_answer_info{answer="challenge",operation="suspend_then_hibernate"}'] == 1


def test_exporter_without_a_bus_reports_absent_logind_and_logs_once(tmp_path: Path, exporter: Any) -> None:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'none'}"}
    exp = exporter([*fixture_args("laptop-s2idle"), "--pm.probes=kernel,logind"], env=env)
    for _ in range(3):
        got = samples(exp.scrape())
        assert got['host_pm_probe_tool_present{probe="logind"}'] == 0  # absent, not failed
        assert 'host_pm_probe_success{probe="logind"}' not in got
        assert got['host_pm_probe_success{probe="kernel"}'] == 1
        assert not any(k.startswith("host_pm_probe_supported") and 'probe="logind"' in k for k in got)
    log = exp.stderr()
    assert log.count("probe tool absent") == 1, log
    assert "probe failed" not in log
    assert "Traceback" not in log


def test_a_bus_that_never_says_hello_costs_one_timeout_and_no_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "bus")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    stop = threading.Event()
    held = []

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            data = b""
            while b"BEGIN\r\n" not in data:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
                if b"AUTH" in chunk:
                    conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
            # authenticated: never answer Hello

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    before = threading.active_count()
    try:
        start = time.monotonic()
        result = logind.run(0.5, address=f"unix:path={path}")
        assert time.monotonic() - start < 1.5
        assert not result.success
        assert "Hello" in (result.error or "")
        assert threading.active_count() == before
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()
