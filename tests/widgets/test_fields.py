"""``SecretText`` and ``SecretPassword`` at their boundary with the browser: the widget's comm.

A recording comm (``browser_line``, conftest.py) plays the browser. It delivers what ipywidgets' front-end sends
when a field loses focus (an ``update`` with the typed value) and keeps every message the kernel publishes back,
which is all the browser's model of the widget (the state a saved notebook holds) can learn from the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import pytest
from traitlets import TraitError

from jupyter_2fa.widgets.fields import SecretPassword, SecretText

SECRET = "correct horse battery staple"


Connect = Callable[[widgets.Widget], Any]  # the browser_line fixture (conftest.py): returns a BrowserLine


def typed_in_the_browser(field: SecretText, line: Any) -> None:
    line.leave_field(SECRET)


def set_in_a_notebook_cell(field: SecretText, line: Any) -> None:
    field.value = SECRET


KINDS = [pytest.param(SecretPassword, id="password"), pytest.param(SecretText, id="text")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("arrive", "browser_had_it"),
    [
        pytest.param(typed_in_the_browser, True, id="typed-in-the-browser"),
        pytest.param(set_in_a_notebook_cell, False, id="set-in-a-notebook-cell"),
    ],
)
def test_a_value_leaves_the_widget_state_as_it_arrives(
    kind: type[SecretText], arrive: Callable[[SecretText, Any], None], browser_had_it: bool, browser_line: Connect
) -> None:
    field = kind(placeholder="type it", held_placeholder="held")
    line = browser_line(field)

    arrive(field, line)

    assert field.value == "" and SECRET not in repr(field.get_state())
    assert SECRET not in repr(line.published), "the kernel never sends it to a browser (no echo either)"
    sent = line.states_sent()
    assert ({"value": ""} in sent) is browser_had_it, "the browser's copy is emptied (there was one to empty)"
    assert field.placeholder == "held" and any(state.get("placeholder") == "held" for state in sent)
    assert field.take() == SECRET
    assert field.take() == "" and field.placeholder == "type it"
    field.close()


@pytest.mark.parametrize(
    ("typed", "taken"),
    [
        pytest.param(["first", "second"], "second", id="the-last-value-counts"),
        pytest.param([SECRET, ""], SECRET, id="an-empty-update-keeps-it"),
        pytest.param([], "", id="nothing-typed"),
    ],
)
def test_take_gives_the_value_held(typed: list[str], taken: str, browser_line: Connect) -> None:
    field = SecretPassword()
    line = browser_line(field)
    for value in typed:
        line.leave_field(value)
    assert field.take() == taken
    field.close()


def test_a_value_given_to_the_constructor_is_held_too() -> None:
    field = SecretPassword(value=SECRET)
    assert field.value == "" and SECRET not in repr(field.get_state())
    assert field.take() == SECRET
    field.close()


def test_the_field_is_a_password_field_that_sends_on_leaving() -> None:
    field = SecretPassword()
    assert isinstance(field, widgets.Password) and field.get_state()["_view_name"] == "PasswordView"
    assert field.continuous_update is False
    with pytest.raises(TraitError, match="every keystroke"):
        field.continuous_update = True
    field.close()
