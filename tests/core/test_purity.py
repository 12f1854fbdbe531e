"""The core stays pure (no web framework or widget imports) and its docstring examples exist where promised.

pytest runs the examples itself (``--doctest-modules`` on the package, setup.cfg); these tests check that it is
told to, and that the modules whose docstrings promise examples have some.
"""

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


def examples(name: str) -> int:
    """How many docstring examples module ``name`` has (what ``doctest.testmod`` would attempt)."""
    return sum(len(test.examples) for test in doctest.DocTestFinder().find(importlib.import_module(name)))


def test_pytest_runs_the_doctests(pytestconfig: pytest.Config) -> None:
    """Without these settings pytest would silently stop running the examples."""
    assert pytestconfig.getoption("doctestmodules"), "setup.cfg's addopts must keep --doctest-modules"
    core = Path("jupyter_2fa", "core")
    collected = [Path(path) for path in pytestconfig.getini("testpaths")]
    assert any(core.is_relative_to(path) for path in collected), f"setup.cfg's testpaths must cover {core}/"


def test_doctests_exist_where_promised() -> None:
    for name in ("jupyter_2fa.core.totp", "jupyter_2fa.core.recovery", "jupyter_2fa.core.throttle"):
        assert examples(name) > 0, name
    assert jupyter_2fa.core.__all__
    for public in jupyter_2fa.core.__all__:
        assert getattr(jupyter_2fa.core, public) is not None


def test_the_purity_check_can_fail() -> None:
    """Control: the same check does see a framework when one is imported."""
    modules = imported_by("import jupyter_2fa.core\nimport traitlets")
    assert "traitlets" in modules


HEAVY = ("sqlalchemy", "cryptography", "argon2", "qrcode")


@pytest.mark.parametrize(
    "statement",
    [
        "import jupyter_2fa.core",
        "import jupyter_server.serverapp, jupyter_2fa.server, jupyter_2fa.server.extension",
        "import jupyter_2fa.web.api, jupyter_2fa.web.pages, jupyter_2fa.messages",
    ],
    ids=["core", "gate", "web"],
)
def test_nothing_heavy_is_imported_before_it_is_needed(statement: str) -> None:
    """A server with the gate on starts without the database, crypto, hashing or QR libraries: they load
    when the store opens or a code is checked or drawn (issue 12: start-up cost)."""
    modules = imported_by(statement)
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []


def test_the_heavy_check_can_fail() -> None:
    """Control: opening the store's module does load SQLAlchemy."""
    assert "sqlalchemy" in imported_by("import jupyter_2fa.core.store")
