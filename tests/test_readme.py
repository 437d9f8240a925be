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
    """Every host_* metric the exporter can emit: the registry's, and every family the
    source builds (``Info("host_x"``, ``Gauge(``, ``Counter(``, with a literal name)."""
    names = {m for c in REGISTRY for m in c.metrics} | set(PROBE_METRICS) | set(EXPORTER_METRICS)
    suffix = {"Info": "_info", "Gauge": "", "Counter": "_total"}
    for kind, name in re.findall(r'\b(Info|Gauge|Counter)\(\s*"(host_\w+)"', SOURCE):
        names.add(name + suffix[kind])
    return names


def test_the_source_scan_finds_the_families_the_registry_declares() -> None:
    """The scan above sees the families the code builds: it finds each kind, and every
    name it finds is one the registry, the probes or the exporter declare."""
    declared = {m for c in REGISTRY for m in c.metrics} | set(PROBE_METRICS) | set(EXPORTER_METRICS)
    found = metric_names() - declared
    assert found == set(), "a family built in the source that no list declares"
    kinds = re.findall(r'\b(Info|Gauge|Counter)\(\s*"host_', SOURCE)
    assert {"Info", "Gauge", "Counter"} <= set(kinds)
    assert len(kinds) > 40


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


INTERNALS = (ROOT / "docs/internals.md").read_text()
PACKAGE = ROOT / "exporter/host_pm_exporter"


def module_map() -> dict[str, set[str]]:
    """docs/internals.md's module map: each entry (``name.py`` or ``name/``) and, for a
    package, the module files its description names."""
    block = INTERNALS.split("```\nexporter/host_pm_exporter/\n", 1)[1].split("```", 1)[0]
    out: dict[str, set[str]] = {}
    entry = ""
    for line in block.splitlines():
        match = re.match(r"  (\w+(?:\.py|/))\s", line)
        if match:
            entry = match.group(1)
            out[entry] = set()
        out[entry] |= set(re.findall(r"\b(\w+\.py)\b", line[len(entry) + 2 :] if match else line))
    return out


def test_the_module_map_in_docs_internals_is_the_package() -> None:
    """Every module and package of the package is on the map, and nothing else; each
    package's line names every module file in it (``__init__.py`` aside), except the
    collectors', whose modules are the collectors (tests/collectors/test_collectors.py)."""
    listed = module_map()
    on_disk = {
        p.name + ("/" if p.is_dir() else "")
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
        and p.name not in ("__init__.py", "__main__.py")
    }
    assert set(listed) == on_disk
    for entry in (e for e in listed if e.endswith("/")):
        modules = {p.name for p in (PACKAGE / entry).glob("*.py")} - {"__init__.py"}
        if entry == "collectors/":
            modules -= {f"{c.name}.py" for c in REGISTRY}
        assert listed[entry] - {"__init__.py"} == modules, entry


def test_the_readme_is_short_enough_to_read() -> None:
    """The README is for a user (node_exporter's, for forty collectors, is 20 KB); the
    reference goes to docs/."""
    assert len(README.encode()) <= 25 * 1024
