"""The layout is the map: dependencies point one way along the data path
(web -> cache -> collectors -> upstream), the snapshot imports nothing of ours, and no
upstream, collector or cache code imports the health metrics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "exporter"

# room -> the rooms of ours it must never import
FORBIDDEN = {
    "exporter.snapshot": {"exporter"},  # plain data: nothing of ours at all
    "exporter.upstream": {
        "exporter.collectors",
        "exporter.cache",
        "exporter.rendering",
        "exporter.web",
        "exporter.health",
        "exporter.pipeline",
        "exporter.config",
    },
    "exporter.collectors": {
        "exporter.cache",
        "exporter.rendering",
        "exporter.web",
        "exporter.health",
        "exporter.pipeline",
        "exporter.config",
    },
    "exporter.cache": {"exporter.rendering", "exporter.web", "exporter.health", "exporter.config"},
    # Configuration only: what the file says, never how it is served.
    "exporter.organizations": {
        "exporter.cache",
        "exporter.rendering",
        "exporter.web",
        "exporter.health",
        "exporter.pipeline",
        "exporter.upstream",
    },
    "exporter.rendering": {
        "exporter.cache",
        "exporter.web",
        "exporter.health",
        "exporter.upstream",
    },
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "exporter" or name.startswith("exporter.")}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "simulator" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_dependencies_point_one_way(path: Path) -> None:
    name = module_name(path)
    for room, forbidden in FORBIDDEN.items():
        if name != room and not name.startswith(room + "."):
            continue
        for imported in imports_of(path):
            if imported == room or imported.startswith(room + "."):
                continue  # within its own room
            assert not any(
                imported == bad or imported.startswith(bad + ".") for bad in forbidden
            ), f"{name} imports {imported}"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_only_the_clock_module_reads_the_time(path: Path) -> None:
    if module_name(path) in {"exporter.clock", "exporter.logs"}:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).startswith("time.")
    ]
    assert calls == [], f"{module_name(path)} reads the time itself: {calls}"
