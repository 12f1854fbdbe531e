"""Audit events through jupyter_events, the event bus of jupyter_server and JupyterHub (same schema for both)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .core.audit import AuditEvent, AuditSink

if TYPE_CHECKING:
    from jupyter_events import EventLogger

SCHEMA_ID = "https://events.jupyter.org/jupyter_2fa/decision/v1"
SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "decision" / "v1.yaml"


def event_logger_sink(event_logger: EventLogger) -> AuditSink:
    """An audit sink emitting each decision on ``event_logger`` (jupyter_server's or JupyterHub's)."""
    if SCHEMA_ID not in event_logger.schemas.schema_ids:
        event_logger.register_event_schema(SCHEMA_PATH)

    def emit(event: AuditEvent) -> None:
        event_logger.emit(schema_id=SCHEMA_ID, data=event.as_dict())

    return emit
