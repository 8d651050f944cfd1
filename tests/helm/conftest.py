"""Fixtures of the Helm suites. Helpers live in ``tests/helm/chart.py`` and
``tests/helm/kubelet.py``; tests import those, never this file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import helm_python
import pytest

from tests.helm import kubelet
from tests.helm.chart import CHART_DIR, Doc, render_docs


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    """The chart loaded once by the real Helm engine (from the repository, symlinks and all)."""
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def default_docs(chart: helm_python.Chart) -> list[Doc]:
    """The objects of a release with the default values."""
    return render_docs(chart)


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="session")
def pki() -> kubelet.Pki:
    """One internal CA for the whole run: the exporter's and the clients' certificates."""
    return kubelet.Pki()
