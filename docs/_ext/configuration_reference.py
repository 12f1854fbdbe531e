"""The configuration reference: each configurable class's own settings, from their ``help``, by autodoc-traits.

``.. configurable:: jupyter_2fa.config.TwoFactorConfig`` is ``.. autoconfigurable::`` (autodoc-traits) limited
to the traits the class itself defines: a trait is documented once, on the class that defines it, and a
subclass's entry says which classes' settings it also takes. So ``TwoFactorConfig``'s settings appear once,
not again under the server gate and the hub authenticator that inherit them, and jupyter_server's or
JupyterHub's own settings are left to their documentation.
"""

from __future__ import annotations

import inspect
from typing import Any

from docutils import nodes
from generated import PARALLEL_SAFE, parsed
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from traitlets import HasTraits, TraitType
from traitlets.utils.importstring import import_item

PACKAGE = "jupyter_2fa"


def own_traits(cls: type[HasTraits]) -> list[str]:
    """The configurable traits ``cls`` defines itself (not those it inherits)."""
    return sorted(name for name, trait in cls.class_traits(config=True).items() if trait.this_class is cls)


def inherited(cls: type[HasTraits]) -> dict[type[HasTraits], list[str]]:
    """The classes whose configurable traits ``cls`` inherits, with those traits' names."""
    found: dict[type[HasTraits], list[str]] = {}
    for name, trait in cls.class_traits(config=True).items():
        if trait.this_class is not cls:
            found.setdefault(trait.this_class, []).append(name)
    return found


def _class_reference(cls: type) -> str:
    if cls.__module__.split(".")[0] == PACKAGE:
        return f":py:class:`~{cls.__module__}.{cls.__qualname__}`"
    return f"``{cls.__module__.split('.')[0]}``'s ``{cls.__name__}``"


def render(path: str) -> list[str]:
    cls = import_item(path)
    excluded = sorted(set(cls.class_traits(config=True)) - set(own_traits(cls)))
    lines = [f".. autoconfigurable:: {path}"]
    if excluded:
        lines.append(f"   :exclude-members: {', '.join(excluded)}")
    lines.append("")
    parents = inherited(cls)
    if parents:
        # in the class's order of inheritance, nearest first
        order = [klass for klass in inspect.getmro(cls) if klass in parents]
        ours = [klass for klass in order if klass.__module__.split(".")[0] == PACKAGE]
        theirs = [klass for klass in order if klass not in ours]
        sentences = []
        if ours:
            sentences.append(
                f"``{cls.__name__}`` also takes every setting of "
                + ", ".join(_class_reference(klass) for klass in ours)
                + f" (``c.{cls.__name__}.x`` overrides ``c.{ours[0].__name__}.x`` for it alone)."
            )
        if theirs:
            names = sorted({name for klass in theirs for name in parents[klass]})
            sentences.append(
                "It inherits the settings of "
                + ", ".join(_class_reference(klass) for klass in theirs)
                + ", documented there: "
                + ", ".join(f"``{name}``" for name in names)
                + "."
            )
        lines += ["   " + " ".join(sentences), ""]
    return lines


def trait_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """A trait's help as its docstring, dedented as a whole.

    JupyterHub's ``EntryPointType`` (``TOTPAuthenticator.inner_authenticator_class``) appends the entry points
    installed where the docs are built, unindented, to an indented help, which autodoc would then render as a
    block quote; those entry points are the build machine's, not the reader's, so only the help is kept.
    """
    if isinstance(obj, TraitType):
        text = getattr(obj, "_original_help", None) or obj.help
        lines[:] = [*inspect.cleandoc(text).splitlines(), ""]


class ConfigurableReference(SphinxDirective):
    """``.. configurable:: module.Class``: the class's own configurable traits, from their help."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        return parsed(self, render(self.arguments[0]), self.arguments[0])


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("autodoc_traits")
    app.add_directive("configurable", ConfigurableReference)
    app.connect("autodoc-process-docstring", trait_docstring)
    return PARALLEL_SAFE
