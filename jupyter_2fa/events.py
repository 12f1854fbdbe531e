"""Audit events through jupyter_events, the event bus of jupyter_server and JupyterHub (same schema for both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.audit import AuditEvent, AuditSink

SCHEMA_ID = "https://events.jupyter.org/jupyter_2fa/decision/v1"
SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "decision" / "v1.yaml"


def event_logger_sink(event_logger: Any) -> AuditSink:
    """An audit sink emitting each decision on ``event_logger`` (a ``jupyter_events.EventLogger``)."""
    if SCHEMA_ID not in event_logger.schemas.schema_ids:
        event_logger.register_event_schema(SCHEMA_PATH)

    def emit(event: AuditEvent) -> None:
        event_logger.emit(schema_id=SCHEMA_ID, data=event.as_dict())

    return emit
