"""The README is the user's reference: it must name every setting and every metric."""

import re
from pathlib import Path

from exporter.config import OPTIONS
from tests.support import CONTRACT

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_settings_table() -> None:
    rows = [line for line in README.splitlines() if line.startswith("| `--")]
    for option in OPTIONS:
        assert any(f"`{option.flag}`" in row and f"`{option.env}`" in row for row in rows), option


def test_the_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_every_exported_metric_is_in_the_metric_table() -> None:
    documented = set(re.findall(r"^\| `(openai_[a-z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == CONTRACT
