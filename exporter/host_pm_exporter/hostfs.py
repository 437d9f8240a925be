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

import errno
import os
import re
import stat

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
_open, _read, _close, _fstat = os.open, os.read, os.close, os.fstat
_S_ISREG = stat.S_ISREG
_CHUNK = 4096  # one page: a sysfs attribute comes whole; longer files loop. (16K buffers cost more.)
_UNSIGNED = re.compile(r"[0-9]{1,20}")  # ASCII digits only: str.isdigit() also takes "²"
_SIGNED = re.compile(r"-?[0-9]{1,20}")


class ReadError(Exception):
    """A file is there but its content cannot be had or understood."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class HostFS:
    """Reads files of one host, rooted at the configured procfs, sysfs and rootfs."""

    def __init__(self, procfs: str = "/proc", sysfs: str = "/sys", rootfs: str = "/") -> None:
        self.procfs = procfs.rstrip("/") or "/"
        self.sysfs = sysfs.rstrip("/") or "/"
        self.rootfs = rootfs.rstrip("/") or "/"
        self._sysfs_prefix = self.sysfs.rstrip("/") + "/"
        self._procfs_prefix = self.procfs.rstrip("/") + "/"
        self._rootfs_prefix = self.rootfs.rstrip("/") + "/"

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
        data = _read_bytes(path, None, "", path.startswith(self._sysfs_prefix))
        if data is None or b"\x00" in data:
            return _text(data, "", path, errors)
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError:
            raise ReadError(f"{path}: not text") from None

    def read_bytes(self, path: str) -> bytes | None:
        """The bytes of `path` (the device tree's properties are binary), or ``None``
        when it does not exist."""
        return _read_bytes(path, None, "", path.startswith(self._sysfs_prefix))

    def read_int(self, path: str, *, signed: bool = False) -> int | None:
        """The one decimal integer in `path` (a sysfs attribute such as ``1800000\\n``),
        or ``None`` when the file does not exist; absent is never 0.

        Anything else (empty, words, a sign where none belongs, more than 20 digits)
        raises `ReadError` naming the file.
        """
        text = self.read(path)
        if text is not None and not signed:
            value = text.strip()
            if value.isascii() and value.isdigit() and len(value) <= 20:
                return int(value)
        return _int(text, "", path, signed)

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
        return Dir(path, path.startswith(self._sysfs_prefix) or path == self.sysfs)

    @staticmethod
    def exists(path: str) -> bool:
        return os.path.exists(path)

    @staticmethod
    def resolved_name(path: str) -> str:
        """The last component of `path` with every symlink followed (sysfs links a
        device to its subsystem: the name of that): ``basename(realpath(path))``, in
        one readlink and one lstat where `path` links to a name that is no link
        itself, as sysfs's links do (`os.path.realpath` costs an lstat per component
        of every path it walks, ~0.1 ms on sysfs)."""
        try:
            target = os.readlink(path)
        except OSError:
            return os.path.basename(os.path.realpath(path))
        name = os.path.basename(target)
        if name in ("", ".", "..") or os.path.islink(os.path.join(os.path.dirname(path), target)):
            return os.path.basename(os.path.realpath(path))
        return name

    @staticmethod
    def listdir(path: str) -> list[str] | None:
        """Sorted entries of a directory, or ``None`` when it does not exist."""
        try:
            return sorted(os.listdir(path))
        except OSError as err:
            if err.errno in _ABSENT:
                return None
            raise ReadError(f"{path}: {err.strerror or err}") from None


class Dir:
    """A directory under the roots, opened once (``O_PATH``): the files in it are opened
    by name relative to it (``os.open(name, dir_fd=...)``), so the kernel walks the
    directory's path once, not once per file.  Names may have several components
    (``cpu3/topology/core_cpus_list``).

    A directory that does not exist (or is not one) makes every file in it absent
    without a system call.  One that cannot be opened otherwise (permission, a symlink
    loop) fails each read in it, naming the file, as opening the file by its whole path
    would have.  The same rules as `HostFS` apply to every file: regular files only,
    opened non-blocking, the size caps, errors naming the file.
    """

    __slots__ = ("_error", "_fd", "_prefix", "_sysfs", "path")

    def __init__(self, path: str, sysfs: bool) -> None:
        self.path = path
        self._prefix = path.rstrip("/") + "/"
        self._sysfs = sysfs
        self._fd: int | None = None
        self._error: OSError | None = None
        try:
            self._fd = _open(path, _DIR_FLAGS)
        except OSError as err:
            if err.errno not in _ABSENT:
                self._error = err

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
        """Whether the directory is not there (or is not a directory): what its opening
        said, no system call more."""
        return self._fd is None and self._error is None

    def where(self, name: str) -> str:
        """The whole path of `name`, as errors name it."""
        return self._prefix + name

    def read_bytes(self, name: str) -> bytes | None:
        """As `HostFS.read_bytes`, for the file `name` in this directory."""
        if self._fd is None:
            self._refuse(name)
            return None
        return _read_bytes(name, self._fd, self._prefix, self._sysfs)

    def read(self, name: str, errors: str = "strict") -> str | None:
        """As `HostFS.read`, for the file `name` in this directory."""
        # The hot path of a big host's scrape (a 1,024-CPU host reads ~8,000 files
        # here): one call down to the system calls, the plain case decoded in line.
        fd = self._fd
        if fd is None:
            self._refuse(name)
            return None
        data = _read_bytes(name, fd, self._prefix, self._sysfs)
        if data is None or b"\x00" in data:
            return _text(data, self._prefix, name, errors)
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError:
            raise ReadError(f"{self._prefix}{name}: not text") from None

    def read_int(self, name: str, *, signed: bool = False) -> int | None:
        """As `HostFS.read_int`, for the file `name` in this directory."""
        text = self.read(name)
        if text is not None and not signed:
            value = text.strip()
            # The plain case of `_int`'s pattern: ASCII digits only, at most 20.
            if value.isascii() and value.isdigit() and len(value) <= 20:
                return int(value)
        return _int(text, self._prefix, name, signed)

    def exists(self, name: str) -> bool:
        """Whether `name` is there in this directory (one stat relative to it)."""
        if self._fd is None:
            return False
        try:
            os.stat(name, dir_fd=self._fd)
        except OSError:
            return False
        return True

    def links(self, name: str) -> int | None:
        """The link count of `name` in this directory (one stat relative to it; a
        directory's is 2 + its subdirectories on sysfs), or ``None`` when it cannot be
        had."""
        if self._fd is None:
            return None
        try:
            return os.stat(name, dir_fd=self._fd).st_nlink
        except OSError:
            return None

    def _refuse(self, name: str) -> None:
        """A file in a directory that could not be opened fails as opening it by its
        whole path would have (it is absent with an absent directory)."""
        if self._error is not None:
            err = self._error
            raise ReadError(f"{self._prefix}{name}: {err.strerror or err}", err.errno)


def _read_bytes(path: str, dir_fd: int | None, prefix: str, sysfs: bool) -> bytes | None:
    """The bytes of `path` (relative to `dir_fd` when given; `prefix` then completes
    the name in errors), ``None`` when absent.

    Uses `os.open`/`os.read` (half the cost of `open().read()` on sysfs's small
    files; this is the hot path of a big host's scrape).  A sysfs attribute comes
    whole in one read of a page, so a short read under the sysfs root is the end;
    anything else (procfs's seq files stop short at record boundaries) is read
    until the kernel says end of file.
    """
    try:
        fd = _open(path, _FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in _ABSENT:
            return None
        raise ReadError(f"{prefix}{path}: {err.strerror or err}", err.errno) from None
    try:
        if not _S_ISREG(_fstat(fd).st_mode):  # a FIFO, a device, a directory
            raise ReadError(f"{prefix}{path}: not a regular file")
        data = _read(fd, _CHUNK)
        if len(data) == _CHUNK or (data and not sysfs):
            chunks = [data]
            size = len(data)
            cap = MAX_SYSFS_FILE if sysfs else MAX_FILE
            while chunk := _read(fd, 1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    raise ReadError(f"{prefix}{path}: larger than {cap >> 10} KiB: not a kernel file")
            data = b"".join(chunks)
    except OSError as err:
        raise ReadError(f"{prefix}{path}: {err.strerror or err}", err.errno) from None
    finally:
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
    if not (_SIGNED if signed else _UNSIGNED).fullmatch(value):
        raise ReadError(f"{prefix}{path}: not {'an' if signed else 'a non-negative'} integer: {value[:40]!r}")
    return int(value)
