"""Configuration: flags over environment, one line per problem, exit status 2."""

from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import ConfigError, build_parser, load_settings

pytestmark = pytest.mark.usefixtures("clean_environment")

CANARY = "sk-admin-CANARY-config-0000"


def settings_from(argv: list[str]):  # type: ignore[no-untyped-def]
    return load_settings(build_parser().parse_args(argv))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    settings = settings_from([])
    assert settings.listen_address.port == 9471
    assert settings.listen_address.host is None
    assert settings.web_telemetry_path == "/metrics"
    assert settings.cache_ttl == 300.0
    assert settings.openai_concurrency == 8
    assert settings.base_url == "https://api.openai.com/v1"
    assert not settings.metrics_owner_email


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_EXPORTER_CACHE_TTL", "10m")
    monkeypatch.setenv("OPENAI_EXPORTER_OPENAI_INCLUDE_ARCHIVED", "true")
    settings = settings_from(["--cache.ttl", "90s", "--no-openai.include-archived"])
    assert settings.cache_ttl == 90.0
    assert settings.openai_include_archived is False


def test_environment_names_every_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(CANARY)
    for name, value in {
        "OPENAI_ADMIN_KEY_FILE": str(key_file),
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1/",
        "OPENAI_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:9000",
        "OPENAI_EXPORTER_WEB_TELEMETRY_PATH": "/m",
        "OPENAI_EXPORTER_CACHE_TTL": "1h",
        "OPENAI_EXPORTER_LOG_FORMAT": "json",
        "OPENAI_EXPORTER_OPENAI_CONCURRENCY": "16",
        "OPENAI_EXPORTER_OPENAI_PROJECT_EXCLUDE": "sandbox-.*",
        "OPENAI_EXPORTER_METRICS_OWNER_EMAIL": "1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = settings_from([])
    assert settings.admin_key_file == key_file
    assert settings.base_url == "http://127.0.0.1:1/v1"
    assert str(settings.listen_address) == "127.0.0.1:9000"
    assert settings.web_telemetry_path == "/m"
    assert settings.cache_ttl == 3600.0
    assert settings.log_format == "json"
    assert settings.openai_concurrency == 16
    assert settings.openai_project_exclude is not None
    assert settings.openai_project_exclude.fullmatch("sandbox-1")
    assert settings.metrics_owner_email


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--cache.ttl", "5x"], "--cache.ttl (OPENAI_EXPORTER_CACHE_TTL): invalid duration"),
        (["--cache.ttl", "0"], "--cache.ttl (OPENAI_EXPORTER_CACHE_TTL): Input should be greater"),
        (
            ["--openai.concurrency", "0"],
            "--openai.concurrency (OPENAI_EXPORTER_OPENAI_CONCURRENCY)",
        ),
        (
            ["--openai.concurrency", "many"],
            "--openai.concurrency (OPENAI_EXPORTER_OPENAI_CONCURRENCY)",
        ),
        (
            ["--openai.max-retries", "99"],
            "--openai.max-retries (OPENAI_EXPORTER_OPENAI_MAX_RETRIES)",
        ),
        (
            ["--web.listen-address", "9471"],
            "--web.listen-address (OPENAI_EXPORTER_WEB_LISTEN_ADDRESS)",
        ),
        (["--web.listen-address", ":70000"], "port 70000 is out of range"),
        (
            ["--web.telemetry-path", "/healthz"],
            "--web.telemetry-path (OPENAI_EXPORTER_WEB_TELEMETRY_PATH)",
        ),
        (["--log.level", "loud"], "--log.level (OPENAI_EXPORTER_LOG_LEVEL)"),
        (["--log.format", "xml"], "--log.format (OPENAI_EXPORTER_LOG_FORMAT)"),
        (["--openai.base-url", "ftp://x"], "--openai.base-url (OPENAI_BASE_URL)"),
        (
            ["--openai.project-include", "("],
            "--openai.project-include (OPENAI_EXPORTER_OPENAI_PROJECT_INCLUDE)",
        ),
        (["--cache.retry-interval", "10m"], "must not exceed --cache.ttl"),
    ],
)
def test_each_bad_setting_is_one_line_naming_it(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0]
    assert CANARY not in err


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_EXPORTER_CACHE_TTLL", "5m")
    with pytest.raises(ConfigError) as caught:
        settings_from(["--cache.ttl", "soon", "--openai.concurrency", "0"])
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("OPENAI_EXPORTER_CACHE_TTLL: unknown setting")


def test_missing_key_explains_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_ADMIN_KEY" in err
    assert "OPENAI_ADMIN_KEY_FILE" in err
    assert "--demo" in err


def test_both_key_sources_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-admin-test-fake")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_ADMIN_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ConfigError, match="both set"):
        settings_from([])


def test_empty_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "  ")
    with pytest.raises(ConfigError, match="OPENAI_ADMIN_KEY: is empty"):
        settings_from([])


def test_demo_needs_no_key() -> None:
    assert settings_from(["--demo"]).demo


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--cache.tll", "5m"])
    assert caught.value.code == 2
    assert "--cache.tll" in capsys.readouterr().err


def test_check_config_validates_and_exits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    assert main(["--check-config"]) == 0
    out = capsys.readouterr()
    assert "configuration OK" in out.out
    assert CANARY not in out.out + out.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from exporter import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"openai-key-exporter {__version__}"


def test_the_key_never_shows_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    settings = settings_from([])
    assert CANARY not in repr(settings)
    assert CANARY not in str(settings.model_dump())


def test_collectors_default_to_all_but_the_per_project_extras(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    assert settings_from([]).enabled_collectors == (
        "api_keys",
        "admin_api_keys",
        "users",
        "invites",
        "certificates",
        "usage",
        "costs",
        "spend_limits",
        "audit_logs",
    )


def test_collector_switches_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_USERS", "false")
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_SERVICE_ACCOUNTS", "true")
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_INVITES", "false")
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_COSTS", "false")
    settings = settings_from(
        ["--collector.invites", "--no-collector.certificates", "--collector.rate_limits"]
    )
    assert settings.enabled_collectors == (
        "api_keys",
        "admin_api_keys",
        "invites",
        "service_accounts",
        "usage",
        "spend_limits",
        "rate_limits",
        "audit_logs",
    )


def test_usage_and_costs_windows_and_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_EXPORTER_USAGE_GROUP_BY", " model , project_id")
    settings = settings_from(["--usage.lookback=6h", "--costs.interval=30m"])
    assert settings.usage_lookback == 6 * 3600
    assert settings.usage_interval == 300
    assert settings.usage_dimensions == ("project_id", "model"), "label order, not given order"
    assert (settings.costs_interval, settings.costs_lookback) == (1800, 3 * 86400)
    assert settings_from(["--usage.group-by="]).usage_dimensions == ()


def test_audit_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    defaults = settings_from([])
    assert (defaults.audit_interval, defaults.audit_overlap, defaults.audit_backfill) == (
        60,
        600,
        7 * 86400,
    )
    assert defaults.audit_backfill_max_pages == 100
    assert (defaults.audit_log_events, defaults.audit_log_personal_data) == (False, False)
    monkeypatch.setenv("OPENAI_EXPORTER_AUDIT_LOG_EVENTS", "true")
    flags = ["--audit.interval=30s", "--audit.overlap=15m", "--audit.backfill=1d"]
    given = settings_from([*flags, "--audit.backfill-max-pages=5", "--audit.log-personal-data"])
    assert (given.audit_interval, given.audit_overlap, given.audit_backfill) == (30, 900, 86400)
    assert given.audit_backfill_max_pages == 5
    assert (given.audit_log_events, given.audit_log_personal_data) == (True, True)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--audit.interval=0"],
            "--audit.interval (OPENAI_EXPORTER_AUDIT_INTERVAL): Input should be greater than 0",
        ),
        (
            ["--audit.overlap=0s"],
            "--audit.overlap (OPENAI_EXPORTER_AUDIT_OVERLAP): Input should be greater than or "
            "equal to 1",
        ),
        (
            ["--audit.backfill=soon"],
            "--audit.backfill (OPENAI_EXPORTER_AUDIT_BACKFILL): invalid duration 'soon'",
        ),
        (
            ["--audit.backfill-max-pages=0"],
            "--audit.backfill-max-pages (OPENAI_EXPORTER_AUDIT_BACKFILL_MAX_PAGES): Input "
            "should be greater than or equal to 1",
        ),
        (
            ["--audit.log-personal-data"],
            "--audit.log-personal-data (OPENAI_EXPORTER_AUDIT_LOG_PERSONAL_DATA) needs "
            "--audit.log-events",
        ),
    ],
)
def test_bad_audit_settings_are_one_line_naming_them(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], problem: str
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    with pytest.raises(ConfigError) as raised:
        settings_from(flags)
    [line] = raised.value.problems
    assert line.startswith(problem), line


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--usage.group-by=project_id,user_id"],
            "--usage.group-by (OPENAI_EXPORTER_USAGE_GROUP_BY): unknown dimension user_id",
        ),
        (
            ["--usage.lookback=168h"],
            "--usage.lookback (OPENAI_EXPORTER_USAGE_LOOKBACK): must be at most 167h",
        ),
        (
            ["--costs.lookback=200d"],
            "--costs.lookback (OPENAI_EXPORTER_COSTS_LOOKBACK): must be at most 178d",
        ),
        (
            ["--usage.interval=0"],
            "--usage.interval (OPENAI_EXPORTER_USAGE_INTERVAL): Input should be greater than 0",
        ),
    ],
)
def test_bad_usage_settings_are_one_line_naming_them(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], problem: str
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    with pytest.raises(ConfigError) as raised:
        settings_from(flags)
    [line] = raised.value.problems
    assert line.startswith(problem), line


def test_a_bad_collector_switch_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_USERS", "maybe")
    monkeypatch.setenv("OPENAI_EXPORTER_COLLECTOR_AUDIT", "true")
    assert main(["--check-config"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert any("--collector.users (OPENAI_EXPORTER_COLLECTOR_USERS)" in line for line in lines)
    assert any("OPENAI_EXPORTER_COLLECTOR_AUDIT: unknown setting" in line for line in lines)
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], 60.0),
        (["--cache.ttl=30s"], 30.0),
        (["--cache.ttl=30s", "--cache.retry-interval=10s"], 10.0),
    ],
)
def test_the_retry_interval_follows_a_shorter_ttl(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: float
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    assert settings_from(argv).retry_interval == expected


def test_an_explicit_retry_interval_above_the_ttl_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", CANARY)
    with pytest.raises(ConfigError, match="must not exceed"):
        settings_from(["--cache.ttl=30s", "--cache.retry-interval=1m"])
