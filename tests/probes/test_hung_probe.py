"""A probe that hangs costs the scrape no more than the probe timeout, leaves no zombie
and no stray process behind, and reports success 0."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import fake_pm_is_supported, fixture_args, samples, wait_until


def marked_sleep(tmp_path: Path) -> tuple[Path, str]:
    """A copy of sleep(1) under a unique name, so that its processes can be found."""
    marker = f"sleep-{uuid.uuid4().hex[:8]}"
    sleeper = tmp_path / marker
    shutil.copy("/bin/sleep", sleeper)
    return sleeper, marker


def hanging_pm_is_supported(tmp_path: Path) -> tuple[Path, str]:
    """A stand-in for pm-is-supported that starts a long sleep and waits for it."""
    sleeper, marker = marked_sleep(tmp_path)
    return fake_pm_is_supported(tmp_path, f"{sleeper} 30"), marker


def strays(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def with_hung_pm_utils(exporter: Any, tmp_path: Path, probe_timeout: str) -> tuple[Any, str]:
    """An exporter whose pm-is-supported hangs, and the marker of that hung process."""
    script, marker = hanging_pm_is_supported(tmp_path)
    args = [*fixture_args("server-s3"), "--pm.probes=kernel,pm-utils", f"--pm.pm-is-supported={script}"]
    return exporter([*args, f"--pm.probe-timeout={probe_timeout}"]), marker


def test_hung_pm_utils_is_cut_off(tmp_path: Path, exporter: Any) -> None:
    exp, marker = with_hung_pm_utils(exporter, tmp_path, "500ms")
    for _ in range(2):
        start = time.monotonic()
        got = samples(exp.scrape())
        elapsed = time.monotonic() - start
        assert elapsed < 1.5, f"scrape took {elapsed:.2f}s with a 0.5s probe timeout"
        assert got['host_pm_probe_success{probe="pm-utils"}'] == 0
        assert got['host_pm_probe_success{probe="kernel"}'] == 1
        assert got['host_pm_supported{state="S3"}'] == 1  # the rest of the scrape is whole
        assert not any('probe="pm-utils"' in k and "probe_supported" in k for k in got)
    wait_until(lambda: not strays(marker), "the hung command's processes gone", timeout=2)
    parent = psutil.Process(exp.proc.pid)
    zombies = [c for c in parent.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []
    assert "timed out after 0.5s" in exp.stderr()


def test_missing_pm_utils_is_an_absent_tool_logged_once(tmp_path: Path, exporter: Any) -> None:
    missing = tmp_path / "no-such-pm-is-supported"
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=pm-utils", f"--pm.pm-is-supported={missing}"])
    for _ in range(3):
        got = samples(exp.scrape())
        assert got['host_pm_probe_tool_present{probe="pm-utils"}'] == 0  # absent, not failed
        assert 'host_pm_probe_success{probe="pm-utils"}' not in got
    log = exp.stderr()
    assert log.count("not installed") == 1, log
    assert "Traceback" not in log


def test_a_probe_exit_status_other_than_0_or_1_is_unknown(tmp_path: Path, exporter: Any) -> None:
    script = fake_pm_is_supported(tmp_path, 'case "$1" in --suspend) exit 0;; --hibernate) exit 1;; *) exit 3;; esac')
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=pm-utils", f"--pm.pm-is-supported={script}"])
    got = samples(exp.scrape())
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 0
    assert got['host_pm_probe_supported{operation="suspend",probe="pm-utils"}'] == 1
    assert got['host_pm_probe_supported{operation="hibernate",probe="pm-utils"}'] == 0
    assert 'host_pm_probe_supported{operation="suspend_hybrid",probe="pm-utils"}' not in got


def test_pm_utils_runs_with_a_minimal_environment(tmp_path: Path, exporter: Any) -> None:
    out = tmp_path / "env.txt"
    script = fake_pm_is_supported(tmp_path, f'env > {out}.$$\necho "$@" >> {out}.$$\nexit 0')
    env = {**os.environ, "SECRET_TOKEN": "do-not-leak"}
    exp = exporter(
        [*fixture_args("server-s3"), "--pm.probes=pm-utils", f"--pm.pm-is-supported={script}"],
        env=env,
    )
    exp.scrape()
    dumps = [p.read_text() for p in tmp_path.glob("env.txt.*")]
    assert len(dumps) == 3
    assert {d.strip().splitlines()[-1] for d in dumps} == {
        "--suspend",
        "--hibernate",
        "--suspend-hybrid",
    }
    for dump in dumps:
        assert "SECRET_TOKEN" not in dump
        assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in dump


def test_a_background_child_left_by_a_successful_probe_is_killed(tmp_path: Path, exporter: Any) -> None:
    sleeper, marker = marked_sleep(tmp_path)
    path = fake_pm_is_supported(tmp_path, f"{sleeper} 30 &\nexit 0")
    exp = exporter([*fixture_args("server-s3"), "--pm.probes=pm-utils", f"--pm.pm-is-supported={path}"])
    got = samples(exp.scrape())
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 1
    wait_until(lambda: not strays(marker), "the probe's background child gone", timeout=2)


def test_sigterm_during_a_hung_probe_leaves_no_process_and_drains_the_scrape(tmp_path: Path, exporter: Any) -> None:
    import signal
    import threading

    exp, marker = with_hung_pm_utils(exporter, tmp_path, "3s")
    replies: list[int] = []
    scrape = threading.Thread(target=lambda: replies.append(exp.get("/metrics")[0]))
    scrape.start()
    wait_until(lambda: strays(marker), "the hung probe running", timeout=5)
    exp.proc.send_signal(signal.SIGTERM)
    scrape.join(10)
    assert replies == [200], "the scrape in flight was answered before the exit"
    assert exp.proc.wait(10) == 0
    wait_until(lambda: not strays(marker), "the hung probe's processes gone", timeout=3)
    assert "shutting down" in exp.stderr()


def test_sighup_rereads_the_web_config_and_keeps_serving(exporter: Any) -> None:
    import signal

    exp = exporter([*fixture_args("server-s3"), "--pm.probes=kernel"])
    assert exp.get("/healthz")[0] == 200  # answering: the event loop has taken the signals over
    exp.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: web config re-read" in exp.stderr(), "the SIGHUP logged", timeout=5)
    assert exp.get("/healthz")[0] == 200
