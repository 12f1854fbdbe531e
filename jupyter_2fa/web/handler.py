"""The handful of facts a 2FA flow needs from its host's request handlers, and what every flow handler shares.

A host composes :class:`FlowHandler` (through its adapter mixin) with its own base handler: jupyter_server's
``JupyterHandler`` on the gate, JupyterHub's ``BaseHandler`` on the hub.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template
from tornado import web

from ..core.verdicts import SECOND_FACTOR_REASONS
from .forms import MAX_FIELD_CHARS, form_field, json_fields
from .refusals import Refused

if TYPE_CHECKING:
    from .host import Host

TEMPLATES = Path(__file__).parent.parent / "templates"
# The language our pages are written in: the ``lang`` of their ``<html>``, which screen readers read them in.
PAGE_LANGUAGE = "en"
_HTML_TAG_WITHOUT_LANG = re.compile(r"<html(?=[\s>])(?![^>]*\slang=)", re.IGNORECASE)
Verb = TypeVar("Verb", bound=Callable[..., Awaitable[None]])


def with_language(document: str, lang: str = PAGE_LANGUAGE) -> str:
    """``document`` with ``lang`` on its ``<html>`` tag where the host's layout left it out.

    jupyter_server's ``page.html`` opens with a bare ``<html>`` and has no block to change it; without ``lang``
    a screen reader guesses the language (WCAG 3.1.1, axe's ``html-has-lang``). JupyterHub's layout has one.

    >>> with_language("<!DOCTYPE HTML>\\n<html>\\n<head>")
    '<!DOCTYPE HTML>\\n<html lang="en">\\n<head>'
    >>> with_language('<html lang="de"><head>')
    '<html lang="de"><head>'
    """
    return _HTML_TAG_WITHOUT_LANG.sub(f'<html lang="{lang}"', document, count=1)


def routes(*handlers: type[FlowHandler]) -> list[tuple[str, type[web.RequestHandler]]]:
    """A host's handlers, each at the route of the flow it serves."""
    return [(handler.route, handler) for handler in handlers]


def authenticated(verb: Verb) -> Verb:
    """tornado's ``web.authenticated`` (a login is required, as each host defines it), keeping the verb's type."""
    return cast(Verb, web.authenticated(verb))


@dataclass(frozen=True)
class Caller:
    """Whose account an API request acts on, and whether it was proven by per-request credentials (HTTP
    Basic, a status token: a kernel) rather than a browser session."""

    name: str
    credentials: bool = False


class FlowHandler(web.RequestHandler):
    """Base of every 2FA page and API handler, on either host. The methods that raise NotImplementedError
    are the host's part; the rest is shared."""

    # Where the flow is served, below the host's base URL (a tornado route pattern).
    route: ClassVar[str]
    # The enrollment page's template: the same body inside each host's page layout.
    page_template: ClassVar[str]
    # Whether the enrollment page asks for a username (the hub has many accounts; the gate one).
    ask_username: ClassVar[bool]

    if TYPE_CHECKING:  # provided by each host's base handler

        def render_template(self, name: str, *args: Any, **ns: Any) -> Any: ...

    # -- the host's part -----------------------------------------------------------------------------------

    @property
    def host(self) -> Host:
        raise NotImplementedError

    def url(self, route: str) -> str:
        """The absolute path of one of our routes (``2fa/enroll``, ``2fa/qr/``) as the browser sees it."""
        raise NotImplementedError

    def page_next(self) -> str:
        """Where the enrollment page's Continue link leads."""
        raise NotImplementedError

    async def caller(self, *, read_only: bool = False) -> Caller:
        """The account an API request acts on; ``read_only`` lets a token that may only read status name it.
        Raises ``web.HTTPError`` (or :class:`Refused`) when the request may not act on any."""
        raise NotImplementedError

    def session_of(self, caller: Caller) -> tuple[str | None, float | None]:
        """The factor and end time of the caller's session, for ``GET status`` (None where the host has none)."""
        raise NotImplementedError

    def session_factor(self, caller: Caller) -> str | None:
        """What the caller's browser session was opened with (a verdict's reason: "totp", "webauthn", ...)."""
        return self.session_of(caller)[0]

    def second_factor_proven(self, caller: Caller) -> bool:
        """Whether the caller's browser session was opened with a second factor (not the password alone)."""
        return self.session_of(caller)[0] in SECOND_FACTOR_REASONS

    async def device_linked(self, caller: Caller, factor: str = "totp") -> None:
        """A new device is active: end the account's older sessions, and give this browser a fresh one (granted
        on ``factor``, what the new device proved) where the host can (``caller.credentials``: a kernel, which
        takes no cookie)."""
        raise NotImplementedError

    def picture_owner(self) -> str | None:
        """The account whose browser session this is, if it may see a one-time picture (tokens and
        per-request credentials may not: a kernel must not read the secret back)."""
        raise NotImplementedError

    def write_refusal(self, refused: Refused) -> None:
        """Answer an API request with a refusal, in the host's JSON error shape."""
        for name, value in refused.headers.items():
            self.set_header(name, value)
        self.reply(refused.status, {"message": refused.message})

    # -- shared --------------------------------------------------------------------------------------------

    def session_account(self) -> str | None:
        """The account this browser's own login session is of, if any (the one that may see its one-time
        pictures): a page may tell it about its account, what it never tells an anonymous visitor."""
        return self.picture_owner()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def get_template(self, name: str, sync: bool = False) -> Template:
        """Our templates first; ``page.html`` and i18n stay the host's (JupyterHub keeps an async and a sync
        jinja environment, ``jinja2_env`` and ``jinja2_env_sync``: each gets its own overlay)."""
        key = "jinja2_env_sync" if sync else "jinja2_env"
        cache = f"jupyter_2fa_{key}"
        env: Environment | None = self.settings.get(cache)
        if env is None:
            base: Environment = self.settings[key]
            loaders = [FileSystemLoader(str(TEMPLATES)), *([base.loader] if base.loader else [])]
            env = self.settings[cache] = base.overlay(loader=ChoiceLoader(loaders))
        return env.get_template(name)

    async def render_page(self, template: str, status: int = 200, **ns: Any) -> None:
        self.set_status(status)
        html = self.render_template(template, **ns)
        self.finish(with_language(await html if inspect.isawaitable(html) else html))

    def form_field(self, name: str, max_chars: int = MAX_FIELD_CHARS) -> str:
        return form_field(self.request, name, max_chars)

    def json_fields(self, *names: str) -> dict[str, str]:
        return json_fields(self.request.body, *names)

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))
