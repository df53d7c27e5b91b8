"""Log lines that say which work they belong to: the request id, and in a worker the task.

``ContextFilter`` (on the handler, so every record passes it, whichever logger made it) adds
``request_id``, ``task_id`` and ``task_name`` to each record; ``JsonFormatter`` writes one JSON
object a line, ``PlainFormatter`` the same as text (``settings.LOG_FORMAT``). The request id is
the one of ``audit.context``: set by its middleware in the web process, and in a worker by the
Celery signals of ``portal.celery`` from the message that started the task.

Nothing here reads a request's headers or a task's arguments: a log line holds what the code
logged and these ids, never a token.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from celery import current_task
from django.http import HttpRequest

from audit.context import current_request_id, request_id_of


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a response's error status (django.request) with the request, after the
        # middleware has let go of the request id: read it from that request then.
        request = getattr(record, "request", None)
        record.request_id = current_request_id() or (
            request_id_of(request) if isinstance(request, HttpRequest) else ""
        )
        # ``current_task`` is a proxy of the task running in this process, or of None.
        task: Any = current_task._get_current_object()  # type: ignore[attr-defined]
        task_id = getattr(getattr(task, "request", None), "id", None) or ""
        record.task_id = task_id
        record.task_name = getattr(task, "name", "") if task_id else ""
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    """The ids the filter added that have a value (a record made before the filter ran, by a
    handler of its own, has none)."""
    names = ("request_id", "task_id", "task_name")
    return {name: value for name in names if (value := getattr(record, name, ""))}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, and
    task_id and task_name in a task; exception text under ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        entry.update(_context(record))
        entry["process"] = record.process
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``<time> <level> <logger> [request=<id> task=<name>[<id>]] <message>``, for reading in a
    terminal; the brackets only when there is something to put in them."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(context)s%(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        context = _context(record)
        parts = []
        if "request_id" in context:
            parts.append(f"request={context['request_id']}")
        if "task_id" in context:
            parts.append(f"task={context.get('task_name', '')}[{context['task_id']}]")
        record.context = f"[{' '.join(parts)}] " if parts else ""
        return super().formatMessage(record)
