"""Shared test plumbing: fixture hosts, the installed exporter as a real process, and
system tools that must be present in CI (tests/run installs them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
IN_CI = bool(os.environ.get("CI"))
HOSTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())
PM_HOSTS = [h for h in HOSTS if "supported" in json.loads((FIXTURES / h / "expected.json").read_text())]
CPU_HOSTS = [h for h in HOSTS if "topology" in json.loads((FIXTURES / h / "expected.json").read_text())]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.prom from the scrapes")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def expected(host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / host / "expected.json").read_text())
    return data


def need(condition: bool, reason: str) -> None:
    """A test's system requirement: a failure in CI (tests/run installs everything), a
    skip with the reason elsewhere."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"{name} not found (Debian package {package}; tests/run installs it)")
    assert path is not None
    return path


def need_root() -> None:
    need(os.geteuid() == 0, "needs root (mount namespaces, setpriv)")


def exporter_command() -> list[str]:
    """The installed console script, next to this interpreter."""
    script = Path(sys.executable).with_name("host-pm-exporter")
    assert script.is_file(), f"console script not installed at {script}: pip install -e ."
    return [str(script)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Exporter:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(
        self, path: str = "/metrics", headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def scrape(self) -> str:
        status, _, body = self.get()
        assert status == 200, body
        return body.decode()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(10)


def start_exporter(
    args: Sequence[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    port: int | None = None,
) -> Exporter:
    port = port or free_port()
    stderr_path = tmp_path / f"exporter-{port}.log"
    cmd = [*prefix, *exporter_command(), f"--web.listen-address=127.0.0.1:{port}", *args]
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    exp = Exporter(proc, port, stderr_path, list(args))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exporter exited {proc.returncode}: {exp.stderr()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return exp
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"exporter did not listen: {exp.stderr()}")


def fixture_args(host: str | Path) -> list[str]:
    root = Path(host) if isinstance(host, Path) else FIXTURES / host
    return [
        f"--path.procfs={root / 'proc'}",
        f"--path.sysfs={root / 'sys'}",
        f"--path.rootfs={root}",
    ]


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Any]:
    """Start exporters on demand; every one is stopped (and must exit cleanly) afterwards."""
    started: list[Exporter] = []

    def start(args: Sequence[str], **kwargs: Any) -> Exporter:
        exp = start_exporter(args, tmp_path, **kwargs)
        started.append(exp)
        return exp

    yield start
    for exp in started:
        assert exp.stop() == 0, exp.stderr()


def scrape_hosts(hosts: Sequence[str], tmp_path: Path) -> dict[str, str]:
    """One scrape (kernel probe only) of each fixture host by the installed console script."""
    out = {}
    for host in hosts:
        exp = start_exporter([*fixture_args(host), "--pm.probes=kernel"], tmp_path)
        try:
            out[host] = exp.scrape()
        finally:
            assert exp.stop() == 0, exp.stderr()
    return out


_LABELS = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of `name`, in order."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            out.append(dict(_LABELS.findall(line[: line.rindex("}") + 1])))
        elif line.startswith(name + " "):
            out.append({})
    return out


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """The samples of `name` keyed by one label's value: {"powersave": 4.0, ...}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = dict(_LABELS.findall(line[: line.rindex("}") + 1]))
            out[labels[label]] = float(line.rpartition(" ")[2])
    return out


def raw_request(port: int, data: bytes) -> bytes:
    """Send raw bytes to a loopback server and read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def samples(text: str) -> dict[str, float]:
    """Sample lines of an exposition, keyed by name{labels} as printed."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
