"""The pm-utils probe's two ways of asking, without a mount namespace: which scripts it
recognises as pm-utils' own dispatcher, that the one-process form answers as the
script's three real calls do, fails (never answers) on output it cannot parse, and
leaves no process behind.

"The dispatcher" here is this machine's real /usr/bin/pm-is-supported, copied at test
time with its ``.`` line pointed at a pm-functions library the test writes, so that
the real script and the probe are asked about a library whose answers the test knows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from host_pm_exporter.probes import ProbeResult, pmutils
from tests.conftest import fake_pm_is_supported, need_tool, samples, scrape, wait_until
from tests.probes.test_hung_probe import marked_sleep, strays

SOURCE_LINE = re.compile(r'^\. "/usr/lib/pm-utils/pm-functions"$', re.MULTILINE)


def checks(suspend: str = "return 0", hibernate: str = "return 1", suspend_hybrid: str = "return 1") -> str:
    """pm-functions' three check functions, with these bodies."""
    return (
        f"check_suspend() {{ {suspend}; }}\n"
        f"check_hibernate() {{ {hibernate}; }}\n"
        f"check_suspend_hybrid() {{ {suspend_hybrid}; }}\n"
    )


YES_NO_NO = checks()


def real_dispatcher() -> str:
    path = need_tool("pm-is-supported", "pm-utils")
    text = Path(path).read_text()
    assert len(SOURCE_LINE.findall(text)) == 1, "this pm-is-supported sources pm-functions on one line"
    return text


def dispatcher(directory: Path, library_text: str, edit: str = "", etcdir: bool = True) -> tuple[Path, Path]:
    """A copy of the real dispatcher sourcing a library with `library_text`, which
    first sets PM_UTILS_ETCDIR to `directory`/etc as pm-utils' does (unless not
    `etcdir`); `edit` names a change to the copy (see `EDITS`)."""
    library = directory / "pm-functions"
    library.write_text(f'PM_UTILS_ETCDIR="{directory}/etc"\n{library_text}' if etcdir else library_text)
    text = SOURCE_LINE.sub(f'. "{library}"', real_dispatcher())
    script = directory / "pm-is-supported"
    script.write_text(EDITS[edit](text) if edit else text)
    script.chmod(0o755)
    return script, library


def real_calls(script: Path) -> dict[str, int]:
    import subprocess

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    return {
        op: subprocess.run([str(script), flag], env=env, capture_output=True, check=False, timeout=30).returncode
        for op, flag in pmutils.OPERATIONS.items()
    }


def as_answers(codes: dict[str, int]) -> dict[str, bool]:
    return {op: code == 0 for op, code in codes.items() if code in (0, 1)}


def no_zombies() -> bool:
    me = psutil.Process()
    return not [c for c in me.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]


EDITS: dict[str, Callable[[str], str]] = {
    # still pm-utils' dispatcher
    "comments and blank lines": lambda t: t.replace("\n", "\n\n# a comment\n   # another\n\n"),
    "other indentation": lambda t: re.sub(r"(?m)^\t+", "    ", t).replace("help) \t", "help)   "),
    "brace on the function line": lambda t: t.replace("help_options()\n{", "help_options() {"),
    # not
    "bash": lambda t: t.replace("#!/bin/sh", "#!/bin/bash", 1),
    "sh with an option": lambda t: t.replace("#!/bin/sh", "#!/bin/sh -e", 1),
    "a command before the library": lambda t: t.replace("\n. ", "\nPM_DEBUG=true\n. ", 1),
    "a command after the case": lambda t: t + "exit 0\n",
    "a comment after the dispatch": lambda t: t.replace('"check_$ARG" ;;', '"check_$ARG" ;; # here'),
    "another dispatch": lambda t: t.replace('"check_$ARG" ;;', '"check_$ARG" || true ;;'),
    "another flag": lambda t: t.replace("|suspend_hybrid)", "|suspend_hybrid|powersave)"),
    "a help text with a command": lambda t: t.replace("\techo\n", '\techo "$(id)"\n'),
    "carriage returns": lambda t: t.replace("\n", "\r\n"),
    "a NUL": lambda t: t + "# \0\n",
    "too long": lambda t: t + ("#" * 99 + "\n") * 200,
    "a library by a relative path": lambda t: re.sub(r'(?m)^\. ".*"$', '. "pm-functions"', t),
    "a library of another name": lambda t: re.sub(r'(?m)^\. "(.*)pm-functions"$', r'. "\1functions"', t),
    "a library whose path is an expansion": lambda t: re.sub(r'(?m)^\. "(.*)"$', '. "$HOME/pm-functions"', t),
    "a missing library": lambda t: re.sub(r'(?m)^\. "(.*)"$', r'. "\1.missing/pm-functions"', t),
}
RECOGNISED = ["comments and blank lines", "other indentation", "brace on the function line"]


def test_the_real_dispatcher_is_recognised() -> None:
    path = need_tool("pm-is-supported", "pm-utils")
    assert pmutils.dispatcher_functions(path) == "/usr/lib/pm-utils/pm-functions"


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_recognition(tmp_path: Path, edit: str) -> None:
    script, library = dispatcher(tmp_path, YES_NO_NO, edit)
    assert pmutils.dispatcher_functions(str(script)) == (str(library) if edit in RECOGNISED else None)


def test_a_script_we_may_not_execute_is_not_recognised(tmp_path: Path) -> None:
    script, _ = dispatcher(tmp_path, YES_NO_NO)
    script.chmod(0o644)  # executable by no one: a real call fails too (even as root)
    assert pmutils.dispatcher_functions(str(script)) is None


def test_a_stand_in_script_is_asked_three_times_and_answers_right(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    script = fake_pm_is_supported(tmp_path, f'echo "$1" >> {log}\ncase "$1" in --hibernate) exit 1;; esac\nexit 0')
    assert pmutils.dispatcher_functions(str(script)) is None
    got = pmutils.run(str(script), 10.0)
    assert got.error is None
    assert got.answers == {"suspend": True, "hibernate": False, "suspend_hybrid": True}
    assert sorted(log.read_text().split()) == ["--hibernate", "--suspend", "--suspend-hybrid"]
    assert "not pm-utils' own" in str(pmutils.run(str(script), 10.0, "together").error)


def test_the_dispatcher_is_asked_in_one_process_sourcing_the_library_once(tmp_path: Path) -> None:
    log = tmp_path / "sourced"
    script, _ = dispatcher(tmp_path, f'echo "$0 $#" >> {log}\n{YES_NO_NO}')
    real = real_calls(script)
    assert real == {"suspend": 0, "hibernate": 1, "suspend_hybrid": 1}
    log.unlink()
    got = pmutils.run(str(script), 10.0)
    assert (got.error, got.answers) == (None, as_answers(real))
    assert log.read_text() == f"{script} 1\n"  # once, with the $0 and $# of a real call


LIBRARIES = {
    "each check in its own subshell": checks(
        "HIBERNATE_MODULE=leaked; check_hibernate() { return 0; }; return 0",
        '[ -n "$HIBERNATE_MODULE" ]',
        "check_hibernate",
    ),
    "each check sees its own call's ARG and PM_CMDLINE": 'PM_CMDLINE="$*"\n'
    + checks(
        '[ "$ARG $PM_CMDLINE" = "suspend --suspend" ]',
        '[ "$ARG $PM_CMDLINE" = "hibernate --hibernate" ]',
        '[ "$ARG $PM_CMDLINE" = "suspend_hybrid --suspend-hybrid" ]',
    ),
    "a check without arguments": checks('[ "$#" = 0 ]', '[ -z "$1" ]'),
    "a check that exits": checks("exit 0", "exit 1", "exit 1"),
    "the library's output": "echo noise\necho more noise >&2\n" + checks(hibernate="echo answers 0 0 0; return 1"),
    "a status other than 0 or 1": checks(suspend_hybrid="return 3"),
    "a check that is missing": checks().replace("check_hibernate", "check_hibernate_not"),
    "a check killed by a signal": checks(hibernate="kill -9 $(exec sh -c 'echo $PPID')"),
}


@pytest.mark.parametrize("case", sorted(LIBRARIES))
def test_one_process_answers_as_the_three_real_calls_do(tmp_path: Path, case: str) -> None:
    script, _ = dispatcher(tmp_path, LIBRARIES[case])
    real = real_calls(script)
    together = pmutils.run(str(script), 10.0, "together")
    separately = pmutils.run(str(script), 10.0, "separately")
    assert together.answers == separately.answers == as_answers(real)
    assert (together.error is None) == (separately.error is None) == all(c in (0, 1) for c in real.values())
    if case == "a status other than 0 or 1":
        assert together.error == separately.error == f"{script} --suspend-hybrid exited with status 3"
    assert not pmutils._live


def test_a_library_that_changes_the_arguments_is_asked_separately(tmp_path: Path) -> None:
    """After a top-level ``shift`` the real dispatcher makes ARG from nothing: help, exit 1."""
    script, _ = dispatcher(tmp_path, f"{YES_NO_NO}shift\n")
    assert real_calls(script) == {"suspend": 1, "hibernate": 1, "suspend_hybrid": 1}
    assert "changed the arguments" in str(pmutils.run(str(script), 10.0, "together").error)
    got = pmutils.run(str(script), 10.0)
    assert (got.error, got.answers) == (None, {"suspend": False, "hibernate": False, "suspend_hybrid": False})


def test_a_library_with_configuration_files_is_asked_separately(tmp_path: Path) -> None:
    """pm-utils sources them with the call's own argument in $1 (see test_pmutils_parity)."""
    script, _ = dispatcher(tmp_path, YES_NO_NO)
    (tmp_path / "etc/config.d").mkdir(parents=True)
    (tmp_path / "etc/config.d/backup~").write_text("")  # pm-utils skips these
    assert pmutils.run(str(script), 10.0, "together").success
    (tmp_path / "etc/config.d/sleep").write_text("")
    assert "configuration files" in str(pmutils.run(str(script), 10.0, "together").error)
    got = pmutils.run(str(script), 10.0)
    assert (got.error, got.answers) == (None, {"suspend": True, "hibernate": False, "suspend_hybrid": False})


def test_a_library_that_sets_no_config_directory_is_asked_separately(tmp_path: Path) -> None:
    script, _ = dispatcher(tmp_path, YES_NO_NO, etcdir=False)
    assert "no PM_UTILS_ETCDIR" in str(pmutils.run(str(script), 10.0, "together").error)
    got = pmutils.run(str(script), 10.0)
    assert (got.error, got.answers) == (None, {"suspend": True, "hibernate": False, "suspend_hybrid": False})


def test_the_library_runs_with_a_minimal_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = tmp_path / "env"
    script, _ = dispatcher(tmp_path, f"env > {dump}\npwd >> {dump}\n{YES_NO_NO}")
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    assert pmutils.run(str(script), 10.0, "together").success
    text = dump.read_text()
    assert "SECRET_TOKEN" not in text
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in text
    assert text.splitlines()[-1] == "/"


GARBAGE = {
    "too few statuses": "printf() { echo answers 0 0; }",
    "a word for a status": "printf() { echo answers 0 yes 0; }",
    "a line after the answers": "printf() { command printf 'answers 0 0 0\\n'; echo 1; }",
    "no newline": "printf() { command printf 'answers 0 0 0'; }",
    "a status past 255": "printf() { echo answers 0 0 1000; }",
    "nothing, exit 0": "exit 0",
    "nothing, a syntax error": "if then",
    "a non-zero exit after the answers": "printf() { command printf 'answers 0 0 0\\n'; exit 3; }",
    "a megabyte": "printf() { head -c 1000000 /dev/zero; }",
    "an unknown reason to decline": "printf() { echo separately because; }",
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_output_that_does_not_parse_is_a_failed_probe_with_no_answer(tmp_path: Path, case: str) -> None:
    script, _ = dispatcher(tmp_path, f"{YES_NO_NO}{GARBAGE[case]}\n")
    assert pmutils.dispatcher_functions(str(script)) is not None
    got = pmutils.run(str(script), 10.0)
    assert not got.success
    assert got.answers == {}
    expected = "wrote more than 4096 bytes" if case == "a megabyte" else "gave no answer"
    assert expected in str(got.error)
    assert not pmutils._live


def test_output_that_does_not_parse_scrapes_as_a_failed_probe(tmp_path: Path) -> None:
    script, _ = dispatcher(tmp_path, f"{YES_NO_NO}printf() {{ echo answers 0 0 zero; }}\n")
    got = samples(scrape("server-s3", "--pm.probes=pm-utils", f"--pm.pm-is-supported={script}"))
    assert got['host_pm_probe_success{probe="pm-utils"}'] == 0
    assert not any('probe="pm-utils"' in k and "probe_supported" in k for k in got)


def hanging(tmp_path: Path) -> tuple[Path, str]:
    """A dispatcher whose hibernate check starts a long sleep in the background and
    waits for another: a process group of three processes and more."""
    sleeper, marker = marked_sleep(tmp_path)
    library = f"{YES_NO_NO}check_hibernate() {{ {sleeper} 30 & {sleeper} 30; }}\n"
    script, _ = dispatcher(tmp_path, library)
    assert pmutils.dispatcher_functions(str(script)) is not None
    return script, marker


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    script, marker = hanging(tmp_path)
    got = pmutils.run(str(script), 0.5)
    assert got.answers == {}
    assert got.error == f"{script} (the three checks in one /bin/sh) timed out after 0.5s"
    wait_until(lambda: not strays(marker), "the hung check's processes gone", timeout=5)
    assert no_zombies()
    assert not pmutils._live


def test_kill_all_ends_a_run_in_progress(tmp_path: Path) -> None:
    script, marker = hanging(tmp_path)
    results: list[ProbeResult] = []
    thread = threading.Thread(target=lambda: results.append(pmutils.run(str(script), 60.0)))
    thread.start()
    wait_until(lambda: len(strays(marker)) == 2, "the hung check running", timeout=10)
    pmutils.kill_all()
    thread.join(30)
    assert not thread.is_alive()
    assert results[0].answers == {}
    assert "gave no answer" in str(results[0].error)
    wait_until(lambda: not strays(marker), "the hung check's processes gone", timeout=5)
    assert no_zombies()
    assert not pmutils._live
