"""Run inside a private mount namespace (``unshare -m --propagation private``): put a
fixture host's /sys/power and RTC over the real ones, then either ask the real
``pm-is-supported`` and the exporter's pm-utils and kernel probes and print the
answers as JSON, or exec a command (the exporter) that sees the fixture as /sys/power.

usage: python -m tests.helpers.pm_namespace FIXTURE_ROOT OUTER_MNT_NS ask PM_IS_SUPPORTED [CONFIG_D]
       python -m tests.helpers.pm_namespace FIXTURE_ROOT OUTER_MNT_NS exec COMMAND...

OUTER_MNT_NS is the caller's ``readlink /proc/self/ns/mnt``: the helper refuses to
mount anything unless it runs in another namespace.  CONFIG_D, if given, is mounted
over pm-utils' /etc/pm/config.d.

``ask`` prints the three real calls' exit codes, the pm-functions library the probe
recognises in PM_IS_SUPPORTED (or null), and the probe's answers and error asked each
way: ``together`` (one process), ``separately`` (three) and ``auto`` (as a scrape asks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.probes import pmutils
from host_pm_exporter.readers.power import read_power
from host_pm_exporter.sleep import kernel_operations, supported_states


def mount(*args: str) -> None:
    subprocess.run(["/usr/bin/mount", *args], check=True)


def main() -> None:
    root, outer, mode = sys.argv[1:4]
    if os.readlink("/proc/self/ns/mnt") == outer:
        sys.exit("refusing to mount over /sys: not in a private mount namespace")
    mount("--bind", os.path.join(root, "sys/power"), "/sys/power")
    # pm-utils looks for /sys/class/rtc/rtc0/wakealarm: show the fixture's RTC, or none.
    mount("-t", "tmpfs", "none", "/sys/class")
    rtc = os.path.join(root, "sys/class/rtc")
    if os.path.isdir(rtc):
        os.mkdir("/sys/class/rtc")
        mount("--bind", rtc, "/sys/class/rtc")
    if mode == "exec":
        os.execv(sys.argv[4], sys.argv[4:])
    pm_is_supported = sys.argv[4]
    if len(sys.argv) > 5:
        mount("--bind", sys.argv[5], "/etc/pm/config.d")
    real = {}
    for operation, flag in pmutils.OPERATIONS.items():
        code = subprocess.run([pm_is_supported, flag], check=False, capture_output=True).returncode
        real[operation] = code
    ways = {}
    for way in ("together", "separately", "auto"):
        probe = pmutils.run(pm_is_supported, 10.0, way)
        ways[way] = {"answers": probe.answers, "error": probe.error}
    kernel = kernel_operations(supported_states(read_power(HostFS())))
    print(
        json.dumps(
            {
                "real_exit_codes": real,
                "recognised": pmutils.dispatcher_functions(pm_is_supported),
                **ways,
                "kernel": kernel,
                "state": HostFS().read("/sys/power/state"),
            }
        )
    )


if __name__ == "__main__":
    main()
