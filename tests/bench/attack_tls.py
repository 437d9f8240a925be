"""TLS under the attacks of issue 19, on loopback, bounded in count and time.  Run by hand:

    .venv/bin/python -m tests.bench.attack_tls [--runs 3] [--probes 2000] [--idle 1000]

1. `--probes` TCP connect+close to the TLS port, one at a time (what a kubelet
   `tcpSocket` probe does): RSS before and after (goal: grows <= 30 MB).
2. `--idle` connections to the TLS port that never send a ClientHello, held, then
   closed: the exporter's fds and peak RSS while held (goals: <= 600 fds, <= 200 MB)
   and its RSS after they close (goal: within 30 MB of the start), for several cycles.
3. The same with connections that complete the handshake and then idle.
Each figure is given as min / median / max over `--runs` runs (a new exporter each).
"""

from __future__ import annotations

import argparse
import socket
import time

import psutil

from tests.bench.attack_common import Sampler, client_context, exporter, mib, settle, spread

WEB = "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n"


def probes(port: int, count: int) -> None:
    for _ in range(count):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def hold(port: int, count: int, handshake: bool, cert: object) -> list[socket.socket]:
    held: list[socket.socket] = []
    ctx = client_context(cert) if handshake else None  # type: ignore[arg-type]
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_hostname="localhost")
            held.append(sock)
        except OSError:
            pass  # evicted before its handshake: that is the cap working
    return held


def one_run(args: argparse.Namespace, out: dict[str, list[float]]) -> None:
    with exporter(web_config=WEB, source=args.source) as (popen, port, directory):
        proc = psutil.Process(popen.pid)
        start = settle(proc)
        probes(port, args.probes)
        after = settle(proc)
        out["probe growth MiB"].append((after - start) / 2**20)
        print(f"  {args.probes} connect+close: rss {mib(start)} -> {mib(after)}")
        for handshake in (False, True):
            kind = "handshaken" if handshake else "no hello"
            for cycle in range(args.cycles):
                base = settle(proc)
                with Sampler(popen.pid) as sampler:
                    held = hold(port, args.idle, handshake, directory / "server.crt")
                    time.sleep(1.0)
                    fds = proc.num_fds()
                    for sock in held:
                        sock.close()
                    time.sleep(0.5)
                end = settle(proc)
                out[f"{kind}: fds held"].append(fds)
                out[f"{kind}: peak rss MiB"].append(sampler.peak_rss / 2**20)
                out[f"{kind}: after close - start MiB"].append((end - start) / 2**20)
                print(
                    f"  {args.idle} idle ({kind}) cycle {cycle + 1}: fds {fds} (peak {sampler.peak_fds}), "
                    f"rss {mib(base)} -> peak {mib(sampler.peak_rss)} -> {mib(end)} after close"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--source", help="run the package in this directory instead (another version)")
    args = parser.parse_args()
    out: dict[str, list[float]] = {"probe growth MiB": []}
    for kind in ("no hello", "handshaken"):
        for what in ("fds held", "peak rss MiB", "after close - start MiB"):
            out[f"{kind}: {what}"] = []
    for run in range(args.runs):
        print(f"run {run + 1}:")
        one_run(args, out)
    print("summary (default flags: --web.max-connections=512):")
    for name, values in out.items():
        print(f"  {name}: {spread(values)}")


if __name__ == "__main__":
    main()
