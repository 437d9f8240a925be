"""Readers: pure parsers of one file's text, and the functions that fetch that text
through `HostFS` and build the facts a collector needs.  Nothing here imports
prometheus_client."""

from __future__ import annotations

from typing import Callable, TypeVar

from host_pm_exporter.hostfs import Dir, HostFS

T = TypeVar("T")


class ParseError(ValueError):
    """A file's text is not what the kernel writes there."""


def parse_file(path: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``, where `text` is the content of `path`: a `ParseError` then
    names the file."""
    try:
        return parse(text)
    except ParseError as err:
        raise ParseError(f"{path}: {err}") from None


def read_word(fs: HostFS | Dir, path: str) -> str | None:
    """The file's text without surrounding white space; ``None`` when absent or empty.
    `path` is a whole path for a `HostFS`, a name in the directory for a `Dir`."""
    text = fs.read(path)
    return text.strip() or None if text is not None else None


def read_parsed(fs: HostFS | Dir, path: str, parse: Callable[[str], T]) -> T | None:
    """`path` read and parsed; ``None`` when the file is absent.  A parse error names
    the file."""
    text = fs.read(path)
    if text is None:
        return None
    try:
        return parse(text)
    except ParseError as err:
        raise ParseError(f"{fs.where(path)}: {err}") from None
