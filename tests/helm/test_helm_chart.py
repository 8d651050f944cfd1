"""The Helm chart, driven by the real Helm engine (PyPI ``helm-python-sdk``).

Lint, the strict values schema, the values fixtures of ``ci/`` (valid ones render, invalid
ones are refused with their expected message), the hardened pod, the admin key handling, the
wiring of Service and monitors, and the exporter itself accepting the settings the chart
renders (``--check-config``, with every Secret it mounts written where the kubelet would put
it). Validation of the rendered manifests against Kubernetes and Prometheus Operator schemas
is in ``test_helm_manifests.py``; rules and dashboards in ``test_helm_rules_dashboards.py``;
the protected /metrics (web config, TLS, basic auth) in ``test_helm_web_config.py``.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

import exporter
from exporter.collectors.catalog import COLLECTOR_DEFAULTS, COLLECTOR_NAMES
from tests.helm import kubelet
from tests.helm.chart import (
    CHART_DIR,
    CI_DIR,
    INVALID,
    NAMESPACE,
    RELEASE,
    ROOT,
    VALID,
    Doc,
    documents,
    load_values,
    only,
    render,
)

SCHEMA_REF_PREFIX = "#/definitions/"


# --- helpers -------------------------------------------------------------------------------


def settings(docs: list[Doc]) -> dict[str, str]:
    """The data of the exporter's settings ConfigMap (the others hold dashboards)."""
    (config,) = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == _deployment_name(docs)
    ]
    data: dict[str, str] = config["data"]
    return data


def _deployment_name(docs: list[Doc]) -> str:
    name: str = only(docs, "Deployment")["metadata"]["name"]
    return name


def kinds(docs: list[Doc]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def container(docs: list[Doc]) -> Doc:
    (exporter,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(exporter, dict)
    return exporter


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    return first.removeprefix("# expect: ")


# --- lint, schema, values documentation ---------------------------------------------------


def test_lint_is_clean_with_defaults_and_every_fixture() -> None:
    reports = [helm_python.lint(CHART_DIR, strict=True, kube_version="v1.30.0")]
    reports += [
        helm_python.lint(CHART_DIR, load_values(path), strict=True, kube_version="v1.30.0")
        for path in VALID
    ]
    assert len(reports) == 1 + len(VALID) >= 6
    for report in reports:
        assert report["total_charts_linted"] == 1
        assert report["messages"] == []
        assert report["errors"] == []


def test_chart_metadata_follows_the_package(chart: helm_python.Chart) -> None:
    metadata = chart.metadata
    assert metadata["appVersion"] == exporter.__version__
    assert metadata["apiVersion"] == "v2"
    assert metadata["name"] == "openai-key-exporter"


def _object_nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _object_nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _object_nodes(value, f"{path}/{index}")


def test_schema_refuses_unknown_keys_everywhere(schema: dict[str, Any]) -> None:
    """Every object of the schema says what it admits: false, or a typed value schema for
    maps (labels, annotations, per-alert overrides). Only Helm's own `global` is open."""
    checked = 0
    for path, node in _object_nodes(schema, ""):
        if path == "/properties/global":
            continue
        assert "additionalProperties" in node, f"{path} admits any key"
        extra = node["additionalProperties"]
        assert extra is False or (isinstance(extra, dict) and extra), f"{path}: {extra!r}"
        checked += 1
    assert checked >= 50, checked


def _values_paths(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            yield child
            yield from _values_paths(value, child)


def _schema_node(schema: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: dict[str, Any] = schema
    for part in dotted.split("."):
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].removeprefix(SCHEMA_REF_PREFIX)]
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def test_values_and_schema_describe_the_same_keys(
    chart: helm_python.Chart, schema: dict[str, Any]
) -> None:
    values = chart.values
    paths = list(_values_paths(values))
    for dotted in paths:
        assert _schema_node(schema, dotted) is not None, f"{dotted} is not in the schema"

    def inline_properties(node: dict[str, Any], path: str) -> Iterator[str]:
        # The chart's own settings are written inline; Kubernetes types are $ref'd
        # definitions whose optional fields need not appear in values.yaml.
        for key, child in node.get("properties", {}).items():
            dotted = f"{path}.{key}" if path else key
            if key == "global" and not path:
                continue
            yield dotted
            if "$ref" not in child:
                yield from inline_properties(child, dotted)

    declared = set(paths)
    missing = [dotted for dotted in inline_properties(schema, "") if dotted not in declared]
    assert missing == [], f"in the schema, absent from values.yaml: {missing}"


KEY_LINE = re.compile(r"^(?P<indent> *)(?:- )?(?P<key>[A-Za-z_][\w.-]*):(?:\s|$)")


def test_every_value_is_documented_in_values_yaml(chart: helm_python.Chart) -> None:
    """Each key of values.yaml has a comment right above it (list items of a default, like
    the NetworkPolicy peers, are documented by their list's comment)."""
    lines = (CHART_DIR / "values.yaml").read_text(encoding="utf-8").splitlines()
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    inside_list_item = -1
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent = len(match.group("indent"))
        if line.lstrip().startswith("- "):
            inside_list_item = indent
            continue
        if inside_list_item >= 0 and indent > inside_list_item:
            continue
        inside_list_item = -1
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([key for _, key in stack] + [match.group("key")])
        stack.append((indent, match.group("key")))
        above = lines[number - 1].strip() if number else ""
        assert above.startswith("#"), f"values.yaml line {number + 1}: {dotted} has no comment"
        documented.add(dotted)
    assert set(_values_paths(chart.values)) - documented == set()
    assert len(documented) >= 100, len(documented)


def test_deployment_docs_list_every_value(chart: helm_python.Chart) -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = docs.split("\n## Chart values\n", 1)[1]
    table = {m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", section, re.MULTILINE)}
    # Objects whose members are listed individually need no row of their own.
    assert sorted(_documented_leaves(chart) - table) == []
    assert sorted(table - set(_values_paths(chart.values))) == []


def _documented_leaves(chart: helm_python.Chart) -> set[str]:
    passthrough = (
        "networkPolicy.ingressFrom.",
        "networkPolicy.dns.to.",
        "podSecurityContext.",
        "securityContext.",
        "resources.",
        "livenessProbe.",
        "readinessProbe.",
    )
    leaves = {p for p in _values_paths(chart.values) if not p.startswith(passthrough)}
    parents = {dotted.rsplit(".", 1)[0] for dotted in leaves if "." in dotted}
    return leaves - parents


def test_readme_values_table_covers_every_value(chart: helm_python.Chart) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:deployment -->", 1)[1]
    section = section.split("<!-- /section:deployment -->", 1)[0]
    every = set(_values_paths(chart.values))
    named: set[str] = set()
    for row in re.findall(r"^\| (`.+?) \| .* \|$", section, re.MULTILINE):
        base = ""
        for token in re.findall(r"`([^`]+)`", row):
            if token.endswith(".*"):
                group = token.removesuffix(".*")
                named |= {p for p in every if p.startswith(group + ".")}
                continue
            if token.startswith("."):
                token = base + token
            else:
                base = token.rsplit(".", 1)[0] if "." in token else ""
            assert token in every, f"README names {token}, which is not a value"
            named.add(token)
    assert _documented_leaves(chart) - named == set()


# --- fixtures of ci/ ----------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_fixture_passes_the_schema_and_renders(chart: helm_python.Chart, path: Path) -> None:
    values = load_values(path)
    chart.validate_schema(values)
    docs = documents(render(chart, values))
    assert {"ConfigMap", "Deployment", "Service", "ServiceAccount"} <= set(kinds(docs))


def test_there_are_valid_and_invalid_fixtures() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_fixture_is_refused_with_its_message(chart: helm_python.Chart, path: Path) -> None:
    values = load_values(path)
    with pytest.raises(helm_python.HelmError) as refused:
        render(chart, values)
    message = str(refused.value)
    assert expected_message(path) in message
    # A refused admin key is never repeated back.
    for secret in _strings(values):
        if secret.startswith("sk-"):
            assert secret not in message


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


# --- the hardened pod ---------------------------------------------------------------------


def _rendered_docs(chart: helm_python.Chart) -> Iterator[tuple[str, list[Doc]]]:
    yield "defaults", documents(render(chart))
    for path in VALID:
        yield path.name, documents(render(chart, load_values(path)))


def test_pod_is_hardened_in_every_rendering(chart: helm_python.Chart) -> None:
    renderings = 0
    for name, docs in _rendered_docs(chart):
        renderings += 1
        pod = only(docs, "Deployment")["spec"]["template"]["spec"]
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, name
        (exporter,) = pod["containers"]
        security = exporter["securityContext"]
        for numeric in ("runAsUser", "runAsGroup"):
            assert isinstance(security[numeric], int), name
            assert security[numeric] > 0, name
        assert security["runAsNonRoot"] is True, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["privileged"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert probe_target(exporter[probe]) in (
                ("HTTP", path),
                ("HTTPS", path),
                ("TCP", None),  # client certificates required: see test_helm_web_config.py
            ), name
        assert set(exporter["resources"]) == {"requests", "limits"}, name
        assert {"cpu", "memory"} <= set(exporter["resources"]["limits"]), name
        assert {"cpu", "memory"} <= set(exporter["resources"]["requests"]), name
        accounts = [doc for doc in docs if doc["kind"] == "ServiceAccount"]
        assert all(account["automountServiceAccountToken"] is False for account in accounts)
        for test_pod in (doc for doc in docs if doc["kind"] == "Pod"):
            assert test_pod["spec"]["automountServiceAccountToken"] is False
            (check,) = test_pod["spec"]["containers"]
            assert check["securityContext"] == security
    assert renderings == 1 + len(VALID)


def test_default_image_is_the_app_version(chart: helm_python.Chart) -> None:
    exporter = container(documents(render(chart)))
    assert (
        exporter["image"]
        == f"ghcr.io/openai-key-exporter/openai-key-exporter:{chart.metadata['appVersion']}"
    )
    digest = "sha256:" + "0123456789abcdef" * 4
    pinned = container(documents(render(chart, {"image": {"tag": "9.9.9", "digest": digest}})))
    assert pinned["image"] == f"ghcr.io/openai-key-exporter/openai-key-exporter@{digest}"


def test_ports_and_probes_follow_the_listen_port(chart: helm_python.Chart) -> None:
    docs = documents(render(chart, {"web": {"port": 9100, "telemetryPath": "/m"}}))
    exporter = container(docs)
    assert exporter["ports"] == [{"name": "http", "containerPort": 9100, "protocol": "TCP"}]
    config = settings(docs)
    assert config["OPENAI_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9100"
    assert config["OPENAI_EXPORTER_WEB_TELEMETRY_PATH"] == "/m"
    monitor = only(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert (monitor["port"], monitor["path"]) == ("http", "/m")


# --- the admin key ------------------------------------------------------------------------


def _key_volume(docs: list[Doc]) -> Doc:
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "admin-key"]
    assert isinstance(volume, dict)
    return volume


def test_admin_key_comes_from_an_existing_secret_as_a_file(default_docs: list[Doc]) -> None:
    assert "Secret" not in kinds(default_docs)
    volume = _key_volume(default_docs)
    assert volume["secret"]["secretName"] == "openai-admin-key"
    assert volume["secret"]["items"] == [{"key": "admin-key", "path": "admin-key"}]
    assert volume["secret"]["defaultMode"] == 0o440
    exporter = container(default_docs)
    (mount,) = exporter["volumeMounts"]
    assert mount == {"name": "admin-key", "mountPath": "/var/run/secrets/openai", "readOnly": True}
    assert "subPath" not in mount  # a subPath mount would never see a rotated key
    env = {item["name"]: item for item in exporter["env"]}
    assert env["OPENAI_ADMIN_KEY_FILE"] == {
        "name": "OPENAI_ADMIN_KEY_FILE",
        "value": "/var/run/secrets/openai/admin-key",
    }
    assert "OPENAI_ADMIN_KEY" not in env
    assert "secretKeyRef" not in yaml.safe_dump(only(default_docs, "Deployment"))


def test_chart_created_secret_keeps_the_key_out_of_everything_else(
    chart: helm_python.Chart,
) -> None:
    canary = "sk-admin-canary-helm"
    rendered = render(chart, {"adminKey": {"create": True, "value": canary}})
    docs = documents(rendered)
    secret = only(docs, "Secret")
    assert secret["metadata"]["name"] == f"{RELEASE}-openai-key-exporter-admin-key"
    assert base64.b64decode(secret["data"]["admin-key"]).decode() == canary
    assert _key_volume(docs)["secret"]["secretName"] == secret["metadata"]["name"]
    encoded = base64.b64encode(canary.encode()).decode()
    for path, text in rendered.items():
        assert canary not in text, path
        if path != "secret.yaml":
            assert encoded not in text, path


def test_checksums_roll_the_pod_on_config_and_secret_changes(chart: helm_python.Chart) -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        deployment = only(documents(render(chart, values)), "Deployment")
        found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return found

    base = annotations({})
    assert set(base) == {"checksum/config"}
    assert re.fullmatch(r"[0-9a-f]{64}", base["checksum/config"])
    assert annotations({"cache": {"ttl": "10m"}})["checksum/config"] != base["checksum/config"]
    assert annotations({"service": {"port": 80}})["checksum/config"] == base["checksum/config"]
    one = annotations({"adminKey": {"create": True, "value": "sk-admin-one"}})
    two = annotations({"adminKey": {"create": True, "value": "sk-admin-two"}})
    assert one["checksum/secret"] != two["checksum/secret"]
    assert one["checksum/config"] == two["checksum/config"] == base["checksum/config"]


# --- Service, monitors, NetworkPolicy -----------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_service_and_service_monitor_select_the_exporter(default_docs: list[Doc]) -> None:
    pod_labels = only(default_docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = only(default_docs, "Service")
    assert _matches(service["spec"]["selector"], pod_labels)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 9471, "targetPort": "http", "protocol": "TCP"}
    ]
    monitor = only(default_docs, "ServiceMonitor")
    assert _matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert endpoint["relabelings"][0] == {
        "action": "replace",
        "targetLabel": "job",
        "replacement": "openai-key-exporter",
    }
    assert "namespaceSelector" not in monitor["spec"]
    # The helm test pod is not behind the Service.
    test_pod = only(default_docs, "Pod")
    assert not _matches(service["spec"]["selector"], test_pod["metadata"]["labels"])
    assert "PodMonitor" not in kinds(default_docs)


def test_monitor_in_another_namespace_selects_the_release_namespace(
    chart: helm_python.Chart,
) -> None:
    docs = documents(render(chart, load_values(CI_DIR / "podmonitor-values.yaml")))
    assert "ServiceMonitor" not in kinds(docs)
    monitor = only(docs, "PodMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    pod_labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _matches(monitor["spec"]["selector"]["matchLabels"], pod_labels)
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["relabelings"][0]["targetLabel"] == "job"
    assert endpoint["relabelings"][1]["targetLabel"] == "node"


def test_no_operator_setup_uses_scrape_annotations_and_a_network_policy(
    chart: helm_python.Chart,
) -> None:
    docs = documents(render(chart, load_values(CI_DIR / "no-operator-values.yaml")))
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & set(kinds(docs))
    pod = only(docs, "Deployment")["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9471"
    assert annotations["prometheus.io/path"] == "/metrics"
    policy = only(docs, "NetworkPolicy")["spec"]
    assert _matches(policy["podSelector"]["matchLabels"], pod["metadata"]["labels"])
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert len(policy["ingress"]) == 1  # tests.enabled is false: no rule for a test pod
    egress_ports = [[p["port"] for p in rule["ports"]] for rule in policy["egress"]]
    assert egress_ports == [[53, 53], [443], [3128]]
    assert "except" not in policy["egress"][1]["to"][0]["ipBlock"]


def test_default_network_policy_admits_prometheus_and_the_test_pod_only(
    chart: helm_python.Chart,
) -> None:
    docs = documents(render(chart, {"networkPolicy": {"enabled": True}}))
    policy = only(docs, "NetworkPolicy")["spec"]
    prometheus, test_rule = policy["ingress"]
    assert prometheus["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert prometheus["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus"
    }
    test_labels = only(docs, "Pod")["metadata"]["labels"]
    assert _matches(test_rule["from"][0]["podSelector"]["matchLabels"], test_labels)
    dns, api = policy["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    (block,) = api["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "169.254.0.0/16" in block["ipBlock"]["except"]  # cloud metadata endpoints
    assert api["ports"] == [{"port": 443, "protocol": "TCP"}]


def test_notes_tell_how_to_check_it_works(chart: helm_python.Chart) -> None:
    notes = render(chart)["NOTES.txt"]
    assert f"kubectl -n {NAMESPACE} create secret generic openai-admin-key" in notes
    assert "curl -s http://127.0.0.1:9471/metrics" in notes
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes
    assert 'up{job="openai-key-exporter"}' in notes


# --- the exporter accepts what the chart renders ------------------------------------------


def probe_target(probe: Doc) -> tuple[str, str | None]:
    """("HTTP" or "HTTPS", path) of an HTTP probe, ("TCP", None) of a TCP one."""
    if "tcpSocket" in probe:
        assert probe["tcpSocket"] == {"port": "http"}
        return "TCP", None
    get = probe["httpGet"]
    assert set(get) <= {"path", "port", "scheme"}, get
    assert get["port"] == "http", get
    return get.get("scheme", "HTTP"), get["path"]


def start_check_config(docs: list[Doc], root: Path, pki: kubelet.Pki) -> subprocess.Popen[str]:
    return kubelet.start_check_config(docs, kubelet.cluster_for(docs, pki), root)


def _check_config(docs: list[Doc], root: Path, pki: kubelet.Pki) -> tuple[int, str]:
    return kubelet.finish_check_config(start_check_config(docs, root, pki))


def test_exporter_accepts_the_settings_of_every_rendering(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    started: dict[str, subprocess.Popen[str]] = {}
    for name, docs in _rendered_docs(chart):
        mount = container(docs)["volumeMounts"][0]["mountPath"].rstrip("/")
        listed = {item["name"]: item.get("value") for item in container(docs)["env"]}
        # One organization names its key file; several name their config file, whose
        # entries name theirs (tests/helm/test_helm_organizations.py).
        if "OPENAI_EXPORTER_CONFIG_FILE" in listed:
            assert listed["OPENAI_EXPORTER_CONFIG_FILE"] == f"{mount}/organizations.yml", name
            assert "OPENAI_ADMIN_KEY_FILE" not in listed, name
        else:
            assert listed["OPENAI_ADMIN_KEY_FILE"] == f"{mount}/admin-key", name
        started[name] = start_check_config(docs, tmp_path / name, pki)  # all at once: faster
    for name, process in started.items():
        status, stderr = kubelet.finish_check_config(process)
        assert status == 0, f"{name}: {stderr}"
    assert len(started) == 1 + len(VALID)


def test_the_settings_check_has_teeth(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    """A misspelt variable in the ConfigMap would be refused by the exporter at start."""
    docs = documents(render(chart))
    settings(docs)["OPENAI_EXPORTER_CACHE_TLL"] = "5m"
    status, stderr = _check_config(docs, tmp_path, pki)
    assert status == 2
    assert "OPENAI_EXPORTER_CACHE_TLL" in stderr


# --- collectors ---------------------------------------------------------------------------


def collector_variables(docs: list[Doc]) -> dict[str, str]:
    return {k: v for k, v in settings(docs).items() if k.startswith("OPENAI_EXPORTER_COLLECTOR_")}


def test_collectors_are_exactly_the_exporters(
    chart: helm_python.Chart, schema: dict[str, Any]
) -> None:
    """values.yaml and the schema know each collector of the exporter's catalogue, with its
    default, and no other: a collector added to the exporter must reach the chart."""
    assert chart.values["collectors"] == COLLECTOR_DEFAULTS
    node = schema["properties"]["collectors"]
    assert node["additionalProperties"] is False
    assert node["properties"] == {name: {"type": "boolean"} for name in COLLECTOR_NAMES}
    assert sorted(node["required"]) == sorted(COLLECTOR_NAMES)


def test_collector_switches_reach_the_environment(
    default_docs: list[Doc], tmp_path: Path, pki: kubelet.Pki
) -> None:
    assert collector_variables(default_docs) == {
        f"OPENAI_EXPORTER_COLLECTOR_{name.upper()}": str(on).lower()
        for name, on in COLLECTOR_DEFAULTS.items()
    }
    # As the container sees them: through envFrom of the settings ConfigMap.
    pod = only(default_docs, "Deployment")["spec"]["template"]["spec"]
    mounted = kubelet.mount(
        pod, container(default_docs), kubelet.cluster_for(default_docs, pki), tmp_path
    )
    env = kubelet.environment(default_docs, container(default_docs), mounted, base={})
    assert env["OPENAI_EXPORTER_COLLECTOR_SERVICE_ACCOUNTS"] == "false"
    assert env["OPENAI_EXPORTER_COLLECTOR_USERS"] == "true"


@pytest.mark.parametrize(
    ("collectors", "expected"),
    [
        ({"users": False}, {"USERS": "false"}),
        (
            {"service_accounts": True, "invites": False},
            {"SERVICE_ACCOUNTS": "true", "INVITES": "false"},
        ),
        (
            dict.fromkeys(COLLECTOR_NAMES, False),
            {name.upper(): "false" for name in COLLECTOR_NAMES},
        ),
    ],
    ids=["users-off", "service-accounts-on-invites-off", "all-off"],
)
def test_a_collector_switch_renders_its_variable_and_the_exporter_accepts_it(
    chart: helm_python.Chart,
    tmp_path: Path,
    collectors: dict[str, bool],
    expected: dict[str, str],
    pki: kubelet.Pki,
) -> None:
    docs = documents(render(chart, {"collectors": collectors}))
    variables = collector_variables(docs)
    assert len(variables) == len(COLLECTOR_NAMES)
    for name, value in expected.items():
        assert variables[f"OPENAI_EXPORTER_COLLECTOR_{name}"] == value
    untouched = set(COLLECTOR_NAMES) - set(collectors)
    for name in untouched:
        default = str(COLLECTOR_DEFAULTS[name]).lower()
        assert variables[f"OPENAI_EXPORTER_COLLECTOR_{name.upper()}"] == default
    status, stderr = _check_config(docs, tmp_path, pki)
    assert status == 0, stderr


def test_the_collectors_fixture_switches_users_off(chart: helm_python.Chart) -> None:
    docs = documents(render(chart, load_values(CI_DIR / "collectors-values.yaml")))
    variables = collector_variables(docs)
    assert variables["OPENAI_EXPORTER_COLLECTOR_USERS"] == "false"
    assert variables["OPENAI_EXPORTER_COLLECTOR_SERVICE_ACCOUNTS"] == "true"
    assert variables["OPENAI_EXPORTER_COLLECTOR_API_KEYS"] == "true"


@pytest.mark.parametrize(
    ("variable", "value", "refused"),
    [
        ("OPENAI_EXPORTER_COLLECTOR_USERS", "maybe", "must be true or false"),
        ("OPENAI_EXPORTER_COLLECTOR_NO_SUCH_RESOURCE", "true", "unknown setting"),
    ],
)
def test_the_collector_check_has_teeth(
    chart: helm_python.Chart,
    tmp_path: Path,
    variable: str,
    value: str,
    refused: str,
    pki: kubelet.Pki,
) -> None:
    """The exporter, not just the schema, refuses a bad switch in the rendered ConfigMap."""
    docs = documents(render(chart))
    settings(docs)[variable] = value
    status, stderr = _check_config(docs, tmp_path, pki)
    assert status == 2
    assert variable in stderr
    assert refused in stderr


def test_the_mounted_key_file_is_what_the_exporter_reads(
    chart: helm_python.Chart, tmp_path: Path, pki: kubelet.Pki
) -> None:
    """The admin key file is found only where the Secret is mounted: a key Secret without
    the named key cannot even be mounted."""
    docs = documents(render(chart))
    cluster = kubelet.cluster_for(docs, pki)
    cluster.secrets["openai-admin-key"] = {"other-key": b"sk-admin-x\n"}
    with pytest.raises(kubelet.MountError, match="has no key 'admin-key'"):
        kubelet.finish_check_config(kubelet.start_check_config(docs, cluster, tmp_path))


# --- usage and costs settings -------------------------------------------------------------


def test_usage_and_costs_settings_reach_the_environment(
    default_docs: list[Doc], chart: helm_python.Chart
) -> None:
    """Each usage and costs value is one OPENAI_EXPORTER_* variable; durations pass as
    written, the group-by list comma-joined in its order."""
    names = (
        "OPENAI_EXPORTER_USAGE_INTERVAL",
        "OPENAI_EXPORTER_USAGE_LOOKBACK",
        "OPENAI_EXPORTER_USAGE_GROUP_BY",
        "OPENAI_EXPORTER_COSTS_INTERVAL",
        "OPENAI_EXPORTER_COSTS_LOOKBACK",
    )

    def rendered(docs: list[Doc]) -> tuple[str, ...]:
        config = settings(docs)
        return tuple(config[name] for name in names)

    assert rendered(default_docs) == ("5m", "3h", "project_id,api_key_id,model", "1h", "3d")
    everything = documents(render(chart, load_values(CI_DIR / "everything-values.yaml")))
    assert rendered(everything) == ("10m", "6h", "project_id,api_key_id", "7200", "7d")
    one = documents(render(chart, {"usage": {"groupBy": ["model"]}}))
    assert settings(one)["OPENAI_EXPORTER_USAGE_GROUP_BY"] == "model"


def test_audit_settings_reach_the_environment(
    default_docs: list[Doc], chart: helm_python.Chart
) -> None:
    """Each audit value is one OPENAI_EXPORTER_AUDIT_* variable: durations as written, the
    log switches as true or false."""
    names = (
        "OPENAI_EXPORTER_AUDIT_INTERVAL",
        "OPENAI_EXPORTER_AUDIT_OVERLAP",
        "OPENAI_EXPORTER_AUDIT_BACKFILL",
        "OPENAI_EXPORTER_AUDIT_LOG_EVENTS",
        "OPENAI_EXPORTER_AUDIT_LOG_PERSONAL_DATA",
    )

    def rendered(docs: list[Doc]) -> tuple[str, ...]:
        config = settings(docs)
        return tuple(config[name] for name in names)

    assert rendered(default_docs) == ("1m", "10m", "7d", "false", "false")
    everything = documents(render(chart, load_values(CI_DIR / "everything-values.yaml")))
    assert rendered(everything) == ("30s", "15m", "172800", "true", "true")
    events_only = documents(render(chart, {"audit": {"logEvents": True}}))
    assert rendered(events_only)[3:] == ("true", "false")
