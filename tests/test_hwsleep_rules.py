"""The hw-sleep rules (deploy/prometheus/hw-sleep.rules.yml): promtool checks them and
runs their unit tests; each alert has its texts, a firing and a silent case, is scoped to
power-saving hosts and keeps the routing labels; every metric they read is one the
exporter writes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from host_pm_exporter.collectors import BY_NAME, REGISTRY
from tests.conftest import need_tool

PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = PROMETHEUS / "hw-sleep.rules.yml"
TESTS = PROMETHEUS / "hw-sleep.rules.test.yml"
# The names the rules and dashboards rely on, fixed apart from the collector's own list.
EVIDENCE_METRICS = {
    "host_pm_hw_sleep_seconds_total",
    "host_pm_last_hw_sleep_seconds",
    "host_pm_hw_sleep_max_seconds",
    "host_pm_low_power_idle_residency_seconds_total",
    "host_pm_acpi_wakeup_devices",
    "host_pm_firmware_low_power_s0",
}
PROMQL_WORDS = {"and", "or", "unless", "on", "by", "without", "group_left", "group_right", "bool", "offset"}


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    promtool = need_tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", TESTS.name], cwd=PROMETHEUS, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_alert_has_texts_and_tests_firing_and_not() -> None:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    checks = [c for t in tests for c in t.get("alert_rule_test", [])]
    assert {a["alert"] for a in alerts()} == {
        "PowerSavingHostSuspendWithoutHardwareSleep",
        "PowerSavingHostSuspendFailing",
        "PowerSavingHostNoAcpiWakeDevice",
    }
    for alert in alerts():
        assert {"summary", "description", "runbook"} <= alert["annotations"].keys(), alert["alert"]
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}
        mine = [c for c in checks if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']}: no firing case"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']}: no silent case"
        for case in mine:
            for fired in case["exp_alerts"]:  # the routing labels reach Alertmanager
                assert {"instance", "job", "pool", "power_saving"} <= fired["exp_labels"].keys()


def test_alerts_are_scoped_to_power_saving_hosts_and_keep_routing_labels() -> None:
    for alert in alerts():
        expr = alert["expr"]
        assert 'power_saving="true"' in expr, alert["alert"]
        assert not re.search(r"\b(sum|count|max|min|avg)\s+by\b", expr), f"{alert['alert']}: aggregates labels away"


def test_the_hwsleep_collector_writes_exactly_the_fixed_names() -> None:
    assert set(BY_NAME["hwsleep"].metrics) == EVIDENCE_METRICS


def test_rules_read_only_metrics_the_exporter_writes() -> None:
    written = {m for c in REGISTRY for m in c.metrics}
    recorded = {r["record"] for r in rules() if "record" in r}
    for rule in rules():
        expr = re.sub(r"\{[^}]*\}|\[[^]]*\]|\"[^\"]*\"", "", rule["expr"])  # matchers, ranges, strings
        names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\b(?!\s*\()", expr)) - PROMQL_WORDS
        names -= {"instance", "job", "pool", "sleep_state", "enabled"}  # labels in on()/without()
        metrics = {n for n in names if n.startswith(("host_", "instance:", "pool:", "fleet:"))}
        assert metrics, rule
        assert metrics <= written | recorded, (rule.get("alert") or rule.get("record"), metrics - written - recorded)
