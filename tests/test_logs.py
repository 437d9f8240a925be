"""Logs: one logfmt (or JSON) record per line on stderr; a bug's stack goes into the
record as one escaped field, never raw onto stderr and never to an HTTP client."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from host_pm_exporter import logs
from host_pm_exporter.collectors import BY_NAME
from host_pm_exporter.collectors.base import Collector
from host_pm_exporter.facts import ScrapeFacts
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.reading import SnapshotConfig, build_snapshot
from host_pm_exporter.views.exposition import render
from tests.conftest import FIXTURES


def broken_reader(scrape: ScrapeFacts) -> int:
    facts: dict[str, int] = {}
    return facts["missing-" + scrape.fs.sysfs[-3:]]  # a bug: KeyError


@pytest.fixture(params=["logfmt", "json"])
def stderr(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    """The exporter's logger as `logs.setup` makes it, writing to a buffer."""
    logs.setup("info", request.param)
    buffer = io.StringIO()
    root = logging.getLogger("host_pm_exporter")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield request.param, buffer
    root.handlers[:] = []
    root.propagate = True
    root.setLevel(logging.NOTSET)  # as it was: later tests' log capture must not depend on this one


def test_a_reader_bug_logs_its_stack_as_one_field_and_costs_only_its_collector(
    stderr: tuple[str, io.StringIO],
) -> None:
    fmt, buffer = stderr
    root = FIXTURES / "server-s3"
    buggy = Collector("buggy", "a collector with a bug", gather=broken_reader, families=lambda _: [], metrics=())
    collectors = (BY_NAME["lockdown"], buggy)
    snap = build_snapshot(
        SnapshotConfig(fs=HostFS(str(root / "proc"), str(root / "sys"), str(root)), collectors=collectors, probes=())
    )
    families = {f.name: f for f in render(snap, collectors)}
    success = {s.labels["collector"]: s.value for s in families["host_exporter_collector_success"].samples}
    assert success == {"lockdown": 1.0, "buggy": 0.0}
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1, lines
    if fmt == "json":
        record = json.loads(lines[0])
        stack = record["stack"]
        assert record["err"] == "KeyError: 'missing-sys'"
    else:
        assert "err=\"KeyError: 'missing-sys'\"" in lines[0]
        field = lines[0][lines[0].index("stack=") + len("stack=") :]
        stack, _end = json.JSONDecoder().raw_decode(field)  # logfmt quotes values the JSON way
    assert stack.startswith("Traceback (most recent call last):\n")
    assert "in broken_reader" in stack
    assert "test_logs.py" in stack
    assert stack.rstrip().endswith("KeyError: 'missing-sys'")


def test_plain_records_have_no_stack_field(stderr: tuple[str, io.StringIO]) -> None:
    _fmt, buffer = stderr
    logging.getLogger("host_pm_exporter.test").warning("probe failed", extra={"probe": "x", "reason": "a b"})
    (line,) = buffer.getvalue().splitlines()
    assert "stack" not in line
    assert "probe failed" in line
