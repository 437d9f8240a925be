"""Facts given up: one value a reader refused, while the collector's other facts stand.

A file that is there but unreadable, or whose text is not what the kernel writes
there, costs the fact it carries, not the collector: the reader calls `give_up` and
goes on with the next-best source, or with no sample for that fact.  `tally`
counts what one collector gave up during one scrape (`facts.gather` sets it around
each collector's reading) by a bounded set of reasons; each (fact, reason class) is
logged as a warning once, then at debug level.

A fact that several collectors share is read once per scrape: what it gives up is
counted for the collector that read it first.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Callable, TypeVar

from host_pm_exporter.hostfs import ReadError
from host_pm_exporter.logs import Once
from host_pm_exporter.readers import ParseError

T = TypeVar("T")

# The reasons, a closed set (the metric's label): the file could not be had (I/O,
# permission, not text, too large), or its text is not what the kernel writes there.
UNREADABLE, MALFORMED = "unreadable", "malformed"
REASONS = (UNREADABLE, MALFORMED)

tally: ContextVar[dict[str, int] | None] = ContextVar("given_up", default=None)
_log = Once(logging.getLogger("host_pm_exporter.readers"), limit=512)


def give_up(fact: str, err: ReadError | ParseError) -> None:
    """Count and log one fact left out (or taken from its next-best source) because of
    `err`."""
    reason = UNREADABLE if isinstance(err, ReadError) else MALFORMED
    counts = tally.get()
    if counts is not None:
        counts[reason] = counts.get(reason, 0) + 1
    _log.log("fact given up", fact, f"{reason}: {err}", fact=fact, reason=reason, err=str(err))


def or_none(fact: str, read: Callable[..., T | None], *args: object) -> T | None:
    """``read(*args)``, or ``None`` (the fact given up) when its file is unreadable or
    malformed."""
    try:
        return read(*args)
    except (ReadError, ParseError) as err:
        give_up(fact, err)
        return None
