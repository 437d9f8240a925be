"""The page at ``/``: the host's sleep states, wake sources, CPU and collector health for
a person.  Server-rendered HTML, no script, no external assets, readable on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from host_pm_exporter import __version__
from host_pm_exporter.views.report import LABEL, Report

_STYLE = """body{font-family:system-ui,sans-serif;max-width:52em;margin:1em auto;padding:0 .8em;line-height:1.4}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35em .4em;text-align:left;
vertical-align:top}.yes{color:#176b2c;font-weight:600}.no{color:#a1261b;font-weight:600}.maybe{color:#8a5a00;
font-weight:600}code{background:#f2f2f2;padding:0 .2em}small{color:#555}@media(max-width:40em){td,th{display:block}
th{border:0;padding-top:.8em}tr.head{display:none}}"""


def _verdict(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    if value is None:
        return '<span class="maybe">unknown</span>'
    return f'<span class="yes">{yes}</span>' if value else f'<span class="no">{no}</span>'


def _health(errors: dict[str, str | None], ok: str, failed: str, absent: frozenset[str] = frozenset()) -> str:
    """A list item per collector or probe: its verdict, and its error where it has one;
    a probe whose tool is not installed says so, in no failure's colour."""
    return "".join(
        f"<li><code>{escape(name)}</code> "
        + ('<span class="maybe">not installed</span>' if name in absent else _verdict(error is None, ok, failed))
        + (f" <small>{escape(error)}</small>" if error else "")
        + "</li>"
        for name, error in errors.items()
    )


def status_page(report: Report, telemetry_path: str, collectors: Sequence[str], probes: Sequence[str]) -> bytes:
    path = escape(telemetry_path, quote=True)
    rows = []
    for row in report.states:
        ready = _verdict(row.ready, "ready", "not ready") if row.supported else "—"
        why = "; ".join(escape(w) for w in row.why) or "—"
        answers = ", ".join(f"{escape(p)}: {escape(a)}" for p, a in row.probes.items()) or "—"
        rows.append(
            f"<tr><th>{escape(LABEL[row.state])}</th><td>{_verdict(row.supported)}</td><td>{ready}</td>"
            f"<td>{why}</td><td><small>{answers}</small></td></tr>"
        )
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in report.facts.items())
    health = _health(report.collectors, "ok", "failed")
    probe_health = _health(report.probes, "answered", "no answer", report.absent)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>host-pm-exporter</title><style>{_STYLE}</style></head>
<body>
<h1>host-pm-exporter</h1>
<p>Which sleep states this host really supports and can use now, read from the kernel on
this request. <a href="{path}">Metrics</a> (<code>{path}</code>) ·
<a href="/capabilities">Capabilities</a> (libvirt XML) · <a href="/healthz">Health</a></p>
<h2>Sleep states</h2>
<table id="states"><tr class="head"><th>State</th><th>Supported</th><th>Ready</th><th>Why not</th>
<th>Other tools say</th></tr>
{"".join(rows)}</table>
<h2>Host</h2>
<table id="facts">{facts or "<tr><td>no CPU facts</td></tr>"}</table>
<h2>Collectors</h2><ul id="collectors">{health or "<li>none</li>"}</ul>
<h2>Probes</h2><ul id="probes">{probe_health or "<li>none</li>"}</ul>
<p><small>Collectors enabled: {escape(", ".join(collectors)) or "none"}; probes: {escape(", ".join(probes)) or "none"};
version {escape(__version__)}</small></p>
</body>
</html>
""".encode()
