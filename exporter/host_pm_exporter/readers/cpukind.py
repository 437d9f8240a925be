"""The identity of a kind of CPU: what every architecture's cpuinfo reader produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CpuKind:
    """The identity of a kind of CPU, as host_cpu_info labels it."""

    vendor: str = ""
    model_name: str = ""
    family: str = ""
    model: str = ""
    stepping: str = ""
    microcode: str = ""
