"""What packagers and users rely on: every runtime import is a declared dependency, one version for the Python
package and the Lab extension, the hub's short authenticator name, the licence the metadata declares."""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib.metadata import entry_points, metadata, packages_distributions, version
from pathlib import Path

import pytest
import tomllib

import jupyter_2fa

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def imported_top_level_modules() -> set[str]:
    """Every module the package imports, at the top of a file or inside a function (lazily loaded ones too)."""
    found: set[str] = set()
    for path in (ROOT / "jupyter_2fa").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"jupyter_2fa", "__future__"}


def declared(requirements: list[str]) -> set[str]:
    names = (re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0] for requirement in requirements)
    return {name.lower().replace("_", "-") for name in names}


def test_every_runtime_import_is_a_declared_dependency() -> None:
    """An import satisfied only because something else happens to pull its package in breaks the day that
    something drops it (jinja2 came with jupyter_server, undeclared). JupyterHub is the hub extra's."""
    distributions = packages_distributions()
    dependencies = declared(PYPROJECT["project"]["dependencies"])
    extras = {name: declared(reqs) for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}
    missing = {}
    for module in sorted(imported_top_level_modules()):
        owners = {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        if not owners & (dependencies | extras["hub"] | extras["postgres"]):
            missing[module] = owners
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_one_version_for_the_package_and_the_lab_extension() -> None:
    lab = json.loads((ROOT / "labextension" / "package.json").read_text())["version"]
    # npm's pre-release form (0.2.0-alpha.1) is Python's 0.2.0a1; a release reads the same in both
    assert jupyter_2fa.__version__ == version("jupyter-2fa") == lab.replace("-alpha.", "a").replace("-beta.", "b")


def test_the_hub_finds_the_authenticator_by_its_short_name() -> None:
    """``c.JupyterHub.authenticator_class = "totp"``, as JupyterHub's own "pam" or "dummy"."""
    from jupyterhub.app import JupyterHub

    from jupyter_2fa.hub import TOTPAuthenticator

    (entry,) = entry_points(group="jupyterhub.authenticators", name="totp")
    assert entry.load() is TOTPAuthenticator
    hub = JupyterHub()
    hub.authenticator_class = "totp"
    assert hub.authenticator_class is TOTPAuthenticator


@pytest.mark.parametrize(
    "classifier",
    [
        "Framework :: Jupyter :: JupyterLab",
        "Framework :: Jupyter :: JupyterLab :: 4",
        "Framework :: Jupyter :: JupyterLab :: Extensions",
        "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt",
    ],
)
def test_pypi_lists_it_with_the_lab_extensions(classifier: str) -> None:
    assert classifier in metadata("jupyter-2fa").get_all("Classifier", [])


def test_the_licence_file_is_the_declared_licence() -> None:
    assert metadata("jupyter-2fa")["License-Expression"] == "BSD-3-Clause"
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
