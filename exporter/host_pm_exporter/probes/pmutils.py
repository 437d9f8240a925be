"""The pm-utils probe: ``pm-is-supported --suspend | --hibernate | --suspend-hybrid``.

Exit status 0 means yes, 1 means no; anything else (a signal, 126, 127...) means the
answer is unknown.  Every scrape asks afresh; nothing is kept from one scrape to the
next.

**Two ways to ask.**  pm-utils' own ``pm-is-supported`` is a small ``/bin/sh`` script:
it sources pm-utils' function library (``pm-functions``), whose top level does all the
work (it reads pm-utils' defaults and configuration, loads the sleep modules and greps
``/sys/power`` to decide which methods exist), and then turns its argument into the
name of a check function (``--suspend-hybrid`` becomes ``check_suspend_hybrid``),
calls it and exits with its status.  Running the script three times runs that library
three times.  So:

- *Together* (when the configured path is recognisably that dispatcher, see
  `dispatcher_functions`): one ``/bin/sh -c`` runs a small fixed script of ours
  (`_TOGETHER`) that sources the same library once and then calls each of the three
  check functions in a subshell of its own, so that nothing one check does can reach
  another, and prints the three exit statuses on one line, which is parsed strictly:
  anything else is a failed probe, never an answer.
- *Separately* (anything else, or pm-utils configured in a way the combined form could
  not reproduce): the three commands run at once, each with a fixed argv.

**Why the answers are the same.**  A real call is one ``/bin/sh`` (the interpreter
the dispatcher's first line names, and the one the combined form runs), with the same
environment, working directory, stdin, stdout and stderr as the combined form.  It
sources the library with ``$0`` the script's path and ``$1`` the flag; then the
dispatcher sets ``ARG`` (the flag without ``--``, dashes made underscores: with fixed
flags, fixed values ``suspend``, ``hibernate``, ``suspend_hybrid``) and calls
``check_$ARG``, whose status is the script's.  The combined form sources the same
library with the same ``$0`` and ``$1`` the first flag, so what the library's top
level computes can differ from a real call's only where something in it looks at the
argument:

- the library itself only records it (``PM_CMDLINE="$*"``); each subshell sets
  ``PM_CMDLINE`` and ``ARG`` to what that call would have before its check runs;
- the defaults and sleep modules pm-utils ships do not read it;
- the administrator's files in pm-utils' ``config.d`` directories might (they are
  sourced with the call's ``$1``): when the library would have read any, the combined
  form does not answer and the probe asks separately;
- if the library changed the positional parameters or ``IFS``, the dispatcher's
  ``ARG`` would not be the fixed value: the probe asks separately too.

A check function is called without arguments in both forms, so the caller's ``$1``
does not reach it; each runs in a fresh subshell of the state the library left, as
each real call's runs in the state its own library run left.  What the combined form
assumes is that the library does not redefine ``echo`` or ``tr``, the two commands
the dispatcher runs between the library and the check (pm-utils' does not).

Either way each process has an absolute path, a fixed argv (no user input in the
shell text: the paths are positional parameters), a minimal environment, ``/`` as its
working directory and a session of its own, so that a hung script is killed with
everything it started, on every way out and at shutdown (`kill_all`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import signal
import stat
import subprocess
import threading
import time
from typing import Literal

from host_pm_exporter.probes import ProbeResult, log_outcome

DEFAULT_PATH = "/usr/bin/pm-is-supported"
OPERATIONS = {
    "suspend": "--suspend",
    "hibernate": "--hibernate",
    "suspend_hybrid": "--suspend-hybrid",
}
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
_SHELL = "/bin/sh"  # the dispatcher's interpreter (its first line must name exactly this)
_SCRIPT_LIMIT = 16 * 1024  # pm-utils' dispatcher is about 1 KiB
_OUTPUT_LIMIT = 4 * 1024  # the combined form prints about 20 bytes
_live: set[int] = set()  # process groups of the commands running now
_live_lock = threading.Lock()

Way = Literal["auto", "together", "separately"]

# The combined form.  $0 is the dispatcher's path (as $0 is in a real call), $1 the
# library's path; they are parameters, never part of this text.  Its variables carry
# a prefix of ours; those the library could see are unset before any check runs (a
# later check sees the earlier statuses' only).  The library's and the checks' output
# goes where a real call's goes (nowhere); only the last line writes to the pipe.
_TOGETHER = r"""host_pm_exporter_library=$1
host_pm_exporter_ifs=$IFS
set -- --suspend
. "$host_pm_exporter_library" >/dev/null
if [ "$#" != 1 ] || [ "$1" != --suspend ] || [ "$IFS" != "$host_pm_exporter_ifs" ]; then
    printf 'separately arguments\n'
    exit 0
fi
if [ -z "$PM_UTILS_ETCDIR" ]; then
    printf 'separately etcdir\n'
    exit 0
fi
for host_pm_exporter_config in "${PM_UTILS_ETCDIR}"/config.d/*[!~] "${PM_UTILS_ETCDIR}/${STASHNAME}.config.d"/*[!~]; do
    if [ -f "$host_pm_exporter_config" ]; then
        printf 'separately config\n'
        exit 0
    fi
done
unset host_pm_exporter_library host_pm_exporter_ifs host_pm_exporter_config
(ARG=suspend; PM_CMDLINE=--suspend; check_suspend) >/dev/null
host_pm_exporter_suspend=$?
(ARG=hibernate; PM_CMDLINE=--hibernate; check_hibernate) >/dev/null
host_pm_exporter_hibernate=$?
(ARG=suspend_hybrid; PM_CMDLINE=--suspend-hybrid; check_suspend_hybrid) >/dev/null
printf 'answers %s %s %s\n' "$host_pm_exporter_suspend" "$host_pm_exporter_hibernate" "$?"
"""
_ANSWERS = re.compile(rb"answers ([0-9]{1,3}) ([0-9]{1,3}) ([0-9]{1,3})\n")
_SEPARATELY = re.compile(rb"separately (arguments|etcdir|config)\n")
_WHY_SEPARATELY = {
    b"arguments": "pm-functions changed the arguments or IFS",
    b"etcdir": "pm-functions set no PM_UTILS_ETCDIR",
    b"config": "pm-utils has configuration files",
}

# pm-utils' dispatcher, as `_normalise` leaves it: the library sourced by absolute path
# (its name pm-functions), a help function that only echoes literal text, ARG made
# from $1, and a case that calls check_$ARG for the three operations and nothing else.
_SHEBANG = re.compile(r"#![ \t]*/bin/sh[ \t]*")
_DISPATCHER = re.compile(
    r"""\. (?P<q>"?)(?P<library>/(?:[A-Za-z0-9._+-]+/)*pm-functions)(?P=q)
help_options ?\(\)[ \n]\{
(?:echo(?: "[^"$`\\]*")?
)*\}
ARG="\$\(echo \$\{1#--\}\|tr - _\)"
case "\$ARG" in
suspend\|hibernate\|suspend_hybrid\)[ \n]"check_\$ARG" ;;
help\) help_options ;;
\*\) help_options 1>&2[ \n]exit 1 ;;
esac""",
    re.ASCII,
)
_BLANKS = re.compile(r"[ \t]+")


class _Separately:
    """The combined form declined to answer (see `_WHY_SEPARATELY`): ask separately."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def kill_all() -> None:
    """Kill every probe command still running, with all it started (at shutdown)."""
    with _live_lock:
        groups = list(_live)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def run(path: str, timeout: float, way: Way = "auto") -> ProbeResult:
    """Ask pm-utils, giving up after `timeout` seconds.

    `way` "auto" asks in one process when `path` is pm-utils' own dispatcher, else in
    three; "separately" always in three, "together" only in one (a failed probe when
    that cannot be): those two are for the tests and the benchmark.
    """
    start = time.monotonic()
    result = ProbeResult("pm-utils")
    result.error = _run(path, timeout, way, start, result)
    result.absent = result.error is not None and os.path.isabs(path) and not os.path.lexists(path)
    result.duration = time.monotonic() - start
    log_outcome(result)
    return result


def dispatcher_functions(path: str) -> str | None:
    """The pm-functions library that `path` sources, if `path` is recognisably pm-utils'
    own ``pm-is-supported``; None if it is anything else.

    The rule is conservative: `path` must be a regular file that we may execute, of
    at most 16 KiB, in UTF-8 without NUL or carriage return, whose first line is
    ``#!/bin/sh``; once comment and blank lines are dropped, each line's leading and
    trailing blanks stripped and runs of blanks made one space, the rest must be,
    command for command, pm-utils' dispatcher (`_DISPATCHER`): nothing before the
    library is sourced, nothing but literal echoes in its help function, nothing
    after the case.  Every line it allows is complete on its own (no quote, command
    substitution or line continuation spans lines), so dropping a comment line cannot
    change what the others mean.  The library must be sourced by an absolute path
    made of plain characters whose last part is ``pm-functions``, and be a regular
    file we may read.
    """
    if not os.access(path, os.X_OK):
        return None
    try:
        text = _read_script(path)
    except (OSError, UnicodeDecodeError):
        return None
    library = _sourced_library(text) if text is not None else None
    try:
        if library is None or not stat.S_ISREG(os.stat(library).st_mode) or not os.access(library, os.R_OK):
            return None
    except OSError:
        return None
    return library


def _sourced_library(text: str) -> str | None:
    """The library a script of pm-utils' dispatcher's shape sources, or None."""
    if "\0" in text or "\r" in text:
        return None
    first, _, rest = text.partition("\n")
    match = _DISPATCHER.fullmatch(_normalise(rest)) if _SHEBANG.fullmatch(first) else None
    return match.group("library") if match is not None else None


def _read_script(path: str) -> str | None:
    """The file's text, or None if it is not a regular file of at most 16 KiB."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = b""
        while chunk := os.read(fd, _SCRIPT_LIMIT + 1 - len(data)):
            data += chunk
            if len(data) > _SCRIPT_LIMIT:
                return None
    finally:
        os.close(fd)
    return data.decode("utf-8")


def _normalise(text: str) -> str:
    lines = (_BLANKS.sub(" ", line.strip(" \t")) for line in text.split("\n"))
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def _run(path: str, timeout: float, way: Way, start: float, result: ProbeResult) -> str | None:
    if not os.path.isabs(path):
        return f"{path} is not an absolute path"
    if not os.path.isfile(path):
        return f"{path} not found (pm-utils not installed)"
    with _live_lock:
        if _live:  # an earlier run is still stuck (a kill cannot end a process in the D state)
            return "an earlier pm-is-supported is still running; not starting another"
    deadline = start + timeout
    if way != "separately":
        library = dispatcher_functions(path)
        if library is None:
            outcome: str | _Separately | None = _Separately(f"{path} is not pm-utils' own pm-is-supported")
        else:
            outcome = _together(path, library, deadline, timeout, result)
        if not isinstance(outcome, _Separately):
            return outcome
        if way == "together":
            return f"cannot ask pm-utils in one process: {outcome.reason}"
    return _separately(path, deadline, timeout, result)


def _spawn(argv: list[str], stdout: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env=_ENV,
        cwd="/",
        close_fds=True,
        start_new_session=True,
    )
    with _live_lock:
        _live.add(proc.pid)
    return proc


def _together(
    path: str, library: str, deadline: float, timeout: float, result: ProbeResult
) -> str | _Separately | None:
    """Ask the three questions in one shell; see the module's docstring."""
    what = f"{path} (the three checks in one {_SHELL})"
    try:
        proc = _spawn([_SHELL, "-c", _TOGETHER, path, library], subprocess.PIPE)
    except OSError as err:
        return f"cannot run {_SHELL}: {err.strerror or err}"
    try:
        out = _read_bounded(proc, deadline)
        code = proc.wait(max(0.0, deadline - time.monotonic())) if out is not None else None
    except subprocess.TimeoutExpired:
        return f"{what} timed out after {timeout:g}s"
    finally:
        _kill(proc)  # nothing it started stays behind
        if proc.stdout is not None:
            proc.stdout.close()
    if out is None:
        return f"{what} wrote more than {_OUTPUT_LIMIT} bytes"
    if code == 0 and (separately := _SEPARATELY.fullmatch(out)):
        return _Separately(_WHY_SEPARATELY[separately.group(1)])
    answers = _ANSWERS.fullmatch(out)
    if code != 0 or answers is None:
        return f"{what} gave no answer: exit status {code}, output {out[:80]!r}"
    errors = []
    for operation, status in zip(OPERATIONS, answers.groups()):
        if status in (b"0", b"1"):
            result.answers[operation] = status == b"0"
        else:
            errors.append(f"{path} {OPERATIONS[operation]} exited with status {int(status)}")
    return "; ".join(errors) if errors else None


def _read_bounded(proc: subprocess.Popen[bytes], deadline: float) -> bytes | None:
    """All `proc` writes to its stdout until it closes it, or None past the limit.
    Raises TimeoutExpired at the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(math.ceil(left * 1000)):
            raise subprocess.TimeoutExpired(proc.args, left)
        chunk = os.read(fd, _OUTPUT_LIMIT + 1 - len(data))
        if not chunk:
            return data
        data += chunk
        if len(data) > _OUTPUT_LIMIT:
            return None


def _separately(path: str, deadline: float, timeout: float, result: ProbeResult) -> str | None:
    """Run the three commands at once, each on its own."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    errors: list[str] = []
    try:
        for operation, flag in OPERATIONS.items():
            procs[operation] = _spawn([path, flag], subprocess.DEVNULL)
    except OSError as err:
        errors.append(f"cannot run {path}: {err.strerror or err}")
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
