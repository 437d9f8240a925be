"""Facts wrong or missing on the kernel-class fixture hosts (tests/fixture_hosts.py's
KERNEL_CLASS_HOSTS, each with its hand-written answer in tests/fixtures/<host>/
expected.json), the collectors that failed and the facts given up, for an exporter
package of choice.  Run by hand, from the repository:

    .venv/bin/python tests/bench/kernel_classes.py                 # this checkout
    git worktree add /tmp/old 0e238c5 && \\
    .venv/bin/python tests/bench/kernel_classes.py --package /tmp/old/exporter   # an older one

The trees are built by this checkout's tests.hostgen; only the exporter package read
from `--package` changes, so the same inputs are judged by both versions.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[str, float]:
    """name{labels} -> value of an exposition (no conftest: it imports this checkout's package)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default=str(ROOT / "exporter"), help="the directory holding host_pm_exporter")
    args = parser.parse_args()
    sys.path[:0] = [args.package, str(ROOT)]
    from tests.fixture_hosts import KERNEL_CLASS_HOSTS
    from tests.hostgen import build

    cli = importlib.import_module("host_pm_exporter.cli")
    try:  # the exposition's builder: wiring.make_exposition, or the older cli.make_registry
        make: Any = importlib.import_module("host_pm_exporter.wiring").make_exposition
    except ImportError:
        make = cli.make_registry
    print("package:", importlib.import_module("host_pm_exporter").__file__)
    top = Path(tempfile.mkdtemp(prefix="kernel-classes-"))
    total = wrong_total = 0
    for spec in KERNEL_CLASS_HOSTS:
        root = top / spec.name
        build(spec, root)
        argv = [f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys", f"--path.rootfs={root}",
                "--pm.probes=kernel", "--web.exporter-metrics=none"]  # fmt: skip
        got = samples(make(cli.parse_config(argv)).encode().decode())
        want = json.loads((ROOT / "tests/fixtures" / spec.name / "expected.json").read_text())["kernel_class"]
        facts: dict[str, float] = {f"host_cpu_{k}": v for k, v in want["topology"].items()}
        facts |= {f'host_cpu_logical{{state="{k}"}}': v for k, v in want["logical"].items()}
        facts |= {f'host_numa_node_cpus{{node="{n}"}}': v for n, v in want["numa_cpus"].items()}
        for key, (size, instances) in want["caches"].items():
            level, kind = key.split()
            if size is not None:
                facts[f'host_cpu_cache_size_bytes{{level="{level}",type="{kind}"}}'] = size
            if instances is not None:
                facts[f'host_cpu_cache_instances{{level="{level}",type="{kind}"}}'] = instances
        wrong = [k for k, v in facts.items() if got.get(k) != v]
        failed = sorted(
            k.split('"')[1] for k, v in got.items() if k.startswith("host_exporter_collector_success") and v != 1
        )
        given = int(sum(v for k, v in got.items() if k.startswith("host_exporter_facts_given_up")))
        total += len(facts)
        wrong_total += len(wrong)
        print(f"{spec.name:24} facts {len(facts):3}  wrong/missing {len(wrong):3}  given up {given}  failed {failed}")
    print(f"total: {wrong_total} of {total} facts wrong or missing")


if __name__ == "__main__":
    main()
