"""Reading a small YAML settings file: bounded size, UTF-8, PyYAML's safe loader with
keys given twice refused, and errors that never quote the file's text.

Shared by ``--web.config.file`` and ``--config.file``; each turns ``YamlFileError`` into
its own one-line problem prefixed with its flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YamlFileError(Exception):
    """The file cannot be read as YAML; the message is one line, without its content."""


class _NoDuplicatesLoader:
    """PyYAML's safe loader, refusing a key given twice (Go's strict loading does too)."""

    @staticmethod
    def load(text: str) -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return loader.construct_mapping(node)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def parse_yaml(text: str) -> Any:
    """The document in ``text``; ``YamlFileError`` saying what is wrong and where."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the exporter
        import json

        try:
            return json.loads(text)
        except ValueError:
            raise YamlFileError("is not JSON, and PyYAML (needed for YAML) is missing") from None
    try:
        return _NoDuplicatesLoader.load(text)
    except yaml.MarkedYAMLError as error:
        # Only the problem and where: PyYAML's own text quotes the line, which may hold a secret.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YamlFileError(f"is not valid YAML: {error.problem or error.context}{where}") from None
    except yaml.YAMLError:
        raise YamlFileError("is not valid YAML") from None


def read_yaml_file(path: Path, *, max_bytes: int, what: str) -> Any:
    """The YAML document in ``path`` (None for an empty file); ``what`` names the kind of
    file in the message about one larger than ``max_bytes``."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as error:
        raise YamlFileError(f"cannot read: {error.strerror or type(error).__name__}") from None
    if len(raw) > max_bytes:
        raise YamlFileError(f"is larger than {max_bytes} bytes; not {what}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlFileError("is not UTF-8 text") from None
    return parse_yaml(text)
