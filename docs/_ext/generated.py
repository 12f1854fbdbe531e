"""What every reference directive here does last: parse the reStructuredText it generated in its own place."""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

# Each extension keeps no state between documents, so Sphinx may read and write in parallel.
PARALLEL_SAFE = {"parallel_read_safe": True, "parallel_write_safe": True}


def parsed(directive: SphinxDirective, lines: list[str], source: str) -> list[nodes.Node]:
    """``lines`` parsed where ``directive`` stands, section titles included (they join the page's outline)."""
    container = nodes.container()
    nested_parse_with_titles(directive.state, StringList(lines, source=source), container)
    return container.children
