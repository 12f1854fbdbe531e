"""The REST API reference, rendered at build time from the shipped OpenAPI documents.

``.. openapi-reference:: ../../jupyter_2fa/server/openapi.yaml`` (a path relative to the page) renders the
document's summary and description, its authentication schemes, every path and method (summary, description,
parameters, request body, responses with their status codes and headers) and its component schemas.
A path item that ``$ref``s another document (the hub's user API is the gate's) is rendered from that document,
with its own references resolved there.

sphinxcontrib-openapi (0.10) reads these documents (OpenAPI 3.1, references across files), but shows a request
body only as an example payload of placeholder values (no field descriptions, required fields or limits), and
neither the documents' descriptions nor their security schemes; so this small renderer does it instead.
Descriptions in the documents are reStructuredText (``literal``), as they are in the traits' help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from generated import PARALLEL_SAFE, parsed
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TITLE_LEVELS = "=-"  # the directive's own two levels; they nest below the page's section the directive is in


@dataclass(frozen=True)
class Operation:
    """One method of one path, as the document (after resolving references) states it."""

    path: str
    method: str
    spec: dict[str, Any]
    item: dict[str, Any]  # the path item, for parameters shared by its methods
    base: Path  # the document its references are relative to

    @property
    def statuses(self) -> list[str]:
        return [str(status) for status in self.spec.get("responses", {})]


class Document:
    """An OpenAPI document and the files its ``$ref``s reach, loaded once each."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._files: dict[Path, dict[str, Any]] = {}
        self.root = self.load(self.path)
        self.name = self.path.parent.name  # "server" or "hub": labels stay unique when both are on one site

    def load(self, path: Path) -> dict[str, Any]:
        if path not in self._files:
            self._files[path] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return self._files[path]

    def resolve(self, node: Any, base: Path) -> tuple[Any, Path]:
        """``node`` with its ``$ref`` (if any, repeatedly) followed, and the file the result lives in."""
        while isinstance(node, dict) and "$ref" in node:
            target, _, pointer = node["$ref"].partition("#")
            if target:
                base = (base.parent / target).resolve()
            node = self.load(base)
            for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, base

    def operations(self) -> list[Operation]:
        found = []
        for path, raw in self.root.get("paths", {}).items():
            item, base = self.resolve(raw, self.path)
            for method in METHODS:
                if method in item:
                    found.append(Operation(path, method, item[method], item, base))
        return found

    def label(self, *parts: str) -> str:
        slug = "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)
        return f"api-{self.name}-{slug}"

    def schema_label(self, base: Path, name: str) -> str:
        return f"api-{base.parent.name}-schema-{name.lower()}"


def _indent(text: str, prefix: str = "   ") -> list[str]:
    return [prefix + line if line.strip() else "" for line in text.strip("\n").splitlines()]


def _reason(status: str) -> str:
    """``Not Found`` for ``404``; nothing for ranges (``4XX``) and ``default``."""
    try:
        return HTTPStatus(int(status)).phrase
    except ValueError:
        return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _type(doc: Document, schema: dict[str, Any], base: Path) -> str:
    """A schema's type in a few words, with a link when it names a component schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        _, target = doc.resolve(schema, base)
        return f":ref:`{name} <{doc.schema_label(target, name)}>`"
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for each in kinds:
        if each == "array":
            items = schema.get("items", {})
            words.append(f"array of {_type(doc, items, base)}")
        else:
            words.append(str(each))
    return " or ".join(words)


def _constraints(schema: dict[str, Any]) -> str:
    notes = []
    if "enum" in schema:
        notes.append(
            "one of " + ", ".join(f"``{value}``" if value is not None else "``null``" for value in schema["enum"])
        )
    for key, word in (("minimum", "at least"), ("maximum", "at most"), ("maxLength", "at most")):
        if key in schema:
            suffix = " characters" if key == "maxLength" else ""
            notes.append(f"{word} {schema[key]}{suffix}")
    if "pattern" in schema:
        notes.append(f"matches ``{schema['pattern']}``")
    if "default" in schema:
        notes.append(f"default ``{schema['default']}``")
    if "examples" in schema:
        notes.append("e.g. " + ", ".join(f"``{value}``" for value in schema["examples"]))
    return "; ".join(notes)


def _described(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    """A field's or parameter's description, then its schema's constraints as a sentence of their own."""
    constraints = _constraints(schema)
    sentences = [_one_line(spec.get("description", ""))]
    if constraints:
        sentences.append(constraints[0].upper() + constraints[1:] + ".")
    return " ".join(sentence for sentence in sentences if sentence)


def _schema_lines(doc: Document, schema: dict[str, Any], base: Path) -> list[str]:
    """An object schema as a table of its fields; any other schema as its type and constraints."""
    if "$ref" in schema:
        return [f"Schema: {_type(doc, schema, base)}", ""]
    lines: list[str] = []
    if schema.get("description"):
        lines += [*schema["description"].strip().splitlines(), ""]
    properties = schema.get("properties")
    if not properties:
        constraints = _constraints(schema)
        lines += [f"Type: {_type(doc, schema, base)}" + (f" ({constraints})" if constraints else ""), ""]
        return lines
    required = set(schema.get("required", []))
    lines += [".. list-table::", "   :header-rows: 1", "   :widths: 20 20 10 50", ""]
    lines += ["   * - Field", "     - Type", "     - Required", "     - Description"]
    for name, field in properties.items():
        description = _described(field, field)
        lines += [
            f"   * - ``{name}``",
            f"     - {_type(doc, field, base)}",
            f"     - {'yes' if name in required else 'no'}",
            f"     - {description}",
        ]
    if schema.get("additionalProperties") is False:
        lines += ["", "No other fields are accepted."]
    return [*lines, ""]


def _body_lines(doc: Document, content: dict[str, Any], base: Path, *, fields: bool) -> list[str]:
    """Each media type with its schema: a link to a named schema, and (``fields``) the schema's fields."""
    lines: list[str] = []
    for media_type, media in content.items():
        schema = media.get("schema")
        if schema is None:
            lines += [f"Body: ``{media_type}``.", ""]
            continue
        if "$ref" in schema:
            lines += [f"Body: ``{media_type}``, schema {_type(doc, schema, base)}.", ""]
            if fields:
                resolved, resolved_base = doc.resolve(schema, base)
                lines += _schema_lines(doc, resolved, resolved_base)
        else:
            lines += [f"Body: ``{media_type}``:", ""]
            lines += _schema_lines(doc, schema, base)
    return lines


def _operation_lines(doc: Document, op: Operation, level: str) -> list[str]:
    title = f"``{op.method.upper()} {op.path}``"
    spec = op.spec
    lines = [f".. _{doc.label(op.method, op.path)}:", "", title, level * (len(title) + 4), ""]
    if op.base != doc.path:
        lines += [f"*Defined in* ``{op.base.parent.name}/{op.base.name}``.", ""]
    if spec.get("summary"):
        lines += [f"**{spec['summary'].strip()}**", ""]
    if spec.get("description"):
        lines += [*spec["description"].strip().splitlines(), ""]
    if "security" in spec:
        schemes = [" + ".join(f"``{name}``" for name in requirement) for requirement in spec["security"]]
        lines += ["Authentication: " + (", or ".join(schemes) if schemes else "none") + ".", ""]
    parameters = [doc.resolve(p, op.base)[0] for p in [*op.item.get("parameters", []), *spec.get("parameters", [])]]
    if parameters:
        lines += [".. rubric:: Parameters", "", ".. list-table::", "   :header-rows: 1", "   :widths: 20 10 20 50", ""]
        lines += ["   * - Name", "     - In", "     - Type", "     - Description"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            description = _described(parameter, schema)
            required = " (required)" if parameter.get("required") else ""
            lines += [
                f"   * - ``{parameter['name']}``",
                f"     - {parameter['in']}{required}",
                f"     - {_type(doc, schema, op.base)}",
                f"     - {description}",
            ]
        lines.append("")
    if "requestBody" in spec:
        body, body_base = doc.resolve(spec["requestBody"], op.base)
        lines += [".. rubric:: Request body", "", f"{'Required' if body.get('required') else 'Optional'}.", ""]
        lines += _body_lines(doc, body.get("content", {}), body_base, fields=True)
    lines += [".. rubric:: Responses", ""]
    for status, raw in spec.get("responses", {}).items():
        response, response_base = doc.resolve(raw, op.base)
        lines += [f"``{status}`` {_reason(str(status))}"]
        lines += _indent(response.get("description", ""))
        lines.append("")
        for header, header_spec in response.get("headers", {}).items():
            header_spec, _ = doc.resolve(header_spec, response_base)
            lines += [f"   Header ``{header}``: {_one_line(header_spec.get('description', ''))}", ""]
        for line in _body_lines(doc, response.get("content", {}), response_base, fields=False):
            lines.append("   " + line if line else "")
    return lines


def render(path: Path) -> list[str]:
    """The reStructuredText of one OpenAPI document's reference."""
    doc = Document(path)
    info = doc.root.get("info", {})
    lines: list[str] = []
    if info.get("summary"):
        lines += [info["summary"].strip(), ""]
    if info.get("description"):
        lines += [*info["description"].strip().splitlines(), ""]
    for server in doc.root.get("servers", []):
        lines += [f"Base URL: ``{server['url']}``"]
        for name, variable in server.get("variables", {}).items():
            lines += [f"(``{name}``: {_one_line(variable.get('description', ''))} Default ``{variable['default']}``.)"]
        lines.append("")
    lines += [f"OpenAPI {doc.root.get('openapi')} document: ``jupyter_2fa/{doc.name}/{doc.path.name}``.", ""]

    components = doc.root.get("components", {})
    schemes = components.get("securitySchemes", {})
    if schemes:
        title = "Authentication"
        lines += [f".. _{doc.label('authentication')}:", "", title, TITLE_LEVELS[0] * len(title), ""]
        for name, scheme in schemes.items():
            where = (
                f"{scheme['type']} {scheme.get('scheme', '')}".strip()
                if scheme["type"] != "apiKey"
                else f"{scheme['in']} ``{scheme['name']}``"
            )
            lines += [f"``{name}`` ({where})", *_indent(scheme.get("description", "")), ""]
        default = [" + ".join(f"``{name}``" for name in requirement) for requirement in doc.root.get("security", [])]
        if default:
            lines += ["Unless an operation says otherwise: " + ", or ".join(default) + ".", ""]

    title = "Endpoints"
    lines += [f".. _{doc.label('endpoints')}:", "", title, TITLE_LEVELS[0] * len(title), ""]
    for op in doc.operations():
        lines += _operation_lines(doc, op, TITLE_LEVELS[1])

    schemas = components.get("schemas", {})
    if schemas:
        title = "Schemas"
        lines += [f".. _{doc.label('schemas')}:", "", title, TITLE_LEVELS[0] * len(title), ""]
        for name, schema in schemas.items():
            lines += [f".. _{doc.schema_label(doc.path, name)}:", "", name, TITLE_LEVELS[1] * len(name), ""]
            lines += _schema_lines(doc, schema, doc.path)
    return lines


class OpenAPIReference(SphinxDirective):
    """``.. openapi-reference:: PATH``: one OpenAPI document, rendered (PATH relative to the page)."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        _, absolute = self.env.relfn2path(self.arguments[0], self.env.docname)
        path = Path(absolute)
        self.env.note_dependency(str(path))
        for referenced in {op.base for op in Document(path).operations()}:
            self.env.note_dependency(str(referenced))
        return parsed(self, render(path), str(path))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("openapi-reference", OpenAPIReference)
    return PARALLEL_SAFE
