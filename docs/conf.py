"""Sphinx configuration of the jupyter-2fa documentation; ./scripts/docs builds it (warnings are errors).

Pages are MyST Markdown, the theme is pydata-sphinx-theme, as in JupyterHub's and oauthenticator's docs. The
reference pages are generated from the code at build time by the extensions in ``_ext/``: configuration from
the traits' help (autodoc-traits), the CLI from ``jupyter 2fa``'s application, the REST API from the OpenAPI
documents, the audit events from their jupyter_events schema.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

from jupyter_2fa import __version__  # noqa: E402 (after the path to _ext, like every conf.py)

project = "jupyter-2fa"
author = "jupyter-2fa developers"
copyright = "jupyter-2fa developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "myst_parser",
    "autodoc_traits",
    "configuration_reference",
    "cli_reference",
    "openapi_reference",
    "events_reference",
    "screenshots",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_screenshots", "_ext"]
# MyST: ::: fences, definition lists and field lists as the JupyterHub docs use them; heading anchors so that
# guides link to sections ([text](page.md#heading)), checked like every internal link.
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# autodoc (through autodoc-traits): settings in the order the code declares them, which groups them by topic.
autodoc_member_order = "bysource"
autoclass_content = "class"
autodoc_typehints = "none"

html_theme = "pydata_sphinx_theme"
html_title = "jupyter-2fa"
html_theme_options = {
    "github_url": "https://github.com/jupyter-2fa/jupyter-2fa",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
