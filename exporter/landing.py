"""The landing page at ``/``: what this is, where the metrics are, how it is doing."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from exporter import __version__


@dataclass(frozen=True)
class LandingStatus:
    telemetry_path: str
    snapshot_age: float | None
    projects: int
    keys: int
    last_result: str | None
    last_error: str | None
    demo: bool


def render_landing(status: LandingStatus) -> str:
    age = "no snapshot yet" if status.snapshot_age is None else f"{status.snapshot_age:.0f} s"
    error = escape(status.last_error) if status.last_error else "none"
    demo = (
        '<p class="demo"><strong>Demo mode:</strong> serving a simulated organization, '
        "not the OpenAI API.</p>"
        if status.demo
        else ""
    )
    path = escape(status.telemetry_path, quote=True)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>OpenAI Key Exporter</title>
<style>
body {{ font-family: sans-serif; max-width: 48em; margin: 2em auto; padding: 0 1em; }}
.demo {{ background: #fff3cd; padding: 0.5em 1em; border: 1px solid #e0c36a; }}
th {{ text-align: left; padding-right: 1em; }}
</style>
</head>
<body>
<h1>OpenAI Key Exporter</h1>
<p>Version {escape(__version__)}. Prometheus metrics for the project API keys of an OpenAI
organization.</p>
{demo}
<p><a href="{path}">Metrics</a> &middot; <a href="/healthz">Health</a> &middot;
<a href="/readyz">Readiness</a></p>
<table>
<tr><th>Snapshot age</th><td>{age}</td></tr>
<tr><th>Projects</th><td>{status.projects}</td></tr>
<tr><th>API keys</th><td>{status.keys}</td></tr>
<tr><th>Last refresh</th><td>{escape(status.last_result or "not yet")}</td></tr>
<tr><th>Last error</th><td>{error}</td></tr>
</table>
</body>
</html>
"""
