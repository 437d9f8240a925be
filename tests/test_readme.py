"""The README stays true: every metric, every flag, the set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

from host_pm_exporter.cli import build_parser
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.views.exposition import EXPORTER_METRICS
from host_pm_exporter.views.probes import PROBE_METRICS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOURCE = "\n".join(p.read_text() for p in (ROOT / "exporter/host_pm_exporter").rglob("*.py"))


def metric_names() -> set[str]:
    """Every host_* metric the exporter can emit: the registry's, and the source's."""
    names = {m for c in REGISTRY for m in c.metrics} | set(PROBE_METRICS) | set(EXPORTER_METRICS)
    for name in re.findall(r'InfoMetricFamily\(\s*"(host_\w+)"', SOURCE):
        names.add(name + "_info")
    names |= set(re.findall(r'GaugeMetricFamily\(\s*f?"(host_\w+)"', SOURCE))
    names |= {name + "_total" for name in re.findall(r'CounterMetricFamily\(\s*"(host_\w+)"', SOURCE)}
    return names


def test_every_metric_is_explained_in_the_readme() -> None:
    """Each metric has a row in the README's tables that say what it means (the
    generated metric -> collector table lives in docs/internals.md and does not count)."""
    names = metric_names()
    assert "host_pm_logind_answer_info" in names
    assert "host_pm_suspend_success_total" in names
    explained = README
    missing = sorted(n for n in names if f"| `{n}` |" not in explained)
    assert missing == []


def test_every_flag_is_in_the_readme() -> None:
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag in ("-h", "--help") or flag.startswith(("--collector.", "--no-collector.")):
                continue
            assert f"`{flag}`" in README, flag
    assert "`--collector.<name>` / `--no-collector.<name>`" in README


def test_ci_runs_the_readme_test_command() -> None:
    assert "sudo ./tests/run\n" in README
    ci = (ROOT / ".ci/run").read_text()
    assert "./tests/run" in ci
    assert "sudo ./deploy/install.sh\n" in README
