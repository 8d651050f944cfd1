"""What a kubelet would put into a rendered pod, done on the local filesystem.

Each volume a container mounts (Secret, ConfigMap or projected) is written under a local
root at the container's mount path, in the kubelet's own layout: a timestamped directory,
a ``..data`` symlink to it, and one symlink per file, with the volume's mode. A Secret or
key the volume names but the fake cluster lacks fails as the kubelet would fail the mount
(unless the source is optional). Paths inside the container are then rewritten to the
local root in the environment and in the mounted files themselves (a web config names its
certificate by its path in the container), and nowhere else.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.helm.chart import ROOT, Doc

SERVICE_NAME = "keys-openai-key-exporter.openai.svc"


class MountError(Exception):
    """The kubelet could not set up a volume (a missing Secret, ConfigMap or key)."""


@dataclass
class Cluster:
    """The Secrets and ConfigMaps that exist in the cluster, by name (one namespace)."""

    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def add_rendered(self, docs: list[Doc]) -> None:
        """The chart's own Secrets and ConfigMaps, as `helm install` would create them."""
        for doc in docs:
            name = doc["metadata"]["name"]
            if doc["kind"] == "Secret":
                data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
                data |= {k: v.encode() for k, v in (doc.get("stringData") or {}).items()}
                self.secrets[name] = data
            elif doc["kind"] == "ConfigMap":
                self.config_maps[name] = {k: v.encode() for k, v in (doc.get("data") or {}).items()}


@dataclass
class Pki:
    """One internal CA (as with a cert-manager CA issuer): the exporter's certificate for its
    Service name and loopback, client certificates, and a CA nobody trusts."""

    ca: trustme.CA = field(default_factory=trustme.CA)
    stranger: trustme.CA = field(default_factory=trustme.CA)

    def server_secret(self, *, with_ca: bool = True) -> dict[str, bytes]:
        """A kubernetes.io/tls Secret's data for the exporter."""
        server = self.ca.issue_cert(SERVICE_NAME, "127.0.0.1", "localhost")
        data = {
            "tls.crt": b"".join(pem.bytes() for pem in server.cert_chain_pems),
            "tls.key": server.private_key_pem.bytes(),
        }
        if with_ca:
            data["ca.crt"] = self.ca.cert_pem.bytes()
        return data

    def client_secret(self, identity: str, *, issuer: trustme.CA | None = None) -> dict[str, bytes]:
        client = (issuer or self.ca).issue_cert(identity)
        return {
            "tls.crt": b"".join(pem.bytes() for pem in client.cert_chain_pems),
            "tls.key": client.private_key_pem.bytes(),
            "ca.crt": self.ca.cert_pem.bytes(),
        }


def _sources(volume: Doc) -> list[tuple[str, Doc]]:
    """A volume as a list of (kind, source) with kind "secret" or "configMap"."""
    if "secret" in volume:
        return [("secret", volume["secret"])]
    if "configMap" in volume:
        return [("configMap", volume["configMap"])]
    if "projected" in volume:
        return [
            (kind, source[kind])
            for source in volume["projected"]["sources"]
            for kind in ("secret", "configMap")
            if kind in source
        ]
    raise MountError(f"volume {volume['name']}: kind not simulated")


def _volume_files(volume: Doc, cluster: Cluster) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for kind, source in _sources(volume):
        name = source["secretName"] if kind == "secret" and "secretName" in source else None
        name = name or source["name"]
        store = cluster.secrets if kind == "secret" else cluster.config_maps
        optional = bool(source.get("optional", False))
        if name not in store:
            if optional:
                continue
            raise MountError(f"volume {volume['name']}: {kind} {name!r} not found")
        data = store[name]
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise MountError(
                    f"volume {volume['name']}: {kind} {name!r} has no key {item['key']!r}"
                )
            files[item["path"]] = data[item["key"]]
    return files


def _mode(volume: Doc) -> int:
    for kind in ("secret", "configMap", "projected"):
        if kind in volume and "defaultMode" in volume[kind]:
            return int(volume[kind]["defaultMode"])
    return 0o644


def _write_atomic_layout(directory: Path, files: Mapping[str, bytes], mode: int) -> None:
    """The kubelet's AtomicWriter layout: files in a timestamped directory reached through
    ``..data``, and a symlink per file in the mount point."""
    directory.mkdir(parents=True, exist_ok=True)
    stamped = directory / "..2026_01_01_00_00_00.000000001"
    stamped.mkdir()
    for relative, content in files.items():
        target = stamped / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    (directory / "..data").symlink_to(stamped.name)
    for relative in {Path(name).parts[0] for name in files}:
        (directory / relative).symlink_to(Path("..data") / relative)


@dataclass
class Mounted:
    """A container's volumes written under ``root``; ``local()`` maps container paths."""

    root: Path
    mount_paths: list[str]

    def local(self, text: str) -> str:
        """Rewrites every container path under a mount point to its local place."""
        if not self.mount_paths:
            return text
        pattern = "|".join(re.escape(p) for p in sorted(self.mount_paths, key=len, reverse=True))
        return re.sub(
            rf"(?<![\w/.-])({pattern})(?=/|$|[\s\"'])",
            lambda match: str(self.root) + match.group(1),
            text,
        )

    def path(self, container_path: str) -> Path:
        return Path(self.local(container_path))


def mount(pod_spec: Doc, container: Doc, cluster: Cluster, root: Path) -> Mounted:
    """Writes every volume ``container`` mounts under ``root`` + its mount path, then
    rewrites container paths inside the written files."""
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes", [])}
    mounted = Mounted(root, [m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])])
    for volume_mount in container.get("volumeMounts", []):
        assert volume_mount.get("readOnly") is True, f"{volume_mount['name']} is writable"
        assert "subPath" not in volume_mount, "a subPath mount never sees an update"
        volume = volumes[volume_mount["name"]]
        directory = Path(str(root) + volume_mount["mountPath"].rstrip("/"))
        files = _volume_files(volume, cluster)
        files = {
            name: mounted.local(content.decode()).encode() if _is_text(content) else content
            for name, content in files.items()
        }
        _write_atomic_layout(directory, files, _mode(volume))
    return mounted


def _is_text(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def environment(
    docs: list[Doc], container: Doc, mounted: Mounted, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The container's environment (envFrom ConfigMaps, then env values), paths made local;
    on top of ``base`` (the test process's own, without OPENAI_* and PYTHON*)."""
    env = dict(
        base
        if base is not None
        else {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON"))}
    )
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for source in container.get("envFrom", []):
        data = config_maps[source["configMapRef"]["name"]].get("data") or {}
        env.update({key: mounted.local(value) for key, value in data.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = mounted.local(item["value"])
    return env


WEB_CONFIG_EXAMPLE_MARK = "<!-- example:web-config.yml -->"
ADMIN_KEY = b"sk-admin-contract-test\n"


def documented_web_config() -> str:
    """The web config of docs/deployment.md ("A web config of your own")."""
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    after = docs.split(WEB_CONFIG_EXAMPLE_MARK, 1)[1]
    match = re.match(r"\s*```yaml\n(.*?)```", after, re.DOTALL)
    assert match, f"no yaml block after {WEB_CONFIG_EXAMPLE_MARK} in docs/deployment.md"
    return match.group(1)


def cluster_for(docs: list[Doc], pki: Pki, *, web_config: str | None = None) -> Cluster:
    """The chart's rendered objects plus the existing Secrets the exporter's pod names: an
    admin key, the exporter's kubernetes.io/tls Secret (from ``pki``), and an existing web
    config (``web_config``, default the documented example)."""
    cluster = Cluster()
    cluster.add_rendered(docs)
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        if "configMap" in volume:
            continue  # the chart's own (the organizations' config file), added above
        if volume["name"] == "organization-keys":
            _add_organization_keys(cluster, volume)
            continue
        name = volume["secret"]["secretName"]
        if name in cluster.secrets:
            continue
        if volume["name"] == "admin-key":
            cluster.secrets[name] = {item["key"]: ADMIN_KEY for item in volume["secret"]["items"]}
        elif volume["name"] == "tls":
            cluster.secrets[name] = pki.server_secret()
        elif volume["name"] == "web-config":
            text = documented_web_config() if web_config is None else web_config
            cluster.secrets[name] = {"web-config.yml": text.encode()}
        else:
            raise AssertionError(f"no fake Secret for volume {volume['name']}")
    return cluster


def organization_key(name: str) -> bytes:
    """The fake admin key of one organization: distinct, so a mix-up would show."""
    return f"sk-admin-contract-test-{name}\n".encode()


def _add_organization_keys(cluster: Cluster, volume: Doc) -> None:
    """Each organization's existing Secret, holding its key under the key the chart names
    (several organizations may share one Secret, each with its own key)."""
    for source in volume["projected"]["sources"]:
        secret = source["secret"]
        for item in secret["items"]:
            organization = item["path"].split("/", 1)[0]
            cluster.secrets.setdefault(secret["name"], {})[item["key"]] = organization_key(
                organization
            )


def start_check_config(docs: list[Doc], cluster: Cluster, root: Path) -> subprocess.Popen[str]:
    """Starts the exporter's ``--check-config`` with the rendered environment, after the
    kubelet's work: every volume the container mounts written under ``root``."""
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (exporter,) = pod["containers"]
    mounted = mount(pod, exporter, cluster, root)
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", "--check-config", *exporter.get("args", [])],
        env=environment(docs, exporter, mounted),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_check_config(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Exit status and stderr of a started check."""
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr
