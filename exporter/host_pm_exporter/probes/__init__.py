"""Probes: each asks one tool whether the host can suspend, hibernate, and so on.

A probe never raises: it returns a `ProbeResult` whose `error` says why it could not
answer.  An absent tool (no pm-utils, no system bus) is reported as a failed probe and
logged once per distinct reason, not on every scrape.
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

    @property
    def success(self) -> bool:
        return self.error is None


failures = Failures(log, "probe failed", "probe")
