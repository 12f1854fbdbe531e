"""Per-request credentials of the gate's 2FA API, for callers without a browser session (a notebook kernel).

Only handlers that say so look at them (``accepts_password``, ``accepts_status_token``), so neither opens
anything else, and neither ever becomes a cookie:

- the password as HTTP Basic credentials, checked and throttled like a login;
- the status token (``GET status`` only), which this server's kernels find in ``JUPYTER_2FA_STATUS_TOKEN``.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from tornado import web

from ..endpoints import STATUS_TOKEN_HEADER
from ..web.forms import BadInput, basic_credentials
from ..web.refusals import Refused
from .sessions import SessionFactor, TwoFactorUser

if TYPE_CHECKING:
    from .identity import TOTPIdentityProvider


async def api_credential_user(provider: TOTPIdentityProvider, handler: web.RequestHandler) -> TwoFactorUser | None:
    """The account, for a 2FA API request that carries the status token or the password; None otherwise."""
    request = handler.request
    token = request.headers.get(STATUS_TOKEN_HEADER)
    if token is not None and getattr(handler, "accepts_status_token", False) and request.method == "GET":
        if not hmac.compare_digest(token.encode(), provider.status_token.encode()):
            raise web.HTTPError(403, "wrong status token")
        return provider.sessions.user(SessionFactor.STATUS_TOKEN, time.time())
    if not getattr(handler, "accepts_password", False):
        return None
    try:
        credentials = basic_credentials(request.headers.get("Authorization", ""))
    except BadInput as err:
        raise web.HTTPError(err.status, str(err)) from None
    if credentials is None:
        return None
    try:
        await provider.basic_account(handler, *credentials)  # the user part is ignored: the gate has one account
    except Refused as refused:
        raise refused.http_error() from None
    return provider.sessions.user(SessionFactor.PASSWORD, time.time())
