"""Metric families of one scrape, and their text exposition.

The renderers fill `Gauge`, `Counter` and `Info` families (the same shape as
prometheus_client's ``*MetricFamily``: a name, a help text, label names, then one
``add_metric(label_values, value)`` per sample).  `encode` writes them in the
Prometheus text format 0.0.4 or OpenMetrics 1.0, byte for byte as prometheus_client's
own encoders would (a test holds every fixture host to that), at a fraction of the
cost: a family knows its label names once, so a sample is its values and a number,
not a dict of labels that is sorted, validated and escaped again for every sample.
prometheus_client's encoders stay the reference, serve any other escaping scheme a
client asks for, and encode its own collectors' metrics (python_*); it is imported only
then.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Union

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

_INF = math.inf
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # no ":" (recording rules'): OpenMetrics would rewrite it
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Family:
    """One metric family: its name (without the ``_total``/``_info`` suffix), help,
    label names and samples."""

    __slots__ = ("_keys", "_order", "documentation", "labels", "name", "rows")
    type: ClassVar[str] = "gauge"
    suffix: ClassVar[str] = ""

    def __init__(
        self, name: str, documentation: str, value: float | None = None, labels: Sequence[str] | None = None
    ) -> None:
        if self.suffix and name.endswith(self.suffix):
            name = name[: -len(self.suffix)]
        labels = tuple(labels or ())
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._order, self._keys = _shape(name, labels)
        self.rows: list[tuple[tuple[str, ...], float]] = []
        if value is not None:
            if labels:
                raise ValueError("a family with labels takes its values through add_metric")
            self.rows.append(((), float(value)))

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        if len(labels) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.labels)} label values expected, got {len(labels)}")
        self.rows.append((tuple(labels), float(value)))

    @property
    def sample_name(self) -> str:
        return self.name + self.suffix

    def metric(self) -> Metric:
        """The same family as prometheus_client's `Metric` (for its encoders and the
        name filter of other consumers)."""
        from prometheus_client.metrics_core import Metric  # noqa: PLC0415 (on first use only)

        metric = Metric(self.name, self.documentation, self.type)
        sample = self.sample_name
        for values, value in self.rows:
            metric.add_sample(sample, dict(zip(self.labels, values)), value)
        return metric

    @property
    def samples(self) -> list[Sample]:
        return self.metric().samples

    def lines(self, out: list[str]) -> None:
        """Append this family's sample lines (both formats write samples alike)."""
        name = self.sample_name
        rows = self.rows
        if not self.labels:
            for _, value in rows:
                out.append(f"{name} {repr(value) if -_INF < value < 1e6 else go_float(value)}\n")
            return
        keys, order = self._keys, self._order
        if len(order) == 1:  # most families: one label
            start = name + "{" + keys[0]
            for (raw,), value in rows:
                label = _escape(raw) if "\\" in raw or "\n" in raw or '"' in raw else raw
                out.append(f'{start}{label}"}} {repr(value) if -_INF < value < 1e6 else go_float(value)}\n')
            return
        for values, value in rows:
            labels = ",".join([keys[j] + _escape(values[i]) + '"' for j, i in enumerate(order)])
            out.append(f"{name}{{{labels}}} {repr(value) if -_INF < value < 1e6 else go_float(value)}\n")


class Gauge(Family):
    __slots__ = ()


class Counter(Family):
    __slots__ = ()
    type = "counter"
    suffix = "_total"


class Info(Family):
    """An info family: every sample is 1; `add_metric` takes the label values and an
    empty dict (prometheus_client's signature; extra labels are not used here)."""

    __slots__ = ()
    type = "info"
    suffix = "_info"

    def add_metric(self, labels: Sequence[str], value: object = None) -> None:
        if value:
            raise ValueError("info samples take their labels as values")
        super().add_metric(labels, 1.0)


def one_info(name: str, documentation: str, labels: dict[str, str]) -> Info:
    """An info family of one sample; `labels` maps each label name to its value."""
    family = Info(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()))
    return family


AnyFamily = Union[Family, "Metric"]  # prometheus_client's own collectors give Metric


@functools.lru_cache(maxsize=1024)
def _shape(name: str, labels: tuple[str, ...]) -> tuple[list[int], list[str]]:
    """A family's names checked, and the order the text formats list its labels in
    (sorted by name), worked out once per family name: these come from our code, not
    from the host."""
    if not _NAME.fullmatch(name) or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"invalid metric or label name: {name} {labels}")
    order = sorted(range(len(labels)), key=labels.__getitem__)
    return order, [f'{labels[i]}="' for i in order]


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def go_float(value: float) -> str:
    """A number as Go's strconv writes it, as prometheus_client does."""
    if -math.inf < value < 1e6:  # the usual case (NaN compares false): as Python writes it
        return repr(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


class _GivenMetrics:
    """A prometheus_client collector of metrics given to it (its encoders take a
    collector)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


PLAIN_ESCAPING = ("underscores", "allow-utf-8")  # schemes that leave our names as they are


def encode(
    families: Iterable[AnyFamily], openmetrics: bool = False, escaping: str = "underscores", version: str = "1.0.0"
) -> bytes:
    """The families in the text format 0.0.4, or OpenMetrics (with ``# EOF``).  An
    escaping scheme that rewrites names (``dots``, ``values``) is prometheus_client's."""
    text = encode_text(families, openmetrics, escaping, version)
    return (text + "# EOF\n" if openmetrics else text).encode()


def encode_text(
    families: Iterable[AnyFamily], openmetrics: bool, escaping: str = "underscores", version: str = "1.0.0"
) -> str:
    """`encode` without the ``# EOF``, as text: the families' part of a scrape."""
    from_client = escaping not in PLAIN_ESCAPING
    out: list[str] = []
    for family in families:
        if from_client or not isinstance(family, Family):
            out.append(_client_encode(family, openmetrics, escaping, version))
            continue
        key = (family.name, family.documentation, family.type, openmetrics)
        header = _HEADERS.get(key)
        if header is None:
            header = _header(family, openmetrics)
            if len(_HEADERS) > 4096:  # our families' names and help are our code's: this never fills
                _HEADERS.clear()
            _HEADERS[key] = header
        out.append(header)
        family.lines(out)
    return "".join(out)


_HEADERS: dict[tuple[str, str, str, bool], str] = {}  # a family's HELP and TYPE lines, written once


def _header(family: Family, openmetrics: bool) -> str:
    if openmetrics:
        name = family.name
        return f"# HELP {name} {_escape(family.documentation)}\n# TYPE {name} {family.type}\n"
    name = family.sample_name
    help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    kind = "counter" if family.type == "counter" else "gauge"  # an info family is a gauge here
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _client_encode(family: AnyFamily, openmetrics: bool, escaping: str, version: str) -> str:
    """One family by prometheus_client's own encoders (without their ``# EOF``)."""
    from prometheus_client import generate_latest  # noqa: PLC0415 (on first use only)
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics  # noqa: PLC0415

    metric = family.metric() if isinstance(family, Family) else family
    if openmetrics:
        text: str = generate_openmetrics(_GivenMetrics([metric]), escaping=escaping, version=version).decode()  # type: ignore[no-untyped-call]
        return text[: -len("# EOF\n")]
    return generate_latest(_GivenMetrics([metric]), escaping=escaping).decode()


TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
_ESCAPINGS = ("allow-utf-8", "underscores", "dots", "values")


@functools.lru_cache(maxsize=16)  # a scrape asks twice (its runtime text, then its body); a scraper sends one header
def negotiate(accept: str) -> tuple[bool, str, str, str]:
    """What to answer an ``Accept`` header with, as prometheus_client decides it:
    (OpenMetrics?, Content-Type, escaping scheme, OpenMetrics version).  Remembered for
    the last few headers (each at most the 16 KiB a request's head may hold)."""
    for accepted in (accept or "").split(","):
        media, *params = accepted.split(";")
        media = media.strip()
        if media not in ("application/openmetrics-text", "text/plain"):
            continue
        version: str | None = None
        escaping = ""
        for param in params:  # the first of each counts, as in prometheus_client
            key, eq, value = param.strip().partition("=")
            if not eq:
                continue
            if key == "version" and version is None:
                version = value
            elif key == "escaping" and not escaping:
                escaping = value if value in _ESCAPINGS else "underscores"
        escaping = escaping or "underscores"
        if media == "application/openmetrics-text" and not version:
            return True, "application/openmetrics-text; version=1.0.0; charset=utf-8", "underscores", "1.0.0"
        if version and _version(version) >= (1, 0, 0):  # a version that is no number: not this item
            if media == "application/openmetrics-text":
                content_type = f"application/openmetrics-text; version={version}; charset=utf-8; escaping={escaping}"
                return True, content_type, escaping, version
            return False, f"text/plain; version=1.0.0; charset=utf-8; escaping={escaping}", escaping, version
    return False, TEXT_0_0_4, "underscores", "1.0.0"


def _version(text: str) -> tuple[int, ...]:
    parts = text.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() and p.isascii() for p in parts) else ()


def gzip_accepted(accept_encoding: str) -> bool:
    return any(item.split(";")[0].strip().lower() == "gzip" for item in (accept_encoding or "").split(","))
