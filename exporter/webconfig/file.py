"""Reading ``--web.config.file``: size, encoding and YAML checks, the schema, and the
checks across settings; the result is a ``WebConfig`` or one ``WebConfigError`` listing
every problem, each line prefixed with the flag.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from exporter.webconfig.model import TlsServerConfig, WebConfig, WebConfigError, WebConfigFile
from exporter.webconfig.reload import CertificateReloader, file_states, watched_files
from exporter.webconfig.tls import server_context
from exporter.yamlfile import YamlFileError, read_yaml_file

FLAG = "--web.config.file (OPENAI_EXPORTER_WEB_CONFIG_FILE)"
INSECURE_FLAG = "--web.allow-insecure-basic-auth (OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH)"
MAX_FILE_BYTES = 1024 * 1024


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
        document = read_yaml_file(path, max_bytes=MAX_FILE_BYTES, what="a web config")
    except YamlFileError as error:
        raise WebConfigError([str(error)]) from None
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
