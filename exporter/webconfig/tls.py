"""The SSL context a ``tls_server_config`` asks for: certificate and key (files or
inline PEM), client CA and verification, TLS versions and cipher suites.

Built whole at start and again at each certificate renewal (``reload``). Problems are
``WebConfigError`` lines; inline key material never reaches one.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from exporter.webconfig.model import CIPHER_SUITES, TlsServerConfig, WebConfigError

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class _EncryptedKeyError(Exception):
    pass


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and hang a container.
    raise _EncryptedKeyError


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """Inline PEM as a path ``ssl`` can load: an anonymous memory file where Linux has
    them (a read-only root filesystem is fine), else a private temporary file."""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("web-config-pem", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, data)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as handle:  # pragma: no cover
        handle.write(data)
        handle.flush()
        yield handle.name


def source(
    inline: str | None, file: str | None, directory: Path, name: str
) -> tuple[str | None, Path | None]:
    if inline is not None and file is not None:
        raise WebConfigError([f"tls_server_config: give {name} or {name}_file, not both"])
    if file is None:
        return inline, None
    candidate = Path(file)
    return None, candidate if candidate.is_absolute() else directory / candidate


def server_context(tls: TlsServerConfig, directory: Path) -> ssl.SSLContext:
    problems: list[str] = []
    cert_text, cert_path = source(tls.cert, tls.cert_file, directory, "cert")
    key_text, key_path = source(tls.key, tls.key_file, directory, "key")
    ca_text, ca_path = source(tls.client_ca, tls.client_ca_file, directory, "client_ca")
    if cert_text is None and cert_path is None:
        problems.append("tls_server_config: cert_file (or cert) is required")
    if key_text is None and key_path is None:
        problems.append("tls_server_config: key_file (or key) is required")
    auth = tls.client_auth_type or "NoClientCert"
    has_ca = ca_text is not None or ca_path is not None
    if auth in ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert"):
        problems.append(
            f"tls_server_config.client_auth_type: {auth} accepts client certificates without "
            "verifying them, which proves nothing; use RequireAndVerifyClientCert (or "
            "VerifyClientCertIfGiven) with client_ca_file"
        )
    elif auth == "NoClientCert" and has_ca:
        problems.append(
            "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert; "
            "set client_auth_type: RequireAndVerifyClientCert"
        )
    elif auth != "NoClientCert" and not has_ca:
        problems.append(f"tls_server_config: client_auth_type {auth} needs client_ca_file")
    if tls.client_allowed_sans and auth != "RequireAndVerifyClientCert":
        problems.append(
            "tls_server_config: client_allowed_sans needs client_auth_type: "
            "RequireAndVerifyClientCert (otherwise a client may send no certificate)"
        )
    if _TLS_VERSIONS[tls.min_version] > _TLS_VERSIONS[tls.max_version]:
        problems.append("tls_server_config: min_version must not exceed max_version")
    if tls.curve_preferences:
        problems.append(
            "tls_server_config.curve_preferences: not supported by this exporter (Python's "
            "ssl cannot set a curve list); remove it to use OpenSSL's defaults"
        )
    if problems:
        raise WebConfigError(problems)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    except ValueError as error:  # pragma: no cover - an OpenSSL built without a version
        raise WebConfigError([f"tls_server_config: {error}"]) from None
    _load_chain(context, cert_text, cert_path, key_text, key_path)
    if auth != "NoClientCert":
        context.verify_mode = (
            ssl.CERT_REQUIRED if auth == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
        )
        _load_client_ca(context, ca_text, ca_path)
    suites = [CIPHER_SUITES[name] for name in tls.cipher_suites if CIPHER_SUITES[name]]
    if suites:
        try:
            context.set_ciphers(":".join(suites))
        except ssl.SSLError:
            raise WebConfigError(
                ["tls_server_config.cipher_suites: none of them is available in this OpenSSL"]
            ) from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def ssl_reason(error: Exception) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error.args[-1] if error.args else "")
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return type(error).__name__


def _load_chain(
    context: ssl.SSLContext,
    cert_text: str | None,
    cert_path: Path | None,
    key_text: str | None,
    key_path: Path | None,
) -> None:
    with contextlib.ExitStack() as stack:
        cert = str(cert_path) if cert_path else stack.enter_context(_pem_file(cert_text or ""))
        key = str(key_path) if key_path else stack.enter_context(_pem_file(key_text or ""))
        for name, where, inline in (("cert", cert_path, cert_text), ("key", key_path, key_text)):
            if where is not None and not where.is_file():
                raise WebConfigError([f"tls_server_config.{name}_file: {where}: no such file"])
            if inline is not None and "-----BEGIN" not in inline:
                raise WebConfigError([f"tls_server_config.{name}: not PEM text"])
        try:
            context.load_cert_chain(cert, key, password=_no_passphrase)
        except _EncryptedKeyError:
            raise WebConfigError(
                ["tls_server_config: the private key is encrypted; give an unencrypted key"]
            ) from None
        except (ssl.SSLError, OSError, ValueError) as error:
            # Never str(error) of inline material: only OpenSSL's short reason.
            raise WebConfigError(
                [
                    "tls_server_config: cannot load the certificate and key "
                    f"({ssl_reason(error)}); are they PEM, and do they belong together?"
                ]
            ) from None


def _load_client_ca(context: ssl.SSLContext, ca_text: str | None, ca_path: Path | None) -> None:
    try:
        if ca_path is not None:
            if not ca_path.is_file():
                raise WebConfigError([f"tls_server_config.client_ca_file: {ca_path}: no such file"])
            context.load_verify_locations(cafile=str(ca_path))
        else:
            context.load_verify_locations(cadata=ca_text or "")
    except (ssl.SSLError, OSError, ValueError) as error:
        raise WebConfigError(
            [f"tls_server_config: cannot load the client CA ({ssl_reason(error)}); is it PEM?"]
        ) from None
