"""End to end: the installed console script against each fixture host, scraped over
HTTP, diffed against a golden file (regenerate with ``pytest --update-golden``) and
linted by ``promtool check metrics``."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.conftest import GOLDEN, HOSTS, expected, fixture_args, need_tool, samples

_DURATION = re.compile(r"^(\S*_duration_seconds(?:\{[^}]*\})?) \S+$", re.MULTILINE)
_VERSION = re.compile(r'^(host_exporter_build_info\{version=)"[^"]*"', re.MULTILINE)


def normalise(text: str) -> str:
    """Durations and the version differ run to run or release to release; nothing else may."""
    return _VERSION.sub(r'\1"<version>"', _DURATION.sub(r"\1 <duration>", text))


def promtool_check(text: str) -> None:
    promtool = need_tool("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("host", HOSTS)
def test_scrape_matches_golden_and_lints(host: str, exporter: Any, update_golden: bool) -> None:
    exp = exporter([*fixture_args(host), "--pm.probes=kernel", "--web.disable-exporter-metrics"])
    text = exp.scrape()
    golden = GOLDEN / f"{host}.prom"
    if update_golden:
        golden.write_text(normalise(text))
    assert normalise(text) == golden.read_text(), f"scrape of {host} differs from {golden}"
    promtool_check(text)
    got = samples(text)
    for state, value in expected(host).get("supported", {}).items():
        assert got[f'host_pm_supported{{state="{state}"}}'] == value, state


def test_default_scrape_with_exporter_metrics_lints(exporter: Any) -> None:
    exp = exporter(fixture_args("server-s3"))
    text = exp.scrape()
    assert "process_resident_memory_bytes" in text
    assert 'host_exporter_build_info{version="' in text
    promtool_check(text)


def test_golden_files_have_no_stray_hosts() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.prom")) == HOSTS
