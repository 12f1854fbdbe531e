"""The core stays pure (no web framework or widget imports) and its docstring examples are true."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jupyter_2fa.core

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("tornado", "jupyter_server", "jupyterhub", "ipywidgets", "traitlets")
CORE_MODULES = sorted(
    f"jupyter_2fa.core.{path.stem}"
    for path in Path(jupyter_2fa.core.__file__).parent.glob("*.py")
    if path.stem != "__init__"
)


def imported_by(statement: str) -> list[str]:
    """Every module name in sys.modules after running ``statement`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(result.stdout))


@pytest.mark.parametrize(
    "statement",
    ["import jupyter_2fa.core", "from jupyter_2fa.core import *", *(f"import {m}" for m in CORE_MODULES)],
    ids=["package", "star", *(m.rsplit(".", 1)[1] for m in CORE_MODULES)],
)
def test_core_imports_no_framework(statement: str) -> None:
    modules = imported_by(statement)
    assert "jupyter_2fa.core" in modules
    leaked = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert leaked == []


def test_the_module_list_is_complete() -> None:
    expected = {"totp", "recovery", "keys", "files", "store", "throttle", "verifier", "enrollment"}
    expected |= {"qr", "audit", "settings", "errors"}
    assert {m.rsplit(".", 1)[1] for m in CORE_MODULES} >= expected


@pytest.mark.parametrize(
    "name", ["jupyter_2fa.core", *CORE_MODULES], ids=["package", *(m.rsplit(".", 1)[1] for m in CORE_MODULES)]
)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples in {name} failed"


def test_doctests_exist_where_promised() -> None:
    attempted = {name: doctest.testmod(importlib.import_module(name), verbose=False).attempted for name in CORE_MODULES}
    for name in ("jupyter_2fa.core.totp", "jupyter_2fa.core.recovery", "jupyter_2fa.core.throttle"):
        assert attempted[name] > 0, name
    assert jupyter_2fa.core.__all__
    for public in jupyter_2fa.core.__all__:
        assert getattr(jupyter_2fa.core, public) is not None


def test_the_purity_check_can_fail() -> None:
    """Control: the same check does see a framework when one is imported."""
    modules = imported_by("import jupyter_2fa.core\nimport traitlets")
    assert "traitlets" in modules
