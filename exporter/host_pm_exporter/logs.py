"""Structured logs in logfmt (node_exporter's default) or JSON, on stderr."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import traceback

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": "warn" if record.levelno == logging.WARNING else record.levelname.lower(),
        "source": record.name.rsplit(".", 1)[-1],
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        err = record.exc_info[1]
        fields["err"] = f"{type(err).__name__}: {err}"
        # The whole stack as one field: the formatter escapes its newlines, so a record
        # stays one line and a reader bug can still be traced to its line.
        fields["stack"] = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if text == "" or any(c in text for c in ' "=\\') or not text.isprintable():
                text = json.dumps(text)
            parts.append(f"{key}={text}")
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def setup(level: str, fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger("host_pm_exporter")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    root.propagate = False


class Once:
    """Logs a repeated failure as a warning the first time per (subject, reason class),
    then at debug level.  The class is the reason without its numbers ("timed out
    after 0.53s" and "after 0.61s" are one), and a bounded number of them is kept, so
    a failure that recurs every scrape neither floods the log nor grows memory."""

    def __init__(self, logger: logging.Logger, limit: int = 256) -> None:
        self._logger = logger
        self._seen: dict[tuple[str, str], None] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def log(self, msg: str, subject: str, why: str, **extra: object) -> None:
        key = (subject, re.sub(r"\d+(\.\d+)?", "N", why))
        with self._lock:
            first = key not in self._seen
            if first:
                if len(self._seen) >= self._limit:
                    self._seen.pop(next(iter(self._seen)))
                self._seen[key] = None
        self._logger.log(logging.WARNING if first else logging.DEBUG, msg, extra=extra)


class Failures:
    """The failures of named parts (collectors, probes), each logged as `message` with
    the part's name under `field`: a warning the first time per part and reason class
    (see `Once`), then at debug level."""

    def __init__(self, logger: logging.Logger, message: str, field: str, limit: int = 256) -> None:
        self._once = Once(logger, limit)
        self._message = message
        self._field = field

    def log(self, name: str, reason: str) -> None:
        self._once.log(self._message, name, reason, **{self._field: name, "reason": reason})
