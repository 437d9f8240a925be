"""ScrapeFacts latency at a scrape cadence, host-pm-exporter beside node_exporter, from one
run.  By hand (needs prometheus-node-exporter):

    .venv/bin/python tests/bench/scrape_cadence.py [--gaps 0,0.05,0.5,2] [--scrapes 60]

scrape_latency.py scrapes back to back, which keeps every thread and CPU warm; a
Prometheus scrapes every 15 s or more, so each scrape finds the exporter idle.  Here one
keep-alive client (a socket that reads each answer to its last byte, no parsing beyond
the framing) scrapes both exporters in turn, each after a gap of idleness: at each step
it sleeps the gap, scrapes ours, sleeps the gap, scrapes node_exporter, so both share
the machine's moods.  host-pm-exporter runs its defaults but ``--pm.probes=kernel``;
node_exporter scrape_latency's flags.  Printed per gap: the median and 90th percentile
of each, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.scrape_latency import EXPORTER, NODE_EXPORTER_FLAGS, free_port, start


class Client:
    """One keep-alive connection; a scrape is timed from the request's send to the
    answer's last byte (Content-Length or chunked framing, as each exporter sends)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _more(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def scrape(self) -> tuple[float, bytes]:
        """(milliseconds, body) of one scrape (a chunked body is returned unframed)."""
        start_ = time.perf_counter()
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        status, *lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        assert status.split()[1] == "200", status
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            assert headers.get("transfer-encoding") == "chunked", headers
            chunks = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                chunks.append(self._exactly(size + 2)[:-2])
            self._until(b"\r\n")
            body = b"".join(chunks)
        return (time.perf_counter() - start_) * 1e3, body

    def scrape_ms(self) -> float:
        return self.scrape()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gaps", default="0,0.05,0.5,2", help="seconds of idleness before each scrape")
    parser.add_argument("--scrapes", type=int, default=60, help="per exporter and gap")
    args = parser.parse_args()
    ours_port, node_port = free_port(), free_port()
    procs = [
        start([EXPORTER, "--pm.probes=kernel"], ours_port),
        start(["prometheus-node-exporter", *NODE_EXPORTER_FLAGS], node_port),
    ]
    try:
        ours, node = Client(ours_port), Client(node_port)
        print(f"{'gap s':>6} {'ours p50':>9} {'ours p90':>9} {'node p50':>9} {'node p90':>9} {'ours/node':>10}")
        for gap in (float(g) for g in args.gaps.split(",")):
            mine: list[float] = []
            theirs: list[float] = []
            for _ in range(args.scrapes):
                time.sleep(gap)
                mine.append(ours.scrape_ms())
                time.sleep(gap)
                theirs.append(node.scrape_ms())
            p90 = int(len(mine) * 0.9)
            a, b = statistics.median(mine), statistics.median(theirs)
            print(f"{gap:6g} {a:9.2f} {sorted(mine)[p90]:9.2f} {b:9.2f} {sorted(theirs)[p90]:9.2f} {a / b:9.2f}x")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
