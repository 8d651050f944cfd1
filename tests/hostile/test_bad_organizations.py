"""A bad --config.file is refused at start: exit status 2 and exactly one line per
problem, naming the flag, the file, the organization (by its name) and the field, and
never a byte of a key file.

Each case runs the command line's ``main`` with ``--check-config``, as
``test_bad_config`` does; one runs the installed command as a child process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.organizations.loading import MAX_FILE_BYTES
from exporter.organizations.schema import MAX_ORGANIZATIONS
from tests.hostile.cases import CANARY, CANARY_MARK
from tests.process import child_environment, exporter_command

pytestmark = pytest.mark.usefixtures("clean_environment")

FLAG = "--config.file (OPENAI_EXPORTER_CONFIG_FILE)"
NAME_RULE = (
    "name: must match [a-z0-9][a-z0-9_-]* (lower-case letters, digits, '_' and '-', "
    "not starting with '_' or '-'), at most 63 characters"
)
EXAMPLE = "like organizations: [{name: prod, admin_key_file: /run/secrets/openai/prod}]"
KNOWN = ", ".join(COLLECTOR_NAMES)


def org(name: object, key: str = "{dir}/prod.key", **fields: object) -> dict[str, object]:
    return {"name": name, "admin_key_file": key, **fields}


def two(**prod: object) -> dict[str, object]:
    """prod (with ``prod``'s fields over its own) and staging, each with its key file."""
    return {"organizations": [{**org("prod"), **prod}, org("staging", "{dir}/staging.key")]}


# (id, the file: YAML text or a document, the exact problems; {dir} is the file's directory)
BAD_FILES: list[tuple[str, str | object, list[str]]] = [
    (
        "unknown-field",
        two(colectors={"usage": False}),
        ["organization 'prod': unknown field 'colectors'"],
    ),
    ("unknown-top-level-field", {**two(), "organisations": []}, ["unknown field 'organisations'"]),
    (
        "unknown-demo-field",
        two(demo={"projetcs": 3}),
        ["organization 'prod': demo: unknown field 'projetcs'"],
    ),
    (
        "duplicate-name",
        {"organizations": [org("prod"), org("prod", "{dir}/staging.key")]},
        ["duplicate organization name 'prod'"],
    ),
    (
        "duplicate-name-and-a-bad-field",
        {"organizations": [org("prod", include_archived="yes"), org("prod", "{dir}/staging.key")]},
        [
            "duplicate organization name 'prod'",
            "organization 'prod' (#1): include_archived: Input should be a valid boolean",
        ],
    ),
    ("upper-case-name", {"organizations": [org("Prod")]}, [f"organization #1: {NAME_RULE}"]),
    ("name-with-a-dot", {"organizations": [org("prod.eu")]}, [f"organization #1: {NAME_RULE}"]),
    (
        "name-starting-with-a-dash",
        {"organizations": [org("-prod")]},
        [f"organization #1: {NAME_RULE}"],
    ),
    ("name-too-long", {"organizations": [org("p" * 64)]}, [f"organization #1: {NAME_RULE}"]),
    (
        "name-not-a-string",
        {"organizations": [org(7)]},
        ["organization #1: name: Input should be a valid string"],
    ),
    (
        "no-name",
        {"organizations": [{"admin_key_file": "{dir}/prod.key"}]},
        ["organization #1: name: required"],
    ),
    (
        "same-key-file-twice",
        {"organizations": [org("prod"), org("staging")]},
        ["organizations 'prod' and 'staging' name the same admin_key_file {dir}/prod.key"],
    ),
    (
        "same-key-file-spelt-differently",
        {"organizations": [org("prod", "prod.key"), org("staging", "{dir}/./prod.key")]},
        ["organizations 'prod' and 'staging' name the same admin_key_file {dir}/prod.key"],
    ),
    (
        "missing-key-file",
        two(admin_key_file="{dir}/gone.key"),
        [
            "organization 'prod': admin_key_file {dir}/gone.key: cannot be read "
            "(No such file or directory)"
        ],
    ),
    (
        "key-file-is-a-directory",
        two(admin_key_file="{dir}"),
        ["organization 'prod': admin_key_file {dir}: cannot be read (Is a directory)"],
    ),
    (
        "no-key-file-without-demo",
        {"organizations": [{"name": "prod"}]},
        [
            "organization 'prod': admin_key_file: required, a file holding this "
            "organization's admin key (only --demo runs without)"
        ],
    ),
    (
        "bad-regex",
        two(project_include="team-(.*"),
        [
            "organization 'prod': project_include: not a regular expression: "
            "missing ), unterminated subpattern at position 5"
        ],
    ),
    (
        "empty-include",
        two(project_include=""),
        [
            "organization 'prod': project_include: is empty, which would drop every project; "
            "leave it out to keep all"
        ],
    ),
    (
        "regex-not-a-string",
        two(project_exclude=["a", "b"]),
        ["organization 'prod': project_exclude: must be a string holding a regular expression"],
    ),
    (
        "unknown-collector",
        two(collectors={"usge": False}),
        [f"organization 'prod': collectors: unknown collector 'usge'; known: {KNOWN}"],
    ),
    (
        "collector-switch-not-a-boolean",
        two(collectors={"usage": "off"}),
        ["organization 'prod': collectors.usage: Input should be a valid boolean"],
    ),
    (
        "bad-base-url",
        two(base_url="api.openai.com/v1"),
        [
            "organization 'prod': base_url: must be an http:// or https:// URL, like "
            "https://api.openai.com/v1"
        ],
    ),
    (
        "problems-in-two-organizations",
        {
            "organizations": [
                org("prod", project_exclude="("),
                org("staging", "{dir}/staging.key", colectors={}),
            ]
        },
        [
            "organization 'prod': project_exclude: not a regular expression: "
            "missing ), unterminated subpattern at position 0",
            "organization 'staging': unknown field 'colectors'",
        ],
    ),
    (
        "not-yaml",
        "organizations: [unclosed\n",
        ["is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 1"],
    ),
    (
        "tab-indent",
        "organizations:\n\t- name: prod\n",
        [
            "is not valid YAML: found character '\\t' that cannot start any token at line 2, "
            "column 1"
        ],
    ),
    (
        "secret-on-a-broken-line",
        f"organizations:\n  - name: prod\n    admin_key_file: {CANARY}: [\n",
        ["is not valid YAML: mapping values are not allowed here at line 3, column 44"],
    ),
    (
        "duplicate-key",
        "organizations:\n  - name: prod\n    name: staging\n",
        ["is not valid YAML: key 'name' appears twice at line 3, column 5"],
    ),
    ("empty-file", "", [f"must be a YAML mapping holding the organizations, {EXAMPLE}"]),
    ("a-list", "- name: prod\n", [f"must be a YAML mapping holding the organizations, {EXAMPLE}"]),
    ("a-string", "just text\n", [f"must be a YAML mapping holding the organizations, {EXAMPLE}"]),
    (
        "no-organizations",
        {"orgs": []},
        ["unknown field 'orgs'", f"organizations: is missing; {EXAMPLE}"],
    ),
    ("organizations-null", "organizations:\n", [f"organizations: is missing; {EXAMPLE}"]),
    (
        "organizations-a-mapping",
        {"organizations": {"prod": {}}},
        [f"organizations: is not a list; {EXAMPLE}"],
    ),
    (
        "empty-list",
        {"organizations": []},
        ["organizations: is empty; name at least one organization"],
    ),
    (
        "an-organization-not-a-mapping",
        {"organizations": ["prod"]},
        ["organization #1: must be a mapping (name, admin_key_file, ...)"],
    ),
    (
        "too-many-organizations",
        {"organizations": [org(f"o{n}") for n in range(MAX_ORGANIZATIONS + 1)]},
        [
            f"organizations: {MAX_ORGANIZATIONS + 1} are more than one exporter serves "
            f"({MAX_ORGANIZATIONS}); spread them over several"
        ],
    ),
    (
        "bad-demo-fault",
        two(demo={"faults": [{"endpoint": "users", "status": 200}]}),
        ["organization 'prod': demo.faults.0.status: Input should be greater than or equal to 400"],
    ),
]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """Two key files holding the canary, so any echo of their content shows."""
    for name in ("prod", "staging"):
        (tmp_path / f"{name}.key").write_text(CANARY + "\n")
    return tmp_path


def write(directory: Path, content: str | object) -> Path:
    text = content if isinstance(content, str) else yaml.safe_dump(content)
    path = directory / "organizations.yml"
    path.write_text(text.replace("{dir}", str(directory)))
    return path


def check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The command line's problem lines (exit status 2), checked free of the key files."""
    assert main(["--check-config", *argv]) == 2
    out = capsys.readouterr()
    assert CANARY_MARK not in out.out + out.err
    return out.err.splitlines()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(content, expected) for _, content, expected in BAD_FILES],
    ids=[name for name, _, _ in BAD_FILES],
)
def test_a_bad_file_is_one_line_per_problem(
    content: str | object,
    expected: list[str],
    directory: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(directory, content)
    lines = check([f"--config.file={path}"], capsys)
    prefix = f"openai-key-exporter: {FLAG}: {path}: "
    assert lines == [prefix + line.replace("{dir}", str(directory)) for line in expected]


@pytest.mark.parametrize(
    ("name", "make", "problem"),
    [
        ("missing", lambda path: None, "cannot read: No such file or directory"),
        ("directory", lambda path: path.mkdir(), "cannot read: Is a directory"),
        (
            "not-utf8",
            lambda path: path.write_bytes(b"organizations: \xff\xfe\n"),
            "is not UTF-8 text",
        ),
        (
            "huge",
            lambda path: path.write_bytes(b"#" * (MAX_FILE_BYTES + 1)),
            f"is larger than {MAX_FILE_BYTES} bytes; not an organizations file",
        ),
    ],
)
def test_an_unreadable_file_is_one_line(
    name: str, make: object, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "organizations.yml"
    assert callable(make)
    make(path)
    lines = check([f"--config.file={path}"], capsys)
    assert lines == [f"openai-key-exporter: {FLAG}: {path}: {problem}"]


def test_a_key_pasted_into_the_file_is_not_echoed(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key where a key file's path, a field name or a value should be: refused, and the
    lines that name the path or the field show it redacted."""
    path = write(
        directory,
        {
            "organizations": [
                org("prod", CANARY),
                org("staging", "{dir}/staging.key", base_url=CANARY),
                {"name": "research", "admin_key_file": "{dir}/prod.key", CANARY: True},
            ]
        },
    )
    lines = check([f"--config.file={path}"], capsys)
    assert len(lines) == 3, lines
    assert "admin_key_file" in lines[0]
    assert "sk-[redacted]" in lines[0]
    assert "base_url: must be an http:// or https:// URL" in lines[1]
    assert lines[2].endswith("organization 'research': unknown field 'sk-[redacted]'")


def test_a_valid_file_says_ok_and_no_key(
    directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(directory, two())
    assert main(["--check-config", f"--config.file={path}"]) == 0
    out = capsys.readouterr()
    assert out.out == "openai-key-exporter: configuration OK (organizations: prod, staging)\n"
    assert CANARY_MARK not in out.out + out.err


def test_the_installed_command_refuses_a_bad_file(directory: Path) -> None:
    """The real process: exit status 2, every problem on stderr, nothing on stdout."""
    path = write(
        directory,
        {
            "organizations": [
                org("prod", colectors={}),
                org("staging", "{dir}/prod.key"),
                org("prod"),
            ]
        },
    )
    result = subprocess.run(
        [*exporter_command(), "--check-config"],
        env=child_environment({"OPENAI_EXPORTER_CONFIG_FILE": str(path)}),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    prefix = f"openai-key-exporter: {FLAG}: {path}: "
    assert result.stderr.splitlines() == [
        prefix + "duplicate organization name 'prod'",
        prefix + "organization 'prod' (#1): unknown field 'colectors'",
        prefix
        + f"organizations 'staging' and 'prod' name the same admin_key_file {directory}/prod.key",
    ]
    assert CANARY_MARK not in result.stderr
