"""The command-line reference, rendered at build time from the ``jupyter 2fa`` application itself.

``.. cli-reference:: jupyter_2fa.cli.TwoFactorApp`` renders the application's description, examples and options,
then one section per entry of its ``subcommands``: description, options (flags and aliases, with the setting
each one sets, linked to the configuration reference when the project defines it) and examples. Nothing here
is written by hand: a new subcommand, flag or alias appears on the next build.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from docutils import nodes
from generated import PARALLEL_SAFE, parsed
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from traitlets import TraitType
from traitlets.config import Application
from traitlets.utils.importstring import import_item

TITLE_LEVEL = "="


def attribute(app: type[Application], name: str) -> Any:
    """A class attribute of ``app``: its value, or the default of the trait it is when not overridden."""
    value = getattr(app, name)
    return value.default() if isinstance(value, TraitType) else value


def command_name(app: type[Application], parent: type[Application] | None = None) -> str:
    """``jupyter 2fa`` for the main application (its console script is ``jupyter-2fa``), plus the subcommand."""
    if parent is None:
        return app.name.replace("jupyter-", "jupyter ", 1)
    return f"{command_name(parent)} {app.name}"


def subcommands(app: type[Application]) -> dict[str, type[Application]]:
    """The subcommand classes of ``app``, by name (traitlets also allows dotted names and factories)."""
    found = {}
    for name, (target, _help) in attribute(app, "subcommands").items():
        found[name] = import_item(target) if isinstance(target, str) else target
    return found


def _text(text: str | None) -> list[str]:
    """A description as reStructuredText: dedented, with Markdown-style `code` as a literal."""
    cleaned = inspect.cleandoc(text or "")
    return re.sub(r"(?<![`:])`([^`]+)`(?!`)", r"``\1``", cleaned).splitlines()


def _first_paragraph(text: str) -> str:
    """The first paragraph of a description or help, on one line."""
    return " ".join("\n".join(_text(text)).split("\n\n", 1)[0].split())


def _trait_reference(app: type[Application], target: str) -> tuple[str, TraitType[Any, Any] | None]:
    """``Class.trait`` as a link to its configuration reference when the project defines it, and the trait."""
    class_name, _, trait_name = target.rpartition(".")
    for cls in [app, *attribute(app, "classes")]:
        for klass in inspect.getmro(cls):
            if klass.__name__ == class_name and hasattr(klass, "class_traits"):
                trait = klass.class_traits().get(trait_name)
                if trait is None:
                    continue
                owner = trait.this_class
                if owner.__module__.startswith("jupyter_2fa."):
                    documented = f"{owner.__module__}.{owner.__qualname__}.{trait_name}"
                    return f":py:attr:`{class_name}.{trait_name} <{documented}>`", trait
                return f"``{class_name}.{trait_name}``", trait
    return f"``{target}``", None


def _option_lines(app: type[Application]) -> list[str]:
    lines: list[str] = []
    for names, (settings, help_text) in sorted(attribute(app, "flags").items(), key=lambda kv: str(kv[0])):
        switches = names if isinstance(names, tuple) else (names,)
        term = ", ".join(f"``{'-' if len(n) == 1 else '--'}{n}``" for n in switches)
        sets = []
        for section, values in settings.items():
            for trait_name, value in values.items():
                link, _ = _trait_reference(app, f"{section}.{trait_name}")
                sets.append(f"{link} to ``{value!r}``")
        lines += [term, f"   {' '.join(help_text.split())}", "", f"   Sets {', '.join(sets)}.", ""]
    for names, target in sorted(attribute(app, "aliases").items(), key=lambda kv: str(kv[0])):
        if isinstance(target, tuple):  # (trait, help) form
            target = target[0]
        switches = names if isinstance(names, tuple) else (names,)
        link, trait = _trait_reference(app, target)
        kind = type(trait).__name__ if trait is not None else "value"
        term = ", ".join(f"``{'-' if len(n) == 1 else '--'}{n}=<{kind}>``" for n in switches)
        summary = _first_paragraph(trait.help) if trait is not None and trait.help else ""
        lines += [term, f"   {summary}" if summary else "   ", "", f"   Sets {link}.", ""]
    return lines


def _command_lines(app: type[Application], parent: type[Application] | None) -> list[str]:
    name = command_name(app, parent)
    title = f"``{name}``"
    label = "cli-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    lines = [f".. _{label}:", "", title, TITLE_LEVEL * len(title), ""]
    lines += [*_text(attribute(app, "description")), ""]
    if attribute(app, "examples"):
        lines += [".. rubric:: Examples", "", ".. code-block:: shell", ""]
        lines += ["   " + line if line else "" for line in inspect.cleandoc(attribute(app, "examples")).splitlines()]
        lines.append("")
    configured = [cls for cls in attribute(app, "classes") if cls.__module__.startswith("jupyter_2fa.")]
    if configured:
        links = ", ".join(f":py:class:`~{cls.__module__}.{cls.__qualname__}`" for cls in configured)
        files = attribute(app, "config_file_name")
        where = (
            f" (also from ``{files}.py`` and ``{files}.json``, as the server reads them)"
            if isinstance(files, str) and files
            else ""
        )
        lines += [f"Every setting of {links} can be given as ``--Class.setting=value``{where}.", ""]
    lines += [".. rubric:: Options", "", *_option_lines(app)]
    return lines


def render(path: str) -> list[str]:
    """The reStructuredText of the application at ``path`` and of each of its subcommands."""
    app: type[Application] = import_item(path)
    lines = _command_lines(app, None)
    subs = subcommands(app)
    if subs:
        lines[lines.index(".. rubric:: Options") : lines.index(".. rubric:: Options")] = [
            ".. rubric:: Subcommands",
            "",
            *[
                item
                for sub in subs.values()
                for item in (
                    f"- :ref:`{command_name(sub, app)} <cli-{re.sub(r'[^a-z0-9]+', '-', command_name(sub, app))}>`: "
                    + _first_paragraph(attribute(sub, "description") or ""),
                )
            ],
            "",
        ]
        for sub in subs.values():
            lines += _command_lines(sub, app)
    return lines


class CLIReference(SphinxDirective):
    """``.. cli-reference:: module.App``: an application and its subcommands."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        return parsed(self, render(self.arguments[0]), self.arguments[0])


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CLIReference)
    return PARALLEL_SAFE
