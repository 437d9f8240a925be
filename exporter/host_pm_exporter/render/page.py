"""The landing page at ``/``."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from host_pm_exporter import __version__


def landing_page(telemetry_path: str, collectors: Sequence[str], probes: Sequence[str]) -> bytes:
    path = escape(telemetry_path, quote=True)
    items = "".join(f"<li><code>{escape(c)}</code></li>" for c in collectors) or "<li>none</li>"
    probe_items = "".join(f"<li><code>{escape(p)}</code></li>" for p in probes) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>host-pm-exporter</title>
<style>body{{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.4}}
code{{background:#f2f2f2;padding:0 .2em}}</style></head>
<body>
<h1>host-pm-exporter</h1>
<p>Which ACPI sleep states this host really supports (S1, s2idle, S3, S4, hybrid,
suspend-then-hibernate), as Prometheus metrics.</p>
<ul>
<li><a href="{path}">Metrics</a> (<code>{path}</code>)</li>
<li><a href="/healthz">Health</a> (<code>/healthz</code>)</li>
</ul>
<h2>Collectors</h2><ul>{items}</ul>
<h2>Sleep probes</h2><ul>{probe_items}</ul>
<p>Version {escape(__version__)}</p>
</body>
</html>
""".encode()
