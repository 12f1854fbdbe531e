"""Hub sessions: what each browser login was granted on, checked on every request, and the tokens it leads to.

JupyterHub's login cookie names the user, not the login (every browser of a user carries the same
``cookie_id``), so each login also gets a signed cookie of ours, its *grant*: the user, the browser session
(JupyterHub's ``jupyterhub-session-id``), why the login was accepted (``totp``, ``recovery-code``,
``trusted-network``, ``optional-policy``) and the account's session epoch then. On every request (see
``TOTPAuthenticator.refresh_user``) a cookie session keeps its user only while its grant holds:

- the grant is there, and is this user's and this browser session's (sessions from before this check, or from
  a browser that lost its session id, log in again);
- the account's epoch has not moved since: no reset or re-link, from the hub or from ``jupyter 2fa``;
- a ``trusted-network`` login is used from a trusted network, an ``optional-policy`` one while that policy
  still lets the password alone in (before ``optional_until``; linking a device moves the epoch).

Otherwise the session ends: JupyterHub asks for a new login, and the tokens bound to the session (the browser's
login to single-user servers and services, through OAuth) are deleted.

Tokens:

- A single-user server's login of a password-only session (its OAuth token) lasts at most
  ``password_only_token_lifetime`` seconds, and never past ``optional_until``: the server tells the hub nothing
  about the browser's address, so on expiry the browser is sent back to the hub, which checks the rule again.
- No API token is minted on the password alone: ``POST /hub/api/users/NAME/tokens`` needs a session granted on
  both factors, or both factors (``otp``) in its ``auth`` body. A token a user mints for themselves is marked
  (its ``session_id`` becomes ``jupyter-2fa-minted:<epoch>``), so that a reset or re-link ends it.
- A reset or re-link ends every hub session of the user, every token bound to a session, and every token the
  user minted for themselves (marked, or with JupyterHub's note "Requested via api" if minted before the marks).
  Made in this hub: at once (a new ``cookie_id``). Made elsewhere (``jupyter 2fa reset``): the hub polls the
  store's epochs every ``EPOCH_POLL_SECONDS``; tokens end at the poll, sessions at their next request after it.
  The tokens of the user's running servers stay (their kernels' ``JUPYTERHUB_API_TOKEN``), and so do tokens an
  admin or a service minted for the user (theirs to revoke).

Limits: the single-user server caches its check of a token (``HubAuth.cache_max_age``, 5 min), which adds to
every bound on a server login above; a reset made while the hub is stopped ends marked tokens when it starts,
but a session (and its server login) only when that browser next reaches the hub; a token the user minted with
a note of their own before the marks carries no mark and survives a reset.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from jupyterhub import orm
from jupyterhub.utils import new_token
from sqlalchemy.orm import Session
from tornado.ioloop import IOLoop, PeriodicCallback

from ..config import parse_deadline
from ..core import Action, StoreError
from ..core.verdicts import SECOND_FACTOR_REASONS, Verdict

if TYPE_CHECKING:
    from .authenticator import TOTPAuthenticator

GRANT_COOKIE = "jupyter-2fa-grant"
TRUSTED_NETWORK = "trusted-network"
OPTIONAL_POLICY = "optional-policy"
PASSWORD_ONLY = frozenset({TRUSTED_NETWORK, OPTIONAL_POLICY})
MINTED = "jupyter-2fa-minted:"
SELF_MINTED_NOTE = "Requested via api"  # JupyterHub's note on a token users mint for themselves without naming it
EPOCH_POLL_SECONDS = 5.0
REMEMBERED_SESSIONS = 100_000  # grants kept in memory (least recently seen dropped first)


@dataclass(frozen=True)
class Grant:
    """What one hub login was granted on: account, browser session, reason, the account's epoch, Unix time."""

    user: str
    session: str
    reason: str
    epoch: int
    issued_at: float

    @property
    def password_only(self) -> bool:
        return self.reason in PASSWORD_ONLY

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, value: bytes | str) -> Grant | None:
        """The grant a (signed, so ours) cookie carries; None for any other shape.

        >>> Grant.decode(Grant("alice", "5f0c", "trusted-network", 3, 1.5).encode())
        Grant(user='alice', session='5f0c', reason='trusted-network', epoch=3, issued_at=1.5)
        >>> Grant.decode("[]") is None
        True
        """
        try:
            data = json.loads(value)
            user, session, reason = str(data["user"]), str(data["session"]), str(data["reason"])
            return cls(user, session, reason, int(data["epoch"]), float(data["issued_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def minted_epoch(session_id: str | None) -> int | None:
    """The epoch marked on a token a user minted for themselves; None for any other token.

    >>> minted_epoch("jupyter-2fa-minted:4"), minted_epoch("0f3c9a"), minted_epoch(None)
    (4, None, None)
    """
    if session_id is None or not session_id.startswith(MINTED):
        return None
    try:
        return int(session_id[len(MINTED) :])
    except ValueError:
        return -1  # a mark no epoch matches


def ends_with_the_device(token: Any) -> bool:
    """Whether a reset or re-link ends ``token``: bound to a browser session (a login through OAuth, or the mark
    of a token the user minted), or minted by the user before the marks. A server's own token has neither."""
    return token.session_id is not None or token.note == SELF_MINTED_NOTE


def revoke_hub_sessions(db: Session, user_name: str) -> None:
    """A reset or re-link made in this hub: every browser session of the user ends at once (a new cookie id voids
    every hub cookie), with the tokens that go with the device (:func:`ends_with_the_device`)."""
    user = db.query(orm.User).filter(orm.User.name == user_name).first()
    if user is None:
        return
    user.cookie_id = new_token()
    tokens: list[Any] = list(db.query(orm.APIToken).filter(orm.APIToken.user_id == user.id))
    for token in tokens:
        if ends_with_the_device(token):
            db.delete(token)
    drop_oauth_codes(db, user.id)
    db.commit()


def drop_oauth_codes(db: Session, user_id: Any, sessions: Iterable[str] | None = None) -> None:
    """Delete the user's unexchanged OAuth codes (of ``sessions`` only, if given): a code fetched before a
    session ended would otherwise still buy a server login for as long as the session would have lasted."""
    query = db.query(orm.OAuthCode).filter(orm.OAuthCode.user_id == user_id)
    if sessions is not None:
        query = query.filter(orm.OAuthCode.session_id.in_(list(sessions)))
    for code in query:
        db.delete(code)


def naive_utc(timestamp: float) -> datetime:
    """Unix time as JupyterHub stores times (naive UTC)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None)


class HubSessions:
    """The grants of one hub's logins, and the store's epochs as the hub last acted on them."""

    def __init__(self, host: TOTPAuthenticator) -> None:
        self.host = host
        self._remembered: OrderedDict[str, Grant] = OrderedDict()  # by session id
        self._epochs: dict[str, int] | None = None
        self._poller: PeriodicCallback | None = None
        self._polling = False

    # -- logging in ----------------------------------------------------------------------------------------

    def issue(self, handler: Any, name: str, verdict: Verdict, now: float) -> None:
        """Give a login's browser its grant, at the epoch the login was decided at (``verdict.epoch``, read
        under the check's lock): a reset committed after the check ends this session too."""
        session = handler.get_session_cookie() or handler.set_session_cookie()
        grant = Grant(name, session, verdict.reason, verdict.epoch or 0, now)
        # JupyterHub's own cookie setter: its path, Secure and cookie_options rules, signed with its secret.
        handler._set_cookie(GRANT_COOKIE, grant.encode(), encrypted=True, path=handler.hub.base_url)
        self._remember(grant)

    # -- every request -------------------------------------------------------------------------------------

    async def request_allowed(self, user: Any, handler: Any, now: float) -> bool:
        """Whether ``handler``'s request may go on as ``user``: False ends its cookie session (see above)."""
        self.start_watching()
        if getattr(handler, "_token_authenticated", False):  # JupyterHub's flag: a token, not a cookie, says who
            token = handler.get_token()
            grant = self._remembered.get(token.session_id) if token is not None and token.session_id else None
            if grant is not None and grant.password_only and token.user_id == user.id:
                self._bound(handler.db, [token], grant)
            return True
        cookie_id = handler.get_secure_cookie(handler.hub.cookie_name, max_age_days=handler.cookie_max_age_days)
        if cookie_id is None or cookie_id.decode("utf8", "replace") != user.cookie_id:
            return True  # another user's request about this one (an admin's spawn): not this session to judge
        session = handler.get_session_cookie()
        signed = handler.get_secure_cookie(GRANT_COOKIE, max_age_days=handler.cookie_max_age_days)
        grant = Grant.decode(signed) if signed else None
        address = self.host.client_address(handler)
        reason = await self._ended(grant, user.name, session, address, now)
        if reason is not None:
            sessions = {session, grant.session if grant is not None and grant.user == user.name else None}
            await self._end(handler, user, sessions - {None}, reason, address, now)
            # JupyterHub 6.1's refresh_auth reads this flag, set only on token requests, when a refresh fails:
            # without it the forced login still happens, but through an AttributeError and its traceback.
            handler._token_authenticated = False
            return False
        assert grant is not None  # for mypy: _ended answers "no-grant" without one
        self._remember(grant)
        if grant.password_only:
            self._bound(handler.db, self._session_tokens(handler.db, user.id, grant.session), grant)
        return True

    def two_factor_session(self, handler: Any, user: Any) -> bool:
        """Whether the request's cookie session was granted on both factors (checked already this request)."""
        # An allow-list: a future password-only reason mints nothing.
        return self.granted_on(handler, user) in SECOND_FACTOR_REASONS

    def granted_on(self, handler: Any, user: Any) -> str | None:
        """What the request's cookie session was granted on (a verdict's reason), if it is ``user``'s."""
        signed = handler.get_secure_cookie(GRANT_COOKIE, max_age_days=handler.cookie_max_age_days)
        grant = Grant.decode(signed) if signed else None
        if grant is None or grant.user != user.name or grant.session != handler.get_session_cookie():
            return None
        return grant.reason

    async def _ended(
        self, grant: Grant | None, name: str, session: str | None, address: str | None, now: float
    ) -> str | None:
        """Why the request's session no longer holds (a word for the audit log), or None while it does."""
        if grant is None or grant.user != name or not session or grant.session != session:
            return "no-grant"
        current = await self._epoch_now(name, grant.epoch)
        if current is None:
            return "store-unavailable"
        if grant.epoch != current:
            return "factor-changed"
        if grant.reason == TRUSTED_NETWORK and not self.host.in_trusted_network(address):
            return "left-trusted-network"
        if grant.reason == OPTIONAL_POLICY and not self.host.password_alone_allowed(now):
            return "optional-policy-over"
        return None

    async def _end(
        self, handler: Any, user: Any, sessions: set[str | None], reason: str, address: str | None, now: float
    ) -> None:
        """End the request's browser session (and the one its grant names): their tokens, the grant cookie."""
        db = handler.db
        for session in sessions:
            if session:
                for token in self._session_tokens(db, user.id, session):
                    db.delete(token)
                self._remembered.pop(session, None)
        drop_oauth_codes(db, user.id, {session for session in sessions if session})
        db.commit()
        handler.clear_cookie(GRANT_COOKIE, path=handler.hub.base_url)
        name = str(user.name)
        with contextlib.suppress(StoreError):  # the store would not open: the hub log below still says why
            await self.host.in_core(
                lambda core: core.verifier.record(Action.LOGOUT, name, "success", reason, address, now)
            )
        self.host.log.info("2FA: %s's hub session ended (%s); they log in again", user.name, reason)

    # -- tokens --------------------------------------------------------------------------------------------

    @staticmethod
    def _session_tokens(db: Session, user_id: int, session: str) -> list[Any]:
        return list(db.query(orm.APIToken).filter_by(user_id=user_id, session_id=session))

    def _bound(self, db: Session, tokens: Iterable[Any], grant: Grant) -> None:
        """Shorten the tokens of a password-only session to what its rule allows (never lengthen one)."""
        changed = False
        for token in tokens:
            end = (token.created or naive_utc(grant.issued_at)) + timedelta(
                seconds=self.host.password_only_token_lifetime
            )
            if grant.reason == OPTIONAL_POLICY and self.host.optional_until:
                end = min(end, naive_utc(parse_deadline(self.host.optional_until)))
            if token.expires_at is None or token.expires_at > end:
                token.expires_at = end
                changed = True
        if changed:
            db.commit()

    def mark_minted(self, db: Session, token: Any, requester: Any, epoch: int) -> None:
        """Mark a token that ``requester`` minted for themselves at their account's ``epoch`` (read before the
        token was made), so that a reset or re-link ends it."""
        if token.user is None or token.session_id is not None or getattr(requester, "kind", None) != "user":
            return
        if requester.name != token.user.name:
            return  # an admin's token for the user: theirs to revoke
        token.session_id = f"{MINTED}{epoch}"
        db.commit()

    # -- the store's epochs --------------------------------------------------------------------------------

    async def epoch_in_store(self, name: str) -> int:
        return await self.host.in_core(lambda core: core.store.epoch(name))

    async def _epoch_now(self, name: str, seen: int) -> int | None:
        """The account's epoch: as last polled, or read now when the poll may be behind this grant."""
        known = None if self._epochs is None else self._epochs.get(name)
        if known is not None and known >= seen:
            return known
        try:
            return await self.epoch_in_store(name)
        except StoreError:
            return None

    def start_watching(self) -> None:
        """Poll the store's epochs from the first request on (the CLI builds this authenticator outside any
        event loop, so not at start-up)."""
        if self._poller is None:
            self._poller = PeriodicCallback(self.poll, EPOCH_POLL_SECONDS * 1000)
            self._poller.start()
            IOLoop.current().add_callback(self.poll)

    async def poll(self) -> None:
        """End what a reset or re-link ended, wherever it was made (this hub, ``jupyter 2fa``, another hub)."""
        if self._polling:  # the first poll and a periodic one: an older view must not land after a newer one
            return
        self._polling = True
        try:
            epochs = await self.host.in_core(lambda core: core.store.epochs())
        except StoreError:
            return  # keep the last view; the next poll retries
        finally:
            self._polling = False
        db = getattr(self.host.parent, "db", None)
        if db is not None:
            if self._epochs is None:
                self._end_stale_minted(db, epochs)  # resets made while the hub was stopped
            else:
                for name, epoch in epochs.items():
                    if self._epochs.get(name, 0) != epoch:
                        self._end_stale(db, name, epoch)
        self._epochs = epochs

    def _end_stale(self, db: Session, name: str, epoch: int) -> None:
        """The account's epoch is now ``epoch``: end its tokens of earlier epochs; sessions granted on an earlier
        one end at their next request (``_ended``), those granted since stay."""
        user = db.query(orm.User).filter(orm.User.name == name).first()
        if user is None:
            return
        ended = 0
        tokens: list[Any] = list(db.query(orm.APIToken).filter(orm.APIToken.user_id == user.id))
        for token in tokens:
            if not ends_with_the_device(token):
                continue
            marked = minted_epoch(token.session_id)
            grant = self._remembered.get(token.session_id) if token.session_id else None
            current = marked == epoch if marked is not None else grant is not None and grant.epoch == epoch
            if not current:
                db.delete(token)
                ended += 1
        for session, grant in list(self._remembered.items()):
            if grant.user == name and grant.epoch != epoch:
                del self._remembered[session]
        drop_oauth_codes(db, user.id)
        db.commit()
        if ended:
            self.host.log.info("2FA: %s's device changed; %d of their tokens ended", name, ended)

    def _end_stale_minted(self, db: Session, epochs: dict[str, int]) -> None:
        marked: list[Any] = list(db.query(orm.APIToken).filter(orm.APIToken.__table__.c.session_id.startswith(MINTED)))
        for token in marked:
            if token.user is not None and minted_epoch(token.session_id) != epochs.get(token.user.name, 0):
                db.delete(token)
        db.commit()

    def _remember(self, grant: Grant) -> None:
        self._remembered[grant.session] = grant
        self._remembered.move_to_end(grant.session)
        while len(self._remembered) > REMEMBERED_SESSIONS:
            self._remembered.popitem(last=False)
