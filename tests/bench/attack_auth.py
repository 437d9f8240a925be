"""Basic auth under the attacks of issue 19, on loopback, bounded in count and time.
Run by hand:

    .venv/bin/python -m tests.bench.attack_auth [--runs 3] [--seconds 20] [--cost 12]

1. `--clients` (50) clients sending distinct wrong passwords as fast as they are
   answered, for `--seconds`, at bcrypt cost `--cost`, while one client with the right
   password scrapes /metrics every 0.2 s: that client's p50/p99 (goal: p99 <= 1 s) and
   the attackers' statuses (401 checked, 503 refused at once).
2. Fire and forget: 20 connections x 150 pipelined wrong passwords, closed at once; the
   exporter's CPU from 3 to 8 s after they left (goal: <= 20 %).
3. Timing of a wrong password for a configured user and for an unknown one (cost 10),
   20 each, one at a time: the medians should be the same.
Each figure is given as min / median / max over `--runs` runs (a new exporter each).
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import threading
import time

import bcrypt
import psutil

from host_pm_exporter.web import basic_credentials
from tests.bench.attack_common import exporter, pct, spread


def config(cost: int) -> str:
    return f"basic_auth_users:\n  prometheus: {bcrypt.hashpw(b'right', bcrypt.gensalt(cost)).decode()}\n"


def get(port: int, user: str, password: str, path: str = "/metrics") -> int:
    auth = basic_credentials(user, password)
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0


def flood(args: argparse.Namespace, out: dict[str, list[float]]) -> None:
    with exporter(web_config=config(args.cost)) as (_popen, port, _dir):
        assert get(port, "prometheus", "right") == 200  # its verdict is cached from here on
        stop = threading.Event()
        statuses: collections.Counter[int] = collections.Counter()
        lock = threading.Lock()

        def attacker(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    status = get(port, "prometheus", f"wrong-{n}-{i}")
                except OSError:
                    status = -1
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=attacker, args=(n,), daemon=True) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        times: list[float] = []
        valid: collections.Counter[int] = collections.Counter()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            valid[get(port, "prometheus", "right")] += 1
            times.append(time.perf_counter() - start)
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(60)
        p50, p99 = pct(times, 0.5) * 1e3, pct(times, 0.99) * 1e3
        out["valid scrape p50 ms"].append(p50)
        out["valid scrape p99 ms"].append(p99)
        print(f"  {args.clients} wrong-password clients, cost {args.cost}, {args.seconds}s: valid scrape "
              f"p50 {p50:.0f} ms p99 {p99:.0f} ms, statuses {dict(valid)}; attackers got {dict(statuses)}")  # fmt: skip


def fire_and_forget(out: dict[str, list[float]], cost: int) -> None:
    with exporter(web_config=config(cost)) as (popen, port, _dir):
        proc = psutil.Process(popen.pid)
        socks = []
        for n in range(20):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            data = b"".join(
                f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_credentials('prometheus', f'w{n}-{i}')}"
                "\r\n\r\n".encode()
                for i in range(150)
            )
            sock.sendall(data)
            socks.append(sock)
        for sock in socks:
            sock.close()
        time.sleep(3)
        before = proc.cpu_times()
        time.sleep(5)
        after = proc.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / 5 * 100
        out["CPU 3-8 s after fire-and-forget %"].append(cpu)
        print(f"  20 x 150 pipelined wrong passwords, closed at once: CPU 3-8 s after {cpu:.1f} %")


def enumeration(out: dict[str, list[float]]) -> None:
    with exporter(web_config=config(10)) as (_popen, port, _dir):
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(20):  # interleaved, so that the machine's load weighs on both alike
            for kind, user in (("known", "prometheus"), ("unknown", "mallory")):
                start = time.perf_counter()
                get(port, user, f"guess{i}")
                times[kind].append(time.perf_counter() - start)
        for kind, values in times.items():
            median = statistics.median(values) * 1e3
            out[f"wrong password, {kind} user, median ms"].append(median)
            print(f"  wrong password, {kind} user (cost 10): median {median:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cost", type=int, default=12)
    args = parser.parse_args()
    out: dict[str, list[float]] = collections.defaultdict(list)
    for run in range(args.runs):
        print(f"run {run + 1}:")
        flood(args, out)
        fire_and_forget(out, args.cost)
        enumeration(out)
    print("summary:")
    for name, values in out.items():
        print(f"  {name}: {spread(values)}")


if __name__ == "__main__":
    main()
