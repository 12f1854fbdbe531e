"""The package's layers: ``web/`` knows no host, and no module imports another that imports it back.

A host (``server/``, ``hub/``) imports ``web/`` and ``core/``; ``web/`` imports ``core/`` and tornado only.
Import circles are found from the source: module-level imports (``TYPE_CHECKING`` blocks aside, which never
run), plus imports inside functions, which would otherwise hide a circle until the function runs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import jupyter_2fa

PACKAGE = Path(jupyter_2fa.__file__).parent
HOSTS = ("jupyter_server", "jupyterhub", "ipywidgets")
# Imports inside functions that are not circles hidden from view but optional or heavy parts loaded on demand.
LAZY = {
    ("jupyter_2fa", "jupyter_2fa.server.extension"),  # jupyter_server's extension point, found on demand
    ("jupyter_2fa.cli", "jupyter_2fa.hub"),  # the hub extra, only with a jupyterhub_config.py
    # the store, its keys and the core's machinery load when the store opens, not at start-up
    # (tests/core/test_purity.py::test_nothing_heavy_is_imported_before_it_is_needed)
    ("jupyter_2fa.config", "jupyter_2fa.core"),
    ("jupyter_2fa.config", "jupyter_2fa.core.keys"),
    ("jupyter_2fa.config", "jupyter_2fa.core.store"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """The modules a ``from … import …`` may load: the one named, and each name as a submodule of it
    (``from . import x`` names only ``x``: the package it sits in is already loading)."""
    if not node.level:
        target = node.module or ""
    else:
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        if not node.module:
            return [f"{base}.{alias.name}" for alias in node.names]
        target = f"{base}.{node.module}"
    return [target, *(f"{target}.{alias.name}" for alias in node.names)]


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules imported at module level, modules imported inside functions) by ``path``."""
    module = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_checking = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for node in ast.walk(block)
    }
    in_functions = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    top: set[str] = set()
    lazy: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = resolve(module, node, path.name == "__init__.py")
        else:
            continue
        (lazy if id(node) in in_functions else top).update(n for n in names if n.startswith("jupyter_2fa"))
    return top, lazy


def import_graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    sources = {module_name(path): path for path in PACKAGE.rglob("*.py") if "labextension" not in path.parts}
    graph: dict[str, set[str]] = {}
    lazy: set[tuple[str, str]] = set()
    for module, path in sources.items():
        top, inner = imports(path)
        graph[module] = {name for name in top if name in sources and name != module}
        lazy |= {(module, name) for name in inner if name in sources}
    return graph, lazy


def test_no_import_circles() -> None:
    graph, _ = import_graph()
    assert "jupyter_2fa.web.api" in graph and graph["jupyter_2fa.server.handlers"], graph
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_no_imports_hidden_in_functions() -> None:
    _, lazy = import_graph()
    assert lazy == LAZY


def test_web_imports_no_host() -> None:
    script = "import jupyter_2fa.web.api, jupyter_2fa.web.pages, json, sys; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    leaked = sorted(m for m in json.loads(result.stdout) if m.split(".")[0] in HOSTS)
    assert leaked == []
