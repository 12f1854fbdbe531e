"""The gate's login sessions: signed cookies stamped with the account's factor epoch.

Reset, re-link and logout move the epoch, which voids every older cookie at once. Checking a cookie costs a
dict lookup in :class:`EpochView`, not a store query.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from jupyter_server.auth.identity import User

from ..core import StoreError

if TYPE_CHECKING:
    from ..core import Store

COOKIE_REFRESH_SECONDS = 60  # how stale the cookie's "last seen" may get before it is rewritten


class SessionFactor(str, Enum):
    """What a request's user was granted on: a login's factor, or a per-request credential."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery-code"
    WEBAUTHN = "webauthn"  # a passkey or security key
    TRUSTED_NETWORK = "trusted-network"  # the password, from a trusted network: valid there only
    OPTIONAL_POLICY = "optional-policy"  # the password, while the optional rollout policy allows it
    TOKEN = "token"  # noqa: S105 (a factor's name) the server's API token, only with allow_token_access
    # Per-request credentials of callers without a browser session (a notebook kernel): they reach only the
    # 2FA API handlers that accept them, and never become a cookie.
    PASSWORD = "password"  # noqa: S105 (a factor's name) HTTP Basic
    STATUS_TOKEN = "status-token"  # noqa: S105 (a factor's name) this server's kernels' read-only token

    @property
    def per_request(self) -> bool:
        return self in (SessionFactor.PASSWORD, SessionFactor.STATUS_TOKEN)


@dataclass
class TwoFactorUser(User):
    """A jupyter_server User plus what its session was granted on."""

    epoch: int = 0
    factor: SessionFactor = SessionFactor.TOTP
    issued_at: float = 0.0
    seen_at: float = 0.0


class EpochView:
    """An in-memory copy of every account's session epoch, refreshed in the background.

    Changes made in this process show at once, changes made elsewhere (an admin's ``jupyter 2fa reset``)
    within ``interval`` seconds.
    """

    def __init__(self, load: Callable[[], dict[str, int]], interval: float) -> None:
        self._load = load
        self.interval = interval
        self._epochs: dict[str, int] | None = None
        self._loaded_at = 0.0
        self._refreshing = threading.Lock()

    def get(self, username: str) -> int | None:
        if self._epochs is None:
            self._refresh()  # the first request waits; every later one reads the copy
        elif time.monotonic() - self._loaded_at > self.interval and not self._refreshing.locked():
            threading.Thread(target=self._refresh, name="jupyter-2fa-epochs", daemon=True).start()
        return None if self._epochs is None else self._epochs.get(username, 0)

    def set(self, username: str, epoch: int) -> None:
        if self._epochs is not None:
            self._epochs[username] = epoch

    def _refresh(self) -> None:
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            self._epochs = dict(self._load())
            self._loaded_at = time.monotonic()
        except StoreError:
            self._loaded_at = time.monotonic()  # keep the last view; retry after the interval
        finally:
            self._refreshing.release()


def end_every_session(store: Store, username: str) -> int:
    """Move the account's epoch, so that its sessions end in every browser (logout); the new epoch."""
    store.ensure_account(username)
    store.bump_epoch(username)
    return store.epoch(username)


class Sessions:
    """The sessions of the gate's one account: issue, encode, check age and epoch, end them all."""

    def __init__(
        self, username: str, store: Callable[[], Store], max_age: float, idle_timeout: float, refresh: float
    ) -> None:
        self.username = username
        self._store = store
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self._epochs = EpochView(lambda: self._store().epochs(), refresh)

    def user(self, factor: SessionFactor, now: float, *, epoch: int = 0) -> TwoFactorUser:
        return TwoFactorUser(
            username=self.username,
            name=self.username,
            display_name=self.username,
            epoch=epoch,
            factor=factor,
            issued_at=now,
            seen_at=now,
        )

    def issue(self, factor: SessionFactor, now: float, epoch: int) -> TwoFactorUser:
        """A new session for the account, stamped with ``epoch``: the account's, as the login decision read it."""
        self.saw_epoch(epoch)
        return self.user(factor, now, epoch=epoch)

    def saw_epoch(self, epoch: int) -> None:
        """The account's epoch as a change made here left it (a login, a logout, a device linked): sessions of
        older epochs end now rather than at the next refresh."""
        self._epochs.set(self.username, epoch)

    def encode(self, user: TwoFactorUser) -> str:
        fields = {
            "u": user.username,
            "e": user.epoch,
            "f": SessionFactor(user.factor).value,
            "i": user.issued_at,
            "s": user.seen_at,
        }
        return json.dumps(fields, separators=(",", ":"))

    def decode(self, value: str) -> TwoFactorUser | None:
        data = json.loads(value)
        if not isinstance(data, dict) or data.get("u") != self.username:
            return None
        user = self.user(SessionFactor(str(data["f"])), float(data["i"]), epoch=int(data["e"]))
        user.seen_at = float(data["s"])
        return user

    def current(self, user: TwoFactorUser, now: float) -> bool:
        """Within its age and idle limits, and of the account's current epoch."""
        if now - user.issued_at > self.max_age or now - user.seen_at > self.idle_timeout:
            return False
        return user.epoch == self._epochs.get(user.username)

    def stale_seen_at(self, user: TwoFactorUser, now: float) -> bool:
        """Whether the cookie's "last seen" should be rewritten (idle time is counted from it)."""
        return now - user.seen_at > min(COOKIE_REFRESH_SECONDS, self.idle_timeout / 2)
