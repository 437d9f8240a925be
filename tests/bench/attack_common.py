"""What the attack benches share: a TLS exporter with its own certificate, RSS sampling,
percentiles.  Loopback only; every loop is bounded in count and time."""

from __future__ import annotations

import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.bench.scrape_latency import EXPORTER, free_port

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "tests/fixtures/server-s3"
ARGS = [f"--path.procfs={HOST}/proc", f"--path.sysfs={HOST}/sys", f"--path.rootfs={HOST}", "--pm.probes=kernel"]


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def spread(values: Sequence[float], unit: str = "", fmt: str = "{:.1f}") -> str:
    """min / median / max of several runs."""
    if not values:
        return "n/a"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{fmt.format(low)} / {fmt.format(mid)} / {fmt.format(high)}{unit} (min / median / max of {len(values)})"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def make_cert(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "server.key", directory / "server.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    return ctx


@contextmanager
def exporter(
    extra: Sequence[str] = (), web_config: str | None = None, source: str | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """A running exporter (with `web_config` as its web config, CERT and KEY replaced by
    a fresh certificate's paths) on a free loopback port; its directory is yielded too.
    `source`: run the package found there instead (another version, to compare:
    ``git archive <commit> exporter | tar -x -C DIR``, then DIR/exporter)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        args = [*ARGS, *extra]
        if web_config is not None:
            cert, key = make_cert(directory)
            (directory / "web.yml").write_text(web_config.replace("CERT", str(cert)).replace("KEY", str(key)))
            args.append(f"--web.config.file={directory / 'web.yml'}")
        port = free_port()
        command = [EXPORTER] if source is None else [sys.executable, "-m", "host_pm_exporter"]
        env = None if source is None else {**os.environ, "PYTHONPATH": source}
        proc = subprocess.Popen(
            [*command, f"--web.listen-address=127.0.0.1:{port}", *args],
            stderr=(directory / "stderr").open("wb"),
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("the exporter did not start") from None
                    time.sleep(0.1)
            time.sleep(0.3)
            yield proc, port, directory
        finally:
            proc.terminate()
            proc.wait(15)


class Sampler:
    """The highest RSS and fd count of a process, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
                self.peak_fds = max(self.peak_fds, self.proc.num_fds())
            except psutil.Error:
                return
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def settle(proc: psutil.Process, seconds: float = 3.0) -> int:
    """RSS once it has stopped moving (at most `seconds`)."""
    last = proc.memory_info().rss
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc.memory_info().rss
        if abs(now - last) < 256 * 1024:
            return now
        last = now
    return last
