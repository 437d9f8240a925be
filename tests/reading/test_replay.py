"""Facts taken again only while the host answers every question as before (`replay`):
a reading with a Memory always gives what a reading without one gives, whatever
changed in between; what is taken again is what nothing changed under."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from host_pm_exporter import hostfs, reading
from host_pm_exporter.cli import parse_config
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.hostfs import CALL, DIR, EXISTS, IS_DIR, LINKS, LIST, READ, Failed, HostFS
from host_pm_exporter.reading import SnapshotConfig, Watchdog
from host_pm_exporter.replay import Made, Memory, Run
from host_pm_exporter.views.table import VIEWS, View
from host_pm_exporter.wiring import make_exposition, pages, shown
from tests.conftest import fixture_args

# Hand-written captures and generated trees of several kinds (x86 laptop and servers,
# s390, a first CPU that is not cpu0, caches that differ by kind, no core maps), small
# enough to spoil every file of each in turn.
HOSTS = (
    "laptop-s2idle",
    "server-s3",
    "lockdown",
    "vm-cloud",
    "k-first-cpu-not-zero",
    "k-asymmetric-caches",
    "k-thread-siblings-only",
    "s390x-z15",
)

Result = tuple[dict[str, Any], Any]


def configs(root: Path) -> tuple[SnapshotConfig, SnapshotConfig]:
    """The exporter's own reading config for the tree (with its Memory), and the same
    without one."""
    config = parse_config([*fixture_args(root), "--pm.probes=kernel", "--collector.vulnerabilities"]).snapshot
    assert config.memory is not None
    return config, replace(config, memory=None)


def read(config: SnapshotConfig) -> Result:
    """One reading: each collector's facts, error and facts given up, and the kernel
    probe's answers (durations left out: they differ every time)."""
    files = reading._FileReading(config, ScrapeFacts(config.fs, config.memory), Watchdog())
    files.run()
    sections = {name: (s.data, s.error, s.given_up) for name, s in files.sections.items()}
    kernel = files.kernel
    assert kernel is not None
    return sections, (kernel.answers, kernel.raw, kernel.error)


def traces(memory: Memory) -> Iterator[tuple[str, str, object]]:
    """Every question the remembered facts were made from, as it was asked."""
    made: list[Made] = list(memory._made.values())
    for entry in made:
        for step in entry.steps:
            if isinstance(step, Run):
                yield from ((step.op, path, was) for path, was in step.asked)
            else:
                yield step


def changed(text: bytes) -> bytes:
    """`text` changed as the kernel could have changed it: its last digit stepped, else
    its words in another order, else a value where there was none."""
    digits = list(re.finditer(rb"[0-9]", text))
    if digits:
        at = digits[-1].start()
        return text[:at] + str((int(text[at : at + 1]) + 1) % 10).encode() + text[at + 1 :]
    words = text.split()
    if len(words) > 1:
        return b" ".join(reversed(words)) + b"\n"
    return b"1\n" if not text.strip() else text + b"x"


def next_sibling(directory: Path) -> tuple[Path, Path] | None:
    """A numbered entry of `directory` and the name one past the highest number of its
    kind (``cpu3`` -> ``cpu4``), for a copy that looks like another instance."""
    numbered = [
        (m.group(1), int(m.group(2)), e) for e in directory.iterdir() if (m := re.fullmatch(r"(\D+)(\d+)", e.name))
    ]
    if not numbered:
        return None
    stem, _, source = max(numbered, key=lambda n: n[1])
    top = max(n for s, n, _ in numbered if s == stem)
    return source, directory / f"{stem}{top + 1}"


Undo = Callable[[], object]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def spoilers(root: Path, memory: Memory) -> Iterator[tuple[str, Callable[[], Undo]]]:
    """Every way this test changes the tree, one at a time, each undone after: each
    file's content changed, the file removed or replaced by something else than a file,
    a new instance beside each directory's numbered entries, and each path a reading
    found absent made present."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            if path.is_symlink():
                continue

            def change(path: Path = path) -> Undo:
                was = path.read_bytes()
                path.write_bytes(changed(was))
                return lambda: path.write_bytes(was)

            def remove(path: Path = path) -> Undo:
                was = path.read_bytes()
                path.unlink()
                return lambda: path.write_bytes(was)

            def replace_by(kind: str, path: Path = path) -> Undo:
                """Whatever else than a regular file may stand where one was: a
                FIFO, a directory, a device that reads nothing or a page of zeros."""
                was = path.read_bytes()
                path.unlink()
                if kind == "fifo":
                    os.mkfifo(path)
                elif kind == "directory":
                    path.mkdir()
                else:
                    path.symlink_to(f"/dev/{kind}")

                def undo() -> None:
                    _remove(path)
                    path.write_bytes(was)

                return undo

            yield f"change {path}", change
            yield f"remove {path}", remove
            for kind in ("fifo", "directory", "null", "zero"):
                yield f"{kind} for {path}", functools.partial(replace_by, kind, path)
        sibling = next_sibling(here) if dirnames or filenames else None
        if sibling is not None:
            source, target = sibling

            def add(source: Path = source, target: Path = target) -> Undo:
                if source.is_dir() and not source.is_symlink():
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copy(source, target, follow_symlinks=False)
                return lambda: _remove(target)

            yield f"add {target}", add
    absent = {
        (op, arg)
        for op, arg, result in traces(memory)
        if arg.startswith(str(root) + "/")
        and (
            (op == READ and result is None)
            or (op in (EXISTS, IS_DIR) and result is False)
            or (op in (LIST, LINKS) and result is None)
            or op == DIR
        )
    }
    for op, arg in sorted(absent):
        path = Path(arg)

        def make(path: Path = path, directory: bool = op in (DIR, IS_DIR, LIST, LINKS)) -> Undo:
            top = path
            while not top.parent.exists():
                top = top.parent
            path.parent.mkdir(parents=True, exist_ok=True)
            if directory:
                path.mkdir()
                (path / "online").write_text("1\n")
            else:
                path.write_text("1\n")
            return lambda: _remove(top)

        yield f"make {op} {path}", make


@pytest.mark.parametrize("host", HOSTS)
def test_a_reading_that_remembers_gives_what_a_fresh_one_gives_whatever_changed(
    host: str, host_copy: Callable[[str], Path]
) -> None:
    root = host_copy(host)
    remembering, fresh = configs(root)
    memory = remembering.memory
    assert memory is not None
    first = read(remembering)
    assert first == read(fresh)
    spoilt = 0
    for what, spoil in list(spoilers(root, memory)):
        before = memory.replayed
        assert read(remembering) == first, f"the tree unchanged, before: {what}"
        assert memory.replayed > before  # the unchanged tree is taken again, not made anew
        undo = spoil()
        assert read(remembering) == read(fresh), what
        undo()
        spoilt += 1
    assert spoilt > 40


_watching: list[tuple[int, list[str]]] = []  # the thread watched, and what it did


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching or _watching[-1][0] != threading.get_ident():  # another test's thread
        return
    if event in ("open", "os.listdir", "os.scandir") and isinstance(args[0], (str, bytes)):
        _watching[-1][1].append(os.fsdecode(args[0]))
    elif event in ("socket.__new__", "fcntl.ioctl"):
        _watching[-1][1].append(event)


@contextlib.contextmanager
def opened() -> Iterator[list[str]]:
    """What this thread opens or lists meanwhile (the readings here run in it), and the
    sockets it makes and the ioctls it calls (by their event names), by Python's own
    audit events (a hook cannot be removed: it is added once and records only while
    watched)."""
    if not _watching and _audit not in _hooks:
        sys.addaudithook(_audit)
        _hooks.append(_audit)
    seen: list[str] = []
    watched = (threading.get_ident(), seen)
    _watching.append(watched)
    try:
        yield seen
    finally:
        _watching.remove(watched)


_hooks: list[object] = []


def test_every_file_a_reading_opens_or_lists_is_a_question_it_recorded(host_copy: Callable[[str], Path]) -> None:
    """The readers ask the host only through HostFS."""
    root = host_copy("laptop-s2idle")
    remembering, _ = configs(root)
    with opened() as seen:
        read(remembering)
    assert remembering.memory is not None
    asked = {arg for _, arg, _ in traces(remembering.memory)}
    under = [p for p in seen if p.startswith(str(root)) or not p.startswith("/")]
    assert len(under) > 50
    for path in under:
        if path.startswith("/"):
            assert path in asked or any(a.startswith(path.rstrip("/") + "/") for a in asked), path
        else:  # a name opened relative to a directory
            assert any(a.endswith("/" + path) for a in asked), path


def test_every_question_a_reading_of_this_host_asks_is_recorded_and_asked_again() -> None:
    """On this machine's own /proc and /sys (kept files, class/ links, a network
    device's Wake-on-LAN by ioctl where it has one): every file opened or listed is a
    question recorded, every ioctl too, and a reading that takes the facts again asks
    each of them again."""
    config = parse_config(["--pm.probes=kernel", "--collector.vulnerabilities"]).snapshot
    memory = config.memory
    assert memory is not None
    with opened() as seen:
        read(config)
    calls = [arg for op, arg, _ in traces(memory) if op == CALL]
    assert seen.count("fcntl.ioctl") == len(calls)  # one per network device with a device
    asked = {arg for _, arg, _ in traces(memory)}
    for path in seen:
        if path.startswith(("/sys/", "/proc/")) and not path.startswith("/proc/self/"):
            assert path in asked or any(a.startswith(path.rstrip("/") + "/") for a in asked), path
        elif not path.startswith("/") and path not in ("socket.__new__", "fcntl.ioctl"):
            assert any(a.endswith("/" + path) for a in asked), path
    before = memory.replayed
    with opened() as again:
        read(config)
    assert memory.replayed > before
    assert again.count("fcntl.ioctl") == len(calls)


def test_a_question_beyond_the_files_is_asked_again(tmp_path: Path) -> None:
    answers = iter([(32, 0), (32, 0), (32, 32)])
    asked: list[str] = []

    def wol(name: str) -> tuple[int, int] | None:
        asked.append(name)
        return next(answers)

    fs = HostFS(sysfs=str(tmp_path)).for_reading()
    fs.trace = []
    assert fs.ask(wol, "eth0") == (32, 0)
    assert fs.trace == [(CALL, "eth0", (wol, (32, 0)))]
    made = Made.of(fs.trace, None)
    fs.trace = None
    assert fs.same(CALL, made.steps[0].asked)  # type: ignore[union-attr]
    assert not fs.same(CALL, made.steps[0].asked)  # type: ignore[union-attr]
    assert asked == ["eth0"] * 3


def test_a_path_found_absent_is_asked_once_a_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Collectors that found the same path absent (/sys/power/resume is asked by two)
    ask it once a reading: the second takes the first's answer; the next reading asks
    again, and sees what appeared: whatever stands at the path now is seen, as a
    fresh read would see it (an open that finds nothing, or a file where a directory
    was looked for, is absent)."""
    asked: list[str] = []
    still_absent = hostfs._still_absent

    def counted(path: str) -> bool | None:
        asked.append(path)
        return still_absent(path)

    monkeypatch.setattr(hostfs, "_still_absent", counted)
    gone = f"{tmp_path}/power/resume"
    other = f"{tmp_path}/power/resume_offset"
    host = HostFS(sysfs=str(tmp_path))
    fs = host.for_reading()
    assert fs.same(READ, [(gone, None), (other, None)])
    assert fs.same(READ, [(gone, None)])  # another collector, the same reading
    assert asked == [gone, other]
    (tmp_path / "power").mkdir()
    Path(gone).write_text("8:1\n")
    assert fs.same(READ, [(gone, None)])  # this reading has its answer
    assert asked == [gone, other]
    assert not host.for_reading().same(READ, [(gone, None)])  # the next one asks
    assert asked == [gone, other, gone]
    Path(gone).unlink()
    os.mkfifo(gone)
    assert not host.for_reading().same(READ, [(gone, None)])
    os.unlink(gone)
    os.mkdir(gone)
    assert not host.for_reading().same(READ, [(gone, None)])
    os.rmdir(gone)
    os.symlink(tmp_path / "power", gone)
    assert not host.for_reading().same(READ, [(gone, None)])
    os.unlink(gone)
    os.symlink(tmp_path / "nowhere", gone)  # a dangling link leads nowhere, as before
    assert host.for_reading().same(READ, [(gone, None)])
    os.unlink(gone)
    Path(gone).write_text("x")  # a file where a directory was looked for: still absent under it
    assert host.for_reading().same(READ, [(f"{gone}/deeper", None)])
    assert not host.for_reading().same(READ, [(gone, None)])
    os.unlink(gone)
    outside = HostFS(sysfs=str(tmp_path))  # outside a reading: asked every time, kept nowhere
    asked.clear()
    assert outside.same(READ, [(gone, None)])
    assert outside.same(READ, [(gone, None)])
    assert asked == [gone, gone]
    assert outside._absent is None
    os.symlink("loop", tmp_path / "loop")  # a symlink loop where a file was absent: an error, not an absence
    os.symlink("loop", tmp_path / "loop2")
    os.unlink(tmp_path / "loop")
    os.symlink("loop2", tmp_path / "loop")
    fs = host.for_reading()
    assert not fs.same(READ, [(f"{tmp_path}/loop", None)])
    with pytest.raises(hostfs.ReadError, match="symbolic links"):
        fs.read_bytes(f"{tmp_path}/loop")
    assert not fs.same(DIR, [(f"{tmp_path}/loop", True)])


def test_on_the_kernels_file_systems_a_path_that_leads_nowhere_is_asked_by_access(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This machine's /sys and /proc are the kernel's: a path under them found absent
    is asked again by `access` (no error raised), and answers as the open did; a
    fixture tree is not the kernel's, and is asked by the open."""
    host = HostFS()
    assert host._kernel_roots == ("/sys/", "/proc/")
    assert HostFS(sysfs="/tmp", procfs="/proc")._kernel_roots == ("/proc/",)
    accessed: list[str] = []
    real_access = hostfs._access

    def accessing(path: Any, mode: int) -> bool:
        accessed.append(str(path))
        return real_access(path, mode)

    monkeypatch.setattr(hostfs, "_access", accessing)
    gone = ["/sys/power/host-pm-exporter-test", "/proc/host-pm-exporter-test/x", "/sys/power/state/under-a-file"]
    fs = host.for_reading()
    assert fs.same(READ, [(path, None) for path in gone])
    assert accessed == gone
    assert all(fs.read_bytes(path) is None for path in gone)  # and the reading's reads take it
    assert accessed == gone
    assert not host.for_reading().same(READ, [("/sys/power/state", None)])
    assert host.for_reading().same(DIR, [("/sys/power/host-pm-exporter-test", True)])
    assert not host.for_reading().same(DIR, [("/sys/power", True)])
    for path in [*gone, "/sys/power/state", "/proc/self", "/sys/class/net/lo", "/proc/nope"]:
        assert host.exists(path) is os.path.exists(path), path


def test_a_path_that_led_nowhere_is_not_asked_again_in_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a path led nowhere in a reading (a file read, a replay, a directory opened),
    the reading's later questions of it take that answer, recorded in their traces as
    asked; a file standing where a directory was looked for is absent as a directory,
    and still read as a file; the next reading asks the host again."""
    asked: list[str] = []
    real_open, real_access = hostfs._open, hostfs._access

    def opening(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        asked.append(str(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def accessing(path: Any, mode: int, *, dir_fd: int | None = None) -> bool:
        asked.append(str(path))
        return real_access(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(hostfs, "_open", opening)
    monkeypatch.setattr(hostfs, "_access", accessing)
    host = HostFS(sysfs=str(tmp_path))
    fs = host.for_reading()
    gone = f"{tmp_path}/power/resume"
    assert fs.read_bytes(gone) is None
    fs.trace = []
    assert fs.read_bytes(gone) is None
    assert fs.trace == [(READ, gone, None)]
    assert fs.same(READ, [(gone, None)])
    stats = f"{tmp_path}/power/suspend_stats"
    with fs.directory(stats) as there:
        assert there.read("success") is None
    assert fs.same(DIR, [(stats, True)])
    fs.trace = []
    with fs.directory(stats) as there:
        assert there.absent
    assert fs.trace == [(DIR, stats, True)]
    assert asked == [gone, stats]
    Path(tmp_path / "file").write_text("1\n")
    with fs.directory(f"{tmp_path}/file") as there:
        assert there.absent
    assert fs.same(DIR, [(f"{tmp_path}/file", True)])
    assert fs.read_bytes(f"{tmp_path}/file") == b"1\n"
    (tmp_path / "power").mkdir()
    Path(gone).write_text("8:1\n")
    assert host.for_reading().read_bytes(gone) == b"8:1\n"
    assert not host.for_reading().same(DIR, [(f"{tmp_path}/power", True)])


def test_the_host_is_asked_again_every_reading(host_copy: Callable[[str], Path]) -> None:
    """Taking facts again saves the parsing, never the reading: every file read the
    first time is opened and read again every time (fixture files are never kept)."""
    root = host_copy("laptop-s2idle")
    remembering, _ = configs(root)
    read(remembering)
    memory = remembering.memory
    assert memory is not None
    recorded = {arg for op, arg, result in traces(memory) if op == READ and isinstance(result, bytes)}
    assert len(recorded) > 50
    for _ in range(2):
        before = memory.replayed
        with opened() as seen:
            read(remembering)
        assert memory.replayed > before
        assert recorded <= set(seen)


def test_facts_given_up_and_failed_collectors_are_reported_by_every_reading(host_copy: Callable[[str], Path]) -> None:
    root = host_copy("k-odd-values")
    remembering, fresh = configs(root)
    first = read(remembering)
    given_up = {name: g for name, (_, _, g) in first[0].items() if g}
    assert given_up  # the tree's odd values cost facts
    for _ in range(3):
        assert read(remembering) == first == read(fresh)
    cpuinfo = root / "proc" / "cpuinfo"
    cpuinfo.unlink()
    cpuinfo.mkdir()  # not a file: the cpu collector cannot read its core fact
    failed = read(remembering)
    assert failed == read(fresh)
    assert failed[0]["cpu"][1] == f"{cpuinfo}: not a regular file"
    assert read(remembering) == failed


def test_a_trace_records_failures_as_equal_when_they_come_again(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    fs = HostFS(sysfs=str(tmp_path)).for_reading()
    fs.trace = []
    with pytest.raises(Exception, match="not a regular file"):
        fs.read(str(tmp_path / "dir"))
    assert fs.trace == [(READ, str(tmp_path / "dir"), Failed("ReadError", f"{tmp_path / 'dir'}: not a regular file"))]
    fs.trace = None
    with pytest.raises(Exception, match="not a regular file"):  # asked again, it fails the same
        fs.read_bytes(str(tmp_path / "dir"))
    assert fs.same(READ, [(str(tmp_path / "dir"), Failed("ReadError", f"{tmp_path / 'dir'}: not a regular file"))])
    assert not fs.same(READ, [(str(tmp_path / "dir"), None)])


@pytest.mark.parametrize("host", ["server-s3", "hybrid-adl", "s390x-z15", "arm64-altra"])
def test_no_view_changes_the_facts_a_reading_takes_again(host: str) -> None:
    """Facts taken again are the same objects scrape after scrape: every view renders
    them, twice over, and they still equal what a fresh reading makes."""
    config = parse_config([*fixture_args(host), "--pm.probes=kernel", "--collector.vulnerabilities"])
    memory = config.snapshot.memory
    assert memory is not None
    exposition = make_exposition(config)
    served = pages(config, exposition)
    one_shot: list[View] = [v for v in VIEWS if v.route is None]
    for _ in range(3):
        exposition.encode()
        exposition.encode(openmetrics=True)
        for _, render in served.values():
            render()
        snapshot = exposition.readings.read(config.collectors, config.snapshot.probes)
        for view in one_shot:
            view.render(shown(config, snapshot, exposition))
    assert memory.replayed > 0
    fresh, _ = read(replace(config.snapshot, memory=None))
    for name, made in memory._made.items():
        if isinstance(name, str):  # a collector's (a shared fact's key is a pair)
            assert made.value == fresh[name][0], name


def test_readings_at_once_share_the_memory_and_the_kept_files() -> None:
    """A scrape and the status page read at once: the remembering readings on three
    threads, over this machine's kept files, fail nothing that one reading alone does
    not, and give the facts that change only with the host (all but the memory figures)
    as one reading alone does."""
    config = parse_config(["--pm.probes=kernel"]).snapshot
    alone, _ = read(replace(config, memory=None))
    errors = {name: error for name, (_, error, _) in alone.items()}
    steady = [name for name in alone if name not in ("readiness", "numa")]  # memory in use moves
    bad: list[str] = []

    def reader() -> None:
        for _ in range(150):
            sections, _ = read(config)
            for name, (data, error, _) in sections.items():
                if error != errors[name]:
                    bad.append(f"{name}: {error}")
                elif name in steady and data != alone[name][0]:
                    bad.append(f"{name}: {data!r}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns as often as they can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        sys.setswitchinterval(switch)
    assert not bad, bad[:5]
    assert config.memory is not None
    assert config.memory.replayed > 300
