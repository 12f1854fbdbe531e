"""``EnrollmentPanel``: link, re-link and manage an authenticator app from a notebook (ipywidgets, no custom JS).

What the panel guarantees about secrets, and how:

- The TOTP secret never enters the kernel or the widget state. The panel asks the API for ``"reveal": "link"``
  and shows ``<img src=qr_url>``: a picture of the QR code and key that the user's browser session may fetch
  once, within 60 seconds. A saved notebook (widget state included) can hold at most that dead link, and the
  panel clears even that when the step ends (confirmed, cancelled, expired) or the panel closes.
- The password and codes typed into the panel never stay in the widget state: each field hands its value to the
  kernel as it arrives (when the field loses focus) and is emptied at once (``fields.SecretText``). Saved at any
  moment after that reply, a notebook holds none of them; docs/security.md ("The notebook panel's password")
  gives the window before it. The kernel keeps them until the next button press, and the password also between
  starting a link and confirming or cancelling it.
- Recovery codes are shown once, in the panel only (never returned to the notebook), and cleared when the user
  says they have stored them or closes the panel.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from .client import ClientError, Endpoint, TwoFactorClient
from .fields import SecretPassword, SecretText

INSTRUCTIONS = """
<ol>
<li>Install an authenticator app on your phone: Google Authenticator, Microsoft Authenticator, FreeOTP or any
TOTP app.</li>
<li>In the app, choose <b>Add</b> (<b>+</b>) &rarr; <b>Scan a barcode</b> (QR code) and scan the picture below.
It is shown only once: do not close this panel until you have confirmed. Can&rsquo;t scan? Type in the key printed
under the picture.</li>
<li>Enter the 6-digit code the app now shows, and press <b>Confirm</b>.</li>
</ol>
"""
STORE_CODES_NOW = (
    "<p><b>Store these recovery codes now</b> (a password manager, or printed and kept safe). Each one logs you "
    "in once if you lose your phone. They are shown only this once and every earlier code no longer works.</p>"
)
# What an emptied field shows once the kernel holds what was typed into it ("{}": what was typed).
HELD = "{} received (type it again to change it)"
CANCEL_RELINK = (
    "To cancel a re-link, type a current code from the device you are replacing (or a recovery code) in the "
    "code field, then press Cancel again. Otherwise it expires by itself; the old device keeps working."
)
SIGNED_OUT = (
    "Your new device is linked. For your safety every session of your account was signed out, this one "
    "included. Your unsaved changes stay in this tab: open the login page in a new tab, log in with your "
    "password and a code from the app, then come back and save."
)


def _text_message(text: str, kind: str) -> str:
    colour = {"error": "var(--jp-error-color1, #c62828)", "info": "var(--jp-success-color1, #2e7d32)"}[kind]
    return f'<p style="color: {colour}">{html.escape(text)}</p>'


# A kernel cannot reach the browser's WebAuthn API, so keys are managed where the browser is.
KEYS_ELSEWHERE = "managed on the 2FA page or in the JupyterLab panel"


class EnrollmentPanel(widgets.VBox):
    """Two-factor authentication for the account running this notebook.

    ``EnrollmentPanel()`` finds the API of the server the kernel runs under (a gated single server or a
    JupyterHub); pass ``client`` to talk to another. The widgets are attributes so a notebook or a test can
    drive them (``panel.password.value = …; panel.continue_button.click()``).
    """

    def __init__(self, client: TwoFactorClient | None = None, **kwargs: Any) -> None:
        # ipywidgets has no annotations; mypy's untyped_calls_exclude misses calls through super() (mypy#16653).
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.step = "menu"  # menu | link | relink | regenerate | scan | codes | unavailable
        self._password = ""  # between starting a link and confirming or cancelling it, nothing longer
        self._expiry: asyncio.TimerHandle | None = None
        self.status: dict[str, Any] = {}

        self.heading = widgets.HTML("<h3>Two-factor authentication</h3>")
        self.status_view = widgets.HTML()
        self.message = widgets.HTML()
        self.link_button = self._button("Link a device", self._ask_link, "primary")
        self.relink_button = self._button("Re-link a device", self._ask_relink)
        self.recovery_button = self._button("New recovery codes", self._ask_regenerate)
        self.refresh_button = self._button("Refresh", lambda: self.refresh())
        self.password = SecretPassword(
            description="Password", placeholder="your Jupyter password", held_placeholder=HELD.format("password")
        )
        self.otp = SecretText(
            description="Code",
            placeholder="code from the app, or a recovery code",
            held_placeholder=HELD.format("code"),
        )
        self.continue_button = self._button("Continue", self._continue, "primary")
        self.cancel_button = self._button("Cancel", self._cancel)
        self.instructions = widgets.HTML()
        self.qr = widgets.HTML()
        self.code = SecretText(
            description="Code", placeholder="6-digit code from the app", held_placeholder=HELD.format("code")
        )
        self.confirm_button = self._button("Confirm", self._confirm, "primary")
        self.recovery_codes = widgets.HTML()
        self.stored_button = self._button("I have stored them", self._stored)
        # Boxes made once: a step's widgets keep their views, so the QR picture is never fetched twice.
        self.menu_buttons = widgets.HBox()
        self.form_buttons = widgets.HBox([self.continue_button, self.cancel_button])
        self.scan_buttons = widgets.HBox([self.confirm_button, self.cancel_button])
        self.codes_buttons = widgets.HBox([self.stored_button])

        try:
            self.client = client or TwoFactorClient(Endpoint.discover())
        except ClientError as err:
            self._show("unavailable", str(err))
            return
        self.refresh()

    # -- building blocks -----------------------------------------------------------------------------------

    def _button(self, label: str, action: Callable[[], None], style: str = "") -> widgets.Button:
        button = widgets.Button(description=label, button_style=style, layout=widgets.Layout(width="auto"))
        button.on_click(lambda _: self._run(action))
        return button

    def _run(self, action: Callable[[], None]) -> None:
        """Every press: clear the last message, do the action; a ClientError becomes a message, never a traceback."""
        self.message.value = ""
        try:
            action()
        except ClientError as err:
            self._refused(err)
        except Exception as err:  # the panel's edge: a message in the notebook, never a traceback
            self._show(self.step, error=f"Something unexpected went wrong ({type(err).__name__}). Please try again.")

    def _show(self, step: str, error: str = "", info: str = "") -> None:
        self.step = step
        rows: dict[str, list[widgets.Widget]] = {
            "menu": [self._menu()],
            "link": [self.password, self.form_buttons],
            "relink": [self.password, self.otp, self.form_buttons],
            "regenerate": [self.password, self.otp, self.form_buttons],
            "scan": [self.instructions, self.qr, self.code, self.scan_buttons],
            "codes": [self.recovery_codes, self.codes_buttons],
            "unavailable": [],
        }
        self.children = [self.heading, self.status_view, self.message, *rows[step]]
        if error:
            self.message.value = _text_message(error, "error")
        elif info:
            self.message.value = _text_message(info, "info")

    def _menu(self) -> widgets.HBox:
        """The menu's buttons for the account's state (link, or re-link and new recovery codes)."""
        enrolled = bool(self.status.get("enrolled"))
        linking_allowed = self.status.get("policy") != "cli-only"
        buttons = [self.relink_button, self.recovery_button] if enrolled else [self.link_button]
        if not enrolled and self.status.get("webauthn_keys"):  # keys only: the app is added on the 2FA page
            buttons = []
        for button in (self.link_button, self.relink_button):
            button.disabled = not linking_allowed
        self.menu_buttons.children = [*buttons, self.refresh_button]
        return self.menu_buttons

    # -- status --------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the account's state (no password needed) and show the menu."""
        try:
            self.status = self.client.status()
        except ClientError as err:
            self.status = {}
            self.status_view.value = _text_message(f"The 2FA status is unavailable: {err}", "error")
        else:
            self.status_view.value = self._status_html()
        self._show("menu", error=self._status_warning())

    def _status_html(self) -> str:
        status = self.status
        policy = str(status.get("policy", ""))
        if status.get("optional_until"):
            policy += f" (optional until {status['optional_until']})"
        rows = [
            ("Account", status.get("username", "")),
            ("Device linked", "yes" if status.get("enrolled") else "no"),
            ("Passkeys and security keys", f"{status.get('webauthn_keys', 0)} ({KEYS_ELSEWHERE})"),
            ("Recovery codes left", status.get("recovery_codes_left", 0)),
            ("Locked", "yes, ask your administrator" if status.get("locked") else "no"),
            ("Policy", policy),
        ]
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f'<table style="text-align: left">{cells}</table>'

    def _status_warning(self) -> str:
        if self.status.get("locked"):
            return "This account is locked after too many failed attempts. Ask your administrator to unlock it."
        if self.status.get("policy") == "cli-only":
            return "Devices are linked in a terminal on this site: run `jupyter 2fa enroll`."
        return ""

    # -- the steps -----------------------------------------------------------------------------------------

    def _ask_link(self) -> None:
        self._show("link", info="Enter your password to link a device.")

    def _ask_relink(self) -> None:
        self._show("relink", info="Enter your password and a code from your current device (or a recovery code).")

    def _ask_regenerate(self) -> None:
        self._show("regenerate", info="Enter your password and a code from your device to get new recovery codes.")

    def _continue(self) -> None:
        step, password, otp = self.step, self.password.take(), self.otp.take()
        if not password:
            self._show(step, error="Enter your password.")
            return
        if step != "link" and not otp:
            self._show(step, error="Enter a code from your app, or a recovery code.")
            return
        if step == "regenerate":
            codes = self.client.regenerate_recovery_codes(password, otp)
            self._show_codes(codes, "New recovery codes were made; the old ones no longer work.")
            return
        linking = self.client.begin(password) if step == "link" else self.client.relink(password, otp)
        self._password = password
        self.instructions.value = INSTRUCTIONS
        self.qr.value = (
            f'<img src="{html.escape(str(linking["qr_url"]), quote=True)}" width="260" '
            'alt="QR code for your authenticator app (shown once)">'
        )
        self._arm_expiry(linking.get("expires_at"))
        self._show("scan")

    def _confirm(self) -> None:
        code = self.code.take()
        if not code:
            self._show("scan", error="Enter the 6-digit code your app shows.")
            return
        try:
            codes = self.client.confirm(self._password, code)
        except ClientError as err:
            if err.status == 409:  # nothing pending any more: expired, or replaced elsewhere
                self._end_linking()
            raise
        self._end_linking()
        self._show_codes(codes, SIGNED_OUT)

    def _cancel(self) -> None:
        if self.step == "scan":
            # A re-link replaces a working device, so the server cancels it only with that device's current
            # code (or a recovery code), typed into the code field; a first link needs nothing more.
            try:
                self.client.cancel(self._password, self.code.take())
            except ClientError as err:
                if err.status == 403 and self.status.get("enrolled"):
                    self._show("scan", error=CANCEL_RELINK)
                    return
                if err.status != 404:  # 404: it had already ended
                    self._end_linking()
                    raise
            self._end_linking()
            self.refresh()
            self.message.value = _text_message("Cancelled: nothing was linked.", "info")
            return
        self.password.take()
        self.otp.take()
        self.refresh()

    def _show_codes(self, codes: list[str], info: str) -> None:
        items = "".join(f"<li><code>{html.escape(code)}</code></li>" for code in codes)
        self.recovery_codes.value = f'{STORE_CODES_NOW}<ol style="font-size: 1.1em">{items}</ol>'
        self._show("codes", info=info)

    def _stored(self) -> None:
        self.recovery_codes.value = ""
        self.refresh()

    def _refused(self, err: ClientError) -> None:
        message = str(err)
        if err.retry_after:
            message += f" (wait {int(err.retry_after)} s before trying again)"
        if self.step == "unavailable":
            return
        if err.status == 409 and self.step == "scan":
            self._show("menu", error=f"{message} Nothing was linked.")
            return
        self._show(self.step if self.step != "codes" else "menu", error=message)

    # -- the pending secret's lifetime ----------------------------------------------------------------------

    def _arm_expiry(self, expires_at: Any) -> None:
        """Drop the QR code when the pending enrollment expires (only inside a kernel's running event loop)."""
        try:
            loop = asyncio.get_running_loop()  # a kernel handles button presses inside its loop
        except RuntimeError:
            return
        if isinstance(expires_at, (int, float)):
            self._expiry = loop.call_later(max(0.0, float(expires_at) - time.time()), self.expire)

    def expire(self) -> None:
        """The pending enrollment ran out: forget it and say so (also called by its timer)."""
        if self.step != "scan":
            return
        self._end_linking()
        self.refresh()
        self.message.value = _text_message(
            "The pending enrollment expired and nothing was linked. Start again to get a new QR code.", "error"
        )

    def _end_linking(self) -> None:
        """The QR code, the instructions and the password go; the timer stops."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._password = ""
        self.qr.value = ""
        self.instructions.value = ""
        self.code.take()

    def close(self) -> None:
        """Closing the panel forgets everything it was showing, in the kernel and in the browser."""
        self._end_linking()
        self.password.take()
        self.otp.take()
        self.recovery_codes.value = ""
        for child in vars(self).values():
            if isinstance(child, widgets.Widget) and child is not self:
                child.close()
        super().close()  # type: ignore[no-untyped-call]  # as in __init__: ipywidgets is untyped, mypy#16653
