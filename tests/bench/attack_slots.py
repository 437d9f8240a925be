"""Connection slots and HTTP framing under the attacks of issue 19, on loopback, bounded
in count and time.  Run by hand:

    .venv/bin/python -m tests.bench.attack_slots [--runs 3] [--slow 1000] [--seconds 20]

1. Slowloris past the cap: `--slow` connections that send part of a request's headers
   and never finish, held (then, harder: reopened as soon as the exporter closes one,
   from a process of their own) for `--seconds` while a client scrapes /metrics on a new
   connection every 0.1 s: the share of 200s (goal: >= 95 %) and their p50/p99 (goal:
   p99 <= 1 s).
2. Four clients sending 10,000 tiny headers (70 KB) in one write, again and again,
   while a client scrapes every 0.1 s: their statuses, and the scrape's p50/p99.
3. 1,000 SIGHUPs during scrapes: lines on stderr that are not logfmt records.
Each figure is given as min / median / max over `--runs` runs (a new exporter each).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import selectors
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.bench.attack_common import exporter, pct, spread

SLOW = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
HEADERS = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"a:b\r\n" * 10000 + b"\r\n"


def fetch(port: int, data: bytes = SCRAPE) -> int:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(data)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    except OSError:
        return -1
    return int(reply[9:12]) if reply.startswith(b"HTTP/1.1 ") else 0


def scraper(port: int, seconds: float) -> tuple[collections.Counter[int], list[float]]:
    statuses: collections.Counter[int] = collections.Counter()
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        status = fetch(port)
        statuses[status] += 1
        if status == 200:
            times.append(time.perf_counter() - start)
        time.sleep(0.1)
    return statuses, times


def slowloris(port: int, count: int, stop: Any, opened: Any, reopen: bool) -> None:
    """Hold `count` slow connections; with `reopen`, reopen each one the exporter closes
    (in a process of its own, so that it does not share the scraper's interpreter lock)."""
    sel = selectors.DefaultSelector()

    def open_one() -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(SLOW)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
            opened.value += 1
        except OSError:
            pass

    for _ in range(count):
        open_one()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            sel.unregister(sock)
            sock.close()
            if reopen:
                open_one()
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def slots_run(args: argparse.Namespace, out: dict[str, list[float]], reopen: bool) -> None:
    with exporter(["--web.read-header-timeout=60s"]) as (popen, port, _dir):
        proc = psutil.Process(popen.pid)
        stop = multiprocessing.Event()
        opened = multiprocessing.Value("q", 0)
        attacker = multiprocessing.Process(target=slowloris, args=(port, args.slow, stop, opened, reopen), daemon=True)
        attacker.start()
        time.sleep(2)
        statuses, times = scraper(port, args.seconds)
        fds = proc.num_fds()
        stop.set()
        attacker.join(30)
        opened_count = opened.value
        total = sum(statuses.values())
        share = 100 * statuses[200] / total if total else 0.0
        kind = "reopened" if reopen else "held"
        out[f"slowloris ({kind}): scrapes 200 %"].append(share)
        out[f"slowloris ({kind}): p50 ms"].append(pct(times, 0.5) * 1e3)
        out[f"slowloris ({kind}): p99 ms"].append(pct(times, 0.99) * 1e3)
        print(f"  {args.slow} slow-header connections ({kind}: {opened_count} opened): scrapes "
              f"{dict(statuses)} = {share:.1f} % 200, p50 {pct(times, 0.5) * 1e3:.0f} ms "
              f"p99 {pct(times, 0.99) * 1e3:.0f} ms; exporter fds {fds}")  # fmt: skip


def headers_run(args: argparse.Namespace, out: dict[str, list[float]]) -> None:
    with exporter() as (_popen, port, _dir):
        stop = threading.Event()
        got: collections.Counter[int] = collections.Counter()

        def flooder() -> None:
            while not stop.is_set():
                got[fetch(port, HEADERS)] += 1

        threads = [threading.Thread(target=flooder, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        statuses, times = scraper(port, args.seconds / 2)
        stop.set()
        for thread in threads:
            thread.join(30)
        out["header flood: p99 ms"].append(pct(times, 0.99) * 1e3)
        print(f"  4 clients x 10,000 tiny headers: they got {dict(got)}; scrapes {dict(statuses)}, "
              f"p50 {pct(times, 0.5) * 1e3:.0f} ms p99 {pct(times, 0.99) * 1e3:.0f} ms")  # fmt: skip


def sighup_run(out: dict[str, list[float]]) -> None:
    with exporter() as (popen, port, directory):
        assert fetch(port) == 200
        stop = threading.Event()
        statuses: collections.Counter[int] = collections.Counter()

        def scrape() -> None:
            while not stop.is_set():
                statuses[fetch(port)] += 1

        thread = threading.Thread(target=scrape, daemon=True)
        thread.start()
        for _ in range(1000):
            popen.send_signal(signal.SIGHUP)
        time.sleep(1)
        stop.set()
        thread.join(30)
        stderr = Path(directory / "stderr").read_text(errors="replace")
        raw = [line for line in stderr.splitlines() if not line.startswith("ts=")]
        rereads = stderr.count("SIGHUP: web config re-read")
        out["SIGHUP storm: raw stderr lines"].append(len(raw))
        print(f"  1,000 SIGHUPs: alive {popen.poll() is None}, scrapes {dict(statuses)}, "
              f"raw stderr lines {len(raw)}, re-reads logged {rereads}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    out: dict[str, list[float]] = collections.defaultdict(list)
    for run in range(args.runs):
        print(f"run {run + 1}:")
        slots_run(args, out, reopen=False)
        slots_run(args, out, reopen=True)
        headers_run(args, out)
        sighup_run(out)
    print("summary (default flags: --web.max-connections=512):")
    for name, values in out.items():
        print(f"  {name}: {spread(values)}")


if __name__ == "__main__":
    main()
