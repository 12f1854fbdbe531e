"""The generated reference (docs/reference/, rendered by docs/_ext/) leaves nothing out.

These tests call the renderers the Sphinx build calls, without a build (./scripts/docs builds the site):
every configurable trait the package defines is documented on its class, every OpenAPI path, method and
status is rendered, every subcommand of `jupyter 2fa` with its options, every audit event field and action.
"""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from traitlets import HasTraits
from traitlets.utils.importstring import import_item

import jupyter_2fa
from jupyter_2fa.cli import TwoFactorApp
from jupyter_2fa.core.audit import Action, AuditEvent

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OPENAPI_DOCUMENTS = [ROOT / "jupyter_2fa" / "server" / "openapi.yaml", ROOT / "jupyter_2fa" / "hub" / "openapi.yaml"]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def extension(name: str) -> ModuleType:
    """A module of docs/_ext (not a package: Sphinx puts the folder on sys.path, conf.py says how, and so does
    this, for the modules they share)."""
    if str(DOCS / "_ext") not in sys.path:
        sys.path.append(str(DOCS / "_ext"))
    spec = importlib.util.spec_from_file_location(f"docs_ext_{name}", DOCS / "_ext" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


configuration = extension("configuration_reference")
cli = extension("cli_reference")
openapi = extension("openapi_reference")
events = extension("events_reference")


@pytest.mark.parametrize(
    ("page", "directive"),
    [
        ("reference/rest-api.rst", ".. openapi-reference:: ../../jupyter_2fa/server/openapi.yaml"),
        ("reference/rest-api.rst", ".. openapi-reference:: ../../jupyter_2fa/hub/openapi.yaml"),
        ("reference/cli.rst", ".. cli-reference:: jupyter_2fa.cli.TwoFactorApp"),
        ("reference/events.rst", ".. audit-events-reference::"),
    ],
)
def test_reference_page_renders(page: str, directive: str) -> None:
    """The pages call the renderers these tests check, on the files the package ships."""
    assert directive in (DOCS / page).read_text(encoding="utf-8").splitlines()


def project_configurables() -> dict[str, type[HasTraits]]:
    """Every class of the package that defines configurable traits of its own, by dotted name."""
    found: dict[str, type[HasTraits]] = {}
    for info in pkgutil.walk_packages(jupyter_2fa.__path__, "jupyter_2fa."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, HasTraits)
                and obj.__module__ == module.__name__
                and configuration.own_traits(obj)
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def documented_configurables() -> list[str]:
    """The classes docs/reference/configuration.md documents, in its order."""
    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    return re.findall(r"^\.\. configurable:: (\S+)$", text, flags=re.MULTILINE)


def test_every_configurable_class_is_documented() -> None:
    documented = {import_item(path) for path in documented_configurables()}
    missing = sorted(name for name, cls in project_configurables().items() if cls not in documented)
    assert not missing, f"add `.. configurable::` entries to docs/reference/configuration.md for {missing}"
    assert len(documented) == len(documented_configurables()), "a class is documented twice"


@pytest.mark.parametrize("path", documented_configurables())
def test_configuration_reference_shows_every_own_trait(path: str) -> None:
    cls = import_item(path)
    rst = configuration.render(path)
    assert rst[0] == f".. autoconfigurable:: {path}"
    excluded = set()
    for line in rst:
        if line.strip().startswith(":exclude-members:"):
            excluded = {name.strip() for name in line.split(":", 2)[2].split(",")}
    shown = set(cls.class_traits(config=True)) - excluded
    own = {name for name, trait in cls.class_traits(config=True).items() if trait.this_class is cls}
    assert shown == own
    undocumented = sorted(name for name in own if not cls.class_traits()[name].help.strip())
    assert not undocumented, f"{path}: traits without help: {undocumented}"


def _resolve(node: Any, base: Path) -> tuple[Any, Path]:
    while isinstance(node, dict) and "$ref" in node:
        target, _, pointer = node["$ref"].partition("#")
        base = (base.parent / target).resolve() if target else base
        node = yaml.safe_load(base.read_text(encoding="utf-8"))
        for part in filter(None, pointer.split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, base


def openapi_operations() -> list[Any]:
    cases = []
    for document in OPENAPI_DOCUMENTS:
        spec = yaml.safe_load(document.read_text(encoding="utf-8"))
        for path, raw in spec["paths"].items():
            item, _ = _resolve(raw, document)
            methods = [method for method in METHODS if method in item]
            assert methods, f"{document}: {path} has no operation"
            for method in methods:
                statuses = [str(status) for status in item[method]["responses"]]
                cases.append(
                    pytest.param(document, path, method, statuses, id=f"{document.parent.name}-{method}-{path}")
                )
    return cases


RENDERED_OPENAPI = {document: openapi.render(document) for document in OPENAPI_DOCUMENTS}


@pytest.mark.parametrize(("document", "path", "method", "statuses"), openapi_operations())
def test_rest_api_reference_shows_every_operation_and_status(
    document: Path, path: str, method: str, statuses: list[str]
) -> None:
    lines = RENDERED_OPENAPI[document]
    heading = f"``{method.upper()} {path}``"
    assert heading in lines, f"{heading} is not rendered"
    start = lines.index(heading)
    # the operation's section ends at the next section's label (the next operation's, or the schemas')
    end = next((i for i in range(start + 2, len(lines)) if lines[i].startswith(".. _api-")), len(lines))
    section = lines[start:end]
    for status in statuses:
        assert any(line.startswith(f"``{status}``") for line in section), f"{heading}: status {status} missing"


SUBCOMMANDS = sorted(TwoFactorApp.subcommands)
RENDERED_CLI = cli.render("jupyter_2fa.cli.TwoFactorApp")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_cli_reference_shows_every_subcommand_and_option(name: str) -> None:
    heading = f"``jupyter 2fa {name}``"
    assert heading in RENDERED_CLI
    start = RENDERED_CLI.index(heading)
    end = next((i for i in range(start + 2, len(RENDERED_CLI)) if RENDERED_CLI[i].startswith(".. _cli-")), None)
    section = "\n".join(RENDERED_CLI[start:end])
    app = cli.subcommands(TwoFactorApp)[name]
    for flag in cli.attribute(app, "flags"):
        assert f"``--{flag}``" in section or f"``-{flag}``" in section, f"{name}: flag {flag} missing"
    for alias in cli.attribute(app, "aliases"):
        assert f"``--{alias}=<" in section or f"``-{alias}=<" in section, f"{name}: alias {alias} missing"
    description = " ".join(inspect.cleandoc(cli.attribute(app, "description")).split())
    assert description.split(".")[0].replace("`", "") in " ".join(section.replace("`", "").split())


RENDERED_EVENTS = "\n".join(events.render())


@pytest.mark.parametrize(
    "text",
    [
        *[pytest.param(f"``{field}``", id=f"field-{field}") for field in AuditEvent.__dataclass_fields__],
        *[pytest.param(f"- ``{action.value}``", id=f"action-{action.value}") for action in Action],
        *[
            pytest.param(f"``{name}``", id=f"schema-{name}")
            for schema in events.schemas()
            for name in yaml.safe_load(schema.read_text(encoding="utf-8"))["properties"]
        ],
    ],
)
def test_audit_event_reference_shows(text: str) -> None:
    assert text in RENDERED_EVENTS
