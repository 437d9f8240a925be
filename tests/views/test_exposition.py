"""Our encoder writes what prometheus_client's own encoders write, byte for byte, on
every fixture host and on arbitrary label values and numbers; a ``name[]`` filter
reads only what it needs; a client asking for another escaping scheme gets
prometheus_client's own encoding."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from host_pm_exporter import hostfs
from host_pm_exporter.cli import parse_config
from host_pm_exporter.collectors import REGISTRY
from host_pm_exporter.families import Counter, Family, Gauge, Info, encode, encode_text, gzip_accepted, negotiate
from host_pm_exporter.views.process import ProcessMetrics
from host_pm_exporter.web import Routes
from host_pm_exporter.wiring import make_exposition
from tests.conftest import HOSTS, fixture_args, fresh_python, samples

EVERYTHING = [f"--collector.{c.name}" for c in REGISTRY] + [
    "--collector.cpu.flags-include=.*",
    "--web.exporter-metrics=all",
    "--pm.probes=kernel",
]


class Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def reference(families: list[Family | Metric], openmetrics: bool) -> bytes:
    metrics = Fixed([f.metric() if isinstance(f, Family) else f for f in families])
    return (generate_openmetrics if openmetrics else generate_latest)(metrics)


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_every_fixture_host_encodes_as_prometheus_client_does(host: str, openmetrics: bool) -> None:
    families = make_exposition(parse_config([*fixture_args(host), *EVERYTHING])).families()
    assert any(isinstance(f, Family) for f in families)
    assert any(not isinstance(f, Family) for f in families)  # process_*, python_*: prometheus_client's
    ours = encode(families, openmetrics)
    assert ours == reference(families, openmetrics)
    assert len(samples(ours.decode())) > 50


label_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(['a"b', "a\\b", "a\nb", "\\n", ""])
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70).map(float)


@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(st.tuples(label_text, label_text, numbers), max_size=6),
    value=numbers,
    help_text=label_text,
    openmetrics=st.booleans(),
)
def test_any_labels_and_numbers_encode_as_prometheus_client_does(
    rows: list[tuple[str, str, float]], value: float, help_text: str, openmetrics: bool
) -> None:
    gauge = Gauge("host_test_gauge", help_text, labels=["zone", "app"])  # written sorted: app, zone
    counter = Counter("host_test_events", "events " + help_text, labels=["kind"])
    info = Info("host_test", help_text, labels=["b", "a"])
    for first, second, number in rows:
        gauge.add_metric([first, second], number)
        if not math.isnan(number) and number >= 0:
            counter.add_metric([first], number)
        info.add_metric([first, second], {})
    families: list[Family | Metric] = [gauge, counter, info, Gauge("host_test_single", help_text, value=value)]
    assert encode(families, openmetrics) == reference(families, openmetrics)


def test_invalid_names_are_refused_when_the_family_is_made() -> None:
    with pytest.raises(ValueError, match="invalid"):
        Gauge("host-bad", "x")
    with pytest.raises(ValueError, match="invalid"):
        Gauge("host_ok", "x", labels=["bad-label"])
    with pytest.raises(ValueError, match="label values"):
        Gauge("host_ok", "x", labels=["a"]).add_metric(["1", "2"], 1)


def opened_during(fn: object) -> list[str]:
    seen: list[str] = []
    real = hostfs._open

    def spy(path: str, flags: int, **kwargs: int) -> int:
        seen.append(path)  # a name relative to a directory opened before (recorded too) or a path
        return real(path, flags, **kwargs)

    hostfs._open = spy  # type: ignore[assignment]
    try:
        fn()  # type: ignore[operator]
    finally:
        hostfs._open = real
    return seen


def routes(host: str, *args: str) -> Routes:
    return Routes(make_exposition(parse_config([*fixture_args(host), "--pm.probes=kernel", *args])), "/metrics")


def test_a_name_filter_reads_only_the_collectors_it_needs() -> None:
    served = routes("spr-2s")
    full = opened_during(lambda: served.metrics("", "", ""))
    response = None

    def one() -> None:
        nonlocal response
        response = served.metrics("", "", "name[]=host_pm_supported&name[]=host_numa_nodes")

    filtered = opened_during(one)
    assert response is not None
    got = samples(response.body.decode())
    assert {k.split("{")[0] for k in got} == {"host_pm_supported", "host_numa_nodes"}
    assert got["host_numa_nodes"] == 2
    for part in ("cpuinfo", "cache/", "cpufreq", "cpuidle"):
        assert any(part in p for p in full), part
        assert not any(part in p for p in filtered), f"{part}: its collectors were not asked for"
    assert len(filtered) < len(full) / 2


def test_a_name_filter_on_a_probe_metric_runs_the_probes_and_health_reads_everything() -> None:
    served = routes("laptop-s2idle")
    body = served.metrics("", "", "name[]=host_pm_probe_supported").body.decode()
    assert samples(body)['host_pm_probe_supported{operation="suspend",probe="kernel"}'] == 1
    health = samples(served.metrics("", "", "name[]=host_exporter_collector_success").body.decode())
    assert len(health) == sum(c.default for c in REGISTRY)


def test_other_escaping_schemes_get_prometheus_clients_own_encoding() -> None:
    served = routes("laptop-s2idle")
    accept = "application/openmetrics-text;version=1.0.0;escaping=values"
    response = served.metrics(accept, "", "name[]=host_pm_supported")
    assert "escaping=values" in dict(response.headers)["Content-Type"]
    text = response.body.decode()
    assert text.endswith("# EOF\n")
    # the values scheme writes each underscore twice: prometheus_client's encoder ran
    assert 'host__pm__supported{state="S2idle"} 1.0' in text
    plain = served.metrics("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8", "", "")
    assert 'host_pm_supported{state="S2idle"} 1.0' in plain.body.decode()


ACCEPTS = [
    "",
    "*/*",
    "text/plain",
    "text/plain;version=0.0.4",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=dots",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text; version=0.0.1",
    "application/openmetrics-text;version=1.0.0;escaping=values",
    "application/openmetrics-text;version=1.0.0;escaping=bogus",
    "application/openmetrics-text;version=2.0.0;escaping=allow-utf-8",
    # Prometheus 2.x and 3.x as they scrape
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/json, text/html",
    "text/plain;version",
    "application/openmetrics-text;version=x.y",
]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_content_negotiation_is_prometheus_clients(accept: str) -> None:
    """Our negotiation answers every Accept header as prometheus_client's handler does,
    and the body is what its chosen encoder writes."""
    from prometheus_client.exposition import choose_encoder

    openmetrics, ours, escaping, version = negotiate(accept)
    try:
        encoder, content_type = choose_encoder(accept)
    except TypeError:  # prometheus_client fails on a version that is no number: we answer 0.0.4
        assert accept.endswith("version=x.y")
        assert (openmetrics, ours) == (False, "text/plain; version=0.0.4; charset=utf-8")
        return
    assert ours == content_type
    families = make_exposition(parse_config([*fixture_args("laptop-s2idle"), *EVERYTHING])).families()
    assert encode(families, openmetrics, escaping, version) == encoder(Fixed(
        [f.metric() if isinstance(f, Family) else f for f in families]
    ))  # fmt: skip
    assert openmetrics == content_type.startswith("application/openmetrics-text")


@pytest.mark.parametrize(
    ("header", "gzip"),
    [("", False), ("gzip", True), ("deflate, GZIP;q=0.5", True), ("gzipx", False), ("identity", False)],
)
def test_gzip_is_accepted_as_prometheus_client_accepts_it(header: str, gzip: bool) -> None:
    from prometheus_client.exposition import gzip_accepted as theirs

    assert gzip_accepted(header) == theirs(header) == gzip


def test_our_process_metrics_are_prometheus_clients() -> None:
    """The same names, types and (within a scrape's drift) values as prometheus_client's
    ProcessCollector, which we no longer import."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    theirs = {m.name: m for m in ProcessCollector(registry=CollectorRegistry()).collect()}
    ours = {f.name: f for f in ProcessMetrics().collect()}
    assert set(ours) == {n.removesuffix("_total") if n.endswith("_total") else n for n in theirs}
    for name, family in ours.items():
        metric = theirs[name]
        assert family.type == metric.type, name
        value, their_value = family.rows[0][1], metric.samples[0].value
        if name in ("process_start_time_seconds", "process_max_fds"):
            assert value == pytest.approx(their_value, abs=0.02), name
        else:
            assert value == pytest.approx(their_value, rel=0.5, abs=64), name


@pytest.mark.parametrize("boot", [True, False])
@pytest.mark.parametrize("limit", [1024, "infinity"])
def test_process_metrics_text_is_what_encoding_their_families_writes(
    monkeypatch: pytest.MonkeyPatch, boot: bool, limit: int | str
) -> None:
    """`ProcessMetrics.text` writes the text of `collect()`'s families itself: the same
    bytes in both formats, from the same figures, whichever families are shown (no
    start time without a boot time, no limit on open files where there is none)."""
    import resource

    from host_pm_exporter.readers.process import ProcessStat

    metrics = ProcessMetrics()
    if not boot:
        metrics._boot = None
    stats = [
        ProcessStat(12.345678, 4321, 1 << 40, 123456789, 17),
        ProcessStat(12.345678, 4321, 1 << 40, 123456789, 17),  # the same again: the text written last
        ProcessStat(13.0, 4321, (1 << 40) + 4096, 123456789, 18),  # some changed
        ProcessStat(0.5, 99, 0, 10**300, 0),  # every one, to the edges of the number format
    ]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    no_limit = (resource.RLIM_INFINITY, hard)
    monkeypatch.setattr(resource, "getrlimit", lambda _: no_limit if limit == "infinity" else (limit, hard))
    for stat in stats:
        monkeypatch.setattr(metrics._self, "read", lambda stat=stat: stat)
        families = metrics.collect()
        assert len(families) == 4 + boot + (limit != "infinity")
        for openmetrics in (False, True):
            assert metrics.text(openmetrics) == encode_text(families, openmetrics), stat
    monkeypatch.setattr(metrics._self, "read", lambda: stats[0])
    assert "process_cpu_seconds_total 12.345678\n" in metrics.text(False)
    monkeypatch.setattr(metrics._self, "read", lambda: None)
    assert metrics.collect() == []
    assert metrics.text(True) == ""


def test_the_exporters_own_figures_may_be_written_before_the_host_is_read() -> None:
    """The server writes them as a scrape starts (`Exposition.runtime_text`) and gives
    them to `body`; without them `body` writes them itself.  A name[] filter, or an
    escaping that rewrites names, encodes every family at once instead."""
    exposition = make_exposition(parse_config([*fixture_args("server-s3"), "--pm.probes=kernel"]))
    plan = exposition.plan()
    snap = exposition.readings.read(plan.collectors, plan.probes)
    runtime = exposition.runtime_text(plan, False, "underscores", "1.0.0")
    assert runtime is not None
    assert runtime[0].startswith("# HELP process_virtual_memory_bytes ")
    given = exposition.body(plan, snap, False, "underscores", "1.0.0", runtime=["# given\n"])
    assert given.startswith(b"# given\n# HELP host_")
    assert b"process_" not in given
    written = exposition.body(plan, snap, False, "underscores", "1.0.0")
    assert written.startswith(b"# HELP process_virtual_memory_bytes ")
    filtered = exposition.plan(["host_pm_supported"])
    assert exposition.runtime_text(filtered, False, "underscores", "1.0.0") is None
    assert exposition.runtime_text(plan, True, "dots", "1.0.0") is None
    # where the families are encoded at once, a runtime text given is not used
    alone = exposition.body(filtered, snap, False, "underscores", "1.0.0", runtime=["# given\n"])
    assert alone == exposition.body(filtered, snap, False, "underscores", "1.0.0")
    assert b"# given" not in alone
    assert b"process_" not in alone


def test_a_scrape_does_not_load_prometheus_client() -> None:
    """It costs the process 3 MiB; the default scrape does without it."""
    code = (
        "import sys\n"
        "from host_pm_exporter.cli import parse_config\n"
        "from host_pm_exporter.wiring import make_exposition\n"
        "from host_pm_exporter.web import Routes\n"
        f"config = parse_config({[*fixture_args('spr-2s'), '--pm.probes=kernel']!r})\n"
        "routes = Routes(make_exposition(config), '/metrics')\n"
        "body = routes.metrics('application/openmetrics-text;version=1.0.0', 'gzip', '').body\n"
        "assert body, 'a scrape'\n"
        "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))\n"
    )
    out = fresh_python(code)
    assert out.strip() == "[]"


def test_a_name_filter_on_prometheus_clients_own_metrics() -> None:
    served = routes("server-s3", "--web.exporter-metrics=all")
    got = samples(served.metrics("", "", "name[]=python_info&name[]=process_open_fds").body.decode())
    assert {k.split("{")[0] for k in got} == {"python_info", "process_open_fds"}


def test_the_textfile_is_never_written_through_a_link(tmp_path: Path) -> None:
    from host_pm_exporter.wiring import write_textfile

    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    path = tmp_path / "host_pm_exporter.prom"
    (tmp_path / f"host_pm_exporter.prom.{os.getpid()}.tmp").symlink_to(victim)
    write_textfile(str(path), b"host_exporter_build_info 1\n")
    assert victim.read_text() == "keep me\n"
    assert path.read_bytes() == b"host_exporter_build_info 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host_pm_exporter.prom", "victim"]


BODY_ARGS = [f"--collector.{c.name}" for c in REGISTRY] + ["--collector.cpu.flags-include=.*", "--pm.probes=kernel",
                                                           "--web.exporter-metrics=none"]  # fmt: skip


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_the_scrape_body_is_its_families_encoded_scrape_after_scrape(openmetrics: bool) -> None:
    """`Exposition.body` gives a collector's text of the scrape before when its facts
    are equal: byte for byte what encoding the scrape's families gives, on every fixture
    host read in turn by one exposition (each host's facts differ from the last's)."""
    exposition = make_exposition(parse_config([*fixture_args(HOSTS[0]), *BODY_ARGS]))
    plan = exposition.plan(None)
    for host in [*HOSTS, HOSTS[0]]:
        readings = make_exposition(parse_config([*fixture_args(host), *BODY_ARGS])).readings
        for _ in range(2):  # the second reading's facts are equal: the texts are the memo's
            snap = readings.read(plan.collectors, plan.probes)
            body = exposition.body(plan, snap, openmetrics, "underscores", "1.0.0")
            assert body == encode(exposition.render(plan, snap), openmetrics), host
    assert exposition.body(plan, snap, openmetrics, "dots", "1.0.0") == encode(
        exposition.render(plan, snap), openmetrics, "dots"
    )


@pytest.mark.parametrize("durations", [False, True])
def test_a_renderer_that_fails_on_new_facts_costs_its_collector_in_the_body(durations: bool) -> None:
    from host_pm_exporter.collectors.base import Collector as Spec
    from host_pm_exporter.facts import HostSnapshot, Section
    from host_pm_exporter.reading import GivenSnapshot
    from host_pm_exporter.views.exposition import Exposition

    def families(value: int) -> Iterator[Family]:
        if value < 0:
            raise RuntimeError("a renderer bug")
        yield Gauge("host_test_value", "A value.", value=value)

    spec = Spec("test", "a test collector", gather=lambda facts: 0, families=families, metrics=("host_test_value",))
    exposition = Exposition(GivenSnapshot(HostSnapshot()), (spec,), (), durations)
    plan = exposition.plan(None)
    for value, shown in ((1, True), (1, True), (-1, False), (-1, False), (2, True)):
        snap = HostSnapshot()
        snap.sections["test"] = Section(value, None, 0.001 * (value + 2), {"malformed": 1} if value == 2 else {})
        body = exposition.body(plan, snap, False, "underscores", "1.0.0")
        assert body == encode(exposition.render(plan, snap), False)
        assert ("host_test_value" in samples(body.decode())) is shown
        assert samples(body.decode())['host_exporter_collector_success{collector="test"}'] == float(shown)
