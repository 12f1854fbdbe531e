"""The hub admins' 2FA API and page, with JupyterHub's ``admin:users`` scope (an admin's token, or a service
with the admin role):

- ``GET /hub/2fa/api/users``: every account's 2FA state;
- ``DELETE /hub/2fa/api/users/{name}``: reset (the user links a new device; their hub sessions and the tokens
  they minted end, their servers and the servers' own tokens stay: see :mod:`.sessions`);
- ``POST /hub/2fa/api/users/{name}/unlock``: clear failed attempts;
- ``/hub/2fa/admin``: the same as a page, with Reset and Unlock, linked from the hub's nav bar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import Scope, needs_scope
from tornado import web

from ..core import Account, Enrollment, StoreError
from ..web.forms import BadInput
from .handlers import HubHandler
from .sessions import revoke_hub_sessions

T = TypeVar("T")


def account_model(account: Account, lockout_threshold: int) -> dict[str, Any]:
    return {
        "name": account.username,
        "enrolled": account.enrolled,
        "activated_at": account.activated_at,
        "pending": account.pending_secret is not None,
        "recovery_codes_left": account.recovery_codes_left,
        "failures": account.failures,
        "locked": account.failures >= lockout_threshold,
    }


class AdminHandler(HubHandler):
    def require_every_user(self) -> None:
        """The list and the page act on every account, so ``admin:users`` filtered to some users
        (``admin:users!group=…``) is not enough. JupyterHub 6's ``needs_scope`` refuses it already; 5.x lets
        it through for the handler to filter, which would have acted on any user."""
        if self.parsed_scopes.get("admin:users") != Scope.ALL:
            raise web.HTTPError(403, "this needs the admin:users scope over every user, not a filtered one")

    async def in_core(self, work: Callable[[Enrollment], T]) -> T:
        """``work(core)`` in the 2FA worker threads; a 503 when the store is down."""
        try:
            return await self.host.in_core(work)
        except StoreError as err:
            raise web.HTTPError(503, f"2FA store unavailable: {err}") from None

    def model(self, account: Account) -> dict[str, Any]:
        return account_model(account, self.host.lockout_threshold)

    async def reset(self, user_name: str) -> bool:
        """The device link and recovery codes go, the user's hub sessions and minted tokens end, servers keep
        running."""
        now = time.time()
        if not await self.in_core(lambda core: core.reset(user_name, now)):
            return False
        revoke_hub_sessions(self.db, user_name)
        return True

    async def unlock(self, user_name: str) -> bool:
        now = time.time()
        return await self.in_core(lambda core: core.unlock(user_name, now))


class AdminAPIHandler(AdminHandler, APIHandler):
    async def found(self, user_name: str) -> Account:
        account = await self.in_core(lambda core: core.store.get(user_name))
        if account is None:
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        return account

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class UsersAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    async def get(self) -> None:
        self.require_every_user()
        accounts = await self.in_core(lambda core: core.store.all_accounts())
        self.write_json([self.model(account) for account in accounts])


class UserAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    async def get(self, user_name: str) -> None:
        self.write_json(self.model(await self.found(user_name)))

    @needs_scope("admin:users")
    async def delete(self, user_name: str) -> None:
        if not await self.reset(user_name):
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        self.set_status(204)
        self.finish()


class UnlockAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    async def post(self, user_name: str) -> None:
        if not await self.unlock(user_name):
            raise web.HTTPError(404, f"{user_name} is not in the 2FA store")
        self.write_json(self.model(await self.found(user_name)))


class AdminPageHandler(AdminHandler, BaseHandler):
    """``/hub/2fa/admin``: every account's state, with Reset and Unlock."""

    @web.authenticated
    @needs_scope("admin:users")
    async def get(self) -> None:
        self.require_every_user()
        await self._render()

    @web.authenticated
    @needs_scope("admin:users")
    async def post(self) -> None:
        self.require_every_user()
        try:
            action, name = self.form_field("action"), self.form_field("name")
        except BadInput as err:
            raise web.HTTPError(err.status, str(err)) from None
        if action == "reset" and await self.reset(name):
            message = f"Reset {name}: their device is unlinked and their hub sessions ended."
        elif action == "unlock" and await self.unlock(name):
            message = f"Unlocked {name}."
        else:
            raise web.HTTPError(400, "unknown action or user")
        await self._render(message)

    async def _render(self, message: str = "") -> None:
        accounts = []
        for account in await self.in_core(lambda core: core.store.all_accounts()):
            model = self.model(account)
            activated = account.activated_at
            model["activated"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime(activated)) if activated else ""
            accounts.append(model)
        await self.render_page(
            "hub_2fa_admin.html",
            accounts=accounts,
            policy=self.host.enrollment_policy,
            message=message,
            xsrf=self.xsrf_token.decode("ascii"),
        )


def handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    return [
        (r"/2fa/admin", AdminPageHandler),
        (r"/2fa/api/users", UsersAPIHandler),
        (r"/2fa/api/users/([^/]+)", UserAPIHandler),
        (r"/2fa/api/users/([^/]+)/unlock", UnlockAPIHandler),
    ]
