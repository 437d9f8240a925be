"""The collector registry is the one place a collector is declared: flags, readings,
rendering and the metric table in docs/internals.md all come from it, each collector emits exactly
the metrics it declares, mypy rejects metric families that do not take what the gatherer
returns, nothing outside its module names a collector, and no module imports a floor
above its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from host_pm_exporter.cli import build_parser, parse_config
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.reading import build_snapshot
from host_pm_exporter.views.exposition import EXPORTER_METRICS, metric_table
from host_pm_exporter.views.probes import PROBE_METRICS
from tests.conftest import HOSTS, fixture_args, samples, scrape

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter" / "host_pm_exporter"
README = ROOT / "docs" / "internals.md"
BEGIN, END = "<!-- metric-table:begin -->\n", "<!-- metric-table:end -->\n"


def emitted_per_collector() -> dict[str, set[str]]:
    """Sample names each collector rendered, over every fixture host, with every
    collector on and every CPU flag shown."""
    out: dict[str, set[str]] = {c.name: set() for c in REGISTRY}
    every = [f"--collector.{c.name}" for c in REGISTRY] + ["--collector.cpu.flags-include=.*"]
    for host in HOSTS:
        config = parse_config([*fixture_args(host), "--pm.probes=kernel", *every])
        snap = build_snapshot(config.snapshot)
        for collector in config.collectors:
            section = snap.sections[collector.name]
            assert section.ok, (host, collector.name, section.error)
            for family in collector.render_section(section):
                out[collector.name] |= {sample.name for sample in family.samples}
    return out


def test_each_collector_emits_exactly_the_metrics_it_declares() -> None:
    """Nothing undeclared, and every declared metric shows on some fixture host."""
    emitted = emitted_per_collector()
    for collector in REGISTRY:
        assert emitted[collector.name] == set(collector.metrics), collector.name


def test_no_metric_belongs_to_two_places() -> None:
    names = [m for c in REGISTRY for m in c.metrics] + list(PROBE_METRICS) + list(EXPORTER_METRICS)
    assert len(names) == len(set(names))
    assert len({c.name for c in REGISTRY}) == len(REGISTRY)


def test_probe_and_exporter_metrics_are_as_declared() -> None:
    names = {key.split("{")[0] for host in HOSTS for key in samples(scrape(host, exporter_metrics="all"))}
    names = {n for n in names if not n.startswith(("process_", "python_"))}  # prometheus_client's
    own = {m for c in REGISTRY for m in c.metrics}
    assert names - own == set(PROBE_METRICS) - {"host_pm_logind_answer_info"} | set(EXPORTER_METRICS)


def test_every_collector_has_its_flag_with_its_help() -> None:
    flags = {a.dest: a for a in build_parser()._actions}
    for collector in REGISTRY:
        action = flags[f"collector_{collector.name}"]
        assert f"--collector.{collector.name}" in action.option_strings
        assert action.help is not None
        assert action.help.startswith(collector.help)
    assert {d for d in flags if d.startswith("collector_")} == {f"collector_{c.name}" for c in REGISTRY}


def test_the_readme_metric_table_is_the_registrys(update_golden: bool) -> None:
    """Regenerate with ``pytest --update-golden``."""
    text = README.read_text()
    assert BEGIN in text, "README lacks the metric-table markers"
    assert END in text, "README lacks the metric-table markers"
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    if update_golden:
        README.write_text(head + BEGIN + metric_table(REGISTRY) + END + tail)
        current = metric_table(REGISTRY)
    assert current == metric_table(REGISTRY)


MISMATCHED = """
from host_pm_exporter.collectors import lockdown, power
from host_pm_exporter.collectors.base import Collector

BAD = Collector("bad", "gathers lockdown, renders power", gather=lambda s: s.lockdown(), families=power.families,
                metrics=())
GOOD = Collector("good", "gathers and renders lockdown", gather=lambda s: s.lockdown(), families=lockdown.families,
                 metrics=())
"""


def test_mypy_rejects_a_renderer_that_takes_other_facts(tmp_path: Path) -> None:
    snippet = tmp_path / "mismatched.py"
    snippet.write_text(MISMATCHED)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=300,
    )  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if "error" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    bad_line = next(n for n, line in enumerate(MISMATCHED.splitlines(), 1) if line.startswith("BAD"))
    assert f"mismatched.py:{bad_line}: error" in lines[0], lines


# The floors, lowest first: a module may import its own floor and those below.
FLOORS = [
    "",
    "hostfs",
    "replay",  # facts made again only when what the host answers has changed
    "logs",
    "workers",
    "families",
    "readers",
    "cpumap",  # libvirt's CPU map and the CPUID device (read like readers, by facts) and the decoder views use
    "sleep",
    "probes",
    "facts",
    "collectors",
    "reading",
    "views",
    "webconfig",
    "web",
    "cli",
    "wiring",
    "main",
]
HOST = ("hostfs", "readers", "cpumap", "probes")  # the only floors that touch the host


def floor_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "host_pm_exporter", module
    name = parts[1] if len(parts) > 1 else ""
    if name == "__main__":
        return len(FLOORS)
    assert name in FLOORS, f"{module}: put it on a floor in FLOORS"
    return FLOORS.index(name)


def imports() -> dict[str, set[str]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(part for part in rel.parts if part != "__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("host_pm_exporter"):
                found.add(node.module)
                found |= {
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if (PACKAGE.parent / node.module.replace(".", "/") / f"{a.name}.py").exists()
                }
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("host_pm_exporter")}
        out[module] = found
    return out


def test_no_module_imports_a_higher_floor() -> None:
    graph = imports()
    assert "host_pm_exporter.collectors" in graph
    upward = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if floor_of(target) > floor_of(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for target in graph.get(module, ()):
            if target != module and not module.startswith(target + "."):  # a package's own __init__
                visit(target, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_views_take_a_collectors_facts_through_it_not_by_name() -> None:
    """No module looks a collector's section up by its name (``sections["cpu"]``,
    ``sections.get("cpu")``): the views take its facts through its ``COLLECTOR.of``,
    typed, and only `collectors/__init__.py` lists the collectors."""
    names = {c.name for c in REGISTRY}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            key: ast.expr | None
            if isinstance(node, ast.Subscript):
                key, on = node.slice, node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                key, on = (node.args[0] if node.args else None), node.func.value
            else:
                continue
            if not isinstance(key, ast.Constant):
                continue
            where = on.attr if isinstance(on, ast.Attribute) else getattr(on, "id", "")
            if where in ("sections", "BY_NAME"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {key.value!r}")
    assert found == []
    listed = [p.stem for p in (PACKAGE / "collectors").glob("*.py") if p.stem not in ("__init__", "base")]
    assert sorted(listed) == sorted(names), "one module per collector, each listed in REGISTRY"


HOST_CALLS = {"open", "listdir", "scandir", "stat", "lstat", "readlink", "walk"}


# cpumap's modules that read: libvirt's CPU map (under --path.rootfs, else the packed
# copy) and the cpuid/msr devices, called only while facts are gathered; the baseline's
# inputs named on the command line.  Its decoder (x86, host, linux_x86) reads nothing.
CPUMAP_READING = {"cpumap/loader.py", "cpumap/cpuid.py", "cpumap/baseline.py"}


def test_only_hostfs_readers_and_probes_touch_the_host() -> None:
    """No file is opened or listed outside hostfs, readers, probes and cpumap's reading
    modules (the textfile write and the web config's own files are output and
    configuration, not the host), and the host's files are reached (`.fs`) only where
    facts are gathered."""
    allowed = {"hostfs.py", "readers", "probes", "wiring.py", "webconfig.py", "webconfig"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in allowed or rel.as_posix() in CPUMAP_READING:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in HOST_CALLS:
                    found.append(f"{rel}:{node.lineno} {func.id}()")
                elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "os":
                    found += [f"{rel}:{node.lineno} os.{func.attr}()"] if func.attr in HOST_CALLS else []
            elif (
                isinstance(node, ast.Attribute)
                and node.attr == "fs"
                and rel.parts[0] not in ("facts.py", "reading.py", "collectors")
            ):
                found.append(f"{rel}:{node.lineno} .fs")
    assert found == []
