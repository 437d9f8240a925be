"""The HTTP front under hostile and heavy load, on loopback, bounded in count and time.
Run by hand:

    .venv/bin/python tests/bench/http_load.py [--slow 1000] [--clients 50] [--seconds 60]

1. `--slow` connections that send part of a request's headers and then trickle one
   byte a second, held while one client scrapes normally: that client's p50/p99, and
   the exporter's threads and open fds, against its caps.
2. `--clients` threads scraping as fast as they can over kept-alive connections for
   `--seconds`: statuses (only 200 and deliberate 503 are allowed), throughput, p50/p99,
   and RSS, threads and fds before and after.
3. The fd limit: the exporter run with RLIMIT_NOFILE 64, 200 connections opened at
   once; its CPU while exhausted (it must not spin) and whether it answers by itself
   once they are gone.
4. Beside node_exporter on the same tree (``--collector.cpu --collector.cpu.info
   --collector.cpufreq``), by ``wrk --latency`` from one run: 50 connections (req/s,
   p50, p99, refusals) and an HA pair (2 connections scraping back to back), with how
   many of our scrapes shared a reading in flight (the exporter's debug log says so).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import re
import resource
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil

from tests.bench.scrape_latency import EXPORTER, NODE_EXPORTER_FLAGS, free_port, start, to_ms

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "tests/fixtures/server-s3"
ARGS = [f"--path.procfs={HOST}/proc", f"--path.sysfs={HOST}/sys", f"--path.rootfs={HOST}", "--pm.probes=kernel"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def footprint(proc: psutil.Process) -> str:
    return f"rss {proc.memory_info().rss / 2**20:.1f} MiB, threads {proc.num_threads()}, fds {proc.num_fds()}"


def scrape_times(port: int, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for _ in range(count):
        start_ = time.perf_counter()
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        out.append((time.perf_counter() - start_) * 1000)
    conn.close()
    return out


def slow_clients(port: int, proc: psutil.Process, count: int) -> None:
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        except OSError:
            break
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    times = scrape_times(port, 200)
    print(f"1. {len(held)} slow-header connections held: a normal scrape p50 {pct(times, 0.5):.2f} ms, "
          f"p99 {pct(times, 0.99):.2f} ms; exporter {footprint(proc)}")  # fmt: skip
    stop.set()
    for sock in held:
        sock.close()


def load(port: int, proc: psutil.Process, clients: int, seconds: float) -> None:
    time.sleep(1)
    before = footprint(proc)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        codes: dict[int, int] = {}
        while time.monotonic() < deadline:
            start_ = time.perf_counter()
            try:
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    errors.append(repr(err))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append((time.perf_counter() - start_) * 1000)
            codes[resp.status] = codes.get(resp.status, 0) + 1
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(2)
    total = sum(statuses.values())
    print(f"2. {clients} clients x {seconds:g} s: {total} responses {dict(sorted(statuses.items()))}, "
          f"{len(errors)} errors, {total / seconds:.0f} req/s, p50 {pct(latencies, 0.5):.1f} ms, "
          f"p99 {pct(latencies, 0.99):.1f} ms")  # fmt: skip
    print(f"   before: {before}\n   after:  {footprint(proc)}")
    if errors:
        print("   first errors:", errors[:3])


def fd_limit() -> None:
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    cmd = [EXPORTER, *ARGS, f"--web.listen-address=127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, preexec_fn=limit)  # noqa: PLW1509 - bench only
    time.sleep(1.5)
    ps = psutil.Process(proc.pid)
    held = []
    for _ in range(200):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            break
    cpu0 = sum(ps.cpu_times()[:2])
    time.sleep(3)
    spin = (sum(ps.cpu_times()[:2]) - cpu0) / 3
    for sock in held:
        sock.close()
    start_ = time.monotonic()
    ok = False
    while time.monotonic() - start_ < 10:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                break
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    warnings = [line for line in err.decode().splitlines() if "level=warn" in line]
    print(f"3. fd limit 64, {len(held)} connections opened: CPU while exhausted {spin * 100:.1f} % of a core, "
          f"answering again {time.monotonic() - start_:.2f} s after they closed: {ok}; "
          f"{len(warnings)} warning lines, e.g. {warnings[:1]}")  # fmt: skip


def wrk_load(port: int, connections: int, seconds: int) -> tuple[float, float, float, int, int]:
    """req/s, p50 ms, p99 ms, non-2xx responses, responses."""
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
         f"http://127.0.0.1:{port}/metrics"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, p50, p99, int(refused.group(1)) if refused else 0, total


def beside_node_exporter(seconds: int) -> None:
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node or not shutil.which("wrk"):
        print("4. skipped: needs wrk and prometheus-node-exporter")
        return
    ours_port, node_port = free_port(), free_port()
    log = Path(f"/tmp/host-pm-exporter-load-{ours_port}.log")
    with log.open("wb") as err:
        ours = subprocess.Popen(
            [EXPORTER, *ARGS, "--log.level=debug", f"--web.listen-address=127.0.0.1:{ours_port}"], stderr=err
        )
    theirs = start([node, f"--path.procfs={HOST}/proc", f"--path.sysfs={HOST}/sys", *NODE_EXPORTER_FLAGS], node_port)
    try:
        time.sleep(1.5)
        print(f"4. wrk, {seconds} s each, same tree ({HOST.name}), one run")
        print(f"   {'':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} {'shared':>14}")
        for connections, label in ((50, "50 connections"), (2, "HA pair (2 connections)")):
            rows = {}
            for name, port in (("host-pm-exporter", ours_port), ("node_exporter", node_port)):
                shared_before = log.read_text().count("sharing a reading in flight")
                rps, p50, p99, refused, total = wrk_load(port, connections, seconds)
                shared = log.read_text().count("sharing a reading in flight") - shared_before
                rows[name] = (rps, p99)
                share = f"{shared}/{total}" if name == "host-pm-exporter" else ""
                print(f"   {label + ', ' + name:<44} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f} {refused:>8} {share:>14}")
            ratio_rps = rows["host-pm-exporter"][0] / rows["node_exporter"][0]
            ratio_p99 = rows["host-pm-exporter"][1] / rows["node_exporter"][1]
            print(f"   {label}: ours / node_exporter: throughput {ratio_rps:.2f}x, p99 {ratio_p99:.2f}x")
    finally:
        for proc in (ours, theirs):
            proc.terminate()
            proc.wait(15)
        log.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    port = free_port()
    proc = start([EXPORTER, *ARGS, "--web.max-connections=2048"], port)
    try:
        ps = psutil.Process(proc.pid)
        print(f"exporter at start: {footprint(ps)}")
        slow_clients(port, ps, args.slow)
        load(port, ps, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait(15)
    fd_limit()
    beside_node_exporter(int(args.seconds))


if __name__ == "__main__":
    main()
