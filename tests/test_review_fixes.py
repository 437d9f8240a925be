"""Behaviour on real-host corner cases: offline CPUs' cpufreq policies, caches without a
size, kept-alive connections after odd requests, a D-Bus that never says hello, and
s390x cpuinfo with offline CPUs."""

from __future__ import annotations

import errno
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from host_pm_exporter.hostfs import HostFS, ReadError
from host_pm_exporter.probes import logind
from host_pm_exporter.readers.cpuinfo import parse_cpuinfo
from host_pm_exporter.readers.dvfs import read_dvfs
from tests.conftest import FIXTURES, by_label, fixture_args, raw_request, samples, series


class OfflinePolicyFS(HostFS):
    """sysfs as the kernel has it with CPU 1 offline: policy1 stays, and reading any of
    its attributes fails with EBUSY."""

    def read(self, path: str) -> str | None:
        if "/cpufreq/policy1/" in path:
            raise ReadError(f"{path}: Device or resource busy", errno.EBUSY)
        return super().read(path)


def test_the_policy_of_an_offline_cpu_is_skipped_not_fatal() -> None:
    root = FIXTURES / "server-s3"
    fs = OfflinePolicyFS(str(root / "proc"), str(root / "sys"), str(root))
    facts = read_dvfs(fs, lambda cpu: None, frozenset({0, 2, 3}))
    assert facts is not None
    assert facts.governor_cpus == {"schedutil": 3}

    class Broken(HostFS):
        def read(self, path: str) -> str | None:
            if "/cpufreq/policy1/" in path:
                raise ReadError(f"{path}: Input/output error", errno.EIO)
            return super().read(path)

    try:
        read_dvfs(Broken(str(root / "proc"), str(root / "sys"), str(root)), lambda cpu: None, frozenset({0, 2, 3}))
    except ReadError:
        pass
    else:
        raise AssertionError("other errors still fail the collector")


def test_caches_without_a_size_still_count(tmp_path: Path, exporter: Any) -> None:
    root = tmp_path / "host"
    shutil.copytree(FIXTURES / "arm64-altra", root, symlinks=True)
    for size in (root / "sys/devices/system/cpu").glob("cpu*/cache/index*/size"):
        size.unlink()
    got = samples(exporter([*fixture_args(root), "--pm.probes=kernel"]).scrape())
    assert got['host_exporter_collector_success{collector="cache"}'] == 1
    assert got['host_cpu_cache_instances{level="1",type="Data"}'] == 32
    assert not any(k.startswith("host_cpu_cache_size_bytes") for k in got)


def test_head_errors_have_no_body_on_a_kept_alive_connection(exporter: Any) -> None:
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=kernel"])
    reply = raw_request(
        exp.port,
        b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    first, _, rest = reply.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404")
    assert rest.startswith(b"HTTP/1.1 200"), rest[:80]
    assert rest.endswith(b"\r\n\r\nok\n")


def test_a_request_body_is_not_read_as_the_next_request(exporter: Any) -> None:
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=kernel"])
    reply = raw_request(
        exp.port,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=bGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 405")
    assert reply.count(b"HTTP/1.1 ") == 1, "the connection closes after a request with a body"
    assert b"a=bGET" not in reply
    assert exp.get("/healthz")[0] == 200


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


S390_OFFLINE = """vendor_id       : IBM/S390
# processors    : 3
bogomips per cpu: 3241.00
max thread id   : 0
features\t: esan3 zarch stfle msa ldisp eimm dfp sie
processor 0: version = 00,  identification = 1A2B38,  machine = 8561
processor 2: version = 00,  identification = 1A2B38,  machine = 8561
processor 3: version = 00,  identification = 1A2B38,  machine = 8561

cpu number      : 0
physical id     : 1
core id         : 0

cpu number      : 2
physical id     : 1
core id         : 2

cpu number      : 3
physical id     : 2
core id         : 3
"""


def test_s390x_per_cpu_blocks_are_matched_by_cpu_number() -> None:
    info = parse_cpuinfo(S390_OFFLINE)
    assert [(e.cpu, e.package, e.core) for e in info.cpus] == [(0, 1, 0), (2, 1, 2), (3, 2, 3)]


def test_helpers_are_used() -> None:
    assert series('a{x="1"} 1\n', "a") == [{"x": "1"}]
    assert by_label('a{x="1"} 2\n', "a", "x") == {"1": 2.0}
