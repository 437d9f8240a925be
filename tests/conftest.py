"""Shared test plumbing: fixture hosts, scrapes built in process, the installed exporter
as a real process, and system tools that must be present in CI (tests/run installs
them)."""

from __future__ import annotations

import atexit
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest

from host_pm_exporter.cli import parse_config
from host_pm_exporter.wiring import make_exposition
from tests import fixture_hosts, hostgen

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
IN_CI = bool(os.environ.get("CI"))
HOSTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())
GENERATED = frozenset(spec.name for spec in fixture_hosts.HOSTS)  # trees built by hostgen
PM_HOSTS = [h for h in HOSTS if "supported" in json.loads((FIXTURES / h / "expected.json").read_text())]
CPU_HOSTS = [h for h in HOSTS if "topology" in json.loads((FIXTURES / h / "expected.json").read_text())]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.prom from the scrapes")


# What makes a test `slow`: it starts a process (the exporter, a system tool, a daemon),
# needs root, or copies or builds fixture trees: the calls below, in the test, in a
# function it calls directly, or in a fixture it uses.  `root` tests call need_root;
# `live_host` tests read this machine rather than a fixture tree.  `pytest -m "not slow"`
# is the inner loop; the markers are declared in pyproject.toml.
_SLOW_CALLS = (
    "subprocess.",
    "Popen(",
    "start_exporter(",
    "exporter(",
    "need_tool(",
    "need_root(",
    "fresh_python(",
    "host_copy",
    "copytree(",
    "generated_trees(",
    "build_fixtures(",
    "build(synthetic",
)
_LIVE_HOST_MODULES = ("test_this_host.py",)


@cache
def _source(fn: Callable[..., object]) -> str:
    """The function's source and that of the functions it names (one level down)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return ""
    code = getattr(fn, "__code__", None)
    names = getattr(fn, "__globals__", {})
    for name in code.co_names if code is not None else ():
        called = names.get(name)
        if inspect.isfunction(called) and called is not fn:
            try:
                text += inspect.getsource(called)
            except (OSError, TypeError):
                continue
    return text


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is None:
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        defs = fixtures.name2fixturedefs.values() if fixtures is not None else ()
        text = _source(fn) + "".join(_source(d.func) for group in defs for d in group)
        if any(call in text for call in _SLOW_CALLS) or item.path.name in _LIVE_HOST_MODULES:
            item.add_marker(pytest.mark.slow)
        if "need_root(" in text:
            item.add_marker(pytest.mark.root)
        if item.path.name in _LIVE_HOST_MODULES:
            item.add_marker(pytest.mark.live_host)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def expected(host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / host / "expected.json").read_text())
    return data


@cache
def generated_trees() -> Path:
    """The hostgen-built fixture hosts, built once per test run into a temporary
    directory that everyone may read (tests drop to nobody), removed at exit."""
    top = Path(tempfile.mkdtemp(prefix="host-pm-fixtures-"))
    os.chmod(top, 0o755)
    atexit.register(shutil.rmtree, top, True)
    hostgen.build_fixtures(top)
    return top


def host_root(host: str) -> Path:
    """Where a fixture host's tree is: built by hostgen, or hand-written in tests/fixtures."""
    return generated_trees() / host if host in GENERATED else FIXTURES / host


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


T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 15.0,
    interval: float = 0.05,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> T:
    """Poll `check` until it returns something truthy and return that; an `OSError`
    counts as "not yet".  Fails with `what` (and the tail of the `log` file) on timeout
    or when `proc` exits first."""

    def tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited {proc.returncode}\n{tail()}")
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s\n{tail()}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


@pytest.fixture
def host_copy() -> Iterator[Callable[..., Path]]:
    """Copies of fixture hosts that a test may spoil: ``host_copy("arm64-altra")``.
    Made outside pytest's private temp tree and readable by everyone, so tests that
    drop to nobody read them too; removed afterwards."""
    tops: list[str] = []

    def copy(host: str = "server-s3") -> Path:
        top = tempfile.mkdtemp(prefix="host-pm-copy-")
        tops.append(top)
        os.chmod(top, 0o755)
        root = Path(top) / host
        shutil.copytree(host_root(host), root, symlinks=True, copy_function=shutil.copyfile)
        for dirpath, _dirnames, filenames in os.walk(root):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        return root

    yield copy
    for top in tops:
        shutil.rmtree(top, ignore_errors=True)


def scrape(host: str | Path, *args: str, exporter_metrics: str = "none") -> str:
    """One scrape in process: the flags parsed as the exporter parses them, then the
    snapshot built and rendered by the same registry the HTTP server serves, without
    HTTP or a process.  Kernel probe only unless `args` say otherwise; the exporter's
    own metrics at the `--web.exporter-metrics` level given (none, process, all)."""
    argv = [*fixture_args(host), "--pm.probes=kernel", f"--web.exporter-metrics={exporter_metrics}", *args]
    return make_exposition(parse_config(argv)).encode().decode()


@cache
def scrape_fixture(host: str) -> str:
    """The in-process scrape of a committed fixture host (they do not change during a run)."""
    return scrape(host)


def fake_pm_is_supported(directory: Path, body: str) -> Path:
    """A stand-in for pm-utils' pm-is-supported: a shell script with `body`, executable
    by everyone (tests run the exporter as nobody too)."""
    path = directory / "pm-is-supported"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def exporter_command() -> list[str]:
    """The installed console script, next to this interpreter."""
    script = Path(sys.executable).with_name("host-pm-exporter")
    assert script.is_file(), f"console script not installed at {script}: pip install -e ."
    return [str(script)]


def fresh_python(code: str) -> str:
    """What `code` prints, run by this interpreter in a new process (what importing and
    serving load, seen from a clean start)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


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

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True

    try:
        wait_until(listening, "exporter listening", proc=proc, log=stderr_path)
    except AssertionError:
        proc.kill()
        raise
    return exp


def fixture_args(host: str | Path) -> list[str]:
    root = Path(host) if isinstance(host, Path) else host_root(host)
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


_LABELS = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of `name`, in order."""
    out = []
    for line in text.split("\n"):  # lines end at \n only (not at \x0b, \x85...)
        if line.startswith(name + "{"):
            out.append(dict(_LABELS.findall(line[: line.rindex("}") + 1])))
        elif line.startswith(name + " "):
            out.append({})
    return out


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """The samples of `name` keyed by one label's value: {"powersave": 4.0, ...}."""
    out = {}
    for line in text.split("\n"):  # lines end at \n only (not at \x0b, \x85...)
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
    for line in text.split("\n"):  # lines end at \n only (not at \x0b, \x85...)
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
