"""Probes: each asks one tool whether the host can suspend, hibernate, and so on.

A probe never raises: it returns a `ProbeResult` whose `error` says why it could not
answer, logged once per distinct reason, not on every scrape.  An absent tool (no
pm-utils script, no system bus socket) is a state of its own, `absent`: the probe has
nothing to ask, which is not a failure (host_pm_probe_tool_present 0, no
host_pm_probe_success sample).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from host_pm_exporter.logs import Failures

PROBES = ("kernel", "logind", "pm-utils")

log = logging.getLogger("host_pm_exporter.probes")


@dataclass
class ProbeResult:
    """One probe's answers for one scrape.

    `answers` maps an operation to supported (True) or not (False); an operation the
    probe could not answer is missing.  `raw` keeps the tool's own words where they
    carry more than yes/no (logind's ``challenge``, ``na``).
    """

    probe: str
    answers: dict[str, bool] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0
    absent: bool = False  # the tool is not installed (`error` says which file is missing)

    @property
    def success(self) -> bool:
        return self.error is None


failures = Failures(log, "probe failed", "probe")
_absent = Failures(log, "probe tool absent (not a failure)", "probe")


def log_outcome(result: ProbeResult) -> None:
    """A probe that could not answer: a tool that is not installed is said once as
    such, any other failure as a failure (each once per reason, then at debug level)."""
    if result.error is None:
        return
    (_absent if result.absent else failures).log(result.probe, result.error)
