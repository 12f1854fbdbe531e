"""Strict reading of what a request sends: form fields, JSON bodies and Basic credentials.

Anything no password or code contains (too long, NUL, not UTF-8, a repeated field, a wrong JSON type) is
refused with :class:`BadInput` before it is checked, so it is never counted as a failed attempt.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tornado.httputil import HTTPServerRequest

MAX_BODY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 1024
# How POST enrollment / relink hand out the new secret: in the JSON body ("inline", the Lab extension and
# scripts), or as a one-time picture link ("link", the notebook panel, so the secret never enters a kernel).
REVEAL_MODES = ("inline", "link")


class BadInput(Exception):
    """The request itself is malformed: answered 400/413 before anything is checked or changed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_field(name: str, value: str, max_chars: int = MAX_FIELD_CHARS) -> str:
    """Refuse what no password or code contains, before it is checked (and counted as a failure).

    >>> check_field("otp", "123 456")
    '123 456'
    >>> check_field("otp", "1\\x00")
    Traceback (most recent call last):
    ...
    jupyter_2fa.web.forms.BadInput: field 'otp' contains a NUL character
    """
    if len(value) > max_chars:
        raise BadInput(f"field {name!r} is too long")
    if "\x00" in value:
        raise BadInput(f"field {name!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no password checker could take it
        raise BadInput(f"field {name!r} is not valid Unicode") from None
    return value


def form_field(request: HTTPServerRequest, name: str, max_chars: int = MAX_FIELD_CHARS) -> str:
    """A form field exactly as sent (tornado's get_argument would silently drop NUL and control bytes)."""
    if len(request.body) > MAX_BODY_BYTES:
        raise BadInput("request body too large", 413)
    values = request.body_arguments.get(name, [])
    if len(values) > 1:
        raise BadInput(f"field {name!r} given more than once")
    if not values:
        return ""
    try:
        value = values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"field {name!r} is not valid UTF-8") from None
    return check_field(name, value, max_chars)


def json_fields(body: bytes, *names: str) -> dict[str, str]:
    """The named string fields of a JSON object body (missing ones are ""); anything else is BadInput.

    ``reveal`` comes back as one of :data:`REVEAL_MODES` ("inline" when missing).

    >>> json_fields(b'{"code": "123456"}', "code", "reveal")
    {'code': '123456', 'reveal': 'inline'}
    """
    data = json_body(body)
    fields = {}
    for name in names:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise BadInput(f"field {name!r} must be a string")
        fields[name] = reveal_mode(value) if name == "reveal" else check_field(name, value)
    return fields


def json_object(body: bytes, **kinds: type) -> dict[str, Any]:
    """The named fields of a JSON object body that are present, each of its kind (``str`` or ``dict``).

    >>> json_object(b'{"name": "YubiKey", "credential": {"id": "AAEC"}}', name=str, credential=dict)
    {'name': 'YubiKey', 'credential': {'id': 'AAEC'}}
    >>> json_object(b'{"credential": "AAEC"}', credential=dict)
    Traceback (most recent call last):
    ...
    jupyter_2fa.web.forms.BadInput: field 'credential' must be an object
    """
    data = json_body(body)
    fields: dict[str, Any] = {}
    for name, kind in kinds.items():
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, kind):
            raise BadInput(f"field {name!r} must be {'a string' if kind is str else 'an object'}")
        fields[name] = check_field(name, value) if isinstance(value, str) else value
    return fields


def json_body(body: bytes) -> dict[str, Any]:
    """A JSON object body, parsed strictly (size, repeated names, depth); anything else is BadInput."""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput("request body too large", 413)
    try:
        data: Any = json.loads(body or b"{}", object_pairs_hook=_unique_fields)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object") from None
    except RecursionError:  # "[[[[…": deeper than Python's parser goes, far deeper than any field is
        raise BadInput("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadInput("the body must be a JSON object")
    return data


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose names are all different (JSON parsers disagree on which repeat wins).

    >>> json_fields(b'{"code": "1", "code": "2"}', "code")
    Traceback (most recent call last):
    ...
    jupyter_2fa.web.forms.BadInput: field 'code' given more than once
    """
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise BadInput(f"field {name!r} given more than once")
        fields[name] = value
    return fields


def reveal_mode(value: str) -> str:
    """The ``reveal`` field of POST enrollment / relink ("" means "inline")."""
    mode = value or "inline"
    if mode not in REVEAL_MODES:
        raise BadInput(f"field 'reveal' must be one of {', '.join(REVEAL_MODES)}")
    return mode


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(username, password) of an ``Authorization: Basic`` header; None for another scheme.

    >>> basic_credentials("Basic YWxpY2U6czNjcmV0")
    ('alice', 's3cret')
    >>> basic_credentials("token abc") is None
    True
    """
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise BadInput("malformed Basic credentials") from None
    return check_field("username", username), check_field("password", password)
