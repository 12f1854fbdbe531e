"""The notebook panel's HTTP client of the 2FA JSON API (the gate's ``2fa/api/`` or the hub's ``/hub/2fa/api/``).

A kernel has no browser session, so every call that changes anything carries the user's password as HTTP Basic
credentials, which the server checks (and throttles) each time. Reading the status needs no password: the gate
gives its kernels a read-only status token, and on a hub the kernel's own API token may read its user's status.
Neither can enroll, re-link or reset anything.

Standard library only (``urllib``), so the panel works in any kernel that can import jupyter_2fa.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..endpoints import API_URL_ENV, STATUS_TOKEN_ENV, STATUS_TOKEN_HEADER

DEFAULT_TIMEOUT_SECONDS = 15.0


class ClientError(Exception):
    """A call failed; ``str(error)`` is a message for the user (never a traceback)."""

    def __init__(self, message: str, status: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, or 0 when the server could not be reached
        self.retry_after = retry_after


@dataclass(frozen=True)
class Endpoint:
    """Where the API is, whose account it is, and how to read the status without the password."""

    api_url: str  # ends with "/2fa/api/"
    username: str
    on_hub: bool
    status_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None) -> Endpoint:
        """The endpoint of the server this kernel runs under, from the environment it gave the kernel."""
        env = os.environ if env is None else env
        username = env.get("JUPYTERHUB_USER") or env.get("USER") or ""
        if env.get(API_URL_ENV):
            token = env.get(STATUS_TOKEN_ENV, "")
            headers = {STATUS_TOKEN_HEADER: token} if token else {}
            return cls(env[API_URL_ENV], username, on_hub=False, status_headers=headers)
        hub_api = env.get("JUPYTERHUB_API_URL", "")
        if hub_api:
            base = hub_api.rstrip("/")
            base = base[: -len("/api")] if base.endswith("/api") else base
            token = env.get("JUPYTERHUB_API_TOKEN", "")
            headers = {"Authorization": f"token {token}"} if token else {}
            return cls(f"{base}/2fa/api/", username, on_hub=True, status_headers=headers, ssl_context=_hub_ssl(env))
        raise ClientError(
            "This notebook's server does not offer two-factor authentication: it is neither a Jupyter server "
            "with the jupyter-2fa gate on nor a JupyterHub single-user server. Ask your administrator, or "
            "link a device in a terminal with `jupyter 2fa enroll`."
        )


def _hub_ssl(env: Mapping[str, str]) -> ssl.SSLContext | None:
    """The client context of a hub with ``internal_ssl`` (the spawner hands kernels these files)."""
    ca = env.get("JUPYTERHUB_SSL_CLIENT_CA")
    if not ca:
        return None
    context = ssl.create_default_context(cafile=ca)
    if env.get("JUPYTERHUB_SSL_CERTFILE") and env.get("JUPYTERHUB_SSL_KEYFILE"):
        context.load_cert_chain(env["JUPYTERHUB_SSL_CERTFILE"], env["JUPYTERHUB_SSL_KEYFILE"])
    return context


class TwoFactorClient:
    """One method per API call; each raises :class:`ClientError` with a message the panel can show."""

    def __init__(self, endpoint: Endpoint, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def status(self, password: str | None = None) -> dict[str, Any]:
        headers = self._password_headers(password) if password else dict(self.endpoint.status_headers)
        return self._call("GET", "status", None, headers)

    def begin(self, password: str) -> dict[str, Any]:
        """Start linking a first device; the answer has ``qr_url`` (a one-time picture), never the secret."""
        return self._call("POST", "enrollment", {"password": password, "reveal": "link"}, password)

    def relink(self, password: str, otp: str) -> dict[str, Any]:
        """Start replacing the linked device (password + a current or recovery code); ``qr_url`` as above."""
        return self._call("POST", "relink", {"password": password, "otp": otp, "reveal": "link"}, password)

    def confirm(self, password: str, code: str) -> list[str]:
        """Activate the pending device with a code from it; returns the new recovery codes."""
        return list(self._call("POST", "enrollment/confirm", {"code": code}, password)["recovery_codes"])

    def cancel(self, password: str, otp: str = "") -> None:
        """Drop the pending enrollment; a re-link also needs ``otp``, a current or recovery code."""
        self._call("DELETE", "enrollment", {"otp": otp} if otp else None, password)

    def regenerate_recovery_codes(self, password: str, otp: str) -> list[str]:
        return list(
            self._call("POST", "recovery-codes", {"password": password, "otp": otp}, password)["recovery_codes"]
        )

    def _password_headers(self, password: str) -> dict[str, str]:
        pair = f"{self.endpoint.username}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def _call(self, method: str, path: str, body: dict[str, str] | None, auth: str | dict[str, str]) -> dict[str, Any]:
        headers = self._password_headers(auth) if isinstance(auth, str) else auth
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers = {**headers, "Content-Type": "application/json"}
        request = urllib.request.Request(self.endpoint.api_url + path, data=data, headers=headers, method=method)  # noqa: S310 (the server's own http(s) URL)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.endpoint.ssl_context) as reply:  # noqa: S310
                payload = reply.read()
        except urllib.error.HTTPError as err:
            raise _refusal(err) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ClientError(
                f"Cannot reach the 2FA service at {self.endpoint.api_url} ({reason}). Try again later."
            ) from None
        try:
            answer: dict[str, Any] = json.loads(payload) if payload else {}  # every API answer is a JSON object
        except ValueError:
            raise ClientError("The 2FA service sent an answer this panel cannot read.", 502) from None
        return answer


def _refusal(err: urllib.error.HTTPError) -> ClientError:
    """The server's own message for a refusal (its JSON ``message``), else a plain one for the status."""
    message = ""
    with contextlib.suppress(ValueError, AttributeError, OSError):
        message = str(json.loads(err.read() or b"{}").get("message") or "")
    retry_after = 0.0
    with contextlib.suppress(ValueError):
        retry_after = float(err.headers.get("Retry-After") or 0)
    return ClientError(message or f"The 2FA service refused the request (HTTP {err.code}).", err.code, retry_after)
