"""Metric families of one scrape, and their text exposition.

The renderers fill `Gauge`, `Counter` and `Info` families (the same shape as
prometheus_client's ``*MetricFamily``: a name, a help text, label names, then one
``add_metric(label_values, value)`` per sample).  `encode` writes them in the
Prometheus text format 0.0.4 or OpenMetrics 1.0, byte for byte as prometheus_client's
own encoders would (a test holds every fixture host to that), at a fraction of the
cost: a family knows its label names once, so a sample is its values and a number,
not a dict of labels that is sorted, validated and escaped again for every sample.
prometheus_client's encoders stay the reference, serve any other escaping scheme a
client asks for, and encode its own collectors' metrics (process_*, python_*).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import ClassVar, Union

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Sample

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
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
        if not _NAME.fullmatch(name) or not all(_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"invalid metric or label name: {name} {labels}")
        self.name = name
        self.documentation = documentation
        self.labels = labels
        # The text formats list labels sorted by name: the order is worked out once.
        self._order = sorted(range(len(labels)), key=labels.__getitem__)
        self._keys = [f'{labels[i]}="' for i in self._order]
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
        keys, order = self._keys, self._order
        for values, value in self.rows:
            if values:
                labels = ",".join([keys[j] + _escape(values[i]) + '"' for j, i in enumerate(order)])
                out.append(f"{name}{{{labels}}} {go_float(value)}\n")
            else:
                out.append(f"{name} {go_float(value)}\n")


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


AnyFamily = Union[Family, Metric]  # prometheus_client's own collectors give Metric


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def go_float(value: float) -> str:
    """A number as Go's strconv writes it, as prometheus_client does."""
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


class _Just:
    """A collector of given metrics (to run prometheus_client's encoders on them)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def encode(families: Iterable[AnyFamily], openmetrics: bool = False) -> bytes:
    """The families in the text format 0.0.4, or OpenMetrics 1.0 (with ``# EOF``)."""
    out: list[str] = []
    for family in families:
        if not isinstance(family, Family):
            text = (generate_openmetrics if openmetrics else generate_latest)(_Just([family])).decode()
            out.append(text[: -len("# EOF\n")] if openmetrics else text)
            continue
        if openmetrics:
            name = family.name
            help_text = _escape(family.documentation)
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n")
        else:
            name = family.sample_name
            help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(
                f"# HELP {name} {help_text}\n# TYPE {name} {'counter' if family.type == 'counter' else 'gauge'}\n"
            )
        family.lines(out)
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()
