"""Every fixture host's scrape, built in process, diffed against a golden file of its
samples (regenerate with ``pytest --update-golden``) and linted by ``promtool check
metrics``; the HELP and TYPE lines of every family, once, in their own golden file; and
the installed console script over HTTP serving the same."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.conftest import GOLDEN, HOSTS, expected, fixture_args, need_tool, samples, scrape, scrape_fixture

_DURATION = re.compile(r"^(\S*_duration_seconds(?:\{[^}]*\})?) \S+$", re.MULTILINE)
_VERSION = re.compile(r'^(host_exporter_build_info\{version=)"[^"]*"', re.MULTILINE)
HELP = GOLDEN / "HELP.txt"


def normalise(text: str) -> str:
    """The samples, without HELP/TYPE lines; durations and the version differ run to
    run or release to release, nothing else may."""
    body = "".join(line + "\n" for line in text.split("\n")[:-1] if not line.startswith("# "))
    return _VERSION.sub(r'\1"<version>"', _DURATION.sub(r"\1 <duration>", body))


def descriptions(text: str) -> set[str]:
    return {line for line in text.split("\n") if line.startswith(("# HELP ", "# TYPE "))}


def promtool_check(text: str) -> None:
    promtool = need_tool("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("host", HOSTS)
def test_scrape_matches_golden_and_lints(host: str, update_golden: bool) -> None:
    text = scrape_fixture(host)
    golden = GOLDEN / f"{host}.prom"
    if update_golden:
        golden.write_text(normalise(text))
    assert normalise(text) == golden.read_text(), f"scrape of {host} differs from {golden}"
    promtool_check(text)
    got = samples(text)
    for state, value in expected(host).get("supported", {}).items():
        assert got[f'host_pm_supported{{state="{state}"}}'] == value, state


def test_help_and_type_of_every_family_once(update_golden: bool) -> None:
    """One HELP and one TYPE per family whatever the host: a reworded help text changes
    this one file, not every host's golden file."""
    lines: set[str] = set()
    for host in HOSTS:
        lines |= descriptions(scrape_fixture(host))
    if update_golden:
        HELP.write_text("".join(f"{line}\n" for line in sorted(lines)))
    assert sorted(lines) == HELP.read_text().splitlines()
    names = [line.split()[2] for line in lines if line.startswith("# HELP ")]
    assert len(names) == len(set(names)), "a family's help text differs between hosts"


def test_the_console_script_serves_the_same_scrape_over_http(exporter: Any) -> None:
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=kernel", "--web.disable-exporter-metrics"])
    assert normalise(exp.scrape()) == normalise(scrape("server-s3"))


def test_default_scrape_with_exporter_metrics_lints(exporter: Any) -> None:
    exp = exporter(fixture_args("server-s3"))
    text = exp.scrape()
    assert "process_resident_memory_bytes" in text
    assert 'host_exporter_build_info{version="' in text
    promtool_check(text)


def test_golden_files_have_no_stray_hosts() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.prom")) == HOSTS
