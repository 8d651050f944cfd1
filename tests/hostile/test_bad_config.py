"""Every setting, given a wrong type, range or combination, by flag and by environment:
exit status 2 and one line naming the flag and the variable, never the key.

The table must name every entry of ``OPTIONS``: a new setting without bad values
here fails ``test_every_option_has_bad_values``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import OPTIONS, Option
from tests.hostile.cases import CANARY, CANARY_MARK

pytestmark = pytest.mark.usefixtures("clean_environment")

_BY_FIELD = {option.field: option for option in OPTIONS}
# field -> (value, a fragment of the one line, environment only)
Bad = tuple[str, str, bool]


def bad(value: str, fragment: str = "", *, env_only: bool = False) -> Bad:
    return (value, fragment, env_only)


BAD_VALUES: dict[str, list[Bad]] = {
    "admin_key_file": [
        bad("/nonexistent/admin-key", "cannot read: No such file or directory"),
        bad("/", "cannot read: Is a directory"),
    ],
    "config_file": [
        bad("/nonexistent/organizations.yml", "cannot read: No such file or directory"),
        bad("/", "cannot read: Is a directory"),
    ],
    "base_url": [
        bad("ftp://api.example.com/v1", "must be an http:// or https:// URL"),
        bad("api.openai.com/v1", "must be an http:// or https:// URL"),
        bad("https://exa mple.com/v1", "must be an http:// or https:// URL"),
        bad("http://", "must be an http:// or https:// URL"),
    ],
    "web_listen_address": [
        bad("9471", "expected host:port"),
        bad(":70000", "port 70000 is out of range"),
        bad(":http", "expected host:port"),
        bad("", "expected host:port", env_only=True),
        bad("exa mple:9471", "is not a host name or IP address"),
        bad("[::1:9471", "is not a bracketed IPv6 address"),
    ],
    "web_telemetry_path": [
        bad("metrics", "must start with /"),
        bad("/", "not be one of"),
        bad("/healthz", "not be one of"),
        bad("/readyz", "not be one of"),
        bad("/me trics", "must be a plain URL path"),  # a route no request can reach
        bad("/metrics?x=1", "must be a plain URL path"),
    ],
    "web_config_file": [
        bad("/nonexistent/web.yml", "cannot read: No such file or directory"),
        bad("/", "cannot read: Is a directory"),
    ],
    "web_allow_insecure_basic_auth": [bad("maybe", "valid boolean", env_only=True)],
    "cache_ttl": [
        bad("5x", "invalid duration"),
        bad("0", "greater than 0"),
        bad("-5m", "invalid duration"),
        bad("inf", "invalid duration"),
        bad("1e3", "invalid duration"),
        bad("5m5", "invalid duration"),
        bad("", "invalid duration", env_only=True),
    ],
    "usage_interval": [bad("0", "greater than 0"), bad("often", "invalid duration")],
    "usage_lookback": [bad("8d", "must be at most 167h"), bad("0s", "greater than 0")],
    "usage_group_by": [
        bad("project_id,user_id", "unknown dimension user_id"),
        bad("batch", "unknown dimension batch"),
    ],
    "costs_interval": [bad("-1h", "invalid duration"), bad("0", "greater than 0")],
    "costs_lookback": [bad("1y", "must be at most 178d"), bad("0", "greater than 0")],
    "audit_interval": [bad("0", "greater than 0"), bad("often", "invalid duration")],
    "audit_overlap": [bad("0s", "greater than or equal to 1"), bad("-10m", "invalid duration")],
    "audit_backfill": [bad("a week", "invalid duration"), bad("-7d", "invalid duration")],
    "audit_backfill_max_pages": [
        bad("0", "greater than or equal to 1"),
        bad("10001", "less than or equal to 10000"),
        bad("all", "valid integer"),
    ],
    "audit_log_events": [bad("maybe", "valid boolean", env_only=True)],
    "audit_log_personal_data": [bad("2", "valid boolean", env_only=True)],
    "cache_retry_interval": [
        bad("0s", "greater than 0"),
        bad("soon", "invalid duration"),
        bad("10m", "must not exceed --cache.ttl"),  # the default TTL is 5m
    ],
    "scrape_timeout_margin": [
        bad("-1", "invalid duration"),
        bad("half", "invalid duration"),
        bad("20s", "must be below --scrape.default-timeout"),  # no scrape could wait
    ],
    "scrape_default_timeout": [bad("0", "greater than 0"), bad("ten", "invalid duration")],
    "log_level": [bad("loud", "Input should be"), bad("DEBUG", "Input should be")],
    "log_format": [bad("xml", "Input should be"), bad("", "Input should be", env_only=True)],
    "openai_concurrency": [
        bad("0", "greater than or equal to 1"),
        bad("65", "less than or equal to 64"),
        bad("many", "valid integer"),
        bad("1.5", "valid integer"),
    ],
    "openai_request_timeout": [bad("0", "greater than 0"), bad("never", "invalid duration")],
    "openai_max_retries": [
        bad("-1", "greater than or equal to 0"),
        bad("11", "less than or equal to 10"),
        bad("few", "valid integer"),
    ],
    "openai_refresh_timeout": [bad("0", "greater than 0"), bad("2 minutes", "invalid duration")],
    "openai_include_archived": [
        bad("maybe", "valid boolean", env_only=True),
        bad("2", "valid boolean", env_only=True),
    ],
    "openai_project_include": [
        bad("(", "valid regular expression"),
        bad("[a-", "valid regular expression"),
        bad("", "would drop every project", env_only=True),
    ],
    "openai_project_exclude": [bad("(", "valid regular expression"), bad("*", "")],
    "metrics_owner_email": [bad("maybe", "valid boolean", env_only=True)],
}


def _cases() -> list[object]:
    cases: list[object] = []
    for field, values in BAD_VALUES.items():
        for value, fragment, env_only in values:
            for via in ("env",) if env_only else ("flag", "env"):
                cases.append(
                    pytest.param(
                        _BY_FIELD[field],
                        value,
                        fragment,
                        via,
                        id=f"{field}-{via}-{value or 'empty'}",
                    )
                )
    return cases


def test_every_option_has_bad_values() -> None:
    assert {option.field for option in OPTIONS} == set(BAD_VALUES)


@pytest.mark.parametrize(("option", "value", "fragment", "via"), _cases())
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    option: Option,
    value: str,
    fragment: str,
    via: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if option.field not in ("admin_key_file", "config_file"):  # both name key files instead
        monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    argv = ["--check-config"]  # never serves, even if a bad value were let through
    if via == "flag":
        argv.append(f"{option.flag}={value}")
    else:
        monkeypatch.setenv(option.env, value)
    assert main(argv) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert option.flag in lines[0]
    assert option.env in lines[0]
    assert fragment in lines[0]
    assert CANARY_MARK not in out.out + out.err


@pytest.mark.parametrize(
    ("environment", "argv", "fragment"),
    [
        ({"OPENAI_ADMIN_KEY": CANARY, "OPENAI_ADMIN_KEY_FILE": __file__}, [], "both set"),
        ({}, [], "no admin key"),
        ({"OPENAI_ADMIN_KEY": "   "}, [], "OPENAI_ADMIN_KEY: is empty"),
        ({"OPENAI_ADMIN_KEY": CANARY}, ["--cache.ttl=30s", "--cache.retry-interval=1m"], "exceed"),
        ({"OPENAI_ADMIN_KEY": CANARY, "OPENAI_EXPORTER_DEMO": "maybe"}, [], "--demo"),
        ({"OPENAI_ADMIN_KEY": CANARY, "OPENAI_EXPORTER_CACHE_TLL": "5m"}, [], "unknown setting"),
    ],
)
def test_combinations_and_the_key_itself(
    environment: dict[str, str],
    argv: list[str],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert main(["--check-config", *argv]) == 2
    out = capsys.readouterr()
    [line] = out.err.strip().splitlines()
    assert fragment in line
    assert CANARY_MARK not in out.out + out.err


def test_the_key_pasted_into_any_setting_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The canary in every value option at once: one line each, none shows it."""
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    argv = ["--check-config"]
    for option in OPTIONS:
        if option.kind == "value" and option.field != "admin_key_file":
            argv.append(f"{option.flag}={CANARY}")
        elif option.kind == "bool":
            monkeypatch.setenv(option.env, CANARY)
    assert main(argv) == 2
    out = capsys.readouterr()
    assert CANARY_MARK not in out.out + out.err
    assert len(out.err.strip().splitlines()) >= 10
