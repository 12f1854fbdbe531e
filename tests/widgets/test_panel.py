"""The panel driven in-process with ``button.click()`` against a real gated `jupyter server`, through every path.

Each test gets its own server (helpers.widgets.running_gate). The test plays the user at the keyboard (setting
fields, clicking) and, where the panel shows the QR picture, the browser that fetches it with its session.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ipywidgets import Widget

from jupyter_2fa.endpoints import API_URL_ENV, STATUS_TOKEN_ENV, STATUS_TOKEN_HEADER
from jupyter_2fa.widgets import ClientError, Endpoint, EnrollmentPanel, TwoFactorClient

from helpers.ports import free_port
from helpers.totp import Device
from helpers.widgets import PASSWORD, GateServer, WebUser, enroll_over_api, enroll_with_codes, manual_key

OPTIONAL = 'c.TwoFactorConfig.enrollment_policy = "optional"\n'


def server_with(*lines: str, id: str) -> Any:
    """A ``gate_server`` parameter: extra config lines, with a readable test id."""
    return pytest.param("".join(lines), id=id)


AS_ROLLOUT = server_with(OPTIONAL, id="optional")
SHORT_LIVED = server_with(OPTIONAL, "c.TwoFactorConfig.enrollment_lifetime = 30\n", id="optional-30s")
LOCKS_AT_3 = server_with(
    OPTIONAL,
    "c.TwoFactorConfig.lockout_threshold = 3\nc.TwoFactorConfig.help_text = 'Call the help desk.'\n",
    id="optional-lock-at-3",
)
CLI_ONLY = server_with('c.TwoFactorConfig.enrollment_policy = "cli-only"\n', id="cli-only")


def message(panel: EnrollmentPanel) -> str:
    return re.sub(r"<[^>]+>", "", str(panel.message.value))


def qr_url(panel: EnrollmentPanel) -> str:
    found = re.search(r'src="([^"]+)"', str(panel.qr.value))
    assert found, panel.qr.value
    return found.group(1)


def start_linking(panel: EnrollmentPanel, button: Any, otp: str = "") -> None:
    button.click()
    panel.password.value = PASSWORD
    panel.otp.value = otp
    panel.continue_button.click()


def scan(panel: EnrollmentPanel, browser: WebUser) -> Device:
    """The browser shows the picture (once); the user adds the account to the app."""
    assert panel.step == "scan", message(panel)
    picture = browser.picture(qr_url(panel))
    assert picture.status_code == 200, picture.text
    return Device(manual_key(picture.text))


# -- linking --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_link_a_first_device(gate_server: GateServer) -> None:
    browser = WebUser(gate_server.url)
    assert browser.login().status_code == 302
    panel = EnrollmentPanel(client=gate_server.panel_client())
    assert panel.step == "menu" and panel.status["enrolled"] is False
    assert panel.link_button in panel.menu_buttons.children

    start_linking(panel, panel.link_button)
    assert panel.password.value == "", "the password never stays in the widget"
    assert "Scan a barcode" in str(panel.instructions.value)
    device = scan(panel, browser)

    panel.code.value = device.next_code()
    panel.confirm_button.click()

    assert panel.step == "codes", message(panel)
    assert "signed out" in message(panel)
    assert len(re.findall(r"<li><code>", str(panel.recovery_codes.value))) == 10
    assert "Store these recovery codes now" in str(panel.recovery_codes.value)
    assert panel.qr.value == "" and panel.instructions.value == "" and panel._password == ""
    panel.stored_button.click()
    assert panel.recovery_codes.value == ""
    assert panel.status["enrolled"] is True and panel.status["recovery_codes_left"] == 10
    assert panel.relink_button in panel.menu_buttons.children
    assert WebUser(gate_server.url).login(device.next_code()).status_code == 302


def all_widget_states(panel: EnrollmentPanel) -> str:
    """Every widget of the panel as its state goes to the browser (what a saved notebook can hold)."""
    children = [child for child in vars(panel).values() if isinstance(child, Widget)]
    return repr([panel.get_state(), *(child.get_state() for child in children)])


def set_in_a_notebook_cell(panel: EnrollmentPanel, browser_line: Callable[[Widget], Any]) -> None:
    panel.password.value = PASSWORD


def typed_in_the_browser(panel: EnrollmentPanel, browser_line: Callable[[Widget], Any]) -> None:
    browser_line(panel.password).leave_field(PASSWORD)


@pytest.mark.parametrize(
    "arrive",
    [pytest.param(set_in_a_notebook_cell, id="set-in-a-notebook-cell"), pytest.param(typed_in_the_browser, id="typed")],
)
@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_the_password_leaves_the_widget_state_yet_reaches_the_api(
    gate_server: GateServer, arrive: Callable[..., None], browser_line: Callable[[Widget], Any]
) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    panel.link_button.click()

    arrive(panel, browser_line)

    assert PASSWORD not in all_widget_states(panel)
    assert panel.password.value == "" and panel.password.placeholder.startswith("password received")
    panel.continue_button.click()
    assert panel.step == "scan", message(panel)  # the API took the password that the kernel held
    assert PASSWORD not in all_widget_states(panel)
    panel.cancel_button.click()
    assert panel.password.placeholder == "your Jupyter password"


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_wrong_password_starts_nothing(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    panel.link_button.click()
    panel.password.value = "not the password"
    panel.continue_button.click()

    assert panel.step == "link"
    assert message(panel).startswith("Invalid credentials"), message(panel)
    assert panel.password.value == "" and panel.qr.value == ""
    panel.refresh()
    assert panel.status["pending"] is False


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_empty_fields_are_asked_for_not_sent(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    panel.link_button.click()
    panel.continue_button.click()
    assert panel.step == "link" and message(panel) == "Enter your password."


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_wrong_code_keeps_the_picture_for_another_try(gate_server: GateServer) -> None:
    browser = WebUser(gate_server.url)
    assert browser.login().status_code == 302
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.link_button)
    device = scan(panel, browser)
    shown = panel.qr.value

    panel.code.value = "000000" if device.next_code() != "000000" else "111111"
    panel.confirm_button.click()
    assert panel.step == "scan" and panel.qr.value == shown
    assert "code" in message(panel).lower() and panel.code.value == ""

    panel.code.value = device.next_code()
    panel.confirm_button.click()
    assert panel.step == "codes", message(panel)


@pytest.mark.slow
@pytest.mark.parametrize("gate_server", [SHORT_LIVED], indirect=True)
def test_an_expired_pending_enrollment_is_forgotten(gate_server: GateServer) -> None:
    browser = WebUser(gate_server.url)
    assert browser.login().status_code == 302
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.link_button)
    device = scan(panel, browser)
    time.sleep(31)  # the shortest lifetime an administrator may set is 30 s

    panel.code.value = device.next_code()
    panel.confirm_button.click()

    assert panel.step == "menu"
    assert "expired" in message(panel) and "Nothing was linked" in message(panel)
    assert panel.qr.value == "" and panel._password == ""
    assert panel.status["enrolled"] is False


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_the_expiry_timer_drops_the_picture(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.link_button)
    assert panel.step == "scan"

    panel.expire()  # what the timer calls inside a kernel's event loop

    assert panel.step == "menu" and panel.qr.value == "" and panel._password == ""
    assert "expired" in message(panel)


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_cancel_ends_the_pending_enrollment(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.link_button)
    assert panel.status.get("pending") is False  # read before it started

    panel.cancel_button.click()

    assert panel.step == "menu" and message(panel) == "Cancelled: nothing was linked."
    assert panel.qr.value == "" and panel.status["pending"] is False


@pytest.mark.parametrize("gate_server", [LOCKS_AT_3], indirect=True)
def test_lockout_says_so_whatever_is_typed(gate_server: GateServer) -> None:
    """Wrong passwords never lock (a stranger could lock anyone out); wrong codes from the new device do."""
    panel = EnrollmentPanel(client=gate_server.panel_client("wrong password"))
    assert "unavailable" in str(panel.status_view.value), "a wrong password reads no status"
    for _ in range(3):
        panel.link_button.click()
        panel.password.value = "still wrong"
        panel.continue_button.click()
        assert "Call the help desk." not in message(panel), message(panel)

    panel = EnrollmentPanel(client=gate_server.panel_client())
    panel.link_button.click()
    panel.password.value = PASSWORD
    panel.continue_button.click()
    assert panel.step == "scan", message(panel)
    for _ in range(3):
        panel.code.value = "000000"
        panel.confirm_button.click()
    panel.code.value = "111111"  # right or wrong, the account is locked now
    panel.confirm_button.click()
    assert "Call the help desk." in message(panel), message(panel)

    status = EnrollmentPanel(client=gate_server.panel_client())
    assert "Call the help desk." in str(status.status_view.value) + message(status)


# -- re-linking and recovery codes ----------------------------------------------------------------------------


def test_relink_replaces_the_device(gate_server: GateServer) -> None:
    old_device = enroll_over_api(gate_server.api_url)
    browser = WebUser(gate_server.url)
    assert browser.login(old_device.next_code()).status_code == 302
    panel = EnrollmentPanel(client=gate_server.panel_client())
    assert panel.step == "menu" and panel.status["enrolled"] is True

    start_linking(panel, panel.relink_button, otp=old_device.next_code())
    assert panel.otp.value == ""
    new_device = scan(panel, browser)
    panel.code.value = new_device.next_code()
    panel.confirm_button.click()

    assert panel.step == "codes", message(panel)
    assert not browser.logged_in(), "re-linking ends the sessions granted before it"
    assert WebUser(gate_server.url).login(old_device.next_code()).status_code != 302
    assert WebUser(gate_server.url).login(new_device.next_code()).status_code == 302


def test_a_relink_is_cancelled_only_with_the_old_devices_code(gate_server: GateServer) -> None:
    """The password the panel holds is not enough to drop a re-link: the replaced device's code is."""
    old_device, recovery_codes = enroll_with_codes(gate_server.api_url)
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.relink_button, otp=old_device.next_code())
    assert panel.step == "scan", message(panel)

    panel.cancel_button.click()
    assert panel.step == "scan" and "type a current code" in message(panel), message(panel)
    panel.code.value = recovery_codes[0]
    panel.cancel_button.click()
    assert panel.step == "menu" and "Cancelled" in message(panel), message(panel)
    assert panel.status["pending"] is False and panel.status["enrolled"] is True


def test_relink_needs_the_current_code(gate_server: GateServer) -> None:
    enroll_over_api(gate_server.api_url)
    panel = EnrollmentPanel(client=gate_server.panel_client())
    panel.relink_button.click()
    panel.password.value = PASSWORD
    panel.continue_button.click()
    assert panel.step == "relink" and "code" in message(panel)

    panel.password.value = PASSWORD
    panel.otp.value = "123456x"
    panel.continue_button.click()
    assert panel.step == "relink" and panel.qr.value == ""
    assert message(panel), "the server's refusal is shown"


def test_new_recovery_codes(gate_server: GateServer) -> None:
    device = enroll_over_api(gate_server.api_url)
    panel = EnrollmentPanel(client=gate_server.panel_client())

    start_linking(panel, panel.recovery_button, otp=device.next_code())

    assert panel.step == "codes", message(panel)
    assert "old ones no longer work" in message(panel)
    codes = re.findall(r"<li><code>([^<]+)</code>", str(panel.recovery_codes.value))
    assert len(codes) == 10
    panel.stored_button.click()
    assert panel.recovery_codes.value == "" and panel.status["recovery_codes_left"] == 10
    assert WebUser(gate_server.url).login(otp=codes[0]).status_code == 302


# -- where the panel cannot work ------------------------------------------------------------------------------


@pytest.mark.parametrize("gate_server", [CLI_ONLY], indirect=True)
def test_cli_only_policy_disables_linking(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    assert panel.link_button.disabled
    assert "jupyter 2fa enroll" in message(panel)


def test_an_unreachable_server_gives_a_message_not_a_traceback() -> None:
    endpoint = Endpoint(f"http://127.0.0.1:{free_port()}/2fa/api/", "", on_hub=False)
    panel = EnrollmentPanel(client=TwoFactorClient(endpoint, timeout=5))
    assert "Cannot reach the 2FA service" in str(panel.status_view.value)

    start_linking(panel, panel.link_button)
    assert panel.step == "link" and "Cannot reach the 2FA service" in message(panel)


def test_outside_a_gated_server_the_panel_says_where_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (API_URL_ENV, "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    panel = EnrollmentPanel()
    assert panel.step == "unavailable"
    assert "jupyter 2fa enroll" in message(panel)


@pytest.mark.parametrize("gate_server", [AS_ROLLOUT], indirect=True)
def test_close_forgets_everything(gate_server: GateServer) -> None:
    panel = EnrollmentPanel(client=gate_server.panel_client())
    start_linking(panel, panel.link_button)
    assert panel.qr.value

    panel.close()

    assert panel.qr.value == "" and panel._password == "" and panel.recovery_codes.value == ""
    assert panel.comm is None and panel.qr.comm is None


@pytest.mark.parametrize(
    ("env", "api_url", "on_hub", "status_header"),
    [
        pytest.param(
            {API_URL_ENV: "http://127.0.0.1:8888/base/2fa/api/", STATUS_TOKEN_ENV: "t0k", "USER": "ada"},
            "http://127.0.0.1:8888/base/2fa/api/",
            False,
            (STATUS_TOKEN_HEADER, "t0k"),
            id="gated-server",
        ),
        pytest.param(
            {
                "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
                "JUPYTERHUB_API_TOKEN": "k",
                "JUPYTERHUB_USER": "ada",
            },
            "http://127.0.0.1:8081/hub/2fa/api/",
            True,
            ("Authorization", "token k"),
            id="hub-single-user",
        ),
        pytest.param(
            {"JUPYTERHUB_API_URL": "http://hub:8081/prefix/hub/api/", "JUPYTERHUB_USER": "ada"},
            "http://hub:8081/prefix/hub/2fa/api/",
            True,
            None,
            id="hub-with-prefix-no-token",
        ),
    ],
)
def test_endpoint_discovery(env: dict[str, str], api_url: str, on_hub: bool, status_header: Any) -> None:
    endpoint = Endpoint.discover(env)
    assert (endpoint.api_url, endpoint.on_hub, endpoint.username) == (api_url, on_hub, "ada")
    assert dict(endpoint.status_headers) == (dict([status_header]) if status_header else {})


def test_no_endpoint_outside_a_server() -> None:
    with pytest.raises(ClientError, match="jupyter 2fa enroll"):
        Endpoint.discover({"USER": "ada"})


@pytest.fixture
def odd_server() -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP server answering every call with the next body of its list (a broken or foreign API)."""
    answers: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = answers.pop(0) if answers else b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/2fa/api/", answers
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        pytest.param(b"{}", "Something unexpected went wrong (KeyError)", id="json-without-qr_url"),
        pytest.param(b"<html>proxy error</html>", "cannot read", id="not-json"),
    ],
)
def test_a_strange_answer_gives_a_message_not_a_traceback(
    odd_server: tuple[str, list[bytes]], answer: bytes, shown: str
) -> None:
    url, answers = odd_server
    panel = EnrollmentPanel(client=TwoFactorClient(Endpoint(url, "", on_hub=False)))
    answers.append(answer)
    start_linking(panel, panel.link_button)
    assert panel.step == "link" and shown in message(panel), message(panel)
