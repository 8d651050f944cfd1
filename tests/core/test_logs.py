import json
import logging

import pytest

from exporter.logs import JsonFormatter, RedactingFormatter, configure_logging, redact


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("exporter.test", logging.WARNING, __file__, 1, message, args, None)


def test_json_lines_carry_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("refresh %s", "failed"))
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "exporter.test"
    assert entry["message"] == "refresh failed"
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("formatter", [JsonFormatter(), RedactingFormatter("%(message)s")])
def test_key_like_strings_are_scrubbed_in_either_format(formatter: logging.Formatter) -> None:
    line = formatter.format(record("oops %s and sk-proj-abcdEFGH1234", "sk-admin-test-fake-key"))
    assert "sk-admin-test" not in line
    assert "sk-proj-abcd" not in line
    assert line.count("sk-[redacted]") == 2


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("task-list sk- ok") == "task-list sk- ok"


def test_configure_logging_sets_level_and_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("warning", "json")
        logging.getLogger("exporter.x").info("hidden")
        logging.getLogger("exporter.x").warning("shown with sk-admin-test-fake-key")
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["message"] == "shown with sk-[redacted]"
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
