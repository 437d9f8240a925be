"""The ``cpu`` collector: CPU identity per kind of CPU, the features fingerprint, the
x86-64 level, the flag count, and the flags themselves when asked for
(``--collector.cpu.flags-include``)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable

from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.families import Family, Gauge, Info
from host_pm_exporter.readers.cpu import CpuFacts, cpu_facts

INFO_LABELS = ["arch", "vendor", "model_name", "family", "model", "stepping", "microcode", "core_type"]


@dataclass(frozen=True)
class FlagFilter:
    """Which CPU flags get a host_cpu_flag_info series: those the include regex matches
    in full, less those the exclude regex matches."""

    include: re.Pattern[str]
    exclude: re.Pattern[str] | None = None

    def shows(self, flag: str) -> bool:
        return bool(self.include.fullmatch(flag)) and not (self.exclude and self.exclude.fullmatch(flag))


def gather(facts: ScrapeFacts) -> CpuFacts | None:
    info = facts.cpuinfo()
    if info is None:
        return None
    return cpu_facts(info, facts.core_types())


def families(facts: CpuFacts | None, shown: FlagFilter | None = None) -> Iterator[Family]:
    if facts is None:  # no /proc/cpuinfo
        return
    info = Info(
        "host_cpu",
        "One series per distinct kind of CPU on the host (hybrid P/E cores and big.LITTLE "
        "clusters give several). arm64: vendor from the implementer, model_name from the part.",
        labels=INFO_LABELS,
    )
    for kind, core_type in facts.kinds:
        info.add_metric(
            [facts.arch, kind.vendor, kind.model_name, kind.family, kind.model, kind.stepping,
             kind.microcode, core_type],
            {},
        )  # fmt: skip
    yield info

    if shown is not None:  # one series per flag: 100-200 on x86, so asked for
        flags = Info(
            "host_cpu_flag",
            "A CPU feature flag any CPU of the host has (only with --collector.cpu.flags-include; "
            "host_cpu_features_info fingerprints the whole set).",
            labels=["flag"],
        )
        for flag in sorted(facts.flags):
            if shown.shows(flag):
                flags.add_metric([flag], {})
        yield flags

    features = Info(
        "host_cpu_features",
        "Fingerprint of the full CPU flag set: sha256 of the sorted flag names joined by "
        "newlines, first 16 hex digits. Hosts with equal fingerprints offer guests the same flags.",
        labels=["fingerprint"],
    )
    features.add_metric([facts.fingerprint], {})
    yield features
    yield Gauge("host_cpu_flags", "How many CPU flags the host has.", value=len(facts.flags))

    if facts.x86_64_level is not None:
        yield Gauge(
            "host_cpu_x86_64_level",
            "The x86-64 psABI micro-architecture level (1-4) the CPU flags reach; 0 below v1.",
            value=facts.x86_64_level,
        )


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"invalid regex {value!r}: {err}") from None


def add_flags(add: Callable[..., Any]) -> None:
    add(
        "--collector.cpu.flags-include",
        dest="flags_include",
        type=_regex,
        default=None,
        help="show the CPU flags matching this regex as host_cpu_flag_info ('.*': all; default: none)",
    )
    add(
        "--collector.cpu.flags-exclude",
        dest="flags_exclude",
        type=_regex,
        default=None,
        help="of the flags --collector.cpu.flags-include shows, leave out those matching this regex",
    )


def configure(args: argparse.Namespace) -> Callable[[CpuFacts | None], Iterable[Family]]:
    include: re.Pattern[str] | None = args.flags_include
    if include is None:
        return families
    only = FlagFilter(include, args.flags_exclude)
    return lambda facts: families(facts, only)


COLLECTOR = Collector(
    "cpu",
    "CPU identity per kind, features fingerprint, x86-64 level, flag count (flags: --collector.cpu.flags-include)",
    gather=gather,
    families=families,
    metrics=(
        "host_cpu_info",
        "host_cpu_flag_info",
        "host_cpu_flags",
        "host_cpu_features_info",
        "host_cpu_x86_64_level",
    ),
    flags=add_flags,
    configure=configure,
)
