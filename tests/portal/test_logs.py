"""Log lines: one JSON object each (or plain text for a developer), with the request id of the
work they belong to, and never a token. That the id reaches a real worker's lines is shown in
tests/provisioning/test_observability.py."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from portal.logs import ContextFilter, JsonFormatter, PlainFormatter
from tests.portal.test_settings import PRODUCTION_LIKE, manage

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the root logger's handlers write, in the JSON format of settings.LOGGING."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_a_line_logged_in_a_request_is_one_json_object_with_its_request_id(
    settings: Any, captured: io.StringIO
) -> None:
    settings.METRICS_TOKEN = "the-real-metrics-token-0123456789"

    response = Client().get(
        "/metrics",
        HTTP_X_REQUEST_ID="browser-req-42",
        HTTP_AUTHORIZATION="Bearer a-token-that-must-not-be-logged",
    )

    assert response.status_code == 401
    assert response["X-Request-ID"] == "browser-req-42"
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    [line] = [line for line in lines if line["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert line["message"] == "Unauthorized: /metrics"
    assert line["request_id"] == "browser-req-42"
    assert "task_id" not in line  # not in a task
    when = datetime.datetime.fromisoformat(line["time"])
    assert when.utcoffset() == datetime.timedelta(0)
    assert "a-token-that-must-not-be-logged" not in captured.getvalue()
    assert "the-real-metrics-token" not in captured.getvalue()


def test_an_exception_stays_on_its_one_line() -> None:
    logger = logging.getLogger("tests.logs")
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record = logger.makeRecord(
            "tests.logs", logging.ERROR, __file__, 1, "failed: %s", ("x",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    ContextFilter().filter(record)

    text = JsonFormatter().format(record)

    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "failed: x"
    assert "ValueError: first\nsecond" in entry["exception"]


def test_the_plain_format_names_the_request_only_when_there_is_one() -> None:
    record = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "hi", (), None)
    record.request_id = "r-1"
    with_id = PlainFormatter().format(record)
    record.request_id = ""
    without = PlainFormatter().format(record)

    assert with_id.endswith("INFO x [request=r-1] hi")
    assert without.endswith("INFO x hi")


def test_logs_are_json_by_default_outside_development_and_plain_on_request(
    tmp_path: Path,
) -> None:
    say = "import logging; logging.getLogger('tilgang.test').warning('hello %s', 'there')"
    production = manage("shell", "-c", say, env=PRODUCTION_LIKE, tmp_path=tmp_path)
    plain = manage(
        "shell", "-c", say, env={**PRODUCTION_LIKE, "LOG_FORMAT": "plain"}, tmp_path=tmp_path
    )
    wrong = manage("check", env={**PRODUCTION_LIKE, "LOG_FORMAT": "xml"}, tmp_path=tmp_path)

    [line] = [line for line in production.stderr.splitlines() if "hello" in line]
    assert json.loads(line)["message"] == "hello there"
    assert json.loads(line)["logger"] == "tilgang.test"
    [text] = [line for line in plain.stderr.splitlines() if "hello" in line]
    assert text.endswith("WARNING tilgang.test hello there")
    assert wrong.returncode != 0
    assert "LOG_FORMAT must be json or plain" in wrong.stderr
