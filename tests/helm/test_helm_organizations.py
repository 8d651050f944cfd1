"""Several organizations from one release (``organizations:``), driven by the real Helm engine.

The rendered config file and the key mounts, read by the real exporter as the kubelet would
lay them out; the Probe (or one ServiceMonitor / PodMonitor endpoint per organization) with
the labels the README's scrape_configs example gives; TLS and basic auth reaching those
monitors; the ``helm test`` pod and NOTES.txt of this mode. The invalid fixtures of
``ci/invalid/organization*.yaml`` are checked with the others in ``test_helm_chart.py``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.organizations.loading import load_organizations
from tests.helm import kubelet
from tests.helm.chart import (
    NAMESPACE,
    RELEASE,
    ROOT,
    Doc,
    documents,
    fixture_values,
    only,
    render,
)

CONFIG_FILE = "/etc/openai-key-exporter/organizations/organizations.yml"
KEYS_DIR = "/run/secrets/openai"
SERVICE = f"{RELEASE}-openai-key-exporter.{NAMESPACE}.svc"
ORGANIZATION_RELABELINGS = [
    {"action": "replace", "sourceLabels": ["__param_target"], "targetLabel": "organization"},
    {"action": "replace", "sourceLabels": ["__param_target"], "targetLabel": "instance"},
]
JOB = {"action": "replace", "targetLabel": "job", "replacement": "openai-key-exporter"}
TWO = {
    "organizations": [
        {"name": "prod", "existingSecret": "openai-admin-key-prod"},
        {"name": "staging", "existingSecret": "openai-admin-key-staging"},
    ]
}


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = only(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def exporter_container(docs: list[Doc]) -> Doc:
    (container,) = pod_spec(docs)["containers"]
    assert isinstance(container, dict)
    return container


def config_file(docs: list[Doc]) -> Any:
    config_map = only(docs, "ConfigMap", f"{RELEASE}-openai-key-exporter-organizations")
    return yaml.safe_load(config_map["data"]["organizations.yml"])


def docs_of(chart: helm_python.Chart, values: dict[str, Any]) -> list[Doc]:
    return documents(render(chart, values))


# --- the config file and the keys ---------------------------------------------------------


def test_config_file_names_each_organization_with_only_the_values_given(
    chart: helm_python.Chart,
) -> None:
    """Values left out are left out of the file, so they fall back to the chart's settings
    (the exporter's flags and environment)."""
    docs = docs_of(chart, fixture_values("organizations-probe"))
    assert config_file(docs) == {
        "organizations": [
            {"name": "prod", "admin_key_file": f"{KEYS_DIR}/prod/admin-key"},
            {
                "name": "staging",
                "admin_key_file": f"{KEYS_DIR}/staging/admin-key",
                "collectors": {"usage": False, "service_accounts": True},
            },
            {
                "name": "research_lab",
                "admin_key_file": f"{KEYS_DIR}/research_lab/admin-key",
                "base_url": "https://api.openai.com/v1",
                "project_include": "^team-",
                "project_exclude": "sandbox",
                "include_archived": True,
            },
        ]
    }


def test_an_explicit_false_reaches_the_config_file(chart: helm_python.Chart) -> None:
    """includeArchived: false overrides openai.includeArchived: true, so it is written."""
    values = {
        "openai": {"includeArchived": True},
        "organizations": [{"name": "prod", "existingSecret": "k", "includeArchived": False}],
    }
    (entry,) = config_file(docs_of(chart, values))["organizations"]
    assert entry["include_archived"] is False


def test_each_key_is_mounted_read_only_in_a_directory_of_its_own(
    chart: helm_python.Chart,
) -> None:
    docs = docs_of(chart, fixture_values("organizations-probe"))
    container = exporter_container(docs)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"OPENAI_EXPORTER_CONFIG_FILE": CONFIG_FILE}  # no OPENAI_ADMIN_KEY_FILE
    assert container["volumeMounts"] == [
        {
            "name": "organizations",
            "mountPath": "/etc/openai-key-exporter/organizations",
            "readOnly": True,
        },
        {"name": "organization-keys", "mountPath": KEYS_DIR, "readOnly": True},
    ]
    volumes = {volume["name"]: volume for volume in pod_spec(docs)["volumes"]}
    assert set(volumes) == {"organizations", "organization-keys"}  # no single admin key
    keys = volumes["organization-keys"]["projected"]
    assert keys["defaultMode"] == 0o440
    assert [source["secret"] for source in keys["sources"]] == [
        {
            "name": "openai-admin-key-prod",
            "items": [{"key": "admin-key", "path": "prod/admin-key"}],
        },
        {"name": "openai-admin-keys", "items": [{"key": "staging", "path": "staging/admin-key"}]},
        {
            "name": "openai-admin-keys",
            "items": [{"key": "research", "path": "research_lab/admin-key"}],
        },
    ]
    assert "Secret" not in {doc["kind"] for doc in docs}  # the chart creates no key Secret


def test_the_exporter_reads_each_organizations_own_key_where_the_chart_mounts_it(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    """As the kubelet lays the volumes out: the real exporter accepts the rendered
    environment and config file, and each organization's key file holds its own key."""
    docs = docs_of(chart, fixture_values("organizations-probe"))
    cluster = kubelet.cluster_for(docs, pki)
    status, stderr = kubelet.finish_check_config(
        kubelet.start_check_config(docs, cluster, tmp_path / "check")
    )
    assert status == 0, stderr
    mounted = kubelet.mount(pod_spec(docs), exporter_container(docs), cluster, tmp_path / "read")
    loaded = load_organizations(mounted.path(CONFIG_FILE))
    names = [organization.name for organization in loaded.organizations]
    assert names == ["prod", "staging", "research_lab"]
    for organization in loaded.organizations:
        assert organization.admin_key_file is not None
        key = organization.admin_key_file.read_bytes()
        assert key == kubelet.organization_key(organization.name)


def test_the_exporter_check_has_teeth(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    """A config file naming one key file twice, as a hand edit of the ConfigMap could, is
    refused by the exporter at start with the organizations' names."""
    docs = docs_of(chart, TWO)
    config_map = only(docs, "ConfigMap", f"{RELEASE}-openai-key-exporter-organizations")
    text = config_map["data"]["organizations.yml"]
    config_map["data"]["organizations.yml"] = text.replace("/staging/admin-key", "/prod/admin-key")
    status, stderr = kubelet.finish_check_config(
        kubelet.start_check_config(docs, kubelet.cluster_for(docs, pki), tmp_path)
    )
    assert status == 2
    assert "'prod'" in stderr
    assert "'staging'" in stderr
    assert "sk-admin" not in stderr


def test_a_missing_organization_key_fails_the_mount(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    docs = docs_of(chart, TWO)
    cluster = kubelet.cluster_for(docs, pki)
    cluster.secrets["openai-admin-key-staging"] = {"other-key": b"sk-admin-x\n"}
    with pytest.raises(kubelet.MountError, match="has no key 'admin-key'"):
        kubelet.start_check_config(docs, cluster, tmp_path)


def test_a_config_file_change_rolls_the_pod(chart: helm_python.Chart) -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = only(docs_of(chart, values), "Deployment")["spec"]["template"][
            "metadata"
        ]["annotations"]
        return found

    base = annotations(TWO)
    assert set(base) == {"checksum/config", "checksum/organizations"}
    renamed = {"organizations": [*TWO["organizations"], {"name": "lab", "existingSecret": "x"}]}
    assert annotations(renamed)["checksum/organizations"] != base["checksum/organizations"]
    assert annotations(renamed)["checksum/config"] == base["checksum/config"]


def test_organization_collectors_are_exactly_the_exporters(schema: dict[str, Any]) -> None:
    """An organization switches the same collectors as the chart, none of them required."""
    node = schema["definitions"]["organizationCollectors"]
    assert node["additionalProperties"] is False
    assert node["properties"] == {name: {"type": "boolean"} for name in COLLECTOR_NAMES}
    assert "required" not in node


# --- scraping each organization -----------------------------------------------------------


def test_the_probe_scrapes_each_organization_through_the_service(
    chart: helm_python.Chart,
) -> None:
    docs = docs_of(chart, fixture_values("organizations-probe"))
    probe = only(docs, "Probe")
    assert probe["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = probe["spec"]
    service = only(docs, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert spec["prober"] == {
        "url": f"{service['metadata']['name']}.{NAMESPACE}.svc:{port}",
        "path": "/probe",
        "scheme": "http",
    }
    assert spec["jobName"] == "openai-key-exporter"  # the job the alert rules select on
    assert spec["interval"] == "2m"
    static = spec["targets"]["staticConfig"]
    assert static["static"] == ["prod", "staging", "research_lab"]
    assert static["relabelingConfigs"] == [
        *ORGANIZATION_RELABELINGS,
        {"targetLabel": "environment", "replacement": "production"},
    ]
    assert spec["metricRelabelings"][0]["action"] == "drop"
    # The ServiceMonitor keeps scraping the exporter's own metrics, and only those.
    (endpoint,) = only(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"


def test_names_that_look_like_numbers_stay_strings(chart: helm_python.Chart) -> None:
    values = {"organizations": [{"name": "2024", "existingSecret": "k"}]}
    docs = docs_of(chart, values)
    assert only(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"] == ["2024"]
    assert config_file(docs)["organizations"][0]["name"] == "2024"


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_without_the_probe_each_organization_is_an_endpoint_of_the_monitor(
    chart: helm_python.Chart, kind: str
) -> None:
    values: dict[str, Any] = dict(fixture_values("organizations-servicemonitor"))
    if kind == "PodMonitor":
        values |= {"serviceMonitor": {"enabled": False}, "podMonitor": {"enabled": True}}
    docs = docs_of(chart, values)
    assert "Probe" not in {doc["kind"] for doc in docs}
    field = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    own, *organizations = only(docs, kind)["spec"][field]
    assert own["path"] == "/metrics"
    assert "params" not in own
    assert [endpoint["params"] for endpoint in organizations] == [
        {"target": ["prod"]},
        {"target": ["staging"]},
    ]
    extra = [{"targetLabel": "cluster", "replacement": "eu-1"}] if kind == "ServiceMonitor" else []
    for endpoint in organizations:
        assert endpoint["path"] == "/probe"
        assert endpoint["port"] == "http"
        assert endpoint["relabelings"] == [JOB, *ORGANIZATION_RELABELINGS, *extra]
        assert (endpoint["interval"], endpoint["scrapeTimeout"]) == (
            own["interval"],
            own["scrapeTimeout"],
        )


def test_tls_and_basic_auth_reach_every_scrape_of_an_organization(
    chart: helm_python.Chart,
) -> None:
    values = fixture_values("organizations-tls")
    probe = only(docs_of(chart, values), "Probe")["spec"]
    assert probe["prober"]["scheme"] == "https"
    assert probe["tlsConfig"] == values["probe"]["tlsConfig"]
    assert probe["basicAuth"] == values["probe"]["basicAuth"]
    values["probe"] = {"enabled": False}
    own, *organizations = only(docs_of(chart, values), "ServiceMonitor")["spec"]["endpoints"]
    assert len(organizations) == 2
    for endpoint in organizations:
        for field in ("scheme", "tlsConfig", "basicAuth"):
            assert endpoint[field] == own[field], field
        assert endpoint["scheme"] == "https"


def test_the_probe_needs_credentials_like_the_monitors(chart: helm_python.Chart) -> None:
    values = fixture_values("organizations-tls")
    del values["probe"]["basicAuth"]
    with pytest.raises(helm_python.HelmError, match=r"give probe\.basicAuth"):
        render(chart, values)


# --- the helm test pod, NOTES.txt ---------------------------------------------------------


def test_the_helm_test_pod_probes_every_organization(chart: helm_python.Chart) -> None:
    docs = docs_of(chart, fixture_values("organizations-tls"))
    test_pod = only(docs, "Pod")
    (check,) = test_pod["spec"]["containers"]
    env = {item["name"]: item["value"] for item in check["env"]}
    assert env["OKE_TEST_TARGETS"] == "prod,staging"
    assert env["OKE_TEST_PATH"] == "/metrics"
    script = check["command"][-1]
    assert 'get("/probe?target=" + target, authorization)' in script
    compile(script, "helm-test", "exec")
    # Without a ServiceMonitor in the namespace, it scrapes with the Probe's Secrets.
    values = fixture_values("organizations-tls") | {"serviceMonitor": {"enabled": False}}
    pod = only(docs_of(chart, values), "Pod")
    projected = pod["spec"]["volumes"][0]["projected"]["sources"]
    names = {source["secret"]["name"] for source in projected}
    assert names == {"openai-key-exporter-tls", "openai-key-exporter-scrape"}


def test_notes_tell_how_to_create_each_key_and_reach_each_organization(
    chart: helm_python.Chart,
) -> None:
    notes = render(chart, fixture_values("organizations-probe"))["NOTES.txt"]
    assert "It serves 3 organizations" in notes
    for secret, key, name in (
        ("openai-admin-key-prod", "admin-key", "prod"),
        ("openai-admin-keys", "staging", "staging"),
        ("openai-admin-keys", "research", "research_lab"),
    ):
        assert (
            f"kubectl -n {NAMESPACE} create secret generic {secret} "
            f"--from-file={key}=./{name}-admin-key"
        ) in notes
    assert "curl -s 'http://127.0.0.1:9471/probe?target=prod'" in notes
    assert f"through Probe {RELEASE}-openai-key-exporter" in notes
    assert "openai-admin-key " not in notes  # the single-organization Secret is not asked for


# --- growth beyond one exporter -----------------------------------------------------------

SHARDED_EXAMPLE_MARK = "<!-- example:sharded-scrape-config -->"


def test_the_documented_sharded_scrape_config_is_one_prometheus_accepts(tmp_path: Path) -> None:
    """docs/deployment.md's hashmod example, checked by promtool; it hashes the
    organization name, not the exporter's address, so organizations spread over shards."""
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    after = docs.split(SHARDED_EXAMPLE_MARK, 1)[1]
    match = re.match(r"\s*```yaml\n(.*?)```", after, re.DOTALL)
    assert match, f"no yaml block after {SHARDED_EXAMPLE_MARK} in docs/deployment.md"
    config = tmp_path / "prometheus.yml"
    config.write_text(match.group(1), encoding="utf-8")
    checked = subprocess.run(
        ["promtool", "check", "config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (job,) = yaml.safe_load(match.group(1))["scrape_configs"]
    (hashmod,) = [step for step in job["relabel_configs"] if step.get("action") == "hashmod"]
    assert hashmod["source_labels"] == ["__param_target"]
