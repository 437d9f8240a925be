"""File access under the configured roots (`--path.procfs`, `--path.sysfs`, `--path.rootfs`).

Every read of the host goes through `HostFS`, so a fixture tree can stand in for the
real `/proc` and `/sys`.  The contract readers rely on:

- a file that does not exist returns ``None``: "not present on this host", not an error;
- a file that exists but cannot be read (permission, I/O error) or is not text raises
  `ReadError`: the reader then gives up that fact (`readers.giveup`), or fails its
  collector where the fact is the collector's core;
- trailing NUL bytes are dropped, as util-linux's ``ul_path_read_*`` do (they read a
  C string): older kernels padded some list files (``node/online``, ``nodeN/cpulist``,
  ``cpuN/topology/*_list``) with a NUL after the newline.  A NUL before other text is
  still not text.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, TypeVar, cast

# Missing files and missing parents both mean "absent".
_ABSENT = (errno.ENOENT, errno.ENOTDIR)
# O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused: not a
# regular file); O_NOCTTY: a terminal device never becomes ours.
_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
# A directory is opened only to open files relative to it: O_PATH asks nothing of the
# directory itself (opening a file in it still needs the search permission that the
# whole path would).
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
MAX_FILE = 32 << 20  # room for /proc/cpuinfo of 8,192 CPUs
MAX_SYSFS_FILE = 64 << 10  # a sysfs attribute is one page; the cpulists of 8,192 CPUs fit
_open, _pread, _close, _fstat, _access = os.open, os.pread, os.close, os.fstat, os.access
_S_ISREG = stat.S_ISREG
_CHUNK = 4096  # one page: a sysfs attribute comes whole; longer files loop. (16K buffers cost more.)
R = TypeVar("R")
_UNSIGNED = re.compile(r"[0-9]{1,20}")  # ASCII digits only: str.isdigit() also takes "²"
_SIGNED = re.compile(r"-?[0-9]{1,20}")


class ReadError(Exception):
    """A file is there but its content cannot be had or understood."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


# What a reading asked of the host, one operation at a time (`HostFS.trace`): the kind
# of operation, its whole path and what it gave.  `HostFS.same` asks the same again.
# (A `Dir` found absent is one DIR operation: what is asked in it is absent with it.)
READ, LIST, EXISTS, IS_DIR, LINKS, RESOLVED, DIR = "read", "list", "exists", "is_dir", "links", "resolved", "dir"
CALL = "call"  # a question beyond the files (an ioctl), asked by a reader's own function: `HostFS.ask`
Op = tuple[str, str, object]


@dataclass(frozen=True)
class Failed:
    """An operation's error, as a trace holds it: equal when the same error comes again."""

    kind: str
    message: str

    @classmethod
    def of(cls, err: BaseException) -> Failed:
        return cls(type(err).__name__, str(err))


class HostFS:
    """Reads files of one host, rooted at the configured procfs, sysfs and rootfs."""

    def __init__(self, procfs: str = "/proc", sysfs: str = "/sys", rootfs: str = "/", keep: int = 0) -> None:
        self.procfs = procfs.rstrip("/") or "/"
        self.sysfs = sysfs.rstrip("/") or "/"
        self.rootfs = rootfs.rstrip("/") or "/"
        self._sysfs_prefix = self.sysfs.rstrip("/") + "/"
        self._procfs_prefix = self.procfs.rstrip("/") + "/"
        self._rootfs_prefix = self.rootfs.rstrip("/") + "/"
        # With `keep`, up to that many kernel attribute files stay open between readings
        # and are read again in place (`KeptFiles`); 0 opens every file on every read.
        self.kept = KeptFiles(keep, self._sysfs_prefix, self._procfs_prefix) if keep > 0 else None
        # While a list, every operation on the host below appends what it asked and got
        # (a reading's `facts.ScrapeFacts` records and replays with it: `for_reading`).
        self.trace: list[Op] | None = None
        # One reading's paths found to lead nowhere (a file or directory not there): a
        # collector that asks one again in the same reading, by a replay or a read, is
        # answered from here (`for_reading`; never beyond the reading).
        self._absent: set[str] | None = None
        # The roots that are the kernel's own sysfs and procfs mounts: a path under them
        # that leads nowhere is found so by `access` (`_nowhere`); under any other root
        # (a fixture tree, a capture, --path.rootfs) by the open that fails.
        self._kernel_roots = _kernel_roots((self._sysfs_prefix, self._procfs_prefix))

    def for_reading(self) -> HostFS:
        """This host's files for one reading: the same roots and kept files, a trace of
        its own, and its own set of the paths found to lead nowhere (asked once a
        reading)."""
        fs = HostFS.__new__(HostFS)
        fs.__dict__.update(self.__dict__)
        fs.trace = None
        fs._absent = set()
        return fs

    def same(self, op: str, asked: Sequence[tuple[str, object]]) -> bool:
        """Whether the host answers each `op` on each path of `asked` as it did (the
        paths with their answers, in order), up to the first that differs: runs of
        reads by `read_same`, any other kind as it was asked (its error as `Failed`)."""
        if op == READ:
            return self.read_same(asked)
        if op == CALL:  # each answer recorded with the function that asked it
            calls = cast("Sequence[tuple[str, tuple[Callable[[str], object], object]]]", asked)
            return all(question(arg) == was for arg, (question, was) in calls)
        redo = _REDO[op]
        for path, was in asked:
            try:
                now = redo(self, path)
            except ReadError as err:
                now = Failed.of(err)
            if now != was:
                return False
        return True

    def read_same(self, reads: Sequence[tuple[str, object]]) -> bool:
        """Whether every file of `reads` reads now what it read then (its bytes, or
        ``None`` where absent), asked in order, up to the first that does not: what
        `read_bytes` would answer, compared in one loop.  A kept file is read in place;
        another is opened, read and closed.  A file that answered bytes is not
        fstat'ed first: whatever else than a regular file now stands at its path
        cannot read the same non-empty bytes (a FIFO, socket or directory fails the
        read, a device gives a whole page or nothing), and is then asked through
        `read_bytes`, which refuses it as always; so is every case this loop cannot
        settle (an error, a kept file gone, a seq file read short).  A file that was
        absent is still absent when the path still leads nowhere (`_nowhere` on the
        kernel's file systems, `_still_absent` elsewhere), or when it was found so
        earlier in the same reading."""
        kept = self.kept
        sysfs = self._sysfs_prefix
        absent = self._absent
        kernel = self._kernel_roots
        for path, was in reads:
            same = None
            if type(was) is bytes:
                one = path.startswith(sysfs)  # a sysfs attribute comes whole in one read
                if kept is not None and path in kept:
                    same = kept.reads(path, was, one)
                elif was:
                    same = _file_reads(path, was, one)
            elif was is None:
                if absent is not None and path in absent:
                    continue
                same = _nowhere(path) if path.startswith(kernel) else _still_absent(path)
                if same and absent is not None:
                    absent.add(path)
            if same is None:
                try:
                    same = self.read_bytes(path) == was
                except ReadError as err:
                    same = Failed.of(err) == was
            if not same:
                return False
        return True

    def close(self) -> None:
        """Close the files kept open (they are also closed when this is collected)."""
        if self.kept is not None:
            self.kept.close()

    # The parts are relative names (ours, or entries of a directory listing): joined
    # with "/" under the root, as os.path.join would, at a third of its cost (a scrape
    # joins ~40 paths).

    def proc(self, *parts: str) -> str:
        return self._procfs_prefix + "/".join(parts) if parts else self.procfs

    def sys(self, *parts: str) -> str:
        return self._sysfs_prefix + "/".join(parts) if parts else self.sysfs

    def root(self, *parts: str) -> str:
        return self._rootfs_prefix + "/".join(parts) if parts else self.rootfs

    @staticmethod
    def where(path: str) -> str:
        """The path as errors name it (`Dir.where` completes a name in a directory)."""
        return path

    def read(self, path: str, errors: str = "strict") -> str | None:
        """The text of `path`, or ``None`` when it does not exist.  Trailing NULs are
        dropped; any other NUL byte raises `ReadError`: sysfs and procfs write text;
        so do bytes that are not UTF-8, unless `errors` is "replace" (for /proc/cpuinfo,
        where one odd byte in a model name must not cost the whole collector)."""
        return _text(self.read_bytes(path), "", path, errors)

    def read_bytes(self, path: str) -> bytes | None:
        """The bytes of `path` (the device tree's properties are binary), or ``None``
        when it does not exist."""
        sysfs = path.startswith(self._sysfs_prefix)
        kept = self.kept
        absent = self._absent
        try:
            data = None if kept is None else kept.read(path, sysfs)
            if data is None and (absent is None or path not in absent):
                data = _read_bytes(path, None, "", sysfs, kept)
                if data is None and absent is not None:
                    absent.add(path)
        except ReadError as err:
            if self.trace is not None:
                self.trace.append((READ, path, Failed.of(err)))
            raise
        if self.trace is not None:
            self.trace.append((READ, path, data))
        return data

    def read_int(self, path: str, *, signed: bool = False) -> int | None:
        """The one decimal integer in `path` (a sysfs attribute such as ``1800000\\n``),
        or ``None`` when the file does not exist; absent is never 0.

        Anything else (empty, words, a sign where none belongs, more than 20 digits)
        raises `ReadError` naming the file.
        """
        return _int(self.read(path), "", path, signed)

    def running_machine(self) -> str | None:
        """``uname -m`` of the running kernel when the configured procfs is that
        kernel's (the host's own /proc, or the host's /proc mounted into a container),
        else ``None``: a captured or fixture tree says nothing of the running kernel."""
        try:
            release = self.read(self.proc("sys", "kernel", "osrelease"))
        except ReadError:
            return None
        uname = os.uname()
        return uname.machine if release is not None and release.strip() == uname.release else None

    def directory(self, path: str) -> Dir:
        """`path` opened for reading files in it by their names; use it in a ``with``
        block, which closes it."""
        return Dir(path, path.startswith(self._sysfs_prefix) or path == self.sysfs, self.kept, self)

    def ask(self, question: Callable[[str], R], arg: str) -> R:
        """``question(arg)``: what the host says beyond its files (a network device's
        Wake-on-LAN, by ioctl), asked through here so that a trace holds it as it holds
        every file read: `question` is a function of `arg` and the host alone, and
        answers its errors rather than raising them."""
        answer = question(arg)
        if self.trace is not None:
            self.trace.append((CALL, arg, (question, answer)))
        return answer

    def exists(self, path: str) -> bool:
        """Whether `path` leads somewhere (links followed), as `os.path.exists` says
        (under the kernel's sysfs and procfs, asked without an error raised where it
        does not: `_nowhere`)."""
        there = not _nowhere(path) if path.startswith(self._kernel_roots) else os.path.exists(path)
        if self.trace is not None:
            self.trace.append((EXISTS, path, there))
        return there

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a directory (or a link to one)."""
        found = os.path.isdir(path)
        if self.trace is not None:
            self.trace.append((IS_DIR, path, found))
        return found

    def resolved_name(self, path: str) -> str:
        """The last component of `path` with every symlink followed (`_resolved_name`)."""
        name = _resolved_name(path)
        if self.trace is not None:
            self.trace.append((RESOLVED, path, name))
        return name

    def listdir(self, path: str) -> list[str] | None:
        """Sorted entries of a directory, or ``None`` when it does not exist."""
        try:
            entries = sorted(os.listdir(path))
        except OSError as err:
            if err.errno not in _ABSENT:
                error = ReadError(f"{path}: {err.strerror or err}")
                if self.trace is not None:
                    self.trace.append((LIST, path, Failed.of(error)))
                raise error from None
            entries = None
        if self.trace is not None:
            self.trace.append((LIST, path, None if entries is None else list(entries)))
        return entries


# How each kind of question but a file read (`HostFS.read_same`) is asked again.
_REDO: dict[str, Callable[[HostFS, str], object]] = {
    LIST: HostFS.listdir,
    EXISTS: HostFS.exists,
    IS_DIR: HostFS.is_dir,
    LINKS: lambda _, path: _links(path),
    RESOLVED: HostFS.resolved_name,
    DIR: lambda fs, path: _dir_absent(path, fs._absent, path.startswith(fs._kernel_roots)),
}


def _resolved_name(path: str) -> str:
    """The last component of `path` with every symlink followed (sysfs links a device to
    its subsystem: the name of that): ``basename(realpath(path))``, in one readlink and
    one lstat where `path` links to a name that is no link itself, as sysfs's links do
    (`os.path.realpath` costs an lstat per component of every path it walks, ~0.1 ms on
    sysfs)."""
    try:
        target = os.readlink(path)
    except OSError:
        return os.path.basename(os.path.realpath(path))
    name = os.path.basename(target)
    if name in ("", ".", "..") or os.path.islink(os.path.join(os.path.dirname(path), target)):
        return os.path.basename(os.path.realpath(path))
    return name


def _dir_absent(path: str, absent: set[str] | None = None, kernel: bool = False) -> bool:
    """Whether the directory `path` is absent, as `Dir` finds it.  A path in `absent`
    (a reading's paths that lead nowhere) is not asked; one found to lead nowhere
    (on the kernel's file systems by `_nowhere`) is added to it: not one that is there
    but no directory."""
    if absent is not None and path in absent:
        return True
    if kernel and _nowhere(path):
        if absent is not None:
            absent.add(path)
        return True
    try:
        _close(_open(path, _DIR_FLAGS))
    except OSError as err:
        if err.errno == errno.ENOENT and absent is not None:
            absent.add(path)
        return err.errno in _ABSENT
    return False


def _links(path: str) -> int | None:
    """The link count of `path`, or ``None`` when it cannot be had."""
    try:
        return os.stat(path).st_nlink
    except OSError:
        return None


class Dir:
    """A directory under the roots: the files in it are opened by name relative to it
    (``os.open(name, dir_fd=...)``, the directory opened ``O_PATH`` on the first file
    that needs opening), so the kernel walks the directory's path once, not once per
    file.  Names may have several components (``cpu3/topology/core_cpus_list``).

    A directory that does not exist (or is not one) makes every file in it absent.  One
    that cannot be opened otherwise (permission, a symlink loop) fails each read in it,
    naming the file, as opening the file by its whole path would have.  The same rules
    as `HostFS` apply to every file: regular files only, opened non-blocking, the size
    caps, errors naming the file, the files kept open (`KeptFiles`) read in place.
    """

    __slots__ = ("_error", "_fd", "_fs", "_kept", "_opened", "_prefix", "_sysfs", "path")

    def __init__(self, path: str, sysfs: bool, kept: KeptFiles | None = None, fs: HostFS | None = None) -> None:
        self.path = path
        self._prefix = path.rstrip("/") + "/"
        self._sysfs = sysfs
        self._kept = kept
        self._fs = fs  # whose trace records what is read here
        self._fd: int | None = None
        self._error: OSError | None = None
        self._opened = False

    def _open(self) -> int | None:
        """The directory's descriptor, opened on first need; None when it cannot be."""
        if not self._opened:
            self._opened = True
            fs = self._fs
            absent = None if fs is None else fs._absent
            gone = absent is not None and self.path in absent  # found so earlier in this reading
            if not gone:
                try:
                    self._fd = _open(self.path, _DIR_FLAGS)
                except OSError as err:
                    if err.errno not in _ABSENT:
                        self._error = err
                        return None
                    gone = True
                    if absent is not None and err.errno == errno.ENOENT:  # not ENOTDIR: a file may be there
                        absent.add(self.path)
            if gone and fs is not None and fs.trace is not None:
                fs.trace.append((DIR, self.path, True))  # and nothing asked in it
        return self._fd

    def __enter__(self) -> Dir:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            _close(self._fd)
            self._fd = None

    @property
    def absent(self) -> bool:
        """Whether the directory is not there (or is not a directory)."""
        return self._open() is None and self._error is None

    def where(self, name: str) -> str:
        """The whole path of `name`, as errors name it."""
        return self._prefix + name

    def read_bytes(self, name: str) -> bytes | None:
        """As `HostFS.read_bytes`, for the file `name` in this directory."""
        try:
            kept = self._kept
            if kept is None or (data := kept.read(self._prefix + name, self._sysfs)) is None:
                fd = self._fd if self._opened else self._open()
                if fd is None:
                    self._refuse(name)  # raises, unless the directory is absent: so is the file
                    return None
                data = _read_bytes(name, fd, self._prefix, self._sysfs, kept)
        except ReadError as err:
            self._record(name, Failed.of(err))
            raise
        return self._record(name, data)

    def read(self, name: str, errors: str = "strict") -> str | None:
        """As `HostFS.read`, for the file `name` in this directory."""
        return _text(self.read_bytes(name), self._prefix, name, errors)

    def read_int(self, name: str, *, signed: bool = False) -> int | None:
        """As `HostFS.read_int`, for the file `name` in this directory."""
        return _int(self.read(name), self._prefix, name, signed)

    def exists(self, name: str) -> bool:
        """Whether `name` is there in this directory (one stat relative to it)."""
        fd = self._open()
        if fd is None:
            return self._record(name, False, EXISTS)
        there = True
        try:
            os.stat(name, dir_fd=fd)
        except OSError:
            there = False
        return self._record(name, there, EXISTS)

    def is_dir(self, name: str) -> bool:
        """Whether `name` in this directory is a directory (or a link to one)."""
        fd = self._open()
        found = False
        if fd is not None:
            with contextlib.suppress(OSError):
                found = stat.S_ISDIR(os.stat(name, dir_fd=fd).st_mode)
        return self._record(name, found, IS_DIR)

    def links(self, name: str) -> int | None:
        """The link count of `name` in this directory (one stat relative to it; a
        directory's is 2 + its subdirectories on sysfs), or ``None`` when it cannot be
        had."""
        fd = self._open()
        count = None
        if fd is not None:
            with contextlib.suppress(OSError):
                count = os.stat(name, dir_fd=fd).st_nlink
        return self._record(name, count, LINKS)

    def _record(self, name: str, result: R, op: str = READ) -> R:
        """`result` of `op` on `name`, recorded in the trace, if one is kept; in an absent
        directory nothing is (its DIR operation stands for all)."""
        fs = self._fs
        if fs is not None and fs.trace is not None and not (self._opened and self._fd is None and self._error is None):
            fs.trace.append((op, self._prefix + name, result))
        return result

    def _refuse(self, name: str) -> None:
        """A file in a directory that could not be opened fails as opening it by its
        whole path would have (it is absent with an absent directory)."""
        err = self._error
        if err is not None:
            raise ReadError(f"{self._prefix}{name}: {err.strerror or err}", err.errno)


# The kernel file systems whose attribute files are made afresh by every read at
# offset 0 (sysfs's show methods, procfs's seq_file and sysctl handlers).
_KERNEL_FS = (b"sysfs", b"proc")
# Trees of sysfs (relative to its root) whose node names the kernel never changes and
# whose links never point elsewhere while their target lives: a file kept open there is
# the file its path names for as long as it reads (a removed node reads ENODEV).  Not
# class/, bus/ or the rest of devices/: a network device is renamed in place, and its
# old descriptor would read the device that now has another name.
_FIXED_SYSFS = ("power/", "devices/system/", "firmware/", "module/", "hypervisor/", "kernel/")
# procfs directories whose files belong to a process or a network namespace: not kept.
_MOVING_PROC = frozenset({"self", "thread-self", "net"})


class KeptFiles:
    """Kernel attribute files kept open between readings, up to `cap`, each read again
    in place with ``pread(fd, n, 0)``: the kernel makes the content afresh on every read
    from offset 0, so every reading still reads the host; what is saved is the open,
    fstat and close (three system calls of four per file, and the path walk).

    A file is kept only when it is a regular file on a sysfs or procfs mount (by its
    device number in /proc/self/mountinfo: never a fixture tree's or a --path.rootfs
    file, which may be replaced by a rename) and under a tree whose names cannot move
    (`_FIXED_SYSFS`, procfs outside the per-process and per-namespace directories).
    A kept file whose read fails (ENODEV: its node was removed) is closed and opened
    again by its path, which then finds it absent or its new node.  A file being read
    is taken out of the table, so two readings never share an offset; the other one
    opens its own.  Each kept descriptor holds about 4 KiB of kernel memory (its
    seq_file buffer)."""

    __slots__ = ("__weakref__", "_devices", "_fds", "_fixed", "_proc", "_sys", "cap")

    def __init__(self, cap: int, sysfs_prefix: str, procfs_prefix: str, fixed: tuple[str, ...] = _FIXED_SYSFS) -> None:
        self.cap = cap
        self._fixed = fixed  # the sysfs trees files are kept under (the tests show what any other risks)
        self._sys = sysfs_prefix
        self._proc = procfs_prefix
        self._fds: dict[str, int] = {}
        self._devices: dict[int, bool] = {}  # device number -> a sysfs or procfs mount?
        weakref.finalize(self, _close_all, self._fds)

    def __len__(self) -> int:
        return len(self._fds)

    def __contains__(self, path: str) -> bool:
        return path in self._fds

    def read(self, path: str, sysfs: bool) -> bytes | None:
        """The bytes of the kept file `path`, or ``None`` when it is not kept (or its
        descriptor no longer reads: it is then closed, for the caller to open `path`)."""
        fd = self._fds.pop(path, None)
        if fd is None:
            return None
        try:
            data = _pread_all(fd, sysfs, "", path)
        except (OSError, ReadError):
            _close(fd)
            return None
        self.give(path, fd)
        return data

    def reads(self, path: str, was: bytes, one: bool) -> bool | None:
        """Whether the kept file `path` reads `was` (`_reads`); ``None`` when that cannot
        be told in place (its descriptor is then closed) or another reading holds it
        now: the caller opens `path`."""
        fds = self._fds
        fd = fds.pop(path, None)
        if fd is None:
            return None
        same = _reads(fd, was, one)
        # kept again as `give` keeps it (written out: this runs for every kept file of a replay)
        if same is None or len(fds) >= self.cap or fds.setdefault(path, fd) != fd:
            _close(fd)
        return same

    def give(self, path: str, fd: int) -> None:
        """Keep `fd`, open on `path`, if there is room (and no other is kept for it)."""
        fds = self._fds
        if len(fds) >= self.cap or fds.setdefault(path, fd) != fd:
            _close(fd)

    def keeps(self, path: str, device: int) -> bool:
        """Whether the regular file `path`, on `device`, may be kept open."""
        kernel = self._devices.get(device)
        if kernel is None:  # a mount not seen yet: read the mount table again
            self._devices.update(_kernel_devices())
            kernel = self._devices.setdefault(device, False)
        if not kernel or len(self._fds) >= self.cap:  # a fixture tree's file costs one lookup
            return False
        if path.startswith(self._sys):
            return path.startswith(self._fixed, len(self._sys))
        if path.startswith(self._proc):
            first = path[len(self._proc) :].partition("/")[0]
            return first not in _MOVING_PROC and not first.isdigit()
        return False

    def kept(self, path: str) -> int | None:
        """The descriptor kept for `path`, if any."""
        return self._fds.get(path)

    def paths(self) -> list[str]:
        """The paths kept open now."""
        return list(self._fds)

    def close(self) -> None:
        _close_all(self._fds)


def _kernel_devices() -> dict[int, bool]:
    """Each mount's device number -> whether it is sysfs or procfs, from this process's
    /proc/self/mountinfo (empty when it cannot be read: then nothing is kept)."""
    try:
        with open("/proc/self/mountinfo", "rb") as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        return {}
    devices: dict[int, bool] = {}
    for line in lines:
        fields = line.split(b" ")
        try:  # field 3 is major:minor; the file system type follows the " - " separator
            major, minor = fields[2].split(b":")
            fstype = fields[fields.index(b"-", 6) + 1]
            device = os.makedev(int(major), int(minor))
        except (ValueError, IndexError):
            continue
        devices[device] = devices.get(device, False) or fstype in _KERNEL_FS
    return devices


def _close_all(fds: dict[str, int]) -> None:
    while fds:
        with contextlib.suppress(KeyError, OSError):  # KeyError: emptied meanwhile
            _close(fds.popitem()[1])


def _pread_all(fd: int, sysfs: bool, prefix: str, path: str) -> bytes:
    """The whole content of the open file `fd` (`prefix` + `path`), read from offset 0.
    A sysfs attribute comes whole in one read of a page, so a short read under the
    sysfs root is the end; anything else (procfs's seq files stop short at record
    boundaries) is read until the kernel says end of file, within the size caps."""
    data = _pread(fd, _CHUNK, 0)
    if len(data) < _CHUNK and (sysfs or not data):
        return data
    chunks = [data]
    size = len(data)
    cap = MAX_SYSFS_FILE if sysfs else MAX_FILE
    while chunk := _pread(fd, 1 << 16, size):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise ReadError(f"{prefix}{path}: larger than {cap >> 10} KiB: not a kernel file")
    return b"".join(chunks)


def _reads(fd: int, was: bytes, one: bool) -> bool | None:
    """Whether the open file `fd` reads `was`, as `_pread_all` reads it (`one`: a sysfs
    attribute, whole in one read); ``None`` when one or two reads cannot tell."""
    try:
        if one and len(was) < _CHUNK:  # a byte more than it was: a longer content fills it
            return _pread(fd, len(was) + 1, 0) == was
        if len(was) < _CHUNK:
            data = _pread(fd, _CHUNK, 0)
            if len(data) >= _CHUNK:
                return None
            # a seq file may stop short of a record that did not fit: the end is where
            # a read gives nothing
            return data == was if data and not _pread(fd, _CHUNK, len(data)) else None
        if _pread(fd, len(was) + 1, 0) != was:
            return None  # changed, or a seq file stopping short at a record: read it whole
        return not _pread(fd, _CHUNK, len(was))  # and nothing after it
    except OSError:
        return None


def _still_absent(path: str) -> bool | None:
    """Whether `path`, absent before, is absent still (`False`: something is there);
    ``None`` when opening it fails otherwise (a symlink loop, a directory on the way
    that refuses search: an error to report, not an absence)."""
    try:
        _close(_open(path, _FLAGS))
    except OSError as err:
        return True if err.errno in _ABSENT else None
    return False


def _nowhere(path: str) -> bool:
    """Whether `path`, on the kernel's sysfs or procfs, leads nowhere: `_still_absent`
    asked by ``access(F_OK)``, which raises nothing (an ``open`` that fails costs
    Python an error, twice the kernel's lookup; most of a replay's questions of a
    host at rest are of this kind).  ``access`` also fails on a symlink loop and where
    a directory on the way refuses search, which neither file system has: every one
    of their directories lets every user search it, and their links never loop (so
    neither user nor capabilities change the answer)."""
    return not _access(path, os.F_OK)


def _kernel_roots(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """The prefixes (a root and its "/") whose root is a sysfs or procfs mount."""
    kernel: dict[int, bool] | None = None
    roots = []
    for prefix in prefixes:
        try:
            device = os.stat(prefix).st_dev
        except OSError:
            continue
        if kernel is None:
            kernel = _kernel_devices()
        if kernel.get(device):
            roots.append(prefix)
    return tuple(roots)


def _file_reads(path: str, was: bytes, one: bool) -> bool | None:
    """`_reads` of the file `path` opened afresh (``None`` where it cannot be opened)."""
    try:
        fd = _open(path, _FLAGS)
    except OSError:
        return None
    try:
        return _reads(fd, was, one)
    finally:
        _close(fd)


def _read_bytes(path: str, dir_fd: int | None, prefix: str, sysfs: bool, kept: KeptFiles | None = None) -> bytes | None:
    """The bytes of `path` (relative to `dir_fd` when given; `prefix` then completes
    the name in errors), ``None`` when absent; with `kept`, a file that may stay open
    is read in place and kept.

    Uses `os.open` and `os.pread` (half the cost of `open().read()` on sysfs's small
    files; this is the hot path of a big host's scrape), by `_pread_all`'s rules.
    """
    try:
        fd = _open(path, _FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in _ABSENT:
            return None
        raise ReadError(f"{prefix}{path}: {err.strerror or err}", err.errno) from None
    try:
        status = _fstat(fd)
        if not _S_ISREG(status.st_mode):  # a FIFO, a device, a directory
            raise ReadError(f"{prefix}{path}: not a regular file")
        data = _pread_all(fd, sysfs, prefix, path)
        if kept is not None and kept.keeps(prefix + path, status.st_dev):
            kept.give(prefix + path, fd)
            fd = -1
    except OSError as err:
        raise ReadError(f"{prefix}{path}: {err.strerror or err}", err.errno) from None
    finally:
        if fd >= 0:
            _close(fd)
    return data


def _text(data: bytes | None, prefix: str, path: str, errors: str) -> str | None:
    """`data` of the file `prefix` + `path` as text, without trailing NUL bytes (the
    padding older kernels wrote after the newline).  Any other NUL byte raises
    `ReadError`: sysfs and procfs write text; so do bytes that are not UTF-8, unless
    `errors` is "replace"."""
    if data is None:
        return None
    if data.endswith(b"\x00"):
        data = data.rstrip(b"\x00")
    if b"\x00" in data:
        raise ReadError(f"{prefix}{path}: not text (NUL byte)")
    try:
        return data.decode(errors=errors)
    except UnicodeDecodeError:
        raise ReadError(f"{prefix}{path}: not text") from None


def _int(text: str | None, prefix: str, path: str, signed: bool) -> int | None:
    """The one decimal integer of `text`, the content of `prefix` + `path`."""
    if text is None:
        return None
    value = text.strip()
    if not signed and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)  # the plain case of the pattern below, without the regex
    if not (_SIGNED if signed else _UNSIGNED).fullmatch(value):
        raise ReadError(f"{prefix}{path}: not {'an' if signed else 'a non-negative'} integer: {value[:40]!r}")
    return int(value)
