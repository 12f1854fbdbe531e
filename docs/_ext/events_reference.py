"""The audit event reference, rendered at build time from the jupyter_events schema and the audit record.

``.. audit-events-reference::`` renders each schema in ``jupyter_2fa/event_schemas/`` (its id, version,
description and fields: type, required, values, description), then the JSONL audit file's record: the fields
of :class:`jupyter_2fa.core.audit.AuditEvent` and the values of its ``Action`` enum.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from generated import PARALLEL_SAFE, parsed
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

import jupyter_2fa
from jupyter_2fa.core import audit

SCHEMA_DIR = Path(jupyter_2fa.__file__).parent / "event_schemas"
TITLE_LEVELS = "=-"


def schemas() -> list[Path]:
    return sorted(SCHEMA_DIR.rglob("*.yaml"))


def _type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join("``null``" if value is None else f"``{value}``" for value in spec["enum"])
    kind = spec.get("type", "any")
    return " or ".join(f"``{each}``" for each in (kind if isinstance(kind, list) else [kind]))


def _schema_lines(path: Path) -> list[str]:
    schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    title = schema.get("title", path.stem)
    lines = [title, TITLE_LEVELS[0] * len(title), ""]
    where = path.relative_to(SCHEMA_DIR.parent.parent).as_posix()
    lines += [f"Schema ``{schema['$id']}``, version {schema['version']} (``{where}``).", ""]
    lines += [*schema.get("description", "").strip().splitlines(), ""]
    if schema.get("personal-data"):
        lines += ["The events carry personal data (account names and addresses).", ""]
    required = set(schema.get("required", []))
    lines += [".. list-table::", "   :header-rows: 1", "   :widths: 15 30 10 45", ""]
    lines += ["   * - Field", "     - Type", "     - Required", "     - Description"]
    for name, field in schema.get("properties", {}).items():
        lines += [
            f"   * - ``{name}``",
            f"     - {_type(field)}",
            f"     - {'yes' if name in required else 'no'}",
            f"     - {' '.join(field.get('description', '').split())}",
        ]
    return [*lines, ""]


JSON_TYPES = {str: "string", float: "number", int: "integer", bool: "boolean", type(None): "null"}


def _annotation(hint: Any) -> str:
    """A field's Python annotation as the JSON type of its value in the file."""
    if isinstance(hint, type) and issubclass(hint, audit.Enum):
        return f"``string`` (an ``{hint.__name__}`` value, below)"
    args = typing.get_args(hint)
    if args:
        return " or ".join(_annotation(arg) for arg in args)
    return f"``{JSON_TYPES.get(hint, getattr(hint, '__name__', str(hint)))}``"


def _record_lines() -> list[str]:
    title = "The JSONL audit file"
    lines = [title, TITLE_LEVELS[0] * len(title), ""]
    lines += [
        "With :py:attr:`~jupyter_2fa.config.TwoFactorConfig.audit_log_file` set, every decision is also appended to",
        "that file (created 0600) as one JSON object per line, with sorted keys. Its fields are those of",
        "``jupyter_2fa.core.audit.AuditEvent``, the same as the event's:",
        "",
    ]
    hints = typing.get_type_hints(audit.AuditEvent)
    lines += [".. list-table::", "   :header-rows: 1", "   :widths: 20 40 40", ""]
    lines += ["   * - Field", "     - Type", "     - Default"]
    for field in dataclasses.fields(audit.AuditEvent):
        default = "required" if field.default is dataclasses.MISSING else f"``{json.dumps(field.default)}``"
        lines += [f"   * - ``{field.name}``", f"     - {_annotation(hints[field.name])}", f"     - {default}"]
    lines += ["", ".. rubric:: Actions", "", "``action`` is one of:", ""]
    lines += [f"- ``{action.value}``" for action in audit.Action]
    lines += ["", ".. rubric:: Example", "", ".. code-block:: json", ""]
    example = audit.AuditEvent(audit.Action.LOGIN, "alice", "failure", "wrong-code", 1767225600.0, "192.0.2.7")
    lines += ["   " + json.dumps(example.as_dict(), sort_keys=True), ""]
    return lines


def render() -> list[str]:
    lines: list[str] = []
    for path in schemas():
        lines += _schema_lines(path)
    return lines + _record_lines()


class AuditEventsReference(SphinxDirective):
    """``.. audit-events-reference::``: the event schemas and the audit file's record."""

    def run(self) -> list[nodes.Node]:
        for path in schemas():
            self.env.note_dependency(str(path))
        return parsed(self, render(), str(SCHEMA_DIR))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("audit-events-reference", AuditEventsReference)
    return PARALLEL_SAFE
