"""The chart under test: where it lives, how a release is rendered, and the rendered objects.

Plain helpers shared by the Helm suites (``tests/helm/conftest.py`` holds the fixtures).
Every rendering uses the same release name and namespace, so names in assertions are stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "openai-key-exporter"
CI_DIR = CHART_DIR / "ci"
VALID = sorted(CI_DIR.glob("*-values.yaml"))
INVALID = sorted((CI_DIR / "invalid").glob("*.yaml"))
RELEASE = "keys"
NAMESPACE = "openai"
PREFIX = "openai-key-exporter/templates/"

Doc = dict[str, Any]


def load_values(path: Path) -> dict[str, Any]:
    """A values file parsed by Helm's own YAML reader, as ``helm -f`` would."""
    return helm_python.values_from_yaml(path.read_text(encoding="utf-8"))


def fixture_values(name: str) -> dict[str, Any]:
    """The values of ``ci/<name>-values.yaml`` (or of ``ci/<name>`` given a file name)."""
    return load_values(CI_DIR / (name if name.endswith(".yaml") else f"{name}-values.yaml"))


def render(chart: helm_python.Chart, values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path (without the chart prefix) to rendered text; disabled templates dropped."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return {path.removeprefix(PREFIX): text for path, text in rendered.items() if text.strip()}


def documents(rendered: dict[str, str]) -> list[Doc]:
    """The Kubernetes objects of a rendering (NOTES.txt is text, not an object)."""
    return [
        doc
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def render_docs(chart: helm_python.Chart, values: dict[str, Any] | None = None) -> list[Doc]:
    return documents(render(chart, values))


def only(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    """The one object of ``kind`` (named ``name``, when given)."""
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]
