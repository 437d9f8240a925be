"""The README's first set-up command, deploy/install.sh, installs into a fresh virtual
environment and runs the exporter (in the foreground where systemd does not run)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import fixture_args, free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_install_script_installs_and_runs(tmp_path: Path) -> None:
    port = free_port()
    prefix = tmp_path / "prefix"
    env = {**os.environ, "PREFIX": str(prefix), "FOREGROUND": "1"}
    env.pop("VIRTUAL_ENV", None)
    log = (tmp_path / "install.log").open("wb")
    proc = subprocess.Popen(
        [str(ROOT / "deploy/install.sh"), f"--web.listen-address=127.0.0.1:{port}",
         *fixture_args("server-s3"), "--pm.probes=kernel"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        body = wait_until(
            lambda: http_get(f"http://127.0.0.1:{port}/metrics"), "the installed exporter", timeout=240,
            interval=0.5, proc=proc, log=tmp_path / "install.log",
        )  # fmt: skip
        assert 'host_pm_supported{state="S3"} 1.0' in body, (tmp_path / "install.log").read_text()
        assert (prefix / "bin/host-pm-exporter").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
