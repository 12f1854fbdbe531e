"""The hub admins' 2FA API and page, with JupyterHub's ``admin:users`` scope (an admin's token, or a service
with the admin role):

- ``GET /hub/2fa/api/users?offset=&limit=``: one page of the accounts' 2FA states, in name order, paged as
  JupyterHub's own ``GET /hub/api/users`` is (see :meth:`UsersAPIHandler.get`);
- ``DELETE /hub/2fa/api/users/{name}``: reset (the user links a new device; their hub sessions and the tokens
  they minted end, their servers and the servers' own tokens stay: see :mod:`.sessions`);
- ``POST /hub/2fa/api/users/{name}/unlock``: clear failed attempts;
- ``/hub/2fa/admin?offset=&limit=``: the same as a page, :data:`PAGE_DEFAULT_LIMIT` accounts at a time, with
  Reset and Unlock, linked from the hub's nav bar.

Neither ever reads every account at once: a hub of 100 000 users is listed one page (one query) at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from jupyterhub.apihandlers.base import PAGINATION_MEDIA_TYPE, APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import Scope, needs_scope
from tornado import web

from ..core import Account, Enrollment, StoreError
from ..core.store import MAX_OFFSET
from ..web.forms import BadInput
from .handlers import HubHandler
from .sessions import revoke_hub_sessions

T = TypeVar("T")

# Accounts per admin page when its address names no ``limit`` (never more than the hub's api_page_max_limit).
PAGE_DEFAULT_LIMIT = 100


def account_model(account: Account, lockout_threshold: int) -> dict[str, Any]:
    return {
        "name": account.username,
        "enrolled": account.enrolled,
        "activated_at": account.activated_at,
        "pending": account.pending_secret is not None,
        "recovery_codes_left": account.recovery_codes_left,
        "webauthn_keys": account.webauthn_keys,
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

    def page_argument(self, name: str, minimum: int) -> int | None:
        """The query argument ``offset`` or ``limit`` as sent, None when absent; a 400 unless it is one whole
        number from ``minimum`` to MAX_OFFSET, in ASCII digits.

        Stricter than JupyterHub's ``get_api_pagination``, which answers ``-3`` with the page at 3 and ``0`` with
        a page of one: a client's bug is named instead of answered with a page it did not ask for. Too large a
        number is refused here, before the database would fail on it."""
        values = self.get_query_arguments(name, strip=False)
        if not values:
            return None
        if len(values) > 1:
            raise web.HTTPError(400, f"{name} given more than once")
        value = values[0]
        if not (value.isascii() and value.isdigit()):
            raise web.HTTPError(400, f"{name} must be a whole number of at least {minimum}, written in digits 0-9")
        if len(value.lstrip("0")) > len(str(MAX_OFFSET)) or int(value) > MAX_OFFSET:
            raise web.HTTPError(400, f"{name} must be at most {MAX_OFFSET}")
        if int(value) < minimum:
            raise web.HTTPError(400, f"{name} must be at least {minimum}")
        return int(value)

    def page_request(self) -> tuple[int | None, int | None]:
        """``?offset=`` (from 0) and ``?limit=`` (from 1) as sent, each None when absent; see ``page_argument``."""
        return self.page_argument("offset", 0), self.page_argument("limit", 1)

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

    def write_json(self, payload: Any, status: int = 200, content_type: str = "application/json") -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(json.dumps(payload))


class UsersAPIHandler(AdminAPIHandler):
    @needs_scope("admin:users")
    async def get(self) -> None:
        """One page of the accounts, in name order, paged as JupyterHub's ``GET /hub/api/users`` is.

        ``?offset=`` (default 0) and ``?limit=`` (default: the hub's ``api_page_default_limit`` with the
        pagination media type, its ``api_page_max_limit`` without; lowered to ``api_page_max_limit``) come from
        JupyterHub's own ``get_api_pagination``, after ``page_request`` refused what it would bend. A client
        that accepts ``application/jupyterhub-pagination+json`` gets JupyterHub's envelope (``items`` and
        ``_pagination``: offset, limit, total, next) with that media type; any other gets the plain JSON array
        it always got, now the first page only, as JupyterHub's own list does (and, like it, logs a warning
        when that first page is full: such a client may be missing accounts).
        """
        self.require_every_user()
        _, asked_limit = self.page_request()
        offset, limit = (int(number) for number in self.get_api_pagination())
        self.add_header("Vary", "Accept")
        if not self.accepts_pagination:
            page = await self.in_core(lambda core: core.store.accounts_slice(offset, limit))
            if asked_limit is None and offset == 0 and len(page) == limit:
                self.log.warning(
                    "2FA account list without pagination: answered with the first %d accounts, there may be "
                    "more; ask with Accept: %s and offset/limit for the others",
                    limit,
                    PAGINATION_MEDIA_TYPE,
                )
            self.write_json([self.model(account) for account in page])
            return
        page, total = await self.in_core(
            lambda core: (core.store.accounts_slice(offset, limit), core.store.count_accounts())
        )
        envelope = self.paginated_model([self.model(account) for account in page], offset, limit, total)
        self.write_json(envelope, content_type=PAGINATION_MEDIA_TYPE)


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
    """``/hub/2fa/admin?offset=&limit=``: a page of the accounts' states, with Reset and Unlock, and links to
    the pages before and after. A Reset or Unlock posts to the same address, so the same page comes back."""

    @web.authenticated
    @needs_scope("admin:users")
    async def get(self) -> None:
        self.require_every_user()
        await self._render(*self.window())

    @web.authenticated
    @needs_scope("admin:users")
    async def post(self) -> None:
        self.require_every_user()
        offset, limit = self.window()  # a bad address is refused before anything is changed
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
        await self._render(offset, limit, message)

    def window(self) -> tuple[int, int]:
        """The page asked for: ``offset`` (default 0) and ``limit`` (default PAGE_DEFAULT_LIMIT), both no more
        than the hub's ``api_page_max_limit``, the most one request of its own API lists."""
        offset, limit = self.page_request()
        most = int(self.settings["api_page_max_limit"])
        return offset or 0, min(limit or PAGE_DEFAULT_LIMIT, max(most, 1))

    def page_url(self, offset: int, limit: int) -> str:
        return f"{self.hub.base_url}2fa/admin?{urlencode({'offset': offset, 'limit': limit})}"

    async def _render(self, offset: int, limit: int, message: str = "") -> None:
        page, total = await self.in_core(
            lambda core: (core.store.accounts_slice(offset, limit), core.store.count_accounts())
        )
        accounts = []
        for account in page:
            model = self.model(account)
            activated = account.activated_at
            model["activated"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime(activated)) if activated else ""
            accounts.append(model)
        # Previous: the ``limit`` accounts before this page (before the end, for an offset past it).
        previous = self.page_url(max(0, min(offset, total) - limit), limit) if offset > 0 else None
        await self.render_page(
            "hub_2fa_admin.html",
            accounts=accounts,
            first=offset + 1,
            last=offset + len(accounts),
            total=total,
            this_page=self.page_url(offset, limit),
            previous_page=previous,
            next_page=self.page_url(offset + limit, limit) if offset + limit < total else None,
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
