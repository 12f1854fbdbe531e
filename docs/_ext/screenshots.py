"""The browser tests' screenshots, copied into the site: ``test-output/browser/`` to ``docs/_screenshots/``.

The browser tests (``tests/browser``) write their screenshots under ``test-output/browser/``; a page shows one
as ``![the login page](/_screenshots/login.png)``, the same relative path under ``/_screenshots/``. The copy is
made when the builder starts, before any page is read, so a page naming a screenshot the tests no longer make
fails the build (an unreadable image is a warning, and warnings are errors). Without the folder the build stops
and says how to make it (``scripts/docs`` runs the browser tests first in that case).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

SOURCE = Path(__file__).resolve().parents[2] / "test-output" / "browser"
TARGET_NAME = "_screenshots"


def copy_screenshots(app: Sphinx) -> None:
    target = Path(app.srcdir) / TARGET_NAME
    if not any(SOURCE.rglob("*.png")):
        raise ExtensionError(
            f"no screenshots in {SOURCE}: the documentation shows the browser tests' screenshots. "
            "Run `python -m pytest -q tests/browser` (or ./scripts/docs, which does) first."
        )
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("*.json", "*.txt", "*.html", "*.zip"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", copy_screenshots)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
