"""Metrics of the sleep probes: each tool's answer, success and duration."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from host_pm_exporter.families import Family, Gauge, Info
from host_pm_exporter.probes import ProbeResult
from host_pm_exporter.sleep import OPERATIONS

PROBE_METRICS = (
    "host_pm_probe_supported",
    "host_pm_probe_success",
    "host_pm_probe_tool_present",
    "host_pm_probe_duration_seconds",
    "host_pm_logind_answer_info",
)


def probes(results: Iterable[ProbeResult], durations: bool = False) -> Iterator[Family]:
    results = list(results)
    if not results:
        return
    supported = Gauge(
        "host_pm_probe_supported",
        "What a probe (kernel, logind, pm-utils) answers for a sleep operation: 1 "
        "supported, 0 not; absent when the probe could not answer.",
        labels=["probe", "operation"],
    )
    success = Gauge(
        "host_pm_probe_success",
        "Whether the probe answered every operation it is asked (1) or failed (0); "
        "absent when its tool is (see host_pm_probe_tool_present).",
        labels=["probe"],
    )
    present = Gauge(
        "host_pm_probe_tool_present",
        "Whether the probe's tool is installed (1), or absent (0: no pm-is-supported, no "
        "system D-Bus socket), a state of its own and not a failure.",
        labels=["probe"],
    )
    duration = Gauge(
        "host_pm_probe_duration_seconds",
        "How long the probe took on this scrape.",
        labels=["probe"],
    )
    logind = Info(
        "host_pm_logind_answer",
        "logind's own answer to Can<Operation>: yes, challenge, no (forbidden by policy) or na (not supported).",
        labels=["operation", "answer"],
    )
    for result in results:
        for operation in OPERATIONS:
            if operation in result.answers:
                supported.add_metric([result.probe, operation], float(result.answers[operation]))
        present.add_metric([result.probe], float(not result.absent))
        if not result.absent:
            success.add_metric([result.probe], float(result.success))
        if durations:
            duration.add_metric([result.probe], result.duration)
        if result.probe == "logind":
            for operation in OPERATIONS:
                if operation in result.raw:
                    logind.add_metric([operation, result.raw[operation]], {})
    yield supported
    yield success
    yield present
    if durations:
        yield duration
    if logind.rows:
        yield logind
