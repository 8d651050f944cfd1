"""``--config.file``: valid files, each default falling back to the flags and environment,
and the settings each organization is served with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.collectors.catalog import COLLECTOR_DEFAULTS, COLLECTOR_NAMES
from exporter.config import ConfigError, Settings, build_parser, load_configuration
from exporter.organizations import (
    DemoOrganization,
    OrganizationConfig,
    OrganizationsFile,
    load_organizations,
    organization_settings,
)
from exporter.organizations.demo import demo_faults, demo_spec
from exporter.simulator.demo import DEMO_SPEC
from exporter.simulator.faults import Fault

pytestmark = pytest.mark.usefixtures("clean_environment")

FAKE_KEY = "sk-admin-fake-config-file-0000"
DEFAULT_ON = tuple(name for name in COLLECTOR_NAMES if COLLECTOR_DEFAULTS[name])


def key_file(directory: Path, name: str) -> Path:
    path = directory / f"{name}.key"
    path.write_text(FAKE_KEY + "\n")
    return path


def write(directory: Path, document: object) -> Path:
    path = directory / "organizations.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def configure(argv: list[str]):  # type: ignore[no-untyped-def]
    return load_configuration(build_parser().parse_args(argv))


def test_a_minimal_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"organizations": [{"name": "prod", "admin_key_file": str(key_file(tmp_path, "prod"))}]},
    )
    [prod] = load_organizations(path).organizations
    assert prod.name == "prod"
    assert prod.admin_key_file == tmp_path / "prod.key"
    assert prod.base_url is None
    assert prod.collectors == {}
    assert prod.project_include is None
    assert prod.project_exclude is None
    assert prod.include_archived is None
    assert prod.demo is None


def test_every_field_as_the_issue_writes_it(tmp_path: Path) -> None:
    key_file(tmp_path, "prod")
    key_file(tmp_path, "staging")
    path = tmp_path / "organizations.yml"
    path.write_text(
        "organizations:\n"
        "  - name: prod\n"
        "    admin_key_file: prod.key\n"
        "    base_url: https://api.openai.com/v1/\n"
        "    collectors: {usage: false, rate_limits: true}\n"
        '    project_include: "team-.*"\n'
        '    project_exclude: "sandbox"\n'
        "    include_archived: false\n"
        "  - name: staging_2\n"
        f"    admin_key_file: {tmp_path / 'staging.key'}\n"
    )
    loaded = load_organizations(path)
    assert loaded.names == ("prod", "staging_2")
    prod = loaded.organization("prod")
    assert prod is not None
    # Relative key files are from the file's own directory, whatever the working directory.
    assert prod.admin_key_file == tmp_path / "prod.key"
    assert prod.base_url == "https://api.openai.com/v1"
    assert prod.collectors == {"usage": False, "rate_limits": True}
    assert prod.project_include is not None
    assert prod.project_include.pattern == "team-.*"
    assert prod.project_exclude is not None
    assert prod.project_exclude.pattern == "sandbox"
    assert prod.include_archived is False
    assert loaded.organization("nope") is None


def test_demo_organizations_need_no_key_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "organizations": [
                {"name": "big", "demo": {"seed": 3, "projects": 20, "keys_per_project": 50}},
                {"name": "failing", "demo": {"faults": [{"endpoint": "users", "status": 503}]}},
                {"name": "plain"},
            ]
        },
    )
    big, failing, plain = load_organizations(path, demo=True).organizations
    assert big.admin_key_file is None
    assert big.demo == DemoOrganization(seed=3, projects=20, keys_per_project=50)
    assert plain.demo is None
    assert failing.demo is not None
    injector = demo_faults(failing.demo)
    for _ in range(3):  # armed for every request, not once
        assert injector.take("users") == Fault("status", status=503, delay=5.0)
    assert injector.take("api_keys") is None
    with pytest.raises(ConfigError) as caught:
        load_organizations(path)  # without --demo, each needs its key file
    assert len(caught.value.problems) == 3


def test_a_demo_organization_maps_onto_the_simulator() -> None:
    default = demo_spec(DemoOrganization())
    # Unset, a simulated organization is today's demo size.
    assert (default.projects, default.keys_per_project) == (
        DEMO_SPEC.projects,
        DEMO_SPEC.keys_per_project,
    )
    spec = demo_spec(DemoOrganization(seed=9, projects=2, keys_per_project=3))
    assert (spec.seed, spec.projects, spec.keys_per_project) == (9, 2, 3)
    assert demo_faults(DemoOrganization(latency=0.25)).latency == 0.25


def base_settings(**values: object) -> Settings:
    return Settings(demo=True, **values)  # type: ignore[arg-type]


def test_unset_values_fall_back_to_the_flags_and_environment(tmp_path: Path) -> None:
    base = base_settings(
        base_url="http://127.0.0.1:1/v1",
        openai_project_include="prod-.*",
        openai_project_exclude="prod-old",
        openai_include_archived=True,
        cache_ttl=42.0,
        openai_concurrency=3,
        usage_lookback=7200.0,
    )
    organization = OrganizationConfig(name="prod", admin_key_file=key_file(tmp_path, "prod"))
    effective = organization_settings(base, organization)
    assert effective.admin_key_file == tmp_path / "prod.key"
    assert effective.base_url == "http://127.0.0.1:1/v1"
    assert effective.openai_project_include == base.openai_project_include
    assert effective.openai_project_exclude == base.openai_project_exclude
    assert effective.openai_include_archived is True
    assert effective.enabled_collectors == DEFAULT_ON
    # Exporter-wide settings are never the organization's.
    assert (effective.cache_ttl, effective.openai_concurrency) == (42.0, 3)
    assert effective.usage_lookback == 7200.0


def test_the_organization_s_values_win(tmp_path: Path) -> None:
    base = base_settings(openai_project_include="prod-.*", openai_include_archived=True)
    organization = OrganizationConfig.model_validate(
        {
            "name": "research",
            "admin_key_file": str(key_file(tmp_path, "research")),
            "base_url": "https://eu.example.com/v1",
            "project_include": "lab-.*",
            "project_exclude": "lab-scratch",
            "include_archived": False,
        }
    )
    effective = organization_settings(base, organization)
    assert effective.base_url == "https://eu.example.com/v1"
    assert effective.openai_project_include is not None
    assert effective.openai_project_include.pattern == "lab-.*"
    assert effective.openai_project_exclude is not None
    assert effective.openai_project_exclude.pattern == "lab-scratch"
    assert effective.openai_include_archived is False
    # base is untouched: each organization gets its own copy.
    assert base.openai_include_archived is True


def test_collectors_switch_on_and_off_over_the_flags(tmp_path: Path) -> None:
    base = base_settings(enabled_collectors=("api_keys", "users", "usage"))
    organization = OrganizationConfig(
        name="prod",
        admin_key_file=key_file(tmp_path, "prod"),
        collectors={"usage": False, "rate_limits": True, "api_keys": True},
    )
    effective = organization_settings(base, organization)
    # The flags' set, then the map: usage off, rate_limits on, the rest as the flags say,
    # in the catalogue's order.
    assert effective.enabled_collectors == ("api_keys", "users", "rate_limits")
    assert base.enabled_collectors == ("api_keys", "users", "usage")


def test_the_key_of_the_environment_never_reaches_an_organization(tmp_path: Path) -> None:
    from pydantic import SecretStr

    base = Settings(admin_key=SecretStr(FAKE_KEY))
    organization = OrganizationConfig(name="prod", admin_key_file=key_file(tmp_path, "prod"))
    effective = organization_settings(base, organization)
    assert effective.admin_key is None
    assert effective.admin_key_file == tmp_path / "prod.key"


def test_the_command_line_loads_the_file_once_and_returns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        {"organizations": [{"name": "prod", "admin_key_file": str(key_file(tmp_path, "prod"))}]},
    )
    # No admin key in the environment: each organization has its own file.
    monkeypatch.setenv("OPENAI_EXPORTER_CONFIG_FILE", str(path))
    monkeypatch.setenv("OPENAI_EXPORTER_CACHE_TTL", "2m")
    configuration = configure(["--no-collector.usage"])
    assert configuration.settings.config_file == path
    assert configuration.settings.cache_ttl == 120.0
    assert isinstance(configuration.organizations, OrganizationsFile)
    assert configuration.organizations.names == ("prod",)
    [prod] = configuration.organizations.organizations
    assert "usage" not in organization_settings(configuration.settings, prod).enabled_collectors


def test_without_a_config_file_there_are_no_organizations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", FAKE_KEY)
    configuration = configure([])
    assert configuration.organizations is None
    assert configuration.settings.config_file is None


def test_check_config_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        {
            "organizations": [
                {"name": "prod", "admin_key_file": str(key_file(tmp_path, "prod"))},
                {"name": "staging", "admin_key_file": str(key_file(tmp_path, "staging"))},
            ]
        },
    )
    assert main(["--check-config", f"--config.file={path}"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "openai-key-exporter: configuration OK (organizations: prod, staging)"
    assert FAKE_KEY not in out.out + out.err


@pytest.mark.parametrize("variable", ["OPENAI_ADMIN_KEY", "OPENAI_ADMIN_KEY_FILE"])
def test_a_key_of_the_environment_besides_the_file_is_refused(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        {"organizations": [{"name": "prod", "admin_key_file": str(key_file(tmp_path, "prod"))}]},
    )
    monkeypatch.setenv(variable, FAKE_KEY if variable == "OPENAI_ADMIN_KEY" else str(path))
    with pytest.raises(ConfigError) as caught:
        configure([f"--config.file={path}"])
    [line] = caught.value.problems
    assert line == (
        f"{variable} is set, but with --config.file (OPENAI_EXPORTER_CONFIG_FILE) each "
        "organization names its own admin_key_file: unset it"
    )
