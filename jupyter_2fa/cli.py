"""`jupyter 2fa`: link a device from a terminal, and the admin's tools (status, list, reset, unlock, rotate-key)."""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from jupyter_core.application import JupyterApp, base_aliases, base_flags
from traitlets import Bool, TraitError, default
from traitlets.config import Application

from ._version import __version__
from .config import TwoFactorConfig
from .core import CodeRejected, Enrollment, Keyring, Outcome, StoreError, TwoFactorError
from .core.audit import Action
from .core.keys import new_key, write_key_file
from .core.store import Account, WebAuthnCredential
from .core.webauthn import b64url

USAGE_ERROR = 2  # like argparse: the command line itself was wrong
REFUSED = 1  # the command was understood but could not be done
CODE_TRIES = 3
KEY_ID_SHOWN = 8  # base64url characters of a credential id that `status` shows: 48 bits, never the whole id
KEY_NAME_SHOWN = 64  # characters of a key's name that `status` shows

aliases = {**base_aliases, "db-url": "TwoFactorConfig.db_url"}
flags = dict(base_flags)


def _exit(app: Application, status: int) -> NoReturn:
    """``app.exit(status)``: traitlets types ``Application.exit`` as returning, though it always raises SystemExit."""
    app.exit(status)
    raise SystemExit(status)  # not reached: Application.exit ends in sys.exit


class TwoFactorCommand(JupyterApp):
    """Common ground of the subcommands: the shared configuration, the store, and clear exits."""

    version = __version__
    classes = [TwoFactorConfig]
    aliases = aliases
    flags = flags
    # Read the same config files as the server gate, so `c.TwoFactorConfig.db_url` there applies here too.
    config_file_name = "jupyter_server_config"
    max_args = 1  # how many positional arguments (user names) the subcommand takes
    needs_user = False  # True when USER is required rather than defaulting to the OS user

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.WARNING  # audit lines of failures only; the command's own output says the rest

    def fail(self, message: str, code: int = REFUSED) -> NoReturn:
        print(f"jupyter 2fa {self.name}: {message}", file=sys.stderr)
        _exit(self, code)

    def username(self) -> str:
        """USER from the command line, or the OS user running this (the name a single-user server gates)."""
        if len(self.extra_args) > self.max_args:
            self.fail(f"too many arguments: {' '.join(self.extra_args)}", USAGE_ERROR)
        if self.extra_args:
            name = self.extra_args[0].strip()
            if not name or len(name) > 255 or not name.isprintable():
                self.fail("USER must be a non-empty printable name of at most 255 characters", USAGE_ERROR)
            return name
        if self.needs_user:
            self.fail("USER is required", USAGE_ERROR)
        return getpass.getuser()

    def two_factor(self) -> TwoFactorConfig:
        """The shared settings; with a hub's config file, exactly what the hub's TOTPAuthenticator uses."""
        try:
            if "JupyterHub" in self.config or "TOTPAuthenticator" in self.config:
                return self.hub_settings()
            return TwoFactorConfig(parent=self)
        except TraitError as err:
            self.fail(str(err), USAGE_ERROR)

    def hub_settings(self) -> TwoFactorConfig:
        try:
            from .hub import TOTPAuthenticator
        except ImportError:
            self.fail("this is a JupyterHub configuration; install jupyter-2fa[hub] to use it")
        if self.config_file:
            # The hub keeps its store beside where it runs, normally the config file's folder.
            os.chdir(Path(self.config_file).resolve().parent)
        return TOTPAuthenticator(config=self.config, log=self.log)

    # ignore[override]: traitlets declares load_config_file(filename, path); jupyter_core's JupyterApp replaced it
    # with this signature (under the same ignore), and mypy checks this override against traitlets' too.
    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        # jupyter_core silently ignores a missing --config file; here that would mean the wrong store.
        if self.config_file and not Path(self.config_file).is_file():
            self.fail(f"config file {self.config_file} not found", USAGE_ERROR)
        super().load_config_file(suppress_errors)

    def enrollment(self) -> Enrollment:
        try:
            return self.two_factor().open_enrollment()
        except StoreError as err:
            self.fail(str(err))

    def start(self) -> None:
        try:
            self.run()
        except StoreError as err:
            self.fail(str(err))

    def run(self) -> None:
        raise NotImplementedError


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _shown(text: str, limit: int = 0) -> str:
    r"""``text`` from outside (a user name, a key's transports), safe to print on an admin's terminal.

    Control and format characters (ESC and C1 sequences, bidi overrides, line breaks) are written as escapes,
    so the text cannot move the cursor, recolour the screen or forge a line such as ``locked: no``. With
    ``limit``, longer text is cut and ends in ``...``.

    >>> print(_shown("Yubi\x1b[2JKey\u202e\n"))
    Yubi\x1b[2JKey\u202e\n
    >>> _shown("a" * 10, limit=6)
    'aaa...'
    """
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _quoted(text: str, limit: int) -> str:
    r"""A name chosen in a browser, in quotes and escaped as Python writes a string (so always one safe line).

    >>> print(_quoted('My "key"\x1b]0;owned\x07', 64))
    'My "key"\x1b]0;owned\x07'
    """
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _key_id(credential: WebAuthnCredential) -> str:
    """The first characters of the key's credential id (base64url), enough to tell an account's keys apart.

    Never the whole id: it names the key to every site that asks, so it stays out of screens and logs.
    """
    encoded = b64url(credential.credential_id)
    return encoded[:KEY_ID_SHOWN] + "..."


def _key_line(credential: WebAuthnCredential) -> str:
    """One `status` line per key; the label is fixed text, so no key name can pass for another field."""
    label = f"  key {_key_id(credential)}:"
    transports = ", ".join(_shown(t, limit=20) for t in credential.transports) or "not reported"
    last_used = "never" if credential.last_used_at is None else _when(credential.last_used_at)
    return (
        f"{label:<20} {_quoted(credential.name, KEY_NAME_SHOWN)}, added {_when(credential.created_at)}, "
        f"last used {last_used}, transports {transports}"
    )


def _second_factor(account: Account | None, credentials: list[WebAuthnCredential]) -> str:
    """The `second factor` line: the app or a key counts (``Account.has_second_factor``), since the oldest."""
    if account is None or not account.has_second_factor:
        return "not linked"
    since = [t for t in (account.activated_at, *(c.created_at for c in credentials)) if t is not None]
    return f"linked since {_when(min(since))}" if since else "linked"


def _read_code(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def _print_recovery_codes(codes: list[str]) -> None:
    print()
    print("Recovery codes (each works once in place of a code from your app):")
    print()
    for code in codes:
        print(f"    {code}")
    print()
    print("Store these now, somewhere safe and away from your phone. They will not be shown again.")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _keys(count: int) -> str:
    return f"{count} passkey or security key" if count == 1 else f"{count} passkeys or security keys"


def _refusal_message(err: CodeRejected) -> str:
    if err.verdict.outcome is Outcome.LOCKED:
        return "the account is locked after too many failed attempts; ask an administrator to unlock it"
    if err.verdict.outcome is Outcome.THROTTLED:
        return f"too many failed attempts; wait {err.verdict.retry_after:.0f} s and try again"
    return "that code was not accepted"


class EnrollApp(TwoFactorCommand):
    name = "enroll"
    description = """Link an authenticator app to USER (default: you).

    Shows the QR code and the manual key once, asks for a code from the app to confirm the link, then prints
    single-use recovery codes once. Refuses when USER already has an active second factor: an authenticator app,
    or a passkey or security key (this command cannot check a key, so it adds no app beside one).
    """
    examples = """
    jupyter 2fa enroll
    jupyter 2fa enroll alice --db-url postgresql+psycopg://hub@db/hub
    """

    invert = Bool(False, config=True, help="Draw the QR code for a terminal with dark text on a light background.")
    flags = {**flags, "invert": ({"EnrollApp": {"invert": True}}, "QR code for light terminals.")}

    def run(self) -> None:
        user = self.username()
        enrollment = self.enrollment()
        account = enrollment.store.get(user)
        if account is not None and account.enrolled:
            self.fail(
                f"{user} already has an active second factor. To link a new device, an administrator "
                f"runs `jupyter 2fa reset {user}` first."
            )
        if account is not None and account.has_second_factor:
            self.fail(
                f"{user} already has an active second factor ({_keys(account.webauthn_keys)}). To link an "
                f"authenticator app here instead, an administrator runs `jupyter 2fa reset {user}` first, which "
                "also removes the keys."
            )
        try:
            enrollment.begin(user, time.time())
            provisioning = enrollment.reveal(user, time.time())
        except TwoFactorError as err:
            self.fail(str(err))
        settings = enrollment.settings
        print(f"Linking an authenticator app to {user} ({settings.issuer}).")
        print("Install Google Authenticator (or any TOTP app), tap Add, then 'Scan a barcode':")
        print()
        print(provisioning.terminal(invert=self.invert))
        print(f"Or type this key by hand (time-based, {settings.totp.digits} digits):")
        print()
        print(f"    {provisioning.manual_key}")
        print()
        print("This QR code and key are shown only this once.")
        self._confirm(enrollment, user)

    def _confirm(self, enrollment: Enrollment, user: str) -> None:
        try:
            for _ in range(CODE_TRIES):
                code = _read_code(f"Enter the {enrollment.settings.totp.digits}-digit code from the app: ")
                if code is None:
                    break
                try:
                    codes = enrollment.confirm(user, code, time.time())
                except CodeRejected as err:
                    print(_refusal_message(err) + ".", file=sys.stderr)
                    if err.verdict.outcome in (Outcome.LOCKED, Outcome.THROTTLED):
                        break
                    continue
                except TwoFactorError as err:
                    self.fail(str(err))
                print(f"Done: {user} now needs a code from the app at every login.")
                _print_recovery_codes(codes)
                return
        except KeyboardInterrupt:
            print(file=sys.stderr)
        enrollment.cancel(user, time.time())
        self.fail("not linked: no matching code was entered. Nothing changed; run the command again.")


class StatusApp(TwoFactorCommand):
    name = "status"
    description = """Show whether USER (default: you) has a second factor: the authenticator app, and each
    passkey or security key (name, when added and last used, how the browser reached it); recovery codes left,
    and lock state.

    A key is shown by the first characters of its credential id, never the whole id nor its public key.
    """
    examples = "jupyter 2fa status\njupyter 2fa status alice"

    def run(self) -> None:
        user = self.username()
        enrollment = self.enrollment()
        store = enrollment.store
        account = store.get(user)
        credentials = store.webauthn_credentials(user) if account is not None and account.webauthn_keys else []
        policy = enrollment.settings.throttle
        print(f"user:                {user}")
        print(f"second factor:       {_second_factor(account, credentials)}")
        app = (
            f"linked since {_when(account.activated_at)}" if account is not None and account.enrolled else "not linked"
        )
        print(f"authenticator app:   {app}")
        print(f"security keys:       {len(credentials)}")
        for credential in credentials:
            print(_key_line(credential))
        if account is not None and account.has_second_factor:
            print(f"recovery codes left: {account.recovery_codes_left}")
        if account is not None and account.pending_secret is not None:
            print(f"pending enrollment:  until {_when(account.pending_expires_at)}")
        failures = account.failures if account else 0
        print(f"failed attempts:     {failures} of {policy.lockout_threshold}")
        print(f"locked:              {'yes' if policy.is_locked(failures) else 'no'}")


class ListApp(TwoFactorCommand):
    name = "list"
    description = """List every account in the store with its 2FA state.

    LINKED: any second factor (the app or a key); KEYS: passkeys and security keys; APP and SINCE: the
    authenticator app and when it was linked; CODES: recovery codes left; FAILS and LOCKED: failed attempts;
    PENDING: an app link begun but not confirmed.
    """
    max_args = 0

    def run(self) -> None:
        self.username_check()
        enrollment = self.enrollment()
        policy = enrollment.settings.throttle
        accounts = enrollment.store.iter_accounts()  # a page at a time: a big site's list is never all in memory
        first = next(accounts, None)
        if first is None:
            print("No accounts in the 2FA store.")
            return
        print(
            f"{'USER':<24} {'LINKED':<6} {'KEYS':>4} {'APP':<3} {'SINCE':<21} {'CODES':>5} {'FAILS':>5} "
            f"{'LOCKED':<6} PENDING"
        )
        for a in itertools.chain([first], accounts):
            print(
                f"{_shown(a.username):<24} {_yes(a.has_second_factor):<6} {a.webauthn_keys:>4} {_yes(a.enrolled):<3} "
                f"{_when(a.activated_at):<21} {a.recovery_codes_left:>5} {a.failures:>5} "
                f"{_yes(policy.is_locked(a.failures)):<6} {_yes(a.pending_secret is not None)}"
            )

    def username_check(self) -> None:
        if self.extra_args:
            self.fail(f"takes no arguments, got: {' '.join(self.extra_args)}", USAGE_ERROR)


class _AdminCommand(TwoFactorCommand):
    needs_user = True
    action: ClassVar[Callable[[Enrollment, str, float], bool]]  # an Enrollment method: reset or unlock
    done = ""
    nothing = ""

    def run(self) -> None:
        user = self.username()
        enrollment = self.enrollment()
        if enrollment.store.get(user) is None or not type(self).action(enrollment, user, time.time()):
            self.fail(self.nothing.format(user=user))
        print(self.done.format(user=user))


class ResetApp(_AdminCommand):
    name = "reset"
    description = """Admin: delete USER's second factor (the authenticator app and every passkey and security
    key) and their recovery codes, and sign out their sessions, so they can link a new device (for a lost or
    replaced phone or key)."""
    examples = "jupyter 2fa reset alice"
    action = Enrollment.reset
    done = (
        "Reset {user}: their authenticator app, every passkey and security key and their recovery codes are "
        "removed, and their sessions signed out; they can now link a new device."
    )
    nothing = "{user} is not in the 2FA store; nothing to reset"


class UnlockApp(_AdminCommand):
    name = "unlock"
    description = "Admin: clear USER's failed attempts, lifting a lock or back-off."
    examples = "jupyter 2fa unlock alice"
    action = Enrollment.unlock
    done = "Unlocked {user}."
    nothing = "{user} is not in the 2FA store; nothing to unlock"


class RecoveryCodesApp(TwoFactorCommand):
    name = "recovery-codes"
    description = """Replace USER's (default: your) recovery codes with new ones, after a current code from the
    app (or an unused recovery code: the only way for an account with passkeys or security keys alone, as a
    terminal cannot use a key). The old codes stop working."""
    examples = "jupyter 2fa recovery-codes"

    def run(self) -> None:
        user = self.username()
        enrollment = self.enrollment()
        account = enrollment.store.get(user)
        if account is None or not account.has_second_factor:
            self.fail(f"{user} has no linked device; run `jupyter 2fa enroll` first")
        if account.enrolled:
            prompt = f"Enter the current {enrollment.settings.totp.digits}-digit code from your app: "
        else:
            prompt = "Enter an unused recovery code (a security key cannot be used here): "
        code = _read_code(prompt)
        if code is None:
            self.fail("no code entered; nothing changed")
        try:
            codes = enrollment.regenerate_recovery_codes(user, code, time.time())
        except CodeRejected as err:
            self.fail(_refusal_message(err) + "; the old recovery codes still work")
        _print_recovery_codes(codes)


class RotateKeyApp(TwoFactorCommand):
    name = "rotate-key"
    description = """Re-encrypt every stored secret under a new key.

    With the key file (the default), a new key is generated, everything is re-encrypted, and the old key is
    removed from the file. With keys in an environment variable (JUPYTER_2FA_KEYS, or a hub's
    JUPYTERHUB_CRYPT_KEY), put the new key first (JUPYTER_2FA_KEYS="new;old"), run this, then drop the old
    key from the variable.
    """
    examples = "jupyter 2fa rotate-key"
    max_args = 0

    def run(self) -> None:
        if self.extra_args:
            self.fail(f"takes no arguments, got: {' '.join(self.extra_args)}", USAGE_ERROR)
        tf = self.two_factor()
        enrollment = self.enrollment()
        store = enrollment.store
        path = Path(tf.key_file)
        if store.keyring.source != str(path):
            # The keys come from a variable (JUPYTER_2FA_KEYS, or the hub's JUPYTERHUB_CRYPT_KEY): the new key
            # is already listed first there, and a key file would be one the host never reads.
            rewritten = store.rotate_keys(store.keyring)
            print(f"Re-encrypted {rewritten} account(s) under the first key in {store.keyring.source}.")
            print(f"You may now remove the older keys from {store.keyring.source}.")
        else:
            keyring = Keyring([new_key(), *store.keyring.keys], str(path))
            write_key_file(path, keyring.keys)  # old keys stay readable until every secret is rewritten
            rewritten = store.rotate_keys(keyring)
            write_key_file(path, keyring.keys[:1])
            print(f"Re-encrypted {rewritten} account(s) under a new key in {path}; the old key is gone.")
        enrollment.verifier.record(Action.KEY_ROTATED, getpass.getuser(), "success", "rotated")


GATE_CLASS = "jupyter_2fa.server.TOTPIdentityProvider"
SERVER_CONFIG = "jupyter_server_config"


class _GateSwitch(JupyterApp):
    """Write or remove ``c.ServerApp.identity_provider_class`` in the user's jupyter_server_config.json."""

    version = __version__
    enable = True

    def start(self) -> None:
        from jupyter_server.config_manager import BaseJSONConfigManager

        if self.extra_args:
            print(f"jupyter 2fa {self.name}: takes no arguments", file=sys.stderr)
            self.exit(USAGE_ERROR)
        manager = BaseJSONConfigManager(config_dir=self.config_dir)
        path = Path(manager.file_name(SERVER_CONFIG))
        manager.update(SERVER_CONFIG, {"ServerApp": {"identity_provider_class": GATE_CLASS if self.enable else None}})
        if not self.enable:
            print(f"Removed ServerApp.identity_provider_class from {path}: the 2FA gate is off.")
            return
        print(f"Wrote ServerApp.identity_provider_class = {GATE_CLASS!r} to {path}.")
        print("Your Jupyter server now asks for your password and a code from your authenticator app.")
        settings = manager.get(SERVER_CONFIG)
        has_password = any("hashed_password" in section for section in settings.values() if isinstance(section, dict))
        if not has_password:
            print("Set your password (the first factor) if you have not:  jupyter server password")
        print("Then start the server and open it: the first visit leads you to link your device.")


class EnableApp(_GateSwitch):
    name = "enable"
    description = """Turn the 2FA gate on for your Jupyter server (JupyterLab, Notebook 7): writes
    c.ServerApp.identity_provider_class into jupyter_server_config.json in your Jupyter config directory."""
    examples = "jupyter 2fa enable"


class DisableApp(_GateSwitch):
    name = "disable"
    description = "Turn the 2FA gate off again (removes what `jupyter 2fa enable` wrote)."
    examples = "jupyter 2fa disable"
    enable = False


class TwoFactorApp(JupyterApp):
    name = "jupyter-2fa"
    version = __version__
    description = """Two-factor authentication (password + TOTP, passkeys or security keys) for Jupyter.

    Link a device, check status, and (admins) reset or unlock accounts in the 2FA store.
    """
    examples = """
    jupyter 2fa enroll                 # link your phone (shows a QR code once)
    jupyter 2fa status
    jupyter 2fa list                   # admin: every account
    jupyter 2fa reset alice            # admin: lost phone or key; alice links a new one
    jupyter 2fa unlock alice
    jupyter 2fa recovery-codes         # new recovery codes
    jupyter 2fa rotate-key             # re-encrypt secrets under a new key
    jupyter 2fa enable                 # turn the gate on for your Jupyter server
    """
    classes = [TwoFactorConfig]
    aliases = aliases
    flags = flags
    subcommands: dict[str, tuple[type[Application], str]] = {
        app.name: (app, " ".join((app.description or "").strip().split("\n\n")[0].split()))  # its first paragraph
        for app in (
            EnrollApp,
            StatusApp,
            ListApp,
            ResetApp,
            UnlockApp,
            RecoveryCodesApp,
            RotateKeyApp,
            EnableApp,
            DisableApp,
        )
    }

    def start(self) -> None:
        # traitlets dispatches only when the subcommand comes first; `jupyter 2fa --db-url URL status` too.
        if self.subapp is None and self.extra_args and self.extra_args[0] in self.subcommands:
            self.initialize_subcommand(self.extra_args[0], self.extra_args[1:])
        if self.subapp is None and self.extra_args:
            print(f"Unknown subcommand {self.extra_args[0]!r}.", file=sys.stderr)
        if self.subapp is None:
            print("No subcommand given. Subcommands: " + ", ".join(sorted(self.subcommands)), file=sys.stderr)
            print("Run `jupyter 2fa --help-all` or `jupyter 2fa SUBCOMMAND --help` for help.", file=sys.stderr)
            _exit(self, USAGE_ERROR)
        self.subapp.start()


def main(argv: list[str] | None = None) -> Any:
    return TwoFactorApp.launch_instance(argv)


if __name__ == "__main__":
    main()
