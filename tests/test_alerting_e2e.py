"""The alerts as an operator gets them: exporters on copies of fixture hosts, a real
Prometheus (Debian ``prometheus``) with the repo's rules, a real Alertmanager (Debian
``prometheus-alertmanager``) routing on the targets' labels to webhook receivers on
loopback.  Events are made by editing the copies' files while everything runs:

- start-up of a healthy fleet delivers nothing;
- ``/sys/power/mem_sleep`` becomes ``[s2idle] deep`` on a power-saving host: exactly
  PowerSavingHostSuspendEntersS2idle reaches the team's receiver, with the target's
  labels; it resolves when ``deep`` is selected again;
- a CPU flag disappears on one host of a 2-host pool: HostCpuFingerprintSplitPool for
  both hosts (no majority), with the pool's count of each fingerprint; it resolves
  when the flag is back.
Hosts without a pool label, whose fingerprints all differ, raise nothing throughout.

The rules are a test copy generated from deploy/prometheus/*.rules.yml, equal but for
``for:`` (a few seconds) and the intervals (1 s).  Every wait is bounded.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Exporter, fixture_args, free_port, host_root, need_tool, start_exporter, wait_until
from tests.test_fleet import api

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus"
JOB = "host-pm-exporter"
FOR = "3s"
TIMEOUT = 90.0  # for: 3s, evaluation 1s, Alertmanager group_wait 1s: seconds; this bounds a slow machine

# name -> (fixture host, labels beyond job and instance)
FLEET: dict[str, tuple[str, dict[str, str]]] = {
    "park-1": ("server-s3", {"pool": "park", "power_saving": "true", "team": "power"}),
    "pair-a": ("spr-2s", {"pool": "pair", "team": "virt"}),
    "pair-b": ("spr-2s", {"pool": "pair", "team": "virt"}),
    "free-1": ("epyc-naples", {}),  # no pool label, fingerprints unlike everyone's
    "free-2": ("hybrid-adl", {}),
}


def shortened_rules(directory: Path) -> list[Path]:
    """The repo's rule files with every ``for:`` set to FOR and 1 s intervals."""
    out = []
    for name in ("recording.rules.yml", "alerting.rules.yml"):
        doc = yaml.safe_load((RULES / name).read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = FOR
        path = directory / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(path)
    return out


def test_the_test_rules_differ_from_the_repos_only_in_for(tmp_path: Path) -> None:
    for path in shortened_rules(tmp_path):
        ours = [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
        theirs = [r for g in yaml.safe_load((RULES / path.name).read_text())["groups"] for r in g["rules"]]
        assert len(ours) == len(theirs)
        for mine, orig in zip(ours, theirs):
            assert {k: v for k, v in mine.items() if k != "for"} == {k: v for k, v in orig.items() if k != "for"}
            assert ("for" in mine) == ("for" in orig)


class Receiver:
    """Webhook receivers on loopback: every notification Alertmanager posts, by path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), 1 << 20)
                body = json.loads(self.rfile.read(length))
                with receiver.lock:
                    receiver.posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self) -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
        """(receiver path, status, labels, annotations) of every alert delivered so far."""
        with self.lock:
            posts = list(self.posts)
        return [(path, a["status"], a["labels"], a["annotations"]) for path, body in posts for a in body["alerts"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(argv, stdout=out, stderr=out)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus = need_tool("prometheus", "prometheus")
    alertmanager = need_tool("prometheus-alertmanager", "prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("alerting")
    receiver = Receiver()
    exporters: dict[str, Exporter] = {}
    roots: dict[str, Path] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, (host, _labels) in FLEET.items():
            root = tmp / "hosts" / name
            shutil.copytree(host_root(host), root, symlinks=True)
            roots[name] = root
            exporters[name] = start_exporter([*fixture_args(root), "--pm.probes=kernel"], tmp)
        am_port = free_port()
        hook = f"http://127.0.0.1:{receiver.port}"
        am_config = {
            "route": {
                "receiver": "default",
                "group_by": ["alertname", "instance"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
                "routes": [{"receiver": "power-team", "matchers": ['team="power"']}],
            },
            "receivers": [
                {"name": "default", "webhook_configs": [{"url": f"{hook}/default", "send_resolved": True}]},
                {"name": "power-team", "webhook_configs": [{"url": f"{hook}/power", "send_resolved": True}]},
            ],
        }
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
        procs.append(start([
            alertmanager, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ], tmp / "alertmanager.log"))  # fmt: skip
        targets = [
            {"targets": [f"127.0.0.1:{exp.port}"], "labels": {"member": name, **FLEET[name][1]}}
            for name, exp in exporters.items()
        ]
        prom_port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(p) for p in shortened_rules(tmp)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": JOB, "static_configs": targets}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        procs.append(start([
            prometheus, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ], tmp / "prometheus.log"))  # fmt: skip

        def settled() -> bool:
            up = [t for t in api(prom_port, "targets")["activeTargets"] if t["health"] == "up"]
            recorded = api(prom_port, "query", query="pool_fingerprint:host_cpu_features_info:hosts")["result"]
            am = api(prom_port, "alertmanagers")["activeAlertmanagers"]
            return len(up) == len(FLEET) and bool(recorded) and bool(am)

        wait_until(settled, "fleet scraped, rules evaluated, Alertmanager found", timeout=TIMEOUT, interval=0.5,
                   proc=procs[-1], log=tmp / "prometheus.log")  # fmt: skip
        yield {"prometheus": prom_port, "receiver": receiver, "roots": roots, "exporters": exporters}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
        for exp in exporters.values():
            exp.stop()
        receiver.close()


def alert_names(stack: dict[str, Any]) -> dict[str, str]:
    """Prometheus' active alerts: alertname and member -> state."""
    by_port = {f"127.0.0.1:{e.port}": n for n, e in stack["exporters"].items()}
    out = {}
    for a in api(stack["prometheus"], "alerts")["alerts"]:
        member = a["labels"].get("member") or by_port.get(a["labels"].get("instance", ""), "?")
        out[f"{a['labels']['alertname']}/{member}"] = a["state"]
    return out


def delivered(stack: dict[str, Any], status: str) -> set[tuple[str, str, str]]:
    return {(path, labels["alertname"], labels.get("member", "?"))
            for path, st, labels, _ in stack["receiver"].alerts() if st == status}  # fmt: skip


def test_start_up_delivers_nothing_then_each_event_exactly_its_alert(stack: dict[str, Any]) -> None:
    receiver: Receiver = stack["receiver"]
    roots: dict[str, Path] = stack["roots"]
    # start-up: well past for: and group_wait, nothing pending, firing or delivered
    time.sleep(8)
    assert alert_names(stack) == {}
    assert receiver.alerts() == []

    # --- event 1: the firmware (or mem_sleep_default=s2idle) makes s2idle the default
    mem_sleep = roots["park-1"] / "sys" / "power" / "mem_sleep"
    mem_sleep.write_text("[s2idle] deep\n")
    s2idle = ("/power", "PowerSavingHostSuspendEntersS2idle", "park-1")
    wait_until(lambda: s2idle in delivered(stack, "firing"), "the s2idle alert delivered", timeout=TIMEOUT,
               interval=0.25)  # fmt: skip
    time.sleep(3)  # a few more evaluations: nothing else follows
    assert delivered(stack, "firing") == {s2idle}
    ((_, _, labels, annotations),) = [a for a in receiver.alerts() if a[2]["alertname"] == s2idle[1]]
    port = stack["exporters"]["park-1"].port
    assert labels == {"alertname": s2idle[1], "severity": "warning", "job": JOB, "instance": f"127.0.0.1:{port}",
                      "member": "park-1", "pool": "park", "power_saving": "true", "team": "power",
                      "state": "S2idle"}  # fmt: skip
    assert "echo deep > /sys/power/mem_sleep" in annotations["runbook"]
    assert "MemorySleepMode=deep" in annotations["runbook"]
    mem_sleep.write_text("s2idle [deep]\n")
    wait_until(lambda: s2idle in delivered(stack, "resolved"), "the s2idle alert resolved", timeout=TIMEOUT,
               interval=0.25)  # fmt: skip

    # --- event 2: one host of the 2-host pool loses a CPU flag (a BIOS setting): a 1:1 split
    cpuinfo = roots["pair-b"] / "proc" / "cpuinfo"
    original = cpuinfo.read_text()
    assert " avx512f " in original
    cpuinfo.write_text(original.replace(" avx512f ", " "))
    split = {
        ("/default", "HostCpuFingerprintSplitPool", "pair-a"),
        ("/default", "HostCpuFingerprintSplitPool", "pair-b"),
    }
    wait_until(lambda: split <= delivered(stack, "firing"), "the split pool delivered for both hosts",
               timeout=TIMEOUT, interval=0.25)  # fmt: skip
    time.sleep(3)
    assert delivered(stack, "firing") == {s2idle} | split
    descriptions = [
        a[3]["description"] for a in receiver.alerts() if a[2]["alertname"] == "HostCpuFingerprintSplitPool"
    ]
    for text in descriptions:
        assert text.count(" on 1 host(s); ") == 2, text  # the pool's count of each fingerprint
    for _path, _status, labels, _ in receiver.alerts():
        if labels["alertname"] == "HostCpuFingerprintSplitPool":
            assert labels["pool"] == "pair"
            assert labels["team"] == "virt"
    cpuinfo.write_text(original)
    wait_until(lambda: split <= delivered(stack, "resolved"), "the split pool resolved", timeout=TIMEOUT,
               interval=0.25)  # fmt: skip

    # the hosts without a pool never raised a pool alert
    assert not [a for a in receiver.alerts() if a[2].get("member", "").startswith("free-")]
