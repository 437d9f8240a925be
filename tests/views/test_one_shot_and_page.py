"""The same reading for every consumer, through the installed console script: `--dump`,
`--explain`, `--textfile.directory` read back by a real node_exporter, the systemd
timer, and the status page rendered by a real headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    TESTS,
    exporter_command,
    fixture_args,
    free_port,
    http_get,
    need_tool,
    samples,
    series,
    wait_until,
)

ARTIFACTS = TESTS / ".artifacts"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exporter_command(), *args], capture_output=True, text=True, timeout=60, check=False,
                          env=env)  # fmt: skip


def test_dump_prints_one_scrape_and_exits_0_when_every_collector_succeeded() -> None:
    result = run(*fixture_args("server-s3"), "--pm.probes=kernel", "--dump")
    assert result.returncode == 0, result.stderr
    got = samples(result.stdout)
    assert got['host_pm_supported{state="S3"}'] == 1
    assert all(v == 1 for k, v in got.items() if k.startswith("host_exporter_collector_success"))
    assert not any(k.startswith("process_") for k in got), "no metrics of a process about to exit"
    assert result.stderr == ""


def test_dump_exits_1_when_a_collector_failed(host_copy: Any) -> None:
    root = host_copy()
    (root / "sys/power/mem_sleep").write_text("s2idle deep\n")
    result = run(*fixture_args(root), "--pm.probes=kernel", "--dump")
    assert result.returncode == 1
    assert samples(result.stdout)['host_exporter_collector_success{collector="power"}'] == 0


def test_explain_says_why_in_words() -> None:
    laptop = run(*fixture_args("laptop-s2idle"), "--pm.probes=kernel", "--explain")
    assert laptop.returncode == 0, laptop.stderr
    lines = laptop.stdout.splitlines()
    assert "S3 (suspend to RAM): no — the kernel offers only s2idle (/sys/power/mem_sleep = [s2idle])" in lines
    assert "s2idle (suspend to idle): yes" in lines
    assert "\033[" not in laptop.stdout, "colour only on a terminal"
    small = run(*fixture_args("server-small-swap"), "--pm.probes=kernel", "--explain")
    assert "S4 (hibernate): not ready — 2.0 GiB swap free, 20.0 GiB needed (Active(anon) / 0.98)" in small.stdout


def test_explain_exits_1_when_a_collector_failed(host_copy: Any) -> None:
    root = host_copy()
    (root / "sys/power/state").write_bytes(b"\xff garbage")
    result = run(*fixture_args(root), "--pm.probes=kernel", "--explain")
    assert result.returncode == 1
    assert "collector power failed" in result.stdout
    assert "S3 (suspend to RAM): unknown" in result.stdout


def test_the_textfile_is_read_by_a_real_node_exporter(tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    result = run(*fixture_args("server-s3"), "--pm.probes=kernel", f"--textfile.directory={directory}")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(directory)) == ["host_pm_exporter.prom"], "written by rename: no temporary left"
    binary = need_tool("prometheus-node-exporter", "prometheus-node-exporter")
    port = free_port()
    log = tmp_path / "node_exporter.log"
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={directory}"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        text = wait_until(lambda: http_get(f"http://127.0.0.1:{port}/metrics"), "node_exporter", proc=proc, log=log)
    finally:
        proc.terminate()
        proc.wait(10)
    got = samples(text)
    assert got['host_pm_supported{state="S3"}'] == 1
    assert got["node_textfile_scrape_error"] == 0
    assert got['node_scrape_collector_success{collector="textfile"}'] == 1


def test_the_textfile_timer_and_service_verify(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    units = []
    for name in ("host-pm-exporter-textfile.service", "host-pm-exporter-textfile.timer"):
        text = (TESTS.parent / "deploy/systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace("/opt/host-pm-exporter/bin/host-pm-exporter", exporter_command()[0]))
        units.append(str(tmp_path / name))
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "host-pm-exporter" not in result.stderr, result.stderr
    service = (tmp_path / "host-pm-exporter-textfile.service").read_text()
    assert "--textfile.directory=" in service


@pytest.mark.parametrize(
    ("host", "s3", "s2idle"),
    [("laptop-s2idle", "no", "yes"), ("server-s3", "yes", "yes")],
)
def test_the_status_page_in_a_real_browser(exporter: Any, tmp_path: Path, host: str, s3: str, s2idle: str) -> None:
    chromium = need_tool("chromium", "chromium")
    exp = exporter([*fixture_args(host), "--pm.probes=kernel"])
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([chromium, *flags, "--dump-dom", exp.url + "/"], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    rows = dict(re_rows(html))
    assert rows["S3 (suspend to RAM)"] == s3
    assert rows["s2idle (suspend to idle)"] == s2idle
    assert "<script" not in html
    assert 'href="/metrics"' in html
    assert 'href="/capabilities"' in html
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"status-{host}.png"
    subprocess.run([chromium, *flags, "--window-size=420,1400", f"--screenshot={shot}", exp.url + "/"],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.stat().st_size > 10_000


def re_rows(html: str) -> list[tuple[str, str]]:
    """(state label, supported) of the states table."""
    return re.findall(r'<tr><th>([^<]+)</th><td><span class="\w+">(\w+)</span>', html)


def test_the_status_page_is_the_same_reading_as_the_metrics(exporter: Any) -> None:
    exp = exporter([*fixture_args("laptop-s2idle"), "--pm.probes=kernel"])
    status, headers, body = exp.get("/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    html = body.decode()
    assert "the kernel offers only s2idle" in html
    got = series(exp.scrape(), "host_pm_supported")
    assert {"state": "S3"} in got


def test_explain_says_unknown_readiness_when_swap_cannot_be_read(host_copy: Any) -> None:
    root = host_copy()
    (root / "proc/swaps").write_text("garbage without the header\n")
    result = run(*fixture_args(root), "--pm.probes=kernel", "--explain")
    assert result.returncode == 1
    assert "S4 (hibernate): supported, readiness unknown" in result.stdout
