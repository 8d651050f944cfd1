"""The landing page at ``/``: what this is, where the metrics are, and each collector's
state (one organization) or each organization's, with the link to its probe."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from exporter import __version__


@dataclass(frozen=True)
class CollectorStatus:
    name: str
    age: float | None  # seconds since its state was taken; None: no state yet
    summary: str | None  # what the state holds, in a few words
    last_result: str | None
    last_error: str | None


@dataclass(frozen=True)
class OrganizationStatus:
    name: str
    probe: str  # the URL of its metrics
    age: float | None  # seconds since its oldest state was taken; None: no state yet
    last_result: str | None  # over its collectors: success, partial or failure
    last_error: str | None
    up: bool


@dataclass(frozen=True)
class LandingStatus:
    telemetry_path: str
    collectors: tuple[CollectorStatus, ...]
    demo: bool
    # With --config.file: one per organization (then no collector rows).
    organizations: tuple[OrganizationStatus, ...] = ()


def _row(status: CollectorStatus) -> str:
    age = "no data yet" if status.age is None else f"{status.age:.0f} s"
    error = escape(status.last_error) if status.last_error else "none"
    return (
        f"<tr><th>{escape(status.name)}</th><td>{escape(status.summary or '-')}</td>"
        f"<td>{age}</td><td>{escape(status.last_result or 'not yet')}</td><td>{error}</td></tr>"
    )


def _organization_row(status: OrganizationStatus) -> str:
    age = "no data yet" if status.age is None else f"{status.age:.0f} s"
    error = escape(status.last_error) if status.last_error else "none"
    probe = escape(status.probe, quote=True)
    return (
        f'<tr><th><a href="{probe}">{escape(status.name)}</a></th>'
        f"<td>{'up' if status.up else 'down'}</td><td>{age}</td>"
        f"<td>{escape(status.last_result or 'not yet')}</td><td>{error}</td></tr>"
    )


def _collectors_section(status: LandingStatus) -> str:
    rows = "\n".join(_row(collector) for collector in status.collectors)
    names = ", ".join(escape(collector.name) for collector in status.collectors) or "none"
    return f"""<p>Enabled collectors: {names}.</p>
<table>
<tr><th>Collector</th><th>Holds</th><th>Data age</th><th>Last refresh</th><th>Last error</th></tr>
{rows}
</table>"""


def _organizations_section(status: LandingStatus) -> str:
    rows = "\n".join(_organization_row(organization) for organization in status.organizations)
    return f"""<p>Organizations: {len(status.organizations)}, each its own target at
<code>/probe?target=&lt;name&gt;</code>; the metrics link has the exporter's own.</p>
<table>
<tr><th>Organization</th><th>openai_up</th><th>Data age</th><th>Last refresh</th>\
<th>Last error</th></tr>
{rows}
</table>"""


def render_landing(status: LandingStatus) -> str:
    several = bool(status.organizations)
    demo = (
        f'<p class="demo"><strong>Demo mode:</strong> serving '
        f"{'simulated organizations' if several else 'a simulated organization'}, "
        "not the OpenAI API.</p>"
        if status.demo
        else ""
    )
    path = escape(status.telemetry_path, quote=True)
    section = _organizations_section(status) if several else _collectors_section(status)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>OpenAI Key Exporter</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }}
.demo {{ background: #fff3cd; padding: 0.5em 1em; border: 1px solid #e0c36a; }}
th, td {{ text-align: left; padding-right: 1em; vertical-align: top; }}
</style>
</head>
<body>
<h1>OpenAI Key Exporter</h1>
<p>Version {escape(__version__)}. Prometheus metrics for the credentials of an OpenAI
organization, read from its Admin API.</p>
{demo}
<p><a href="{path}">Metrics</a> &middot; <a href="/healthz">Health</a> &middot;
<a href="/readyz">Readiness</a></p>
{section}
</body>
</html>
"""
