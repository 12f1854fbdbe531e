"""Audit records: one per authentication decision. They carry names, addresses and reasons, never secrets."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from .files import check_private_file, create_private_file


class Action(str, Enum):
    LOGIN = "login"
    PASSWORD_CHECK = "password-check"  # noqa: S105 (an event name: the password alone, before enrollment)
    LOGOUT = "logout"
    ENROLLMENT_STARTED = "enrollment-started"
    ENROLLMENT_SHOWN = "enrollment-shown"
    ENROLLMENT_CONFIRMED = "enrollment-confirmed"
    ENROLLMENT_CANCELLED = "enrollment-cancelled"
    RELINK = "relink"
    RESET = "reset"
    LOCK = "lock"
    UNLOCK = "unlock"
    RECOVERY_CODE_USED = "recovery-code-used"
    RECOVERY_CODES_REGENERATED = "recovery-codes-regenerated"
    KEY_ROTATED = "key-rotated"
    WEBAUTHN_ADDED = "webauthn-added"
    WEBAUTHN_REMOVED = "webauthn-removed"
    WEBAUTHN_CLONED = "webauthn-cloned"  # a key's signature counter went backwards: two copies of it exist


@dataclass(frozen=True)
class AuditEvent:
    """What happened, to whom, from where. ``reason`` is one word from a fixed vocabulary, never user input."""

    action: Action
    username: str
    outcome: str  # "success" or "failure"
    reason: str
    timestamp: float
    remote_addr: str | None = None

    def as_dict(self) -> dict[str, object]:
        record = asdict(self)
        record["action"] = self.action.value
        return record


AuditSink = Callable[[AuditEvent], None]


def discard(event: AuditEvent) -> None:
    """The sink for callers that do not audit (tests of pure logic)."""


def logging_sink(logger: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> AuditSink:
    def emit(event: AuditEvent) -> None:
        level = logging.INFO if event.outcome == "success" else logging.WARNING
        logger.log(
            level,
            "2FA %s %s for %r from %s: %s",
            event.action.value,
            event.outcome,
            event.username,
            event.remote_addr or "-",
            event.reason,
        )

    return emit


class JsonlAuditLog:
    """Appends one JSON object per line to a 0600 file, a format fail2ban and log shippers read directly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists() and not path.is_symlink():
            create_private_file(path, exist_ok=True)
        check_private_file(path, what="audit log")
        self._lock = threading.Lock()

    def __call__(self, event: AuditEvent) -> None:
        line = json.dumps(event.as_dict(), sort_keys=True) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)


def fan_out(*sinks: AuditSink) -> AuditSink:
    def emit(event: AuditEvent) -> None:
        for sink in sinks:
            sink(event)

    return emit
