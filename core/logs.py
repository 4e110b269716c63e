"""Logging for the API and the worker: plain text for a terminal, or one JSON object per line
carrying the request id (API) and the workflow id (worker) so a log pipeline can follow one
request or one internship across processes. Either way no line carries a sign-in link's secret:
the access log and ours say `/sign-in/[redacted]`."""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The id of the HTTP request being served (set by the API's middleware).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# A sign-in link's one-time secret, in a path or a URL: whoever reads the logs within its 15
# minutes could sign in as its owner.
_SECRET_IN_PATH = re.compile(r"(/sign-in/)[^\s/?#\"'<>]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with every sign-in secret replaced."""
    return _SECRET_IN_PATH.sub(rf"\g<1>{REDACTED}", text)


class Redacting(logging.Filter):
    """Takes sign-in secrets out of every record a handler writes: its arguments (the access
    log's path among them, keeping their shape), its message, and its exception's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            args = record.args.items()
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args}
        message = record.getMessage()
        if (cleaned := redact(message)) != message:  # an argument that is not a string said it
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            entry["request_id"] = rid
        # The Temporal SDK puts these on its workflow and activity loggers' records; our own
        # code passes `extra={"workflow_id": ...}` where it works for one internship.
        context: dict[str, Any] = {}
        for key in ("temporal_workflow", "temporal_activity"):
            context |= getattr(record, key, None) or {}
        if workflow_id := getattr(record, "workflow_id", None) or context.pop("workflow_id", None):
            entry["workflow_id"] = workflow_id
        entry.update(context)
        if record.exc_text:  # Redacting formats it first
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def dict_config(process: str, fmt: str) -> dict[str, Any]:
    """A logging.config dict: the worker applies it, uvicorn applies it in each API process."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": f"%(asctime)s {process} %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "filters": {"redacting": {"()": f"{__name__}.Redacting"}},
        "handlers": {
            "main": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["redacting"],
            }
        },
        "root": {"level": "INFO", "handlers": ["main"]},
        # uvicorn's own loggers go through the same handler (and so its redaction).
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(process: str, fmt: str) -> None:
    logging.config.dictConfig(dict_config(process, fmt))
