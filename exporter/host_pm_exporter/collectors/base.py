"""What a collector is: its registration (name, help, default, its own flags), how it
gathers its facts from a scrape's shared facts, its metric families and the names of
the metrics it may emit.  Each collector is one module of this package."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Callable, Generic, TypeVar, cast

from host_pm_exporter.facts import HostSnapshot, ScrapeFacts, Section
from host_pm_exporter.families import Family

T = TypeVar("T")

AddFlags = Callable[[Callable[..., Any]], None]  # given the parser's add_argument


@dataclass(frozen=True)
class Collector(Generic[T]):
    """One collector.  T, the facts it carries, is solved from `gather` and `families`
    together, so mypy checks that what `gather` returns is what `families` takes.
    `metrics` are the sample names it may emit (a test renders every fixture host and
    holds each collector to its list).

    A collector with flags of its own (``--collector.<name>.<flag>``) adds them with
    `flags` and, once they are parsed, `configure` gives the `families` they shape."""

    name: str
    help: str
    gather: Callable[[ScrapeFacts], T]
    families: Callable[[T], Iterable[Family]]
    metrics: tuple[str, ...]
    default: bool = True
    flags: AddFlags | None = None
    configure: Callable[[argparse.Namespace], Callable[[T], Iterable[Family]]] | None = None
    # `gather` asks the host only through `HostFS` and the shared facts, so its facts
    # may be taken again while those answer the same (`replay`)
    remembered: bool = True

    def with_flags(self, args: argparse.Namespace) -> Collector[T]:
        """This collector shaped by its own parsed flags."""
        return self if self.configure is None else replace(self, families=self.configure(args))

    def of(self, snapshot: HostSnapshot) -> T | None:
        """This collector's facts in `snapshot`; ``None`` when it was not read, failed,
        or found nothing."""
        section = snapshot.sections.get(self.name)
        return cast(T, section.data) if section is not None and section.ok else None

    def render_section(self, section: Section[Any]) -> Iterable[Family]:
        """The families of this collector's section, which this same collector gathered
        (rendering asks only for sections that succeeded)."""
        return self.families(cast(T, section.data))
