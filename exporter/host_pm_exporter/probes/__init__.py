"""Probes: each asks one tool whether the host can suspend, hibernate, and so on.

A probe never raises: it returns a `ProbeResult` whose `error` says why it could not
answer.  An absent tool (no pm-utils, no system bus) is reported as a failed probe and
logged once per distinct reason, not on every scrape.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

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


class _OnceLog:
    """Logs a probe failure as a warning the first time per (probe, reason class), then
    at debug level.  The class is the reason without its numbers ("timed out after
    0.53s" and "after 0.61s" are one), and a bounded number of them is remembered."""

    def __init__(self, limit: int = 256) -> None:
        self._seen: dict[tuple[str, str], None] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def failure(self, probe: str, reason: str) -> None:
        key = (probe, re.sub(r"\d+(\.\d+)?", "N", reason))
        with self._lock:
            first = key not in self._seen
            if first:
                if len(self._seen) >= self._limit:
                    self._seen.pop(next(iter(self._seen)))
                self._seen[key] = None
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, "probe failed", extra={"probe": probe, "reason": reason})


once = _OnceLog()
