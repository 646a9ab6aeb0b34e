"""Structured logs: one JSON object per line, with an ``event`` name.

``log_event("square.sync_completed", store_id=..., updated=3)`` writes
``{"ts": ..., "level": "info", "event": "square.sync_completed", "store_id": ..., ...}``.
Records from other libraries (pyqueue, SQLAlchemy) come out as ``event: "log"``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

logger = logging.getLogger("bookwish")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or "log",
        }
        if out["event"] == "log":
            out["logger"] = record.name
            out["message"] = record.getMessage()
        out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bookwish", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._bookwish = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, event, extra={"event": event, "fields": fields})
