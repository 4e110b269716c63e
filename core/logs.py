"""Logging for the API and the worker: plain text for a terminal, or one JSON object per line
carrying the request id (API) and the workflow id (worker) so a log pipeline can follow one
request or one internship across processes."""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The id of the HTTP request being served (set by the API's middleware).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


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
        if record.exc_info:
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
        "handlers": {"main": {"class": "logging.StreamHandler", "formatter": "main"}},
        "root": {"level": "INFO", "handlers": ["main"]},
        # uvicorn's own loggers go through the same handler.
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(process: str, fmt: str) -> None:
    logging.config.dictConfig(dict_config(process, fmt))
