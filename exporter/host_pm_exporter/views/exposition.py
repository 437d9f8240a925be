"""What the metrics path serves: the exporter's own process metrics, then one fresh
reading of the host rendered by each enabled collector, the probes and the exporter's
per-collector health.

A ``?name[]=`` filter is honoured before the host is read, not only after: a
collector none of whose metrics is asked for is not read, and the probes do not run
unless a probe metric is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from host_pm_exporter import __version__
from host_pm_exporter.facts import Gatherer, HostSnapshot, Section
from host_pm_exporter.families import PLAIN_ESCAPING, AnyFamily, Family, Gauge, Info, encode, encode_text
from host_pm_exporter.reading import Reading
from host_pm_exporter.views import probes

log = logging.getLogger("host_pm_exporter.views")

EXPORTER_METRICS = (
    "host_exporter_collector_success",
    "host_exporter_collector_duration_seconds",
    "host_exporter_build_info",
    "host_exporter_facts_given_up",
)
# Metrics about every collector: asking for one of them reads them all.
PER_COLLECTOR = frozenset(EXPORTER_METRICS) - {"host_exporter_build_info"}


class SectionRenderer(Protocol):
    """What rendering needs of a collector: its name, the metrics it may emit and how
    it renders its section."""

    @property
    def name(self) -> str: ...

    @property
    def metrics(self) -> tuple[str, ...]: ...

    def render_section(self, section: Section[Any]) -> Iterable[Family]: ...


class Reader(Protocol):
    """Where readings of the host come from (`reading.SharedReadings`)."""

    def start(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> Reading: ...

    def read(self, collectors: Sequence[Gatherer], probes: tuple[str, ...]) -> HostSnapshot: ...


class Collector(SectionRenderer, Gatherer, Protocol):
    """A collector as a scrape plans, reads and renders it."""


Health = tuple[str, "Section[Any]", bool]  # a collector's name, its section, and whether it was shown


@dataclass(frozen=True)
class Plan:
    """What one scrape reads and shows."""

    collectors: tuple[Collector, ...]
    probes: tuple[str, ...]
    names: frozenset[str] | None  # the name[] filter, if any


class RuntimeCollector(Protocol):
    """The exporter's own metrics: ours (`ProcessMetrics`) or prometheus_client's."""

    def collect(self) -> Iterable[AnyFamily]: ...


class Exposition:
    """Reads the host afresh on every scrape and renders that reading.  `runtime` holds
    the exporter's own collectors, if any: ours for process_*, prometheus_client's for
    python_*."""

    def __init__(
        self,
        readings: Reader,
        collectors: Sequence[Collector],
        probes: tuple[str, ...],
        durations: bool = False,
        runtime: Sequence[RuntimeCollector] = (),
    ) -> None:
        self.readings = readings
        self._collectors = tuple(collectors)
        self._probes = probes
        self._durations = durations
        self._runtime = tuple(runtime)
        # each runtime collector's families as text: written by the collector itself where
        # it can (`ProcessMetrics.text`: what encode_text writes of them, at a third of the cost)
        self._runtime_text = tuple(_text_of(r) for r in self._runtime)
        # (collector, OpenMetrics?) -> the collector, its facts and their text on the last scrape
        self._memo: dict[tuple[str, bool], tuple[SectionRenderer, object, str]] = {}
        self._health_memo: tuple[object, str] | None = None  # what the health families showed, and their text

    def plan(self, names: Iterable[str] | None = None) -> Plan:
        """With `names`, only what those metrics need is read."""
        if names is None:
            return Plan(self._collectors, self._probes, None)
        wanted = frozenset(names)
        collectors, probe_names = self._collectors, self._probes
        if not wanted & PER_COLLECTOR:  # per-collector health needs every collector
            collectors = tuple(c for c in collectors if wanted.intersection(c.metrics))
            if not wanted & set(probes.PROBE_METRICS):
                probe_names = ()
        return Plan(collectors, probe_names, wanted)

    def render(self, plan: Plan, snap: HostSnapshot) -> list[AnyFamily]:
        """The families of one reading, as `plan` asks."""
        out = self._runtime_families()
        out.extend(render(snap, plan.collectors, self._durations))
        return out if plan.names is None else only(out, plan.names)

    def _runtime_families(self) -> list[AnyFamily]:
        """The exporter's process (and Python) metrics, now."""
        out: list[AnyFamily] = []
        for runtime in self._runtime:
            out.extend(runtime.collect())
        return out

    def runtime_text(self, plan: Plan, openmetrics: bool, escaping: str, version: str) -> list[str] | None:
        """The exporter's own families as `body` writes them for `plan`, now (``None``
        where `body` encodes every family at once: a name[] filter, an escaping that
        rewrites names)."""
        if _at_once(plan, escaping):
            return None
        return self._runtime_lines(openmetrics, escaping, version)

    def _runtime_lines(self, openmetrics: bool, escaping: str, version: str) -> list[str]:
        return [encoded(openmetrics, escaping, version) for encoded in self._runtime_text]

    def body(
        self, plan: Plan, snap: HostSnapshot, openmetrics: bool, escaping: str, version: str,
        *, runtime: list[str] | None = None,
    ) -> bytes:  # fmt: skip
        """`render` encoded (`families.encode`).  A collector whose facts equal those it
        had on the scrape before gives the text it gave then: the text is a function of
        the facts alone, and the facts are read afresh on every scrape.  `runtime` is
        `runtime_text`, when taken earlier in the scrape (the server takes it as the
        scrape starts, before the host is read); where that is ``None`` (a name[]
        filter, an escaping that rewrites names), so is what `runtime` should be, and
        it is not used."""
        if _at_once(plan, escaping):
            return encode(self.render(plan, snap), openmetrics, escaping, version)
        text = self._runtime_lines(openmetrics, escaping, version) if runtime is None else list(runtime)
        memo = self._memo
        rows: list[Health] = []
        for collector in plan.collectors:
            section = snap.sections.get(collector.name)
            if section is None:
                continue
            if not section.ok:
                rows.append((collector.name, section, False))
                continue
            key = (collector.name, openmetrics)
            known = memo.get(key)
            if known is not None and known[0] is collector and (known[1] is section.data or known[1] == section.data):
                text.append(known[2])
                rows.append((collector.name, section, True))
                continue
            families = _render_section(collector, section)
            if families is not None:
                rendered = encode_text(families, openmetrics, escaping, version)
                memo[key] = (collector, section.data, rendered)
                text.append(rendered)
            rows.append((collector.name, section, families is not None))
        text.append(self._health_text(rows, snap, openmetrics, escaping, version))
        if openmetrics:
            text.append("# EOF\n")
        return "".join(text).encode()

    def _health_text(
        self, rows: list[Health], snap: HostSnapshot, openmetrics: bool, escaping: str,
        version: str,
    ) -> str:  # fmt: skip
        """The probes' and the exporter's own families, encoded: as on the scrape before
        when what they show is equal (never with the durations, which change)."""
        key: object = None
        if not self._durations:
            key = (
                openmetrics,
                escaping,
                tuple((name, ok, tuple(sorted(section.given_up.items())) if section.given_up else ())
                      for name, section, ok in rows),
                tuple((p.probe, tuple(p.answers.items()), tuple(p.raw.items()), p.success, p.absent)
                      for p in snap.probes),
            )  # fmt: skip
            known = self._health_memo
            if known is not None and known[0] == key:
                return known[1]
        rendered = encode_text(_health_families(rows, snap, self._durations), openmetrics, escaping, version)
        if key is not None:
            self._health_memo = (key, rendered)
        return rendered

    def families(self, names: Iterable[str] | None = None) -> list[AnyFamily]:
        """Every family of one scrape (read in this thread); with `names`, only the
        samples of those names."""
        plan = self.plan(names)
        return self.render(plan, self.readings.read(plan.collectors, plan.probes))

    def encode(self, openmetrics: bool = False, names: Iterable[str] | None = None) -> bytes:
        return encode(self.families(names), openmetrics)


def _at_once(plan: Plan, escaping: str) -> bool:
    """Whether a scrape's families are encoded all at once (a name[] filter, an
    escaping that rewrites names), not one collector's text at a time."""
    return plan.names is not None or escaping not in PLAIN_ESCAPING


def _text_of(runtime: RuntimeCollector) -> Callable[[bool, str, str], str]:
    """How `runtime`'s families are encoded on each scrape (format, escaping, version)."""
    text = getattr(runtime, "text", None)
    if callable(text):
        return lambda openmetrics, _escaping, _version: str(text(openmetrics))
    return lambda openmetrics, escaping, version: encode_text(runtime.collect(), openmetrics, escaping, version)


def only(families: Iterable[AnyFamily], names: frozenset[str]) -> list[AnyFamily]:
    """The samples named in `names` (as prometheus_client's own ``name[]`` filter);
    families left without samples are dropped."""
    out: list[AnyFamily] = []
    for family in families:
        if isinstance(family, Family):
            if family.sample_name in names and family.rows:
                out.append(family)
            continue
        kept = [s for s in family.samples if s.name in names]
        if kept:
            from prometheus_client.metrics_core import Metric  # noqa: PLC0415 (one of its families: loaded)

            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = kept
            out.append(copy)
    return out


def render(snap: HostSnapshot, collectors: Sequence[SectionRenderer], durations: bool = False) -> list[Family]:
    """Every family of one reading: each collector's section, the probes, the
    exporter's own."""
    out: list[Family] = []
    rows: list[Health] = []
    for collector in collectors:
        section = snap.sections.get(collector.name)
        if section is None:
            continue
        families = _render_section(collector, section) if section.ok else None
        if families is not None:
            out.extend(families)
        rows.append((collector.name, section, families is not None))
    out.extend(_health_families(rows, snap, durations))
    return out


def _render_section(collector: SectionRenderer, section: Section[Any]) -> list[Family] | None:
    """A successful section's families; ``None`` when rendering fails (a renderer bug
    costs its collector, not the scrape)."""
    try:
        return list(collector.render_section(section))
    except Exception:
        log.exception("rendering failed", extra={"collector": collector.name})
        return None


def _health_families(rows: Sequence[Health], snap: HostSnapshot, durations: bool) -> list[Family]:
    """The exporter's own families of one reading: the probes', then each collector's
    success, the facts it gave up and (with `durations`) its duration, then the build."""
    success = Gauge(
        "host_exporter_collector_success",
        "Whether the collector's facts could be read (1) or not (0).",
        labels=["collector"],
    )
    duration = Gauge(
        "host_exporter_collector_duration_seconds",
        "How long the collector took on this scrape (with --web.exporter-metrics=all).",
        labels=["collector"],
    )
    given_up = Gauge(
        "host_exporter_facts_given_up",
        "Facts the collector left out or took from a next-best source on this scrape, because their file "
        "could not be read (unreadable) or was not what the kernel writes (malformed).",
        labels=["collector", "reason"],
    )
    for name, section, ok in rows:
        for reason, count in sorted(section.given_up.items()):
            given_up.add_metric([name, reason], count)
        success.add_metric([name], float(ok))
        duration.add_metric([name], section.duration)
    out: list[Family] = [*probes.probes(snap.probes, durations), success]
    if given_up.rows:
        out.append(given_up)
    if durations:
        out.append(duration)
    build = Info("host_exporter_build", "host-pm-exporter's version.", labels=["version"])
    build.add_metric([__version__], {})
    out.append(build)
    return out


def metric_table(collectors: Sequence[SectionRenderer]) -> str:
    """The README's metric -> collector table, in Markdown."""
    rows = ["| metric | from |", "|---|---|"]
    for spec in collectors:
        rows += [f"| `{metric}` | `{spec.name}` |" for metric in spec.metrics]
    rows += [f"| `{metric}` | the probes (`--pm.probes`) |" for metric in probes.PROBE_METRICS]
    rows += [f"| `{metric}` | the exporter itself |" for metric in EXPORTER_METRICS]
    return "\n".join(rows) + "\n"
