"""Metrics of the sleep probes: each tool's answer, success and duration."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from host_pm_exporter.probes import ProbeResult
from host_pm_exporter.sleep import OPERATIONS


def probes(results: Iterable[ProbeResult]) -> Iterator[Metric]:
    results = list(results)
    if not results:
        return
    supported = GaugeMetricFamily(
        "host_pm_probe_supported",
        "What a probe (kernel, logind, pm-utils) answers for a sleep operation: 1 "
        "supported, 0 not; absent when the probe could not answer.",
        labels=["probe", "operation"],
    )
    success = GaugeMetricFamily(
        "host_pm_probe_success",
        "Whether the probe answered every operation it is asked (1) or failed (0).",
        labels=["probe"],
    )
    duration = GaugeMetricFamily(
        "host_pm_probe_duration_seconds",
        "How long the probe took on this scrape.",
        labels=["probe"],
    )
    logind = InfoMetricFamily(
        "host_pm_logind_answer",
        "logind's own answer to Can<Operation>: yes, challenge, no (forbidden by policy) or na (not supported).",
        labels=["operation", "answer"],
    )
    for result in results:
        for operation in OPERATIONS:
            if operation in result.answers:
                supported.add_metric([result.probe, operation], float(result.answers[operation]))
        success.add_metric([result.probe], float(result.success))
        duration.add_metric([result.probe], result.duration)
        if result.probe == "logind":
            for operation in OPERATIONS:
                if operation in result.raw:
                    logind.add_metric([operation, result.raw[operation]], {})
    yield supported
    yield success
    yield duration
    if logind.samples:
        yield logind
