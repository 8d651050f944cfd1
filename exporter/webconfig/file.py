"""Reading ``--web.config.file``: size, encoding and YAML checks, the schema, and the
checks across settings; the result is a ``WebConfig`` or one ``WebConfigError`` listing
every problem, each line prefixed with the flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exporter.webconfig.model import TlsServerConfig, WebConfig, WebConfigError, WebConfigFile
from exporter.webconfig.reload import CertificateReloader, file_states, watched_files
from exporter.webconfig.tls import server_context

FLAG = "--web.config.file (OPENAI_EXPORTER_WEB_CONFIG_FILE)"
INSECURE_FLAG = "--web.allow-insecure-basic-auth (OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH)"
MAX_FILE_BYTES = 1024 * 1024


class _NoDuplicatesLoader:
    """PyYAML's safe loader, refusing a key given twice (Go's strict loading does too)."""

    @staticmethod
    def load(text: str) -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return loader.construct_mapping(node)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _parse_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the exporter
        import json

        try:
            return json.loads(text)
        except ValueError:
            raise WebConfigError(["is not JSON, and PyYAML (needed for YAML) is missing"]) from None
    try:
        return _NoDuplicatesLoader.load(text)
    except yaml.MarkedYAMLError as error:
        # Only the problem and where: PyYAML's own text quotes the line, which may hold a secret.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WebConfigError(
            [f"is not valid YAML: {error.problem or error.context}{where}"]
        ) from None
    except yaml.YAMLError:
        raise WebConfigError(["is not valid YAML"]) from None


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown setting (a typo, or not in the exporter-toolkit format)"
        problems.append(f"{where}: {message}" if where else message)
    return problems


def load_web_config(path: Path | None, *, allow_insecure_basic_auth: bool = False) -> WebConfig:
    """The web config in ``path`` (None: no file, nothing to protect), checked in full.

    Raises ``WebConfigError`` listing every problem, each prefixed with the flag.
    """
    if path is None:
        return WebConfig()
    try:
        return _load(path, allow_insecure_basic_auth)
    except WebConfigError as error:
        raise WebConfigError([f"{FLAG}: {path}: {problem}" for problem in error.problems]) from None


def _load(path: Path, allow_insecure_basic_auth: bool) -> WebConfig:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise WebConfigError([f"cannot read: {error.strerror or type(error).__name__}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise WebConfigError([f"is larger than {MAX_FILE_BYTES} bytes; not a web config"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebConfigError(["is not UTF-8 text"]) from None
    document = _parse_yaml(text)
    if document is None:
        document = {}  # an empty file: no TLS, no authentication, as in Go
    if not isinstance(document, dict):
        raise WebConfigError(["must be a YAML mapping (tls_server_config, basic_auth_users...)"])
    try:
        parsed = WebConfigFile.model_validate(document)
    except ValidationError as error:
        raise WebConfigError(_schema_problems(error)) from None

    tls = parsed.tls_server_config
    if tls is not None and tls == TlsServerConfig():
        tls = None  # `tls_server_config: {}`: as absent
    ssl_context = reloader = None
    if tls is not None:
        # The files' identity before they are read: a change while loading is seen later.
        watched = watched_files(tls, path.parent)
        loaded = file_states(watched)
        ssl_context = server_context(tls, path.parent)
        if watched:
            reloader = CertificateReloader(ssl_context, tls, path.parent, watched, loaded)
    if parsed.basic_auth_users and ssl_context is None and not allow_insecure_basic_auth:
        raise WebConfigError(
            [
                "basic_auth_users without tls_server_config would send passwords in clear "
                f"text; add tls_server_config, or set {INSECURE_FLAG} when TLS ends in front "
                "of the exporter"
            ]
        )
    headers = {} if parsed.http_server_config is None else parsed.http_server_config.headers
    rate = parsed.rate_limit
    return WebConfig(
        path=path,
        ssl_context=ssl_context,
        users={user: hashed.encode() for user, hashed in parsed.basic_auth_users.items()},
        headers=headers,
        allowed_sans=frozenset(tls.client_allowed_sans) if tls else frozenset(),
        rate_interval=rate.seconds() if rate and rate.burst > 0 else 0.0,
        rate_burst=rate.burst if rate else 0,
        reloader=reloader,
    )
