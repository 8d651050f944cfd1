"""A bad --web.config.file is refused at start: exit status 2, one line per problem
naming the flag, the file and the setting, and never a secret from the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from exporter.cli import main
from exporter.webconfig import MAX_FILE_BYTES, WebConfigError, load_web_config
from tests.hostile.cases import CANARY, CANARY_MARK
from tests.hostile.pki import PROMETHEUS_HASH, Pki, tls_section, write_web_config

FLAG = "--web.config.file (OPENAI_EXPORTER_WEB_CONFIG_FILE)"

Prepare = Callable[[Pki], object]


def _encrypted_key(pki: Pki) -> object:
    key = serialization.load_pem_private_key(
        (pki.directory / "server.key").read_bytes(), password=None
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (pki.directory / "encrypted.key").write_bytes(encrypted)
    return {"tls_server_config": tls_section(key_file="encrypted.key")}


def _mismatched_key(pki: Pki) -> object:
    other = pki.server_ca.issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(pki.directory / "other.key"))
    return {"tls_server_config": tls_section(key_file="other.key")}


def _garbage_cert(pki: Pki) -> object:
    (pki.directory / "bad.crt").write_text("not a certificate\n")
    return {"tls_server_config": tls_section(cert_file="bad.crt")}


def _garbage_ca(pki: Pki) -> object:
    (pki.directory / "bad-ca.pem").write_text("not a CA\n")
    return _ca(client_auth_type="RequireAndVerifyClientCert", client_ca_file="bad-ca.pem")


def _ca(**extra: object) -> dict[str, object]:
    return {"tls_server_config": tls_section(**extra)}


# (id, what the file holds, a fragment of the one expected line)
BAD_FILES: list[tuple[str, Prepare | str | object, str]] = [
    ("not-yaml", "tls_server_config: [unclosed\n", "is not valid YAML"),
    ("tab-indent", "tls_server_config:\n\tcert_file: x\n", "is not valid YAML"),
    (
        "secret-on-a-broken-line",
        f"basic_auth_users:\n  alice: {CANARY}: [\n",
        "is not valid YAML",
    ),
    ("a-list", "- tls_server_config\n", "must be a YAML mapping"),
    ("a-string", "just text\n", "must be a YAML mapping"),
    ("unknown-top-level", {"tls_config": {}}, "tls_config: unknown setting"),
    (
        "unknown-tls-key",
        {"tls_server_config": tls_section(certfile="x")},
        "tls_server_config.certfile: unknown setting",
    ),
    (
        "duplicate-key",
        "basic_auth_users:\n  a: x\nbasic_auth_users:\n  b: y\n",
        "'basic_auth_users' appears twice",
    ),
    (
        "plain-password",
        {"tls_server_config": tls_section(), "basic_auth_users": {"prometheus": CANARY}},
        "the password of 'prometheus' is not a bcrypt hash",
    ),
    (
        "numeric-password",
        {"tls_server_config": tls_section(), "basic_auth_users": {"prometheus": 1234}},
        "basic_auth_users.prometheus: Input should be a valid string",
    ),
    (
        "user-with-colon",
        {"tls_server_config": tls_section(), "basic_auth_users": {"a:b": PROMETHEUS_HASH}},
        "user name 'a:b' is empty or holds ':'",
    ),
    (
        "basic-auth-without-tls",
        {"basic_auth_users": {"prometheus": PROMETHEUS_HASH}},
        "basic_auth_users without tls_server_config would send passwords in clear text",
    ),
    ("no-key", {"tls_server_config": {"cert_file": "server.crt"}}, "key_file (or key) is required"),
    (
        "no-cert",
        {"tls_server_config": {"key_file": "server.key"}},
        "cert_file (or cert) is required",
    ),
    (
        "only-min-version",
        {"tls_server_config": {"min_version": "TLS13"}},
        "cert_file (or cert) is required",
    ),
    (
        "missing-cert-file",
        {"tls_server_config": tls_section(cert_file="nowhere.crt")},
        "tls_server_config.cert_file:",
    ),
    (
        "cert-twice",
        {"tls_server_config": tls_section(cert="-----BEGIN CERTIFICATE-----")},
        "give cert or cert_file, not both",
    ),
    ("mismatched-key", _mismatched_key, "cannot load the certificate and key"),
    ("encrypted-key", _encrypted_key, "the private key is encrypted"),
    ("garbage-cert", _garbage_cert, "cannot load the certificate"),
    ("garbage-ca", _garbage_ca, "cannot load the client CA"),
    (
        "inline-key-not-pem",
        {"tls_server_config": {"cert_file": "server.crt", "key": CANARY}},
        "tls_server_config.key: not PEM text",
    ),
    (
        "unknown-client-auth",
        _ca(client_auth_type="Maybe"),
        "tls_server_config.client_auth_type: Input should be",
    ),
    (
        "request-client-cert",
        _ca(client_auth_type="RequestClientCert", client_ca_file="client-ca.crt"),
        "RequestClientCert accepts client certificates without verifying them",
    ),
    (
        "require-any-client-cert",
        _ca(client_auth_type="RequireAnyClientCert"),
        "RequireAnyClientCert accepts client certificates without verifying them",
    ),
    (
        "verify-without-ca",
        _ca(client_auth_type="RequireAndVerifyClientCert"),
        "client_auth_type RequireAndVerifyClientCert needs client_ca_file",
    ),
    (
        "ca-without-client-auth",
        _ca(client_ca_file="client-ca.crt"),
        "client_ca_file is set but client_auth_type is NoClientCert",
    ),
    (
        "missing-ca-file",
        _ca(client_auth_type="RequireAndVerifyClientCert", client_ca_file="nowhere.pem"),
        "tls_server_config.client_ca_file:",
    ),
    (
        "sans-without-verification",
        _ca(
            client_auth_type="VerifyClientCertIfGiven",
            client_ca_file="client-ca.crt",
            client_allowed_sans=["prometheus"],
        ),
        "client_allowed_sans needs client_auth_type: RequireAndVerifyClientCert",
    ),
    ("bad-min-version", _ca(min_version="TLS14"), "tls_server_config.min_version: Input should"),
    (
        "min-above-max",
        _ca(min_version="TLS13", max_version="TLS12"),
        "min_version must not exceed max_version",
    ),
    (
        "unknown-cipher",
        _ca(cipher_suites=["TLS_RSA_WITH_RC4_128_SHA"]),
        "unknown or insecure cipher suite 'TLS_RSA_WITH_RC4_128_SHA'",
    ),
    ("curves", _ca(curve_preferences=["X25519"]), "curve_preferences: not supported"),
    (
        "prefer-server-ciphers-not-bool",
        _ca(prefer_server_cipher_suites="yes please"),
        "prefer_server_cipher_suites: Input should be a valid boolean",
    ),
    (
        "unknown-header",
        {"tls_server_config": tls_section(), "http_server_config": {"headers": {"Server": "x"}}},
        "header 'Server' cannot be configured",
    ),
    (
        "bad-frame-options",
        {
            "tls_server_config": tls_section(),
            "http_server_config": {"headers": {"X-Frame-Options": "allow-from"}},
        },
        "X-Frame-Options must be one of deny, sameorigin",
    ),
    ("http2-not-bool", {"http_server_config": {"http2": "sure"}}, "http_server_config.http2"),
    ("rate-interval", {"rate_limit": {"interval": "soon", "burst": 5}}, "rate_limit.interval"),
    ("rate-burst", {"rate_limit": {"interval": "1s", "burst": -1}}, "rate_limit.burst"),
]


def _write(pki: Pki, content: Prepare | str | object) -> Path:
    document = content(pki) if callable(content) else content
    return write_web_config(pki.directory, document)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(content, expected) for _, content, expected in BAD_FILES],
    ids=[name for name, _, _ in BAD_FILES],
)
def test_a_bad_file_is_one_line_naming_flag_file_and_setting(
    content: Prepare | str | object, expected: str, tmp_path: Path
) -> None:
    path = _write(Pki.create(tmp_path), content)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    problems = caught.value.problems
    assert any(expected in line for line in problems), problems
    assert len(problems) <= 2, "one line per problem, and these files have one or two"
    for line in problems:
        assert line.startswith(f"{FLAG}: {path}: "), line
        assert "\n" not in line
        assert CANARY_MARK not in line


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("missing", lambda path: None),
        ("directory", lambda path: path.mkdir()),
        ("not-utf8", lambda path: path.write_bytes(b"tls_server_config: \xff\xfe\n")),
        ("huge", lambda path: path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))),
    ],
)
def test_an_unreadable_file_is_one_line(
    name: str, make: Callable[[Path], object], tmp_path: Path
) -> None:
    path = tmp_path / "web.yml"
    make(path)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    [line] = caught.value.problems
    assert line.startswith(f"{FLAG}: {path}: "), line


def test_every_problem_of_the_tls_section_at_once(tmp_path: Path) -> None:
    path = write_web_config(
        tmp_path,
        {
            "tls_server_config": {
                "client_auth_type": "RequireAnyClientCert",
                "min_version": "TLS13",
                "max_version": "TLS12",
            }
        },
    )
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert len(caught.value.problems) == 4  # cert, key, client auth, versions: a line each


@pytest.mark.parametrize(
    "document",
    ["", "# nothing\n", {"tls_server_config": {}}, {"tls_server_config": None}],
)
def test_an_empty_file_protects_nothing(document: object, tmp_path: Path) -> None:
    config = load_web_config(write_web_config(tmp_path, document))
    assert config.ssl_context is None
    assert not config.users


@pytest.fixture
def canary_key(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the admin key in the environment, a canary that must never be echoed."""
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)


@pytest.mark.usefixtures("canary_key")
@pytest.mark.parametrize("how", ["flag", "env"])
@pytest.mark.parametrize("check_only", [True, False])
def test_the_command_refuses_a_bad_file_with_exit_2(
    how: str,
    check_only: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_web_config(tmp_path, {"basic_auth_users": {"prometheus": CANARY}})
    argv = ["--check-config"] if check_only else []
    if how == "flag":
        argv.append(f"--web.config.file={path}")
    else:
        monkeypatch.setenv("OPENAI_EXPORTER_WEB_CONFIG_FILE", str(path))
    assert main(argv) == 2  # exits before serving: nothing is started
    out = capsys.readouterr()
    [line] = out.err.strip().splitlines()
    assert line.startswith(f"openai-key-exporter: {FLAG}: {path}: basic_auth_users")
    assert CANARY_MARK not in out.out + out.err


@pytest.mark.usefixtures("canary_key")
def test_check_config_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Pki.create(tmp_path)
    document = {"tls_server_config": tls_section(), "basic_auth_users": {"p": PROMETHEUS_HASH}}
    path = write_web_config(tmp_path, document)
    assert main(["--check-config", f"--web.config.file={path}"]) == 0
    assert "configuration OK" in capsys.readouterr().out


@pytest.mark.usefixtures("canary_key")
def test_the_insecure_basic_auth_flag_is_the_explicit_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_web_config(tmp_path, {"basic_auth_users": {"p": PROMETHEUS_HASH}})
    assert main(["--check-config", f"--web.config.file={path}"]) == 2
    assert "--web.allow-insecure-basic-auth" in capsys.readouterr().err
    assert (
        main(["--check-config", f"--web.config.file={path}", "--web.allow-insecure-basic-auth"])
        == 0
    )
    monkeypatch.setenv("OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH", "true")
    assert main(["--check-config", f"--web.config.file={path}"]) == 0
