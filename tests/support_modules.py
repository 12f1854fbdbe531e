"""Load another test folder's ``*_support.py`` under its plain name, the way that folder's own tests import it.

pytest puts each test folder on ``sys.path`` only while it collects that folder, so ``import hub_support``
from tests/widgets would fail, or find another folder's module of the same name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent


def load_support(folder: str, name: str) -> ModuleType:
    """tests/<folder>/<name>.py as module ``name``; the already loaded one if it is that same file."""
    path = TESTS / folder / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        file = getattr(loaded, "__file__", None)
        if not file or Path(file).resolve() != path:
            raise RuntimeError(f"a module named {name} from {file} hides {path}")
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
