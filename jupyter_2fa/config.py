"""Every 2FA setting in one traitlets Configurable, shared by the server gate, the hub authenticator and the CLI.

``c.TwoFactorConfig.x`` configures all of them; a subclass's section (``c.TOTPIdentityProvider.x``,
``c.TOTPAuthenticator.x``) overrides it for that front-end only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jupyter_core.paths import jupyter_data_dir
from traitlets import CaselessStrEnum, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .core.audit import AuditSink, JsonlAuditLog, fan_out, logging_sink
from .core.network import parse_networks
from .core.oneshot import OneShotImages
from .core.settings import Settings
from .core.throttle import MAX_LOCKOUT_THRESHOLD, GuessPolicy, ThrottlePolicy
from .core.totp import TOTPParameters
from .core.webauthn import BadRelyingParty, RelyingParty

if TYPE_CHECKING:
    from .core import Enrollment, Keyring


def parse_deadline(text: str) -> float:
    """An ISO 8601 date or date-time as Unix time; naive values are UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class TwoFactorConfig(LoggingConfigurable):
    """Settings of the second factor, and the factory of the core objects that enforce them."""

    issuer = Unicode(
        "Jupyter",
        config=True,
        help="""Name shown above the account in the user's authenticator app (the otpauth "issuer").

        Use your site's name (e.g. "Example HPC") so users can tell its codes from others.
        It must not contain ':', which separates issuer and account in otpauth URIs.
        Changing it only affects devices linked afterwards.

        .. versionadded:: 0.1
        """,
    )

    digits = Int(
        6,
        config=True,
        help="""Number of digits of a TOTP code: 6, 7 or 8.

        Default 6, the only length Google Authenticator shows. Changing it breaks devices linked
        before the change, so decide before users enroll.

        .. versionadded:: 0.1
        """,
    )

    period = Int(
        30,
        config=True,
        help="""Seconds for which one TOTP code is valid (the RFC 6238 time step), 10 to 300.

        Default 30, the only period Google Authenticator honours. Like ``digits``, fix it before users enroll.

        .. versionadded:: 0.1
        """,
    )

    algorithm = CaselessStrEnum(
        ["sha1", "sha256", "sha512"],
        "sha1",
        config=True,
        help="""HMAC hash of the TOTP codes: sha1 (default), sha256 or sha512.

        Google Authenticator ignores anything but sha1 and would show wrong codes, so change this only if
        every app your users have supports it.

        .. versionadded:: 0.1
        """,
    )

    window = Int(
        1,
        config=True,
        help="""Time steps of clock drift tolerated on either side of now (0 to 10).

        Default 1: the previous, current and next code are accepted (a code is good for about 90 s).
        Each further step widens what a guesser can hit, so raise it only for devices with bad clocks.

        .. versionadded:: 0.1
        """,
    )

    lockout_threshold = Int(
        10,
        config=True,
        help=f"""Consecutive second-factor failures after which an account is locked until an admin unlocks it.

        Default 10, at most {MAX_LOCKOUT_THRESHOLD}. Wrong, malformed and replayed codes and wrong recovery
        codes count when the password was right (wrong passwords are slowed down by
        ``password_backoff_max_seconds`` and ``source_lockout_threshold`` instead, so a stranger cannot lock
        anyone out). Only a right second factor resets the count; the password alone never does. Unlock with
        ``jupyter 2fa unlock USER``.

        .. warning:: Raising it gives a guesser more tries; with a window of 1, each try has about a
           3 in a million chance.

        .. versionadded:: 0.1
        """,
    )

    backoff_free_attempts = Int(
        3,
        config=True,
        help="""Consecutive failures allowed without waiting; after that each attempt waits
        ``backoff_base_seconds * 2**k`` seconds (k = failures beyond this number), capped at
        ``backoff_max_seconds``. Default 3, for users who mistype.

        .. versionadded:: 0.1
        """,
    )

    backoff_base_seconds = Float(
        1.0,
        config=True,
        help="""First back-off delay in seconds once ``backoff_free_attempts`` are used up; it doubles with
        every further failure. Default 1. Set 0 to rely on the hard lock alone.

        .. versionadded:: 0.1
        """,
    )

    backoff_max_seconds = Float(
        300.0,
        config=True,
        help="""Longest back-off delay in seconds between two second-factor attempts. Default 300 (5 minutes).

        .. versionadded:: 0.1
        """,
    )

    password_backoff_free_attempts = Int(
        5,
        config=True,
        help="""Wrong passwords for one account name allowed without waiting, from any number of addresses;
        after that each try waits ``backoff_base_seconds * 2**k`` seconds, capped at
        ``password_backoff_max_seconds``. Wrong passwords never lock an account: someone without the
        password can slow its owner down, not lock them out. Names that never logged in are counted too.

        .. versionadded:: 0.1
        """,
    )

    password_backoff_max_seconds = Float(
        60.0,
        config=True,
        help="""Longest wait in seconds that wrong passwords can put between two login attempts of one account
        name (or one source address). Default 60: the most a stranger can slow an owner down, and at most
        1 440 password guesses a day at any one account, however many addresses the guesser has.

        .. versionadded:: 0.1
        """,
    )

    source_lockout_threshold = Int(
        MAX_LOCKOUT_THRESHOLD,
        config=True,
        help=f"""Wrong passwords from one source address (an IPv4 address, or an IPv6 /64), for every account
        name together, after which that source is refused until an hour passes without a failure from it.
        Default and maximum {MAX_LOCKOUT_THRESHOLD} (NIST SP 800-63B's bound). The source also waits between
        tries after 10 free ones, like an account name. Behind a proxy, list it in ``trusted_proxies`` so the
        source is the client, not the proxy: on a hub without ``trusted_proxies`` every login comes from the
        proxy, so sources are not counted there at all (account names still are). Addresses in
        ``trusted_networks`` (often one NAT address for a whole campus) are not counted as sources either.

        .. versionadded:: 0.1
        """,
    )

    recovery_code_count = Int(
        10,
        config=True,
        help="""How many single-use recovery codes a user receives when linking a device or regenerating
        codes (0 to 100). Default 10. Each carries 50 random bits and is stored only as an Argon2 hash.
        0 disables recovery codes: a lost phone then always needs an admin reset.

        .. versionadded:: 0.1
        """,
    )

    enrollment_lifetime = Float(
        600.0,
        config=True,
        help="""Seconds a pending enrollment stays confirmable after it starts (30 to 86400). Default 600.

        The QR code is shown once; if the user does not confirm a code from it in time, they start over.

        .. versionadded:: 0.1
        """,
    )

    db_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of the 2FA store.

        Default: an SQLite file ``jupyter_2fa/store.sqlite`` in the Jupyter data directory (so
        ``JUPYTER_DATA_DIR`` moves it), created 0600 in a 0700 folder. Use PostgreSQL
        (``postgresql+psycopg://user:password@host/db``, extra ``jupyter-2fa[postgres]``) when several
        processes or hosts share the store, e.g. a JupyterHub with several replicas on Kubernetes.

        .. warning:: Whoever can write this database can reset anyone's second factor. Keep it private.

        .. versionadded:: 0.1
        """,
    )

    @default("db_url")
    def _db_url_default(self) -> str:
        from .core.store import default_sqlite_url  # SQLAlchemy loads with the store, not with the config

        return default_sqlite_url(Path(jupyter_data_dir()))

    keys_env_var = Unicode(
        "JUPYTER_2FA_KEYS",
        config=True,
        help="""Environment variable that may hold the Fernet keys encrypting TOTP secrets at rest.

        Several keys are separated by ';' (newest first: it encrypts; all decrypt). When the variable is unset
        or empty, keys come from ``key_file``. Use the variable where the store is shared (a Kubernetes
        secret for a hub); create a key with
        ``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``.

        .. versionadded:: 0.1
        """,
    )

    key_file = Unicode(
        config=True,
        help="""File holding the Fernet keys (one per line, newest first), used when ``keys_env_var`` is unset.

        Default ``jupyter_2fa/secret.key`` in the Jupyter data directory, created 0600 with a new key on
        first use. A wrong or replaced key makes every login fail with a clear error, never a bypass.
        Re-encrypt with a new key with ``jupyter 2fa rotate-key``.

        .. warning:: Losing the key file makes every linked device unusable (admins then reset users).

        .. versionadded:: 0.1
        """,
    )

    @default("key_file")
    def _key_file_default(self) -> str:
        return str(Path(jupyter_data_dir()) / "jupyter_2fa" / "secret.key")

    worker_threads = Int(
        4,
        config=True,
        help="""Threads that run the 2FA store's queries and the recovery codes' Argon2id checks for a server
        or hub, off its event loop, so a slow disk, a locked row or a burst of logins never stalls other
        requests. Requests beyond this wait their turn. With PostgreSQL each thread may hold one connection;
        SQLite writes one transaction at a time whatever this is.

        .. versionadded:: 0.1
        """,
    )

    audit_log_file = Unicode(
        "",
        config=True,
        help="""Optional JSON-lines file receiving one record per 2FA decision (user, remote address, action,
        outcome, reason), e.g. for fail2ban. Empty (default): decisions go to the application log only.
        Records never contain secrets, codes or passwords. Created 0600.

        .. versionadded:: 0.1
        """,
    )

    enrollment_policy = CaselessStrEnum(
        ["required", "optional", "cli-only"],
        "required",
        config=True,
        help="""What users without a linked device may do.

        - ``required`` (default): they can only link a device (enrollment page, after their password);
          nothing else opens until a code from it is confirmed.
        - ``optional``: the password alone still logs them in, with a reminder to link a device, until
          ``optional_until`` (if set); after that date ``required`` applies. For rolling 2FA out gradually.
        - ``cli-only``: devices are linked only with ``jupyter 2fa enroll`` in a terminal (e.g. by an admin,
          or over SSH, which has its own second factor); the web pages refuse to enroll.

        .. warning:: ``optional`` lets a password alone in; use it only for a rollout period.

        .. versionadded:: 0.1
        """,
    )

    optional_until = Unicode(
        "",
        config=True,
        help="""Deadline of the ``optional`` enrollment policy, as an ISO 8601 date or date and time
        (``2027-03-01`` or ``2027-03-01T09:00:00+13:00``; a date without a time zone means UTC).
        Before it, users without a device log in with their password alone and see a reminder with the
        deadline; from it on they must link a device. Empty (default): no deadline.

        .. versionadded:: 0.1
        """,
    )

    trusted_networks = List(
        Unicode(),
        config=True,
        help="""Client networks (CIDR, e.g. ``["10.0.0.0/8", "2001:db8::/32"]``) whose logins need only the
        password, like a site's own network or VPN counting as the second factor. Default: none.
        Sessions made this way stay valid only for requests from these networks.

        The client address is the connection's peer, or, for connections from ``trusted_proxies``, the
        right-most address in ``X-Forwarded-For`` that is not a trusted proxy.

        .. warning:: Every host in these networks skips the second factor. Keep them narrow.

        .. versionadded:: 0.1
        """,
    )

    trusted_proxies = List(
        Unicode(),
        config=True,
        help="""Addresses (CIDR) of reverse proxies whose ``X-Forwarded-For`` / ``X-Real-Ip`` headers are
        believed when deciding whether a client is in ``trusted_networks`` and when auditing its address.
        Default: none, so forwarding headers are ignored and the connection's peer is the client, on a
        single server and on a hub alike: a hub then audits its proxy's address for every login.

        List a proxy only if no untrusted client can reach the proxy itself, or the port behind it, from a
        listed address. On a hub, configurable-http-proxy usually runs on loopback, where user code on the
        same machine (kernels of local spawners, batch jobs) can connect to the proxy and to the hub's port and
        write any ``X-Forwarded-For``; on Kubernetes, user pods may reach the hub from the proxy's pod
        network. Listing 127.0.0.1 or that network there lets such code choose its address, and so pass for a
        trusted network. With no proxy listed, keep loopback out of ``trusted_networks``: every request
        through a proxy on this machine comes from it (the hub warns at start-up).

        .. warning:: Every address listed here can put words in a client's mouth.

        .. versionadded:: 0.1
        .. versionchanged:: 0.1
           The hub no longer takes a loopback peer for its proxy unless it is listed here.
        """,
    )

    factors = List(
        CaselessStrEnum(["totp", "webauthn"]),
        default_value=["totp", "webauthn"],
        config=True,
        help="""The second factors users may link and log in with: ``totp`` (a code from an authenticator app)
        and ``webauthn`` (passkeys, security keys and platform authenticators such as Touch ID or Windows
        Hello). Default: both.

        Without ``totp``, every login needs a key (as ``webauthn_required_for = "everyone"``) and the pages
        stop offering the app. Without ``webauthn``, the key endpoints answer 404 and the pages show no key
        button; keys already registered stay in the store, unused.

        .. versionadded:: 0.1
        """,
    )

    webauthn_required_for = CaselessStrEnum(
        ["nobody", "admins", "everyone"],
        default_value="nobody",
        config=True,
        help="""Who must log in with a phishing-resistant factor (a passkey or security key), not a code:
        ``nobody`` (default), ``admins`` (JupyterHub's admin users; on a single server its one user, who
        administers it) or ``everyone``. For them a code, a recovery code or a trusted network is refused
        after the password, with a message saying a key is needed; a user without a key registers one first
        (password and app code, on the 2FA page). See also ``webauthn_required_groups`` on the hub.

        A code can be phished in real time by a fake login page; a key's signature names the page's origin.
        NIST SP 800-63B-4 asks verifiers at AAL2 to offer such a factor, and AAL3 to require it.

        .. versionadded:: 0.1
        """,
    )

    webauthn_required_groups = List(
        Unicode(),
        config=True,
        help="""JupyterHub groups whose members must log in with a passkey or security key, as
        ``webauthn_required_for`` says for admins. Hub only. Default: none.

        .. versionadded:: 0.1
        """,
    )

    webauthn_rp_id = Unicode(
        "",
        config=True,
        help="""The WebAuthn relying-party id: the host name keys are registered to, e.g. ``hub.example.org``
        (or its parent domain, ``example.org``, to let keys work on every host below it). Default: the host
        name of the request, which is right for a single server on ``localhost``; set it on a hub, so a
        request's ``Host`` header never decides it (with ``webauthn_origin`` too when the login page is not
        at the id's own host).

        It must be a host name: browsers refuse WebAuthn on an IP address, so open a server on 127.0.0.1
        as ``http://localhost:8888`` to use a key. Keys registered under one id do not work under another:
        changing it means every user registers their keys again.

        .. versionadded:: 0.1
        """,
    )

    webauthn_rp_name = Unicode(
        "",
        config=True,
        help="""The name browsers show when a key is registered or used. Default: ``issuer``.

        .. versionadded:: 0.1
        """,
    )

    webauthn_origin = Unicode(
        "",
        config=True,
        help="""The origin (``https://host[:port]``) users' browsers open the login page at, which signed
        key responses must name. Default: the request's own scheme and host, accepted only when that host is
        ``webauthn_rp_id`` itself (a page on a host below it, such as a user's server under JupyterHub's
        ``subdomain_host``, could otherwise relay signatures); right unless a proxy changes either. Browsers
        allow WebAuthn only on ``https`` origins and on ``http://localhost``.

        .. versionadded:: 0.1
        """,
    )

    help_text = Unicode(
        "Contact your administrator, telling them your username, to have your account unlocked "
        "or your authenticator device reset.",
        config=True,
        help="""What to tell users who are locked out or have lost their device: who to contact and what
        to include (like a site's "contact us with your username, project code and project owner").
        Shown on the login page and in API errors for locked accounts. Plain text.

        .. versionadded:: 0.1
        """,
    )

    @validate("trusted_networks", "trusted_proxies")
    def _validate_networks(self, proposal: dict[str, Any]) -> list[str]:
        try:
            parse_networks(proposal["value"])
        except ValueError as err:
            raise TraitError(f"TwoFactorConfig.{proposal['trait'].name}: {err}") from None
        return list(proposal["value"])

    @validate("webauthn_rp_id", "webauthn_origin")
    def _validate_relying_party(self, proposal: dict[str, Any]) -> str:
        """An IP address, an upper-case id or an origin with a path fails here, at start-up, not at every login."""
        value = str(proposal["value"]).strip()
        if value:
            rp_id = value if proposal["trait"].name == "webauthn_rp_id" else (urlsplit(value).hostname or "")
            origin = value if proposal["trait"].name == "webauthn_origin" else f"https://{value}"
            try:
                RelyingParty(rp_id, "check", origin)
            except BadRelyingParty as err:
                raise TraitError(f"TwoFactorConfig.{proposal['trait'].name}: {err}") from None
        return value

    @validate("factors")
    def _validate_factors(self, proposal: dict[str, Any]) -> list[str]:
        factors = sorted({str(factor).lower() for factor in proposal["value"]})
        if not factors:
            raise TraitError("TwoFactorConfig.factors must allow at least one of totp, webauthn")
        return factors

    @validate("optional_until")
    def _validate_optional_until(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if value:
            try:
                parse_deadline(value)
            except ValueError:
                raise TraitError(
                    f"TwoFactorConfig.optional_until must be an ISO 8601 date or date and time, not {value!r}"
                ) from None
        return value

    @property
    def webauthn_allowed(self) -> bool:
        return "webauthn" in self.factors

    def relying_party(self, scheme: str, host: str) -> RelyingParty:
        """The WebAuthn relying party of a page served at ``scheme://host`` (``host`` may carry a port):
        the configured id, name and origin, or the request's. :class:`BadRelyingParty` when it cannot work
        (an IP address; a host below the configured id without a configured origin), with a message for the
        user."""
        origin = self.webauthn_origin or f"{scheme}://{host}"
        rp_id = self.webauthn_rp_id or (urlsplit(origin).hostname or "")
        if not self.webauthn_origin and urlsplit(origin).hostname != rp_id:
            # Taken from the request's Host, an origin below the id (a user's own subdomain on a hub with
            # subdomain_host) would let a page there relay signatures: such origins must be configured.
            raise BadRelyingParty(
                f"this page's host is not the WebAuthn relying-party id {rp_id!r}: open it at that host name, "
                "or have the administrator set TwoFactorConfig.webauthn_origin"
            )
        return RelyingParty(rp_id, self.webauthn_rp_name or self.issuer, origin)

    def password_alone_allowed(self, now: float) -> bool:
        """Whether the ``optional`` policy currently lets a user without a device in with the password."""
        if self.enrollment_policy != "optional":
            return False
        return not self.optional_until or now < parse_deadline(self.optional_until)

    @validate("issuer")
    def _validate_issuer(self, proposal: dict[str, Any]) -> str:
        issuer = str(proposal["value"]).strip()
        if ":" in issuer or not issuer:
            raise TraitError("TwoFactorConfig.issuer must be non-empty and must not contain ':'")
        return issuer

    @validate(
        "digits",
        "period",
        "window",
        "lockout_threshold",
        "source_lockout_threshold",
        "recovery_code_count",
        "worker_threads",
    )
    def _validate_ranges(self, proposal: dict[str, Any]) -> int:
        limits = {
            "digits": (6, 8),
            "period": (10, 300),
            "window": (0, 10),
            "lockout_threshold": (1, MAX_LOCKOUT_THRESHOLD),
            "source_lockout_threshold": (1, MAX_LOCKOUT_THRESHOLD),
            "recovery_code_count": (0, 100),
            "worker_threads": (1, 64),
        }
        name = proposal["trait"].name
        low, high = limits[name]
        value = int(proposal["value"])
        if not low <= value <= high:
            raise TraitError(f"TwoFactorConfig.{name} must be between {low} and {high}, not {value}")
        return value

    @validate("enrollment_lifetime")
    def _validate_enrollment_lifetime(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 30 <= value <= 86400:
            raise TraitError("TwoFactorConfig.enrollment_lifetime must be between 30 and 86400 seconds")
        return value

    def sees_client_addresses(self) -> bool:
        """Whether a request's address is its client's, so that wrong passwords can be counted per source.

        A single server is reached directly (or through an SSH tunnel, where every source is the one user's).
        """
        return True

    def core_settings(self) -> Settings:
        return Settings(
            issuer=self.issuer,
            totp=TOTPParameters(digits=self.digits, period=self.period, algorithm=self.algorithm),
            window=self.window,
            throttle=ThrottlePolicy(
                lockout_threshold=self.lockout_threshold,
                free_attempts=self.backoff_free_attempts,
                base_delay=self.backoff_base_seconds,
                max_delay=self.backoff_max_seconds,
            ),
            guessing=GuessPolicy(
                free_attempts=self.password_backoff_free_attempts,
                base_delay=self.backoff_base_seconds,
                max_delay=self.password_backoff_max_seconds,
                source_lockout_threshold=self.source_lockout_threshold,
                exempt_sources=tuple(parse_networks(self.trusted_networks)),
                count_sources=self.sees_client_addresses(),
            ),
            recovery_code_count=self.recovery_code_count,
            enrollment_lifetime=self.enrollment_lifetime,
        )

    def keyring(self) -> Keyring:
        from .core.keys import Keyring  # cryptography loads when the store opens

        return Keyring.from_env(self.keys_env_var) or Keyring.from_file(Path(self.key_file))

    def audit_sink(self) -> AuditSink:
        sinks: list[AuditSink] = [logging_sink(self.log)]
        if self.audit_log_file:
            sinks.append(JsonlAuditLog(Path(self.audit_log_file)))
        return fan_out(*sinks)

    @property
    def one_shot_images(self) -> OneShotImages:
        """This process's one-time QR pictures (the notebook panel's way to show a QR code; see core.oneshot)."""
        images = self.__dict__.get("_one_shot_images")
        if images is None:
            images = self.__dict__["_one_shot_images"] = OneShotImages()
        return images

    def open_enrollment(self, audit: AuditSink | None = None) -> Enrollment:
        """Open the store and return the enrollment machine (``.verifier``, ``.store`` hang off it)."""
        from .core import Enrollment, Store, Verifier

        store = Store(self.db_url, self.keyring())
        verifier = Verifier(store, self.core_settings(), audit or self.audit_sink())
        return Enrollment(verifier)
