"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

The same YAML file the Go exporters take
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)::

    tls_server_config:
      cert_file: server.crt          # relative paths: from the file's own directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes only
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    rate_limit:
      interval: 1s
      burst: 20

The file is read and checked once, at start: a bad file stops the exporter with
exit status 2 and one line per problem, as any other bad setting does. Go exporters
re-read it per request; here only the certificate files are re-read, when they change
(``CERT_CHECK_INTERVAL``; see ``CertificateReloader``), so a renewal by cert-manager needs
no restart. Users, headers, rate limit and the rest of the file stay as loaded at start:
changing them takes a restart. Differences from the Go toolkit, each refused with its
reason rather than silently ignored:
``RequestClientCert`` and ``RequireAnyClientCert`` (client certificates that are
not verified prove nothing, and Python's ``ssl`` cannot ask for one without
verifying it) and ``curve_preferences`` (Python's ``ssl`` cannot set a curve list).
``http2`` is accepted and ignored: aiohttp serves HTTP/1.1.

Stricter than the Go toolkit: duplicate keys, a ``tls_server_config`` without a
certificate (Go would quietly serve plain HTTP), and basic auth over plain HTTP
unless ``--web.allow-insecure-basic-auth`` says TLS ends in front of the exporter.

/healthz and /readyz answer without credentials (and outside the rate limit) so
that probes keep working; everything else, the landing page included, needs them.
"""

from exporter.webconfig.basic_auth import MAX_PENDING_VERIFICATIONS, BasicAuthGuard
from exporter.webconfig.file import MAX_FILE_BYTES, load_web_config
from exporter.webconfig.middleware import protect
from exporter.webconfig.model import WebConfig, WebConfigError
from exporter.webconfig.reload import CertificateReloader

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_PENDING_VERIFICATIONS",
    "BasicAuthGuard",
    "CertificateReloader",
    "WebConfig",
    "WebConfigError",
    "load_web_config",
    "protect",
]
