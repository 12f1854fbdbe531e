"""Text fields whose typed value the kernel takes as it arrives, so that no saved widget state holds it.

ipywidgets keeps a field's ``value`` in the browser's model of the widget, and that model is what JupyterLab
writes into the notebook when "Save Widget State Automatically" is on. So the ``value`` of a
:class:`SecretText` is always empty: its validator moves every value it is given into the kernel (read it once
with :meth:`SecretText.take`) and leaves ``""``. A value typed in the browser arrives when the field loses focus
(or on Enter); the kernel answers with ``value = ""`` and a placeholder saying that something is held, and never
sends a typed value to any browser. What remains is the time between the browser committing the field and that
answer: docs/security.md, "The notebook panel's password", gives the measured window.

>>> field = SecretPassword(placeholder="your password", held_placeholder="password received")
>>> field.value = "hunter2"  # as a notebook cell, or the browser when the field loses focus
>>> field.value, field.placeholder, "hunter2" in repr(field.get_state())
('', 'password received', False)
>>> field.take(), field.take(), field.placeholder
('hunter2', '', 'your password')
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Bunch, TraitError, Unicode, validate


class SecretText(widgets.Text):
    """A text field that hands what is typed to the kernel and keeps none of it in the widget state."""

    # ipywidgets echoes a value received from one browser to every browser by default: not this one.
    value = Unicode(help="Always empty: a value set here is held by the kernel until take().").tag(
        sync=True, echo_update=False
    )
    continuous_update = Bool(False, help="Always False: the value is sent when the field loses focus.").tag(sync=True)

    def __init__(self, placeholder: str = "", held_placeholder: str = "", **kwargs: Any) -> None:
        self._held = ""
        # The Text default is a zero-width space, which keeps the field's baseline when nothing is shown.
        self._placeholders = (placeholder or "\u200b", held_placeholder or placeholder or "\u200b")
        # ipywidgets has no annotations; mypy's untyped_calls_exclude misses calls through super() (mypy#16653).
        super().__init__(placeholder=self._placeholders[0], **kwargs)  # type: ignore[no-untyped-call]

    @validate("continuous_update")
    def _validate_continuous_update(self, proposal: Bunch) -> bool:
        if proposal["value"]:
            raise TraitError(
                "A SecretText empties its field as soon as the kernel has the value, so continuous_update=True "
                "would empty it at every keystroke; it stays False."
            )
        return False

    @validate("value")
    def _validate_value(self, proposal: Bunch) -> str:
        if proposal["value"]:  # an empty value (nothing typed) leaves what is held
            self._held = str(proposal["value"])
            self.placeholder = self._placeholders[1]
        return ""

    def take(self) -> str:
        """The last value typed (or set), once: the kernel forgets it and the field says it is empty again."""
        held, self._held = self._held, ""
        self.placeholder = self._placeholders[0]
        return held


class SecretPassword(SecretText, widgets.Password):
    """:class:`SecretText` shown as a password field (dots)."""
