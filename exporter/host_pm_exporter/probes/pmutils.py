"""The pm-utils probe: ``pm-is-supported --suspend | --hibernate | --suspend-hybrid``.

Exit status 0 means yes, 1 means no; anything else (a signal, 126, 127...) means the
answer is unknown.  The three commands run at once, each with a fixed argv, an
absolute path, no shell and a minimal environment, in a session of its own so that a
hung script is killed with everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

from host_pm_exporter.probes import ProbeResult, once

DEFAULT_PATH = "/usr/bin/pm-is-supported"
OPERATIONS = {
    "suspend": "--suspend",
    "hibernate": "--hibernate",
    "suspend_hybrid": "--suspend-hybrid",
}
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
_live: set[int] = set()  # process groups of the commands running now
_live_lock = threading.Lock()


def kill_all() -> None:
    """Kill every probe command still running, with all it started (at shutdown)."""
    with _live_lock:
        groups = list(_live)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def run(path: str, timeout: float) -> ProbeResult:
    """Ask pm-utils, giving up after `timeout` seconds."""
    start = time.monotonic()
    result = ProbeResult("pm-utils")
    result.error = _run(path, timeout, start, result)
    result.duration = time.monotonic() - start
    if result.error is not None:
        once.failure("pm-utils", result.error)
    return result


def _run(path: str, timeout: float, start: float, result: ProbeResult) -> str | None:
    if not os.path.isabs(path):
        return f"{path} is not an absolute path"
    if not os.path.isfile(path):
        return f"{path} not found (pm-utils not installed)"
    with _live_lock:
        if _live:  # an earlier run is still stuck (a kill cannot end a process in the D state)
            return "an earlier pm-is-supported is still running; not starting another"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    errors: list[str] = []
    try:
        for operation, flag in OPERATIONS.items():
            procs[operation] = subprocess.Popen(
                [path, flag],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_ENV,
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
            with _live_lock:
                _live.add(procs[operation].pid)
    except OSError as err:
        errors.append(f"cannot run {path}: {err.strerror or err}")
    deadline = start + timeout
    try:
        for operation, proc in procs.items():
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                errors.append(f"{path} {OPERATIONS[operation]} timed out after {timeout:g}s")
                continue
            finally:
                _kill(proc)  # at once, while its process group is surely still its own
            if code in (0, 1):
                result.answers[operation] = code == 0
            else:
                errors.append(f"{path} {OPERATIONS[operation]} exited with status {code}")
    finally:
        for proc in procs.values():  # whatever the outcome: nothing they started stays behind
            _kill(proc)
    return "; ".join(errors) if errors else None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything in its session, and reap it: no zombie left.
    The wait is bounded: a process stuck in the kernel (D state) must not hang the
    probe; Popen reaps it later. The script's own children are re-parented to the
    init, which reaps them: in the container image, that is tini."""
    with _live_lock:
        if proc.pid not in _live:
            return  # killed already: its number may be someone else's by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(1.0)
    if proc.poll() is not None:  # reaped; one stuck in the kernel stays listed, and blocks new runs
        with _live_lock:
            _live.discard(proc.pid)
