"""End to end on a real JupyterHub: the panel in a kernel of the user's single-user server links a device
through the hub's 2FA API, with nothing but the user's password (the kernel's API token only reads status).

The hub runs the ``optional`` rollout policy, so the not-yet-enrolled user can log in with the password and
start a server. After the link the user's hub sessions end, and the hub lets them in only with a code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.hub import Hub, module_hub
from helpers.totp import Device
from helpers.widgets import PASSWORD, WebUser, manual_key, running_notebook

pytestmark = pytest.mark.slow

USER = "ada"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.enrollment_policy = "optional"
"""


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the single-user servers write kernel connection files (nbclient attaches through them)."""
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG, env={"JUPYTER_RUNTIME_DIR": str(runtime_dir)}) as hub:
        yield hub


def assert_no_secret(saved: str, secret: str) -> None:
    assert secret not in saved and "otpauth" not in saved


def test_link_a_device_from_a_hub_notebook(hub: Hub, runtime_dir: Path) -> None:
    browser = hub.new_browser()
    assert browser.login(USER, PASSWORD).status_code == 302  # the password alone, under the optional policy
    hub.start_server(USER)
    assert browser.open_server(USER, "lab").status_code == 200  # the server's own OAuth login (a page)
    user = WebUser(f"{hub.url}/user/{USER}", session=browser.session)
    home = hub.directory / "home" / USER

    with running_notebook(user, runtime_dir, home, "panel.ipynb") as notebook:
        notebook.run("from jupyter_2fa.widgets import EnrollmentPanel\npanel = EnrollmentPanel()")
        assert notebook.value("panel.client.endpoint.on_hub") is True
        assert notebook.value("panel.status['username']") == USER, "the kernel's token reads the status"
        assert notebook.value("panel.status['policy']") == "optional"

        notebook.run("panel.link_button.click()\npanel.continue_button.click()")  # no password: asked for
        assert notebook.value("panel.step") == "link"
        notebook.run(f"panel.password.value = {PASSWORD!r}\npanel.continue_button.click()")
        assert notebook.value("panel.step") == "scan", notebook.value("panel.message.value")
        qr_url = notebook.value("panel.qr.value.split('\"')[1]")
        assert qr_url.startswith("/hub/2fa/qr/")

        picture = user.picture(qr_url)  # the browser, with its hub login, rendering <img src=qr_url>
        assert picture.status_code == 200, picture.text
        secret = manual_key(picture.text)
        assert_no_secret(notebook.save(), secret)

        device = Device(secret)
        notebook.run(f"panel.code.value = {device.next_code()!r}\npanel.confirm_button.click()")
        assert notebook.value("panel.step") == "codes", notebook.value("panel.message.value")
        assert notebook.value("panel.qr.value") == ""

        assert not browser.logged_in(), "linking a device ends the user's hub sessions"
        assert browser.login(USER, PASSWORD).status_code != 302, "the password alone no longer logs in"
        assert browser.login(USER, PASSWORD, otp=device.next_code()).status_code == 302
        assert browser.open_server(USER, "lab").status_code == 200
        assert_no_secret(notebook.save(), secret)
        notebook.run("panel.stored_button.click()")
        assert notebook.value("panel.status['enrolled']") is True
