"""Every manifest the chart renders, validated by the tools a cluster would use.

Core objects go through ``kubernetes-validate --strict -k 1.30`` (misspelt or unknown fields
fail); ServiceMonitor, PodMonitor, Probe and PrometheusRule through the Prometheus Operator models
of ``cloudcoil-models-prometheus-operator``, with a round trip that notices any field the
model does not know (pydantic would otherwise drop it silently). Each check is also shown
to fail on a broken manifest, so a green run means something.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import (
    PodMonitor,
    Probe,
    PrometheusRule,
    ServiceMonitor,
)

from tests.helm.chart import VALID, Doc, load_values, render_docs

KUBERNETES = "1.30"
OPERATOR_MODELS: dict[str, Any] = {
    "ServiceMonitor": ServiceMonitor,
    "PodMonitor": PodMonitor,
    "Probe": Probe,
    "PrometheusRule": PrometheusRule,
}
# Renderings beyond the fixtures, for templates the fixtures leave at their defaults.
EXTRA: dict[str, dict[str, Any]] = {
    "network-policy-defaults": {"networkPolicy": {"enabled": True}},
    "created-secret-and-podmonitor": {
        "adminKey": {"create": True, "value": "sk-admin-manifest-test"},
        "serviceMonitor": {"enabled": False},
        "podMonitor": {"enabled": True},
    },
    "organizations-through-the-podmonitor": {
        "organizations": [
            {"name": "prod", "existingSecret": "openai-admin-key-prod"},
            {"name": "staging", "existingSecret": "openai-admin-key-staging"},
        ],
        "probe": {"enabled": False},
        "serviceMonitor": {"enabled": False},
        "podMonitor": {"enabled": True},
    },
}


def renderings() -> Iterator[tuple[str, dict[str, Any] | None]]:
    yield "defaults", None
    for path in VALID:
        yield path.stem, load_values(path)
    yield from EXTRA.items()


@pytest.fixture(scope="module")
def rendered_docs(chart: helm_python.Chart) -> dict[str, list[Doc]]:
    """Rendering name to the documents it produced (NOTES.txt left out)."""
    return {name: render_docs(chart, values) for name, values in renderings()}


def is_operator_object(doc: Doc) -> bool:
    return str(doc["apiVersion"]).startswith("monitoring.coreos.com/")


def kubernetes_validate(files: list[Path]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    return subprocess.run(
        [tool, "--strict", "-k", KUBERNETES, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_every_core_manifest_passes_strict_kubernetes_validation(
    rendered_docs: dict[str, list[Doc]], tmp_path: Path
) -> None:
    files: list[Path] = []
    for name, docs in rendered_docs.items():
        for index, doc in enumerate(docs):
            if is_operator_object(doc):
                continue
            path = tmp_path / f"{name}-{index:02d}-{doc['kind']}.yaml"
            path.write_text(yaml.safe_dump(doc), encoding="utf-8")
            files.append(path)
    kinds = {path.name.rsplit("-", 1)[1].removesuffix(".yaml") for path in files}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "Pod",
        "Secret",
        "Service",
        "ServiceAccount",
    }
    result = kubernetes_validate(files)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if not line.startswith("INFO ")], result.stdout
    for path in files:
        assert any(line.startswith(f"INFO {path} passed") for line in lines), (
            f"{path.name} was not validated"
        )
    assert len(files) >= 50, len(files)


def test_strict_validation_has_teeth(rendered_docs: dict[str, list[Doc]], tmp_path: Path) -> None:
    deployment = next(d for d in rendered_docs["defaults"] if d["kind"] == "Deployment")
    security = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFilesytem"] = security.pop("readOnlyRootFilesystem")
    path = tmp_path / "misspelt.yaml"
    path.write_text(yaml.safe_dump(deployment), encoding="utf-8")
    result = kubernetes_validate([path])
    assert result.returncode != 0
    assert "readOnlyRootFilesytem" in result.stdout


def assert_nothing_dropped(original: Any, dumped: Any, where: str) -> None:
    """Everything in the manifest survives the model (defaults the model adds are fine)."""
    if isinstance(original, dict):
        assert isinstance(dumped, dict), where
        for key, value in original.items():
            assert key in dumped, f"{where}/{key} is not a field of the model"
            assert_nothing_dropped(value, dumped[key], f"{where}/{key}")
    elif isinstance(original, list):
        assert isinstance(dumped, list), where
        assert len(original) == len(dumped), where
        for index, (left, right) in enumerate(zip(original, dumped, strict=True)):
            assert_nothing_dropped(left, right, f"{where}/{index}")
    else:
        assert original == dumped, where


def validate_operator_object(doc: Doc) -> None:
    model = OPERATOR_MODELS[doc["kind"]]
    parsed = model.model_validate(doc)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert_nothing_dropped(doc, dumped, doc["kind"])


def test_operator_objects_validate_against_the_prometheus_operator_models(
    rendered_docs: dict[str, list[Doc]],
) -> None:
    seen: dict[str, int] = {}
    for docs in rendered_docs.values():
        for doc in docs:
            if is_operator_object(doc):
                validate_operator_object(doc)
                seen[doc["kind"]] = seen.get(doc["kind"], 0) + 1
    assert set(seen) == set(OPERATOR_MODELS), seen
    assert sum(seen.values()) >= 10, seen


@pytest.mark.parametrize(
    ("kind", "breakage", "complaint"),
    [
        ("ServiceMonitor", ("endpoints", "intervall"), "is not a field of the model"),
        ("ServiceMonitor", ("endpoints", "interval", "90 seconds"), "should match pattern"),
        ("PrometheusRule", ("groups", "fore"), "is not a field of the model"),
    ],
)
def test_operator_validation_has_teeth(
    rendered_docs: dict[str, list[Doc]], kind: str, breakage: tuple[str, ...], complaint: str
) -> None:
    doc = next(d for d in rendered_docs["defaults"] if d["kind"] == kind)
    listed, field, *value = breakage
    first = doc["spec"][listed][0]
    target = first["rules"][0] if kind == "PrometheusRule" else first
    target[field] = value[0] if value else "1m"
    with pytest.raises(Exception, match=re.escape(complaint)):
        validate_operator_object(doc)


@pytest.mark.parametrize(
    ("where", "field", "value", "complaint"),
    [
        (("prober",), "pathh", "/probe", "is not a field of the model"),
        (("targets", "staticConfig"), "statics", ["prod"], "is not a field of the model"),
        ((), "interval", "every minute", "should match pattern"),
    ],
)
def test_probe_validation_has_teeth(
    rendered_docs: dict[str, list[Doc]],
    where: tuple[str, ...],
    field: str,
    value: Any,
    complaint: str,
) -> None:
    doc = next(d for d in rendered_docs["organizations-probe-values"] if d["kind"] == "Probe")
    target = doc["spec"]
    for key in where:
        target = target[key]
    target[field] = value
    with pytest.raises(Exception, match=re.escape(complaint)):
        validate_operator_object(doc)
