"""A protected /metrics through the chart: the web config, the certificate Secret, and
everything that talks to the exporter following them.

The renderings of ``ci/*-values.yaml`` with a web config are checked object by object. Then
the real exporter gets what a cluster would give it: the rendered environment, with each
Secret written at its mount path under a temporary directory, in the kubelet's layout
(``tests/helm/kubelet.py``; certificates from trustme). The exporter runs first with
``--check-config``, where broken Secrets and web configs must stop it with exit status 2.
Then it serves, and three clients talk to it: the kubelet's probes as rendered, a scrape as
the rendered ServiceMonitor or PodMonitor describes it (scheme, tlsConfig, basicAuth
resolved from the Secrets), and the `helm test` pod's own script with its projected
credentials.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import yaml

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
    render_docs,
)
from tests.process import free_port

WEB_CONFIG_DIR = "/etc/openai-key-exporter/web-config"
WEB_CONFIG_FILE = f"{WEB_CONFIG_DIR}/web-config.yml"
TLS_DIR = "/etc/openai-key-exporter/tls"
CHART_SECRET = f"{RELEASE}-openai-key-exporter-web-config"
TLS_SECRET = "openai-key-exporter-tls"
# The password whose bcrypt hash the fixtures hold (stated in the fixtures).
PASSWORD = "ci-fixture-not-a-real-password"
FIXTURE_HASH = "$2y$10$1lZik2zHVWbFIg/JRV5JJetTo/AzQ0rHKha7Ms8rljKn2Odiw7iYS"
PROTECTED = ["tls", "tls-basic-auth", "mtls", "web-config-existing-secret", "insecure-basic-auth"]


# --- rendering ------------------------------------------------------------------------------


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = only(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def exporter_container(docs: list[Doc]) -> Doc:
    (container,) = pod_spec(docs)["containers"]
    assert isinstance(container, dict)
    return container


def env_values(container: Doc) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def volume(docs: list[Doc], name: str) -> Doc | None:
    found = [v for v in pod_spec(docs).get("volumes", []) if v["name"] == name]
    return found[0] if found else None


def mounts(docs: list[Doc]) -> dict[str, Doc]:
    return {m["name"]: m for m in exporter_container(docs)["volumeMounts"]}


def web_config_document(docs: list[Doc]) -> Any:
    secret = only(docs, "Secret", CHART_SECRET)
    assert secret["type"] == "Opaque"
    assert set(secret["data"]) == {"web-config.yml"}
    return yaml.safe_load(base64.b64decode(secret["data"]["web-config.yml"]))


def monitor_endpoint(docs: list[Doc]) -> Doc | None:
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            (endpoint,) = doc["spec"]["endpoints"]
            return dict(endpoint)
        if doc["kind"] == "PodMonitor":
            (endpoint,) = doc["spec"]["podMetricsEndpoints"]
            return dict(endpoint)
    return None


def helm_test_pod(docs: list[Doc]) -> Doc:
    return only(docs, "Pod")


def helm_test_env(docs: list[Doc]) -> dict[str, str]:
    (check,) = helm_test_pod(docs)["spec"]["containers"]
    return env_values(check)


def projected(docs: list[Doc]) -> dict[str, tuple[str, str, str]]:
    """The test pod's credential files: file name to (kind, object name, key)."""
    volumes = helm_test_pod(docs)["spec"].get("volumes", [])
    files: dict[str, tuple[str, str, str]] = {}
    for source in (s for v in volumes for s in v["projected"]["sources"]):
        ((kind, ref),) = source.items()
        for item in ref["items"]:
            files[item["path"]] = (kind, ref["name"], item["key"])
    return files


def probes(docs: list[Doc]) -> dict[str, Doc]:
    container = exporter_container(docs)
    return {"liveness": container["livenessProbe"], "readiness": container["readinessProbe"]}


def https_probes() -> dict[str, Doc]:
    return {
        "liveness": {"path": "/healthz", "port": "http", "scheme": "HTTPS"},
        "readiness": {"path": "/readyz", "port": "http", "scheme": "HTTPS"},
    }


def test_without_a_web_config_nothing_is_protected(chart: helm_python.Chart) -> None:
    docs = render_docs(chart)
    env = env_values(exporter_container(docs))
    assert "OPENAI_EXPORTER_WEB_CONFIG_FILE" not in env
    assert "OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH" not in env
    assert volume(docs, "web-config") is None
    assert volume(docs, "tls") is None
    assert [d for d in docs if d["kind"] == "Secret"] == []
    assert {name: p["httpGet"].get("scheme", "HTTP") for name, p in probes(docs).items()} == {
        "liveness": "HTTP",
        "readiness": "HTTP",
    }
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    assert endpoint["scheme"] == "http"
    assert "tlsConfig" not in endpoint
    assert "basicAuth" not in endpoint
    assert helm_test_env(docs) == {
        "OKE_TEST_URL": f"http://{RELEASE}-openai-key-exporter.{NAMESPACE}.svc:9471",
        "OKE_TEST_PATH": "/metrics",
    }
    assert "volumes" not in helm_test_pod(docs)["spec"]
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/web-config" not in annotations


def test_tls_only(chart: helm_python.Chart) -> None:
    values = fixture_values("tls")
    docs = render_docs(chart, values)
    env = env_values(exporter_container(docs))
    assert env["OPENAI_EXPORTER_WEB_CONFIG_FILE"] == WEB_CONFIG_FILE
    assert "OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH" not in env
    assert mounts(docs)["web-config"] == {
        "name": "web-config",
        "mountPath": WEB_CONFIG_DIR,
        "readOnly": True,
    }
    assert mounts(docs)["tls"] == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
    assert volume(docs, "web-config") == {
        "name": "web-config",
        "secret": {
            "secretName": CHART_SECRET,
            "defaultMode": 0o440,
            "items": [{"key": "web-config.yml", "path": "web-config.yml"}],
        },
    }
    # No ca.crt without client certificates: a Secret without one still mounts.
    assert volume(docs, "tls") == {
        "name": "tls",
        "secret": {
            "secretName": TLS_SECRET,
            "defaultMode": 0o440,
            "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
        },
    }
    assert web_config_document(docs) == {
        "tls_server_config": {"cert_file": f"{TLS_DIR}/tls.crt", "key_file": f"{TLS_DIR}/tls.key"}
    }
    assert {name: p["httpGet"] for name, p in probes(docs).items()} == https_probes()
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == values["serviceMonitor"]["tlsConfig"]
    assert "basicAuth" not in endpoint
    assert helm_test_env(docs) == {
        "OKE_TEST_URL": f"https://{RELEASE}-openai-key-exporter.{NAMESPACE}.svc:9471",
        "OKE_TEST_PATH": "/metrics",
        "OKE_TEST_VERIFY": "ca",
        "OKE_TEST_SERVER_NAME": "keys-openai-key-exporter.openai.svc",
        "OKE_TEST_CREDENTIALS": "/etc/openai-key-exporter/scrape",
    }
    assert projected(docs) == {"ca.crt": ("secret", TLS_SECRET, "ca.crt")}


def test_tls_and_basic_auth_keep_the_hashes_in_a_secret(chart: helm_python.Chart) -> None:
    values = fixture_values("tls-basic-auth")
    rendered = render(chart, values)
    docs = documents(rendered)
    content = values["webConfig"]["content"]
    assert web_config_document(docs) == {
        "tls_server_config": {
            **content["tls_server_config"],
            "cert_file": f"{TLS_DIR}/tls.crt",
            "key_file": f"{TLS_DIR}/tls.key",
        },
        "basic_auth_users": {"prometheus": FIXTURE_HASH},
        "http_server_config": content["http_server_config"],
        "rate_limit": {"interval": "1s", "burst": 20},
    }
    # The hash is in the Secret only (base64), in no ConfigMap, manifest or note.
    for path, text in rendered.items():
        assert FIXTURE_HASH not in text, path
        assert "$2y$" not in text, path
    for config_map in (d for d in docs if d["kind"] == "ConfigMap"):
        assert "basic_auth" not in yaml.safe_dump(config_map)
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    assert endpoint["scheme"] == "https"
    assert endpoint["basicAuth"] == values["serviceMonitor"]["basicAuth"]
    assert endpoint["tlsConfig"] == values["serviceMonitor"]["tlsConfig"]
    assert projected(docs) == {
        "ca.crt": ("secret", TLS_SECRET, "ca.crt"),
        "username": ("secret", "openai-key-exporter-scrape", "username"),
        "password": ("secret", "openai-key-exporter-scrape", "password"),
    }
    # The NetworkPolicy does not care: the same port, the same peers.
    plain = only(render_docs(chart, {"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert only(docs, "NetworkPolicy")["spec"] == plain["spec"]


def test_mutual_tls_probes_tcp_and_mounts_the_client_ca(chart: helm_python.Chart) -> None:
    values = fixture_values("mtls")
    docs = render_docs(chart, values)
    tls_volume = volume(docs, "tls")
    assert tls_volume is not None
    assert [item["key"] for item in tls_volume["secret"]["items"]] == [
        "tls.crt",
        "tls.key",
        "ca.crt",
    ]
    assert web_config_document(docs) == {
        "tls_server_config": {
            "cert_file": f"{TLS_DIR}/tls.crt",
            "key_file": f"{TLS_DIR}/tls.key",
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": f"{TLS_DIR}/ca.crt",
            "min_version": "TLS13",
            "client_allowed_sans": [
                "prometheus.monitoring.svc",
                "openai-key-exporter-test.openai.svc",
            ],
        }
    }
    # A kubelet has no client certificate: an HTTPS probe could not finish its handshake.
    for probe in probes(docs).values():
        assert probe["tcpSocket"] == {"port": "http"}
        assert "httpGet" not in probe
    assert "ServiceMonitor" not in {d["kind"] for d in docs}
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == values["podMonitor"]["tlsConfig"]
    # The PodMonitor's Secrets are in "monitoring": the test pod uses tests.tlsConfig.
    assert projected(docs) == {
        "ca.crt": ("secret", TLS_SECRET, "ca.crt"),
        "tls.crt": ("secret", "openai-key-exporter-test-client", "tls.crt"),
        "tls.key": ("secret", "openai-key-exporter-test-client", "tls.key"),
    }
    assert helm_test_env(docs)["OKE_TEST_VERIFY"] == "ca"


def test_existing_web_config_secret_and_scrape_annotations(chart: helm_python.Chart) -> None:
    docs = render_docs(chart, fixture_values("web-config-existing-secret"))
    assert [d for d in docs if d["kind"] == "Secret"] == []
    web = volume(docs, "web-config")
    assert web is not None
    assert web["secret"]["secretName"] == "openai-key-exporter-web-config"
    tls_volume = volume(docs, "tls")
    assert tls_volume is not None
    assert {item["key"] for item in tls_volume["secret"]["items"]} == {
        "tls.crt",
        "tls.key",
        "ca.crt",
    }
    template = only(docs, "Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert "checksum/web-config" not in annotations  # the chart cannot see your Secret
    assert annotations["prometheus.io/scheme"] == "https"
    assert annotations["prometheus.io/port"] == "9471"
    # Client certificates verified when given: the kubelet can still probe over HTTPS.
    assert {name: p["httpGet"] for name, p in probes(docs).items()} == https_probes()
    assert monitor_endpoint(docs) is None
    env = helm_test_env(docs)
    assert env["OKE_TEST_VERIFY"] == "none"  # nothing to verify with
    assert "OKE_TEST_CREDENTIALS" not in env


def test_basic_auth_over_plain_http_only_when_allowed(chart: helm_python.Chart) -> None:
    docs = render_docs(chart, fixture_values("insecure-basic-auth"))
    env = env_values(exporter_container(docs))
    assert env["OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH"] == "true"
    assert volume(docs, "tls") is None
    assert web_config_document(docs) == {"basic_auth_users": {"prometheus": FIXTURE_HASH}}
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    assert endpoint["scheme"] == "http"
    assert "tlsConfig" not in endpoint
    assert set(projected(docs)) == {"username", "password"}
    assert "OKE_TEST_VERIFY" not in helm_test_env(docs)


def test_web_config_checksum_rolls_the_pod_on_content_changes(chart: helm_python.Chart) -> None:
    def checksum(values: dict[str, Any]) -> str | None:
        deployment = only(render_docs(chart, values), "Deployment")
        found: str | None = deployment["spec"]["template"]["metadata"]["annotations"].get(
            "checksum/web-config"
        )
        return found

    base = fixture_values("tls-basic-auth")
    original = checksum(base)
    assert original is not None
    changed = fixture_values("tls-basic-auth")
    changed["webConfig"]["content"]["rate_limit"]["burst"] = 21
    assert checksum(changed) not in (None, original)
    unrelated = fixture_values("tls-basic-auth")
    unrelated["cache"] = {"ttl": "10m"}
    assert checksum(unrelated) == original


def test_deployment_annotations_go_on_the_deployment_not_the_pod(
    chart: helm_python.Chart,
) -> None:
    reload = {"secret.reloader.stakater.com/reload": TLS_SECRET}
    deployment = only(render_docs(chart, {"deploymentAnnotations": reload}), "Deployment")
    assert deployment["metadata"]["annotations"] == reload
    assert not set(reload) & set(deployment["spec"]["template"]["metadata"]["annotations"])


def test_notes_say_how_to_reach_a_protected_exporter(chart: helm_python.Chart) -> None:
    notes = render(chart, fixture_values("tls-basic-auth"))["NOTES.txt"]
    assert "curl -s -k -u prometheus https://127.0.0.1:9471/metrics" in notes
    assert f"Secret {TLS_SECRET}" in notes
    assert "A renewed\n    certificate reaches new connections within 30 s" in notes
    assert "Basic auth, users: prometheus." in notes
    assert "$2y$" not in notes
    notes = render(chart, fixture_values("mtls"))["NOTES.txt"]
    assert "--cert client.crt --key client.key https://127.0.0.1:9471/metrics" in notes
    assert "only check that the port accepts connections" in notes
    notes = render(chart, fixture_values("web-config-existing-secret"))["NOTES.txt"]
    assert "prometheus.io/scheme: https" in notes
    assert "verifies no certificate" in notes


# --- the exporter accepts the rendered web config, and refuses broken ones ------------------


def live_cluster(
    docs: list[Doc], pki: kubelet.Pki, *, web_config: str | None = None
) -> kubelet.Cluster:
    """Every Secret and ConfigMap the fixtures name: the exporter's, Prometheus' and the
    test pod's (one namespace stands in for all)."""
    cluster = kubelet.cluster_for(docs, pki, web_config=web_config)
    cluster.secrets.setdefault(TLS_SECRET, pki.server_secret())
    cluster.secrets["openai-key-exporter-scrape"] = {
        "username": b"prometheus",
        "password": PASSWORD.encode(),
    }
    cluster.secrets["prometheus-client-tls"] = pki.client_secret("prometheus.monitoring.svc")
    cluster.secrets["openai-key-exporter-test-client"] = pki.client_secret(
        "openai-key-exporter-test.openai.svc"
    )
    cluster.config_maps["internal-ca"] = {"ca.crt": pki.ca.cert_pem.bytes()}
    return cluster


def check_config(docs: list[Doc], cluster: kubelet.Cluster, root: Path) -> tuple[int, str]:
    return kubelet.finish_check_config(kubelet.start_check_config(docs, cluster, root))


def _other_key(pki: kubelet.Pki) -> Callable[[kubelet.Cluster], None]:
    def mutate(cluster: kubelet.Cluster) -> None:
        cluster.secrets[TLS_SECRET]["tls.key"] = pki.server_secret()["tls.key"]

    return mutate


def _not_pem(cluster: kubelet.Cluster) -> None:
    cluster.secrets[TLS_SECRET]["tls.crt"] = b"not a certificate\n"


OWN_FILE = {"webConfig": {"enabled": True, "existingSecret": "own-web-config"}}
OWN_FILE_WITH_TLS = {
    "webConfig": {"enabled": True, "existingSecret": "own-web-config"},
    "tls": {"existingSecret": TLS_SECRET},
    "serviceMonitor": {"enabled": False},
    "scrapeAnnotations": {"enabled": True},
}
TLS_PATHS = f"tls_server_config:\n  cert_file: {TLS_DIR}/tls.crt\n  key_file: {TLS_DIR}/tls.key\n"
BASIC_AUTH = f"basic_auth_users:\n  prometheus: '{FIXTURE_HASH}'\n"
BROKEN: dict[str, tuple[dict[str, Any], str | None, str, str]] = {
    # case: (values, web config of an existing Secret, cluster change, expected message;
    # no message: a control that must pass)
    "key of another certificate": (
        fixture_values("tls"),
        None,
        "other-key",
        "cannot load the certificate and key",
    ),
    "certificate not PEM": (
        fixture_values("tls"),
        None,
        "not-pem",
        "cannot load the certificate and key",
    ),
    "misspelt key in your file": (
        OWN_FILE_WITH_TLS,
        TLS_PATHS.replace("key_file", "key_fil"),
        "",
        "tls_server_config.key_fil: unknown setting",
    ),
    "password instead of a hash": (
        OWN_FILE_WITH_TLS,
        TLS_PATHS + "basic_auth_users:\n  prometheus: hunter2-canary\n",
        "",
        "the password of 'prometheus' is not a bcrypt hash",
    ),
    "certificate outside the mounts": (
        OWN_FILE_WITH_TLS,
        TLS_PATHS.replace(f"{TLS_DIR}/tls.key", "/etc/ssl/private/exporter.key"),
        "",
        "/etc/ssl/private/exporter.key: no such file",
    ),
    "basic auth in clear text": (
        OWN_FILE,
        BASIC_AUTH,
        "",
        "basic_auth_users without tls_server_config would send passwords in clear text",
    ),
    # The control of the case above: the same file, explicitly allowed (exit status 0).
    "basic auth in clear text, allowed": (
        {"webConfig": {**OWN_FILE["webConfig"], "allowInsecureBasicAuth": True}},
        BASIC_AUTH,
        "",
        "",
    ),
}


def test_exporter_refuses_a_broken_setup_with_exit_2(
    chart: helm_python.Chart, pki: kubelet.Pki, tmp_path: Path
) -> None:
    changes: dict[str, Callable[[kubelet.Cluster], None]] = {
        "other-key": _other_key(pki),
        "not-pem": _not_pem,
        "": lambda _: None,
    }
    started: dict[str, subprocess.Popen[str]] = {}
    for number, (case, (values, web_config, change, _)) in enumerate(BROKEN.items()):
        docs = render_docs(chart, values)
        cluster = live_cluster(docs, pki, web_config=web_config)
        changes[change](cluster)
        started[case] = kubelet.start_check_config(docs, cluster, tmp_path / str(number))  # at once
    for case, process in started.items():
        status, stderr = kubelet.finish_check_config(process)
        message = BROKEN[case][3]
        assert status == (2 if message else 0), f"{case}: {stderr}"
        assert message in stderr, f"{case}: {stderr}"
        assert "hunter2-canary" not in stderr
        assert "Traceback" not in stderr


def test_client_certificates_need_ca_crt_in_the_secret(
    chart: helm_python.Chart, pki: kubelet.Pki, tmp_path: Path
) -> None:
    """A TLS Secret without ca.crt mounts for TLS only; with client certificates the kubelet
    cannot mount it (the exporter never starts without its client CA)."""
    for name, mountable in (("tls", True), ("mtls", False)):
        docs = render_docs(chart, fixture_values(name))
        cluster = live_cluster(docs, pki)
        cluster.secrets[TLS_SECRET] = pki.server_secret(with_ca=False)
        if mountable:
            assert check_config(docs, cluster, tmp_path / name)[0] == 0
        else:
            with pytest.raises(kubelet.MountError, match=r"has no key 'ca\.crt'"):
                check_config(docs, cluster, tmp_path / name)


# --- served: the kubelet's probes, Prometheus' scrape, the helm test pod --------------------


class _Https(http.client.HTTPSConnection):
    """HTTPS to an address, with the TLS server name given apart (as Prometheus'
    serverName)."""

    def __init__(self, port: int, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__("127.0.0.1", port, timeout=5, context=context)
        self._ssl = context
        self._server_name = server_name

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ssl.wrap_socket(raw, server_hostname=self._server_name)


def get(
    port: int,
    path: str,
    *,
    context: ssl.SSLContext | None = None,
    server_name: str = "127.0.0.1",
    authorization: str | None = None,
) -> tuple[int, str]:
    connection: http.client.HTTPConnection = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        if context is None
        else _Https(port, context, server_name)
    )
    try:
        headers = {"Authorization": authorization} if authorization else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def kubelet_probe(port: int, probe: Doc) -> bool:
    """A probe as the kubelet runs it: TCP connect, or an HTTP(S) GET that verifies no
    certificate and presents none; 200-399 succeeds."""
    if "tcpSocket" in probe:
        with socket.create_connection(("127.0.0.1", port), timeout=probe["timeoutSeconds"]):
            return True
    target = probe["httpGet"]
    context = None
    if target.get("scheme") == "HTTPS":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        status, _ = get(port, target["path"], context=context)
    except OSError:
        return False
    return 200 <= status < 400


def ref(cluster: kubelet.Cluster, selector: Doc) -> bytes:
    """A Secret or ConfigMap key, from {secret: {name, key}}, {configMap: ...} or {name, key}."""
    if "configMap" in selector:
        return cluster.config_maps[selector["configMap"]["name"]][selector["configMap"]["key"]]
    selector = selector.get("secret", selector)
    return cluster.secrets[selector["name"]][selector["key"]]


@dataclass
class Scraper:
    context: ssl.SSLContext | None
    server_name: str
    authorization: str | None

    def get(self, port: int, path: str, *, credentials: bool = True) -> tuple[int, str]:
        return get(
            port,
            path,
            context=self.context,
            server_name=self.server_name,
            authorization=self.authorization if credentials else None,
        )


def prometheus(endpoint: Doc, cluster: kubelet.Cluster, scratch: Path) -> Scraper:
    """Prometheus scraping as a monitor endpoint says: its scheme, tlsConfig and basicAuth,
    resolved from the cluster's Secrets and ConfigMaps."""
    tls = endpoint.get("tlsConfig", {})
    context = None
    if endpoint["scheme"] == "https":
        context = ssl.create_default_context(
            cadata=ref(cluster, tls["ca"]).decode() if "ca" in tls else None
        )
        if tls.get("insecureSkipVerify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if "cert" in tls:
            scratch.mkdir(parents=True, exist_ok=True)
            (scratch / "client.crt").write_bytes(ref(cluster, tls["cert"]))
            (scratch / "client.key").write_bytes(ref(cluster, tls["keySecret"]))
            context.load_cert_chain(scratch / "client.crt", scratch / "client.key")
    authorization = None
    if "basicAuth" in endpoint:
        user = ref(cluster, endpoint["basicAuth"]["username"])
        password = ref(cluster, endpoint["basicAuth"]["password"])
        authorization = "Basic " + base64.b64encode(user + b":" + password).decode()
    # The target is a pod IP; 127.0.0.1 stands for it, and the certificate names it too.
    return Scraper(context, tls.get("serverName", "127.0.0.1"), authorization)


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(docs: list[Doc], cluster: kubelet.Cluster, root: Path) -> Iterator[Served]:
    """The exporter as the Deployment runs it (on the demo organization), on loopback."""
    container = exporter_container(docs)
    mounted = kubelet.mount(pod_spec(docs), container, cluster, root / "exporter")
    env = kubelet.environment(docs, container, mounted)
    port = free_port()
    env["OPENAI_EXPORTER_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"
    log = root / "exporter.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--demo", *container.get("args", [])],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    served = Served(port, process, log)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(check: Callable[[], bool], served: Served, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert served.process.poll() is None, f"exporter exited:\n{served.stderr}"
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {within}s:\n{served.stderr}")


def run_test_pod(
    docs: list[Doc], cluster: kubelet.Cluster, root: Path, port: int
) -> subprocess.CompletedProcess[str]:
    """The `helm test` pod's own script, its projected credentials mounted by the kubelet,
    the Service's address pointed at the exporter on loopback."""
    pod = helm_test_pod(docs)
    (check,) = pod["spec"]["containers"]
    assert check["command"][:2] == ["/opt/venv/bin/python", "-c"]
    script = check["command"][2]
    mounted = kubelet.mount(pod["spec"], check, cluster, root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKE_", "PYTHON"))}
    env.update({name: mounted.local(value) for name, value in env_values(check).items()})
    url = urlsplit(env["OKE_TEST_URL"])
    assert url.hostname == f"{RELEASE}-openai-key-exporter.{NAMESPACE}.svc"
    assert url.port == 9471
    env["OKE_TEST_URL"] = f"{url.scheme}://127.0.0.1:{port}"
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )


def _assert_test_pod_fails(
    docs: list[Doc],
    cluster: kubelet.Cluster,
    root: Path,
    port: int,
    change: Callable[[kubelet.Cluster], None],
    reason: str,
) -> None:
    broken = kubelet.Cluster(
        {k: dict(v) for k, v in cluster.secrets.items()},
        {k: dict(v) for k, v in cluster.config_maps.items()},
    )
    change(broken)
    started = time.monotonic()
    result = run_test_pod(docs, broken, root, port)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("FAIL: "), result.stderr
    assert reason in result.stderr, result.stderr
    assert time.monotonic() - started < 20, "a refused credential must fail at once"


@pytest.mark.parametrize("name", PROTECTED)
def test_served_as_the_cluster_would(
    chart: helm_python.Chart, pki: kubelet.Pki, tmp_path: Path, name: str
) -> None:
    docs = render_docs(chart, fixture_values(name))
    cluster = live_cluster(docs, pki)
    endpoint = monitor_endpoint(docs)
    client_cert_required = "tcpSocket" in probes(docs)["readiness"]
    if endpoint is None:  # scrape annotations: the scheme they give, the exporter's CA
        annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        endpoint = {"scheme": annotations.get("prometheus.io/scheme", "http")}
        if endpoint["scheme"] == "https":
            endpoint["tlsConfig"] = {"ca": {"secret": {"name": TLS_SECRET, "key": "ca.crt"}}}
    scraper = prometheus(endpoint, cluster, tmp_path / "prometheus")

    with serving(docs, cluster, tmp_path) as served:
        port = served.port
        # What the exporter reads: the Secret's file, in the kubelet's symlinked layout,
        # its container paths made local.
        local = Path(str(tmp_path / "exporter") + WEB_CONFIG_FILE)
        assert local.is_symlink()
        web_volume = volume(docs, "web-config")
        assert web_volume is not None
        original = cluster.secrets[web_volume["secret"]["secretName"]]["web-config.yml"]
        assert local.read_text() == original.decode().replace(
            TLS_DIR, str(tmp_path / "exporter") + TLS_DIR
        )

        def scraped() -> bool:
            status, body = scraper.get(port, "/metrics")
            return status == 200 and "\nopenai_up 1" in body

        wait_for(scraped, served, "a scrape with openai_up 1")
        for probe_name, probe in probes(docs).items():
            assert kubelet_probe(port, probe), f"{probe_name} probe fails"
        if scraper.authorization is not None:
            assert scraper.get(port, "/metrics", credentials=False)[0] == 401
        if client_cert_required:
            # Why the probes are TCP checks: an HTTPS probe has no client certificate.
            https = {**https_probes()["readiness"], "timeoutSeconds": 3}
            assert not kubelet_probe(port, {"httpGet": https})
            anonymous = prometheus(
                {**endpoint, "tlsConfig": {"ca": endpoint["tlsConfig"]["ca"]}},
                cluster,
                tmp_path / "anonymous",
            )
            with pytest.raises((ssl.SSLError, ConnectionResetError)):  # the handshake fails
                anonymous.get(port, "/metrics")

        result = run_test_pod(docs, cluster, tmp_path / "test-pod", port)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("OK: scraped"), result.stdout
        assert ("basic auth enforced" in result.stdout) == ("username" in projected(docs))

        files = projected(docs)
        if "password" in files:  # the classic: `echo password | kubectl create secret ...`
            _, secret, key = files["password"]

            def newline(c: kubelet.Cluster) -> None:
                c.secrets[secret][key] = PASSWORD.encode() + b"\n"

            _assert_test_pod_fails(docs, cluster, tmp_path / "bad-1", port, newline, "401")
        if "ca.crt" in files:
            _, secret, key = files["ca.crt"]

            def stranger_ca(c: kubelet.Cluster) -> None:
                c.secrets[secret][key] = pki.stranger.cert_pem.bytes()

            _assert_test_pod_fails(
                docs, cluster, tmp_path / "bad-2", port, stranger_ca, "does not verify"
            )
        if "tls.crt" in files:
            _, secret, _ = files["tls.crt"]
            forged = pki.client_secret("openai-key-exporter-test.openai.svc", issuer=pki.stranger)

            def stranger_client(c: kubelet.Cluster) -> None:
                c.secrets[secret].update({k: forged[k] for k in ("tls.crt", "tls.key")})

            _assert_test_pod_fails(
                docs, cluster, tmp_path / "bad-3", port, stranger_client, "refused"
            )

        assert served.process.poll() is None, served.stderr
    assert served.process.returncode == 0, served.stderr
    log = served.stderr
    assert PASSWORD not in log
    assert "$2y$" not in log
    assert "Traceback" not in log, log


def test_helm_test_pod_probes_each_organization_of_a_serving_exporter(
    chart: helm_python.Chart, pki: kubelet.Pki, tmp_path: Path
) -> None:
    """Several organizations behind TLS and basic auth: the exporter runs the rendered
    config file (each organization simulated by --demo) and the test pod's script loops over
    /probe?target= for each, with the monitor's credentials; a target the exporter does not
    serve fails it."""
    docs = render_docs(chart, fixture_values("organizations-tls"))
    cluster = live_cluster(docs, pki)
    endpoint = monitor_endpoint(docs)
    assert endpoint is not None
    scraper = prometheus(endpoint, cluster, tmp_path / "prometheus")
    targets = helm_test_env(docs)["OKE_TEST_TARGETS"].split(",")
    assert targets == ["prod", "staging"]

    with serving(docs, cluster, tmp_path) as served:

        def probed() -> bool:
            bodies = [scraper.get(served.port, f"/probe?target={t}") for t in targets]
            return all(status == 200 and "\nopenai_up 1" in body for status, body in bodies)

        wait_for(probed, served, "each organization's probe with openai_up 1")
        result = run_test_pod(docs, cluster, tmp_path / "test-pod", served.port)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("OK: scraped"), result.stdout
        assert "/probe of 2 organizations" in result.stdout, result.stdout
        assert "basic auth enforced" in result.stdout, result.stdout
        for target in targets:
            assert f"{target}: openai_up 1" in result.stdout, result.stdout

        (pod,) = [doc for doc in docs if doc["kind"] == "Pod"]
        for item in pod["spec"]["containers"][0]["env"]:
            if item["name"] == "OKE_TEST_TARGETS":
                item["value"] = "prod,retired"
        result = run_test_pod(docs, cluster, tmp_path / "test-pod-2", served.port)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.startswith("FAIL: "), result.stderr
        assert "/probe?target=retired answered 400" in result.stderr, result.stderr
        assert served.process.poll() is None, served.stderr
    assert served.process.returncode == 0, served.stderr
