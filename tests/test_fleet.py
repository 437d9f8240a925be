"""A mini fleet: exporters on loopback, each on a fixture host, scraped by a real
Prometheus (Debian ``prometheus``) with the repo's recording and alerting rules; every
dashboard panel's expression must parse and return data, and exactly the alerts the
fixture hosts should trigger must fire.

The rules are loaded as they are, but for ``for:`` (set to 0s, so a test need not
wait 15 minutes) and the evaluation and scrape intervals (1s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import (
    Exporter,
    fake_pm_is_supported,
    fixture_args,
    free_port,
    host_root,
    need_tool,
    start_exporter,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "grafana").glob("*.json"))
JOB = "host-pm-exporter"

# name -> (fixture host, pool ("": no pool label), power_saving, extra flags, extra environment)
FLEET: dict[str, tuple[str, str, bool, list[str], dict[str, str]]] = {
    "laptop": ("laptop-s2idle", "edge", True, [], {}),
    # pm-utils not installed: an absent tool, no alert
    "server": ("server-s3", "edge", True, ["--pm.probes=kernel,pm-utils", "--pm.pm-is-supported=/nonexistent/pm"], {}),
    "small-swap": ("server-small-swap", "edge", True, [], {}),
    "s2idle-default": ("server-s3", "edge", True, [], {}),  # a copy whose mem_sleep is [s2idle] deep
    "virt-1": ("spr-2s", "virt", False, [], {}),
    "virt-2": ("spr-2s", "virt", False, [], {}),
    "virt-odd": ("epyc-naples", "virt", False, [], {}),
    "pair-a": ("arm64-altra", "pair", False, [], {}),  # a 2-host pool whose hosts differ
    "pair-b": ("offline-cpus", "pair", False, [], {}),
    "free-1": ("spr-2s", "", False, [], {}),  # no pool label: different CPUs, no pool alert
    "free-2": ("hybrid-adl", "", False, [], {}),
    "cloud-vm": ("vm-cloud", "cloud", False, ["--pm.probes=kernel,logind"], {}),  # a bus socket that refuses
    "secure-laptop": ("lockdown", "edge", True, ["--pm.probes=kernel,pm-utils"], {}),
    "flat-vm": ("vm-flat", "cloud", True, [], {}),
}
MEM_SLEEP = {"s2idle-default": "[s2idle] deep\n"}

# alert -> the fleet members (and, for some, the operation) it must fire for; nothing else may fire.
EXPECTED = {
    ("PowerSavingHostNoS3Ready", "laptop"),
    ("PowerSavingHostNoS3Ready", "small-swap"),
    ("PowerSavingHostNoS3Ready", "flat-vm"),
    ("PowerSavingHostNoWakeSource", "flat-vm"),
    ("PowerSavingHostHibernationNotReady", "small-swap"),
    ("PowerSavingHostSuspendEntersS2idle", "s2idle-default"),
    ("HostPmProbeFailing", "cloud-vm"),
    ("PowerSavingHostProbesDisagree", "secure-laptop"),
    ("HostCpuFingerprintSplitPool", "virt-odd"),
    ("HostCpuFingerprintSplitPool", "pair-a"),
    ("HostCpuFingerprintSplitPool", "pair-b"),
    ("HostPmExporterDown", "dead"),
}
FIRING = len(EXPECTED) + 1  # the probes disagree on two operations


def api(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def test_rules_for_the_fleet(tmp_path: Path) -> None:
    """The test's rule files differ from the repo's only in for:."""
    written = fleet_rules(tmp_path)
    for name, path in written.items():
        ours = yaml.safe_load(path.read_text())
        theirs = yaml.safe_load((RULES / name).read_text())
        for mine, orig in zip(
            (r for g in ours["groups"] for r in g["rules"]), (r for g in theirs["groups"] for r in g["rules"])
        ):
            assert {k: v for k, v in mine.items() if k != "for"} == {k: v for k, v in orig.items() if k != "for"}


def fleet_rules(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("recording.rules.yml", "alerting.rules.yml", "hw-sleep.rules.yml"):
        doc = yaml.safe_load((RULES / name).read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        out[name] = path
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus = need_tool("prometheus", "prometheus")
    tmp = tmp_path_factory.mktemp("fleet")
    agree_all = fake_pm_is_supported(tmp, "exit 0")  # a pm-utils that says yes to everything
    exporters: dict[str, Exporter] = {}
    try:
        refusing = tmp / "refusing-bus"
        refusing.write_text("")  # a bus socket path where nothing listens
        for name, (host, _pool, _saving, flags, extra_env) in FLEET.items():
            env = dict(extra_env)
            root: str | Path = host
            if name in MEM_SLEEP:
                root = tmp / "hosts" / name
                shutil.copytree(host_root(host), root, symlinks=True)
                (root / "sys" / "power" / "mem_sleep").write_text(MEM_SLEEP[name])
            args = [*fixture_args(root), "--pm.probes=kernel", *flags]
            if "pm-utils" in " ".join(flags) and not any(f.startswith("--pm.pm-is-supported") for f in flags):
                args.append(f"--pm.pm-is-supported={agree_all}")
            if "logind" in " ".join(flags):
                env["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={refusing}"
            exporters[name] = start_exporter(args, tmp, env={**os.environ, **env} if env else None)
        dead = free_port()
        targets = [
            {
                "targets": [f"127.0.0.1:{exp.port}"],
                "labels": {
                    "member": name,
                    **({"pool": FLEET[name][1]} if FLEET[name][1] else {}),
                    **({"power_saving": "true"} if FLEET[name][2] else {}),
                },
            }
            for name, exp in exporters.items()
        ]
        targets.append({"targets": [f"127.0.0.1:{dead}"], "labels": {"member": "dead", "pool": "edge"}})
        rules = fleet_rules(tmp)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(p) for p in rules.values()],
            "scrape_configs": [{"job_name": JOB, "static_configs": targets}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        log = (tmp / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_fleet(port, len(exporters), proc, tmp)
            yield {"port": port, "exporters": exporters}
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        for exp in exporters.values():
            exp.stop()


def wait_for_fleet(port: int, live: int, proc: subprocess.Popen[bytes], tmp: Path) -> None:
    def ready() -> bool:
        targets = api(port, "targets")["activeTargets"]
        up = [t for t in targets if t["health"] == "up"]
        recorded = api(port, "query", query="pool_fingerprint:host_cpu_features_info:hosts")["result"]
        firing = [a for a in api(port, "alerts")["alerts"] if a["state"] == "firing"]
        return len(up) == live and bool(recorded) and len(firing) >= FIRING

    wait_until(
        ready, f"fleet of {live} targets up, recorded and firing", timeout=90, interval=0.5, proc=proc,
        log=tmp / "prometheus.log",
    )  # fmt: skip
    time.sleep(3)  # a few more evaluations, so that nothing else is on its way


def test_the_alerts_the_fleet_should_trigger_are_firing_and_no_others(fleet: dict[str, Any]) -> None:
    alerts = api(fleet["port"], "alerts")["alerts"]
    firing = {(a["labels"]["alertname"], a["labels"].get("member", "?")) for a in alerts if a["state"] == "firing"}
    # alerts that aggregate away the member label still name the instance: map it back
    by_instance = {f"127.0.0.1:{exp.port}": name for name, exp in fleet["exporters"].items()}
    for a in alerts:
        if a["state"] == "firing" and "member" not in a["labels"]:
            firing.discard((a["labels"]["alertname"], "?"))
            firing.add((a["labels"]["alertname"], by_instance.get(a["labels"].get("instance", ""), "dead")))
    assert firing == EXPECTED
    disagree = {a["labels"]["operation"] for a in alerts if a["labels"]["alertname"] == "PowerSavingHostProbesDisagree"}
    assert disagree == {"hibernate", "suspend_hybrid"}  # lockdown: the kernel says no, pm-utils (stand-in) yes
    for a in alerts:
        assert {"summary", "description", "runbook"} <= a["annotations"].keys()


def substitute(expr: str) -> str:
    """Grafana variables as a user choosing "All" would set them."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m")
    return re.sub(r"\$(job|pool|instance)\b", lambda m: JOB if m.group(1) == "job" else ".*", expr)


def panel_expressions() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((path.stem, panel["title"], target["expr"]))
    return out


def test_there_are_two_dashboards_with_the_variables_asked_for() -> None:
    titles = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        titles[board["title"]] = board
        assert board["schemaVersion"] >= 39
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert "job" in variables
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
    assert set(titles) == {"Fleet power capabilities", "Host detail"}
    assert "pool" in {v["name"] for v in titles["Fleet power capabilities"]["templating"]["list"]}
    assert "instance" in {v["name"] for v in titles["Host detail"]["templating"]["list"]}


@pytest.mark.parametrize(("board", "title", "expr"), panel_expressions())
def test_every_panel_expression_returns_data(fleet: dict[str, Any], board: str, title: str, expr: str) -> None:
    result = api(fleet["port"], "query", query=substitute(expr))["result"]
    assert result, f"{board} / {title}: no data for {expr}"


def test_every_variable_query_returns_values(fleet: dict[str, Any]) -> None:
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["definition"])
            assert match, var["definition"]
            values = api(fleet["port"], "series", **{"match[]": substitute(match.group(1))})
            assert {s.get(match.group(2)) for s in values} - {None}, var["name"]


def panel_query(board: str, title: str) -> str:
    (panel,) = [
        p for p in json.loads((ROOT / "grafana" / f"{board}.json").read_text())["panels"] if p["title"] == title
    ]
    (target,) = panel["targets"]
    return substitute(target["expr"])


def test_the_not_ready_table_lists_reasons_only_for_supported_states(fleet: dict[str, Any]) -> None:
    rows = api(fleet["port"], "query", query=panel_query("fleet-power-capabilities", "Hosts not ready, and why"))
    by_port = {f"127.0.0.1:{exp.port}": name for name, exp in fleet["exporters"].items()}
    listed = {(by_port[r["metric"]["instance"]], r["metric"]["state"], r["metric"]["reason"]) for r in rows["result"]}
    assert ("small-swap", "S4", "not_enough_swap") in listed
    # vm-flat, spr-2s, epyc-naples... do not offer S4: their no_usable_swap is not listed
    assert not [row for row in listed if row[0] in ("flat-vm", "virt-1", "virt-odd", "cloud-vm", "secure-laptop")]
    unfiltered = api(fleet["port"], "query", query='host_pm_not_ready_reason_info{reason="no_usable_swap"}')
    assert unfiltered["result"], "the reader does list them: the panel's filter is what leaves them out"


def test_the_host_table_has_every_state_probes_and_wake_per_host(fleet: dict[str, Any]) -> None:
    rows = api(fleet["port"], "query", query=panel_query("fleet-power-capabilities", "Hosts"))["result"]
    by_port = {f"127.0.0.1:{exp.port}": name for name, exp in fleet["exporters"].items()}
    cells: dict[str, dict[str, float]] = {}
    for row in rows:
        cells.setdefault(by_port[row["metric"]["instance"]], {})[row["metric"]["state"]] = float(row["value"][1])
    assert set(cells) == set(FLEET)
    assert cells["laptop"]["S3"] == 0  # not supported
    assert cells["laptop"]["S2idle"] == 2  # ready
    assert cells["small-swap"]["S4"] == 1  # supported, not ready
    assert cells["cloud-vm"]["probes"] == 0  # logind's bus refuses
    assert cells["server"]["probes"] == 2  # pm-utils absent: not a failure
    assert cells["flat-vm"]["wake"] == 0
    assert all({"S1", "S2idle", "S3", "S4", "probes", "wake"} <= set(c) for c in cells.values())
