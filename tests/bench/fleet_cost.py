"""What scraping a fleet costs its Prometheus: a real Prometheus scrapes 200 simulated
hosts running host-pm-exporter, and then the same 200 hosts running node_exporter,
in one run.  By hand (needs the Debian packages prometheus and prometheus-node-exporter):

    .venv/bin/python tests/bench/fleet_cost.py [--seconds 90] [--interval 5] \
        [--hosts spr-2s,server-s3,epyc-naples,arm64-altra,laptop-s2idle] \
        [--profile NAME=FLAGS ...]

e.g. ``--profile default= --profile all="--collector.cpu.flags-include=.* --collector.vulnerabilities"``
(each --profile is one host-pm-exporter flag set; without any, one profile ``default``
with no extra flags).

The 200 hosts are one exporter process per fixture tree (``--hosts``; the generated
ones are built into a temporary directory), each listed as 40 or so static targets
that differ only in a ``sim_host`` label, which relabelling turns into ``instance``,
so every target is its own series set.  host-pm-exporter runs with its default
probes (pm-utils and logind read this machine, not the trees); node_exporter runs
``--collector.disable-defaults --collector.cpu --collector.cpu.info
--collector.cpu.info.flags-include=.* --collector.cpufreq`` on the same proc and sys.

One Prometheus after another, each for ``--seconds`` on a fresh TSDB: first one with
no targets (the baseline), then one per profile, then node_exporter.  Printed per
host: samples per scrape (``scrape_samples_scraped``), head series
(``prometheus_tsdb_head_series`` / 200, with the five series Prometheus adds per
target: up, scrape_*), and Prometheus' memory minus the baseline's, / 200: RSS
(``process_resident_memory_bytes``, median over the run's second half) and heap in
use after a forced GC (``go_memstats_heap_inuse_bytes`` after /debug/pprof/heap?gc=1).
Prometheus' own numbers come from its /metrics (it does not scrape itself, so its
own series stay out of the head); the rest from /api/v1/query.  Every one of the 200
targets must be up for the whole run, else the script fails.  Loopback only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.cpu_scaling import NODE_FLAGS
from tests.bench.scrape_latency import EXPORTER, free_port
from tests.conftest import FIXTURES, fixture_args
from tests.fixture_hosts import HOSTS as GENERATED
from tests.hostgen import build

FLEET = 200
EXTRAPOLATE = 10_000
DEFAULT_HOSTS = "spr-2s,server-s3,epyc-naples,arm64-altra,laptop-s2idle"
# up, scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added
REPORT_SERIES = 5
MIB = 2**20


@dataclass
class TargetSet:
    name: str  # as printed
    job: str
    commands: dict[str, list[str]]  # fixture tree -> the exporter serving it


@dataclass
class Measurement:
    head_series: float
    rss: float  # bytes
    heap: float  # bytes, after a GC
    samples: dict[str, float]  # instance -> samples per scrape
    series_now: float
    scrape_seconds: float
    top: list[tuple[str, float]]  # metric name -> series


def get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def own_metrics(port: int) -> dict[str, float]:
    """Prometheus' own unlabelled samples, read from its /metrics."""
    out = {}
    for line in get(f"http://127.0.0.1:{port}/metrics").decode().split("\n"):
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value.split(" ")[0])
    return out


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = json.loads(get(url))
    if answer.get("status") != "success":
        raise SystemExit(f"query {promql!r} failed: {answer}")
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scalar(port: int, promql: str) -> float:
    result = query(port, promql)
    return float(result[0]["value"][1]) if result else 0.0


def down_targets(port: int) -> str:
    targets = json.loads(get(f"http://127.0.0.1:{port}/api/v1/targets?state=active"))["data"]["activeTargets"]
    down = [t for t in targets if t["health"] != "up"]
    lines = [f"  {t['labels'].get('instance')}: {t['health']} {t['lastError']}" for t in down[:10]]
    return f"{len(down)} of {len(targets)} targets not up:\n" + "\n".join(lines)


def prometheus_config(job: str | None, ports: dict[str, int], tree_of: dict[str, str], interval: int) -> dict[str, Any]:
    scrape_configs = []
    if job is not None:
        scrape_configs.append({
            "job_name": job,
            "static_configs": [
                {"targets": [f"127.0.0.1:{ports[tree]}"], "labels": {"sim_host": instance}}
                for instance, tree in tree_of.items()
            ],
            "relabel_configs": [
                {"source_labels": ["sim_host"], "target_label": "instance"},
                {"action": "labeldrop", "regex": "sim_host"},
            ],
        })  # fmt: skip
    return {
        "global": {"scrape_interval": f"{interval}s", "scrape_timeout": f"{interval}s"},
        "scrape_configs": scrape_configs,
    }


def wait_for(check: Any, what: str, timeout: float, port: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:g}s" + (f"\n{down_targets(port)}" if port else ""))
        time.sleep(0.5)


def heap_after_gc(port: int) -> float:
    readings = []
    for _ in range(3):
        get(f"http://127.0.0.1:{port}/debug/pprof/heap?gc=1")
        readings.append(own_metrics(port)["go_memstats_heap_inuse_bytes"])
    return statistics.median(readings)


def measure(
    tmp: Path, slug: str, job: str | None, ports: dict[str, int], tree_of: dict[str, str], args: argparse.Namespace
) -> Measurement:
    """One fresh Prometheus for `args.seconds`, scraping `job` on every simulated host
    (or nothing, for `job` None)."""
    config = tmp / f"prometheus-{slug}.yml"
    config.write_text(json.dumps(prometheus_config(job, ports, tree_of, args.interval), indent=1))
    check = subprocess.run([args.promtool, "check", "config", str(config)], check=False, capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"promtool check config {config}:\n{check.stdout}{check.stderr}")
    port = free_port()
    cmd = [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / f'tsdb-{slug}'}"]
    proc = launch([*cmd, "--log.level=warn"], port, tmp / f"prometheus-{slug}.log")
    try:
        started = time.monotonic()
        wait_for(lambda: get(f"http://127.0.0.1:{port}/-/ready", 2), "Prometheus ready", 30)
        all_up = started
        if job is not None:
            wait_for(
                lambda: scalar(port, "count(up == 1)") == len(tree_of), "every target up", 3 * args.interval + 30, port
            )
            all_up = time.monotonic()
        rss = []
        while (left := started + args.seconds - time.monotonic()) > 0:
            time.sleep(min(2.0, left))
            if time.monotonic() - started >= args.seconds / 2:
                rss.append(own_metrics(port)["process_resident_memory_bytes"])
        rss = rss or [own_metrics(port)["process_resident_memory_bytes"]]
        heap = heap_after_gc(port)
        head = own_metrics(port)["prometheus_tsdb_head_series"]
        if job is None:
            return Measurement(head, statistics.median(rss), heap, {}, 0.0, 0.0, [])
        window = max(args.interval, int(time.monotonic() - all_up))
        flaky = query(port, f"min_over_time(up[{window}s]) < 1")
        if scalar(port, "count(up)") != len(tree_of) or flaky:
            names = sorted(r["metric"].get("instance", "?") for r in flaky)
            raise SystemExit(f"{job}: not every target up for the last {window}s: {names[:20]}\n{down_targets(port)}")
        samples = {r["metric"]["instance"]: float(r["value"][1]) for r in query(port, "scrape_samples_scraped")}
        by_name = {
            r["metric"]["__name__"]: float(r["value"][1]) for r in query(port, 'count by (__name__) ({__name__=~".+"})')
        }
        return Measurement(
            head_series=head,
            rss=statistics.median(rss),
            heap=heap,
            samples=samples,
            series_now=sum(by_name.values()),
            scrape_seconds=scalar(port, "avg(scrape_duration_seconds)"),
            top=sorted(by_name.items(), key=lambda item: -item[1])[: args.top],
        )
    finally:
        stop([proc])


def launch(cmd: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` on 127.0.0.1:`port`, its stderr to `log`; back once it answers HTTP."""
    with log.open("wb") as err:
        proc = subprocess.Popen([*cmd, f"--web.listen-address=127.0.0.1:{port}"], stdout=err, stderr=err)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            get(f"http://127.0.0.1:{port}/metrics", 10)
            return proc
        except OSError:
            time.sleep(0.2)
    stop([proc])
    raise SystemExit(f"{shlex.join(cmd)} did not start (exit {proc.returncode}):\n{log.read_text()[-3000:]}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_profile(text: str) -> tuple[str, list[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--profile wants NAME=FLAGS, got {text!r}")
    return name, shlex.split(flags)


def build_trees(hosts: list[str], out: Path) -> dict[str, Path]:
    specs = {spec.name: spec for spec in GENERATED}
    roots = {}
    for host in hosts:
        if host in specs:
            build(specs[host], out / host)
            roots[host] = out / host
        elif (FIXTURES / host / "sys").is_dir():
            roots[host] = FIXTURES / host
        else:
            raise SystemExit(f"no fixture host {host!r}: see tests/fixtures/ and tests/fixture_hosts.py")
    return roots


def check_flags(profiles: dict[str, list[str]], root: Path) -> None:
    """A bad flag set fails here, with the exporter's own words, not as "did not start"."""
    for name, flags in profiles.items():
        cmd = [EXPORTER, *fixture_args(root), *flags, "--pm.probes=kernel", "--dump"]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        if done.returncode not in {0, 1}:
            raise SystemExit(f"profile {name!r}: host-pm-exporter {shlex.join(flags)}:\n{done.stderr}")


def run_set(
    tmp: Path, slug: str, target_set: TargetSet, tree_of: dict[str, str], args: argparse.Namespace
) -> Measurement:
    ports = {tree: free_port() for tree in target_set.commands}
    procs = []
    try:
        for tree, cmd in target_set.commands.items():
            procs.append(launch(cmd, ports[tree], tmp / f"{slug}-{tree}.log"))
        return measure(tmp, slug, target_set.job, ports, tree_of, args)
    finally:
        stop(procs)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def report(sets: list[TargetSet], results: list[Measurement], base: Measurement, hosts: list[str], args: Any) -> None:
    n = FLEET
    version = subprocess.run([args.prometheus, "--version"], check=True, capture_output=True, text=True).stdout
    version = version.split("\n")[0]
    per_tree = ", ".join(f"{h} x{len(range(i, n, len(hosts)))}" for i, h in enumerate(hosts))
    print(f"{n} simulated hosts on {len(hosts)} fixture trees ({per_tree}; one exporter process per tree)")
    print(f"scrape_interval {args.interval}s, {args.seconds}s per Prometheus, each on a fresh TSDB; {version}")
    print(f"Prometheus with no targets: RSS {base.rss / MIB:.1f} MiB, heap in use after GC {base.heap / MIB:.1f} MiB")
    print()
    rows = []
    for target_set, m in zip(sets, results):
        rows.append((
            target_set.name,
            statistics.mean(m.samples.values()),
            m.head_series / n,
            m.series_now / n,
            (m.rss - base.rss) / n / 1024,
            (m.heap - base.heap) / n / 1024,
            m.scrape_seconds * 1000,
        ))  # fmt: skip
    width = max(28, *(len(r[0]) + 2 for r in rows))
    print(f"{'per host':<{width}} {'samples/scrape':>14} {'head series':>12} {'series now':>11} "
          f"{'RSS KiB':>9} {'heap KiB':>9} {'scrape ms':>10}")  # fmt: skip
    for name, samples, head, now, rss, heap, ms in rows:
        print(f"{name:<{width}} {samples:>14.1f} {head:>12.1f} {now:>11.1f} {rss:>9.1f} {heap:>9.1f} {ms:>10.1f}")
    node = rows[-1]
    for row in rows[:-1]:
        label = f"{row[0].removeprefix('host-pm-exporter ')} / node_exporter"
        print(f"{label:<{width}} {ratio(row[1], node[1]):>14} {ratio(row[2], node[2]):>12} "
              f"{ratio(row[3], node[3]):>11} {ratio(row[4], node[4]):>9} {ratio(row[5], node[5]):>9}")  # fmt: skip
    print(f"(head series: samples/scrape + {REPORT_SERIES} per target (up, scrape_*) + any that came and went;")
    print(" host-pm-exporter's default probes logind and pm-utils ask this machine, not the trees)")
    print()
    print("samples per scrape by fixture tree")
    names = [s.name.removeprefix("host-pm-exporter ") for s in sets]
    print(f"{'tree':<16}" + "".join(f" {name:>14}" for name in names))
    for tree in hosts:
        cells = []
        for m in results:
            values = [v for inst, v in m.samples.items() if args.tree_of[inst] == tree]
            cells.append(f" {statistics.mean(values):>14.0f}")
        print(f"{tree:<16}" + "".join(cells))
    if args.top:
        print()
        print(f"top {args.top} metric names, series per host")
        for target_set, m in zip(sets, results):
            top = ", ".join(f"{name} {count / n:.1f}" for name, count in m.top)
            print(f"  {target_set.name}: {top}")
    print()
    print(f"extrapolated to {EXTRAPOLATE:,} hosts (per-host numbers above x {EXTRAPOLATE:,}):")
    for name, _samples, head, _now, rss, heap, _ms in rows:
        gib_rss, gib_heap = rss * EXTRAPOLATE / MIB, heap * EXTRAPOLATE / MIB  # KiB per host -> GiB
        print(f"  {name:<{width}} {head * EXTRAPOLATE / 1e6:6.2f}M head series, "
              f"Prometheus +{gib_rss:5.2f} GiB RSS, +{gib_heap:5.2f} GiB heap in use")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=90, help="how long each Prometheus runs")
    parser.add_argument("--interval", type=int, default=5, help="scrape_interval in seconds")
    parser.add_argument("--hosts", default=DEFAULT_HOSTS, help="fixture trees the simulated hosts share")
    parser.add_argument("--profile", action="append", type=parse_profile, metavar="NAME=FLAGS", default=[])
    parser.add_argument("--top", type=int, default=5, help="show this many biggest metric names per target set")
    args = parser.parse_args()
    profiles = dict(args.profile or [("default", [])])
    if len(profiles) != len(args.profile or [None]):
        parser.error("profile names must differ")
    if args.seconds < 4 * args.interval:
        parser.error("--seconds must be at least 4 scrape intervals")
    node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    args.prometheus, args.promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not node or not args.prometheus or not args.promtool:
        raise SystemExit(
            "needs prometheus, promtool and node_exporter (apt-get install prometheus prometheus-node-exporter)"
        )
    hosts = args.hosts.split(",")
    args.tree_of = {f"h{i:03d}": hosts[i % len(hosts)] for i in range(FLEET)}
    with tempfile.TemporaryDirectory(prefix="fleet-cost-") as tmp_name:
        tmp = Path(tmp_name)
        roots = build_trees(hosts, tmp / "trees")
        check_flags(profiles, roots[hosts[0]])
        sets = [
            TargetSet(
                f"host-pm-exporter {name}",
                "host-pm-exporter",
                {tree: [EXPORTER, *fixture_args(root), *flags] for tree, root in roots.items()},
            )
            for name, flags in profiles.items()
        ]
        sets.append(
            TargetSet(
                "node_exporter",
                "node_exporter",
                {
                    tree: [node, f"--path.procfs={r / 'proc'}", f"--path.sysfs={r / 'sys'}", *NODE_FLAGS]
                    for tree, r in roots.items()
                },
            )
        )
        print(f"baseline Prometheus, then {', '.join(s.name for s in sets)}: {args.seconds}s each", file=sys.stderr)
        base = measure(tmp, "baseline", None, {}, {}, args)
        results = []
        for i, target_set in enumerate(sets):
            print(f"  {target_set.name} ...", file=sys.stderr)
            results.append(run_set(tmp, f"set{i}", target_set, args.tree_of, args))
    report(sets, results, base, hosts, args)


if __name__ == "__main__":
    main()
