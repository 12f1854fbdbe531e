"""What the gate's and the hub's handlers share: where a request comes from (forwarding headers only from
proxies), strict reading of form and JSON fields, and the shapes of the JSON answers."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from .core.network import Network, client_address, in_networks, parse_networks
from .core.oneshot import OneShotImages

TEMPLATES = Path(__file__).parent / "templates"
PENDING_COOKIE = "jupyter-2fa-enrollment"  # which browser started a pending enrollment (only it may cancel)
LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
MAX_BODY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 1024
# How POST enrollment / relink hand out the new secret: in the JSON body ("inline", the Lab extension and
# scripts), or as a one-time picture link ("link", the notebook panel, so the secret never enters a kernel).
REVEAL_MODES = ("inline", "link")
ONE_SHOT_IMAGE_HEADERS = {
    "Content-Type": "image/svg+xml",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


class BadInput(Exception):
    """The request itself is malformed: answered 400/413 before anything is checked or changed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_field(name: str, value: str) -> str:
    """Refuse what no password or code contains, before it is checked (and counted as a failure)."""
    if len(value) > MAX_FIELD_CHARS:
        raise BadInput(f"field {name!r} is too long")
    if "\x00" in value:
        raise BadInput(f"field {name!r} contains a NUL character")
    return value


def form_field(request: Any, name: str) -> str:
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
    return check_field(name, str(value))


def template_env(settings: dict[str, Any], key: str = "jinja2_env") -> Environment:
    """The app's jinja environment ``key`` with our templates first (``page.html`` and i18n stay the app's).

    JupyterHub keeps an async and a sync environment (``jinja2_env_sync``); each gets its own overlay.
    """
    cache = f"jupyter_2fa_{key}"
    env = settings.get(cache)
    if env is None:
        base: Environment = settings[key]
        env = base.overlay(loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES)), base.loader]))  # type: ignore[list-item]
        settings[cache] = env
    return env


def request_client_address(
    request: Any, trusted_proxies: Sequence[Network], *, loopback_proxy: bool = False
) -> str | None:
    """The client of a ``tornado.httputil.HTTPServerRequest``.

    The connection's peer comes from the connection context, not ``request.remote_ip``: with tornado's
    ``xheaders`` (as JupyterHub runs) ``remote_ip`` is whatever the client put in ``X-Real-Ip``.
    ``loopback_proxy``: a peer on loopback is a proxy that appends the client it saw (the hub's own
    configurable-http-proxy), even though it is not listed in ``trusted_proxies``.
    """
    context = getattr(request.connection, "context", None)
    peer = getattr(context, "address", None)
    peer_ip = peer[0] if isinstance(peer, tuple) and peer else None
    headers = request.headers
    first_hop = loopback_proxy and in_networks(peer_ip, LOOPBACK)
    return client_address(
        peer_ip, headers.get("X-Forwarded-For"), headers.get("X-Real-Ip"), trusted_proxies, first_hop_trusted=first_hop
    )


def pending_tag(account: Any) -> str:
    """Names an account's pending enrollment without revealing it ("" when there is none)."""
    if account is None or account.pending_secret is None:
        return ""
    return hashlib.sha256(account.pending_secret.encode()).hexdigest()


def json_fields(body: bytes, *names: str) -> dict[str, str]:
    """The named string fields of a JSON object body (missing ones are ""); anything else is BadInput.

    ``reveal`` comes back as one of :data:`REVEAL_MODES` ("inline" when missing).
    """
    if len(body) > MAX_BODY_BYTES:
        raise BadInput("request body too large", 413)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadInput("the body must be a JSON object")
    fields = {}
    for name in names:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise BadInput(f"field {name!r} must be a string")
        fields[name] = reveal_mode(value) if name == "reveal" else check_field(name, value)
    return fields


def account_status(account: Any, lockout_threshold: int) -> dict[str, Any]:
    """The part of ``GET status`` that describes the account (the gate and the hub add session fields)."""
    return {
        "enrolled": bool(account and account.enrolled),
        "pending": bool(account and account.pending_secret),
        "recovery_codes_left": account.recovery_codes_left if account else 0,
        "locked": bool(account and account.failures >= lockout_threshold),
    }


def provisioning_model(provisioning: Any, expires_at: float | None) -> dict[str, Any]:
    """The one-time answer to ``POST enrollment`` / ``POST relink``."""
    return {
        "otpauth_uri": provisioning.uri,
        "secret": provisioning.secret,
        "manual_key": provisioning.manual_key,
        "qr_svg": provisioning.svg(),
        "expires_at": expires_at,
    }


def reveal_mode(value: str) -> str:
    """The ``reveal`` field of POST enrollment / relink ("" means "inline")."""
    mode = value or "inline"
    if mode not in REVEAL_MODES:
        raise BadInput(f"field 'reveal' must be one of {', '.join(REVEAL_MODES)}")
    return mode


def linking_model(
    provisioning: Any, expires_at: float | None, reveal: str, images: OneShotImages, owner: str, qr_path: str
) -> dict[str, Any]:
    """The one-time answer to POST enrollment / relink: the secret itself, or a one-time picture link.

    ``qr_path`` is the absolute path of the picture route (``…/2fa/qr/``) as the user's browser sees it.
    """
    if reveal == "link":
        ticket = images.put(owner, provisioning.card_svg().encode(), time.time())
        return {"qr_url": qr_path + ticket, "expires_at": expires_at}
    images.discard(owner)  # a link to the secret this one replaced would show a dead secret
    return provisioning_model(provisioning, expires_at)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(username, password) of an ``Authorization: Basic`` header; None for another scheme."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise BadInput("malformed Basic credentials") from None
    return check_field("username", username), check_field("password", password)
